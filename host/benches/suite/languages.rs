//! Scenario 6': the counter in each guest language that was built: its
//! size, first compile, spawn and ask.

use std::time::Instant;

use troupe::{ActorTemplate, EngineConfig, Host, HostConfig};

use crate::Scale;
use crate::measure::{ASK_TIMEOUT, per};
use crate::report::{Row, ns, row};
use crate::support::{ask_call, cache_dir, guest_path};

/// Per-language rows (issue 6): component size, first load, instantiation
/// and per-message cost, for each counter that was built.
pub async fn languages(scale: Scale, rows: &mut Vec<Row>) {
    for (language, name) in
        [("Rust", "counter"), ("JavaScript", "counter-js"), ("Python", "counter-py"), ("C", "counter-c")]
    {
        let path = guest_path(name);
        let Ok(size) = std::fs::metadata(&path).map(|m| m.len()) else { continue };
        let host = {
            let mut engine = EngineConfig::new();
            // The full run measures a real compile; the smoke pass reuses
            // the cache, as JavaScript and Python take seconds to compile.
            let cache = scale.smoke.then(cache_dir);
            engine.max_instances(64).cache_dir(cache);
            Host::new(HostConfig { engine, ..Default::default() }).unwrap()
        };
        let t0 = Instant::now();
        let component = host.load(name, &path, None).unwrap();
        let compile = t0.elapsed();
        let mut entry = ActorTemplate::new(component);
        entry.policy.limits.memory = 256 << 20;
        let t0 = Instant::now();
        let actor = host.spawn(entry.spec("lang".into())).await.unwrap();
        let start = t0.elapsed();
        let incr = actor.parse("incr(1)").unwrap();
        let n = (scale.tells / 10).max(100);
        let t0 = Instant::now();
        for _ in 0..n {
            ask_call(&actor, &incr, ASK_TIMEOUT).await;
        }
        let message = per(t0.elapsed(), n);
        rows.push(row(
            &format!("6'. {language} counter: size, compile, spawn, ask"),
            format!("{:.0} KiB, {}, {}, {}", size as f64 / 1024.0, ns(compile), ns(start), ns(message)),
            "-".into(),
            None,
            "-",
        ));
        host.shutdown().await;
    }
}
