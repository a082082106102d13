//! The data each actor's `Store` carries: its WASI context, its memory
//! limiter, the deadline of the current message, what it wrote to stderr
//! during it, and the handles the host API needs (its own `ActorRef`, the
//! system around it).

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use super::budget::Budget;
use super::http_port::{Caller, HttpAccess, HttpState, WaitClock};
use super::tape::Tape;
use super::{ActorRef, ActorSystem};
use crate::actor::durable::Origin;
use crate::engine::MemoryLimiter;
use crate::grants::StderrTail;
use crate::message::Address;
use crate::protocol::Call;

/// The state of one incarnation, owned by its `Store`.
pub struct ActorData {
    pub(crate) wasi: Wasi,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) me: ActorRef,
    pub(crate) system: Arc<dyn ActorSystem>,
    /// The deadline of the current message.
    pub(crate) budget: Budget,
    /// What the guest wrote to stderr during the current message.
    pub(crate) stderr: StderrTail,
    /// Log records this incarnation may still write in the current window.
    pub(crate) log_budget: LogBudget,
    /// The actors waiting, directly or transitively, on the message being
    /// handled: the chain a nested ask extends (for cycle detection).
    pub(crate) waiting: Option<Arc<[Address]>>,
    /// The batch call in progress, if any.
    pub(crate) run: Run,
    /// While a durable actor handles a message: what it did beyond its
    /// state, committed with it (see [`crate::actor::durable`]).
    pub(crate) effects: Option<Effects>,
    /// For a durable actor that journals between snapshots: what its host
    /// calls return, recorded or played back (see [`super::tape`]).
    pub(crate) tape: Option<Tape>,
    /// Its `wasi:http` grant and state.
    pub(crate) http: Http,
}

/// An incarnation's outbound HTTP: its grant, if any, and the `wasi:http`
/// state, built on the guest's first `wasi:http` call.
pub(crate) struct Http {
    granted: Option<Granted>,
    state: Option<Box<HttpState>>,
}

/// A grant, and the incarnation's requests in flight under it.
struct Granted {
    access: HttpAccess,
    waits: WaitClock,
}

impl Http {
    /// The outbound HTTP of an incarnation holding `access`, if any.
    pub(crate) fn new(access: Option<HttpAccess>) -> Self {
        Http { granted: access.map(|access| Granted { access, waits: WaitClock::default() }), state: None }
    }

    /// Its requests in flight and time waited, with a grant.
    pub(crate) fn waits(&self) -> Option<&WaitClock> {
        self.granted.as_ref().map(|g| &g.waits)
    }

    /// A message armed at `at` (known only with a grant's ceiling) begins.
    pub(crate) fn message_started(&self, at: Option<std::time::Instant>) {
        if let (Some(waits), Some(at)) = (self.waits(), at) {
            waits.message_started(at);
        }
    }
}

/// The effects of the message a durable actor handles: each gets the next
/// [`Origin`] after its last committed one, so that a message that runs
/// again after a crash makes the same effects with the same origins.
#[derive(Debug)]
pub(crate) struct Effects {
    /// The number of the tell being handled (its watermark, for an ask).
    seq: u64,
    /// The origin of the last effect made, by this message or before.
    last: Option<Origin>,
    /// The tells made, for the outbox, in order.
    pub tells: Vec<(Told, Origin)>,
}

/// A tell a durable actor made, on its way to the outbox.
#[derive(Debug)]
pub(crate) enum Told {
    /// To an actor of this host, checked against its protocol.
    Here(ActorRef, Call),
    /// To an address on another host of the cluster, as the actor wrote
    /// it: checked against the receiver's protocol when its courier
    /// delivers it.
    Elsewhere {
        /// The receiver.
        to: String,
        /// The message, `func(args)`.
        message: String,
    },
}

impl Effects {
    /// The effects of a message handled at watermark `seq`, after an
    /// actor whose last effect had origin `last`.
    pub(crate) fn new(seq: u64, last: Option<Origin>) -> Self {
        Effects { seq, last, tells: Vec::new() }
    }

    /// The origin of the next effect: after the last, in the tell being
    /// handled.
    pub(crate) fn next_origin(&mut self) -> Origin {
        let origin = match self.last {
            Some(last) if last.seq >= self.seq => Origin { seq: last.seq, index: last.index.saturating_add(1) },
            _ => Origin { seq: self.seq, index: 0 },
        };
        self.last = Some(origin);
        origin
    }

    /// The origin of the last effect made.
    pub(crate) fn last(&self) -> Option<Origin> {
        self.last
    }
}

/// An incarnation's WASI context. Built when the incarnation starts if the
/// actor's grants need it (see [`crate::grants::Grants::need_wasi_ctx_up_front`]),
/// else on the guest's first WASI call: most actors make none, and a
/// context costs memory and time in every incarnation.
pub(crate) struct Wasi {
    /// Boxed: an actor that never calls WASI keeps a pointer, not a context.
    ctx: Option<Box<WasiCtx>>,
    /// The grants to build it with, if it is not built yet.
    stdio: bool,
    clocks: bool,
}

impl Wasi {
    /// A context built already.
    pub(crate) fn ready(ctx: WasiCtx) -> Self {
        Wasi { ctx: Some(Box::new(ctx)), stdio: false, clocks: false }
    }

    /// A context to build on first use, granting `stdio` and `clocks`.
    pub(crate) fn deferred(stdio: bool, clocks: bool) -> Self {
        Wasi { ctx: None, stdio, clocks }
    }

    fn get(&mut self, address: &Address, stderr: &mut StderrTail, tape: Option<&Tape>) -> &mut WasiCtx {
        self.ctx.get_or_insert_with(|| {
            Box::new(crate::grants::plain_wasi_ctx(self.stdio, self.clocks, address, stderr, tape))
        })
    }
}

/// Where a batch call (several messages in one call, see
/// [`crate::batch`]) is: the adapter reports the start of each
/// message, and each gets a deadline of its own.
#[derive(Debug, Default)]
pub(crate) struct Run {
    /// Messages in the call: the adapter starts no more.
    pub(crate) messages: u32,
    /// Messages started so far.
    pub(crate) started: u32,
    /// Each message's deadline.
    pub(crate) deadline: std::time::Duration,
    /// Each message's fuel budget, if the actor has one.
    pub(crate) fuel: Option<u64>,
    /// Fuel burnt by the messages that have finished.
    pub(crate) fuel_spent: u64,
}

/// How many log records an actor may write per [`LOG_WINDOW`]; beyond it
/// records are dropped and counted, so that a guest cannot flood the log.
pub const LOG_RECORDS_PER_WINDOW: u32 = 1000;

/// The window of [`LOG_RECORDS_PER_WINDOW`].
pub const LOG_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

/// A guest's log rate limit.
#[derive(Debug)]
pub(crate) struct LogBudget {
    window: std::time::Instant,
    used: u32,
    dropped: u64,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget { window: std::time::Instant::now(), used: 0, dropped: 0 }
    }
}

impl LogBudget {
    /// May one more record be written? Returns the number of records
    /// dropped in the window that just ended, if any, to be reported.
    pub(crate) fn take(&mut self) -> (bool, u64) {
        let mut reported = 0;
        if self.window.elapsed() >= LOG_WINDOW {
            reported = std::mem::take(&mut self.dropped);
            self.window = std::time::Instant::now();
            self.used = 0;
        }
        if self.used < LOG_RECORDS_PER_WINDOW {
            self.used += 1;
            (true, reported)
        } else {
            self.dropped += 1;
            (false, reported)
        }
    }
}

impl ActorData {
    /// The ask chain for an ask this actor makes now: everyone waiting on
    /// it, plus itself.
    pub(crate) fn chain_for_ask(&self) -> Arc<[Address]> {
        let mut chain: Vec<Address> = self.waiting.as_deref().map(<[Address]>::to_vec).unwrap_or_default();
        chain.push(self.me.address().clone());
        chain.into()
    }
}

impl WasiHttpView for ActorData {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let http = &mut self.http;
        let state = http.state.get_or_insert_with(|| {
            let caller = Caller {
                address: self.me.address().clone(),
                events: self.system.events().clone(),
                waits: http.granted.as_ref().map(|g| g.waits.clone()).unwrap_or_default(),
            };
            Box::new(HttpState::new(http.granted.as_ref().map(|g| &g.access), caller))
        });
        WasiHttpCtxView { ctx: &mut state.ctx, table: &mut self.table, hooks: &mut state.hooks }
    }
}

impl WasiView for ActorData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get(self.me.address(), &mut self.stderr, self.tape.as_ref()),
            table: &mut self.table,
        }
    }
}
