//! `troupe run`: a host in the foreground.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::ValueEnum;
use tracing::{error, info};
use troupe::control::{ControlServer, default_socket_path};
use troupe::engine::parse_bytes;
use troupe::manifest::Manifest;
use troupe::supervision::RootPolicy;
use troupe::{EngineConfig, Host, HostConfig};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A manifest (TOML) naming the components and actors to start.
    pub manifest: Option<PathBuf>,

    /// Most actors the host will run at once (sizes the instance pool).
    #[arg(long, default_value_t = troupe::engine::DEFAULT_MAX_INSTANCES, value_name = "N")]
    pub max_actors: u32,

    /// Ceiling on any actor's memory limit, e.g. 512MiB (sizes each pool slot).
    #[arg(long, default_value = "512MiB", value_parser = parse_bytes, value_name = "SIZE")]
    pub max_memory: u64,

    /// Where compiled components are cached [default: $XDG_CACHE_HOME/troupe].
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,

    /// Compile every component afresh; cache nothing.
    #[arg(long)]
    pub no_cache: bool,

    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// What to do when the root supervisor gives up on a top-level actor or
    /// supervisor (its restarts exceeded the root's intensity).
    #[arg(long, value_enum, default_value_t = OnRootFailure::KeepRunning)]
    pub on_root_failure: OnRootFailure,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OnRootFailure {
    /// Stop that subtree, log it, keep running the rest.
    KeepRunning,
    /// Shut the host down and exit with an error.
    Shutdown,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TROUPE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub async fn run(args: RunArgs, control: Option<PathBuf>) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let mut engine = EngineConfig::new();
    engine.max_instances(args.max_actors).max_memory_bytes(args.max_memory);
    if args.no_cache {
        engine.cache_dir(None);
    } else if let Some(dir) = args.cache_dir {
        engine.cache_dir(Some(dir));
    }
    // Validate the manifest before taking the socket: a typo should not
    // need a second terminal to notice.
    let manifest = args.manifest.as_deref().map(Manifest::load).transpose()?;
    let root_policy = match args.on_root_failure {
        OnRootFailure::KeepRunning => RootPolicy::KeepRunning,
        OnRootFailure::Shutdown => RootPolicy::Shutdown,
    };
    let host = Host::new(HostConfig { engine, root: Default::default(), root_policy })?;

    let (path, private) = match control {
        Some(path) => (path, false),
        None => (default_socket_path(), true),
    };
    let server = ControlServer::bind(&path, private).await?;

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
    println!("troupe host running; control socket: {}", server.path().display());
    println!("try: troupe --control {} ps", server.path().display());

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
                _ = shutdown_signal() => {}
                reason = gave_up => failure = reason.ok(),
            }
        })
        .await;
    info!("shutting down");
    host.shutdown().await;
    drop(server);
    match failure {
        Some(reason) => anyhow::bail!("the root supervisor {reason}"),
        None => Ok(()),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot listen for SIGTERM; use Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
