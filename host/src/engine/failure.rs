//! What went wrong when a call left wasm with an error.
//!
//! Every error that leaves wasm poisons the store, so each one ends an
//! incarnation; what differs is why, and the why is what an operator (and a
//! supervisor) needs: a fuel or deadline overrun, a memory limit, a stack
//! overflow and a Rust panic are different problems with different fixes.

use std::fmt;

use serde::{Deserialize, Serialize};
use wasmtime::{Trap, WasmBacktrace};

use super::limits::MemoryLimitExceeded;

/// How many wasm frames a failure report keeps.
pub const BACKTRACE_FRAMES: usize = 8;

/// The kind of an actor failure. Each has a distinct cause and fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The message used up its fuel budget.
    OutOfFuel,
    /// The message used up its CPU-time budget (`deadline-ms`).
    Deadline,
    /// The actor tried to grow its memory beyond its limit.
    MemoryLimit,
    /// The wasm stack overflowed (usually unbounded recursion).
    StackOverflow,
    /// The guest reached `unreachable`: in Rust and most languages, a panic
    /// or an abort.
    Panic,
    /// Any other wasm trap (out-of-bounds access, division by zero, ...).
    Trap,
    /// A host function refused the guest's call as misuse.
    HostCall,
    /// `init` returned an error or trapped.
    Init,
    /// `restore` returned an error or trapped.
    Restore,
    /// The component could not be instantiated (for example the instance
    /// pool is full).
    Instantiate,
    /// Its children's supervisor gave up (intensity exceeded).
    Escalated,
    /// An actor linked to it failed.
    Linked,
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
}

impl Failure {
    /// A failure with no backtrace.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into(), backtrace: Vec::new() }
    }

    /// Classifies an error returned by a call into wasm.
    pub fn from_wasm_error(err: &wasmtime::Error) -> Self {
        let backtrace = err
            .downcast_ref::<WasmBacktrace>()
            .map(|bt| bt.frames().iter().take(BACKTRACE_FRAMES).map(frame_name).collect())
            .unwrap_or_default();
        let (kind, detail) = if let Some(limit) = err.downcast_ref::<MemoryLimitExceeded>() {
            (FailureKind::MemoryLimit, limit.to_string())
        } else if let Some(trap) = err.downcast_ref::<Trap>() {
            let kind = match trap {
                Trap::OutOfFuel => FailureKind::OutOfFuel,
                Trap::Interrupt => FailureKind::Deadline,
                Trap::StackOverflow => FailureKind::StackOverflow,
                Trap::UnreachableCodeReached => FailureKind::Panic,
                _ => FailureKind::Trap,
            };
            (kind, trap.to_string())
        } else {
            (FailureKind::HostCall, root_message(err))
        };
        Self { kind, detail, backtrace }
    }

    /// Re-labels the failure as having happened in `init` or `restore`,
    /// keeping the underlying cause in the detail.
    pub fn during(mut self, phase: FailureKind) -> Self {
        if self.kind != phase {
            self.detail = format!("{}: {}", self.kind, self.detail);
            self.kind = phase;
        }
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)?;
        if let Some(top) = self.backtrace.first() {
            write!(f, " (in {top})")?;
        }
        Ok(())
    }
}

fn frame_name(frame: &wasmtime::FrameInfo) -> String {
    let module = frame.module().name().unwrap_or("<module>");
    match frame.func_name() {
        Some(name) => format!("{module}!{name}"),
        None => format!("{module}!<func {}>", frame.func_index()),
    }
}

fn root_message(err: &wasmtime::Error) -> String {
    // The outermost context is usually "error while executing at wasm
    // backtrace: ..."; the cause is what the operator needs.
    err.chain()
        .find(|e| !e.to_string().starts_with("error while executing"))
        .map(|e| e.to_string())
        .unwrap_or_else(|| err.to_string())
}
