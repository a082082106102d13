//! Where the keys of virtual components are active, in a cluster: the
//! [`Placement`] port, implemented by `crate::cluster`.
//!
//! Without a cluster, a host activates any key it is asked for. In a
//! cluster, one host in all may have a key at a time: a host activates a
//! key only while it holds the key's claim, which the cluster layer wins
//! for it before it sends the key a message (or learns that another host
//! holds it, and sends the message there). A key in memory keeps its
//! claim while it is passivated, since its state stays with this host's
//! entry; the claim goes back when the key leaves the host with nothing of
//! it left here (it failed, was stopped for good, or its state is in the
//! store).
//!
//! Durable keys commit to the store the placement names
//! ([`Placement::journal`]), which every host of the cluster reaches, so
//! that a key activates on any host with what it committed on another.

use std::sync::Arc;

use crate::actor::BoxFuture;
use crate::actor::durable::Journal;

/// The claims this host holds on virtual keys.
pub trait Placement: Send + Sync + 'static {
    /// Whether this host holds the claim on the key at `address`, and so
    /// may activate it.
    fn holds(&self, address: &str) -> bool;

    /// The key at `address` left this host, and nothing of it stays here:
    /// its claim goes back, so that the next message activates it on
    /// whichever host it reaches first.
    fn release(&self, address: &str);

    /// Where durable keys commit: a store every host reaches. `None`:
    /// there is none, and durable virtual components are refused.
    fn journal(&self) -> Option<Arc<dyn Journal>>;

    /// Claims `address` for an actor one host of the cluster runs at a
    /// time (a durable named actor, see `singletons.rs`): whether this host
    /// holds it now (it was free, its holder is gone, or it is this
    /// host's), after which it [`holds`](Placement::holds) it and commits
    /// it to [`journal`](Placement::journal).
    fn claim<'a>(&'a self, address: &'a str) -> BoxFuture<'a, Result<bool, String>>;
}
