//! The host's metrics at `GET /metrics` on a real `troupe run --http`:
//! the text parses as Prometheus' format, messages are counted exactly by
//! outcome, an actor's series go when it stops or passivates while its
//! component keeps its counts, and reading them needs the read scope.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::gateway::{ADMIN_TOKEN, HttpHost, READ_TOKEN};

/// One sample of the text format: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (version 0.0.4), panicking on any
/// line that is not a comment or a sample, and on a sample whose family
/// was not declared by a `# TYPE` line before it.
fn parse(text: &str) -> Vec<Sample> {
    let mut typed: Vec<(String, String)> = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE line {line:?}"));
            assert!(["counter", "gauge", "histogram"].contains(&kind), "unknown type in {line:?}");
            typed.push((name.to_string(), kind.to_string()));
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment {line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value in {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
                let mut labels = BTreeMap::new();
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (key, value) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label in {line:?}"));
                    labels.insert(key.to_string(), value.trim_end_matches('"').to_string());
                }
                (name.to_string(), labels)
            }
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && name.starts_with("troupe_"),
            "bad name in {line:?}"
        );
        let family = typed.last().map(|(n, _)| n.as_str()).unwrap_or_else(|| panic!("{line:?} before any TYPE"));
        assert!(name.starts_with(family), "{line:?} outside its family `{family}`");
        samples.push(Sample { name, labels, value });
    }
    samples
}

/// The value of the sample `name` whose labels include `labels`, if one.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matches =
        |s: &&Sample| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v));
    let found: Vec<&Sample> = samples.iter().filter(matches).collect();
    assert!(found.len() <= 1, "{name}{labels:?} matches several samples: {found:?}");
    found.first().map(|s| s.value)
}

/// The metrics, parsed.
fn scrape(host: &HttpHost) -> Vec<Sample> {
    let reply = host.get("/metrics");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.content_type.as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));
    parse(&reply.body)
}

/// Scrapes until `done` holds of the samples, for at most ten seconds.
fn scrape_until(host: &HttpHost, what: &str, done: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let samples = scrape(host);
        if done(&samples) {
            return samples;
        }
        assert!(Instant::now() < deadline, "{what} did not happen within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const COUNTER_AND_FAULTY: &str = "[actors.counter]\npath = {counter}\n\n[actors.faulty]\npath = {faulty}\n";

#[test]
fn messages_are_counted_by_outcome_exactly() {
    let host = HttpHost::start(COUNTER_AND_FAULTY, &[]);
    for _ in 0..5 {
        assert_eq!(host.post("/v1/actors/counter/send/incr", json!([1])).status, 202);
    }
    for _ in 0..3 {
        host.call("counter", "incr", json!([1]));
    }
    // The asks queued behind the tells: all eight are handled now.
    assert_eq!(host.call("counter", "get", json!([])), json!(8));
    assert_eq!(host.post("/v1/actors/faulty/call/panic", json!(["boom"])).status, 500);
    assert_eq!(host.post("/v1/actors/nobody/call/incr", json!([1])).status, 404, "nobody counts nothing");

    let s = scrape(&host);
    let counter = [("component", "counter")];
    let messages = |component: &str, outcome: &str| {
        value(&s, "troupe_messages_total", &[("component", component), ("outcome", outcome)])
    };
    assert_eq!(messages("counter", "handled"), Some(9.0), "5 tells, 3 asks and a get");
    assert_eq!(messages("counter", "failed"), Some(0.0));
    assert_eq!(messages("counter", "refused"), Some(0.0));
    assert_eq!(messages("faulty", "failed"), Some(1.0));
    assert_eq!(messages("faulty", "handled"), Some(0.0));
    let actor = [("actor", "counter"), ("component", "counter"), ("outcome", "handled")];
    assert_eq!(value(&s, "troupe_actor_messages_total", &actor), Some(9.0));
    assert_eq!(value(&s, "troupe_message_handling_seconds_count", &counter), Some(9.0), "each message timed");
    assert_eq!(value(&s, "troupe_mailbox_wait_seconds_count", &counter), Some(4.0), "the asks' waits");
    let le_inf = [("component", "counter"), ("le", "+Inf")];
    assert_eq!(value(&s, "troupe_message_handling_seconds_bucket", &le_inf), Some(9.0));
    let panics = [("component", "faulty"), ("kind", "panic")];
    assert_eq!(value(&s, "troupe_failures_total", &panics), Some(1.0));
    let traps = [("component", "faulty"), ("kind", "trap")];
    assert_eq!(value(&s, "troupe_failures_total", &traps), Some(0.0));
    assert_eq!(value(&s, "troupe_dead_letters_total", &[("reason", "failed")]), Some(1.0));
    assert_eq!(value(&s, "troupe_activations_total", &counter), Some(1.0));
    assert_eq!(value(&s, "troupe_actors", &counter), Some(1.0));
    assert_eq!(value(&s, "troupe_mailbox_depth", &counter), Some(0.0));
    assert!(value(&s, "troupe_memory_bytes", &counter).is_some_and(|bytes| bytes > 0.0));

    // The supervisor restarts the faulty actor: counted once it has.
    let restarted = scrape_until(&host, "the restart", |s| {
        value(s, "troupe_restarts_total", &[("component", "faulty")]) == Some(1.0)
    });
    let faulty = [("actor", "faulty"), ("component", "faulty")];
    assert_eq!(value(&restarted, "troupe_actor_restarts_total", &faulty), Some(1.0));
    assert_eq!(value(&restarted, "troupe_actor_failures_total", &faulty), Some(1.0));
}

#[test]
fn a_stopped_actor_loses_its_series_and_its_component_keeps_its_counts() {
    let host = HttpHost::start(COUNTER_AND_FAULTY, &[]);
    host.call("counter", "incr", json!([2]));
    host.call("counter", "incr", json!([2]));
    let actor = [("actor", "counter"), ("component", "counter"), ("outcome", "handled")];
    assert_eq!(value(&scrape(&host), "troupe_actor_messages_total", &actor), Some(2.0));

    assert_eq!(host.request("DELETE", "/v1/actors/counter", None, None, "").status, 200);
    let s = scrape(&host);
    assert!(!s.iter().any(|x| x.labels.get("actor").is_some_and(|a| a == "counter")), "no series of a stopped actor");
    let handled = [("component", "counter"), ("outcome", "handled")];
    assert_eq!(value(&s, "troupe_messages_total", &handled), Some(2.0), "its component keeps its count");
    assert_eq!(value(&s, "troupe_actors", &[("component", "counter")]), Some(0.0));
    assert_eq!(value(&s, "troupe_message_handling_seconds_count", &[("component", "counter")]), Some(2.0));
    let faulty = [("actor", "faulty"), ("outcome", "handled")];
    assert_eq!(value(&s, "troupe_actor_messages_total", &faulty), Some(0.0), "the others stay");
}

#[test]
fn a_passivated_key_loses_its_series_and_is_counted_as_passivated() {
    let host = HttpHost::start("[virtual.user]\npath = {counter}\nidle-ms = 100\n", &[]);
    host.call("user/7", "incr", json!([1]));
    host.call("user/8", "incr", json!([1]));
    let s = scrape_until(&host, "both keys passivating", |s| {
        value(s, "troupe_passivations_total", &[("component", "user")]) == Some(2.0)
    });
    assert!(!s.iter().any(|x| x.labels.contains_key("actor")), "no series of a passivated key: {s:?}");
    let handled = [("component", "user"), ("outcome", "handled")];
    assert_eq!(value(&s, "troupe_messages_total", &handled), Some(2.0));
    assert_eq!(value(&s, "troupe_activations_total", &[("component", "user")]), Some(2.0));

    host.call("user/7", "incr", json!([1]));
    let s = scrape(&host);
    let again = [("actor", "user/7"), ("component", "user"), ("outcome", "handled")];
    assert_eq!(value(&s, "troupe_actor_messages_total", &again), Some(1.0), "a new activation counts afresh");
    assert_eq!(value(&s, "troupe_messages_total", &handled), Some(3.0));
    assert_eq!(value(&s, "troupe_activations_total", &[("component", "user")]), Some(3.0));
}

#[test]
fn a_full_mailbox_counts_the_refused_message() {
    let manifest = "[actors.busy]\npath = {faulty}\nlimits = { mailbox = 1, deadline-ms = 60000 }\n";
    let host = HttpHost::start(manifest, &[]);
    // One slow message is handled, one waits, the rest are refused.
    let sent: Vec<u16> =
        (0..4).map(|_| host.post("/v1/actors/busy/send/work", json!({ "rounds": 3000 })).status).collect();
    let refused = sent.iter().filter(|s| **s == 503).count();
    assert!(refused >= 2, "{sent:?}");
    let s = scrape(&host);
    let counted = value(&s, "troupe_messages_total", &[("component", "busy"), ("outcome", "refused")]);
    assert_eq!(counted, Some(refused as f64));
    let actor = [("actor", "busy"), ("component", "busy"), ("outcome", "refused")];
    assert_eq!(value(&s, "troupe_actor_messages_total", &actor), Some(refused as f64));
}

#[test]
fn a_durable_actors_store_commits_are_timed() {
    let host = HttpHost::start("[actors.counter]\npath = {counter}\ndurability = \"durable\"\n", &[]);
    let before = value(&scrape(&host), "troupe_store_commit_seconds_count", &[]).expect("the store is open");
    assert_eq!(host.post("/v1/actors/counter/send/incr", json!([1])).status, 202, "acknowledged once committed");
    let after = value(&scrape(&host), "troupe_store_commit_seconds_count", &[]).unwrap();
    assert!(after > before, "the tell's commit is counted: {before} -> {after}");
    let s = scrape(&host);
    let le_inf = value(&s, "troupe_store_commit_seconds_bucket", &[("le", "+Inf")]);
    assert_eq!(le_inf, value(&s, "troupe_store_commit_seconds_count", &[]));
}

#[test]
fn the_metrics_need_a_read_token_when_there_are_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = HttpHost::tokens_file(dir.path());
    let host = HttpHost::start("[actors.counter]\npath = {counter}\n", &["--http-tokens", &tokens]);
    assert_eq!(host.request("GET", "/metrics", None, None, "").status, 401);
    assert_eq!(host.request("GET", "/metrics", Some("not-a-token-at-all-0000"), None, "").status, 401);
    let read = host.request("GET", "/metrics", Some(READ_TOKEN), None, "");
    assert_eq!(read.status, 200);
    assert!(!parse(&read.body).is_empty());
    assert_eq!(host.request("GET", "/metrics", Some(ADMIN_TOKEN), None, "").status, 200);
    assert_eq!(host.request("POST", "/metrics", Some(READ_TOKEN), None, "").status, 403, "reading only");
}

/// A loopback HTTP server that answers every request with a 500, on a
/// thread of its own: its address.
fn failing_server() -> std::net::SocketAddr {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\ndown");
        }
    });
    addr
}

#[test]
fn an_http_breaker_shows_its_state_and_changes_while_its_actor_lives() {
    let server = failing_server();
    let pattern = format!("http://{server}/*");
    let fetcher = crate::support::guest("fetcher").display().to_string();
    let manifest = format!(
        "[actors.f]\npath = {fetcher:?}\n[actors.f.grants.http]\n\
         allow = [{{ url = {pattern:?}, breaker = {{ failures = 2, reset-ms = 60000 }} }}]\n"
    );
    let host = HttpHost::start(&manifest, &[]);
    let breaker = |state| [("actor", "f"), ("kind", "http"), ("dependency", pattern.as_str()), ("state", state)];
    let s = scrape(&host);
    assert_eq!(value(&s, "troupe_actor_breaker_state", &breaker("closed")), Some(1.0));
    assert_eq!(value(&s, "troupe_actor_breaker_state", &breaker("open")), Some(0.0));
    assert_eq!(value(&s, "troupe_actor_breaker_changes_total", &breaker("open")), Some(0.0));

    let url = format!("http://{server}/x");
    for _ in 0..2 {
        assert_eq!(host.call("f", "get", json!([url])), json!({"ok": "500 down"}));
    }
    let s = scrape(&host);
    assert_eq!(value(&s, "troupe_actor_breaker_state", &breaker("open")), Some(1.0));
    assert_eq!(value(&s, "troupe_actor_breaker_state", &breaker("closed")), Some(0.0));
    assert_eq!(value(&s, "troupe_actor_breaker_state", &breaker("half-open")), Some(0.0));
    assert_eq!(value(&s, "troupe_actor_breaker_changes_total", &breaker("open")), Some(1.0));
    assert_eq!(value(&s, "troupe_actor_breaker_changes_total", &breaker("closed")), Some(0.0));

    assert_eq!(host.request("DELETE", "/v1/actors/f", None, None, "").status, 200);
    let s = scrape(&host);
    assert!(!s.iter().any(|x| x.name.starts_with("troupe_actor_breaker")), "no breaker series of a stopped actor");
}
