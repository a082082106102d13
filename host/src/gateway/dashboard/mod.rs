//! The live dashboard at `/`: a page the host serves itself, from assets
//! compiled into the binary (plain HTML, CSS and JavaScript: no build
//! step, nothing fetched from elsewhere), drawn from the gateway's own
//! read endpoints.
//!
//! # What it shows
//!
//! * the supervision tree, from `GET /v1/tree`, fetched again as each
//!   event of `GET /v1/events` arrives (so a spawn, a crash or a restart
//!   shows as soon as the host reports it) and every second;
//! * the actors, from `GET /v1/actors`, in a table sortable by mailbox
//!   depth, memory, fuel, failures and restarts;
//! * an actor's page (`/#/actor/ADDRESS`), from `GET /v1/actors/{address}`:
//!   its counters, its protocol in WIT, its last failure with the wasm
//!   backtrace, its recent events (those the gateway kept, see
//!   [`RecentEvents`], then those arriving), and a form to call one of its
//!   functions with JSON arguments and see the typed reply;
//! * messages per second and failed messages per second of each
//!   component, charted from `GET /metrics` (`troupe_messages_total`),
//!   read every second: rates are the differences between two readings.
//!
//! # Tokens
//!
//! The assets themselves ([`ASSET_PATHS`]) are served to anyone: they are
//! the same for every host and hold none of its data, and a browser
//! cannot send a bearer token with the navigation that loads a page.
//! Everything the page shows comes from the endpoints above, with the
//! token the user gave it (read scope to look, admin to call): when the
//! host has tokens the page asks for one, keeps it in the tab's
//! `sessionStorage` (gone with the tab, never in a URL, never in a
//! cookie) and sends it as `Authorization: Bearer`. The event stream is
//! read with `fetch`, not `EventSource`, which cannot send that header.
//!
//! The page is served with a content security policy that allows only
//! its own scripts and styles, and no framing.

pub mod recent;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use recent::{RECENT_EVENTS, RecentEvents};

/// The paths of the dashboard's assets, served without a token.
pub const ASSET_PATHS: [&str; 3] = ["/", "/dashboard/app.js", "/dashboard/app.css"];

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

/// Only the page's own scripts, styles and requests; no plugins, no
/// framing (the page holds a token: no other site may frame it).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard's routes: its assets. Mounted outside the gateway's
/// authorization check (see the module docs).
pub(super) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(ASSET_PATHS[0], get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route(ASSET_PATHS[1], get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route(ASSET_PATHS[2], get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
}

/// An asset's response. `no-cache`: a browser revalidates, so a host of
/// another version never runs a stale script against its endpoints.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        body,
    )
        .into_response()
}
