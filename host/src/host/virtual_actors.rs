//! Virtual actors: a component declared virtual (`[virtual.NAME]` in the
//! manifest, [`Host::define_virtual`]) makes every address `NAME/KEY` one
//! that exists. Nobody spawns it: the first message to it, from anywhere
//! (the CLI, the library, a guest's tell or ask), activates it, and it
//! learns its key in `init`'s configuration (`key`) and through
//! `self-address`. When idle for the entry's `idle` it passivates (it
//! hibernates: no instance, its state kept; a durable one's state is in
//! the store, so a later host activates it where the last one left it).
//!
//! One activation per key: activations are made under one lock, and
//! whoever finds the address registered uses the actor there.
//!
//! A virtual actor is `temporary` under its entry's supervisor: a failure
//! stops it, and its next message activates it again (from its committed
//! state, if durable), so that a key that keeps failing never takes the
//! entry's other keys down with it. Its keys' failures count against the
//! entry's intensity; past it, a `failure-storm` event says so.

use std::time::Duration;

use tracing::warn;
use wasmtime::component::Val;

use super::{ActorTemplate, Host, HostInner, SuperviseError};
use crate::actor::binding::{BindingSpec, BindingTarget, key_text};
use crate::actor::{ActorComponent, ActorRef};
use crate::events::EventKind;
use crate::message::{Address, CallError};
use crate::supervision::{IntensityCheck, RestartLog, RestartType, SupervisorSpec};
use crate::sync::{Arc, Mutex};

/// How long a virtual actor stays active without a message, unless its
/// entry says otherwise: as long as an Orleans grain.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(15 * 60);

/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 128;

/// A virtual entry: the template its keys start from, how long an
/// activation stays idle before it passivates (`None`: never), and its
/// keys' recent failures, against the supervision intensity.
#[derive(Clone)]
pub(super) struct VirtualEntry {
    template: ActorTemplate,
    idle: Option<Duration>,
    failures: Arc<Mutex<RestartLog>>,
    activations: Arc<Mutex<Activations>>,
}

/// How many keys of a virtual component were activated, and how long
/// claiming them took (finding the key free and registering it; the
/// instance, `init` or `restore` and a replay follow, in each key's
/// `started` event).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Activations {
    /// Activations so far.
    pub count: u64,
    /// The time spent claiming them, in all, in microseconds.
    pub claim_us: u64,
}

/// The virtual entries of a host, by name, and the lock activations take.
#[derive(Default)]
pub(super) struct Virtuals {
    entries: Mutex<std::collections::HashMap<String, VirtualEntry>>,
    activating: Mutex<()>,
}

/// Why `key` cannot be a virtual actor's key, if it cannot.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("a key may not be empty".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!("a key is at most {MAX_KEY_BYTES} bytes; this one has {}", key.len()));
    }
    match key.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        Some(c) => Err(format!("a key holds letters, digits, `.`, `_` and `-`; not `{c}`")),
        None => Ok(()),
    }
}

impl Host {
    /// Declares the virtual component `name`: every address `name/KEY`
    /// (a valid key: see [`check_key`]) is an actor started from
    /// `template` on its first message, with `key` in its configuration,
    /// passivated after `idle` without messages (never if `None`).
    ///
    /// # Errors
    ///
    /// [`SuperviseError`]: the name is taken or invalid (its keys' actors
    /// live under a supervisor of that name).
    pub fn define_virtual(
        &self,
        name: &str,
        template: ActorTemplate,
        idle: Option<Duration>,
    ) -> Result<(), SuperviseError> {
        self.supervise(name, SupervisorSpec::default(), None)?;
        let entry = VirtualEntry { template, idle, failures: Arc::default(), activations: Arc::default() };
        self.inner.virtuals.entries.lock().insert(name.to_string(), entry);
        Ok(())
    }
}

impl Host {
    /// The activations of the virtual component `name` so far, if it is
    /// one.
    pub fn activations(&self, name: &str) -> Option<Activations> {
        self.inner.virtuals.entries.lock().get(name).map(|entry| *entry.activations.lock())
    }

    /// Passivates the actor at `address` now, between two messages: it
    /// hibernates (its instance goes, its state stays) until its next
    /// message. `false` if it could not: it has messages queued, is not
    /// running, or does not export `persistence`. An address not active is
    /// not activated for this.
    ///
    /// # Errors
    ///
    /// [`CallError::UnknownAddress`].
    pub async fn passivate(&self, address: &str) -> Result<bool, CallError> {
        let actor = self.inner.registry.get(address).ok_or_else(|| CallError::UnknownAddress(address.into()))?;
        Ok(actor.hibernate_now(PASSIVATE_PATIENCE).await)
    }
}

impl Host {
    /// Activates the keys of every virtual component that have work
    /// waiting in the store (acknowledged tells not handled, timers,
    /// tells not delivered), as a host does when it starts again: their
    /// reminders fire and their tells are handled without waiting for a
    /// message to them. Returns each key's address and the error that
    /// kept it from activating, if any.
    pub fn activate_waiting_keys(&self) -> Vec<(Address, Option<String>)> {
        let Some(journal) = &self.inner.journal else { return Vec::new() };
        let names: Vec<String> = self.inner.virtuals.entries.lock().keys().cloned().collect();
        let mut outcomes = Vec::new();
        for name in names {
            let waiting = match journal.waiting_under(&format!("{name}/")) {
                Ok(waiting) => waiting,
                Err(e) => {
                    outcomes.push((Address::from(name.as_str()), Some(e.to_string())));
                    continue;
                }
            };
            for address in waiting {
                // Deeper addresses are no keys of this component.
                if address.as_str().rsplit_once('/').is_some_and(|(prefix, _)| prefix == name) {
                    let outcome = self.inner.find(address.as_str()).err().map(|e| e.to_string());
                    outcomes.push((address, outcome));
                }
            }
        }
        outcomes
    }
}

/// How long a passivation by hand waits for the actor to finish its
/// current message.
const PASSIVATE_PATIENCE: Duration = Duration::from_secs(5);

impl HostInner {
    /// For a binding to the keys of a virtual component, the component's
    /// code, to type-check the binding against.
    pub(super) fn virtual_template(&self, spec: &BindingSpec) -> Option<Arc<ActorComponent>> {
        let BindingTarget::Virtual { component, .. } = &spec.target else { return None };
        self.virtuals.entries.lock().get(component).map(|entry| entry.template.component.clone())
    }

    /// The key of a virtual component a call through `binding` names,
    /// from its argument `key` (see [`BindingTarget::Virtual`]), activated
    /// if need be.
    pub(super) fn route_to_key(&self, component: &str, key: Option<&Val>, key_from: &str) -> Result<ActorRef, String> {
        let key = key.ok_or_else(|| format!("the call has no `{key_from}` argument to take its key from"))?;
        let key = key_text(key).map_err(|e| format!("`{key_from}`: {e}"))?;
        self.find(&format!("{component}/{key}")).map_err(|e| e.to_string())
    }

    /// A key of the virtual component `name` failed: counted against the
    /// component's intensity, and a failure storm reported once the
    /// failures within the period exceed it.
    pub(super) fn virtual_key_failed(&self, name: &str) {
        let Some(entry) = self.virtuals.entries.lock().get(name).cloned() else { return };
        let intensity = entry.template.policy.supervision.intensity();
        let mut failures = entry.failures.lock();
        if failures.add_restart(std::time::Instant::now(), intensity) == IntensityCheck::Escalate {
            let count = failures.len() as u32;
            failures.clear();
            warn!(component = name, failures = count, "the keys of a virtual component fail again and again");
            let event = EventKind::FailureStorm { failures: count, period_ms: intensity.period.as_millis() as u64 };
            self.events.publish(&Address::from(name), event);
        }
    }

    /// The actor at `address`: the one registered, or, for a key of a
    /// virtual component, the one its first message activates now.
    pub(super) fn find(&self, address: &str) -> Result<ActorRef, CallError> {
        let unknown = || CallError::UnknownAddress(address.into());
        if let Some(actor) = self.registry.get(address) {
            return Ok(actor);
        }
        let (name, key) = address.rsplit_once('/').ok_or_else(unknown)?;
        let entry = self.virtuals.entries.lock().get(name).cloned().ok_or_else(unknown)?;
        check_key(key).map_err(|problem| CallError::InvalidKey {
            address: address.into(),
            component: name.to_string(),
            problem,
        })?;
        let claiming = std::time::Instant::now();
        let _one_at_a_time = self.virtuals.activating.lock();
        if let Some(actor) = self.registry.get(address) {
            return Ok(actor);
        }
        let mut spec = entry.template.spec(Address::from(address));
        spec.group = Some(name.to_string());
        spec.policy.restart = RestartType::Temporary;
        spec.policy.hibernate_after = entry.idle;
        spec.policy.config.retain(|(k, _)| k != "key");
        spec.policy.config.push(("key".into(), key.to_string()));
        let node = self.named_supervisor(name).map_err(|_| unknown())?;
        match self.start(spec, &node) {
            Ok(starting) => {
                let mut activations = entry.activations.lock();
                activations.count += 1;
                activations.claim_us += claiming.elapsed().as_micros() as u64;
                Ok(starting.actor().clone())
            }
            Err(e) => {
                warn!(%address, error = %e, "a virtual actor could not be activated");
                Err(unknown())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_short_plain_text() {
        assert_eq!(check_key("42"), Ok(()));
        assert_eq!(check_key("user-7.eu_west"), Ok(()));
        assert!(check_key("").is_err());
        assert!(check_key("a/b").unwrap_err().contains("`/`"));
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES + 1)).unwrap_err().contains("at most 128 bytes"));
    }
}
