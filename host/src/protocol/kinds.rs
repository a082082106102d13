//! Protocols for tests: one with every kind of WIT type, for the value
//! mappings (`json.rs`, `wire.rs`), and the protocol of any WIT world and
//! core module (`parse.rs`).

use std::sync::OnceLock;

use wasmtime::component::Component;
use wit_parser::abi::{AbiVariant, WasmType};

use super::Protocol;

/// Every kind of WIT type, in the parameters of `acme:kinds/api`.
pub(super) const WIT: &str = "package acme:kinds@0.1.0;
    interface res { resource counter; }
    interface api {
      use res.{counter};
      record address { street: string, city: string }
      record user { name: string, age: u8, tags: list<string>, home: option<address>, nick: option<string> }
      enum color { red, green, blue }
      flags perms { read, write, exec }
      variant shape { dot, circle(u32), label(string), maybe(option<u8>) }
      integers: func(a: s8, b: u8, c: s16, d: u16, e: s32, f: u32, g: s64, h: u64);
      floats: func(x: f32, y: f64);
      text: func(b: bool, c: char, s: string);
      greet: func(u: user) -> string;
      group: func(people: list<user>);
      bytes: func(data: list<u8>) -> list<u8>;
      pair: func(t: tuple<u32, string, bool>);
      nested: func(o: option<option<u32>>, deep: option<option<option<string>>>);
      outcome: func(r: result<u32, string>, bare: result, only-ok: result<string>, only-err: result<_, string>);
      paint: func(c: color, s: shape, p: perms);
      tick: func();
      lookup: func(key: string, fallback: option<u32>) -> option<user>;
      hold: func(c: borrow<counter>);
    }
    world w { export api; }";

/// The protocol of a component exporting [`WIT`]'s `api`, whose
/// functions do nothing: only their types matter here. Its core module
/// is written from each function's lowered signature.
pub(super) fn protocol() -> &'static Protocol {
    static PROTOCOL: OnceLock<Protocol> = OnceLock::new();
    PROTOCOL.get_or_init(|| {
        let mut resolve = wit_parser::Resolve::default();
        let package = resolve.push_source("kinds.wit", WIT).unwrap();
        let world = resolve.select_world(&[package], None).unwrap();
        let core = |ty: &WasmType| match ty {
            WasmType::I64 | WasmType::PointerOrI64 => "i64",
            WasmType::F32 => "f32",
            WasmType::F64 => "f64",
            WasmType::I32 | WasmType::Pointer | WasmType::Length => "i32",
        };
        let mut wat = String::from(
            r#"(module (memory (export "memory") 1)
               (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8)"#,
        );
        for (key, item) in &resolve.worlds[world].exports {
            let wit_parser::WorldItem::Interface { id, .. } = item else { continue };
            let interface = resolve.name_world_key(key);
            for func in resolve.interfaces[*id].functions.values() {
                let signature = resolve.wasm_signature(AbiVariant::GuestExport, func);
                let params: Vec<&str> = signature.params.iter().map(core).collect();
                let results: Vec<&str> = signature.results.iter().map(core).collect();
                let zeros: Vec<String> = results.iter().map(|ty| format!("{ty}.const 0")).collect();
                wat.push_str(&format!(
                    r#"(func (export "{interface}#{}") (param {}) (result {}) {})"#,
                    func.name,
                    params.join(" "),
                    results.join(" "),
                    zeros.join(" ")
                ));
            }
        }
        wat.push(')');
        protocol_of(WIT, &wat)
    })
}

/// The protocol of the component made of the core module `wat` and the
/// world of the WIT package `wit`: what the tests of messages read types
/// from, as a toolchain would build it.
pub(super) fn protocol_of(wit: &str, wat: &str) -> Protocol {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_source("test.wit", wit).unwrap();
    let world = resolve.select_world(&[package], None).unwrap();
    let mut module = wat::parse_str(wat).unwrap();
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8).unwrap();
    let bytes = wit_component::ComponentEncoder::default().module(&module).unwrap().encode().unwrap();
    let engine = wasmtime::Engine::default();
    let component = Component::new(&engine, &bytes).unwrap();
    Protocol::of(&component, &engine).unwrap()
}
