//! The trace context of `tracing` spans, through their OpenTelemetry
//! layer (`tracing-opentelemetry`): read from the current span, and given
//! to a new one as its parent or a link.
//!
//! Without such a layer installed a span has no OpenTelemetry context:
//! [`current`] finds none and [`follow`] changes nothing.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{Follows, TraceContext};

/// The context of the current span, if it has a valid one.
pub(crate) fn current() -> Option<TraceContext> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| TraceContext {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        flags: sc.trace_flags().to_u8(),
    })
}

/// Makes `span` follow `from` as `how` says. Call it right after creating
/// the span, before it is entered or its context read: the OpenTelemetry
/// layer refuses a parent after that.
pub(crate) fn follow(span: &tracing::Span, from: TraceContext, how: Follows) {
    let sc = SpanContext::new(
        TraceId::from_bytes(from.trace_id),
        SpanId::from_bytes(from.span_id),
        TraceFlags::new(from.flags),
        true,
        TraceState::default(),
    );
    match how {
        Follows::ChildOf => {
            let parent = opentelemetry::Context::new().with_remote_span_context(sc);
            // Refused only once the span was entered, which the callers
            // do after this: a refusal leaves the span a root, which is
            // all a trace can lose.
            let _ = span.set_parent(parent);
        }
        Follows::LinkedTo => span.add_link(sc),
    }
}
