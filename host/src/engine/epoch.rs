//! The epoch ticker: one thread that advances every engine's epoch.
//!
//! Deadlines and time slices are counted in epoch ticks (see
//! `actor::incarnation`), so this thread is the host's clock for guest CPU
//! time. It holds only a weak reference and exits once the engine is gone.

use std::sync::Weak;
use std::time::Duration;

use super::EngineInner;

pub(super) fn spawn_ticker(engine: Weak<EngineInner>, tick: Duration) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("troupe-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                for e in engine.each_engine() {
                    e.increment_epoch();
                }
            }
        })
        .map(drop)
}
