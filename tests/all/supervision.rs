//! Supervision: strategies, restart types, intensity and escalation,
//! backoff, mailboxes across restarts, monitors and links, shutdown.
//! Test names are cells of the spec in `troupe::supervision`.

use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use troupe::actor::{DownNotice, DownReason};
use troupe::events::{Event, EventKind};
use troupe::supervision::{Backoff, RestartType, Strategy, SupervisorSpec};
use troupe::{ActorStatus, CallError, FailureKind, Host};

use crate::support::{self, ask};

/// Backoff short enough for tests, without jitter.
fn quick_backoff() -> Backoff {
    Backoff {
        min: Duration::from_millis(5),
        max: Duration::from_millis(20),
        jitter: 0.0,
        reset_after: Duration::from_secs(60),
    }
}

fn spec(strategy: Strategy, intensity: u32) -> SupervisorSpec {
    SupervisorSpec {
        strategy,
        intensity,
        period: Duration::from_secs(60),
        backoff: quick_backoff(),
        ..SupervisorSpec::default()
    }
}

/// Starts `names` as faulty actors under a new supervisor `sup`.
async fn faulty_children(host: &Host, sup: &str, names: &[&str], restart: RestartType) {
    let entry = support::define(host, "faulty");
    for name in names {
        let mut spec = entry.spec((*name).into());
        spec.policy.restart = restart;
        host.spawn_under(spec, Some(sup)).await.unwrap();
    }
}

async fn ping(host: &Host, address: &str) -> String {
    ask(host, address, "ping()").await.unwrap()
}

/// Waits until `check` holds, polling; panics after 10 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Collects events until `until` matches one (or 10 s pass).
async fn events_until(rx: &mut broadcast::Receiver<Event>, until: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        let done = until(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
    panic!("the expected event never came; saw {seen:#?}");
}

fn addresses_of(events: &[Event], kind: impl Fn(&EventKind) -> bool) -> Vec<String> {
    events.iter().filter(|e| kind(&e.kind)).map(|e| e.address.to_string()).collect()
}

fn started(k: &EventKind) -> bool {
    matches!(k, EventKind::Started { .. })
}

fn terminated(k: &EventKind) -> bool {
    matches!(k, EventKind::Terminated)
}

/// Children a, b, c under a `strategy` supervisor, each pinged once; then
/// b fails. Returns the events up to `last` starting again.
async fn fail_the_middle_child(strategy: Strategy, last: &str) -> (Host, Vec<Event>) {
    let host = support::host();
    host.supervise("sup", spec(strategy, 10), None).unwrap();
    faulty_children(&host, "sup", &["a", "b", "c"], RestartType::Permanent).await;
    for name in ["a", "b", "c"] {
        assert_eq!(ping(&host, name).await, "1");
    }
    let mut events = host.events();
    ask(&host, "b", "panic(\"boom\")").await.unwrap_err();
    let seen = events_until(&mut events, |e| e.address.as_str() == last && started(&e.kind)).await;
    (host, seen)
}

#[tokio::test]
async fn one_for_one_restarts_only_the_failed_child() {
    let (host, seen) = fail_the_middle_child(Strategy::OneForOne, "b").await;
    assert!(addresses_of(&seen, terminated).is_empty(), "no sibling is terminated: {seen:?}");
    assert_eq!(ping(&host, "a").await, "2", "a kept its state");
    assert_eq!(ping(&host, "b").await, "1", "b is a fresh incarnation");
    assert_eq!(ping(&host, "c").await, "2", "c kept its state");
}

#[tokio::test]
async fn the_supervisor_view_keeps_start_order_and_counts_restarts_as_children_come_and_go() {
    let (host, _) = fail_the_middle_child(Strategy::OneForOne, "b").await;
    host.stop("a").await.unwrap();
    faulty_children(&host, "sup", &["d"], RestartType::Permanent).await;
    let children = host.supervisor("sup").unwrap().info().children;
    let names: Vec<&str> = children.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(names, ["b", "c", "d"]);
    let restarts: Vec<u64> = children.iter().map(|c| c.restarts).collect();
    assert_eq!(restarts, [1, 0, 0]);
    assert_eq!(children[0].last_failure.as_ref().map(|f| f.kind), Some(FailureKind::Panic));
    assert!(children[1].last_failure.is_none());
}

#[tokio::test]
async fn children_started_without_waiting_are_supervised_from_their_first_message() {
    let host = support::host();
    host.supervise("sup", spec(Strategy::OneForOne, 10), None).unwrap();
    let entry = support::define(&host, "faulty");
    let mut broken = entry.spec("broken".into());
    broken.policy.config = vec![("fail-init".into(), "true".into())];
    // Started back to back: the supervisor takes its new children in when
    // it next has something to do, so none may be missed or misordered.
    let mut starting = Vec::new();
    for spec in [entry.spec("a".into()), broken, entry.spec("b".into()), entry.spec("c".into())] {
        starting.push(host.start_under(spec, Some("sup")).unwrap());
    }
    // b fails on its very first message, queued before its `init` ran.
    starting[2].actor().tell(starting[2].actor().parse("panic(\"at once\")").unwrap(), None).unwrap();
    let outcomes: Vec<bool> = futures_util::future::join_all(starting.into_iter().map(|s| s.started()))
        .await
        .iter()
        .map(Result::is_ok)
        .collect();
    assert_eq!(outcomes, [true, false, true, true], "only the child whose init fails does not start");
    eventually("b is restarted", || {
        host.supervisor("sup").unwrap().info().children.iter().any(|c| c.address.as_str() == "b" && c.restarts == 1)
    })
    .await;
    assert_eq!(ping(&host, "b").await, "1", "b runs again, a fresh incarnation");
    let children = host.supervisor("sup").unwrap().info().children;
    let names: Vec<&str> = children.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"], "the failed start left the view, the others keep start order");
}

#[tokio::test]
async fn one_for_all_terminates_siblings_in_reverse_order_and_restarts_all_in_start_order() {
    let (host, seen) = fail_the_middle_child(Strategy::OneForAll, "c").await;
    assert_eq!(addresses_of(&seen, terminated), ["c", "a"], "siblings terminate in reverse start order");
    assert_eq!(addresses_of(&seen, started), ["a", "b", "c"], "all restart in start order");
    for name in ["a", "b", "c"] {
        assert_eq!(ping(&host, name).await, "1", "{name} is a fresh incarnation");
    }
}

#[tokio::test]
async fn rest_for_one_restarts_the_failed_child_and_those_started_after_it() {
    let (host, seen) = fail_the_middle_child(Strategy::RestForOne, "c").await;
    assert_eq!(addresses_of(&seen, terminated), ["c"]);
    assert_eq!(addresses_of(&seen, started), ["b", "c"]);
    assert_eq!(ping(&host, "a").await, "2", "a, started before b, is untouched");
    assert_eq!(ping(&host, "b").await, "1");
    assert_eq!(ping(&host, "c").await, "1");
}

/// A probe under `sup` with `restart`, for normal exits (it can stop itself).
async fn probe_under(host: &Host, sup: &str, name: &str, restart: RestartType) -> troupe::ActorRef {
    let mut spec = support::define(host, "probe").spec(name.into());
    spec.policy.restart = restart;
    host.spawn_under(spec, Some(sup)).await.unwrap()
}

async fn exit_normally(host: &Host, name: &str) {
    assert_eq!(ask(host, name, &format!("stop-actor({name:?})")).await.unwrap(), "ok");
}

#[tokio::test]
async fn permanent_normal_exit_is_restarted() {
    let host = support::host();
    host.supervise("sup", spec(Strategy::OneForOne, 10), None).unwrap();
    let p = probe_under(&host, "sup", "p", RestartType::Permanent).await;
    ask(&host, "p", "remember(\"before\")").await.unwrap();
    let mut events = host.events();
    exit_normally(&host, "p").await;
    events_until(&mut events, |e| e.address.as_str() == "p" && started(&e.kind)).await;
    assert_eq!(ask(&host, "p", "remembered()").await.unwrap(), "[]", "a new incarnation");
    assert_eq!(p.status(), ActorStatus::Running);
}

#[tokio::test]
async fn transient_normal_exit_is_not_restarted() {
    let host = support::host();
    host.supervise("sup", spec(Strategy::OneForOne, 10), None).unwrap();
    let p = probe_under(&host, "sup", "p", RestartType::Transient).await;
    exit_normally(&host, "p").await;
    tokio::time::timeout(Duration::from_secs(10), p.stopped()).await.unwrap();
    assert_eq!(p.status(), ActorStatus::Stopped);
    assert!(host.supervisor("sup").unwrap().info().children.is_empty());
}

#[tokio::test]
async fn transient_abnormal_exit_is_restarted() {
    let host = support::host();
    host.supervise("sup", spec(Strategy::OneForOne, 10), None).unwrap();
    faulty_children(&host, "sup", &["t"], RestartType::Transient).await;
    ask(&host, "t", "panic(\"x\")").await.unwrap_err();
    assert_eq!(ping(&host, "t").await, "1");
    assert_eq!(host.lookup("t").unwrap().info().restarts, 1);
}

#[tokio::test]
async fn temporary_abnormal_exit_is_not_restarted() {
    let host = support::host();
    host.supervise("sup", spec(Strategy::OneForOne, 10), None).unwrap();
    faulty_children(&host, "sup", &["t", "bystander"], RestartType::Temporary).await;
    let t = host.lookup("t").unwrap();
    ask(&host, "t", "panic(\"x\")").await.unwrap_err();
    tokio::time::timeout(Duration::from_secs(10), t.stopped()).await.unwrap();
    assert_eq!(t.status(), ActorStatus::Failed, "it stopped because it failed");
    assert!(matches!(ask(&host, "t", "ping()").await, Err(CallError::UnknownAddress(_))));
    assert_eq!(ping(&host, "bystander").await, "1", "siblings are untouched");
}

#[tokio::test]
async fn temporary_normal_exit_is_not_restarted() {
    let host = support::host();
    host.supervise("sup", spec(Strategy::OneForOne, 10), None).unwrap();
    let p = probe_under(&host, "sup", "p", RestartType::Temporary).await;
    exit_normally(&host, "p").await;
    tokio::time::timeout(Duration::from_secs(10), p.stopped()).await.unwrap();
    assert_eq!(p.status(), ActorStatus::Stopped);
}

#[tokio::test]
async fn intensity_exceeded_escalates_to_the_parent_and_the_subtree_stops() {
    let host = support::host();
    let mut inner = spec(Strategy::OneForOne, 2);
    inner.restart = RestartType::Temporary; // so that the root does not restart it
    host.supervise("sup", inner, None).unwrap();
    faulty_children(&host, "sup", &["a", "b"], RestartType::Permanent).await;
    let (a, b) = (host.lookup("a").unwrap(), host.lookup("b").unwrap());
    let mut events = host.events();
    for _ in 0..3 {
        let err = ask(&host, "a", "panic(\"again\")").await.unwrap_err();
        assert!(matches!(err, CallError::ActorFailed { .. }), "{err:?}");
    }
    let seen =
        events_until(&mut events, |e| e.address.as_str() == "sup" && matches!(e.kind, EventKind::Stopped { .. })).await;
    assert!(seen.iter().any(|e| e.address.as_str() == "sup" && matches!(e.kind, EventKind::Escalated { .. })));
    tokio::time::timeout(Duration::from_secs(10), a.stopped()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), b.stopped()).await.unwrap();
    assert!(host.supervisor("sup").is_none(), "the subtree is gone");
    assert!(host.lookup("b").is_err());
}

#[tokio::test]
async fn escalation_restarts_the_subtree_when_its_supervisor_allows() {
    let host = support::host();
    host.supervise("top", spec(Strategy::OneForOne, 10), None).unwrap();
    host.supervise("sup", spec(Strategy::OneForOne, 1), Some("top")).unwrap();
    faulty_children(&host, "sup", &["a", "b"], RestartType::Permanent).await;
    ping(&host, "b").await;
    let mut events = host.events();
    ask(&host, "a", "panic(\"1\")").await.unwrap_err();
    ask(&host, "a", "panic(\"2\")").await.unwrap_err(); // one more than intensity 1
    let seen = events_until(&mut events, |e| e.address.as_str() == "b" && started(&e.kind)).await;
    assert!(seen.iter().any(|e| e.address.as_str() == "sup" && matches!(e.kind, EventKind::Escalated { .. })));
    assert!(seen.iter().any(|e| e.address.as_str() == "sup" && matches!(e.kind, EventKind::Restarting { .. })));
    assert_eq!(ping(&host, "b").await, "1", "the whole subtree restarted");
    assert_eq!(host.supervisor("top").unwrap().info().children[0].restarts, 1);
}

#[tokio::test]
async fn the_root_gives_up_on_a_failing_top_level_child_and_keeps_the_rest() {
    let mut engine = troupe::EngineConfig::new();
    engine.max_instances(50).cache_dir(Some(support::target_dir().join("troupe-test-cache")));
    let root = SupervisorSpec { intensity: 2, backoff: quick_backoff(), ..SupervisorSpec::default() };
    let host = Host::new(troupe::HostConfig { engine, root, ..Default::default() }).unwrap();
    let entry = support::define(&host, "faulty");
    let doomed = host.spawn(entry.spec("doomed".into())).await.unwrap();
    host.spawn(entry.spec("healthy".into())).await.unwrap();
    for _ in 0..3 {
        ask(&host, "doomed", "panic(\"x\")").await.unwrap_err();
    }
    tokio::time::timeout(Duration::from_secs(10), doomed.stopped()).await.unwrap();
    assert_eq!(ping(&host, "healthy").await, "1", "the rest keeps running");
}

#[tokio::test]
async fn backoff_delays_grow_then_reset_after_healthy_running() {
    let host = support::host();
    let mut s = spec(Strategy::OneForOne, 100);
    s.backoff = Backoff {
        min: Duration::from_millis(10),
        max: Duration::from_millis(40),
        jitter: 0.0,
        reset_after: Duration::from_millis(300),
    };
    host.supervise("sup", s, None).unwrap();
    faulty_children(&host, "sup", &["a"], RestartType::Permanent).await;
    let mut events = host.events();
    let mut delays = Vec::new();
    for _ in 0..5 {
        ask(&host, "a", "panic(\"x\")").await.unwrap_err();
        let seen = events_until(&mut events, |e| e.address.as_str() == "a" && started(&e.kind)).await;
        for e in seen {
            if let EventKind::Restarting { delay_ms, .. } = e.kind {
                delays.push(delay_ms);
            }
        }
    }
    assert_eq!(delays, [0, 10, 20, 40, 40], "immediate, then doubling up to the maximum");
    tokio::time::sleep(Duration::from_millis(350)).await; // healthy running
    ask(&host, "a", "panic(\"x\")").await.unwrap_err();
    let seen = events_until(&mut events, |e| e.address.as_str() == "a" && started(&e.kind)).await;
    let restarting: Vec<u64> = seen
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Restarting { delay_ms, .. } => Some(delay_ms),
            _ => None,
        })
        .collect();
    assert_eq!(restarting, [0], "the backoff starts over");
}

#[tokio::test]
async fn messages_queued_during_a_restart_are_delivered_once_in_order() {
    let host = support::host();
    let mut s = spec(Strategy::OneForOne, 100);
    s.backoff = Backoff { min: Duration::from_millis(300), max: Duration::from_millis(300), ..quick_backoff() };
    host.supervise("sup", s, None).unwrap();
    let p = probe_under(&host, "sup", "p", RestartType::Permanent).await;
    ask(&host, "p", "crash(\"first\")").await.unwrap_err(); // restarted at once
    host.tell("p", "crash(\"second\")").unwrap(); // restarted after 300 ms
    eventually("p is down in its backoff", || p.status() == ActorStatus::Restarting).await;
    for i in 0..100 {
        host.tell("p", &format!("remember(\"{i}\")")).unwrap();
    }
    let remembered = ask(&host, "p", "remembered()").await.unwrap();
    let expected: Vec<String> = (0..100).map(|i| format!("\"{i}\"")).collect();
    assert_eq!(remembered, format!("[{}]", expected.join(", ")), "each exactly once, in order");
    assert_eq!(host.dead_letters(), 2, "the two failed messages, never retried");
}

#[tokio::test]
async fn an_ask_to_a_failing_actor_returns_the_failure_and_is_not_retried() {
    let host = support::host();
    host.supervise("sup", spec(Strategy::OneForOne, 10), None).unwrap();
    faulty_children(&host, "sup", &["f"], RestartType::Permanent).await;
    let err = ask(&host, "f", "panic(\"kaput\")").await.unwrap_err();
    let CallError::ActorFailed { address, failure } = err else { panic!("expected a failure") };
    assert_eq!((address.as_str(), failure.kind), ("f", FailureKind::Panic));
    assert_eq!(ping(&host, "f").await, "1");
    assert_eq!(host.lookup("f").unwrap().info().failures, 1, "the failed message ran once");
}

#[tokio::test]
async fn a_monitor_receives_down_notices_for_trap_stop_and_memory_limit() {
    let host = support::host();
    let mut entry = support::define(&host, "faulty");
    entry.policy.limits.memory = 16 << 20;
    let f = host.spawn(entry.spec("f".into())).await.unwrap();
    support::define(&host, "probe");
    host.spawn(host.template("probe").unwrap().spec("w".into())).await.unwrap();
    let (_, mut host_monitor) = f.monitor();
    assert!(ask(&host, "w", "watch(\"f\")").await.unwrap().starts_with("ok("));

    ask(&host, "f", "panic(\"x\")").await.unwrap_err();
    ask(&host, "f", "bomb(100)").await.unwrap_err();
    host.stop("f").await.unwrap();

    let mut reasons = Vec::new();
    while let Ok(Some(notice)) = tokio::time::timeout(Duration::from_secs(5), host_monitor.recv()).await {
        let DownNotice { address, reason, gone } = notice;
        assert_eq!(address.as_str(), "f");
        reasons.push(match reason {
            DownReason::Failed(f) => (Some(f.kind), gone),
            DownReason::Stopped => (None, gone),
        });
        if gone {
            break;
        }
    }
    assert_eq!(reasons, [(Some(FailureKind::Panic), false), (Some(FailureKind::MemoryLimit), false), (None, true)]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let notices = ask(&host, "w", "notices()").await.unwrap();
        if notices == r#"["f panic restarting", "f memory-limit restarting", "f stopped gone"]"# {
            break;
        }
        assert!(Instant::now() < deadline, "the guest watcher saw {notices}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn linked_actors_fail_together_unless_the_other_watches() {
    let host = support::host();
    let faulty = support::define(&host, "faulty");
    let f = host.spawn(faulty.spec("f".into())).await.unwrap();
    let partner = host.spawn(faulty.spec("partner".into())).await.unwrap();
    support::define(&host, "probe");
    host.spawn(host.template("probe").unwrap().spec("w".into())).await.unwrap();
    f.link(&partner);
    assert_eq!(ask(&host, "w", "link-to(\"f\")").await.unwrap(), "ok");
    ping(&host, "partner").await;

    ask(&host, "f", "panic(\"x\")").await.unwrap_err();
    eventually("the partner failed with f", || partner.info().failures == 1).await;
    let failure = partner.info().last_failure.unwrap();
    assert_eq!(failure.kind, FailureKind::Linked);
    assert!(failure.detail.contains("linked actor `f` failed"), "{}", failure.detail);
    assert_eq!(ping(&host, "partner").await, "1", "restarted by its supervisor");
    // The watcher got a notice instead of failing.
    let w = host.lookup("w").unwrap();
    assert_eq!(w.info().failures, 0);
    let notices = ask(&host, "w", "notices()").await.unwrap();
    assert_eq!(notices, r#"["f panic restarting"]"#);
    // A linked failure does not bounce back to where it came from.
    assert_eq!(f.info().failures, 1);
}

#[tokio::test]
async fn stopping_a_supervisor_stops_children_in_reverse_order_calling_their_shutdown_hook() {
    let out = tempfile::tempdir().unwrap();
    let host = support::host();
    host.supervise("sup", spec(Strategy::OneForOne, 10), None).unwrap();
    let mut entry = support::define(&host, "probe");
    entry.policy.grants.dirs = vec![troupe::grants::DirGrant {
        host: out.path().to_path_buf(),
        guest: "/out".into(),
        mode: troupe::grants::DirMode::ReadWrite,
    }];
    for name in ["a", "b", "c"] {
        host.spawn_under(entry.spec(name.into()), Some("sup")).await.unwrap();
    }
    let mut events = host.events();
    host.stop("sup").await.unwrap();
    let seen =
        events_until(&mut events, |e| e.address.as_str() == "sup" && matches!(e.kind, EventKind::Stopped { .. })).await;
    let stopped = addresses_of(&seen, |k| matches!(k, EventKind::Stopped { .. }));
    assert_eq!(stopped, ["c", "b", "a", "sup"]);
    for name in ["a", "b", "c"] {
        assert!(out.path().join(format!("stopped-{name}")).is_file(), "{name}'s shutdown hook ran");
    }
}

#[tokio::test]
async fn a_shutdown_hook_that_hangs_is_cut_off_by_its_grace_period() {
    let host = support::host();
    let mut entry = support::define(&host, "faulty");
    entry.policy.config = vec![("spin-on-stop".into(), "true".into())];
    entry.policy.shutdown = Duration::from_millis(200);
    let f = host.spawn(entry.spec("f".into())).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), host.stop("f")).await.expect("the stop completes").unwrap();
    assert_eq!(f.status(), ActorStatus::Stopped);
}

#[tokio::test]
async fn a_guest_supervises_the_children_it_spawns() {
    let host = support::host();
    support::define(&host, "faulty");
    support::spawn(&host, "probe", "parent", Default::default()).await;
    let child = ask(&host, "parent", "spawn-child(\"faulty\", some(\"kid\"))").await.unwrap();
    assert_eq!(child, r#"ok("kid")"#);
    ask(&host, "kid", "panic(\"x\")").await.unwrap_err();
    assert_eq!(ping(&host, "kid").await, "1", "restarted by its parent's supervisor");
    let troupe::host::TreeNode::Supervisor { nodes, .. } = host.tree() else { panic!("the root") };
    let parent = nodes.iter().find_map(|n| match n {
        troupe::host::TreeNode::Actor { info, nodes, .. } if info.address.as_str() == "parent" => Some(nodes),
        _ => None,
    });
    let kids = parent.expect("parent is in the tree");
    let troupe::host::TreeNode::Actor { info, restarts_by_supervisor, .. } = &kids[0] else { panic!() };
    assert_eq!((info.address.as_str(), *restarts_by_supervisor), ("kid", 1));
}

#[tokio::test]
async fn a_crash_loop_backs_off_instead_of_spinning() {
    let host = support::host();
    let mut s = spec(Strategy::OneForOne, 1000);
    s.backoff =
        Backoff { min: Duration::from_millis(50), max: Duration::from_secs(5), jitter: 0.0, ..Backoff::default() };
    host.supervise("sup", s, None).unwrap();
    faulty_children(&host, "sup", &["f"], RestartType::Permanent).await;
    let f = host.lookup("f").unwrap();
    for _ in 0..100 {
        host.tell("f", "panic(\"loop\")").unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // 0 + 50 + 100 + 200 + 400 ms: at most six restarts fit in a second,
    // however fast the machine; without backoff all 100 would have run.
    let restarts = f.info().restarts;
    assert!((3..=6).contains(&restarts), "{restarts} restarts in one second");
    assert!(f.mailbox_len() >= 90, "the rest of the crash loop waits in the mailbox");
}

#[tokio::test]
async fn a_pool_takes_only_identical_children() {
    let host = support::host();
    host.supervise("pool", spec(Strategy::Pool, 10), None).unwrap();
    faulty_children(&host, "pool", &["w-0", "w-1"], RestartType::Permanent).await;
    let counter = support::define(&host, "counter");
    let err = host.spawn_under(counter.spec("odd".into()), Some("pool")).await.unwrap_err();
    assert!(err.to_string().contains("pool `pool` runs identical children"), "{err}");
    ask(&host, "w-1", "panic(\"x\")").await.unwrap_err();
    assert_eq!(ping(&host, "w-0").await, "1");
    assert_eq!(ping(&host, "w-0").await, "2", "a pool restarts one for one");
}

#[tokio::test]
async fn a_pools_children_form_one_group_whichever_way_they_were_added() {
    let host = support::host();
    let counter = support::define(&host, "counter");
    // A pool of its own: its children are in the pool's group.
    host.supervise("bare", spec(Strategy::Pool, 10), None).unwrap();
    let first = host.spawn_under(counter.spec("bare-0".into()), Some("bare")).await.unwrap();
    assert_eq!(first.group(), Some("bare"));
    // A manifest's pool starts its children in their component's group:
    // one added later joins that group, not the pool's name.
    host.supervise("workers", spec(Strategy::Pool, 10), None).unwrap();
    let mut started = counter.spec("workers-0".into());
    started.group = Some("counter".into());
    host.spawn_under(started, Some("workers")).await.unwrap();
    let added = host.spawn_under(counter.spec("workers-1".into()), Some("workers")).await.unwrap();
    assert_eq!(added.group(), Some("counter"), "one group for the pool's children");
}

#[tokio::test]
async fn the_root_can_shut_the_host_down_when_it_gives_up() {
    let mut engine = troupe::EngineConfig::new();
    engine.max_instances(50).cache_dir(Some(support::target_dir().join("troupe-test-cache")));
    let root = SupervisorSpec { intensity: 1, backoff: quick_backoff(), ..SupervisorSpec::default() };
    let root_policy = troupe::supervision::RootPolicy::Shutdown;
    let host = Host::new(troupe::HostConfig { engine, root, root_policy, ..Default::default() }).unwrap();
    host.spawn(support::define(&host, "faulty").spec("doomed".into())).await.unwrap();
    let gave_up = tokio::spawn({
        let host = host.clone();
        async move { host.root_gave_up().await }
    });
    ask(&host, "doomed", "panic(\"1\")").await.unwrap_err();
    ask(&host, "doomed", "panic(\"2\")").await.unwrap_err();
    let reason = tokio::time::timeout(Duration::from_secs(10), gave_up).await.unwrap().unwrap();
    assert!(reason.contains("gave up on `doomed`") && reason.contains("intensity"), "{reason}");
}

#[tokio::test]
async fn snapshots_can_be_taken_by_time_instead_of_every_message() {
    let host = support::host();
    let mut entry = support::define(&host, "counter");
    entry.policy.restore = troupe::RestartFrom::Snapshot;
    entry.policy.snapshot_interval = Some(Duration::from_millis(200));
    host.spawn(entry.spec("c".into())).await.unwrap();
    ask(&host, "c", "incr(1)").await.unwrap(); // the first message is past the interval: snapshot
    ask(&host, "c", "incr(1)").await.unwrap(); // within the interval: none
    ask(&host, "c", &format!("incr({})", u64::MAX)).await.unwrap_err();
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "1", "restored from the last timed snapshot");
}
