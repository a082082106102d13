//! A stateful counter actor: the protocol `example:counter/api` plus
//! `init` (start value from config) and snapshot/restore (so it keeps its
//! value across a restart or a hot swap).
//!
//! Snapshot encoding, shared by every language's counter: version
//! `counter/1`, the value as 8 little-endian bytes.

wit_bindgen::generate!({
    path: ["../../../wit", "../../wit/counter"],
    world: "example:counter/counter",
    with: {
        "troupe:actor/host@0.2.0": troupe_guest::bindings::troupe::actor::host,
        "troupe:actor/types@0.2.0": troupe_guest::bindings::troupe::actor::types,
    },
});

use std::cell::Cell;

use exports::example::counter::api;
use exports::troupe::actor::{lifecycle, persistence};
use troupe_guest::State;

/// The snapshot format version this code writes and reads.
const STATE_VERSION: &str = "counter/1";

thread_local! {
    static VALUE: Cell<u64> = const { Cell::new(0) };
}

struct Counter;

impl api::Guest for Counter {
    fn incr(by: u64) -> u64 {
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

impl persistence::Guest for Counter {
    fn snapshot() -> State {
        State { version: STATE_VERSION.into(), bytes: VALUE.with(Cell::get).to_le_bytes().to_vec() }
    }

    fn restore(state: State) -> Result<(), String> {
        if state.version != STATE_VERSION {
            return Err(format!("unknown state version `{}` (expected `{STATE_VERSION}`)", state.version));
        }
        let bytes: [u8; 8] = state
            .bytes
            .as_slice()
            .try_into()
            .map_err(|_| format!("state has {} bytes, expected 8", state.bytes.len()))?;
        VALUE.with(|v| v.set(u64::from_le_bytes(bytes)));
        Ok(())
    }
}

export!(Counter);
