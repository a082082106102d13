//! Typed calls between actors through imported WIT interfaces.
//!
//! An actor component may import any protocol interface that other actors
//! export (`import acme:counter/api;`). The host satisfies such imports
//! itself: each imported function becomes a message to the actor (or group
//! of actors) the interface is *bound* to. A function with a result is an
//! ask — the caller's instance is suspended, without blocking a thread and
//! without spending its CPU budget, until the typed reply arrives; a
//! function without a result is a tell. Values cross as typed component
//! values, never as text.
//!
//! Bindings come from the manifest (`bindings`), from the spawner
//! (`spawn-options.bindings`), or from the actor itself at run time
//! (`troupe:actor/host.bind`). Every binding is type-checked when it is
//! made: the target must export the interface with identical types.
//!
//! # Failure semantics (like `gen_server:call`)
//!
//! A call through a binding that cannot complete *fails the caller's
//! message* (a `host-call` failure, so its supervisor applies its policy):
//! the interface is unbound, the target is gone, its mailbox is full, the
//! ask times out (`timeout-ms`, default 5000), the target fails while
//! handling it, or the call would close a cycle (A asks B asks A), which
//! is detected at once instead of waiting for the timeout. Guests that
//! need to handle such errors as values use `troupe:actor/host.ask`.
//!
//! A binding may have a circuit breaker ([`CallBreaker`], configured as
//! `breaker = {...}`): after its target failed enough calls, calls fail
//! the caller at once with `circuit-open`, without reaching the target,
//! until a trial call succeeds (see `crate::outbound::breaker`); and
//! retries ([`CallRetries`], `retry = {...}`, which marks its calls
//! idempotent): a call that failed transiently is tried again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::component::Val;

use super::ActorRef;
use super::configured::{Configured, Handle};
use crate::error_code::{ErrorCode, HasErrorCode};
use crate::events::EventBus;
use crate::message::{Address, DEFAULT_ASK_TIMEOUT};
use crate::protocol::{Call, MessageError};

/// How a group shares the calls made through one binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Router {
    /// Each call to the next member in turn.
    RoundRobin,
    /// Each call to a random member.
    Random,
    /// Each call to the member with the shortest mailbox.
    LeastLoaded,
    /// Each call to every member. Tells only: an ask through a broadcast
    /// binding fails the caller.
    Broadcast,
    /// The same value of the named parameter always reaches the same
    /// member; adding or removing a member moves about 1/N of the keys.
    /// Calls to functions without that parameter fail the caller.
    HashOn(String),
}

/// Where a binding's calls go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BindingTarget {
    /// One actor.
    Actor(Address),
    /// The live actors of a group, chosen per call by a router.
    Group {
        /// The group: a manifest entry (or component) name, or a pool
        /// supervisor's name.
        name: String,
        /// How calls are shared.
        router: Router,
    },
    /// The key of a virtual component that each call names: the value
    /// of its argument `key_from` (a string, or an integer), so that a
    /// call to `get-balance(user-id)` goes to `COMPONENT/USER-ID`,
    /// activated if need be.
    Virtual {
        /// The virtual component.
        component: String,
        /// The parameter whose argument is the key.
        key_from: String,
    },
}

/// A binding as configured: target, ask timeout, and circuit breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingSpec {
    /// Where calls go.
    pub target: BindingTarget,
    /// How long an ask through this binding waits.
    pub timeout: Duration,
    /// A circuit breaker over its calls, if configured (`breaker = {...}`
    /// in the manifest): none by default.
    #[serde(skip)]
    pub breaker: Option<BindingBreaker>,
    /// Retries of its calls, if configured (`retry = {...}` in the
    /// manifest, which marks its calls idempotent): none by default.
    #[serde(skip)]
    pub retry: Option<BindingRetries>,
}

/// Retries of the calls through a binding whose configuration marks them
/// idempotent, as the actor layer sees them: `crate::outbound` implements
/// it over its retry budget. A call is retried after a transient failure
/// only: no target, a full mailbox, a timeout, a target that stopped;
/// never after the target failed handling it.
pub trait CallRetries: Configured {
    /// A call begins (counted in the budget): its attempts so far.
    fn start(&self) -> RetryTicket;

    /// An attempt of `call` failed transiently: how long to wait before
    /// the next, or `None` to give up.
    fn after_failure(&self, call: &mut RetryTicket) -> Option<Duration>;
}

/// The attempts of one call, for its [`CallRetries`].
pub struct RetryTicket(pub Box<dyn std::any::Any + Send>);

/// A binding's retries: a handle on them (and their budget), shared by
/// the clones of the spec.
pub type BindingRetries = Handle<dyn CallRetries>;

/// A circuit breaker over the calls through a binding, as the actor layer
/// sees it: `crate::outbound` implements it over its breaker, and the host
/// puts it into the bindings it builds. A call it refuses fails the
/// caller's message (`circuit-open`) without reaching the target.
pub trait CallBreaker: Configured {
    /// May a call by `caller` go through now? `Err` says why it fails
    /// fast. State changes are published on `events`.
    fn admit(&self, caller: &Address, events: &EventBus) -> Result<BreakerTicket, String>;

    /// The outcome of a call admitted with `ticket`: failed (the target
    /// failed, timed out, or was gone) or not; `None` if it was abandoned.
    fn record(&self, ticket: BreakerTicket, failed: Option<bool>, caller: &Address, events: &EventBus);

    /// Its state, as `troupe ps --json` shows it.
    fn status(&self) -> serde_json::Value;

    /// Its state and changes so far, as the metrics show them.
    fn reading(&self) -> BreakerReading;
}

/// A circuit breaker as the metrics read it: a binding's, or an outbound
/// URL pattern's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerReading {
    /// What it guards: an imported interface, or a URL pattern.
    pub dependency: String,
    /// Its state now, by name (`closed`, `open`, `half-open`).
    pub state: &'static str,
    /// How many times it entered each state, by name, every state named.
    pub entered: Vec<(&'static str, u64)>,
}

/// A call admitted by a [`CallBreaker`], to give back with its outcome.
pub struct BreakerTicket(pub Box<dyn std::any::Any + Send>);

/// A binding's breaker: a handle on it, shared by the clones of the spec.
pub type BindingBreaker = Handle<dyn CallBreaker>;

impl BindingSpec {
    /// A binding to one actor with the default timeout.
    pub fn actor(address: impl Into<Address>) -> Self {
        BindingSpec {
            target: BindingTarget::Actor(address.into()),
            timeout: DEFAULT_ASK_TIMEOUT,
            breaker: None,
            retry: None,
        }
    }

    /// A binding to a group with the default timeout.
    pub fn group(name: impl Into<String>, router: Router) -> Self {
        let target = BindingTarget::Group { name: name.into(), router };
        BindingSpec { target, timeout: DEFAULT_ASK_TIMEOUT, breaker: None, retry: None }
    }

    /// A binding to the keys of the virtual component `component`, each
    /// call's key being its argument `key_from`, with the default timeout.
    pub fn virtual_key(component: impl Into<String>, key_from: impl Into<String>) -> Self {
        let target = BindingTarget::Virtual { component: component.into(), key_from: key_from.into() };
        BindingSpec { target, timeout: DEFAULT_ASK_TIMEOUT, breaker: None, retry: None }
    }
}

/// A live binding of one actor's imported interface.
#[derive(Debug)]
pub struct Binding {
    /// Its configuration.
    pub spec: BindingSpec,
    next: AtomicUsize,
}

impl Binding {
    /// A live binding for `spec`.
    pub fn new(spec: BindingSpec) -> Self {
        Binding { spec, next: AtomicUsize::new(0) }
    }

    /// The round-robin position for the next call among `members`.
    pub fn next_index(&self, members: usize) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % members.max(1)
    }
}

/// The identity of an interface across versions: `ns:pkg/iface` without
/// `@version`.
pub fn interface_key(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

impl ActorRef {
    /// The binding of the imported interface `interface` (any version).
    pub fn binding(&self, interface: &str) -> Option<Arc<Binding>> {
        self.0.bindings.read().get(interface_key(interface)).cloned()
    }

    /// Every binding, by interface.
    pub fn bindings(&self) -> Vec<(String, BindingSpec)> {
        let bindings = self.0.bindings.read();
        let mut all: Vec<(String, BindingSpec)> = bindings.iter().map(|(k, b)| (k.clone(), b.spec.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Binds `interface`, replacing any earlier binding. The caller has
    /// type-checked it.
    pub(crate) fn set_binding(&self, interface: &str, spec: BindingSpec) {
        self.0.bindings.write().insert(interface_key(interface).to_string(), Arc::new(Binding::new(spec)));
    }

    /// Unbinds `interface`; false if it was not bound.
    pub(crate) fn remove_binding(&self, interface: &str) -> bool {
        self.0.bindings.write().remove(interface_key(interface)).is_some()
    }

    /// A call to this actor's `interface.function` with typed `args`, as an
    /// importer bound to it makes one.
    ///
    /// # Errors
    ///
    /// [`MessageError`] if the function is missing or the types differ.
    pub(crate) fn import_call(&self, interface: &str, function: &str, args: &[Val]) -> Result<Call, MessageError> {
        self.with_code(|component, generation| {
            let protocol = component.protocol();
            let func = protocol.find(interface_key(interface), function).ok_or_else(|| {
                MessageError::UnknownFunction { name: format!("{interface}.{function}"), accepted: protocol.summary() }
            })?;
            protocol.check(func, args)?;
            Ok(Call { func, args: args.into(), generation })
        })
    }
}

/// Why a binding was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// The actor does not import this interface.
    #[error("`{actor}` does not import `{interface}`; it imports: {imports}")]
    NotImported {
        /// The binding actor.
        actor: Address,
        /// The interface.
        interface: String,
        /// What it does import (protocol interfaces only).
        imports: String,
    },
    /// The target does not exist.
    #[error("cannot bind `{interface}` to `{target}`: no such actor")]
    UnknownTarget {
        /// The interface.
        interface: String,
        /// The target.
        target: Address,
    },
    /// A function is missing from, or typed differently by, the target.
    #[error("cannot bind `{interface}` to `{target}`: `{function}` is imported as `{expected}` but `{target}` {found}")]
    Mismatch {
        /// The interface.
        interface: String,
        /// The target.
        target: String,
        /// The function.
        function: String,
        /// The importer's signature.
        expected: String,
        /// What the target has.
        found: String,
    },
    /// Broadcast over an interface whose every function returns something.
    #[error("broadcast routes tells only, but every function of the interface returns a result (`{function}` does)")]
    BroadcastAsk {
        /// The function.
        function: String,
    },
    /// `hash-on` names a parameter no function of the interface has.
    #[error("`hash-on({param})`: no function of `{interface}` has a parameter `{param}`")]
    NoSuchParam {
        /// The parameter.
        param: String,
        /// The interface.
        interface: String,
    },
}

impl HasErrorCode for BindError {
    fn code(&self) -> ErrorCode {
        match self {
            BindError::UnknownTarget { .. } => ErrorCode::UnknownAddress,
            _ => ErrorCode::BadBinding,
        }
    }
}

/// A key as a call's argument gives it: a string as it is, an integer in
/// decimal.
///
/// # Errors
///
/// Another type of argument.
pub fn key_text(value: &wasmtime::component::Val) -> Result<String, String> {
    use wasmtime::component::Val;
    Ok(match value {
        Val::String(s) => s.clone(),
        Val::U8(n) => n.to_string(),
        Val::U16(n) => n.to_string(),
        Val::U32(n) => n.to_string(),
        Val::U64(n) => n.to_string(),
        Val::S8(n) => n.to_string(),
        Val::S16(n) => n.to_string(),
        Val::S32(n) => n.to_string(),
        Val::S64(n) => n.to_string(),
        _ => return Err("a key is taken from a string or an integer argument".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_cycles_through_members() {
        let binding = Binding::new(BindingSpec::group("g", Router::RoundRobin));
        let picks: Vec<usize> = (0..6).map(|_| binding.next_index(3)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn a_key_is_a_string_argument_as_it_is_or_an_integer_in_decimal() {
        use wasmtime::component::Val;
        assert_eq!(key_text(&Val::String("ada".into())), Ok("ada".into()));
        assert_eq!(key_text(&Val::U64(42)), Ok("42".into()));
        assert_eq!(key_text(&Val::S32(-7)), Ok("-7".into()));
        assert!(key_text(&Val::Bool(true)).is_err());
    }
}
