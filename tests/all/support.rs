//! The integration suite's helpers: those it shares with the benchmark
//! suite, kept in `tests/support/` (building the example guests once,
//! making hosts, spawning, asking).

#[path = "../support/mod.rs"]
#[allow(dead_code, reason = "the tests and the benchmarks each use part of the shared helpers")]
mod shared;

pub use shared::*;
