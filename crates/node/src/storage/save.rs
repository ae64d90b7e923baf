//! Writing: [`DiskStorage::save_snap`] (the snapshot file, durable, first), [`DiskStorage::save`]
//! (one WAL batch per `Ready`: marker, hard state, entries, at most one sync),
//! [`DiskStorage::record_local_snapshot`] and [`DiskStorage::purge`].
//!
//! Why the file before its marker: a crash between the two then leaves a file no marker names,
//! which the next open removes as an orphan; the other order could leave a marker (and a commit
//! index) naming a file that does not exist. etcd 3.4's raftexample wrote the WAL first; etcd
//! later moved the snapshot first for this reason.

use std::time::Instant;

use raftwood_raft::Snapshot;
use raftwood_snap::SnapshotId;
use raftwood_wal::Marker;

use super::disk::{DiskStorage, MIN_SNAPSHOTS_KEPT};
use super::error::StorageError;
use super::records;
use crate::durable::Batch;

/// What [`DiskStorage::purge`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Snapshot files removed, newest first.
    pub snapshots: Vec<SnapshotId>,
    /// WAL segments released.
    pub wal_segments: usize,
}

impl DiskStorage {
    /// Saves `snapshot`'s file durably (temporary file, fsync, rename, directory fsync: the
    /// snapshot store's commit) BEFORE any WAL marker names it. Call it first for a `Ready` with
    /// a snapshot, then [`DiskStorage::save`].
    pub fn save_snap(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        let id = records::snapshot_id(snapshot);
        let metadata = records::encode_metadata(&snapshot.metadata);
        self.snap.save(id, &metadata, &snapshot.data[..])?;
        self.stats.snapshots_saved += 1;
        self.unmarked = Some(id);
        tracing::debug!(snapshot = %id, "snapshot file saved");
        Ok(())
    }

    /// Persists one `Ready` as ONE WAL batch: the snapshot's log-resetting marker (if any), the
    /// hard state (if any), the entries; then one sync if `must_sync`, none otherwise (what is
    /// staged is made durable by the next sync, or by [`DiskStorage::close`]).
    ///
    /// A snapshot from the leader is always marked with the log-resetting marker
    /// (`Wal::append_reset_marker`): `MemStorage::apply_snapshot` replaces the whole log, so on
    /// restart the WAL must not bring back entries written before it, which may conflict with the
    /// snapshot (stale, lower-term entries after its index).
    ///
    /// Refuses, writing nothing, a snapshot whose file [`DiskStorage::save_snap`] did not save
    /// and an entry too large to be read back.
    pub fn save(&mut self, ready: Batch<'_>) -> Result<(), StorageError> {
        let marker = match ready.snapshot {
            Some(s) => {
                let id = records::snapshot_id(s);
                if self.unmarked != Some(id) {
                    return Err(StorageError::SnapshotNotSaved { id });
                }
                Some(id)
            }
            None => None,
        };
        // Encode (and check) everything before staging anything, so a refusal stages nothing.
        let entries = ready
            .entries
            .iter()
            .map(|e| records::encode_entry(e).map(|bytes| (e.index, bytes)))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(id) = marker {
            self.wal.append_reset_marker(Marker {
                index: id.index,
                term: id.term,
            })?;
            self.unsynced = true;
        }
        if let Some(hs) = &ready.hard_state {
            self.wal.append_state(&records::encode_hard_state(hs))?;
            self.unsynced = true;
        }
        for (index, bytes) in &entries {
            self.wal.append_entry(*index, bytes)?;
            self.unsynced = true;
        }
        if marker.is_some() || ready.hard_state.is_some() || !entries.is_empty() {
            self.stats.batches += 1;
        }
        self.stats.entries_written += entries.len() as u64;
        if ready.must_sync {
            self.sync()?;
        }
        if let Some(id) = marker {
            // The reset drops every older marker on replay: none is a fallback any more.
            self.snapshots = vec![id];
            self.unmarked = None;
        }
        Ok(())
    }

    /// Records a snapshot the node took of its own state machine: saves the file
    /// ([`DiskStorage::save_snap`]), then writes a plain marker and syncs. A plain marker, not a
    /// resetting one: the log after the snapshot is this node's own and stays, and older
    /// snapshots remain fallbacks.
    ///
    /// The hard state whose commit index covers the snapshot must have been passed to
    /// [`DiskStorage::save`] before (the loop saves each `Ready` before applying it): otherwise
    /// the marker lies above the persisted commit and a restart ignores it.
    pub fn record_local_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), StorageError> {
        self.save_snap(snapshot)?;
        let id = records::snapshot_id(snapshot);
        self.wal.append_marker(Marker {
            index: id.index,
            term: id.term,
        })?;
        self.unsynced = true;
        self.sync()?;
        self.unmarked = None;
        if let Err(at) = self.snapshots.binary_search(&id) {
            self.snapshots.insert(at, id);
        }
        Ok(())
    }

    /// Keeps the `keep` newest marked snapshots (at least [`MIN_SNAPSHOTS_KEPT`]), removes every
    /// other snapshot file, and releases the WAL segments wholly below the OLDEST KEPT snapshot's
    /// index, so a restart can still fall back to it when a newer one is damaged (the entries
    /// after it stay in the WAL).
    ///
    /// Syncs first: a marker must be durable before the segments below it go.
    pub fn purge(&mut self, keep: usize) -> Result<Purged, StorageError> {
        let keep = keep.max(MIN_SNAPSHOTS_KEPT);
        self.sync()?;
        let kept: Vec<SnapshotId> = self
            .snapshots
            .iter()
            .rev()
            .take(keep)
            .rev()
            .copied()
            .collect();
        let mut purged = Purged::default();
        for id in self.snap.list()? {
            if !kept.contains(&id) && self.unmarked != Some(id) {
                self.snap.remove(id)?;
                purged.snapshots.push(id);
            }
        }
        self.snapshots = kept;
        if let Some(oldest) = self.snapshots.first() {
            let started = Instant::now();
            purged.wal_segments = self.wal.release(oldest.index)?;
            tracing::debug!(
                below = oldest.index,
                released = purged.wal_segments,
                took = ?started.elapsed(),
                "WAL segments released"
            );
        }
        Ok(purged)
    }
}
