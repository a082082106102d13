//! troupe: a WebAssembly-sandboxed actor host.
//!
//! Actors are WebAssembly components. The functions of the WIT interfaces a
//! component exports are its message protocol; a message is a typed call to
//! one of them, type-checked before it is queued. Each actor handles one
//! message at a time from a bounded mailbox, under a per-message CPU budget
//! and a memory limit, in its own wasmtime `Store`: a trap, a runaway loop
//! or a memory bomb fails that actor's message and nothing else, and the
//! actor continues with a fresh instance.
//!
//! The crate is layered, dependencies pointing down:
//!
//! * [`engine`] — wasmtime configuration, compilation and its disk cache,
//!   epoch ticker, resource limits, failure classification;
//! * [`protocol`] and [`message`] — protocols, message type checking,
//!   envelopes and errors (plain data);
//! * [`batch`] — batch delivery: the adapter composed with each component
//!   so that several messages go in one call, and the host's dispatch;
//! * [`actor`] — mailboxes, incarnations, the message loop, the
//!   `troupe:actor/host` API guests import;
//! * [`registry`] — the address space;
//! * [`Host`] ([`system`]) — the actor system, and [`manifest`] to fill it;
//! * [`control`] — the local control endpoint the `troupe` CLI speaks to.
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
pub mod control;
pub mod engine;
mod error_code;
pub mod events;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod grants;
pub mod host;
pub mod inspect;
pub mod manifest;
pub mod message;
pub mod protocol;
pub mod supervision;
mod sync;
mod units;
mod wit;

pub use actor::{
    ActorComponent, ActorInfo, ActorLimits, ActorPolicy, ActorRef, ActorSpec, ActorStatus, Failure, FailureKind,
    RestartFrom, SpawnError,
};
pub use engine::{BatchDelivery, EngineConfig};
pub use error_code::{ErrorCode, HasErrorCode};
pub use host::{ActorTemplate, Host, HostConfig, Starting};
pub use message::{Address, CallError, DEFAULT_ASK_TIMEOUT, NO_TIMEOUT};
pub use units::{SizeError, parse_bytes};
