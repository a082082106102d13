//! Why a component cannot be an actor, and why a message is refused
//! before it is queued.

use super::TROUPE_API_VERSION;

/// Why a component cannot be an actor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// It exports no interface and no function.
    #[error(
        "the component exports no interface: an actor's message protocol is the WIT interface \
         it exports (add `export my-protocol;` to its world)"
    )]
    NoExports,
    /// It was built against another version of the troupe API.
    #[error(
        "the component exports `{found}`, but this host provides troupe:actor@{TROUPE_API_VERSION}: \
         rebuild it against the WIT in this host's `wit/` directory"
    )]
    ApiVersion {
        /// The export as found.
        found: String,
    },
    /// A troupe lifecycle function has the wrong type.
    #[error("`{name}` has type `{found}`, but troupe:actor@{TROUPE_API_VERSION} declares `{expected}`")]
    LifecycleType {
        /// The function.
        name: String,
        /// What the component has.
        found: String,
        /// What troupe expects.
        expected: &'static str,
    },
}

/// Why a message was refused before it was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum MessageError {
    /// Not a WAVE call at all.
    #[error("malformed message `{text}`: {reason}; write it as WAVE, e.g. `incr(5)` or `greet(\"ada\")`")]
    Syntax {
        /// The message (truncated).
        text: String,
        /// The parser's explanation.
        reason: String,
    },
    /// No function of that name.
    #[error("unknown function `{name}`; the actor accepts: {accepted}")]
    UnknownFunction {
        /// The name as written.
        name: String,
        /// The protocol's signatures, comma-separated.
        accepted: String,
    },
    /// Several exported interfaces have a function of that name.
    #[error("`{name}` is ambiguous; qualify it as one of: {candidates}")]
    Ambiguous {
        /// The name as written.
        name: String,
        /// The qualified candidates.
        candidates: String,
    },
    /// The arguments do not fit the signature.
    #[error("ill-typed message for `{signature}`: {reason}")]
    IllTyped {
        /// The expected signature.
        signature: String,
        /// What does not fit.
        reason: String,
    },
    /// The function cannot be called as a message.
    #[error("`{signature}` cannot be called as a message: {reason}")]
    Unsupported {
        /// The function's signature.
        signature: String,
        /// Why.
        reason: String,
    },
    /// Larger than the receiver accepts.
    #[error("message of {size} bytes exceeds the receiver's limit of {limit} bytes (`max-message-bytes`)")]
    TooLarge {
        /// The message size.
        size: u64,
        /// The receiver's limit.
        limit: u64,
    },
}
