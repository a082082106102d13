//! The data each actor's `Store` carries: its WASI context, its memory
//! limiter, its CPU budget for the current message, and the handles the
//! host API needs (its own `ActorRef`, the system around it).

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::{ActorRef, ActorSystem};
use crate::engine::MemoryLimiter;
use crate::message::Address;

/// The state of one incarnation, owned by its `Store`.
pub struct ActorData {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) me: ActorRef,
    pub(crate) system: Arc<dyn ActorSystem>,
    /// Epoch ticks the current message may still run for.
    pub(crate) ticks_left: u64,
    /// The actors waiting, directly or transitively, on the message being
    /// handled: the chain a nested ask extends (for cycle detection).
    pub(crate) waiting: Option<Arc<[Address]>>,
}

impl ActorData {
    /// The ask chain for an ask this actor makes now: everyone waiting on
    /// it, plus itself.
    pub(crate) fn chain_for_ask(&self) -> Arc<[Address]> {
        let mut chain: Vec<Address> = self.waiting.as_deref().map(<[Address]>::to_vec).unwrap_or_default();
        chain.push(self.me.address().clone());
        chain.into()
    }
}

impl WasiView for ActorData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
