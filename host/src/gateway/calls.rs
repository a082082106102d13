//! Calling actors over HTTP: `POST /v1/actors/{address}/call/{function}`
//! (an ask: the reply comes back) and `POST
//! /v1/actors/{address}/send/{function}` (a tell: `202 Accepted` once
//! queued, or, for a durable actor, once committed).
//!
//! # The path
//!
//! Addresses contain `/` (`room/ada`, `user/42`), so the path after
//! `/v1/actors/` is split at its *last* `/call/` or `/send/`: what comes
//! before is the address, what follows the function, plain (`incr`) or
//! qualified (`example:counter/api@0.1.0.incr`). An address whose last
//! segment is `call` or `send` followed by more segments cannot be
//! called; no such address is useful.
//!
//! # The body
//!
//! By `Content-Type`:
//!
//! * `application/json`, or none: the arguments as JSON, an object keyed
//!   by parameter name (`{"by": 5}`) or an array in order (`[5]`); an empty
//!   body is no arguments. The mapping of WIT values is
//!   [`crate::protocol::json`]'s.
//! * `text/x-wave` or `text/plain`: the argument list in WAVE, in its
//!   parentheses, exactly what follows the function name in `troupe call
//!   ADDRESS 'incr(5)'`: `(5)`, `("ada", [1, 2])`, `()` (an empty body is
//!   `()` too). The parentheses are required: `5` alone is refused, since
//!   without them a single tuple argument `(1, 2)` and two arguments could
//!   not be told apart.
//!
//! Either way the message is type-checked against the actor's protocol
//! before it is queued, and measured against its `max-message-bytes` (the
//! JSON in its compact form).
//!
//! # The reply
//!
//! Of a call, in the request's format: JSON `{"result": VALUE}` (`null`
//! for a function without result), or with a WAVE body the reply's WAVE
//! text alone, `text/x-wave` (empty for no result). A send answers `202`
//! with `{"address": ..., "queued": true}`. A call waits for at most
//! `?timeout_ms=N` milliseconds, by default [`DEFAULT_ASK_TIMEOUT`].
//!
//! A key of a virtual component (`user/42`) is activated by its first
//! message, as from the command line.
//!
//! # Numbered sends
//!
//! A send with the headers `Troupe-Publisher: NAME` and `Troupe-Seq: N`
//! is a numbered tell (`troupe send --publisher NAME --seq N`): a client
//! that did not get its `202` sends it again with the same headers, and a
//! durable actor takes it once (see `ActorRef::send_numbered`). The two
//! go together; an actor that is not durable refuses it (`400`).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::status::{ApiError, Problem};
use crate::host::Host;
use crate::message::{Address, CallError, DEFAULT_ASK_TIMEOUT};
use crate::protocol::{Call, reply_to_json};
use crate::{ActorRef, ErrorCode};

/// The header naming the publisher of a numbered send.
pub const PUBLISHER_HEADER: &str = "troupe-publisher";

/// The header carrying a numbered send's place in its publisher's sequence.
pub const SEQ_HEADER: &str = "troupe-seq";

/// The content type of WAVE text, in bodies and replies.
pub const WAVE_CONTENT_TYPE: &str = "text/x-wave";

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Ask: wait for the reply (`/call/`).
    Ask,
    /// Tell: queue and answer at once (`/send/`).
    Tell,
}

/// A message's target, read from the path after `/v1/actors/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// The receiver's address.
    pub address: &'a str,
    /// Ask or tell.
    pub delivery: Delivery,
    /// The function, as written.
    pub function: &'a str,
}

impl<'a> Target<'a> {
    /// Splits `path` (`room/ada/call/post`) at its last `/call/` or
    /// `/send/`; `None` if it has neither with something on both sides.
    pub fn split(path: &'a str) -> Option<Target<'a>> {
        let call = path.rfind("/call/").map(|at| (at, Delivery::Ask));
        let send = path.rfind("/send/").map(|at| (at, Delivery::Tell));
        let (at, delivery) = call.into_iter().chain(send).max_by_key(|(at, _)| *at)?;
        let (address, function) = (&path[..at], &path[at + "/call/".len()..]);
        (!address.is_empty() && !function.is_empty()).then_some(Target { address, delivery, function })
    }
}

/// The two forms a body and a reply take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Wave,
}

impl Format {
    /// The format `Content-Type` names.
    fn of(headers: &HeaderMap) -> Result<Format, ApiError> {
        let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(Format::Json) };
        let essence = value.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim();
        match essence.to_ascii_lowercase().as_str() {
            "application/json" => Ok(Format::Json),
            WAVE_CONTENT_TYPE | "text/plain" => Ok(Format::Wave),
            other => Err(ApiError::new(
                Problem::UnsupportedMediaType,
                format!(
                    "a message body of type `{other}` cannot be read; send the arguments as JSON \
                     (`application/json`) or WAVE (`{WAVE_CONTENT_TYPE}`)"
                ),
            )),
        }
    }
}

/// Delivers the message that `body` (per `headers`) carries to `target`
/// and answers as the module docs say.
///
/// # Errors
///
/// [`ApiError`]: the host's [`CallError`] (unknown address or function,
/// ill-typed, too large, full mailbox, timeout, the actor failing), a body
/// that is neither JSON nor WAVE, or a reply with no JSON form.
pub async fn deliver(
    host: &Host,
    target: Target<'_>,
    timeout: Option<Duration>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let format = Format::of(headers)?;
    let actor = host.lookup(target.address)?;
    let call = match format {
        Format::Json => json_call(&actor, target.function, body)?,
        Format::Wave => wave_call(&actor, target.function, body)?,
    };
    match target.delivery {
        Delivery::Tell => {
            match numbered(headers)? {
                Some((publisher, seq)) => actor.send_numbered(call, publisher, seq).await?,
                None => actor.send(call, None).await?,
            }
            let queued = json!({ "address": target.address, "queued": true });
            Ok((StatusCode::ACCEPTED, Json(queued)).into_response())
        }
        Delivery::Ask => {
            let reply = actor.ask(call, None, None, timeout.unwrap_or(DEFAULT_ASK_TIMEOUT)).await?;
            match format {
                Format::Json => {
                    let result = reply_to_json(reply.as_slice()).map_err(|e| {
                        ApiError::host(ErrorCode::BadMessage, format!("the reply has no JSON form: {e}"))
                    })?;
                    Ok(Json(json!({ "result": result })).into_response())
                }
                Format::Wave => {
                    let text = match reply {
                        Some(value) => value.to_wave().map_err(|e| {
                            ApiError::host(ErrorCode::Internal, format!("cannot render the reply: {e}"))
                        })?,
                        None => String::new(),
                    };
                    let wave = HeaderValue::from_static("text/x-wave; charset=utf-8");
                    Ok(([(header::CONTENT_TYPE, wave)], text).into_response())
                }
            }
        }
    }
}

/// The publisher and number `headers` give a send, if they give one.
fn numbered(headers: &HeaderMap) -> Result<Option<(Address, u64)>, ApiError> {
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let invalid = |message: String| ApiError::host(ErrorCode::InvalidArgument, message);
    match (text(PUBLISHER_HEADER), text(SEQ_HEADER)) {
        (None, None) => Ok(None),
        (Some(publisher), Some(seq)) => {
            let seq = seq.trim().parse().map_err(|_| {
                invalid(format!("`{SEQ_HEADER}: {seq}` is not a number; a numbered send counts 0, 1, 2, ..."))
            })?;
            let publisher = Address::publisher(publisher.trim()).map_err(ApiError::from)?;
            Ok(Some((publisher, seq)))
        }
        _ => Err(invalid(format!(
            "a numbered send takes both `{PUBLISHER_HEADER}` and `{SEQ_HEADER}`; send both, or neither"
        ))),
    }
}

/// The call that a JSON body makes of `function`, checked against the
/// actor's current code.
fn json_call(actor: &ActorRef, function: &str, body: &Bytes) -> Result<Call, ApiError> {
    let args: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Array(Vec::new())
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::host(
                ErrorCode::BadRequest,
                format!(
                    "the body is not JSON ({e}); send the arguments as a JSON object by parameter name or an array \
                     in order, or as WAVE with `Content-Type: {WAVE_CONTENT_TYPE}`"
                ),
            )
        })?
    };
    let limit = actor.limits().max_message_bytes;
    let call = actor.with_code(|component, generation| {
        let mut call = component.protocol().call_from_json(function, &args, limit)?;
        call.generation = generation;
        Ok::<_, crate::protocol::MessageError>(call)
    });
    call.map_err(|e| ApiError::from(CallError::from(e)))
}

/// The call that a WAVE argument list makes of `function`.
fn wave_call(actor: &ActorRef, function: &str, body: &Bytes) -> Result<Call, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::host(ErrorCode::BadRequest, "a WAVE body must be UTF-8 text"))?
        .trim();
    let args = if text.is_empty() { "()" } else { text };
    if !args.starts_with('(') {
        return Err(ApiError::host(
            ErrorCode::BadMessage,
            format!(
                "a WAVE body is the argument list in its parentheses, as after the function's name: \
                 write `({args})`, not `{args}`"
            ),
        ));
    }
    actor.parse(&format!("{function}{args}")).map_err(|e| ApiError::from(CallError::from(e)))
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, header};

    use super::{Delivery, Format, Target};

    #[test]
    fn a_path_splits_at_its_last_call_or_send() {
        let t = Target::split("room/ada/call/post").unwrap();
        assert_eq!((t.address, t.delivery, t.function), ("room/ada", Delivery::Ask, "post"));
        let t = Target::split("c/send/example:counter/api@0.1.0.incr").unwrap();
        assert_eq!((t.address, t.delivery, t.function), ("c", Delivery::Tell, "example:counter/api@0.1.0.incr"));
        let t = Target::split("a/call/b/send/f").unwrap();
        assert_eq!((t.address, t.delivery, t.function), ("a/call/b", Delivery::Tell, "f"));
        assert_eq!(Target::split("counter/call/"), None);
        assert_eq!(Target::split("/call/incr"), None);
        assert_eq!(Target::split("counter/swap"), None);
    }

    #[test]
    fn the_content_type_picks_json_or_wave_and_refuses_others() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            Format::of(&headers)
        };
        assert_eq!(Format::of(&HeaderMap::new()), Ok(Format::Json));
        assert_eq!(with("application/json; charset=utf-8"), Ok(Format::Json));
        assert_eq!(with("text/x-wave"), Ok(Format::Wave));
        assert_eq!(with("Text/Plain; charset=utf-8"), Ok(Format::Wave));
        let refused = with("application/x-www-form-urlencoded").unwrap_err();
        assert_eq!(refused.problem.code(), "unsupported-media-type");
    }
}
