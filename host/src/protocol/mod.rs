//! An actor's message protocol: the functions its component exports, and
//! the type checking of messages against them.
//!
//! Every exported interface (except troupe's own hooks, see [`Hook`], and
//! the interfaces the host itself adds to a component, see
//! [`is_adapter_interface`]) and every top-level exported function is part
//! of the protocol. A message is a WAVE call, `func(arg, ...)`; it is
//! parsed and type-checked here, before it is queued, so an ill-typed
//! message never reaches the actor and the sender learns the expected
//! signature.
//!
//! Everything here is plain data about WIT types: what a component exports
//! and imports, how a message names a function, whether values fit types,
//! how two versions of a protocol differ, how types print. Where a
//! compiled component keeps these functions, and how several messages go
//! into it in one call, belong to the layers above ([`crate::actor`],
//! [`crate::batch`]).
//!
//! * `function.rs`: one function of a protocol;
//! * `hooks.rs`: troupe's own exports (`init`, `snapshot`, ...), which are
//!   not messages;
//! * `parse.rs`: WAVE text to a type-checked [`Call`], and back;
//! * `explain.rs`: where inside an argument WAVE text does not fit, and
//!   record fields its type lacks;
//! * `check.rs`: values built by the library API against types;
//! * `wire.rs`: the compact binary encoding of values between hosts;
//! * `json.rs`: the JSON mapping of WIT values, a call from JSON and a
//!   reply to JSON (for clients that do not speak WAVE);
//! * `diff.rs`: how a new protocol differs from an old one (hot swap);
//! * `display.rs`: component types in WIT-like syntax;
//! * `wit_syntax.rs`: wit-parser's types in WIT syntax;
//! * `error.rs`: why a component or a message is refused.

mod check;
mod diff;
mod display;
mod error;
mod explain;
mod function;
pub(crate) mod hooks;
pub mod json;
#[cfg(test)]
mod kinds;
mod parse;
pub mod wire;
pub(crate) mod wit_syntax;

use std::collections::HashMap;

use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

pub use check::{payload_size, val_has_type};
pub use diff::ProtocolDiff;
pub use display::TypeDisplay;
pub use error::{MessageError, ProtocolError};
pub use function::{Function, FunctionInfo};
pub use hooks::Hook;
pub use json::{JsonError, MAX_EXACT_JSON_INTEGER, Misfit, Place, from_json, reply_to_json, to_json};
pub use parse::Call;

/// The WIT package version of the `troupe:actor` API this host provides.
pub const TROUPE_API_VERSION: &str = "0.2.0";

/// How the names of the interfaces of the `troupe:batch` package begin:
/// the host's batch adapter imports and exports them (see
/// [`crate::batch`]), and no actor may.
pub const ADAPTER_PACKAGE: &str = "troupe:batch/";

/// Is `name` an interface of the batch adapter's package
/// ([`ADAPTER_PACKAGE`]), which the host adds to a component: never part
/// of its protocol or of what it imports from other actors?
pub fn is_adapter_interface(name: &str) -> bool {
    name.starts_with(ADAPTER_PACKAGE)
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
    hooks: Vec<Hook>,
}

impl Protocol {
    /// Reads the protocol and the troupe hooks `component` exports.
    ///
    /// # Errors
    ///
    /// [`ProtocolError`] if the component exports nothing callable, or
    /// targets another version of the troupe API.
    pub fn of(component: &Component, engine: &wasmtime::Engine) -> Result<Protocol, ProtocolError> {
        let mut functions = Vec::new();
        let mut hooks = Vec::new();
        for (export, item) in component.component_type().exports(engine) {
            match item.ty {
                ComponentItem::ComponentInstance(instance) => {
                    let names = instance
                        .exports(engine)
                        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentFunc(_)))
                        .map(|(name, _)| name);
                    if is_toolchain_export(export, names) || is_adapter_interface(export) {
                        continue;
                    }
                    let Some(iface_index) = component.get_export_index(None, export) else {
                        continue;
                    };
                    let troupe = hooks::troupe_interface(export)?;
                    for (name, item) in instance.exports(engine) {
                        let ComponentItem::ComponentFunc(func) = item.ty else {
                            continue;
                        };
                        if component.get_export_index(Some(&iface_index), name).is_none() {
                            continue;
                        }
                        match troupe {
                            Some(iface) => hooks.extend(Hook::check(iface, name, &func)?),
                            None => functions.push(Function::new(Some(export), name, &func)),
                        }
                    }
                }
                ComponentItem::ComponentFunc(func) if component.get_export_index(None, export).is_some() => {
                    functions.push(Function::new(None, export, &func));
                }
                _ => {}
            }
        }
        if functions.is_empty() {
            return Err(ProtocolError::NoExports);
        }
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, f) in functions.iter().enumerate() {
            by_name.entry(f.name.clone()).or_default().push(i as u32);
        }
        Ok(Protocol { functions, by_name, hooks })
    }

    /// The protocol's functions, in export order.
    pub fn functions(&self) -> &[Function] {
        &self.functions
    }

    /// The troupe hooks the component exports (with the types troupe
    /// declares: [`Protocol::of`] checked them).
    pub fn hooks(&self) -> &[Hook] {
        &self.hooks
    }

    /// The protocol interfaces `component` imports: every imported
    /// interface but WASI's, troupe's own, and the batch adapter's.
    pub fn imports_of(component: &Component, engine: &wasmtime::Engine) -> Vec<ImportedInterface> {
        let mut imports = Vec::new();
        for (name, item) in component.component_type().imports(engine) {
            if name.starts_with("wasi:") || name.starts_with("troupe:actor/") || is_adapter_interface(name) {
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

    /// The index of the function exported by exactly the interface
    /// `interface` (version included) under `name`, if this protocol has
    /// it.
    pub fn find_exact(&self, interface: &str, name: &str) -> Option<u32> {
        let candidates = self.by_name.get(name)?;
        candidates.iter().copied().find(|&i| self.function(i).interface.as_deref() == Some(interface))
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
}

/// Is this export a toolchain's build-time hook rather than part of the
/// actor's protocol? componentize-py 0.25 leaves its pre-initialisation
/// interface, a bare `exports` with a single `init`, in every component.
pub fn is_toolchain_export<'a>(name: &str, mut functions: impl Iterator<Item = &'a str>) -> bool {
    name == "exports" && functions.next() == Some("init") && functions.next().is_none()
}
