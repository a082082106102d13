//! Scenario 11: an ask to an actor on another host of a cluster, against
//! the floor under it measured in the same run: a bare NATS request and
//! reply through the same three-node nats-server cluster, to a responder
//! that only echoes; tells per second against as many bare requests at
//! once; the first message to a virtual key through the cluster; and
//! failovers after a kill -9, of a durable key and of a durable named
//! actor, and how soon a monitor on another host hears that the killed
//! host's actor was lost, against the lease.

use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt as _;
use troupe::actor::durable::Durability;
use troupe::cluster::{Cluster, ClusterConfig};
use troupe::{ActorLimits, ActorTemplate};

use crate::Scale;
use crate::measure::{ASK_TIMEOUT, latencies, percentile};
use crate::report::{Row, ns, row};
use crate::support::{self, guest, spawn};

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
    let config = |node: &str| ClusterConfig { servers: urls.clone(), node: node.into(), lease: FAILOVER_LEASE };
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

    // Tells per second from many senders at once, against as many bare
    // requests at once.
    let tells = (scale.tells / 10).clamp(2_000, 20_000);
    let sender = b.clone();
    let tell_rate = rate(CONCURRENCY, tells, move |_| {
        let b = sender.clone();
        async move { b.send("remote-counter", "incr(1)").await.unwrap() }
    })
    .await;
    let requester = client.clone();
    let bare_rate = rate(CONCURRENCY, tells, move |_| {
        let client = requester.clone();
        async move { drop(client.request("bench.echo", bytes::Bytes::from_static(&[1; 8])).await.unwrap()) }
    })
    .await;
    responder.abort();

    // The first message to a key of a virtual component, through the
    // cluster: claimed by the host it reaches, activated there; and to a
    // key another host holds, passivated there.
    let keys = 200.min(n);
    for host in [&a, &b] {
        let component = host.load("counter", &guest("counter"), None).expect("the counter loads");
        let mut template = ActorTemplate::new(component);
        template.policy.durability = Durability::InMemory;
        host.define_virtual("user", template, Some(Duration::from_millis(200))).expect("a virtual component");
    }
    let mut next = 0;
    let mut claimed = latencies(keys, async || {
        next += 1;
        b.ask(&format!("user/{next}"), "get()", ASK_TIMEOUT).await.unwrap();
    })
    .await;
    for key in 1_000..1_000 + keys {
        a.ask(&format!("user/{key}"), "get()", ASK_TIMEOUT).await.unwrap();
    }
    while a.active_keys("user") > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut next = 1_000;
    let mut remote_activation = latencies(keys, async || {
        b.ask(&format!("user/{next}"), "get()", ASK_TIMEOUT).await.unwrap();
        next += 1;
    })
    .await;
    cluster_a.leave().await;
    cluster_b.leave().await;
    let failovers: Vec<Duration> =
        (0..3).filter_map(|round| failover(&urls, Failover::VirtualKey, round, notes)).collect();
    let named_failovers: Vec<Duration> =
        (3..6).filter_map(|round| failover(&urls, Failover::NamedActor, round, notes)).collect();
    let lost_hosts: Vec<Duration> =
        (6..9).filter_map(|round| failover(&urls, Failover::MonitorOfLostHost, round, notes)).collect();
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
    rows.push(row(
        &format!("11b. acknowledged tells to an actor on another host, {CONCURRENCY} senders at once"),
        format!("{tell_rate:.0}/s"),
        format!("bare NATS requests, {CONCURRENCY} at once: {bare_rate:.0}/s"),
        Some(bare_rate / tell_rate),
        "-",
    ));
    let (c50, c99) = (percentile(&mut claimed, 0.5), percentile(&mut claimed, 0.99));
    let (v50, v99) = (percentile(&mut remote_activation, 0.5), percentile(&mut remote_activation, 0.99));
    let failover_rows = [
        (
            "11d. failover: a durable virtual key answers on another host after its host is killed (median of 3)",
            failovers,
        ),
        (
            "11e. failover: a durable named actor of a shared manifest answers on the host standing by for it after its \
             host is killed (median of 3)",
            named_failovers,
        ),
        (
            "11f. a monitor on another host is told `host-lost` after the watched actor's host is killed (median of 3)",
            lost_hosts,
        ),
    ];
    for (scenario, mut failovers) in failover_rows {
        if failovers.is_empty() {
            continue;
        }
        let median = percentile(&mut failovers, 0.5);
        rows.push(row(
            scenario,
            ns(median),
            format!("the lease, {}", ns(FAILOVER_LEASE)),
            Some(median.as_secs_f64() / FAILOVER_LEASE.as_secs_f64()),
            "lease + 2 s",
        ));
    }
    rows.push(row(
        "11c. first message to a new virtual key through the cluster (claim, then activation here) p50 / p99",
        format!("{} / {}", ns(c50), ns(c99)),
        format!("to a key passivated on another host (activated there) {} / {}", ns(v50), ns(v99)),
        None,
        "-",
    ));
}

/// The lease of the hosts in the failover row.
const FAILOVER_LEASE: Duration = Duration::from_secs(3);

/// What fails over in a failover row.
#[derive(Clone, Copy)]
enum Failover {
    /// A key of a durable virtual counter.
    VirtualKey,
    /// A durable named counter of the manifest both hosts run.
    NamedActor,
    /// Nothing: a probe on the second host monitors one on the first,
    /// and hears it was lost with its host.
    MonitorOfLostHost,
}

/// The calls of a failover row: each a `troupe call` of `message` to
/// `address`, done when its answer holds `expect`.
struct FailoverCalls {
    /// On the first host, until it runs what fails over.
    first: (&'static str, &'static str, &'static str),
    /// On the second, until it reaches it (and, for a monitor, watches it).
    ready: (&'static str, &'static str, &'static str),
    /// On the second after the kill, until it succeeds: the time measured.
    after: (&'static str, &'static str, &'static str),
}

impl Failover {
    /// The manifest both hosts of round `round` run, and the calls.
    fn manifest_and_calls(self, round: usize) -> (String, FailoverCalls) {
        let counter = format!("{:?}", guest("counter").display().to_string());
        match self {
            Failover::VirtualKey => (
                format!("[virtual.acct]\npath = {counter}\nidle-ms = 600000\n"),
                FailoverCalls {
                    first: ("acct/1", "incr(1)", ""),
                    ready: ("acct/1", "get()", ""),
                    after: ("acct/1", "incr(1)", ""),
                },
            ),
            Failover::NamedActor => (
                format!("[actors.ledger]\npath = {counter}\ndurability = \"durable\"\n"),
                FailoverCalls {
                    first: ("ledger", "incr(1)", ""),
                    ready: ("ledger", "get()", ""),
                    after: ("ledger", "incr(1)", ""),
                },
            ),
            Failover::MonitorOfLostHost => {
                let probe = format!("{:?}", guest("probe").display().to_string());
                (
                    format!(
                        "[actors.p]\npath = {probe}\nnode = \"first-{round}\"\n\n\
                         [actors.w]\npath = {probe}\nnode = \"second-{round}\"\n"
                    ),
                    FailoverCalls {
                        first: ("p", "whoami()", ""),
                        ready: ("w", r#"watch("p")"#, "ok("),
                        after: ("w", "notices()", "p host-lost gone"),
                    },
                )
            }
        }
    }
}

/// One failover: two `troupe run` hosts with a durable counter (`what`),
/// active on the first (started first), which is then killed (SIGKILL);
/// the time until the second answers for it. `None` (and a note) if the
/// hosts could not be run.
fn failover(urls: &str, what: Failover, round: usize, notes: &mut Vec<String>) -> Option<Duration> {
    let dir = tempfile::tempdir().ok()?;
    let manifest = dir.path().join("troupe.toml");
    let (text, calls) = what.manifest_and_calls(round);
    std::fs::write(&manifest, text).ok()?;
    let start = |node: &str| {
        let control = dir.path().join(format!("{node}.sock"));
        let child = Command::new(env!("CARGO_BIN_EXE_troupe"))
            .arg("run")
            .arg("--control")
            .arg(&control)
            .arg("--data-dir")
            .arg(dir.path().join(node))
            .args(["--cluster", urls, "--node", &format!("{node}-{round}")])
            .args(["--lease-ms", &FAILOVER_LEASE.as_millis().to_string()])
            .arg(&manifest)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        Some((child, control))
    };
    let call = |control: &std::path::Path, (address, message, expect): (&str, &str, &str)| {
        Command::new(env!("CARGO_BIN_EXE_troupe"))
            .arg("--control")
            .arg(control)
            .args(["call", address, message])
            .output()
            .is_ok_and(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).contains(expect))
    };
    let until = |what: &dyn Fn() -> bool, within: Duration| {
        let deadline = std::time::Instant::now() + within;
        while !what() {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    };
    // The second starts once the first has it: a named actor runs on the
    // host that claimed it first.
    let (mut first, first_control) = start("first")?;
    let first_has_it = until(&|| call(&first_control, calls.first), Duration::from_secs(20));
    let (mut second, second_control) = start("second")?;
    let measured = if first_has_it && until(&|| call(&second_control, calls.ready), Duration::from_secs(20)) {
        let _ = first.kill();
        let killed = std::time::Instant::now();
        let _ = first.wait();
        until(&|| call(&second_control, calls.after), Duration::from_secs(30)).then(|| killed.elapsed())
    } else {
        None
    };
    let _ = (first.kill(), second.kill(), first.wait(), second.wait());
    if measured.is_none() {
        notes.push(format!("11d-11f (failover) round {round} did not complete"));
    }
    measured
}

/// Senders at once in the throughput rows.
const CONCURRENCY: usize = 32;

/// How many operations per second `concurrency` tasks make, `total` in
/// all, each task running `op(i)` one after the other.
async fn rate<F: std::future::Future<Output = ()> + Send + 'static>(
    concurrency: usize,
    total: usize,
    op: impl Fn(usize) -> F + Clone + Send + 'static,
) -> f64 {
    let each = total / concurrency;
    let t0 = std::time::Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                for i in 0..each {
                    op(i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    (each * concurrency) as f64 / t0.elapsed().as_secs_f64()
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
