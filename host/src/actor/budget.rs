//! The clock of one message: its deadline, and how a long-running message
//! shares its thread.
//!
//! # The deadline
//!
//! `deadline-ms` bounds how long a message takes as its caller experiences
//! it: wall-clock time from the moment the guest starts on it, pauses for
//! fairness included, minus the time the guest spends waiting in host calls
//! (an ask to another actor, a spawn waiting for its child's `init`).
//! Waiting is not the actor's doing, and its caller's own timeout covers it.
//!
//! # Fair slicing
//!
//! The engine's epoch ticks every [`crate::engine::DEFAULT_EPOCH_TICK`];
//! each time a running guest crosses a tick, wasmtime asks what to do
//! ([`Budget::on_tick`]). Within the deadline, the guest *yields* to tokio,
//! so actors sharing a worker thread interleave. A message that has run
//! for [`THROTTLE_AFTER_TICKS`] ticks is long-running: after each further
//! tick it pauses for [`THROTTLE_PAUSE_TICKS`], so that a runaway takes at
//! most a fifth of a thread from its neighbours while it runs out its
//! deadline. The pauses count against the deadline (they are part of how
//! long the message takes), and a pause never reaches past the deadline,
//! so a runaway is stopped within about two ticks of it.
//!
//! The clock starts at the first tick the guest crosses: reading the time
//! costs a message as much as a small handler takes, and most messages end
//! before a tick. A message is never charged more than it ran, so never
//! stopped before its deadline; what it ran before that first tick (less
//! than a tick) is not charged, so it is stopped at most a tick later.
//!
//! # The wall-clock ceiling
//!
//! An actor granted outbound HTTP has, besides, a *ceiling* per message:
//! wall-clock time from when the message was armed, waits included (see
//! `http_port.rs`). A message past it is interrupted at its next tick,
//! which a guest blocked on a response reaches as soon as that request
//! ends (each request's own timeouts bound the wait).
//!
//! Everything here takes the current time as an argument: the policy is
//! pure, and its tests drive it with a simulated clock.

use std::time::{Duration, Instant};

/// Ticks a message may run at full speed. Past them it is a
/// *long-running* message.
pub const THROTTLE_AFTER_TICKS: u64 = 10;

/// After each further tick a long-running message pauses this many ticks,
/// so that a runaway (or merely heavy) actor takes at most a fifth of a
/// thread from the actors sharing it.
pub const THROTTLE_PAUSE_TICKS: u32 = 4;

/// What a failure past the ceiling is called, in its detail.
pub(crate) const CEILING: &str = "wall-clock ceiling";

/// What a guest that crossed an epoch tick does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Yield to the runtime, then go on.
    Yield,
    /// Pause this long (a long-running message), then go on.
    Pause(Duration),
    /// The deadline has passed: stop the guest.
    Interrupt,
}

/// The deadline of the message (or hook call) in progress.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    /// When the guest started on the message (as of the first tick it
    /// crossed; `None` before that).
    started: Option<Instant>,
    /// How long the message may take.
    limit: Duration,
    /// Time spent waiting in host calls, which does not count.
    waited: Duration,
    /// Epoch ticks the guest has crossed on this message.
    ticks: u64,
    /// The length of a tick.
    tick: Duration,
    /// The wall-clock ceiling per message, waits included, if any.
    ceiling: Option<Duration>,
    /// When the message was armed (kept only with a ceiling: reading the
    /// clock costs a small message as much as handling it).
    armed: Option<Instant>,
    /// The message was interrupted by the ceiling, not the deadline.
    ceiling_hit: bool,
}

impl Budget {
    /// A budget with epoch ticks of length `tick`, not yet armed.
    pub fn new(tick: Duration) -> Self {
        Budget {
            started: None,
            limit: Duration::ZERO,
            waited: Duration::ZERO,
            ticks: 0,
            tick,
            ceiling: None,
            armed: None,
            ceiling_hit: false,
        }
    }

    /// Every message from now on may take at most `ceiling` of wall-clock
    /// time, waits included.
    pub fn set_ceiling(&mut self, ceiling: Duration) {
        self.ceiling = Some(ceiling);
    }

    /// When the current message was armed, if there is a ceiling.
    pub fn armed_at(&self) -> Option<Instant> {
        self.armed
    }

    /// The ceiling, if the last interrupt was its doing.
    pub fn ceiling_hit(&self) -> Option<Duration> {
        self.ceiling.filter(|_| self.ceiling_hit)
    }

    /// A message that may take `limit` begins; its clock starts at its
    /// first tick.
    pub fn arm(&mut self, limit: Duration) {
        self.started = None;
        self.limit = limit;
        self.waited = Duration::ZERO;
        self.ticks = 0;
        self.ceiling_hit = false;
        if self.ceiling.is_some() {
            self.armed = Some(Instant::now());
        }
    }

    /// The guest spent `waited` in a host call: not counted. (Before the
    /// clock starts there is nothing to take it from.)
    pub fn waited(&mut self, waited: Duration) {
        if self.started.is_some() {
            self.waited = self.waited.saturating_add(waited);
        }
    }

    /// How long the message has taken by `now`, waits excluded.
    pub fn spent(&self, now: Instant) -> Duration {
        let Some(started) = self.started else { return Duration::ZERO };
        now.saturating_duration_since(started).saturating_sub(self.waited)
    }

    /// The guest crossed an epoch tick at `now`.
    pub fn on_tick(&mut self, now: Instant) -> Tick {
        if self.started.is_none() {
            self.started = Some(now);
        }
        let spent = self.spent(now);
        if spent >= self.limit {
            return Tick::Interrupt;
        }
        if let (Some(ceiling), Some(armed)) = (self.ceiling, self.armed)
            && now.saturating_duration_since(armed) >= ceiling
        {
            self.ceiling_hit = true;
            return Tick::Interrupt;
        }
        self.ticks += 1;
        if self.ticks <= THROTTLE_AFTER_TICKS {
            return Tick::Yield;
        }
        // A long-running message: cede most of the thread to others, but
        // never past the deadline, so the next tick can stop it.
        let pause = (self.tick * THROTTLE_PAUSE_TICKS).min(self.limit - spent);
        Tick::Pause(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(1);

    /// A guest that never stops: it crosses a tick every `TICK` of running,
    /// pausing as told. Returns when it was interrupted, after `t0`.
    fn runaway(limit: Duration, t0: Instant) -> Duration {
        let mut budget = Budget::new(TICK);
        budget.arm(limit);
        let mut now = t0;
        loop {
            now += TICK;
            match budget.on_tick(now) {
                Tick::Interrupt => return now - t0,
                Tick::Yield => {}
                Tick::Pause(pause) => now += pause,
            }
            assert!(now - t0 < limit * 10, "never interrupted");
        }
    }

    #[test]
    fn a_runaway_is_stopped_within_its_deadline_and_two_ticks_whatever_the_throttling() {
        let t0 = Instant::now();
        for ms in [1, 5, 10, 11, 50, 100, 300, 1000, 2000, 60_000] {
            let limit = Duration::from_millis(ms);
            let stopped = runaway(limit, t0);
            assert!(stopped >= limit, "{ms} ms: stopped early, at {stopped:?}");
            assert!(stopped <= limit + 2 * TICK, "{ms} ms: stopped at {stopped:?}");
        }
    }

    #[test]
    fn a_long_running_message_runs_at_most_a_fifth_of_the_time() {
        let t0 = Instant::now();
        let mut budget = Budget::new(TICK);
        budget.arm(Duration::from_secs(10));
        let (mut now, mut running) = (t0, Duration::ZERO);
        for _ in 0..1000 {
            now += TICK;
            running += TICK;
            if let Tick::Pause(pause) = budget.on_tick(now) {
                now += pause;
            }
        }
        let share = running.as_secs_f64() / (now - t0).as_secs_f64();
        assert!(share <= 0.21, "ran {share:.2} of the time");
    }

    #[test]
    fn time_spent_waiting_in_host_calls_does_not_count() {
        let t0 = Instant::now();
        let mut budget = Budget::new(TICK);
        budget.arm(Duration::from_millis(100));
        // An ask that takes an hour before the first tick costs nothing...
        budget.waited(Duration::from_secs(3600));
        let t1 = t0 + Duration::from_secs(3600);
        assert_ne!(budget.on_tick(t1), Tick::Interrupt);
        assert_eq!(budget.spent(t1), Duration::ZERO, "the clock starts at the first tick, never earlier");
        // ...nor does one after ninety milliseconds of running.
        budget.waited(Duration::from_secs(3600));
        let after = t1 + Duration::from_secs(3600) + Duration::from_millis(90);
        assert_eq!(budget.spent(after), Duration::from_millis(90));
        assert_ne!(budget.on_tick(after), Tick::Interrupt);
        assert_eq!(budget.on_tick(after + Duration::from_millis(10)), Tick::Interrupt);
    }

    #[test]
    fn the_first_ticks_yield_and_later_ones_pause() {
        let t0 = Instant::now();
        let mut budget = Budget::new(TICK);
        budget.arm(Duration::from_secs(1));
        let decisions: Vec<Tick> =
            (1..=THROTTLE_AFTER_TICKS + 1).map(|i| budget.on_tick(t0 + TICK * i as u32)).collect();
        assert!(decisions[..THROTTLE_AFTER_TICKS as usize].iter().all(|d| *d == Tick::Yield));
        assert_eq!(decisions[THROTTLE_AFTER_TICKS as usize], Tick::Pause(TICK * THROTTLE_PAUSE_TICKS));
    }

    #[test]
    fn the_ceiling_counts_waits_that_the_deadline_does_not() {
        let mut budget = Budget::new(TICK);
        budget.set_ceiling(Duration::from_millis(500));
        budget.arm(Duration::from_millis(100));
        let t0 = budget.armed.unwrap();
        assert_eq!(budget.on_tick(t0 + TICK), Tick::Yield);
        budget.waited(Duration::from_millis(450));
        assert_eq!(budget.on_tick(t0 + Duration::from_millis(460)), Tick::Yield, "waits are off the deadline");
        assert_eq!(budget.ceiling_hit(), None);
        budget.waited(Duration::from_millis(100));
        assert_eq!(budget.on_tick(t0 + Duration::from_millis(570)), Tick::Interrupt, "but on the ceiling");
        assert_eq!(budget.ceiling_hit(), Some(Duration::from_millis(500)));
        budget.arm(Duration::from_millis(100));
        assert_eq!(budget.ceiling_hit(), None, "a new message starts clean");
    }

    #[test]
    fn arming_starts_a_fresh_clock() {
        let t0 = Instant::now();
        let mut budget = Budget::new(TICK);
        budget.arm(Duration::from_millis(5));
        assert_eq!(budget.on_tick(t0 + TICK), Tick::Yield);
        assert_eq!(budget.on_tick(t0 + Duration::from_millis(6)), Tick::Interrupt);
        budget.arm(Duration::from_millis(5));
        assert_eq!(budget.on_tick(t0 + Duration::from_millis(7)), Tick::Yield);
    }
}
