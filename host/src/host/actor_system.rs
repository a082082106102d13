//! How actors reach the host: [`ActorSystem`], implemented by delegating
//! to the host's services.

use tracing::warn;
use wasmtime::component::Val;

use super::HostInner;
use crate::actor::binding::{BindError, Binding, BindingSpec, BindingTarget};
use crate::actor::remote::RemoteActors;
use crate::actor::{ActorRef, ActorSystem, BoxFuture, Exit, Routed, Snapshot, SpawnError, SpawnOptions};
use crate::events::EventBus;
use crate::message::{Address, CallError, DeadLetterReason};

impl ActorSystem for HostInner {
    fn lookup(&self, address: &str) -> Option<ActorRef> {
        self.find(address).ok()
    }

    fn find(&self, address: &str) -> Result<ActorRef, CallError> {
        HostInner::find(self, address)
    }

    fn spawn_child<'a>(
        &'a self,
        parent: &'a ActorRef,
        component: &'a str,
        options: SpawnOptions,
    ) -> BoxFuture<'a, Result<ActorRef, SpawnError>> {
        Box::pin(HostInner::spawn_child(self, parent, component, options))
    }

    fn stop_actor(&self, target: &ActorRef) {
        let host = self.arc();
        let target = target.address().clone();
        tokio::spawn(async move {
            if let Err(e) = host.stop_for_good(target.as_str()).await {
                tracing::error!(actor = %target, error = %e, "a stop asked by a guest");
            }
        });
    }

    fn child_down(&self, actor: &ActorRef, exit: Exit) {
        if matches!(exit, Exit::Failed(_))
            && let Some(group) = actor.group()
        {
            self.virtual_key_failed(group);
        }
        match self.tree.parent_of(actor.address()) {
            Some(node) => node.child_down(actor.address(), exit),
            // No supervisor (it is being removed): nobody restarts it.
            None => actor.stop(),
        }
    }

    fn restarted(&self, actor: &ActorRef, from_snapshot: bool) {
        if let Some(node) = self.tree.supervisor(actor.address()) {
            node.owner_restarted(from_snapshot);
        }
    }

    fn stop_children<'a>(&'a self, actor: &'a ActorRef) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(node) = self.tree.supervisor(actor.address()) {
                node.stop().await;
            }
        })
    }

    fn unregister(&self, actor: &ActorRef) {
        if self.registry.remove(actor) {
            if actor.group().is_some() {
                self.key_left(actor.address().as_str());
            }
            if let Some(parent) = self.tree.parent_of(actor.address()) {
                parent.forget(actor.address());
            }
        }
    }

    fn passivate(&self, actor: &ActorRef, state: &Snapshot) -> bool {
        self.passivate_key(actor, state)
    }

    fn recovered(&self) -> BoxFuture<'_, ()> {
        let mut recovering = self.recovering.subscribe();
        Box::pin(async move {
            // An error means the host is gone: nothing to wait for.
            let _ = recovering.wait_for(|recovering| !*recovering).await;
        })
    }

    fn remote(&self) -> Option<&dyn RemoteActors> {
        self.remote.get().map(|r| &**r)
    }

    fn dead_letter(&self, to: &Address, what: &str, reason: DeadLetterReason) {
        let total = self.dead_letters.add(reason);
        warn!(to = %to, function = what, %reason, total, "dead letter");
    }

    fn events(&self) -> &EventBus {
        &self.events
    }

    fn route(&self, binding: &Binding, key: Option<&Val>) -> Result<Vec<Routed>, String> {
        match &binding.spec.target {
            BindingTarget::Virtual { component, key_from } => {
                self.route_to_key(component, key, key_from).map(|actor| vec![Routed::Here(actor)])
            }
            _ => self.routing.route(&self.registry, self.remote(), binding, key),
        }
    }

    fn bind(&self, actor: &ActorRef, interface: &str, spec: BindingSpec) -> Result<(), BindError> {
        let template = self.target_template(&spec);
        self.routing.bind(&self.registry, &self.catalog, actor, interface, spec, template)
    }
}
