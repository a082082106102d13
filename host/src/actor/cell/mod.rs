//! The cell of one actor: the task that owns its mailbox and its current
//! incarnation and runs its phase machine.
//!
//! The loop is small: wait for the next [`Signal`] the current phase
//! listens to, look up what it does in the phase table
//! ([`phase::plan`]), act, and enter the resulting phase through
//! [`Cell::enter`], the one place where the phase changes and the status
//! `troupe ps` shows is published. What each action does lives with its
//! concern:
//!
//! * `delivery.rs` — handing messages to the incarnation, replies, and
//!   what a failed message costs its sender;
//! * `batching.rs` — runs of tells that go into the guest in one call;
//! * `lifecycle.rs` — starting, failing, exiting, terminating, restarting
//!   and stopping;
//! * `swap.rs` — hot swap, probation and rollback;
//! * `hibernation.rs` — sleeping when idle and waking;
//! * `snapshots.rs` — the state a restart starts from;
//! * `durability.rs` — a durable actor's commit after each message;
//! * `links.rs` — monitors, links and `down` notices.

mod batching;
mod delivery;
mod durability;
mod hibernation;
mod lifecycle;
mod links;
mod phase;
mod snapshots;
pub(crate) mod swap;

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::oneshot;
use tracing::{Instrument, error, info_span};

use super::control::Control;
use super::courier::Courier;
use super::{ActorRef, ActorSpec, ActorStatus, ActorSystem, Failure, Inbox, Resources, Snapshot};
use crate::actor::durable::{Handled, Origin, Outgoing};
use crate::message::Envelope;
use durability::DurableCell;
use hibernation::{IdleClock, idle_expired};
pub use links::{DownNotice, DownReason};
pub(crate) use links::{Watcher, next_watch_id};
use phase::{Action, Phase, SignalKind, plan};
use snapshots::Snapshots;
pub use swap::{CodeVersion, DEFAULT_PROBATION, StateTransfer, SwapError, SwapOptions, SwapReport};

/// What a durable actor starts from: its committed state (restored
/// instead of `init`) and the number of the last tell in it.
#[derive(Debug, Default)]
pub(crate) struct Committed {
    /// The committed state, if any.
    pub state: Option<Snapshot>,
    /// The messages handled after it, to replay on it.
    pub replay: Vec<Handled>,
    /// Its place in the journal.
    pub position: u64,
    /// The number of the last journal entry.
    pub journal_end: u64,
    /// Its outbox: tells committed and not yet delivered.
    pub outbox: Vec<Outgoing>,
    /// The origin of the last tell it made.
    pub last_sent: Option<Origin>,
    /// The number of the last tell it contains.
    pub watermark: u64,
}

/// Starts the cell of an actor created with [`ActorRef::create`]. The
/// returned receiver resolves once its first incarnation has started (or
/// failed to). A durable actor starts from what it `committed`; an actor
/// in memory given a committed state starts asleep with it.
pub(crate) fn start(
    me: ActorRef,
    inbox: Inbox,
    spec: ActorSpec,
    committed: Option<Committed>,
    system: Arc<dyn ActorSystem>,
    resources: Arc<Resources>,
    began: std::time::Instant,
) -> oneshot::Receiver<Result<(), Failure>> {
    let (started_tx, started_rx) = oneshot::channel();
    // A root span: a child's messages are not part of its spawner's.
    let span = info_span!(parent: None, "actor", actor = %spec.address, component = %spec.component.name);
    let idle = spec.policy.hibernate_after.map(IdleClock::new);
    let mut committed = committed.unwrap_or_default();
    let durable = me.is_durable().then(|| {
        let courier = match (me.journal(), committed.outbox.is_empty()) {
            (Some(journal), false) => {
                let outbox = std::mem::take(&mut committed.outbox);
                Some(Courier::start(spec.address.clone(), journal.clone(), system.clone(), outbox))
            }
            _ => None,
        };
        Box::new(DurableCell {
            watermark: committed.watermark,
            journal_base: committed.state.is_some().then_some(0),
            last_sent: committed.last_sent,
            snapshot_position: committed.position,
            journal_written: committed.journal_end,
            courier,
            ..DurableCell::default()
        })
    });
    let mut snapshots = Snapshots::default();
    // An actor in memory given a state sleeps with it until its first
    // message; a durable one's is its restart state.
    let mut asleep = None;
    match committed.state {
        Some(state) if durable.is_some() => {
            snapshots.put_back(&spec.policy, state);
            snapshots.set_tail(committed.replay);
        }
        // Boxed: it is part of every actor's task until its first phase.
        state => asleep = state.map(Box::new),
    }
    let cell = Cell {
        me,
        spec: Box::new(spec),
        system,
        resources,
        inbox,
        snapshots,
        durable,
        held_notices: VecDeque::new(),
        generation: 0,
        idle,
        published: Published { status: ActorStatus::Starting, awake: false },
        began: Some(began),
    };
    tokio::spawn(cell.run(started_tx, asleep).instrument(span));
    started_rx
}

/// The task of one actor. Everything here outlives incarnations; what the
/// actor holds in its current phase is in the [`Phase`] the loop carries.
pub(crate) struct Cell {
    me: ActorRef,
    // Boxed to keep an idle actor's task small, at the price of one more
    // pointer to follow per message.
    spec: Box<ActorSpec>,
    system: Arc<dyn ActorSystem>,
    /// The loader and the instance slots every actor shares.
    resources: Arc<Resources>,
    inbox: Inbox,
    /// The state a restart starts from.
    snapshots: Snapshots,
    /// For a durable actor, what its commits need (see `durability.rs`);
    /// boxed, so that an actor in memory pays one pointer.
    durable: Option<Box<DurableCell>>,
    /// `down` notices that arrived while the actor had no incarnation.
    held_notices: VecDeque<DownNotice>,
    /// The code generation the cell runs (see `ActorRef::set_component`):
    /// messages checked against it need no remapping.
    generation: u32,
    /// With `hibernate-after`: how long the actor has been idle.
    idle: Option<IdleClock>,
    /// When it was spawned (a virtual key: when its activation began),
    /// until its first instance reports its phases.
    began: Option<std::time::Instant>,
    /// What the transition point last told the rest of the host.
    published: Published,
}

/// What [`Cell::enter`] last published about the phase.
#[derive(Clone, Copy)]
struct Published {
    status: ActorStatus,
    /// In the host's set of awake actors a full instance pool may put to
    /// sleep.
    awake: bool,
}

/// What woke the loop.
pub(crate) enum Signal {
    /// A message from the mailbox.
    Message(Envelope),
    /// A request from the control queue.
    Control(Control),
    /// The probation window of a swap ended.
    ProbationOver,
    /// Idle for `hibernate-after`.
    IdleExpired,
    /// A restart's backoff delay ended.
    RestartDue,
}

impl Signal {
    fn kind(&self) -> SignalKind {
        match self {
            Signal::Message(_) => SignalKind::Message,
            Signal::ProbationOver => SignalKind::ProbationOver,
            Signal::IdleExpired => SignalKind::IdleExpired,
            Signal::RestartDue => SignalKind::RestartDue,
            Signal::Control(control) => match control {
                Control::Stop { .. } => SignalKind::Stop,
                Control::Terminate { .. } => SignalKind::Terminate,
                Control::Restart { .. } => SignalKind::Restart,
                Control::Fail { .. } => SignalKind::Fail,
                Control::Exit => SignalKind::Exit,
                Control::Down(_) => SignalKind::Notice,
                Control::Swap(_) => SignalKind::Swap,
                Control::Hibernate { .. } => SignalKind::Hibernate,
                Control::SwapCommit => SignalKind::SwapCommit,
                Control::SwapRollback { .. } => SignalKind::SwapRollback,
            },
        }
    }
}

/// How many queued messages a cell handles in a row before it looks at its
/// control queue through `select!` again (and lets tokio reschedule).
const MESSAGE_BATCH: usize = 64;

impl Cell {
    async fn run(mut self, started: oneshot::Sender<Result<(), Failure>>, asleep: Option<Box<Snapshot>>) {
        // The large, rarely taken paths (start, control requests, wake-up,
        // hibernation, finish) are boxed: an idle actor's task then stays
        // small.
        let mut phase = Box::pin(self.first_incarnation(started, asleep)).await;
        if self.me.is_durable() {
            // Asleep or running is known now, not once recovery ends.
            phase = self.enter(phase);
            self.system.recovered().await;
        }
        loop {
            phase = self.enter(phase);
            phase = match phase {
                Phase::Stopping(stopping) => {
                    Box::pin(self.finish(*stopping)).await;
                    return;
                }
                Phase::Stopped(_) => return,
                mut waiting => {
                    let signal = self.wait(&mut waiting).await;
                    self.transition(waiting, signal).await
                }
            };
        }
    }

    /// The one transition point: `phase` becomes current. Publishes its
    /// status, and whether the actor holds an instance slot that a full
    /// pool may reclaim, when they change.
    fn enter(&mut self, phase: Phase) -> Phase {
        let status = phase.status();
        if status != self.published.status {
            self.published.status = status;
            self.me.publish_status(status);
        }
        let awake = self.idle.is_some() && matches!(phase, Phase::Running(_) | Phase::Probation(..));
        if awake != self.published.awake {
            self.published.awake = awake;
            self.resources.slots.set_awake(&self.me, awake);
        }
        phase
    }

    /// Waits for the next signal `phase` listens to.
    async fn wait(&mut self, phase: &mut Phase) -> Signal {
        match phase {
            Phase::Running(inc) => {
                let may_sleep = self.idle.is_some() && inc.persistent();
                // Visible to the host while it waits, so that a full
                // instance pool can put it to sleep early.
                let idle_since = self.idle.as_ref().filter(|_| may_sleep).map(IdleClock::last_active);
                if idle_since.is_some() {
                    self.me.set_idle_since(idle_since);
                }
                let signal = tokio::select! {
                    biased;
                    control = self.inbox.control.recv() => Signal::Control(control),
                    envelope = self.inbox.mailbox.recv() => Signal::Message(envelope),
                    _ = idle_expired(self.idle.as_mut()), if may_sleep => Signal::IdleExpired,
                };
                if idle_since.is_some() {
                    self.me.set_idle_since(None);
                }
                signal
            }
            Phase::Probation(_, trial) => tokio::select! {
                biased;
                control = self.inbox.control.recv() => Signal::Control(control),
                _ = trial.window(), if !trial.passed() => Signal::ProbationOver,
                envelope = self.inbox.mailbox.recv() => Signal::Message(envelope),
            },
            // Asleep: anything that arrives wakes it.
            Phase::Hibernating(_) => tokio::select! {
                biased;
                control = self.inbox.control.recv() => Signal::Control(control),
                envelope = self.inbox.mailbox.recv() => Signal::Message(envelope),
            },
            Phase::Restarting { due: None, .. } => Signal::RestartDue,
            Phase::Restarting { due: Some(due), .. } => tokio::select! {
                biased;
                control = self.inbox.control.recv() => Signal::Control(control),
                _ = due.as_mut() => Signal::RestartDue,
            },
            // Down (and, never reached, the phases the loop does not wait
            // in): only its supervisor's directives matter.
            _ => Signal::Control(self.inbox.control.recv().await),
        }
    }

    /// Acts on `signal` in `phase` as the phase table says, and returns the
    /// phase the actor ends up in.
    async fn transition(&mut self, phase: Phase, signal: Signal) -> Phase {
        let from = phase.kind();
        let kind = signal.kind();
        let (action, ends) = plan(from, kind);
        // Activity restarts the idle period: a message (from the end of its
        // batch), or a request other than the host's own hibernation probe.
        let touches = matches!(kind, SignalKind::Message)
            || matches!(&signal, Signal::Control(c) if !matches!(c, Control::Hibernate { .. }));
        // Each action's future is boxed: one that calls into wasm is the
        // largest future the loop awaits, and inline it would grow every
        // actor's task, awake or asleep. One allocation per batch of
        // messages (or control request) instead. Delivery, the common
        // case, boxes only the handling of the batch, so that its
        // allocation stays small enough for the allocator's per-thread
        // cache (past it, glibc takes a slow path that shows on every ask).
        let next = match (action, phase, signal) {
            (Action::Deliver, Phase::Running(mut inc), Signal::Message(envelope)) => {
                let outcome = Box::pin(self.handle_messages(&mut inc, envelope, false)).await;
                self.running_after(inc, outcome)
            }
            (action, phase, signal) => Box::pin(self.act(action, phase, signal)).await,
        };
        debug_assert!(
            action == Action::Wake || ends.contains(&next.kind()),
            "{from:?} + {kind:?} -> {action:?} ended in {:?}, not one of {ends:?}",
            next.kind()
        );
        if touches && let Some(idle) = &mut self.idle {
            idle.touch();
        }
        next
    }

    /// Performs `action`. The phase table and this match agree by
    /// construction (the table's tests and the assertion in
    /// [`Cell::transition`] check it); a pair that does not match is an
    /// internal error, logged, and the actor stays as it was.
    async fn act(&mut self, action: Action, phase: Phase, signal: Signal) -> Phase {
        use Action as A;
        match (action, phase, signal) {
            (A::Deliver, Phase::Probation(inc, trial), Signal::Message(envelope)) => {
                self.deliver_on_probation(inc, trial, envelope).await
            }
            (A::Wake, Phase::Hibernating(state), signal) => self.wake_for(*state, signal).await,
            (A::Stop, phase, Signal::Control(Control::Stop { ack })) => self.stop(phase, ack),
            (A::Terminate, phase, Signal::Control(Control::Terminate { ack })) => self.terminate(phase, ack).await,
            (A::AckTerminate, phase, Signal::Control(Control::Terminate { ack })) => {
                let _ = ack.send(());
                phase
            }
            (A::Restart, phase, Signal::Control(Control::Restart { delay, ack })) => {
                self.schedule_restart(phase, delay, ack)
            }
            (A::AckRestart, phase, Signal::Control(Control::Restart { ack, .. })) => {
                if let Some(ack) = ack {
                    let _ = ack.send(Ok(()));
                }
                phase
            }
            (A::StartIncarnation, Phase::Restarting { ack, .. }, Signal::RestartDue) => self.restart(ack).await,
            (A::Fail, phase, Signal::Control(Control::Fail { failure, chain })) => {
                self.fail_with(phase, *failure, &chain).await
            }
            (A::Exit, phase, Signal::Control(Control::Exit)) => self.exit(phase).await,
            (A::NotifyWatcher, phase, Signal::Control(Control::Down(notice))) => {
                self.notify_watcher(phase, *notice).await
            }
            (A::HoldNotice, phase, Signal::Control(Control::Down(notice))) => {
                self.held_notices.push_back(*notice);
                phase
            }
            (A::Swap, Phase::Running(inc), Signal::Control(Control::Swap(request))) => self.swap(inc, *request).await,
            (A::RefuseSwapInProgress, phase, Signal::Control(Control::Swap(request))) => {
                let _ = request.ack.send(Err(SwapError::InProgress(self.me.address().clone())));
                phase
            }
            (A::RefuseSwapNotRunning, phase, Signal::Control(Control::Swap(request))) => {
                let _ = request.ack.send(Err(SwapError::NotRunning(self.me.address().clone())));
                phase
            }
            (A::Hibernate, Phase::Running(inc), Signal::Control(Control::Hibernate { ack })) => {
                self.hibernate_on_request(inc, ack).await
            }
            (A::RefuseHibernate, phase, Signal::Control(Control::Hibernate { ack })) => {
                let _ = ack.send(false);
                phase
            }
            (A::CommitSwap, Phase::Probation(inc, trial), Signal::Control(Control::SwapCommit)) => {
                self.commit(inc, trial)
            }
            (A::RollBackSwap, Phase::Probation(_, trial), Signal::Control(Control::SwapRollback { ack })) => {
                let old = self.roll_back(trial, None);
                let _ = ack.send(());
                Phase::Running(old)
            }
            (A::AckRollBack, phase, Signal::Control(Control::SwapRollback { ack })) => {
                let _ = ack.send(());
                phase
            }
            (A::EndProbation, Phase::Probation(inc, trial), Signal::ProbationOver) => self.probation_over(inc, trial),
            (A::Sleep, Phase::Running(inc), Signal::IdleExpired) => self.hibernate(inc).await,
            (A::Ignore, phase, _) => phase,
            (action, phase, signal) => {
                error!(?action, phase = ?phase.kind(), signal = ?signal.kind(), "no handler for this transition");
                phase
            }
        }
    }

    /// The address, for errors and events.
    fn address(&self) -> &crate::message::Address {
        self.me.address()
    }
}
