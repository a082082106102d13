//! Hot swap: state carried across with a migration, nothing lost or
//! duplicated under load, incompatible code refused with the difference,
//! rollback when the new code fails to start or fails on probation, and
//! rolling swaps that stop and roll back at the first failure.

use std::sync::Arc;
use std::time::Duration;

use troupe::actor::{StateTransfer, SwapError, SwapOptions};
use troupe::events::EventKind;
use troupe::{ActorComponent, CallError, FailureKind, Host};

use crate::support::{self, ask};

fn load(host: &Host, guest: &str, version: &str) -> Arc<ActorComponent> {
    host.load("counter", &support::guest(guest), Some(version.into())).unwrap()
}

fn quick() -> SwapOptions {
    SwapOptions { probation: Duration::from_millis(50), ..SwapOptions::default() }
}

async fn counter(host: &Host, address: &str) {
    let component = load(host, "counter", "0.1.0");
    host.spawn(troupe::ActorTemplate::new(component).spec(address.into())).await.unwrap();
}

#[tokio::test]
async fn swap_carries_the_state_across_with_a_layout_migration() {
    let host = support::host();
    counter(&host, "c").await;
    ask(&host, "c", "incr(40)").await.unwrap();
    ask(&host, "c", "incr(2)").await.unwrap();
    let v1_hash = host.lookup("c").unwrap().info().hash;

    let report = host.swap("c", load(&host, "counter-v2", "0.2.0"), quick()).await.unwrap();
    assert_eq!(report.state, StateTransfer::Restored { bytes: 8, from_version: "counter/1".into() });
    assert_eq!((report.old.version.as_deref(), report.new.version.as_deref()), (Some("0.1.0"), Some("0.2.0")));
    assert_eq!(report.old.hash, v1_hash);
    assert_ne!(report.new.hash, v1_hash);

    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "42", "the value crossed over");
    assert_eq!(ask(&host, "c", "increments()").await.unwrap(), "0", "migrated from counter/1: no count yet");
    assert_eq!(ask(&host, "c", "incr(1)").await.unwrap(), "43");
    assert_eq!(ask(&host, "c", "increments()").await.unwrap(), "1", "the new function works");
    let info = host.lookup("c").unwrap().info();
    assert_eq!((info.version.as_deref(), info.hash), (Some("0.2.0"), report.new.hash.clone()));

    // Back to v1 lacks `increments`: refused unless forced...
    let err = host.swap("c", load(&host, "counter", "0.1.0"), quick()).await.unwrap_err();
    assert!(matches!(err, SwapError::Incompatible { .. }), "{err}");
    // ...and forced, v1 cannot read counter/2, so the swap rolls back.
    let forced = SwapOptions { force: true, ..quick() };
    let err = host.swap("c", load(&host, "counter", "0.1.0"), forced).await.unwrap_err();
    let SwapError::Start { failure, .. } = &err else { panic!("expected a start failure, got {err}") };
    assert_eq!(failure.kind, FailureKind::Restore);
    assert!(failure.detail.contains("unknown state version `counter/2`"), "{}", failure.detail);
    assert_eq!(ask(&host, "c", "increments()").await.unwrap(), "1", "v2 kept running with its state");
}

#[tokio::test]
async fn swap_under_load_loses_and_duplicates_nothing() {
    let host = support::host();
    let mut entry = troupe::ActorTemplate::new(load(&host, "counter", "0.1.0"));
    entry.policy.limits.mailbox = 256;
    host.spawn(entry.spec("c".into())).await.unwrap();
    const SENDERS: u64 = 4;
    const EACH: u64 = 2500;
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let host = host.clone();
        senders.push(tokio::spawn(async move {
            let mut sent = 0;
            while sent < EACH {
                match host.tell("c", "incr(1)") {
                    Ok(()) => sent += 1,
                    Err(CallError::MailboxFull(_)) => tokio::task::yield_now().await,
                    Err(e) => panic!("tell failed: {e}"),
                }
            }
        }));
    }
    // An asker sees strictly increasing values across the swap.
    let asker = {
        let host = host.clone();
        tokio::spawn(async move {
            let mut last = 0u64;
            let mut asked = 0;
            while asked < 200 {
                let reply = match host.ask("c", "incr(0)", Duration::from_secs(30)).await {
                    Ok(reply) => reply,
                    Err(CallError::MailboxFull(_)) => {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    Err(e) => panic!("an ask failed: {e}"),
                };
                asked += 1;
                let value: u64 = reply.unwrap().to_wave().unwrap().parse().unwrap();
                assert!(value >= last, "the counter never went back: {value} after {last}");
                last = value;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = host.swap("c", load(&host, "counter-v2", "0.2.0"), quick()).await.unwrap();
    for sender in senders {
        sender.await.unwrap();
    }
    asker.await.unwrap();
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), (SENDERS * EACH).to_string(), "every tell exactly once");
    assert!(matches!(report.state, StateTransfer::Restored { .. }));
    let increments: u64 = ask(&host, "c", "increments()").await.unwrap().parse().unwrap();
    assert!(increments > 0 && increments < SENDERS * EACH + 200, "v2 handled the rest: {increments}");
    let batched = host.lookup("c").unwrap().info().batched;
    assert!(batched > 0, "the tells went into the actor several per call, around the swap too");
}

#[tokio::test]
async fn an_incompatible_protocol_is_refused_with_the_difference() {
    let host = support::host();
    counter(&host, "c").await;
    ask(&host, "c", "incr(7)").await.unwrap();
    let narrow = host.load("narrow", &support::guest("counter-narrow"), None).unwrap();
    let err = host.swap("c", narrow.clone(), quick()).await.unwrap_err();
    let SwapError::Incompatible { diff, .. } = &err else { panic!("expected a refusal, got {err}") };
    let text = err.to_string();
    assert!(text.contains("- example:counter/api@0.1.0.incr(by: u64) -> u64"), "{text}");
    assert!(text.contains("+ example:counter/api@0.1.0.incr(by: u32) -> u64"), "{text}");
    assert!(text.contains("- example:counter/api@0.1.0.reset()    (missing)"), "{text}");
    assert_eq!(diff.changed.len(), 1);
    assert_eq!(ask(&host, "c", "incr(1)").await.unwrap(), "8", "the old version still serves");

    // --force overrides the export check; the narrow code has no restore.
    let forced = SwapOptions { force: true, ..quick() };
    let report = host.swap("c", narrow, forced).await.unwrap();
    assert!(report.forced);
    assert!(matches!(report.state, StateTransfer::FreshInit { .. }), "{:?}", report.state);
    let err = ask(&host, "c", "reset()").await.unwrap_err();
    assert!(err.to_string().contains("unknown function `reset`"), "{err}");
}

#[tokio::test]
async fn a_new_version_that_fails_to_restore_is_rolled_back() {
    let host = support::host();
    counter(&host, "c").await;
    ask(&host, "c", "incr(5)").await.unwrap();
    let err = host.swap("c", load(&host, "counter-v2-broken-restore", "0.2.0"), quick()).await.unwrap_err();
    let SwapError::Start { failure, .. } = &err else { panic!("expected a start failure, got {err}") };
    assert_eq!(failure.kind, FailureKind::Restore);
    assert!(err.to_string().contains("the old code kept running"), "{err}");
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "5");
    assert_eq!(host.lookup("c").unwrap().info().version.as_deref(), Some("0.1.0"));
}

#[tokio::test]
async fn a_new_version_failing_on_probation_is_rolled_back_with_the_original_state() {
    let host = support::host();
    counter(&host, "c").await;
    ask(&host, "c", "incr(5)").await.unwrap();
    let mut events = host.events();
    let swap = tokio::spawn({
        let host = host.clone();
        let broken = load(&host, "counter-v2-broken-incr", "0.2.0");
        async move { host.swap("c", broken, SwapOptions { probation: Duration::from_secs(30), ..quick() }).await }
    });
    // Once the new code is in, a message that makes it fail.
    loop {
        let e = events.recv().await.unwrap();
        if e.address.as_str() == "c" && matches!(e.kind, EventKind::Started { .. }) {
            break;
        }
    }
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "5", "v2 serves with the state");
    let err = ask(&host, "c", "incr(1)").await.unwrap_err();
    assert!(matches!(err, CallError::ActorFailed { .. }), "{err:?}");
    let err = swap.await.unwrap().unwrap_err();
    let SwapError::Probation { failure, .. } = &err else { panic!("expected a probation failure, got {err}") };
    assert_eq!(failure.kind, FailureKind::Panic);
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "5", "the state from the start of the swap");
    assert_eq!(host.lookup("c").unwrap().info().version.as_deref(), Some("0.1.0"));
    assert_eq!(ask(&host, "c", "incr(1)").await.unwrap(), "6", "the old code serves again");
}

async fn group(host: &Host, n: usize) {
    let mut entry = troupe::ActorTemplate::new(load(host, "counter", "0.1.0"));
    entry.policy.config = vec![("start".into(), "10".into())];
    host.define("w", entry.clone());
    for i in 0..n {
        let mut spec = entry.spec(format!("w-{i}").into());
        spec.group = Some("w".into());
        host.spawn(spec).await.unwrap();
    }
}

fn versions(host: &Host, n: usize) -> Vec<Option<String>> {
    (0..n).map(|i| host.lookup(&format!("w-{i}")).unwrap().info().version).collect()
}

#[tokio::test]
async fn a_rolling_swap_goes_one_at_a_time_and_updates_the_entry() {
    let host = support::host();
    group(&host, 3).await;
    let reports = host.swap_target("w", load(&host, "counter-v2", "0.2.0"), quick(), None).await.unwrap();
    let order: Vec<&str> = reports.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(order, ["w-0", "w-1", "w-2"]);
    assert_eq!(versions(&host, 3), vec![Some("0.2.0".to_string()); 3]);
    assert_eq!(ask(&host, "w-1", "get()").await.unwrap(), "10");
    assert_eq!(host.template("w").unwrap().component.version.as_deref(), Some("0.2.0"), "new spawns run v2");
}

#[tokio::test]
async fn a_rolling_swap_with_a_failing_canary_stops_and_rolls_back() {
    let host = support::host();
    group(&host, 3).await;
    let mut events = host.events();
    let swap = tokio::spawn({
        let host = host.clone();
        let broken = load(&host, "counter-v2-broken-incr", "0.2.0");
        async move { host.swap_target("w", broken, quick(), Some(Duration::from_secs(30))).await }
    });
    loop {
        let e = events.recv().await.unwrap();
        if e.address.as_str() == "w-0" && matches!(e.kind, EventKind::Started { .. }) {
            break;
        }
    }
    ask(&host, "w-0", "incr(1)").await.unwrap_err(); // the canary fails
    let err = swap.await.unwrap().unwrap_err();
    let SwapError::RolledBack { at, rolled_back, cause } = &err else { panic!("expected a rollback, got {err}") };
    assert_eq!((at.as_str(), *rolled_back), ("w-0", 0));
    assert!(matches!(**cause, SwapError::Probation { .. }));
    assert_eq!(versions(&host, 3), vec![Some("0.1.0".to_string()); 3], "nothing else was touched");
}

#[tokio::test]
async fn a_failure_later_in_a_rolling_swap_rolls_back_those_already_swapped() {
    let host = support::host();
    group(&host, 3).await;
    ask(&host, "w-0", "incr(1)").await.unwrap();
    let mut events = host.events();
    let swap = tokio::spawn({
        let host = host.clone();
        let broken = load(&host, "counter-v2-broken-incr", "0.2.0");
        let options = SwapOptions { probation: Duration::from_secs(30), ..quick() };
        async move { host.swap_target("w", broken, options, Some(Duration::from_millis(50))).await }
    });
    loop {
        let e = events.recv().await.unwrap();
        if e.address.as_str() == "w-1" && matches!(e.kind, EventKind::Started { .. }) {
            break;
        }
    }
    assert_eq!(host.lookup("w-0").unwrap().info().version.as_deref(), Some("0.2.0"), "the canary passed");
    ask(&host, "w-1", "incr(1)").await.unwrap_err();
    let err = swap.await.unwrap().unwrap_err();
    let SwapError::RolledBack { at, rolled_back, .. } = &err else { panic!("expected a rollback, got {err}") };
    assert_eq!((at.as_str(), *rolled_back), ("w-1", 1));
    assert_eq!(versions(&host, 3), vec![Some("0.1.0".to_string()); 3], "w-0 rolled back too");
    assert_eq!(ask(&host, "w-0", "get()").await.unwrap(), "11", "with its state from the start of the swap");
}

#[tokio::test]
async fn an_actor_without_snapshot_is_swapped_with_a_fresh_init_and_the_report_says_so() {
    let host = support::host();
    support::spawn(&host, "faulty", "f", Default::default()).await;
    ask(&host, "f", "ping()").await.unwrap();
    let again = host.load("faulty", &support::guest("faulty"), Some("2".into())).unwrap();
    let report = host.swap("f", again, quick()).await.unwrap();
    assert_eq!(report.state, StateTransfer::FreshInit { reason: "the old code exports no `snapshot`".into() });
    assert_eq!(ask(&host, "f", "ping()").await.unwrap(), "1");
}

#[tokio::test]
async fn swapping_an_unknown_target_is_an_error() {
    let host = support::host();
    let err = host.swap_target("nobody", load(&host, "counter", "1"), quick(), None).await.unwrap_err();
    assert!(matches!(err, SwapError::UnknownTarget(_)), "{err}");
}

/// A component's own `version` custom section (as `wasm-tools metadata add
/// --version` writes it) names its version when the manifest does not.
#[tokio::test]
async fn a_component_reports_the_version_it_declares() {
    let mut bytes = std::fs::read(support::guest("counter")).unwrap();
    let (name, data) = (b"version", b"7.1.2");
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(data);
    bytes.push(0); // custom section id
    bytes.push(section.len() as u8);
    bytes.extend_from_slice(&section);
    let host = support::host();
    let component = host.load_bytes("counter", "counter+version", bytes, None).unwrap();
    assert_eq!(component.version.as_deref(), Some("7.1.2"));
    let plain = host.load("counter", &support::guest("counter"), None).unwrap();
    assert_eq!(plain.version, None, "no section, no version");
}

/// The hostile guest's `restore` traps on the state it writes itself when
/// configured with `restore = "panic"`: a swap into it must roll back.
#[tokio::test]
async fn a_new_version_trapping_in_restore_is_rolled_back() {
    let host = support::host();
    let mut entry = support::define(&host, "hostile");
    entry.policy.config = vec![("restore".into(), "panic".into())];
    host.spawn(entry.spec("h".into())).await.unwrap();
    let again = host.load("hostile", &support::guest("hostile"), Some("2".into())).unwrap();
    let err = host.swap("h", again, quick()).await.unwrap_err();
    let SwapError::Start { failure, .. } = &err else { panic!("expected a start failure, got {err}") };
    assert_eq!(failure.kind, FailureKind::Restore);
    assert!(failure.detail.contains("panic"), "{}", failure.detail);
    assert_eq!(ask(&host, "h", "ping()").await.unwrap(), r#""pong""#, "the old code serves");
    assert_eq!(host.lookup("h").unwrap().info().version, None, "still the old version");
}

#[tokio::test]
async fn a_swap_of_a_virtual_component_swaps_its_active_keys_and_its_next_activations() {
    let host = support::host();
    let v1 = load(&host, "counter", "0.1.0");
    host.define_virtual("user", troupe::ActorTemplate::new(v1), Some(Duration::from_secs(60))).unwrap();
    ask(&host, "user/1", "incr(7)").await.unwrap();

    let reports = host.swap_target("user", load(&host, "counter-v2", "0.2.0"), quick(), None).await.unwrap();
    assert_eq!(reports.len(), 1, "its one active key");
    assert_eq!(ask(&host, "user/1", "get()").await.unwrap(), "7", "with its state");
    // Only version 2 has `increments`, for the key swapped and the next.
    assert_eq!(ask(&host, "user/1", "increments()").await.unwrap(), "0");
    assert_eq!(ask(&host, "user/2", "increments()").await.unwrap(), "0", "a key activated after the swap");
    assert_eq!(host.lookup("user/2").unwrap().info().version.as_deref(), Some("0.2.0"));
}
