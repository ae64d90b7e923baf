//! The node's storage through restarts and damage: each test is a row of the contract's table
//! "Damage on disk" or a restart rule of issue 11 item 4. Files are damaged with plain `std::fs`
//! writes and the WAL's own API (for logs the node would never write).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use raftwood_node::codec;
use raftwood_node::storage::{
    Batch, DiskStorage, Restored, SNAP_DIR, StorageError, StorageOptions, WAL_DIR,
};
use raftwood_raft::{ConfState, Entry, HardState, MemStorage, Snapshot, SnapshotMetadata, Storage};
use raftwood_snap::SnapshotId;
use raftwood_wal::fsio::{Fs, OpKind, Recorder};
use raftwood_wal::{Marker, Wal};

fn options() -> StorageOptions {
    StorageOptions {
        bootstrap_voters: vec![1, 2, 3],
        ..StorageOptions::default()
    }
}

/// Small segments: a new one for nearly every batch.
fn small_segments() -> StorageOptions {
    StorageOptions {
        wal_segment_size: 200,
        ..options()
    }
}

fn open(dir: &Path) -> (DiskStorage, Restored) {
    DiskStorage::open(dir, options()).unwrap()
}

fn e(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: Bytes::from(format!("put k{index}")),
        ..Default::default()
    }
}

fn hs(term: u64, vote: Option<u64>, commit: u64) -> HardState {
    HardState { term, vote, commit }
}

fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        metadata: SnapshotMetadata {
            index,
            term,
            conf_state: ConfState {
                voters: vec![1, 2, 3],
            },
        },
        data: Bytes::from(format!("state machine at {index}")),
    }
}

/// Saves entries `from..=to` at `term` one batch each, with a hard state committing each.
fn save_each(disk: &mut DiskStorage, from: u64, to: u64, term: u64) {
    for i in from..=to {
        disk.save(Batch {
            hard_state: Some(hs(term, Some(1), i)),
            entries: &[e(i, term)],
            must_sync: true,
            ..Default::default()
        })
        .unwrap();
    }
}

fn entries(storage: &MemStorage) -> Vec<Entry> {
    let (first, last) = (
        storage.first_index().unwrap(),
        storage.last_index().unwrap(),
    );
    storage.entries(first, last + 1, u64::MAX).unwrap()
}

fn snap_path(dir: &Path, index: u64, term: u64) -> PathBuf {
    dir.join(SNAP_DIR)
        .join(SnapshotId { index, term }.file_name())
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn wal_segments(dir: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir.join(WAL_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    segments.sort();
    segments
}

#[test]
fn fresh_directory_is_reported_and_bootstraps_with_the_voters() {
    let tmp = tempfile::tempdir().unwrap();
    let (disk, restored) = open(tmp.path());
    assert!(restored.fresh);
    assert!(restored.snapshot.is_none());
    assert_eq!(restored.hard_state, HardState::default());
    assert_eq!(
        restored.storage.initial_state().unwrap().conf_state.voters,
        vec![1, 2, 3]
    );
    assert!(tmp.path().join(WAL_DIR).is_dir() && tmp.path().join(SNAP_DIR).is_dir());
    disk.close().unwrap();
    // Opened and closed with nothing written: still fresh.
    assert!(open(tmp.path()).1.fresh);
}

#[test]
fn entries_and_hard_state_survive_a_restart_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let mut model = MemStorage::new_with_voters(&[1, 2, 3]);
    {
        let (mut disk, _) = open(tmp.path());
        let batch = [e(1, 1), e(2, 1), e(3, 1)];
        disk.save(Batch {
            hard_state: Some(hs(1, Some(1), 0)),
            entries: &batch,
            must_sync: true,
            ..Default::default()
        })
        .unwrap();
        model.append(&batch);
        // A new leader overwrites 3 and appends 4; the commit moves with no sync needed.
        let batch = [e(3, 2), e(4, 2)];
        disk.save(Batch {
            hard_state: Some(hs(2, None, 3)),
            entries: &batch,
            must_sync: true,
            ..Default::default()
        })
        .unwrap();
        model.append(&batch);
        disk.save(Batch {
            hard_state: Some(hs(2, None, 4)),
            must_sync: false,
            ..Default::default()
        })
        .unwrap();
        model.set_hard_state(hs(2, None, 4));
        disk.close().unwrap();
    }
    let (_disk, restored) = open(tmp.path());
    assert!(!restored.fresh);
    assert_eq!(restored.hard_state, model.hard_state());
    assert_eq!(restored.storage.hard_state(), model.hard_state());
    assert_eq!(entries(&restored.storage), entries(&model));
    assert_eq!(restored.storage.first_index(), model.first_index());
    assert_eq!(restored.storage.last_index(), model.last_index());
    assert_eq!(
        restored.storage.initial_state(),
        model.initial_state(),
        "hard state and voters"
    );
}

#[test]
fn unsynced_batches_are_lost_by_a_crash_but_close_syncs_them() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut disk, _) = open(tmp.path());
        save_each(&mut disk, 1, 2, 1);
        disk.save(Batch {
            entries: &[e(3, 1)],
            must_sync: false,
            ..Default::default()
        })
        .unwrap();
        drop(disk); // a crash: the staged batch never reached the file
    }
    {
        let (mut disk, restored) = open(tmp.path());
        assert_eq!(restored.storage.last_index(), Ok(2));
        disk.save(Batch {
            entries: &[e(3, 1)],
            must_sync: false,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(disk.stats().wal_syncs, 0, "must_sync false: no sync");
        disk.close().unwrap();
    }
    assert_eq!(open(tmp.path()).1.storage.last_index(), Ok(3));
}

#[test]
fn restart_from_a_snapshot_and_the_wal() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut disk, _) = open(tmp.path());
        save_each(&mut disk, 1, 5, 1);
        disk.record_local_snapshot(&snapshot(5, 1)).unwrap();
        save_each(&mut disk, 6, 8, 2);
        disk.close().unwrap();
    }
    let (disk, restored) = open(tmp.path());
    assert_eq!(restored.snapshot, Some(snapshot(5, 1)));
    assert_eq!(restored.storage.snapshot().unwrap(), snapshot(5, 1));
    assert_eq!(restored.storage.first_index(), Ok(6), "1..=5 are compacted");
    assert_eq!(entries(&restored.storage), vec![e(6, 2), e(7, 2), e(8, 2)]);
    assert_eq!(restored.storage.term(5), Ok(1));
    assert_eq!(restored.hard_state, hs(2, Some(1), 8));
    assert_eq!(disk.snapshots(), [SnapshotId { index: 5, term: 1 }]);
}

/// A follower installs its leader's snapshot over a log that conflicts with it. The stale
/// entries after the snapshot's index must never come back (a plain marker would let the WAL
/// replay them), and the term and vote stay those persisted with it.
#[test]
fn a_snapshot_installed_over_a_conflicting_log_keeps_stale_entries_out() {
    let tmp = tempfile::tempdir().unwrap();
    let installed = snapshot(5, 2);
    {
        let (mut disk, _) = open(tmp.path());
        let stale: Vec<Entry> = (1..=10).map(|i| e(i, 1)).collect();
        disk.save(Batch {
            hard_state: Some(hs(1, Some(1), 3)),
            entries: &stale,
            must_sync: true,
            ..Default::default()
        })
        .unwrap();
        // The leader of term 2, voted for by this node, sends its snapshot at 5@2.
        disk.save_snap(&installed).unwrap();
        disk.save(Batch {
            snapshot: Some(&installed),
            hard_state: Some(hs(2, Some(2), 5)),
            entries: &[],
            must_sync: true,
        })
        .unwrap();
        disk.close().unwrap();
    }
    let check = |restored: &Restored, last: u64| {
        assert_eq!(restored.snapshot.as_ref(), Some(&installed));
        assert_eq!(restored.storage.last_index(), Ok(last));
        assert_eq!(restored.storage.term(5), Ok(2));
        assert_eq!(restored.hard_state, hs(2, Some(2), 5), "term and vote kept");
    };
    {
        let (mut disk, restored) = open(tmp.path());
        check(&restored, 5);
        assert!(
            entries(&restored.storage).is_empty(),
            "6..=10 at term 1 are gone"
        );
        disk.save(Batch {
            entries: &[e(6, 2)],
            must_sync: true,
            ..Default::default()
        })
        .unwrap();
        disk.close().unwrap();
    }
    let (_disk, restored) = open(tmp.path());
    check(&restored, 6);
    assert_eq!(entries(&restored.storage), vec![e(6, 2)]);
}

#[test]
fn save_refuses_a_snapshot_whose_file_was_not_saved_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut disk, _) = open(tmp.path());
    let s = snapshot(5, 2);
    let err = disk
        .save(Batch {
            snapshot: Some(&s),
            hard_state: Some(hs(2, None, 5)),
            must_sync: true,
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        matches!(err, StorageError::SnapshotNotSaved { .. }),
        "{err}"
    );
    disk.close().unwrap();
    let (_disk, restored) = open(tmp.path());
    assert!(restored.fresh, "nothing was written");
}

/// A crash between the snapshot file and its marker leaves an orphan; the next open removes it.
#[test]
fn an_orphan_snapshot_file_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut disk, _) = open(tmp.path());
        save_each(&mut disk, 1, 4, 1);
        disk.save_snap(&snapshot(4, 1)).unwrap();
        drop(disk); // crash before the marker
    }
    assert!(snap_path(tmp.path(), 4, 1).exists());
    let (disk, restored) = open(tmp.path());
    assert!(restored.snapshot.is_none());
    assert_eq!(restored.orphans_removed, [SnapshotId { index: 4, term: 1 }]);
    assert!(!snap_path(tmp.path(), 4, 1).exists());
    assert_eq!(restored.storage.last_index(), Ok(4));
    assert!(disk.snapshots().is_empty());
}

#[test]
fn a_marker_above_the_persisted_commit_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut disk, _) = open(tmp.path());
        let log: Vec<Entry> = (1..=10).map(|i| e(i, 1)).collect();
        disk.save(Batch {
            hard_state: Some(hs(1, Some(1), 5)),
            entries: &log,
            must_sync: true,
            ..Default::default()
        })
        .unwrap();
        // A snapshot at 8 with commit 5 persisted: a marker no commit index made valid.
        disk.record_local_snapshot(&snapshot(8, 1)).unwrap();
        disk.close().unwrap();
    }
    let (_disk, restored) = open(tmp.path());
    assert!(restored.snapshot.is_none());
    assert_eq!(restored.ignored_markers, [Marker { index: 8, term: 1 }]);
    assert_eq!(restored.storage.first_index(), Ok(1));
    assert_eq!(restored.storage.last_index(), Ok(10));
    assert_eq!(restored.orphans_removed, [SnapshotId { index: 8, term: 1 }]);
}

/// A log the node would never write (a hole at 3), written with the WAL's own API.
#[test]
fn a_wal_with_a_hole_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) =
            Wal::open(tmp.path().join(WAL_DIR), raftwood_wal::Options::default()).unwrap();
        for i in [1, 2, 4] {
            wal.append_entry(i, &codec::encode(&e(i, 1))).unwrap();
        }
        wal.append_state(&codec::encode(&hs(1, None, 2))).unwrap();
        wal.sync().unwrap();
    }
    let err = DiskStorage::open(tmp.path(), options()).unwrap_err();
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
    let text = err.to_string();
    let wal_dir = tmp.path().join(WAL_DIR);
    assert!(
        text.starts_with(&format!("WAL in {}:", wal_dir.display())),
        "{text}"
    );
    assert!(
        text.contains("not contiguous") && !text.contains('\n'),
        "{text}"
    );
}

#[test]
fn garbage_after_the_last_batch_is_a_torn_tail_and_every_synced_entry_stays() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut disk, _) = open(tmp.path());
        save_each(&mut disk, 1, 5, 1);
        disk.close().unwrap();
    }
    let newest = wal_segments(tmp.path()).pop().unwrap();
    let len = std::fs::metadata(&newest).unwrap().len();
    let mut bytes = std::fs::read(&newest).unwrap();
    bytes.extend_from_slice(&[0xA5; 100]);
    std::fs::write(&newest, bytes).unwrap();

    let (_disk, restored) = open(tmp.path());
    let torn = restored.torn_tail.expect("a torn tail");
    assert_eq!(
        (torn.path, torn.offset, torn.removed_bytes),
        (newest.clone(), len, 100)
    );
    assert_eq!(restored.storage.last_index(), Ok(5));
    assert_eq!(restored.hard_state, hs(1, Some(1), 5));
    assert_eq!(std::fs::metadata(&newest).unwrap().len(), len, "truncated");
}

#[test]
fn a_last_batch_cut_short_is_a_torn_tail_and_the_batches_before_it_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let newest;
    let len_before;
    {
        let (mut disk, _) = open(tmp.path());
        save_each(&mut disk, 1, 3, 1);
        newest = wal_segments(tmp.path()).pop().unwrap();
        len_before = std::fs::metadata(&newest).unwrap().len();
        save_each(&mut disk, 4, 4, 1);
        disk.close().unwrap();
    }
    let len_after = std::fs::metadata(&newest).unwrap().len();
    // The crash came in the middle of writing the last batch.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap();
    file.set_len((len_before + len_after) / 2).unwrap();
    drop(file);

    let (_disk, restored) = open(tmp.path());
    assert!(restored.torn_tail.is_some());
    assert_eq!(restored.storage.last_index(), Ok(3));
    assert_eq!(restored.hard_state, hs(1, Some(1), 3));
}

#[test]
fn a_wal_damaged_in_an_older_segment_is_refused_naming_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut disk, _) = DiskStorage::open(tmp.path(), small_segments()).unwrap();
        save_each(&mut disk, 1, 10, 1);
        disk.close().unwrap();
    }
    let segments = wal_segments(tmp.path());
    assert!(segments.len() >= 3, "{segments:?}");
    // Inside the first frame's payload of the first segment (its header is 40 bytes).
    let damaged = &segments[0];
    flip_byte(damaged, 40 + 12 + 4);
    let err = DiskStorage::open(tmp.path(), small_segments()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StorageError::Wal(_)), "{text}");
    assert!(text.contains(&damaged.display().to_string()), "{text}");
    assert!(text.contains("corrupt at byte 40"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

#[test]
fn a_wal_damaged_before_a_valid_commit_record_is_refused_naming_file_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut disk, _) = open(tmp.path());
        save_each(&mut disk, 1, 5, 1);
        disk.close().unwrap();
    }
    let newest = wal_segments(tmp.path()).pop().unwrap();
    flip_byte(&newest, 40 + 12 + 4);
    let err = DiskStorage::open(tmp.path(), options()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&newest.display().to_string()), "{text}");
    assert!(text.contains("corrupt at byte 40"), "{text}");
    assert!(text.contains("a valid commit record follows"), "{text}");
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_an_older_marked_one() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut disk, _) = open(tmp.path());
        save_each(&mut disk, 1, 4, 1);
        disk.record_local_snapshot(&snapshot(4, 1)).unwrap();
        save_each(&mut disk, 5, 8, 1);
        disk.record_local_snapshot(&snapshot(8, 1)).unwrap();
        save_each(&mut disk, 9, 12, 1);
        disk.close().unwrap();
    }
    let newest = snap_path(tmp.path(), 8, 1);
    let len = std::fs::metadata(&newest).unwrap().len() as usize;
    flip_byte(&newest, len - 1); // in the state machine's bytes
    let (disk, restored) = open(tmp.path());
    assert_eq!(restored.snapshot, Some(snapshot(4, 1)));
    assert_eq!(restored.skipped_snapshots.len(), 1);
    assert_eq!(restored.skipped_snapshots[0].path(), Some(newest.as_path()));
    assert_eq!(
        entries(&restored.storage),
        (5..=12).map(|i| e(i, 1)).collect::<Vec<_>>()
    );
    assert_eq!(restored.hard_state.commit, 12);
    assert_eq!(disk.snapshots(), [SnapshotId { index: 4, term: 1 }]);
}

#[test]
fn a_damaged_newest_snapshot_without_a_covered_fallback_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut disk, _) = DiskStorage::open(tmp.path(), small_segments()).unwrap();
        save_each(&mut disk, 1, 12, 1);
        disk.record_local_snapshot(&snapshot(8, 1)).unwrap();
        let purged = disk.purge(2).unwrap();
        assert!(purged.wal_segments > 0, "entries 1.. are released");
        disk.close().unwrap();
    }
    let newest = snap_path(tmp.path(), 8, 1);
    flip_byte(&newest, 20);
    let err = DiskStorage::open(tmp.path(), small_segments()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, StorageError::SnapshotUnrecoverable { .. }),
        "{text}"
    );
    assert!(text.contains(&newest.display().to_string()), "{text}");
    assert!(!text.contains('\n'), "{text}");
    // Refusing changed nothing in snap/: the damaged file is still there to look at.
    assert!(newest.exists());
}

#[test]
fn leftover_temporary_files_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let (mut disk, _) = open(tmp.path());
        save_each(&mut disk, 1, 2, 1);
        disk.close().unwrap();
    }
    let snap_tmp = tmp.path().join(SNAP_DIR).join(format!(
        "{}.0.tmp",
        SnapshotId { index: 2, term: 1 }.file_name()
    ));
    let wal_tmp = tmp
        .path()
        .join(WAL_DIR)
        .join("0000000000000001-0000000000000003.wal.tmp");
    std::fs::write(&snap_tmp, b"half a snapshot").unwrap();
    std::fs::write(&wal_tmp, b"half a segment").unwrap();
    let (_disk, restored) = open(tmp.path());
    assert!(!snap_tmp.exists() && !wal_tmp.exists());
    assert_eq!(restored.storage.last_index(), Ok(2));
}

#[test]
fn purge_keeps_two_snapshots_and_releases_only_below_the_oldest_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let segments_before;
    {
        let (mut disk, _) = DiskStorage::open(tmp.path(), small_segments()).unwrap();
        for at in [10, 20, 30, 40] {
            save_each(&mut disk, at - 9, at, 1);
            disk.record_local_snapshot(&snapshot(at, 1)).unwrap();
        }
        save_each(&mut disk, 41, 45, 1);
        segments_before = disk.wal_segments().len();
        let purged = disk.purge(1).unwrap(); // raised to 2
        let id = |index| SnapshotId { index, term: 1 };
        assert_eq!(purged.snapshots, [id(20), id(10)]);
        assert_eq!(disk.snapshots(), [id(30), id(40)]);
        assert!(purged.wal_segments > 0);
        assert_eq!(
            disk.wal_segments().len(),
            segments_before - purged.wal_segments
        );
        disk.close().unwrap();
    }
    assert!(!snap_path(tmp.path(), 10, 1).exists() && !snap_path(tmp.path(), 20, 1).exists());
    // The WAL itself: segments below 30 are gone, everything after 30 is held.
    {
        let (_wal, replay) =
            Wal::open(tmp.path().join(WAL_DIR), raftwood_wal::Options::default()).unwrap();
        let first = replay.entries.first().unwrap().index;
        assert!(first > 1 && first <= 31, "first entry held: {first}");
    }
    // So a damaged snapshot 40 still falls back to 30.
    flip_byte(&snap_path(tmp.path(), 40, 1), 60);
    let (_disk, restored) = DiskStorage::open(tmp.path(), small_segments()).unwrap();
    assert_eq!(restored.snapshot, Some(snapshot(30, 1)));
    assert_eq!(restored.storage.first_index(), Ok(31));
    assert_eq!(restored.storage.last_index(), Ok(45));
}

/// Through the file-system seam: the snapshot file is synced, renamed and its directory synced
/// before the WAL write that carries its marker, and the Ready's batch costs one fdatasync.
#[test]
fn the_snapshot_file_is_durable_before_the_wal_write_of_its_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let options = StorageOptions {
        fs: Fs::with_hook(recorder.clone()),
        ..options()
    };
    let (mut disk, _) = DiskStorage::open(tmp.path(), options).unwrap();
    recorder.clear();
    let s = snapshot(5, 2);
    disk.save_snap(&s).unwrap();
    disk.save(Batch {
        snapshot: Some(&s),
        hard_state: Some(hs(2, None, 5)),
        entries: &[e(6, 2)],
        must_sync: true,
    })
    .unwrap();
    let ops = recorder.ops();
    let wal_dir = tmp.path().join(WAL_DIR);
    let snap_dir = tmp.path().join(SNAP_DIR);
    let final_name = snap_path(tmp.path(), 5, 2);
    let pos = |what: &dyn Fn(&raftwood_wal::fsio::Op) -> bool| {
        ops.iter().position(what).expect("the call was made")
    };
    let fsync = pos(&|op| op.kind == OpKind::Fsync && op.path.starts_with(&snap_dir));
    let rename = pos(&|op| op.kind == OpKind::Rename && op.to.as_deref() == Some(&final_name));
    let dir_sync = pos(&|op| op.kind == OpKind::SyncDir && op.path == snap_dir);
    let wal_write = pos(&|op| op.kind == OpKind::Write && op.path.starts_with(&wal_dir));
    assert!(
        fsync < rename && rename < dir_sync && dir_sync < wal_write,
        "{ops:#?}"
    );
    let wal_syncs = ops
        .iter()
        .filter(|op| op.kind == OpKind::Fdatasync && op.path.starts_with(&wal_dir))
        .count();
    assert_eq!(wal_syncs, 1, "{ops:#?}");
    assert_eq!(disk.stats().wal_syncs, 1);
    assert_eq!(disk.stats().entries_written, 1);
    assert_eq!(disk.stats().snapshots_saved, 1);
}

#[test]
fn an_entry_too_large_to_read_back_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut disk, _) = open(tmp.path());
    let mut big = e(2, 1);
    big.data = Bytes::from(vec![0u8; codec::DECODE_LIMIT]);
    let err = disk
        .save(Batch {
            hard_state: Some(hs(1, None, 0)),
            entries: &[e(1, 1), big],
            must_sync: true,
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        matches!(err, StorageError::EntryTooLarge { index: 2, .. }),
        "{err}"
    );
    disk.close().unwrap();
    assert!(open(tmp.path()).1.fresh);
}
