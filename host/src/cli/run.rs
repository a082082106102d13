//! `troupe run`: a host in the foreground.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::ValueEnum;
use tracing::{error, info};
use troupe::actor::durable::Durability;
use troupe::cluster::{Cluster, ClusterConfig};
use troupe::control::{ControlServer, default_socket_path, respawn_durable, respawner};
use troupe::gateway::{Gateway, Tokens, parse_listen_address};
use troupe::manifest::Manifest;
use troupe::parse_bytes;
use troupe::store::{DEFAULT_CACHE_BYTES, DataDir, LazyStore};
use troupe::supervision::RootPolicy;
use troupe::trace::export::Exporter;
use troupe::{BatchDelivery, EngineConfig, Host, HostConfig};

use super::stdout::say;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A manifest (TOML) naming the components and actors to start.
    pub manifest: Option<PathBuf>,

    /// Most actors the host will run at once (sizes the instance pool).
    #[arg(long, default_value_t = troupe::engine::DEFAULT_MAX_INSTANCES, value_name = "N")]
    pub max_actors: u32,

    /// Instance slots in the pool, i.e. most actors awake at once
    /// [default: --max-actors]. Hibernating actors (`hibernate-after-ms`)
    /// hold none, so a host of mostly idle actors can use fewer.
    #[arg(long, value_name = "N")]
    pub max_instances: Option<u32>,

    /// Ceiling on any actor's memory limit, e.g. 512MiB (sizes each pool slot).
    #[arg(long, default_value = "512MiB", value_parser = parse_bytes, value_name = "SIZE")]
    pub max_memory: u64,

    /// Where compiled components are cached [default: $XDG_CACHE_HOME/troupe].
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,

    /// Compile every component afresh; cache nothing.
    #[arg(long)]
    pub no_cache: bool,

    /// Which functions take several queued tells per call into the guest
    /// (batch delivery; see the README): `registers` (numeric arguments),
    /// `all` (strings, lists, options and variants too, for more memory per
    /// awake actor) or `off` (a call per message, and a tracing span per
    /// message).
    #[arg(long, value_enum, default_value_t = BatchDelivery::Registers)]
    pub batch_delivery: BatchDelivery,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Watch the component files named in the manifest and hot-swap each
    /// one into its actors when it changes (the developer inner loop).
    #[arg(long, requires = "manifest")]
    pub watch: bool,

    /// What to do when the root supervisor gives up on a top-level actor or
    /// supervisor (its restarts exceeded the root's intensity).
    #[arg(long, value_enum, default_value_t = RootPolicy::KeepRunning)]
    pub on_root_failure: RootPolicy,

    /// The host's name: it names its default data directory.
    #[arg(long, default_value = "default", value_name = "NAME")]
    pub name: String,

    /// Where durable actors are committed [default:
    /// $XDG_STATE_HOME/troupe/NAME, or ~/.local/state/troupe/NAME]. Opened
    /// at start when given, when it holds a store, or when the manifest
    /// declares durable actors; otherwise on the first durable spawn.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Memory for the store's page cache, e.g. 64MiB [default: 32MiB]: the
    /// pages of the durable actors recently active. A host of many durable
    /// actors that passivate keeps no more of them in memory than this.
    #[arg(long, value_parser = parse_bytes, value_name = "SIZE")]
    pub store_cache: Option<u64>,

    /// Serve the HTTP gateway on ADDR: a port (on loopback: `8080`),
    /// `localhost:PORT`, or an IP address and port (`0.0.0.0:8080`, which
    /// needs tokens). Port 0 picks a free port; the address is printed.
    #[arg(long, value_parser = parse_listen_address, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,

    /// The gateway's bearer tokens: entries `read TOKEN` or `admin TOKEN`,
    /// one per line, `#` comments. More may come from `TROUPE_HTTP_TOKENS`
    /// (entries separated by `;` or newlines). Without any, the gateway
    /// allows everything, and listens only on loopback.
    #[arg(long, requires = "http", value_name = "FILE")]
    pub http_tokens: Option<PathBuf>,

    /// Trust the certificate authorities in this PEM file for actors'
    /// outbound `https` requests, beside the Mozilla roots (repeatable): for
    /// services whose certificates a private CA signs.
    #[arg(long, value_name = "FILE")]
    pub http_ca: Vec<PathBuf>,

    /// Export traces over OTLP/HTTP to URL: a collector's base URL
    /// (`http://localhost:4318`; traces go to its `/v1/traces`) or the full
    /// URL of its traces endpoint. One span per message (`actor.handle`)
    /// and per gateway request (`http.request`).
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,

    /// Join the cluster on these NATS servers (comma-separated URLs, e.g.
    /// `nats://127.0.0.1:4222`; JetStream on): every host's actors become
    /// reachable from this one, and this host's from them.
    #[arg(long, value_name = "URLS", requires = "node")]
    pub cluster: Option<String>,

    /// This host's node name in the cluster: letters, digits, `-`, `_`;
    /// unique among the live hosts.
    #[arg(long, value_name = "NAME", requires = "cluster")]
    pub node: Option<String>,

    /// How long a host stays a member after its last heartbeat, in
    /// milliseconds; the first host sets it for the cluster.
    #[arg(long, value_name = "MS", requires = "cluster", default_value_t = troupe::cluster::DEFAULT_LEASE.as_millis() as u64)]
    pub lease_ms: u64,
}

/// The most open files the host asks for when the hard limit is
/// unlimited: far more connections than one host serves.
const OPEN_FILES_WANTED: u64 = 1 << 20;

/// Raises the soft limit on open files to the hard limit (at most
/// [`OPEN_FILES_WANTED`]), with a log line. Each HTTP connection holds a
/// descriptor, and a soft limit of 1024 (a common default) would refuse
/// connections long before the host is busy; the hard limit is the
/// administrator's, and stays.
fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = limit.maximum.unwrap_or(OPEN_FILES_WANTED).min(OPEN_FILES_WANTED);
    let Some(soft) = limit.current.filter(|soft| *soft < wanted) else { return };
    match setrlimit(Resource::Nofile, Rlimit { current: Some(wanted), maximum: limit.maximum }) {
        Ok(()) => info!(from = soft, to = wanted, "raised the soft limit on open files, for HTTP connections"),
        Err(e) => tracing::warn!(soft, wanted, error = %e, "cannot raise the soft limit on open files"),
    }
}

/// The variable that holds gateway tokens, as `--http-tokens`'s file does.
const TOKENS_VARIABLE: &str = "TROUPE_HTTP_TOKENS";

/// The gateway's tokens: `--http-tokens`'s file's and the environment's.
fn http_tokens(args: &RunArgs) -> anyhow::Result<Tokens> {
    let mut tokens = Tokens::default();
    if let Some(file) = &args.http_tokens {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the tokens file `{}`", file.display()))?;
        tokens = Tokens::parse(&text, &file.display().to_string())?;
    }
    if let Some(text) = std::env::var_os(TOKENS_VARIABLE) {
        let text = text.into_string().map_err(|_| anyhow::anyhow!("{TOKENS_VARIABLE} is not UTF-8"))?;
        tokens = tokens.merge(Tokens::parse(&text, TOKENS_VARIABLE)?, TOKENS_VARIABLE)?;
    }
    Ok(tokens)
}

/// Installs the roots of outbound `https`: the Mozilla roots and
/// `--http-ca`'s authorities.
fn install_http_roots(files: &[PathBuf]) -> anyhow::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let mut pem = Vec::new();
    for file in files {
        let text = std::fs::read(file).with_context(|| format!("cannot read the CA file `{}`", file.display()))?;
        pem.extend_from_slice(&text);
        pem.push(b'\n');
    }
    let names = files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ");
    let tls = troupe::outbound::HttpTls::with_pem_authorities(&pem, &names)?;
    let count = tls.private_authorities();
    tls.install().map_err(|_| anyhow::anyhow!("the outbound HTTPS roots were set twice"))?;
    info!(authorities = count, files = %names, "outbound https trusts private certificate authorities");
    Ok(())
}

/// The host's store: opened now if it is needed now (given explicitly,
/// holding durable actors to recover, or named by the manifest), so that a
/// store another host holds is an error at start; else on first use.
fn open_store(args: &RunArgs, manifest: Option<&Manifest>) -> anyhow::Result<Arc<LazyStore>> {
    let path = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => DataDir::default_path(&args.name)?,
    };
    let cache = args.store_cache.map_or(DEFAULT_CACHE_BYTES, |bytes| usize::try_from(bytes).unwrap_or(usize::MAX));
    let store = Arc::new(LazyStore::new(path, cache));
    let durable_in_manifest = manifest.is_some_and(|m| m.entries().any(|e| e.policy.durability == Durability::Durable));
    if args.data_dir.is_some() || store.exists() || durable_in_manifest {
        store.open().with_context(|| format!("cannot open the store in `{}`", store.path().display()))?;
        info!(data_dir = %store.path().display(), "store open");
    }
    Ok(store)
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The log on stderr, and the trace exporter's layer if there is one.
/// The log leaves out the trace spans (one per message) unless
/// `TROUPE_LOG` asks for them.
fn init_logging(format: LogFormat, exporter: Option<&Exporter>) {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{EnvFilter, Layer};
    let filter = EnvFilter::try_from_env("TROUPE_LOG").unwrap_or_else(|_| {
        let quiet_traces = format!("{}=off", troupe::trace::TARGET).parse().expect("a valid directive");
        EnvFilter::new("info").add_directive(quiet_traces)
    });
    let log = tracing_subscriber::fmt::layer().with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr);
    let log = match format {
        LogFormat::Text => log.boxed(),
        LogFormat::Json => log.json().boxed(),
    };
    tracing_subscriber::registry().with(log.with_filter(filter)).with(exporter.map(|e| e.layer())).init();
}

pub async fn run(args: RunArgs, control: Option<PathBuf>) -> anyhow::Result<()> {
    let exporter = args.otlp.as_deref().map(|url| Exporter::new(url, "troupe")).transpose()?;
    init_logging(args.log_format, exporter.as_ref());
    if let Some(exporter) = &exporter {
        troupe::trace::enable();
        info!(url = exporter.url(), "exporting traces over OTLP");
    }
    let outcome = serve(args, control).await;
    if let Some(exporter) = exporter {
        // The spans of the last messages, before the process ends.
        exporter.shutdown().await;
    }
    outcome
}

/// The host, until a signal or the root supervisor giving up.
async fn serve(args: RunArgs, control: Option<PathBuf>) -> anyhow::Result<()> {
    // Listened for from now on: a stop asked for while the host starts
    // (or just after it said it was ready) is a clean stop, not a kill.
    let stop_requested = ShutdownSignal::listen();
    let mut engine = EngineConfig::new();
    engine.max_instances(args.max_instances.unwrap_or(args.max_actors)).max_memory_bytes(args.max_memory);
    if args.no_cache {
        engine.cache_dir(None);
    } else if let Some(dir) = args.cache_dir.clone() {
        engine.cache_dir(Some(dir));
    }
    // Before the manifest makes its grants, which trust these roots.
    install_http_roots(&args.http_ca)?;
    // Validate the manifest before taking the socket: a typo should not
    // need a second terminal to notice.
    let manifest = args.manifest.as_deref().map(Manifest::load).transpose()?;
    let max_actors = Some(args.max_actors as usize);
    let store = open_store(&args, manifest.as_ref())?;
    let host = Host::new(HostConfig {
        engine,
        batch_delivery: args.batch_delivery,
        root: Default::default(),
        root_policy: args.on_root_failure,
        max_actors,
        journal: Some(store.clone()),
        // The gateway serves the metrics, histograms included.
        time_messages: args.http.is_some(),
    })?;

    let (path, private) = match control {
        Some(path) => (path, false),
        None => (default_socket_path(), true),
    };
    let server = ControlServer::bind(&path, private).await?;
    let gateway = match args.http {
        Some(address) => {
            raise_open_file_limit();
            Some(Gateway::bind(address, http_tokens(&args)?).await?)
        }
        None => None,
    };

    // Before the manifest: its actors are reachable from the cluster as
    // they start, and may reach other hosts' from their `init`.
    let cluster = match (&args.cluster, &args.node) {
        (Some(servers), Some(node)) => {
            let config = ClusterConfig {
                servers: servers.clone(),
                node: node.clone(),
                lease: std::time::Duration::from_millis(args.lease_ms),
            };
            // Durable actors `troupe spawn` started on a host that dies
            // start again here from their records, as a spawn would.
            host.set_respawner(respawner());
            match Cluster::join(&host, config).await {
                Ok(cluster) => Some(cluster),
                Err(e) => {
                    host.shutdown().await;
                    return Err(e).context("could not join the cluster");
                }
            }
        }
        _ => None,
    };

    // Recovered tells wait until every durable actor is back.
    let recovering = host.hold_recovered_tells();
    if let Some(manifest) = &manifest {
        let started = match manifest.apply(&host).await {
            Ok(started) => started,
            Err(e) => {
                host.shutdown().await;
                return Err(e).context("the manifest could not be started");
            }
        };
        info!(actors = started.len(), manifest = %manifest.file.display(), "manifest started");
    }
    // In a cluster, the durable actors spawned at run time that no live
    // host runs (their hosts all stopped, or died unnoticed).
    if cluster.is_some() {
        host.recover_spawned().await;
    }
    if store.exists() {
        for (address, problem) in respawn_durable(&host).await {
            match problem {
                None => info!(actor = %address, "durable actor recovered"),
                Some(problem) => error!(actor = %address, %problem, "durable actor not recovered"),
            }
        }
    }
    drop(recovering);
    if args.watch
        && let Some(manifest) = &manifest
    {
        tokio::spawn(watch(host.clone(), manifest.clone()));
    }
    let http = gateway.as_ref().map(Gateway::local_addr);
    let banner = say!("troupe host running; control socket: {}", server.path().display())
        .and_then(|()| match http {
            Some(address) => say!("HTTP gateway: http://{address}"),
            None => Ok(()),
        })
        .and_then(|()| match &cluster {
            Some(cluster) => say!("cluster node: {}", cluster.node()),
            None => Ok(()),
        })
        .and_then(|()| say!("try: troupe --control {} ps", server.path().display()));
    if let Err(e) = banner {
        // Its reader went away (see `super::stdout`): end as every command
        // does, after stopping the actors; dropping the server removes the
        // socket.
        host.shutdown().await;
        return Err(e);
    }
    // Bound since before the manifest started: requests that came early
    // wait in the listen queue until now.
    let gateway = gateway.map(|gateway| tokio::spawn(gateway.serve(host.clone())));

    let gave_up = {
        let host = host.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = tx.send(host.root_gave_up().await);
        });
        rx
    };
    let mut failure = None;
    server
        .serve(host.clone(), async {
            tokio::select! {
                _ = stop_requested.wait() => {}
                reason = gave_up => failure = reason.ok(),
            }
        })
        .await;
    info!("shutting down");
    if let Some(gateway) = gateway {
        gateway.abort();
    }
    host.shutdown().await;
    if let Some(cluster) = cluster {
        cluster.leave().await;
    }
    drop(server);
    match failure {
        Some(reason) => anyhow::bail!("the root supervisor {reason}"),
        None => Ok(()),
    }
}

/// SIGTERM and SIGINT (Ctrl-C), each caught from the moment it is
/// listened for: a signal that arrives before the host waits for one
/// still stops it cleanly, where the default action would kill it.
struct ShutdownSignal {
    term: Option<tokio::signal::unix::Signal>,
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    /// Starts catching both signals.
    fn listen() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let catch = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| error!(error = %e, "cannot listen for {name}; stop the host another way")).ok()
        };
        ShutdownSignal {
            term: catch(SignalKind::terminate(), "SIGTERM"),
            interrupt: catch(SignalKind::interrupt(), "SIGINT"),
        }
    }

    /// Until one of them arrives (or was caught since [`Self::listen`]).
    async fn wait(mut self) {
        let next = |signal: &mut Option<tokio::signal::unix::Signal>| {
            let signal = signal.take();
            async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            () = next(&mut self.term) => {}
            () = next(&mut self.interrupt) => {}
        }
    }
}

/// How often `--watch` looks at the component files.
const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(300);

/// A watched component file.
struct Watched {
    entry: String,
    path: PathBuf,
    version: Option<String>,
    stamp: Option<(std::time::SystemTime, u64)>,
    hash: Option<blake3::Hash>,
}

fn stamp(path: &std::path::Path) -> Option<(std::time::SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// `--watch`: polls the manifest's component files; when one changes,
/// hot-swaps every actor started from its entry (rolling, with rollback).
async fn watch(host: Host, manifest: Manifest) {
    use troupe::manifest::Source;
    let mut files: Vec<Watched> = manifest
        .entries()
        .filter_map(|e| match &e.source {
            Source::Path(path) => Some(Watched {
                entry: e.name.clone(),
                path: path.clone(),
                version: e.version.clone(),
                stamp: stamp(path),
                hash: std::fs::read(path).ok().map(|b| blake3::hash(&b)),
            }),
            Source::Template(_) => None,
        })
        .collect();
    info!(files = files.len(), "watching component files");
    loop {
        tokio::time::sleep(WATCH_INTERVAL).await;
        for file in &mut files {
            let now = stamp(&file.path);
            if now.is_none() || now == file.stamp {
                continue;
            }
            file.stamp = now;
            let Ok(bytes) = std::fs::read(&file.path) else { continue };
            let hash = blake3::hash(&bytes);
            if Some(hash) == file.hash {
                continue;
            }
            let component =
                match host.load_bytes(&file.entry, &file.path.display().to_string(), bytes, file.version.clone()) {
                    Ok(c) => c,
                    Err(e) => {
                        // Perhaps caught mid-write: the next change retries.
                        tracing::warn!(file = %file.path.display(), error = %e, "changed component does not load");
                        continue;
                    }
                };
            file.hash = Some(hash);
            let options = troupe::actor::SwapOptions::default();
            match host.swap_target(&file.entry, component.clone(), options, None).await {
                // A [components] entry with no actors: new spawns get the new code.
                Ok(reports) if reports.is_empty() => info!(entry = %file.entry, "component updated on change"),
                Ok(reports) => {
                    for r in reports {
                        info!(actor = %r.address, old = %r.old.hash, new = %r.new.hash, pause_us = r.pause_us, "swapped on change");
                    }
                }
                Err(e) => error!(entry = %file.entry, error = %e, "swap on change failed"),
            }
        }
    }
}
