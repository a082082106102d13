//! Warm instances: a few instances of a hot template, instantiated ahead
//! of need, so that an actor started from it (a key of a virtual
//! component, as it activates) takes one ready and only runs its `init`
//! or `restore`.
//!
//! Instantiation is most of what starting an actor costs: a store, the
//! instance's slot opened and its memory image mapped, page faults on its
//! first writes. A template whose policy asks for
//! [`warm_instances`](super::ActorPolicy::warm_instances) gets a pool of
//! that many, filled off the message path: each instantiation that takes
//! one (or finds none) starts a task that makes another, and the actor
//! goes on without waiting for it. Nothing is made before the template's
//! first start, so a template that is never used costs nothing.
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

/// The warm instances of one template.
struct Pool {
    ready: Vec<Incarnation>,
    /// Instantiations started and not finished.
    filling: u32,
    /// The handle the instances are made with, until an actor takes one.
    stand_in: ActorRef,
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
        let want = if self.crowded.load(Ordering::Relaxed) { 0 } else { want };
        let group = spec.group.clone()?;
        let key = (group, component.hash);
        let (taken, missing, stand_in) = {
            let mut pools = self.pools.lock();
            let pool = pools.entry(key.clone()).or_insert_with(|| Pool {
                ready: Vec::new(),
                filling: 0,
                stand_in: ActorRef::create(&stand_in_spec(spec, component, &key.0), None, false).0,
            });
            let taken = pool.ready.pop();
            let missing = want.saturating_sub(pool.ready.len() as u32 + pool.filling);
            pool.filling += missing;
            (taken, missing, pool.stand_in.clone())
        };
        for _ in 0..missing {
            let spec = stand_in_spec(spec, component, &key.0);
            let (key, stand_in) = (key.clone(), stand_in.clone());
            let (system, resources) = (system.clone(), resources.clone());
            tokio::spawn(async move {
                let made = Incarnation::instantiate_warm(&spec, &spec.component, &stand_in, &system, &resources).await;
                resources.warm.filled(key, made.ok());
            });
        }
        taken
    }

    /// An instantiation for `key` ended, with an instance or without one
    /// (the pool was full, say: it is tried again at the next take).
    fn filled(&self, key: PoolKey, made: Option<Incarnation>) {
        let mut pools = self.pools.lock();
        if let Some(pool) = pools.get_mut(&key) {
            pool.filling = pool.filling.saturating_sub(1);
            if !self.closed.load(Ordering::Acquire) {
                pool.ready.extend(made);
            }
        }
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
