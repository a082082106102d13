//! A counter whose protocol is incompatible with `example:counter`'s: `incr`
//! takes a `u32` and `reset` is gone. Swapping a counter to it must be
//! refused, with the difference spelled out.

wit_bindgen::generate!({
    path: "../../wit/counter-narrow",
    world: "example:counter/counter",
});

use std::cell::Cell;

use exports::example::counter::api;

thread_local! {
    static VALUE: Cell<u64> = const { Cell::new(0) };
}

struct Counter;

impl api::Guest for Counter {
    fn incr(by: u32) -> u64 {
        VALUE.with(|v| {
            v.set(v.get() + u64::from(by));
            v.get()
        })
    }

    fn get() -> u64 {
        VALUE.with(Cell::get)
    }
}

export!(Counter);
