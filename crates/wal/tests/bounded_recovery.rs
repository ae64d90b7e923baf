//! Recovery reads segments in bounded pieces (issue 9, item 8): a 128 MiB zeroed tail (what a
//! preallocating file system or a crash can leave) costs one piece of memory, not 128 MiB. Fails
//! without the fix: each segment was read whole.
//!
//! Memory is measured as the growth of this process's peak resident set (`VmHWM`, Linux), reset
//! first through `/proc/self/clear_refs`; this file holds one test so that nothing else runs
//! meanwhile.

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;

use common::{indexes, segment_files};
use raftwood_wal::{Options, Wal};

/// Peak resident set size in KiB, if the platform reports it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_huge_zeroed_tail_is_scanned_in_bounded_memory() {
    const TAIL: u64 = 128 << 20;
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(dir.path(), Options::default()).unwrap();
        wal.append_entry(1, b"kept").unwrap();
        wal.sync().unwrap();
    }
    let path = segment_files(dir.path()).pop().unwrap();
    let good_len = std::fs::metadata(&path).unwrap().len();
    // A sparse extension: zeroes that cost no disk space and read as fast as the page cache.
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(good_len + TAIL).unwrap();
    drop(file);

    // Reset the peak to the current resident set, where the kernel allows it.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_rss_kib();
    let (_wal, replay) = Wal::open(dir.path(), Options::default()).unwrap();
    let after = peak_rss_kib();
    assert_eq!(indexes(&replay), [1]);
    let torn = replay.torn_tail.unwrap();
    assert_eq!((torn.offset, torn.removed_bytes), (good_len, TAIL));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
    if let (Some(before), Some(after)) = (before, after) {
        let grown_mib = after.saturating_sub(before) / 1024;
        // One 8 MiB piece (the default) and change; reading the file whole took 128 MiB.
        assert!(grown_mib < 40, "peak resident set grew by {grown_mib} MiB");
    }
}
