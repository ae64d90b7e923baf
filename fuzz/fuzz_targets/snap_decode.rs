//! Fuzz target for the snapshot file decoder (`raftwood_snap::format::decode`, the same code the
//! store reads files with) and the header and file-name decoders.
//!
//! Checks, on any input:
//! - no panic;
//! - no single allocation during `decode` larger than the input (plus a little slack for the
//!   error's placeholder path): lengths are checked against the size before allocating;
//! - what decodes re-encodes to exactly the input (no two encodings of one snapshot);
//! - a header that decodes re-encodes to the same header, and a file name that parses prints back
//!   to the same name.
//!
//! Run from `fuzz/`: `cargo fuzz run -s none snap_decode -- -max_total_time=180`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raftwood_fuzz::largest_allocation_during;
use raftwood_snap::SnapshotId;
use raftwood_snap::format::{self, HEADER_LEN, Header};

/// Bytes allowed beyond the input's length (the `<bytes>` path of an error, a few small vectors).
const SLACK: usize = 64;

fuzz_target!(|data: &[u8]| {
    // The header decoder alone.
    if let Some(head) = data.first_chunk::<HEADER_LEN>()
        && let Ok(header) = Header::decode(head)
    {
        let _ = header.check_file_len(data.len() as u64);
        assert_eq!(Header::decode(&header.encode()), Ok(header));
    }

    // The whole-file decoder, with its allocations measured.
    let (result, largest) = largest_allocation_during(|| format::decode(data));
    assert!(
        largest <= data.len() + SLACK,
        "decode of {} bytes allocated {largest} bytes at once",
        data.len()
    );
    if let Ok(snap) = result {
        assert_eq!(
            format::encode_to_vec(snap.id, &snap.metadata, &snap.data),
            data
        );
    }

    // File names.
    if let Ok(name) = std::str::from_utf8(data)
        && let Some(id) = SnapshotId::parse_file_name(name)
    {
        assert_eq!(id.file_name(), name);
    }
});
