//! A short, deterministic smoke run of the fuzzing oracles in
//! `troupe::fuzzing` over generated inputs: manifests, messages for every
//! example protocol, and arbitrary states restored into running actors.
//! `fuzz/` runs the same oracles under libFuzzer for as long as you like.

use troupe::fuzzing;

use crate::support;

/// Random edits of `seed`: byte flips, insertions from `alphabet`,
/// deletions, truncation.
fn mutate(rng: &mut fastrand::Rng, seed: &str, alphabet: &[u8]) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..rng.usize(1..6) {
        match rng.u8(0..4) {
            0 if !bytes.is_empty() => {
                let i = rng.usize(..bytes.len());
                bytes[i] = alphabet[rng.usize(..alphabet.len())];
            }
            1 => {
                let i = rng.usize(..=bytes.len());
                bytes.insert(i, alphabet[rng.usize(..alphabet.len())]);
            }
            2 if !bytes.is_empty() => {
                let i = rng.usize(..bytes.len());
                bytes.remove(i);
            }
            _ => bytes.truncate(rng.usize(..=bytes.len())),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn manifest_parsing_survives_mutated_manifests() {
    let seeds = [
        "[actors.c]\npath = \"x.wasm\"\ninstances = 2\nlimits = { memory = \"8MiB\", mailbox = 4 }\n",
        "[supervisors.s]\nstrategy = \"one-for-all\"\n[supervisors.s.actors.a]\ncomponent = \"b\"\n[components.b]\npath = \"b.wasm\"\n",
        "[actors.a]\npath = \"a.wasm\"\nbindings = { \"x:y/z\" = { group = \"g\", router = { hash-on = \"k\" } } }\nconfig = { k = 1 }\n",
    ];
    let alphabet = b"[]{}=\".,:-_ \n0123456789abcdefghijklmnopqrstuvwxyz\\'#";
    let mut rng = fastrand::Rng::with_seed(0x0072_015e);
    for i in 0..3000 {
        let text = mutate(&mut rng, seeds[i % seeds.len()], alphabet);
        fuzzing::manifest(&text);
    }
}

/// A random WAVE-ish value: mostly well-formed, sometimes not.
fn value(rng: &mut fastrand::Rng, depth: u32) -> String {
    let leaf = |rng: &mut fastrand::Rng| -> String {
        match rng.u8(0..10) {
            0 => rng.u64(..).to_string(),
            1 => format!("-{}", rng.u32(..)),
            2 => {
                format!("{:?}", String::from_utf8_lossy(&(0..rng.usize(0..8)).map(|_| rng.u8(..)).collect::<Vec<_>>()))
            }
            3 => format!("'{}'", rng.char('a'..='z')),
            4 => ["true", "false", "none", "ok", "err", "nan", "inf", "-inf"][rng.usize(..8)].into(),
            5 => format!("{}.{}", rng.u16(..), rng.u8(..)),
            6 => ["stored", "rejected", "happy", "some", "x-y"][rng.usize(..5)].into(),
            _ => rng.u8(..).to_string(),
        }
    };
    if depth == 0 {
        return leaf(rng);
    }
    match rng.u8(0..7) {
        0 => format!("[{}]", (0..rng.usize(0..4)).map(|_| value(rng, depth - 1)).collect::<Vec<_>>().join(", ")),
        1 => format!(
            "{{{}}}",
            ["key", "value", "path", "sender", "text"][..rng.usize(1..5)]
                .iter()
                .map(|k| format!("{k}: {}", value(rng, depth - 1)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        2 => format!("({}, {})", value(rng, depth - 1), value(rng, depth - 1)),
        3 => format!("{}({})", ["some", "ok", "err", "stored", "rejected"][rng.usize(..5)], value(rng, depth - 1)),
        _ => leaf(rng),
    }
}

#[tokio::test]
async fn message_parsing_type_checks_or_refuses_generated_messages() {
    let host = support::host();
    let mut rng = fastrand::Rng::with_seed(0x03e5_5a9e);
    for guest in ["counter", "chat-member", "chain-node", "probe", "tally", "hostile", "counter-v2"] {
        let component = host.load(guest, &support::guest(guest), None).unwrap();
        let protocol = component.protocol();
        let names: Vec<String> = protocol.functions().iter().map(|f| f.qualified_name()).collect();
        for _ in 0..800 {
            let name = if rng.u8(0..10) == 0 { "no-such".to_string() } else { names[rng.usize(..names.len())].clone() };
            let args: Vec<String> = (0..rng.usize(0..4)).map(|_| value(&mut rng, 3)).collect();
            let text = format!("{}({})", name.rsplit('.').next().unwrap(), args.join(", "));
            let text = if rng.u8(0..4) == 0 { mutate(&mut rng, &text, b"(),{}[]\"'0123456789abc: ") } else { text };
            fuzzing::message(protocol, &text, 1 << 20);
            fuzzing::message(protocol, &text, 16);
        }
    }
}

#[tokio::test]
async fn arbitrary_states_restored_into_running_actors_are_refused_cleanly() {
    let host = support::host();
    let mut rng = fastrand::Rng::with_seed(0x5a7e);
    for (guest, probe) in [("counter", "get()"), ("counter-v2", "increments()"), ("hostile", "ping()")] {
        support::spawn(&host, guest, guest, Default::default()).await;
        for _ in 0..60 {
            let version = match rng.u8(0..4) {
                0 => "counter/1".to_string(),
                1 => "counter/2".to_string(),
                2 => "hostile/1".to_string(),
                _ => (0..rng.usize(0..12)).map(|_| rng.alphanumeric()).collect(),
            };
            let bytes: Vec<u8> = (0..rng.usize(0..20)).map(|_| rng.u8(..)).collect();
            fuzzing::restore(&host, guest, version, bytes, probe).await;
        }
    }
}

#[test]
fn batch_entry_points_keep_valid_components_valid() {
    let mut rng = fastrand::Rng::with_seed(0xba7c);
    for guest in ["counter", "faulty", "probe", "tally", "hostile", "chat-room", "chain-node"] {
        let bytes = std::fs::read(support::guest(guest)).unwrap();
        fuzzing::batch_entries(&bytes);
        // Damaged copies: nearly all are refused before anything is built,
        // and none may panic.
        for _ in 0..40 {
            let mut damaged = bytes.clone();
            for _ in 0..rng.usize(1..4) {
                let i = rng.usize(..damaged.len());
                damaged[i] = rng.u8(..);
            }
            if rng.bool() {
                damaged.truncate(rng.usize(8..damaged.len()));
            }
            fuzzing::batch_entries(&damaged);
        }
    }
}
