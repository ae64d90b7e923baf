//! Damage no crash can explain: the log refuses to open, names the file and the byte offset, and
//! changes nothing on disk.

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

mod common;

use common::{open, opts, segment_files, snapshot_dir};
use raftwood_wal::format::{COMMIT_FRAME_LEN, FRAME_HEADER_LEN, HEADER_LEN};
use raftwood_wal::{Error, Wal};

/// Writes `batches` one-entry batches of 40-byte entries.
fn write_log(dir: &std::path::Path, segment_size: u64, batches: u64) {
    let (mut wal, _) = open(dir, opts(segment_size));
    wal.append_state(b"hs").unwrap();
    for i in 1..=batches {
        wal.append_entry(i, &[i as u8; 40]).unwrap();
        wal.sync().unwrap();
    }
}

fn expect_corrupt(
    dir: &std::path::Path,
    segment_size: u64,
) -> (std::path::PathBuf, u64, bool, String) {
    match Wal::open(dir, opts(segment_size)) {
        Err(error @ Error::Corrupt { .. }) => {
            let message = error.to_string();
            let Error::Corrupt {
                path,
                offset,
                followed_by_commit,
                ..
            } = error
            else {
                unreachable!()
            };
            (path, offset, followed_by_commit, message)
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
}

#[test]
fn a_flipped_byte_in_a_batch_followed_by_a_valid_one_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 1 << 20, 5);
    let path = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    // The first batch holds the state frame (12 + 2 bytes), entry 1's frame and a commit record.
    // Flip a byte of entry 1's payload; four valid batches follow.
    let entry_frame = HEADER_LEN + FRAME_HEADER_LEN + 2;
    bytes[entry_frame + FRAME_HEADER_LEN + 8 + 3] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let before = snapshot_dir(dir.path());

    let (bad_path, offset, followed_by_commit, message) = expect_corrupt(dir.path(), 1 << 20);
    assert_eq!(bad_path, path);
    assert_eq!(offset, entry_frame as u64, "offset of the damaged frame");
    assert!(followed_by_commit);
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("byte {entry_frame}")),
        "{message}"
    );
    assert!(message.contains("checksum mismatch"), "{message}");
    assert_eq!(snapshot_dir(dir.path()), before, "nothing was overwritten");
}

#[test]
fn damage_in_an_older_segment_is_corruption_even_at_its_end() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 150, 12);
    let files = segment_files(dir.path());
    assert!(files.len() >= 3);
    // The very last byte of an older segment: its last commit record. In the newest segment this
    // would be a torn tail; here it cannot be.
    let older = &files[1];
    let mut bytes = std::fs::read(older).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    std::fs::write(older, &bytes).unwrap();
    let before = snapshot_dir(dir.path());

    let (bad_path, offset, followed_by_commit, message) = expect_corrupt(dir.path(), 150);
    assert_eq!(&bad_path, older);
    assert_eq!(
        offset,
        (bytes.len() - COMMIT_FRAME_LEN) as u64,
        "offset of the damaged commit frame"
    );
    assert!(!followed_by_commit);
    assert!(message.contains(&older.display().to_string()), "{message}");
    assert_eq!(snapshot_dir(dir.path()), before, "nothing was overwritten");
}

#[test]
fn zeroed_bytes_in_the_middle_of_the_newest_segment_are_corruption() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 1 << 20, 6);
    let path = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    // The second batch starts after the state frame (14), entry 1's frame (60) and a commit.
    let at = HEADER_LEN + 14 + 60 + COMMIT_FRAME_LEN;
    bytes[at..at + 30].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let (_, offset, followed_by_commit, message) = expect_corrupt(dir.path(), 1 << 20);
    assert_eq!(offset, at as u64);
    assert!(followed_by_commit);
    assert!(message.contains("invalid record kind 0"), "{message}");
}
