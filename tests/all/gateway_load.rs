//! The gateway under many connections: thousands of keep-alive
//! connections open at once to a real `troupe run --http`, each used,
//! all still served afterwards, while the command line gets its answers
//! over the control socket.
//!
//! The host is started with a soft limit of 1024 open files (a common
//! default): holding more connections than that needs the host to raise
//! its own limit, as it says it does.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::time::Duration;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::gateway::HttpHost;

/// The soft limit on open files the host is started with.
const HOST_SOFT_LIMIT: u64 = 1024;

/// Descriptors this test process needs beside its connections.
const SPARE_FILES: u64 = 256;

/// Issue 19's figure. Seconds on a debug build, so CI runs it whole.
#[test]
fn ten_thousand_connections_are_held_while_the_cli_is_answered() {
    connections_are_held_while_the_cli_is_answered(10_000);
}

/// Opens `n` connections to a host, asks on each, runs `troupe ps` with
/// all of them open, and asks on each again.
fn connections_are_held_while_the_cli_is_answered(n: usize) {
    raise_own_open_file_limit(n as u64 + SPARE_FILES);
    let host = HttpHost::start_with("[actors.counter]\npath = {counter}\n", &[], |cmd| {
        // SAFETY: setrlimit is async-signal-safe, and the closure touches
        // nothing else of the parent's state.
        unsafe {
            cmd.pre_exec(|| {
                let hard = getrlimit(Resource::Nofile).maximum;
                setrlimit(Resource::Nofile, Rlimit { current: Some(HOST_SOFT_LIMIT), maximum: hard })?;
                Ok(())
            });
        }
    });
    let address = host.base.strip_prefix("http://").unwrap().to_string();
    let mut connections: Vec<TcpStream> = (0..n)
        .map(|i| {
            let stream = TcpStream::connect(&address).unwrap_or_else(|e| panic!("connection {i}: {e}"));
            stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            stream
        })
        .collect();
    ask_on_each(&mut connections);

    let ps = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .arg("--control")
        .arg(host.dir.path().join("control.sock"))
        .args(["--json", "ps"])
        .output()
        .unwrap();
    assert!(ps.status.success(), "`troupe ps` failed: {}", String::from_utf8_lossy(&ps.stderr));
    let ps: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(ps["actors"][0]["address"], "counter", "{ps}");

    ask_on_each(&mut connections);
    let log = std::fs::read_to_string(host.dir.path().join("host.log")).unwrap();
    assert!(log.contains("raised the soft limit on open files"), "{log}");
    assert!(log.contains(&format!("from={HOST_SOFT_LIMIT}")), "{log}");
}

/// Sends `GET /v1/actors/counter` on every connection, then reads every
/// answer: all the requests are in flight at once.
fn ask_on_each(connections: &mut [TcpStream]) {
    let request = b"GET /v1/actors/counter HTTP/1.1\r\nHost: troupe\r\n\r\n";
    for (i, stream) in connections.iter_mut().enumerate() {
        stream.write_all(request).unwrap_or_else(|e| panic!("connection {i} was dropped: {e}"));
    }
    for (i, stream) in connections.iter_mut().enumerate() {
        let (status, body) = read_response(stream).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        assert_eq!(status, 200, "connection {i}: {body}");
        assert!(body.contains(r#""address":"counter""#), "connection {i}: {body}");
    }
}

/// One HTTP/1.1 response with a `content-length`: its status and body.
fn read_response(stream: &mut TcpStream) -> std::io::Result<(u16, String)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| std::io::Error::other(format!("no content-length in {head}")))?;
            if buffer.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&buffer[end + 4..end + 4 + length]).into_owned();
                return Ok((status, body));
            }
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Err(std::io::Error::other("the connection closed"));
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

/// Raises this process's soft limit on open files to at least `needed`,
/// up to its hard limit.
fn raise_own_open_file_limit(needed: u64) {
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|soft| soft >= needed) {
        return;
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(hard >= needed, "this test needs {needed} open files; the hard limit is {hard} (raise it: ulimit -Hn)");
    setrlimit(Resource::Nofile, Rlimit { current: Some(needed), maximum: limit.maximum }).unwrap();
}
