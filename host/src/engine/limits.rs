//! Per-actor resource policy ([`ActorLimits`]) and the wasmtime
//! [`ResourceLimiter`] that enforces its memory and table parts.
//!
//! CPU is bounded per message (a deadline counted in epoch ticks, plus an
//! optional fuel budget); memory is bounded across *all* of an actor's
//! linear memories together, so a component made of several core modules
//! cannot multiply its allowance.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::ResourceLimiter;

/// Default wall-clock CPU budget for one message.
///
/// Shorter than [`DEFAULT_ASK_TIMEOUT`](crate::DEFAULT_ASK_TIMEOUT) so that an
/// ask to a runaway actor reports "deadline exceeded" rather than a bare
/// timeout.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(1);

/// Default memory limit of an actor: all its linear memories together.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;

/// Largest accepted limit on the elements of any one table: the size of a
/// table slot in the pooling allocator, so a limit above it could never be
/// reached.
pub const MAX_TABLE_ELEMENTS: u64 = 20_000;

/// Default limit on the elements of any one table: the pool's ceiling,
/// which toolchains' indirect-call tables stay far below.
pub const DEFAULT_TABLE_ELEMENTS: u64 = MAX_TABLE_ELEMENTS;

/// Default mailbox capacity. Large enough to absorb bursts, small enough
/// that a flood is refused long before it threatens host memory.
pub const DEFAULT_MAILBOX: usize = 1024;

/// Default size limit of one message or reply (its WAVE text, or the
/// payload bytes of its typed values).
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 1 << 20;

/// Default number of pending timers an actor may hold.
pub const DEFAULT_MAX_TIMERS: u32 = 1024;

/// Default number of children an actor may have alive at once.
pub const DEFAULT_MAX_CHILDREN: u32 = 1000;

/// Upper bound accepted for a deadline: a day. Anything longer is almost
/// certainly a unit mistake.
pub const MAX_DEADLINE: Duration = Duration::from_secs(24 * 60 * 60);

/// Upper bound accepted for a mailbox capacity.
pub const MAX_MAILBOX: usize = 1 << 24;

/// The resource policy of one actor.
///
/// Built from the manifest, from `troupe spawn` flags, or by a spawning
/// guest (children inherit their parent's limits). Every field has a
/// default; [`ActorLimits::validate`] rejects absurd values with an error
/// naming the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ActorLimits {
    /// Fuel budget per message (roughly, wasm instructions), or `None` for
    /// no fuel metering. An actor with a fuel budget runs on the metered
    /// engine, whose code is slower. A small Rust handler uses ~2,000.
    pub fuel: Option<u64>,
    /// CPU-time budget per message. Time the actor spends waiting (on an
    /// ask, in a host call) does not count.
    #[serde(with = "millis", rename = "deadline-ms")]
    pub deadline: Duration,
    /// Bytes of linear memory, all memories together. The manifest also
    /// accepts `"64MiB"`-style strings.
    #[serde(with = "bytes")]
    pub memory: u64,
    /// Elements in any one table.
    pub table_elements: u64,
    /// Mailbox capacity in messages.
    pub mailbox: usize,
    /// Largest message or reply in bytes.
    #[serde(with = "bytes")]
    pub max_message_bytes: u64,
    /// Pending timers at once.
    pub max_timers: u32,
    /// Live children at once.
    pub max_children: u32,
}

impl Default for ActorLimits {
    fn default() -> Self {
        Self {
            fuel: None,
            deadline: DEFAULT_DEADLINE,
            memory: DEFAULT_MEMORY_BYTES,
            table_elements: DEFAULT_TABLE_ELEMENTS,
            mailbox: DEFAULT_MAILBOX,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_timers: DEFAULT_MAX_TIMERS,
            max_children: DEFAULT_MAX_CHILDREN,
        }
    }
}

/// A limit that is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid limit `{field}`: {problem}")]
pub struct LimitsError {
    /// The offending field, as spelled in the manifest.
    pub field: &'static str,
    /// What is wrong and what would be accepted.
    pub problem: String,
}

impl ActorLimits {
    /// Checks every field against its accepted range. `max_memory` is the
    /// engine's per-memory ceiling ([`EngineConfig::max_memory_bytes`](super::EngineConfig::max_memory_bytes)).
    ///
    /// # Errors
    ///
    /// A [`LimitsError`] naming the first offending field.
    pub fn validate(&self, max_memory: u64) -> Result<(), LimitsError> {
        let err = |field, problem: String| Err(LimitsError { field, problem });
        if self.fuel == Some(0) {
            return err("fuel", "must be at least 1 (omit it for no fuel metering)".into());
        }
        if self.deadline.is_zero() {
            return err("deadline-ms", "must be at least 1".into());
        }
        if self.deadline > MAX_DEADLINE {
            return err(
                "deadline-ms",
                format!("{} ms is more than a day ({} ms)", self.deadline.as_millis(), MAX_DEADLINE.as_millis()),
            );
        }
        if self.memory < 64 * 1024 {
            return err("memory", format!("{} bytes is less than one wasm page (65536)", self.memory));
        }
        if self.memory > max_memory {
            return err(
                "memory",
                format!(
                    "{} bytes exceeds the host's per-memory ceiling of {max_memory} bytes \
                     (raise it with `troupe run --max-memory`)",
                    self.memory
                ),
            );
        }
        if self.table_elements == 0 || self.table_elements > MAX_TABLE_ELEMENTS {
            return err("table-elements", format!("{} is outside 1..={MAX_TABLE_ELEMENTS}", self.table_elements));
        }
        if self.mailbox == 0 || self.mailbox > MAX_MAILBOX {
            return err("mailbox", format!("{} is outside 1..={MAX_MAILBOX}", self.mailbox));
        }
        if self.max_message_bytes == 0 {
            return err("max-message-bytes", "must be at least 1".into());
        }
        Ok(())
    }
}

/// Parses a byte size: an integer, or a number with a unit (`B`, `KiB`,
/// `MiB`, `GiB`, `KB`, `MB`, `GB`), e.g. `"64MiB"`.
///
/// # Errors
///
/// A sentence saying what is wrong.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("`{text}` is not a size; write e.g. 67108864 or \"64MiB\""))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!("unknown size unit `{other}`; use B, KiB, MiB, GiB, KB, MB or GB"));
        }
    };
    n.checked_mul(scale).ok_or_else(|| format!("`{text}` is too large"))
}

mod bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*n)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Size::deserialize(d) {
            Ok(Size::Number(n)) => Ok(n),
            Ok(Size::Text(t)) => super::parse_bytes(&t).map_err(D::Error::custom),
            Err(_) => Err(D::Error::custom("expected a size: a positive integer of bytes, or a string like \"64MiB\"")),
        }
    }
}

/// Serde helpers for durations written as integer milliseconds.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().min(u64::MAX as u128) as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Raised (as the trap's error) when an actor's memory would exceed its
/// limit. The actor is failed with [`FailureKind::MemoryLimit`](super::FailureKind::MemoryLimit).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("growing to {requested} bytes, past the limit of {limit} bytes (`memory`)")]
pub struct MemoryLimitExceeded {
    /// Total bytes the actor would have had after the grow.
    pub requested: u64,
    /// The actor's limit.
    pub limit: u64,
}

/// Enforces an actor's memory limit across all its memories, its table
/// limit, and records the memory high-water mark.
#[derive(Debug, Clone)]
pub struct MemoryLimiter {
    limit: u64,
    table_elements: u64,
    used: u64,
    peak: u64,
}

impl MemoryLimiter {
    /// A limiter for `limits`.
    pub fn new(limits: &ActorLimits) -> Self {
        Self { limit: limits.memory, table_elements: limits.table_elements, used: 0, peak: 0 }
    }

    /// Bytes of linear memory in use, all memories together.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The most memory this incarnation has had.
    pub fn peak(&self) -> u64 {
        self.peak
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let grow = (desired as u64).saturating_sub(current as u64);
        let requested = self.used.saturating_add(grow);
        if requested > self.limit {
            // An error (rather than `Ok(false)`) traps at once with a cause
            // we can name; a refused grow would surface later as an
            // anonymous `unreachable` in most guests' allocators.
            return Err(wasmtime::Error::new(MemoryLimitExceeded { requested, limit: self.limit }));
        }
        self.used = requested;
        self.peak = self.peak.max(requested);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired as u64 <= self.table_elements)
    }
}
