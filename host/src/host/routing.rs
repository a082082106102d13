//! Bindings and routing: checking a binding of an imported interface when
//! it is made, and picking the actor (or actors) each call through it
//! goes to. See [`crate::actor::binding`] for the model.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::Val;

use super::catalog::Catalog;
use super::registry::Registry;
use super::ring::HashRing;
use crate::actor::binding::{BindError, Binding, BindingSpec, BindingTarget, Router, interface_key};
use crate::actor::remote::RemoteActors;
use crate::actor::{ActorComponent, ActorRef, Routed};
use crate::message::Address;
use crate::sync::Mutex;

/// Routing state: the hash rings of groups, each with the membership it
/// was built for (this host's, and the cluster's).
#[derive(Default)]
pub(crate) struct Routing {
    rings: Mutex<HashMap<String, (Membership, Arc<HashRing>)>>,
}

/// The membership a hash ring was built for: this host's groups' version,
/// and the cluster's.
type Membership = (u64, u64);

impl Routing {
    /// The actors a call through `binding` goes to (one, or every member
    /// for a broadcast); `key` is the value a `hash-on` router hashes. A
    /// group's members are this host's and, in a cluster, those `remote`
    /// knows on the other hosts: a router picks among all of them, except
    /// `least-loaded`, which knows the mailboxes of this host's members
    /// only and picks among them while there are any.
    pub fn route(
        &self,
        registry: &Registry,
        remote: Option<&dyn RemoteActors>,
        binding: &Binding,
        key: Option<&Val>,
    ) -> Result<Vec<Routed>, String> {
        let (name, router) = match &binding.spec.target {
            BindingTarget::Actor(address) => {
                return registry
                    .get(address.as_str())
                    .map(|a| vec![Routed::Here(a)])
                    .ok_or_else(|| format!("the bound actor `{address}` does not exist"));
            }
            BindingTarget::Group { name, router } => (name, router),
            // The host routes these: they may activate a key.
            BindingTarget::Virtual { component, .. } => {
                return Err(format!("the keys of the virtual component `{component}` are routed by the host"));
            }
        };
        let here = registry.group(name);
        let (cluster_version, mut there) = remote.map(|r| r.group_elsewhere(name)).unwrap_or_default();
        // An address served elsewhere and also run here (a copy the
        // cluster does not reach) is reached here.
        there.retain(|address| !here.iter().any(|m| m.address() == address));
        let total = here.len() + there.len();
        if total == 0 {
            return Err(format!("group `{name}` has no members"));
        }
        let member = |i: usize| match here.get(i) {
            Some(actor) => Routed::Here(actor.clone()),
            None => Routed::There(there[i - here.len()].clone()),
        };
        let pick = match router {
            Router::Broadcast => return Ok((0..total).map(member).collect()),
            Router::RoundRobin => binding.next_index(total),
            Router::Random => fastrand::usize(..total),
            Router::LeastLoaded if !here.is_empty() => {
                here.iter().enumerate().min_by_key(|(_, m)| m.mailbox_len()).map(|(i, _)| i).unwrap_or(0)
            }
            Router::LeastLoaded => fastrand::usize(..total),
            Router::HashOn(param) => {
                let key = key.ok_or_else(|| format!("`hash-on({param})`: the call has no `{param}` argument"))?;
                let text = key.to_wave().map_err(|e| e.to_string())?;
                let addresses = here.iter().map(|m| m.address().as_str()).chain(there.iter().map(Address::as_str));
                let membership = (registry.membership(), cluster_version);
                self.ring(name, membership, addresses).pick(text.as_bytes()).unwrap_or(0)
            }
        };
        Ok(vec![member(pick)])
    }

    /// The hash ring of `group` over `members`, rebuilt when its
    /// `membership` changed.
    fn ring<'a>(
        &self,
        group: &str,
        membership: Membership,
        members: impl IntoIterator<Item = &'a str>,
    ) -> Arc<HashRing> {
        let mut rings = self.rings.lock();
        if let Some((built_for, ring)) = rings.get(group)
            && *built_for == membership
        {
            return ring.clone();
        }
        let ring = Arc::new(HashRing::new(members));
        rings.insert(group.to_string(), (membership, ring.clone()));
        ring
    }

    /// Binds `actor`'s imported `interface` to `spec`, after checking that
    /// every target exports the interface with identical types.
    /// `elsewhere` is the code of a target this host does not run (see
    /// `HostInner::target_template`).
    pub fn bind(
        &self,
        registry: &Registry,
        catalog: &Catalog,
        actor: &ActorRef,
        interface: &str,
        spec: BindingSpec,
        elsewhere: Option<Arc<ActorComponent>>,
    ) -> Result<(), BindError> {
        let component = actor.component();
        let Some(import) = component.import(interface) else {
            let imports = component.imports().iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(BindError::NotImported {
                actor: actor.address().clone(),
                interface: interface.to_string(),
                imports: if imports.is_empty() { "no protocol interfaces".into() } else { imports },
            });
        };
        // What the target runs, to check types against: the actor, or the
        // group's members and the code it would start more of.
        let (target_name, targets): (String, Vec<Arc<ActorComponent>>) = match &spec.target {
            BindingTarget::Actor(address) => match (registry.get(address.as_str()), elsewhere) {
                (Some(target), _) => (address.to_string(), vec![target.component()]),
                (None, Some(code)) => (format!("`{address}` on another host"), vec![code]),
                (None, None) => {
                    return Err(BindError::UnknownTarget { interface: interface.to_string(), target: address.clone() });
                }
            },
            BindingTarget::Group { name, router } => {
                if *router == Router::Broadcast
                    && let Some(f) = import.functions.iter().find(|f| f.result.is_some())
                    && import.functions.iter().all(|f| f.result.is_some())
                {
                    return Err(BindError::BroadcastAsk { function: f.qualified_name() });
                }
                if let Router::HashOn(param) = router
                    && !import.functions.iter().any(|f| f.params.iter().any(|(n, _)| n == param))
                {
                    return Err(BindError::NoSuchParam { param: param.clone(), interface: import.name.clone() });
                }
                let mut targets: Vec<Arc<ActorComponent>> =
                    registry.group(name).iter().map(ActorRef::component).collect();
                targets.extend(catalog.template(name).map(|t| t.component));
                (format!("group `{name}`"), targets)
            }
            BindingTarget::Virtual { component, key_from } => {
                if !import.functions.iter().any(|f| f.params.iter().any(|(n, _)| n == key_from)) {
                    return Err(BindError::NoSuchParam { param: key_from.clone(), interface: import.name.clone() });
                }
                let template = elsewhere.ok_or_else(|| BindError::UnknownTarget {
                    interface: interface.to_string(),
                    target: Address::from(component.as_str()),
                })?;
                (format!("virtual component `{component}`"), vec![template])
            }
        };
        let key = interface_key(&import.name);
        for target in &targets {
            for f in &import.functions {
                let found = match target.protocol().find(key, &f.name) {
                    Some(i) => {
                        let g = target.protocol().function(i);
                        if g.same_type(f) {
                            continue;
                        }
                        format!("exports `{}`", g.signature())
                    }
                    None => "does not export it".into(),
                };
                return Err(BindError::Mismatch {
                    interface: import.name.clone(),
                    target: target_name,
                    function: f.name.clone(),
                    expected: f.signature(),
                    found,
                });
            }
        }
        actor.set_binding(interface, spec);
        Ok(())
    }
}
