//! A blob: a count inside a state of settable size (`resize`, or the
//! `bytes` config handed to `init`). Each `bump` changes the count only,
//! so a durable blob's commit costs what its size costs; the count is
//! written at both ends of the state and the filler between follows a
//! fixed pattern, so `restore` can tell a whole state from a torn one.

wit_bindgen::generate!({
    path: ["../../../wit", "../../wit/blob"],
    world: "example:blob/blob",
    with: {
        "troupe:actor/host@0.2.0": troupe_guest::bindings::troupe::actor::host,
        "troupe:actor/types@0.2.0": troupe_guest::bindings::troupe::actor::types,
    },
});

use std::cell::RefCell;

use exports::example::blob::api;
use exports::troupe::actor::{lifecycle, persistence};
use troupe_guest::State;

/// The snapshot format version this code writes and reads.
const STATE_VERSION: &str = "blob/1";

/// The smallest state: the count at each end.
const MIN_BYTES: usize = 16;

thread_local! {
    static STATE: RefCell<Vec<u8>> = RefCell::new(filled(MIN_BYTES, 0));
}

/// A state of `len` bytes holding `count`.
fn filled(len: usize, count: u64) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len.max(MIN_BYTES)).map(|i| (i % 251) as u8).collect();
    write_count(&mut bytes, count);
    bytes
}

fn write_count(bytes: &mut [u8], count: u64) {
    let len = bytes.len();
    bytes[..8].copy_from_slice(&count.to_le_bytes());
    bytes[len - 8..].copy_from_slice(&count.to_le_bytes());
}

fn read_count(bytes: &[u8]) -> u64 {
    let mut head = [0; 8];
    head.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(head)
}

/// Why `bytes` is not a state this code wrote, if it is not.
fn check(bytes: &[u8]) -> Result<(), String> {
    let len = bytes.len();
    if len < MIN_BYTES {
        return Err(format!("state has {len} bytes, expected at least {MIN_BYTES}"));
    }
    if bytes[..8] != bytes[len - 8..] {
        return Err("the counts at the two ends of the state differ".into());
    }
    match (8..len - 8).find(|&i| bytes[i] != (i % 251) as u8) {
        Some(i) => Err(format!("the filler is wrong at byte {i}")),
        None => Ok(()),
    }
}

struct Blob;

impl api::Guest for Blob {
    fn resize(bytes: u32) -> u32 {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            *s = filled(bytes as usize, read_count(&s));
            s.len() as u32
        })
    }

    fn bump() -> u64 {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            let next = read_count(&s) + 1;
            write_count(&mut s, next);
            next
        })
    }

    fn count() -> u64 {
        STATE.with(|s| read_count(&s.borrow()))
    }

    fn size() -> u32 {
        STATE.with(|s| s.borrow().len() as u32)
    }
}

impl lifecycle::Guest for Blob {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let bytes = match troupe_guest::config_value(&config, "bytes") {
            Some(s) => s.parse::<usize>().map_err(|e| format!("config `bytes` = {s:?}: {e}"))?,
            None => MIN_BYTES,
        };
        STATE.with(|s| *s.borrow_mut() = filled(bytes, 0));
        Ok(())
    }
}

impl persistence::Guest for Blob {
    fn snapshot() -> State {
        State { version: STATE_VERSION.into(), bytes: STATE.with(|s| s.borrow().clone()) }
    }

    fn restore(state: State) -> Result<(), String> {
        if state.version != STATE_VERSION {
            return Err(format!("unknown state version `{}` (expected `{STATE_VERSION}`)", state.version));
        }
        check(&state.bytes)?;
        STATE.with(|s| *s.borrow_mut() = state.bytes);
        Ok(())
    }
}

export!(Blob);
