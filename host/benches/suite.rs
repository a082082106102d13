//! The troupe benchmark suite: every scenario of issue 8 on troupe and on a
//! native baseline (a tokio task with a bounded mpsc mailbox, and kameo),
//! measured in the same run, printed as one table of ratios.
//!
//! ```text
//! cargo bench -p troupe --bench suite             # the real numbers (release)
//! cargo bench -p troupe --bench suite -- --markdown run.md   # and save the table
//! cargo test -p troupe --bench suite              # a seconds-long smoke pass (what CI runs)
//! ```
//!
//! Figures are medians or totals over one run on one machine; compare the
//! ratios, not the absolute times.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use troupe::actor::SwapOptions;
use troupe::engine::EngineKind;
use troupe::protocol::Call;
use troupe::{
    ActorLimits, ActorRef, ActorStatus, ActorTemplate, BatchDelivery, CallError, EngineConfig, Host, HostConfig,
};
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable, Val};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How much work each scenario does.
#[derive(Clone, Copy)]
struct Scale {
    tells: usize,
    asks: usize,
    actors: usize,
    spawns: usize,
    memory: [usize; 2],
    restarts: usize,
    /// Actors sharing the small pool of the eviction scenario.
    crowd: usize,
    swaps: usize,
    calls: usize,
    smoke: bool,
}

impl Scale {
    fn full() -> Self {
        Scale {
            tells: 200_000,
            asks: 20_000,
            actors: 64,
            spawns: 10_000,
            memory: [10_000, 100_000],
            restarts: 500,
            crowd: 1_000,
            swaps: 100,
            calls: 200_000,
            smoke: false,
        }
    }

    fn smoke() -> Self {
        Scale {
            tells: 2_000,
            asks: 200,
            actors: 8,
            spawns: 100,
            memory: [100, 200],
            restarts: 10,
            crowd: 120,
            swaps: 3,
            calls: 2_000,
            smoke: true,
        }
    }
}

/// One row of the table.
struct Row {
    scenario: String,
    troupe: String,
    baseline: String,
    ratio: String,
    target: String,
}

fn row(scenario: &str, troupe: String, baseline: String, ratio: Option<f64>, target: &str) -> Row {
    Row {
        scenario: scenario.into(),
        troupe,
        baseline,
        ratio: ratio.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "-".into()),
        target: target.into(),
    }
}

fn ns(d: Duration) -> String {
    let n = d.as_nanos();
    if n < 10_000 {
        format!("{n} ns")
    } else if n < 10_000_000 {
        format!("{:.1} µs", n as f64 / 1e3)
    } else {
        format!("{:.1} ms", n as f64 / 1e6)
    }
}

fn per(total: Duration, n: usize) -> Duration {
    total / n.max(1) as u32
}

/// Times `n` runs of `op`, one sample each.
async fn latencies(n: usize, op: impl AsyncFnMut()) -> Vec<Duration> {
    latencies_after(n, async || {}, op).await
}

/// Times `n` runs of `op`, each after an untimed `setup` (a failure to
/// recover from, a sleep to wake from).
async fn latencies_after(n: usize, mut setup: impl AsyncFnMut(), mut op: impl AsyncFnMut()) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        setup().await;
        let t0 = Instant::now();
        op().await;
        samples.push(t0.elapsed());
    }
    samples
}

/// Time per message of `n` sends, up to the round trip (`confirm`) that
/// shows the receiver has handled them all.
async fn per_message(n: usize, mut send: impl AsyncFnMut(), confirm: impl AsyncFnOnce()) -> Duration {
    let t0 = Instant::now();
    for _ in 0..n {
        send().await;
    }
    confirm().await;
    per(t0.elapsed(), n)
}

/// Runs `timing` in a task on the runtime, as a request handler or another
/// actor would ask, rather than from the thread blocked on the runtime: a
/// round trip then measures the actor system, not how long this VM takes
/// to wake a sleeping thread (which alone varied from 5 to 30 µs).
async fn on_runtime<T: Send + 'static>(timing: impl Future<Output = T> + Send + 'static) -> T {
    tokio::spawn(timing).await.expect("the timing task")
}

/// Rounds of each throughput measurement, interleaved between the systems
/// compared; the median round counts. Interleaving spreads this shared
/// VM's slow spells over all of them instead of over whichever ran then.
const ROUNDS: usize = 5;

fn median(mut rounds: Vec<Duration>) -> Duration {
    percentile(&mut rounds, 0.5)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples.get(i).copied().unwrap_or_default()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// The cargo target directory this benchmark was built into
/// (`target/<profile>/deps/suite-<hash>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the benchmark's path");
    exe.ancestors().nth(3).map(Path::to_path_buf).unwrap_or_else(|| workspace().join("target"))
}

/// The compile cache the integration tests share, so a smoke pass after
/// the tests compiles nothing.
fn cache_dir() -> PathBuf {
    target_dir().join("troupe-test-cache")
}

fn guest(name: &str) -> PathBuf {
    workspace().join("examples-guests/build").join(format!("{name}.wasm"))
}

fn build_guests() {
    let status = std::process::Command::new(workspace().join("scripts/build-guests"))
        .env("CARGO_TARGET_DIR", target_dir())
        .status();
    assert!(status.is_ok_and(|s| s.success()), "scripts/build-guests failed");
}

/// Proportional set size: resident memory with pages shared between
/// mappings divided among them. Copy-on-write memory images map the same
/// pages once per instance, which RSS counts every time.
fn pss_bytes() -> u64 {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let kib: u64 = rollup
        .lines()
        .find(|l| l.starts_with("Pss:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    kib * 1024
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn host(max_instances: u32, max_memory: u64) -> Host {
    host_batching(max_instances, max_memory, BatchDelivery::default())
}

/// [`host`], with `batch` for batch delivery.
fn host_batching(max_instances: u32, max_memory: u64, batch: BatchDelivery) -> Host {
    let mut engine = EngineConfig::new();
    engine.max_instances(max_instances).max_memory_bytes(max_memory).cache_dir(Some(cache_dir())).batch_delivery(batch);
    Host::new(HostConfig { engine, ..Default::default() }).expect("host")
}

async fn spawn(host: &Host, guest_name: &str, address: &str, limits: ActorLimits) -> ActorRef {
    let component = host.load(guest_name, &guest(guest_name), None).expect("guest loads");
    let mut entry = ActorTemplate::new(component);
    entry.policy.limits = limits;
    host.spawn(entry.spec(address.into())).await.expect("spawn")
}

/// Sends `call` as a tell, waiting while the mailbox is full.
async fn tell(actor: &ActorRef, call: &Call) {
    loop {
        match actor.tell(call.clone(), None) {
            Ok(()) => return,
            Err(CallError::MailboxFull(_)) => tokio::task::yield_now().await,
            Err(e) => panic!("tell failed: {e}"),
        }
    }
}

/// The timeout of every ask the suite makes (troupe's, and kameo's timed
/// baseline): far longer than any ask takes.
const ASK_TIMEOUT: Duration = Duration::from_secs(60);

/// Asks, waiting while the mailbox is full (as after a burst of tells).
async fn ask(actor: &ActorRef, call: &Call) -> Option<Val> {
    ask_within(actor, call, ASK_TIMEOUT).await
}

/// [`ask`], with `timeout` (`troupe::NO_TIMEOUT` for none).
async fn ask_within(actor: &ActorRef, call: &Call, timeout: Duration) -> Option<Val> {
    loop {
        match actor.ask(call.clone(), None, None, timeout).await {
            Err(CallError::MailboxFull(_)) => tokio::task::yield_now().await,
            reply => return reply.expect("ask"),
        }
    }
}

// ---- the native baselines -------------------------------------------------

enum TokioMsg {
    Incr(u64),
    Get(oneshot::Sender<u64>),
}

/// A bare tokio actor: a task and a bounded mpsc mailbox.
fn tokio_counter() -> mpsc::Sender<TokioMsg> {
    let (tx, mut rx) = mpsc::channel::<TokioMsg>(1024);
    tokio::spawn(async move {
        let mut value = 0u64;
        while let Some(msg) = rx.recv().await {
            match msg {
                TokioMsg::Incr(by) => value += by,
                TokioMsg::Get(reply) => {
                    let _ = reply.send(value);
                }
            }
        }
    });
    tx
}

async fn tokio_get(tx: &mpsc::Sender<TokioMsg>) -> u64 {
    let (reply, rx) = oneshot::channel();
    tx.send(TokioMsg::Get(reply)).await.expect("send");
    rx.await.expect("reply")
}

mod kameo_counter {
    use kameo::Actor;
    use kameo::message::{Context, Message};

    #[derive(Actor, Default)]
    pub struct Counter {
        pub value: u64,
    }

    pub struct Incr(pub u64);
    pub struct Get;

    impl Message<Incr> for Counter {
        type Reply = u64;
        async fn handle(&mut self, msg: Incr, _ctx: &mut Context<Self, Self::Reply>) -> u64 {
            self.value += msg.0;
            self.value
        }
    }

    impl Message<Get> for Counter {
        type Reply = u64;
        async fn handle(&mut self, _: Get, _ctx: &mut Context<Self, Self::Reply>) -> u64 {
            self.value
        }
    }
}

/// The kameo twin of the probe's `remember(item: string)`.
mod kameo_notebook {
    use kameo::Actor;
    use kameo::message::{Context, Message};

    #[derive(Actor, Default)]
    pub struct Notebook {
        pub items: Vec<String>,
    }

    pub struct Remember(pub String);
    pub struct Count;

    impl Message<Remember> for Notebook {
        type Reply = ();
        async fn handle(&mut self, msg: Remember, _ctx: &mut Context<Self, Self::Reply>) {
            self.items.push(msg.0);
        }
    }

    impl Message<Count> for Notebook {
        type Reply = usize;
        async fn handle(&mut self, _: Count, _ctx: &mut Context<Self, Self::Reply>) -> usize {
            self.items.len()
        }
    }
}

use kameo::actor::Spawn as _;
use kameo_counter::{Counter as KameoCounter, Get as KGet, Incr as KIncr};

fn kameo_counter() -> kameo::actor::ActorRef<KameoCounter> {
    KameoCounter::spawn_with_mailbox(KameoCounter::default(), kameo::mailbox::bounded(1024))
}

// ---- the scenarios --------------------------------------------------------

/// 1a: tells to one counter, per message; troupe also with batch entry
/// points off (one call into the guest per message).
async fn tell_one(scale: Scale, host: &Host, rows: &mut Vec<Row>) {
    let actor = spawn(host, "counter", "tell-one", ActorLimits::default()).await;
    let unbatched_host = host_batching(16, 64 << 20, BatchDelivery::Off);
    let unbatched = spawn(&unbatched_host, "counter", "tell-one", ActorLimits::default()).await;
    let incr = actor.parse("incr(1)").unwrap();
    let get = actor.parse("get()").unwrap();
    let tx = tokio_counter();
    let k = kameo_counter();
    let n = scale.tells / ROUNDS;
    let (mut troupe, mut one_call, mut bare, mut kameo) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut mixed = Vec::new();
    for _ in 0..ROUNDS {
        for (actor, times) in [(&actor, &mut troupe), (&unbatched, &mut one_call)] {
            let (a, b, incr, get) = (actor.clone(), actor.clone(), incr.clone(), get.clone());
            let send = async move || tell(&a, &incr).await;
            let confirm = async move || {
                ask(&b, &get).await;
            };
            times.push(on_runtime(per_message(n, send, confirm)).await);
        }
        // Alternating `incr(1)` and `get()`: the mixed entry point.
        let (a, b, incr, get, get2) = (actor.clone(), actor.clone(), incr.clone(), get.clone(), get.clone());
        let mut odd = false;
        let send = async move || {
            odd = !odd;
            tell(&a, if odd { &incr } else { &get }).await
        };
        let confirm = async move || {
            ask(&b, &get2).await;
        };
        mixed.push(on_runtime(per_message(2 * n, send, confirm)).await);
        let (tx1, tx2) = (tx.clone(), tx.clone());
        let send = async move || tx1.send(TokioMsg::Incr(1)).await.unwrap();
        let confirm = async move || {
            tokio_get(&tx2).await;
        };
        bare.push(on_runtime(per_message(n, send, confirm)).await);
        let (k1, k2) = (k.clone(), k.clone());
        let send = async move || k1.tell(KIncr(1)).await.unwrap();
        let confirm = async move || {
            k2.ask(KGet).await.unwrap();
        };
        kameo.push(on_runtime(per_message(n, send, confirm)).await);
    }
    let total = (ROUNDS * n) as u64;
    let total_mixed = total + (ROUNDS * n) as u64;
    for (actor, total) in [(&actor, total_mixed), (&unbatched, total)] {
        assert_eq!(ask(actor, &get).await.and_then(|v| if let Val::U64(v) = v { Some(v) } else { None }), Some(total));
    }
    assert!(actor.info().batched > 0, "the tells went in batches");
    assert_eq!(unbatched.info().batched, 0);
    assert_eq!(tokio_get(&tx).await, total);
    assert_eq!(k.ask(KGet).await.unwrap(), total);
    let (troupe, one_call, bare, kameo) = (median(troupe), median(one_call), median(bare), median(kameo));
    let mixed = median(mixed);

    rows.push(row(
        "1. tell, one actor (per message)",
        ns(troupe),
        format!("tokio {} / kameo {}", ns(bare), ns(kameo)),
        Some(troupe.as_secs_f64() / kameo.as_secs_f64()),
        "<= kameo, <= 5x tokio",
    ));
    rows.push(row(
        "   ... vs the bare tokio actor",
        ns(troupe),
        ns(bare),
        Some(troupe.as_secs_f64() / bare.as_secs_f64()),
        "<= 5x",
    ));
    rows.push(row(
        "   ... alternating two functions (the mixed entry point)",
        ns(mixed),
        format!("kameo {}", ns(kameo)),
        Some(mixed.as_secs_f64() / kameo.as_secs_f64()),
        "-",
    ));
    rows.push(row(
        "   ... one call per message (batch entries off)",
        ns(one_call),
        format!("kameo {}", ns(kameo)),
        Some(one_call.as_secs_f64() / kameo.as_secs_f64()),
        "-",
    ));
    for actor in [actor, unbatched] {
        actor.stop();
        actor.stopped().await;
    }
}

/// 1c: tells with a string argument (the probe's `remember`), by default
/// a call each, and with `BatchDelivery::All` several per call.
async fn tell_strings(scale: Scale, host: &Host, rows: &mut Vec<Row>) {
    use kameo_notebook::{Count, Notebook, Remember};
    const ITEM: &str = "hello there, how are you";
    let memory_host = host_batching(16, 64 << 20, BatchDelivery::All);
    let default = spawn(host, "probe", "notes", ActorLimits::default()).await;
    let all = spawn(&memory_host, "probe", "notes", ActorLimits::default()).await;
    let remember = default.parse(&format!("remember({ITEM:?})")).unwrap();
    let ticks = default.parse("ticks()").unwrap();
    let k = Notebook::spawn_with_mailbox(Notebook::default(), kameo::mailbox::bounded(1024));
    let n = scale.tells / ROUNDS / 2;
    let (mut one_call, mut batched, mut kameo) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for (actor, times) in [(&default, &mut one_call), (&all, &mut batched)] {
            let (a, b, remember, ticks) = (actor.clone(), actor.clone(), remember.clone(), ticks.clone());
            let send = async move || tell(&a, &remember).await;
            let confirm = async move || {
                ask(&b, &ticks).await;
            };
            times.push(on_runtime(per_message(n, send, confirm)).await);
        }
        let (k1, k2) = (k.clone(), k.clone());
        let send = async move || k1.tell(Remember(ITEM.to_string())).await.unwrap();
        let confirm = async move || {
            k2.ask(Count).await.unwrap();
        };
        kameo.push(on_runtime(per_message(n, send, confirm)).await);
    }
    assert_eq!(k.ask(Count).await.unwrap(), ROUNDS * n);
    assert!(all.info().batched > 0 && default.info().batched == 0);
    let (one_call, batched, kameo) = (median(one_call), median(batched), median(kameo));
    rows.push(row(
        "1''. tell with a string argument (`--batch-delivery all`)",
        ns(batched),
        format!("kameo {}", ns(kameo)),
        Some(batched.as_secs_f64() / kameo.as_secs_f64()),
        "-",
    ));
    rows.push(row(
        "   ... by default (a call per message)",
        ns(one_call),
        format!("kameo {}", ns(kameo)),
        Some(one_call.as_secs_f64() / kameo.as_secs_f64()),
        "-",
    ));
    for actor in [default, all] {
        actor.stop();
        actor.stopped().await;
    }
}

/// 1b: tells to many actors from several senders, total throughput.
async fn tell_many(scale: Scale, host: &Host, rows: &mut Vec<Row>) -> f64 {
    let troupe = troupe_many(scale, host, "many").await;
    let senders = 4;
    let per_sender = scale.tells / senders;
    let txs: Arc<Vec<_>> = Arc::new((0..scale.actors).map(|_| tokio_counter()).collect());
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        let txs = txs.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_sender {
                txs[(s + i) % txs.len()].send(TokioMsg::Incr(1)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for tx in txs.iter() {
        tokio_get(tx).await;
    }
    let bare = (senders * per_sender) as f64 / t0.elapsed().as_secs_f64();
    rows.push(row(
        &format!("1. tell, {} actors, 4 senders (msg/s)", scale.actors),
        format!("{:.0}", troupe),
        format!("tokio {bare:.0}"),
        Some(bare / troupe),
        "-",
    ));
    troupe
}

async fn troupe_many(scale: Scale, host: &Host, prefix: &str) -> f64 {
    let mut actors = Vec::new();
    for i in 0..scale.actors {
        actors.push(spawn(host, "counter", &format!("{prefix}-{i}"), ActorLimits::default()).await);
    }
    let incr = actors[0].parse("incr(1)").unwrap();
    let get = actors[0].parse("get()").unwrap();
    let actors = Arc::new(actors);
    let senders = 4;
    let per_sender = scale.tells / senders;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (actors, incr) = (actors.clone(), incr.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per_sender {
                tell(&actors[(s + i) % actors.len()], &incr).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for a in actors.iter() {
        ask(a, &get).await;
    }
    let rate = (senders * per_sender) as f64 / t0.elapsed().as_secs_f64();
    for a in actors.iter() {
        a.stop();
        a.stopped().await;
    }
    rate
}

/// 2: ask round trips, host to actor and actor to actor.
async fn asks(scale: Scale, host: &Host, floor: &Arc<Floor>, rows: &mut Vec<Row>) {
    let actor = spawn(host, "counter", "ask-one", ActorLimits::default()).await;
    let incr = actor.parse("incr(1)").unwrap();
    let (k, tx) = (kameo_counter(), tokio_counter());
    let n = scale.asks / ROUNDS;
    let (mut troupe, mut kameo, mut kameo_timed, mut bare) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut wasm, mut troupe_timed) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let floor = floor.clone();
        wasm.extend(
            on_runtime(async move {
                let mut counter = floor.start().await;
                let mut samples = Vec::with_capacity(n);
                for _ in 0..n {
                    let t0 = Instant::now();
                    counter.incr().await;
                    samples.push(t0.elapsed());
                }
                samples
            })
            .await,
        );
        // Like for like: kameo's plain ask arms no timer, and neither does
        // troupe's with `NO_TIMEOUT`; with a timeout, both arm one (an
        // entry in tokio's timer wheel).
        let (a, incr1) = (actor.clone(), incr.clone());
        troupe.extend(
            on_runtime(latencies(n, async move || {
                ask_within(&a, &incr1, troupe::NO_TIMEOUT).await;
            }))
            .await,
        );
        let k1 = k.clone();
        kameo.extend(
            on_runtime(latencies(n, async move || {
                k1.ask(KIncr(1)).await.unwrap();
            }))
            .await,
        );
        let (a, incr1) = (actor.clone(), incr.clone());
        troupe_timed.extend(
            on_runtime(latencies(n, async move || {
                ask(&a, &incr1).await;
            }))
            .await,
        );
        let k2 = k.clone();
        kameo_timed.extend(
            on_runtime(latencies(n, async move || {
                k2.ask(KIncr(1)).reply_timeout(ASK_TIMEOUT).await.unwrap();
            }))
            .await,
        );
        let tx = tx.clone();
        bare.extend(
            on_runtime(latencies(n, async move || {
                tokio_get(&tx).await;
            }))
            .await,
        );
    }
    let (t50, t99) = (percentile(&mut troupe, 0.5), percentile(&mut troupe, 0.99));
    let (k50, k99) = (percentile(&mut kameo, 0.5), percentile(&mut kameo, 0.99));
    let (kt50, kt99) = (percentile(&mut kameo_timed, 0.5), percentile(&mut kameo_timed, 0.99));
    let (tt50, tt99) = (percentile(&mut troupe_timed, 0.5), percentile(&mut troupe_timed, 0.99));
    let mut samples = bare;
    let b50 = percentile(&mut samples, 0.5);
    rows.push(row(
        "2. ask host->actor p50 / p99, no reply timeout (`NO_TIMEOUT`; kameo's plain ask)",
        format!("{} / {}", ns(t50), ns(t99)),
        format!("kameo {} / {}, tokio p50 {}", ns(k50), ns(k99), ns(b50)),
        Some(t50.as_secs_f64() / k50.as_secs_f64()),
        "p50 <= 2x kameo",
    ));
    rows.push(row(
        "2. ... with a 60 s reply timeout (kameo's `reply_timeout`)",
        format!("{} / {}", ns(tt50), ns(tt99)),
        format!("kameo {} / {}", ns(kt50), ns(kt99)),
        Some(tt50.as_secs_f64() / kt50.as_secs_f64()),
        "p50 <= 2x kameo",
    ));
    let w50 = percentile(&mut wasm, 0.5);
    rows.push(row(
        "2. ... the floor: `incr` called into a bare wasmtime instance, no actor around it (p50)",
        ns(w50),
        format!("kameo's whole ask {}", ns(k50)),
        Some(w50.as_secs_f64() / k50.as_secs_f64()),
        "-",
    ));

    // Actor to actor: the tally asks the counter through its typed import,
    // HOPS times within one message (`spread`); the hop is the difference
    // to a message that makes none, divided by HOPS, so the host->tally leg
    // and its noise cancel out.
    const HOPS: u32 = 100;
    let tally = spawn(host, "tally", "ask-tally", ActorLimits::default()).await;
    host.bind("ask-tally", "example:counter/api", troupe::actor::binding::BindingSpec::actor("ask-one")).unwrap();
    let (many, none) = (tally.parse(&format!("spread({HOPS}, 1)")).unwrap(), tally.parse("spread(0, 1)").unwrap());
    let rounds = (scale.asks / HOPS as usize).max(20);
    let mut with_hops = latencies(rounds, async || {
        ask(&tally, &many).await;
    })
    .await;
    let mut without = latencies(rounds, async || {
        ask(&tally, &none).await;
    })
    .await;
    let two = percentile(&mut without, 0.5);
    let hop = percentile(&mut with_hops, 0.5).saturating_sub(two) / HOPS;
    // The native equivalent: actor A asks actor B per request.
    // A times its own ask to B, so the hop is measured, not derived.
    let (a_tx, mut a_rx) = mpsc::channel::<oneshot::Sender<Duration>>(1024);
    let b = tokio_counter();
    tokio::spawn(async move {
        while let Some(reply) = a_rx.recv().await {
            let t0 = Instant::now();
            tokio_get(&b).await;
            let _ = reply.send(t0.elapsed());
        }
    });
    let mut samples = Vec::with_capacity(scale.asks);
    let mut hops = Vec::with_capacity(scale.asks);
    for _ in 0..scale.asks {
        let t0 = Instant::now();
        let (reply, rx) = oneshot::channel();
        a_tx.send(reply).await.unwrap();
        hops.push(rx.await.unwrap());
        samples.push(t0.elapsed());
    }
    let native_two = percentile(&mut samples, 0.5);
    let native_hop = percentile(&mut hops, 0.5);
    rows.push(row(
        "2. ask actor->actor (typed import) p50",
        format!("{} (host->A alone {})", ns(hop), ns(two)),
        format!("tokio {} (A->B {})", ns(native_hop), ns(native_two)),
        Some(hop.as_secs_f64() / native_hop.as_secs_f64().max(1e-9)),
        "< 10 µs",
    ));
    for a in [actor, tally] {
        a.stop();
        a.stopped().await;
    }
}

/// wasmtime alone, without troupe: the counter component in a bare
/// `Store`, on an engine configured as the host's. It is the floor under an
/// ask (one `call_async`, no mailbox, no task) and under a spawn (a `Store`,
/// an instance from an `InstancePre`, `init`): what the sandbox costs
/// before troupe adds anything. Its own instance pool keeps its slots as
/// fresh as the host's were when row 3 ran.
struct Floor {
    engine: wasmtime::Engine,
    pre: InstancePre<FloorData>,
    /// Keeps the epoch ticker running.
    _troupe: troupe::engine::Engine,
}

/// What a bare store holds: a WASI context granting nothing, as troupe's.
struct FloorData {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl FloorData {
    fn new() -> Self {
        FloorData { ctx: WasiCtx::builder().build(), table: ResourceTable::new() }
    }
}

impl WasiView for FloorData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}

/// A counter instance in its own store.
struct FloorActor {
    store: Store<FloorData>,
    incr: wasmtime::component::Func,
}

impl Floor {
    fn new(max_instances: u32, max_memory: u64) -> Self {
        let mut config = EngineConfig::new();
        config.max_instances(max_instances).max_memory_bytes(max_memory);
        let troupe = config.build().expect("the floor's engine");
        let engine = troupe.wasmtime(EngineKind::Epoch).expect("the floor's wasmtime engine").clone();
        let component = Component::from_file(&engine, guest("counter")).expect("the counter compiles");
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("WASI links");
        // troupe's host API: the counter imports it, but neither `init`
        // nor `incr` calls it.
        linker.define_unknown_imports_as_traps(&component).expect("the host API stubs");
        let pre = linker.instantiate_pre(&component).expect("the counter's imports resolve");
        Floor { engine, pre, _troupe: troupe }
    }

    /// What a spawn needs at least: a store, an instance, `init` called.
    async fn start(&self) -> FloorActor {
        let mut store = Store::new(&self.engine, FloorData::new());
        // No budget: the floor measures calls, not preemption.
        store.set_epoch_deadline(1 << 40);
        let instance = self.pre.instantiate_async(&mut store).await.expect("the counter instantiates");
        let mut func = |interface: &str, name: &str| {
            let interface = instance.get_export_index(&mut store, None, interface).expect("the interface");
            let index = instance.get_export_index(&mut store, Some(&interface), name).expect("the function");
            instance.get_func(&mut store, index).expect("a function")
        };
        let init = func("troupe:actor/lifecycle@0.2.0", "init");
        let incr = func("example:counter/api@0.1.0", "incr");
        let mut result = [Val::Bool(false)];
        init.call_async(&mut store, &[Val::List(Vec::new())], &mut result).await.expect("init");
        FloorActor { store, incr }
    }
}

impl FloorActor {
    async fn incr(&mut self) -> Val {
        let mut result = [Val::U64(0)];
        self.incr.call_async(&mut self.store, &[Val::U64(1)], &mut result).await.expect("incr");
        let [value] = result;
        value
    }
}

/// Makes `n` things with `one(i)` in a task on the runtime (like the
/// latencies above), timing each; returns the samples, the things, and
/// when the first began (for a rate that may count more than the loop).
async fn timed_spawns<T, F>(
    n: usize,
    mut one: impl FnMut(usize) -> F + Send + 'static,
) -> (Vec<Duration>, Vec<T>, Instant)
where
    T: Send + 'static,
    F: Future<Output = T> + Send,
{
    on_runtime(async move {
        let mut samples = Vec::with_capacity(n);
        let mut made = Vec::with_capacity(n);
        let t0 = Instant::now();
        for i in 0..n {
            let t = Instant::now();
            made.push(one(i).await);
            samples.push(t.elapsed());
        }
        (samples, made, t0)
    })
    .await
}

/// p50 / p99 and the rate of `n` since `t0`, as the spawn rows show them.
fn spawn_figures(samples: &mut [Duration], n: usize, t0: Instant) -> (Duration, String) {
    let (p50, p99) = (percentile(samples, 0.5), percentile(samples, 0.99));
    (p50, format!("{} / {}, {:.0}/s", ns(p50), ns(p99), n as f64 / t0.elapsed().as_secs_f64()))
}

/// Stops the actors a spawn row made, troupe's and kameo's, and waits.
async fn stop_both(actors: &[ActorRef], kactors: Vec<kameo::actor::ActorRef<KameoCounter>>) {
    for a in actors {
        a.stop();
    }
    for a in actors {
        a.stopped().await;
    }
    for a in kactors {
        let _ = a.stop_gracefully().await;
    }
}

/// 3: spawning many actors.
async fn spawns(scale: Scale, host: &Host, floor: &Arc<Floor>, rows: &mut Vec<Row>) {
    let n = scale.spawns;
    let entry = ActorTemplate::new(host.load("counter", &guest("counter"), None).unwrap());
    let h = host.clone();
    let (mut samples, actors, t0) = timed_spawns(n, move |i| {
        let (h, spec) = (h.clone(), entry.spec(format!("s-{i}").into()));
        async move { h.spawn(spec).await.unwrap() }
    })
    .await;
    let (s50, troupe) = spawn_figures(&mut samples, n, t0);
    let (mut samples, kactors, t0) = timed_spawns(n, |_| async {
        let a = KameoCounter::spawn(KameoCounter::default());
        a.wait_for_startup().await;
        a
    })
    .await;
    let (k50, kameo) = spawn_figures(&mut samples, n, t0);
    rows.push(row(
        &format!("3. spawn {n} actors, each waited for until started: p50 / p99, rate"),
        troupe,
        format!("kameo {kameo}"),
        Some(s50.as_secs_f64() / k50.as_secs_f64()),
        "p50 <= kameo",
    ));
    stop_both(&actors, kactors).await;

    // The floor under row 3: wasmtime alone, instances kept alive so that
    // each takes a fresh slot, as each actor above did.
    let f = floor.clone();
    let (mut samples, counters, t0) = timed_spawns(n, move |_| {
        let f = f.clone();
        async move { f.start().await }
    })
    .await;
    let (f50, wasmtime) = spawn_figures(&mut samples, n, t0);
    drop(counters);
    rows.push(row(
        "3. ... the floor: wasmtime alone, a store, an instance and `init`, kept alive: p50 / p99, rate",
        wasmtime,
        format!("kameo {kameo}"),
        Some(f50.as_secs_f64() / k50.as_secs_f64()),
        "-",
    ));

    // Without waiting for each start: `Host::start` and kameo's `spawn`
    // return an address at once; then all starts are awaited, and the
    // rate counts until the last has started.
    let entry = ActorTemplate::new(host.load("counter", &guest("counter"), None).unwrap());
    let h = host.clone();
    let (mut samples, starting, t0) = timed_spawns(n, move |i| {
        let started = h.start(entry.spec(format!("s-{i}").into())).unwrap();
        async move { started }
    })
    .await;
    let actors = on_runtime(async move {
        let mut actors = Vec::with_capacity(starting.len());
        for s in starting {
            actors.push(s.started().await.unwrap());
        }
        actors
    })
    .await;
    let (s50, troupe) = spawn_figures(&mut samples, n, t0);
    let (mut samples, kactors, t0) =
        timed_spawns(n, |_| std::future::ready(KameoCounter::spawn(KameoCounter::default()))).await;
    let kactors = on_runtime(async move {
        for a in &kactors {
            a.wait_for_startup().await;
        }
        kactors
    })
    .await;
    let (k50, kameo) = spawn_figures(&mut samples, n, t0);
    rows.push(row(
        "3'. ... without waiting for each start: p50 / p99, rate until all started",
        troupe,
        format!("kameo {kameo}"),
        Some(s50.as_secs_f64() / k50.as_secs_f64()),
        "-",
    ));
    stop_both(&actors, kactors).await;

    // Short-lived actors: each is stopped before the next is spawned, so
    // every spawn reuses the instance slot the one before gave back.
    let churn = (n / 5).max(10);
    let entry = ActorTemplate::new(host.load("counter", &guest("counter"), None).unwrap());
    let h = host.clone();
    let mut samples = on_runtime(async move {
        let mut samples = Vec::with_capacity(churn);
        for i in 0..churn {
            let spec = entry.spec(format!("c-{i}").into());
            let t = Instant::now();
            let actor = h.spawn(spec).await.unwrap();
            samples.push(t.elapsed());
            h.stop(actor.address().as_str()).await.unwrap();
        }
        samples
    })
    .await;
    let (c50, c99) = (percentile(&mut samples, 0.5), percentile(&mut samples, 0.99));
    let mut ksamples = on_runtime(async move {
        let mut samples = Vec::with_capacity(churn);
        for _ in 0..churn {
            let t = Instant::now();
            let actor = KameoCounter::spawn(KameoCounter::default());
            actor.wait_for_startup().await;
            samples.push(t.elapsed());
            let _ = actor.stop_gracefully().await;
            actor.wait_for_shutdown().await;
        }
        samples
    })
    .await;
    let (kc50, kc99) = (percentile(&mut ksamples, 0.5), percentile(&mut ksamples, 0.99));
    let f = floor.clone();
    let mut fsamples = on_runtime(async move {
        let mut samples = Vec::with_capacity(churn);
        for _ in 0..churn {
            let t = Instant::now();
            let counter = f.start().await;
            samples.push(t.elapsed());
            drop(counter);
        }
        samples
    })
    .await;
    let fc50 = percentile(&mut fsamples, 0.5);
    rows.push(row(
        &format!("3''. spawn {churn} short-lived actors, each stopped before the next (slots reused): p50 / p99"),
        format!("{} / {} (wasmtime alone: p50 {})", ns(c50), ns(c99), ns(fc50)),
        format!("kameo {} / {}", ns(kc50), ns(kc99)),
        Some(c50.as_secs_f64() / kc50.as_secs_f64()),
        "-",
    ));
}

/// 4: resident memory per idle actor. Each figure comes from a fresh child
/// process, so that one measurement's freed memory cannot hide the next's.
fn memory(scale: Scale, rows: &mut Vec<Row>) {
    for n in scale.memory {
        // (PSS, RSS) per actor, in bytes.
        let measure = |system: &str| -> Result<(f64, f64), String> {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--memory-child", system, &n.to_string()])
                .output()
                .map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut fields = text.split_whitespace().map(str::parse::<f64>);
            match (fields.next(), fields.next()) {
                (Some(Ok(pss)), Some(Ok(rss))) => Ok((pss, rss)),
                _ => {
                    let err = String::from_utf8_lossy(&out.stderr);
                    Err(format!("{} {}", text.trim(), err.lines().last().unwrap_or("")))
                }
            }
        };
        let kameo = measure("kameo");
        let show = |r: &Result<(f64, f64), String>| match r {
            Ok((pss, rss)) => format!("{:.1} KiB (RSS {:.1} KiB)", pss / 1024.0, rss / 1024.0),
            Err(e) => format!("failed: {e}"),
        };
        let scenarios = [
            ("troupe", format!("4. memory per idle actor (PSS), {n} actors"), "<= kameo"),
            (
                "wasmtime",
                format!("4. ... the floor: wasmtime alone, a store and an instance of the counter, {n} of them"),
                "-",
            ),
            (
                "troupe-hibernating",
                format!(
                    "4. ... hibernating ({HIBERNATE_AFTER_MS} ms idle, {HIBERNATION_SLOTS} instance slots), {n} actors"
                ),
                "<= kameo",
            ),
        ];
        for (system, scenario, target) in scenarios {
            let troupe = measure(system);
            let ratio = match (&troupe, &kameo) {
                (Ok(t), Ok(k)) => Some(t.0 / k.0.max(1.0)),
                _ => None,
            };
            rows.push(row(&scenario, show(&troupe), format!("kameo {}", show(&kameo)), ratio, target));
        }
    }
}

/// With `troupe-hibernating`: how long the counters stay awake after
/// `init`...
const HIBERNATE_AFTER_MS: u64 = 10;
/// ...and the instance pool they share (awake actors need a slot each).
const HIBERNATION_SLOTS: u32 = 1_000;

/// The child side of scenario 4: starts `n` idle actors of `system` and
/// prints the resident memory they added, per actor, in bytes.
fn memory_child(system: &str, n: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        if system == "kameo" {
            let (pss, rss) = (pss_bytes(), rss_bytes());
            let actors: Vec<_> = (0..n).map(|_| KameoCounter::spawn(KameoCounter::default())).collect();
            for a in &actors {
                a.wait_for_startup().await;
            }
            let per = |now: u64, then: u64| now.saturating_sub(then) as f64 / n as f64;
            println!("{} {}", per(pss_bytes(), pss), per(rss_bytes(), rss));
            return;
        }
        if system == "wasmtime" {
            let floor = Floor::new(n as u32 + 16, 4 << 20);
            let (pss, rss) = (pss_bytes(), rss_bytes());
            let mut counters = Vec::with_capacity(n);
            for _ in 0..n {
                counters.push(floor.start().await);
            }
            let per = |now: u64, then: u64| now.saturating_sub(then) as f64 / n as f64;
            println!("{} {}", per(pss_bytes(), pss), per(rss_bytes(), rss));
            return;
        }
        // Small slots: 4 MiB of address space per memory is plenty for the
        // counter (1.1 MiB at start) and keeps the pool for 100,000
        // instances within the address space. Each live instance costs about
        // six memory mappings, so 100,000 need vm.max_map_count above the
        // default 65530 (see README, "Many actors").
        //
        // Hibernating actors hold no instance: a pool of 1,000 slots serves
        // them, within the default map count.
        let hibernate = system == "troupe-hibernating";
        let host = if hibernate {
            let mut engine = EngineConfig::new();
            engine.max_instances(HIBERNATION_SLOTS).max_memory_bytes(4 << 20).cache_dir(Some(cache_dir()));
            Host::new(HostConfig { engine, max_actors: Some(n), ..Default::default() }).expect("host")
        } else {
            host(n as u32 + 16, 4 << 20)
        };
        let component = host.load("counter", &guest("counter"), None).unwrap();
        let mut entry = ActorTemplate::new(component);
        entry.policy.limits.memory = 4 << 20;
        entry.policy.limits.mailbox = 16;
        if hibernate {
            entry.policy.hibernate_after = Some(Duration::from_millis(HIBERNATE_AFTER_MS));
        }
        let (pss, rss) = (pss_bytes(), rss_bytes());
        let mut actors = Vec::with_capacity(n);
        for i in 0..n {
            match host.spawn(entry.spec(format!("m-{i}").into())).await {
                Ok(actor) => actors.push(actor),
                Err(e) => {
                    eprintln!("spawn {i} failed: {e}");
                    println!("failed at {i}");
                    return;
                }
            }
        }
        if hibernate {
            let deadline = Instant::now() + Duration::from_secs(60);
            while actors.iter().any(|a| a.status() != ActorStatus::Hibernating) {
                if Instant::now() > deadline {
                    println!("not all hibernating after 60 s");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let per = |now: u64, then: u64| now.saturating_sub(then) as f64 / n as f64;
        println!("{} {}", per(pss_bytes(), pss), per(rss_bytes(), rss));
    });
    std::mem::forget(runtime);
}

/// 4'': what hibernation costs the message that wakes an actor: a new
/// instance, `restore`, then the message.
async fn wakes(scale: Scale, host: &Host, rows: &mut Vec<Row>) {
    let component = host.load("counter", &guest("counter"), None).unwrap();
    let mut entry = ActorTemplate::new(component);
    entry.policy.hibernate_after = Some(Duration::from_millis(2));
    let actor = host.spawn(entry.spec("sleeper".into())).await.unwrap();
    let (a, b, get) = (actor.clone(), actor.clone(), actor.parse("get()").unwrap());
    let wakes = (scale.restarts / 5).max(10);
    let asleep = async move || {
        while a.status() != ActorStatus::Hibernating {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let mut samples = on_runtime(latencies_after(wakes, asleep, async move || {
        ask(&b, &get).await;
    }))
    .await;
    let w50 = percentile(&mut samples, 0.5);
    rows.push(row("4''. hibernated actor: wake-up + ask (p50)", ns(w50), "-".into(), None, "-"));
    actor.stop();
    actor.stopped().await;
}

/// 4''': asks to actors picked at random when there are ten times more
/// actors than instance slots: an ask to a sleeping actor first makes the
/// host put the longest-idle awake one to sleep (eviction), then wakes it.
async fn evictions(scale: Scale, rows: &mut Vec<Row>) {
    const SLOTS: u32 = 100;
    let mut engine = EngineConfig::new();
    engine.max_instances(SLOTS).max_memory_bytes(64 << 20).cache_dir(Some(cache_dir()));
    let config = HostConfig { engine, max_actors: Some(scale.crowd + 1), ..Default::default() };
    let host = Host::new(config).expect("host");
    let component = host.load("counter", &guest("counter"), None).unwrap();
    let mut entry = ActorTemplate::new(component);
    // Never idle long enough to sleep on its own: only eviction makes room.
    entry.policy.hibernate_after = Some(Duration::from_secs(3600));
    let mut actors = Vec::with_capacity(scale.crowd);
    for i in 0..scale.crowd {
        actors.push(host.spawn(entry.spec(format!("crowd-{i}").into())).await.expect("spawn, evicting if need be"));
    }
    let incr = actors[0].parse("incr(1)").unwrap();
    let asks = scale.asks / 4;
    let (crowd, calls) = (actors.clone(), incr.clone());
    let (mut samples, woke) = on_runtime(async move {
        let (mut samples, mut woke) = (Vec::with_capacity(asks), 0usize);
        // A fixed pseudo-random sequence (an LCG), the same every run.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..asks {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let actor = &crowd[(x >> 33) as usize % crowd.len()];
            woke += usize::from(actor.status() == ActorStatus::Hibernating);
            let t0 = Instant::now();
            ask(actor, &calls).await;
            samples.push(t0.elapsed());
        }
        (samples, woke)
    })
    .await;
    // Nothing was lost on the way: every increment is in some counter.
    let get = actors[0].parse("get()").unwrap();
    let mut total = 0;
    for actor in &actors {
        if let Some(Val::U64(n)) = ask(actor, &get).await {
            total += n;
        }
    }
    assert_eq!(total, asks as u64, "every ask's increment is kept across evictions");
    let (p50, p99) = (percentile(&mut samples, 0.5), percentile(&mut samples, 0.99));
    rows.push(row(
        &format!("4'''. asks to {} actors on {SLOTS} instance slots: p50 / p99", scale.crowd),
        format!("{} / {} ({woke} of {asks} woke an actor, evicting another)", ns(p50), ns(p99)),
        "-".into(),
        None,
        "-",
    ));
    for actor in &actors {
        actor.stop();
    }
    for actor in &actors {
        actor.stopped().await;
    }
}

/// 5: from a trap to the restarted actor handling its next message.
async fn restarts(scale: Scale, host: &Host, rows: &mut Vec<Row>) {
    // A supervisor that restarts at once, every time: the benchmark
    // measures the restart, not the backoff or the intensity limit.
    let eager = troupe::supervision::SupervisorSpec {
        intensity: u32::MAX,
        period: Duration::from_secs(1),
        backoff: troupe::supervision::Backoff {
            min: Duration::ZERO,
            max: Duration::ZERO,
            jitter: 0.0,
            reset_after: Duration::ZERO,
        },
        ..Default::default()
    };
    host.supervise("eager", eager, None).unwrap();
    let component = host.load("faulty", &guest("faulty"), None).unwrap();
    let actor = host.spawn_under(ActorTemplate::new(component).spec("restart".into()), Some("eager")).await.unwrap();
    let panic = actor.parse("panic(\"bench\")").unwrap();
    let ping = actor.parse("ping()").unwrap();
    let (a, b, p) = (actor.clone(), actor.clone(), ping.clone());
    let fail = async move || {
        let _ = a.ask(panic.clone(), None, None, Duration::from_secs(10)).await;
    };
    let mut samples = on_runtime(latencies_after(scale.restarts, fail, async move || {
        ask(&b, &p).await;
    }))
    .await;
    let r50 = percentile(&mut samples, 0.5);
    let a = actor.clone();
    let mut normal = on_runtime(latencies(scale.restarts, async move || {
        ask(&a, &ping).await;
    }))
    .await;
    let n50 = percentile(&mut normal, 0.5);
    rows.push(row(
        "5. restart: trap -> next message handled (p50)",
        format!("{} (the message itself {})", ns(r50.saturating_sub(n50)), ns(n50)),
        "-".into(),
        None,
        "< 50 µs",
    ));
    actor.stop();
    actor.stopped().await;
}

/// 6: the pause an actor sees during a hot swap.
async fn swaps(scale: Scale, host: &Host, rows: &mut Vec<Row>) {
    let versions = [
        host.load("counter", &guest("counter-v2"), Some("a".into())).unwrap(),
        host.load("counter", &guest("counter-v2"), Some("b".into())).unwrap(),
    ];
    let mut entry = ActorTemplate::new(versions[0].clone());
    entry.policy.limits = ActorLimits::default();
    host.spawn(entry.spec("swap".into())).await.unwrap();
    let options = SwapOptions { force: false, probation: Duration::ZERO };
    let mut pauses = Vec::with_capacity(scale.swaps);
    for i in 0..scale.swaps {
        let report = host.swap("swap", versions[(i + 1) % 2].clone(), options).await.expect("swap");
        pauses.push(Duration::from_micros(report.pause_us));
    }
    let (p50, p99) = (percentile(&mut pauses, 0.5), percentile(&mut pauses, 0.99));
    rows.push(row("6. swap pause p50 / p99", format!("{} / {}", ns(p50), ns(p99)), "-".into(), None, "< 5 ms"));
    let _ = host.stop("swap").await;
}

/// 7: healthy throughput while one actor per core spins.
async fn isolation(scale: Scale, host: &Host, healthy: f64, rows: &mut Vec<Row>) {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    // Long enough to outlast the measurement (throttled, half a second of
    // CPU takes about 2.5 s), short enough not to run into the scenarios
    // after this one.
    let limits = ActorLimits { deadline: Duration::from_millis(500), ..ActorLimits::default() };
    let mut spinners = Vec::new();
    for i in 0..cores {
        let s = spawn(host, "faulty", &format!("spin-{i}"), limits.clone()).await;
        s.tell(s.parse("spin()").unwrap(), None).unwrap();
        spinners.push(s);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let abused = troupe_many(scale, host, "abused").await;
    rows.push(row(
        &format!("7. isolation: throughput with {cores} spinning actors"),
        format!("{abused:.0} msg/s"),
        format!("{healthy:.0} msg/s without"),
        Some(abused / healthy),
        ">= 0.80",
    ));
    // A stop takes effect between messages: they stop when their deadline
    // ends the spin. Later scenarios must not share the cores with them.
    for s in &spinners {
        s.stop();
    }
    for s in &spinners {
        s.stopped().await;
    }
}

/// 8: the cost of the sandbox per call: fuel, epochs, both, neither.
fn sandbox_cost(scale: Scale, rows: &mut Vec<Row>) {
    use wasmtime::{Config, Engine};

    let bytes = std::fs::read(guest("counter-narrow")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let configs = [("neither", false, false), ("epoch", false, true), ("fuel", true, false), ("both", true, true)];
    let results = runtime.block_on(async {
        let mut setups = Vec::new();
        for (label, fuel, epoch) in configs {
            let mut config = Config::new();
            config.concurrency_support(false).consume_fuel(fuel).epoch_interruption(epoch);
            let engine = Engine::new(&config).unwrap();
            let component = Component::new(&engine, &bytes).unwrap();
            let mut linker: Linker<FloorData> = Linker::new(&engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
            let mut store = Store::new(&engine, FloorData::new());
            if fuel {
                store.set_fuel(u64::MAX).unwrap();
            }
            if epoch {
                store.set_epoch_deadline(u64::MAX / 2);
            }
            let instance = linker.instantiate_async(&mut store, &component).await.unwrap();
            let api = instance.get_export_index(&mut store, None, "example:counter/api@0.1.0").unwrap();
            let incr = instance.get_export_index(&mut store, Some(&api), "incr").unwrap();
            let incr = instance.get_typed_func::<(u32,), (u64,)>(&mut store, &incr).unwrap();
            setups.push((label, store, incr, Vec::new()));
        }
        // Rounds interleaved between the four, as for the tells: a slow
        // spell of the VM then hits all of them.
        for _ in 0..ROUNDS {
            for (_, store, incr, times) in &mut setups {
                let t0 = Instant::now();
                for _ in 0..scale.calls / ROUNDS {
                    incr.call_async(&mut *store, (1,)).await.unwrap();
                }
                times.push(per(t0.elapsed(), scale.calls / ROUNDS));
            }
        }
        setups.into_iter().map(|(label, _, _, times)| (label, median(times))).collect::<Vec<_>>()
    });
    let neither = results[0].1;
    for (label, cost) in &results {
        rows.push(row(
            &format!("8. sandbox cost per call: {label}"),
            ns(*cost),
            format!("neither {}", ns(neither)),
            Some(cost.as_secs_f64() / neither.as_secs_f64()),
            "-",
        ));
    }
}

/// Per-language rows (issue 6): component size, first load, instantiation
/// and per-message cost, for each counter that was built.
async fn languages(scale: Scale, rows: &mut Vec<Row>) {
    for (language, name) in
        [("Rust", "counter"), ("JavaScript", "counter-js"), ("Python", "counter-py"), ("C", "counter-c")]
    {
        let path = guest(name);
        let Ok(size) = std::fs::metadata(&path).map(|m| m.len()) else { continue };
        let host = {
            let mut engine = EngineConfig::new();
            // The full run measures a real compile; the smoke pass reuses
            // the cache, as JavaScript and Python take seconds to compile.
            let cache = scale.smoke.then(cache_dir);
            engine.max_instances(64).cache_dir(cache);
            Host::new(HostConfig { engine, ..Default::default() }).unwrap()
        };
        let t0 = Instant::now();
        let component = host.load(name, &path, None).unwrap();
        let compile = t0.elapsed();
        let mut entry = ActorTemplate::new(component);
        entry.policy.limits.memory = 256 << 20;
        let t0 = Instant::now();
        let actor = host.spawn(entry.spec("lang".into())).await.unwrap();
        let start = t0.elapsed();
        let incr = actor.parse("incr(1)").unwrap();
        let n = (scale.tells / 10).max(100);
        let t0 = Instant::now();
        for _ in 0..n {
            ask(&actor, &incr).await;
        }
        let message = per(t0.elapsed(), n);
        rows.push(row(
            &format!("6'. {language} counter: size, compile, spawn, ask"),
            format!("{:.0} KiB, {}, {}, {}", size as f64 / 1024.0, ns(compile), ns(start), ns(message)),
            "-".into(),
            None,
            "-",
        ));
        host.shutdown().await;
    }
}

fn table(rows: &[Row], smoke: bool) -> String {
    let mut out = String::new();
    if smoke {
        out.push_str("(smoke pass: tiny counts, numbers are not meaningful)\n\n");
    }
    out.push_str("| scenario | troupe | baseline | ratio | target |\n|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(out, "| {} | {} | {} | {} | {} |", r.scenario, r.troupe, r.baseline, r.ratio, r.target);
    }
    out
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string()))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1048576.0))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem}")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--memory-child") {
        let n = args.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(0);
        memory_child(&args[i + 1], n);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --bench suite` does not.
    let scale = if args.iter().any(|a| a == "--bench") { Scale::full() } else { Scale::smoke() };
    let markdown = args.iter().position(|a| a == "--markdown").and_then(|i| args.get(i + 1)).map(PathBuf::from);
    // `--only NAME` runs the scenarios whose function name contains NAME
    // (for profiling one of them).
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    let runs = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    build_guests();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut rows = Vec::new();
    runtime.block_on(async {
        let host = host(scale.spawns as u32 + 1000, 64 << 20);
        let floor = Arc::new(Floor::new(scale.spawns as u32 + 1000, 64 << 20));
        if runs("tell_one") {
            tell_one(scale, &host, &mut rows).await;
        }
        if runs("tell_strings") {
            tell_strings(scale, &host, &mut rows).await;
        }
        if runs("tell_many") || runs("isolation") {
            let healthy = tell_many(scale, &host, &mut rows).await;
            isolation(scale, &host, healthy, &mut rows).await;
        }
        if runs("asks") {
            asks(scale, &host, &floor, &mut rows).await;
        }
        if runs("spawns") {
            spawns(scale, &host, &floor, &mut rows).await;
        }
        if runs("wakes") {
            wakes(scale, &host, &mut rows).await;
        }
        if runs("evictions") {
            evictions(scale, &mut rows).await;
        }
        if runs("restarts") {
            restarts(scale, &host, &mut rows).await;
        }
        if runs("swaps") {
            swaps(scale, &host, &mut rows).await;
        }
        if runs("languages") {
            languages(scale, &mut rows).await;
        }
    });
    // Some actors are still up: exit without stopping them one by one.
    std::mem::forget(runtime);
    if runs("memory") {
        memory(scale, &mut rows);
    }
    if runs("sandbox") {
        sandbox_cost(scale, &mut rows);
    }
    let table = table(&rows, scale.smoke);
    println!("\nmachine: {}\n\n{table}", machine());
    if let Some(path) = markdown {
        let doc = format!(
            "# Benchmark run\n\nA run of `cargo bench -p troupe --bench suite`, \
             on {}.\nCompare ratios, not absolute times: troupe and the baselines ran in the same process, \
             one after the other.\n\n{table}",
            machine()
        );
        std::fs::write(&path, doc).expect("write the markdown table");
    }
}
