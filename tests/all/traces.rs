//! Traces exported by a real `troupe run --otlp` to a collector the test
//! runs on loopback (OTLP/HTTP, protobuf): an ask chain is one trace of
//! correctly parented spans, a tell is linked to its sender's span, and a
//! gateway request continues the caller's `traceparent`.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;
use serde_json::json;

use crate::gateway::HttpHost;
use crate::support;

/// A span as the collector received it.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub(crate) name: String,
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    pub(crate) parent: String,
    pub(crate) attributes: BTreeMap<String, String>,
    /// `(trace id, span id)` of each link.
    links: Vec<(String, String)>,
}

/// An OTLP/HTTP collector on loopback that keeps every span posted to
/// its `/v1/traces`.
pub(crate) struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
    pub(crate) url: String,
    _runtime: tokio::runtime::Runtime,
}

impl Collector {
    pub(crate) fn start() -> Collector {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        let receive = move |body: Bytes| {
            let kept = kept.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                let mut kept = kept.lock().unwrap();
                for scope in request.resource_spans.iter().flat_map(|r| &r.scope_spans) {
                    kept.extend(scope.spans.iter().map(|s| {
                        Span {
                            name: s.name.clone(),
                            trace_id: hex::encode(&s.trace_id),
                            span_id: hex::encode(&s.span_id),
                            parent: hex::encode(&s.parent_span_id),
                            attributes: s
                                .attributes
                                .iter()
                                .map(|kv| {
                                    let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                        Some(AnyValue::StringValue(s)) => s.clone(),
                                        Some(AnyValue::IntValue(i)) => i.to_string(),
                                        other => format!("{other:?}"),
                                    };
                                    (kv.key.clone(), value)
                                })
                                .collect(),
                            links: s
                                .links
                                .iter()
                                .map(|l| (hex::encode(&l.trace_id), hex::encode(&l.span_id)))
                                .collect(),
                        }
                    }));
                }
                let response = ExportTraceServiceResponse::default().encode_to_vec();
                ([(axum::http::header::CONTENT_TYPE, "application/x-protobuf")], response)
            }
        };
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/v1/traces", post(receive));
        runtime.spawn(async move { axum::serve(listener, app).await });
        Collector { spans, url, _runtime: runtime }
    }

    pub(crate) fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

/// Stops the host with SIGTERM, as a service manager would, and waits:
/// it exports its last spans as it shuts down.
fn stop(mut host: HttpHost) {
    let pid = host.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = host.child.wait().unwrap();
    let log = std::fs::read_to_string(host.dir.path().join("host.log")).unwrap_or_default();
    assert!(status.success(), "the host did not stop cleanly ({status}); its log:\n{log}");
}

/// A chain `a` → `b` → `c` of `chain-node`s, each bound to the next.
fn chain() -> String {
    let node = format!("{:?}", support::guest("chain-node").display().to_string());
    format!(
        "[actors.c]\npath = {node}\nconfig = {{ leaf = \"true\" }}\n\n\
         [actors.b]\npath = {node}\nbindings = {{ \"example:chain/node\" = {{ actor = \"c\" }} }}\n\n\
         [actors.a]\npath = {node}\nbindings = {{ \"example:chain/node\" = {{ actor = \"b\" }} }}\n"
    )
}

/// The `actor.handle` span of `actor`'s message to `function`.
pub(crate) fn handled<'a>(spans: &'a [Span], actor: &str, function: &str) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| {
            s.name == "actor.handle"
                && s.attributes.get("actor").map(String::as_str) == Some(actor)
                && s.attributes.get("function").map(String::as_str) == Some(function)
        })
        .collect();
    assert_eq!(found.len(), 1, "one span of {actor} handling {function}, in {spans:#?}");
    found[0]
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[test]
fn an_ask_chain_is_one_trace_that_continues_the_callers_traceparent() {
    let collector = Collector::start();
    let host = HttpHost::start(&chain(), &["--otlp", &collector.url]);
    let reply = ureq::post(&format!("{}/v1/actors/a/call/put", host.base))
        .set("traceparent", &format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .send_json(json!({ "key": "k", "value": 5 }))
        .unwrap();
    assert_eq!(reply.status(), 200);
    stop(host);

    let spans = collector.spans();
    let requests: Vec<&Span> = spans.iter().filter(|s| s.name == "http.request").collect();
    assert_eq!(requests.len(), 1, "{spans:#?}");
    let request = requests[0];
    assert_eq!((request.trace_id.as_str(), request.parent.as_str()), (TRACE_ID, CALLER_SPAN));
    let (a, b, c) = (handled(&spans, "a", "put"), handled(&spans, "b", "put"), handled(&spans, "c", "put"));
    for span in [a, b, c] {
        assert_eq!(span.trace_id, TRACE_ID, "one trace: {span:#?}");
        assert_eq!(span.attributes.get("outcome").map(String::as_str), Some("ok"));
        assert!(span.attributes.contains_key("component"), "{span:#?}");
        assert!(span.attributes.contains_key("mailbox_wait_us"), "{span:#?}");
    }
    assert_eq!(a.parent, request.span_id, "a's span is the request's child");
    assert_eq!(b.parent, a.span_id, "b's span is a's child");
    assert_eq!(c.parent, b.span_id, "c's span is b's child");
}

#[test]
fn a_tell_starts_a_trace_linked_to_its_senders_span() {
    let collector = Collector::start();
    let host = HttpHost::start(&chain(), &["--otlp", &collector.url]);
    host.call("a", "pass-note", json!(["hello"]));
    // The note reached b once b answers what it noted (its mailbox is in order).
    assert_eq!(host.call("b", "notes", json!([])), json!(["hello"]));
    stop(host);

    let spans = collector.spans();
    let (sender, note) = (handled(&spans, "a", "pass-note"), handled(&spans, "b", "note"));
    assert_eq!(note.links, vec![(sender.trace_id.clone(), sender.span_id.clone())], "linked to a's span");
    assert_ne!(note.trace_id, sender.trace_id, "a trace of its own");
    assert!(note.parent.is_empty(), "a root: {note:#?}");
}

#[test]
fn a_request_without_a_traceparent_starts_a_trace_and_a_bad_one_is_ignored() {
    let collector = Collector::start();
    let host = HttpHost::start(&chain(), &["--otlp", &collector.url]);
    host.call("c", "put", json!({ "key": "x", "value": 1 }));
    let reply = ureq::post(&format!("{}/v1/actors/c/call/notes", host.base))
        .set("traceparent", "00-not-a-trace-01")
        .send_json(json!([]))
        .unwrap();
    assert_eq!(reply.status(), 200);
    stop(host);

    let spans = collector.spans();
    for (function, trace) in [("put", handled(&spans, "c", "put")), ("notes", handled(&spans, "c", "notes"))] {
        let request = spans.iter().find(|s| s.name == "http.request" && s.span_id == trace.parent);
        let request = request.unwrap_or_else(|| panic!("{function}'s span has its request's as parent: {spans:#?}"));
        assert!(request.parent.is_empty(), "the request starts the trace");
        assert_eq!(request.trace_id, trace.trace_id);
    }
}
