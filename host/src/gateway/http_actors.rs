//! Requests on the routes of HTTP actors (see [`crate::host::routes`]):
//! what the gateway does with a path that is none of its own. A route's
//! request is a message to its actor ([`Host::serve_http`]); a path no
//! route matches is 404 (`no-route`).
//!
//! * The request body is read whole first, up to the actor's
//!   `max-message-bytes` (413 `too-large` beyond); the response body
//!   streams, and ends in an error past that many bytes.
//! * A full mailbox is 503 with `Retry-After`; the actor failing on the
//!   request (a trap, its deadline, fuel or memory limit) is 500 with the
//!   failure's kind, and its supervisor restarts it; no end of the handler
//!   within the ask timeout is 504: the errors of a call (see
//!   [`super::status`]).
//! * A handler that returns without setting a response is 500.

use axum::body::Body;
use axum::extract::Request as HttpRequest;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tokio::sync::oneshot;

use super::status::ApiError;
use crate::ErrorCode;
use crate::actor::http_serve::HttpExchange;
use crate::host::Host;
use crate::message::DEFAULT_ASK_TIMEOUT;

/// Serves `request` through the actor whose route matches its path, if one
/// does; `None` otherwise.
pub(super) async fn serve(host: &Host, request: HttpRequest) -> Option<Response> {
    let actor = host.route(request.uri().path())?;
    Some(match exchange(host, actor.as_str(), request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    })
}

async fn exchange(host: &Host, actor: &str, request: HttpRequest) -> Result<Response, ApiError> {
    let limit = host.lookup(actor)?.limits().max_message_bytes as usize;
    let (mut parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::host(
            ErrorCode::TooLarge,
            format!("the request body exceeds `{actor}`'s limit of {limit} bytes (`max-message-bytes`)"),
        )
    })?;
    // A request without `Host` names none: the handler's request has an
    // authority all the same.
    parts.headers.entry(header::HOST).or_insert(HeaderValue::from_static("localhost"));
    let body = http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed_unsync();
    let (sender, mut head) = oneshot::channel();
    let exchange = HttpExchange { request: hyper::Request::from_parts(parts, body), response: sender };
    let handled = host.serve_http(actor, exchange, DEFAULT_ASK_TIMEOUT);
    tokio::pin!(handled);
    // The head may come before the handler returns (it then writes the
    // body): answer as soon as it is there.
    let response = tokio::select! {
        response = &mut head => match response {
            Ok(response) => Ok(response),
            // No response, and none to come: the handler failed (its
            // failure says how), or returned without one.
            Err(closed) => {
                (&mut handled).await?;
                Err(closed)
            }
        },
        handled = &mut handled => {
            handled?;
            head.await
        }
    };
    match response {
        Ok(Ok(response)) => Ok(response.map(|body| Body::new(http_body_util::Limited::new(body, limit)))),
        Ok(Err(code)) => Err(ApiError::host(ErrorCode::ActorFailed, format!("`{actor}` answered the error {code:?}"))),
        Err(_) => Err(ApiError::host(
            ErrorCode::ActorFailed,
            format!("`{actor}`'s handler returned without setting a response (`response-outparam.set`)"),
        )),
    }
}
