//! Arbitrary bytes given batch entry points: declined, or a valid
//! component that still exports what it did.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| troupe::fuzzing::batch_entries(bytes));
