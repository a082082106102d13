//! The receiving side: a host answers for its actors on their subjects.
//!
//! A directory task follows the host's address space in order (see
//! [`Host::observe_addresses`]): for each actor that takes an address it
//! claims the address in the cluster (`claims.rs`), puts the actor's
//! component in the object store if it is not there (for senders that do
//! not run it), and subscribes to the address's subject; when the actor
//! gives its address back, it unsubscribes and releases the claim. A
//! member of a group is recorded in the groups bucket while it is served
//! (`groups.rs`). The
//! keys of virtual components have no subject each: a host answers for
//! all the keys it holds on its keys subject (see `keys.rs`), and
//! activates the key a message names if it holds it.
//!
//! Each request is decoded against the actor's protocol, which is the
//! receiver's type check: arguments that do not decode as the function's
//! parameters are refused as ill-typed, as a local message would be.
//! While this host does not hold its lease (see `members.rs`), it refuses
//! every request as unreachable: other hosts may consider it dead.

use std::collections::HashMap;
use std::sync::Arc;

use async_nats::Client;
use async_nats::jetstream::object_store::ObjectStore;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument as _, debug, info, warn};

use super::claims::{Claim, Claims};
use super::envelope::{Kind, Reply, Request, TRACEPARENT};
use super::groups::Groups;
use super::members::Membership;
use super::names::actor_subject;
use super::watches::{WatchRequest, Watches};
use crate::actor::ActorRef;
use crate::host::{AddressChange, Host, WeakHost};
use crate::message::{Address, CallError, DEFAULT_ASK_TIMEOUT};
use crate::protocol::MessageError;
use crate::protocol::{Call, payload_size, wire};
use crate::trace::{self, Follows, TraceContext};

/// A change to the address space, as the directory task takes it.
pub enum Change {
    /// The actor took its address.
    Registered(ActorRef),
    /// The actor gave it back.
    Unregistered(ActorRef),
    /// Another host held the actor's address a lease ago: claim it again
    /// (that host may have died since).
    Retry(ActorRef),
}

impl From<AddressChange<'_>> for Change {
    fn from(change: AddressChange<'_>) -> Self {
        match change {
            AddressChange::Registered(actor) => Change::Registered(actor.clone()),
            AddressChange::Unregistered(actor) => Change::Unregistered(actor.clone()),
        }
    }
}

/// An address this host answers for.
struct Served {
    actor: ActorRef,
    /// The claim's revision, to release it.
    revision: u64,
    subscription: JoinHandle<()>,
}

/// What the directory task and the request handlers share.
pub struct Directory {
    pub(super) host: WeakHost,
    pub(super) client: Client,
    pub(super) members: Arc<Membership>,
    pub(super) claims: Claims,
    pub(super) components: ObjectStore,
    /// The watches shared with other hosts.
    pub(super) watches: Arc<Watches>,
    /// The members of groups, where this host records its own.
    pub(super) groups: Arc<Groups>,
    /// Where the directory task takes changes from, for retries.
    pub(super) changes: mpsc::UnboundedSender<Change>,
}

impl Directory {
    /// Follows the address space: `existing` first, then each change from
    /// `changes`, until the host drops the sender. Gives every claim back
    /// at the end.
    pub async fn run(self: Arc<Self>, existing: Vec<ActorRef>, mut changes: mpsc::UnboundedReceiver<Change>) {
        let mut served: HashMap<String, Served> = HashMap::new();
        let mut uploaded: std::collections::HashSet<blake3::Hash> = Default::default();
        for actor in existing {
            self.serve(actor, &mut served, &mut uploaded).await;
        }
        while let Some(change) = changes.recv().await {
            match change {
                Change::Registered(actor) => self.serve(actor, &mut served, &mut uploaded).await,
                Change::Retry(actor) => {
                    // Only if the actor still holds its address here.
                    let current = self.host.upgrade().and_then(|h| h.lookup(actor.address().as_str()).ok());
                    if current.is_some_and(|c| c.same(&actor)) {
                        self.serve(actor, &mut served, &mut uploaded).await;
                    }
                }
                Change::Unregistered(actor) => {
                    if let Some(entry) = served.remove(actor.address().as_str())
                        && entry.actor.same(&actor)
                    {
                        self.stop_serving(actor.address().as_str(), entry).await;
                    }
                }
            }
        }
        self.release_all(served).await;
    }

    /// Gives back every claim (the host is leaving).
    async fn release_all(&self, served: HashMap<String, Served>) {
        for (address, entry) in served {
            self.stop_serving(&address, entry).await;
        }
    }

    /// Stops answering for `address`: unsubscribes, leaves its group and
    /// gives its claim back.
    async fn stop_serving(&self, address: &str, entry: Served) {
        entry.subscription.abort();
        if let Some(group) = entry.actor.group() {
            self.groups.leave(group, address).await;
        }
        self.claims.release(address, entry.revision).await;
    }

    /// Claims `actor`'s address and answers on its subject.
    async fn serve(
        self: &Arc<Self>,
        actor: ActorRef,
        served: &mut HashMap<String, Served>,
        uploaded: &mut std::collections::HashSet<blake3::Hash>,
    ) {
        let address = actor.address().as_str().to_string();
        let Some(host) = self.host.upgrade() else { return };
        if is_virtual_key(&host, &address) || served.contains_key(&address) {
            return;
        }
        let revision = match self.claims.claim(&address, &self.members).await {
            Ok(Claim::Won(revision)) => revision,
            Ok(Claim::HeldBy(node)) => {
                warn!(actor = %address, %node, "the address is served by another host of the cluster; \
                       this actor is reachable only from this host until that host leaves (or give it another name)");
                let (changes, lease) = (self.changes.clone(), self.members.lease());
                tokio::spawn(async move {
                    tokio::time::sleep(lease).await;
                    let _ = changes.send(Change::Retry(actor));
                });
                return;
            }
            Err(e) => {
                warn!(actor = %address, error = %e, "the address could not be claimed; reachable only from this host");
                return;
            }
        };
        let component = actor.component();
        if uploaded.insert(component.hash) {
            self.upload(&component).await;
        }
        match self.client.subscribe(actor_subject(&address)).await {
            Ok(mut subscriber) => {
                let directory = self.clone();
                let target = actor.clone();
                let subscription = tokio::spawn(async move {
                    while let Some(message) = subscriber.next().await {
                        let directory = directory.clone();
                        let target = target.clone();
                        tokio::spawn(async move { directory.answer(Some(&target), message).await });
                    }
                });
                debug!(actor = %address, "served in the cluster");
                if let Some(group) = actor.group() {
                    self.groups.join(group, &address).await;
                }
                served.insert(address, Served { actor, revision, subscription });
            }
            Err(e) => {
                warn!(actor = %address, error = %e, "could not subscribe; reachable only from this host");
                self.claims.release(&address, revision).await;
            }
        }
    }

    /// Puts `component` in the cluster's object store, if it is not there.
    async fn upload(&self, component: &crate::actor::ActorComponent) {
        if let Err(e) = share(&self.components, component).await {
            warn!(component = %component.name, error = %e, "component not shared: senders that do not run it cannot reach its actors")
        }
    }

    /// Answers the requests to the keys this host holds, on its keys
    /// subject.
    pub async fn answer_keys(self: Arc<Self>, mut requests: async_nats::Subscriber) {
        while let Some(message) = requests.next().await {
            let directory = self.clone();
            tokio::spawn(async move { directory.answer(None, message).await });
        }
    }

    /// Answers one request to `actor`, or, on the keys subject, to the key
    /// it names.
    async fn answer(&self, actor: Option<&ActorRef>, message: async_nats::Message) {
        let Some(reply_to) = message.reply.clone() else { return };
        let reply = if !self.members.holds_lease() {
            let to = match actor {
                Some(actor) => actor.address().clone(),
                None => Request::from_headers(message.headers.as_ref()).map_or_else(|_| Address::from(""), |r| r.to),
            };
            Reply::Error(CallError::Unreachable {
                address: to,
                reason: format!("its host `{}` lost its cluster lease", self.members.node()),
            })
        } else if trace::active() {
            // The request's span continues the sender's: the message's
            // own span, made as it is queued, is its child (an ask) or
            // linked to it (a tell).
            let span = tracing::info_span!(
                target: trace::TARGET,
                parent: None,
                "cluster.request",
                otel.kind = "server",
                actor = actor.map(|a| a.address().to_string()),
            );
            let sender = message.headers.as_ref().and_then(|h| h.get(TRACEPARENT)).map(|v| v.as_str());
            if let Some(cx) = sender.and_then(TraceContext::from_traceparent) {
                trace::follow(&span, cx, Follows::ChildOf);
            }
            self.handle(actor, &message).instrument(span).await
        } else {
            self.handle(actor, &message).await
        };
        let (headers, payload) = reply.encode();
        if let Err(e) = self.client.publish_with_headers(reply_to, headers, payload).await {
            debug!(error = %e, "reply not sent");
        }
    }

    async fn handle(&self, actor: Option<&ActorRef>, message: &async_nats::Message) -> Reply {
        let request = match Request::from_headers(message.headers.as_ref()) {
            Ok(request) => request,
            Err(why) => {
                return Reply::Error(CallError::BadMessage(MessageError::Syntax {
                    text: String::new(),
                    reason: format!("not a troupe envelope: {why}"),
                }));
            }
        };
        let key;
        let actor = match actor {
            Some(actor) if request.to == *actor.address() => actor,
            Some(_) => return Reply::Error(CallError::UnknownAddress(request.to)),
            // A key this host holds is activated for its message; one it
            // does not hold (any more) is unknown here, and its sender
            // looks for it again.
            None => match self.host.upgrade() {
                Some(host) if is_virtual_key(&host, request.to.as_str()) => match host.lookup(request.to.as_str()) {
                    Ok(found) => {
                        key = found;
                        &key
                    }
                    Err(e) => return Reply::Error(e),
                },
                _ => return Reply::Error(CallError::UnknownAddress(request.to)),
            },
        };
        if matches!(request.kind, Kind::Watch | Kind::Unwatch) {
            return self.answer_watch(actor, &request, &message.payload);
        }
        if request.kind == Kind::Describe {
            let component = actor.component();
            return Reply::Described { code: component.hash.to_hex().to_string(), component: component.name.clone() };
        }
        let (call, result) = match decode_call(actor, &request, &message.payload) {
            Ok(decoded) => decoded,
            Err(reply) => return reply,
        };
        let from = request.from.clone();
        match request.kind {
            Kind::Tell => match match (request.origin, from) {
                // An outside publisher's numbered tell: durable receivers only.
                (Some(origin), Some(from)) if from.is_publisher() => actor.send_numbered(call, from, origin.seq).await,
                // A durable sender's courier: a durable receiver drops what
                // it took already.
                (Some(origin), from) if actor.is_durable() => actor.send_from(call, from, Some(origin)).await,
                (_, from) => actor.send(call, from).await,
            } {
                Ok(()) => Reply::Ok(Bytes::new()),
                Err(e) => Reply::Error(e),
            },
            _ => {
                let waiting = Some(request.waiting.clone().into());
                let timeout = request.timeout.unwrap_or(DEFAULT_ASK_TIMEOUT);
                match actor.ask(call, from, waiting, timeout).await {
                    Ok(None) => Reply::Ok(Bytes::new()),
                    Ok(Some(value)) => {
                        let Some(ty) = result else { return Reply::Ok(Bytes::new()) };
                        let mut bytes = Vec::new();
                        match wire::encode(&value, &ty, &mut bytes) {
                            Ok(()) => Reply::Ok(bytes.into()),
                            Err(e) => Reply::Error(CallError::BadMessage(MessageError::Unsupported {
                                signature: request.function.clone(),
                                reason: format!("its reply cannot leave the host: {e}"),
                            })),
                        }
                    }
                    Err(e) => Reply::Error(e),
                }
            }
        }
    }
}

impl Directory {
    /// Answers a `watch` or `unwatch` request for `actor`.
    fn answer_watch(&self, actor: &ActorRef, request: &Request, payload: &[u8]) -> Reply {
        let (Some(watcher), Ok(watch)) = (&request.from, serde_json::from_slice::<WatchRequest>(payload)) else {
            return Reply::Error(CallError::BadMessage(MessageError::Syntax {
                text: String::new(),
                reason: "a watch without its watcher".into(),
            }));
        };
        let answer = self.watches.answer(actor, watcher.clone(), watch, request.kind == Kind::Watch);
        Reply::Ok(answer.into())
    }
}

/// The call `request` carries, decoded against the code `actor` runs, and
/// its function's result type; or the reply refusing it.
fn decode_call(
    actor: &ActorRef,
    request: &Request,
    payload: &[u8],
) -> Result<(Call, Option<wasmtime::component::Type>), Reply> {
    actor.with_code(|component, generation| {
        let code = component.hash.to_hex().to_string();
        if code != request.code {
            return Err(Reply::Stale { code, component: component.name.clone() });
        }
        let protocol = component.protocol();
        let func = protocol.resolve(&request.function).map_err(|e| Reply::Error(e.into()))?;
        let function = protocol.function(func);
        if let Some(reason) = &function.unsupported {
            let signature = function.signature();
            return Err(Reply::Error(MessageError::Unsupported { signature, reason: reason.clone() }.into()));
        }
        let args = wire::decode_all(payload, function.params.iter().map(|(_, ty)| ty)).map_err(|e| {
            Reply::Error(MessageError::IllTyped { signature: function.signature(), reason: e.to_string() }.into())
        })?;
        let size = args.iter().map(payload_size).sum::<u64>();
        let limit = actor.limits().max_message_bytes;
        if size > limit {
            return Err(Reply::Error(MessageError::TooLarge { size, limit }.into()));
        }
        Ok((Call { func, args: args.into(), generation }, function.result.clone()))
    })
}

/// Is `address` a key of one of `host`'s virtual components? Asked at
/// every activation: a lookup, not a list of the components.
pub(super) fn is_virtual_key(host: &Host, address: &str) -> bool {
    address.rsplit_once('/').is_some_and(|(name, _)| host.is_virtual_component(name))
}

/// Puts `component` in the cluster's object store `components`, if it is
/// not there: by content hash, for the hosts that do not run it.
pub(super) async fn share(
    components: &ObjectStore,
    component: &crate::actor::ActorComponent,
) -> Result<(), async_nats::jetstream::object_store::PutError> {
    let name = component.hash.to_hex().to_string();
    if components.info(&name).await.is_ok() {
        return Ok(());
    }
    let mut bytes = component.bytes();
    components.put(name.as_str(), &mut bytes).await?;
    info!(component = %component.name, hash = %component.short_hash(), "component shared with the cluster");
    Ok(())
}

/// The component with content hash `code` from the cluster's object store
/// `components`, loaded into `host` as `name` at `version`: what a host
/// that does not run some code fetches to check messages against it, or
/// to swap to it. Why it could not, otherwise.
pub(super) async fn fetch(
    components: &ObjectStore,
    host: &crate::host::Host,
    code: &str,
    name: &str,
    version: Option<String>,
) -> Result<Arc<crate::actor::ActorComponent>, String> {
    let mut object = components.get(code).await.map_err(|e| format!("its code is not in the cluster: {e}"))?;
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes)
        .await
        .map_err(|e| format!("its code could not be fetched: {e}"))?;
    let (host, name, source) = (host.clone(), name.to_string(), format!("cluster component {code}"));
    tokio::task::spawn_blocking(move || host.load_bytes(&name, &source, bytes, version))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("its code does not load here: {e}"))
}
