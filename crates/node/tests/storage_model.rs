//! A model test of the node's storage: a random sequence of saves (entries with overwrites,
//! hard states synced or not, local snapshots, snapshots from a leader over a conflicting log,
//! purges), graceful restarts and crashes; after every reopen the rebuilt `MemStorage` equals an
//! in-memory model driven by the same steps (after a crash: the model as of the last sync).
//!
//! Cases: 64 by default; more with `RAFTWOOD_PROPTEST_CASES=1000`.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use proptest::prelude::*;
use raftwood_node::storage::{Batch, DiskStorage, Restored, StorageOptions};
use raftwood_raft::{ConfState, Entry, MemStorage, Snapshot, SnapshotMetadata, Storage};

#[derive(Clone, Debug)]
enum Op {
    /// Entries from a position in `[commit + 1, last + 1]` (an overwrite unless at the end),
    /// by the current leader or a new one.
    Append {
        at: u64,
        count: u64,
        new_term: bool,
        sync: bool,
    },
    /// The commit index moves forward (a hard state alone; raft lets it go unsynced).
    Commit { by: u64, sync: bool },
    /// The node snapshots its state machine at its commit index.
    LocalSnapshot,
    /// A leader of a new term sends a snapshot `ahead` past the commit index.
    ReceivedSnapshot { ahead: u64 },
    /// Snapshots purged and WAL segments released.
    Purge,
    /// Graceful stop and restart.
    Restart,
    /// A crash: what no sync covered is lost.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u64>(), 1..4u64, prop::bool::weighted(0.2), any::<bool>())
            .prop_map(|(at, count, new_term, sync)| Op::Append { at, count, new_term, sync }),
        3 => (1..4u64, any::<bool>()).prop_map(|(by, sync)| Op::Commit { by, sync }),
        1 => Just(Op::LocalSnapshot),
        1 => (1..6u64).prop_map(|ahead| Op::ReceivedSnapshot { ahead }),
        1 => Just(Op::Purge),
        1 => Just(Op::Restart),
        1 => Just(Op::Crash),
    ]
}

const VOTERS: [u64; 3] = [1, 2, 3];

fn options() -> StorageOptions {
    StorageOptions {
        bootstrap_voters: VOTERS.to_vec(),
        wal_segment_size: 512,
        fsync: false,
        ..StorageOptions::default()
    }
}

fn snapshot(index: u64, term: u64) -> Snapshot {
    Snapshot {
        metadata: SnapshotMetadata {
            index,
            term,
            conf_state: ConfState {
                voters: VOTERS.to_vec(),
            },
        },
        data: Bytes::from(format!("state at {index}@{term}")),
    }
}

fn all_entries(s: &MemStorage) -> Vec<Entry> {
    let (first, last) = (s.first_index().unwrap(), s.last_index().unwrap());
    s.entries(first, last + 1, u64::MAX).unwrap()
}

fn check(restored: &Restored, model: &MemStorage) -> Result<(), TestCaseError> {
    let got = &restored.storage;
    prop_assert_eq!(got.hard_state(), model.hard_state());
    prop_assert_eq!(restored.hard_state, model.hard_state());
    prop_assert_eq!(got.first_index(), model.first_index());
    prop_assert_eq!(got.last_index(), model.last_index());
    prop_assert_eq!(all_entries(got), all_entries(model));
    prop_assert_eq!(got.snapshot(), model.snapshot());
    prop_assert_eq!(got.initial_state(), model.initial_state());
    let snap = model.snapshot().unwrap();
    prop_assert_eq!(
        restored.snapshot.clone(),
        (snap.metadata.index > 0).then_some(snap)
    );
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let (mut disk, restored) = DiskStorage::open(tmp.path(), options()).unwrap();
    prop_assert!(restored.fresh);
    let mut model = restored.storage;
    let mut durable = model.clone();
    let mut entry_seq = 0u64;
    for op in ops {
        let mut hs = model.hard_state();
        let (commit, last) = (hs.commit, model.last_index().unwrap());
        match op {
            Op::Append {
                at,
                count,
                new_term,
                sync,
            } => {
                if new_term || hs.term == 0 {
                    hs.term += 1;
                    hs.vote = None;
                }
                let start = commit + 1 + at % (last - commit + 1);
                let entries: Vec<Entry> = (start..start + count)
                    .map(|index| {
                        entry_seq += 1;
                        Entry {
                            index,
                            term: hs.term,
                            data: Bytes::from(format!("entry {entry_seq}")),
                            ..Default::default()
                        }
                    })
                    .collect();
                disk.save(Batch {
                    hard_state: Some(hs),
                    entries: &entries,
                    must_sync: sync,
                    ..Default::default()
                })
                .unwrap();
                model.append(&entries);
                model.set_hard_state(hs);
                if sync {
                    durable = model.clone();
                }
            }
            Op::Commit { by, sync } => {
                hs.commit = (commit + by).min(last);
                disk.save(Batch {
                    hard_state: Some(hs),
                    must_sync: sync,
                    ..Default::default()
                })
                .unwrap();
                model.set_hard_state(hs);
                if sync {
                    durable = model.clone();
                }
            }
            Op::LocalSnapshot => {
                let held = model.snapshot().unwrap().metadata.index;
                if commit > held {
                    let s = snapshot(commit, model.term(commit).unwrap());
                    disk.record_local_snapshot(&s).unwrap();
                    let made = model
                        .create_snapshot(commit, s.metadata.conf_state.clone(), s.data.clone())
                        .unwrap();
                    prop_assert_eq!(&made, &s);
                    model.compact(commit).unwrap();
                    durable = model.clone(); // it synced
                }
            }
            Op::ReceivedSnapshot { ahead } => {
                hs.term += 1;
                hs.vote = None;
                hs.commit = commit + ahead;
                let s = snapshot(hs.commit, hs.term);
                disk.save_snap(&s).unwrap();
                disk.save(Batch {
                    snapshot: Some(&s),
                    hard_state: Some(hs),
                    entries: &[],
                    must_sync: true,
                })
                .unwrap();
                model.apply_snapshot(s).unwrap();
                model.set_hard_state(hs);
                durable = model.clone();
            }
            Op::Purge => {
                disk.purge(2).unwrap();
                durable = model.clone(); // it synced first
            }
            Op::Restart | Op::Crash => {
                if matches!(op, Op::Restart) {
                    disk.close().unwrap();
                    durable = model.clone();
                } else {
                    drop(disk);
                    model = durable.clone();
                }
                let (reopened, restored) = DiskStorage::open(tmp.path(), options()).unwrap();
                check(&restored, &model)?;
                disk = reopened;
                model = restored.storage;
            }
        }
    }
    disk.close().unwrap();
    let (_disk, restored) = DiskStorage::open(tmp.path(), options()).unwrap();
    check(&restored, &model)
}

fn cases() -> u32 {
    std::env::var("RAFTWOOD_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn reopen_equals_the_model(ops in prop::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
