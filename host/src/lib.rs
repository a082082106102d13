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
//! * [`actor`] — mailboxes, incarnations, the message loop, the
//!   `troupe:actor/host` API guests import;
//! * [`registry`] — the address space;
//! * [`Host`] ([`system`]) — the actor system, and [`manifest`] to fill it;
//! * [`control`] — the local control endpoint the `troupe` CLI speaks to.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use troupe::{ComponentEntry, Host, HostConfig};
//!
//! let host = Host::new(HostConfig::default())?;
//! let component = host.load("counter", "counter.wasm".as_ref(), None)?;
//! let actor = host.spawn(ComponentEntry::new(component).spec("counter".into())).await?;
//! let reply = host.ask("counter", "incr(5)", troupe::DEFAULT_ASK_TIMEOUT).await?;
//! # let _ = (actor, reply);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod actor;
pub mod control;
pub mod engine;
pub mod events;
pub mod fuzzing;
pub mod grants;
pub mod inspect;
pub mod manifest;
pub mod message;
pub mod protocol;
pub mod registry;
pub mod supervision;
mod sync;
pub mod system;
mod wit_syntax;

pub use actor::{ActorComponent, ActorInfo, ActorPolicy, ActorRef, ActorSpec, ActorStatus, RestartFrom, SpawnError};
pub use engine::{ActorLimits, BatchDelivery, EngineConfig, Failure, FailureKind};
pub use message::{Address, CallError, DEFAULT_ASK_TIMEOUT, NO_TIMEOUT};
pub use system::{ComponentEntry, Host, HostConfig, Starting};
