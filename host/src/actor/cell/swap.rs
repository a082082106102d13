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
//!
//! # Durable actors
//!
//! A durable actor's swap commits, once the new code has started, the
//! state as the new code holds it (its `snapshot()` right after
//! `restore`) together with a [`SwappedCode`] record naming that code, in
//! one transaction: from then on recovery starts the new code, and every
//! state committed on probation is one the new code wrote. A rollback
//! commits the old code's state from the start of the swap with a record
//! naming the old code, again in one transaction, before the swap is
//! reported as failed; the tells the new code handled on probation are
//! undone with it, as for an actor in memory. The new code must export
//! `troupe:actor/persistence`, as the old one does.
//!
//! The probation ends early, keeping the new code, when the actor goes
//! down or is stopped for any reason other than a failure of the new code
//! (its supervisor terminating it, a linked actor failing, its own exit):
//! the swap is then reported as done (or, for a stop, as interrupted).

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use super::Cell;
use super::phase::Phase;
use crate::actor::Failure;
use crate::actor::component::{ActorComponent, LoadError};
use crate::actor::control::SwapRequest;
use crate::actor::durable::Checkpoint;
use crate::actor::durable::Outbox;
use crate::actor::host_api::Snapshot;
use crate::actor::incarnation::Incarnation;
use crate::error_code::{ErrorCode, HasErrorCode};
use crate::events::EventKind;
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
    /// A durable actor's swap that could not be made durable: the old code
    /// keeps running, with its committed state.
    #[error("`{address}` is durable and kept its old code: {reason}")]
    NotDurable {
        /// The actor.
        address: Address,
        /// Why (the new code lacks `persistence`, the store refused the
        /// write).
        reason: String,
    },
    /// Nothing answers to the target.
    #[error("no actor or manifest entry named `{0}`; `troupe ps` lists them")]
    UnknownTarget(String),
}

impl HasErrorCode for SwapError {
    fn code(&self) -> ErrorCode {
        match self {
            SwapError::Incompatible { .. } => ErrorCode::Incompatible,
            SwapError::Load(_) => ErrorCode::LoadFailed,
            SwapError::NotRunning(_) => ErrorCode::NotRunning,
            SwapError::InProgress(_) => ErrorCode::InProgress,
            SwapError::Snapshot { .. } => ErrorCode::SnapshotFailed,
            SwapError::Start { .. } => ErrorCode::StartFailed,
            SwapError::Probation { .. } => ErrorCode::ProbationFailed,
            SwapError::RolledBack { .. } => ErrorCode::RolledBack,
            SwapError::Stopped(_) => ErrorCode::Stopped,
            SwapError::NotDurable { .. } => ErrorCode::NotDurable,
            SwapError::UnknownTarget(_) => ErrorCode::UnknownAddress,
        }
    }
}

/// The code a durable actor runs after a hot swap, as committed with its
/// state: what recovery starts it from instead of the code its manifest
/// entry or spawn names, as long as that is still the code it was started
/// from (`base`). A manifest (or spawn) that names other code since wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwappedCode {
    /// The content hash (hex) of the code the actor's manifest entry or
    /// spawn names, which the swap replaced.
    pub base: String,
    /// The component's name.
    pub name: String,
    /// Where it was loaded from (a path).
    pub source: String,
    /// Its version, if known.
    pub version: Option<String>,
    /// Its content hash (hex).
    pub hash: String,
}

impl SwappedCode {
    /// The record of `component` replacing the code hashed `base`.
    fn of(component: &ActorComponent, base: String) -> Self {
        SwappedCode {
            base,
            name: component.name.clone(),
            source: component.source.clone(),
            version: component.version.clone(),
            hash: component.hash.to_hex().to_string(),
        }
    }

    /// As the journal stores it.
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// As the journal stored it (`None`: unreadable).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

fn version_of(component: &ActorComponent) -> CodeVersion {
    CodeVersion { name: component.name.clone(), version: component.version.clone(), hash: component.short_hash() }
}

/// A swap on probation: the old code and its state, kept frozen for a
/// rollback, and who waits for the outcome.
pub(crate) struct Trial {
    old: Incarnation,
    old_component: Arc<ActorComponent>,
    /// Fires when the probation window ends. Lives here (boxed with the
    /// rest) so that waiting costs an idle actor's task nothing.
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Keep the old code after the window, until a commit or rollback.
    hold: bool,
    /// For a durable actor: the old code's state at the start of the swap
    /// and the hash of the code its spawn names, committed again by a
    /// rollback.
    durable: Option<(Snapshot, String)>,
    passed: bool,
    ack: Option<oneshot::Sender<Result<SwapReport, SwapError>>>,
    report: SwapReport,
}

impl Trial {
    /// Has the probation window passed?
    pub fn passed(&self) -> bool {
        self.passed
    }

    /// Resolves when the probation window ends.
    pub async fn window(&mut self) {
        self.timer.as_mut().await
    }

    /// The actor stopped during probation: the swap did not complete.
    pub fn stopped(mut self: Box<Self>, address: &Address) {
        if let Some(ack) = self.ack.take() {
            let _ = ack.send(Err(SwapError::Stopped(address.clone())));
        }
    }

    /// Probation ends now, keeping the new code: reports the swap, drops
    /// the old code.
    fn conclude(mut self: Box<Self>) {
        self.passed = true;
        if let Some(ack) = self.ack.take() {
            let _ = ack.send(Ok(self.report.clone()));
        }
    }
}

impl Cell {
    /// Swaps `old` for a new incarnation of the requested component,
    /// carrying the state across. Ends on probation with the new code, back
    /// on the old code if the new one could not start, or down if the old
    /// code's snapshot failed.
    pub(super) async fn swap(&mut self, mut old: Incarnation, request: SwapRequest) -> Phase {
        let SwapRequest { component, options, hold, state: injected, ack } = request;
        let address = self.address().clone();
        let paused = Instant::now();
        let taken_from_old = injected.is_none();
        let snapshot = match injected {
            Some(state) => Ok(Some(state)),
            None => old.snapshot(&self.me).await,
        };
        let state = match snapshot {
            Ok(state) => state,
            Err(failure) => {
                let failure = self.explain(failure);
                let _ = ack.send(Err(SwapError::Snapshot { address, failure: failure.clone() }));
                drop(old);
                return self.go_down(failure, &[]);
            }
        };
        let number = self.me.stats().next_incarnation();
        let (mut new, transfer) = match self.start_new_code(&component, state.as_ref()).await {
            Ok(started) => started,
            Err(failure) => {
                let failure = self.explain(failure);
                warn!(kind = %failure.kind, detail = %failure.detail, "new code failed to start; keeping the old");
                let _ = ack.send(Err(SwapError::Start { address, failure }));
                return Phase::Running(old);
            }
        };
        let mut durable = None;
        if self.me.is_durable() {
            match self.commit_new_code(&mut new, &component).await {
                Ok(base) => durable = state.clone().filter(|_| taken_from_old).map(|state| (state, base)),
                Err(refused) => {
                    let _ = ack.send(Err(refused));
                    return Phase::Running(old);
                }
            }
        }
        let old_component = self.spec.component.clone();
        let report = SwapReport {
            address,
            old: version_of(&old_component),
            new: version_of(&component),
            pause_us: paused.elapsed().as_micros() as u64,
            state: transfer,
            probation_ms: options.probation.as_millis() as u64,
            forced: options.force,
        };
        self.generation = self.me.set_component(component.clone());
        self.spec.component = component;
        if let Some(state) = state
            && !self.me.is_durable()
        {
            // Restarts restore this until the new code writes its own.
            self.snapshots.keep_for_restart(&self.spec.policy, state);
        }
        info!(old = %report.old.hash, new = %report.new.hash, pause_us = report.pause_us, "swapped");
        self.system.events().publish(self.address(), EventKind::Started { incarnation: number, phases: None });
        self.system.events().publish(
            self.address(),
            EventKind::Swapped {
                old: report.old.hash.clone(),
                new: report.new.hash.clone(),
                pause_us: report.pause_us,
            },
        );
        let trial = Box::new(Trial {
            old,
            old_component,
            timer: Box::pin(tokio::time::sleep(options.probation)),
            hold,
            durable,
            passed: false,
            ack: Some(ack),
            report,
        });
        if options.probation.is_zero() { self.probation_over(new, trial) } else { Phase::Probation(new, trial) }
    }

    /// A new incarnation of `component`, restored from `state` if both
    /// sides have `persistence`, else fresh.
    async fn start_new_code(
        &mut self,
        component: &Arc<ActorComponent>,
        state: Option<&Snapshot>,
    ) -> Result<(Incarnation, StateTransfer), Failure> {
        let mut inc = Incarnation::instantiate(&self.spec, component, &self.me, &self.system, &self.resources).await?;
        let transfer = match state {
            Some(state) if inc.persistent() => {
                inc.restore(&self.me, state).await?;
                StateTransfer::Restored { bytes: state.bytes.len() as u64, from_version: state.version.clone() }
            }
            Some(_) => {
                inc.init(&self.me, &self.spec.policy.config).await?;
                StateTransfer::FreshInit { reason: "the new code exports no `restore`".into() }
            }
            None => {
                inc.init(&self.me, &self.spec.policy.config).await?;
                StateTransfer::FreshInit { reason: "the old code exports no `snapshot`".into() }
            }
        };
        Ok((inc, transfer))
    }

    /// Commits, for a durable actor, the state as the new code `new` holds
    /// it together with the record of `component`, so that recovery starts
    /// the new code. Returns the hash of the code the actor's spawn names.
    async fn commit_new_code(
        &mut self,
        new: &mut Incarnation,
        component: &ActorComponent,
    ) -> Result<String, SwapError> {
        let refuse = |reason: String| SwapError::NotDurable { address: self.address().clone(), reason };
        let Some(journal) = self.me.journal().cloned() else { return Err(refuse("it has no store".into())) };
        let state = match new.snapshot(&self.me).await {
            Ok(Some(state)) => state,
            Ok(None) => {
                return Err(refuse(format!(
                    "`{}` does not export `troupe:actor/persistence`, through which a durable actor's state is \
                     committed",
                    component.name
                )));
            }
            Err(failure) => {
                let failure = self.explain(failure);
                return Err(SwapError::Start {
                    address: self.address().clone(),
                    failure: Failure::new(failure.kind, format!("in `snapshot`: {}", failure.detail)),
                });
            }
        };
        // The code its spawn names: the base of the code it runs, if that
        // is the code recorded by an earlier swap, else the code it runs.
        let running = &self.spec.component;
        let recorded = journal.code(self.address()).ok().flatten().and_then(|bytes| SwappedCode::decode(&bytes));
        let base = match recorded {
            Some(code) if code.hash == running.hash.to_hex().as_str() => code.base,
            _ => running.hash.to_hex().to_string(),
        };
        let watermark = self.consumed_watermark();
        let code = SwappedCode::of(component, base.clone()).encode();
        let outbox = self.outbox();
        // The old code's snapshots and journal go: the new code replays
        // nothing of it.
        let written = self.durable.as_ref().map_or(0, |d| d.journal_written);
        journal
            .commit_code(self.address(), Checkpoint::only(state.clone(), watermark, outbox, written), code)
            .await
            .map_err(|e| refuse(format!("the new code could not be recorded: {e}")))?;
        self.durable().unsaved = false;
        self.durable().snapshot_position = written;
        self.me.set_committed(watermark);
        self.dispatch();
        self.snapshots.keep_for_restart(&self.spec.policy, state);
        // The next commit, by the new code, is a snapshot: a journal is
        // replayed by the code that wrote it.
        self.durable().journal_base = None;
        Ok(base)
    }

    /// The number of the last tell the actor's state contains between two
    /// messages: the committed one, or, when a commit failed since, the
    /// last it took.
    fn consumed_watermark(&self) -> u64 {
        match self.me.committed_seq() {
            Some(committed) if !self.durable.as_ref().is_some_and(|d| d.unsaved) => committed,
            _ => self.watermark(),
        }
    }

    /// The probation window passed: report success, and drop the old code
    /// unless the swap is held for a rolling swap.
    pub(super) fn probation_over(&mut self, inc: Incarnation, mut trial: Box<Trial>) -> Phase {
        trial.passed = true;
        if let Some(ack) = trial.ack.take() {
            let _ = ack.send(Ok(trial.report.clone()));
        }
        if trial.hold { Phase::Probation(inc, trial) } else { Phase::Running(inc) }
    }

    /// A held swap is kept: the old code goes.
    pub(super) fn commit(&mut self, inc: Incarnation, trial: Box<Trial>) -> Phase {
        info!(new = %trial.report.new.hash, "swap committed");
        trial.conclude();
        Phase::Running(inc)
    }

    /// Leaving probation for any reason but a failure of the new code (see
    /// the module docs): the new code stays, the swap is reported.
    pub(super) fn leave_probation(&mut self, phase: Phase) -> Phase {
        match phase {
            Phase::Probation(inc, trial) => {
                trial.conclude();
                Phase::Running(inc)
            }
            other => other,
        }
    }

    /// Reinstates the old code and its state from the start of the swap:
    /// the new code failed on probation (`failure`), or a rolling swap is
    /// rolled back (`None`).
    pub(super) fn roll_back(&mut self, mut trial: Box<Trial>, failure: Option<Failure>) -> Incarnation {
        self.generation = self.me.set_component(trial.old_component.clone());
        self.spec.component = trial.old_component.clone();
        let reason = failure.as_ref().map_or_else(|| "rolling swap rolled back".to_string(), |f| f.to_string());
        self.system.events().publish(self.address(), EventKind::SwapRolledBack { reason });
        let outcome = match failure {
            Some(failure) => {
                error!(kind = %failure.kind, detail = %failure.detail, "new code failed on probation; rolled back");
                self.me.stats().failed(&failure);
                self.system.events().publish(self.address(), EventKind::failed(&failure));
                trial.ack.take().map(|ack| (ack, SwapError::Probation { address: self.address().clone(), failure }))
            }
            None => {
                info!("swap rolled back");
                None
            }
        };
        let committed = match (trial.durable.take(), self.me.journal()) {
            (Some((state, base)), Some(journal)) => {
                // The tells handled on probation are undone with the new
                // code's state; those still queued stay in the inbox.
                let watermark = self.consumed_watermark();
                let code = SwappedCode::of(&trial.old_component, base).encode();
                self.snapshots.keep_for_restart(&self.spec.policy, state.clone());
                let written = self.durable.as_ref().map_or(0, |d| d.journal_written);
                if let Some(durable) = &mut self.durable {
                    durable.journal_base = None;
                    durable.snapshot_position = written;
                }
                let checkpoint = Checkpoint::only(state, watermark, Outbox::default(), written);
                Some(journal.commit_code(self.address(), checkpoint, code))
            }
            _ => None,
        };
        // The failure is reported once the old code is durable again (the
        // write is queued now, ahead of the old code's next commit).
        tokio::spawn(async move {
            if let Some(committed) = committed
                && let Err(e) = committed.await
            {
                error!(error = %e, "the rolled-back code could not be recorded: recovery may start the new code");
            }
            if let Some((ack, error)) = outcome {
                let _ = ack.send(Err(error));
            }
        });
        trial.old
    }
}
