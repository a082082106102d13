//! A probe actor: each function exercises one part of the host API (self
//! address, ask, tell, timers, spawn, stop, log) or of the WASI sandbox
//! (files, environment, clocks, sockets, stdout). Tests use it to show what
//! a guest can and cannot reach.

wit_bindgen::generate!({
    path: ["../../../wit", "../../wit/probe"],
    world: "example:probe/probe",
    with: {
        "troupe:actor/host@0.2.0": troupe_guest::bindings::troupe::actor::host,
        "troupe:actor/types@0.2.0": troupe_guest::bindings::troupe::actor::types,
    },
});

use std::cell::{Cell, RefCell};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use exports::example::probe::api;
use exports::troupe::actor::{shutdown, watcher};
use troupe_guest::{Call, DownNotice, DownReason, FailureKind, log};

thread_local! {
    static TICKS: Cell<u32> = const { Cell::new(0) };
    static NOTICES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static RECORDS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

struct Probe;

fn text<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

impl api::Guest for Probe {
    fn whoami() -> String {
        troupe_guest::me()
    }

    fn read_file(path: String) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(text)
    }

    fn write_file(path: String, contents: String) -> Result<(), String> {
        std::fs::write(path, contents).map_err(text)
    }

    fn list_dir(path: String) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path).map_err(text)? {
            names.push(entry.map_err(text)?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn env(key: String) -> Option<String> {
        std::env::var(key).ok()
    }

    fn wall_clock() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    fn connect(address: String) -> Result<(), String> {
        std::net::TcpStream::connect(address.as_str()).map(drop).map_err(text)
    }

    fn print(text: String) {
        println!("{text}");
    }

    fn log(text: String) {
        log::info(&text);
    }

    fn relay(to: String, message: String, timeout_ms: u32) -> Result<String, String> {
        troupe_guest::ask_raw(&to, Call::raw(message), Duration::from_millis(timeout_ms.into())).map_err(text)
    }

    fn forward(to: String, message: String) -> Result<(), String> {
        troupe_guest::tell(&to, Call::raw(message)).map_err(text)
    }

    fn tick_after(ms: u64) -> Result<u64, String> {
        troupe_guest::send_after(Duration::from_millis(ms), "tick()").map_err(text)
    }

    fn cancel(id: u64) -> bool {
        troupe_guest::cancel_timer(id)
    }

    fn tick() {
        TICKS.with(|t| t.set(t.get() + 1));
    }

    fn ticks() -> u32 {
        TICKS.with(Cell::get)
    }

    fn spawn_child(component: String, name: Option<String>) -> Result<String, String> {
        let mut spawn = troupe_guest::spawn(&component);
        if let Some(name) = name {
            spawn = spawn.name(name);
        }
        spawn.start().map_err(text)
    }

    fn spawn_durable_child(component: String, name: Option<String>) -> Result<String, String> {
        let mut spawn = troupe_guest::spawn(&component).durable();
        if let Some(name) = name {
            spawn = spawn.name(name);
        }
        spawn.start().map_err(text)
    }

    fn stop_actor(address: String) -> Result<(), String> {
        troupe_guest::stop(&address).map_err(text)
    }

    fn watch(address: String) -> Result<u64, String> {
        troupe_guest::monitor(&address).map_err(text)
    }

    fn unwatch(id: u64) -> bool {
        troupe_guest::demonitor(id)
    }

    fn link_to(address: String) -> Result<(), String> {
        troupe_guest::link(&address).map_err(text)
    }

    fn notices() -> Vec<String> {
        NOTICES.with(|n| n.borrow().clone())
    }

    fn crash(message: String) {
        panic!("{message}");
    }

    fn remember(item: String) {
        RECORDS.with(|r| r.borrow_mut().push(item));
    }

    fn remembered() -> Vec<String> {
        RECORDS.with(|r| r.borrow().clone())
    }
}

impl watcher::Guest for Probe {
    fn down(notice: DownNotice) {
        let reason = match notice.reason {
            DownReason::Stopped => "stopped".to_string(),
            DownReason::Failed(f) => kind_name(f.kind).to_string(),
        };
        let gone = if notice.gone { "gone" } else { "restarting" };
        NOTICES.with(|n| n.borrow_mut().push(format!("{} {reason} {gone}", notice.address)));
    }
}

/// The WIT name of a failure kind.
fn kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::OutOfFuel => "out-of-fuel",
        FailureKind::Deadline => "deadline",
        FailureKind::MemoryLimit => "memory-limit",
        FailureKind::StackOverflow => "stack-overflow",
        FailureKind::Panic => "panic",
        FailureKind::Trap => "trap",
        FailureKind::HostCall => "host-call",
        FailureKind::Init => "init",
        FailureKind::Restore => "restore",
        FailureKind::Instantiate => "instantiate",
        FailureKind::Escalated => "escalated",
        FailureKind::Linked => "linked",
        FailureKind::HostLost => "host-lost",
    }
}

impl shutdown::Guest for Probe {
    fn stop() {
        let marker = format!("/out/stopped-{}", troupe_guest::me().replace('/', "_"));
        let _ = std::fs::write(marker, "stopped");
    }
}

export!(Probe);
