//! The segment decoder: bytes in, validated batches (or a precise description of the damage) out.
//!
//! This is the gateway where data enters from the disk, so it trusts nothing: every length is checked
//! against [`MAX_PAYLOAD_LEN`] and against the bytes that remain before it is used, it never panics,
//! and it allocates nothing (records borrow from the input). The fuzz target `wal_decode` drives it
//! with arbitrary bytes.
//!
//! A batch is yielded only once its commit record has been checked, so a caller never sees a record
//! of a batch that did not reach the disk whole. When decoding stops on invalid bytes the decoder
//! also says whether a *valid* commit record follows them; that one fact is what separates a torn
//! tail from corruption in the middle (see [`RecoveryMode`](crate::RecoveryMode)).
//!
//! # Which commit records count after damage
//! A payload may contain anything, commit-shaped bytes included (a client storing a copy of WAL
//! bytes as a value). So the scan after damage accepts a candidate at offset `at` only if all of
//! these hold, cheapest first:
//! 1. kind 4, reserved bytes zero, length 20 (O(1));
//! 2. its `salt` is this segment header's salt, a random number that never leaves the files (O(1));
//! 3. its `batch_start` lies at or after the start of the damaged batch, at least one frame header
//!    before `at`, and not inside a range an earlier candidate was already examined over (O(1));
//! 4. its frame crc (28 bytes, O(1));
//! 5. walking frame headers from `batch_start` by their lengths lands exactly on `at`, with no
//!    other commit frame on the way (a chain of frames, as the writer lays them out);
//! 6. the crc of the bytes from `batch_start` to `at` is its `batch_crc`.
//!
//! Rule 3's "not inside an examined range" makes the ranges that steps 5 and 6 touch disjoint, so
//! the whole scan reads each byte a bounded number of times: it is O(n) in the segment's length
//! whatever the bytes are (before the binding, a payload of fake commit frames made it
//! quadratic). What remains possible: someone who knows a segment's salt *and* the exact offset a
//! payload will land at can plant a commit record that counts (a chain of fake frames inside the
//! payload, closed by a commit bound to where they start). The salt is 64 random bits written only
//! into the segment's own files, so a client that can only choose payload bytes cannot; a copy of
//! WAL bytes from any other segment carries the wrong salt. Someone who can read the files can also
//! write them, which no checksum defends against. (Frames are not aligned, so alignment adds no
//! rule.) And rule 3 can hide a real commit record behind such a planted one; that too needs the
//! salt.
//!
//! ```
//! use raftwood_wal::decode::{Record, SegmentDecoder};
//! use raftwood_wal::{Options, Wal};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let (mut wal, _) = Wal::open(dir.path(), Options::default()).unwrap();
//! wal.append_entry(1, b"hello").unwrap();
//! wal.sync().unwrap();
//!
//! let bytes = std::fs::read(&wal.segment_paths()[0]).unwrap();
//! let (header, mut decoder) = SegmentDecoder::new(&bytes).unwrap();
//! assert_eq!(header.seq, 0);
//! let batch = decoder.next_batch().unwrap().expect("one batch");
//! let records: Vec<Record<'_>> = batch.records().collect();
//! assert_eq!(records, [Record::Entry { index: 1, data: b"hello" }]);
//! assert!(decoder.next_batch().unwrap().is_none(), "then a clean end");
//! ```

use crate::format::{
    COMMIT_FRAME_LEN, COMMIT_PAYLOAD_LEN, FRAME_HEADER_LEN, HEADER_LEN, Kind, MAGIC,
    MARKER_PAYLOAD_LEN, MAX_PAYLOAD_LEN, SegmentHeader, VERSION, u32_at, u64_at,
};

/// Why bytes are not a valid segment, header or frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than [`HEADER_LEN`] bytes.
    #[error("segment shorter than its header")]
    ShortHeader,
    /// The file does not start with [`MAGIC`].
    #[error("bad magic (not a raftwood WAL segment)")]
    BadMagic,
    /// A format version this crate does not read.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u32),
    /// The header's crc32 does not match.
    #[error("header checksum mismatch")]
    HeaderChecksum,
    /// The header disagrees with the file name.
    #[error("header says seq {seq:#x}, first index {first_index:#x}, the file name differs")]
    HeaderMismatch {
        /// Sequence number in the header.
        seq: u64,
        /// First index in the header.
        first_index: u64,
    },
    /// The bytes end inside a frame or before a batch's commit record.
    #[error("data ends before the batch's commit record")]
    Truncated,
    /// A kind byte of 0 (zeroed space) or an unknown kind.
    #[error("invalid record kind {0}")]
    InvalidKind(u8),
    /// The reserved bytes of a frame header are not zero.
    #[error("nonzero reserved bytes in frame header")]
    Reserved,
    /// A length field larger than the limit or than the bytes that remain.
    #[error("record length {0} out of bounds")]
    LengthOutOfBounds(u64),
    /// The frame's crc32 does not match.
    #[error("checksum mismatch")]
    FrameChecksum,
    /// A payload too short (or too long) for its kind.
    #[error("payload of {len} bytes is malformed for a {kind:?} record")]
    BadPayload {
        /// The frame's kind.
        kind: Kind,
        /// The payload's length.
        len: usize,
    },
    /// A commit record whose batch length or batch checksum does not match the batch before it.
    #[error("batch checksum mismatch")]
    BatchChecksum,
}

/// One record of a validated batch, borrowing from the decoded bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// An entry: its index and bytes.
    Entry {
        /// The entry's index.
        index: u64,
        /// The entry's bytes.
        data: &'a [u8],
    },
    /// The opaque state.
    State(&'a [u8]),
    /// A snapshot marker.
    Marker {
        /// Index of the snapshot.
        index: u64,
        /// Term of the snapshot.
        term: u64,
    },
    /// A log-resetting snapshot marker: every entry and marker before it is dropped.
    ResetMarker {
        /// Index of the snapshot.
        index: u64,
        /// Term of the snapshot.
        term: u64,
    },
}

/// Where and why decoding stopped before the end of the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset (from the start of the segment) of the first invalid frame.
    pub offset: u64,
    /// Byte offset where the damaged batch starts: the end of the last valid batch.
    pub batch_offset: u64,
    /// What was wrong at `offset`.
    pub error: DecodeError,
    /// Offset of a valid commit record after the damage, if there is one. `None` means every byte
    /// from `batch_offset` on could be an unfinished last batch (a torn tail).
    pub commit_after: Option<u64>,
}

/// A batch whose commit record checked out: its frames, ready to be read as records.
#[derive(Clone, Copy, Debug)]
pub struct BatchRef<'a> {
    /// Byte offset of the batch in the segment.
    pub offset: u64,
    /// The batch's frames, without the commit frame.
    frames: &'a [u8],
}

impl<'a> BatchRef<'a> {
    /// The batch's records, in the order they were appended.
    pub fn records(&self) -> Records<'a> {
        Records {
            frames: self.frames,
        }
    }

    /// Length of the batch in bytes, commit frame included.
    pub fn len(&self) -> usize {
        self.frames.len() + COMMIT_FRAME_LEN
    }

    /// Always false: a batch holds at least its commit frame.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Iterator over the records of a validated batch.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    frames: &'a [u8],
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        // The frames were validated (checksums included) by `next_batch`, so their checksums are
        // not computed again; the bounds still are, and a failed check ends the iteration.
        let (kind, payload, rest) = split_frame(self.frames, Verify::Bounds).ok()?;
        self.frames = rest;
        to_record(kind, payload).ok()
    }
}

/// Decodes one segment's bytes batch by batch.
#[derive(Clone, Debug)]
pub struct SegmentDecoder<'a> {
    bytes: &'a [u8],
    /// Offset in the segment file of `bytes[0]`: 0 for a whole segment, more for a window.
    base: u64,
    /// The header's salt, which every commit record of the segment repeats.
    salt: u64,
    /// Invariant: `pos <= bytes.len()` and `base + pos` is the end of a valid batch (or the
    /// header).
    pos: usize,
    /// Whether damage is followed by a scan for a valid commit record (`Damage::commit_after`);
    /// a window cannot see the bytes after it, so its caller scans.
    scan_after_damage: bool,
}

impl<'a> SegmentDecoder<'a> {
    /// Checks the segment header and returns it with a decoder positioned after it.
    pub fn new(bytes: &'a [u8]) -> Result<(SegmentHeader, SegmentDecoder<'a>), DecodeError> {
        let header = decode_header(bytes)?;
        Ok((
            header,
            SegmentDecoder {
                bytes,
                base: 0,
                salt: header.salt,
                pos: HEADER_LEN,
                scan_after_damage: true,
            },
        ))
    }

    /// A decoder over a *window* of a segment: `bytes` are the file's bytes from offset `base`
    /// on, where a batch starts, and `salt` is the segment header's. For reading a segment in
    /// bounded pieces: a batch that runs past the window's end is reported as
    /// [`DecodeError::Truncated`] (read a larger window from the same offset and retry), and
    /// damage comes with `commit_after: None` (the caller scans the rest of the file, see
    /// [`commit_candidates`]). Offsets in batches and damage are the file's.
    pub fn window(bytes: &'a [u8], base: u64, salt: u64) -> SegmentDecoder<'a> {
        SegmentDecoder {
            bytes,
            base,
            salt,
            pos: 0,
            scan_after_damage: false,
        }
    }

    /// Offset (in the file) just past the last valid batch returned so far.
    pub fn position(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The bytes not decoded yet (after [`SegmentDecoder::position`]).
    pub fn remaining(&self) -> &'a [u8] {
        &self.bytes[self.pos..]
    }

    /// The next valid batch; `Ok(None)` at a clean end (the bytes end exactly after a batch);
    /// `Err(damage)` at the first invalid byte. After an error the decoder stays where it was.
    pub fn next_batch(&mut self) -> Result<Option<BatchRef<'a>>, Damage> {
        let start = self.pos;
        if start == self.bytes.len() {
            return Ok(None);
        }
        match check_batch(self.bytes, self.base, self.salt, start) {
            Ok(commit_at) => {
                self.pos = commit_at + COMMIT_FRAME_LEN;
                Ok(Some(BatchRef {
                    offset: self.base + start as u64,
                    frames: &self.bytes[start..commit_at],
                }))
            }
            Err((offset, error)) => Err(Damage {
                offset: self.base + offset as u64,
                batch_offset: self.base + start as u64,
                error,
                commit_after: match self.scan_after_damage {
                    true => find_valid_commit(self.bytes, self.salt, start, offset + 1, &mut 0)
                        .map(|at| at as u64),
                    false => None,
                },
            }),
        }
    }
}

/// Decodes a whole segment: checks the header, then calls `visit` with each record of each valid
/// batch (and the batch's offset), in order, and returns the header and where decoding stopped
/// (`None` for a clean end).
///
/// This is what recovery does for one segment minus the policy, and what the fuzz target drives.
///
/// ```
/// use raftwood_wal::decode::decode_segment;
///
/// assert!(decode_segment(b"not a segment", |_, _| {}).is_err());
/// ```
pub fn decode_segment<'a>(
    bytes: &'a [u8],
    mut visit: impl FnMut(u64, Record<'a>),
) -> Result<(SegmentHeader, Option<Damage>), DecodeError> {
    let (header, mut decoder) = SegmentDecoder::new(bytes)?;
    loop {
        match decoder.next_batch() {
            Ok(Some(batch)) => batch
                .records()
                .for_each(|record| visit(batch.offset, record)),
            Ok(None) => return Ok((header, None)),
            Err(damage) => return Ok((header, Some(damage))),
        }
    }
}

/// A frame whose own checksum is right, as [`intact_frames`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntactFrame<'a> {
    /// A data frame (entry, state or marker).
    Record(Record<'a>),
    /// A commit frame (whether or not it matches a batch).
    Commit,
}

/// The frames from offset `from` on whose own checksums are right, in order, up to the first that
/// is not (or the end of the bytes): what a torn-tail repair is about to remove that still
/// decodes. A frame may decode while its batch did not reach the disk whole; more than one commit
/// frame among them means whole batches are in the bytes, which a crash does not explain.
///
/// Linear in the bytes walked; allocates nothing.
///
/// ```
/// use raftwood_wal::decode::{IntactFrame, Record, intact_frames};
/// use raftwood_wal::{Options, Wal};
///
/// let dir = tempfile::tempdir().unwrap();
/// let (mut wal, _) = Wal::open(dir.path(), Options::default()).unwrap();
/// wal.append_entry(1, b"a").unwrap();
/// wal.sync().unwrap();
/// let bytes = std::fs::read(&wal.segment_paths()[0]).unwrap();
/// let frames: Vec<_> = intact_frames(&bytes, 40).map(|(_, frame)| frame).collect();
/// assert_eq!(
///     frames,
///     [IntactFrame::Record(Record::Entry { index: 1, data: b"a" }), IntactFrame::Commit]
/// );
/// ```
pub fn intact_frames(bytes: &[u8], from: usize) -> IntactFrames<'_> {
    IntactFrames {
        bytes,
        pos: Some(from),
    }
}

/// Iterator returned by [`intact_frames`]: `(offset, frame)` pairs.
#[derive(Clone, Debug)]
pub struct IntactFrames<'a> {
    bytes: &'a [u8],
    /// `None` once a frame failed to decode.
    pos: Option<usize>,
}

impl<'a> Iterator for IntactFrames<'a> {
    type Item = (u64, IntactFrame<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.pos.take()?;
        let (kind, payload, _) = split_frame(self.bytes.get(at..)?, Verify::Checksum).ok()?;
        let frame = match kind {
            Kind::Commit => IntactFrame::Commit,
            _ => IntactFrame::Record(to_record(kind, payload).ok()?),
        };
        self.pos = Some(at + FRAME_HEADER_LEN + payload.len());
        Some((at as u64, frame))
    }
}

/// Checks the 40-byte segment header at the start of `bytes`.
pub fn decode_header(bytes: &[u8]) -> Result<SegmentHeader, DecodeError> {
    let header = bytes.get(..HEADER_LEN).ok_or(DecodeError::ShortHeader)?;
    if header[0..8] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if crc32fast::hash(&header[0..36]) != u32_at(header, 36) {
        return Err(DecodeError::HeaderChecksum);
    }
    let version = u32_at(header, 8);
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    Ok(SegmentHeader {
        seq: u64_at(header, 12),
        first_index: u64_at(header, 20),
        salt: u64_at(header, 28),
    })
}

/// Validates the batch starting at `start`: returns the offset of its commit frame, or the offset
/// and nature of the first invalid frame.
///
/// The fast path walks the frames by their (bounds-checked) lengths and checks the commit frame's
/// crc and the batch crc, one pass over the bytes: the batch crc covers every byte of every frame,
/// their stored crcs included, so when it matches the frames are the ones the writer checksummed.
/// Only when it fails are the frames checked one by one, to name the first invalid one.
///
/// `bytes[0]` is at offset `base` of the file (a commit record names its batch's offset in the
/// file).
fn check_batch(
    bytes: &[u8],
    base: u64,
    salt: u64,
    start: usize,
) -> Result<usize, (usize, DecodeError)> {
    match check_batch_fast(bytes, base, salt, start) {
        Some(commit_at) => Ok(commit_at),
        None => check_batch_frame_by_frame(bytes, base, salt, start),
    }
}

/// The fast path of [`check_batch`]: `None` means "look closer", not "invalid".
fn check_batch_fast(bytes: &[u8], base: u64, salt: u64, start: usize) -> Option<usize> {
    let at = walk_to_commit(bytes, start, bytes.len())?;
    let (_, payload, _) = split_frame(&bytes[at..], Verify::Checksum).ok()?;
    check_commit(bytes, base, salt, start, at, payload).then_some(at)
}

/// Walks frame headers from `start` by their (bounds-checked) lengths, without checking crcs, and
/// returns the offset of the first commit frame; `None` if a frame is invalid or cut short first,
/// or if the walk passes `limit` (so a walk never reads frame headers beyond `limit`).
fn walk_to_commit(bytes: &[u8], start: usize, limit: usize) -> Option<usize> {
    let mut at = start;
    loop {
        if at > limit {
            return None;
        }
        let (kind, payload, _) = split_frame(&bytes[at..], Verify::Bounds).ok()?;
        if kind == Kind::Commit {
            return Some(at);
        }
        at += FRAME_HEADER_LEN + payload.len();
    }
}

/// The careful path of [`check_batch`]: every frame's crc, in order.
fn check_batch_frame_by_frame(
    bytes: &[u8],
    base: u64,
    salt: u64,
    start: usize,
) -> Result<usize, (usize, DecodeError)> {
    let mut at = start;
    loop {
        let (kind, payload, _) =
            split_frame(&bytes[at..], Verify::Checksum).map_err(|e| (at, e))?;
        if kind == Kind::Commit {
            return check_commit(bytes, base, salt, start, at, payload)
                .then_some(at)
                .ok_or((at, DecodeError::BatchChecksum));
        }
        to_record(kind, payload).map_err(|e| (at, e))?;
        at += FRAME_HEADER_LEN + payload.len();
    }
}

/// True if the commit frame at `at` (payload `payload`) closes a batch that starts at `start` in
/// the segment whose salt is `salt`: bound to that place, and matching the batch's bytes.
/// `bytes[0]` is at offset `base` of the file.
fn check_commit(
    bytes: &[u8],
    base: u64,
    salt: u64,
    start: usize,
    at: usize,
    payload: &[u8],
) -> bool {
    commit_binding(payload) == (base + start as u64, salt)
        && at >= start + FRAME_HEADER_LEN
        && crc32fast::hash(&bytes[start..at]) == u32_at(payload, 16)
}

/// The `(batch_start, salt)` a commit payload names.
fn commit_binding(payload: &[u8]) -> (u64, u64) {
    (u64_at(payload, 0), u64_at(payload, 8))
}

/// Looks for a valid commit record at any offset from `from` on whose batch starts at or after
/// `not_before`. Used only after damage, to tell a torn tail (none) from corruption (one).
///
/// The rules, and why the scan is O(n) whatever the bytes, are in the [module docs](self).
/// `examined` is increased by the bytes walked and hashed for candidates (steps 5 and 6); it never
/// exceeds `bytes.len()`, which the unit tests check with hostile inputs.
fn find_valid_commit(
    bytes: &[u8],
    salt: u64,
    not_before: usize,
    from: usize,
    examined: &mut usize,
) -> Option<usize> {
    let last = bytes.len().checked_sub(COMMIT_FRAME_LEN)?;
    // Every candidate examined so far looked at bytes below this offset, and only at them.
    let mut examined_end = not_before;
    (from..=last).find(|&at| {
        // 1. The kind byte, the reserved bytes and the fixed length.
        if bytes[at + 4] != Kind::Commit as u8
            || bytes[at + 5..at + 8] != [0, 0, 0]
            || u32_at(bytes, at + 8) as usize != COMMIT_PAYLOAD_LEN
        {
            return false;
        }
        let payload = &bytes[at + FRAME_HEADER_LEN..at + COMMIT_FRAME_LEN];
        // 2 and 3. Bound to this segment, and to a start where a batch could begin.
        let (start, stored_salt) = commit_binding(payload);
        let Ok(start) = usize::try_from(start) else {
            return false;
        };
        if stored_salt != salt
            || start < examined_end
            || start
                .checked_add(FRAME_HEADER_LEN)
                .is_none_or(|end| end > at)
        {
            return false;
        }
        // 4. The frame's own crc.
        if split_frame(&bytes[at..], Verify::Checksum).is_err() {
            return false;
        }
        // 5 and 6. From here on the bytes start..at count as examined.
        examined_end = at;
        *examined += at - start;
        walk_to_commit(bytes, start, at) == Some(at)
            && check_commit(bytes, 0, salt, start, at, payload)
    })
}

/// A commit frame that passes the constant-time checks (steps 1, 2 and 4 of the
/// [module docs](self)): right kind, reserved bytes and length, this segment's salt, a
/// `batch_start` at least one frame header before it, and a correct frame crc. Found by
/// [`commit_candidates`]; whether it is *valid* is decided by [`closes_its_batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitCandidate {
    /// Offset of the commit frame in the file.
    pub at: u64,
    /// The `batch_start` it names.
    pub batch_start: u64,
}

/// The commit candidates whose frames lie wholly within `bytes` (the file's bytes from offset
/// `base`), at offsets from `from` on, in order: for scanning a file after damage in bounded
/// pieces. Consecutive pieces must overlap by `COMMIT_FRAME_LEN - 1` bytes so that no frame falls
/// between them. Each candidate costs O(1).
pub fn commit_candidates(
    bytes: &[u8],
    base: u64,
    salt: u64,
    from: u64,
) -> impl Iterator<Item = CommitCandidate> + '_ {
    let first = usize::try_from(from.saturating_sub(base)).unwrap_or(usize::MAX);
    let last = bytes.len().checked_sub(COMMIT_FRAME_LEN);
    let range = match last {
        Some(last) if first <= last => first..last + 1,
        _ => 0..0,
    };
    range.filter_map(move |at| {
        if bytes[at + 4] != Kind::Commit as u8
            || bytes[at + 5..at + 8] != [0, 0, 0]
            || u32_at(bytes, at + 8) as usize != COMMIT_PAYLOAD_LEN
        {
            return None;
        }
        let payload = &bytes[at + FRAME_HEADER_LEN..at + COMMIT_FRAME_LEN];
        let (batch_start, stored_salt) = commit_binding(payload);
        let at_abs = base + at as u64;
        if stored_salt != salt
            || batch_start
                .checked_add(FRAME_HEADER_LEN as u64)
                .is_none_or(|end| end > at_abs)
        {
            return None;
        }
        split_frame(&bytes[at..], Verify::Checksum).ok()?;
        Some(CommitCandidate {
            at: at_abs,
            batch_start,
        })
    })
}

/// True if `candidate` is a valid commit record (steps 5 and 6 of the [module docs](self)):
/// `bytes` are the file's bytes from `candidate.batch_start` up to the end of its commit frame,
/// and the frames from the start chain to it and match its batch crc.
pub fn closes_its_batch(bytes: &[u8], candidate: CommitCandidate) -> bool {
    let Some(at) = candidate
        .at
        .checked_sub(candidate.batch_start)
        .and_then(|at| usize::try_from(at).ok())
    else {
        return false;
    };
    if bytes.len() < at.saturating_add(COMMIT_FRAME_LEN) {
        return false;
    }
    let Ok((Kind::Commit, payload, _)) = split_frame(&bytes[at..], Verify::Bounds) else {
        return false;
    };
    let salt = commit_binding(payload).1;
    walk_to_commit(bytes, 0, at) == Some(at)
        && check_commit(bytes, candidate.batch_start, salt, 0, at, payload)
}

/// How much of a frame `split_frame` checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verify {
    /// Everything: the gateway for bytes from disk.
    Checksum,
    /// Everything but the crc32, for frames already verified.
    Bounds,
}

/// Splits one checked frame off the front of `bytes`: its kind, payload and the bytes after it.
fn split_frame(bytes: &[u8], verify: Verify) -> Result<(Kind, &[u8], &[u8]), DecodeError> {
    let header = bytes
        .get(..FRAME_HEADER_LEN)
        .ok_or(DecodeError::Truncated)?;
    let kind = Kind::from_byte(header[4]).ok_or(DecodeError::InvalidKind(header[4]))?;
    if header[5..8] != [0, 0, 0] {
        return Err(DecodeError::Reserved);
    }
    let len = u32_at(header, 8) as usize;
    // The length is bounded before anything depends on it; nothing is allocated from it anyway.
    if len > MAX_PAYLOAD_LEN {
        return Err(DecodeError::LengthOutOfBounds(len as u64));
    }
    let rest = &bytes[FRAME_HEADER_LEN..];
    if len > rest.len() {
        return Err(DecodeError::Truncated);
    }
    let (payload, rest) = rest.split_at(len);
    if verify == Verify::Checksum {
        // The crc covers bytes 4.. of the frame: kind, reserved, length and payload, contiguous.
        let covered = &bytes[4..FRAME_HEADER_LEN + len];
        if crc32fast::hash(covered) != u32_at(header, 0) {
            return Err(DecodeError::FrameChecksum);
        }
    }
    let fixed = match kind {
        Kind::Marker | Kind::ResetMarker => Some(MARKER_PAYLOAD_LEN),
        Kind::Commit => Some(COMMIT_PAYLOAD_LEN),
        Kind::Entry | Kind::State => None,
    };
    if fixed.is_some_and(|n| n != len) || (kind == Kind::Entry && len < 8) {
        return Err(DecodeError::BadPayload { kind, len });
    }
    Ok((kind, payload, rest))
}

/// Reads a data frame's payload as a record (payload lengths were checked by `split_frame`).
fn to_record(kind: Kind, payload: &[u8]) -> Result<Record<'_>, DecodeError> {
    match kind {
        Kind::Entry => Ok(Record::Entry {
            index: u64_at(payload, 0),
            data: &payload[8..],
        }),
        Kind::State => Ok(Record::State(payload)),
        Kind::Marker => Ok(Record::Marker {
            index: u64_at(payload, 0),
            term: u64_at(payload, 8),
        }),
        Kind::ResetMarker => Ok(Record::ResetMarker {
            index: u64_at(payload, 0),
            term: u64_at(payload, 8),
        }),
        // A commit frame in the middle of a batch cannot happen: `check_batch` stops at the first.
        Kind::Commit => Err(DecodeError::BadPayload {
            kind,
            len: payload.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{put_commit, put_frame};

    const SALT: u64 = 0x5a17_5a17_5a17_5a17;

    fn segment(batches: &[&[(Kind, Vec<u8>)]]) -> Vec<u8> {
        let mut out = SegmentHeader {
            seq: 3,
            first_index: 7,
            salt: SALT,
        }
        .encode()
        .to_vec();
        for batch in batches {
            let start = out.len();
            for (kind, payload) in *batch {
                put_frame(&mut out, *kind, payload, &[]);
            }
            let crc = crc32fast::hash(&out[start..]);
            put_commit(&mut out, start as u64, SALT, crc);
        }
        out
    }

    fn entry(index: u64, data: &[u8]) -> (Kind, Vec<u8>) {
        let mut payload = index.to_le_bytes().to_vec();
        payload.extend_from_slice(data);
        (Kind::Entry, payload)
    }

    fn all(bytes: &[u8]) -> (Vec<String>, Result<(), Damage>) {
        let (_, mut decoder) = SegmentDecoder::new(bytes).unwrap();
        let mut seen = Vec::new();
        loop {
            match decoder.next_batch() {
                Ok(Some(batch)) => seen.extend(batch.records().map(|r| format!("{r:?}"))),
                Ok(None) => return (seen, Ok(())),
                Err(damage) => return (seen, Err(damage)),
            }
        }
    }

    #[test]
    fn reads_back_batches_in_order() {
        let bytes = segment(&[
            &[entry(1, b"a"), (Kind::State, b"hs".to_vec())],
            &[entry(2, b"b")],
        ]);
        let (seen, end) = all(&bytes);
        assert_eq!(end, Ok(()));
        assert_eq!(seen.len(), 3);
        assert!(seen[2].contains("index: 2"));
    }

    #[test]
    fn zeroed_space_after_the_last_batch_is_a_tail_without_commit() {
        let mut bytes = segment(&[&[entry(1, b"a")]]);
        let end = bytes.len();
        bytes.resize(end + 100, 0);
        let (seen, result) = all(&bytes);
        assert_eq!(seen.len(), 1);
        let damage = result.unwrap_err();
        assert_eq!(damage.offset, end as u64);
        assert_eq!(damage.error, DecodeError::InvalidKind(0));
        assert_eq!(damage.commit_after, None);
    }

    #[test]
    fn damage_followed_by_a_valid_batch_reports_its_commit() {
        let mut bytes = segment(&[&[entry(1, b"aaaa")], &[entry(2, b"b")]]);
        bytes[HEADER_LEN + FRAME_HEADER_LEN + 9] ^= 0xff;
        let (_, result) = all(&bytes);
        let damage = result.unwrap_err();
        assert_eq!(damage.offset, HEADER_LEN as u64);
        assert_eq!(damage.error, DecodeError::FrameChecksum);
        assert!(damage.commit_after.is_some());
    }

    #[test]
    fn a_commit_that_does_not_match_its_batch_is_damage() {
        let mut bytes = segment(&[&[entry(1, b"a")]]);
        // Rewrite the entry's payload and its frame crc, leaving the commit's batch crc stale.
        let mut fresh = Vec::new();
        put_frame(&mut fresh, Kind::Entry, &1u64.to_le_bytes(), b"z");
        bytes[HEADER_LEN..HEADER_LEN + fresh.len()].copy_from_slice(&fresh);
        let damage = all(&bytes).1.unwrap_err();
        assert_eq!(damage.error, DecodeError::BatchChecksum);
        assert_eq!(damage.commit_after, None);
    }

    #[test]
    fn huge_length_fields_are_refused_before_use() {
        let mut bytes = segment(&[]);
        bytes.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        let damage = all(&bytes).1.unwrap_err();
        assert_eq!(
            damage.error,
            DecodeError::LengthOutOfBounds(u32::MAX as u64)
        );
    }

    /// A commit frame with a valid frame crc that names `start` and `salt` but a wrong batch crc.
    fn fake_commit(start: u64, salt: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_commit(&mut out, start, salt, 0xdead_beef);
        out
    }

    /// `bytes` is a batch at `base` cut short: a torn tail, found by examining at most
    /// `bytes.len()` bytes.
    fn assert_torn_and_linear(bytes: &[u8], base: usize) {
        let (_, mut decoder) = SegmentDecoder::new(bytes).unwrap();
        let damage = loop {
            match decoder.next_batch() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("expected damage"),
                Err(damage) => break damage,
            }
        };
        assert_eq!(damage.batch_offset, base as u64);
        assert_eq!(damage.commit_after, None, "{damage:?}");
        let mut examined = 0;
        assert_eq!(
            find_valid_commit(bytes, SALT, base, base + 1, &mut examined),
            None
        );
        assert!(
            examined <= bytes.len(),
            "examined {examined} bytes of {}",
            bytes.len()
        );
    }

    /// The review's case, with this segment's salt (which a client could not know): a 4 MiB entry
    /// of commit frames each bound to the start of the entry's own batch, cut short by a crash.
    /// Each used to cost a crc over the batch so far: quadratic.
    #[test]
    fn a_payload_of_fake_commits_bound_to_the_batch_is_a_torn_tail_found_in_linear_work() {
        let mut bytes = segment(&[&[entry(1, b"a")]]);
        let base = bytes.len();
        let fake = fake_commit(base as u64, SALT);
        let payload: Vec<u8> = fake.iter().copied().cycle().take(4 << 20).collect();
        put_frame(&mut bytes, Kind::Entry, &2u64.to_le_bytes(), &payload);
        bytes.truncate(bytes.len() - 30);
        assert_torn_and_linear(&bytes, base);
    }

    /// Fake frames nested so that each fake commit closes a chain of one frame from its own start:
    /// every candidate passes the walk; only the disjointness rule keeps the work linear.
    #[test]
    fn nested_fake_batches_are_examined_once() {
        let mut bytes = segment(&[&[entry(1, b"a")]]);
        let base = bytes.len();
        let n = 20_000;
        // The entry frame's header and index, then n frame headers, then n fake commits.
        let heads = base + FRAME_HEADER_LEN + 8;
        let commits = heads + n * FRAME_HEADER_LEN;
        let mut payload = Vec::new();
        for k in 0..n {
            let (start, at) = (heads + k * FRAME_HEADER_LEN, commits + k * COMMIT_FRAME_LEN);
            let len = (at - start - FRAME_HEADER_LEN) as u32;
            payload.extend_from_slice(&[0, 0, 0, 0, Kind::State as u8, 0, 0, 0]);
            payload.extend_from_slice(&len.to_le_bytes());
        }
        for k in 0..n {
            payload.extend_from_slice(&fake_commit((heads + k * FRAME_HEADER_LEN) as u64, SALT));
        }
        put_frame(&mut bytes, Kind::Entry, &2u64.to_le_bytes(), &payload);
        bytes.truncate(bytes.len() - 1);
        assert_torn_and_linear(&bytes, base);
    }

    #[test]
    fn commits_bound_elsewhere_do_not_count() {
        // A whole valid batch copied from another segment (another salt), or from another offset.
        let other = segment(&[&[entry(9, b"x")]]);
        let mut bytes = segment(&[&[entry(1, b"a")]]);
        let base = bytes.len();
        let mut foreign = other[HEADER_LEN..].to_vec();
        let salt_at = foreign.len() - COMMIT_PAYLOAD_LEN + 8;
        foreign[salt_at..salt_at + 8].copy_from_slice(&1u64.to_le_bytes());
        let mut payload = vec![0xaa; 100];
        payload.extend_from_slice(&foreign);
        payload.extend_from_slice(&other[HEADER_LEN..]); // right salt, but bound to offset 40
        payload.extend_from_slice(&[0xbb; 100]);
        put_frame(&mut bytes, Kind::Entry, &2u64.to_le_bytes(), &payload);
        bytes.truncate(bytes.len() - 50);
        assert_torn_and_linear(&bytes, base);
    }

    #[test]
    fn a_commit_naming_an_empty_batch_is_refused() {
        let mut bytes = segment(&[]);
        let base = bytes.len();
        put_commit(&mut bytes, base as u64, SALT, crc32fast::hash(&[]));
        let damage = all(&bytes).1.unwrap_err();
        assert_eq!(damage.error, DecodeError::BatchChecksum);
    }

    #[test]
    fn headers_are_checked() {
        let good = SegmentHeader {
            seq: 1,
            first_index: 2,
            salt: 3,
        }
        .encode();
        assert_eq!(decode_header(&good[..10]), Err(DecodeError::ShortHeader));
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(decode_header(&bad), Err(DecodeError::BadMagic));
        let mut bad = good;
        bad[13] ^= 1;
        assert_eq!(decode_header(&bad), Err(DecodeError::HeaderChecksum));
    }
}
