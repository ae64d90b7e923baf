//! The model test: random appends, overwrites, syncs, markers, log-resetting markers, releases,
//! reopenings and crashes, checked against a plain in-memory model of what the log must hold.
//!
//! A crash is simulated by cutting files, not by the OS, so `fsync` is off. A crash first puts the
//! batch being written into the file, either whole with its commit record (as if `sync` had reached
//! `write` but not `fdatasync`) or without it (as a batch over 1 MiB is written while staged); it
//! drops the `Wal`, then cuts the newest segment at any byte after the last completed sync, or
//! corrupts a byte there, or, when a segment was started since the last sync, undoes its rename
//! (the directory had not been synced yet). The reopened log must equal the model's synced
//! content, plus the unfinished batch if, and only if, it reached the file whole with its commit.
//!
//! Damage no crash explains is tried too: a flipped byte in a segment other than the active one
//! must stop the open with an error naming that file and an offset at or before the byte.
//!
//! Cases: 64 by default (a few seconds); raise with `PROPTEST_CASES=5000 cargo test -p raftwood-wal
//! --test model`.

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use common::opts;
use proptest::prelude::*;
use proptest::sample::Index;
use raftwood_wal::{Error, Marker, Replay, Wal};

const SEGMENT_SIZE: u64 = 300;

/// What the log holds, as a plain model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Model {
    entries: BTreeMap<u64, Vec<u8>>,
    state: Option<Vec<u8>>,
    markers: BTreeSet<Marker>,
}

impl Model {
    fn next_index(&self) -> u64 {
        self.entries.keys().next_back().map_or(1, |i| i + 1)
    }

    fn put_entry(&mut self, index: u64, data: Vec<u8>) {
        self.entries.split_off(&index);
        self.entries.insert(index, data);
    }

    /// A log-resetting marker: everything before it goes, at any index.
    fn reset(&mut self, marker: Marker) {
        self.entries.clear();
        self.markers.clear();
        self.markers.insert(marker);
    }
}

#[derive(Clone, Debug)]
enum Damage {
    /// Nothing is lost: the files hold every byte written.
    Nothing,
    /// Cut the newest segment at a byte in the unsynced region.
    Cut(Index),
    /// Cut there and append zeroes, as preallocated space would read.
    CutAndZeroes(Index, u8),
    /// Flip bits of one byte in the unsynced region.
    Corrupt(Index, u8),
    /// If a segment was started since the last sync, the crash came between its rename and the
    /// directory sync: the new name is lost (the file is gone, or left as a `.wal.tmp`).
    UndoRotation { keep_temp: bool },
}

#[derive(Clone, Debug)]
enum Op {
    /// Stage `count` entries starting `back` before the next index (an overwrite when back > 0).
    Entries {
        back: u8,
        count: u8,
        len: u8,
    },
    State(u8),
    Marker {
        back: u8,
        term: u8,
    },
    /// A log-resetting marker `back` below the next index (a snapshot installed over the log).
    ResetMarker {
        back: u8,
        term: u8,
    },
    Sync,
    Release {
        back: u8,
    },
    Reopen,
    /// Crash; with `write_inflight` the staged batch is first written whole with its commit
    /// record (without fsync), without it only its records are written.
    Crash {
        write_inflight: bool,
        damage: Damage,
    },
    /// Flip a byte of a segment other than the active one (bit rot): the open must fail naming it.
    CorruptOlder(Index, Index, u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::Nothing),
        any::<Index>().prop_map(Damage::Cut),
        (any::<Index>(), 1..64u8).prop_map(|(i, n)| Damage::CutAndZeroes(i, n)),
        (any::<Index>(), 1..=255u8).prop_map(|(i, x)| Damage::Corrupt(i, x)),
        any::<bool>().prop_map(|keep_temp| Damage::UndoRotation { keep_temp }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4u8, 1..5u8, 0..40u8).prop_map(|(back, count, len)| Op::Entries { back, count, len }),
        2 => any::<u8>().prop_map(Op::State),
        1 => (0..6u8, any::<u8>()).prop_map(|(back, term)| Op::Marker { back, term }),
        1 => (0..6u8, any::<u8>()).prop_map(|(back, term)| Op::ResetMarker { back, term }),
        4 => Just(Op::Sync),
        1 => (0..12u8).prop_map(|back| Op::Release { back }),
        1 => Just(Op::Reopen),
        2 => (any::<bool>(), damage()).prop_map(|(write_inflight, damage)| Op::Crash { write_inflight, damage }),
        1 => (any::<Index>(), any::<Index>(), 1..=255u8).prop_map(|(f, i, x)| Op::CorruptOlder(f, i, x)),
    ]
}

/// The log under test beside its model.
struct Harness {
    dir: tempfile::TempDir,
    wal: Option<Wal>,
    /// What the last completed sync made durable.
    synced: Model,
    /// `synced` plus the records staged since.
    staged: Model,
    /// Highest index given to `release`: below it the log may hold less than the model.
    released: u64,
    counter: u64,
    /// The active segment at the last completed sync (or open).
    synced_active: PathBuf,
    /// A `release` ran since then. A crash can only undo a segment's rename while `rotate` runs;
    /// once `release` has run after it, the rename was durable (the directory was synced) and
    /// older segments may be gone, so it is no longer undone.
    released_since_sync: bool,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (wal, replay) = Wal::open(dir.path(), opts(SEGMENT_SIZE)).unwrap();
        assert_eq!(replay, Replay::default());
        let synced_active = wal.active_segment().path;
        Harness {
            synced_active,
            released_since_sync: false,
            dir,
            wal: Some(wal),
            synced: Model::default(),
            staged: Model::default(),
            released: 0,
            counter: 0,
        }
    }

    fn wal(&mut self) -> &mut Wal {
        self.wal.as_mut().unwrap()
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Entries { back, count, len } => {
                let first = self
                    .staged
                    .next_index()
                    .saturating_sub(u64::from(*back))
                    .max(1);
                for index in first..first + u64::from(*count) {
                    self.counter += 1;
                    let data: Vec<u8> = (0..*len)
                        .map(|k| (self.counter as u8).wrapping_add(k))
                        .collect();
                    self.wal().append_entry(index, &data).unwrap();
                    self.staged.put_entry(index, data);
                }
            }
            Op::State(byte) => {
                self.counter += 1;
                let state = vec![*byte; (self.counter % 7) as usize];
                self.wal().append_state(&state).unwrap();
                self.staged.state = Some(state);
            }
            Op::Marker { back, term } => {
                let marker = Marker {
                    index: self.staged.next_index().saturating_sub(u64::from(*back)),
                    term: u64::from(*term),
                };
                self.wal().append_marker(marker).unwrap();
                self.staged.markers.insert(marker);
            }
            Op::ResetMarker { back, term } => {
                let marker = Marker {
                    index: self.staged.next_index().saturating_sub(u64::from(*back)),
                    term: u64::from(*term),
                };
                self.wal().append_reset_marker(marker).unwrap();
                self.staged.reset(marker);
            }
            Op::Sync => {
                self.wal().sync().unwrap();
                self.synced = self.staged.clone();
                self.synced_active = self.wal().active_segment().path;
                self.released_since_sync = false;
            }
            Op::Release { back } => {
                let index = self.staged.next_index().saturating_sub(u64::from(*back));
                self.wal().release(index).unwrap();
                self.released_since_sync = true;
                self.released = self.released.max(index);
            }
            Op::Reopen => {
                self.wal = None;
                self.reopen_and_check(&self.synced.clone());
            }
            Op::Crash {
                write_inflight,
                damage,
            } => self.crash(*write_inflight, damage),
            Op::CorruptOlder(file, at, mask) => self.corrupt_older(*file, *at, *mask),
        }
    }

    fn corrupt_older(&mut self, file: Index, at: Index, mask: u8) {
        let paths = self.wal().segment_paths();
        if paths.len() < 2 {
            return;
        }
        self.wal = None;
        let path = paths[file.index(paths.len() - 1)].clone();
        let original = std::fs::read(&path).unwrap();
        let offset = at.index(original.len());
        let mut bytes = original.clone();
        bytes[offset] ^= mask;
        std::fs::write(&path, &bytes).unwrap();
        match Wal::open(self.dir.path(), opts(SEGMENT_SIZE)) {
            Err(Error::Corrupt {
                path: named,
                offset: reported,
                ..
            }) => {
                assert_eq!(named, path, "the error names the damaged segment");
                assert!(reported <= offset as u64, "{reported} > {offset}");
            }
            other => panic!("damage at {offset} of {}: {other:?}", path.display()),
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was changed");
        std::fs::write(&path, &original).unwrap();
        self.reopen_and_check(&self.synced.clone());
    }

    fn crash(&mut self, write_inflight: bool, damage: &Damage) {
        let before = self.wal().active_segment();
        if write_inflight {
            // `sync` with fsync off: the batch reaches the file; the crash comes before fdatasync.
            self.wal().sync().unwrap();
        } else {
            // The batch's records reach the file without their commit record.
            self.wal().write_staged().unwrap();
        }
        let after = self.wal().active_segment();
        self.wal = None;
        if let Damage::UndoRotation { keep_temp } = damage
            && after.path != self.synced_active
            && !self.released_since_sync
        {
            if *keep_temp {
                let mut temp = after.path.clone().into_os_string();
                temp.push(".tmp");
                std::fs::rename(&after.path, temp).unwrap();
            } else {
                std::fs::remove_file(&after.path).unwrap();
            }
            self.reopen_and_check(&self.synced.clone());
            return;
        }
        let (start, end) = (before.committed_len, after.len);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&after.path)
            .unwrap();
        let whole = match damage {
            Damage::Nothing | Damage::UndoRotation { .. } => true,
            Damage::Cut(at) | Damage::CutAndZeroes(at, _) => {
                let cut = start + at.index((end - start + 1) as usize) as u64;
                file.set_len(cut).unwrap();
                if let Damage::CutAndZeroes(_, n) = damage {
                    file.seek(SeekFrom::End(0)).unwrap();
                    file.write_all(&vec![0; usize::from(*n)]).unwrap();
                }
                cut == end
            }
            Damage::Corrupt(at, mask) if end > start => {
                let offset = start + at.index((end - start) as usize) as u64;
                let mut byte = [0u8];
                file.seek(SeekFrom::Start(offset)).unwrap();
                file.read_exact(&mut byte).unwrap();
                file.seek(SeekFrom::Start(offset)).unwrap();
                file.write_all(&[byte[0] ^ mask]).unwrap();
                false
            }
            Damage::Corrupt(..) => true,
        };
        drop(file);
        let expected = if write_inflight && whole {
            self.staged.clone()
        } else {
            self.synced.clone()
        };
        self.reopen_and_check(&expected);
    }

    /// Reopens the log and checks it against `expected`, which becomes the new model.
    fn reopen_and_check(&mut self, expected: &Model) {
        let (wal, replay) = Wal::open(self.dir.path(), opts(SEGMENT_SIZE)).unwrap();
        let released = self.released;
        // From the released index on, exactly the model; below it, a subset of it (those segments
        // may be gone).
        for entry in &replay.entries {
            assert_eq!(
                expected.entries.get(&entry.index).map(|d| &d[..]),
                Some(&entry.data[..]),
                "entry {}",
                entry.index
            );
        }
        let held: Vec<u64> = replay
            .entries
            .iter()
            .map(|e| e.index)
            .filter(|&i| i >= released)
            .collect();
        let want: Vec<u64> = expected
            .entries
            .keys()
            .copied()
            .filter(|&i| i >= released)
            .collect();
        assert_eq!(held, want, "entries from the released index {released} on");
        assert_eq!(replay.state.as_deref(), expected.state.as_deref(), "state");
        for marker in &replay.markers {
            assert!(expected.markers.contains(marker), "unexpected {marker:?}");
        }
        let held: Vec<Marker> = replay
            .markers
            .iter()
            .copied()
            .filter(|m| m.index >= released)
            .collect();
        let want: Vec<Marker> = expected
            .markers
            .iter()
            .copied()
            .filter(|m| m.index >= released)
            .collect();
        assert_eq!(held, want, "markers from the released index {released} on");
        assert_eq!(wal.last_index(), replay.entries.last().map(|e| e.index));

        // Continue from what the log really holds (it may hold less than the model below `released`).
        let mut model = Model {
            state: expected.state.clone(),
            ..Model::default()
        };
        model.entries = replay
            .entries
            .iter()
            .map(|e| (e.index, e.data.to_vec()))
            .collect();
        model.markers = replay.markers.iter().copied().collect();
        self.synced = model.clone();
        self.staged = model;
        self.synced_active = wal.active_segment().path;
        self.released_since_sync = false;
        self.wal = Some(wal);
    }
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_log_matches_the_model_through_crashes(ops in proptest::collection::vec(op(), 1..80)) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.apply(op);
        }
        harness.apply(&Op::Reopen);
    }
}
