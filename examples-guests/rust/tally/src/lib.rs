//! A tally: calls `incr` on a counter through the imported
//! `example:counter/api` — the same typed function the counter exports —
//! bound to one counter or to a group of them behind a router.

wit_bindgen::generate!({
    path: ["../../../wit", "../../wit/counter", "../../wit/tally"],
    world: "example:tally/tally",
    with: {
        "troupe:actor/host@0.2.0": troupe_guest::bindings::troupe::actor::host,
        "troupe:actor/types@0.2.0": troupe_guest::bindings::troupe::actor::types,
        "example:counter/api@0.1.0": generate,
    },
});

use example::counter::api as counter;
use exports::example::tally::api;
use troupe_guest::bindings::troupe::actor::types::BindingTarget;

struct Tally;

impl api::Guest for Tally {
    fn add(by: u64) -> u64 {
        counter::incr(by)
    }

    fn spread(n: u32, by: u64) -> Vec<u64> {
        (0..n).map(|_| counter::incr(by)).collect()
    }

    fn reset_all() {
        counter::reset();
    }

    fn use_counter(address: String) -> Result<(), String> {
        troupe_guest::bind("example:counter/api", BindingTarget::Actor(address)).map_err(|e| e.to_string())
    }

    fn adopt_counter() -> Result<String, String> {
        let child = troupe_guest::spawn("counter").start().map_err(|e| e.to_string())?;
        Self::use_counter(child.clone())?;
        Ok(child)
    }
}

export!(Tally);
