//! HTTP actors: components of the `wasi:http/proxy` world, which export
//! `wasi:http/incoming-handler`, given routes in the manifest; a request
//! on a route is a message to its actor, under its limits and
//! supervision, through a real `troupe run --http`. The third-party hello
//! world is `examples-guests/rust/hello-http` (the `wasi` crate's own
//! example, unchanged); `http-probe` misbehaves on request.

use troupe::ActorLimits;

use crate::gateway::HttpHost;
use crate::support::{self, ask};

/// A host serving `hello-http` on `/hello/*` and `http-probe` on
/// `/probe/*` with a 300 ms deadline.
fn host() -> HttpHost {
    let guest = |name: &str| format!("{:?}", support::guest(name).display().to_string());
    let manifest = format!(
        "[actors.hello]\npath = {}\nroutes = [\"/hello/*\"]\n\n\
         [actors.probe]\npath = {}\nroutes = [\"/probe/*\"]\nlimits = {{ deadline-ms = 300 }}\n",
        guest("hello-http"),
        guest("http-probe")
    );
    HttpHost::start(&manifest, &[])
}

#[test]
fn a_third_party_component_serves_requests_on_its_route() {
    let host = host();
    for path in ["/hello", "/hello/world?x=1"] {
        let reply = host.get(path);
        assert_eq!((reply.status, reply.body.as_str()), (200, "Hello, WASI!"), "{path}");
    }
    let posted = host.request("POST", "/hello/form", None, Some("text/plain"), "a body");
    assert_eq!((posted.status, posted.body.as_str()), (200, "Hello, WASI!"));
}

#[test]
fn a_path_no_route_declares_is_404_and_the_gateway_keeps_its_own() {
    let host = host();
    let reply = host.get("/helloworld");
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(reply.json()["code"], "no-route");
    assert_eq!(host.get("/v1/actors").status, 200, "the gateway's own paths are its own");
}

#[test]
fn a_runaway_handler_is_stopped_by_its_deadline_and_the_route_answers_again_after_the_restart() {
    let host = host();
    assert_eq!(host.get("/probe/a").body, "/probe/a (1)");
    let reply = host.get("/probe/loop");
    assert_eq!(reply.status, 500, "{}", reply.body);
    assert_eq!(reply.json()["code"], "actor-failed");
    assert_eq!(reply.json()["failure"]["kind"], "deadline", "{}", reply.body);
    // A new incarnation: its count starts again.
    let again = host.get("/probe/b");
    assert_eq!((again.status, again.body.as_str()), (200, "/probe/b (1)"));
}

#[test]
fn a_trap_in_a_handler_is_500_with_its_kind_and_a_handler_without_a_response_is_500() {
    let host = host();
    let trapped = host.get("/probe/trap");
    assert_eq!(trapped.status, 500, "{}", trapped.body);
    assert_eq!(trapped.json()["failure"]["kind"], "panic", "{}", trapped.body);
    let silent = host.get("/probe/silent");
    assert_eq!(silent.status, 500, "{}", silent.body);
    assert!(silent.json()["message"].as_str().unwrap().contains("without setting a response"), "{}", silent.body);
    assert_eq!(host.get("/probe/c").status, 200);
}

#[test]
fn a_request_to_a_full_mailbox_is_503_and_a_body_over_max_message_bytes_is_413() {
    let probe = format!("{:?}", support::guest("http-probe").display().to_string());
    let manifest = format!(
        "[actors.probe]\npath = {probe}\nroutes = [\"/probe/*\"]\n\
         limits = {{ mailbox = 1, deadline-ms = 3000, max-message-bytes = 64 }}\n"
    );
    let host = std::sync::Arc::new(HttpHost::start(&manifest, &[]));
    // The first request keeps the actor busy until its deadline, the next
    // fills its one-message mailbox: the third finds it full.
    let busy = std::thread::spawn({
        let host = host.clone();
        move || host.get("/probe/loop").status
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let queued = std::thread::spawn({
        let host = host.clone();
        move || host.get("/probe/queued").status
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let refused = host.get("/probe/refused");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.json()["code"], "mailbox-full");
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
    assert_eq!(busy.join().unwrap(), 500, "the runaway handler ends at its deadline");
    assert_eq!(queued.join().unwrap(), 200, "the queued request is served after the restart");
    let big = host.request("POST", "/probe/echo", None, Some("text/plain"), &"x".repeat(100));
    assert_eq!(big.status, 413, "{}", big.body);
    assert!(big.json()["message"].as_str().unwrap().contains("limit of 64 bytes"), "{}", big.body);
}

#[test]
fn routes_that_overlap_or_shadow_the_gateway_are_refused_when_the_manifest_is_read() {
    let hello = support::guest("hello-http").display().to_string();
    let parse = |routes: &str| {
        let text = format!(
            "[actors.a]\npath = {hello:?}\nroutes = [\"/a/*\"]\n\n[actors.b]\npath = {hello:?}\nroutes = {routes}\n"
        );
        troupe::manifest::Manifest::parse(std::path::Path::new("/virtual/m.toml"), &text).map(drop)
    };
    assert!(parse(r#"["/b/*"]"#).is_ok());
    let overlap = parse(r#"["/a/x"]"#).unwrap_err().to_string();
    assert!(overlap.contains("route `/a/x` overlaps `/a/*` of `a`"), "{overlap}");
    let shadow = parse(r#"["/v1/*"]"#).unwrap_err().to_string();
    assert!(shadow.contains("route `/v1/*` shadows the gateway's own paths"), "{shadow}");
    let bad = parse(r#"["b/*"]"#).unwrap_err().to_string();
    assert!(bad.contains("begin it with `/`"), "{bad}");
    let durable = parse("[\"/b/*\"]\ndurability = \"durable\"").unwrap_err().to_string();
    assert!(durable.contains("an entry with routes starts one actor, in memory"), "{durable}");
}

#[tokio::test]
async fn a_third_party_wasi_http_component_starts_as_an_actor_and_its_handler_is_no_message() {
    let host = support::host();
    support::spawn(&host, "hello-http", "hello", ActorLimits::default()).await;
    let err = ask(&host, "hello", "handle()").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "`handle(request: own<resource>, response-out: own<resource>)` cannot be called as a message: \
         it passes a resource handle, which cannot leave its actor"
    );
}
