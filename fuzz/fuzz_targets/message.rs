//! Arbitrary text as a message for every example protocol: refused, or
//! type-checked and round-tripping through WAVE.
#![no_main]

use std::sync::OnceLock;

use troupe::protocol::Protocol;

fn protocols() -> &'static Vec<Protocol> {
    static PROTOCOLS: OnceLock<Vec<Protocol>> = OnceLock::new();
    PROTOCOLS.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _guard = runtime.enter();
        let host = troupe::Host::new(Default::default()).unwrap();
        let build = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples-guests/build");
        ["counter", "chat-member", "chain-node", "probe", "tally", "hostile", "counter-v2"]
            .iter()
            .map(|g| host.load(g, format!("{build}/{g}.wasm").as_ref(), None).expect("run scripts/build-guests first"))
            .map(|c| c.protocol().clone())
            .collect()
    })
}

libfuzzer_sys::fuzz_target!(|input: (u8, &str)| {
    let protocols = protocols();
    let protocol = &protocols[input.0 as usize % protocols.len()];
    troupe::fuzzing::message(protocol, input.1, 1 << 20);
});
