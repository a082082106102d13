//! Hibernation (`hibernate-after-ms`): an idle actor drops its instance and
//! keeps its snapshot; the next message wakes it with its state, and
//! nothing queued meanwhile is lost.

use std::time::Duration;

use tokio::sync::broadcast;
use troupe::actor::{StateTransfer, SwapOptions};
use troupe::events::{Event, EventKind};
use troupe::{ActorStatus, CallError, EngineConfig, FailureKind, Host, HostConfig, SpawnError};

use crate::support::{self, ask};

const IDLE: Duration = Duration::from_millis(50);

/// Spawns example guest `name` at `address`, hibernating after [`IDLE`].
async fn sleepy(host: &Host, name: &str, address: &str) -> Result<troupe::ActorRef, SpawnError> {
    let mut entry = support::define(host, name);
    entry.policy.hibernate_after = Some(IDLE);
    host.spawn(entry.spec(address.into())).await
}

/// A host with `slots` instance slots that runs up to `actors` actors.
fn pooled_host(slots: u32, actors: usize) -> Host {
    let mut engine = EngineConfig::new();
    engine.max_instances(slots).cache_dir(Some(support::target_dir().join("troupe-test-cache")));
    Host::new(HostConfig { engine, max_actors: Some(actors), ..Default::default() }).unwrap()
}

/// Waits for `address`'s next event matching `what`; panics after 10 s.
async fn next_event(events: &mut broadcast::Receiver<Event>, address: &str, what: fn(&EventKind) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) if event.address.as_str() == address && what(&event.kind) => return event,
            Ok(Ok(_)) => {}
            other => panic!("no matching event for `{address}`: {other:?}"),
        }
    }
}

fn hibernated(k: &EventKind) -> bool {
    matches!(k, EventKind::Hibernated { .. })
}

fn woke(k: &EventKind) -> bool {
    matches!(k, EventKind::Woke { .. })
}

#[tokio::test]
async fn an_idle_actor_hibernates_and_the_next_message_wakes_it_with_its_state() {
    let host = support::host();
    let mut events = host.events();
    let counter = sleepy(&host, "counter", "c").await.unwrap();
    assert_eq!(ask(&host, "c", "incr(41)").await.unwrap(), "41");

    let event = next_event(&mut events, "c", hibernated).await;
    assert_eq!(event.kind, EventKind::Hibernated { bytes: 8 }, "the counter's snapshot is 8 bytes");
    assert_eq!(counter.status(), ActorStatus::Hibernating);
    assert_eq!(counter.info().memory, 0, "a hibernating actor holds no linear memory");

    assert_eq!(ask(&host, "c", "incr(1)").await.unwrap(), "42", "woken with its state");
    next_event(&mut events, "c", woke).await;
    assert_eq!(counter.status(), ActorStatus::Running);
    let info = counter.info();
    assert_eq!((info.failures, info.restarts), (0, 0), "a wake-up is neither a failure nor a restart");
}

#[tokio::test]
async fn messages_sent_to_a_hibernating_actor_are_all_handled_in_order() {
    let host = support::host();
    let mut events = host.events();
    let counter = sleepy(&host, "counter", "c").await.unwrap();
    next_event(&mut events, "c", hibernated).await;
    for by in 1..=100 {
        counter.tell(counter.parse(&format!("incr({by})")).unwrap(), None).unwrap();
    }
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "5050");
    assert!(counter.info().batched >= 90, "the woken actor took its queue several per call: {:?}", counter.info());
}

#[tokio::test]
async fn hibernating_actors_give_their_instance_slots_back() {
    // Two instance slots, four actors: only possible if sleepers hold none.
    let host = pooled_host(2, 4);
    let mut events = host.events();
    for name in ["a", "b", "c", "d"] {
        sleepy(&host, "counter", name).await.unwrap();
        next_event(&mut events, name, hibernated).await;
    }
    for name in ["a", "b", "c", "d"] {
        assert_eq!(ask(&host, name, "incr(1)").await.unwrap(), "1");
        next_event(&mut events, name, hibernated).await;
    }
}

#[tokio::test]
async fn a_wake_up_without_a_free_instance_slot_refuses_the_message_and_keeps_the_state() {
    let host = pooled_host(1, 2);
    let mut events = host.events();
    let sleeper = sleepy(&host, "counter", "sleeper").await.unwrap();
    assert_eq!(ask(&host, "sleeper", "incr(7)").await.unwrap(), "7");
    next_event(&mut events, "sleeper", hibernated).await;
    // An actor that never sleeps takes the only slot.
    let hog = support::define(&host, "counter");
    host.spawn(hog.spec("hog".into())).await.unwrap();

    let err = ask(&host, "sleeper", "incr(1)").await.unwrap_err();
    let CallError::ActorFailed { failure, .. } = &err else { panic!("expected a refusal, got {err}") };
    assert_eq!(failure.kind, FailureKind::Instantiate, "{err}");
    assert!(failure.detail.contains("--max-instances"), "the error names the fix: {err}");
    assert_eq!(sleeper.status(), ActorStatus::Hibernating, "it sleeps on");
    assert_eq!(sleeper.info().restarts, 0, "the host's shortage is not the actor's failure");

    host.stop("hog").await.unwrap();
    assert_eq!(ask(&host, "sleeper", "incr(1)").await.unwrap(), "8", "its state survived");
}

#[tokio::test]
async fn hibernation_needs_the_persistence_exports() {
    let host = support::host();
    let err = sleepy(&host, "faulty", "f").await.unwrap_err();
    let SpawnError::Start { failure, .. } = &err else { panic!("expected a start failure, got {err}") };
    assert_eq!(failure.kind, FailureKind::Instantiate);
    assert!(failure.detail.contains("troupe:actor/persistence"), "{err}");
    assert!(failure.detail.contains("hibernate-after-ms"), "{err}");
    assert!(host.lookup("f").is_err(), "the address is free again");
}

#[tokio::test]
async fn a_wake_up_that_fails_fails_the_waking_message_and_the_supervisor_restarts_the_actor() {
    let host = support::host();
    let mut events = host.events();
    // This build snapshots fine but cannot restore.
    sleepy(&host, "counter-v2-broken-restore", "c").await.unwrap();
    assert_eq!(ask(&host, "c", "incr(5)").await.unwrap(), "5");
    next_event(&mut events, "c", hibernated).await;

    let err = ask(&host, "c", "incr(1)").await.unwrap_err();
    let CallError::ActorFailed { failure, .. } = &err else { panic!("expected the wake-up failure, got {err}") };
    assert_eq!(failure.kind, FailureKind::Restore);
    // Restarted with `init` (the default restore policy): the state is gone,
    // the actor serves again.
    assert_eq!(ask(&host, "c", "incr(1)").await.unwrap(), "1");
    assert_eq!(host.lookup("c").unwrap().info().restarts, 1);
}

#[tokio::test]
async fn a_sibling_restart_while_hibernating_restores_the_state_it_slept_with() {
    use troupe::supervision::{Strategy, SupervisorSpec};
    let host = support::host();
    let mut events = host.events();
    let team = SupervisorSpec { strategy: Strategy::OneForAll, ..SupervisorSpec::default() };
    host.supervise("team", team, None).unwrap();
    let mut counter = support::define(&host, "counter");
    counter.policy.hibernate_after = Some(IDLE);
    counter.policy.restore = troupe::RestartFrom::Snapshot;
    host.spawn_under(counter.spec("c".into()), Some("team")).await.unwrap();
    let faulty = support::define(&host, "faulty");
    host.spawn_under(faulty.spec("f".into()), Some("team")).await.unwrap();
    assert_eq!(ask(&host, "c", "incr(7)").await.unwrap(), "7");
    next_event(&mut events, "c", hibernated).await;

    // One for all: the sibling's failure restarts the sleeping counter too.
    ask(&host, "f", r#"panic("boom")"#).await.unwrap_err();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while host.lookup("c").unwrap().info().restarts == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the counter was not restarted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "7", "restored from what it slept with");
}

#[tokio::test]
async fn stopping_a_hibernating_actor_wakes_it_to_stop_in_order_and_releases_its_address() {
    let host = support::host();
    let mut events = host.events();
    let counter = sleepy(&host, "counter", "c").await.unwrap();
    next_event(&mut events, "c", hibernated).await;
    host.stop("c").await.unwrap();
    next_event(&mut events, "c", woke).await;
    counter.stopped().await;
    assert_eq!(counter.status(), ActorStatus::Stopped);
    assert!(matches!(host.lookup("c"), Err(CallError::UnknownAddress(_))));
}

#[tokio::test]
async fn a_hot_swap_wakes_a_hibernating_actor_and_carries_its_state_to_the_new_code() {
    let host = support::host();
    let mut events = host.events();
    sleepy(&host, "counter", "c").await.unwrap();
    assert_eq!(ask(&host, "c", "incr(42)").await.unwrap(), "42");
    next_event(&mut events, "c", hibernated).await;

    let v2 = host.load("counter", &support::guest("counter-v2"), Some("0.2.0".into())).unwrap();
    let options = SwapOptions { probation: Duration::from_millis(20), ..SwapOptions::default() };
    let report = host.swap("c", v2, options).await.unwrap();
    assert_eq!(report.state, StateTransfer::Restored { bytes: 8, from_version: "counter/1".into() });
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "42");
    assert_eq!(ask(&host, "c", "increments()").await.unwrap(), "0", "the v2 protocol answers");
    // It sleeps and wakes as the new code.
    next_event(&mut events, "c", hibernated).await;
    assert_eq!(ask(&host, "c", "incr(1)").await.unwrap(), "43");
    assert_eq!(ask(&host, "c", "increments()").await.unwrap(), "1");
}

#[tokio::test]
async fn a_full_instance_pool_puts_the_longest_idle_actor_to_sleep_to_make_room() {
    // One slot, and actors that would stay awake for a minute.
    let host = pooled_host(1, 3);
    let mut entry = support::define(&host, "counter");
    entry.policy.hibernate_after = Some(Duration::from_secs(60));
    let a = host.spawn(entry.spec("a".into())).await.unwrap();
    assert_eq!(ask(&host, "a", "incr(1)").await.unwrap(), "1");

    let b = host.spawn(entry.spec("b".into())).await.unwrap();
    assert_eq!(a.status(), ActorStatus::Hibernating, "a made room for b");
    assert_eq!(ask(&host, "b", "incr(10)").await.unwrap(), "10");

    assert_eq!(ask(&host, "a", "incr(1)").await.unwrap(), "2", "a woke with its state, b made room");
    assert_eq!(b.status(), ActorStatus::Hibernating);
    assert_eq!(ask(&host, "b", "get()").await.unwrap(), "10");

    // An actor that cannot hibernate is never put to sleep.
    let hog = support::define(&host, "faulty");
    host.spawn(hog.spec("hog".into())).await.unwrap();
    let err = ask(&host, "a", "get()").await.unwrap_err();
    assert!(err.to_string().contains("--max-instances"), "{err}");
}

#[tokio::test]
async fn many_more_actors_than_instance_slots_all_start_and_answer_with_their_state() {
    // Eight slots for 300 actors that would stay awake for a minute: every
    // spawn past the eighth, and every wake-up, puts the longest-idle one to
    // sleep.
    let host = pooled_host(8, 300);
    let mut entry = support::define(&host, "counter");
    entry.policy.hibernate_after = Some(Duration::from_secs(60));
    for i in 0..300 {
        host.spawn(entry.spec(format!("c-{i}").into())).await.unwrap();
        assert_eq!(ask(&host, &format!("c-{i}"), &format!("incr({i})")).await.unwrap(), i.to_string());
    }
    for i in (0..300).rev() {
        assert_eq!(ask(&host, &format!("c-{i}"), "get()").await.unwrap(), i.to_string());
    }
}
