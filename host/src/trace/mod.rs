//! Traces: one span per message, and the W3C trace context that links a
//! message's span to the span that sent it.
//!
//! # The spans
//!
//! Each message an actor handles is one span, `actor.handle` (target
//! [`TARGET`]), with the fields
//!
//! | field | what |
//! |-------|------|
//! | `actor` | the receiver's address |
//! | `component` | the receiver's component |
//! | `function` | the function called |
//! | `mailbox_wait_us` | how long the message waited in the mailbox, in microseconds |
//! | `outcome` | `ok`, or `failed` (the actor failed handling it) |
//!
//! An ask's span is a *child* of the span that asked (another actor's
//! `actor.handle`, or a gateway request's `http.request`): one trace
//! follows an ask chain A → B → C. A tell's span starts a trace of its
//! own and *links* to the sender's span: the sender did not wait for it.
//! A gateway request continues the `traceparent` header it came with.
//!
//! # The context
//!
//! [`TraceContext`] is what travels with a message: the W3C `traceparent`
//! of its sender's span (trace id, span id, flags), 25 bytes, carried in
//! the envelope's boxed part (see [`crate::message::Envelope`]).
//!
//! # Cost
//!
//! Tracing is off until [`enable`] is called (`troupe run --otlp` does,
//! once it has installed an exporter): until then no envelope carries a
//! context, no `actor.handle` span is made, and the message path pays one
//! relaxed load of a flag per message. Without the `otlp` feature spans
//! carry no OpenTelemetry context: [`enable`] still makes the spans (for
//! a subscriber of the embedder's), but none is linked to its sender.

#[cfg(feature = "otlp")]
pub mod export;
#[cfg(feature = "otlp")]
mod otel;
#[cfg(not(feature = "otlp"))]
#[path = "disabled.rs"]
mod otel;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) use otel::{current, follow};

/// The target of troupe's trace spans (`actor.handle`, `http.request`):
/// an exporter's layer filters on it, and a log filter can leave it out.
pub const TARGET: &str = "troupe::trace";

static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Turns tracing on for the whole process: from now on messages carry
/// their sender's [`TraceContext`] and each is handled in an
/// `actor.handle` span. Call it once a subscriber that wants the spans
/// (an OpenTelemetry layer) is installed, as `troupe run --otlp` does
/// after installing its exporter's layer.
pub fn enable() {
    ACTIVE.store(true, Ordering::Relaxed);
}

/// Is tracing on (see [`enable`])? One relaxed load: the message path asks
/// before doing anything else for traces.
#[inline]
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// A span's place in a trace, as a W3C `traceparent` header carries it:
/// the trace, the span, and its flags (bit 0: sampled).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The trace, 16 bytes, not all zero.
    pub trace_id: [u8; 16],
    /// The span within it, 8 bytes, not all zero.
    pub span_id: [u8; 8],
    /// The trace flags; bit 0 is `sampled`.
    pub flags: u8,
}

impl TraceContext {
    /// Reads a `traceparent` header (`00-TRACEID-SPANID-FLAGS`, lowercase
    /// hexadecimal). `None` for anything else, all-zero ids included: as
    /// the W3C recommendation says, a receiver that cannot read the header
    /// starts a new trace rather than failing the request. A version
    /// other than `00` is read by its first four fields, as the
    /// recommendation asks of future versions.
    pub fn from_traceparent(header: &str) -> Option<TraceContext> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let trace_id: [u8; 16] = hex_lower(trace)?.try_into().ok()?;
        let span_id: [u8; 8] = hex_lower(span)?.try_into().ok()?;
        let [flags] = <[u8; 1]>::try_from(hex_lower(flags)?).ok()?;
        let nonzero = |bytes: &[u8]| bytes.iter().any(|b| *b != 0);
        (nonzero(&trace_id) && nonzero(&span_id)).then_some(TraceContext { trace_id, span_id, flags })
    }

    /// The `traceparent` header of this context.
    pub fn to_traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", hex::encode(self.trace_id), hex::encode(self.span_id), self.flags)
    }

    /// Whether the sender's span is sampled (recorded).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// `text` as bytes, if it is lowercase hexadecimal (the W3C format
/// allows no uppercase).
fn hex_lower(text: &str) -> Option<Vec<u8>> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(text).ok()
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_traceparent())
    }
}

/// How a message's span follows the span that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follows {
    /// The sender waits for it (an ask, a gateway request): a child.
    ChildOf,
    /// The sender goes on (a tell): a new trace, linked to the sender's.
    LinkedTo,
}

#[cfg(test)]
mod tests {
    use super::TraceContext;

    #[test]
    fn a_traceparent_round_trips() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = TraceContext::from_traceparent(header).unwrap();
        assert_eq!(cx.trace_id[0], 0x4b);
        assert_eq!(cx.span_id[7], 0xb7);
        assert!(cx.sampled());
        assert_eq!(cx.to_traceparent(), header);
    }

    #[test]
    fn a_malformed_or_zero_traceparent_is_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::from_traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_four_fields() {
        let header = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more";
        let cx = TraceContext::from_traceparent(header).unwrap();
        assert!(!cx.sampled());
    }

    #[test]
    fn a_context_in_an_option_takes_26_bytes() {
        assert_eq!(std::mem::size_of::<Option<TraceContext>>(), 26);
    }
}
