//! The command line: argument definitions, dispatch, and how results and
//! errors are printed (text for people, `--json` for scripts).
//!
//! Exit codes: 0 success; 1 the operation failed (the host's error, or bad
//! input); 2 bad command line; 3 no host is running at the control socket.
//! A command whose stdout reader goes away ends silently by `SIGPIPE`
//! (status 141 in a shell), as coreutils tools do; see [`stdout`].

mod output;
mod remote;
mod run;
mod stdout;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use output::report;

/// troupe: a WebAssembly-sandboxed actor host.
#[derive(Debug, Parser)]
#[command(name = "troupe", version, about, long_about = None, propagate_version = true)]
pub struct Args {
    /// Print results (and errors, on stderr) as JSON.
    #[arg(long, global = true)]
    pub json: bool,

    /// The host's control socket [default: $XDG_RUNTIME_DIR/troupe/control.sock,
    /// or /tmp/troupe-$UID/control.sock].
    #[arg(long, global = true, env = "TROUPE_CONTROL", value_name = "PATH")]
    pub control: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a host in the foreground, optionally starting the actors of a manifest.
    Run(run::RunArgs),
    /// Start an actor from a component file.
    Spawn(remote::SpawnArgs),
    /// Ask: send a message and print the typed reply (WAVE).
    Call(remote::CallArgs),
    /// Tell: queue a message without waiting.
    Send(remote::SendArgs),
    /// List the running actors (`--virtual NAME`: a virtual component's active keys).
    Ps(remote::PsArgs),
    /// Stop an actor or a supervisor (children first), without restart.
    Stop(remote::StopArgs),
    /// Hot-swap an actor (or every actor of a manifest entry) to new code.
    Swap(remote::SwapArgs),
    /// Print the live supervision tree.
    Tree(remote::TreeArgs),
    /// Stream lifecycle events (started, failed, restarting, escalated, stopped).
    Events,
    /// Create a supervisor at run time.
    Supervise(remote::SuperviseArgs),
    /// List durable actors' dead letters: tells set aside after failing again and again.
    DeadLetters(remote::DeadLettersArgs),
    /// Send a dead letter to its actor again.
    Redeliver(remote::RedeliverArgs),
    /// Passivate an actor now: a key of a virtual component leaves the host until its next message; another actor that may hibernate drops its instance.
    Passivate(remote::StopArgs),
    /// Export or import a durable actor's committed state (backups, moving an actor between hosts).
    #[command(subcommand)]
    State(remote::StateCommand),
    /// Show a component's exported protocol and imports in WIT.
    Inspect(remote::InspectArgs),
}

/// Runs one command.
pub async fn dispatch(args: Args) -> anyhow::Result<()> {
    let control = args.control.clone();
    match args.command {
        Command::Run(run) => run::run(run, control).await,
        Command::Inspect(a) => remote::inspect(a, args.json),
        command => remote::remote(command, control, args.json).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, ValueEnum};
    use troupe::BatchDelivery;
    use troupe::supervision::{RestartType, RootPolicy, Strategy};

    /// Catches clashing flags and other definition mistakes that clap only
    /// reports when the command is first parsed.
    #[test]
    fn the_command_line_is_well_formed() {
        super::Args::command().debug_assert();
    }

    /// The command-line spellings of `E`'s variants.
    fn spellings<E: ValueEnum>() -> Vec<String> {
        E::value_variants().iter().filter_map(|v| v.to_possible_value()).map(|p| p.get_name().to_string()).collect()
    }

    /// The same variants as JSON (and in manifests): serde's spellings.
    fn json_spellings<E: ValueEnum + serde::Serialize>() -> Vec<String> {
        E::value_variants().iter().map(|v| serde_json::to_value(v).unwrap().as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn the_library_enums_are_spelled_on_the_command_line_as_in_json() {
        assert_eq!(spellings::<RestartType>(), ["permanent", "transient", "temporary"]);
        assert_eq!(spellings::<Strategy>(), ["one-for-one", "one-for-all", "rest-for-one", "pool"]);
        assert_eq!(spellings::<RootPolicy>(), ["keep-running", "shutdown"]);
        assert_eq!(spellings::<BatchDelivery>(), ["off", "registers", "all"]);
        assert_eq!(spellings::<RestartType>(), json_spellings::<RestartType>());
        assert_eq!(spellings::<Strategy>(), json_spellings::<Strategy>());
        assert_eq!(spellings::<RootPolicy>(), json_spellings::<RootPolicy>());
    }
}
