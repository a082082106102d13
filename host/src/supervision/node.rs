//! A supervisor at run time: a task that owns an ordered list of children
//! and applies its [`SupervisorSpec`] when one goes down.
//!
//! Like an OTP supervisor process, it handles one event at a time, so its
//! decisions never race. It talks to actor cells through their control
//! channels and to child supervisors through their queues; it reaches the
//! rest of the host through [`SupervisorHost`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{Instrument, error, info, info_span, warn};

use super::policy::{
    BackoffState, IntensityCheck, RestartLog, RestartType, RootPolicy, Strategy, SupervisorSpec, restart_decision,
};
use crate::actor::{ActorInfo, ActorRef, Control, Exit};
use crate::engine::{Failure, FailureKind};
use crate::events::{EventBus, EventKind};
use crate::message::Address;

/// What a supervisor needs from the host around it.
pub(crate) trait SupervisorHost: Send + Sync + 'static {
    /// The event bus.
    fn events(&self) -> &EventBus;
    /// A child (actor or supervisor) was removed from its supervisor.
    fn child_removed(&self, child: &Address);
    /// A supervisor stopped for good.
    fn supervisor_stopped(&self, node: &SupervisorRef);
    /// The root gave up on a top-level child.
    fn root_gave_up(&self, child: &Address, failure: &Failure);
    /// A named supervisor escalated: tell its own supervisor.
    fn supervisor_escalated(&self, node: &SupervisorRef, failure: Failure);
}

/// Where a supervisor sits.
#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    /// The host's root supervisor.
    Root(RootPolicy),
    /// A named supervisor under another one.
    Named,
    /// The supervisor of an actor's children; the actor has the same address.
    Owned(ActorRef),
}

/// A child: an actor, or a supervisor.
#[derive(Debug, Clone)]
pub(crate) enum ChildRef {
    Actor(ActorRef),
    Supervisor(SupervisorRef),
}

struct ChildEntry {
    address: Address,
    child: ChildRef,
    restart: RestartType,
    backoff: BackoffState,
    restarts: u64,
    last_failure: Option<Failure>,
    up: bool,
}

/// A child added since the task last looked (see [`SupervisorRef::add`]).
struct NewChild {
    address: Address,
    child: ChildRef,
    restart: RestartType,
}

enum NodeMsg {
    Down { child: Address, exit: Exit },
    Forget { child: Address },
    StopChild { child: Address, ack: oneshot::Sender<bool> },
    Stop { ack: Option<oneshot::Sender<()>> },
    Terminate { ack: oneshot::Sender<()> },
    Restart { ack: oneshot::Sender<()> },
    OwnerRestarted { from_snapshot: bool },
}

/// A supervisor's children as `troupe tree` shows them.
#[derive(Debug, Clone, Serialize)]
pub struct ChildInfo {
    /// The child's address.
    pub address: Address,
    /// `actor` or `supervisor`.
    pub kind: &'static str,
    /// Its restart type.
    pub restart: RestartType,
    /// Restarts by this supervisor.
    pub restarts: u64,
    /// The last failure this supervisor saw.
    pub last_failure: Option<Failure>,
}

/// A supervisor's state as `troupe tree` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SupervisorInfo {
    /// Its address.
    pub address: Address,
    /// Its strategy.
    pub strategy: Strategy,
    /// Restarts within the current intensity window.
    pub recent_restarts: usize,
    /// Restarts allowed within the window.
    pub intensity: u32,
    /// The window, in milliseconds.
    pub period_ms: u64,
    /// `running`, `down` (escalated, waiting for its supervisor), or
    /// `stopped`.
    pub status: &'static str,
    /// Its children, in start order.
    pub children: Vec<ChildInfo>,
}

/// One node of `troupe tree`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum TreeNode {
    /// A supervisor and its children.
    Supervisor {
        /// The supervisor.
        #[serde(flatten)]
        info: SupervisorInfo,
        /// Its children as tree nodes.
        nodes: Vec<TreeNode>,
    },
    /// An actor, and the children it supervises.
    Actor {
        /// The actor.
        #[serde(flatten)]
        info: Box<ActorInfo>,
        /// Its restart type under its supervisor.
        restart: RestartType,
        /// Restarts by its supervisor.
        restarts_by_supervisor: u64,
        /// The children it supervises.
        nodes: Vec<TreeNode>,
    },
}

struct NodeShared {
    address: Address,
    kind: NodeKind,
    spec: SupervisorSpec,
    tx: mpsc::UnboundedSender<NodeMsg>,
    view: Mutex<SupervisorInfo>,
    /// Children added but not yet in the task's list, in the view's order.
    new_children: Mutex<Vec<NewChild>>,
    done: watch::Sender<bool>,
}

/// A handle to a supervisor. Cheap to clone.
#[derive(Clone)]
pub struct SupervisorRef(Arc<NodeShared>);

impl std::fmt::Debug for SupervisorRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SupervisorRef").field(&self.0.address).finish()
    }
}

impl SupervisorRef {
    /// Starts a supervisor task.
    pub(crate) fn start(address: Address, kind: NodeKind, spec: SupervisorSpec, host: Arc<dyn SupervisorHost>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done, _) = watch::channel(false);
        let view = SupervisorInfo {
            address: address.clone(),
            strategy: spec.strategy,
            recent_restarts: 0,
            intensity: spec.intensity,
            period_ms: spec.period.as_millis() as u64,
            status: "running",
            children: Vec::new(),
        };
        let node = SupervisorRef(Arc::new(NodeShared {
            address,
            kind,
            spec,
            tx,
            view: Mutex::new(view),
            new_children: Mutex::new(Vec::new()),
            done,
        }));
        let span = info_span!(parent: None, "supervisor", supervisor = %node.0.address);
        let task = Node { me: node.clone(), host, children: IndexMap::new(), log: RestartLog::default() };
        tokio::spawn(task.run(rx).instrument(span));
        node
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

    pub(crate) fn kind(&self) -> &NodeKind {
        &self.0.kind
    }

    /// Its state and children.
    pub fn info(&self) -> SupervisorInfo {
        lock(&self.0.view).clone()
    }

    /// Number of children.
    pub fn child_count(&self) -> usize {
        lock(&self.0.view).children.len()
    }

    fn send(&self, msg: NodeMsg) -> bool {
        self.0.tx.send(msg).is_ok()
    }

    /// Adds a child, last in start order.
    pub(crate) fn add(&self, address: Address, child: ChildRef, restart: RestartType) {
        // Reflect it in the view at once, so that quotas count it. The task
        // is not woken: it takes new children before it handles its next
        // message, and every message about this child is sent after this
        // call. Waking it here would put a second task beside the new
        // actor's on this worker's run queue, and tokio then wakes another
        // worker for it, a cross-core wake-up on every spawn. The child is
        // queued under the view's lock, so the task adds children in the
        // view's order and the view's first entries mirror the task's list
        // index for index (see `Node::remove`).
        let mut view = lock(&self.0.view);
        view.children.push(ChildInfo {
            address: address.clone(),
            kind: match child {
                ChildRef::Actor(_) => "actor",
                ChildRef::Supervisor(_) => "supervisor",
            },
            restart,
            restarts: 0,
            last_failure: None,
        });
        lock(&self.0.new_children).push(NewChild { address, child, restart });
    }

    /// Its first child, if any.
    pub(crate) fn first_child(&self) -> Option<Address> {
        lock(&self.0.view).children.first().map(|c| c.address.clone())
    }

    /// A child went down.
    pub(crate) fn child_down(&self, child: &Address, exit: Exit) {
        self.send(NodeMsg::Down { child: child.clone(), exit });
    }

    /// Forgets a child that stopped by itself.
    pub(crate) fn forget(&self, child: &Address) {
        self.send(NodeMsg::Forget { child: child.clone() });
    }

    /// The owning actor restarted; keep its children only if it kept its state.
    pub(crate) fn owner_restarted(&self, from_snapshot: bool) {
        self.send(NodeMsg::OwnerRestarted { from_snapshot });
    }

    /// Stops a child for good (no restart) and waits. False if unknown.
    pub(crate) async fn stop_child(&self, child: &Address) -> bool {
        let (ack, done) = oneshot::channel();
        if !self.send(NodeMsg::StopChild { child: child.clone(), ack }) {
            return false;
        }
        done.await.unwrap_or(false)
    }

    /// Stops every child in reverse start order, then the supervisor, and
    /// waits.
    pub async fn stop(&self) {
        let (ack, done) = oneshot::channel();
        if self.send(NodeMsg::Stop { ack: Some(ack) }) {
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
        if self.send(NodeMsg::Terminate { ack }) {
            let _ = done.await;
        }
    }

    async fn restart(&self) {
        let (ack, done) = oneshot::channel();
        if self.send(NodeMsg::Restart { ack }) {
            let _ = done.await;
        }
    }
}

impl ChildRef {
    /// Stops the child for good and waits.
    async fn stop(&self) {
        match self {
            ChildRef::Actor(actor) => {
                let (ack, done) = oneshot::channel();
                if actor.control(Control::Stop { ack: Some(ack) }) {
                    let _ = done.await;
                }
            }
            ChildRef::Supervisor(node) => node.stop().await,
        }
    }

    /// Ends the child's incarnation (its whole subtree's, for a
    /// supervisor) and waits; it stays registered, down.
    async fn terminate(&self) {
        match self {
            ChildRef::Actor(actor) => {
                let (ack, done) = oneshot::channel();
                if actor.control(Control::Terminate { ack }) {
                    let _ = done.await;
                }
            }
            ChildRef::Supervisor(node) => node.terminate().await,
        }
    }

    /// Restarts the child after `delay`; waits for the outcome if `wait`.
    async fn restart(&self, delay: Duration, wait: bool) {
        match self {
            ChildRef::Actor(actor) => {
                if wait {
                    let (ack, done) = oneshot::channel();
                    if actor.control(Control::Restart { delay, ack: Some(ack) }) {
                        let _ = done.await;
                    }
                } else {
                    actor.control(Control::Restart { delay, ack: None });
                }
            }
            ChildRef::Supervisor(node) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                node.restart().await;
            }
        }
    }
}

struct Node {
    me: SupervisorRef,
    host: Arc<dyn SupervisorHost>,
    /// In start order. Keyed by address: a supervisor with 100,000 children
    /// finds the one that went down without a scan.
    children: IndexMap<Address, ChildEntry>,
    log: RestartLog,
}

impl Node {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<NodeMsg>) {
        let mut stop_ack = None;
        while let Some(msg) = rx.recv().await {
            self.take_new_children();
            match msg {
                NodeMsg::Down { child, exit } => self.on_down(child, exit).await,
                NodeMsg::Forget { child } => {
                    if let Some(i) = self.position(&child) {
                        self.remove(i);
                        self.host.child_removed(&child);
                    }
                }
                NodeMsg::StopChild { child, ack } => {
                    let found = match self.position(&child) {
                        Some(i) => {
                            let entry = self.remove(i);
                            entry.child.stop().await;
                            self.host.child_removed(&child);
                            true
                        }
                        None => false,
                    };
                    let _ = ack.send(found);
                }
                NodeMsg::Stop { ack } => {
                    stop_ack = ack;
                    break;
                }
                NodeMsg::Terminate { ack } => {
                    self.terminate_all().await;
                    self.set_status("down");
                    let _ = ack.send(());
                }
                NodeMsg::Restart { ack } => {
                    self.log.clear();
                    self.set_status("running");
                    for i in 0..self.children.len() {
                        self.children[i].up = true;
                        self.children[i].child.restart(Duration::ZERO, true).await;
                    }
                    let _ = ack.send(());
                }
                NodeMsg::OwnerRestarted { from_snapshot } => {
                    if from_snapshot {
                        for i in 0..self.children.len() {
                            if !self.children[i].up {
                                self.children[i].up = true;
                                self.children[i].child.restart(Duration::ZERO, true).await;
                            }
                        }
                    } else {
                        // A fresh incarnation does not know its old children.
                        self.stop_all().await;
                    }
                }
            }
            lock(&self.me.0.view).recent_restarts = self.log.len();
        }
        self.take_new_children();
        self.stop_all().await;
        self.set_status("stopped");
        self.me.0.done.send_replace(true);
        self.host.supervisor_stopped(&self.me);
        if !matches!(self.me.kind(), NodeKind::Owned(_)) {
            self.host.events().publish(self.me.address(), EventKind::Stopped { reason: "stopped".into() });
        }
        if let Some(ack) = stop_ack {
            let _ = ack.send(());
        }
    }

    /// Appends the children added since the last look, in start order.
    fn take_new_children(&mut self) {
        let new_children = std::mem::take(&mut *lock(&self.me.0.new_children));
        for NewChild { address, child, restart } in new_children {
            let entry = ChildEntry {
                address: address.clone(),
                child,
                restart,
                backoff: BackoffState::default(),
                restarts: 0,
                last_failure: None,
                up: true,
            };
            // An address is registered until its old entry is removed, so
            // it cannot be here twice; if it were, the old entry goes,
            // keeping the view in step.
            if let Some(old) = self.position(&address) {
                self.remove(old);
            }
            self.children.insert(address, entry);
        }
    }

    fn position(&self, child: &Address) -> Option<usize> {
        self.children.get_index_of(child)
    }

    /// Removes child `i`, from the view too.
    fn remove(&mut self, i: usize) -> ChildEntry {
        let mut view = lock(&self.me.0.view);
        if view.children.get(i).is_some_and(|c| c.address == self.children[i].address) {
            view.children.remove(i);
        }
        drop(view);
        let (_, entry) = self.children.shift_remove_index(i).expect("removing a child by its index");
        entry
    }

    /// Copies child `i`'s restart count and last failure to the view.
    fn publish(&self, i: usize) {
        let entry = &self.children[i];
        let mut view = lock(&self.me.0.view);
        if let Some(info) = view.children.get_mut(i).filter(|c| c.address == entry.address) {
            info.restarts = entry.restarts;
            info.last_failure.clone_from(&entry.last_failure);
        }
    }

    fn set_status(&self, status: &'static str) {
        lock(&self.me.0.view).status = status;
    }

    /// Stops every child for good, in reverse start order.
    async fn stop_all(&mut self) {
        while !self.children.is_empty() {
            let entry = self.remove(self.children.len() - 1);
            entry.child.stop().await;
            self.host.child_removed(&entry.address);
        }
    }

    /// Ends every child's incarnation, in reverse start order.
    async fn terminate_all(&mut self) {
        for i in (0..self.children.len()).rev() {
            if self.children[i].up {
                self.children[i].up = false;
                self.children[i].child.terminate().await;
            }
        }
    }

    async fn on_down(&mut self, child: Address, exit: Exit) {
        let Some(i) = self.position(&child) else {
            // Not (or no longer) ours: make sure it does not linger down.
            return;
        };
        let now = Instant::now();
        let abnormal = matches!(exit, Exit::Failed(_));
        {
            let entry = &mut self.children[i];
            entry.up = false;
            if let Exit::Failed(failure) = &exit {
                entry.last_failure = Some(failure.clone());
            }
        }
        if !restart_decision(self.children[i].restart, abnormal) {
            let entry = self.remove(i);
            info!(child = %entry.address, restart = ?entry.restart, "not restarting");
            entry.child.stop().await;
            self.host.child_removed(&entry.address);
            return;
        }
        if self.log.add_restart(now, self.me.spec().intensity()) == IntensityCheck::Escalate {
            self.publish(i);
            self.escalate(i, &exit).await;
            return;
        }
        let spec = self.me.spec().clone();
        let delay = {
            let entry = &mut self.children[i];
            let delay = entry.backoff.next_delay(now, &spec.backoff, fastrand::f64());
            entry.restarts += 1;
            self.host.events().publish(
                &entry.address,
                EventKind::Restarting {
                    attempt: entry.backoff.attempt(),
                    delay_ms: delay.as_millis() as u64,
                    supervisor: self.me.address().clone(),
                },
            );
            delay
        };
        self.publish(i);
        let together: Vec<usize> = match spec.strategy {
            Strategy::OneForOne | Strategy::Pool => vec![i],
            Strategy::OneForAll => (0..self.children.len()).collect(),
            Strategy::RestForOne => (i..self.children.len()).collect(),
        };
        if together.len() == 1 {
            self.children[i].up = true;
            self.children[i].child.restart(delay, false).await;
            return;
        }
        // Terminate the others in reverse start order, then restart all of
        // them in start order, waiting for each (OTP's ordering).
        for &j in together.iter().rev() {
            if j != i && self.children[j].up {
                self.children[j].up = false;
                self.children[j].child.terminate().await;
            }
        }
        for &j in &together {
            self.children[j].up = true;
            let delay = if j == i { delay } else { Duration::ZERO };
            if j != i {
                self.children[j].restarts += 1;
                self.publish(j);
                self.host.events().publish(
                    &self.children[j].address,
                    EventKind::Restarting { attempt: 1, delay_ms: 0, supervisor: self.me.address().clone() },
                );
            }
            self.children[j].child.restart(delay, true).await;
        }
    }

    /// Too many restarts: give up on the children and fail upwards.
    async fn escalate(&mut self, i: usize, exit: &Exit) {
        let spec = self.me.spec();
        let cause = match exit {
            Exit::Failed(f) => format!("; last failure: `{}` {f}", self.children[i].address),
            Exit::Normal => format!("; last: `{}` exited", self.children[i].address),
        };
        let detail = format!(
            "supervisor `{}` exceeded its intensity ({} restarts in {} ms){cause}",
            self.me.address(),
            spec.intensity,
            spec.period.as_millis()
        );
        error!(%detail, "escalating");
        self.host.events().publish(
            self.me.address(),
            EventKind::Escalated { restarts: spec.intensity, period_ms: spec.period.as_millis() as u64 },
        );
        let failure = Failure::new(FailureKind::Escalated, detail);
        match self.me.kind().clone() {
            NodeKind::Root(policy) => {
                // The root has nobody to escalate to: it gives up on the
                // offending top-level child only, and keeps the rest.
                let entry = self.remove(i);
                entry.child.stop().await;
                self.host.child_removed(&entry.address);
                self.log.clear();
                warn!(child = %entry.address, ?policy, "the root gave up on a top-level child");
                self.host.root_gave_up(&entry.address, &failure);
            }
            NodeKind::Named => {
                self.terminate_all().await;
                self.set_status("down");
                self.host.events().publish(
                    self.me.address(),
                    EventKind::Failed { kind: FailureKind::Escalated, detail: failure.detail.clone() },
                );
                // The parent learns through the host, which knows where we sit.
                self.host.supervisor_escalated(&self.me, failure);
            }
            NodeKind::Owned(owner) => {
                self.terminate_all().await;
                owner.control(Control::Fail { failure: Box::new(failure), chain: Box::default() });
            }
        }
    }
}

/// Locks `mutex`, also after a panic elsewhere left it poisoned: the view
/// and the new children are plain data, valid between any two writes.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
