//! A circuit breaker over the calls through a binding between actors
//! (`bindings = { "acme:pay/api" = { actor = "pay", breaker = { failures = 5,
//! reset-ms = 10000 } } }`): the actor layer's
//! [`CallBreaker`] over a [`Breaker`]; and the retries of a binding whose
//! calls are marked idempotent (`retry = { attempts = 3 }`): its
//! [`CallRetries`] over [`Retries`] and their budget.
//!
//! A call fails when the target fails handling it, the ask times out, the
//! target is gone or its mailbox is full; while the breaker is open, calls
//! fail the caller's message at once with `circuit-open`, and nothing
//! reaches the target. The actors sharing a binding spec (those of one
//! manifest entry) share its breaker.

use std::sync::Arc;
use std::time::Instant;

use super::breaker::{Breaker, BreakerConfig, BreakerConfigError, Outcome, Ticket, Transition};
use super::retry::{CallAttempts, Idempotency, Retries, RetryConfig, RetryConfigError, RetryDecision};
use crate::actor::binding::{
    BindingBreaker, BindingRetries, BreakerReading, BreakerTicket, CallBreaker, CallRetries, RetryTicket,
};
use crate::actor::configured::{Configured, Handle};
use crate::events::{EventBus, EventKind};
use crate::message::Address;
use crate::sync::Mutex;

/// The breaker of one binding (see the module doc).
pub struct BreakerGuard {
    /// The imported interface, naming the dependency in events.
    interface: String,
    config: BreakerConfig,
    breaker: Mutex<Breaker>,
}

impl BreakerGuard {
    /// A closed breaker over the binding of `interface`, as a binding's
    /// [`BindingBreaker`].
    ///
    /// # Errors
    ///
    /// A [`BreakerConfigError`] if `config` is invalid.
    pub fn binding(interface: &str, config: BreakerConfig) -> Result<BindingBreaker, BreakerConfigError> {
        config.validate()?;
        Ok(Handle(Arc::new(BreakerGuard {
            interface: interface.to_string(),
            config,
            breaker: Mutex::new(Breaker::new(config)),
        })))
    }

    fn publish(&self, caller: &Address, events: &EventBus, transition: Option<Transition>) {
        if let Some(t) = transition {
            tracing::info!(actor = %caller, binding = %self.interface, from = ?t.from, to = ?t.to, "circuit breaker changed state");
            events.publish(caller, breaker_event(&self.interface, t));
        }
    }
}

/// The event of a breaker over `dependency` changing state.
pub(crate) fn breaker_event(dependency: &str, t: Transition) -> EventKind {
    let name = |phase| serde_json::to_value(phase).ok().and_then(|v| v.as_str().map(str::to_string));
    EventKind::Breaker {
        dependency: dependency.to_string(),
        from: name(t.from).unwrap_or_default(),
        to: name(t.to).unwrap_or_default(),
        cause: serde_json::to_value(t.cause).unwrap_or_default(),
    }
}

impl CallBreaker for BreakerGuard {
    fn admit(&self, caller: &Address, events: &EventBus) -> Result<BreakerTicket, String> {
        let admission = self.breaker.lock().admit(Instant::now());
        self.publish(caller, events, admission.transition);
        match admission.ticket {
            Ok(ticket) => Ok(BreakerTicket(Box::new(ticket))),
            Err(open) => Err(open.to_string()),
        }
    }

    fn record(&self, ticket: BreakerTicket, failed: Option<bool>, caller: &Address, events: &EventBus) {
        let Ok(ticket) = ticket.0.downcast::<Ticket>() else { return };
        let outcome = match failed {
            Some(true) => Outcome::Failure,
            Some(false) => Outcome::Success,
            None => Outcome::Cancelled,
        };
        let transition = self.breaker.lock().record(*ticket, outcome, Instant::now());
        self.publish(caller, events, transition);
    }

    fn status(&self) -> serde_json::Value {
        serde_json::to_value(self.breaker.lock().status(Instant::now())).unwrap_or_default()
    }

    fn reading(&self) -> BreakerReading {
        self.breaker.lock().reading(&self.interface)
    }
}

impl Configured for BreakerGuard {
    fn describe(&self) -> String {
        format!("{}: {}", self.interface, serde_json::to_string(&self.config).unwrap_or_default())
    }
}

/// The retries of one binding's calls (see the module doc).
pub struct RetryGuard {
    interface: String,
    config: RetryConfig,
    retries: Mutex<Retries>,
}

impl RetryGuard {
    /// Retries of the calls through the binding of `interface`, marked
    /// idempotent by configuring them, as a binding's [`BindingRetries`].
    ///
    /// # Errors
    ///
    /// A [`RetryConfigError`] if `config` is invalid.
    pub fn binding(interface: &str, config: RetryConfig) -> Result<BindingRetries, RetryConfigError> {
        config.validate()?;
        Ok(Handle(Arc::new(RetryGuard {
            interface: interface.to_string(),
            config,
            retries: Mutex::new(Retries::new(config)),
        })))
    }
}

impl CallRetries for RetryGuard {
    fn start(&self) -> RetryTicket {
        RetryTicket(Box::new(self.retries.lock().start_call(Instant::now())))
    }

    fn after_failure(&self, call: &mut RetryTicket) -> Option<std::time::Duration> {
        let call = call.0.downcast_mut::<CallAttempts>()?;
        let decision =
            self.retries.lock().after_failure(call, Idempotency::Idempotent, Instant::now(), fastrand::f64());
        match decision {
            RetryDecision::RetryAfter(wait) => Some(wait),
            RetryDecision::GiveUp(_) => None,
        }
    }
}

impl Configured for RetryGuard {
    fn describe(&self) -> String {
        format!("{}: {}", self.interface, serde_json::to_string(&self.config).unwrap_or_default())
    }
}
