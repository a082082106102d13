//! Version 2 of the counter, to show a hot swap with a state migration:
//! it adds `increments()` and writes state layout `counter/2` (value and
//! increments, 16 little-endian bytes), and migrates `counter/1` (the
//! value, 8 bytes) in `restore` — the role of Erlang's `code_change`.
//!
//! Two deliberately broken builds serve the rollback tests: feature
//! `broken-restore` refuses every state, `broken-incr` panics on `incr`.

wit_bindgen::generate!({
    path: ["../../../wit", "../../wit/counter-v2"],
    world: "example:counter/counter",
    with: {
        "troupe:actor/types@0.2.0": troupe_guest::bindings::troupe::actor::types,
    },
});

use std::cell::Cell;

use exports::example::counter::api;
use exports::troupe::actor::{lifecycle, persistence};
use troupe_guest::State;

thread_local! {
    static VALUE: Cell<u64> = const { Cell::new(0) };
    static INCREMENTS: Cell<u64> = const { Cell::new(0) };
}

struct Counter;

impl api::Guest for Counter {
    fn incr(by: u64) -> u64 {
        if cfg!(feature = "broken-incr") {
            panic!("this build of counter v2 is broken on purpose");
        }
        INCREMENTS.with(|i| i.set(i.get() + 1));
        VALUE.with(|v| {
            let next = v.get().checked_add(by).expect("counter overflow");
            v.set(next);
            next
        })
    }

    fn get() -> u64 {
        VALUE.with(Cell::get)
    }

    fn reset() {
        VALUE.with(|v| v.set(0));
    }

    fn increments() -> u64 {
        INCREMENTS.with(Cell::get)
    }
}

impl lifecycle::Guest for Counter {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let start = match troupe_guest::config_value(&config, "start") {
            Some(s) => s.parse::<u64>().map_err(|e| format!("config `start` = {s:?}: {e}"))?,
            None => 0,
        };
        VALUE.with(|v| v.set(start));
        Ok(())
    }
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

impl persistence::Guest for Counter {
    fn snapshot() -> State {
        let mut bytes = VALUE.with(Cell::get).to_le_bytes().to_vec();
        bytes.extend_from_slice(&INCREMENTS.with(Cell::get).to_le_bytes());
        State { version: "counter/2".into(), bytes }
    }

    fn restore(state: State) -> Result<(), String> {
        if cfg!(feature = "broken-restore") {
            return Err("this build of counter v2 cannot restore anything".into());
        }
        let (value, increments) = match (state.version.as_str(), state.bytes.len()) {
            // The migration from version 1: no increments were counted.
            ("counter/1", 8) => (u64_at(&state.bytes, 0), Some(0)),
            ("counter/2", 16) => (u64_at(&state.bytes, 0), u64_at(&state.bytes, 8)),
            (version, len) => return Err(format!("cannot read state `{version}` of {len} bytes")),
        };
        VALUE.with(|v| v.set(value.unwrap_or_default()));
        INCREMENTS.with(|i| i.set(increments.unwrap_or_default()));
        Ok(())
    }
}

export!(Counter);
