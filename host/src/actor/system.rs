//! What the actor layer needs from the host around it: the
//! [`ActorSystem`] port. The layer reaches other actors, spawns children,
//! tells supervisors and routes bindings only through it, so that nothing
//! in `actor/` imports the host: dependencies point down.

use std::future::Future;
use std::pin::Pin;

use wasmtime::component::Val;

use super::binding::{BindError, Binding, BindingSpec};
use super::remote::RemoteActors;
use super::{ActorRef, Failure, Snapshot, SpawnError, SpawnOptions};
use crate::events::EventBus;
use crate::message::{Address, CallError, DeadLetterReason};

/// A boxed, sendable future, as returned by the methods of
/// [`Journal`](super::durable::Journal) and of the host's side of the
/// actor layer.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How an incarnation ended, as reported to the actor's supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The actor stopped itself (`stop` on its own address).
    Normal,
    /// The actor failed.
    Failed(Failure),
}

/// What the actor layer needs from the host around it.
pub trait ActorSystem: Send + Sync + 'static {
    /// The actor at `address`, if it is running (or, for a key of a
    /// virtual component, once activated).
    fn lookup(&self, address: &str) -> Option<ActorRef>;

    /// [`ActorSystem::lookup`], saying why there is no actor.
    ///
    /// # Errors
    ///
    /// [`CallError::UnknownAddress`], [`CallError::InvalidKey`].
    fn find(&self, address: &str) -> Result<ActorRef, CallError>;

    /// Starts a child of `parent` from the component the host knows as
    /// `component`, and waits until it has started (its `init` returned).
    fn spawn_child<'a>(
        &'a self,
        parent: &'a ActorRef,
        component: &'a str,
        options: SpawnOptions,
    ) -> BoxFuture<'a, Result<ActorRef, SpawnError>>;

    /// Stops `target` for good through its supervisor (no restart), with
    /// its own children first.
    fn stop_actor(&self, target: &ActorRef);

    /// An incarnation of `actor` ended; its supervisor decides what next.
    fn child_down(&self, actor: &ActorRef, exit: Exit);

    /// `actor` started a new incarnation after being down; `from_snapshot`
    /// says whether it kept its state (and so knows its children).
    fn restarted(&self, actor: &ActorRef, from_snapshot: bool);

    /// Stops the children `actor` supervises, in reverse start order, and
    /// waits for them.
    fn stop_children<'a>(&'a self, actor: &'a ActorRef) -> BoxFuture<'a, ()>;

    /// Removes a stopped actor from the address space.
    fn unregister(&self, actor: &ActorRef);

    /// `actor` has just hibernated with `state`, its mailbox empty, and
    /// holds nothing its next activation would not find again (no links,
    /// no children, nothing unsent): if it is a key of a virtual component,
    /// it leaves the host now ([`ActorRef::passivate`]). Its address is
    /// free; its next message activates it anew from its committed state
    /// (durable) or from `state`, which the host keeps (in memory); and
    /// its next timer, if one is armed, activates it when due. Returns
    /// whether it left; if not, it sleeps on as it is.
    fn passivate(&self, actor: &ActorRef, state: &Snapshot) -> bool;

    /// Resolves once the host has started again every durable actor it
    /// had. A recovered actor handles its recovered tells only then, so
    /// that the actors they tell are there to take them.
    fn recovered(&self) -> BoxFuture<'_, ()>;

    /// The actors of other hosts, if this host is part of a cluster: where
    /// a tell or an ask goes when [`ActorSystem::find`] knows no actor at
    /// its address.
    fn remote(&self) -> Option<&dyn RemoteActors>;

    /// Records a message that will never be handled.
    fn dead_letter(&self, to: &Address, what: &str, reason: DeadLetterReason);

    /// Where lifecycle events go.
    fn events(&self) -> &EventBus;

    /// The actors a call through `binding` goes to (one, or every member
    /// for a broadcast), here or on other hosts of the cluster; `key` is
    /// the value a `hash-on` router hashes.
    ///
    /// # Errors
    ///
    /// A sentence saying why there is no target.
    fn route(&self, binding: &Binding, key: Option<&Val>) -> Result<Vec<Routed>, String>;

    /// Binds `actor`'s imported `interface` to `spec`, type-checked.
    ///
    /// # Errors
    ///
    /// A [`BindError`] naming the problem.
    fn bind(&self, actor: &ActorRef, interface: &str, spec: BindingSpec) -> Result<(), BindError>;
}

/// Where a call through a binding goes.
#[derive(Clone)]
pub enum Routed {
    /// To an actor of this host.
    Here(ActorRef),
    /// To the actor at this address on another host of the cluster (a
    /// member of a group there).
    There(Address),
}
