//! The composed component: the actor's component and the adapter as
//! siblings in a new outer component that imports what the actor's
//! imports and exports what it exports, plus the adapter's entry points
//! and, in a custom section, their [`Layout`].

use wasm_encoder::{
    ComponentExportKind, ComponentExportSection, ComponentImportSection, ComponentInstanceSection, ComponentSectionId,
    ComponentTypeRef, ComponentTypeSection, CustomSection, InstanceType, RawSection,
};
use wit_parser::decoding::DecodedWasm;

use super::layout::{LAYOUT_SECTION, Layout};
use super::{DELIVER_INTERFACE, PROGRESS_FUNCTION, PROGRESS_INTERFACE, adapter, plan};

/// A component composed with its batch adapter.
#[derive(Debug, Clone)]
pub struct Composed {
    /// The composed component, its layout in a custom section.
    pub bytes: Vec<u8>,
    /// The layout the generator wrote into it.
    pub layout: Layout,
}

/// `component` composed with a generated adapter that adds
/// [`DELIVER_INTERFACE`], or `Ok(None)` when it has no function an entry
/// point can serve. With `memory`, functions whose arguments travel in
/// memory get entry points too, and the adapter a memory of its own.
///
/// # Errors
///
/// A description of what did not fit, for a component this cannot
/// extend; the caller runs the component unchanged.
pub fn compose(component: &[u8], memory: bool) -> Result<Option<Composed>, String> {
    let DecodedWasm::Component(mut resolve, world) = wit_parser::decoding::decode(component).map_err(err)? else {
        return Ok(None);
    };
    let Some(plan) = plan::plan(&resolve, world, memory)? else {
        return Ok(None);
    };
    let adapter_world = {
        let package = resolve.push_source("troupe-batch.wit", &adapter::adapter_wit(&plan)).map_err(err)?;
        resolve.select_world(&[package], Some("adapter")).map_err(err)?
    };
    let mut core = adapter::adapter_module(&plan);
    wit_component::embed_component_metadata(&mut core, &resolve, adapter_world, wit_component::StringEncoding::UTF8)
        .map_err(err)?;
    let adapter = wit_component::ComponentEncoder::default().module(&core).map_err(err)?.encode().map_err(err)?;

    let adapter_imports: Vec<String> = resolve.worlds[adapter_world]
        .imports
        .keys()
        .map(|key| resolve.name_world_key(key))
        .filter(|name| name != PROGRESS_INTERFACE)
        .collect();
    let layout = plan.layout();
    let bytes = wrap(component, &adapter, &adapter_imports, &layout)?;
    Ok(Some(Composed { bytes, layout }))
}

/// What [`wrap`] needs to know of the component's top level.
struct Outline<'a> {
    /// Its leading type, import and alias sections (id and contents):
    /// every import is declared there, so copied to the wrapper's top
    /// they declare the same imports with the same types and indices.
    preamble: Vec<(u8, &'a [u8])>,
    /// Its imports: name, kind, index.
    imports: Vec<(String, ComponentExportKind, u32)>,
    /// Its exports: name and kind.
    exports: Vec<(String, ComponentExportKind)>,
    /// The sizes of the index spaces the preamble defines.
    counts: Counts,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    types: u32,
    funcs: u32,
    instances: u32,
    components: u32,
    values: u32,
    modules: u32,
}

impl Counts {
    /// Takes the next index of `kind`.
    fn next(&mut self, kind: ComponentExportKind) -> u32 {
        let space = match kind {
            ComponentExportKind::Type => &mut self.types,
            ComponentExportKind::Func => &mut self.funcs,
            ComponentExportKind::Instance => &mut self.instances,
            ComponentExportKind::Component => &mut self.components,
            ComponentExportKind::Value => &mut self.values,
            ComponentExportKind::Module => &mut self.modules,
        };
        *space += 1;
        *space - 1
    }
}

fn kind_of(kind: wasmparser::ComponentExternalKind) -> ComponentExportKind {
    use wasmparser::ComponentExternalKind as K;
    match kind {
        K::Module => ComponentExportKind::Module,
        K::Func => ComponentExportKind::Func,
        K::Value => ComponentExportKind::Value,
        K::Type => ComponentExportKind::Type,
        K::Instance => ComponentExportKind::Instance,
        K::Component => ComponentExportKind::Component,
    }
}

fn outline(component: &[u8]) -> Result<Outline<'_>, String> {
    use wasmparser::{Chunk, ComponentAlias, ComponentTypeRef as Ref, Parser, Payload};
    let mut outline =
        Outline { preamble: Vec::new(), imports: Vec::new(), exports: Vec::new(), counts: Counts::default() };
    let mut in_preamble = true;
    let mut parser = Parser::new(0);
    let mut rest = component;
    loop {
        let Chunk::Parsed { consumed, payload } = parser.parse(rest, true).map_err(err)? else {
            return Err("the component ends early".into());
        };
        rest = &rest[consumed..];
        let section = payload.as_section().map(|(id, range)| (id, &component[range]));
        match payload {
            Payload::Version { .. } => {}
            // The layout section is the host's to write: one the component
            // brings is not copied into the wrapper.
            Payload::CustomSection(custom) if custom.name() == LAYOUT_SECTION => continue,
            Payload::CustomSection(_) => {}
            Payload::ComponentTypeSection(types) if in_preamble => outline.counts.types += types.count(),
            Payload::ComponentImportSection(imports) if in_preamble => {
                for import in imports {
                    let import = import.map_err(err)?;
                    let kind = match import.ty {
                        Ref::Module(_) => ComponentExportKind::Module,
                        Ref::Func(_) => ComponentExportKind::Func,
                        Ref::Value(_) => ComponentExportKind::Value,
                        Ref::Type(_) => ComponentExportKind::Type,
                        Ref::Instance(_) => ComponentExportKind::Instance,
                        Ref::Component(_) => ComponentExportKind::Component,
                    };
                    let index = outline.counts.next(kind);
                    outline.imports.push((import.name.name.to_string(), kind, index));
                }
            }
            Payload::ComponentAliasSection(aliases) if in_preamble => {
                for alias in aliases {
                    match alias.map_err(err)? {
                        ComponentAlias::InstanceExport { kind, .. } => {
                            outline.counts.next(kind_of(kind));
                        }
                        ComponentAlias::Outer { kind: wasmparser::ComponentOuterAliasKind::Type, .. } => {
                            outline.counts.types += 1;
                        }
                        ComponentAlias::Outer { kind: wasmparser::ComponentOuterAliasKind::Component, .. } => {
                            outline.counts.components += 1;
                        }
                        // Core items: no instantiation argument refers to them.
                        _ => {}
                    }
                }
            }
            Payload::CoreTypeSection(_) if in_preamble => {}
            Payload::ComponentImportSection(_) => {
                return Err("it declares imports after other definitions".into());
            }
            Payload::ComponentExportSection(exports) => {
                for export in exports {
                    let export = export.map_err(err)?;
                    outline.exports.push((export.name.name.to_string(), kind_of(export.kind)));
                }
            }
            Payload::ModuleSection { unchecked_range, .. } | Payload::ComponentSection { unchecked_range, .. } => {
                in_preamble = false;
                // Nested modules and components have sections of their own: step over them.
                rest = component.get(unchecked_range.end..).ok_or("a nested section overruns the component")?;
            }
            Payload::End(_) => return Ok(outline),
            _ => in_preamble = false,
        }
        if in_preamble && let Some(section) = section {
            outline.preamble.push(section);
        }
    }
}

/// A new component around `component` and `adapter`: it imports what
/// `component` imports (the same declarations, copied), instantiates
/// both, and exports what `component` exports plus the adapter's
/// [`DELIVER_INTERFACE`], and carries `layout` in a custom section. The
/// two must be siblings: the component model forbids a component to call
/// into its enclosing component, which is on the stack.
fn wrap(component: &[u8], adapter: &[u8], adapter_imports: &[String], layout: &Layout) -> Result<Vec<u8>, String> {
    let outline = outline(component)?;
    if let Some((name, _)) =
        outline.exports.iter().find(|(_, k)| !matches!(k, ComponentExportKind::Instance | ComponentExportKind::Func))
    {
        return Err(format!("it exports `{name}`, which is neither an instance nor a function"));
    }
    let mut counts = outline.counts;
    let mut out = wasm_encoder::Component::new();
    for (id, data) in &outline.preamble {
        out.section(&RawSection { id: *id, data });
    }
    let inner = counts.next(ComponentExportKind::Component);
    out.section(&RawSection { id: ComponentSectionId::Component as u8, data: component });
    let adapter_component = counts.next(ComponentExportKind::Component);
    out.section(&RawSection { id: ComponentSectionId::Component as u8, data: adapter });

    let mut instances = ComponentInstanceSection::new();
    instances.instantiate(inner, outline.imports.iter().map(|(name, kind, index)| (name.as_str(), *kind, *index)));
    out.section(&instances);
    let actor = counts.next(ComponentExportKind::Instance);

    let mut progress_type = InstanceType::new();
    progress_type
        .ty()
        .function()
        .params(std::iter::empty::<(&str, wasm_encoder::ComponentValType)>())
        .result(Some(wasm_encoder::ComponentValType::Primitive(wasm_encoder::PrimitiveValType::Bool)));
    progress_type.export(PROGRESS_FUNCTION, ComponentTypeRef::Func(0));
    let mut types = ComponentTypeSection::new();
    types.instance(&progress_type);
    out.section(&types);
    let mut import = ComponentImportSection::new();
    import.import(PROGRESS_INTERFACE, ComponentTypeRef::Instance(counts.next(ComponentExportKind::Type)));
    out.section(&import);
    let progress = counts.next(ComponentExportKind::Instance);

    let mut aliases = wasm_encoder::ComponentAliasSection::new();
    let mut args = Vec::new();
    for name in adapter_imports {
        if outline.exports.iter().any(|(n, k)| n == name && *k == ComponentExportKind::Instance) {
            aliases.alias(wasm_encoder::Alias::InstanceExport {
                instance: actor,
                kind: ComponentExportKind::Instance,
                name,
            });
            args.push((name.as_str(), ComponentExportKind::Instance, counts.next(ComponentExportKind::Instance)));
        } else if let Some((_, _, index)) =
            outline.imports.iter().find(|(n, k, _)| n == name && *k == ComponentExportKind::Instance)
        {
            // An interface whose types the protocol uses, which the actor
            // imports: the adapter gets the same instance, so the types are
            // the same types.
            args.push((name.as_str(), ComponentExportKind::Instance, *index));
        } else {
            return Err(format!("the adapter needs `{name}`, which the component neither exports nor imports"));
        }
    }
    args.push((PROGRESS_INTERFACE, ComponentExportKind::Instance, progress));
    out.section(&aliases);
    let mut instances = ComponentInstanceSection::new();
    instances.instantiate(adapter_component, args);
    out.section(&instances);
    let adapter_instance = counts.next(ComponentExportKind::Instance);

    let mut aliases = wasm_encoder::ComponentAliasSection::new();
    let mut exports = ComponentExportSection::new();
    for (name, kind) in &outline.exports {
        aliases.alias(wasm_encoder::Alias::InstanceExport { instance: actor, kind: *kind, name });
        exports.export(name, *kind, counts.next(*kind), None);
    }
    aliases.alias(wasm_encoder::Alias::InstanceExport {
        instance: adapter_instance,
        kind: ComponentExportKind::Instance,
        name: DELIVER_INTERFACE,
    });
    exports.export(DELIVER_INTERFACE, ComponentExportKind::Instance, counts.next(ComponentExportKind::Instance), None);
    out.section(&aliases);
    out.section(&exports);
    out.section(&CustomSection { name: LAYOUT_SECTION.into(), data: layout.encode().into() });
    Ok(out.finish())
}

fn err(e: impl std::fmt::Display) -> String {
    format!("{e:#}")
}

#[cfg(test)]
pub(super) mod tests {
    use wasm_encoder::ComponentSection as _;
    use wit_parser::{Resolve, WorldItem};

    use super::*;
    use crate::batch::{Arguments, FlatResult, FlatType, reserved_name};

    /// A component exporting `acme:x/api` with `add(by: u64) -> u64`
    /// (its arguments travel in registers) and `name(n: string)` (in the
    /// adapter's memory), and a bare function `bare` (not in an interface:
    /// no entry point).
    pub(crate) fn component() -> Vec<u8> {
        wat::parse_str(
            r#"(component
                 (core module $m
                   (memory (export "memory") 1)
                   (func (export "add") (param i64) (result i64) local.get 0)
                   (func (export "name") (param i32 i32))
                   (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 8))
                 (core instance $i (instantiate $m))
                 (alias core export $i "memory" (core memory $mem))
                 (alias core export $i "realloc" (core func $realloc))
                 (func $add (param "by" u64) (result u64) (canon lift (core func $i "add")))
                 (func $name (param "n" string)
                   (canon lift (core func $i "name") (memory $mem) (realloc $realloc)))
                 (instance $api (export "add" (func $add)) (export "name" (func $name)))
                 (export "acme:x/api" (instance $api))
                 (export "bare" (func $add)))"#,
        )
        .expect("the test component parses")
    }

    /// A component built by wit-component from `wit` and a core module in
    /// `wat`, the way guest toolchains build them.
    pub(crate) fn from_wit(wit: &str, wat: &str) -> Vec<u8> {
        let mut resolve = Resolve::default();
        let package = resolve.push_source("test.wit", wit).unwrap();
        let world = resolve.select_world(&[package], None).unwrap();
        let mut module = wat::parse_str(wat).unwrap();
        wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8)
            .unwrap();
        wit_component::ComponentEncoder::default().module(&module).unwrap().validate(true).encode().unwrap()
    }

    /// `composed` is a valid component whose entry points are exactly
    /// those its layout names, serving exactly `functions` of `interface`
    /// with entry points of their own and `called` through the call entry
    /// point; and the layout it carries is the one the generator wrote.
    fn assert_serves(composed: &Composed, interface: &str, functions: &[&str], called: &[&str]) {
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&composed.bytes)
            .expect("the wrapper is a valid component");
        assert_eq!(Layout::read(&composed.bytes).as_ref(), Ok(&composed.layout), "the layout reads back as written");
        let layout = &composed.layout;
        let mut exports = exported_functions(&composed.bytes, DELIVER_INTERFACE);
        exports.sort();
        let mut named: Vec<String> = layout.entries.iter().map(|e| e.export.clone()).collect();
        named.extend(layout.mixed.iter().map(|m| m.export.clone()));
        named.extend(layout.call.iter().map(|c| c.export.clone()));
        named.sort();
        assert_eq!(exports, named, "the entry points are those the layout names");
        assert!(layout.entries.iter().all(|e| e.interface == interface));
        let served: Vec<&str> = layout.entries.iter().map(|e| e.function.as_str()).collect();
        assert_eq!(served, functions);
        let through_call: Vec<&str> =
            layout.call.iter().flat_map(|c| &c.members).map(|m| layout.entries[m.entry].function.as_str()).collect();
        assert_eq!(through_call, called);
    }

    /// The functions of the exported interface `name`, by name.
    fn exported_functions(component: &[u8], name: &str) -> Vec<String> {
        let DecodedWasm::Component(resolve, world) = wit_parser::decoding::decode(component).unwrap() else {
            panic!("a component decodes as one");
        };
        let (_, item) = resolve.worlds[world]
            .exports
            .iter()
            .find(|(key, _)| resolve.name_world_key(key) == name)
            .unwrap_or_else(|| panic!("`{name}` is exported"));
        let WorldItem::Interface { id, .. } = item else { panic!("`{name}` is an interface") };
        resolve.interfaces[*id].functions.keys().cloned().collect()
    }

    #[test]
    fn interface_functions_get_entry_points_and_the_rest_of_the_component_is_unchanged() {
        let original = component();
        let composed = compose(&original, true).unwrap().expect("`add` and `name` can have entry points");
        assert_eq!(exported_functions(&composed.bytes, "acme:x/api"), ["add", "name"]);
        assert_serves(&composed, "acme:x/api", &["add", "name"], &["add"]);
        assert_eq!(reserved_name(&original), None);
        assert_eq!(reserved_name(&composed.bytes).as_deref(), Some(PROGRESS_INTERFACE), "the wrapper imports the hook");
    }

    #[test]
    fn the_layout_says_how_each_entry_point_takes_its_arguments() {
        let composed = compose(&component(), true).unwrap().unwrap();
        let layout = &composed.layout;
        assert_eq!(layout.entries[0].arguments, Arguments::Registers { flat: vec![FlatType::I64] });
        assert_eq!(layout.entries[0].messages, 15);
        assert_eq!(layout.entries[1].arguments, Arguments::Memory);
        assert_eq!(layout.mixed, None, "one function taking registers needs no tags");
        let call = layout.call.as_ref().expect("`add` returns a number");
        assert_eq!((call.members[0].entry, call.members[0].result), (0, FlatResult::U64));
        // Without memory, `name` is left out, and the rest stays.
        let registers = compose(&component(), false).unwrap().unwrap();
        assert_eq!(registers.layout.entries, layout.entries[..1]);
    }

    #[test]
    fn a_layout_section_the_component_brings_is_not_carried_into_the_wrapper() {
        let mut forged = component();
        wasm_encoder::CustomSection { name: LAYOUT_SECTION.into(), data: b"{\"version\": 1}".as_slice().into() }
            .append_to_component(&mut forged);
        // Before any other section: where the wrapper copies sections from.
        let mut early = wasm_encoder::Component::new().finish();
        wasm_encoder::CustomSection { name: LAYOUT_SECTION.into(), data: b"{}".as_slice().into() }
            .append_to_component(&mut early);
        early.extend_from_slice(&component()[8..]);
        for input in [forged, early] {
            let composed = compose(&input, true).unwrap().unwrap();
            assert_eq!(Layout::read(&composed.bytes), Ok(composed.layout), "one layout, the generator's");
        }
    }

    #[test]
    fn a_record_of_the_interface_with_a_string_in_it_goes_through_memory() {
        let component = from_wit(
            "package acme:x@0.1.0;
             interface api {
               record point { name: string, x: u32, tag: tag }
               enum tag { a, b }
               set: func(p: point, label: string);
               count: func(n: u32);
             }
             world w { export api; }",
            r#"(module
                 (memory (export "memory") 1)
                 (func (export "acme:x/api@0.1.0#set") (param i32 i32 i32 i32 i32 i32))
                 (func (export "acme:x/api@0.1.0#count") (param i32))
                 (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8))"#,
        );
        let composed = compose(&component, true).unwrap().expect("both functions are served");
        assert_serves(&composed, "acme:x/api@0.1.0", &["set", "count"], &["count"]);
        let without_memory = compose(&component, false).unwrap().unwrap();
        assert_serves(&without_memory, "acme:x/api@0.1.0", &["count"], &["count"]);
    }

    #[test]
    fn types_of_another_interface_cross_through_an_instance_the_actor_imports() {
        let component = from_wit(
            "package acme:x@0.1.0;
             interface types { record reading { label: string, value: f64 } }
             interface api {
               use types.{reading};
               read: func(sensor: string) -> reading;
               log: func(r: reading, note: option<string>);
             }
             world w { export api; }",
            r#"(module
                 (memory (export "memory") 1)
                 (func (export "acme:x/api@0.1.0#read") (param i32 i32) (result i32) i32.const 16)
                 (func (export "cabi_post_acme:x/api@0.1.0#read") (param i32))
                 (func (export "acme:x/api@0.1.0#log") (param i32 i32 f64 i32 i32 i32))
                 (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8))"#,
        );
        let composed = compose(&component, true).unwrap().expect("`read` and `log` are served");
        assert_serves(&composed, "acme:x/api@0.1.0", &["read", "log"], &[]);
    }

    #[test]
    fn a_component_with_nothing_to_batch_is_left_alone() {
        let bare_only = wat::parse_str(
            r#"(component
                 (core module $m (func (export "f") (param i64) (result i64) local.get 0))
                 (core instance $i (instantiate $m))
                 (func $f (param "by" u64) (result u64) (canon lift (core func $i "f")))
                 (export "f" (func $f)))"#,
        )
        .unwrap();
        assert!(compose(&bare_only, true).unwrap().is_none());
    }

    #[test]
    fn the_mixed_entry_point_joins_argument_types_and_tags_its_members_in_order() {
        let component = from_wit(
            "package acme:x@0.1.0;
             interface api {
               b: func(x: f32);
               a: func(x: u32, y: f32);
               c: func();
               wide: func(x: u32, y: u32, z: u32);
               big: func(x: u64);
             }
             world w { export api; }",
            r#"(module
                 (func (export "acme:x/api@0.1.0#b") (param f32))
                 (func (export "acme:x/api@0.1.0#a") (param i32 f32))
                 (func (export "acme:x/api@0.1.0#c"))
                 (func (export "acme:x/api@0.1.0#wide") (param i32 i32 i32))
                 (func (export "acme:x/api@0.1.0#big") (param i64)))"#,
        );
        let layout = compose(&component, false).unwrap().unwrap().layout;
        let functions: Vec<&str> = layout.entries.iter().map(|e| e.function.as_str()).collect();
        assert_eq!(functions, ["b", "a", "c", "wide", "big"]);
        let mixed = layout.mixed.expect("four functions can share it");
        assert_eq!(mixed.members, [0, 1, 2, 4], "in export order; too wide left out");
        use FlatType::{F32, I64};
        assert_eq!(mixed.joins, [I64, F32], "f32 and u32 and u64 travel as i64; f32 alone as f32");
        assert_eq!(mixed.slots, 5);
    }
}
