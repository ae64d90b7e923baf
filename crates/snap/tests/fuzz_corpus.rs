//! Replays the fuzz corpus (`fuzz/corpus/snap_decode/`) through the decoder as a normal test, so
//! every input the fuzzer once found interesting stays checked without a nightly toolchain.
//!
//! Files named `ok-*` must decode; every file must decode without panicking, and what decodes must
//! re-encode to the same bytes. (The fuzz target also measures allocations, which needs its own
//! global allocator; here the bound is checked on the decoded parts.)
//!
//! The hand-made seeds are written by the ignored test below:
//! `cargo test -p raftwood-snap --test fuzz_corpus -- --ignored write_seeds`.

// Helpers outside `#[test]` functions are test code too (see clippy.toml).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use raftwood_snap::SnapshotId;
use raftwood_snap::format::{self, HEADER_LEN, Header};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/snap_decode")
}

/// The fuzz target's checks, less the allocation counter.
fn check(name: &str, data: &[u8]) {
    if let Some(head) = data.first_chunk::<HEADER_LEN>()
        && let Ok(header) = Header::decode(head)
    {
        assert_eq!(Header::decode(&header.encode()), Ok(header), "{name}");
    }
    match format::decode(data) {
        Ok(snap) => {
            assert!(
                snap.metadata.len() + snap.data.len() <= data.len(),
                "{name}"
            );
            assert_eq!(
                format::encode_to_vec(snap.id, &snap.metadata, &snap.data),
                data,
                "{name}"
            );
        }
        Err(err) => {
            assert!(!name.starts_with("ok-"), "{name} should decode: {err}");
            assert!(err.corruption().is_some(), "{name}: {err}");
        }
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(id) = SnapshotId::parse_file_name(text)
    {
        assert_eq!(id.file_name(), text, "{name}");
    }
}

#[test]
fn corpus_replays_without_panic() {
    let mut n = 0;
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        check(&name, &std::fs::read(entry.path()).unwrap());
        n += 1;
    }
    assert!(n >= 10, "the corpus has only {n} files");
}

/// The hand-made seeds: valid files, and one of each kind of damage the decoder names.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let id = SnapshotId { index: 42, term: 3 };
    let ok = format::encode_to_vec(id, b"voters=1,2,3", b"key=value\nother=thing\n");
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = ok.clone();
        f(&mut b);
        b
    };
    let header = |metadata_len, data_len| {
        Header {
            id,
            metadata_len,
            data_len,
            crc: 0,
            head_crc: 0,
        }
        .encode()
        .to_vec()
    };
    vec![
        (
            "ok-empty",
            format::encode_to_vec(SnapshotId { index: 1, term: 1 }, b"", b""),
        ),
        ("ok-small", ok.clone()),
        (
            "ok-binary",
            format::encode_to_vec(
                SnapshotId {
                    index: u64::MAX,
                    term: u64::MAX,
                },
                &[0, 255, 1],
                &(0..=255).collect::<Vec<u8>>(),
            ),
        ),
        ("empty", Vec::new()),
        ("magic-only", b"RAFTWSNP".to_vec()),
        ("header-cut", ok[..HEADER_LEN - 1].to_vec()),
        ("metadata-cut", ok[..HEADER_LEN + 3].to_vec()),
        ("data-cut", ok[..ok.len() - 1].to_vec()),
        ("trailing-byte", with(&|b| b.push(0))),
        ("bad-magic", with(&|b| b[0] = b'X')),
        ("bad-version", with(&|b| b[8] = 1)),
        ("bad-metadata", with(&|b| b[HEADER_LEN] ^= 0x01)),
        ("bad-head-crc", with(&|b| b[48] ^= 0x01)),
        ("bad-reserved", with(&|b| b[52] = 1)),
        ("bad-crc", with(&|b| b[12] ^= 1)),
        ("bad-data", with(&|b| *b.last_mut().unwrap() ^= 0x80)),
        ("huge-data-len", header(0, u64::MAX)),
        ("overflowing-lengths", header(u64::MAX, 49)),
        ("lengths-past-end", header(1 << 40, 1 << 40)),
        (
            "file-name",
            b"0000000000000003-000000000000002a.snap".to_vec(),
        ),
    ]
}

#[test]
fn seeds_are_in_the_corpus() {
    for (name, bytes) in seeds() {
        let on_disk = std::fs::read(corpus_dir().join(name))
            .unwrap_or_else(|e| panic!("seed {name}: {e}; run the ignored test write_seeds"));
        assert_eq!(on_disk, bytes, "seed {name} is stale; run write_seeds");
    }
}

#[test]
#[ignore = "writes the seed files into fuzz/corpus/snap_decode"]
fn write_seeds() {
    std::fs::create_dir_all(corpus_dir()).unwrap();
    for (name, bytes) in seeds() {
        std::fs::write(corpus_dir().join(name), bytes).unwrap();
    }
}
