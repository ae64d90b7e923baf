//! The seam against a plain model: random calls on a few files, with random injected faults.
//!
//! The model is a map from file name to bytes and a set of the names with unsynced writes, each
//! updated by the rule a reader would write down for the call: a write appends, a short write
//! appends a prefix, a failed call changes no bytes, a sync clears the mark, a rename moves it.
//! After every call the property checks that
//!
//! - a failed call returned the fault's error, and [`Recorder::failed`] lists it; a call not
//!   failed returned `Ok` and is not listed;
//! - the record grew by exactly that call, with its kind, path, destination and length;
//! - every file holds the model's bytes (so a short write left exactly a prefix, and a failed call
//!   changed nothing);
//! - [`Recorder::unsynced`] holds each name once and equals the model's set.
//!
//! Renames and unlinks of a missing file are skipped: the Recorder counts a call it lets through
//! as done (see its docs), so it only agrees with the disk on calls the disk completes.
//!
//! Cases: 64 by default; set `PROPTEST_CASES` (read by proptest itself) for more, e.g.
//! `PROPTEST_CASES=5000 cargo test -p raftwood-fsio --test model`.

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use raftwood_fsio::{Fault, Fs, Op, OpKind, Recorder};

const NAMES: [&str; 3] = ["a", "b", "c"];

#[derive(Clone, Debug)]
enum Call {
    Write(usize, Vec<u8>),
    Fdatasync(usize),
    Fsync(usize),
    Truncate(usize, u64),
    Rename(usize, usize),
    Unlink(usize),
    SyncDir,
    /// `Recorder::clear`: positions count from here, marks are kept.
    Clear,
}

/// How a fault is armed: at the next position, or as a predicate on the call's kind.
#[derive(Clone, Copy, Debug)]
enum Arm {
    At,
    Next,
}

fn name() -> impl Strategy<Value = usize> {
    0..NAMES.len()
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        4 => (name(), prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(f, b)| Call::Write(f, b)),
        2 => name().prop_map(Call::Fdatasync),
        1 => name().prop_map(Call::Fsync),
        1 => (name(), 0..12u64).prop_map(|(f, n)| Call::Truncate(f, n)),
        2 => (name(), name()).prop_map(|(f, t)| Call::Rename(f, t)),
        1 => name().prop_map(Call::Unlink),
        1 => Just(Call::SyncDir),
        1 => Just(Call::Clear),
    ]
}

fn fault() -> impl Strategy<Value = Option<(Fault, Arm)>> {
    let fault = prop_oneof![
        Just(Fault::Eio),
        Just(Fault::Enospc),
        (0..10usize).prop_map(|written| Fault::ShortWrite { written }),
    ];
    let arm = prop_oneof![Just(Arm::At), Just(Arm::Next)];
    prop::option::weighted(0.3, (fault, arm))
}

/// The disk and the marks, as a reader would model them.
#[derive(Default)]
struct Model {
    files: BTreeMap<usize, Vec<u8>>,
    unsynced: BTreeSet<usize>,
    /// Calls recorded since the last `Clear`, and which of them were failed.
    recorded: usize,
    failed: Vec<usize>,
}

struct Harness {
    dir: tempfile::TempDir,
    recorder: Arc<Recorder>,
    fs: Fs,
    model: Model,
}

impl Harness {
    fn new() -> Harness {
        let recorder = Arc::new(Recorder::default());
        Harness {
            dir: tempfile::tempdir().unwrap(),
            fs: Fs::with_hook(recorder.clone()),
            recorder,
            model: Model::default(),
        }
    }

    fn path(&self, f: usize) -> PathBuf {
        self.dir.path().join(NAMES[f])
    }

    /// Opens file `f` for writing at its end, creating it (outside the seam, as a store creates
    /// its files) if it does not exist.
    fn open(&mut self, f: usize) -> File {
        self.model.files.entry(f).or_default();
        let path = self.path(f);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
    }

    fn step(&mut self, call: &Call, fault: Option<(Fault, Arm)>) {
        let (kind, f, to, len) = match *call {
            Call::Clear => {
                self.recorder.clear();
                self.model.recorded = 0;
                self.model.failed.clear();
                return self.check_files();
            }
            Call::Write(f, ref bytes) => (OpKind::Write, Some(f), None, bytes.len() as u64),
            Call::Fdatasync(f) => (OpKind::Fdatasync, Some(f), None, 0),
            Call::Fsync(f) => (OpKind::Fsync, Some(f), None, 0),
            Call::Truncate(f, n) => (OpKind::Truncate, Some(f), None, n),
            Call::Rename(f, t) => (OpKind::Rename, Some(f), Some(t), 0),
            Call::Unlink(f) => (OpKind::Unlink, Some(f), None, 0),
            Call::SyncDir => (OpKind::SyncDir, None, None, 0),
        };
        if matches!(kind, OpKind::Rename | OpKind::Unlink)
            && f.is_some_and(|f| !self.model.files.contains_key(&f))
        {
            return; // the disk would fail it with ENOENT; see the module docs
        }
        match fault {
            Some((fault, Arm::At)) => self.recorder.fail_at(self.model.recorded, fault),
            Some((fault, Arm::Next)) => self.recorder.fail_next(move |op| op.kind == kind, fault),
            None => {}
        }
        let fault = fault.map(|(fault, _)| fault);

        let result = match *call {
            Call::Write(f, ref bytes) => {
                let mut file = self.open(f);
                self.fs.write_all(&mut file, &self.path(f), bytes)
            }
            Call::Fdatasync(f) => {
                let file = self.open(f);
                self.fs.sync_data(&file, &self.path(f))
            }
            Call::Fsync(f) => {
                let file = self.open(f);
                self.fs.sync_all(&file, &self.path(f))
            }
            Call::Truncate(f, n) => {
                let file = self.open(f);
                self.fs.set_len(&file, &self.path(f), n)
            }
            Call::Rename(f, t) => self.fs.rename(&self.path(f), &self.path(t)),
            Call::Unlink(f) => self.fs.remove_file(&self.path(f)),
            Call::SyncDir => self.fs.sync_dir(self.dir.path()),
            Call::Clear => unreachable!(),
        };

        // The error, and the record.
        let expected_code = fault.map(|fault| match (fault, kind) {
            (Fault::Eio, _) => 5,
            (Fault::ShortWrite { .. }, OpKind::Write) | (Fault::Enospc, _) => 28,
            (Fault::ShortWrite { .. }, _) => 5,
        });
        match (&result, expected_code) {
            (Ok(()), None) => {}
            (Err(e), Some(code)) => assert_eq!(e.raw_os_error(), Some(code), "{call:?}"),
            (result, _) => panic!("{call:?} with {fault:?} returned {result:?}"),
        }
        let at = self.model.recorded;
        self.model.recorded += 1;
        if fault.is_some() {
            self.model.failed.push(at);
        }
        let ops = self.recorder.ops();
        assert_eq!(
            ops.len(),
            self.model.recorded,
            "{call:?}: one call recorded"
        );
        let path = f.map_or_else(|| self.dir.path().to_path_buf(), |f| self.path(f));
        let want = Op {
            kind,
            path,
            to: to.map(|t| self.path(t)),
            len,
        };
        assert_eq!(ops[at], want);
        assert_eq!(self.recorder.failed(), self.model.failed, "{call:?}");

        // The model's bytes and marks.
        let model = &mut self.model;
        match (call, fault) {
            (Call::Write(f, bytes), None) => model.files.entry(*f).or_default().extend(bytes),
            (Call::Write(f, bytes), Some(Fault::ShortWrite { written })) => {
                let prefix = &bytes[..written.min(bytes.len())];
                model.files.entry(*f).or_default().extend(prefix);
            }
            (Call::Truncate(f, n), None) => {
                let n = usize::try_from(*n).unwrap();
                model.files.entry(*f).or_default().resize(n, 0);
            }
            (Call::Rename(f, t), None) if f != t => {
                let bytes = model.files.remove(f).unwrap();
                model.files.insert(*t, bytes);
            }
            (Call::Unlink(f), None) => {
                model.files.remove(f);
            }
            _ => {}
        }
        match (call, fault) {
            (Call::Write(f, _) | Call::Truncate(f, _), _) => {
                model.unsynced.insert(*f);
            }
            (Call::Fdatasync(f) | Call::Fsync(f), None) => {
                model.unsynced.remove(f);
            }
            (Call::Rename(f, t), None) if f != t => {
                let was = model.unsynced.remove(f);
                model.unsynced.remove(t);
                if was {
                    model.unsynced.insert(*t);
                }
            }
            (Call::Unlink(f), None) => {
                model.unsynced.remove(f);
            }
            _ => {}
        }
        self.check_files();
    }

    fn check_files(&self) {
        for (f, name) in NAMES.iter().enumerate() {
            let on_disk = std::fs::read(self.path(f)).ok();
            assert_eq!(on_disk.as_ref(), self.model.files.get(&f), "file {name}");
        }
        let unsynced = self.recorder.unsynced();
        let names: BTreeSet<usize> = unsynced.iter().map(|p| self.index(p)).collect();
        assert_eq!(names.len(), unsynced.len(), "a mark twice in {unsynced:?}");
        assert_eq!(names, self.model.unsynced, "unsynced");
    }

    fn index(&self, path: &Path) -> usize {
        (0..NAMES.len()).find(|&f| self.path(f) == path).unwrap()
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
    fn the_recorder_and_the_files_agree_with_the_model(
        calls in prop::collection::vec((call(), fault()), 1..60),
    ) {
        let mut harness = Harness::new();
        for (call, fault) in &calls {
            harness.step(call, *fault);
        }
    }
}
