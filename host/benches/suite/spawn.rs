//! Scenario 3: spawning many actors, waiting for each start or not, and
//! short-lived ones reusing instance slots; against kameo and the wasmtime
//! floor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kameo::actor::Spawn as _;
use troupe::{ActorRef, ActorTemplate, BatchDelivery};

use crate::baselines::KameoCounter;
use crate::floor::Floor;
use crate::mappings;
use crate::measure::{on_runtime, percentile};
use crate::report::{Row, ns, row};
use crate::support::guest;
use crate::{Scale, host_with};

/// Instance slots past the actors of a row, in the spawn scenario's pools.
const SPARE_SLOTS: usize = 16;

/// What a spawn row made: a sample per spawn, the things made, when the
/// first began, and the error that ended the row early, if one did.
struct Spawned<T> {
    samples: Vec<Duration>,
    made: Vec<T>,
    t0: Instant,
    failure: Option<String>,
}

impl<T> Spawned<T> {
    /// The p50 and the row's cell (p50 / p99 and the rate of `n` since
    /// the first began), or the failure.
    fn figures(&mut self, n: usize) -> (Option<Duration>, String) {
        if let Some(failure) = &self.failure {
            return (None, format!("failed: {failure}"));
        }
        let (p50, p99) = (percentile(&mut self.samples, 0.5), percentile(&mut self.samples, 0.99));
        (Some(p50), format!("{} / {}, {:.0}/s", ns(p50), ns(p99), n as f64 / self.t0.elapsed().as_secs_f64()))
    }
}

/// Makes `n` things with `one(i)` in a task on the runtime (like the
/// latencies of the other scenarios), timing each, until one fails.
async fn timed_spawns<T, F>(n: usize, mut one: impl FnMut(usize) -> F + Send + 'static) -> Spawned<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, String>> + Send,
{
    on_runtime(async move {
        let mut samples = Vec::with_capacity(n);
        let mut made = Vec::with_capacity(n);
        let t0 = Instant::now();
        for i in 0..n {
            let t = Instant::now();
            match one(i).await {
                Ok(thing) => made.push(thing),
                Err(e) => {
                    let failure = Some(format!("{e} (after {i} of {n})"));
                    return Spawned { samples, made, t0, failure };
                }
            }
            samples.push(t.elapsed());
        }
        Spawned { samples, made, t0, failure: None }
    })
    .await
}

/// `troupe`'s p50 over `baseline`'s, when both were measured.
fn ratio(troupe: Option<Duration>, baseline: Option<Duration>) -> Option<f64> {
    Some(troupe?.as_secs_f64() / baseline?.as_secs_f64())
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

/// 3: spawning many actors. troupe runs on a host of its own and wasmtime
/// alone on a pool of its own, one after the other, so that the two never
/// hold their instances at once; as many as the kernel's mapping limit
/// allows (see [`mappings`]).
pub async fn spawns(scale: Scale, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let churn_of = |n: usize| (n / 5).max(10);
    // troupe's host needs more than the floor: a slot per actor, and
    // actors of rows 3, 3' and 3'' that may each land in unused slots.
    let maps_for = |n: usize| (n + SPARE_SLOTS) * mappings::PER_SLOT + (2 * n + churn_of(n)) * mappings::PER_INSTANCE;
    let fit = mappings::fit("3. spawn", scale.spawns, mappings::in_use(), maps_for);
    notes.extend(fit.note);
    let n = fit.n;
    let churn = churn_of(n);
    let slots = (n + SPARE_SLOTS) as u32;

    // The floor under rows 3 and 3'', measured first: its engine, stores
    // and mappings are gone before troupe's actors take theirs.
    let (floor_kept, floor_churn) = {
        let floor = Arc::new(Floor::new(slots, 64 << 20));
        // Instances kept alive, so that each takes a fresh slot, as each
        // actor of row 3 does.
        let f = floor.clone();
        let mut kept = timed_spawns(n, move |_| {
            let f = f.clone();
            async move { f.start().await.map_err(|e| format!("{e:#}")) }
        })
        .await;
        let figures = kept.figures(n);
        drop(kept);
        // Each dropped before the next starts: the slot is reused.
        let f = floor.clone();
        let churned = on_runtime(async move {
            let mut samples = Vec::with_capacity(churn);
            for _ in 0..churn {
                let t = Instant::now();
                let counter = f.start().await.map_err(|e| format!("{e:#}"))?;
                samples.push(t.elapsed());
                drop(counter);
            }
            Ok::<_, String>(percentile(&mut samples, 0.5))
        })
        .await;
        (figures, churned)
    };

    let host = host_with(slots, 64 << 20, BatchDelivery::default());
    let entry = ActorTemplate::new(host.load("counter", &guest("counter"), None).expect("the counter loads"));
    let (h, e) = (host.clone(), entry.clone());
    let mut spawned = timed_spawns(n, move |i| {
        let (h, spec) = (h.clone(), e.spec(format!("s-{i}").into()));
        async move { h.spawn(spec).await.map_err(|e| e.to_string()) }
    })
    .await;
    let (s50, troupe) = spawned.figures(n);
    let mut kspawned = timed_spawns(n, |_| async {
        let a = KameoCounter::spawn(KameoCounter::default());
        a.wait_for_startup().await;
        Ok(a)
    })
    .await;
    let (k50, kameo) = kspawned.figures(n);
    rows.push(row(
        &format!("3. spawn {n} actors, each waited for until started: p50 / p99, rate"),
        troupe,
        format!("kameo {kameo}"),
        ratio(s50, k50),
        "p50 <= kameo",
    ));
    stop_both(&spawned.made, kspawned.made).await;
    let (f50, wasmtime) = floor_kept;
    rows.push(row(
        "3. ... the floor: wasmtime alone, a store, an instance and `init`, kept alive: p50 / p99, rate",
        wasmtime,
        format!("kameo {kameo}"),
        ratio(f50, k50),
        "-",
    ));

    // Without waiting for each start: `Host::start` and kameo's `spawn`
    // return an address at once; then all starts are awaited, and the
    // rate counts until the last has started.
    let (h, e) = (host.clone(), entry.clone());
    let mut starting = timed_spawns(n, move |i| {
        let started = h.start(e.spec(format!("s-{i}").into())).map_err(|e| e.to_string());
        async move { started }
    })
    .await;
    let pending = std::mem::take(&mut starting.made);
    let (actors, failure) = on_runtime(async move {
        let (mut actors, mut failure) = (Vec::with_capacity(pending.len()), None);
        for s in pending {
            match s.started().await {
                Ok(actor) => actors.push(actor),
                Err(e) => {
                    failure.get_or_insert_with(|| format!("{e} (after {} of {n} started)", actors.len()));
                }
            }
        }
        (actors, failure)
    })
    .await;
    starting.failure = starting.failure.or(failure);
    let (s50, troupe) = starting.figures(n);
    let mut kspawned = timed_spawns(n, |_| std::future::ready(Ok(KameoCounter::spawn(KameoCounter::default())))).await;
    let kactors = std::mem::take(&mut kspawned.made);
    kspawned.made = on_runtime(async move {
        for a in &kactors {
            a.wait_for_startup().await;
        }
        kactors
    })
    .await;
    let (k50, kameo) = kspawned.figures(n);
    rows.push(row(
        "3'. ... without waiting for each start: p50 / p99, rate until all started",
        troupe,
        format!("kameo {kameo}"),
        ratio(s50, k50),
        "-",
    ));
    stop_both(&actors, kspawned.made).await;

    // Short-lived actors: each is stopped before the next is spawned, so
    // every spawn reuses the instance slot the one before gave back.
    let h = host.clone();
    let churned = on_runtime(async move {
        let mut samples = Vec::with_capacity(churn);
        for i in 0..churn {
            let spec = entry.spec(format!("c-{i}").into());
            let t = Instant::now();
            let actor = h.spawn(spec).await.map_err(|e| format!("{e} (after {i} of {churn})"))?;
            samples.push(t.elapsed());
            h.stop(actor.address().as_str()).await.map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(samples)
    })
    .await;
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
    let floor_churn = match floor_churn {
        Ok(fc50) => ns(fc50),
        Err(e) => format!("failed: {e}"),
    };
    let (c50, troupe) = match churned {
        Ok(mut samples) => {
            let (c50, c99) = (percentile(&mut samples, 0.5), percentile(&mut samples, 0.99));
            (Some(c50), format!("{} / {} (wasmtime alone: p50 {floor_churn})", ns(c50), ns(c99)))
        }
        Err(e) => (None, format!("failed: {e}")),
    };
    rows.push(row(
        &format!("3''. spawn {churn} short-lived actors, each stopped before the next (slots reused): p50 / p99"),
        troupe,
        format!("kameo {} / {}", ns(kc50), ns(kc99)),
        ratio(c50, Some(kc50)),
        "-",
    ));
    host.shutdown().await;
}
