//! The message loop of one actor: the task that owns its mailbox and its
//! current incarnation, handles messages one at a time, goes *down* when an
//! incarnation fails, follows its supervisor's directives, and shuts the
//! actor down in order.
//!
//! ```text
//!            message ok                 Restart (after delay)
//!        ┌──────────────┐          ┌──────────────────────────┐
//!        ▼              │          │                          │
//!   ┌─────────┐  failure / Fail / Exit / Terminate     ┌──────┴──┐
//!   │   up    │ ──────────────────────────────────────▶│  down   │
//!   └─────────┘        (supervisor told)               └─────────┘
//!        │ Stop                                              │ Stop
//!        └──────────────────────▶  stopped  ◀────────────────┘
//! ```
//!
//! An *up* actor with `hibernate-after` also sleeps when idle: its
//! incarnation is dropped and its snapshot kept until the next message or
//! control request wakes it (see [`super::hibernation`]).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::component::ActorComponent;
use super::component::Loader;
use super::hibernation::{IdleClock, idle_expired};
use super::host_api::Snapshot;
use super::incarnation::Incarnation;
use super::swap::{CodeVersion, StateTransfer, SwapError, SwapOptions, SwapReport};
use super::{
    ActorRef, ActorSpec, ActorStatus, ActorSystem, Control, DownNotice, DownReason, Exit, Inbox, RestartFrom,
    SwapRequest, Watcher,
};
use crate::batch::{self, RunEntry};
use crate::engine::{Failure, FailureKind};
use crate::events::EventKind;
use crate::message::{Address, CallError, DeadLetterReason, Envelope, Reply};
use crate::protocol::{Call, payload_size};

/// Starts the loop of an actor created with [`ActorRef::create`]. The returned
/// receiver resolves once its first incarnation has started (or failed to).
pub(crate) fn start(
    me: ActorRef,
    inbox: Inbox,
    spec: ActorSpec,
    system: Arc<dyn ActorSystem>,
    loader: Arc<Loader>,
) -> oneshot::Receiver<Result<(), Failure>> {
    let (started_tx, started_rx) = oneshot::channel();
    // A root span: a child's messages are not part of its spawner's.
    let span = info_span!(parent: None, "actor", actor = %spec.address, component = %spec.component.name);
    let idle = spec.policy.hibernate_after.map(IdleClock::new);
    let cell = Cell {
        me,
        spec: Box::new(spec),
        system,
        loader,
        inbox,
        last_snapshot: None,
        since_snapshot: 0,
        snapshot_at: Instant::now(),
        pending_notices: VecDeque::new(),
        down_with: None,
        probation: None,
        generation: 0,
        idle,
        hibernated: None,
    };
    tokio::spawn(cell.run(started_tx).instrument(span));
    started_rx
}

/// Resolves when a swap's probation window ends, or never without one.
/// The timer lives in the (boxed) probation, so that waiting costs an idle
/// actor's task a pointer rather than a timer entry.
async fn probation_ends(probation: Option<&mut Probation>) {
    match probation {
        Some(p) if !p.passed => p.timer.as_mut().await,
        _ => std::future::pending().await,
    }
}

fn version_of(component: &ActorComponent) -> CodeVersion {
    CodeVersion { name: component.name.clone(), version: component.version.clone(), hash: component.short_hash() }
}

struct Cell {
    me: ActorRef,
    // Boxed to keep an idle actor's task small, at the price of one more
    // pointer to follow per message.
    spec: Box<ActorSpec>,
    system: Arc<dyn ActorSystem>,
    loader: Arc<Loader>,
    inbox: Inbox,
    last_snapshot: Option<Snapshot>,
    since_snapshot: u32,
    snapshot_at: Instant,
    /// `down` notices that arrived while the actor was down.
    pending_notices: VecDeque<DownNotice>,
    /// The failure that took the actor down, while it is down.
    down_with: Option<Failure>,
    /// A hot swap in its probation window.
    probation: Option<Box<Probation>>,
    /// The code generation the cell runs (see `ActorRef::set_component`):
    /// messages checked against it need no remapping.
    generation: u32,
    /// With `hibernate-after`: how long the actor has been idle.
    idle: Option<IdleClock>,
    /// While hibernating: the state the next incarnation is restored from.
    hibernated: Option<Snapshot>,
}

/// How many queued messages a cell handles in a row before it looks at its
/// control channel through `select!` again (and lets tokio reschedule).
const MESSAGE_BATCH: usize = 64;

/// The old code and state kept while a swapped-in version is on probation.
struct Probation {
    old: Incarnation,
    old_component: Arc<ActorComponent>,
    /// Fires when the probation window ends.
    timer: Pin<Box<tokio::time::Sleep>>,
    hold: bool,
    passed: bool,
    ack: Option<oneshot::Sender<Result<SwapReport, SwapError>>>,
    report: SwapReport,
}

/// What woke the loop.
enum Step {
    Message(Envelope),
    Control(Control),
    ProbationOver,
    Hibernate,
}

/// Why a hibernating actor could not wake.
enum WakeFailure {
    /// No new instance (the pool is full, say): the host's trouble, not the
    /// actor's. It sleeps on with its state.
    NoInstance(Failure),
    /// Its `restore` failed: the actor is broken, as if a message had failed.
    Restore(Failure),
}

/// What the loop does after a control request.
enum Next {
    /// Waits for the next message or request.
    Continue,
    /// Stops: why, and whom to tell once stopped.
    Stop(DownReason, Option<oneshot::Sender<()>>),
}

/// How a restart attempt ended.
enum Restarted {
    Up(Incarnation),
    Failed(Failure),
    /// A stop arrived during the backoff delay.
    Stopped(Option<oneshot::Sender<()>>),
}

impl Cell {
    async fn run(mut self, started: oneshot::Sender<Result<(), Failure>>) {
        // The large, rarely taken paths (start, control requests, wake-up,
        // hibernation, finish) are boxed: an idle actor's task then costs
        // about a kilobyte, not several.
        let mut current = match Box::pin(self.incarnate(false)).await {
            Ok(inc) => {
                let _ = started.send(Ok(()));
                Some(inc)
            }
            Err(failure) => {
                self.me.record_failure(&failure);
                let _ = started.send(Err(failure.clone()));
                Box::pin(self.finish(None, DownReason::Failed(failure), None)).await;
                return;
            }
        };
        let (reason, ack) = loop {
            let may_hibernate = self.probation.is_none() && current.as_ref().is_some_and(Incarnation::persistent);
            // Visible to the host while it waits, so that a full instance
            // pool can put it to sleep early.
            let idle_since = self.idle.as_ref().filter(|_| may_hibernate).map(IdleClock::last_active);
            if idle_since.is_some() {
                self.me.set_idle_since(idle_since);
            }
            let step = match &mut current {
                Some(_) => tokio::select! {
                    biased;
                    control = self.inbox.control.recv() => Step::Control(control),
                    _ = probation_ends(self.probation.as_deref_mut()) => Step::ProbationOver,
                    envelope = self.inbox.mailbox.recv() => Step::Message(envelope),
                    _ = idle_expired(self.idle.as_mut()), if may_hibernate => Step::Hibernate,
                },
                // Hibernating: anything that arrives wakes it.
                None if self.hibernated.is_some() => tokio::select! {
                    biased;
                    control = self.inbox.control.recv() => Step::Control(control),
                    envelope = self.inbox.mailbox.recv() => Step::Message(envelope),
                },
                None => Step::Control(self.inbox.control.recv().await),
            };
            if idle_since.is_some() {
                self.me.set_idle_since(None);
            }
            match step {
                Step::Message(envelope) => {
                    if current.is_none() {
                        match Box::pin(self.wake()).await {
                            Ok(inc) => current = Some(inc),
                            Err(WakeFailure::NoInstance(failure)) => {
                                self.refuse(envelope, &failure);
                                continue;
                            }
                            Err(WakeFailure::Restore(failure)) => {
                                // As if the message had made it fail.
                                let failure = self.explain(failure);
                                self.refuse(envelope, &failure);
                                self.fail(failure, &[]);
                                continue;
                            }
                        }
                    }
                    // Boxed: the call into wasm is the largest future the
                    // loop awaits, and inline it would make every actor's
                    // task, awake or hibernating, 1.5 KB larger. One
                    // allocation per batch instead.
                    Box::pin(self.handle_batch(&mut current, envelope)).await;
                    // Idle from the end of the batch, not from its start.
                    if let Some(idle) = &mut self.idle {
                        idle.touch();
                    }
                    continue;
                }
                Step::ProbationOver => {
                    self.probation_over();
                    continue;
                }
                Step::Hibernate => {
                    if let Some(inc) = current.take() {
                        current = Box::pin(self.hibernate(inc)).await;
                    }
                    continue;
                }
                Step::Control(Control::Hibernate { ack }) => {
                    // Asleep already, busy with queued messages, or unable:
                    // the host asks another actor.
                    let slept = match current.take() {
                        Some(inc) if may_hibernate && self.inbox.mailbox.is_empty() => {
                            current = Box::pin(self.hibernate(inc)).await;
                            self.hibernated.is_some()
                        }
                        other => {
                            current = other;
                            false
                        }
                    };
                    let _ = ack.send(slept);
                    continue;
                }
                Step::Control(control) => {
                    // Boxed like the other rare paths: inline, the locals of
                    // every kind of request would add to every actor's task.
                    if let Next::Stop(reason, ack) = Box::pin(self.on_control(control, &mut current)).await {
                        break (reason, ack);
                    }
                }
            }
            // A request handled is activity: the idle period starts again.
            if let Some(idle) = &mut self.idle {
                idle.touch();
            }
        };
        if let Some(p) = self.probation.take()
            && let Some(ack) = p.ack
        {
            let _ = ack.send(Err(SwapError::Stopped(self.me.address().clone())));
        }
        Box::pin(self.finish(current, reason, ack)).await;
    }

    /// Handles a control request between messages, waking a hibernating
    /// actor first when the request needs its instance.
    async fn on_control(&mut self, control: Control, current: &mut Option<Incarnation>) -> Next {
        if self.hibernated.is_some() {
            match Box::pin(self.wake()).await {
                Ok(inc) => *current = Some(inc),
                // Handled asleep: a stop or a restart needs no instance; a
                // swap is refused as not running.
                Err(WakeFailure::NoInstance(_)) => {}
                Err(WakeFailure::Restore(failure)) => self.fail(self.explain(failure), &[]),
            }
        }
        match control {
            Control::Stop { ack } => {
                // Stopped while down after a failure: it ended by failing.
                let reason = match (current.is_none(), self.down_with.take()) {
                    (true, Some(failure)) => DownReason::Failed(failure),
                    _ => DownReason::Stopped,
                };
                return Next::Stop(reason, ack);
            }
            Control::Terminate { ack } => {
                if let Some(mut inc) = current.take() {
                    let _ = Box::pin(inc.shutdown(&self.me)).await;
                    self.system.events().publish(self.me.address(), EventKind::Terminated);
                    self.notify_down(DownReason::Stopped, false, &[]);
                }
                self.me.set_status(ActorStatus::Restarting);
                let _ = ack.send(());
            }
            Control::Restart { delay, ack } => {
                *current = None;
                match Box::pin(self.restart_after(delay)).await {
                    Restarted::Up(inc) => {
                        *current = Some(inc);
                        if let Some(ack) = ack {
                            let _ = ack.send(Ok(()));
                        }
                        Box::pin(self.deliver_pending_notices(current)).await;
                    }
                    Restarted::Failed(failure) => {
                        if let Some(ack) = ack {
                            let _ = ack.send(Err(failure.clone()));
                        }
                        self.fail(failure, &[]);
                    }
                    Restarted::Stopped(stop_ack) => return Next::Stop(DownReason::Stopped, stop_ack),
                }
            }
            Control::Fail { failure, chain } => {
                if current.take().is_some() {
                    error!(kind = %failure.kind, detail = %failure.detail, "failing with a linked actor");
                    self.fail(*failure, &chain);
                }
            }
            Control::Exit => {
                if let Some(mut inc) = current.take() {
                    let _ = Box::pin(inc.shutdown(&self.me)).await;
                    info!("exited normally");
                    self.system.events().publish(self.me.address(), EventKind::Exited);
                    self.notify_down(DownReason::Stopped, false, &[]);
                    self.me.set_status(ActorStatus::Restarting);
                    self.system.child_down(&self.me, Exit::Normal);
                }
            }
            Control::Swap(request) => match current.as_mut() {
                Some(_) if self.probation.is_some() => {
                    let _ = request.ack.send(Err(SwapError::InProgress(self.me.address().clone())));
                }
                Some(_) => {
                    if let Some(old) = current.take() {
                        let SwapRequest { component, options, hold, state, ack } = *request;
                        *current = Box::pin(self.swap(old, component, options, hold, state, ack)).await;
                    }
                }
                None => {
                    let _ = request.ack.send(Err(SwapError::NotRunning(self.me.address().clone())));
                }
            },
            // Handled before any wake-up, above.
            Control::Hibernate { ack } => {
                let _ = ack.send(false);
            }
            Control::SwapCommit => {
                if let Some(p) = self.probation.take() {
                    info!(new = %p.report.new.hash, "swap committed");
                }
            }
            Control::SwapRollback { ack } => {
                if let Some(p) = self.probation.take() {
                    *current = Some(self.roll_back(p, None));
                }
                let _ = ack.send(());
            }
            Control::Down(notice) => match current.as_mut() {
                Some(inc) => {
                    if let Err(failure) = Box::pin(inc.down(&self.me, &notice)).await {
                        *current = None;
                        self.fail(self.explain(failure), &[]);
                    }
                }
                None => self.pending_notices.push_back(*notice),
            },
        }
        Next::Continue
    }

    /// Swaps `old` for a new incarnation of `component`, carrying the state
    /// across. Returns the incarnation that is now current: the new one, or
    /// `old` if the new one could not start (or `None` if the snapshot
    /// failed and the actor went down).
    async fn swap(
        &mut self,
        mut old: Incarnation,
        component: Arc<ActorComponent>,
        options: SwapOptions,
        hold: bool,
        injected: Option<Snapshot>,
        ack: oneshot::Sender<Result<SwapReport, SwapError>>,
    ) -> Option<Incarnation> {
        let address = self.me.address().clone();
        let paused = Instant::now();
        let snapshot = match injected {
            Some(state) => Ok(Some(state)),
            None => old.snapshot(&self.me).await,
        };
        let state = match snapshot {
            Ok(state) => state,
            Err(failure) => {
                let failure = self.explain(failure);
                let _ = ack.send(Err(SwapError::Snapshot { address, failure: failure.clone() }));
                self.fail(failure, &[]);
                return None;
            }
        };
        let number = self.me.stats().next_incarnation();
        let started = async {
            let mut inc =
                Incarnation::instantiate(&self.spec, &component, &self.me, &self.system, &self.loader).await?;
            let transfer = match &state {
                Some(state) if inc.persistent() => {
                    inc.restore(&self.me, state).await?;
                    StateTransfer::Restored { bytes: state.bytes.len() as u64, from_version: state.version.clone() }
                }
                Some(_) => {
                    inc.init(&self.me, &self.spec.policy.config).await?;
                    StateTransfer::FreshInit { reason: "the new code exports no `restore`".into() }
                }
                None => {
                    inc.init(&self.me, &self.spec.policy.config).await?;
                    StateTransfer::FreshInit { reason: "the old code exports no `snapshot`".into() }
                }
            };
            Ok::<_, Failure>((inc, transfer))
        };
        let (new, transfer) = match started.await {
            Ok(started) => started,
            Err(failure) => {
                let failure = self.explain(failure);
                warn!(kind = %failure.kind, detail = %failure.detail, "new code failed to start; keeping the old");
                let _ = ack.send(Err(SwapError::Start { address, failure }));
                return Some(old);
            }
        };
        let old_component = self.spec.component.clone();
        let report = SwapReport {
            address,
            old: version_of(&old_component),
            new: version_of(&component),
            pause_us: paused.elapsed().as_micros() as u64,
            state: transfer,
            probation_ms: options.probation.as_millis() as u64,
            forced: options.force,
        };
        self.generation = self.me.set_component(component.clone());
        self.spec.component = component;
        if state.is_some() && self.spec.policy.restore == RestartFrom::Snapshot {
            // Restarts restore this until the new code writes its own.
            self.last_snapshot = state;
        }
        info!(old = %report.old.hash, new = %report.new.hash, pause_us = report.pause_us, "swapped");
        self.system.events().publish(self.me.address(), EventKind::Started { incarnation: number });
        self.system.events().publish(
            self.me.address(),
            EventKind::Swapped {
                old: report.old.hash.clone(),
                new: report.new.hash.clone(),
                pause_us: report.pause_us,
            },
        );
        self.probation = Some(Box::new(Probation {
            old,
            old_component,
            timer: Box::pin(tokio::time::sleep(options.probation)),
            hold,
            passed: false,
            ack: Some(ack),
            report,
        }));
        if options.probation.is_zero() {
            self.probation_over();
        }
        Some(new)
    }

    /// The probation window passed: report success, and drop the old code
    /// unless the swap is held for a rolling swap.
    fn probation_over(&mut self) {
        let Some(mut p) = self.probation.take() else { return };
        p.passed = true;
        if let Some(ack) = p.ack.take() {
            let _ = ack.send(Ok(p.report.clone()));
        }
        if p.hold {
            self.probation = Some(p);
        }
    }

    /// Reinstates the old code and its state from the start of the swap.
    fn roll_back(&mut self, mut p: Box<Probation>, failure: Option<Failure>) -> Incarnation {
        self.generation = self.me.set_component(p.old_component.clone());
        self.spec.component = p.old_component.clone();
        self.me.set_status(ActorStatus::Running);
        let reason = failure.as_ref().map_or_else(|| "rolling swap rolled back".to_string(), |f| f.to_string());
        self.system.events().publish(self.me.address(), EventKind::SwapRolledBack { reason });
        match failure {
            Some(failure) => {
                error!(kind = %failure.kind, detail = %failure.detail, "new code failed on probation; rolled back");
                self.me.record_failure(&failure);
                self.system.events().publish(
                    self.me.address(),
                    EventKind::Failed { kind: failure.kind, detail: failure.detail.clone() },
                );
                if let Some(ack) = p.ack.take() {
                    let _ = ack.send(Err(SwapError::Probation { address: self.me.address().clone(), failure }));
                }
            }
            None => info!("swap rolled back"),
        }
        p.old
    }

    /// Starts an incarnation: from the last snapshot if `restarting` and the
    /// policy says so, else fresh with `init`.
    async fn incarnate(&mut self, restarting: bool) -> Result<Incarnation, Failure> {
        // A restart replaces a hibernating incarnation too; what it slept
        // with is the actor's latest state.
        if let Some(state) = self.hibernated.take()
            && self.spec.policy.restore == RestartFrom::Snapshot
        {
            self.last_snapshot = Some(state);
        }
        let number = self.me.stats().next_incarnation();
        debug!(incarnation = number, "instantiating");
        let mut inc =
            Incarnation::instantiate(&self.spec, &self.spec.component, &self.me, &self.system, &self.loader).await?;
        if self.idle.is_some() && !inc.persistent() {
            return Err(Failure::new(
                FailureKind::Instantiate,
                format!(
                    "`hibernate-after-ms` needs `{}` to export `troupe:actor/persistence` (`snapshot` and `restore`): \
                     a hibernating actor keeps only its snapshot; export them, or drop the setting",
                    self.spec.component.name
                ),
            ));
        }
        let snapshot = match self.spec.policy.restore {
            RestartFrom::Snapshot if restarting && inc.persistent() => self.last_snapshot.clone(),
            _ => None,
        };
        let from_snapshot = snapshot.is_some();
        match snapshot {
            Some(state) => {
                inc.restore(&self.me, &state).await?;
                debug!(incarnation = number, bytes = state.bytes.len(), "restored from snapshot");
            }
            None => inc.init(&self.me, &self.spec.policy.config).await?,
        }
        self.me.set_status(ActorStatus::Running);
        if self.idle.is_some() {
            self.system.set_awake(&self.me, true);
        }
        self.down_with = None;
        self.system.events().publish(self.me.address(), EventKind::Started { incarnation: number });
        if restarting {
            self.me.stats().restarted();
            self.system.restarted(&self.me, from_snapshot);
        }
        Ok(inc)
    }

    /// Waits out the backoff `delay` (a stop cuts it short), then starts a
    /// new incarnation.
    async fn restart_after(&mut self, delay: Duration) -> Restarted {
        self.me.set_status(ActorStatus::Restarting);
        // Even a zero sleep waits for the timer's next tick (a millisecond):
        // an immediate restart must not.
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        while !delay.is_zero() {
            tokio::select! {
                _ = &mut sleep => break,
                control = self.inbox.control.recv() => match control {
                    Control::Stop { ack } => return Restarted::Stopped(ack),
                    Control::Terminate { ack } => { let _ = ack.send(()); }
                    Control::Down(notice) => self.pending_notices.push_back(*notice),
                    // Already down and about to restart: nothing to fail or exit.
                    Control::Restart { ack: Some(ack), .. } => { let _ = ack.send(Ok(())); }
                    Control::Swap(request) => {
                        let SwapRequest { ack, .. } = *request;
                        let _ = ack.send(Err(SwapError::NotRunning(self.me.address().clone())));
                    }
                    Control::SwapRollback { ack } => { let _ = ack.send(()); }
                    Control::Hibernate { ack } => { let _ = ack.send(false); }
                    Control::Restart { ack: None, .. } | Control::Fail { .. } | Control::Exit | Control::SwapCommit => {}
                },
            }
        }
        match self.incarnate(true).await {
            Ok(inc) => Restarted::Up(inc),
            Err(failure) => Restarted::Failed(failure),
        }
    }

    async fn deliver_pending_notices(&mut self, current: &mut Option<Incarnation>) {
        while let Some(notice) = self.pending_notices.pop_front() {
            let Some(inc) = current.as_mut() else { return };
            if let Err(failure) = inc.down(&self.me, &notice).await {
                *current = None;
                self.fail(self.explain(failure), &[]);
            }
        }
    }

    /// Handles `first` and what is queued behind it, up to a batch, without
    /// going back through `select!` as long as no control request waits.
    /// A run of tells to one function goes into the guest in one call when
    /// the function has a batch entry point.
    async fn handle_batch(&mut self, current: &mut Option<Incarnation>, first: Envelope) {
        let mut next = Some(first);
        let mut batch = MESSAGE_BATCH;
        while let Some(envelope) = next.take() {
            let Some(inc) = current.as_mut() else { break };
            let (handled, outcome) = match self.run_limit(inc, &envelope, batch) {
                Some(limit) => match self.gather(inc, envelope, limit) {
                    (mut run, _) if run.len() == 1 => (1, self.deliver(inc, run.remove(0)).await),
                    (run, entry) => (run.len(), self.deliver_run(inc, run, entry).await),
                },
                None => (1, self.deliver(inc, envelope).await),
            };
            if let Err(failure) = outcome {
                match self.probation.take() {
                    Some(p) if !p.passed => *current = Some(self.roll_back(p, Some(failure))),
                    held => {
                        self.probation = held;
                        *current = None;
                        self.fail(failure, &[]);
                    }
                }
                break;
            }
            batch = batch.saturating_sub(handled);
            if batch > 0 && self.inbox.control.is_empty() && self.probation.as_ref().is_none_or(|p| p.passed) {
                next = self.inbox.mailbox.try_recv();
            }
        }
    }

    /// How many messages, `envelope` first, may go into the guest in one
    /// call; `None` when `envelope` goes alone. Only tells qualify, and not
    /// while a swapped-in version is on probation (a failure there rolls
    /// back one message at a time). With snapshots taken every N messages,
    /// a run ends where a snapshot is due, so that a restart finds the state
    /// it would have found.
    fn run_limit(&self, inc: &Incarnation, envelope: &Envelope, batch: usize) -> Option<usize> {
        if envelope.ask.is_some()
            || envelope.call.generation != self.generation
            || self.inbox.mailbox.is_empty()
            || self.probation.as_ref().is_some_and(|p| !p.passed)
        {
            return None;
        }
        let func = envelope.call.func;
        if !inc.batch().serves(func) {
            return None;
        }
        let mut limit = batch;
        let policy = &self.spec.policy;
        if policy.restore == RestartFrom::Snapshot && inc.persistent() {
            match (policy.snapshot_every, policy.snapshot_interval) {
                (Some(n), _) => limit = limit.min(n.max(1).saturating_sub(self.since_snapshot) as usize),
                (None, None) => return None,
                (None, Some(_)) => {}
            }
        }
        (limit >= 2).then_some(limit)
    }

    /// Takes the run that goes into the guest with `first`, at most `limit`
    /// messages: the tells to its function queued behind it, for its own
    /// entry point; or, when the next tell is to another function, the
    /// tells to any function the mixed entry point serves.
    fn gather(&self, inc: &Incarnation, first: Envelope, limit: usize) -> (Vec<Envelope>, RunEntry) {
        let (func, generation) = (first.call.func, first.call.generation);
        let batch = inc.batch();
        let own = batch.own_capacity(func).min(limit);
        let mixed = batch.mixed_capacity(func).min(limit);
        let mut run = Vec::with_capacity(own.max(mixed));
        run.push(first);
        if own >= 2 {
            self.inbox.mailbox.take_while(own, &mut run, |e| {
                e.ask.is_none() && e.call.func == func && e.call.generation == generation
            });
        }
        if mixed > 0 && run.len() == 1 {
            self.inbox.mailbox.take_while(mixed, &mut run, |e| {
                e.ask.is_none() && e.call.generation == generation && batch.mixes(e.call.func)
            });
            if run.len() > 1 {
                return (run, RunEntry::Mixed);
            }
        }
        (run, RunEntry::Own(func))
    }

    /// Handles a run of tells in one call of a batch entry point. If one of
    /// them fails, those before it count as handled and those after it go
    /// back to the front of the mailbox, for the next incarnation: the same
    /// outcome as delivering them one by one. A control request arriving
    /// meanwhile ends the call between two messages, and the rest go back
    /// to the mailbox too.
    async fn deliver_run(
        &mut self,
        inc: &mut Incarnation,
        mut run: Vec<Envelope>,
        entry: RunEntry,
    ) -> Result<(), Failure> {
        let component = self.spec.component.clone();
        let protocol = component.protocol();
        let func = entry.function();
        let Some(lowered) = inc.batch().lower(protocol, &mut run, entry) else {
            // Not expected (the run was gathered for an entry point, and its
            // calls are type-checked); one at a time is still right.
            for envelope in run {
                Box::pin(self.deliver(inc, envelope)).await?;
            }
            return Ok(());
        };
        let span = tracing::debug_span!(
            "messages",
            function = func.map_or("(several)", |f| protocol.function(f).name.as_str()),
            count = run.len()
        );
        let outcome = inc.handle_run(&self.me, &lowered).instrument(span).await;
        batch::give_back(&mut run, lowered);
        match outcome {
            Ok(handled) => {
                self.me.stats().handled_batch(handled as u64);
                if handled < run.len() {
                    // Cut short for a control request: the rest wait for it.
                    self.inbox.mailbox.put_back(run.into_iter().skip(handled));
                }
                self.maybe_snapshot(inc, handled).await
            }
            Err((started, failure)) => {
                let failed = started.clamp(1, run.len()) - 1;
                self.me.stats().handled_batch(failed as u64);
                let failure = self.message_failed(&protocol.function(run[failed].call.func).name, None, failure);
                self.inbox.mailbox.put_back(run.into_iter().skip(failed + 1));
                Err(failure)
            }
        }
    }

    /// Handles one message. `Err` means the incarnation failed (and is
    /// poisoned); the failure has been reported to the sender.
    async fn deliver(&mut self, inc: &mut Incarnation, envelope: Envelope) -> Result<(), Failure> {
        let (mut call, from, reply, waiting) = envelope.into_parts();
        if call.generation != self.generation
            && let Err(e) = self.me.current_call(&mut call)
        {
            // Checked against code that a hot swap replaced, and gone from
            // the new code: refuse it as the sender would have been refused.
            self.system.dead_letter(self.me.address(), "?", DeadLetterReason::Failed);
            if let Some(reply) = reply {
                let _ = reply.send(Err(CallError::BadMessage(e)));
            }
            return Ok(());
        }
        let span = tracing::debug_span!(
            "message",
            function = %self.spec.component.protocol().function(call.func).name,
            from = from.as_ref().map(|a| a.as_str())
        );
        let outcome = inc.handle(&self.me, &call, waiting).instrument(span).await;
        match outcome {
            Ok(result) => {
                self.me.stats().handled();
                if let Some(reply) = reply {
                    let limit = self.me.limits().max_message_bytes;
                    let size = result.as_ref().map(payload_size).unwrap_or(0);
                    let _ = reply.send(if size > limit {
                        Err(CallError::ReplyTooLarge { size, limit })
                    } else {
                        Ok(result)
                    });
                }
                self.maybe_snapshot(inc, 1).await
            }
            Err(failure) => {
                let function = &self.spec.component.protocol().function(call.func).name;
                Err(self.message_failed(function, reply, failure))
            }
        }
    }

    /// The incarnation failed: record and publish it, tell watchers and
    /// links, and hand the decision to the supervisor.
    fn fail(&mut self, failure: Failure, chain: &[Address]) {
        self.me.record_failure(&failure);
        self.down_with = Some(failure.clone());
        self.me.set_status(ActorStatus::Restarting);
        self.system
            .events()
            .publish(self.me.address(), EventKind::Failed { kind: failure.kind, detail: failure.detail.clone() });
        self.notify_down(DownReason::Failed(failure.clone()), false, chain);
        self.system.child_down(&self.me, Exit::Failed(failure));
    }

    /// Replaces wasmtime's terse text for budget overruns with the limit
    /// that was hit.
    fn explain(&self, mut failure: Failure) -> Failure {
        let limits = self.me.limits();
        match failure.kind {
            FailureKind::Deadline => {
                failure.detail =
                    format!("ran past its CPU budget of {} ms per message (`deadline-ms`)", limits.deadline.as_millis())
            }
            FailureKind::OutOfFuel => {
                failure.detail =
                    format!("used up its budget of {} fuel per message (`fuel`)", limits.fuel.unwrap_or_default())
            }
            _ => {}
        }
        failure
    }

    /// Tells monitors and links that this actor went down. A failure fails
    /// linked actors that do not watch (never one already in `chain`).
    fn notify_down(&self, reason: DownReason, gone: bool, chain: &[Address]) {
        let me = self.me.address();
        let notice = DownNotice { address: me.clone(), reason: reason.clone(), gone };
        for watcher in self.me.watchers() {
            match watcher {
                Watcher::Actor { watcher, .. } => {
                    if let Some(w) = self.system.lookup(watcher.as_str()) {
                        w.control(Control::Down(Box::new(notice.clone())));
                    }
                }
                Watcher::Host { tx, .. } => {
                    let _ = tx.send(notice.clone());
                }
            }
        }
        if gone {
            self.me.clear_watchers();
        }
        for peer in self.me.links() {
            if chain.contains(&peer) {
                continue;
            }
            let Some(p) = self.system.lookup(peer.as_str()) else { continue };
            if p.component().exports_watcher() {
                p.control(Control::Down(Box::new(notice.clone())));
            } else if let DownReason::Failed(failure) = &reason {
                let mut next = chain.to_vec();
                next.push(me.clone());
                p.control(Control::Fail {
                    failure: Box::new(Failure::new(
                        FailureKind::Linked,
                        format!("linked actor `{me}` failed: {failure}"),
                    )),
                    chain: next.into_boxed_slice(),
                });
            }
            if gone {
                p.drop_link(me);
            }
        }
    }

    /// Puts an idle actor to sleep: snapshot, then drop the incarnation (its
    /// instance, memory and stack go back to the pool). Returns the
    /// incarnation if the actor stays awake, `None` if it sleeps or failed.
    async fn hibernate(&mut self, mut inc: Incarnation) -> Option<Incarnation> {
        match inc.snapshot(&self.me).await {
            Ok(Some(state)) => {
                drop(inc);
                debug!(bytes = state.bytes.len(), "hibernating");
                // One copy of the state while asleep: the hibernation
                // snapshot is also the latest one a restart would use.
                self.last_snapshot = None;
                let bytes = state.bytes.len() as u64;
                self.hibernated = Some(state);
                // Neither queues grown by bursts nor the idle timer need to
                // stay while it sleeps.
                self.inbox.mailbox.shrink();
                self.inbox.control.shrink();
                if let Some(idle) = &mut self.idle {
                    idle.release();
                }
                self.me.stats().set_memory(0, 0);
                self.me.set_status(ActorStatus::Hibernating);
                self.system.set_awake(&self.me, false);
                self.system.events().publish(self.me.address(), EventKind::Hibernated { bytes });
                None
            }
            // Not persistent after all (a swap replaced its code): stay up.
            Ok(None) => {
                self.idle = None;
                Some(inc)
            }
            Err(mut failure) => {
                failure.detail = format!("in `snapshot`, hibernating: {}", failure.detail);
                self.fail(self.explain(failure), &[]);
                None
            }
        }
    }

    /// Wakes a hibernating actor: a new instance restored from its snapshot.
    /// The same incarnation as far as counts and events go.
    async fn wake(&mut self) -> Result<Incarnation, WakeFailure> {
        let Some(state) = self.hibernated.take() else {
            let failure = Failure::new(FailureKind::Restore, "woken without a hibernation snapshot");
            return Err(WakeFailure::Restore(failure));
        };
        let instance = Incarnation::instantiate(&self.spec, &self.spec.component, &self.me, &self.system, &self.loader);
        let mut inc = match instance.await {
            Ok(inc) => inc,
            Err(failure) => {
                warn!(kind = %failure.kind, detail = %failure.detail, "cannot wake; sleeping on");
                self.hibernated = Some(state);
                return Err(WakeFailure::NoInstance(failure));
            }
        };
        let restored = inc.restore(&self.me, &state).await;
        let bytes = state.bytes.len();
        // Kept for restarts, whether or not it restored.
        if self.spec.policy.restore == RestartFrom::Snapshot {
            self.last_snapshot = Some(state);
        }
        restored.map_err(WakeFailure::Restore)?;
        debug!(bytes, "woke from hibernation");
        self.me.set_status(ActorStatus::Running);
        self.system.set_awake(&self.me, true);
        self.system.events().publish(self.me.address(), EventKind::Woke);
        Ok(inc)
    }

    /// The actor failed before it could handle `envelope`: the sender
    /// learns it as it would of a failure handling it.
    fn refuse(&self, envelope: Envelope, failure: &Failure) {
        let function = self.function_name(&envelope.call);
        self.report_failed(&function, envelope.into_parts().2, failure);
    }

    /// A message to `function` failed, and its incarnation with it: log
    /// it, count the dead letter and tell the asker, if any. Returns the
    /// failure as explained to them.
    fn message_failed(&self, function: &str, reply: Option<oneshot::Sender<Reply>>, failure: Failure) -> Failure {
        let failure = self.explain(failure);
        error!(
            function = %function,
            kind = %failure.kind,
            detail = %failure.detail,
            backtrace = ?failure.backtrace,
            "message failed"
        );
        self.report_failed(function, reply, &failure);
        failure
    }

    /// A message to `function` failed: count the dead letter and tell the
    /// asker, if any.
    fn report_failed(&self, function: &str, reply: Option<oneshot::Sender<Reply>>, failure: &Failure) {
        self.system.dead_letter(self.me.address(), function, DeadLetterReason::Failed);
        if let Some(reply) = reply {
            let _ = reply
                .send(Err(CallError::ActorFailed { address: self.me.address().clone(), failure: failure.clone() }));
        }
    }

    /// The name of the function `call` calls, for dead letters. A call
    /// checked against code that a swap replaced is not remapped here.
    fn function_name(&self, call: &Call) -> String {
        let protocol = self.spec.component.protocol();
        match protocol.functions().get(call.func as usize) {
            Some(f) if call.generation == self.generation => f.name.clone(),
            _ => "?".into(),
        }
    }

    /// Takes a snapshot if the restore policy wants one now.
    async fn maybe_snapshot(&mut self, inc: &mut Incarnation, handled: usize) -> Result<(), Failure> {
        if self.spec.policy.restore != RestartFrom::Snapshot || !inc.persistent() {
            return Ok(());
        }
        self.since_snapshot += handled as u32;
        let by_count = match (self.spec.policy.snapshot_every, self.spec.policy.snapshot_interval) {
            (Some(n), _) => self.since_snapshot >= n.max(1),
            (None, None) => true,
            (None, Some(_)) => false,
        };
        // With no snapshot yet, one is overdue.
        let by_time = self
            .spec
            .policy
            .snapshot_interval
            .is_some_and(|i| self.last_snapshot.is_none() || self.snapshot_at.elapsed() >= i);
        if !(by_count || by_time) {
            return Ok(());
        }
        self.since_snapshot = 0;
        self.snapshot_at = Instant::now();
        match inc.snapshot(&self.me).await {
            Ok(state) => {
                self.last_snapshot = state;
                Ok(())
            }
            Err(mut failure) => {
                failure.detail = format!("in `snapshot`: {}", failure.detail);
                error!(kind = %failure.kind, detail = %failure.detail, "snapshot failed");
                Err(failure)
            }
        }
    }

    /// Stops for good: the shutdown hook (when stopped, not failed), then
    /// children in reverse start order, then what is still queued becomes
    /// dead letters, and the address is released.
    async fn finish(&mut self, current: Option<Incarnation>, reason: DownReason, ack: Option<oneshot::Sender<()>>) {
        self.me.set_status(ActorStatus::Stopping);
        self.me.cancel_all_timers();
        if let Some(mut inc) = current
            && let Err(failure) = inc.shutdown(&self.me).await
        {
            warn!(kind = %failure.kind, detail = %failure.detail, "shutdown hook failed");
        }
        self.system.stop_children(&self.me).await;
        self.inbox.mailbox.close();
        let mut dropped = 0usize;
        while let Some(envelope) = self.inbox.mailbox.try_recv() {
            dropped += 1;
            self.system.dead_letter(self.me.address(), &self.function_name(&envelope.call), DeadLetterReason::Stopped);
            if let Some(reply) = envelope.into_parts().2 {
                let _ = reply.send(Err(CallError::Stopped(self.me.address().clone())));
            }
        }
        if dropped > 0 {
            warn!(dropped, "stopped with messages still queued");
        }
        self.system.unregister(&self.me);
        let status = match &reason {
            DownReason::Stopped => ActorStatus::Stopped,
            DownReason::Failed(_) => ActorStatus::Failed,
        };
        let why = match &reason {
            DownReason::Stopped => "stopped".to_string(),
            DownReason::Failed(f) => format!("failed: {f}"),
        };
        self.notify_down(reason, true, &[]);
        self.me.set_status(status);
        self.me.mark_done();
        self.system.events().publish(self.me.address(), EventKind::Stopped { reason: why });
        info!(?status, "stopped");
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
    }
}
