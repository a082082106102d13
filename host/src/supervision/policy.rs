//! The pure parts of supervision: restart types, strategies, intensity and
//! backoff. No clocks and no randomness of their own: callers pass `now`
//! and a random number, so tests can drive them deterministically.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::wit::{types, wit_enum};

/// Default restart intensity: restarts allowed within [`DEFAULT_PERIOD`].
pub const DEFAULT_INTENSITY: u32 = 5;
/// Default intensity period.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(10);
/// Default shortest backoff delay (the second consecutive restart's).
pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Default longest backoff delay.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Default jitter: delays are scaled by a random factor in `1 ± jitter`.
pub const DEFAULT_JITTER: f64 = 0.2;
/// Default healthy running time after which the backoff starts over.
pub const DEFAULT_RESET_AFTER: Duration = Duration::from_secs(10);

wit_enum! {
    /// When a child is restarted; see the decision table in [`crate::supervision`].
    #[derive(Default)]
    pub enum RestartType => types::RestartType {
        /// Always restarted. For actors that must always be there.
        #[default]
        Permanent = "permanent",
        /// Restarted after an abnormal exit only. For actors that may
        /// finish their work and stop themselves.
        Transient = "transient",
        /// Never restarted. For one-off work whose failure is reported, not
        /// repaired.
        Temporary = "temporary",
    }
}

/// Which siblings restart with a failed child; see [`crate::supervision`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Strategy {
    /// Only the child that went down. For independent children.
    #[default]
    OneForOne,
    /// All children. For children that cannot work without each other.
    OneForAll,
    /// The child and those started after it. For pipelines, where later
    /// children depend on earlier ones.
    RestForOne,
    /// One-for-one over a dynamic set of identical children.
    Pool,
}

/// What the root supervisor does when a top-level subtree escalates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum RootPolicy {
    /// Stop that subtree, log it, keep running the rest.
    #[default]
    KeepRunning,
    /// Shut the whole host down (`troupe run` exits with an error).
    Shutdown,
}

/// Should a child with `restart` be restarted after an exit that was
/// `abnormal` (or normal)? The table in [`crate::supervision`], as code.
pub fn restart_decision(restart: RestartType, abnormal: bool) -> bool {
    match restart {
        RestartType::Permanent => true,
        RestartType::Transient => abnormal,
        RestartType::Temporary => false,
    }
}

/// At most `restarts` restarts within `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intensity {
    /// Restarts allowed within the period.
    pub restarts: u32,
    /// The sliding window.
    #[serde(with = "crate::units::millis")]
    pub period: Duration,
}

impl Default for Intensity {
    fn default() -> Self {
        Intensity { restarts: DEFAULT_INTENSITY, period: DEFAULT_PERIOD }
    }
}

/// The outcome of recording a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntensityCheck {
    /// Within the intensity: go ahead.
    Restart,
    /// One restart too many within the period: escalate.
    Escalate,
}

/// The restarts a supervisor made recently (OTP's `add_restart/1`).
#[derive(Debug, Clone, Default)]
pub struct RestartLog {
    restarts: VecDeque<Instant>,
}

impl RestartLog {
    /// Records a restart at `now` and says whether the intensity allows it.
    pub fn add_restart(&mut self, now: Instant, intensity: Intensity) -> IntensityCheck {
        self.restarts.push_back(now);
        while let Some(&oldest) = self.restarts.front() {
            if now.saturating_duration_since(oldest) >= intensity.period {
                self.restarts.pop_front();
            } else {
                break;
            }
        }
        if self.restarts.len() as u64 > u64::from(intensity.restarts) {
            IntensityCheck::Escalate
        } else {
            IntensityCheck::Restart
        }
    }

    /// Restarts within the current window.
    pub fn len(&self) -> usize {
        self.restarts.len()
    }

    /// No restarts recorded?
    pub fn is_empty(&self) -> bool {
        self.restarts.is_empty()
    }

    /// Forgets every restart (after the supervisor itself restarted).
    pub fn clear(&mut self) {
        self.restarts.clear();
    }
}

/// Exponential backoff between consecutive restarts of one child.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Backoff {
    /// Delay before the second consecutive restart; doubled for each next.
    #[serde(with = "crate::units::millis", rename = "min-ms")]
    pub min: Duration,
    /// Longest delay.
    #[serde(with = "crate::units::millis", rename = "max-ms")]
    pub max: Duration,
    /// Random spread: delays are scaled by a factor in `1 ± jitter`.
    pub jitter: f64,
    /// Healthy running time after which the count starts over.
    #[serde(with = "crate::units::millis", rename = "reset-after-ms")]
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            min: DEFAULT_BACKOFF_MIN,
            max: DEFAULT_BACKOFF_MAX,
            jitter: DEFAULT_JITTER,
            reset_after: DEFAULT_RESET_AFTER,
        }
    }
}

impl Backoff {
    /// Checks the values.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] naming the offending field.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(PolicyError::Jitter(self.jitter));
        }
        if self.min > self.max {
            return Err(PolicyError::BackoffRange { min: self.min, max: self.max });
        }
        Ok(())
    }
}

/// The backoff state of one child.
#[derive(Debug, Clone, Copy, Default)]
pub struct BackoffState {
    attempt: u32,
    last_restart: Option<Instant>,
}

impl BackoffState {
    /// The delay before restarting a child that went down at `now`.
    /// `random` is a number in `0..1`.
    pub fn next_delay(&mut self, now: Instant, backoff: &Backoff, random: f64) -> Duration {
        if let Some(last) = self.last_restart
            && now.saturating_duration_since(last) >= backoff.reset_after
        {
            self.attempt = 0;
        }
        self.attempt = self.attempt.saturating_add(1);
        self.last_restart = Some(now);
        if self.attempt == 1 {
            return Duration::ZERO;
        }
        let doublings = (self.attempt - 2).min(32);
        let base = backoff.min.saturating_mul(1u32 << doublings.min(31)).min(backoff.max);
        let factor = 1.0 + backoff.jitter * (2.0 * random.clamp(0.0, 1.0) - 1.0);
        base.mul_f64(factor.max(0.0))
    }

    /// Consecutive restarts so far (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// A supervisor policy that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// The intensity window is empty.
    #[error("`period-ms` must be at least 1")]
    ZeroPeriod,
    /// The jitter is not a fraction.
    #[error("backoff `jitter` must be within 0..=1, not {0}")]
    Jitter(f64),
    /// The shortest backoff is longer than the longest.
    #[error("backoff `min-ms` ({}) exceeds `max-ms` ({})", .min.as_millis(), .max.as_millis())]
    BackoffRange {
        /// The shortest delay.
        min: Duration,
        /// The longest delay.
        max: Duration,
    },
}

/// A supervisor's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SupervisorSpec {
    /// Which siblings restart together.
    pub strategy: Strategy,
    /// Restarts allowed within [`SupervisorSpec::period`].
    pub intensity: u32,
    /// The intensity window.
    #[serde(with = "crate::units::millis", rename = "period-ms")]
    pub period: Duration,
    /// Delays between consecutive restarts of one child.
    pub backoff: Backoff,
    /// How this supervisor restarts under its own supervisor.
    pub restart: RestartType,
}

impl Default for SupervisorSpec {
    fn default() -> Self {
        SupervisorSpec {
            strategy: Strategy::default(),
            intensity: DEFAULT_INTENSITY,
            period: DEFAULT_PERIOD,
            backoff: Backoff::default(),
            restart: RestartType::Permanent,
        }
    }
}

impl SupervisorSpec {
    /// Its intensity.
    pub fn intensity(&self) -> Intensity {
        Intensity { restarts: self.intensity, period: self.period }
    }

    /// Checks the values.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] naming the offending field.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.period.is_zero() {
            return Err(PolicyError::ZeroPeriod);
        }
        self.backoff.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_types_follow_the_otp_table() {
        use RestartType::*;
        assert!(restart_decision(Permanent, false) && restart_decision(Permanent, true));
        assert!(!restart_decision(Transient, false) && restart_decision(Transient, true));
        assert!(!restart_decision(Temporary, false) && !restart_decision(Temporary, true));
    }

    #[test]
    fn intensity_allows_n_restarts_per_period_and_escalates_on_the_next() {
        let intensity = Intensity { restarts: 3, period: Duration::from_secs(5) };
        let t0 = Instant::now();
        let mut log = RestartLog::default();
        for i in 0..3 {
            assert_eq!(log.add_restart(t0 + Duration::from_secs(i), intensity), IntensityCheck::Restart);
        }
        assert_eq!(log.add_restart(t0 + Duration::from_secs(3), intensity), IntensityCheck::Escalate);
    }

    #[test]
    fn restarts_older_than_the_period_are_forgotten() {
        let intensity = Intensity { restarts: 2, period: Duration::from_secs(5) };
        let t0 = Instant::now();
        let mut log = RestartLog::default();
        for i in 0..10 {
            let check = log.add_restart(t0 + Duration::from_secs(3 * i), intensity);
            assert_eq!(check, IntensityCheck::Restart, "restart {i} is within 2 per 5 s");
        }
    }

    #[test]
    fn zero_intensity_escalates_on_the_first_failure() {
        let mut log = RestartLog::default();
        let check = log.add_restart(Instant::now(), Intensity { restarts: 0, period: Duration::from_secs(1) });
        assert_eq!(check, IntensityCheck::Escalate);
    }

    #[test]
    fn backoff_is_immediate_then_doubles_up_to_max() {
        let backoff = Backoff {
            min: Duration::from_millis(10),
            max: Duration::from_millis(100),
            jitter: 0.0,
            reset_after: Duration::from_secs(60),
        };
        let t0 = Instant::now();
        let mut state = BackoffState::default();
        let delays: Vec<u64> =
            (0..7).map(|i| state.next_delay(t0 + Duration::from_millis(i), &backoff, 0.5).as_millis() as u64).collect();
        assert_eq!(delays, [0, 10, 20, 40, 80, 100, 100]);
    }

    #[test]
    fn backoff_resets_after_healthy_running() {
        let backoff = Backoff { jitter: 0.0, ..Backoff::default() };
        let t0 = Instant::now();
        let mut state = BackoffState::default();
        state.next_delay(t0, &backoff, 0.5);
        assert_eq!(state.next_delay(t0, &backoff, 0.5), DEFAULT_BACKOFF_MIN);
        let later = t0 + DEFAULT_RESET_AFTER;
        assert_eq!(state.next_delay(later, &backoff, 0.5), Duration::ZERO, "a healthy period resets");
        assert_eq!(state.attempt(), 1);
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let backoff = Backoff { min: Duration::from_millis(100), jitter: 0.2, ..Backoff::default() };
        for random in [0.0, 0.25, 0.5, 0.99, 1.0] {
            let mut state = BackoffState::default();
            let t0 = Instant::now();
            state.next_delay(t0, &backoff, random);
            let d = state.next_delay(t0, &backoff, random).as_millis();
            assert!((80..=120).contains(&d), "{d} ms for random {random}");
        }
    }
}
