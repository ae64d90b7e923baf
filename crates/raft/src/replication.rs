//! Log replication (Raft §5.3) and commitment (§5.4.2): the leader's side (appending proposals,
//! sending appends and heartbeats, reading the answers, advancing the commit index) and the
//! follower's side (the consistency check and the append itself).
//!
//! The leader does not send an append per proposal. Proposals only extend its log; the appends
//! go out when the application asks for the next `Ready` (`flush_appends`), one message per
//! follower carrying everything new, up to `max_size_per_msg` and the inflight window. Many
//! proposals between two Readys therefore cost one round of messages, not one each.
//!
//! What a follower is sent next is decided in one place, `Core::next_append`: `RawNode::has_ready`
//! asks it whether there is an append to send, and `flush_appends` sends what it answers, so the
//! two cannot disagree.
//!
//! When the commit index advances, each follower is told once: an empty append carrying the new
//! commit index, unless an append with entries already carried it (`Progress::sent_commit`
//! remembers what was announced). etcd sends such an announcement on every commit advance; the
//! bookkeeping here only avoids repeating it. If an announcement is lost, the next heartbeat
//! carries the commit index too (capped at what the follower is known to hold), so nothing waits
//! longer than a heartbeat interval.

use tracing::{debug, info, warn};

use crate::error::{Error, ProposalDropped, StorageError, StorageFailure};
use crate::message::{Message, MessageBody};
use crate::progress::Progress;
use crate::quorum::committed_index;
use crate::raft::{Core, LeaderState};
use crate::storage::Storage;
use crate::types::{Entry, Index, NodeId, Snapshot, Term};

/// The append a leader owes one follower, as [`Core::next_append`] decides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NextAppend {
    /// The entries after `prev_index`, up to the last index and as many as `max_size_per_msg`
    /// allows.
    Entries { prev_index: Index },
    /// No entries: only the consistency check at `prev_index` and the commit index. It announces
    /// a commit index the follower has not been told, or, after a heartbeat response, asks the
    /// follower where its log stands.
    Empty { prev_index: Index },
}

impl<S: Storage> Core<S> {
    // --- Leader ---

    /// A leader's tick: heartbeats every `heartbeat_tick`, and with CheckQuorum, a check every
    /// `election_tick` that a quorum was heard from. Returns whether that check failed: then the
    /// leader must step down (which changes the role, so the caller does it) and sends nothing.
    #[must_use = "a leader that lost its quorum must step down"]
    pub(crate) fn tick_heartbeat(&mut self, leader: &mut LeaderState) -> bool {
        self.tick_transfer(leader);
        self.election_elapsed += 1;
        if self.election_elapsed >= self.config.election_tick {
            self.election_elapsed = 0;
            if self.config.check_quorum && !self.quorum_active(leader) {
                warn!(
                    id = self.id,
                    term = self.term,
                    "stepping down: quorum not active"
                );
                return true;
            }
        }
        leader.heartbeat_elapsed += 1;
        if leader.heartbeat_elapsed >= self.config.heartbeat_tick {
            leader.heartbeat_elapsed = 0;
            self.broadcast_heartbeat(leader);
        }
        false
    }

    /// Every follower gets a heartbeat carrying the newest pending read's context, if any: its
    /// answers make the quorum round of [`crate::read_only`], and because every heartbeat carries
    /// the context, a round whose messages were lost is retried by the next one.
    pub(crate) fn broadcast_heartbeat(&mut self, leader: &LeaderState) {
        let (id, committed) = (self.id, self.log.committed());
        let context = leader.read_only.last_pending_context();
        for (&to, pr) in leader.progress.iter().filter(|&(&to, _)| to != id) {
            // A follower may only adopt a commit index up to where its log is known to match ours.
            let commit = pr.match_index().min(committed);
            let context = context.clone();
            self.send(to, MessageBody::Heartbeat { commit, context });
        }
    }

    /// Appends proposals to the leader's log, refusing them when too much is uncommitted.
    pub(crate) fn leader_append(
        &mut self,
        leader: &mut LeaderState,
        entries: Vec<Entry>,
    ) -> Result<(), Error> {
        if let Some(t) = leader.lead_transferee {
            return Err(ProposalDropped::TransferInProgress { to: t.to }.into());
        }
        let limit = self.config.max_uncommitted_entries_size;
        let size: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
        let uncommitted = leader.uncommitted_size;
        // The first proposal always fits, however large, so that a big entry cannot block forever.
        if limit > 0 && uncommitted > 0 && uncommitted + size > limit {
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

    /// What `pr`'s follower is sent next, if anything: the one decision behind both
    /// `RawNode::has_ready` (is there an append to send?) and [`Core::flush_appends`] (send it).
    ///
    /// - Nothing while the follower is paused: a probe is outstanding, or the inflight window is
    ///   full (see [`crate::progress`]).
    /// - The entries from `next_index` on, if the log has any.
    /// - Otherwise an empty append, if the follower has not been told the commit index its log
    ///   can use.
    ///
    /// It reads no entries, so it cannot fail. If the log then cannot supply the append,
    /// [`Core::send_append`] sends the snapshot instead (the entries are compacted), which puts
    /// the follower in the snapshot state, or pauses it (a storage failure): either way
    /// `has_ready` may have said yes once for it, and says no from then on.
    pub(crate) fn next_append(&self, pr: &Progress) -> Option<NextAppend> {
        if pr.is_paused() {
            return None;
        }
        let prev_index = pr.next_index() - 1;
        if pr.next_index() <= self.log.last_index() {
            Some(NextAppend::Entries { prev_index })
        } else if pr.has_commit_news(self.log.committed()) {
            Some(NextAppend::Empty { prev_index })
        } else {
            None
        }
    }

    /// Whether [`Core::flush_appends`] would send anything.
    pub(crate) fn has_pending_appends(&self, leader: &LeaderState) -> bool {
        leader
            .progress
            .iter()
            .any(|(&to, pr)| to != self.id && self.next_append(pr).is_some())
    }

    /// Sends every follower what [`Core::next_append`] says it is missing: new entries, as far as
    /// its flow control allows, or an empty append when it only lacks the latest commit index.
    ///
    /// Each append sent moves the follower's progress towards `None`: a probe pauses, a streamed
    /// append advances `next_index` and fills the window, an empty one records the commit index
    /// it announced, and an append that cannot be built pauses the follower.
    pub(crate) fn flush_appends(&mut self, leader: &mut LeaderState) {
        for (&to, pr) in leader.progress.iter_mut() {
            if to == self.id {
                continue;
            }
            while let Some(next) = self.next_append(pr) {
                self.send_append(to, pr, next);
            }
        }
    }

    /// Builds and queues the append `next` describes, and records it in `pr`.
    fn send_append(&mut self, to: NodeId, pr: &mut Progress, next: NextAppend) {
        let prev_index = match next {
            NextAppend::Entries { prev_index } | NextAppend::Empty { prev_index } => prev_index,
        };
        let read = self.log.term(prev_index).and_then(|prev_term| {
            let entries = match next {
                NextAppend::Entries { .. } => self.log.slice(
                    prev_index + 1,
                    self.log.last_index() + 1,
                    self.config.max_size_per_msg,
                )?,
                NextAppend::Empty { .. } => Vec::new(),
            };
            Ok((prev_term, entries))
        });
        let (prev_term, entries) = match read {
            Ok(read) => read,
            // The log no longer holds what this follower needs: only a snapshot can help (Raft §7).
            Err(StorageError::Compacted(_)) => return self.maybe_send_snapshot(to, pr),
            Err(error) => {
                // The storage failed. Report it and pause the follower until its next heartbeat
                // response, so that `has_ready` does not stay true with nothing to send and the
                // read is retried at most once per heartbeat, each failure reported.
                warn!(id = self.id, to, prev_index, "cannot send append: {error}");
                self.storage_failures.push(StorageFailure { to, error });
                pr.pause();
                return;
            }
        };
        let (last_sent, committed) = (prev_index + entries.len() as u64, self.log.committed());
        let bytes = entries.iter().map(|e| e.data.len() as u64).sum();
        pr.sent_append(last_sent, !entries.is_empty(), bytes, committed);
        let body = MessageBody::Append {
            prev_index,
            prev_term,
            entries,
            commit: committed,
        };
        self.send(to, body);
    }

    /// Sends `to` the leader's latest snapshot, because the entries it needs are compacted
    /// (Raft §7, InstallSnapshot): its progress enters the snapshot state and nothing more is sent
    /// until the application reports the transfer ([`crate::RawNode::report_snapshot`]) or the
    /// follower acknowledges it. A snapshot still being prepared
    /// ([`StorageError::SnapshotTemporarilyUnavailable`]) pauses the follower until its next
    /// heartbeat response, as etcd does; any other error is reported in
    /// [`crate::Ready::storage_failures`] and pauses it the same way.
    fn maybe_send_snapshot(&mut self, to: NodeId, pr: &mut Progress) {
        let snapshot = match self.log.storage().snapshot() {
            Ok(s) => s,
            Err(StorageError::SnapshotTemporarilyUnavailable) => {
                debug!(
                    id = self.id,
                    to, "snapshot temporarily unavailable; will retry"
                );
                pr.pause();
                return;
            }
            Err(error) => {
                warn!(id = self.id, to, "cannot send snapshot: {error}");
                self.storage_failures.push(StorageFailure { to, error });
                pr.pause();
                return;
            }
        };
        let index = snapshot.metadata.index;
        if index + 1 < self.log.first_index() {
            // A storage that compacted past its snapshot cannot catch this follower up: the
            // snapshot would end before the log starts. Report it rather than loop.
            let error = StorageError::Other(format!(
                "snapshot at {index} ends before the first index {}",
                self.log.first_index()
            ));
            self.storage_failures.push(StorageFailure { to, error });
            pr.pause();
            return;
        }
        debug!(id = self.id, to, index, "sending snapshot");
        pr.become_snapshot(index);
        self.send(
            to,
            MessageBody::Snapshot {
                snapshot: Box::new(snapshot),
            },
        );
    }

    /// The application's report of a snapshot transfer to `to` ([`crate::RawNode::report_snapshot`]).
    pub(crate) fn report_snapshot(&mut self, leader: &mut LeaderState, to: NodeId, ok: bool) {
        if let Some(pr) = leader.progress.get_mut(&to)
            && pr.snapshot_reported(ok)
        {
            debug!(id = self.id, to, ok, "snapshot reported; probing");
        }
    }

    /// The transport's report that `to` could not be reached ([`crate::RawNode::report_unreachable`]).
    pub(crate) fn report_unreachable(&mut self, leader: &mut LeaderState, to: NodeId) {
        if to != self.id
            && let Some(pr) = leader.progress.get_mut(&to)
            && pr.unreachable()
        {
            debug!(id = self.id, to, "unreachable; probing");
        }
    }

    /// A leader's rules for the answers it gets.
    pub(crate) fn step_leader(&mut self, leader: &mut LeaderState, m: Message) {
        let Some(pr) = leader.progress.get_mut(&m.from) else {
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
                | MessageBody::HeartbeatResponse { .. }
        ) {
            pr.set_recent_active();
        }
        match m.body {
            MessageBody::AppendAccepted { match_index } => {
                if self.handle_append_accepted(m.from, pr, match_index) && self.maybe_commit(leader)
                {
                    self.release_waiting_reads(leader);
                }
                // Every acknowledgement, not only news: a target that re-acknowledges the last
                // index may not have received the `TimeoutNow` sent before (as in etcd).
                self.maybe_send_timeout_now(leader, m.from);
            }
            MessageBody::AppendRejected {
                rejected_index,
                hint_index,
                hint_term,
            } => self.handle_append_rejected(m.from, pr, rejected_index, hint_index, hint_term),
            MessageBody::HeartbeatResponse { context } => {
                self.handle_heartbeat_response(m.from, pr);
                if let Some(context) = context {
                    self.read_index_ack(leader, m.from, &context);
                }
            }
            MessageBody::ReadIndex { context } => self.handle_read_index(leader, m.from, context),
            _ => debug!(
                id = self.id,
                from = m.from,
                "leader ignores {}",
                m.body.name()
            ),
        }
    }

    /// Returns whether the follower's match index advanced, which may commit.
    fn handle_append_accepted(&self, from: NodeId, pr: &mut Progress, match_index: Index) -> bool {
        if match_index > self.log.last_index() {
            warn!(
                id = self.id,
                from, match_index, "ignoring acknowledgement beyond our log"
            );
            return false;
        }
        let updated = pr.append_accepted(match_index);
        // A follower in the snapshot state that now holds everything before our first index
        // installed the snapshot (or caught up otherwise): stream to it from here.
        pr.maybe_leave_snapshot(self.log.first_index());
        updated
    }

    /// Fast back-off (Raft §5.3, end): the follower's hint names the last index where its term is
    /// at most the term we sent; we jump to the last index where *our* term is at most the
    /// follower's term there, skipping a whole mismatching term per round trip.
    fn handle_append_rejected(
        &self,
        from: NodeId,
        pr: &mut Progress,
        rejected: Index,
        hint_index: Index,
        hint_term: Term,
    ) {
        let probe_hint = if hint_term > 0 {
            self.log.find_conflict_by_term(hint_index, hint_term).0
        } else {
            hint_index
        };
        if pr.maybe_decrease_to(rejected, probe_hint) {
            debug!(
                from,
                rejected,
                next = pr.next_index(),
                "append rejected; backing off"
            );
        }
    }

    /// The follower is up. If its log is behind ours, it gets an append at once: what
    /// [`Core::next_append`] decides, or failing that (a full window, or everything already sent)
    /// an empty append. Its answer tells where the follower stands: an append or an
    /// acknowledgement lost in transit would otherwise hold the follower (or its inflight slot)
    /// forever. The empty append carries no entries and takes no slot, so a follower that
    /// answers heartbeats but acknowledges nothing receives at most `max_inflight_msgs` appends
    /// with entries (etcd fixed the same leak, where each heartbeat response freed a slot).
    fn handle_heartbeat_response(&mut self, from: NodeId, pr: &mut Progress) {
        pr.heartbeat_answered();
        // A snapshot in flight: nothing is sent until its outcome is known (`report_snapshot`).
        if pr.match_index() < self.log.last_index() && !pr.is_snapshotting() {
            let prev_index = pr.next_index() - 1;
            let next = self
                .next_append(pr)
                .unwrap_or(NextAppend::Empty { prev_index });
            self.send_append(from, pr, next);
        }
    }

    /// Commits the highest index a quorum has replicated, but only if it is from the current term
    /// (Raft §5.4.2, Figure 8): an older entry replicated on a majority can still be overwritten;
    /// it becomes committed indirectly, when an entry of the current term after it commits.
    pub(crate) fn maybe_commit(&mut self, leader: &LeaderState) -> bool {
        let mut matches: Vec<Index> = leader
            .progress
            .values()
            .map(Progress::match_index)
            .collect();
        let index = committed_index(&mut matches);
        if index > self.log.committed() && self.log.term(index) == Ok(self.term) {
            self.log.commit_to(index);
            return true;
        }
        false
    }

    // --- Follower ---

    /// A follower's rules: a message from the leader restarts the election count (Raft §5.2:
    /// "if election timeout elapses without receiving AppendEntries RPC from current leader").
    /// Only the count: the randomized timeout is redrawn on role or term changes alone.
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
            MessageBody::Snapshot { snapshot } => {
                self.election_elapsed = 0;
                self.leader = Some(m.from);
                self.handle_snapshot(m.from, *snapshot);
            }
            // Departure from Figure 2, where a heartbeat is an AppendEntries with no entries and
            // so passes the consistency check: here it is its own message, without one (as in
            // etcd). It only asserts leadership and carries a commit index the leader knows our
            // log holds (at most our match index), so nothing in it needs checking against our
            // log, and it costs the leader no log read per beat. Finding where the logs agree is
            // the work of the appends that a heartbeat response releases.
            MessageBody::Heartbeat { commit, context } => {
                self.election_elapsed = 0;
                self.leader = Some(m.from);
                // Capped at our last index: the leader sends at most our match index, so only a
                // corrupt message could exceed it, and it must not make us commit what we lack.
                self.log.commit_to(commit.min(self.log.last_index()));
                self.send(m.from, MessageBody::HeartbeatResponse { context });
            }
            MessageBody::ReadIndexResponse { index, context } => {
                self.handle_read_index_response(m.from, index, context);
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

impl<S: Storage> Core<S> {
    /// InstallSnapshot receiver rules (Raft §7, Figure 13), as etcd applies them: a snapshot
    /// ahead of the commit index replaces the log (it is handed to the application in
    /// [`crate::Ready::snapshot`]) and is acknowledged with the new last index; one at or behind
    /// the commit index holds nothing new and is answered with the commit index, so the leader
    /// moves on. The answer waits for the disk like any acknowledgement (Ready rule 3).
    fn handle_snapshot(&mut self, from: NodeId, snapshot: Snapshot) {
        let (index, term) = (snapshot.metadata.index, snapshot.metadata.term);
        let match_index = if self.restore(snapshot) {
            info!(id = self.id, from, index, term, "installing snapshot");
            self.log.last_index()
        } else {
            debug!(
                id = self.id,
                from,
                index,
                commit = self.log.committed(),
                "snapshot not installed"
            );
            self.log.committed()
        };
        let t = self.term;
        self.send_after_persist(from, t, MessageBody::AppendAccepted { match_index });
    }

    /// Installs `snapshot` if it is ahead of the commit index (etcd's `restore`). Returns whether
    /// it did. If the log already holds the snapshot's last entry (same index and term), the
    /// entries up to it are the snapshot's (Log Matching), so only the commit index moves: the
    /// log after it stays, and the application keeps applying entries one by one.
    ///
    /// The snapshot's configuration (the one as of its index) becomes ours, through the same
    /// path a conf change takes (`Core::set_voters`); the changes after it arrive in the log.
    /// A voter refuses a snapshot whose configuration does not include it (etcd does the same):
    /// it would give up its vote on the word of a configuration that was never its own. A node
    /// that is not a voter of its own configuration (one joining, which starts from the
    /// bootstrap configuration, or one removed) accepts it: it has no vote to lose, and the
    /// leader sends it the snapshot because the leader's configuration includes it, so the
    /// change that adds it follows the snapshot in the log. Without this, a node added after
    /// the leader compacted would be sent a snapshot that predates it after every heartbeat
    /// response, and refuse it every time.
    fn restore(&mut self, snapshot: Snapshot) -> bool {
        let (index, term) = (snapshot.metadata.index, snapshot.metadata.term);
        if index <= self.log.committed() {
            return false;
        }
        if self.promotable() && !snapshot.metadata.conf_state.voters.contains(&self.id) {
            warn!(
                id = self.id,
                index, "snapshot's configuration does not include this voter; ignored"
            );
            return false;
        }
        if self.log.match_term(index, term) {
            self.log.commit_to(index);
            return false;
        }
        self.set_voters(snapshot.metadata.conf_state.voters.clone());
        self.log.restore(snapshot);
        true
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
