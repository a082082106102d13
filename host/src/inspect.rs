//! Describing a component without running it: its exported protocol and
//! its imports in WIT syntax, and what would stop it from being an actor.
//!
//! This reads the component's embedded WIT (every toolchain that produces
//! a component embeds it), so it works for Rust, JavaScript, Python and C
//! components alike, and needs no engine.

use std::fmt::Write as _;

use serde::Serialize;
use wit_parser::decoding::{DecodedWasm, decode};
use wit_parser::{Function, Resolve, Type, WorldId, WorldItem, WorldKey};

use crate::protocol::TROUPE_API_VERSION;

/// What `troupe inspect` reports about a component.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentDescription {
    /// Size in bytes.
    pub size: usize,
    /// Content hash (blake3, 12 hex digits), as `troupe ps` shows it.
    pub hash: String,
    /// Exported interfaces and functions.
    pub exports: Vec<ItemDescription>,
    /// Imported interfaces and functions.
    pub imports: Vec<ItemDescription>,
    /// The protocol functions whose queued tells troupe delivers several
    /// per call (see `troupe::batch`): `iface.func`, and how many
    /// per call.
    pub batched: Vec<(String, usize)>,
    /// Those whose arguments travel in memory, delivered several per call
    /// only with `--batch-delivery all`.
    pub batched_in_memory: Vec<(String, usize)>,
    /// The protocol functions a single message (an ask, a tell with
    /// nothing queued behind it) reaches through the typed call entry
    /// point, which skips converting arguments and results to `Val`s.
    #[serde(default)]
    pub typed: Vec<String>,
    /// The component's world and the packages it uses, in WIT syntax.
    pub wit: String,
    /// Reasons the component cannot run as a troupe actor, if any.
    pub problems: Vec<String>,
}

/// One import or export.
#[derive(Debug, Clone, Serialize)]
pub struct ItemDescription {
    /// `ns:pkg/iface@version`, or the function name for a bare function.
    pub name: String,
    /// `protocol` (a message protocol), `lifecycle`, `persistence`,
    /// `troupe-api`, `wasi`, `toolchain` (a build tool's leftover hook, not
    /// part of the protocol), or `other`.
    pub role: &'static str,
    /// Its functions, as WIT signatures.
    pub functions: Vec<String>,
}

/// Why a file cannot be described.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// A core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component; build for wasm32-wasip2, or wrap it with \
         `wasm-tools component new`"
    )]
    CoreModule,
    /// Not WebAssembly, truncated, or otherwise invalid.
    #[error("not a valid WebAssembly component: {0}")]
    Invalid(String),
}

/// Describes the component in `bytes`.
///
/// # Errors
///
/// [`InspectError`] if the bytes are not a component.
pub fn inspect(bytes: &[u8]) -> Result<ComponentDescription, InspectError> {
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(InspectError::CoreModule);
    }
    if !wasmparser::Parser::is_component(bytes) {
        return Err(InspectError::Invalid("the file does not start with the component header".into()));
    }
    let decoded = decode(bytes).map_err(|e| InspectError::Invalid(format!("{e:#}")))?;
    let DecodedWasm::Component(resolve, world_id) = decoded else {
        return Err(InspectError::Invalid("this is a WIT package, not a component".into()));
    };
    let world = &resolve.worlds[world_id];
    let describe = |items: &indexmap::IndexMap<WorldKey, WorldItem>, exports: bool| -> Vec<ItemDescription> {
        items
            .iter()
            .filter_map(|(key, item)| match item {
                WorldItem::Interface { id, .. } => {
                    let name = resolve.name_world_key(key);
                    let names = resolve.interfaces[*id].functions.keys().map(String::as_str);
                    if exports && crate::protocol::is_toolchain_export(&name, names) {
                        let functions =
                            resolve.interfaces[*id].functions.values().map(|f| signature(&resolve, f)).collect();
                        return Some(ItemDescription { name, role: "toolchain", functions });
                    }
                    let functions =
                        resolve.interfaces[*id].functions.values().map(|f| signature(&resolve, f)).collect();
                    Some(ItemDescription { role: role(&name, exports), name, functions })
                }
                WorldItem::Function(f) => Some(ItemDescription {
                    name: f.name.clone(),
                    role: if exports { "protocol" } else { "other" },
                    functions: vec![signature(&resolve, f)],
                }),
                WorldItem::Type { .. } => None,
            })
            .collect()
    };
    let exports = describe(&world.exports, true);
    let imports = describe(&world.imports, false);

    let mut problems = Vec::new();
    if !exports.iter().any(|e| e.role == "protocol") {
        problems.push(
            "it exports no interface, so it has no message protocol (add `export my-protocol;` to its world)".into(),
        );
    }
    for item in exports.iter().chain(&imports) {
        if item.name.starts_with("troupe:actor/") && !item.name.ends_with(&format!("@{TROUPE_API_VERSION}")) {
            problems
                .push(format!("it uses `{}`, but this troupe provides troupe:actor@{TROUPE_API_VERSION}", item.name));
        }
    }
    for item in &imports {
        if item.role == "other" {
            problems.push(format!("it imports `{}`, which troupe does not provide", item.name));
        }
    }
    if let Some(name) = crate::batch::reserved_name(bytes) {
        problems.push(format!("it uses `{name}`, which is reserved for troupe's batch adapter"));
    }
    let (batched, batched_in_memory, typed) = served(&resolve, world_id);

    let mut printer = wit_component::WitPrinter::default();
    let others: Vec<_> =
        resolve.packages.iter().map(|(id, _)| id).filter(|id| *id != world.package.unwrap_or(*id)).collect();
    let wit = match world.package {
        Some(pkg) => match printer.print(&resolve, pkg, &others) {
            Ok(()) => printer.output.to_string(),
            Err(e) => format!("// cannot print WIT: {e:#}"),
        },
        None => String::new(),
    };
    Ok(ComponentDescription {
        size: bytes.len(),
        hash: blake3::hash(bytes).to_hex()[..12].to_string(),
        exports,
        imports,
        batched,
        batched_in_memory,
        typed,
        wit,
        problems,
    })
}

/// Functions (`iface.func`) and how many messages one call delivers.
type PerCall = Vec<(String, usize)>;

/// What the batch adapter would serve, as the generator lays it out: the
/// functions taking several tells per call by default (`iface.func`, how
/// many per call), those doing so only with `--batch-delivery all`, and
/// those a single message reaches through the typed call entry point.
fn served(resolve: &Resolve, world: WorldId) -> (PerCall, PerCall, Vec<String>) {
    let layout = |memory| crate::batch::layout_of(resolve, world, memory).ok().flatten();
    let (registers, all) = (layout(false), layout(true));
    let name = |e: &crate::batch::Entry| format!("{}.{}", e.interface, e.function);
    let (mut batched, mut batched_in_memory, mut typed) = (Vec::new(), Vec::new(), Vec::new());
    if let Some(layout) = &registers {
        batched.extend(layout.entries.iter().map(|e| (name(e), e.messages)));
        let called = layout.call.iter().flat_map(|c| &c.members);
        typed.extend(called.filter_map(|m| layout.entries.get(m.entry)).map(name));
    }
    if let Some(layout) = &all {
        let more = layout.entries.iter().map(|e| (name(e), e.messages));
        batched_in_memory.extend(more.filter(|entry| !batched.contains(entry)));
    }
    (batched, batched_in_memory, typed)
}

fn role(name: &str, export: bool) -> &'static str {
    if name.starts_with("troupe:actor/lifecycle") {
        "lifecycle"
    } else if name.starts_with("troupe:actor/persistence") {
        "persistence"
    } else if name.starts_with("troupe:actor/") {
        "troupe-api"
    } else if name.starts_with("wasi:") {
        if export { "protocol" } else { "wasi" }
    } else if export {
        "protocol"
    } else {
        "other"
    }
}

/// `name: func(a: t) -> r`, with named types by name.
fn signature(resolve: &Resolve, f: &Function) -> String {
    let mut s = format!("{}: func(", f.name);
    for (i, p) in f.params.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{}: {}", p.name, type_name(resolve, &p.ty));
    }
    s.push(')');
    if let Some(r) = &f.result {
        let _ = write!(s, " -> {}", type_name(resolve, r));
    }
    s
}

fn type_name(resolve: &Resolve, ty: &Type) -> String {
    crate::protocol::wit_syntax::render(resolve, ty, &mut |_, name| Some(name.to_string())).unwrap_or_default()
}
