//! The `troupe:actor/host` API as guests use it: own address, ask and tell
//! between guests (with cycle detection and timeouts), timers, spawn and
//! stop rules, quotas.

use std::time::Duration;

use troupe::{ActorLimits, Host};

use crate::support::{self, ask, spawn};

async fn probe(host: &Host, address: &str) {
    spawn(host, "probe", address, ActorLimits::default()).await;
}

fn relay(to: &str, message: &str, timeout_ms: u32) -> String {
    format!("relay({to:?}, {message:?}, {timeout_ms})")
}

#[tokio::test]
async fn a_guest_knows_its_own_address() {
    let host = support::host();
    probe(&host, "p/1").await;
    assert_eq!(ask(&host, "p/1", "whoami()").await.unwrap(), r#""p/1""#);
}

#[tokio::test]
async fn a_guest_asks_another_and_gets_the_typed_reply() {
    let host = support::host();
    probe(&host, "p").await;
    spawn(&host, "counter", "counter", ActorLimits::default()).await;
    assert_eq!(ask(&host, "p", &relay("counter", "incr(5)", 0)).await.unwrap(), r#"ok("5")"#);
    let reply = ask(&host, "p", &relay("counter", "incr(\"five\")", 0)).await.unwrap();
    assert!(reply.contains("ill-typed message for `incr(by: u64) -> u64`"), "{reply}");
    let reply = ask(&host, "p", &relay("nobody", "get()", 0)).await.unwrap();
    assert!(reply.contains("no actor at `nobody`"), "{reply}");
}

#[tokio::test]
async fn an_ask_cycle_fails_fast_instead_of_timing_out() {
    let host = support::host();
    probe(&host, "a").await;
    probe(&host, "b").await;
    // a asks b to ask a: b's ask would wait on a, which waits on b.
    let inner = relay("a", "whoami()", 60_000);
    let reply = ask(&host, "a", &relay("b", &inner, 60_000)).await.unwrap();
    assert!(reply.contains("ask cycle: a -> b -> a"), "{reply}");
    // Asking yourself is the shortest cycle.
    let reply = ask(&host, "a", &relay("a", "whoami()", 60_000)).await.unwrap();
    assert!(reply.contains("ask cycle: a -> a"), "{reply}");
}

#[tokio::test]
async fn an_ask_times_out_and_a_failing_target_is_reported_to_the_asker() {
    let host = support::host();
    probe(&host, "p").await;
    let limits = ActorLimits { deadline: Duration::from_millis(300), ..ActorLimits::default() };
    spawn(&host, "faulty", "faulty", limits).await;
    let reply = ask(&host, "p", &relay("faulty", "spin()", 100)).await.unwrap();
    assert!(reply.contains("no reply in time"), "{reply}");
    let reply = ask(&host, "p", &relay("faulty", "panic(\"oops\")", 10_000)).await.unwrap();
    assert!(reply.contains("the receiver failed") && reply.contains("panic"), "{reply}");
}

#[tokio::test]
async fn tells_from_one_sender_arrive_in_order() {
    let host = support::host();
    support::define(&host, "chat-member");
    let mut entry = host.template("chat-member").unwrap();
    entry.policy.config = vec![("name".into(), "bob".into()), ("room".into(), "nowhere".into())];
    host.spawn(entry.spec("bob".into())).await.unwrap();
    probe(&host, "p").await;
    for i in 0..50 {
        let message = format!("deliver(\"p\", \"{i}\")");
        assert_eq!(ask(&host, "p", &format!("forward(\"bob\", {message:?})")).await.unwrap(), "ok");
    }
    let inbox = ask(&host, "bob", "inbox()").await.unwrap();
    let expected: Vec<String> = (0..50).map(|i| format!("{{sender: \"p\", text: \"{i}\"}}")).collect();
    assert_eq!(inbox, format!("[{}]", expected.join(", ")));
}

#[tokio::test]
async fn timers_deliver_later_and_can_be_cancelled() {
    let host = support::host();
    probe(&host, "p").await;
    assert!(ask(&host, "p", "tick-after(10)").await.unwrap().starts_with("ok("));
    let cancelled = ask(&host, "p", "tick-after(60000)").await.unwrap();
    let id = cancelled.trim_start_matches("ok(").trim_end_matches(')');
    assert_eq!(ask(&host, "p", &format!("cancel({id})")).await.unwrap(), "true");
    assert_eq!(ask(&host, "p", &format!("cancel({id})")).await.unwrap(), "false", "already cancelled");
    tokio::time::timeout(Duration::from_secs(10), async {
        while ask(&host, "p", "ticks()").await.unwrap() != "1" {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the timer fires");
}

#[tokio::test]
async fn timer_and_child_quotas_hold() {
    let host = support::host();
    support::define(&host, "counter");
    let limits = ActorLimits { max_timers: 2, max_children: 1, ..ActorLimits::default() };
    spawn(&host, "probe", "p", limits).await;
    assert!(ask(&host, "p", "tick-after(60000)").await.unwrap().starts_with("ok("));
    assert!(ask(&host, "p", "tick-after(60000)").await.unwrap().starts_with("ok("));
    let reply = ask(&host, "p", "tick-after(60000)").await.unwrap();
    assert!(reply.contains("quota exceeded") && reply.contains("max-timers"), "{reply}");

    assert_eq!(ask(&host, "p", "spawn-child(\"counter\", some(\"kid\"))").await.unwrap(), r#"ok("kid")"#);
    let reply = ask(&host, "p", "spawn-child(\"counter\", none)").await.unwrap();
    assert!(reply.contains("max-children"), "{reply}");
}

#[tokio::test]
async fn a_guest_may_stop_only_itself_and_its_descendants() {
    let host = support::host();
    support::define(&host, "counter");
    probe(&host, "p").await;
    spawn(&host, "counter", "bystander", ActorLimits::default()).await;
    let reply = ask(&host, "p", "stop-actor(\"bystander\")").await.unwrap();
    assert!(reply.contains("not this actor or one of its descendants"), "{reply}");
    assert!(host.lookup("bystander").is_ok());

    let child = ask(&host, "p", "spawn-child(\"counter\", none)").await.unwrap();
    assert!(child.starts_with("ok(\"p/counter-"), "children are named under their parent: {child}");
    let child = child.trim_start_matches("ok(\"").trim_end_matches("\")").to_string();
    let kid = host.lookup(&child).unwrap();
    assert_eq!(ask(&host, "p", &format!("stop-actor({child:?})")).await.unwrap(), "ok");
    tokio::time::timeout(Duration::from_secs(5), kid.stopped()).await.unwrap();

    // Stopping itself is a normal exit: a transient actor is not restarted.
    let mut entry = host.template("probe").unwrap();
    entry.policy.restart = troupe::supervision::RestartType::Transient;
    let me = host.spawn(entry.spec("q".into())).await.unwrap();
    assert_eq!(ask(&host, "q", "stop-actor(\"q\")").await.unwrap(), "ok");
    tokio::time::timeout(Duration::from_secs(5), me.stopped()).await.unwrap();
    assert_eq!(me.status(), troupe::ActorStatus::Stopped);
}
