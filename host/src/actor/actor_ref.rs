//! [`ActorRef`]: the handle through which senders, supervisors and the host
//! reach an actor, and the shared half of the actor it points to (its
//! address, mailbox, control queue, the code it runs, its status and
//! counters).
//!
//! The other half, the actor's cell, is a task that owns the receiving
//! ends of the two queues and the current incarnation (see
//! [`super::cell`]). Concerns with state on both sides keep their
//! `ActorRef` methods in their own files: links and monitors in
//! `cell/links.rs`, bindings in `binding.rs`, control requests in
//! `control.rs`.
//!
//! A handle outlives the actor it points to. When that actor was a key of
//! a virtual component that passivated, a message sent through the
//! handle is not lost: the closed mailbox hands it back, and it goes to
//! the actor the host activates at the address for it (checked again
//! against that actor's code if it differs).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::Shared;
use tokio::sync::{Notify, oneshot};
use tokio::task::AbortHandle;

use super::binding::Binding;
use super::cell::Watcher;
use super::component::ActorComponent;
use super::control::Control;
use super::durable::{Durability, Journal, JournalError, Origin};
use super::queue::{self, Queue, Receiver};
use super::status::{MessageTimes, Tallies};
use super::system::{ActorSystem, BoxFuture};
use super::{ActorInfo, ActorLimits, ActorSpec, ActorStats, ActorStatus};
use crate::message::{Address, Ask, CallError, Envelope, NO_TIMEOUT, Reply, WireMessage};
use crate::protocol::{Call, MessageError};
use crate::sync::{Mutex, RwLock};

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
    pub(super) control: Arc<Queue<Control>>,
    code: RwLock<Code>,
    limits: ActorLimits,
    /// Its outbound HTTP grant, for `troupe ps --json`.
    http: Option<super::http_port::HttpAccess>,
    parent: Option<Address>,
    group: Option<String>,
    /// The status of the cell's phase, as its transition point last
    /// published it.
    status: AtomicU8,
    stats: ActorStats,
    /// How long its messages take and wait, while the host's metrics time
    /// messages (boxed: most hosts do not).
    times: Option<Box<MessageTimes>>,
    timers: Mutex<HashMap<u64, PendingTimer>>,
    next_id: AtomicU64,
    pub(super) watchers: Mutex<Vec<Watcher>>,
    pub(super) monitoring: Mutex<Vec<(u64, Address)>>,
    pub(super) links: Mutex<Vec<Address>>,
    pub(super) bindings: RwLock<HashMap<String, Arc<Binding>>>,
    /// Set once the actor has stopped for good; `stopped()` waits on it.
    done: AtomicBool,
    done_notify: Notify,
    /// While it is awake, idle and able to hibernate: since when, in
    /// nanoseconds after [`idle_epoch`] (0 otherwise). A host whose
    /// instance pool is full puts the longest idle such actor to sleep.
    idle_since: AtomicU64,
    /// For a durable actor: where its accepted tells go, and their numbers.
    durable: Option<Box<DurableInbox>>,
    /// Set when it passivated (see [`ActorRef::passivate`]): the host that
    /// activates its address again for a message it refused.
    passivated: OnceLock<Weak<dyn ActorSystem>>,
}

/// A timer armed and not fired yet.
struct PendingTimer {
    /// Its task, aborted to cancel it.
    task: AbortHandle,
    /// When it fires.
    due: std::time::Instant,
}

/// Why a message did not go into an actor's mailbox.
enum NotQueued {
    /// Refused, for this reason.
    Refused(CallError),
    /// The actor passivated: the message, handed back for the actor its
    /// address activates next.
    Passivated(Envelope),
}

impl From<CallError> for NotQueued {
    fn from(e: CallError) -> Self {
        NotQueued::Refused(e)
    }
}

/// The sending side of a durable actor's inbox (see
/// [`super::durable`]): tells are numbered and queued under one lock, so
/// that the mailbox holds them in the order of their numbers.
struct DurableInbox {
    journal: Arc<dyn Journal>,
    sequence: Mutex<Sequence>,
    /// The number of the last tell its committed state contains.
    committed: AtomicU64,
    /// Why its last commit failed, until one succeeds.
    unsaved: Mutex<Option<String>>,
}

/// The numbers of a durable actor's tells.
struct Sequence {
    /// The number the next tell gets.
    next: u64,
    /// The numbers of the tells in the mailbox, in mailbox order.
    queued: VecDeque<u64>,
    /// For each durable sender (or outside publisher), the last tell
    /// taken from it.
    taken: HashMap<Address, Taken>,
}

/// The last tell taken from one sender.
struct Taken {
    origin: Origin,
    /// Its write to the journal, until the next tell from the sender
    /// replaces it (`None` once recovered: durable). A copy sent again is
    /// acknowledged when the first is durable, not before.
    write: Option<Shared<BoxFuture<'static, Result<(), JournalError>>>>,
}

/// How a durable actor's handle starts: its journal and the tells
/// recovered from it, already numbered.
pub(crate) struct DurableStart {
    /// Its stable storage.
    pub journal: Arc<dyn Journal>,
    /// The number the next tell gets.
    pub next_seq: u64,
    /// The numbers of the recovered tells queued before any other.
    pub queued: Vec<u64>,
    /// The number of the last tell its committed state contains.
    pub committed: u64,
    /// For each durable sender, the origin of the last tell taken from it.
    pub taken: Vec<(Address, Origin)>,
}

/// The instant idle stamps count from.
fn idle_epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// A handle to a running actor: send it messages, ask it, stop it, read
/// its counters. Cheap to clone; holding one does not keep the actor alive.
#[derive(Clone)]
pub struct ActorRef(pub(super) Arc<ActorShared>);

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
    /// Creates the handle and mailbox of an actor that has not started yet
    /// (`durable` for a durable one; `timed` if the host's metrics time its
    /// messages).
    pub(crate) fn create(spec: &ActorSpec, durable: Option<DurableStart>, timed: bool) -> (ActorRef, Inbox) {
        let (tx, rx) = queue::queue(spec.policy.limits.mailbox);
        let (ctl_tx, ctl_rx) = queue::queue(usize::MAX);
        let shared = ActorShared {
            address: spec.address.clone(),
            mailbox: tx,
            control: ctl_tx,
            code: RwLock::new(Code { generation: 0, component: spec.component.clone(), history: Vec::new() }),
            limits: spec.policy.limits.clone(),
            http: spec.policy.grants.http.clone(),
            parent: spec.parent.clone(),
            group: spec.group.clone(),
            status: AtomicU8::new(ActorStatus::Starting as u8),
            stats: ActorStats::default(),
            times: timed.then(Box::default),
            timers: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            watchers: Mutex::new(Vec::new()),
            monitoring: Mutex::new(Vec::new()),
            links: Mutex::new(Vec::new()),
            bindings: RwLock::new(HashMap::new()),
            done: AtomicBool::new(false),
            done_notify: Notify::new(),
            idle_since: AtomicU64::new(0),
            durable: durable.map(|d| {
                Box::new(DurableInbox {
                    journal: d.journal,
                    sequence: Mutex::new(Sequence {
                        next: d.next_seq,
                        queued: d.queued.into(),
                        taken: d
                            .taken
                            .into_iter()
                            .map(|(sender, origin)| (sender, Taken { origin, write: None }))
                            .collect(),
                    }),
                    committed: AtomicU64::new(d.committed),
                    unsaved: Mutex::new(None),
                })
            }),
            passivated: OnceLock::new(),
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
        self.0.code.read().component.clone()
    }

    /// Runs `f` on the component it currently runs and its generation
    /// (see [`ActorRef::set_component`]), under the code's read lock.
    pub(crate) fn with_code<R>(&self, f: impl FnOnce(&ActorComponent, u32) -> R) -> R {
        let code = self.0.code.read();
        f(&code.component, code.generation)
    }

    /// Makes `component` the actor's code: messages checked from now on
    /// are checked against its protocol. Returns the new generation. Only
    /// the actor's own cell calls this.
    pub(crate) fn set_component(&self, component: Arc<ActorComponent>) -> u32 {
        let mut code = self.0.code.write();
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
        let code = self.0.code.read();
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

    /// The group it belongs to, if any (see [`ActorSpec::group`]).
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

    /// Publishes the status of the cell's new phase. Only the cell's
    /// transition point calls this.
    pub(super) fn publish_status(&self, status: ActorStatus) {
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
        self.with_code(|component, generation| {
            let mut call = component.protocol().parse(text, self.0.limits.max_message_bytes)?;
            call.generation = generation;
            Ok(call)
        })
    }

    /// Queues a tell. `Ok` means queued, not handled; for a durable actor,
    /// not yet durable either: [`ActorRef::send`] waits for that.
    ///
    /// # Errors
    ///
    /// [`CallError::MailboxFull`] (nothing was queued) or
    /// [`CallError::Stopped`].
    pub fn tell(&self, call: Call, from: Option<Address>) -> Result<(), CallError> {
        let queued = match &self.0.durable {
            None => self.enqueue(Envelope::tell(call, from)),
            // The write proceeds without anyone waiting for it.
            Some(durable) => self.tell_durable(durable, call, from, None, None).map(drop),
        };
        match queued {
            Ok(()) => Ok(()),
            Err(NotQueued::Refused(e)) => Err(e),
            Err(NotQueued::Passivated(envelope)) => {
                let (next, call) = self.successor(envelope.call)?;
                next.tell(call, envelope.from)
            }
        }
    }

    /// Queues a tell and waits until it is acknowledged: for a durable
    /// actor, until it is committed to the actor's durable inbox; for
    /// others, as soon as it is queued.
    ///
    /// # Errors
    ///
    /// As [`ActorRef::tell`], and [`CallError::NotDurable`] when the store
    /// did not take the write.
    pub async fn send(&self, call: Call, from: Option<Address>) -> Result<(), CallError> {
        self.send_from(call, from, None).await
    }

    /// [`ActorRef::send`] for a tell from a durable actor's outbox, with
    /// its [`Origin`]: a durable receiver that already took it (its
    /// courier delivers it again after a crash) acknowledges it without
    /// taking it again.
    ///
    /// # Errors
    ///
    /// As [`ActorRef::send`].
    pub async fn send_from(&self, call: Call, from: Option<Address>, origin: Option<Origin>) -> Result<(), CallError> {
        let queued = match &self.0.durable {
            None => self.enqueue(Envelope::tell(call, from)),
            Some(durable) => match self.tell_durable(durable, call, from, origin, None) {
                Ok(committed) => return committed.await.map_err(|e| self.not_durable(e)),
                Err(e) => Err(e),
            },
        };
        match queued {
            Ok(()) => Ok(()),
            Err(NotQueued::Refused(e)) => Err(e),
            Err(NotQueued::Passivated(envelope)) => {
                let (next, call) = self.successor(envelope.call)?;
                Box::pin(next.send_from(call, envelope.from, origin)).await
            }
        }
    }

    /// Sends the tell numbered `seq` by the outside publisher `publisher`
    /// (an address from [`Address::publisher`]), and waits as
    /// [`ActorRef::send`] does. A publisher that did not hear the
    /// acknowledgement sends the same tell again with the same number: the
    /// actor takes it once, since it keeps, with its state, the last
    /// number it took from each publisher, and acknowledges without taking
    /// it any tell numbered at or below that. So a publisher's numbers
    /// must grow, across its restarts too.
    ///
    /// # Errors
    ///
    /// [`CallError::NotNumbered`] if the actor is not durable; else as
    /// [`ActorRef::send`].
    pub async fn send_numbered(&self, call: Call, publisher: Address, seq: u64) -> Result<(), CallError> {
        if !self.is_durable() {
            return Err(CallError::NotNumbered(self.0.address.clone()));
        }
        self.send_from(call, Some(publisher), Some(Origin { seq, index: 0 })).await
    }

    /// Numbers and queues a tell to a durable actor, and submits its write
    /// to the journal (the returned future resolves once it is durable).
    /// Queued before it is written: a tell the mailbox refuses is never
    /// written, and the journal ignores an entry the actor's committed
    /// state already contains. A tell whose origin was taken before is
    /// acknowledged and dropped.
    fn tell_durable(
        &self,
        durable: &DurableInbox,
        call: Call,
        from: Option<Address>,
        origin: Option<Origin>,
        timer: Option<u64>,
    ) -> Result<BoxFuture<'static, Result<(), JournalError>>, NotQueued> {
        let message = WireMessage {
            to: self.0.address.clone(),
            from: from.clone(),
            message: self.wave(&call),
            ask: false,
            waiting: Vec::new(),
        };
        // An origin counts only with the sender it belongs to.
        let origin = origin.zip(from.clone());
        let mut sequence = durable.sequence.lock();
        if let Some((origin, sender)) = &origin
            && let Some(last) = sequence.taken.get(sender)
            && *origin <= last.origin
        {
            // Taken before: acknowledged as it was then, once durable (the
            // store commits an actor's writes in order, so the last one
            // from this sender covers this one).
            return Ok(match &last.write {
                Some(write) => Box::pin(write.clone()),
                None => Box::pin(std::future::ready(Ok(()))),
            });
        }
        self.enqueue(Envelope::tell(call, from))?;
        let seq = sequence.next;
        sequence.next += 1;
        sequence.queued.push_back(seq);
        let written = origin.as_ref().map(|(origin, _)| *origin);
        let write = durable.journal.accept(&self.0.address, seq, message, written, timer);
        match origin {
            Some((origin, sender)) => {
                let write = write.shared();
                sequence.taken.insert(sender, Taken { origin, write: Some(write.clone()) });
                Ok(Box::pin(write))
            }
            None => Ok(write),
        }
    }

    /// Gives back the number of a tell the cell put back at the front of
    /// the mailbox.
    pub(crate) fn untake_tell(&self, seq: u64) {
        if let Some(durable) = &self.0.durable {
            durable.sequence.lock().queued.push_front(seq);
        }
    }

    /// The tell timer `timer` makes when it fires: for a durable actor,
    /// committed together with the timer's removal.
    pub(crate) fn tell_from_timer(&self, call: Call, timer: u64) -> Result<(), CallError> {
        let from = Some(self.0.address.clone());
        let queued = match &self.0.durable {
            None => self.enqueue(Envelope::tell(call, from)),
            Some(durable) => self.tell_durable(durable, call, from, None, Some(timer)).map(drop),
        };
        match queued {
            Ok(()) => Ok(()),
            Err(NotQueued::Refused(e)) => Err(e),
            // Only a durable actor passivates with timers armed: this one
            // stays in its store, and its next activation arms it again.
            Err(NotQueued::Passivated(_)) => Ok(()),
        }
    }

    /// The number of the tell the cell takes from the mailbox now, for a
    /// durable actor (tells leave the mailbox in the order of their
    /// numbers).
    pub(crate) fn take_tell_number(&self) -> Option<u64> {
        self.0.durable.as_ref().and_then(|d| d.sequence.lock().queued.pop_front())
    }

    /// For a durable actor, the number of the last tell its committed
    /// state contains.
    pub(crate) fn committed_seq(&self) -> Option<u64> {
        self.0.durable.as_ref().map(|d| d.committed.load(Ordering::Relaxed))
    }

    /// Notes that its state up to tell `seq` is committed.
    pub(crate) fn set_committed(&self, seq: u64) {
        if let Some(durable) = &self.0.durable {
            durable.committed.store(seq, Ordering::Relaxed);
            let mut unsaved = durable.unsaved.lock();
            if unsaved.is_some() {
                *unsaved = None;
            }
        }
    }

    /// Notes that a commit of its state failed, and why: `troupe ps` shows
    /// it until a commit succeeds.
    pub(crate) fn set_unsaved(&self, why: &JournalError) {
        if let Some(durable) = &self.0.durable {
            *durable.unsaved.lock() = Some(why.0.clone());
        }
    }

    /// Why its last commit failed, if none succeeded since.
    pub(crate) fn unsaved(&self) -> Option<String> {
        self.0.durable.as_ref().and_then(|d| d.unsaved.lock().clone())
    }

    /// Its journal, if it is durable.
    pub(crate) fn journal(&self) -> Option<&Arc<dyn Journal>> {
        self.0.durable.as_ref().map(|d| &d.journal)
    }

    /// Is it durable?
    pub fn is_durable(&self) -> bool {
        self.0.durable.is_some()
    }

    /// The error for a write its journal did not take.
    pub(crate) fn not_durable(&self, e: JournalError) -> CallError {
        CallError::NotDurable { address: self.0.address.clone(), reason: e.0 }
    }

    /// `call` as WAVE text, against the code version it was checked
    /// against.
    pub(crate) fn wave(&self, call: &Call) -> String {
        let code = self.0.code.read();
        if call.generation == code.generation {
            return call.to_wave(code.component.protocol());
        }
        match code.history.iter().find(|(g, _)| *g == call.generation) {
            Some((_, old)) => call.to_wave(old.protocol()),
            None => call.to_wave(code.component.protocol()),
        }
    }

    /// Sends an ask and waits for its reply, at most `timeout`
    /// ([`NO_TIMEOUT`] arms no timer).
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
        let mut envelope = Envelope::ask(call, from, Ask { reply: tx, waiting }, self.0.times.is_some());
        let mut to = self.clone();
        // The reply comes from whichever activation queued the ask.
        while let Err(refusal) = to.enqueue(envelope) {
            match refusal {
                NotQueued::Refused(e) => return Err(e),
                NotQueued::Passivated(mut refused) => {
                    let (next, call) = to.successor(refused.call)?;
                    refused.call = call;
                    (envelope, to) = (refused, next);
                }
            }
        }
        // Without a timeout no timer is armed: arming one is a round trip
        // through tokio's timer wheel, a large share of an ask to an idle
        // actor.
        let reply = if timeout == NO_TIMEOUT { Ok(rx.await) } else { tokio::time::timeout(timeout, rx).await };
        match reply {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(CallError::Stopped(self.0.address.clone())),
            Err(_) => Err(CallError::Timeout(timeout)),
        }
    }

    /// Sends an HTTP request to the actor's `wasi:http/incoming-handler`
    /// as an ask (see [`super::http_serve`]) and waits until its handler
    /// has returned, at most `timeout`. The response goes to
    /// `exchange.response`, as soon as the handler sets it.
    ///
    /// # Errors
    ///
    /// [`CallError::BadMessage`] if the component exports no handler; the
    /// errors of [`ActorRef::ask`] (a full mailbox, the actor failing on
    /// the request, a timeout).
    pub async fn serve_http(&self, exchange: super::http_serve::HttpExchange, timeout: Duration) -> Reply {
        let Some(func) = super::http_serve::handler_index(self.component().protocol()) else {
            return Err(CallError::BadMessage(MessageError::Unsupported {
                signature: format!("{}.handle", super::http_serve::INCOMING_HANDLER),
                reason: "the actor's component does not export it, so it serves no HTTP requests".into(),
            }));
        };
        let generation = self.0.code.read().generation;
        let call = Call { func, args: Box::new([]), generation };
        let (tx, rx) = oneshot::channel();
        let mut envelope = Envelope::ask(call, None, Ask { reply: tx, waiting: None }, self.0.times.is_some());
        if let Some(extra) = envelope.extra.as_mut() {
            extra.http = Some(Box::new(exchange));
        }
        if let Err(refusal) = self.enqueue(envelope) {
            return Err(match refusal {
                NotQueued::Refused(e) => e,
                NotQueued::Passivated(_) => CallError::Stopped(self.0.address.clone()),
            });
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(CallError::Stopped(self.0.address.clone())),
            Err(_) => Err(CallError::Timeout(timeout)),
        }
    }

    fn enqueue(&self, envelope: Envelope) -> Result<(), NotQueued> {
        match self.0.mailbox.send_or_return(envelope) {
            Ok(()) => Ok(()),
            Err((queue::SendError::Full, _)) => {
                self.0.stats.refused();
                Err(CallError::MailboxFull(self.0.address.clone()).into())
            }
            Err((queue::SendError::Closed, envelope)) if self.0.passivated.get().is_some() => {
                Err(NotQueued::Passivated(envelope))
            }
            Err((queue::SendError::Closed, _)) => Err(CallError::Stopped(self.0.address.clone()).into()),
        }
    }

    /// Passivates the actor if nothing waits in its mailbox: from now on
    /// it refuses messages, and each one it refuses goes to the actor
    /// `system` activates at its address for it. Only the host calls this,
    /// for an actor that has just hibernated and whose address it takes
    /// back at once. Returns whether it passivated.
    pub(crate) fn passivate(&self, system: Weak<dyn ActorSystem>) -> bool {
        // Set as the mailbox closes: a sender it refuses finds where to go.
        self.0.mailbox.close_if_empty(|| {
            let _ = self.0.passivated.set(system);
        })
    }

    /// Has it passivated (and refuses every message)?
    pub(crate) fn is_passivated(&self) -> bool {
        self.0.passivated.get().is_some()
    }

    /// The actor activated at this passivated actor's address for a
    /// message it refused, and `call` checked against that actor's code.
    fn successor(&self, call: Call) -> Result<(ActorRef, Call), CallError> {
        let stopped = || CallError::Stopped(self.0.address.clone());
        let system = self.0.passivated.get().and_then(Weak::upgrade).ok_or_else(stopped)?;
        let next = system.find(self.0.address.as_str())?;
        if next.same(self) {
            return Err(stopped());
        }
        // Checked against the code the next actor runs, or checked again.
        let checked_against = |component: &ActorComponent, generation: u32| (component.hash, generation);
        let (hash, generation) = self.with_code(checked_against);
        let fits = (hash, generation) == next.with_code(checked_against) && generation == call.generation;
        let call = if fits { call } else { next.parse(&self.wave(&call))? };
        Ok((next, call))
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

    /// Marks the actor stopped for good and wakes those waiting on
    /// [`ActorRef::stopped`].
    pub(super) fn mark_done(&self) {
        self.0.done.store(true, Ordering::Release);
        self.0.done_notify.notify_waiters();
    }

    /// Was it granted outbound HTTP?
    pub fn has_http_grant(&self) -> bool {
        self.0.http.is_some()
    }

    /// Its circuit breakers, as the metrics show them: those of its
    /// bindings (`binding`) and of its `http` grant's patterns (`http`).
    pub(crate) fn breaker_readings(&self) -> Vec<(&'static str, super::binding::BreakerReading)> {
        let bindings = self.0.bindings.read();
        let of_bindings = bindings.values().filter_map(|b| Some(("binding", b.spec.breaker.as_ref()?.0.reading())));
        let of_http = self.0.http.iter().flat_map(|access| access.0.breakers()).map(|r| ("http", r));
        of_bindings.chain(of_http).collect()
    }

    /// Its outbound HTTP grant, if any.
    pub(crate) fn http_grant(&self) -> Option<&super::http_port::HttpAccess> {
        self.0.http.as_ref()
    }

    /// A snapshot of its state and counters.
    pub fn info(&self) -> ActorInfo {
        let component = self.component();
        let mut info = ActorInfo {
            address: self.0.address.clone(),
            component: component.name.clone(),
            version: component.version.clone(),
            hash: component.short_hash(),
            status: self.status(),
            mailbox: self.mailbox_len(),
            mailbox_capacity: self.0.mailbox.capacity(),
            handled: 0,
            batched: 0,
            typed: 0,
            failures: 0,
            restarts: 0,
            fuel_used: 0,
            memory: 0,
            memory_peak: 0,
            parent: self.0.parent.clone(),
            last_failure: None,
            durability: if self.is_durable() { Durability::Durable } else { Durability::InMemory },
            committed: self.committed_seq(),
            unsaved: self.unsaved(),
            http: self.0.http.as_ref().map(|access| access.0.status()),
            breakers: self
                .0
                .bindings
                .read()
                .iter()
                .filter_map(|(interface, b)| Some((interface.clone(), b.spec.breaker.as_ref()?.0.status())))
                .collect(),
        };
        self.0.stats.fill(&mut info);
        info
    }

    /// How long its messages take and wait, if the host's metrics time
    /// them.
    pub(crate) fn times(&self) -> Option<&MessageTimes> {
        self.0.times.as_deref()
    }

    /// Its counters as the metrics read them, and how many times its code
    /// changed (hot swaps and their rollbacks).
    pub(crate) fn tallies(&self) -> (Tallies, u64) {
        let swaps = self.0.code.read().generation;
        (self.0.stats.tallies(self.times()), u64::from(swaps))
    }

    /// Its counters.
    pub(crate) fn stats(&self) -> &ActorStats {
        &self.0.stats
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

    /// Registers a pending timer, if the `max-timers` quota allows, with
    /// the given id (a recovered timer's) or a new one.
    pub(crate) fn add_timer(
        &self,
        id: Option<u64>,
        due: std::time::Instant,
        make: impl FnOnce(u64) -> AbortHandle,
    ) -> Option<u64> {
        let mut timers = self.0.timers.lock();
        if timers.len() as u32 >= self.0.limits.max_timers {
            return None;
        }
        let id = match id {
            Some(id) => {
                // New ids come after every recovered one.
                self.0.next_id.fetch_max(id + 1, Ordering::Relaxed);
                id
            }
            None => self.next_id(),
        };
        timers.insert(id, PendingTimer { task: make(id), due });
        Some(id)
    }

    /// Forgets a timer; aborts it if `abort`. Returns whether it was pending.
    pub(crate) fn remove_timer(&self, id: u64, abort: bool) -> bool {
        let timer = self.0.timers.lock().remove(&id);
        match timer {
            Some(timer) => {
                if abort {
                    timer.task.abort();
                }
                true
            }
            None => false,
        }
    }

    /// Aborts every pending timer.
    pub(crate) fn cancel_all_timers(&self) {
        let timers = std::mem::take(&mut *self.0.timers.lock());
        for (_, timer) in timers {
            timer.task.abort();
        }
    }

    /// When its next timer fires, if one is armed.
    pub(crate) fn next_timer(&self) -> Option<std::time::Instant> {
        self.0.timers.lock().values().map(|timer| timer.due).min()
    }

    /// Does another actor watch it or link to it, or does it watch one?
    pub(crate) fn has_links(&self) -> bool {
        !self.0.watchers.lock().is_empty() || !self.0.monitoring.lock().is_empty() || !self.0.links.lock().is_empty()
    }

    /// How many of its imports are bound.
    pub(crate) fn binding_count(&self) -> usize {
        self.0.bindings.read().len()
    }

    /// Is this the same actor (not merely the same address)?
    pub fn same(&self, other: &ActorRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
