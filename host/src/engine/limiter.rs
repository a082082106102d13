//! The [`ResourceLimiter`] every store gets: one memory limit across all
//! of the store's linear memories together, so that a component made of
//! several core modules cannot multiply its allowance, and a limit on the
//! elements of any one table.

use wasmtime::ResourceLimiter;

/// Largest accepted limit on the elements of any one table: the size of a
/// table slot in the pooling allocator, so a limit above it could never be
/// reached.
pub const MAX_TABLE_ELEMENTS: u64 = 20_000;

/// Raised (as the trap's error) when a store's memory would exceed its
/// limit; classified as [`FaultKind::MemoryLimit`](super::FaultKind::MemoryLimit).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("growing to {requested} bytes, past the limit of {limit} bytes (`memory`)")]
pub struct MemoryLimitExceeded {
    /// Total bytes the store would have had after the grow.
    pub requested: u64,
    /// The limit.
    pub limit: u64,
}

/// Enforces a store's memory limit across all its memories and its table
/// limit, and records the memory high-water mark.
#[derive(Debug, Clone)]
pub struct MemoryLimiter {
    limit: u64,
    table_elements: u64,
    used: u64,
    peak: u64,
}

impl MemoryLimiter {
    /// A limiter allowing `memory` bytes in all memories together and
    /// `table_elements` elements in any one table.
    pub fn new(memory: u64, table_elements: u64) -> Self {
        Self { limit: memory, table_elements, used: 0, peak: 0 }
    }

    /// Bytes of linear memory in use, all memories together.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// The most memory the store has had.
    pub fn peak(&self) -> u64 {
        self.peak
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let grow = (desired as u64).saturating_sub(current as u64);
        let requested = self.used.saturating_add(grow);
        if requested > self.limit {
            // An error (rather than `Ok(false)`) traps at once with a cause
            // we can name; a refused grow would surface later as an
            // anonymous `unreachable` in most guests' allocators.
            return Err(wasmtime::Error::new(MemoryLimitExceeded { requested, limit: self.limit }));
        }
        self.used = requested;
        self.peak = self.peak.max(requested);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired as u64 <= self.table_elements)
    }
}
