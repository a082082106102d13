//! The commands that talk to a running host, and `inspect`.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::Value;
use troupe::control::{Client, LimitOverrides, Numbered, Request, StateFile, default_socket_path};
use troupe::parse_bytes;
use troupe::supervision::{RestartType, Strategy, SupervisorSpec};

use super::Command;
use super::output::{bytes, table};
use super::stdout::{self, StdoutClosed, say};

#[derive(Debug, clap::Args)]
pub struct SpawnArgs {
    /// The new actor's address.
    pub name: String,
    /// The component file.
    pub component: PathBuf,
    /// Fuel budget per message (enables fuel metering for this actor).
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,
    /// Memory limit, e.g. 64MiB or 67108864.
    #[arg(long, value_parser = parse_bytes, value_name = "SIZE")]
    pub memory: Option<u64>,
    /// Deadline of each message, in milliseconds (wall-clock, waits excluded).
    #[arg(long, value_name = "MS")]
    pub deadline: Option<u64>,
    /// Mailbox capacity.
    #[arg(long, value_name = "N")]
    pub mailbox: Option<usize>,
    /// Configuration for the actor's `init`, as KEY=VALUE (repeatable).
    #[arg(long = "config", value_parser = parse_key_value, value_name = "KEY=VALUE")]
    pub config: Vec<(String, String)>,
    /// The supervisor to start it under [default: root].
    #[arg(long, value_name = "NAME")]
    pub supervisor: Option<String>,
    /// How its supervisor restarts it.
    #[arg(long, value_enum, default_value_t = RestartType::Permanent)]
    pub restart: RestartType,
    /// Durable: its state and acknowledged tells survive the host (the
    /// component must export `troupe:actor/persistence`).
    #[arg(long)]
    pub durable: bool,
    /// Grant outbound HTTP to the URLs of this pattern, e.g.
    /// `https://api.example.com/v1/*` (repeatable; none by default).
    #[arg(long = "allow-http", value_name = "URL-PATTERN")]
    pub allow_http: Vec<String>,
    /// Outbound HTTP requests it may have in flight at once.
    #[arg(long, value_name = "N", requires = "allow_http")]
    pub http_max_concurrent: Option<u32>,
    /// Largest outbound response body, e.g. 1MiB.
    #[arg(long, value_parser = parse_bytes, value_name = "SIZE", requires = "allow_http")]
    pub http_max_response: Option<u64>,
    /// Connect timeout of its outbound requests, in milliseconds.
    #[arg(long, value_name = "MS", requires = "allow_http")]
    pub http_connect_timeout: Option<u64>,
    /// How long its outbound requests wait for a response, in milliseconds.
    #[arg(long, value_name = "MS", requires = "allow_http")]
    pub http_first_byte_timeout: Option<u64>,
    /// How long its outbound requests wait between chunks of a body, in
    /// milliseconds.
    #[arg(long, value_name = "MS", requires = "allow_http")]
    pub http_between_bytes_timeout: Option<u64>,
    /// Wall-clock ceiling of one of its messages, waits on outbound
    /// requests included, in milliseconds.
    #[arg(long, value_name = "MS", requires = "allow_http")]
    pub http_message_ceiling: Option<u64>,
}

impl SpawnArgs {
    /// The `http` grant the flags ask for, if any.
    fn http_grant(&self) -> Option<troupe::outbound::HttpGrant> {
        if self.allow_http.is_empty() {
            return None;
        }
        let mut grant = troupe::outbound::HttpGrant::of_patterns(self.allow_http.iter().cloned());
        let limits = &mut grant.limits;
        let ms = std::time::Duration::from_millis;
        if let Some(n) = self.http_max_concurrent {
            limits.max_concurrent = n;
        }
        if let Some(n) = self.http_max_response {
            limits.max_response_bytes = n;
        }
        if let Some(t) = self.http_connect_timeout {
            limits.connect_timeout = ms(t);
        }
        if let Some(t) = self.http_first_byte_timeout {
            limits.first_byte_timeout = ms(t);
        }
        if let Some(t) = self.http_between_bytes_timeout {
            limits.between_bytes_timeout = ms(t);
        }
        if let Some(t) = self.http_message_ceiling {
            limits.message_ceiling = ms(t);
        }
        Some(grant)
    }
}

#[derive(Debug, clap::Args)]
pub struct SuperviseArgs {
    /// The supervisor's name (its address).
    pub name: String,
    /// Which siblings restart together.
    #[arg(long, value_enum, default_value_t = Strategy::OneForOne)]
    pub strategy: Strategy,
    /// Restarts allowed within the period before it escalates.
    #[arg(long, default_value_t = troupe::supervision::DEFAULT_INTENSITY)]
    pub intensity: u32,
    /// The intensity window, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = troupe::supervision::DEFAULT_PERIOD.as_millis() as u64)]
    pub period: u64,
    /// Its own supervisor [default: root].
    #[arg(long, value_name = "NAME")]
    pub supervisor: Option<String>,
    /// How its own supervisor restarts it.
    #[arg(long, value_enum, default_value_t = RestartType::Permanent)]
    pub restart: RestartType,
}

#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The actor's address.
    pub address: String,
    /// The message in WAVE, e.g. 'incr(5)' or 'api.greet("ada")'.
    pub message: String,
    /// How long to wait for the reply, in milliseconds.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub timeout: u64,
}

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The actor's address.
    pub address: String,
    /// The message in WAVE, e.g. 'incr(5)'.
    pub message: String,
    /// Number the tell in the sequence of this publisher (with `--seq`):
    /// sent again with the same number, a durable actor takes it once.
    #[arg(long, requires = "seq", value_name = "NAME")]
    pub publisher: Option<String>,
    /// The tell's number in the publisher's sequence; numbers must grow.
    #[arg(long, requires = "publisher", value_name = "N")]
    pub seq: Option<u64>,
    /// Give up waiting for the acknowledgement after this many
    /// milliseconds. The tell may still take effect: send it again with
    /// the same `--publisher` and `--seq` to have it taken once.
    #[arg(long, value_name = "MS")]
    pub timeout: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct SwapArgs {
    /// An actor address, or a manifest entry whose actors all swap, one at a time.
    pub target: String,
    /// The new component file.
    pub component: PathBuf,
    /// Swap even if the new code does not export every old function with
    /// the same types (imports must still be satisfiable).
    #[arg(long)]
    pub force: bool,
    /// How long the old code is kept to roll back to if the new code fails.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub probation: u64,
    /// For a rolling swap: let the first actor run the new code this long
    /// before the others swap.
    #[arg(long, value_name = "MS")]
    pub canary: Option<u64>,
    /// The new code's version, shown by `troupe ps` (default: the version
    /// the component declares, if any).
    #[arg(long, value_name = "VERSION")]
    pub new_version: Option<String>,
    /// Swap every host's actors of the target, host after host, if the
    /// host is part of a cluster; the first failure rolls back every host.
    #[arg(long)]
    pub cluster: bool,
}

#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Only the active keys of this virtual component.
    #[arg(long = "virtual", value_name = "NAME", conflicts_with = "cluster")]
    pub virtual_component: Option<String>,
    /// Every host's actors, if the host is part of a cluster.
    #[arg(long)]
    pub cluster: bool,
}

#[derive(Debug, clap::Args)]
pub struct TreeArgs {
    /// Every host's tree, if the host is part of a cluster.
    #[arg(long)]
    pub cluster: bool,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// The actor's address.
    pub address: String,
}

#[derive(Debug, clap::Args)]
pub struct DeadLettersArgs {
    /// Only this actor's.
    pub address: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RedeliverArgs {
    /// The dead letter's id, ADDRESS:SEQ, as `troupe dead-letters` lists it.
    pub id: String,
}

#[derive(Debug, clap::Subcommand)]
pub enum StateCommand {
    /// Write a durable actor's committed state to FILE.
    Export {
        /// The actor.
        address: String,
        /// Where to write it.
        file: PathBuf,
    },
    /// Make FILE's state what ADDRESS (not running on this host) has
    /// committed; `troupe spawn ADDRESS ... --durable` then starts from it.
    Import {
        /// The address.
        address: String,
        /// A file written by `troupe state export`.
        file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The component file.
    pub component: PathBuf,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

pub async fn remote(command: Command, control: Option<PathBuf>, json: bool) -> anyhow::Result<()> {
    let path = control.unwrap_or_else(default_socket_path);
    let request = match command {
        Command::Spawn(a) => {
            let path = std::fs::canonicalize(&a.component)
                .with_context(|| format!("cannot read component `{}`", a.component.display()))?;
            let http = a.http_grant();
            Request::Spawn {
                http,
                name: a.name,
                path,
                limits: LimitOverrides { fuel: a.fuel, memory: a.memory, deadline_ms: a.deadline, mailbox: a.mailbox },
                config: a.config,
                supervisor: a.supervisor,
                restart: Some(a.restart),
                durable: a.durable,
            }
        }
        Command::Call(a) => Request::Call { address: a.address, message: a.message, timeout_ms: Some(a.timeout) },
        Command::Send(a) => Request::Send {
            address: a.address,
            message: a.message,
            numbered: a.publisher.zip(a.seq).map(|(publisher, seq)| Numbered { publisher, seq }),
            timeout_ms: a.timeout,
        },
        Command::Ps(a) => Request::Ps { virtual_component: a.virtual_component, cluster: a.cluster },
        Command::Stop(a) => Request::Stop { address: a.address },
        Command::DeadLetters(a) => Request::DeadLetters { address: a.address },
        Command::Redeliver(a) => Request::Redeliver { id: a.id },
        Command::Passivate(a) => Request::Passivate { address: a.address },
        Command::State(StateCommand::Export { address, file }) => {
            let mut client = Client::connect(&path).await?;
            let reply = client.request(&Request::StateExport { address: address.clone() }).await?;
            let text = serde_json::to_string_pretty(&reply)?;
            std::fs::write(&file, text + "\n").with_context(|| format!("cannot write `{}`", file.display()))?;
            return if json { say!("{reply}") } else { say!("exported {address} to {}", file.display()) };
        }
        Command::State(StateCommand::Import { address, file }) => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read `{}`", file.display()))?;
            let state: StateFile = serde_json::from_str(&text).with_context(|| {
                format!("`{}` is not a state file written by `troupe state export`", file.display())
            })?;
            Request::StateImport { address, state }
        }
        Command::Tree(a) => Request::Tree { cluster: a.cluster },
        Command::Swap(a) => Request::Swap {
            target: a.target,
            path: std::fs::canonicalize(&a.component)
                .with_context(|| format!("cannot read component `{}`", a.component.display()))?,
            force: a.force,
            probation_ms: Some(a.probation),
            canary_ms: a.canary,
            version: a.new_version,
            cluster: a.cluster,
        },
        Command::Supervise(a) => Request::Supervise {
            name: a.name,
            spec: SupervisorSpec {
                strategy: a.strategy,
                intensity: a.intensity,
                period: std::time::Duration::from_millis(a.period),
                restart: a.restart,
                ..SupervisorSpec::default()
            },
            parent: a.supervisor,
        },
        Command::Events => return events(&path, json).await,
        Command::Run(_) | Command::Inspect(_) => unreachable!("handled by dispatch"),
    };
    let mut client = Client::connect(&path).await?;
    let reply = client.request(&request).await?;
    if json {
        return say!("{reply}");
    }
    match request {
        Request::Spawn { .. } => say!(
            "spawned {} ({} {})",
            reply["address"].as_str().unwrap_or("?"),
            reply["component"].as_str().unwrap_or("?"),
            reply["hash"].as_str().unwrap_or("?")
        )?,
        Request::Call { .. } => {
            if let Some(result) = reply["result"].as_str() {
                say!("{result}")?;
            }
        }
        Request::Send { .. } => {}
        Request::Ps { cluster: true, .. } => print_cluster_ps(&reply)?,
        Request::Ps { virtual_component: None, .. } => print_ps(&reply)?,
        Request::Ps { virtual_component: Some(name), .. } => {
            let activations = &reply["activations"];
            let count = activations["count"].as_u64().unwrap_or(0);
            let claim = activations["claim_us"].as_u64().unwrap_or(0).checked_div(count).unwrap_or(0);
            say!(
                "{name}: {} keys active, {} passivated; {count} activations so far, {claim} µs each to claim on average",
                reply["active"].as_u64().unwrap_or(0),
                reply["passivated"].as_u64().unwrap_or(0)
            )?;
            print_ps(&reply)?
        }
        Request::Stop { address } => say!("stopped {address}")?,
        Request::DeadLetters { .. } => print_dead_letters(&reply)?,
        Request::Redeliver { id } => say!("redelivered {id}")?,
        Request::Passivate { address } => say!("passivated {address}")?,
        Request::StateImport { address, .. } => {
            say!("imported into {address}; spawn it with --durable to start from it")?
        }
        Request::StateExport { .. } => {}
        Request::Supervise { name, .. } => say!("supervisor {name} started")?,
        Request::Tree { cluster: false } => print_tree(&reply, "", true, true)?,
        Request::Tree { cluster: true } => {
            for node in reply["nodes"].as_array().into_iter().flatten() {
                let name = node["node"].as_str().unwrap_or("?");
                match node.get("answer") {
                    Some(tree) => {
                        say!("node {name}:")?;
                        print_tree(tree, "  ", true, true)?;
                    }
                    None => say!("node {name}: no answer ({})", node["error"].as_str().unwrap_or("?"))?,
                }
            }
        }
        Request::Swap { cluster: false, .. } => {
            for report in reply["reports"].as_array().into_iter().flatten() {
                say!("{}", describe_swap(report))?;
            }
        }
        Request::Swap { cluster: true, .. } => {
            for node in reply["nodes"].as_array().into_iter().flatten() {
                let name = node["node"].as_str().unwrap_or("?");
                let reports = node["answer"]["reports"].as_array().map(Vec::as_slice).unwrap_or_default();
                say!("node {name}: {} actor(s) swapped", reports.len())?;
                for report in reports {
                    say!("  {}", describe_swap(report))?;
                }
            }
        }
        Request::Events => {}
    }
    Ok(())
}

/// `troupe events`: prints events until the host closes the connection,
/// or until stdout's reader goes away, even while no event comes.
async fn events(path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let mut client = Client::connect(path).await?;
    let mut unwritten = None;
    let streamed = client.events(|event| {
        let written = if json { say!("{event}") } else { say!("{}", describe_event(&event)) };
        match written {
            Ok(()) => true,
            Err(e) => {
                unwritten = Some(e);
                false
            }
        }
    });
    tokio::select! {
        streamed = streamed => streamed?,
        () = stdout::reader_gone() => return Err(StdoutClosed.into()),
    }
    unwritten.map_or(Ok(()), Err)
}

fn describe_swap(r: &Value) -> String {
    let code = |c: &Value| {
        let version = c["version"].as_str().map(|v| format!(" {v}")).unwrap_or_default();
        format!("{}{version} ({})", c["name"].as_str().unwrap_or("?"), c["hash"].as_str().unwrap_or("?"))
    };
    let state = match r["state"]["mode"].as_str() {
        Some("restored") => format!(
            "state: {} bytes restored from `{}`",
            r["state"]["bytes"],
            r["state"]["from_version"].as_str().unwrap_or("?")
        ),
        _ => format!("state: not carried ({}), started fresh with init", r["state"]["reason"].as_str().unwrap_or("?")),
    };
    format!(
        "{}: {} -> {}; {state}; paused {} us; passed {} ms probation{}",
        r["address"].as_str().unwrap_or("?"),
        code(&r["old"]),
        code(&r["new"]),
        r["pause_us"],
        r["probation_ms"],
        if r["forced"].as_bool() == Some(true) { " (forced)" } else { "" }
    )
}

fn describe_event(e: &Value) -> String {
    let address = e["address"].as_str().unwrap_or("?");
    let at = e["at_ms"].as_u64().unwrap_or(0);
    let time = format!("{:02}:{:02}:{:02}.{:03}", at / 3_600_000 % 24, at / 60_000 % 60, at / 1000 % 60, at % 1000);
    let what = match e["event"].as_str().unwrap_or("?") {
        "started" => format!("started (incarnation {})", e["incarnation"]),
        "failed" => format!("failed: {}: {}", e["kind"].as_str().unwrap_or("?"), e["detail"].as_str().unwrap_or("")),
        "restarting" => format!(
            "restarting (attempt {}, in {} ms, by {})",
            e["attempt"],
            e["delay_ms"],
            e["supervisor"].as_str().unwrap_or("?")
        ),
        "escalated" => format!("escalated: more than {} restarts in {} ms", e["restarts"], e["period_ms"]),
        "stopped" => format!("stopped ({})", e["reason"].as_str().unwrap_or("")),
        "swapped" => format!(
            "swapped {} -> {} (paused {} us)",
            e["old"].as_str().unwrap_or("?"),
            e["new"].as_str().unwrap_or("?"),
            e["pause_us"]
        ),
        "swap-rolled-back" => format!("swap rolled back: {}", e["reason"].as_str().unwrap_or("")),
        "hibernated" => format!("hibernating (snapshot of {} bytes)", e["bytes"]),
        "woke" => "woke from hibernation".to_string(),
        "breaker" => format!(
            "circuit breaker of {}: {} -> {} ({})",
            e["dependency"].as_str().unwrap_or("?"),
            e["from"].as_str().unwrap_or("?"),
            e["to"].as_str().unwrap_or("?"),
            e["cause"]["cause"].as_str().unwrap_or("?")
        ),
        "lagged" => format!("(missed {} events)", e["missed"]),
        other => other.to_string(),
    };
    format!("{time} {address} {what}")
}

fn print_tree(node: &Value, prefix: &str, last: bool, root: bool) -> anyhow::Result<()> {
    let branch = if root {
        ""
    } else if last {
        "└─ "
    } else {
        "├─ "
    };
    let address = node["address"].as_str().unwrap_or("?");
    let line = match node["type"].as_str() {
        Some("supervisor") => format!(
            "{address} [{}, {} restarts of {} per {} ms, {}]",
            node["strategy"].as_str().unwrap_or("?"),
            node["recent_restarts"],
            node["intensity"],
            node["period_ms"],
            node["status"].as_str().unwrap_or("?")
        ),
        _ => {
            let failure =
                node["last_failure"]["kind"].as_str().map(|k| format!(", last failure: {k}")).unwrap_or_default();
            format!(
                "{address} ({}, {}, {}, {} restarts{failure})",
                node["component"].as_str().unwrap_or("?"),
                node["status"].as_str().unwrap_or("?"),
                node["restart"].as_str().unwrap_or("?"),
                node["restarts_by_supervisor"]
            )
        }
    };
    say!("{prefix}{branch}{line}")?;
    let empty = Vec::new();
    let children = node["nodes"].as_array().unwrap_or(&empty);
    let next = if root {
        String::new()
    } else if last {
        format!("{prefix}   ")
    } else {
        format!("{prefix}│  ")
    };
    for (i, child) in children.iter().enumerate() {
        print_tree(child, &next, i + 1 == children.len(), false)?;
    }
    Ok(())
}

fn print_dead_letters(reply: &Value) -> anyhow::Result<()> {
    let empty = Vec::new();
    let letters = reply["dead_letters"].as_array().unwrap_or(&empty);
    let text = |v: &Value| v.as_str().unwrap_or("?").to_string();
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|l| vec![text(&l["id"]), text(&l["message"]), l["attempts"].to_string(), text(&l["error"])])
        .collect();
    table(&["ID", "MESSAGE", "ATTEMPTS", "ERROR"], &rows)?;
    say!("{} dead letters", letters.len())
}

/// The columns of `troupe ps`, one row per actor of `actors`.
const PS_COLUMNS: [&str; 10] =
    ["ADDRESS", "COMPONENT", "STATUS", "MAILBOX", "HANDLED", "FAILURES", "RESTARTS", "FUEL", "MEMORY", "LAST FAILURE"];

fn print_ps(reply: &Value) -> anyhow::Result<()> {
    let empty = Vec::new();
    let actors = reply["actors"].as_array().unwrap_or(&empty);
    let num = |v: &Value| v.as_u64().unwrap_or(0);
    table(&PS_COLUMNS, &ps_rows(actors))?;
    say!("{} actors, {} dead letters", actors.len(), num(&reply["dead_letters"]))?;
    for component in reply["virtual"].as_array().unwrap_or(&empty) {
        let name = component["name"].as_str().unwrap_or("?");
        let passivated = match component["passivated"].as_u64() {
            Some(n) => n.to_string(),
            None => format!("? ({})", component["store_error"].as_str().unwrap_or("the store could not be read")),
        };
        say!(
            "virtual {name}: {} keys active, {passivated} passivated (troupe ps --virtual {name})",
            num(&component["active"]),
        )?;
    }
    let standbys: Vec<&str> = reply["standby"].as_array().unwrap_or(&empty).iter().filter_map(Value::as_str).collect();
    if !standbys.is_empty() {
        say!("standing by for (run by another host of the cluster): {}", standbys.join(", "))?;
    }
    Ok(())
}

/// `troupe ps --cluster`: every host's actors, with a NODE column, and
/// the hosts that did not answer.
fn print_cluster_ps(reply: &Value) -> anyhow::Result<()> {
    let empty = Vec::new();
    let mut rows = Vec::new();
    let mut silent = Vec::new();
    let nodes = reply["nodes"].as_array().unwrap_or(&empty);
    for node in nodes {
        let name = node["node"].as_str().unwrap_or("?");
        match node["answer"]["actors"].as_array() {
            Some(actors) => rows.extend(ps_rows(actors).into_iter().map(|mut row| {
                row.insert(0, name.to_string());
                row
            })),
            None => silent.push(format!("{name} ({})", node["error"].as_str().unwrap_or("no answer"))),
        }
    }
    let mut columns = vec!["NODE"];
    columns.extend(PS_COLUMNS);
    table(&columns, &rows)?;
    say!("{} actors on {} hosts", rows.len(), nodes.len() - silent.len())?;
    if !silent.is_empty() {
        say!("no answer from: {}", silent.join(", "))?;
    }
    Ok(())
}

/// One `troupe ps` row per actor.
fn ps_rows(actors: &[Value]) -> Vec<Vec<String>> {
    let num = |v: &Value| v.as_u64().unwrap_or(0);
    actors
        .iter()
        .map(|a| {
            let version = a["version"].as_str().map(|v| format!(" {v}")).unwrap_or_default();
            vec![
                a["address"].as_str().unwrap_or("?").to_string(),
                format!("{}{version} {}", a["component"].as_str().unwrap_or("?"), a["hash"].as_str().unwrap_or("")),
                match (a["committed"].as_u64(), a["unsaved"].as_str()) {
                    (Some(seq), None) => format!("{} durable@{seq}", a["status"].as_str().unwrap_or("?")),
                    (Some(seq), Some(_)) => format!("{} durable@{seq} unsaved", a["status"].as_str().unwrap_or("?")),
                    (None, _) => a["status"].as_str().unwrap_or("?").to_string(),
                },
                format!("{}/{}", num(&a["mailbox"]), num(&a["mailbox_capacity"])),
                num(&a["handled"]).to_string(),
                num(&a["failures"]).to_string(),
                num(&a["restarts"]).to_string(),
                num(&a["fuel_used"]).to_string(),
                bytes(num(&a["memory"])),
                a["last_failure"]["kind"].as_str().unwrap_or("-").to_string(),
            ]
        })
        .collect()
}

pub fn inspect(args: InspectArgs, json: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.component)
        .with_context(|| format!("cannot read component `{}`", args.component.display()))?;
    let description =
        troupe::inspect::inspect(&bytes).with_context(|| format!("cannot inspect `{}`", args.component.display()))?;
    if json {
        return say!("{}", serde_json::to_string(&description)?);
    }
    say!("{} ({}, {})", args.component.display(), bytes_len(description.size), description.hash)?;
    for (title, items) in [("exports", &description.exports), ("imports", &description.imports)] {
        say!("\n{title}:")?;
        for item in items {
            say!("  {} [{}]", item.name, item.role)?;
            if item.role == "protocol" {
                for f in &item.functions {
                    say!("    {f}")?;
                }
            }
        }
    }
    if !description.batched.is_empty() {
        say!("\nqueued tells delivered several per call:")?;
        for (function, n) in &description.batched {
            say!("  {function}: up to {n}")?;
        }
    }
    if !description.batched_in_memory.is_empty() {
        say!("\nand with `troupe run --batch-delivery all` (arguments in memory):")?;
        for (function, n) in &description.batched_in_memory {
            say!("  {function}: up to {n}")?;
        }
    }
    if !description.typed.is_empty() {
        say!("\nsingle messages called through a typed entry point (no `Val` conversion):")?;
        for function in &description.typed {
            say!("  {function}")?;
        }
    }
    if !description.problems.is_empty() {
        say!("\nproblems:")?;
        for p in &description.problems {
            say!("  - {p}")?;
        }
    }
    say!("\nWIT:\n{}", description.wit)?;
    Ok(())
}

fn bytes_len(n: usize) -> String {
    bytes(n as u64)
}
