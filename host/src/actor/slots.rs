//! Instance slots: when every slot of the engine's pool is taken, the
//! awake actor that has been idle longest (among those that can
//! hibernate) is put to sleep to free one, as Orleans collects idle
//! activations. Every actor of a host shares one [`Slots`]; a cell enters
//! and leaves it as its phase changes (see `cell/mod.rs`), and an
//! incarnation that finds the pool full asks it for a slot.
//!
//! The set holds only awake actors that can hibernate (at most one per
//! instance slot), so finding a candidate does not grow with the number of
//! sleeping actors.

use std::collections::HashMap;
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

/// The awake actors that can hibernate.
#[derive(Default)]
pub struct Slots {
    awake: Mutex<HashMap<Address, ActorRef>>,
}

impl Slots {
    /// `actor` is awake and holds a slot (`true`), or not (`false`).
    pub(crate) fn set_awake(&self, actor: &ActorRef, awake: bool) {
        let mut set = self.awake.lock();
        if awake {
            set.insert(actor.address().clone(), actor.clone());
        } else {
            set.remove(actor.address());
        }
    }

    /// Puts the awake actor idle longest, other than `asking`, to sleep.
    /// Resolves to whether a slot was freed. A candidate may have got busy
    /// since it was stamped idle; it then refuses, and the next is asked.
    pub(crate) async fn free_one(&self, asking: &Address) -> bool {
        let mut refused = Vec::new();
        while refused.len() < EVICTION_CANDIDATES {
            let Some(actor) = self.longest_idle(asking, &refused) else { return false };
            if actor.hibernate_now(EVICTION_PATIENCE).await {
                debug!(evicted = %actor.address(), for_ = %asking, "put to sleep for an instance slot");
                return true;
            }
            refused.push(actor.address().clone());
        }
        false
    }

    /// Of the awake actors that can hibernate, the one idle longest, other
    /// than `except` and those in `refused`.
    fn longest_idle(&self, except: &Address, refused: &[Address]) -> Option<ActorRef> {
        let awake = self.awake.lock();
        awake
            .values()
            .filter(|a| a.address() != except && !refused.contains(a.address()))
            .filter_map(|a| a.idle_since().map(|since| (since, a)))
            .min_by_key(|(since, _)| *since)
            .map(|(_, a)| a.clone())
    }
}
