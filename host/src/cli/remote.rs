//! The commands that talk to a running host, and `inspect`.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::Value;
use troupe::control::{Client, LimitOverrides, Request, default_socket_path};
use troupe::engine::parse_bytes;

use super::Command;
use super::output::{bytes, table};

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
    /// CPU-time budget per message, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub deadline: Option<u64>,
    /// Mailbox capacity.
    #[arg(long, value_name = "N")]
    pub mailbox: Option<usize>,
    /// Configuration for the actor's `init`, as KEY=VALUE (repeatable).
    #[arg(long = "config", value_parser = parse_key_value, value_name = "KEY=VALUE")]
    pub config: Vec<(String, String)>,
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
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// The actor's address.
    pub address: String,
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
            Request::Spawn {
                name: a.name,
                path,
                limits: LimitOverrides { fuel: a.fuel, memory: a.memory, deadline_ms: a.deadline, mailbox: a.mailbox },
                config: a.config,
            }
        }
        Command::Call(a) => Request::Call { address: a.address, message: a.message, timeout_ms: Some(a.timeout) },
        Command::Send(a) => Request::Send { address: a.address, message: a.message },
        Command::Ps => Request::Ps,
        Command::Stop(a) => Request::Stop { address: a.address },
        Command::Run(_) | Command::Inspect(_) => unreachable!("handled by dispatch"),
    };
    let mut client = Client::connect(&path).await?;
    let reply = client.request(&request).await?;
    if json {
        println!("{reply}");
        return Ok(());
    }
    match request {
        Request::Spawn { .. } => println!(
            "spawned {} ({} {})",
            reply["address"].as_str().unwrap_or("?"),
            reply["component"].as_str().unwrap_or("?"),
            reply["hash"].as_str().unwrap_or("?")
        ),
        Request::Call { .. } => {
            if let Some(result) = reply["result"].as_str() {
                println!("{result}");
            }
        }
        Request::Send { .. } => {}
        Request::Ps => print_ps(&reply),
        Request::Stop { address } => println!("stopped {address}"),
    }
    Ok(())
}

fn print_ps(reply: &Value) {
    let empty = Vec::new();
    let actors = reply["actors"].as_array().unwrap_or(&empty);
    let num = |v: &Value| v.as_u64().unwrap_or(0);
    let rows: Vec<Vec<String>> = actors
        .iter()
        .map(|a| {
            let version = a["version"].as_str().map(|v| format!(" {v}")).unwrap_or_default();
            vec![
                a["address"].as_str().unwrap_or("?").to_string(),
                format!("{}{version} {}", a["component"].as_str().unwrap_or("?"), a["hash"].as_str().unwrap_or("")),
                a["status"].as_str().unwrap_or("?").to_string(),
                format!("{}/{}", num(&a["mailbox"]), num(&a["mailbox_capacity"])),
                num(&a["handled"]).to_string(),
                num(&a["failures"]).to_string(),
                num(&a["restarts"]).to_string(),
                num(&a["fuel_used"]).to_string(),
                bytes(num(&a["memory"])),
                a["last_failure"]["kind"].as_str().unwrap_or("-").to_string(),
            ]
        })
        .collect();
    table(
        &[
            "ADDRESS",
            "COMPONENT",
            "STATUS",
            "MAILBOX",
            "HANDLED",
            "FAILURES",
            "RESTARTS",
            "FUEL",
            "MEMORY",
            "LAST FAILURE",
        ],
        &rows,
    );
    println!("{} actors, {} dead letters", actors.len(), num(&reply["dead_letters"]));
}

pub fn inspect(args: InspectArgs, json: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(&args.component)
        .with_context(|| format!("cannot read component `{}`", args.component.display()))?;
    let description =
        troupe::inspect::inspect(&bytes).with_context(|| format!("cannot inspect `{}`", args.component.display()))?;
    if json {
        println!("{}", serde_json::to_string(&description)?);
        return Ok(());
    }
    println!("{} ({}, {})", args.component.display(), bytes_len(description.size), description.hash);
    for (title, items) in [("exports", &description.exports), ("imports", &description.imports)] {
        println!("\n{title}:");
        for item in items {
            println!("  {} [{}]", item.name, item.role);
            if item.role == "protocol" {
                for f in &item.functions {
                    println!("    {f}");
                }
            }
        }
    }
    if !description.problems.is_empty() {
        println!("\nproblems:");
        for p in &description.problems {
            println!("  - {p}");
        }
    }
    println!("\nWIT:\n{}", description.wit);
    Ok(())
}

fn bytes_len(n: usize) -> String {
    bytes(n as u64)
}
