//! Scenario 1: tells, to one actor (batched, mixed, one call per message,
//! with a string argument) and to many actors from several senders.

use std::sync::Arc;
use std::time::Instant;

use kameo::actor::Spawn as _;
use troupe::{ActorLimits, BatchDelivery, Host};
use wasmtime::component::Val;

use crate::baselines::{KGet, KIncr, TokioMsg, kameo_counter, kameo_notebook, tokio_counter, tokio_get};
use crate::measure::{ASK_TIMEOUT, ROUNDS, median, on_runtime, per_message};
use crate::report::{Row, ns, row};
use crate::support::{ask_call, spawn, tell_call};
use crate::{Scale, host_with, timed_host};

/// 1a: tells to one counter, per message; troupe also with batch entry
/// points off (one call into the guest per message).
pub async fn tell_one(scale: Scale, host: &Host, rows: &mut Vec<Row>) {
    let actor = spawn(host, "counter", "tell-one", ActorLimits::default()).await;
    let unbatched_host = host_with(16, 64 << 20, BatchDelivery::Off);
    let unbatched = spawn(&unbatched_host, "counter", "tell-one", ActorLimits::default()).await;
    let timed_host = timed_host(16, 64 << 20);
    let timed = spawn(&timed_host, "counter", "tell-one", ActorLimits::default()).await;
    let incr = actor.parse("incr(1)").unwrap();
    let get = actor.parse("get()").unwrap();
    let tx = tokio_counter();
    let k = kameo_counter();
    let n = scale.tells / ROUNDS;
    let (mut troupe, mut one_call, mut bare, mut kameo) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut mixed, mut timed_tells) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for (actor, times) in [(&actor, &mut troupe), (&unbatched, &mut one_call), (&timed, &mut timed_tells)] {
            let (a, b, incr, get) = (actor.clone(), actor.clone(), incr.clone(), get.clone());
            let send = async move || tell_call(&a, &incr).await;
            let confirm = async move || {
                ask_call(&b, &get, ASK_TIMEOUT).await;
            };
            times.push(on_runtime(per_message(n, send, confirm)).await);
        }
        // Alternating `incr(1)` and `get()`: the mixed entry point.
        let (a, b, incr, get, get2) = (actor.clone(), actor.clone(), incr.clone(), get.clone(), get.clone());
        let mut odd = false;
        let send = async move || {
            odd = !odd;
            tell_call(&a, if odd { &incr } else { &get }).await
        };
        let confirm = async move || {
            ask_call(&b, &get2, ASK_TIMEOUT).await;
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
    for (actor, total) in [(&actor, total_mixed), (&unbatched, total), (&timed, total)] {
        assert_eq!(
            ask_call(actor, &get, ASK_TIMEOUT).await.and_then(|v| if let Val::U64(v) = v { Some(v) } else { None }),
            Some(total)
        );
    }
    assert!(actor.info().batched > 0, "the tells went in batches");
    assert_eq!(unbatched.info().batched, 0);
    assert_eq!(tokio_get(&tx).await, total);
    assert_eq!(k.ask(KGet).await.unwrap(), total);
    let (troupe, one_call, bare, kameo) = (median(troupe), median(one_call), median(bare), median(kameo));
    let (mixed, timed_tells) = (median(mixed), median(timed_tells));

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
    rows.push(row(
        "   ... with the metrics timing each message (`time_messages`, as `troupe run --http`)",
        ns(timed_tells),
        format!("untimed {}", ns(troupe)),
        Some(timed_tells.as_secs_f64() / troupe.as_secs_f64()),
        "-",
    ));
    for actor in [actor, unbatched, timed] {
        actor.stop();
        actor.stopped().await;
    }
}

/// 1c: tells with a string argument (the probe's `remember`), by default
/// a call each, and with `BatchDelivery::All` several per call.
pub async fn tell_strings(scale: Scale, host: &Host, rows: &mut Vec<Row>) {
    use kameo_notebook::{Count, Notebook, Remember};
    const ITEM: &str = "hello there, how are you";
    let memory_host = host_with(16, 64 << 20, BatchDelivery::All);
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
            let send = async move || tell_call(&a, &remember).await;
            let confirm = async move || {
                ask_call(&b, &ticks, ASK_TIMEOUT).await;
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
pub async fn tell_many(scale: Scale, host: &Host, rows: &mut Vec<Row>) -> f64 {
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

/// Total throughput of tells from four senders spread over `scale.actors`
/// counters (at `{prefix}-{i}`), in messages per second.
pub async fn troupe_many(scale: Scale, host: &Host, prefix: &str) -> f64 {
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
                tell_call(&actors[(s + i) % actors.len()], &incr).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for a in actors.iter() {
        ask_call(a, &get, ASK_TIMEOUT).await;
    }
    let rate = (senders * per_sender) as f64 / t0.elapsed().as_secs_f64();
    for a in actors.iter() {
        a.stop();
        a.stopped().await;
    }
    rate
}
