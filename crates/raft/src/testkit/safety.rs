//! The safety properties of Raft (Figure 3), checked against a [`Cluster`] after every step,
//! and the rules of the [`Ready`] contract that those properties rest on, checked at every Ready.
//!
//! Each check compares what the nodes hold now with what was observed before (the [`History`]),
//! so a violation is caught at the step that causes it.
//!
//! | rule | checked |
//! | --- | --- |
//! | Election Safety, Leader Append-Only, Log Matching, Leader Completeness (Raft Figure 3) | after every command ([`check`]) |
//! | State Machine Safety (§5.4.3) | at every apply |
//! | Durability: an applied entry is on a majority of synced disks | after every command |
//! | Acknowledgements wait for the disk: `AppendAccepted`, `AppendRejected`, `VoteResponse` only in `persisted_messages` | at every Ready |
//! | `must_sync` when a Ready changes term or vote, or has entries | at every Ready |
//! | A leader's commit counts only synced copies: when it moves to N, a majority of synced disks hold entry N | when a leader's commit moves |
//! | A follower commits only what its leader's appends proved it holds (Figure 2, AppendEntries rule 5) | when a follower's commit moves |
//! | Linearizable reads: a `ReadState`'s index covers every write acknowledged (applied anywhere) before the read was requested (thesis §6.4) | at every Ready |

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
    leader_logs: BTreeMap<(NodeId, Term), Vec<Term>>,
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
    /// For each read requested, by context: the highest index applied anywhere when it was
    /// requested (every write acknowledged by then is at or below it).
    reads: BTreeMap<Bytes, Index>,
}

impl History {
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
    // Rule 1: a new term, vote or entries must be durable before anything depends on them.
    let changes_vote = rd
        .hard_state
        .is_some_and(|hs| (hs.term, hs.vote) != (last.term, last.vote));
    if !rd.must_sync && (changes_vote || !rd.entries.is_empty()) {
        return Err(format!(
            "must_sync false: n{id}'s Ready changes {} but does not ask for a sync",
            if changes_vote {
                "term or vote"
            } else {
                "entries"
            }
        ));
    }
    Ok(())
}

/// Leader `id`'s commit index moved to `commit`: a majority of synced disks must hold the
/// leader's entry there (its own counted only if synced), or a set of crashes could lose a
/// committed entry. (A leader counts its own copy only after `advance`, Ready rule 2.)
pub(crate) fn check_leader_commit(c: &Cluster, id: NodeId, commit: Index) -> Result<(), String> {
    use crate::Storage;
    let Some(n) = c.node(id) else { return Ok(()) };
    let Some(e) = n
        .entries(commit, commit + 1)
        .ok()
        .and_then(|e| e.into_iter().next())
    else {
        return Ok(());
    };
    let ids = c.ids();
    let holders: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|&p| c.disk(p).and_then(|d| d.term(commit).ok()) == Some(e.term))
        .collect();
    let need = majority(ids.len());
    if holders.len() < need {
        let held: Vec<String> = holders.iter().map(|p| format!("n{p}")).collect();
        return Err(format!(
            "leader commit beyond synced disks: n{id} commits {commit}@{}, but only {} of {} synced disks hold it ({}), need {need}",
            e.term,
            holders.len(),
            ids.len(),
            held.join(" ")
        ));
    }
    Ok(())
}

/// A node's whole log, stable and unstable, or its disk when it is down.
fn log_of(c: &Cluster, id: NodeId) -> Vec<Entry> {
    match c.node(id) {
        Some(n) => n.entries(1, n.status().last_index + 1).unwrap_or_default(),
        None => disk_of(c, id),
    }
}

/// What node `id` has synced.
fn disk_of(c: &Cluster, id: NodeId) -> Vec<Entry> {
    use crate::Storage;
    let Some(d) = c.disk(id) else {
        return Vec::new();
    };
    let last = d.last_index().unwrap_or(0);
    d.entries(1, last + 1, u64::MAX).unwrap_or_default()
}

/// Runs every check; the first violation found is returned, named after the property.
pub fn check(c: &mut Cluster) -> Result<(), String> {
    let ids = c.ids();
    let logs: BTreeMap<NodeId, Vec<Entry>> = ids.iter().map(|&id| (id, log_of(c, id))).collect();
    let disks: BTreeMap<NodeId, Vec<Entry>> = ids.iter().map(|&id| (id, disk_of(c, id))).collect();
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

    // Leader Append-Only: a leader's log only grows while it leads (Raft §5.3).
    for &(id, term) in &leaders {
        let now: Vec<Term> = logs[&id].iter().map(|e| e.term).collect();
        if let Some(before) = h.leader_logs.get(&(id, term))
            && (now.len() < before.len() || now[..before.len()] != before[..])
        {
            return Err(format!(
                "Leader Append-Only: n{id}'s log changed under it in term {term}"
            ));
        }
        h.leader_logs.insert((id, term), now);
    }

    // Log Matching: same index and term means identical logs up to there (Raft §5.3).
    for (i, (&a, la)) in logs.iter().enumerate() {
        for (&b, lb) in logs.iter().skip(i + 1) {
            let common = la.len().min(lb.len());
            if let Some(top) = (0..common).rev().find(|&k| la[k].term == lb[k].term)
                && la[..=top] != lb[..=top]
            {
                let k = (0..=top).find(|&k| la[k] != lb[k]).unwrap_or(0);
                return Err(format!(
                    "Log Matching: n{a} and n{b} agree at index {} but differ at index {}",
                    top + 1,
                    k + 1
                ));
            }
        }
    }

    // Leader Completeness: a leader of a later term holds every committed entry (Raft §5.4).
    for &(id, term) in &leaders {
        for (index, (e, seen_term)) in &h.committed {
            if *seen_term < term && logs[&id].get(*index as usize - 1) != Some(e) {
                return Err(format!(
                    "Leader Completeness: n{id}, leader in term {term}, lacks committed entry {index}@{}",
                    e.term
                ));
            }
        }
    }

    // Durability: a committed entry is on the disks of a majority, so no set of crashes that
    // leaves a majority able to elect a leader can lose it.
    let need = majority(ids.len());
    for (index, (e, _)) in &h.committed {
        let held = disks
            .values()
            .filter(|d| d.get(*index as usize - 1) == Some(e))
            .count();
        if held < need {
            return Err(format!(
                "Durability: committed entry {index}@{} is on {held} disks, need {need}",
                e.term
            ));
        }
    }
    Ok(())
}
