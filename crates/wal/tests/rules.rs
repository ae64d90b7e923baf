//! One test per rule of the WAL: what comes back after reopening, overwrites, markers, rotation,
//! release, torn tails, the recovery mode, the lock and leftover files.

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;
use std::io::Write;

use common::{indexes, open, opts, segment_files};
use raftwood_wal::format::{HEADER_LEN, parse_segment_name};
use raftwood_wal::{Error, Marker, Options, RecoveryMode, Wal};

#[test]
fn synced_records_come_back_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, replay) = Wal::open(dir.path(), Options::default()).unwrap();
        assert_eq!(replay, Default::default());
        wal.append_entry(1, b"one").unwrap();
        wal.append_state(b"old").unwrap();
        wal.append_entry(2, b"two").unwrap();
        wal.append_state(b"new").unwrap();
        wal.append_marker(Marker { index: 1, term: 1 }).unwrap();
        wal.sync().unwrap();
    }
    let (wal, replay) = Wal::open(dir.path(), Options::default()).unwrap();
    assert_eq!(indexes(&replay), [1, 2]);
    assert_eq!(&replay.entries[1].data[..], b"two");
    assert_eq!(replay.state.as_deref(), Some(&b"new"[..]));
    assert_eq!(replay.markers, [Marker { index: 1, term: 1 }]);
    assert_eq!(wal.last_index(), Some(2));
}

#[test]
fn an_entry_overwrites_everything_from_its_index() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = open(dir.path(), opts(256));
        for i in 1..=20 {
            wal.append_entry(i, b"first term").unwrap();
            wal.sync().unwrap();
        }
        assert!(
            wal.segment_paths().len() > 2,
            "the overwrite should cross segments"
        );
        wal.append_entry(5, b"second term").unwrap();
        wal.append_entry(6, b"second term").unwrap();
        wal.sync().unwrap();
        assert_eq!(wal.last_index(), Some(6));
    }
    let (_, replay) = open(dir.path(), opts(256));
    assert_eq!(indexes(&replay), [1, 2, 3, 4, 5, 6]);
    assert_eq!(&replay.entries[4].data[..], b"second term");
    assert_eq!(&replay.entries[3].data[..], b"first term");
}

#[test]
fn entries_may_leave_gaps_and_entries_after_skips_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = open(dir.path(), opts(1 << 20));
        wal.append_entry(1, b"a").unwrap();
        wal.append_entry(2, b"b").unwrap();
        // A follower that installed a snapshot at 10 continues at 11.
        wal.append_marker(Marker { index: 10, term: 3 }).unwrap();
        wal.append_entry(11, b"c").unwrap();
        wal.sync().unwrap();
    }
    let (_, replay) = open(dir.path(), opts(1 << 20));
    assert_eq!(indexes(&replay), [1, 2, 11]);
    let after: Vec<u64> = replay.entries_after(10).iter().map(|e| e.index).collect();
    assert_eq!(after, [11]);
}

#[test]
fn markers_are_reported_sorted_and_once() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = open(dir.path(), opts(1 << 20));
        for (index, term) in [(7, 2), (3, 1), (7, 2), (5, 1)] {
            wal.append_marker(Marker { index, term }).unwrap();
            wal.sync().unwrap();
        }
    }
    let (_, replay) = open(dir.path(), opts(1 << 20));
    let got: Vec<(u64, u64)> = replay.markers.iter().map(|m| (m.index, m.term)).collect();
    assert_eq!(got, [(3, 1), (5, 1), (7, 2)]);
}

#[test]
fn records_not_synced_are_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = open(dir.path(), opts(1 << 20));
        wal.append_entry(1, b"durable").unwrap();
        wal.sync().unwrap();
        wal.append_entry(2, b"staged only").unwrap();
    }
    let (_, replay) = open(dir.path(), opts(1 << 20));
    assert_eq!(indexes(&replay), [1]);
}

#[test]
fn segments_rotate_with_sortable_names_and_complete_headers() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path(), opts(200));
    wal.append_state(b"hs").unwrap();
    for i in 1..=30 {
        wal.append_entry(i, &[i as u8; 40]).unwrap();
        wal.sync().unwrap();
    }
    let files = segment_files(dir.path());
    assert_eq!(files, wal.segment_paths());
    assert!(files.len() > 5);
    for (seq, path) in files.iter().enumerate() {
        let name = path.file_name().unwrap().to_str().unwrap();
        let (file_seq, first_index) = parse_segment_name(name).unwrap();
        assert_eq!(file_seq, seq as u64);
        let bytes = std::fs::read(path).unwrap();
        let header = raftwood_wal::decode::decode_header(&bytes).unwrap();
        assert_eq!((header.seq, header.first_index), (file_seq, first_index));
    }
    // A rotated segment starts with the batch that made it, so its name gives that batch's index.
    let (_, second_first) =
        parse_segment_name(files[1].file_name().unwrap().to_str().unwrap()).unwrap();
    assert!(second_first > 1);
}

#[test]
fn release_removes_only_segments_wholly_below_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path(), opts(200));
    wal.append_state(b"hard state").unwrap();
    for i in 1..=40 {
        wal.append_entry(i, &[0; 40]).unwrap();
        wal.sync().unwrap();
    }
    wal.append_marker(Marker { index: 30, term: 1 }).unwrap();
    wal.sync().unwrap();
    let before = wal.segment_paths().len();
    let removed = wal.release(30).unwrap();
    assert!(removed > 0 && removed < before);
    assert_eq!(segment_files(dir.path()), wal.segment_paths());
    drop(wal);

    let (mut wal, replay) = open(dir.path(), opts(200));
    let held = indexes(&replay);
    assert!(
        held.first().is_some_and(|&first| first <= 30),
        "entry 30 must be held: {held:?}"
    );
    assert_eq!(held.last(), Some(&40));
    assert!(held.windows(2).all(|w| w[1] == w[0] + 1));
    assert_eq!(
        replay.state.as_deref(),
        Some(&b"hard state"[..]),
        "state survives release"
    );
    assert_eq!(replay.markers, [Marker { index: 30, term: 1 }]);
    // Releasing past everything still keeps the active segment, and with it the state.
    wal.release(u64::MAX).unwrap();
    assert_eq!(wal.segment_paths().len(), 1);
    drop(wal);
    let (_, replay) = open(dir.path(), opts(200));
    assert_eq!(replay.state.as_deref(), Some(&b"hard state"[..]));
}

/// Writes a log holding entry 1 ("kept"), synced, then appends `tail` to its segment behind the
/// WAL's back (what a crash mid-write leaves). Returns the segment and its length before `tail`.
fn one_synced_entry_then(dir: &std::path::Path, tail: &[u8]) -> (std::path::PathBuf, u64) {
    {
        let (mut wal, _) = open(dir, opts(1 << 20));
        wal.append_entry(1, b"kept").unwrap();
        wal.sync().unwrap();
    }
    let path = segment_files(dir).pop().unwrap();
    let good_len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(tail)
        .unwrap();
    (path, good_len)
}

#[test]
fn a_torn_tail_is_truncated_and_the_log_opens() {
    for tail in [
        vec![0u8; 64],
        vec![0xAB; 5],
        b"\xde\xad\xbe\xef\x01\x00\x00\x00\x10\x00\x00\x00garbage".to_vec(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (path, good_len) = one_synced_entry_then(dir.path(), &tail);

        let (mut wal, replay) = open(dir.path(), opts(1 << 20));
        assert_eq!(indexes(&replay), [1]);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            good_len,
            "tail cut away"
        );
        wal.append_entry(2, b"after repair").unwrap();
        wal.sync().unwrap();
        drop(wal);
        assert_eq!(indexes(&open(dir.path(), opts(1 << 20)).1), [1, 2]);
    }
}

#[test]
fn absolute_consistency_refuses_a_torn_tail_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, good_len) = one_synced_entry_then(dir.path(), &[0; 10]);
    let strict = Options {
        recovery: RecoveryMode::AbsoluteConsistency,
        ..opts(1 << 20)
    };
    match Wal::open(dir.path(), strict) {
        Err(Error::Corrupt {
            path: p,
            offset,
            followed_by_commit: false,
            ..
        }) => {
            assert_eq!(p, path);
            assert_eq!(offset, good_len);
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len + 10);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), opts(1 << 20));
    assert!(matches!(
        Wal::open(dir.path(), opts(1 << 20)),
        Err(Error::Locked { .. })
    ));
    drop(wal);
    open(dir.path(), opts(1 << 20));
}

#[test]
fn leftover_temporary_segments_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), opts(1 << 20)));
    let temp = dir.path().join("0000000000000001-0000000000000001.wal.tmp");
    std::fs::write(&temp, b"half a segment").unwrap();
    drop(open(dir.path(), opts(1 << 20)));
    assert!(!temp.exists());
}

#[test]
fn a_crash_while_creating_the_first_segment_leaves_a_log_that_opens() {
    let dir = tempfile::tempdir().unwrap();
    let temp = dir.path().join("0000000000000000-0000000000000000.wal.tmp");
    std::fs::write(&temp, b"RWOOD").unwrap();
    let (mut wal, replay) = open(dir.path(), opts(1 << 20));
    assert_eq!(replay, Default::default());
    assert!(!temp.exists());
    wal.append_entry(1, b"a").unwrap();
    wal.sync().unwrap();
}

#[test]
fn a_missing_segment_in_the_middle_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = open(dir.path(), opts(100));
        for i in 1..=10 {
            wal.append_entry(i, &[0; 50]).unwrap();
            wal.sync().unwrap();
        }
    }
    let files = segment_files(dir.path());
    std::fs::remove_file(&files[1]).unwrap();
    match Wal::open(dir.path(), opts(100)) {
        Err(Error::MissingSegment {
            path,
            previous: 0,
            found: 2,
        }) => assert_eq!(path, files[2]),
        other => panic!("expected a missing segment, got {other:?}"),
    }
}

#[test]
fn a_damaged_header_is_corruption_even_in_the_newest_segment() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), opts(1 << 20)));
    let path = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[HEADER_LEN - 1] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    match Wal::open(dir.path(), opts(1 << 20)) {
        Err(Error::Corrupt {
            path: p, offset: 0, ..
        }) => assert_eq!(p, path),
        other => panic!("expected corruption at offset 0, got {other:?}"),
    }
}

#[test]
fn a_header_that_disagrees_with_its_file_name_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), opts(1 << 20)));
    let path = segment_files(dir.path()).pop().unwrap();
    let renamed = dir.path().join("0000000000000000-0000000000000005.wal");
    std::fs::rename(&path, &renamed).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), opts(1 << 20)),
        Err(Error::Corrupt { offset: 0, .. })
    ));
}

#[test]
fn a_record_over_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path(), opts(1 << 20));
    let huge = vec![0u8; raftwood_wal::format::MAX_PAYLOAD_LEN];
    assert!(matches!(
        wal.append_entry(1, &huge),
        Err(Error::RecordTooLarge { .. })
    ));
    // The refusal staged nothing and did not poison the log.
    wal.append_entry(1, b"fine").unwrap();
    wal.sync().unwrap();
}

#[test]
fn a_large_batch_is_flushed_early_and_still_commits_as_one() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = open(dir.path(), opts(64 << 20));
        for i in 1..=3000 {
            wal.append_entry(i, &[7; 1000]).unwrap();
        }
        let active = wal.active_segment();
        assert!(
            active.len > active.committed_len,
            "part of the batch was written before sync"
        );
    }
    // Never synced: the written part has no commit record, so it is a torn tail.
    assert!(indexes(&open(dir.path(), opts(64 << 20)).1).is_empty());
    let (mut wal, _) = open(dir.path(), opts(64 << 20));
    for i in 1..=3000 {
        wal.append_entry(i, &[7; 1000]).unwrap();
    }
    wal.sync().unwrap();
    drop(wal);
    assert_eq!(open(dir.path(), opts(64 << 20)).1.entries.len(), 3000);
}

#[test]
fn sync_with_nothing_staged_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), Options::default()).unwrap();
    let before = wal.active_segment();
    wal.sync().unwrap();
    assert_eq!(wal.active_segment(), before);
    assert_eq!(before.len, HEADER_LEN as u64);
}

/// Damage in the last, synced batch reads as a torn tail too (the inherent limit): the report
/// shows its frames and its commit frame still decoding, the sign that a whole batch went.
#[test]
fn damage_in_a_synced_last_batch_shows_its_intact_commit() {
    let dir = tempfile::tempdir().unwrap();
    let batch_start = {
        let (mut wal, _) = open(dir.path(), opts(1 << 20));
        wal.append_entry(1, b"kept").unwrap();
        wal.sync().unwrap();
        let batch_start = wal.active_segment().len as usize;
        wal.append_entry(2, b"synced, then damaged").unwrap();
        wal.sync().unwrap();
        batch_start
    };
    let path = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    // Change the entry's last byte and give its frame a matching crc: the frame decodes, the
    // batch checksum in the commit record no longer matches.
    let frame_end = bytes.len() - 32;
    bytes[frame_end - 1] ^= 1;
    let crc = crc32fast::hash(&bytes[batch_start + 4..frame_end]);
    bytes[batch_start..batch_start + 4].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let (_, replay) = open(dir.path(), opts(1 << 20));
    assert_eq!(indexes(&replay), [1]);
    let torn = replay.torn_tail.unwrap();
    assert_eq!(torn.offset, batch_start as u64);
    assert_eq!(
        (torn.intact_frames, torn.intact_commits, torn.intact_entries),
        (2, 1, 1)
    );
    assert_eq!(torn.intact_entry_range, Some((2, 2)));

    // A reopen of the repaired log reports nothing.
    assert_eq!(open(dir.path(), opts(1 << 20)).1.torn_tail, None);
}
