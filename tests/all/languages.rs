//! Actors written in JavaScript, Python and C (`examples-guests/{js,python,c}`,
//! built by `scripts/build-guests all`): each language's counter behaves
//! like the Rust one, relays in JavaScript and Python talk to actors in every
//! language through `troupe:actor/host`, and `inspect` describes them all.
//!
//! The JavaScript and Python components embed their language's engine (12
//! and 18 MB); they are compiled once per test run (see [`built`]) and loaded
//! from the compile cache after that.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use troupe::actor::{SwapError, SwapOptions};
use troupe::inspect::{ComponentDescription, inspect};
use troupe::{ActorLimits, ActorTemplate, CallError, FailureKind, Host, RestartFrom, SpawnError};

use crate::support::{self, ask};

/// A guest language other than Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Language {
    JavaScript,
    Python,
    C,
}

use Language::{C, JavaScript, Python};

impl Language {
    const ALL: [Language; 3] = [JavaScript, Python, C];

    /// The suffix of its example components: `counter-js`, ...
    fn suffix(self) -> &'static str {
        match self {
            JavaScript => "js",
            Python => "py",
            C => "c",
        }
    }

    /// Its build script, `scripts/build-guests-LANG`.
    fn script(self) -> PathBuf {
        let lang = match self {
            JavaScript => "js",
            Python => "python",
            C => "c",
        };
        support::workspace().join(format!("scripts/build-guests-{lang}"))
    }

    /// The example `name` (`counter`, `relay`) in this language.
    fn example(self, name: &str) -> String {
        format!("{name}-{}", self.suffix())
    }
}

/// The example components of the other languages, one compile each.
const EXAMPLES: [&str; 5] = ["counter-js", "counter-py", "counter-c", "relay-js", "relay-py"];

/// Examples of other languages that other modules run (`outbound.rs`),
/// compiled into the cache with the others.
const OTHER_EXAMPLES: [&str; 2] = ["weather-js", "weather-py"];

/// Builds every language's example guests once per test run with
/// `scripts/build-guests all`, then compiles each one into the shared
/// compile cache, one at a time, so that tests running in parallel do not
/// all compile the same large component at once.
fn built() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        // The Rust guests first, through the shared harness, so that they are
        // never built by two scripts at once.
        support::guest("counter");
        let out = Command::new(support::workspace().join("scripts/build-guests"))
            .arg("all")
            .env("CARGO_TARGET_DIR", support::target_dir())
            .output()
            .map_err(|e| format!("cannot run scripts/build-guests all: {e}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            // The scripts end with a line naming the tool that failed and why.
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            return Err(format!(
                "`scripts/build-guests all` failed ({}): a JavaScript, Python or C toolchain could not be installed \
                 or a guest did not build:\n{}",
                out.status, tail
            ));
        }
        eprint!("{log}");
        let host = support::host();
        for name in EXAMPLES.iter().chain(&OTHER_EXAMPLES) {
            host.load(name, &build_path(name), None).map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn build_path(name: &str) -> PathBuf {
    support::workspace().join("examples-guests/build").join(format!("{name}.wasm"))
}

/// The example component `name` (e.g. `counter-py`, or a Rust guest such as
/// `counter`), built.
fn guest(name: &str) -> PathBuf {
    built();
    let path = build_path(name);
    assert!(path.is_file(), "{name} was not built at {}", path.display());
    path
}

/// Loads example `name` into `host` and defines it under `name`.
pub(crate) fn define(host: &Host, name: &str) -> ActorTemplate {
    let component = host.load(name, &guest(name), None).expect("example guest loads");
    let entry = ActorTemplate::new(component);
    host.define(name, entry.clone());
    entry
}

/// Spawns example `name` at `address` with `config`.
async fn spawn(host: &Host, name: &str, address: &str, config: &[(&str, &str)]) -> troupe::ActorRef {
    let mut entry = define(host, name);
    entry.policy.config = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    host.spawn(entry.spec(address.into())).await.unwrap_or_else(|e| panic!("{name} starts: {e}"))
}

#[tokio::test]
async fn counters_in_every_language_answer_typed_calls() {
    let host = support::host();
    for lang in Language::ALL {
        let name = lang.example("counter");
        spawn(&host, &name, &name, &[]).await;
        assert_eq!(ask(&host, &name, "incr(5)").await.unwrap(), "5", "{lang:?}");
        assert_eq!(ask(&host, &name, "incr(2)").await.unwrap(), "7", "{lang:?}");
        assert_eq!(ask(&host, &name, "get()").await.unwrap(), "7", "{lang:?}");
        assert_eq!(ask(&host, &name, "reset()").await.unwrap(), "", "{lang:?}: no result");
        assert_eq!(ask(&host, &name, "get()").await.unwrap(), "0", "{lang:?}");
        // The protocol is the component's WIT, whatever the language.
        let err = ask(&host, &name, r#"incr("five")"#).await.unwrap_err();
        assert!(err.to_string().contains("ill-typed message for `incr(by: u64) -> u64`"), "{lang:?}: {err}");
    }
}

#[tokio::test]
async fn queued_tells_reach_counters_in_every_language_several_per_call() {
    let host = support::host();
    for lang in Language::ALL {
        let name = lang.example("counter");
        let counter = spawn(&host, &name, &name, &[]).await;
        // Queued together: the test's runtime has one thread, and the
        // actor runs only once the test awaits.
        for by in 1..=30 {
            host.tell(&name, &format!("incr({by})")).unwrap();
        }
        assert_eq!(ask(&host, &name, "get()").await.unwrap(), "465", "{lang:?}");
        let info = counter.info();
        assert!(info.batched >= 15, "{lang:?}: the component got batch entry points: {info:?}");
    }
}

/// The failure of starting example `name` with config `start = value`.
async fn start_failure(host: &Host, name: &str, value: &str) -> troupe::Failure {
    let mut entry = define(host, name);
    entry.policy.config = vec![("start".into(), value.into())];
    match host.spawn(entry.spec(format!("{name}-bad").into())).await {
        Err(SpawnError::Start { failure, .. }) => failure,
        Err(e) => panic!("{name} with start = {value:?}: expected a start failure, got {e}"),
        Ok(_) => panic!("{name} started with start = {value:?}"),
    }
}

#[tokio::test]
async fn init_takes_the_start_value_from_config_in_every_language() {
    let host = support::host();
    for lang in Language::ALL {
        let name = lang.example("counter");
        spawn(&host, &name, &format!("{name}-40"), &[("start", "40")]).await;
        assert_eq!(ask(&host, &format!("{name}-40"), "get()").await.unwrap(), "40", "{lang:?}");
        let max = u64::MAX.to_string();
        spawn(&host, &name, &format!("{name}-max"), &[("start", &max)]).await;
        assert_eq!(ask(&host, &format!("{name}-max"), "get()").await.unwrap(), max, "{lang:?}");
    }
    // A bad start fails `init` with the very error the Rust counter gives
    // (Rust's own u64 parser's messages).
    for bad in ["x", "-1", "+", "", " 1", "18446744073709551616", "99999999999999999999x", "a\"b\\c"] {
        let rust = start_failure(&host, "counter", bad).await;
        assert_eq!(rust.kind, FailureKind::Init);
        assert!(rust.detail.starts_with("config `start` = "), "{}", rust.detail);
        for lang in Language::ALL {
            let failure = start_failure(&host, &lang.example("counter"), bad).await;
            assert_eq!((failure.kind, &failure.detail), (FailureKind::Init, &rust.detail), "{lang:?}, start = {bad:?}");
        }
    }
}

#[tokio::test]
async fn overflow_traps_and_the_actor_restarts_fresh_in_every_language() {
    for lang in Language::ALL {
        // A host per language: the root supervisor's restart intensity is
        // shared by all its children.
        let host = support::host();
        let name = lang.example("counter");
        let counter = spawn(&host, &name, &name, &[("start", "10")]).await;
        assert_eq!(ask(&host, &name, "incr(5)").await.unwrap(), "15", "{lang:?}");
        let err = ask(&host, &name, &format!("incr({})", u64::MAX)).await.unwrap_err();
        let CallError::ActorFailed { failure, .. } = &err else { panic!("{lang:?}: expected a failure: {err}") };
        assert_eq!(failure.kind, FailureKind::Panic, "{lang:?}: {failure:?}");
        assert_eq!(ask(&host, &name, "get()").await.unwrap(), "10", "{lang:?}: a fresh init");
        assert_eq!((counter.info().failures, counter.info().restarts), (1, 1), "{lang:?}");
    }
}

#[tokio::test]
async fn restart_from_snapshot_keeps_the_value_in_every_language() {
    for lang in Language::ALL {
        // A host per language: the root supervisor's restart intensity is
        // shared by all its children.
        let host = support::host();
        let name = lang.example("counter");
        let mut entry = define(&host, &name);
        entry.policy.restore = RestartFrom::Snapshot;
        entry.policy.config = vec![("start".into(), "10".into())];
        let counter = host.spawn(entry.spec(name.clone().into())).await.unwrap();
        assert_eq!(ask(&host, &name, "incr(5)").await.unwrap(), "15", "{lang:?}");
        ask(&host, &name, &format!("incr({})", u64::MAX)).await.unwrap_err();
        assert_eq!(ask(&host, &name, "get()").await.unwrap(), "15", "{lang:?}: restored from its snapshot");
        // Large values survive the 8-byte little-endian encoding.
        let big = (u64::MAX - 15).to_string();
        assert_eq!(ask(&host, &name, &format!("incr({big})")).await.unwrap(), u64::MAX.to_string(), "{lang:?}");
        ask(&host, &name, "incr(1)").await.unwrap_err();
        assert_eq!(ask(&host, &name, "get()").await.unwrap(), u64::MAX.to_string(), "{lang:?}");
        assert_eq!(counter.info().restarts, 2, "{lang:?}");
    }
}

/// `restore` refuses state written in a layout it does not know, with the
/// same error as the Rust counter: here `counter/2` state from counter-v2,
/// forced in by a swap, which then keeps the old code running.
#[tokio::test]
async fn restore_refuses_an_unknown_state_version_in_every_language() {
    let host = support::host();
    support::spawn(&host, "counter-v2", "v2", ActorLimits::default()).await;
    assert_eq!(ask(&host, "v2", "incr(5)").await.unwrap(), "5");
    let options = SwapOptions { force: true, probation: Duration::from_millis(100) };
    let mut refusals = Vec::new();
    for name in ["counter".to_string()].into_iter().chain(Language::ALL.map(|lang| lang.example("counter"))) {
        let component = host.load(&name, &guest(&name), None).unwrap();
        let err = host.swap("v2", component, options).await.unwrap_err();
        let SwapError::Start { failure, .. } = err else { panic!("{name}: expected a start failure, got {err}") };
        assert_eq!(failure.kind, FailureKind::Restore, "{name}");
        refusals.push((name, failure.detail));
        assert_eq!(ask(&host, "v2", "get()").await.unwrap(), "5", "the old code runs on");
    }
    let rust = refusals[0].1.clone();
    assert!(rust.contains("unknown state version `counter/2`"), "{rust}");
    for (name, detail) in &refusals[1..] {
        assert_eq!(detail, &rust, "{name}");
    }
}

/// Issue 21: an uncaught JavaScript or Python exception prints its message
/// to stderr; the failure report carries it, as it does a Rust panic's.
#[tokio::test]
async fn an_uncaught_exception_message_reaches_the_caller() {
    let host = support::host();
    for name in ["relay-js", "relay-py"] {
        spawn(&host, name, name, &[]).await;
        let err = ask(&host, name, r#"crash("the reactor is on fire")"#).await.unwrap_err();
        let CallError::ActorFailed { failure, .. } = &err else { panic!("{name}: expected a failure, got {err:?}") };
        let stderr = failure.stderr.as_deref().unwrap_or_default();
        assert!(stderr.contains("the reactor is on fire"), "{name}: {failure}");
        assert_eq!(ask(&host, name, "forwarded()").await.unwrap(), "0", "{name} answers again");
    }
}

/// The actors of the polyglot demo (`examples-guests/polyglot.toml`):
/// counters in four languages, relays in two, and the Rust probe.
async fn polyglot() -> Host {
    let host = support::host();
    spawn(&host, "counter", "counter-rust", &[("start", "100")]).await;
    for name in EXAMPLES {
        spawn(&host, name, name, &[]).await;
    }
    support::spawn(&host, "probe", "probe", ActorLimits::default()).await;
    host
}

#[tokio::test]
async fn actors_in_four_languages_exchange_typed_messages() {
    let host = polyglot().await;
    // One hop: JavaScript asks Python, Python asks C.
    assert_eq!(ask(&host, "relay-js", r#"forward("counter-py", 5)"#).await.unwrap(), "ok(5)");
    assert_eq!(ask(&host, "relay-py", r#"forward("counter-c", 3)"#).await.unwrap(), "ok(3)");
    // Two hops: JavaScript asks Python, which asks Rust; Python asks
    // JavaScript, which asks C.
    assert_eq!(ask(&host, "relay-js", r#"route(["relay-py", "counter-rust"], 2)"#).await.unwrap(), "ok(102)");
    assert_eq!(ask(&host, "relay-py", r#"route(["relay-js", "counter-c"], 4)"#).await.unwrap(), "ok(7)");
    // Rust asks JavaScript; Rust asks Python, which asks JavaScript, which
    // asks JavaScript.
    assert_eq!(ask(&host, "probe", r#"relay("counter-js", "incr(2)", 5000)"#).await.unwrap(), r#"ok("2")"#);
    assert_eq!(
        ask(&host, "probe", r#"relay("relay-py", "route([\"relay-js\", \"counter-js\"], 1)", 5000)"#).await.unwrap(),
        r#"ok("ok(3)")"#
    );
    // A tell: queued before the relay answers, so handled before the next ask.
    assert_eq!(ask(&host, "relay-py", r#"notify("counter-js", 10)"#).await.unwrap(), "ok");

    for (counter, value) in [("counter-rust", 102), ("counter-js", 13), ("counter-py", 5), ("counter-c", 7)] {
        assert_eq!(ask(&host, counter, "get()").await.unwrap(), value.to_string(), "{counter}");
    }
    // relay-js: forward, route, route (as the middle hop), route (from the probe).
    assert_eq!(ask(&host, "relay-js", "forwarded()").await.unwrap(), "4");
    // relay-py: route (as the middle hop), forward, route, route (from the probe), notify.
    assert_eq!(ask(&host, "relay-py", "forwarded()").await.unwrap(), "5");
    assert_eq!(host.dead_letters(), 0);
}

#[tokio::test]
async fn relays_report_host_errors_alike_in_both_languages() {
    let host = polyglot().await;
    for relay in ["relay-js", "relay-py"] {
        let other = if relay == "relay-js" { "relay-py" } else { "relay-js" };
        let cases = [
            (r#"forward("nobody", 1)"#.to_string(), r#"err("ask `nobody` failed: unknown-address(\"nobody\")")"#),
            (r#"notify("nobody", 1)"#.to_string(), r#"err("tell `nobody` failed: unknown-address(\"nobody\")")"#),
            ("route([], 1)".to_string(), r#"err("no hops")"#),
            // An error further down the route comes back unchanged.
            (
                format!(r#"route(["{other}", "nobody"], 1)"#),
                r#"err("ask `nobody` failed: unknown-address(\"nobody\")")"#,
            ),
            // An actor without `incr` refuses the message.
            (r#"forward("probe", 1)"#.to_string(), "err(\"ask `probe` failed: bad-message("),
        ];
        for (message, expected) in &cases {
            let reply = ask(&host, relay, message).await.unwrap();
            assert!(reply.starts_with(expected), "{relay} {message}: {reply}");
        }
        // A -> B -> A is refused at once, as a cycle.
        let reply = ask(&host, relay, &format!(r#"route(["{other}", "{relay}", "counter-c"], 1)"#)).await.unwrap();
        assert_eq!(
            reply,
            format!(r#"err("ask `{relay}` failed: cycle([\"{relay}\", \"{other}\", \"{relay}\"])")"#),
            "{relay}"
        );
        // The receiver failing is an error to the relay, not a failure of it.
        ask(&host, "counter-c", "incr(1)").await.unwrap();
        let reply = ask(&host, relay, &format!(r#"forward("counter-c", {})"#, u64::MAX)).await.unwrap();
        assert!(reply.starts_with(r#"err("ask `counter-c` failed: actor-failed(\"panic: "#), "{relay}: {reply}");
    }
    let relays: Vec<_> = host.actors().into_iter().filter(|a| a.address.as_str().starts_with("relay-")).collect();
    assert!(relays.iter().all(|a| a.failures == 0), "{relays:?}");
}

#[tokio::test]
async fn the_polyglot_manifest_runs_the_documented_calls() {
    built();
    let host = support::host();
    let manifest = troupe::manifest::Manifest::load(&support::workspace().join("examples-guests/polyglot.toml"))
        .expect("examples-guests/polyglot.toml is valid");
    let started = manifest.apply(&host).await.expect("the polyglot manifest starts");
    let started: Vec<&str> = started.iter().map(|a| a.as_str()).collect();
    assert_eq!(started, ["counter-rust", "counter-js", "counter-py", "counter-c", "relay-js", "relay-py", "probe"]);
    // The calls its comments (and the README) suggest.
    assert_eq!(ask(&host, "relay-js", r#"route(["relay-py", "counter-c"], 5)"#).await.unwrap(), "ok(5)");
    assert_eq!(ask(&host, "relay-py", r#"route(["relay-js", "counter-rust"], 1)"#).await.unwrap(), "ok(101)");
    assert_eq!(ask(&host, "probe", r#"relay("counter-js", "incr(2)", 1000)"#).await.unwrap(), r#"ok("2")"#);
}

/// `name` described by `troupe inspect`.
fn describe(path: &Path) -> ComponentDescription {
    inspect(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn inspect_describes_counters_in_every_language() {
    for lang in Language::ALL {
        let description = describe(&guest(&lang.example("counter")));
        let protocols: Vec<&str> =
            description.exports.iter().filter(|e| e.role == "protocol").map(|e| e.name.as_str()).collect();
        assert_eq!(protocols, ["example:counter/api@0.1.0"], "{lang:?}");
        if lang == Python {
            // componentize-py leaves the interface it initialises the
            // interpreter through at build time exported: not protocol.
            assert!(description.exports.iter().any(|e| e.name == "exports" && e.role == "toolchain"));
        }
        let api = description.exports.iter().find(|e| e.name == "example:counter/api@0.1.0").unwrap();
        assert_eq!(api.functions, ["incr: func(by: u64) -> u64", "get: func() -> u64", "reset: func()"], "{lang:?}");
        for (export, role) in
            [("troupe:actor/lifecycle@0.2.0", "lifecycle"), ("troupe:actor/persistence@0.2.0", "persistence")]
        {
            assert!(description.exports.iter().any(|e| e.name == export && e.role == role), "{lang:?}: {export}");
        }
        assert!(description.imports.iter().any(|i| i.name == "troupe:actor/host@0.2.0"), "{lang:?}");
        // Everything else it imports is WASI 0.2, which the host provides.
        for import in &description.imports {
            assert!(import.role == "wasi" || import.name.starts_with("troupe:actor/"), "{lang:?}: {}", import.name);
        }
        assert_eq!(description.problems, Vec::<String>::new(), "{lang:?}");
        let batched: Vec<(&str, usize)> = description.batched.iter().map(|(f, n)| (f.as_str(), *n)).collect();
        assert_eq!(
            batched,
            [
                ("example:counter/api@0.1.0.incr", 15),
                ("example:counter/api@0.1.0.get", 15),
                ("example:counter/api@0.1.0.reset", 15)
            ],
            "{lang:?}"
        );
        assert!(description.wit.contains("export example:counter/api@0.1.0;"), "{lang:?}: {}", description.wit);
    }
}

/// Builds `source` (an actor in `lang` targeting the world
/// `example:bare/bare`, which exports `lifecycle` and no protocol) with the
/// language's build script.
fn build_bare(lang: Language, source: &str, dir: &Path) -> PathBuf {
    built();
    let wit = dir.join("wit");
    std::fs::create_dir_all(&wit).unwrap();
    std::fs::write(
        wit.join("bare.wit"),
        "package example:bare@0.1.0;\n\nworld bare {\n    export troupe:actor/lifecycle@0.2.0;\n}\n",
    )
    .unwrap();
    let ext = match lang {
        JavaScript => "js",
        Python => "py",
        C => "c",
    };
    let app = dir.join(format!("bare.{ext}"));
    std::fs::write(&app, source).unwrap();
    let out = dir.join(format!("bare-{}.wasm", lang.suffix()));
    let status = Command::new(lang.script())
        .arg(&app)
        .arg(&wit)
        .arg("example:bare/bare")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", lang.script().display()));
    assert!(status.success(), "{} failed ({status}); see its output above", lang.script().display());
    out
}

#[tokio::test]
async fn a_component_without_a_protocol_export_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let sources = [
        (JavaScript, "export const lifecycle = { init(config) {} };\n"),
        (
            C,
            "#include \"bare.h\"\n\nbool exports_troupe_actor_lifecycle_init(exports_troupe_actor_lifecycle_properties_t *config, \
             bare_string_t *err) {\n    (void)err;\n    exports_troupe_actor_lifecycle_properties_free(config);\n    \
             return true;\n}\n",
        ),
    ];
    for (lang, source) in sources {
        let bare = build_bare(lang, source, &dir.path().join(lang.suffix()));
        let description = describe(&bare);
        assert_eq!(
            description.problems,
            ["it exports no interface, so it has no message protocol (add `export my-protocol;` to its world)"],
            "{lang:?}"
        );
        if lang == C {
            // Loading compiles it first: cheap for C, tens of seconds for the others.
            let host = support::host();
            let err = host.load("bare", &bare, None).unwrap_err();
            assert!(err.to_string().contains("exports no interface"), "{err}");
        }
    }
}

/// Measures what each language costs: component size, compile time (no
/// cache), start time (instantiate and `init`), memory, the round trip of
/// one typed ask, and of an ask that a relay passes on. Run with
/// `cargo test -p troupe --test all languages::costs -- --ignored --nocapture`;
/// numbers from the debug test binary (optimized wasmtime) on a shared machine
/// are rough.
#[tokio::test]
#[ignore = "a measurement, not a check: prints each language's costs"]
async fn costs() {
    let mut engine = troupe::EngineConfig::new();
    engine.max_instances(20).cache_dir(None);
    let host = Host::new(troupe::HostConfig { engine, ..Default::default() }).unwrap();
    println!("{:<12} {:>10} {:>10} {:>9} {:>9} {:>10}", "component", "size", "compile", "start", "memory", "per ask");
    let mut counters = vec![("counter".to_string(), support::guest("counter"))];
    counters.extend(Language::ALL.map(|lang| {
        let name = lang.example("counter");
        let path = guest(&name);
        (name, path)
    }));
    for (name, path) in counters {
        let size = std::fs::metadata(&path).unwrap().len();
        let started = Instant::now();
        let component = host.load(&name, &path, None).unwrap();
        let compile = started.elapsed();
        let started = Instant::now();
        let actor = host.spawn(ActorTemplate::new(component).spec(name.clone().into())).await.unwrap();
        let start = started.elapsed();
        for _ in 0..100 {
            ask(&host, &name, "incr(1)").await.unwrap();
        }
        let rounds = 2000u32;
        let started = Instant::now();
        for _ in 0..rounds {
            host.ask(&name, "incr(1)", Duration::from_secs(5)).await.unwrap();
        }
        let per_ask = started.elapsed() / rounds;
        println!(
            "{name:<12} {:>7.1} KB {:>8.2} s {:>6.1} ms {:>5.1} MiB {:>7.1} µs",
            size as f64 / 1e3,
            compile.as_secs_f64(),
            start.as_secs_f64() * 1e3,
            actor.info().memory_peak as f64 / f64::from(1 << 20),
            per_ask.as_secs_f64() * 1e6
        );
    }
    // One hop more: the relay's own handling plus its ask of the C counter.
    for relay in ["relay-js", "relay-py"] {
        let component = host.load(relay, &guest(relay), None).unwrap();
        host.spawn(ActorTemplate::new(component).spec(relay.into())).await.unwrap();
        let rounds = 1000u32;
        let started = Instant::now();
        for _ in 0..rounds {
            host.ask(relay, r#"forward("counter-c", 1)"#, Duration::from_secs(5)).await.unwrap();
        }
        println!("{relay}: forward to counter-c {:.1} µs per ask", (started.elapsed() / rounds).as_secs_f64() * 1e6);
    }
}

/// The counters agree on their snapshot encoding (`counter/1`: the value as
/// 8 little-endian bytes), so a running counter can be hot-swapped from one
/// language to another and keep its value.
#[tokio::test]
async fn a_counter_is_hot_swapped_across_languages_keeping_its_value() {
    let host = support::host();
    let rust = host.load("counter", &support::guest("counter"), Some("rust".into())).unwrap();
    let mut entry = ActorTemplate::new(rust.clone());
    entry.policy.limits.memory = 64 << 20;
    host.spawn(entry.spec("c".into())).await.unwrap();
    assert_eq!(ask(&host, "c", "incr(5)").await.unwrap(), "5");
    let options = SwapOptions { force: false, probation: Duration::from_millis(50) };
    let mut expected = 5;
    for lang in [JavaScript, Python, C] {
        let code = host.load("counter", &guest(&lang.example("counter")), Some(lang.suffix().into())).unwrap();
        let report = host.swap("c", code, options).await.unwrap_or_else(|e| panic!("to {lang:?}: {e}"));
        assert_eq!(
            report.state,
            troupe::actor::StateTransfer::Restored { bytes: 8, from_version: "counter/1".into() },
            "{lang:?}"
        );
        assert_eq!(report.new.version.as_deref(), Some(lang.suffix()));
        expected += 1;
        assert_eq!(ask(&host, "c", "incr(1)").await.unwrap(), expected.to_string(), "{lang:?} kept the value");
    }
    host.swap("c", rust, options).await.expect("and back to Rust");
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), expected.to_string());
}

#[tokio::test]
async fn batch_entry_points_keep_components_of_every_language_valid() {
    // The relays take strings: with entry points in memory too.
    for name in ["counter-js", "counter-py", "counter-c", "relay-js", "relay-py"] {
        let bytes = std::fs::read(guest(name)).unwrap();
        troupe::fuzzing::batch_entries(&bytes);
    }
}

#[tokio::test]
async fn relays_in_javascript_and_python_take_string_arguments_several_per_call() {
    let host = support::host_batching(troupe::BatchDelivery::All);
    spawn(&host, "counter", "c", &[]).await;
    for relay in ["relay-js", "relay-py"] {
        let actor = spawn(&host, relay, relay, &[]).await;
        // `notify(to, by)` tells `to` to `incr(by)`.
        for by in 1..=10 {
            host.tell(relay, &format!(r#"notify("c", {by})"#)).unwrap();
        }
        ask(&host, relay, "forwarded()").await.unwrap();
        assert!(actor.info().batched >= 9, "{relay}: {:?}", actor.info());
    }
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), (2 * 55).to_string());
}
