//! Hot swaps across the hosts of a cluster: `troupe swap TARGET FILE
//! --cluster` swaps every host's actors of `TARGET`, one host and one
//! actor at a time, with the rollback rules of a rolling swap on one host.
//!
//! The host the request reached coordinates. It puts the new code into the
//! cluster's object store (where senders already fetch code from), then
//! asks each member in turn, itself first, to swap its actors of the
//! target and *hold* their old code ([`Host::swap_held`]): a host that
//! failed has rolled its own back already, and the coordinator then rolls
//! back every host before it, the last first. Once every host has passed,
//! it tells each to commit. The canary probation applies to the first
//! actor swapped in the cluster.
//!
//! Requests travel on each host's subject (the one `ps --cluster` asks),
//! as JSON. A host holding a swap for a coordinator that is no longer a
//! member (it died mid-way) rolls it back: it never keeps old code for a
//! commit that cannot come.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use async_nats::jetstream::object_store::ObjectStore;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::members::Membership;
use super::names::host_subject;
use crate::actor::{ActorComponent, SwapOptions, SwapReport};
use crate::error_code::{ErrorCode, HasErrorCode as _};
use crate::host::{ClusterSwap, ClusterSwapError, HeldSwap, Host, NodeAnswer, NodeView, WeakHost};
use crate::sync::Mutex;

/// How long the coordinator waits for one host to swap its actors (each
/// passes its probation in turn): past it, the host counts as failed.
const HOST_SWAP_TIMEOUT: Duration = Duration::from_secs(600);

/// How long the coordinator waits for a host to settle (commit or roll
/// back) a held swap.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times the coordinator asks a host that does not answer to
/// settle a held swap.
const SETTLE_ATTEMPTS: u32 = 3;

/// A request from a coordinator to a host.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "swap", rename_all = "kebab-case")]
pub(super) enum SwapRequest {
    /// Swap the target's actors here and hold their old code.
    Hold {
        /// The swap, across the cluster.
        id: String,
        /// The coordinating host's node name.
        coordinator: String,
        /// What to swap.
        target: String,
        /// The new code's content hash, in the cluster's object store.
        code: String,
        /// The new code's component name.
        name: String,
        /// The new code's version.
        version: Option<String>,
        /// Skip the export check.
        force: bool,
        /// Each actor's probation.
        probation_ms: u64,
        /// The first actor's probation, if this host swaps the cluster's
        /// first.
        canary_ms: Option<u64>,
    },
    /// The swap passed on every host: drop the old code.
    Commit {
        /// The swap.
        id: String,
    },
    /// The swap failed on a host: reinstate the old code.
    RollBack {
        /// The swap.
        id: String,
    },
}

/// A host's answer to a [`SwapRequest`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
enum SwapReply {
    /// Swapped and held (no actor, for a target with none here that this
    /// host defines: its later actors start from the new code).
    Held {
        /// Each swapped actor's report.
        reports: Vec<SwapReport>,
    },
    /// This host has nothing of that name.
    Unknown,
    /// The swap failed here; what this host swapped is rolled back.
    Failed {
        /// Why.
        reason: String,
        /// The error's code, by its stable name.
        #[serde(default)]
        code: Option<String>,
    },
    /// Committed or rolled back.
    Settled,
}

impl SwapReply {
    /// A failure without an error code of its own.
    fn failed(reason: String) -> Self {
        SwapReply::Failed { reason, code: None }
    }
}

/// This host's side of swaps across the cluster: as coordinator, and as
/// one of the hosts a coordinator asks.
pub(super) struct Rolling {
    host: WeakHost,
    client: Client,
    members: Arc<Membership>,
    components: ObjectStore,
    /// The swaps this host holds, by id.
    held: Mutex<HashMap<String, HeldSwap>>,
    /// The swaps rolled back here before their hold finished (the
    /// coordinator gave up waiting): rolled back as soon as held.
    abandoned: Mutex<HashSet<String>>,
}

impl Rolling {
    /// Swaps for `host`, sharing code through `components`.
    pub(super) fn new(host: WeakHost, client: Client, members: Arc<Membership>, components: ObjectStore) -> Self {
        Rolling { host, client, members, components, held: Mutex::default(), abandoned: Mutex::default() }
    }

    /// Coordinates `swap` across every member, this host first.
    pub(super) async fn swap(self: &Arc<Self>, swap: ClusterSwap) -> Result<Vec<NodeView>, ClusterSwapError> {
        let unreachable = |e: &dyn std::fmt::Display| ClusterSwapError::Unreachable(e.to_string());
        super::serve::share(&self.components, &swap.component).await.map_err(|e| unreachable(&e))?;
        let me = self.members.node().to_string();
        let mut nodes = self.members.nodes().await.map_err(|e| unreachable(&e))?;
        nodes.retain(|node| *node != me);
        nodes.insert(0, me.clone());
        let id = format!(
            "{me}-{}",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos()
        );
        let component = &swap.component;
        let mut canary = swap.canary;
        let mut answers = Vec::new();
        let mut holding: Vec<String> = Vec::new();
        let mut swapped = 0;
        let mut known = false;
        for node in nodes {
            let request = SwapRequest::Hold {
                id: id.clone(),
                coordinator: me.clone(),
                target: swap.target.clone(),
                code: component.hash.to_hex().to_string(),
                name: component.name.clone(),
                version: component.version.clone(),
                force: swap.options.force,
                probation_ms: swap.options.probation.as_millis() as u64,
                canary_ms: canary.map(|c| c.as_millis() as u64),
            };
            let reply = if node == me {
                Ok(self.handle(request).await)
            } else {
                self.ask(&node, &request, HOST_SWAP_TIMEOUT).await
            };
            // A host that did not answer may still hold its part: told to
            // roll it back with the others.
            let reply = reply.unwrap_or_else(|reason| {
                holding.push(node.clone());
                SwapReply::failed(reason)
            });
            match reply {
                SwapReply::Held { reports } => {
                    known = true;
                    if !reports.is_empty() {
                        canary = None;
                    }
                    swapped += reports.len();
                    let answer = NodeAnswer::Answer(serde_json::json!({ "reports": reports }));
                    answers.push(NodeView { node: node.clone(), answer });
                    holding.push(node);
                }
                SwapReply::Unknown => {}
                SwapReply::Failed { reason, code } => {
                    warn!(target = %swap.target, %node, %reason, "a swap across the cluster failed on a host; rolling back");
                    for held in holding.iter().rev() {
                        self.settle(held, SwapRequest::RollBack { id: id.clone() }).await;
                    }
                    let code = code.as_deref().and_then(ErrorCode::named).unwrap_or(ErrorCode::Unreachable);
                    return Err(ClusterSwapError::RolledBack { node, rolled_back: swapped, code, reason });
                }
                SwapReply::Settled => {}
            }
        }
        if !known {
            return Err(ClusterSwapError::UnknownTarget(swap.target));
        }
        for node in &holding {
            self.settle(node, SwapRequest::Commit { id: id.clone() }).await;
        }
        info!(target = %swap.target, hosts = holding.len(), actors = swapped, "swapped across the cluster");
        Ok(answers)
    }

    /// Sends `request` to `node` (handles it, if it is this host), asking
    /// again if it does not answer.
    async fn settle(self: &Arc<Self>, node: &str, request: SwapRequest) {
        if node == self.members.node() {
            self.handle(request).await;
            return;
        }
        for _ in 0..SETTLE_ATTEMPTS {
            if let Ok(SwapReply::Settled) = self.ask(node, &request, SETTLE_TIMEOUT).await {
                return;
            }
        }
        warn!(%node, ?request, "a host did not settle a swap across the cluster; it rolls back once this host leaves");
    }

    /// `request` to the host `node`: its reply, or why none came.
    async fn ask(&self, node: &str, request: &SwapRequest, timeout: Duration) -> Result<SwapReply, String> {
        let payload = serde_json::to_vec(request).map_err(|e| format!("the request could not be encoded: {e}"))?;
        let request = async_nats::Request::new().payload(payload.into()).timeout(Some(timeout));
        let reply = self
            .client
            .send_request(host_subject(node), request)
            .await
            .map_err(|e| format!("host `{node}` did not answer: {e}"))?;
        Ok(serde_json::from_slice(&reply.payload)
            .unwrap_or_else(|e| SwapReply::failed(format!("an answer that does not parse: {e}"))))
    }

    /// Answers a coordinator's request, on this host's subject.
    pub(super) async fn answer(self: Arc<Self>, request: SwapRequest, reply: async_nats::Subject) {
        let answer = self.handle(request).await;
        let payload = serde_json::to_vec(&answer).unwrap_or_default();
        if let Err(e) = self.client.publish(reply, payload.into()).await {
            warn!(error = %e, "the answer to a swap across the cluster could not be sent");
        }
    }

    /// Carries out `request` on this host.
    async fn handle(self: &Arc<Self>, request: SwapRequest) -> SwapReply {
        let Some(host) = self.host.upgrade() else {
            return SwapReply::failed("the host is stopping".into());
        };
        match request {
            SwapRequest::Hold { id, coordinator, target, code, name, version, force, probation_ms, canary_ms } => {
                // Asked before fetching the code, which a host without
                // the target does not need.
                if !host.is_swap_target(&target) {
                    return SwapReply::Unknown;
                }
                let component = match self.component(&host, &code, &name, version).await {
                    Ok(component) => component,
                    Err(reason) => return SwapReply::failed(reason),
                };
                let options = SwapOptions { force, probation: Duration::from_millis(probation_ms) };
                let canary = canary_ms.map(Duration::from_millis);
                match host.swap_held(&target, component, options, canary).await {
                    Ok(held) => {
                        let reports = held.reports().to_vec();
                        if self.abandoned.lock().remove(&id) {
                            held.roll_back().await;
                            return SwapReply::failed("the coordinator gave up waiting".into());
                        }
                        self.held.lock().insert(id.clone(), held);
                        if coordinator != self.members.node() {
                            tokio::spawn(self.clone().roll_back_if_gone(id, coordinator));
                        }
                        SwapReply::Held { reports }
                    }
                    Err(e) => SwapReply::Failed { reason: e.to_string(), code: Some(e.code().as_str().into()) },
                }
            }
            SwapRequest::Commit { id } => {
                if let Some(held) = self.held.lock().remove(&id) {
                    host.commit_swap(held);
                }
                SwapReply::Settled
            }
            SwapRequest::RollBack { id } => {
                let held = self.held.lock().remove(&id);
                match held {
                    Some(held) => held.roll_back().await,
                    None => {
                        self.abandoned.lock().insert(id);
                    }
                }
                SwapReply::Settled
            }
        }
    }

    /// Rolls the swap `id` back if its coordinator leaves the cluster
    /// before settling it.
    async fn roll_back_if_gone(self: Arc<Self>, id: String, coordinator: String) {
        let every = (self.members.lease() / 3).min(Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            if !self.held.lock().contains_key(&id) {
                return;
            }
            if let Ok(false) = self.members.is_live(&coordinator).await {
                let held = self.held.lock().remove(&id);
                if let Some(held) = held {
                    warn!(%coordinator, swap = %id, "the coordinator of a held swap left the cluster; rolling back");
                    held.roll_back().await;
                }
                return;
            }
        }
    }

    /// The component with content hash `code`: loaded here, or fetched
    /// from the cluster's object store.
    async fn component(
        &self,
        host: &Host,
        code: &str,
        name: &str,
        version: Option<String>,
    ) -> Result<Arc<ActorComponent>, String> {
        let hash = blake3::Hash::from_hex(code).map_err(|e| format!("the code hash `{code}`: {e}"))?;
        if let Some(component) = host.component_by_hash(&hash)
            && component.name == name
            && component.version == version
        {
            return Ok(component);
        }
        super::serve::fetch(&self.components, host, code, name, version).await.map_err(|e| format!("the new code: {e}"))
    }
}
