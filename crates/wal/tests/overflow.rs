//! Numbers read from the disk that leave no room for the next one (issue 9, item 5): a segment
//! whose sequence number is `u64::MAX`, and an entry at index `u64::MAX`. Each used to panic on a
//! `+ 1` when the log rotated; now the rotation is refused with [`Error::Overflow`], nothing is
//! written, and the log is not poisoned.

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

mod common;

use common::{indexes, open, opts, segment_files};
use raftwood_wal::format::{SegmentHeader, segment_name};
use raftwood_wal::{Error, Wal};

#[test]
fn a_segment_with_the_last_sequence_number_refuses_to_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let header = SegmentHeader {
        seq: u64::MAX,
        first_index: 0,
        salt: 7,
    };
    let path = dir.path().join(segment_name(u64::MAX, 0));
    std::fs::write(&path, header.encode()).unwrap();
    // A tiny segment size: the first record of the first batch starts a new segment.
    let (mut wal, _) = open(dir.path(), opts(1));
    match wal.append_entry(1, b"a") {
        Err(Error::Overflow {
            path: p,
            what: "segment sequence number",
            value: u64::MAX,
        }) => assert_eq!(p, path),
        other => panic!("expected an overflow error, got {other:?}"),
    }
    assert_eq!(segment_files(dir.path()), [path]);
    // Refused before anything was written: the log is not poisoned, but it cannot grow either.
    assert!(matches!(wal.sync(), Ok(())));
}

#[test]
fn an_entry_at_the_last_index_refuses_to_name_the_next_segment() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = open(dir.path(), opts(1 << 20));
        wal.append_entry(u64::MAX, b"last").unwrap();
        wal.sync().unwrap();
    }
    // Reopened from disk with a segment already full: a batch without an entry needs
    // "one past the highest index" to name the next segment.
    let (mut wal, replay) = open(dir.path(), opts(1));
    assert_eq!(indexes(&replay), [u64::MAX]);
    assert!(matches!(
        wal.append_state(b"hard state"),
        Err(Error::Overflow {
            what: "entry index",
            value: u64::MAX,
            ..
        })
    ));
    // A batch that starts with an entry names the segment after that entry instead.
    wal.append_entry(3, b"overwrite").unwrap();
    wal.sync().unwrap();
    drop(wal);
    assert_eq!(indexes(&Wal::open(dir.path(), opts(1)).unwrap().1), [3]);
}
