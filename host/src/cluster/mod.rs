//! A cluster of troupe hosts on NATS: actors addressable from every host.
//!
//! A host joins with [`Cluster::join`] (`troupe run --cluster URLS --node
//! NAME`). From then on a tell or an ask, from a guest, the control socket
//! or the HTTP gateway, to an address this host does not have goes to the
//! host that has it, with the semantics of a local one: the message is
//! type-checked at the sender against the receiver's protocol, a full
//! mailbox is an error to the sender, asks time out, an ask cycle across
//! hosts is refused, and the errors are the same.
//!
//! # How
//!
//! Only NATS, no protocol of troupe's own between hosts:
//!
//! * membership: each host holds a lease, a key of a JetStream KV bucket
//!   whose entries expire after the lease, written every third of it
//!   (`members.rs`);
//! * addresses: a host claims the address of each of its actors in a
//!   second bucket, first writer wins, taking over only the claims of
//!   hosts whose lease expired (`claims.rs`), and answers on the
//!   address's subject (`serve.rs`); NATS routes each request to the one
//!   subscriber, and "no responders" means no host has the address;
//! * virtual keys: claimed in the same bucket by the host a message
//!   reaches first, and answered for on each host's keys subject
//!   (`keys.rs`); durable ones commit to a replicated JetStream stream,
//!   fenced by their claims' revisions (`state.rs`), and activate on
//!   another host when theirs dies (`failover.rs`);
//! * durable named actors of a manifest the hosts share: claimed the same
//!   way before one host starts each, committed and fenced as durable
//!   keys, and started by a host standing by for them when theirs is gone
//!   (`failover.rs`, and `crate::host`'s `singletons.rs`), with the
//!   durable children guests spawned under them;
//! * messages: NATS request/reply, the envelope in headers, the arguments
//!   in the compact binary encoding of [`crate::protocol::wire`]
//!   (`envelope.rs`), checked against the receiver's code by its content
//!   hash; the sender learns the receiver's code once and fetches the
//!   component from the cluster's object store if it does not run it
//!   (`remote.rs`);
//! * groups: each host records the group members it serves in a third
//!   bucket, and follows it, so that a router picks among the members of
//!   every host (`groups.rs`);
//! * monitors and links: a `watch` request on the watched actor's
//!   subject; its host publishes the `down` notices on the watcher's
//!   host's down subject, and the watches of a host that left without a
//!   word end with a `host-lost` failure (`watches.rs`);
//! * `troupe ps --cluster` and `troupe tree --cluster`: a request to each
//!   member's host subject; `troupe swap --cluster`: requests to each in
//!   turn, to swap and hold, then to commit or roll back (`rolling.rs`).
//!
//! Subjects and keys escape troupe's names (`names.rs`); the buckets are
//! made so that nats-server 2.9 takes them (`buckets.rs`).
//!
//! # What stays with its host
//!
//! Durable actors pinned to a node, or spawned by a pinned actor or a key
//! of a virtual component, keep their state in their own host's store and
//! come back with that host, not on another: only the durable keys of
//! virtual components, the durable named actors of a shared manifest, the
//! durable children those spawn and the durable actors `troupe spawn`
//! starts commit to the shared store (`state.rs`) and fail over
//! (`failover.rs`). See the README's "Cluster" section for the contract.

mod buckets;
mod claims;
mod envelope;
mod failover;
mod groups;
mod keys;
mod members;
pub mod names;
mod remote;
mod rolling;
mod serve;
mod state;
mod watches;

use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use members::DEFAULT_LEASE;
pub use remote::TELL_TIMEOUT;
pub use state::{Fencing, STATE_STREAM, SharedStore};

use crate::actor::BoxFuture;
use crate::host::{ClusterSwap, ClusterSwapError, Host, HostView, NodeAnswer, NodeView, Peers};
use crate::store::DurableStore;
use buckets::{BucketShape, kv_bucket, object_store};
use claims::Claims;
use groups::Groups;
use keys::KeyPlacement;
use members::Membership;
use names::{
    ADDRESSES_BUCKET, COMPONENTS_BUCKET, GROUPS_BUCKET, HOSTS_BUCKET, down_subject, host_subject, keys_subject,
};
use rolling::{Rolling, SwapRequest};
use serve::{Change, Directory};
use watches::Watches;

/// How a host joins a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The NATS servers, comma-separated URLs (`nats://127.0.0.1:4222`).
    pub servers: String,
    /// This host's node name, unique among the live hosts.
    pub node: String,
    /// How long a host stays a member after its last heartbeat. By
    /// default [`DEFAULT_LEASE`]. The first host to create the membership
    /// bucket sets it for the cluster.
    pub lease: Duration,
}

/// Why a host could not join a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No NATS server answered.
    #[error("cannot connect to NATS at {servers}: {reason}; is nats-server running (scripts/nats-cluster start)?")]
    Connect {
        /// The servers tried.
        servers: String,
        /// What the client said.
        reason: String,
    },
    /// The server does not offer JetStream.
    #[error(
        "the NATS server has no JetStream; start nats-server with `-js` (or `jetstream {{}}` in its configuration)"
    )]
    NoJetStream,
    /// A bucket could not be made or opened.
    #[error("the cluster's bucket `{bucket}` could not be opened: {reason}")]
    Bucket {
        /// The bucket.
        bucket: String,
        /// What the server said.
        reason: String,
    },
    /// A live host has this node name.
    #[error("a live host of the cluster is node `{0}` already; give this one another --node name")]
    NodeTaken(String),
    /// The node name is not valid.
    #[error("invalid node name `{0}`: use letters, digits, `-` and `_`")]
    InvalidNode(String),
    /// This host joined a cluster already.
    #[error("this host has joined a cluster already")]
    AlreadyJoined,
    /// A NATS operation failed.
    #[error("NATS: {0}")]
    Nats(String),
    /// The host cannot take part as it is (a durable virtual component).
    #[error(transparent)]
    Host(#[from] crate::host::SuperviseError),
}

/// This host's part in a cluster. Dropping it leaves without giving
/// anything back (as a crash would); [`Cluster::leave`] leaves cleanly.
pub struct Cluster {
    members: Arc<Membership>,
    client: Client,
    keys: Arc<KeyPlacement>,
    tasks: Vec<JoinHandle<()>>,
}

impl Cluster {
    /// Joins the cluster on `config.servers` as `config.node`: takes the
    /// node's lease, makes `host`'s actors reachable from the other hosts
    /// and theirs from `host`.
    ///
    /// # Errors
    ///
    /// A [`ClusterError`] naming the problem and the fix.
    pub async fn join(host: &Host, config: ClusterConfig) -> Result<Cluster, ClusterError> {
        if config.node.is_empty() || !config.node.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(ClusterError::InvalidNode(config.node));
        }
        let servers = server_addresses(&config.servers)?;
        let client = async_nats::ConnectOptions::new()
            .name(format!("troupe {}", config.node))
            .connect(servers)
            .await
            .map_err(|e| ClusterError::Connect { servers: config.servers.clone(), reason: e.to_string() })?;
        let info = client.server_info();
        if !info.jetstream {
            return Err(ClusterError::NoJetStream);
        }
        // As many copies as there are servers, up to three.
        let replicas = info.connect_urls.len().clamp(1, 3);
        let js = async_nats::jetstream::new(client.clone());
        let hosts = kv_bucket(&js, HOSTS_BUCKET, BucketShape { history: 1, max_age: config.lease }, replicas).await?;
        let addresses =
            kv_bucket(&js, ADDRESSES_BUCKET, BucketShape { history: 1, max_age: Duration::ZERO }, replicas).await?;
        let components = object_store(&js, COMPONENTS_BUCKET, replicas).await?;
        let groups =
            kv_bucket(&js, GROUPS_BUCKET, BucketShape { history: 1, max_age: Duration::ZERO }, replicas).await?;
        // The lease is the bucket's: its entries expire then, whatever
        // this host was told.
        let lease = match hosts.status().await {
            Ok(status) if status.max_age() != config.lease && !status.max_age().is_zero() => {
                warn!(
                    cluster_lease_ms = status.max_age().as_millis() as u64,
                    asked_ms = config.lease.as_millis() as u64,
                    "the cluster's lease was set by the first host to join it; this host takes it (not --lease-ms)"
                );
                status.max_age()
            }
            _ => config.lease,
        };
        let members = Membership::join(hosts, &config.node, lease).await?;

        let claims = Claims::new(addresses);
        let keys = Arc::new(KeyPlacement::new(claims.clone(), members.clone()));
        let shared = SharedStore::open(&config.servers, replicas, fencing(&keys, &members)).await?;
        keys.set_journal(Arc::new(DurableStore::shared(Arc::new(shared))));
        if !host.attach_placement(keys.clone())? {
            return Err(ClusterError::AlreadyJoined);
        }
        let watches = Arc::new(Watches::new(&config.node));
        let groups = Arc::new(Groups::new(groups, &config.node));
        let remote = remote::Remote::new(
            host.downgrade(),
            client.clone(),
            components.clone(),
            keys.clone(),
            watches.clone(),
            groups.clone(),
        );
        if !host.attach_remote(Arc::new(remote)) {
            return Err(ClusterError::AlreadyJoined);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let changes = tx.clone();
        let existing = host
            .observe_addresses(Box::new(move |change| {
                let _ = tx.send(Change::from(change));
            }))
            .ok_or(ClusterError::AlreadyJoined)?;
        let directory = Arc::new(Directory {
            host: host.downgrade(),
            client: client.clone(),
            members: members.clone(),
            claims: claims.clone(),
            components: components.clone(),
            watches: watches.clone(),
            groups: groups.clone(),
            changes,
        });
        let rolling = Arc::new(Rolling::new(host.downgrade(), client.clone(), members.clone(), components.clone()));
        let peers = Arc::new(ClusterPeers {
            host: host.downgrade(),
            client: client.clone(),
            members: members.clone(),
            components: components.clone(),
            rolling,
        });
        host.attach_peers(peers.clone());
        let host_requests = client
            .subscribe(host_subject(&config.node))
            .await
            .map_err(|e| ClusterError::Nats(format!("cannot subscribe to this host's subject: {e}")))?;
        let key_requests = client
            .subscribe(keys_subject(&config.node))
            .await
            .map_err(|e| ClusterError::Nats(format!("cannot subscribe to this host's keys subject: {e}")))?;
        let downs = client
            .subscribe(down_subject(&config.node))
            .await
            .map_err(|e| ClusterError::Nats(format!("cannot subscribe to this host's down subject: {e}")))?;
        let lost = failover::Lost { watches: watches.clone(), groups: groups.clone() };
        let failover = failover::watch(host.downgrade(), members.clone(), claims.clone(), keys.clone(), lost);
        let tasks = vec![
            tokio::spawn(groups.follow()),
            tokio::spawn(watches.answer_downs(host.downgrade(), downs)),
            tokio::spawn(failover),
            tokio::spawn(directory.clone().answer_keys(key_requests)),
            tokio::spawn(directory.run(existing, rx)),
            tokio::spawn(peers.answer(host_requests)),
        ];
        info!(node = %config.node, servers = %config.servers, replicas, "joined the cluster");
        Ok(Cluster { members, client, keys, tasks })
    }

    /// This host's node name.
    pub fn node(&self) -> &str {
        self.members.node()
    }

    /// Leaves cleanly: stops answering, gives the lease back so that other
    /// hosts need not wait for it to expire, and flushes what is on its
    /// way. Call it after the host stopped its actors (their claims go
    /// back as they stop).
    pub async fn leave(self) {
        // Give the directory a moment to release the claims of actors
        // that just stopped.
        tokio::time::sleep(Duration::from_millis(50)).await;
        for task in &self.tasks {
            task.abort();
        }
        self.keys.release_all().await;
        self.members.leave().await;
        if let Err(e) = self.client.flush().await {
            warn!(error = %e, "NATS flush on leaving");
        }
        info!(node = %self.members.node(), "left the cluster");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The NATS servers `servers` names, comma-separated.
fn server_addresses(servers: &str) -> Result<Vec<async_nats::ServerAddr>, ClusterError> {
    servers
        .split(',')
        .map(|url| url.trim().parse::<async_nats::ServerAddr>().map_err(|e| (url.trim().to_string(), e)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(url, e)| ClusterError::Connect {
            servers: servers.to_string(),
            reason: format!("`{url}` is no NATS URL ({e}); write e.g. nats://127.0.0.1:4222"),
        })
}

/// The fencing tokens this host writes the shared store with: its claim's
/// revision for each key it holds, while it holds its lease.
fn fencing(keys: &Arc<KeyPlacement>, members: &Arc<Membership>) -> Fencing {
    let (keys, members) = (Arc::downgrade(keys), members.clone());
    Arc::new(move |address| {
        if !members.holds_lease() {
            return Err(format!("this host `{}` lost its cluster lease", members.node()));
        }
        let token = keys.upgrade().and_then(|keys| keys.token(address));
        token.ok_or_else(|| format!("this host `{}` does not hold the key's claim", members.node()))
    })
}

/// The control plane's view of the cluster: each host answers `ps`,
/// `tree` and the requests of swaps across the cluster on its host
/// subject.
struct ClusterPeers {
    host: crate::host::WeakHost,
    client: Client,
    members: Arc<Membership>,
    components: async_nats::jetstream::object_store::ObjectStore,
    rolling: Arc<Rolling>,
}

/// How long `ps --cluster` and `tree --cluster` wait for each host.
const PS_TIMEOUT: Duration = Duration::from_secs(2);

impl ClusterPeers {
    /// Answers the requests on this host's subject.
    async fn answer(self: Arc<Self>, mut requests: async_nats::Subscriber) {
        while let Some(message) = requests.next().await {
            let Some(reply) = message.reply else { continue };
            if let Ok(request) = serde_json::from_slice::<SwapRequest>(&message.payload) {
                // A swap takes its actors' probations: answered on the side.
                tokio::spawn(self.rolling.clone().answer(request, reply));
                continue;
            }
            let Some(host) = self.host.upgrade() else { return };
            let view = std::str::from_utf8(&message.payload).ok().and_then(HostView::parse);
            let answer = match view {
                Some(view) => local_view(&host, view),
                None => serde_json::json!({ "error": "unknown request; ask for `ps`, `tree` or a swap" }),
            };
            let _ = self.client.publish(reply, serde_json::to_vec(&answer).unwrap_or_default().into()).await;
        }
    }
}

/// What the control protocol shows of `host` for `view`.
fn local_view(host: &Host, view: HostView) -> serde_json::Value {
    match view {
        HostView::Ps => serde_json::json!({ "actors": host.actors(), "dead_letters": host.dead_letters() }),
        HostView::Tree => serde_json::json!(host.tree()),
    }
}

impl Peers for ClusterPeers {
    fn node(&self) -> &str {
        self.members.node()
    }

    fn gather(&self, view: HostView) -> BoxFuture<'_, Result<Vec<NodeView>, String>> {
        Box::pin(async move {
            let nodes = self.members.nodes().await.map_err(|e| e.to_string())?;
            let asks = nodes.into_iter().map(|node| async move {
                if node == self.members.node() {
                    let answer = match self.host.upgrade() {
                        Some(host) => NodeAnswer::Answer(local_view(&host, view)),
                        None => NodeAnswer::Error("stopping".into()),
                    };
                    return NodeView { node, answer };
                }
                let request = async_nats::Request::new().payload(view.as_str().into()).timeout(Some(PS_TIMEOUT));
                let answer = match self.client.send_request(host_subject(&node), request).await {
                    Ok(reply) => match serde_json::from_slice(&reply.payload) {
                        Ok(answer) => NodeAnswer::Answer(answer),
                        Err(e) => NodeAnswer::Error(format!("an answer that does not parse: {e}")),
                    },
                    Err(e) => NodeAnswer::Error(e.to_string()),
                };
                NodeView { node, answer }
            });
            Ok(futures_util::future::join_all(asks).await)
        })
    }

    fn swap(&self, swap: ClusterSwap) -> BoxFuture<'_, Result<Vec<NodeView>, ClusterSwapError>> {
        Box::pin(self.rolling.swap(swap))
    }

    fn fetch_code<'a>(
        &'a self,
        code: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Arc<crate::actor::ActorComponent>, String>> {
        Box::pin(async move {
            let host = self.host.upgrade().ok_or("this host is stopping")?;
            serve::fetch(&self.components, &host, code, name, None).await
        })
    }
}
