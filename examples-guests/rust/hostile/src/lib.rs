//! A hostile actor for the sandbox test corpus: each function attacks the
//! host (quotas, mailboxes, timers, the log, the host API's argument
//! checks, memory) in one way, so that the tests can show the host and a
//! healthy neighbour unaffected.

wit_bindgen::generate!({
    path: ["../../../wit", "../../wit/hostile"],
    world: "example:hostile/hostile",
    with: {
        "troupe:actor/host@0.2.0": troupe_guest::bindings::troupe::actor::host,
        "troupe:actor/types@0.2.0": troupe_guest::bindings::troupe::actor::types,
    },
});

use std::cell::Cell;
use std::time::Duration;

use exports::example::hostile::api;
use exports::troupe::actor::{lifecycle, persistence};
use troupe_guest::bindings::troupe::actor::host;
use troupe_guest::bindings::troupe::actor::types::{BindingTarget, Level, SpawnOptions};
use troupe_guest::{Call, State, log};

thread_local! {
    static PANIC_IN_SNAPSHOT: Cell<bool> = const { Cell::new(false) };
    static PANIC_IN_RESTORE: Cell<bool> = const { Cell::new(false) };
}

struct Hostile;

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl api::Guest for Hostile {
    fn spawn_bomb(component: String) -> (u32, String) {
        let mut started = 0;
        loop {
            match troupe_guest::spawn(&component).start() {
                Ok(_) => started += 1,
                Err(e) => return (started, text(e)),
            }
            if started >= 1_000_000 {
                return (started, "the host never refused".into());
            }
        }
    }

    fn send_flood(to: String, message: String, n: u32) -> (u32, String) {
        let mut queued = 0;
        for _ in 0..n {
            match troupe_guest::tell(&to, Call::raw(message.clone())) {
                Ok(()) => queued += 1,
                Err(e) => return (queued, text(e)),
            }
        }
        (queued, String::new())
    }

    fn timer_flood() -> (u32, String) {
        let mut set = 0;
        loop {
            match troupe_guest::send_after(Duration::from_secs(3600), "tick()") {
                Ok(_) => set += 1,
                Err(e) => return (set, text(e)),
            }
            if set >= 1_000_000 {
                return (set, "the host never refused".into());
            }
        }
    }

    fn log_flood(n: u32, bytes: u32) {
        let line = "x".repeat(bytes as usize);
        for _ in 0..n {
            log::log(Level::Info, &line, &[("k", &line)]);
        }
    }

    fn huge_message(to: String, bytes: u32) -> Result<(), String> {
        let payload = format!("ping({:?})", "y".repeat(bytes as usize));
        troupe_guest::tell(&to, Call::raw(payload)).map_err(text)
    }

    fn absurd_calls() -> Vec<String> {
        let mut errors = Vec::new();
        let mut record = |r: Result<(), String>| errors.push(r.err().unwrap_or_else(|| "accepted".into()));
        record(troupe_guest::tell("", "ping()").map_err(text));
        record(troupe_guest::tell("nobody/at/all", "ping()").map_err(text));
        record(troupe_guest::tell(&troupe_guest::me(), "no-such-function()").map_err(text));
        record(troupe_guest::tell(&troupe_guest::me(), "ping(1, 2, 3)").map_err(text));
        record(troupe_guest::tell(&troupe_guest::me(), "").map_err(text));
        record(troupe_guest::send_after(Duration::from_secs(u64::MAX / 1000), "ping()").map(drop).map_err(text));
        record(troupe_guest::stop("root").map_err(text));
        record(troupe_guest::spawn("no-such-component").start().map(drop).map_err(text));
        record(
            host::spawn(
                "hostile",
                &SpawnOptions {
                    name: Some("bad name!".into()),
                    config: vec![],
                    restart: None,
                    durability: None,
                    supervisor: None,
                    link: false,
                    bindings: vec![],
                    http: None,
                },
            )
            .map(drop)
            .map_err(|e| format!("{e:?}")),
        );
        record(troupe_guest::bind("no:such/iface", BindingTarget::Actor("x".into())).map_err(text));
        record(troupe_guest::monitor("nobody").map(drop).map_err(text));
        record(troupe_guest::ask::<String>("nobody", "ping()").map(drop).map_err(text));
        errors
    }

    fn grow(mib: u32) -> u32 {
        let mut grown = 0;
        for _ in 0..mib {
            let mut block: Vec<u8> = Vec::with_capacity(1 << 20);
            // Reserve, do not touch: memory.grow without committing pages.
            block.push(1);
            // Keep the optimiser from proving the allocation unused.
            std::mem::forget(std::hint::black_box(block));
            grown += 1;
        }
        grown
    }

    fn ping() -> String {
        "pong".into()
    }

    fn tick() {}
}

impl lifecycle::Guest for Hostile {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        PANIC_IN_SNAPSHOT.with(|p| p.set(troupe_guest::config_value(&config, "snapshot") == Some("panic")));
        PANIC_IN_RESTORE.with(|p| p.set(troupe_guest::config_value(&config, "restore") == Some("panic")));
        Ok(())
    }
}

impl persistence::Guest for Hostile {
    fn snapshot() -> State {
        if PANIC_IN_SNAPSHOT.with(Cell::get) {
            panic!("snapshot panics as configured");
        }
        State { version: "hostile/1".into(), bytes: vec![u8::from(PANIC_IN_RESTORE.with(Cell::get))] }
    }

    fn restore(state: State) -> Result<(), String> {
        // The restore flag travels in the state: a fresh instance has not
        // seen `init`.
        if state.bytes.first() == Some(&1) {
            panic!("restore panics as configured");
        }
        Ok(())
    }
}

export!(Hostile);
