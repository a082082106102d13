//! The `troupe:actor/host` interface, as the host implements it for guests,
//! and the linker every actor component is linked against (WASI 0.2 plus
//! this API).
//!
//! Nothing a guest passes here can hurt the host: addresses and messages
//! are validated and type-checked, text is truncated before it reaches the
//! log, and every quota (children, timers) is enforced. Errors are returned
//! to the guest as `troupe:actor/types.error` values, never as traps.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Level as TraceLevel, event};
use wasmtime::StoreContextMut;
use wasmtime::component::{HasSelf, Linker, Resource};

use std::sync::Arc;

use wasmtime::component::Val;

use super::binding::{
    BindError, Binding, BindingBreaker, BindingSpec, BindingTarget, BreakerTicket, Router, interface_key,
};
use super::data::{ActorData, Told};
use super::remote::{RemoteWatch, Watched};
use super::tape::Tape;
use super::{ActorRef, DownNotice, DownReason, Routed, SpawnError, SpawnOptions};
use crate::batch;
use crate::error_code::ErrorCode;
use crate::events::EventBus;
use crate::message::{Address, CallError, DEFAULT_ASK_TIMEOUT};
use crate::protocol::ImportedInterface;
use crate::protocol::MessageError;
use crate::supervision::RestartType;

use crate::wit::bindings;
use crate::wit::bindings::troupe::actor::host;
use crate::wit::types::{self, Error, Level};

pub(crate) use types::DownNotice as WitDown;
pub use types::State as Snapshot;

impl From<&DownNotice> for WitDown {
    fn from(notice: &DownNotice) -> Self {
        let reason = match &notice.reason {
            DownReason::Stopped => types::DownReason::Stopped,
            DownReason::Failed(f) => {
                types::DownReason::Failed(types::Failure { kind: f.kind.into(), detail: f.detail.clone() })
            }
        };
        WitDown { address: notice.address.to_string(), reason, gone: notice.gone }
    }
}

/// Longest delay `send-after` accepts: 30 days.
pub const MAX_TIMER_DELAY: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The most tells a durable actor may make while handling one message:
/// they wait in memory for the message's commit.
pub const MAX_TELLS_PER_MESSAGE: usize = 10_000;

/// Longest log message forwarded; longer ones are truncated.
pub const MAX_LOG_BYTES: usize = 4096;

/// Defines `imports` (protocol interfaces bound to other actors) in
/// `linker`: each function turns into a call through the caller's binding.
pub(crate) fn define_imports(linker: &mut Linker<ActorData>, imports: &[ImportedInterface]) -> wasmtime::Result<()> {
    for import in imports {
        let mut instance = linker.instance(&import.name)?;
        for function in &import.functions {
            let interface: Arc<str> = Arc::from(interface_key(&import.name));
            let name: Arc<str> = Arc::from(function.name.as_str());
            let has_result = function.result.is_some();
            instance.func_new_async(&function.name, move |mut store, ty, params, results| {
                let (interface, name) = (interface.clone(), name.clone());
                Box::new(async move {
                    let data = store.data_mut();
                    let reply = match data.played::<Option<String>>("typed-call")? {
                        Some(played) => replayed_reply(&ty, played)?,
                        None => {
                            let reply = data.call_import(&interface, &name, params, has_result).await?;
                            if data.tape.is_some() {
                                let text = reply.as_ref().map(Val::to_wave).transpose()?;
                                data.recorded("typed-call", text);
                            }
                            reply
                        }
                    };
                    if let (Some(value), Some(slot)) = (reply, results.first_mut()) {
                        *slot = value;
                    }
                    Ok(())
                })
            })?;
        }
    }
    Ok(())
}

/// The reply a typed call returned when the message first ran, recorded
/// as WAVE text, as a value of the function's result type.
fn replayed_reply(
    ty: &wasmtime::component::types::ComponentFunc,
    played: Option<String>,
) -> wasmtime::Result<Option<Val>> {
    let Some(text) = played else { return Ok(None) };
    let result = ty.results().next().ok_or_else(|| {
        wasmtime::Error::msg(
            "the replay diverged: a typed call \
        recorded with a result has none now",
        )
    })?;
    Ok(Some(Val::from_wave(&result, &text)?))
}

impl ActorData {
    /// A call through the binding of the imported `interface`: an ask if
    /// the function has a result, else a tell. Any error fails the caller's
    /// message (see [`super::binding`]).
    async fn call_import(
        &mut self,
        interface: &str,
        function: &str,
        args: &[Val],
        has_result: bool,
    ) -> wasmtime::Result<Option<Val>> {
        let fail = |problem: String| wasmtime::Error::msg(format!("call to `{interface}.{function}`: {problem}"));
        let binding = self.me.binding(interface).ok_or_else(|| {
            fail(
                "the import is not bound to any actor; bind it with `bindings` in the manifest, at spawn, or with bind()"
                    .into(),
            )
        })?;
        let key = match &binding.spec.target {
            BindingTarget::Group { router: Router::HashOn(param), .. }
            | BindingTarget::Virtual { key_from: param, .. } => {
                let component = self.me.component();
                let position = component
                    .import(interface)
                    .and_then(|i| i.function(function))
                    .and_then(|f| f.params.iter().position(|(n, _)| n == param));
                position.and_then(|p| args.get(p))
            }
            _ => None,
        };
        let mut retries = binding.spec.retry.as_ref().map(|r| (r, r.0.start()));
        loop {
            let mut guard = match &binding.spec.breaker {
                Some(breaker) => {
                    let (caller, events) = (self.me.address().clone(), self.system.events().clone());
                    let ticket = breaker
                        .0
                        .admit(&caller, &events)
                        .map_err(|open| fail(format!("{}: {open}", ErrorCode::CircuitOpen.as_str())))?;
                    Some(Guarded { breaker: breaker.clone(), ticket: Some(ticket), caller, events })
                }
                None => None,
            };
            // An error out of `route_import` itself (not the call's
            // failure) leaves the guard to record the call as abandoned.
            let outcome = self.route_import(&binding, key, interface, function, args, has_result).await?;
            if let Some(guard) = &mut guard {
                guard.record(outcome.is_err());
            }
            match outcome {
                Ok(reply) => return Ok(reply),
                Err(failed) => {
                    let wait = match (&mut retries, failed.transient) {
                        (Some((retry, call)), true) => retry.0.after_failure(call),
                        _ => None,
                    };
                    let Some(wait) = wait else { return Err(fail(failed.reason)) };
                    let waited = Instant::now();
                    tokio::time::sleep(wait).await;
                    self.budget.waited(waited.elapsed());
                }
            }
        }
    }

    /// [`ActorData::call_import`] past the binding's breaker and retries:
    /// the inner `Err` says why the call failed.
    async fn route_import(
        &mut self,
        binding: &Binding,
        key: Option<&Val>,
        interface: &str,
        function: &str,
        args: &[Val],
        has_result: bool,
    ) -> wasmtime::Result<Result<Option<Val>, Failed>> {
        let targets = match self.system.route(binding, key) {
            Ok(targets) => targets,
            Err(problem) => match remote_address(binding, key) {
                // In a cluster, a key or an actor another host has is
                // reached there.
                Some(address) if self.system.remote().is_some() => {
                    return self.route_remote(&address, binding, interface, function, args, has_result).await;
                }
                _ => return Ok(Err(Failed { reason: problem, transient: true })),
            },
        };
        let me = self.me.address().clone();
        let refused = |reason: String| Ok(Err(Failed { reason, transient: false }));
        if has_result {
            if matches!(binding.spec.target, BindingTarget::Group { router: Router::Broadcast, .. }) {
                return refused("a broadcast binding carries tells only; this function returns a result".into());
            }
            let target = match targets.into_iter().next() {
                Some(Routed::Here(target)) => target,
                Some(Routed::There(address)) => {
                    return self.route_remote(address.as_str(), binding, interface, function, args, true).await;
                }
                None => return Ok(Err(Failed { reason: "no target".into(), transient: true })),
            };
            let call = match target.import_call(interface, function, args) {
                Ok(call) => call,
                Err(e) => return refused(e.to_string()),
            };
            let chain = self.chain_for_ask();
            let asked = Instant::now();
            let reply = target.ask(call, Some(me), Some(chain), binding.spec.timeout).await;
            self.budget.waited(asked.elapsed());
            return Ok(reply.map_err(|e| Failed::of(format!("`{}`: {e}", target.address()), &e)));
        }
        for target in targets {
            let target = match target {
                Routed::Here(target) => target,
                Routed::There(address) => {
                    match self.route_remote(address.as_str(), binding, interface, function, args, false).await? {
                        Ok(_) => continue,
                        Err(failed) => return Ok(Err(failed)),
                    }
                }
            };
            let call = match target.import_call(interface, function, args) {
                Ok(call) => call,
                Err(e) => return refused(e.to_string()),
            };
            if let Err(e) = self.tell_acknowledged(&target, call).await? {
                return Ok(Err(Failed::of(e.to_string(), &e)));
            }
        }
        Ok(Ok(None))
    }
}

impl ActorData {
    /// A call through `binding` to the virtual key, named actor or group
    /// member at `address`, which another host of the cluster has: sent as text,
    /// checked there against the receiver's protocol (the binding was
    /// checked against the code of its entry when it was made).
    async fn route_remote(
        &mut self,
        address: &str,
        binding: &Binding,
        interface: &str,
        function: &str,
        args: &[Val],
        has_result: bool,
    ) -> wasmtime::Result<Result<Option<Val>, Failed>> {
        let mut texts = Vec::with_capacity(args.len());
        for arg in args {
            texts.push(arg.to_wave()?);
        }
        let message = format!("{interface}.{function}({})", texts.join(", "));
        let Some(remote) = self.system.remote() else {
            return Ok(Err(Failed { reason: format!("no actor at `{address}`"), transient: true }));
        };
        if !has_result {
            let told = self.tell_remote(address, &message).await?;
            return Ok(told
                .map(|()| None)
                .map_err(|e| Failed { reason: format!("`{address}`: {e}"), transient: false }));
        }
        let (me, chain) = (self.me.address().clone(), self.chain_for_ask());
        let asked = Instant::now();
        let reply = remote.ask(address, &message, Some(&me), Some(chain), binding.spec.timeout).await;
        self.budget.waited(asked.elapsed());
        Ok(reply.map_err(|e| Failed::of(format!("`{address}`: {e}"), &e)))
    }
}

/// The address a call through `binding` goes to on another host, if it
/// may be there: the named actor it is bound to, or the virtual key `key`
/// names, if it makes a valid one.
fn remote_address(binding: &Binding, key: Option<&Val>) -> Option<String> {
    match &binding.spec.target {
        BindingTarget::Actor(address) => Some(address.to_string()),
        BindingTarget::Virtual { component, .. } => {
            let key = super::binding::key_text(key?).ok()?;
            let address = format!("{component}/{key}");
            crate::message::Address::validate(&address).is_ok().then_some(address)
        }
        BindingTarget::Group { .. } => None,
    }
}

/// An actor about to be monitored or linked to.
enum WatchTarget {
    /// On this host.
    Here(ActorRef),
    /// On host `node`, which watches it for this actor under watch `id`.
    Remote { id: u64, node: String },
}

/// Why a call through a binding failed, and whether trying it again may
/// succeed (see [`super::binding::CallRetries`]).
struct Failed {
    reason: String,
    transient: bool,
}

impl Failed {
    fn of(reason: String, error: &CallError) -> Self {
        let transient = matches!(
            error,
            CallError::UnknownAddress(_) | CallError::MailboxFull(_) | CallError::Timeout(_) | CallError::Stopped(_)
        );
        Failed { reason, transient }
    }
}

/// A call admitted by its binding's breaker: its outcome is recorded once,
/// as abandoned if the call's future is dropped first.
struct Guarded {
    breaker: BindingBreaker,
    ticket: Option<BreakerTicket>,
    caller: Address,
    events: EventBus,
}

impl Guarded {
    fn record(&mut self, failed: bool) {
        if let Some(ticket) = self.ticket.take() {
            self.breaker.0.record(ticket, Some(failed), &self.caller, &self.events);
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.breaker.0.record(ticket, None, &self.caller, &self.events);
        }
    }
}

/// The linker every actor component is instantiated through.
pub(crate) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<ActorData>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    shadow_error_debug_string(&mut linker)?;
    // Always linked, so that one compiled component serves every actor
    // started from it; an actor without an `http` grant is refused at
    // spawn if its component imports the handler (and every request of
    // one that gets there anyway is denied).
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    bindings::Actor::add_to_linker::<ActorData, HasSelf<ActorData>>(&mut linker, |d| d)?;
    linker.instance(batch::PROGRESS_INTERFACE)?.func_wrap(batch::PROGRESS_FUNCTION, next_message)?;
    Ok(linker)
}

/// The `wasi:io` version wasmtime-wasi links: a component importing any
/// 0.2.x version of `wasi:io/error` is linked to it.
const WASI_IO_ERROR: &str = "wasi:io/error@0.2.12";

/// Replaces wasmtime-wasi's `wasi:io/error.to-debug-string`, which gives a
/// guest the host error's `{:?}` form: with `RUST_BACKTRACE` set, that
/// carries the host's stack (paths and symbols of the host binary), which
/// is none of the guest's business. The guest gets the error and its
/// causes on one line (`{:#}`) instead.
fn shadow_error_debug_string(linker: &mut Linker<ActorData>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(WASI_IO_ERROR)?.func_wrap(
        "[method]error.to-debug-string",
        |cx: StoreContextMut<'_, ActorData>, (error,): (Resource<wasmtime_wasi::p2::IoError>,)| {
            Ok((format!("{:#}", cx.data().table.get(&error)?),))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// `troupe:batch/progress.next`: a batch call is about to start another
/// message, so the one before it (if any) has finished. Each message gets
/// the CPU budget and fuel of its own that a call of its own would have.
/// Returns `false` to end the call early, when a control request (a stop,
/// a restart, a swap) waits: it is handled between two messages, as when
/// each message is a call of its own.
fn next_message(mut cx: StoreContextMut<'_, ActorData>, (): ()) -> wasmtime::Result<(bool,)> {
    let data = cx.data_mut();
    if data.run.started == data.run.messages {
        // Only the adapter imports this, once per message of the call.
        return Err(wasmtime::Error::msg("`troupe:batch/progress.next` called out of turn"));
    }
    if data.run.started > 0 && data.me.control_pending() {
        return Ok((false,));
    }
    data.run.started += 1;
    // The call's span (`messages`) covers the run; each message shows in it.
    tracing::trace!(index = data.run.started - 1, "message");
    if data.run.started == 1 {
        // The first runs on the budget the call was armed with.
        return Ok((true,));
    }
    let deadline = data.run.deadline;
    data.budget.arm(deadline);
    data.http.message_started(data.budget.armed_at());
    data.stderr.clear();
    if let Some(fuel) = data.run.fuel {
        let left = cx.get_fuel().unwrap_or(0);
        cx.data_mut().run.fuel_spent += fuel.saturating_sub(left);
        cx.set_fuel(fuel)?;
    }
    Ok((true,))
}

impl From<CallError> for Error {
    fn from(e: CallError) -> Self {
        match e {
            CallError::UnknownAddress(a) => Error::UnknownAddress(a.to_string()),
            e @ (CallError::InvalidKey { .. } | CallError::InvalidPublisher { .. } | CallError::NotNumbered(_)) => {
                Error::InvalidArgument(e.to_string())
            }
            CallError::MailboxFull(a) => Error::MailboxFull(a.to_string()),
            CallError::BadMessage(MessageError::TooLarge { size, .. }) => Error::TooLarge(size),
            CallError::BadMessage(m) => Error::BadMessage(m.to_string()),
            CallError::ReplyTooLarge { size, .. } => Error::TooLarge(size),
            // Whether it arrived is unknown, as after a timeout.
            CallError::Timeout(_) | CallError::Unreachable { .. } => Error::Timeout,
            CallError::ActorFailed { failure, .. } => Error::ActorFailed(failure.to_string()),
            e @ CallError::NotDurable { .. } => Error::ActorFailed(e.to_string()),
            CallError::Stopped(a) => Error::Stopped(a.to_string()),
            CallError::Cycle(chain) => Error::Cycle(chain.into_iter().map(|a| a.to_string()).collect()),
        }
    }
}

impl From<BindError> for Error {
    fn from(e: BindError) -> Self {
        match e {
            BindError::UnknownTarget { target, .. } => Error::UnknownAddress(target.to_string()),
            other => Error::BadMessage(other.to_string()),
        }
    }
}

/// The WIT binding target as a [`BindingSpec`] with the default timeout.
fn binding_spec(target: types::BindingTarget) -> BindingSpec {
    match target {
        types::BindingTarget::Actor(address) => BindingSpec::actor(address),
        types::BindingTarget::Group((name, router)) => BindingSpec::group(
            name,
            match router {
                types::Router::RoundRobin => Router::RoundRobin,
                types::Router::Random => Router::Random,
                types::Router::LeastLoaded => Router::LeastLoaded,
                types::Router::Broadcast => Router::Broadcast,
                types::Router::HashOn(param) => Router::HashOn(param),
            },
        ),
    }
}

impl From<SpawnError> for Error {
    fn from(e: SpawnError) -> Self {
        match e {
            SpawnError::NameTaken(a) => Error::NameTaken(a.to_string()),
            SpawnError::InvalidName(m) => Error::InvalidArgument(m.to_string()),
            SpawnError::UnknownComponent { name, .. } => Error::UnknownComponent(name),
            SpawnError::UnknownSupervisor(name) => Error::InvalidArgument(format!("no supervisor named `{name}`")),
            SpawnError::Bind(e) => e.into(),
            SpawnError::Quota(m) => Error::QuotaExceeded(m),
            e @ SpawnError::HttpNotHeld { .. } => Error::InvalidArgument(e.to_string()),
            other => Error::SpawnFailed(other.to_string()),
        }
    }
}

impl ActorData {
    /// Tells `target` from this actor: a durable actor handling a message
    /// keeps the tell for its outbox (see [`crate::actor::durable`]);
    /// otherwise it is sent now, and to a durable receiver, acknowledged
    /// once committed, a wait that is not this message's CPU time. `Err`
    /// (a trap) for a durable actor that made too many tells in one
    /// message.
    async fn tell_acknowledged(
        &mut self,
        target: &ActorRef,
        call: crate::protocol::Call,
    ) -> wasmtime::Result<Result<(), CallError>> {
        if self.effects.is_some() {
            return self.keep_tell(Told::Here(target.clone(), call)).map(Ok);
        }
        let from = Some(self.me.address().clone());
        if !target.is_durable() {
            return Ok(target.tell(call, from));
        }
        let sent = Instant::now();
        let result = target.send(call, from).await;
        self.budget.waited(sent.elapsed());
        Ok(result)
    }

    /// Keeps a tell of a durable actor handling a message for its outbox.
    /// `Err` (a trap) if it made too many in this message.
    fn keep_tell(&mut self, told: Told) -> wasmtime::Result<()> {
        let Some(effects) = &mut self.effects else { return Err(wasmtime::Error::msg("no message is being handled")) };
        if effects.tells.len() >= MAX_TELLS_PER_MESSAGE {
            return Err(wasmtime::Error::msg(format!(
                "a durable actor may make at most {MAX_TELLS_PER_MESSAGE} tells while handling one message \
                 (they are committed with it)"
            )));
        }
        let origin = effects.next_origin();
        effects.tells.push((told, origin));
        Ok(())
    }

    /// Tells an actor on another host. A durable actor's tell is kept for
    /// its outbox, as every tell it makes, and its courier sends it once
    /// committed, checked then against the receiver's protocol.
    async fn tell_remote(&mut self, to: &str, message: &str) -> wasmtime::Result<Result<(), Error>> {
        if self.effects.is_some() {
            let told = Told::Elsewhere { to: to.to_string(), message: message.to_string() };
            return self.keep_tell(told).map(Ok);
        }
        let Some(remote) = self.system.remote() else { return Ok(Err(Error::UnknownAddress(to.to_string()))) };
        let sent = Instant::now();
        let result = remote.tell(to, message, Some(self.me.address()), None).await;
        self.budget.waited(sent.elapsed());
        Ok(result.map_err(Error::from))
    }

    fn target(&self, to: &str) -> Result<ActorRef, Error> {
        self.system.find(to).map_err(Error::from)
    }

    /// Is `target` this actor or one of its descendants?
    fn owns(&self, target: &ActorRef) -> bool {
        let me = self.me.address();
        let mut cursor = Some(target.clone());
        // Bounded walk: a parent chain cannot be longer than the number of
        // live actors, but never trust a loop without a bound.
        for _ in 0..10_000 {
            let Some(actor) = cursor else { return false };
            if actor.address() == me {
                return true;
            }
            cursor = actor.parent().and_then(|p| self.system.lookup(p.as_str()));
        }
        false
    }
}

impl types::Host for ActorData {}

/// A host call as a durable actor's journal sees it: while a message is
/// replayed, what the call returned when the message first ran (and no
/// effect); live, the call's result, recorded on the tape of an actor
/// that journals (see [`super::tape`]).
macro_rules! taped {
    ($data:ident, $call:literal, $live:expr) => {{
        if let Some(played) = $data.played($call)? {
            return Ok(played);
        }
        let result = $live.await?;
        Ok($data.recorded($call, result))
    }};
}

impl host::Host for ActorData {
    async fn self_address(&mut self) -> wasmtime::Result<String> {
        Ok(self.me.address().to_string())
    }

    async fn tell(&mut self, to: String, message: String) -> wasmtime::Result<Result<(), Error>> {
        taped!(self, "tell", self.tell_live(to, message))
    }

    async fn ask(&mut self, to: String, message: String, timeout_ms: u32) -> wasmtime::Result<Result<String, Error>> {
        taped!(self, "ask", self.ask_live(to, message, timeout_ms))
    }

    async fn spawn(
        &mut self,
        component: String,
        options: types::SpawnOptions,
    ) -> wasmtime::Result<Result<String, Error>> {
        taped!(self, "spawn", self.spawn_live(component, options))
    }

    async fn stop(&mut self, address: String) -> wasmtime::Result<Result<(), Error>> {
        taped!(self, "stop", self.stop_live(address))
    }

    async fn monitor(&mut self, address: String) -> wasmtime::Result<Result<u64, Error>> {
        taped!(self, "monitor", self.monitor_live(address))
    }

    async fn demonitor(&mut self, id: u64) -> wasmtime::Result<bool> {
        taped!(self, "demonitor", self.demonitor_live(id))
    }

    async fn bind(&mut self, interface: String, target: types::BindingTarget) -> wasmtime::Result<Result<(), Error>> {
        taped!(self, "bind", self.bind_live(interface, target))
    }

    async fn unbind(&mut self, interface: String) -> wasmtime::Result<bool> {
        taped!(self, "unbind", self.unbind_live(interface))
    }

    async fn link(&mut self, address: String) -> wasmtime::Result<Result<(), Error>> {
        taped!(self, "link", self.link_live(address))
    }

    async fn unlink(&mut self, address: String) -> wasmtime::Result<bool> {
        taped!(self, "unlink", self.unlink_live(address))
    }

    async fn send_after(&mut self, delay_ms: u64, message: String) -> wasmtime::Result<Result<u64, Error>> {
        taped!(self, "send-after", self.send_after_live(delay_ms, message))
    }

    async fn cancel_timer(&mut self, id: u64) -> wasmtime::Result<bool> {
        taped!(self, "cancel-timer", self.cancel_timer_live(id))
    }

    async fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) -> wasmtime::Result<()> {
        // Written when the message first ran; a replay writes nothing.
        if self.tape.as_ref().is_some_and(Tape::replaying) {
            return Ok(());
        }
        self.log_live(level, message, fields).await
    }
}

impl ActorData {
    /// While a message is replayed, what host call `call` returned when
    /// the message first ran; `None` while it runs live. A replay that
    /// calls the host otherwise than the record says fails the message.
    fn played<T: DeserializeOwned>(&self, call: &str) -> wasmtime::Result<Option<T>> {
        match self.tape.as_ref().and_then(|tape| tape.played(call)) {
            None => Ok(None),
            Some(Ok(result)) => Ok(Some(result)),
            Some(Err(why)) => Err(wasmtime::Error::msg(format!("the replay diverged: {why}"))),
        }
    }

    /// `result`, recorded on the tape of an actor that journals.
    fn recorded<T: Serialize>(&self, call: &str, result: T) -> T {
        if let Some(tape) = &self.tape {
            tape.record(call, &result);
        }
        result
    }
}

/// The host calls as they act, live. A durable actor that journals
/// records their results, and a replay of its message plays them back
/// instead (see [`super::tape`] and the wrappers below).
impl ActorData {
    async fn tell_live(&mut self, to: String, message: String) -> wasmtime::Result<Result<(), Error>> {
        let target = match self.system.find(&to) {
            Ok(t) => t,
            Err(CallError::UnknownAddress(_)) if self.system.remote().is_some() => {
                return self.tell_remote(&to, &message).await;
            }
            Err(e) => return Ok(Err(e.into())),
        };
        let call = match target.parse(&message) {
            Ok(call) => call,
            Err(e) => return Ok(Err(CallError::from(e).into())),
        };
        let result = match self.tell_acknowledged(&target, call).await? {
            // A key that passivated meanwhile, now on another host.
            Err(CallError::UnknownAddress(_)) if self.system.remote().is_some() => {
                return self.tell_remote(&to, &message).await;
            }
            result => result,
        };
        Ok(result.map_err(Error::from))
    }

    async fn ask_live(
        &mut self,
        to: String,
        message: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<String, Error>> {
        let timeout = match timeout_ms {
            0 => DEFAULT_ASK_TIMEOUT,
            ms => Duration::from_millis(ms.into()),
        };
        let me = Some(self.me.address().clone());
        let asked = Instant::now();
        let reply = match self.system.find(&to) {
            Ok(target) => {
                let call = match target.parse(&message) {
                    Ok(c) => c,
                    Err(e) => return Ok(Err(CallError::from(e).into())),
                };
                match (target.ask(call, me.clone(), Some(self.chain_for_ask()), timeout).await, self.system.remote()) {
                    // A key that passivated meanwhile, now on another host.
                    (Err(CallError::UnknownAddress(_)), Some(remote)) => {
                        remote.ask(&to, &message, me.as_ref(), Some(self.chain_for_ask()), timeout).await
                    }
                    (reply, _) => reply,
                }
            }
            Err(e) => match (e, self.system.remote()) {
                (CallError::UnknownAddress(_), Some(remote)) => {
                    remote.ask(&to, &message, me.as_ref(), Some(self.chain_for_ask()), timeout).await
                }
                (e, _) => return Ok(Err(e.into())),
            },
        };
        self.budget.waited(asked.elapsed());
        Ok(match reply {
            Ok(None) => Ok(String::new()),
            Ok(Some(val)) => Ok(val.to_wave()?),
            Err(e) => Err(e.into()),
        })
    }

    async fn spawn_live(
        &mut self,
        component: String,
        options: types::SpawnOptions,
    ) -> wasmtime::Result<Result<String, Error>> {
        let system = self.system.clone();
        let me = self.me.clone();
        // A durable actor's message numbers its spawns with its other
        // effects: a child it names so is spawned once, however many times
        // a crash makes the message run.
        let (name, once) = match (options.name, &mut self.effects) {
            (None, Some(effects)) => {
                let origin = effects.next_origin();
                (Some(format!("{}/{component}-{}.{}", self.me.address(), origin.seq, origin.index)), true)
            }
            (name, _) => (name, false),
        };
        let options = SpawnOptions {
            name,
            once,
            config: options.config,
            restart: options.restart.map(RestartType::from).unwrap_or_default(),
            durability: options.durability.map(Into::into),
            supervisor: options.supervisor,
            link: options.link,
            bindings: options.bindings.into_iter().map(|l| (l.interface, binding_spec(l.target))).collect(),
            http: options.http.map(Into::into),
        };
        // Waiting for the child's `init` is not this actor's time.
        let asked = Instant::now();
        let spawned = system.spawn_child(&me, &component, options).await;
        self.budget.waited(asked.elapsed());
        Ok(spawned.map(|child| child.address().to_string()).map_err(Error::from))
    }

    async fn stop_live(&mut self, address: String) -> wasmtime::Result<Result<(), Error>> {
        let target = match self.target(&address) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        if target.same(&self.me) {
            // A normal exit, decided by its supervisor after this message.
            target.exit();
            return Ok(Ok(()));
        }
        if !self.owns(&target) {
            return Ok(Err(Error::InvalidArgument(format!(
                "`{address}` is not this actor or one of its descendants; an actor may stop only its own subtree"
            ))));
        }
        self.system.stop_actor(&target);
        Ok(Ok(()))
    }

    async fn monitor_live(&mut self, address: String) -> wasmtime::Result<Result<u64, Error>> {
        if !self.me.component().exports_watcher() {
            return Ok(Err(Error::InvalidArgument(
                "monitoring needs the `troupe:actor/watcher` export to receive `down` notices".into(),
            )));
        }
        Ok(match self.watch_target(&address, false).await {
            Ok(WatchTarget::Here(target)) => Ok(target.add_monitor(&self.me)),
            Ok(WatchTarget::Remote { id, .. }) => {
                self.me.monitors_remote(id, address.into());
                Ok(id)
            }
            Err(e) => Err(e),
        })
    }

    async fn demonitor_live(&mut self, id: u64) -> wasmtime::Result<bool> {
        let Some(target) = self.me.take_monitoring(id) else { return Ok(false) };
        if let Some(local) = self.system.lookup(target.as_str()) {
            return Ok(local.demonitor(id));
        }
        // On another host, which forgets it.
        let Some(remote) = self.system.remote() else { return Ok(false) };
        let watch = RemoteWatch { watcher: self.me.address().clone(), id, link: false };
        let waited = Instant::now();
        let known = remote.unwatch(target.as_str(), watch).await;
        self.budget.waited(waited.elapsed());
        Ok(known)
    }

    /// The actor at `address` that this actor is about to monitor or link
    /// to (`link`): here, or on another host of the cluster, which has
    /// been asked to watch it for this actor.
    async fn watch_target(&mut self, address: &str, link: bool) -> Result<WatchTarget, Error> {
        let unknown = match self.target(address) {
            Ok(target) => return Ok(WatchTarget::Here(target)),
            Err(unknown) => unknown,
        };
        let Some(remote) = self.system.remote() else { return Err(unknown) };
        let id = super::cell::next_watch_id();
        let watch = RemoteWatch { watcher: self.me.address().clone(), id, link };
        let waited = Instant::now();
        let watched = remote.watch(address, watch).await;
        self.budget.waited(waited.elapsed());
        match watched.map_err(Error::from)? {
            Watched::On(node) => Ok(WatchTarget::Remote { id, node }),
            // A key this host has just claimed for the watch.
            Watched::Here => self.target(address).map(WatchTarget::Here),
        }
    }

    async fn bind_live(
        &mut self,
        interface: String,
        target: types::BindingTarget,
    ) -> wasmtime::Result<Result<(), Error>> {
        let me = self.me.clone();
        Ok(self.system.bind(&me, &interface, binding_spec(target)).map_err(Error::from))
    }

    async fn unbind_live(&mut self, interface: String) -> wasmtime::Result<bool> {
        Ok(self.me.remove_binding(&interface))
    }

    async fn link_live(&mut self, address: String) -> wasmtime::Result<Result<(), Error>> {
        Ok(match self.watch_target(&address, true).await {
            Ok(WatchTarget::Here(target)) => {
                self.me.link(&target);
                Ok(())
            }
            Ok(WatchTarget::Remote { id, node }) => {
                // This end of the link: its failure goes to the other.
                self.me.add_remote_watcher(id, address.into(), node, true);
                Ok(())
            }
            Err(e) => Err(e),
        })
    }

    async fn unlink_live(&mut self, address: String) -> wasmtime::Result<bool> {
        if let Some(target) = self.system.lookup(&address) {
            return Ok(self.me.unlink(&target));
        }
        let Some(id) = self.me.remove_remote_link(&address.as_str().into()) else { return Ok(false) };
        if let Some(remote) = self.system.remote() {
            let watch = RemoteWatch { watcher: self.me.address().clone(), id, link: true };
            let waited = Instant::now();
            remote.unwatch(&address, watch).await;
            self.budget.waited(waited.elapsed());
        }
        Ok(true)
    }

    async fn send_after_live(&mut self, delay_ms: u64, message: String) -> wasmtime::Result<Result<u64, Error>> {
        let delay = Duration::from_millis(delay_ms);
        if delay > MAX_TIMER_DELAY {
            return Ok(Err(Error::InvalidArgument(format!(
                "delay of {delay_ms} ms exceeds the maximum of {} ms (30 days)",
                MAX_TIMER_DELAY.as_millis()
            ))));
        }
        let call = match self.me.parse(&message) {
            Ok(c) => c,
            Err(e) => return Ok(Err(CallError::from(e).into())),
        };
        let me = self.me.clone();
        let set = Instant::now();
        let id = me.set_timer(delay, call, self.system.clone()).await;
        self.budget.waited(set.elapsed());
        Ok(match id {
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(Error::QuotaExceeded(format!(
                "`{}` already has {} pending timers (`max-timers`)",
                self.me.address(),
                self.me.limits().max_timers
            ))),
            Err(e) => Err(e.into()),
        })
    }

    async fn cancel_timer_live(&mut self, id: u64) -> wasmtime::Result<bool> {
        Ok(self.me.cancel_timer(id))
    }

    async fn log_live(&mut self, level: Level, message: String, fields: Vec<(String, String)>) -> wasmtime::Result<()> {
        let (allowed, dropped) = self.log_budget.take();
        if dropped > 0 {
            tracing::warn!(target: "troupe::guest", actor = %self.me.address(), dropped, "log records dropped (rate limit)");
        }
        if !allowed {
            return Ok(());
        }
        let message = clip(&message, MAX_LOG_BYTES);
        let mut rendered = String::new();
        for (k, v) in fields.iter().take(32) {
            if rendered.len() > MAX_LOG_BYTES {
                break;
            }
            rendered.push_str(&format!("{}={:?} ", clip(k, 64), clip(v, 256)));
        }
        let actor: &Address = self.me.address();
        let fields = rendered.trim_end();
        match level {
            Level::Trace => {
                event!(target: "troupe::guest", TraceLevel::TRACE, %actor, fields, "{message}")
            }
            Level::Debug => {
                event!(target: "troupe::guest", TraceLevel::DEBUG, %actor, fields, "{message}")
            }
            Level::Info => {
                event!(target: "troupe::guest", TraceLevel::INFO, %actor, fields, "{message}")
            }
            Level::Warn => {
                event!(target: "troupe::guest", TraceLevel::WARN, %actor, fields, "{message}")
            }
            Level::Error => {
                event!(target: "troupe::guest", TraceLevel::ERROR, %actor, fields, "{message}")
            }
        }
        Ok(())
    }
}

fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
