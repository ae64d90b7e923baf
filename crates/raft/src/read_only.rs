//! Linearizable reads without writing to the log: ReadIndex and lease reads (thesis §6.4), as
//! etcd's `read_only.go` does them.
//!
//! A read served from a node's state machine is linearizable only if that state machine has
//! applied every write acknowledged before the read began. Proposing the read through the log
//! would guarantee it, at the price of a disk write per read. ReadIndex gets the same guarantee
//! with one round of heartbeats:
//!
//! 1. The leader notes its commit index as the *read index*. It must first have committed an
//!    entry of its own term: until then its commit index may lag behind entries an earlier leader
//!    committed (thesis §6.4, step 1; Raft §8's empty entry is what makes this quick). Requests
//!    that arrive before that wait (in `ReadOnly::waiting`).
//! 2. It confirms that it is still the leader: a quorum must acknowledge a heartbeat sent *after*
//!    the request arrived. The request's context rides on the heartbeat and comes back on the
//!    response. A leader deposed by a newer one cannot gather that quorum, since the newer
//!    leader's voters have a higher term and answer a stale heartbeat only with their term.
//! 3. The read index is then handed to the application as a [`ReadState`] (or sent back to the
//!    follower that asked). The application serves the read once it has applied up to it.
//!
//! Requests that arrive before one round go out share that round: the heartbeat carries the
//! context of the newest, and a quorum for it releases every request queued before it (the
//! leader's commit index only grows, so each earlier request's index is no larger).
//!
//! With [`ReadOnlyOption::LeaseBased`] the leader skips step 2 and trusts its lease: with
//! CheckQuorum, followers that heard from it within an election timeout refuse to vote for
//! anyone else, and it steps down when it has not heard from a quorum for one. That holds only if
//! every node's clock runs at about the same rate and messages are not delayed by more than the
//! margin; see [`ReadOnlyOption::LeaseBased`].
//!
//! Non-goals: a deadline for a read. A read whose request or answer is lost in the network is
//! neither answered nor reported dropped while the node keeps its leader; the application times it
//! out, as with etcd.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use tracing::debug;

use crate::error::Error;
use crate::message::MessageBody;
use crate::quorum::majority;
use crate::raft::{Core, LeaderState, Raft, RoleState};
use crate::storage::Storage;
use crate::types::{Index, NodeId, Term};

/// How a leader makes sure it is still the leader before it answers a read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadOnlyOption {
    /// A quorum acknowledges a heartbeat sent after the request (thesis §6.4). Costs one round
    /// trip per batch of reads, assumes nothing about clocks.
    #[default]
    Safe,
    /// The leader answers at once, trusting its lease (thesis §6.4.1). It needs
    /// [`crate::Config::check_quorum`] (which [`crate::Config::validate`] enforces): without it
    /// followers would vote for a new leader at any time and a leader cut off in a minority
    /// would never step down, answering reads from a stale state forever. Even with it, the
    /// lease assumes bounded clock drift: a leader whose clock runs slow (or that was paused, by
    /// a long garbage collection, say) may believe itself leader after the others have elected
    /// a new one, and return a stale read. Like etcd's, this lease is not measured from when a
    /// heartbeat was sent but follows CheckQuorum, which steps a cut-off leader down up to two
    /// election timeouts after it lost its quorum. A leadership transfer's forced campaign
    /// ignores the followers' lease, so a leader that has sent `TimeoutNow` answers its reads
    /// after a quorum round, as in `Safe`, for the rest of its term (a departure from etcd,
    /// which keeps answering from the lease). Use it only where that window is acceptable.
    LeaseBased,
}

/// A read the node may now serve: once the application has applied the log up to `index`, its
/// state machine reflects every write acknowledged before the read was requested, and the read
/// identified by `context` may be answered from it. Serving it before `index` is applied could
/// return a stale value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadState {
    /// The read index: the leader's commit index when the request reached it.
    pub index: Index,
    /// The context the application passed to [`crate::RawNode::read_index`].
    pub context: Bytes,
}

/// A read request the leader holds: who asked (itself or a follower) and the context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReadRequest {
    pub(crate) from: NodeId,
    pub(crate) context: Bytes,
}

/// A request in a quorum round: its read index and who acknowledged a heartbeat carrying its
/// context (or a later one's).
#[derive(Debug)]
struct ReadIndexStatus {
    request: ReadRequest,
    index: Index,
    acks: BTreeSet<NodeId>,
}

/// A leader's reads in progress (etcd's `readOnly`). Part of the leader's role state, so it
/// cannot outlive the leadership; what it held when the leader stepped down is reported by
/// [`ReadOnly::drain`].
#[derive(Debug, Default)]
pub(crate) struct ReadOnly {
    /// Requests that arrived before this leader committed an entry of its term (step 1).
    pub(crate) waiting: Vec<ReadRequest>,
    /// Requests in a quorum round, by context.
    pending: BTreeMap<Bytes, ReadIndexStatus>,
    /// The contexts of `pending`, oldest first.
    ///
    /// Invariant: holds exactly the keys of `pending`.
    queue: VecDeque<Bytes>,
    /// Whether a request arrived since the last heartbeat went out: a round must be started.
    ///
    /// Invariant: `unsent` implies `queue` is not empty.
    pub(crate) unsent: bool,
}

impl ReadOnly {
    /// Queues `request` for a quorum round at read index `index`. A context already pending is
    /// ignored (as in etcd): it is answered once, when its first request is.
    pub(crate) fn add_request(&mut self, index: Index, request: ReadRequest) {
        if self.pending.contains_key(&request.context) {
            return;
        }
        self.queue.push_back(request.context.clone());
        self.pending.insert(
            request.context.clone(),
            ReadIndexStatus {
                request,
                index,
                acks: BTreeSet::new(),
            },
        );
        self.unsent = true;
    }

    /// The context a heartbeat carries: the newest pending request's. An acknowledgement of it
    /// confirms every request queued before it too.
    pub(crate) fn last_pending_context(&self) -> Option<Bytes> {
        self.queue.back().cloned()
    }

    /// Records that `from` acknowledged a heartbeat carrying `context`, and returns how many
    /// have acknowledged it, or `None` for a context not pending (answered already, or forged).
    pub(crate) fn recv_ack(&mut self, from: NodeId, context: &[u8]) -> Option<usize> {
        let status = self.pending.get_mut(context)?;
        status.acks.insert(from);
        Some(status.acks.len())
    }

    /// A quorum acknowledged `context`: removes it and every request queued before it, and
    /// returns them with their read indexes, oldest first.
    pub(crate) fn advance(&mut self, context: &[u8]) -> Vec<(ReadRequest, Index)> {
        let Some(pos) = self.queue.iter().position(|c| c.as_ref() == context) else {
            return Vec::new();
        };
        let mut done = Vec::with_capacity(pos + 1);
        for c in self.queue.drain(..=pos) {
            if let Some(s) = self.pending.remove(&c) {
                done.push((s.request, s.index));
            }
        }
        if self.queue.is_empty() {
            self.unsent = false;
        }
        done
    }

    /// Checks the invariants written at the fields (called by `Raft::check_invariants`).
    pub(crate) fn check_invariants(&self) {
        assert!(
            !self.unsent || !self.queue.is_empty(),
            "invariant violated: a read round to start with no read pending"
        );
        assert_eq!(
            self.queue.len(),
            self.pending.len(),
            "invariant violated: the read queue and the pending reads differ"
        );
    }

    /// Everything still held, for a leader stepping down: none of it will be answered.
    pub(crate) fn drain(&mut self) -> Vec<ReadRequest> {
        let mut all = std::mem::take(&mut self.waiting);
        for c in self.queue.drain(..) {
            if let Some(s) = self.pending.remove(&c) {
                all.push(s.request);
            }
        }
        self.unsent = false;
        all
    }
}

/// What every role keeps about reads: the answers for the application, the reads it will never
/// get, and (on a follower) the reads forwarded to the leader and not yet answered.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    /// Answers to hand out in the next Ready.
    pub(crate) read_states: Vec<ReadState>,
    /// Contexts of this node's reads that will never be answered, for the next Ready.
    pub(crate) dropped: Vec<Bytes>,
    /// Contexts forwarded to `forwarded_to` (the leader of a term) and not yet answered. Only
    /// that leader in that term can answer them, so they are dropped when either changes.
    pub(crate) forwarded: Vec<Bytes>,
    /// The (term, leader) the forwarded reads went to.
    pub(crate) forwarded_to: Option<(Term, NodeId)>,
}

impl<S: Storage> Raft<S> {
    /// The application asks to read (see [`crate::RawNode::read_index`]): a leader starts the
    /// ReadIndex steps itself, a follower forwards the request to its leader, and a node that
    /// knows no leader refuses it.
    pub(crate) fn read_index(&mut self, context: Bytes) -> Result<(), Error> {
        let id = self.core.id;
        match (&mut self.role, self.core.leader) {
            (RoleState::Leader(leader), _) => {
                self.core.handle_read_index(leader, id, context);
                Ok(())
            }
            (RoleState::Follower, Some(to)) => {
                let core = &mut self.core;
                let key = (core.term, to);
                if core.reads.forwarded_to != Some(key) {
                    // Reads forwarded to an earlier leader cannot be answered any more (a new
                    // leader always comes with a new term, which `drop_reads` handles; this only
                    // keeps the list tied to one leader by construction).
                    let stale = std::mem::take(&mut core.reads.forwarded);
                    core.reads.dropped.extend(stale);
                    core.reads.forwarded_to = Some(key);
                }
                core.reads.forwarded.push(context.clone());
                core.send(to, MessageBody::ReadIndex { context });
                Ok(())
            }
            _ => Err(Error::ReadIndexNoLeader),
        }
    }

    /// Whether a leader has read requests no heartbeat has carried yet.
    pub(crate) fn has_unsent_reads(&self) -> bool {
        matches!(&self.role, RoleState::Leader(l) if l.read_only.unsent)
    }

    /// Starts the quorum round for requests that arrived since the last heartbeat: one heartbeat
    /// to every follower, carrying the newest request's context, for all of them at once.
    pub(crate) fn flush_read_index(&mut self) {
        if let RoleState::Leader(leader) = &mut self.role
            && leader.read_only.unsent
        {
            leader.read_only.unsent = false;
            self.core.broadcast_heartbeat(leader);
        }
    }

    /// Called by every role transition, before it, with the (term, leader) the node moves to.
    /// A leader stepping down reports its own pending reads as dropped (a follower's reads it
    /// held are forgotten: that follower drops them itself when it learns of the change, below).
    /// Reads this node forwarded are dropped when their leader or term is no longer the one they
    /// went to: only that leader, in that term, could answer them.
    pub(crate) fn drop_reads(&mut self, term: Term, leader: Option<NodeId>) {
        let core = &mut self.core;
        if let RoleState::Leader(l) = &mut self.role {
            let own = l
                .read_only
                .drain()
                .into_iter()
                .filter(|r| r.from == core.id);
            core.reads.dropped.extend(own.map(|r| r.context));
        }
        let reads = &mut core.reads;
        if let Some((t, l)) = reads.forwarded_to
            && (t, Some(l)) != (term, leader)
        {
            let stale = std::mem::take(&mut reads.forwarded);
            reads.dropped.extend(stale);
            reads.forwarded_to = None;
        }
    }
}

impl<S: Storage> Core<S> {
    /// Whether the leader has committed an entry of its own term: only then is its commit index
    /// at least every index committed by earlier leaders (thesis §6.4, step 1).
    fn committed_entry_in_current_term(&self) -> bool {
        self.log.term(self.log.committed()) == Ok(self.term)
    }

    /// A leader takes a read request from `from` (itself or a follower): it waits for the
    /// leader's first commit, then is answered at once (lease) or queued for a quorum round
    /// (safe), in which the leader acknowledges itself.
    pub(crate) fn handle_read_index(
        &mut self,
        leader: &mut LeaderState,
        from: NodeId,
        context: Bytes,
    ) {
        let request = ReadRequest { from, context };
        if !self.committed_entry_in_current_term() {
            leader.read_only.waiting.push(request);
            return;
        }
        let index = self.log.committed();
        match self.config.read_only_option {
            // A leader that has sent `TimeoutNow` has handed its lease over (thesis §3.10: the
            // target's election ignores the voters' lease), so it confirms by a round instead.
            ReadOnlyOption::LeaseBased if !leader.lease_handed_over => {
                self.respond_to_read(request, index)
            }
            ReadOnlyOption::LeaseBased | ReadOnlyOption::Safe => {
                let context = request.context.clone();
                leader.read_only.add_request(index, request);
                self.read_index_ack(leader, self.id, &context);
            }
        }
    }

    /// The leader's first commit in its term: the requests that waited for it go ahead.
    pub(crate) fn release_waiting_reads(&mut self, leader: &mut LeaderState) {
        for r in std::mem::take(&mut leader.read_only.waiting) {
            self.handle_read_index(leader, r.from, r.context);
        }
    }

    /// `from` acknowledged a heartbeat carrying `context`. With a quorum of voters (the leader
    /// included), the request and every one queued before it are answered.
    pub(crate) fn read_index_ack(
        &mut self,
        leader: &mut LeaderState,
        from: NodeId,
        context: &[u8],
    ) {
        let Some(acks) = leader.read_only.recv_ack(from, context) else {
            return;
        };
        if acks < majority(self.voters.len()) {
            return;
        }
        for (request, index) in leader.read_only.advance(context) {
            self.respond_to_read(request, index);
        }
    }

    /// Hands a read index to the application, or sends it to the follower that asked.
    fn respond_to_read(&mut self, request: ReadRequest, index: Index) {
        let ReadRequest { from, context } = request;
        if from == self.id {
            self.reads.read_states.push(ReadState { index, context });
        } else {
            self.send(from, MessageBody::ReadIndexResponse { index, context });
        }
    }

    /// A follower gets the answer to a read it forwarded. An answer to nothing it is waiting
    /// for (a duplicate, or a forged message) is ignored.
    pub(crate) fn handle_read_index_response(
        &mut self,
        from: NodeId,
        index: Index,
        context: Bytes,
    ) {
        let reads = &mut self.reads;
        let Some(pos) = reads.forwarded.iter().position(|c| *c == context) else {
            debug!(
                id = self.id,
                from, "read index response for no pending read ignored"
            );
            return;
        };
        if reads.forwarded_to != Some((self.term, from)) {
            debug!(
                id = self.id,
                from, "read index response from a leader not asked ignored"
            );
            return;
        }
        reads.forwarded.remove(pos);
        reads.read_states.push(ReadState { index, context });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(from: NodeId, c: &'static str) -> ReadRequest {
        ReadRequest {
            from,
            context: Bytes::from_static(c.as_bytes()),
        }
    }

    #[test]
    fn a_quorum_for_a_later_context_releases_the_earlier_ones() {
        let mut ro = ReadOnly::default();
        ro.add_request(3, req(1, "a"));
        ro.add_request(4, req(2, "b"));
        ro.add_request(5, req(1, "c"));
        assert_eq!(ro.last_pending_context().as_deref(), Some(&b"c"[..]));
        assert_eq!(ro.recv_ack(1, b"b"), Some(1));
        assert_eq!(ro.recv_ack(3, b"b"), Some(2));
        let done = ro.advance(b"b");
        assert_eq!(done, vec![(req(1, "a"), 3), (req(2, "b"), 4)]);
        assert_eq!(ro.recv_ack(1, b"a"), None, "answered already");
        assert_eq!(ro.drain(), vec![req(1, "c")]);
        assert!(!ro.unsent);
    }

    #[test]
    fn a_duplicate_context_is_answered_once() {
        let mut ro = ReadOnly::default();
        ro.add_request(3, req(1, "a"));
        ro.add_request(4, req(1, "a"));
        assert_eq!(ro.advance(b"a"), vec![(req(1, "a"), 3)]);
        assert!(ro.advance(b"a").is_empty());
    }
}
