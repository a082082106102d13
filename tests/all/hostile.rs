//! The hostile-guest corpus: every attack runs next to a healthy actor with
//! messages queued, and each test checks that the host keeps running, the
//! neighbour keeps answering within a bounded delay with nothing lost, the
//! offender is stopped or restarted by policy, and the reason is precise.

use std::time::Duration;

use troupe::supervision::{Backoff, RestartType, SupervisorSpec};
use troupe::{ActorLimits, CallError, EngineConfig, FailureKind, Host, HostConfig};

use crate::support::{self, ask};

/// How long a healthy neighbour may take to answer while an attack runs.
const BOUNDED: Duration = Duration::from_secs(3);

/// A healthy counter with `queued` increments waiting in its mailbox.
async fn neighbour(host: &Host, queued: u64) {
    support::spawn(host, "counter", "healthy", ActorLimits::default()).await;
    for _ in 0..queued {
        host.tell("healthy", "incr(1)").unwrap();
    }
}

/// The neighbour answers in time and has lost none of its messages.
async fn neighbour_is_fine(host: &Host, expected: u64) {
    let reply = tokio::time::timeout(BOUNDED, host.ask("healthy", "get()", BOUNDED))
        .await
        .expect("the neighbour answers within the bound")
        .expect("the neighbour answers");
    assert_eq!(reply.unwrap().to_wave().unwrap(), expected.to_string(), "no queued message was lost");
}

async fn hostile(host: &Host, limits: ActorLimits) {
    support::spawn(host, "hostile", "h", limits).await;
}

fn failure(err: CallError) -> troupe::Failure {
    match err {
        CallError::ActorFailed { failure, .. } => failure,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_spawn_bomb_stops_at_the_per_actor_quota() {
    let host = support::host();
    neighbour(&host, 10).await;
    hostile(&host, ActorLimits { max_children: 25, ..ActorLimits::default() }).await;
    host.define("hostile", support::define(&host, "hostile"));
    let reply = ask(&host, "h", r#"spawn-bomb("hostile")"#).await.unwrap();
    assert!(reply.starts_with("(25, ") && reply.contains("max-children"), "{reply}");
    neighbour_is_fine(&host, 10).await;
}

#[tokio::test]
async fn a_spawn_bomb_stops_at_the_per_host_quota() {
    let mut engine = EngineConfig::new();
    engine.max_instances(40).cache_dir(Some(support::target_dir().join("troupe-test-cache")));
    let host = Host::new(HostConfig { engine, ..Default::default() }).unwrap();
    neighbour(&host, 10).await;
    hostile(&host, ActorLimits::default()).await;
    host.define("hostile", support::define(&host, "hostile"));
    let reply = ask(&host, "h", r#"spawn-bomb("hostile")"#).await.unwrap();
    assert!(reply.starts_with("(38, ") && reply.contains("its maximum"), "{reply}");
    neighbour_is_fine(&host, 10).await;
    assert_eq!(host.actors().len(), 40);
}

#[tokio::test]
async fn a_send_flood_is_held_by_the_bounded_mailbox() {
    let host = support::host();
    let mut entry = support::define(&host, "counter");
    entry.policy.limits.mailbox = 64;
    host.spawn(entry.spec("healthy".into())).await.unwrap();
    hostile(&host, ActorLimits::default()).await;
    let reply = ask(&host, "h", r#"send-flood("healthy", "incr(1)", 1000000)"#).await.unwrap();
    let queued: u64 = reply.trim_start_matches('(').split(',').next().unwrap().parse().unwrap();
    assert!(reply.contains("mailbox of `healthy` is full"), "{reply}");
    assert!(queued < 1_000_000, "the flood was cut short");
    neighbour_is_fine(&host, queued).await;
    // Flooding itself is refused the same way.
    let reply = ask(&host, "h", r#"send-flood("h", "ping()", 1000000)"#).await.unwrap();
    assert!(reply.contains("mailbox of `h` is full"), "{reply}");
}

#[tokio::test]
async fn a_timer_flood_stops_at_the_timer_quota() {
    let host = support::host();
    neighbour(&host, 5).await;
    hostile(&host, ActorLimits { max_timers: 100, ..ActorLimits::default() }).await;
    let reply = ask(&host, "h", "timer-flood()").await.unwrap();
    assert!(reply.starts_with("(100, ") && reply.contains("max-timers"), "{reply}");
    neighbour_is_fine(&host, 5).await;
}

#[tokio::test]
async fn a_message_larger_than_the_limit_never_leaves_the_guest() {
    let host = support::host();
    neighbour(&host, 5).await;
    hostile(&host, ActorLimits::default()).await;
    let reply = ask(&host, "h", r#"huge-message("healthy", 8000000)"#).await.unwrap();
    assert!(reply.starts_with("err(") && reply.contains("too large"), "{reply}");
    // A message bigger than the guest's own memory makes it fail, not the host.
    let err = ask(&host, "h", r#"huge-message("healthy", 100000000)"#).await.unwrap_err();
    assert_eq!(failure(err).kind, FailureKind::MemoryLimit);
    neighbour_is_fine(&host, 5).await;
}

#[tokio::test]
async fn growing_memory_without_touching_it_stops_at_the_limit() {
    let host = support::host();
    neighbour(&host, 5).await;
    hostile(&host, ActorLimits { memory: 16 << 20, ..ActorLimits::default() }).await;
    let err = ask(&host, "h", "grow(1000)").await.unwrap_err();
    assert_eq!(failure(err).kind, FailureKind::MemoryLimit);
    assert_eq!(ask(&host, "h", "ping()").await.unwrap(), r#""pong""#, "restarted");
    neighbour_is_fine(&host, 5).await;
}

#[tokio::test]
async fn absurd_host_api_arguments_get_errors_not_crashes() {
    let host = support::host();
    neighbour(&host, 5).await;
    hostile(&host, ActorLimits::default()).await;
    let reply = ask(&host, "h", "absurd-calls()").await.unwrap();
    assert!(!reply.contains("\"accepted\""), "every absurd call is refused: {reply}");
    for expected in [
        "no actor at ``",
        "no actor at `nobody/at/all`",
        "unknown function `no-such-function`",
        "ill-typed message for `ping() -> string`",
        "malformed message",
        "exceeds the maximum",
        "no actor at `root`",
        "no component named `no-such-component`",
        "InvalidArgument",
        "does not import `no:such/iface`",
        "no actor at `nobody`",
    ] {
        assert!(reply.contains(expected), "missing {expected:?} in {reply}");
    }
    assert_eq!(host.lookup("h").unwrap().info().failures, 0, "errors, not failures");
    neighbour_is_fine(&host, 5).await;
}

#[tokio::test]
async fn a_log_flood_is_rate_limited() {
    let host = support::host();
    neighbour(&host, 5).await;
    hostile(&host, ActorLimits::default()).await;
    ask(&host, "h", "log-flood(5000, 4096)").await.unwrap();
    neighbour_is_fine(&host, 5).await;
}

#[tokio::test]
async fn a_trap_in_snapshot_is_reported_as_such_and_the_actor_restarts() {
    let host = support::host();
    neighbour(&host, 5).await;
    let mut entry = support::define(&host, "hostile");
    entry.policy.restore = troupe::RestartFrom::Snapshot;
    entry.policy.config = vec![("snapshot".into(), "panic".into())];
    host.spawn(entry.spec("h".into())).await.unwrap();
    // The message succeeds; the snapshot after it traps.
    assert_eq!(ask(&host, "h", "ping()").await.unwrap(), r#""pong""#);
    let h = host.lookup("h").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.info().failures == 0 {
        assert!(std::time::Instant::now() < deadline, "the snapshot failure is recorded");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let last = h.info().last_failure.unwrap();
    assert_eq!(last.kind, FailureKind::Panic);
    assert!(last.detail.starts_with("in `snapshot`:"), "{}", last.detail);
    neighbour_is_fine(&host, 5).await;
}

#[tokio::test]
async fn a_trap_in_restore_fails_the_restart_until_the_supervisor_gives_up() {
    let host = support::host();
    neighbour(&host, 5).await;
    let spec = SupervisorSpec {
        intensity: 3,
        backoff: Backoff { min: Duration::from_millis(1), max: Duration::from_millis(5), ..Backoff::default() },
        restart: RestartType::Temporary,
        ..SupervisorSpec::default()
    };
    host.supervise("sup", spec, None).unwrap();
    let mut entry = support::define(&host, "hostile");
    entry.policy.restore = troupe::RestartFrom::Snapshot;
    entry.policy.config = vec![("restore".into(), "panic".into())];
    let h = host.spawn_under(entry.spec("h".into()), Some("sup")).await.unwrap();
    ask(&host, "h", "ping()").await.unwrap(); // a snapshot that makes restore trap
    // Any failure now restarts from that snapshot, and every restore traps.
    ask(&host, "h", "grow(100000)").await.unwrap_err();
    tokio::time::timeout(Duration::from_secs(10), h.stopped()).await.expect("the supervisor gives up");
    let last = h.info().last_failure.unwrap();
    assert_eq!(last.kind, FailureKind::Restore, "{last:?}");
    assert!(last.detail.contains("panic"), "{}", last.detail);
    neighbour_is_fine(&host, 5).await;
}

/// Loads a minimal component, exporting `acme:x/api` plus `extra` and
/// importing `imports`, expecting it to be refused.
fn refused(imports: &str, extra: &str) -> String {
    let wat = format!(
        r#"(component
             {imports}
             (core module $m (func (export "f")))
             (core instance $i (instantiate $m))
             (func $f (canon lift (core func $i "f")))
             (instance $api (export "f" (func $f)))
             (export "acme:x/api" (instance $api))
             {extra})"#
    );
    let host = support::host();
    let bytes = wat::parse_str(wat).unwrap();
    host.load_bytes("x", "x.wat", bytes, None).unwrap_err().to_string()
}

#[tokio::test]
async fn a_component_importing_what_the_host_lacks_is_refused_with_its_name() {
    let err = refused(r#"(import "launch-missiles" (func))"#, "");
    assert!(err.contains("launch-missiles"), "{err}");
    let err = refused(r#"(import "wasi:nuclear/reactor@0.2.0" (instance (export "scram" (func))))"#, "");
    assert!(err.contains("wasi:nuclear/reactor@0.2.0"), "{err}");
}

#[tokio::test]
async fn a_component_cannot_reach_the_batch_adapters_progress_hook() {
    // Calling it would give the caller a fresh CPU budget.
    let err = refused(r#"(import "troupe:batch/progress@0.1.0" (instance (export "next" (func))))"#, "");
    assert!(err.contains("`troupe:batch/progress@0.1.0`") && err.contains("reserved"), "{err}");
    let err = refused("", r#"(export "troupe:batch/deliver@0.1.0" (instance $api))"#);
    assert!(err.contains("`troupe:batch/deliver@0.1.0`") && err.contains("reserved"), "{err}");
}

#[tokio::test]
async fn a_component_built_for_another_troupe_api_version_is_refused() {
    let err = refused(
        "",
        r#"(instance $old (export "snapshot" (func $f)))
           (export "troupe:actor/persistence@0.0.9" (instance $old))"#,
    );
    assert!(err.contains("troupe:actor/persistence@0.0.9") && err.contains("troupe:actor@0.2.0"), "{err}");
    let err = refused(r#"(import "troupe:actor/host@9.0.0" (instance (export "self-address" (func))))"#, "");
    assert!(err.contains("troupe:actor/host@9.0.0"), "{err}");
}
