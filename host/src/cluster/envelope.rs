//! What a message between hosts looks like: a NATS request whose headers
//! carry the envelope (versioned) and whose payload is the arguments in
//! the compact encoding of [`crate::protocol::wire`]; and the reply.
//!
//! Request headers:
//!
//! | header | value |
//! |---|---|
//! | `Troupe-Envelope` | the envelope version, [`VERSION`] |
//! | `Troupe-Kind` | `tell`, `ask`, `describe`, `watch` or `unwatch` |
//! | `Troupe-To` | the receiver's address |
//! | `Troupe-From` | the sending actor's address, if an actor sent it |
//! | `Troupe-Code` | the hash of the receiver's code the arguments were encoded for (`tell`, `ask`) |
//! | `Troupe-Function` | the function, fully qualified (`tell`, `ask`) |
//! | `Troupe-Timeout-Ms` | an ask's timeout |
//! | `Troupe-Waiting` | an ask's chain of waiting actors, as a JSON array |
//! | `traceparent` | the sender's span (W3C trace context), when tracing is on |
//!
//! A `watch` or `unwatch` request's payload says who watches, as JSON
//! (see `watches.rs`); its reply's payload is JSON too.
//!
//! The reply has `Troupe-Envelope` and `Troupe-Status`: `ok` (the payload
//! is the result, encoded, or empty for a function without one), `error`
//! (the payload is the [`CallError`] as JSON), `stale` or `described`
//! (`Troupe-Code` and `Troupe-Component` name the receiver's code: a
//! `stale` sender encoded for other code, describes again and retries).

use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;

use crate::actor::durable::Origin;
use crate::message::{Address, CallError};

/// The envelope version this host writes and reads.
pub const VERSION: &str = "1";

const ENVELOPE: &str = "Troupe-Envelope";
const KIND: &str = "Troupe-Kind";
const TO: &str = "Troupe-To";
const FROM: &str = "Troupe-From";
const CODE: &str = "Troupe-Code";
const COMPONENT: &str = "Troupe-Component";
const FUNCTION: &str = "Troupe-Function";
const TIMEOUT: &str = "Troupe-Timeout-Ms";
const WAITING: &str = "Troupe-Waiting";
const ORIGIN: &str = "Troupe-Origin";
const STATUS: &str = "Troupe-Status";

/// The W3C trace context of the sender's span, when tracing is on (see
/// [`crate::trace`]): the receiving host's span continues it.
pub const TRACEPARENT: &str = "traceparent";

/// What a request asks of the receiving host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Queue the message; reply once it is queued (committed, if durable).
    Tell,
    /// Queue the message; reply with the actor's reply.
    Ask,
    /// Reply with the code the actor runs (hash and component name).
    Describe,
    /// Tell the watcher the payload names when the actor goes down.
    Watch,
    /// End the watch the payload names.
    Unwatch,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Tell => "tell",
            Kind::Ask => "ask",
            Kind::Describe => "describe",
            Kind::Watch => "watch",
            Kind::Unwatch => "unwatch",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        [Kind::Tell, Kind::Ask, Kind::Describe, Kind::Watch, Kind::Unwatch].into_iter().find(|k| k.as_str() == text)
    }

    /// Does it carry a message (a function and its arguments)?
    fn carries_message(self) -> bool {
        matches!(self, Kind::Tell | Kind::Ask)
    }
}

/// A request's envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// What it asks.
    pub kind: Kind,
    /// The receiver.
    pub to: Address,
    /// The sending actor.
    pub from: Option<Address>,
    /// The receiver's code (hash, hex) the arguments were encoded for.
    pub code: String,
    /// The function, fully qualified.
    pub function: String,
    /// An ask's timeout.
    pub timeout: Option<Duration>,
    /// An ask's chain of waiting actors.
    pub waiting: Vec<Address>,
    /// A durable sender's tell: its place among the sender's tells
    /// (`seq.index`), by which a durable receiver drops a redelivery.
    pub origin: Option<Origin>,
}

impl Request {
    /// A request to describe `to`.
    pub fn describe(to: &str) -> Self {
        Self::about(Kind::Describe, to, None)
    }

    /// A request of `kind` about `to` that carries no message, from `from`.
    pub fn about(kind: Kind, to: &str, from: Option<&Address>) -> Self {
        Request {
            kind,
            to: to.into(),
            from: from.cloned(),
            code: String::new(),
            function: String::new(),
            timeout: None,
            waiting: Vec::new(),
            origin: None,
        }
    }

    /// The envelope as NATS headers.
    pub fn to_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ENVELOPE, VERSION);
        h.insert(KIND, self.kind.as_str());
        h.insert(TO, self.to.as_str());
        if let Some(from) = &self.from {
            h.insert(FROM, from.as_str());
        }
        if self.kind.carries_message() {
            h.insert(CODE, self.code.as_str());
            h.insert(FUNCTION, self.function.as_str());
        }
        if let Some(timeout) = self.timeout {
            h.insert(TIMEOUT, (timeout.as_millis() as u64).to_string().as_str());
        }
        if !self.waiting.is_empty() {
            let chain: Vec<&str> = self.waiting.iter().map(Address::as_str).collect();
            h.insert(WAITING, serde_json::to_string(&chain).unwrap_or_default().as_str());
        }
        if let Some(origin) = self.origin {
            h.insert(ORIGIN, format!("{}.{}", origin.seq, origin.index).as_str());
        }
        h
    }

    /// The envelope in `headers`.
    ///
    /// # Errors
    ///
    /// A sentence naming the missing or malformed header, or the
    /// unsupported version.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Result<Request, String> {
        let h = headers.ok_or("a request without an envelope (no headers)")?;
        let get = |name: &str| h.get(name).map(|v| v.as_str());
        let need = |name: &str| get(name).ok_or_else(|| format!("the envelope lacks `{name}`"));
        match get(ENVELOPE) {
            Some(VERSION) => {}
            Some(other) => return Err(format!("envelope version {other}; this host reads version {VERSION}")),
            None => return Err(format!("the envelope lacks `{ENVELOPE}`")),
        }
        let kind = Kind::parse(need(KIND)?).ok_or("an unknown request kind")?;
        let timeout = match get(TIMEOUT) {
            Some(ms) => Some(Duration::from_millis(ms.parse().map_err(|_| format!("`{TIMEOUT}` is {ms}"))?)),
            None => None,
        };
        let waiting = match get(WAITING) {
            Some(json) => serde_json::from_str::<Vec<String>>(json)
                .map_err(|e| format!("`{WAITING}`: {e}"))?
                .into_iter()
                .map(Address::from)
                .collect(),
            None => Vec::new(),
        };
        let (code, function) = if kind.carries_message() {
            (need(CODE)?.to_string(), need(FUNCTION)?.to_string())
        } else {
            (String::new(), String::new())
        };
        let origin = match get(ORIGIN) {
            Some(text) => {
                let parsed = text
                    .split_once('.')
                    .and_then(|(seq, index)| Some(Origin { seq: seq.parse().ok()?, index: index.parse().ok()? }));
                Some(parsed.ok_or_else(|| format!("`{ORIGIN}` is {text}"))?)
            }
            None => None,
        };
        let from = get(FROM).map(Address::from);
        Ok(Request { kind, to: need(TO)?.into(), from, code, function, timeout, waiting, origin })
    }
}

/// A reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Done: the encoded result (empty for none).
    Ok(Bytes),
    /// Refused or failed, as a local call would have been.
    Error(CallError),
    /// The arguments were encoded for other code than the actor runs.
    Stale {
        /// The code's hash (hex).
        code: String,
        /// The component's name.
        component: String,
    },
    /// The code the actor runs.
    Described {
        /// The code's hash (hex).
        code: String,
        /// The component's name.
        component: String,
    },
}

impl Reply {
    /// The reply as headers and payload.
    pub fn encode(&self) -> (HeaderMap, Bytes) {
        let mut h = HeaderMap::new();
        h.insert(ENVELOPE, VERSION);
        let (status, payload) = match self {
            Reply::Ok(bytes) => ("ok", bytes.clone()),
            Reply::Error(e) => ("error", Bytes::from(serde_json::to_vec(e).unwrap_or_default())),
            Reply::Stale { code, component } | Reply::Described { code, component } => {
                h.insert(CODE, code.as_str());
                h.insert(COMPONENT, component.as_str());
                (if matches!(self, Reply::Stale { .. }) { "stale" } else { "described" }, Bytes::new())
            }
        };
        h.insert(STATUS, status);
        (h, payload)
    }

    /// The reply in a NATS message's headers and payload.
    ///
    /// # Errors
    ///
    /// A sentence saying what is malformed.
    pub fn decode(headers: Option<&HeaderMap>, payload: Bytes) -> Result<Reply, String> {
        let h = headers.ok_or("a reply without an envelope (no headers)")?;
        let get = |name: &str| h.get(name).map(|v| v.as_str().to_string());
        if get(ENVELOPE).as_deref() != Some(VERSION) {
            return Err(format!("a reply in envelope version {:?}; this host reads version {VERSION}", get(ENVELOPE)));
        }
        let code_and_component = || match (get(CODE), get(COMPONENT)) {
            (Some(code), Some(component)) => Ok((code, component)),
            _ => Err(format!("the reply lacks `{CODE}` or `{COMPONENT}`")),
        };
        match get(STATUS).as_deref() {
            Some("ok") => Ok(Reply::Ok(payload)),
            Some("error") => serde_json::from_slice(&payload)
                .map(Reply::Error)
                .map_err(|e| format!("an error reply that does not parse: {e}")),
            Some("stale") => code_and_component().map(|(code, component)| Reply::Stale { code, component }),
            Some("described") => code_and_component().map(|(code, component)| Reply::Described { code, component }),
            other => Err(format!("a reply with status {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_envelope_reads_back_as_written() {
        let ask = Request {
            kind: Kind::Ask,
            to: "user/4.2".into(),
            from: Some("a".into()),
            code: "ab12".into(),
            function: "acme:counter/api@0.1.0.incr".into(),
            timeout: Some(Duration::from_millis(1500)),
            waiting: vec!["a".into(), "b/c".into()],
            origin: None,
        };
        assert_eq!(Request::from_headers(Some(&ask.to_headers())), Ok(ask));
        let describe = Request::describe("counter");
        assert_eq!(Request::from_headers(Some(&describe.to_headers())), Ok(describe));
        let watch = Request::about(Kind::Watch, "counter", Some(&"w".into()));
        assert_eq!(Request::from_headers(Some(&watch.to_headers())), Ok(watch));
    }

    #[test]
    fn an_envelope_of_another_version_is_refused_by_name() {
        let mut h = Request::describe("x").to_headers();
        h.insert(ENVELOPE, "2");
        assert_eq!(Request::from_headers(Some(&h)), Err("envelope version 2; this host reads version 1".into()));
        assert!(Request::from_headers(None).is_err());
    }

    #[test]
    fn replies_read_back_as_written() {
        for reply in [
            Reply::Ok(Bytes::from_static(&[1, 2])),
            Reply::Ok(Bytes::new()),
            Reply::Error(CallError::MailboxFull("a".into())),
            Reply::Error(CallError::Cycle(vec!["a".into(), "b".into(), "a".into()])),
            Reply::Error(CallError::Timeout(Duration::from_millis(20))),
            Reply::Stale { code: "c".into(), component: "counter".into() },
            Reply::Described { code: "c".into(), component: "counter".into() },
        ] {
            let (headers, payload) = reply.encode();
            assert_eq!(Reply::decode(Some(&headers), payload), Ok(reply));
        }
    }
}
