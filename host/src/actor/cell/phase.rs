//! The phases of an actor's cell and the one table that says what each
//! signal does in each phase.
//!
//! A cell is created `starting` (the status a new actor shows); its first
//! incarnation's start ends it in Running or, if that fails, Stopping.
//!
//! ```text
//!                      start ok
//!   (start) ────────────────────────────▶ Running ◀──────── wake ─────── Hibernating
//!      │ start failed                      │  ▲  │ idle past hibernate-after ──▶│
//!      ▼                                   │  │  └──── swap ──▶ Probation ─────┘(passed)
//!   Stopping ◀── stop (any awake phase) ───┘  │                  │ failure: roll back
//!      │                                      │                  ▼ to the old code
//!      ▼                    restart due ok    │               Running
//!   Stopped              ┌────────────────────┘
//!                        │
//!   Running ── failure / linked failure / exit / terminate ──▶ Down
//!   Down ── restart (after backoff) ──▶ Restarting ── restart due ──▶ Running | Down
//! ```
//!
//! A key of a virtual component may leave the host as it falls asleep
//! (Running ── idle ──▶ Stopped, passivated): its address activates a new
//! cell for its next message.
//!
//! [`Phase`] holds what the actor has in each phase (its incarnation, the
//! code on trial, the state it sleeps with, the failure that took it
//! down); [`PhaseKind`] is the same without the data, and [`plan`] maps a
//! (phase, signal) pair to the [`Action`] the cell takes and the phases it
//! may end in. The cell's run loop executes the action and enters the
//! resulting phase through one transition point, which also publishes the
//! status `troupe ps` shows: status is derived from the phase, never kept
//! beside it.

use std::pin::Pin;

use tokio::sync::oneshot;

use super::swap::Trial;
use crate::actor::host_api::Snapshot;
use crate::actor::incarnation::Incarnation;
use crate::actor::{ActorStatus, Failure};

/// What an actor's cell is doing, with what it holds while doing it.
pub(crate) enum Phase {
    /// An incarnation handles messages.
    Running(Incarnation),
    /// Swapped-in code handles messages while the old code waits, frozen,
    /// for a rollback (see [`super::swap`]).
    Probation(Incarnation, Box<Trial>),
    /// Idle past `hibernate-after`: no instance, only the state it will be
    /// restored from (boxed: a sleeping actor's task stays small).
    Hibernating(Box<Snapshot>),
    /// Its incarnation ended (it failed, exited or was terminated); it
    /// waits for its supervisor. The failure, if it failed, is what a stop
    /// in this phase reports.
    Down(Option<Box<Failure>>),
    /// Its supervisor restarts it when `due` fires (at once when `None`).
    Restarting {
        /// The backoff delay.
        due: Option<Pin<Box<tokio::time::Sleep>>>,
        /// Who waits for the outcome of the restart.
        ack: Option<oneshot::Sender<Result<(), Failure>>>,
    },
    /// Finishing: the shutdown hook, its children, its queued messages.
    Stopping(Box<Stopping>),
    /// Stopped for good.
    Stopped(Ended),
}

/// Why an actor is stopping, and whom to tell once it has.
pub(crate) struct Stopping {
    /// The incarnation whose shutdown hook runs, if it has one.
    pub incarnation: Option<Incarnation>,
    /// Why it stops.
    pub reason: crate::actor::DownReason,
    /// Resolved once it has stopped.
    pub ack: Option<oneshot::Sender<()>>,
}

/// How an actor ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Stopped on request, or by itself.
    Stopped,
    /// Stopped because it failed and was not restarted.
    Failed,
    /// A key of a virtual component that left the host as it fell asleep:
    /// its address activates it again (see [`super::hibernation`]).
    Passivated,
}

/// A [`Phase`] without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PhaseKind {
    Running,
    Probation,
    Hibernating,
    Down,
    Restarting,
    Stopping,
    Stopped,
}

impl Phase {
    /// The phase without its data.
    pub fn kind(&self) -> PhaseKind {
        match self {
            Phase::Running(_) => PhaseKind::Running,
            Phase::Probation(..) => PhaseKind::Probation,
            Phase::Hibernating(_) => PhaseKind::Hibernating,
            Phase::Down(_) => PhaseKind::Down,
            Phase::Restarting { .. } => PhaseKind::Restarting,
            Phase::Stopping(_) => PhaseKind::Stopping,
            Phase::Stopped(_) => PhaseKind::Stopped,
        }
    }

    /// The status `troupe ps` shows for this phase.
    pub fn status(&self) -> ActorStatus {
        match self {
            Phase::Stopped(Ended::Failed) => ActorStatus::Failed,
            other => other.kind().status(),
        }
    }
}

impl PhaseKind {
    /// The status of an actor in this phase (a stopped actor's depends on
    /// how it ended; see [`Phase::status`]).
    pub fn status(self) -> ActorStatus {
        match self {
            PhaseKind::Running | PhaseKind::Probation => ActorStatus::Running,
            PhaseKind::Hibernating => ActorStatus::Hibernating,
            PhaseKind::Down | PhaseKind::Restarting => ActorStatus::Restarting,
            PhaseKind::Stopping => ActorStatus::Stopping,
            PhaseKind::Stopped => ActorStatus::Stopped,
        }
    }
}

/// A signal without its data: what woke the run loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SignalKind {
    /// A message from the mailbox.
    Message,
    /// Stop for good (operator, ancestor or supervisor).
    Stop,
    /// End the incarnation and wait, down, for a restart (a sibling failed).
    Terminate,
    /// Start a new incarnation after a delay.
    Restart,
    /// Fail now: a linked actor failed, or the children's supervisor gave up.
    Fail,
    /// The actor stopped itself: a normal exit.
    Exit,
    /// A `down` notice about a watched or linked actor.
    Notice,
    /// Hot-swap the code.
    Swap,
    /// Sleep now if idle: the host needs the instance slot.
    Hibernate,
    /// Keep the new code of a held swap.
    SwapCommit,
    /// Reinstate the old code of a held swap.
    SwapRollback,
    /// The swap's probation window ended.
    ProbationOver,
    /// Idle for `hibernate-after`.
    IdleExpired,
    /// The backoff delay of a restart ended.
    RestartDue,
}

/// What the cell does with a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Hand the message (and the tells queued behind it) to the incarnation.
    Deliver,
    /// Wake from hibernation first, then act on the signal as a running
    /// actor would; if no instance can be had, act as [`plan_asleep`] says.
    Wake,
    /// Answer the message's sender with the reason it cannot be handled.
    Refuse,
    /// Stop for good: shutdown hook (if awake), children, dead letters.
    Stop,
    /// End the incarnation (shutdown hook), tell watchers, wait down.
    Terminate,
    /// Already down: just acknowledge the termination.
    AckTerminate,
    /// Drop any incarnation and restart after the delay.
    Restart,
    /// Already restarting: acknowledge.
    AckRestart,
    /// Start the new incarnation the restart was waiting for.
    StartIncarnation,
    /// Go down with a failure; watchers, linked actors and the supervisor
    /// are told.
    Fail,
    /// Shutdown hook, then go down with a normal exit.
    Exit,
    /// Deliver a `down` notice to the `watcher` export.
    NotifyWatcher,
    /// Keep a `down` notice for the next incarnation.
    HoldNotice,
    /// Swap in the new code.
    Swap,
    /// Refuse a swap: another one is on probation.
    RefuseSwapInProgress,
    /// Refuse a swap: the actor has no incarnation to swap.
    RefuseSwapNotRunning,
    /// Sleep now if idle and able to; acknowledge whether it did.
    Hibernate,
    /// Acknowledge that it did not sleep.
    RefuseHibernate,
    /// Keep the new code of a held swap, releasing the old.
    CommitSwap,
    /// Reinstate the old code of a held swap.
    RollBackSwap,
    /// No swap is held: acknowledge the rollback.
    AckRollBack,
    /// The probation window passed: report the swap.
    EndProbation,
    /// Idle long enough: hibernate.
    Sleep,
    /// Nothing to do in this phase.
    Ignore,
}

/// What `signal` does in `phase`, and the phases the cell may end up in.
///
/// Running and Probation are the phases with an incarnation; Hibernating
/// wakes for anything that needs one; Down and Restarting hold what they
/// cannot handle (messages stay queued, `down` notices wait) and refuse
/// what needs an incarnation (swaps). Stopping and Stopped take no
/// signals: the loop does not wait in them.
pub(crate) fn plan(phase: PhaseKind, signal: SignalKind) -> (Action, &'static [PhaseKind]) {
    use Action as A;
    use PhaseKind::*;
    use SignalKind as S;
    match (phase, signal) {
        (Running, S::Message) => (A::Deliver, &[Running, Down]),
        (Running, S::Stop) => (A::Stop, &[Stopping]),
        (Running, S::Terminate) => (A::Terminate, &[Down]),
        (Running, S::Restart) => (A::Restart, &[Restarting]),
        (Running, S::Fail) => (A::Fail, &[Down]),
        (Running, S::Exit) => (A::Exit, &[Down]),
        (Running, S::Notice) => (A::NotifyWatcher, &[Running, Down]),
        // The new code may fail to start (the old one keeps running), the
        // old code's snapshot may fail (down), or a probation of zero with
        // nothing held ends at once.
        (Running, S::Swap) => (A::Swap, &[Probation, Running, Down]),
        // A key of a virtual component leaves the host as it falls asleep.
        (Running, S::Hibernate) => (A::Hibernate, &[Hibernating, Stopped, Running, Down]),
        (Running, S::IdleExpired) => (A::Sleep, &[Hibernating, Stopped, Running, Down]),
        (Running, S::SwapRollback) => (A::AckRollBack, &[Running]),
        (Running, S::SwapCommit | S::ProbationOver | S::RestartDue) => (A::Ignore, &[Running]),

        // A failure before probation passed rolls back to the old code.
        (Probation, S::Message) => (A::Deliver, &[Probation, Running, Down]),
        (Probation, S::Stop) => (A::Stop, &[Stopping]),
        // Going down or stopping for any reason but a failure of the new
        // code ends the trial early: the new code is kept, the swap is
        // reported, and the old code released.
        (Probation, S::Terminate) => (A::Terminate, &[Down]),
        (Probation, S::Restart) => (A::Restart, &[Restarting]),
        (Probation, S::Fail) => (A::Fail, &[Down]),
        (Probation, S::Exit) => (A::Exit, &[Down]),
        (Probation, S::Notice) => (A::NotifyWatcher, &[Probation, Running, Down]),
        (Probation, S::Swap) => (A::RefuseSwapInProgress, &[Probation]),
        (Probation, S::Hibernate) => (A::RefuseHibernate, &[Probation]),
        (Probation, S::SwapCommit) => (A::CommitSwap, &[Running]),
        (Probation, S::SwapRollback) => (A::RollBackSwap, &[Running]),
        // Held for a rolling swap: it stays on probation, passed.
        (Probation, S::ProbationOver) => (A::EndProbation, &[Probation, Running]),
        (Probation, S::IdleExpired | S::RestartDue) => (A::Ignore, &[Probation]),

        // A restart or a failure needs no instance: what it sleeps with
        // becomes the state the next incarnation restores.
        (Hibernating, S::Restart) => (A::Restart, &[Restarting]),
        (Hibernating, S::Fail) => (A::Fail, &[Down]),
        (Hibernating, S::Hibernate) => (A::RefuseHibernate, &[Hibernating]),
        (Hibernating, S::SwapRollback) => (A::AckRollBack, &[Hibernating]),
        (Hibernating, S::Exit | S::SwapCommit | S::ProbationOver | S::IdleExpired | S::RestartDue) => {
            (A::Ignore, &[Hibernating])
        }
        (Hibernating, S::Message | S::Stop | S::Terminate | S::Notice | S::Swap) => {
            (A::Wake, &[Running, Probation, Hibernating, Down, Restarting, Stopping])
        }

        (Down, S::Stop) => (A::Stop, &[Stopping]),
        (Down, S::Terminate) => (A::AckTerminate, &[Down]),
        (Down, S::Restart) => (A::Restart, &[Restarting]),
        (Down, S::Notice) => (A::HoldNotice, &[Down]),
        (Down, S::Swap) => (A::RefuseSwapNotRunning, &[Down]),
        (Down, S::Hibernate) => (A::RefuseHibernate, &[Down]),
        (Down, S::SwapRollback) => (A::AckRollBack, &[Down]),
        // Messages wait in the mailbox (the loop does not read it while
        // down); there is nothing to fail or exit.
        (Down, S::Message | S::Fail | S::Exit | S::SwapCommit | S::ProbationOver | S::IdleExpired | S::RestartDue) => {
            (A::Ignore, &[Down])
        }

        (Restarting, S::RestartDue) => (A::StartIncarnation, &[Running, Down]),
        (Restarting, S::Stop) => (A::Stop, &[Stopping]),
        (Restarting, S::Terminate) => (A::AckTerminate, &[Restarting]),
        (Restarting, S::Restart) => (A::AckRestart, &[Restarting]),
        (Restarting, S::Notice) => (A::HoldNotice, &[Restarting]),
        (Restarting, S::Swap) => (A::RefuseSwapNotRunning, &[Restarting]),
        (Restarting, S::Hibernate) => (A::RefuseHibernate, &[Restarting]),
        (Restarting, S::SwapRollback) => (A::AckRollBack, &[Restarting]),
        (Restarting, S::Message | S::Fail | S::Exit | S::SwapCommit | S::ProbationOver | S::IdleExpired) => {
            (A::Ignore, &[Restarting])
        }

        (Stopping | Stopped, _) => (A::Ignore, &[]),
    }
}

/// What a signal does to a hibernating actor that could not get an
/// instance to wake in (the pool is full): the host's trouble, not the
/// actor's, so it sleeps on with its state where it can.
pub(crate) fn plan_asleep(signal: SignalKind) -> (Action, &'static [PhaseKind]) {
    use Action as A;
    use PhaseKind::*;
    use SignalKind as S;
    match signal {
        S::Message => (A::Refuse, &[Hibernating]),
        S::Stop => (A::Stop, &[Stopping]),
        S::Terminate => (A::Terminate, &[Down]),
        S::Notice => (A::HoldNotice, &[Hibernating]),
        S::Swap => (A::RefuseSwapNotRunning, &[Hibernating]),
        // The others never wake an actor (see `plan`).
        other => plan(Hibernating, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action as A;
    use PhaseKind::*;
    use SignalKind as S;

    const WAITING: [PhaseKind; 5] = [Running, Probation, Hibernating, Down, Restarting];
    const SIGNALS: [SignalKind; 14] = [
        S::Message,
        S::Stop,
        S::Terminate,
        S::Restart,
        S::Fail,
        S::Exit,
        S::Notice,
        S::Swap,
        S::Hibernate,
        S::SwapCommit,
        S::SwapRollback,
        S::ProbationOver,
        S::IdleExpired,
        S::RestartDue,
    ];

    /// The rows that say what an actor does, as the README and the
    /// supervision docs describe it.
    #[test]
    fn each_phase_answers_each_signal_as_specified() {
        let table: &[(PhaseKind, SignalKind, Action, &[PhaseKind])] = &[
            (Running, S::Message, A::Deliver, &[Running, Down]),
            (Running, S::Stop, A::Stop, &[Stopping]),
            (Running, S::Terminate, A::Terminate, &[Down]),
            (Running, S::Fail, A::Fail, &[Down]),
            (Running, S::Exit, A::Exit, &[Down]),
            (Running, S::IdleExpired, A::Sleep, &[Hibernating, Stopped, Running, Down]),
            (Running, S::Swap, A::Swap, &[Probation, Running, Down]),
            (Probation, S::Message, A::Deliver, &[Probation, Running, Down]),
            (Probation, S::Swap, A::RefuseSwapInProgress, &[Probation]),
            (Probation, S::ProbationOver, A::EndProbation, &[Probation, Running]),
            (Probation, S::SwapRollback, A::RollBackSwap, &[Running]),
            (Probation, S::SwapCommit, A::CommitSwap, &[Running]),
            (Hibernating, S::Message, A::Wake, &[Running, Probation, Hibernating, Down, Restarting, Stopping]),
            (Hibernating, S::Restart, A::Restart, &[Restarting]),
            (Hibernating, S::Hibernate, A::RefuseHibernate, &[Hibernating]),
            (Down, S::Message, A::Ignore, &[Down]),
            (Down, S::Notice, A::HoldNotice, &[Down]),
            (Down, S::Swap, A::RefuseSwapNotRunning, &[Down]),
            (Down, S::Restart, A::Restart, &[Restarting]),
            (Down, S::Stop, A::Stop, &[Stopping]),
            (Restarting, S::RestartDue, A::StartIncarnation, &[Running, Down]),
            (Restarting, S::Restart, A::AckRestart, &[Restarting]),
            (Restarting, S::Terminate, A::AckTerminate, &[Restarting]),
            (Restarting, S::Stop, A::Stop, &[Stopping]),
        ];
        for &(phase, signal, action, next) in table {
            assert_eq!(plan(phase, signal), (action, next), "{phase:?} + {signal:?}");
        }
    }

    #[test]
    fn only_the_phases_with_an_incarnation_deliver_messages() {
        for phase in WAITING {
            let (action, _) = plan(phase, S::Message);
            let delivers = action == A::Deliver;
            assert_eq!(delivers, matches!(phase, Running | Probation), "{phase:?}");
        }
    }

    #[test]
    fn a_stop_ends_in_stopping_from_every_phase_the_loop_waits_in() {
        for phase in WAITING {
            let (action, next) = plan(phase, S::Stop);
            match phase {
                Hibernating => assert_eq!(action, A::Wake, "a sleeping actor wakes for its shutdown hook"),
                _ => assert_eq!((action, next), (A::Stop, &[Stopping][..]), "{phase:?}"),
            }
        }
        assert_eq!(plan_asleep(S::Stop), (A::Stop, &[Stopping][..]), "and stops asleep if it cannot wake");
    }

    #[test]
    fn a_down_actor_holds_what_needs_an_incarnation_and_refuses_swaps() {
        for phase in [Down, Restarting] {
            assert_eq!(plan(phase, S::Notice).0, A::HoldNotice);
            assert_eq!(plan(phase, S::Swap).0, A::RefuseSwapNotRunning);
            assert_eq!(plan(phase, S::Hibernate).0, A::RefuseHibernate);
            assert_eq!(plan(phase, S::SwapRollback).0, A::AckRollBack);
        }
    }

    #[test]
    fn every_request_that_carries_an_acknowledgement_gets_one_in_every_phase() {
        // Ignoring a signal is only right for those nobody waits on.
        let acknowledged = [S::Stop, S::Terminate, S::Restart, S::Swap, S::Hibernate, S::SwapRollback];
        for phase in WAITING {
            for signal in acknowledged {
                let (action, _) = plan(phase, signal);
                assert_ne!(action, A::Ignore, "{phase:?} ignores {signal:?}, leaving its sender waiting");
            }
        }
    }

    #[test]
    fn a_plan_never_ends_outside_the_phases_it_names() {
        // Each row names where it may end; an empty list only where the
        // loop never waits.
        for phase in WAITING {
            for signal in SIGNALS {
                let (_, next) = plan(phase, signal);
                assert!(!next.is_empty(), "{phase:?} + {signal:?} names no next phase");
            }
        }
        for phase in [Stopping, Stopped] {
            for signal in SIGNALS {
                assert_eq!(plan(phase, signal), (A::Ignore, &[][..]));
            }
        }
    }

    #[test]
    fn an_actor_asleep_without_an_instance_refuses_messages_and_sleeps_on() {
        assert_eq!(plan_asleep(S::Message), (A::Refuse, &[Hibernating][..]));
        assert_eq!(plan_asleep(S::Notice), (A::HoldNotice, &[Hibernating][..]));
        assert_eq!(plan_asleep(S::Swap), (A::RefuseSwapNotRunning, &[Hibernating][..]));
        assert_eq!(plan_asleep(S::Terminate), (A::Terminate, &[Down][..]));
        for signal in SIGNALS {
            assert_ne!(plan_asleep(signal).0, A::Wake, "{signal:?} would try to wake again");
        }
    }

    #[test]
    fn status_is_derived_from_the_phase() {
        assert_eq!(Phase::Down(None).status(), ActorStatus::Restarting);
        assert_eq!(Phase::Restarting { due: None, ack: None }.status(), ActorStatus::Restarting);
        assert_eq!(Phase::Stopped(Ended::Stopped).status(), ActorStatus::Stopped);
        assert_eq!(Phase::Stopped(Ended::Failed).status(), ActorStatus::Failed);
        assert_eq!(PhaseKind::Probation.status(), ActorStatus::Running);
        assert_eq!(PhaseKind::Hibernating.status(), ActorStatus::Hibernating);
    }

    /// Every actor's task holds its phase, awake or asleep.
    #[test]
    fn a_phase_takes_at_most_three_words() {
        let size = std::mem::size_of::<Phase>();
        assert!(size <= 3 * std::mem::size_of::<usize>(), "Phase is {size} bytes; box the variant that grew");
    }
}
