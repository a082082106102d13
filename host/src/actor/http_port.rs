//! The port through which a guest's outbound HTTP requests leave the
//! sandbox (`wasi:http/outgoing-handler`), and the per-incarnation state
//! that serves it.
//!
//! The actor layer does not decide what an actor may request: an actor's
//! `http` grant is an [`HttpAccess`], a handle on an [`HttpPort`] that
//! `crate::outbound` implements (allow-list, resolved-address checks,
//! limits, breakers, retries) and the host puts into the actor's
//! [`Grants`](crate::grants::Grants). Here is only what every request needs
//! from the actor: who is asking ([`Caller`]), how many of its requests
//! are in flight, and how long it has waited on them.
//!
//! # Waiting is not running
//!
//! A guest blocked on a response holds no thread (the wait is a tokio
//! future) and burns no fuel. Time with at least one request in flight is
//! counted as waiting ([`WaitClock`]) and taken off the message's
//! deadline, as time spent in an ask is; a guest that computes while a
//! request is in flight is therefore not charged for that overlap. What
//! bounds a message that waits is the grant's wall-clock ceiling
//! ([`HttpPort::message_ceiling`]), waits included.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpCtx, WasiHttpHooks};

use super::BoxFuture;
use super::configured::{Configured, Handle};
use crate::events::EventBus;
use crate::message::Address;
use crate::sync::Mutex;

/// What [`HttpPort::send`] resolves to: the response, and the task that
/// drives the connection while the guest reads the body (as
/// `WasiHttpHooks::send_request` returns them).
pub type SendResult = Result<
    (http::Response<WasiBody>, BoxFuture<'static, Result<(), wasmtime_wasi_http::Error>>),
    wasmtime_wasi_http::Error,
>;

/// Outbound HTTP for the actors holding one grant.
pub trait HttpPort: Configured {
    /// Sends `request` for `caller`, or refuses it with the `wasi:http`
    /// error the guest sees (`HTTP-request-denied` for a URL outside the
    /// grant).
    fn send(
        &self,
        caller: &Caller,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> BoxFuture<'static, SendResult>;

    /// How many requests one actor may have in flight at once.
    fn max_concurrent(&self) -> usize;

    /// How long a message of an actor holding this grant may take, wall
    /// clock, waits on responses included.
    fn message_ceiling(&self) -> Duration;

    /// The grant and its state (patterns, limits, breakers), as `troupe ps
    /// --json` shows it.
    fn status(&self) -> serde_json::Value;

    /// The breakers of its patterns that have one, as the metrics show
    /// them.
    fn breakers(&self) -> Vec<super::binding::BreakerReading>;

    /// The grant an actor holding this one gives a child it spawns: only
    /// URLs and limits within its own (see [`ChildHttpGrant`]).
    ///
    /// # Errors
    ///
    /// A sentence naming the pattern or limit that is not within this
    /// grant, or that is invalid.
    fn delegate(&self, request: &ChildHttpGrant) -> Result<HttpAccess, String>;
}

/// The `http` grant a guest asks for a child it spawns (the WIT
/// `spawn-options.http`): URL patterns, each within one of the spawner's
/// own, and limits no larger than the spawner's (the spawner's where
/// absent). Kept as asked, so that a durable child's spawn record asks
/// again when recovery spawns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ChildHttpGrant {
    /// The URL patterns.
    pub allow: Vec<String>,
    /// Requests in flight at once.
    pub max_concurrent: Option<u32>,
    /// Largest request body, in bytes.
    pub max_request_bytes: Option<u64>,
    /// Largest response body, in bytes.
    pub max_response_bytes: Option<u64>,
    /// Connect timeout, in milliseconds.
    pub connect_timeout_ms: Option<u64>,
    /// Wait for the response head, in milliseconds.
    pub first_byte_timeout_ms: Option<u64>,
    /// Wait between chunks of a body, in milliseconds.
    pub between_bytes_timeout_ms: Option<u64>,
    /// Wall-clock ceiling of one message, in milliseconds.
    pub message_ceiling_ms: Option<u64>,
}

impl From<crate::wit::types::HttpGrant> for ChildHttpGrant {
    fn from(g: crate::wit::types::HttpGrant) -> Self {
        ChildHttpGrant {
            allow: g.allow,
            max_concurrent: g.max_concurrent,
            max_request_bytes: g.max_request_bytes,
            max_response_bytes: g.max_response_bytes,
            connect_timeout_ms: g.connect_timeout_ms,
            first_byte_timeout_ms: g.first_byte_timeout_ms,
            between_bytes_timeout_ms: g.between_bytes_timeout_ms,
            message_ceiling_ms: g.message_ceiling_ms,
        }
    }
}

/// An actor's `http` grant: a handle on the port enforcing it. Cloning
/// shares the port, and so its breakers, among the actors of one template.
pub type HttpAccess = Handle<dyn HttpPort>;

/// Who sends a request: the actor, where its events go, and its
/// incarnation's count of requests in flight and of time waited.
#[derive(Clone)]
pub struct Caller {
    /// The actor's address, for the log and events.
    pub address: Address,
    /// Where breaker events go.
    pub events: EventBus,
    /// Requests in flight and time waited on them.
    pub waits: WaitClock,
}

/// The requests of one incarnation in flight, and the time during which
/// at least one was. Shared by the incarnation and its requests' tasks.
#[derive(Clone, Default)]
pub struct WaitClock(Arc<Mutex<Waits>>);

#[derive(Default)]
struct Waits {
    /// When the message being handled began.
    message_start: Option<Instant>,
    in_flight: usize,
    /// When `in_flight` last rose from 0 (or was last drained).
    since: Option<Instant>,
    waited: Duration,
}

impl WaitClock {
    /// A request starts, unless `limit` are in flight already: the guard
    /// ends it when dropped (when its response body is done or dropped).
    pub fn start(&self, limit: usize) -> Option<InFlight> {
        let mut waits = self.0.lock();
        if waits.in_flight >= limit {
            return None;
        }
        if waits.in_flight == 0 {
            waits.since = Some(Instant::now());
        }
        waits.in_flight += 1;
        Some(InFlight(self.clone()))
    }

    /// A message begins at `at`.
    pub(crate) fn message_started(&self, at: Instant) {
        self.0.lock().message_start = Some(at);
    }

    /// What is left of a message `ceiling` long, by now.
    pub fn ceiling_left(&self, ceiling: Duration) -> Duration {
        match self.0.lock().message_start {
            Some(start) => ceiling.saturating_sub(start.elapsed()),
            None => ceiling,
        }
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.0.lock().in_flight
    }

    /// Time waited since the last call, up to `now`.
    pub(crate) fn take_waited(&self, now: Instant) -> Duration {
        let mut guard = self.0.lock();
        let waits = &mut *guard;
        if let Some(since) = waits.since.as_mut() {
            waits.waited += now.saturating_duration_since(*since);
            *since = now;
        }
        std::mem::take(&mut waits.waited)
    }
}

/// One request in flight (see [`WaitClock::start`]).
pub struct InFlight(WaitClock);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut waits = self.0.0.lock();
        waits.in_flight -= 1;
        if waits.in_flight == 0
            && let Some(since) = waits.since.take()
        {
            waits.waited += since.elapsed();
        }
    }
}

/// An incarnation's `wasi:http` state: built on the guest's first
/// `wasi:http` call.
pub(crate) struct HttpState {
    pub ctx: WasiHttpCtx,
    pub hooks: Hooks,
}

/// What `wasi:http` asks the embedder: here, where to send a request.
pub(crate) struct Hooks {
    /// The grant, or `None`: every request is refused.
    port: Option<Arc<dyn HttpPort>>,
    caller: Caller,
}

impl HttpState {
    /// The state of an incarnation of `caller` holding `access`.
    pub fn new(access: Option<&HttpAccess>, caller: Caller) -> Self {
        HttpState { ctx: WasiHttpCtx::new(), hooks: Hooks { port: access.map(|a| a.0.clone()), caller } }
    }
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        let Some(port) = &self.port else {
            tracing::warn!(actor = %self.caller.address, url = %request.uri(), "outbound HTTP request denied: the actor has no `http` grant");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        };
        let sent = port.send(&self.caller, request, options);
        Box::new(async move {
            let (response, io) = sent.await?;
            Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_past_the_limit_are_refused_and_a_finished_one_frees_its_place() {
        let clock = WaitClock::default();
        let first = clock.start(2).expect("the first");
        let _second = clock.start(2).expect("the second");
        assert!(clock.start(2).is_none(), "a third is past the limit");
        drop(first);
        assert_eq!(clock.in_flight(), 1);
        assert!(clock.start(2).is_some(), "the first's place is free again");
    }

    #[test]
    fn time_with_a_request_in_flight_is_waiting_and_is_taken_once() {
        let clock = WaitClock::default();
        assert_eq!(clock.take_waited(Instant::now()), Duration::ZERO, "nothing in flight, nothing waited");
        let request = clock.start(1).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        drop(request);
        assert!(clock.take_waited(Instant::now()) >= Duration::from_millis(5));
        assert_eq!(clock.take_waited(Instant::now()), Duration::ZERO, "taken once");
    }

    #[test]
    fn what_is_left_of_the_ceiling_counts_from_the_start_of_the_message() {
        let clock = WaitClock::default();
        let ceiling = Duration::from_secs(60);
        assert_eq!(clock.ceiling_left(ceiling), ceiling, "no message yet: all of it");
        clock.message_started(Instant::now() - Duration::from_secs(50));
        assert!(clock.ceiling_left(ceiling) <= Duration::from_secs(10));
        clock.message_started(Instant::now() - Duration::from_secs(70));
        assert_eq!(clock.ceiling_left(ceiling), Duration::ZERO);
    }
}
