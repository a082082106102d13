//! The HTTP gateway (`troupe run --http`): calls with JSON and WAVE
//! bodies, every error status, bearer tokens and their scopes, the event
//! stream, spawning and stopping, all against a real host process spoken
//! to over HTTP.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support;

pub(crate) const READ_TOKEN: &str = "read-token-5f1c0e2a9b7d4c33";
pub(crate) const ADMIN_TOKEN: &str = "admin-token-8e0b6d4f2a1c9e77";

/// A `troupe run --http 127.0.0.1:0` process, killed on drop. (The
/// metrics and traces tests drive one too.)
pub(crate) struct HttpHost {
    pub(crate) child: Child,
    /// `http://127.0.0.1:PORT`, as the host printed it.
    pub(crate) base: String,
    /// Kept open: the host's stdout is a pipe whose reader must not go.
    _stdout: BufReader<ChildStdout>,
    pub(crate) dir: tempfile::TempDir,
}

/// An HTTP answer.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) content_type: Option<String>,
    pub(crate) retry_after: Option<String>,
    www_authenticate: Option<String>,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The error body's `code`, asserting the status first.
    fn error_code(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        self.json()["code"].as_str().unwrap_or_else(|| panic!("no code: {}", self.body)).to_string()
    }
}

impl HttpHost {
    /// Starts a host running `manifest` (TOML, `{counter}` and `{faulty}`
    /// replaced by those guests' paths), with `flags` after the rest.
    pub(crate) fn start(manifest: &str, flags: &[&str]) -> HttpHost {
        Self::start_with(manifest, flags, |_| {})
    }

    /// As [`HttpHost::start`], with `adjust` applied to the command last.
    pub(crate) fn start_with(manifest: &str, flags: &[&str], adjust: impl FnOnce(&mut Command)) -> HttpHost {
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest
            .replace("{counter}", &format!("{:?}", support::guest("counter").display().to_string()))
            .replace("{faulty}", &format!("{:?}", support::guest("faulty").display().to_string()));
        let manifest_path = dir.path().join("troupe.toml");
        std::fs::write(&manifest_path, manifest).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_troupe"));
        cmd.arg("run").arg("--control").arg(dir.path().join("control.sock"));
        cmd.arg("--max-actors").arg("50");
        cmd.arg("--cache-dir").arg(support::target_dir().join("troupe-test-cache"));
        cmd.arg("--data-dir").arg(dir.path().join("data"));
        cmd.arg("--http").arg("127.0.0.1:0").args(flags).arg(&manifest_path);
        cmd.env_remove("TROUPE_HTTP_TOKENS");
        adjust(&mut cmd);
        let log = std::fs::File::create(dir.path().join("host.log")).unwrap();
        let mut child = cmd.stdout(Stdio::piped()).stderr(log).spawn().expect("troupe runs");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let base = loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let log = std::fs::read_to_string(dir.path().join("host.log")).unwrap_or_default();
                panic!("the host ended before printing its HTTP address; its log:\n{log}");
            }
            if let Some(url) = line.trim().strip_prefix("HTTP gateway: ") {
                break url.to_string();
            }
        };
        HttpHost { child, base, _stdout: stdout, dir }
    }

    /// Writes a tokens file with a read and an admin token, for `--http-tokens`.
    pub(crate) fn tokens_file(dir: &Path) -> String {
        let path = dir.join("tokens");
        std::fs::write(&path, format!("# scope token\nread {READ_TOKEN}\nadmin {ADMIN_TOKEN}\n")).unwrap();
        path.display().to_string()
    }

    fn agent() -> ureq::Agent {
        ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build()
    }

    /// `method path` with `body` of `content_type` and a bearer `token`.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: &str,
    ) -> Reply {
        let mut request = Self::agent().request(method, &format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            request = request.set("Content-Type", content_type);
        }
        let response = match request.send_string(body) {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let header = |name: &str| response.header(name).map(str::to_string);
        let (content_type, retry_after, www_authenticate) =
            (header("Content-Type"), header("Retry-After"), header("WWW-Authenticate"));
        Reply {
            status: response.status(),
            body: response.into_string().unwrap(),
            content_type,
            retry_after,
            www_authenticate,
        }
    }

    pub(crate) fn post(&self, path: &str, json: Value) -> Reply {
        self.request("POST", path, None, Some("application/json"), &json.to_string())
    }

    pub(crate) fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None, None, "")
    }

    /// Calls `function` of `address` with JSON `args`; the result.
    pub(crate) fn call(&self, address: &str, function: &str, args: Value) -> Value {
        let reply = self.post(&format!("/v1/actors/{address}/call/{function}"), args);
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["result"].clone()
    }
}

impl Drop for HttpHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const COUNTER: &str = "[actors.counter]\npath = {counter}\n";

#[test]
fn a_call_takes_json_arguments_and_answers_the_reply_as_json() {
    let host = HttpHost::start(COUNTER, &[]);
    assert_eq!(host.call("counter", "incr", json!({ "by": 5 })), json!(5), "arguments by name");
    assert_eq!(host.call("counter", "incr", json!([2])), json!(7), "arguments in order");
    let qualified = "example:counter/api@0.1.0.incr";
    assert_eq!(host.call("counter", qualified, json!([1])), json!(8), "a qualified function");
    let sent = host.post("/v1/actors/counter/send/incr", json!({ "by": 2 }));
    assert_eq!((sent.status, sent.json()), (202, json!({ "address": "counter", "queued": true })));
    let get = host.request("POST", "/v1/actors/counter/call/get", None, None, "");
    assert_eq!((get.status, get.json()), (200, json!({ "result": 10 })), "an empty body is no arguments");
    assert_eq!(host.call("counter", "reset", json!([])), Value::Null, "no result is null");
}

#[test]
fn a_wave_body_is_an_argument_list_and_gets_a_wave_reply() {
    let host = HttpHost::start(COUNTER, &[]);
    let reply = host.request("POST", "/v1/actors/counter/call/incr", None, Some("text/x-wave"), "(5)");
    assert_eq!((reply.status, reply.body.as_str()), (200, "5"));
    assert_eq!(reply.content_type.as_deref(), Some("text/x-wave; charset=utf-8"));
    let plain = host.request("POST", "/v1/actors/counter/call/get", None, Some("text/plain"), "");
    assert_eq!((plain.status, plain.body.as_str()), (200, "5"));
    let bare = host.request("POST", "/v1/actors/counter/call/incr", None, Some("text/x-wave"), "5");
    assert_eq!(bare.error_code(400), "bad-message");
    assert!(bare.json()["message"].as_str().unwrap().contains("write `(5)`"), "{}", bare.body);
    let form =
        host.request("POST", "/v1/actors/counter/call/incr", None, Some("application/x-www-form-urlencoded"), "by=5");
    assert_eq!(form.error_code(415), "unsupported-media-type");
}

#[test]
fn ill_typed_arguments_are_400_naming_the_expected_signature() {
    let host = HttpHost::start(COUNTER, &[]);
    let reply = host.post("/v1/actors/counter/call/incr", json!({ "by": "five" }));
    assert_eq!(reply.error_code(400), "bad-message");
    let message = reply.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("incr(by: u64)"), "{message}");
    let not_json = host.request("POST", "/v1/actors/counter/call/incr", None, None, "{by: 5");
    assert_eq!(not_json.error_code(400), "bad-request");
    assert_eq!(host.call("counter", "get", json!([])), json!(0), "nothing was queued");
}

#[test]
fn an_unknown_actor_function_or_route_is_404() {
    let host = HttpHost::start(COUNTER, &[]);
    let nobody = host.post("/v1/actors/nobody/call/incr", json!([1]));
    assert_eq!(nobody.error_code(404), "unknown-address");
    let nothing = host.post("/v1/actors/counter/call/decr", json!([1]));
    assert_eq!(nothing.error_code(404), "bad-message");
    assert!(nothing.json()["message"].as_str().unwrap().contains("unknown function `decr`"), "{}", nothing.body);
    assert_eq!(host.get("/v1/actors/nobody").error_code(404), "unknown-address");
    assert_eq!(host.get("/v2/actors").error_code(404), "no-route");
    assert_eq!(host.post("/v1/actors/counter/incr", json!([1])).error_code(404), "no-route");
}

#[test]
fn a_full_mailbox_is_503_with_retry_after() {
    let manifest = "[actors.busy]\npath = {faulty}\nlimits = { mailbox = 1, deadline-ms = 60000 }\n";
    let host = HttpHost::start(manifest, &[]);
    // The first slow message keeps the actor busy, the next fills its
    // one-message mailbox; one of the next few finds it full.
    let refused = (0..5)
        .map(|_| host.post("/v1/actors/busy/send/work", json!({ "rounds": 3000 })))
        .find(|reply| reply.status != 202)
        .expect("a mailbox of one refuses a third slow message");
    assert_eq!(refused.error_code(503), "mailbox-full");
    assert_eq!(refused.retry_after.as_deref(), Some("1"));
}

#[test]
fn an_ask_past_its_timeout_is_504() {
    let manifest = "[actors.slow]\npath = {faulty}\nlimits = { deadline-ms = 60000 }\n";
    let host = HttpHost::start(manifest, &[]);
    let reply = host.post("/v1/actors/slow/call/work?timeout_ms=50", json!({ "rounds": 3000 }));
    assert_eq!(reply.error_code(504), "timeout");
    assert_eq!(reply.json()["message"], json!("no reply within 50 ms"));
}

#[test]
fn a_message_over_max_message_bytes_or_a_body_over_the_cap_is_413() {
    let manifest = "[actors.small]\npath = {faulty}\nlimits = { max-message-bytes = 64 }\n";
    let host = HttpHost::start(manifest, &[]);
    assert_eq!(host.call("small", "echo", json!({ "text": "hi" })), json!("hi"));
    let big = host.post("/v1/actors/small/call/echo", json!({ "text": "x".repeat(100) }));
    assert_eq!(big.error_code(413), "too-large");
    assert!(big.json()["message"].as_str().unwrap().contains("limit of 64 bytes"), "{}", big.body);

    // 17 MiB, written by hand: the host may answer before reading it all.
    let address = host.base.strip_prefix("http://").unwrap().to_string();
    let mut stream = TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let size = 17 << 20;
    let head = format!(
        "POST /v1/actors/small/call/echo HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    let mut writer = stream.try_clone().unwrap();
    let write = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&vec![b' '; size]);
    });
    // Whatever arrives before the host closes the connection (it may
    // reset it, having left the rest of the body unread).
    let mut answer = Vec::new();
    let mut chunk = [0; 4096];
    while let Ok(n @ 1..) = stream.read(&mut chunk) {
        answer.extend_from_slice(&chunk[..n]);
    }
    let _ = write.join();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{}", answer.lines().next().unwrap_or_default());
    assert!(answer.contains(r#""code":"too-large""#), "{answer}");
    assert!(answer.contains("over the gateway's limit of 16 MiB"), "{answer}");
}

#[test]
fn an_actor_failing_on_the_message_is_500_with_the_failure_kind() {
    let host = HttpHost::start("[actors.faulty]\npath = {faulty}\n", &[]);
    let reply = host.post("/v1/actors/faulty/call/panic", json!({ "message": "boom" }));
    assert_eq!(reply.error_code(500), "actor-failed");
    assert_eq!(reply.json()["failure"]["kind"], json!("panic"), "{}", reply.body);
    assert_eq!(host.call("faulty", "ping", json!([])), json!(1), "a fresh instance answers");
}

#[test]
fn a_virtual_key_is_activated_by_a_call_and_an_invalid_key_is_400() {
    let host = HttpHost::start("[virtual.user]\npath = {counter}\n", &[]);
    assert_eq!(host.call("user/42", "incr", json!([3])), json!(3));
    assert_eq!(host.get("/v1/actors/user/42").json()["actor"]["address"], json!("user/42"));
    let bad = host.post("/v1/actors/user/bad@key/call/incr", json!([1]));
    assert_eq!(bad.error_code(400), "invalid-argument");
}

#[test]
fn with_tokens_a_request_without_one_is_401_and_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let host = HttpHost::start(COUNTER, &["--http-tokens", &HttpHost::tokens_file(dir.path())]);
    let anonymous = host.get("/v1/actors");
    assert_eq!(anonymous.error_code(401), "unauthenticated");
    assert_eq!(anonymous.www_authenticate.as_deref(), Some("Bearer"));
    let call = host.post("/v1/actors/counter/call/incr", json!([5]));
    assert_eq!(call.error_code(401), "unauthenticated");
    let wrong = host.request("GET", "/v1/tree", Some("not-a-token-of-this-host"), None, "");
    assert_eq!(wrong.error_code(401), "unauthenticated");
    let get = host.request("POST", "/v1/actors/counter/call/get", Some(ADMIN_TOKEN), None, "");
    assert_eq!((get.status, get.json()), (200, json!({ "result": 0 })), "the unauthenticated call did nothing");
}

#[test]
fn a_read_token_reads_but_may_not_call_and_an_admin_token_may() {
    let dir = tempfile::tempdir().unwrap();
    let host = HttpHost::start(COUNTER, &["--http-tokens", &HttpHost::tokens_file(dir.path())]);
    let ps = host.request("GET", "/v1/actors", Some(READ_TOKEN), None, "");
    assert_eq!(ps.status, 200, "{}", ps.body);
    assert_eq!(ps.json()["actors"][0]["address"], json!("counter"));
    let call = host.request("POST", "/v1/actors/counter/call/incr", Some(READ_TOKEN), None, "[5]");
    assert_eq!(call.error_code(403), "forbidden");
    let stop = host.request("DELETE", "/v1/actors/counter", Some(READ_TOKEN), None, "");
    assert_eq!(stop.error_code(403), "forbidden");
    let admin = host.request("POST", "/v1/actors/counter/call/incr", Some(ADMIN_TOKEN), None, "[5]");
    assert_eq!((admin.status, admin.json()), (200, json!({ "result": 5 })), "the forbidden call did nothing");
}

#[test]
fn a_non_loopback_address_without_tokens_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .arg("run")
        .arg("--control")
        .arg(dir.path().join("control.sock"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--http", "0.0.0.0:0"])
        .env_remove("TROUPE_HTTP_TOKENS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing to serve HTTP on 0.0.0.0:0 without tokens"), "{stderr}");
    assert!(stderr.contains("--http-tokens"), "{stderr}");
}

#[test]
fn a_non_loopback_address_with_tokens_from_the_environment_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .arg("run")
        .arg("--control")
        .arg(dir.path().join("control.sock"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--http", "0.0.0.0:0"])
        .env("TROUPE_HTTP_TOKENS", format!("read {READ_TOKEN}; admin {ADMIN_TOKEN}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = String::new();
    while !lines.contains("HTTP gateway: http://0.0.0.0:") && stdout.read_line(&mut lines).unwrap() > 0 {}
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines.contains("HTTP gateway: http://0.0.0.0:"), "{lines}");
}

#[test]
fn host_events_arrive_as_server_sent_events() {
    let host = HttpHost::start("[actors.faulty]\npath = {faulty}\n", &[]);
    let events = HttpHost::agent().get(&format!("{}/v1/events", host.base)).call().unwrap();
    assert_eq!(events.content_type(), "text/event-stream");
    let mut events = BufReader::new(events.into_reader());
    let failed = host.post("/v1/actors/faulty/call/panic", json!(["boom"]));
    assert_eq!(failed.status, 500);
    let mut line = String::new();
    let event = loop {
        line.clear();
        assert!(events.read_line(&mut line).unwrap() > 0, "the event stream ended");
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            let event: Value = serde_json::from_str(data).unwrap();
            if event["event"] == "failed" {
                break event;
            }
        }
    };
    assert_eq!((&event["address"], &event["kind"]), (&json!("faulty"), &json!("panic")), "{event}");
}

#[test]
fn actors_are_spawned_listed_and_stopped_over_http() {
    let host = HttpHost::start(COUNTER, &[]);
    let path = support::guest("counter").display().to_string();
    let spawned = host.post("/v1/actors", json!({ "name": "c2", "component": path, "limits": { "mailbox": 4 } }));
    assert_eq!(spawned.status, 201, "{}", spawned.body);
    assert_eq!(spawned.json()["address"], json!("c2"));
    assert_eq!(host.call("c2", "incr", json!([4])), json!(4));

    let from_template = host.post("/v1/actors", json!({ "name": "c3", "component": "counter" }));
    assert_eq!((from_template.status, &from_template.json()["component"]), (201, &json!("counter")));
    let taken = host.post("/v1/actors", json!({ "name": "c3", "component": "counter" }));
    assert_eq!(taken.error_code(409), "name-taken");

    let one = host.get("/v1/actors/c2").json();
    assert_eq!(one["actor"]["mailbox_capacity"], json!(4));
    let incr = one["functions"].as_array().unwrap().iter().find(|f| f["name"] == "example:counter/api@0.1.0.incr");
    assert_eq!(incr.unwrap()["signature"], json!("incr(by: u64) -> u64"));
    let listed = host.get("/v1/actors").json();
    let addresses: Vec<&str> =
        listed["actors"].as_array().unwrap().iter().map(|a| a["address"].as_str().unwrap()).collect();
    assert_eq!(addresses, ["counter", "c2", "c3"]);
    let tree = host.get("/v1/tree");
    assert_eq!(tree.status, 200);
    assert!(tree.body.contains(r#""c2""#), "{}", tree.body);

    let stopped = host.request("DELETE", "/v1/actors/c2", None, None, "");
    assert_eq!((stopped.status, stopped.json()), (200, json!({ "address": "c2", "stopped": true })));
    assert_eq!(host.get("/v1/actors/c2").error_code(404), "unknown-address");
    let gone = host.request("DELETE", "/v1/actors/c2", None, None, "");
    assert_eq!(gone.error_code(404), "unknown-address");
    let unknown = host.post("/v1/actors", json!({ "name": "c4", "component": host.dir.path().join("none.wasm") }));
    assert_eq!(unknown.error_code(422), "load-failed");
}

#[test]
fn an_actor_is_swapped_over_http_keeping_its_state_and_an_incompatible_swap_changes_nothing() {
    let host = HttpHost::start(COUNTER, &[]);
    assert_eq!(host.call("counter", "incr", json!([41])), json!(41));
    let v2 = support::guest("counter-v2").display().to_string();
    let swapped = host.post("/v1/actors/counter/swap", json!({ "path": v2, "version": "2.0.0", "probation_ms": 50 }));
    assert_eq!(swapped.status, 200, "{}", swapped.body);
    assert_eq!(host.call("counter", "get", json!([])), json!(41), "the state crossed the swap");
    assert_eq!(host.get("/v1/actors/counter").json()["actor"]["version"], json!("2.0.0"));

    let narrow = support::guest("counter-narrow").display().to_string();
    let refused = host.post("/v1/actors/counter/swap", json!({ "path": narrow }));
    assert_eq!(refused.error_code(409), "incompatible");
    assert!(refused.body.contains("+ example:counter/api@0.1.0.incr(by: u32)"), "{}", refused.body);
    assert_eq!(host.get("/v1/actors/counter").json()["actor"]["version"], json!("2.0.0"));
    assert_eq!(host.call("counter", "get", json!([])), json!(41), "still serving after the refusal");

    let unknown_field = host.post("/v1/actors/counter/swap", json!({ "file": v2 }));
    assert_eq!(unknown_field.status, 400, "{}", unknown_field.body);
}

#[test]
fn a_numbered_send_sent_again_is_taken_once_and_half_a_number_is_400() {
    let host = HttpHost::start(
        "[actors.ledger]\npath = {counter}\ndurability = \"durable\"\n\n[actors.plain]\npath = {counter}\n",
        &[],
    );
    let send = |address: &str, headers: &[(&str, &str)]| {
        let mut request = HttpHost::agent()
            .post(&format!("{}/v1/actors/{address}/send/incr", host.base))
            .set("Content-Type", "application/json");
        for (name, value) in headers {
            request = request.set(name, value);
        }
        match request.send_string(r#"{"by": 1}"#) {
            Ok(response) => (response.status(), response.into_string().unwrap()),
            Err(ureq::Error::Status(status, response)) => (status, response.into_string().unwrap()),
            Err(e) => panic!("send: {e}"),
        }
    };
    let numbered = |seq: &'static str| [("Troupe-Publisher", "shop"), ("Troupe-Seq", seq)];
    for seq in ["1", "1", "2", "2", "1"] {
        assert_eq!(send("ledger", &numbered(seq)).0, 202, "send {seq} of `shop`");
    }
    assert_eq!(host.call("ledger", "get", json!([])), json!(2), "each number once");
    assert_eq!(send("ledger", &[]).0, 202, "an unnumbered send is taken every time");
    assert_eq!(host.call("ledger", "get", json!([])), json!(3));

    let (status, body) = send("ledger", &[("Troupe-Seq", "3")]);
    assert!(status == 400 && body.contains("both `troupe-publisher` and `troupe-seq`"), "{status} {body}");
    let (status, body) = send("ledger", &[("Troupe-Publisher", "shop"), ("Troupe-Seq", "three")]);
    assert!(status == 400 && body.contains("is not a number"), "{status} {body}");
    let (status, body) = send("plain", &numbered("3"));
    assert!(status == 400 && body.contains("`plain` is not durable"), "{status} {body}");
    assert_eq!(host.call("ledger", "get", json!([])), json!(3), "nothing refused was taken");
    assert_eq!(host.call("plain", "get", json!([])), json!(0));
}
