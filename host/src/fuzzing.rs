//! Oracles for fuzzers: each takes arbitrary input and checks an invariant
//! of the host, panicking only when the invariant breaks (a bug).
//!
//! The `cargo fuzz` targets in `fuzz/` are thin shims over these, and the
//! integration suite runs them over a few thousand generated inputs as a
//! smoke test (`tests/all/fuzz.rs`).

use std::path::Path;

use crate::actor::{Snapshot, SwapError};
use crate::batch;
use crate::host::Host;
use crate::manifest::Manifest;
use crate::protocol::{MessageError, Protocol};

/// Parsing any text as a manifest either succeeds or fails with an error
/// whose location lies within the text; it never panics.
pub fn manifest(text: &str) {
    match Manifest::parse(Path::new("/fuzz/manifest.toml"), text) {
        Ok(_) => {}
        Err(e) => {
            if let Some((line, col)) = e.location {
                let lines = text.split('\n').count();
                assert!(line >= 1 && line <= lines, "line {line} outside 1..={lines}: {e}");
                assert!(col >= 1, "column {col}: {e}");
            }
            assert!(!e.message.is_empty(), "an error says something");
        }
    }
}

/// Adding batch entry points to any bytes never panics. For a valid
/// component it either declines (the component then runs as it is) or
/// yields a valid component that exports everything the input exports,
/// and the entry points besides.
pub fn batch_entries(bytes: &[u8]) {
    let extended = batch::compose(bytes, true).map(|composed| composed.map(|c| c.bytes));
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    if validator.validate_all(bytes).is_err() {
        return;
    }
    let Ok(Some(extended)) = extended else { return };
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    if let Err(e) = validator.validate_all(&extended) {
        panic!("batch entry points made a valid component invalid: {e}");
    }
    let exports = |bytes: &[u8]| -> Vec<String> {
        let Ok(wit_parser::decoding::DecodedWasm::Component(resolve, world)) = wit_parser::decoding::decode(bytes)
        else {
            panic!("a valid component decodes");
        };
        resolve.worlds[world].exports.keys().map(|key| resolve.name_world_key(key)).collect()
    };
    let after = exports(&extended);
    for name in exports(bytes) {
        assert!(after.contains(&name), "`{name}` is no longer exported");
    }
    assert!(after.iter().any(|name| name == batch::DELIVER_INTERFACE), "no entry points");
}

/// Parsing any text as a message for `protocol` either fails with a
/// [`MessageError`], or yields arguments of exactly the function's types
/// whose WAVE rendering parses back to the same call.
pub fn message(protocol: &Protocol, text: &str, max_bytes: u64) {
    let call = match protocol.parse(text, max_bytes) {
        Ok(call) => call,
        Err(MessageError::TooLarge { size, limit }) => {
            assert!(size > limit && size == text.len() as u64);
            return;
        }
        Err(_) => return,
    };
    protocol.check(call.func, &call.args).expect("a parsed message type-checks");
    let rendered = call.to_wave(protocol);
    let again = protocol.parse(&rendered, u64::MAX).unwrap_or_else(|e| panic!("`{rendered}` does not parse back: {e}"));
    assert_eq!(again.func, call.func, "`{rendered}`");
    // `Val`'s equality counts NaN equal to NaN, as WAVE round trips need.
    assert_eq!(again.args, call.args, "`{rendered}` changed on the way back");
}

/// Restoring any state into the actor at `address` either works or is
/// refused as a start failure of the new instance — and either way the
/// actor answers `probe` afterwards.
pub async fn restore(host: &Host, address: &str, version: String, bytes: Vec<u8>, probe: &str) {
    match host.restore(address, Snapshot { version, bytes }).await {
        Ok(_) | Err(SwapError::Start { .. }) => {}
        Err(other) => panic!("restoring arbitrary state must succeed or be refused, not: {other}"),
    }
    let answer = host.ask(address, probe, std::time::Duration::from_secs(10)).await;
    assert!(answer.is_ok(), "the actor answers after a restore attempt: {answer:?}");
}
