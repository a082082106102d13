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
