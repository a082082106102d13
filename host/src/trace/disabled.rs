//! Without the `otlp` feature: spans carry no OpenTelemetry context, so
//! there is none to read or to follow.

use super::{Follows, TraceContext};

/// No span has a context to read.
pub(crate) fn current() -> Option<TraceContext> {
    None
}

/// Nothing to follow: `span` stays as it is.
pub(crate) fn follow(_span: &tracing::Span, _from: TraceContext, _how: Follows) {}
