//! Frames: how messages and snapshot chunks are cut out of a TCP byte stream.
//!
//! ```text
//!  0        4        8      9
//!  +--------+--------+------+---------------------------+
//!  | length | crc32  | kind | payload (length - 1 bytes) |
//!  +--------+--------+------+---------------------------+
//!    u32 LE   u32 LE   u8
//! ```
//!
//! `length` counts the kind byte and the payload, so it is at least 1; it is checked against the
//! maximum frame size before anything is allocated for the frame. `crc32` (IEEE, crc32fast)
//! covers the kind byte and the payload: TCP's own checksum is 16 bits and misses damage a
//! buggy proxy or NIC can do. Kinds: 1 = a [`Message`] (payload: [`crate::codec::encode`]), 2 = a
//! snapshot header ([`SnapshotHeader`]), 3 = a snapshot chunk (payload: raw snapshot bytes).
//! Kind 0 is never valid, so a run of zeroes is garbage rather than a frame.

use raftwood_raft::Message;

use super::error::FrameError;
use super::snapshot::SnapshotHeader;
use crate::codec;

/// The bytes before the kind: length and checksum.
pub const FRAME_HEADER_LEN: usize = 8;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// One raft message, whole (any kind but a snapshot with data).
    Message = 1,
    /// A snapshot message with its data removed, and the data's length: chunks follow.
    SnapshotHeader = 2,
    /// The next piece of the snapshot data announced by the last header.
    SnapshotChunk = 3,
}

impl FrameKind {
    fn from_byte(byte: u8) -> Result<FrameKind, FrameError> {
        match byte {
            1 => Ok(FrameKind::Message),
            2 => Ok(FrameKind::SnapshotHeader),
            3 => Ok(FrameKind::SnapshotChunk),
            other => Err(FrameError::UnknownKind(other)),
        }
    }
}

/// A checked frame, borrowing its payload from the bytes it was cut from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// What the payload is.
    pub kind: FrameKind,
    /// The bytes after the kind byte.
    pub payload: &'a [u8],
}

/// A frame's payload, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload<'a> {
    /// A raft message.
    Message(Message),
    /// The start of a chunked snapshot.
    SnapshotHeader(SnapshotHeader),
    /// A piece of snapshot data.
    SnapshotChunk(&'a [u8]),
}

impl<'a> Frame<'a> {
    /// Decodes the payload as the kind says.
    pub fn decode(&self) -> Result<Payload<'a>, FrameError> {
        Ok(match self.kind {
            FrameKind::Message => Payload::Message(codec::decode(self.payload, "message frame")?),
            FrameKind::SnapshotHeader => {
                Payload::SnapshotHeader(codec::decode(self.payload, "snapshot header frame")?)
            }
            FrameKind::SnapshotChunk => Payload::SnapshotChunk(self.payload),
        })
    }
}

/// A frame's length and checksum, read from its first [`FRAME_HEADER_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Bytes after the header: the kind byte and the payload.
    pub len: usize,
    /// The stored checksum of those bytes.
    pub crc: u32,
}

/// Reads a frame header, refusing a length of 0 or above `max_frame` before the caller
/// allocates anything for the body.
pub fn parse_header(
    bytes: [u8; FRAME_HEADER_LEN],
    max_frame: usize,
) -> Result<FrameHeader, FrameError> {
    let [l0, l1, l2, l3, c0, c1, c2, c3] = bytes;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    if len == 0 {
        return Err(FrameError::Empty);
    }
    let len = usize::try_from(len).map_err(|_| FrameError::Oversize {
        len: u64::from(len),
        max: max_frame,
    })?;
    if len > max_frame {
        return Err(FrameError::Oversize {
            len: len as u64,
            max: max_frame,
        });
    }
    Ok(FrameHeader {
        len,
        crc: u32::from_le_bytes([c0, c1, c2, c3]),
    })
}

/// Checks a frame body (exactly `header.len` bytes) against its header's checksum and splits it
/// into kind and payload.
pub fn check_body<'a>(header: &FrameHeader, body: &'a [u8]) -> Result<Frame<'a>, FrameError> {
    debug_assert_eq!(body.len(), header.len, "the caller reads exactly len bytes");
    let computed = crc32fast::hash(body);
    if computed != header.crc {
        return Err(FrameError::Checksum {
            stored: header.crc,
            computed,
        });
    }
    let (&kind, payload) = body.split_first().ok_or(FrameError::Empty)?;
    Ok(Frame {
        kind: FrameKind::from_byte(kind)?,
        payload,
    })
}

/// The pure frame decoder (what the fuzz target drives): the first frame of `bytes`, and how
/// many bytes it took, or `None` if `bytes` holds only part of a frame so far. Allocates
/// nothing; an error means the stream is garbage and its connection must be closed.
pub fn decode_frame(
    bytes: &[u8],
    max_frame: usize,
) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some((head, rest)) = bytes.split_first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(None);
    };
    let header = parse_header(*head, max_frame)?;
    let Some(body) = rest.get(..header.len) else {
        return Ok(None);
    };
    Ok(Some((
        check_body(&header, body)?,
        FRAME_HEADER_LEN + header.len,
    )))
}

/// The length field of a frame whose payload is `payload_len` bytes: the kind byte and the
/// payload, checked against `max_frame_size` before anything is framed. A payload of 4 GiB or
/// more cannot be framed at all (the field is a `u32`); it is refused as oversize too.
pub fn frame_len(payload_len: usize, max_frame_size: usize) -> Result<u32, FrameError> {
    let oversize = || FrameError::Oversize {
        len: (payload_len as u64).saturating_add(1),
        max: max_frame_size,
    };
    let len = payload_len.checked_add(1).ok_or_else(oversize)?;
    if len > max_frame_size {
        return Err(oversize());
    }
    u32::try_from(len).map_err(|_| oversize())
}

/// The header and kind byte of a frame whose payload is `payload`: written before the payload,
/// so a snapshot chunk goes out without being copied. Refused, before any work, when the frame
/// would exceed `max_frame_size` ([`frame_len`]).
pub fn frame_prefix(
    kind: FrameKind,
    payload: &[u8],
    max_frame_size: usize,
) -> Result<[u8; FRAME_HEADER_LEN + 1], FrameError> {
    let len = frame_len(payload.len(), max_frame_size)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&[kind as u8]);
    crc.update(payload);
    let mut prefix = [0; FRAME_HEADER_LEN + 1];
    prefix[..4].copy_from_slice(&len.to_le_bytes());
    prefix[4..8].copy_from_slice(&crc.finalize().to_le_bytes());
    prefix[8] = kind as u8;
    Ok(prefix)
}

/// One whole frame: prefix and payload. For tests, tools and the fuzz corpus, which build small
/// frames; the transport's writer uses [`frame_prefix`] with its configured maximum.
///
/// # Panics
/// If `payload` is 4 GiB or more (it cannot be framed).
pub fn encode_frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let prefix = frame_prefix(kind, payload, u32::MAX as usize)
        .expect("encode_frame is given payloads below 4 GiB");
    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + 1 + payload.len());
    frame.extend_from_slice(&prefix);
    frame.extend_from_slice(payload);
    frame
}

/// A message as one frame ([`encode_frame`]; same panic).
pub fn encode_message(message: &Message) -> Vec<u8> {
    encode_frame(FrameKind::Message, &codec::encode(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use raftwood_raft::MessageBody;

    fn heartbeat(commit: u64) -> Message {
        Message {
            from: 1,
            to: 2,
            term: 3,
            body: MessageBody::Heartbeat {
                commit,
                context: None,
            },
        }
    }

    /// 256 cases by default (a fraction of a second); `RAFTWOOD_PROPTEST_CASES=100000` for a
    /// long run (the workspace's variable; proptest's own `PROPTEST_CASES` works too).
    fn cases() -> u32 {
        ["RAFTWOOD_PROPTEST_CASES", "PROPTEST_CASES"]
            .iter()
            .find_map(|var| std::env::var(var).ok()?.parse().ok())
            .unwrap_or(256)
    }

    /// Fails when the length is converted before it is checked (a payload of 4 GiB or more
    /// panicked in the `u32` conversion): no payload is allocated, only its length is given.
    #[test]
    fn a_frame_length_is_checked_before_it_is_framed() {
        assert!(matches!(frame_len(9, 10), Ok(10)));
        let max = 8 << 20;
        for fake in [max, 4 << 30, (4 << 30) - 1, usize::MAX] {
            assert!(
                matches!(frame_len(fake, max), Err(FrameError::Oversize { .. })),
                "{fake}"
            );
        }
        assert!(matches!(
            frame_len(4 << 30, usize::MAX),
            Err(FrameError::Oversize { .. })
        ));
        assert!(frame_prefix(FrameKind::Message, &[0; 10], 10).is_err());
    }

    #[test]
    fn a_message_survives_the_round_trip() {
        let frame = encode_message(&heartbeat(7));
        let (decoded, used) = decode_frame(&frame, 1 << 20).unwrap().unwrap();
        assert_eq!(used, frame.len());
        assert_eq!(decoded.decode().unwrap(), Payload::Message(heartbeat(7)));
    }

    #[test]
    fn every_prefix_is_incomplete_not_an_error() {
        let frame = encode_message(&heartbeat(7));
        for cut in 0..frame.len() {
            assert!(
                decode_frame(&frame[..cut], 1 << 20).unwrap().is_none(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn oversize_and_empty_lengths_are_refused_from_the_header_alone() {
        let mut head = [0u8; 8];
        head[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_frame(&head, 1024),
            Err(FrameError::Oversize { .. })
        ));
        assert!(matches!(
            decode_frame(&[0; 8], 1024),
            Err(FrameError::Empty)
        ));
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum_and_a_bad_kind_is_refused() {
        let mut frame = encode_message(&heartbeat(7));
        let last = frame.len() - 1;
        frame[last] ^= 1;
        assert!(matches!(
            decode_frame(&frame, 1 << 20),
            Err(FrameError::Checksum { .. })
        ));
        let bad_kind = {
            let mut f = encode_frame(FrameKind::Message, b"x");
            f[8] = 9;
            let crc = crc32fast::hash(&f[8..]);
            f[4..8].copy_from_slice(&crc.to_le_bytes());
            f
        };
        assert!(matches!(
            decode_frame(&bad_kind, 64),
            Err(FrameError::UnknownKind(9))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(cases()))]

        #[test]
        fn encode_then_decode_is_identity(commit in any::<u64>(), chunk in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut stream = encode_message(&heartbeat(commit));
            stream.extend(encode_frame(FrameKind::SnapshotChunk, &chunk));
            let (first, used) = decode_frame(&stream, 4096).unwrap().unwrap();
            prop_assert_eq!(first.decode().unwrap(), Payload::Message(heartbeat(commit)));
            let (second, rest) = decode_frame(&stream[used..], 4096).unwrap().unwrap();
            prop_assert_eq!(second.decode().unwrap(), Payload::SnapshotChunk(&chunk));
            prop_assert_eq!(used + rest, stream.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut rest = &bytes[..];
            while let Ok(Some((frame, used))) = decode_frame(rest, 128) {
                let _ = frame.decode();
                prop_assert!(used <= rest.len());
                rest = &rest[used..];
            }
        }
    }
}
