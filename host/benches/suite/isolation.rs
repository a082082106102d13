//! Scenario 7: healthy throughput while one actor per core spins.

use std::time::Duration;

use troupe::{ActorLimits, Host};

use crate::Scale;
use crate::report::{Row, row};
use crate::support::spawn;
use crate::tell::troupe_many;

/// 7: healthy throughput while one actor per core spins.
pub async fn isolation(scale: Scale, host: &Host, healthy: f64, rows: &mut Vec<Row>) {
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
