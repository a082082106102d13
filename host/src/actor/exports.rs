//! Where a compiled component's functions are: the protocol's functions
//! and troupe's hooks, by export index, so that an incarnation finds each
//! in its instance without looking names up.
//!
//! Indices belong to one compiled [`Component`]: a component compiled for
//! another engine has its own.

use wasmtime::component::{Component, ComponentExportIndex};

use crate::protocol::{Hook, Protocol};

/// Where a compiled component's protocol functions and hooks are.
#[derive(Debug, Clone, Default)]
pub(crate) struct Exports {
    /// The protocol's functions, in [`Protocol::functions`] order.
    pub funcs: Vec<ComponentExportIndex>,
    /// The optional troupe hooks.
    pub lifecycle: Lifecycle,
}

/// Where the optional troupe hooks a component exports are.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lifecycle {
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

impl Exports {
    /// Where `component`'s functions of `protocol` (read from the same
    /// component) are; `None` if one cannot be found, which a protocol
    /// read from the component rules out.
    pub(crate) fn of(component: &Component, protocol: &Protocol) -> Option<Exports> {
        let index = |interface: Option<&str>, name: &str| match interface {
            None => component.get_export_index(None, name),
            Some(interface) => {
                let instance = component.get_export_index(None, interface)?;
                component.get_export_index(Some(&instance), name)
            }
        };
        let funcs =
            protocol.functions().iter().map(|f| index(f.interface.as_deref(), &f.name)).collect::<Option<Vec<_>>>()?;
        let mut lifecycle = Lifecycle::default();
        for &hook in protocol.hooks() {
            let slot = match hook {
                Hook::Init => &mut lifecycle.init,
                Hook::Snapshot => &mut lifecycle.snapshot,
                Hook::Restore => &mut lifecycle.restore,
                Hook::Stop => &mut lifecycle.stop,
                Hook::Down => &mut lifecycle.down,
            };
            *slot = Some(index(Some(&hook.export_name()), hook.function())?);
        }
        Some(Exports { funcs, lifecycle })
    }
}
