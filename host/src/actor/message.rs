//! Addresses, message envelopes, replies and the errors of tell and ask.
//!
//! These types are plain data, independent of where an actor runs: an
//! [`Address`] is a string and an envelope's arguments can be rendered to
//! WAVE text, so a later transport between hosts can carry them unchanged.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use wasmtime::component::Val;

use crate::actor::Failure;
use crate::error_code::{ErrorCode, HasErrorCode};
use crate::protocol::{Call, MessageError, Protocol};
use crate::trace::{self, TraceContext};

/// How long an ask waits for its reply unless told otherwise. Like
/// `gen_server:call`'s default.
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// An ask timeout that waits as long as it takes, like OTP's `infinity`
/// or kameo's ask without `reply_timeout`: no timer is armed. The ask
/// still ends if the receiver stops or fails on the message, and the
/// message itself runs within its CPU budget; only a receiver that never
/// gets to it (a mailbox of slow messages ahead) keeps the asker waiting.
pub const NO_TIMEOUT: Duration = Duration::MAX;

/// The address of an actor: unique on its host, stable across restarts.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(Arc<str>);

impl Address {
    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The sender address of the outside publisher `name`, whose tells are
    /// numbered (see [`ActorRef::send_numbered`](super::ActorRef::send_numbered)):
    /// `@name`, which no actor can have, so that a publisher's numbers and
    /// an actor's never mix.
    ///
    /// # Errors
    ///
    /// [`CallError::InvalidPublisher`] if `name` could not be an address.
    pub fn publisher(name: &str) -> Result<Address, CallError> {
        Address::validate(name)
            .map_err(|problem| CallError::InvalidPublisher { name: name.chars().take(40).collect(), problem })?;
        Ok(Address::from(format!("{PUBLISHER_PREFIX}{name}").as_str()))
    }

    /// Is this the sender address of an outside publisher?
    pub fn is_publisher(&self) -> bool {
        self.0.starts_with(PUBLISHER_PREFIX)
    }

    /// Checks that `name` can be an address: 1 to [`MAX_ADDRESS_LEN`]
    /// characters from `[A-Za-z0-9._/-]`, without an empty `/` segment.
    ///
    /// # Errors
    ///
    /// An [`AddressError`] saying what is wrong.
    pub fn validate(name: &str) -> Result<(), AddressError> {
        if name.is_empty() || name.len() > MAX_ADDRESS_LEN {
            return Err(AddressError::Length { name: truncated(name), len: name.len() });
        }
        if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))) {
            return Err(AddressError::Character { name: truncated(name), character: c });
        }
        if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
            return Err(AddressError::EmptySegment(truncated(name)));
        }
        Ok(())
    }
}

/// What begins a publisher's sender address: a character no actor's
/// address has.
const PUBLISHER_PREFIX: char = '@';

/// The longest address, in bytes.
pub const MAX_ADDRESS_LEN: usize = 128;

/// Why a name cannot be an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AddressError {
    /// Empty, or longer than [`MAX_ADDRESS_LEN`].
    #[error("an address has 1 to {MAX_ADDRESS_LEN} characters, `{name}` has {len}")]
    Length {
        /// The name (its first 40 characters).
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A character outside `[A-Za-z0-9._/-]`.
    #[error("`{name}` contains {character:?}; addresses use letters, digits, `.`, `_`, `-` and `/`")]
    Character {
        /// The name (its first 40 characters).
        name: String,
        /// The first character not allowed.
        character: char,
    },
    /// A `/` at either end, or two in a row.
    #[error("`{0}` has an empty path segment")]
    EmptySegment(String),
}

fn truncated(s: &str) -> String {
    s.chars().take(40).collect()
}

impl std::ops::Deref for Address {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Address {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Address {
    fn from(s: &str) -> Self {
        Address(Arc::from(s))
    }
}

impl From<String> for Address {
    fn from(s: String) -> Self {
        Address(Arc::from(s))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// The reply to an ask: the function's result (if it has one), or why
/// there is none.
pub type Reply = Result<Option<Val>, CallError>;

/// A message on its way to an actor.
///
/// Kept small (48 bytes): queued envelopes sit in the mailbox's buffer,
/// which grows to the longest queue an awake actor has seen.
#[derive(Debug)]
pub struct Envelope {
    /// The type-checked call.
    pub call: Call,
    /// The sending actor, if the sender is an actor.
    pub from: Option<Address>,
    /// What only some messages carry: an ask's reply half, the sender's
    /// trace context, when it was queued. Boxed, as a plain tell carries
    /// none of it.
    pub extra: Option<Box<Extra>>,
}

/// The parts of an envelope that only some messages have.
#[derive(Debug, Default)]
pub struct Extra {
    /// For an ask: where the reply goes.
    pub ask: Option<Ask>,
    /// The span that sent it, while tracing is on (see [`crate::trace`]).
    pub trace: Option<TraceContext>,
    /// When it was queued, if someone measures how long it waits: the
    /// trace of its handling, or the host's metrics (asks only, see
    /// [`crate::metrics`]).
    pub queued: Option<Instant>,
    /// For an HTTP request to an actor exporting
    /// `wasi:http/incoming-handler`: the request and where its response
    /// goes (see [`crate::actor::http_serve`]). Boxed: every ask carries
    /// this struct, and few are HTTP requests.
    pub http: Option<Box<crate::actor::http_serve::HttpExchange>>,
}

/// What a tell carries while tracing is on. Out of line: the tell path
/// without tracing stays as small as it was.
#[cold]
#[inline(never)]
fn traced_tell() -> Option<Box<Extra>> {
    Some(Box::new(Extra { ask: None, trace: trace::current(), queued: Some(Instant::now()), http: None }))
}

/// An envelope taken apart: the call, its sender, and for an ask the
/// reply channel and the ask chain.
pub type EnvelopeParts = (Call, Option<Address>, Option<oneshot::Sender<Reply>>, Option<Arc<[Address]>>);

/// The reply half of an ask.
#[derive(Debug)]
pub struct Ask {
    /// Where the reply goes.
    pub reply: oneshot::Sender<Reply>,
    /// The actors waiting, directly or transitively, for this message's
    /// reply: the ask chain used to refuse cycles (A asks B asks A).
    pub waiting: Option<Arc<[Address]>>,
}

impl Envelope {
    /// A tell: no reply. While tracing is on it carries the current span's
    /// context and the time it was queued.
    pub fn tell(call: Call, from: Option<Address>) -> Self {
        let extra = if trace::active() { traced_tell() } else { None };
        Envelope { call, from, extra }
    }

    /// An ask, its reply going to `ask`. It carries the current span's
    /// context while tracing is on, and the time it was queued if tracing
    /// is on or `timed` (the receiver's metrics time its messages).
    pub fn ask(call: Call, from: Option<Address>, ask: Ask, timed: bool) -> Self {
        let traced = trace::active();
        let extra = Extra {
            ask: Some(ask),
            trace: if traced { trace::current() } else { None },
            queued: (traced || timed).then(Instant::now),
            http: None,
        };
        Envelope { call, from, extra: Some(Box::new(extra)) }
    }

    /// Does its sender wait for a reply?
    pub fn is_ask(&self) -> bool {
        self.extra.as_ref().is_some_and(|e| e.ask.is_some())
    }

    /// The sender's trace context and when it was queued, as far as known.
    pub fn observed(&self) -> (Option<TraceContext>, Option<Instant>) {
        self.extra.as_ref().map_or((None, None), |e| (e.trace, e.queued))
    }

    /// Takes the HTTP request it carries, if it carries one.
    pub fn take_http(&mut self) -> Option<Box<crate::actor::http_serve::HttpExchange>> {
        self.extra.as_mut()?.http.take()
    }

    /// Splits off the reply channel and the ask chain (both `None` for a
    /// tell).
    pub fn into_parts(self) -> EnvelopeParts {
        match self.extra.and_then(|extra| extra.ask) {
            Some(Ask { reply, waiting }) => (self.call, self.from, Some(reply), waiting),
            None => (self.call, self.from, None, None),
        }
    }
}

impl Envelope {
    /// This envelope as plain data, ready to cross a host boundary.
    pub fn to_wire(&self, to: &Address, protocol: &Protocol) -> WireMessage {
        WireMessage {
            to: to.clone(),
            from: self.from.clone(),
            message: self.call.to_wave(protocol),
            ask: self.is_ask(),
            waiting: self
                .extra
                .as_ref()
                .and_then(|e| e.ask.as_ref())
                .and_then(|a| a.waiting.as_deref())
                .map(<[Address]>::to_vec)
                .unwrap_or_default(),
        }
    }
}

/// A message as plain, serializable data: what an envelope becomes when it
/// leaves its host (for a journal, or a transport between hosts). The
/// receiving side type-checks `message` again against the receiver's
/// protocol, so a peer cannot smuggle an ill-typed value in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireMessage {
    /// The receiver.
    pub to: Address,
    /// The sending actor, if any.
    pub from: Option<Address>,
    /// The call in WAVE, its function fully qualified.
    pub message: String,
    /// Whether the sender waits for a reply.
    pub ask: bool,
    /// The ask chain, for cycle detection across hosts.
    pub waiting: Vec<Address>,
}

/// Why a tell or an ask did not produce its effect. Serializable: a host
/// of a cluster returns it to a sender on another host as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CallError {
    /// No actor has this address.
    #[error("no actor at `{0}`; `troupe ps` lists the running actors")]
    UnknownAddress(Address),
    /// The address names a virtual component, and a key it cannot have.
    #[error("`{address}` is no key of the virtual component `{component}`: {problem}")]
    InvalidKey {
        /// The address.
        address: Address,
        /// The virtual component.
        component: String,
        /// What is wrong with the key.
        problem: String,
    },
    /// A numbered tell names its publisher with a name that could not be
    /// an address.
    #[error("`{name}` cannot name a publisher: {problem}")]
    InvalidPublisher {
        /// The name (its first 40 characters).
        name: String,
        /// What is wrong with it.
        problem: AddressError,
    },
    /// A numbered tell to an actor that keeps no record of the numbers it
    /// took: only a durable actor takes each once.
    #[error(
        "`{0}` is not durable, and only a durable actor takes a numbered tell once whatever happens; make it \
         durable (`durability = \"durable\"`), or send without `--publisher` and `--seq`"
    )]
    NotNumbered(Address),
    /// The receiver's mailbox is full. Nothing was queued.
    #[error("mailbox of `{0}` is full; retry later, or raise its `mailbox` limit")]
    MailboxFull(Address),
    /// The message does not fit the receiver's protocol.
    #[error(transparent)]
    BadMessage(#[from] MessageError),
    /// No reply within the timeout. The receiver may still handle it.
    #[error("no reply within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The receiver failed while handling this message.
    #[error("`{address}` failed handling the message: {failure}")]
    ActorFailed {
        /// The receiver.
        address: Address,
        /// What happened.
        failure: Failure,
    },
    /// The receiver stopped before handling the message.
    #[error("`{0}` stopped before handling the message")]
    Stopped(Address),
    /// The ask would deadlock: the receiver is waiting on the sender.
    #[error("ask cycle: {} would wait on itself", display_chain(.0))]
    Cycle(Vec<Address>),
    /// The receiver is durable and its store did not take the write the
    /// acknowledgement waits for: the tell or the reply is not
    /// acknowledged (it may still take effect, as after a timeout).
    #[error("`{address}` could not make it durable: {reason}")]
    NotDurable {
        /// The receiver.
        address: Address,
        /// What the store said.
        reason: String,
    },
    /// The host that has the receiver could not be reached, or did not
    /// answer before the connection failed: whether the message arrived is
    /// unknown (as after a timeout).
    #[error("`{address}` is on another host, which could not be reached: {reason}")]
    Unreachable {
        /// The receiver.
        address: Address,
        /// What the transport said.
        reason: String,
    },
    /// The reply is larger than the receiver's size limit.
    #[error("reply of {size} bytes exceeds the limit of {limit} bytes (`max-message-bytes`)")]
    ReplyTooLarge {
        /// Size of the reply.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

fn display_chain(chain: &[Address]) -> String {
    chain.iter().map(Address::as_str).collect::<Vec<_>>().join(" -> ")
}

impl HasErrorCode for CallError {
    fn code(&self) -> ErrorCode {
        match self {
            CallError::UnknownAddress(_) => ErrorCode::UnknownAddress,
            CallError::InvalidKey { .. } | CallError::InvalidPublisher { .. } | CallError::NotNumbered(_) => {
                ErrorCode::InvalidArgument
            }
            CallError::MailboxFull(_) => ErrorCode::MailboxFull,
            CallError::BadMessage(MessageError::TooLarge { .. }) | CallError::ReplyTooLarge { .. } => {
                ErrorCode::TooLarge
            }
            CallError::BadMessage(_) => ErrorCode::BadMessage,
            CallError::Timeout(_) => ErrorCode::Timeout,
            CallError::ActorFailed { .. } => ErrorCode::ActorFailed,
            CallError::Stopped(_) => ErrorCode::Stopped,
            CallError::Cycle(_) => ErrorCode::Cycle,
            CallError::NotDurable { .. } => ErrorCode::NotDurable,
            CallError::Unreachable { .. } => ErrorCode::Unreachable,
        }
    }
}

/// Why a message was turned into a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeadLetterReason {
    /// The receiver failed while handling it.
    Failed,
    /// The receiver stopped with the message still queued.
    Stopped,
    /// A timer fired into a full mailbox.
    MailboxFull,
    /// A timer fired after its actor was gone.
    UnknownAddress,
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeadLetterReason::Failed => "receiver failed handling it",
            DeadLetterReason::Stopped => "receiver stopped",
            DeadLetterReason::MailboxFull => "mailbox full",
            DeadLetterReason::UnknownAddress => "no such actor",
        })
    }
}

#[cfg(test)]
mod tests {
    /// A burst of messages grows the mailbox's buffer by this much each.
    #[test]
    fn an_envelope_takes_at_most_48_bytes() {
        let size = std::mem::size_of::<super::Envelope>();
        assert!(size <= 48, "Envelope is {size} bytes; box what only some messages carry");
    }
}
