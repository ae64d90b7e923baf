//! Feeds arbitrary bytes to the peer transport's frame decoder, as a stream: frame after frame
//! until the bytes run out or the decoder refuses them. It must never panic, every frame it
//! cuts must lie within the input, and decoding must allocate nothing larger than the input or
//! serde's cautious preallocation cap (1 MiB: a sequence length read from the bytes reserves at
//! most that much before its elements have actually been read).
//!
//! Run from `fuzz/`: `cargo fuzz run -s none node_frame -- -max_total_time=120`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raftwood_fuzz::largest_allocation_during;
use raftwood_node::transport::frame::{FRAME_HEADER_LEN, decode_frame};

/// The largest frame this target accepts: small, so the fuzzer reaches whole frames.
const MAX_FRAME: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let (frames, largest) = largest_allocation_during(|| check(data));
    assert!(
        largest <= data.len().max(1 << 20),
        "decoding {} bytes ({frames} frames) allocated {largest} bytes at once",
        data.len()
    );
});

/// The same checks as `crates/node/tests/fuzz_corpus.rs` (keep the two in step).
fn check(bytes: &[u8]) -> usize {
    let mut rest = bytes;
    let mut frames = 0;
    while let Ok(Some((frame, used))) = decode_frame(rest, MAX_FRAME) {
        assert!(used > FRAME_HEADER_LEN && used <= rest.len());
        assert!(rest.as_ptr_range().contains(&frame.payload.as_ptr()) || frame.payload.is_empty());
        let _ = frame.decode();
        rest = &rest[used..];
        frames += 1;
    }
    frames
}
