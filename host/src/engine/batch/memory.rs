//! Batch entry points for functions whose arguments live in memory:
//! strings, lists, and records holding them.
//!
//! Such an entry point takes the run as one `list<tuple<arguments>>`. The
//! host lowers the list into the adapter's own linear memory (through the
//! adapter's bump allocator, `cabi_realloc`); the adapter then loads each
//! message's flat arguments from its element (a string is a pointer and a
//! length) and calls the function, whose fused adapter copies strings and
//! lists on into the actor's memory. After the run the bump allocator
//! starts over: nothing in the adapter's memory outlives a call.

use std::collections::BTreeSet;

use wasm_encoder::{BlockType, Function, Instruction, MemArg, ValType};
use wit_parser::abi::{AbiVariant, WasmType};
use wit_parser::{FlagsRepr, FunctionKind, Int, InterfaceId, Resolve, SizeAlign, Type, TypeDefKind, TypeOwner};

/// Where the adapter writes an indirect result it then ignores: past the
/// null page's first bytes, below the allocator's heap.
pub(super) const SCRATCH: u32 = 16;

/// One flat value loaded from a message's element.
#[derive(Debug, Clone, Copy)]
pub(super) struct Load {
    offset: u32,
    op: LoadOp,
}

#[derive(Debug, Clone, Copy)]
enum LoadOp {
    U8,
    S8,
    U16,
    S16,
    I32,
    I64,
    F32,
    F64,
}

/// How the adapter delivers a run to a function whose arguments live in
/// memory.
#[derive(Debug, Clone)]
pub(super) struct MemoryEntry {
    /// The WIT type of a list element: `tuple<...>` of the arguments.
    pub tuple: String,
    /// The function's interface's named types that `tuple` mentions.
    pub uses: BTreeSet<String>,
    /// The element's flat arguments, in order (empty when `indirect`).
    loads: Vec<Load>,
    /// Bytes from one element to the next.
    elem_size: u32,
    /// The function takes its arguments through a pointer (more than 16
    /// flat values): the element itself, laid out as the arguments' tuple.
    indirect: bool,
    /// Bytes of an indirect result, written at [`SCRATCH`].
    pub retptr: Option<u32>,
}

/// The memory entry of `func` of interface `iface`, if the adapter can
/// serve it: no resources, named types only from `iface`, and flat
/// arguments it can load (variants need the canonical ABI's joins, which
/// it does not do, unless the arguments go by pointer anyway).
pub(super) fn memory_entry(
    resolve: &Resolve,
    sizes: &SizeAlign,
    func: &wit_parser::Function,
    iface: InterfaceId,
) -> Option<MemoryEntry> {
    if !matches!(func.kind, FunctionKind::Freestanding) || func.params.is_empty() {
        return None;
    }
    let mut uses = BTreeSet::new();
    let types: Vec<String> =
        func.params.iter().map(|p| wit_type(resolve, &p.ty, iface, &mut uses)).collect::<Option<_>>()?;
    if let Some(result) = &func.result {
        // The result comes back into the adapter's memory: no resources.
        wit_type(resolve, result, iface, &mut BTreeSet::new())?;
    }
    let sig = resolve.wasm_signature(AbiVariant::GuestImport, func);
    let param_types: Vec<&Type> = func.params.iter().map(|p| &p.ty).collect();
    let element = sizes.record(param_types.iter().copied());
    let mut loads = Vec::new();
    if !sig.indirect_params {
        for (offset, ty) in sizes.field_offsets(param_types.iter().copied()) {
            push_loads(resolve, sizes, ty, offset.size_wasm32() as u32, &mut loads)?;
        }
        // An indirect result's pointer is the last flat parameter.
        if loads.len() + usize::from(sig.retptr) != sig.params.len() {
            return None;
        }
    }
    let retptr = match (&func.result, sig.retptr) {
        (Some(result), true) => Some(sizes.size(result).size_wasm32() as u32),
        _ => None,
    };
    Some(MemoryEntry {
        tuple: format!("tuple<{}>", types.join(", ")),
        uses,
        loads,
        elem_size: element.size.size_wasm32() as u32,
        indirect: sig.indirect_params,
        retptr,
    })
}

/// Where the bump allocator starts: past the scratch space the largest
/// indirect result of `entries` needs.
pub(super) fn heap_base<'a>(entries: impl Iterator<Item = &'a MemoryEntry>) -> u32 {
    let scratch = entries.filter_map(|e| e.retptr).max().unwrap_or(0);
    (SCRATCH + scratch).next_multiple_of(16)
}

/// The core type of a flat value as the adapter passes it on.
pub(super) fn core_type(ty: &WasmType) -> ValType {
    match ty {
        WasmType::I32 | WasmType::Pointer | WasmType::Length => ValType::I32,
        WasmType::I64 | WasmType::PointerOrI64 => ValType::I64,
        WasmType::F32 => ValType::F32,
        WasmType::F64 => ValType::F64,
    }
}

/// `ty` in WIT syntax for the adapter's own interface, noting in `uses`
/// the named types of `iface` it mentions; `None` for what the adapter
/// cannot name or carry (resources, another interface's types).
fn wit_type(resolve: &Resolve, ty: &Type, iface: InterfaceId, uses: &mut BTreeSet<String>) -> Option<String> {
    Some(match ty {
        Type::Bool => "bool".into(),
        Type::U8 => "u8".into(),
        Type::U16 => "u16".into(),
        Type::U32 => "u32".into(),
        Type::U64 => "u64".into(),
        Type::S8 => "s8".into(),
        Type::S16 => "s16".into(),
        Type::S32 => "s32".into(),
        Type::S64 => "s64".into(),
        Type::F32 => "f32".into(),
        Type::F64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::ErrorContext => return None,
        Type::Id(id) => {
            let def = &resolve.types[*id];
            if let Some(name) = &def.name {
                if def.owner != TypeOwner::Interface(iface) || !named_is_carried(resolve, *id) {
                    return None;
                }
                uses.insert(format!("%{name}"));
                return Some(format!("%{name}"));
            }
            match &def.kind {
                TypeDefKind::List(t) => format!("list<{}>", wit_type(resolve, t, iface, uses)?),
                TypeDefKind::Option(t) => format!("option<{}>", wit_type(resolve, t, iface, uses)?),
                TypeDefKind::Tuple(t) => {
                    let types: Vec<String> =
                        t.types.iter().map(|t| wit_type(resolve, t, iface, uses)).collect::<Option<_>>()?;
                    format!("tuple<{}>", types.join(", "))
                }
                TypeDefKind::Result(r) => {
                    let side = |t: &Option<Type>, uses: &mut BTreeSet<String>| match t {
                        Some(t) => wit_type(resolve, t, iface, uses),
                        None => Some("_".into()),
                    };
                    match (&r.ok, &r.err) {
                        (None, None) => "result".into(),
                        (ok, None) => format!("result<{}>", side(ok, uses)?),
                        (ok, err) => format!("result<{}, {}>", side(ok, uses)?, side(err, uses)?),
                    }
                }
                TypeDefKind::Type(t) => wit_type(resolve, t, iface, uses)?,
                _ => return None,
            }
        }
    })
}

/// Can a named type cross into the adapter: nothing in it is a resource?
fn named_is_carried(resolve: &Resolve, id: wit_parser::TypeId) -> bool {
    let carried = |ty: &Type| match ty {
        Type::Id(id) => named_is_carried(resolve, *id),
        Type::ErrorContext => false,
        _ => true,
    };
    match &resolve.types[id].kind {
        TypeDefKind::Record(r) => r.fields.iter().all(|f| carried(&f.ty)),
        TypeDefKind::Tuple(t) => t.types.iter().all(carried),
        TypeDefKind::Variant(v) => v.cases.iter().all(|c| c.ty.as_ref().is_none_or(carried)),
        TypeDefKind::Option(t) | TypeDefKind::List(t) | TypeDefKind::Type(t) => carried(t),
        TypeDefKind::Result(r) => r.ok.as_ref().is_none_or(carried) && r.err.as_ref().is_none_or(carried),
        TypeDefKind::Enum(_) | TypeDefKind::Flags(_) => true,
        _ => false,
    }
}

/// Appends the loads of the flat values of a `ty` stored at `offset`, or
/// `None` for a type whose flattening depends on its value (variants).
fn push_loads(resolve: &Resolve, sizes: &SizeAlign, ty: &Type, offset: u32, out: &mut Vec<Load>) -> Option<()> {
    let mut load = |offset: u32, op: LoadOp| out.push(Load { offset, op });
    match ty {
        Type::Bool | Type::U8 => load(offset, LoadOp::U8),
        Type::S8 => load(offset, LoadOp::S8),
        Type::U16 => load(offset, LoadOp::U16),
        Type::S16 => load(offset, LoadOp::S16),
        Type::U32 | Type::S32 | Type::Char => load(offset, LoadOp::I32),
        Type::U64 | Type::S64 => load(offset, LoadOp::I64),
        Type::F32 => load(offset, LoadOp::F32),
        Type::F64 => load(offset, LoadOp::F64),
        Type::String => {
            load(offset, LoadOp::I32);
            load(offset + 4, LoadOp::I32);
        }
        Type::ErrorContext => return None,
        Type::Id(id) => match &resolve.types[*id].kind {
            TypeDefKind::Record(r) => {
                for (field_offset, ty) in sizes.field_offsets(r.fields.iter().map(|f| &f.ty)) {
                    push_loads(resolve, sizes, ty, offset + field_offset.size_wasm32() as u32, out)?;
                }
            }
            TypeDefKind::Tuple(t) => {
                for (field_offset, ty) in sizes.field_offsets(t.types.iter()) {
                    push_loads(resolve, sizes, ty, offset + field_offset.size_wasm32() as u32, out)?;
                }
            }
            TypeDefKind::List(_) => {
                load(offset, LoadOp::I32);
                load(offset + 4, LoadOp::I32);
            }
            TypeDefKind::Enum(e) => match e.tag() {
                Int::U8 => load(offset, LoadOp::U8),
                Int::U16 => load(offset, LoadOp::U16),
                Int::U32 | Int::U64 => load(offset, LoadOp::I32),
            },
            TypeDefKind::Flags(f) => match f.repr() {
                FlagsRepr::U8 => load(offset, LoadOp::U8),
                FlagsRepr::U16 => load(offset, LoadOp::U16),
                FlagsRepr::U32(n) => (0..n as u32).for_each(|i| load(offset + 4 * i, LoadOp::I32)),
            },
            TypeDefKind::Type(t) => push_loads(resolve, sizes, t, offset, out)?,
            _ => return None,
        },
    }
    Some(())
}

/// The entry point of a memory entry: `(ptr, len)` of the run's list; per
/// element, "stop if done or told to, load the arguments, call".
/// Afterwards the bump allocator (`bump`) starts over at `heap`.
pub(super) fn entry_body(
    entry: &MemoryEntry,
    results: usize,
    next: u32,
    import: u32,
    bump: u32,
    heap: u32,
) -> Function {
    let (ptr, len, i, element) = (0, 1, 2, 3);
    let mut body = Function::new([(2, ValType::I32)]);
    body.instruction(&Instruction::Block(BlockType::Empty));
    body.instruction(&Instruction::Loop(BlockType::Empty));
    body.instruction(&Instruction::LocalGet(i));
    body.instruction(&Instruction::LocalGet(len));
    body.instruction(&Instruction::I32GeU);
    body.instruction(&Instruction::BrIf(1));
    body.instruction(&Instruction::Call(next));
    body.instruction(&Instruction::I32Eqz);
    body.instruction(&Instruction::BrIf(1));
    body.instruction(&Instruction::LocalGet(ptr));
    body.instruction(&Instruction::LocalGet(i));
    body.instruction(&Instruction::I32Const(entry.elem_size as i32));
    body.instruction(&Instruction::I32Mul);
    body.instruction(&Instruction::I32Add);
    body.instruction(&Instruction::LocalSet(element));
    if entry.indirect {
        body.instruction(&Instruction::LocalGet(element));
    }
    for load in &entry.loads {
        body.instruction(&Instruction::LocalGet(element));
        let arg = |align| MemArg { offset: u64::from(load.offset), align, memory_index: 0 };
        body.instruction(&match load.op {
            LoadOp::U8 => Instruction::I32Load8U(arg(0)),
            LoadOp::S8 => Instruction::I32Load8S(arg(0)),
            LoadOp::U16 => Instruction::I32Load16U(arg(1)),
            LoadOp::S16 => Instruction::I32Load16S(arg(1)),
            LoadOp::I32 => Instruction::I32Load(arg(2)),
            LoadOp::I64 => Instruction::I64Load(arg(3)),
            LoadOp::F32 => Instruction::F32Load(arg(2)),
            LoadOp::F64 => Instruction::F64Load(arg(3)),
        });
    }
    if entry.retptr.is_some() {
        body.instruction(&Instruction::I32Const(SCRATCH as i32));
    }
    body.instruction(&Instruction::Call(import));
    for _ in 0..results {
        body.instruction(&Instruction::Drop);
    }
    body.instruction(&Instruction::LocalGet(i));
    body.instruction(&Instruction::I32Const(1));
    body.instruction(&Instruction::I32Add);
    body.instruction(&Instruction::LocalSet(i));
    body.instruction(&Instruction::Br(0));
    body.instruction(&Instruction::End);
    body.instruction(&Instruction::End);
    body.instruction(&Instruction::I32Const(heap as i32));
    body.instruction(&Instruction::GlobalSet(bump));
    body.instruction(&Instruction::End);
    body
}

/// `cabi_realloc` over a bump allocator in global `bump`: aligns, grows
/// the memory when needed (a refused grow traps), copies on reallocation.
pub(super) fn realloc_body(bump: u32) -> Function {
    let (old, old_size, align, size, at, end, pages) = (0, 1, 2, 3, 4, 5, 6);
    let mut body = Function::new([(3, ValType::I32)]);
    // at = (bump + align - 1) & -align; end = at + size
    body.instruction(&Instruction::GlobalGet(bump));
    body.instruction(&Instruction::LocalGet(align));
    body.instruction(&Instruction::I32Add);
    body.instruction(&Instruction::I32Const(1));
    body.instruction(&Instruction::I32Sub);
    body.instruction(&Instruction::I32Const(0));
    body.instruction(&Instruction::LocalGet(align));
    body.instruction(&Instruction::I32Sub);
    body.instruction(&Instruction::I32And);
    body.instruction(&Instruction::LocalTee(at));
    body.instruction(&Instruction::LocalGet(size));
    body.instruction(&Instruction::I32Add);
    body.instruction(&Instruction::LocalTee(end));
    // Wrapped around: no such allocation.
    body.instruction(&Instruction::LocalGet(at));
    body.instruction(&Instruction::I32LtU);
    body.instruction(&Instruction::If(BlockType::Empty));
    body.instruction(&Instruction::Unreachable);
    body.instruction(&Instruction::End);
    // pages = ceil(end / 64 KiB) - memory.size, grown if positive
    body.instruction(&Instruction::LocalGet(end));
    body.instruction(&Instruction::I64ExtendI32U);
    body.instruction(&Instruction::I64Const(65535));
    body.instruction(&Instruction::I64Add);
    body.instruction(&Instruction::I64Const(16));
    body.instruction(&Instruction::I64ShrU);
    body.instruction(&Instruction::I32WrapI64);
    body.instruction(&Instruction::MemorySize(0));
    body.instruction(&Instruction::I32Sub);
    body.instruction(&Instruction::LocalTee(pages));
    body.instruction(&Instruction::I32Const(0));
    body.instruction(&Instruction::I32GtS);
    body.instruction(&Instruction::If(BlockType::Empty));
    body.instruction(&Instruction::LocalGet(pages));
    body.instruction(&Instruction::MemoryGrow(0));
    body.instruction(&Instruction::I32Const(-1));
    body.instruction(&Instruction::I32Eq);
    body.instruction(&Instruction::If(BlockType::Empty));
    body.instruction(&Instruction::Unreachable);
    body.instruction(&Instruction::End);
    body.instruction(&Instruction::End);
    body.instruction(&Instruction::LocalGet(end));
    body.instruction(&Instruction::GlobalSet(bump));
    // A reallocation keeps the old contents.
    body.instruction(&Instruction::LocalGet(old));
    body.instruction(&Instruction::If(BlockType::Empty));
    body.instruction(&Instruction::LocalGet(at));
    body.instruction(&Instruction::LocalGet(old));
    body.instruction(&Instruction::LocalGet(old_size));
    body.instruction(&Instruction::MemoryCopy { src_mem: 0, dst_mem: 0 });
    body.instruction(&Instruction::End);
    body.instruction(&Instruction::LocalGet(at));
    body.instruction(&Instruction::End);
    body
}
