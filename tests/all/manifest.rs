//! Manifests: parsing errors point at the file, line, column and key; a
//! valid manifest starts its actors in order.

use std::path::{Path, PathBuf};

use troupe::manifest::{Manifest, ManifestError};

use crate::support::{self, ask};

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(Path::new("/virtual/app.toml"), text)
}

fn counter_path() -> PathBuf {
    support::guest("counter")
}

fn with_counter(rest: &str) -> String {
    format!("[actors.c]\npath = {:?}\n{rest}", counter_path().display().to_string())
}

#[test]
fn syntax_errors_name_line_and_column() {
    let err = parse("[actors.c]\npath = \"x.wasm\n").unwrap_err();
    assert_eq!(err.file, PathBuf::from("/virtual/app.toml"));
    assert_eq!(err.location.map(|(line, _)| line), Some(2), "{err}");
    assert!(err.to_string().starts_with("/virtual/app.toml:2:"), "{err}");
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let err = parse(&with_counter("limits = { fule = 5 }")).unwrap_err();
    assert!(err.message.contains("unknown field `fule`"), "{err}");
    assert!(err.message.contains("`fuel`"), "the message lists the accepted keys: {err}");
    assert_eq!(err.location.map(|(line, _)| line), Some(3));

    let err = parse("[actor.c]\npath = \"x\"\n").unwrap_err();
    assert!(err.message.contains("unknown field `actor`"), "{err}");
}

#[test]
fn invalid_limits_name_the_key() {
    let err = parse(&with_counter("limits = { mailbox = 0 }")).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("actors.c.limits.mailbox"));
    assert_eq!(err.location.map(|(line, _)| line), Some(3));

    let err = parse(&with_counter("limits = { memory = \"12 parsecs\" }")).unwrap_err();
    assert!(err.message.contains("size"), "{err}");

    let err = parse(&with_counter("limits = { deadline-ms = -5 }")).unwrap_err();
    assert_eq!(err.location.map(|(line, _)| line), Some(3), "{err}");

    let err = parse(&with_counter("instances = 0")).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("actors.c.instances"));
}

#[test]
fn missing_and_unreadable_component_files_are_named() {
    let err = parse("[actors.c]\nversion = \"1\"\n").unwrap_err();
    assert_eq!(err.key.as_deref(), Some("actors.c"));
    assert!(err.message.contains("missing `path`"), "{err}");

    let err = parse("[actors.c]\npath = \"nowhere.wasm\"\n").unwrap_err();
    assert_eq!(err.key.as_deref(), Some("actors.c.path"));
    assert!(err.message.contains("/virtual/nowhere.wasm"), "paths are relative to the manifest: {err}");
}

#[test]
fn colliding_addresses_are_rejected() {
    let path = counter_path().display().to_string();
    let text = format!("[actors.w]\npath = {path:?}\ninstances = 3\n\n[actors.w-1]\npath = {path:?}\n");
    let err = parse(&text).unwrap_err();
    assert!(err.message.contains("address `w-1` is used by two entries"), "{err}");

    let text = format!("[components.a]\npath = {path:?}\n[actors.a]\npath = {path:?}\n");
    assert!(parse(&text).unwrap_err().message.contains("the name `a` is defined twice"));

    let text = format!("[components.a]\npath = {path:?}\ninstances = 2\n");
    assert_eq!(parse(&text).unwrap_err().key.as_deref(), Some("components.a.instances"));

    let text = format!("[actors.a]\ncomponent = \"nope\"\n[actors.b]\npath = {path:?}\n");
    assert!(parse(&text).unwrap_err().message.contains("`component = \"nope\"`"));
}

#[test]
fn hibernate_after_is_read_in_milliseconds_and_must_be_positive() {
    let manifest = parse(&with_counter("hibernate-after-ms = 30000")).unwrap();
    let entry = manifest.entries().find(|e| e.name == "c").expect("entry c");
    assert_eq!(entry.policy.hibernate_after, Some(std::time::Duration::from_secs(30)));

    let err = parse(&with_counter("hibernate-after-ms = 0")).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("actors.c.hibernate-after-ms"));
    assert!(err.message.contains("at least 1"), "{err}");
}

#[tokio::test]
async fn a_manifest_starts_its_actors_in_order_with_their_policy() {
    let path = counter_path().display().to_string();
    let text = format!(
        "[actors.w]\npath = {path:?}\ninstances = 3\nversion = \"2.1.0\"\nconfig = {{ start = 7 }}\n\
         limits = {{ memory = \"16MiB\", mailbox = 8 }}\n\n[actors.solo]\ncomponent = \"w\"\n"
    );
    let manifest = parse(&text).unwrap();
    let host = support::host();
    let started = manifest.apply(&host).await.unwrap();
    let names: Vec<&str> = started.iter().map(|a| a.as_str()).collect();
    assert_eq!(names, ["w-0", "w-1", "w-2", "solo"]);
    assert_eq!(ask(&host, "w-1", "get()").await.unwrap(), "7", "config reaches init");
    let info = host.lookup("w-2").unwrap().info();
    assert_eq!((info.version.as_deref(), info.mailbox_capacity), (Some("2.1.0"), 8));
    assert_eq!(host.lookup("w-0").unwrap().limits().memory, 16 << 20);
    let solo = host.lookup("solo").unwrap();
    assert_eq!(solo.component().hash, host.lookup("w-0").unwrap().component().hash, "`component =` reuses the code");
    assert_eq!(ask(&host, "solo", "get()").await.unwrap(), "0", "but not the policy: no `start` config");
    assert!(host.template("w").is_some(), "actor entries are spawnable components");
}

#[test]
fn the_demo_manifest_is_valid() {
    support::guest("counter");
    let demo = support::workspace().join("examples-guests/demo.toml");
    let manifest = Manifest::load(&demo).unwrap();
    assert!(manifest.entries().any(|e| e.name == "counter"));
}

#[tokio::test]
async fn nested_supervisors_start_in_file_order_with_their_policies() {
    let faulty = support::guest("faulty").display().to_string();
    let text = format!(
        r#"
[actors.first]
path = {faulty:?}

[supervisors.app]
strategy = "rest-for-one"
intensity = 3
period-ms = 5000
backoff = {{ min-ms = 1, max-ms = 10 }}

[supervisors.app.actors.db]
path = {faulty:?}
restart = "transient"

[supervisors.app.supervisors.workers]
strategy = "pool"
component = "worker"
instances = 2

[supervisors.app.actors.api]
path = {faulty:?}

[components.worker]
path = {faulty:?}

[actors.last]
component = "worker"
"#
    );
    let manifest = parse(&text).unwrap();
    let host = support::host();
    let started = manifest.apply(&host).await.unwrap();
    let names: Vec<&str> = started.iter().map(|a| a.as_str()).collect();
    assert_eq!(names, ["first", "db", "workers-0", "workers-1", "api", "last"]);

    let app = host.supervisor("app").unwrap().info();
    assert_eq!(app.strategy, troupe::supervision::Strategy::RestForOne);
    assert_eq!((app.intensity, app.period_ms), (3, 5000));
    let children: Vec<(&str, &str)> = app.children.iter().map(|c| (c.address.as_str(), c.kind)).collect();
    assert_eq!(children, [("db", "actor"), ("workers", "supervisor"), ("api", "actor")]);
    assert_eq!(app.children[0].restart, troupe::supervision::RestartType::Transient);
    let workers = host.supervisor("workers").unwrap().info();
    assert_eq!(workers.strategy, troupe::supervision::Strategy::Pool);
    assert_eq!(workers.children.len(), 2);
    let root: Vec<String> =
        host.supervisor("root").unwrap().info().children.iter().map(|c| c.address.to_string()).collect();
    assert_eq!(root, ["first", "app", "last"]);
}

#[test]
fn supervisor_mistakes_are_named() {
    let faulty = support::guest("faulty").display().to_string();
    let err = parse("[supervisors.s]\nstrategy = \"one-for-some\"\n").unwrap_err();
    assert!(err.message.contains("one-for-some"), "{err}");
    let err = parse("[supervisors.s]\nstrategy = \"pool\"\n").unwrap_err();
    assert!(err.message.contains("a pool needs `component`"), "{err}");
    let err = parse("[supervisors.s]\nbackoff = { jitter = 3.0 }\n").unwrap_err();
    assert!(err.message.contains("jitter"), "{err}");
    let text = format!("[supervisors.s]\n[supervisors.s.actors.s]\npath = {faulty:?}\n");
    assert!(parse(&text).unwrap_err().message.contains("the name `s` is defined twice"));
    let err = parse("[supervisors.root]\n").unwrap_err();
    assert!(err.message.contains("the name `root` is defined twice"), "the root's name is reserved: {err}");
}

#[test]
fn an_actor_is_pinned_to_a_valid_node_name_and_only_actors_are() {
    let pinned = parse(&with_counter("node = \"eu-1\"")).unwrap();
    assert_eq!(pinned.entries().next().and_then(|a| a.node.clone()).as_deref(), Some("eu-1"));
    let err = parse(&with_counter("node = \"eu.1\"")).unwrap_err();
    assert!(err.message.contains("invalid node name `eu.1`"), "{err}");
    let path = counter_path().display().to_string();
    let err = parse(&format!("[virtual.user]\npath = {path:?}\nnode = \"a\"\n")).unwrap_err();
    assert!(err.message.contains("only [actors] entries are pinned"), "{err}");
}
