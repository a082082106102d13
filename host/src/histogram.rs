//! A histogram of durations that one writer fills without a lock: what an
//! actor's metrics and the store's commits keep (see `crate::metrics`).
//!
//! Observing is one relaxed atomic add to a bucket and one to the sum: no
//! lock and no allocation, so it can sit on the message path.
//! prometheus-client's own histogram takes a lock per observation. Buckets
//! are fixed ([`BOUNDS`]); a [`HistogramSnapshot`] adds histograms up (the
//! actors of a component) for a scrape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The upper bounds of the buckets, in seconds, from a microsecond (a
/// small message) to five seconds (a message's longest default deadline is
/// below it); beyond the last, `+Inf`.
pub const BOUNDS: [f64; 14] = [1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0, 5.0];

/// [`BOUNDS`] in nanoseconds, for the comparison made per observation.
const BOUNDS_NS: [u64; 14] = [
    1_000,
    5_000,
    10_000,
    50_000,
    100_000,
    500_000,
    1_000_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    500_000_000,
    1_000_000_000,
    5_000_000_000,
];

/// Buckets, the last one `+Inf`.
const BUCKETS: usize = BOUNDS.len() + 1;

/// Durations, counted into [`BOUNDS`]' buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative).
    counts: [AtomicU64; BUCKETS],
    /// All observations together, in nanoseconds.
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Counts one duration.
    #[inline]
    pub fn observe(&self, duration: Duration) {
        let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NS.partition_point(|bound| *bound < ns);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// Histograms added up, read at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    counts: [u64; BUCKETS],
    sum_ns: u64,
}

impl HistogramSnapshot {
    /// Adds what `histogram` has counted so far.
    pub fn add(&mut self, histogram: &Histogram) {
        for (total, count) in self.counts.iter_mut().zip(&histogram.counts) {
            *total += count.load(Ordering::Relaxed);
        }
        self.sum_ns += histogram.sum_ns.load(Ordering::Relaxed);
    }

    /// Adds another snapshot.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        for (total, count) in self.counts.iter_mut().zip(&other.counts) {
            *total += count;
        }
        self.sum_ns += other.sum_ns;
    }

    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The sum of the observations, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_ns as f64 / 1e9
    }

    /// `(upper bound in seconds, observations in its bucket)` for each
    /// bucket, `+Inf` last; not cumulative (the encoder sums them up).
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        BOUNDS.iter().copied().chain([f64::INFINITY]).zip(self.counts).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Histogram, HistogramSnapshot};

    #[test]
    fn a_duration_falls_in_the_first_bucket_whose_bound_is_not_below_it() {
        let h = Histogram::default();
        h.observe(Duration::from_nanos(1_000)); // le 1e-6
        h.observe(Duration::from_nanos(1_001)); // le 5e-6
        h.observe(Duration::from_millis(2)); // le 5e-3
        h.observe(Duration::from_secs(60)); // +Inf
        let mut snapshot = HistogramSnapshot::default();
        snapshot.add(&h);
        let buckets = snapshot.buckets();
        assert_eq!(buckets[0], (1e-6, 1));
        assert_eq!(buckets[1], (5e-6, 1));
        assert_eq!(buckets[6], (1e-3, 0));
        assert_eq!(buckets[7], (5e-3, 1));
        assert_eq!(buckets[13], (5.0, 0));
        assert_eq!(buckets[14], (f64::INFINITY, 1));
        assert_eq!(snapshot.count(), 4);
        assert!((snapshot.sum_seconds() - 60.002002001).abs() < 1e-9);
    }

    #[test]
    fn snapshots_add_up() {
        let (a, b) = (Histogram::default(), Histogram::default());
        a.observe(Duration::from_micros(3));
        b.observe(Duration::from_micros(3));
        let mut one = HistogramSnapshot::default();
        one.add(&a);
        let mut two = HistogramSnapshot::default();
        two.add(&b);
        one.merge(&two);
        assert_eq!(one.buckets()[1], (5e-6, 2));
    }
}
