//! The loop's view of durable storage: the few operations it needs from the WAL and the snapshot
//! store, and nothing else. [`crate::storage::DiskStorage`] implements [`DurableLog`] (over
//! `raftwood-wal` and `raftwood-snap`, in `storage/durable_log.rs`); the loop's tests implement
//! it with a recording fake, so that they can check the order in which the loop calls it.
//!
//! # The rules an implementation keeps
//! - [`DurableLog::save_snap`] returns only when the snapshot file is durable (written, synced,
//!   its directory synced). The loop writes the WAL marker that names it only afterwards (in
//!   [`DurableLog::save`]), so a marker never names a missing file.
//! - [`DurableLog::save`] writes its [`Batch`] as one unit, in this order: a log-resetting marker
//!   for `batch.snapshot`, the hard state, the entries; and syncs once, after all of it, if
//!   `batch.must_sync`. When it returns with `sync` set, everything in the batch survives a crash.
//!   The resetting marker says the log restarts after the snapshot: entries written before it
//!   (which may conflict with the snapshot) are not replayed on restart.
//! - [`DurableLog::record_local_snapshot`] records a snapshot this node took of its own state:
//!   the file, durable, then a plain marker (the log after it stays; older snapshots stay
//!   fallbacks), synced. The loop calls it only after the batch holding the commit index that
//!   covers the snapshot (a marker above the persisted commit is ignored on restart).
//! - [`DurableLog::purge`] keeps the newest `keep` snapshots (at least 2) and releases only WAL
//!   segments wholly below the oldest kept snapshot's index.
//! - [`DurableLog::close`] syncs what was written; the files are released when the value drops.

use raftwood_raft::{Entry, HardState, Ready, Snapshot};

/// One WAL write, what one `Ready` asks to persist, borrowed from it ([`Batch::from_ready`]):
/// written in this order, synced once at the end if `must_sync`. The one type both the loop and
/// [`crate::storage::DiskStorage::save`] use.
#[derive(Clone, Copy, Debug, Default)]
pub struct Batch<'a> {
    /// A leader's snapshot (`Ready::snapshot`), whose file [`DurableLog::save_snap`] already
    /// made durable: written as a log-resetting marker.
    pub snapshot: Option<&'a Snapshot>,
    /// Term, vote and commit index, when they changed.
    pub hard_state: Option<HardState>,
    /// Entries continuing the log (replacing any at or after the first one's index).
    pub entries: &'a [Entry],
    /// Sync after writing: the batch must be durable before the caller goes on (raft's
    /// `Ready::must_sync`).
    pub must_sync: bool,
}

impl<'a> Batch<'a> {
    /// The parts of `ready` that go to disk.
    pub fn from_ready(ready: &'a Ready) -> Batch<'a> {
        Batch {
            snapshot: ready.snapshot.as_deref(),
            hard_state: ready.hard_state,
            entries: &ready.entries,
            must_sync: ready.must_sync,
        }
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.hard_state.is_none() && self.entries.is_empty()
    }
}

/// The error type of a [`DurableLog`], boxed: the loop only reports it (and stops).
pub type DurableError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The durable storage the loop writes. See the module documentation for the rules.
pub trait DurableLog: Send + 'static {
    /// Writes a leader's snapshot's file and makes it durable.
    fn save_snap(&mut self, snapshot: &Snapshot) -> Result<(), DurableError>;
    /// Writes one batch to the WAL, synced once at the end if `batch.must_sync`.
    fn save(&mut self, batch: Batch<'_>) -> Result<(), DurableError>;
    /// Records this node's own snapshot: its file, durable, then a plain marker, synced.
    fn record_local_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), DurableError>;
    /// Keeps the newest `keep` snapshots (at least 2) and releases the WAL segments below the
    /// oldest one kept.
    fn purge(&mut self, keep: usize) -> Result<(), DurableError>;
    /// Syncs what was written. Called once, when the loop stops.
    fn close(&mut self) -> Result<(), DurableError>;
    /// The sync latencies so far, for `/metrics` (the loop publishes them in
    /// [`crate::NodeStats::wal_sync`] after each synced batch). `None`: not kept.
    fn wal_sync_stats(&self) -> Option<crate::stats::WalSyncStats> {
        None
    }
}
