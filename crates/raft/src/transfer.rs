//! Leadership transfer (thesis §3.10): the leader hands its role to a chosen follower, for
//! example before it is taken down for maintenance, or to move leadership next to the clients.
//!
//! ```text
//!  leader n1                                   target n2
//!  transfer_leader(2): stop taking proposals
//!  appends until n2's match index = last index ──► n2 acknowledges them
//!  TimeoutNow ───────────────────────────────────► campaigns at once, in term + 1: no waiting for
//!                                                  its timeout, no PreVote; its vote requests
//!                                                  carry `leader_transfer`, so voters grant them
//!                                                  even inside the old leader's lease
//!  VoteRequest (higher term): steps down ◄──────── wins: its log is at least as up to date as
//!                                                  anyone's, since it holds all of n1's
//! ```
//!
//! The leader refuses proposals while a transfer is pending
//! ([`crate::ProposalDropped::TransferInProgress`]): new entries would keep the target behind,
//! and would be appended in a term that is about to end. If the target does not take over within
//! an election timeout (`Config::election_tick` ticks: it is down, cut off, or the `TimeoutNow`
//! was lost), the leader abandons the transfer and takes proposals again. If the target's
//! election fails, the cluster elects someone else as after any failure: the transfer is an
//! optimisation of who leads next, never a condition of safety. Its only safety-relevant part is
//! the forced campaign, an ordinary election with a new term, so Election Safety holds as ever.
//!
//! Reads ([`crate::read_only`]): the forced campaign ignores the voters' lease, which is what
//! `ReadOnlyOption::LeaseBased` reads stand on. So a leader that has sent `TimeoutNow` answers
//! reads only after a quorum round for the rest of its term (`LeaderState::lease_handed_over`; a
//! departure from etcd), and a leader the target deposes drops its pending reads into
//! `Ready::dropped_reads`, like any leader stepping down.
//!
//! The state of a transfer lives in [`LeaderState`], so stepping down (a higher term, a failed
//! CheckQuorum) ends it with the role. Non-goals: transfer to a learner (there are none yet), and
//! forwarding a follower's request to the leader (etcd does; here the caller is told whom to ask,
//! see [`crate::TransferRejected::NotLeader`]).

use tracing::{debug, info, warn};

use crate::error::{Error, TransferRejected};
use crate::message::MessageBody;
use crate::raft::{Core, LeaderState, Raft, RoleState};
use crate::storage::Storage;
use crate::types::{NodeId, Term};

/// A transfer in progress: etcd's `leadTransferee`, with its own clock.
///
/// Departure from etcd, which restarts the leader's `electionElapsed` (the CheckQuorum clock) when
/// a transfer starts and abandons the transfer when that clock runs out: a separate count keeps a
/// repeated `transfer_leader` call from postponing the leader's CheckQuorum round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LeadTransfer {
    /// The node leadership is handed to.
    pub(crate) to: NodeId,
    /// Ticks since the transfer started. Invariant: `elapsed < election_tick` (it is abandoned
    /// when the count reaches the election timeout).
    pub(crate) elapsed: usize,
}

impl<S: Storage> Raft<S> {
    /// Starts handing leadership to `to` (see the [module docs](self)). On the leader, `to` being
    /// the leader itself abandons a pending transfer (as in etcd); asking again for the transfer
    /// already pending changes nothing (its clock keeps running); asking for another target
    /// replaces the pending transfer, with a new clock.
    pub(crate) fn transfer_leader(&mut self, to: NodeId) -> Result<(), Error> {
        let RoleState::Leader(leader) = &mut self.role else {
            let leader = self.core.leader;
            return Err(TransferRejected::NotLeader { leader }.into());
        };
        let id = self.core.id;
        if to == id {
            if let Some(t) = leader.lead_transferee.take() {
                info!(
                    id,
                    to = t.to,
                    "leadership transfer abandoned: already leader"
                );
            }
            return Ok(());
        }
        if !leader.progress.contains_key(&to) {
            return Err(TransferRejected::UnknownPeer(to).into());
        }
        match leader.lead_transferee {
            Some(t) if t.to == to => {
                debug!(id, to, "leadership transfer already in progress");
                return Ok(());
            }
            Some(t) => info!(id, from = t.to, to, "leadership transfer retargeted"),
            None => info!(id, to, term = self.core.term, "leadership transfer started"),
        }
        leader.lead_transferee = Some(LeadTransfer { to, elapsed: 0 });
        // If the target already holds the whole log, it may campaign at once; otherwise the
        // appends that `flush_appends` sends it bring it up to date, and its acknowledgement of
        // the last one sends the `TimeoutNow` (see `step_leader`).
        self.core.maybe_send_timeout_now(leader, to);
        Ok(())
    }

    /// A `TimeoutNow` from the leader (the term rules have run): a follower campaigns at once,
    /// skipping PreVote, with vote requests that voters grant despite a leader's lease. Other
    /// roles ignore it, as in etcd: a candidate is campaigning already, and a leader of this term
    /// could only have received it from a forged or misrouted message.
    pub(crate) fn handle_timeout_now(&mut self, from: NodeId) {
        let core = &self.core;
        if !matches!(self.role, RoleState::Follower) {
            debug!(id = core.id, from, role = %self.role.role(), "TimeoutNow ignored");
            return;
        }
        if !core.promotable() {
            debug!(id = core.id, from, "TimeoutNow ignored: not a voter");
            return;
        }
        if core.term == Term::MAX {
            // Only a forged term gets here; there is no next term to campaign in.
            warn!(id = core.id, "term space exhausted; cannot campaign");
            return;
        }
        info!(
            id = core.id,
            from,
            term = core.term,
            "TimeoutNow: campaigning at once"
        );
        self.campaign_with(false, true);
    }
}

impl<S: Storage> Core<S> {
    /// Sends the transfer's target `TimeoutNow` if `from` is that target and its log matches the
    /// leader's to the last index. Called when a transfer starts and whenever the target
    /// acknowledges entries; a duplicate `TimeoutNow` is harmless (the target, once a candidate
    /// in a higher term, ignores it as stale).
    pub(crate) fn maybe_send_timeout_now(&mut self, leader: &mut LeaderState, from: NodeId) {
        let Some(t) = leader.lead_transferee.filter(|t| t.to == from) else {
            return;
        };
        let caught_up = leader
            .progress
            .get(&t.to)
            .is_some_and(|pr| pr.match_index() == self.log.last_index());
        if caught_up {
            debug!(
                id = self.id,
                to = t.to,
                "target caught up; sending TimeoutNow"
            );
            // The target may now win an election inside this leader's lease: lease reads are
            // no longer safe here (see `LeaderState::lease_handed_over`).
            leader.lease_handed_over = true;
            self.send(t.to, MessageBody::TimeoutNow);
        }
    }

    /// Counts a leader's tick against a pending transfer, abandoning it after an election timeout
    /// (etcd: `abortLeaderTransfer` in `tickHeartbeat`). Proposals are taken again from then on.
    pub(crate) fn tick_transfer(&mut self, leader: &mut LeaderState) {
        let Some(t) = &mut leader.lead_transferee else {
            return;
        };
        t.elapsed += 1;
        if t.elapsed >= self.config.election_tick {
            info!(
                id = self.id,
                to = t.to,
                "leadership transfer abandoned: timed out"
            );
            leader.lead_transferee = None;
        }
    }
}
