//! Instance slots: when every slot of the engine's pool is taken, an
//! awake actor idle for long (among those that can hibernate) is put to
//! sleep to free one, as Orleans collects idle activations. Every actor of
//! a host shares one [`Slots`]; a cell enters and leaves it as its phase
//! changes (see `cell/mod.rs`), and an incarnation that finds the pool full
//! asks it for a slot.
//!
//! The set holds only awake actors that can hibernate (at most one per
//! instance slot). Which one goes is chosen as Redis chooses what to
//! evict: the one idle longest among a few picked at random
//! ([`SAMPLE`]), so that choosing costs the same with ten awake actors or
//! ten thousand; with as few as the sample, it is the one idle longest of
//! all. Each candidate is asked by one instantiation at a time, so that
//! instantiations that find the pool full together free a slot each.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tracing::debug;

use super::ActorRef;
use crate::message::Address;
use crate::sync::Mutex;

/// How many idle actors a full instance pool asks to hibernate, one after
/// the other, before it gives up.
const EVICTION_CANDIDATES: usize = 3;

/// How long a candidate may take to fall asleep before the next is asked.
const EVICTION_PATIENCE: Duration = Duration::from_secs(1);

/// How many awake actors are looked at to choose one to put to sleep.
const SAMPLE: usize = 16;

/// The awake actors that can hibernate.
#[derive(Default)]
pub struct Slots {
    awake: Mutex<Awake>,
}

/// The awake actors (a vector, to pick from at random, and where each is
/// in it), and those being asked to sleep now.
#[derive(Default)]
struct Awake {
    actors: Vec<ActorRef>,
    places: HashMap<Address, usize>,
    asked: HashSet<Address>,
    /// The state of the generator the samples are picked with.
    seed: u64,
}

impl Slots {
    /// `actor` is awake and holds a slot (`true`), or not (`false`).
    pub(crate) fn set_awake(&self, actor: &ActorRef, awake: bool) {
        let mut set = self.awake.lock();
        let Awake { actors, places, .. } = &mut *set;
        match (awake, places.get(actor.address()).copied()) {
            (true, None) => {
                places.insert(actor.address().clone(), actors.len());
                actors.push(actor.clone());
            }
            (true, Some(place)) => actors[place] = actor.clone(),
            (false, Some(place)) => {
                places.remove(actor.address());
                actors.swap_remove(place);
                if let Some(moved) = actors.get(place) {
                    places.insert(moved.address().clone(), place);
                }
            }
            (false, None) => {}
        }
    }

    /// Puts an awake actor idle for long, other than `asking`, to sleep.
    /// Resolves to whether a slot was freed. A candidate may have got busy
    /// since it was stamped idle; it then refuses, and the next is asked.
    pub(crate) async fn free_one(&self, asking: &Address) -> bool {
        let mut refused = Vec::new();
        while refused.len() < EVICTION_CANDIDATES {
            let Some(actor) = self.longest_idle(asking, &refused) else { return false };
            let slept = actor.hibernate_now(EVICTION_PATIENCE).await;
            self.awake.lock().asked.remove(actor.address());
            if slept {
                debug!(evicted = %actor.address(), for_ = %asking, "put to sleep for an instance slot");
                return true;
            }
            refused.push(actor.address().clone());
        }
        false
    }

    /// Of [`SAMPLE`] awake actors picked at random (all of them if there
    /// are no more), the one idle longest, other than `except`, those in
    /// `refused` and those another instantiation is asking; noted as asked.
    /// If none of the sample is idle, every awake actor is looked at.
    fn longest_idle(&self, except: &Address, refused: &[Address]) -> Option<ActorRef> {
        let mut awake = self.awake.lock();
        let Awake { actors, asked, seed, .. } = &mut *awake;
        let eligible =
            |a: &&ActorRef| a.address() != except && !refused.contains(a.address()) && !asked.contains(a.address());
        let oldest = |candidates: &mut dyn Iterator<Item = &ActorRef>| {
            candidates
                .filter(eligible)
                .filter_map(|a| a.idle_since().map(|since| (since, a)))
                .min_by_key(|(since, _)| *since)
                .map(|(_, a)| a.clone())
        };
        let chosen = if actors.len() <= SAMPLE {
            oldest(&mut actors.iter())
        } else {
            let picks: Vec<usize> = (0..SAMPLE).map(|_| next_random(seed) as usize % actors.len()).collect();
            oldest(&mut picks.iter().map(|&i| &actors[i])).or_else(|| oldest(&mut actors.iter()))
        }?;
        asked.insert(chosen.address().clone());
        Some(chosen)
    }
}

/// The next number of a xorshift generator: spread enough to sample with,
/// and free of any lock or system call.
fn next_random(state: &mut u64) -> u64 {
    let mut x = if *state == 0 { 0x9E37_79B9_7F4A_7C15 } else { *state };
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}
