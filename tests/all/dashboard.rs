//! The live dashboard (`GET /` of `troupe run --http`), in a real
//! headless Chromium driven over WebDriver by Debian's `chromedriver`,
//! against a real host: what the page shows, how soon, and what its call
//! form answers. Also the endpoints it reads, over plain HTTP.
//!
//! The browser tests need the Debian packages `chromium` and
//! `chromium-driver`; `scripts/test` installs them. Without them these
//! tests fail, naming the packages: they are never skipped.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::gateway::{ADMIN_TOKEN, HttpHost, READ_TOKEN};
use crate::support;

/// How soon the page must show what an event reports (issue 19).
const SHOWN_WITHIN: Duration = Duration::from_secs(1);

/// How long a test waits for anything else before failing.
const PATIENCE: Duration = Duration::from_secs(30);

/// The W3C WebDriver key of an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A Chromium session through a `chromedriver` of the test's own, both
/// ended on drop.
struct Browser {
    driver: Child,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `chromedriver` on a free loopback port and opens a headless
    /// Chromium session (with a fresh profile, and without the background
    /// networking the machine's closed network would refuse).
    fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}): the dashboard tests need Debian's `chromium` and \
                     `chromium-driver` packages (`apt-get install -y chromium chromium-driver`; scripts/test \
                     installs them)"
                )
            });
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        while agent.get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let chromium = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"].into_iter().find(|p| Path::new(p).exists());
        let chromium = chromium.expect("no Chromium at /usr/bin/chromium: install Debian's `chromium` package");
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,1000".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        } } });
        let created = match agent.post(&format!("{base}/session")).send_json(capabilities) {
            Ok(response) => response.into_json::<Value>().unwrap(),
            Err(ureq::Error::Status(_, response)) => panic!("no Chromium session: {}", response.into_string().unwrap()),
            Err(e) => panic!("no Chromium session: {e}"),
        };
        let id = created["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session id: {created}"));
        Browser { driver, session: format!("{base}/session/{id}"), agent, _profile: profile }
    }

    /// A WebDriver command; its `value`.
    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let request = self.agent.request(method, &format!("{}{path}", self.session));
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match response {
            Ok(response) => response.into_json::<Value>().unwrap()["value"].take(),
            Err(ureq::Error::Status(_, response)) => {
                panic!("WebDriver {method} {path}: {}", response.into_string().unwrap())
            }
            Err(e) => panic!("WebDriver {method} {path}: {e}"),
        }
    }

    fn open(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page; what it returns.
    fn run(&self, script: &str, args: Value) -> Value {
        self.command("POST", "/execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// The element `css` selects; it must exist.
    fn element(&self, css: &str) -> String {
        let found = self.command("POST", "/element", Some(json!({ "using": "css selector", "value": css })));
        found[ELEMENT_KEY].as_str().unwrap_or_else(|| panic!("no element {css}: {found}")).to_string()
    }

    /// Clicks `css` as a user would (WebDriver's element click).
    fn click(&self, css: &str) {
        let element = self.element(css);
        self.command("POST", &format!("/element/{element}/click"), Some(json!({})));
    }

    /// Empties the field `css` and types `text` into it.
    fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css);
        self.command("POST", &format!("/element/{element}/clear"), Some(json!({})));
        self.command("POST", &format!("/element/{element}/value"), Some(json!({ "text": text })));
    }

    /// Waits until `script` returns `expected`, asking every 10 ms; how long it took.
    fn until(&self, script: &str, args: Value, expected: Value, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let got = self.run(script, args.clone());
            if got == expected {
                return started.elapsed();
            }
            assert!(started.elapsed() < within, "after {within:?}, `{script}` gives {got}, not {expected}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.session).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The host's events as the test's own server-sent-events connection
/// receives them, with the instant each arrived.
struct EventFeed(mpsc::Receiver<(Instant, Value)>);

impl EventFeed {
    /// Subscribes to `host`'s `GET /v1/events` (with `token`): every event
    /// from the response on.
    fn follow(host: &HttpHost, token: Option<&str>) -> EventFeed {
        let mut request = ureq::get(&format!("{}/v1/events", host.base));
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let mut events = BufReader::new(request.call().unwrap().into_reader());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            while events.read_line(&mut line).is_ok_and(|n| n > 0) {
                if let Some(data) = line.trim_end().strip_prefix("data: ") {
                    let event: Value = serde_json::from_str(data).unwrap();
                    if tx.send((Instant::now(), event)).is_err() {
                        return;
                    }
                }
                line.clear();
            }
        });
        EventFeed(rx)
    }

    /// Waits for the first event about `address` of kind `kind` whose
    /// fields include `fields`; when it arrived.
    fn wait_for(&self, address: &str, kind: &str, fields: Value) -> Instant {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, event) = self.0.recv_timeout(left).unwrap_or_else(|_| panic!("no `{kind}` event of `{address}`"));
            let matches = fields.as_object().unwrap().iter().all(|(k, v)| &event[k] == v);
            if event["address"] == address && event["event"] == kind && matches {
                return at;
            }
        }
    }
}

/// Opens the dashboard of `host` and waits until it follows the events.
fn open_dashboard(browser: &Browser, host: &HttpHost, hash: &str) {
    browser.open(&format!("{}/{hash}", host.base));
    browser.until("return document.getElementById('connection').dataset.state", json!([]), json!("live"), PATIENCE);
}

/// Does the tree have a node `address` and the table a row for it, both
/// showing `restarts`?
const SHOWS_ACTOR: &str = "
    const [address, restarts] = arguments;
    const node = document.querySelector(`#tree li[data-address='${address}']`);
    const cell = document.querySelector(`#actors tr[data-address='${address}'] td[data-col='restarts']`);
    return node !== null && node.dataset.restarts === restarts && cell !== null && cell.dataset.value === restarts;
";

#[test]
fn an_actor_spawned_crashed_and_restarted_shows_in_the_page_within_a_second_of_each_event() {
    let host = HttpHost::start("[actors.counter]\npath = {counter}\n", &[]);
    let browser = Browser::start();
    open_dashboard(&browser, &host, "");
    let events = EventFeed::follow(&host, None);

    let faulty = support::guest("faulty").display().to_string();
    let spawned = host.post("/v1/actors", json!({ "name": "flaky", "component": faulty }));
    assert_eq!(spawned.status, 201, "{}", spawned.body);
    let started = events.wait_for("flaky", "started", json!({ "incarnation": 1 }));
    browser.until(SHOWS_ACTOR, json!(["flaky", "0"]), json!(true), PATIENCE);
    let shown = started.elapsed();
    assert!(shown < SHOWN_WITHIN, "the spawned actor showed {shown:?} after its `started` event");

    let crashed = host.post("/v1/actors/flaky/call/panic", json!(["boom"]));
    assert_eq!(crashed.status, 500, "{}", crashed.body);
    let restarted = events.wait_for("flaky", "started", json!({ "incarnation": 2 }));
    browser.until(SHOWS_ACTOR, json!(["flaky", "1"]), json!(true), PATIENCE);
    let shown = restarted.elapsed();
    assert!(shown < SHOWN_WITHIN, "the restart showed {shown:?} after its `started` event");
    let listed = browser.run(
        "return [...document.querySelectorAll('#events li[data-address=flaky]')].map(li => li.dataset.event)",
        json!([]),
    );
    let listed: Vec<&str> = listed.as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert_eq!(listed, ["started", "restarting", "failed", "started"], "newest first");

    // The failed message shows in its component's chart, a rate derived
    // from `troupe_messages_total` read every second.
    let component = host.get("/v1/actors/flaky").json()["actor"]["component"].clone();
    browser.until(PEAK_RATE, json!([component, "errors"]), json!(true), PATIENCE);
}

/// Has the chart of a component (`arguments[0]`) shown a rate of
/// `arguments[1]` (`messages` or `errors`) above zero in its minute?
const PEAK_RATE: &str = "
    const [component, rate] = arguments;
    const chart = document.querySelector(`#charts figure[data-component='${component}']`);
    return chart !== null && Number(chart.getAttribute(`data-peak-${rate}-per-second`)) > 0;
";

/// The addresses of the table's rows, top to bottom, and their mailbox depths.
const ROWS: &str = "
    return [...document.querySelectorAll('#actors tbody tr')].map(tr =>
        [tr.dataset.address, Number(tr.querySelector(`td[data-col='mailbox']`).dataset.value)]);
";

#[test]
fn sorting_the_actor_table_by_mailbox_depth_orders_its_rows_by_depth() {
    let host = HttpHost::start("[actors.c-idle]\npath = {counter}\n", &[]);
    let faulty = support::guest("faulty").display().to_string();
    // Each busy actor is held by a long message, its tells queued behind
    // it: depths that stay put while the page is read.
    for (name, queued) in [("a-busy", 2), ("b-busier", 5)] {
        let limits = json!({ "deadline_ms": 120_000 });
        let spawned = host.post("/v1/actors", json!({ "name": name, "component": faulty, "limits": limits }));
        assert_eq!(spawned.status, 201, "{}", spawned.body);
        assert_eq!(host.post(&format!("/v1/actors/{name}/send/spin"), json!([])).status, 202);
        wait_for_depth(&host, name, 0);
        for _ in 0..queued {
            assert_eq!(host.post(&format!("/v1/actors/{name}/send/ping"), json!([])).status, 202);
        }
        wait_for_depth(&host, name, queued);
    }
    let spawned = host.post("/v1/actors", json!({ "name": "d-idle", "component": faulty }));
    assert_eq!(spawned.status, 201, "{}", spawned.body);

    let browser = Browser::start();
    open_dashboard(&browser, &host, "");
    let by_address = json!([["a-busy", 2], ["b-busier", 5], ["c-idle", 0], ["d-idle", 0]]);
    browser.click("th[data-sort='address']");
    browser.until(ROWS, json!([]), by_address, PATIENCE);

    browser.click("th[data-sort='mailbox']");
    let deepest_first = json!([["b-busier", 5], ["a-busy", 2], ["c-idle", 0], ["d-idle", 0]]);
    assert_eq!(browser.run(ROWS, json!([])), deepest_first);
    let sorted = "return document.querySelector(`th[data-sort='mailbox']`).getAttribute('aria-sort')";
    assert_eq!(browser.run(sorted, json!([])), json!("descending"));

    browser.click("th[data-sort='mailbox']");
    let shallowest_first = json!([["c-idle", 0], ["d-idle", 0], ["a-busy", 2], ["b-busier", 5]]);
    assert_eq!(browser.run(ROWS, json!([])), shallowest_first);
    assert_eq!(browser.run(sorted, json!([])), json!("ascending"));
}

/// Waits until `GET /v1/actors/{address}` reports `depth` messages queued.
fn wait_for_depth(host: &HttpHost, address: &str, depth: u64) {
    let deadline = Instant::now() + PATIENCE;
    while host.get(&format!("/v1/actors/{address}")).json()["actor"]["mailbox"] != depth {
        assert!(Instant::now() < deadline, "`{address}` never had {depth} messages queued");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The reply box: its HTTP status and its text, once it has an answer.
const REPLY: &str = "
    const reply = document.getElementById('call-reply');
    return ['', 'pending'].includes(reply.dataset.status) ? null : [reply.dataset.status, reply.textContent];
";

/// Picks `function` in the call form, gives `args` and asks; the answer.
fn ask_with_form(browser: &Browser, function: &str, args: &str) -> Value {
    browser.click(&format!("#call-function option[value='{function}']"));
    browser.type_into("#call-args", args);
    browser.click("#call-submit");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let reply = browser.run(REPLY, json!([]));
        if !reply.is_null() {
            return reply;
        }
        assert!(Instant::now() < deadline, "the call form never answered");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_call_form_asks_the_actor_and_shows_its_typed_reply() {
    let host = HttpHost::start("[actors.counter]\npath = {counter}\n", &[]);
    let browser = Browser::start();
    open_dashboard(&browser, &host, "#/actor/counter");
    let options = "return [...document.querySelectorAll('#call-function option')].map(o => o.textContent)";
    browser.until(options, json!([]), json!(["incr(by: u64) -> u64", "get() -> u64", "reset()"]), PATIENCE);
    let template = browser.run("return document.getElementById('call-args').value", json!([]));
    assert_eq!(template, json!(r#"{"by":0}"#), "the form starts from the first function's parameters");

    let incr = "example:counter/api@0.1.0.incr";
    assert_eq!(ask_with_form(&browser, incr, r#"{"by": 41}"#), json!(["200", "41"]));
    assert_eq!(ask_with_form(&browser, incr, "[1]"), json!(["200", "42"]));
    let ill_typed = ask_with_form(&browser, incr, r#"{"by": "many"}"#);
    assert_eq!(ill_typed[0], json!("400"), "{ill_typed}");
    assert!(ill_typed[1].as_str().unwrap().contains("incr(by: u64) -> u64"), "{ill_typed}");
    assert_eq!(ask_with_form(&browser, "example:counter/api@0.1.0.get", ""), json!(["200", "42"]));
    let wit = browser.run("return document.getElementById('actor-wit').textContent", json!([]));
    assert!(wit.as_str().unwrap().contains("incr: func(by: u64) -> u64;"), "{wit}");
    let component = host.get("/v1/actors/counter").json()["actor"]["component"].clone();
    browser.until(PEAK_RATE, json!([component, "messages"]), json!(true), PATIENCE);
}

#[test]
fn with_tokens_the_page_asks_for_one_and_calls_need_an_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = HttpHost::tokens_file(dir.path());
    let host = HttpHost::start("[actors.counter]\npath = {counter}\n", &["--http-tokens", &tokens]);
    let browser = Browser::start();
    browser.open(&format!("{}/#/actor/counter", host.base));
    let asking = "return !document.getElementById('token-form').hidden";
    browser.until(asking, json!([]), json!(true), PATIENCE);
    browser.type_into("#token-input", READ_TOKEN);
    browser.click("#token-save");
    browser.until("return document.getElementById('connection').dataset.state", json!([]), json!("live"), PATIENCE);
    let options = "return document.querySelectorAll('#call-function option').length";
    browser.until(options, json!([]), json!(3), PATIENCE);

    let incr = "example:counter/api@0.1.0.incr";
    let denied = ask_with_form(&browser, incr, "[5]");
    assert_eq!(denied[0], json!("denied"), "{denied}");
    assert_eq!(browser.run(asking, json!([])), json!(true), "the page asks for a wider token");
    let value = host.request("POST", "/v1/actors/counter/call/get", Some(ADMIN_TOKEN), None, "").json();
    assert_eq!(value, json!({ "result": 0 }), "the denied call did nothing");

    browser.type_into("#token-input", ADMIN_TOKEN);
    browser.click("#token-save");
    assert_eq!(ask_with_form(&browser, incr, "[5]"), json!(["200", "5"]));
    let badge = browser.run("return document.getElementById('connection').dataset.state", json!([]));
    assert_eq!(badge, json!("live"), "a refused call does not stop the page from following the host");
    let stored = browser.run("return [sessionStorage.getItem('troupe.token'), location.href]", json!([]));
    assert_eq!(stored, json!([ADMIN_TOKEN, format!("{}/#/actor/counter", host.base)]), "in the tab, not the URL");
}

#[test]
fn the_page_is_served_without_a_token_but_nothing_it_shows_is() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = HttpHost::tokens_file(dir.path());
    let host = HttpHost::start("[actors.counter]\npath = {counter}\n", &["--http-tokens", &tokens]);
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/dashboard/app.js", "text/javascript; charset=utf-8"),
        ("/dashboard/app.css", "text/css; charset=utf-8"),
    ] {
        let asset = host.get(path);
        assert_eq!((asset.status, asset.content_type.as_deref()), (200, Some(content_type)), "{path}");
    }
    assert!(host.get("/").body.contains("<script src=\"/dashboard/app.js\"></script>"));
    for path in ["/v1/tree", "/v1/actors", "/v1/actors/counter", "/v1/events", "/metrics"] {
        assert_eq!(host.get(path).status, 401, "{path}");
    }
    assert_eq!(host.get("/dashboard/other.js").status, 401, "only the assets are open");
}

#[test]
fn an_actors_endpoint_gives_its_wit_last_failure_and_recent_events() {
    let host = HttpHost::start("[actors.faulty]\npath = {faulty}\n", &[]);
    let events = EventFeed::follow(&host, None);
    assert_eq!(host.post("/v1/actors/faulty/call/panic", json!(["boom"])).status, 500);
    events.wait_for("faulty", "started", json!({ "incarnation": 2 }));
    assert_eq!(host.get("/v1/actors/faulty").json().get("wit"), None, "only when asked for");
    // The page's events are kept by a follower of the event bus of their
    // own, which may take the last event a moment after the feed did.
    let deadline = Instant::now() + Duration::from_secs(5);
    let page = loop {
        let page = host.get("/v1/actors/faulty?wit=true").json();
        if page["events"].as_array().is_some_and(|e| e.len() >= 3) || Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(page["wit"].as_str().unwrap().contains("panic: func(message: string);"), "{page}");
    let failure = &page["actor"]["last_failure"];
    assert_eq!(failure["kind"], json!("panic"));
    assert!(failure["stderr"].as_str().unwrap().contains("boom"), "{failure}");
    assert!(!failure["backtrace"].as_array().unwrap().is_empty(), "{failure}");
    let kinds: Vec<&str> = page["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["failed", "restarting", "started"], "oldest first, since the gateway started");
}
