//! HTTP requests served by actors: an actor whose component exports
//! `wasi:http/incoming-handler` (the `wasi:http/proxy` world) takes a
//! request as a message to its `handle` export.
//!
//! The request travels in an ask's envelope ([`HttpExchange`], boxed with
//! the ask's other parts), so it is queued in the actor's mailbox like any
//! message: a full mailbox refuses it, the actor handles it alone, under
//! its deadline, fuel and memory limits, and a trap fails the message (the
//! caller sees the failure) and restarts the actor as its supervisor says.
//! The incarnation turns the request into `wasi:http` resources in its own
//! store (`handle_http`); the guest's
//! `response-outparam.set` sends the response head, and the body streams
//! while (and after) the handler runs.

use std::fmt;

use tokio::sync::oneshot;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p2::body::{HyperIncomingBody, HyperOutgoingBody};

use crate::protocol::Protocol;

/// The interface an HTTP actor's component exports, without version.
pub const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";

/// What a handler's `response-outparam.set` sends: the response, or the
/// `wasi:http` error it answered with.
pub type ResponseResult = Result<hyper::Response<HyperOutgoingBody>, ErrorCode>;

/// One request to an HTTP actor, and where its response goes.
pub struct HttpExchange {
    /// The request; the caller bounds its body.
    pub request: hyper::Request<HyperIncomingBody>,
    /// Where the handler's response goes.
    pub response: oneshot::Sender<ResponseResult>,
}

impl fmt::Debug for HttpExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpExchange")
            .field("method", self.request.method())
            .field("uri", self.request.uri())
            .finish_non_exhaustive()
    }
}

/// The index of the `handle` function of `wasi:http/incoming-handler` in
/// `protocol`, if the component exports it.
pub fn handler_index(protocol: &Protocol) -> Option<u32> {
    protocol.functions().iter().position(is_handler).map(|i| i as u32)
}

fn is_handler(f: &crate::protocol::Function) -> bool {
    f.name == "handle" && f.interface.as_deref().is_some_and(|i| i.split('@').next() == Some(INCOMING_HANDLER))
}
