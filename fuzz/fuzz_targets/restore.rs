//! Arbitrary states restored into running counters: restored or refused,
//! and the actor answers afterwards.
#![no_main]

use std::sync::OnceLock;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    host: troupe::Host,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let host = runtime.block_on(async {
            let host = troupe::Host::new(Default::default()).unwrap();
            let build = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples-guests/build");
            for g in ["counter", "counter-v2"] {
                let c = host.load(g, format!("{build}/{g}.wasm").as_ref(), None).expect("run scripts/build-guests first");
                host.spawn(troupe::ActorTemplate::new(c).spec(g.into())).await.unwrap();
            }
            host
        });
        Fixture { runtime, host }
    })
}

libfuzzer_sys::fuzz_target!(|input: (bool, String, Vec<u8>)| {
    let f = fixture();
    let (target, probe) = if input.0 { ("counter", "get()") } else { ("counter-v2", "increments()") };
    f.runtime.block_on(troupe::fuzzing::restore(&f.host, target, input.1, input.2, probe));
});
