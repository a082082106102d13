//! Retries of calls that are safe to repeat: how many attempts, how long
//! to wait between them, and a budget so that retries cannot amplify an
//! outage.
//!
//! # Rules
//!
//! A call that failed with a transient failure (the caller classifies: a
//! connection refused or reset, a timeout, a 502/503/504; never a 4xx) is
//! retried when all of these hold, checked in this order
//! ([`Retries::after_failure`]):
//!
//! 1. **The call is idempotent** ([`Idempotency`]): repeating it has the
//!    effect of doing it once. The caller says so per call; for HTTP, by
//!    the method ([`Idempotency::of_http_method`], RFC 9110 §9.2.2); for a
//!    binding between actors, by its configuration.
//! 2. **Attempts remain**: `attempts` counts every attempt, the first
//!    included. The default is **1: never retried**; retries are opted into
//!    per binding or per outbound pattern (`retry = { attempts = 3 }`).
//! 3. **The budget allows it** ([`RetryBudget`]).
//!
//! The wait before retry *n* (1 for the first retry) is drawn uniformly
//! from `0 ..= min(backoff-max, backoff-base × 2^(n-1))` ("full jitter"):
//! callers that failed together spread out instead of retrying in step.
//! The random number is passed in.
//!
//! # The budget
//!
//! Retries are at most a `fraction` of recent calls, plus a small minimum
//! per second for callers that make few calls (as Finagle's `RetryBudget`,
//! Envoy's retry budgets and gRPC's retry throttling do). The budget counts
//! first attempts (*calls*) and retries in ten buckets of `window / 10`,
//! aligned to the first instant it saw; a retry is allowed only if, counting
//! it, the retries in the current bucket and the nine before it do not
//! exceed
//!
//! ```text
//! fraction × (calls in those ten buckets) + min-per-second × window (in seconds)
//! ```
//!
//! So whenever a retry is made, the ten buckets that end with it hold at
//! most that many retries; and any ten consecutive buckets hold at most
//! `fraction` × the calls of those buckets and the nine before them, plus
//! the minimum (the last retry in the span was counted against a window
//! that covers the whole span and began at most nine buckets earlier).
//! Under a sustained outage a caller sends about `1 + fraction` times its
//! calls, plus the minimum, instead of `attempts` times. One budget is
//! shared by every call under one binding or pattern; nothing in it reads
//! a clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Default attempts, the first included: 1, never retried. Repeating a call
/// is only safe when the caller knows it is idempotent, so it is opted into.
pub const DEFAULT_ATTEMPTS: u32 = 1;
/// Default wait bound before the first retry: about a round trip to a
/// nearby service, so a blip is retried quickly.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(50);
/// Default longest wait bound: a retry later than this is rarely worth more
/// than failing and letting the caller decide.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Default fraction of calls that may be retried: at most 10% extra load on
/// a dependency that is down.
pub const DEFAULT_BUDGET_FRACTION: f64 = 0.1;
/// Default retries per second allowed whatever the number of calls: a
/// caller making a call now and then may still retry a transient failure.
pub const DEFAULT_BUDGET_MIN_PER_SECOND: u32 = 3;
/// Default window over which the budget counts calls and retries.
pub const DEFAULT_BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// The budget counts in this many buckets of its window.
const BUCKETS: u64 = 10;

/// How calls under one binding or outbound pattern are retried
/// (`retry = { attempts = 3, backoff-base-ms = 50 }`). Every field has a
/// default, and the default retries nothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts of one call, the first included (at least 1). Default
    /// [`DEFAULT_ATTEMPTS`]: never retried.
    pub attempts: u32,
    /// The wait bound before the first retry; doubled for each next.
    /// Default [`DEFAULT_BACKOFF_BASE`].
    #[serde(with = "crate::units::millis", rename = "backoff-base-ms")]
    pub backoff_base: Duration,
    /// The longest wait bound. Default [`DEFAULT_BACKOFF_MAX`].
    #[serde(with = "crate::units::millis", rename = "backoff-max-ms")]
    pub backoff_max: Duration,
    /// How many retries the calls may make together.
    pub budget: BudgetConfig,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: DEFAULT_ATTEMPTS,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
            budget: BudgetConfig::default(),
        }
    }
}

impl RetryConfig {
    /// Checks the values.
    ///
    /// # Errors
    ///
    /// A [`RetryConfigError`] naming the offending field.
    pub fn validate(&self) -> Result<(), RetryConfigError> {
        if self.attempts == 0 {
            return Err(RetryConfigError::ZeroAttempts);
        }
        if self.backoff_base > self.backoff_max {
            return Err(RetryConfigError::BackoffRange { base: self.backoff_base, max: self.backoff_max });
        }
        if !(0.0..=1.0).contains(&self.budget.fraction) {
            return Err(RetryConfigError::Fraction(self.budget.fraction));
        }
        if self.budget.window < Duration::from_millis(1) {
            return Err(RetryConfigError::ZeroWindow);
        }
        Ok(())
    }

    /// The wait before retry `retry` (1 for the first), given `random` in
    /// `0..=1`: `random × min(backoff-max, backoff-base × 2^(retry-1))`.
    pub fn backoff(&self, retry: u32, random: f64) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        let bound = self.backoff_base.saturating_mul(1 << doublings).min(self.backoff_max);
        bound.mul_f64(if random.is_nan() { 0.0 } else { random.clamp(0.0, 1.0) })
    }
}

/// The retry budget's settings (`budget = { fraction = 0.1,
/// min-per-second = 3, window-ms = 10000 }`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// Retries allowed per call, in `0..=1`. Default [`DEFAULT_BUDGET_FRACTION`].
    pub fraction: f64,
    /// Retries per second allowed whatever the calls. Default
    /// [`DEFAULT_BUDGET_MIN_PER_SECOND`].
    pub min_per_second: u32,
    /// The window calls and retries are counted over. Default
    /// [`DEFAULT_BUDGET_WINDOW`].
    #[serde(with = "crate::units::millis", rename = "window-ms")]
    pub window: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            fraction: DEFAULT_BUDGET_FRACTION,
            min_per_second: DEFAULT_BUDGET_MIN_PER_SECOND,
            window: DEFAULT_BUDGET_WINDOW,
        }
    }
}

impl BudgetConfig {
    /// Retries allowed in a window holding `calls` calls.
    fn allowance(&self, calls: u64) -> f64 {
        self.fraction * calls as f64 + f64::from(self.min_per_second) * self.window.as_secs_f64()
    }
}

/// A retry configuration that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RetryConfigError {
    /// `attempts = 0` would not even make the call.
    #[error("retry `attempts` counts the first attempt and must be at least 1 (1: never retried)")]
    ZeroAttempts,
    /// The first wait bound is longer than the longest.
    #[error("retry `backoff-base-ms` ({}) exceeds `backoff-max-ms` ({})", .base.as_millis(), .max.as_millis())]
    BackoffRange {
        /// The first wait bound.
        base: Duration,
        /// The longest.
        max: Duration,
    },
    /// The budget's fraction is not in `0..=1`.
    #[error("retry budget `fraction` must be within 0..=1 (e.g. 0.1 for 10%), not {0}")]
    Fraction(f64),
    /// An empty budget window.
    #[error("retry budget `window-ms` must be at least 1")]
    ZeroWindow,
}

/// Whether repeating a call has the effect of making it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Safe to repeat.
    Idempotent,
    /// Not safe to repeat: never retried.
    NotIdempotent,
}

impl Idempotency {
    /// The idempotency of an HTTP request by its method (RFC 9110 §9.2.2):
    /// `GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT` and `DELETE` are
    /// idempotent; `POST`, `PATCH` and unknown methods are not.
    pub fn of_http_method(method: &str) -> Idempotency {
        match method {
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE" => Idempotency::Idempotent,
            _ => Idempotency::NotIdempotent,
        }
    }
}

/// What to do after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Attempt again after this wait.
    RetryAfter(Duration),
    /// Report the failure.
    GiveUp(GiveUp),
}

/// Why a failed call is not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GiveUp {
    /// The call is not idempotent.
    NotIdempotent,
    /// Every configured attempt was made (with the default 1, the first).
    AttemptsExhausted,
    /// The retry budget is spent.
    BudgetExhausted,
}

/// Retries of the calls under one binding or outbound pattern: its
/// configuration and its shared budget.
#[derive(Debug, Clone)]
pub struct Retries {
    config: RetryConfig,
    budget: RetryBudget,
}

/// The attempts of one call so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallAttempts {
    made: u32,
}

impl CallAttempts {
    /// Attempts made, the first included.
    pub fn made(&self) -> u32 {
        self.made
    }
}

impl Retries {
    /// Retries under `config`, with a fresh budget. The configuration
    /// should have passed [`RetryConfig::validate`].
    pub fn new(config: RetryConfig) -> Retries {
        Retries { config, budget: RetryBudget::new(config.budget) }
    }

    /// Its configuration.
    pub fn config(&self) -> &RetryConfig {
        &self.config
    }

    /// Its budget.
    pub fn budget(&self) -> &RetryBudget {
        &self.budget
    }

    /// A call's first attempt begins at `now`: counted in the budget.
    pub fn start_call(&mut self, now: Instant) -> CallAttempts {
        self.budget.record_call(now);
        CallAttempts { made: 1 }
    }

    /// The attempt of `call` that failed transiently at `now`: retry or give
    /// up? `random` is a number in `0..=1` for the backoff's jitter. A retry
    /// is withdrawn from the budget and counted in `call`.
    pub fn after_failure(
        &mut self,
        call: &mut CallAttempts,
        idempotency: Idempotency,
        now: Instant,
        random: f64,
    ) -> RetryDecision {
        if idempotency == Idempotency::NotIdempotent {
            return RetryDecision::GiveUp(GiveUp::NotIdempotent);
        }
        if call.made >= self.config.attempts {
            return RetryDecision::GiveUp(GiveUp::AttemptsExhausted);
        }
        if !self.budget.try_withdraw(now) {
            return RetryDecision::GiveUp(GiveUp::BudgetExhausted);
        }
        let retry = call.made;
        call.made += 1;
        RetryDecision::RetryAfter(self.config.backoff(retry, random))
    }
}

/// The retries a set of calls may still make (see the module doc).
#[derive(Debug, Clone)]
pub struct RetryBudget {
    config: BudgetConfig,
    /// The instant bucket 0 starts at: the first one seen.
    origin: Option<Instant>,
    /// The last [`BUCKETS`] buckets that saw anything, oldest first.
    buckets: VecDeque<BudgetBucket>,
}

#[derive(Debug, Clone, Copy)]
struct BudgetBucket {
    index: u64,
    calls: u64,
    retries: u64,
}

/// A budget's counts, as `troupe ps --json` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BudgetStatus {
    /// Calls (first attempts) in the window.
    pub calls_in_window: u64,
    /// Retries in the window.
    pub retries_in_window: u64,
    /// Retries the budget would allow now.
    pub retries_available: u64,
}

impl RetryBudget {
    /// An empty budget.
    pub fn new(config: BudgetConfig) -> RetryBudget {
        RetryBudget { config, origin: None, buckets: VecDeque::new() }
    }

    /// A call's first attempt, at `now`.
    pub fn record_call(&mut self, now: Instant) {
        self.bucket(now).calls += 1;
    }

    /// May a call be retried at `now`? If so, the retry is counted.
    pub fn try_withdraw(&mut self, now: Instant) -> bool {
        let (calls, retries) = self.counts(now);
        if (retries + 1) as f64 > self.config.allowance(calls) {
            return false;
        }
        self.bucket(now).retries += 1;
        true
    }

    /// Its counts at `now`.
    pub fn status(&self, now: Instant) -> BudgetStatus {
        let (calls, retries) = self.counts(now);
        let allowance = self.config.allowance(calls).floor() as u64;
        BudgetStatus {
            calls_in_window: calls,
            retries_in_window: retries,
            retries_available: allowance.saturating_sub(retries),
        }
    }

    /// The index of the bucket `now` falls in.
    fn index(&self, now: Instant) -> u64 {
        let width = (self.config.window / BUCKETS as u32).max(Duration::from_nanos(1));
        let elapsed = self.origin.map_or(Duration::ZERO, |origin| now.saturating_duration_since(origin));
        (elapsed.as_nanos() / width.as_nanos()).min(u128::from(u64::MAX)) as u64
    }

    /// Calls and retries in the bucket of `now` and the nine before it.
    fn counts(&self, now: Instant) -> (u64, u64) {
        let current = self.index(now);
        self.buckets
            .iter()
            .filter(|b| b.index + BUCKETS > current && b.index <= current)
            .fold((0, 0), |(c, r), b| (c + b.calls, r + b.retries))
    }

    /// The bucket of `now`, made if need be; older buckets out of the
    /// window are dropped.
    fn bucket(&mut self, now: Instant) -> &mut BudgetBucket {
        self.origin.get_or_insert(now);
        let current = self.index(now);
        while self.buckets.front().is_some_and(|b| b.index + BUCKETS <= current) {
            self.buckets.pop_front();
        }
        if self.buckets.back().is_none_or(|b| b.index < current) {
            self.buckets.push_back(BudgetBucket { index: current, calls: 0, retries: 0 });
        }
        // A `now` earlier than the newest bucket (out of order) counts there.
        self.buckets.back_mut().expect("a bucket was just ensured")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn retrying(attempts: u32) -> Retries {
        Retries::new(RetryConfig { attempts, ..RetryConfig::default() })
    }

    #[test]
    fn by_default_nothing_is_retried() {
        let t0 = Instant::now();
        let mut retries = Retries::new(RetryConfig::default());
        let mut call = retries.start_call(t0);
        let decision = retries.after_failure(&mut call, Idempotency::Idempotent, t0, 0.5);
        assert_eq!(decision, RetryDecision::GiveUp(GiveUp::AttemptsExhausted));
        assert_eq!(call.made(), 1);
    }

    #[test]
    fn a_call_not_marked_idempotent_is_never_retried() {
        let t0 = Instant::now();
        let mut retries = retrying(5);
        let mut call = retries.start_call(t0);
        let decision = retries.after_failure(&mut call, Idempotency::NotIdempotent, t0, 0.5);
        assert_eq!(decision, RetryDecision::GiveUp(GiveUp::NotIdempotent));
        assert_eq!(retries.budget().status(t0).retries_in_window, 0, "nothing withdrawn");
    }

    #[test]
    fn an_idempotent_call_is_retried_until_its_attempts_are_made() {
        let t0 = Instant::now();
        let mut retries = retrying(3);
        let mut call = retries.start_call(t0);
        let decisions: Vec<RetryDecision> =
            (0..3).map(|_| retries.after_failure(&mut call, Idempotency::Idempotent, t0, 1.0)).collect();
        assert_eq!(
            decisions,
            [
                RetryDecision::RetryAfter(ms(50)),
                RetryDecision::RetryAfter(ms(100)),
                RetryDecision::GiveUp(GiveUp::AttemptsExhausted)
            ]
        );
        assert_eq!(call.made(), 3);
    }

    #[test]
    fn backoff_bounds_double_up_to_the_maximum_and_jitter_spans_zero_to_the_bound() {
        let config = RetryConfig { backoff_base: ms(100), backoff_max: ms(1000), ..RetryConfig::default() };
        let bounds: Vec<u64> = (1..=6).map(|n| config.backoff(n, 1.0).as_millis() as u64).collect();
        assert_eq!(bounds, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(config.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(config.backoff(3, 0.25), ms(100));
        assert_eq!(config.backoff(3, 7.0), ms(400), "random is clamped");
        assert_eq!(config.backoff(3, f64::NAN), Duration::ZERO);
        assert_eq!(config.backoff(u32::MAX, 1.0), ms(1000), "no overflow");
    }

    #[test]
    fn http_methods_are_idempotent_as_rfc_9110_says() {
        for method in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
            assert_eq!(Idempotency::of_http_method(method), Idempotency::Idempotent, "{method}");
        }
        for method in ["POST", "PATCH", "CONNECT", "get", "PURGE"] {
            assert_eq!(Idempotency::of_http_method(method), Idempotency::NotIdempotent, "{method}");
        }
    }

    #[test]
    fn under_a_sustained_outage_the_budget_caps_retries_at_its_fraction_plus_the_minimum() {
        let t0 = Instant::now();
        let mut retries = retrying(3);
        let mut attempts = 0u64;
        // 100 calls a second for 10 s (one window), every attempt failing.
        for i in 0..1000u64 {
            let now = t0 + ms(i * 10);
            let mut call = retries.start_call(now);
            attempts += 1;
            while let RetryDecision::RetryAfter(_) = retries.after_failure(&mut call, Idempotency::Idempotent, now, 0.5)
            {
                attempts += 1;
            }
        }
        // 10% of 1000 calls, plus 3 per second over 10 s.
        assert_eq!(attempts, 1000 + 100 + 30);
    }

    #[test]
    fn a_quiet_caller_may_retry_within_the_minimum() {
        let t0 = Instant::now();
        let mut budget = RetryBudget::new(BudgetConfig { min_per_second: 1, ..BudgetConfig::default() });
        budget.record_call(t0);
        let granted = (0..20).filter(|_| budget.try_withdraw(t0)).count();
        assert_eq!(granted, 10, "1 per second over a 10 s window, and 10% of one call rounds down");
        assert_eq!(budget.status(t0), BudgetStatus { calls_in_window: 1, retries_in_window: 10, retries_available: 0 });
        assert!(budget.try_withdraw(t0 + ms(10_000)), "a window later the retries have left it");
    }

    #[test]
    fn a_budget_with_no_minimum_and_no_calls_allows_no_retry() {
        let mut budget = RetryBudget::new(BudgetConfig { min_per_second: 0, ..BudgetConfig::default() });
        assert!(!budget.try_withdraw(Instant::now()));
    }

    #[test]
    fn the_budget_never_allows_more_retries_than_its_fraction_of_the_window_plus_the_minimum() {
        let config = BudgetConfig { fraction: 0.2, min_per_second: 2, window: ms(1000) };
        let width = ms(100);
        let minimum = 2.0 * 1.0;
        for seed in 0..100 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let t0 = Instant::now();
            let mut budget = RetryBudget::new(config);
            let mut now = t0;
            // Per bucket index: (calls, retries granted).
            budget.record_call(t0);
            let mut per_bucket: Vec<(u64, u64)> = vec![(1, 0)];
            for _ in 0..3000 {
                now += Duration::from_micros(rng.u64(0..20_000));
                let index = (now.duration_since(t0).as_nanos() / width.as_nanos()) as usize;
                if per_bucket.len() <= index {
                    per_bucket.resize(index + 1, (0, 0));
                }
                if rng.u8(..4) == 0 {
                    budget.record_call(now);
                    per_bucket[index].0 += 1;
                } else if budget.try_withdraw(now) {
                    per_bucket[index].1 += 1;
                }
            }
            for end in 0..per_bucket.len() {
                let span = &per_bucket[end.saturating_sub(9)..=end];
                let retries: u64 = span.iter().map(|b| b.1).sum();
                let calls: u64 = span.iter().map(|b| b.0).sum();
                if per_bucket[end].1 > 0 {
                    assert!(
                        retries as f64 <= 0.2 * calls as f64 + minimum,
                        "seed {seed}, the window ending at bucket {end}: {retries} retries for {calls} calls"
                    );
                }
                let two_windows = &per_bucket[end.saturating_sub(18)..=end];
                let calls: u64 = two_windows.iter().map(|b| b.0).sum();
                assert!(
                    retries as f64 <= 0.2 * calls as f64 + minimum,
                    "seed {seed}, buckets ..={end}: {retries} retries for {calls} calls in two windows"
                );
            }
        }
    }

    #[test]
    fn the_config_reads_kebab_case_and_defaults_to_no_retries() {
        let config: RetryConfig =
            toml::from_str("attempts = 3\nbackoff-base-ms = 20\nbudget = { fraction = 0.2, min-per-second = 1 }")
                .unwrap();
        assert_eq!(
            config,
            RetryConfig {
                attempts: 3,
                backoff_base: ms(20),
                budget: BudgetConfig { fraction: 0.2, min_per_second: 1, window: DEFAULT_BUDGET_WINDOW },
                ..RetryConfig::default()
            }
        );
        let empty: RetryConfig = toml::from_str("").unwrap();
        assert_eq!(empty.attempts, 1);
        let unknown = toml::from_str::<RetryConfig>("retries = 3").unwrap_err().to_string();
        assert!(unknown.contains("unknown field `retries`"), "{unknown}");
        assert_eq!(RetryConfig::default().validate(), Ok(()));
    }

    #[test]
    fn a_config_that_cannot_work_names_the_field() {
        let bad = |change: fn(&mut RetryConfig)| {
            let mut config = RetryConfig::default();
            change(&mut config);
            config.validate().unwrap_err()
        };
        assert_eq!(bad(|c| c.attempts = 0), RetryConfigError::ZeroAttempts);
        assert_eq!(
            bad(|c| c.backoff_base = ms(5000)).to_string(),
            "retry `backoff-base-ms` (5000) exceeds `backoff-max-ms` (2000)"
        );
        assert_eq!(bad(|c| c.budget.fraction = 1.5), RetryConfigError::Fraction(1.5));
        assert_eq!(bad(|c| c.budget.window = Duration::ZERO), RetryConfigError::ZeroWindow);
    }
}
