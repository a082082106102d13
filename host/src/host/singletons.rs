//! Durable named actors in a cluster: one host runs each, the others stand
//! by to start it when that host is gone.
//!
//! Every host of a cluster may run the same manifest. A durable actor of
//! an entry without `node` would then start on every host, each with its
//! own state; instead, each host claims its address through the cluster's
//! placement first ([`Placement::claim`], the claims virtual keys use),
//! and only the winner starts it, committing to the store the hosts share,
//! fenced by its claim. The others keep its spec as a *standby*; the
//! cluster layer claims it again every so often, and when a message to it
//! finds no host answering, and the host that wins it (its holder died,
//! or left) starts it from that shared store, with every acknowledged
//! change, its bindings and its routes.
//!
//! [`Placement::claim`]: super::Placement::claim

use std::collections::HashMap;

use tracing::{info, warn};

use super::Host;
use crate::actor::ActorSpec;
use crate::actor::durable::Durability;

/// An actor this host starts if it wins its claim.
pub(super) struct Standby {
    spec: ActorSpec,
    supervisor: Option<String>,
    routes: Vec<String>,
}

/// The actors this host stands by for, by address.
pub(super) type Standbys = crate::sync::Mutex<HashMap<String, Standby>>;

impl Host {
    /// Whether this host is to start `spec` (a manifest's actor under
    /// `supervisor`, with HTTP `routes`): yes out of a cluster, or for an
    /// actor in memory; for a durable one in a cluster, only if this host
    /// wins its claim. Otherwise it stands by for it.
    pub(crate) async fn claim_or_stand_by(
        &self,
        spec: &ActorSpec,
        supervisor: Option<&str>,
        routes: &[String],
    ) -> bool {
        let Some(placement) = self.inner.placement.get() else { return true };
        if spec.policy.durability != Durability::Durable {
            return true;
        }
        let address = spec.address.as_str();
        match placement.claim(address).await {
            Ok(true) => return true,
            Ok(false) => info!(actor = %address, "another host runs this durable actor; standing by for it"),
            Err(e) => warn!(actor = %address, error = %e, "the actor's claim could not be read; standing by for it"),
        }
        let standby = Standby { spec: spec.clone(), supervisor: supervisor.map(String::from), routes: routes.to_vec() };
        self.inner.standbys.lock().insert(address.to_string(), standby);
        false
    }

    /// Whether this host stands by for the actor at `address`.
    pub fn stands_by_for(&self, address: &str) -> bool {
        self.inner.standbys.lock().contains_key(address)
    }

    /// The addresses this host stands by for.
    pub fn standbys(&self) -> Vec<String> {
        self.inner.standbys.lock().keys().cloned().collect()
    }

    /// Starts the actor this host stood by for at `address`, now that it
    /// holds its claim: from the shared store, under its supervisor, with
    /// its bindings and routes. Nothing if it stands by for none there (it
    /// was taken over already); if the actor does not start, it stands by
    /// again.
    pub async fn take_over(&self, address: &str) {
        let Some(standby) = self.inner.standbys.lock().remove(address) else { return };
        let started = match self.start_under(standby.spec.clone(), standby.supervisor.as_deref()) {
            Ok(starting) => starting.started().await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = started {
            warn!(actor = %address, error = %e, "a durable actor this host stood by for could not start; standing by");
            self.inner.standbys.lock().insert(address.to_string(), standby);
            return;
        }
        if !standby.routes.is_empty()
            && let Err(e) = self.add_routes(address, &standby.routes)
        {
            warn!(actor = %address, error = %e, "the routes of a durable actor taken over could not be added");
        }
        info!(actor = %address, "took over a durable actor whose host is gone");
    }
}
