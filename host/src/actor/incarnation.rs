//! One incarnation of an actor: a `Store`, the component instance in it,
//! and the calls into it, each under a fresh CPU budget.
//!
//! # CPU budget and fair slicing
//!
//! The epoch ticker advances the engine's epoch every tick (1 ms by
//! default). Before each call the store's deadline is armed one tick ahead
//! and `ticks_left` is set to the message's budget. Each time the guest
//! crosses a tick the callback either spends one tick and *yields* to tokio
//! (so a busy actor shares its worker thread with the others), or, with the
//! budget spent, interrupts the guest. Time the guest spends suspended in a
//! host call (an ask) crosses at most one tick check, so waiting is nearly
//! free. A fuel budget, when set, is refilled before each call as well.
//!
//! A message that runs past [`THROTTLE_AFTER_TICKS`] is long-running: after
//! each further tick it sleeps [`THROTTLE_PAUSE_TICKS`] ticks, so a runaway
//! takes at most a fifth of a thread while it burns its budget.

use std::sync::Arc;

use wasmtime::component::{Func, TypedFunc, Val};
use wasmtime::{Store, UpdateDeadline};

use super::component::ActorComponent;
use super::data::{ActorData, Run, Wasi};
use super::host_api::{Snapshot, WitDown};
use super::resources::Resources;
use super::{ActorRef, ActorSpec, ActorSystem, DownNotice, Failure, FailureKind};
use crate::batch::{Dispatch, Lowered};
use crate::message::Address;
use crate::protocol::Call;

/// Ticks (milliseconds, by default) a message may run at full speed. Past
/// them it is a *long-running* message.
pub const THROTTLE_AFTER_TICKS: u64 = 10;

/// After each further tick a long-running message pauses this many ticks,
/// so that a runaway (or merely heavy) actor takes at most a fifth of a
/// thread from the actors sharing it. Its CPU budget is not charged for the
/// pauses.
pub const THROTTLE_PAUSE_TICKS: u32 = 4;

type InitFunc = TypedFunc<(Vec<(String, String)>,), (Result<(), String>,)>;
type SnapshotFunc = TypedFunc<(), (Snapshot,)>;
type RestoreFunc = TypedFunc<(Snapshot,), (Result<(), String>,)>;
type StopFunc = TypedFunc<(), ()>;
type DownFunc = TypedFunc<(WitDown,), ()>;

/// A live instance of an actor's component.
///
/// Boxed: the actor's task holds an `Option<Incarnation>` whether awake or
/// hibernating, and a pointer costs a sleeping actor less than the parts.
pub(crate) struct Incarnation(Box<Parts>);

/// What an incarnation holds.
pub(crate) struct Parts {
    store: Store<ActorData>,
    /// Protocol functions, in protocol order, with their result arity.
    funcs: Vec<(Func, usize)>,
    /// The batch entry points (see [`crate::batch`]).
    batch: Dispatch,
    init: Option<InitFunc>,
    snapshot: Option<SnapshotFunc>,
    restore: Option<RestoreFunc>,
    stop: Option<StopFunc>,
    down: Option<DownFunc>,
    deadline_ticks: u64,
    shutdown_ticks: u64,
    fuel: Option<u64>,
    /// Memory in use and peak as last published to the actor's stats:
    /// most messages change neither, and publishing costs two atomic
    /// writes to a line that `troupe ps` readers share.
    published_memory: (u64, u64),
}

impl std::ops::Deref for Incarnation {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl std::ops::DerefMut for Incarnation {
    fn deref_mut(&mut self) -> &mut Parts {
        &mut self.0
    }
}

/// Why one attempt to instantiate failed.
enum Attempt {
    /// Every instance slot is taken; another attempt may find one free.
    PoolFull(Failure),
    /// Anything else: trying again would fail again.
    Failed(Failure),
}

impl From<Failure> for Attempt {
    fn from(failure: Failure) -> Self {
        Attempt::Failed(failure)
    }
}

/// How many times a full instance pool is asked to free a slot for one
/// instantiation.
const SLOT_ATTEMPTS: usize = 3;

impl Incarnation {
    /// Instantiates the actor's current component in a new store. If every
    /// instance slot is taken, the host puts a long-idle actor to sleep
    /// (see [`Slots`](super::Slots)) and it tries again.
    pub async fn instantiate(
        spec: &ActorSpec,
        component: &ActorComponent,
        me: &ActorRef,
        system: &Arc<dyn ActorSystem>,
        resources: &Resources,
    ) -> Result<Self, Failure> {
        let mut attempts = 1;
        loop {
            match Self::instantiate_once(spec, component, me, system, resources).await {
                Ok(inc) => return Ok(inc),
                Err(Attempt::PoolFull(failure)) => {
                    if attempts == SLOT_ATTEMPTS || !resources.slots.free_one(me.address()).await {
                        return Err(failure);
                    }
                    attempts += 1;
                }
                Err(Attempt::Failed(failure)) => return Err(failure),
            }
        }
    }

    async fn instantiate_once(
        spec: &ActorSpec,
        component: &ActorComponent,
        me: &ActorRef,
        system: &Arc<dyn ActorSystem>,
        resources: &Resources,
    ) -> Result<Self, Attempt> {
        let loader = &resources.loader;
        let kind = spec.engine_kind();
        let compiled =
            component.compiled(loader, kind).map_err(|e| Failure::new(FailureKind::Instantiate, e.to_string()))?;
        let engine =
            loader.engine().wasmtime(kind).map_err(|e| Failure::new(FailureKind::Instantiate, e.to_string()))?;
        let grants = &spec.policy.grants;
        let wasi = if grants.need_wasi_ctx_up_front() {
            Wasi::ready(
                grants.wasi_ctx(me.address()).map_err(|e| Failure::new(FailureKind::Instantiate, e.to_string()))?,
            )
        } else {
            Wasi::deferred(grants.stdio, grants.clocks)
        };
        let data = ActorData {
            wasi,
            table: Default::default(),
            limiter: spec.policy.limits.limiter(),
            me: me.clone(),
            system: system.clone(),
            ticks_left: 0,
            ticks_used: 0,
            log_budget: Default::default(),
            waiting: None,
            run: Default::default(),
        };
        let mut store = Store::new(engine, data);
        store.limiter(|d| &mut d.limiter);
        let tick = loader.engine().config().get_epoch_tick();
        store.epoch_deadline_callback(move |mut cx| {
            let data = cx.data_mut();
            if data.ticks_left == 0 {
                return Ok(UpdateDeadline::Interrupt);
            }
            data.ticks_left -= 1;
            data.ticks_used += 1;
            if data.ticks_used <= THROTTLE_AFTER_TICKS {
                return Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())));
            }
            // A long-running message: cede most of the thread to others.
            let pause = tick * THROTTLE_PAUSE_TICKS;
            Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::time::sleep(pause))))
        });
        let mut inc = Incarnation(Box::new(Parts {
            store,
            funcs: Vec::new(),
            // Bound to the instance once there is one.
            batch: Dispatch::unbound(&compiled.batch),
            init: None,
            snapshot: None,
            restore: None,
            stop: None,
            down: None,
            deadline_ticks: loader.engine().ticks(spec.policy.limits.deadline),
            shutdown_ticks: loader.engine().ticks(spec.policy.shutdown),
            fuel: spec.policy.limits.fuel,
            published_memory: (0, 0),
        }));
        inc.arm(None);
        let instance = compiled.pre.instantiate_async(&mut inc.store).await.map_err(|e| {
            if let Some(full) = e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
                return Attempt::PoolFull(Failure::new(
                    FailureKind::Instantiate,
                    format!(
                        "{full}: every instance slot is taken by an awake actor, and none was idle \
                         and able to hibernate; raise the pool (`troupe run --max-instances` or \
                         `--max-actors`), stop actors, or let idle ones hibernate (`hibernate-after-ms`)"
                    ),
                ));
            }
            let failure = Failure::from_wasm_error(&e);
            Attempt::Failed(if failure.kind == FailureKind::HostCall {
                Failure { kind: FailureKind::Instantiate, ..failure }
            } else {
                failure.during(FailureKind::Instantiate)
            })
        })?;
        let missing = |what: &str| Failure::new(FailureKind::Instantiate, format!("export `{what}` vanished"));
        for (index, f) in compiled.exports.funcs.iter().zip(component.protocol().functions()) {
            let func = instance.get_func(&mut inc.store, index).ok_or_else(|| missing(&f.name))?;
            inc.funcs.push((func, usize::from(f.result.is_some())));
        }
        inc.batch = Dispatch::new(&compiled.batch, &instance, &mut inc.store);
        let lifecycle = &compiled.exports.lifecycle;
        let typed = |e: wasmtime::Error| Failure::new(FailureKind::Instantiate, format!("{e:#}"));
        if let Some(index) = &lifecycle.init {
            inc.init = Some(instance.get_typed_func(&mut inc.store, index).map_err(typed)?);
        }
        if let Some(index) = &lifecycle.stop {
            inc.stop = Some(instance.get_typed_func(&mut inc.store, index).map_err(typed)?);
        }
        if let Some(index) = &lifecycle.down {
            inc.down = Some(instance.get_typed_func(&mut inc.store, index).map_err(typed)?);
        }
        if let (Some(snap), Some(rest)) = (&lifecycle.snapshot, &lifecycle.restore) {
            inc.snapshot = Some(instance.get_typed_func(&mut inc.store, snap).map_err(typed)?);
            inc.restore = Some(instance.get_typed_func(&mut inc.store, rest).map_err(typed)?);
        }
        inc.settle(me);
        Ok(inc)
    }

    /// Does the component export `snapshot` and `restore`?
    pub fn persistent(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Arms the CPU budget for one call.
    fn arm(&mut self, waiting: Option<Arc<[Address]>>) {
        self.arm_with(self.deadline_ticks, waiting);
    }

    fn arm_with(&mut self, ticks: u64, waiting: Option<Arc<[Address]>>) {
        let data = self.store.data_mut();
        data.ticks_left = ticks;
        data.ticks_used = 0;
        data.waiting = waiting;
        self.store.set_epoch_deadline(1);
        if let Some(fuel) = self.fuel {
            // Cannot fail: fuel is enabled on the metered engine this store
            // was created on whenever `self.fuel` is set.
            let _ = self.store.set_fuel(fuel);
        }
    }

    /// Accounts for the call just made: fuel burnt, memory in use.
    fn settle(&mut self, me: &ActorRef) {
        if let Some(budget) = self.fuel {
            let left = self.store.get_fuel().unwrap_or(0);
            let earlier = std::mem::take(&mut self.store.data_mut().run.fuel_spent);
            me.stats().add_fuel(budget.saturating_sub(left) + earlier);
        }
        let limiter = &self.store.data().limiter;
        let memory = (limiter.used(), limiter.peak());
        if memory != self.published_memory {
            self.published_memory = memory;
            me.stats().set_memory(memory.0, memory.1);
        }
    }

    /// Calls `init(config)`, if exported.
    pub async fn init(&mut self, me: &ActorRef, config: &[(String, String)]) -> Result<(), Failure> {
        let Some(init) = self.init else {
            return Ok(());
        };
        self.arm(None);
        let result = init.call_async(&mut self.store, (config.to_vec(),)).await;
        self.settle(me);
        match result {
            Ok((Ok(()),)) => Ok(()),
            Ok((Err(msg),)) => Err(Failure::new(FailureKind::Init, msg)),
            Err(e) => Err(Failure::from_wasm_error(&e).during(FailureKind::Init)),
        }
    }

    /// Calls `restore(state)`. The caller checks [`Self::persistent`].
    pub async fn restore(&mut self, me: &ActorRef, state: &Snapshot) -> Result<(), Failure> {
        let Some(restore) = self.restore else {
            return Err(Failure::new(FailureKind::Restore, "the component does not export `restore`"));
        };
        self.arm(None);
        let result = restore.call_async(&mut self.store, (state.clone(),)).await;
        self.settle(me);
        match result {
            Ok((Ok(()),)) => Ok(()),
            Ok((Err(msg),)) => Err(Failure::new(FailureKind::Restore, msg)),
            Err(e) => Err(Failure::from_wasm_error(&e).during(FailureKind::Restore)),
        }
    }

    /// Calls `snapshot()`, if exported.
    pub async fn snapshot(&mut self, me: &ActorRef) -> Result<Option<Snapshot>, Failure> {
        let Some(snapshot) = self.snapshot else {
            return Ok(None);
        };
        self.arm(None);
        let result = snapshot.call_async(&mut self.store, ()).await;
        self.settle(me);
        match result {
            Ok((state,)) => Ok(Some(state)),
            Err(e) => Err(Failure::from_wasm_error(&e)),
        }
    }

    /// Calls `shutdown.stop()`, if exported, within the grace period.
    /// Its failure only ends the shutdown early.
    pub async fn shutdown(&mut self, me: &ActorRef) -> Result<(), Failure> {
        let Some(stop) = self.stop else { return Ok(()) };
        self.arm_with(self.shutdown_ticks, None);
        let result = stop.call_async(&mut self.store, ()).await;
        self.settle(me);
        result.map_err(|e| Failure::from_wasm_error(&e))
    }

    /// Delivers a `down` notice to `watcher.down`, if exported.
    pub async fn down(&mut self, me: &ActorRef, notice: &DownNotice) -> Result<(), Failure> {
        let Some(down) = self.down else { return Ok(()) };
        self.arm(None);
        let result = down.call_async(&mut self.store, (WitDown::from(notice),)).await;
        self.settle(me);
        result.map_err(|e| Failure::from_wasm_error(&e))
    }

    /// Handles one message.
    pub async fn handle(
        &mut self,
        me: &ActorRef,
        call: &Call,
        waiting: Option<Arc<[Address]>>,
    ) -> Result<Option<Val>, Failure> {
        if let Some((entry, args, result)) = self.batch.typed_call(call) {
            self.arm(waiting);
            let outcome = entry.call_async(&mut self.store, args).await;
            self.settle(me);
            return match outcome {
                Ok((raw,)) => {
                    me.stats().typed_call();
                    Ok(result.lift(raw))
                }
                Err(e) => Err(Failure::from_wasm_error(&e)),
            };
        }
        let (func, arity) = self.funcs[call.func as usize];
        let mut results = [Val::Bool(false)];
        self.arm(waiting);
        let outcome = func.call_async(&mut self.store, &call.args, &mut results[..arity]).await;
        self.settle(me);
        match outcome {
            Ok(()) => Ok((arity == 1).then(|| std::mem::replace(&mut results[0], Val::Bool(false)))),
            Err(e) => Err(Failure::from_wasm_error(&e)),
        }
    }

    /// The batch entry points of this incarnation.
    pub fn batch(&self) -> &Dispatch {
        &self.batch
    }

    /// Delivers a run of tells in one call of a batch entry point, as
    /// [`Dispatch::lower`] laid it out. Returns how many were handled: the
    /// call ends early when a control request waits. On failure, says how
    /// many had started: the last of them is the one that failed.
    pub async fn handle_run(&mut self, me: &ActorRef, run: &Lowered) -> Result<usize, (usize, Failure)> {
        self.arm(None);
        let messages = run.messages();
        let started = Run { messages, started: 0, ticks: self.deadline_ticks, fuel: self.fuel, fuel_spent: 0 };
        self.store.data_mut().run = started;
        let outcome = run.entry().call_async(&mut self.store, run.args(), &mut []).await;
        self.settle(me);
        let started = std::mem::take(&mut self.store.data_mut().run).started as usize;
        match outcome {
            Ok(()) => Ok(started),
            Err(e) => Err((started, Failure::from_wasm_error(&e))),
        }
    }
}
