//! Cuts a real log at every byte offset of its newest segment (a crash at any moment of the last
//! batches' writes) and reopens it each time: the log must open and hold exactly the batches that
//! were whole before the cut, and the cut must leave a log that opens cleanly a second time.

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;

use common::{copy_dir, indexes, open, opts, segment_files};
use raftwood_wal::format::HEADER_LEN;
use raftwood_wal::{Marker, Replay};

const SEGMENT_SIZE: u64 = 1500;

/// What replay should hold after the first `n` batches.
fn expected(n: usize) -> (Vec<u64>, Option<Vec<u8>>, Vec<Marker>) {
    let mut entries = Vec::new();
    let mut state = None;
    let mut markers = Vec::new();
    for b in 0..n as u64 {
        let (first, count) = batch_shape(b);
        entries.retain(|&i| i < first);
        entries.extend(first..first + count);
        state = Some(format!("state after batch {b}").into_bytes());
        if b % 4 == 3 {
            markers.push(Marker {
                index: first,
                term: b,
            });
        }
    }
    (entries, state, markers)
}

/// Batch `b` writes `count` entries from `first`; every fifth batch overwrites two entries back.
fn batch_shape(b: u64) -> (u64, u64) {
    let first = 1 + b * 3;
    if b % 5 == 4 {
        (first - 2, 3)
    } else {
        (first, 3)
    }
}

#[test]
fn every_cut_of_the_newest_segment_opens_to_a_prefix_of_batches() {
    let source = tempfile::tempdir().unwrap();
    let batches = 40;
    let mut ends = Vec::new(); // (segment path, offset where batch b ends)
    {
        let (mut wal, _) = open(source.path(), opts(SEGMENT_SIZE));
        for b in 0..batches {
            let (first, count) = batch_shape(b);
            for i in first..first + count {
                wal.append_entry(i, format!("entry {i} of batch {b}").as_bytes())
                    .unwrap();
            }
            wal.append_state(format!("state after batch {b}").as_bytes())
                .unwrap();
            if b % 4 == 3 {
                wal.append_marker(Marker {
                    index: first,
                    term: b,
                })
                .unwrap();
            }
            wal.sync().unwrap();
            let active = wal.active_segment();
            ends.push((active.path, active.committed_len));
        }
    }
    let newest = segment_files(source.path()).pop().unwrap();
    let full_len = std::fs::metadata(&newest).unwrap().len();
    let in_newest: Vec<(usize, u64)> = ends
        .iter()
        .enumerate()
        .filter(|(_, (p, _))| *p == newest)
        .map(|(b, (_, end))| (b, *end))
        .collect();
    assert!(
        in_newest.len() >= 3,
        "the newest segment should hold several batches"
    );
    let first_in_newest = in_newest[0].0;

    for cut in HEADER_LEN as u64..=full_len {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(source.path(), dir.path());
        let path = dir.path().join(newest.file_name().unwrap());
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut)
            .unwrap();

        // Batches before the newest segment, plus those of the newest wholly before the cut.
        let whole = first_in_newest + in_newest.iter().filter(|(_, end)| *end <= cut).count();
        let (entries, state, markers) = expected(whole);
        let check = |replay: &Replay, when: &str| {
            assert_eq!(indexes(replay), entries, "cut at {cut}, {when}");
            assert_eq!(
                replay.state.as_deref(),
                state.as_deref(),
                "cut at {cut}, {when}"
            );
            assert_eq!(replay.markers, markers, "cut at {cut}, {when}");
        };
        let (wal, replay) = open(dir.path(), opts(SEGMENT_SIZE));
        check(&replay, "first open");
        drop(wal);
        let (_, replay) = open(dir.path(), opts(SEGMENT_SIZE));
        check(&replay, "second open");
    }
}
