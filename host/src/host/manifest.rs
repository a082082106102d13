//! The manifest: a TOML file naming components, the actors to start, and
//! the supervision tree they start in.
//!
//! ```toml
//! # Components guests may spawn, without starting any.
//! [components.chat-member]
//! path = "chat_member.wasm"        # relative to this file
//!
//! # Actors under the root supervisor, started in file order.
//! [actors.counter]
//! path = "counter.wasm"
//! version = "1.0.0"                # shown by `troupe ps`
//! instances = 1                    # >1 gives counter-0, counter-1, ...
//! restart = "permanent"            # or "transient", "temporary"
//! restore = "snapshot"             # or "init" (the default)
//! snapshot-every = 1               # messages between snapshots...
//! snapshot-interval-ms = 1000      # ...and/or time between them
//! snapshot-journal-bytes = 4194304 # ...and/or journal since the last (durable actors)
//! hibernate-after-ms = 30000       # idle this long: drop the instance, keep the snapshot
//! shutdown-ms = 5000               # grace for the `shutdown.stop` export
//! config = { start = 10 }          # handed to `init`
//! limits = { fuel = 1_000_000, deadline-ms = 500, memory = "32MiB", mailbox = 256 }
//! grants = { env = { GREETING = "hi" }, stdio = true, clocks = true,
//!            dirs = [{ host = "data", guest = "/data", mode = "read-only" }],
//!            http = ["https://api.example.com/v1/*"] }  # see crate::outbound::grant
//! supervise = { strategy = "one-for-all" }   # for the children it spawns
//! bindings = { "acme:store/api" = "store" }  # where its imported interfaces' calls go
//! # or { actor = "store", timeout-ms = 2000, breaker = { failures = 5, reset-ms = 10000 },
//! #      retry = { attempts = 3 } }   # retry: its calls are idempotent
//!
//! # A virtual component: every `user/KEY` exists, activated by a message.
//! [virtual.user]
//! path = "counter.wasm"
//! idle-ms = 900000                 # passivate when idle this long (the default)
//! keep-alive = false               # or never passivate
//! warm-instances = 2               # instances kept ready for activations (the default)
//!
//! # A supervisor, with its children nested under it (in file order).
//! [supervisors.pipeline]
//! strategy = "rest-for-one"        # one-for-one, one-for-all, rest-for-one, pool
//! intensity = 3                    # restarts allowed...
//! period-ms = 5000                 # ...within this window
//! backoff = { min-ms = 50, max-ms = 5000, jitter = 0.2, reset-after-ms = 10000 }
//! restart = "permanent"            # how its own supervisor restarts it
//!
//! [supervisors.pipeline.actors.source]
//! path = "source.wasm"
//!
//! [supervisors.pipeline.supervisors.workers]
//! strategy = "pool"                # identical children, added at run time too
//! component = "worker"             # the entry they start from
//! instances = 4                    # workers-0 .. workers-3
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
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::actor::ActorLimits;
use crate::actor::binding::{BindingSpec, Router};
use crate::actor::durable::Durability;
use crate::actor::{ActorPolicy, ActorSpec, DEFAULT_SHUTDOWN, RestartFrom, SpawnError};
use crate::grants::Grants;
use crate::host::{ActorTemplate, DEFAULT_IDLE, DEFAULT_WARM_INSTANCES, Host, ROOT};
use crate::message::Address;
use crate::outbound::guard::{BreakerGuard, RetryGuard};
use crate::outbound::{BreakerConfig, HttpClient, HttpGrant, RetryConfig};
use crate::supervision::{Backoff, RestartType, Strategy, SupervisorSpec};

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
    components: IndexMap<String, Spanned<RawTemplate>>,
    #[serde(default)]
    actors: IndexMap<String, Spanned<RawTemplate>>,
    #[serde(default)]
    supervisors: IndexMap<String, Spanned<RawSupervisor>>,
    #[serde(default, rename = "virtual")]
    virtuals: IndexMap<String, Spanned<RawTemplate>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTemplate {
    path: Option<PathBuf>,
    component: Option<String>,
    instances: Option<Spanned<u32>>,
    version: Option<String>,
    #[serde(default)]
    config: IndexMap<String, Spanned<toml::Value>>,
    limits: Option<Spanned<ActorLimits>>,
    /// [`Grants`], and `http` (an [`HttpGrant`]), read apart: the
    /// actor layer's `Grants` holds the HTTP grant as the handle the host
    /// builds from it.
    grants: Option<Spanned<toml::Table>>,
    #[serde(default)]
    restart: RestartType,
    durability: Option<Durability>,
    #[serde(default)]
    restore: RestartFrom,
    /// `[virtual]` entries only.
    idle_ms: Option<Spanned<u64>>,
    /// `[virtual]` entries only.
    keep_alive: Option<Spanned<bool>>,
    /// `[virtual]` entries only.
    warm_instances: Option<Spanned<u32>>,
    /// `[actors]` entries only: the cluster node that runs them.
    node: Option<Spanned<String>>,
    snapshot_every: Option<Spanned<u32>>,
    snapshot_interval_ms: Option<Spanned<u64>>,
    snapshot_journal_bytes: Option<Spanned<u64>>,
    hibernate_after_ms: Option<Spanned<u64>>,
    shutdown_ms: Option<u64>,
    supervise: Option<Spanned<SupervisorSpec>>,
    #[serde(default)]
    bindings: IndexMap<String, Spanned<toml::Value>>,
    /// The old name of `bindings`, refused with a pointer to the new one.
    links: Option<Spanned<toml::Value>>,
    /// `[actors]` entries only: the gateway's paths served by it (see
    /// [`super::routes`]).
    routes: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSupervisor {
    #[serde(default)]
    strategy: Strategy,
    intensity: Option<u32>,
    period_ms: Option<u64>,
    #[serde(default)]
    backoff: Backoff,
    #[serde(default)]
    restart: RestartType,
    component: Option<String>,
    instances: Option<Spanned<u32>>,
    #[serde(default)]
    actors: IndexMap<String, Spanned<RawTemplate>>,
    #[serde(default)]
    supervisors: IndexMap<String, Spanned<RawSupervisor>>,
}

/// Where an entry's code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A component file (absolute, or relative to the working directory).
    Path(PathBuf),
    /// Another entry's component, by the entry's name.
    Template(String),
}

/// One validated `[components.NAME]` or `[actors.NAME]` entry: the
/// declaration of a template, and of the actors to start from it.
#[derive(Debug, Clone)]
pub struct TemplateDecl {
    /// The entry's name.
    pub name: String,
    /// Its code.
    pub source: Source,
    /// Number of actors to start (0 for a `[components]` entry).
    pub instances: u32,
    /// Version shown by `troupe ps`.
    pub version: Option<String>,
    /// How its actors behave.
    pub policy: ActorPolicy,
    /// The supervisor its actors start under (the root if `None`).
    pub supervisor: Option<String>,
    /// In a cluster, the node whose host starts its actors (every host,
    /// if `None`); the others define it only, and reach its actors on
    /// that node.
    pub node: Option<String>,
    /// The gateway's paths its actor serves (an HTTP actor's; see
    /// [`super::routes`]).
    pub routes: Vec<String>,
    key: String,
    location: (usize, usize),
}

impl TemplateDecl {
    /// The addresses of the actors this entry starts.
    pub fn addresses(&self) -> Vec<Address> {
        instance_addresses(&self.name, self.instances)
    }

    /// Whether `host` starts this entry's actors: any host outside a
    /// cluster, and in one the host of its node, if it is pinned to one.
    pub fn runs_on(&self, host: &Host) -> bool {
        match (&self.node, host.peers()) {
            (Some(node), Some(peers)) => peers.node() == node,
            _ => true,
        }
    }
}

/// A pool's children: `NAME-0`, `NAME-1`, ...
/// Starts the actors of `specs` under `supervisor` together, so that
/// their instantiations run in parallel on the runtime's threads, then
/// waits for each, noting its address in `started`. The first failure is
/// returned; those that started keep running.
async fn start_together(
    host: &Host,
    specs: impl Iterator<Item = ActorSpec>,
    supervisor: Option<&str>,
    started: &mut Vec<Address>,
) -> Result<(), SpawnError> {
    let mut starting = Vec::new();
    for spec in specs {
        starting.push(host.start_under(spec, supervisor)?);
    }
    for actor in starting {
        started.push(actor.started().await?.address().clone());
    }
    Ok(())
}

fn pool_addresses(name: &str, instances: u32) -> Vec<Address> {
    (0..instances).map(|i| Address::from(format!("{name}-{i}"))).collect()
}

fn instance_addresses(name: &str, instances: u32) -> Vec<Address> {
    match instances {
        0 => Vec::new(),
        1 => vec![Address::from(name)],
        n => (0..n).map(|i| Address::from(format!("{name}-{i}"))).collect(),
    }
}

/// One validated `[supervisors.NAME]` entry.
#[derive(Debug, Clone)]
pub struct SupervisorDecl {
    /// Its name (its address).
    pub name: String,
    /// Its policy.
    pub spec: SupervisorSpec,
    /// Its own supervisor (the root if `None`).
    pub supervisor: Option<String>,
    /// For a pool: the component entry its children start from, and how
    /// many it starts.
    pub pool: Option<(String, u32)>,
    key: String,
    location: (usize, usize),
}

/// One validated `[virtual.NAME]` entry: a template whose every key is an
/// address (see [`Host::define_virtual`]).
#[derive(Debug, Clone)]
pub struct VirtualDecl {
    /// The template (durable unless the entry says otherwise).
    pub entry: TemplateDecl,
    /// How long an activation stays idle before it passivates (`None`:
    /// kept alive).
    pub idle: Option<Duration>,
}

/// A manifest item, in start order.
#[derive(Debug, Clone)]
pub enum Item {
    /// A `[virtual]` entry: defined; its keys are activated by messages.
    Virtual(VirtualDecl),
    /// A `[components]` entry: defined, not started.
    Component(TemplateDecl),
    /// An `[actors]` entry: defined and started.
    Actor(TemplateDecl),
    /// A `[supervisors]` entry.
    Supervisor(SupervisorDecl),
}

/// A parsed and validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file it was read from.
    pub file: PathBuf,
    /// Every item: components first, then actors and supervisors in start
    /// order (depth first, each supervisor before its children).
    pub items: Vec<Item>,
}

struct Parser<'a> {
    file: &'a Path,
    text: &'a str,
    base: PathBuf,
    items: Vec<Item>,
    names: HashSet<String>,
    /// The routes of the entries read so far, to refuse overlaps.
    routes: super::routes::RouteTable,
}

impl Parser<'_> {
    fn err(&self, span: Option<Range<usize>>, key: Option<String>, message: String) -> ManifestError {
        ManifestError {
            file: self.file.to_path_buf(),
            location: span.map(|s| line_col(self.text, s.start)),
            key,
            message,
        }
    }

    fn claim(&mut self, name: &str, span: &Range<usize>, key: &str) -> Result<(), ManifestError> {
        if let Err(problem) = Address::validate(name) {
            return Err(self.err(Some(span.clone()), Some(key.into()), format!("invalid name: {problem}")));
        }
        if !self.names.insert(name.to_string()) {
            return Err(self.err(Some(span.clone()), Some(key.into()), format!("the name `{name}` is defined twice")));
        }
        Ok(())
    }

    fn entry(
        &mut self,
        key: String,
        name: &str,
        spanned: &Spanned<RawTemplate>,
        component_only: bool,
        supervisor: Option<&str>,
    ) -> Result<TemplateDecl, ManifestError> {
        let span = spanned.span();
        let raw = spanned.get_ref();
        self.claim(name, &span, &key)?;
        let fail = |this: &Self, span: Range<usize>, key: String, message: String| {
            Err(this.err(Some(span), Some(key), message))
        };
        if !key.starts_with("virtual.")
            && let Some(span) = raw.idle_ms.as_ref().map(|s| s.span()).or(raw.keep_alive.as_ref().map(|s| s.span()))
        {
            return fail(
                self,
                span,
                key,
                "only [virtual] entries passivate (`idle-ms`, `keep-alive`); this one may hibernate (`hibernate-after-ms`)"
                    .into(),
            );
        }
        if !key.starts_with("virtual.")
            && let Some(warm) = &raw.warm_instances
        {
            return fail(
                self,
                warm.span(),
                key,
                "only [virtual] entries keep warm instances (for their activations)".into(),
            );
        }
        if let Some(node) = &raw.node {
            if component_only || key.starts_with("virtual.") {
                return fail(
                    self,
                    node.span(),
                    key,
                    "only [actors] entries are pinned to a node (`node`): a virtual key lives wherever its first \
                     message arrives"
                        .into(),
                );
            }
            let name = node.get_ref();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return fail(
                    self,
                    node.span(),
                    key,
                    format!("invalid node name `{name}`: use letters, digits, `-` and `_`, as `--node` does"),
                );
            }
        }
        let source = match (&raw.path, &raw.component) {
            (Some(p), None) => Source::Path(self.base.join(p)),
            (None, Some(c)) if !component_only => Source::Template(c.clone()),
            (None, Some(_)) => {
                return fail(self, span, key, "a [components] entry needs `path`, not `component`".into());
            }
            (Some(_), Some(_)) => return fail(self, span, key, "give either `path` or `component`, not both".into()),
            (None, None) => {
                return fail(self, span, key, "missing `path` (the component file, relative to this manifest)".into());
            }
        };
        if let Source::Path(p) = &source
            && !p.is_file()
        {
            return fail(self, span, format!("{key}.path"), format!("no component file at `{}`", p.display()));
        }
        let instances = match &raw.instances {
            Some(n) if component_only => {
                return fail(
                    self,
                    n.span(),
                    format!("{key}.instances"),
                    "[components] entries start no actors; move it to [actors]".into(),
                );
            }
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > MAX_INSTANCES => {
                return fail(self, n.span(), format!("{key}.instances"), format!("must be 1 to {MAX_INSTANCES}"));
            }
            Some(n) => *n.get_ref(),
            None if component_only => 0,
            None => 1,
        };
        if let Some(n) = &raw.snapshot_every
            && *n.get_ref() == 0
        {
            return fail(self, n.span(), format!("{key}.snapshot-every"), "must be at least 1".into());
        }
        if let Some(n) = &raw.snapshot_interval_ms
            && *n.get_ref() == 0
        {
            return fail(self, n.span(), format!("{key}.snapshot-interval-ms"), "must be at least 1".into());
        }
        if let Some(n) = &raw.snapshot_journal_bytes
            && *n.get_ref() == 0
        {
            return fail(self, n.span(), format!("{key}.snapshot-journal-bytes"), "must be at least 1".into());
        }
        if let Some(n) = &raw.hibernate_after_ms
            && *n.get_ref() == 0
        {
            return fail(self, n.span(), format!("{key}.hibernate-after-ms"), "must be at least 1".into());
        }
        let mut config = Vec::new();
        for (k, v) in &raw.config {
            let value = match v.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => {
                    return fail(
                        self,
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
            return fail(self, spanned.span(), format!("{key}.limits.{}", e.field), e.problem);
        }
        let mut grants = Grants::default();
        if let Some(spanned) = &raw.grants {
            let mut table = spanned.get_ref().clone();
            if let Some(http) = table.remove("http") {
                let access = http
                    .try_into::<HttpGrant>()
                    .map_err(|e| e.to_string())
                    .and_then(|grant| HttpClient::access(grant).map_err(|e| e.to_string()));
                match access {
                    Ok(access) => grants.http = Some(access),
                    Err(e) => return fail(self, spanned.span(), format!("{key}.grants.http"), e),
                }
            }
            match toml::Value::Table(table).try_into::<Grants>() {
                Ok(rest) => grants = Grants { http: grants.http, ..rest },
                Err(e) => return fail(self, spanned.span(), format!("{key}.grants"), e.to_string()),
            }
        }
        for dir in &mut grants.dirs {
            dir.host = self.base.join(&dir.host);
        }
        if let Some(spanned) = &raw.grants
            && let Err(e) = grants.validate()
        {
            return fail(self, spanned.span(), format!("{key}.grants.dirs"), e.to_string());
        }
        let supervision = raw.supervise.as_ref().map(|s| s.get_ref().clone()).unwrap_or_default();
        if let Some(spanned) = &raw.supervise
            && let Err(problem) = supervision.validate()
        {
            return fail(self, spanned.span(), format!("{key}.supervise"), problem.to_string());
        }
        if let Some(old) = &raw.links {
            return fail(
                self,
                old.span(),
                format!("{key}.links"),
                "`links` is now called `bindings` (which actor each imported interface calls); \
                 Erlang-style links are made at run time with `link`"
                    .into(),
            );
        }
        let mut routes = Vec::new();
        if let Some(spanned) = &raw.routes {
            let at =
                |this: &Self, message: String| this.err(Some(spanned.span()), Some(format!("{key}.routes")), message);
            if component_only || key.starts_with("virtual.") {
                return Err(at(self, "only [actors] entries serve routes".into()));
            }
            if instances != 1 || raw.durability == Some(Durability::Durable) {
                return Err(at(
                    self,
                    "an entry with routes starts one actor, in memory (no `instances`, not durable)".into(),
                ));
            }
            for text in spanned.get_ref() {
                let route = super::routes::Route::parse(text).map_err(|e| at(self, e.to_string()))?;
                self.routes.add(route, Address::from(name)).map_err(|e| at(self, e.to_string()))?;
                routes.push(text.clone());
            }
        }
        let mut bindings = Vec::new();
        for (interface, value) in &raw.bindings {
            let binding = parse_binding(interface, value.get_ref()).map_err(|problem| {
                self.err(Some(value.span()), Some(format!("{key}.bindings.{interface}")), problem)
            })?;
            bindings.push((interface.clone(), binding));
        }
        Ok(TemplateDecl {
            name: name.to_string(),
            source,
            instances,
            version: raw.version.clone(),
            policy: ActorPolicy {
                limits,
                grants,
                config,
                durability: raw.durability.unwrap_or_default(),
                restore: raw.restore,
                snapshot_every: raw.snapshot_every.as_ref().map(|n| *n.get_ref()),
                snapshot_interval: raw.snapshot_interval_ms.as_ref().map(|n| Duration::from_millis(*n.get_ref())),
                snapshot_journal_bytes: raw.snapshot_journal_bytes.as_ref().map(|n| *n.get_ref()),
                hibernate_after: raw.hibernate_after_ms.as_ref().map(|n| Duration::from_millis(*n.get_ref())),
                restart: raw.restart,
                supervision,
                shutdown: raw.shutdown_ms.map(Duration::from_millis).unwrap_or(DEFAULT_SHUTDOWN),
                bindings,
                warm_instances: 0,
            },
            supervisor: supervisor.map(str::to_string),
            node: raw.node.as_ref().map(|n| n.get_ref().clone()),
            routes,
            key,
            location: line_col(self.text, span.start),
        })
    }

    /// Children of one supervisor (`prefix` is its key, or empty for the
    /// root), in file order.
    fn children(
        &mut self,
        prefix: &str,
        actors: &IndexMap<String, Spanned<RawTemplate>>,
        supervisors: &IndexMap<String, Spanned<RawSupervisor>>,
        parent: Option<&str>,
    ) -> Result<(), ManifestError> {
        enum Child<'r> {
            Actor(&'r str, &'r Spanned<RawTemplate>),
            Supervisor(&'r str, &'r Spanned<RawSupervisor>),
        }
        let mut ordered: Vec<(usize, Child<'_>)> = actors
            .iter()
            .map(|(n, e)| (e.span().start, Child::Actor(n, e)))
            .chain(supervisors.iter().map(|(n, s)| (s.span().start, Child::Supervisor(n, s))))
            .collect();
        ordered.sort_by_key(|(start, _)| *start);
        for (_, child) in ordered {
            match child {
                Child::Actor(name, raw) => {
                    let entry = self.entry(format!("{prefix}actors.{name}"), name, raw, false, parent)?;
                    self.items.push(Item::Actor(entry));
                }
                Child::Supervisor(name, raw) => {
                    self.supervisor(format!("{prefix}supervisors.{name}"), name, raw, parent)?
                }
            }
        }
        Ok(())
    }

    fn supervisor(
        &mut self,
        key: String,
        name: &str,
        spanned: &Spanned<RawSupervisor>,
        parent: Option<&str>,
    ) -> Result<(), ManifestError> {
        let span = spanned.span();
        let raw = spanned.get_ref();
        self.claim(name, &span, &key)?;
        let spec = SupervisorSpec {
            strategy: raw.strategy,
            intensity: raw.intensity.unwrap_or(crate::supervision::DEFAULT_INTENSITY),
            period: raw.period_ms.map(Duration::from_millis).unwrap_or(crate::supervision::DEFAULT_PERIOD),
            backoff: raw.backoff,
            restart: raw.restart,
        };
        if let Err(problem) = spec.validate() {
            return Err(self.err(Some(span), Some(key), problem.to_string()));
        }
        let pool = match (raw.strategy, &raw.component, &raw.instances) {
            (Strategy::Pool, Some(component), instances) => {
                let n = instances.as_ref().map(|n| *n.get_ref()).unwrap_or(0);
                if n > MAX_INSTANCES {
                    return Err(self.err(
                        Some(span),
                        Some(format!("{key}.instances")),
                        format!("must be 0 to {MAX_INSTANCES}"),
                    ));
                }
                Some((component.clone(), n))
            }
            (Strategy::Pool, None, _) => {
                return Err(self.err(
                    Some(span),
                    Some(key),
                    "a pool needs `component`, the entry its children start from".into(),
                ));
            }
            (_, Some(_), _) | (_, _, Some(_)) => {
                return Err(self.err(
                    Some(span),
                    Some(key),
                    "`component` and `instances` belong to `strategy = \"pool\"` supervisors".into(),
                ));
            }
            _ => None,
        };
        self.items.push(Item::Supervisor(SupervisorDecl {
            name: name.to_string(),
            spec,
            supervisor: parent.map(str::to_string),
            pool,
            key: key.clone(),
            location: line_col(self.text, span.start),
        }));
        self.children(&format!("{key}."), &raw.actors, &raw.supervisors, Some(name))
    }
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
        let mut parser = Parser {
            file: path,
            text,
            base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            items: Vec::new(),
            names: HashSet::from([ROOT.to_string()]),
            routes: Default::default(),
        };
        let raw: RawManifest =
            toml::from_str(text).map_err(|e| parser.err(e.span(), None, e.message().trim().to_string()))?;
        for (name, spanned) in &raw.components {
            let entry = parser.entry(format!("components.{name}"), name, spanned, true, None)?;
            parser.items.push(Item::Component(entry));
        }
        for (name, spanned) in &raw.virtuals {
            let key = format!("virtual.{name}");
            let mut entry = parser.entry(key.clone(), name, spanned, true, None)?;
            let raw = spanned.get_ref();
            if raw.durability.is_none() {
                entry.policy.durability = Durability::Durable;
            }
            entry.policy.warm_instances = raw.warm_instances.as_ref().map_or(DEFAULT_WARM_INSTANCES, |n| *n.get_ref());
            let keep_alive = raw.keep_alive.as_ref().is_some_and(|k| *k.get_ref());
            let idle = match &raw.idle_ms {
                Some(ms) if *ms.get_ref() == 0 => {
                    return Err(parser.err(
                        Some(ms.span()),
                        Some(format!("{key}.idle-ms")),
                        "must be at least 1".into(),
                    ));
                }
                Some(ms) => Duration::from_millis(*ms.get_ref()),
                None => DEFAULT_IDLE,
            };
            parser.items.push(Item::Virtual(VirtualDecl { entry, idle: (!keep_alive).then_some(idle) }));
        }
        parser.children("", &raw.actors, &raw.supervisors, None)?;
        let manifest = Manifest { file: path.to_path_buf(), items: parser.items };
        manifest.check_references()?;
        Ok(manifest)
    }

    /// Component and actor entries, in start order.
    pub fn entries(&self) -> impl Iterator<Item = &TemplateDecl> {
        self.items.iter().filter_map(|item| match item {
            Item::Component(e) | Item::Actor(e) => Some(e),
            Item::Virtual(_) | Item::Supervisor(_) => None,
        })
    }

    /// `component = "x"` must name an entry with a path; pools must name an
    /// entry; addresses must not collide.
    fn check_references(&self) -> Result<(), ManifestError> {
        let at = |key: &str, location: (usize, usize), message: String| ManifestError {
            file: self.file.clone(),
            location: Some(location),
            key: Some(key.to_string()),
            message,
        };
        let has_path = |name: &str| self.entries().any(|e| e.name == name && matches!(e.source, Source::Path(_)));
        let mut addresses: HashSet<Address> = HashSet::new();
        for item in &self.items {
            let (key, location, these) = match item {
                Item::Component(e) | Item::Actor(e) => {
                    if let Source::Template(name) = &e.source
                        && !has_path(name)
                    {
                        return Err(at(
                            &e.key,
                            e.location,
                            format!("`component = \"{name}\"` names no entry with a `path`"),
                        ));
                    }
                    (&e.key, e.location, e.addresses())
                }
                // Its supervisor takes its name.
                Item::Virtual(v) => (&v.entry.key, v.entry.location, vec![Address::from(v.entry.name.as_str())]),
                Item::Supervisor(s) => {
                    let mut these = vec![Address::from(s.name.as_str())];
                    if let Some((component, n)) = &s.pool {
                        if !self.entries().any(|e| &e.name == component) {
                            return Err(at(
                                &s.key,
                                s.location,
                                format!("`component = \"{component}\"` names no entry"),
                            ));
                        }
                        these.extend(pool_addresses(&s.name, *n));
                    }
                    (&s.key, s.location, these)
                }
            };
            for address in these {
                if !addresses.insert(address.clone()) {
                    return Err(at(key, location, format!("address `{address}` is used by two entries; rename one")));
                }
            }
        }
        Ok(())
    }

    /// The template a `[virtual]` entry declares: its component loaded
    /// from its file, its policy checked against the host's engine.
    fn template(&self, host: &Host, entry: &TemplateDecl) -> Result<ActorTemplate, String> {
        let Source::Path(path) = &entry.source else { return Err("a [virtual] entry needs `path`".into()) };
        let component = host.load(&entry.name, path, entry.version.clone()).map_err(|e| e.to_string())?;
        entry
            .policy
            .limits
            .validate(host.engine().config().get_max_memory_bytes())
            .map_err(|e| format!("invalid limit `{}`: {}", e.field, e.problem))?;
        Ok(ActorTemplate { component, policy: entry.policy.clone() })
    }

    /// Loads every component, creates every supervisor and starts every
    /// actor, in start order. Returns the actor addresses started.
    ///
    /// # Errors
    ///
    /// A [`ManifestError`] naming the entry that could not be loaded or
    /// started. What started before it keeps running.
    pub async fn apply(&self, host: &Host) -> Result<Vec<Address>, ManifestError> {
        let mut started = Vec::new();
        let fail = |key: &str, location: (usize, usize), message: String| ManifestError {
            file: self.file.clone(),
            location: Some(location),
            key: Some(key.to_string()),
            message,
        };
        for item in &self.items {
            match item {
                Item::Virtual(v) => {
                    let entry = &v.entry;
                    let template = self.template(host, entry).map_err(|e| fail(&entry.key, entry.location, e))?;
                    host.define_virtual(&entry.name, template, v.idle)
                        .map_err(|e| fail(&entry.key, entry.location, e.to_string()))?;
                }
                Item::Component(entry) | Item::Actor(entry) => {
                    let component = match &entry.source {
                        Source::Path(path) => host
                            .load(&entry.name, path, entry.version.clone())
                            .map_err(|e| fail(&entry.key, entry.location, e.to_string()))?,
                        Source::Template(name) => host.template(name).map(|t| t.component).ok_or_else(|| {
                            fail(&entry.key, entry.location, format!("`{name}` must come before this entry"))
                        })?,
                    };
                    entry.policy.limits.validate(host.engine().config().get_max_memory_bytes()).map_err(|e| {
                        fail(&entry.key, entry.location, format!("invalid limit `{}`: {}", e.field, e.problem))
                    })?;
                    let template = ActorTemplate { component, policy: entry.policy.clone() };
                    host.define(&entry.name, template.clone());
                    if !entry.runs_on(host) {
                        continue;
                    }
                    let mut specs = Vec::new();
                    for address in entry.addresses() {
                        let mut spec = template.spec(address);
                        spec.group = Some(entry.name.clone());
                        // In a cluster, a durable actor of an entry every
                        // host may run starts on one (see `singletons.rs`).
                        if entry.node.is_none()
                            && !host.claim_or_stand_by(&spec, entry.supervisor.as_deref(), &entry.routes).await
                        {
                            continue;
                        }
                        // Targets may start later in the file: bind below.
                        spec.policy.bindings.clear();
                        specs.push(spec);
                    }
                    let durable: Vec<Address> = specs
                        .iter()
                        .filter(|spec| spec.policy.durability == Durability::Durable)
                        .map(|spec| spec.address.clone())
                        .collect();
                    let specs = specs.into_iter();
                    start_together(host, specs, entry.supervisor.as_deref(), &mut started)
                        .await
                        .map_err(|e| fail(&entry.key, entry.location, e.to_string()))?;
                    // In a cluster, what its durable children were on the
                    // host that ran it before.
                    for address in durable {
                        host.respawn_children(address.as_str()).await;
                    }
                }
                Item::Supervisor(s) => {
                    host.supervise(&s.name, s.spec.clone(), s.supervisor.as_deref())
                        .map_err(|e| fail(&s.key, s.location, e.to_string()))?;
                    if let Some((component, n)) = &s.pool {
                        let entry = host.template(component).ok_or_else(|| {
                            fail(&s.key, s.location, format!("`{component}` must come before this pool"))
                        })?;
                        let specs = pool_addresses(&s.name, *n).into_iter().map(|address| {
                            let mut spec = entry.spec(address);
                            spec.group = Some(component.clone());
                            spec
                        });
                        start_together(host, specs, Some(&s.name), &mut started)
                            .await
                            .map_err(|e| fail(&s.key, s.location, e.to_string()))?;
                    }
                }
            }
        }
        // Every actor is up: make the bindings, type-checked, and the routes.
        for item in &self.items {
            let Item::Actor(entry) = item else { continue };
            if !entry.runs_on(host) {
                continue;
            }
            for address in entry.addresses() {
                if host.stands_by_for(address.as_str()) {
                    continue;
                }
                for (interface, binding) in &entry.policy.bindings {
                    host.bind(address.as_str(), interface, binding.clone()).map_err(|e| {
                        fail(&format!("{}.bindings.{interface}", entry.key), entry.location, e.to_string())
                    })?;
                }
                if !entry.routes.is_empty() {
                    host.add_routes(address.as_str(), &entry.routes)
                        .map_err(|e| fail(&format!("{}.routes", entry.key), entry.location, e.to_string()))?;
                }
            }
        }
        Ok(started)
    }
}

/// A `bindings` value: `"actor"`, or a table with `actor` or `group`, an
/// optional `router` and `timeout-ms`.
fn parse_binding(interface: &str, value: &toml::Value) -> Result<BindingSpec, String> {
    let table = match value {
        toml::Value::String(address) => return Ok(BindingSpec::actor(address.as_str())),
        toml::Value::Table(table) => table,
        _ => return Err("a binding is an actor address, or a table with `actor` or `group`".into()),
    };
    for k in table.keys() {
        if !["actor", "group", "router", "virtual", "key-from", "timeout-ms", "breaker", "retry"].contains(&k.as_str())
        {
            return Err(format!(
                "unknown key `{k}`; a binding takes `actor`, `group` (and `router`) or `virtual` (and `key-from`), \
                 `timeout-ms`, `breaker` and `retry`"
            ));
        }
    }
    let breaker = match table.get("breaker") {
        None => None,
        Some(value) => {
            let config = BreakerConfig::deserialize(value.clone()).map_err(|e| format!("`breaker`: {e}"))?;
            Some(BreakerGuard::binding(interface, config).map_err(|e| e.to_string())?)
        }
    };
    let retry = match table.get("retry") {
        None => None,
        Some(value) => {
            let config = RetryConfig::deserialize(value.clone()).map_err(|e| format!("`retry`: {e}"))?;
            Some(RetryGuard::binding(interface, config).map_err(|e| e.to_string())?)
        }
    };
    let text = |k: &str| table.get(k).map(|v| v.as_str().map(str::to_string).ok_or(format!("`{k}` must be a string")));
    if let Some(component) = text("virtual").transpose()? {
        if table.contains_key("actor") || table.contains_key("group") || table.contains_key("router") {
            return Err("a `virtual` binding takes `key-from`, not `actor`, `group` or `router`".into());
        }
        let key_from = text("key-from")
            .transpose()?
            .ok_or("a `virtual` binding needs `key-from`: the parameter whose argument is the key")?;
        let mut spec = BindingSpec::virtual_key(component, key_from);
        spec.breaker = breaker;
        spec.retry = retry;
        if let Some(ms) = table.get("timeout-ms") {
            let ms = ms.as_integer().filter(|ms| *ms > 0).ok_or("`timeout-ms` must be a positive integer")?;
            spec.timeout = Duration::from_millis(ms as u64);
        }
        return Ok(spec);
    }
    if table.contains_key("key-from") {
        return Err("`key-from` applies to a `virtual` binding only".into());
    }
    let mut spec = match (text("actor").transpose()?, text("group").transpose()?) {
        (Some(actor), None) => {
            if table.contains_key("router") {
                return Err("`router` applies to a `group` only".into());
            }
            BindingSpec::actor(actor)
        }
        (None, Some(group)) => {
            let router = match table.get("router") {
                None => Router::RoundRobin,
                Some(r) => Router::deserialize(r.clone()).map_err(|_| {
                    "`router` is \"round-robin\", \"random\", \"least-loaded\", \"broadcast\" or { hash-on = \"PARAM\" }"
                        .to_string()
                })?,
            };
            BindingSpec::group(group, router)
        }
        _ => return Err("give exactly one of `actor` and `group`".into()),
    };
    spec.breaker = breaker;
    spec.retry = retry;
    if let Some(ms) = table.get("timeout-ms") {
        let ms = ms.as_integer().filter(|ms| *ms > 0).ok_or("`timeout-ms` must be a positive integer")?;
        spec.timeout = Duration::from_millis(ms as u64);
    }
    Ok(spec)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}
