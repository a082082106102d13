//! Why a call left wasm with an error.
//!
//! Every error that leaves wasm poisons the store, so each one ends what
//! runs in it; what differs is why, and the why is what an operator needs:
//! fuel or an epoch deadline running out, a memory limit, a stack overflow
//! and an `unreachable` (a Rust panic) are different problems with
//! different fixes. This module only classifies; what a fault means to the
//! code that made the call is the caller's business.

use wasmtime::{Trap, WasmBacktrace};

use super::limiter::MemoryLimitExceeded;

/// How many wasm frames a fault report keeps.
pub const BACKTRACE_FRAMES: usize = 8;

/// The class of a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The store's fuel ran out.
    OutOfFuel,
    /// The epoch deadline interrupted the guest.
    Interrupted,
    /// A memory grew past the store's limit ([`MemoryLimitExceeded`]).
    MemoryLimit,
    /// The wasm stack overflowed.
    StackOverflow,
    /// The guest executed `unreachable`: in Rust and most languages, a
    /// panic or an abort.
    Unreachable,
    /// Any other trap (out-of-bounds access, division by zero, ...).
    Trap,
    /// A host function returned an error.
    Host,
}

/// A classified error from a call into wasm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Why it stopped.
    pub kind: FaultKind,
    /// wasmtime's message, the limit, or the host function's error.
    pub detail: String,
    /// The innermost wasm frames first, as `module!function`.
    pub backtrace: Vec<String>,
}

impl Fault {
    /// Classifies an error returned by a call into wasm.
    pub fn classify(err: &wasmtime::Error) -> Self {
        let backtrace = err
            .downcast_ref::<WasmBacktrace>()
            .map(|bt| bt.frames().iter().take(BACKTRACE_FRAMES).map(frame_name).collect())
            .unwrap_or_default();
        let (kind, detail) = if let Some(limit) = err.downcast_ref::<MemoryLimitExceeded>() {
            (FaultKind::MemoryLimit, limit.to_string())
        } else if let Some(trap) = err.downcast_ref::<Trap>() {
            let kind = match trap {
                Trap::OutOfFuel => FaultKind::OutOfFuel,
                Trap::Interrupt => FaultKind::Interrupted,
                Trap::StackOverflow => FaultKind::StackOverflow,
                Trap::UnreachableCodeReached => FaultKind::Unreachable,
                _ => FaultKind::Trap,
            };
            (kind, trap.to_string())
        } else {
            (FaultKind::Host, root_message(err))
        };
        Fault { kind, detail, backtrace }
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
