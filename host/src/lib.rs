//! troupe: a WebAssembly-sandboxed actor host.
//!
//! Actors are WebAssembly components. The functions of the WIT interfaces a
//! component exports are its message protocol; a message is a typed call to
//! one of them, type-checked before it is queued. Each actor handles one
//! message at a time from a bounded mailbox, under a per-message deadline
//! and a memory limit, in its own wasmtime `Store`: a trap, a runaway loop
//! or a memory bomb fails that actor's message and nothing else, and the
//! actor continues with a fresh instance.
//!
//! The crate is layered, each layer a folder, dependencies pointing down
//! (nothing imports a layer above it):
//!
//! * [`engine`] — wasmtime: configuration, compilation and its disk cache,
//!   the epoch ticker, the store limiter, the classification of traps;
//!   beside it, the foundations every layer may use: `wit` (the
//!   `troupe:actor` package as Rust), [`ErrorCode`], sizes and durations
//!   ([`parse_bytes`]), poison-free locks, lock-free histograms, and
//!   [`trace`], the trace context messages carry;
//! * [`protocol`] — WIT types of a component's exports and imports, WAVE
//!   messages parsed and type-checked, protocol diffs;
//! * [`batch`] — batch delivery: the adapter composed with each component
//!   and the host's dispatch through it;
//! * [`supervision`] — the supervision rules: restart types, strategies,
//!   intensity and backoff, pure and clock-injected;
//! * [`actor`] — an actor: its handle, mailbox, phase machine, incarnations,
//!   the guest host API, messages, events and the sandbox;
//! * [`host`] — [`Host`], a facade over the host's services (catalog,
//!   registry, supervision tree and its supervisor tasks, routing), and
//!   [`manifest`] to fill it; beside it, [`outbound`], the policies of
//!   calls leaving the host (HTTP allow-lists, circuit breakers, retries),
//!   and [`metrics`], the host's metrics in the Prometheus format;
//! * `cluster` — several hosts on NATS (behind the `cluster` feature, on
//!   by default through `cli`): actors addressable from every host,
//!   through the ports the actor and host layers define;
//! * [`control`] — the local control endpoint the `troupe` CLI speaks to,
//!   and [`inspect`], which describes a component without running it;
//! * `gateway` — the HTTP gateway (behind the `gateway` feature, on by
//!   default through `cli`): calling and managing actors over HTTP, with
//!   JSON; it answers management requests through [`control`].
//!
//! The command line (`src/cli/`) is the binary's, behind the default `cli`
//! feature: `troupe = { default-features = false }` embeds the library
//! without it.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use troupe::{ActorTemplate, Host, HostConfig};
//!
//! let host = Host::new(HostConfig::default())?;
//! let component = host.load("counter", "counter.wasm".as_ref(), None)?;
//! let actor = host.spawn(ActorTemplate::new(component).spec("counter".into())).await?;
//! let reply = host.ask("counter", "incr(5)", troupe::DEFAULT_ASK_TIMEOUT).await?;
//! # let _ = (actor, reply);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod actor;
pub mod batch;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod control;
pub mod engine;
mod error_code;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
#[cfg(feature = "gateway")]
pub mod gateway;
mod histogram;
pub mod host;
pub mod inspect;
pub mod metrics;
pub mod outbound;
pub mod protocol;
/// The durable store: byte tables in atomic, fsync'd batches (redb), group commit, the data directory.
pub mod store;
pub mod supervision;
mod sync;
pub mod trace;
mod units;
mod wit;

pub use actor::{
    ActorComponent, ActorInfo, ActorLimits, ActorPolicy, ActorRef, ActorSpec, ActorStatus, Failure, FailureKind,
    RestartFrom, SpawnError,
};
pub use actor::{events, grants, message};
pub use batch::BatchDelivery;
pub use engine::EngineConfig;
pub use error_code::{ErrorCode, HasErrorCode};
pub use host::manifest;
pub use host::{ActorTemplate, Host, HostConfig, RecoveryHold, Starting};
pub use message::{Address, CallError, DEFAULT_ASK_TIMEOUT, NO_TIMEOUT};
pub use units::{SizeError, parse_bytes};
