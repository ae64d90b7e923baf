//! Feeds arbitrary bytes to the WAL segment decoder: it must never panic, everything it returns
//! must lie within the input, and it must allocate nothing larger than the input (lengths are
//! checked against the bytes that remain; the decoder itself allocates nothing at all).
//!
//! The bytes are decoded twice: as they are (exercising the header checks) and behind a valid
//! header (so the fuzzer spends its time on frames, batches and commit records).
//!
//! Run from `fuzz/`: `cargo fuzz run -s none wal_decode -- -max_total_time=120`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raftwood_fuzz::largest_allocation_during;
use raftwood_wal::decode::decode_segment;
use raftwood_wal::format::{HEADER_LEN, SegmentHeader};

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut framed = SegmentHeader {
        seq: 0,
        first_index: 0,
        salt: 0,
    }
    .encode()
    .to_vec();
    framed.extend_from_slice(data);
    check(&framed);
});

fn check(bytes: &[u8]) {
    let range = bytes.as_ptr_range();
    let mut last_offset = 0;
    let (result, largest) = largest_allocation_during(|| {
        decode_segment(bytes, |offset, record| {
            assert!(offset >= last_offset && offset >= HEADER_LEN as u64);
            last_offset = offset;
            if let raftwood_wal::decode::Record::Entry { data, .. }
            | raftwood_wal::decode::Record::State(data) = record
            {
                assert!(data.is_empty() || range.contains(&data.as_ptr()));
            }
        })
    });
    assert!(
        largest <= bytes.len(),
        "decode of {} bytes allocated {largest} bytes at once",
        bytes.len()
    );
    if let Ok((header, Some(damage))) = result {
        assert!(damage.batch_offset <= damage.offset && damage.offset <= bytes.len() as u64);
        assert!(
            damage
                .commit_after
                .is_none_or(|at| at > damage.offset && at < bytes.len() as u64)
        );
        // Recovery scans in bounded pieces with the public candidate functions; over the whole
        // bytes they must find the commit record the whole-segment scan finds.
        assert_eq!(scan_by_candidates(bytes, header.salt, &damage), damage.commit_after);
    }
}

/// The scan after damage as recovery does it (`commit_candidates`, the examined-range rule,
/// `closes_its_batch`), over the whole bytes.
fn scan_by_candidates(
    bytes: &[u8],
    salt: u64,
    damage: &raftwood_wal::decode::Damage,
) -> Option<u64> {
    use raftwood_wal::decode::{closes_its_batch, commit_candidates};
    use raftwood_wal::format::COMMIT_FRAME_LEN;
    let mut examined_end = damage.batch_offset;
    for candidate in commit_candidates(bytes, 0, salt, damage.offset + 1) {
        if candidate.batch_start < examined_end {
            continue;
        }
        examined_end = candidate.at;
        let end = candidate.at as usize + COMMIT_FRAME_LEN;
        if closes_its_batch(&bytes[candidate.batch_start as usize..end], candidate) {
            return Some(candidate.at);
        }
    }
    None
}
