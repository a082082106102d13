//! The WASI sandbox: nothing is granted unless the manifest (or spawn
//! spec) grants it, and a granted directory cannot be escaped.

use std::collections::BTreeMap;

use troupe::Host;
use troupe::grants::{DirGrant, DirMode, Grants};

use crate::support::{self, ask};

async fn probe(host: &Host, address: &str, grants: Grants) {
    let mut entry = support::define(host, "probe");
    entry.policy.grants = grants;
    host.spawn(entry.spec(address.into())).await.expect("probe starts");
}

fn call(name: &str, arg: &str) -> String {
    format!("{name}({arg:?})")
}

#[tokio::test]
async fn nothing_is_granted_by_default() {
    let host = support::host();
    probe(&host, "p", Grants::default()).await;
    assert_eq!(ask(&host, "p", &call("env", "HOME")).await.unwrap(), "none");
    assert_eq!(ask(&host, "p", &call("env", "PATH")).await.unwrap(), "none");
    for path in ["/etc/passwd", "/", ".", "/tmp"] {
        let reply = ask(&host, "p", &call("read-file", path)).await.unwrap();
        assert!(reply.starts_with("err("), "read {path}: {reply}");
        let reply = ask(&host, "p", &call("list-dir", path)).await.unwrap();
        assert!(reply.starts_with("err("), "list {path}: {reply}");
    }
    assert_eq!(ask(&host, "p", "wall-clock()").await.unwrap(), "0", "clocks read zero");
    let reply = ask(&host, "p", &call("connect", "127.0.0.1:9")).await.unwrap();
    assert!(reply.starts_with("err("), "no network: {reply}");
}

#[tokio::test]
async fn granted_environment_variables_and_clocks_are_visible() {
    let host = support::host();
    let grants = Grants {
        env: BTreeMap::from([("GREETING".to_string(), "hello".to_string())]),
        clocks: true,
        ..Grants::default()
    };
    probe(&host, "p", grants).await;
    assert_eq!(ask(&host, "p", &call("env", "GREETING")).await.unwrap(), r#"some("hello")"#);
    assert_eq!(ask(&host, "p", &call("env", "HOME")).await.unwrap(), "none", "only what is granted");
    let now: u64 = ask(&host, "p", "wall-clock()").await.unwrap().parse().unwrap();
    assert!(now > 1_700_000_000, "the real clock: {now}");
}

#[tokio::test]
async fn the_clocks_grant_alone_gives_the_real_clock() {
    // Without a directory or a variable to grant, the WASI context is built
    // on the guest's first WASI call: with the grants it was started with.
    let host = support::host();
    probe(&host, "p", Grants { clocks: true, ..Grants::default() }).await;
    let now: u64 = ask(&host, "p", "wall-clock()").await.unwrap().parse().unwrap();
    assert!(now > 1_700_000_000, "the real clock: {now}");
}

#[tokio::test]
async fn a_read_only_directory_can_be_read_but_not_written_or_escaped() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "top secret").unwrap();
    let granted = outside.path().join("granted");
    std::fs::create_dir(&granted).unwrap();
    std::fs::write(granted.join("hello.txt"), "hi there").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), granted.join("link")).unwrap();

    let host = support::host();
    let grants = Grants {
        dirs: vec![DirGrant { host: granted.clone(), guest: "/data".into(), mode: DirMode::ReadOnly }],
        ..Grants::default()
    };
    probe(&host, "p", grants).await;
    assert_eq!(ask(&host, "p", &call("read-file", "/data/hello.txt")).await.unwrap(), r#"ok("hi there")"#);
    assert_eq!(ask(&host, "p", &call("list-dir", "/data")).await.unwrap(), r#"ok(["hello.txt", "link"])"#);

    let write = ask(&host, "p", "write-file(\"/data/new.txt\", \"x\")").await.unwrap();
    assert!(write.starts_with("err("), "read-only: {write}");
    assert!(!granted.join("new.txt").exists());

    support::spawn(&host, "counter", "neighbour", Default::default()).await;
    host.tell("neighbour", "incr(3)").unwrap();
    let escapes = [
        "/data/../secret.txt",
        "/data/link",
        "../secret.txt",
        &outside.path().join("secret.txt").display().to_string(),
    ];
    for path in escapes {
        let reply = ask(&host, "p", &call("read-file", path)).await.unwrap();
        assert!(reply.starts_with("err(") && !reply.contains("top secret"), "escape via {path}: {reply}");
    }
    assert_eq!(ask(&host, "neighbour", "get()").await.unwrap(), "3", "a neighbour is untouched");
}

#[tokio::test]
async fn a_read_write_directory_can_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let host = support::host();
    let grants = Grants {
        dirs: vec![DirGrant { host: dir.path().to_path_buf(), guest: "/out".into(), mode: DirMode::ReadWrite }],
        ..Grants::default()
    };
    probe(&host, "p", grants).await;
    assert_eq!(ask(&host, "p", "write-file(\"/out/note.txt\", \"written\")").await.unwrap(), "ok");
    assert_eq!(std::fs::read_to_string(dir.path().join("note.txt")).unwrap(), "written");
}

#[tokio::test]
async fn a_missing_granted_directory_fails_the_spawn() {
    let host = support::host();
    let mut entry = support::define(&host, "probe");
    entry.policy.grants = Grants {
        dirs: vec![DirGrant { host: "/no/such/dir".into(), guest: "/d".into(), mode: DirMode::ReadOnly }],
        ..Grants::default()
    };
    let err = host.spawn(entry.spec("p".into())).await.unwrap_err();
    assert!(err.to_string().contains("cannot grant directory `/no/such/dir`"), "{err}");
}
