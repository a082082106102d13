//! Lifecycle events: started, failed, restarting, escalated, stopped.
//!
//! Actors and supervisors publish them on the host's [`EventBus`]; `troupe
//! events` streams them and the log records them. The bus is a bounded
//! broadcast: a subscriber that falls behind loses the oldest events (and is
//! told how many), publishers never wait.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::actor::FailureKind;
use crate::message::Address;

/// How many events a slow subscriber may fall behind before losing some.
pub const EVENT_BUFFER: usize = 4096;

/// One lifecycle event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The actor or supervisor it is about.
    pub address: Address,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// How long the parts of a start or a wake-up took, in microseconds: the
/// new instance, `init` or `restore`, and the replay of a durable actor's
/// journal; for an actor's first start or wake-up, also what came before
/// (for a key of a virtual component, its activation's lookup and claim).
/// Their sum is the whole start, or the whole activation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phases {
    /// From the spawn (for a virtual key, the lookup that found it not
    /// active: its claim, the read of its committed state if durable, its
    /// placement in the tree) to the start of its first instance; 0 for a
    /// restart or a later wake-up.
    #[serde(default)]
    pub claim_us: u64,
    /// Instantiating the component.
    pub instantiate_us: u64,
    /// `init`, or `restore` from a snapshot.
    pub restore_us: u64,
    /// Replaying the journal after the snapshot (0 for none).
    pub replay_us: u64,
    /// The instance was made ahead, warm (see
    /// [`ActorPolicy::warm_instances`](crate::actor::ActorPolicy::warm_instances)):
    /// instantiating was taking it.
    #[serde(default)]
    pub warm: bool,
}

impl Phases {
    /// The phases of a start that was asked for at `began` (if it is the
    /// actor's first), began at `started`, had an instance (`warm` or not)
    /// at `instantiated`, was initialised or restored at `restored`, and
    /// had replayed its journal at `replayed`.
    pub fn between(
        began: Option<std::time::Instant>,
        started: std::time::Instant,
        (instantiated, warm): (std::time::Instant, bool),
        restored: std::time::Instant,
        replayed: std::time::Instant,
    ) -> Self {
        let us =
            |from: std::time::Instant, to: std::time::Instant| to.saturating_duration_since(from).as_micros() as u64;
        Phases {
            claim_us: began.map_or(0, |began| us(began, started)),
            instantiate_us: us(started, instantiated),
            restore_us: us(instantiated, restored),
            replay_us: us(restored, replayed),
            warm,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    /// An incarnation started (1 for the first).
    Started {
        /// Which incarnation.
        incarnation: u64,
        /// How long its parts took.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phases: Option<Phases>,
    },
    /// An incarnation failed.
    Failed {
        /// The failure kind.
        kind: FailureKind,
        /// What happened.
        detail: String,
        /// The end of what the guest wrote to stderr during the failed
        /// call, if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stderr: Option<String>,
    },
    /// A supervisor is restarting the child after `delay_ms`.
    Restarting {
        /// Consecutive restarts of this child (1 for the first).
        attempt: u32,
        /// The backoff delay.
        delay_ms: u64,
        /// The supervisor doing it.
        supervisor: Address,
    },
    /// A supervisor exceeded its intensity and gave up on its children.
    Escalated {
        /// Restarts within the period.
        restarts: u32,
        /// The period, in milliseconds.
        period_ms: u64,
    },
    /// The keys of a virtual component failed more often than its
    /// intensity allows within the period. Reported, not escalated: each
    /// key is activated again by its next message, and the others go on.
    FailureStorm {
        /// Failures within the period.
        failures: u32,
        /// The period, in milliseconds.
        period_ms: u64,
    },
    /// The actor's code was hot-swapped (it is on probation).
    Swapped {
        /// The old code's hash.
        old: String,
        /// The new code's hash.
        new: String,
        /// How long it handled no messages, in microseconds.
        pause_us: u64,
    },
    /// A swap was undone; the old code runs again.
    SwapRolledBack {
        /// Why.
        reason: String,
    },
    /// Idle for its `hibernate-after` period: its instance was dropped and
    /// its snapshot kept.
    Hibernated {
        /// Size of the snapshot it sleeps with.
        bytes: u64,
    },
    /// A key of a virtual component idle past its `idle-ms` (or passivated
    /// by hand) left the host: no cell, no instance, its state in the store
    /// (durable) or kept by the host (in memory). Its next message
    /// activates it again.
    Passivated {
        /// Size of the state it left with.
        bytes: u64,
    },
    /// A message or a control request woke it from hibernation.
    Woke {
        /// How long its parts took.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phases: Option<Phases>,
    },
    /// A durable actor that journals replayed the messages it handled
    /// after its last snapshot, as it started (see
    /// [`crate::actor::durable`]).
    Replayed {
        /// How many.
        messages: u64,
    },
    /// A circuit breaker over one of the actor's dependencies (an
    /// outbound HTTP pattern of its grant) changed state: `closed`,
    /// `open` or `half-open`.
    Breaker {
        /// The dependency: the URL pattern.
        dependency: String,
        /// The state left.
        from: String,
        /// The state entered.
        to: String,
        /// Why, with its figures (e.g. `{"cause": "consecutive-failures",
        /// "failures": 5}`).
        cause: serde_json::Value,
    },
    /// The actor exited normally (stopped itself).
    Exited,
    /// The incarnation was terminated by its supervisor (to restart it).
    Terminated,
    /// Stopped for good.
    Stopped {
        /// Why: "stopped", "failed", "not restarted", "escalated".
        reason: String,
    },
}

impl EventKind {
    /// The `failed` event of `failure`.
    pub fn failed(failure: &crate::actor::Failure) -> Self {
        EventKind::Failed { kind: failure.kind, detail: failure.detail.clone(), stderr: failure.stderr.clone() }
    }
}

/// The host's event bus. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(EVENT_BUFFER);
        EventBus { tx }
    }
}

impl EventBus {
    /// Publishes an event about `address`.
    pub fn publish(&self, address: &Address, kind: EventKind) {
        let at_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as u64;
        // No subscribers is fine: nobody is watching.
        let _ = self.tx.send(Event { at_ms, address: address.clone(), kind });
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
