//! One incarnation of an actor: a `Store`, the component instance in it,
//! and the calls into it, each under a fresh deadline.
//!
//! # Deadlines and fair slicing
//!
//! Before each call the store's epoch deadline is armed one tick ahead and
//! the message's [`Budget`] starts its clock. Each time the guest crosses a
//! tick, the budget decides: yield to tokio (so a busy actor shares its
//! worker thread), pause (a long-running message cedes most of the thread),
//! or, past the deadline, interrupt the guest. Time the guest spends
//! suspended in a host call (an ask) crosses at most one tick check and is
//! not charged. A fuel budget, when set, is refilled before each call as
//! well. See `budget.rs` for the rules.
//!
//! If a call fails, what the guest wrote to stderr during it (a panic's
//! message, an uncaught exception) goes into the [`Failure`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Func, TypedFunc, Val};
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;

use super::budget::{Budget, Tick};
use super::component::ActorComponent;
use super::data::{ActorData, Effects, Http, Run, Wasi};
use super::host_api::{Snapshot, WitDown};
use super::resources::Resources;
use super::tape::Tape;
use super::{ActorRef, ActorSpec, ActorSystem, DownNotice, Failure, FailureKind};
use crate::actor::durable::{Origin, Recorded};
use crate::batch::{Dispatch, Lowered};
use crate::grants::StderrTail;
use crate::message::Address;
use crate::protocol::Call;

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
    /// How long a message may take.
    deadline: Duration,
    /// How long the `shutdown.stop` hook may take.
    shutdown: Duration,
    fuel: Option<u64>,
    /// It was made ahead, for a template's warm pool.
    warm: bool,
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

/// How long an instantiation that finds every instance slot taken goes on
/// freeing slots (an idle actor put to sleep each time) and trying again,
/// when others take the slots it frees: it fails when no slot can be
/// freed, or after this long.
const SLOT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

impl Incarnation {
    /// Instantiates the actor's current component in a new store. If every
    /// instance slot is taken, the host puts a long-idle actor to sleep
    /// (see [`Slots`](super::Slots)) and it tries again.
    ///
    /// A template that keeps warm instances hands one over instead, if one
    /// is ready (see [`super::warm`]); a full pool drops a warm instance
    /// before it puts an actor to sleep.
    pub async fn instantiate(
        spec: &ActorSpec,
        component: &Arc<ActorComponent>,
        me: &ActorRef,
        system: &Arc<dyn ActorSystem>,
        resources: &Arc<Resources>,
    ) -> Result<Self, Failure> {
        if let Some(mut warm) = resources.warm.take(spec, component, system, resources) {
            warm.adopt(spec, me);
            return Ok(warm);
        }
        let mut given_up = None;
        loop {
            match Self::instantiate_once(spec, component, me, system, resources).await {
                Ok(inc) => {
                    resources.warm.set_crowded(given_up.is_some());
                    return Ok(inc);
                }
                Err(Attempt::PoolFull(failure)) => {
                    resources.warm.set_crowded(true);
                    // Another instantiation may take the slot freed for
                    // this one: it tries again while slots are freed, for
                    // a while.
                    let deadline = *given_up.get_or_insert_with(|| std::time::Instant::now() + SLOT_PATIENCE);
                    if std::time::Instant::now() >= deadline
                        || !(resources.warm.release_one() || resources.slots.free_one(me.address()).await)
                    {
                        return Err(failure);
                    }
                }
                Err(Attempt::Failed(failure)) => return Err(failure),
            }
        }
    }

    /// An instance made ahead for a template's warm pool, with the
    /// template's `stand_in` handle: never at the price of putting an
    /// actor to sleep.
    pub(super) async fn instantiate_warm(
        spec: &ActorSpec,
        component: &ActorComponent,
        stand_in: &ActorRef,
        system: &Arc<dyn ActorSystem>,
        resources: &Resources,
    ) -> Result<Self, Failure> {
        Self::instantiate_once(spec, component, stand_in, system, resources).await.map_err(|attempt| match attempt {
            Attempt::PoolFull(failure) | Attempt::Failed(failure) => failure,
        })
    }

    /// A warm instance becomes `me`'s: its host calls act for `me`, its
    /// memory counts for `me`, and an actor that journals records from
    /// here.
    fn adopt(&mut self, spec: &ActorSpec, me: &ActorRef) {
        let data = self.store.data_mut();
        data.me = me.clone();
        data.tape = spec.policy.journals().then(Tape::default);
        self.warm = true;
        self.published_memory = (0, 0);
        self.settle(me);
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
        let mut stderr = StderrTail::default();
        let tape = spec.policy.journals().then(Tape::default);
        let wasi = if grants.need_wasi_ctx_up_front() {
            let ctx = grants
                .wasi_ctx_taped(me.address(), &mut stderr, tape.as_ref())
                .map_err(|e| Failure::new(FailureKind::Instantiate, e.to_string()))?;
            Wasi::ready(ctx)
        } else {
            Wasi::deferred(grants.stdio, grants.clocks)
        };
        let tick = loader.engine().config().get_epoch_tick();
        let data = ActorData {
            wasi,
            table: Default::default(),
            limiter: spec.policy.limits.limiter(),
            me: me.clone(),
            system: system.clone(),
            budget: Budget::new(tick),
            stderr,
            log_budget: Default::default(),
            waiting: None,
            run: Default::default(),
            effects: None,
            tape,
            http: Http::new(grants.http.clone()),
        };
        let mut store = Store::new(engine, data);
        store.limiter(|d| &mut d.limiter);
        if let Some(access) = &grants.http {
            store.data_mut().budget.set_ceiling(access.0.message_ceiling());
        }
        store.epoch_deadline_callback(|mut cx| {
            let data = cx.data_mut();
            let now = Instant::now();
            if let Some(waits) = data.http.waits() {
                // Waiting on responses is not running (see `http_port.rs`).
                data.budget.waited(waits.take_waited(now));
            }
            Ok(match data.budget.on_tick(now) {
                Tick::Yield => UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())),
                Tick::Pause(pause) => UpdateDeadline::YieldCustom(1, Box::pin(tokio::time::sleep(pause))),
                Tick::Interrupt => UpdateDeadline::Interrupt,
            })
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
            deadline: spec.policy.limits.deadline,
            shutdown: spec.policy.shutdown,
            fuel: spec.policy.limits.fuel,
            warm: false,
            published_memory: (0, 0),
        }));
        inc.arm(None);
        let instantiated = compiled.pre.instantiate_async(&mut inc.store).await;
        let instance = instantiated.map_err(|e| {
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
            let failure = inc.fault(&e);
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

    /// Classifies an error that left wasm, with what the guest wrote to
    /// stderr during the call.
    fn fault(&self, err: &wasmtime::Error) -> Failure {
        let mut failure = Failure::from_wasm_error(err);
        if failure.kind == FailureKind::Deadline
            && let Some(ceiling) = self.store.data().budget.ceiling_hit()
        {
            failure.detail = format!(
                "ran past its {} of {} ms per message (`http.message-ceiling-ms`; waits on outbound HTTP \
                 requests count)",
                super::budget::CEILING,
                ceiling.as_millis()
            );
        }
        failure.stderr = self.store.data().stderr.take();
        failure
    }

    /// Was it made ahead, warm (see [`super::warm`])?
    pub fn was_warm(&self) -> bool {
        self.warm
    }

    /// Does the component export `snapshot` and `restore`?
    pub fn persistent(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Arms the deadline (and fuel) for one call.
    fn arm(&mut self, waiting: Option<Arc<[Address]>>) {
        self.arm_with(self.deadline, waiting);
    }

    fn arm_with(&mut self, deadline: Duration, waiting: Option<Arc<[Address]>>) {
        let data = self.store.data_mut();
        data.budget.arm(deadline);
        data.http.message_started(data.budget.armed_at());
        data.stderr.clear();
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
            Err(e) => Err(self.fault(&e).during(FailureKind::Init)),
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
            Err(e) => Err(self.fault(&e).during(FailureKind::Restore)),
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
            Err(e) => Err(self.fault(&e)),
        }
    }

    /// Calls `shutdown.stop()`, if exported, within the grace period.
    /// Its failure only ends the shutdown early.
    pub async fn shutdown(&mut self, me: &ActorRef) -> Result<(), Failure> {
        let Some(stop) = self.stop else { return Ok(()) };
        self.arm_with(self.shutdown, None);
        let result = stop.call_async(&mut self.store, ()).await;
        self.settle(me);
        result.map_err(|e| self.fault(&e))
    }

    /// Delivers a `down` notice to `watcher.down`, if exported.
    pub async fn down(&mut self, me: &ActorRef, notice: &DownNotice) -> Result<(), Failure> {
        let Some(down) = self.down else { return Ok(()) };
        self.arm(None);
        let result = down.call_async(&mut self.store, (WitDown::from(notice),)).await;
        self.settle(me);
        result.map_err(|e| self.fault(&e))
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
                Err(e) => Err(self.fault(&e)),
            };
        }
        let (func, arity) = self.funcs[call.func as usize];
        let mut results = [Val::Bool(false)];
        self.arm(waiting);
        let outcome = func.call_async(&mut self.store, &call.args, &mut results[..arity]).await;
        self.settle(me);
        match outcome {
            Ok(()) => Ok((arity == 1).then(|| std::mem::replace(&mut results[0], Val::Bool(false)))),
            Err(e) => Err(self.fault(&e)),
        }
    }

    /// Handles an HTTP request: `call` names the component's
    /// `wasi:http/incoming-handler.handle`, called with the request and a
    /// response-outparam made in this store (see [`super::http_serve`]).
    pub async fn handle_http(
        &mut self,
        me: &ActorRef,
        call: &Call,
        exchange: Box<super::http_serve::HttpExchange>,
    ) -> Result<Option<Val>, Failure> {
        let exchange = *exchange;
        let (func, _) = self.funcs[call.func as usize];
        let host_call = |e: wasmtime::Error| Failure::new(FailureKind::HostCall, format!("{e:#}"));
        let mut http = self.store.data_mut().http();
        let scheme = wasmtime_wasi_http::p2::bindings::http::types::Scheme::Http;
        let request = http.new_incoming_request(scheme, exchange.request).map_err(host_call)?;
        let response = http.new_response_outparam(exchange.response).map_err(host_call)?;
        let request = request.try_into_resource_any(&mut self.store).map_err(host_call)?;
        let response = response.try_into_resource_any(&mut self.store).map_err(host_call)?;
        self.arm(None);
        let outcome =
            func.call_async(&mut self.store, &[Val::Resource(request), Val::Resource(response)], &mut []).await;
        self.settle(me);
        outcome.map(|()| None).map_err(|e| self.fault(&e))
    }

    /// What the host calls of the message just handled returned, for its
    /// journal entry (nothing, for an actor that does not journal).
    pub fn take_recorded(&mut self) -> Vec<Recorded> {
        self.store.data().tape.as_ref().map(Tape::take).unwrap_or_default()
    }

    /// Runs `call` again as the journal recorded it: its host calls return
    /// what `recorded` says and have no effect; its result goes nowhere.
    /// `Err` if it failed, or took another path than the first time.
    pub async fn replay(&mut self, me: &ActorRef, call: &Call, recorded: Vec<Recorded>) -> Result<(), Failure> {
        let Some(tape) = self.store.data().tape.clone() else {
            return Err(Failure::new(FailureKind::HostCall, "an actor that does not journal replays nothing"));
        };
        tape.replay(recorded);
        let handled = self.handle(me, call, None).await;
        let ended = tape.end_replay();
        handled?;
        ended.map_err(|why| Failure::new(FailureKind::HostCall, format!("the replay diverged: {why}")))
    }

    /// Keeps what the guest does from now on beyond its state for the
    /// commit of the message it handles (a durable actor), its effects
    /// numbered after `last` at watermark `seq`, until
    /// [`Incarnation::take_effects`].
    pub fn collect_effects(&mut self, seq: u64, last: Option<Origin>) {
        self.store.data_mut().effects = Some(Effects::new(seq, last));
    }

    /// What the guest did since [`Incarnation::collect_effects`]; its
    /// next tells are sent at once again.
    pub fn take_effects(&mut self) -> Option<Effects> {
        self.store.data_mut().effects.take()
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
        let started = Run { messages, started: 0, deadline: self.deadline, fuel: self.fuel, fuel_spent: 0 };
        self.store.data_mut().run = started;
        let outcome = run.entry().call_async(&mut self.store, run.args(), &mut []).await;
        self.settle(me);
        let started = std::mem::take(&mut self.store.data_mut().run).started as usize;
        match outcome {
            Ok(()) => Ok(started),
            Err(e) => Err((started, self.fault(&e))),
        }
    }
}
