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
//!
//! Monitors and links reach across hosts through the same port: the
//! watching host asks the watched actor's host to tell it when the actor
//! goes down ([`RemoteActors::watch`]), and that host sends the notice
//! back ([`RemoteActors::down`]). The cluster tells the watchers of a
//! lost host's actors itself, with a `host-lost` failure.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::cell::DownNotice;
use super::durable::Origin;
use super::system::BoxFuture;
use crate::message::{Address, CallError, Reply};

/// A watch of an actor on another host: a monitor, or one end of a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteWatch {
    /// The watching actor (for a link, the actor that linked).
    pub watcher: Address,
    /// The watch's id, unique on the watcher's host: a monitor's id.
    pub id: u64,
    /// A link (failures propagate) rather than a monitor.
    pub link: bool,
}

/// Where a watched actor turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// On host `node`, which now tells the watcher when it goes down.
    On(String),
    /// On this host after all (a key of a virtual component that this
    /// host has just claimed): watch it here.
    Here,
}

/// A `down` notice for an actor of another host, from the host of the
/// actor that went down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteDown {
    /// The actor watching (or linked to) the one that went down.
    pub to: Address,
    /// The watch, as the watcher's host numbered it.
    pub id: u64,
    /// Whether the watch is a link: a failure fails `to` (unless it
    /// exports `watcher`).
    pub link: bool,
    /// What went down, and why.
    pub notice: DownNotice,
    /// For a failure along links, the actors it went through already.
    pub chain: Vec<Address>,
}

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

    /// Watches the actor at `target`, on another host, for `watch`: from
    /// then on that host tells the watcher when the actor goes down.
    ///
    /// # Errors
    ///
    /// [`CallError::UnknownAddress`] if no host has `target`; otherwise
    /// why its host could not be reached.
    fn watch<'a>(&'a self, target: &'a str, watch: RemoteWatch) -> BoxFuture<'a, Result<Watched, CallError>>;

    /// Ends `watch` of `target`, on another host; false if no host knew
    /// it (or the host did not answer).
    fn unwatch<'a>(&'a self, target: &'a str, watch: RemoteWatch) -> BoxFuture<'a, bool>;

    /// Sends `down` to host `node`, on its way: a notice is not waited
    /// for, as a local one is not.
    fn down(&self, node: &str, down: RemoteDown);

    /// The members of `group` on other hosts, and a number that changes
    /// whenever the membership of any group does (for routers' caches).
    fn group_elsewhere(&self, group: &str) -> (u64, Vec<Address>);
}
