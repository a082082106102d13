//! A deliberately faulty actor. Each function misbehaves in one way so that
//! the tests and the demo can show troupe containing it: an endless loop, a
//! memory bomb, a panic, unbounded recursion, an oversized reply. `ping`
//! shows it is alive again afterwards.
//!
//! Config: `fail-init = "true"` makes `init` fail; `panic-init = "true"`
//! makes it panic.

wit_bindgen::generate!({
    path: ["../../../wit", "../../wit/faulty"],
    world: "example:faulty/faulty",
    with: {
        "troupe:actor/host@0.2.0": troupe_guest::bindings::troupe::actor::host,
        "troupe:actor/types@0.2.0": troupe_guest::bindings::troupe::actor::types,
    },
});

use std::cell::{Cell, RefCell};

use exports::example::faulty::api;
use exports::troupe::actor::{lifecycle, shutdown};

thread_local! {
    static SPIN_ON_STOP: Cell<bool> = const { Cell::new(false) };
    static PINGS: Cell<u32> = const { Cell::new(0) };
    static HOARD: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

struct Faulty;

impl api::Guest for Faulty {
    fn spin() {
        let mut x: u64 = 0;
        loop {
            // `black_box` keeps the optimiser from proving the loop empty.
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    fn bomb(mib: u32) -> u32 {
        let mut touched = 0;
        for _ in 0..mib {
            // Touch every page so the memory is really committed.
            let block = vec![0xA5u8; 1 << 20];
            HOARD.with(|h| h.borrow_mut().push(block));
            touched += 1;
        }
        touched
    }

    fn panic(message: String) {
        panic!("{message}");
    }

    fn recurse(depth: u32) -> u32 {
        // Plain integer recursion lives on the wasm stack (not Rust's
        // shadow stack in linear memory), so a deep one overflows it.
        #[inline(never)]
        fn down(n: u32) -> u32 {
            if n == 0 {
                return 0;
            }
            std::hint::black_box(down(std::hint::black_box(n - 1))).wrapping_add(1)
        }
        down(depth)
    }

    fn work(rounds: u32) -> u32 {
        let mut x: u64 = 0;
        for _ in 0..u64::from(rounds) * 1_000_000 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        std::hint::black_box(x);
        rounds
    }

    fn ping() -> u32 {
        PINGS.with(|p| {
            p.set(p.get() + 1);
            p.get()
        })
    }

    fn big_reply(bytes: u32) -> String {
        "x".repeat(bytes as usize)
    }

    fn echo(text: String) -> String {
        text
    }
}

impl lifecycle::Guest for Faulty {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        if troupe_guest::config_value(&config, "panic-init") == Some("true") {
            panic!("init panicked as configured");
        }
        if troupe_guest::config_value(&config, "fail-init") == Some("true") {
            return Err("init failed as configured (fail-init = true)".into());
        }
        SPIN_ON_STOP.with(|s| s.set(troupe_guest::config_value(&config, "spin-on-stop") == Some("true")));
        Ok(())
    }
}

impl shutdown::Guest for Faulty {
    fn stop() {
        if SPIN_ON_STOP.with(Cell::get) {
            <Faulty as api::Guest>::spin();
        }
    }
}

export!(Faulty);
