//! A circuit breaker: when a dependency keeps failing, calls to it fail
//! fast instead of waiting on it, piling up mailboxes and adding load to
//! something already down; now and then one trial call finds out whether
//! it is back.
//!
//! # States
//!
//! | state | a call | its outcome | next state |
//! |---|---|---|---|
//! | **closed** | goes through | success: the consecutive-failure count returns to 0 | closed |
//! | | | failure, and `failures` consecutive failures, or a failure rate of at least `failure-rate` over the window with at least `min-calls` calls in it | **open** for `reset` |
//! | **open** | fails fast ([`CircuitOpen`]) until `reset` has passed since it opened; then the breaker is half-open and this call is its trial | | |
//! | **half-open** | the first call is the trial; every other call fails fast while the trial is in flight | trial succeeds | **closed**, counts and `reset` back to their start |
//! | | | trial fails | **open** for twice the last reset timeout, at most `max-reset` |
//! | | | trial cancelled | half-open, the next call is the trial |
//!
//! * **Outcomes** are the caller's to classify: a [`Failure`](Outcome::Failure)
//!   is a sign that the dependency is unwell (a connection refused, a
//!   timeout, a 5xx); an answer that is the caller's own fault (a 404) is a
//!   [`Success`](Outcome::Success) for the breaker. A call abandoned before
//!   its outcome is known (the caller gave up) is
//!   [`Cancelled`](Outcome::Cancelled): it counts for nothing, and if it
//!   was the trial, the next call becomes the trial. Every admitted call
//!   must be recorded once, or a half-open breaker waits on its trial
//!   forever; the caller's timeouts bound that wait.
//! * **The window** is the last `window` of recorded outcomes, counted in
//!   ten buckets of `window / 10`: an outcome counts for at least `window`
//!   and less than `window + window / 10` after it was recorded. The
//!   window is kept while closed only, and starts empty each time the
//!   breaker closes.
//! * **Stale outcomes**: every change of state starts a new generation, and
//!   an outcome of a call admitted in an earlier generation counts for
//!   nothing (a slow call that began before the breaker opened does not
//!   close it, or reopen it, or count against the next closed period).
//! * **Time** is passed in (`now`); the breaker reads no clock. An
//!   open breaker becomes half-open on the first [`Breaker::admit`] or
//!   [`Breaker::poll`] at or after its reset time.
//!
//! Every change of state is returned as a [`Transition`], for the caller
//! to publish as an event; [`Breaker::status`] is the serializable view
//! for `troupe ps --json` and the metrics.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::actor::binding::BreakerReading;
use serde::{Deserialize, Serialize};

/// Default consecutive failures that open the breaker: enough that a blip
/// (one reset connection, one slow answer) does not, few enough that a
/// caller making one call a second fails fast within seconds.
pub const DEFAULT_FAILURES: u32 = 5;
/// Default failure rate that opens the breaker: when half the calls fail,
/// the dependency is down for practical purposes even if some get through.
pub const DEFAULT_FAILURE_RATE: f64 = 0.5;
/// Default window over which the failure rate is measured: long enough to
/// hold a few dozen calls of a busy caller, short enough to forget an
/// incident that is over.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// Default calls the window must hold before its rate counts: with fewer,
/// a rate is noise (two failures of three calls), and the consecutive rule
/// covers quiet callers.
pub const DEFAULT_MIN_CALLS: u32 = 20;
/// Default first reset timeout: about as long as a restarting service or a
/// failing-over load balancer needs.
pub const DEFAULT_RESET: Duration = Duration::from_secs(10);
/// Default longest reset timeout: a dependency down for long is still
/// probed every two minutes, so that its recovery is noticed soon.
pub const DEFAULT_MAX_RESET: Duration = Duration::from_secs(120);

/// Outcomes are counted in this many buckets of the window.
const BUCKETS: u32 = 10;

/// When a breaker opens and for how long (`breaker = { failures = 5,
/// reset-ms = 10000 }`). Every field has a default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker (at least 1).
    /// Default [`DEFAULT_FAILURES`].
    pub failures: u32,
    /// Failure rate over the window that opens the breaker, in `0 < rate
    /// <= 1`; 1 opens it only when every call in the window failed.
    /// Default [`DEFAULT_FAILURE_RATE`].
    pub failure_rate: f64,
    /// The window of the failure rate. Default [`DEFAULT_WINDOW`].
    #[serde(with = "crate::units::millis", rename = "window-ms")]
    pub window: Duration,
    /// Calls the window must hold before its failure rate counts (at least
    /// 1). Default [`DEFAULT_MIN_CALLS`].
    pub min_calls: u32,
    /// How long the breaker stays open the first time; doubled after each
    /// failed trial. Default [`DEFAULT_RESET`].
    #[serde(with = "crate::units::millis", rename = "reset-ms")]
    pub reset: Duration,
    /// The longest the reset timeout grows to. Default [`DEFAULT_MAX_RESET`].
    #[serde(with = "crate::units::millis", rename = "max-reset-ms")]
    pub max_reset: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: DEFAULT_FAILURES,
            failure_rate: DEFAULT_FAILURE_RATE,
            window: DEFAULT_WINDOW,
            min_calls: DEFAULT_MIN_CALLS,
            reset: DEFAULT_RESET,
            max_reset: DEFAULT_MAX_RESET,
        }
    }
}

impl BreakerConfig {
    /// Checks the values.
    ///
    /// # Errors
    ///
    /// A [`BreakerConfigError`] naming the offending field.
    pub fn validate(&self) -> Result<(), BreakerConfigError> {
        if self.failures == 0 {
            return Err(BreakerConfigError::ZeroFailures);
        }
        if !(self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return Err(BreakerConfigError::FailureRate(self.failure_rate));
        }
        if self.window < Duration::from_millis(1) {
            return Err(BreakerConfigError::ZeroWindow);
        }
        if self.min_calls == 0 {
            return Err(BreakerConfigError::ZeroMinCalls);
        }
        if self.reset < Duration::from_millis(1) {
            return Err(BreakerConfigError::ZeroReset);
        }
        if self.reset > self.max_reset {
            return Err(BreakerConfigError::ResetRange { reset: self.reset, max_reset: self.max_reset });
        }
        Ok(())
    }
}

/// A breaker configuration that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BreakerConfigError {
    /// `failures = 0` would open the breaker before any call.
    #[error("breaker `failures` must be at least 1")]
    ZeroFailures,
    /// The failure rate is not in `0 < rate <= 1`.
    #[error("breaker `failure-rate` must be above 0 and at most 1 (e.g. 0.5), not {0}")]
    FailureRate(f64),
    /// An empty window.
    #[error("breaker `window-ms` must be at least 1")]
    ZeroWindow,
    /// `min-calls = 0` would let one failure be a 100% rate.
    #[error("breaker `min-calls` must be at least 1")]
    ZeroMinCalls,
    /// A breaker that opens for no time.
    #[error("breaker `reset-ms` must be at least 1")]
    ZeroReset,
    /// The first reset timeout is longer than the longest.
    #[error("breaker `reset-ms` ({}) exceeds `max-reset-ms` ({})", .reset.as_millis(), .max_reset.as_millis())]
    ResetRange {
        /// The first reset timeout.
        reset: Duration,
        /// The longest.
        max_reset: Duration,
    },
}

/// The state of a breaker, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Calls go through.
    Closed,
    /// Calls fail fast.
    Open,
    /// One trial call goes through; the others fail fast.
    HalfOpen,
}

impl Phase {
    /// Every state, in the order of [`Breaker::changes`].
    pub const ALL: [Phase; 3] = [Phase::Closed, Phase::Open, Phase::HalfOpen];

    /// Its name, as events and `troupe ps --json` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Closed => "closed",
            Phase::Open => "open",
            Phase::HalfOpen => "half-open",
        }
    }
}

/// What a call turned out to be, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The dependency answered as a healthy one does.
    Success,
    /// The dependency looks unwell.
    Failure,
    /// The call was abandoned before its outcome was known.
    Cancelled,
}

/// A call the breaker let through; give it back to [`Breaker::record`]
/// with the call's outcome.
#[must_use = "record the call's outcome, or a half-open breaker waits on its trial forever"]
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket {
    generation: u64,
}

/// A call refused because the breaker is open or its trial is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit open: the dependency is failing; calls fail fast until a trial call succeeds")]
pub struct CircuitOpen {
    /// How long until the breaker lets a trial through, or `None` while the
    /// trial is in flight.
    pub retry_in: Option<Duration>,
}

/// A change of state, to publish as an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Transition {
    /// The state left.
    pub from: Phase,
    /// The state entered.
    pub to: Phase,
    /// Why.
    pub cause: Cause,
}

/// Why a breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum Cause {
    /// Closed → open: this many failures in a row.
    ConsecutiveFailures {
        /// The failures.
        failures: u32,
    },
    /// Closed → open: the failure rate over the window.
    FailureRate {
        /// Failures in the window.
        failures: u32,
        /// Calls in the window.
        calls: u32,
    },
    /// Open → half-open: the reset timeout passed.
    ResetElapsed,
    /// Half-open → closed.
    TrialSucceeded,
    /// Half-open → open, for `reset_ms`.
    TrialFailed {
        /// The new reset timeout, in milliseconds.
        reset_ms: u64,
    },
}

/// What [`Breaker::admit`] decided.
#[derive(Debug, PartialEq, Eq)]
pub struct Admission {
    /// The call may go ahead (record its outcome with the ticket), or fails fast.
    pub ticket: Result<Ticket, CircuitOpen>,
    /// The state change deciding it caused (open → half-open), if any.
    pub transition: Option<Transition>,
}

/// A breaker's state, as `troupe ps --json` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum BreakerStatus {
    /// Calls go through.
    Closed {
        /// Failures since the last success.
        consecutive_failures: u32,
        /// Calls in the window.
        calls_in_window: u32,
        /// Failures in the window.
        failures_in_window: u32,
    },
    /// Calls fail fast.
    Open {
        /// The current reset timeout, in milliseconds.
        reset_ms: u64,
        /// Time left until a trial is let through, in milliseconds.
        half_open_in_ms: u64,
    },
    /// A trial decides.
    HalfOpen {
        /// The current reset timeout, in milliseconds.
        reset_ms: u64,
        /// Whether the trial call is under way.
        trial_in_flight: bool,
    },
}

/// A circuit breaker (see the module doc).
#[derive(Debug, Clone)]
pub struct Breaker {
    config: BreakerConfig,
    state: State,
    /// Bumped by every change of state; tickets carry the one they were
    /// issued in.
    generation: u64,
    /// How many times it entered each state, in the order of [`Phase::ALL`].
    entered: [u64; 3],
}

#[derive(Debug, Clone)]
enum State {
    Closed { consecutive_failures: u32, window: OutcomeWindow },
    Open { until: Instant, reset: Duration },
    HalfOpen { reset: Duration, trial: Trial },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trial {
    Free,
    InFlight,
}

/// What happens to a breaker.
enum Event {
    /// Time passes.
    Poll,
    /// A call asks to go through.
    Admit,
    /// A call admitted with this ticket ended.
    Record(Ticket, Outcome),
}

impl Breaker {
    /// A closed breaker. The configuration should have passed
    /// [`BreakerConfig::validate`]; a zero `failures` or `min-calls` is
    /// read as 1.
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker { config, state: State::closed(), generation: 0, entered: [0; 3] }
    }

    /// Its configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// Its state, by name.
    pub fn phase(&self) -> Phase {
        self.state.phase()
    }

    /// Its state and changes, as the metrics show them, guarding
    /// `dependency`.
    pub fn reading(&self, dependency: &str) -> BreakerReading {
        BreakerReading {
            dependency: dependency.to_string(),
            state: self.phase().as_str(),
            entered: self.changes().iter().map(|(phase, n)| (phase.as_str(), *n)).collect(),
        }
    }

    /// How many times it entered each state so far (its start, closed, not
    /// counted), in the order of [`Phase::ALL`].
    pub fn changes(&self) -> [(Phase, u64); 3] {
        [0, 1, 2].map(|i| (Phase::ALL[i], self.entered[i]))
    }

    /// May a call go through at `now`?
    pub fn admit(&mut self, now: Instant) -> Admission {
        let (ticket, transition) = self.step(Event::Admit, now);
        Admission { ticket: ticket.expect("admitting always decides"), transition }
    }

    /// Records the outcome of a call admitted with `ticket`, ended at `now`.
    pub fn record(&mut self, ticket: Ticket, outcome: Outcome, now: Instant) -> Option<Transition> {
        self.step(Event::Record(ticket, outcome), now).1
    }

    /// Lets time pass: an open breaker whose reset time is reached becomes
    /// half-open. For a caller that wants the event before the next call.
    pub fn poll(&mut self, now: Instant) -> Option<Transition> {
        self.step(Event::Poll, now).1
    }

    /// Its state at `now`, for display (without letting time pass).
    pub fn status(&self, now: Instant) -> BreakerStatus {
        match &self.state {
            State::Closed { consecutive_failures, window } => {
                let (calls, failures) = window.counts(now, self.config.window);
                BreakerStatus::Closed {
                    consecutive_failures: *consecutive_failures,
                    calls_in_window: calls,
                    failures_in_window: failures,
                }
            }
            State::Open { until, reset } => BreakerStatus::Open {
                reset_ms: millis(*reset),
                half_open_in_ms: millis(until.saturating_duration_since(now)),
            },
            State::HalfOpen { reset, trial } => {
                BreakerStatus::HalfOpen { reset_ms: millis(*reset), trial_in_flight: *trial == Trial::InFlight }
            }
        }
    }

    /// The transition function: every change of state happens here, through
    /// [`Breaker::enter`]. Returns the admission decision for
    /// [`Event::Admit`] (`None` for other events) and the change of state.
    fn step(&mut self, event: Event, now: Instant) -> (Option<Result<Ticket, CircuitOpen>>, Option<Transition>) {
        let config = self.config;
        // Time first: an open breaker past its reset time is half-open for
        // whatever the event is.
        let mut transition = None;
        if let State::Open { until, reset } = self.state
            && now >= until
        {
            transition = Some(self.enter(State::HalfOpen { reset, trial: Trial::Free }, Cause::ResetElapsed));
        }
        let generation = self.generation;
        let outcome = match event {
            Event::Poll => return (None, transition),
            Event::Admit => {
                let decision = match &mut self.state {
                    State::Closed { .. } => Ok(Ticket { generation }),
                    State::Open { until, .. } => {
                        Err(CircuitOpen { retry_in: Some(until.saturating_duration_since(now)) })
                    }
                    State::HalfOpen { trial: trial @ Trial::Free, .. } => {
                        *trial = Trial::InFlight;
                        Ok(Ticket { generation })
                    }
                    State::HalfOpen { trial: Trial::InFlight, .. } => Err(CircuitOpen { retry_in: None }),
                };
                return (Some(decision), transition);
            }
            Event::Record(ticket, _) if ticket.generation != generation => return (None, transition),
            Event::Record(_, outcome) => outcome,
        };
        let change = match (&mut self.state, outcome) {
            (State::HalfOpen { trial, .. }, Outcome::Cancelled) => {
                *trial = Trial::Free;
                None
            }
            (_, Outcome::Cancelled) => None,
            (State::Closed { consecutive_failures, window }, Outcome::Success) => {
                *consecutive_failures = 0;
                window.record(now, config.window, false);
                None
            }
            (State::Closed { consecutive_failures, window }, Outcome::Failure) => {
                *consecutive_failures = consecutive_failures.saturating_add(1);
                window.record(now, config.window, true);
                let (calls, failures) = window.counts(now, config.window);
                let cause = if *consecutive_failures >= config.failures.max(1) {
                    Some(Cause::ConsecutiveFailures { failures: *consecutive_failures })
                } else if calls >= config.min_calls.max(1)
                    && f64::from(failures) >= config.failure_rate * f64::from(calls)
                {
                    Some(Cause::FailureRate { failures, calls })
                } else {
                    None
                };
                cause.map(|cause| (State::Open { until: now + config.reset, reset: config.reset }, cause))
            }
            (State::HalfOpen { .. }, Outcome::Success) => Some((State::closed(), Cause::TrialSucceeded)),
            (State::HalfOpen { reset, .. }, Outcome::Failure) => {
                let reset = reset.saturating_mul(2).min(config.max_reset).max(config.reset);
                Some((State::Open { until: now + reset, reset }, Cause::TrialFailed { reset_ms: millis(reset) }))
            }
            // No ticket is issued while open, so no outcome of this generation.
            (State::Open { .. }, _) => None,
        };
        (None, change.map(|(state, cause)| self.enter(state, cause)).or(transition))
    }

    /// Enters `state`, starting a new generation.
    fn enter(&mut self, state: State, cause: Cause) -> Transition {
        let from = self.state.phase();
        self.state = state;
        self.generation += 1;
        let to = self.state.phase();
        self.entered[Phase::ALL.iter().position(|p| *p == to).expect("every phase is in ALL")] += 1;
        Transition { from, to, cause }
    }
}

impl State {
    fn closed() -> State {
        State::Closed { consecutive_failures: 0, window: OutcomeWindow::default() }
    }

    fn phase(&self) -> Phase {
        match self {
            State::Closed { .. } => Phase::Closed,
            State::Open { .. } => Phase::Open,
            State::HalfOpen { .. } => Phase::HalfOpen,
        }
    }
}

/// Outcomes of the last `window`, in buckets of `window / BUCKETS`, oldest
/// first. A bucket starts at the first outcome recorded after the previous
/// one ended, and is dropped once it ended a whole window ago, so at most
/// `BUCKETS + 1` are kept.
#[derive(Debug, Clone, Default)]
struct OutcomeWindow {
    buckets: VecDeque<Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: Instant,
    calls: u32,
    failures: u32,
}

impl OutcomeWindow {
    fn record(&mut self, now: Instant, window: Duration, failed: bool) {
        self.expire(now, window);
        let width = bucket_width(window);
        match self.buckets.back_mut() {
            Some(bucket) if now < bucket.start + width => {
                bucket.calls = bucket.calls.saturating_add(1);
                bucket.failures = bucket.failures.saturating_add(u32::from(failed));
            }
            _ => self.buckets.push_back(Bucket { start: now, calls: 1, failures: u32::from(failed) }),
        }
    }

    /// Calls and failures in the window at `now`.
    fn counts(&self, now: Instant, window: Duration) -> (u32, u32) {
        let width = bucket_width(window);
        self.buckets
            .iter()
            .filter(|b| now.saturating_duration_since(b.start + width) < window)
            .fold((0, 0), |(c, f), b| (c + b.calls, f + b.failures))
    }

    fn expire(&mut self, now: Instant, window: Duration) {
        let width = bucket_width(window);
        while let Some(oldest) = self.buckets.front()
            && now.saturating_duration_since(oldest.start + width) >= window
        {
            self.buckets.pop_front();
        }
    }
}

fn bucket_width(window: Duration) -> Duration {
    (window / BUCKETS).max(Duration::from_nanos(1))
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn config() -> BreakerConfig {
        BreakerConfig {
            failures: 3,
            failure_rate: 0.5,
            window: ms(1000),
            min_calls: 10,
            reset: ms(100),
            max_reset: ms(350),
        }
    }

    /// Admits one call at `now` and records `outcome` for it at once.
    fn call(breaker: &mut Breaker, now: Instant, outcome: Outcome) -> (Result<(), CircuitOpen>, Vec<Transition>) {
        let admission = breaker.admit(now);
        let mut transitions: Vec<Transition> = admission.transition.into_iter().collect();
        match admission.ticket {
            Ok(ticket) => {
                transitions.extend(breaker.record(ticket, outcome, now));
                (Ok(()), transitions)
            }
            Err(open) => (Err(open), transitions),
        }
    }

    fn opened_by(breaker: &mut Breaker, t0: Instant) {
        for _ in 0..3 {
            let _ = call(breaker, t0, Outcome::Failure);
        }
        assert_eq!(breaker.phase(), Phase::Open);
    }

    #[test]
    fn n_consecutive_failures_open_the_breaker() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        assert_eq!(call(&mut breaker, t0, Outcome::Failure), (Ok(()), vec![]));
        assert_eq!(call(&mut breaker, t0, Outcome::Failure), (Ok(()), vec![]));
        let (result, transitions) = call(&mut breaker, t0, Outcome::Failure);
        assert_eq!(result, Ok(()));
        assert_eq!(
            transitions,
            [Transition { from: Phase::Closed, to: Phase::Open, cause: Cause::ConsecutiveFailures { failures: 3 } }]
        );
    }

    #[test]
    fn a_success_restarts_the_consecutive_count() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        for outcome in [Outcome::Failure, Outcome::Failure, Outcome::Success, Outcome::Failure, Outcome::Failure] {
            let _ = call(&mut breaker, t0, outcome);
        }
        assert_eq!(breaker.phase(), Phase::Closed);
        assert_eq!(
            breaker.status(t0),
            BreakerStatus::Closed { consecutive_failures: 2, calls_in_window: 5, failures_in_window: 4 }
        );
    }

    #[test]
    fn the_failure_rate_opens_the_breaker_once_the_window_holds_min_calls() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        // Alternate success and failure: never 3 failures in a row, 50% rate.
        for i in 0..9 {
            let outcome = if i % 2 == 0 { Outcome::Success } else { Outcome::Failure };
            assert_eq!(call(&mut breaker, t0 + ms(i), outcome), (Ok(()), vec![]), "call {i}: fewer than min-calls");
        }
        let (_, transitions) = call(&mut breaker, t0 + ms(9), Outcome::Failure);
        assert_eq!(
            transitions,
            [Transition { from: Phase::Closed, to: Phase::Open, cause: Cause::FailureRate { failures: 5, calls: 10 } }]
        );
    }

    #[test]
    fn a_rate_below_the_threshold_keeps_the_breaker_closed() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        for i in 0..100 {
            let outcome = if i % 3 == 0 { Outcome::Failure } else { Outcome::Success };
            assert_eq!(call(&mut breaker, t0 + ms(i), outcome).1, vec![], "call {i}");
        }
    }

    #[test]
    fn outcomes_leave_the_window_after_it_has_passed() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        for i in 0..9 {
            let outcome = if i % 2 == 0 { Outcome::Success } else { Outcome::Failure };
            let _ = call(&mut breaker, t0, outcome);
        }
        // 1.1 windows later, the nine are gone: one more failure is 1 of 1.
        let later = t0 + ms(1100);
        assert_eq!(call(&mut breaker, later, Outcome::Failure), (Ok(()), vec![]));
        assert_eq!(
            breaker.status(later),
            BreakerStatus::Closed { consecutive_failures: 1, calls_in_window: 1, failures_in_window: 1 }
        );
    }

    #[test]
    fn an_outcome_counts_for_at_least_the_window_and_less_than_a_bucket_more() {
        let t0 = Instant::now();
        let mut window = OutcomeWindow::default();
        window.record(t0, ms(1000), true);
        assert_eq!(window.counts(t0 + ms(999), ms(1000)), (1, 1));
        assert_eq!(window.counts(t0 + ms(1099), ms(1000)), (1, 1));
        assert_eq!(window.counts(t0 + ms(1100), ms(1000)), (0, 0));
    }

    #[test]
    fn an_open_breaker_fails_fast_until_the_reset_timeout() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        opened_by(&mut breaker, t0);
        let admission = breaker.admit(t0 + ms(40));
        assert_eq!(admission.ticket, Err(CircuitOpen { retry_in: Some(ms(60)) }));
        assert_eq!(admission.transition, None);
        assert_eq!(breaker.status(t0 + ms(40)), BreakerStatus::Open { reset_ms: 100, half_open_in_ms: 60 });
    }

    #[test]
    fn after_the_reset_timeout_one_trial_goes_through_and_the_others_fail_fast() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        opened_by(&mut breaker, t0);
        let trial = breaker.admit(t0 + ms(100));
        assert_eq!(
            trial.transition,
            Some(Transition { from: Phase::Open, to: Phase::HalfOpen, cause: Cause::ResetElapsed })
        );
        let ticket = trial.ticket.expect("the trial goes through");
        for i in 0..5 {
            assert_eq!(breaker.admit(t0 + ms(101 + i)).ticket, Err(CircuitOpen { retry_in: None }));
        }
        assert_eq!(breaker.status(t0 + ms(110)), BreakerStatus::HalfOpen { reset_ms: 100, trial_in_flight: true });
        assert_eq!(
            breaker.record(ticket, Outcome::Success, t0 + ms(120)),
            Some(Transition { from: Phase::HalfOpen, to: Phase::Closed, cause: Cause::TrialSucceeded })
        );
        assert_eq!(
            breaker.status(t0 + ms(120)),
            BreakerStatus::Closed { consecutive_failures: 0, calls_in_window: 0, failures_in_window: 0 }
        );
    }

    #[test]
    fn each_change_of_state_is_counted_by_the_state_entered() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        assert_eq!(breaker.changes(), [(Phase::Closed, 0), (Phase::Open, 0), (Phase::HalfOpen, 0)]);
        opened_by(&mut breaker, t0);
        let trial = breaker.admit(t0 + ms(100)).ticket.expect("the trial goes through");
        let _ = breaker.record(trial, Outcome::Success, t0 + ms(101));
        assert_eq!(breaker.changes(), [(Phase::Closed, 1), (Phase::Open, 1), (Phase::HalfOpen, 1)]);
    }

    #[test]
    fn a_failed_trial_reopens_with_the_reset_timeout_doubled_up_to_the_maximum() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        opened_by(&mut breaker, t0);
        let mut now = t0;
        let mut resets = Vec::new();
        let mut reset = ms(100);
        for _ in 0..4 {
            now += reset;
            assert_eq!(breaker.admit(now - ms(1)).ticket.map(drop), Err(CircuitOpen { retry_in: Some(ms(1)) }));
            let (result, transitions) = call(&mut breaker, now, Outcome::Failure);
            assert_eq!(result, Ok(()), "the trial goes through");
            let Some(Transition { to: Phase::Open, cause: Cause::TrialFailed { reset_ms }, .. }) = transitions.last()
            else {
                panic!("the failed trial reopens: {transitions:?}")
            };
            resets.push(*reset_ms);
            reset = ms(*reset_ms);
        }
        assert_eq!(resets, [200, 350, 350, 350]);
    }

    #[test]
    fn a_successful_trial_restores_the_first_reset_timeout() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        opened_by(&mut breaker, t0);
        let _ = call(&mut breaker, t0 + ms(100), Outcome::Failure); // reopens for 200
        let _ = call(&mut breaker, t0 + ms(300), Outcome::Success); // closes
        opened_by(&mut breaker, t0 + ms(300));
        assert_eq!(breaker.status(t0 + ms(300)), BreakerStatus::Open { reset_ms: 100, half_open_in_ms: 100 });
    }

    #[test]
    fn a_cancelled_trial_lets_the_next_call_be_the_trial() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        opened_by(&mut breaker, t0);
        let ticket = breaker.admit(t0 + ms(100)).ticket.unwrap();
        assert_eq!(breaker.record(ticket, Outcome::Cancelled, t0 + ms(101)), None);
        assert_eq!(breaker.phase(), Phase::HalfOpen);
        assert!(breaker.admit(t0 + ms(102)).ticket.is_ok(), "a new trial");
        assert!(breaker.admit(t0 + ms(103)).ticket.is_err(), "and only one");
    }

    #[test]
    fn outcomes_of_calls_admitted_before_a_change_of_state_count_for_nothing() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        let slow = breaker.admit(t0).ticket.unwrap();
        opened_by(&mut breaker, t0);
        let trial = breaker.admit(t0 + ms(100)).ticket.unwrap();
        assert_eq!(breaker.record(slow, Outcome::Success, t0 + ms(101)), None, "a stale success does not close it");
        assert_eq!(breaker.phase(), Phase::HalfOpen);
        let _ = breaker.record(trial, Outcome::Success, t0 + ms(102));
        let stale_failures: Vec<Ticket> = (0..3).map(|_| breaker.admit(t0 + ms(103)).ticket.unwrap()).collect();
        opened_by(&mut breaker, t0 + ms(104));
        let _ = call(&mut breaker, t0 + ms(204), Outcome::Success);
        for ticket in stale_failures {
            assert_eq!(breaker.record(ticket, Outcome::Failure, t0 + ms(205)), None);
        }
        assert_eq!(breaker.phase(), Phase::Closed);
    }

    #[test]
    fn poll_moves_an_open_breaker_to_half_open_without_a_call() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        opened_by(&mut breaker, t0);
        assert_eq!(breaker.poll(t0 + ms(99)), None);
        assert_eq!(
            breaker.poll(t0 + ms(100)),
            Some(Transition { from: Phase::Open, to: Phase::HalfOpen, cause: Cause::ResetElapsed })
        );
        assert_eq!(breaker.status(t0 + ms(100)), BreakerStatus::HalfOpen { reset_ms: 100, trial_in_flight: false });
    }

    #[test]
    fn no_sequence_of_events_lets_two_trials_through_while_half_open() {
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut now = Instant::now();
            let mut breaker = Breaker::new(config());
            let mut outstanding: Vec<Ticket> = Vec::new();
            for step in 0..500 {
                now += ms(rng.u64(0..40));
                let before = breaker.phase();
                let transition = if rng.bool() || outstanding.is_empty() {
                    let admission = breaker.admit(now);
                    outstanding.extend(admission.ticket.ok());
                    admission.transition
                } else {
                    let ticket = outstanding.swap_remove(rng.usize(..outstanding.len()));
                    let outcome = [Outcome::Success, Outcome::Failure, Outcome::Cancelled][rng.usize(..3)];
                    breaker.record(ticket, outcome, now)
                };
                match transition {
                    Some(t) => {
                        assert_eq!(t.to, breaker.phase(), "seed {seed} step {step}: the transition names the state")
                    }
                    None => assert_eq!(before, breaker.phase(), "seed {seed} step {step}: no silent change of state"),
                }
                if breaker.phase() == Phase::HalfOpen {
                    let trials = outstanding.iter().filter(|t| t.generation == breaker.generation).count();
                    assert!(trials <= 1, "seed {seed} step {step}: {trials} trials in flight");
                }
            }
        }
    }

    #[test]
    fn the_config_reads_kebab_case_with_defaults_for_the_rest() {
        let config: BreakerConfig = toml::from_str("failures = 5\nreset-ms = 10000\nfailure-rate = 0.25").unwrap();
        assert_eq!(
            config,
            BreakerConfig { failures: 5, reset: ms(10_000), failure_rate: 0.25, ..BreakerConfig::default() }
        );
        let all: BreakerConfig = toml::from_str("window-ms = 5000\nmin-calls = 7\nmax-reset-ms = 60000").unwrap();
        assert_eq!((all.window, all.min_calls, all.max_reset), (ms(5000), 7, ms(60_000)));
        let unknown = toml::from_str::<BreakerConfig>("reset = 5").unwrap_err().to_string();
        assert!(unknown.contains("unknown field `reset`"), "{unknown}");
        assert_eq!(BreakerConfig::default().validate(), Ok(()));
    }

    #[test]
    fn a_config_that_cannot_work_names_the_field() {
        let bad = |change: fn(&mut BreakerConfig)| {
            let mut config = BreakerConfig::default();
            change(&mut config);
            config.validate().unwrap_err()
        };
        assert_eq!(bad(|c| c.failures = 0), BreakerConfigError::ZeroFailures);
        assert_eq!(bad(|c| c.failure_rate = 0.0), BreakerConfigError::FailureRate(0.0));
        assert_eq!(bad(|c| c.failure_rate = 1.5), BreakerConfigError::FailureRate(1.5));
        assert!(bad(|c| c.failure_rate = f64::NAN).to_string().contains("failure-rate"));
        assert_eq!(bad(|c| c.window = Duration::ZERO), BreakerConfigError::ZeroWindow);
        assert_eq!(bad(|c| c.min_calls = 0), BreakerConfigError::ZeroMinCalls);
        assert_eq!(bad(|c| c.reset = Duration::ZERO), BreakerConfigError::ZeroReset);
        assert_eq!(
            bad(|c| c.reset = ms(200_000)).to_string(),
            "breaker `reset-ms` (200000) exceeds `max-reset-ms` (120000)"
        );
    }

    #[test]
    fn the_status_serializes_with_its_phase() {
        let t0 = Instant::now();
        let mut breaker = Breaker::new(config());
        assert_eq!(
            serde_json::to_string(&breaker.status(t0)).unwrap(),
            r#"{"phase":"closed","consecutive_failures":0,"calls_in_window":0,"failures_in_window":0}"#
        );
        opened_by(&mut breaker, t0);
        assert_eq!(
            serde_json::to_string(&breaker.status(t0)).unwrap(),
            r#"{"phase":"open","reset_ms":100,"half_open_in_ms":100}"#
        );
        let t = Transition { from: Phase::HalfOpen, to: Phase::Open, cause: Cause::TrialFailed { reset_ms: 200 } };
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"from":"half-open","to":"open","cause":{"cause":"trial-failed","reset_ms":200}}"#
        );
    }
}
