//! The `troupe` binary: every command, `--json`, one-line errors and exit
//! codes, against a real host process.

use std::io::{BufRead as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support;

/// A `troupe run` process on a private control socket, killed on drop.
pub(crate) struct HostProcess {
    child: Child,
    control: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl HostProcess {
    fn start(manifest: Option<&Path>) -> HostProcess {
        Self::start_with(manifest, &[])
    }

    fn start_with(manifest: Option<&Path>, flags: &[&str]) -> HostProcess {
        Self::start_in_env(manifest, flags, &[])
    }

    /// [`HostProcess::start_with`], with `env` set in the host's environment.
    pub(crate) fn start_in_env(manifest: Option<&Path>, flags: &[&str], env: &[(&str, &str)]) -> HostProcess {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("host.log");
        let control = dir.path().join("control.sock");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_troupe"));
        cmd.arg("run").arg("--control").arg(&control);
        if !flags.contains(&"--max-actors") {
            cmd.arg("--max-actors").arg("100");
        }
        cmd.arg("--cache-dir").arg(support::target_dir().join("troupe-test-cache"));
        // A store of its own, never the user's default one.
        cmd.arg("--data-dir").arg(dir.path().join("data"));
        cmd.args(flags).envs(env.iter().copied());
        if let Some(m) = manifest {
            cmd.arg(m);
        }
        let stderr = std::fs::File::create(&log).unwrap();
        let child = cmd.stdout(Stdio::null()).stderr(stderr).spawn().expect("troupe runs");
        let host = HostProcess { child, control, log, _dir: dir };
        host.wait_ready();
        host
    }

    /// What the host has logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.control).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the host did not open its control socket within 60 s");
    }

    fn troupe(&self, args: &[&str]) -> Output {
        troupe_at(&self.control, args)
    }

    /// Runs a command that must succeed; returns its stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.troupe(args);
        assert!(out.status.success(), "`troupe {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns (exit code, stderr).
    fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.troupe(args);
        assert!(!out.status.success(), "`troupe {}` should fail", args.join(" "));
        (out.status.code().unwrap_or(-1), String::from_utf8(out.stderr).unwrap())
    }

    /// `troupe --json events`, its output piped.
    fn events(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_troupe"))
            .args(["--json", "--control"])
            .arg(&self.control)
            .arg("events")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        serde_json::from_str(&self.ok(&full)).expect("--json prints JSON")
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn troupe_at(control: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_troupe")).arg("--control").arg(control).args(args).output().expect("troupe runs")
}

fn guest(name: &str) -> String {
    support::guest(name).display().to_string()
}

#[test]
fn spawn_call_send_ps_and_stop_round_trip() {
    let host = HostProcess::start(None);
    let counter = guest("counter");
    let out = host.ok(&["spawn", "c", &counter, "--config", "start=40", "--memory", "16MiB"]);
    assert!(out.starts_with("spawned c (counter "), "{out}");
    assert_eq!(host.ok(&["call", "c", "incr(1)"]), "41\n");
    assert_eq!(host.ok(&["send", "c", "incr(1)"]), "");
    assert_eq!(host.ok(&["call", "c", "get()"]), "42\n");
    assert_eq!(host.ok(&["call", "c", "reset()"]), "", "no result prints nothing");

    let ps = host.ok(&["ps"]);
    assert!(ps.lines().next().unwrap().starts_with("ADDRESS"), "{ps}");
    assert!(ps.contains("c ") && ps.contains("running"), "{ps}");
    assert!(ps.contains("1 actors, 0 dead letters"), "{ps}");

    assert_eq!(host.ok(&["stop", "c"]), "stopped c\n");
    assert!(host.ok(&["ps"]).contains("0 actors"));
}

#[test]
fn hosts_in_every_batch_delivery_mode_serve_calls_alike() {
    for mode in ["off", "registers", "all"] {
        let host = HostProcess::start_with(None, &["--batch-delivery", mode]);
        host.ok(&["spawn", "p", &guest("probe")]);
        assert_eq!(host.ok(&["send", "p", r#"remember("a")"#]), "", "{mode}");
        assert_eq!(host.ok(&["call", "p", r#"remember("b")"#]), "", "{mode}");
        assert_eq!(host.ok(&["call", "p", "remembered()"]), "[\"a\", \"b\"]\n", "{mode}");
        // One message at a time from the CLI: nothing queues to batch.
        assert_eq!(host.json(&["ps"])["actors"][0]["batched"], 0, "{mode}");
    }
    let out =
        Command::new(env!("CARGO_BIN_EXE_troupe")).args(["run", "--batch-delivery", "sometimes"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sometimes") && err.contains("registers"), "names the value and the choices: {err}");
}

#[test]
fn json_output_is_machine_readable() {
    let host = HostProcess::start(None);
    let spawned = host.json(&["spawn", "c", &guest("counter")]);
    assert_eq!(spawned["address"], "c");
    assert_eq!(spawned["component"], "counter");
    assert_eq!(spawned["hash"].as_str().unwrap().len(), 12);
    assert_eq!(host.json(&["call", "c", "incr(5)"])["result"], "5");
    assert_eq!(host.json(&["call", "c", "reset()"])["result"], Value::Null);
    assert_eq!(host.json(&["send", "c", "incr(1)"])["queued"], true);
    let ps = host.json(&["ps"]);
    let actor = &ps["actors"][0];
    assert_eq!(actor["address"], "c");
    assert_eq!(actor["status"], "running");
    assert!(actor["memory"].as_u64().unwrap() > 0);
    assert_eq!(host.json(&["stop", "c"])["stopped"], true);

    let out = host.troupe(&["--json", "call", "c", "get()"]);
    assert_eq!(out.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&out.stderr).expect("errors are JSON with --json");
    assert_eq!(err["error"]["code"], "unknown-address");
}

#[test]
fn bad_input_gets_a_one_line_error_and_a_nonzero_exit() {
    let host = HostProcess::start(None);
    host.ok(&["spawn", "c", &guest("counter")]);
    // (arguments, exit code, what the error must say). Exit code 2 is a
    // malformed command line, caught before the host is asked.
    let cases: &[(&[&str], i32, &str)] = &[
        (&["call", "nobody", "get()"], 1, "no actor at `nobody`"),
        (&["call", "c", "incr(\"x\")"], 1, "ill-typed message for `incr(by: u64) -> u64`"),
        (&["call", "c", "incr(1, 2)"], 1, "ill-typed message for `incr(by: u64) -> u64`"),
        (&["call", "c", "decr(1)"], 1, "unknown function `decr`; the actor accepts: incr(by: u64) -> u64"),
        (&["call", "c", "incr(1"], 1, "malformed message `incr(1`"),
        (&["send", "c", "get"], 1, "malformed message `get`"),
        (&["spawn", "d", "/no/such/file.wasm"], 1, "cannot read component `/no/such/file.wasm`"),
        (&["spawn", "c", &guest("counter")], 1, "the address `c` is already taken"),
        (&["spawn", "d", &guest("counter"), "--mailbox", "0"], 1, "invalid limit `mailbox`"),
        (&["spawn", "bad name", &guest("counter")], 1, "invalid actor name"),
        (&["spawn", "d", &guest("counter"), "--memory", "1TiB"], 2, "unknown size unit"),
        (&["spawn", "d", &guest("counter"), "--fuel", "-5"], 2, "unexpected argument '-5'"),
        (&["call", "c"], 2, "MESSAGE"),
        (&["swap", "c", &guest("counter"), "--cluster"], 1, "this host is not part of a cluster; start it with"),
        (&["ps", "--cluster"], 1, "this host is not part of a cluster; start it with"),
    ];
    for (args, expected_code, expected) in cases {
        let (code, stderr) = host.fails(args);
        assert_eq!(code, *expected_code, "`troupe {}`: {stderr}", args.join(" "));
        assert!(stderr.contains(expected), "`troupe {}` said: {stderr}", args.join(" "));
        if code == 1 {
            assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        }
    }
    // The host is unaffected.
    assert_eq!(host.ok(&["call", "c", "incr(2)"]), "2\n");
}

#[test]
fn no_running_host_is_exit_code_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = troupe_at(&dir.path().join("none.sock"), &["ps"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no troupe host is running"));
}

#[test]
fn a_second_host_on_the_same_socket_is_refused() {
    let host = HostProcess::start(None);
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .arg("run")
        .arg("--control")
        .arg(&host.control)
        .env("XDG_STATE_HOME", state.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another troupe host is already running"));
    assert!(host.ok(&["ps"]).contains("0 actors"), "the first host still answers");
}

#[test]
fn a_broken_manifest_fails_the_run_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.toml");
    std::fs::write(&manifest, "[actors.c]\npath = \"counter.wasm\"\nlimits = { mailbox = -1 }\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .args(["run", "--control"])
        .arg(dir.path().join("c.sock"))
        .arg(&manifest)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:3:", manifest.display())), "{stderr}");
}

#[test]
fn full_mailbox_is_reported_to_the_cli() {
    let host = HostProcess::start(None);
    host.ok(&["spawn", "f", &guest("faulty"), "--mailbox", "1", "--deadline", "2000"]);
    host.ok(&["send", "f", "spin()"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while host.json(&["ps"])["actors"][0]["mailbox"] != 0 {
        assert!(Instant::now() < deadline, "the actor takes the spin message");
        std::thread::sleep(Duration::from_millis(10));
    }
    host.ok(&["send", "f", "ping()"]);
    let (code, stderr) = host.fails(&["send", "f", "ping()"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("mailbox of `f` is full"), "{stderr}");
}

#[test]
fn a_memory_bomb_stops_at_its_limit_and_host_memory_stays_bounded() {
    let host = HostProcess::start(None);
    host.ok(&["spawn", "f", &guest("faulty"), "--memory", "32MiB"]);
    host.ok(&["spawn", "c", &guest("counter")]);
    let before = host.rss_kib();
    for _ in 0..3 {
        let (code, stderr) = host.fails(&["call", "f", "bomb(1000)"]);
        assert_eq!(code, 1);
        assert!(stderr.contains("memory limit exceeded"), "{stderr}");
    }
    let after = host.rss_kib();
    assert!(after < before + 48 * 1024, "host RSS grew from {before} KiB to {after} KiB");
    assert_eq!(host.ok(&["call", "f", "ping()"]), "1\n");
    assert_eq!(host.ok(&["call", "c", "incr(1)"]), "1\n");
}

#[test]
fn a_manifest_actor_hibernates_when_idle_and_a_call_wakes_it() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("sleepy.toml");
    let text =
        format!("[actors.sleepy]\npath = {:?}\nhibernate-after-ms = 50\nconfig = {{ start = 3 }}\n", guest("counter"));
    std::fs::write(&manifest, text).unwrap();
    let host = HostProcess::start(Some(&manifest));
    let status = || host.json(&["ps"])["actors"][0]["status"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while status() != "hibernating" {
        assert!(Instant::now() < deadline, "still {} after 10 s", status());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(host.json(&["ps"])["actors"][0]["memory"], 0);

    let mut events = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .arg("--control")
        .arg(&host.control)
        .arg("events")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufRead::lines(std::io::BufReader::new(events.stdout.take().unwrap()));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || lines.map_while(Result::ok).try_for_each(|l| tx.send(l)));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(host.ok(&["call", "sleepy", "incr(1)"]), "4\n", "woken with the state it slept with");
    // It wakes for the call, then sleeps again 50 ms later.
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("hibernating (snapshot of 8 bytes)")) {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no hibernation event; saw {seen:?}"),
        }
    }
    assert!(seen.iter().any(|l| l.contains("sleepy") && l.contains("woke from hibernation")), "{seen:?}");
    let _ = events.kill();
    let _ = events.wait();
}

#[test]
fn run_starts_a_manifest_and_stops_cleanly_on_interrupt() {
    support::guest("counter");
    let demo = support::workspace().join("examples-guests/demo.toml");
    let mut host = HostProcess::start(Some(&demo));
    let ps = host.json(&["ps"]);
    let addresses: Vec<&str> =
        ps["actors"].as_array().unwrap().iter().map(|a| a["address"].as_str().unwrap()).collect();
    assert_eq!(addresses, ["counter", "room", "faulty"]);
    assert_eq!(ps["actors"][0]["version"], "0.1.0");
    assert_eq!(host.ok(&["call", "counter", "get()"]), "100\n");

    let status = Command::new("kill").args(["-INT", &host.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = host.child.wait().unwrap();
    assert!(exit.success(), "Ctrl-C is a clean stop: {exit}");
    assert!(!host.control.exists(), "the control socket is removed");
}

#[test]
fn inspect_shows_the_protocol_in_wit() {
    let counter = guest("counter");
    let out = Command::new(env!("CARGO_BIN_EXE_troupe")).args(["inspect", &counter]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("example:counter/api@0.1.0 [protocol]"), "{text}");
    assert!(text.contains("incr: func(by: u64) -> u64"), "{text}");
    assert!(text.contains("troupe:actor/persistence@0.2.0 [persistence]"), "{text}");
    assert!(text.contains("interface api {"), "the WIT is printed: {text}");

    let out = Command::new(env!("CARGO_BIN_EXE_troupe")).args(["--json", "inspect", &counter]).output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["exports"][0]["name"], "example:counter/api@0.1.0");
    assert_eq!(json["problems"], Value::Array(vec![]));
}

#[test]
fn inspect_names_the_functions_whose_queued_tells_go_several_per_call() {
    let batched = |guest_name: &str, key: &str| -> Vec<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_troupe")).args(["--json", "inspect", &guest(guest_name)]).output();
        let json: Value = serde_json::from_slice(&out.unwrap().stdout).unwrap();
        json[key].as_array().unwrap().iter().map(|b| b[0].as_str().unwrap().to_string()).collect()
    };
    let faulty = |f: &str| format!("example:faulty/api@0.1.0.{f}");
    // Numbers travel in registers; strings in the adapter's memory, with
    // `--batch-delivery all`.
    let registers = batched("faulty", "batched");
    let memory = batched("faulty", "batched_in_memory");
    for f in ["spin", "bomb", "recurse", "ping"] {
        assert!(registers.contains(&faulty(f)) && !memory.contains(&faulty(f)), "{f}: {registers:?}");
    }
    for f in ["panic", "echo", "big-reply"] {
        assert!(memory.contains(&faulty(f)) && !registers.contains(&faulty(f)), "{f}: {memory:?}");
    }
    // An `option` argument travels in memory too, and so does a result
    // without arguments (for which the adapter has scratch space).
    let probe = |f: &str| format!("example:probe/api@0.1.0.{f}");
    let probe_memory = batched("probe", "batched_in_memory");
    for f in ["spawn-child", "whoami", "remembered"] {
        assert!(probe_memory.contains(&probe(f)), "{f}: {probe_memory:?}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_troupe")).args(["inspect", &guest("faulty")]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("queued tells delivered several per call:\n  example:faulty/api@0.1.0.spin: up to 15"),
        "{text}"
    );
    assert!(text.contains("--batch-delivery all` (arguments in memory):\n  example:faulty/api@0.1.0.panic"), "{text}");
    // Functions of plain numbers take a single message through a typed
    // call; ones with strings, and the rest of `--batch-delivery all`, do not.
    let out = Command::new(env!("CARGO_BIN_EXE_troupe")).args(["--json", "inspect", &guest("faulty")]).output();
    let json: Value = serde_json::from_slice(&out.unwrap().stdout).unwrap();
    let typed: Vec<&str> = json["typed"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    let expected: Vec<String> = ["spin", "bomb", "recurse", "ping", "work"].map(faulty).into();
    assert_eq!(typed, expected);
    assert!(text.contains("typed entry point (no `Val` conversion):\n  example:faulty/api@0.1.0.spin"), "{text}");
}

#[test]
fn inspect_and_spawn_refuse_what_is_not_a_component() {
    let host = HostProcess::start(None);
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, wat::parse_str("(module (func (export \"f\")))").unwrap()).unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"definitely not wasm").unwrap();
    let truncated = dir.path().join("truncated.wasm");
    let bytes = std::fs::read(support::guest("counter")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();

    for (file, expected) in [
        (&core, "core WebAssembly module, not a component"),
        (&junk, "not a valid WebAssembly component"),
        (&truncated, "not a valid WebAssembly component"),
    ] {
        let file = file.display().to_string();
        let (code, stderr) = host.fails(&["spawn", "x", &file]);
        assert_eq!(code, 1);
        assert!(stderr.contains(expected), "spawn {file}: {stderr}");
        let out = Command::new(env!("CARGO_BIN_EXE_troupe")).args(["inspect", &file]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains(expected), "inspect {file}");
    }
    assert!(host.ok(&["ps"]).contains("0 actors"), "the host is unaffected");
}

#[test]
fn spawn_of_a_component_whose_memory_starts_above_the_ceiling_names_the_flag_that_raises_it() {
    let host = HostProcess::start_with(None, &["--max-memory", "64MiB"]);
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.wasm");
    // A valid component whose only memory starts at 16384 pages: 1 GiB.
    let wat = r#"(component
                   (core module $m (memory 16384) (func (export "f")))
                   (core instance $i (instantiate $m))
                   (func $f (canon lift (core func $i "f")))
                   (instance $api (export "f" (func $f)))
                   (export "acme:big/api" (instance $api)))"#;
    std::fs::write(&big, wat::parse_str(wat).unwrap()).unwrap();
    let big = big.display().to_string();
    let (code, stderr) = host.fails(&["spawn", "big", &big]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: {big} starts with a linear memory of 1073741824 bytes, more than this host's ceiling of \
             67108864 bytes for any one memory; run the host with `troupe run --max-memory 1GiB` or more \
             (`EngineConfig::max_memory_bytes`), and give its actors a `memory` limit as large"
        )
    );
    let out = host.troupe(&["--json", "spawn", "big", &big]);
    assert_eq!(out.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&out.stderr).expect("errors are JSON with --json");
    assert_eq!(err["error"]["code"], "load-failed");
    assert!(host.ok(&["ps"]).contains("0 actors"), "the host is unaffected");
}

#[test]
fn guest_output_and_logs_reach_the_host_log_only_when_granted() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.toml");
    let probe = guest("probe");
    std::fs::write(
        &manifest,
        format!("[actors.loud]\npath = {probe:?}\ngrants = {{ stdio = true }}\n\n[actors.quiet]\npath = {probe:?}\n"),
    )
    .unwrap();
    let mut host = HostProcess::start(Some(&manifest));
    host.ok(&["call", "loud", "print(\"printed-by-loud\")"]);
    host.ok(&["call", "quiet", "print(\"printed-by-quiet\")"]);
    host.ok(&["call", "quiet", "log(\"logged-by-quiet\")"]);
    Command::new("kill").args(["-INT", &host.child.id().to_string()]).status().unwrap();
    host.child.wait().unwrap();
    let log = std::fs::read_to_string(&host.log).unwrap();
    let line = log.lines().find(|l| l.contains("printed-by-loud")).expect("granted stdout is forwarded");
    assert!(line.contains("actor=loud") && line.contains("stream=\"stdout\""), "{line}");
    assert!(!log.contains("printed-by-quiet"), "ungranted stdout is discarded");
    let line = log.lines().find(|l| l.contains("logged-by-quiet")).expect("troupe logging needs no grant");
    assert!(line.contains("actor=quiet"), "{line}");
}

#[test]
fn supervise_spawn_under_tree_and_events() {
    let host = HostProcess::start(None);
    assert_eq!(
        host.ok(&["supervise", "sup", "--strategy", "one-for-all", "--intensity", "3"]),
        "supervisor sup started\n"
    );
    host.ok(&["spawn", "a", &guest("faulty"), "--supervisor", "sup"]);
    host.ok(&["spawn", "b", &guest("faulty"), "--supervisor", "sup", "--restart", "transient"]);
    let (code, stderr) = host.fails(&["spawn", "x", &guest("faulty"), "--supervisor", "nope"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no supervisor named `nope`"), "{stderr}");

    // Stream events while a child fails.
    let mut events = host.events();
    std::thread::sleep(Duration::from_millis(300));
    host.fails(&["call", "a", "panic(\"boom\")"]);
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(events.stdout.take().unwrap()));
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        seen.push((event["address"].as_str().unwrap().to_string(), event["event"].as_str().unwrap().to_string()));
        if seen.iter().filter(|(_, e)| e == "started").count() == 2 {
            break;
        }
    }
    let _ = events.kill();
    let _ = events.wait();
    assert_eq!(seen[0], ("a".to_string(), "failed".to_string()), "{seen:?}");
    assert!(seen.contains(&("b".to_string(), "terminated".to_string())), "one-for-all: {seen:?}");

    let tree = host.ok(&["tree"]);
    assert!(tree.starts_with("root [one-for-one"), "{tree}");
    assert!(tree.contains("└─ sup [one-for-all, 1 restarts of 3 per 10000 ms, running]"), "{tree}");
    assert!(tree.contains("   ├─ a (faulty, running, permanent, 1 restarts, last failure: panic)"), "{tree}");
    assert!(tree.contains("   └─ b (faulty, running, transient, 1 restarts)"), "{tree}");
    let json = host.json(&["tree"]);
    assert_eq!(json["nodes"][0]["address"], "sup");
    assert_eq!(json["nodes"][0]["nodes"][1]["restart"], "transient");

    assert_eq!(host.ok(&["stop", "sup"]), "stopped sup\n");
    assert!(host.ok(&["ps"]).contains("0 actors"));
}

/// CPU time (user + system) the host process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_crash_loop_under_backoff_uses_little_cpu() {
    let host = HostProcess::start(None);
    host.ok(&["supervise", "loop", "--intensity", "1000", "--period", "60000"]);
    host.ok(&["spawn", "f", &guest("faulty"), "--supervisor", "loop", "--mailbox", "1000"]);
    for _ in 0..200 {
        host.ok(&["send", "f", "panic(\"again\")"]);
    }
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(host.child.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(host.child.id()) - before;
    // Clock ticks are 1/100 s: 2 s at 20% of one core is 40 ticks.
    assert!(used < 40, "the crash loop used {used} ticks of CPU in 2 s");
    let ps = host.json(&["ps"]);
    assert!(ps["actors"][0]["mailbox"].as_u64().unwrap() > 150, "the loop is throttled, not drained");
}

#[test]
fn swap_from_the_cli_reports_old_new_pause_and_state() {
    let host = HostProcess::start(None);
    host.ok(&["spawn", "c", &guest("counter")]);
    host.ok(&["call", "c", "incr(41)"]);
    let out = host.ok(&["swap", "c", &guest("counter-v2"), "--new-version", "2.0.0", "--probation", "100"]);
    assert!(out.starts_with("c: counter ("), "{out}");
    assert!(out.contains("-> counter 2.0.0 ("), "{out}");
    assert!(out.contains("state: 8 bytes restored from `counter/1`"), "{out}");
    assert!(out.contains("paused ") && out.contains("passed 100 ms probation"), "{out}");
    assert_eq!(host.ok(&["call", "c", "get()"]), "41\n");
    let ps = host.json(&["ps"]);
    assert_eq!(ps["actors"][0]["version"], "2.0.0");

    let (code, stderr) = host.fails(&["swap", "c", &guest("counter-narrow")]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("not compatible") && stderr.contains("+ example:counter/api@0.1.0.incr(by: u32)"),
        "{stderr}"
    );
    let (_, stderr) = host.fails(&["--json", "swap", "c", &guest("counter-v2-broken-restore")]);
    let err: Value = serde_json::from_str(stderr.trim()).unwrap();
    assert_eq!(err["error"]["code"], "start-failed");
    assert_eq!(host.ok(&["call", "c", "get()"]), "41\n", "still serving after both refusals");
}

#[test]
fn run_watch_swaps_a_rebuilt_component_in() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("counter.wasm");
    std::fs::copy(guest("counter"), &wasm).unwrap();
    let manifest = dir.path().join("app.toml");
    std::fs::write(&manifest, "[actors.c]\npath = \"counter.wasm\"\n").unwrap();
    let mut host = {
        let control = dir.path().join("control.sock");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_troupe"));
        cmd.arg("run").arg("--watch").arg("--control").arg(&control).arg(&manifest);
        cmd.arg("--cache-dir").arg(support::target_dir().join("troupe-test-cache"));
        cmd.arg("--data-dir").arg(dir.path().join("data"));
        let log = dir.path().join("host.log");
        let child = cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
        let host = HostProcess { child, control, log, _dir: tempfile::tempdir().unwrap() };
        host.wait_ready();
        host
    };
    host.ok(&["call", "c", "incr(5)"]);
    let before = host.json(&["ps"])["actors"][0]["hash"].as_str().unwrap().to_string();
    // A rebuild lands: write it aside and rename it into place, as build tools do.
    let staged = dir.path().join("counter.wasm.tmp");
    std::fs::copy(guest("counter-v2"), &staged).unwrap();
    std::fs::rename(&staged, &wasm).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while host.json(&["ps"])["actors"][0]["hash"].as_str().unwrap() == before {
        assert!(Instant::now() < deadline, "the change was not picked up");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(host.ok(&["call", "c", "get()"]), "5\n", "the state came along");
    assert_eq!(host.ok(&["call", "c", "increments()"]), "0\n", "and the new code runs");
    let _ = host.child.kill();
}

#[test]
fn the_control_socket_is_owner_only_in_a_private_directory() {
    use std::os::unix::fs::PermissionsExt;
    let host = HostProcess::start(None);
    let mode = std::fs::metadata(&host.control).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the socket is owner-only");

    // The default location: $XDG_RUNTIME_DIR/troupe, created owner-only...
    let runtime = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .arg("run")
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("XDG_STATE_HOME", runtime.path())
        .env_remove("TROUPE_CONTROL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = runtime.path().join("troupe/control.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the default socket appears");
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir_mode = std::fs::metadata(runtime.path().join("troupe")).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    let _ = child.kill();
    let _ = child.wait();

    // ...and refused if someone made it accessible to others.
    let shared = tempfile::tempdir().unwrap();
    std::fs::create_dir(shared.path().join("troupe")).unwrap();
    std::fs::set_permissions(shared.path().join("troupe"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .arg("run")
        .env("XDG_RUNTIME_DIR", shared.path())
        .env("XDG_STATE_HOME", shared.path())
        .env_remove("TROUPE_CONTROL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mode 0777") && stderr.contains("must belong to you with mode 0700"), "{stderr}");
}

/// When the reader of a command's stdout goes away.
#[derive(Clone, Copy)]
enum ReaderLeaves {
    /// Before the command starts: the pipe has no reader from the outset.
    AtOnce,
    /// After reading this many bytes.
    After(usize),
    /// After reading the first line.
    AfterTheFirstLine,
}

/// How a command ended: its status, its stderr, and how long after its
/// reader left.
struct Ended {
    status: ExitStatus,
    stderr: String,
    after: Duration,
}

/// Runs `troupe ARGS` against `control` with its stdout piped to a reader
/// that leaves as `leaves` says, closing the pipe, and waits for the
/// command to end; fails if it has not within five seconds of that.
fn with_a_reader_that_leaves(control: &Path, args: &[&str], leaves: ReaderLeaves) -> Ended {
    let (reader, writer) = std::io::pipe().unwrap();
    let reader = match leaves {
        // Closed before the command can write anything: no race to lose.
        ReaderLeaves::AtOnce => {
            drop(reader);
            None
        }
        _ => Some(std::io::BufReader::new(reader)),
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .arg("--control")
        .arg(control)
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(mut reader) = reader {
        if let ReaderLeaves::After(bytes) = leaves {
            reader.read_exact(&mut vec![0; bytes]).unwrap();
        } else {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.ends_with('\n'), "`troupe {}` printed a line first: {line:?}", args.join(" "));
        }
    }
    let (status, after) = wait_for_the_end(&mut child, &args.join(" "));
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    Ended { status, stderr, after }
}

/// Waits for `troupe WHAT`, whose reader has just gone away, to end:
/// returns its status and how long that took; fails after five seconds.
fn wait_for_the_end(child: &mut Child, what: &str) -> (ExitStatus, Duration) {
    let left = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, left.elapsed());
        }
        if left.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`troupe {what}` still runs 5 s after its reader went away");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The documented end of a command whose reader went away: what `ls | head`
/// does to `ls` — killed by SIGPIPE (status 141 in a shell), no panic, no
/// backtrace, nothing at all on stderr.
fn assert_ended_quietly_by_sigpipe(args: &[&str], Ended { status, stderr, .. }: &Ended) {
    use std::os::unix::process::ExitStatusExt as _;
    let command = args.join(" ");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "`troupe {command}` panicked: {stderr}");
    assert_eq!(stderr, "", "`troupe {command}` says nothing on stderr");
    assert_eq!(status.signal(), Some(13), "`troupe {command}` ends by SIGPIPE, as coreutils tools do: {status}");
}

#[test]
fn a_reader_that_leaves_mid_output_ends_the_command_quietly() {
    // More actors than fit in a pipe (64 KiB) as `ps` lines or as JSON, so
    // that the command is still writing when its reader leaves.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("many.toml");
    let text =
        format!("[actors.c]\npath = {:?}\ninstances = 1000\nlimits = {{ memory = \"4MiB\" }}\n", guest("counter"));
    std::fs::write(&manifest, text).unwrap();
    let host = HostProcess::start_with(Some(&manifest), &["--max-actors", "1000", "--max-memory", "8MiB"]);
    for args in [&["--json", "ps"][..], &["ps"], &["--json", "tree"]] {
        let size = host.ok(args).len();
        assert!(size > 80 * 1024, "`troupe {}` prints {size} bytes, more than a pipe holds", args.join(" "));
        assert_ended_quietly_by_sigpipe(
            args,
            &with_a_reader_that_leaves(&host.control, args, ReaderLeaves::After(100)),
        );
    }
}

#[test]
fn a_reader_gone_before_the_first_byte_ends_every_command_quietly() {
    let host = HostProcess::start(None);
    let counter = guest("counter");
    host.ok(&["spawn", "c", &counter]);
    let commands: &[&[&str]] = &[
        &["spawn", "d", &counter],
        &["call", "c", "incr(1)"],
        &["ps"],
        &["--json", "ps"],
        &["tree"],
        &["supervise", "s"],
        &["stop", "d"],
        &["inspect", &counter],
        &["--json", "inspect", &counter],
    ];
    for args in commands {
        assert_ended_quietly_by_sigpipe(args, &with_a_reader_that_leaves(&host.control, args, ReaderLeaves::AtOnce));
    }
    // What the commands were to do was done all the same.
    assert_eq!(host.ok(&["call", "c", "get()"]), "1\n");
    let tree = host.ok(&["tree"]);
    assert!(tree.contains("s [one-for-one") && !tree.contains(" d ("), "{tree}");
}

#[test]
fn events_ends_as_soon_as_its_reader_goes_away_even_with_no_event_to_write() {
    let host = HostProcess::start(None);
    // Gone before anything happened: nothing is ever written.
    let args = ["events"];
    assert_ended_quietly_by_sigpipe(&args, &with_a_reader_that_leaves(&host.control, &args, ReaderLeaves::AtOnce));

    // Gone after the first event, with no event after it: a spawn half a
    // second in (and again every 3 s until one is seen, should `events` not
    // have subscribed in time).
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawner = {
        let (control, counter, seen) = (host.control.clone(), guest("counter"), seen.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            for i in 0..10 {
                assert!(troupe_at(&control, &["spawn", &format!("c{i}"), &counter]).status.success());
                let next = Instant::now() + Duration::from_secs(3);
                while Instant::now() < next {
                    if seen.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        })
    };
    let args = ["--json", "events"];
    let ended = with_a_reader_that_leaves(&host.control, &args, ReaderLeaves::AfterTheFirstLine);
    seen.store(true, std::sync::atomic::Ordering::SeqCst);
    spawner.join().unwrap();
    assert_ended_quietly_by_sigpipe(&args, &ended);
    assert!(
        ended.after < Duration::from_secs(2),
        "ended {:?} after its reader left, before any further event",
        ended.after
    );
}

#[test]
fn a_host_with_no_reader_for_its_banner_stops_cleanly_and_quietly() {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.sock");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .args(["run", "--control"])
        .arg(&control)
        .arg("--cache-dir")
        .arg(support::target_dir().join("troupe-test-cache"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, _) = wait_for_the_end(&mut child, "run");
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("host stopped"), "the actors were stopped first: {log}");
    assert!(!control.exists(), "the control socket is removed");
    assert_eq!(status.signal(), Some(13), "ends by SIGPIPE, as every command does: {status}");
}

/// Issue 21: a panic's message reaches whoever looks at the failure: the
/// caller's error, `last_failure` in `ps --json`, and the `failed` event,
/// although the actor was granted no stdio.
#[test]
fn a_panic_message_reaches_the_caller_ps_and_the_failed_event() {
    let host = HostProcess::start(None);
    host.ok(&["spawn", "f", &guest("faulty")]);
    let mut events = host.events();
    std::thread::sleep(Duration::from_millis(300));

    let (code, stderr) = host.fails(&["call", "f", "panic(\"boom\")"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("panic") && stderr.contains("boom"), "the caller sees the message: {stderr}");

    let ps = host.json(&["ps"]);
    let last = &ps["actors"][0]["last_failure"];
    assert_eq!(last["kind"], "panic", "{ps}");
    assert!(last["stderr"].as_str().is_some_and(|s| s.contains("boom")), "ps shows it: {last}");

    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(events.stdout.take().unwrap()));
    let failed = lines
        .by_ref()
        .map(|line| serde_json::from_str::<Value>(&line.unwrap()).unwrap())
        .find(|event| event["event"] == "failed")
        .expect("a failed event");
    let _ = events.kill();
    let _ = events.wait();
    assert!(failed["stderr"].as_str().is_some_and(|s| s.contains("boom")), "the event carries it: {failed}");
}

/// A loopback HTTP server answering `200 hello` to every request, on a
/// thread; returns its port and the paths requested.
fn hello_server() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let paths = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = paths.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            seen.lock().unwrap().push(line.split_whitespace().nth(1).unwrap_or("").to_string());
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello");
        }
    });
    (port, paths)
}

#[test]
fn spawn_allow_http_grants_outbound_http_and_a_denial_is_logged_with_actor_and_url() {
    let (port, paths) = hello_server();
    let host = HostProcess::start(None);
    let fetcher = guest("fetcher");
    let (code, stderr) = host.fails(&["spawn", "nogrant", &fetcher]);
    assert_eq!(code, 1);
    assert!(stderr.contains("has no `http` grant") && stderr.contains("--allow-http"), "{stderr}");
    let pattern = format!("http://127.0.0.1:{port}/docs/*");
    host.ok(&["spawn", "f", &fetcher, "--allow-http", &pattern, "--http-max-concurrent", "4"]);
    let allowed = format!("get(\"http://127.0.0.1:{port}/docs/a\")");
    assert_eq!(host.ok(&["call", "f", &allowed]).trim(), r#"ok("200 hello")"#);
    let denied_url = format!("http://127.0.0.1:{port}/secret");
    let denied = format!("get({denied_url:?})");
    assert_eq!(host.ok(&["call", "f", &denied]).trim(), r#"err("HTTP-request-denied")"#);
    assert_eq!(*paths.lock().unwrap(), ["/docs/a"], "the denied request never left the host");
    let log = std::fs::read_to_string(&host.log).unwrap();
    let line = log.lines().find(|l| l.contains("outbound HTTP request denied")).expect("the denial is logged");
    assert!(line.contains("actor=f") && line.contains(&denied_url), "{line}");
    let ps = host.json(&["ps"]);
    let f = ps["actors"].as_array().unwrap().iter().find(|a| a["address"] == "f").unwrap();
    assert_eq!(f["http"]["allow"][0]["url"], pattern.as_str());
    assert_eq!(f["http"]["limits"]["max-concurrent"], 4);
}
