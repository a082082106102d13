//! The effects of a durable actor's messages: a tell it makes leaves only
//! once what the message did is committed (the transactional outbox), and
//! a child it spawns is spawned once however many times the message runs.
//! (Delivery once across `kill -9` is in `durable.rs`: a forwarder and a
//! counter.)

use std::path::Path;
use std::time::{Duration, Instant};

use troupe::HasErrorCode as _;
use troupe::store::faulty::FaultyDisk;

use crate::durable::{host_on_disk, spawn_durable_in};
use crate::support;

/// A host on `disk` with an in-memory counter `b` and a durable forwarder
/// `a` that tells `b` `incr(n)` on every `forward(n)`.
async fn forwarder_host(disk: &FaultyDisk, dir: &Path) -> troupe::Host {
    let host = host_on_disk(disk, dir);
    host.spawn(support::define(&host, "counter").spec("b".into())).await.unwrap();
    spawn_durable_in(&host, "a", "forwarder", &[("to", "b")]).await;
    host
}

/// `b`'s count once it has stayed the same for a while (its tells arrive
/// after `a`'s commits, from another task).
async fn settled_count(host: &troupe::Host) -> String {
    let mut last = support::ask(host, "b", "get()").await.unwrap();
    let mut since = Instant::now();
    while since.elapsed() < Duration::from_millis(300) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = support::ask(host, "b", "get()").await.unwrap();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    last
}

#[tokio::test]
async fn a_durable_actors_tells_leave_only_with_the_commit_of_the_message_that_made_them() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FaultyDisk::new();
    let host = forwarder_host(&disk, dir.path()).await;
    support::ask(&host, "a", "forward(1)").await.unwrap();
    assert_eq!(settled_count(&host).await, "1", "a committed message's tell is delivered");

    // The commit of the next message fails: its tell stays with `a`.
    disk.fail_after(Some(0));
    let refused = support::ask(&host, "a", "forward(10)").await.unwrap_err();
    assert_eq!(refused.code(), troupe::ErrorCode::NotDurable, "{refused}");
    assert_eq!(settled_count(&host).await, "1", "no tell from a message whose effect was not committed");
    let unsaved = |host: &troupe::Host| host.actors().into_iter().find(|a| a.address.as_str() == "a").unwrap().unsaved;
    let why = unsaved(&host).expect("`ps` says the actor's state is not saved");
    assert!(why.contains("check the disk"), "and why: {why}");

    // The next commit that succeeds carries it, with the new one, in order.
    disk.fail_after(None);
    support::ask(&host, "a", "forward(100)").await.unwrap();
    assert_eq!(settled_count(&host).await, "111", "both tells, once each");
    assert_eq!(unsaved(&host), None, "saved again");
    assert_eq!(support::ask(&host, "a", "forwarded()").await.unwrap(), "3");
    host.shutdown().await;
}

#[test]
fn a_child_a_durable_actor_spawns_is_spawned_once_when_a_crash_makes_its_message_run_again() {
    use crate::durable::DurableHost;
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.toml");
    std::fs::write(
        &manifest,
        format!(
            "[components.counter]\npath = {:?}\n\n[actors.slow]\npath = {:?}\n\n[actors.f]\npath = {:?}\n\
             durability = \"durable\"\nconfig = {{ to = \"slow\" }}\n",
            support::guest("counter"),
            support::guest("faulty"),
            support::guest("forwarder"),
        ),
    )
    .unwrap();
    let children = |host: &DurableHost| -> Vec<String> {
        let ps = host.connect().request(json!({ "op": "ps" })).unwrap();
        let rows = ps["actors"].as_array().unwrap().clone();
        rows.iter().filter_map(|a| a["address"].as_str()).filter(|a| a.starts_with("f/")).map(String::from).collect()
    };

    // The message spawns a durable child, then waits on an ask that takes
    // as long as `slow`'s deadline: the host is killed in between, before
    // the message commits.
    let host = DurableHost::start(dir.path(), Some(&manifest));
    host.connect().send("f", "spawn-then-ask(\"slow\", \"spin()\")").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while children(&host).is_empty() {
        assert!(Instant::now() < deadline, "the child was not spawned");
        std::thread::sleep(Duration::from_millis(5));
    }
    let first = children(&host);
    host.kill();

    // The child is recovered, and the message runs again: its spawn finds
    // the child it made the first time.
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let mut control = host.connect();
    control.call("f", "forwarded()").expect("the message ran again and committed");
    assert_eq!(children(&host), first, "one child, the first run's");
}
