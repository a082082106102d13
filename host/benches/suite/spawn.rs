//! Scenario 3: spawning many actors, waiting for each start or not, and
//! short-lived ones reusing instance slots; against kameo and the wasmtime
//! floor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kameo::actor::Spawn as _;
use troupe::{ActorRef, ComponentEntry, Host};

use crate::Scale;
use crate::baselines::KameoCounter;
use crate::floor::Floor;
use crate::measure::{on_runtime, percentile};
use crate::report::{Row, ns, row};
use crate::support::guest;

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
pub async fn spawns(scale: Scale, host: &Host, floor: &Arc<Floor>, rows: &mut Vec<Row>) {
    let n = scale.spawns;
    let entry = ComponentEntry::new(host.load("counter", &guest("counter"), None).unwrap());
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
    let entry = ComponentEntry::new(host.load("counter", &guest("counter"), None).unwrap());
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
    let entry = ComponentEntry::new(host.load("counter", &guest("counter"), None).unwrap());
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
