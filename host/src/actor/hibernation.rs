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
//! host asks the longest-idle one to hibernate at once (`Control::Hibernate`)
//! and the instantiation that needed a slot tries again.
//!
//! The idle clock costs one `Instant::now()` per batch of messages: the
//! timer is armed once and, when it fires early because the actor was busy
//! meanwhile, re-armed for the remaining time.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Measures how long an actor has been idle.
pub(crate) struct IdleClock {
    after: Duration,
    last_active: Instant,
    // Boxed: a `Sleep` is larger than the rest of this and most actors
    // never hibernate.
    timer: Pin<Box<Sleep>>,
}

impl IdleClock {
    /// A clock that expires `after` without activity, starting now.
    pub fn new(after: Duration) -> Self {
        let now = Instant::now();
        IdleClock { after, last_active: now, timer: Box::pin(tokio::time::sleep_until(now + after)) }
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
            if self.timer.deadline() != due {
                self.timer.as_mut().reset(due);
            }
            self.timer.as_mut().await;
        }
    }
}

/// Resolves when `clock` expires, or never without one.
pub(crate) async fn idle_expired(clock: Option<&mut IdleClock>) {
    match clock {
        Some(clock) => clock.expired().await,
        None => std::future::pending().await,
    }
}
