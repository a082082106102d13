//! The sending side: [`Remote`], this host's implementation of the actor
//! layer's [`RemoteActors`] port over NATS.
//!
//! A message to an address this host does not have is type-checked here,
//! against the receiver's protocol, before it leaves: the sender learns
//! the receiver's code by asking its host once (`describe`), and keeps it
//! by address. It compiles that code only if it does not run it already:
//! the receiving host puts the components it serves into the cluster's
//! object store, by content hash. A message encoded for code the receiver
//! no longer runs (it was swapped) is refused as `stale` with the new
//! code, and sent again once, checked against that.
//!
//! NATS routes the request to the one host that answers on the address's
//! subject (see `serve.rs`); no host answering means no actor has the
//! address ([`CallError::UnknownAddress`]), as locally. A message to a key
//! of a virtual component goes where `keys.rs` places the key: here, or
//! the keys subject of the host holding it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::object_store::ObjectStore;
use async_nats::{Client, RequestErrorKind};
use bytes::Bytes;
use wasmtime::component::Val;

use super::envelope::{Kind, Reply, Request, TRACEPARENT};
use super::groups::Groups;
use super::keys::{KeyPlacement, Location};
use super::names::{actor_subject, down_subject, keys_subject};
use super::serve::is_virtual_key;
use super::watches::{WatchReply, WatchRequest, Watches};
use crate::actor::durable::Origin;
use crate::actor::remote::{RemoteActors, RemoteDown, RemoteWatch, Watched};
use crate::actor::{ActorComponent, BoxFuture};
use crate::host::WeakHost;
use crate::message::{Address, CallError, NO_TIMEOUT};
use crate::protocol::MessageError;
use crate::protocol::wire;
use crate::sync::Mutex;
use crate::trace;

/// How long a tell waits for the receiving host to queue it (or, for a
/// durable receiver, to commit it).
pub const TELL_TIMEOUT: Duration = Duration::from_secs(5);

/// Most receivers whose code a host keeps at once; past it the cache
/// starts again (each receiver is described again on its next message).
const MAX_KNOWN_RECEIVERS: usize = 10_000;

/// The code a receiver runs, as this host knows it.
struct Receiver {
    /// The content hash, hex.
    code: String,
    /// The component, for its protocol (kept loaded while known).
    component: Arc<ActorComponent>,
}

/// The actors of the other hosts, reached over NATS.
pub struct Remote {
    host: WeakHost,
    client: Client,
    components: ObjectStore,
    keys: Arc<KeyPlacement>,
    watches: Arc<Watches>,
    groups: Arc<Groups>,
    known: Mutex<HashMap<String, Arc<Receiver>>>,
}

/// How long a watch (a monitor or link) of an actor of another host waits
/// for that host to take it.
const WATCH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a message to a virtual key keeps looking for the host that
/// has it, at most: while a key moves (its host passivated it and gave it
/// back, or died and its lease has not expired yet).
const KEY_PATIENCE: Duration = Duration::from_secs(5);

/// One message, as its sender wrote it.
struct Outgoing<'a> {
    kind: Kind,
    to: &'a str,
    message: &'a str,
    from: Option<&'a Address>,
    waiting: Option<Arc<[Address]>>,
    timeout: Duration,
    /// A durable sender's tell: its origin.
    origin: Option<Origin>,
}

impl Remote {
    /// Sends through `client`; fetches receivers' code from `components`;
    /// finds the keys of virtual components through `keys`; records the
    /// watches of actors of other hosts in `watches`; knows the members of
    /// groups on other hosts from `groups`.
    pub fn new(
        host: WeakHost,
        client: Client,
        components: ObjectStore,
        keys: Arc<KeyPlacement>,
        watches: Arc<Watches>,
        groups: Arc<Groups>,
    ) -> Self {
        Remote { host, client, components, keys, watches, groups, known: Mutex::default() }
    }

    /// A `watch` (`watch` true) or `unwatch` request about `target`, sent
    /// where a message to it would go: its reply's payload, or `None` if
    /// `target` is a key of a virtual component this host holds.
    async fn watch_request(&self, target: &str, watch: &RemoteWatch, kind: Kind) -> Result<Option<Bytes>, CallError> {
        let host = self.host.upgrade().ok_or_else(|| unreachable_from(target, "this host is stopping".into()))?;
        let subject = if is_virtual_key(&host, target) {
            drop(host);
            match self.keys.locate(target).await.map_err(|e| unreachable_from(target, e.to_string()))? {
                Location::Here => return Ok(None),
                Location::Elsewhere(node) => keys_subject(&node),
            }
        } else {
            actor_subject(target)
        };
        let request = Request::about(kind, target, Some(&watch.watcher));
        let payload = WatchRequest { node: self.watches.node().to_string(), id: watch.id, link: watch.link };
        let payload = Bytes::from(serde_json::to_vec(&payload).unwrap_or_default());
        match self.request(&subject, target, &request, payload, WATCH_TIMEOUT).await? {
            Reply::Ok(bytes) => Ok(Some(bytes)),
            Reply::Error(e) => Err(e),
            other => Err(unreachable_from(target, format!("its host answered a watch with {other:?}"))),
        }
    }

    /// Sends one message: to the host of a virtual key, or on a named
    /// actor's subject.
    async fn send(&self, out: Outgoing<'_>) -> Result<Option<Val>, CallError> {
        let host = self.host.upgrade().ok_or_else(|| unreachable_from(out.to, "this host is stopping".into()))?;
        if is_virtual_key(&host, out.to) {
            drop(host);
            return self.send_to_key(&out).await;
        }
        drop(host);
        let sent = self.send_on(&actor_subject(out.to), &out).await;
        // No host answers for an actor this one stands by for: taken over
        // now if its claim is free (its host is gone), as a key is by the
        // next message that reaches it, rather than at the next look.
        if matches!(sent, Err(CallError::UnknownAddress(_)))
            && let Some(host) = self.host.upgrade()
            && host.stands_by_for(out.to)
            && super::failover::take_over_if_free(&host, &self.keys, out.to).await
        {
            return self.deliver_here(&out).await;
        }
        sent
    }

    /// Sends a message to a virtual key: activated here if this host holds
    /// it or wins it, else sent to the host holding it. Looks again, for
    /// at most [`KEY_PATIENCE`] (or the ask's timeout), while the key is
    /// on the move.
    async fn send_to_key(&self, out: &Outgoing<'_>) -> Result<Option<Val>, CallError> {
        let patience = out.timeout.min(KEY_PATIENCE);
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            let location = self.keys.locate(out.to).await.map_err(|e| unreachable_from(out.to, e.to_string()))?;
            let (outcome, holder) = match &location {
                Location::Here => (self.deliver_here(out).await, None),
                Location::Elsewhere(node) => (self.send_on(&keys_subject(node), out).await, Some(node)),
            };
            match outcome {
                Err(CallError::UnknownAddress(_)) => self.keys.moved(out.to),
                done => return done,
            }
            if started.elapsed() >= patience {
                let reason = match holder {
                    Some(node) => format!(
                        "its key is held by host `{node}`, which does not answer; the key moves once that host's \
                         lease expires"
                    ),
                    None => "its key kept moving between hosts".into(),
                };
                return Err(unreachable_from(out.to, reason));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// Delivers a message to a key this host holds, activating it.
    async fn deliver_here(&self, out: &Outgoing<'_>) -> Result<Option<Val>, CallError> {
        let host = self.host.upgrade().ok_or_else(|| unreachable_from(out.to, "this host is stopping".into()))?;
        let actor = host.lookup(out.to)?;
        let call = actor.parse(out.message)?;
        match out.kind {
            Kind::Tell if actor.is_durable() => {
                actor.send_from(call, out.from.cloned(), out.origin).await.map(|()| None)
            }
            Kind::Tell => actor.send(call, out.from.cloned()).await.map(|()| None),
            _ => actor.ask(call, out.from.cloned(), out.waiting.clone(), out.timeout).await,
        }
    }

    /// Sends one message on `subject`, describing the receiver first if
    /// its code is not known, and once more if it turns out stale.
    async fn send_on(&self, subject: &str, out: &Outgoing<'_>) -> Result<Option<Val>, CallError> {
        let Outgoing { kind, to, message, from, ref waiting, timeout, origin } = *out;
        for _ in 0..2 {
            let receiver = self.receiver(subject, to, timeout).await?;
            let protocol = receiver.component.protocol();
            let call = protocol.parse(message, u64::MAX)?;
            let function = protocol.function(call.func);
            let mut payload = Vec::new();
            for ((_, ty), arg) in function.params.iter().zip(call.args.iter()) {
                wire::encode(arg, ty, &mut payload).map_err(|e| {
                    CallError::BadMessage(MessageError::Unsupported {
                        signature: function.signature(),
                        reason: e.to_string(),
                    })
                })?;
            }
            let request = Request {
                kind,
                to: to.into(),
                from: from.cloned(),
                code: receiver.code.clone(),
                function: function.qualified_name(),
                timeout: (kind == Kind::Ask).then_some(timeout),
                waiting: waiting.as_deref().map(<[Address]>::to_vec).unwrap_or_default(),
                origin,
            };
            match self.request(subject, to, &request, payload.into(), timeout).await? {
                Reply::Ok(bytes) => {
                    return match &function.result {
                        Some(ty) if kind == Kind::Ask => wire::decode(&bytes, ty).map(Some).map_err(|e| {
                            unreachable_from(to, format!("its reply does not decode as {}: {e}", function.signature()))
                        }),
                        _ => Ok(None),
                    };
                }
                Reply::Error(e) => return Err(e),
                Reply::Stale { .. } => {
                    self.known.lock().remove(to);
                }
                Reply::Described { .. } => return Err(unreachable_from(to, "its host described it instead".into())),
            }
        }
        Err(unreachable_from(to, "its code changed twice while the message was sent".into()))
    }

    /// The code `to` runs: known, or asked of its host on `subject`.
    async fn receiver(&self, subject: &str, to: &str, timeout: Duration) -> Result<Arc<Receiver>, CallError> {
        if let Some(known) = self.known.lock().get(to) {
            return Ok(known.clone());
        }
        let (code, name) = match self.request(subject, to, &Request::describe(to), Bytes::new(), timeout).await? {
            Reply::Described { code, component } => (code, component),
            Reply::Error(e) => return Err(e),
            other => return Err(unreachable_from(to, format!("its host answered a description with {other:?}"))),
        };
        let component = self.component(to, &code, &name).await?;
        let receiver = Arc::new(Receiver { code, component });
        let mut known = self.known.lock();
        if known.len() >= MAX_KNOWN_RECEIVERS {
            known.clear();
        }
        known.insert(to.to_string(), receiver.clone());
        Ok(receiver)
    }

    /// The component with hash `code`: loaded here already, or fetched
    /// from the cluster's object store and compiled.
    async fn component(&self, to: &str, code: &str, name: &str) -> Result<Arc<ActorComponent>, CallError> {
        let fail = |why: String| unreachable_from(to, why);
        let hash = blake3::Hash::from_hex(code).map_err(|e| fail(format!("its code hash `{code}`: {e}")))?;
        let host = self.host.upgrade().ok_or_else(|| fail("this host is stopping".into()))?;
        if let Some(component) = host.component_by_hash(&hash) {
            return Ok(component);
        }
        super::serve::fetch(&self.components, &host, code, name, None).await.map_err(fail)
    }

    /// One request about `to`, on `subject`.
    async fn request(
        &self,
        subject: &str,
        to: &str,
        request: &Request,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        // `NO_TIMEOUT` waits for ever, as a local ask does.
        let limit = (timeout != NO_TIMEOUT).then_some(timeout);
        let mut headers = request.to_headers();
        // The sender's span, for the receiving host's to follow.
        if trace::active()
            && let Some(cx) = trace::current()
        {
            headers.insert(TRACEPARENT, cx.to_traceparent().as_str());
        }
        let nats_request = async_nats::Request::new().headers(headers).payload(payload.clone()).timeout(limit);
        match self.client.send_request(subject.to_string(), nats_request).await {
            Ok(message) => Reply::decode(message.headers.as_ref(), message.payload)
                .map_err(|why| unreachable_from(to, format!("its host answered malformed: {why}"))),
            Err(e) => Err(match e.kind() {
                RequestErrorKind::NoResponders => {
                    self.known.lock().remove(to);
                    CallError::UnknownAddress(to.into())
                }
                RequestErrorKind::TimedOut => CallError::Timeout(timeout),
                RequestErrorKind::MaxPayloadExceeded => CallError::BadMessage(MessageError::TooLarge {
                    size: payload.len() as u64,
                    limit: self.client.server_info().max_payload as u64,
                }),
                _ => unreachable_from(to, e.to_string()),
            }),
        }
    }
}

fn unreachable_from(to: &str, reason: String) -> CallError {
    CallError::Unreachable { address: to.into(), reason }
}

impl RemoteActors for Remote {
    fn tell<'a>(
        &'a self,
        to: &'a str,
        message: &'a str,
        from: Option<&'a Address>,
        origin: Option<Origin>,
    ) -> BoxFuture<'a, Result<(), CallError>> {
        let out = Outgoing { kind: Kind::Tell, to, message, from, waiting: None, timeout: TELL_TIMEOUT, origin };
        Box::pin(async move { self.send(out).await.map(drop) })
    }

    fn ask<'a>(
        &'a self,
        to: &'a str,
        message: &'a str,
        from: Option<&'a Address>,
        waiting: Option<Arc<[Address]>>,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Option<Val>, CallError>> {
        Box::pin(self.send(Outgoing { kind: Kind::Ask, to, message, from, waiting, timeout, origin: None }))
    }

    fn watch<'a>(&'a self, target: &'a str, watch: RemoteWatch) -> BoxFuture<'a, Result<Watched, CallError>> {
        Box::pin(async move {
            let Some(reply) = self.watch_request(target, &watch, Kind::Watch).await? else {
                return Ok(Watched::Here);
            };
            let WatchReply { node } = serde_json::from_slice(&reply)
                .map_err(|e| unreachable_from(target, format!("its host answered a watch malformed: {e}")))?;
            self.watches.watching(&node, target, &watch);
            Ok(Watched::On(node))
        })
    }

    fn unwatch<'a>(&'a self, target: &'a str, watch: RemoteWatch) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            self.watches.unwatched(watch.id);
            match self.watch_request(target, &watch, Kind::Unwatch).await {
                Ok(Some(reply)) => serde_json::from_slice(&reply).unwrap_or(false),
                _ => false,
            }
        })
    }

    fn down(&self, node: &str, down: RemoteDown) {
        let (client, subject, message) = (self.client.clone(), down_subject(node), self.watches.down_message(down));
        tokio::spawn(async move {
            if let Err(e) = client.publish(subject, message.into()).await {
                tracing::debug!(error = %e, "a down notice not sent");
            }
        });
    }

    fn group_elsewhere(&self, group: &str) -> (u64, Vec<Address>) {
        self.groups.elsewhere(group)
    }
}
