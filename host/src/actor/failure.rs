//! Why an actor failed: [`FailureKind`] and [`Failure`].
//!
//! A failure ends an incarnation. Most come from wasm (the engine's
//! [`Fault`] classes, each with a distinct cause and fix: a fuel or
//! deadline overrun, a memory limit, a stack overflow, a panic); the rest
//! from the actor's lifecycle (`init` or `restore` refusing), the host
//! (instantiation), the supervision tree (a linked actor failing, the
//! children's supervisor giving up), and the cluster (the host of a
//! watched actor lost). Supervisors, watchers, `troupe ps` and the WIT
//! `failure-kind` all speak of these kinds.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::engine::{Fault, FaultKind};
use crate::wit::{types, wit_enum};

wit_enum! {
    /// The kind of an actor failure. Each has a distinct cause and fix.
    pub enum FailureKind => types::FailureKind {
        /// The message used up its fuel budget.
        OutOfFuel = "out-of-fuel",
        /// The message ran past its deadline (`deadline-ms`).
        Deadline = "deadline",
        /// The actor tried to grow its memory beyond its limit.
        MemoryLimit = "memory-limit",
        /// The wasm stack overflowed (usually unbounded recursion).
        StackOverflow = "stack-overflow",
        /// The guest reached `unreachable`: in Rust and most languages, a
        /// panic or an abort.
        Panic = "panic",
        /// Any other wasm trap (out-of-bounds access, division by zero, ...).
        Trap = "trap",
        /// A host function refused the guest's call as misuse.
        HostCall = "host-call",
        /// `init` returned an error or trapped.
        Init = "init",
        /// `restore` returned an error or trapped.
        Restore = "restore",
        /// The component could not be instantiated (for example the
        /// instance pool is full).
        Instantiate = "instantiate",
        /// Its children's supervisor gave up (intensity exceeded).
        Escalated = "escalated",
        /// An actor linked to it failed.
        Linked = "linked",
        /// Its host, another of the cluster, left without stopping it (it
        /// crashed, or was cut off past its lease): told to the monitors
        /// and links of the other hosts.
        HostLost = "host-lost",
    }
}

impl FailureKind {
    /// A short lowercase label, as used in logs and the CLI.
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::OutOfFuel => "out of fuel",
            FailureKind::Deadline => "deadline exceeded",
            FailureKind::MemoryLimit => "memory limit exceeded",
            FailureKind::StackOverflow => "stack overflow",
            FailureKind::Panic => "panic",
            FailureKind::Trap => "trap",
            FailureKind::HostCall => "host call refused",
            FailureKind::Init => "init failed",
            FailureKind::Restore => "restore failed",
            FailureKind::Instantiate => "instantiation failed",
            FailureKind::Escalated => "escalated",
            FailureKind::Linked => "linked actor failed",
            FailureKind::HostLost => "host lost",
        }
    }
}

impl From<FaultKind> for FailureKind {
    fn from(kind: FaultKind) -> Self {
        match kind {
            FaultKind::OutOfFuel => FailureKind::OutOfFuel,
            FaultKind::Interrupted => FailureKind::Deadline,
            FaultKind::MemoryLimit => FailureKind::MemoryLimit,
            FaultKind::StackOverflow => FailureKind::StackOverflow,
            FaultKind::Unreachable => FailureKind::Panic,
            FaultKind::Trap => FailureKind::Trap,
            FaultKind::Host => FailureKind::HostCall,
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A classified failure: its kind, what wasmtime or the guest said, and the
/// innermost wasm frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Why it failed.
    pub kind: FailureKind,
    /// The detail: the trap message, the limit, or the guest's error text.
    pub detail: String,
    /// Innermost wasm frames first, as `module!function`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backtrace: Vec<String>,
    /// The end of what the guest wrote to stderr during the failed call,
    /// if anything (a panic's message, an uncaught exception): see
    /// [`crate::grants::STDERR_TAIL_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
}

impl Failure {
    /// A failure with no backtrace.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into(), backtrace: Vec::new(), stderr: None }
    }

    /// Classifies an error returned by a call into wasm.
    pub fn from_wasm_error(err: &wasmtime::Error) -> Self {
        Fault::classify(err).into()
    }

    /// Re-labels the failure as having happened in `phase` (`init`,
    /// `restore`, instantiation), keeping the underlying cause in the
    /// detail.
    pub fn during(mut self, phase: FailureKind) -> Self {
        if self.kind != phase {
            self.detail = format!("{}: {}", self.kind, self.detail);
            self.kind = phase;
        }
        self
    }
}

impl From<Fault> for Failure {
    fn from(fault: Fault) -> Self {
        Failure { kind: fault.kind.into(), detail: fault.detail, backtrace: fault.backtrace, stderr: None }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)?;
        if let Some(top) = self.backtrace.first() {
            write!(f, " (in {top})")?;
        }
        if let Some(stderr) = &self.stderr {
            write!(f, "; stderr: {stderr}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watcher_hooks_type_lists_every_failure_kind_in_wit_order() {
        let names: Vec<&str> = FailureKind::ALL.iter().map(|kind| kind.wit_name()).collect();
        let listed = format!("kind: enum {{ {} }}", names.join(", "));
        assert!(crate::protocol::hooks::DOWN_SHAPE.contains(&listed), "DOWN_SHAPE lacks `{listed}`");
    }
}
