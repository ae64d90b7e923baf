//! Plain numbers the node exposes for `GET /metrics`: [`MetricsSnapshot`].
//!
//! The node fills these however it likes (atomics, a struct behind a mutex); the HTTP layer turns
//! one snapshot into Prometheus text at scrape time, so the node never depends on a metrics crate.

/// A histogram with fixed bucket upper bounds, as Prometheus models one.
///
/// Invariant: `counts.len() == upper_bounds.len() + 1` (the last bucket is `+Inf`), and
/// `upper_bounds` is strictly increasing; [`Histogram::new`] establishes both and no method
/// breaks them.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    upper_bounds: Vec<f64>,
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    /// An empty histogram with these finite bucket upper bounds (an `+Inf` bucket is added).
    /// Bounds that are not finite or not increasing are dropped, so any input gives a valid one.
    pub fn new(upper_bounds: &[f64]) -> Self {
        let mut bounds: Vec<f64> = Vec::with_capacity(upper_bounds.len());
        for &bound in upper_bounds {
            if bound.is_finite() && bounds.last().is_none_or(|&last| bound > last) {
                bounds.push(bound);
            }
        }
        let counts = vec![0; bounds.len() + 1];
        Self {
            upper_bounds: bounds,
            counts,
            sum: 0.0,
        }
    }

    /// `count` buckets growing by `factor` from `start`, like Prometheus' `exponential_buckets`.
    pub fn exponential(start: f64, factor: f64, count: usize) -> Self {
        let bounds: Vec<f64> = std::iter::successors(Some(start), |b| Some(b * factor))
            .take(count)
            .collect();
        Self::new(&bounds)
    }

    /// A histogram from counts kept elsewhere (the node's own buckets): `counts[i]` observations
    /// at or below `upper_bounds[i]`, the last count for `+Inf`, and their `sum`. Returns `None`
    /// unless there is exactly one count more than bounds and the bounds are finite and strictly
    /// increasing (the type's invariant).
    pub fn from_counts(upper_bounds: Vec<f64>, counts: Vec<u64>, sum: f64) -> Option<Self> {
        let increasing = upper_bounds.windows(2).all(|w| w[0] < w[1]);
        let finite = upper_bounds.iter().all(|b| b.is_finite());
        (increasing && finite && counts.len() == upper_bounds.len() + 1).then_some(Self {
            upper_bounds,
            counts,
            sum,
        })
    }

    /// Records one observation.
    pub fn observe(&mut self, value: f64) {
        let bucket = self.upper_bounds.partition_point(|&bound| bound < value);
        self.counts[bucket] += 1;
        self.sum += value;
    }

    /// The finite upper bounds, increasing.
    pub fn upper_bounds(&self) -> &[f64] {
        &self.upper_bounds
    }

    /// Observations per bucket (not cumulative); the last one is the `+Inf` bucket.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Sum of all observations.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Messages this node sent to, and dropped for, one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerMetrics {
    /// The peer's raft id.
    pub id: u64,
    /// Messages handed to the transport for this peer.
    pub messages_sent: u64,
    /// Messages dropped (queue full, peer unreachable).
    pub messages_dropped: u64,
}

/// Everything `GET /metrics` shows about the node, read once per scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSnapshot {
    /// Current term.
    pub term: u64,
    /// Commit index.
    pub commit_index: u64,
    /// Applied index.
    pub applied_index: u64,
    /// Times this node saw the leader change (including to "no leader").
    pub leader_changes: u64,
    /// Proposals (puts, deletes, conf changes) this node submitted to raft.
    pub proposals: u64,
    /// Proposals carried by each Ready that had any: how well many clients share one WAL sync.
    pub proposals_per_ready: Histogram,
    /// The most proposals one Ready carried.
    pub proposals_per_ready_max: u64,
    /// Linearizable reads served.
    pub linearizable_reads: u64,
    /// Serializable reads served.
    pub serializable_reads: u64,
    /// ReadIndex rounds run; reads per round = linearizable reads / rounds.
    pub read_index_rounds: u64,
    /// Duration of each WAL sync, in seconds.
    pub wal_sync_seconds: Histogram,
    /// Snapshots taken.
    pub snapshots: u64,
    /// Total time spent taking snapshots, in seconds.
    pub snapshot_seconds_total: f64,
    /// Per-peer message counts.
    pub peers: Vec<PeerMetrics>,
}

impl Default for MetricsSnapshot {
    /// All zero, with the bucket bounds the HTTP layer expects: proposals per Ready 1, 2, 4 ...
    /// 4096; WAL sync 50 µs to about 3.3 s, doubling.
    fn default() -> Self {
        Self {
            term: 0,
            commit_index: 0,
            applied_index: 0,
            leader_changes: 0,
            proposals: 0,
            proposals_per_ready: Histogram::exponential(1.0, 2.0, 13),
            proposals_per_ready_max: 0,
            linearizable_reads: 0,
            serializable_reads: 0,
            read_index_rounds: 0,
            wal_sync_seconds: Histogram::exponential(0.000_05, 2.0, 17),
            snapshots: 0,
            snapshot_seconds_total: 0.0,
            peers: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn observe_lands_in_the_first_bucket_whose_bound_is_not_below() {
        let mut h = Histogram::new(&[1.0, 2.0, 4.0]);
        for v in [0.5, 1.0, 1.5, 4.0, 9.0] {
            h.observe(v);
        }
        assert_eq!(h.counts(), &[2, 1, 1, 1]);
        assert_eq!(h.count(), 5);
        assert!((h.sum() - 16.0).abs() < 1e-9);
    }

    #[test]
    fn from_counts_keeps_the_invariant() {
        let h = Histogram::from_counts(vec![1.0, 2.0], vec![3, 0, 1], 7.0).unwrap();
        assert_eq!(h.count(), 4);
        assert!(Histogram::from_counts(vec![1.0, 2.0], vec![3, 0], 7.0).is_none());
        assert!(Histogram::from_counts(vec![2.0, 1.0], vec![3, 0, 1], 7.0).is_none());
    }

    #[test]
    fn new_drops_bounds_that_would_break_the_invariant() {
        let h = Histogram::new(&[1.0, f64::NAN, 0.5, 2.0, 2.0, f64::INFINITY]);
        assert_eq!(h.upper_bounds(), &[1.0, 2.0]);
        assert_eq!(h.counts().len(), 3);
    }
}
