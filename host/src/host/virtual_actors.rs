//! Virtual actors: a component declared virtual (`[virtual.NAME]` in the
//! manifest, [`Host::define_virtual`]) makes every address `NAME/KEY` one
//! that exists. Nobody spawns it: the first message to it, from anywhere
//! (the CLI, the library, a guest's tell or ask), activates it, and it
//! learns its key in `init`'s configuration (`key`) and through
//! `self-address`. When idle for the entry's `idle` it passivates: it
//! snapshots and leaves the host, cell and instance and address (see
//! [`ActorSystem::passivate`]). A durable key's state is in the store, so
//! that nothing of it stays in memory and a later host activates it where
//! the last one left it; a key in memory leaves its state with its
//! entry. Its next timer, if one is armed, activates it when due (a
//! reminder). A key that cannot leave yet (another actor watches it, its
//! tells are on their way) hibernates instead, and stays registered.
//!
//! One activation per key: activations and passivations are made under
//! one lock, and whoever finds the address registered uses the actor
//! there. A passivation closes the actor's mailbox only if it is empty,
//! and takes the address back at once: a sender that reached the actor
//! just before has its message refused, and sends it on to the next
//! activation (see [`ActorRef::passivate`]).
//!
//! A virtual actor is `temporary` under its entry's supervisor: a failure
//! stops it, and its next message activates it again (from its committed
//! state, if durable), so that a key that keeps failing never takes the
//! entry's other keys down with it. Its keys' failures count against the
//! entry's intensity; past it, a `failure-storm` event says so.

use std::collections::HashMap;
use std::time::Duration;

use tracing::warn;
use wasmtime::component::Val;

use super::{ActorTemplate, Host, HostInner, SuperviseError};
use crate::actor::binding::{BindingSpec, BindingTarget, key_text};
use crate::actor::durable::Durability;
use crate::actor::{ActorComponent, ActorRef, ActorSystem, Snapshot};
use crate::events::EventKind;
use crate::message::{Address, CallError};
use crate::supervision::{IntensityCheck, RestartLog, RestartType, SupervisorSpec};
use crate::sync::{Arc, Mutex};

/// How long a virtual actor stays active without a message, unless its
/// entry says otherwise: as long as an Orleans grain.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(15 * 60);

/// How many instances a virtual component keeps ready for its
/// activations, unless its entry says otherwise: enough for a burst of
/// first messages to find one while the next are being made.
pub const DEFAULT_WARM_INSTANCES: u32 = 2;

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
    /// The states of its passivated keys in memory, by key.
    parked: Parked,
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

/// Where the keys of a virtual component are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct KeyCounts {
    /// Active: in the host, awake.
    pub active: u64,
    /// Passivated: asleep in the host, or gone from it, their state in the
    /// store (durable) or kept by the host (in memory).
    pub passivated: u64,
}

/// The virtual entries of a host, by name, and the lock activations take.
#[derive(Default)]
pub(super) struct Virtuals {
    entries: Mutex<std::collections::HashMap<String, VirtualEntry>>,
    activating: Mutex<()>,
    /// Held while an entry is defined, and while a cluster's placement is
    /// attached: neither misses the other.
    defining: Mutex<()>,
}

/// The states its passivated keys left in memory, by key.
type Parked = Arc<Mutex<HashMap<String, Snapshot>>>;

impl Virtuals {
    /// Holds off definitions of virtual components while it lives.
    pub(super) fn defining(&self) -> crate::sync::MutexGuard<'_, ()> {
        self.defining.lock()
    }

    /// Where the keys of the virtual component `name` that passivated in
    /// memory left their states, if it is one (without copying its entry).
    fn parked(&self, name: &str) -> Option<Parked> {
        self.entries.lock().get(name).map(|entry| entry.parked.clone())
    }
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
        let _one_definition_at_a_time = self.inner.virtuals.defining();
        if template.policy.durability == Durability::Durable
            && self.inner.placement.get().is_some_and(|placement| placement.journal().is_none())
        {
            return Err(SuperviseError::DurableVirtualInCluster(name.to_string()));
        }
        self.supervise(name, SupervisorSpec::default(), None)?;
        let entry = VirtualEntry {
            template,
            idle,
            failures: Arc::default(),
            activations: Arc::default(),
            parked: Arc::default(),
        };
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

    /// Whether the keys of the virtual component `name` are durable, if it
    /// is one.
    pub fn virtual_durability(&self, name: &str) -> Option<Durability> {
        self.inner.virtuals.entries.lock().get(name).map(|entry| entry.template.policy.durability)
    }

    /// Is `name` a virtual component of this host?
    pub fn is_virtual_component(&self, name: &str) -> bool {
        self.inner.virtuals.entries.lock().contains_key(name)
    }

    /// The names of the virtual components, in name order.
    pub fn virtual_components(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.virtuals.entries.lock().keys().cloned().collect();
        names.sort();
        names
    }

    /// How many keys of the virtual component `name` are active here
    /// (awake; without reading the store).
    pub fn active_keys(&self, name: &str) -> u64 {
        let keys = self.inner.registry.group(name);
        keys.iter().filter(|key| key.status() != crate::actor::ActorStatus::Hibernating).count() as u64
    }

    /// Where the keys of the virtual component `name` are, if it is one.
    /// Counting those gone from the host reads the store.
    ///
    /// # Errors
    ///
    /// The store could not be read.
    pub fn virtual_keys(&self, name: &str) -> Result<Option<KeyCounts>, crate::actor::durable::JournalError> {
        let Some(parked) = self.inner.virtuals.parked(name) else { return Ok(None) };
        let prefix = format!("{name}/");
        let keys = self.inner.registry.group(name);
        let asleep = keys.iter().filter(|key| key.status() == crate::actor::ActorStatus::Hibernating).count() as u64;
        let mut counts = KeyCounts { active: keys.len() as u64 - asleep, passivated: asleep };
        counts.passivated += parked.lock().len() as u64;
        if let Some(journal) = self.inner.journal_for(&prefix) {
            let registry = &self.inner.registry;
            counts.passivated += journal.stored_under(&prefix, &|address| registry.get(address).is_some())?;
        }
        Ok(Some(counts))
    }

    /// Passivates the actor at `address` now, between two messages: a key
    /// of a virtual component leaves the host (see the module doc), any
    /// other actor hibernates (its instance goes, its state stays) until
    /// its next message. `false` if it could not: it has messages queued,
    /// is not running, or does not export `persistence`. An address not
    /// active is not activated for this.
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
        let names: Vec<String> = self.inner.virtuals.entries.lock().keys().cloned().collect();
        let mut outcomes = Vec::new();
        for name in names {
            let Some(journal) = self.inner.journal_for(&format!("{name}/")) else { continue };
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
    /// Where the actor at `address` commits if it is durable: the
    /// cluster's store for a key of a virtual component on a host in a
    /// cluster, or a named actor this host claimed there (see
    /// `singletons.rs`), else the host's own.
    pub(super) fn journal_for(&self, address: &str) -> Option<Arc<dyn crate::actor::durable::Journal>> {
        let placement = self.placement.get();
        let shared = placement.and_then(|placement| placement.journal());
        match shared {
            Some(shared) if self.is_virtual_key(address) || placement.is_some_and(|p| p.holds(address)) => Some(shared),
            _ => self.journal.clone(),
        }
    }

    /// Is `address` a key of one of the virtual components (or, with a
    /// trailing `/`, the prefix of their keys)?
    pub(super) fn is_virtual_key(&self, address: &str) -> bool {
        address.rsplit_once('/').is_some_and(|(name, _)| self.virtuals.entries.lock().contains_key(name))
    }

    /// A durable virtual component, if there is one.
    pub(super) fn durable_virtual_component(&self) -> Option<String> {
        let entries = self.virtuals.entries.lock();
        entries.iter().find(|(_, e)| e.template.policy.durability == Durability::Durable).map(|(n, _)| n.clone())
    }

    /// The key at `address` just left the registry: in a cluster, its
    /// claim goes back unless its state stays here (see [`Placement`]).
    ///
    /// [`Placement`]: super::Placement
    pub(super) fn key_left(&self, address: &str) {
        let Some(placement) = self.placement.get() else { return };
        let Some((name, key)) = address.rsplit_once('/') else { return };
        let Some(parked) = self.virtuals.parked(name) else { return };
        if !parked.lock().contains_key(key) {
            placement.release(address);
        }
    }

    /// The code a binding's target runs where this host cannot see it, to
    /// type-check the binding against: for the keys of a virtual
    /// component, the component's; in a cluster, for a named actor this
    /// host does not run, the code of its manifest entry of that name (it
    /// runs on another node, where calls through the binding reach it).
    pub(super) fn target_template(&self, spec: &BindingSpec) -> Option<Arc<ActorComponent>> {
        match &spec.target {
            BindingTarget::Virtual { component, .. } => {
                self.virtuals.entries.lock().get(component).map(|entry| entry.template.component.clone())
            }
            BindingTarget::Actor(address)
                if self.remote.get().is_some() && self.registry.get(address.as_str()).is_none() =>
            {
                self.catalog.template(address.as_str()).map(|template| template.component)
            }
            BindingTarget::Actor(_) | BindingTarget::Group { .. } => None,
        }
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

    /// A key of a virtual component that has just hibernated leaves the
    /// host, if it is one and owns no supervisor (see
    /// [`ActorSystem::passivate`]).
    pub(super) fn passivate_key(&self, actor: &ActorRef, state: &Snapshot) -> bool {
        let address = actor.address().as_str();
        let Some((name, key)) = address.rsplit_once('/') else { return false };
        if actor.group() != Some(name) || self.tree.supervisor(address).is_some() {
            return false;
        }
        let Some(parked) = self.virtuals.parked(name) else { return false };
        let wake_at = actor.next_timer();
        let _one_at_a_time = self.virtuals.activating.lock();
        let host: std::sync::Weak<dyn ActorSystem> = self.me.clone();
        if !actor.passivate(host) {
            return false;
        }
        if !actor.is_durable() {
            parked.lock().insert(key.to_string(), state.clone());
        }
        ActorSystem::unregister(self, actor);
        if let Some(due) = wake_at {
            let (host, address) = (self.me.clone(), address.to_string());
            tokio::spawn(async move {
                tokio::time::sleep_until(due.into()).await;
                if let Some(host) = host.upgrade()
                    && let Err(e) = host.find(&address)
                {
                    warn!(%address, error = %e, "a reminder could not activate its key");
                }
            });
        }
        true
    }

    /// The keys of the virtual component `name` (if it is one) activate
    /// from `component` from now on: a swap of it was committed.
    pub(super) fn redefine_virtual(&self, name: &str, component: Arc<ActorComponent>) {
        if let Some(entry) = self.virtuals.entries.lock().get_mut(name) {
            entry.template.component = component;
        }
    }

    /// Is `address` a key of a virtual component (not active)? If so, the
    /// state it left in memory, if any, is forgotten: it is stopped for
    /// good, and its next message activates it fresh.
    pub(super) fn forget_passivated_key(&self, address: &str) -> bool {
        let Some((name, key)) = address.rsplit_once('/') else { return false };
        let Some(parked) = self.virtuals.parked(name) else { return false };
        if check_key(key).is_err() {
            return false;
        }
        parked.lock().remove(key);
        if let Some(placement) = self.placement.get() {
            placement.release(address);
        }
        true
    }

    /// The actor at `address`: the one registered, or, for a key of a
    /// virtual component, the one its first message activates now.
    pub(super) fn find(&self, address: &str) -> Result<ActorRef, CallError> {
        let unknown = || CallError::UnknownAddress(address.into());
        // One that is passivating is about to leave: the lock below waits
        // for that.
        if let Some(actor) = self.registry.get(address)
            && !actor.is_passivated()
        {
            return Ok(actor);
        }
        let claiming = std::time::Instant::now();
        let (name, key) = address.rsplit_once('/').ok_or_else(unknown)?;
        if !self.virtuals.entries.lock().contains_key(name) {
            return Err(unknown());
        }
        check_key(key).map_err(|problem| CallError::InvalidKey {
            address: address.into(),
            component: name.to_string(),
            problem,
        })?;
        // In a cluster, only the host that holds the key's claim; the
        // others send the message there.
        if self.placement.get().is_some_and(|placement| !placement.holds(address)) {
            return Err(unknown());
        }
        let _one_at_a_time = self.virtuals.activating.lock();
        if let Some(actor) = self.registry.get(address) {
            return Ok(actor);
        }
        // The entry's parts this activation needs, not a copy of it.
        let (mut spec, parked, activations) = {
            let entries = self.virtuals.entries.lock();
            let entry = entries.get(name).ok_or_else(unknown)?;
            let mut spec = entry.template.spec(Address::from(address));
            spec.policy.hibernate_after = entry.idle;
            (spec, entry.parked.clone(), entry.activations.clone())
        };
        spec.group = Some(name.to_string());
        spec.policy.restart = RestartType::Temporary;
        spec.policy.config.retain(|(k, _)| k != "key");
        spec.policy.config.push(("key".into(), key.to_string()));
        let node = self.named_supervisor(name).map_err(|_| unknown())?;
        let mut state = parked.lock().remove(key);
        match self.start_from(spec, &node, &mut state, claiming) {
            Ok(starting) => {
                let mut activations = activations.lock();
                activations.count += 1;
                activations.claim_us += claiming.elapsed().as_micros() as u64;
                Ok(starting.actor().clone())
            }
            Err(e) => {
                // A failed start keeps it, for the next message.
                if let Some(state) = state {
                    parked.lock().insert(key.to_string(), state);
                }
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
