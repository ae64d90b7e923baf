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

use std::fs::{self, OpenOptions};
use std::path::PathBuf;

use bytes::Bytes;

use raftwood_fsio::Fs;

use crate::decode::{DecodeError, IntactFrame, Record, SegmentDecoder, intact_frames};
use crate::error::{Error, IoContext, Result};
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
pub(crate) fn recover(
    fs: &Fs,
    segments: Vec<SegmentFile>,
    mode: RecoveryMode,
    fsync: bool,
) -> Result<Recovered> {
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
        // Reading a file whole allocates its real length, never a length read from its bytes.
        let bytes = Bytes::from(fs::read(&file.path).io(&file.path, "read")?);
        let corrupt = |offset, reason, followed_by_commit| Error::Corrupt {
            path: file.path.clone(),
            offset,
            reason,
            followed_by_commit,
        };
        let (header, mut decoder) =
            SegmentDecoder::new(&bytes).map_err(|e| corrupt(0, e, false))?;
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
        let end = loop {
            match decoder.next_batch() {
                Ok(Some(batch)) => {
                    for record in batch.records() {
                        if let Record::Entry { index, .. }
                        | Record::Marker { index, .. }
                        | Record::ResetMarker { index, .. } = record
                        {
                            meta.note(index);
                        }
                        builder.apply(record, &bytes);
                    }
                }
                Ok(None) => break decoder.position(),
                Err(damage) => {
                    let torn = newest && damage.commit_after.is_none();
                    if !torn || mode == RecoveryMode::AbsoluteConsistency {
                        return Err(corrupt(
                            damage.offset,
                            damage.error,
                            damage.commit_after.is_some(),
                        ));
                    }
                    torn_tail = Some(describe_torn_tail(&file.path, &bytes, damage.batch_offset));
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

/// What cutting `bytes` (the newest segment, at `path`) back to `offset` removes.
fn describe_torn_tail(path: &std::path::Path, bytes: &[u8], offset: u64) -> TornTail {
    let mut torn = TornTail {
        path: path.to_path_buf(),
        offset,
        removed_bytes: (bytes.len() as u64).saturating_sub(offset),
        intact_frames: 0,
        intact_commits: 0,
        intact_entries: 0,
        intact_entry_range: None,
    };
    let from = usize::try_from(offset).unwrap_or(usize::MAX);
    for (_, frame) in intact_frames(bytes, from) {
        torn.intact_frames += 1;
        match frame {
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
    }
    torn
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
