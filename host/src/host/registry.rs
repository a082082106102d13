//! The address space of a host: which actor answers to which address, and
//! in which order actors started (the host stops them in reverse).

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::actor::ActorRef;
use crate::message::Address;
use crate::metrics::Tally;
use crate::sync::{Mutex, RwLock};

/// A registered actor and its place in start order.
struct Registered {
    actor: ActorRef,
    seq: u64,
}

/// Address → actor, and group → members. Lookups take a shared lock;
/// registration is rare by comparison. A group's members are kept by
/// start order, so that one leaves a group of thousands (the keys of a
/// virtual component) without the others moving.
#[derive(Default)]
pub(crate) struct Registry {
    actors: RwLock<HashMap<Address, Registered>>,
    groups: RwLock<HashMap<String, BTreeMap<u64, ActorRef>>>,
    seq: AtomicU64,
    /// Bumped whenever a group's membership changes (for routing caches).
    membership: AtomicU64,
    /// What the metrics keep of the actors that came and went: counted as
    /// their addresses are claimed and released, under the same lock, so
    /// that a scrape ([`Registry::read_with_tally`]) sees each actor's counters
    /// exactly once, live or departed.
    tally: Mutex<Tally>,
    /// Told of every change, in order (see [`Registry::observe`]).
    observer: OnceLock<AddressObserver>,
}

/// A change to a host's address space.
#[derive(Debug, Clone, Copy)]
pub enum AddressChange<'a> {
    /// The actor took its address.
    Registered(&'a ActorRef),
    /// The actor gave its address back.
    Unregistered(&'a ActorRef),
}

/// What [`Host::observe_addresses`](crate::host::Host::observe_addresses) calls. It runs under the registry's lock, so
/// that it sees changes in the order they happened: it must be quick and
/// must not touch the host (hand the change to a task).
pub type AddressObserver = Box<dyn Fn(AddressChange<'_>) + Send + Sync>;

impl Registry {
    /// Claims `actor`'s address.
    ///
    /// # Errors
    ///
    /// Hands the actor back if its address is taken.
    pub fn insert(&self, actor: ActorRef) -> Result<(), ActorRef> {
        let mut actors = self.actors.write();
        if actors.contains_key(actor.address()) {
            return Err(actor);
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        if let Some(group) = actor.group() {
            self.groups.write().entry(group.to_string()).or_default().insert(seq, actor.clone());
            self.membership.fetch_add(1, Ordering::Release);
        }
        self.tally.lock().arrived(&actor);
        if let Some(observe) = self.observer.get() {
            observe(AddressChange::Registered(&actor));
        }
        actors.insert(actor.address().clone(), Registered { actor, seq });
        Ok(())
    }

    /// Has `observer` told of every later registration and release, in
    /// order, and returns the actors registered before (in start order),
    /// which it is not told of. Once per registry: `false` if one
    /// observes already.
    pub fn observe(&self, observer: AddressObserver) -> Option<Vec<ActorRef>> {
        // Under the write lock: no change slips between the list and the
        // first call.
        let actors = self.actors.write();
        self.observer.set(observer).ok()?;
        let mut entries: Vec<(u64, ActorRef)> = actors.values().map(|e| (e.seq, e.actor.clone())).collect();
        entries.sort_by_key(|(seq, _)| *seq);
        Some(entries.into_iter().map(|(_, a)| a).collect())
    }

    /// The actor at `address`.
    pub fn get(&self, address: &str) -> Option<ActorRef> {
        let actors = self.actors.read();
        actors.get(address).map(|e| e.actor.clone())
    }

    /// Releases `actor`'s address, if it still holds it.
    pub fn remove(&self, actor: &ActorRef) -> bool {
        let mut actors = self.actors.write();
        match actors.get(actor.address()) {
            Some(e) if e.actor.same(actor) => {
                let seq = e.seq;
                actors.remove(actor.address());
                self.tally.lock().departed(actor);
                if let Some(group) = actor.group() {
                    let mut groups = self.groups.write();
                    if let Some(members) = groups.get_mut(group) {
                        members.remove(&seq);
                        if members.is_empty() {
                            groups.remove(group);
                        }
                    }
                    self.membership.fetch_add(1, Ordering::Release);
                }
                if let Some(observe) = self.observer.get() {
                    observe(AddressChange::Unregistered(actor));
                }
                true
            }
            _ => false,
        }
    }

    /// The members of `group`, in start order.
    pub fn group(&self, group: &str) -> Vec<ActorRef> {
        self.groups.read().get(group).map(|members| members.values().cloned().collect()).unwrap_or_default()
    }

    /// A number that changes whenever any group's membership does.
    pub fn membership(&self) -> u64 {
        self.membership.load(Ordering::Acquire)
    }

    /// Number of registered actors.
    pub fn len(&self) -> usize {
        self.actors.read().len()
    }

    /// Runs `f` on every actor (in no order) and the tally of those that
    /// left, as of one moment: no actor arrives or leaves meanwhile.
    pub fn read_with_tally<R>(&self, f: impl FnOnce(&mut dyn Iterator<Item = &ActorRef>, &Tally) -> R) -> R {
        let actors = self.actors.read();
        let tally = self.tally.lock();
        f(&mut actors.values().map(|e| &e.actor), &tally)
    }

    /// Every actor, in start order.
    pub fn all(&self) -> Vec<ActorRef> {
        let actors = self.actors.read();
        let mut entries: Vec<(u64, ActorRef)> = actors.values().map(|e| (e.seq, e.actor.clone())).collect();
        entries.sort_by_key(|(seq, _)| *seq);
        entries.into_iter().map(|(_, a)| a).collect()
    }
}
