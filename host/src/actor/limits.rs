//! Per-actor resource policy: [`ActorLimits`].
//!
//! Time is bounded per message (a wall-clock deadline, plus an optional
//! fuel budget for deterministic work); memory is bounded across *all* of an actor's
//! linear memories together (the engine's
//! [`MemoryLimiter`](crate::engine::MemoryLimiter) enforces it); mailbox,
//! message size, timers and children are quotas the actor layer enforces.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::MAX_TABLE_ELEMENTS;
use crate::units::{bytes, millis};

/// Default deadline of one message.
///
/// A fifth of [`DEFAULT_ASK_TIMEOUT`](crate::DEFAULT_ASK_TIMEOUT), so that
/// an ask to a runaway actor always reports "deadline exceeded", never a
/// bare timeout.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(1);

/// Default memory limit of an actor: all its linear memories together.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;

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
    /// engine, whose code is slower. Unlike the deadline, fuel counts work,
    /// not time: the same message burns the same fuel on any machine.
    pub fuel: Option<u64>,
    /// How long a message may take, as its caller experiences it: wall-clock
    /// time, including the pauses that keep a long-running actor from
    /// starving its neighbours, but not the time it spends waiting in host
    /// calls (an ask, a spawn). A runaway is stopped within a couple of
    /// epoch ticks of it.
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
    /// engine's per-memory ceiling ([`EngineConfig::max_memory_bytes`](crate::EngineConfig::max_memory_bytes)).
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

impl ActorLimits {
    /// The engine an actor under these limits runs on: the fuel-metered
    /// one if it has a fuel budget.
    pub fn engine_kind(&self) -> crate::engine::EngineKind {
        if self.fuel.is_some() { crate::engine::EngineKind::Metered } else { crate::engine::EngineKind::Epoch }
    }

    /// The engine's limiter for one incarnation's store under these limits.
    pub(crate) fn limiter(&self) -> crate::engine::MemoryLimiter {
        crate::engine::MemoryLimiter::new(self.memory, self.table_elements)
    }
}
