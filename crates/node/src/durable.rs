//! The loop's view of durable storage: the few operations it needs from the WAL and the snapshot
//! store, and nothing else. The disk-backed implementation (`DiskStorage`, over `raftwood-wal`
//! and `raftwood-snap`) implements [`DurableLog`]; the tests implement it with a recording fake,
//! so that they can check the order in which the loop calls it.
//!
//! # The rules an implementation keeps
//! - [`DurableLog::save_snap`] returns only when the snapshot file is durable (written, synced,
//!   its directory synced). The loop writes the WAL marker pointing at it only afterwards
//!   (in [`DurableLog::save`]), so a marker never names a missing file.
//! - [`DurableLog::save`] writes its [`Batch`] as one unit, in this order: the marker, the hard
//!   state, the entries; and syncs once, after all of it, if `batch.sync`. When it returns with
//!   `sync` set, everything in the batch survives a crash.
//! - A marker with `reset` (a leader's snapshot) says that the log restarts after it: entries
//!   before it in the WAL, and any after its index written earlier, are not replayed on restart.
//!   A plain marker (a local snapshot) only says "a snapshot exists at this index".
//! - [`DurableLog::purge`] keeps the newest `keep` snapshots and releases only WAL segments
//!   wholly below the oldest kept snapshot's index.
//! - [`DurableLog::close`] syncs what was written and releases the files.

use raftwood_raft::{Entry, HardState, Snapshot, SnapshotMetadata};

/// A snapshot marker for the WAL: "a snapshot at this index exists".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// The snapshot's index, term and configuration.
    pub metadata: SnapshotMetadata,
    /// The log restarts after the marker (a leader's snapshot installed over a possibly
    /// conflicting log); `false` for a snapshot this node took of its own state.
    pub reset: bool,
}

/// One WAL write: written in this order, synced once at the end if `sync`.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// A snapshot marker, whose snapshot file is already durable.
    pub marker: Option<&'a Marker>,
    /// Term, vote and commit index, when they changed.
    pub hard_state: Option<HardState>,
    /// Entries continuing the log (replacing any at or after the first one's index).
    pub entries: &'a [Entry],
    /// Sync after writing (raft's `must_sync`).
    pub sync: bool,
}

impl Batch<'_> {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.marker.is_none() && self.hard_state.is_none() && self.entries.is_empty()
    }
}

/// The error type of a [`DurableLog`], boxed: the loop only reports it (and stops).
pub type DurableError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The durable storage the loop writes. See the module documentation for the rules.
pub trait DurableLog: Send + 'static {
    /// Writes the snapshot's file and makes it durable.
    fn save_snap(&mut self, snapshot: &Snapshot) -> Result<(), DurableError>;
    /// Writes one batch to the WAL, synced once at the end if `batch.sync`.
    fn save(&mut self, batch: Batch<'_>) -> Result<(), DurableError>;
    /// Keeps the newest `keep` snapshots (at least 2) and releases the WAL segments below the
    /// oldest one kept.
    fn purge(&mut self, keep: usize) -> Result<(), DurableError>;
    /// Syncs and closes. Called once, when the loop stops.
    fn close(&mut self) -> Result<(), DurableError>;
}
