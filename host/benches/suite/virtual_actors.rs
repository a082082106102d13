//! Scenario 10: virtual actors. What the first message to a key costs
//! (its activation: an instance and `init`, then the ask), beside an ask
//! to a key already active and the first message to a passivated key (a
//! wake-up), measured in the same run.

use std::time::Duration;

use troupe::{ActorTemplate, Host, HostConfig};

use crate::Scale;
use crate::measure::{ASK_TIMEOUT, on_runtime, percentile};
use crate::report::{Row, ns, row};
use crate::support::{engine_config, guest};

/// How long a key of the scenario's component stays active when idle.
const IDLE: Duration = Duration::from_millis(20);

/// 10: activations of new keys, asks to active keys, and wake-ups of
/// passivated keys of an in-memory virtual counter.
pub async fn activations(scale: Scale, rows: &mut Vec<Row>) {
    let keys = (scale.spawns / 10).max(20);
    let mut engine = engine_config(u32::try_from(keys).unwrap_or(u32::MAX) + 16);
    engine.max_memory_bytes(64 << 20);
    let host = Host::new(HostConfig { engine, max_actors: Some(keys + 16), ..Default::default() }).expect("host");
    let component = host.load("counter", &guest("counter"), None).expect("the counter loads");
    host.define_virtual("user", ActorTemplate::new(component), Some(IDLE)).expect("a virtual component");
    let probe = host.clone();
    let (first, active, woken) = on_runtime(async move {
        let (mut first, mut active, mut woken) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..keys {
            let address = format!("user/{i}");
            let t0 = std::time::Instant::now();
            probe.ask(&address, "get()", ASK_TIMEOUT).await.expect("the first message activates the key");
            first.push(t0.elapsed());
            let t0 = std::time::Instant::now();
            probe.ask(&address, "get()", ASK_TIMEOUT).await.expect("an active key answers");
            active.push(t0.elapsed());
        }
        while probe.virtual_keys("user").expect("the keys are counted").is_none_or(|keys| keys.active > 0) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for i in 0..keys {
            let t0 = std::time::Instant::now();
            probe.ask(&format!("user/{i}"), "get()", ASK_TIMEOUT).await.expect("a passivated key wakes");
            woken.push(t0.elapsed());
        }
        (first, active, woken)
    })
    .await;
    let (mut first, mut active, mut woken) = (first, active, woken);
    let (f50, a50, w50) = (percentile(&mut first, 0.5), percentile(&mut active, 0.5), percentile(&mut woken, 0.5));
    rows.push(row(
        &format!("10. virtual: first message to each of {keys} new keys (activation + ask), p50 / p99"),
        format!("{} / {}", ns(f50), ns(percentile(&mut first, 0.99))),
        format!("ask to an active key: {}", ns(a50)),
        Some(f50.as_secs_f64() / a50.as_secs_f64()),
        "-",
    ));
    rows.push(row(
        "10. ... first message to a passivated key (wake-up + ask), p50 / p99",
        format!("{} / {}", ns(w50), ns(percentile(&mut woken, 0.99))),
        format!("activation of a new key: {}", ns(f50)),
        Some(w50.as_secs_f64() / f50.as_secs_f64()),
        "-",
    ));
    host.shutdown().await;
}
