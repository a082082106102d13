//! The host's half of batch delivery: a compiled component's entry points
//! as its layout names them and its exports confirm ([`Tables`], one per
//! compiled component), an incarnation's handles on them ([`Dispatch`]),
//! and a run of tells, or one message through the typed call entry point,
//! lowered into an entry point's arguments.
//!
//! Everything a message pays for is decided when the component is loaded:
//! lowering a run looks up its entry point by the function's index, and
//! allocates once for the run's arguments.

use std::sync::Arc;

use tracing::debug;
use wasmtime::AsContextMut;
use wasmtime::component::types::{ComponentFunc, ComponentInstance, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex, Func, Instance, Type, TypedFunc, Val};

use super::layout::{Arguments, FlatResult, FlatType, Layout};
use super::lower::{self, flat_types, flatten, flatten_into};
use super::{CALL_WIDTH, CallArgs, DELIVER_INTERFACE, MAX_MESSAGES_PER_ENTRY};
use crate::message::Envelope;
use crate::protocol::{Call, Protocol};

/// The call entry point, as the host calls it: a typed function.
pub(crate) type CallFunc = TypedFunc<CallArgs, (u64,)>;

/// A compiled component's entry points, checked against its exports: for
/// each protocol function (by its index in the [`Protocol`]) its own entry
/// point, its tag in the mixed one, its place in the call entry point.
/// Empty for a component without batch delivery.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    own: Box<[Option<OwnEntry>]>,
    mixed: Option<MixedEntry>,
    call: Option<CallEntry>,
}

/// A function's own entry point: one call delivers up to `per_entry`
/// messages to the function.
#[derive(Debug)]
struct OwnEntry {
    index: ComponentExportIndex,
    per_entry: usize,
    /// Zeros for one message's flat arguments, to fill the places of the
    /// messages a call does not use.
    zeros: Box<[Val]>,
    /// Whether the arguments travel in memory: the entry point takes the
    /// run as one `list<tuple<arguments>>`, not flat values.
    in_memory: bool,
}

/// The mixed entry point: per message a tag saying which function, and
/// its flat arguments joined into a common layout.
#[derive(Debug)]
struct MixedEntry {
    index: ComponentExportIndex,
    /// The most messages one call delivers.
    slots: usize,
    /// The type of each value after a message's tag.
    joins: Box<[FlatType]>,
    /// Each protocol function's tag, if it is served.
    tags: Box<[Option<u32>]>,
}

/// The call entry point.
#[derive(Debug)]
struct CallEntry {
    index: ComponentExportIndex,
    /// Each protocol function's place in it, if it is served.
    members: Box<[Option<CallMember>]>,
}

/// A function the call entry point serves.
#[derive(Debug)]
struct CallMember {
    tag: u32,
    /// Its parameter types, to flatten its arguments by.
    params: Box<[Type]>,
    result: FlatResult,
}

impl CallMember {
    /// The call entry point's arguments for `args`, or `None` if they do
    /// not flatten into its [`CALL_WIDTH`] places (not expected: calls are
    /// type-checked).
    fn lower(&self, args: &[Val]) -> Option<CallArgs> {
        let mut flat = [0u64; CALL_WIDTH];
        let mut count = 0;
        let fits = self.params.len() == args.len()
            && self.params.iter().zip(args).all(|(ty, arg)| {
                flatten_into(ty, arg, &mut |v| {
                    if let Some(place) = flat.get_mut(count) {
                        *place = lower::to_call_arg(&v);
                    }
                    count += 1;
                })
            });
        if !fits || count > CALL_WIDTH {
            return None;
        }
        let [a0, a1, a2, a3, a4, a5, a6] = flat;
        Some((self.tag, a0, a1, a2, a3, a4, a5, a6))
    }
}

impl Tables {
    /// The tables of the entry points `layout` describes, each checked
    /// against `component`'s real exports: it exists in
    /// [`DELIVER_INTERFACE`], and takes and returns exactly what the layout
    /// implies for the protocol function it serves.
    ///
    /// # Errors
    ///
    /// What does not fit, for a layout the host cannot trust: the component
    /// then runs without batch delivery.
    pub(crate) fn new(
        component: &Component,
        engine: &wasmtime::Engine,
        protocol: &Protocol,
        layout: &Layout,
    ) -> Result<Tables, String> {
        let deliver = Deliver::of(component, engine)?;
        let functions = protocol.functions();
        let mut own: Vec<Option<OwnEntry>> = functions.iter().map(|_| None).collect();
        // The protocol function each layout entry serves.
        let mut served = Vec::with_capacity(layout.entries.len());
        for entry in &layout.entries {
            let name = format!("{}.{}", entry.interface, entry.function);
            let func = protocol
                .find_exact(&entry.interface, &entry.function)
                .ok_or_else(|| format!("it names `{name}`, which the protocol lacks"))?;
            let f = protocol.function(func);
            if f.unsupported.is_some() {
                return Err(format!("it serves `{name}`, which cannot be called as a message"));
            }
            if !(1..=MAX_MESSAGES_PER_ENTRY).contains(&entry.messages) {
                return Err(format!("it gives `{name}` {} messages per call", entry.messages));
            }
            let (index, ty) = deliver.entry_point(&entry.export)?;
            let params: Vec<Type> = ty.params().map(|(_, t)| t).collect();
            let checked = match &entry.arguments {
                Arguments::Memory => {
                    let fits = match params.as_slice() {
                        [Type::List(list)] => match list.ty() {
                            Type::Tuple(tuple) => tuple.types().eq(f.params.iter().map(|(_, t)| t.clone())),
                            _ => false,
                        },
                        _ => false,
                    };
                    (fits && ty.results().len() == 0).then(|| OwnEntry {
                        index,
                        per_entry: entry.messages,
                        zeros: Box::default(),
                        in_memory: true,
                    })
                }
                Arguments::Registers { flat } => {
                    let mut lowered = Vec::with_capacity(flat.len());
                    let lowers = f.params.iter().all(|(_, t)| flat_types(t, &mut lowered)) && lowered == *flat;
                    let expected = std::iter::once(Type::U32)
                        .chain((0..entry.messages).flat_map(|_| flat.iter().map(|&t| lower::param_type(t))));
                    (lowers && has_type(&ty, expected, &[])).then(|| OwnEntry {
                        index,
                        per_entry: entry.messages,
                        zeros: flat.iter().map(|&t| lower::zero(t)).collect(),
                        in_memory: false,
                    })
                }
            };
            let checked = checked.ok_or_else(|| format!("`{}` does not take `{name}`'s arguments", entry.export))?;
            if own[func as usize].replace(checked).is_some() {
                return Err(format!("it gives `{name}` two entry points"));
            }
            served.push(func);
        }
        let mixed = match &layout.mixed {
            None => None,
            Some(mixed) => {
                if !(1..=MAX_MESSAGES_PER_ENTRY).contains(&mixed.slots) {
                    return Err(format!("its mixed entry point takes {} messages per call", mixed.slots));
                }
                let slot = std::iter::once(Type::U32).chain(mixed.joins.iter().map(|&t| lower::param_type(t)));
                let params = (0..mixed.slots).flat_map(|_| slot.clone());
                let (index, ty) = deliver.entry_point(&mixed.export)?;
                if !has_type(&ty, std::iter::once(Type::U32).chain(params), &[]) {
                    return Err(format!("`{}` does not take the arguments its layout implies", mixed.export));
                }
                let mut tags = vec![None; functions.len()];
                for (tag, &member) in mixed.members.iter().enumerate() {
                    let (func, flat) = registers(layout, &served, member)?;
                    let fits = flat.len() <= mixed.joins.len()
                        && flat.iter().zip(&mixed.joins).all(|(&ty, &joined)| ty.join(joined) == joined);
                    if !fits || tags[func as usize].replace(tag as u32).is_some() {
                        return Err(format!("`{}` cannot take the arguments of its member {member}", mixed.export));
                    }
                }
                let joins = mixed.joins.clone().into();
                Some(MixedEntry { index, slots: mixed.slots, joins, tags: tags.into() })
            }
        };
        let call = match &layout.call {
            None => None,
            Some(call) => {
                let params = std::iter::once(Type::U32).chain(std::iter::repeat_n(Type::U64, CALL_WIDTH));
                let (index, ty) = deliver.entry_point(&call.export)?;
                if !has_type(&ty, params, &[Type::U64]) {
                    return Err(format!("`{}` does not have the type of a call entry point", call.export));
                }
                let mut members: Vec<Option<CallMember>> = functions.iter().map(|_| None).collect();
                for (tag, member) in call.members.iter().enumerate() {
                    let (func, flat) = registers(layout, &served, member.entry)?;
                    let f = protocol.function(func);
                    let fits = flat.len() <= CALL_WIDTH && FlatResult::of(f.result.as_ref()) == Some(member.result);
                    let params = f.params.iter().map(|(_, t)| t.clone()).collect();
                    let checked = CallMember { tag: tag as u32, params, result: member.result };
                    if !fits || members[func as usize].replace(checked).is_some() {
                        return Err(format!("`{}` cannot serve its member {}", call.export, member.entry));
                    }
                }
                Some(CallEntry { index, members: members.into() })
            }
        };
        Ok(Tables { own: own.into(), mixed, call })
    }

    /// [`Tables::new`] for `layout`, if there is one; empty tables, and a
    /// note in the log, if it does not fit. `what` names the component.
    pub(crate) fn checked(
        component: &Component,
        engine: &wasmtime::Engine,
        protocol: &Protocol,
        layout: Option<&Layout>,
        what: &str,
    ) -> Tables {
        let Some(layout) = layout else { return Tables::default() };
        Tables::new(component, engine, protocol, layout).unwrap_or_else(|reason| {
            debug!(component = what, %reason, "batch layout does not fit the component: one call per message");
            Tables::default()
        })
    }

    /// Does no function have an entry point?
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.own.iter().all(Option::is_none) && self.mixed.is_none() && self.call.is_none()
    }
}

/// The protocol function of layout entry `entry`, and its flat arguments:
/// an entry taking registers, checked by [`Tables::new`] already.
fn registers<'a>(layout: &'a Layout, served: &[u32], entry: usize) -> Result<(u32, &'a [FlatType]), String> {
    match (served.get(entry), layout.entries.get(entry).map(|e| &e.arguments)) {
        (Some(&func), Some(Arguments::Registers { flat })) => Ok((func, flat)),
        _ => Err(format!("a member, entry {entry}, is no entry taking registers")),
    }
}

/// A component's [`DELIVER_INTERFACE`]: where its entry points are.
struct Deliver<'a> {
    component: &'a Component,
    engine: &'a wasmtime::Engine,
    index: ComponentExportIndex,
    ty: ComponentInstance,
}

impl<'a> Deliver<'a> {
    fn of(component: &'a Component, engine: &'a wasmtime::Engine) -> Result<Self, String> {
        let missing = || format!("it does not export `{DELIVER_INTERFACE}`");
        let ty = match component.component_type().get_export(engine, DELIVER_INTERFACE).map(|e| e.ty) {
            Some(ComponentItem::ComponentInstance(ty)) => ty,
            _ => return Err(missing()),
        };
        let index = component.get_export_index(None, DELIVER_INTERFACE).ok_or_else(missing)?;
        Ok(Deliver { component, engine, index, ty })
    }

    /// The entry point `name`: where it is, and its type.
    fn entry_point(&self, name: &str) -> Result<(ComponentExportIndex, ComponentFunc), String> {
        let func = match self.ty.get_export(self.engine, name).map(|e| e.ty) {
            Some(ComponentItem::ComponentFunc(func)) if !func.async_() => func,
            _ => return Err(format!("it has no entry point `{name}`")),
        };
        let index = self
            .component
            .get_export_index(Some(&self.index), name)
            .ok_or_else(|| format!("entry point `{name}` cannot be found"))?;
        Ok((index, func))
    }
}

/// Does `func` take exactly `params` and return exactly `results`?
fn has_type(func: &ComponentFunc, params: impl Iterator<Item = Type>, results: &[Type]) -> bool {
    func.params().map(|(_, t)| t).eq(params) && func.results().eq(results.iter().cloned())
}

/// Which batch entry point a run of tells goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunEntry {
    /// The function's own: every message is a call of it.
    Own(u32),
    /// The mixed one: each message says which function.
    Mixed,
}

impl RunEntry {
    /// The function every message of the run calls, if they call one.
    pub(crate) fn function(self) -> Option<u32> {
        match self {
            RunEntry::Own(func) => Some(func),
            RunEntry::Mixed => None,
        }
    }
}

/// An incarnation's entry points: the functions of its instance that
/// [`Tables`] names, and how to call them.
pub(crate) struct Dispatch {
    tables: Arc<Tables>,
    /// Each protocol function's own entry point, in protocol order; empty
    /// when no function has one.
    own: Box<[Option<Func>]>,
    mixed: Option<Func>,
    call: Option<CallFunc>,
}

impl Dispatch {
    /// No entry points yet, for an incarnation whose instance is on its
    /// way: [`Dispatch::new`] binds them.
    pub(crate) fn unbound(tables: &Arc<Tables>) -> Self {
        Dispatch { tables: tables.clone(), own: Box::default(), mixed: None, call: None }
    }

    /// The entry points of `instance` (in `store`) that `tables` names.
    pub(crate) fn new(tables: &Arc<Tables>, instance: &Instance, mut store: impl AsContextMut) -> Self {
        let own = if tables.own.iter().any(Option::is_some) {
            tables.own.iter().map(|e| e.as_ref().and_then(|e| instance.get_func(&mut store, e.index))).collect()
        } else {
            Box::default()
        };
        let mixed = tables.mixed.as_ref().and_then(|m| instance.get_func(&mut store, m.index));
        // Its signature was checked when the component was loaded; a
        // mismatch here only means messages take the untyped way.
        let call = tables.call.as_ref().and_then(|c| instance.get_typed_func(&mut store, c.index).ok());
        Dispatch { tables: tables.clone(), own, mixed, call }
    }

    /// How many messages one call of `func`'s own entry point delivers; 0
    /// when it has none.
    pub(crate) fn own_capacity(&self, func: u32) -> usize {
        match (self.own.get(func as usize), self.tables.own.get(func as usize)) {
            (Some(Some(_)), Some(Some(entry))) => entry.per_entry,
            _ => 0,
        }
    }

    /// Does the mixed entry point take tells to `func`?
    pub(crate) fn mixes(&self, func: u32) -> bool {
        self.mixed.is_some()
            && self.tables.mixed.as_ref().is_some_and(|m| m.tags.get(func as usize).is_some_and(Option::is_some))
    }

    /// How many messages one call of the mixed entry point delivers, if it
    /// takes tells to `func`; 0 if not.
    pub(crate) fn mixed_capacity(&self, func: u32) -> usize {
        match &self.tables.mixed {
            Some(mixed) if self.mixes(func) => mixed.slots,
            _ => 0,
        }
    }

    /// Can tells to `func` go into the guest several per call?
    pub(crate) fn serves(&self, func: u32) -> bool {
        self.own_capacity(func) > 0 || self.mixes(func)
    }

    /// The arguments of `entry` for `run`, or `None` if this incarnation
    /// lacks the entry point or an argument does not lower (not expected:
    /// runs are gathered for an entry point, and calls are type-checked).
    ///
    /// Arguments that travel in memory are moved out of the envelopes into
    /// the list the entry point takes; [`give_back`] returns them.
    pub(crate) fn lower(&self, protocol: &Protocol, run: &mut [Envelope], entry: RunEntry) -> Option<Lowered> {
        let flatten_args = |envelope: &Envelope, out: &mut Vec<Val>| {
            let params = &protocol.function(envelope.call.func).params;
            params.len() == envelope.call.args.len()
                && params.iter().zip(&envelope.call.args).all(|((_, ty), v)| flatten(ty, v, out))
        };
        let messages = u32::try_from(run.len()).ok()?;
        match entry {
            RunEntry::Own(func) => {
                let handle = (*self.own.get(func as usize)?)?;
                let own = self.tables.own.get(func as usize)?.as_ref()?;
                if run.len() > own.per_entry || run.iter().any(|e| e.call.func != func) {
                    return None;
                }
                if own.in_memory {
                    return Some(Lowered { entry: handle, messages, args: vec![take_args(run)] });
                }
                let mut args = Vec::with_capacity(1 + own.per_entry * own.zeros.len());
                args.push(Val::U32(messages));
                for envelope in run.iter() {
                    flatten_args(envelope, &mut args).then_some(())?;
                }
                // Each message's arguments must fill exactly its places.
                if args.len() != 1 + run.len() * own.zeros.len() {
                    return None;
                }
                for _ in run.len()..own.per_entry {
                    args.extend_from_slice(&own.zeros);
                }
                Some(Lowered { entry: handle, messages, args })
            }
            RunEntry::Mixed => {
                let handle = self.mixed?;
                let mixed = self.tables.mixed.as_ref()?;
                if run.len() > mixed.slots {
                    return None;
                }
                let width = mixed.joins.len();
                let mut args = Vec::with_capacity(1 + mixed.slots * (1 + width));
                args.push(Val::U32(messages));
                let mut flat = Vec::with_capacity(width);
                for envelope in run.iter() {
                    args.push(Val::U32((*mixed.tags.get(envelope.call.func as usize)?)?));
                    flat.clear();
                    flatten_args(envelope, &mut flat).then_some(())?;
                    let used = flat.len();
                    if used > width {
                        return None;
                    }
                    args.extend(flat.drain(..).zip(mixed.joins.iter()).map(|(v, &j)| lower::to_join(v, j)));
                    args.extend(mixed.joins[used..].iter().map(|&j| lower::zero(j)));
                }
                for _ in run.len()..mixed.slots {
                    args.push(Val::U32(0));
                    args.extend(mixed.joins.iter().map(|&j| lower::zero(j)));
                }
                Some(Lowered { entry: handle, messages, args })
            }
        }
    }

    /// The call entry point, its arguments for `call` and how its result
    /// comes back, if it serves `call`'s function.
    pub(crate) fn typed_call(&self, call: &Call) -> Option<(CallFunc, CallArgs, FlatResult)> {
        let entry = self.call?;
        let member = self.tables.call.as_ref()?.members.get(call.func as usize)?.as_ref()?;
        Some((entry, member.lower(&call.args)?, member.result))
    }
}

/// A run of tells lowered into the arguments of an entry point.
pub(crate) struct Lowered {
    entry: Func,
    messages: u32,
    args: Vec<Val>,
}

impl Lowered {
    /// The entry point to call.
    pub(crate) fn entry(&self) -> Func {
        self.entry
    }

    /// How many messages the run has: the adapter starts no more.
    pub(crate) fn messages(&self) -> u32 {
        self.messages
    }

    /// The entry point's arguments.
    pub(crate) fn args(&self) -> &[Val] {
        &self.args
    }
}

/// The run's arguments as the list a memory entry point takes, moved out
/// of the envelopes.
fn take_args(run: &mut [Envelope]) -> Val {
    Val::List(run.iter_mut().map(|e| Val::Tuple(std::mem::take(&mut e.call.args).into_vec())).collect())
}

/// Puts the arguments that [`Dispatch::lower`] moved into a list back into
/// the envelopes (the ones that go back to the mailbox need them).
pub(crate) fn give_back(run: &mut [Envelope], lowered: Lowered) {
    let Some(Val::List(list)) = lowered.args.into_iter().next() else { return };
    for (envelope, tuple) in run.iter_mut().zip(list) {
        if let Val::Tuple(values) = tuple
            && envelope.call.args.is_empty()
        {
            envelope.call.args = values.into_boxed_slice();
        }
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::component::Linker;

    use super::*;
    use crate::batch::compose::tests::from_wit;
    use crate::batch::{Composed, PROGRESS_FUNCTION, PROGRESS_INTERFACE, compose};

    /// A counter with a function of each kind: `incr` (a number in
    /// registers), `get` and `reset` (no arguments), `note` (a string, in
    /// memory).
    fn counter() -> Composed {
        let component = from_wit(
            "package acme:x@0.1.0;
             interface api {
               incr: func(by: u64) -> u64;
               get: func() -> u64;
               reset: func();
               note: func(text: string);
             }
             world w { export api; }",
            r#"(module
                 (memory (export "memory") 1)
                 (global $n (mut i64) (i64.const 0))
                 (func (export "acme:x/api@0.1.0#incr") (param i64) (result i64)
                   (global.set $n (i64.add (global.get $n) (local.get 0))) (global.get $n))
                 (func (export "acme:x/api@0.1.0#get") (result i64) (global.get $n))
                 (func (export "acme:x/api@0.1.0#reset") (global.set $n (i64.const 0)))
                 (func (export "acme:x/api@0.1.0#note") (param i32 i32)
                   (global.set $n (i64.add (global.get $n) (i64.extend_i32_u (local.get 1)))))
                 (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8))"#,
        );
        compose(&component, true).unwrap().expect("every function is served")
    }

    struct Compiled {
        engine: wasmtime::Engine,
        component: Component,
        protocol: Protocol,
        /// The layout the component carries, read back from its bytes.
        layout: Layout,
    }

    fn compiled(composed: &Composed) -> Compiled {
        let engine = wasmtime::Engine::default();
        let component = Component::new(&engine, &composed.bytes).unwrap();
        let protocol = Protocol::of(&component, &engine).unwrap();
        let layout = Layout::read(&composed.bytes).unwrap();
        Compiled { engine, component, protocol, layout }
    }

    impl Compiled {
        fn tables(&self, layout: &Layout) -> Result<Tables, String> {
            Tables::new(&self.component, &self.engine, &self.protocol, layout)
        }

        fn func(&self, name: &str) -> u32 {
            self.protocol.resolve(name).unwrap()
        }
    }

    #[test]
    fn the_host_uses_the_layout_the_component_carries() {
        let composed = counter();
        let c = compiled(&composed);
        assert_eq!(c.layout, composed.layout, "what the host reads is what the generator wrote");
        let tables = c.tables(&c.layout).expect("the generator's layout fits its component");
        let own =
            |name| tables.own[c.func(name) as usize].as_ref().map(|e| (e.per_entry, e.zeros.to_vec(), e.in_memory));
        assert_eq!(own("incr"), Some((15, vec![Val::U64(0)], false)));
        assert_eq!(own("get"), Some((15, vec![], false)));
        assert_eq!(own("note"), Some((15, vec![], true)));
        let mixed = tables.mixed.as_ref().unwrap();
        assert_eq!((mixed.slots, &*mixed.joins), (7, &[FlatType::I64][..]));
        let tag = |name| mixed.tags[c.func(name) as usize];
        assert_eq!([tag("incr"), tag("get"), tag("reset"), tag("note")], [Some(0), Some(1), Some(2), None]);
        let call = tables.call.as_ref().unwrap();
        let member = |name| call.members[c.func(name) as usize].as_ref().map(|m| (m.tag, m.result));
        assert_eq!(member("incr"), Some((0, FlatResult::U64)));
        assert_eq!(member("reset"), Some((2, FlatResult::Nothing)));
        assert_eq!(member("note"), None);
    }

    #[test]
    fn the_host_follows_what_the_layout_says_and_derives_nothing_itself() {
        let c = compiled(&counter());
        // A true but smaller layout: `get`'s entry point alone.
        let mut layout = c.layout.clone();
        layout.entries = vec![layout.entries[1].clone()];
        (layout.mixed, layout.call) = (None, None);
        let tables = c.tables(&layout).unwrap();
        let served: Vec<bool> = tables.own.iter().map(Option::is_some).collect();
        assert_eq!(served, [false, true, false, false]);
        assert!(tables.mixed.is_none() && tables.call.is_none());
        assert!(c.tables(&Layout::new()).unwrap().is_empty());
    }

    #[test]
    fn a_layout_that_lies_about_an_export_is_refused_whole() {
        let c = compiled(&counter());
        let lie = |what: &str, change: &dyn Fn(&mut Layout)| {
            let mut layout = c.layout.clone();
            change(&mut layout);
            assert!(c.tables(&layout).is_err(), "a layout where {what} was accepted");
        };
        lie("an entry names another export", &|l| l.entries[0].export = "call".into());
        lie("an entry names no export", &|l| l.entries[0].export = "run9".into());
        lie("`incr` takes an i32", &|l| l.entries[0].arguments = Arguments::Registers { flat: vec![FlatType::I32] });
        lie("`note` takes registers", &|l| l.entries[3].arguments = Arguments::Registers { flat: vec![] });
        lie("`get` takes memory", &|l| l.entries[1].arguments = Arguments::Memory);
        lie("`incr` takes 7 messages", &|l| l.entries[0].messages = 7);
        lie("`incr` takes 16 messages", &|l| l.entries[0].messages = 16);
        lie("a function is missing", &|l| l.entries[0].function = "decr".into());
        lie("another version is served", &|l| l.entries[0].interface = "acme:x/api@0.2.0".into());
        lie("a function has two entry points", &|l| l.entries[1] = l.entries[0].clone());
        lie("a mixed member is out of range", &|l| l.mixed.as_mut().unwrap().members[0] = 9);
        lie("a mixed member takes memory", &|l| l.mixed.as_mut().unwrap().members[0] = 3);
        lie("a mixed member comes twice", &|l| l.mixed.as_mut().unwrap().members[1] = 0);
        lie("the mixed joins are narrower", &|l| l.mixed.as_mut().unwrap().joins = vec![FlatType::I32]);
        lie("the mixed entry takes more slots", &|l| l.mixed.as_mut().unwrap().slots = 8);
        lie("a call member's result is signed", &|l| l.call.as_mut().unwrap().members[0].result = FlatResult::S64);
        lie("a call member is out of range", &|l| l.call.as_mut().unwrap().members[0].entry = 9);
        lie("the call entry is the mixed one", &|l| l.call.as_mut().unwrap().export = "mixed".into());
    }

    #[test]
    fn a_component_without_entry_points_fits_no_layout() {
        let composed = counter();
        let c = compiled(&composed);
        let plain = wat::parse_str(
            r#"(component
                 (core module $m (func (export "f") (param i64) (result i64) local.get 0))
                 (core instance $i (instantiate $m))
                 (func $f (param "by" u64) (result u64) (canon lift (core func $i "f")))
                 (instance $api (export "incr" (func $f)))
                 (export "acme:x/api@0.1.0" (instance $api)))"#,
        )
        .unwrap();
        let component = Component::new(&c.engine, plain).unwrap();
        let protocol = Protocol::of(&component, &c.engine).unwrap();
        assert!(Tables::new(&component, &c.engine, &protocol, &c.layout).is_err());
        let checked = Tables::checked(&component, &c.engine, &protocol, Some(&c.layout), "plain");
        assert!(checked.is_empty(), "it runs without batch delivery");
    }

    /// An instance of `c`'s component and its dispatch.
    fn instantiate(c: &Compiled, tables: Tables) -> (wasmtime::Store<()>, Instance, Dispatch) {
        let mut linker = Linker::<()>::new(&c.engine);
        linker.instance(PROGRESS_INTERFACE).unwrap().func_wrap(PROGRESS_FUNCTION, |_, (): ()| Ok((true,))).unwrap();
        let mut store = wasmtime::Store::new(&c.engine, ());
        let instance = linker.instantiate(&mut store, &c.component).unwrap();
        let dispatch = Dispatch::new(&Arc::new(tables), &instance, &mut store);
        (store, instance, dispatch)
    }

    fn tell(c: &Compiled, text: &str) -> Envelope {
        Envelope::tell(c.protocol.parse(text, u64::MAX).unwrap(), None)
    }

    #[test]
    fn runs_lower_into_the_entry_points_arguments_and_go_in_one_call() {
        let c = compiled(&counter());
        let (mut store, instance, dispatch) = instantiate(&c, c.tables(&c.layout).unwrap());
        let incr = c.func("incr");
        assert_eq!((dispatch.own_capacity(incr), dispatch.mixed_capacity(incr)), (15, 7));
        assert!(dispatch.serves(c.func("note")) && !dispatch.mixes(c.func("note")));

        let mut run = vec![tell(&c, "incr(1)"), tell(&c, "incr(2)")];
        let lowered = dispatch.lower(&c.protocol, &mut run, RunEntry::Own(incr)).unwrap();
        let mut expected = vec![Val::U32(2), Val::U64(1), Val::U64(2)];
        expected.extend(std::iter::repeat_n(Val::U64(0), 13));
        assert_eq!((lowered.messages(), lowered.args()), (2, &expected[..]));
        lowered.entry().call(&mut store, lowered.args(), &mut []).unwrap();

        let mut run = vec![tell(&c, "get()"), tell(&c, "incr(5)"), tell(&c, "reset()"), tell(&c, "incr(4)")];
        let lowered = dispatch.lower(&c.protocol, &mut run, RunEntry::Mixed).unwrap();
        let mut expected = vec![Val::U32(4)];
        for (tag, value) in [(1, 0), (0, 5), (2, 0), (0, 4)] {
            expected.extend([Val::U32(tag), Val::U64(value)]);
        }
        for _ in 4..7 {
            expected.extend([Val::U32(0), Val::U64(0)]);
        }
        assert_eq!(lowered.args(), &expected[..]);
        lowered.entry().call(&mut store, lowered.args(), &mut []).unwrap();

        let mut run = vec![tell(&c, r#"note("abc")"#), tell(&c, r#"note("de")"#)];
        let lowered = dispatch.lower(&c.protocol, &mut run, RunEntry::Own(c.func("note"))).unwrap();
        assert!(run.iter().all(|e| e.call.args.is_empty()), "string arguments move into the list");
        lowered.entry().call(&mut store, lowered.args(), &mut []).unwrap();
        give_back(&mut run, lowered);
        assert_eq!(&*run[1].call.args, &[Val::String("de".into())], "and come back to their envelopes");

        let (entry, args, result) = dispatch.typed_call(&tell(&c, "get()").call).unwrap();
        assert_eq!(args, (1, 0, 0, 0, 0, 0, 0, 0));
        let (raw,) = entry.call(&mut store, args).unwrap();
        assert_eq!(result.lift(raw), Some(Val::U64(4 + 3 + 2)), "incr(4) after the reset, then two notes");
        let _ = instance;
    }

    #[test]
    fn without_tables_nothing_goes_through_an_entry_point() {
        let c = compiled(&counter());
        let (_, _, dispatch) = instantiate(&c, Tables::default());
        let incr = c.func("incr");
        assert!(!dispatch.serves(incr));
        let mut run = vec![tell(&c, "incr(1)"), tell(&c, "incr(2)")];
        assert!(dispatch.lower(&c.protocol, &mut run, RunEntry::Own(incr)).is_none());
        assert!(dispatch.lower(&c.protocol, &mut run, RunEntry::Mixed).is_none());
        assert!(dispatch.typed_call(&run[0].call).is_none());
    }
}
