//! The `await-*` commands of the scenario language ([`super::script`]): tick a cluster until a
//! liveness condition holds (a leader, a stable leader, an entry applied everywhere) or a bound of
//! ticks is reached, printing only what the ticks led to, not every message.
//!
//! Non-goal: deciding what a liveness failure is; the commands in `script.rs` compare the ticks
//! taken with their bound and print `LIVENESS FAILURE`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Cluster;
use super::safety::Verdict;
use crate::{Index, NodeId, Term};

/// The node leading in the highest term of any running node, with that term, if there is one.
pub(super) fn current_leader(c: &Cluster) -> Option<(NodeId, crate::Term)> {
    let top = c.up_nodes().map(|n| n.status().hard_state.term).max()?;
    c.up_nodes()
        .map(|n| n.status())
        .find(|s| s.hard_state.term == top && s.soft_state.role == crate::Role::Leader)
        .map(|s| (s.id, top))
}

/// Stabilizes, then ticks every node and stabilizes again until `done` holds or `max` ticks have
/// passed. The messages are not printed, only what they lead to, tick by tick: the role-change
/// line when a node stands for election (`n2@2 follower(n1) ⇨ n2@3 candidate`) or wins
/// (`n2@3 candidate ⇨ n2@3 leader`), and a line when it applies entries (`n1 apply 4@2=v1`, at
/// most one line per node and tick). The caller prints the outcome.
/// Returns the ticks it took.
pub(super) fn await_ticks(
    c: &mut Cluster,
    max: u64,
    mut done: impl FnMut(&Cluster) -> bool,
) -> u64 {
    let mut seen = Seen::new(c);
    c.stabilize();
    seen.print_news(c);
    let mut ticks = 0;
    while !c.has_failed() && !done(c) && ticks < max {
        c.ids().into_iter().for_each(|id| c.tick(id));
        c.stabilize();
        if let Err(v) = c.check_safety() {
            c.fail(Verdict::Safety(v));
        }
        seen.print_news(c);
        ticks += 1;
    }
    if !seen.out.is_empty() {
        c.say(seen.out.trim_end());
    }
    ticks
}

/// What `await_ticks` has printed so far: how far each node applied, and the lines.
struct Seen {
    applied: BTreeMap<NodeId, Index>,
    /// The lines so far.
    out: String,
}

impl Seen {
    fn new(c: &Cluster) -> Seen {
        Seen {
            applied: c
                .ids()
                .into_iter()
                .map(|id| (id, c.history.applied_index(id)))
                .collect(),
            out: String::new(),
        }
    }

    /// Replaces the output since the last call (every message and Ready) with what it led to:
    /// the cluster's own role-change lines for each candidacy and each win
    /// (`n2@2 follower(n1) ⇨ n2@3 candidate`, `n2@3 candidate ⇨ n2@3 leader`), in the order they
    /// happened, and one line per node that applied entries. Safety violations and liveness
    /// failures are kept.
    fn print_news(&mut self, c: &mut Cluster) {
        let out = &mut self.out;
        for l in c.take_output().lines() {
            let election =
                l.contains(" ⇨ ") && (l.ends_with(" candidate") || l.ends_with(" leader"));
            if election || l.starts_with("SAFETY VIOLATION") || l.starts_with("LIVENESS FAILURE") {
                let _ = writeln!(out, "{l}");
            }
        }
        for id in c.ids() {
            let now = c.history.applied_index(id);
            let before = self.applied.insert(id, now).unwrap_or(0).min(now);
            if now > before {
                let _ = write!(out, "n{id} apply");
                for e in c
                    .history
                    .committed()
                    .filter(|e| (before + 1..=now).contains(&e.index))
                {
                    out.push_str(&super::ready_steps::applied_entry(e));
                }
                out.push('\n');
            }
        }
    }
}

/// Ticks a leader must keep every node's allegiance for `await-stable-leader`: twice the
/// testkit's `election_tick` (10), so a CheckQuorum round and any follower's election timeout
/// (at most `2 * election_tick - 1`) have passed.
pub(super) const SETTLE_TICKS: u64 = 20;

/// The leader and its term, if every running node is in that term and follows it.
pub(super) fn stable_leader(c: &Cluster) -> Option<(NodeId, Term)> {
    let l = c.leader()?;
    let term = c.node(l)?.status().hard_state.term;
    // Only members: a removed node, or one still joining, follows nobody.
    let voters = c.voters();
    c.up_nodes()
        .filter(|n| voters.contains(&n.id()))
        .map(|n| n.status())
        .all(|s| s.hard_state.term == term && s.soft_state.leader == Some(l))
        .then_some((l, term))
}

/// The members (of the latest configuration) that have not applied an entry with `data`,
/// running or not.
pub(super) fn missing(c: &Cluster, data: &str) -> Vec<NodeId> {
    let index = c
        .history
        .committed()
        .find(|e| e.data.as_ref() == data.as_bytes())
        .map(|e| e.index);
    c.voters()
        .into_iter()
        .filter(|&id| index.is_none_or(|i| c.node(id).is_none() || c.history.applied_index(id) < i))
        .collect()
}
