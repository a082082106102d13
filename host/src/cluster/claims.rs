//! Address claims: one host serves each address in the cluster.
//!
//! A host that starts an actor claims its address in
//! [`ADDRESSES_BUCKET`](super::names::ADDRESSES_BUCKET) before it answers
//! for it on the address's subject: a create, which only the first writer
//! wins. A claim held by a host that is no member any more (its lease
//! expired) is taken over with a compare-and-set on the entry's revision,
//! so that of two hosts taking over at once only one wins. A claim is
//! given back, with the revision it was won at, when the actor leaves: a
//! release never removes a claim another host has taken over since.
//!
//! An actor whose address another live host holds keeps running on its
//! own host and is reachable there, but not from the cluster: the host
//! logs it, and [`Claims::claim`] says who holds it. The host claims it
//! again a lease later, and wins once the holder has left or died.

use async_nats::jetstream::kv;
use bytes::Bytes;

use super::ClusterError;
use super::members::Membership;
use super::names::escape;

/// The claims of one host.
#[derive(Clone)]
pub struct Claims {
    kv: kv::Store,
}

/// The outcome of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This host serves the address; the revision releases it.
    Won(u64),
    /// A live host serves the address.
    HeldBy(String),
}

impl Claims {
    /// Claims over `kv`.
    pub fn new(kv: kv::Store) -> Self {
        Claims { kv }
    }

    /// Claims `address` for `members`' node.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Nats`] if the bucket could not be read or written.
    pub async fn claim(&self, address: &str, members: &Membership) -> Result<Claim, ClusterError> {
        let nats = |e: &dyn std::fmt::Display| ClusterError::Nats(format!("claiming `{address}`: {e}"));
        let key = escape(address);
        let me = members.node();
        // A few rounds: each lost race means another host changed the
        // entry in between, and the next round reads what it did.
        for _ in 0..5 {
            match self.kv.create(&key, Bytes::from(me.to_string())).await {
                Ok(revision) => return Ok(Claim::Won(revision)),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                Err(e) => return Err(nats(&e)),
            }
            let Some(entry) = self.kv.entry(&key).await.map_err(|e| nats(&e))? else { continue };
            if entry.operation != kv::Operation::Put {
                continue;
            }
            let holder = String::from_utf8_lossy(&entry.value).into_owned();
            // This node's own claim from a run before, or a dead host's.
            if holder != me && members.is_live(&holder).await? {
                return Ok(Claim::HeldBy(holder));
            }
            match self.kv.update(&key, Bytes::from(me.to_string()), entry.revision).await {
                Ok(revision) => return Ok(Claim::Won(revision)),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
                Err(e) => return Err(nats(&e)),
            }
        }
        Err(nats(&"the claim kept changing under this host"))
    }

    /// The addresses whose claims the hosts `nodes` hold.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Nats`] if the bucket could not be read.
    pub async fn held_by(&self, nodes: &std::collections::BTreeSet<String>) -> Result<Vec<String>, ClusterError> {
        use futures_util::StreamExt as _;
        let nats = |e: &dyn std::fmt::Display| ClusterError::Nats(format!("reading the claims: {e}"));
        let mut keys = self.kv.keys().await.map_err(|e| nats(&e))?;
        let mut held = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| nats(&e))?;
            let Some(value) = self.kv.get(&key).await.map_err(|e| nats(&e))? else { continue };
            if nodes.contains(String::from_utf8_lossy(&value).as_ref())
                && let Some(address) = super::names::unescape(&key)
            {
                held.push(address);
            }
        }
        Ok(held)
    }

    /// Gives back the claim of `address` won at `revision`, unless another
    /// host took it over since.
    pub async fn release(&self, address: &str, revision: u64) {
        if let Err(e) = self.kv.purge_expect_revision(escape(address), Some(revision)).await {
            tracing::debug!(%address, error = %e, "claim not released (taken over, or the bucket is unreachable)");
        }
    }
}
