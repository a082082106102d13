//! Monitors and links.
//!
//! An actor (or the host) may *monitor* another: each time the other goes
//! down, the watcher gets a `down` notice (address, reason, whether it is
//! gone for good). Two actors may be *linked*: when one fails, the other
//! fails too (a `linked` failure), unless it exports
//! `troupe:actor/watcher`, in which case it gets a `down` notice instead,
//! like an Erlang process trapping exits. Linked failures propagate along
//! chains of links but never back to an actor already in the chain.
//!
//! Notices are delivered between messages, through the watcher's control
//! queue; one that arrives while the watcher has no incarnation waits for
//! its next one.
//!
//! In a cluster, either end may be on another host ([`Watcher::Remote`]):
//! the watched actor's host sends the notice to the watcher's over the
//! [`RemoteActors`](crate::actor::remote::RemoteActors) port, and the
//! watcher's host hands it on as it would a local one
//! ([`ActorRef::remote_down`]). A link across hosts is a pair of remote
//! watches, one on each end.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::Cell;
use super::phase::Phase;
use crate::actor::incarnation::Incarnation;
use crate::actor::remote::RemoteDown;
use crate::actor::{ActorRef, Failure, FailureKind};
use crate::message::Address;

/// A notice that a watched actor went down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownNotice {
    /// The actor that went down.
    pub address: Address,
    /// Why.
    pub reason: DownReason,
    /// Gone for good (true), or being restarted by its supervisor (false).
    pub gone: bool,
}

/// Why an actor went down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DownReason {
    /// It stopped itself, or was stopped or terminated.
    Stopped,
    /// It failed.
    Failed(Failure),
}

/// Who wants to hear when an actor goes down.
#[derive(Debug, Clone)]
pub(crate) enum Watcher {
    /// An actor's `watcher.down` export (a monitor).
    Actor { id: u64, watcher: Address },
    /// A host-side monitor (tests, embedders).
    Host { id: u64, tx: mpsc::UnboundedSender<DownNotice> },
    /// An actor of another host of the cluster, on host `node`: a monitor
    /// (`link` false) or the far end of a link. `id` is the watch's id on
    /// that host.
    Remote { id: u64, watcher: Address, node: String, link: bool },
}

/// Monitor ids are unique across the host, so that a watcher can cancel a
/// monitor by id alone.
static NEXT_MONITOR: AtomicU64 = AtomicU64::new(1);

impl ActorRef {
    /// Watches this actor from the host: the receiver gets a notice each
    /// time it goes down. Returns the monitor id and the receiver.
    pub fn monitor(&self) -> (u64, mpsc::UnboundedReceiver<DownNotice>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = next_watch_id();
        self.0.watchers.lock().push(Watcher::Host { id, tx });
        (id, rx)
    }

    /// Makes `watcher` monitor this actor; returns the monitor id.
    pub(crate) fn add_monitor(&self, watcher: &ActorRef) -> u64 {
        let id = next_watch_id();
        self.0.watchers.lock().push(Watcher::Actor { id, watcher: watcher.address().clone() });
        watcher.0.monitoring.lock().push((id, self.address().clone()));
        id
    }

    /// Records that this actor monitors `target`, on another host, with
    /// monitor `id` (see [`next_watch_id`]).
    pub(crate) fn monitors_remote(&self, id: u64, target: Address) {
        self.0.monitoring.lock().push((id, target));
    }

    /// Makes `watcher`, an actor of host `node`, watch this actor: a
    /// monitor, or (`link`) the far end of a link, which is made once.
    pub(crate) fn add_remote_watcher(&self, id: u64, watcher: Address, node: String, link: bool) {
        let mut watchers = self.0.watchers.lock();
        let linked = |w: &Watcher| matches!(w, Watcher::Remote { watcher: a, link: true, .. } if *a == watcher);
        if link && watchers.iter().any(linked) {
            return;
        }
        watchers.push(Watcher::Remote { id, watcher, node, link });
    }

    /// Removes the watch `id` of host `node`; false if unknown.
    #[cfg(feature = "cluster")]
    pub(crate) fn remove_remote_watcher(&self, node: &str, id: u64) -> bool {
        let mut watchers = self.0.watchers.lock();
        let before = watchers.len();
        watchers.retain(|w| !matches!(w, Watcher::Remote { id: i, node: n, .. } if *i == id && n == node));
        watchers.len() != before
    }

    /// Removes this actor's link to `peer`, an actor of another host:
    /// the link's id, if there was one.
    pub(crate) fn remove_remote_link(&self, peer: &Address) -> Option<u64> {
        let mut watchers = self.0.watchers.lock();
        let i = watchers
            .iter()
            .position(|w| matches!(w, Watcher::Remote { watcher, link: true, .. } if watcher == peer))?;
        match watchers.remove(i) {
            Watcher::Remote { id, .. } => Some(id),
            _ => None,
        }
    }

    /// Hands on a notice from host `node` about an actor this one watches
    /// there: to the `watcher` export for a monitor (ending it when the
    /// actor is gone); for a link, as a local link would: a failure fails
    /// this actor unless it exports `watcher`. A notice for a watch this
    /// actor no longer has (it ended it meanwhile) is dropped.
    #[cfg(feature = "cluster")]
    pub(crate) fn remote_down(&self, node: &str, down: RemoteDown) {
        let known =
            match (down.link, down.notice.gone) {
                (false, true) => self.take_monitoring(down.id).is_some(),
                (false, false) => self.0.monitoring.lock().iter().any(|(id, _)| *id == down.id),
                (true, true) => self.remove_remote_watcher(node, down.id),
                (true, false) => self.0.watchers.lock().iter().any(
                    |w| matches!(w, Watcher::Remote { id, node: n, link: true, .. } if *id == down.id && n == node),
                ),
            };
        if !known {
            return;
        }
        if down.link {
            self.linked_down(down.notice, down.chain);
        } else {
            self.notify(down.notice);
        }
    }

    /// This actor's peer went down (`notice`): a watcher is told; a
    /// failure fails one that does not watch, with `chain` (the link path
    /// so far, the peer last).
    fn linked_down(&self, notice: DownNotice, chain: Vec<Address>) {
        if self.component().exports_watcher() {
            self.notify(notice);
        } else if let DownReason::Failed(failure) = &notice.reason {
            let peer = &notice.address;
            let linked = Failure::new(FailureKind::Linked, format!("linked actor `{peer}` failed: {failure}"));
            self.fail(linked, chain.into_boxed_slice());
        }
    }

    /// Which actor this actor's monitor `id` watches, forgetting it.
    pub(crate) fn take_monitoring(&self, id: u64) -> Option<Address> {
        let mut monitoring = self.0.monitoring.lock();
        let i = monitoring.iter().position(|(m, _)| *m == id)?;
        Some(monitoring.remove(i).1)
    }

    /// Removes a monitor of this host by id; false if unknown.
    pub fn demonitor(&self, id: u64) -> bool {
        let mut watchers = self.0.watchers.lock();
        let before = watchers.len();
        watchers.retain(|w| match w {
            Watcher::Actor { id: i, .. } | Watcher::Host { id: i, .. } => *i != id,
            Watcher::Remote { .. } => true,
        });
        watchers.len() != before
    }

    /// Links this actor and `other` (both directions).
    pub fn link(&self, other: &ActorRef) {
        if self.same(other) {
            return;
        }
        for (a, b) in [(self, other), (other, self)] {
            let mut links = a.0.links.lock();
            if !links.contains(b.address()) {
                links.push(b.address().clone());
            }
        }
    }

    /// Removes the link between this actor and `other`; false if none.
    pub fn unlink(&self, other: &ActorRef) -> bool {
        let mut removed = false;
        for (a, b) in [(self, other), (other, self)] {
            let mut links = a.0.links.lock();
            let before = links.len();
            links.retain(|l| l != b.address());
            removed |= links.len() != before;
        }
        removed
    }

    /// The actors linked to this one, on this host and others.
    pub fn links(&self) -> Vec<Address> {
        let mut links = self.0.links.lock().clone();
        for watcher in self.0.watchers.lock().iter() {
            if let Watcher::Remote { watcher, link: true, .. } = watcher {
                links.push(watcher.clone());
            }
        }
        links
    }
}

/// A new monitor or link id: unique across the host, so that a watcher
/// can cancel a monitor by id alone.
pub(crate) fn next_watch_id() -> u64 {
    NEXT_MONITOR.fetch_add(1, Ordering::Relaxed)
}

impl Cell {
    /// Tells monitors and links that this actor went down. A failure fails
    /// linked actors that do not watch (never one already in `chain`).
    pub(super) fn notify_down(&self, reason: DownReason, gone: bool, chain: &[Address]) {
        let me = self.address();
        let notice = DownNotice { address: me.clone(), reason: reason.clone(), gone };
        // The link path a failure goes on along: `chain`, then this actor.
        let onward = || chain.iter().chain([me]).cloned().collect::<Vec<_>>();
        let watchers = self.me.0.watchers.lock().clone();
        for watcher in watchers {
            match watcher {
                Watcher::Actor { watcher, .. } => {
                    if let Some(w) = self.system.lookup(watcher.as_str()) {
                        w.notify(notice.clone());
                    }
                }
                Watcher::Host { tx, .. } => {
                    let _ = tx.send(notice.clone());
                }
                Watcher::Remote { id, watcher, node, link } => {
                    if link && chain.contains(&watcher) {
                        continue;
                    }
                    if let Some(remote) = self.system.remote() {
                        let down = RemoteDown {
                            to: watcher,
                            id,
                            link,
                            notice: notice.clone(),
                            chain: if link { onward() } else { Vec::new() },
                        };
                        remote.down(&node, down);
                    }
                }
            }
        }
        if gone {
            self.me.0.watchers.lock().clear();
        }
        for peer in self.me.0.links.lock().clone() {
            if chain.contains(&peer) {
                continue;
            }
            let Some(p) = self.system.lookup(peer.as_str()) else { continue };
            p.linked_down(notice.clone(), onward());
            if gone {
                p.0.links.lock().retain(|l| l != me);
            }
        }
    }

    /// Hands `notice` to the incarnation's `watcher.down` export. If that
    /// fails, the actor fails (on probation: back to the old code).
    pub(super) async fn notify_watcher(&mut self, phase: Phase, notice: DownNotice) -> Phase {
        match phase {
            Phase::Running(mut inc) => match inc.down(&self.me, &notice).await {
                Ok(()) => Phase::Running(inc),
                Err(failure) => {
                    drop(inc);
                    let failure = self.explain(failure);
                    self.go_down(failure, &[])
                }
            },
            Phase::Probation(mut inc, trial) => match inc.down(&self.me, &notice).await {
                Ok(()) => Phase::Probation(inc, trial),
                Err(failure) if !trial.passed() => {
                    drop(inc);
                    let failure = self.explain(failure);
                    Phase::Running(self.roll_back(trial, Some(failure)))
                }
                Err(failure) => {
                    drop((inc, trial));
                    let failure = self.explain(failure);
                    self.go_down(failure, &[])
                }
            },
            other => {
                self.held_notices.push_back(notice);
                other
            }
        }
    }

    /// Delivers the notices held while the actor had no incarnation, in
    /// order, to its new one.
    pub(super) async fn deliver_held_notices(&mut self, inc: Incarnation) -> Phase {
        let mut phase = Phase::Running(inc);
        while let Some(notice) = self.held_notices.pop_front() {
            phase = self.notify_watcher(phase, notice).await;
            if !matches!(phase, Phase::Running(_)) {
                break;
            }
        }
        phase
    }
}
