//! Supervision: OTP-style trees of supervisors that restart failed actors.
//!
//! # Principles
//!
//! A *supervisor* watches an ordered list of *children*: actors and other
//! supervisors. When a child goes down, the supervisor decides, from the
//! child's restart type and its own strategy, which children to restart;
//! counts the restarts against its intensity; delays each restart by an
//! exponential backoff; and, when restarts come too fast, gives up: it
//! stops its children and fails itself, escalating to its own supervisor.
//!
//! Supervisors are host-side nodes: they run no wasm and have no mailbox.
//! Every host has a *root* supervisor; manifest entries and `troupe spawn`
//! start children under it unless they name another supervisor. An actor
//! that spawns children is their supervisor (a node owned by that actor is
//! created on its first spawn) unless the spawn names another one.
//!
//! # Terms
//!
//! * **Exit**: how a child went down. *Normal*: the actor stopped itself
//!   (`stop` on its own address). *Abnormal*: any [`Failure`] — a trap (out
//!   of fuel, deadline, memory limit, stack overflow, panic, other), `init`
//!   or `restore` failing, a refused host call, a linked actor failing, or a
//!   child supervisor escalating. Being stopped by the operator or by an
//!   ancestor (`troupe stop`, `stop(child)`) is not an exit: it is a
//!   *termination*, and nobody restarts a terminated child.
//! * **Restart**: a new incarnation of the same child at the same address.
//!   An actor keeps its mailbox: messages queued while it is down are
//!   handled by the new incarnation, in order, exactly once. The message
//!   that failed is reported to its sender and counted as a dead letter; it
//!   is never retried (replaying non-idempotent work is a named pitfall).
//!   The new incarnation starts fresh (`init`) or from the last snapshot,
//!   per the child's [`RestartFrom`](crate::RestartFrom).
//!
//! # Restart types
//!
//! | restart type | normal exit | abnormal exit |
//! |---|---|---|
//! | [`Permanent`](RestartType::Permanent) (default) | restart | restart |
//! | [`Transient`](RestartType::Transient) | stop | restart |
//! | [`Temporary`](RestartType::Temporary) | stop | stop |
//!
//! # Strategies
//!
//! | strategy | when child C goes down and is to be restarted |
//! |---|---|
//! | [`OneForOne`](Strategy::OneForOne) (default) | restart C only |
//! | [`OneForAll`](Strategy::OneForAll) | terminate every other child in reverse start order, then restart all in start order |
//! | [`RestForOne`](Strategy::RestForOne) | terminate the children started after C in reverse order, then restart C and them in start order |
//! | [`Pool`](Strategy::Pool) | like one-for-one, for a dynamic set of identical children started from one component (OTP's `simple_one_for_one`) |
//!
//! A child that is not to be restarted (by its restart type) is removed;
//! its siblings are untouched, whatever the strategy.
//!
//! # Intensity
//!
//! A supervisor allows at most `intensity` restarts within any `period`
//! ([`Intensity`], default **5 restarts in 10 s**, between OTP's 1-in-5 s
//! and kameo's 5-in-5 s: with backoff absorbing bursts, a handful of
//! restarts tells a transient fault from a persistent one). One more restart
//! than that and the supervisor *escalates*: it terminates all its children
//! in reverse start order and goes down abnormally itself, so its own
//! supervisor applies *its* policy to the whole subtree. Total restarts
//! before the root gives up multiply along the tree: a child three levels
//! down may be restarted up to the product of the three intensities.
//!
//! At the root, an escalation stops that top-level subtree for good and the
//! host keeps running the rest ([`RootPolicy::KeepRunning`], the default),
//! or shuts the whole host down ([`RootPolicy::Shutdown`]).
//!
//! # Backoff
//!
//! The first restart of a child is immediate: an isolated fault costs
//! microseconds. Each further consecutive restart waits twice as long as the
//! last, from `min` (default 50 ms) up to `max` (default 5 s), scaled by a
//! random factor in `1 ± jitter` (default 0.2) so that siblings do not
//! restart in lock-step. After `reset-after` (default 10 s) of healthy
//! running the count starts over. A crash loop therefore costs little CPU
//! and few log lines. While a child waits, its mailbox keeps accepting
//! messages up to its capacity.
//!
//! # Shutdown
//!
//! Stopping a supervisor stops its children in reverse start order. Each
//! actor finishes the message it is handling, then, if it exports
//! `troupe:actor/shutdown`, has `stop()` called within its grace period
//! (`shutdown-ms`, default 5000 ms), after which it is dropped.
//! Messages still queued become dead letters; pending asks get `stopped`.
//!
//! # Monitors and links
//!
//! See [`crate::actor`]: an actor can monitor another (it receives a typed
//! `down` notice when the other goes down, and again when it is gone for
//! good) and link to another (when either fails, the other fails too,
//! unless it exports `troupe:actor/watcher`, in which case it receives a
//! `down` notice instead — Erlang's `trap_exit`).
//!
//! [`Failure`]: crate::Failure

mod policy;

pub use policy::{
    Backoff, BackoffState, DEFAULT_BACKOFF_MAX, DEFAULT_BACKOFF_MIN, DEFAULT_INTENSITY, DEFAULT_JITTER, DEFAULT_PERIOD,
    DEFAULT_RESET_AFTER, Intensity, IntensityCheck, PolicyError, RestartLog, RestartType, RootPolicy, Strategy,
    SupervisorSpec, restart_decision,
};
