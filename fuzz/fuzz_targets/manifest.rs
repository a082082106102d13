//! Arbitrary text as a manifest: parsed or refused with a located error.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| troupe::fuzzing::manifest(text));
