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
//! A durable actor started at run time (`troupe spawn`) is claimed the
//! same way, and its spawn recorded in the shared store: when its host is
//! gone, the host that wins its claim starts it again from that record
//! (through the control layer's [`Respawner`]), with its state.
//!
//! The durable children guests spawn under such an actor, and under its
//! children, go with it: each is claimed before it starts, commits to the
//! shared store, and is recorded there; the host that starts the actor
//! (the one that won it first, or one taking it over) spawns them again
//! under it from those records, with their state.
//!
//! [`Placement::claim`]: super::Placement::claim

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tracing::{info, warn};

use super::spawn::ChildSpawn;
use super::{Host, HostInner};
use crate::actor::durable::{Durability, Journal};
use crate::actor::{ActorSpec, BoxFuture, SpawnError};
use crate::message::Address;

/// How the control layer starts again, on this host, an actor from its
/// run-time spawn record (the bytes it recorded): installed with
/// [`Host::set_respawner`].
pub type Respawner = Arc<dyn Fn(Host, Vec<u8>) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

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
        self.respawn_children(address).await;
    }

    /// Spawns again under `parent`, a durable actor this host has just
    /// started from the shared store, the durable children guests spawned
    /// under it (and under them) wherever it ran before, from their
    /// records in that store: each claimed, with its state. Nothing for an
    /// actor that does not commit to the shared store.
    pub(crate) async fn respawn_children(&self, parent: &str) {
        let Some(placement) = self.inner.placement.get() else { return };
        let Some(journal) = placement.journal() else { return };
        if !self.inner.commits_shared_children(parent) {
            return;
        }
        let records = match journal.spawned() {
            Ok(records) => records,
            Err(e) => {
                warn!(actor = %parent, error = %e, "its durable children's records could not be read: not spawned again");
                return;
            }
        };
        let children: Vec<ChildSpawn> =
            records.into_iter().filter_map(|(_, how)| serde_json::from_slice::<ChildSpawn>(&how).ok()).collect();
        let mut parents = vec![Address::from(parent)];
        while let Some(parent) = parents.pop() {
            for record in children.iter().filter(|child| child.parent == parent) {
                let address = Address::from(record.options.name.clone().unwrap_or_default());
                if self.inner.registry.get(address.as_str()).is_some() {
                    parents.push(address);
                    continue;
                }
                match self.respawn_child(record.clone()).await {
                    Ok(_) => {
                        info!(actor = %address, %parent, "a durable child spawned again with its parent");
                        parents.push(address);
                    }
                    Err(e) => {
                        warn!(actor = %address, %parent, error = %e, "a durable child could not be spawned again")
                    }
                }
            }
        }
    }
}

impl Host {
    /// Claims `address` for a durable actor about to be started at run
    /// time: in a cluster, so that it commits to the shared store and
    /// fails over; nothing to claim out of one.
    ///
    /// # Errors
    ///
    /// Another host holds the address, or the claim could not be made.
    pub async fn claim_spawned(&self, address: &str) -> Result<(), String> {
        let Some(placement) = self.inner.placement.get() else { return Ok(()) };
        match placement.claim(address).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("another host of the cluster runs `{address}`")),
            Err(e) => Err(format!("its claim in the cluster could not be made: {e}")),
        }
    }

    /// The store the durable actor at `address` commits to, and where its
    /// spawn is recorded: the shared store for an actor this host holds
    /// the claim of in a cluster, else this host's own.
    pub fn journal_of(&self, address: &str) -> Option<Arc<dyn Journal>> {
        self.inner.journal_for(address)
    }

    /// Installs how run-time spawn records are started again (once; false
    /// if one is installed already).
    pub fn set_respawner(&self, respawner: Respawner) -> bool {
        self.inner.respawner.set(respawner).is_ok()
    }

    /// The host that ran the actors at `addresses` is gone: those that
    /// were durable actors started there at run time, recorded in the
    /// shared store, are claimed and, where this host wins them, started
    /// here from their records.
    pub async fn take_over_spawned(&self, addresses: &[String]) {
        if addresses.is_empty() {
            return;
        }
        let gone: HashSet<&str> = addresses.iter().map(String::as_str).collect();
        self.take_over_recorded(|address| gone.contains(address)).await;
    }

    /// Claims every durable actor started at run time that the shared
    /// store records and no live host runs, and starts here those this
    /// host wins: what a host joining a cluster whose hosts all stopped
    /// (or died unnoticed) does once, as a host alone recovers its own.
    pub async fn recover_spawned(&self) {
        self.take_over_recorded(|_| true).await;
    }

    /// Claims the run-time spawns of the shared store whose address
    /// `wanted` takes, and starts those this host wins.
    async fn take_over_recorded(&self, wanted: impl Fn(&str) -> bool) {
        let (Some(placement), Some(respawner)) = (self.inner.placement.get(), self.inner.respawner.get()) else {
            return;
        };
        let Some(journal) = placement.journal() else { return };
        let records = match journal.spawned() {
            Ok(records) => records,
            Err(e) => {
                warn!(error = %e, "the spawn records of the shared store could not be read");
                return;
            }
        };
        for (address, how) in records {
            // Children go with their parent (`respawn_children`); one
            // running here stays as it is.
            if !wanted(address.as_str())
                || serde_json::from_slice::<ChildSpawn>(&how).is_ok()
                || self.inner.registry.get(address.as_str()).is_some()
            {
                continue;
            }
            if !matches!(placement.claim(address.as_str()).await, Ok(true)) {
                continue;
            }
            match respawner(self.clone(), how).await {
                Ok(()) => info!(actor = %address, "took over a durable actor spawned on a host that is gone"),
                Err(e) => {
                    warn!(actor = %address, error = %e, "a durable actor spawned on a host that is gone could not start here")
                }
            }
        }
    }
}

impl HostInner {
    /// Do the durable children of `parent` commit to the shared store? In
    /// a cluster, those of a durable named actor this host holds the claim
    /// of: they move with it. (A key of a virtual component keeps its
    /// children in its host's store.)
    fn commits_shared_children(&self, parent: &str) -> bool {
        self.placement.get().is_some_and(|placement| placement.holds(parent)) && !self.is_virtual_key(parent)
    }

    /// Claims `child`, a durable child about to start under `parent`, if
    /// its parent's children commit to the shared store.
    ///
    /// # Errors
    ///
    /// [`SpawnError::NameTaken`] if another host holds the address;
    /// [`SpawnError::NotDurable`] if the claim could not be made.
    pub(super) async fn claim_child(&self, parent: &Address, child: &Address) -> Result<(), SpawnError> {
        let Some(placement) = self.placement.get() else { return Ok(()) };
        if !self.commits_shared_children(parent.as_str()) {
            return Ok(());
        }
        match placement.claim(child.as_str()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(SpawnError::NameTaken(child.clone())),
            Err(e) => Err(SpawnError::NotDurable {
                address: child.clone(),
                reason: format!("its claim in the cluster could not be made: {e}"),
            }),
        }
    }
}
