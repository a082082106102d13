//! How the scenarios time things: samples, rounds interleaved between the
//! systems compared, medians and percentiles.

use std::time::{Duration, Instant};

/// Rounds of each throughput measurement, interleaved between the systems
/// compared; the median round counts. Interleaving spreads this shared
/// VM's slow spells over all of them instead of over whichever ran then.
pub const ROUNDS: usize = 5;

/// The timeout of every ask the suite makes (troupe's, and kameo's timed
/// baseline): far longer than any ask takes.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(60);

/// `total` divided among `n`.
pub fn per(total: Duration, n: usize) -> Duration {
    total / n.max(1) as u32
}

/// Times `n` runs of `op`, one sample each.
pub async fn latencies(n: usize, op: impl AsyncFnMut()) -> Vec<Duration> {
    latencies_after(n, async || {}, op).await
}

/// Times `n` runs of `op`, each after an untimed `setup` (a failure to
/// recover from, a sleep to wake from).
pub async fn latencies_after(n: usize, mut setup: impl AsyncFnMut(), mut op: impl AsyncFnMut()) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        setup().await;
        let t0 = Instant::now();
        op().await;
        samples.push(t0.elapsed());
    }
    samples
}

/// Time per message of `n` sends, up to the round trip (`confirm`) that
/// shows the receiver has handled them all.
pub async fn per_message(n: usize, mut send: impl AsyncFnMut(), confirm: impl AsyncFnOnce()) -> Duration {
    let t0 = Instant::now();
    for _ in 0..n {
        send().await;
    }
    confirm().await;
    per(t0.elapsed(), n)
}

/// Runs `timing` in a task on the runtime, as a request handler or another
/// actor would ask, rather than from the thread blocked on the runtime: a
/// round trip then measures the actor system, not how long this VM takes
/// to wake a sleeping thread (which alone varied from 5 to 30 µs).
pub async fn on_runtime<T: Send + 'static>(timing: impl Future<Output = T> + Send + 'static) -> T {
    tokio::spawn(timing).await.expect("the timing task")
}

/// The median of `rounds`.
pub fn median(mut rounds: Vec<Duration>) -> Duration {
    percentile(&mut rounds, 0.5)
}

/// The `p` quantile (0.0 to 1.0) of `samples`, which it sorts.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples.get(i).copied().unwrap_or_default()
}
