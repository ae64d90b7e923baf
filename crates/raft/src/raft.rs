//! The Raft node itself: its state, the term rules every role shares, dispatch to the role's own
//! step function, and the role transitions (Raft §5.1, Figure 4).
//!
//! The role-specific rules live beside this file: [`crate::election`] (timeouts, votes,
//! candidates) and [`crate::replication`] (leaders and followers exchanging the log). This file
//! is the switchboard: `step` applies the term rules, then hands the message to the current
//! role, as etcd's `Step` does.
//!
//! The node is two halves, borrowed separately: [`Core`], what every role has, and [`RoleState`],
//! what only the current role has. That is what lets the one `match` on the role hand a leader's
//! handlers its [`LeaderState`] by type (`self.core.step_leader(leader, m)`), the way toydb's
//! `impl RawNode<Leader>` reads its progress directly, instead of each handler looking the
//! leader's state up again.

use std::collections::BTreeMap;

use bytes::Bytes;
use tracing::{debug, info};

use crate::config::Config;
use crate::error::{Error, ProposalDropped, StorageFailure};
use crate::log::RaftLog;
use crate::message::{Message, MessageBody};
use crate::progress::Progress;
use crate::read_only::{ReadOnly, Reads};
use crate::rng::Rng;
use crate::storage::Storage;
use crate::transfer::LeadTransfer;
use crate::types::{Entry, EntryKind, HardState, Index, NodeId, Role, SoftState, Term};

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
    ///
    /// Invariant: holds the leader's own id (only a voter campaigns, see [`Core::promotable`],
    /// and a leader that applies its own removal steps down at once), and exactly the voters.
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    /// The index of the last conf change this leader appended, or the index of its empty entry
    /// when elected (etcd's `pendingConfIndex`): no new change is accepted until it is applied (see
    /// [`crate::conf_change`]).
    pub(crate) pending_conf_index: Index,
    pub(crate) heartbeat_elapsed: usize,
    /// Bytes of entries appended in this term and not yet committed.
    pub(crate) uncommitted_size: u64,
    /// The leadership transfer in progress, if any (thesis §3.10, [`crate::transfer`]): while it
    /// is set, proposals are refused.
    pub(crate) lead_transferee: Option<LeadTransfer>,
    /// Read requests waiting for this leader's first commit or for a quorum round
    /// ([`crate::read_only`]).
    pub(crate) read_only: ReadOnly,
    /// Whether this leader has sent a `TimeoutNow` in its term ([`crate::transfer`]). From then
    /// on another node may be elected inside its lease (the forced campaign ignores the voters'
    /// lease), so `LeaseBased` reads take the quorum round of `Safe` ones, for the rest of the
    /// term, even if the transfer is abandoned: the target may have won without this leader
    /// hearing of it yet.
    pub(crate) lease_handed_over: bool,
}

impl LeaderState {
    /// The leader's own progress.
    ///
    /// # Panics
    /// If the leader `id` has no progress: the invariant written at [`LeaderState::progress`].
    pub(crate) fn own_progress(&mut self, id: NodeId) -> &mut Progress {
        match self.progress.get_mut(&id) {
            Some(pr) => pr,
            None => panic!("invariant violated: leader {id} has no progress of its own"),
        }
    }

    /// Entries handed to the application as committed no longer count as uncommitted.
    pub(crate) fn reduce_uncommitted_size(&mut self, committed: &[Entry]) {
        let size: u64 = committed.iter().map(|e| e.data.len() as u64).sum();
        self.uncommitted_size = self.uncommitted_size.saturating_sub(size);
    }
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

/// A Raft node: the pure state machine, in two halves that are borrowed separately. [`Core`] is
/// what every role has; [`RoleState`] what only the current role has. A handler of one role is a
/// method of `Core` that receives its role's state as an argument (`step_leader(&mut self,
/// leader: &mut LeaderState, m)`), handed over by the one `match` on the role in [`Raft::step`]
/// or [`Raft::tick`]; only what changes the role (the `become_*` transitions, and the functions
/// that call them) is a method of `Raft`. [`crate::RawNode`] wraps it with the Ready/advance
/// interface.
pub(crate) struct Raft<S: Storage> {
    /// What every role has.
    pub(crate) core: Core<S>,
    /// What only the current role has.
    pub(crate) role: RoleState,
}

/// The role-independent part of a node: identity, the persistent state of Figure 2, the log, the
/// timers and the outboxes.
pub(crate) struct Core<S: Storage> {
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
    /// Ticks since the count was last reset: by a role or term change, a message from the leader,
    /// or a vote granted (followers, candidates); by the last CheckQuorum round (leaders).
    pub(crate) election_elapsed: usize,
    /// The timeout `election_elapsed` runs against, drawn from `[election_tick, 2 * election_tick)`
    /// on every role or term change (each `become_*`), not when the count is reset.
    pub(crate) randomized_election_timeout: usize,
    rng: Rng,
    /// Messages that may be sent at once.
    pub(crate) msgs: Vec<Message>,
    /// Messages that may be sent only once the current Ready is persisted: they acknowledge
    /// entries or votes, and an acknowledgement of something that could still be lost in a crash
    /// would be a lie (Raft Figure 2: "respond to RPCs only after updating stable storage").
    pub(crate) msgs_after_persist: Vec<Message>,
    /// Storage failures met while building messages, for the next Ready.
    pub(crate) storage_failures: Vec<StorageFailure>,
    /// Read answers and dropped reads for the next Ready, and reads forwarded to the leader.
    pub(crate) reads: Reads,
    pub(crate) config: Config,
}

impl<S: Storage> Raft<S> {
    /// A node reading `storage`, starting as a follower in the persisted term.
    pub(crate) fn new(config: Config, storage: S) -> Result<Raft<S>, Error> {
        config.validate()?;
        let state = storage.initial_state()?;
        let (first, last) = (storage.first_index()?, storage.last_index()?);
        let hs = state.hard_state;
        // A commit index below the snapshot is not an error: the snapshot holds only committed
        // entries, and the commit index on disk may be older (written without a sync, see
        // `Ready::must_sync`) than the application's snapshot and compaction.
        if hs.commit > last {
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
        let committed = hs.commit.max(config.applied).max(first - 1);
        let applied = config.applied.max(first - 1).min(committed);
        let log = RaftLog::new(storage, committed, applied)?;
        let mut voters = state.conf_state.voters;
        voters.sort_unstable();
        voters.dedup();
        let mut core = Core {
            id: config.id,
            term: hs.term,
            vote: hs.vote,
            leader: None,
            log,
            voters,
            election_elapsed: 0,
            randomized_election_timeout: config.election_tick,
            rng: Rng::new(config.seed),
            msgs: Vec::new(),
            msgs_after_persist: Vec::new(),
            storage_failures: Vec::new(),
            reads: Reads::default(),
            config,
        };
        core.reset_timeout();
        info!(
            id = core.id,
            term = core.term,
            commit = hs.commit,
            last,
            "raft node starts as follower"
        );
        Ok(Raft {
            core,
            role: RoleState::Follower,
        })
    }

    /// What must be persisted.
    pub(crate) fn hard_state(&self) -> HardState {
        HardState {
            term: self.core.term,
            vote: self.core.vote,
            commit: self.core.log.committed(),
        }
    }

    /// Who leads and what this node is.
    pub(crate) fn soft_state(&self) -> SoftState {
        SoftState {
            leader: self.core.leader,
            role: self.role.role(),
        }
    }

    /// Advances logical time by one tick: an election timeout for followers and candidates, a
    /// heartbeat (and CheckQuorum) timer for leaders.
    pub(crate) fn tick(&mut self) {
        match &mut self.role {
            RoleState::Leader(leader) => {
                let quorum_lost = self.core.tick_heartbeat(leader);
                if quorum_lost {
                    self.become_follower(self.core.term, None);
                }
            }
            _ => self.tick_election(),
        }
    }

    /// Handles a message from another node: first the term rules every role shares, then the
    /// role's own rules.
    pub(crate) fn step(&mut self, m: Message) -> Result<(), Error> {
        if m.to != self.core.id {
            return Err(Error::WrongRecipient {
                to: m.to,
                node: self.core.id,
            });
        }
        if let MessageBody::Propose { entries } = m.body {
            // A proposal stepped into the node by its own application (etcd's local `MsgProp`):
            // the caller is here to be told if it is dropped.
            if m.from == self.core.id {
                return self.propose_entries(entries);
            }
            // A forwarded proposal is not an RPC: terms do not apply. A failure here is not the
            // sender's error to handle (it has moved on), so it is only logged.
            if let Err(e) = self.propose_entries(entries) {
                debug!(
                    id = self.core.id,
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
            ..
        } = m.body
        {
            self.core
                .handle_vote_request(m.from, m.term, pre_vote, last_index, last_term);
            return Ok(());
        }
        if let MessageBody::TimeoutNow = m.body {
            self.handle_timeout_now(m.from);
            return Ok(());
        }
        match &mut self.role {
            RoleState::Follower => self.core.step_follower(m),
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } => self.step_candidate(m),
            RoleState::Leader(leader) => self.core.step_leader(leader, m),
        }
        Ok(())
    }

    /// The term rules (Raft §5.1): a higher term makes this node a follower of it; a lower term
    /// marks a stale message. Returns whether the message should be processed further.
    fn step_term(&mut self, m: &Message) -> bool {
        use MessageBody::*;
        let core = &self.core;
        if m.term > core.term {
            let forced = matches!(
                m.body,
                VoteRequest {
                    leader_transfer: true,
                    ..
                }
            );
            if matches!(m.body, VoteRequest { .. }) && core.in_lease() && !forced {
                // CheckQuorum (thesis §4.2.3): a node that heard from a live leader within the
                // minimum election timeout ignores a disruptive candidate, even of a higher term.
                // Not a candidate the leader itself asked to campaign (`leader_transfer`, thesis
                // §3.10): that election is the leader's wish, not a disruption.
                debug!(
                    id = core.id,
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
                Append { .. } | Heartbeat { .. } | Snapshot { .. } => {
                    self.become_follower(m.term, Some(m.from))
                }
                _ => self.become_follower(m.term, None),
            }
            true
        } else if m.term < core.term {
            // Departure from Figure 2, which says to reply false to a stale AppendEntries or
            // RequestVote: a stale message is mostly ignored, and answered only where an answer
            // is needed for liveness (as etcd does). The sender learns our term anyway from the
            // next message we send it; without PreVote or CheckQuorum, that message comes (our
            // own election's vote request, or our heartbeat if we lead), if the sender is in our
            // configuration.
            match m.body {
                // A leader of an older term would never learn that it is stale if we stayed silent:
                // with CheckQuorum or PreVote, a node with a higher term may not be able to win an
                // election either, and the cluster would stall. Answering with our term makes the
                // old leader step down (etcd does the same).
                //
                // The same holds without either when our own vote requests will not carry our
                // term to the sender: we are not a voter (a node joining, or removed: we never
                // campaign), or the sender is not a voter of our configuration (ours is stale: it
                // predates the changes that made the sender leader). A removed node's campaigns
                // can push such a node's term past the leader's, and the two would never meet
                // (found by the membership property tests, see
                // testdata/regression_membership_stale_member_answers_unknown_leader.txt and
                // testdata/regression_membership_joining_node_answers_stale_leader.txt).
                Append { .. } | Heartbeat { .. } | Snapshot { .. }
                    if core.config.check_quorum
                        || core.config.pre_vote
                        || !core.promotable()
                        || core.voters.binary_search(&m.from).is_err() =>
                {
                    self.core.send(m.from, HeartbeatResponse { context: None });
                }
                // Tell a pre-candidate its probe is stale, so that it learns our term.
                VoteRequest { pre_vote: true, .. } => {
                    let term = core.term;
                    let body = VoteResponse {
                        pre_vote: true,
                        granted: false,
                    };
                    self.core.send_after_persist(m.from, term, body);
                }
                _ => debug!(
                    id = core.id,
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

    /// Proposes application data. Leaders append it; followers forward it to their leader.
    pub(crate) fn propose(&mut self, data: Bytes) -> Result<(), Error> {
        let entry = Entry {
            term: 0,
            index: 0,
            kind: EntryKind::Normal,
            data,
        };
        self.propose_entries(vec![entry])
    }

    pub(crate) fn propose_entries(&mut self, entries: Vec<Entry>) -> Result<(), Error> {
        match (&mut self.role, self.core.leader) {
            (RoleState::Leader(leader), _) => {
                let conf_index = self.core.admit_conf_changes(leader, &entries)?;
                self.core.leader_append(leader, entries)?;
                if let Some(index) = conf_index {
                    leader.pending_conf_index = index;
                }
                Ok(())
            }
            (RoleState::Follower, Some(leader)) if self.core.config.disable_proposal_forwarding => {
                Err(ProposalDropped::ForwardingDisabled { leader }.into())
            }
            (RoleState::Follower, Some(to)) => {
                self.core.send(to, MessageBody::Propose { entries });
                Ok(())
            }
            _ => Err(ProposalDropped::NoLeader.into()),
        }
    }

    // --- What a leader does between messages, for RawNode ---

    /// Whether [`Raft::flush_appends`] would send anything.
    pub(crate) fn has_pending_appends(&self) -> bool {
        match &self.role {
            RoleState::Leader(leader) => self.core.has_pending_appends(leader),
            _ => false,
        }
    }

    /// A leader sends every follower what it is missing (see [`Core::next_append`]).
    pub(crate) fn flush_appends(&mut self) {
        if let RoleState::Leader(leader) = &mut self.role {
            self.core.flush_appends(leader);
        }
    }

    /// The application reports the outcome of a snapshot transfer to `to` (leaders only).
    pub(crate) fn report_snapshot(&mut self, to: NodeId, ok: bool) {
        if let RoleState::Leader(leader) = &mut self.role {
            self.core.report_snapshot(leader, to, ok);
        }
    }

    /// The transport could not reach `to` (leaders only).
    pub(crate) fn report_unreachable(&mut self, to: NodeId) {
        if let RoleState::Leader(leader) = &mut self.role {
            self.core.report_unreachable(leader, to);
        }
    }

    /// Entries handed to the application as committed no longer count towards a leader's
    /// uncommitted size.
    pub(crate) fn reduce_uncommitted_size(&mut self, committed: &[Entry]) {
        if let RoleState::Leader(leader) = &mut self.role {
            leader.reduce_uncommitted_size(committed);
        }
    }

    /// The application has made the log durable up to [`RaftLog::persisted_index`]. A leader now
    /// counts those entries as replicated on itself, which may commit them (a single-node cluster
    /// commits this way).
    pub(crate) fn on_persisted(&mut self) {
        if let RoleState::Leader(leader) = &mut self.role {
            let (id, persisted) = (self.core.id, self.core.log.persisted_index());
            if leader.own_progress(id).maybe_update(persisted) && self.core.maybe_commit(leader) {
                self.core.release_waiting_reads(leader);
            }
        }
    }

    // --- Role transitions (Raft Figure 4) ---
    //
    // Each one draws a new randomized election timeout (`Core::reset_timeout`): the timeout is
    // redrawn on every role or term change, and only then.

    /// Becomes a follower of `term` (adopting it, which clears the vote if it is new).
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        let core = &mut self.core;
        debug_assert!(
            term >= core.term,
            "invariant violated: term {term} < current {}",
            core.term
        );
        self.drop_reads(term, leader);
        let core = &mut self.core;
        if term != core.term {
            core.term = term;
            core.vote = None;
        }
        if !matches!(self.role, RoleState::Follower) || core.leader != leader {
            info!(id = core.id, term, ?leader, "became follower");
        }
        self.role = RoleState::Follower;
        core.leader = leader;
        core.reset_timeout();
    }

    /// Starts a PreVote probe: no new term, no vote cast, nobody disrupted (thesis §9.6).
    pub(crate) fn become_pre_candidate(&mut self) {
        self.drop_reads(self.core.term, None);
        self.role = RoleState::PreCandidate {
            votes: BTreeMap::new(),
        };
        let core = &mut self.core;
        core.leader = None;
        core.reset_timeout();
        info!(id = core.id, term = core.term, "became pre-candidate");
    }

    /// Starts an election: a new term, voting for itself (Raft §5.2).
    pub(crate) fn become_candidate(&mut self) {
        self.drop_reads(self.core.term + 1, None);
        self.role = RoleState::Candidate {
            votes: BTreeMap::new(),
        };
        let core = &mut self.core;
        core.term += 1;
        core.vote = Some(core.id);
        core.leader = None;
        core.reset_timeout();
        info!(id = core.id, term = core.term, "became candidate");
    }

    /// Wins the election: every follower is probed from the end of this log, and the leader
    /// appends an empty entry of its own term so that it can commit — it may only count replicas
    /// of entries from its own term (Raft §5.4.2, and §8 for the empty entry).
    pub(crate) fn become_leader(&mut self) {
        self.drop_reads(self.core.term, Some(self.core.id));
        let core = &mut self.core;
        let next = core.log.last_index() + 1;
        let progress = core
            .voters
            .iter()
            .map(|&id| {
                let mut pr = Progress::new(next, core.config.max_inflight_msgs)
                    .with_max_inflight_bytes(core.config.max_inflight_bytes);
                if id == core.id {
                    // The leader's own log matches itself up to what is durable.
                    pr.maybe_update(core.log.persisted_index());
                    pr.become_replicate();
                }
                (id, pr)
            })
            .collect();
        self.role = RoleState::Leader(LeaderState {
            progress,
            heartbeat_elapsed: 0,
            uncommitted_size: 0,
            // Our log may hold a conf change we cannot tell is applied: accept a new one only
            // once everything up to our empty entry (appended below, at `next`) is applied. etcd
            // stops just before the empty entry; waiting for it too is the thesis's fix (a leader
            // commits an entry of its term before it changes the configuration), for one round.
            pending_conf_index: next,
            lead_transferee: None,
            read_only: ReadOnly::default(),
            lease_handed_over: false,
        });
        core.leader = Some(core.id);
        core.reset_timeout();
        info!(id = core.id, term = core.term, "became leader");
        let empty = Entry {
            term: core.term,
            index: 0,
            kind: EntryKind::Normal,
            data: Bytes::new(),
        };
        core.append_own(vec![empty]);
    }

    /// Checks the invariants written at the fields. Called after every step in debug builds, and
    /// in release builds with the `invariants` feature (the long property runs are release builds:
    /// `cargo test --release --features invariants`). Not under `testkit`: the benchmark, which
    /// gets `testkit` through the dev-dependency, would pay for the checks after every step.
    pub(crate) fn check_invariants(&self) {
        if !cfg!(any(debug_assertions, feature = "invariants")) {
            return;
        }
        let log = &self.core.log;
        let (applied, committed, last) = (log.applied(), log.committed(), log.last_index());
        assert!(
            applied <= committed,
            "invariant violated: applied {applied} > commit {committed}"
        );
        assert!(
            committed <= last,
            "invariant violated: commit {committed} > last index {last}"
        );
        if let RoleState::Leader(l) = &self.role {
            l.read_only.check_invariants();
            assert!(
                l.progress.contains_key(&self.core.id),
                "invariant violated: leader {} has no progress of its own",
                self.core.id
            );
            assert!(
                l.progress.keys().eq(self.core.voters.iter()),
                "invariant violated: leader {} tracks {:?}, voters are {:?}",
                self.core.id,
                l.progress.keys().collect::<Vec<_>>(),
                self.core.voters
            );
            if let Some(t) = &l.lead_transferee {
                assert!(
                    t.to != self.core.id && l.progress.contains_key(&t.to),
                    "invariant violated: leader {} transfers to {}, not another voter",
                    self.core.id,
                    t.to
                );
                assert!(
                    t.elapsed < self.core.config.election_tick,
                    "invariant violated: transfer to {} pending for {} ticks",
                    t.to,
                    t.elapsed
                );
            }
            for (id, pr) in &l.progress {
                assert!(
                    pr.match_index() < pr.next_index(),
                    "invariant violated: peer {id} match {} >= next {}",
                    pr.match_index(),
                    pr.next_index()
                );
            }
        }
    }
}

impl<S: Storage> Core<S> {
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

    /// Restarts the election count and draws a new randomized timeout (Raft §5.2), so that nodes
    /// that timed out together do not stay in step. Called by each `become_*`.
    fn reset_timeout(&mut self) {
        self.election_elapsed = 0;
        let t = self.config.election_tick;
        self.randomized_election_timeout = self.rng.in_range(t, 2 * t);
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
}
