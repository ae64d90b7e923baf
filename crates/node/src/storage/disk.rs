//! [`DiskStorage`] and its [`StorageOptions`]: the WAL and the snapshot store of one data
//! directory, as the node loop holds them. Opening is in `open.rs`, writing in `save.rs`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use raftwood_raft::NodeId;
use raftwood_snap::{SnapshotId, Store};
use raftwood_wal::fsio::Fs;
use raftwood_wal::{RecoveryMode, Wal};

use super::error::StorageError;
use super::stats::StorageStats;

/// The WAL's directory inside the data directory.
pub const WAL_DIR: &str = "wal";
/// The snapshot store's directory inside the data directory.
pub const SNAP_DIR: &str = "snap";
/// [`DiskStorage::purge`] never keeps fewer snapshots than this: with one, a damaged snapshot
/// would leave the node nothing to fall back to.
pub const MIN_SNAPSHOTS_KEPT: usize = 2;

/// How [`DiskStorage::open`] sets up the WAL and the snapshot store.
#[derive(Clone, Debug)]
pub struct StorageOptions {
    /// The voters a log without a snapshot starts from, for a restart before any snapshot:
    /// always `NodeConfig::bootstrap_voters()` (the `--cluster` list, minus this node if it
    /// joins), the one place they are derived; the node refuses a restored log built from
    /// others.
    pub bootstrap_voters: Vec<NodeId>,
    /// A WAL segment is started when the active one reaches this size. Default 64 MiB; tests set
    /// it small to get several segments.
    pub wal_segment_size: u64,
    /// Whether the WAL and the snapshot store call `fdatasync`/`fsync`. Default true; off only for
    /// tests and benchmarks of everything but the disk.
    pub fsync: bool,
    /// What the WAL does with a torn tail. Default: truncate it ([`RecoveryMode::TolerateTornTail`]),
    /// as the contract's damage table says.
    pub recovery: RecoveryMode,
    /// The file-system seam both stores go through (tests record the order of calls with a
    /// `fsio::Recorder`).
    pub fs: Fs,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            bootstrap_voters: Vec::new(),
            wal_segment_size: 64 << 20,
            fsync: true,
            recovery: RecoveryMode::TolerateTornTail,
            fs: Fs::direct(),
        }
    }
}

/// A node's durable storage: the WAL (`dir/wal`) and the snapshot store (`dir/snap`).
///
/// Opened with [`DiskStorage::open`], which also rebuilds the in-memory storage; written by the
/// node loop with [`DiskStorage::save_snap`] and [`DiskStorage::save`] for each `Ready`, and with
/// [`DiskStorage::record_local_snapshot`] and [`DiskStorage::purge`] when it snapshots; closed
/// with [`DiskStorage::close`].
///
/// It uses [`Wal`] directly, syncing inline, and not the off-loop `WalThread`: the loop must not
/// send `persisted_messages` or apply before the sync returns anyway, and group commit comes
/// for free because proposals arriving during a sync wait in the loop's channel and form the
/// next `Ready`'s entries (one batch, one sync). `release` needs the `Wal` itself too.
#[derive(Debug)]
pub struct DiskStorage {
    pub(crate) dir: PathBuf,
    pub(crate) wal: Wal,
    pub(crate) snap: Store,
    /// The snapshots the WAL marks as valid starts, with files on disk, oldest first: the
    /// fallbacks `purge` chooses from.
    pub(crate) snapshots: Vec<SnapshotId>,
    /// A snapshot file written by `save_snap` whose marker is not written yet.
    pub(crate) unmarked: Option<SnapshotId>,
    /// Records are staged in the WAL that no sync has covered.
    pub(crate) unsynced: bool,
    pub(crate) stats: StorageStats,
}

impl DiskStorage {
    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the storage has done since it was opened.
    pub fn stats(&self) -> &StorageStats {
        &self.stats
    }

    /// The snapshots the WAL marks and whose files are kept, oldest first.
    pub fn snapshots(&self) -> &[SnapshotId] {
        &self.snapshots
    }

    /// The WAL's segment files, oldest first.
    pub fn wal_segments(&self) -> Vec<PathBuf> {
        self.wal.segment_paths()
    }

    /// Makes everything staged durable (one WAL sync, counted in [`StorageStats`]); nothing if
    /// nothing is staged.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        if !self.unsynced {
            return Ok(());
        }
        let started = Instant::now();
        self.wal.sync()?;
        self.stats.record_sync(started.elapsed());
        self.unsynced = false;
        Ok(())
    }

    /// Graceful stop: syncs what is staged and closes the WAL (releasing its lock).
    pub fn close(mut self) -> Result<(), StorageError> {
        self.sync()?;
        tracing::info!(dir = %self.dir.display(), "storage closed");
        Ok(())
    }
}
