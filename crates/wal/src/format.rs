//! The byte format: segment names, the segment header and record frames.
//!
//! This file is the single place that knows how bytes are laid out on disk; the crate README and the
//! book chapter `docs/src/wal.md` draw the same layout as diagrams. Everything here is pure (no I/O).
//!
//! ```text
//! segment header (40 bytes)
//! 0        8        12                20                28                36       40
//! +--------+--------+-----------------+-----------------+-----------------+--------+
//! | magic  |version |       seq       |   first_index   |      salt       | crc32  |
//! +--------+--------+-----------------+-----------------+-----------------+--------+
//!
//! frame (12-byte header, then the payload)
//! 0          4      5        8          12
//! +----------+------+--------+----------+------------------+
//! | crc u32  | kind | 0 0 0  | len u32  | payload, len B   |
//! +----------+------+--------+----------+------------------+
//! crc = crc32 of bytes 4..12+len: one contiguous run, hashed in one call
//!
//! commit payload (20 bytes): where its batch starts, the segment's salt, the batch's crc
//! 0                 8                 16       20
//! +-----------------+-----------------+--------+
//! |   batch_start   |      salt       | crc32  |
//! +-----------------+-----------------+--------+
//!
//! marker payload (16 bytes), kind 3 (plain) and kind 5 (log-resetting, format version 3)
//! 0                 8                 16
//! +-----------------+-----------------+
//! |      index      |      term       |
//! +-----------------+-----------------+
//! ```
//!
//! The commit record is *bound to its place*: `batch_start` is the batch's own offset in the
//! segment and `salt` is the random number in this segment's header. So commit-shaped bytes inside
//! a payload (a client storing a copy of WAL bytes, say) are not a valid commit record anywhere but
//! at the one offset they name, in the one segment whose salt they carry (see
//! [`crate::decode`] for the rules recovery applies).
//!
//! All integers are little-endian. Non-goals: alignment padding (nothing here is read by casting
//! bytes to structs) and compression.

/// The eight bytes every segment file starts with.
pub const MAGIC: [u8; 8] = *b"RWOODWAL";

/// The format version this crate writes and reads.
///
/// Version 3 added the log-resetting snapshot marker (kind 5). Version 2 (unreleased) added the
/// header's salt and bound each commit record to its batch's offset and to that salt. Neither
/// version 1 nor 2 was released; only version 3 is read.
pub const VERSION: u32 = 3;

/// Length of the segment header in bytes.
pub const HEADER_LEN: usize = 40;

/// Length of a frame header (crc, kind, reserved, length) in bytes.
pub const FRAME_HEADER_LEN: usize = 12;

/// The largest payload a frame may carry: 64 MiB.
///
/// The writer refuses larger records and the decoder treats a larger length field as damage, so a
/// corrupted length can never ask for more than this (and never more than the bytes that remain).
pub const MAX_PAYLOAD_LEN: usize = 64 << 20;

/// Payload length of a commit record: the batch's start offset (u64), the segment's salt (u64)
/// and the batch crc32 (u32).
pub const COMMIT_PAYLOAD_LEN: usize = 20;

/// Length of a whole commit frame, header included.
pub const COMMIT_FRAME_LEN: usize = FRAME_HEADER_LEN + COMMIT_PAYLOAD_LEN;

/// Payload length of a snapshot marker, plain or log-resetting: index (u64) and term (u64).
pub const MARKER_PAYLOAD_LEN: usize = 16;

/// Suffix of segment file names.
pub const SEGMENT_SUFFIX: &str = ".wal";

/// Suffix of a segment still being made; such files are removed on open.
pub const TEMP_SUFFIX: &str = ".wal.tmp";

/// The kind byte of a frame.
///
/// Kind 0 is deliberately invalid: zeroed space (a preallocated or never-written region) therefore
/// reads as "no more data" instead of as a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// An entry: payload is `index: u64` then the entry's bytes.
    Entry = 1,
    /// The opaque state (a raft node's hard state): payload is the bytes.
    State = 2,
    /// A snapshot marker: payload is `index: u64`, `term: u64`.
    Marker = 3,
    /// Ends a batch: payload is `batch_start: u64` (offset in the segment of the batch's first
    /// frame; the batch is the bytes from there up to this frame), `salt: u64` (the segment
    /// header's) and `batch_crc: u32` (crc32 of exactly the batch's bytes).
    Commit = 4,
    /// A log-resetting snapshot marker: payload is `index: u64`, `term: u64`, as a marker. It
    /// means "the log now starts after this snapshot": every entry and marker written before it,
    /// at any index, is dropped (a follower installing a snapshot over a log that conflicts with
    /// it). Added in format version 3.
    ResetMarker = 5,
}

impl Kind {
    /// The kind for a byte, or `None` for 0 and unknown values.
    pub fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Entry),
            2 => Some(Kind::State),
            3 => Some(Kind::Marker),
            4 => Some(Kind::Commit),
            5 => Some(Kind::ResetMarker),
            _ => None,
        }
    }
}

/// What a segment header says about its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Position of the segment in the log; consecutive, starting at 0 for a new log.
    pub seq: u64,
    /// Index of the first entry the segment was started for (see [`segment_name`]).
    pub first_index: u64,
    /// A random number chosen when the segment is made, repeated in every commit record of the
    /// segment, so bytes that imitate a commit record cannot be valid without knowing it.
    pub salt: u64,
}

impl SegmentHeader {
    /// Encodes the header into its 32 bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..20].copy_from_slice(&self.seq.to_le_bytes());
        out[20..28].copy_from_slice(&self.first_index.to_le_bytes());
        out[28..36].copy_from_slice(&self.salt.to_le_bytes());
        let crc = crc32fast::hash(&out[0..36]);
        out[36..40].copy_from_slice(&crc.to_le_bytes());
        out
    }
}

/// The segment file name for a sequence number and first index: `{seq:016x}-{first_index:016x}.wal`.
///
/// `first_index` is the index of the first entry of the batch that started the segment, or one past
/// the highest entry index the log held when the batch that started it had no entry. It is a hint
/// for people and for sorting: after an overwrite a segment may hold lower indexes.
///
/// ```
/// assert_eq!(
///     raftwood_wal::format::segment_name(1, 0x2a),
///     "0000000000000001-000000000000002a.wal"
/// );
/// ```
pub fn segment_name(seq: u64, first_index: u64) -> String {
    format!("{seq:016x}-{first_index:016x}{SEGMENT_SUFFIX}")
}

/// Parses a segment file name back into `(seq, first_index)`; `None` if it is not one.
///
/// ```
/// use raftwood_wal::format::parse_segment_name;
/// assert_eq!(parse_segment_name("0000000000000001-000000000000002a.wal"), Some((1, 42)));
/// assert_eq!(parse_segment_name("notes.txt"), None);
/// ```
pub fn parse_segment_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(SEGMENT_SUFFIX)?;
    let (seq, first) = stem.split_once('-')?;
    let hex = |s: &str| {
        (s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| u64::from_str_radix(s, 16).ok())
        .flatten()
    };
    Some((hex(seq)?, hex(first)?))
}

/// Appends one frame (header and payload given in parts) to `out`.
///
/// The payload is passed as `head` and `tail` so an entry's index and bytes need no intermediate
/// buffer. The caller has checked the total length against [`MAX_PAYLOAD_LEN`].
pub(crate) fn put_frame(out: &mut Vec<u8>, kind: Kind, head: &[u8], tail: &[u8]) {
    let len = head.len() + tail.len();
    debug_assert!(
        len <= MAX_PAYLOAD_LEN,
        "invariant violated: payload {len} over the limit"
    );
    let start = out.len();
    out.reserve(FRAME_HEADER_LEN + len);
    out.extend_from_slice(&[0, 0, 0, 0, kind as u8, 0, 0, 0]);
    // Cannot truncate: len <= MAX_PAYLOAD_LEN < u32::MAX.
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(head);
    out.extend_from_slice(tail);
    // The crc goes first so that what it covers is one contiguous run: one call, no copies.
    let crc = crc32fast::hash(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Appends the commit frame that ends the batch starting at offset `batch_start` of the segment
/// whose header carries `salt`; `batch_crc` is the crc32 of the batch's bytes.
pub(crate) fn put_commit(out: &mut Vec<u8>, batch_start: u64, salt: u64, batch_crc: u32) {
    let mut payload = [0u8; COMMIT_PAYLOAD_LEN];
    payload[0..8].copy_from_slice(&batch_start.to_le_bytes());
    payload[8..16].copy_from_slice(&salt.to_le_bytes());
    payload[16..20].copy_from_slice(&batch_crc.to_le_bytes());
    put_frame(out, Kind::Commit, &payload, &[]);
}

/// A fresh salt for a new segment header: unpredictable to anyone who cannot read the files.
///
/// It comes from std's randomly keyed SipHash (`RandomState`, seeded from the OS), mixed with the
/// time and the sequence number; no extra dependency. Its only job is to be unguessable by a
/// client that controls payload bytes; it is not a cryptographic secret.
pub(crate) fn new_salt(seq: u64) -> u64 {
    use std::hash::BuildHasher;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::hash::RandomState::new().hash_one((seq, nanos, std::process::id()))
}

/// Reads a little-endian u32 at `at`; the caller has checked the bounds.
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// Reads a little-endian u64 at `at`; the caller has checked the bounds.
pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_like_their_numbers() {
        let a = segment_name(9, 100);
        let b = segment_name(10, 5);
        assert!(a < b);
        assert_eq!(parse_segment_name(&a), Some((9, 100)));
    }

    #[test]
    fn names_reject_upper_case_and_wrong_widths() {
        assert_eq!(
            parse_segment_name("000000000000000A-0000000000000000.wal"),
            None
        );
        assert_eq!(parse_segment_name("0-0.wal"), None);
        assert_eq!(
            parse_segment_name("0000000000000000-0000000000000000.wal.tmp"),
            None
        );
    }

    #[test]
    fn zero_is_not_a_kind() {
        assert_eq!(Kind::from_byte(0), None);
        assert_eq!(Kind::from_byte(6), None);
        assert_eq!(Kind::from_byte(5), Some(Kind::ResetMarker));
        assert_eq!(Kind::from_byte(4), Some(Kind::Commit));
    }

    #[test]
    fn frame_layout_matches_the_diagram() {
        let mut out = Vec::new();
        put_frame(&mut out, Kind::State, b"ab", b"c");
        assert_eq!(out.len(), FRAME_HEADER_LEN + 3);
        assert_eq!(out[4], 2);
        assert_eq!(&out[5..8], &[0, 0, 0]);
        assert_eq!(u32_at(&out, 8), 3);
        assert_eq!(u32_at(&out, 0), crc32fast::hash(&out[4..]));
        assert_eq!(&out[12..], b"abc");
    }
}
