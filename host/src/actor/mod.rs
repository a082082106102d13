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
//! The layer reaches the rest of the host (other actors, spawning,
//! stopping) only through the [`ActorSystem`] trait, implemented by
//! [`Host`](crate::Host): dependencies point down.

mod cell;
mod component;
mod data;
mod host_api;
mod incarnation;

pub use component::{ActorComponent, LoadError, Loader};
pub use data::ActorData;

pub(crate) use cell::start;
pub use host_api::{MAX_LOG_BYTES, MAX_TIMER_DELAY, Snapshot};

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use crate::engine::{ActorLimits, Failure};
use crate::grants::Grants;
use crate::message::{Address, CallError, DeadLetterReason, Envelope, Reply};
use crate::protocol::{Call, MessageError};

/// A boxed, sendable future, as returned by [`ActorSystem`] methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
        name: Option<String>,
        config: Vec<(String, String)>,
    ) -> BoxFuture<'a, Result<ActorRef, SpawnError>>;

    /// Removes a stopped actor from the address space.
    fn unregister(&self, actor: &ActorRef);

    /// Records a message that will never be handled.
    fn dead_letter(&self, to: &Address, what: &str, reason: DeadLetterReason);
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

/// Everything needed to start an actor.
#[derive(Debug, Clone)]
pub struct ActorSpec {
    /// Its address.
    pub address: Address,
    /// Its code.
    pub component: Arc<ActorComponent>,
    /// Its resource policy.
    pub limits: ActorLimits,
    /// What it may reach outside the sandbox.
    pub grants: Grants,
    /// Handed to `init`.
    pub config: Vec<(String, String)>,
    /// How it restarts after a failure.
    pub restart: RestartFrom,
    /// With [`RestartFrom::Snapshot`]: take a snapshot after every this many
    /// messages (at least 1).
    pub snapshot_every: u32,
    /// The actor that spawned it, if any.
    pub parent: Option<Address>,
    /// The manifest entry it was started from, if any.
    pub group: Option<String>,
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
    /// Replacing a failed incarnation.
    Restarting = 2,
    /// Finishing its current message before stopping.
    Stopping = 3,
    /// Stopped on request.
    Stopped = 4,
    /// Stopped because it could not (re)start.
    Failed = 5,
}

impl ActorStatus {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => ActorStatus::Starting,
            1 => ActorStatus::Running,
            2 => ActorStatus::Restarting,
            3 => ActorStatus::Stopping,
            4 => ActorStatus::Stopped,
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

/// Requests to an actor that bypass its mailbox, handled between messages.
#[derive(Debug)]
pub(crate) enum Control {
    /// Stop after the current message.
    Stop,
}

/// The shared half of an actor: what senders and the host see.
pub(crate) struct ActorShared {
    address: Address,
    mailbox: mpsc::Sender<Envelope>,
    control: mpsc::UnboundedSender<Control>,
    component: RwLock<Arc<ActorComponent>>,
    limits: ActorLimits,
    parent: Option<Address>,
    group: Option<String>,
    status: AtomicU8,
    stats: ActorStats,
    children: Mutex<Vec<Address>>,
    timers: Mutex<HashMap<u64, AbortHandle>>,
    next_timer: AtomicU64,
    pending_children: AtomicU32,
    done: watch::Sender<bool>,
}

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
    pub mailbox: mpsc::Receiver<Envelope>,
    pub control: mpsc::UnboundedReceiver<Control>,
}

impl ActorRef {
    /// Creates the handle and mailbox of an actor that has not started yet.
    pub(crate) fn create(spec: &ActorSpec) -> (ActorRef, Inbox) {
        let (tx, rx) = mpsc::channel(spec.limits.mailbox);
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (done, _) = watch::channel(false);
        let shared = ActorShared {
            address: spec.address.clone(),
            mailbox: tx,
            control: ctl_tx,
            component: RwLock::new(spec.component.clone()),
            limits: spec.limits.clone(),
            parent: spec.parent.clone(),
            group: spec.group.clone(),
            status: AtomicU8::new(ActorStatus::Starting as u8),
            stats: ActorStats::default(),
            children: Mutex::new(Vec::new()),
            timers: Mutex::new(HashMap::new()),
            next_timer: AtomicU64::new(1),
            pending_children: AtomicU32::new(0),
            done,
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
        self.0.component.read().unwrap_or_else(|e| e.into_inner()).clone()
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
        self.0.mailbox.max_capacity() - self.0.mailbox.capacity()
    }

    /// Parses and type-checks a WAVE call against its protocol and size limit.
    ///
    /// # Errors
    ///
    /// A [`MessageError`] naming the expected signature.
    pub fn parse(&self, text: &str) -> Result<Call, MessageError> {
        self.component().protocol().parse(text, self.0.limits.max_message_bytes)
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

    /// Sends an ask and waits for its reply, at most `timeout`.
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
        self.enqueue(Envelope { call, reply: Some(tx), from, waiting })?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(CallError::Stopped(self.0.address.clone())),
            Err(_) => Err(CallError::Timeout(timeout)),
        }
    }

    fn enqueue(&self, envelope: Envelope) -> Result<(), CallError> {
        use mpsc::error::TrySendError;
        match self.0.mailbox.try_send(envelope) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(CallError::MailboxFull(self.0.address.clone())),
            Err(TrySendError::Closed(_)) => Err(CallError::Stopped(self.0.address.clone())),
        }
    }

    /// Asks the actor to stop after its current message. Its children stop
    /// first, in reverse start order; queued messages become dead letters
    /// (asks get [`CallError::Stopped`]). Returns at once; use
    /// [`ActorRef::stopped`] to wait.
    pub fn stop(&self) {
        if !self.status().is_terminal() {
            let _ = self.0.control.send(Control::Stop);
        }
    }

    /// Resolves once the actor has stopped for good.
    pub async fn stopped(&self) {
        let mut rx = self.0.done.subscribe();
        let _ = rx.wait_for(|done| *done).await;
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
            mailbox_capacity: self.0.mailbox.max_capacity(),
            handled: s.handled.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            restarts: s.restarts.load(Ordering::Relaxed),
            fuel_used: s.fuel_used.load(Ordering::Relaxed),
            memory: s.memory.load(Ordering::Relaxed),
            memory_peak: s.memory_peak.load(Ordering::Relaxed),
            parent: self.0.parent.clone(),
            last_failure: s.last_failure.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// Its live children, in start order.
    pub fn children(&self) -> Vec<Address> {
        self.0.children.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reserves room for one more child, if the `max-children` quota allows.
    pub(crate) fn reserve_child(&self) -> bool {
        let live = self.children().len() as u32;
        let pending = self.0.pending_children.fetch_add(1, Ordering::AcqRel);
        if live + pending >= self.0.limits.max_children {
            self.0.pending_children.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Completes a reservation: records the child if it started.
    pub(crate) fn child_started(&self, child: Option<&Address>) {
        self.0.pending_children.fetch_sub(1, Ordering::AcqRel);
        if let Some(child) = child {
            self.0.children.lock().unwrap_or_else(|e| e.into_inner()).push(child.clone());
        }
    }

    pub(crate) fn forget_child(&self, child: &Address) {
        self.0.children.lock().unwrap_or_else(|e| e.into_inner()).retain(|c| c != child);
    }

    pub(crate) fn stats(&self) -> &ActorStats {
        &self.0.stats
    }

    pub(crate) fn record_failure(&self, failure: &Failure) {
        self.0.stats.failures.fetch_add(1, Ordering::Relaxed);
        *self.0.stats.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure.clone());
    }

    pub(crate) fn mark_done(&self) {
        self.0.done.send_replace(true);
    }

    /// Registers a pending timer, if the `max-timers` quota allows.
    pub(crate) fn add_timer(&self, make: impl FnOnce(u64) -> AbortHandle) -> Option<u64> {
        let mut timers = self.0.timers.lock().unwrap_or_else(|e| e.into_inner());
        if timers.len() as u32 >= self.0.limits.max_timers {
            return None;
        }
        let id = self.0.next_timer.fetch_add(1, Ordering::Relaxed);
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

    fn cancel_all_timers(&self) {
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
