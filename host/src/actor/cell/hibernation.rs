//! Hibernation: an idle actor gives its instance back and keeps only its
//! snapshot, like a `gen_server` started with `{hibernate_after, Ms}`.
//!
//! An actor whose policy sets `hibernate-after` and whose component exports
//! `troupe:actor/persistence` hibernates once it has handled nothing for
//! that long: the cell takes a snapshot and drops the incarnation, which
//! returns the instance's memory slot, tables and fiber stack to the pool.
//! What stays is what makes the actor reachable: its address, mailbox,
//! links, monitors, children and the snapshot bytes. The next message or
//! control request wakes it: a new instance from the cached `InstancePre`,
//! `restore(snapshot)`, then the message. Senders see nothing but the
//! wake-up latency (an instantiation, as at spawn).
//!
//! While such an actor waits it also publishes since when it has been idle
//! (`ActorRef::set_idle_since`): when every instance slot is taken, the
//! host asks the longest-idle one to hibernate at once (`ActorRef::hibernate_now`)
//! and the instantiation that needed a slot tries again.
//!
//! A tell to a sleeping durable actor that cannot get an instance (the
//! pool is full of busy actors) is not refused: it was acknowledged, so it
//! stays first in the mailbox, and the actor tries again every
//! [`WAKE_RETRY`] until it wakes. (An ask, or a tell to an actor in memory,
//! is refused with the pool's error: its sender can try again.)
//!
//! The idle clock costs one `Instant::now()` per batch of messages: the
//! timer is armed once and, when it fires early because the actor was busy
//! meanwhile, re-armed for the remaining time.

use std::pin::Pin;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};
use tracing::{debug, warn};

use super::phase::{Action, Ended, Phase, plan_asleep};
use super::{Cell, Signal};
use crate::actor::Failure;
use crate::actor::host_api::Snapshot;
use crate::actor::incarnation::Incarnation;
use crate::events::{EventKind, Phases};

/// How long a sleeping durable actor that could not get an instance waits
/// before it tries again to wake for the tell it keeps: long enough not to
/// spin on a full pool, short enough that its control requests (a stop)
/// wait little.
pub(crate) const WAKE_RETRY: Duration = Duration::from_millis(50);

/// Measures how long an actor has been idle.
pub(crate) struct IdleClock {
    after: Duration,
    last_active: Instant,
    // Boxed: a `Sleep` is larger than the rest of this. Made when first
    // waited on and dropped while the actor sleeps (`release`).
    timer: Option<Pin<Box<Sleep>>>,
}

impl IdleClock {
    /// A clock that expires `after` without activity, starting now.
    pub fn new(after: Duration) -> Self {
        IdleClock { after, last_active: Instant::now(), timer: None }
    }

    /// When the actor last did something.
    pub fn last_active(&self) -> std::time::Instant {
        self.last_active.into_std()
    }

    /// Notes activity: the idle period starts again.
    pub fn touch(&mut self) {
        self.last_active = Instant::now();
    }

    /// Resolves once the actor has been idle for the whole period.
    pub async fn expired(&mut self) {
        loop {
            let due = self.last_active + self.after;
            if Instant::now() >= due {
                return;
            }
            let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
            if timer.deadline() != due {
                timer.as_mut().reset(due);
            }
            timer.as_mut().await;
        }
    }

    /// Drops the timer while the actor sleeps; the next wait makes another.
    pub fn release(&mut self) {
        self.timer = None;
    }
}

/// Resolves when `clock` expires, or never without one.
pub(crate) async fn idle_expired(clock: Option<&mut IdleClock>) {
    match clock {
        Some(clock) => clock.expired().await,
        None => std::future::pending().await,
    }
}

/// Why a hibernating actor could not wake.
enum WakeFailure {
    /// No new instance (the pool is full, say): the host's trouble, not the
    /// actor's. It sleeps on with its state, handed back here.
    NoInstance(Failure, Box<Snapshot>),
    /// Its `restore` failed: the actor is broken, as if a message had failed.
    Restore(Failure),
}

impl Cell {
    /// Puts an idle actor to sleep: snapshot, then drop the incarnation (its
    /// instance, memory and stack go back to the pool). Stays running if
    /// its code turns out not to be persistent (a swap replaced it), and
    /// goes down if `snapshot` fails.
    pub(super) async fn hibernate(&mut self, mut inc: Incarnation) -> Phase {
        match inc.snapshot(&self.me).await {
            Ok(Some(state)) => {
                drop(inc);
                debug!(bytes = state.bytes.len(), "hibernating");
                // A durable actor that journals ends its journal with this
                // state, so that its recovery replays nothing.
                self.snapshot_journal(&state).await;
                // One copy of the state while asleep, in the phase. It
                // contains every message handled: none is left to replay.
                self.snapshots.forget();
                self.snapshots.set_tail(Vec::new());
                let bytes = state.bytes.len() as u64;
                // Neither queues grown by bursts nor the idle timer need to
                // stay while it sleeps.
                self.inbox.mailbox.shrink();
                self.inbox.control.shrink();
                if let Some(idle) = &mut self.idle {
                    idle.release();
                }
                self.me.stats().set_memory(0, 0);
                if self.may_leave() && self.system.passivate(&self.me, &state) {
                    return self.passivated(bytes);
                }
                self.system.events().publish(self.address(), EventKind::Hibernated { bytes });
                Phase::Hibernating(Box::new(state))
            }
            Ok(None) => {
                self.idle = None;
                Phase::Running(inc)
            }
            Err(mut failure) => {
                failure.detail = format!("in `snapshot`, hibernating: {}", failure.detail);
                drop(inc);
                let failure = self.explain(failure);
                self.go_down(failure, &[])
            }
        }
    }

    /// Could it leave the host as it sleeps, its next activation finding
    /// everything it holds (see [`ActorSystem::passivate`])? Not while
    /// others watch or link to it, nor with notices held for it; a durable
    /// actor not with commits failing or tells undelivered; an actor in
    /// memory not with timers armed or bindings made at run time (they
    /// live only here).
    ///
    /// [`ActorSystem::passivate`]: crate::actor::ActorSystem::passivate
    fn may_leave(&self) -> bool {
        if self.me.has_links() || !self.held_notices.is_empty() {
            return false;
        }
        match &self.durable {
            Some(durable) => {
                !durable.unsaved
                    && durable.unsent.is_empty()
                    && durable.courier.as_ref().is_none_or(|courier| courier.is_idle())
            }
            None => self.me.next_timer().is_none() && self.me.binding_count() == self.spec.policy.bindings.len(),
        }
    }

    /// It left the host: its timers are disarmed (its next activation arms
    /// those it committed), and those waiting for it to stop are woken.
    fn passivated(&mut self, bytes: u64) -> Phase {
        self.me.cancel_all_timers();
        debug!(bytes, "passivated");
        self.system.events().publish(self.address(), EventKind::Passivated { bytes });
        self.me.mark_done();
        Phase::Stopped(Ended::Passivated)
    }

    /// The host needs an instance slot, or a user passivates the actor:
    /// sleep now if able to, and say whether it did. Busy with queued
    /// messages, or without `persistence`, it does not.
    pub(super) async fn hibernate_on_request(&mut self, inc: Incarnation, ack: oneshot::Sender<bool>) -> Phase {
        let able = inc.persistent() && self.inbox.mailbox.is_empty();
        let next = if able { self.hibernate(inc).await } else { Phase::Running(inc) };
        let _ = ack.send(matches!(next, Phase::Hibernating(_) | Phase::Stopped(Ended::Passivated)));
        next
    }

    /// Wakes a sleeping actor for `signal`, then acts on the signal in the
    /// phase it woke into. Without an instance it sleeps on and acts as the
    /// asleep table says; if its `restore` fails it goes down, as if the
    /// signal had made it fail.
    pub(super) async fn wake_for(&mut self, state: Snapshot, signal: Signal) -> Phase {
        match self.wake(state).await {
            Ok(inc) => self.after_wake(Phase::Running(inc), signal).await,
            Err(WakeFailure::NoInstance(failure, state)) => match (plan_asleep(signal.kind()).0, signal) {
                // An acknowledged tell to a durable actor is never lost: it
                // waits, first in line, for an instance.
                (Action::Refuse, Signal::Message(envelope)) if self.me.is_durable() && !envelope.is_ask() => {
                    self.inbox.mailbox.put_back(std::iter::once(envelope));
                    tokio::time::sleep(WAKE_RETRY).await;
                    Phase::Hibernating(state)
                }
                (Action::Refuse, Signal::Message(envelope)) => {
                    self.refuse(envelope, &failure);
                    Phase::Hibernating(state)
                }
                (action, signal) => Box::pin(self.act(action, Phase::Hibernating(state), signal)).await,
            },
            Err(WakeFailure::Restore(failure)) => {
                let failure = self.explain(failure);
                match signal {
                    Signal::Message(envelope) => {
                        self.refuse(envelope, &failure);
                        self.go_down(failure, &[])
                    }
                    signal => {
                        let down = self.go_down(failure, &[]);
                        self.after_wake(down, signal).await
                    }
                }
            }
        }
    }

    /// A new instance restored from `state`. The same incarnation as far as
    /// counts and events go.
    async fn wake(&mut self, state: Snapshot) -> Result<Incarnation, WakeFailure> {
        let started = std::time::Instant::now();
        let instance =
            Incarnation::instantiate(&self.spec, &self.spec.component, &self.me, &self.system, &self.resources);
        let mut inc = match instance.await {
            Ok(inc) => inc,
            Err(failure) => {
                warn!(kind = %failure.kind, detail = %failure.detail, "cannot wake; sleeping on");
                return Err(WakeFailure::NoInstance(failure, Box::new(state)));
            }
        };
        let instantiated = std::time::Instant::now();
        let restored = inc.restore(&self.me, &state).await;
        let restored_at = std::time::Instant::now();
        let bytes = state.bytes.len();
        // Kept for restarts, whether or not it restored.
        self.snapshots.put_back(&self.spec.policy, state);
        restored.map_err(WakeFailure::Restore)?;
        self.replay_tail(&mut inc).await.map_err(WakeFailure::Restore)?;
        debug!(bytes, "woke from hibernation");
        let phases = Phases::between(
            self.began.take(),
            started,
            (instantiated, inc.was_warm()),
            restored_at,
            std::time::Instant::now(),
        );
        self.system.events().publish(self.address(), EventKind::Woke { phases: Some(phases) });
        Ok(inc)
    }
}
