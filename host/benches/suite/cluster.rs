//! Scenario 11: an ask to an actor on another host of a cluster, against
//! the floor under it measured in the same run: a bare NATS request and
//! reply through the same three-node nats-server cluster, to a responder
//! that only echoes.

use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt as _;
use troupe::ActorLimits;
use troupe::cluster::{Cluster, ClusterConfig};

use crate::Scale;
use crate::measure::{ASK_TIMEOUT, latencies, percentile};
use crate::report::{Row, ns, row};
use crate::support::{self, spawn};

/// nats-server's client ports for this scenario (routes +100, monitoring
/// +200), away from the tests' and from the default 4222.
const BASE_PORT: u16 = 24_222;

/// 11: remote ask p50 / p99 against a bare NATS round trip.
pub async fn remote_asks(scale: Scale, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let script = support::workspace().join("scripts/nats-cluster");
    let dir = tempfile::tempdir().unwrap();
    let started = Command::new(&script).arg("start").arg(dir.path()).arg(BASE_PORT.to_string()).output();
    let urls = match started {
        Ok(out) if out.status.success() => String::from_utf8(out.stdout).unwrap().trim().to_string(),
        other => {
            notes.push(format!("11 (remote asks) not run: nats-server could not be started ({other:?})"));
            return;
        }
    };
    let (a, b) =
        (crate::host_with(16, 64 << 20, Default::default()), crate::host_with(16, 64 << 20, Default::default()));
    let config =
        |node: &str| ClusterConfig { servers: urls.clone(), node: node.into(), lease: Duration::from_secs(10) };
    let cluster_a = Cluster::join(&a, config("bench-a")).await.unwrap();
    let cluster_b = Cluster::join(&b, config("bench-b")).await.unwrap();
    spawn(&a, "counter", "remote-counter", ActorLimits::default()).await;
    // Reachable once its claim and subscription are in place.
    while b.ask("remote-counter", "get()", ASK_TIMEOUT).await.is_err() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let n = scale.asks.min(5_000);
    let mut remote = latencies(n, async || {
        b.ask("remote-counter", "incr(1)", ASK_TIMEOUT).await.unwrap();
    })
    .await;
    let mut local = latencies(n, async || {
        a.ask("remote-counter", "incr(1)", ASK_TIMEOUT).await.unwrap();
    })
    .await;

    // The floor: a request with an 8-byte payload to an echo on another
    // connection, as host b's request reaches host a.
    let servers: Vec<async_nats::ServerAddr> = urls.split(',').map(|u| u.parse().unwrap()).collect();
    let (client, echo) =
        (async_nats::connect(servers.clone()).await.unwrap(), async_nats::connect(servers).await.unwrap());
    let mut subscription = echo.subscribe("bench.echo").await.unwrap();
    let responder = tokio::spawn(async move {
        while let Some(message) = subscription.next().await {
            if let Some(reply) = message.reply {
                let _ = echo.publish(reply, message.payload).await;
            }
        }
    });
    echo_ready(&client).await;
    let mut bare = latencies(n, async || {
        client.request("bench.echo", bytes::Bytes::from_static(&[1; 8])).await.unwrap();
    })
    .await;
    responder.abort();
    cluster_a.leave().await;
    cluster_b.leave().await;
    let _ = Command::new(&script).arg("stop").arg(dir.path()).output();

    let (r50, r99) = (percentile(&mut remote, 0.5), percentile(&mut remote, 0.99));
    let (f50, f99) = (percentile(&mut bare, 0.5), percentile(&mut bare, 0.99));
    let l50 = percentile(&mut local, 0.5);
    rows.push(row(
        "11. ask to an actor on another host of a NATS cluster p50 / p99 (`troupe call`'s path)",
        format!("{} / {}", ns(r50), ns(r99)),
        format!("bare NATS request/reply {} / {}; the same ask on its own host {}", ns(f50), ns(f99), ns(l50)),
        Some(r50.as_secs_f64() / f50.as_secs_f64()),
        "-",
    ));
}

/// Waits until the echo's subscription has reached the server.
async fn echo_ready(client: &async_nats::Client) {
    for _ in 0..200 {
        if client.request("bench.echo", bytes::Bytes::new()).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
