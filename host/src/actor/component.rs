//! Loading a component as actor code: compile (or fetch from the cache),
//! read its protocol, and link it once into an `InstancePre` from which
//! every incarnation is instantiated.

use std::sync::{Arc, OnceLock};

use tracing::{info, instrument};
use wasmtime::component::{InstancePre, Linker};

use super::binding::interface_key;
use super::data::ActorData;
use super::exports::Exports;
use super::host_api;
use crate::batch::{self, BatchDelivery};
use crate::engine::{Engine, EngineError, EngineKind};
use crate::protocol::{ImportedInterface, Protocol, ProtocolError, TROUPE_API_VERSION};

/// Why a component cannot be loaded as an actor.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error("cannot read component `{path}`: {error}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// Not a valid component.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Not usable as an actor.
    #[error("`{what}` cannot be an actor: {error}")]
    Protocol {
        /// The component.
        what: String,
        /// Why.
        error: ProtocolError,
    },
    /// It imports or exports an interface of the `troupe:batch` package,
    /// which only the host's batch adapter may use.
    #[error(
        "`{what}` cannot be an actor: it imports or exports `{name}`, which is reserved for the adapter \
         through which troupe delivers several messages in one call; rename that interface"
    )]
    Reserved {
        /// The component.
        what: String,
        /// The reserved name.
        name: String,
    },
    /// It imports something this host does not provide.
    #[error(
        "`{what}` cannot be linked: {detail}. This host provides WASI 0.2 (wasi:cli, wasi:clocks, \
         wasi:filesystem, wasi:io, wasi:random, wasi:sockets), troupe:actor/host@{TROUPE_API_VERSION}, and any \
         other interface as a binding to actors that export it"
    )]
    Imports {
        /// The component.
        what: String,
        /// wasmtime's explanation, naming the import.
        detail: String,
    },
}

/// Compiles and links components for actors. One per host.
pub struct Loader {
    engine: Engine,
    batch: BatchDelivery,
    linkers: [OnceLock<Linker<ActorData>>; 2],
}

impl Loader {
    /// A loader over `engine`, composing components for `batch` delivery.
    pub fn new(engine: Engine, batch: BatchDelivery) -> Self {
        Self { engine, batch, linkers: [OnceLock::new(), OnceLock::new()] }
    }

    /// The engine components are compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn linker(&self, kind: EngineKind) -> Result<&Linker<ActorData>, LoadError> {
        let slot = &self.linkers[kind.index()];
        if let Some(linker) = slot.get() {
            return Ok(linker);
        }
        let engine = self.engine.wasmtime(kind)?;
        let linker =
            host_api::linker(engine).map_err(|e| EngineError::Config(format!("cannot define the host API: {e:#}")))?;
        Ok(slot.get_or_init(|| linker))
    }

    /// Loads a component from its bytes. `source` names it in errors.
    ///
    /// # Errors
    ///
    /// A [`LoadError`] naming the component and the problem.
    #[instrument(skip_all, fields(component = name, bytes = bytes.len()))]
    pub fn load(
        &self,
        name: &str,
        source: &str,
        bytes: Vec<u8>,
        version: Option<String>,
    ) -> Result<ActorComponent, LoadError> {
        let started = std::time::Instant::now();
        if let Some(name) = batch::reserved_name(&bytes) {
            return Err(LoadError::Reserved { what: source.to_string(), name });
        }
        let hash = blake3::hash(&bytes);
        let version = version.or_else(|| embedded_version(&bytes));
        let component = ActorComponent {
            name: name.to_string(),
            source: source.to_string(),
            version,
            size: bytes.len(),
            hash,
            protocol: OnceLock::new(),
            imports: OnceLock::new(),
            bytes: Arc::from(bytes),
            compiled: [OnceLock::new(), OnceLock::new()],
        };
        component.compiled(self, EngineKind::Epoch)?;
        info!(elapsed_ms = started.elapsed().as_millis() as u64, "component loaded");
        Ok(component)
    }
}

/// A compiled, linked component: the code of one or more actors.
pub struct ActorComponent {
    /// The name spawners use for it.
    pub name: String,
    /// Where it came from (a path), for messages.
    pub source: String,
    /// Its version, from the manifest, if any.
    pub version: Option<String>,
    /// Size of the component in bytes.
    pub size: usize,
    /// Content hash of the component bytes.
    pub hash: blake3::Hash,
    protocol: OnceLock<Protocol>,
    imports: OnceLock<Vec<ImportedInterface>>,
    bytes: Arc<[u8]>,
    compiled: [OnceLock<Compiled>; 2],
}

impl std::fmt::Debug for ActorComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorComponent")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("hash", &self.short_hash())
            .finish_non_exhaustive()
    }
}

/// A component compiled and linked for one engine kind.
pub(crate) struct Compiled {
    pub pre: InstancePre<ActorData>,
    /// Where its protocol functions and hooks are.
    pub exports: Exports,
    /// Its batch entry points (empty without batch delivery).
    pub batch: Arc<batch::Tables>,
}

impl ActorComponent {
    /// Its message protocol.
    pub fn protocol(&self) -> &Protocol {
        self.protocol.get().expect("a loaded component has its protocol")
    }

    /// The protocol interfaces it imports (bound to other actors).
    pub fn imports(&self) -> &[ImportedInterface] {
        self.imports.get().map(Vec::as_slice).unwrap_or(&[])
    }

    /// The imported protocol interface with this name (any version).
    pub fn import(&self, interface: &str) -> Option<&ImportedInterface> {
        self.imports().iter().find(|i| interface_key(&i.name) == interface_key(interface))
    }

    /// Does it export `troupe:actor/watcher` (to receive `down` notices)?
    pub fn exports_watcher(&self) -> bool {
        self.compiled.iter().filter_map(OnceLock::get).any(|c| c.exports.lifecycle.down.is_some())
    }

    /// The component's bytes, as loaded.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// First 12 hex digits of the content hash.
    pub fn short_hash(&self) -> String {
        self.hash.to_hex()[..12].to_string()
    }

    /// Compiled and linked for `kind`, doing so now if needed.
    pub(crate) fn compiled(&self, loader: &Loader, kind: EngineKind) -> Result<&Compiled, LoadError> {
        let slot = &self.compiled[kind.index()];
        if let Some(c) = slot.get() {
            return Ok(c);
        }
        let engine = loader.engine.wasmtime(kind)?;
        let (component, layout) =
            batch::compile(&loader.engine, loader.batch, kind, &self.source, &self.bytes, &self.hash)?;
        let protocol = Protocol::of(&component, engine)
            .map_err(|error| LoadError::Protocol { what: self.source.clone(), error })?;
        let exports = Exports::of(&component, &protocol).ok_or_else(|| {
            LoadError::Engine(EngineError::Invalid {
                what: self.source.clone(),
                reason: "an export listed in its type cannot be found".into(),
            })
        })?;
        let batch = batch::Tables::checked(&component, engine, &protocol, layout.as_ref(), &self.source);
        let imports = Protocol::imports_of(&component, engine);
        let linker = loader.linker(kind)?;
        let linked = if imports.is_empty() {
            linker.instantiate_pre(&component)
        } else {
            // Imports bound to other actors are defined per component, on a
            // copy of the shared linker.
            let mut linker = linker.clone();
            host_api::define_imports(&mut linker, &imports).and_then(|()| linker.instantiate_pre(&component))
        };
        let pre = linked.map_err(|e| LoadError::Imports { what: self.source.clone(), detail: format!("{e:#}") })?;
        let _ = self.protocol.set(protocol);
        let _ = self.imports.set(imports);
        Ok(slot.get_or_init(|| Compiled { pre, exports, batch: Arc::new(batch) }))
    }
}

/// The version a component declares in a top-level `version` custom section
/// (as written by `wasm-tools metadata add --version`), if any.
fn embedded_version(bytes: &[u8]) -> Option<String> {
    use wasmparser::{Chunk, Parser, Payload};
    let mut parser = Parser::new(0);
    let mut rest = bytes;
    loop {
        let Chunk::Parsed { consumed, payload } = parser.parse(rest, true).ok()? else { return None };
        rest = &rest[consumed..];
        match payload {
            Payload::CustomSection(section) if section.name() == "version" => {
                return std::str::from_utf8(section.data()).ok().map(|v| v.trim().to_string());
            }
            // Only the outer component's sections describe it: the parser
            // has already stepped over a nested one; so must the input.
            Payload::ModuleSection { unchecked_range, .. } | Payload::ComponentSection { unchecked_range, .. } => {
                rest = bytes.get(unchecked_range.end..)?;
            }
            Payload::End(_) => return None,
            _ => {}
        }
    }
}

impl crate::error_code::HasErrorCode for LoadError {
    fn code(&self) -> crate::error_code::ErrorCode {
        crate::error_code::ErrorCode::LoadFailed
    }
}
