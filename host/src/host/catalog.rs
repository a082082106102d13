//! The component catalog: the code a host has loaded (each component once,
//! by content) and the templates it can start actors from, by name — what
//! the manifest's `[components]` and `[actors]` entries define and what a
//! guest's `spawn("NAME", ..)` asks for.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Weak};

use crate::actor::{ActorComponent, ActorPolicy, ActorSpec, LoadError, Loader};
use crate::message::Address;
use crate::sync::RwLock;

/// A component under a name, with the policy for actors started from it:
/// what a manifest `[components.NAME]` or `[actors.NAME]` entry defines,
/// and what a guest's `spawn("NAME", ..)` starts.
///
/// ```no_run
/// # async fn demo(host: troupe::Host) -> anyhow::Result<()> {
/// let component = host.load("counter", "counter.wasm".as_ref(), None)?;
/// let mut template = troupe::ActorTemplate::new(component);
/// template.policy.config.push(("start".into(), "7".into()));
/// host.define("counter", template.clone());
/// host.spawn(template.spec("counter-1".into())).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ActorTemplate {
    /// The code.
    pub component: Arc<ActorComponent>,
    /// How its actors behave.
    pub policy: ActorPolicy,
}

impl ActorTemplate {
    /// A template with the default policy.
    pub fn new(component: Arc<ActorComponent>) -> Self {
        Self { component, policy: ActorPolicy::default() }
    }

    /// The spec of an actor at `address` started from this template.
    pub fn spec(&self, address: Address) -> ActorSpec {
        ActorSpec { address, component: self.component.clone(), policy: self.policy.clone(), parent: None, group: None }
    }
}

/// Loaded components and named templates.
pub(crate) struct Catalog {
    loader: Arc<Loader>,
    templates: RwLock<HashMap<String, ActorTemplate>>,
    /// Components by content hash, while some actor or template uses them.
    loaded: RwLock<HashMap<blake3::Hash, Weak<ActorComponent>>>,
}

impl Catalog {
    /// An empty catalog compiling through `loader`.
    pub fn new(loader: Arc<Loader>) -> Self {
        Catalog { loader, templates: RwLock::default(), loaded: RwLock::default() }
    }

    /// The loader components are compiled and linked with.
    pub fn loader(&self) -> &Arc<Loader> {
        &self.loader
    }

    /// Loads the component at `path`.
    pub fn load(&self, name: &str, path: &Path, version: Option<String>) -> Result<Arc<ActorComponent>, LoadError> {
        let bytes = std::fs::read(path).map_err(|error| LoadError::Io { path: path.display().to_string(), error })?;
        self.load_bytes(name, &path.display().to_string(), bytes, version)
    }

    /// Loads a component from bytes, reusing an already loaded one with
    /// the same content, name and version.
    pub fn load_bytes(
        &self,
        name: &str,
        source: &str,
        bytes: Vec<u8>,
        version: Option<String>,
    ) -> Result<Arc<ActorComponent>, LoadError> {
        let hash = blake3::hash(&bytes);
        let existing = self.loaded.read().get(&hash).and_then(Weak::upgrade);
        if let Some(c) = existing
            && c.name == name
            && c.version == version
        {
            return Ok(c);
        }
        let component = Arc::new(self.loader.load(name, source, bytes, version)?);
        self.loaded.write().insert(hash, Arc::downgrade(&component));
        Ok(component)
    }

    /// The loaded component with content hash `hash`, if some actor or
    /// template still uses it.
    pub fn by_hash(&self, hash: &blake3::Hash) -> Option<Arc<ActorComponent>> {
        self.loaded.read().get(hash).and_then(Weak::upgrade)
    }

    /// Makes `template` startable under `name`.
    pub fn define(&self, name: &str, template: ActorTemplate) {
        self.templates.write().insert(name.to_string(), template);
    }

    /// The template named `name`.
    pub fn template(&self, name: &str) -> Option<ActorTemplate> {
        self.templates.read().get(name).cloned()
    }

    /// The names of the templates, sorted, for error messages.
    pub fn known(&self) -> String {
        let templates = self.templates.read();
        let mut names: Vec<&str> = templates.keys().map(String::as_str).collect();
        names.sort_unstable();
        if names.is_empty() { "none (name them in the manifest)".into() } else { names.join(", ") }
    }
}
