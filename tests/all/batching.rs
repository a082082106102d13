//! Batch delivery: a run of tells to one function goes into the guest in
//! one call, and every message keeps the outcome it would have had alone.
//!
//! The tests run on tokio's current-thread runtime: tells sent without an
//! `.await` between them are all queued before the actor's task runs, so
//! the run the actor finds is known.

use troupe::{ActorLimits, FailureKind};

use crate::support::{self, ask, spawn};

#[tokio::test]
async fn queued_tells_to_one_function_are_handled_in_order_several_per_call() {
    let host = support::host();
    let counter = spawn(&host, "counter", "c", ActorLimits::default()).await;
    for by in 1..=40 {
        host.tell("c", &format!("incr({by})")).unwrap();
    }
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), (1..=40u64).sum::<u64>().to_string());
    let info = counter.info();
    assert_eq!(info.handled, 41);
    assert!(info.batched >= 30, "most of the 40 tells went in batches: {info:?}");
}

#[tokio::test]
async fn a_failing_message_in_a_run_fails_alone_and_the_rest_reach_the_next_incarnation() {
    let host = support::host();
    let faulty = spawn(&host, "faulty", "f", ActorLimits::default()).await;
    for _ in 0..3 {
        host.tell("f", "ping()").unwrap();
    }
    host.tell("f", "recurse(100000000)").unwrap();
    for _ in 0..2 {
        host.tell("f", "ping()").unwrap();
    }
    // The three pings before the overflow were handled by the first
    // incarnation; the two after it, and this ask, by the second.
    assert_eq!(ask(&host, "f", "ping()").await.unwrap(), "3");
    let info = faulty.info();
    assert_eq!((info.failures, info.restarts), (1, 1));
    assert_eq!(info.last_failure.map(|f| f.kind), Some(FailureKind::StackOverflow));
    assert_eq!(info.handled, 6);
    assert_eq!(info.batched, 5, "both runs went in one call each");
    assert_eq!(host.dead_letters(), 1, "only the failed message is a dead letter");
}

#[tokio::test]
async fn a_runaway_in_a_run_hits_its_own_deadline_and_the_rest_are_delivered_after_the_restart() {
    let host = support::host();
    let limits = ActorLimits { deadline: std::time::Duration::from_millis(30), ..ActorLimits::default() };
    let faulty = spawn(&host, "faulty", "f", limits).await;
    for message in ["ping()", "ping()", "spin()", "ping()", "ping()"] {
        host.tell("f", message).unwrap();
    }
    assert_eq!(ask(&host, "f", "ping()").await.unwrap(), "3");
    let info = faulty.info();
    assert_eq!(info.last_failure.map(|f| f.kind), Some(FailureKind::Deadline));
    assert_eq!((info.failures, info.handled, info.batched), (1, 5, 4));
}

#[tokio::test]
async fn each_message_of_a_run_has_a_fuel_budget_of_its_own_and_all_fuel_is_counted() {
    let host = support::host();
    let probe =
        spawn(&host, "faulty", "measure", ActorLimits { fuel: Some(50_000_000), ..ActorLimits::default() }).await;
    // The second message's fuel: the first also pays one-time costs.
    ask(&host, "measure", "recurse(2000)").await.unwrap();
    let first = probe.info().fuel_used;
    ask(&host, "measure", "recurse(2000)").await.unwrap();
    let one = probe.info().fuel_used - first;
    assert!(one > 0);
    // Room for one and a half messages: a run sharing one budget would
    // run out of fuel in its second message.
    let limits = ActorLimits { fuel: Some(one * 3 / 2), ..ActorLimits::default() };
    let faulty = spawn(&host, "faulty", "f", limits).await;
    for _ in 0..5 {
        host.tell("f", "recurse(2000)").unwrap();
    }
    assert_eq!(ask(&host, "f", "ping()").await.unwrap(), "1");
    let info = faulty.info();
    assert_eq!((info.failures, info.handled, info.batched), (0, 6, 5));
    assert!(info.fuel_used >= 5 * one, "fuel of every message counted: {} < 5 x {one}", info.fuel_used);
}

#[tokio::test]
async fn a_stop_waits_for_the_message_in_progress_not_for_the_rest_of_its_run() {
    let host = support::host();
    let limits = ActorLimits { deadline: std::time::Duration::from_secs(30), ..ActorLimits::default() };
    let faulty = spawn(&host, "faulty", "f", limits).await;
    // Each message keeps the CPU busy for a good while.
    for _ in 0..5 {
        host.tell("f", "work(40)").unwrap();
    }
    let stopper = {
        let faulty = faulty.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            faulty.stop();
        })
    };
    faulty.stopped().await;
    stopper.join().unwrap();
    let info = faulty.info();
    assert!(info.handled < 5, "the stop ended the run: {info:?}");
    assert_eq!(
        host.dead_letters(),
        5 - info.handled,
        "the rest are dead letters, as queued messages of a stopped actor"
    );
}
