//! The address space of a host: which actor answers to which address, and
//! in which order actors started (the host stops them in reverse).

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::actor::ActorRef;
use crate::message::Address;

struct Entry {
    actor: ActorRef,
    seq: u64,
}

/// Address → actor. Lookups take a shared lock; registration is rare.
#[derive(Default)]
pub struct Registry {
    actors: RwLock<HashMap<Address, Entry>>,
    seq: AtomicU64,
}

impl Registry {
    /// Claims `actor`'s address.
    ///
    /// # Errors
    ///
    /// Hands the actor back if its address is taken.
    pub fn insert(&self, actor: ActorRef) -> Result<(), ActorRef> {
        let mut actors = self.actors.write().unwrap_or_else(|e| e.into_inner());
        if actors.contains_key(actor.address()) {
            return Err(actor);
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        actors.insert(actor.address().clone(), Entry { actor, seq });
        Ok(())
    }

    /// The actor at `address`.
    pub fn get(&self, address: &str) -> Option<ActorRef> {
        let actors = self.actors.read().unwrap_or_else(|e| e.into_inner());
        actors.get(address).map(|e| e.actor.clone())
    }

    /// Releases `actor`'s address, if it still holds it.
    pub fn remove(&self, actor: &ActorRef) -> bool {
        let mut actors = self.actors.write().unwrap_or_else(|e| e.into_inner());
        match actors.get(actor.address()) {
            Some(e) if e.actor.same(actor) => {
                actors.remove(actor.address());
                true
            }
            _ => false,
        }
    }

    /// Number of registered actors.
    pub fn len(&self) -> usize {
        self.actors.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Is the address space empty?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every actor, in start order.
    pub fn all(&self) -> Vec<ActorRef> {
        let actors = self.actors.read().unwrap_or_else(|e| e.into_inner());
        let mut entries: Vec<(u64, ActorRef)> = actors.values().map(|e| (e.seq, e.actor.clone())).collect();
        entries.sort_by_key(|(seq, _)| *seq);
        entries.into_iter().map(|(_, a)| a).collect()
    }
}
