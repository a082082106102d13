//! Composing a component with its adapter and compiling the result,
//! through the engine's compile cache: where batch delivery meets
//! compilation. The engine compiles the bytes it is given and caches them
//! under the tag it is given; which bytes and which tag is decided here.
//!
//! wasmtime's compiled artifact keeps no custom sections, so the layout
//! section's contents travel beside it in the cache (the engine's
//! *sidecar*), read back from the composed bytes when it is compiled.

use tracing::{debug, warn};
use wasmtime::component::Component;

use super::BatchDelivery;
use super::layout::{self, Layout};
use super::{ADAPTER_VERSION, compose};
use crate::engine::{Engine, EngineError, EngineKind};

/// The compile cache's tag for a component built for batch delivery
/// `mode`: which version of the adapter ([`ADAPTER_VERSION`]) in which
/// mode, so that a cache never serves an artifact built otherwise. Empty
/// for [`BatchDelivery::Off`], which compiles the component as it is.
fn cache_tag(mode: BatchDelivery) -> String {
    match mode {
        BatchDelivery::Off => String::new(),
        BatchDelivery::Registers => format!("batch{ADAPTER_VERSION}"),
        BatchDelivery::All => format!("batch{ADAPTER_VERSION}-all"),
    }
}

/// `bytes` compiled for `kind`, composed with its batch adapter for `mode`
/// (or loaded from the compile cache), and the
/// layout of its entry points if it has one the host can read. `what`
/// names the component in errors and logs.
///
/// A component the adapter cannot serve is compiled as it is, without a
/// layout: it runs one call per message.
///
/// # Errors
///
/// [`EngineError`] if `bytes` are not a component wasmtime compiles.
pub(crate) fn compile(
    engine: &Engine,
    mode: BatchDelivery,
    kind: EngineKind,
    what: &str,
    bytes: &[u8],
    hash: &blake3::Hash,
) -> Result<(Component, Option<Layout>), EngineError> {
    crate::engine::check_header(what, bytes)?;
    let tag = cache_tag(mode);
    let (component, sidecar) = match engine.cached(hash, &tag, kind) {
        Some(artifact) => (artifact.component, artifact.sidecar),
        None => {
            let (component, section) = build(engine, kind, what, bytes, mode)?;
            engine.cache(hash, &tag, kind, &component, section.as_deref());
            (component, section)
        }
    };
    if mode == BatchDelivery::Off {
        return Ok((component, None));
    }
    let Some(section) = sidecar else {
        debug!(component = what, "no batch layout: one call per message");
        return Ok((component, None));
    };
    let layout = Layout::decode(&section)
        .inspect_err(|e| debug!(component = what, error = %e, "batch layout unreadable: one call per message"))
        .ok();
    Ok((component, layout))
}

/// Composes and compiles `bytes`: the component, and the contents of the
/// layout section it carries (`None` when it is compiled as it is).
fn build(
    engine: &Engine,
    kind: EngineKind,
    what: &str,
    bytes: &[u8],
    mode: BatchDelivery,
) -> Result<(Component, Option<Vec<u8>>), EngineError> {
    if mode != BatchDelivery::Off {
        match compose(bytes, mode == BatchDelivery::All) {
            Ok(Some(composed)) => match engine.compile(what, &composed.bytes, kind) {
                Ok(component) => {
                    // What the host uses is what the component carries.
                    let section = layout::section(&composed.bytes)
                        .inspect_err(|e| debug!(component = what, error = %e, "no batch layout"))
                        .ok()
                        .map(<[u8]>::to_vec);
                    return Ok((component, section));
                }
                // The component itself is too large for the pool, with
                // entry points or without.
                Err(e @ (EngineError::MemoryTooLarge { .. } | EngineError::TableTooLarge { .. })) => return Err(e),
                Err(e) => {
                    warn!(component = what, error = %e, "batch entry points rejected; compiling the component as it is");
                }
            },
            Ok(None) => {}
            Err(reason) => debug!(component = what, %reason, "no batch entry points"),
        }
    }
    Ok((engine.compile(what, bytes, kind)?, None))
}
