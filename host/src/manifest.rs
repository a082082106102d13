//! The manifest: a TOML file naming components and the actors to start.
//!
//! ```toml
//! # Components guests may spawn, without starting any.
//! [components.chat-member]
//! path = "chat_member.wasm"        # relative to this file
//!
//! # Actors to start, in this order (stopped in reverse).
//! [actors.counter]
//! path = "counter.wasm"
//! version = "1.0.0"                # shown by `troupe ps`
//! instances = 1                    # >1 gives counter-0, counter-1, ...
//! restart = "snapshot"             # or "init" (the default)
//! snapshot-every = 1               # messages between snapshots
//! config = { start = 10 }          # handed to `init`
//! limits = { fuel = 1_000_000, deadline-ms = 500, memory = "32MiB", mailbox = 256 }
//! grants = { env = { GREETING = "hi" }, stdio = true, clocks = true,
//!            dirs = [{ host = "data", guest = "/data", mode = "read-only" }] }
//! ```
//!
//! Every `[actors.NAME]` entry is also a component entry, so guests can
//! spawn more actors like it with `spawn("NAME", ..)`. An actor entry may
//! take `component = "NAME"` instead of `path` to reuse another entry's
//! code (loaded once); its config, limits and grants are its own.
//!
//! Errors name the file, the line and column, and the key.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::actor::RestartFrom;
use crate::engine::ActorLimits;
use crate::grants::Grants;
use crate::message::Address;
use crate::system::{ComponentEntry, Host};

/// Upper bound on `instances`, to catch typos before they become a
/// hundred thousand actors.
pub const MAX_INSTANCES: u32 = 100_000;

/// A manifest that does not parse, does not validate, or cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The manifest file.
    pub file: PathBuf,
    /// 1-based line and column of the offending item, when known.
    pub location: Option<(usize, usize)>,
    /// The offending key, e.g. `actors.counter.limits`.
    pub key: Option<String>,
    /// What is wrong, and how to fix it.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.location {
            write!(f, ":{line}:{col}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "`{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ManifestError {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    components: IndexMap<String, Spanned<RawEntry>>,
    #[serde(default)]
    actors: IndexMap<String, Spanned<RawEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEntry {
    path: Option<PathBuf>,
    component: Option<String>,
    instances: Option<Spanned<u32>>,
    version: Option<String>,
    #[serde(default)]
    config: IndexMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    limits: Option<Spanned<ActorLimits>>,
    #[serde(default)]
    grants: Option<Spanned<Grants>>,
    #[serde(default)]
    restart: RestartFrom,
    snapshot_every: Option<Spanned<u32>>,
}

/// Where an entry's code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A component file (absolute, or relative to the working directory).
    Path(PathBuf),
    /// Another entry's component, by name.
    Entry(String),
}

/// One validated `[components.NAME]` or `[actors.NAME]` entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The entry's name.
    pub name: String,
    /// Its code.
    pub source: Source,
    /// Number of actors to start (0 for a `[components]` entry).
    pub instances: u32,
    /// Version shown by `troupe ps`.
    pub version: Option<String>,
    /// Configuration handed to `init`, values as text.
    pub config: Vec<(String, String)>,
    /// Resource limits.
    pub limits: ActorLimits,
    /// Sandbox grants, with directories resolved against the manifest.
    pub grants: Grants,
    /// Restart policy.
    pub restart: RestartFrom,
    /// Snapshot frequency.
    pub snapshot_every: u32,
    key: String,
    location: (usize, usize),
}

impl Entry {
    /// The addresses of the actors this entry starts.
    pub fn addresses(&self) -> Vec<Address> {
        match self.instances {
            0 => Vec::new(),
            1 => vec![Address::from(self.name.as_str())],
            n => (0..n).map(|i| Address::from(format!("{}-{i}", self.name))).collect(),
        }
    }
}

/// A parsed and validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file it was read from.
    pub file: PathBuf,
    /// Component and actor entries, components first, each in file order.
    pub entries: Vec<Entry>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    ///
    /// # Errors
    ///
    /// A [`ManifestError`] naming the file, position and key.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError {
            file: path.to_path_buf(),
            location: None,
            key: None,
            message: format!("cannot read the manifest: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates manifest `text`; `path` locates relative paths
    /// and names the file in errors.
    ///
    /// # Errors
    ///
    /// A [`ManifestError`] naming the file, position and key.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let err = |span: Option<Range<usize>>, key: Option<String>, message: String| ManifestError {
            file: path.to_path_buf(),
            location: span.map(|s| line_col(text, s.start)),
            key,
            message,
        };
        let raw: RawManifest = toml::from_str(text).map_err(|e| err(e.span(), None, e.message().trim().to_string()))?;

        let mut entries = Vec::new();
        let mut names = HashSet::new();
        for (table, map) in [("components", &raw.components), ("actors", &raw.actors)] {
            for (name, spanned) in map {
                let key = format!("{table}.{name}");
                let span = spanned.span();
                let raw = spanned.get_ref();
                let fail = |span: Range<usize>, key: String, message: String| Err(err(Some(span), Some(key), message));
                if let Err(problem) = Address::validate(name) {
                    return fail(span, key, format!("invalid name: {problem}"));
                }
                if !names.insert(name.clone()) {
                    return fail(span, key, format!("`{name}` is defined in both [components] and [actors]"));
                }
                let source = match (&raw.path, &raw.component) {
                    (Some(p), None) => Source::Path(base.join(p)),
                    (None, Some(c)) if table == "actors" => Source::Entry(c.clone()),
                    (None, Some(_)) => {
                        return fail(span, key, "a [components] entry needs `path`, not `component`".into());
                    }
                    (Some(_), Some(_)) => {
                        return fail(span, key, "give either `path` or `component`, not both".into());
                    }
                    (None, None) => {
                        return fail(
                            span,
                            key,
                            "missing `path` (the component file, relative to this manifest)".into(),
                        );
                    }
                };
                if let Source::Path(p) = &source
                    && !p.is_file()
                {
                    return fail(span, format!("{key}.path"), format!("no component file at `{}`", p.display()));
                }
                let instances = match (&raw.instances, table) {
                    (Some(n), "components") => {
                        return fail(
                            n.span(),
                            format!("{key}.instances"),
                            "[components] entries start no actors; move it to [actors]".into(),
                        );
                    }
                    (Some(n), _) if *n.get_ref() == 0 || *n.get_ref() > MAX_INSTANCES => {
                        return fail(n.span(), format!("{key}.instances"), format!("must be 1 to {MAX_INSTANCES}"));
                    }
                    (Some(n), _) => *n.get_ref(),
                    (None, "components") => 0,
                    (None, _) => 1,
                };
                let snapshot_every = match &raw.snapshot_every {
                    Some(n) if *n.get_ref() == 0 => {
                        return fail(n.span(), format!("{key}.snapshot-every"), "must be at least 1".into());
                    }
                    Some(n) => *n.get_ref(),
                    None => 1,
                };
                let mut config = Vec::new();
                for (k, v) in &raw.config {
                    let value = match v.get_ref() {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Integer(i) => i.to_string(),
                        toml::Value::Float(f) => f.to_string(),
                        toml::Value::Boolean(b) => b.to_string(),
                        _ => {
                            return fail(
                                v.span(),
                                format!("{key}.config.{k}"),
                                "config values are strings, numbers or booleans".into(),
                            );
                        }
                    };
                    config.push((k.clone(), value));
                }
                let limits = raw.limits.as_ref().map(|l| l.get_ref().clone()).unwrap_or_default();
                if let Some(spanned) = &raw.limits
                    && let Err(e) = limits.validate(u64::MAX)
                {
                    return fail(spanned.span(), format!("{key}.limits.{}", e.field), e.problem);
                }
                let mut grants = raw.grants.as_ref().map(|g| g.get_ref().clone()).unwrap_or_default();
                for dir in &mut grants.dirs {
                    dir.host = base.join(&dir.host);
                }
                if let Some(spanned) = &raw.grants
                    && let Err(e) = grants.validate()
                {
                    return fail(spanned.span(), format!("{key}.grants.dirs"), e.to_string());
                }
                entries.push(Entry {
                    name: name.clone(),
                    source,
                    instances,
                    version: raw.version.clone(),
                    config,
                    limits,
                    grants,
                    restart: raw.restart,
                    snapshot_every,
                    key,
                    location: line_col(text, span.start),
                });
            }
        }

        // `component = "x"` must name an entry; addresses must not collide.
        let mut addresses: HashSet<Address> = HashSet::new();
        for entry in &entries {
            let fail = |message: String| ManifestError {
                file: path.to_path_buf(),
                location: Some(entry.location),
                key: Some(entry.key.clone()),
                message,
            };
            if let Source::Entry(name) = &entry.source
                && !entries.iter().any(|e| &e.name == name && matches!(e.source, Source::Path(_)))
            {
                return Err(fail(format!("`component = \"{name}\"` names no entry with a `path`")));
            }
            for address in entry.addresses() {
                if !addresses.insert(address.clone()) {
                    return Err(fail(format!("address `{address}` is used by two entries; rename one")));
                }
            }
        }
        Ok(Manifest { file: path.to_path_buf(), entries })
    }

    /// Loads every component and starts every actor, in file order.
    /// Returns the addresses started.
    ///
    /// # Errors
    ///
    /// A [`ManifestError`] naming the entry that could not be loaded or
    /// started. Actors started before it keep running.
    pub async fn apply(&self, host: &Host) -> Result<Vec<Address>, ManifestError> {
        let mut started = Vec::new();
        let mut loaded: Vec<(String, ComponentEntry)> = Vec::new();
        for entry in &self.entries {
            let fail = |message: String| ManifestError {
                file: self.file.clone(),
                location: Some(entry.location),
                key: Some(entry.key.clone()),
                message,
            };
            let component = match &entry.source {
                Source::Path(path) => {
                    host.load(&entry.name, path, entry.version.clone()).map_err(|e| fail(e.to_string()))?
                }
                Source::Entry(name) => loaded
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, e)| e.component.clone())
                    .ok_or_else(|| fail(format!("`{name}` must come before this entry in the manifest")))?,
            };
            entry
                .limits
                .validate(host.engine().config().get_max_memory_bytes())
                .map_err(|e| fail(format!("invalid limit `{}`: {}", e.field, e.problem)))?;
            let component_entry = ComponentEntry {
                component,
                limits: entry.limits.clone(),
                grants: entry.grants.clone(),
                config: entry.config.clone(),
                restart: entry.restart,
                snapshot_every: entry.snapshot_every,
            };
            host.define(&entry.name, component_entry.clone());
            for address in entry.addresses() {
                let mut spec = component_entry.spec(address.clone());
                spec.group = Some(entry.name.clone());
                host.spawn(spec).await.map_err(|e| fail(e.to_string()))?;
                started.push(address);
            }
            loaded.push((entry.name.clone(), component_entry));
        }
        Ok(started)
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}
