//! [`StorageError`]: everything that can stop the node's storage, each with the file (and the
//! byte offset, where the WAL knows it) and the problem, on one line, so that the binary can print
//! it as its last words (`../shared/CONTRACT.md`, "Damage on disk").

use std::path::PathBuf;

use raftwood_snap::SnapshotId;

use crate::codec::CodecError;

/// Everything that can go wrong in [`crate::storage`]. `Display` is one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The WAL failed or refused to open. Its error names the segment and, for damage, the byte
    /// offset (`wal/…wal: corrupt at byte 52: …`).
    #[error("WAL: {0}")]
    Wal(#[from] raftwood_wal::Error),
    /// The snapshot store failed (an I/O error naming the file).
    #[error("snapshot store: {0}")]
    Snap(#[from] raftwood_snap::Error),
    /// A WAL record passed the WAL's checksums but does not decode as what the node wrote there:
    /// damage no checksum caught, or a file from another program.
    #[error("WAL in {}: {what} does not decode: {source}", dir.display())]
    Decode {
        /// The WAL directory (the WAL hands out records without their segment).
        dir: PathBuf,
        /// Which record: `"hard state"`, `"entry at index 7"`.
        what: String,
        /// The codec's account.
        source: CodecError,
    },
    /// A WAL entry record at one index holds an entry that says another.
    #[error("WAL in {}: entry record at index {record} holds entry {decoded}", dir.display())]
    IndexMismatch {
        /// The WAL directory.
        dir: PathBuf,
        /// The index of the WAL record.
        record: u64,
        /// The index inside the decoded entry.
        decoded: u64,
    },
    /// The entries replayed do not continue the log from the snapshot (or from index 1): a
    /// segment was lost or released too early. Raft cannot run on a log with a hole in it.
    #[error(
        "WAL in {}: entries are not contiguous: after index {after} expected entry {expected}, found {found}",
        dir.display()
    )]
    Gap {
        /// The WAL directory.
        dir: PathBuf,
        /// The last index held before the hole (the snapshot's index, or the entry before).
        after: u64,
        /// The index that should follow.
        expected: u64,
        /// The index that does.
        found: u64,
    },
    /// The persisted commit index lies past the end of the restored log: entries known committed
    /// are missing.
    #[error(
        "WAL in {}: hard state commit index {commit} is past the last index {last} of the log",
        dir.display()
    )]
    CommitPastLastIndex {
        /// The WAL directory.
        dir: PathBuf,
        /// The persisted commit index.
        commit: u64,
        /// The last index restored (the snapshot's, or the last entry's).
        last: u64,
    },
    /// The newest snapshot the WAL marks is damaged (or missing), and no older one can replace it.
    #[error("{damage}; no older snapshot can replace it: {fallback}")]
    SnapshotUnrecoverable {
        /// What is wrong with the newest marked snapshot (names its file).
        damage: SnapshotDamage,
        /// Why the fallback failed: the older candidate's log check.
        fallback: Box<StorageError>,
    },
    /// [`crate::storage::DiskStorage::save`] was given a snapshot whose file
    /// [`crate::storage::DiskStorage::save_snap`] did not write first: the marker would name a
    /// file that may not exist. A bug in the caller; nothing was written.
    #[error("snapshot {id} must be saved with save_snap before its WAL marker is written")]
    SnapshotNotSaved {
        /// The snapshot.
        id: SnapshotId,
    },
    /// An entry encodes to more bytes than the codec would read back on restart; writing it
    /// would make the WAL unreadable. Nothing was written.
    #[error("entry {index} encodes to {len} bytes, over the decode limit of {max} bytes")]
    EntryTooLarge {
        /// The entry's index.
        index: u64,
        /// Its encoded length.
        len: usize,
        /// [`crate::codec::DECODE_LIMIT`].
        max: usize,
    },
}

/// Why one snapshot file cannot be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotDamage {
    /// The store refused the file: missing, damaged (checksum, length, name), or unreadable.
    #[error(transparent)]
    File(raftwood_snap::Error),
    /// The file is intact but its metadata is not a `SnapshotMetadata` in the crate's codec.
    #[error("{path}: malformed snapshot metadata: {source}")]
    Metadata {
        /// The snapshot file.
        path: PathBuf,
        /// The codec's account.
        source: CodecError,
    },
    /// The file's metadata names another snapshot than its header does.
    #[error("{path}: the metadata holds snapshot {found} but the file is snapshot {expected}")]
    Mismatch {
        /// The snapshot file.
        path: PathBuf,
        /// The id of the file.
        expected: SnapshotId,
        /// The index and term in the metadata.
        found: SnapshotId,
    },
}

impl SnapshotDamage {
    /// The damaged file, where the error knows it.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            SnapshotDamage::File(raftwood_snap::Error::Corrupt { path, .. })
            | SnapshotDamage::File(raftwood_snap::Error::NotFound { path })
            | SnapshotDamage::File(raftwood_snap::Error::Io { path, .. })
            | SnapshotDamage::Metadata { path, .. }
            | SnapshotDamage::Mismatch { path, .. } => Some(path),
            SnapshotDamage::File(_) => None,
        }
    }
}
