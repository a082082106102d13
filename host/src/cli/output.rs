//! Printing results and errors.

use std::process::ExitCode;

use serde_json::json;
use troupe::control::ClientError;

/// Prints `error` on stderr (as JSON with `--json`) and picks the exit code.
pub fn report(error: &anyhow::Error, json: bool) -> ExitCode {
    let (code, exit) = match error.downcast_ref::<ClientError>() {
        Some(ClientError::Host(body)) => (body.code.clone(), 1),
        Some(ClientError::NotRunning { .. }) => ("not-running".to_string(), 3),
        Some(ClientError::Connection { .. }) => ("connection".to_string(), 1),
        None => ("error".to_string(), 1),
    };
    let message = format!("{error:#}");
    if json {
        eprintln!("{}", json!({ "error": { "code": code, "message": message } }));
    } else {
        eprintln!("error: {message}");
    }
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
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}
