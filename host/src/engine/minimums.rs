//! The sizes a component's linear memories and tables start at, against
//! what the pooling allocator gives any one of them.
//!
//! A pool slot holds a memory of at most the engine's per-memory ceiling
//! ([`EngineConfig::max_memory_bytes`](super::EngineConfig::max_memory_bytes))
//! and a table of at most [`MAX_TABLE_ELEMENTS`] elements. wasmtime
//! refuses a component whose core modules define a memory or a table that
//! starts larger, after compiling it, in words about its allocator
//! ("module memory does not fit in pooling allocator requirements"). The
//! component is valid; only this host is too small for it. The
//! component's own sections say which memory or table, and by how much, so
//! they are read here rather than wasmtime's message.

use wasmparser::{Parser, Payload};

use super::{EngineError, MAX_TABLE_ELEMENTS};

/// wasm's page size when a memory declares none: 64 KiB.
const DEFAULT_PAGE_SIZE_LOG2: u32 = 16;

/// The first memory or table the core modules of `bytes` define that
/// starts larger than a pool slot holds (a memory above `max_memory_bytes`
/// bytes, a table above [`MAX_TABLE_ELEMENTS`] elements), as the error
/// that says so; `None` if every one fits or `bytes` do not parse that
/// far. `what` names the component in the error.
pub(super) fn too_large(what: &str, bytes: &[u8], max_memory_bytes: u64) -> Option<EngineError> {
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.ok()? {
            // Imported memories and tables are another module's: only
            // those a module defines take a slot.
            Payload::MemorySection(memories) => {
                for memory in memories {
                    let memory = memory.ok()?;
                    let page_size_log2 = memory.page_size_log2.unwrap_or(DEFAULT_PAGE_SIZE_LOG2);
                    let page = 1u64.checked_shl(page_size_log2).unwrap_or(u64::MAX);
                    let minimum = memory.initial.saturating_mul(page);
                    if minimum > max_memory_bytes {
                        return Some(EngineError::MemoryTooLarge {
                            what: what.into(),
                            minimum,
                            ceiling: max_memory_bytes,
                        });
                    }
                }
            }
            Payload::TableSection(tables) => {
                for table in tables {
                    let minimum = table.ok()?.ty.initial;
                    if minimum > MAX_TABLE_ELEMENTS {
                        return Some(EngineError::TableTooLarge {
                            what: what.into(),
                            minimum,
                            ceiling: MAX_TABLE_ELEMENTS,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component of one core module with the given memory and table
    /// declarations (WAT).
    fn component(declarations: &str) -> Vec<u8> {
        wat::parse_str(format!(r#"(component (core module $m {declarations}))"#)).unwrap()
    }

    #[test]
    fn a_memory_that_starts_above_the_ceiling_is_too_large_with_its_minimum_in_bytes() {
        let err = too_large("c", &component("(memory 16384)"), 64 << 20);
        let Some(EngineError::MemoryTooLarge { what, minimum, ceiling }) = err else { panic!("{err:?}") };
        assert_eq!((what.as_str(), minimum, ceiling), ("c", 1 << 30, 64 << 20));
    }

    #[test]
    fn a_memory_that_starts_at_the_ceiling_fits() {
        assert!(too_large("c", &component("(memory 1024)"), 64 << 20).is_none());
        assert!(too_large("c", &component("(memory 1025)"), 64 << 20).is_some());
    }

    #[test]
    fn a_table_that_starts_above_a_pool_slot_is_too_large() {
        let err = too_large("c", &component(&format!("(table {} funcref)", MAX_TABLE_ELEMENTS + 1)), 64 << 20);
        let Some(EngineError::TableTooLarge { minimum, ceiling, .. }) = err else { panic!("{err:?}") };
        assert_eq!((minimum, ceiling), (MAX_TABLE_ELEMENTS + 1, MAX_TABLE_ELEMENTS));
        assert!(too_large("c", &component(&format!("(table {MAX_TABLE_ELEMENTS} funcref)")), 64 << 20).is_none());
    }

    #[test]
    fn a_memory_a_module_imports_takes_no_slot_of_its_own() {
        assert!(too_large("c", &component(r#"(memory (import "x" "m") 16384)"#), 64 << 20).is_none());
    }

    #[test]
    fn a_memory_with_small_pages_is_counted_in_bytes() {
        let err = too_large("c", &component("(memory 100 (pagesize 1))"), 64);
        let Some(EngineError::MemoryTooLarge { minimum, .. }) = err else { panic!("{err:?}") };
        assert_eq!(minimum, 100);
    }

    #[test]
    fn the_error_suggests_a_ceiling_the_flag_reads_back() {
        let suggestion = |declarations: &str| {
            let err = too_large("c", &component(declarations), 64).expect("too large");
            let message = err.to_string();
            let start = message.find("--max-memory ").expect("names the flag") + "--max-memory ".len();
            message[start..].split('`').next().unwrap_or_default().to_string()
        };
        assert_eq!(suggestion("(memory 16384)"), "1GiB");
        assert_eq!(suggestion("(memory 1536)"), "96MiB");
        assert_eq!(suggestion("(memory 100 (pagesize 1))"), "100");
        for size in ["1GiB", "96MiB", "100"] {
            assert!(crate::parse_bytes(size).is_ok(), "{size}");
        }
    }
}
