//! Replays the checked-in fuzz corpus (`fuzz/corpus/node_frame/`) through the frame decoder on
//! stable Rust, so `cargo test` covers every input the fuzzer ever kept or crashed on.
//!
//! The seed files (`seed-*`) are written by this file too:
//! `NODE_REGENERATE_CORPUS=1 cargo test -p raftwood-node --test fuzz_corpus`. Inputs the fuzzer
//! found worth keeping are copied in by hand under their libFuzzer names (`crash-*` and the
//! like).

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use bytes::Bytes;
use raftwood_node::codec;
use raftwood_node::transport::frame::{
    FRAME_HEADER_LEN, FrameKind, decode_frame, encode_frame, encode_message,
};
use raftwood_node::transport::snapshot::split;
use raftwood_raft::{Entry, Message, MessageBody, Snapshot};

/// The fuzz target's maximum frame.
const MAX_FRAME: usize = 1 << 16;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/node_frame")
}

/// The same checks as `fuzz/fuzz_targets/node_frame.rs` (keep the two in step).
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

#[test]
fn every_corpus_input_decodes_without_panicking() {
    let mut count = 0;
    let mut frames = 0;
    for item in std::fs::read_dir(corpus_dir()).unwrap() {
        let data = std::fs::read(item.unwrap().path()).unwrap();
        frames += check(&data);
        count += 1;
    }
    assert!(
        count >= 5,
        "the corpus should hold the seeds, found {count} files"
    );
    assert!(frames > 0, "some seeds hold valid frames");
}

/// Writes the seed inputs: a stream of real frames (messages, a chunked snapshot), and damaged
/// variants of it.
#[test]
fn regenerate_seed_corpus() {
    if std::env::var_os("NODE_REGENERATE_CORPUS").is_none() {
        return;
    }
    let append = Message {
        from: 1,
        to: 2,
        term: 2,
        body: MessageBody::Append {
            prev_index: 4,
            prev_term: 1,
            entries: vec![Entry {
                index: 5,
                term: 2,
                data: Bytes::from_static(b"put a 1"),
                ..Default::default()
            }],
            commit: 4,
        },
    };
    let heartbeat = Message {
        from: 1,
        to: 2,
        term: 2,
        body: MessageBody::Heartbeat {
            commit: 5,
            context: Some(Bytes::from_static(b"read-1")),
        },
    };
    let mut snapshot = Snapshot::default();
    snapshot.metadata.index = 9;
    snapshot.metadata.term = 2;
    snapshot.data = Bytes::from(vec![0xab; 100]);
    let (header, data) = split(Message {
        from: 1,
        to: 2,
        term: 2,
        body: MessageBody::Snapshot {
            snapshot: Box::new(snapshot),
        },
    })
    .unwrap();

    let mut stream = encode_message(&append);
    stream.extend(encode_message(&heartbeat));
    stream.extend(encode_frame(
        FrameKind::SnapshotHeader,
        &codec::encode(&header),
    ));
    for chunk in data.chunks(40) {
        stream.extend(encode_frame(FrameKind::SnapshotChunk, chunk));
    }
    assert_eq!(check(&stream), 6);

    let out = corpus_dir();
    std::fs::create_dir_all(&out).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(out.join(name), bytes).unwrap();
    write("seed-stream", &stream);
    write("seed-message", &encode_message(&append));
    write("seed-truncated", &stream[..stream.len() - 5]);
    let mut flipped = stream.clone();
    flipped[FRAME_HEADER_LEN + 3] ^= 0x20;
    write("seed-bad-crc", &flipped);
    let mut oversize = Vec::from((MAX_FRAME as u32 + 1).to_le_bytes());
    oversize.extend([0; 8]);
    write("seed-oversize", &oversize);
    write("seed-zero-length", &[0; 16]);
    write(
        "seed-header-only",
        &encode_frame(FrameKind::Message, b"")[..8],
    );
    let mut kind9 = encode_frame(FrameKind::Message, b"abc");
    kind9[8] = 9;
    let crc = crc32fast::hash(&kind9[8..]);
    kind9[4..8].copy_from_slice(&crc.to_le_bytes());
    write("seed-unknown-kind", &kind9);
    // A well-framed payload that claims a huge entry vector.
    // from, to, term (u64 each), the body's variant (u32), prev_index, prev_term: then the
    // entries' length (u64), here made to claim u64::MAX entries.
    let mut lying = codec::encode(&append);
    let at = 3 * 8 + 4 + 2 * 8;
    assert_eq!(lying[at..at + 8], 1u64.to_le_bytes());
    lying[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let lying_frame = encode_frame(FrameKind::Message, &lying);
    let (frame, _) = decode_frame(&lying_frame, MAX_FRAME).unwrap().unwrap();
    assert!(frame.decode().is_err());
    write("seed-lying-length", &lying_frame);
}
