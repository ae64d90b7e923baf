//! The Raft log as one node sees it: the stable prefix in [`Storage`], the unstable suffix not yet
//! persisted, and the commit and applied indexes.
//!
//! ```text
//!   storage (persisted)          unstable (handed out / not yet)
//! |-------------------------|-----------------|------------|
//! first_index          unstable.offset   in_progress    last_index
//!            applied <= committed <= last_index
//! ```
//!
//! New entries (a leader's proposals, or a follower's appends) go to `unstable`. `Ready` hands
//! them to the application once; when the application has persisted them and calls `advance`,
//! [`RaftLog::stable_to`] drops them from `unstable`, and from then on they are read from storage.
//!
//! A snapshot received from the leader (Raft §7) also waits in `unstable`, as in etcd
//! (`unstable.snapshot`): [`RaftLog::restore`] puts it there and makes it the start of the log,
//! so everything in storage is shadowed (the log's first index is the snapshot's index + 1, and
//! nothing at or below it can be read). `Ready` hands it out once; `advance` drops it
//! ([`RaftLog::stable_snap_to`]), since storage now holds it, and marks it applied.
//!
//! ```text
//!   snapshot (pending)   unstable entries
//! |====================|-----------------|
//!              snapshot.index      last_index
//! ```

use crate::error::StorageError;
use crate::storage::{Storage, count_within_size};
use crate::types::{Entry, Index, Snapshot, Term};

/// Entries not yet known to be persisted, and a snapshot that is not.
///
/// Invariant: `entries[i].index == offset + i`, and `offset <= in_progress + 1 <= offset + len`.
/// Invariant: a pending `snapshot` ends just before the entries: `snapshot.index + 1 == offset`.
#[derive(Debug, Default)]
struct Unstable {
    /// The index of `entries[0]`, or where it would be.
    offset: Index,
    /// The last index already handed out in a `Ready` and being persisted.
    in_progress: Index,
    entries: Vec<Entry>,
    /// A leader's snapshot not yet persisted: it replaces the log up to its index.
    snapshot: Option<Snapshot>,
    /// Whether `snapshot` has been handed out in a `Ready`.
    snapshot_in_progress: bool,
}

/// A node's view of the log.
pub struct RaftLog<S: Storage> {
    storage: S,
    unstable: Unstable,
    /// The highest index known to be committed (Raft Figure 2, `commitIndex`).
    /// Invariant: `applied <= committed <= last_index()`.
    committed: Index,
    /// The highest index handed to the application to apply (Figure 2, `lastApplied`).
    applied: Index,
    /// The storage failed to return the committed entries to apply: nothing more is handed out
    /// until [`RaftLog::resume_apply`] (the next tick), so that a failing storage is reported
    /// once per tick instead of spinning `has_ready`.
    apply_paused: bool,
    /// The application asked for no committed entries for now (its apply queue is full):
    /// [`RaftLog::set_apply_held`]. Apart from `apply_paused`, which the next tick lifts.
    apply_held: bool,
}

impl<S: Storage> RaftLog<S> {
    /// A log reading `storage`, with nothing applied beyond `applied`.
    pub fn new(storage: S, committed: Index, applied: Index) -> Result<Self, StorageError> {
        let last = storage.last_index()?;
        Ok(RaftLog {
            storage,
            unstable: Unstable {
                offset: last + 1,
                in_progress: last,
                entries: Vec::new(),
                snapshot: None,
                snapshot_in_progress: false,
            },
            committed,
            applied,
            apply_paused: false,
            apply_held: false,
        })
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }

    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    pub fn committed(&self) -> Index {
        self.committed
    }

    pub fn applied(&self) -> Index {
        self.applied
    }

    /// The first index of the log: after the pending snapshot if there is one, else what storage
    /// holds first.
    pub fn first_index(&self) -> Index {
        match &self.unstable.snapshot {
            Some(s) => s.metadata.index + 1,
            // Storage answering an error here is a broken storage; the lowest possible first
            // index makes the reads that follow fail with the storage's own error.
            None => self.storage.first_index().unwrap_or(1),
        }
    }

    pub fn last_index(&self) -> Index {
        match self.unstable.entries.last() {
            Some(e) => e.index,
            None => self.unstable.offset - 1,
        }
    }

    /// The last index known to be persisted: everything before the unstable suffix.
    pub fn persisted_index(&self) -> Index {
        self.unstable.offset - 1
    }

    pub fn last_term(&self) -> Term {
        self.term(self.last_index()).unwrap_or(0)
    }

    /// The term of the entry at `index`; `Ok(0)` for index 0 of a log never compacted;
    /// [`StorageError::Compacted`] before the snapshot's index.
    pub fn term(&self, index: Index) -> Result<Term, StorageError> {
        if let Some(s) = &self.unstable.snapshot {
            // Storage still holds the log the snapshot replaces: it must not be read below it.
            if index < s.metadata.index {
                return Err(StorageError::Compacted(index));
            }
            if index == s.metadata.index {
                return Ok(s.metadata.term);
            }
        }
        if index >= self.unstable.offset {
            return self
                .unstable
                .entries
                .get((index - self.unstable.offset) as usize)
                .map(|e| e.term)
                .ok_or(StorageError::Unavailable(index));
        }
        if index == 0 {
            return Ok(0);
        }
        self.storage.term(index)
    }

    /// Whether the log holds an entry at `index` with `term` (the consistency check, Raft §5.3).
    pub fn match_term(&self, index: Index, term: Term) -> bool {
        self.term(index).is_ok_and(|t| t == term)
    }

    /// Whether a log ending at (`last_index`, `last_term`) is at least as up-to-date as this one
    /// (Raft §5.4.1): a later last term wins; with equal last terms, the longer log wins.
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        let my_term = self.last_term();
        last_term > my_term || (last_term == my_term && last_index >= self.last_index())
    }

    /// The entries `[low, high)`, at most `max_size` bytes (at least one): the stable part from
    /// storage joined to the unstable part, with the size limit applied once, to the whole.
    pub fn slice(
        &self,
        low: Index,
        high: Index,
        max_size: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        if low >= high {
            return Ok(Vec::new());
        }
        if high > self.last_index() + 1 {
            return Err(StorageError::Unavailable(high - 1));
        }
        let split = self.unstable.offset;
        // The first index is never above `split` (a pending snapshot ends at `split - 1`, storage
        // holds nothing from `split` on), so only a read that reaches into storage can find its
        // start compacted; the leader's usual append reads the unstable tail and skips the lookup.
        if low < split && low < self.first_index() {
            return Err(StorageError::Compacted(low));
        }
        // The stable part, `[low, split)`. Storage bounds its read by `max_size` too, so that a
        // lagging follower's append does not read the whole log only to drop most of it.
        let mut out = if low < split {
            self.storage.entries(low, high.min(split), max_size)?
        } else {
            Vec::new()
        };
        // The unstable part, `[split, high)`, unless storage stopped short at the limit. Without
        // one, the stable part is the answer, already within the limit (the `Storage` contract).
        if high <= split || low + (out.len() as u64) < split {
            return Ok(out);
        }
        let from = (low.max(split) - split) as usize;
        let unstable = &self.unstable.entries[from..(high - split) as usize];
        // The size limit, once, over the two parts joined; counted first, so that only the
        // entries kept are copied.
        let n = count_within_size(out.iter().chain(unstable), max_size);
        match n.checked_sub(out.len()) {
            Some(from_unstable) => out.extend_from_slice(&unstable[..from_unstable]),
            None => out.truncate(n),
        }
        Ok(out)
    }

    /// Appends `entries`, which must continue the log or overwrite a suffix of it (the caller has
    /// checked that the entry before the first one matches). Returns the new last index.
    pub fn append(&mut self, entries: &[Entry]) -> Index {
        let Some(first) = entries.first() else {
            return self.last_index();
        };
        assert!(
            first.index > self.committed,
            "invariant violated: overwriting committed index {} (commit {})",
            first.index,
            self.committed
        );
        let u = &mut self.unstable;
        if first.index == u.offset + u.entries.len() as u64 {
            // The common case: the entries directly follow.
        } else if first.index <= u.offset {
            // Replaces everything unstable and part of storage: the unstable suffix now starts
            // here and shadows the older entries in storage, which the application will overwrite.
            u.offset = first.index;
            u.entries.clear();
        } else {
            u.entries.truncate((first.index - u.offset) as usize);
        }
        u.in_progress = u.in_progress.min(first.index - 1);
        u.entries.extend_from_slice(entries);
        self.last_index()
    }

    /// Appends the entries of an accepted AppendEntries after `prev_index`, skipping those the log
    /// already has and truncating at the first conflict (Raft Figure 2, receiver rules 3 and 4).
    /// Returns the index of the last new entry, or `None` (changing nothing) if the entries
    /// conflict with a committed entry, which only a corrupt or forged message can do.
    pub fn append_after(&mut self, prev_index: Index, entries: &[Entry]) -> Option<Index> {
        let last_new = prev_index + entries.len() as u64;
        // The first entry whose term differs from ours (or that we do not have).
        let conflict = entries
            .iter()
            .position(|e| !self.match_term(e.index, e.term));
        if let Some(i) = conflict {
            if entries[i].index <= self.committed {
                return None;
            }
            self.append(&entries[i..]);
        }
        Some(last_new)
    }

    /// The largest index `i <= index` whose term is at most `term`, with that term: where a leader
    /// and follower that disagree at `index` may agree (the fast back-off hint).
    pub fn find_conflict_by_term(&self, index: Index, term: Term) -> (Index, Term) {
        let mut i = index.min(self.last_index());
        loop {
            match self.term(i) {
                Ok(t) if t > term => i -= 1,
                Ok(t) => return (i, t),
                // Compacted: we cannot look further back; the snapshot's index is a safe answer.
                Err(_) => return (i, 0),
            }
        }
    }

    /// Advances the commit index; never moves it back.
    ///
    /// # Panics
    /// If `index` is past the last index: a broken invariant of the caller, which only commits
    /// what the log holds.
    pub fn commit_to(&mut self, index: Index) {
        if index > self.committed {
            assert!(
                index <= self.last_index(),
                "invariant violated: commit {index} > last index {}",
                self.last_index()
            );
            self.committed = index;
        }
    }

    pub fn applied_to(&mut self, index: Index) {
        debug_assert!(
            index <= self.committed,
            "applied {index} > committed {}",
            self.committed
        );
        self.applied = self.applied.max(index);
    }

    /// The unstable entries not yet handed out, marking them as being persisted.
    pub fn take_unpersisted(&mut self) -> Vec<Entry> {
        let u = &mut self.unstable;
        let from = (u.in_progress + 1 - u.offset) as usize;
        let out = u.entries[from..].to_vec();
        u.in_progress = u.offset + u.entries.len() as u64 - 1;
        out
    }

    pub fn has_unpersisted(&self) -> bool {
        self.unstable.in_progress + 1 < self.unstable.offset + self.unstable.entries.len() as u64
    }

    /// The application has persisted the log up to `index`, whose term was `term` when handed out.
    /// If that entry has been overwritten since (a newer leader truncated it), nothing changes: the
    /// newer entries are still to be persisted.
    pub fn stable_to(&mut self, index: Index, term: Term) {
        if index < self.unstable.offset || !self.match_term(index, term) {
            return;
        }
        let u = &mut self.unstable;
        u.entries.drain(..(index + 1 - u.offset) as usize);
        u.offset = index + 1;
        u.in_progress = u.in_progress.max(index);
    }

    /// Installs a leader's snapshot (Raft §7): it becomes the start of the log, everything after
    /// it is dropped, and its index is committed (a snapshot only ever holds committed entries).
    /// The caller has checked that it is ahead of the commit index. Until it is persisted and
    /// applied (`advance`), no committed entry is handed out: the ones between `applied` and the
    /// snapshot are in it, and the ones after it must wait for the state machine to load it.
    pub fn restore(&mut self, snapshot: Snapshot) {
        let index = snapshot.metadata.index;
        assert!(
            index > self.committed,
            "invariant violated: restoring snapshot {index} at or below commit {}",
            self.committed
        );
        self.committed = index;
        let u = &mut self.unstable;
        u.offset = index + 1;
        u.in_progress = index;
        u.entries.clear();
        u.snapshot = Some(snapshot);
        u.snapshot_in_progress = false;
    }

    /// The pending snapshot, if it has not been handed out yet, marking it as being persisted.
    pub fn take_unpersisted_snapshot(&mut self) -> Option<Snapshot> {
        let u = &mut self.unstable;
        if u.snapshot_in_progress {
            return None;
        }
        let s = u.snapshot.clone()?;
        u.snapshot_in_progress = true;
        Some(s)
    }

    /// Whether a snapshot waits to be handed out.
    pub fn has_unpersisted_snapshot(&self) -> bool {
        self.unstable.snapshot.is_some() && !self.unstable.snapshot_in_progress
    }

    /// The application has persisted and applied the snapshot at `index`: storage holds it now,
    /// and the state machine is at `index`. A snapshot replaced by a newer one since it was handed
    /// out changes nothing (the newer one is still pending).
    pub fn stable_snap_to(&mut self, index: Index) {
        if self
            .unstable
            .snapshot
            .as_ref()
            .is_some_and(|s| s.metadata.index == index)
        {
            self.unstable.snapshot = None;
            self.unstable.snapshot_in_progress = false;
            // Applied jumps over the entries the snapshot holds: they are never handed out.
            self.applied = self.applied.max(index);
        }
    }

    /// The committed entries not yet applied, up to `max_size` bytes. None while a snapshot is
    /// pending: the state machine must load it first (Ready rule 4).
    ///
    /// A storage error pauses applying until [`RaftLog::resume_apply`]: the caller reports it, and
    /// `has_next_committed` says no meanwhile, so a storage that cannot read back what it holds
    /// never makes the node spin.
    pub fn next_committed(&mut self, max_size: u64) -> Result<Vec<Entry>, StorageError> {
        if !self.has_next_committed() {
            return Ok(Vec::new());
        }
        self.slice(self.applied + 1, self.committed + 1, max_size)
            .inspect_err(|_| self.apply_paused = true)
    }

    pub fn has_next_committed(&self) -> bool {
        self.committed > self.applied
            && self.unstable.snapshot.is_none()
            && !self.apply_paused
            && !self.apply_held
    }

    /// Holds back (`true`) or releases (`false`) the committed entries: while held,
    /// [`RaftLog::next_committed`] hands out none and `has_next_committed` says no. Only the
    /// application lifts it; a tick does not.
    pub fn set_apply_held(&mut self, held: bool) {
        self.apply_held = held;
    }

    /// Lets [`RaftLog::next_committed`] read the storage again after a failure.
    pub fn resume_apply(&mut self) {
        self.apply_paused = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemStorage;

    fn e(index: Index, term: Term) -> Entry {
        Entry {
            index,
            term,
            ..Default::default()
        }
    }

    fn log_with(stable: &[Entry], unstable: &[Entry]) -> RaftLog<MemStorage> {
        let mut s = MemStorage::new();
        s.append(stable);
        let mut log = RaftLog::new(s, 0, 0).unwrap();
        log.append(unstable);
        log
    }

    #[test]
    fn reads_span_storage_and_unstable() {
        let log = log_with(&[e(1, 1), e(2, 1)], &[e(3, 2), e(4, 2)]);
        assert_eq!(log.last_index(), 4);
        assert_eq!(log.persisted_index(), 2);
        assert_eq!(
            log.slice(1, 5, u64::MAX).unwrap(),
            vec![e(1, 1), e(2, 1), e(3, 2), e(4, 2)]
        );
        assert_eq!(
            log.slice(2, 4, 2 * crate::types::ENTRY_OVERHEAD)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(log.slice(2, 5, 0).unwrap().len(), 1);
        assert_eq!(log.term(3), Ok(2));
        assert_eq!(log.term(5), Err(StorageError::Unavailable(5)));
    }

    #[test]
    fn slice_limits_size_once_across_storage_and_unstable() {
        let log = log_with(&[e(1, 1), e(2, 1)], &[e(3, 2), e(4, 2)]);
        let one = crate::types::ENTRY_OVERHEAD;
        let indexes = |v: Vec<Entry>| v.iter().map(|e| e.index).collect::<Vec<_>>();
        assert_eq!(indexes(log.slice(1, 5, 3 * one).unwrap()), [1, 2, 3]);
        assert_eq!(
            indexes(log.slice(1, 5, one).unwrap()),
            [1],
            "storage stops short"
        );
        assert_eq!(
            indexes(log.slice(2, 5, 0).unwrap()),
            [2],
            "at least one entry"
        );
        assert_eq!(indexes(log.slice(3, 5, 0).unwrap()), [3], "unstable only");
        assert_eq!(indexes(log.slice(3, 5, 2 * one).unwrap()), [3, 4]);
    }

    #[test]
    fn up_to_date_compares_last_term_then_length() {
        let log = log_with(&[e(1, 1), e(2, 2)], &[]);
        assert!(log.is_up_to_date(1, 3), "higher last term wins");
        assert!(log.is_up_to_date(2, 2), "equal log");
        assert!(!log.is_up_to_date(1, 2), "shorter with same term");
        assert!(!log.is_up_to_date(9, 1), "longer with lower term");
    }

    #[test]
    fn append_after_skips_matching_and_truncates_conflicts() {
        let mut log = log_with(&[e(1, 1), e(2, 1), e(3, 1)], &[]);
        assert_eq!(log.append_after(1, &[e(2, 1)]), Some(2));
        assert_eq!(log.last_index(), 3, "matching entries leave the rest alone");
        assert_eq!(log.append_after(1, &[e(2, 2)]), Some(2));
        assert_eq!(log.last_index(), 2, "a conflict truncates");
        assert_eq!(log.take_unpersisted(), vec![e(2, 2)]);
        log.commit_to(2);
        assert_eq!(
            log.append_after(0, &[e(1, 1), e(2, 3)]),
            None,
            "never overwrite committed"
        );
        assert_eq!(log.term(2), Ok(2));
    }

    #[test]
    fn stable_to_ignores_overwritten_entries() {
        let mut log = log_with(&[], &[e(1, 1), e(2, 1)]);
        let handed = log.take_unpersisted();
        assert_eq!(handed.len(), 2);
        log.append(&[e(2, 2)]); // overwritten before advance
        log.stable_to(2, 1);
        assert_eq!(
            log.persisted_index(),
            0,
            "index 2 now holds a different entry"
        );
        assert!(log.has_unpersisted());
        log.stable_to(1, 1);
        assert_eq!(log.persisted_index(), 1);
    }

    #[test]
    fn restore_shadows_storage_until_advance() {
        let mut log = log_with(&[e(1, 1), e(2, 1), e(3, 1)], &[e(4, 1)]);
        log.commit_to(2);
        let mut snap = Snapshot::default();
        (snap.metadata.index, snap.metadata.term) = (7, 2);
        log.restore(snap);
        assert_eq!(
            (log.first_index(), log.last_index(), log.committed()),
            (8, 7, 7)
        );
        assert_eq!(log.term(7), Ok(2));
        assert_eq!(
            log.term(3),
            Err(StorageError::Compacted(3)),
            "storage is shadowed"
        );
        assert!(
            !log.has_next_committed(),
            "nothing to apply before the snapshot"
        );
        assert!(log.take_unpersisted_snapshot().is_some());
        assert!(log.take_unpersisted_snapshot().is_none(), "handed out once");
        log.append(&[e(8, 2)]);
        log.stable_snap_to(7);
        assert_eq!(log.applied(), 7, "applied jumps to the snapshot");
        log.commit_to(8);
        assert_eq!(log.next_committed(u64::MAX), Ok(vec![e(8, 2)]));
    }

    /// The application's hold (a full apply queue) stops committed entries from being handed
    /// out; lifting it hands them out in order, none skipped or repeated; the storage-failure
    /// pause that a tick lifts does not lift the application's hold.
    #[test]
    fn held_apply_hands_out_nothing_until_released() {
        let mut log = log_with(&[e(1, 1), e(2, 1), e(3, 1)], &[]);
        log.commit_to(1);
        assert_eq!(log.next_committed(u64::MAX), Ok(vec![e(1, 1)]));
        log.applied_to(1);
        log.set_apply_held(true);
        log.commit_to(3);
        assert!(!log.has_next_committed());
        assert_eq!(log.next_committed(u64::MAX), Ok(vec![]));
        log.resume_apply();
        assert!(!log.has_next_committed(), "a tick does not lift the hold");
        log.set_apply_held(false);
        assert_eq!(log.next_committed(u64::MAX), Ok(vec![e(2, 1), e(3, 1)]));
    }

    #[test]
    fn find_conflict_by_term_walks_back_to_term() {
        let log = log_with(&[e(1, 1), e(2, 1), e(3, 3), e(4, 3), e(5, 5)], &[]);
        assert_eq!(log.find_conflict_by_term(5, 4), (4, 3));
        assert_eq!(log.find_conflict_by_term(5, 2), (2, 1));
        assert_eq!(log.find_conflict_by_term(9, 9), (5, 5));
        assert_eq!(log.find_conflict_by_term(5, 0), (0, 0));
    }
}
