//! Scenario 9: durable actors, beside the store alone. Acknowledged tells
//! over 64 actors against the store's group commit with as many writers
//! (each tell commits twice: its inbox entry, then the state it left);
//! and a durable ask against one fsync'd commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use troupe::actor::durable::Durability;
use troupe::store::{Batch, DurableStore, GroupCommit, GroupCommitConfig, RedbStore, Store, Table};
use troupe::{ActorRef, EngineConfig, Host, HostConfig};

use crate::Scale;
use crate::measure::{latencies, on_runtime, per, percentile};
use crate::report::{Row, ns, row};
use crate::support::define;

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
}

/// Durable actors recovered after their host went away: how long until
/// all are addressable (each starts asleep with its committed state), and
/// the first ask to each (which instantiates and restores it), beside
/// spawning as many in-memory actors until started.
async fn recovery(scale: Scale, dir: &std::path::Path, rows: &mut Vec<Row>) {
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
    let host = host_on(Arc::new(DurableStore::open(&path).expect("the store opens again")));
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
