//! Failover: when a host dies, the durable keys it had active activate on
//! the others, with what they committed to the shared store.
//!
//! Every host watches the membership (every third of the lease, at most
//! every second). When a member is gone (its lease expired without a clean
//! leave), each host reads the claims it held and claims, with the
//! takeover's compare-and-set, the keys of its durable virtual components:
//! one host wins each and activates it there, which reads its state, tells
//! acknowledged and not handled, and timers from the shared store, so
//! that they are handled and fire without waiting for a message. A key in
//! memory is not activated: its state died with its host, and its next
//! message activates it afresh wherever it arrives.
//!
//! The monitors and links of actors here that watched a gone host's
//! actors are told they failed (`host-lost`, see `watches.rs`), and its
//! group members are removed from the groups bucket (`groups.rs`).
//!
//! A durable actor spawned at run time on the gone host (`troupe spawn`)
//! is claimed the same way and started, by the host that wins it, from
//! its spawn record in the shared store (`crate::host`'s `singletons.rs`).
//!
//! At the same pace, a host claims again each durable named actor it
//! stands by for (`crate::host`'s `singletons.rs`): a claim whose holder
//! died or left is won by one of the hosts standing by, which starts the
//! actor from the shared store.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::claims::Claims;
use super::groups::Groups;
use super::keys::{KeyPlacement, Location};
use super::members::Membership;
use super::watches::Watches;
use crate::actor::durable::Durability;
use crate::host::{Placement as _, WeakHost};

/// What else ends with a host that leaves the cluster.
pub struct Lost {
    /// The watches this host shared with it.
    pub watches: Arc<Watches>,
    /// Its group members.
    pub groups: Arc<Groups>,
}

/// Follows the membership until the host is gone, failing over the durable
/// keys of each member that disappears, ending the watches this host
/// shared with it and removing its group members.
pub async fn watch(host: WeakHost, members: Arc<Membership>, claims: Claims, keys: Arc<KeyPlacement>, lost: Lost) {
    let every = (members.lease() / 3).min(Duration::from_secs(1));
    let mut known: Option<BTreeSet<String>> = None;
    loop {
        tokio::time::sleep(every).await;
        let Some(standbys) = host.upgrade().map(|host| host.standbys()) else { return };
        for address in standbys {
            let Some(host) = host.upgrade() else { return };
            take_over_if_free(&host, &keys, &address).await;
        }
        let now: BTreeSet<String> = match members.nodes().await {
            Ok(nodes) => nodes.into_iter().collect(),
            Err(e) => {
                warn!(error = %e, "the membership could not be read");
                continue;
            }
        };
        let gone: BTreeSet<String> =
            known.as_ref().map(|before| before.difference(&now).cloned().collect()).unwrap_or_default();
        known = Some(now);
        if gone.is_empty() {
            continue;
        }
        if let Some(host) = host.upgrade() {
            for node in &gone {
                lost.watches.host_lost(&host, node);
                lost.groups.forget_node(node).await;
            }
        }
        let held = match claims.held_by(&gone).await {
            Ok(held) => held,
            Err(e) => {
                warn!(error = %e, "the claims of hosts that left could not be read");
                continue;
            }
        };
        let Some(host_now) = host.upgrade() else { return };
        let (keys_held, others): (Vec<String>, Vec<String>) = held.into_iter().partition(|address| {
            address
                .rsplit_once('/')
                .is_some_and(|(name, _)| host_now.virtual_durability(name) == Some(Durability::Durable))
        });
        // The durable actors spawned there at run time, if any.
        host_now.take_over_spawned(&others).await;
        drop(host_now);
        for address in keys_held {
            let Some(host) = host.upgrade() else { return };
            match keys.locate(&address).await {
                Ok(Location::Here) => match host.lookup(&address) {
                    Ok(_) => info!(%address, hosts = ?gone, "a durable key of a host that left activated here"),
                    Err(e) => warn!(%address, error = %e, "a durable key of a host that left could not be activated"),
                },
                Ok(Location::Elsewhere(_)) => {}
                Err(e) => warn!(%address, error = %e, "a durable key of a host that left could not be claimed"),
            }
        }
    }
}

/// Claims the actor at `address` that `host` stands by for and starts it
/// there if its claim is free (its host is gone): whether it runs on
/// `host` now.
pub(super) async fn take_over_if_free(host: &crate::host::Host, keys: &KeyPlacement, address: &str) -> bool {
    match keys.claim(address).await {
        Ok(true) => {
            host.take_over(address).await;
            host.lookup(address).is_ok()
        }
        Ok(false) => false,
        Err(e) => {
            warn!(%address, error = %e, "the claim of an actor this host stands by for could not be read");
            false
        }
    }
}
