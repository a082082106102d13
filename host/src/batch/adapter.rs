//! The adapter component's source: its WIT world (it imports the actor's
//! interfaces and the host's progress hook, and exports the entry points)
//! and its core module, generated instruction by instruction.
//!
//! For an entry point taking registers, the core code is a straight run of
//! "stop if done, call `next`, call the function" per message slot; for
//! one taking a list, a loop over its elements (see `memory.rs`); and, if
//! any does, a memory and its bump allocator.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use wasm_encoder::{
    BlockType, CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection, ImportSection,
    Instruction, Module, TypeSection, ValType,
};

use super::memory;
use super::plan::{Mixed, Plan, Served, messages_per_entry};
use super::{CALL_WIDTH, DELIVER_INTERFACE, PROGRESS_FUNCTION, PROGRESS_INTERFACE};

/// The WIT type through which a flat type travels.
fn wit_type(ty: ValType) -> &'static str {
    match ty {
        ValType::I64 => "u64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        _ => "u32",
    }
}

/// The WIT world of the adapter (named `adapter`, in package
/// `troupe:batch`): it imports the actor's interfaces and the host's
/// progress hook, and exports the entry points.
pub(super) fn adapter_wit(plan: &Plan) -> String {
    let entries = &plan.entries;
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
        // The count is the first parameter.
        for (i, ty) in params.skip(1).enumerate() {
            let _ = write!(wit, ", a{i}: {}", wit_type(ty));
        }
        wit.push_str(");\n");
    };
    for entry in entries {
        match &entry.memory {
            None => registers(&mut wit, &entry.export, &mut registers_params(entry)),
            Some(memory) => {
                let _ = writeln!(wit, "  {}: func(batch: list<{}>);", entry.export, memory.tuple);
            }
        }
    }
    if let Some(mixed) = &plan.mixed {
        registers(&mut wit, plan.mixed_export(), &mut mixed.params());
    }
    if plan.call.is_some() {
        let _ = write!(wit, "  {}: func(tag: u32", plan.call_export());
        for i in 0..CALL_WIDTH {
            let _ = write!(wit, ", a{i}: u64");
        }
        wit.push_str(") -> u64;\n");
    }
    wit.push_str("}\n\nworld adapter {\n");
    for interface in &plan.imported {
        let _ = writeln!(wit, "  import {interface};");
    }
    wit.push_str("  import progress;\n  export deliver;\n}\n");
    wit
}

/// The core parameters of the entry point of `entry`, which takes its
/// arguments in registers: the count, then each message slot's arguments.
fn registers_params(entry: &Served) -> impl Iterator<Item = ValType> + '_ {
    let per_entry = messages_per_entry(entry.params.len());
    std::iter::once(ValType::I32).chain((0..per_entry).flat_map(|_| entry.params.iter().copied()))
}

/// The adapter's core module.
pub(super) fn adapter_module(plan: &Plan) -> Vec<u8> {
    let entries = &plan.entries;
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
        let name = format!("{DELIVER_INTERFACE}#{}", entry.export);
        let import = i as u32 + 1;
        match &entry.memory {
            None => {
                let params: Vec<ValType> = registers_params(entry).collect();
                let per_entry = messages_per_entry(entry.params.len());
                define(&params, &[], &name, &registers_body(entry, per_entry, next, import));
            }
            Some(memory) => {
                let body = memory::entry_body(memory, entry.results.len(), next, import, bump, heap);
                define(&[ValType::I32, ValType::I32], &[], &name, &body);
            }
        }
    }
    if let Some(mixed) = &plan.mixed {
        let params: Vec<ValType> = mixed.params().collect();
        let name = format!("{DELIVER_INTERFACE}#{}", plan.mixed_export());
        define(&params, &[], &name, &mixed_body(entries, mixed, next));
    }
    if let Some(call) = &plan.call {
        let params: Vec<ValType> = std::iter::once(ValType::I32).chain([ValType::I64; CALL_WIDTH]).collect();
        let name = format!("{DELIVER_INTERFACE}#{}", plan.call_export());
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
fn registers_body(entry: &Served, per_entry: usize, next: u32, import: u32) -> Function {
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
fn mixed_body(entries: &[Served], mixed: &Mixed, next: u32) -> Function {
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
fn call_body(entries: &[Served], call: &[usize]) -> Function {
    let cases = call.len() as u32;
    let mut body = Function::new([]);
    body.instruction(&Instruction::Block(BlockType::Empty)); // bad tag
    for _ in 0..cases {
        body.instruction(&Instruction::Block(BlockType::Empty));
    }
    body.instruction(&Instruction::LocalGet(0));
    body.instruction(&Instruction::BrTable((0..cases).collect::<Vec<_>>().into(), cases));
    for &member in call {
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
