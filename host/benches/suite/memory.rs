//! Scenario 4: resident memory per idle actor, awake and hibernating,
//! against kameo and the wasmtime floor, each measured in a child process.

use std::time::{Duration, Instant};

use kameo::actor::Spawn as _;
use troupe::{ActorStatus, ActorTemplate, BatchDelivery, Host, HostConfig};

use crate::baselines::KameoCounter;
use crate::floor::Floor;
use crate::mappings;
use crate::report::{Row, row};
use crate::support::{engine_config, guest_path};
use crate::{Scale, host_with};

/// 4: resident memory per idle actor. Each figure comes from a fresh child
/// process, so that one measurement's freed memory cannot hide the next's.
/// Awake actors (troupe's, and bare wasmtime instances) number as many as
/// the kernel's mapping limit allows (see [`mappings`]); hibernating ones
/// share a small pool and need no more.
pub fn memory(scale: Scale, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let show = |r: &Result<(f64, f64), String>| match r {
        Ok((pss, rss)) => format!("{:.1} KiB (RSS {:.1} KiB)", pss / 1024.0, rss / 1024.0),
        Err(e) => format!("failed: {e}"),
    };
    let ratio = |troupe: &Result<(f64, f64), String>, kameo: &Result<(f64, f64), String>| match (troupe, kameo) {
        (Ok(t), Ok(k)) => Some(t.0 / k.0.max(1.0)),
        _ => None,
    };
    for n in scale.memory {
        // A child process maps next to nothing before its actors (the
        // reserve covers it).
        let each = mappings::PER_SLOT + mappings::PER_INSTANCE;
        let fit = mappings::fit(&format!("4. awake actors of {n}"), n, 0, |n| (n + 16) * each);
        notes.extend(fit.note);
        let awake = fit.n;
        let kameo = measure_child("kameo", n);
        let kameo_awake = if awake == n { kameo.clone() } else { measure_child("kameo", awake) };
        let scenarios = [
            ("troupe", awake, format!("4. memory per idle actor (PSS), {awake} actors"), "<= kameo"),
            (
                "wasmtime",
                awake,
                format!("4. ... the floor: wasmtime alone, a store and an instance of the counter, {awake} of them"),
                "-",
            ),
            (
                "troupe-hibernating",
                n,
                format!(
                    "4. ... hibernating ({HIBERNATE_AFTER_MS} ms idle, {HIBERNATION_SLOTS} instance slots), {n} actors"
                ),
                "<= kameo",
            ),
            (
                "troupe-passivated",
                n,
                format!("4. ... passivated keys of a virtual component, in memory, {n} keys"),
                "snapshot + small overhead",
            ),
            (
                "troupe-passivated-durable",
                n,
                format!("4. ... passivated durable keys of a virtual component, {n} keys"),
                "nothing in memory",
            ),
        ];
        for (system, count, scenario, target) in scenarios {
            let troupe = measure_child(system, count);
            let kameo = if count == n { &kameo } else { &kameo_awake };
            rows.push(row(&scenario, show(&troupe), format!("kameo {}", show(kameo)), ratio(&troupe, kameo), target));
        }
    }
}

/// (PSS, RSS) per actor, in bytes, of `n` idle actors of `system`, from a
/// child process running [`memory_child`].
fn measure_child(system: &str, n: usize) -> Result<(f64, f64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .args(["--memory-child", system, &n.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(pss)), Some(Ok(rss))) => Ok((pss, rss)),
        _ => {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(format!("{} {}", text.trim(), err.lines().last().unwrap_or("")))
        }
    }
}

/// With `troupe-hibernating`: how long the counters stay awake after
/// `init`...
const HIBERNATE_AFTER_MS: u64 = 10;
/// ...and the instance pool they share (awake actors need a slot each).
const HIBERNATION_SLOTS: u32 = 1_000;

/// The child side of scenario 4: starts `n` idle actors of `system` and
/// prints the resident memory they added, per actor, in bytes.
pub fn memory_child(system: &str, n: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        if let Some(durability) = system.strip_prefix("troupe-passivated") {
            passivated_keys(n, durability == "-durable").await;
            return;
        }
        if system == "kameo" {
            let (pss, rss) = (pss_bytes(), rss_bytes());
            let actors: Vec<_> = (0..n).map(|_| KameoCounter::spawn(KameoCounter::default())).collect();
            for a in &actors {
                a.wait_for_startup().await;
            }
            let per = |now: u64, then: u64| now.saturating_sub(then) as f64 / n as f64;
            println!("{} {}", per(pss_bytes(), pss), per(rss_bytes(), rss));
            return;
        }
        if system == "wasmtime" {
            let floor = Floor::new(n as u32 + 16, 4 << 20);
            let (pss, rss) = (pss_bytes(), rss_bytes());
            let mut counters = Vec::with_capacity(n);
            for i in 0..n {
                match floor.start().await {
                    Ok(counter) => counters.push(counter),
                    Err(e) => {
                        eprintln!("instance {i} failed: {e:#}");
                        println!("failed at {i}");
                        return;
                    }
                }
            }
            let per = |now: u64, then: u64| now.saturating_sub(then) as f64 / n as f64;
            println!("{} {}", per(pss_bytes(), pss), per(rss_bytes(), rss));
            return;
        }
        // Small slots: 4 MiB of address space per memory is plenty for the
        // counter (1.1 MiB at start) and keeps the pool for 100,000
        // instances within the address space. Each live instance costs about
        // six memory mappings, so 100,000 need vm.max_map_count above the
        // default 65530 (see README, "Many actors"); the parent asks for no
        // more than fit.
        //
        // Hibernating actors hold no instance: a pool of 1,000 slots serves
        // them, within the default map count.
        let hibernate = system == "troupe-hibernating";
        let host = if hibernate {
            let mut engine = engine_config(HIBERNATION_SLOTS);
            engine.max_memory_bytes(4 << 20);
            Host::new(HostConfig { engine, max_actors: Some(n), ..Default::default() }).expect("host")
        } else {
            host_with(n as u32 + 16, 4 << 20, BatchDelivery::default())
        };
        let component = host.load("counter", &guest_path("counter"), None).unwrap();
        let mut entry = ActorTemplate::new(component);
        entry.policy.limits.memory = 4 << 20;
        entry.policy.limits.mailbox = 16;
        if hibernate {
            entry.policy.hibernate_after = Some(Duration::from_millis(HIBERNATE_AFTER_MS));
        }
        let (pss, rss) = (pss_bytes(), rss_bytes());
        let mut actors = Vec::with_capacity(n);
        for i in 0..n {
            match host.spawn(entry.spec(format!("m-{i}").into())).await {
                Ok(actor) => actors.push(actor),
                Err(e) => {
                    eprintln!("spawn {i} failed: {e}");
                    println!("failed at {i}");
                    return;
                }
            }
        }
        if hibernate {
            let deadline = Instant::now() + Duration::from_secs(60);
            while actors.iter().any(|a| a.status() != ActorStatus::Hibernating) {
                if Instant::now() > deadline {
                    println!("not all hibernating after 60 s");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let per = |now: u64, then: u64| now.saturating_sub(then) as f64 / n as f64;
        println!("{} {}", per(pss_bytes(), pss), per(rss_bytes(), rss));
    });
    std::mem::forget(runtime);
}

/// The child side of the passivated-keys rows: `n` keys of a virtual
/// counter (`durable` or in memory), each asked once, all passivated; the
/// memory added per key, measured after a first round of as many keys
/// (which grows the host's tables and the allocator's pools to size).
async fn passivated_keys(n: usize, durable: bool) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let journal = durable.then(|| {
        let store = troupe::store::DurableStore::open_with_cache(&dir.path().join("store"), 2 << 20);
        std::sync::Arc::new(store.expect("the store opens")) as _
    });
    let mut engine = engine_config(HIBERNATION_SLOTS);
    engine.max_memory_bytes(4 << 20);
    let host = Host::new(HostConfig { engine, max_actors: Some(n + 16), journal, ..Default::default() }).expect("host");
    let component = host.load("counter", &guest_path("counter"), None).unwrap();
    let mut entry = ActorTemplate::new(component);
    entry.policy.limits.memory = 4 << 20;
    entry.policy.durability = if durable {
        troupe::actor::durable::Durability::Durable
    } else {
        troupe::actor::durable::Durability::InMemory
    };
    host.define_virtual("user", entry, Some(Duration::from_millis(HIBERNATE_AFTER_MS))).expect("a virtual component");
    let round = async |from: usize| {
        for i in from..from + n {
            if let Err(e) = host.ask(&format!("user/{i}"), "incr(1)", Duration::from_secs(10)).await {
                return Err(format!("key {i}: {e}"));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while host.virtual_keys("user").map_err(|e| e.to_string())?.is_none_or(|keys| keys.active > 0) {
            if Instant::now() > deadline {
                return Err("not all passivated after 120 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    };
    if let Err(e) = round(0).await {
        println!("{e}");
        return;
    }
    let (pss, rss) = (pss_bytes(), rss_bytes());
    if let Err(e) = round(n).await {
        println!("{e}");
        return;
    }
    let per = |now: u64, then: u64| now.saturating_sub(then) as f64 / n as f64;
    println!("{} {}", per(pss_bytes(), pss), per(rss_bytes(), rss));
}

/// Proportional set size: resident memory with pages shared between
/// mappings divided among them. Copy-on-write memory images map the same
/// pages once per instance, which RSS counts every time.
fn pss_bytes() -> u64 {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let kib: u64 = rollup
        .lines()
        .find(|l| l.starts_with("Pss:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    kib * 1024
}

/// Resident set size.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}
