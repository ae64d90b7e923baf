//! Helpers shared by the integration tests.
#![allow(dead_code)]
// Test helpers: a failed unwrap is a failed test (clippy.toml only sees #[test] functions).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use raftwood_wal::{Options, Replay, Wal};

/// The piece size recovery reads in, in tests (see [`opts`]).
pub const READ_CHUNK: usize = 61;

/// Options for tests: small segments, no fsync (crashes are simulated by cutting files), and
/// recovery reading in pieces of an odd, tiny size, so that batches, frames and commit records
/// straddle the pieces' boundaries everywhere.
pub fn opts(segment_size: u64) -> Options {
    Options {
        segment_size,
        fsync: false,
        read_chunk: READ_CHUNK,
        ..Options::default()
    }
}

/// Opens `dir`, panicking on error.
pub fn open(dir: &Path, options: Options) -> (Wal, Replay) {
    Wal::open(dir, options).unwrap()
}

/// Entry indexes of a replay.
pub fn indexes(replay: &Replay) -> Vec<u64> {
    replay.entries.iter().map(|e| e.index).collect()
}

/// The `*.wal` files of a directory, sorted by name.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    files.sort();
    files
}

/// Copies every file of `from` into `to` (flat directories only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        std::fs::copy(item.path(), to.join(item.file_name())).unwrap();
    }
}

/// Every byte of every file in `dir`, by name, to check that nothing changed.
pub fn snapshot_dir(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    all.sort();
    all
}
