//! The on-disk cache of compiled components.
//!
//! Compiling a component costs milliseconds for a small Rust guest and
//! seconds for a JavaScript or Python one (they embed an interpreter), so a
//! host restart should not pay it again. Artifacts are keyed by the
//! component's content hash, a tag (the engine kind, and how the caller
//! built the bytes it compiled), and wasmtime's precompile-compatibility
//! hash (which changes with the wasmtime version and any codegen-relevant
//! setting), so a stale artifact is never loaded.
//!
//! Beside an artifact the cache can keep a *sidecar*: a few bytes the
//! caller wants back with it (wasmtime's artifacts keep no custom
//! sections). The sidecar is renamed into place before its artifact, so an
//! artifact that is found had its sidecar written in full.

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

/// A compiled component from the cache, with its sidecar.
pub struct Artifact {
    /// The compiled component.
    pub component: Component,
    /// The bytes stored beside it, if any were.
    pub sidecar: Option<Vec<u8>>,
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

    /// The cached artifact for this component, if there is a usable one,
    /// with its sidecar if it has one.
    pub fn load(&self, engine: &wasmtime::Engine, hash: &blake3::Hash, tag: &str) -> Option<Artifact> {
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
                let sidecar = std::fs::read(sidecar_path(&path)).ok();
                Some(Artifact { component, sidecar })
            }
            Err(e) => {
                warn!(path = %path.display(), error = %e, "discarding unusable cache entry");
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(sidecar_path(&path));
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Stores a compiled component, and `sidecar` beside it. Failures only
    /// cost a recompilation next time, so they are logged, not returned.
    pub fn store(
        &self,
        engine: &wasmtime::Engine,
        hash: &blake3::Hash,
        tag: &str,
        component: &Component,
        sidecar: Option<&[u8]>,
    ) {
        let path = self.path(engine, hash, tag);
        let stored = component.serialize().map_err(|e| std::io::Error::other(format!("{e:#}"))).and_then(|artifact| {
            // The sidecar first: an artifact in place has its sidecar.
            match sidecar {
                Some(sidecar) => write_atomically(&sidecar_path(&path), sidecar)?,
                None => remove_if_present(&sidecar_path(&path))?,
            }
            write_atomically(&path, &artifact)
        });
        if let Err(e) = stored {
            warn!(path = %path.display(), error = %e, "could not cache compiled component");
        }
    }
}

/// Where the sidecar of the artifact at `artifact` is.
fn sidecar_path(artifact: &Path) -> PathBuf {
    artifact.with_extension("sidecar")
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache paths have a parent");
    create_private_dir(dir)?;
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artifact_comes_back_with_the_sidecar_stored_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path().to_path_buf());
        let engine = wasmtime::Engine::default();
        let component = Component::new(&engine, wat::parse_str("(component)").unwrap()).unwrap();
        let hash = blake3::hash(b"a component");
        cache.store(&engine, &hash, "tag", &component, Some(b"layout"));
        let loaded = cache.load(&engine, &hash, "tag").expect("the artifact is cached");
        assert_eq!(loaded.sidecar.as_deref(), Some(&b"layout"[..]));
        cache.store(&engine, &hash, "tag", &component, None);
        let loaded = cache.load(&engine, &hash, "tag").expect("the artifact is cached");
        assert_eq!(loaded.sidecar, None, "a store without a sidecar leaves none behind");
        assert!(cache.load(&engine, &hash, "another tag").is_none());
        assert_eq!(cache.stats(), CacheStats { hits: 2, misses: 1 });
    }
}
