//! An actor's lifecycle: its first start, going down (a failure, a normal
//! exit, a termination by its supervisor), restarting after the backoff,
//! and stopping for good in order (shutdown hook, children, queued
//! messages, address).

use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use super::phase::{Ended, Phase, Stopping};
use super::{Cell, Signal};
use crate::actor::incarnation::Incarnation;
use crate::actor::{DownReason, Exit, Failure, FailureKind, RestartFrom, Snapshot};
use crate::events::{EventKind, Phases};
use crate::message::{Address, CallError, DeadLetterReason};

impl Cell {
    /// Starts the first incarnation and tells the spawner how it went. A
    /// durable actor recovered with a committed state and nothing to
    /// handle starts asleep: its instance comes with its first message, so
    /// that a host recovers many actors at once without instantiating any.
    /// So does an actor in memory started `asleep` with a state (a
    /// passivated key of a virtual component), whatever it has to handle:
    /// waking is what restores that state.
    pub(super) async fn first_incarnation(
        &mut self,
        started: oneshot::Sender<Result<(), Failure>>,
        asleep: Option<Box<Snapshot>>,
    ) -> Phase {
        if let Some(state) = asleep {
            let _ = started.send(Ok(()));
            // Activated for a message already queued (a key's activation),
            // and no request ahead of it: woken for it at once, as the
            // asleep table would after a turn of the loop.
            if self.inbox.control.is_empty()
                && let Some(envelope) = self.inbox.mailbox.try_recv()
            {
                return Box::pin(self.wake_for(*state, Signal::Message(envelope))).await;
            }
            return Phase::Hibernating(state);
        }
        if self.me.is_durable()
            && self.inbox.mailbox.is_empty()
            && let Some(state) = self.snapshots.last().cloned()
        {
            // While it sleeps, its phase holds the one copy.
            self.snapshots.forget();
            // Its wake-up comes with a message, maybe much later.
            self.began = None;
            let _ = started.send(Ok(()));
            return Phase::Hibernating(Box::new(state));
        }
        match self.incarnate(false).await {
            Ok(inc) => {
                let _ = started.send(Ok(()));
                Phase::Running(inc)
            }
            Err(failure) => {
                self.me.stats().failed(&failure);
                let _ = started.send(Err(failure.clone()));
                let reason = DownReason::Failed(failure);
                Phase::Stopping(Box::new(Stopping { incarnation: None, reason, ack: None }))
            }
        }
    }

    /// Starts an incarnation: from the restart state if `restarting` and
    /// the policy says so, else fresh with `init`.
    pub(super) async fn incarnate(&mut self, restarting: bool) -> Result<Incarnation, Failure> {
        let number = self.me.stats().next_incarnation();
        debug!(incarnation = number, "instantiating");
        let started = Instant::now();
        let mut inc =
            Incarnation::instantiate(&self.spec, &self.spec.component, &self.me, &self.system, &self.resources).await?;
        let instantiated = Instant::now();
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
            // A durable actor starts from its committed state, if it has one.
            RestartFrom::Snapshot if (restarting || self.me.is_durable()) && inc.persistent() => {
                self.snapshots.last().cloned()
            }
            _ => None,
        };
        let from_snapshot = snapshot.is_some();
        let restored = match snapshot {
            Some(state) => {
                inc.restore(&self.me, &state).await?;
                debug!(incarnation = number, bytes = state.bytes.len(), "restored from snapshot");
                let restored = Instant::now();
                self.replay_tail(&mut inc).await?;
                restored
            }
            None => {
                inc.init(&self.me, &self.spec.policy.config).await?;
                Instant::now()
            }
        };
        let phases =
            Phases::between(self.began.take(), started, (instantiated, inc.was_warm()), restored, Instant::now());
        self.system.events().publish(self.address(), EventKind::Started { incarnation: number, phases: Some(phases) });
        if restarting {
            self.me.stats().restarted();
            self.system.restarted(&self.me, from_snapshot);
        }
        Ok(inc)
    }

    /// Stops for good after the current message: a stop request in any
    /// phase. While down after a failure, the actor ends as failed.
    pub(super) fn stop(&mut self, phase: Phase, ack: Option<oneshot::Sender<()>>) -> Phase {
        let (incarnation, reason) = match phase {
            Phase::Running(inc) => (Some(inc), DownReason::Stopped),
            Phase::Probation(inc, trial) => {
                trial.stopped(self.address());
                (Some(inc), DownReason::Stopped)
            }
            Phase::Down(Some(failure)) => (None, DownReason::Failed(*failure)),
            _ => (None, DownReason::Stopped),
        };
        Phase::Stopping(Box::new(Stopping { incarnation, reason, ack }))
    }

    /// Ends the incarnation because its supervisor asked (a sibling
    /// failed): shutdown hook, watchers told, then down until restarted.
    pub(super) async fn terminate(&mut self, phase: Phase, ack: oneshot::Sender<()>) -> Phase {
        match self.leave_probation(phase) {
            Phase::Running(mut inc) => {
                let _ = inc.shutdown(&self.me).await;
                self.system.events().publish(self.address(), EventKind::Terminated);
                self.notify_down(DownReason::Stopped, false, &[]);
            }
            // Asleep without an instance to run its hook: what it sleeps
            // with is what its next incarnation restores.
            Phase::Hibernating(state) => self.snapshots.put_back(&self.spec.policy, *state),
            _ => {}
        }
        let _ = ack.send(());
        Phase::Down(None)
    }

    /// The actor stopped itself: shutdown hook, then down with a normal
    /// exit for its supervisor to judge.
    pub(super) async fn exit(&mut self, phase: Phase) -> Phase {
        if let Phase::Running(mut inc) = self.leave_probation(phase) {
            let _ = inc.shutdown(&self.me).await;
            info!("exited normally");
            self.system.events().publish(self.address(), EventKind::Exited);
            self.notify_down(DownReason::Stopped, false, &[]);
            self.system.child_down(&self.me, Exit::Normal);
        }
        Phase::Down(None)
    }

    /// Fails from outside: a linked actor failed (`chain` is the link path
    /// so far), or the children's supervisor gave up.
    pub(super) async fn fail_with(&mut self, phase: Phase, failure: Failure, chain: &[Address]) -> Phase {
        match self.leave_probation(phase) {
            Phase::Running(inc) => drop(inc),
            Phase::Hibernating(state) => self.snapshots.put_back(&self.spec.policy, *state),
            _ => {}
        }
        error!(kind = %failure.kind, detail = %failure.detail, "failing with a linked actor");
        self.go_down(failure, chain)
    }

    /// The incarnation failed (and is gone): record and publish it, tell
    /// watchers and links, and hand the decision to the supervisor.
    pub(super) fn go_down(&mut self, failure: Failure, chain: &[Address]) -> Phase {
        self.me.stats().failed(&failure);
        self.system.events().publish(self.address(), EventKind::failed(&failure));
        self.notify_down(DownReason::Failed(failure.clone()), false, chain);
        self.system.child_down(&self.me, Exit::Failed(failure.clone()));
        Phase::Down(Some(Box::new(failure)))
    }

    /// Drops any incarnation and waits out the backoff `delay` before a
    /// new one starts (at once for zero: even a zero sleep would wait for
    /// the timer's next tick).
    pub(super) fn schedule_restart(
        &mut self,
        phase: Phase,
        delay: Duration,
        ack: Option<oneshot::Sender<Result<(), Failure>>>,
    ) -> Phase {
        if let Phase::Hibernating(state) = self.leave_probation(phase) {
            self.snapshots.put_back(&self.spec.policy, *state);
        }
        let due = (!delay.is_zero()).then(|| Box::pin(tokio::time::sleep(delay)));
        Phase::Restarting { due, ack }
    }

    /// The backoff is over: a new incarnation, then the `down` notices held
    /// while it was down.
    pub(super) async fn restart(&mut self, ack: Option<oneshot::Sender<Result<(), Failure>>>) -> Phase {
        match self.incarnate(true).await {
            Ok(inc) => {
                if let Some(ack) = ack {
                    let _ = ack.send(Ok(()));
                }
                self.deliver_held_notices(inc).await
            }
            Err(failure) => {
                if let Some(ack) = ack {
                    let _ = ack.send(Err(failure.clone()));
                }
                self.go_down(failure, &[])
            }
        }
    }

    /// Stops for good: the shutdown hook (when stopped, not failed), then
    /// children in reverse start order, then what is still queued becomes
    /// dead letters, and the address is released.
    pub(super) async fn finish(&mut self, stopping: Stopping) -> Ended {
        let Stopping { incarnation, reason, ack } = stopping;
        self.me.cancel_all_timers();
        if let Some(mut inc) = incarnation {
            // A durable actor that journals ends its journal with a
            // snapshot: the next host replays nothing.
            if self.me.is_durable()
                && self.spec.policy.journals()
                && let Ok(Some(state)) = inc.snapshot(&self.me).await
            {
                self.snapshot_journal(&state).await;
            }
            if let Err(failure) = inc.shutdown(&self.me).await {
                warn!(kind = %failure.kind, detail = %failure.detail, "shutdown hook failed");
            }
        }
        self.system.stop_children(&self.me).await;
        self.inbox.mailbox.close();
        let mut dropped = 0usize;
        while let Some(envelope) = self.inbox.mailbox.try_recv() {
            dropped += 1;
            let function = self.function_name(&envelope.call);
            match &reason {
                // Its askers learn why: it could not start, say.
                DownReason::Failed(failure) => self.report_failed(&function, envelope.into_parts().2, failure),
                DownReason::Stopped => {
                    self.system.dead_letter(self.address(), &function, DeadLetterReason::Stopped);
                    if let Some(reply) = envelope.into_parts().2 {
                        let _ = reply.send(Err(CallError::Stopped(self.address().clone())));
                    }
                }
            }
        }
        if dropped > 0 {
            warn!(dropped, "stopped with messages still queued");
        }
        self.system.unregister(&self.me);
        let (ended, why) = match &reason {
            DownReason::Stopped => (Ended::Stopped, "stopped".to_string()),
            DownReason::Failed(f) => (Ended::Failed, format!("failed: {f}")),
        };
        self.notify_down(reason, true, &[]);
        // Published before anyone waiting on `stopped()` is woken.
        self.enter(Phase::Stopped(ended));
        self.me.mark_done();
        self.system.events().publish(self.address(), EventKind::Stopped { reason: why });
        info!(?ended, "stopped");
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
        ended
    }

    /// A hibernating actor woke (or could not) for `signal`: act on it in
    /// the phase it is now in.
    pub(super) async fn after_wake(&mut self, phase: Phase, signal: Signal) -> Phase {
        let phase = self.enter(phase);
        Box::pin(self.transition(phase, signal)).await
    }
}
