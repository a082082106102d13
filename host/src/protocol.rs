//! An actor's message protocol: the functions its component exports, and
//! the type checking of messages against them.
//!
//! Every exported interface (except troupe's own `lifecycle` and
//! `persistence`) and every top-level exported function is part of the
//! protocol. A message is a WAVE call, `func(arg, ...)`; it is parsed and
//! type-checked here, before it is queued, so an ill-typed message never
//! reaches the actor and the sender learns the expected signature.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use serde::Serialize;

use crate::engine::batch;
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex, Type, Val};

/// The WIT package version of the `troupe:actor` API this host provides.
pub const TROUPE_API_VERSION: &str = "0.2.0";

const LIFECYCLE: &str = "troupe:actor/lifecycle";
const PERSISTENCE: &str = "troupe:actor/persistence";
const SHUTDOWN: &str = "troupe:actor/shutdown";
const WATCHER: &str = "troupe:actor/watcher";

/// The type of `troupe:actor/watcher.down`, as [`TypeDisplay`] renders it.
const DOWN_SHAPE: &str = "func(notice: record { address: string, reason: variant { stopped, failed(record { kind: \
    enum { out-of-fuel, deadline, memory-limit, stack-overflow, panic, trap, host-call, init, restore, instantiate, \
    escalated, linked }, detail: string }) }, gone: bool })";

/// One function of a protocol.
#[derive(Debug, Clone)]
pub struct Function {
    /// The exported interface it belongs to (`acme:counter/api@0.1.0`), or
    /// `None` for a function exported at the top level of the world.
    pub interface: Option<String>,
    /// The function's name (`incr`).
    pub name: String,
    /// Parameter names and types.
    pub params: Vec<(String, Type)>,
    /// The result type, if the function has one.
    pub result: Option<Type>,
    /// Why it cannot be called as a message, if it cannot.
    pub unsupported: Option<String>,
}

impl Function {
    /// The fully qualified name, `iface.func`, or `func` for top-level ones.
    pub fn qualified_name(&self) -> String {
        match &self.interface {
            Some(iface) => format!("{iface}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// The signature in WIT-like syntax: `incr(by: u64) -> u64`.
    pub fn signature(&self) -> String {
        let mut s = format!("{}(", self.name);
        for (i, (name, ty)) in self.params.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{name}: {}", TypeDisplay(ty));
        }
        s.push(')');
        if let Some(result) = &self.result {
            let _ = write!(s, " -> {}", TypeDisplay(result));
        }
        s
    }

    /// The identity of the function across versions: its interface
    /// without version, and its name.
    fn key(&self) -> (Option<&str>, &str) {
        let iface = self.interface.as_deref().map(|i| i.split('@').next().unwrap_or(i));
        (iface, &self.name)
    }

    /// Do the two functions take and return the same types?
    pub fn same_type(&self, other: &Function) -> bool {
        self.result == other.result
            && self.params.len() == other.params.len()
            && self.params.iter().zip(&other.params).all(|((_, a), (_, b))| a == b)
    }

    /// Does `query` (as written by a sender) name this function? Accepts
    /// `func`, `iface.func`, `ns:pkg/iface.func` and the same with a version.
    fn answers_to(&self, qualifier: Option<&str>) -> bool {
        let (Some(q), Some(iface)) = (qualifier, &self.interface) else {
            return qualifier.is_none();
        };
        if iface == q {
            return true;
        }
        let unversioned = iface.split('@').next().unwrap_or(iface);
        let short = unversioned.rsplit('/').next().unwrap_or(unversioned);
        q == unversioned || q == short
    }
}

/// Where a compiled component's protocol functions and lifecycle exports
/// are. Indices belong to one compiled [`Component`]: a component compiled
/// for another engine has its own.
#[derive(Debug, Clone, Default)]
pub struct Exports {
    /// The protocol's functions, in [`Protocol::functions`] order.
    pub funcs: Vec<ComponentExportIndex>,
    /// The batch entry points (see [`crate::engine::batch`]).
    pub batch: Arc<Batching>,
    /// The optional troupe lifecycle exports.
    pub lifecycle: Lifecycle,
}

/// A component's batch entry points.
#[derive(Debug, Clone, Default)]
pub struct Batching {
    /// Each protocol function's own, in [`Protocol::functions`] order.
    pub entries: Box<[Option<BatchEntry>]>,
    /// The one that takes tells to several functions in one call.
    pub mixed: Option<MixedEntry>,
    /// The one that takes one message to any function it serves, through
    /// a fixed signature the host calls as a typed function.
    pub call: Option<CallEntry>,
}

/// The call entry point (see [`batch::CallLayout`]).
#[derive(Debug, Clone)]
pub struct CallEntry {
    /// Where it is.
    pub index: ComponentExportIndex,
    /// Each protocol function's place in it, if it is served.
    pub members: Box<[Option<CallMember>]>,
}

/// A function the call entry point serves.
#[derive(Debug, Clone)]
pub struct CallMember {
    /// Its tag.
    pub tag: u32,
    /// Its parameter types, to flatten its arguments by.
    pub params: Box<[Type]>,
    /// How its result comes back.
    pub result: batch::FlatResult,
}

impl CallMember {
    /// The call entry point's arguments for `args`, or `None` if they do
    /// not flatten into its [`batch::CALL_WIDTH`] places (not expected:
    /// calls are type-checked).
    pub fn lower(&self, args: &[Val]) -> Option<batch::CallArgs> {
        let mut flat = [0u64; batch::CALL_WIDTH];
        let mut count = 0;
        let fits = self.params.len() == args.len()
            && self.params.iter().zip(args).all(|(ty, arg)| {
                batch::flatten_into(ty, arg, &mut |v| {
                    if let Some(place) = flat.get_mut(count) {
                        *place = batch::to_call_arg(&v);
                    }
                    count += 1;
                })
            });
        if !fits || count > batch::CALL_WIDTH {
            return None;
        }
        let [a0, a1, a2, a3, a4, a5, a6] = flat;
        Some((self.tag, a0, a1, a2, a3, a4, a5, a6))
    }
}

/// The mixed batch entry point: per message a tag saying which function,
/// and its flat arguments joined into a common layout.
#[derive(Debug, Clone)]
pub struct MixedEntry {
    /// Where it is.
    pub index: ComponentExportIndex,
    /// The most messages one call delivers.
    pub slots: usize,
    /// The type of each value after a message's tag.
    pub joins: Box<[wasm_encoder::ValType]>,
    /// Each protocol function's tag, if it is served.
    pub tags: Box<[Option<u32>]>,
}

/// A protocol function's batch entry point: one call delivers up to
/// `per_entry` messages to the function.
#[derive(Debug, Clone)]
pub struct BatchEntry {
    /// Where it is.
    pub index: ComponentExportIndex,
    /// The most messages one call delivers.
    pub per_entry: usize,
    /// Zeros for one message's flat arguments, to fill the slots of the
    /// messages a call does not use.
    pub zeros: Box<[Val]>,
    /// Whether the arguments travel in memory: the entry point takes the
    /// run as one `list<tuple<arguments>>`, not flat values in registers.
    pub in_memory: bool,
}

impl Batching {
    /// The entry points among a compiled component's `entries` (name ->
    /// index and parameter count) that serve `functions`, checked against
    /// the layout the host lowers arguments in.
    fn new(functions: &[Function], entries: &HashMap<String, (ComponentExportIndex, Vec<Type>)>) -> Self {
        let own: Box<[Option<BatchEntry>]> = functions
            .iter()
            .map(|f| {
                let (index, params) = entries.get(&batch::entry_name(f.interface.as_deref()?, &f.name))?;
                let index = *index;
                if let [Type::List(list)] = params.as_slice() {
                    // The arguments travel in memory, as a list of tuples.
                    let Type::Tuple(tuple) = list.ty() else { return None };
                    if tuple.types().len() != f.params.len() || !tuple.types().zip(&f.params).all(|(a, (_, b))| a == *b)
                    {
                        return None;
                    }
                    let per_entry = batch::MAX_MESSAGES_PER_ENTRY;
                    return Some(BatchEntry { index, per_entry, zeros: Box::default(), in_memory: true });
                }
                let flat = f.params.iter().map(|(_, t)| batch::flat_count(t)).sum::<Option<usize>>()?;
                let per_entry = batch::messages_per_entry(flat);
                // The host's flattening must agree with the adapter's.
                if params.len() != 1 + per_entry * flat {
                    return None;
                }
                let mut zeros = Vec::with_capacity(flat);
                f.params.iter().for_each(|(_, t)| batch::zeros(t, &mut zeros));
                Some(BatchEntry { index, per_entry, zeros: zeros.into(), in_memory: false })
            })
            .collect();
        let served = functions.iter().zip(&own).enumerate().filter_map(|(i, (f, entry))| {
            let entry = entry.as_ref().filter(|e| !e.in_memory)?;
            let flat = entry.zeros.iter().map(flat_type).collect();
            Some((batch::entry_name(f.interface.as_deref()?, &f.name), flat, i as u32))
        });
        let mixed = batch::MixedLayout::new(served.collect()).and_then(|layout| {
            // Its name says which functions the adapter serves, in which
            // order: the same list as here, or the tags would be wrong.
            let (index, params) = entries.get(&layout.name)?;
            if layout.params() != params.len() {
                return None;
            }
            let index = *index;
            let mut tags = vec![None; functions.len()];
            for (tag, &func) in layout.members.iter().enumerate() {
                tags[func as usize] = Some(tag as u32);
            }
            Some(MixedEntry { index, slots: layout.slots, joins: layout.joins.into(), tags: tags.into() })
        });
        let called = functions.iter().zip(&own).enumerate().filter_map(|(i, (f, entry))| {
            entry.as_ref().filter(|e| !e.in_memory && e.zeros.len() <= batch::CALL_WIDTH)?;
            // (A getter's result comes back through memory: never flat.)
            let result = batch::FlatResult::of(f.result.as_ref())?;
            Some((batch::entry_name(f.interface.as_deref()?, &f.name), (i, result)))
        });
        let call = batch::CallLayout::new(called.collect()).and_then(|layout| {
            let (index, params) = entries.get(&layout.name)?;
            if params.len() != 1 + batch::CALL_WIDTH {
                return None;
            }
            let mut members = vec![None; functions.len()];
            for (tag, (func, result)) in layout.members.into_iter().enumerate() {
                let params = functions[func].params.iter().map(|(_, ty)| ty.clone()).collect();
                members[func] = Some(CallMember { tag: tag as u32, params, result });
            }
            Some(CallEntry { index: *index, members: members.into() })
        });
        Batching { entries: own, mixed, call }
    }
}

/// The flat type a value of [`batch::flatten`]'s output travels as.
fn flat_type(val: &Val) -> wasm_encoder::ValType {
    match val {
        Val::U64(_) => wasm_encoder::ValType::I64,
        Val::Float32(_) => wasm_encoder::ValType::F32,
        Val::Float64(_) => wasm_encoder::ValType::F64,
        _ => wasm_encoder::ValType::I32,
    }
}

/// Which optional troupe lifecycle exports a component has.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    /// `troupe:actor/lifecycle.init`.
    pub init: Option<ComponentExportIndex>,
    /// `troupe:actor/persistence.snapshot`.
    pub snapshot: Option<ComponentExportIndex>,
    /// `troupe:actor/persistence.restore`.
    pub restore: Option<ComponentExportIndex>,
    /// `troupe:actor/shutdown.stop`.
    pub stop: Option<ComponentExportIndex>,
    /// `troupe:actor/watcher.down`.
    pub down: Option<ComponentExportIndex>,
}

/// A protocol interface a component imports: one that other actors
/// export, satisfied by the host through a binding (see
/// [`crate::actor::binding`]).
#[derive(Debug, Clone)]
pub struct ImportedInterface {
    /// Its full name, e.g. `acme:counter/api@1.0.0`.
    pub name: String,
    /// Its functions.
    pub functions: Vec<Function>,
}

impl ImportedInterface {
    /// The function named `name`.
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }
}

/// A component's message protocol.
#[derive(Debug, Clone)]
pub struct Protocol {
    functions: Vec<Function>,
    by_name: HashMap<String, Vec<u32>>,
}

/// Why a component cannot be an actor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// It exports no interface and no function.
    #[error(
        "the component exports no interface: an actor's message protocol is the WIT interface \
         it exports (add `export my-protocol;` to its world)"
    )]
    NoExports,
    /// It was built against another version of the troupe API.
    #[error(
        "the component exports `{found}`, but this host provides troupe:actor@{TROUPE_API_VERSION}: \
         rebuild it against the WIT in this host's `wit/` directory"
    )]
    ApiVersion {
        /// The export as found.
        found: String,
    },
    /// A troupe lifecycle function has the wrong type.
    #[error("`{name}` has type `{found}`, but troupe:actor@{TROUPE_API_VERSION} declares `{expected}`")]
    LifecycleType {
        /// The function.
        name: String,
        /// What the component has.
        found: String,
        /// What troupe expects.
        expected: &'static str,
    },
}

/// Why a message was refused before it was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Not a WAVE call at all.
    #[error("malformed message `{text}`: {reason}; write it as WAVE, e.g. `incr(5)` or `greet(\"ada\")`")]
    Syntax {
        /// The message (truncated).
        text: String,
        /// The parser's explanation.
        reason: String,
    },
    /// No function of that name.
    #[error("unknown function `{name}`; the actor accepts: {accepted}")]
    UnknownFunction {
        /// The name as written.
        name: String,
        /// The protocol's signatures, comma-separated.
        accepted: String,
    },
    /// Several exported interfaces have a function of that name.
    #[error("`{name}` is ambiguous; qualify it as one of: {candidates}")]
    Ambiguous {
        /// The name as written.
        name: String,
        /// The qualified candidates.
        candidates: String,
    },
    /// The arguments do not fit the signature.
    #[error("ill-typed message for `{signature}`: {reason}")]
    IllTyped {
        /// The expected signature.
        signature: String,
        /// What does not fit.
        reason: String,
    },
    /// The function cannot be called as a message.
    #[error("`{signature}` cannot be called as a message: {reason}")]
    Unsupported {
        /// The function's signature.
        signature: String,
        /// Why.
        reason: String,
    },
    /// Larger than the receiver accepts.
    #[error("message of {size} bytes exceeds the receiver's limit of {limit} bytes (`max-message-bytes`)")]
    TooLarge {
        /// The message size.
        size: u64,
        /// The receiver's limit.
        limit: u64,
    },
}

/// A type-checked message: which function, with which arguments.
#[derive(Debug, Clone)]
pub struct Call {
    /// Index of the function in its [`Protocol`].
    pub func: u32,
    /// The arguments, already of the function's parameter types.
    pub args: Box<[Val]>,
    /// Which of the receiver's code versions the call was checked against
    /// (0 for the first): after a hot swap, queued calls are mapped to the
    /// new protocol by function name.
    pub generation: u32,
}

/// How a new protocol differs from an old one, for hot swap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProtocolDiff {
    /// Functions whose signature changed: (old, new).
    pub changed: Vec<(String, String)>,
    /// Old functions the new protocol lacks.
    pub missing: Vec<String>,
    /// New functions (allowed).
    pub added: Vec<String>,
}

impl ProtocolDiff {
    /// Can the new protocol serve every message the old one accepted?
    pub fn is_compatible(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty()
    }
}

impl fmt::Display for ProtocolDiff {
    /// A unified-diff-like listing: `-` old, `+` new.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (old, new) in &self.changed {
            writeln!(f, "- {old}")?;
            writeln!(f, "+ {new}")?;
        }
        for old in &self.missing {
            writeln!(f, "- {old}    (missing)")?;
        }
        for new in &self.added {
            writeln!(f, "+ {new}    (added)")?;
        }
        Ok(())
    }
}

impl Call {
    /// The call as WAVE text with its function fully qualified: the form a
    /// message takes when it leaves this host (see
    /// [`WireMessage`](crate::message::WireMessage)).
    pub fn to_wave(&self, protocol: &Protocol) -> String {
        let f = protocol.function(self.func);
        let mut text = f.qualified_name();
        text.push('(');
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            // Values built by the parser or checked by `Protocol::check`
            // always render; a failure would be a wasmtime bug.
            text.push_str(&arg.to_wave().unwrap_or_default());
        }
        text.push(')');
        text
    }
}

impl Protocol {
    /// Reads the protocol and lifecycle exports of `component`.
    ///
    /// # Errors
    ///
    /// [`ProtocolError`] if the component exports nothing callable, or
    /// targets another version of the troupe API.
    pub fn of(component: &Component, engine: &wasmtime::Engine) -> Result<(Protocol, Exports), ProtocolError> {
        let mut functions = Vec::new();
        let mut exports = Exports::default();
        let mut entries = HashMap::new();
        let lifecycle = &mut exports.lifecycle;
        let ty = component.component_type();
        for (export, item) in ty.exports(engine) {
            match item.ty {
                ComponentItem::ComponentInstance(instance) => {
                    let names = instance
                        .exports(engine)
                        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentFunc(_)))
                        .map(|(name, _)| name);
                    if is_toolchain_export(export, names) {
                        continue;
                    }
                    let Some(iface_index) = component.get_export_index(None, export) else {
                        continue;
                    };
                    if export == batch::DELIVER_INTERFACE {
                        for (name, item) in instance.exports(engine) {
                            if let (ComponentItem::ComponentFunc(func), Some(index)) =
                                (item.ty, component.get_export_index(Some(&iface_index), name))
                            {
                                entries.insert(
                                    name.to_string(),
                                    (index, func.params().map(|(_, t)| t).collect::<Vec<_>>()),
                                );
                            }
                        }
                        continue;
                    }
                    let troupe = troupe_interface(export)?;
                    for (name, item) in instance.exports(engine) {
                        let ComponentItem::ComponentFunc(func) = item.ty else {
                            continue;
                        };
                        let Some(index) = component.get_export_index(Some(&iface_index), name) else {
                            continue;
                        };
                        match troupe {
                            Some(iface) => lifecycle.record(iface, name, &func, index)?,
                            None => {
                                functions.push(Function::new(Some(export), name, &func));
                                exports.funcs.push(index);
                            }
                        }
                    }
                }
                ComponentItem::ComponentFunc(func) => {
                    if let Some(index) = component.get_export_index(None, export) {
                        functions.push(Function::new(None, export, &func));
                        exports.funcs.push(index);
                    }
                }
                _ => {}
            }
        }
        if functions.is_empty() {
            return Err(ProtocolError::NoExports);
        }
        exports.batch = Arc::new(Batching::new(&functions, &entries));
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, f) in functions.iter().enumerate() {
            by_name.entry(f.name.clone()).or_default().push(i as u32);
        }
        Ok((Protocol { functions, by_name }, exports))
    }

    /// The protocol's functions, in export order.
    pub fn functions(&self) -> &[Function] {
        &self.functions
    }

    /// The protocol interfaces `component` imports: every imported
    /// interface but WASI's and troupe's own.
    pub fn imports_of(component: &Component, engine: &wasmtime::Engine) -> Vec<ImportedInterface> {
        let mut imports = Vec::new();
        for (name, item) in component.component_type().imports(engine) {
            if name.starts_with("wasi:") || name.starts_with("troupe:actor/") || name == batch::PROGRESS_INTERFACE {
                continue;
            }
            let ComponentItem::ComponentInstance(instance) = item.ty else { continue };
            let functions = instance
                .exports(engine)
                .filter_map(|(f, item)| match item.ty {
                    ComponentItem::ComponentFunc(func) => Some(Function::new(Some(name), f, &func)),
                    _ => None,
                })
                .collect();
            imports.push(ImportedInterface { name: name.to_string(), functions });
        }
        imports
    }

    /// The index of the function with `interface` (any version) and
    /// `name`, if this protocol has it.
    pub fn find(&self, interface: &str, name: &str) -> Option<u32> {
        self.functions.iter().position(|f| f.key() == (Some(interface), name)).map(|i| i as u32)
    }

    /// How `new` differs from this protocol: changed signatures, missing
    /// and added functions. Functions match by interface (any version) and
    /// name; parameter names may change, types may not.
    pub fn diff(&self, new: &Protocol) -> ProtocolDiff {
        let mut diff = ProtocolDiff::default();
        let label = |f: &Function| match &f.interface {
            Some(iface) => format!("{iface}.{}", f.signature()),
            None => f.signature(),
        };
        for old in &self.functions {
            match new.functions.iter().find(|n| n.key() == old.key()) {
                Some(n) if n.same_type(old) => {}
                Some(n) => diff.changed.push((label(old), label(n))),
                None => diff.missing.push(label(old)),
            }
        }
        for n in &new.functions {
            if !self.functions.iter().any(|old| old.key() == n.key()) {
                diff.added.push(label(n));
            }
        }
        diff
    }

    /// For each function of this protocol, the index of the same function
    /// (same interface and name, same types) in `new`, if it has one.
    pub fn remap(&self, new: &Protocol) -> Vec<Option<u32>> {
        self.functions
            .iter()
            .map(|old| new.functions.iter().position(|n| n.key() == old.key() && n.same_type(old)).map(|i| i as u32))
            .collect()
    }

    /// The function at `index`.
    pub fn function(&self, index: u32) -> &Function {
        &self.functions[index as usize]
    }

    /// Every signature, comma-separated, for error messages.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for (i, f) in self.functions.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&f.signature());
        }
        s
    }

    /// Finds the function a sender means by `name` (`func`, `iface.func`,
    /// or `ns:pkg/iface@ver.func`).
    ///
    /// # Errors
    ///
    /// [`MessageError::UnknownFunction`] or [`MessageError::Ambiguous`].
    pub fn resolve(&self, name: &str) -> Result<u32, MessageError> {
        let (qualifier, bare) = match name.rfind('.') {
            Some(dot) => (Some(&name[..dot]), &name[dot + 1..]),
            None => (None, name),
        };
        let candidates = self.by_name.get(bare).map(Vec::as_slice).unwrap_or(&[]);
        let matching: Vec<u32> = candidates
            .iter()
            .copied()
            .filter(|&i| qualifier.is_none() || self.function(i).answers_to(qualifier))
            .collect();
        match matching.as_slice() {
            [one] => Ok(*one),
            [] => Err(MessageError::UnknownFunction { name: name.to_string(), accepted: self.summary() }),
            many => Err(MessageError::Ambiguous {
                name: name.to_string(),
                candidates: many.iter().map(|&i| self.function(i).qualified_name()).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// Parses and type-checks a WAVE call against this protocol.
    ///
    /// # Errors
    ///
    /// A [`MessageError`] naming the problem and the expected signature.
    pub fn parse(&self, text: &str, max_bytes: u64) -> Result<Call, MessageError> {
        let size = text.len() as u64;
        if size > max_bytes {
            return Err(MessageError::TooLarge { size, limit: max_bytes });
        }
        let text = text.trim();
        let syntax = |reason: String| MessageError::Syntax { text: truncate(text, 80), reason };
        let open = text.find('(').ok_or_else(|| syntax("expected `(` after the function name".into()))?;
        let name = text[..open].trim();
        if name.is_empty() {
            return Err(syntax("missing function name".into()));
        }
        let func = self.resolve(name)?;
        let f = self.function(func);
        if let Some(reason) = &f.unsupported {
            return Err(MessageError::Unsupported { signature: f.signature(), reason: reason.clone() });
        }
        // WAVE's call syntax takes a plain label as the name: hand it the
        // bare name and keep the qualifier to ourselves.
        let call_text = format!("{}{}", f.name, &text[open..]);
        let call = wasm_wave::untyped::UntypedFuncCall::parse(&call_text).map_err(|e| syntax(e.to_string()))?;
        let args = call
            .to_wasm_params::<Val>(f.params.iter().map(|(_, ty)| ty))
            .map_err(|e| MessageError::IllTyped { signature: f.signature(), reason: f.explain(&call, &e) })?
            .into_boxed_slice();
        Ok(Call { func, args, generation: 0 })
    }

    /// Checks that `args` fit function `func` (for messages built from
    /// typed values rather than text, e.g. by the library API).
    ///
    /// # Errors
    ///
    /// [`MessageError::IllTyped`] naming the first argument that does not fit.
    pub fn check(&self, func: u32, args: &[Val]) -> Result<(), MessageError> {
        let f = self.function(func);
        let ill = |reason: String| MessageError::IllTyped { signature: f.signature(), reason };
        if args.len() != f.params.len() {
            return Err(ill(format!("expected {} argument(s), got {}", f.params.len(), args.len())));
        }
        for ((name, ty), val) in f.params.iter().zip(args) {
            if !val_has_type(val, ty) {
                return Err(ill(format!("argument `{name}` is not a {}", TypeDisplay(ty))));
            }
        }
        Ok(())
    }
}

impl Function {
    /// Says which argument of `call` did not fit and why, in terms of the
    /// signature rather than WAVE's byte offsets alone.
    fn explain(
        &self,
        call: &wasm_wave::untyped::UntypedFuncCall<'_>,
        error: &wasm_wave::parser::ParserError,
    ) -> String {
        let src = call.source();
        let args: Vec<&wasm_wave::ast::Node> =
            call.params_node().and_then(|p| p.as_tuple().ok()).map(|t| t.collect()).unwrap_or_default();
        let needed = self.params.iter().filter(|(_, ty)| !matches!(ty, Type::Option(_))).count();
        if args.len() > self.params.len() || args.len() < needed {
            return format!("expected {} argument(s), got {}", self.params.len(), args.len());
        }
        let at = error.span().start;
        let culprit = args.iter().zip(&self.params).find(|(node, _)| node.span().contains(&at));
        match culprit {
            Some((node, (name, ty))) => {
                let text = src.get(node.span()).map(|t| truncate(t, 40)).unwrap_or_default();
                let detail = error.detail().map(|d| format!(" ({d})")).unwrap_or_default();
                format!("argument `{name}` expects {}, got `{text}`: {}{detail}", TypeDisplay(ty), error.kind())
            }
            None => error.to_string(),
        }
    }

    fn new(interface: Option<&str>, name: &str, func: &ComponentFunc) -> Self {
        let params: Vec<(String, Type)> = func.params().map(|(n, t)| (n.to_string(), t)).collect();
        let result = func.results().next();
        let unsupported = if func.async_() {
            Some("it is an async (WASIp3) function; troupe calls synchronous exports".to_string())
        } else if params.iter().map(|(_, t)| t).chain(result.iter()).any(has_handle) {
            Some("it passes a resource handle, which cannot leave its actor".to_string())
        } else {
            None
        };
        Function { interface: interface.map(str::to_string), name: name.to_string(), params, result, unsupported }
    }
}

/// Is this export a toolchain's build-time hook rather than part of the
/// actor's protocol? componentize-py 0.25 leaves its pre-initialisation
/// interface, a bare `exports` with a single `init`, in every component.
pub fn is_toolchain_export<'a>(name: &str, mut functions: impl Iterator<Item = &'a str>) -> bool {
    name == "exports" && functions.next() == Some("init") && functions.next().is_none()
}

/// Which troupe interface, if any, an export is.
fn troupe_interface(export: &str) -> Result<Option<&'static str>, ProtocolError> {
    for iface in [LIFECYCLE, PERSISTENCE, SHUTDOWN, WATCHER] {
        if let Some(rest) = export.strip_prefix(iface) {
            return match rest.strip_prefix('@') {
                Some(TROUPE_API_VERSION) => Ok(Some(iface)),
                _ => Err(ProtocolError::ApiVersion { found: export.to_string() }),
            };
        }
    }
    Ok(None)
}

impl Lifecycle {
    fn record(
        &mut self,
        iface: &str,
        name: &str,
        func: &ComponentFunc,
        index: ComponentExportIndex,
    ) -> Result<(), ProtocolError> {
        let shape = func_shape(func);
        let (slot, expected) = match (iface, name) {
            (LIFECYCLE, "init") => (&mut self.init, "func(config: list<tuple<string, string>>) -> result<_, string>"),
            (PERSISTENCE, "snapshot") => (&mut self.snapshot, "func() -> record { version: string, bytes: list<u8> }"),
            (PERSISTENCE, "restore") => {
                (&mut self.restore, "func(state: record { version: string, bytes: list<u8> }) -> result<_, string>")
            }
            (SHUTDOWN, "stop") => (&mut self.stop, "func()"),
            (WATCHER, "down") => (&mut self.down, DOWN_SHAPE),
            _ => return Ok(()),
        };
        if shape != expected {
            return Err(ProtocolError::LifecycleType { name: format!("{iface}.{name}"), found: shape, expected });
        }
        *slot = Some(index);
        Ok(())
    }
}

fn func_shape(func: &ComponentFunc) -> String {
    let mut s = String::from("func(");
    for (i, (name, ty)) in func.params().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{name}: {}", TypeDisplay(&ty));
    }
    s.push(')');
    if let Some(result) = func.results().next() {
        let _ = write!(s, " -> {}", TypeDisplay(&result));
    }
    s
}

fn has_handle(ty: &Type) -> bool {
    match ty {
        Type::Own(_) | Type::Borrow(_) | Type::Stream(_) | Type::Future(_) | Type::ErrorContext => true,
        Type::List(l) => has_handle(&l.ty()),
        Type::FixedLengthList(l) => has_handle(&l.ty()),
        Type::Record(r) => r.fields().any(|f| has_handle(&f.ty)),
        Type::Tuple(t) => t.types().any(|t| has_handle(&t)),
        Type::Variant(v) => v.cases().any(|c| c.ty.as_ref().is_some_and(has_handle)),
        Type::Option(o) => has_handle(&o.ty()),
        Type::Result(r) => r.ok().as_ref().is_some_and(has_handle) || r.err().as_ref().is_some_and(has_handle),
        Type::Map(m) => has_handle(&m.key()) || has_handle(&m.value()),
        _ => false,
    }
}

/// Does `val` have type `ty`? Structural, for values built by the library
/// API rather than parsed from text.
pub fn val_has_type(val: &Val, ty: &Type) -> bool {
    match (val, ty) {
        (Val::Bool(_), Type::Bool)
        | (Val::S8(_), Type::S8)
        | (Val::U8(_), Type::U8)
        | (Val::S16(_), Type::S16)
        | (Val::U16(_), Type::U16)
        | (Val::S32(_), Type::S32)
        | (Val::U32(_), Type::U32)
        | (Val::S64(_), Type::S64)
        | (Val::U64(_), Type::U64)
        | (Val::Float32(_), Type::Float32)
        | (Val::Float64(_), Type::Float64)
        | (Val::Char(_), Type::Char)
        | (Val::String(_), Type::String) => true,
        (Val::List(items), Type::List(l)) => {
            let elem = l.ty();
            items.iter().all(|v| val_has_type(v, &elem))
        }
        (Val::Record(fields), Type::Record(r)) => {
            fields.len() == r.fields().len()
                && fields.iter().zip(r.fields()).all(|((n, v), f)| n == f.name && val_has_type(v, &f.ty))
        }
        (Val::Tuple(items), Type::Tuple(t)) => {
            items.len() == t.types().len() && items.iter().zip(t.types()).all(|(v, ty)| val_has_type(v, &ty))
        }
        (Val::Variant(case, payload), Type::Variant(v)) => v.cases().any(|c| {
            c.name == case
                && match (payload, &c.ty) {
                    (None, None) => true,
                    (Some(p), Some(ty)) => val_has_type(p, ty),
                    _ => false,
                }
        }),
        (Val::Enum(case), Type::Enum(e)) => e.names().any(|n| n == case),
        (Val::Option(v), Type::Option(o)) => v.as_deref().is_none_or(|v| val_has_type(v, &o.ty())),
        (Val::Result(r), Type::Result(rt)) => match r {
            Ok(v) => payload_fits(v.as_deref(), rt.ok()),
            Err(v) => payload_fits(v.as_deref(), rt.err()),
        },
        (Val::Flags(set), Type::Flags(f)) => set.iter().all(|s| f.names().any(|n| n == s)),
        _ => false,
    }
}

fn payload_fits(val: Option<&Val>, ty: Option<Type>) -> bool {
    match (val, ty) {
        (None, None) => true,
        (Some(v), Some(t)) => val_has_type(v, &t),
        _ => false,
    }
}

/// The size of a value's payload in bytes: what a size limit on typed
/// messages counts (string and list contents, and 8 bytes per scalar).
pub fn payload_size(val: &Val) -> u64 {
    match val {
        Val::String(s) => s.len() as u64,
        Val::List(items) | Val::Tuple(items) => items.iter().map(payload_size).sum::<u64>() + 8,
        Val::Record(fields) => fields.iter().map(|(_, v)| payload_size(v)).sum::<u64>() + 8,
        Val::Variant(_, Some(v)) => payload_size(v) + 8,
        Val::Option(Some(v)) => payload_size(v) + 8,
        Val::Result(Ok(Some(v)) | Err(Some(v))) => payload_size(v) + 8,
        Val::Flags(f) => f.len() as u64 * 8,
        _ => 8,
    }
}

/// Renders a component type in WIT-like syntax. Named types are rendered
/// structurally (`record { x: u32 }`): the engine's types carry no names.
pub struct TypeDisplay<'a>(pub &'a Type);

impl fmt::Display for TypeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, items: &mut dyn Iterator<Item = Type>| -> fmt::Result {
            for (i, t) in items.enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{}", TypeDisplay(&t))?;
            }
            Ok(())
        };
        match self.0 {
            Type::Bool => f.write_str("bool"),
            Type::S8 => f.write_str("s8"),
            Type::U8 => f.write_str("u8"),
            Type::S16 => f.write_str("s16"),
            Type::U16 => f.write_str("u16"),
            Type::S32 => f.write_str("s32"),
            Type::U32 => f.write_str("u32"),
            Type::S64 => f.write_str("s64"),
            Type::U64 => f.write_str("u64"),
            Type::Float32 => f.write_str("f32"),
            Type::Float64 => f.write_str("f64"),
            Type::Char => f.write_str("char"),
            Type::String => f.write_str("string"),
            Type::List(l) => write!(f, "list<{}>", TypeDisplay(&l.ty())),
            Type::FixedLengthList(l) => write!(f, "list<{}, {}>", TypeDisplay(&l.ty()), l.len()),
            Type::Map(m) => write!(f, "map<{}, {}>", TypeDisplay(&m.key()), TypeDisplay(&m.value())),
            Type::Record(r) => {
                f.write_str("record { ")?;
                for (i, field) in r.fields().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {}", field.name, TypeDisplay(&field.ty))?;
                }
                f.write_str(" }")
            }
            Type::Tuple(t) => {
                f.write_str("tuple<")?;
                list(f, &mut t.types())?;
                f.write_str(">")
            }
            Type::Variant(v) => {
                f.write_str("variant { ")?;
                for (i, case) in v.cases().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match &case.ty {
                        Some(ty) => write!(f, "{}({})", case.name, TypeDisplay(ty))?,
                        None => f.write_str(case.name)?,
                    }
                }
                f.write_str(" }")
            }
            Type::Enum(e) => write!(f, "enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
            Type::Flags(fl) => write!(f, "flags {{ {} }}", fl.names().collect::<Vec<_>>().join(", ")),
            Type::Option(o) => write!(f, "option<{}>", TypeDisplay(&o.ty())),
            Type::Result(r) => match (r.ok(), r.err()) {
                (None, None) => f.write_str("result"),
                (Some(ok), None) => write!(f, "result<{}>", TypeDisplay(&ok)),
                (None, Some(err)) => write!(f, "result<_, {}>", TypeDisplay(&err)),
                (Some(ok), Some(err)) => {
                    write!(f, "result<{}, {}>", TypeDisplay(&ok), TypeDisplay(&err))
                }
            },
            Type::Own(_) => f.write_str("own<resource>"),
            Type::Borrow(_) => f.write_str("borrow<resource>"),
            Type::Stream(_) => f.write_str("stream"),
            Type::Future(_) => f.write_str("future"),
            Type::ErrorContext => f.write_str("error-context"),
        }
    }
}

/// A protocol function as shown by `troupe ps --json` and the control API.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionInfo {
    /// Qualified name.
    pub name: String,
    /// Signature.
    pub signature: String,
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
