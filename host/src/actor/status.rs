//! What an actor shows about itself: its [`ActorStatus`] (derived from the
//! phase of its cell), the counters it keeps ([`ActorStats`]) and the
//! point-in-time copy `troupe ps` prints ([`ActorInfo`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::durable::Durability;
use super::{Failure, FailureKind};
use crate::histogram::{Histogram, HistogramSnapshot};
use crate::message::Address;
use crate::sync::Mutex;

/// Lifecycle state of an actor, as shown by `troupe ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum ActorStatus {
    /// Instantiating and running `init` or `restore`.
    Starting = 0,
    /// Handling messages, or idle.
    Running = 1,
    /// Down, waiting for its supervisor to restart it (or in its backoff
    /// delay); messages still queue.
    Restarting = 2,
    /// Finishing its current message before stopping.
    Stopping = 3,
    /// Stopped on request.
    Stopped = 4,
    /// Stopped because it could not (re)start.
    Failed = 5,
    /// Idle past its `hibernate-after` period: its instance is gone and its
    /// snapshot kept; the next message wakes it.
    Hibernating = 6,
}

impl ActorStatus {
    /// The status stored as `v` by [`ActorStatus as u8`](ActorStatus).
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            0 => ActorStatus::Starting,
            1 => ActorStatus::Running,
            2 => ActorStatus::Restarting,
            3 => ActorStatus::Stopping,
            4 => ActorStatus::Stopped,
            6 => ActorStatus::Hibernating,
            _ => ActorStatus::Failed,
        }
    }

    /// Has the actor stopped for good?
    pub fn is_terminal(self) -> bool {
        matches!(self, ActorStatus::Stopped | ActorStatus::Failed)
    }
}

/// Counters an actor keeps about itself. Read with relaxed ordering: they
/// are for observation, not synchronisation.
#[derive(Debug, Default)]
pub struct ActorStats {
    handled: AtomicU64,
    batched: AtomicU64,
    typed: AtomicU64,
    failures: AtomicU64,
    restarts: AtomicU64,
    fuel_used: AtomicU64,
    memory: AtomicU64,
    memory_peak: AtomicU64,
    incarnation: AtomicU64,
    /// Messages the actor failed on (its other failures are starts).
    failed_messages: AtomicU64,
    /// Messages refused because its mailbox was full.
    refused: AtomicU64,
    failures_seen: Mutex<FailuresSeen>,
}

/// The failures an actor has had: the last, and how many of each kind.
#[derive(Debug, Default)]
struct FailuresSeen {
    last: Option<Failure>,
    /// Boxed, and only after a first failure: most actors never fail.
    by_kind: Option<Box<[u64; FailureKind::ALL.len()]>>,
}

/// How long an actor's messages took and waited, kept only while the
/// host's metrics time messages (see `crate::metrics`).
#[derive(Debug, Default)]
pub(crate) struct MessageTimes {
    /// From the guest's start on a message to its end.
    pub handling: Histogram,
    /// From queueing a message to the start of its handling (asks only).
    pub mailbox_wait: Histogram,
    /// When the message (or run) in hand began, in nanoseconds after
    /// [`times_epoch`]. Kept here, not in the delivery's future: that
    /// future is allocated for every batch, and must stay small enough
    /// for the allocator's per-thread cache.
    began: AtomicU64,
}

/// The instant [`MessageTimes`] count from.
fn times_epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl MessageTimes {
    /// A message (or a run of them) begins at `now`.
    pub fn begin(&self, now: Instant) {
        let ns = now.saturating_duration_since(times_epoch()).as_nanos();
        self.began.store(u64::try_from(ns).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The `messages` that began at the last [`MessageTimes::begin`] have
    /// ended: each is counted at its share of the time.
    pub fn end(&self, messages: usize) {
        let began = times_epoch() + Duration::from_nanos(self.began.load(Ordering::Relaxed));
        let share = began.elapsed() / u32::try_from(messages.max(1)).unwrap_or(u32::MAX);
        for _ in 0..messages {
            self.handling.observe(share);
        }
    }
}

/// What the metrics read of an actor's counters at a scrape.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tallies {
    /// Messages handled.
    pub handled: u64,
    /// Messages failed on.
    pub failed_messages: u64,
    /// Messages refused, its mailbox full.
    pub refused: u64,
    /// Restarts.
    pub restarts: u64,
    /// Fuel burnt.
    pub fuel_used: u64,
    /// Failures by kind, in [`FailureKind::ALL`]'s order.
    pub failures_by_kind: [u64; FailureKind::ALL.len()],
    /// Handling times, if timed.
    pub handling: HistogramSnapshot,
    /// Mailbox waits, if timed.
    pub mailbox_wait: HistogramSnapshot,
}

/// A point-in-time copy of an actor's state and counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActorInfo {
    /// Its address.
    pub address: Address,
    /// The component's name.
    pub component: String,
    /// The component's version, if known.
    pub version: Option<String>,
    /// The component's content hash (first 12 hex digits).
    pub hash: String,
    /// Lifecycle state.
    pub status: ActorStatus,
    /// Messages waiting in the mailbox.
    pub mailbox: usize,
    /// Mailbox capacity.
    pub mailbox_capacity: usize,
    /// Messages handled successfully.
    pub handled: u64,
    /// Of those, the messages handled several to one call into the guest,
    /// through a batch entry point (see `troupe::batch`).
    #[serde(default)]
    pub batched: u64,
    /// Of those, the messages handled one to a call through the typed
    /// call entry point (see `troupe::batch`).
    #[serde(default)]
    pub typed: u64,
    /// Messages (or starts) that failed.
    pub failures: u64,
    /// Incarnations started after a failure.
    pub restarts: u64,
    /// Fuel consumed, all messages together (0 without a fuel budget).
    pub fuel_used: u64,
    /// Linear memory in use, bytes.
    pub memory: u64,
    /// Highest linear memory use, bytes.
    pub memory_peak: u64,
    /// The spawning actor, if any.
    pub parent: Option<Address>,
    /// The most recent failure.
    pub last_failure: Option<Failure>,
    /// Whether its state and acknowledged tells survive the host.
    #[serde(default)]
    pub durability: Durability,
    /// For a durable actor: the number of the last tell its committed
    /// state contains (its tells are numbered from 1).
    #[serde(default)]
    pub committed: Option<u64>,
    /// For a durable actor whose last commit failed (a full disk, an I/O
    /// error): why. Its state in memory is ahead of its store until a
    /// commit succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsaved: Option<String>,
    /// Its outbound HTTP grant, if it has one: patterns, limits, and the
    /// state of each pattern's circuit breaker and retry budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<serde_json::Value>,
    /// The circuit breakers of its bindings, by imported interface.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub breakers: std::collections::BTreeMap<String, serde_json::Value>,
}

impl ActorStats {
    /// One message handled.
    pub(crate) fn handled(&self) {
        self.handled.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` messages handled in one call through a batch entry point.
    pub(crate) fn handled_batch(&self, n: u64) {
        self.handled.fetch_add(n, Ordering::Relaxed);
        self.batched.fetch_add(n, Ordering::Relaxed);
    }

    /// A message went through the typed call entry point (and is counted
    /// as handled separately).
    pub(crate) fn typed_call(&self) {
        self.typed.fetch_add(1, Ordering::Relaxed);
    }

    /// An incarnation started after a failure.
    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// A failure: counted by kind, and kept as the last one.
    pub(crate) fn failed(&self, failure: &Failure) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut seen = self.failures_seen.lock();
        seen.last = Some(failure.clone());
        let kind = FailureKind::ALL.iter().position(|k| *k == failure.kind).unwrap_or_default();
        seen.by_kind.get_or_insert_with(Default::default)[kind] += 1;
    }

    /// A message failed (its failure is counted by [`ActorStats::failed`]).
    pub(crate) fn message_failed(&self) {
        self.failed_messages.fetch_add(1, Ordering::Relaxed);
    }

    /// A message was refused, the mailbox full.
    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters the metrics read, with `times` if the actor keeps them.
    pub(crate) fn tallies(&self, times: Option<&MessageTimes>) -> Tallies {
        let mut tallies = Tallies {
            handled: self.handled.load(Ordering::Relaxed),
            failed_messages: self.failed_messages.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            fuel_used: self.fuel_used.load(Ordering::Relaxed),
            ..Tallies::default()
        };
        if let Some(by_kind) = &self.failures_seen.lock().by_kind {
            tallies.failures_by_kind = **by_kind;
        }
        if let Some(times) = times {
            tallies.handling.add(&times.handling);
            tallies.mailbox_wait.add(&times.mailbox_wait);
        }
        tallies
    }

    /// Fuel burnt by calls into the guest.
    pub(crate) fn add_fuel(&self, fuel: u64) {
        self.fuel_used.fetch_add(fuel, Ordering::Relaxed);
    }

    /// Linear memory in use, and the incarnation's peak.
    pub(crate) fn set_memory(&self, used: u64, peak: u64) {
        self.memory.store(used, Ordering::Relaxed);
        self.memory_peak.fetch_max(peak, Ordering::Relaxed);
    }

    /// The number of the next incarnation (1 for the first).
    pub(crate) fn next_incarnation(&self) -> u64 {
        self.incarnation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The counters into `info`.
    pub(crate) fn fill(&self, info: &mut ActorInfo) {
        info.handled = self.handled.load(Ordering::Relaxed);
        info.batched = self.batched.load(Ordering::Relaxed);
        info.typed = self.typed.load(Ordering::Relaxed);
        info.failures = self.failures.load(Ordering::Relaxed);
        info.restarts = self.restarts.load(Ordering::Relaxed);
        info.fuel_used = self.fuel_used.load(Ordering::Relaxed);
        info.memory = self.memory.load(Ordering::Relaxed);
        info.memory_peak = self.memory_peak.load(Ordering::Relaxed);
        info.last_failure = self.failures_seen.lock().last.clone();
    }
}
