//! Starting actors: checking a spec against the host's limits, claiming its
//! address, binding its imports, placing it under its supervisor, and
//! starting its cell; and the children guests spawn, each under the
//! supervisor its parent owns (a durable one recorded, so that recovery
//! spawns it again).

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::tree::{Child, ChildRef, Node, NodeKind};
use super::{ActorTemplate, Host, HostInner, ROOT, Starting, SupervisorRef};
use crate::actor::ActorStatus;
use crate::actor::binding::interface_key;
use crate::actor::durable::Durability;
use crate::actor::http_port::{ChildHttpGrant, HttpAccess};
use crate::actor::{self, ActorRef, ActorSpec, Committed, Snapshot, SpawnError, SpawnOptions};
use crate::message::Address;
use crate::supervision::{Strategy, SupervisorSpec};

impl Host {
    /// Starts an actor under the root supervisor and waits until it has
    /// started.
    ///
    /// # Errors
    ///
    /// A [`SpawnError`]: address taken or invalid, invalid limits or grants,
    /// the host full, or the actor's start (`init`) failed.
    pub async fn spawn(&self, spec: ActorSpec) -> Result<ActorRef, SpawnError> {
        self.spawn_under(spec, None).await
    }

    /// Starts an actor under the root supervisor without waiting for it:
    /// its address takes messages at once (they queue while its `init`
    /// runs), like Erlang's `spawn` or kameo's `spawn`, where
    /// [`Host::spawn`] is `gen_server:start_link`. Many actors started this
    /// way instantiate in parallel on the runtime's threads.
    ///
    /// If its start then fails, nobody is told but [`Starting::started`]
    /// (if awaited), the log, and the `stopped` event, which carries the
    /// reason; messages queued meanwhile are answered `stopped`.
    ///
    /// # Errors
    ///
    /// As [`Host::spawn`], except for the start's own failure.
    pub fn start(&self, spec: ActorSpec) -> Result<Starting, SpawnError> {
        self.start_under(spec, None)
    }

    /// [`Host::start`] under the named supervisor (the root if `None`).
    ///
    /// # Errors
    ///
    /// As [`Host::start`], and [`SpawnError::UnknownSupervisor`].
    pub fn start_under(&self, spec: ActorSpec, supervisor: Option<&str>) -> Result<Starting, SpawnError> {
        let node = self.inner.named_supervisor(supervisor.unwrap_or(ROOT))?;
        self.inner.start(spec, &node)
    }

    /// Starts an actor under the named supervisor (the root if `None`).
    ///
    /// # Errors
    ///
    /// As [`Host::spawn`], and [`SpawnError::UnknownSupervisor`].
    pub async fn spawn_under(&self, spec: ActorSpec, supervisor: Option<&str>) -> Result<ActorRef, SpawnError> {
        let node = self.inner.named_supervisor(supervisor.unwrap_or(ROOT))?;
        self.inner.start(spec, &node)?.started().await
    }
}

impl HostInner {
    /// The supervisor (or the root) named `name`.
    pub(super) fn named_supervisor(&self, name: &str) -> Result<SupervisorRef, SpawnError> {
        self.tree.named(name).ok_or_else(|| SpawnError::UnknownSupervisor(name.to_string()))
    }

    /// Checks `spec`, claims its address, binds its imports, places it
    /// under `node` and starts its cell.
    pub(super) fn start(&self, spec: ActorSpec, node: &SupervisorRef) -> Result<Starting, SpawnError> {
        self.start_from(spec, node, &mut None, std::time::Instant::now())
    }

    /// [`HostInner::start`]; an actor in memory given a `state` starts
    /// asleep with it, restored by its first message (a passivated key of
    /// a virtual component). The state is taken only once nothing can
    /// fail any more: a failed start leaves it to the caller.
    pub(super) fn start_from(
        &self,
        spec: ActorSpec,
        node: &SupervisorRef,
        state: &mut Option<Snapshot>,
        began: std::time::Instant,
    ) -> Result<Starting, SpawnError> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(SpawnError::ShuttingDown);
        }
        Address::validate(spec.address.as_str())?;
        spec.policy.limits.validate(self.catalog.loader().engine().config().get_max_memory_bytes())?;
        spec.policy.grants.validate()?;
        if spec.policy.grants.http.is_none() && spec.component.imports_outgoing_http() {
            return Err(SpawnError::HttpNotGranted(spec.address.clone()));
        }
        spec.policy.supervision.validate()?;
        if self.registry.len() >= self.max_actors {
            return Err(SpawnError::Quota(format!(
                "the host runs {} actors, its maximum (raise it with `troupe run --max-actors`)",
                self.max_actors
            )));
        }
        if self.tree.with(|t| t.names_a_supervisor(spec.address.as_str())) {
            return Err(SpawnError::NameTaken(spec.address.clone()));
        }
        let mut spec = spec;
        let pool = node.spec().strategy == Strategy::Pool;
        if pool {
            let sibling = self.tree.with(|t| match t.first_child(node.address()) {
                Some(ChildRef::Actor(a)) => Some(a.clone()),
                _ => None,
            });
            // A pool's children form one group: its first child's (a
            // manifest pool's is its component's), else the pool's name.
            if spec.group.is_none() {
                let group = sibling.as_ref().and_then(|s| s.group().map(String::from));
                spec.group = Some(group.unwrap_or_else(|| node.address().to_string()));
            }
            if let Some(sibling) = sibling.map(|s| s.component())
                && sibling.hash != spec.component.hash
            {
                return Err(SpawnError::PoolMismatch {
                    pool: node.address().clone(),
                    expected: sibling.name.clone(),
                    address: spec.address.clone(),
                    found: spec.component.name.clone(),
                });
            }
        }
        let (boot, committed, pending, timers) = match spec.policy.durability {
            Durability::InMemory => (None, None, Vec::new(), Vec::new()),
            Durability::Durable => {
                let boot = self.durable_boot(&mut spec)?;
                (Some(boot.start), Some(boot.committed), boot.pending, boot.timers)
            }
        };
        let (actor, inbox) = ActorRef::create(&spec, boot, self.time_messages);
        // Acknowledged before the host went down: ahead of anything new,
        // whatever the mailbox's bound.
        inbox.mailbox.put_back(pending.into_iter());
        self.registry.insert(actor.clone()).map_err(|a| SpawnError::NameTaken(a.address().clone()))?;
        // Bind before the first incarnation, so that `init` can call out.
        for (interface, binding) in &spec.policy.bindings {
            let template = self.target_template(binding);
            if let Err(e) =
                self.routing.bind(&self.registry, &self.catalog, &actor, interface, binding.clone(), template)
            {
                self.registry.remove(&actor);
                return Err(e.into());
            }
        }
        // The supervisor learns of the child before it can fail.
        let child = Child::new(ChildRef::Actor(actor.clone()), spec.policy.restart);
        if !self.tree.with(|t| t.add_child(node.address(), spec.address.clone(), child)) {
            self.registry.remove(&actor);
            return Err(SpawnError::UnknownSupervisor(node.address().to_string()));
        }
        // Its address is its own now: its timers may fire into it.
        for (timer, call) in timers {
            if !actor.rearm_timer(&timer, call, self.arc()) {
                tracing::warn!(actor = %spec.address, timer = timer.id, "a recovered timer is over `max-timers`: dropped");
            }
        }
        let committed = committed.or_else(|| Some(Committed { state: Some(state.take()?), ..Committed::default() }));
        let started = actor::start(actor.clone(), inbox, spec, committed, self.arc(), self.resources.clone(), began);
        Ok(Starting { actor, started })
    }

    /// The supervisor of `actor`'s own children, created on first use.
    fn owned_node(&self, actor: &ActorRef, spec: &SupervisorSpec) -> SupervisorRef {
        self.tree.with(|t| {
            if let Some(node) = t.node(actor.address()) {
                return node.handle.clone();
            }
            let node = SupervisorRef::start(actor.address().clone(), spec.clone(), &self.arc());
            t.add_supervisor(Node::new(node.clone(), NodeKind::Owned(actor.clone())));
            node
        })
    }

    /// Starts a child of `parent` from the template named `template`,
    /// under the supervisor `parent` owns (or the one `options` names),
    /// and waits until it has started.
    pub(super) async fn spawn_child(
        &self,
        parent: &ActorRef,
        template: &str,
        options: SpawnOptions,
    ) -> Result<ActorRef, SpawnError> {
        self.start_child(parent, template, options, true).await
    }

    /// [`HostInner::spawn_child`]; a durable child is recorded if
    /// `record` (not when recovery starts it again from its record).
    async fn start_child(
        &self,
        parent: &ActorRef,
        template: &str,
        options: SpawnOptions,
        record: bool,
    ) -> Result<ActorRef, SpawnError> {
        let Some(entry) = self.catalog.template(template) else {
            return Err(SpawnError::UnknownComponent { name: template.to_string(), known: self.catalog.known() });
        };
        let node = match &options.supervisor {
            Some(name) => self.named_supervisor(name)?,
            None => {
                let own = parent.component();
                let supervision = self.catalog.template(&own.name).map(|t| t.policy.supervision).unwrap_or_default();
                self.owned_node(parent, &supervision)
            }
        };
        if options.supervisor.is_none()
            && self.tree.with(|t| t.child_count(node.address())) as u32 >= parent.limits().max_children
        {
            return Err(SpawnError::Quota(format!(
                "`{}` already has {} children (`max-children`)",
                parent.address(),
                parent.limits().max_children
            )));
        }
        let address = match &options.name {
            Some(name) => Address::from(name.as_str()),
            // Past any name taken already: children recovered after a
            // restart keep the names an earlier count gave them.
            None => loop {
                let n = self.child_names.fetch_add(1, Ordering::Relaxed);
                let candidate = Address::from(format!("{}/{template}-{n}", parent.address()));
                if self.registry.get(candidate.as_str()).is_none() {
                    break candidate;
                }
            },
        };
        if options.once
            && let Some(existing) = self.registry.get(address.as_str())
            && existing.parent() == Some(parent.address())
            && !matches!(existing.status(), ActorStatus::Stopping | ActorStatus::Stopped | ActorStatus::Failed)
        {
            return Ok(existing);
        }
        let mut spec = child_spec(&entry, address, template, &options);
        spec.parent = Some(parent.address().clone());
        if let Some(asked) = &options.http {
            spec.policy.grants.http = Some(delegated_http(parent, &spec.address, asked)?);
        }
        let durable = spec.policy.durability == Durability::Durable;
        if durable {
            self.claim_child(parent.address(), &spec.address).await?;
        }
        let child = self.start(spec, &node)?.started().await?;
        if options.link {
            parent.link(&child);
        }
        if durable && record {
            let record = ChildSpawn {
                template: template.to_string(),
                parent: parent.address().clone(),
                options: SpawnOptions { name: Some(child.address().to_string()), ..options },
            };
            self.record_child(&child, &record).await?;
        }
        Ok(child)
    }

    /// Records a durable child a guest spawned, in the store it commits
    /// to, so that recovery spawns it again; a child that cannot be recorded is stopped, and its spawn
    /// fails (it would not be durable as a whole).
    async fn record_child(&self, child: &ActorRef, record: &ChildSpawn) -> Result<(), SpawnError> {
        let refused = |reason: String| SpawnError::NotDurable { address: child.address().clone(), reason };
        let Some(journal) = self.journal_for(child.address().as_str()) else { return Ok(()) };
        let how = serde_json::to_vec(record).map_err(|e| refused(format!("its spawn cannot be recorded: {e}")))?;
        if let Err(e) = journal.record_spawn(child.address(), how).await {
            child.stop();
            return Err(refused(format!("its spawn could not be recorded: {e}")));
        }
        Ok(())
    }
}

/// The spec of a child at `address` started from the template `entry`
/// (named `template`) as `options` ask.
fn child_spec(entry: &ActorTemplate, address: Address, template: &str, options: &SpawnOptions) -> ActorSpec {
    let mut spec = entry.spec(address);
    spec.group = Some(template.to_string());
    spec.policy.restart = options.restart;
    if let Some(durability) = options.durability {
        spec.policy.durability = durability;
    }
    for (interface, binding) in &options.bindings {
        let key = interface_key(interface).to_string();
        spec.policy.bindings.retain(|(i, _)| interface_key(i) != key);
        spec.policy.bindings.push((interface.clone(), binding.clone()));
    }
    for (k, v) in &options.config {
        match spec.policy.config.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.clone(),
            None => spec.policy.config.push((k.clone(), v.clone())),
        }
    }
    spec
}

/// The `http` grant `parent` gives its child at `child`, as `asked`: only
/// what `parent` holds itself.
fn delegated_http(parent: &ActorRef, child: &Address, asked: &ChildHttpGrant) -> Result<HttpAccess, SpawnError> {
    let refused = |reason: String| SpawnError::HttpNotHeld { child: child.clone(), reason };
    let Some(held) = parent.http_grant() else {
        return Err(refused(format!("its spawner `{}` has no `http` grant to give from", parent.address())));
    };
    held.0.delegate(asked).map_err(refused)
}

/// A durable child a guest spawned, as recorded for recovery: its
/// template, its parent, and the options it was spawned with (its
/// address as `name`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChildSpawn {
    /// The template (component name) it was started from.
    pub template: String,
    /// The actor that spawned it.
    pub parent: Address,
    /// How it was spawned, with its address as `options.name`.
    pub options: SpawnOptions,
}

impl Host {
    /// Spawns again a durable child that a guest spawned before the host
    /// went down (a [`ChildSpawn`] record): under its parent if the parent
    /// is there, else under the supervisor its options name, else under the
    /// root; it recovers its committed state.
    ///
    /// # Errors
    ///
    /// As [`Host::spawn`], and [`SpawnError::UnknownComponent`] if no
    /// template has its name any more.
    pub async fn respawn_child(&self, record: ChildSpawn) -> Result<ActorRef, SpawnError> {
        let inner = &self.inner;
        if let Some(parent) = inner.registry.get(record.parent.as_str()) {
            return inner.start_child(&parent, &record.template, record.options, false).await;
        }
        let Some(entry) = inner.catalog.template(&record.template) else {
            return Err(SpawnError::UnknownComponent { name: record.template, known: inner.catalog.known() });
        };
        let address = Address::from(record.options.name.clone().unwrap_or_default());
        if record.options.http.is_some() {
            let reason = format!("its spawner `{}` is gone, and with it the grant it was given from", record.parent);
            return Err(SpawnError::HttpNotHeld { child: address, reason });
        }
        tracing::warn!(actor = %address, parent = %record.parent, "its parent is gone: recovered under a supervisor");
        let spec = child_spec(&entry, address, &record.template, &record.options);
        let node = inner.named_supervisor(record.options.supervisor.as_deref().unwrap_or(ROOT))?;
        inner.start(spec, &node)?.started().await
    }
}
