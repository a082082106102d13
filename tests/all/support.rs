//! The integration suite's helpers: those it shares with the benchmark
//! suite, kept in `tests/support/` (building the example guests once,
//! making hosts, spawning, asking).

#[path = "../support/mod.rs"]
#[allow(dead_code, reason = "the tests and the benchmarks each use part of the shared helpers")]
mod shared;

pub use shared::*;

/// A component that wit-component builds from `wit` and the core module
/// `wat`, as a guest toolchain would.
pub fn component_from_wit(wit: &str, wat: impl AsRef<str>) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_source("test.wit", wit).unwrap();
    let world = resolve.select_world(&[package], None).unwrap();
    let mut module = wat::parse_str(wat.as_ref()).unwrap();
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8).unwrap();
    wit_component::ComponentEncoder::default().module(&module).unwrap().validate(true).encode().unwrap()
}
