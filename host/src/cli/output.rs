//! Rendering results for people, and printing errors.

use std::io::Write as _;
use std::process::ExitCode;

use serde_json::json;
use troupe::control::ClientError;

use super::stdout::{StdoutClosed, end_by_sigpipe, say};

/// Prints `error` on stderr (as JSON with `--json`) and picks the exit code;
/// a closed stdout ends the process quietly instead (see [`super::stdout`]).
pub fn report(error: &anyhow::Error, json: bool) -> ExitCode {
    if error.is::<StdoutClosed>() {
        end_by_sigpipe();
    }
    let (code, exit) = match error.downcast_ref::<ClientError>() {
        Some(ClientError::Host(body)) => (body.code.clone(), 1),
        Some(ClientError::NotRunning { .. }) => ("not-running".to_string(), 3),
        Some(ClientError::Connection { .. }) => ("connection".to_string(), 1),
        None => ("error".to_string(), 1),
    };
    let message = format!("{error:#}");
    // Unlike `eprintln!`, a closed stderr does not turn the error into a
    // panic; the exit code still tells.
    let mut stderr = std::io::stderr().lock();
    let _ = if json {
        writeln!(stderr, "{}", json!({ "error": { "code": code, "message": message } }))
    } else {
        writeln!(stderr, "error: {message}")
    };
    ExitCode::from(exit)
}

/// Renders a byte count for people: `64.0 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

/// Prints rows as an aligned table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> anyhow::Result<()> {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        say!("{}", s.trim_end())
    };
    line(header.iter().map(|h| h.to_string()).collect())?;
    for row in rows {
        line(row.clone())?;
    }
    Ok(())
}
