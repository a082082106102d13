//! `troupe`: run a host of WebAssembly actors and talk to it.
//!
//! `troupe run [MANIFEST]` starts a host in the foreground; the other
//! commands reach a running host through its control socket. See
//! `troupe --help` and the README.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let json = args.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::dispatch(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::report(&e, json),
    }
}
