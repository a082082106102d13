//! What an actor is started with: its [`ActorSpec`] (address, code,
//! policy, place in the tree) and its [`ActorPolicy`] (resources, sandbox,
//! configuration, state and supervision).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ActorLimits;
use super::binding::BindingSpec;
use super::component::ActorComponent;
use super::durable::Durability;
use crate::engine::EngineKind;
use crate::grants::Grants;
use crate::message::Address;
use crate::supervision::{RestartType, SupervisorSpec};

/// Where an actor's state comes from when it restarts after a failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartFrom {
    /// A fresh instance, initialised with `init(config)`: the failure
    /// loses the actor's state.
    #[default]
    Init,
    /// The last snapshot, taken every `snapshot-every` messages, if the
    /// actor exports `persistence`; else like `Init`. With
    /// `snapshot-every = 1` the failed message is as if it never happened.
    Snapshot,
}

/// Default grace period for an actor's `shutdown.stop` export (a deadline like a message's).
pub const DEFAULT_SHUTDOWN: Duration = Duration::from_secs(5);

/// How actors started from one component entry behave: resources, sandbox,
/// configuration, state and supervision.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorPolicy {
    /// Resource limits.
    pub limits: ActorLimits,
    /// What it may reach outside the sandbox.
    pub grants: Grants,
    /// Handed to `init`.
    pub config: Vec<(String, String)>,
    /// Whether its state and acknowledged tells survive the host (see
    /// [`crate::actor::durable`]). A durable actor restarts from its last
    /// committed state, whatever `restore` says.
    pub durability: Durability,
    /// Where its state comes from when it restarts.
    pub restore: RestartFrom,
    /// With [`RestartFrom::Snapshot`]: take a snapshot after every this many
    /// messages...
    pub snapshot_every: Option<u32>,
    /// ...and/or once this long has passed since the last one (checked
    /// after each message). With neither, after every message.
    pub snapshot_interval: Option<Duration>,
    /// For a durable actor that journals between snapshots: a snapshot is
    /// due, too, once its journal since the last one holds this many bytes
    /// ([`DEFAULT_SNAPSHOT_JOURNAL_BYTES`] when absent). Setting it alone
    /// makes a durable actor journal, with snapshots by size only.
    pub snapshot_journal_bytes: Option<u64>,
    /// Hibernate after this long without a message: drop the instance and
    /// keep only its snapshot until the next message (like OTP's
    /// `hibernate_after`). Needs the component to export
    /// `troupe:actor/persistence`.
    pub hibernate_after: Option<Duration>,
    /// When its supervisor restarts it.
    pub restart: RestartType,
    /// How it supervises the children it spawns.
    pub supervision: SupervisorSpec,
    /// Grace period for its `shutdown.stop` export: the deadline of that call.
    pub shutdown: Duration,
    /// Bindings of its imported protocol interfaces (see
    /// [`crate::actor::binding`]): which actor or group each one's calls
    /// go to.
    pub bindings: Vec<(String, BindingSpec)>,
    /// How many instances of its code to keep ready, instantiated ahead,
    /// for the next actors started from the same template (its group):
    /// such a start takes one and only runs `init` or `restore` (see
    /// `actor/warm.rs`). 0 (the default) keeps none. The keys of a virtual
    /// component use it.
    pub warm_instances: u32,
}

impl ActorPolicy {
    /// Does a durable actor with this policy snapshot less often than
    /// after every message, and so journal the messages in between (see
    /// [`crate::actor::durable`])?
    pub fn journals(&self) -> bool {
        self.durability == Durability::Durable
            && (self.snapshot_every.is_some_and(|n| n > 1)
                || self.snapshot_interval.is_some()
                || self.snapshot_journal_bytes.is_some())
    }

    /// How large a journal makes a snapshot due.
    pub fn journal_bytes_limit(&self) -> u64 {
        self.snapshot_journal_bytes.unwrap_or(DEFAULT_SNAPSHOT_JOURNAL_BYTES)
    }
}

/// The size of journal since the last snapshot that makes a durable
/// actor's next snapshot due, unless its policy says otherwise: replaying
/// more than this after a crash costs more than a snapshot of most states.
pub const DEFAULT_SNAPSHOT_JOURNAL_BYTES: u64 = 4 << 20;

impl Default for ActorPolicy {
    fn default() -> Self {
        ActorPolicy {
            limits: ActorLimits::default(),
            grants: Grants::default(),
            config: Vec::new(),
            durability: Durability::default(),
            restore: RestartFrom::default(),
            snapshot_every: None,
            snapshot_interval: None,
            snapshot_journal_bytes: None,
            hibernate_after: None,
            restart: RestartType::default(),
            supervision: SupervisorSpec::default(),
            shutdown: DEFAULT_SHUTDOWN,
            bindings: Vec::new(),
            warm_instances: 0,
        }
    }
}

/// Everything needed to start an actor.
#[derive(Debug, Clone)]
pub struct ActorSpec {
    /// Its address.
    pub address: Address,
    /// Its code.
    pub component: Arc<ActorComponent>,
    /// Its policy.
    pub policy: ActorPolicy,
    /// The actor that spawned it, if any.
    pub parent: Option<Address>,
    /// The group it belongs to, if any: the template it was started from
    /// (a manifest entry, or the component a guest spawned), or its pool.
    /// Bindings route over groups, and a rolling swap swaps one.
    pub group: Option<String>,
}

impl ActorSpec {
    /// The engine its code runs on: the fuel-metered one if it has a fuel
    /// budget.
    pub fn engine_kind(&self) -> EngineKind {
        self.policy.limits.engine_kind()
    }
}
