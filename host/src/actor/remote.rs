//! Actors on other hosts: the [`RemoteActors`] port, through which a tell
//! or an ask to an address this host does not have goes to the host that
//! has it (`crate::cluster` implements it over NATS).
//!
//! The port takes the message as its sender wrote it. Its implementation
//! type-checks it against the receiver's protocol before anything leaves
//! the host, so that a remote receiver refuses what a local one would
//! refuse, with the same [`CallError`]s: an ill-typed message names the
//! expected signature, a full mailbox is an error to the sender, an ask
//! times out, and an ask that would wait on itself across hosts is a
//! cycle.

use std::sync::Arc;
use std::time::Duration;

use super::durable::Origin;
use super::system::BoxFuture;
use crate::message::{Address, CallError, Reply};

/// Actors on other hosts, as the actor layer reaches them.
pub trait RemoteActors: Send + Sync + 'static {
    /// Tells `message` (WAVE, `func(args)`) to the actor at `to` on another
    /// host, and waits until that host has queued it (for a durable
    /// receiver, committed it). A durable sender's courier gives the
    /// tell's `origin`, by which a durable receiver drops a tell it took
    /// already (see [`crate::actor::durable`]).
    ///
    /// # Errors
    ///
    /// [`CallError::UnknownAddress`] if no host has `to`; otherwise what a
    /// local tell would return.
    fn tell<'a>(
        &'a self,
        to: &'a str,
        message: &'a str,
        from: Option<&'a Address>,
        origin: Option<Origin>,
    ) -> BoxFuture<'a, Result<(), CallError>>;

    /// Asks `message` of the actor at `to` on another host and waits for
    /// the reply, at most `timeout`. `waiting` is the sender's ask chain,
    /// checked for cycles on the receiving host.
    ///
    /// # Errors
    ///
    /// As [`RemoteActors::tell`], and what a local ask returns.
    fn ask<'a>(
        &'a self,
        to: &'a str,
        message: &'a str,
        from: Option<&'a Address>,
        waiting: Option<Arc<[Address]>>,
        timeout: Duration,
    ) -> BoxFuture<'a, Reply>;
}
