//! The durable-actors contract at scale, against the real binary: 100
//! durable counters, 10,000 tells and asks from concurrent clients, each
//! acknowledged before the client's next, and `kill -9` at 20 random
//! moments. After each restart every counter equals a reference model the
//! test keeps: every acknowledged change present, none applied twice, and
//! of the messages in flight at the kill (one per client at most), each
//! applied once or not at all.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::durable::DurableHost;
use crate::support;

const ACTORS: usize = 100;
const CLIENTS: usize = 4;

/// One client's work until the host goes away: which increments it got
/// acknowledged, and the one in flight when it went, if any.
struct Outcome {
    acknowledged: Vec<(usize, u64)>,
    in_flight: Option<(usize, u64)>,
}

/// Sends `incr(k)` (a tell, or an ask one time in four) to random
/// counters until `budget` are acknowledged or the host goes away.
fn client(host: &DurableHost, seed: u64, budget: usize) -> std::thread::JoinHandle<Outcome> {
    let mut control = host.connect();
    std::thread::spawn(move || {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut acknowledged = Vec::new();
        while acknowledged.len() < budget {
            let (actor, k) = (rng.usize(..ACTORS), rng.u64(1..1000));
            let (address, message) = (format!("c{actor}"), format!("incr({k})"));
            let sent =
                if rng.u8(..4) == 0 { control.call(&address, &message) } else { control.send(&address, &message) };
            match sent {
                Ok(_) => acknowledged.push((actor, k)),
                // The host was killed under us: this one may or may not
                // have been applied.
                Err(_) => return Outcome { acknowledged, in_flight: Some((actor, k)) },
            }
        }
        Outcome { acknowledged, in_flight: None }
    })
}

/// Does `observed - model` equal the sum of some of `in_flight`?
fn explained(model: u64, observed: u64, in_flight: &[u64]) -> bool {
    let Some(extra) = observed.checked_sub(model) else { return false };
    (0..1u32 << in_flight.len()).any(|subset| {
        let sum: u64 = in_flight.iter().enumerate().filter(|(i, _)| subset & (1 << i) != 0).map(|(_, k)| k).sum();
        sum == extra
    })
}

fn manifest(dir: &Path) -> std::path::PathBuf {
    let counter = support::guest("counter");
    let mut text = String::new();
    for i in 0..ACTORS {
        text.push_str(&format!("[actors.c{i}]\npath = {counter:?}\ndurability = \"durable\"\n\n"));
    }
    let path = dir.join("app.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(kills: usize, messages: usize, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path());
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut model = vec![0u64; ACTORS];
    let per_round = messages / kills / CLIENTS;
    for round in 0..kills {
        let host = DurableHost::start_with(dir.path(), Some(&manifest), 200);
        let clients: Vec<_> = (0..CLIENTS).map(|c| client(&host, rng.u64(..) ^ c as u64, per_round)).collect();
        // A random moment: before, during or after the clients' work.
        std::thread::sleep(Duration::from_millis(rng.u64(5..250)));
        host.kill();
        let mut in_flight: HashMap<usize, Vec<u64>> = HashMap::new();
        for client in clients {
            let outcome = client.join().unwrap();
            for (actor, k) in outcome.acknowledged {
                model[actor] += k;
            }
            if let Some((actor, k)) = outcome.in_flight {
                in_flight.entry(actor).or_default().push(k);
            }
        }
        let host = DurableHost::start_with(dir.path(), Some(&manifest), 200);
        let mut control = host.connect();
        for (actor, expected) in model.iter_mut().enumerate() {
            let observed = control.count(&format!("c{actor}"));
            let flying = in_flight.get(&actor).map(Vec::as_slice).unwrap_or(&[]);
            assert!(
                explained(*expected, observed, flying),
                "round {round}, c{actor}: {observed} applied; the model says {expected} plus some of {flying:?}"
            );
            // The in-flight ones that were applied are part of the model now.
            *expected = observed;
        }
        host.kill();
    }
}

#[test]
fn a_hundred_durable_actors_match_a_reference_model_across_twenty_kill_9s() {
    run(20, 10_000, 16);
}

#[test]
fn the_model_accounts_for_in_flight_messages_exactly() {
    assert!(explained(10, 10, &[]));
    assert!(explained(10, 15, &[5]));
    assert!(explained(10, 17, &[5, 7]) && explained(10, 12, &[5, 2]));
    assert!(!explained(10, 11, &[5]), "not a sum of in-flight increments");
    assert!(!explained(10, 9, &[5]), "an acknowledged change lost");
    assert!(!explained(10, 20, &[5]), "applied twice");
}
