//! [`Host`]: the actor system a `troupe run` process hosts, and the public
//! API the control plane (and embedders, and the tests) drive.
//!
//! A host owns the engine, the loaded components, the address space, the
//! supervision tree and the event bus. It implements [`ActorSystem`],
//! through which actors reach each other, and `SupervisorHost`, through
//! which supervisors reach the rest.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, oneshot, watch};
use tracing::{debug, error, info, warn};
use wasmtime::component::Val;

use crate::actor::binding::{BindError, Binding, BindingSpec, BindingTarget, HashRing, Router, interface_key};
use crate::actor::{
    self, ActorComponent, ActorInfo, ActorPolicy, ActorRef, ActorSpec, ActorSystem, BoxFuture, Control, Exit,
    LoadError, Loader, SpawnError, SpawnOptions, SwapError, SwapOptions, SwapReport, SwapRequest,
};
use crate::engine::{Engine, EngineConfig, EngineError, EngineKind, Failure};
use crate::events::{Event, EventBus};
use crate::message::{Address, CallError, DeadLetterReason};
use crate::registry::Registry;
use crate::supervision::node::{ChildRef, NodeKind, SupervisorHost};
use crate::supervision::{RootPolicy, Strategy, SupervisorRef, SupervisorSpec, TreeNode};

/// The root supervisor's address.
pub const ROOT: &str = "root";

/// A component under a name, with the policy for actors started from it:
/// what a manifest `[components.NAME]` or `[actors.NAME]` entry defines, and
/// what a guest's `spawn("NAME", ..)` starts.
#[derive(Debug, Clone)]
pub struct ComponentEntry {
    /// The code.
    pub component: Arc<ActorComponent>,
    /// How its actors behave.
    pub policy: ActorPolicy,
}

impl ComponentEntry {
    /// An entry with default policy.
    pub fn new(component: Arc<ActorComponent>) -> Self {
        Self { component, policy: ActorPolicy::default() }
    }

    /// The spec of an actor at `address` started from this entry.
    pub fn spec(&self, address: Address) -> ActorSpec {
        ActorSpec { address, component: self.component.clone(), policy: self.policy.clone(), parent: None, group: None }
    }
}

/// Host-wide policy.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// Engine policy (pool size, memory ceiling, epoch tick, cache).
    pub engine: EngineConfig,
    /// The root supervisor's policy for top-level actors and supervisors.
    pub root: SupervisorSpec,
    /// What happens when the root gives up on a top-level child.
    pub root_policy: RootPolicy,
    /// Most actors, awake or hibernating; by default the engine's instance
    /// pool size, since every awake actor holds an instance. Hibernating
    /// actors hold none, so with `hibernate-after` a host can run more
    /// actors than it has instance slots.
    pub max_actors: Option<usize>,
}

/// Why a supervisor could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    /// The name is taken by an actor or a supervisor.
    #[error("the address `{0}` is already taken")]
    NameTaken(Address),
    /// The name is invalid.
    #[error("invalid supervisor name: {0}")]
    InvalidName(String),
    /// The parent does not exist.
    #[error("no supervisor named `{0}`; `troupe tree` lists them")]
    UnknownParent(String),
    /// The policy is invalid.
    #[error("invalid supervisor policy: {0}")]
    Policy(String),
}

struct HostInner {
    loader: Arc<Loader>,
    registry: Registry,
    components: RwLock<HashMap<String, ComponentEntry>>,
    loaded: RwLock<HashMap<blake3::Hash, Weak<ActorComponent>>>,
    events: EventBus,
    root: OnceLock<SupervisorRef>,
    /// Named supervisors (and the root), by address.
    supervisors: RwLock<HashMap<Address, SupervisorRef>>,
    /// The supervisor of each child, actor or supervisor.
    parent_of: RwLock<HashMap<Address, SupervisorRef>>,
    /// The supervisor of each actor's own children.
    owned: RwLock<HashMap<Address, SupervisorRef>>,
    /// Hash rings of groups, with the membership they were built for.
    rings: Mutex<HashMap<String, (u64, Arc<HashRing>)>>,
    dead_letters: AtomicU64,
    child_names: AtomicU64,
    shutting_down: AtomicBool,
    /// Awake actors that can hibernate: who a full instance pool may put
    /// to sleep.
    awake: Mutex<HashMap<Address, ActorRef>>,
    root_policy: RootPolicy,
    gave_up: watch::Sender<Option<String>>,
    max_actors: usize,
    me: Weak<HostInner>,
}

/// An actor that [`Host::start`] created and that is starting.
#[derive(Debug)]
pub struct Starting {
    actor: ActorRef,
    started: tokio::sync::oneshot::Receiver<Result<(), crate::engine::Failure>>,
}

impl Starting {
    /// The actor. It takes messages already.
    pub fn actor(&self) -> &ActorRef {
        &self.actor
    }

    /// Waits until the actor has started: its first instance is up and its
    /// `init` has returned.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Start`] if the instance or `init` failed (the actor is
    /// then gone), [`SpawnError::ShuttingDown`] if the host stopped first.
    pub async fn started(self) -> Result<ActorRef, SpawnError> {
        match self.started.await {
            Ok(Ok(())) => Ok(self.actor),
            Ok(Err(failure)) => {
                self.actor.stopped().await;
                Err(SpawnError::Start { address: self.actor.address().clone(), failure })
            }
            Err(_) => Err(SpawnError::ShuttingDown),
        }
    }
}

/// A troupe host. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Host {
    /// Builds a host: the engine, its pool and its epoch ticker, and the
    /// root supervisor. Must be called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`EngineError`] if the engine configuration is rejected.
    pub fn new(config: HostConfig) -> Result<Host, EngineError> {
        let engine = config.engine.build()?;
        let max_actors = config.max_actors.unwrap_or(engine.config().get_max_instances() as usize);
        Ok(Self::build(engine, config.root, config.root_policy, max_actors))
    }

    /// A host over an existing engine.
    pub fn with_engine(engine: Engine, root: SupervisorSpec, root_policy: RootPolicy) -> Host {
        let max_actors = engine.config().get_max_instances() as usize;
        Self::build(engine, root, root_policy, max_actors)
    }

    fn build(engine: Engine, root: SupervisorSpec, root_policy: RootPolicy, max_actors: usize) -> Host {
        let (gave_up, _) = watch::channel(None);
        let inner = Arc::new_cyclic(|me| HostInner {
            loader: Arc::new(Loader::new(engine)),
            registry: Registry::default(),
            components: RwLock::new(HashMap::new()),
            loaded: RwLock::new(HashMap::new()),
            events: EventBus::default(),
            root: OnceLock::new(),
            supervisors: RwLock::new(HashMap::new()),
            parent_of: RwLock::new(HashMap::new()),
            owned: RwLock::new(HashMap::new()),
            rings: Mutex::new(HashMap::new()),
            dead_letters: AtomicU64::new(0),
            child_names: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            awake: Mutex::new(HashMap::new()),
            root_policy,
            gave_up,
            max_actors,
            me: me.clone(),
        });
        tokio::spawn(keep_a_timer_pending(Arc::downgrade(&inner)));
        let node = SupervisorRef::start(ROOT.into(), NodeKind::Root(root_policy), root, inner.clone());
        write(&inner.supervisors).insert(ROOT.into(), node.clone());
        let _ = inner.root.set(node);
        Host { inner }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        self.inner.loader.engine()
    }

    /// Loads the component at `path`, reusing an already loaded one with
    /// the same content.
    ///
    /// # Errors
    ///
    /// A [`LoadError`] naming the file and the problem.
    pub fn load(&self, name: &str, path: &Path, version: Option<String>) -> Result<Arc<ActorComponent>, LoadError> {
        let bytes = std::fs::read(path).map_err(|error| LoadError::Io { path: path.display().to_string(), error })?;
        self.load_bytes(name, &path.display().to_string(), bytes, version)
    }

    /// Loads a component from bytes; `source` names it in errors.
    ///
    /// # Errors
    ///
    /// A [`LoadError`] naming the component and the problem.
    pub fn load_bytes(
        &self,
        name: &str,
        source: &str,
        bytes: Vec<u8>,
        version: Option<String>,
    ) -> Result<Arc<ActorComponent>, LoadError> {
        let hash = blake3::hash(&bytes);
        let existing = read(&self.inner.loaded).get(&hash).and_then(Weak::upgrade);
        if let Some(c) = existing
            && c.name == name
            && c.version == version
        {
            return Ok(c);
        }
        let component = Arc::new(self.inner.loader.load(name, source, bytes, version)?);
        write(&self.inner.loaded).insert(hash, Arc::downgrade(&component));
        Ok(component)
    }

    /// Makes `entry` spawnable under `name` (by guests and manifests).
    pub fn define(&self, name: &str, entry: ComponentEntry) {
        write(&self.inner.components).insert(name.to_string(), entry);
    }

    /// The component entry named `name`.
    pub fn entry(&self, name: &str) -> Option<ComponentEntry> {
        read(&self.inner.components).get(name).cloned()
    }

    /// Starts an actor under the root supervisor and waits until it has
    /// started.
    ///
    /// # Errors
    ///
    /// A [`SpawnError`]: address taken or invalid, invalid limits or grants,
    /// the host full, or the actor's start (`init`) failed.
    pub async fn spawn(&self, spec: ActorSpec) -> Result<ActorRef, SpawnError> {
        self.spawn_under(spec, None).await
    }

    /// Starts an actor under the root supervisor without waiting for it:
    /// its address takes messages at once (they queue while its `init`
    /// runs), like Erlang's `spawn` or kameo's `spawn`, where
    /// [`Host::spawn`] is `gen_server:start_link`. Many actors started this
    /// way instantiate in parallel on the runtime's threads.
    ///
    /// If its start then fails, nobody is told but [`Starting::started`]
    /// (if awaited), the log, and the `stopped` event, which carries the
    /// reason; messages queued meanwhile are answered `stopped`.
    ///
    /// # Errors
    ///
    /// As [`Host::spawn`], except for the start's own failure.
    pub fn start(&self, spec: ActorSpec) -> Result<Starting, SpawnError> {
        self.start_under(spec, None)
    }

    /// [`Host::start`] under the named supervisor (the root if `None`).
    ///
    /// # Errors
    ///
    /// As [`Host::start`], and [`SpawnError::UnknownSupervisor`].
    pub fn start_under(&self, spec: ActorSpec, supervisor: Option<&str>) -> Result<Starting, SpawnError> {
        let node = self.inner.supervisor(supervisor.unwrap_or(ROOT))?;
        self.inner.start(spec, &node)
    }

    /// Starts an actor under the named supervisor (the root if `None`).
    ///
    /// # Errors
    ///
    /// As [`Host::spawn`], and [`SpawnError::UnknownSupervisor`].
    pub async fn spawn_under(&self, spec: ActorSpec, supervisor: Option<&str>) -> Result<ActorRef, SpawnError> {
        let node = self.inner.supervisor(supervisor.unwrap_or(ROOT))?;
        self.inner.spawn(spec, &node).await
    }

    /// Creates a supervisor named `name` under `parent` (the root if `None`).
    ///
    /// # Errors
    ///
    /// [`SuperviseError`]: name taken or invalid, unknown parent, bad policy.
    pub fn supervise(
        &self,
        name: &str,
        spec: SupervisorSpec,
        parent: Option<&str>,
    ) -> Result<SupervisorRef, SuperviseError> {
        Address::validate(name).map_err(SuperviseError::InvalidName)?;
        spec.validate().map_err(SuperviseError::Policy)?;
        let parent_name = parent.unwrap_or(ROOT);
        let parent = read(&self.inner.supervisors)
            .get(parent_name)
            .cloned()
            .ok_or_else(|| SuperviseError::UnknownParent(parent_name.to_string()))?;
        let address = Address::from(name);
        let mut supervisors = write(&self.inner.supervisors);
        if supervisors.contains_key(name) || self.inner.registry.get(name).is_some() {
            return Err(SuperviseError::NameTaken(address));
        }
        let restart = spec.restart;
        let node = SupervisorRef::start(address.clone(), NodeKind::Named, spec, self.inner.clone());
        supervisors.insert(address.clone(), node.clone());
        drop(supervisors);
        write(&self.inner.parent_of).insert(address.clone(), parent.clone());
        parent.add(address, ChildRef::Supervisor(node.clone()), restart);
        Ok(node)
    }

    /// The supervisor at `name`.
    pub fn supervisor(&self, name: &str) -> Option<SupervisorRef> {
        read(&self.inner.supervisors).get(name).cloned()
    }

    /// The actor at `address`.
    ///
    /// # Errors
    ///
    /// [`CallError::UnknownAddress`].
    pub fn lookup(&self, address: &str) -> Result<ActorRef, CallError> {
        self.inner.registry.get(address).ok_or_else(|| CallError::UnknownAddress(address.into()))
    }

    /// Type-checks `message` (WAVE, `func(args)`) and queues it.
    ///
    /// # Errors
    ///
    /// A [`CallError`]: unknown address, ill-typed message, full mailbox.
    pub fn tell(&self, address: &str, message: &str) -> Result<(), CallError> {
        let actor = self.lookup(address)?;
        let call = actor.parse(message)?;
        actor.tell(call, None)
    }

    /// Type-checks `message`, sends it and waits for the reply.
    ///
    /// # Errors
    ///
    /// A [`CallError`]; see [`ActorRef::ask`].
    pub async fn ask(&self, address: &str, message: &str, timeout: Duration) -> Result<Option<Val>, CallError> {
        let actor = self.lookup(address)?;
        let call = actor.parse(message)?;
        actor.ask(call, None, None, timeout).await
    }

    /// Stops the actor or supervisor at `address` for good (children first,
    /// in reverse start order) and waits. Its supervisor does not restart it.
    ///
    /// # Errors
    ///
    /// [`CallError::UnknownAddress`].
    pub async fn stop(&self, address: &str) -> Result<(), CallError> {
        if address == ROOT {
            self.shutdown().await;
            return Ok(());
        }
        let parent = read(&self.inner.parent_of).get(address).cloned();
        if let Some(node) = self.supervisor(address) {
            match parent {
                Some(parent) => {
                    parent.stop_child(&node.address().clone()).await;
                }
                None => node.stop().await,
            }
            return Ok(());
        }
        let actor = self.lookup(address)?;
        let stopped = match parent {
            Some(parent) => parent.stop_child(actor.address()).await,
            None => false,
        };
        if !stopped {
            actor.stop();
        }
        actor.stopped().await;
        Ok(())
    }

    /// Hot-swaps the code of the actor at `address` to `component`; see
    /// [`crate::actor::swap`]. Waits for the probation window.
    ///
    /// # Errors
    ///
    /// A [`SwapError`]: unknown actor, incompatible protocol (unless
    /// forced), unloadable component, or the new code failed to start or
    /// during probation (then the old code is back).
    pub async fn swap(
        &self,
        address: &str,
        component: Arc<ActorComponent>,
        options: SwapOptions,
    ) -> Result<SwapReport, SwapError> {
        self.swap_one(address, component, options, false, None).await
    }

    /// Restores `state` into the actor at `address`: a new instance of its
    /// current code starts from it, between two messages. If `restore`
    /// refuses the state or traps, the actor keeps running as it was.
    ///
    /// # Errors
    ///
    /// [`SwapError::Start`] with the refusal; [`SwapError::UnknownTarget`].
    pub async fn restore(&self, address: &str, state: crate::actor::Snapshot) -> Result<SwapReport, SwapError> {
        let actor = self.inner.registry.get(address).ok_or_else(|| SwapError::UnknownTarget(address.to_string()))?;
        let options = SwapOptions { force: false, probation: Duration::ZERO };
        self.swap_one(address, actor.component(), options, false, Some(state)).await
    }

    async fn swap_one(
        &self,
        address: &str,
        component: Arc<ActorComponent>,
        options: SwapOptions,
        hold: bool,
        state: Option<crate::actor::Snapshot>,
    ) -> Result<SwapReport, SwapError> {
        let actor = self.inner.registry.get(address).ok_or_else(|| SwapError::UnknownTarget(address.to_string()))?;
        let old = actor.component();
        let diff = old.protocol().diff(component.protocol());
        if !diff.is_compatible() && !options.force {
            return Err(SwapError::Incompatible { address: actor.address().clone(), diff });
        }
        // Compile and link for the actor's engine here, off its path.
        let kind = if actor.limits().fuel.is_some() { EngineKind::Metered } else { EngineKind::Epoch };
        component.compiled(&self.inner.loader, kind)?;
        let (ack, done) = oneshot::channel();
        if !actor.control(Control::Swap(Box::new(SwapRequest { component, options, hold, state, ack }))) {
            return Err(SwapError::Stopped(actor.address().clone()));
        }
        done.await.unwrap_or_else(|_| Err(SwapError::Stopped(actor.address().clone())))
    }

    /// Swaps `target`: one actor, or every actor started from the manifest
    /// entry (component entry) named `target`, one at a time. A rolling
    /// swap keeps every swapped actor's old code until all have passed
    /// probation (the first, the canary, for `canary` if given), stops at
    /// the first failure, and rolls back what it changed.
    ///
    /// # Errors
    ///
    /// As [`Host::swap`]; [`SwapError::RolledBack`] for a rolling swap that
    /// failed part-way.
    pub async fn swap_target(
        &self,
        target: &str,
        component: Arc<ActorComponent>,
        options: SwapOptions,
        canary: Option<Duration>,
    ) -> Result<Vec<SwapReport>, SwapError> {
        if self.inner.registry.get(target).is_some() {
            return Ok(vec![self.swap(target, component, options).await?]);
        }
        let group: Vec<ActorRef> =
            self.inner.registry.all().into_iter().filter(|a| a.group() == Some(target)).collect();
        if group.is_empty() {
            return Err(SwapError::UnknownTarget(target.to_string()));
        }
        let mut swapped: Vec<&ActorRef> = Vec::new();
        let mut reports = Vec::new();
        for (i, actor) in group.iter().enumerate() {
            let probation = match canary {
                Some(c) if i == 0 => c,
                _ => options.probation,
            };
            let options = SwapOptions { probation, ..options };
            match self.swap_one(actor.address().as_str(), component.clone(), options, true, None).await {
                Ok(report) => {
                    swapped.push(actor);
                    reports.push(report);
                }
                Err(cause) => {
                    for done in swapped.iter().rev() {
                        let (ack, rolled) = oneshot::channel();
                        if done.control(Control::SwapRollback { ack }) {
                            let _ = rolled.await;
                        }
                    }
                    return Err(SwapError::RolledBack {
                        at: actor.address().clone(),
                        rolled_back: swapped.len(),
                        cause: Box::new(cause),
                    });
                }
            }
        }
        for actor in &swapped {
            actor.control(Control::SwapCommit);
        }
        // Actors started from the entry later (or spawned by guests) run
        // the new code too.
        if let Some(mut entry) = self.entry(target) {
            entry.component = component;
            self.define(target, entry);
        }
        Ok(reports)
    }

    /// Binds the imported protocol `interface` of the actor at `address` to
    /// `spec`, after checking that the target exports it with identical
    /// types (see [`crate::actor::binding`]).
    ///
    /// # Errors
    ///
    /// [`BindError`] naming the function and both signatures on a mismatch.
    pub fn bind(&self, address: &str, interface: &str, spec: BindingSpec) -> Result<(), BindError> {
        let actor = self
            .inner
            .registry
            .get(address)
            .ok_or_else(|| BindError::UnknownTarget { interface: interface.to_string(), target: address.into() })?;
        self.inner.bind(&actor, interface, spec)
    }

    /// Every actor, in start order.
    pub fn actors(&self) -> Vec<ActorInfo> {
        self.inner.registry.all().iter().map(ActorRef::info).collect()
    }

    /// The children an actor supervises, in start order.
    pub fn children_of(&self, address: &str) -> Vec<Address> {
        let node = read(&self.inner.owned).get(address).cloned();
        node.map(|n| n.info().children.into_iter().map(|c| c.address).collect()).unwrap_or_default()
    }

    /// The supervision tree, from the root.
    pub fn tree(&self) -> TreeNode {
        self.inner.tree_of_supervisor(self.inner.root())
    }

    /// Lifecycle events from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Messages that could not be delivered or were not handled, so far.
    pub fn dead_letters(&self) -> u64 {
        self.inner.dead_letters.load(Ordering::Relaxed)
    }

    /// Resolves when the root gives up on a top-level child under
    /// [`RootPolicy::Shutdown`], with the reason; the caller shuts down.
    pub async fn root_gave_up(&self) -> String {
        let mut rx = self.inner.gave_up.subscribe();
        let reason = match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }

    /// Stops everything: the root stops its children in reverse start
    /// order, each stopping its own children first. Refuses new spawns.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        self.inner.root().stop().await;
        // Anything left (an actor whose supervisor vanished mid-start).
        for actor in self.inner.registry.all().iter().rev() {
            actor.stop();
            actor.stopped().await;
        }
        info!("host stopped");
    }
}

/// How many idle actors a full instance pool asks to hibernate, one after
/// the other, before it gives up.
const EVICTION_CANDIDATES: usize = 3;

/// How far ahead [`keep_a_timer_pending`] keeps its timer.
const TIMER_HEARTBEAT: Duration = Duration::from_millis(500);

/// Keeps a tokio timer pending at all times, at most [`TIMER_HEARTBEAT`]
/// ahead, until the host stops. tokio's time driver wakes the thread it
/// parks on whenever a timer earlier than its next wake-up is registered;
/// without another timer, every ask's timeout (seconds away) was such a
/// timer, and that wake-up cost each ask two context switches: a third of
/// its time.
async fn keep_a_timer_pending(host: std::sync::Weak<HostInner>) {
    let mut heartbeat = tokio::time::interval(TIMER_HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        heartbeat.tick().await;
        match host.upgrade() {
            Some(host) if !host.shutting_down.load(Ordering::Acquire) => {}
            _ => return,
        }
    }
}

impl HostInner {
    /// Of the awake actors that can hibernate, the one idle longest, other
    /// than `except` and those in `refused`. The set holds at most one
    /// actor per instance slot (plus those down between incarnations), so
    /// this scan does not grow with the number of sleeping actors.
    fn longest_idle(&self, except: &Address, refused: &[Address]) -> Option<ActorRef> {
        let awake = self.awake.lock().unwrap_or_else(|e| e.into_inner());
        awake
            .values()
            .filter(|a| a.address() != except && !refused.contains(a.address()))
            .filter_map(|a| a.idle_since().map(|since| (since, a)))
            .min_by_key(|(since, _)| *since)
            .map(|(_, a)| a.clone())
    }

    fn system(&self) -> Arc<HostInner> {
        self.me.upgrade().expect("a host outlives its running actors")
    }

    fn root(&self) -> &SupervisorRef {
        self.root.get().expect("the root is set at construction")
    }

    fn supervisor(&self, name: &str) -> Result<SupervisorRef, SpawnError> {
        read(&self.supervisors).get(name).cloned().ok_or_else(|| SpawnError::UnknownSupervisor(name.to_string()))
    }

    /// The supervisor of `actor`'s own children, created on first use.
    fn owned_node(&self, actor: &ActorRef, spec: &SupervisorSpec) -> SupervisorRef {
        let mut owned = write(&self.owned);
        owned
            .entry(actor.address().clone())
            .or_insert_with(|| {
                SupervisorRef::start(
                    actor.address().clone(),
                    NodeKind::Owned(actor.clone()),
                    spec.clone(),
                    self.system(),
                )
            })
            .clone()
    }

    async fn spawn(&self, spec: ActorSpec, node: &SupervisorRef) -> Result<ActorRef, SpawnError> {
        self.start(spec, node)?.started().await
    }

    fn start(&self, spec: ActorSpec, node: &SupervisorRef) -> Result<Starting, SpawnError> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(SpawnError::ShuttingDown);
        }
        Address::validate(spec.address.as_str()).map_err(SpawnError::InvalidName)?;
        spec.policy.limits.validate(self.loader.engine().config().get_max_memory_bytes())?;
        spec.policy.grants.validate()?;
        if let Err(problem) = spec.policy.supervision.validate() {
            return Err(SpawnError::InvalidName(problem));
        }
        if self.registry.len() >= self.max_actors {
            return Err(SpawnError::Quota(format!(
                "the host runs {} actors, its maximum (raise it with `troupe run --max-actors`)",
                self.max_actors
            )));
        }
        if read(&self.supervisors).contains_key(spec.address.as_str()) {
            return Err(SpawnError::NameTaken(spec.address.clone()));
        }
        let mut spec = spec;
        if node.spec().strategy == Strategy::Pool && spec.group.is_none() {
            // A pool's children form a group under the pool's name.
            spec.group = Some(node.address().to_string());
        }
        if node.spec().strategy == Strategy::Pool
            && let Some(sibling) = node.first_child().and_then(|c| self.registry.get(c.as_str()))
            && sibling.component().hash != spec.component.hash
        {
            return Err(SpawnError::InvalidName(format!(
                "pool `{}` runs identical children from component `{}`; `{}` would run `{}`",
                node.address(),
                sibling.component().name,
                spec.address,
                spec.component.name
            )));
        }
        let (actor, inbox) = ActorRef::create(&spec);
        self.registry.insert(actor.clone()).map_err(|a| SpawnError::NameTaken(a.address().clone()))?;
        let address = spec.address.clone();
        // Bind before the first incarnation, so that `init` can call out.
        for (interface, binding) in &spec.policy.links {
            if let Err(e) = self.bind(&actor, interface, binding.clone()) {
                self.registry.remove(&actor);
                return Err(e.into());
            }
        }
        // The supervisor learns of the child before it can fail.
        write(&self.parent_of).insert(address.clone(), node.clone());
        node.add(address.clone(), ChildRef::Actor(actor.clone()), spec.policy.restart);
        let started = actor::start(actor.clone(), inbox, spec, self.system(), self.loader.clone());
        Ok(Starting { actor, started })
    }

    fn known_components(&self) -> String {
        let components = read(&self.components);
        let mut names: Vec<&str> = components.keys().map(String::as_str).collect();
        names.sort_unstable();
        if names.is_empty() { "none (name them in the manifest)".into() } else { names.join(", ") }
    }

    fn tree_of_supervisor(&self, node: &SupervisorRef) -> TreeNode {
        let info = node.info();
        let nodes = info
            .children
            .iter()
            .filter_map(|child| match child.kind {
                "supervisor" => {
                    read(&self.supervisors).get(&child.address).cloned().map(|n| self.tree_of_supervisor(&n))
                }
                _ => self.registry.get(child.address.as_str()).map(|actor| self.tree_of_actor(&actor, child)),
            })
            .collect();
        TreeNode::Supervisor { info, nodes }
    }

    fn tree_of_actor(&self, actor: &ActorRef, child: &crate::supervision::ChildInfo) -> TreeNode {
        let owned = read(&self.owned).get(actor.address()).cloned();
        let nodes = owned
            .map(|node| {
                node.info()
                    .children
                    .iter()
                    .filter_map(|c| self.registry.get(c.address.as_str()).map(|a| self.tree_of_actor(&a, c)))
                    .collect()
            })
            .unwrap_or_default();
        TreeNode::Actor {
            info: Box::new(actor.info()),
            restart: child.restart,
            restarts_by_supervisor: child.restarts,
            nodes,
        }
    }
}

impl ActorSystem for HostInner {
    fn lookup(&self, address: &str) -> Option<ActorRef> {
        self.registry.get(address)
    }

    fn free_a_slot<'a>(&'a self, asking: &'a Address) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            // A candidate may have got busy since it was stamped idle; it
            // then refuses, and the next one is asked.
            let mut refused = Vec::new();
            while refused.len() < EVICTION_CANDIDATES {
                let Some(actor) = self.longest_idle(asking, &refused) else { return false };
                let (ack, slept) = oneshot::channel();
                if actor.control(Control::Hibernate { ack })
                    && let Ok(Ok(true)) = tokio::time::timeout(Duration::from_secs(1), slept).await
                {
                    debug!(evicted = %actor.address(), for_ = %asking, "put to sleep for an instance slot");
                    return true;
                }
                refused.push(actor.address().clone());
            }
            false
        })
    }

    fn spawn_child<'a>(
        &'a self,
        parent: &'a ActorRef,
        component: &'a str,
        options: SpawnOptions,
    ) -> BoxFuture<'a, Result<ActorRef, SpawnError>> {
        Box::pin(async move {
            let entry = read(&self.components).get(component).cloned();
            let Some(entry) = entry else {
                return Err(SpawnError::UnknownComponent {
                    name: component.to_string(),
                    known: self.known_components(),
                });
            };
            let own = parent.component();
            let parent_policy = read(&self.components).get(&own.name).map(|e| e.policy.supervision.clone());
            let node = match &options.supervisor {
                Some(name) => self.supervisor(name)?,
                None => self.owned_node(parent, &parent_policy.unwrap_or_default()),
            };
            if options.supervisor.is_none() && node.child_count() as u32 >= parent.limits().max_children {
                return Err(SpawnError::Quota(format!(
                    "`{}` already has {} children (`max-children`)",
                    parent.address(),
                    parent.limits().max_children
                )));
            }
            let address = match options.name {
                Some(name) => Address::from(name),
                None => {
                    let n = self.child_names.fetch_add(1, Ordering::Relaxed);
                    Address::from(format!("{}/{component}-{n}", parent.address()))
                }
            };
            let mut spec = entry.spec(address);
            spec.parent = Some(parent.address().clone());
            spec.group = Some(component.to_string());
            spec.policy.restart = options.restart;
            for (interface, binding) in options.bindings {
                let key = interface_key(&interface).to_string();
                spec.policy.links.retain(|(i, _)| interface_key(i) != key);
                spec.policy.links.push((interface, binding));
            }
            for (k, v) in options.config {
                match spec.policy.config.iter_mut().find(|(key, _)| *key == k) {
                    Some(slot) => slot.1 = v,
                    None => spec.policy.config.push((k, v)),
                }
            }
            let child = self.spawn(spec, &node).await?;
            if options.link {
                parent.link(&child);
            }
            Ok(child)
        })
    }

    fn stop_actor(&self, target: &ActorRef) {
        let parent = read(&self.parent_of).get(target.address()).cloned();
        let target = target.clone();
        tokio::spawn(async move {
            let stopped = match parent {
                Some(parent) => parent.stop_child(target.address()).await,
                None => false,
            };
            if !stopped {
                target.stop();
            }
        });
    }

    fn child_down(&self, actor: &ActorRef, exit: Exit) {
        let parent = read(&self.parent_of).get(actor.address()).cloned();
        match parent {
            Some(node) => node.child_down(actor.address(), exit),
            None => {
                // No supervisor (it is being removed): nobody restarts it.
                actor.stop();
            }
        }
    }

    fn restarted(&self, actor: &ActorRef, from_snapshot: bool) {
        if let Some(node) = read(&self.owned).get(actor.address()) {
            node.owner_restarted(from_snapshot);
        }
    }

    fn stop_children<'a>(&'a self, actor: &'a ActorRef) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let node = write(&self.owned).remove(actor.address());
            if let Some(node) = node {
                node.stop().await;
            }
        })
    }

    fn set_awake(&self, actor: &ActorRef, awake: bool) {
        let mut set = self.awake.lock().unwrap_or_else(|e| e.into_inner());
        if awake {
            set.insert(actor.address().clone(), actor.clone());
        } else {
            set.remove(actor.address());
        }
    }

    fn unregister(&self, actor: &ActorRef) {
        self.set_awake(actor, false);
        if self.registry.remove(actor) {
            let parent = write(&self.parent_of).remove(actor.address());
            if let Some(parent) = parent {
                parent.forget(actor.address());
            }
        }
    }

    fn dead_letter(&self, to: &Address, what: &str, reason: DeadLetterReason) {
        let total = self.dead_letters.fetch_add(1, Ordering::Relaxed) + 1;
        warn!(to = %to, function = what, %reason, total, "dead letter");
    }

    fn events(&self) -> &EventBus {
        &self.events
    }

    fn route(&self, binding: &Binding, key: Option<&Val>) -> Result<Vec<ActorRef>, String> {
        let (name, router) = match &binding.spec.target {
            BindingTarget::Actor(address) => {
                return self
                    .registry
                    .get(address.as_str())
                    .map(|a| vec![a])
                    .ok_or_else(|| format!("the bound actor `{address}` does not exist"));
            }
            BindingTarget::Group { name, router } => (name, router),
        };
        let members = self.registry.group(name);
        if members.is_empty() {
            return Err(format!("group `{name}` has no members"));
        }
        let pick = match router {
            Router::Broadcast => return Ok(members),
            Router::RoundRobin => binding.next_index(members.len()),
            Router::Random => fastrand::usize(..members.len()),
            Router::LeastLoaded => {
                members.iter().enumerate().min_by_key(|(_, m)| m.mailbox_len()).map(|(i, _)| i).unwrap_or(0)
            }
            Router::HashOn(param) => {
                let key = key.ok_or_else(|| format!("`hash-on({param})`: the call has no `{param}` argument"))?;
                let text = key.to_wave().map_err(|e| e.to_string())?;
                self.ring(name, &members).pick(text.as_bytes()).unwrap_or(0)
            }
        };
        Ok(vec![members[pick].clone()])
    }

    fn bind(&self, actor: &ActorRef, interface: &str, spec: BindingSpec) -> Result<(), BindError> {
        let component = actor.component();
        let Some(import) = component.import(interface) else {
            let imports = component.imports().iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(BindError::NotImported {
                actor: actor.address().clone(),
                interface: interface.to_string(),
                imports: if imports.is_empty() { "no protocol interfaces".into() } else { imports },
            });
        };
        // What the target runs, to check types against: the actor, or the
        // group's members and the code it would start more of.
        let (target_name, targets): (String, Vec<Arc<ActorComponent>>) = match &spec.target {
            BindingTarget::Actor(address) => {
                let target = self.registry.get(address.as_str()).ok_or_else(|| BindError::UnknownTarget {
                    interface: interface.to_string(),
                    target: address.clone(),
                })?;
                (address.to_string(), vec![target.component()])
            }
            BindingTarget::Group { name, router } => {
                if *router == Router::Broadcast
                    && let Some(f) = import.functions.iter().find(|f| f.result.is_some())
                    && import.functions.iter().all(|f| f.result.is_some())
                {
                    return Err(BindError::BroadcastAsk { function: f.qualified_name() });
                }
                if let Router::HashOn(param) = router
                    && !import.functions.iter().any(|f| f.params.iter().any(|(n, _)| n == param))
                {
                    return Err(BindError::NoSuchParam { param: param.clone(), interface: import.name.clone() });
                }
                let mut targets: Vec<Arc<ActorComponent>> =
                    self.registry.group(name).iter().map(ActorRef::component).collect();
                targets.extend(read(&self.components).get(name).map(|e| e.component.clone()));
                (format!("group `{name}`"), targets)
            }
        };
        let key = interface_key(&import.name);
        for target in &targets {
            for f in &import.functions {
                let found = match target.protocol().find(key, &f.name) {
                    Some(i) => {
                        let g = target.protocol().function(i);
                        if g.same_type(f) {
                            continue;
                        }
                        format!("exports `{}`", g.signature())
                    }
                    None => "does not export it".into(),
                };
                return Err(BindError::Mismatch {
                    interface: import.name.clone(),
                    target: target_name,
                    function: f.name.clone(),
                    expected: f.signature(),
                    found,
                });
            }
        }
        actor.set_binding(interface, spec);
        Ok(())
    }
}

impl HostInner {
    /// The hash ring of `group`, rebuilt when its membership changed.
    fn ring(&self, group: &str, members: &[ActorRef]) -> Arc<HashRing> {
        let membership = self.registry.membership();
        let mut rings = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((built_for, ring)) = rings.get(group)
            && *built_for == membership
        {
            return ring.clone();
        }
        let ring = Arc::new(HashRing::new(members.iter().map(|m| m.address().as_str())));
        rings.insert(group.to_string(), (membership, ring.clone()));
        ring
    }
}

impl SupervisorHost for HostInner {
    fn events(&self) -> &EventBus {
        &self.events
    }

    fn child_removed(&self, child: &Address) {
        write(&self.parent_of).remove(child);
    }

    fn supervisor_stopped(&self, node: &SupervisorRef) {
        let mut supervisors = write(&self.supervisors);
        if supervisors.get(node.address()).is_some_and(|n| n.same(node)) {
            supervisors.remove(node.address());
        }
    }

    fn root_gave_up(&self, child: &Address, failure: &Failure) {
        match self.root_policy {
            RootPolicy::KeepRunning => {
                error!(%child, %failure, "gave up on a top-level child; the rest of the host keeps running")
            }
            RootPolicy::Shutdown => {
                error!(%child, %failure, "gave up on a top-level child; shutting the host down (root policy)");
                self.gave_up.send_replace(Some(format!("gave up on `{child}`: {failure}")));
            }
        }
    }

    fn supervisor_escalated(&self, node: &SupervisorRef, failure: Failure) {
        let parent = read(&self.parent_of).get(node.address()).cloned();
        if let Some(parent) = parent {
            parent.child_down(node.address(), Exit::Failed(failure));
        }
    }
}
