//! The actor layer: an actor's handle ([`ActorRef`]), its bounded mailbox,
//! its incarnations (one wasmtime `Store` each), the message loop that runs
//! them, and the `troupe:actor/host` API its guest may import.
//!
//! # The model
//!
//! An actor is a *cell* that outlives its incarnations. The cell owns the
//! mailbox and the address; an incarnation owns a `Store` and the component
//! instance in it. Messages are handled one at a time, each under a fresh
//! CPU budget. When a call leaves wasm with an error (a trap, fuel or
//! deadline exhausted, the memory limit), the store is poisoned — wasmtime
//! refuses every later call into it — so the cell drops that incarnation,
//! reports the failure (to the asker, to the log, as a dead letter) and
//! starts a new one from the component's cached `InstancePre`, fresh or
//! from the last snapshot. Messages queued behind the failed one stay in
//! the mailbox and go to the new incarnation in order.
//!
//! What happens after a failure is not the cell's decision: the cell drops
//! the poisoned incarnation, reports the exit to its supervisor and waits,
//! *down*, for a directive (restart after a delay, or stop); see
//! [`crate::supervision`]. While it is down its mailbox keeps accepting
//! messages.
//!
//! # Monitors and links
//!
//! An actor (or the host) may *monitor* another: each time the other goes
//! down, the watcher gets a `down` notice (address, reason, whether it is
//! gone for good). Two actors may be *linked*: when one fails, the other
//! fails too (a `linked` failure), unless it exports
//! `troupe:actor/watcher`, in which case it gets a `down` notice instead,
//! like an Erlang process trapping exits. Linked failures propagate along
//! chains of links but never back to an actor already in the chain.
//!
//! The layer reaches the rest of the host (other actors, spawning,
//! supervisors) only through the [`ActorSystem`] trait, implemented by
//! [`Host`](crate::Host): dependencies point down.

pub mod binding;
mod cell;
mod component;
mod data;
mod exports;
mod hibernation;
mod host_api;
mod incarnation;
mod queue;
pub mod swap;

pub use component::{ActorComponent, LoadError, Loader};
pub use data::ActorData;
pub use swap::{CodeVersion, DEFAULT_PROBATION, StateTransfer, SwapError, SwapOptions, SwapReport};

pub(crate) use cell::start;
pub use host_api::{MAX_LOG_BYTES, MAX_TIMER_DELAY, Snapshot};

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::AbortHandle;

use crate::engine::{ActorLimits, Failure};
use crate::events::EventBus;
use crate::grants::Grants;
use crate::message::{Address, Ask, CallError, DeadLetterReason, Envelope, Reply};
use crate::protocol::{Call, MessageError};
use crate::supervision::{RestartType, SupervisorSpec};
use binding::{Binding, BindingSpec, interface_key};
use queue::{Queue, Receiver};
use wasmtime::component::Val;

/// A boxed, sendable future, as returned by [`ActorSystem`] methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How an incarnation ended, as reported to the actor's supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The actor stopped itself (`stop` on its own address).
    Normal,
    /// The actor failed.
    Failed(Failure),
}

/// A notice that a watched actor went down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownNotice {
    /// The actor that went down.
    pub address: Address,
    /// Why.
    pub reason: DownReason,
    /// Gone for good (true), or being restarted by its supervisor (false).
    pub gone: bool,
}

/// Why an actor went down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DownReason {
    /// It stopped itself, or was stopped or terminated.
    Stopped,
    /// It failed.
    Failed(Failure),
}

/// How a guest asked for a child (the WIT `spawn-options`).
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// The child's address; generated under the parent's when absent.
    pub name: Option<String>,
    /// Laid over the component entry's configuration.
    pub config: Vec<(String, String)>,
    /// How the child restarts.
    pub restart: RestartType,
    /// A named supervisor to place the child under, instead of the parent.
    pub supervisor: Option<String>,
    /// Link the child to the parent.
    pub link: bool,
    /// Bindings of the child's imports, laid over its entry's.
    pub bindings: Vec<(String, BindingSpec)>,
}

/// What the actor layer needs from the host around it.
pub trait ActorSystem: Send + Sync + 'static {
    /// The actor at `address`, if it is running.
    fn lookup(&self, address: &str) -> Option<ActorRef>;

    /// Starts a child of `parent` from the component the host knows as
    /// `component`, and waits until it has started (its `init` returned).
    fn spawn_child<'a>(
        &'a self,
        parent: &'a ActorRef,
        component: &'a str,
        options: SpawnOptions,
    ) -> BoxFuture<'a, Result<ActorRef, SpawnError>>;

    /// Stops `target` for good through its supervisor (no restart), with
    /// its own children first.
    fn stop_actor(&self, target: &ActorRef);

    /// An incarnation of `actor` ended; its supervisor decides what next.
    fn child_down(&self, actor: &ActorRef, exit: Exit);

    /// `actor` started a new incarnation after being down; `from_snapshot`
    /// says whether it kept its state (and so knows its children).
    fn restarted(&self, actor: &ActorRef, from_snapshot: bool);

    /// Stops the children `actor` supervises, in reverse start order, and
    /// waits for them.
    fn stop_children<'a>(&'a self, actor: &'a ActorRef) -> BoxFuture<'a, ()>;

    /// Removes a stopped actor from the address space.
    fn unregister(&self, actor: &ActorRef);

    /// Records a message that will never be handled.
    fn dead_letter(&self, to: &Address, what: &str, reason: DeadLetterReason);

    /// Where lifecycle events go.
    fn events(&self) -> &EventBus;

    /// The actors a call through `binding` goes to (one, or every member
    /// for a broadcast); `key` is the value a `hash-on` router hashes.
    ///
    /// # Errors
    ///
    /// A sentence saying why there is no target.
    fn route(&self, binding: &Binding, key: Option<&Val>) -> Result<Vec<ActorRef>, String>;

    /// Every instance slot is taken: puts the awake actor that has been
    /// idle longest (and can hibernate) to sleep, other than `asking`.
    /// Resolves to whether a slot was freed.
    fn free_a_slot<'a>(&'a self, asking: &'a Address) -> BoxFuture<'a, bool>;

    /// `actor` (which can hibernate) is awake and so holds a slot (`true`),
    /// or asleep (`false`): the candidates [`Self::free_a_slot`] looks at.
    fn set_awake(&self, actor: &ActorRef, awake: bool);

    /// Binds `actor`'s imported `interface` to `spec`, type-checked.
    ///
    /// # Errors
    ///
    /// A [`binding::BindError`] naming the problem.
    fn bind(&self, actor: &ActorRef, interface: &str, spec: BindingSpec) -> Result<(), binding::BindError>;
}

/// Why a spawn failed.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The address is taken.
    #[error("the address `{0}` is already taken; pick another name or stop that actor first")]
    NameTaken(Address),
    /// The name is not a valid address.
    #[error("invalid actor name: {0}")]
    InvalidName(String),
    /// The host knows no component by this name.
    #[error("no component named `{name}`; known components: {known}")]
    UnknownComponent {
        /// The name asked for.
        name: String,
        /// The names the host knows.
        known: String,
    },
    /// The component could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The limits are invalid.
    #[error(transparent)]
    Limits(#[from] crate::engine::LimitsError),
    /// A directory grant cannot be honoured.
    #[error(transparent)]
    Grant(#[from] crate::grants::GrantError),
    /// A binding of the child's imports was refused.
    #[error(transparent)]
    Bind(#[from] binding::BindError),
    /// The named supervisor does not exist.
    #[error("no supervisor named `{0}`; `troupe tree` lists them")]
    UnknownSupervisor(String),
    /// The actor failed to start.
    #[error("`{address}` failed to start: {failure}")]
    Start {
        /// The actor.
        address: Address,
        /// Why.
        failure: Failure,
    },
    /// A quota is exhausted.
    #[error("quota exceeded: {0}")]
    Quota(String),
    /// The host is shutting down.
    #[error("the host is shutting down")]
    ShuttingDown,
}

/// Where an actor's state comes from when it restarts after a failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartFrom {
    /// A fresh instance, initialised with `init(config)`: the failure
    /// loses the actor's state.
    #[default]
    Init,
    /// The last snapshot, taken every `snapshot-every` messages, if the
    /// actor exports `persistence`; else like `Init`. With
    /// `snapshot-every = 1` the failed message is as if it never happened.
    Snapshot,
}

/// Default grace period (CPU time) for an actor's `shutdown.stop` export.
pub const DEFAULT_SHUTDOWN: Duration = Duration::from_secs(5);

/// How actors started from one component entry behave: resources, sandbox,
/// configuration, state and supervision.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorPolicy {
    /// Resource limits.
    pub limits: ActorLimits,
    /// What it may reach outside the sandbox.
    pub grants: Grants,
    /// Handed to `init`.
    pub config: Vec<(String, String)>,
    /// Where its state comes from when it restarts.
    pub restore: RestartFrom,
    /// With [`RestartFrom::Snapshot`]: take a snapshot after every this many
    /// messages...
    pub snapshot_every: Option<u32>,
    /// ...and/or once this long has passed since the last one (checked
    /// after each message). With neither, after every message.
    pub snapshot_interval: Option<Duration>,
    /// Hibernate after this long without a message: drop the instance and
    /// keep only its snapshot until the next message (like OTP's
    /// `hibernate_after`). Needs the component to export
    /// `troupe:actor/persistence`.
    pub hibernate_after: Option<Duration>,
    /// When its supervisor restarts it.
    pub restart: RestartType,
    /// How it supervises the children it spawns.
    pub supervision: SupervisorSpec,
    /// CPU-time grace period for its `shutdown.stop` export.
    pub shutdown: Duration,
    /// Bindings of its imported protocol interfaces.
    pub links: Vec<(String, BindingSpec)>,
}

impl Default for ActorPolicy {
    fn default() -> Self {
        ActorPolicy {
            limits: ActorLimits::default(),
            grants: Grants::default(),
            config: Vec::new(),
            restore: RestartFrom::default(),
            snapshot_every: None,
            snapshot_interval: None,
            hibernate_after: None,
            restart: RestartType::default(),
            supervision: SupervisorSpec::default(),
            shutdown: DEFAULT_SHUTDOWN,
            links: Vec::new(),
        }
    }
}

/// Everything needed to start an actor.
#[derive(Debug, Clone)]
pub struct ActorSpec {
    /// Its address.
    pub address: Address,
    /// Its code.
    pub component: Arc<ActorComponent>,
    /// Its policy.
    pub policy: ActorPolicy,
    /// The actor that spawned it, if any.
    pub parent: Option<Address>,
    /// The manifest entry it was started from, if any.
    pub group: Option<String>,
}

impl ActorSpec {
    /// The engine its code runs on: the fuel-metered one if it has a fuel
    /// budget.
    pub fn engine_kind(&self) -> crate::engine::EngineKind {
        if self.policy.limits.fuel.is_some() {
            crate::engine::EngineKind::Metered
        } else {
            crate::engine::EngineKind::Epoch
        }
    }
}

/// Lifecycle state of an actor, as shown by `troupe ps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum ActorStatus {
    /// Instantiating and running `init` or `restore`.
    Starting = 0,
    /// Handling messages, or idle.
    Running = 1,
    /// Down, waiting for its supervisor to restart it (or in its backoff
    /// delay); messages still queue.
    Restarting = 2,
    /// Finishing its current message before stopping.
    Stopping = 3,
    /// Stopped on request.
    Stopped = 4,
    /// Stopped because it could not (re)start.
    Failed = 5,
    /// Idle past its `hibernate-after` period: its instance is gone and its
    /// snapshot kept; the next message wakes it.
    Hibernating = 6,
}

impl ActorStatus {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => ActorStatus::Starting,
            1 => ActorStatus::Running,
            2 => ActorStatus::Restarting,
            3 => ActorStatus::Stopping,
            4 => ActorStatus::Stopped,
            6 => ActorStatus::Hibernating,
            _ => ActorStatus::Failed,
        }
    }

    /// Has the actor stopped for good?
    pub fn is_terminal(self) -> bool {
        matches!(self, ActorStatus::Stopped | ActorStatus::Failed)
    }
}

/// Counters an actor keeps about itself. Read with relaxed ordering: they
/// are for observation, not synchronisation.
#[derive(Debug, Default)]
pub struct ActorStats {
    handled: AtomicU64,
    batched: AtomicU64,
    typed: AtomicU64,
    failures: AtomicU64,
    restarts: AtomicU64,
    fuel_used: AtomicU64,
    memory: AtomicU64,
    memory_peak: AtomicU64,
    incarnation: AtomicU64,
    last_failure: Mutex<Option<Failure>>,
}

/// A point-in-time copy of an actor's state and counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActorInfo {
    /// Its address.
    pub address: Address,
    /// The component's name.
    pub component: String,
    /// The component's version, if known.
    pub version: Option<String>,
    /// The component's content hash (first 12 hex digits).
    pub hash: String,
    /// Lifecycle state.
    pub status: ActorStatus,
    /// Messages waiting in the mailbox.
    pub mailbox: usize,
    /// Mailbox capacity.
    pub mailbox_capacity: usize,
    /// Messages handled successfully.
    pub handled: u64,
    /// Of those, the messages handled several to one call into the guest,
    /// through a batch entry point (see `troupe::batch`).
    #[serde(default)]
    pub batched: u64,
    /// Of those, the messages handled one to a call through the typed
    /// call entry point (see `troupe::batch`).
    #[serde(default)]
    pub typed: u64,
    /// Messages (or starts) that failed.
    pub failures: u64,
    /// Incarnations started after a failure.
    pub restarts: u64,
    /// Fuel consumed, all messages together (0 without a fuel budget).
    pub fuel_used: u64,
    /// Linear memory in use, bytes.
    pub memory: u64,
    /// Highest linear memory use, bytes.
    pub memory_peak: u64,
    /// The spawning actor, if any.
    pub parent: Option<Address>,
    /// The most recent failure.
    pub last_failure: Option<Failure>,
}

/// Requests to an actor that bypass its mailbox, handled between messages
/// (supervisor directives, link signals, down notices).
#[derive(Debug)]
pub(crate) enum Control {
    /// Stop for good after the current message: not an exit, nobody
    /// restarts it. `ack` resolves once it has stopped.
    Stop { ack: Option<oneshot::Sender<()>> },
    /// Drop the incarnation (a sibling failed) and wait, down, for a
    /// restart or a stop.
    Terminate { ack: oneshot::Sender<()> },
    /// Start a new incarnation after `delay`; `ack` gets the outcome.
    Restart { delay: Duration, ack: Option<oneshot::Sender<Result<(), Failure>>> },
    /// Fail now (a linked actor failed); `chain` is the link path so far.
    Fail { failure: Box<Failure>, chain: Box<[Address]> },
    /// The guest stopped itself: a normal exit after the current message.
    Exit,
    /// Deliver a `down` notice to the `watcher` export.
    Down(Box<DownNotice>),
    /// Hot-swap between messages (see [`swap`]).
    Swap(Box<SwapRequest>),
    /// Hibernate now if idle and able to (the host needs its instance
    /// slot); `ack` says whether it did.
    Hibernate { ack: oneshot::Sender<bool> },
    /// Keep the new code of a held swap.
    SwapCommit,
    /// Reinstate the old code of a held swap.
    SwapRollback { ack: oneshot::Sender<()> },
}

/// A hot swap to `component`. With `hold`, the old code is kept after
/// probation until a `SwapCommit` or `SwapRollback` (rolling swaps). With
/// `state`, that state is restored instead of the old code's snapshot
/// (operator restores, fuzzing).
#[derive(Debug)]
pub(crate) struct SwapRequest {
    pub component: Arc<ActorComponent>,
    pub options: SwapOptions,
    pub hold: bool,
    pub state: Option<Snapshot>,
    pub ack: oneshot::Sender<Result<SwapReport, SwapError>>,
}

/// Who wants to hear when an actor goes down.
#[derive(Debug, Clone)]
pub(crate) enum Watcher {
    /// An actor's `watcher.down` export (a monitor).
    Actor { id: u64, watcher: Address },
    /// A host-side monitor (tests, embedders).
    Host { id: u64, tx: mpsc::UnboundedSender<DownNotice> },
}

/// How many earlier code versions an actor remembers, to map messages
/// queued before a hot swap (or timers set before one) onto the new code.
const CODE_HISTORY: usize = 16;

/// The code an actor runs, and the versions it ran before.
struct Code {
    generation: u32,
    component: Arc<ActorComponent>,
    history: Vec<(u32, Arc<ActorComponent>)>,
}

/// The shared half of an actor: what senders and the host see.
pub(crate) struct ActorShared {
    address: Address,
    mailbox: Arc<Queue<Envelope>>,
    control: Arc<Queue<Control>>,
    code: RwLock<Code>,
    limits: ActorLimits,
    parent: Option<Address>,
    group: Option<String>,
    status: AtomicU8,
    stats: ActorStats,
    timers: Mutex<HashMap<u64, AbortHandle>>,
    next_id: AtomicU64,
    watchers: Mutex<Vec<Watcher>>,
    monitoring: Mutex<Vec<(u64, Address)>>,
    links: Mutex<Vec<Address>>,
    bindings: RwLock<HashMap<String, Arc<Binding>>>,
    /// Set once the actor has stopped for good; `stopped()` waits on it.
    /// (A `Notify` beside a flag: a `watch` channel took 350 bytes more per
    /// actor.)
    done: AtomicBool,
    done_notify: Notify,
    /// While it is awake, idle and able to hibernate: since when, in
    /// nanoseconds after [`idle_epoch`] (0 otherwise). A host whose
    /// instance pool is full puts the longest idle such actor to sleep.
    idle_since: AtomicU64,
}

/// The instant idle stamps count from.
fn idle_epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// Monitor ids are unique across the host, so that a watcher can cancel a
/// monitor by id alone.
static NEXT_MONITOR: AtomicU64 = AtomicU64::new(1);

/// A handle to a running actor: send it messages, ask it, stop it, read
/// its counters. Cheap to clone; holding one does not keep the actor alive.
#[derive(Clone)]
pub struct ActorRef(Arc<ActorShared>);

impl std::fmt::Debug for ActorRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ActorRef").field(&self.0.address).finish()
    }
}

/// The receiving halves handed to the actor's cell task.
pub(crate) struct Inbox {
    pub mailbox: Receiver<Envelope>,
    pub control: Receiver<Control>,
}

impl ActorRef {
    /// Creates the handle and mailbox of an actor that has not started yet.
    pub(crate) fn create(spec: &ActorSpec) -> (ActorRef, Inbox) {
        let (tx, rx) = queue::queue(spec.policy.limits.mailbox);
        let (ctl_tx, ctl_rx) = queue::queue(usize::MAX);
        let shared = ActorShared {
            address: spec.address.clone(),
            mailbox: tx,
            control: ctl_tx,
            code: RwLock::new(Code { generation: 0, component: spec.component.clone(), history: Vec::new() }),
            limits: spec.policy.limits.clone(),
            parent: spec.parent.clone(),
            group: spec.group.clone(),
            status: AtomicU8::new(ActorStatus::Starting as u8),
            stats: ActorStats::default(),
            timers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            watchers: Mutex::new(Vec::new()),
            monitoring: Mutex::new(Vec::new()),
            links: Mutex::new(Vec::new()),
            bindings: RwLock::new(HashMap::new()),
            done: AtomicBool::new(false),
            done_notify: Notify::new(),
            idle_since: AtomicU64::new(0),
        };
        (ActorRef(Arc::new(shared)), Inbox { mailbox: rx, control: ctl_rx })
    }

    /// Its address.
    pub fn address(&self) -> &Address {
        &self.0.address
    }

    /// Its limits.
    pub fn limits(&self) -> &ActorLimits {
        &self.0.limits
    }

    /// The component it currently runs.
    pub fn component(&self) -> Arc<ActorComponent> {
        self.0.code.read().unwrap_or_else(|e| e.into_inner()).component.clone()
    }

    /// Makes `component` the actor's code: messages checked from now on
    /// are checked against its protocol. Returns the new generation. Only
    /// the actor's own cell calls this.
    pub(crate) fn set_component(&self, component: Arc<ActorComponent>) -> u32 {
        let mut code = self.0.code.write().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::replace(&mut code.component, component);
        let generation = code.generation;
        code.history.push((generation, old));
        if code.history.len() > CODE_HISTORY {
            code.history.remove(0);
        }
        code.generation = generation.wrapping_add(1);
        code.generation
    }

    /// Maps a call checked against an earlier version of the actor's code
    /// onto the current protocol.
    ///
    /// # Errors
    ///
    /// [`MessageError::UnknownFunction`] if the function is gone.
    pub(crate) fn current_call(&self, call: &mut Call) -> Result<(), MessageError> {
        let code = self.0.code.read().unwrap_or_else(|e| e.into_inner());
        if call.generation == code.generation {
            return Ok(());
        }
        let old = code.history.iter().find(|(g, _)| *g == call.generation).map(|(_, c)| c);
        let mapped = old.and_then(|old| old.protocol().remap(code.component.protocol())[call.func as usize]);
        match mapped {
            Some(func) => {
                call.func = func;
                call.generation = code.generation;
                Ok(())
            }
            None => Err(MessageError::UnknownFunction {
                name: old.map(|o| o.protocol().function(call.func).name.clone()).unwrap_or_default(),
                accepted: format!("(the function was removed by a hot swap) {}", code.component.protocol().summary()),
            }),
        }
    }

    /// The manifest entry it was started from, if any.
    pub fn group(&self) -> Option<&str> {
        self.0.group.as_deref()
    }

    /// The actor that spawned it, if any.
    pub fn parent(&self) -> Option<&Address> {
        self.0.parent.as_ref()
    }

    /// Its lifecycle state.
    pub fn status(&self) -> ActorStatus {
        ActorStatus::from_u8(self.0.status.load(Ordering::Acquire))
    }

    pub(crate) fn set_status(&self, status: ActorStatus) {
        self.0.status.store(status as u8, Ordering::Release);
    }

    /// Messages waiting in its mailbox.
    pub fn mailbox_len(&self) -> usize {
        self.0.mailbox.len()
    }

    /// Parses and type-checks a WAVE call against its protocol and size limit.
    ///
    /// # Errors
    ///
    /// A [`MessageError`] naming the expected signature.
    pub fn parse(&self, text: &str) -> Result<Call, MessageError> {
        let code = self.0.code.read().unwrap_or_else(|e| e.into_inner());
        let mut call = code.component.protocol().parse(text, self.0.limits.max_message_bytes)?;
        call.generation = code.generation;
        Ok(call)
    }

    /// Queues a tell. `Ok` means queued, not handled.
    ///
    /// # Errors
    ///
    /// [`CallError::MailboxFull`] (nothing was queued) or
    /// [`CallError::Stopped`].
    pub fn tell(&self, call: Call, from: Option<Address>) -> Result<(), CallError> {
        self.enqueue(Envelope::tell(call, from))
    }

    /// Sends an ask and waits for its reply, at most `timeout`
    /// ([`NO_TIMEOUT`](crate::message::NO_TIMEOUT) arms no timer).
    ///
    /// `waiting` is the ask chain the sender is part of (the actors waiting
    /// on it); an ask to one of them fails at once with
    /// [`CallError::Cycle`].
    ///
    /// # Errors
    ///
    /// Every [`CallError`] but `UnknownAddress`.
    pub async fn ask(
        &self,
        call: Call,
        from: Option<Address>,
        waiting: Option<Arc<[Address]>>,
        timeout: Duration,
    ) -> Reply {
        if let Some(chain) = &waiting
            && chain.contains(&self.0.address)
        {
            let mut cycle: Vec<Address> = chain.to_vec();
            cycle.push(self.0.address.clone());
            return Err(CallError::Cycle(cycle));
        }
        let (tx, rx) = oneshot::channel();
        self.enqueue(Envelope { call, from, ask: Some(Box::new(Ask { reply: tx, waiting })) })?;
        // A timer is an entry put into and taken out of tokio's timer wheel
        // under its lock: a tenth of an ask to an idle actor.
        let reply =
            if timeout == crate::message::NO_TIMEOUT { Ok(rx.await) } else { tokio::time::timeout(timeout, rx).await };
        match reply {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(CallError::Stopped(self.0.address.clone())),
            Err(_) => Err(CallError::Timeout(timeout)),
        }
    }

    fn enqueue(&self, envelope: Envelope) -> Result<(), CallError> {
        match self.0.mailbox.send(envelope) {
            Ok(()) => Ok(()),
            Err(queue::SendError::Full) => Err(CallError::MailboxFull(self.0.address.clone())),
            Err(queue::SendError::Closed) => Err(CallError::Stopped(self.0.address.clone())),
        }
    }

    /// Asks the actor to stop for good after its current message, without
    /// consulting its supervisor (use [`Host::stop`](crate::Host::stop) to
    /// also remove it from its supervisor). Its children stop first, in
    /// reverse start order; queued messages become dead letters (asks get
    /// [`CallError::Stopped`]). Returns at once; use [`ActorRef::stopped`]
    /// to wait.
    pub fn stop(&self) {
        if !self.status().is_terminal() {
            let _ = self.0.control.send(Control::Stop { ack: None });
        }
    }

    /// Is a control request waiting to be handled between messages?
    pub(crate) fn control_pending(&self) -> bool {
        self.0.control.len() > 0
    }

    pub(crate) fn control(&self, control: Control) -> bool {
        self.0.control.send(control).is_ok()
    }

    /// Watches this actor from the host: the receiver gets a notice each
    /// time it goes down. Returns the monitor id and the receiver.
    pub fn monitor(&self) -> (u64, mpsc::UnboundedReceiver<DownNotice>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = NEXT_MONITOR.fetch_add(1, Ordering::Relaxed);
        self.0.watchers.lock().unwrap_or_else(|e| e.into_inner()).push(Watcher::Host { id, tx });
        (id, rx)
    }

    /// Makes `watcher` monitor this actor; returns the monitor id.
    pub(crate) fn add_monitor(&self, watcher: &ActorRef) -> u64 {
        let id = NEXT_MONITOR.fetch_add(1, Ordering::Relaxed);
        self.0
            .watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Watcher::Actor { id, watcher: watcher.address().clone() });
        watcher.0.monitoring.lock().unwrap_or_else(|e| e.into_inner()).push((id, self.address().clone()));
        id
    }

    /// Which actor this actor's monitor `id` watches, forgetting it.
    pub(crate) fn take_monitoring(&self, id: u64) -> Option<Address> {
        let mut monitoring = self.0.monitoring.lock().unwrap_or_else(|e| e.into_inner());
        let i = monitoring.iter().position(|(m, _)| *m == id)?;
        Some(monitoring.remove(i).1)
    }

    /// Removes a monitor by id; false if unknown.
    pub fn demonitor(&self, id: u64) -> bool {
        let mut watchers = self.0.watchers.lock().unwrap_or_else(|e| e.into_inner());
        let before = watchers.len();
        watchers.retain(|w| match w {
            Watcher::Actor { id: i, .. } | Watcher::Host { id: i, .. } => *i != id,
        });
        watchers.len() != before
    }

    pub(crate) fn watchers(&self) -> Vec<Watcher> {
        self.0.watchers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn clear_watchers(&self) {
        self.0.watchers.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Links this actor and `other` (both directions).
    pub fn link(&self, other: &ActorRef) {
        if self.same(other) {
            return;
        }
        for (a, b) in [(self, other), (other, self)] {
            let mut links = a.0.links.lock().unwrap_or_else(|e| e.into_inner());
            if !links.contains(b.address()) {
                links.push(b.address().clone());
            }
        }
    }

    /// Removes the link between this actor and `other`; false if none.
    pub fn unlink(&self, other: &ActorRef) -> bool {
        let mut removed = false;
        for (a, b) in [(self, other), (other, self)] {
            let mut links = a.0.links.lock().unwrap_or_else(|e| e.into_inner());
            let before = links.len();
            links.retain(|l| l != b.address());
            removed |= links.len() != before;
        }
        removed
    }

    /// The binding of the imported interface `interface` (any version).
    pub fn binding(&self, interface: &str) -> Option<Arc<Binding>> {
        self.0.bindings.read().unwrap_or_else(|e| e.into_inner()).get(interface_key(interface)).cloned()
    }

    /// Every binding, by interface.
    pub fn bindings(&self) -> Vec<(String, BindingSpec)> {
        let bindings = self.0.bindings.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<(String, BindingSpec)> = bindings.iter().map(|(k, b)| (k.clone(), b.spec.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub(crate) fn set_binding(&self, interface: &str, spec: BindingSpec) {
        let mut bindings = self.0.bindings.write().unwrap_or_else(|e| e.into_inner());
        bindings.insert(interface_key(interface).to_string(), Arc::new(Binding::new(spec)));
    }

    pub(crate) fn remove_binding(&self, interface: &str) -> bool {
        self.0.bindings.write().unwrap_or_else(|e| e.into_inner()).remove(interface_key(interface)).is_some()
    }

    /// A call to this actor's `interface.function` with typed `args`, as an
    /// importer bound to it makes one.
    ///
    /// # Errors
    ///
    /// [`MessageError`] if the function is missing or the types differ.
    pub(crate) fn import_call(&self, interface: &str, function: &str, args: &[Val]) -> Result<Call, MessageError> {
        let code = self.0.code.read().unwrap_or_else(|e| e.into_inner());
        let protocol = code.component.protocol();
        let func = protocol.find(interface_key(interface), function).ok_or_else(|| MessageError::UnknownFunction {
            name: format!("{interface}.{function}"),
            accepted: protocol.summary(),
        })?;
        protocol.check(func, args)?;
        Ok(Call { func, args: args.into(), generation: code.generation })
    }

    /// The actors linked to this one.
    pub fn links(&self) -> Vec<Address> {
        self.0.links.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn drop_link(&self, other: &Address) {
        self.0.links.lock().unwrap_or_else(|e| e.into_inner()).retain(|l| l != other);
    }

    fn next_id(&self) -> u64 {
        self.0.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Resolves once the actor has stopped for good.
    pub async fn stopped(&self) {
        loop {
            let notified = self.0.done_notify.notified();
            tokio::pin!(notified);
            // Registered before the check: a stop in between still wakes us.
            notified.as_mut().enable();
            if self.0.done.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// A snapshot of its state and counters.
    pub fn info(&self) -> ActorInfo {
        let s = &self.0.stats;
        let component = self.component();
        ActorInfo {
            address: self.0.address.clone(),
            component: component.name.clone(),
            version: component.version.clone(),
            hash: component.short_hash(),
            status: self.status(),
            mailbox: self.mailbox_len(),
            mailbox_capacity: self.0.mailbox.capacity(),
            handled: s.handled.load(Ordering::Relaxed),
            batched: s.batched.load(Ordering::Relaxed),
            typed: s.typed.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            restarts: s.restarts.load(Ordering::Relaxed),
            fuel_used: s.fuel_used.load(Ordering::Relaxed),
            memory: s.memory.load(Ordering::Relaxed),
            memory_peak: s.memory_peak.load(Ordering::Relaxed),
            parent: self.0.parent.clone(),
            last_failure: s.last_failure.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    pub(crate) fn stats(&self) -> &ActorStats {
        &self.0.stats
    }

    pub(crate) fn record_failure(&self, failure: &Failure) {
        self.0.stats.failures.fetch_add(1, Ordering::Relaxed);
        *self.0.stats.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure.clone());
    }

    /// Notes that the actor waits, idle and able to hibernate, since `at`
    /// (`None`: it is busy, asleep, or cannot hibernate).
    pub(crate) fn set_idle_since(&self, at: Option<std::time::Instant>) {
        let stamp = at.map_or(0, |at| at.saturating_duration_since(idle_epoch()).as_nanos() as u64 + 1);
        self.0.idle_since.store(stamp, Ordering::Relaxed);
    }

    /// When it became idle and able to hibernate, if it is (a stamp to
    /// compare with other actors' only).
    pub(crate) fn idle_since(&self) -> Option<u64> {
        Some(self.0.idle_since.load(Ordering::Relaxed)).filter(|&stamp| stamp != 0)
    }

    pub(crate) fn mark_done(&self) {
        self.0.done.store(true, Ordering::Release);
        self.0.done_notify.notify_waiters();
    }

    /// Registers a pending timer, if the `max-timers` quota allows.
    pub(crate) fn add_timer(&self, make: impl FnOnce(u64) -> AbortHandle) -> Option<u64> {
        let mut timers = self.0.timers.lock().unwrap_or_else(|e| e.into_inner());
        if timers.len() as u32 >= self.0.limits.max_timers {
            return None;
        }
        let id = self.next_id();
        timers.insert(id, make(id));
        Some(id)
    }

    /// Forgets a timer; aborts it if `abort`. Returns whether it was pending.
    pub(crate) fn remove_timer(&self, id: u64, abort: bool) -> bool {
        let handle = self.0.timers.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        match handle {
            Some(h) => {
                if abort {
                    h.abort();
                }
                true
            }
            None => false,
        }
    }

    pub(crate) fn cancel_all_timers(&self) {
        let timers = std::mem::take(&mut *self.0.timers.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, handle) in timers {
            handle.abort();
        }
    }

    /// Is this the same actor (not merely the same address)?
    pub fn same(&self, other: &ActorRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl ActorStats {
    pub(crate) fn handled(&self) {
        self.handled.fetch_add(1, Ordering::Relaxed);
    }
    /// `n` messages handled in one call through a batch entry point.
    pub(crate) fn handled_batch(&self, n: u64) {
        self.handled.fetch_add(n, Ordering::Relaxed);
        self.batched.fetch_add(n, Ordering::Relaxed);
    }
    /// A message went through the typed call entry point (and is counted
    /// as handled separately).
    pub(crate) fn typed_call(&self) {
        self.typed.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn add_fuel(&self, fuel: u64) {
        self.fuel_used.fetch_add(fuel, Ordering::Relaxed);
    }
    pub(crate) fn set_memory(&self, used: u64, peak: u64) {
        self.memory.store(used, Ordering::Relaxed);
        self.memory_peak.fetch_max(peak, Ordering::Relaxed);
    }
    pub(crate) fn next_incarnation(&self) -> u64 {
        self.incarnation.fetch_add(1, Ordering::Relaxed) + 1
    }
}

#[cfg(test)]
mod tests {
    /// Requests sit in a `VecDeque`, whose buffer starts at 4 and doubles;
    /// small requests keep an actor that was ever stopped or swapped small.
    #[test]
    fn a_control_request_takes_at_most_32_bytes() {
        let size = std::mem::size_of::<super::Control>();
        assert!(size <= 32, "Control is {size} bytes; box the payload of the variant that grew");
    }

    /// Every actor's task holds one, awake or hibernating.
    #[test]
    fn an_absent_incarnation_takes_a_pointer() {
        let size = std::mem::size_of::<Option<super::incarnation::Incarnation>>();
        assert_eq!(size, std::mem::size_of::<usize>(), "keep Incarnation a box");
    }
}
