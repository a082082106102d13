//! The HTTP gateway: call and manage a host's actors from anything that
//! speaks HTTP, with JSON (`troupe run --http ADDR`).
//!
//! # Endpoints
//!
//! | method and path | scope | what |
//! |-----------------|-------|------|
//! | `POST /v1/actors/{address}/call/{function}` | admin | ask; the reply (see [`calls`]) |
//! | `POST /v1/actors/{address}/send/{function}` | admin | tell; `202 Accepted` |
//! | `GET /v1/actors` | read | the actors, as `troupe ps --json` (`?virtual=NAME`: one virtual component's keys) |
//! | `GET /v1/actors/{address}` | read | one actor's information, its functions' signatures, its recent events (`?wit=true`: and its component's WIT) |
//! | `GET /v1/tree` | read | the supervision tree, as `troupe tree --json` |
//! | `GET /v1/events` | read | server-sent events, one per host event, as `troupe events --json` |
//! | `POST /v1/actors` | admin | spawn; `201 Created` |
//! | `DELETE /v1/actors/{address}` | admin | stop, with what is under it |
//! | `POST /v1/actors/{address}/swap` | admin | hot swap, as `troupe swap` |
//! | `GET /metrics` | read | the host's metrics, in the Prometheus text format (see [`crate::metrics`]) |
//! | `GET /` | none | the live dashboard (see [`dashboard`]): a static page that reads the endpoints above |
//!
//! Management answers what the control socket answers to the same
//! request (the private `routes` module); errors are `{"code", "message"}` with the
//! host's codes, at the statuses of [`status`].
//!
//! # Where it listens, and who may use it
//!
//! A bare port listens on loopback ([`address`]). Tokens and scopes are
//! [`auth`]'s. Without tokens every request is allowed, so the gateway
//! refuses to listen anywhere but on a loopback address without them
//! ([`GatewayError::OpenWithoutTokens`]): on loopback only this machine's
//! users reach it, as they reach the control socket. The gateway speaks
//! plain HTTP/1.1: to reach it across a network, put it behind a TLS
//! proxy.
//!
//! It listens with a backlog of [`LISTEN_BACKLOG`] connections, and holds
//! as many as the process may open files (`troupe run --http` raises its
//! soft limit to the hard one).
//!
//! Every request body is capped at [`MAX_BODY_BYTES`] (413 beyond), below
//! each actor's own `max-message-bytes`.
//!
//! # Traces
//!
//! While tracing is on (`troupe run --otlp`), each request is an
//! `http.request` span that continues the request's W3C `traceparent`
//! header, and the messages it sends follow from it (see
//! [`crate::trace`]).

pub mod address;
pub mod auth;
pub mod calls;
pub mod dashboard;
mod http_actors;
mod routes;
pub mod status;

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};
use tracing::{error, info};

pub use address::{AddressError, parse_listen_address};
pub use auth::{Denied, Scope, TokenError, Tokens};
pub use status::{ApiError, Problem};

use crate::host::Host;

/// The largest request body the gateway reads, of any endpoint: 16 MiB.
/// A message is further held to its receiver's `max-message-bytes`.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// How many connections the kernel queues for the gateway before it
/// accepts them (capped by `net.core.somaxconn`). The usual 128 is soon
/// full when many clients connect at once, and a connection it drops
/// waits a second for its retry.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A non-loopback address without tokens: anyone who could reach it
    /// could call, spawn and stop actors.
    #[error(
        "refusing to serve HTTP on {0} without tokens: it is not a loopback address, so anyone who can reach it \
         could call, spawn and stop actors; give tokens with `--http-tokens FILE` or `TROUPE_HTTP_TOKENS` \
         (entries `admin TOKEN` or `read TOKEN`), or listen on loopback (`--http 127.0.0.1:PORT`)"
    )]
    OpenWithoutTokens(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {address} for HTTP: {error}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
}

/// A bound gateway, not serving yet.
pub struct Gateway {
    listener: TcpListener,
    address: SocketAddr,
    tokens: Tokens,
}

impl Gateway {
    /// Listens on `address`, to accept the requests that `tokens` allow
    /// (all of them if there are none).
    ///
    /// # Errors
    ///
    /// [`GatewayError::OpenWithoutTokens`] for a non-loopback address
    /// without tokens (checked before binding anything), or
    /// [`GatewayError::Bind`].
    pub async fn bind(address: SocketAddr, tokens: Tokens) -> Result<Gateway, GatewayError> {
        if tokens.is_empty() && !address.ip().is_loopback() {
            return Err(GatewayError::OpenWithoutTokens(address));
        }
        let bind_error = |error| GatewayError::Bind { address, error };
        let socket = if address.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() };
        let socket = socket.map_err(bind_error)?;
        // As std's and tokio's own `bind` do: a restarted host can listen
        // again at once, its old connections in TIME_WAIT or not.
        socket.set_reuseaddr(true).map_err(bind_error)?;
        socket.bind(address).map_err(bind_error)?;
        let listener = socket.listen(LISTEN_BACKLOG).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        Ok(Gateway { listener, address, tokens })
    }

    /// The address it listens on (the port chosen, if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Serves `host` until the future is dropped (open event streams
    /// never end by themselves, so it is dropped rather than drained).
    pub async fn serve(self, host: Host) {
        info!(address = %self.address, tokens = self.tokens.len(), "HTTP gateway listening");
        let router = routes::router(host, self.tokens);
        if let Err(e) = axum::serve(self.listener, router).await {
            error!(error = %e, "the HTTP gateway stopped");
        }
    }
}
