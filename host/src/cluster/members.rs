//! Membership: which hosts are alive, by leases in a KV bucket.
//!
//! Each host holds one key of [`HOSTS_BUCKET`](super::names::HOSTS_BUCKET),
//! its node name, and writes it again every third of the lease. The
//! bucket's `max_age` is the lease, so the key of a host that stopped
//! writing (killed, partitioned) disappears from the bucket a lease after
//! its last write: the members are the keys present.
//!
//! A host also keeps its own lease deadline, measured from *before* each
//! write was sent (the write may have been applied at once, so the lease
//! may run from then): once that deadline passes without a newer write
//! acknowledged, [`Membership::holds_lease`] is false, and the host stops
//! answering for its actors, since other hosts may now believe it dead.
//!
//! Joining creates the key (first writer wins). A key that exists
//! belongs either to a live host with the same node name (refused) or to
//! this node's previous run, killed less than a lease ago: the join waits
//! for it to expire.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::ClusterError;
use super::names::escape;

/// How long a host's last heartbeat keeps it a member, by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// This host's membership: its lease, kept alive by a heartbeat task.
pub struct Membership {
    kv: kv::Store,
    node: String,
    key: String,
    lease: Duration,
    /// When this host's lease runs out unless a heartbeat is acknowledged.
    deadline: watch::Receiver<Instant>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Membership {
    /// Takes the lease of `node`, waiting up to a lease (plus the time a
    /// write takes) for a previous run's to expire, and starts the
    /// heartbeat.
    ///
    /// # Errors
    ///
    /// [`ClusterError::NodeTaken`] if a live host holds `node`;
    /// [`ClusterError::Nats`] if the bucket cannot be written.
    pub async fn join(kv: kv::Store, node: &str, lease: Duration) -> Result<Arc<Membership>, ClusterError> {
        let key = escape(node);
        let value =
            bytes::Bytes::from(format!("{{\"node\":{},\"pid\":{}}}", serde_json::json!(node), std::process::id()));
        let give_up = Instant::now() + lease + Duration::from_secs(2);
        let mut announced = false;
        let sent = loop {
            let sent = Instant::now();
            match kv.create(&key, value.clone()).await {
                Ok(_) => break sent,
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    if Instant::now() >= give_up {
                        return Err(ClusterError::NodeTaken(node.to_string()));
                    }
                    if !announced {
                        info!(%node, lease_ms = lease.as_millis() as u64, "node name held: waiting for its lease to expire");
                        announced = true;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(ClusterError::Nats(format!("cannot take the lease of node `{node}`: {e}"))),
            }
        };
        let (deadline_tx, deadline) = watch::channel(sent + lease);
        let heartbeat = tokio::spawn(beat(kv.clone(), key.clone(), value, lease, deadline_tx));
        Ok(Arc::new(Membership { kv, node: node.to_string(), key, lease, deadline, heartbeat }))
    }

    /// This host's node name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The lease.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Whether this host still holds its lease: its last acknowledged
    /// heartbeat was sent less than a lease ago.
    pub fn holds_lease(&self) -> bool {
        Instant::now() < *self.deadline.borrow()
    }

    /// Whether `node` is a member now (its lease key is present).
    ///
    /// # Errors
    ///
    /// What NATS said, if the bucket could not be read.
    pub async fn is_live(&self, node: &str) -> Result<bool, ClusterError> {
        let entry = self.kv.get(escape(node)).await.map_err(|e| ClusterError::Nats(e.to_string()))?;
        Ok(entry.is_some())
    }

    /// The node names of every member, this host included.
    ///
    /// # Errors
    ///
    /// What NATS said, if the bucket could not be read.
    pub async fn nodes(&self) -> Result<Vec<String>, ClusterError> {
        let nats = |e: &dyn std::fmt::Display| ClusterError::Nats(e.to_string());
        let mut keys = self.kv.keys().await.map_err(|e| nats(&e))?;
        let mut nodes = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| nats(&e))?;
            if let Some(node) = super::names::unescape(&key) {
                nodes.push(node);
            }
        }
        nodes.sort();
        Ok(nodes)
    }

    /// Gives the lease back at once (a clean stop), so that other hosts
    /// need not wait for it to expire.
    pub async fn leave(&self) {
        self.heartbeat.abort();
        if let Err(e) = self.kv.purge(&self.key).await {
            warn!(node = %self.node, error = %e, "could not give the lease back; it expires on its own");
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Writes the lease key every third of the lease, moving the deadline on
/// each acknowledged write.
async fn beat(kv: kv::Store, key: String, value: bytes::Bytes, lease: Duration, deadline: watch::Sender<Instant>) {
    let mut lapsed = false;
    loop {
        tokio::time::sleep(lease / 3).await;
        let sent = Instant::now();
        match tokio::time::timeout(lease / 3, kv.put(&key, value.clone())).await {
            Ok(Ok(_)) => {
                deadline.send_replace(sent + lease);
                if lapsed {
                    info!("the lease is held again");
                    lapsed = false;
                }
            }
            Ok(Err(e)) => warn!(error = %e, "heartbeat not written"),
            Err(_) => warn!("heartbeat not acknowledged within a third of the lease"),
        }
        if !lapsed && Instant::now() >= *deadline.borrow() {
            error!("the lease lapsed: this host stops answering for its actors until a heartbeat is written again");
            lapsed = true;
        }
    }
}
