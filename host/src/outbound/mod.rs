//! Outbound calls: whether and how an actor reaches something outside the
//! host. The policies are small pure modules with their specification in
//! their doc, none reading a clock or a random source of its own (callers
//! pass `now` and the randomness, so tests drive them deterministically);
//! `client` applies them to real requests.
//!
//! * [`allow`] — the HTTP allow-list of a grant: which URLs an actor may
//!   request, and which addresses the names in them may resolve to;
//! * [`breaker`] — a circuit breaker per outbound host pattern or binding:
//!   fail fast while a dependency is down, probe it with one trial call;
//! * [`retry`] — retries of idempotent calls: attempts, backoff with full
//!   jitter, and a retry budget so that retries cannot amplify an outage;
//! * [`grant`] — an actor's `http` grant as written: patterns, each with
//!   its breaker and retries, and the limits of its requests;
//! * [`guard`] — the circuit breaker of a binding between actors (the
//!   actor layer's `CallBreaker`);
//! * [`tls`] — the certificate authorities `https` requests trust: the
//!   Mozilla roots and the host's private ones;
//! * [`client`] — the sender that applies them all to an actor's
//!   `wasi:http` requests: the implementation of the actor layer's
//!   [`HttpPort`](crate::actor::http_port::HttpPort), which the host puts
//!   into the grants of the actors it starts.
//!
//! This is the host-services layer: it may use `crate::actor` types, and
//! nothing in `actor` uses it.

pub mod allow;
pub mod breaker;
pub mod client;
pub mod grant;
pub mod guard;
pub mod retry;
pub mod tls;

pub use allow::{HttpAllowList, HttpPattern, Permit};
pub use breaker::{Breaker, BreakerConfig};
pub use client::HttpClient;
pub use grant::{DelegationError, HttpGrant, HttpLimits, HttpRule};
pub use retry::{RetryBudget, RetryConfig};
pub use tls::{HttpTls, TlsRootsError};
