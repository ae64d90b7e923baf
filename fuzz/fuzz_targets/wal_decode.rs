//! Feeds arbitrary bytes to the WAL segment decoder: it must never panic, everything it returns
//! must lie within the input, and it must allocate nothing larger than the input (lengths are
//! checked against the bytes that remain; the decoder itself allocates nothing at all).
//!
//! The bytes are decoded twice: as they are (exercising the header checks) and behind a valid
//! header (so the fuzzer spends its time on frames, batches and commit records).
//!
//! Run from `fuzz/`: `cargo fuzz run -s none wal_decode -- -max_total_time=120`.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use raftwood_wal::decode::decode_segment;
use raftwood_wal::format::{HEADER_LEN, SegmentHeader};

/// Records the largest single allocation while `ARMED` (the approach of `snap_decode.rs`).
struct Counting;

static ARMED: AtomicBool = AtomicBool::new(false);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a size is recorded.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut framed = SegmentHeader { seq: 0, first_index: 0, salt: 0 }.encode().to_vec();
    framed.extend_from_slice(data);
    check(&framed);
});

fn check(bytes: &[u8]) {
    let range = bytes.as_ptr_range();
    let mut last_offset = 0;
    LARGEST.store(0, Ordering::Relaxed);
    ARMED.store(true, Ordering::Relaxed);
    let result = decode_segment(bytes, |offset, record| {
        assert!(offset >= last_offset && offset >= HEADER_LEN as u64);
        last_offset = offset;
        if let raftwood_wal::decode::Record::Entry { data, .. } | raftwood_wal::decode::Record::State(data) = record {
            assert!(data.is_empty() || range.contains(&data.as_ptr()));
        }
    });
    ARMED.store(false, Ordering::Relaxed);
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(largest <= bytes.len(), "decode of {} bytes allocated {largest} bytes at once", bytes.len());
    if let Ok((_, Some(damage))) = result {
        assert!(damage.batch_offset <= damage.offset && damage.offset <= bytes.len() as u64);
        assert!(damage.commit_after.is_none_or(|at| at > damage.offset && at < bytes.len() as u64));
    }
}
