//! Recovery on open: read every segment, rebuild the [`Replay`], and decide what to do with damage.
//!
//! The writer syncs each batch once, ending it with a commit record, and syncs a segment completely
//! before it starts the next one. So the only damage a crash can leave is in the last batch of the
//! newest segment: bytes of an unfinished batch, with no valid commit record after them. Everything
//! else that fails to decode is corruption, which no crash explains. The policy is the table
//! "Damage on disk" of the project contract:
//!
//! | damage | [`RecoveryMode::TolerateTornTail`] | [`RecoveryMode::AbsoluteConsistency`] |
//! |---|---|---|
//! | newest segment ends in invalid bytes, no valid commit record after them | truncate them, log an error naming what they held, report it in `Replay::torn_tail`, open | error |
//! | invalid bytes followed by a valid commit record | error | error |
//! | invalid bytes in an older segment, or a bad header | error | error |
//!
//! An error names the file and the offset of the first invalid byte; nothing is written or removed
//! before every segment has been checked, so a refusal leaves the directory exactly as it was.
//!
//! Non-goal: salvaging what follows corruption. That is a decision for an operator with a backup,
//! not for a library on its own.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use raftwood_fsio::Fs;

use crate::decode::{
    DecodeError, IntactFrame, Record, SegmentDecoder, closes_its_batch, commit_candidates,
    decode_header, intact_frames,
};
use crate::error::{Error, IoContext, Result};
use crate::format::{COMMIT_FRAME_LEN, FRAME_HEADER_LEN, HEADER_LEN, MAX_PAYLOAD_LEN};
use crate::replay::{Replay, ReplayBuilder, TornTail};
use crate::segment::SegmentFile;

/// What to do with invalid bytes at the end of the newest segment.
///
/// Anything else that is invalid is an error in every mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecoveryMode {
    /// A crash can leave the last batch unfinished: cut such a torn tail away and open. The
    /// default, and what a raft node wants: the torn batch was never synced, so no one was told it
    /// was durable. Because the same signature can hide damage to synced batches, the repair is
    /// logged at error level (file, offset, bytes removed, and the frames in them that still
    /// decode) and reported in [`Replay::torn_tail`](crate::Replay::torn_tail).
    #[default]
    TolerateTornTail,
    /// Refuse to open on any invalid byte, even a torn tail; for inspecting a log without changing
    /// it.
    AbsoluteConsistency,
}

/// A held segment and the highest index it mentions, for [`crate::Wal::release`].
#[derive(Clone, Debug)]
pub(crate) struct SegmentMeta {
    /// The file.
    pub file: SegmentFile,
    /// Highest entry or marker index written to the segment, if any.
    pub max_index: Option<u64>,
}

impl SegmentMeta {
    /// Records that the segment now mentions `index`.
    pub fn note(&mut self, index: u64) {
        self.max_index = Some(self.max_index.map_or(index, |m| m.max(index)));
    }
}

/// The result of a successful recovery.
pub(crate) struct Recovered {
    /// What the log holds.
    pub replay: Replay,
    /// Every segment, oldest first; the last one is where appending continues.
    pub segments: Vec<SegmentMeta>,
    /// Length of the newest segment after any truncation.
    pub active_len: u64,
    /// Salt of the newest segment's header.
    pub active_salt: u64,
}

/// Reads `segments` (non-empty, consecutive, oldest first) and applies the recovery policy.
///
/// Each segment is read in pieces of about `chunk` bytes, never whole: a window is decoded batch
/// by batch, and a batch that runs past its end is read again in a larger window from its start.
/// So memory is bounded by the bytes the replay keeps (entries are slices of the windows) plus one
/// window, which grows past `chunk` only to hold one batch or one frame (at most
/// [`MAX_PAYLOAD_LEN`] plus a frame header, for a length field read from damaged bytes). A zeroed or
/// garbage tail of any size costs one window.
pub(crate) fn recover(
    fs: &Fs,
    segments: Vec<SegmentFile>,
    mode: RecoveryMode,
    fsync: bool,
    chunk: usize,
) -> Result<Recovered> {
    let chunk = chunk.max(COMMIT_FRAME_LEN);
    let mut builder = ReplayBuilder::default();
    let mut metas = Vec::with_capacity(segments.len());
    let mut active_len = 0;
    let mut active_salt = 0;
    let mut torn_tail = None;
    let count = segments.len();
    // Sizes up front, so the entry list can be sized once instead of regrown (see below).
    let sizes: Vec<u64> = segments
        .iter()
        .map(|s| fs::metadata(&s.path).map_or(0, |m| m.len()))
        .collect();
    let mut bytes_left: u64 = sizes.iter().sum();
    let mut bytes_read = 0;
    for (i, file) in segments.into_iter().enumerate() {
        let newest = i + 1 == count;
        let mut reader = Reader::open(&file.path)?;
        let corrupt = |offset, reason, followed_by_commit| Error::Corrupt {
            path: file.path.clone(),
            offset,
            reason,
            followed_by_commit,
        };
        let head = reader.read_at(0, (HEADER_LEN as u64).min(reader.len))?;
        let header = decode_header(&head).map_err(|e| corrupt(0, e, false))?;
        if (header.seq, header.first_index) != (file.seq, file.first_index) {
            let reason = DecodeError::HeaderMismatch {
                seq: header.seq,
                first_index: header.first_index,
            };
            return Err(corrupt(0, reason, false));
        }
        let mut meta = SegmentMeta {
            file: file.clone(),
            max_index: None,
        };
        let mut pos = HEADER_LEN as u64;
        let mut want = chunk as u64;
        let end = loop {
            if pos == reader.len {
                break pos;
            }
            let window_len = want.min(reader.len - pos);
            let window = Bytes::from(reader.read_at(pos, window_len)?);
            let mut decoder = SegmentDecoder::window(&window, pos, header.salt);
            let damage = loop {
                match decoder.next_batch() {
                    Ok(Some(batch)) => {
                        for record in batch.records() {
                            if let Record::Entry { index, .. }
                            | Record::Marker { index, .. }
                            | Record::ResetMarker { index, .. } = record
                            {
                                meta.note(index);
                            }
                            builder.apply(record, &window);
                        }
                    }
                    Ok(None) => break None,
                    Err(damage) => break Some(damage),
                }
            };
            let decoded_to = decoder.position();
            let window_end = pos + window_len;
            match damage {
                None => {
                    pos = decoded_to;
                    want = chunk as u64;
                }
                // The batch at `decoded_to` runs past the window, not past the file: read again
                // from there, in a window twice as large if this one held no whole batch.
                Some(damage)
                    if damage.error == DecodeError::Truncated && window_end < reader.len =>
                {
                    want = match decoded_to == pos {
                        true => want.saturating_mul(2),
                        false => chunk as u64,
                    };
                    pos = decoded_to;
                }
                Some(damage) => {
                    let commit_after = find_commit_after(
                        &mut reader,
                        header.salt,
                        damage.batch_offset,
                        damage.offset + 1,
                        chunk as u64,
                    )?;
                    let torn = newest && commit_after.is_none();
                    if !torn || mode == RecoveryMode::AbsoluteConsistency {
                        return Err(corrupt(damage.offset, damage.error, commit_after.is_some()));
                    }
                    torn_tail = Some(describe_torn_tail(&mut reader, damage.batch_offset)?);
                    break damage.batch_offset;
                }
            }
        };
        active_len = end;
        active_salt = header.salt;
        metas.push(meta);
        bytes_read += sizes[i];
        bytes_left = bytes_left.saturating_sub(sizes[i]);
        builder.reserve_like_so_far(bytes_read, bytes_left);
    }
    // Every segment checked: only now change anything on disk.
    if let Some(torn) = &torn_tail {
        truncate_tail(fs, &torn.path, torn.offset, fsync)?;
        // At error level, not warning: a crash explains only the last unsynced batch, and the
        // repair cannot tell that from damage that took synced batches with it. The frames that
        // still decode let an operator (and the node, through `Replay::torn_tail`) judge.
        tracing::error!(
            path = %torn.path.display(),
            offset = torn.offset,
            removed_bytes = torn.removed_bytes,
            intact_frames = torn.intact_frames,
            intact_commits = torn.intact_commits,
            intact_entries = torn.intact_entries,
            intact_entry_range = ?torn.intact_entry_range,
            "WAL: truncated a torn tail; a crash explains only an unfinished last batch"
        );
    }
    let mut replay = builder.finish();
    replay.torn_tail = torn_tail;
    Ok(Recovered {
        replay,
        segments: metas,
        active_len,
        active_salt,
    })
}

/// A segment file read piece by piece, at offsets.
struct Reader {
    file: File,
    path: PathBuf,
    /// The file's length when opened.
    len: u64,
}

impl Reader {
    fn open(path: &Path) -> Result<Reader> {
        let file = File::open(path).io(path, "open")?;
        let len = file.metadata().io(path, "stat")?.len();
        Ok(Reader {
            file,
            path: path.to_path_buf(),
            len,
        })
    }

    /// Reads `len` bytes at `offset`. The caller keeps `offset + len` within the file's length,
    /// so the allocation is bounded by real bytes, never by a length read from them.
    fn read_at(&mut self, offset: u64, len: u64) -> Result<Vec<u8>> {
        let len = usize::try_from(len).map_err(|_| Error::Io {
            path: self.path.clone(),
            op: "read",
            source: std::io::Error::other("read larger than the address space"),
        })?;
        let mut buf = vec![0u8; len];
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(&mut buf))
            .io(&self.path, "read")?;
        Ok(buf)
    }
}

/// Looks for a valid commit record at an offset from `from` on whose batch starts at or after
/// `not_before`, reading the file in pieces of `chunk` bytes (see [`crate::decode`] for the rules
/// and why the scan is linear: the ranges checked for candidates never overlap).
fn find_commit_after(
    reader: &mut Reader,
    salt: u64,
    not_before: u64,
    from: u64,
    chunk: u64,
) -> Result<Option<u64>> {
    let overlap = COMMIT_FRAME_LEN as u64 - 1;
    let mut examined_end = not_before;
    let mut window_start = from;
    while window_start
        .checked_add(COMMIT_FRAME_LEN as u64)
        .is_some_and(|end| end <= reader.len)
    {
        let window_len = chunk.saturating_add(overlap).min(reader.len - window_start);
        let window = reader.read_at(window_start, window_len)?;
        for candidate in commit_candidates(&window, window_start, salt, from) {
            // Only candidates past every range examined so far: linear work in total.
            if candidate.batch_start < examined_end {
                continue;
            }
            examined_end = candidate.at;
            let batch_len = candidate.at - candidate.batch_start + COMMIT_FRAME_LEN as u64;
            let valid = match candidate.batch_start.checked_sub(window_start) {
                Some(rel) => {
                    let rel = usize::try_from(rel).unwrap_or(usize::MAX);
                    let end = rel.saturating_add(usize::try_from(batch_len).unwrap_or(usize::MAX));
                    window
                        .get(rel..end)
                        .is_some_and(|bytes| closes_its_batch(bytes, candidate))
                }
                // The batch starts before this window: read it on its own.
                None => closes_its_batch(
                    &reader.read_at(candidate.batch_start, batch_len)?,
                    candidate,
                ),
            };
            if valid {
                return Ok(Some(candidate.at));
            }
        }
        window_start = window_start.saturating_add(chunk);
    }
    Ok(None)
}

/// What cutting the newest segment back to `offset` removes: read frame by frame (one frame in
/// memory at a time) until the first whose own checksum fails.
fn describe_torn_tail(reader: &mut Reader, offset: u64) -> Result<TornTail> {
    let mut torn = TornTail {
        path: reader.path.clone(),
        offset,
        removed_bytes: reader.len.saturating_sub(offset),
        intact_frames: 0,
        intact_commits: 0,
        intact_entries: 0,
        intact_entry_range: None,
    };
    let mut at = offset;
    while at + FRAME_HEADER_LEN as u64 <= reader.len {
        let head = reader.read_at(at, FRAME_HEADER_LEN as u64)?;
        let payload_len = u64::from(u32::from_le_bytes([head[8], head[9], head[10], head[11]]));
        let frame_len = FRAME_HEADER_LEN as u64 + payload_len;
        if payload_len > MAX_PAYLOAD_LEN as u64 || at + frame_len > reader.len {
            break;
        }
        let frame = reader.read_at(at, frame_len)?;
        let Some((_, intact)) = intact_frames(&frame, 0).next() else {
            break;
        };
        torn.intact_frames += 1;
        match intact {
            IntactFrame::Commit => torn.intact_commits += 1,
            IntactFrame::Record(Record::Entry { index, .. }) => {
                torn.intact_entries += 1;
                torn.intact_entry_range = Some(match torn.intact_entry_range {
                    None => (index, index),
                    Some((low, high)) => (low.min(index), high.max(index)),
                });
            }
            IntactFrame::Record(_) => {}
        }
        at += frame_len;
    }
    Ok(torn)
}

/// Cuts the newest segment back to `len` bytes and makes that durable.
fn truncate_tail(fs: &Fs, path: &PathBuf, len: u64, fsync: bool) -> Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .io(path, "open for truncation")?;
    fs.set_len(&file, path, len).io(path, "truncate")?;
    if fsync {
        fs.sync_all(&file, path).io(path, "fsync")?;
    }
    Ok(())
}
