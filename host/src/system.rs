//! [`Host`]: the actor system a `troupe run` process hosts, and the public
//! API the control plane (and embedders, and the tests) drive.
//!
//! A host owns the engine, the loaded components, and the address space.
//! It implements [`ActorSystem`], through which actors reach each other.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tracing::{info, warn};
use wasmtime::component::Val;

use crate::actor::{
    self, ActorComponent, ActorInfo, ActorRef, ActorSpec, ActorSystem, BoxFuture, LoadError, Loader, RestartFrom,
    SpawnError,
};
use crate::engine::{ActorLimits, Engine, EngineConfig, EngineError};
use crate::grants::Grants;
use crate::message::{Address, CallError, DeadLetterReason};
use crate::registry::Registry;

/// A component under a name, with the policy for actors started from it:
/// what a manifest `[components.NAME]` or `[actors.NAME]` entry defines, and
/// what a guest's `spawn("NAME", ..)` starts.
#[derive(Debug, Clone)]
pub struct ComponentEntry {
    /// The code.
    pub component: Arc<ActorComponent>,
    /// Limits of actors started from it.
    pub limits: ActorLimits,
    /// Grants of actors started from it.
    pub grants: Grants,
    /// Base configuration (a spawner's config is laid over it).
    pub config: Vec<(String, String)>,
    /// Restart policy.
    pub restart: RestartFrom,
    /// Snapshot frequency with [`RestartFrom::Snapshot`].
    pub snapshot_every: u32,
}

impl ComponentEntry {
    /// An entry with default policy.
    pub fn new(component: Arc<ActorComponent>) -> Self {
        Self {
            component,
            limits: ActorLimits::default(),
            grants: Grants::default(),
            config: Vec::new(),
            restart: RestartFrom::default(),
            snapshot_every: 1,
        }
    }

    /// The spec of an actor at `address` started from this entry.
    pub fn spec(&self, address: Address) -> ActorSpec {
        ActorSpec {
            address,
            component: self.component.clone(),
            limits: self.limits.clone(),
            grants: self.grants.clone(),
            config: self.config.clone(),
            restart: self.restart,
            snapshot_every: self.snapshot_every,
            parent: None,
            group: None,
        }
    }
}

/// Host-wide policy.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// Engine policy (pool size, memory ceiling, epoch tick, cache).
    pub engine: EngineConfig,
}

struct HostInner {
    loader: Arc<Loader>,
    registry: Registry,
    components: RwLock<HashMap<String, ComponentEntry>>,
    loaded: RwLock<HashMap<blake3::Hash, Weak<ActorComponent>>>,
    dead_letters: AtomicU64,
    child_names: AtomicU64,
    shutting_down: AtomicBool,
    max_actors: usize,
    me: Weak<HostInner>,
}

/// A troupe host. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

impl Host {
    /// Builds a host: the engine, its pool and its epoch ticker. Must be
    /// called within a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`EngineError`] if the engine configuration is rejected.
    pub fn new(config: HostConfig) -> Result<Host, EngineError> {
        let engine = config.engine.build()?;
        Ok(Self::with_engine(engine))
    }

    /// A host over an existing engine.
    pub fn with_engine(engine: Engine) -> Host {
        let max_actors = engine.config().get_max_instances() as usize;
        let inner = Arc::new_cyclic(|me| HostInner {
            loader: Arc::new(Loader::new(engine)),
            registry: Registry::default(),
            components: RwLock::new(HashMap::new()),
            loaded: RwLock::new(HashMap::new()),
            dead_letters: AtomicU64::new(0),
            child_names: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            max_actors,
            me: me.clone(),
        });
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
        let existing = self.inner.loaded.read().unwrap_or_else(|e| e.into_inner()).get(&hash).and_then(Weak::upgrade);
        if let Some(c) = existing
            && c.name == name
            && c.version == version
        {
            return Ok(c);
        }
        let component = Arc::new(self.inner.loader.load(name, source, bytes, version)?);
        self.inner.loaded.write().unwrap_or_else(|e| e.into_inner()).insert(hash, Arc::downgrade(&component));
        Ok(component)
    }

    /// Makes `entry` spawnable under `name` (by guests and manifests).
    pub fn define(&self, name: &str, entry: ComponentEntry) {
        self.inner.components.write().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), entry);
    }

    /// The component entry named `name`.
    pub fn entry(&self, name: &str) -> Option<ComponentEntry> {
        self.inner.components.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// Starts an actor and waits until it has started.
    ///
    /// # Errors
    ///
    /// A [`SpawnError`]: address taken or invalid, invalid limits or grants,
    /// the host full, or the actor's start (`init`) failed.
    pub async fn spawn(&self, spec: ActorSpec) -> Result<ActorRef, SpawnError> {
        self.inner.spawn(spec).await
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

    /// Stops the actor at `address` (children first) and waits until it has.
    ///
    /// # Errors
    ///
    /// [`CallError::UnknownAddress`].
    pub async fn stop(&self, address: &str) -> Result<(), CallError> {
        let actor = self.lookup(address)?;
        actor.stop();
        actor.stopped().await;
        Ok(())
    }

    /// Every actor, in start order.
    pub fn actors(&self) -> Vec<ActorInfo> {
        self.inner.registry.all().iter().map(ActorRef::info).collect()
    }

    /// Messages that could not be delivered or were not handled, so far.
    pub fn dead_letters(&self) -> u64 {
        self.inner.dead_letters.load(Ordering::Relaxed)
    }

    /// Stops every actor, top-level actors in reverse start order (each
    /// stops its children first), and refuses new spawns.
    pub async fn shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        let roots: Vec<ActorRef> = self.inner.registry.all().into_iter().filter(|a| a.parent().is_none()).collect();
        for actor in roots.iter().rev() {
            actor.stop();
            actor.stopped().await;
        }
        // Orphans (whose parent stopped while they started) go last.
        for actor in self.inner.registry.all().iter().rev() {
            actor.stop();
            actor.stopped().await;
        }
        info!("host stopped");
    }
}

impl HostInner {
    fn system(&self) -> Arc<dyn ActorSystem> {
        self.me.upgrade().expect("a host outlives its running actors")
    }

    async fn spawn(&self, spec: ActorSpec) -> Result<ActorRef, SpawnError> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(SpawnError::ShuttingDown);
        }
        Address::validate(spec.address.as_str()).map_err(SpawnError::InvalidName)?;
        spec.limits.validate(self.loader.engine().config().get_max_memory_bytes())?;
        spec.grants.validate()?;
        if self.registry.len() >= self.max_actors {
            return Err(SpawnError::Quota(format!(
                "the host runs {} actors, its maximum (raise it with `troupe run --max-actors`)",
                self.max_actors
            )));
        }
        let (actor, inbox) = ActorRef::create(&spec);
        self.registry.insert(actor.clone()).map_err(|a| SpawnError::NameTaken(a.address().clone()))?;
        let address = spec.address.clone();
        let started = actor::start(actor.clone(), inbox, spec, self.system(), self.loader.clone());
        match started.await {
            Ok(Ok(())) => Ok(actor),
            Ok(Err(failure)) => {
                actor.stopped().await;
                Err(SpawnError::Start { address, failure })
            }
            Err(_) => Err(SpawnError::ShuttingDown),
        }
    }

    fn known_components(&self) -> String {
        let components = self.components.read().unwrap_or_else(|e| e.into_inner());
        let mut names: Vec<&str> = components.keys().map(String::as_str).collect();
        names.sort_unstable();
        if names.is_empty() { "none (name them in the manifest)".into() } else { names.join(", ") }
    }
}

impl ActorSystem for HostInner {
    fn lookup(&self, address: &str) -> Option<ActorRef> {
        self.registry.get(address)
    }

    fn spawn_child<'a>(
        &'a self,
        parent: &'a ActorRef,
        component: &'a str,
        name: Option<String>,
        config: Vec<(String, String)>,
    ) -> BoxFuture<'a, Result<ActorRef, SpawnError>> {
        Box::pin(async move {
            let entry = self.components.read().unwrap_or_else(|e| e.into_inner()).get(component).cloned();
            let Some(entry) = entry else {
                return Err(SpawnError::UnknownComponent {
                    name: component.to_string(),
                    known: self.known_components(),
                });
            };
            if !parent.reserve_child() {
                return Err(SpawnError::Quota(format!(
                    "`{}` already has {} children (`max-children`)",
                    parent.address(),
                    parent.limits().max_children
                )));
            }
            let address = match name {
                Some(name) => Address::from(name),
                None => {
                    let n = self.child_names.fetch_add(1, Ordering::Relaxed);
                    Address::from(format!("{}/{component}-{n}", parent.address()))
                }
            };
            let mut spec = entry.spec(address);
            spec.parent = Some(parent.address().clone());
            spec.group = Some(component.to_string());
            for (k, v) in config {
                match spec.config.iter_mut().find(|(key, _)| *key == k) {
                    Some(slot) => slot.1 = v,
                    None => spec.config.push((k, v)),
                }
            }
            let result = self.spawn(spec).await;
            parent.child_started(result.as_ref().ok().map(ActorRef::address));
            result
        })
    }

    fn unregister(&self, actor: &ActorRef) {
        self.registry.remove(actor);
        if let Some(parent) = actor.parent().and_then(|p| self.registry.get(p.as_str())) {
            parent.forget_child(actor.address());
        }
    }

    fn dead_letter(&self, to: &Address, what: &str, reason: DeadLetterReason) {
        let total = self.dead_letters.fetch_add(1, Ordering::Relaxed) + 1;
        warn!(to = %to, function = what, %reason, total, "dead letter");
    }
}
