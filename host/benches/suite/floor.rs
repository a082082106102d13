//! wasmtime alone, without troupe: the floor under an ask and a spawn.

use troupe::EngineConfig;
use troupe::engine::EngineKind;
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable, Val};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::support::guest_path;

/// wasmtime alone, without troupe: the counter component in a bare
/// `Store`, on an engine configured as the host's. It is the floor under an
/// ask (one `call_async`, no mailbox, no task) and under a spawn (a `Store`,
/// an instance from an `InstancePre`, `init`): what the sandbox costs
/// before troupe adds anything. Its own instance pool keeps its slots as
/// fresh as the host's were when row 3 ran.
pub struct Floor {
    engine: wasmtime::Engine,
    pre: InstancePre<FloorData>,
    /// Keeps the epoch ticker running.
    _troupe: troupe::engine::Engine,
}

/// What a bare store holds: a WASI context granting nothing, as troupe's.
pub struct FloorData {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl FloorData {
    pub fn new() -> Self {
        FloorData { ctx: WasiCtx::builder().build(), table: ResourceTable::new() }
    }
}

impl WasiView for FloorData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}

/// A counter instance in its own store.
pub struct FloorActor {
    store: Store<FloorData>,
    incr: wasmtime::component::Func,
}

impl Floor {
    /// An engine and a pool of `max_instances` as a host's, and the counter
    /// ready to instantiate on it.
    pub fn new(max_instances: u32, max_memory: u64) -> Self {
        let mut config = EngineConfig::new();
        config.max_instances(max_instances).max_memory_bytes(max_memory);
        let troupe = config.build().expect("the floor's engine");
        let engine = troupe.wasmtime(EngineKind::Epoch).expect("the floor's wasmtime engine").clone();
        let component = Component::from_file(&engine, guest_path("counter")).expect("the counter compiles");
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("WASI links");
        // troupe's host API: the counter imports it, but neither `init`
        // nor `incr` calls it.
        linker.define_unknown_imports_as_traps(&component).expect("the host API stubs");
        let pre = linker.instantiate_pre(&component).expect("the counter's imports resolve");
        Floor { engine, pre, _troupe: troupe }
    }

    /// What a spawn needs at least: a store, an instance, `init` called.
    ///
    /// # Errors
    ///
    /// If the pool or the kernel has no room for another instance.
    pub async fn start(&self) -> wasmtime::Result<FloorActor> {
        let mut store = Store::new(&self.engine, FloorData::new());
        // No budget: the floor measures calls, not preemption.
        store.set_epoch_deadline(1 << 40);
        let instance = self.pre.instantiate_async(&mut store).await?;
        let mut func = |interface: &str, name: &str| {
            let interface = instance.get_export_index(&mut store, None, interface).expect("the interface");
            let index = instance.get_export_index(&mut store, Some(&interface), name).expect("the function");
            instance.get_func(&mut store, index).expect("a function")
        };
        let init = func("troupe:actor/lifecycle@0.2.0", "init");
        let incr = func("example:counter/api@0.1.0", "incr");
        let mut result = [Val::Bool(false)];
        init.call_async(&mut store, &[Val::List(Vec::new())], &mut result).await?;
        Ok(FloorActor { store, incr })
    }
}

impl FloorActor {
    /// Calls `incr(1)`.
    pub async fn incr(&mut self) -> Val {
        let mut result = [Val::U64(0)];
        self.incr.call_async(&mut self.store, &[Val::U64(1)], &mut result).await.expect("incr");
        let [value] = result;
        value
    }
}
