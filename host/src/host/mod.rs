//! [`Host`]: the actor system a `troupe run` process hosts, and the public
//! API the control plane, embedders and the tests drive.
//!
//! The host is a thin facade over a few services, each behind its own lock
//! or task:
//!
//! * `catalog.rs` — loaded components and named templates;
//! * `registry.rs` — the address space and groups;
//! * `tree.rs` — the supervision tree, stored once, and the
//!   supervisor tasks that act on it (`supervisor.rs`);
//! * `routing.rs` and `ring.rs` — checking bindings and routing calls through
//!   them;
//! * the [`EventBus`];
//! * `peers.rs` — the port to the other hosts of a cluster, for the
//!   control plane.
//!
//! It implements the actor layer's `ActorSystem`
//! port (`actor_system.rs`), through which actors reach each other:
//! dependencies point down.

mod actor_system;
mod catalog;
mod children;
mod durable;
pub mod manifest;
mod peers;
mod placement;
mod registry;
mod ring;
pub mod routes;
mod routing;
mod singletons;
mod spawn;
mod supervisor;
mod swap;
mod tree;
mod virtual_actors;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, oneshot, watch};
use tracing::{error, info};
use wasmtime::component::Val;

pub use catalog::ActorTemplate;
pub use peers::{ClusterSwap, ClusterSwapError, HostView, NodeAnswer, NodeView, Peers};
pub use placement::Placement;
pub use registry::{AddressChange, AddressObserver};
pub use singletons::Respawner;
pub use spawn::ChildSpawn;
pub use supervisor::SupervisorRef;
pub use swap::HeldSwap;
pub use tree::{ChildInfo, NodeStatus, SupervisorInfo, TreeNode};
pub use virtual_actors::{Activations, DEFAULT_IDLE, DEFAULT_WARM_INSTANCES, KeyCounts, MAX_KEY_BYTES, check_key};

use crate::actor::binding::{BindError, BindingSpec};
use crate::actor::durable::Journal;
use crate::actor::remote::RemoteActors;
use crate::actor::{ActorComponent, ActorInfo, ActorRef, Failure, LoadError, Loader, Resources, SpawnError};
use crate::batch::BatchDelivery;
use crate::engine::{Engine, EngineConfig, EngineError};
use crate::error_code::{ErrorCode, HasErrorCode};
use crate::events::{Event, EventBus};
use crate::message::{Address, CallError};
use crate::supervision::{PolicyError, RootPolicy, SupervisorSpec};
use catalog::Catalog;
use registry::Registry;
use routing::Routing;
use tree::{Child, ChildRef, Node, NodeKind, Tree};

/// The root supervisor's address.
pub const ROOT: &str = "root";

/// Host-wide policy.
#[derive(Clone, Default)]
pub struct HostConfig {
    /// Engine policy (pool size, memory ceiling, epoch tick, cache).
    pub engine: EngineConfig,
    /// Which functions take several queued tells in one call into the
    /// guest (see [`crate::batch`]). By default
    /// [`BatchDelivery::Registers`]; the benchmarks measure all three.
    pub batch_delivery: BatchDelivery,
    /// The root supervisor's policy for top-level actors and supervisors.
    pub root: SupervisorSpec,
    /// What happens when the root gives up on a top-level child.
    pub root_policy: RootPolicy,
    /// Most actors, awake or hibernating; by default the engine's instance
    /// pool size, since every awake actor holds an instance. Hibernating
    /// actors hold none, so with `hibernate-after` a host can run more
    /// actors than it has instance slots.
    pub max_actors: Option<usize>,
    /// Stable storage for durable actors (`crate::store` provides one);
    /// without it, a durable spawn is refused.
    pub journal: Option<Arc<dyn Journal>>,
    /// Time every message for the metrics' histograms of handling times
    /// and mailbox waits (see [`crate::metrics`]): a clock reading at each
    /// end of a message. Off by default, when those two series stay
    /// empty; `troupe run --http` turns it on.
    pub time_messages: bool,
}

/// Why a supervisor could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    /// The name is taken by an actor or a supervisor.
    #[error("the address `{0}` is already taken")]
    NameTaken(Address),
    /// The name is invalid.
    #[error("invalid supervisor name: {0}")]
    InvalidName(#[from] crate::message::AddressError),
    /// The parent does not exist.
    #[error("no supervisor named `{0}`; `troupe tree` lists them")]
    UnknownParent(String),
    /// The policy is invalid.
    #[error("invalid supervisor policy: {0}")]
    Policy(#[from] PolicyError),
    /// A durable virtual component on a host in a cluster.
    #[error(
        "the virtual component `{0}` is durable, and in a cluster its keys move between hosts, whose stores do \
         not share state (a replicated store is not there yet): declare it `durability = \"in-memory\"`, or run it \
         on a host outside the cluster"
    )]
    DurableVirtualInCluster(String),
}

impl HasErrorCode for SuperviseError {
    fn code(&self) -> ErrorCode {
        match self {
            SuperviseError::NameTaken(_) => ErrorCode::NameTaken,
            SuperviseError::UnknownParent(_) => ErrorCode::UnknownSupervisor,
            SuperviseError::InvalidName(_) | SuperviseError::Policy(_) | SuperviseError::DurableVirtualInCluster(_) => {
                ErrorCode::InvalidArgument
            }
        }
    }
}

/// The services of a host, shared by the facade, the actors (through
/// [`ActorSystem`](crate::actor::ActorSystem)) and the supervisor tasks.
pub(crate) struct HostInner {
    catalog: Catalog,
    registry: Registry,
    tree: Tree,
    routing: Routing,
    /// The gateway's paths served by HTTP actors.
    routes: crate::sync::RwLock<routes::RouteTable>,
    /// What the actors share: the loader and the instance slots.
    resources: Arc<Resources>,
    events: EventBus,
    dead_letters: crate::metrics::DeadLetters,
    /// Whether actors time their messages (see
    /// [`HostConfig::time_messages`]).
    time_messages: bool,
    /// Numbers the addresses of children spawned without a name.
    child_names: AtomicU64,
    shutting_down: AtomicBool,
    /// Set when the root gives up under [`RootPolicy::Shutdown`].
    gave_up: watch::Sender<Option<String>>,
    max_actors: usize,
    /// Where durable actors commit.
    journal: Option<Arc<dyn Journal>>,
    /// While the host starts again the durable actors it had (see
    /// [`Host::hold_recovered_tells`]).
    recovering: watch::Sender<bool>,
    /// The virtual components and their activations.
    virtuals: virtual_actors::Virtuals,
    /// The root supervisor's handle (its node is in the tree while it runs).
    root: OnceLock<SupervisorRef>,
    /// The actors of the other hosts of a cluster, once it joined one.
    remote: OnceLock<Arc<dyn RemoteActors>>,
    /// The other hosts of that cluster, for the control plane.
    peers: OnceLock<Arc<dyn Peers>>,
    /// The claims on virtual keys, in that cluster.
    placement: OnceLock<Arc<dyn Placement>>,
    /// The durable actors another host of that cluster runs, which this
    /// one starts if it wins their claims.
    standbys: singletons::Standbys,
    /// How the control layer starts again an actor from its run-time
    /// spawn record (see `singletons.rs`).
    respawner: OnceLock<singletons::Respawner>,
    me: Weak<HostInner>,
}

/// An actor that [`Host::start`] created and that is starting.
#[derive(Debug)]
pub struct Starting {
    actor: ActorRef,
    started: oneshot::Receiver<Result<(), Failure>>,
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

/// Holds the tells recovered for durable actors (see
/// [`Host::hold_recovered_tells`]); dropping it lets them go.
#[must_use = "the recovered tells go as soon as this is dropped"]
pub struct RecoveryHold {
    host: Host,
}

impl Drop for RecoveryHold {
    fn drop(&mut self) {
        self.host.inner.recovering.send_replace(false);
    }
}

/// A [`Host`] that may be gone: see [`Host::downgrade`].
#[derive(Clone)]
pub struct WeakHost(Weak<HostInner>);

impl WeakHost {
    /// The host, if it is still there.
    pub fn upgrade(&self) -> Option<Host> {
        self.0.upgrade().map(|inner| Host { inner })
    }
}

/// A troupe host. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
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
        let journal = (config.journal, config.time_messages);
        Ok(Self::build(engine, config.batch_delivery, config.root, config.root_policy, max_actors, journal))
    }

    /// A host over an existing engine, with the default batch delivery.
    pub fn with_engine(engine: Engine, root: SupervisorSpec, root_policy: RootPolicy) -> Host {
        let max_actors = engine.config().get_max_instances() as usize;
        Self::build(engine, BatchDelivery::default(), root, root_policy, max_actors, (None, false))
    }

    fn build(
        engine: Engine,
        batch: BatchDelivery,
        root: SupervisorSpec,
        root_policy: RootPolicy,
        max_actors: usize,
        (journal, time_messages): (Option<Arc<dyn Journal>>, bool),
    ) -> Host {
        let (gave_up, _) = watch::channel(None);
        let resources = Arc::new(Resources::new(Arc::new(Loader::new(engine, batch))));
        let inner = Arc::new_cyclic(|me| HostInner {
            catalog: Catalog::new(resources.loader.clone()),
            registry: Registry::default(),
            tree: Tree::default(),
            routing: Routing::default(),
            routes: Default::default(),
            resources,
            events: EventBus::default(),
            dead_letters: Default::default(),
            time_messages,
            child_names: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            gave_up,
            max_actors,
            journal,
            recovering: watch::channel(false).0,
            virtuals: Default::default(),
            root: OnceLock::new(),
            remote: OnceLock::new(),
            peers: OnceLock::new(),
            placement: OnceLock::new(),
            standbys: Default::default(),
            respawner: OnceLock::new(),
            me: me.clone(),
        });
        tokio::spawn(keep_a_timer_pending(Arc::downgrade(&inner)));
        let root = SupervisorRef::start(ROOT.into(), root, &inner);
        inner.tree.with(|t| t.add_supervisor(Node::new(root.clone(), NodeKind::Root(root_policy))));
        let _ = inner.root.set(root);
        Host { inner }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        self.inner.catalog.loader().engine()
    }

    /// Loads the component at `path`, reusing an already loaded one with
    /// the same content.
    ///
    /// # Errors
    ///
    /// A [`LoadError`] naming the file and the problem.
    pub fn load(&self, name: &str, path: &Path, version: Option<String>) -> Result<Arc<ActorComponent>, LoadError> {
        self.inner.catalog.load(name, path, version)
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
        self.inner.catalog.load_bytes(name, source, bytes, version)
    }

    /// Makes `template` startable under `name` (by guests and manifests).
    pub fn define(&self, name: &str, template: ActorTemplate) {
        self.inner.catalog.define(name, template);
    }

    /// The template named `name`.
    pub fn template(&self, name: &str) -> Option<ActorTemplate> {
        self.inner.catalog.template(name)
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
        Address::validate(name)?;
        spec.validate()?;
        let parent = parent.unwrap_or(ROOT);
        let address = Address::from(name);
        if self.inner.registry.get(name).is_some() {
            return Err(SuperviseError::NameTaken(address));
        }
        let restart = spec.restart;
        self.inner.tree.with(|t| {
            if t.names_a_supervisor(name) {
                return Err(SuperviseError::NameTaken(address.clone()));
            }
            if !t.names_a_supervisor(parent) {
                return Err(SuperviseError::UnknownParent(parent.to_string()));
            }
            let node = SupervisorRef::start(address.clone(), spec, &self.inner);
            t.add_supervisor(Node::new(node.clone(), NodeKind::Named));
            t.add_child(parent, address, Child::new(ChildRef::Supervisor(node.clone()), restart));
            Ok(node)
        })
    }

    /// The supervisor (or the root) named `name`.
    pub fn supervisor(&self, name: &str) -> Option<SupervisorRef> {
        self.inner.tree.named(name)
    }

    /// The actor at `address`; for a key of a virtual component, activated
    /// by this lookup if it is not active (see [`Host::define_virtual`]).
    ///
    /// # Errors
    ///
    /// [`CallError::UnknownAddress`]; [`CallError::InvalidKey`] for an
    /// address of a virtual component with a key it cannot have.
    pub fn lookup(&self, address: &str) -> Result<ActorRef, CallError> {
        self.inner.find(address)
    }

    /// Routes the gateway's requests on `routes` (see [`routes`]) to the
    /// HTTP actor at `address`.
    ///
    /// # Errors
    ///
    /// A [`routes::RouteError`]: a route that does not parse, shadows the
    /// gateway or overlaps another actor's, or an actor that is not there
    /// or exports no `wasi:http/incoming-handler`.
    pub fn add_routes(&self, address: &str, routes: &[String]) -> Result<(), routes::RouteError> {
        let actor = self.inner.find(address).map_err(|_| routes::RouteError::NotHttpActor(address.into()))?;
        if crate::actor::http_serve::handler_index(actor.component().protocol()).is_none() {
            return Err(routes::RouteError::NotHttpActor(address.into()));
        }
        if actor.is_durable() {
            // Its journal would record requests it cannot replay.
            return Err(routes::RouteError::Durable(address.into()));
        }
        let parsed = routes.iter().map(|r| routes::Route::parse(r)).collect::<Result<Vec<_>, _>>()?;
        let mut table = self.inner.routes.write();
        for route in parsed {
            table.add(route, actor.address().clone())?;
        }
        Ok(())
    }

    /// The actor a route sends a request on `path` to, if one does.
    pub fn route(&self, path: &str) -> Option<Address> {
        self.inner.routes.read().resolve(path).cloned()
    }

    /// Serves `exchange` through the HTTP actor at `address` (see
    /// [`crate::actor::http_serve`]): waits until its handler has returned,
    /// at most `timeout`; the response goes to `exchange.response`.
    ///
    /// # Errors
    ///
    /// As [`ActorRef::serve_http`], and `UnknownAddress`.
    pub async fn serve_http(
        &self,
        address: &str,
        exchange: crate::actor::http_serve::HttpExchange,
        timeout: Duration,
    ) -> Result<Option<Val>, CallError> {
        self.inner.find(address)?.serve_http(exchange, timeout).await
    }

    /// Type-checks `message` (WAVE, `func(args)`) and queues it. To a
    /// durable actor, [`Host::send`] also waits until it is durable.
    ///
    /// # Errors
    ///
    /// A [`CallError`]: unknown address, ill-typed message, full mailbox.
    pub fn tell(&self, address: &str, message: &str) -> Result<(), CallError> {
        let actor = self.lookup(address)?;
        let call = actor.parse(message)?;
        actor.tell(call, None)
    }

    /// Makes the actors of other hosts reachable from this one: a guest's
    /// tell or ask, and [`Host::send`] and [`Host::ask`] (the control
    /// socket's and the gateway's), to an address this host does not have
    /// go to `remote`; [`Host::tell`], which does not wait, stays local.
    /// Once: a host joins one cluster. Returns whether it was attached.
    pub fn attach_remote(&self, remote: Arc<dyn RemoteActors>) -> bool {
        self.inner.remote.set(remote).is_ok()
    }

    /// Has `observer` told of every later change to this host's address
    /// space, in order, and returns the actors that hold an address now
    /// (it is not told of them). One observer per host (a cluster joins
    /// once): `None` if one observes already.
    pub fn observe_addresses(&self, observer: AddressObserver) -> Option<Vec<ActorRef>> {
        self.inner.registry.observe(observer)
    }

    /// The component with content hash `hash`, if this host has it loaded.
    pub fn component_by_hash(&self, hash: &blake3::Hash) -> Option<Arc<ActorComponent>> {
        self.inner.catalog.by_hash(hash)
    }

    /// Whether [`Host::attach_remote`] attached the actors of other hosts.
    pub fn has_remote(&self) -> bool {
        self.inner.remote.get().is_some()
    }

    /// Makes the other hosts of a cluster visible to the control plane
    /// (`troupe ps --cluster`). Once; returns whether it was attached.
    pub fn attach_peers(&self, peers: Arc<dyn Peers>) -> bool {
        self.inner.peers.set(peers).is_ok()
    }

    /// The other hosts of the cluster this host joined, if any.
    pub fn peers(&self) -> Option<&Arc<dyn Peers>> {
        self.inner.peers.get()
    }

    /// From now on this host activates a key of a virtual component only
    /// while `placement` says it holds the key (see [`Placement`]). Once;
    /// returns whether it was attached.
    ///
    /// # Errors
    ///
    /// [`SuperviseError::DurableVirtualInCluster`], naming a durable
    /// virtual component, if `placement` has no shared store: its keys'
    /// state would be in this host's own store, which the other hosts
    /// activating them would not see.
    pub fn attach_placement(&self, placement: Arc<dyn Placement>) -> Result<bool, SuperviseError> {
        let _no_definitions_meanwhile = self.inner.virtuals.defining();
        if placement.journal().is_none()
            && let Some(name) = self.inner.durable_virtual_component()
        {
            return Err(SuperviseError::DurableVirtualInCluster(name));
        }
        Ok(self.inner.placement.set(placement).is_ok())
    }

    /// A handle that does not keep the host alive, for what the host
    /// itself holds (a cluster's tasks): no cycle keeps a stopped host.
    pub fn downgrade(&self) -> WeakHost {
        WeakHost(Arc::downgrade(&self.inner))
    }

    /// The other hosts' actors, if `lookup` failed because this host has
    /// no actor at the address.
    fn remote_for(&self, lookup: &CallError) -> Option<&Arc<dyn RemoteActors>> {
        match lookup {
            CallError::UnknownAddress(_) => self.inner.remote.get(),
            _ => None,
        }
    }

    /// Type-checks `message`, queues it and waits until it is
    /// acknowledged: for a durable actor, committed to its durable inbox
    /// (see [`ActorRef::send`]). An address this host does not have goes
    /// to the other hosts of its cluster, if it joined one.
    ///
    /// # Errors
    ///
    /// As [`Host::tell`], and [`CallError::NotDurable`].
    pub async fn send(&self, address: &str, message: &str) -> Result<(), CallError> {
        self.send_as(address, message, None).await
    }

    /// [`Host::send`] of the tell numbered `seq` by the outside publisher
    /// `publisher`: sent again with the same number after a failure (a
    /// timeout, a host that went down), it is taken once (see
    /// [`ActorRef::send_numbered`]), on whichever host the actor is.
    ///
    /// # Errors
    ///
    /// [`CallError::InvalidPublisher`], [`CallError::NotNumbered`] if the
    /// actor is not durable; else as [`Host::send`].
    pub async fn send_numbered(
        &self,
        address: &str,
        message: &str,
        publisher: &str,
        seq: u64,
    ) -> Result<(), CallError> {
        self.send_as(address, message, Some((Address::publisher(publisher)?, seq))).await
    }

    /// [`Host::send`], numbered by `(publisher, seq)` if given.
    async fn send_as(&self, address: &str, message: &str, numbered: Option<(Address, u64)>) -> Result<(), CallError> {
        let from = numbered.as_ref().map(|(publisher, _)| publisher);
        let origin = numbered.as_ref().map(|(_, seq)| crate::actor::durable::Origin { seq: *seq, index: 0 });
        let actor = match self.lookup(address) {
            Ok(actor) => actor,
            Err(e) => match self.remote_for(&e) {
                Some(remote) => return remote.tell(address, message, from, origin).await,
                None => return Err(e),
            },
        };
        let call = actor.parse(message)?;
        let sent = match &numbered {
            Some((publisher, seq)) => actor.send_numbered(call, publisher.clone(), *seq).await,
            None => actor.send(call, None).await,
        };
        match sent {
            // A key that passivated meanwhile and whose claim went back.
            Err(e @ CallError::UnknownAddress(_)) => match self.remote_for(&e) {
                Some(remote) => remote.tell(address, message, from, origin).await,
                None => Err(e),
            },
            sent => sent,
        }
    }

    /// Where durable actors commit, if this host has a store (the keys of
    /// virtual components in a cluster commit to the cluster's).
    pub fn journal(&self) -> Option<&Arc<dyn Journal>> {
        self.inner.journal.as_ref()
    }

    /// Holds the tells durable actors recover until the returned guard is
    /// dropped: while a host starts its durable actors again one by one,
    /// the first must not handle a recovered tell that tells the second
    /// before the second is there. The actors start meanwhile, and take
    /// new messages into their mailboxes.
    pub fn hold_recovered_tells(&self) -> RecoveryHold {
        self.inner.recovering.send_replace(true);
        RecoveryHold { host: self.clone() }
    }

    /// Type-checks `message`, sends it and waits for the reply. An address
    /// this host does not have goes to the other hosts of its cluster, if
    /// it joined one.
    ///
    /// # Errors
    ///
    /// A [`CallError`]; see [`ActorRef::ask`].
    pub async fn ask(&self, address: &str, message: &str, timeout: Duration) -> Result<Option<Val>, CallError> {
        let actor = match self.lookup(address) {
            Ok(actor) => actor,
            Err(e) => match self.remote_for(&e) {
                Some(remote) => return remote.ask(address, message, None, None, timeout).await,
                None => return Err(e),
            },
        };
        let call = actor.parse(message)?;
        match actor.ask(call, None, None, timeout).await {
            // A key that passivated meanwhile and whose claim went back.
            Err(e @ CallError::UnknownAddress(_)) => match self.remote_for(&e) {
                Some(remote) => remote.ask(address, message, None, None, timeout).await,
                None => Err(e),
            },
            reply => reply,
        }
    }

    /// Stops the actor or supervisor at `address` for good (children first,
    /// in reverse start order) and waits. Its supervisor does not restart it,
    /// and the durable actors stopped are forgotten with their state (see
    /// [`crate::actor::durable`]).
    ///
    /// # Errors
    ///
    /// [`CallError::UnknownAddress`]; [`CallError::NotDurable`] if it
    /// stopped but the store kept what it should forget.
    pub async fn stop(&self, address: &str) -> Result<(), CallError> {
        if address == ROOT {
            self.shutdown().await;
            return Ok(());
        }
        self.inner.stop_for_good(address).await
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
        let template = self.inner.target_template(&spec);
        self.inner.routing.bind(&self.inner.registry, &self.inner.catalog, &actor, interface, spec, template)
    }

    /// Every actor, in start order.
    pub fn actors(&self) -> Vec<ActorInfo> {
        self.inner.registry.all().iter().map(ActorRef::info).collect()
    }

    /// The children an actor supervises, in start order.
    pub fn children_of(&self, address: &str) -> Vec<Address> {
        self.inner.tree.info(address).map(|n| n.children.into_iter().map(|c| c.address).collect()).unwrap_or_default()
    }

    /// The supervision tree, from the root.
    pub fn tree(&self) -> TreeNode {
        self.inner
            .tree
            .view(ROOT)
            .unwrap_or_else(|| TreeNode::Supervisor { info: self.inner.root().info(), nodes: Vec::new() })
    }

    /// Lifecycle events from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Messages that could not be delivered or were not handled, so far.
    pub fn dead_letters(&self) -> u64 {
        self.inner.dead_letters.total()
    }

    /// The host's metrics in the Prometheus text format (version 0.0.4,
    /// [`crate::metrics::CONTENT_TYPE`]): see [`crate::metrics`] for the
    /// series.
    pub fn metrics(&self) -> String {
        let commits = self.inner.journal.as_ref().and_then(|j| j.commit_times());
        crate::metrics::render(self, &self.inner.dead_letters, commits)
    }

    /// The registry, for the metrics.
    pub(crate) fn registry(&self) -> &Registry {
        &self.inner.registry
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
        self.inner.resources.warm.close();
        self.inner.root().stop().await;
        // Anything left (an actor whose supervisor vanished mid-start).
        for actor in self.inner.registry.all().iter().rev() {
            actor.stop();
            actor.stopped().await;
        }
        info!("host stopped");
    }
}

impl HostInner {
    /// The host as an `Arc`, for what outlives a call (actors, tasks).
    fn arc(&self) -> Arc<HostInner> {
        self.me.upgrade().expect("a host outlives its running actors")
    }

    /// The root supervisor.
    fn root(&self) -> &SupervisorRef {
        self.root.get().expect("the root is set at construction")
    }

    /// The root gave up on a top-level child.
    fn root_gave_up(&self, child: &Address, failure: &Failure, policy: RootPolicy) {
        match policy {
            RootPolicy::KeepRunning => {
                error!(%child, %failure, "gave up on a top-level child; the rest of the host keeps running")
            }
            RootPolicy::Shutdown => {
                error!(%child, %failure, "gave up on a top-level child; shutting the host down (root policy)");
                self.gave_up.send_replace(Some(format!("gave up on `{child}`: {failure}")));
            }
        }
    }
}

/// How far ahead [`keep_a_timer_pending`] keeps its timer.
const TIMER_HEARTBEAT: Duration = Duration::from_millis(500);

/// Keeps a tokio timer pending at all times, at most [`TIMER_HEARTBEAT`]
/// ahead, until the host stops. tokio's time driver wakes the thread it
/// parks on whenever a timer earlier than its next wake-up is registered;
/// without another timer, every ask's timeout (seconds away) was such a
/// timer, and that wake-up cost each ask two context switches.
async fn keep_a_timer_pending(host: Weak<HostInner>) {
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
