//! Scenarios 4'' and 4''': what hibernation costs the message that wakes
//! an actor, and asks to a crowd of actors larger than the instance pool.

use std::time::{Duration, Instant};

use troupe::{ActorStatus, ActorTemplate, Host, HostConfig};
use wasmtime::component::Val;

use crate::Scale;
use crate::measure::{ASK_TIMEOUT, latencies_after, on_runtime, percentile};
use crate::report::{Row, ns, row};
use crate::support::{ask_call, engine_config, guest};

/// 4'': what hibernation costs the message that wakes an actor: a new
/// instance, `restore`, then the message.
pub async fn wakes(scale: Scale, host: &Host, rows: &mut Vec<Row>) {
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
        ask_call(&b, &get, ASK_TIMEOUT).await;
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
pub async fn evictions(scale: Scale, rows: &mut Vec<Row>) {
    const SLOTS: u32 = 100;
    let mut engine = engine_config(SLOTS);
    engine.max_memory_bytes(64 << 20);
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
            ask_call(actor, &calls, ASK_TIMEOUT).await;
            samples.push(t0.elapsed());
        }
        (samples, woke)
    })
    .await;
    // Nothing was lost on the way: every increment is in some counter.
    let get = actors[0].parse("get()").unwrap();
    let mut total = 0;
    for actor in &actors {
        if let Some(Val::U64(n)) = ask_call(actor, &get, ASK_TIMEOUT).await {
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
