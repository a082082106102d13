//! How an error travels over HTTP: its status, and its JSON body
//! `{"code": "...", "message": "..."}`.
//!
//! The `code` is the host's own ([`ErrorCode`], the strings the control
//! socket and `--json` use), or one of the gateway's for what only HTTP
//! has (authentication, routes, content types). The status follows from
//! the [`Problem`] alone, in [`Problem::status`]: one table, not a choice
//! per handler.
//!
//! | code | status |
//! |------|--------|
//! | `bad-message` (ill-typed, malformed, ambiguous), `bad-request`, `invalid-argument` (a virtual key it cannot have, a bad name or limit), `bad-binding` | 400 |
//! | `unauthenticated` (gateway) | 401, with `WWW-Authenticate: Bearer` |
//! | `forbidden` (gateway) | 403 |
//! | `unknown-address`, `bad-message` for an unknown function, `unknown-component`, `unknown-supervisor`, `no-route` (gateway) | 404 |
//! | `name-taken`, `incompatible`, `in-progress`, `cycle` | 409 |
//! | `too-large` (a message or reply over `max-message-bytes`, a body over the gateway's cap) | 413 |
//! | `unsupported-media-type` (gateway) | 415 |
//! | `load-failed` (the component file cannot be read or compiled) | 422 |
//! | `quota-exceeded` | 429 |
//! | `actor-failed` (with the failure, its `kind` among it), `spawn-failed`, `start-failed`, `snapshot-failed`, `probation-failed`, `rolled-back`, `internal` | 500 |
//! | `mailbox-full` | 503, with `Retry-After: 1` |
//! | `stopped`, `not-running`, `not-durable` | 503 |
//! | `timeout` | 504 |

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::Denied;
use crate::actor::Failure;
use crate::control::ErrorBody;
use crate::message::CallError;
use crate::protocol::MessageError;
use crate::{ErrorCode, HasErrorCode};

/// What went wrong, as far as the status depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// An error of the host, by its code.
    Host(ErrorCode),
    /// A message naming a function the actor does not have: the host's
    /// `bad-message`, but a missing resource to HTTP (404, not 400).
    UnknownFunction,
    /// No valid token (gateway code `unauthenticated`).
    Unauthenticated,
    /// A token of too narrow a scope (gateway code `forbidden`).
    Forbidden,
    /// No endpoint at this path (gateway code `no-route`).
    NoRoute,
    /// A body of a content type the endpoint does not take (gateway code
    /// `unsupported-media-type`).
    UnsupportedMediaType,
}

impl Problem {
    /// The `code` of the JSON body.
    pub fn code(self) -> &'static str {
        match self {
            Problem::Host(code) => code.as_str(),
            Problem::UnknownFunction => ErrorCode::BadMessage.as_str(),
            Problem::Unauthenticated => "unauthenticated",
            Problem::Forbidden => "forbidden",
            Problem::NoRoute => "no-route",
            Problem::UnsupportedMediaType => "unsupported-media-type",
        }
    }

    /// The HTTP status: the table of the module docs.
    pub fn status(self) -> StatusCode {
        match self {
            Problem::Host(code) => match code {
                ErrorCode::BadMessage | ErrorCode::BadRequest | ErrorCode::InvalidArgument | ErrorCode::BadBinding => {
                    StatusCode::BAD_REQUEST
                }
                ErrorCode::UnknownAddress | ErrorCode::UnknownComponent | ErrorCode::UnknownSupervisor => {
                    StatusCode::NOT_FOUND
                }
                ErrorCode::NameTaken | ErrorCode::Incompatible | ErrorCode::InProgress | ErrorCode::Cycle => {
                    StatusCode::CONFLICT
                }
                ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::LoadFailed => StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::ActorFailed
                | ErrorCode::SpawnFailed
                | ErrorCode::StartFailed
                | ErrorCode::SnapshotFailed
                | ErrorCode::ProbationFailed
                | ErrorCode::RolledBack
                | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::MailboxFull | ErrorCode::Stopped | ErrorCode::NotRunning | ErrorCode::NotDurable => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
                ErrorCode::Unreachable => StatusCode::BAD_GATEWAY,
            },
            Problem::UnknownFunction | Problem::NoRoute => StatusCode::NOT_FOUND,
            Problem::Unauthenticated => StatusCode::UNAUTHORIZED,
            Problem::Forbidden => StatusCode::FORBIDDEN,
            Problem::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }
}

/// An error answered over HTTP: its status (from its [`Problem`]), and its
/// JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// What went wrong.
    pub problem: Problem,
    /// A sentence naming the problem and the fix.
    pub message: String,
    /// For `actor-failed`: the failure (its `kind`, detail, backtrace).
    pub failure: Option<Failure>,
}

impl ApiError {
    /// An error of `problem` saying `message`.
    pub fn new(problem: Problem, message: impl Into<String>) -> ApiError {
        ApiError { problem, message: message.into(), failure: None }
    }

    /// A host error of `code` saying `message`.
    pub fn host(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::new(Problem::Host(code), message)
    }

    /// Any error that names its own code.
    pub fn of(error: &impl HasErrorCode) -> ApiError {
        ApiError::host(error.code(), error.to_string())
    }

    /// The error the control endpoint answered, by its code (an unknown
    /// code, which would be a bug, is `internal`).
    pub fn from_control(body: ErrorBody) -> ApiError {
        let code = ErrorCode::ALL.iter().copied().find(|c| c.as_str() == body.code).unwrap_or(ErrorCode::Internal);
        ApiError::host(code, body.message)
    }
}

impl From<CallError> for ApiError {
    fn from(error: CallError) -> ApiError {
        let problem = match &error {
            CallError::BadMessage(MessageError::UnknownFunction { .. }) => Problem::UnknownFunction,
            other => Problem::Host(other.code()),
        };
        let failure = match &error {
            CallError::ActorFailed { failure, .. } => Some(failure.clone()),
            _ => None,
        };
        ApiError { problem, message: error.to_string(), failure }
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> ApiError {
        let problem = match denied {
            Denied::Unauthenticated(_) => Problem::Unauthenticated,
            Denied::Forbidden { .. } => Problem::Forbidden,
        };
        ApiError::new(problem, denied.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.problem.code(), "message": self.message });
        if let Some(failure) = &self.failure {
            body["failure"] = json!(failure);
        }
        let mut response = (self.problem.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        match self.problem {
            Problem::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // The mailbox drains as the actor works: a retry soon may fit.
            Problem::Host(ErrorCode::MailboxFull) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::{ApiError, Problem};
    use crate::ErrorCode;
    use crate::message::CallError;
    use crate::protocol::MessageError;

    #[test]
    fn every_host_code_has_a_status_and_calls_map_as_the_table_says() {
        let status = |code| Problem::Host(code).status();
        for code in ErrorCode::ALL {
            assert!(status(*code).is_client_error() || status(*code).is_server_error(), "{code:?}");
        }
        assert_eq!(status(ErrorCode::BadMessage), StatusCode::BAD_REQUEST);
        assert_eq!(status(ErrorCode::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(status(ErrorCode::UnknownAddress), StatusCode::NOT_FOUND);
        assert_eq!(status(ErrorCode::MailboxFull), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status(ErrorCode::Timeout), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(status(ErrorCode::TooLarge), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(status(ErrorCode::ActorFailed), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn an_unknown_function_is_not_found_but_keeps_the_hosts_code() {
        let unknown = CallError::BadMessage(MessageError::UnknownFunction { name: "nope".into(), accepted: "".into() });
        let e = ApiError::from(unknown);
        assert_eq!((e.problem.status(), e.problem.code()), (StatusCode::NOT_FOUND, "bad-message"));
        let ill =
            CallError::BadMessage(MessageError::IllTyped { signature: "incr(by: u64)".into(), reason: "".into() });
        assert_eq!(ApiError::from(ill).problem.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_gateways_own_problems_have_their_statuses() {
        assert_eq!(Problem::Unauthenticated.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(Problem::Forbidden.status(), StatusCode::FORBIDDEN);
        assert_eq!(Problem::NoRoute.status(), StatusCode::NOT_FOUND);
        assert_eq!(Problem::UnsupportedMediaType.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
