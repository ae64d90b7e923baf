//! The restart decision, as a function of what the WAL replayed and of a snapshot loader: which
//! snapshot to start from, which entries follow it, which hard state; then the rebuilt
//! [`MemStorage`]. No file is touched here ([`super::open`] does the I/O), so every rule of the
//! contract's damage table that concerns the *choice* is unit-tested below without a disk.
//!
//! The rules, in order:
//! 1. The hard state is the WAL's newest state record (none: the default, commit 0).
//! 2. Markers above its commit index are ignored, as etcd's `ValidSnapshotEntries` does: a
//!    snapshot holds only applied, so committed, entries, and the node writes the hard state that
//!    commits them before the marker (a leader's snapshot: in the same batch, synced with it); a
//!    marker past the persisted commit was never made valid.
//!    (So the loaded snapshot's index never exceeds the commit index: nothing needs raising.)
//! 3. The newest marked snapshot whose file loads (its index AND term match a marker) is the
//!    start. A damaged or missing one is skipped for the next older.
//! 4. The WAL's entries after the start must follow it without a hole, and reach the commit
//!    index. If a damaged snapshot was skipped and the older start fails this check, the node
//!    refuses, naming the damaged file ([`StorageError::SnapshotUnrecoverable`]).

use std::path::Path;

use raftwood_raft::{Entry, HardState, MemStorage, NodeId, Snapshot};
use raftwood_snap::SnapshotId;
use raftwood_wal::{Marker, Replay};

use super::error::{SnapshotDamage, StorageError};
use super::records;

/// What a restart starts from.
#[derive(Debug)]
pub(crate) struct Restoration {
    /// The rebuilt in-memory storage.
    pub storage: MemStorage,
    /// The hard state, as persisted.
    pub hard_state: HardState,
    /// The snapshot started from.
    pub snapshot: Option<Snapshot>,
    /// Marked snapshots that could not be used, newest first.
    pub skipped: Vec<SnapshotDamage>,
    /// Their ids.
    pub skipped_ids: Vec<SnapshotId>,
    /// Markers ignored because they lie above the persisted commit index.
    pub ignored_markers: Vec<Marker>,
    /// The markers that count (at or below the commit index), oldest first.
    pub valid_markers: Vec<Marker>,
}

/// Decides the restart from `replay`. `voters` is the configuration a log without a snapshot
/// starts from; `load` reads one snapshot file.
pub(crate) fn restore(
    dir: &Path,
    replay: &Replay,
    voters: &[NodeId],
    mut load: impl FnMut(SnapshotId) -> Result<Snapshot, SnapshotDamage>,
) -> Result<Restoration, StorageError> {
    let hard_state = match &replay.state {
        Some(bytes) => records::decode_hard_state(dir, bytes)?,
        None => HardState::default(),
    };
    let (valid_markers, ignored_markers): (Vec<Marker>, Vec<Marker>) = replay
        .markers
        .iter()
        .filter(|m| m.index > 0)
        .partition(|m| m.index <= hard_state.commit);
    for m in &ignored_markers {
        tracing::warn!(
            index = m.index,
            term = m.term,
            commit = hard_state.commit,
            "WAL snapshot marker above the persisted commit index; ignored"
        );
    }

    let mut skipped = Vec::new();
    let mut skipped_ids = Vec::new();
    let mut snapshot = None;
    for m in valid_markers.iter().rev() {
        let id = SnapshotId {
            index: m.index,
            term: m.term,
        };
        match load(id) {
            Ok(s) => {
                snapshot = Some(s);
                break;
            }
            Err(damage) => {
                tracing::warn!(%damage, "marked snapshot unusable; trying an older one");
                skipped.push(damage);
                skipped_ids.push(id);
            }
        }
    }

    let start = snapshot.as_ref().map_or(0, |s| s.metadata.index);
    let entries = match entries_after(dir, replay, start, hard_state.commit) {
        Ok(entries) => entries,
        Err(fallback) if !skipped.is_empty() => {
            return Err(StorageError::SnapshotUnrecoverable {
                damage: skipped.swap_remove(0),
                fallback: Box::new(fallback),
            });
        }
        Err(e) => return Err(e),
    };

    let mut storage = MemStorage::new_with_voters(voters);
    if let Some(s) = &snapshot {
        // Invariant: `start > 0` (markers at 0 are filtered out) and a new MemStorage holds the
        // snapshot at 0, so `apply_snapshot` cannot find this one out of date.
        if let Err(e) = storage.apply_snapshot(s.clone()) {
            panic!("invariant violated: a fresh MemStorage refused snapshot {start}: {e}");
        }
    }
    storage.set_hard_state(hard_state);
    storage.append(&entries);
    Ok(Restoration {
        storage,
        hard_state,
        snapshot,
        skipped,
        skipped_ids,
        ignored_markers,
        valid_markers,
    })
}

/// The entries after `start`, decoded, checked to follow it without a hole and to reach
/// `commit`.
fn entries_after(
    dir: &Path,
    replay: &Replay,
    start: u64,
    commit: u64,
) -> Result<Vec<Entry>, StorageError> {
    let mut entries = Vec::new();
    let mut last = start;
    for record in replay.entries_after(start) {
        let expected = last.saturating_add(1);
        if record.index != expected {
            return Err(StorageError::Gap {
                dir: dir.to_path_buf(),
                after: last,
                expected,
                found: record.index,
            });
        }
        entries.push(records::decode_entry(dir, record.index, &record.data)?);
        last = record.index;
    }
    if commit > last {
        return Err(StorageError::CommitPastLastIndex {
            dir: dir.to_path_buf(),
            commit,
            last,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use bytes::Bytes;
    use raftwood_raft::{ConfState, SnapshotMetadata, Storage};

    use super::*;
    use crate::codec;

    fn entry(index: u64, term: u64) -> raftwood_wal::Entry {
        let e = Entry {
            index,
            term,
            ..Default::default()
        };
        raftwood_wal::Entry {
            index,
            data: Bytes::from(codec::encode(&e)),
        }
    }

    fn replay(commit: u64, markers: &[(u64, u64)], entries: &[(u64, u64)]) -> Replay {
        let hs = HardState {
            term: 3,
            vote: Some(1),
            commit,
        };
        Replay {
            state: Some(Bytes::from(codec::encode(&hs))),
            markers: markers
                .iter()
                .map(|&(index, term)| Marker { index, term })
                .collect(),
            entries: entries.iter().map(|&(i, t)| entry(i, t)).collect(),
            ..Replay::default()
        }
    }

    fn snap(id: SnapshotId) -> Snapshot {
        Snapshot {
            metadata: SnapshotMetadata {
                index: id.index,
                term: id.term,
                conf_state: ConfState { voters: vec![1, 2] },
            },
            data: Bytes::from_static(b"state"),
        }
    }

    fn damaged(id: SnapshotId) -> SnapshotDamage {
        SnapshotDamage::File(raftwood_snap::Error::NotFound {
            path: PathBuf::from(id.file_name()),
        })
    }

    /// A loader for which the ids in `bad` are damaged.
    fn loader(bad: &[u64]) -> impl FnMut(SnapshotId) -> Result<Snapshot, SnapshotDamage> + '_ {
        move |id| match bad.contains(&id.index) {
            true => Err(damaged(id)),
            false => Ok(snap(id)),
        }
    }

    fn dir() -> PathBuf {
        PathBuf::from("wal")
    }

    #[test]
    fn newest_marked_snapshot_and_the_entries_after_it() {
        let r = replay(6, &[(2, 1), (4, 2)], &[(3, 1), (4, 2), (5, 2), (6, 3)]);
        let got = restore(&dir(), &r, &[1], loader(&[])).unwrap();
        assert_eq!(got.snapshot.unwrap().metadata.index, 4);
        assert_eq!(got.storage.first_index(), Ok(5));
        assert_eq!(got.storage.last_index(), Ok(6));
        assert_eq!(got.storage.term(4), Ok(2));
        assert_eq!(got.storage.hard_state().commit, 6);
        assert_eq!(
            got.storage.initial_state().unwrap().conf_state.voters,
            vec![1, 2],
            "the snapshot's configuration"
        );
    }

    #[test]
    fn no_snapshot_starts_from_the_bootstrap_voters() {
        let r = replay(2, &[], &[(1, 1), (2, 1)]);
        let got = restore(&dir(), &r, &[1, 2, 3], loader(&[])).unwrap();
        assert!(got.snapshot.is_none());
        assert_eq!(
            got.storage.initial_state().unwrap().conf_state.voters,
            vec![1, 2, 3]
        );
        assert_eq!(got.storage.entries(1, 3, u64::MAX).unwrap().len(), 2);
    }

    #[test]
    fn marker_above_commit_is_ignored() {
        let r = replay(
            3,
            &[(2, 1), (5, 1)],
            &[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1)],
        );
        let mut asked = Vec::new();
        let got = restore(&dir(), &r, &[1], |id| {
            asked.push(id.index);
            Ok(snap(id))
        })
        .unwrap();
        assert_eq!(asked, [2], "marker 5 is above commit 3: never loaded");
        assert_eq!(got.ignored_markers, [Marker { index: 5, term: 1 }]);
        assert_eq!(got.storage.last_index(), Ok(5));
    }

    #[test]
    fn a_hole_after_the_snapshot_is_refused() {
        let r = replay(2, &[], &[(1, 1), (2, 1), (4, 1)]);
        let err = restore(&dir(), &r, &[1], loader(&[])).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Gap {
                    after: 2,
                    expected: 3,
                    found: 4,
                    ..
                }
            ),
            "{err}"
        );
        // A log that does not start right after the snapshot (here: none, so at 1).
        let r = replay(0, &[], &[(3, 1)]);
        let err = restore(&dir(), &r, &[1], loader(&[])).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Gap {
                    expected: 1,
                    found: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn commit_past_the_log_is_refused() {
        let r = replay(5, &[], &[(1, 1), (2, 1)]);
        let err = restore(&dir(), &r, &[1], loader(&[])).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::CommitPastLastIndex {
                    commit: 5,
                    last: 2,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn damaged_newest_falls_back_when_the_wal_covers_the_older() {
        let r = replay(6, &[(2, 1), (4, 2)], &[(3, 1), (4, 2), (5, 2), (6, 3)]);
        let got = restore(&dir(), &r, &[1], loader(&[4])).unwrap();
        assert_eq!(got.snapshot.unwrap().metadata.index, 2);
        assert_eq!(got.storage.first_index(), Ok(3));
        assert_eq!(got.skipped.len(), 1);
    }

    #[test]
    fn damaged_newest_without_a_covered_fallback_is_refused_naming_it() {
        // Entries 3 and 4 were released with the segments below snapshot 4.
        let r = replay(6, &[(2, 1), (4, 2)], &[(5, 2), (6, 3)]);
        let err = restore(&dir(), &r, &[1], loader(&[4])).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, StorageError::SnapshotUnrecoverable { damage, .. }
                if damage.path() == Some(Path::new(&SnapshotId { index: 4, term: 2 }.file_name()))),
            "{text}"
        );
        assert!(
            text.contains("0000000000000002-0000000000000004.snap"),
            "{text}"
        );
        assert!(!text.contains('\n'));
        // Every marked snapshot damaged, and no log from index 1: refused, naming the newest.
        let r = replay(6, &[(2, 1), (4, 2)], &[(3, 1), (4, 2), (5, 2), (6, 3)]);
        let err = restore(&dir(), &r, &[1], loader(&[2, 4])).unwrap_err();
        assert!(
            err.to_string()
                .contains("0000000000000002-0000000000000004.snap")
        );
    }

    #[test]
    fn malformed_records_are_typed_errors() {
        let mut r = replay(0, &[], &[]);
        r.state = Some(Bytes::from_static(b"\xff"));
        let err = restore(&dir(), &r, &[1], loader(&[])).unwrap_err();
        assert!(matches!(err, StorageError::Decode { .. }), "{err}");
        let mut r = replay(0, &[], &[]);
        r.entries = vec![raftwood_wal::Entry {
            index: 1,
            data: entry(2, 1).data,
        }];
        let err = restore(&dir(), &r, &[1], loader(&[])).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::IndexMismatch {
                    record: 1,
                    decoded: 2,
                    ..
                }
            ),
            "{err}"
        );
    }
}
