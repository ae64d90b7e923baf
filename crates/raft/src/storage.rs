//! Where Raft reads the stable part of its log: the [`Storage`] trait and the in-memory
//! [`MemStorage`].
//!
//! Raft only reads storage. The application writes it, while handling a [`crate::Ready`]: it
//! appends `Ready::entries` and saves `Ready::hard_state` (to its WAL, and to the `Storage`
//! it gave the node) before calling [`crate::RawNode::advance`]. This is etcd's division of labour:
//! the state machine never does I/O.
//!
//! # Snapshots and compaction (Raft §7)
//!
//! The application, not Raft, decides when to compact: after applying up to some index, it asks
//! its state machine for its state, stores it with [`MemStorage::create_snapshot`] (the index, the
//! configuration at that index, and the state as opaque bytes), and then drops the entries the
//! snapshot covers with [`MemStorage::compact`]. A follower that receives a leader's snapshot gets
//! it in [`crate::Ready::snapshot`] and stores it with [`MemStorage::apply_snapshot`], which
//! replaces its whole log. Raft reads the latest snapshot through [`Storage::snapshot`] when a
//! follower needs entries that [`Storage::entries`] answers [`StorageError::Compacted`].
//!
//! ```
//! use raftwood_raft::{ConfState, Entry, MemStorage, Storage, StorageError};
//! let mut s = MemStorage::new_with_voters(&[1, 2, 3]);
//! let e = |index| Entry { index, term: 1, ..Default::default() };
//! s.append(&[e(1), e(2), e(3), e(4)]);
//! // The application has applied up to 3: it snapshots there, then compacts.
//! let cs = ConfState { voters: vec![1, 2, 3] };
//! s.create_snapshot(3, cs, "state at 3".into()).unwrap();
//! s.compact(3).unwrap();
//! assert_eq!(s.first_index().unwrap(), 4);
//! assert_eq!(s.term(3).unwrap(), 1, "the snapshot's term is still known");
//! assert_eq!(s.entries(2, 4, u64::MAX), Err(StorageError::Compacted(2)));
//! assert_eq!(s.snapshot().unwrap().data.as_ref(), b"state at 3");
//! ```

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
    /// The most recent snapshot, which the leader sends a follower that needs compacted entries.
    /// [`StorageError::SnapshotTemporarilyUnavailable`] says one is being prepared: the leader
    /// asks again after the follower's next heartbeat response. Any other error is reported to
    /// the application in [`crate::Ready::storage_failures`].
    fn snapshot(&self) -> Result<Snapshot, StorageError>;
}

/// A [`Storage`] held entirely in memory, as etcd's `MemoryStorage`: the tests and the benchmark
/// use it, and a real node keeps one as the read cache in front of its WAL.
///
/// Invariant: `entries[0]` is a placeholder standing for the compacted prefix (its index and term
/// are those of the last compacted entry), `entries[i].index == entries[0].index + i`, and
/// `entries[0].index <= snapshot.metadata.index`: nothing is compacted that the snapshot does not
/// cover.
#[derive(Clone, Debug)]
pub struct MemStorage {
    hard_state: HardState,
    /// The configuration a restart starts from: the one as of the state machine's applied index
    /// ([`MemStorage::set_conf_state`]), which may be newer than the snapshot's.
    conf_state: ConfState,
    snapshot: Snapshot,
    entries: Vec<Entry>,
}

impl Default for MemStorage {
    fn default() -> Self {
        MemStorage {
            hard_state: HardState::default(),
            conf_state: ConfState::default(),
            snapshot: Snapshot::default(),
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
        s.snapshot.metadata.conf_state.voters = voters.to_vec();
        s.conf_state.voters = voters.to_vec();
        s
    }

    /// Saves the configuration a restart starts from ([`Storage::initial_state`]). An
    /// application calls it with what [`crate::RawNode::apply_conf_change`] returned, when it
    /// persists its applied index: the configuration a node restarts with must be the one as of
    /// `Config::applied` (the snapshot's, when restarting from a snapshot), because the changes
    /// after it are applied again from the log and those before it are not.
    ///
    /// The snapshot keeps its own configuration, the one as of its index
    /// ([`MemStorage::create_snapshot`]): a follower it is sent to adopts that one and applies
    /// the changes after it from the log. An application that never changes the membership need
    /// not call this: its configuration is the bootstrap one throughout.
    pub fn set_conf_state(&mut self, cs: ConfState) {
        self.conf_state = cs;
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

    /// Replaces the whole log with `snapshot`, as a follower does when it installs its leader's
    /// snapshot ([`crate::Ready::snapshot`], persisted before the Ready's entries): every entry is
    /// dropped, the log now starts after the snapshot's index (etcd's `ApplySnapshot`). The
    /// snapshot's configuration becomes the one a restart starts from: the state machine is at
    /// its index now.
    ///
    /// Fails with [`StorageError::SnapshotOutOfDate`] if the storage already holds a snapshot at
    /// or past its index. The hard state is left alone: the Ready that carries a snapshot also
    /// carries the commit index it implies.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StorageError> {
        let (index, held) = (snapshot.metadata.index, self.snapshot.metadata.index);
        if index <= held {
            return Err(StorageError::SnapshotOutOfDate {
                requested: index,
                held,
            });
        }
        self.entries = vec![Entry {
            index,
            term: snapshot.metadata.term,
            ..Default::default()
        }];
        self.conf_state = snapshot.metadata.conf_state.clone();
        self.snapshot = snapshot;
        Ok(())
    }

    /// Records the application's snapshot at `index`, an index it has applied: `conf_state` is the
    /// configuration as of `index` (the one the conf changes up to `index` made, which the
    /// application knows from [`crate::RawNode::apply_conf_change`]; not a later one, since a
    /// follower that installs the snapshot applies the changes after `index` from the log), `data` the state machine's state there, opaque to Raft (the
    /// whole state, or a reference to a file the node streams). The log is left alone; call
    /// [`MemStorage::compact`] to drop what the snapshot covers (etcd's `CreateSnapshot`).
    ///
    /// Fails with [`StorageError::SnapshotOutOfDate`] if a snapshot at or past `index` is held,
    /// with [`StorageError::Unavailable`] if `index` is past the last entry, and with
    /// [`StorageError::Compacted`] if the entry at `index` is no longer held (its term is unknown).
    pub fn create_snapshot(
        &mut self,
        index: Index,
        conf_state: ConfState,
        data: bytes::Bytes,
    ) -> Result<Snapshot, StorageError> {
        let held = self.snapshot.metadata.index;
        if index <= held {
            return Err(StorageError::SnapshotOutOfDate {
                requested: index,
                held,
            });
        }
        let term = self.term(index)?;
        self.snapshot = Snapshot {
            metadata: SnapshotMetadata {
                index,
                term,
                conf_state,
            },
            data,
        };
        Ok(self.snapshot.clone())
    }

    /// Drops the entries up to and including `index`, which the snapshot must cover; the log then
    /// starts at `index + 1` and the term of `index` is still answered (etcd's `Compact`).
    ///
    /// Fails with [`StorageError::Compacted`] if `index` is already compacted, and with
    /// [`StorageError::Unavailable`] if `index` is past the snapshot: compacting entries no
    /// snapshot holds would lose committed state, and a follower that needs them could never be
    /// caught up (it would be sent a snapshot that ends before the log starts).
    pub fn compact(&mut self, index: Index) -> Result<(), StorageError> {
        let offset = self.entries[0].index;
        if index <= offset {
            return Err(StorageError::Compacted(index));
        }
        if index > self.snapshot.metadata.index || index > self.last() {
            return Err(StorageError::Unavailable(index));
        }
        let keep = (index - offset) as usize;
        self.entries.drain(..keep);
        // The placeholder keeps index and term only: its payload was applied and is in the snapshot.
        self.entries[0].data = bytes::Bytes::new();
        Ok(())
    }

    fn last(&self) -> Index {
        self.entries[0].index + self.entries.len() as u64 - 1
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> Result<RaftState, StorageError> {
        Ok(RaftState {
            hard_state: self.hard_state,
            conf_state: self.conf_state.clone(),
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
        Ok(self.snapshot.clone())
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

    /// The configuration a restart starts from and the snapshot's are kept apart: the snapshot
    /// is sent to followers with the configuration as of its index, while a restart with
    /// `Config::applied` past it needs the one as of `applied`.
    #[test]
    fn restart_configuration_is_not_the_snapshots() {
        let mut s = MemStorage::new_with_voters(&[1, 2, 3]);
        s.append(&[e(1, 1), e(2, 1), e(3, 1)]);
        let as_of_2 = ConfState {
            voters: vec![1, 2, 3, 4],
        };
        s.create_snapshot(2, as_of_2.clone(), bytes::Bytes::new())
            .unwrap();
        let as_of_3 = ConfState {
            voters: vec![1, 2, 3, 4, 5],
        };
        s.set_conf_state(as_of_3.clone());
        assert_eq!(s.snapshot().unwrap().metadata.conf_state, as_of_2);
        assert_eq!(s.initial_state().unwrap().conf_state, as_of_3);
        // Installing a snapshot makes its configuration the restart one: the state machine is
        // at its index now.
        let mut t = MemStorage::new_with_voters(&[1, 2, 3]);
        t.apply_snapshot(s.snapshot().unwrap()).unwrap();
        assert_eq!(t.initial_state().unwrap().conf_state, as_of_2);
    }

    #[test]
    fn snapshot_create_compact_apply() {
        let mut s = MemStorage::new_with_voters(&[1, 2]);
        s.append(&[e(1, 1), e(2, 1), e(3, 2), e(4, 2)]);
        let cs = ConfState { voters: vec![1, 2] };
        assert_eq!(
            s.compact(2),
            Err(StorageError::Unavailable(2)),
            "no snapshot yet"
        );
        let snap = s.create_snapshot(3, cs.clone(), "x".into()).unwrap();
        assert_eq!((snap.metadata.index, snap.metadata.term), (3, 2));
        assert!(matches!(
            s.create_snapshot(2, cs.clone(), "y".into()),
            Err(StorageError::SnapshotOutOfDate {
                requested: 2,
                held: 3
            })
        ));
        s.compact(2).unwrap();
        assert_eq!(s.first_index(), Ok(3));
        assert_eq!(s.term(2), Ok(1));
        assert_eq!(s.compact(2), Err(StorageError::Compacted(2)));
        s.compact(3).unwrap();
        assert_eq!((s.first_index(), s.last_index()), (Ok(4), Ok(4)));
        // A leader's snapshot replaces the whole log.
        let mut newer = snap.clone();
        newer.metadata.index = 9;
        newer.metadata.term = 3;
        s.apply_snapshot(newer).unwrap();
        assert_eq!(
            (s.first_index(), s.last_index(), s.term(9)),
            (Ok(10), Ok(9), Ok(3))
        );
        assert!(
            s.apply_snapshot(snap).is_err(),
            "an older snapshot is refused"
        );
        s.append(&[e(10, 3)]);
        assert_eq!(s.last_index(), Ok(10));
    }

    #[test]
    #[should_panic(expected = "leaves a gap")]
    fn append_with_gap_is_an_invariant_violation() {
        let mut s = MemStorage::new();
        s.append(&[e(2, 1)]);
    }
}
