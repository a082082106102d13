//! Outbound calls: the pure policies that decide whether and how an actor
//! reaches something outside the host (issue 20). Each is a small module
//! with its specification in its doc, and none reads a clock or a random
//! source of its own: callers pass `now` and the randomness, so tests drive
//! them deterministically.
//!
//! * [`allow`] — the HTTP allow-list of a grant: which URLs an actor may
//!   request, and which addresses the names in them may resolve to;
//! * [`breaker`] — a circuit breaker per outbound host pattern or binding:
//!   fail fast while a dependency is down, probe it with one trial call;
//! * [`retry`] — retries of idempotent calls: attempts, backoff with full
//!   jitter, and a retry budget so that retries cannot amplify an outage.
//!
//! This is the host-services layer: it may use `crate::actor` types, and
//! nothing in `actor` uses it.

pub mod allow;
pub mod breaker;
pub mod retry;

pub use allow::{HttpAllowList, HttpPattern, Permit};
pub use breaker::{Breaker, BreakerConfig};
pub use retry::{RetryBudget, RetryConfig};
