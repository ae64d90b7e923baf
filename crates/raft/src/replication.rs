//! Log replication (Raft §5.3) and commitment (§5.4.2): the leader's side (appending proposals,
//! sending appends and heartbeats, reading the answers, advancing the commit index) and the
//! follower's side (the consistency check and the append itself).
//!
//! The leader does not send an append per proposal. Proposals only extend its log; the appends
//! go out when the application asks for the next `Ready` ([`Raft::flush_appends`]), one message
//! per follower carrying everything new, up to `max_size_per_msg` and the inflight window. Many
//! proposals between two Readys therefore cost one round of messages, not one each.
//!
//! When the commit index advances, each follower is told once: an empty append carrying the new
//! commit index, unless an append with entries already carried it (`Progress::sent_commit`
//! remembers what was announced). etcd sends such an announcement on every commit advance; the
//! bookkeeping here only avoids repeating it. If an announcement is lost, the next heartbeat
//! carries the commit index too (capped at what the follower is known to hold), so nothing waits
//! longer than a heartbeat interval.

use tracing::{debug, warn};

use crate::error::{Error, ProposalDropped};
use crate::message::{Message, MessageBody};
use crate::progress::ProgressState;
use crate::quorum::committed_index;
use crate::raft::{Raft, RoleState};
use crate::storage::Storage;
use crate::types::{Entry, Index, NodeId, Term};

impl<S: Storage> Raft<S> {
    // --- Leader ---

    /// A leader's tick: heartbeats every `heartbeat_tick`, and with CheckQuorum, a step down when a
    /// quorum has not been heard from for an election timeout.
    pub(crate) fn tick_heartbeat(&mut self) {
        self.election_elapsed += 1;
        if self.election_elapsed >= self.config.election_tick {
            self.election_elapsed = 0;
            if self.config.check_quorum && !self.quorum_active() {
                warn!(
                    id = self.id,
                    term = self.term,
                    "stepping down: quorum not active"
                );
                self.become_follower(self.term, None);
                return;
            }
        }
        let heartbeat_tick = self.config.heartbeat_tick;
        let Some(leader) = self.leader_state() else {
            return;
        };
        leader.heartbeat_elapsed += 1;
        if leader.heartbeat_elapsed >= heartbeat_tick {
            leader.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
    }

    fn broadcast_heartbeat(&mut self) {
        let (id, committed) = (self.id, self.log.committed());
        let Some(leader) = self.leader_state() else {
            return;
        };
        // A follower may only adopt a commit index up to where its log is known to match ours.
        let beats: Vec<(NodeId, Index)> = leader
            .progress
            .iter()
            .filter(|(peer, _)| **peer != id)
            .map(|(&peer, pr)| (peer, pr.match_index.min(committed)))
            .collect();
        for (to, commit) in beats {
            self.send(to, MessageBody::Heartbeat { commit });
        }
    }

    /// Appends proposals to the leader's log, refusing them when too much is uncommitted.
    pub(crate) fn leader_append(&mut self, entries: Vec<Entry>) -> Result<(), Error> {
        let limit = self.config.max_uncommitted_entries_size;
        let size: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
        let Some(leader) = self.leader_state() else {
            return Err(ProposalDropped::NoLeader.into());
        };
        // The first proposal always fits, however large, so that a big entry cannot block forever.
        if limit > 0 && leader.uncommitted_size > 0 && leader.uncommitted_size + size > limit {
            let uncommitted = leader.uncommitted_size;
            return Err(ProposalDropped::UncommittedSizeExceeded { uncommitted, limit }.into());
        }
        leader.uncommitted_size += size;
        self.append_own(entries);
        Ok(())
    }

    /// Assigns this term and the next indexes to `entries` and appends them to the leader's log.
    pub(crate) fn append_own(&mut self, mut entries: Vec<Entry>) {
        let (term, mut index) = (self.term, self.log.last_index());
        for e in &mut entries {
            index += 1;
            e.term = term;
            e.index = index;
        }
        self.log.append(&entries);
    }

    /// Entries handed to the application as committed no longer count as uncommitted.
    pub(crate) fn reduce_uncommitted_size(&mut self, committed: &[Entry]) {
        let size: u64 = committed.iter().map(|e| e.data.len() as u64).sum();
        if let Some(leader) = self.leader_state() {
            leader.uncommitted_size = leader.uncommitted_size.saturating_sub(size);
        }
    }

    /// Sends every follower what it is missing: new entries, as far as its flow control allows,
    /// or an empty append when it only lacks the latest commit index.
    pub fn flush_appends(&mut self) {
        let id = self.id;
        let Some(leader) = self.leader_state() else {
            return;
        };
        let peers: Vec<NodeId> = leader
            .progress
            .keys()
            .copied()
            .filter(|&p| p != id)
            .collect();
        for to in peers {
            while self.send_append(to, false) {}
            if self.commit_news_for(to) {
                self.send_append(to, true);
            }
        }
    }

    /// Whether [`Raft::flush_appends`] would send anything.
    pub fn has_pending_appends(&self) -> bool {
        let RoleState::Leader(leader) = &self.role else {
            return false;
        };
        let last = self.log.last_index();
        leader.progress.iter().any(|(&peer, pr)| {
            peer != self.id
                && !pr.is_paused()
                && (pr.next_index <= last || self.commit_news(pr.next_index, pr.sent_commit))
        })
    }

    fn commit_news_for(&mut self, to: NodeId) -> bool {
        let committed = self.log.committed();
        self.progress_mut(to)
            .is_some_and(|pr| committed.min(pr.next_index - 1) > pr.sent_commit)
    }

    fn commit_news(&self, next_index: Index, sent_commit: Index) -> bool {
        self.log.committed().min(next_index - 1) > sent_commit
    }

    /// Sends one append to `to` from its next index, if its flow control allows. An empty append
    /// is sent only when `send_if_empty`. Returns whether a message was sent.
    pub(crate) fn send_append(&mut self, to: NodeId, send_if_empty: bool) -> bool {
        let (last, committed, max_size) = (
            self.log.last_index(),
            self.log.committed(),
            self.config.max_size_per_msg,
        );
        let Some(pr) = self.progress_mut(to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        let (next, prev_index) = (pr.next_index, pr.next_index - 1);
        let read = self
            .log
            .term(prev_index)
            .and_then(|prev_term| Ok((prev_term, self.log.slice(next, last + 1, max_size)?)));
        let (prev_term, entries) = match read {
            Ok(read) => read,
            Err(e) => {
                // The log cannot supply what this follower needs (compacted: only a snapshot
                // could help, which is part 2; or the storage failed). Pause the follower until
                // its next heartbeat response, so that `has_ready` does not stay true with nothing
                // to send.
                warn!(id = self.id, to, prev_index, "cannot send append: {e}");
                if let Some(pr) = self.progress_mut(to) {
                    pr.pause_probe();
                }
                return false;
            }
        };
        if entries.is_empty() && !send_if_empty {
            return false;
        }
        let last_sent = prev_index + entries.len() as u64;
        let Some(pr) = self.progress_mut(to) else {
            return false;
        };
        pr.sent_append(last_sent, !entries.is_empty());
        pr.sent_commit = pr.sent_commit.max(committed.min(last_sent));
        self.send(
            to,
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit: committed,
            },
        );
        true
    }

    /// A leader's rules for the answers it gets.
    pub(crate) fn step_leader(&mut self, m: Message) {
        let Some(pr) = self.progress_mut(m.from) else {
            debug!(
                id = self.id,
                from = m.from,
                "leader ignores message from unknown peer"
            );
            return;
        };
        // CheckQuorum counts a follower as active only when it answers the leader's own traffic
        // (appends, heartbeats), as etcd does; a late vote reply says nothing about now.
        if matches!(
            m.body,
            MessageBody::AppendAccepted { .. }
                | MessageBody::AppendRejected { .. }
                | MessageBody::HeartbeatResponse
        ) {
            pr.recent_active = true;
        }
        match m.body {
            MessageBody::AppendAccepted { match_index } => {
                self.handle_append_accepted(m.from, match_index)
            }
            MessageBody::AppendRejected {
                rejected_index,
                hint_index,
                hint_term,
            } => self.handle_append_rejected(m.from, rejected_index, hint_index, hint_term),
            MessageBody::HeartbeatResponse => self.handle_heartbeat_response(m.from),
            _ => debug!(
                id = self.id,
                from = m.from,
                "leader ignores {}",
                m.body.name()
            ),
        }
    }

    fn handle_append_accepted(&mut self, from: NodeId, match_index: Index) {
        if match_index > self.log.last_index() {
            warn!(
                id = self.id,
                from, match_index, "ignoring acknowledgement beyond our log"
            );
            return;
        }
        let Some(pr) = self.progress_mut(from) else {
            return;
        };
        let updated = pr.maybe_update(match_index);
        // A probe answered at exactly the known match index is news too: it confirms where the
        // logs agree (the probe carried nothing new), so streaming can resume (as in etcd).
        let confirmed = pr.state == ProgressState::Probe && pr.match_index == match_index;
        if !updated && !confirmed {
            return;
        }
        match pr.state {
            // The logs agree up to match_index: stream from here on.
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Replicate => pr.inflights.free_to(match_index),
        }
        if updated {
            self.maybe_commit();
        }
    }

    /// Fast back-off (Raft §5.3, end): the follower's hint names the last index where its term is
    /// at most the term we sent; we jump to the last index where *our* term is at most the
    /// follower's term there, skipping a whole mismatching term per round trip.
    fn handle_append_rejected(
        &mut self,
        from: NodeId,
        rejected: Index,
        hint_index: Index,
        hint_term: Term,
    ) {
        let probe_hint = if hint_term > 0 {
            self.log.find_conflict_by_term(hint_index, hint_term).0
        } else {
            hint_index
        };
        let Some(pr) = self.progress_mut(from) else {
            return;
        };
        if pr.maybe_decrease_to(rejected, probe_hint) {
            debug!(
                from,
                rejected,
                next = pr.next_index,
                "append rejected; backing off"
            );
            if pr.state == ProgressState::Replicate {
                pr.become_probe();
            }
        }
    }

    fn handle_heartbeat_response(&mut self, from: NodeId) {
        let last = self.log.last_index();
        let Some(pr) = self.progress_mut(from) else {
            return;
        };
        pr.probe_sent = false;
        // An append lost in transit would hold its inflight slot forever; free one so that the
        // follower gets another append and can reject it (then we probe) or accept it.
        if pr.state == ProgressState::Replicate && pr.inflights.is_full() {
            pr.inflights.free_first_one();
        }
        if pr.match_index < last {
            self.send_append(from, true);
        }
    }

    /// Commits the highest index a quorum has replicated, but only if it is from the current term
    /// (Raft §5.4.2, Figure 8): an older entry replicated on a majority can still be overwritten;
    /// it becomes committed indirectly, when an entry of the current term after it commits.
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let term = self.term;
        let Some(leader) = self.leader_state() else {
            return false;
        };
        let mut matches: Vec<Index> = leader.progress.values().map(|pr| pr.match_index).collect();
        let index = committed_index(&mut matches);
        if index > self.log.committed() && self.log.term(index) == Ok(term) {
            self.log.commit_to(index);
            return true;
        }
        false
    }

    // --- Follower ---

    /// A follower's rules: a message from the leader resets the election timeout (Raft §5.2).
    pub(crate) fn step_follower(&mut self, m: Message) {
        match m.body {
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                self.election_elapsed = 0;
                self.leader = Some(m.from);
                self.handle_append(m.from, prev_index, prev_term, entries, commit);
            }
            MessageBody::Heartbeat { commit } => {
                self.election_elapsed = 0;
                self.leader = Some(m.from);
                // Capped at our last index: the leader sends at most our match index, so only a
                // corrupt message could exceed it, and it must not make us commit what we lack.
                self.log.commit_to(commit.min(self.log.last_index()));
                self.send(m.from, MessageBody::HeartbeatResponse);
            }
            _ => debug!(
                id = self.id,
                from = m.from,
                "follower ignores {}",
                m.body.name()
            ),
        }
    }

    /// AppendEntries receiver rules (Raft Figure 2): reject if the log has no entry at
    /// `prev_index` with `prev_term`; otherwise drop conflicting entries, append the new ones, and
    /// adopt `min(leader commit, index of last new entry)`.
    fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
    ) {
        if !well_formed(prev_index, prev_term, self.term, &entries) {
            warn!(id = self.id, from, prev_index, "malformed append dropped");
            return;
        }
        let term = self.term;
        if prev_index < self.log.committed() {
            // Everything up to our commit index is known to match: say so, and the leader moves on.
            let match_index = self.log.committed();
            self.send_after_persist(from, term, MessageBody::AppendAccepted { match_index });
            return;
        }
        if self.log.match_term(prev_index, prev_term) {
            let Some(last_new) = self.log.append_after(prev_index, &entries) else {
                warn!(
                    id = self.id,
                    from, prev_index, "append conflicts with committed entries; dropped"
                );
                return;
            };
            self.log.commit_to(commit.min(last_new));
            self.send_after_persist(
                from,
                term,
                MessageBody::AppendAccepted {
                    match_index: last_new,
                },
            );
        } else {
            let (hint_index, hint_term) = self
                .log
                .find_conflict_by_term(prev_index.min(self.log.last_index()), prev_term);
            debug!(
                id = self.id,
                from, prev_index, prev_term, hint_index, hint_term, "append rejected"
            );
            let body = MessageBody::AppendRejected {
                rejected_index: prev_index,
                hint_index,
                hint_term,
            };
            self.send_after_persist(from, term, body);
        }
    }
}

/// Whether an append's entries can be what a leader of `term` sends: consecutive indexes right
/// after `prev_index`, terms never decreasing from `prev_term` and never above `term`. Anything
/// else is a corrupt or forged message, which must not reach the log.
fn well_formed(prev_index: Index, prev_term: Term, term: Term, entries: &[Entry]) -> bool {
    let (mut index, mut last_term) = (prev_index, prev_term);
    for e in entries {
        let Some(next) = index.checked_add(1) else {
            return false;
        };
        if e.index != next || e.term < last_term || e.term > term {
            return false;
        }
        (index, last_term) = (e.index, e.term);
    }
    prev_term <= term
}
