//! What the log holds, as handed back on open: the newest state, the snapshot markers and the
//! entries, with the rule that turns the sequence of records on disk into that view.
//!
//! The rule, applied to records in the order they were appended:
//! - an entry at index `i` removes every entry at `i` and after, then holds `i` (an overwrite of a
//!   suffix, as when a raft follower's log is corrected by a new leader);
//! - a state record replaces the state;
//! - a marker is added to the set of markers;
//! - a log-resetting marker drops every entry and every marker before it, at any index, then is
//!   added to the (now empty) set of markers: the log now starts after its snapshot.
//!
//! So the markers replay reports are the ones no log-resetting marker follows: exactly the
//! snapshots the log can still serve as a fallback for (the entries after an older snapshot may
//! have been dropped by a later reset).
//!
//! Entries are [`Bytes`] slices of the segment files read into memory, so replay copies no payload.

use std::collections::BTreeSet;
use std::path::PathBuf;

use bytes::Bytes;

use crate::decode::Record;

/// An entry: an index chosen by the caller and opaque bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry's index.
    pub index: u64,
    /// The entry's bytes.
    pub data: Bytes,
}

/// A snapshot marker: "a snapshot at this index and term exists".
///
/// Markers order by index, then term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Marker {
    /// Index of the last entry the snapshot covers.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
}

/// Everything the log held when it was opened.
///
/// Entry and state bytes are slices of the segment files as read into memory: while any of them is
/// alive, its whole segment's buffer is. A caller that keeps a few entries for long can copy them
/// (`Bytes::copy_from_slice`) to let the rest go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replay {
    /// The newest state record, if any was ever written.
    pub state: Option<Bytes>,
    /// Every marker in the segments still held and not followed by a log-resetting marker (the
    /// newest of which is included), sorted, without duplicates: the snapshots a node may load,
    /// newest first, falling back to older ones.
    pub markers: Vec<Marker>,
    /// The newest log-resetting marker still held, if any: the log holds no entry written before
    /// it.
    pub reset: Option<Marker>,
    /// Every entry still held, in index order (increasing, possibly with gaps).
    pub entries: Vec<Entry>,
    /// The torn tail `open` cut off the newest segment, if it found one: so a node can show it
    /// and count it. (A crash explains only the last, unsynced batch; see [`TornTail`].)
    pub torn_tail: Option<TornTail>,
}

/// What a torn-tail repair removed: the bytes, and the frames in them that still decoded.
///
/// A crash can tear only the last batch, which was never synced. The repair cannot tell that
/// from damage in a synced last batch, or from damage that ate the commit records of several
/// batches, so it reports what it removed: more than one intact commit frame, or entries a node
/// had acknowledged, mean synced data was lost, which the node should surface loudly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment that was cut.
    pub path: PathBuf,
    /// Where it was cut: the end of its last valid batch, its new length.
    pub offset: u64,
    /// How many bytes were removed.
    pub removed_bytes: u64,
    /// Frames at the start of the removed bytes whose own checksum was right, walking from
    /// `offset` until the first that was not ([`crate::decode::intact_frames`]).
    pub intact_frames: u64,
    /// Of those, commit frames (each closed a batch whose checksum did not match, or which
    /// damage after it made unreachable).
    pub intact_commits: u64,
    /// Of those, entries.
    pub intact_entries: u64,
    /// The lowest and highest index of those entries.
    pub intact_entry_range: Option<(u64, u64)>,
}

impl Replay {
    /// The entries with an index greater than `index`, in order.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use raftwood_wal::{Entry, Replay};
    ///
    /// let entry = |index| Entry { index, data: Bytes::new() };
    /// let replay = Replay { entries: vec![entry(4), entry(5), entry(6)], ..Replay::default() };
    /// let after: Vec<u64> = replay.entries_after(4).iter().map(|e| e.index).collect();
    /// assert_eq!(after, [5, 6]);
    /// ```
    pub fn entries_after(&self, index: u64) -> &[Entry] {
        let start = self.entries.partition_point(|e| e.index <= index);
        &self.entries[start..]
    }

    /// The newest marker, if any.
    pub fn last_marker(&self) -> Option<Marker> {
        self.markers.last().copied()
    }
}

/// Builds a [`Replay`] record by record.
#[derive(Debug, Default)]
pub(crate) struct ReplayBuilder {
    state: Option<Bytes>,
    markers: BTreeSet<Marker>,
    reset: Option<Marker>,
    entries: Vec<Entry>,
}

impl ReplayBuilder {
    /// Applies one record; `source` is the buffer the record's bytes borrow from.
    pub fn apply(&mut self, record: Record<'_>, source: &Bytes) {
        match record {
            Record::Entry { index, data } => {
                // Fast path: appending after the last entry. Otherwise drop the suffix from `index`.
                if self.entries.last().is_some_and(|last| last.index >= index) {
                    let keep = self.entries.partition_point(|e| e.index < index);
                    self.entries.truncate(keep);
                }
                self.entries.push(Entry {
                    index,
                    data: source.slice_ref(data),
                });
            }
            Record::State(data) => self.state = Some(source.slice_ref(data)),
            Record::Marker { index, term } => {
                self.markers.insert(Marker { index, term });
            }
            Record::ResetMarker { index, term } => {
                // Entries before this record may conflict with the snapshot (a follower whose
                // log diverged from the leader's); markers before it name snapshots whose
                // following entries may be among those dropped. None of them may come back.
                self.entries.clear();
                self.markers.clear();
                let marker = Marker { index, term };
                self.markers.insert(marker);
                self.reset = Some(marker);
            }
        }
    }

    /// Reserves room for the entries of `bytes_left` more bytes, assuming they are as dense as the
    /// `bytes_read` so far. Regrowing a list of millions of entries costs more than reading them.
    pub fn reserve_like_so_far(&mut self, bytes_read: u64, bytes_left: u64) {
        if bytes_read > 0 {
            let expected = (self.entries.len() as u128 * u128::from(bytes_left)
                / u128::from(bytes_read)) as usize;
            self.entries.reserve(expected);
        }
    }

    /// The finished view.
    pub fn finish(self) -> Replay {
        Replay {
            state: self.state,
            markers: self.markers.into_iter().collect(),
            reset: self.reset,
            entries: self.entries,
            torn_tail: None,
        }
    }
}
