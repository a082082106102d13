//! Typed calls between actors through imported WIT interfaces: bindings,
//! their type checks, failure semantics, cycles, and routing over groups.

use std::collections::BTreeSet;
use std::time::Duration;

use troupe::actor::binding::{BindError, BindingSpec, Router};
use troupe::supervision::{Backoff, SupervisorSpec};
use troupe::{ActorLimits, CallError, FailureKind, Host};

use crate::support::{self, ask};

const NODE: &str = "example:chain/node";
const COUNTER: &str = "example:counter/api";

/// Defines the chain node component as `node` and starts `leaves` as
/// leaves and `inner` as inner nodes.
async fn nodes(host: &Host, inner: &[&str], leaves: &[&str]) {
    let entry = support::define(host, "chain-node");
    host.define("node", entry.clone());
    for name in inner {
        host.spawn(entry.spec((*name).into())).await.unwrap();
    }
    for name in leaves {
        let mut spec = entry.spec((*name).into());
        spec.policy.config = vec![("leaf".into(), "true".into())];
        host.spawn(spec).await.unwrap();
    }
}

fn failure_of(err: CallError) -> troupe::Failure {
    match err {
        CallError::ActorFailed { failure, .. } => failure,
        other => panic!("expected the caller to fail, got {other:?}"),
    }
}

#[tokio::test]
async fn a_three_actor_chain_returns_typed_records_and_variants() {
    let host = support::host();
    nodes(&host, &["a", "b"], &["c"]).await;
    host.bind("a", NODE, BindingSpec::actor("b")).unwrap();
    host.bind("b", NODE, BindingSpec::actor("c")).unwrap();
    assert_eq!(
        ask(&host, "a", r#"put("k", 7)"#).await.unwrap(),
        r#"stored({key: "k", value: 7, path: ["a", "b", "c"]})"#
    );
    assert_eq!(ask(&host, "a", r#"put("bad-k", 7)"#).await.unwrap(), r#"rejected("`c` rejects `bad-k`")"#);
}

#[tokio::test]
async fn tells_through_an_import_arrive_in_per_sender_order() {
    let host = support::host();
    nodes(&host, &["a"], &["b"]).await;
    host.bind("a", NODE, BindingSpec::actor("b")).unwrap();
    for i in 0..50 {
        ask(&host, "a", &format!("pass-note(\"{i}\")")).await.unwrap();
    }
    let expected: Vec<String> = (0..50).map(|i| format!("\"{i}\"")).collect();
    assert_eq!(ask(&host, "b", "notes()").await.unwrap(), format!("[{}]", expected.join(", ")));
}

#[tokio::test]
async fn a_type_mismatch_is_refused_at_bind_time_with_both_signatures() {
    let host = support::host();
    support::spawn(&host, "tally", "t", ActorLimits::default()).await;
    support::spawn(&host, "counter-narrow", "narrow", ActorLimits::default()).await;
    support::spawn(&host, "faulty", "f", ActorLimits::default()).await;
    let err = host.bind("t", COUNTER, BindingSpec::actor("narrow")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot bind `example:counter/api@0.1.0` to `narrow`: `incr` is imported as `incr(by: u64) -> u64` \
         but `narrow` exports `incr(by: u32) -> u64`"
    );
    let err = host.bind("t", COUNTER, BindingSpec::actor("f")).unwrap_err();
    assert!(matches!(&err, BindError::Mismatch { found, .. } if found == "does not export it"), "{err}");
    let err = host.bind("f", COUNTER, BindingSpec::actor("t")).unwrap_err();
    assert!(matches!(err, BindError::NotImported { .. }), "{err}");
    let err = host.bind("t", COUNTER, BindingSpec::actor("nobody")).unwrap_err();
    assert!(matches!(err, BindError::UnknownTarget { .. }), "{err}");
}

#[tokio::test]
async fn an_unbound_import_fails_the_callers_message_with_a_clear_reason() {
    let host = support::host();
    support::spawn(&host, "tally", "t", ActorLimits::default()).await;
    let failure = failure_of(ask(&host, "t", "add(1)").await.unwrap_err());
    assert_eq!(failure.kind, FailureKind::HostCall);
    assert!(
        failure.detail.contains("call to `example:counter/api.incr`: the import is not bound"),
        "{}",
        failure.detail
    );
}

#[tokio::test]
async fn an_ask_timeout_and_a_target_failure_fail_the_caller() {
    let host = support::host();
    nodes(&host, &["a"], &[]).await;
    let mut leaf = host.template("node").unwrap().spec("leaf".into());
    leaf.policy.config = vec![("leaf".into(), "true".into())];
    leaf.policy.limits.deadline = Duration::from_millis(500);
    host.spawn(leaf).await.unwrap();
    let mut binding = BindingSpec::actor("leaf");
    binding.timeout = Duration::from_millis(200);
    host.bind("a", NODE, binding).unwrap();

    let failure = failure_of(ask(&host, "a", &format!("put(\"k\", {})", u64::MAX)).await.unwrap_err());
    assert_eq!(failure.kind, FailureKind::HostCall);
    assert!(failure.detail.contains("`leaf`: no reply within 200 ms"), "{}", failure.detail);

    // Let the leaf's loop hit its deadline, then make it panic.
    let leaf = host.lookup("leaf").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while leaf.info().failures == 0 {
        assert!(std::time::Instant::now() < deadline, "the leaf's loop was never stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failure = failure_of(ask(&host, "a", r#"put("k", 0)"#).await.unwrap_err());
    assert!(failure.detail.contains("`leaf` failed handling the message: panic"), "{}", failure.detail);
    assert_eq!(
        ask(&host, "a", r#"put("k", 1)"#).await.unwrap(),
        r#"stored({key: "k", value: 1, path: ["a", "leaf"]})"#
    );
}

#[tokio::test]
async fn an_a_b_a_cycle_fails_fast_instead_of_timing_out() {
    let host = support::host();
    nodes(&host, &["a", "b"], &[]).await;
    host.bind("a", NODE, BindingSpec::actor("b")).unwrap();
    host.bind("b", NODE, BindingSpec::actor("a")).unwrap();
    let started = std::time::Instant::now();
    let failure = failure_of(ask(&host, "a", r#"put("k", 1)"#).await.unwrap_err());
    assert!(failure.detail.contains("ask cycle: a -> b -> a"), "{}", failure.detail);
    assert!(started.elapsed() < troupe::DEFAULT_ASK_TIMEOUT, "it did not wait for the timeout");
}

/// Counters `g-0`..`g-{n-1}` in group `g`, and a tally `t` bound to the
/// group with `router`.
async fn counter_group(host: &Host, n: usize, router: Router) {
    let entry = support::define(host, "counter");
    host.define("counter", entry.clone());
    for i in 0..n {
        let mut spec = entry.spec(format!("g-{i}").into());
        spec.group = Some("g".into());
        host.spawn(spec).await.unwrap();
    }
    support::spawn(host, "tally", "t", ActorLimits::default()).await;
    host.bind("t", COUNTER, BindingSpec::group("g", router)).unwrap();
}

async fn value(host: &Host, counter: &str) -> u64 {
    ask(host, counter, "get()").await.unwrap().parse().unwrap()
}

#[tokio::test]
async fn round_robin_takes_members_in_turn() {
    let host = support::host();
    counter_group(&host, 3, Router::RoundRobin).await;
    assert_eq!(ask(&host, "t", "spread(6, 1)").await.unwrap(), "[1, 1, 1, 2, 2, 2]");
}

#[tokio::test]
async fn random_reaches_every_member() {
    let host = support::host();
    counter_group(&host, 3, Router::Random).await;
    ask(&host, "t", "spread(300, 1)").await.unwrap();
    let values = [value(&host, "g-0").await, value(&host, "g-1").await, value(&host, "g-2").await];
    assert_eq!(values.iter().sum::<u64>(), 300);
    assert!(values.iter().all(|v| *v > 30), "each member got a fair share: {values:?}");
}

#[tokio::test]
async fn least_loaded_avoids_a_member_with_a_backlog() {
    let host = support::host();
    let slow = SupervisorSpec {
        intensity: 10,
        backoff: Backoff {
            min: Duration::from_secs(2),
            max: Duration::from_secs(2),
            jitter: 0.0,
            ..Backoff::default()
        },
        ..SupervisorSpec::default()
    };
    host.supervise("slow", slow, None).unwrap();
    let entry = support::define(&host, "counter");
    for i in 0..2 {
        let mut spec = entry.spec(format!("g-{i}").into());
        spec.group = Some("g".into());
        host.spawn_under(spec, Some("slow")).await.unwrap();
    }
    support::spawn(&host, "tally", "t", ActorLimits::default()).await;
    host.bind("t", COUNTER, BindingSpec::group("g", Router::LeastLoaded)).unwrap();
    // g-0 fails twice (overflow); the second restart waits 2 s, with a
    // backlog queued meanwhile.
    for _ in 0..2 {
        ask(&host, "g-0", &format!("incr({})", u64::MAX)).await.unwrap();
        ask(&host, "g-0", "incr(1)").await.unwrap_err();
    }
    for _ in 0..3 {
        host.tell("g-0", "incr(100)").unwrap();
    }
    assert_eq!(ask(&host, "t", "spread(4, 1)").await.unwrap(), "[1, 2, 3, 4]", "all to g-1");
    assert_eq!(value(&host, "g-1").await, 4);
}

#[tokio::test]
async fn broadcast_tells_every_member_and_refuses_asks() {
    let host = support::host();
    counter_group(&host, 3, Router::Broadcast).await;
    for i in 0..3 {
        host.tell(&format!("g-{i}"), "incr(9)").unwrap();
    }
    ask(&host, "t", "reset-all()").await.unwrap();
    for i in 0..3 {
        assert_eq!(value(&host, &format!("g-{i}")).await, 0, "g-{i} was reset");
    }
    let failure = failure_of(ask(&host, "t", "add(1)").await.unwrap_err());
    assert!(failure.detail.contains("a broadcast binding carries tells only"), "{}", failure.detail);
}

/// Which leaf stores each key, as the path of a `put` through `a` says.
async fn owners(host: &Host, keys: usize) -> Vec<String> {
    let mut owners = Vec::new();
    for k in 0..keys {
        let reply = ask(host, "a", &format!("put(\"key-{k}\", 1)")).await.unwrap();
        let leaf = reply.rsplit('"').nth(1).expect("a path").to_string();
        owners.push(leaf);
    }
    owners
}

#[tokio::test]
async fn consistent_hashing_keeps_keys_in_place_and_moves_a_bounded_share_on_resize() {
    let host = support::host();
    nodes(&host, &["a"], &[]).await;
    let leaf = |i: usize| {
        let mut spec = host.template("node").unwrap().spec(format!("leaf-{i}").into());
        spec.policy.config = vec![("leaf".into(), "true".into())];
        spec.group = Some("leaves".into());
        spec
    };
    for i in 0..4 {
        host.spawn(leaf(i)).await.unwrap();
    }
    host.bind("a", NODE, BindingSpec::group("leaves", Router::HashOn("key".into()))).unwrap();
    let before = owners(&host, 200).await;
    assert_eq!(owners(&host, 200).await, before, "the same key reaches the same member");
    assert_eq!(before.iter().collect::<BTreeSet<_>>().len(), 4, "keys spread over all members");

    host.spawn(leaf(4)).await.unwrap(); // the group grows at run time
    let after = owners(&host, 200).await;
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    assert!((10..=80).contains(&moved), "about 1/5 of 200 keys should move, {moved} did");
    assert!(before.iter().zip(&after).all(|(b, a)| b == a || a == "leaf-4"), "keys move only to the newcomer");

    host.stop("leaf-4").await.unwrap(); // and shrinks
    assert_eq!(owners(&host, 200).await, before, "back to the old placement");
}

#[tokio::test]
async fn a_guest_rebinds_at_run_time_after_a_spawn() {
    let host = support::host();
    let counter = support::define(&host, "counter");
    host.define("counter", counter);
    support::spawn(&host, "tally", "t", ActorLimits::default()).await;
    let child = ask(&host, "t", "adopt-counter()").await.unwrap();
    assert!(child.starts_with("ok(\"t/counter-"), "{child}");
    assert_eq!(ask(&host, "t", "add(3)").await.unwrap(), "3");
    assert_eq!(ask(&host, "t", "add(4)").await.unwrap(), "7");

    nodes(&host, &["head"], &[]).await;
    let grown = ask(&host, "head", "grow()").await.unwrap();
    let leaf = grown.trim_start_matches("ok(\"").trim_end_matches("\")");
    assert_eq!(
        ask(&host, "head", r#"put("x", 1)"#).await.unwrap(),
        format!(r#"stored({{key: "x", value: 1, path: ["head", "{leaf}"]}})"#)
    );
    // A bad binding is refused to the guest as a value.
    let reply = ask(&host, "t", "use-counter(\"nobody\")").await.unwrap();
    assert!(reply.starts_with("err(") && reply.contains("nobody"), "{reply}");
}

#[tokio::test]
async fn manifest_bindings_bind_imports_with_routers_and_timeouts() {
    let node = support::guest("chain-node").display().to_string();
    let text = format!(
        r#"
[actors.a]
path = {node:?}
bindings = {{ "example:chain/node" = {{ group = "leaf", router = {{ hash-on = "key" }}, timeout-ms = 2000 }} }}

[actors.leaf]
path = {node:?}
instances = 2
config = {{ leaf = "true" }}
"#
    );
    let manifest = troupe::manifest::Manifest::parse(std::path::Path::new("/virtual/m.toml"), &text).unwrap();
    let host = support::host();
    manifest.apply(&host).await.unwrap();
    let reply = ask(&host, "a", r#"put("k", 5)"#).await.unwrap();
    assert!(reply.starts_with(r#"stored({key: "k", value: 5, path: ["a", "leaf-"#), "{reply}");
    let spec = &host.lookup("a").unwrap().bindings()[0].1;
    assert_eq!(spec.timeout, Duration::from_secs(2));

    let bad = text.replace(r#"group = "leaf""#, r#"group = "leaf", actor = "x""#);
    let err = troupe::manifest::Manifest::parse(std::path::Path::new("/virtual/m.toml"), &bad).unwrap_err();
    assert!(err.message.contains("give exactly one of `actor` and `group`"), "{err}");
    assert_eq!(err.key.as_deref(), Some("actors.a.bindings.example:chain/node"));

    let old = text.replace("bindings = {{", "links = {{").replace("bindings = {", "links = {");
    let err = troupe::manifest::Manifest::parse(std::path::Path::new("/virtual/m.toml"), &old).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("actors.a.links"));
    assert!(err.message.contains("now called `bindings`"), "{err}");
}
