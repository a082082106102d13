//! Hot swap: replacing a running actor's code between two messages,
//! carrying its state, and rolling back if the new code fails.
//!
//! # The protocol
//!
//! 1. *Off the actor's path* (the caller's task): the new component is
//!    compiled and linked, and its protocol is compared with the old one.
//!    It must export every old function with identical types; it may add
//!    functions. (`force` skips this check, never the linking.)
//! 2. *Between two messages* (the actor's task): the old instance's
//!    `snapshot()` is taken, a new instance of the new component is
//!    created, and `restore(state)` is called with the old version string
//!    in `state.version` — the new code migrates the layout there, like
//!    Erlang's `code_change`. Without `snapshot`/`restore` the new instance
//!    starts fresh with `init(config)`. The actor's address and mailbox do
//!    not change: messages that arrive meanwhile wait and are handled by the
//!    new code in order; a message in progress finishes on the old code.
//! 3. *Probation*: the old instance is kept, frozen, for the probation
//!    window. If the new code fails to start, or fails (traps) within the
//!    window, the old instance is reinstated with the state it had when the
//!    swap began, and the swap reports why. Messages the new code handled
//!    meanwhile are not replayed. After the window the old instance is
//!    dropped.
//!
//! A rolling swap of several actors holds every swapped actor's old
//! instance until all have passed probation, so that a failure anywhere
//! rolls back everything it changed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::LoadError;
use crate::engine::Failure;
use crate::message::Address;
use crate::protocol::ProtocolDiff;

/// Default probation window after a swap.
pub const DEFAULT_PROBATION: Duration = Duration::from_secs(1);

/// How to swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapOptions {
    /// Skip the export-compatibility check (never the import check).
    pub force: bool,
    /// How long the old instance is kept for a rollback.
    pub probation: Duration,
}

impl Default for SwapOptions {
    fn default() -> Self {
        SwapOptions { force: false, probation: DEFAULT_PROBATION }
    }
}

/// A component's identity, as a swap report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeVersion {
    /// Component name.
    pub name: String,
    /// Version, if known.
    pub version: Option<String>,
    /// Content hash (12 hex digits).
    pub hash: String,
}

/// How the state crossed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum StateTransfer {
    /// `snapshot` → `restore`.
    Restored {
        /// Bytes of state moved.
        bytes: u64,
        /// The state version the old code wrote.
        from_version: String,
    },
    /// The new instance started with `init`: the old code or the new one
    /// lacks `snapshot`/`restore`.
    FreshInit {
        /// Which side lacked it.
        reason: String,
    },
}

/// What a successful swap did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapReport {
    /// The actor.
    pub address: Address,
    /// The code before.
    pub old: CodeVersion,
    /// The code after.
    pub new: CodeVersion,
    /// How long the actor handled no messages because of the swap.
    pub pause_us: u64,
    /// How the state crossed over.
    pub state: StateTransfer,
    /// The probation window it passed.
    pub probation_ms: u64,
    /// Whether the export check was skipped.
    pub forced: bool,
}

/// Why a swap did not happen, or was undone.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// The new component's exports do not cover the old protocol.
    #[error("the new component is not compatible with `{address}`'s protocol (use --force to swap anyway):\n{diff}")]
    Incompatible {
        /// The actor.
        address: Address,
        /// What differs.
        diff: ProtocolDiff,
    },
    /// The new component cannot be loaded or linked.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The actor is not running (down for a restart, or stopping).
    #[error("`{0}` is not running (it is restarting or stopping); retry the swap")]
    NotRunning(Address),
    /// Another swap of this actor is still in probation.
    #[error("`{0}` is already being swapped")]
    InProgress(Address),
    /// The old code failed to produce its snapshot (the actor restarts).
    #[error("`{address}`'s snapshot failed, nothing was swapped: {failure}")]
    Snapshot {
        /// The actor.
        address: Address,
        /// What happened.
        failure: Failure,
    },
    /// The new code failed to start; the old code kept running.
    #[error("the new code of `{address}` failed to start and the old code kept running: {failure}")]
    Start {
        /// The actor.
        address: Address,
        /// What happened.
        failure: Failure,
    },
    /// The new code failed during probation; the old code is back.
    #[error(
        "the new code of `{address}` failed during probation; rolled back to the old code and its state at the \
         start of the swap: {failure}"
    )]
    Probation {
        /// The actor.
        address: Address,
        /// What happened.
        failure: Failure,
    },
    /// A rolling swap stopped at a failure and rolled back.
    #[error("rolling swap stopped at `{at}` and rolled back {rolled_back} actor(s): {cause}")]
    RolledBack {
        /// Where it failed.
        at: Address,
        /// How many already-swapped actors were rolled back.
        rolled_back: usize,
        /// The failure.
        cause: Box<SwapError>,
    },
    /// The actor stopped during the swap.
    #[error("`{0}` stopped during the swap")]
    Stopped(Address),
    /// Nothing answers to the target.
    #[error("no actor or manifest entry named `{0}`; `troupe ps` lists them")]
    UnknownTarget(String),
}

impl SwapError {
    /// A stable kebab-case name for the error kind.
    pub fn code(&self) -> &'static str {
        match self {
            SwapError::Incompatible { .. } => "incompatible",
            SwapError::Load(_) => "load-failed",
            SwapError::NotRunning(_) => "not-running",
            SwapError::InProgress(_) => "in-progress",
            SwapError::Snapshot { .. } => "snapshot-failed",
            SwapError::Start { .. } => "start-failed",
            SwapError::Probation { .. } => "probation-failed",
            SwapError::RolledBack { .. } => "rolled-back",
            SwapError::Stopped(_) => "stopped",
            SwapError::UnknownTarget(_) => "unknown-address",
        }
    }
}
