//! The safety properties of Raft (Figure 3), checked against a [`Cluster`] after every step.
//!
//! Each check compares what the nodes hold now with what was observed before (the [`History`]),
//! so a violation is caught at the step that causes it.

use std::collections::BTreeMap;

use super::Cluster;
use crate::quorum::majority;
use crate::{Entry, Index, NodeId, Role, Term};

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
}

impl History {
    pub(crate) fn restarted(&mut self, id: NodeId) {
        // A restarted node's state machine starts empty and re-applies from the beginning.
        self.applied.insert(id, 0);
    }

    pub(crate) fn crashed(&mut self, id: NodeId) {
        self.applied.remove(&id);
    }

    pub(crate) fn observe_role(&mut self, id: NodeId, term: Term, role: Role) {
        self.roles.push((id, term, role));
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

/// A node's whole log, stable and unstable, or its disk when it is down.
fn log_of(c: &Cluster, id: NodeId) -> Vec<Entry> {
    match c.node(id) {
        Some(n) => n.entries(1, n.status().last_index + 1).unwrap_or_default(),
        None => disk_of(c, id),
    }
}

/// What node `id` has persisted.
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
