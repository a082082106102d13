//! Spawning children from inside a guest: what it may ask for
//! ([`SpawnOptions`]) and why a spawn fails ([`SpawnError`]).

use super::binding::{BindError, BindingSpec};
use super::component::LoadError;
use super::durable::Durability;
use super::{Failure, LimitsError};
use crate::error_code::{ErrorCode, HasErrorCode};
use crate::grants::GrantError;
use crate::message::Address;
use crate::supervision::RestartType;

/// How a guest asked for a child (the WIT `spawn-options`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SpawnOptions {
    /// The child's address; generated under the parent's when absent.
    pub name: Option<String>,
    /// Laid over the component entry's configuration.
    pub config: Vec<(String, String)>,
    /// How the child restarts.
    pub restart: RestartType,
    /// Durable or in memory; the component entry's durability when absent.
    pub durability: Option<Durability>,
    /// A named supervisor to place the child under, instead of the parent.
    pub supervisor: Option<String>,
    /// Link the child to the parent.
    pub link: bool,
    /// Bindings of the child's imports, laid over its entry's.
    pub bindings: Vec<(String, BindingSpec)>,
    /// Outbound HTTP for the child, within the parent's own grant, in
    /// place of its entry's; the entry's when absent.
    pub http: Option<super::http_port::ChildHttpGrant>,
    /// Made by a durable actor's message, whose second run after a crash
    /// makes it again: if its parent already has a child at its address,
    /// that child is the result (see [`crate::actor::durable`]).
    pub once: bool,
}

/// Why a spawn failed.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The address is taken.
    #[error("the address `{0}` is already taken; pick another name or stop that actor first")]
    NameTaken(Address),
    /// The name is not a valid address.
    #[error("invalid actor name: {0}")]
    InvalidName(#[from] crate::message::AddressError),
    /// The host knows no component by this name.
    #[error("no component named `{name}`; known components: {known}")]
    UnknownComponent {
        /// The name asked for.
        name: String,
        /// The names the host knows.
        known: String,
    },
    /// The component could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The limits are invalid.
    #[error(transparent)]
    Limits(#[from] LimitsError),
    /// A directory grant cannot be honoured.
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// The component imports `wasi:http/outgoing-handler` and the actor
    /// has no `http` grant.
    #[error(
        "`{0}` imports wasi:http/outgoing-handler but has no `http` grant; grant the URLs it may request, \
         e.g. `grants = {{ http = [\"https://api.example.com/v1/*\"] }}` in the manifest or \
         `troupe spawn --allow-http URL-PATTERN`"
    )]
    HttpNotGranted(Address),
    /// The `http` grant asked for the child is not within the spawner's.
    #[error("the `http` grant asked for `{child}` is refused: {reason}")]
    HttpNotHeld {
        /// The child.
        child: Address,
        /// Which pattern or limit, and why.
        reason: String,
    },
    /// A binding of the child's imports was refused.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The supervision policy for its children is invalid.
    #[error("invalid supervision policy: {0}")]
    Supervision(#[from] crate::supervision::PolicyError),
    /// A pool runs identical children only.
    #[error("pool `{pool}` runs identical children from component `{expected}`; `{address}` would run `{found}`")]
    PoolMismatch {
        /// The pool supervisor.
        pool: Address,
        /// The component its children run.
        expected: String,
        /// The actor that would join it.
        address: Address,
        /// The component that actor runs.
        found: String,
    },
    /// The named supervisor does not exist.
    #[error("no supervisor named `{0}`; `troupe tree` lists them")]
    UnknownSupervisor(String),
    /// The actor failed to start.
    #[error("`{address}` failed to start: {failure}")]
    Start {
        /// The actor.
        address: Address,
        /// Why.
        failure: Failure,
    },
    /// A quota is exhausted.
    #[error("quota exceeded: {0}")]
    Quota(String),
    /// The host is shutting down.
    #[error("the host is shutting down")]
    ShuttingDown,
    /// A durable actor cannot be started this way (see
    /// [`crate::actor::durable`]).
    #[error("`{address}` cannot be durable: {reason}")]
    NotDurable {
        /// The actor.
        address: Address,
        /// Why, and what to do about it.
        reason: String,
    },
}

impl HasErrorCode for SpawnError {
    fn code(&self) -> ErrorCode {
        match self {
            SpawnError::NameTaken(_) => ErrorCode::NameTaken,
            SpawnError::InvalidName(_)
            | SpawnError::Limits(_)
            | SpawnError::Grant(_)
            | SpawnError::HttpNotGranted(_)
            | SpawnError::HttpNotHeld { .. }
            | SpawnError::Supervision(_)
            | SpawnError::PoolMismatch { .. } => ErrorCode::InvalidArgument,
            SpawnError::Bind(_) => ErrorCode::BadBinding,
            SpawnError::UnknownComponent { .. } => ErrorCode::UnknownComponent,
            SpawnError::UnknownSupervisor(_) => ErrorCode::UnknownSupervisor,
            SpawnError::Load(_) => ErrorCode::LoadFailed,
            SpawnError::Quota(_) => ErrorCode::QuotaExceeded,
            SpawnError::Start { .. } | SpawnError::ShuttingDown => ErrorCode::SpawnFailed,
            SpawnError::NotDurable { .. } => ErrorCode::NotDurable,
        }
    }
}

impl From<crate::wit::types::Durability> for Durability {
    fn from(value: crate::wit::types::Durability) -> Self {
        match value {
            crate::wit::types::Durability::InMemory => Durability::InMemory,
            crate::wit::types::Durability::Durable => Durability::Durable,
        }
    }
}
