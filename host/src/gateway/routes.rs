//! The gateway's endpoints, and the one authorization check in front of
//! them all.
//!
//! Looking at the host and managing it is the control endpoint's work:
//! each of these endpoints builds the control [`Request`] it stands for
//! and answers what [`control::answer`] answers, so that the gateway and
//! the socket cannot drift apart. Only calling actors (see
//! [`super::calls`]), spawning from a template, and the event stream
//! (server-sent events) are the gateway's own.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, Request as HttpRequest, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;

use super::MAX_BODY_BYTES;
use super::auth::{Scope, Tokens};
use super::calls::{Target, deliver};
use super::dashboard::{self, RecentEvents};
use super::status::{ApiError, Problem};
use crate::ErrorCode;
use crate::actor::durable::Durability;
use crate::control::{self, LimitOverrides, Request, SpawnReply};
use crate::host::Host;
use crate::message::{Address, CallError};
use crate::protocol::FunctionInfo;
use crate::supervision::RestartType;
use crate::trace::{self, Follows, TraceContext};

/// What every handler shares.
struct Shared {
    host: Host,
    tokens: Tokens,
    /// The events actors' pages show.
    recent: RecentEvents,
}

type Gate = State<Arc<Shared>>;

/// How many recent events `GET /v1/actors/{address}` returns, at most.
const ACTOR_PAGE_EVENTS: usize = 50;

/// The gateway's routes over `host`, guarded by `tokens`.
pub(super) fn router(host: Host, tokens: Tokens) -> Router {
    let recent = RecentEvents::follow(host.events());
    let shared = Arc::new(Shared { host, tokens, recent });
    Router::new()
        .route("/v1/actors", get(ps).post(spawn))
        .route("/v1/actors/{*path}", get(actor).delete(stop).post(act_on))
        .route("/v1/tree", get(tree))
        .route("/v1/events", get(events))
        .route("/metrics", get(metrics))
        .fallback(served_or_no_route)
        .layer(middleware::from_fn_with_state(shared.clone(), authorize))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(trace_request))
        .with_state(shared)
        .merge(dashboard::router())
}

/// While tracing is on, handles the request in an `http.request` span
/// (target [`trace::TARGET`]) that continues the request's `traceparent`
/// header if it has a valid one, and starts a trace otherwise: the asks
/// and tells it makes follow from it (see [`crate::trace`]).
async fn trace_request(request: HttpRequest, next: Next) -> Response {
    if !trace::active() {
        return next.run(request).await;
    }
    let span = tracing::info_span!(
        target: trace::TARGET,
        parent: None,
        "http.request",
        otel.kind = "server",
        method = %request.method(),
        path = %request.uri().path(),
        status = tracing::field::Empty,
    );
    let incoming = request.headers().get("traceparent").and_then(|v| v.to_str().ok());
    if let Some(cx) = incoming.and_then(TraceContext::from_traceparent) {
        trace::follow(&span, cx, Follows::ChildOf);
    }
    let response = next.run(request).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    response
}

/// Lets a request through only if its token allows its method (see
/// [`super::auth`]); every route, the fallback too, is behind it.
async fn authorize(State(shared): Gate, request: HttpRequest, next: Next) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    match shared.tokens.authorize(authorization, Scope::needed_for(request.method())) {
        Ok(()) => next.run(request).await,
        Err(denied) => ApiError::from(denied).into_response(),
    }
}

/// A path that is none of the gateway's: an HTTP actor's route (see
/// [`super::http_actors`]), or 404.
async fn served_or_no_route(State(shared): Gate, request: HttpRequest) -> Response {
    match super::http_actors::serve(&shared.host, request).await {
        Some(response) => response,
        None => no_route().await.into_response(),
    }
}

async fn no_route() -> ApiError {
    ApiError::new(
        Problem::NoRoute,
        "no such endpoint; the gateway serves the dashboard at /, and /v1/actors, /v1/actors/ADDRESS, \
         /v1/actors/ADDRESS/call/FUNCTION, /v1/actors/ADDRESS/send/FUNCTION, /v1/actors/ADDRESS/swap, /v1/tree, \
         /v1/events and /metrics",
    )
}

/// What the control endpoint answered, as a result.
async fn answer(host: &Host, request: Request) -> Result<Value, ApiError> {
    let response = control::answer(host, request).await;
    match response.error {
        Some(error) => Err(ApiError::from_control(error)),
        None => Ok(response.ok.unwrap_or(Value::Null)),
    }
}

/// A body within the gateway's cap.
fn within_cap(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::host(
                ErrorCode::TooLarge,
                format!("the request body is over the gateway's limit of {} MiB", MAX_BODY_BYTES >> 20),
            )
        } else {
            ApiError::host(ErrorCode::BadRequest, format!("the request body could not be read: {rejection}"))
        }
    })
}

/// A JSON body of type `T`.
fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes, example: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::host(ErrorCode::BadRequest, format!("the body does not fit ({e}); send JSON such as {example}"))
    })
}

#[derive(Deserialize)]
struct PsQuery {
    /// Only the active keys of this virtual component.
    #[serde(rename = "virtual")]
    virtual_component: Option<String>,
    /// Every host's actors (`?cluster=true`), as `troupe ps --cluster`.
    #[serde(default)]
    cluster: bool,
}

/// `GET /v1/actors`: what `troupe ps --json` shows.
async fn ps(State(shared): Gate, query: Query<PsQuery>) -> Result<Json<Value>, ApiError> {
    let request = Request::Ps { virtual_component: query.0.virtual_component, cluster: query.0.cluster };
    answer(&shared.host, request).await.map(Json)
}

/// `GET /metrics`: the host's metrics, in the Prometheus text format
/// (see [`crate::metrics`]).
async fn metrics(State(shared): Gate) -> Response {
    let content_type = header::HeaderValue::from_static(crate::metrics::CONTENT_TYPE);
    ([(header::CONTENT_TYPE, content_type)], shared.host.metrics()).into_response()
}

#[derive(Deserialize)]
struct TreeQuery {
    /// Every host's tree (`?cluster=true`), as `troupe tree --cluster`.
    #[serde(default)]
    cluster: bool,
}

/// `GET /v1/tree`: the supervision tree.
async fn tree(State(shared): Gate, query: Query<TreeQuery>) -> Result<Json<Value>, ApiError> {
    answer(&shared.host, Request::Tree { cluster: query.0.cluster }).await.map(Json)
}

#[derive(Deserialize)]
struct ActorQuery {
    /// With the component's WIT (`?wit=true`).
    #[serde(default)]
    wit: bool,
}

/// `GET /v1/actors/{address}`: one running actor; its protocol, as
/// signatures (and with `?wit=true` as its component's WIT); and its
/// recent events (see [`RecentEvents`]). A key of a virtual component that is not active is
/// not activated by looking: it is not found.
async fn actor(
    State(shared): Gate,
    Path(address): Path<String>,
    query: Query<ActorQuery>,
) -> Result<Json<Value>, ApiError> {
    let unknown = || ApiError::from(CallError::UnknownAddress(Address::from(address.as_str())));
    let info = shared.host.actors().into_iter().find(|a| a.address.as_str() == address).ok_or_else(unknown)?;
    let actor = shared.host.lookup(&address)?;
    let component = actor.component();
    let functions: Vec<FunctionInfo> = component
        .protocol()
        .functions()
        .iter()
        .map(|f| FunctionInfo { name: f.qualified_name(), signature: f.signature() })
        .collect();
    let events = shared.recent.of(&info.address, ACTOR_PAGE_EVENTS);
    let mut reply = json!({ "actor": info, "functions": functions, "events": events });
    if query.0.wit {
        // The component's own WIT, as `troupe inspect` prints it: decoded
        // from its bytes at each request, hence only when asked for. A
        // component the host runs was decoded once already, so this
        // fails only on a bug, which leaves the reply without it.
        reply["wit"] = json!(crate::inspect::inspect(component.bytes()).map(|d| d.wit).ok());
    }
    Ok(Json(reply))
}

/// `GET /v1/events`: every host event from now on, one server-sent event
/// each, its data the event's JSON as `troupe events --json` prints it;
/// `{"event": "lagged", "missed": N}` when this reader fell behind and
/// missed `N`.
async fn events(State(shared): Gate) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    use tokio::sync::broadcast::error::RecvError;
    // Subscribed before the response starts: a client that has the
    // response's headers misses nothing after them.
    let receiver = shared.host.events();
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let data = match receiver.recv().await {
            Ok(event) => json!(event),
            Err(RecvError::Lagged(missed)) => json!({ "event": "lagged", "missed": missed }),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(SseEvent::default().data(data.to_string())), receiver))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The body of `POST /v1/actors`: the control socket's spawn request, with
/// `component` a component file on the host's machine or the name of a
/// component the host knows (a manifest's `[components]` entry).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpawnBody {
    name: String,
    component: String,
    #[serde(default)]
    limits: LimitOverrides,
    #[serde(default)]
    config: indexmap::IndexMap<String, String>,
    #[serde(default)]
    supervisor: Option<String>,
    #[serde(default)]
    restart: Option<RestartType>,
    #[serde(default)]
    durable: bool,
}

/// `POST /v1/actors`: spawn; `201 Created` with the control socket's
/// spawn reply.
async fn spawn(State(shared): Gate, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let body = within_cap(body)?;
    let body: SpawnBody = json_body(&body, r#"{"name": "counter", "component": "/path/to/counter.wasm"}"#)?;
    let reply = match shared.host.template(&body.component) {
        Some(_) => spawn_template(&shared.host, body).await?,
        None => {
            let path = std::path::absolute(&body.component).unwrap_or_else(|_| PathBuf::from(&body.component));
            let request = Request::Spawn {
                name: body.name,
                path,
                limits: body.limits,
                config: body.config.into_iter().collect(),
                supervisor: body.supervisor,
                restart: body.restart,
                durable: body.durable,
                http: None,
            };
            answer(&shared.host, request).await?
        }
    };
    Ok((StatusCode::CREATED, Json(reply)).into_response())
}

/// Spawns from the host's component `body.component`, its policy with the
/// body's overrides on top.
async fn spawn_template(host: &Host, body: SpawnBody) -> Result<Value, ApiError> {
    let unknown = || ApiError::host(ErrorCode::UnknownComponent, format!("no component `{}`", body.component));
    let mut template = host.template(&body.component).ok_or_else(unknown)?;
    if body.durable || template.policy.durability == Durability::Durable {
        // A durable actor is started again after a restart from its
        // recorded request, which names a file, not a template's policy.
        return Err(ApiError::host(
            ErrorCode::InvalidArgument,
            format!(
                "a durable actor is spawned from a component file: give `component` as the path of `{}`'s file",
                body.component
            ),
        ));
    }
    template.policy.limits = body.limits.apply_to(template.policy.limits.clone());
    template.policy.config.extend(body.config);
    if let Some(restart) = body.restart {
        template.policy.restart = restart;
    }
    let spec = template.spec(body.name.as_str().into());
    let actor = host.spawn_under(spec, body.supervisor.as_deref()).await.map_err(|e| ApiError::of(&e))?;
    let component = actor.component();
    Ok(json!(SpawnReply {
        address: actor.address().to_string(),
        component: component.name.clone(),
        hash: component.short_hash(),
    }))
}

/// `DELETE /v1/actors/{address}`: stop an actor or supervisor for good,
/// with what is under it.
async fn stop(State(shared): Gate, Path(address): Path<String>) -> Result<Json<Value>, ApiError> {
    answer(&shared.host, Request::Stop { address }).await.map(Json)
}

#[derive(Deserialize)]
struct CallQuery {
    /// How long a call waits for its reply, in milliseconds.
    timeout_ms: Option<u64>,
}

/// The body of `POST /v1/actors/{target}/swap`: the control socket's swap
/// request without its target, which is in the path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwapBody {
    path: PathBuf,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    probation_ms: Option<u64>,
    #[serde(default)]
    canary_ms: Option<u64>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    cluster: bool,
}

/// `POST /v1/actors/{path}`: a call or a send (see [`super::calls`]), or
/// a swap when the path ends in `/swap`.
async fn act_on(
    State(shared): Gate,
    Path(path): Path<String>,
    query: Result<Query<CallQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = within_cap(body)?;
    if let Some(target) = Target::split(&path) {
        let query = query.map_err(|e| ApiError::host(ErrorCode::BadRequest, e.body_text()))?;
        let timeout = query.0.timeout_ms.map(Duration::from_millis);
        return deliver(&shared.host, target, timeout, &headers, &body).await;
    }
    if let Some(target) = path.strip_suffix("/swap").filter(|t| !t.is_empty()) {
        let swap: SwapBody = json_body(&body, r#"{"path": "/path/to/new.wasm"}"#)?;
        let request = Request::Swap {
            target: target.to_string(),
            path: std::path::absolute(&swap.path).unwrap_or(swap.path),
            force: swap.force,
            probation_ms: swap.probation_ms,
            canary_ms: swap.canary_ms,
            version: swap.version,
            cluster: swap.cluster,
        };
        return answer(&shared.host, request).await.map(|v| Json(v).into_response());
    }
    Err(ApiError::new(
        Problem::NoRoute,
        format!(
            "`POST /v1/actors/{path}` names no call, send or swap; POST to /v1/actors/ADDRESS/call/FUNCTION, \
             /v1/actors/ADDRESS/send/FUNCTION or /v1/actors/ADDRESS/swap"
        ),
    ))
}
