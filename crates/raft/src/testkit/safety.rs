//! The safety properties of Raft (Figure 3), checked against a [`Cluster`] after every step,
//! and the rules of the [`Ready`] contract that those properties rest on, checked at every Ready.
//!
//! Each check compares what the nodes hold now with what was observed before (the [`History`]),
//! so a violation is caught at the step that causes it.
//!
//! Logs may start after a snapshot (Raft §7): the checks compare logs only where both hold entries,
//! and count an entry covered by a node's snapshot as held by it (the snapshot's state is checked
//! against the entries when it is loaded).
//!
//! | rule | checked |
//! | --- | --- |
//! | Election Safety, Leader Append-Only, Log Matching, Leader Completeness (Raft Figure 3) | after every command ([`check`]) |
//! | State Machine Safety (§5.4.3): no two nodes apply different entries, or reach different states, at one index; across snapshots too (a snapshot's state is the state every node had at its index) | at every apply and every snapshot loaded |
//! | No node applies an index twice or skips one, across snapshots and restarts (a snapshot moves it forward, never back) | at every apply and every snapshot loaded |
//! | Durability: a committed entry is on the synced disks (log or snapshot) of a majority of each configuration in force | after every command |
//! | Acknowledgements wait for the disk: `AppendAccepted`, `AppendRejected`, `VoteResponse` only in `persisted_messages` | at every Ready |
//! | `must_sync` when a Ready changes term or vote, or has a snapshot or entries | at every Ready |
//! | A Ready with a snapshot hands out no committed entries (Ready rule 4) | at every Ready |
//! | A leader's commit counts only synced copies: when it moves to N, a majority of synced disks hold entry N | when a leader's commit moves |
//! | A follower commits only what its leader's appends proved it holds (Figure 2, AppendEntries rule 5) | when a follower's commit moves |
//! | Linearizable reads: a `ReadState`'s index covers every write acknowledged (applied anywhere) before the read was requested (thesis §6.4) | at every Ready |
//! | Configuration agreement: every node that applies the conf change at index i reaches the same voters; a snapshot at index i carries the configuration in force at i | at every conf-change apply and every snapshot loaded |
//!
//! # Across membership changes
//! "A majority" means a majority of a configuration, and the configuration changes (thesis §4.1).
//! Election Safety does not depend on it: at most one leader per term, whatever configuration
//! each counted its votes in (the property (c) of issue 10). The checks that count copies are
//! membership-aware:
//! - a leader's commit needs a majority of *its own* voters' synced disks;
//! - Durability asks, of the configurations in force, that no majority lacks a committed entry
//!   (more copies than voters outside a majority). In force are the latest configuration any
//!   node applied and the one before it: nodes that have not applied the latest change still
//!   count in the previous one, and one server at a time keeps the two overlapping. An older
//!   configuration can no longer elect: the change after it was committed by a majority of it.

use std::collections::BTreeMap;

use super::Cluster;
use crate::quorum::majority;
use bytes::Bytes;

use crate::{Entry, HardState, Index, MessageBody, NodeId, ReadState, Ready, Role, Term};

/// A failure found by a command: a broken safety rule, or a cluster that did not make progress
/// when it should have. The property tests act on these, not on the output text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A safety rule was broken: `<rule>: <what happened>`.
    Safety(String),
    /// The cluster did not elect, commit or settle within its bound (a livelock, or a lost
    /// proposal).
    Liveness(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Safety(v) => write!(f, "SAFETY VIOLATION: {v}"),
            Verdict::Liveness(v) => write!(f, "LIVENESS FAILURE: {v}"),
        }
    }
}

/// What the checks remember between steps.
#[derive(Default, Debug)]
pub struct History {
    /// The leader seen for each term (Election Safety).
    leaders: BTreeMap<Term, NodeId>,
    /// Each leader's log (index, term) when last seen, per (leader, term) (Leader Append-Only).
    /// Stored as the log's first index and the terms from there on.
    leader_logs: BTreeMap<(NodeId, Term), (Index, Vec<Term>)>,
    /// Every entry any node has applied, with the applying node's term then (the entry was
    /// committed in that term or before).
    committed: BTreeMap<Index, (Entry, Term)>,
    /// The last index each running node applied since it (re)started.
    applied: BTreeMap<NodeId, Index>,
    /// The role changes seen, newest last, for output.
    roles: Vec<(NodeId, Term, Role)>,
    /// For each node, the highest index an accepted append of the leader of a term proved to
    /// match that leader's log, with the term.
    proven: BTreeMap<NodeId, (Term, Index)>,
    /// The voters after the conf change at each index, as applied (index 0: the bootstrap
    /// configuration).
    configs: BTreeMap<Index, Vec<NodeId>>,
    /// The state machine's state at an index, as first seen by a node (which one, for messages).
    states: BTreeMap<Index, (u64, NodeId)>,
    /// For each read requested, by context: the highest index applied anywhere when it was
    /// requested (every write acknowledged by then is at or below it).
    reads: BTreeMap<Bytes, Index>,
}

impl History {
    /// The configuration the cluster was created with.
    pub(crate) fn bootstrap(&mut self, voters: Vec<NodeId>) {
        self.configs.insert(0, voters);
    }

    /// Node `id` applied the conf change at `index`, reaching `voters`: every node applying it
    /// must reach the same configuration, or their majorities would not be the same sets.
    pub(crate) fn conf_applied(
        &mut self,
        id: NodeId,
        index: Index,
        voters: &[NodeId],
    ) -> Result<(), String> {
        match self.configs.get(&index) {
            Some(seen) if seen != voters => Err(format!(
                "Configuration agreement: n{id} applied the change at {index} to reach {voters:?}, another node reached {seen:?}"
            )),
            Some(_) => Ok(()),
            None => {
                self.configs.insert(index, voters.to_vec());
                Ok(())
            }
        }
    }

    /// The configuration of the newest change any node applied.
    pub fn latest_config(&self) -> &[NodeId] {
        self.configs.values().next_back().map_or(&[], Vec::as_slice)
    }

    /// The configurations that can still elect a leader: the latest and the one before it.
    /// Node `id` loaded a snapshot at `index` whose configuration is `voters`: it must be the
    /// configuration in force at `index`, the one the last conf change at or below `index` made
    /// (every change below a snapshot was applied entry by entry by the node that first took
    /// it, so the history knows it). A snapshot carrying a later or earlier configuration would
    /// make its receiver apply the changes after `index` to the wrong base.
    pub(crate) fn snapshot_conf(
        &self,
        id: NodeId,
        index: Index,
        voters: &[NodeId],
    ) -> Result<(), String> {
        match self.configs.range(..=index).next_back() {
            Some((at, seen)) if seen != voters => Err(format!(
                "Configuration agreement: n{id} loaded a snapshot at {index} with voters {voters:?}, but the change at {at} made {seen:?}"
            )),
            _ => Ok(()),
        }
    }

    fn configs_in_force(&self) -> impl Iterator<Item = &Vec<NodeId>> {
        self.configs.values().rev().take(2)
    }

    /// Node `id` started with a state machine that has applied up to `applied` (0: it starts
    /// empty and re-applies from the beginning).
    pub(crate) fn restarted(&mut self, id: NodeId, applied: Index) {
        self.applied.insert(id, applied);
    }

    /// Node `id` accepted an append from the leader of `term` proving its log matches the
    /// leader's up to `index`.
    pub(crate) fn proven(&mut self, id: NodeId, term: Term, index: Index) {
        let p = self.proven.entry(id).or_insert((term, 0));
        if p.0 != term {
            *p = (term, 0);
        }
        p.1 = p.1.max(index);
    }

    /// A follower's commit index moved to `commit` on a message from the leader of `term`: it
    /// may not exceed what that leader's appends proved (Raft Figure 2, AppendEntries rule 5:
    /// "min(leaderCommit, index of last new entry)"; a heartbeat carries at most the match index).
    pub(crate) fn check_follower_commit(
        &self,
        id: NodeId,
        term: Term,
        commit: Index,
    ) -> Result<(), String> {
        let proven = match self.proven.get(&id) {
            Some(&(t, i)) if t == term => i,
            _ => 0,
        };
        if commit > proven {
            return Err(format!(
                "follower commit beyond proven match: n{id} commits {commit} in term {term}, but the leader's appends proved only up to {proven}"
            ));
        }
        Ok(())
    }

    /// Node `id` crashed with `synced` its last synced index: what an append proved beyond it
    /// is lost.
    pub(crate) fn crashed(&mut self, id: NodeId, synced: Index) {
        self.applied.remove(&id);
        if let Some(p) = self.proven.get_mut(&id) {
            p.1 = p.1.min(synced);
        }
    }

    /// Node `id` took `role` in `term`. A new leader is checked at once against the leader seen
    /// for that term (Election Safety, Raft §5.2), so that two leaders are caught even when one
    /// has stepped down by the end of the command.
    pub(crate) fn observe_role(
        &mut self,
        id: NodeId,
        term: Term,
        role: Role,
    ) -> Result<(), String> {
        self.roles.push((id, term, role));
        if role == Role::Leader {
            let seen = *self.leaders.entry(term).or_insert(id);
            if seen != id {
                return Err(format!(
                    "Election Safety: n{id} and n{seen} both leader in term {term}"
                ));
            }
        }
        Ok(())
    }

    /// A read identified by `context` is requested now: remember the highest index any node has
    /// reported committed (applied), which its answer must cover.
    pub(crate) fn read_requested(&mut self, context: &Bytes) {
        let acked = self.committed.keys().next_back().copied().unwrap_or(0);
        self.reads.entry(context.clone()).or_insert(acked);
    }

    /// Linearizable reads (thesis §6.4): a read's index is at least the commit index of every
    /// write acknowledged (reported in `committed_entries` anywhere) before the read was
    /// requested; otherwise serving it at that index could miss the write.
    pub(crate) fn check_read_states(&self, id: NodeId, states: &[ReadState]) -> Result<(), String> {
        for rs in states {
            let acked = self.reads.get(&rs.context).copied().unwrap_or(0);
            if rs.index < acked {
                return Err(format!(
                    "Linearizable read: n{id} answers read {} at index {}, but index {acked} was acknowledged before it was requested",
                    String::from_utf8_lossy(&rs.context),
                    rs.index
                ));
            }
        }
        Ok(())
    }

    /// Every entry reported committed by any node so far, by index.
    pub fn committed(&self) -> impl Iterator<Item = &Entry> {
        self.committed.values().map(|(e, _)| e)
    }

    /// The last index node `id` applied since it started.
    pub fn applied_index(&self, id: NodeId) -> Index {
        self.applied.get(&id).copied().unwrap_or(0)
    }

    /// Node `id`'s state machine is in `state` after applying up to `index`: the same state as
    /// any other node's at that index (State Machine Safety, Raft §5.4.3, checked on the state, so
    /// that it covers snapshots too).
    pub(crate) fn state_at(&mut self, id: NodeId, index: Index, state: u64) -> Result<(), String> {
        match self.states.get(&index) {
            Some(&(seen, other)) if seen != state => Err(format!(
                "State Machine Safety: n{id}'s state at index {index} differs from n{other}'s"
            )),
            Some(_) => Ok(()),
            None => {
                self.states.insert(index, (state, id));
                Ok(())
            }
        }
    }

    /// Node `id` loaded a snapshot of the state at `index`: it must be past what the node applied
    /// (an index is never applied twice, Raft §7), and the state every node had at `index`.
    pub(crate) fn applied_snapshot(
        &mut self,
        id: NodeId,
        index: Index,
        state: u64,
    ) -> Result<(), String> {
        let last = self.applied_index(id);
        if index <= last {
            return Err(format!(
                "n{id} loaded a snapshot at {index} after applying {last}: indexes applied twice"
            ));
        }
        self.state_at(id, index, state)?;
        self.applied.insert(id, index);
        Ok(())
    }

    /// Records that node `id` applied `entries`: they must continue what it applied before, and
    /// match what any node applied at the same indexes (State Machine Safety, Raft §5.4.3).
    pub(crate) fn applied(
        &mut self,
        id: NodeId,
        entries: &[Entry],
        term: Term,
    ) -> Result<(), String> {
        let mut last = self.applied_index(id);
        for e in entries {
            if e.index != last + 1 {
                return Err(format!("n{id} applied index {} after {last}", e.index));
            }
            last = e.index;
            match self.committed.get(&e.index) {
                Some((seen, _)) if seen != e => {
                    return Err(format!(
                        "State Machine Safety: n{id} applied {}@{} at index {}, but {}@{} was applied there before",
                        e.index, e.term, e.index, seen.index, seen.term
                    ));
                }
                Some(_) => {}
                None => {
                    self.committed.insert(e.index, (e.clone(), term));
                }
            }
        }
        self.applied.insert(id, last);
        Ok(())
    }
}

/// The rules of the Ready contract, for the Ready node `id` just handed out; `last` is the hard
/// state of its previous Ready (or of its disk, at start).
pub(crate) fn check_ready(id: NodeId, rd: &Ready, last: HardState) -> Result<(), String> {
    // Rule 3: an acknowledgement promises that what it acknowledges is on disk; sent before the
    // disk write, it could be cast again (a vote) or counted without existing (an entry) after
    // a crash. A heartbeat response promises nothing and may go at once, as in etcd.
    if let Some(m) = rd.messages.iter().find(|m| {
        matches!(
            m.body,
            MessageBody::AppendAccepted { .. }
                | MessageBody::AppendRejected { .. }
                | MessageBody::VoteResponse { .. }
        )
    }) {
        return Err(format!(
            "acknowledgement sent before persisting: n{id}'s Ready has `{m}` in messages, not persisted_messages"
        ));
    }
    // Rule 1: a new term, vote, snapshot or entries must be durable before anything depends on
    // them (a snapshot is acknowledged like entries).
    let changes_vote = rd
        .hard_state
        .is_some_and(|hs| (hs.term, hs.vote) != (last.term, last.vote));
    let what = if changes_vote {
        Some("term or vote")
    } else if rd.snapshot.is_some() {
        Some("the snapshot")
    } else if !rd.entries.is_empty() {
        Some("entries")
    } else {
        None
    };
    if let (false, Some(what)) = (rd.must_sync, what) {
        return Err(format!(
            "must_sync false: n{id}'s Ready changes {what} but does not ask for a sync"
        ));
    }
    // Rule 4: a Ready that installs a snapshot applies nothing else; the entries it holds must
    // not be handed out too, and the ones after it wait for it to be loaded.
    if rd.snapshot.is_some() && !rd.committed_entries.is_empty() {
        return Err(format!(
            "committed entries beside a snapshot: n{id}'s Ready hands out both"
        ));
    }
    Ok(())
}

/// Leader `id`'s commit index moved to `commit`: a majority of its voters' synced disks must
/// hold the leader's entry there (its own counted only if synced), or a set of crashes could lose a
/// committed entry. (A leader counts its own copy only after `advance`, Ready rule 2.)
pub(crate) fn check_leader_commit(c: &Cluster, id: NodeId, commit: Index) -> Result<(), String> {
    use crate::Storage;
    let Some(n) = c.node(id) else { return Ok(()) };
    let Ok(term) = n.term(commit) else {
        return Ok(());
    };
    // The leader counts in its own configuration; a disk whose snapshot covers `commit` holds
    // it too.
    let voters = n.status().conf_state.voters;
    let holds = |d: &crate::MemStorage| {
        d.term(commit).ok() == Some(term) || d.first_index().is_ok_and(|f| commit < f - 1)
    };
    let holders: Vec<NodeId> = voters
        .iter()
        .copied()
        .filter(|&p| c.disk(p).is_some_and(holds))
        .collect();
    let need = majority(voters.len());
    if holders.len() < need {
        let held: Vec<String> = holders.iter().map(|p| format!("n{p}")).collect();
        return Err(format!(
            "leader commit beyond synced disks: n{id} commits {commit}@{term}, but only {} of its {} voters' synced disks hold it ({}), need {need}",
            holders.len(),
            voters.len(),
            held.join(" ")
        ));
    }
    Ok(())
}

/// A log that may start after a snapshot: `entries[k]` is the entry at index `first + k`.
struct Log {
    /// The first index held; everything before it is in the snapshot.
    first: Index,
    entries: Vec<Entry>,
}

impl Log {
    /// The entry at `index`, if held (not compacted, not past the end).
    fn get(&self, index: Index) -> Option<&Entry> {
        self.entries.get(index.checked_sub(self.first)? as usize)
    }

    /// The index of the last entry (or of the snapshot, if none follows it).
    fn last(&self) -> Index {
        self.first + self.entries.len() as u64 - 1
    }

    /// Whether the snapshot covers `index`.
    fn compacted(&self, index: Index) -> bool {
        index < self.first
    }
}

/// A node's whole log, stable and unstable, or its disk when it is down.
fn log_of(c: &Cluster, id: NodeId) -> Log {
    match c.node(id) {
        Some(n) => {
            let first = n.first_index();
            let entries = n
                .entries(first, n.status().last_index + 1)
                .unwrap_or_default();
            Log { first, entries }
        }
        None => disk_of(c, id),
    }
}

/// What node `id` has synced.
fn disk_of(c: &Cluster, id: NodeId) -> Log {
    use crate::Storage;
    let Some(d) = c.disk(id) else {
        return Log {
            first: 1,
            entries: Vec::new(),
        };
    };
    let (first, last) = (d.first_index().unwrap_or(1), d.last_index().unwrap_or(0));
    let entries = d.entries(first, last + 1, u64::MAX).unwrap_or_default();
    Log { first, entries }
}

/// Runs every check; the first violation found is returned, named after the property.
pub fn check(c: &mut Cluster) -> Result<(), String> {
    let ids = c.ids();
    let logs: BTreeMap<NodeId, Log> = ids.iter().map(|&id| (id, log_of(c, id))).collect();
    let disks: BTreeMap<NodeId, Log> = ids.iter().map(|&id| (id, disk_of(c, id))).collect();
    let leaders: Vec<(NodeId, Term)> = c
        .up_nodes()
        .map(|n| n.status())
        .filter(|s| s.soft_state.role == Role::Leader)
        .map(|s| (s.id, s.hard_state.term))
        .collect();
    let h = &mut c.history;

    // Election Safety: at most one leader per term (Raft §5.2).
    for &(id, term) in &leaders {
        let seen = *h.leaders.entry(term).or_insert(id);
        if seen != id {
            return Err(format!(
                "Election Safety: n{id} and n{seen} both leader in term {term}"
            ));
        }
    }

    // Leader Append-Only: a leader's log only grows while it leads (Raft §5.3). Its own
    // compaction drops a prefix; what it still holds must not change.
    for &(id, term) in &leaders {
        let log = &logs[&id];
        let now: Vec<Term> = log.entries.iter().map(|e| e.term).collect();
        if let Some((first, before)) = h.leader_logs.get(&(id, term)) {
            let before_last = first + before.len() as u64 - 1;
            let changed = log.last() < before_last
                || (log.first.max(*first)..=before_last).any(|i| {
                    log.get(i).map(|e| e.term) != before.get((i - first) as usize).copied()
                });
            if changed {
                return Err(format!(
                    "Leader Append-Only: n{id}'s log changed under it in term {term}"
                ));
            }
        }
        h.leader_logs.insert((id, term), (log.first, now));
    }

    // Log Matching: same index and term means identical logs up to there (Raft §5.3), compared
    // where both logs hold entries.
    for (i, (&a, la)) in logs.iter().enumerate() {
        for (&b, lb) in logs.iter().skip(i + 1) {
            let (low, high) = (la.first.max(lb.first), la.last().min(lb.last()));
            let same = |k: Index| la.get(k).map(|e| e.term) == lb.get(k).map(|e| e.term);
            if let Some(top) = (low..=high).rev().find(|&k| same(k))
                && let Some(k) = (low..=top).find(|&k| la.get(k) != lb.get(k))
            {
                return Err(format!(
                    "Log Matching: n{a} and n{b} agree at index {top} but differ at index {k}"
                ));
            }
        }
    }

    // Leader Completeness: a leader of a later term holds every committed entry (Raft §5.4),
    // in its log or in its snapshot.
    for &(id, term) in &leaders {
        let log = &logs[&id];
        for (index, (e, seen_term)) in &h.committed {
            if *seen_term < term && !log.compacted(*index) && log.get(*index) != Some(e) {
                return Err(format!(
                    "Leader Completeness: n{id}, leader in term {term}, lacks committed entry {index}@{}",
                    e.term
                ));
            }
        }
    }

    // Durability: no majority of a configuration in force lacks a committed entry on its disks
    // (in its log or covered by its snapshot), so no set of crashes that leaves a majority able
    // to elect a leader can lose it. (With n voters, more than n - majority(n) must hold it: for
    // an odd n that is a majority, for an even n one fewer, which a majority of the previous
    // configuration may leave.)
    for voters in h.configs_in_force() {
        let need = voters.len() - majority(voters.len()) + 1;
        for (index, (e, _)) in &h.committed {
            let held = voters
                .iter()
                .filter(|v| {
                    disks
                        .get(v)
                        .is_some_and(|d| d.compacted(*index) || d.get(*index) == Some(e))
                })
                .count();
            if held < need {
                return Err(format!(
                    "Durability: committed entry {index}@{} is on {held} disks of voters {voters:?}, need {need}",
                    e.term
                ));
            }
        }
    }
    Ok(())
}
