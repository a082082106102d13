//! troupe's own exports: the hooks of `troupe:actor` an actor may export
//! (`init`, `snapshot`, `restore`, `stop`, `down`). The host calls them at
//! points of an actor's life; they are not messages, and must have exactly
//! the types troupe declares.

use std::fmt::Write as _;

use wasmtime::component::types::ComponentFunc;

use super::{ProtocolError, TROUPE_API_VERSION, TypeDisplay};

const LIFECYCLE: &str = "troupe:actor/lifecycle";
const PERSISTENCE: &str = "troupe:actor/persistence";
const SHUTDOWN: &str = "troupe:actor/shutdown";
const WATCHER: &str = "troupe:actor/watcher";

/// The type of `troupe:actor/watcher.down`, as [`TypeDisplay`] renders it.
/// Its enum is the WIT `failure-kind` (a test in `crate::actor::failure`
/// holds it to `FailureKind::ALL`).
pub(crate) const DOWN_SHAPE: &str = "func(notice: record { address: string, reason: variant { stopped, \
    failed(record { kind: enum { out-of-fuel, deadline, memory-limit, stack-overflow, panic, trap, host-call, init, \
    restore, instantiate, escalated, linked, host-lost }, detail: string }) }, gone: bool })";

/// One of troupe's optional exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `troupe:actor/lifecycle.init`.
    Init,
    /// `troupe:actor/persistence.snapshot`.
    Snapshot,
    /// `troupe:actor/persistence.restore`.
    Restore,
    /// `troupe:actor/shutdown.stop`.
    Stop,
    /// `troupe:actor/watcher.down`.
    Down,
}

impl Hook {
    /// Every hook.
    pub const ALL: [Hook; 5] = [Hook::Init, Hook::Snapshot, Hook::Restore, Hook::Stop, Hook::Down];

    /// Its interface, without version (`troupe:actor/lifecycle`).
    pub fn interface(self) -> &'static str {
        match self {
            Hook::Init => LIFECYCLE,
            Hook::Snapshot | Hook::Restore => PERSISTENCE,
            Hook::Stop => SHUTDOWN,
            Hook::Down => WATCHER,
        }
    }

    /// The name a component exports its interface under: with the
    /// version this host provides (`troupe:actor/lifecycle@0.1.0`).
    pub fn export_name(self) -> String {
        format!("{}@{TROUPE_API_VERSION}", self.interface())
    }

    /// Its function's name (`init`).
    pub fn function(self) -> &'static str {
        match self {
            Hook::Init => "init",
            Hook::Snapshot => "snapshot",
            Hook::Restore => "restore",
            Hook::Stop => "stop",
            Hook::Down => "down",
        }
    }

    /// Its type, as [`TypeDisplay`] renders types.
    fn expected(self) -> &'static str {
        match self {
            Hook::Init => "func(config: list<tuple<string, string>>) -> result<_, string>",
            Hook::Snapshot => "func() -> record { version: string, bytes: list<u8> }",
            Hook::Restore => "func(state: record { version: string, bytes: list<u8> }) -> result<_, string>",
            Hook::Stop => "func()",
            Hook::Down => DOWN_SHAPE,
        }
    }

    /// The hook that function `name` of troupe interface `iface` (as
    /// [`troupe_interface`] returns it) is, checked against the type troupe
    /// declares; `None` for a function that is no hook.
    pub(super) fn check(iface: &str, name: &str, func: &ComponentFunc) -> Result<Option<Hook>, ProtocolError> {
        let Some(hook) = Hook::ALL.into_iter().find(|h| h.interface() == iface && h.function() == name) else {
            return Ok(None);
        };
        let (found, expected) = (func_shape(func), hook.expected());
        if found != expected {
            return Err(ProtocolError::LifecycleType { name: format!("{iface}.{name}"), found, expected });
        }
        Ok(Some(hook))
    }
}

/// Which troupe interface, if any, an export is (without its version).
///
/// # Errors
///
/// [`ProtocolError::ApiVersion`] for one of another version of the API.
pub(super) fn troupe_interface(export: &str) -> Result<Option<&'static str>, ProtocolError> {
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

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use wit_parser::{Resolve, Type, TypeDefKind};

    use super::{Hook, TROUPE_API_VERSION};

    /// Renders a WIT type structurally, as [`super::TypeDisplay`] renders
    /// the engine's types.
    fn shape(resolve: &Resolve, ty: &Type) -> String {
        let id = match ty {
            Type::Bool => return "bool".into(),
            Type::U8 => return "u8".into(),
            Type::U32 => return "u32".into(),
            Type::U64 => return "u64".into(),
            Type::String => return "string".into(),
            Type::Id(id) => *id,
            other => panic!("a hook type uses {other:?}; teach this renderer"),
        };
        let list = |items: Vec<String>| items.join(", ");
        match &resolve.types[id].kind {
            TypeDefKind::Type(inner) => shape(resolve, inner),
            TypeDefKind::List(inner) => format!("list<{}>", shape(resolve, inner)),
            TypeDefKind::Tuple(t) => format!("tuple<{}>", list(t.types.iter().map(|t| shape(resolve, t)).collect())),
            TypeDefKind::Record(r) => format!(
                "record {{ {} }}",
                list(r.fields.iter().map(|f| format!("{}: {}", f.name, shape(resolve, &f.ty))).collect())
            ),
            TypeDefKind::Variant(v) => format!(
                "variant {{ {} }}",
                list(
                    v.cases
                        .iter()
                        .map(|c| match &c.ty {
                            Some(ty) => format!("{}({})", c.name, shape(resolve, ty)),
                            None => c.name.clone(),
                        })
                        .collect()
                )
            ),
            TypeDefKind::Enum(e) => format!("enum {{ {} }}", list(e.cases.iter().map(|c| c.name.clone()).collect())),
            TypeDefKind::Result(r) => match (&r.ok, &r.err) {
                (None, None) => "result".into(),
                (Some(ok), None) => format!("result<{}>", shape(resolve, ok)),
                (None, Some(err)) => format!("result<_, {}>", shape(resolve, err)),
                (Some(ok), Some(err)) => format!("result<{}, {}>", shape(resolve, ok), shape(resolve, err)),
            },
            other => panic!("a hook type uses {other:?}; teach this renderer"),
        }
    }

    /// The hook types troupe checks exports against are the ones
    /// `wit/actor.wit` declares: a change to the WIT (a new failure kind,
    /// say) fails here until the check follows it.
    #[test]
    fn hook_types_are_those_the_wit_package_declares() {
        let mut resolve = Resolve::default();
        let wit = concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/actor.wit");
        let package = resolve.push_file(wit).expect("wit/actor.wit parses");
        assert_eq!(
            resolve.packages[package].name.version.as_ref().map(ToString::to_string).as_deref(),
            Some(TROUPE_API_VERSION)
        );
        for hook in Hook::ALL {
            let name = hook.interface().rsplit('/').next().unwrap();
            let (_, iface) = resolve.packages[package].interfaces.iter().find(|(n, _)| *n == name).unwrap();
            let func = &resolve.interfaces[*iface].functions[hook.function()];
            let mut declared = String::from("func(");
            for (i, param) in func.params.iter().enumerate() {
                let comma = if i > 0 { ", " } else { "" };
                let _ = write!(declared, "{comma}{}: {}", param.name, shape(&resolve, &param.ty));
            }
            declared.push(')');
            if let Some(result) = &func.result {
                let _ = write!(declared, " -> {}", shape(&resolve, result));
            }
            assert_eq!(hook.expected(), declared, "{hook:?}");
        }
    }
}
