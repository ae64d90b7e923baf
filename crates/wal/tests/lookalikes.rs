//! Payloads that look like WAL bytes. A client may store anything, a copy of WAL segments
//! included; a crash that cuts such a batch short must still read as a torn tail, never as
//! "corruption followed by a valid commit record" (which would keep the node from starting).
//! The unit tests in `src/decode.rs` check that the scan's work stays linear on such inputs.

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;

use common::{indexes, open, opts};
use raftwood_wal::format::{COMMIT_FRAME_LEN, FRAME_HEADER_LEN};

/// Appends entry 1 (synced), then entry 2 with `payload` (written whole, as if the crash came
/// before `fdatasync` returned), cuts the file `cut_back` bytes before its end, and reopens.
/// `payload_for` gets the batch's start offset and the segment's salt.
fn crash_inside(payload_for: impl Fn(u64, u64) -> Vec<u8>, cut_back: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = open(dir.path(), opts(64 << 20));
    wal.append_entry(1, b"a").unwrap();
    wal.sync().unwrap();
    let active = wal.active_segment();
    let header = std::fs::read(&active.path).unwrap();
    let salt = u64::from_le_bytes(header[28..36].try_into().unwrap());
    let payload = payload_for(active.committed_len, salt);
    wal.append_entry(2, &payload).unwrap();
    wal.sync().unwrap();
    let end = wal.active_segment().len;
    drop(wal);
    let cut = end - cut_back;
    assert!(cut > active.committed_len);
    OpenOptions::new()
        .write(true)
        .open(&active.path)
        .unwrap()
        .set_len(cut)
        .unwrap();

    let (_, replay) = open(dir.path(), opts(64 << 20));
    assert_eq!(
        indexes(&replay),
        [1],
        "the torn batch is gone, the synced one kept"
    );
    assert_eq!(
        std::fs::metadata(&active.path).unwrap().len(),
        active.committed_len,
        "truncated back to the end of the synced batch"
    );
}

/// A commit frame (valid frame crc) naming `start` and `salt`, with a batch crc that is wrong.
fn commit_frame(start: u64, salt: u64) -> Vec<u8> {
    let mut frame = vec![0u8; COMMIT_FRAME_LEN];
    frame[4] = 4;
    frame[8..12].copy_from_slice(&20u32.to_le_bytes());
    frame[12..20].copy_from_slice(&start.to_le_bytes());
    frame[20..28].copy_from_slice(&salt.to_le_bytes());
    frame[28..32].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
    let crc = crc32fast::hash(&frame[4..]);
    frame[0..4].copy_from_slice(&crc.to_le_bytes());
    frame
}

/// The review's case: a client value holding a copy of another log's segment.
#[test]
fn a_payload_holding_wal_bytes_cut_short_is_a_torn_tail() {
    let other = tempfile::tempdir().unwrap();
    let copy = {
        let (mut wal, _) = open(other.path(), opts(64 << 20));
        wal.append_entry(7, b"hello").unwrap();
        wal.sync().unwrap();
        std::fs::read(&wal.segment_paths()[0]).unwrap()
    };
    let payload = |_, _| [&[0xaa; 100][..], &copy, &copy[40..], &[0xbb; 100]].concat();
    crash_inside(payload, 50);
}

/// Even a commit frame carrying this segment's salt (which no client can know) and bound to the
/// torn batch's own start does not count: the frames from that start do not lead to it.
#[test]
fn a_payload_holding_a_commit_bound_to_its_batch_cut_short_is_a_torn_tail() {
    let payload =
        |start, salt| [&[0xaa; 100][..], &commit_frame(start, salt), &[0xbb; 100]].concat();
    crash_inside(payload, 50);
}

/// 4 MiB of such commit frames, cut short: opens as a torn tail. (The decoder's unit tests check
/// that the work is linear; before the fix this took seconds, quadratic in the payload.)
#[test]
fn a_large_payload_of_fake_commits_cut_short_is_a_torn_tail() {
    let payload = |start: u64, salt| {
        let mut out = Vec::with_capacity(4 << 20);
        // Bound to the batch start, and to every offset a fake batch inside the payload could start.
        let first = start + (FRAME_HEADER_LEN + 8) as u64;
        while out.len() + COMMIT_FRAME_LEN <= 4 << 20 {
            let claimed = if out.len() % 64 == 0 {
                start
            } else {
                first + out.len() as u64 - COMMIT_FRAME_LEN as u64
            };
            out.extend_from_slice(&commit_frame(claimed, salt));
        }
        out
    };
    crash_inside(payload, 30);
}
