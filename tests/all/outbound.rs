//! Outbound HTTP under grants (`wasi:http/outgoing-handler`): the
//! allow-list, resolved-address checks, limits and timeouts, circuit
//! breakers and retries, against a real HTTP server the test starts on
//! loopback and which counts the requests that reach it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use troupe::events::EventKind;
use troupe::outbound::client::Resolve;
use troupe::outbound::{HttpClient, HttpGrant, HttpTls};
use troupe::{ActorLimits, Host};

use crate::support::{self, ask};

/// A loopback HTTP/1.1 server with a few routes, counting the requests
/// each path receives.
struct Server {
    addr: SocketAddr,
    /// `http://ADDR`, or `https://localhost:PORT` for a TLS server.
    base: String,
    state: Arc<ServerState>,
}

#[derive(Default)]
struct ServerState {
    hits: Mutex<HashMap<String, u32>>,
    /// `/toggle` answers 500 while set, 200 otherwise.
    failing: AtomicBool,
}

impl Server {
    async fn start() -> Server {
        Self::listen(None).await
    }

    /// The same server over TLS, as `localhost`, its certificate signed by
    /// a certificate authority made here; with that authority in PEM.
    async fn start_tls() -> (Server, String) {
        use tokio_rustls::rustls::{ServerConfig, crypto::ring, pki_types::PrivateKeyDer};
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &ca).unwrap();
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], PrivateKeyDer::Pkcs8(key.serialize_der().into()))
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        (Self::listen(Some(acceptor)).await, ca.pem())
    }

    /// Serves each connection to a loopback port, over TLS with `tls`.
    async fn listen(tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = match tls {
            Some(_) => format!("https://localhost:{}", addr.port()),
            None => format!("http://{addr}"),
        };
        let state = Arc::new(ServerState::default());
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tls, shared) = (tls.clone(), shared.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve(stream, shared).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, shared).await;
                            }
                        }
                    }
                });
            }
        });
        Server { addr, base, state }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self, path: &str) -> u32 {
        self.state.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn serve(mut stream: impl AsyncRead + AsyncWrite + Unpin, state: Arc<ServerState>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request).to_string();
    let target = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let seen = {
        let mut hits = state.hits.lock().unwrap();
        let n = hits.entry(path.to_string()).or_default();
        *n += 1;
        *n
    };
    let (status, headers, body): (&str, String, String) = match path {
        "/ok" | "/docs/readme" | "/secret" => ("200 OK", String::new(), "hello".into()),
        "/fail" => ("500 Internal Server Error", String::new(), "down".into()),
        "/unavailable" | "/post-unavailable" => ("503 Service Unavailable", String::new(), "busy".into()),
        "/flaky" if seen <= 2 => ("503 Service Unavailable", String::new(), "busy".into()),
        "/flaky" => ("200 OK", String::new(), "recovered".into()),
        "/toggle" if state.failing.load(Ordering::SeqCst) => {
            ("500 Internal Server Error", String::new(), "down".into())
        }
        "/toggle" => ("200 OK", String::new(), "up".into()),
        "/redirect" => ("302 Found", format!("location: {}\r\n", query.trim_start_matches("to=")), String::new()),
        "/big" => ("200 OK", String::new(), "x".repeat(10_000)),
        "/weather" => ("200 OK", "content-type: application/json\r\n".into(), r#"{"temperature": 21.5}"#.into()),
        "/hold" => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            ("200 OK", String::new(), "held".into())
        }
        // Never answers: the client's timeout ends it.
        "/silent" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        _ => ("404 Not Found", String::new(), "no such page".into()),
    };
    let response =
        format!("HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Spawns the fetcher at `address` with `grant`.
async fn fetcher(host: &Host, address: &str, client: HttpClient) {
    let mut entry = support::define(host, "fetcher");
    entry.policy.grants.http = Some(client.into_access());
    host.spawn(entry.spec(address.into())).await.expect("the fetcher starts");
}

fn grant(patterns: &[String]) -> HttpClient {
    HttpClient::new(HttpGrant::of_patterns(patterns.iter().cloned())).unwrap()
}

fn grant_toml(text: &str) -> HttpClient {
    HttpClient::new(toml::from_str::<HttpGrant>(text).unwrap()).unwrap()
}

async fn get(host: &Host, address: &str, url: &str) -> String {
    ask(host, address, &format!("get({url:?})")).await.unwrap()
}

const DENIED: &str = r#"err("HTTP-request-denied")"#;

#[tokio::test]
async fn an_allowed_request_reaches_the_server_and_its_answer_the_actor() {
    let server = Server::start().await;
    let host = support::host();
    fetcher(&host, "f", grant(&[server.url("/*")])).await;
    assert_eq!(get(&host, "f", &server.url("/ok")).await, r#"ok("200 hello")"#);
    assert_eq!(get(&host, "f", &server.url("/nothing")).await, r#"ok("404 no such page")"#);
    assert_eq!(server.hits("/ok"), 1);
}

#[tokio::test]
async fn a_fetched_document_is_cached_and_not_fetched_again() {
    let server = Server::start().await;
    let host = support::host();
    fetcher(&host, "f", grant(&[server.url("/docs/*")])).await;
    let call = format!("fetch({:?})", server.url("/docs/readme"));
    assert_eq!(ask(&host, "f", &call).await.unwrap(), r#"ok("hello")"#);
    assert_eq!(ask(&host, "f", &call).await.unwrap(), r#"ok("hello")"#);
    assert_eq!(ask(&host, "f", "cached()").await.unwrap(), "1");
    assert_eq!(server.hits("/docs/readme"), 1, "the second fetch came from the cache");
}

#[tokio::test]
async fn a_component_importing_the_handler_does_not_start_without_an_http_grant() {
    let host = support::host();
    let entry = support::define(&host, "fetcher");
    let err = host.spawn(entry.spec("f".into())).await.unwrap_err();
    assert!(err.to_string().contains("imports wasi:http/outgoing-handler but has no `http` grant"), "{err}");
    assert!(err.to_string().contains("--allow-http"), "names the fix: {err}");
}

#[tokio::test]
async fn an_actor_without_an_http_grant_cannot_be_swapped_to_code_that_imports_the_handler() {
    let host = support::host();
    support::spawn(&host, "counter", "c", ActorLimits::default()).await;
    let fetcher = support::define(&host, "fetcher").component;
    let options = troupe::actor::SwapOptions { force: true, probation: Duration::ZERO };
    let err = host.swap("c", fetcher, options).await.unwrap_err();
    assert!(err.to_string().contains("`c` imports wasi:http/outgoing-handler but has no `http` grant"), "{err}");
    assert_eq!(ask(&host, "c", "incr(1)").await.unwrap(), "1", "the old code runs on");
}

/// `spawn-fetcher`: the fetcher at `parent` spawns a fetcher child at
/// `name` granted `allow`.
async fn spawn_fetcher(host: &Host, parent: &str, name: &str, allow: &[String]) -> String {
    ask(host, parent, &format!("spawn-fetcher(\"fetcher\", {name:?}, {allow:?})")).await.unwrap()
}

#[tokio::test]
async fn a_guest_grants_a_child_outbound_http_within_its_own_grant() {
    let server = Server::start().await;
    let host = support::host();
    fetcher(&host, "parent", grant(&[server.url("/*")])).await;
    assert_eq!(spawn_fetcher(&host, "parent", "parent/kid", &[server.url("/docs/*")]).await, r#"ok("parent/kid")"#);
    assert_eq!(get(&host, "parent/kid", &server.url("/docs/readme")).await, r#"ok("200 hello")"#);
    assert_eq!(get(&host, "parent/kid", &server.url("/ok")).await, DENIED, "outside the child's own patterns");
    assert_eq!(server.hits("/ok"), 0);
    assert_eq!(get(&host, "parent", &server.url("/ok")).await, r#"ok("200 hello")"#, "the parent keeps its grant");
}

#[tokio::test]
async fn a_guest_cannot_grant_a_child_a_url_it_does_not_hold_itself() {
    let server = Server::start().await;
    let host = support::host();
    fetcher(&host, "parent", grant(&[server.url("/docs/*")])).await;
    for wider in [server.url("/*"), format!("http://127.0.0.1:{}/docs/*", server.addr.port() + 1)] {
        let refused = spawn_fetcher(&host, "parent", "parent/greedy", std::slice::from_ref(&wider)).await;
        assert_eq!(
            refused,
            format!(
                "err(\"invalid argument: the `http` grant asked for `parent/greedy` is refused: `{wider}` is not within \
                 any of the `http` patterns its spawner holds (`{}`); a guest can grant a child only URLs it may request \
                 itself\")",
                server.url("/docs/*")
            )
        );
    }
    assert!(host.actors().iter().all(|a| a.address.as_str() != "parent/greedy"), "no child was started");
}

#[tokio::test]
async fn https_to_a_server_a_trusted_private_authority_signed_works_and_is_refused_without_it() {
    let (server, ca) = Server::start_tls().await;
    let host = support::host();
    let trusting = HttpTls::with_pem_authorities(ca.as_bytes(), "ca.pem").unwrap();
    let allow = HttpGrant::of_patterns([server.url("/*")]);
    fetcher(&host, "trusting", HttpClient::with_tls(allow.clone(), trusting).unwrap()).await;
    fetcher(&host, "public-roots", HttpClient::new(allow).unwrap()).await;
    assert_eq!(get(&host, "trusting", &server.url("/ok")).await, r#"ok("200 hello")"#);
    assert_eq!(get(&host, "public-roots", &server.url("/ok")).await, r#"err("TLS-certificate-error")"#);
    assert_eq!(server.hits("/ok"), 1, "no request went over the connection it could not trust");
    // An `https` pattern allows no `http` request to the same host and port.
    let plain = format!("http://localhost:{}/ok", server.addr.port());
    assert_eq!(get(&host, "trusting", &plain).await, DENIED);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_with_http_ca_trusts_that_authority_for_outbound_https() {
    let (server, ca) = Server::start_tls().await;
    let (allow, ok) = (server.url("/*"), server.url("/ok"));
    let reply = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca).unwrap();
        let host = crate::cli::HostProcess::start_in_env(None, &["--http-ca", ca_file.to_str().unwrap()], &[]);
        let fetcher = support::guest("fetcher").display().to_string();
        host.ok(&["spawn", "f", &fetcher, "--allow-http", &allow]);
        host.ok(&["call", "f", &format!("get({ok:?})")])
    })
    .await
    .unwrap();
    assert_eq!(reply, "ok(\"200 hello\")\n");
}

#[test]
fn run_refuses_an_http_ca_file_without_a_certificate_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_troupe"))
        .args(["run", "--control"])
        .arg(dir.path().join("c.sock"))
        .arg("--http-ca")
        .arg(&ca)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: no `BEGIN CERTIFICATE` block; give the CA's certificate in PEM", ca.display())),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_host_or_port_outside_the_grant_is_denied_and_nothing_is_sent() {
    let server = Server::start().await;
    let host = support::host();
    fetcher(&host, "f", grant(&[server.url("/*")])).await;
    let port = server.addr.port();
    // The same server, named otherwise: another host as far as the grant goes.
    assert_eq!(get(&host, "f", &format!("http://localhost:{port}/ok")).await, DENIED);
    assert_eq!(get(&host, "f", &format!("http://127.0.0.1:{}/ok", port + 1)).await, DENIED);
    assert_eq!(get(&host, "f", &format!("https://127.0.0.1:{port}/ok")).await, DENIED);
    assert_eq!(server.hits("/ok"), 0);
}

#[tokio::test]
async fn a_path_outside_the_grant_is_denied_and_nothing_is_sent() {
    let server = Server::start().await;
    let host = support::host();
    fetcher(&host, "f", grant(&[server.url("/docs/*")])).await;
    assert_eq!(get(&host, "f", &server.url("/ok")).await, DENIED);
    assert_eq!(get(&host, "f", &server.url("/docs/../ok")).await, DENIED, "dot segments are resolved first");
    assert_eq!(get(&host, "f", &server.url("/docs/%2e%2e/ok")).await, DENIED);
    assert_eq!(server.hits("/ok"), 0);
    assert_eq!(get(&host, "f", &server.url("/docs/readme")).await, r#"ok("200 hello")"#);
}

#[tokio::test]
async fn a_denied_request_is_logged_with_its_actor_and_url() {
    let server = Server::start().await;
    let (allow, denied) = (server.url("/docs/*"), server.url("/secret"));
    let (reply, log) = tokio::task::spawn_blocking(move || {
        let host = crate::cli::HostProcess::start_in_env(None, &[], &[]);
        let fetcher = support::guest("fetcher").display().to_string();
        host.ok(&["spawn", "f", &fetcher, "--allow-http", &allow]);
        let reply = host.ok(&["call", "f", &format!("get({denied:?})")]);
        (reply, host.log())
    })
    .await
    .unwrap();
    assert_eq!(reply.trim(), DENIED);
    let line = log.lines().find(|l| l.contains("outbound HTTP request denied")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("actor=f") && line.contains("/secret"), "names the actor and the URL: {line}");
    assert_eq!(server.hits("/secret"), 0);
}

#[tokio::test]
async fn a_redirect_to_a_host_outside_the_grant_is_not_followed() {
    let server = Server::start().await;
    let host = support::host();
    fetcher(&host, "f", grant(&[server.url("/*")])).await;
    let outside = format!("http://localhost:{}/secret", server.addr.port());
    let call = format!("fetch({:?})", server.url(&format!("/redirect?to={outside}")));
    assert_eq!(ask(&host, "f", &call).await.unwrap(), DENIED);
    assert_eq!(server.hits("/redirect"), 1);
    assert_eq!(server.hits("/secret"), 0, "the redirect's target was never requested");
    // A redirect within the grant is followed.
    let inside = server.url("/secret");
    let call = format!("fetch({:?})", server.url(&format!("/redirect?to={inside}")));
    assert_eq!(ask(&host, "f", &call).await.unwrap(), r#"ok("hello")"#);
}

/// Resolves every name to one address, as a DNS record pointing a public
/// name at the host's own loopback would.
struct ResolveTo(SocketAddr);

impl Resolve for ResolveTo {
    fn resolve(&self, _host: &str, _port: u16) -> troupe::actor::BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> {
        let addr = self.0;
        Box::pin(async move { Ok(vec![addr]) })
    }
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_denied_unless_a_pattern_names_it_exactly() {
    let server = Server::start().await;
    let host = support::host();
    let port = server.addr.port();
    let resolver = Arc::new(ResolveTo(server.addr));
    let wildcard = HttpGrant::of_patterns([format!("http://*.example.test:{port}/*")]);
    fetcher(&host, "wild", HttpClient::with_resolver(wildcard, resolver.clone()).unwrap()).await;
    assert_eq!(get(&host, "wild", &format!("http://api.example.test:{port}/ok")).await, DENIED);
    assert_eq!(server.hits("/ok"), 0, "nothing was sent to the loopback address");
    let exact = HttpGrant::of_patterns([format!("http://api.example.test:{port}/*")]);
    fetcher(&host, "exact", HttpClient::with_resolver(exact, resolver).unwrap()).await;
    assert_eq!(get(&host, "exact", &format!("http://api.example.test:{port}/ok")).await, r#"ok("200 hello")"#);
    assert_eq!(server.hits("/ok"), 1);
}

#[tokio::test]
async fn a_silent_server_times_out_with_the_configured_timeout_while_another_actor_answers() {
    let server = Server::start().await;
    let host = support::host();
    // A deadline shorter than the wait: waiting on a response is not running.
    let mut entry = support::define(&host, "fetcher");
    entry.policy.limits = ActorLimits { deadline: Duration::from_millis(300), ..ActorLimits::default() };
    let client = grant_toml(&format!("allow = [{:?}]\nfirst-byte-timeout-ms = 1500", server.url("/*")));
    entry.policy.grants.http = Some(client.into_access());
    host.spawn(entry.spec("slow".into())).await.unwrap();
    support::spawn(&host, "counter", "c", ActorLimits::default()).await;
    let waiting = {
        let host = host.clone();
        let url = server.url("/silent");
        tokio::spawn(async move { get(&host, "slow", &url).await })
    };
    while server.hits("/silent") == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(ask(&host, "c", "incr(1)").await.unwrap(), "1", "another actor answers meanwhile");
    assert!(!waiting.is_finished(), "the request is still waiting");
    assert_eq!(waiting.await.unwrap(), r#"err("connection-read-timeout")"#);
    // The guest may shorten the timeout, not lengthen it.
    let reply = ask(&host, "slow", &format!("get-within({:?}, 100)", server.url("/silent"))).await.unwrap();
    assert_eq!(reply, r#"err("connection-read-timeout")"#);
}

#[tokio::test]
async fn the_wall_clock_ceiling_ends_a_message_that_waits_too_long() {
    let server = Server::start().await;
    let host = support::host();
    let client = grant_toml(&format!("allow = [{:?}]\nmessage-ceiling-ms = 400", server.url("/*")));
    fetcher(&host, "f", client).await;
    let err = ask(&host, "f", &format!("get({:?})", server.url("/silent"))).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("wall-clock ceiling of 400 ms"), "{text}");
    assert!(text.contains("message-ceiling-ms"), "{text}");
}

#[tokio::test]
async fn a_response_larger_than_the_limit_fails_to_read() {
    let server = Server::start().await;
    let host = support::host();
    fetcher(&host, "f", grant_toml(&format!("allow = [{:?}]\nmax-response-bytes = 1000", server.url("/*")))).await;
    let big = get(&host, "f", &server.url("/big")).await;
    assert_eq!(big, BODY_TOO_LARGE);
    assert_eq!(get(&host, "f", &server.url("/ok")).await, r#"ok("200 hello")"#);
}

/// What the fetcher answers when a body passes `max-response-bytes = 1000`.
const BODY_TOO_LARGE: &str = r#"err("HTTP response body size exceeds limit: 1000 bytes")"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_reads_a_failed_requests_error_without_the_hosts_backtrace() {
    let server = Server::start().await;
    let (allow, big) = (server.url("/*"), server.url("/big"));
    let reply = tokio::task::spawn_blocking(move || {
        // Backtraces on: each host error captures one.
        let host = crate::cli::HostProcess::start_in_env(None, &[], &[("RUST_BACKTRACE", "1")]);
        let fetcher = support::guest("fetcher").display().to_string();
        host.ok(&["spawn", "f", &fetcher, "--allow-http", &allow, "--http-max-response", "1000"]);
        host.ok(&["call", "f", &format!("get({big:?})")])
    })
    .await
    .unwrap();
    assert!(!reply.contains("backtrace") && !reply.contains("at /"), "the host's stack leaked: {reply}");
    assert_eq!(reply.trim_end(), BODY_TOO_LARGE);
}

#[tokio::test]
async fn a_flood_of_requests_is_capped_by_the_concurrency_limit_and_other_actors_answer() {
    let server = Server::start().await;
    let host = support::host();
    fetcher(&host, "f", grant_toml(&format!("allow = [{:?}]\nmax-concurrent = 2", server.url("/*")))).await;
    support::spawn(&host, "counter", "c", ActorLimits::default()).await;
    let flood = {
        let host = host.clone();
        let url = server.url("/hold");
        tokio::spawn(async move { ask(&host, "f", &format!("fan-out({url:?}, 6)")).await.unwrap() })
    };
    while server.hits("/hold") < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(ask(&host, "c", "incr(1)").await.unwrap(), "1");
    let outcomes = flood.await.unwrap();
    assert_eq!(outcomes.matches("\"200\"").count(), 2, "{outcomes}");
    assert_eq!(outcomes.matches("connection-limit-reached").count(), 4, "{outcomes}");
    assert_eq!(server.hits("/hold"), 2);
}

/// The breaker events of `address` received so far.
fn breaker_events(events: &mut tokio::sync::broadcast::Receiver<troupe::events::Event>) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EventKind::Breaker { from, to, .. } = event.kind {
            seen.push((from, to));
        }
    }
    seen
}

fn pair(from: &str, to: &str) -> (String, String) {
    (from.to_string(), to.to_string())
}

#[tokio::test]
async fn a_breaker_opens_after_n_failures_fails_fast_lets_one_trial_through_and_closes_on_success() {
    let server = Server::start().await;
    let host = support::host();
    let mut events = host.events();
    server.state.failing.store(true, Ordering::SeqCst);
    let text = format!(
        "allow = [{{ url = {:?}, breaker = {{ failures = 3, reset-ms = 300, max-reset-ms = 1000 }} }}]",
        server.url("/*")
    );
    fetcher(&host, "f", grant_toml(&text)).await;
    let toggle = server.url("/toggle");
    for _ in 0..3 {
        assert_eq!(get(&host, "f", &toggle).await, r#"ok("500 down")"#);
    }
    let open = get(&host, "f", &toggle).await;
    assert!(open.starts_with(r#"err("internal-error(circuit-open: "#), "{open}");
    assert_eq!(server.hits("/toggle"), 3, "no request reached the server while open");
    let info = host.actors().into_iter().find(|a| a.address.as_str() == "f").unwrap();
    assert_eq!(info.http.unwrap()["allow"][0]["breaker"]["phase"], "open", "`troupe ps --json` shows it");

    // Half-open after the reset: of three requests at once, one is the trial.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let outcomes = ask(&host, "f", &format!("fan-out({toggle:?}, 3)")).await.unwrap();
    assert_eq!(outcomes.matches("\"500\"").count(), 1, "{outcomes}");
    assert_eq!(outcomes.matches("circuit-open").count(), 2, "{outcomes}");
    assert_eq!(server.hits("/toggle"), 4);

    // The trial failed: open again, for twice as long; then a trial that succeeds closes it.
    server.state.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(get(&host, "f", &toggle).await.contains("circuit-open"), "still open: the reset doubled");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get(&host, "f", &toggle).await, r#"ok("200 up")"#);
    assert_eq!(get(&host, "f", &toggle).await, r#"ok("200 up")"#);
    assert_eq!(server.hits("/toggle"), 6);
    assert_eq!(
        breaker_events(&mut events),
        [
            pair("closed", "open"),
            pair("open", "half-open"),
            pair("half-open", "open"),
            pair("open", "half-open"),
            pair("half-open", "closed")
        ]
    );
}

#[tokio::test]
async fn an_idempotent_request_is_retried_past_two_transient_failures() {
    let server = Server::start().await;
    let host = support::host();
    let text = format!(
        "allow = [{{ url = {:?}, retry = {{ attempts = 3, backoff-base-ms = 1, backoff-max-ms = 5 }} }}]",
        server.url("/*")
    );
    fetcher(&host, "f", grant_toml(&text)).await;
    assert_eq!(get(&host, "f", &server.url("/flaky")).await, r#"ok("200 recovered")"#);
    assert_eq!(server.hits("/flaky"), 3);
}

#[tokio::test]
async fn a_request_not_idempotent_is_never_retried() {
    let server = Server::start().await;
    let host = support::host();
    let text = format!(
        "allow = [{{ url = {:?}, retry = {{ attempts = 3, backoff-base-ms = 1, backoff-max-ms = 5 }} }}]",
        server.url("/*")
    );
    fetcher(&host, "f", grant_toml(&text)).await;
    let reply = ask(&host, "f", &format!("post({:?}, \"order\")", server.url("/post-unavailable"))).await.unwrap();
    assert_eq!(reply, r#"ok("503 busy")"#);
    assert_eq!(server.hits("/post-unavailable"), 1);
}

#[tokio::test]
async fn without_retry_configured_nothing_is_retried() {
    let server = Server::start().await;
    let host = support::host();
    fetcher(&host, "f", grant(&[server.url("/*")])).await;
    assert_eq!(get(&host, "f", &server.url("/flaky")).await, r#"ok("503 busy")"#);
    assert_eq!(server.hits("/flaky"), 1);
}

#[tokio::test]
async fn the_retry_budget_caps_extra_requests_under_a_sustained_outage() {
    let server = Server::start().await;
    let host = support::host();
    let text = format!(
        "allow = [{{ url = {:?}, retry = {{ attempts = 5, backoff-base-ms = 1, backoff-max-ms = 2, \
         budget = {{ fraction = 0.1, min-per-second = 0 }} }} }}]",
        server.url("/*")
    );
    fetcher(&host, "f", grant_toml(&text)).await;
    for _ in 0..20 {
        assert_eq!(get(&host, "f", &server.url("/unavailable")).await, r#"ok("503 busy")"#);
    }
    // 20 calls with 4 retries each would be 100 requests; the budget allows 10%.
    assert_eq!(server.hits("/unavailable"), 22);
}

/// The weather example `guest`, granted the test server's `/weather`:
/// asks it for the temperature there (which it answers), then at a URL
/// outside its grant, whose reply it returns. Nothing reaches the server
/// but the one allowed request.
async fn weather_actor_reply_outside_its_grant(guest: &str) -> String {
    let server = Server::start().await;
    let host = support::host();
    let mut entry = crate::languages::define(&host, guest);
    entry.policy.grants.http = Some(grant(&[server.url("/weather")]).into_access());
    host.spawn(entry.spec("w".into())).await.expect("the weather actor starts");
    let reply = ask(&host, "w", &format!("temperature({:?})", server.url("/weather"))).await.unwrap();
    assert_eq!(reply, r#"ok("21.5")"#);
    let denied = ask(&host, "w", &format!("temperature({:?})", server.url("/ok"))).await.unwrap();
    assert_eq!((server.hits("/weather"), server.hits("/ok")), (1, 0));
    denied
}

#[tokio::test]
async fn a_javascript_actor_calls_a_json_api_with_fetch() {
    let denied = weather_actor_reply_outside_its_grant("weather-js").await;
    assert!(denied.starts_with("err("), "{denied}");
}

#[tokio::test]
async fn a_python_actor_calls_a_json_api_through_the_wasi_http_bindings() {
    assert_eq!(weather_actor_reply_outside_its_grant("weather-py").await, DENIED);
}

#[tokio::test]
async fn a_binding_breaker_fails_fast_while_open_and_closes_after_a_good_trial() {
    let node = support::guest("chain-node").display().to_string();
    let text = format!(
        r#"
[actors.a]
path = {node:?}
bindings = {{ "example:chain/node" = {{ group = "leaf", breaker = {{ failures = 2, reset-ms = 300 }} }} }}
"#
    );
    let manifest = troupe::manifest::Manifest::parse(std::path::Path::new("/virtual/m.toml"), &text).unwrap();
    let host = support::host();
    let mut events = host.events();
    manifest.apply(&host).await.unwrap();
    // Its target group has no member: two calls fail, and the breaker opens.
    for _ in 0..2 {
        let err = ask(&host, "a", r#"put("k", 5)"#).await.unwrap_err();
        assert!(!err.to_string().contains("circuit-open"), "{err}");
    }
    // Now the target is up, but the breaker is open: the call fails fast
    // and does not reach it.
    let mut leaf = support::define(&host, "chain-node");
    leaf.policy.config = vec![("leaf".into(), "true".into())];
    let mut spec = leaf.spec("b".into());
    spec.group = Some("leaf".into());
    host.spawn(spec).await.unwrap();
    let err = ask(&host, "a", r#"put("k", 5)"#).await.unwrap_err();
    assert!(err.to_string().contains("circuit-open"), "{err}");
    assert_eq!(host.lookup("b").unwrap().info().handled, 0, "nothing reached the target");
    let info = host.lookup("a").unwrap().info();
    assert_eq!(info.breakers["example:chain/node"]["phase"], "open", "`troupe ps --json` shows it");
    let series = |state: &str| {
        format!(
            "troupe_actor_breaker_state{{actor=\"a\",component=\"a\",kind=\"binding\",\
             dependency=\"example:chain/node\",state=\"{state}\"}}"
        )
    };
    let metrics = host.metrics();
    for (state, value) in [("open", 1), ("closed", 0), ("half-open", 0)] {
        assert!(metrics.contains(&format!("{} {value}\n", series(state))), "the metrics show it:\n{metrics}");
    }
    // After the reset, one trial goes through; it succeeds and closes the breaker.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reply = ask(&host, "a", r#"put("k", 5)"#).await.unwrap();
    assert!(reply.starts_with("stored("), "{reply}");
    assert_eq!(host.lookup("b").unwrap().info().handled, 1);
    assert_eq!(
        breaker_events(&mut events),
        [pair("closed", "open"), pair("open", "half-open"), pair("half-open", "closed")]
    );
}

#[tokio::test]
async fn a_binding_marked_idempotent_is_retried_until_its_target_appears_and_an_unmarked_one_is_not() {
    let node = support::guest("chain-node").display().to_string();
    let text = format!(
        r#"
[actors.marked]
path = {node:?}
bindings = {{ "example:chain/node" = {{ group = "leaf", retry = {{ attempts = 20, backoff-base-ms = 50, backoff-max-ms = 50 }} }} }}

[actors.unmarked]
path = {node:?}
bindings = {{ "example:chain/node" = {{ group = "leaf" }} }}
"#
    );
    let manifest = troupe::manifest::Manifest::parse(std::path::Path::new("/virtual/m.toml"), &text).unwrap();
    let host = support::host();
    manifest.apply(&host).await.unwrap();
    let err = ask(&host, "unmarked", r#"put("k", 5)"#).await.unwrap_err();
    assert!(err.to_string().contains("example:chain/node"), "{err}");
    let retried = {
        let host = host.clone();
        tokio::spawn(async move { ask(&host, "marked", r#"put("k", 5)"#).await })
    };
    // 20 attempts about 25 ms apart: the call is still being retried when
    // its target appears.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut leaf = support::define(&host, "chain-node");
    leaf.policy.config = vec![("leaf".into(), "true".into())];
    let mut spec = leaf.spec("b".into());
    spec.group = Some("leaf".into());
    host.spawn(spec).await.unwrap();
    let reply = retried.await.unwrap().unwrap();
    assert!(reply.starts_with(r#"stored({key: "k", value: 5, path: ["marked", "b"]"#), "{reply}");
}
