//! Monitors and links across hosts.
//!
//! An actor that monitors or links to an actor of another host asks that
//! host to watch it (a `watch` request on the actor's subject, like a
//! message; `remote.rs`). That host records the watcher on the actor (see
//! `crate::actor`'s `links.rs`) and, when the actor goes down, publishes
//! the notice on the watcher's host's down subject, where
//! [`Watches::answer_downs`] hands it on as a local one. A link is a watch
//! on each end, so a failure goes either way.
//!
//! A host that dies sends nothing. So each host also keeps, by node, the
//! watches it shares with the others ([`Watches`]): when the membership
//! loses a node (`failover.rs`), its actors' monitors here get a last
//! notice, a `host-lost` failure, their links fail (or tell) the actors
//! here as a local failure would, and its actors' watches of actors here
//! are dropped. The actors hold the truth of which watches exist; this
//! table only says where to look, so an entry whose watch ended already
//! delivers nothing.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tracing::{debug, info};

use crate::actor::remote::{RemoteDown, RemoteWatch};
use crate::actor::{ActorRef, DownNotice, DownReason, Failure, FailureKind};
use crate::host::{Host, WeakHost};
use crate::message::Address;
use crate::sync::Mutex;

/// The payload of a `watch` or `unwatch` request: who watches, from
/// which host (the envelope's `from` is the watching actor).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchRequest {
    /// The watching host.
    pub node: String,
    /// The watch's id on that host.
    pub id: u64,
    /// A link rather than a monitor.
    pub link: bool,
}

/// The payload of a `watch` request's reply: the host that watches.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchReply {
    /// The node of the watched actor's host.
    pub node: String,
}

/// A `down` notice on its way to another host.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DownMessage {
    /// The host of the actor that went down.
    from_node: String,
    down: RemoteDown,
}

/// What a watch shared with another host is, from this host's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// An actor here monitors one there.
    Monitors,
    /// An actor there monitors one here.
    WatchedBy,
    /// An actor here and one there are linked.
    Linked,
}

/// One watch shared with another host.
#[derive(Debug, Clone)]
struct Shared {
    role: Role,
    /// The actor of this host.
    local: Address,
    /// The actor of the other.
    remote: Address,
    /// The watch's id (the watching host's).
    id: u64,
}

/// The watches this host shares with each other host, by node.
pub struct Watches {
    node: String,
    shared: Mutex<HashMap<String, Vec<Shared>>>,
}

impl Watches {
    /// The table of host `node` (this one).
    pub fn new(node: &str) -> Self {
        Watches { node: node.to_string(), shared: Mutex::default() }
    }

    /// This host's node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// `watch`, by an actor here, of `target` on host `node` has begun.
    pub fn watching(&self, node: &str, target: &str, watch: &RemoteWatch) {
        let role = if watch.link { Role::Linked } else { Role::Monitors };
        let entry = Shared { role, local: watch.watcher.clone(), remote: target.into(), id: watch.id };
        self.shared.lock().entry(node.to_string()).or_default().push(entry);
    }

    /// Forgets the watch `id` this host made, wherever its target is.
    pub fn unwatched(&self, id: u64) {
        for entries in self.shared.lock().values_mut() {
            entries.retain(|e| e.role == Role::WatchedBy || e.id != id);
        }
    }

    /// Answers a `watch` (`watch` true) or `unwatch` request from
    /// `watcher`, of host `request.node`, for `actor` here: the reply's
    /// payload.
    pub fn answer(&self, actor: &ActorRef, watcher: Address, request: WatchRequest, watch: bool) -> Vec<u8> {
        let mut shared = self.shared.lock();
        let entries = shared.entry(request.node.clone()).or_default();
        if !watch {
            let known = actor.remove_remote_watcher(&request.node, request.id);
            entries.retain(|e| e.role == Role::Monitors || e.id != request.id);
            return serde_json::to_vec(&known).unwrap_or_default();
        }
        let role = if request.link { Role::Linked } else { Role::WatchedBy };
        entries.push(Shared { role, local: actor.address().clone(), remote: watcher.clone(), id: request.id });
        actor.add_remote_watcher(request.id, watcher, request.node, request.link);
        serde_json::to_vec(&WatchReply { node: self.node.clone() }).unwrap_or_default()
    }

    /// The message that carries `down` to its watcher's host.
    pub fn down_message(&self, down: RemoteDown) -> Vec<u8> {
        serde_json::to_vec(&DownMessage { from_node: self.node.clone(), down }).unwrap_or_default()
    }

    /// Hands on the `down` notices other hosts send to this one's actors,
    /// until the subscription or the host ends.
    pub async fn answer_downs(self: Arc<Self>, host: WeakHost, mut notices: async_nats::Subscriber) {
        while let Some(message) = notices.next().await {
            let Some(host) = host.upgrade() else { return };
            let DownMessage { from_node, down } = match serde_json::from_slice(&message.payload) {
                Ok(parsed) => parsed,
                Err(e) => {
                    debug!(error = %e, "a down notice that does not parse");
                    continue;
                }
            };
            if down.notice.gone {
                let mut shared = self.shared.lock();
                if let Some(entries) = shared.get_mut(&from_node) {
                    entries.retain(|e| e.id != down.id || e.local != down.to);
                }
            }
            if let Ok(actor) = host.lookup(down.to.as_str()) {
                actor.remote_down(&from_node, down);
            }
        }
    }

    /// Host `node` left the cluster without a word: the watches this host
    /// shared with it end, each monitor and link here told of a
    /// `host-lost` failure of the actor it watched there.
    pub fn host_lost(&self, host: &Host, node: &str) {
        let Some(entries) = self.shared.lock().remove(node) else { return };
        let failure = Failure::new(
            FailureKind::HostLost,
            format!(
                "its host `{node}` left the cluster without stopping it (it crashed, or was cut off past its lease)"
            ),
        );
        let mut told = 0;
        for entry in entries {
            let Ok(actor) = host.lookup(entry.local.as_str()) else { continue };
            if entry.role == Role::WatchedBy {
                actor.remove_remote_watcher(node, entry.id);
                continue;
            }
            let notice =
                DownNotice { address: entry.remote.clone(), reason: DownReason::Failed(failure.clone()), gone: true };
            let link = entry.role == Role::Linked;
            told += 1;
            actor.remote_down(
                node,
                RemoteDown { to: entry.local, id: entry.id, link, notice, chain: vec![entry.remote] },
            );
        }
        if told > 0 {
            info!(%node, watches = told, "the monitors and links of a lost host's actors were told");
        }
    }
}
