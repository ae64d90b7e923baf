//! The node's records in the WAL and the snapshot files, in the crate's one codec
//! ([`crate::codec`]): an [`Entry`] is a WAL entry record (at the entry's index), the
//! [`HardState`] is the WAL's state record, a [`SnapshotMetadata`] is a snapshot file's metadata.

use std::path::Path;

use raftwood_raft::{Entry, HardState, Snapshot, SnapshotMetadata};
use raftwood_snap::SnapshotId;

use super::error::{SnapshotDamage, StorageError};
use crate::codec::{self, DECODE_LIMIT};

/// The entry's bytes, refused if a restart could not read them back.
pub(crate) fn encode_entry(entry: &Entry) -> Result<Vec<u8>, StorageError> {
    let bytes = codec::encode(entry);
    if bytes.len() > DECODE_LIMIT {
        return Err(StorageError::EntryTooLarge {
            index: entry.index,
            len: bytes.len(),
            max: DECODE_LIMIT,
        });
    }
    Ok(bytes)
}

/// Decodes the WAL entry record at `index`, checking that it holds entry `index`.
pub(crate) fn decode_entry(dir: &Path, index: u64, bytes: &[u8]) -> Result<Entry, StorageError> {
    let entry: Entry = codec::decode(bytes, "entry").map_err(|source| StorageError::Decode {
        dir: dir.to_path_buf(),
        what: format!("entry at index {index}"),
        source,
    })?;
    if entry.index != index {
        return Err(StorageError::IndexMismatch {
            dir: dir.to_path_buf(),
            record: index,
            decoded: entry.index,
        });
    }
    Ok(entry)
}

/// The hard state's bytes.
pub(crate) fn encode_hard_state(hs: &HardState) -> Vec<u8> {
    codec::encode(hs)
}

/// Decodes the WAL's state record.
pub(crate) fn decode_hard_state(dir: &Path, bytes: &[u8]) -> Result<HardState, StorageError> {
    codec::decode(bytes, "hard state").map_err(|source| StorageError::Decode {
        dir: dir.to_path_buf(),
        what: "hard state".to_string(),
        source,
    })
}

/// The snapshot's id in the store.
pub(crate) fn snapshot_id(snapshot: &Snapshot) -> SnapshotId {
    SnapshotId {
        index: snapshot.metadata.index,
        term: snapshot.metadata.term,
    }
}

/// The metadata bytes of a snapshot file.
pub(crate) fn encode_metadata(metadata: &SnapshotMetadata) -> Vec<u8> {
    codec::encode(metadata)
}

/// Turns a loaded snapshot file back into raft's [`Snapshot`], checking that its metadata agrees
/// with the file's id.
pub(crate) fn decode_snapshot(
    path: &Path,
    file: raftwood_snap::Snapshot,
) -> Result<Snapshot, SnapshotDamage> {
    let metadata: SnapshotMetadata =
        codec::decode(&file.metadata, "snapshot metadata").map_err(|source| {
            SnapshotDamage::Metadata {
                path: path.to_path_buf(),
                source,
            }
        })?;
    let found = SnapshotId {
        index: metadata.index,
        term: metadata.term,
    };
    if found != file.id {
        return Err(SnapshotDamage::Mismatch {
            path: path.to_path_buf(),
            expected: file.id,
            found,
        });
    }
    Ok(Snapshot {
        metadata,
        data: file.data.into(),
    })
}
