//! A forwarder: every `forward(n)` tells the actor named by its `to`
//! config `incr(n)`, and counts itself. Durable, it shows that the tells a
//! durable actor makes take effect once, even when a crash makes it handle
//! a message again.

wit_bindgen::generate!({
    path: ["../../../wit", "../../wit/forwarder"],
    world: "example:forwarder/forwarder",
    with: {
        "troupe:actor/host@0.2.0": troupe_guest::bindings::troupe::actor::host,
        "troupe:actor/types@0.2.0": troupe_guest::bindings::troupe::actor::types,
    },
});

use std::cell::{Cell, RefCell};

use exports::example::forwarder::api;
use exports::troupe::actor::{lifecycle, persistence};
use troupe_guest::State;

/// The snapshot format version this code writes and reads.
const STATE_VERSION: &str = "forwarder/1";

thread_local! {
    static FORWARDED: Cell<u64> = const { Cell::new(0) };
    static TARGET: RefCell<String> = const { RefCell::new(String::new()) };
}

struct Forwarder;

impl api::Guest for Forwarder {
    fn forward(n: u64) {
        let to = TARGET.with(|t| t.borrow().clone());
        // A refused tell fails the message: it is then not counted either.
        troupe_guest::tell(&to, format!("incr({n})")).expect("the target takes the tell");
        FORWARDED.with(|f| f.set(f.get() + 1));
    }

    fn forwarded() -> u64 {
        FORWARDED.with(Cell::get)
    }

    fn spawn_then_ask(target: String, message: String) -> String {
        let child = troupe_guest::spawn("counter").durable().start().expect("the child starts");
        let _ = troupe_guest::ask_raw(&target, message.as_str(), std::time::Duration::from_secs(10));
        child
    }

    fn forward_later(n: u64, delay_ms: u32) {
        let delay = std::time::Duration::from_millis(delay_ms.into());
        troupe_guest::send_after(delay, format!("forward({n})")).expect("the timer is set");
    }
}

impl lifecycle::Guest for Forwarder {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let to = troupe_guest::config_value(&config, "to").ok_or("config `to` (the target's address) is missing")?;
        TARGET.with(|t| *t.borrow_mut() = to.to_string());
        Ok(())
    }
}

impl persistence::Guest for Forwarder {
    fn snapshot() -> State {
        let mut bytes = FORWARDED.with(Cell::get).to_le_bytes().to_vec();
        TARGET.with(|t| bytes.extend_from_slice(t.borrow().as_bytes()));
        State { version: STATE_VERSION.into(), bytes }
    }

    fn restore(state: State) -> Result<(), String> {
        if state.version != STATE_VERSION {
            return Err(format!("unknown state version `{}` (expected `{STATE_VERSION}`)", state.version));
        }
        let (count, target) = state.bytes.split_at_checked(8).ok_or("state shorter than 8 bytes")?;
        let count: [u8; 8] = count.try_into().map_err(|_| "state shorter than 8 bytes")?;
        let target = String::from_utf8(target.to_vec()).map_err(|_| "the target's address is not UTF-8")?;
        FORWARDED.with(|f| f.set(u64::from_le_bytes(count)));
        TARGET.with(|t| *t.borrow_mut() = target);
        Ok(())
    }
}

export!(Forwarder);
