//! Counters a `/metrics` endpoint can read from another thread while the loop runs. Plain
//! atomics: the loop adds, readers load; no lock is held across the loop.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use raftwood_raft::NodeId;

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
        }
        if synced {
            Self::add(&self.syncs, 1);
        }
    }

    pub(crate) fn count_peer(map: &Mutex<BTreeMap<NodeId, u64>>, to: NodeId) {
        *map.lock().entry(to).or_default() += 1;
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
