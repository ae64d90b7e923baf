//! The order of the store's file-system calls, and what it does when any one of them fails, seen
//! through the seam `Options::fs` with a [`Recorder`] (issue 9, items 6 and 8).

// Helpers outside `#[test]` functions are test code too (see clippy.toml).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use raftwood_snap::fsio::{Fault, Fs, OpKind, Recorder};
use raftwood_snap::{Error, Options, SnapshotId, Store};

const ID: SnapshotId = SnapshotId { index: 9, term: 2 };
const NAME: &str = "0000000000000002-0000000000000009.snap";

fn recorded(recorder: &Arc<Recorder>) -> Options {
    Options {
        fs: Fs::with_hook(recorder.clone()),
        ..Options::default()
    }
}

/// The recorded calls as `call file` lines, temporary names shortened to `NAME.tmp`.
fn trace(recorder: &Recorder, dir: &Path) -> Vec<String> {
    let short = |p: &Path| {
        if p == dir {
            return "dir".to_string();
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        match name.strip_suffix(".tmp") {
            Some(stem) => format!("{}.tmp", &stem[..stem.rfind('.').unwrap()]),
            None => name,
        }
    };
    recorder
        .ops()
        .iter()
        .map(|op| {
            let call = format!("{:?}", op.kind).to_lowercase();
            match &op.to {
                Some(to) => format!("{call} {} -> {}", short(&op.path), short(to)),
                None => format!("{call} {}", short(&op.path)),
            }
        })
        .collect()
}

#[test]
fn a_save_writes_a_temporary_file_syncs_it_renames_it_and_syncs_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let store = Store::open_with(dir.path(), recorded(&recorder)).unwrap();
    recorder.clear();
    store.save(ID, b"voters=1", &b"state"[..]).unwrap();
    assert_eq!(
        trace(&recorder, dir.path()),
        [
            format!("write {NAME}.tmp"), // the buffered header, metadata and data
            format!("write {NAME}.tmp"), // the real header, at offset 0
            format!("fsync {NAME}.tmp"),
            format!("rename {NAME}.tmp -> {NAME}"),
            "syncdir dir".to_string(),
        ]
    );
    assert!(recorder.unsynced().is_empty());
}

/// Every call of a save of 200 KiB (several buffered writes) is failed in turn, with each fault:
/// the save returns a typed error naming the file it hit, the temporary file is gone, and the
/// snapshot file exists only if the failure came after the rename (the directory sync).
#[test]
fn every_injected_failure_of_a_save_is_a_typed_error_naming_the_file_it_hit() {
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let calls = {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Arc::new(Recorder::default());
        let store = Store::open_with(dir.path(), recorded(&recorder)).unwrap();
        recorder.clear();
        store.save(ID, b"m", &data[..]).unwrap();
        recorder.len()
    };
    for at in 0..calls {
        for fault in [Fault::Eio, Fault::Enospc, Fault::ShortWrite { written: 10 }] {
            let dir = tempfile::tempdir().unwrap();
            let recorder = Arc::new(Recorder::default());
            let store = Store::open_with(dir.path(), recorded(&recorder)).unwrap();
            recorder.clear();
            recorder.fail_at(at, fault);
            let err = store.save(ID, b"m", &data[..]).unwrap_err();
            let failed = recorder.ops()[at].clone();
            let context = format!("failing call {at} ({failed:?}) with {fault:?}: {err}");
            match &err {
                Error::Io { path, source, .. } => {
                    assert_eq!(path, &failed.path, "{context}");
                    assert!(source.raw_os_error().is_some(), "{context}");
                }
                other => panic!("{context}: expected an I/O error, got {other:?}"),
            }
            let names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            let renamed = failed.kind == OpKind::SyncDir;
            let expected: &[&str] = if renamed { &[NAME] } else { &[] };
            assert_eq!(names, expected, "{context}");
        }
    }
}

/// Item 8: a disk that fills up while the data streams in is reported on the temporary file, as
/// a write. Fails without the fix: `save` named the final file (which does not exist) and called
/// it a failure to copy the data.
#[test]
fn enospc_while_streaming_names_the_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let store = Store::open_with(dir.path(), recorded(&recorder)).unwrap();
    recorder.fail_next(|op| op.kind == OpKind::Write, Fault::Enospc);
    let data = vec![7u8; 1 << 20];
    match store.save(ID, b"", &data[..]) {
        Err(Error::Io {
            path,
            op: "write",
            source,
        }) => {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with(NAME) && name.ends_with(".tmp"), "{name}");
            assert_eq!(source.raw_os_error(), Some(28));
        }
        other => panic!("expected a write error on the temporary file, got {other:?}"),
    }
}

/// A failed write is not repeated: the buffered bytes are dropped with the temporary file, not
/// written again on the way out (dropping a `BufWriter` flushes it). Fails without the fix: the
/// trace read `write, write, unlink`, the second write a retry of the failed one.
#[test]
fn a_failed_write_is_not_retried_before_the_temporary_file_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let store = Store::open_with(dir.path(), recorded(&recorder)).unwrap();
    recorder.clear();
    recorder.fail_next(|op| op.kind == OpKind::Write, Fault::Eio);
    let data = vec![7u8; 1 << 20];
    assert!(store.save(ID, b"", &data[..]).is_err());
    assert_eq!(
        trace(&recorder, dir.path()),
        [format!("write {NAME}.tmp"), format!("unlink {NAME}.tmp")]
    );
}
