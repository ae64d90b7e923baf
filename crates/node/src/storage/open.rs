//! [`DiskStorage::open`]: start and restart. The steps, each a row of the contract's damage
//! table where damage can show:
//!
//! 1. open the WAL (`dir/wal`): it locks the directory, removes leftover `*.wal.tmp`, truncates
//!    a torn tail of the newest segment (logged at error level, reported in
//!    [`Restored::torn_tail`]) and refuses any other damage with an error naming the segment
//!    and the byte offset;
//! 2. open the snapshot store (`dir/snap`), after the WAL's lock is held: it removes leftover
//!    `*.tmp` files;
//! 3. decide the restart from the replay (`restore.rs`): hard state, valid markers, the newest
//!    marked snapshot that loads, the entries after it;
//! 4. only then remove orphan snapshot files (no valid marker names them: a crash between the
//!    file and its marker), so a refusal changes nothing in `snap/`.

use std::path::Path;

use raftwood_raft::{HardState, MemStorage, Snapshot};
use raftwood_snap::{Options as SnapOptions, SnapshotId, Store};
use raftwood_wal::{Marker, Options as WalOptions, TornTail, Wal};

use super::disk::{DiskStorage, SNAP_DIR, StorageOptions, WAL_DIR};
use super::error::{SnapshotDamage, StorageError};
use super::records;
use super::restore;
use super::stats::StorageStats;

/// What a node restarts from, as [`DiskStorage::open`] rebuilt it.
#[derive(Debug)]
pub struct Restored {
    /// The in-memory storage: the snapshot applied, the hard state set, the entries after the
    /// snapshot appended. Without a snapshot, its configuration is
    /// [`StorageOptions::bootstrap_voters`].
    pub storage: MemStorage,
    /// The persisted hard state (default when none was written).
    pub hard_state: HardState,
    /// The snapshot started from: the application restores its state from it, and the node
    /// starts with `applied` at its index.
    pub snapshot: Option<Snapshot>,
    /// Nothing was on disk (no hard state, entry or marker): the caller bootstraps with its
    /// initial voters or joins.
    pub fresh: bool,
    /// The torn tail the WAL cut off, if any (already logged at error level by the WAL).
    pub torn_tail: Option<TornTail>,
    /// Snapshot files removed because no valid WAL marker names them.
    pub orphans_removed: Vec<SnapshotId>,
    /// Marked snapshots skipped as damaged or missing (the node fell back past them).
    pub skipped_snapshots: Vec<SnapshotDamage>,
    /// WAL markers ignored because they lie above the persisted commit index.
    pub ignored_markers: Vec<Marker>,
}

impl DiskStorage {
    /// Opens the data directory `dir` (creating it if needed) and rebuilds what the node restarts
    /// from. See the module docs of `open.rs` and the book's "Storage and restart" for the steps.
    ///
    /// ```
    /// use raftwood_node::storage::{DiskStorage, StorageOptions};
    /// use raftwood_raft::Storage;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let options = StorageOptions { bootstrap_voters: vec![1, 2, 3], ..StorageOptions::default() };
    /// let (storage, restored) = DiskStorage::open(dir.path(), options).unwrap();
    /// assert!(restored.fresh);
    /// assert_eq!(restored.storage.initial_state().unwrap().conf_state.voters, vec![1, 2, 3]);
    /// storage.close().unwrap();
    /// ```
    pub fn open(
        dir: &Path,
        options: StorageOptions,
    ) -> Result<(DiskStorage, Restored), StorageError> {
        let wal_dir = dir.join(WAL_DIR);
        let wal_options = WalOptions {
            segment_size: options.wal_segment_size,
            recovery: options.recovery,
            fsync: options.fsync,
            fs: options.fs.clone(),
            ..WalOptions::default()
        };
        let (wal, replay) = Wal::open(&wal_dir, wal_options)?;
        let snap = Store::open_with(
            dir.join(SNAP_DIR),
            SnapOptions {
                sync: options.fsync,
                fs: options.fs.clone(),
            },
        )?;
        let fresh =
            replay.state.is_none() && replay.entries.is_empty() && replay.markers.is_empty();

        let restoration = restore::restore(&wal_dir, &replay, &options.bootstrap_voters, |id| {
            load(&snap, id)
        })?;

        let valid: Vec<SnapshotId> = restoration
            .valid_markers
            .iter()
            .map(|m| SnapshotId {
                index: m.index,
                term: m.term,
            })
            .collect();
        let mut orphans_removed = Vec::new();
        let mut snapshots = Vec::new();
        for id in snap.list()? {
            if restoration.skipped_ids.contains(&id) {
                // Damaged: kept for the operator to look at, but no fallback (purge removes it).
                continue;
            }
            if valid.contains(&id) {
                snapshots.push(id);
            } else {
                // No valid marker: none at all (a crash between the file and its marker), or
                // one above the persisted commit index, which `restore` ignores. The latter is
                // unreachable for a snapshot of our own (`record_local_snapshot` runs only after
                // the batch holding a commit that covers it is synced), and for a leader's it
                // means a crash inside the very batch that carried the marker, before its sync
                // (its hard state, commit = the snapshot's index, comes right after the marker
                // in the same batch): nothing acknowledged that snapshot, the leader sends it
                // again, so the file is safe to remove either way.
                tracing::warn!(
                    file = %snap.path_of(id).display(),
                    "snapshot file has no valid WAL marker (a crash between the file and its marker); removing the orphan"
                );
                snap.remove(id)?;
                orphans_removed.push(id);
            }
        }
        snapshots.sort_unstable();
        let start = restoration.snapshot.as_ref().map(records::snapshot_id);
        tracing::info!(
            dir = %dir.display(),
            fresh,
            snapshot = ?start,
            hard_state = ?restoration.hard_state,
            "storage opened"
        );
        let storage = DiskStorage {
            dir: dir.to_path_buf(),
            wal,
            snap,
            snapshots,
            unmarked: None,
            unsynced: false,
            stats: StorageStats::default(),
        };
        let restored = Restored {
            storage: restoration.storage,
            hard_state: restoration.hard_state,
            snapshot: restoration.snapshot,
            fresh,
            torn_tail: replay.torn_tail,
            orphans_removed,
            skipped_snapshots: restoration.skipped,
            ignored_markers: restoration.ignored_markers,
        };
        Ok((storage, restored))
    }
}

/// Loads snapshot `id` from the store as raft's [`Snapshot`].
fn load(store: &Store, id: SnapshotId) -> Result<Snapshot, SnapshotDamage> {
    let file = store.load(id).map_err(SnapshotDamage::File)?;
    records::decode_snapshot(&store.path_of(id), file)
}
