//! Sending an actor's HTTP requests under its grant: the [`HttpClient`]
//! behind an actor's [`HttpAccess`].
//!
//! # A request, step by step
//!
//! 1. **The URL** is checked against the allow-list ([`super::allow`]):
//!    scheme, host, port, path. Refused: `HTTP-request-denied`, and a
//!    warning in the log naming the actor and the URL.
//! 2. **Concurrency**: past `max-concurrent` requests of the actor in
//!    flight, `connection-limit-reached` at once (the actor is told, it
//!    does not queue).
//! 3. **The breaker** of the first matching pattern, if it has one: open,
//!    the request fails fast with `internal-error("circuit-open: ...")`;
//!    nothing is sent.
//! 4. **The name is resolved here**, and every address it resolves to is
//!    checked ([`Permit::check_address`](super::allow::Permit::check_address)):
//!    troupe connects only to an address it checked (a name that resolves
//!    to loopback or a private network is refused, `HTTP-request-denied`,
//!    unless a pattern names the host exactly). Then TLS for `https`
//!    (Mozilla's roots and the host's private ones, [`super::tls`]), then
//!    HTTP/1.1, one connection per request.
//! 5. **Timeouts** (the grant's, or shorter ones from the guest's
//!    `request-options`): connect, first byte, between bytes. **Sizes**:
//!    the request body and the response body are counted as they stream.
//! 6. **The outcome** goes to the breaker: a connection error, a timeout
//!    or a 5xx is a failure; any other answer a success. A failure of an
//!    idempotent request without a body (`GET`, `HEAD`, `PUT`, `DELETE`,
//!    `OPTIONS`, `TRACE`) is retried if the pattern has `retry`, within
//!    its attempts and its budget ([`super::retry`]); a 502, 503 or 504
//!    too. Nothing is retried by default.
//!
//! Redirects are not followed: the guest gets the 3xx, and a request to
//! its `Location` is a new request, checked like any other.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use serde_json::json;
use tokio::net::TcpStream;
use tracing::warn;
use url::{Host, Url};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::allow::{HttpAllowList, Permit};
use super::breaker::{Breaker, Outcome, Transition};
use super::grant::{HttpGrant, HttpGrantError, HttpLimits};
use super::guard::breaker_event;
use super::retry::{Idempotency, Retries, RetryDecision};
use super::tls::HttpTls;
use crate::ErrorCode;
use crate::actor::BoxFuture;
use crate::actor::binding::BreakerReading;
use crate::actor::configured::{Configured, Handle};
use crate::actor::http_port::{Caller, ChildHttpGrant, HttpAccess, HttpPort, InFlight, SendResult};
use crate::sync::Mutex;

/// The sender of the requests of the actors holding one grant: its
/// allow-list, and a breaker and retries per pattern that has them.
#[derive(Clone)]
pub struct HttpClient(Arc<Inner>);

/// How names are resolved to addresses: the system's resolver by default.
/// Every address a resolver returns is still checked against the grant.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host`, with `port`.
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>>;
}

/// The system's resolver (`getaddrinfo`, through tokio).
struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        let host = host.to_string();
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()) })
    }
}

struct Inner {
    resolver: Arc<dyn Resolve>,
    grant: HttpGrant,
    allow: HttpAllowList,
    /// Per pattern, in the grant's order.
    rules: Vec<RuleState>,
    tls: HttpTls,
}

struct RuleState {
    breaker: Option<Mutex<Breaker>>,
    retries: Option<Mutex<Retries>>,
}

impl HttpClient {
    /// The client of `grant`.
    ///
    /// # Errors
    ///
    /// An [`HttpGrantError`] if the grant is invalid.
    pub fn new(grant: HttpGrant) -> Result<Self, HttpGrantError> {
        HttpClient::with_resolver(grant, Arc::new(SystemResolver))
    }

    /// The client of `grant`, resolving names with `resolver`.
    ///
    /// # Errors
    ///
    /// An [`HttpGrantError`] if the grant is invalid.
    pub fn with_resolver(grant: HttpGrant, resolver: Arc<dyn Resolve>) -> Result<Self, HttpGrantError> {
        HttpClient::with_parts(grant, resolver, HttpTls::default())
    }

    /// The client of `grant`, its `https` requests trusting `tls`.
    ///
    /// # Errors
    ///
    /// An [`HttpGrantError`] if the grant is invalid.
    pub fn with_tls(grant: HttpGrant, tls: HttpTls) -> Result<Self, HttpGrantError> {
        HttpClient::with_parts(grant, Arc::new(SystemResolver), tls)
    }

    /// The client of `grant`, resolving names with `resolver` and trusting
    /// `tls`.
    ///
    /// # Errors
    ///
    /// An [`HttpGrantError`] if the grant is invalid.
    pub fn with_parts(grant: HttpGrant, resolver: Arc<dyn Resolve>, tls: HttpTls) -> Result<Self, HttpGrantError> {
        let allow = grant.validate()?;
        let rules = grant
            .allow
            .iter()
            .map(|rule| RuleState {
                breaker: rule.breaker.map(|c| Mutex::new(Breaker::new(c))),
                retries: rule.retry.map(|c| Mutex::new(Retries::new(c))),
            })
            .collect();
        Ok(HttpClient(Arc::new(Inner { resolver, grant, allow, rules, tls })))
    }

    /// The grant as an actor's [`HttpAccess`].
    ///
    /// # Errors
    ///
    /// An [`HttpGrantError`] if the grant is invalid.
    pub fn access(grant: HttpGrant) -> Result<HttpAccess, HttpGrantError> {
        Ok(HttpClient::new(grant)?.into_access())
    }

    /// This client as an actor's [`HttpAccess`].
    pub fn into_access(self) -> HttpAccess {
        Handle(Arc::new(self))
    }

    /// The grant it enforces.
    pub fn grant(&self) -> &HttpGrant {
        &self.0.grant
    }
}

impl Configured for HttpClient {
    fn describe(&self) -> String {
        serde_json::to_string(&self.0.grant).unwrap_or_default()
    }
}

impl HttpPort for HttpClient {
    fn send(
        &self,
        caller: &Caller,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> BoxFuture<'static, SendResult> {
        let this = self.0.clone();
        let caller = caller.clone();
        Box::pin(async move { this.send(caller, request, options).await })
    }

    fn max_concurrent(&self) -> usize {
        self.0.grant.limits.max_concurrent as usize
    }

    fn message_ceiling(&self) -> Duration {
        self.0.grant.limits.message_ceiling
    }

    fn status(&self) -> serde_json::Value {
        let now = Instant::now();
        let patterns: Vec<_> = self
            .0
            .grant
            .allow
            .iter()
            .zip(&self.0.rules)
            .map(|(rule, state)| {
                let mut entry = json!({ "url": rule.url });
                if let Some(breaker) = &state.breaker {
                    entry["breaker"] = json!(breaker.lock().status(now));
                }
                if let Some(retries) = &state.retries {
                    entry["retry-budget"] = json!(retries.lock().budget().status(now));
                }
                entry
            })
            .collect();
        json!({ "allow": patterns, "limits": self.0.grant.limits })
    }

    fn breakers(&self) -> Vec<BreakerReading> {
        let rules = self.0.grant.allow.iter().zip(&self.0.rules);
        rules.filter_map(|(rule, state)| Some(state.breaker.as_ref()?.lock().reading(&rule.url))).collect()
    }

    fn delegate(&self, request: &ChildHttpGrant) -> Result<HttpAccess, String> {
        let grant = self.0.grant.delegate(request).map_err(|e| e.to_string())?;
        HttpClient::with_resolver(grant, self.0.resolver.clone())
            .map(HttpClient::into_access)
            .map_err(|e| e.to_string())
    }
}

/// The limits of one request: the grant's, shortened by the guest's.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    connect: Duration,
    first_byte: Duration,
    between_bytes: Duration,
}

impl Timeouts {
    /// No timeout longer than `left` of the message's ceiling: a request
    /// then ends by the ceiling, and the message with it.
    fn within(self, left: Duration) -> Self {
        let left = left.max(Duration::from_millis(1));
        Timeouts {
            connect: self.connect.min(left),
            first_byte: self.first_byte.min(left),
            between_bytes: self.between_bytes.min(left),
        }
    }

    fn of(limits: &HttpLimits, options: Option<RequestOptions>) -> Self {
        let shorter = |grant: Duration, guest: Option<Duration>| guest.map_or(grant, |g| g.min(grant));
        let o = options.unwrap_or_default();
        Timeouts {
            connect: shorter(limits.connect_timeout, o.connect_timeout),
            first_byte: shorter(limits.first_byte_timeout, o.first_byte_timeout),
            between_bytes: shorter(limits.between_bytes_timeout, o.between_bytes_timeout),
        }
    }
}

/// Why an attempt failed, for the breaker and retries.
enum Failed {
    /// Before anything reached the server, or a timeout, or a 5xx: the
    /// dependency looks unwell.
    Transient(Error),
    /// The request itself is at fault (a denial, a body too large): not
    /// the dependency's doing.
    Caller(Error),
}

impl Inner {
    async fn send(
        self: Arc<Self>,
        caller: Caller,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> SendResult {
        let uri = request.uri().to_string();
        let denied = |reason: &dyn std::fmt::Display| {
            warn!(actor = %caller.address, url = %uri, "outbound HTTP request denied: {reason}");
            Error::HttpRequestDenied
        };
        let url = Url::parse(&uri).map_err(|e| denied(&e))?;
        let permit = self.allow.check_url(&url).map_err(|e| denied(&e))?;
        let limits = self.grant.limits;
        let Some(in_flight) = caller.waits.start(limits.max_concurrent as usize) else {
            warn!(
                actor = %caller.address, url = %uri,
                "outbound HTTP request refused: {} requests in flight already (`max-concurrent`)",
                limits.max_concurrent
            );
            return Err(Error::ConnectionLimitReached);
        };
        let timeouts = Timeouts::of(&limits, options).within(caller.waits.ceiling_left(limits.message_ceiling));
        let rule = &self.rules[permit.pattern];
        let retryable = Idempotency::of_http_method(request.method().as_str()) == Idempotency::Idempotent
            && request.body().is_end_stream();
        let (parts, body) = request.into_parts();
        let mut body = Some(LimitedRequest { body, left: limits.max_request_bytes }.boxed_unsync());
        let mut call = rule.retries.as_ref().map(|r| r.lock().start_call(Instant::now()));
        loop {
            let ticket = match &rule.breaker {
                Some(breaker) => {
                    let admission = breaker.lock().admit(Instant::now());
                    self.publish(&caller, permit.pattern, admission.transition);
                    match admission.ticket {
                        Ok(ticket) => Some(TicketGuard {
                            client: &self,
                            caller: &caller,
                            pattern: permit.pattern,
                            ticket: Some(ticket),
                        }),
                        Err(open) => {
                            warn!(actor = %caller.address, url = %uri, pattern = %self.grant.allow[permit.pattern].url, "outbound HTTP request failed fast: {open}");
                            return Err(Error::InternalError(Some(format!(
                                "{}: {open}",
                                ErrorCode::CircuitOpen.as_str()
                            ))));
                        }
                    }
                }
                None => None,
            };
            // A retried request has no body to send again (see `retryable`).
            let attempt_body = body.take().unwrap_or_else(empty_body);
            let request = http::Request::from_parts(parts.clone(), attempt_body);
            let result = self.attempt(&permit, request, timeouts, &caller).await;
            let outcome = match &result {
                Ok((response, _)) if response.status().is_server_error() => Outcome::Failure,
                Ok(_) => Outcome::Success,
                Err(Failed::Transient(_)) => Outcome::Failure,
                Err(Failed::Caller(_)) => Outcome::Success,
            };
            if let Some(mut ticket) = ticket {
                ticket.finish(outcome);
            }
            let transient = match &result {
                Ok((response, _)) => matches!(response.status().as_u16(), 502..=504),
                Err(Failed::Transient(_)) => true,
                Err(Failed::Caller(_)) => false,
            };
            if transient && let (Some(retries), Some(call)) = (&rule.retries, call.as_mut()) {
                let idempotency = if retryable { Idempotency::Idempotent } else { Idempotency::NotIdempotent };
                let decision = retries.lock().after_failure(call, idempotency, Instant::now(), fastrand::f64());
                if let RetryDecision::RetryAfter(wait) = decision {
                    tracing::debug!(actor = %caller.address, url = %uri, attempt = call.made(), "retrying outbound HTTP request");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return match result {
                Ok((response, io)) => {
                    let response = response.map(|incoming| {
                        ResponseBody::new(incoming, timeouts.between_bytes, limits.max_response_bytes, in_flight)
                            .boxed_unsync()
                    });
                    Ok((response, io))
                }
                Err(Failed::Transient(e) | Failed::Caller(e)) => {
                    warn!(actor = %caller.address, url = %uri, "outbound HTTP request failed: {e:?}");
                    Err(e)
                }
            };
        }
    }

    /// Publishes a breaker's change of state as an event of `caller`.
    fn publish(&self, caller: &Caller, pattern: usize, transition: Option<Transition>) {
        let Some(t) = transition else { return };
        let url = &self.grant.allow[pattern].url;
        tracing::info!(actor = %caller.address, pattern = %url, from = ?t.from, to = ?t.to, "circuit breaker changed state");
        caller.events.publish(&caller.address, breaker_event(url, t));
    }

    /// One attempt: resolve, check, connect, send, wait for the head.
    async fn attempt(
        &self,
        permit: &Permit,
        mut request: http::Request<WasiBody>,
        timeouts: Timeouts,
        caller: &Caller,
    ) -> Result<(http::Response<hyper::body::Incoming>, BoxFuture<'static, Result<(), Error>>), Failed> {
        let url = &permit.url;
        let https = url.scheme() == "https";
        let port = url.port_or_known_default().unwrap_or(if https { 443 } else { 80 });
        let connect = async {
            let candidates: Vec<SocketAddr> =
                match url.host() {
                    Some(Host::Ipv4(a)) => vec![SocketAddr::new(IpAddr::V4(a), port)],
                    Some(Host::Ipv6(a)) => vec![SocketAddr::new(IpAddr::V6(a), port)],
                    Some(Host::Domain(name)) => self.resolver.resolve(name, port).await.map_err(|e| {
                        Failed::Transient(Error::DnsError { rcode: Some(e.to_string()), info_code: None })
                    })?,
                    None => return Err(Failed::Caller(Error::HttpRequestUriInvalid)),
                };
            let mut refused = None;
            let mut last_error = None;
            for address in candidates {
                if let Err(denial) = permit.check_address(address.ip()) {
                    refused.get_or_insert(denial);
                    continue;
                }
                match TcpStream::connect(address).await {
                    Ok(stream) => return Ok(stream),
                    Err(e) => last_error = Some(e),
                }
            }
            match (last_error, refused) {
                (Some(e), _) => Err(Failed::Transient(Error::Connect(e))),
                (None, Some(denial)) => {
                    warn!(actor = %caller.address, url = %url, "outbound HTTP request denied: {denial}");
                    Err(Failed::Caller(Error::HttpRequestDenied))
                }
                (None, None) => Err(Failed::Transient(Error::DestinationNotFound)),
            }
        };
        let stream = tokio::time::timeout(timeouts.connect, connect)
            .await
            .map_err(|_| Failed::Transient(Error::ConnectionTimeout))??;
        let _ = stream.set_nodelay(true);
        let handshake = async {
            let stream: Box<dyn Stream> = if https {
                let name = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
                let server = tokio_rustls::rustls::pki_types::ServerName::try_from(name.to_string())
                    .map_err(|_| Failed::Caller(Error::HttpRequestUriInvalid))?;
                Box::new(
                    self.tls.connector().connect(server, stream).await.map_err(|e| Failed::Transient(tls_error(e)))?,
                )
            } else {
                Box::new(stream)
            };
            hyper::client::conn::http1::handshake::<_, WasiBody>(TokioIo::new(stream))
                .await
                .map_err(|e| Failed::Transient(Error::Hyper(e)))
        };
        let (mut sender, conn) = tokio::time::timeout(timeouts.connect, handshake)
            .await
            .map_err(|_| Failed::Transient(Error::ConnectionTimeout))??;
        // The request line carries the path only (not the absolute URI,
        // which is for proxies).
        *request.uri_mut() = http::Uri::builder()
            .path_and_query(request.uri().path_and_query().map_or("/", |p| p.as_str()))
            .build()
            .map_err(|_| Failed::Caller(Error::HttpRequestUriInvalid))?;
        // The connection is driven here until the response head is in,
        // then by the guest's body reads (`io`). A server that answers and
        // closes ends the connection first: the response is in all the same.
        let mut conn = Some(Box::pin(conn));
        let response = async {
            let mut send = std::pin::pin!(sender.send_request(request));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(response) = send.as_mut().poll(cx) {
                    return Poll::Ready(response.map_err(classify_hyper));
                }
                let Some(connection) = conn.as_mut() else { return Poll::Pending };
                match std::task::ready!(connection.as_mut().poll(cx)) {
                    Ok(()) => {
                        conn = None;
                        send.as_mut().poll(cx).map(|response| response.map_err(classify_hyper))
                    }
                    Err(e) => {
                        conn = None;
                        Poll::Ready(Err(classify_hyper(e)))
                    }
                }
            })
            .await
        };
        let response = tokio::time::timeout(timeouts.first_byte, response)
            .await
            .map_err(|_| Failed::Transient(Error::ConnectionReadTimeout))??;
        let io: BoxFuture<'static, Result<(), Error>> = Box::pin(async move {
            match conn {
                Some(connection) => connection.await.map_err(Error::Hyper),
                None => Ok(()),
            }
        });
        Ok((response, io))
    }
}

/// A failed TLS handshake: a certificate that does not verify (unknown
/// authority, wrong name, expired) is `TLS-certificate-error`, which says
/// what to fix; anything else `TLS-protocol-error`.
fn tls_error(e: std::io::Error) -> Error {
    use tokio_rustls::rustls;
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(_)) => Error::TlsCertificateError,
        _ => Error::Tls(e),
    }
}

/// A hyper error while sending: the body's own error (too large) is the
/// caller's; anything else the connection's.
fn classify_hyper(e: hyper::Error) -> Failed {
    if let Some(Error::HttpRequestBodySize(size)) =
        std::error::Error::source(&e).and_then(|s| s.downcast_ref::<Error>())
    {
        return Failed::Caller(Error::HttpRequestBodySize(*size));
    }
    Failed::Transient(Error::Hyper(e))
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

fn empty_body() -> WasiBody {
    http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A breaker's ticket, recorded as cancelled if the request is dropped
/// before its outcome is known.
struct TicketGuard<'a> {
    client: &'a Inner,
    caller: &'a Caller,
    pattern: usize,
    ticket: Option<super::breaker::Ticket>,
}

impl TicketGuard<'_> {
    fn finish(&mut self, outcome: Outcome) {
        let (Some(ticket), Some(breaker)) = (self.ticket.take(), &self.client.rules[self.pattern].breaker) else {
            return;
        };
        let transition = breaker.lock().record(ticket, outcome, Instant::now());
        self.client.publish(self.caller, self.pattern, transition);
    }
}

impl Drop for TicketGuard<'_> {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled);
    }
}

/// A request body, counted against `max-request-bytes`.
struct LimitedRequest {
    body: WasiBody,
    left: u64,
}

impl Body for LimitedRequest {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.body).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            let len = data.len() as u64;
            if len > self.left {
                return Poll::Ready(Some(Err(Error::HttpRequestBodySize(None))));
            }
            self.left -= len;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body: between-bytes timeout, size limit, and the request's
/// place among those in flight until it ends.
struct ResponseBody {
    incoming: hyper::body::Incoming,
    between: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    left: u64,
    limit: u64,
    in_flight: Option<InFlight>,
}

impl ResponseBody {
    fn new(incoming: hyper::body::Incoming, between: Duration, limit: u64, in_flight: InFlight) -> Self {
        let timer = Box::pin(tokio::time::sleep(between));
        ResponseBody { incoming, between, timer, left: limit, limit, in_flight: Some(in_flight) }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(None) => {
                this.in_flight = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.in_flight = None;
                Poll::Ready(Some(Err(Error::Hyper(e))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.left {
                        this.in_flight = None;
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(this.limit)))));
                    }
                    this.left -= len;
                }
                let next = tokio::time::Instant::now() + this.between;
                this.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                std::task::ready!(this.timer.as_mut().poll(cx));
                this.in_flight = None;
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}
