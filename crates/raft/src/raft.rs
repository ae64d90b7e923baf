//! The Raft node itself: its state, the term rules every role shares, dispatch to the role's own
//! step function, and the role transitions (Raft §5.1, Figure 4).
//!
//! The role-specific rules live beside this file: [`crate::election`] (timeouts, votes,
//! candidates) and [`crate::replication`] (leaders and followers exchanging the log). This file
//! is the switchboard: `step` applies the term rules, then hands the message to the current
//! role, as etcd's `Step` does.

use std::collections::BTreeMap;

use bytes::Bytes;
use tracing::{debug, info};

use crate::config::Config;
use crate::error::{Error, ProposalDropped};
use crate::log::RaftLog;
use crate::message::{Message, MessageBody};
use crate::progress::Progress;
use crate::rng::Rng;
use crate::storage::Storage;
use crate::types::{Entry, EntryKind, HardState, NodeId, Role, SoftState, Term};

/// The state only one role has. Keeping it in the variant means it cannot outlive the role: a
/// follower has no progress map, a leader no vote tally.
pub(crate) enum RoleState {
    Follower,
    /// Votes received in a PreVote probe, granted or not.
    PreCandidate {
        votes: BTreeMap<NodeId, bool>,
    },
    /// Votes received in this term's election.
    Candidate {
        votes: BTreeMap<NodeId, bool>,
    },
    Leader(LeaderState),
}

/// What a leader tracks (Raft Figure 2, "Volatile state on leaders").
pub(crate) struct LeaderState {
    /// Every voter's progress, this leader's own included (its `match_index` is what it has
    /// persisted, so the leader counts itself towards a quorum only for durable entries).
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) heartbeat_elapsed: usize,
    /// Bytes of entries appended in this term and not yet committed.
    pub(crate) uncommitted_size: u64,
}

impl RoleState {
    pub(crate) fn role(&self) -> Role {
        match self {
            RoleState::Follower => Role::Follower,
            RoleState::PreCandidate { .. } => Role::PreCandidate,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }
}

/// A Raft node: the pure state machine. [`crate::RawNode`] wraps it with the Ready/advance
/// interface; tests reach in through the testkit.
pub struct Raft<S: Storage> {
    pub(crate) id: NodeId,
    /// Figure 2 `currentTerm`. Invariant: never decreases.
    pub(crate) term: Term,
    /// Figure 2 `votedFor`, for `term`.
    pub(crate) vote: Option<NodeId>,
    /// The leader of `term` this node knows of.
    pub(crate) leader: Option<NodeId>,
    pub(crate) log: RaftLog<S>,
    /// The voters, sorted.
    pub(crate) voters: Vec<NodeId>,
    pub(crate) role: RoleState,
    /// Ticks since the last election timeout reset (followers, candidates) or the last
    /// CheckQuorum round (leaders).
    pub(crate) election_elapsed: usize,
    /// This round's timeout, drawn from `[election_tick, 2 * election_tick)`.
    pub(crate) randomized_election_timeout: usize,
    rng: Rng,
    /// Messages that may be sent at once.
    pub(crate) msgs: Vec<Message>,
    /// Messages that may be sent only once the current Ready is persisted: they acknowledge
    /// entries or votes, and an acknowledgement of something that could still be lost in a crash
    /// would be a lie (Raft Figure 2: "respond to RPCs only after updating stable storage").
    pub(crate) msgs_after_persist: Vec<Message>,
    pub(crate) config: Config,
}

impl<S: Storage> Raft<S> {
    /// A node reading `storage`, starting as a follower in the persisted term.
    pub fn new(config: Config, storage: S) -> Result<Raft<S>, Error> {
        config.validate()?;
        let state = storage.initial_state()?;
        let (first, last) = (storage.first_index()?, storage.last_index()?);
        let hs = state.hard_state;
        if hs.commit > last || hs.commit + 1 < first {
            return Err(Error::CommitOutOfRange {
                commit: hs.commit,
                first,
                last,
            });
        }
        if config.applied > last {
            return Err(Error::AppliedOutOfRange {
                applied: config.applied,
                last,
            });
        }
        // Whatever the application applied was committed, even if the commit index on disk is
        // older (it is written without a sync, see `Ready::must_sync`): never hand it out again.
        let committed = hs.commit.max(config.applied);
        let applied = config.applied.max(first - 1).min(committed);
        let log = RaftLog::new(storage, committed, applied)?;
        let mut voters = state.conf_state.voters;
        voters.sort_unstable();
        voters.dedup();
        let mut raft = Raft {
            id: config.id,
            term: hs.term,
            vote: hs.vote,
            leader: None,
            log,
            voters,
            role: RoleState::Follower,
            election_elapsed: 0,
            randomized_election_timeout: config.election_tick,
            rng: Rng::new(config.seed),
            msgs: Vec::new(),
            msgs_after_persist: Vec::new(),
            config,
        };
        raft.reset_timeout();
        info!(
            id = raft.id,
            term = raft.term,
            commit = hs.commit,
            last,
            "raft node starts as follower"
        );
        Ok(raft)
    }

    /// What must be persisted.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed(),
        }
    }

    /// Who leads and what this node is.
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            leader: self.leader,
            role: self.role.role(),
        }
    }

    /// Advances logical time by one tick: an election timeout for followers and candidates, a
    /// heartbeat (and CheckQuorum) timer for leaders.
    pub fn tick(&mut self) {
        match self.role {
            RoleState::Leader(_) => self.tick_heartbeat(),
            _ => self.tick_election(),
        }
    }

    /// Handles a message from another node: first the term rules every role shares, then the
    /// role's own rules.
    pub fn step(&mut self, m: Message) -> Result<(), Error> {
        if m.to != self.id {
            return Err(Error::WrongRecipient {
                to: m.to,
                node: self.id,
            });
        }
        if let MessageBody::Propose { entries } = m.body {
            // A forwarded proposal is not an RPC: terms do not apply. A failure here is not the
            // sender's error to handle (it has moved on), so it is only logged.
            if let Err(e) = self.propose_entries(entries) {
                debug!(
                    id = self.id,
                    from = m.from,
                    "forwarded proposal dropped: {e}"
                );
            }
            return Ok(());
        }
        if !self.step_term(&m) {
            return Ok(());
        }
        if let MessageBody::VoteRequest {
            pre_vote,
            last_index,
            last_term,
        } = m.body
        {
            self.handle_vote_request(m.from, m.term, pre_vote, last_index, last_term);
            return Ok(());
        }
        match self.role {
            RoleState::Follower => self.step_follower(m),
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } => self.step_candidate(m),
            RoleState::Leader(_) => self.step_leader(m),
        }
        Ok(())
    }

    /// The term rules (Raft §5.1): a higher term makes this node a follower of it; a lower term
    /// marks a stale message. Returns whether the message should be processed further.
    fn step_term(&mut self, m: &Message) -> bool {
        use MessageBody::*;
        if m.term > self.term {
            if matches!(m.body, VoteRequest { .. }) && self.in_lease() {
                // CheckQuorum (thesis §4.2.3): a node that heard from a live leader within the
                // minimum election timeout ignores a disruptive candidate, even of a higher term.
                debug!(
                    id = self.id,
                    from = m.from,
                    term = m.term,
                    "vote request ignored: leader lease"
                );
                return false;
            }
            match m.body {
                // A PreVote probe, and a grant of one, carry the term the candidate *would* use;
                // adopting it would be exactly the disruption PreVote exists to avoid.
                VoteRequest { pre_vote: true, .. }
                | VoteResponse {
                    pre_vote: true,
                    granted: true,
                } => {}
                Append { .. } | Heartbeat { .. } => self.become_follower(m.term, Some(m.from)),
                _ => self.become_follower(m.term, None),
            }
            true
        } else if m.term < self.term {
            match m.body {
                // A leader of an older term would never learn that it is stale if we stayed silent:
                // with CheckQuorum or PreVote, a node with a higher term may not be able to win an
                // election either, and the cluster would stall. Answering with our term makes the
                // old leader step down (etcd does the same).
                Append { .. } | Heartbeat { .. }
                    if self.config.check_quorum || self.config.pre_vote =>
                {
                    self.send(m.from, HeartbeatResponse);
                }
                // Tell a pre-candidate its probe is stale, so that it learns our term.
                VoteRequest { pre_vote: true, .. } => {
                    self.send_after_persist(
                        m.from,
                        self.term,
                        VoteResponse {
                            pre_vote: true,
                            granted: false,
                        },
                    );
                }
                _ => debug!(
                    id = self.id,
                    from = m.from,
                    term = m.term,
                    "stale {} ignored",
                    m.body.name()
                ),
            }
            false
        } else {
            true
        }
    }

    /// Whether this node has heard from a leader within the minimum election timeout.
    pub(crate) fn in_lease(&self) -> bool {
        self.config.check_quorum
            && self.leader.is_some()
            && self.election_elapsed < self.config.election_tick
    }

    /// Whether this node may campaign: only voters can become leader.
    pub(crate) fn promotable(&self) -> bool {
        self.voters.binary_search(&self.id).is_ok()
    }

    /// Proposes application data. Leaders append it; followers forward it to their leader.
    pub fn propose(&mut self, data: Bytes) -> Result<(), Error> {
        let entry = Entry {
            term: 0,
            index: 0,
            kind: EntryKind::Normal,
            data,
        };
        self.propose_entries(vec![entry])
    }

    pub(crate) fn propose_entries(&mut self, entries: Vec<Entry>) -> Result<(), Error> {
        match (&self.role, self.leader) {
            (RoleState::Leader(_), _) => self.leader_append(entries),
            (RoleState::Follower, Some(leader)) => {
                self.send(leader, MessageBody::Propose { entries });
                Ok(())
            }
            _ => Err(ProposalDropped::NoLeader.into()),
        }
    }

    // --- Role transitions (Raft Figure 4) ---

    /// Becomes a follower of `term` (adopting it, which clears the vote if it is new).
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        debug_assert!(
            term >= self.term,
            "invariant violated: term {term} < current {}",
            self.term
        );
        if term != self.term {
            self.term = term;
            self.vote = None;
        }
        if !matches!(self.role, RoleState::Follower) || self.leader != leader {
            info!(id = self.id, term, ?leader, "became follower");
        }
        self.role = RoleState::Follower;
        self.leader = leader;
        self.reset_timeout();
    }

    /// Starts a PreVote probe: no new term, no vote cast, nobody disrupted (thesis §9.6).
    pub(crate) fn become_pre_candidate(&mut self) {
        self.role = RoleState::PreCandidate {
            votes: BTreeMap::new(),
        };
        self.leader = None;
        self.reset_timeout();
        info!(id = self.id, term = self.term, "became pre-candidate");
    }

    /// Starts an election: a new term, voting for itself (Raft §5.2).
    pub(crate) fn become_candidate(&mut self) {
        self.term += 1;
        self.vote = Some(self.id);
        self.role = RoleState::Candidate {
            votes: BTreeMap::new(),
        };
        self.leader = None;
        self.reset_timeout();
        info!(id = self.id, term = self.term, "became candidate");
    }

    /// Wins the election: every follower is probed from the end of this log, and the leader
    /// appends an empty entry of its own term so that it can commit — it may only count replicas
    /// of entries from its own term (Raft §5.4.2, and §8 for the empty entry).
    pub(crate) fn become_leader(&mut self) {
        let next = self.log.last_index() + 1;
        let max_inflight = self.config.max_inflight_msgs;
        let progress = self
            .voters
            .iter()
            .map(|&id| (id, Progress::new(next, max_inflight)))
            .collect();
        self.role = RoleState::Leader(LeaderState {
            progress,
            heartbeat_elapsed: 0,
            uncommitted_size: 0,
        });
        self.leader = Some(self.id);
        self.reset_timeout();
        let persisted = self.log.persisted_index();
        if let Some(own) = self.progress_mut(self.id) {
            own.maybe_update(persisted);
            own.become_replicate();
        }
        info!(id = self.id, term = self.term, "became leader");
        let empty = Entry {
            term: self.term,
            index: 0,
            kind: EntryKind::Normal,
            data: Bytes::new(),
        };
        self.append_own(vec![empty]);
    }

    fn reset_timeout(&mut self) {
        self.election_elapsed = 0;
        let t = self.config.election_tick;
        self.randomized_election_timeout = self.rng.in_range(t, 2 * t);
    }

    // --- Helpers shared by the roles ---

    pub(crate) fn leader_state(&mut self) -> Option<&mut LeaderState> {
        match &mut self.role {
            RoleState::Leader(l) => Some(l),
            _ => None,
        }
    }

    pub(crate) fn progress_mut(&mut self, id: NodeId) -> Option<&mut Progress> {
        self.leader_state()?.progress.get_mut(&id)
    }

    /// Queues a message to send at once, in this node's term.
    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.msgs.push(Message {
            from: self.id,
            to,
            term: self.term,
            body,
        });
    }

    /// Queues a message to send once the current Ready is durable.
    pub(crate) fn send_after_persist(&mut self, to: NodeId, term: Term, body: MessageBody) {
        self.msgs_after_persist.push(Message {
            from: self.id,
            to,
            term,
            body,
        });
    }

    /// The application has made the log durable up to [`RaftLog::persisted_index`]. A leader now
    /// counts those entries as replicated on itself, which may commit them (a single-node cluster
    /// commits this way).
    pub(crate) fn on_persisted(&mut self) {
        let persisted = self.log.persisted_index();
        let id = self.id;
        if self
            .progress_mut(id)
            .is_some_and(|own| own.maybe_update(persisted))
        {
            self.maybe_commit();
        }
    }

    /// Checks the invariants written at the fields. Called after every step in debug builds, and
    /// in every build with the `testkit` feature (the long property runs are release builds).
    pub(crate) fn check_invariants(&self) {
        if !cfg!(any(debug_assertions, feature = "testkit")) {
            return;
        }
        let (applied, committed, last) = (
            self.log.applied(),
            self.log.committed(),
            self.log.last_index(),
        );
        assert!(
            applied <= committed,
            "invariant violated: applied {applied} > commit {committed}"
        );
        assert!(
            committed <= last,
            "invariant violated: commit {committed} > last index {last}"
        );
        if let RoleState::Leader(l) = &self.role {
            for (id, pr) in &l.progress {
                assert!(
                    pr.match_index < pr.next_index,
                    "invariant violated: peer {id} match {} >= next {}",
                    pr.match_index,
                    pr.next_index
                );
            }
        }
    }
}
