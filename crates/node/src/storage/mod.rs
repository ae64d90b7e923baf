//! The node's durable storage: the glue between raft's `Ready` and the WAL and snapshot store
//! (etcd raftexample's `saveSnap`, `wal.Save`, `replayWAL` and `loadSnapshot`).
//!
//! A data directory holds `wal/*.wal` (raftwood-wal) and `snap/*.snap` (raftwood-snap, named
//! `{term:016x}-{index:016x}.snap`). Every record goes through the crate's one codec: an
//! `Entry` is a WAL entry record, the `HardState` the WAL's state record, a `SnapshotMetadata` a
//! snapshot file's metadata.
//!
//! ```
//! use raftwood_node::storage::{DiskStorage, Batch, StorageOptions};
//! use raftwood_raft::{Entry, HardState, Storage};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let options = || StorageOptions { bootstrap_voters: vec![1], ..StorageOptions::default() };
//! let (mut disk, restored) = DiskStorage::open(dir.path(), options()).unwrap();
//! assert!(restored.fresh);
//! let entries = [Entry { index: 1, term: 1, ..Default::default() }];
//! let hs = HardState { term: 1, vote: Some(1), commit: 1 };
//! disk.save(Batch { hard_state: Some(hs), entries: &entries, must_sync: true, ..Default::default() })
//!     .unwrap();
//! disk.close().unwrap();
//!
//! let (_disk, restored) = DiskStorage::open(dir.path(), options()).unwrap();
//! assert!(!restored.fresh);
//! assert_eq!(restored.hard_state, hs);
//! assert_eq!(restored.storage.last_index(), Ok(1));
//! ```
//!
//! # Layout
//! | file | job |
//! |---|---|
//! | `disk.rs` | [`DiskStorage`], [`StorageOptions`], sync and close |
//! | `open.rs` | [`DiskStorage::open`]: start and restart, orphans; [`Restored`] |
//! | `restore.rs` | the restart decision (snapshot, fallback, contiguity, hard state), pure |
//! | `save.rs` | `save_snap`, `save` (one WAL batch per Ready), local snapshots, `purge` |
//! | `records.rs` | the records in the crate's codec |
//! | `error.rs` | [`StorageError`], [`SnapshotDamage`] |
//! | `stats.rs` | [`StorageStats`]: WAL syncs and their latency |
//!
//! The book's chapter "Storage and restart" walks through the restart path and the damage table.
//!
//! Non-goals: reading entries back from disk while running (raft reads the `MemStorage`),
//! streaming snapshots larger than memory (the snapshot is a `Bytes` in raft's types).

mod disk;
mod durable_log;
mod error;
mod open;
mod records;
mod restore;
mod save;
mod stats;

pub use crate::durable::Batch;
pub use disk::{DiskStorage, MIN_SNAPSHOTS_KEPT, SNAP_DIR, StorageOptions, WAL_DIR};
pub use error::{SnapshotDamage, StorageError};
pub use open::Restored;
pub use save::Purged;
pub use stats::{BUCKET_BOUNDS_MICROS, LatencyHistogram, StorageStats};
