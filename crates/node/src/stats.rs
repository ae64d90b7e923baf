//! Counters a `/metrics` endpoint can read from another thread while the loop runs. Plain
//! atomics: the loop adds, readers load; no lock is held across the loop.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use std::time::Duration;

use parking_lot::Mutex;
use raftwood_raft::NodeId;

use crate::storage::LatencyHistogram;

/// How many buckets [`NodeStats::ready_entries_buckets`] has: up to `2^12` = 4096 entries, and
/// one for more.
pub const READY_ENTRIES_BUCKETS: usize = 14;

/// What a durable log reports about its syncs ([`crate::durable::DurableLog::wal_sync_stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalSyncStats {
    /// Sync latencies per bucket.
    pub latency: LatencyHistogram,
    /// Their sum.
    pub total: Duration,
}

/// The node's counters. Shared as `Arc<NodeStats>`.
#[derive(Debug, Default)]
pub struct NodeStats {
    /// Proposals received from the application.
    pub proposals: AtomicU64,
    /// Readys handled.
    pub readys: AtomicU64,
    /// Entries persisted, summed over Readys (divide by `readys_with_entries` for the mean).
    pub ready_entries: AtomicU64,
    /// Readys that carried entries to persist.
    pub readys_with_entries: AtomicU64,
    /// The most entries one Ready carried.
    pub ready_entries_max: AtomicU64,
    /// WAL batches written with a sync.
    pub syncs: AtomicU64,
    /// Committed entries handed to the application.
    pub committed_published: AtomicU64,
    /// ReadIndex requests started.
    pub read_index_rounds: AtomicU64,
    /// Snapshots this node took of its own state.
    pub snapshots_taken: AtomicU64,
    /// Their total duration, in microseconds.
    pub snapshot_micros: AtomicU64,
    /// Times the known leader changed.
    pub leader_changes: AtomicU64,
    /// Times the loop held committed entries back because the apply channel was full.
    pub apply_pauses: AtomicU64,
    /// Errors dropped because the application's errors channel was full.
    pub errors_dropped: AtomicU64,
    /// Storage failures raft met (each retry counted; reported to the application only when
    /// the failure changes).
    pub storage_failures: AtomicU64,
    /// Readys by the entries they carried, for those that carried any: bucket `i` counts Readys
    /// with at most `2^i` entries (the last bucket, everything larger). On a leader the entries
    /// are the proposals of one turn, so this is the group-commit factor: how many proposals
    /// shared one WAL sync and one append round.
    pub ready_entries_buckets: [AtomicU64; READY_ENTRIES_BUCKETS],
    /// The WAL sync latencies and their total, as the durable log last reported them (after
    /// each synced batch); empty for a log that keeps no such numbers.
    pub wal_sync: Mutex<WalSyncStats>,
    /// Messages handed to the transport, per recipient.
    pub sent: Mutex<BTreeMap<NodeId, u64>>,
    /// Messages the transport reported unreachable, per recipient.
    pub unreachable: Mutex<BTreeMap<NodeId, u64>>,
}

impl NodeStats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn count_ready(&self, entries: u64, synced: bool) {
        Self::add(&self.readys, 1);
        if entries > 0 {
            Self::add(&self.ready_entries, entries);
            Self::add(&self.readys_with_entries, 1);
            self.ready_entries_max.fetch_max(entries, Ordering::Relaxed);
            // Bucket i holds 2^(i-1) < entries <= 2^i: the bits needed by entries - 1.
            let bucket = (u64::BITS - (entries - 1).leading_zeros()) as usize;
            Self::add(
                &self.ready_entries_buckets[bucket.min(READY_ENTRIES_BUCKETS - 1)],
                1,
            );
        }
        if synced {
            Self::add(&self.syncs, 1);
        }
    }

    pub(crate) fn count_peer(map: &Mutex<BTreeMap<NodeId, u64>>, to: NodeId) {
        *map.lock().entry(to).or_default() += 1;
    }

    /// `(upper bound, count)` per bucket of [`NodeStats::ready_entries_buckets`]; the last bound
    /// is `None` (unbounded). Counts are per bucket, not cumulative.
    pub fn ready_entries_histogram(&self) -> Vec<(Option<u64>, u64)> {
        self.ready_entries_buckets
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let bound = (i + 1 < READY_ENTRIES_BUCKETS).then(|| 1u64 << i);
                (bound, Self::get(c))
            })
            .collect()
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readys_land_in_power_of_two_buckets() {
        let stats = NodeStats::default();
        for n in [1, 2, 3, 4, 5, 100_000] {
            stats.count_ready(n, true);
        }
        stats.count_ready(0, false);
        let h = stats.ready_entries_histogram();
        assert_eq!(h[0], (Some(1), 1));
        assert_eq!(h[1], (Some(2), 1));
        assert_eq!(h[2], (Some(4), 2));
        assert_eq!(h[3], (Some(8), 1));
        assert_eq!(h[READY_ENTRIES_BUCKETS - 1], (None, 1));
        assert_eq!(NodeStats::get(&stats.ready_entries_max), 100_000);
    }
}
