//! Scenario 8: what the sandbox costs per call: fuel, epochs, both,
//! neither, on bare wasmtime.

use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::{Component, Linker};

use crate::Scale;
use crate::floor::FloorData;
use crate::measure::{ROUNDS, median, per};
use crate::report::{Row, ns, row};
use crate::support::guest;

/// 8: the cost of the sandbox per call: fuel, epochs, both, neither.
pub fn sandbox_cost(scale: Scale, rows: &mut Vec<Row>) {
    use wasmtime::{Config, Engine};

    let bytes = std::fs::read(guest("counter-narrow")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let configs = [("neither", false, false), ("epoch", false, true), ("fuel", true, false), ("both", true, true)];
    let results = runtime.block_on(async {
        let mut setups = Vec::new();
        for (label, fuel, epoch) in configs {
            let mut config = Config::new();
            config.concurrency_support(false).consume_fuel(fuel).epoch_interruption(epoch);
            let engine = Engine::new(&config).unwrap();
            let component = Component::new(&engine, &bytes).unwrap();
            let mut linker: Linker<FloorData> = Linker::new(&engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
            let mut store = Store::new(&engine, FloorData::new());
            if fuel {
                store.set_fuel(u64::MAX).unwrap();
            }
            if epoch {
                store.set_epoch_deadline(u64::MAX / 2);
            }
            let instance = linker.instantiate_async(&mut store, &component).await.unwrap();
            let api = instance.get_export_index(&mut store, None, "example:counter/api@0.1.0").unwrap();
            let incr = instance.get_export_index(&mut store, Some(&api), "incr").unwrap();
            let incr = instance.get_typed_func::<(u32,), (u64,)>(&mut store, &incr).unwrap();
            setups.push((label, store, incr, Vec::new()));
        }
        // Rounds interleaved between the four, as for the tells: a slow
        // spell of the VM then hits all of them.
        for _ in 0..ROUNDS {
            for (_, store, incr, times) in &mut setups {
                let t0 = Instant::now();
                for _ in 0..scale.calls / ROUNDS {
                    incr.call_async(&mut *store, (1,)).await.unwrap();
                }
                times.push(per(t0.elapsed(), scale.calls / ROUNDS));
            }
        }
        setups.into_iter().map(|(label, _, _, times)| (label, median(times))).collect::<Vec<_>>()
    });
    let neither = results[0].1;
    for (label, cost) in &results {
        rows.push(row(
            &format!("8. sandbox cost per call: {label}"),
            ns(*cost),
            format!("neither {}", ns(neither)),
            Some(cost.as_secs_f64() / neither.as_secs_f64()),
            "-",
        ));
    }
}
