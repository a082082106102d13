//! Scenario 10: virtual actors. What the first message to a key costs
//! (its activation, then the ask), for a new key, a passivated key in
//! memory and one in the store, each without and with warm instances,
//! beside the wasmtime floor under an activation (a store, an instance,
//! `init`), a hibernated actor's wake-up and an ask to an active key, all
//! measured in the same run. Then messages to random keys among many
//! more than the instance pool holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use troupe::actor::durable::Durability;
use troupe::actor::events::{Event, EventKind, Phases};
use troupe::store::DurableStore;
use troupe::{ActorStatus, ActorTemplate, Host, HostConfig};

use crate::Scale;
use crate::floor::Floor;
use crate::mappings;
use crate::measure::{ASK_TIMEOUT, on_runtime, percentile};
use crate::report::{Row, ns, row};
use crate::support::{engine_config, guest};

/// How long a key stays active when idle, here.
const IDLE: Duration = Duration::from_millis(20);

/// Warm instances of the entries that keep some.
const WARM: u32 = 2;

/// A pause between two activations, so that a warm pool refills in the
/// background as it would between the activations of a real load.
const PAUSE: Duration = Duration::from_millis(1);

/// Waits [`PAUSE`] without parking the thread: a parked worker's wake-up
/// (tens of microseconds in a VM) would be measured with the next message.
/// Then yields, as a server's task does between requests: a task that ran
/// on would find tokio's LIFO slot turned off for fairness after a few
/// hand-offs, and every other activation would queue behind the pool's
/// refill.
async fn pause() {
    let start = Instant::now();
    while start.elapsed() < PAUSE {
        std::hint::spin_loop();
    }
    tokio::task::yield_now().await;
}

/// The latencies of one way of activating keys.
struct Activations {
    first: Vec<Duration>,
    again: Vec<Duration>,
    active: Vec<Duration>,
    /// The phases the host reported for the activations of `again`.
    again_phases: Vec<Phases>,
}

/// Adds to `seen` the phases of the starts and wake-ups (an in-memory
/// key's activation) queued on `events`. Read between activations, not
/// awaited: a task waiting on the bus would be woken by every event, and
/// that wake-up, the bench's own, would be measured with the activation.
fn drain_phases(events: &mut broadcast::Receiver<Event>, seen: &mut Vec<Phases>) {
    loop {
        match events.try_recv() {
            Ok(Event { kind: EventKind::Started { phases: Some(phases), .. }, .. })
            | Ok(Event { kind: EventKind::Woke { phases: Some(phases) }, .. }) => seen.push(phases),
            Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => return,
        }
    }
}

/// `(lookup and claim, taking the instance, init or restore)`, p50 of each.
fn phases_p50(phases: &[Phases]) -> (Duration, Duration, Duration) {
    let p50 = |phase: fn(&Phases) -> u64| {
        percentile(&mut phases.iter().map(|p| Duration::from_micros(phase(p))).collect::<Vec<_>>(), 0.5)
    };
    (p50(|p| p.claim_us), p50(|p| p.instantiate_us), p50(|p| p.restore_us))
}

/// Each activation's whole time, as the host measured it: from the lookup
/// that found its key not active to its instance ready for the message.
/// Only those whose lookup was measured: a durable key whose task ran
/// before its message was queued went to sleep first, and its wake-up
/// does not count from the lookup (`claim_us` is 0).
fn activation_times(phases: &[Phases]) -> Vec<Duration> {
    let whole = |p: &Phases| p.claim_us + p.instantiate_us + p.restore_us + p.replay_us;
    phases.iter().filter(|p| p.claim_us > 0).map(|p| Duration::from_micros(whole(p))).collect()
}

/// The first message to each of `keys` new keys of a virtual counter
/// (`durability`, keeping `warm` instances), an ask to each while active,
/// and, once all passivated, the first message to each again.
async fn activate(keys: usize, durability: Durability, warm: u32) -> Activations {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut engine = engine_config(u32::try_from(keys).unwrap_or(u32::MAX) + 16);
    engine.max_memory_bytes(64 << 20);
    let journal = (durability == Durability::Durable)
        .then(|| Arc::new(DurableStore::open(&dir.path().join("store")).expect("the store opens")) as _);
    let config = HostConfig { engine, max_actors: Some(keys + 16), journal, ..Default::default() };
    let host = Host::new(config).expect("host");
    let component = host.load("counter", &guest("counter"), None).expect("the counter loads");
    let mut template = ActorTemplate::new(component);
    template.policy.durability = durability;
    template.policy.warm_instances = warm;
    host.define_virtual("user", template, Some(IDLE)).expect("a virtual component");
    let probe = host.clone();
    let activations = on_runtime(async move {
        let mut measured =
            Activations { first: Vec::new(), again: Vec::new(), active: Vec::new(), again_phases: Vec::new() };
        for i in 0..keys {
            pause().await;
            let address = format!("user/{i}");
            let t0 = Instant::now();
            probe.ask(&address, "get()", ASK_TIMEOUT).await.expect("the first message activates the key");
            measured.first.push(t0.elapsed());
            // After the pool's refill: right after an activation, an ask
            // may wait behind it on the same worker.
            pause().await;
            let t0 = Instant::now();
            probe.ask(&address, "get()", ASK_TIMEOUT).await.expect("an active key answers");
            measured.active.push(t0.elapsed());
        }
        while probe.virtual_keys("user").expect("the keys are counted").is_none_or(|keys| keys.active > 0) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut events = probe.events();
        for i in 0..keys {
            pause().await;
            let t0 = Instant::now();
            probe.ask(&format!("user/{i}"), "get()", ASK_TIMEOUT).await.expect("a passivated key is activated");
            measured.again.push(t0.elapsed());
            // The activation's event was published before its answer.
            drain_phases(&mut events, &mut measured.again_phases);
        }
        measured
    })
    .await;
    host.shutdown().await;
    activations
}

/// `p50 / p99` of `samples`, and the p50.
fn spread(samples: &mut [Duration]) -> (String, Duration) {
    let p50 = percentile(samples, 0.5);
    (format!("{} / {}", ns(p50), ns(percentile(samples, 0.99))), p50)
}

/// The floor under an activation: a store, an instance and `init`, with
/// wasmtime alone, `n` times with a pause between them (p50).
async fn floor(n: usize) -> Duration {
    let floor = Floor::new(u32::try_from(n).unwrap_or(u32::MAX) + 16, 64 << 20);
    let mut samples = on_runtime(async move {
        let mut samples = Vec::with_capacity(n);
        let mut kept = Vec::with_capacity(n);
        for _ in 0..n {
            pause().await;
            let t0 = Instant::now();
            kept.push(floor.start().await.expect("an instance"));
            samples.push(t0.elapsed());
        }
        samples
    })
    .await;
    percentile(&mut samples, 0.5)
}

/// A hibernated actor's wake-up and ask, `n` times (p50).
async fn wake_ups(n: usize) -> Duration {
    let mut engine = engine_config(16);
    engine.max_memory_bytes(64 << 20);
    let host = Host::new(HostConfig { engine, ..Default::default() }).expect("host");
    let component = host.load("counter", &guest("counter"), None).expect("the counter loads");
    let mut entry = ActorTemplate::new(component);
    entry.policy.hibernate_after = Some(Duration::from_millis(2));
    let actor = host.spawn(entry.spec("sleeper".into())).await.expect("the sleeper starts");
    let probe = host.clone();
    let mut samples = on_runtime(async move {
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            while actor.status() != ActorStatus::Hibernating {
                pause().await;
            }
            let t0 = Instant::now();
            probe.ask("sleeper", "get()", ASK_TIMEOUT).await.expect("a wake-up");
            samples.push(t0.elapsed());
        }
        samples
    })
    .await;
    host.shutdown().await;
    percentile(&mut samples, 0.5)
}

/// 10: activations, from nothing, from memory and from the store, with
/// and without warm instances, beside their floor.
pub async fn activations(scale: Scale, rows: &mut Vec<Row>) {
    let keys = (scale.spawns / 10).max(20);
    let floor = floor(keys).await;
    let wake = wake_ups(keys).await;
    let mut cold = activate(keys, Durability::InMemory, 0).await;
    let mut warm = activate(keys, Durability::InMemory, WARM).await;
    let mut stored_cold = activate(keys, Durability::Durable, 0).await;
    let mut stored = activate(keys, Durability::Durable, WARM).await;
    let (_, a50) = spread(&mut warm.active);
    let floor_row = format!("wasmtime alone, a store, an instance and `init`: {}", ns(floor));
    let ratio = |p50: Duration| Some(p50.as_secs_f64() / floor.as_secs_f64());

    let (text, p50) = spread(&mut cold.first);
    rows.push(row(
        &format!("10. virtual: first message to a new key (instance, `init`, ask), {keys} keys, p50 / p99"),
        text,
        floor_row.clone(),
        ratio(p50),
        "-",
    ));
    let (text, p50) = spread(&mut warm.first);
    rows.push(row(
        &format!("10. ... with {WARM} warm instances (`init`, ask)"),
        text,
        floor_row.clone(),
        ratio(p50),
        "-",
    ));
    let (text, p50) = spread(&mut cold.again);
    rows.push(row(
        "10. ... a passivated key, its state in memory (instance, `restore`, ask)",
        text,
        format!("hibernated actor's wake-up + ask: {}", ns(wake)),
        Some(p50.as_secs_f64() / wake.as_secs_f64()),
        "-",
    ));
    // Where a warm activation's time goes: the rest of the first
    // message's is its delivery and the ask.
    let of_which = |phases: &[Phases]| {
        let (claim, take, restore) = phases_p50(phases);
        format!(
            " (p50 of its phases: lookup and claim {}, taking the instance {}, `restore` {})",
            ns(claim),
            ns(take),
            ns(restore)
        )
    };
    let activation_row = |what: &str, phases: &[Phases], first: Duration, target: &str| {
        let mut times = activation_times(phases);
        let measured = format!(" ({} of {} measured from their lookup)", times.len(), phases.len());
        let (text, _) = spread(&mut times);
        let text = text + &measured;
        let baseline = format!("its first message: {}; an ask to an active key: {}", ns(first), ns(a50));
        row(what, text, baseline, None, target)
    };
    let (text, p50) = spread(&mut warm.again);
    rows.push(row(
        &format!("10. ... a passivated key in memory, {WARM} warm instances (`restore`, ask)"),
        text + &of_which(&warm.again_phases),
        floor_row.clone(),
        ratio(p50),
        "-",
    ));
    rows.push(activation_row(
        "10. ... of which its activation, lookup to ready (claim, instance, `restore`), p50 / p99",
        &warm.again_phases,
        p50,
        "activation p50 <= 20 µs",
    ));
    let (text, p50) = spread(&mut stored_cold.again);
    rows.push(row(
        "10. ... a passivated durable key, from the store (read, instance, `restore`, ask)",
        text,
        floor_row.clone(),
        ratio(p50),
        "-",
    ));
    let (text, p50) = spread(&mut stored.again);
    rows.push(row(
        &format!("10. ... from the store, {WARM} warm instances (read, `restore`, ask)"),
        text + &of_which(&stored.again_phases),
        floor_row,
        ratio(p50),
        "-",
    ));
    rows.push(activation_row(
        "10. ... of which its activation, lookup to ready (claim and read, instance, `restore`), p50 / p99",
        &stored.again_phases,
        p50,
        "activation p50 <= 60 µs",
    ));
    let (text, _) = spread(&mut stored.first);
    rows.push(row(
        "10. ... a new durable key (its first commit), warm instances",
        text,
        format!("ask to an active key: {}", ns(a50)),
        None,
        "-",
    ));
}

/// 10: messages to keys picked at random among many more than the host
/// keeps active: most activate their key, and a full instance pool sends
/// the longest-idle active key away for each. Beside asks to as many keys
/// all active.
pub async fn random_keys(scale: Scale, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let (space, wanted) = if scale.smoke { (10_000, 100) } else { (1_000_000, 10_000) };
    let each = mappings::PER_SLOT + mappings::PER_INSTANCE;
    let fit = mappings::fit("10. active keys", wanted, mappings::in_use(), |n| (n + 16) * each);
    notes.extend(fit.note);
    let active = fit.n;
    let messages = scale.asks * 5;
    const SENDERS: usize = 64;
    let mut engine = engine_config(u32::try_from(active).unwrap_or(u32::MAX));
    engine.max_memory_bytes(4 << 20);
    let config = HostConfig { engine, max_actors: Some(active + 64), ..Default::default() };
    let host = Host::new(config).expect("host");
    let component = host.load("counter", &guest("counter"), None).expect("the counter loads");
    let mut template = ActorTemplate::new(component);
    template.policy.limits.memory = 4 << 20;
    template.policy.warm_instances = WARM;
    host.define_virtual("user", template, Some(Duration::from_secs(3600))).expect("a virtual component");
    let run = |keys: usize| {
        let host = host.clone();
        on_runtime(async move {
            let t0 = Instant::now();
            let senders: Vec<_> = (0..SENDERS)
                .map(|sender| {
                    let host = host.clone();
                    tokio::spawn(async move {
                        // A fixed pseudo-random sequence per sender (an LCG).
                        let mut x = sender as u64 * 7919 + 1;
                        for _ in 0..messages / SENDERS {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                            let key = (x >> 33) as usize % keys;
                            host.ask(&format!("user/{key}"), "incr(1)", ASK_TIMEOUT).await.expect("a key answers");
                        }
                    })
                })
                .collect();
            for sender in senders {
                sender.await.expect("a sender");
            }
            (messages / SENDERS * SENDERS) as f64 / t0.elapsed().as_secs_f64()
        })
    };
    // All active: half as many keys as the pool holds, each touched
    // before the run that counts.
    run(active / 2).await;
    let all_active = run(active / 2).await;
    let random = run(space).await;
    let activations = host.activations("user").map_or(0, |a| a.count);
    rows.push(row(
        &format!(
            "10. virtual: asks to random keys among {space}, at most {active} active, {SENDERS} senders \
             (msg/s; {activations} activations in all)"
        ),
        format!("{random:.0}"),
        format!("asks to {} keys, all active: {all_active:.0}", active / 2),
        Some(random / all_active),
        "-",
    ));
    host.shutdown().await;
}
