//! The shape of a raft node's use of the WAL, through a crash: entries carry their term in their
//! bytes, the hard state is opaque bytes, snapshots are marked and released. The node crate will
//! hold the real mapping; this shows it comes out small.

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;

use common::opts;
use raftwood_wal::{Marker, Replay, Wal};

/// A raft-like entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RaftEntry {
    index: u64,
    term: u64,
    data: Vec<u8>,
}

/// A raft-like hard state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HardState {
    term: u64,
    vote: u64,
    commit: u64,
}

fn save(wal: &mut Wal, hard_state: HardState, entries: &[RaftEntry]) {
    for e in entries {
        wal.append_entry(e.index, &[&e.term.to_le_bytes()[..], &e.data].concat())
            .unwrap();
    }
    let hs: Vec<u8> = [hard_state.term, hard_state.vote, hard_state.commit]
        .iter()
        .flat_map(|n| n.to_le_bytes())
        .collect();
    wal.append_state(&hs).unwrap();
    wal.sync().unwrap(); // one fsync for the whole Ready
}

fn load(replay: &Replay, snapshot_index: u64) -> (Option<HardState>, Vec<RaftEntry>) {
    let word = |b: &[u8], i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
    let hs = replay.state.as_ref().map(|b| HardState {
        term: word(b, 0),
        vote: word(b, 1),
        commit: word(b, 2),
    });
    let entries = replay
        .entries_after(snapshot_index)
        .iter()
        .map(|e| RaftEntry {
            index: e.index,
            term: word(&e.data, 0),
            data: e.data[8..].to_vec(),
        })
        .collect();
    (hs, entries)
}

fn entry(index: u64, term: u64) -> RaftEntry {
    RaftEntry {
        index,
        term,
        data: format!("put k{index}").into_bytes(),
    }
}

#[test]
fn a_node_gets_back_its_hard_state_snapshot_and_entries_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(dir.path(), opts(512)).unwrap();
        save(
            &mut wal,
            HardState {
                term: 1,
                vote: 1,
                commit: 0,
            },
            &(1..=10).map(|i| entry(i, 1)).collect::<Vec<_>>(),
        );
        // A new leader in term 2 overwrites from index 8.
        save(
            &mut wal,
            HardState {
                term: 2,
                vote: 2,
                commit: 7,
            },
            &(8..=12).map(|i| entry(i, 2)).collect::<Vec<_>>(),
        );
        // Snapshot at 7 saved by the node; mark it, then release what it covers.
        wal.append_marker(Marker { index: 7, term: 1 }).unwrap();
        wal.sync().unwrap();
        wal.release(7).unwrap();
        // The next Ready is cut short by a crash: it never reached fdatasync.
        save(
            &mut wal,
            HardState {
                term: 2,
                vote: 2,
                commit: 12,
            },
            &[entry(13, 2)],
        );
        let active = wal.active_segment();
        let file = OpenOptions::new().write(true).open(&active.path).unwrap();
        drop(wal);
        // The last batch's final bytes never made it.
        file.set_len(active.committed_len - 5).unwrap();
    }
    let (_wal, replay) = Wal::open(dir.path(), opts(512)).unwrap();
    let snapshot = replay.last_marker().unwrap();
    assert_eq!(snapshot, Marker { index: 7, term: 1 });
    let (hs, entries) = load(&replay, snapshot.index);
    assert_eq!(
        hs,
        Some(HardState {
            term: 2,
            vote: 2,
            commit: 7
        })
    );
    assert_eq!(entries, (8..=12).map(|i| entry(i, 2)).collect::<Vec<_>>());
}
