//! Batch entry points for functions whose arguments live in memory:
//! strings, lists, options, results and variants, and records holding
//! them.
//!
//! Such an entry point takes the run as one `list<tuple<arguments>>`. The
//! host lowers the list into the adapter's own linear memory (through the
//! adapter's bump allocator, `cabi_realloc`); the adapter then loads each
//! message's flat arguments from its element (a string is a pointer and a
//! length; a variant its discriminant and its payload joined as the
//! canonical ABI flattens it) and calls the function, whose fused adapter
//! copies strings and lists on into the actor's memory. After the run the bump allocator
//! starts over: nothing in the adapter's memory outlives a call.

use std::collections::BTreeSet;

use wasm_encoder::{BlockType, Function, Instruction, MemArg, ValType};
use wit_parser::abi::{AbiVariant, WasmType};
use wit_parser::{FlagsRepr, FunctionKind, Int, Resolve, SizeAlign, Type, TypeDefKind, TypeOwner};

/// Where the adapter writes an indirect result it then ignores: past the
/// null page's first bytes, below the allocator's heap.
pub(super) const SCRATCH: u32 = 16;

/// The adapter's locals in a memory entry point: its parameters (the
/// list's pointer and length), the loop's index, the current element,
/// then what [`Loader`] asks for.
const PTR: u32 = 0;
const LEN: u32 = 1;
const INDEX: u32 = 2;
const ELEMENT: u32 = 3;
const FIRST_LOCAL: u32 = 4;

/// How a flat value is loaded.
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

/// The code that pushes one message's flat arguments, loaded from its
/// element (local `ELEMENT`) by the canonical ABI's layout, and the locals
/// it needs for variants.
#[derive(Debug, Clone, Default)]
struct Loader {
    code: Vec<Instruction<'static>>,
    locals: Vec<ValType>,
}

impl Loader {
    fn local(&mut self, ty: ValType) -> u32 {
        self.locals.push(ty);
        FIRST_LOCAL + self.locals.len() as u32 - 1
    }

    fn load(&mut self, offset: u32, op: LoadOp) -> ValType {
        self.code.push(Instruction::LocalGet(ELEMENT));
        let arg = |align| MemArg { offset: u64::from(offset), align, memory_index: 0 };
        let (instruction, ty) = match op {
            LoadOp::U8 => (Instruction::I32Load8U(arg(0)), ValType::I32),
            LoadOp::S8 => (Instruction::I32Load8S(arg(0)), ValType::I32),
            LoadOp::U16 => (Instruction::I32Load16U(arg(1)), ValType::I32),
            LoadOp::S16 => (Instruction::I32Load16S(arg(1)), ValType::I32),
            LoadOp::I32 => (Instruction::I32Load(arg(2)), ValType::I32),
            LoadOp::I64 => (Instruction::I64Load(arg(3)), ValType::I64),
            LoadOp::F32 => (Instruction::F32Load(arg(2)), ValType::F32),
            LoadOp::F64 => (Instruction::F64Load(arg(3)), ValType::F64),
        };
        self.code.push(instruction);
        ty
    }

    /// Emits the loads of the flat values of a `ty` stored at `offset`;
    /// returns their types, or `None` for what cannot be carried.
    fn push(&mut self, resolve: &Resolve, sizes: &SizeAlign, ty: &Type, offset: u32) -> Option<Vec<ValType>> {
        Some(match ty {
            Type::Bool | Type::U8 => vec![self.load(offset, LoadOp::U8)],
            Type::S8 => vec![self.load(offset, LoadOp::S8)],
            Type::U16 => vec![self.load(offset, LoadOp::U16)],
            Type::S16 => vec![self.load(offset, LoadOp::S16)],
            Type::U32 | Type::S32 | Type::Char => vec![self.load(offset, LoadOp::I32)],
            Type::U64 | Type::S64 => vec![self.load(offset, LoadOp::I64)],
            Type::F32 => vec![self.load(offset, LoadOp::F32)],
            Type::F64 => vec![self.load(offset, LoadOp::F64)],
            Type::String => vec![self.load(offset, LoadOp::I32), self.load(offset + 4, LoadOp::I32)],
            Type::ErrorContext => return None,
            Type::Id(id) => match &resolve.types[*id].kind {
                TypeDefKind::Record(r) => self.fields(resolve, sizes, r.fields.iter().map(|f| &f.ty), offset)?,
                TypeDefKind::Tuple(t) => self.fields(resolve, sizes, t.types.iter(), offset)?,
                TypeDefKind::List(_) => vec![self.load(offset, LoadOp::I32), self.load(offset + 4, LoadOp::I32)],
                TypeDefKind::Enum(e) => vec![self.load(offset, tag_op(e.tag()))],
                TypeDefKind::Flags(f) => match f.repr() {
                    FlagsRepr::U8 => vec![self.load(offset, LoadOp::U8)],
                    FlagsRepr::U16 => vec![self.load(offset, LoadOp::U16)],
                    FlagsRepr::U32(n) => (0..n as u32).map(|i| self.load(offset + 4 * i, LoadOp::I32)).collect(),
                },
                TypeDefKind::Option(t) => self.variant(resolve, sizes, Int::U8, &[None, Some(t)], offset)?,
                TypeDefKind::Result(r) => {
                    self.variant(resolve, sizes, Int::U8, &[r.ok.as_ref(), r.err.as_ref()], offset)?
                }
                TypeDefKind::Variant(v) => {
                    let cases: Vec<Option<&Type>> = v.cases.iter().map(|c| c.ty.as_ref()).collect();
                    self.variant(resolve, sizes, v.tag(), &cases, offset)?
                }
                TypeDefKind::Type(t) => self.push(resolve, sizes, t, offset)?,
                _ => return None,
            },
        })
    }

    fn fields<'a>(
        &mut self,
        resolve: &Resolve,
        sizes: &SizeAlign,
        types: impl Iterator<Item = &'a Type>,
        offset: u32,
    ) -> Option<Vec<ValType>> {
        let types: Vec<&Type> = types.collect();
        let mut flat = Vec::new();
        for (field_offset, ty) in sizes.field_offsets(types.iter().copied()) {
            flat.extend(self.push(resolve, sizes, ty, offset + field_offset.size_wasm32() as u32)?);
        }
        Some(flat)
    }

    /// A variant's flat values: its discriminant, then the canonical ABI's
    /// join of its cases' payloads, place by place. Each case's payload is
    /// loaded, widened to the joined types and kept in locals; the
    /// discriminant picks the case.
    fn variant(
        &mut self,
        resolve: &Resolve,
        sizes: &SizeAlign,
        tag: Int,
        cases: &[Option<&Type>],
        offset: u32,
    ) -> Option<Vec<ValType>> {
        let payload = offset + sizes.payload_offset(tag, cases.iter().copied()).size_wasm32() as u32;
        let mut loaded = Vec::new();
        for case in cases {
            let start = self.code.len();
            let flat = match case {
                Some(ty) => self.push(resolve, sizes, ty, payload)?,
                None => Vec::new(),
            };
            loaded.push((self.code.split_off(start), flat));
        }
        let width = loaded.iter().map(|(_, flat)| flat.len()).max().unwrap_or(0);
        let joins: Vec<ValType> = (0..width)
            .map(|i| {
                loaded
                    .iter()
                    .filter_map(|(_, flat)| flat.get(i).copied())
                    .reduce(super::plan::join)
                    .unwrap_or(ValType::I32)
            })
            .collect();
        let disc = self.local(ValType::I32);
        let slots: Vec<u32> = joins.iter().map(|&ty| self.local(ty)).collect();
        self.load(offset, tag_op(tag));
        self.code.push(Instruction::LocalSet(disc));
        // Locals keep the previous message's values: clear them.
        for (&slot, &ty) in slots.iter().zip(&joins) {
            self.code.push(match ty {
                ValType::I64 => Instruction::I64Const(0),
                ValType::F32 => Instruction::F32Const(0.0f32.into()),
                ValType::F64 => Instruction::F64Const(0.0f64.into()),
                _ => Instruction::I32Const(0),
            });
            self.code.push(Instruction::LocalSet(slot));
        }
        let n = loaded.len() as u32;
        self.code.push(Instruction::Block(BlockType::Empty));
        for _ in 0..n {
            self.code.push(Instruction::Block(BlockType::Empty));
        }
        self.code.push(Instruction::LocalGet(disc));
        self.code.push(Instruction::BrTable((0..n).collect::<Vec<_>>().into(), n - 1));
        for (case, (code, flat)) in loaded.into_iter().enumerate() {
            self.code.push(Instruction::End);
            self.code.extend(code);
            for (k, &ty) in flat.iter().enumerate().rev() {
                self.code.extend(widen(ty, joins[k]));
                self.code.push(Instruction::LocalSet(slots[k]));
            }
            // Out past the remaining cases' blocks.
            self.code.push(Instruction::Br(n - 1 - case as u32));
        }
        self.code.push(Instruction::End);
        self.code.push(Instruction::LocalGet(disc));
        for &slot in &slots {
            self.code.push(Instruction::LocalGet(slot));
        }
        Some(std::iter::once(ValType::I32).chain(joins).collect())
    }
}

/// How a discriminant of type `tag` is loaded.
fn tag_op(tag: Int) -> LoadOp {
    match tag {
        Int::U8 => LoadOp::U8,
        Int::U16 => LoadOp::U16,
        Int::U32 | Int::U64 => LoadOp::I32,
    }
}

/// Widens a flat value of type `from` to the joined type `to`, as the
/// canonical ABI lowers a variant's payload.
fn widen(from: ValType, to: ValType) -> Vec<Instruction<'static>> {
    match (from, to) {
        (ValType::F32, ValType::I32) => vec![Instruction::I32ReinterpretF32],
        (ValType::I32, ValType::I64) => vec![Instruction::I64ExtendI32U],
        (ValType::F32, ValType::I64) => vec![Instruction::I32ReinterpretF32, Instruction::I64ExtendI32U],
        (ValType::F64, ValType::I64) => vec![Instruction::I64ReinterpretF64],
        _ => Vec::new(),
    }
}

/// How the adapter delivers a run to a function whose arguments live in
/// memory.
#[derive(Debug, Clone)]
pub(super) struct MemoryEntry {
    /// The WIT type of a list element: `tuple<...>` of the arguments.
    pub tuple: String,
    /// The named types that `tuple` mentions: the interface that defines
    /// each (`acme:x/types@0.1.0`) and its escaped name (`%point`).
    pub uses: BTreeSet<(String, String)>,
    /// The code that pushes an element's flat arguments (none when
    /// `indirect`).
    loader: Loader,
    /// Bytes from one element to the next.
    elem_size: u32,
    /// The function takes its arguments through a pointer (more than 16
    /// flat values): the element itself, laid out as the arguments' tuple.
    indirect: bool,
    /// Bytes of an indirect result, written at [`SCRATCH`].
    pub retptr: Option<u32>,
}

/// The memory entry of `func`, if the adapter can serve it: at least one
/// argument, and no resources.
pub(super) fn memory_entry(resolve: &Resolve, sizes: &SizeAlign, func: &wit_parser::Function) -> Option<MemoryEntry> {
    if !matches!(func.kind, FunctionKind::Freestanding) || func.params.is_empty() {
        return None;
    }
    let mut uses = BTreeSet::new();
    let types: Vec<String> = func.params.iter().map(|p| wit_type(resolve, &p.ty, &mut uses)).collect::<Option<_>>()?;
    // The result comes back into the adapter's memory: no resources. The
    // entry point does not name it, so it may be of any interface.
    if func.result.as_ref().is_some_and(|ty| !carried(resolve, ty)) {
        return None;
    }
    let sig = resolve.wasm_signature(AbiVariant::GuestImport, func);
    let param_types: Vec<&Type> = func.params.iter().map(|p| &p.ty).collect();
    let element = sizes.record(param_types.iter().copied());
    let mut loader = Loader::default();
    if !sig.indirect_params {
        let mut flat = Vec::new();
        for (offset, ty) in sizes.field_offsets(param_types.iter().copied()) {
            flat.extend(loader.push(resolve, sizes, ty, offset.size_wasm32() as u32)?);
        }
        // They must be what the function takes (an indirect result's
        // pointer comes last).
        let expected: Vec<ValType> = sig.params.iter().map(core_type).collect();
        if flat.len() + usize::from(sig.retptr) != expected.len() || flat[..] != expected[..flat.len()] {
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
        loader,
        elem_size: element.size.size_wasm32() as u32,
        indirect: sig.indirect_params,
        retptr,
    })
}

/// Where the bump allocator starts: past the scratch space the largest
/// of the indirect results (their sizes) needs.
pub(super) fn heap_base(results: impl Iterator<Item = u32>) -> u32 {
    (SCRATCH + results.max().unwrap_or(0)).next_multiple_of(16)
}

/// For a function without arguments whose result comes back through
/// memory (a getter; a tell discards what it returns), the result's size.
pub(super) fn getter_result(resolve: &Resolve, sizes: &SizeAlign, func: &wit_parser::Function) -> Option<u32> {
    let result = func.result.as_ref()?;
    if !matches!(func.kind, FunctionKind::Freestanding) || !func.params.is_empty() || !carried(resolve, result) {
        return None;
    }
    let sig = resolve.wasm_signature(AbiVariant::GuestImport, func);
    sig.retptr.then(|| sizes.size(result).size_wasm32() as u32)
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
/// the named types it mentions and where they are defined; `None` for what
/// the adapter cannot name or carry (resources, types not defined in an
/// interface).
fn wit_type(resolve: &Resolve, ty: &Type, uses: &mut BTreeSet<(String, String)>) -> Option<String> {
    if !carried(resolve, ty) {
        return None;
    }
    crate::protocol::wit_syntax::render(resolve, ty, &mut |id, name| {
        let TypeOwner::Interface(owner) = resolve.types[id].owner else { return None };
        uses.insert((resolve.id_of(owner)?, format!("%{name}")));
        Some(format!("%{name}"))
    })
}

/// Can a value of `ty` cross into the adapter: nothing in it is a
/// resource?
fn carried(resolve: &Resolve, ty: &Type) -> bool {
    match ty {
        Type::Id(id) => named_is_carried(resolve, *id),
        Type::ErrorContext => false,
        _ => true,
    }
}

/// Can a type definition cross into the adapter: nothing in it is a
/// resource?
fn named_is_carried(resolve: &Resolve, id: wit_parser::TypeId) -> bool {
    let carried = |ty: &Type| carried(resolve, ty);
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
    let (ptr, len, i, element) = (PTR, LEN, INDEX, ELEMENT);
    let locals: Vec<(u32, ValType)> =
        std::iter::once((2, ValType::I32)).chain(entry.loader.locals.iter().map(|&ty| (1, ty))).collect();
    let mut body = Function::new(locals);
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
    for instruction in &entry.loader.code {
        body.instruction(instruction);
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
