//! A supervisor at run time: a task that applies its
//! [`SupervisorSpec`](crate::supervision::SupervisorSpec) to its children
//! when one goes down, following the rules in [`crate::supervision`].
//!
//! Like an OTP supervisor process, it handles one event at a time, so its
//! decisions never race. Its children, restart log and status live in the
//! host's [`Tree`](super::tree::Tree); the task decides under the tree's
//! lock and acts (terminating, restarting, stopping children, which
//! awaits them) outside it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{Instrument, error, info, info_span, warn};

use super::HostInner;
use super::tree::{Child, ChildRef, NodeKind, NodeStatus, SupervisorInfo, TreeState};
use crate::actor::{Exit, Failure, FailureKind};
use crate::events::EventKind;
use crate::message::Address;
use crate::supervision::{IntensityCheck, Strategy, SupervisorSpec, restart_decision};

/// What a supervisor's task is asked to do.
enum Msg {
    /// A child went down.
    Down { child: Address, exit: Exit },
    /// A child stopped by itself: forget it.
    Forget { child: Address },
    /// Stop a child for good and say whether it was ours.
    StopChild { child: Address, ack: oneshot::Sender<bool> },
    /// Stop every child, then the supervisor.
    Stop { ack: Option<oneshot::Sender<()>> },
    /// End every child's incarnation (its own supervisor restarts it).
    Terminate { ack: oneshot::Sender<()> },
    /// Restart every child, after a termination.
    Restart { ack: oneshot::Sender<()> },
    /// The actor owning this supervisor restarted.
    OwnerRestarted { from_snapshot: bool },
}

struct Shared {
    address: Address,
    spec: SupervisorSpec,
    tx: mpsc::UnboundedSender<Msg>,
    done: watch::Sender<bool>,
    host: std::sync::Weak<HostInner>,
}

/// A handle to a supervisor. Cheap to clone.
#[derive(Clone)]
pub struct SupervisorRef(Arc<Shared>);

impl std::fmt::Debug for SupervisorRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SupervisorRef").field(&self.0.address).finish()
    }
}

impl SupervisorRef {
    /// Starts a supervisor's task. The caller puts it in the tree before
    /// anything can be sent to it.
    pub(crate) fn start(address: Address, spec: SupervisorSpec, host: &Arc<HostInner>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done, _) = watch::channel(false);
        let me = SupervisorRef(Arc::new(Shared { address, spec, tx, done, host: Arc::downgrade(host) }));
        let span = info_span!(parent: None, "supervisor", supervisor = %me.0.address);
        let task = Task { me: me.clone(), host: host.clone() };
        tokio::spawn(task.run(rx).instrument(span));
        me
    }

    /// Its address.
    pub fn address(&self) -> &Address {
        &self.0.address
    }

    /// Is this the same supervisor (not merely the same address)?
    pub fn same(&self, other: &SupervisorRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Its policy.
    pub fn spec(&self) -> &SupervisorSpec {
        &self.0.spec
    }

    /// Its state and children (none once it has stopped).
    pub fn info(&self) -> SupervisorInfo {
        let live = self.0.host.upgrade().and_then(|host| host.tree.info(self.address()));
        live.unwrap_or_else(|| SupervisorInfo {
            address: self.address().clone(),
            strategy: self.0.spec.strategy,
            recent_restarts: 0,
            intensity: self.0.spec.intensity,
            period_ms: self.0.spec.period.as_millis() as u64,
            status: NodeStatus::Stopped,
            children: Vec::new(),
        })
    }

    fn send(&self, msg: Msg) -> bool {
        self.0.tx.send(msg).is_ok()
    }

    /// A child went down.
    pub(crate) fn child_down(&self, child: &Address, exit: Exit) {
        self.send(Msg::Down { child: child.clone(), exit });
    }

    /// Forgets a child that stopped by itself.
    pub(crate) fn forget(&self, child: &Address) {
        self.send(Msg::Forget { child: child.clone() });
    }

    /// The owning actor restarted; keep its children only if it kept its
    /// state.
    pub(crate) fn owner_restarted(&self, from_snapshot: bool) {
        self.send(Msg::OwnerRestarted { from_snapshot });
    }

    /// Stops a child for good (no restart) and waits. False if unknown.
    pub(crate) async fn stop_child(&self, child: &Address) -> bool {
        let (ack, done) = oneshot::channel();
        if !self.send(Msg::StopChild { child: child.clone(), ack }) {
            return false;
        }
        done.await.unwrap_or(false)
    }

    /// Stops every child in reverse start order, then the supervisor, and
    /// waits.
    pub async fn stop(&self) {
        let (ack, done) = oneshot::channel();
        if self.send(Msg::Stop { ack: Some(ack) }) {
            let _ = done.await;
        }
        self.stopped().await;
    }

    /// Resolves once the supervisor has stopped.
    pub async fn stopped(&self) {
        let mut rx = self.0.done.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }

    async fn terminate(&self) {
        let (ack, done) = oneshot::channel();
        if self.send(Msg::Terminate { ack }) {
            let _ = done.await;
        }
    }

    async fn restart(&self) {
        let (ack, done) = oneshot::channel();
        if self.send(Msg::Restart { ack }) {
            let _ = done.await;
        }
    }
}

impl ChildRef {
    /// Stops the child for good and waits.
    async fn stop(&self) {
        match self {
            ChildRef::Actor(actor) => actor.stop_and_wait().await,
            ChildRef::Supervisor(node) => node.stop().await,
        }
    }

    /// Ends the child's incarnation (its whole subtree's, for a
    /// supervisor) and waits; it stays registered, down.
    async fn terminate(&self) {
        match self {
            ChildRef::Actor(actor) => actor.terminate().await,
            ChildRef::Supervisor(node) => node.terminate().await,
        }
    }

    /// Restarts the child after `delay`; waits for the outcome if `wait`
    /// (a supervisor child is always waited for).
    async fn restart(&self, delay: Duration, wait: bool) {
        match self {
            ChildRef::Actor(actor) => actor.restart(delay, wait).await,
            ChildRef::Supervisor(node) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                node.restart().await;
            }
        }
    }
}

/// What a supervisor decided about a child that went down.
enum Decision {
    /// Not (or no longer) its child.
    NotOurs,
    /// Its restart type says no: it is removed and stopped.
    Remove(ChildRef),
    /// One restart too many within the period.
    Escalate,
    /// Restart it alone.
    One { child: ChildRef, delay: Duration },
    /// Terminate the others (reverse start order), then restart them all
    /// in start order, each waited for.
    Many { terminate: Vec<ChildRef>, restart: Vec<(ChildRef, Duration)> },
}

/// A supervisor's task.
struct Task {
    me: SupervisorRef,
    host: Arc<HostInner>,
}

impl Task {
    fn address(&self) -> &Address {
        self.me.address()
    }

    /// Runs `f` on this supervisor's node, if it is still in the tree.
    fn with_node<R>(&self, f: impl FnOnce(&mut TreeState, &Address) -> R) -> R {
        self.host.tree.with(|t| f(t, self.me.address()))
    }

    async fn run(self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut stop_ack = None;
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Down { child, exit } => self.on_down(child, exit).await,
                Msg::Forget { child } => {
                    self.with_node(|t, me| t.remove_child(me, &child));
                }
                Msg::StopChild { child, ack } => {
                    let removed = self.with_node(|t, me| t.remove_child(me, &child));
                    let found = removed.is_some();
                    if let Some(removed) = removed {
                        removed.child.stop().await;
                    }
                    let _ = ack.send(found);
                }
                Msg::Stop { ack } => {
                    stop_ack = ack;
                    break;
                }
                Msg::Terminate { ack } => {
                    self.terminate_all().await;
                    self.set_status(NodeStatus::Down);
                    let _ = ack.send(());
                }
                Msg::Restart { ack } => {
                    self.set_status(NodeStatus::Running);
                    let children = self.with_node(|t, me| {
                        let Some(node) = t.node(me) else { return Vec::new() };
                        node.log.clear();
                        node.children
                            .iter_mut()
                            .map(|(_, c)| {
                                c.up = true;
                                c.child.clone()
                            })
                            .collect()
                    });
                    for child in children {
                        child.restart(Duration::ZERO, true).await;
                    }
                    let _ = ack.send(());
                }
                Msg::OwnerRestarted { from_snapshot: true } => {
                    let down = self.with_node(|t, me| {
                        let Some(node) = t.node(me) else { return Vec::new() };
                        node.children
                            .iter_mut()
                            .filter(|(_, c)| !c.up)
                            .map(|(_, c)| {
                                c.up = true;
                                c.child.clone()
                            })
                            .collect()
                    });
                    for child in down {
                        child.restart(Duration::ZERO, true).await;
                    }
                }
                // A fresh incarnation does not know its old children.
                Msg::OwnerRestarted { from_snapshot: false } => self.stop_all().await,
            }
        }
        self.stop_all().await;
        let kind = self.with_node(|t, me| {
            let kind = t.node(me).map(|n| n.kind.clone());
            t.remove_supervisor(&self.me);
            kind
        });
        self.me.0.done.send_replace(true);
        if !matches!(kind, Some(NodeKind::Owned(_))) {
            self.host.events.publish(self.address(), EventKind::Stopped { reason: "stopped".into() });
        }
        if let Some(ack) = stop_ack {
            let _ = ack.send(());
        }
    }

    fn set_status(&self, status: NodeStatus) {
        self.with_node(|t, me| {
            if let Some(node) = t.node(me) {
                node.status = status;
            }
        });
    }

    /// Stops every child for good, in reverse start order.
    async fn stop_all(&self) {
        loop {
            let last = self.with_node(|t, me| {
                let address = t.node(me)?.children.last().map(|(a, _)| a.clone())?;
                t.remove_child(me, &address)
            });
            match last {
                Some(child) => child.child.stop().await,
                None => return,
            }
        }
    }

    /// Ends every child's incarnation, in reverse start order.
    async fn terminate_all(&self) {
        let up = self.with_node(|t, me| {
            let Some(node) = t.node(me) else { return Vec::new() };
            node.children
                .iter_mut()
                .rev()
                .filter(|(_, c)| c.up)
                .map(|(_, c)| {
                    c.up = false;
                    c.child.clone()
                })
                .collect()
        });
        for child in up {
            child.terminate().await;
        }
    }

    async fn on_down(&self, child: Address, exit: Exit) {
        let now = Instant::now();
        let spec = self.me.spec().clone();
        let mut events = Vec::new();
        let decision = self.with_node(|t, me| {
            let Some(node) = t.node(me) else { return Decision::NotOurs };
            let Some(entry) = node.children.get_mut(&child) else { return Decision::NotOurs };
            entry.up = false;
            if let Exit::Failed(failure) = &exit {
                entry.last_failure = Some(failure.clone());
            }
            if !restart_decision(entry.restart, matches!(exit, Exit::Failed(_))) {
                info!(child = %child, restart = ?entry.restart, "not restarting");
                return t.remove_child(me, &child).map_or(Decision::NotOurs, |c| Decision::Remove(c.child));
            }
            if node.log.add_restart(now, spec.intensity()) == IntensityCheck::Escalate {
                return Decision::Escalate;
            }
            let Some(entry) = node.children.get_mut(&child) else { return Decision::NotOurs };
            let delay = entry.backoff.next_delay(now, &spec.backoff, fastrand::f64());
            entry.restarts += 1;
            events.push((
                child.clone(),
                EventKind::Restarting {
                    attempt: entry.backoff.attempt(),
                    delay_ms: delay.as_millis() as u64,
                    supervisor: me.clone(),
                },
            ));
            if matches!(spec.strategy, Strategy::OneForOne | Strategy::Pool) {
                entry.up = true;
                return Decision::One { child: entry.child.clone(), delay };
            }
            // The children restarted together: all of them, or the one
            // that failed and those started after it.
            let mut together: Vec<(&Address, &mut Child)> = match spec.strategy {
                Strategy::OneForAll => node.children.iter_mut().collect(),
                _ => node.children.rest_mut(&child).collect(),
            };
            if together.len() == 1 {
                let (_, entry) = &mut together[0];
                entry.up = true;
                return Decision::One { child: entry.child.clone(), delay };
            }
            let mut terminate = Vec::new();
            for (address, other) in together.iter_mut().rev() {
                if **address != child && other.up {
                    other.up = false;
                    terminate.push(other.child.clone());
                }
            }
            let mut restart = Vec::new();
            for (address, other) in together {
                other.up = true;
                let failed = *address == child;
                if !failed {
                    other.restarts += 1;
                    events.push((
                        address.clone(),
                        EventKind::Restarting { attempt: 1, delay_ms: 0, supervisor: me.clone() },
                    ));
                }
                restart.push((other.child.clone(), if failed { delay } else { Duration::ZERO }));
            }
            Decision::Many { terminate, restart }
        });
        for (address, event) in events {
            self.host.events.publish(&address, event);
        }
        match decision {
            Decision::NotOurs => {}
            Decision::Remove(child) => child.stop().await,
            Decision::Escalate => self.escalate(&child, &exit).await,
            Decision::One { child, delay } => child.restart(delay, false).await,
            Decision::Many { terminate, restart } => {
                for child in terminate {
                    child.terminate().await;
                }
                for (child, delay) in restart {
                    child.restart(delay, true).await;
                }
            }
        }
    }

    /// Too many restarts: give up on the children and fail upwards.
    async fn escalate(&self, child: &Address, exit: &Exit) {
        let spec = self.me.spec();
        let cause = match exit {
            Exit::Failed(f) => format!("; last failure: `{child}` {f}"),
            Exit::Normal => format!("; last: `{child}` exited"),
        };
        let detail = format!(
            "supervisor `{}` exceeded its intensity ({} restarts in {} ms){cause}",
            self.address(),
            spec.intensity,
            spec.period.as_millis()
        );
        error!(%detail, "escalating");
        self.host.events.publish(
            self.address(),
            EventKind::Escalated { restarts: spec.intensity, period_ms: spec.period.as_millis() as u64 },
        );
        let failure = Failure::new(FailureKind::Escalated, detail);
        let kind = self.with_node(|t, me| t.node(me).map(|n| n.kind.clone()));
        match kind {
            // The root has nobody to escalate to: it gives up on the
            // offending top-level child only, and keeps the rest.
            Some(NodeKind::Root(policy)) => {
                let removed = self.with_node(|t, me| {
                    if let Some(node) = t.node(me) {
                        node.log.clear();
                    }
                    t.remove_child(me, child)
                });
                if let Some(removed) = removed {
                    removed.child.stop().await;
                }
                warn!(%child, ?policy, "the root gave up on a top-level child");
                self.host.root_gave_up(child, &failure, policy);
            }
            Some(NodeKind::Named) => {
                self.terminate_all().await;
                self.set_status(NodeStatus::Down);
                self.host.events.publish(self.address(), EventKind::failed(&failure));
                // Its own supervisor applies its policy to this subtree.
                if let Some(parent) = self.host.tree.parent_of(self.address()) {
                    parent.child_down(self.address(), Exit::Failed(failure));
                }
            }
            Some(NodeKind::Owned(owner)) => {
                self.terminate_all().await;
                owner.fail(failure, Box::default());
            }
            None => {}
        }
    }
}
