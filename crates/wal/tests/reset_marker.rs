//! The log-resetting snapshot marker (issue 9, item 7): "the log now starts after this snapshot".
//! Replay drops every entry and marker written before it, at any index, and keeps what follows
//! it, in the order records were written, across batches and segments.
//!
//! Each test fails without the fix in the way its comment says: a plain marker (all there was)
//! leaves the stale entries and the older markers in place.

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

mod common;

use common::{indexes, open, opts};
use raftwood_wal::Marker;

const TERM_1: &[u8] = b"term 1";
const TERM_3: &[u8] = b"term 3";

/// A follower holds entries 1..=120 of term 1, of which only 1..=60 were committed; the leader
/// (term 3) sends a snapshot at 80 whose history differs from 61 on. The follower saves it and
/// marks it with a log-resetting marker; after a restart none of its stale entries may come back
/// (with a plain marker, 81..=120 of term 1 did, and could make it grant a vote it must refuse).
#[test]
fn a_snapshot_installed_over_a_conflicting_log_survives_a_restart_without_the_stale_entries() {
    let dir = tempfile::tempdir().unwrap();
    let reset = Marker { index: 80, term: 3 };
    {
        let (mut wal, _) = open(dir.path(), opts(2048));
        for i in 1..=120 {
            wal.append_entry(i, TERM_1).unwrap();
            if i % 10 == 0 {
                wal.sync().unwrap();
            }
        }
        assert!(
            wal.segment_paths().len() > 1,
            "the stale log spans segments"
        );
        wal.append_state(b"term=3 vote=none commit=80").unwrap();
        wal.append_reset_marker(reset).unwrap();
        wal.sync().unwrap();
        assert_eq!(wal.last_index(), None);
    }
    let (mut wal, replay) = open(dir.path(), opts(2048));
    assert!(replay.entries.is_empty(), "{:?}", indexes(&replay));
    assert!(replay.entries_after(80).is_empty());
    assert_eq!(replay.markers, [reset]);
    assert_eq!(replay.reset, Some(reset));
    assert_eq!(wal.last_index(), None);

    // The log continues after the snapshot; a later restart keeps exactly that.
    for i in 81..=83 {
        wal.append_entry(i, TERM_3).unwrap();
    }
    wal.sync().unwrap();
    drop(wal);
    let (_, replay) = open(dir.path(), opts(2048));
    assert_eq!(indexes(&replay), [81, 82, 83]);
    assert!(replay.entries.iter().all(|e| &e.data[..] == TERM_3));
    assert_eq!(
        replay.state.as_deref(),
        Some(&b"term=3 vote=none commit=80"[..])
    );
}

/// Replay follows the order of records, not their indexes: entries staged before the reset in the
/// same batch go, entries after it stay, whatever their index.
#[test]
fn replay_honours_the_order_of_markers_and_entries() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = open(dir.path(), opts(1 << 20));
        wal.append_entry(100, TERM_1).unwrap();
        wal.append_entry(101, TERM_1).unwrap();
        wal.append_reset_marker(Marker { index: 50, term: 3 })
            .unwrap();
        wal.append_entry(51, TERM_3).unwrap();
        wal.sync().unwrap();
        wal.append_marker(Marker { index: 51, term: 3 }).unwrap();
        wal.append_entry(52, TERM_3).unwrap();
        wal.sync().unwrap();
    }
    let (_, replay) = open(dir.path(), opts(1 << 20));
    assert_eq!(indexes(&replay), [51, 52]);
    assert_eq!(
        replay.markers,
        [Marker { index: 50, term: 3 }, Marker { index: 51, term: 3 }]
    );
}

/// The fallback rule: an older snapshot is a valid fallback only if no log-resetting marker
/// follows it, since the reset may have dropped the entries it needs. Replay reports only those,
/// so a node that passes `replay.markers` to the snapshot store's `load_newest_of` never falls
/// back past a reset. Markers after the reset are fallbacks as usual.
#[test]
fn markers_before_a_reset_are_no_longer_fallbacks() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = open(dir.path(), opts(1 << 20));
        wal.append_marker(Marker { index: 10, term: 1 }).unwrap();
        wal.append_marker(Marker { index: 90, term: 1 }).unwrap();
        wal.sync().unwrap();
        wal.append_reset_marker(Marker { index: 50, term: 2 })
            .unwrap();
        wal.sync().unwrap();
        wal.append_marker(Marker { index: 60, term: 2 }).unwrap();
        wal.sync().unwrap();
    }
    let (_, replay) = open(dir.path(), opts(1 << 20));
    assert_eq!(
        replay.markers,
        [Marker { index: 50, term: 2 }, Marker { index: 60, term: 2 }]
    );
    assert_eq!(replay.last_marker(), Some(Marker { index: 60, term: 2 }));
}

/// A reset that is not synced is not applied: a crash before its batch's commit record keeps the
/// old log (the snapshot file may exist; without its marker it is an orphan).
#[test]
fn an_unsynced_reset_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = open(dir.path(), opts(1 << 20));
        wal.append_entry(1, TERM_1).unwrap();
        wal.append_marker(Marker { index: 1, term: 1 }).unwrap();
        wal.sync().unwrap();
        wal.append_reset_marker(Marker { index: 5, term: 2 })
            .unwrap();
        wal.write_staged().unwrap();
    }
    let (_, replay) = open(dir.path(), opts(1 << 20));
    assert_eq!(indexes(&replay), [1]);
    assert_eq!(replay.markers, [Marker { index: 1, term: 1 }]);
    assert_eq!(replay.reset, None);
}

/// After a reset with no entry after it, a rotation names the new segment one past the reset's
/// index, and releasing below the reset keeps its effect: the segments holding stale entries go
/// first (prefix order), never leaving the reset behind without them.
#[test]
fn rotation_and_release_after_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = open(dir.path(), opts(200));
        for i in 1..=10 {
            wal.append_entry(i, &[1; 40]).unwrap();
            wal.sync().unwrap();
        }
        wal.append_reset_marker(Marker { index: 5, term: 2 })
            .unwrap();
        wal.sync().unwrap();
    }
    {
        // Reopened with every batch starting a segment: the log's "next index" comes from the
        // reset read back from disk.
        let (mut wal, _) = open(dir.path(), opts(1));
        wal.append_state(b"hs").unwrap();
        wal.sync().unwrap();
        let newest = wal.segment_paths().pop().unwrap();
        let name = newest.file_name().unwrap().to_str().unwrap();
        assert!(name.ends_with("-0000000000000006.wal"), "{name}");
        assert!(wal.release(5).unwrap() > 0);
    }
    let (_, replay) = open(dir.path(), opts(200));
    assert!(replay.entries.is_empty(), "{:?}", indexes(&replay));
    assert_eq!(replay.reset, Some(Marker { index: 5, term: 2 }));
}
