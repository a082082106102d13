//! Scenarios 5 and 6: from a trap to the restarted actor's next message,
//! and the pause an actor sees during a hot swap.

use std::time::Duration;

use troupe::actor::SwapOptions;
use troupe::{ActorLimits, ActorTemplate, Host};

use crate::Scale;
use crate::measure::{ASK_TIMEOUT, latencies, latencies_after, on_runtime, percentile};
use crate::report::{Row, ns, row};
use crate::support::{ask_call, guest};

/// 5: from a trap to the restarted actor handling its next message.
pub async fn restarts(scale: Scale, host: &Host, rows: &mut Vec<Row>) {
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
        ask_call(&b, &p, ASK_TIMEOUT).await;
    }))
    .await;
    let r50 = percentile(&mut samples, 0.5);
    let a = actor.clone();
    let mut normal = on_runtime(latencies(scale.restarts, async move || {
        ask_call(&a, &ping, ASK_TIMEOUT).await;
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
pub async fn swaps(scale: Scale, host: &Host, rows: &mut Vec<Row>) {
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
