//! Model test: random saves, crashes in the middle of a save, corruptions, removals and purges,
//! checked against a model of what was saved completely and not damaged since.
//!
//! After every operation:
//! - `list` is exactly the model's snapshots, newest first;
//! - no temporary file survives a reopen;
//! - `load_newest_of(candidates)` returns the newest candidate that the model saved completely and
//!   that was not corrupted since, with its exact metadata and data; and when no candidate is
//!   valid, an error that names every candidate tried.
//!
//! Crashes are simulated, not real (a writer forgotten mid-save, a temporary file left in any
//! state, then a reopen), so syncing is off.
//!
//! Cases: 64 by default; set `PROPTEST_CASES` (read by proptest itself) for more, e.g.
//! `PROPTEST_CASES=5000 cargo test -p raftwood-snap --test model`.

// Helpers outside `#[test]` functions are test code too (see clippy.toml).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use raftwood_snap::id::TMP_SUFFIX;
use raftwood_snap::{Error, Options, SnapshotId, Store, format};

/// What the model knows of one file: its contents, and whether they are still intact.
#[derive(Clone, Debug)]
struct Entry {
    metadata: Vec<u8>,
    data: Vec<u8>,
    intact: bool,
}

#[derive(Clone, Debug)]
enum Damage {
    /// XOR one byte with a non-zero mask (a burst of at most 8 bits: CRC-32 always catches it).
    Flip { at: Index, mask: u8 },
    /// Cut the file to a strictly shorter length.
    Truncate { to: Index },
    /// Append bytes.
    Append { bytes: Vec<u8> },
    /// Replace the file with a valid file of another snapshot (a swapped or renamed file).
    Swap,
}

#[derive(Clone, Debug)]
enum Op {
    Save {
        id: SnapshotId,
        metadata: Vec<u8>,
        data: Vec<u8>,
    },
    /// A crash while the writer is streaming: some data written, maybe flushed, never committed.
    CrashInWriter {
        id: SnapshotId,
        data: Vec<u8>,
        written: Index,
        flush: bool,
    },
    /// A crash that left a temporary file in any state: any prefix of a valid file, or the
    /// whole of it (crash between fsync and rename), or random bytes.
    CrashWithTemp {
        id: SnapshotId,
        cut: Index,
        garbage: Option<Vec<u8>>,
    },
    Reopen,
    Corrupt {
        pick: Index,
        damage: Damage,
    },
    Remove {
        pick: Index,
    },
    Purge {
        keep: usize,
    },
}

fn snapshot_id() -> impl Strategy<Value = SnapshotId> {
    (1..12u64, 1..4u64).prop_map(|(index, term)| SnapshotId { index, term })
}

/// Candidates may name index 0 ("no snapshot") and ids that were never saved.
fn candidate_id() -> impl Strategy<Value = SnapshotId> {
    (0..13u64, 0..4u64).prop_map(|(index, term)| SnapshotId { index, term })
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<Index>(), 1..=255u8).prop_map(|(at, mask)| Damage::Flip { at, mask }),
        any::<Index>().prop_map(|to| Damage::Truncate { to }),
        prop::collection::vec(any::<u8>(), 1..20).prop_map(|bytes| Damage::Append { bytes }),
        Just(Damage::Swap),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (snapshot_id(), bytes(16), bytes(200))
            .prop_map(|(id, metadata, data)| Op::Save { id, metadata, data }),
        2 => (snapshot_id(), bytes(300), any::<Index>(), any::<bool>())
            .prop_map(|(id, data, written, flush)| Op::CrashInWriter { id, data, written, flush }),
        2 => (snapshot_id(), any::<Index>(), prop::option::of(bytes(100)))
            .prop_map(|(id, cut, garbage)| Op::CrashWithTemp { id, cut, garbage }),
        1 => Just(Op::Reopen),
        3 => (any::<Index>(), damage()).prop_map(|(pick, damage)| Op::Corrupt { pick, damage }),
        1 => any::<Index>().prop_map(|pick| Op::Remove { pick }),
        1 => (0..4usize).prop_map(|keep| Op::Purge { keep }),
    ]
}

fn open(dir: &Path) -> Store {
    Store::open_with(
        dir,
        Options {
            sync: false,
            ..Options::default()
        },
    )
    .unwrap()
}

/// Applies `op` to the store and the model.
fn apply(dir: &Path, store: &mut Store, model: &mut BTreeMap<SnapshotId, Entry>, op: &Op) {
    match op {
        Op::Save { id, metadata, data } => {
            store.save(*id, metadata, &data[..]).unwrap();
            model.insert(
                *id,
                Entry {
                    metadata: metadata.clone(),
                    data: data.clone(),
                    intact: true,
                },
            );
        }
        Op::CrashInWriter {
            id,
            data,
            written,
            flush,
        } => {
            let mut w = store.create(*id, b"meta").unwrap();
            let n = if data.is_empty() {
                0
            } else {
                written.index(data.len())
            };
            w.write_all(&data[..n]).unwrap();
            if *flush {
                w.flush().unwrap();
            }
            // The process dies: no commit, no drop.
            std::mem::forget(w);
            *store = open(dir);
        }
        Op::CrashWithTemp { id, cut, garbage } => {
            let bytes = match garbage {
                Some(g) => g.clone(),
                None => {
                    let full = format::encode_to_vec(*id, b"meta", b"data that never made it");
                    let len = cut.index(full.len() + 1);
                    full[..len].to_vec()
                }
            };
            let tmp = dir.join(format!("{}.9{TMP_SUFFIX}", id.file_name()));
            std::fs::write(tmp, bytes).unwrap();
            *store = open(dir);
        }
        Op::Reopen => *store = open(dir),
        Op::Corrupt { pick, damage } => {
            // Only intact files: a second damage could undo the first (flip the same bit back,
            // truncate away exactly what was appended), which the model would not know.
            let intact: Vec<SnapshotId> = model
                .iter()
                .filter(|(_, e)| e.intact)
                .map(|(id, _)| *id)
                .collect();
            if intact.is_empty() {
                return;
            }
            let id = intact[pick.index(intact.len())];
            let path = store.path_of(id);
            let mut b = std::fs::read(&path).unwrap();
            match damage {
                Damage::Flip { at, mask } => {
                    let i = at.index(b.len());
                    b[i] ^= mask;
                }
                Damage::Truncate { to } => b.truncate(to.index(b.len())),
                Damage::Append { bytes } => b.extend_from_slice(bytes),
                Damage::Swap => {
                    let other = SnapshotId {
                        index: id.index + 1,
                        term: id.term,
                    };
                    let e = &model[&id];
                    b = format::encode_to_vec(other, &e.metadata, &e.data);
                }
            }
            std::fs::write(&path, b).unwrap();
            model.get_mut(&id).unwrap().intact = false;
        }
        Op::Remove { pick } => {
            if model.is_empty() {
                return;
            }
            let id = *model.keys().nth(pick.index(model.len())).unwrap();
            assert!(store.remove(id).unwrap());
            model.remove(&id);
        }
        Op::Purge { keep } => {
            let expected: Vec<SnapshotId> = model.keys().rev().skip(*keep).copied().collect();
            assert_eq!(store.purge(*keep).unwrap(), expected);
            for id in expected {
                model.remove(&id);
            }
        }
    }
}

/// Checks the store against the model.
fn check(
    dir: &Path,
    store: &Store,
    model: &BTreeMap<SnapshotId, Entry>,
    candidate_sets: &[Vec<SnapshotId>],
) {
    let listed = store.list().unwrap();
    let expected: Vec<SnapshotId> = model.keys().rev().copied().collect();
    assert_eq!(listed, expected, "list");

    for name in std::fs::read_dir(dir).unwrap() {
        let name = name.unwrap().file_name().into_string().unwrap();
        assert!(
            !name.ends_with(TMP_SUFFIX),
            "temporary file {name} survived"
        );
    }

    let all_marked: Vec<SnapshotId> = model.keys().copied().collect();
    for candidates in candidate_sets.iter().chain([&all_marked]) {
        let mut named: Vec<SnapshotId> = candidates
            .iter()
            .copied()
            .filter(|id| id.index > 0)
            .collect();
        named.sort();
        named.dedup();
        let want = named
            .iter()
            .rev()
            .find(|id| model.get(id).is_some_and(|e| e.intact));
        match (store.load_newest_of(candidates.iter().copied()), want) {
            (Ok(Some(snap)), Some(id)) => {
                assert_eq!(snap.id, *id);
                assert_eq!(snap.metadata, model[id].metadata);
                assert_eq!(snap.data, model[id].data);
            }
            (Ok(None), None) => assert!(named.is_empty(), "None despite candidates {named:?}"),
            (Err(Error::NoValidSnapshot { tried }), None) => {
                assert_eq!(tried.len(), named.len());
                let msg = Error::NoValidSnapshot { tried }.to_string();
                for id in &named {
                    assert!(msg.contains(&id.file_name()), "{msg} lacks {id}");
                }
            }
            (got, want) => panic!("load_newest_of({candidates:?}) = {got:?}, model wants {want:?}"),
        }
    }
}

fn config() -> ProptestConfig {
    if std::env::var_os("PROPTEST_CASES").is_some() {
        // proptest's default config reads PROPTEST_CASES itself.
        ProptestConfig::default()
    } else {
        ProptestConfig::with_cases(64)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn load_newest_of_returns_newest_intact_candidate(
        ops in prop::collection::vec(op(), 1..40),
        candidate_sets in prop::collection::vec(prop::collection::vec(candidate_id(), 0..6), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let mut model = BTreeMap::new();
        for op in &ops {
            apply(dir.path(), &mut store, &mut model, op);
            check(dir.path(), &store, &model, &candidate_sets);
        }
    }
}
