//! [`StorageStats`]: how often the WAL synced and how long it took, for the benchmark (WAL syncs
//! per committed entry, the group-commit factor) and for `/metrics` (a sync-latency histogram).
//!
//! The histogram is a fixed set of buckets written here rather than a dependency: the node needs
//! counts per bucket that a Prometheus exporter can turn into a histogram, nothing more.

use std::time::Duration;

/// The upper bounds of [`LatencyHistogram`]'s buckets, in microseconds; a last bucket counts
/// everything slower. Spaced to resolve fdatasync latencies from a fast NVMe disk (tens of
/// microseconds) to a struggling one (hundreds of milliseconds).
pub const BUCKET_BOUNDS_MICROS: [u64; 14] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// Counts of durations per bucket of [`BUCKET_BOUNDS_MICROS`] (plus one for slower ones).
///
/// ```
/// use std::time::Duration;
/// use raftwood_node::storage::LatencyHistogram;
///
/// let mut h = LatencyHistogram::default();
/// h.record(Duration::from_micros(30));
/// h.record(Duration::from_millis(3));
/// assert_eq!(h.count(), 2);
/// // Bucket "<= 50 µs" holds one, "<= 5 ms" the other.
/// assert_eq!(h.buckets().find(|b| b.0 == Some(50)).unwrap().1, 1);
/// assert_eq!(h.buckets().find(|b| b.0 == Some(5_000)).unwrap().1, 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: [u64; BUCKET_BOUNDS_MICROS.len() + 1],
}

impl LatencyHistogram {
    /// Counts one duration in the first bucket whose bound it does not exceed.
    pub fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKET_BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        self.counts[bucket] = self.counts[bucket].saturating_add(1);
    }

    /// `(upper bound in µs, count)` per bucket, fastest first; the last bound is `None`
    /// (unbounded). Counts are per bucket, not cumulative.
    pub fn buckets(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        BUCKET_BOUNDS_MICROS
            .iter()
            .map(|&b| Some(b))
            .chain(std::iter::once(None))
            .zip(self.counts.iter().copied())
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// What the storage has done since it was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// WAL syncs (each one `fdatasync` when fsync is on, and one commit record).
    pub wal_syncs: u64,
    /// Total time spent in WAL syncs.
    pub wal_sync_total: Duration,
    /// The latest WAL sync's duration.
    pub wal_sync_last: Duration,
    /// WAL sync durations.
    pub wal_sync_latency: LatencyHistogram,
    /// Entries written to the WAL.
    pub entries_written: u64,
    /// Calls to `save` that wrote anything.
    pub batches: u64,
    /// Snapshot files saved.
    pub snapshots_saved: u64,
}

impl StorageStats {
    /// Records one WAL sync.
    pub(crate) fn record_sync(&mut self, took: Duration) {
        self.wal_syncs += 1;
        self.wal_sync_total += took;
        self.wal_sync_last = took;
        self.wal_sync_latency.record(took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_edges_are_inclusive_and_the_last_is_unbounded() {
        let mut h = LatencyHistogram::default();
        h.record(Duration::from_micros(25));
        h.record(Duration::from_micros(26));
        h.record(Duration::from_secs(5));
        let b: Vec<_> = h.buckets().collect();
        assert_eq!(b[0], (Some(25), 1));
        assert_eq!(b[1], (Some(50), 1));
        assert_eq!(b.last().copied(), Some((None, 1)));
    }

    #[test]
    fn record_sync_keeps_count_total_and_last() {
        let mut s = StorageStats::default();
        s.record_sync(Duration::from_millis(2));
        s.record_sync(Duration::from_millis(1));
        assert_eq!(s.wal_syncs, 2);
        assert_eq!(s.wal_sync_total, Duration::from_millis(3));
        assert_eq!(s.wal_sync_last, Duration::from_millis(1));
        assert_eq!(s.wal_sync_latency.count(), 2);
    }
}
