//! The actor layer: an actor's handle ([`ActorRef`]), its bounded mailbox,
//! its incarnations (one wasmtime `Store` each), the cell that runs them,
//! and the `troupe:actor/host` API its guest may import.
//!
//! # The model
//!
//! An actor is a *cell* that outlives its incarnations. The cell owns the
//! mailbox and the address; an incarnation owns a `Store` and the component
//! instance in it. Messages are handled one at a time, each under a fresh
//! budget. When a call leaves wasm with an error (a trap, fuel or deadline
//! exhausted, the memory limit), the store is poisoned — wasmtime refuses
//! every later call into it — so the cell drops that incarnation, reports
//! the failure (to the asker, to the log, as a dead letter) and goes
//! *down*. What happens next is not the cell's decision: its supervisor
//! (see [`crate::supervision`]) restarts it after a delay, fresh or from
//! its last snapshot, or stops it. While it is down its mailbox keeps
//! accepting messages; the next incarnation handles them in order.
//!
//! The cell is an explicit state machine: one phase at a time
//! (starting, running, on probation after a hot swap, hibernating, down,
//! restarting, stopping, stopped), one table saying what each signal does
//! in each phase, and one transition point that also publishes the
//! [`ActorStatus`] `troupe ps` shows. See `cell/phase.rs`.
//!
//! # Where things live
//!
//! * `actor_ref.rs` — the handle and the shared half of an actor;
//! * `control.rs` — requests handled between messages (supervisor
//!   directives, link signals, swaps), and the methods that send them;
//! * `cell/` — the run loop and one file per concern: delivering
//!   messages, batch delivery, lifecycle, hot swap, hibernation,
//!   snapshots, a durable actor's commits, links and monitors;
//! * `incarnation.rs` — one `Store` and the calls into it;
//! * `component.rs` and `exports.rs` — compiling and linking actor code,
//!   and where a compiled component's exports are;
//! * `host_api.rs` and `data.rs` — what guests may call, and the data each
//!   store carries;
//! * `binding.rs` — typed calls through imported interfaces;
//! * `remote.rs` — the port to actors on other hosts;
//! * `http_port.rs` — the port outbound HTTP requests leave through
//!   (`wasi:http`), which `crate::outbound` implements;
//! * `queue.rs` — the mailbox;
//! * `spec.rs`, `limits.rs`, `failure.rs`, `status.rs`, `spawn.rs` — the
//!   plain data an actor is started with and reports;
//! * `message.rs` — addresses, envelopes and the errors of tell and ask;
//!   `events.rs` — lifecycle events; `grants.rs` — the sandbox: what an
//!   actor may reach, and the WASI context that enforces it;
//! * `durable.rs` — durable actors: the setting, and the journal port
//!   the store implements; `tape.rs` — the host-call results a durable
//!   actor's journal records and a replay plays back; `courier.rs` — the
//!   task that delivers a durable actor's committed outbox;
//! * `timers.rs` — `send-after` timers, durable ones included;
//! * `budget.rs` — a message's deadline and fair slicing;
//!   `slots.rs` and `resources.rs` — what all actors share.
//!
//! The layer reaches the rest of the host (other actors, spawning,
//! supervisors, routing) only through the `ActorSystem` trait, which
//! the host implements: dependencies point down.

mod actor_ref;
pub mod binding;
mod budget;
mod cell;
mod component;
pub mod configured;
mod control;
mod courier;
mod data;
pub mod durable;
pub mod events;
mod exports;
mod failure;
pub mod grants;
mod host_api;
pub mod http_port;
pub mod http_serve;
mod incarnation;
mod limits;
pub mod message;
mod queue;
pub mod remote;
mod resources;
mod slots;
mod spawn;
mod spec;
mod status;
mod system;
mod tape;
mod timers;
mod warm;

pub use actor_ref::ActorRef;
pub(crate) use actor_ref::DurableStart;
pub(crate) use actor_ref::Inbox;
pub(crate) use cell::swap::SwappedCode;
pub use cell::{
    CodeVersion, DEFAULT_PROBATION, DownNotice, DownReason, StateTransfer, SwapError, SwapOptions, SwapReport,
};
pub(crate) use cell::{Committed, start};
pub(crate) use component::Loader;
pub use component::{ActorComponent, LoadError};
pub use failure::{Failure, FailureKind};
pub use host_api::{MAX_LOG_BYTES, MAX_TIMER_DELAY, Snapshot};
pub use limits::{
    ActorLimits, DEFAULT_DEADLINE, DEFAULT_MAILBOX, DEFAULT_MAX_CHILDREN, DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_TIMERS, DEFAULT_MEMORY_BYTES, DEFAULT_TABLE_ELEMENTS, LimitsError, MAX_DEADLINE, MAX_MAILBOX,
};
pub(crate) use resources::Resources;
pub(crate) use slots::Slots;
pub use spawn::{SpawnError, SpawnOptions};
pub use spec::{ActorPolicy, ActorSpec, DEFAULT_SHUTDOWN, DEFAULT_SNAPSHOT_JOURNAL_BYTES, RestartFrom};
pub use status::{ActorInfo, ActorStatus};
pub(crate) use status::{ActorStats, Tallies};
pub(crate) use system::{ActorSystem, Exit};
pub use system::{BoxFuture, Routed};
