//! Virtual actors, against the real binary: every key of a `[virtual]`
//! component is an address that exists, activated by its first message,
//! once however many messages race to it, with its key in its
//! configuration, and, durable by default, with its state after `kill -9`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::durable::DurableHost;
use crate::durable_journal::next_event;
use crate::support;

/// A manifest declaring the virtual component `user` (the counter, or
/// `guest`), with `extra` settings.
fn manifest(dir: &Path, guest: &str, extra: &str) -> PathBuf {
    let path = dir.join("app.toml");
    let component = support::guest(guest);
    std::fs::write(&path, format!("[virtual.user]\npath = {component:?}\n{extra}\n")).unwrap();
    path
}

/// The active keys of `user`, from `ps`.
fn active(host: &DurableHost) -> Vec<String> {
    let ps = host.connect().request(json!({ "op": "ps" })).unwrap();
    let rows = ps["actors"].as_array().unwrap().clone();
    let mut keys: Vec<String> = rows
        .iter()
        .filter_map(|a| a["address"].as_str())
        .filter(|a| a.starts_with("user/"))
        .map(String::from)
        .collect();
    keys.sort();
    keys
}

/// How many keys of `user` are active and how many passivated, from
/// `ps --virtual user`, and how many activations it made.
fn key_counts(control: &mut crate::durable::Control) -> (u64, u64, u64) {
    counts_of(control, "user")
}

/// [`key_counts`] of the virtual component `name`.
fn counts_of(control: &mut crate::durable::Control, name: &str) -> (u64, u64, u64) {
    let ps = control.request(json!({ "op": "ps", "virtual": name })).unwrap();
    let count = |field: &Value| field.as_u64().unwrap_or_else(|| panic!("{ps}"));
    (count(&ps["active"]), count(&ps["passivated"]), count(&ps["activations"]["count"]))
}

/// Waits until `passivated` keys of `user` are passivated and none is
/// active.
fn wait_for_passivation(control: &mut crate::durable::Control, passivated: u64, within: Duration) {
    wait_for_passivation_of(control, "user", passivated, within);
}

/// [`wait_for_passivation`] of the virtual component `name`.
fn wait_for_passivation_of(control: &mut crate::durable::Control, name: &str, passivated: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (active, now, _) = counts_of(control, name);
        if (active, now) == (0, passivated) {
            return;
        }
        assert!(Instant::now() < deadline, "{active} keys still active, {now} passivated, not {passivated}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_key_is_activated_by_its_first_message_and_keeps_its_state_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), "counter", "");
    let host = DurableHost::start(dir.path(), Some(&manifest));
    assert_eq!(active(&host), Vec::<String>::new(), "nobody spawns a virtual actor");
    let mut control = host.connect();
    control.send("user/42", "incr(5)").unwrap();
    assert_eq!(control.count("user/42"), 5);
    assert_eq!(control.count("user/7"), 0, "another key, another actor");
    assert_eq!(active(&host), ["user/42", "user/7"]);
    host.kill();

    let host = DurableHost::start(dir.path(), Some(&manifest));
    assert_eq!(active(&host), Vec::<String>::new(), "activated again only by a message");
    assert_eq!(host.connect().count("user/42"), 5, "durable by default: its state is back");
}

#[test]
fn racing_first_messages_to_one_key_activate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), "counter", "durability = \"in-memory\"\nkeep-alive = true");
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let mut control = host.connect();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    control.send("user/race", "incr(1)").unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    assert_eq!(host.connect().count("user/race"), 80, "every message reached the one activation");
    assert_eq!(active(&host), ["user/race"]);
    let events = host.connect().request(json!({ "op": "ps" })).unwrap();
    let row = events["actors"].as_array().unwrap().iter().find(|a| a["address"] == "user/race").cloned();
    assert_eq!(row.unwrap_or(Value::Null)["restarts"], 0);
}

#[test]
fn a_hundred_concurrent_first_messages_to_one_key_activate_it_once_and_keep_each_senders_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    let member = support::guest("chat-member");
    std::fs::write(
        &path,
        format!(
            "[virtual.user]\npath = {member:?}\ndurability = \"in-memory\"\nkeep-alive = true\n\
             config = {{ name = \"m\", room = \"nobody\" }}\n"
        ),
    )
    .unwrap();
    let host = DurableHost::start(dir.path(), Some(&path));
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(100));
    let senders: Vec<_> = (0..100)
        .map(|sender| {
            let mut control = host.connect();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for n in 0..3 {
                    control.send("user/room", &format!("deliver(\"s{sender}\", \"{n}\")")).unwrap();
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    let mut control = host.connect();
    assert_eq!(key_counts(&mut control), (1, 0, 1), "one activation");
    let inbox = control.call("user/room", "inbox()").unwrap()["result"].as_str().unwrap().to_string();
    let mut seen: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for line in inbox.split("}, {") {
        let field = |name: &str| {
            let at = line.find(&format!("{name}: \"")).unwrap_or_else(|| panic!("{line}")) + name.len() + 3;
            line[at..].split('"').next().unwrap().to_string()
        };
        seen.entry(field("sender")).or_default().push(field("text"));
    }
    assert_eq!(seen.len(), 100, "every sender's messages arrived");
    for (sender, texts) in seen {
        assert_eq!(texts, ["0", "1", "2"], "{sender}'s messages in the order sent");
    }
}

#[test]
fn messages_racing_passivations_are_each_handled_once_by_the_next_activation() {
    for durability in ["in-memory", "durable"] {
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest(dir.path(), "counter", &format!("idle-ms = 2\ndurability = \"{durability}\""));
        let host = DurableHost::start(dir.path(), Some(&manifest));
        let clients: Vec<_> = (0..4u64)
            .map(|client| {
                let mut control = host.connect();
                std::thread::spawn(move || {
                    for n in 0..100u64 {
                        // Pauses around the idle period: many messages
                        // arrive as the key passivates.
                        std::thread::sleep(Duration::from_micros((n * 1_700 + client * 1_300) % 12_000));
                        if n % 2 == 0 {
                            control.send("user/hot", "incr(1)").unwrap();
                        } else {
                            control.call("user/hot", "incr(1)").unwrap();
                        }
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
        let mut control = host.connect();
        assert_eq!(control.count("user/hot"), 400, "{durability}: none lost, none twice");
        let (_, _, activations) = key_counts(&mut control);
        assert!(activations > 10, "{durability}: only {activations} activations: the race was not run");
    }
}

#[tokio::test]
async fn a_message_through_the_handle_of_a_key_that_passivated_goes_to_its_next_activation() {
    let host = support::host();
    let counter = support::define(&host, "counter");
    host.define_virtual("user", counter, None).unwrap();
    let stale = host.lookup("user/1").unwrap();
    stale.tell(stale.parse("incr(5)").unwrap(), None).unwrap();
    assert_eq!(support::ask(&host, "user/1", "get()").await.unwrap(), "5");
    assert!(host.passivate("user/1").await.unwrap());
    assert!(host.actors().iter().all(|a| a.address.as_str() != "user/1"), "it left the host");

    stale.tell(stale.parse("incr(2)").unwrap(), None).unwrap();
    assert_eq!(support::ask(&host, "user/1", "get()").await.unwrap(), "7", "the tell reached the next activation");
    assert!(host.passivate("user/1").await.unwrap());
    let reply = stale.ask(stale.parse("incr(1)").unwrap(), None, None, troupe::NO_TIMEOUT).await.unwrap();
    assert_eq!(reply.and_then(|v| v.to_wave().ok()).as_deref(), Some("8"), "so did the ask");
    assert_eq!(host.activations("user").map(|a| a.count), Some(3));
}

/// A manifest with a counter `sink` and the virtual component `fwd` of
/// forwarders to it, with `extra` settings.
fn forwarders(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("app.toml");
    let (counter, forwarder) = (support::guest("counter"), support::guest("forwarder"));
    std::fs::write(
        &path,
        format!(
            "[actors.sink]\npath = {counter:?}\n\n\
             [virtual.fwd]\npath = {forwarder:?}\nconfig = {{ to = \"sink\" }}\n{extra}\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_reminder_activates_a_passivated_key_when_due_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = forwarders(dir.path(), "idle-ms = 100");
    let host = DurableHost::start(dir.path(), Some(&path));
    let mut control = host.connect();
    control.call("fwd/a", "forward-later(7, 1500)").unwrap();
    wait_for_passivation_of(&mut control, "fwd", 1, Duration::from_secs(1));
    assert_eq!(control.count("sink"), 0, "not due yet");
    let deadline = Instant::now() + Duration::from_secs(10);
    while control.count("sink") != 7 {
        assert!(Instant::now() < deadline, "the reminder did not fire");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, _, activations) = counts_of(&mut control, "fwd");
    assert_eq!(activations, 2, "activated by its reminder");
    wait_for_passivation_of(&mut control, "fwd", 1, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(control.count("sink"), 7, "it fired once");
    assert_eq!(counts_of(&mut control, "fwd"), (0, 1, 2), "and nothing activated it again");
}

#[test]
fn a_virtual_actor_learns_its_key_and_an_invalid_key_is_refused_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), "recorder", "durability = \"in-memory\"\nkeep-alive = true");
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let mut control = host.connect();
    let config = control.call("user/ada", "config-value(\"key\")").unwrap();
    assert_eq!(config["result"], "some(\"ada\")", "its key, in `init`'s configuration");
    let refused = control.call("user/a+b", "notes()").unwrap_err();
    assert_eq!(refused["code"], "invalid-argument", "{refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("no key of the virtual component `user`") && message.contains("`+`"), "{message}");
    assert_eq!(active(&host), ["user/ada"]);
}

#[test]
fn an_idle_virtual_actor_leaves_the_host_and_its_next_message_activates_it_with_its_state() {
    for durability in ["durable", "in-memory"] {
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest(dir.path(), "counter", &format!("idle-ms = 100\ndurability = \"{durability}\""));
        let host = DurableHost::start(dir.path(), Some(&manifest));
        let mut control = host.connect();
        control.send("user/9", "incr(3)").unwrap();
        wait_for_passivation(&mut control, 1, Duration::from_secs(10));
        assert_eq!(active(&host), Vec::<String>::new(), "{durability}: a passivated key is not in the host");
        assert_eq!(control.count("user/9"), 3, "{durability}: activated again, with its state");
        assert_eq!(key_counts(&mut control), (1, 0, 2), "{durability}: active again, after a second activation");
    }
}

#[test]
fn a_manifest_refuses_idle_settings_outside_virtual_entries() {
    let counter = support::guest("counter");
    let text = format!("[actors.c]\npath = {counter:?}\nidle-ms = 100\n");
    let error = troupe::host::manifest::Manifest::parse(Path::new("/virtual/app.toml"), &text).unwrap_err();
    assert!(error.to_string().contains("only [virtual] entries passivate"), "{error}");
}

#[test]
fn troupe_passivate_sends_an_active_key_away_until_its_next_message() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), "counter", "keep-alive = true");
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let mut control = host.connect();
    control.send("user/5", "incr(2)").unwrap();
    // Handled, not only accepted: an actor with messages queued does not
    // passivate.
    assert_eq!(control.count("user/5"), 2);
    assert_eq!(control.ps_status("user/5"), "running");
    let passivated = control.request(json!({ "op": "passivate", "address": "user/5" })).unwrap();
    assert_eq!(passivated["passivated"], true);
    assert_eq!(active(&host), Vec::<String>::new(), "it left the host");
    assert_eq!(key_counts(&mut control), (0, 1, 1));
    let ps = control.request(json!({ "op": "ps" })).unwrap();
    assert_eq!(ps["virtual"], json!([{ "name": "user", "active": 0, "passivated": 1 }]), "plain `ps` counts them too");
    assert_eq!(control.count("user/5"), 2, "activated by its next message, with its state");
    let unknown = control.request(json!({ "op": "passivate", "address": "user/never" })).unwrap_err();
    assert_eq!(unknown["code"], "unknown-address", "passivating does not activate: {unknown}");
}

#[test]
fn stopping_a_passivated_key_for_good_forgets_its_state() {
    for durability in ["durable", "in-memory"] {
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest(dir.path(), "counter", &format!("keep-alive = true\ndurability = \"{durability}\""));
        let host = DurableHost::start(dir.path(), Some(&manifest));
        let mut control = host.connect();
        control.send("user/5", "incr(5)").unwrap();
        assert_eq!(control.count("user/5"), 5);
        control.request(json!({ "op": "passivate", "address": "user/5" })).unwrap();
        control.request(json!({ "op": "stop", "address": "user/5" })).unwrap();
        assert_eq!(key_counts(&mut control), (0, 0, 1), "{durability}: nothing of it is left");
        assert_eq!(control.count("user/5"), 0, "{durability}: its next message activates it fresh");
    }
}

#[test]
fn a_reminder_of_a_virtual_key_fires_after_a_restart_without_a_message_to_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = forwarders(dir.path(), "");
    let host = DurableHost::start(dir.path(), Some(&path));
    // A durable timer: `forward(7)` to itself in a second, which tells `sink`.
    host.connect().call("fwd/a", "forward-later(7, 1000)").unwrap();
    host.kill();

    let host = DurableHost::start(dir.path(), Some(&path));
    let mut control = host.connect();
    let deadline = Instant::now() + Duration::from_secs(15);
    while control.count("sink") != 7 {
        assert!(Instant::now() < deadline, "the reminder did not fire");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(active(&host).is_empty(), "no `user` keys here");
    assert_eq!(control.ps_status("fwd/a"), "running", "activated by its reminder, not by a message");
}

#[test]
fn ps_virtual_lists_a_components_active_keys() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), "counter", "durability = \"in-memory\"\nkeep-alive = true");
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let mut control = host.connect();
    for key in ["b", "a", "c"] {
        control.send(&format!("user/{key}"), "incr(1)").unwrap();
    }
    let ps = control.request(json!({ "op": "ps", "virtual": "user" })).unwrap();
    assert_eq!((ps["active"].as_u64(), ps["passivated"].as_u64()), (Some(3), Some(0)), "{ps}");
    let mut keys: Vec<&str> = ps["actors"].as_array().unwrap().iter().filter_map(|a| a["address"].as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["user/a", "user/b", "user/c"]);
    assert_eq!(ps["activations"]["count"], 3, "{ps}");
    let none = control.request(json!({ "op": "ps", "virtual": "nobody" })).unwrap();
    assert_eq!(none["active"], 0);
    assert_eq!(none["activations"], Value::Null, "not a virtual component");
}

#[test]
fn an_activation_reports_how_long_its_phases_took() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), "counter", "");
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let events = crate::durable_journal::events(&host, dir.path());
    host.connect().send("user/p", "incr(1)").unwrap();
    let started = next_event(&events, Duration::from_secs(5), |e| e["address"] == "user/p" && e["event"] == "started")
        .expect("the activation's start is an event");
    let phases = &started["phases"];
    assert!(phases["instantiate_us"].as_u64().unwrap() > 0, "{started}");
    assert!(phases["restore_us"].as_u64().is_some() && phases["replay_us"].as_u64().is_some(), "{started}");
    // Its lookup, claim and read of the store, before its instance.
    assert!(phases["claim_us"].as_u64().unwrap() > 0, "{started}");
}

#[test]
fn keys_that_fail_again_and_again_are_reported_as_a_storm_and_spare_the_other_keys() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), "faulty", "durability = \"in-memory\"\nkeep-alive = true");
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let events = crate::durable_journal::events(&host, dir.path());
    let mut control = host.connect();
    // More failures than the default intensity (5 in 10 s), each its own key.
    for i in 0..6 {
        let failed = control.call(&format!("user/k{i}"), "panic(\"no\")").unwrap_err();
        assert_eq!(failed["code"], "actor-failed", "{failed}");
    }
    let storm = next_event(&events, Duration::from_secs(5), |e| e["event"] == "failure-storm")
        .expect("a failure storm is reported");
    assert_eq!(storm["address"], "user", "{storm}");
    assert_eq!(storm["failures"], 6, "{storm}");
    assert_eq!(control.call("user/ok", "ping()").unwrap()["result"], "1", "the other keys go on");
    assert_eq!(control.call("user/k0", "ping()").unwrap()["result"], "1", "a failed key is activated again");
}

#[test]
fn a_typed_import_bound_by_key_reaches_the_key_its_argument_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.toml");
    let (counter, tally) = (support::guest("counter"), support::guest("tally"));
    std::fs::write(
        &path,
        format!(
            "[virtual.user]\npath = {counter:?}\ndurability = \"in-memory\"\nkeep-alive = true\n\n\
             [actors.t]\npath = {tally:?}\n\
             bindings = {{ \"example:counter/api\" = {{ virtual = \"user\", key-from = \"by\" }} }}\n"
        ),
    )
    .unwrap();
    let host = DurableHost::start(dir.path(), Some(&path));
    let mut control = host.connect();
    // `add(by)` calls the counter's `incr(by)`: the key is the argument.
    assert_eq!(control.call("t", "add(5)").unwrap()["result"], "5");
    assert_eq!(control.call("t", "add(7)").unwrap()["result"], "7");
    assert_eq!(control.call("t", "add(5)").unwrap()["result"], "10", "the same key again");
    assert_eq!(active(&host), ["user/5", "user/7"]);
    // A function without the key's argument cannot be routed.
    let failed = control.call("t", "reset-all()").unwrap_err();
    assert!(failed["message"].as_str().unwrap_or_default().contains("no `by` argument"), "{failed}");
}

/// Whether the activation of each of `keys` keys of `user`, one after the
/// other with a pause between them, took a warm instance (from its
/// `started` event).
fn warm_activations(extra: &str, keys: usize) -> Vec<bool> {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), "counter", &format!("durability = \"in-memory\"\nkeep-alive = true\n{extra}"));
    let host = DurableHost::start(dir.path(), Some(&manifest));
    let events = crate::durable_journal::events(&host, dir.path());
    let mut control = host.connect();
    (0..keys)
        .map(|key| {
            // Time for the pool to be filled behind the last activation.
            std::thread::sleep(Duration::from_millis(200));
            let address = format!("user/{key}");
            control.send(&address, "incr(1)").unwrap();
            let started =
                next_event(&events, Duration::from_secs(5), |e| e["address"] == address && e["event"] == "started")
                    .expect("an activation starts");
            started["phases"]["warm"].as_bool().unwrap_or_else(|| panic!("{started}"))
        })
        .collect()
}

#[test]
fn activations_after_the_first_take_instances_made_ahead() {
    let warm = warm_activations("warm-instances = 2", 4);
    assert_eq!(warm, [false, true, true, true], "none is made before the first activation, then one is ready for each");
    let cold = warm_activations("warm-instances = 0", 3);
    assert_eq!(cold, [false, false, false], "none is made when none is asked for");
}

#[test]
fn only_virtual_entries_keep_warm_instances() {
    let counter = support::guest("counter");
    let text = format!("[actors.c]\npath = {counter:?}\nwarm-instances = 2\n");
    let error = troupe::host::manifest::Manifest::parse(Path::new("/virtual/app.toml"), &text).unwrap_err();
    assert!(error.to_string().contains("only [virtual] entries keep warm instances"), "{error}");
}

#[test]
fn a_manifest_binding_by_key_needs_key_from() {
    let counter = support::guest("counter");
    let text = format!(
        "[virtual.user]\npath = {counter:?}\n\n[actors.t]\npath = {counter:?}\n\
         bindings = {{ \"example:counter/api\" = {{ virtual = \"user\" }} }}\n"
    );
    let error = troupe::host::manifest::Manifest::parse(Path::new("/virtual/app.toml"), &text).unwrap_err();
    assert!(error.to_string().contains("needs `key-from`"), "{error}");
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Touches each of the keys `keys` of a virtual counter once, from four
/// clients, and waits until every key of it (`total` by then) has
/// passivated.
fn touch_and_wait(host: &DurableHost, keys: std::ops::Range<usize>, total: u64) {
    let within = Duration::from_secs(30 + keys.len() as u64 / 1000);
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let mut control = host.connect();
            let keys = keys.clone();
            std::thread::spawn(move || {
                for key in keys.skip(client).step_by(4) {
                    control.send(&format!("user/{key}"), &format!("incr({})", key % 1000 + 1)).unwrap();
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    wait_for_passivation(&mut host.connect(), total, within);
}

/// `keys` keys of a virtual counter (`durability`), each touched once: each
/// is activated by its message and passivates once idle, and a sample of
/// them, activated again, has its own state. Then as many new keys again:
/// returns the host's resident memory per passivated key of that second
/// wave, in KiB (the first one grows the host's tables and the
/// allocator's pools to their size, which they keep).
fn many_keys(keys: usize, durability: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), "counter", &format!("durability = \"{durability}\"\nidle-ms = 300"));
    let host = DurableHost::start_for_memory(dir.path(), Some(&manifest), u32::try_from(keys + 100).unwrap());
    let mut control = host.connect();
    touch_and_wait(&host, 0..keys, keys as u64);
    let sample: Vec<usize> = (0..keys).step_by((keys / 100).max(1)).collect();
    for &key in &sample {
        assert_eq!(control.count(&format!("user/{key}")), (key % 1000 + 1) as u64, "user/{key} has its own state");
    }
    let (_, _, activations) = key_counts(&mut control);
    assert_eq!(activations, (keys + sample.len()) as u64, "each key activated once, the sample twice");
    wait_for_passivation(&mut control, keys as u64, Duration::from_secs(10));
    let before = rss_kib(host.pid());
    touch_and_wait(&host, keys..2 * keys, 2 * keys as u64);
    (rss_kib(host.pid()).saturating_sub(before)) as f64 / keys as f64
}

// The bounds leave room for the allocator's noise (a few MiB either way,
// mostly what the busiest moment of a wave left with the allocator, which
// is why the waves have 20,000 keys: at 10,000 that noise alone came near
// the bound) and fail on anything kept per key beyond a small entry: a
// hibernating actor's cell, which passivation replaces, costs about 3 KiB.
// BENCHMARKS.md has the figures, measured apart.

#[test]
fn twenty_thousand_durable_keys_passivate_to_the_store_and_keep_nothing_per_key_in_memory() {
    let per_key = many_keys(20_000, "durable");
    eprintln!("{per_key:.3} KiB per passivated durable key");
    assert!(per_key < 1.0, "{per_key:.3} KiB of memory per passivated durable key");
}

#[test]
fn twenty_thousand_keys_in_memory_keep_only_their_state_once_passivated() {
    let per_key = many_keys(20_000, "in-memory");
    eprintln!("{per_key:.3} KiB per passivated key in memory");
    // The counter's state is a few bytes: the rest is the host's entry
    // for it (its key and state, with the allocator's share).
    assert!(per_key < 1.0, "{per_key:.3} KiB of memory per passivated key in memory");
}

#[test]
#[ignore = "long: a million keys, twice; run with --ignored"]
fn a_million_keys_in_memory_each_touched_once_on_one_host() {
    let per_key = many_keys(1_000_000, "in-memory");
    eprintln!("{per_key:.3} KiB per passivated key in memory");
    assert!(per_key < 1.0, "{per_key:.3} KiB of memory per passivated key in memory");
}

#[test]
#[ignore = "long: a million durable keys, twice; run with --ignored"]
fn a_million_durable_keys_each_touched_once_on_one_host() {
    let per_key = many_keys(1_000_000, "durable");
    eprintln!("{per_key:.3} KiB per passivated durable key");
    assert!(per_key < 0.2, "{per_key:.3} KiB of memory per passivated durable key");
}
