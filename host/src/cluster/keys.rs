//! Placement of virtual actors: one host in the cluster has each key.
//!
//! A key is claimed like a named actor's address (`claims.rs`): the host
//! that first needs it active (a message reached it, from its CLI, its
//! gateway or one of its actors) creates its claim and activates it; a
//! host that finds the claim held by a live host sends the message to
//! that host's keys subject instead; a claim held by a dead host (its
//! lease expired) is taken over with a compare-and-set, and the key
//! activates on the host that won it. The claim's revision is the key's
//! fencing token: each takeover makes a greater one.
//!
//! A host keeps the claims it holds in memory ([`KeyPlacement::holds`],
//! which the host asks before every activation), and remembers for a
//! while where the keys it sent messages to were, so that a message to a
//! key held elsewhere costs one request, not a lookup first. A host that
//! answers that it no longer has a key (it passivated and gave its claim
//! back) makes the sender look again.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::ClusterError;
use super::claims::{Claim, Claims};
use super::members::Membership;
use crate::actor::BoxFuture;
use crate::actor::durable::Journal;
use crate::host::Placement;
use crate::sync::Mutex;

/// Most locations of keys held elsewhere a host remembers; past it, it
/// starts again.
const MAX_KNOWN_LOCATIONS: usize = 100_000;

/// Where a key is active, or is to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// This host holds its claim: activate it here.
    Here,
    /// The live host with this node name holds it.
    Elsewhere(String),
}

/// This host's claims on keys, and where it last found the others.
pub struct KeyPlacement {
    claims: Claims,
    members: Arc<Membership>,
    /// The keys this host holds, with the revision each claim was won at.
    held: Mutex<HashMap<String, u64>>,
    /// The node each key held elsewhere was at, when last looked up.
    known: Mutex<HashMap<String, String>>,
    /// The store the hosts share, where durable keys commit.
    journal: OnceLock<Arc<dyn Journal>>,
}

impl KeyPlacement {
    /// Claims in `claims`, for `members`' node.
    pub fn new(claims: Claims, members: Arc<Membership>) -> Self {
        KeyPlacement { claims, members, held: Mutex::default(), known: Mutex::default(), journal: OnceLock::new() }
    }

    /// Durable keys commit to `journal` from now on.
    pub fn set_journal(&self, journal: Arc<dyn Journal>) {
        let _ = self.journal.set(journal);
    }

    /// The revision this host's claim on `address` was won at: its fencing
    /// token, greater than that of every host that held the key before.
    pub fn token(&self, address: &str) -> Option<u64> {
        self.held.lock().get(address).copied()
    }

    /// Where the key at `address` is: here (claimed now if it was free or
    /// its holder dead), or on another live host.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Nats`] if the claims could not be read or written.
    pub async fn locate(&self, address: &str) -> Result<Location, ClusterError> {
        if self.holds(address) {
            return Ok(Location::Here);
        }
        if let Some(node) = self.known.lock().get(address) {
            return Ok(Location::Elsewhere(node.clone()));
        }
        match self.claims.claim(address, &self.members).await? {
            Claim::Won(revision) => {
                self.won(address, revision);
                Ok(Location::Here)
            }
            Claim::HeldBy(node) => {
                let mut known = self.known.lock();
                if known.len() >= MAX_KNOWN_LOCATIONS {
                    known.clear();
                }
                known.insert(address.to_string(), node.clone());
                Ok(Location::Elsewhere(node))
            }
        }
    }

    /// This host won the claim on `address` at `revision`.
    fn won(&self, address: &str, revision: u64) {
        self.held.lock().insert(address.to_string(), revision);
        // The audit trail of claims (`TROUPE_LOG=troupe::cluster::keys=debug`).
        tracing::debug!(key = address, token = revision, node = self.members.node(), "claimed a key");
    }

    /// The host this one last found the key at `address` on does not have
    /// it any more (or does not answer): look it up again next time.
    pub fn moved(&self, address: &str) {
        self.known.lock().remove(address);
    }

    /// Gives every claim back (the host is leaving).
    pub async fn release_all(&self) {
        let held: Vec<(String, u64)> = self.held.lock().drain().collect();
        for (address, revision) in held {
            tracing::debug!(key = address, token = revision, node = self.members.node(), "gave a key back");
            self.claims.release(&address, revision).await;
        }
    }
}

impl Placement for KeyPlacement {
    fn holds(&self, address: &str) -> bool {
        self.held.lock().contains_key(address)
    }

    fn release(&self, address: &str) {
        let Some(revision) = self.held.lock().remove(address) else { return };
        tracing::debug!(key = address, token = revision, node = self.members.node(), "gave a key back");
        let claims = self.claims.clone();
        let address = address.to_string();
        // A claim won again meanwhile has another revision: this release
        // then leaves it alone.
        tokio::spawn(async move { claims.release(&address, revision).await });
    }

    fn journal(&self) -> Option<Arc<dyn Journal>> {
        self.journal.get().cloned()
    }

    fn claim<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            if self.holds(address) {
                return Ok(true);
            }
            // Asked afresh each time: a standby's holder may have gone
            // since the last look.
            match self.claims.claim(address, &self.members).await.map_err(|e| e.to_string())? {
                Claim::Won(revision) => {
                    self.won(address, revision);
                    Ok(true)
                }
                Claim::HeldBy(_) => Ok(false),
            }
        })
    }
}
