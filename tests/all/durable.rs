//! Durable actors, against the real binary and real store files: what is
//! acknowledged survives `kill -9`, exactly once, and so does the actor
//! itself, whether the manifest or a run-time spawn started it.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support;

/// A `troupe run` process on a data directory that outlives it.
pub(crate) struct DurableHost {
    child: Child,
    pub(crate) control: PathBuf,
}

impl DurableHost {
    /// Starts a host on `dir` (its control socket and `dir/data`), with
    /// `manifest` if given.
    pub(crate) fn start(dir: &Path, manifest: Option<&Path>) -> DurableHost {
        Self::start_with(dir, manifest, 100)
    }

    /// [`DurableHost::start`], for up to `max_actors` actors. It returns
    /// once the control socket is bound: before the host has recovered its
    /// durable actors, which it does before it answers.
    pub(crate) fn start_with(dir: &Path, manifest: Option<&Path>, max_actors: u32) -> DurableHost {
        Self::launch(dir, manifest, max_actors, &[])
    }

    /// [`DurableHost::start_with`], with a small page cache for its store:
    /// the host's resident memory then follows what it holds, not how much
    /// of its store it has read lately.
    pub(crate) fn start_for_memory(dir: &Path, manifest: Option<&Path>, max_actors: u32) -> DurableHost {
        Self::launch(dir, manifest, max_actors, &["--store-cache", "2MiB"])
    }

    fn launch(dir: &Path, manifest: Option<&Path>, max_actors: u32, extra: &[&str]) -> DurableHost {
        let control = dir.join("control.sock");
        let _ = std::fs::remove_file(&control);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_troupe"));
        cmd.arg("run").arg("--control").arg(&control).arg("--data-dir").arg(dir.join("data"));
        cmd.arg("--max-actors").arg(max_actors.to_string());
        // Instance slots for at most a thousand awake at once: more actors
        // than that take turns (hibernation frees slots).
        cmd.arg("--max-instances").arg(max_actors.min(1_000).to_string());
        cmd.arg("--cache-dir").arg(support::target_dir().join("troupe-test-cache"));
        if let Some(m) = manifest {
            cmd.arg(m);
        }
        cmd.args(extra);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("host.log")).unwrap();
        let child = cmd.stdout(Stdio::null()).stderr(log).spawn().expect("troupe runs");
        let host = DurableHost { child, control };
        let deadline = Instant::now() + Duration::from_secs(60);
        while UnixStream::connect(&host.control).is_err() {
            assert!(Instant::now() < deadline, "the host did not open its control socket within 60 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        host
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A connection to its control socket.
    pub(crate) fn connect(&self) -> Control {
        let stream = UnixStream::connect(&self.control).expect("the host listens");
        Control { reader: BufReader::new(stream.try_clone().unwrap()), writer: stream }
    }

    /// `kill -TERM`, and waits for the host to stop as it does on it.
    pub(crate) fn terminate(mut self) {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success(), "kill -TERM");
        let exited = self.child.wait().unwrap();
        assert!(exited.success(), "a host stopped by SIGTERM exits cleanly: {exited}");
    }

    /// `kill -9`: no shutdown, no flush, nothing but what is on disk.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for DurableHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One connection to a host's control socket: a JSON request per line,
/// a JSON response per line.
pub(crate) struct Control {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Control {
    /// The response to `request`: `Ok(ok)` or `Err(error)`.
    pub(crate) fn request(&mut self, request: Value) -> Result<Value, Value> {
        let mut line = serde_json::to_vec(&request).unwrap();
        line.push(b'\n');
        self.writer.write_all(&line).map_err(|e| json!({ "io": e.to_string() }))?;
        let mut answer = String::new();
        match self.reader.read_line(&mut answer) {
            Ok(n) if n > 0 => {}
            Ok(_) => return Err(json!({ "io": "closed" })),
            Err(e) => return Err(json!({ "io": e.to_string() })),
        }
        let response: Value = serde_json::from_str(&answer).unwrap();
        match response.get("error") {
            Some(error) if !error.is_null() => Err(error.clone()),
            _ => Ok(response["ok"].clone()),
        }
    }

    pub(crate) fn spawn_durable(&mut self, name: &str, guest: &str) -> Result<Value, Value> {
        let path = support::guest(guest);
        self.request(json!({ "op": "spawn", "name": name, "path": path, "durable": true }))
    }

    /// A durable forwarder at `name` that tells `to` on every `forward`.
    fn spawn_forwarder(&mut self, name: &str, to: &str) -> Result<Value, Value> {
        let path = support::guest("forwarder");
        self.request(json!({ "op": "spawn", "name": name, "path": path, "durable": true, "config": [["to", to]] }))
    }

    pub(crate) fn send(&mut self, address: &str, message: &str) -> Result<Value, Value> {
        self.request(json!({ "op": "send", "address": address, "message": message }))
    }

    pub(crate) fn call(&mut self, address: &str, message: &str) -> Result<Value, Value> {
        self.request(json!({ "op": "call", "address": address, "message": message, "timeout_ms": 10_000 }))
    }

    /// The counter's value.
    pub(crate) fn count(&mut self, address: &str) -> u64 {
        let reply = self.call(address, "get()").unwrap_or_else(|e| panic!("get() on `{address}`: {e}"));
        reply["result"].as_str().unwrap().parse().unwrap()
    }
}

/// A host in this process whose store is on `disk` (a fault-injecting
/// one) in the data directory `dir`.
pub(crate) fn host_on_disk(disk: &troupe::store::faulty::FaultyDisk, dir: &Path) -> troupe::Host {
    use std::sync::Arc;
    use troupe::actor::durable::Journal;
    use troupe::store::{DataDir, DurableStore, RedbStore, Store};

    let store: Arc<dyn Store> = Arc::new(RedbStore::open_on(disk.clone()).unwrap());
    let journal: Arc<dyn Journal> = Arc::new(DurableStore::on(store, DataDir::open(dir).unwrap()));
    // A small instance pool: several such hosts share this process's
    // memory mappings with the other tests'.
    let mut engine = troupe::EngineConfig::new();
    engine.max_instances(16).cache_dir(Some(support::target_dir().join("troupe-test-cache")));
    troupe::Host::new(troupe::HostConfig { engine, journal: Some(journal), ..Default::default() }).unwrap()
}

/// Spawns a durable actor `name` of the example guest `guest` on `host`.
pub(crate) async fn spawn_durable_in(host: &troupe::Host, name: &str, guest: &str, config: &[(&str, &str)]) {
    let mut durable = support::define(host, guest);
    durable.policy.durability = troupe::actor::durable::Durability::Durable;
    durable.policy.config = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    host.spawn(durable.spec(name.into())).await.unwrap();
}

#[test]
fn acknowledged_tells_and_asks_survive_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = DurableHost::start(dir.path(), None);
    host.connect().spawn_durable("c", "counter").unwrap();
    let mut acknowledged = 0;
    for round in 0..4 {
        // Tells and asks, each acknowledged before the next, then kill -9
        // at once: the last tells are durable but likely not yet handled.
        let mut control = host.connect();
        for i in 0..40 {
            if i % 4 == 3 {
                control.call("c", "incr(1)").unwrap();
            } else {
                control.send("c", "incr(1)").unwrap();
            }
            acknowledged += 1;
        }
        host.kill();
        host = DurableHost::start(dir.path(), None);
        assert_eq!(host.connect().count("c"), acknowledged, "round {round}: every acknowledged message, once");
    }
}

#[test]
fn a_crash_under_concurrent_load_keeps_every_acknowledged_tell_and_invents_none() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = DurableHost::start(dir.path(), None);
    host.connect().spawn_durable("c", "counter").unwrap();
    let (mut acknowledged, mut attempted) = (0u64, 0u64);
    for round in 0..3 {
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let mut control = host.connect();
                std::thread::spawn(move || {
                    let (mut ok, mut tried) = (0u64, 0u64);
                    loop {
                        tried += 1;
                        match control.send("c", "incr(1)") {
                            Ok(_) => ok += 1,
                            // The host was killed under us.
                            Err(_) => return (ok, tried),
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + 100 * round));
        host.kill();
        for client in clients {
            let (ok, tried) = client.join().unwrap();
            acknowledged += ok;
            attempted += tried;
        }
        host = DurableHost::start(dir.path(), None);
        let count = host.connect().count("c");
        assert!(acknowledged > 0, "the clients got some tells in");
        assert!(
            (acknowledged..=attempted).contains(&count),
            "round {round}: {count} applied, {acknowledged} acknowledged, {attempted} attempted"
        );
        // What was in flight may or may not have been applied: start the
        // next round from what was.
        acknowledged = count;
        attempted = count;
    }
}

#[test]
fn a_durable_actor_from_the_manifest_comes_back_with_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.toml");
    let counter = support::guest("counter");
    std::fs::write(
        &manifest,
        format!("[actors.c]\npath = {:?}\ndurability = \"durable\"\nconfig = {{ start = 100 }}\n", counter),
    )
    .unwrap();
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let mut control = host.connect();
    assert_eq!(control.count("c"), 100, "init ran on the first start");
    control.send("c", "incr(5)").unwrap();
    host.kill();
    let host = DurableHost::start(dir.path(), Some(&manifest));
    assert_eq!(host.connect().count("c"), 105, "restored, not initialised again");
}

#[test]
fn a_run_time_durable_spawn_is_started_again_by_the_next_host() {
    let dir = tempfile::tempdir().unwrap();
    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    control.spawn_durable("kept", "counter").unwrap();
    control.send("kept", "incr(7)").unwrap();
    // An ask's reply comes after the commit: the tell is handled and
    // committed, not only acknowledged (which would leave it for the
    // next host to handle, waking the actor).
    assert_eq!(control.count("kept"), 7);
    control.request(json!({ "op": "spawn", "name": "lost", "path": support::guest("counter") })).unwrap();
    host.kill();
    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    // Starting, briefly, then asleep.
    let deadline = Instant::now() + Duration::from_secs(10);
    while control.ps_status("kept") == "starting" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(control.ps_status("kept"), "hibernating", "recovered lazily: no instance before its first message");
    assert_eq!(control.count("kept"), 7);
    let missing = control.call("lost", "get()").unwrap_err();
    assert_eq!(missing["code"], "unknown-address", "an in-memory actor is gone with its host");
    let ps = control.request(json!({ "op": "ps" })).unwrap();
    let kept = ps["actors"].as_array().unwrap().iter().find(|a| a["address"] == "kept").unwrap().clone();
    assert_eq!(kept["durability"], "durable", "{kept}");
    assert_eq!(kept["committed"], 1, "its state contains its first tell: {kept}");
}

#[test]
fn a_durable_actor_stopped_by_hand_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    control.spawn_durable("c", "counter").unwrap();
    control.send("c", "incr(3)").unwrap();
    control.request(json!({ "op": "stop", "address": "c" })).unwrap();
    // And one under a supervisor stopped by hand.
    control.request(json!({ "op": "supervise", "name": "sup" })).unwrap();
    let counter = support::guest("counter");
    control
        .request(json!({ "op": "spawn", "name": "k", "path": counter, "durable": true, "supervisor": "sup" }))
        .unwrap();
    control.send("k", "incr(3)").unwrap();
    control.request(json!({ "op": "stop", "address": "sup" })).unwrap();
    host.kill();
    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    assert_eq!(control.call("c", "get()").unwrap_err()["code"], "unknown-address", "not started again");
    assert_eq!(control.call("k", "get()").unwrap_err()["code"], "unknown-address", "nor what was under it");
    control.request(json!({ "op": "supervise", "name": "sup" })).unwrap();
    control
        .request(json!({ "op": "spawn", "name": "k", "path": counter, "durable": true, "supervisor": "sup" }))
        .unwrap();
    assert_eq!(control.count("k"), 0, "its state went with it");
    control.spawn_durable("c", "counter").unwrap();
    assert_eq!(control.count("c"), 0, "and a new actor at its address starts afresh");
}

#[test]
fn a_durable_spawn_needs_the_persistence_export() {
    let dir = tempfile::tempdir().unwrap();
    let host = DurableHost::start(dir.path(), None);
    let error = host.connect().spawn_durable("f", "faulty").unwrap_err();
    assert_eq!(error["code"], "not-durable");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("troupe:actor/persistence") && message.contains("in memory"), "{message}");
}

#[test]
fn a_second_host_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = DurableHost::start(dir.path(), None);
    let other = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .arg("run")
        .arg("--control")
        .arg(other.path().join("control.sock"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("another troupe host") && stderr.contains("--data-dir"), "{stderr}");
}

#[tokio::test]
async fn a_message_that_changes_nothing_commits_nothing() {
    use std::sync::Arc;
    use troupe::actor::durable::Durability;
    use troupe::store::DurableStore;

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(DurableStore::open(dir.path()).unwrap());
    let journal: Arc<dyn troupe::actor::durable::Journal> = store.clone();
    let host = troupe::Host::new(troupe::HostConfig { journal: Some(journal), ..Default::default() }).unwrap();
    let mut entry = support::define(&host, "counter");
    entry.policy.durability = Durability::Durable;
    host.spawn(entry.spec("c".into())).await.unwrap();
    assert_eq!(support::ask(&host, "c", "incr(2)").await.unwrap(), "2");
    let before = store.stats().batches;
    for _ in 0..5 {
        assert_eq!(support::ask(&host, "c", "get()").await.unwrap(), "2");
    }
    assert_eq!(store.stats().batches, before, "reads are answered without a commit");
    assert_eq!(support::ask(&host, "c", "incr(1)").await.unwrap(), "3");
    assert_eq!(store.stats().batches, before + 1, "a change is committed");
    host.shutdown().await;
}

#[test]
fn the_tells_a_durable_actor_makes_take_effect_once_across_kill_9() {
    // `a` tells `b` `incr(1)` on every `forward`; a crash between `b`
    // taking the tell and `a` committing makes `a` handle that `forward`
    // again, and tell `b` again.
    let dir = tempfile::tempdir().unwrap();
    let mut host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    control.spawn_durable("b", "counter").unwrap();
    control.spawn_forwarder("a", "b").unwrap();
    for round in 0..4 {
        let clients: Vec<_> = (0..3)
            .map(|_| {
                let mut control = host.connect();
                std::thread::spawn(move || while control.send("a", "forward(1)").is_ok() {})
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + 70 * round));
        host.kill();
        for client in clients {
            client.join().unwrap();
        }
        host = DurableHost::start(dir.path(), None);
        let mut control = host.connect();
        // Asked after the recovered tells: each answer comes once those
        // before it are handled. `a`'s tells leave with its commits and
        // reach `b` soon after: `b` catches up with `a`, and never passes it.
        let forwarded: u64 = control.call("a", "forwarded()").unwrap()["result"].as_str().unwrap().parse().unwrap();
        assert!(forwarded > 0, "round {round}: some forwards got in");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let counted = control.count("b");
            assert!(counted <= forwarded, "round {round}: `b` counted {counted} of {forwarded} forwards");
            if counted == forwarded {
                break;
            }
            assert!(Instant::now() < deadline, "round {round}: `b` stopped at {counted} of {forwarded} forwards");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_durable_timer_fires_once_after_a_crash_even_when_its_time_passed_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    control.spawn_durable("b", "counter").unwrap();
    control.spawn_forwarder("a", "b").unwrap();
    // Set (and committed) before the ask returns; due long after the crash.
    control.call("a", "forward-later(5, 600)").unwrap();
    control.call("a", "forward-later(100, 60000)").unwrap();
    host.kill();
    std::thread::sleep(Duration::from_millis(800));
    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while control.count("b") == 0 {
        assert!(Instant::now() < deadline, "the overdue timer fired after recovery");
        std::thread::sleep(Duration::from_millis(20));
    }
    host.kill();
    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(control.count("b"), 5, "it fired once, and the one due in a minute has not");
    assert_eq!(control.call("a", "forwarded()").unwrap()["result"], "1");
}

#[test]
fn a_tell_that_keeps_failing_is_set_aside_listed_kept_across_a_crash_and_can_be_redelivered() {
    let dir = tempfile::tempdir().unwrap();
    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    // Its target does not exist: every `forward` fails.
    control.spawn_forwarder("a", "nobody").unwrap();
    control.send("a", "forward(1)").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let letters = loop {
        let letters = control.request(json!({ "op": "dead-letters" })).unwrap()["dead_letters"].clone();
        if !letters.as_array().unwrap().is_empty() {
            break letters;
        }
        assert!(Instant::now() < deadline, "the poison tell was set aside");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(letters[0]["id"], "a:1");
    assert_eq!(letters[0]["message"], "example:forwarder/api@0.1.0.forward(1)");
    assert_eq!(letters[0]["attempts"], troupe::actor::durable::POISON_ATTEMPTS);
    assert!(letters[0]["error"].as_str().unwrap().contains("panic"), "{letters}");
    assert_eq!(control.call("a", "forwarded()").unwrap()["result"], "0", "and the actor went on");

    host.kill();
    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    assert_eq!(control.call("a", "forwarded()").unwrap()["result"], "0", "recovery did not run it again");
    let listed = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .arg("--control")
        .arg(&host.control)
        .args(["dead-letters", "a"])
        .output()
        .unwrap();
    assert!(listed.status.success());
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("a:1") && text.contains("1 dead letters"), "{text}");

    control.spawn_durable("nobody", "counter").unwrap();
    control.request(json!({ "op": "redeliver", "id": "a:1" })).unwrap();
    assert_eq!(control.call("a", "forwarded()").unwrap()["result"], "1", "redelivered, it took effect");
    assert_eq!(control.count("nobody"), 1);
    let letters = control.request(json!({ "op": "dead-letters", "address": "a" })).unwrap();
    assert_eq!(letters["dead_letters"], json!([]), "and is no longer listed");
    let unknown = control.request(json!({ "op": "redeliver", "id": "a:1" })).unwrap_err();
    assert_eq!(unknown["code"], "invalid-argument");
}

#[test]
fn a_durable_actors_state_moves_to_another_host_through_export_and_import() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let troupe = |host: &DurableHost, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_troupe")).arg("--control").arg(&host.control).args(args).output().unwrap()
    };
    let first = DurableHost::start(one.path(), None);
    let mut control = first.connect();
    control.spawn_durable("c", "counter").unwrap();
    control.call("c", "incr(42)").unwrap();
    let file = one.path().join("c.state");
    let exported = troupe(&first, &["state", "export", "c", file.to_str().unwrap()]);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));

    let second = DurableHost::start(two.path(), None);
    let imported = troupe(&second, &["state", "import", "c", file.to_str().unwrap()]);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let mut control = second.connect();
    control.spawn_durable("c", "counter").unwrap();
    assert_eq!(control.count("c"), 42, "it starts from the imported state");

    let refused = troupe(&second, &["state", "import", "c", file.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("runs on this host"),
        "a running actor is not overwritten"
    );
    let nothing = troupe(&second, &["state", "export", "nobody", two.path().join("x").to_str().unwrap()]);
    assert_eq!(nothing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("no committed state"));
}

#[tokio::test]
async fn a_failing_disk_fails_durable_messages_clearly_keeps_what_was_acknowledged_and_spares_in_memory_actors() {
    use troupe::HasErrorCode as _;
    use troupe::store::faulty::FaultyDisk;

    async fn host_on(disk: &FaultyDisk, dir: &Path) -> troupe::Host {
        let host = host_on_disk(disk, dir);
        spawn_durable_in(&host, "d", "counter", &[]).await;
        host
    }

    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let disk = FaultyDisk::new();
    let host = host_on(&disk, one.path()).await;
    host.spawn(support::define(&host, "counter").spec("m".into())).await.unwrap();
    assert_eq!(support::ask(&host, "d", "incr(1)").await.unwrap(), "1");
    host.send("d", "incr(1)").await.unwrap();
    assert_eq!(support::ask(&host, "d", "get()").await.unwrap(), "2");

    // From now on every read and write of the disk fails.
    disk.fail_after(Some(0));
    let refused = host.send("d", "incr(1)").await.unwrap_err();
    assert_eq!(refused.code(), troupe::ErrorCode::NotDurable, "{refused}");
    assert!(refused.to_string().contains("check the disk"), "the error names the problem and the fix: {refused}");
    let unanswered = support::ask(&host, "d", "incr(1)").await.unwrap_err();
    assert_eq!(unanswered.code(), troupe::ErrorCode::NotDurable, "no reply is released uncommitted: {unanswered}");
    assert_eq!(support::ask(&host, "m", "incr(5)").await.unwrap(), "5", "in-memory actors are not affected");
    host.shutdown().await;

    // The power goes: what was acknowledged is on the disk.
    let survivor = FaultyDisk::from_image(disk.power_loss(&mut fastrand::Rng::with_seed(7)));
    let host = host_on(&survivor, two.path()).await;
    assert_eq!(support::ask(&host, "d", "get()").await.unwrap(), "2");
    host.shutdown().await;
}

#[tokio::test]
async fn a_full_disk_fails_durable_messages_saying_so_keeps_what_was_acknowledged_and_accepts_again_once_freed() {
    use troupe::HasErrorCode as _;
    use troupe::store::faulty::FaultyDisk;

    /// A host whose store is on `disk`, with a durable counter `d` and a
    /// durable blob `b` (a count in a state of settable size).
    async fn host_on(disk: &FaultyDisk, dir: &Path) -> troupe::Host {
        let host = host_on_disk(disk, dir);
        spawn_durable_in(&host, "d", "counter", &[]).await;
        spawn_durable_in(&host, "b", "blob", &[]).await;
        host
    }

    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let disk = FaultyDisk::new();
    let host = host_on(&disk, one.path()).await;
    host.spawn(support::define(&host, "counter").spec("m".into())).await.unwrap();
    assert_eq!(support::ask(&host, "d", "incr(1)").await.unwrap(), "1");
    host.send("d", "incr(1)").await.unwrap();

    // The disk is full at its present size: the blob's state grows until
    // a commit finds no room.
    disk.limit_size(Some(disk.size()));
    let mut full = None;
    for kib in (64..=16 << 10).step_by(64) {
        if let Err(e) = support::ask(&host, "b", &format!("resize({})", kib << 10)).await {
            full = Some(e);
            break;
        }
    }
    let full = full.expect("a commit of a growing state ran out of room");
    assert_eq!(full.code(), troupe::ErrorCode::NotDurable, "{full}");
    let text = full.to_string();
    assert!(text.contains("is full") && text.contains("free space"), "the error says what and how to fix it: {text}");
    // The state that did not fit is still the blob's, in memory: its next
    // change must commit all of it, and finds no room either.
    let unanswered = support::ask(&host, "b", "bump()").await.unwrap_err();
    assert_eq!(unanswered.code(), troupe::ErrorCode::NotDurable, "no reply is released uncommitted: {unanswered}");
    assert!(unanswered.to_string().contains("is full"), "{unanswered}");
    // (Small writes may still find room in the pages the store freed:
    // redb grows the file only when none is left.)
    assert_eq!(support::ask(&host, "m", "incr(5)").await.unwrap(), "5", "in-memory actors keep serving");

    // Space is freed: durable messages are accepted again, and the next
    // commit of each actor makes its state in memory durable.
    disk.limit_size(None);
    host.send("d", "incr(1)").await.expect("a tell is acknowledged again");
    let counted = support::ask(&host, "d", "incr(1)").await.expect("an ask is answered again");
    let bumped = support::ask(&host, "b", "bump()").await.expect("the large state commits now");
    let size = support::ask(&host, "b", "size()").await.unwrap();
    host.shutdown().await;

    // The power goes: what was acknowledged last is on the disk.
    let survivor = FaultyDisk::from_image(disk.power_loss(&mut fastrand::Rng::with_seed(11)));
    let host = host_on(&survivor, two.path()).await;
    assert_eq!(support::ask(&host, "d", "get()").await.unwrap(), counted);
    assert_eq!(support::ask(&host, "b", "count()").await.unwrap(), bumped);
    assert_eq!(support::ask(&host, "b", "size()").await.unwrap(), size, "the state that once did not fit");
    host.shutdown().await;
}

/// The requests and readings the tests below share.
impl Control {
    /// Swaps `target` to the example guest `guest`, with a probation of
    /// `probation_ms`.
    fn swap(&mut self, target: &str, guest: &str, probation_ms: u64) -> Result<Value, Value> {
        let path = support::guest(guest);
        self.request(json!({ "op": "swap", "target": target, "path": path, "probation_ms": probation_ms }))
    }

    /// `address`'s status in `ps` (its first word).
    pub(crate) fn ps_status(&mut self, address: &str) -> String {
        let row = self.ps_row(address);
        row["status"].as_str().unwrap_or_default().split_whitespace().next().unwrap_or_default().to_string()
    }

    /// `address`'s row in `ps`.
    fn ps_row(&mut self, address: &str) -> Value {
        let ps = self.request(json!({ "op": "ps" })).unwrap();
        let rows = ps["actors"].as_array().unwrap();
        rows.iter().find(|a| a["address"] == address).cloned().unwrap_or(Value::Null)
    }

    /// The answer of `address` to the call `message`, as WAVE text.
    fn result(&mut self, address: &str, message: &str) -> String {
        let reply = self.call(address, message).unwrap_or_else(|e| panic!("{message} on `{address}`: {e}"));
        reply["result"].as_str().unwrap().to_string()
    }
}

#[test]
fn a_swapped_durable_actor_comes_back_after_kill_9_running_the_new_code_with_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.toml");
    let counter = support::guest("counter");
    std::fs::write(&manifest, format!("[actors.m]\npath = {counter:?}\ndurability = \"durable\"\n")).unwrap();
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let mut control = host.connect();
    control.spawn_durable("r", "counter").unwrap();
    for actor in ["m", "r"] {
        control.send(actor, "incr(5)").unwrap();
        control.swap(actor, "counter-v2", 100).unwrap();
    }
    // Killed before any message reached the new code.
    host.kill();
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let mut control = host.connect();
    for actor in ["m", "r"] {
        assert_eq!(control.result(actor, "increments()"), "0", "`{actor}` runs counter v2, which alone counts them");
        assert_eq!(control.result(actor, "incr(2)"), "7", "`{actor}` kept its state across the swap");
    }
    host.kill();
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let mut control = host.connect();
    for actor in ["m", "r"] {
        assert_eq!(control.result(actor, "increments()"), "1", "`{actor}`: the state v2 committed");
        assert_eq!(control.count(actor), 7);
    }
}

#[test]
fn a_durable_swap_that_rolls_back_leaves_the_old_code_and_its_state_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    control.spawn_durable("c", "counter").unwrap();
    control.send("c", "incr(5)").unwrap();
    let hash = control.ps_row("c")["hash"].clone();

    // The new code cannot restore the state: the old code keeps running.
    let refused = control.swap("c", "counter-v2-broken-restore", 100).unwrap_err();
    assert_eq!(refused["code"], "start-failed", "{refused}");

    // The new code fails on its first `incr`, on probation: rolled back.
    let swapping = {
        let mut control = host.connect();
        std::thread::spawn(move || control.swap("c", "counter-v2-broken-incr", 10_000))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while control.ps_row("c")["hash"] == hash {
        assert!(Instant::now() < deadline, "the new code was swapped in");
        std::thread::sleep(Duration::from_millis(10));
    }
    control.send("c", "incr(1)").unwrap();
    let rolled_back = swapping.join().unwrap().unwrap_err();
    assert_eq!(rolled_back["code"], "probation-failed", "{rolled_back}");
    host.kill();

    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    assert_eq!(control.ps_row("c")["hash"], hash, "the old code is back");
    let unknown = control.call("c", "increments()").unwrap_err();
    assert_eq!(unknown["code"], "bad-message", "only counter v2 has `increments`: {unknown}");
    // The tell the new code failed on was handled by the old code.
    assert_eq!(control.count("c"), 6);
}

/// The addresses on the way from the root of `tree` to `address`, the
/// root excluded (empty if it is not there).
fn path_in_tree(tree: &Value, address: &str) -> Vec<String> {
    fn walk(node: &Value, address: &str, path: &mut Vec<String>) -> bool {
        path.push(node["address"].as_str().unwrap_or_default().to_string());
        if node["address"] == address {
            return true;
        }
        let children = node["nodes"].as_array().map(Vec::as_slice).unwrap_or_default();
        if children.iter().any(|child| walk(child, address, path)) {
            return true;
        }
        path.pop();
        false
    }
    let mut path = Vec::new();
    if walk(tree, address, &mut path) {
        path.remove(0);
    }
    path
}

#[test]
fn a_durable_actor_under_run_time_supervisors_comes_back_under_them_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    let spec = json!({ "strategy": "one-for-all", "intensity": 7 });
    control.request(json!({ "op": "supervise", "name": "outer", "spec": spec })).unwrap();
    control.request(json!({ "op": "supervise", "name": "inner", "parent": "outer" })).unwrap();
    let counter = support::guest("counter");
    control
        .request(json!({ "op": "spawn", "name": "k", "path": counter, "durable": true, "supervisor": "inner" }))
        .unwrap();
    control.send("k", "incr(3)").unwrap();
    host.kill();

    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    let tree = control.request(json!({ "op": "tree" })).unwrap();
    assert_eq!(path_in_tree(&tree, "k"), ["outer", "inner", "k"], "in its place in the tree: {tree}");
    assert_eq!(tree["nodes"][0]["strategy"], "one-for-all", "with its supervisor's policy: {tree}");
    assert_eq!(tree["nodes"][0]["intensity"], 7, "{tree}");
    assert_eq!(control.count("k"), 3);

    // Stopped by hand, the supervisors are forgotten with the actor.
    control.request(json!({ "op": "stop", "address": "outer" })).unwrap();
    host.kill();
    let host = DurableHost::start(dir.path(), None);
    let tree = host.connect().request(json!({ "op": "tree" })).unwrap();
    assert_eq!(tree["nodes"], json!([]), "{tree}");
}

#[test]
fn a_durable_child_a_guest_spawned_comes_back_under_its_parent_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.toml");
    let (counter, probe) = (support::guest("counter"), support::guest("probe"));
    std::fs::write(&manifest, format!("[components.counter]\npath = {counter:?}\n\n[actors.p]\npath = {probe:?}\n"))
        .unwrap();
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let mut control = host.connect();
    let spawned = control.call("p", "spawn-durable-child(\"counter\", some(\"kid\"))").unwrap();
    assert_eq!(spawned["result"], "ok(\"kid\")");
    let plain = control.call("p", "spawn-child(\"counter\", some(\"plain\"))").unwrap();
    assert_eq!(plain["result"], "ok(\"plain\")");
    assert_eq!(control.ps_row("kid")["durability"], "durable");
    control.send("kid", "incr(4)").unwrap();
    control.send("plain", "incr(4)").unwrap();
    host.kill();

    let host = DurableHost::start(dir.path(), Some(&manifest));
    let mut control = host.connect();
    assert_eq!(control.count("kid"), 4, "the durable child is back with its state");
    let tree = control.request(json!({ "op": "tree" })).unwrap();
    assert_eq!(path_in_tree(&tree, "kid"), ["p", "kid"], "under its parent: {tree}");
    assert_eq!(control.call("plain", "get()").unwrap_err()["code"], "unknown-address", "an in-memory child is not");
}

#[tokio::test]
async fn a_tell_to_a_sleeping_durable_actor_waits_for_a_free_instance_slot_instead_of_being_refused() {
    use std::sync::Arc;
    use troupe::actor::durable::{Durability, Journal};
    use troupe::store::DurableStore;

    let dir = tempfile::tempdir().unwrap();
    let journal: Arc<dyn Journal> = Arc::new(DurableStore::open(dir.path()).unwrap());
    let mut engine = troupe::EngineConfig::new();
    engine.max_instances(1).cache_dir(Some(support::target_dir().join("troupe-test-cache")));
    let config = troupe::HostConfig { engine, journal: Some(journal), max_actors: Some(2), ..Default::default() };
    let host = troupe::Host::new(config).unwrap();
    let mut sleepy = support::define(&host, "counter");
    sleepy.policy.durability = Durability::Durable;
    sleepy.policy.hibernate_after = Some(Duration::from_millis(50));
    let sleeper = host.spawn(sleepy.spec("sleeper".into())).await.unwrap();
    assert_eq!(support::ask(&host, "sleeper", "incr(7)").await.unwrap(), "7");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleeper.status() != troupe::ActorStatus::Hibernating {
        assert!(Instant::now() < deadline, "the durable actor fell asleep");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // An actor that never sleeps takes the only slot.
    host.spawn(support::define(&host, "counter").spec("hog".into())).await.unwrap();

    host.send("sleeper", "incr(1)").await.expect("acknowledged: committed to its inbox");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sleeper.status(), troupe::ActorStatus::Hibernating, "no slot yet: it sleeps on with the tell");
    assert_eq!(host.dead_letters(), 0, "the tell was not dropped");

    host.stop("hog").await.unwrap();
    assert_eq!(support::ask(&host, "sleeper", "get()").await.unwrap(), "8", "handled once a slot was free");
    host.shutdown().await;
}

#[test]
fn a_durable_child_its_parent_stopped_stays_stopped_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.toml");
    let (counter, probe) = (support::guest("counter"), support::guest("probe"));
    std::fs::write(&manifest, format!("[components.counter]\npath = {counter:?}\n\n[actors.p]\npath = {probe:?}\n"))
        .unwrap();
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let mut control = host.connect();
    control.call("p", "spawn-durable-child(\"counter\", some(\"kid\"))").unwrap();
    control.send("kid", "incr(4)").unwrap();
    assert_eq!(control.call("p", "stop-actor(\"kid\")").unwrap()["result"], "ok");
    let deadline = Instant::now() + Duration::from_secs(10);
    while control.ps_row("kid") != Value::Null {
        assert!(Instant::now() < deadline, "the child did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Its record goes once it has stopped, on another task than the stop.
    std::thread::sleep(Duration::from_millis(200));
    host.kill();

    let host = DurableHost::start(dir.path(), Some(&manifest));
    let mut control = host.connect();
    assert_eq!(control.call("kid", "get()").unwrap_err()["code"], "unknown-address", "stopped for good: forgotten");
}

#[test]
fn a_durable_child_of_a_manifest_supervisor_comes_back_in_its_place_with_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.toml");
    let counter = support::guest("counter");
    std::fs::write(
        &manifest,
        format!(
            "[supervisors.s]\nstrategy = \"one-for-all\"\n\n[supervisors.s.actors.c]\npath = {counter:?}\n\
             durability = \"durable\"\n"
        ),
    )
    .unwrap();
    let host = DurableHost::start(dir.path(), Some(&manifest));
    host.connect().send("c", "incr(9)").unwrap();
    host.kill();
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let mut control = host.connect();
    assert_eq!(control.count("c"), 9);
    let tree = control.request(json!({ "op": "tree" })).unwrap();
    assert_eq!(path_in_tree(&tree, "c"), ["s", "c"], "under its supervisor: {tree}");
}

#[test]
fn a_numbered_tell_sent_again_is_taken_once_even_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let send = |host: &DurableHost, address: &str, publisher: &str, seq: u64| {
        let out = Command::new(env!("CARGO_BIN_EXE_troupe"))
            .arg("--control")
            .arg(&host.control)
            .args(["send", address, "incr(1)", "--publisher", publisher, "--seq", &seq.to_string()])
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    control.spawn_durable("c", "counter").unwrap();
    for seq in [1, 1, 2, 1, 2] {
        assert_eq!(send(&host, "c", "billing", seq), (true, String::new()), "tell {seq} of `billing`");
    }
    assert_eq!(control.count("c"), 2, "tells 1 and 2, once each, however often they were sent");
    // Another publisher numbers its tells on its own.
    assert!(send(&host, "c", "audit", 1).0);
    assert_eq!(control.count("c"), 3);
    host.kill();

    // The numbers taken were committed with the tells: the host that
    // comes back still knows them.
    let host = DurableHost::start(dir.path(), None);
    let mut control = host.connect();
    assert!(send(&host, "c", "billing", 2).0, "a tell sent again after the crash is acknowledged");
    assert_eq!(control.count("c"), 3, "and not taken again");
    assert!(send(&host, "c", "billing", 3).0);
    assert_eq!(control.count("c"), 4);

    // Only a durable actor keeps the numbers it took: to another, a
    // numbered tell is refused, and says why.
    control.request(json!({ "op": "spawn", "name": "plain", "path": support::guest("counter") })).unwrap();
    let (sent, stderr) = send(&host, "plain", "billing", 4);
    assert!(!sent && stderr.contains("`plain` is not durable"), "{stderr}");
    let refused = control
        .request(json!({ "op": "send", "address": "plain", "message": "incr(1)",
                         "numbered": { "publisher": "billing", "seq": 4 } }))
        .unwrap_err();
    assert_eq!(refused["code"], "invalid-argument");
    assert_eq!(control.count("plain"), 0, "nothing was queued");
    let (sent, stderr) = send(&host, "c", "bad name", 5);
    assert!(!sent && stderr.contains("cannot name a publisher"), "{stderr}");
    // The two flags go together.
    let alone = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .arg("--control")
        .arg(&host.control)
        .args(["send", "c", "incr(1)", "--seq", "9"])
        .output()
        .unwrap();
    assert!(!alone.status.success() && String::from_utf8_lossy(&alone.stderr).contains("--publisher"));
    assert_eq!(control.count("c"), 4);
}

#[tokio::test]
async fn a_numbered_tell_sent_again_is_acknowledged_only_once_its_first_copy_is_durable() {
    use troupe::HasErrorCode as _;
    use troupe::store::faulty::FaultyDisk;

    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let host = host_on_disk(&disk, dir.path());
    spawn_durable_in(&host, "d", "counter", &[]).await;
    host.send_numbered("d", "incr(1)", "shop", 1).await.unwrap();
    host.send_numbered("d", "incr(1)", "shop", 1).await.unwrap();
    assert_eq!(support::ask(&host, "d", "get()").await.unwrap(), "1");

    // Tell 2 is queued, but its write fails: not acknowledged. Sent again
    // with its number, it is a copy of a tell taken, and its
    // acknowledgement is the first copy's: it must not be `ok`, since
    // nothing of it is on the disk.
    disk.fail_after(Some(0));
    let first = host.send_numbered("d", "incr(1)", "shop", 2).await.unwrap_err();
    assert_eq!(first.code(), troupe::ErrorCode::NotDurable, "{first}");
    let again = host.send_numbered("d", "incr(1)", "shop", 2).await.unwrap_err();
    assert_eq!(again.code(), troupe::ErrorCode::NotDurable, "a copy is not acknowledged before the first: {again}");
    host.shutdown().await;
}
