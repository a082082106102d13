//! Exporting spans over OTLP/HTTP (protobuf), as `troupe run --otlp URL`
//! does: an OpenTelemetry layer for the process's `tracing` subscriber,
//! and the batch exporter behind it.
//!
//! Only spans of target [`super::TARGET`] are exported
//! (`actor.handle`, `http.request`): the log's own spans (an actor's
//! lifetime, lifecycle steps) are not traces of requests.
//!
//! The batch exporter runs on a thread of its own and posts with a
//! blocking HTTP client: it needs no async runtime, and it is shut down
//! (its last spans flushed) from a blocking task by
//! [`Exporter::shutdown`].

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

use super::TARGET;

/// The path OTLP/HTTP receives traces on, added to a URL that has none.
pub const TRACES_PATH: &str = "/v1/traces";

/// Why spans cannot be exported to a URL.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Not an `http://` or `https://` URL.
    #[error(
        "`{0}` is not an OTLP/HTTP URL; give the collector's `http://HOST:PORT` (traces go to its {TRACES_PATH}) \
         or the full URL of its traces endpoint"
    )]
    Url(String),
    /// The exporter could not be built.
    #[error("cannot export traces to `{url}`: {reason}")]
    Build {
        /// The URL.
        url: String,
        /// What the exporter said.
        reason: String,
    },
}

/// The OTLP exporter of a process's trace spans.
#[derive(Debug)]
pub struct Exporter {
    provider: SdkTracerProvider,
    url: String,
}

impl Exporter {
    /// An exporter posting to `url` (a collector's base URL, to which
    /// [`TRACES_PATH`] is added, or the full URL of its traces endpoint),
    /// its spans naming `service` as their service.
    ///
    /// # Errors
    ///
    /// [`ExportError`] for a URL that is not HTTP(S), or an exporter that
    /// cannot be built.
    pub fn new(url: &str, service: &str) -> Result<Exporter, ExportError> {
        let url = traces_url(url)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.clone())
            .build()
            .map_err(|e| ExportError::Build { url: url.clone(), reason: e.to_string() })?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service.to_string()).build())
            .build();
        Ok(Exporter { provider, url })
    }

    /// The traces endpoint it posts to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The layer that turns troupe's trace spans into OpenTelemetry spans
    /// for this exporter. Add it to the process's subscriber, then call
    /// [`super::enable`].
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let tracer = self.provider.tracer("troupe");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(Targets::new().with_target(TARGET, tracing::Level::TRACE))
    }

    /// Exports the spans not exported yet and stops the exporter. From a
    /// blocking task: the exporter's client blocks.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the trace exporter did not shut down cleanly"),
            Err(e) => tracing::warn!(error = %e, "the trace exporter's shutdown panicked"),
        }
    }
}

/// `url` with [`TRACES_PATH`] if it has no path.
fn traces_url(url: &str) -> Result<String, ExportError> {
    let parsed = url::Url::parse(url).map_err(|_| ExportError::Url(url.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(ExportError::Url(url.to_string()));
    }
    Ok(if parsed.path() == "/" { format!("{}{TRACES_PATH}", url.trim_end_matches('/')) } else { url.to_string() })
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn a_base_url_gets_the_traces_path_and_a_full_one_is_kept() {
        assert_eq!(traces_url("http://127.0.0.1:4318").unwrap(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(traces_url("http://127.0.0.1:4318/").unwrap(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(traces_url("https://c.example/otlp/v1/traces").unwrap(), "https://c.example/otlp/v1/traces");
        assert!(traces_url("127.0.0.1:4318").is_err());
        assert!(traces_url("grpc://127.0.0.1:4317").is_err());
    }
}
