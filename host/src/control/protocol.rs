//! The control protocol's messages. One JSON object per line each way.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::actor::ActorLimits;
use crate::outbound::HttpGrant;
use crate::supervision::{RestartType, SupervisorSpec};

/// The publisher and number of a numbered tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Numbered {
    /// The publisher's name.
    pub publisher: String,
    /// The tell's number in the publisher's sequence.
    pub seq: u64,
}

/// A request to the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Start an actor from a component file.
    Spawn {
        /// Its address.
        name: String,
        /// The component file (absolute: the host may run elsewhere).
        path: PathBuf,
        /// Limits to override; the rest take their defaults.
        #[serde(default)]
        limits: LimitOverrides,
        /// Configuration handed to `init`.
        #[serde(default)]
        config: Vec<(String, String)>,
        /// The supervisor to start it under (the root by default).
        #[serde(default)]
        supervisor: Option<String>,
        /// How its supervisor restarts it (permanent by default).
        #[serde(default)]
        restart: Option<RestartType>,
        /// Durable: its state and acknowledged tells survive the host.
        #[serde(default)]
        durable: bool,
        /// Outbound HTTP it may make (none by default).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        http: Option<HttpGrant>,
    },
    /// Create a supervisor.
    Supervise {
        /// Its name (address).
        name: String,
        /// Its policy.
        #[serde(default)]
        spec: SupervisorSpec,
        /// Its own supervisor (the root by default).
        #[serde(default)]
        parent: Option<String>,
    },
    /// Hot-swap an actor, or every actor of a manifest entry, to new code.
    Swap {
        /// An actor address, or a manifest entry (component) name.
        target: String,
        /// The new component file (absolute).
        path: PathBuf,
        /// Skip the export-compatibility check.
        #[serde(default)]
        force: bool,
        /// Probation window per actor, milliseconds (default 1000).
        #[serde(default)]
        probation_ms: Option<u64>,
        /// For a rolling swap: probation of the first actor, milliseconds.
        #[serde(default)]
        canary_ms: Option<u64>,
        /// The new code's version, shown by `troupe ps`.
        #[serde(default)]
        version: Option<String>,
        /// Every host's actors of `target`, host after host, if this host
        /// is part of a cluster.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cluster: bool,
    },
    /// The supervision tree.
    Tree {
        /// Every host's tree, by node, if this host is part of a cluster.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cluster: bool,
    },
    /// Stream lifecycle events, one `ok` line per event, until the client
    /// hangs up.
    Events,
    /// Ask: send a message and wait for the reply.
    Call {
        /// The receiver.
        address: String,
        /// The message, a WAVE call.
        message: String,
        /// How long to wait, in milliseconds (default 5000).
        timeout_ms: Option<u64>,
    },
    /// Tell: queue a message.
    Send {
        /// The receiver.
        address: String,
        /// The message, a WAVE call.
        message: String,
        /// For a numbered tell, taken once however often it is sent: its
        /// publisher and number (see `Host::send_numbered`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        numbered: Option<Numbered>,
        /// How long to wait for the acknowledgement, in milliseconds (by
        /// default as long as the receiver takes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// List the actors.
    Ps {
        /// Only the active keys of this virtual component.
        #[serde(default, rename = "virtual", skip_serializing_if = "Option::is_none")]
        virtual_component: Option<String>,
        /// Every host's actors, by node, if this host is part of a cluster.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cluster: bool,
    },
    /// Stop an actor and its children.
    Stop {
        /// The actor.
        address: String,
    },
    /// The dead letters of durable actors: tells set aside after failing
    /// again and again.
    DeadLetters {
        /// Only this actor's.
        #[serde(default)]
        address: Option<String>,
    },
    /// Passivate an actor now: it hibernates (its instance goes, its state
    /// stays) until its next message.
    Passivate {
        /// The actor.
        address: String,
    },
    /// Send a dead letter to its actor again.
    Redeliver {
        /// Its id, `ADDRESS:SEQ`, as `dead-letters` lists it.
        id: String,
    },
    /// A durable actor's committed state, as a [`StateFile`].
    StateExport {
        /// The actor.
        address: String,
    },
    /// Make a [`StateFile`]'s state what an address not running here has
    /// committed: a durable actor spawned there next starts from it.
    StateImport {
        /// The address.
        address: String,
        /// The state.
        state: StateFile,
    },
}

/// A durable actor's state as `troupe state export` writes it and
/// `troupe state import` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    /// The actor it was exported from.
    pub address: String,
    /// The state layout's version, as the actor's `snapshot` wrote it.
    pub version: String,
    /// The state, in hexadecimal.
    pub hex: String,
}

impl StateFile {
    /// The state of `address` as a file.
    pub fn new(address: &str, state: &crate::actor::Snapshot) -> Self {
        let hex = hex::encode(&state.bytes);
        StateFile { address: address.to_string(), version: state.version.clone(), hex }
    }

    /// The state it holds.
    ///
    /// # Errors
    ///
    /// The hexadecimal is malformed.
    pub fn state(&self) -> Result<crate::actor::Snapshot, String> {
        let bytes = hex::decode(&self.hex).map_err(|e| format!("the state's hexadecimal is malformed: {e}"))?;
        Ok(crate::actor::Snapshot { version: self.version.clone(), bytes })
    }
}

/// Limits given on the command line; unset ones keep their defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitOverrides {
    /// Fuel per message.
    pub fuel: Option<u64>,
    /// Memory in bytes.
    pub memory: Option<u64>,
    /// Deadline of each message, milliseconds.
    pub deadline_ms: Option<u64>,
    /// Mailbox capacity.
    pub mailbox: Option<usize>,
}

impl LimitOverrides {
    /// The default limits with these overrides applied.
    pub fn apply(&self) -> ActorLimits {
        self.apply_to(ActorLimits::default())
    }

    /// `limits` with these overrides applied.
    pub fn apply_to(&self, mut limits: ActorLimits) -> ActorLimits {
        limits.fuel = self.fuel.or(limits.fuel);
        if let Some(m) = self.memory {
            limits.memory = m;
        }
        if let Some(ms) = self.deadline_ms {
            limits.deadline = std::time::Duration::from_millis(ms);
        }
        if let Some(n) = self.mailbox {
            limits.mailbox = n;
        }
        limits
    }
}

/// The host's answer: exactly one of `ok` and `error` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The result, shaped by the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<serde_json::Value>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// An error from the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable kebab-case error kind (`unknown-address`, `mailbox-full`,
    /// `bad-message`, `actor-failed`, `spawn-failed`, ...).
    pub code: String,
    /// A sentence naming the problem and the fix.
    pub message: String,
}

/// The answer to a spawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnReply {
    /// The new actor's address.
    pub address: String,
    /// The component's name.
    pub component: String,
    /// The component's content hash (12 hex digits).
    pub hash: String,
}

#[cfg(test)]
mod state_file_tests {
    use super::StateFile;
    use crate::actor::Snapshot;

    #[test]
    fn a_state_file_holds_the_state_byte_for_byte_and_refuses_malformed_hex() {
        let state = Snapshot { version: "counter/1".into(), bytes: vec![0, 1, 0xab, 0xff] };
        let file = StateFile::new("c", &state);
        assert_eq!(file.hex, "0001abff");
        let back = file.state().unwrap();
        assert_eq!((back.version, back.bytes), (state.version, state.bytes));
        let odd = StateFile { hex: "abc".into(), ..file.clone() };
        assert!(odd.state().unwrap_err().contains("malformed"));
        let bad = StateFile { hex: "zz".into(), ..file };
        assert!(bad.state().unwrap_err().contains("malformed"));
    }
}
