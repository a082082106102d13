//! The engine layer: wasmtime configuration, compilation (with an on-disk
//! cache, and the sizes a component starts at checked against the pool's
//! slots when wasmtime refuses it), the epoch ticker, the store's resource
//! limiter and the classification of errors that leave wasm.
//!
//! Nothing here knows about actors, nor what the bytes it compiles are
//! made of: the loader hands it a component (with the batch adapter
//! already composed in, see [`crate::batch`]) and the tag to cache it
//! under. The layer narrows wasmtime to the features troupe uses, the way
//! Spin's `spin-core` does: the component model with the synchronous ABI
//! (`concurrency_support(false)`, which takes most of the cost out of every
//! call), async stores (so that a guest waiting on an ask suspends a fiber,
//! not a thread), epoch interruption for deadlines and fair time slicing,
//! and the pooling allocator for cheap instantiation.
//!
//! Fuel metering changes the generated code, so it lives in a second
//! wasmtime engine that is created only when some actor asks for a fuel
//! budget: actors without one run on code that pays nothing for fuel.

mod cache;
mod epoch;
mod fault;
mod limiter;
mod minimums;

pub use cache::{Artifact, CacheStats, CompileCache};
pub(crate) use fault::{Fault, FaultKind};
pub use limiter::MAX_TABLE_ELEMENTS;
pub(crate) use limiter::MemoryLimiter;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tracing::instrument;
use wasmtime::component::Component;
use wasmtime::{Config, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// How often the epoch ticker advances every engine's epoch.
///
/// Deadlines and time slices are counted in ticks of this length, so it is
/// the resolution of both. 1 ms keeps a runaway actor's slice short enough
/// that its neighbours on the same thread barely notice it, and costs one
/// thread wake-up per millisecond.
pub const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(1);

/// Default number of actor instances the pooling allocator has room for.
pub const DEFAULT_MAX_INSTANCES: u32 = 10_000;

/// Default ceiling on any one linear memory, and the size of a pool slot.
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 512 << 20;

/// Default bytes of a freed linear memory kept resident for the next
/// instance in its slot (see [`EngineConfig::memory_keep_resident`]).
pub const DEFAULT_MEMORY_KEEP_RESIDENT: u64 = 128 << 10;

/// Which wasmtime engine a component is compiled for.
///
/// The two differ only in fuel metering, which is a code-generation choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// Epoch interruption only: deadlines and time slicing, no fuel.
    Epoch,
    /// Epoch interruption plus fuel metering, for actors with a fuel budget.
    Metered,
}

impl EngineKind {
    pub(crate) fn index(self) -> usize {
        match self {
            EngineKind::Epoch => 0,
            EngineKind::Metered => 1,
        }
    }

    /// The compile cache's name for the engine an artifact is for.
    fn cache_name(self) -> &'static str {
        match self {
            EngineKind::Epoch => "epoch",
            EngineKind::Metered => "fuel",
        }
    }
}

/// Errors from building an engine or compiling a component.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration was rejected by wasmtime (for example the pool
    /// does not fit in the address space).
    #[error("invalid engine configuration: {0}")]
    Config(String),
    /// The bytes are a core wasm module, not a component.
    #[error(
        "{what} is a core WebAssembly module, not a component; troupe runs components: build for \
         wasm32-wasip2, or wrap the module with `wasm-tools component new`"
    )]
    CoreModule {
        /// What was being loaded (usually a path).
        what: String,
    },
    /// The bytes are not WebAssembly at all, or are truncated or invalid.
    #[error("{what} is not a valid WebAssembly component: {reason}")]
    Invalid {
        /// What was being loaded (usually a path).
        what: String,
        /// wasmtime's explanation.
        reason: String,
    },
    /// A valid component with a linear memory that starts larger than the
    /// pool gives any one memory ([`EngineConfig::max_memory_bytes`]).
    #[error(
        "{what} starts with a linear memory of {minimum} bytes, more than this host's ceiling of {ceiling} \
         bytes for any one memory; run the host with `troupe run --max-memory {suggested}` or more \
         (`EngineConfig::max_memory_bytes`), and give its actors a `memory` limit as large",
        suggested = size_with_unit(*minimum)
    )]
    MemoryTooLarge {
        /// What was being loaded (usually a path).
        what: String,
        /// The memory's initial size, in bytes.
        minimum: u64,
        /// The largest memory the pool holds, in bytes.
        ceiling: u64,
    },
    /// A valid component with a table that starts with more elements than
    /// the pool gives any one table ([`MAX_TABLE_ELEMENTS`]).
    #[error(
        "{what} starts with a table of {minimum} elements, more than the {ceiling} this host holds in any one \
         table; build it with a smaller table"
    )]
    TableTooLarge {
        /// What was being loaded (usually a path).
        what: String,
        /// The table's initial number of elements.
        minimum: u64,
        /// The most elements a pool table holds.
        ceiling: u64,
    },
}

impl crate::error_code::HasErrorCode for EngineError {
    fn code(&self) -> crate::error_code::ErrorCode {
        use crate::error_code::ErrorCode;
        match self {
            EngineError::Config(_) => ErrorCode::InvalidArgument,
            EngineError::CoreModule { .. }
            | EngineError::Invalid { .. }
            | EngineError::MemoryTooLarge { .. }
            | EngineError::TableTooLarge { .. } => ErrorCode::LoadFailed,
        }
    }
}

/// `bytes` in the largest binary unit that divides it (`1GiB`, `96MiB`),
/// as `troupe run --max-memory` reads it back.
fn size_with_unit(bytes: u64) -> String {
    const UNITS: [(u32, &str); 3] = [(30, "GiB"), (20, "MiB"), (10, "KiB")];
    UNITS
        .iter()
        .find(|(log2, _)| bytes > 0 && bytes.trailing_zeros() >= *log2)
        .map_or_else(|| bytes.to_string(), |(log2, unit)| format!("{}{unit}", bytes >> log2))
}

/// Engine policy, validated when the engine is built.
///
/// Every setting has a default suited to a host with thousands of small
/// actors; see each setter.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    max_instances: u32,
    max_memory_bytes: u64,
    epoch_tick: Duration,
    cache_dir: Option<PathBuf>,
    max_wasm_stack: usize,
    memory_keep_resident: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            epoch_tick: DEFAULT_EPOCH_TICK,
            cache_dir: CompileCache::default_dir(),
            // Half of wasmtime's default async stack (2 MiB) is left for
            // host calls made from wasm.
            max_wasm_stack: 1 << 20,
            memory_keep_resident: DEFAULT_MEMORY_KEEP_RESIDENT,
        }
    }
}

impl EngineConfig {
    /// A configuration with every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of component instances (live actors) the pooling
    /// allocator reserves room for. Spawning beyond it fails with a clear
    /// error rather than exhausting memory.
    ///
    /// By default this is [`DEFAULT_MAX_INSTANCES`]. Each slot reserves
    /// address space (not memory) of `max_memory_bytes` per linear memory.
    pub fn max_instances(&mut self, n: u32) -> &mut Self {
        self.max_instances = n;
        self
    }

    /// The largest any one linear memory may ever grow, whatever an actor's
    /// own limit says. It is also the address-space reservation of each pool
    /// slot, so lowering it lets more instances fit.
    ///
    /// By default this is [`DEFAULT_MAX_MEMORY_BYTES`] (512 MiB).
    ///
    /// # Errors
    ///
    /// [`Engine::compile`] refuses a component with a memory that starts
    /// larger, with [`EngineError::MemoryTooLarge`].
    pub fn max_memory_bytes(&mut self, bytes: u64) -> &mut Self {
        self.max_memory_bytes = bytes;
        self
    }

    /// The epoch tick: resolution of deadlines and length of a time slice.
    ///
    /// By default this is [`DEFAULT_EPOCH_TICK`] (1 ms).
    pub fn epoch_tick(&mut self, tick: Duration) -> &mut Self {
        self.epoch_tick = tick;
        self
    }

    /// Where compiled components are cached, or `None` to compile every
    /// time. By default `$XDG_CACHE_HOME/troupe` (or `~/.cache/troupe`).
    pub fn cache_dir(&mut self, dir: Option<PathBuf>) -> &mut Self {
        self.cache_dir = dir;
        self
    }

    /// How much of a freed linear memory stays resident for the next
    /// instance in its slot, or 0 to decommit it whole.
    ///
    /// The pages an instance wrote are written back to their initial
    /// contents, up to this many bytes, instead of being handed back to the
    /// kernel: the next instance of the same component in that slot (a
    /// restart, a wake-up, a virtual actor's activation, a warm instance)
    /// then writes to pages already its own. Decommitted, each of its first
    /// writes to a page is a page fault, and in a process with several
    /// threads a copy-on-write fault also interrupts every other core to
    /// flush its TLB: for a small actor, that was most of a `restore`.
    ///
    /// Only the pages actually written are kept, found with Linux's
    /// `PAGEMAP_SCAN` (6.7 and later); without it, the setting is ignored,
    /// since the low bytes of a memory are not the ones a guest writes
    /// (a Rust guest's stack sits below its data). The price is resident
    /// memory: each slot ever used keeps up to this much while free.
    ///
    /// By default this is [`DEFAULT_MEMORY_KEEP_RESIDENT`] (128 KiB):
    /// more than a small actor writes, a small fraction of a large one.
    pub fn memory_keep_resident(&mut self, bytes: u64) -> &mut Self {
        self.memory_keep_resident = bytes;
        self
    }

    /// The epoch tick this configuration uses.
    pub fn get_epoch_tick(&self) -> Duration {
        self.epoch_tick
    }

    /// The instance pool size this configuration uses.
    pub fn get_max_instances(&self) -> u32 {
        self.max_instances
    }

    /// The per-memory ceiling this configuration uses.
    pub fn get_max_memory_bytes(&self) -> u64 {
        self.max_memory_bytes
    }

    /// Builds the engine and starts its epoch ticker.
    ///
    /// # Errors
    ///
    /// [`EngineError::Config`] if a value is out of range or wasmtime
    /// cannot reserve the pool.
    pub fn build(&self) -> Result<Engine, EngineError> {
        if self.max_instances == 0 {
            return Err(EngineError::Config("max_instances must be at least 1".into()));
        }
        if self.epoch_tick.is_zero() {
            return Err(EngineError::Config("epoch_tick must be positive".into()));
        }
        if self.max_memory_bytes < 64 * 1024 {
            return Err(EngineError::Config("max_memory_bytes must be at least one wasm page (65536)".into()));
        }
        let epoch = self.wasmtime_engine(EngineKind::Epoch)?;
        let inner = Arc::new(EngineInner {
            config: self.clone(),
            engines: [OnceLock::from(epoch.clone()), OnceLock::new()],
            cache: self.cache_dir.clone().map(CompileCache::new),
        });
        epoch::spawn_ticker(Arc::downgrade(&inner), self.epoch_tick)
            .map_err(|e| EngineError::Config(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Engine { inner })
    }

    fn wasmtime_engine(&self, kind: EngineKind) -> Result<wasmtime::Engine, EngineError> {
        let mut config = Config::new();
        config
            // The synchronous component ABI: component-model-async bookkeeping
            // dominates the cost of a small call, and troupe needs no WASIp3.
            .concurrency_support(false)
            .epoch_interruption(true)
            .consume_fuel(kind == EngineKind::Metered)
            .cranelift_opt_level(OptLevel::Speed)
            .max_wasm_stack(self.max_wasm_stack)
            // Traps in guests are routine here; native unwind info is only
            // needed for host-side profiling.
            .native_unwind_info(false)
            // Failure reports name frames by function; the native-to-wasm
            // address map would only add bytecode offsets, and looking them
            // up is a visible part of every restart.
            .generate_address_map(false)
            .memory_reservation(self.max_memory_bytes)
            .memory_may_move(false);

        // Core instances per component: the guest's module, wit-component's
        // shim and fixup, a WASI adapter for C guests, and the batch
        // adapter's module (with its own shim and fixup when it has a
        // memory). Only a count: nothing is reserved per core instance.
        let per_instance = 10;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(self.max_instances)
            .total_core_instances(self.max_instances.saturating_mul(per_instance))
            // A Rust guest has one memory; C guests with the preview1
            // adapter have two; the batch adapter has one when some
            // function's arguments travel in memory.
            .total_memories(self.max_instances.saturating_mul(3))
            // Tables: the guest's, the shims' (indirect calls through
            // them), and the batch adapter's shim.
            .total_tables(self.max_instances.saturating_mul(5))
            // One stack per instance: a store keeps the fiber stack of its
            // last call for the next one, so every live actor holds one.
            .total_stacks(self.max_instances)
            .max_memory_size(self.max_memory_bytes as usize)
            .max_memories_per_module(2)
            .max_tables_per_module(2)
            .table_elements(MAX_TABLE_ELEMENTS as usize);
        if self.memory_keep_resident > 0 && PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(wasmtime::Enabled::Yes)
                .linear_memory_keep_resident(usize::try_from(self.memory_keep_resident).unwrap_or(usize::MAX));
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

        wasmtime::Engine::new(&config).map_err(|e| EngineError::Config(format!("{e:#}")))
    }
}

struct EngineInner {
    config: EngineConfig,
    engines: [OnceLock<wasmtime::Engine>; 2],
    cache: Option<CompileCache>,
}

impl EngineInner {
    fn each_engine(&self) -> impl Iterator<Item = &wasmtime::Engine> {
        self.engines.iter().filter_map(|e| e.get())
    }
}

/// The wasmtime engines of a host, their epoch ticker and compile cache.
///
/// Cheap to clone. The ticker thread stops when the last clone is dropped.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Engine {
    /// The wasmtime engine of `kind`, creating the metered one on first use.
    ///
    /// # Errors
    ///
    /// [`EngineError::Config`] if the metered engine cannot be created
    /// (for example its pool does not fit in the address space).
    pub fn wasmtime(&self, kind: EngineKind) -> Result<&wasmtime::Engine, EngineError> {
        let slot = &self.inner.engines[kind.index()];
        if let Some(engine) = slot.get() {
            return Ok(engine);
        }
        let engine = self.inner.config.wasmtime_engine(kind)?;
        Ok(slot.get_or_init(|| engine))
    }

    /// The configuration this engine was built from.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Number of epoch ticks in `duration`, rounded up, at least 1.
    pub fn ticks(&self, duration: Duration) -> u64 {
        let tick = self.inner.config.epoch_tick.as_nanos().max(1);
        (duration.as_nanos().div_ceil(tick)).clamp(1, u64::MAX as u128) as u64
    }

    /// How useful the compile cache has been (all zero without a cache).
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.as_ref().map(CompileCache::stats).unwrap_or_default()
    }

    /// Compiles `bytes` for `kind`, without the cache. `what` names the
    /// component in errors (usually its path).
    ///
    /// # Errors
    ///
    /// [`EngineError::CoreModule`] for a core module,
    /// [`EngineError::MemoryTooLarge`] or [`EngineError::TableTooLarge`]
    /// for a component that starts larger than a pool slot holds,
    /// [`EngineError::Invalid`] for anything else wasmtime rejects.
    #[instrument(skip_all, level = "debug", fields(what, bytes = bytes.len(), ?kind))]
    pub fn compile(&self, what: &str, bytes: &[u8], kind: EngineKind) -> Result<Component, EngineError> {
        check_header(what, bytes)?;
        Component::new(self.wasmtime(kind)?, bytes).map_err(|e| {
            // Read only once wasmtime has refused: a component that loads
            // pays nothing for the question.
            minimums::too_large(what, bytes, self.inner.config.max_memory_bytes)
                .unwrap_or_else(|| EngineError::Invalid { what: what.into(), reason: format!("{e:#}") })
        })
    }

    /// The artifact the compile cache holds for the component with content
    /// hash `hash`, built as `tag` says, for `kind`; `None` without a
    /// cache, or if it holds none that loads.
    pub fn cached(&self, hash: &blake3::Hash, tag: &str, kind: EngineKind) -> Option<Artifact> {
        let cache = self.inner.cache.as_ref()?;
        cache.load(self.wasmtime(kind).ok()?, hash, &cache_tag(kind, tag))
    }

    /// Keeps `component` (built from the component with content hash
    /// `hash` as `tag` says, for `kind`) in the compile cache, with
    /// `sidecar` beside it. Failures only cost a compilation next time:
    /// they are logged.
    pub fn cache(
        &self,
        hash: &blake3::Hash,
        tag: &str,
        kind: EngineKind,
        component: &Component,
        sidecar: Option<&[u8]>,
    ) {
        if let (Some(cache), Ok(engine)) = (&self.inner.cache, self.wasmtime(kind)) {
            cache.store(engine, hash, &cache_tag(kind, tag), component, sidecar);
        }
    }
}

/// The cache's full tag: the engine, then the caller's tag, if any.
fn cache_tag(kind: EngineKind, tag: &str) -> String {
    match tag {
        "" => kind.cache_name().to_string(),
        tag => format!("{}-{tag}", kind.cache_name()),
    }
}

/// Checks that `bytes` start as a component does. `what` names it in
/// errors.
///
/// # Errors
///
/// [`EngineError::CoreModule`] for a core module, [`EngineError::Invalid`]
/// for anything else that is not a component.
pub fn check_header(what: &str, bytes: &[u8]) -> Result<(), EngineError> {
    if wasmparser::Parser::is_core_wasm(bytes) {
        return Err(EngineError::CoreModule { what: what.into() });
    }
    if !wasmparser::Parser::is_component(bytes) {
        return Err(EngineError::Invalid {
            what: what.into(),
            reason: "the file does not start with the WebAssembly component header \
                     (\\0asm, layer 1)"
                .into(),
        });
    }
    Ok(())
}
