//! Leader election (Raft §5.2, §5.4.1) with the PreVote extension (thesis §9.6) and the leader
//! side of CheckQuorum (thesis §6.2).
//!
//! A follower that hears nothing for its randomized election timeout becomes a candidate: a new
//! term, a vote for itself, and vote requests to everyone. A node grants at most one vote per term,
//! and only to a candidate whose log is at least as up-to-date as its own, which is what makes the
//! winner hold every committed entry (Leader Completeness, §5.4).
//!
//! With PreVote, the follower first asks "would you vote for me in the next term?" without changing
//! anyone's term. A node cut off from the cluster keeps failing that probe, so when it comes back it
//! does not force the healthy cluster into a new term.

use tracing::{debug, warn};

use crate::message::{Message, MessageBody};
use crate::quorum::{VoteResult, majority, vote_result};
use crate::raft::{Core, LeaderState, Raft, RoleState};
use crate::storage::Storage;
use crate::types::{Index, NodeId, Term};

impl<S: Storage> Raft<S> {
    /// A follower's or candidate's tick: start an election once the randomized timeout expires.
    pub(crate) fn tick_election(&mut self) {
        let core = &mut self.core;
        core.election_elapsed += 1;
        if core.promotable() && core.election_elapsed >= core.randomized_election_timeout {
            core.election_elapsed = 0;
            self.hup();
        }
    }

    /// Starts an election (or a PreVote probe, when configured), unless already leader.
    pub(crate) fn hup(&mut self) {
        let core = &self.core;
        if matches!(self.role, RoleState::Leader(_)) {
            debug!(id = core.id, "already leader; ignoring hup");
            return;
        }
        if !core.promotable() {
            debug!(id = core.id, "not a voter; cannot campaign");
            return;
        }
        if core.has_unapplied_conf_change() {
            // etcd's rule: our votes would be counted in a configuration older than a committed
            // one. The application applies it with the next Ready; campaign after that.
            debug!(
                id = core.id,
                "committed conf change not yet applied; cannot campaign"
            );
            return;
        }
        if core.term == Term::MAX {
            // Only a forged message can have brought us here (2^64 elections will not happen);
            // there is no next term to campaign in, and overflowing it would panic.
            warn!(id = core.id, "term space exhausted; cannot campaign");
            return;
        }
        self.campaign(core.config.pre_vote);
    }

    /// Asks every voter for its vote: for real (Raft §5.2), or as a PreVote probe for the next term.
    pub(crate) fn campaign(&mut self, pre_vote: bool) {
        self.campaign_with(pre_vote, false);
    }

    /// [`Raft::campaign`], and with `leader_transfer` the election a leader asked for by
    /// `TimeoutNow` (thesis §3.10, [`crate::transfer`]): its vote requests say so, which lets
    /// voters grant them inside a leader's lease.
    pub(crate) fn campaign_with(&mut self, pre_vote: bool, leader_transfer: bool) {
        let term = if pre_vote {
            self.become_pre_candidate();
            self.core.term + 1
        } else {
            self.become_candidate();
            self.core.term
        };
        let id = self.core.id;
        if pre_vote {
            // A PreVote changes nothing on disk, so the node's own probe counts at once.
            if self.poll(true, id, true) == Some(VoteResult::Won) {
                self.election_won(true);
                return;
            }
        } else {
            // Departure from Figure 2, which has the candidate vote for itself as it starts the
            // election: the candidate's own vote counts only once its new term and vote are
            // durable, like any other vote. It is a vote response to itself, delivered by
            // `RawNode::advance` (as in etcd). Counting it earlier would let a node act as leader
            // on a vote that a crash could erase, after which it could vote for someone else in
            // the same term.
            let body = MessageBody::VoteResponse {
                pre_vote: false,
                granted: true,
            };
            self.core.send_after_persist(id, term, body);
        }
        let core = &mut self.core;
        let (last_index, last_term) = (core.log.last_index(), core.log.last_term());
        for &to in core.voters.iter().filter(|&&v| v != id) {
            let body = MessageBody::VoteRequest {
                pre_vote,
                last_index,
                last_term,
                leader_transfer,
            };
            core.msgs.push(Message {
                from: id,
                to,
                term,
                body,
            });
        }
    }

    fn election_won(&mut self, pre_vote: bool) {
        if pre_vote {
            self.campaign(false);
        } else {
            self.become_leader();
        }
    }

    /// Records a vote for the current campaign and returns where it stands, or `None` if the
    /// vote answers another kind of campaign than ours (a PreVote probe's, once we campaign for
    /// real, or the reverse): a stale answer, not counted.
    fn poll(&mut self, pre_vote: bool, from: NodeId, granted: bool) -> Option<VoteResult> {
        let votes = match &mut self.role {
            RoleState::PreCandidate { votes } if pre_vote => votes,
            RoleState::Candidate { votes } if !pre_vote => votes,
            _ => return None,
        };
        votes.entry(from).or_insert(granted);
        Some(vote_result(&self.core.voters, votes))
    }

    /// A candidate's or pre-candidate's rules: count votes; step down when a leader of this term
    /// shows up (Raft §5.2: "if AppendEntries RPC received from new leader: convert to follower").
    pub(crate) fn step_candidate(&mut self, m: Message) {
        match m.body {
            MessageBody::Append { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::Snapshot { .. } => {
                self.become_follower(m.term, Some(m.from));
                self.core.step_follower(m);
            }
            MessageBody::VoteResponse { pre_vote, granted } => {
                // A grant for a PreVote probe must be for the term we probe for; one left over
                // from an earlier probe would be counted for the wrong candidacy.
                if pre_vote && granted && m.term != self.core.term + 1 {
                    return;
                }
                match self.poll(pre_vote, m.from, granted) {
                    Some(VoteResult::Won) => self.election_won(pre_vote),
                    Some(VoteResult::Lost) => self.become_follower(self.core.term, None),
                    Some(VoteResult::Pending) => {}
                    None => debug!(
                        id = self.core.id,
                        from = m.from,
                        pre_vote,
                        "candidate ignores a vote for another kind of campaign"
                    ),
                }
            }
            _ => debug!(
                id = self.core.id,
                from = m.from,
                "candidate ignores {}",
                m.body.name()
            ),
        }
    }
}

impl<S: Storage> Core<S> {
    /// RequestVote receiver rules (Raft Figure 2): grant if we have not voted for someone else in
    /// this term (nor follow a leader of it), and the candidate's log is at least as up-to-date as
    /// ours (§5.4.1). A PreVote probe for a later term is answered as if that term had begun,
    /// without recording anything.
    pub(crate) fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        pre_vote: bool,
        last_index: Index,
        last_term: Term,
    ) {
        // We may vote if this repeats a vote we already cast (the request was duplicated)...
        let can_vote = self.vote == Some(from)
            // ...or we have not voted and know no leader of this term. Departure from Figure 2,
            // which looks at `votedFor` only: a node that knows this term's leader refuses votes,
            // as etcd does (it can know the leader without having voted, by adopting the term
            // from an append). The term's election is decided, so no other candidate can win it
            // (Election Safety); a grant would only restart our election count for a loser.
            // Withholding a vote is always safe.
            || (self.vote.is_none() && self.leader.is_none())
            // ...or this is a PreVote for a later term, which binds us to nothing.
            || (pre_vote && term > self.term);
        let up_to_date = self.log.is_up_to_date(last_index, last_term);
        if can_vote && up_to_date {
            debug!(id = self.id, from, term, pre_vote, "vote granted");
            // The grant carries the candidate's term so that it counts (for PreVote, the term it
            // probes for, which we have not adopted).
            self.send_after_persist(
                from,
                term,
                MessageBody::VoteResponse {
                    pre_vote,
                    granted: true,
                },
            );
            if !pre_vote {
                self.vote = Some(from);
                // The count restarts; the randomized timeout is not redrawn (see `reset_timeout`).
                self.election_elapsed = 0;
            }
        } else {
            debug!(
                id = self.id,
                from, term, pre_vote, can_vote, up_to_date, "vote rejected"
            );
            let body = MessageBody::VoteResponse {
                pre_vote,
                granted: false,
            };
            self.send_after_persist(from, self.term, body);
        }
    }

    /// CheckQuorum (thesis §6.2): whether a quorum of voters, this leader included, has been heard
    /// from since the last check. Clears the marks for the next round.
    pub(crate) fn quorum_active(&self, leader: &mut LeaderState) -> bool {
        let mut active = 0;
        for (&peer, pr) in leader.progress.iter_mut() {
            let heard = pr.take_recent_active();
            if peer == self.id || heard {
                active += 1;
            }
        }
        active >= majority(self.voters.len())
    }
}
