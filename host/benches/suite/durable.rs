//! Scenario 9: durable actors, beside the store alone. Acknowledged tells
//! over 64 actors against the store's group commit with as many writers
//! (each tell commits twice: its inbox entry, then the state it left); a
//! durable ask against one fsync'd commit, for states from 1 KiB to 1 MiB
//! against a commit of as many bytes; and recovery, after a clean stop and
//! after `kill -9` of a child process holding 10,000 durable actors.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use troupe::actor::durable::Durability;
use troupe::control::{Request, respawn_durable};
use troupe::store::{Batch, DurableStore, GroupCommit, GroupCommitConfig, RedbStore, Store, StoreError, Table};
use troupe::{ActorRef, ActorStatus, ActorTemplate, EngineConfig, Host, HostConfig};
use wasmtime::component::Val;

use crate::Scale;
use crate::measure::{ASK_TIMEOUT, latencies, latencies_after, on_runtime, per, percentile};
use crate::report::{Row, ns, row};
use crate::support::{define, engine_config, guest_path};

/// Senders of the throughput rows, each with an actor of its own.
const SENDERS: usize = 64;

/// Rounds of the throughput rows, interleaved between troupe and the
/// store alone; the median counts.
const RATE_ROUNDS: usize = 3;

fn median_rate(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// 9: durable tells and asks, and the store's floor under them.
pub async fn durable(scale: Scale, rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(DurableStore::open(&dir.path().join("host")).expect("the store opens"));
    let mut engine = EngineConfig::new();
    engine.max_instances(SENDERS as u32 + 8).max_memory_bytes(64 << 20);
    let host = Host::new(HostConfig { engine, journal: Some(store), ..Default::default() }).expect("host builds");
    let mut entry = define(&host, "counter");
    entry.policy.durability = Durability::Durable;
    let mut actors = Vec::with_capacity(SENDERS);
    for i in 0..SENDERS {
        actors.push(host.spawn(entry.spec(format!("durable-{i}").into())).await.expect("a durable actor starts"));
    }
    let per_sender = scale.asks / 4;

    // The floor: the same number of writers, each committing a tell-sized
    // batch and waiting for it, through a group commit of their own.
    let floor_dir = dir.path().join("floor");
    std::fs::create_dir_all(&floor_dir).expect("the floor's directory");
    let raw: Arc<dyn Store> = Arc::new(RedbStore::open(&floor_dir.join("floor.redb")).expect("redb opens"));
    let commits = GroupCommit::start(raw.clone(), GroupCommitConfig::default());
    let (mut floor_rates, mut troupe_rates) = (Vec::new(), Vec::new());
    for _ in 0..RATE_ROUNDS {
        floor_rates.push(on_runtime(committed_per_second(commits.clone(), per_sender)).await);
        troupe_rates.push(on_runtime(acknowledged_per_second(actors.clone(), per_sender)).await);
    }
    let (floor_rate, troupe_rate) = (median_rate(floor_rates), median_rate(troupe_rates));
    let total: u64 = {
        let mut sum = 0;
        for actor in &actors {
            let get = actor.parse("get()").expect("get() parses");
            let reply = actor.ask(get, None, None, Duration::from_secs(60)).await.expect("get() answers");
            sum += reply.and_then(|v| v.to_wave().ok()).and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
        }
        sum
    };
    assert_eq!(total, (RATE_ROUNDS * SENDERS * per_sender) as u64, "every acknowledged tell was applied once");
    rows.push(row(
        &format!("9. durable tells, {SENDERS} actors, {SENDERS} senders, each acknowledged (msg/s)"),
        format!("{troupe_rate:.0}"),
        format!("store alone: {floor_rate:.0} commits/s of one batch each, {SENDERS} writers"),
        Some(troupe_rate / floor_rate),
        ">= 20000 msg/s, >= 0.5x the floor",
    ));

    // One at a time: a durable ask (its reply waits for the commit of the
    // state it left) against one commit.
    let n = scale.asks / 10;
    let single = commits.clone();
    let mut floor = on_runtime(latencies(n, async move || {
        single.commit(tell_sized_batch(0)).await.expect("the commit");
    }))
    .await;
    let actor = actors[0].clone();
    let incr = actor.parse("incr(1)").expect("incr parses");
    let mut asks = on_runtime(latencies(n, async move || {
        actor.ask(incr.clone(), None, None, Duration::from_secs(60)).await.expect("the ask");
    }))
    .await;
    let (floor_p50, asks_p50) = (percentile(&mut floor, 0.5), percentile(&mut asks, 0.5));
    rows.push(row(
        "9. durable ask p50 / p99 (the reply waits for its commit)",
        format!("{} / {}", ns(asks_p50), ns(percentile(&mut asks, 0.99))),
        format!("one fsync'd commit: {} / {}", ns(floor_p50), ns(percentile(&mut floor, 0.99))),
        Some(asks_p50.as_secs_f64() / floor_p50.as_secs_f64()),
        "p50 <= 2x the commit",
    ));
    host.shutdown().await;
    recovery(scale, dir.path(), rows).await;
    snapshot_cost(scale, rows).await;
    recovery_after_kill(scale, rows).await;
}

/// Durable actors recovered after their host went away: how long until
/// all are addressable (each starts asleep with its committed state), and
/// the first ask to each (which instantiates and restores it), beside
/// spawning as many in-memory actors until started.
async fn recovery(scale: Scale, dir: &Path, rows: &mut Vec<Row>) {
    let n = scale.asks / 20;
    let host_on = |journal: Arc<DurableStore>| {
        let mut engine = EngineConfig::new();
        engine.max_instances(2 * n as u32 + 8).max_memory_bytes(64 << 20);
        Host::new(HostConfig { engine, journal: Some(journal), ..Default::default() }).expect("host builds")
    };
    let path = dir.join("recovery");
    {
        let host = host_on(Arc::new(DurableStore::open(&path).expect("the store opens")));
        let mut entry = define(&host, "counter");
        entry.policy.durability = Durability::Durable;
        for i in 0..n {
            let actor = host.spawn(entry.spec(format!("r-{i}").into())).await.expect("a durable actor starts");
            let incr = actor.parse("incr(1)").expect("incr parses");
            actor.ask(incr, None, None, Duration::from_secs(60)).await.expect("incr answers");
        }
        host.shutdown().await;
    }
    let host = host_on(Arc::new(reopen(&path)));
    let mut entry = define(&host, "counter");
    let fresh = entry.clone();
    entry.policy.durability = Durability::Durable;
    let t0 = Instant::now();
    let mut actors = Vec::with_capacity(n);
    for i in 0..n {
        actors.push(host.spawn(entry.spec(format!("r-{i}").into())).await.expect("a durable actor recovers"));
    }
    let recovered = t0.elapsed();
    let mut first_asks = Vec::with_capacity(n);
    for actor in &actors {
        let get = actor.parse("get()").expect("get() parses");
        let t = Instant::now();
        let reply = actor.ask(get, None, None, Duration::from_secs(60)).await.expect("get() answers");
        first_asks.push(t.elapsed());
        assert_eq!(reply.and_then(|v| v.to_wave().ok()).as_deref(), Some("1"), "recovered with its state");
    }
    let t0 = Instant::now();
    for i in 0..n {
        host.spawn(fresh.spec(format!("fresh-{i}").into())).await.expect("an actor starts");
    }
    let spawned = t0.elapsed();
    rows.push(row(
        &format!("9. recovery of {n} durable actors: until all addressable (per actor); first ask to each, p50"),
        format!("{} ({} each); {}", ns(recovered), ns(per(recovered, n)), ns(percentile(&mut first_asks, 0.5))),
        format!("{n} in-memory actors spawned until started: {} each", ns(per(spawned, n))),
        Some(recovered.as_secs_f64() / spawned.as_secs_f64()),
        "serving within 1 s for 10,000",
    ));
    host.shutdown().await;
}

/// The store in `path`, once the host that had it open has let go of it:
/// its actors' last handles on the store may outlive `shutdown` by a
/// moment, and the store's lock with them.
fn reopen(path: &Path) -> DurableStore {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match DurableStore::open(path) {
            Ok(store) => return store,
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("the store opens again: {e}"),
        }
    }
}

/// Acknowledged tells per second: each of `actors` gets `n` tells from a
/// sender of its own, each waiting for the acknowledgement.
async fn acknowledged_per_second(actors: Vec<ActorRef>, n: usize) -> f64 {
    let t0 = Instant::now();
    let senders: Vec<_> = actors
        .into_iter()
        .map(|actor| {
            tokio::spawn(async move {
                let incr = actor.parse("incr(1)").expect("incr parses");
                for _ in 0..n {
                    actor.send(incr.clone(), None).await.expect("the tell is acknowledged");
                }
            })
        })
        .collect();
    let count = senders.len() * n;
    for sender in senders {
        sender.await.expect("a sender");
    }
    count as f64 / t0.elapsed().as_secs_f64()
}

/// Commits per second of `n` tell-sized batches from each of [`SENDERS`]
/// writers, each waiting for its commit.
async fn committed_per_second(commits: GroupCommit, n: usize) -> f64 {
    let t0 = Instant::now();
    let writers: Vec<_> = (0..SENDERS)
        .map(|w| {
            let commits = commits.clone();
            tokio::spawn(async move {
                for _ in 0..n {
                    commits.commit(tell_sized_batch(w)).await.expect("the commit");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("a writer");
    }
    (SENDERS * n) as f64 / t0.elapsed().as_secs_f64()
}

/// A batch the size of a durable tell's inbox entry. Each writer
/// overwrites a key of its own, so that the table stays as small as the
/// inboxes of actors that keep up (their checkpoints delete what they
/// handled).
fn tell_sized_batch(writer: usize) -> Batch {
    let mut batch = Batch::new();
    let key = format!("durable-{writer}\0");
    batch.put(
        Table::Inbox,
        key.into_bytes(),
        br#"{"to":"durable-0","from":null,"message":"incr(1)","ask":false,"waiting":[]}"#.to_vec(),
    );
    batch
}

/// The state sizes of the snapshot-cost rows, with their names.
const STATE_SIZES: [(usize, &str); 3] = [(1 << 10, "1 KiB"), (64 << 10, "64 KiB"), (1 << 20, "1 MiB")];

/// What a durable ask costs as its actor's state grows. The blob's
/// `bump()` changes 8 bytes of its state, but the reply waits for the
/// commit of all of it; beside one fsync'd commit of as many bytes, alone.
/// Samples are taken in rounds interleaved between the two.
async fn snapshot_cost(scale: Scale, rows: &mut Vec<Row>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(DurableStore::open(&dir.path().join("host")).expect("the store opens"));
    let mut engine = engine_config(16);
    engine.max_memory_bytes(64 << 20);
    let host = Host::new(HostConfig { engine, journal: Some(store), ..Default::default() }).expect("host builds");
    let mut entry = define(&host, "blob");
    entry.policy.durability = Durability::Durable;
    let floor_dir = dir.path().join("floor");
    std::fs::create_dir_all(&floor_dir).expect("the floor's directory");
    let raw: Arc<dyn Store> = Arc::new(RedbStore::open(&floor_dir.join("floor.redb")).expect("redb opens"));
    let commits = GroupCommit::start(raw, GroupCommitConfig::default());
    let per_round = (scale.asks / 40 / RATE_ROUNDS).max(2);
    let mut whole = None;
    for (bytes, label) in STATE_SIZES {
        entry.policy.config = vec![("bytes".into(), bytes.to_string())];
        let actor = host.spawn(entry.spec(format!("blob-{bytes}").into())).await.expect("a durable blob starts");
        let size = actor.ask(actor.parse("size()").expect("size() parses"), None, None, ASK_TIMEOUT).await;
        assert_eq!(size.expect("size() answers"), Some(Val::U32(bytes as u32)), "the blob's state is {label}");
        let (mut floor, mut asks) = (Vec::new(), Vec::new());
        for _ in 0..RATE_ROUNDS {
            // Each batch is built before its clock starts: the floor is
            // the commit alone.
            let commits = commits.clone();
            floor.extend(
                on_runtime(async move {
                    let mut samples = Vec::with_capacity(per_round);
                    for _ in 0..per_round {
                        let batch = state_sized_batch(bytes);
                        let t0 = Instant::now();
                        commits.commit(batch).await.expect("the commit");
                        samples.push(t0.elapsed());
                    }
                    samples
                })
                .await,
            );
            asks.extend(bumps(&actor, per_round).await);
        }
        assert_bumped(&actor, asks.len()).await;
        let (floor_p50, asks_p50) = (percentile(&mut floor, 0.5), percentile(&mut asks, 0.5));
        rows.push(row(
            &format!("9. snapshot cost: durable ask changing a {label} state, p50 / p99 (commits all of it)"),
            format!("{} / {}", ns(asks_p50), ns(percentile(&mut asks, 0.99))),
            format!("one fsync'd commit of {label}: {} / {}", ns(floor_p50), ns(percentile(&mut floor, 0.99))),
            Some(asks_p50.as_secs_f64() / floor_p50.as_secs_f64()),
            "-",
        ));
        if bytes == JOURNALED_SIZE.0 {
            whole = Some(asks_p50);
        }
    }
    // The largest state again, snapshotted every 100 messages: in between,
    // a message commits a journal entry (the message and what its host
    // calls returned), not the state.
    let mut journaled = define(&host, "blob");
    journaled.policy.durability = Durability::Durable;
    journaled.policy.snapshot_every = Some(JOURNALED_EVERY);
    journaled.policy.config = vec![("bytes".into(), JOURNALED_SIZE.0.to_string())];
    let actor = host.spawn(journaled.spec("blob-journaled".into())).await.expect("a journaling blob starts");
    let mut asks = Vec::new();
    for _ in 0..RATE_ROUNDS {
        asks.extend(bumps(&actor, per_round).await);
    }
    assert_bumped(&actor, asks.len()).await;
    let (label, whole) = (JOURNALED_SIZE.1, whole.expect("the largest state was measured"));
    let asks_p50 = percentile(&mut asks, 0.5);
    rows.push(row(
        &format!("9. ... the {label} state with `snapshot-every = {JOURNALED_EVERY}` (a journal entry per message), p50 / p99"),
        format!("{} / {}", ns(asks_p50), ns(percentile(&mut asks, 0.99))),
        format!("a snapshot after every message: {}", ns(whole)),
        Some(asks_p50.as_secs_f64() / whole.as_secs_f64()),
        "-",
    ));
    host.shutdown().await;
}

/// The latencies of `n` durable asks `bump()` to the blob `actor`, one
/// after the other, from a task on the runtime.
async fn bumps(actor: &ActorRef, n: usize) -> Vec<Duration> {
    let (actor, bump) = (actor.clone(), actor.parse("bump()").expect("bump() parses"));
    on_runtime(latencies(n, async move || {
        actor.ask(bump.clone(), None, None, ASK_TIMEOUT).await.expect("bump() answers");
    }))
    .await
}

/// Checks that the blob `actor` counted `n` bumps: each applied once.
async fn assert_bumped(actor: &ActorRef, n: usize) {
    let count = actor.ask(actor.parse("count()").expect("count() parses"), None, None, ASK_TIMEOUT).await;
    assert_eq!(count.expect("count() answers"), Some(Val::U64(n as u64)), "every bump applied once");
}

/// The state of the journaling row: the largest of [`STATE_SIZES`].
const JOURNALED_SIZE: (usize, &str) = STATE_SIZES[2];

/// How often the journaling row's actor snapshots.
const JOURNALED_EVERY: u32 = 100;

/// A batch writing `bytes` bytes: what a durable actor's checkpoint of a
/// state that size writes, less its few bytes of header.
fn state_sized_batch(bytes: usize) -> Batch {
    let mut batch = Batch::new();
    batch.put(Table::Snapshots, b"blob".to_vec(), vec![0x5a; bytes]);
    batch
}

/// The first asks to recovered actors timed by the kill -9 row, at most.
const FIRST_ASKS: usize = 1_000;

/// Instance slots of the child host that the kill -9 row kills: fewer
/// than its actors, which fall asleep to make room as it spawns more.
const CHILD_SLOTS: u32 = 1_000;

/// How long the child's actors stay awake once idle.
const CHILD_HIBERNATE_AFTER: Duration = Duration::from_millis(20);

/// Spawners working at once in that child, so that their commits share
/// fsyncs as a busy host's would.
const CHILD_SPAWNERS: usize = 32;

/// Durable actors recovered after `kill -9`: a child process (this binary
/// again, [`recovery_child`]) spawns them as `troupe spawn --durable`
/// does, commits a change to each, says `ready`, and is killed with
/// SIGKILL. This process then starts a host on the same data directory as
/// `troupe run` does (open the store, start every recorded durable actor
/// again with its recovered tells held, let them go) and measures how long
/// until it serves: the first ask answered. Then the first ask to each of
/// other recovered actors (each asleep until then: it instantiates and
/// restores), beside the wake-up of a durable actor that hibernated on
/// the same host.
async fn recovery_after_kill(scale: Scale, rows: &mut Vec<Row>) {
    let n = scale.spawns;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let mut child = Command::new(exe)
        .arg("--durable-child")
        .arg(&data)
        .arg(n.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the child host starts");
    let mut said = String::new();
    let stdout = child.stdout.take().expect("the child's stdout");
    BufReader::new(stdout).read_line(&mut said).expect("the child's first line");
    assert_eq!(said.trim(), "ready", "the child host spawned its {n} durable actors");
    // SIGKILL: no shutdown, nothing but what is on disk.
    child.kill().expect("kill -9 the child");
    child.wait().expect("the child is gone");

    let samples = (n - 1).min(FIRST_ASKS);
    let t0 = Instant::now();
    let store = Arc::new(DurableStore::open(&data).expect("the store opens after the crash"));
    let mut engine = engine_config(samples as u32 + 16);
    engine.max_memory_bytes(64 << 20);
    let config = HostConfig { engine, journal: Some(store), max_actors: Some(n + 16), ..Default::default() };
    let host = Host::new(config).expect("host builds");
    let opened = t0.elapsed();
    let held = host.hold_recovered_tells();
    let outcomes = respawn_durable(&host).await;
    drop(held);
    let respawned = t0.elapsed();
    let first = host.ask("k-0", "get()", ASK_TIMEOUT).await.expect("the first ask after recovery");
    let serving = t0.elapsed();
    assert_eq!(first, Some(Val::U64(1)), "recovered with its acknowledged change");
    let failed: Vec<_> = outcomes.iter().filter(|(_, problem)| problem.is_some()).collect();
    assert!(failed.is_empty(), "every durable actor recovers: {failed:?}");
    assert_eq!(outcomes.len(), n, "every durable actor the child spawned is recorded");

    let recovered: Vec<ActorRef> =
        (1..=samples).map(|i| host.lookup(&format!("k-{i}")).expect("a recovered actor")).collect();
    let asleep = recovered.iter().filter(|a| a.status() == ActorStatus::Hibernating).count();
    assert_eq!(asleep, samples, "recovered actors are asleep until their first message");
    let get = recovered[0].parse("get()").expect("get() parses");
    let (mut first_asks, values) = on_runtime(async move {
        let (mut samples, mut values) = (Vec::new(), Vec::new());
        for actor in &recovered {
            let t = Instant::now();
            let reply = actor.ask(get.clone(), None, None, ASK_TIMEOUT).await.expect("a first ask");
            samples.push(t.elapsed());
            values.push(reply);
        }
        (samples, values)
    })
    .await;
    assert!(values.iter().all(|v| *v == Some(Val::U64(1))), "each recovered with its acknowledged change");

    let mut sleeper = define(&host, "counter");
    sleeper.policy.durability = Durability::Durable;
    sleeper.policy.hibernate_after = Some(Duration::from_millis(2));
    let actor = host.spawn(sleeper.spec("sleeper".into())).await.expect("a durable sleeper starts");
    let incr = actor.parse("incr(1)").expect("incr parses");
    actor.ask(incr, None, None, ASK_TIMEOUT).await.expect("incr answers");
    let (a, b, get) = (actor.clone(), actor.clone(), actor.parse("get()").expect("get() parses"));
    let asleep = async move || {
        while a.status() != ActorStatus::Hibernating {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let wakes = (scale.restarts / 5).max(10);
    let mut woken = on_runtime(latencies_after(wakes, asleep, async move || {
        b.ask(get.clone(), None, None, ASK_TIMEOUT).await.expect("the wake-up ask");
    }))
    .await;
    let (first_p50, wake_p50) = (percentile(&mut first_asks, 0.5), percentile(&mut woken, 0.5));
    rows.push(row(
        &format!("9. recovery of {n} durable actors after kill -9: store open to first ask answered"),
        format!(
            "{} (store open and host built {}; every actor started again {}; the ask {})",
            ns(serving),
            ns(opened),
            ns(respawned - opened),
            ns(serving - respawned)
        ),
        "-".into(),
        None,
        "serving within 1 s for 10,000",
    ));
    rows.push(row(
        &format!("9. ... then the first ask to each of {samples} recovered actors (asleep), p50"),
        ns(first_p50),
        format!("a hibernated durable actor: wake-up + ask, p50 {}", ns(wake_p50)),
        Some(first_p50.as_secs_f64() / wake_p50.as_secs_f64()),
        "within 100 µs of the wake-up",
    ));
    host.shutdown().await;
}

/// The child side of the kill -9 row: on a host over the store in `data`,
/// spawns `n` durable counters `k-0`, `k-1`, ... and records each as
/// `troupe spawn --durable` does (so that a host started on `data`
/// starts them again), asks each `incr(1)`, prints `ready`, and waits to
/// be killed.
pub fn recovery_child(data: &Path, n: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let store = Arc::new(DurableStore::open(data).expect("the store opens"));
        let mut engine = engine_config(CHILD_SLOTS);
        engine.max_memory_bytes(64 << 20);
        let config = HostConfig { engine, journal: Some(store), max_actors: Some(n + 16), ..Default::default() };
        let host = Host::new(config).expect("host builds");
        // The parent built the guests: no build here.
        let path = guest_path("counter");
        let component = host.load("counter", &path, None).expect("the counter loads");
        let mut entry = ActorTemplate::new(component);
        entry.policy.durability = Durability::Durable;
        // Idle actors fall asleep, so that the pool has room for the next.
        entry.policy.hibernate_after = Some(CHILD_HIBERNATE_AFTER);
        let next = Arc::new(AtomicUsize::new(0));
        let spawners: Vec<_> = (0..CHILD_SPAWNERS)
            .map(|_| {
                let (host, entry, path, next) = (host.clone(), entry.clone(), path.clone(), next.clone());
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return;
                        }
                        let name = format!("k-{i}");
                        let actor = host.spawn(entry.spec(name.as_str().into())).await.expect("a durable spawn");
                        let how = Request::Spawn {
                            name,
                            path: path.clone(),
                            limits: Default::default(),
                            config: Vec::new(),
                            supervisor: None,
                            restart: None,
                            durable: true,
                            http: None,
                        };
                        let how = serde_json::to_vec(&how).expect("a spawn request encodes");
                        let journal = host.journal().expect("the host's journal");
                        journal.record_spawn(actor.address(), how).await.expect("the spawn is recorded");
                        let incr = actor.parse("incr(1)").expect("incr parses");
                        actor.ask(incr, None, None, ASK_TIMEOUT).await.expect("incr answers");
                    }
                })
            })
            .collect();
        for spawner in spawners {
            spawner.await.expect("a spawner");
        }
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready").and_then(|()| out.flush()).expect("say ready");
        drop(out);
        std::future::pending::<()>().await;
    });
}
