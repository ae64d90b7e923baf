//! The order of the WAL's file-system calls, and what it does when any one of them fails, seen
//! through the seam `Options::fs` with a [`Recorder`] (issue 9, items 1, 2, 3 and 6).
//!
//! Each trace is written as `call file` lines with file names only (`dir` for the WAL directory),
//! so a test reads like the protocol it checks.

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{copy_dir, indexes, opts};
use raftwood_wal::fsio::{Fault, Fs, Op, OpKind, Recorder};
use raftwood_wal::{Error, Options, Wal};

/// Options that really sync, through `recorder`.
fn recorded(recorder: &Arc<Recorder>, segment_size: u64) -> Options {
    Options {
        segment_size,
        fs: Fs::with_hook(recorder.clone()),
        ..Options::default()
    }
}

fn name(path: &Path, dir: &Path) -> String {
    if path == dir {
        "dir".to_string()
    } else {
        path.file_name().unwrap().to_string_lossy().into_owned()
    }
}

/// The recorded calls as `call file` lines (`call from -> to` for a rename).
fn trace(recorder: &Recorder, dir: &Path) -> Vec<String> {
    recorder
        .ops()
        .iter()
        .map(|op: &Op| {
            let call = match op.kind {
                OpKind::Write => "write",
                OpKind::Fsync => "fsync",
                OpKind::Fdatasync => "fdatasync",
                OpKind::SyncDir => "syncdir",
                OpKind::Rename => "rename",
                OpKind::Unlink => "unlink",
                OpKind::Truncate => "truncate",
            };
            match &op.to {
                Some(to) => format!("{call} {} -> {}", name(&op.path, dir), name(to, dir)),
                None => format!("{call} {}", name(&op.path, dir)),
            }
        })
        .collect()
}

const SEG0: &str = "0000000000000000-0000000000000000.wal";

#[test]
fn a_new_log_is_created_under_a_temporary_name_synced_renamed_and_its_directory_synced() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let (_wal, _) = Wal::open(dir.path(), recorded(&recorder, 1 << 20)).unwrap();
    assert_eq!(
        trace(&recorder, dir.path()),
        [
            format!("write {SEG0}.tmp"),
            format!("fsync {SEG0}.tmp"),
            format!("rename {SEG0}.tmp -> {SEG0}"),
            "syncdir dir".to_string(),
        ]
    );
}

#[test]
fn append_is_one_write_and_one_fdatasync_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let (mut wal, _) = Wal::open(dir.path(), recorded(&recorder, 1 << 20)).unwrap();
    recorder.clear();
    wal.append_entry(1, b"a").unwrap();
    wal.append_state(b"hs").unwrap();
    assert!(recorder.is_empty(), "staging makes no call");
    wal.sync().unwrap();
    assert_eq!(
        trace(&recorder, dir.path()),
        [format!("write {SEG0}"), format!("fdatasync {SEG0}")]
    );
    assert!(recorder.unsynced().is_empty());
}

/// Item 1: a batch left in the page cache by a killed process (written, never synced) is synced
/// by `open` before `open` hands it out. Fails without the fix: nothing synced it until the next
/// `sync`, so a restarted node could acknowledge entries a power loss would then take back.
#[test]
fn open_syncs_the_newest_segment_and_the_directory_before_handing_anything_out() {
    let dir = tempfile::tempdir().unwrap();
    {
        // fsync off: the batch reaches the file (the page cache) and no further.
        let (mut wal, _) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
        wal.append_entry(1, b"in the page cache only").unwrap();
        wal.sync().unwrap();
    }
    let recorder = Arc::new(Recorder::default());
    let (_wal, replay) = Wal::open(dir.path(), recorded(&recorder, 1 << 20)).unwrap();
    assert_eq!(indexes(&replay), [1]);
    assert_eq!(
        trace(&recorder, dir.path()),
        [format!("fdatasync {SEG0}"), "syncdir dir".to_string()]
    );
}

/// A torn tail is cut, the cut made durable, and then (item 1) the segment and the directory
/// synced before `open` returns.
#[test]
fn open_truncates_a_torn_tail_durably() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
        wal.append_entry(1, b"kept").unwrap();
        wal.sync().unwrap();
        wal.append_entry(2, b"torn").unwrap();
        wal.write_staged().unwrap();
    }
    let recorder = Arc::new(Recorder::default());
    let (_wal, replay) = Wal::open(dir.path(), recorded(&recorder, 1 << 20)).unwrap();
    assert_eq!(indexes(&replay), [1]);
    assert_eq!(
        trace(&recorder, dir.path()),
        [
            format!("truncate {SEG0}"),
            format!("fsync {SEG0}"),
            format!("fdatasync {SEG0}"),
            "syncdir dir".to_string(),
        ]
    );
}

/// Item 1, failing: if that fdatasync fails, `open` fails and hands nothing out.
#[test]
fn open_fails_when_it_cannot_make_the_tail_durable() {
    let dir = tempfile::tempdir().unwrap();
    drop(Wal::open(dir.path(), opts(1 << 20)).unwrap());
    let recorder = Arc::new(Recorder::default());
    recorder.fail_next(|op| op.kind == OpKind::Fdatasync, Fault::Eio);
    match Wal::open(dir.path(), recorded(&recorder, 1 << 20)) {
        Err(Error::Io {
            op: "fdatasync",
            path,
            source,
        }) => {
            assert_eq!(name(&path, dir.path()), SEG0);
            assert_eq!(source.raw_os_error(), Some(5));
        }
        other => panic!("expected an fdatasync error, got {other:?}"),
    }
}

/// Item 2: a rotation starts by syncing the segment it leaves, as etcd's `cut` does. Fails without
/// the fix: the rotation went straight to the new segment, trusting that the old one had been
/// synced by the last `sync`, which was false after an `open` that adopted an unsynced tail.
#[test]
fn rotation_syncs_the_old_segment_before_it_starts_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let (mut wal, _) = Wal::open(dir.path(), recorded(&recorder, 100)).unwrap();
    wal.append_state(b"hs").unwrap();
    wal.append_entry(1, &[1; 80]).unwrap();
    wal.sync().unwrap();
    recorder.clear();
    wal.append_entry(2, b"b").unwrap();
    wal.sync().unwrap();
    let seg1 = "0000000000000001-0000000000000002.wal";
    assert_eq!(
        trace(&recorder, dir.path()),
        [
            format!("fdatasync {SEG0}"),
            format!("write {seg1}.tmp"),
            format!("fsync {seg1}.tmp"),
            format!("rename {seg1}.tmp -> {seg1}"),
            "syncdir dir".to_string(),
            format!("write {seg1}"),
            format!("fdatasync {seg1}"),
        ]
    );
}

#[test]
fn release_removes_oldest_first_syncing_the_directory_after_each_removal() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let (mut wal, _) = Wal::open(dir.path(), recorded(&recorder, 100)).unwrap();
    for i in 1..=3 {
        wal.append_entry(i, &[0; 80]).unwrap();
        wal.sync().unwrap();
    }
    let paths = wal.segment_paths();
    assert_eq!(paths.len(), 3);
    recorder.clear();
    assert_eq!(wal.release(3).unwrap(), 2);
    assert_eq!(
        trace(&recorder, dir.path()),
        [
            format!("unlink {}", name(&paths[0], dir.path())),
            "syncdir dir".to_string(),
            format!("unlink {}", name(&paths[1], dir.path())),
            "syncdir dir".to_string(),
        ]
    );
}

/// Item 3: after a failed fdatasync the `Wal` is poisoned, and a reopen in the same process is
/// refused. Fails without the fix: the reopen replayed the failed batch from the page cache, where
/// Linux keeps pages whose writeback failed, as if the disk held it.
#[test]
fn a_failed_fdatasync_poisons_and_a_reopen_in_the_same_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let (mut wal, _) = Wal::open(dir.path(), recorded(&recorder, 1 << 20)).unwrap();
    wal.append_entry(1, b"acknowledged").unwrap();
    wal.sync().unwrap();
    wal.append_entry(2, b"its sync fails").unwrap();
    recorder.fail_next(|op| op.kind == OpKind::Fdatasync, Fault::Eio);
    assert!(matches!(
        wal.sync(),
        Err(Error::Io {
            op: "fdatasync",
            ..
        })
    ));
    assert!(matches!(wal.append_entry(3, b"x"), Err(Error::Poisoned)));
    assert!(matches!(wal.sync(), Err(Error::Poisoned)));
    drop(wal);
    match Wal::open(dir.path(), Options::default()) {
        Err(Error::PoisonedEarlier { dir: d }) => assert_eq!(d, dir.path()),
        Err(other) => panic!("expected PoisonedEarlier, got {other:?}"),
        Ok((_, replay)) => panic!(
            "reopened in the same process, replaying {:?}",
            indexes(&replay)
        ),
    }
}

/// What a scenario did before a failure stopped it.
struct Outcome {
    /// Indexes whose `sync` returned `Ok`.
    acknowledged: Vec<u64>,
    /// The first error, if any.
    error: Option<Error>,
    /// Whether `release(RELEASE)` was called (it may remove entries below `RELEASE`).
    released: bool,
    /// Whether the error came from staging or syncing a batch (not from open or release), and
    /// the log then answered `Error::Poisoned`.
    batch_failed: bool,
    poisoned: bool,
}

/// The scenario releases the segments wholly below this index.
const RELEASE: u64 = 3;

/// Opens a log in `dir`, appends entries one batch each (rotating every few), releases, and
/// appends again, stopping at the first error. After every `Ok` from `sync`, no segment may have
/// a write that no sync covered: an acknowledgement is never ahead of the disk.
fn scenario(dir: &Path, recorder: &Arc<Recorder>) -> Outcome {
    let mut acknowledged = Vec::new();
    let (mut wal, _) = match Wal::open(dir, recorded(recorder, 150)) {
        Ok(opened) => opened,
        Err(error) => {
            return Outcome {
                acknowledged,
                error: Some(error),
                released: false,
                batch_failed: false,
                poisoned: false,
            };
        }
    };
    let mut step = |wal: &mut Wal, index: u64| -> Result<(), Error> {
        wal.append_state(&index.to_le_bytes())?;
        wal.append_entry(index, &[index as u8; 60])?;
        wal.sync()?;
        let unsynced: Vec<_> = recorder
            .unsynced()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "wal"))
            .collect();
        assert!(
            unsynced.is_empty(),
            "sync returned Ok with unsynced writes in {unsynced:?}"
        );
        acknowledged.push(index);
        Ok(())
    };
    let mut released = false;
    let mut batch_failed = true;
    let result = (1..=4)
        .try_for_each(|i| step(&mut wal, i))
        .and_then(|()| {
            released = true;
            batch_failed = false;
            wal.release(RELEASE).map(drop)
        })
        .and_then(|()| {
            batch_failed = true;
            (5..=6).try_for_each(|i| step(&mut wal, i))
        });
    let poisoned = matches!(wal.sync(), Err(Error::Poisoned));
    Outcome {
        acknowledged,
        batch_failed: batch_failed && result.is_err(),
        error: result.err(),
        released,
        poisoned,
    }
}

/// Item 6: every call of a scenario that opens, appends, rotates and releases is failed in turn,
/// with each fault. Each failure is a typed error naming a file, never a panic; a failed write or
/// sync poisons the log; and every batch acknowledged before the failure is there when the files
/// are read by a new process (simulated by a copy of the directory, which this process has not
/// opened).
#[test]
fn every_injected_failure_is_a_typed_error_and_loses_nothing_acknowledged() {
    let clean = {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Arc::new(Recorder::default());
        let outcome = scenario(dir.path(), &recorder);
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        recorder.len()
    };
    assert!(clean > 20, "the scenario makes {clean} calls");
    for at in 0..clean {
        for fault in [Fault::Eio, Fault::Enospc, Fault::ShortWrite { written: 7 }] {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("wal");
            let recorder = Arc::new(Recorder::default());
            recorder.fail_at(at, fault);
            let outcome = scenario(&dir, &recorder);
            let failed = recorder.ops()[at].clone();
            let context = format!("failing call {at} ({failed:?}) with {fault:?}");
            match &outcome.error {
                Some(Error::Io { path, source, .. }) => {
                    // The WAL directory, a file in it, or (creating it) its parent.
                    assert!(path.starts_with(root.path()), "{context}: {path:?}");
                    assert!(source.raw_os_error().is_some(), "{context}");
                }
                other => panic!("{context}: expected an I/O error, got {other:?}"),
            }
            assert_eq!(outcome.poisoned, outcome.batch_failed, "{context}");
            let copy = root.path().join("copy");
            copy_dir(&dir, &copy);
            std::fs::remove_file(copy.join(raftwood_wal::LOCK_FILE)).ok();
            if let Ok((_, replay)) = Wal::open(&copy, opts(150)) {
                let held = indexes(&replay);
                let kept = |&&index: &&u64| index >= RELEASE || !outcome.released;
                for index in outcome.acknowledged.iter().filter(kept) {
                    assert!(held.contains(index), "{context}: lost {index}: {held:?}");
                }
            } else {
                // Only a failure before the first segment had its name may leave no log.
                assert!(outcome.acknowledged.is_empty(), "{context}");
            }
        }
    }
}
