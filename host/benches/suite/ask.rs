//! Scenario 2: ask round trips, host to actor (against kameo, tokio and
//! the wasmtime floor) and actor to actor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use troupe::{ActorLimits, Host};

use crate::baselines::{KIncr, kameo_counter, tokio_counter, tokio_get};
use crate::floor::Floor;
use crate::measure::{ASK_TIMEOUT, ROUNDS, latencies, on_runtime, percentile};
use crate::report::{Row, ns, row};
use crate::support::{ask_call, spawn};
use crate::{Scale, timed_host};

/// 2: ask round trips, host to actor and actor to actor.
pub async fn asks(scale: Scale, host: &Host, rows: &mut Vec<Row>) {
    // The floor's pool, for one instance a round, is gone with this scenario.
    let floor = Arc::new(Floor::new(16, 64 << 20));
    let actor = spawn(host, "counter", "ask-one", ActorLimits::default()).await;
    let timed_host = timed_host(16, 64 << 20);
    let timed = spawn(&timed_host, "counter", "ask-one", ActorLimits::default()).await;
    let incr = actor.parse("incr(1)").unwrap();
    let (k, tx) = (kameo_counter(), tokio_counter());
    let n = scale.asks / ROUNDS;
    let (mut troupe, mut kameo, mut kameo_timed, mut bare) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut wasm, mut troupe_timed, mut metrics_timed) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let floor = floor.clone();
        wasm.extend(
            on_runtime(async move {
                let mut counter = floor.start().await.expect("the counter starts");
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
                ask_call(&a, &incr1, troupe::NO_TIMEOUT).await;
            }))
            .await,
        );
        let (a, incr1) = (timed.clone(), incr.clone());
        metrics_timed.extend(
            on_runtime(latencies(n, async move || {
                ask_call(&a, &incr1, troupe::NO_TIMEOUT).await;
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
                ask_call(&a, &incr1, ASK_TIMEOUT).await;
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
    let (m50, m99) = (percentile(&mut metrics_timed, 0.5), percentile(&mut metrics_timed, 0.99));
    rows.push(row(
        "2. ... with the metrics timing each message (`time_messages`, as `troupe run --http`), no reply timeout",
        format!("{} / {}", ns(m50), ns(m99)),
        format!("untimed {} / {}", ns(t50), ns(t99)),
        Some(m50.as_secs_f64() / t50.as_secs_f64()),
        "-",
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
        ask_call(&tally, &many, ASK_TIMEOUT).await;
    })
    .await;
    let mut without = latencies(rounds, async || {
        ask_call(&tally, &none, ASK_TIMEOUT).await;
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
    for a in [actor, tally, timed] {
        a.stop();
        a.stopped().await;
    }
}
