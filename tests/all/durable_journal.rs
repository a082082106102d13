//! Durable actors that snapshot every N messages and journal the messages
//! in between, against the real binary and `kill -9`: recovery replays no
//! more than the journal since the newest snapshot, and a replay sees what
//! each message saw the first time (clocks, other actors' answers), so it
//! reaches exactly the state that was acknowledged.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::durable::{Control, DurableHost};
use crate::support;

/// The lifecycle events of `host` from now on, one JSON value each.
pub(crate) fn events(host: &DurableHost, dir: &Path) -> mpsc::Receiver<Value> {
    let stream = UnixStream::connect(dir.join("control.sock")).expect("the host listens");
    let mut writer = stream.try_clone().unwrap();
    writer.write_all(b"{\"op\":\"events\"}\n").unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            let Ok(response) = serde_json::from_str::<Value>(&line) else { return };
            if tx.send(response["ok"].clone()).is_err() {
                return;
            }
        }
    });
    // The subscription is in place once an event made after it arrives:
    // start actors until one's event does (the first may come before).
    let path = support::guest("counter");
    for attempt in 0..50 {
        let name = format!("events-ready-{attempt}");
        host.connect().request(json!({ "op": "spawn", "name": name, "path": path })).unwrap();
        while let Ok(event) = rx.recv_timeout(Duration::from_millis(200)) {
            if event["address"].as_str().is_some_and(|a| a.starts_with("events-ready-")) {
                return rx;
            }
        }
    }
    panic!("no event arrived on the subscription");
}

/// How many messages `address` replayed, from the first `replayed` event
/// about it within a few seconds (`None`: it replayed nothing).
fn replayed(events: &mpsc::Receiver<Value>, address: &str) -> Option<u64> {
    let quiet = Duration::from_secs(2);
    let event = next_event(events, quiet, |e| e["address"] == address && e["event"] == "replayed")?;
    event["messages"].as_u64()
}

/// The next event `matches` accepts, if one comes before `events` stays
/// quiet for `quiet`.
pub(crate) fn next_event(
    events: &mpsc::Receiver<Value>,
    quiet: Duration,
    matches: impl Fn(&Value) -> bool,
) -> Option<Value> {
    std::iter::from_fn(|| events.recv_timeout(quiet).ok()).find(|event| matches(event))
}

/// Sends `total` `incr(1)` tells to `address` from `clients` connections
/// at once, each acknowledged.
fn send_concurrently(host: &DurableHost, address: &'static str, total: u64, clients: u64) {
    let senders: Vec<_> = (0..clients)
        .map(|client| {
            let mut control = host.connect();
            let share = total / clients + u64::from(client < total % clients);
            std::thread::spawn(move || {
                for _ in 0..share {
                    control.send(address, "incr(1)").expect("a durable tell is acknowledged");
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
}

/// A durable counter `c` snapshotting every `every` messages handles
/// `total` acknowledged tells; after `kill -9`, its first message finds
/// them all, and it replayed at most the messages since its last snapshot.
fn replays_at_most_one_snapshot_interval(every: u64, total: u64) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.toml");
    let counter = support::guest("counter");
    std::fs::write(
        &manifest,
        format!("[actors.c]\npath = {counter:?}\ndurability = \"durable\"\nsnapshot-every = {every}\n"),
    )
    .unwrap();
    let host = DurableHost::start(dir.path(), Some(&manifest));
    send_concurrently(&host, "c", total, 4);
    // Handled, not only accepted: recovery has none to run again, and
    // starts the counter asleep, replaying on its first message.
    assert_eq!(host.connect().count("c"), total);
    host.kill();

    let host = DurableHost::start(dir.path(), Some(&manifest));
    let events = events(&host, dir.path());
    assert_eq!(host.connect().count("c"), total, "every acknowledged tell, once");
    let replayed = replayed(&events, "c").expect("the counter replayed its journal");
    assert!(replayed > 0 && replayed < every, "replayed {replayed} messages; at most {every} may be");
}

#[test]
fn recovery_replays_no_more_than_the_messages_since_the_newest_snapshot() {
    replays_at_most_one_snapshot_interval(100, 1_050);
}

/// The issue's figures: snapshots every 1,000 messages, 10,000 handled.
#[test]
#[ignore = "long: 10,000 acknowledged tells; run with --ignored"]
fn recovery_after_ten_thousand_messages_replays_fewer_than_a_thousand() {
    replays_at_most_one_snapshot_interval(1_000, 10_000);
}

/// A recorder `r` (durable, journaling) whose notes hold the wall clock
/// and the answer of an in-memory counter `k`, and a connection to them.
fn recorder_host(dir: &Path) -> (DurableHost, Control, std::path::PathBuf) {
    let manifest = dir.join("app.toml");
    std::fs::write(
        &manifest,
        format!(
            "[actors.k]\npath = {:?}\n\n[actors.r]\npath = {:?}\ndurability = \"durable\"\nsnapshot-every = 1000\n\
             config = {{ to = \"k\" }}\ngrants = {{ clocks = true }}\n",
            support::guest("counter"),
            support::guest("recorder"),
        ),
    )
    .unwrap();
    let host = DurableHost::start(dir, Some(&manifest));
    let control = host.connect();
    (host, control, manifest)
}

fn notes(control: &mut Control) -> String {
    let reply = control.call("r", "notes()").expect("notes() answers");
    let wave = reply["result"].as_str().unwrap();
    wave.trim_matches('"').to_string()
}

#[test]
fn a_replay_sees_the_clock_and_the_answers_the_messages_saw_the_first_time() {
    let dir = tempfile::tempdir().unwrap();
    let (host, mut control, manifest) = recorder_host(dir.path());
    assert_eq!(notes(&mut control), "", "a first message: its state is the first snapshot");
    control.send("k", "incr(5)").unwrap();
    control.call("r", "note()").unwrap();
    std::thread::sleep(Duration::from_millis(5));
    control.send("k", "incr(2)").unwrap();
    control.call("r", "note()").unwrap();
    let before = notes(&mut control);
    let answers: Vec<&str> = before.split(',').map(|note| note.split(':').nth(1).unwrap()).collect();
    assert_eq!(answers, ["5", "7"], "{before}");
    host.kill();

    // Later, and `k` (in memory) starts again from 0: a message that ran
    // again live would note other times and other answers.
    std::thread::sleep(Duration::from_millis(20));
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let events = events(&host, dir.path());
    let mut control = host.connect();
    assert_eq!(control.count("k"), 0);
    assert_eq!(notes(&mut control), before, "the state that was acknowledged, exactly");
    assert_eq!(replayed(&events, "r"), Some(3), "two notes and a read since the snapshot");
    control.call("r", "note()").unwrap();
    let after = notes(&mut control);
    assert!(after.starts_with(&format!("{before},")) && after.ends_with(":0"), "a live note sees `k` now: {after}");
}

#[test]
fn a_journaling_actor_keeps_every_acknowledged_tell_across_repeated_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.toml");
    std::fs::write(
        &manifest,
        format!("[actors.c]\npath = {:?}\ndurability = \"durable\"\nsnapshot-every = 7\n", support::guest("counter")),
    )
    .unwrap();
    let mut expected = 0;
    for round in 0..4u64 {
        let host = DurableHost::start(dir.path(), Some(&manifest));
        let mut control = host.connect();
        assert_eq!(control.count("c"), expected, "round {round}: what was acknowledged before the kill");
        let n = 11 + 5 * round;
        for _ in 0..n {
            control.send("c", "incr(1)").unwrap();
        }
        let ask = control.call("c", "incr(3)").unwrap();
        expected += n + 3;
        assert_eq!(ask["result"], json!(expected.to_string()));
        host.kill();
    }
}

/// A durable counter `c` that journals with `extra` manifest settings.
fn journaling_counter(dir: &Path, extra: &str) -> std::path::PathBuf {
    let manifest = dir.join("app.toml");
    let counter = support::guest("counter");
    std::fs::write(&manifest, format!("[actors.c]\npath = {counter:?}\ndurability = \"durable\"\n{extra}\n")).unwrap();
    manifest
}

#[test]
fn a_journal_that_outgrows_its_size_limit_ends_in_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    // An entry for `incr(1)` is about 40 bytes: a snapshot every dozen.
    let manifest = journaling_counter(dir.path(), "snapshot-every = 1000\nsnapshot-journal-bytes = 500");
    let host = DurableHost::start(dir.path(), Some(&manifest));
    send_concurrently(&host, "c", 100, 1);
    assert_eq!(host.connect().count("c"), 100);
    host.kill();
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let events = events(&host, dir.path());
    assert_eq!(host.connect().count("c"), 100);
    let replayed = replayed(&events, "c").unwrap_or(0);
    assert!(replayed < 20, "replayed {replayed}: the journal never grows much past 500 bytes");
}

#[test]
fn a_clean_stop_and_a_hibernation_end_the_journal_with_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = journaling_counter(dir.path(), "snapshot-every = 1000\nhibernate-after-ms = 100");
    // Stopped cleanly (SIGTERM) with 30 messages journaled: the next host
    // replays none.
    let host = DurableHost::start(dir.path(), Some(&manifest));
    send_concurrently(&host, "c", 30, 1);
    assert_eq!(host.connect().count("c"), 30);
    host.terminate();
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let stream = events(&host, dir.path());
    assert_eq!(host.connect().count("c"), 30);
    assert_eq!(replayed(&stream, "c"), None, "nothing journaled after the snapshot of the clean stop");

    // Asleep after 30 more, then killed: the snapshot it fell asleep with
    // is on disk, and nothing is replayed either.
    send_concurrently(&host, "c", 30, 1);
    assert_eq!(host.connect().count("c"), 60);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while host.connect().ps_status("c") != "hibernating" {
        assert!(std::time::Instant::now() < deadline, "the counter did not fall asleep");
        std::thread::sleep(Duration::from_millis(20));
    }
    host.kill();
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let stream = events(&host, dir.path());
    assert_eq!(host.connect().count("c"), 60);
    assert_eq!(replayed(&stream, "c"), None, "nothing journaled after the snapshot it slept with");
}
