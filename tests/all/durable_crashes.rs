//! Durable actors through awkward crashes, against the real binary and
//! `kill -9`: in the middle of committing a large state, in the middle of
//! recovery (and so twice in a row), and across the snapshots of an actor
//! that snapshots every 100 messages. After each, every acknowledged
//! change is there, none twice.

use std::path::Path;
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::durable::{Control, DurableHost};
use crate::support;

/// The number in a reply such as `{"result": "42"}`.
fn number(reply: &Value) -> u64 {
    reply["result"].as_str().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("not a number: {reply}"))
}

/// Spawns a durable blob (a count in a state of `bytes` bytes) at `name`.
fn spawn_blob(control: &mut Control, name: &str, bytes: usize) -> Result<Value, Value> {
    let path = support::guest("blob");
    let config = json!([["bytes", bytes.to_string()]]);
    control.request(json!({ "op": "spawn", "name": name, "path": path, "durable": true, "config": config }))
}

/// A client in its own thread that sends `message` to `address` until the
/// host goes away, as an ask (`call`) or a tell. Joined, it yields how
/// many were acknowledged, how many were tried, and the last ask's reply.
fn client(mut control: Control, address: &'static str, message: &'static str, ask: bool) -> thread::JoinHandle<Tally> {
    thread::spawn(move || {
        let mut tally = Tally::default();
        loop {
            tally.tried += 1;
            let answer = if ask { control.call(address, message) } else { control.send(address, message) };
            match answer {
                Ok(reply) => {
                    tally.acknowledged += 1;
                    if ask {
                        tally.last_reply = number(&reply);
                    }
                }
                // The host was killed under it.
                Err(_) => return tally,
            }
        }
    })
}

/// What a [`client`] got through.
#[derive(Default)]
struct Tally {
    acknowledged: u64,
    tried: u64,
    last_reply: u64,
}

#[test]
fn kill_9_while_a_1_mib_state_commits_leaves_a_whole_state_holding_every_acknowledged_change() {
    const MIB: usize = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let mut host = DurableHost::start(dir.path(), None);
    spawn_blob(&mut host.connect(), "b", MIB).unwrap();
    let mut rng = fastrand::Rng::new();
    let (mut acknowledged, mut attempted) = (0u64, 0u64);
    for round in 0..5 {
        // Each `bump()` commits the whole MiB: the host is committing
        // nearly all the time, so the kill lands in a commit.
        let asker = client(host.connect(), "b", "bump()", true);
        let teller = client(host.connect(), "b", "bump()", false);
        let delay = rng.u64(50..400);
        thread::sleep(Duration::from_millis(delay));
        host.kill();
        let (asked, told) = (asker.join().unwrap(), teller.join().unwrap());
        acknowledged += asked.acknowledged + told.acknowledged;
        attempted += asked.tried + told.tried;
        host = DurableHost::start(dir.path(), None);
        let mut control = host.connect();
        // The blob's restore refuses a torn state, which would fail this ask.
        let count = control
            .call("b", "count()")
            .map(|reply| number(&reply))
            .unwrap_or_else(|e| panic!("round {round}, killed after {delay} ms: no whole state came back: {e}"));
        assert_eq!(number(&control.call("b", "size()").unwrap()), MIB as u64, "round {round}: all of the state");
        assert!(asked.acknowledged + told.acknowledged > 0, "round {round}: some bumps got in before the kill");
        assert!(
            (acknowledged..=attempted).contains(&count),
            "round {round}, killed after {delay} ms: {count} applied, {acknowledged} acknowledged, {attempted} tried"
        );
        assert!(count >= asked.last_reply, "round {round}: the last reply released ({}) is kept", asked.last_reply);
        // What was in flight may or may not have been applied: start the
        // next round from what was.
        (acknowledged, attempted) = (count, count);
    }
}

/// Whether the log of `dir`'s hosts, from byte `from` on, says a host
/// finished starting its durable actors again.
fn log_says_recovered(dir: &Path, from: usize) -> bool {
    let log = std::fs::read_to_string(dir.join("host.log")).unwrap_or_default();
    log.get(from..).is_some_and(|new| new.contains("durable actor recovered"))
}

#[test]
fn a_kill_9_in_the_middle_of_recovery_loses_no_acknowledged_tell_and_applies_none_twice() {
    const ACTORS: usize = 24;
    const CLIENTS: usize = 4;
    const BUMPS: u64 = 4;
    let dir = tempfile::tempdir().unwrap();
    let mut host = DurableHost::start_with(dir.path(), None, 200);
    let mut control = host.connect();
    for i in 0..ACTORS {
        spawn_blob(&mut control, &format!("b-{i}"), 1024).unwrap();
    }
    let mut rng = fastrand::Rng::new();
    let (mut expected, mut interrupted) = (0u64, 0);
    for round in 0..4 {
        // Each blob is told to grow (or shrink) its state, then to bump
        // its count a few times: the bumps are acknowledged while it is
        // still busy committing its new state, so at the kill -9 right
        // after, most are acknowledged and not yet handled.
        let size = if round % 2 == 0 { 512 << 10 } else { 256 << 10 };
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let mut control = host.connect();
                thread::spawn(move || {
                    for i in (c..ACTORS).step_by(CLIENTS) {
                        let blob = format!("b-{i}");
                        control.send(&blob, &format!("resize({size})")).unwrap();
                        for _ in 0..BUMPS {
                            control.send(&blob, "bump()").unwrap();
                        }
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
        expected += BUMPS;
        host.kill();
        // Start again, and kill it again while it recovers: its control
        // socket is up before it has started its durable actors again, and
        // the tells it recovers are handled after that.
        let log_before = std::fs::metadata(dir.path().join("host.log")).map(|m| m.len() as usize).unwrap_or(0);
        let delay = rng.u64(0..=40);
        let recovering = DurableHost::start_with(dir.path(), None, 200);
        thread::sleep(Duration::from_millis(delay));
        recovering.kill();
        interrupted += usize::from(!log_says_recovered(dir.path(), log_before));
        host = DurableHost::start_with(dir.path(), None, 200);
        let mut control = host.connect();
        for i in 0..ACTORS {
            let blob = format!("b-{i}");
            let count = control
                .call(&blob, "count()")
                .map(|reply| number(&reply))
                .unwrap_or_else(|e| panic!("round {round}: `{blob}` came back without a whole state: {e}"));
            assert_eq!(count, expected, "round {round}, killed {delay} ms into recovery: `{blob}`");
            assert_eq!(number(&control.call(&blob, "size()").unwrap()), size, "round {round}: `{blob}`'s size");
        }
    }
    assert!(interrupted > 0, "at least one kill landed before the host had started its durable actors again");
}

#[test]
fn snapshot_every_100_kill_9_at_random_moments_across_snapshot_boundaries_keeps_exact_counts() {
    // With `snapshot-every = 100`, a durable actor's state is committed
    // every 100 messages and the messages between are journalled; each
    // kill lands at a random place between two snapshots.
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.toml");
    let counter = support::guest("counter");
    std::fs::write(
        &manifest,
        format!("[actors.c]\npath = {counter:?}\ndurability = \"durable\"\nsnapshot-every = 100\n"),
    )
    .unwrap();
    let mut host = DurableHost::start(dir.path(), Some(&manifest));
    let mut rng = fastrand::Rng::new();
    let mut expected = 0u64;
    for round in 0..8 {
        let mut control = host.connect();
        if round % 2 == 0 {
            // A random number of messages, each acknowledged before the
            // next, then kill -9 at once: exactly these must be there.
            let n = rng.u64(30..=250);
            for i in 0..n {
                expected += 1;
                if i % 7 == 6 {
                    let reply = control.call("c", "incr(1)").unwrap();
                    assert_eq!(number(&reply), expected, "round {round}: an ask's reply counts all before it");
                } else {
                    control.send("c", "incr(1)").unwrap();
                }
            }
            host.kill();
            host = DurableHost::start(dir.path(), Some(&manifest));
            assert_eq!(host.connect().count("c"), expected, "round {round}: {n} messages, then kill -9");
        } else {
            // Killed from outside at a random moment: the one message in
            // flight may or may not have been applied.
            let sender = client(control, "c", "incr(1)", round % 4 == 1);
            let delay = rng.u64(20..300);
            thread::sleep(Duration::from_millis(delay));
            host.kill();
            let sent = sender.join().unwrap();
            host = DurableHost::start(dir.path(), Some(&manifest));
            let count = host.connect().count("c");
            let acknowledged = expected + sent.acknowledged;
            assert!(
                (acknowledged..=acknowledged + 1).contains(&count),
                "round {round}, killed after {delay} ms: {count} applied, {acknowledged} acknowledged"
            );
            expected = count;
        }
    }
    assert!(expected > 200, "the counts crossed several snapshot boundaries: {expected}");
}
