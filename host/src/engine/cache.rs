//! The on-disk cache of compiled components.
//!
//! Compiling a component costs milliseconds for a small Rust guest and
//! seconds for a JavaScript or Python one (they embed an interpreter), so a
//! host restart should not pay it again. Artifacts are keyed by the
//! component's content hash, the engine kind, and wasmtime's
//! precompile-compatibility hash (which changes with the wasmtime version and
//! any codegen-relevant setting), so a stale artifact is never loaded.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::{debug, warn};
use wasmtime::component::Component;

/// A directory of compiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    stats: Arc<CacheCounters>,
}

#[derive(Debug, Default)]
struct CacheCounters {
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How often the cache has been useful, since the engine started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Components loaded from the cache.
    pub hits: u64,
    /// Components compiled because the cache had no usable artifact.
    pub misses: u64,
}

impl CompileCache {
    /// A cache rooted at `dir` (created on first store).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, stats: Arc::default() }
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats { hits: self.stats.hits.load(Ordering::Relaxed), misses: self.stats.misses.load(Ordering::Relaxed) }
    }

    /// `$TROUPE_CACHE_DIR`, else `$XDG_CACHE_HOME/troupe`, else
    /// `$HOME/.cache/troupe`; `None` if none of them is set.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("TROUPE_CACHE_DIR") {
            return Some(PathBuf::from(dir));
        }
        if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
            return Some(PathBuf::from(dir).join("troupe"));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("troupe"))
    }

    fn path(&self, engine: &wasmtime::Engine, hash: &blake3::Hash, tag: &str) -> PathBuf {
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        self.dir.join(format!("{:016x}", hasher.finish())).join(format!("{}-{tag}.cwasm", hash.to_hex()))
    }

    /// The cached artifact for this component, if there is a usable one.
    pub fn load(&self, engine: &wasmtime::Engine, hash: &blake3::Hash, tag: &str) -> Option<Component> {
        let path = self.path(engine, hash, tag);
        if !path.is_file() {
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        // SAFETY: `deserialize_file` trusts the file to be an artifact that
        // wasmtime produced. Only this cache writes into its directory (it is
        // created owner-only, see `store`), files are written under a
        // temporary name and renamed into place complete, and the name
        // carries the engine compatibility hash, so wasmtime's own header
        // check sees a matching engine. SECURITY.md documents that the cache
        // directory must not be writable by other users.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => {
                debug!(path = %path.display(), "loaded compiled component from cache");
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                Some(component)
            }
            Err(e) => {
                warn!(path = %path.display(), error = %e, "discarding unusable cache entry");
                let _ = std::fs::remove_file(&path);
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Stores a compiled component. Failures only cost a recompilation
    /// next time, so they are logged, not returned.
    pub fn store(&self, engine: &wasmtime::Engine, hash: &blake3::Hash, tag: &str, component: &Component) {
        let path = self.path(engine, hash, tag);
        if let Err(e) = write_atomically(&path, component) {
            warn!(path = %path.display(), error = %e, "could not cache compiled component");
        }
    }
}

fn write_atomically(path: &Path, component: &Component) -> std::io::Result<()> {
    let bytes = component.serialize().map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    let dir = path.parent().expect("cache paths have a parent");
    create_private_dir(dir)?;
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}
