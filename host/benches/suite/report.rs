//! The printed result: one row per measurement, the table of them, and the
//! machine they were measured on.

use std::fmt::Write as _;
use std::time::Duration;

/// One row of the table.
pub struct Row {
    scenario: String,
    troupe: String,
    baseline: String,
    ratio: String,
    target: String,
}

/// A row: what was measured, troupe's figure, the baseline's, troupe's
/// ratio to it (if they compare), and the target from the issue.
pub fn row(scenario: &str, troupe: String, baseline: String, ratio: Option<f64>, target: &str) -> Row {
    Row {
        scenario: scenario.into(),
        troupe,
        baseline,
        ratio: ratio.map(|r| format!("{r:.2}x")).unwrap_or_else(|| "-".into()),
        target: target.into(),
    }
}

/// A duration in the unit that shows it best.
pub fn ns(d: Duration) -> String {
    let n = d.as_nanos();
    if n < 10_000 {
        format!("{n} ns")
    } else if n < 10_000_000 {
        format!("{:.1} µs", n as f64 / 1e3)
    } else {
        format!("{:.1} ms", n as f64 / 1e6)
    }
}

/// The rows as a markdown table, then the notes on what was scaled down.
pub fn table(rows: &[Row], notes: &[String], smoke: bool) -> String {
    let mut out = String::new();
    if smoke {
        out.push_str("(smoke pass: tiny counts, numbers are not meaningful)\n\n");
    }
    out.push_str("| scenario | troupe | baseline | ratio | target |\n|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(out, "| {} | {} | {} | {} | {} |", r.scenario, r.troupe, r.baseline, r.ratio, r.target);
    }
    for note in notes {
        let _ = write!(out, "\nScaled down: {note}\n");
    }
    out
}

/// The CPU, its cores and the memory of this machine.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string()))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1048576.0))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem}")
}
