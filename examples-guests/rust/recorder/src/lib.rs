//! A recorder: every `note()` reads the wall clock and asks the actor
//! named by its `to` config `get()`, and keeps both. What it keeps depends
//! on the world outside it, so a durable recorder that journals between
//! snapshots shows that a replay sees what the message saw the first
//! time, not what the clock and the other actor say now.

wit_bindgen::generate!({
    path: ["../../../wit", "../../wit/recorder"],
    world: "example:recorder/recorder",
    with: {
        "troupe:actor/host@0.2.0": troupe_guest::bindings::troupe::actor::host,
        "troupe:actor/types@0.2.0": troupe_guest::bindings::troupe::actor::types,
    },
});

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use exports::example::recorder::api;
use exports::troupe::actor::{lifecycle, persistence};
use troupe_guest::State;

/// The snapshot format version this code writes and reads.
const STATE_VERSION: &str = "recorder/1";

thread_local! {
    static NOTES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static TARGET: RefCell<String> = const { RefCell::new(String::new()) };
    static CONFIG: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

struct Recorder;

impl api::Guest for Recorder {
    fn note() {
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let to = TARGET.with(|t| t.borrow().clone());
        let answer = troupe_guest::ask::<u64>(&to, "get()").map_or_else(|e| format!("error {e}"), |n| n.to_string());
        NOTES.with(|notes| notes.borrow_mut().push(format!("{millis}:{answer}")));
    }

    fn notes() -> String {
        NOTES.with(|notes| notes.borrow().join(","))
    }

    fn config_value(key: String) -> Option<String> {
        CONFIG.with(|config| troupe_guest::config_value(&config.borrow(), &key).map(str::to_string))
    }
}

impl lifecycle::Guest for Recorder {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        // Without `to`, `note()` has no one to ask and notes the error.
        let to = troupe_guest::config_value(&config, "to").unwrap_or_default();
        TARGET.with(|t| *t.borrow_mut() = to.to_string());
        CONFIG.with(|c| *c.borrow_mut() = config);
        Ok(())
    }
}

impl persistence::Guest for Recorder {
    fn snapshot() -> State {
        let text = format!("{}\n{}", TARGET.with(|t| t.borrow().clone()), Self::notes_text());
        State { version: STATE_VERSION.into(), bytes: text.into_bytes() }
    }

    fn restore(state: State) -> Result<(), String> {
        if state.version != STATE_VERSION {
            return Err(format!("unknown state version `{}` (expected `{STATE_VERSION}`)", state.version));
        }
        let text = String::from_utf8(state.bytes).map_err(|_| "the state is not UTF-8")?;
        let (target, notes) = text.split_once('\n').ok_or("the state lacks the target's address")?;
        TARGET.with(|t| *t.borrow_mut() = target.to_string());
        let notes = notes.split(',').filter(|n| !n.is_empty()).map(str::to_string).collect();
        NOTES.with(|n| *n.borrow_mut() = notes);
        Ok(())
    }
}

impl Recorder {
    fn notes_text() -> String {
        <Recorder as api::Guest>::notes()
    }
}

export!(Recorder);
