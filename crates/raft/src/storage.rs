//! Where Raft reads the stable part of its log: the [`Storage`] trait and the in-memory
//! [`MemStorage`].
//!
//! Raft only reads storage. The application writes it, while handling a [`crate::Ready`]: it
//! appends `Ready::entries` and saves `Ready::hard_state` (to its WAL, and to the `Storage`
//! it gave the node) before calling [`crate::RawNode::advance`]. This is etcd's division of labour:
//! the state machine never does I/O.

use crate::error::StorageError;
use crate::types::{ConfState, Entry, HardState, Index, Snapshot, SnapshotMetadata, Term};

/// What a node starts from: its persisted hard state and the voters of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftState {
    /// The persisted term, vote and commit index.
    pub hard_state: HardState,
    /// The cluster's voters.
    pub conf_state: ConfState,
}

/// Read access to a node's stable log.
///
/// Indexes follow etcd's conventions: the storage holds entries `[first_index, last_index]`;
/// `first_index - 1` is the index of the last entry folded into the snapshot, whose term
/// `term(first_index - 1)` must still be answered. An empty log has `first_index == 1` and
/// `last_index == 0`.
///
/// ```
/// use raftwood_raft::{MemStorage, Storage};
/// let s = MemStorage::new_with_voters(&[1, 2, 3]);
/// assert_eq!(s.first_index().unwrap(), 1);
/// assert_eq!(s.last_index().unwrap(), 0);
/// assert_eq!(s.initial_state().unwrap().conf_state.voters, vec![1, 2, 3]);
/// ```
pub trait Storage {
    /// The persisted hard state and voters.
    fn initial_state(&self) -> Result<RaftState, StorageError>;
    /// The entries `[low, high)`, at most `max_size` bytes of them by [`Entry::size`] but always at
    /// least one when the range is not empty.
    fn entries(&self, low: Index, high: Index, max_size: u64) -> Result<Vec<Entry>, StorageError>;
    /// The term of the entry at `index`, for `first_index - 1 <= index <= last_index`.
    fn term(&self, index: Index) -> Result<Term, StorageError>;
    /// The first index held in the log (after the snapshot).
    fn first_index(&self) -> Result<Index, StorageError>;
    /// The last index held.
    fn last_index(&self) -> Result<Index, StorageError>;
    /// The most recent snapshot.
    fn snapshot(&self) -> Result<Snapshot, StorageError>;
}

/// A [`Storage`] held entirely in memory, as etcd's `MemoryStorage`: the tests and the benchmark
/// use it, and a real node keeps one as the read cache in front of its WAL.
///
/// Invariant: `entries[0]` is a placeholder standing for the snapshot (its index and term are the
/// snapshot's), and `entries[i].index == entries[0].index + i`.
#[derive(Clone, Debug)]
pub struct MemStorage {
    hard_state: HardState,
    snapshot: SnapshotMetadata,
    entries: Vec<Entry>,
}

impl Default for MemStorage {
    fn default() -> Self {
        MemStorage {
            hard_state: HardState::default(),
            snapshot: SnapshotMetadata::default(),
            entries: vec![Entry::default()],
        }
    }
}

impl MemStorage {
    /// An empty storage with no voters (a node that will learn its configuration later).
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// An empty storage for a member of a new cluster with these voters.
    pub fn new_with_voters(voters: &[u64]) -> MemStorage {
        let mut s = MemStorage::default();
        s.snapshot.conf_state.voters = voters.to_vec();
        s
    }

    /// Saves the configuration a restart starts from ([`Storage::initial_state`]). An
    /// application calls it with what [`crate::RawNode::apply_conf_change`] returned, when it
    /// persists its applied index: the configuration a node restarts with must be the one as of
    /// `Config::applied` (the snapshot's, when restarting from a snapshot), because the changes
    /// after it are applied again from the log and those before it are not.
    pub fn set_conf_state(&mut self, cs: ConfState) {
        self.snapshot.conf_state = cs;
    }

    /// The hard state last saved.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Saves the hard state.
    pub fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    /// Appends entries, first removing any held entries at or after the first new index (a
    /// follower's log corrected by a new leader). Entries before the first index are ignored.
    ///
    /// # Panics
    /// If the new entries would leave a gap after the last index: that is a broken invariant of
    /// the caller (Ready's entries always continue the log).
    ///
    /// ```
    /// use raftwood_raft::{Entry, MemStorage, Storage};
    /// let mut s = MemStorage::new();
    /// let e = |index, term| Entry { index, term, ..Default::default() };
    /// s.append(&[e(1, 1), e(2, 1), e(3, 1)]);
    /// s.append(&[e(2, 2)]); // conflicts from index 2 on: 2 and 3 are replaced
    /// assert_eq!(s.last_index().unwrap(), 2);
    /// assert_eq!(s.term(2).unwrap(), 2);
    /// ```
    pub fn append(&mut self, new: &[Entry]) {
        let Some(first_new) = new.first() else { return };
        let offset = self.entries[0].index;
        let first = offset + 1;
        let last = offset + self.entries.len() as u64 - 1;
        assert!(
            first_new.index <= last + 1,
            "invariant violated: appending index {} after last index {last} leaves a gap",
            first_new.index
        );
        // Skip what the snapshot already covers.
        let skip = first.saturating_sub(first_new.index) as usize;
        let Some(new) = new.get(skip..).filter(|n| !n.is_empty()) else {
            return;
        };
        let keep = (new[0].index - offset) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(new);
    }

    fn last(&self) -> Index {
        self.entries[0].index + self.entries.len() as u64 - 1
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> Result<RaftState, StorageError> {
        Ok(RaftState {
            hard_state: self.hard_state,
            conf_state: self.snapshot.conf_state.clone(),
        })
    }

    fn entries(&self, low: Index, high: Index, max_size: u64) -> Result<Vec<Entry>, StorageError> {
        let offset = self.entries[0].index;
        if low <= offset {
            return Err(StorageError::Compacted(low));
        }
        if high > self.last() + 1 {
            return Err(StorageError::Unavailable(high - 1));
        }
        let range = &self.entries[(low - offset) as usize..(high - offset) as usize];
        Ok(limit_size(range, max_size).to_vec())
    }

    fn term(&self, index: Index) -> Result<Term, StorageError> {
        let offset = self.entries[0].index;
        if index < offset {
            return Err(StorageError::Compacted(index));
        }
        self.entries
            .get((index - offset) as usize)
            .map(|e| e.term)
            .ok_or(StorageError::Unavailable(index))
    }

    fn first_index(&self) -> Result<Index, StorageError> {
        Ok(self.entries[0].index + 1)
    }

    fn last_index(&self) -> Result<Index, StorageError> {
        Ok(self.last())
    }

    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        Ok(Snapshot {
            metadata: self.snapshot.clone(),
            data: Default::default(),
        })
    }
}

/// The longest prefix of `entries` within `max_size` bytes, but at least one entry: a single entry
/// larger than the limit must still be able to move.
pub(crate) fn limit_size(entries: &[Entry], max_size: u64) -> &[Entry] {
    &entries[..count_within_size(entries, max_size)]
}

/// How many of `entries`, from the first, fit in `max_size` bytes, but at least one (if there is
/// one): the rule of [`limit_size`], counted without copying, over any sequence of entries.
pub(crate) fn count_within_size<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
    max_size: u64,
) -> usize {
    let mut size = 0u64;
    let mut n = 0;
    for e in entries {
        size = size.saturating_add(e.size());
        if n > 0 && size > max_size {
            break;
        }
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: Index, term: Term) -> Entry {
        Entry {
            index,
            term,
            ..Default::default()
        }
    }

    #[test]
    fn entries_in_range_with_size_limit() {
        let mut s = MemStorage::new();
        s.append(&[e(1, 1), e(2, 1), e(3, 2)]);
        assert_eq!(s.entries(1, 4, u64::MAX).unwrap().len(), 3);
        assert_eq!(
            s.entries(1, 4, 0).unwrap(),
            vec![e(1, 1)],
            "at least one entry"
        );
        assert_eq!(
            s.entries(2, 4, 2 * crate::types::ENTRY_OVERHEAD)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(s.entries(0, 2, u64::MAX), Err(StorageError::Compacted(0)));
        assert_eq!(s.entries(1, 5, u64::MAX), Err(StorageError::Unavailable(4)));
    }

    #[test]
    fn term_bounds() {
        let mut s = MemStorage::new();
        s.append(&[e(1, 1), e(2, 3)]);
        assert_eq!(s.term(0), Ok(0));
        assert_eq!(s.term(2), Ok(3));
        assert_eq!(s.term(3), Err(StorageError::Unavailable(3)));
    }

    #[test]
    fn append_truncates_conflicting_suffix() {
        let mut s = MemStorage::new();
        s.append(&[e(1, 1), e(2, 1), e(3, 1)]);
        s.append(&[e(2, 2), e(3, 2), e(4, 2)]);
        assert_eq!(
            s.entries(1, 5, u64::MAX).unwrap(),
            vec![e(1, 1), e(2, 2), e(3, 2), e(4, 2)]
        );
    }

    #[test]
    #[should_panic(expected = "leaves a gap")]
    fn append_with_gap_is_an_invariant_violation() {
        let mut s = MemStorage::new();
        s.append(&[e(2, 1)]);
    }
}
