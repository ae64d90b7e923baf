//! Replays the checked-in fuzz corpus (`fuzz/corpus/wal_decode/`) through the segment decoder on
//! stable Rust, so `cargo test` covers every input the fuzzer ever kept or crashed on.
//!
//! The seed files (`seed-*`) are written by this file too:
//! `WAL_REGENERATE_CORPUS=1 cargo test -p raftwood-wal --test fuzz_corpus`. Inputs the fuzzer
//! found worth keeping are copied in by hand under their libFuzzer names (`crash-*` and the like).
//!
//! Each input with a valid header is also opened as a one-segment log and made to rotate, which
//! is where numbers from the disk are incremented (`seed-seq-max`, `seed-index-max`: issue 9,
//! item 5, both of which used to panic there).

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use raftwood_wal::decode::{Record, decode_header, decode_segment};
use raftwood_wal::format::{HEADER_LEN, SegmentHeader, segment_name};
use raftwood_wal::{Marker, Options, Wal};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/wal_decode")
}

/// The same checks as `fuzz/fuzz_targets/wal_decode.rs` (keep the two in step).
fn check(bytes: &[u8]) {
    let range = bytes.as_ptr_range();
    let mut last_offset = 0;
    let result = decode_segment(bytes, |offset, record| {
        assert!(offset >= last_offset && offset >= HEADER_LEN as u64);
        last_offset = offset;
        if let Record::Entry { data, .. } | Record::State(data) = record {
            assert!(data.is_empty() || range.contains(&data.as_ptr()));
        }
    });
    if let Ok((header, Some(damage))) = result {
        assert!(damage.batch_offset <= damage.offset && damage.offset <= bytes.len() as u64);
        assert!(
            damage
                .commit_after
                .is_none_or(|at| at > damage.offset && at < bytes.len() as u64)
        );
        // Recovery scans in bounded pieces with the public candidate functions; over the whole
        // bytes they must find the commit record the whole-segment scan finds.
        assert_eq!(
            scan_by_candidates(bytes, header.salt, &damage),
            damage.commit_after
        );
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

/// Opens `bytes` as the only segment of a log (if its header is valid) and makes the log rotate
/// on each batch: errors are fine, a panic is not.
fn check_as_log(bytes: &[u8]) {
    let Ok(header) = decode_header(bytes) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path()
            .join(segment_name(header.seq, header.first_index)),
        bytes,
    )
    .unwrap();
    let options = Options {
        segment_size: 1,
        fsync: false,
        ..Options::default()
    };
    let Ok((mut wal, _)) = Wal::open(dir.path(), options) else {
        return;
    };
    let _ = wal.append_state(b"state").and_then(|()| wal.sync());
    let next = wal.last_index().map_or(1, |i| i.saturating_add(1));
    let _ = wal.append_entry(next, b"entry").and_then(|()| wal.sync());
}

#[test]
fn every_corpus_input_decodes_without_panicking() {
    let mut count = 0;
    for item in std::fs::read_dir(corpus_dir()).unwrap() {
        let data = std::fs::read(item.unwrap().path()).unwrap();
        check(&data);
        check_as_log(&data);
        let mut framed = SegmentHeader {
            seq: 0,
            first_index: 0,
            salt: 0,
        }
        .encode()
        .to_vec();
        framed.extend_from_slice(&data);
        check(&framed);
        count += 1;
    }
    assert!(
        count >= 5,
        "the corpus should hold the seeds, found {count} files"
    );
}

/// Writes the seed inputs: real segments, whole and damaged, and bare frames.
#[test]
fn regenerate_seed_corpus() {
    if std::env::var_os("WAL_REGENERATE_CORPUS").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(
            dir.path(),
            Options {
                fsync: false,
                ..Options::default()
            },
        )
        .unwrap();
        wal.append_state(b"term=1 vote=1 commit=0").unwrap();
        wal.append_entry(1, b"put a 1").unwrap();
        wal.append_entry(2, b"put b 2").unwrap();
        wal.sync().unwrap();
        wal.append_marker(Marker { index: 2, term: 1 }).unwrap();
        wal.append_entry(2, b"put b 3").unwrap();
        wal.sync().unwrap();
        wal.append_entry(3, &[0x5a; 200]).unwrap();
        wal.sync().unwrap();
        wal.append_reset_marker(Marker { index: 3, term: 2 })
            .unwrap();
        wal.append_entry(4, b"put c 4").unwrap();
        wal.sync().unwrap();
    }
    let segment = std::fs::read(
        &Wal::open(dir.path(), Options::default())
            .unwrap()
            .0
            .segment_paths()[0],
    )
    .unwrap();
    let out = corpus_dir();
    std::fs::create_dir_all(&out).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(out.join(name), bytes).unwrap();
    write("seed-segment", &segment);
    write("seed-header-only", &segment[..HEADER_LEN]);
    write("seed-frames-without-header", &segment[HEADER_LEN..]);
    write("seed-torn-tail", &segment[..segment.len() - 7]);
    let mut zeroed = segment.clone();
    zeroed.extend_from_slice(&[0; 64]);
    write("seed-zeroed-tail", &zeroed);
    let mut flipped = segment.clone();
    flipped[HEADER_LEN + 20] ^= 0x10;
    write("seed-corrupt-middle", &flipped);

    // Numbers at their maximum: the next segment's sequence number, or "one past the highest
    // index", would overflow (issue 9, item 5).
    let segment_with = |seq: u64, records: &dyn Fn(&mut Wal)| {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            fsync: false,
            ..Options::default()
        };
        let header = SegmentHeader {
            seq,
            first_index: 0,
            salt: 0x5eed,
        };
        std::fs::write(dir.path().join(segment_name(seq, 0)), header.encode()).unwrap();
        let (mut wal, _) = Wal::open(dir.path(), options).unwrap();
        records(&mut wal);
        std::fs::read(&wal.segment_paths()[0]).unwrap()
    };
    write(
        "seed-seq-max",
        &segment_with(u64::MAX, &|wal| {
            wal.append_entry(1, b"a").unwrap();
            wal.sync().unwrap();
        }),
    );
    write(
        "seed-index-max",
        &segment_with(0, &|wal| {
            wal.append_state(b"term=1").unwrap();
            wal.append_entry(u64::MAX, b"last").unwrap();
            wal.sync().unwrap();
        }),
    );
}
