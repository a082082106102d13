//! Warm instances: a few instances of a hot template, instantiated ahead
//! of need, so that an actor started from it (a key of a virtual
//! component, as it activates) takes one ready and only runs its `init`
//! or `restore`.
//!
//! Instantiation is most of what starting an actor costs: a store, the
//! instance's slot opened and its memory image mapped, page faults on its
//! first writes. A template whose policy asks for
//! [`warm_instances`](super::ActorPolicy::warm_instances) gets a pool of
//! that many, filled off the message path by a warmer task of its own.
//! The warmer tops the pool up on a timer tick while instances are being
//! taken, and stops once none was taken for [`IDLE_TICKS`] ticks: an
//! activation only takes an instance and goes on. Waking a task from the
//! message path would cost the activation a wake-up of a parked worker
//! thread (a system call and an interrupt), where a timer's expiry wakes
//! that worker by itself; only the first take after a quiet spell starts
//! the warmer. Nothing is made before the template's first start, so a
//! template that is never used costs nothing.
//!
//! A warm instance has run no guest code, so it is the same as a fresh
//! one whichever actor takes it: it was made for the template with a
//! stand-in handle, and taking it gives it the actor's own
//! ([`Incarnation::adopt`]). Templates that must open directories or copy
//! variables into their WASI context up front (granted `dirs` or `env`)
//! are never kept warm: that context names the actor.
//!
//! Warm instances hold instance slots. When every slot is taken, an
//! instantiation that needs one drops a warm instance before it asks an
//! idle actor to hibernate (see [`Slots`](super::Slots)), and no more are
//! made until an instantiation finds a slot free again: they would take
//! the slots actors free for one another.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::debug;

use super::incarnation::Incarnation;
use super::{ActorComponent, ActorRef, ActorSpec, ActorSystem, Resources};
use crate::message::Address;
use crate::sync::Mutex;

/// The warm instances of every template that keeps some.
#[derive(Default)]
pub struct WarmInstances {
    pools: Mutex<HashMap<PoolKey, Pool>>,
    /// An instantiation found every slot taken, and none since found one
    /// free at once: warm instances would take the slots actors free for
    /// one another, so none are made.
    crowded: AtomicBool,
    /// The host is stopping: none are kept or made.
    closed: AtomicBool,
}

/// Instances are kept per template (its group) and per code: after a hot
/// swap, the new code has a pool of its own.
type PoolKey = (String, blake3::Hash);

/// How often a running warmer tops its pool up.
const REFILL_TICK: Duration = Duration::from_millis(1);

/// Ticks without a take after which a warmer stops.
const IDLE_TICKS: u32 = 100;

/// The warm instances of one template.
struct Pool {
    ready: Vec<Incarnation>,
    /// The handle the instances are made with, until an actor takes one.
    stand_in: ActorRef,
    warmer: Warmer,
    /// Instances taken since the warmer last looked.
    taken_since_tick: u32,
}

/// Whether a pool's warmer task runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Warmer {
    Stopped,
    Running,
}

impl WarmInstances {
    /// A warm instance of `component` for an actor started from `spec`,
    /// if its template keeps some and one is ready; the pool is refilled
    /// in the background either way.
    pub(crate) fn take(
        &self,
        spec: &ActorSpec,
        component: &Arc<ActorComponent>,
        system: &Arc<dyn ActorSystem>,
        resources: &Arc<Resources>,
    ) -> Option<Incarnation> {
        let want = spec.policy.warm_instances;
        if want == 0 || spec.policy.grants.need_wasi_ctx_up_front() {
            return None;
        }
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let group = spec.group.clone()?;
        let key = (group, component.hash);
        let (taken, start_warmer) = {
            let mut pools = self.pools.lock();
            let pool = pools.entry(key.clone()).or_insert_with(|| Pool {
                ready: Vec::new(),
                stand_in: ActorRef::create(&stand_in_spec(spec, component, &key.0), None, false).0,
                warmer: Warmer::Stopped,
                taken_since_tick: 0,
            });
            let taken = pool.ready.pop();
            pool.taken_since_tick += 1;
            let start = pool.warmer == Warmer::Stopped;
            pool.warmer = Warmer::Running;
            (taken, start.then(|| pool.stand_in.clone()))
        };
        if let Some(stand_in) = start_warmer {
            let spec = stand_in_spec(spec, component, &key.0);
            tokio::spawn(keep_warm(key, spec, stand_in, system.clone(), resources.clone()));
        }
        taken
    }

    /// How many instances the pool `key` lacks (none while instance slots
    /// are crowded or the host is stopping); `None` once it is gone.
    fn missing(&self, key: &PoolKey, want: u32) -> Option<usize> {
        let pools = self.pools.lock();
        let pool = pools.get(key)?;
        let want = if self.crowded.load(Ordering::Relaxed) || self.closed.load(Ordering::Acquire) { 0 } else { want };
        Some((want as usize).saturating_sub(pool.ready.len()))
    }

    /// Adds `made` to the pool `key`, unless the host is stopping.
    fn add(&self, key: &PoolKey, made: Incarnation) {
        let mut pools = self.pools.lock();
        if let Some(pool) = pools.get_mut(key)
            && !self.closed.load(Ordering::Acquire)
        {
            pool.ready.push(made);
        }
    }

    /// A tick of the warmer of `key`, `idle` ticks without a take so far:
    /// the idle count after it, or `None` if the warmer stops (idle long
    /// enough, or the pool is gone).
    fn tick(&self, key: &PoolKey, idle: u32) -> Option<u32> {
        let mut pools = self.pools.lock();
        let pool = pools.get_mut(key)?;
        let idle = if pool.taken_since_tick == 0 { idle + 1 } else { 0 };
        pool.taken_since_tick = 0;
        if idle >= IDLE_TICKS || self.closed.load(Ordering::Acquire) {
            pool.warmer = Warmer::Stopped;
            return None;
        }
        Some(idle)
    }

    /// Drops every warm instance and makes no more: the host stops. A warm
    /// instance's store holds the host (its host calls need it), so the
    /// instances must go for the host to be freed.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let pools = std::mem::take(&mut *self.pools.lock());
        drop(pools);
    }

    /// Notes whether the instance slots are `crowded`: an instantiation
    /// just found them all taken, or found one free at once.
    pub(crate) fn set_crowded(&self, crowded: bool) {
        if self.crowded.load(Ordering::Relaxed) != crowded {
            self.crowded.store(crowded, Ordering::Relaxed);
        }
    }

    /// Drops one warm instance, if any, to free its slot: an
    /// instantiation found every slot taken. Returns whether it did.
    pub(crate) fn release_one(&self) -> bool {
        let released = {
            let mut pools = self.pools.lock();
            pools.values_mut().find_map(|pool| pool.ready.pop())
        };
        if released.is_some() {
            debug!("a warm instance dropped to free its slot");
        }
        released.is_some()
    }
}

/// The warmer of the pool `key`: tops it up to `spec`'s
/// `warm-instances` every [`REFILL_TICK`] until it is idle.
async fn keep_warm(
    key: PoolKey,
    spec: ActorSpec,
    stand_in: ActorRef,
    system: Arc<dyn ActorSystem>,
    resources: Arc<Resources>,
) {
    let warm = &resources.warm;
    let mut idle = 0;
    loop {
        let missing = warm.missing(&key, spec.policy.warm_instances).unwrap_or(0);
        for _ in 0..missing {
            match Incarnation::instantiate_warm(&spec, &spec.component, &stand_in, &system, &resources).await {
                Ok(made) => warm.add(&key, made),
                // The pool was full, say: tried again at the next tick.
                Err(_) => break,
            }
        }
        tokio::time::sleep(REFILL_TICK).await;
        match warm.tick(&key, idle) {
            Some(still) => idle = still,
            None => return,
        }
    }
}

/// The spec warm instances of a template are made with: the template's,
/// under a stand-in address no actor has.
fn stand_in_spec(spec: &ActorSpec, component: &Arc<ActorComponent>, group: &str) -> ActorSpec {
    ActorSpec {
        address: Address::from(format!("{group}/(warm)").as_str()),
        component: component.clone(),
        policy: spec.policy.clone(),
        parent: None,
        group: spec.group.clone(),
    }
}
