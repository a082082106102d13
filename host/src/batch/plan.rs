//! Which functions of a component get which entry points: decided once,
//! by the generator, from the component's WIT. The decision is the
//! [`Layout`] the composed component carries, plus what the code
//! generator needs to build the entry points.

use wasm_encoder::ValType;
use wit_parser::abi::{AbiVariant, WasmType};
use wit_parser::{FunctionKind, Resolve, SizeAlign, WorldId, WorldItem, WorldKey};

use super::layout::{Arguments, CallLayout, CallMember, Entry, FlatResult, FlatType, Layout, MixedLayout};
use super::memory::{self, MemoryEntry};
use super::{CALL_WIDTH, MAX_MESSAGES_PER_ENTRY, MIXED_MAX_FLAT};
use crate::protocol::is_adapter_interface;

/// The name of the mixed entry point in the adapter's interface.
const MIXED_EXPORT: &str = "mixed";

/// The name of the call entry point in the adapter's interface.
const CALL_EXPORT: &str = "call";

/// What the generator builds for a component.
pub(super) struct Plan {
    /// The functions with an entry point of their own.
    pub entries: Vec<Served>,
    /// The interfaces the adapter imports: those exporting a served
    /// function.
    pub imported: Vec<String>,
    /// The mixed entry point, if two or more functions share one.
    pub mixed: Option<Mixed>,
    /// The functions the call entry point serves (places in `entries`),
    /// if any.
    pub call: Option<Vec<usize>>,
}

/// A function with an entry point of its own.
pub(super) struct Served {
    /// The exported interface (`acme:counter/api@0.1.0`).
    pub interface: String,
    pub function: String,
    /// Its entry point's name in the adapter's interface.
    pub export: String,
    /// The function's core signature, as the adapter imports it.
    pub params: Vec<ValType>,
    pub results: Vec<ValType>,
    /// For arguments that live in memory, how to deliver them; `None`
    /// when they travel in registers.
    pub memory: Option<MemoryEntry>,
    /// For a function without arguments whose result comes back through
    /// memory (taking the adapter's memory), the result's size: the
    /// adapter passes scratch space for it.
    pub scratch: Option<u32>,
    /// How its result comes back through the call entry point, if that
    /// serves it.
    pub called: Option<FlatResult>,
}

/// The mixed entry point: `n`, then per message slot a tag (which
/// function, by its place in `members`) and `joins.len()` values, each of
/// the canonical ABI's join of the types the members pass in that place.
pub(super) struct Mixed {
    /// The functions served, as places in [`Plan::entries`].
    pub members: Vec<usize>,
    /// The type of each value after a slot's tag.
    pub joins: Vec<ValType>,
    /// Messages per call.
    pub slots: usize,
}

impl Mixed {
    /// Parameters of the entry point, `n` included.
    pub fn params(&self) -> impl Iterator<Item = ValType> + '_ {
        std::iter::once(ValType::I32)
            .chain((0..self.slots).flat_map(|_| std::iter::once(ValType::I32).chain(self.joins.iter().copied())))
    }
}

/// How many messages the entry point of a function with `flat_params`
/// flat parameters takes per call.
pub fn messages_per_entry(flat_params: usize) -> usize {
    MAX_MESSAGES_PER_ENTRY.checked_div(flat_params).unwrap_or(MAX_MESSAGES_PER_ENTRY).min(MAX_MESSAGES_PER_ENTRY)
}

/// The canonical ABI's join of two flat core types (see
/// [`FlatType::join`]).
pub(super) fn join(a: ValType, b: ValType) -> ValType {
    match (FlatType::of(a), FlatType::of(b)) {
        (Some(a), Some(b)) => a.join(b).val_type(),
        _ => ValType::I64,
    }
}

/// The layout [`compose`](super::compose) gives a component of world
/// `world`, or `Ok(None)` if it has no function an entry point can serve.
/// With `memory`, functions whose arguments travel in memory get entry
/// points too. What `troupe inspect` reports.
///
/// # Errors
///
/// A description of what does not fit, for a component the generator
/// cannot extend.
pub fn layout_of(resolve: &Resolve, world: WorldId, memory: bool) -> Result<Option<Layout>, String> {
    Ok(plan(resolve, world, memory)?.map(|plan| plan.layout()))
}

/// What the generator builds for a component of world `world`, or
/// `Ok(None)` if it has no function an entry point can serve.
pub(super) fn plan(resolve: &Resolve, world: WorldId, memory: bool) -> Result<Option<Plan>, String> {
    let mut sizes = SizeAlign::default();
    sizes.fill(resolve);
    let mut entries: Vec<Served> = Vec::new();
    let mut imported = Vec::new();
    // Named types `use`d into the adapter's interface (name, and the
    // interface defining it): two types of one name cannot both be.
    let mut used: Vec<(String, String)> = Vec::new();
    for (key, item) in &resolve.worlds[world].exports {
        let (WorldKey::Interface(_), WorldItem::Interface { id, .. }) = (key, item) else { continue };
        let interface = resolve.name_world_key(key);
        if is_adapter_interface(&interface) {
            return Err(format!("it already exports `{interface}`"));
        }
        // troupe's own exports (`init`, `stop`, ...) are hooks, not messages.
        if interface.starts_with("troupe:") {
            continue;
        }
        let before = entries.len();
        for func in resolve.interfaces[*id].functions.values() {
            let export = format!("run{}", entries.len());
            let served = |params, results, memory, scratch, called| Served {
                interface: interface.clone(),
                function: func.name.clone(),
                export,
                params,
                results,
                memory,
                scratch,
                called,
            };
            match serving(resolve, &sizes, func, memory) {
                Some(Serving::Registers { params, results }) => {
                    let called = called(resolve, func, &params);
                    entries.push(served(params, results, None, None, called));
                }
                Some(Serving::Getter(size)) => entries.push(served(vec![], vec![], None, Some(size), None)),
                Some(Serving::Memory(entry)) => {
                    // One name in the adapter's interface, one type.
                    if entry.uses.iter().any(|(from, name)| used.iter().any(|(n, f)| n == name && f != from)) {
                        continue;
                    }
                    used.extend(entry.uses.iter().map(|(from, name)| (name.clone(), from.clone())));
                    let sig = resolve.wasm_signature(AbiVariant::GuestImport, func);
                    let params = sig.params.iter().map(memory::core_type).collect();
                    let results = sig.results.iter().map(memory::core_type).collect();
                    entries.push(served(params, results, Some(entry), None, None));
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
    let mixed = mixed(&entries);
    let called: Vec<usize> = (0..entries.len()).filter(|&i| entries[i].called.is_some()).collect();
    let call = (!called.is_empty()).then_some(called);
    Ok(Some(Plan { entries, imported, mixed, call }))
}

/// The mixed entry point for `entries`, if two or more of those taking
/// registers have few enough flat parameters to share it.
fn mixed(entries: &[Served]) -> Option<Mixed> {
    let members: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].memory.is_none() && entries[i].params.len() <= MIXED_MAX_FLAT)
        .collect();
    if members.len() < 2 {
        return None;
    }
    let width = members.iter().map(|&i| entries[i].params.len()).max().unwrap_or(0);
    let joins = (0..width)
        .map(|p| members.iter().filter_map(|&i| entries[i].params.get(p).copied()).reduce(join).unwrap_or(ValType::I32))
        .collect();
    Some(Mixed { members, joins, slots: MAX_MESSAGES_PER_ENTRY / (1 + width) })
}

impl Plan {
    /// The layout of what the plan builds, as the composed component
    /// carries it.
    pub fn layout(&self) -> Layout {
        let flat = |types: &[ValType]| types.iter().map(|&t| FlatType::of(t).unwrap_or(FlatType::I32)).collect();
        let mut layout = Layout::new();
        layout.entries = self
            .entries
            .iter()
            .map(|e| {
                let (messages, arguments) = match &e.memory {
                    None => (messages_per_entry(e.params.len()), Arguments::Registers { flat: flat(&e.params) }),
                    Some(_) => (MAX_MESSAGES_PER_ENTRY, Arguments::Memory),
                };
                Entry {
                    interface: e.interface.clone(),
                    function: e.function.clone(),
                    export: e.export.clone(),
                    messages,
                    arguments,
                }
            })
            .collect();
        layout.mixed = self.mixed.as_ref().map(|m| MixedLayout {
            export: MIXED_EXPORT.into(),
            members: m.members.clone(),
            joins: flat(&m.joins),
            slots: m.slots,
        });
        layout.call = self.call.as_ref().map(|members| CallLayout {
            export: CALL_EXPORT.into(),
            members: members
                .iter()
                .filter_map(|&entry| Some(CallMember { entry, result: self.entries[entry].called? }))
                .collect(),
        });
        layout
    }

    /// The name of the mixed entry point.
    pub fn mixed_export(&self) -> &'static str {
        MIXED_EXPORT
    }

    /// The name of the call entry point.
    pub fn call_export(&self) -> &'static str {
        CALL_EXPORT
    }
}

/// How the adapter serves one function.
enum Serving {
    /// Its arguments travel in registers: the core signature it is called by.
    Registers { params: Vec<ValType>, results: Vec<ValType> },
    /// No arguments, a result through memory of this size.
    Getter(u32),
    /// Its arguments travel in the adapter's memory.
    Memory(MemoryEntry),
}

/// How the adapter serves `func`, if it does; with `memory`, also through
/// its memory.
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

/// The core signature through which the adapter calls `func`, if its
/// arguments travel in registers and its entry point takes two or more
/// messages.
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

/// How the call entry point returns `func`'s result, if it serves `func`,
/// whose entry point takes its `params` in registers.
fn called(resolve: &Resolve, func: &wit_parser::Function, params: &[ValType]) -> Option<FlatResult> {
    if params.len() > CALL_WIDTH {
        return None;
    }
    flat_result(resolve, func.result.as_ref())
}

/// How a function with result `ty` returns through the call entry point,
/// if it can: the WIT view of [`FlatResult::of`].
fn flat_result(resolve: &Resolve, ty: Option<&wit_parser::Type>) -> Option<FlatResult> {
    use wit_parser::{Type as T, TypeDefKind as K};
    Some(match ty {
        None => FlatResult::Nothing,
        Some(T::Bool) => FlatResult::Bool,
        Some(T::S8) => FlatResult::S8,
        Some(T::U8) => FlatResult::U8,
        Some(T::S16) => FlatResult::S16,
        Some(T::U16) => FlatResult::U16,
        Some(T::S32) => FlatResult::S32,
        Some(T::U32) => FlatResult::U32,
        Some(T::S64) => FlatResult::S64,
        Some(T::U64) => FlatResult::U64,
        Some(T::F32) => FlatResult::F32,
        Some(T::F64) => FlatResult::F64,
        Some(T::Id(id)) => match &resolve.types[*id].kind {
            K::Type(t) => return flat_result(resolve, Some(t)),
            _ => return None,
        },
        Some(T::Char | T::String | T::ErrorContext) => return None,
    })
}

/// Does the host lower values of this type into registers? The WIT view
/// of [`flat_types`](super::flat_types).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_point_takes_as_many_messages_as_its_arguments_allow() {
        assert_eq!(messages_per_entry(0), MAX_MESSAGES_PER_ENTRY);
        assert_eq!(messages_per_entry(1), 15);
        assert_eq!(messages_per_entry(2), 7);
        assert_eq!(messages_per_entry(7), 2);
        assert_eq!(messages_per_entry(8), 1, "too few to be worth an entry point");
    }

    #[test]
    fn flat_types_join_as_the_canonical_abi_joins_them() {
        use ValType::{F32, F64, I32, I64};
        assert_eq!(join(I32, F32), I32);
        assert_eq!(join(F32, F32), F32);
        assert_eq!(join(F32, F64), I64);
        assert_eq!(join(I32, I64), I64);
    }
}
