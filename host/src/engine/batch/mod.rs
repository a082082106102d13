//! Batch entry points: one call into a component that delivers several
//! messages.
//!
//! Every call from the host into a component pays wasmtime a fixed price
//! that does not depend on what the callee does: a fiber switch, entering
//! and leaving wasm, and (in wasmtime 48) finding the export's function
//! again. For a trivial message handler that fixed price is most of the
//! cost of a message (see BENCHMARKS.md). Calls *between* components in
//! one composition pay none of it: wasmtime compiles them into direct
//! calls through a fused adapter.
//!
//! So at compile time, [`add_batch_exports`] composes the actor's
//! component with a small generated adapter component, as siblings inside
//! a new outer component that imports and exports what the actor's does
//! (see `wrap` for why siblings). For every exported interface
//! function whose canonical-ABI signature is made of plain numbers (no
//! pointers, at most one flat result), the adapter exports
//! [`DELIVER_INTERFACE`]`.m-<hash>(n: u32, arguments of message 0,
//! arguments of message 1, ...)`, which calls the function once for each
//! of the first `n` argument groups, in order. When two or more functions
//! have at most [`MIXED_MAX_FLAT`] flat parameters, a *mixed* entry point
//! takes interleaved tells to any of them: each message carries a tag
//! saying which function (see [`MixedLayout`]). Nothing in the actor's own
//! code changes, in any language: the adapter is a few instructions per
//! message of generated core wasm with no memory of its own. troupe's own
//! exports (`init`, `stop`, ...) are hooks, not messages, and get none.
//!
//! The same functions, when their result is a number or `bool` (or
//! nothing), are also served one message at a time through a *call* entry
//! point with a fixed signature (see [`CallLayout`]): a tag and seven
//! `u64`s in, one `u64` out. Its fixed signature lets the host call it
//! through a `TypedFunc`, which lowers and lifts plain integers instead of
//! `Val`s: an ask, or a tell with nothing queued behind it, costs about
//! 370 instructions (30-80 ns) less that way.
//!
//! Optionally (`BatchDelivery::All`), functions whose arguments live in
//! memory (strings, lists) get entry points too, taking the run as one
//! list that the host lowers into a memory the adapter then has: see the
//! `memory` submodule.
//!
//! Before each message the adapter calls the host's
//! [`PROGRESS_INTERFACE`]`.next`, so that the host can give every message
//! its own CPU budget, knows which one failed if one does, and can end the
//! call between two messages when a control request (a stop, say) waits.

mod memory;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use wasm_encoder::{
    BlockType, CodeSection, ComponentExportKind, ComponentExportSection, ComponentImportSection,
    ComponentInstanceSection, ComponentSectionId, ComponentTypeRef, ComponentTypeSection, EntityType, ExportKind,
    ExportSection, Function, FunctionSection, ImportSection, InstanceType, Instruction, Module, RawSection,
    TypeSection, ValType,
};
use wasmtime::component::{Type, Val};
use wit_parser::abi::{AbiVariant, WasmType};
use wit_parser::decoding::DecodedWasm;
use wit_parser::{FunctionKind, Resolve, SizeAlign, WorldItem, WorldKey};

/// The interface of batch entry points that [`add_batch_exports`] adds.
pub const DELIVER_INTERFACE: &str = "troupe:batch/deliver@0.1.0";

/// The host interface the adapter calls before each message.
pub const PROGRESS_INTERFACE: &str = "troupe:batch/progress@0.1.0";

/// The function of [`PROGRESS_INTERFACE`].
pub const PROGRESS_FUNCTION: &str = "next";

/// The version of the adapter, part of the compile cache's tag: raise it
/// with any change to what [`add_batch_exports`] builds, or caches keep
/// serving the old build.
pub const ADAPTER_VERSION: u32 = 13;

/// The canonical ABI passes at most this many flat parameters in
/// registers; one of them is the message count.
const MAX_FLAT_PARAMS: usize = 16;

/// The most messages one entry delivers.
pub const MAX_MESSAGES_PER_ENTRY: usize = MAX_FLAT_PARAMS - 1;

/// How the name of the entry point that takes tells to several functions
/// in one call begins (see [`MixedLayout`]).
pub const MIXED_ENTRY: &str = "mixed-";

/// Functions with at most this many flat parameters share the mixed
/// entry point: with one more for each message's tag, five messages fit
/// in a call.
pub const MIXED_MAX_FLAT: usize = 2;

/// How the name of the entry point that takes one message to any function
/// it serves begins (see [`CallLayout`]).
pub const CALL_ENTRY: &str = "call-";

/// The flat arguments the call entry point takes after its tag, each as a
/// `u64`: as many as a function with a batch entry point can have (one
/// with more would fit one message per call, and gets none).
pub const CALL_WIDTH: usize = 7;

/// The call entry point's parameters, as the host's typed function takes
/// them: the tag, then [`CALL_WIDTH`] flat arguments.
pub type CallArgs = (u32, u64, u64, u64, u64, u64, u64, u64);

/// The name of the batch entry point of `function` of `interface`
/// (`acme:counter/api@0.1.0`, `incr`): `m-` and 26 letters of a hash of
/// the two, so that any function maps to one valid, distinct WIT name.
pub fn entry_name(interface: &str, function: &str) -> String {
    format!("m-{}", letters(format!("{interface}#{function}").as_bytes()))
}

/// 26 letters of a hash of `text`: a valid WIT name fragment.
fn letters(text: &[u8]) -> String {
    let hash = blake3::hash(text);
    hash.as_bytes()[..13]
        .iter()
        .flat_map(|byte| [char::from(b'a' + (byte >> 4)), char::from(b'a' + (byte & 15))])
        .collect()
}

/// The name of an entry point serving several functions: `prefix` and a
/// hash of their entry names, in the order their tags follow. A host and
/// an adapter that disagree on the members (and so on the tags) then look
/// for different names, and the host finds none rather than a wrong one.
fn members_name<'a>(prefix: &str, entry_names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = entry_names.collect();
    format!("{prefix}{}", letters(names.join(",").as_bytes()))
}

/// How many messages the batch entry point of a function with
/// `flat_params` flat parameters takes per call.
pub fn messages_per_entry(flat_params: usize) -> usize {
    MAX_MESSAGES_PER_ENTRY.checked_div(flat_params).unwrap_or(MAX_MESSAGES_PER_ENTRY).min(MAX_MESSAGES_PER_ENTRY)
}

/// The first import or export of `component` in the `troupe:batch`
/// package, which is reserved for the adapter: a component that imported
/// the progress hook itself could refill its own CPU budget.
pub fn reserved_name(component: &[u8]) -> Option<String> {
    use wasmparser::{Parser, Payload};
    let mut depth = 0u32;
    for payload in Parser::new(0).parse_all(component) {
        match payload.ok()? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) if depth > 0 => depth -= 1,
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section.into_iter().flatten() {
                    if import.name.name.starts_with("troupe:batch/") {
                        return Some(import.name.name.to_string());
                    }
                }
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section.into_iter().flatten() {
                    if export.name.name.starts_with("troupe:batch/") {
                        return Some(export.name.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// How the mixed entry point lays out its arguments: `n`, then per
/// message slot a tag (which function, by its place in `members`) and
/// `joins.len()` values, each of the canonical ABI's join of the types the
/// members pass in that place (`i32` and `f32` travel as `i32`, anything
/// else mixed as `i64`). The host and the adapter both derive it from the
/// same list of functions.
#[derive(Debug, Clone, PartialEq)]
pub struct MixedLayout<T> {
    /// The entry point's name: [`MIXED_ENTRY`] and a hash of the names of
    /// the functions served, so that a host whose list differs from the
    /// adapter's (and would send wrong tags) finds no entry point.
    pub name: String,
    /// The functions served, sorted by [`entry_name`]; a tag is a place here.
    pub members: Vec<T>,
    /// The type of each value after a slot's tag.
    pub joins: Vec<ValType>,
    /// Messages per call.
    pub slots: usize,
}

impl<T> MixedLayout<T> {
    /// The layout for `functions` (each with its entry name and flat
    /// parameter types), or `None` if fewer than two of them can share it.
    pub fn new(functions: Vec<(String, Vec<ValType>, T)>) -> Option<Self> {
        let mut members: Vec<_> = functions.into_iter().filter(|(_, p, _)| p.len() <= MIXED_MAX_FLAT).collect();
        if members.len() < 2 {
            return None;
        }
        members.sort_by(|a, b| a.0.cmp(&b.0));
        let width = members.iter().map(|(_, p, _)| p.len()).max().unwrap_or(0);
        let joins = (0..width)
            .map(|i| members.iter().filter_map(|(_, p, _)| p.get(i).copied()).reduce(join).unwrap_or(ValType::I32))
            .collect();
        let name = members_name(MIXED_ENTRY, members.iter().map(|(n, _, _)| n.as_str()));
        Some(MixedLayout {
            name,
            members: members.into_iter().map(|(_, _, t)| t).collect(),
            joins,
            slots: MAX_MESSAGES_PER_ENTRY / (1 + width),
        })
    }

    /// Parameters of the entry point, `n` included.
    pub fn params(&self) -> usize {
        1 + self.slots * (1 + self.joins.len())
    }
}

/// The call entry point: `call-<hash>(tag, a0, .., a6: u64) -> u64` calls
/// the function the tag names (its place in `members`) with its flat
/// arguments, each carried in a `u64` (an `i32` zero-extended, a float by
/// its bits), and returns its flat result the same way (0 without one).
/// Functions are served when their arguments travel in registers and
/// their result is a number, a `bool` or nothing: see [`FlatResult`].
#[derive(Debug, Clone, PartialEq)]
pub struct CallLayout<T> {
    /// [`CALL_ENTRY`] and a hash of the names of the functions served, so
    /// that a host whose list differs from the adapter's finds no entry
    /// point rather than calling the wrong function.
    pub name: String,
    /// The functions served, sorted by [`entry_name`]; a tag is a place here.
    pub members: Vec<T>,
}

impl<T> CallLayout<T> {
    /// The layout for `functions` (each with its entry name), or `None`
    /// if there are none.
    pub fn new(mut functions: Vec<(String, T)>) -> Option<Self> {
        if functions.is_empty() {
            return None;
        }
        functions.sort_by(|a, b| a.0.cmp(&b.0));
        let name = members_name(CALL_ENTRY, functions.iter().map(|(n, _)| n.as_str()));
        Some(CallLayout { name, members: functions.into_iter().map(|(_, t)| t).collect() })
    }
}

/// The result of a function the call entry point serves, and how the host
/// lifts it from the `u64` the entry point returns: as the canonical ABI
/// lifts the core value it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlatResult {
    /// The function returns nothing.
    Nothing,
    /// `bool`: any value but 0 is `true`.
    Bool,
    /// `s8` and the other integers: the low bits, as the type is wide.
    S8,
    /// `u8`.
    U8,
    /// `s16`.
    S16,
    /// `u16`.
    U16,
    /// `s32`.
    S32,
    /// `u32`.
    U32,
    /// `s64`.
    S64,
    /// `u64`.
    U64,
    /// `f32`, by its bits.
    F32,
    /// `f64`, by its bits.
    F64,
}

impl FlatResult {
    /// How a function with result type `ty` returns through the call entry
    /// point, if it can.
    pub fn of(ty: Option<&Type>) -> Option<Self> {
        Some(match ty {
            None => FlatResult::Nothing,
            Some(Type::Bool) => FlatResult::Bool,
            Some(Type::S8) => FlatResult::S8,
            Some(Type::U8) => FlatResult::U8,
            Some(Type::S16) => FlatResult::S16,
            Some(Type::U16) => FlatResult::U16,
            Some(Type::S32) => FlatResult::S32,
            Some(Type::U32) => FlatResult::U32,
            Some(Type::S64) => FlatResult::S64,
            Some(Type::U64) => FlatResult::U64,
            Some(Type::Float32) => FlatResult::F32,
            Some(Type::Float64) => FlatResult::F64,
            Some(_) => return None,
        })
    }

    /// The result `raw` stands for (`None` for a function without one).
    pub fn lift(self, raw: u64) -> Option<Val> {
        // Truncation keeps the low bits, as lifting a narrow integer from
        // its core `i32` does.
        Some(match self {
            FlatResult::Nothing => return None,
            FlatResult::Bool => Val::Bool(raw as u32 != 0),
            FlatResult::S8 => Val::S8(raw as i8),
            FlatResult::U8 => Val::U8(raw as u8),
            FlatResult::S16 => Val::S16(raw as i16),
            FlatResult::U16 => Val::U16(raw as u16),
            FlatResult::S32 => Val::S32(raw as i32),
            FlatResult::U32 => Val::U32(raw as u32),
            FlatResult::S64 => Val::S64(raw as i64),
            FlatResult::U64 => Val::U64(raw),
            FlatResult::F32 => Val::Float32(f32::from_bits(raw as u32)),
            FlatResult::F64 => Val::Float64(f64::from_bits(raw)),
        })
    }
}

/// The flat value `val` (as [`flatten`] makes it) as the call entry point
/// takes it; the adapter undoes it.
pub fn to_call_arg(val: &Val) -> u64 {
    match val {
        Val::U32(x) => u64::from(*x),
        Val::U64(x) => *x,
        Val::Float32(f) => u64::from(f.to_bits()),
        Val::Float64(f) => f.to_bits(),
        _ => 0,
    }
}

/// The canonical ABI's join of two flat types.
fn join(a: ValType, b: ValType) -> ValType {
    match (a, b) {
        _ if a == b => a,
        (ValType::I32, ValType::F32) | (ValType::F32, ValType::I32) => ValType::I32,
        _ => ValType::I64,
    }
}

/// The flat value `val` (as [`flatten`] makes it) in a place of type
/// `joined`: the host's half of the join, which the adapter undoes.
pub fn to_join(val: Val, joined: ValType) -> Val {
    match (val, joined) {
        (Val::Float32(f), ValType::I32) => Val::U32(f.to_bits()),
        (Val::U32(x), ValType::I64) => Val::U64(u64::from(x)),
        (Val::Float32(f), ValType::I64) => Val::U64(u64::from(f.to_bits())),
        (Val::Float64(f), ValType::I64) => Val::U64(f.to_bits()),
        (val, _) => val,
    }
}

/// A zero of flat type `ty`, as the entry point takes it.
pub fn zero(ty: ValType) -> Val {
    match ty {
        ValType::I64 => Val::U64(0),
        ValType::F32 => Val::Float32(0.0),
        ValType::F64 => Val::Float64(0.0),
        _ => Val::U32(0),
    }
}

/// The WIT type through which a flat type travels.
fn wit_type(ty: ValType) -> &'static str {
    match ty {
        ValType::I64 => "u64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        _ => "u32",
    }
}

/// One function that gets a batch entry point.
struct Entry {
    /// The exported interface (`acme:counter/api@0.1.0`).
    interface: String,
    function: String,
    /// The function's core signature, as the adapter imports it.
    params: Vec<ValType>,
    results: Vec<ValType>,
    /// For arguments that live in memory, how to deliver them; `None`
    /// when they travel in registers.
    memory: Option<memory::MemoryEntry>,
    /// For a function without arguments whose result comes back through
    /// memory (taking the adapter's memory), the result's size: the
    /// adapter passes scratch space for it.
    scratch: Option<u32>,
    /// Whether the call entry point serves it (see [`CallLayout`]).
    called: bool,
}

/// Returns `component` with [`DELIVER_INTERFACE`] added, or `Ok(None)`
/// when it has no function a batch entry point can serve. With `memory`,
/// functions whose arguments travel in memory get entry points too, and
/// the adapter a memory of its own.
///
/// # Errors
///
/// A description of what did not fit, for a component this cannot
/// extend; the caller runs the component unchanged.
pub fn add_batch_exports(component: &[u8], memory: bool) -> Result<Option<Vec<u8>>, String> {
    let DecodedWasm::Component(mut resolve, world) = wit_parser::decoding::decode(component).map_err(err)? else {
        return Ok(None);
    };
    let mut sizes = SizeAlign::default();
    sizes.fill(&resolve);
    let mut entries = Vec::new();
    let mut imported = Vec::new();
    // Named types `use`d into the adapter's interface (name, and the
    // interface defining it): two types of one name cannot both be.
    let mut used: Vec<(String, String)> = Vec::new();
    for (key, item) in &resolve.worlds[world].exports {
        let (WorldKey::Interface(_), WorldItem::Interface { id, .. }) = (key, item) else { continue };
        let interface = resolve.name_world_key(key);
        if interface.starts_with("troupe:batch/") {
            return Err(format!("it already exports `{interface}`"));
        }
        // troupe's own exports (`init`, `stop`, ...) are hooks, not messages.
        if interface.starts_with("troupe:") {
            continue;
        }
        let before = entries.len();
        for func in resolve.interfaces[*id].functions.values() {
            let (interface, function) = (interface.clone(), func.name.clone());
            match serving(&resolve, &sizes, func, memory) {
                Some(Serving::Registers { params, results }) => {
                    let called = called(&resolve, func, &params);
                    entries.push(Entry { interface, function, params, results, memory: None, scratch: None, called });
                }
                Some(Serving::Getter(size)) => {
                    let (params, results, scratch) = (vec![], vec![], Some(size));
                    entries.push(Entry { interface, function, params, results, memory: None, scratch, called: false });
                }
                Some(Serving::Memory(entry)) => {
                    // One name in the adapter's interface, one type.
                    if entry.uses.iter().any(|(from, name)| used.iter().any(|(n, f)| n == name && f != from)) {
                        continue;
                    }
                    used.extend(entry.uses.iter().map(|(from, name)| (name.clone(), from.clone())));
                    let sig = resolve.wasm_signature(AbiVariant::GuestImport, func);
                    let params = sig.params.iter().map(memory::core_type).collect();
                    let results = sig.results.iter().map(memory::core_type).collect();
                    let memory = Some(entry);
                    entries.push(Entry { interface, function, params, results, memory, scratch: None, called: false });
                }
                None => {}
            }
        }
        if entries.len() > before {
            imported.push(interface);
        }
    }
    if entries.is_empty() {
        return Ok(None);
    }
    let mixed = MixedLayout::new(
        entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.memory.is_none())
            .map(|(i, e)| (entry_name(&e.interface, &e.function), e.params.clone(), i))
            .collect(),
    );
    let call = CallLayout::new(
        entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.called)
            .map(|(i, e)| (entry_name(&e.interface, &e.function), i))
            .collect(),
    );
    let adapter_world = {
        let wit = adapter_wit(&imported, &entries, mixed.as_ref(), call.as_ref());
        let package = resolve.push_source("troupe-batch.wit", &wit).map_err(err)?;
        resolve.select_world(&[package], Some("adapter")).map_err(err)?
    };
    let mut core = adapter_module(&entries, mixed.as_ref(), call.as_ref());
    wit_component::embed_component_metadata(&mut core, &resolve, adapter_world, wit_component::StringEncoding::UTF8)
        .map_err(err)?;
    let adapter = wit_component::ComponentEncoder::default().module(&core).map_err(err)?.encode().map_err(err)?;

    let adapter_imports: Vec<String> = resolve.worlds[adapter_world]
        .imports
        .keys()
        .map(|key| resolve.name_world_key(key))
        .filter(|name| name != PROGRESS_INTERFACE)
        .collect();
    wrap(component, &adapter, &adapter_imports).map(Some)
}

/// How the adapter serves one function.
enum Serving {
    /// Its arguments travel in registers: the core signature it is called by.
    Registers { params: Vec<ValType>, results: Vec<ValType> },
    /// No arguments, a result through memory of this size.
    Getter(u32),
    /// Its arguments travel in the adapter's memory.
    Memory(memory::MemoryEntry),
}

/// How the adapter serves `func`, if it does; with `memory`, also through
/// its memory. The one decision behind both [`add_batch_exports`] and
/// [`messages_per_call`].
fn serving(resolve: &Resolve, sizes: &SizeAlign, func: &wit_parser::Function, memory: bool) -> Option<Serving> {
    if let Some((params, results)) = entry_signature(resolve, func) {
        return Some(Serving::Registers { params, results });
    }
    if !memory {
        return None;
    }
    if let Some(size) = memory::getter_result(resolve, sizes, func) {
        return Some(Serving::Getter(size));
    }
    memory::memory_entry(resolve, sizes, func).map(Serving::Memory)
}

/// How many tells one call of `func`'s batch entry point delivers, or
/// `None` if it gets none: it takes or returns a resource. `sizes` is
/// filled for `resolve`.
///
/// The flag says whether the arguments travel in memory, which takes
/// [`crate::engine::BatchDelivery::All`].
pub fn messages_per_call(resolve: &Resolve, sizes: &SizeAlign, func: &wit_parser::Function) -> Option<(usize, bool)> {
    match serving(resolve, sizes, func, true)? {
        Serving::Registers { params, .. } => Some((messages_per_entry(params.len()), false)),
        Serving::Getter(_) | Serving::Memory(_) => Some((MAX_MESSAGES_PER_ENTRY, true)),
    }
}

/// The core signature through which the adapter calls `func`, if `func`
/// gets a batch entry point (see [`messages_per_call`]).
fn entry_signature(resolve: &Resolve, func: &wit_parser::Function) -> Option<(Vec<ValType>, Vec<ValType>)> {
    if !matches!(func.kind, FunctionKind::Freestanding) || !func.params.iter().all(|p| lowered_by_host(resolve, &p.ty))
    {
        return None;
    }
    let sig = resolve.wasm_signature(AbiVariant::GuestImport, func);
    if sig.indirect_params || sig.retptr || sig.results.len() > 1 {
        return None;
    }
    let scalar = |t: &WasmType| match t {
        WasmType::I32 => Some(ValType::I32),
        WasmType::I64 => Some(ValType::I64),
        WasmType::F32 => Some(ValType::F32),
        WasmType::F64 => Some(ValType::F64),
        WasmType::Pointer | WasmType::PointerOrI64 | WasmType::Length => None,
    };
    let params = sig.params.iter().map(scalar).collect::<Option<Vec<_>>>()?;
    let results = sig.results.iter().map(scalar).collect::<Option<Vec<_>>>()?;
    (messages_per_entry(params.len()) >= 2).then_some((params, results))
}

/// Does the call entry point serve `func`, if a batch entry point takes
/// its `params` in registers?
fn called(resolve: &Resolve, func: &wit_parser::Function, params: &[ValType]) -> bool {
    params.len() <= CALL_WIDTH && flat_result(resolve, func.result.as_ref())
}

/// Does a single message to `func` go through the typed call entry point
/// (see [`CallLayout`])? `sizes` is filled for `resolve`.
pub fn typed_call(resolve: &Resolve, sizes: &SizeAlign, func: &wit_parser::Function) -> bool {
    matches!(serving(resolve, sizes, func, false), Some(Serving::Registers { params, .. }) if called(resolve, func, &params))
}

/// Does a function with result `ty` return through the call entry point?
/// The WIT view of [`FlatResult::of`].
fn flat_result(resolve: &Resolve, ty: Option<&wit_parser::Type>) -> bool {
    use wit_parser::{Type as T, TypeDefKind as K};
    match ty {
        None => true,
        Some(T::Char | T::String | T::ErrorContext) => false,
        Some(T::Id(id)) => match &resolve.types[*id].kind {
            K::Type(t) => flat_result(resolve, Some(t)),
            _ => false,
        },
        Some(_) => true,
    }
}

/// Does [`flatten`] take values of this type? The WIT view of
/// [`flat_count`].
fn lowered_by_host(resolve: &Resolve, ty: &wit_parser::Type) -> bool {
    use wit_parser::{Type as T, TypeDefKind as K};
    match ty {
        T::String | T::ErrorContext => false,
        T::Id(id) => match &resolve.types[*id].kind {
            K::Record(r) => r.fields.iter().all(|f| lowered_by_host(resolve, &f.ty)),
            K::Tuple(t) => t.types.iter().all(|t| lowered_by_host(resolve, t)),
            K::Enum(_) | K::Flags(_) => true,
            K::Type(t) => lowered_by_host(resolve, t),
            _ => false,
        },
        _ => true,
    }
}

/// The WIT world of the adapter: it imports the actor's interfaces and
/// the host's progress hook, and exports the entry points.
fn adapter_wit(
    imported: &[String],
    entries: &[Entry],
    mixed: Option<&MixedLayout<usize>>,
    call: Option<&CallLayout<usize>>,
) -> String {
    let mut wit = String::from("package troupe:batch@0.1.0;\n\ninterface progress {\n  next: func() -> bool;\n}\n\n");
    wit.push_str("interface deliver {\n");
    let mut uses: BTreeSet<(&str, &str)> = BTreeSet::new();
    for memory in entries.iter().filter_map(|e| e.memory.as_ref()) {
        uses.extend(memory.uses.iter().map(|(from, name)| (from.as_str(), name.as_str())));
    }
    for (interface, name) in uses {
        let _ = writeln!(wit, "  use {interface}.{{{name}}};");
    }
    let registers = |wit: &mut String, name: &str, params: &mut dyn Iterator<Item = ValType>| {
        let _ = write!(wit, "  {name}: func(n: u32");
        for (i, ty) in params.enumerate() {
            let _ = write!(wit, ", a{i}: {}", wit_type(ty));
        }
        wit.push_str(");\n");
    };
    for entry in entries {
        let name = entry_name(&entry.interface, &entry.function);
        match &entry.memory {
            None => {
                let per_entry = messages_per_entry(entry.params.len());
                registers(&mut wit, &name, &mut (0..per_entry).flat_map(|_| entry.params.iter().copied()));
            }
            Some(memory) => {
                let _ = writeln!(wit, "  {name}: func(batch: list<{}>);", memory.tuple);
            }
        }
    }
    if let Some(mixed) = mixed {
        registers(
            &mut wit,
            &mixed.name,
            &mut (0..mixed.slots).flat_map(|_| std::iter::once(ValType::I32).chain(mixed.joins.iter().copied())),
        );
    }
    if let Some(call) = call {
        let _ = write!(wit, "  {}: func(tag: u32", call.name);
        for i in 0..CALL_WIDTH {
            let _ = write!(wit, ", a{i}: u64");
        }
        wit.push_str(") -> u64;\n");
    }
    wit.push_str("}\n\nworld adapter {\n");
    for interface in imported {
        let _ = writeln!(wit, "  import {interface};");
    }
    wit.push_str("  import progress;\n  export deliver;\n}\n");
    wit
}

/// The adapter's core module: for each entry point taking registers, a
/// straight run of "stop if done, call `next`, call the function" per
/// message slot; for one taking a list, a loop over its elements (see
/// [`memory`]); and, if any does, a memory and its bump allocator.
fn adapter_module(entries: &[Entry], mixed: Option<&MixedLayout<usize>>, call: Option<&CallLayout<usize>>) -> Vec<u8> {
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    types.ty().function([], [ValType::I32]);
    imports.import(PROGRESS_INTERFACE, PROGRESS_FUNCTION, EntityType::Function(0));
    let next = 0;
    for (i, entry) in entries.iter().enumerate() {
        // A result through memory takes a pointer to it, last.
        let params: Vec<ValType> = entry.params.iter().copied().chain(entry.scratch.map(|_| ValType::I32)).collect();
        types.ty().function(params, entry.results.iter().copied());
        imports.import(&entry.interface, &entry.function, EntityType::Function(i as u32 + 1));
    }
    let mut functions = FunctionSection::new();
    let mut exports = ExportSection::new();
    let mut code = CodeSection::new();
    let mut define = |params: &[ValType], results: &[ValType], name: &str, body: &Function| {
        let ty = types.len();
        types.ty().function(params.iter().copied(), results.iter().copied());
        // Defined functions come after the imported ones.
        let index = imports.len() + functions.len();
        functions.function(ty);
        exports.export(name, ExportKind::Func, index);
        code.function(body);
    };
    let results_through_memory = entries.iter().filter_map(|e| e.scratch.or(e.memory.as_ref()?.retptr));
    let (bump, heap) = (0, memory::heap_base(results_through_memory));
    for (i, entry) in entries.iter().enumerate() {
        let name = format!("{DELIVER_INTERFACE}#{}", entry_name(&entry.interface, &entry.function));
        let import = i as u32 + 1;
        match &entry.memory {
            None => {
                let flat = entry.params.len();
                let per_entry = messages_per_entry(flat);
                let params: Vec<ValType> = std::iter::once(ValType::I32)
                    .chain((0..per_entry * flat).map(|p| entry.params[p % flat]))
                    .collect();
                define(&params, &[], &name, &registers_body(entry, per_entry, next, import));
            }
            Some(memory) => {
                let body = memory::entry_body(memory, entry.results.len(), next, import, bump, heap);
                define(&[ValType::I32, ValType::I32], &[], &name, &body);
            }
        }
    }
    if let Some(mixed) = mixed {
        let params: Vec<ValType> = std::iter::once(ValType::I32)
            .chain((0..mixed.slots).flat_map(|_| std::iter::once(ValType::I32).chain(mixed.joins.iter().copied())))
            .collect();
        let name = format!("{DELIVER_INTERFACE}#{}", mixed.name);
        define(&params, &[], &name, &mixed_body(entries, mixed, next));
    }
    if let Some(call) = call {
        let params: Vec<ValType> = std::iter::once(ValType::I32).chain([ValType::I64; CALL_WIDTH]).collect();
        let name = format!("{DELIVER_INTERFACE}#{}", call.name);
        define(&params, &[ValType::I64], &name, &call_body(entries, call));
    }
    let with_memory = entries.iter().any(|e| e.memory.is_some() || e.scratch.is_some());
    if with_memory {
        define(&[ValType::I32; 4], &[ValType::I32], "cabi_realloc", &memory::realloc_body(bump));
    }
    let mut module = Module::new();
    module.section(&types).section(&imports).section(&functions);
    if with_memory {
        let mut memories = wasm_encoder::MemorySection::new();
        memories.memory(wasm_encoder::MemoryType {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        module.section(&memories);
        let mut globals = wasm_encoder::GlobalSection::new();
        globals.global(
            wasm_encoder::GlobalType { val_type: ValType::I32, mutable: true, shared: false },
            &wasm_encoder::ConstExpr::i32_const(heap as i32),
        );
        module.section(&globals);
        exports.export("memory", ExportKind::Memory, 0);
    }
    module.section(&exports).section(&code);
    module.finish()
}

/// The start of message slot `slot` in an entry point taking registers,
/// directly inside the block that ends the call: leave it if the run has
/// fewer messages (parameter 0 is their count), or if `next` says to stop.
fn stop_unless_started(body: &mut Function, slot: usize, next: u32) {
    body.instruction(&Instruction::LocalGet(0));
    body.instruction(&Instruction::I32Const(slot as i32));
    body.instruction(&Instruction::I32LeU);
    body.instruction(&Instruction::BrIf(0));
    body.instruction(&Instruction::Call(next));
    body.instruction(&Instruction::I32Eqz);
    body.instruction(&Instruction::BrIf(0));
}

/// A register entry point's body: per message slot, "stop if done, call
/// `next` (and stop if it says so), call the function with the slot's
/// arguments".
fn registers_body(entry: &Entry, per_entry: usize, next: u32, import: u32) -> Function {
    let flat = entry.params.len();
    let mut body = Function::new([]);
    body.instruction(&Instruction::Block(BlockType::Empty));
    for slot in 0..per_entry {
        stop_unless_started(&mut body, slot, next);
        for p in 0..flat {
            body.instruction(&Instruction::LocalGet((1 + slot * flat + p) as u32));
        }
        if entry.scratch.is_some() {
            body.instruction(&Instruction::I32Const(memory::SCRATCH as i32));
        }
        body.instruction(&Instruction::Call(import));
        for _ in &entry.results {
            body.instruction(&Instruction::Drop);
        }
    }
    body.instruction(&Instruction::End);
    body.instruction(&Instruction::End);
    body
}

/// The mixed entry point: per slot, "stop if done, call `next`, dispatch
/// on the tag to the function, undoing the join of its arguments".
fn mixed_body(entries: &[Entry], mixed: &MixedLayout<usize>, next: u32) -> Function {
    let cases = mixed.members.len() as u32;
    let width = mixed.joins.len();
    let mut body = Function::new([]);
    body.instruction(&Instruction::Block(BlockType::Empty)); // done
    for slot in 0..mixed.slots {
        let base = (1 + slot * (1 + width)) as u32;
        stop_unless_started(&mut body, slot, next);
        body.instruction(&Instruction::Block(BlockType::Empty)); // slot end
        body.instruction(&Instruction::Block(BlockType::Empty)); // bad tag
        for _ in 0..cases {
            body.instruction(&Instruction::Block(BlockType::Empty));
        }
        body.instruction(&Instruction::LocalGet(base));
        body.instruction(&Instruction::BrTable((0..cases).collect::<Vec<_>>().into(), cases));
        for (case, &member) in mixed.members.iter().enumerate() {
            body.instruction(&Instruction::End);
            let entry = &entries[member];
            for (p, &ty) in entry.params.iter().enumerate() {
                body.instruction(&Instruction::LocalGet(base + 1 + p as u32));
                match (mixed.joins[p], ty) {
                    (ValType::I32, ValType::F32) => body.instruction(&Instruction::F32ReinterpretI32),
                    (ValType::I64, ValType::I32) => body.instruction(&Instruction::I32WrapI64),
                    (ValType::I64, ValType::F32) => {
                        body.instruction(&Instruction::I32WrapI64).instruction(&Instruction::F32ReinterpretI32)
                    }
                    (ValType::I64, ValType::F64) => body.instruction(&Instruction::F64ReinterpretI64),
                    _ => &mut body,
                };
            }
            if entry.scratch.is_some() {
                body.instruction(&Instruction::I32Const(memory::SCRATCH as i32));
            }
            body.instruction(&Instruction::Call(member as u32 + 1));
            for _ in &entry.results {
                body.instruction(&Instruction::Drop);
            }
            // Out past the remaining case blocks and the bad-tag block.
            body.instruction(&Instruction::Br(cases - case as u32));
        }
        body.instruction(&Instruction::End); // bad tag: the host never sends one
        body.instruction(&Instruction::Unreachable);
        body.instruction(&Instruction::End); // slot end
    }
    body.instruction(&Instruction::End); // done
    body.instruction(&Instruction::End);
    body
}

/// The call entry point: dispatch on the tag to the function, each
/// argument taken out of its `u64`, the result put into one. No `next`:
/// the host arms one message's budget before the call, as for any call.
fn call_body(entries: &[Entry], call: &CallLayout<usize>) -> Function {
    let cases = call.members.len() as u32;
    let mut body = Function::new([]);
    body.instruction(&Instruction::Block(BlockType::Empty)); // bad tag
    for _ in 0..cases {
        body.instruction(&Instruction::Block(BlockType::Empty));
    }
    body.instruction(&Instruction::LocalGet(0));
    body.instruction(&Instruction::BrTable((0..cases).collect::<Vec<_>>().into(), cases));
    for &member in &call.members {
        body.instruction(&Instruction::End);
        let entry = &entries[member];
        for (p, &ty) in entry.params.iter().enumerate() {
            body.instruction(&Instruction::LocalGet(1 + p as u32));
            match ty {
                ValType::I32 => body.instruction(&Instruction::I32WrapI64),
                ValType::F32 => body.instruction(&Instruction::I32WrapI64).instruction(&Instruction::F32ReinterpretI32),
                ValType::F64 => body.instruction(&Instruction::F64ReinterpretI64),
                _ => &mut body,
            };
        }
        body.instruction(&Instruction::Call(member as u32 + 1));
        match entry.results.first() {
            None => body.instruction(&Instruction::I64Const(0)),
            Some(ValType::I32) => body.instruction(&Instruction::I64ExtendI32U),
            Some(ValType::F32) => {
                body.instruction(&Instruction::I32ReinterpretF32).instruction(&Instruction::I64ExtendI32U)
            }
            Some(ValType::F64) => body.instruction(&Instruction::I64ReinterpretF64),
            Some(_) => &mut body,
        };
        body.instruction(&Instruction::Return);
    }
    body.instruction(&Instruction::End); // bad tag: the host never sends one
    body.instruction(&Instruction::Unreachable);
    body.instruction(&Instruction::End);
    body
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
            Payload::Version { .. } | Payload::CustomSection(_) => {}
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
/// [`DELIVER_INTERFACE`]. The two must be siblings: the component model
/// forbids a component to call into its enclosing component, which is on
/// the stack.
fn wrap(component: &[u8], adapter: &[u8], adapter_imports: &[String]) -> Result<Vec<u8>, String> {
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
    Ok(out.finish())
}

/// The number of flat (canonical ABI) values a parameter of type `ty`
/// takes, for the types the host lowers into a batch entry's arguments;
/// `None` for any other type (its function is called one message at a
/// time).
pub fn flat_count(ty: &Type) -> Option<usize> {
    Some(match ty {
        Type::Bool
        | Type::S8
        | Type::U8
        | Type::S16
        | Type::U16
        | Type::S32
        | Type::U32
        | Type::S64
        | Type::U64
        | Type::Float32
        | Type::Float64
        | Type::Char
        | Type::Enum(_) => 1,
        Type::Flags(flags) => flags.names().len().div_ceil(32),
        Type::Record(record) => record.fields().map(|f| flat_count(&f.ty)).sum::<Option<usize>>()?,
        Type::Tuple(tuple) => tuple.types().map(|t| flat_count(&t)).sum::<Option<usize>>()?,
        _ => return None,
    })
}

/// Appends the flat values of `val` (of type `ty`, for which
/// [`flat_count`] is `Some`) to `out` as the entry point's `u32`, `u64`,
/// `f32` and `f64` arguments; the adapter hands them on unchanged, and the
/// component model lifts them as `ty` again. Returns `false` if `val` does
/// not have the type.
pub fn flatten(ty: &Type, val: &Val, out: &mut Vec<Val>) -> bool {
    flatten_into(ty, val, &mut |flat| out.push(flat))
}

/// [`flatten`], handing each flat value to `push`.
pub fn flatten_into(ty: &Type, val: &Val, push: &mut impl FnMut(Val)) -> bool {
    let flat = match (ty, val) {
        (Type::Bool, Val::Bool(v)) => Val::U32(u32::from(*v)),
        // Signed values travel sign-extended, as the canonical ABI lowers them.
        (Type::S8, Val::S8(v)) => Val::U32(i32::from(*v) as u32),
        (Type::U8, Val::U8(v)) => Val::U32(u32::from(*v)),
        (Type::S16, Val::S16(v)) => Val::U32(i32::from(*v) as u32),
        (Type::U16, Val::U16(v)) => Val::U32(u32::from(*v)),
        (Type::S32, Val::S32(v)) => Val::U32(*v as u32),
        (Type::U32, Val::U32(v)) => Val::U32(*v),
        (Type::S64, Val::S64(v)) => Val::U64(*v as u64),
        (Type::U64, Val::U64(v)) => Val::U64(*v),
        (Type::Float32, Val::Float32(v)) => Val::Float32(*v),
        (Type::Float64, Val::Float64(v)) => Val::Float64(*v),
        (Type::Char, Val::Char(v)) => Val::U32(u32::from(*v)),
        (Type::Enum(e), Val::Enum(name)) => match e.names().position(|n| n == name) {
            Some(i) => Val::U32(i as u32),
            None => return false,
        },
        (Type::Flags(flags), Val::Flags(set)) => {
            let names: Vec<&str> = flags.names().collect();
            let mut words = vec![0u32; names.len().div_ceil(32)];
            for name in set {
                let Some(bit) = names.iter().position(|n| n == name) else { return false };
                words[bit / 32] |= 1 << (bit % 32);
            }
            words.into_iter().for_each(|word| push(Val::U32(word)));
            return true;
        }
        (Type::Record(record), Val::Record(fields)) => {
            return record.fields().all(|field| {
                fields.iter().find(|(n, _)| n == field.name).is_some_and(|(_, v)| flatten_into(&field.ty, v, push))
            });
        }
        (Type::Tuple(tuple), Val::Tuple(vals)) => {
            return tuple.types().len() == vals.len()
                && tuple.types().zip(vals).all(|(t, v)| flatten_into(&t, v, push));
        }
        _ => return false,
    };
    push(flat);
    true
}

/// Appends zeros for the flat values of a parameter of type `ty`: what
/// fills the argument slots of messages a batch does not use.
pub fn zeros(ty: &Type, out: &mut Vec<Val>) {
    match ty {
        Type::S64 | Type::U64 => out.push(Val::U64(0)),
        Type::Float32 => out.push(Val::Float32(0.0)),
        Type::Float64 => out.push(Val::Float64(0.0)),
        Type::Flags(flags) => out.extend((0..flags.names().len().div_ceil(32)).map(|_| Val::U32(0))),
        Type::Record(record) => record.fields().for_each(|f| zeros(&f.ty, out)),
        Type::Tuple(tuple) => tuple.types().for_each(|t| zeros(&t, out)),
        _ => out.push(Val::U32(0)),
    }
}

fn err(e: impl std::fmt::Display) -> String {
    format!("{e:#}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component exporting `acme:x/api` with `add(by: u64) -> u64`
    /// (its arguments travel in registers) and `name(n: string)` (in the
    /// adapter's memory), and a bare function `bare` (not in an interface:
    /// no entry point).
    fn component() -> Vec<u8> {
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

    /// `wrapped` is a valid component whose entry points serve exactly
    /// `functions` of `interface`, and whose call entry point exactly
    /// `called` of them.
    fn assert_serves(wrapped: &[u8], interface: &str, functions: &[&str], called: &[&str]) {
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(wrapped)
            .expect("the wrapper is a valid component");
        let mut entries = exported_functions(wrapped, DELIVER_INTERFACE);
        entries.sort();
        let call = CallLayout::new(called.iter().map(|f| (entry_name(interface, f), ())).collect());
        let mut expected: Vec<String> = functions.iter().map(|f| entry_name(interface, f)).collect();
        expected.extend(call.map(|c| c.name));
        expected.sort();
        assert_eq!(entries, expected);
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
        let wrapped = add_batch_exports(&original, true).unwrap().expect("`add` and `name` can have entry points");
        assert_eq!(exported_functions(&wrapped, "acme:x/api"), ["add", "name"]);
        assert_serves(&wrapped, "acme:x/api", &["add", "name"], &["add"]);
        assert_eq!(reserved_name(&original), None);
        assert_eq!(reserved_name(&wrapped).as_deref(), Some(PROGRESS_INTERFACE), "the wrapper imports the hook");
    }

    /// A component built by wit-component from `wit` and a core module in
    /// `wat`, the way guest toolchains build them.
    fn from_wit(wit: &str, wat: &str) -> Vec<u8> {
        let mut resolve = Resolve::default();
        let package = resolve.push_source("test.wit", wit).unwrap();
        let world = resolve.select_world(&[package], None).unwrap();
        let mut module = wat::parse_str(wat).unwrap();
        wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8)
            .unwrap();
        wit_component::ComponentEncoder::default().module(&module).unwrap().validate(true).encode().unwrap()
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
        let wrapped = add_batch_exports(&component, true).unwrap().expect("both functions are served");
        assert_serves(&wrapped, "acme:x/api@0.1.0", &["set", "count"], &["count"]);
        let without_memory = add_batch_exports(&component, false).unwrap().unwrap();
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
        let wrapped = add_batch_exports(&component, true).unwrap().expect("`read` and `log` are served");
        assert_serves(&wrapped, "acme:x/api@0.1.0", &["read", "log"], &[]);
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
        assert_eq!(add_batch_exports(&bare_only, true).unwrap(), None);
    }

    #[test]
    fn an_entry_point_takes_as_many_messages_as_its_arguments_allow() {
        assert_eq!(messages_per_entry(0), MAX_MESSAGES_PER_ENTRY);
        assert_eq!(messages_per_entry(1), 15);
        assert_eq!(messages_per_entry(2), 7);
        assert_eq!(messages_per_entry(7), 2);
        assert_eq!(messages_per_entry(8), 1, "too few to be worth an entry point");
    }

    #[test]
    fn the_mixed_layout_joins_argument_types_and_names_its_members() {
        use ValType::{F32, F64, I32, I64};
        let f = |name: &str, params: Vec<ValType>| (name.to_string(), params, name.to_string());
        let layout = MixedLayout::new(vec![
            f("m-b", vec![F32]),
            f("m-a", vec![I32, F32]),
            f("m-c", vec![]),
            f("m-wide", vec![I32, I32, I32]),
        ])
        .expect("three functions can share it");
        assert_eq!(layout.members, ["m-a", "m-b", "m-c"], "sorted by entry name; too wide left out");
        assert_eq!(layout.joins, [I32, F32], "i32 and f32 travel as i32");
        assert_eq!((layout.slots, layout.params()), (5, 16));
        let other = MixedLayout::new(vec![f("m-a", vec![I64]), f("m-b", vec![F64])]).unwrap();
        assert_eq!(other.joins, [I64]);
        assert_ne!(layout.name, other.name, "another list of members, another name");
        assert!(MixedLayout::new(vec![f("m-a", vec![I32])]).is_none(), "one function needs no tags");
        // The host's half of the join, undone by the adapter.
        assert_eq!(to_join(Val::Float32(1.5), I32), Val::U32(1.5f32.to_bits()));
        assert_eq!(to_join(Val::U32(u32::MAX), I64), Val::U64(u64::from(u32::MAX)));
        assert_eq!(to_join(Val::Float64(-2.0), I64), Val::U64((-2.0f64).to_bits()));
    }

    #[test]
    fn entry_names_are_valid_distinct_wit_names() {
        let a = entry_name("acme:x/api@0.1.0", "incr");
        let b = entry_name("acme:x/api@0.2.0", "incr");
        assert_ne!(a, b);
        assert!(a.starts_with("m-") && a[2..].bytes().all(|c| c.is_ascii_lowercase()), "{a}");
    }

    #[test]
    fn values_flatten_as_the_canonical_abi_lowers_them() {
        use wasmtime::component::Val;
        let engine = wasmtime::Engine::default();
        let wat = wat::parse_str(
            r#"(component
                 (type $e (enum "a" "b" "c"))
                 (export $e2 "e" (type $e))
                 (type $f (flags "x" "y"))
                 (export $f2 "f" (type $f))
                 (type $r (record (field "s" s8) (field "e" $e2) (field "f" $f2) (field "c" char)))
                 (export $r2 "r" (type $r))
                 (core module $m (func (export "g") (param i32 i32 i32 i32 i32)))
                 (core instance $i (instantiate $m))
                 (func (export "g") (param "r" $r2) (param "t" bool) (canon lift (core func $i "g"))))"#,
        )
        .unwrap();
        let component = wasmtime::component::Component::new(&engine, wat).unwrap();
        let ty = component.component_type();
        let (_, item) = ty.exports(&engine).find(|(n, _)| *n == "g").unwrap();
        let wasmtime::component::types::ComponentItem::ComponentFunc(func) = item.ty else { panic!() };
        let params: Vec<Type> = func.params().map(|(_, t)| t).collect();
        assert_eq!(params.iter().map(|t| flat_count(t).unwrap()).sum::<usize>(), 5);
        let record = Val::Record(vec![
            ("s".into(), Val::S8(-2)),
            ("e".into(), Val::Enum("c".into())),
            ("f".into(), Val::Flags(vec!["y".into()])),
            ("c".into(), Val::Char('é')),
        ]);
        let mut flat = Vec::new();
        assert!(flatten(&params[0], &record, &mut flat));
        assert!(flatten(&params[1], &Val::Bool(true), &mut flat));
        assert_eq!(flat, [Val::U32(-2i32 as u32), Val::U32(2), Val::U32(0b10), Val::U32(0xe9), Val::U32(1)]);
        assert!(!flatten(&params[0], &Val::Bool(true), &mut flat), "a value of another type does not flatten");
        let mut zeros_out = Vec::new();
        params.iter().for_each(|t| zeros(t, &mut zeros_out));
        assert_eq!(zeros_out, vec![Val::U32(0); 5]);
    }
}
