//! The troupe benchmark suite: every scenario of issue 8 on troupe and on a
//! native baseline (a tokio task with a bounded mpsc mailbox, and kameo),
//! measured in the same run, printed as one table of ratios.
//!
//! ```text
//! cargo bench -p troupe --bench suite             # the real numbers (release)
//! cargo bench -p troupe --bench suite -- --markdown run.md   # and save the table
//! cargo bench -p troupe --bench suite -- --only spawns       # the scenarios whose name holds `spawns`
//! cargo test -p troupe --bench suite              # a seconds-long smoke pass (what CI runs)
//! ```
//!
//! Figures are medians or totals over one run on one machine; compare the
//! ratios, not the absolute times.
//!
//! One module per family of scenarios, numbered as in the table; the
//! baselines, the wasmtime floor, timing and the table have their own. The
//! helpers for guests, hosts, spawning and asking are the integration
//! tests' (`tests/support/`).

mod ask;
mod baselines;
mod cluster;
mod durable;
mod floor;
mod gateway;
mod hibernation;
mod http_actors;
mod isolation;
mod languages;
mod mappings;
mod measure;
mod memory;
mod outbound;
mod report;
mod restart_and_swap;
mod sandbox;
mod spawn;
#[path = "../../../tests/support/mod.rs"]
#[allow(dead_code, reason = "the tests and the benchmarks each use part of the shared helpers")]
mod support;
mod tell;
mod virtual_actors;

use std::path::PathBuf;

use troupe::{BatchDelivery, Host};

use crate::report::{machine, table};

/// How much work each scenario does.
#[derive(Clone, Copy)]
pub struct Scale {
    tells: usize,
    asks: usize,
    actors: usize,
    spawns: usize,
    memory: [usize; 2],
    restarts: usize,
    /// Actors sharing the small pool of the eviction scenario.
    crowd: usize,
    swaps: usize,
    calls: usize,
    smoke: bool,
}

impl Scale {
    fn full() -> Self {
        Scale {
            tells: 200_000,
            asks: 20_000,
            actors: 64,
            spawns: 10_000,
            memory: [10_000, 100_000],
            restarts: 500,
            crowd: 1_000,
            swaps: 100,
            calls: 200_000,
            smoke: false,
        }
    }

    fn smoke() -> Self {
        Scale {
            tells: 2_000,
            asks: 200,
            actors: 8,
            spawns: 100,
            memory: [100, 200],
            restarts: 10,
            crowd: 120,
            swaps: 3,
            calls: 2_000,
            smoke: true,
        }
    }
}

/// Instance slots of the host most scenarios share: their actors number a
/// few hundred at most. Those that make thousands (spawns, evictions,
/// memory) make hosts of their own.
const SHARED_HOST_SLOTS: u32 = 1_000;

/// A host with `max_instances` instance slots of at most `max_memory`
/// bytes each, `batch` for batch delivery, and the shared compile cache.
pub fn host_with(max_instances: u32, max_memory: u64, batch: BatchDelivery) -> Host {
    let mut engine = support::engine_config(max_instances);
    engine.max_memory_bytes(max_memory);
    support::host_on_batching(engine, batch)
}

/// A host like [`host_with`]'s, whose metrics time every message
/// (`HostConfig::time_messages`): the rows that measure what timing costs.
pub fn timed_host(max_instances: u32, max_memory: u64) -> Host {
    let mut engine = support::engine_config(max_instances);
    engine.max_memory_bytes(max_memory);
    Host::new(troupe::HostConfig { engine, time_messages: true, ..Default::default() }).expect("host builds")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--memory-child") {
        let n = args.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(0);
        memory::memory_child(&args[i + 1], n);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--durable-child") {
        let n = args.get(i + 2).and_then(|n| n.parse().ok()).unwrap_or(0);
        durable::recovery_child(std::path::Path::new(&args[i + 1]), n);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --bench suite` does not.
    let scale = if args.iter().any(|a| a == "--bench") { Scale::full() } else { Scale::smoke() };
    let markdown = args.iter().position(|a| a == "--markdown").and_then(|i| args.get(i + 1)).map(PathBuf::from);
    // `--only NAME` runs the scenarios whose function name contains NAME
    // (for profiling one of them).
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    let runs = |name: &str| only.as_deref().is_none_or(|o| name.contains(o));
    support::build_guests();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (mut rows, mut notes) = (Vec::new(), Vec::new());
    runtime.block_on(async {
        let host = host_with(SHARED_HOST_SLOTS, 64 << 20, BatchDelivery::default());
        if runs("tell_one") {
            tell::tell_one(scale, &host, &mut rows).await;
        }
        if runs("tell_strings") {
            tell::tell_strings(scale, &host, &mut rows).await;
        }
        if runs("tell_many") || runs("isolation") {
            let healthy = tell::tell_many(scale, &host, &mut rows).await;
            isolation::isolation(scale, &host, healthy, &mut rows).await;
        }
        if runs("asks") {
            ask::asks(scale, &host, &mut rows).await;
        }
        if runs("spawns") {
            spawn::spawns(scale, &mut rows, &mut notes).await;
        }
        if runs("wakes") {
            hibernation::wakes(scale, &host, &mut rows).await;
        }
        if runs("evictions") {
            hibernation::evictions(scale, &mut rows).await;
        }
        if runs("activations") || runs("virtual") {
            virtual_actors::activations(scale, &mut rows).await;
        }
        if runs("random_keys") || runs("virtual") {
            virtual_actors::random_keys(scale, &mut rows, &mut notes).await;
        }
        if runs("restarts") {
            restart_and_swap::restarts(scale, &host, &mut rows).await;
        }
        if runs("swaps") {
            restart_and_swap::swaps(scale, &host, &mut rows).await;
        }
        if runs("languages") {
            languages::languages(scale, &mut rows).await;
        }
        if runs("durable") {
            durable::durable(scale, &mut rows).await;
        }
        if runs("remote") || runs("cluster") {
            cluster::remote_asks(scale, &mut rows, &mut notes).await;
        }
        if runs("outbound") {
            outbound::outbound(scale, &host, &mut rows).await;
        }
        if runs("gateway") || runs("http") {
            gateway::gateway(scale, &mut rows).await;
        }
        if runs("http_actors") {
            http_actors::http_actors(scale, &host, &mut rows).await;
        }
    });
    // Some actors are still up: exit without stopping them one by one.
    std::mem::forget(runtime);
    if runs("memory") {
        memory::memory(scale, &mut rows, &mut notes);
    }
    if runs("sandbox") {
        sandbox::sandbox_cost(scale, &mut rows);
    }
    let table = table(&rows, &notes, scale.smoke);
    println!("\nmachine: {}\n\n{table}", machine());
    if let Some(path) = markdown {
        let doc = format!(
            "# Benchmark run\n\nA run of `cargo bench -p troupe --bench suite`, \
             on {}.\nCompare ratios, not absolute times: troupe and the baselines ran in the same process, \
             one after the other.\n\n{table}",
            machine()
        );
        std::fs::write(&path, doc).expect("write the markdown table");
    }
}
