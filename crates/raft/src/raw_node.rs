//! [`RawNode`]: the interface an application drives, and [`Ready`]: everything the node asks the
//! application to do, handed out whole and acknowledged with one [`RawNode::advance`].

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::conf_change::ConfChange;
use crate::config::Config;
use crate::error::{Error, StorageError, StorageFailure};
use crate::message::Message;
use crate::raft::{Raft, RoleState};
use crate::read_only::ReadState;
use crate::storage::Storage;
use crate::types::{
    ConfState, Entry, EntryKind, HardState, Index, NodeId, Snapshot, SoftState, Term,
};

/// What the node needs the application to do, in one batch.
///
/// # The contract
///
/// Handle a `Ready` in this order. Each rule exists for a reason, given after it.
///
/// 1. **Persist `snapshot` (if `Some`) first, then `hard_state` (if `Some`) and `entries`** —
///    the snapshot replaces the whole log ([`crate::MemStorage::apply_snapshot`]); the entries are
///    appended to the log, replacing any stored entries at or after the first one's index — and
///    make them durable (sync) if `must_sync`. *Why*: Raft's guarantees assume that what a node has
///    acknowledged survives a crash (Raft Figure 2, "updated on stable storage before responding
///    to RPCs"); the snapshot goes first because `entries` continue it, and written after them it
///    would erase them.
/// 2. **Send `messages` at any time**, even before or while persisting. *Why*: they ask, they do not
///    acknowledge: vote requests, appends, heartbeats. A leader sends its new entries to followers
///    in parallel with writing them itself (Raft thesis §10.2.1); it counts its own copy towards a
///    quorum only after [`RawNode::advance`] says it is durable.
/// 3. **Send `persisted_messages` only after rule 1 is done.** *Why*: they acknowledge entries and
///    grant votes; a node that acknowledged and then lost the data in a crash could let a leader
///    count a replica that does not exist, or vote twice in one term.
/// 4. **Apply `snapshot` (if `Some`: load the state machine from its data), then
///    `committed_entries` in order, after rule 1.** *Why*: a committed entry can be in this same
///    Ready's `entries` (a follower may learn an entry and its commitment at once); applying it
///    before it is in the local log would leave the state machine ahead of the log after a crash.
///    A Ready with a snapshot has no `committed_entries` (the entries up to the snapshot are in
///    it; the ones after it come once it is applied), and [`RawNode::advance`] moves the applied
///    index to the snapshot's: no committed entry is handed out twice or skipped (Raft §7). Serve each of
///    `read_states` only once the state machine has applied up to its `index` (possibly with this
///    Ready's `committed_entries`). *Why*: the read index is the point at which the state machine
///    reflects every write acknowledged before the read.
/// 5. **Call [`RawNode::advance`] once, when all of the above is done**, before the next
///    [`RawNode::ready`]. *Why*: `advance` tells the node that `entries` are durable (a leader may
///    now count itself) and `committed_entries` applied; calling `ready` again first would hand
///    out the same work twice, so it is refused (a panic: it is a bug in the caller).
///
/// [`RawNode::step`], [`RawNode::tick`] and [`RawNode::propose`] may be called between `ready` and
/// `advance`; what they produce goes into the next `Ready`. `soft_state` is informational;
/// `storage_failures` are reported, not acted on by the node (see [`StorageFailure`]).
#[derive(Debug, Default, PartialEq, Eq)]
#[must_use = "a Ready must be handled and then acknowledged with advance"]
pub struct Ready {
    /// Who leads and this node's role, if changed since the last Ready.
    pub soft_state: Option<SoftState>,
    /// Term, vote and commit index to persist, if changed since the last Ready.
    pub hard_state: Option<HardState>,
    /// A snapshot from the leader to persist before everything else (rule 1) and to load into the
    /// state machine before applying anything else (rule 4). Only a follower gets one. Boxed:
    /// a Ready is built and moved for every batch of work, and almost never holds a snapshot;
    /// inline, the snapshot would be a fifth of the bytes of each of those moves.
    pub snapshot: Option<Box<Snapshot>>,
    /// Entries to append to stable storage (rule 1).
    pub entries: Vec<Entry>,
    /// Entries to apply to the state machine, in order (rule 4).
    pub committed_entries: Vec<Entry>,
    /// Messages that may be sent at once (rule 2).
    pub messages: Vec<Message>,
    /// Messages to send only after `entries` and `hard_state` are durable (rule 3).
    pub persisted_messages: Vec<Message>,
    /// Whether rule 1 needs a sync: new entries, or a new term or vote. A commit index alone can
    /// be written lazily: after a crash it is learned again from the leader.
    pub must_sync: bool,
    /// Storage errors met while building messages for followers (a leader reading entries or
    /// its snapshot). The node goes on: the follower concerned is skipped until its next
    /// heartbeat response, then the read is tried again. The application decides what a failing
    /// storage means (retry, alert, stop); the node never hides one.
    pub storage_failures: Vec<StorageFailure>,
    /// Answers to [`RawNode::read_index`]: each read may be served once the application has
    /// applied up to its `index` (this Ready's `committed_entries` count), not before.
    pub read_states: Vec<ReadState>,
    /// The contexts of reads requested with [`RawNode::read_index`] that will never be answered:
    /// the leader holding them stepped down, or the leader they were forwarded to was replaced.
    /// Retry them.
    pub dropped_reads: Vec<Bytes>,
    /// The storage could not return the committed entries to apply (this Ready then has no
    /// `committed_entries`). The node does not retry at once, which would spin `has_ready`: it
    /// tries again at the next [`RawNode::tick`] and reports again if that fails too. A store that
    /// cannot read back what it persisted is usually fatal for the application (etcd panics here);
    /// the node leaves that decision to it.
    pub apply_failure: Option<StorageError>,
}

/// What the outstanding Ready handed out, to be acknowledged by `advance`.
#[derive(Debug)]
struct Outstanding {
    /// The index of the snapshot handed out, to be marked persisted and applied.
    snapshot: Option<Index>,
    last_entry: Option<(Index, Term)>,
    last_committed: Option<Index>,
    /// Messages from the node to itself that wait for this Ready to be durable (a candidate's own
    /// vote); stepped by `advance` instead of being handed to the application.
    to_self: Vec<Message>,
}

/// A node's progress as its leader sees it, for status output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// The highest index known replicated on the peer.
    pub match_index: Index,
    /// The next index the leader will send.
    pub next_index: Index,
    /// Whether the leader streams (`true`) or probes (`false`).
    pub replicating: bool,
    /// Whether the leader is holding appends back from this peer: a probe is outstanding, or the
    /// inflight window is full (by `max_inflight_msgs` or `max_inflight_bytes`). etcd's
    /// `Progress.IsPaused()`.
    pub paused: bool,
    /// Appends sent and not yet acknowledged (replicate state only; `0` when probing).
    pub inflight: usize,
    /// The payload bytes of those appends, as `max_inflight_bytes` counts them.
    pub inflight_bytes: u64,
}

/// A snapshot of a node's state for display and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The node's id.
    pub id: NodeId,
    /// Term, vote and commit index.
    pub hard_state: HardState,
    /// Role and leader.
    pub soft_state: SoftState,
    /// The last index handed out for applying.
    pub applied: Index,
    /// The last index in the log.
    pub last_index: Index,
    /// The last index known to be persisted.
    pub persisted_index: Index,
    /// Each peer's progress, when this node is leader; empty otherwise.
    pub progress: BTreeMap<NodeId, PeerStatus>,
    /// The configuration this node uses now (the last change it applied).
    pub conf_state: ConfState,
    /// The node a leadership transfer is handing leadership to, while one is pending (on the
    /// leader only; see [`RawNode::transfer_leader`]). etcd's `LeadTransferee`.
    pub lead_transferee: Option<NodeId>,
}

/// The node an application drives: feed it time, messages and proposals; take its [`Ready`]s.
///
/// ```
/// use raftwood_raft::{Config, MemStorage, RawNode, Role};
///
/// // A single-node cluster: it elects itself and commits a proposal.
/// let mut node = RawNode::new(Config::new(1), MemStorage::new_with_voters(&[1])).unwrap();
/// node.campaign();
/// let mut applied = Vec::new();
/// for round in 0..3 {
///     if round == 1 {
///         node.propose("hello".into()).unwrap();
///     }
///     while node.has_ready() {
///         let rd = node.ready();
///         if let Some(hs) = rd.hard_state {
///             node.storage_mut().set_hard_state(hs);
///         }
///         node.storage_mut().append(&rd.entries);
///         applied.extend(rd.committed_entries.into_iter().filter(|e| !e.data.is_empty()));
///         node.advance();
///     }
/// }
/// assert_eq!(node.status().soft_state.role, Role::Leader);
/// assert_eq!(applied[0].data.as_ref(), b"hello");
/// ```
pub struct RawNode<S: Storage> {
    raft: Raft<S>,
    prev_soft_state: SoftState,
    prev_hard_state: HardState,
    outstanding: Option<Outstanding>,
}

impl<S: Storage> RawNode<S> {
    /// A node reading `storage`, which holds what the node persisted before (or a fresh cluster's
    /// voters).
    pub fn new(config: Config, storage: S) -> Result<RawNode<S>, Error> {
        // What the disk holds, not what the node starts with: a restart with `Config::applied`
        // beyond the persisted commit index starts with the commit index raised to it, and the
        // first Ready must write that down. Otherwise the disk could keep a commit index below
        // entries it later syncs, and a restart without the state machine would take committed
        // conf changes for uncommitted ones and campaign in a configuration two steps old
        // (testdata/regression_membership_restart_forgets_commit.txt).
        let on_disk = storage.initial_state()?.hard_state;
        let raft = Raft::new(config, storage)?;
        Ok(RawNode {
            prev_soft_state: raft.soft_state(),
            prev_hard_state: on_disk,
            raft,
            outstanding: None,
        })
    }

    /// Advances logical time by one tick. The application calls this at a fixed interval
    /// (raftexample: every 100 ms); all timeouts are counted in ticks.
    pub fn tick(&mut self) {
        // A storage that failed to return the entries to apply is tried again once per tick.
        self.raft.core.log.resume_apply();
        self.raft.tick();
        self.raft.check_invariants();
    }

    /// Holds back committed entries while `paused` (an application whose apply queue is full):
    /// [`RawNode::ready`] hands out no `committed_entries` and [`RawNode::has_ready`] does not
    /// count them, until it is called again with `false`. Everything else goes on: ticks,
    /// messages, persisting entries, commitment (the commit index still moves and is still
    /// persisted in `hard_state`), snapshots from the leader, read states. Nothing is lost or
    /// handed out twice: `applied` moves only with what was handed out, so the entries held
    /// back come, in order, in the first Ready after the pause is lifted. Conf changes are
    /// committed entries too, so they wait with the rest.
    ///
    /// ```
    /// use raftwood_raft::{Config, MemStorage, RawNode};
    ///
    /// let mut node = RawNode::new(Config::new(1), MemStorage::new_with_voters(&[1])).unwrap();
    /// node.campaign();
    /// node.set_apply_paused(true);
    /// while node.has_ready() {
    ///     let rd = node.ready();
    ///     assert!(rd.committed_entries.is_empty(), "held back");
    ///     node.storage_mut().append(&rd.entries);
    ///     node.advance();
    /// }
    /// // The leader's empty entry is committed, but not handed out.
    /// assert_eq!(node.status().hard_state.commit, 1);
    /// assert_eq!(node.status().applied, 0);
    /// node.set_apply_paused(false);
    /// assert!(node.has_ready());
    /// assert_eq!(node.ready().committed_entries.len(), 1);
    /// ```
    pub fn set_apply_paused(&mut self, paused: bool) {
        self.raft.core.log.set_apply_held(paused);
    }

    /// Starts an election now, without waiting for the timeout.
    pub fn campaign(&mut self) {
        self.raft.hup();
        self.raft.check_invariants();
    }

    /// Proposes `data` for the log. On a follower it is forwarded to the leader; success means
    /// accepted for replication, not committed: watch `committed_entries` for it.
    pub fn propose(&mut self, data: Bytes) -> Result<(), Error> {
        let r = self.raft.propose(data);
        self.raft.check_invariants();
        r
    }

    /// Proposes a membership change (thesis §4.1; see [`crate::conf_change`]). It goes through
    /// the log as an [`crate::EntryKind::ConfChange`] entry and takes effect only when the
    /// application applies it, committed, with [`RawNode::apply_conf_change`].
    ///
    /// Refused with [`crate::ConfChangeError`] when it is not one step, and on a leader with
    /// [`crate::ProposalDropped::ConfChangePending`] while its previous change is not yet
    /// applied, or with `RemovesLastVoter`. On a follower it is forwarded, and a refusal at the
    /// leader is only logged there: the change then never appears in `committed_entries`.
    pub fn propose_conf_change(&mut self, cc: ConfChange) -> Result<(), Error> {
        let r = self.raft.propose_conf_change(&cc);
        self.raft.check_invariants();
        r
    }

    /// Proposes several entries at once, in order, as one batch: on the leader they are appended
    /// together (all of them or, with the error, none), on a follower forwarded in one message.
    /// Success means accepted for replication, as for [`RawNode::propose`]; the errors are the
    /// same ([`crate::ProposalDropped`]). An empty batch does nothing. (In etcd, a batch is a
    /// `MsgProp` with several entries stepped into the node; stepping a
    /// [`crate::MessageBody::Propose`] from the node to itself does the same here.)
    ///
    /// ```
    /// use raftwood_raft::{Config, Error, MemStorage, ProposalDropped, RawNode};
    ///
    /// let mut node = RawNode::new(Config::new(1), MemStorage::new_with_voters(&[1, 2, 3])).unwrap();
    /// // A follower that knows no leader drops the whole batch, and says so.
    /// let err = node.propose_batch(vec!["a".into(), "b".into()]).unwrap_err();
    /// assert_eq!(err, Error::ProposalDropped(ProposalDropped::NoLeader));
    /// ```
    pub fn propose_batch(&mut self, data: impl IntoIterator<Item = Bytes>) -> Result<(), Error> {
        let entries: Vec<Entry> = data
            .into_iter()
            .map(|data| Entry {
                term: 0,
                index: 0,
                kind: EntryKind::Normal,
                data,
            })
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let r = self.raft.propose_entries(entries);
        self.raft.check_invariants();
        r
    }

    /// Applies a committed membership change, read from a committed
    /// [`crate::EntryKind::ConfChange`] entry with [`ConfChange::decode`]; call it while
    /// handling the Ready that hands the entry out (rule 4), before [`RawNode::advance`]. The new
    /// configuration takes effect now (as in etcd): a leader starts replicating to an added voter
    /// and stops counting a removed one, and steps down if it removed itself (thesis §4.2.2); a
    /// node no longer in the configuration never campaigns.
    ///
    /// Returns the new [`ConfState`]: persist it with the applied index (see
    /// [`crate::MemStorage::set_conf_state`]), so that a restart starts from it. A change this
    /// part does not accept (more than one step, removing the last voter) is refused with the
    /// same error on every node, so the configurations stay equal everywhere; a leader never
    /// lets such a change into the log in the first place.
    pub fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<ConfState, Error> {
        let r = self.raft.apply_conf_change(cc);
        self.raft.check_invariants();
        r
    }

    /// Hands leadership to `to` (thesis §3.10): the leader stops taking proposals
    /// ([`crate::ProposalDropped::TransferInProgress`]), brings `to` up to date, then tells it to
    /// campaign at once (`TimeoutNow`), bypassing PreVote and the CheckQuorum lease. Watch
    /// `soft_state` for the outcome: `to` leading a later term. If `to` has not taken over after
    /// an election timeout, the transfer is abandoned and proposals are taken again.
    ///
    /// On the leader: `to` being the leader itself abandons a pending transfer (etcd's "already
    /// leader"); repeating the pending transfer changes nothing; another target replaces it.
    /// A leader that steps down (a higher term, CheckQuorum) drops its transfer with its role,
    /// and its pending reads into [`Ready::dropped_reads`]. Reads are still taken meanwhile; with
    /// `ReadOnlyOption::LeaseBased`, once `TimeoutNow` is sent they wait for a quorum round (the
    /// target's election ignores the lease).
    /// Proposals that followers forward to the leader meanwhile are dropped (and logged), like
    /// any forwarded proposal a leader cannot take: their clients retry after a timeout.
    ///
    /// # Errors
    /// [`crate::TransferRejected::NotLeader`] on any other node (naming the leader it knows, to
    /// ask instead), [`crate::TransferRejected::UnknownPeer`] if `to` is not a voter.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), Error> {
        let r = self.raft.transfer_leader(to);
        self.raft.check_invariants();
        r
    }

    /// Asks for a linearizable read without writing to the log (ReadIndex, thesis §6.4; see
    /// [`crate::read_only`]). `context` identifies the read and must be unique: a request id
    /// that is never reused (a counter, say). A context already pending is answered once, and
    /// a reused one could be confirmed by a late acknowledgement of the earlier round, sent
    /// before this request arrived (etcd's contexts carry the same rule).
    ///
    /// The answer comes in a later [`Ready::read_states`], as a [`ReadState`] with this
    /// context: serve the read once the application has applied up to its `index`. On a
    /// follower the request is forwarded to the leader, which answers it.
    ///
    /// How a read that cannot be served is reported:
    /// - no leader is known (an election is in progress): [`Error::ReadIndexNoLeader`], at once;
    /// - the leader holding it steps down, or the leader it was forwarded to is replaced (a new
    ///   term, or this node stops following it): its context appears in [`Ready::dropped_reads`];
    /// - the request or its answer is lost in the network while the leader stays: nothing is
    ///   reported, as in etcd; the application times the read out and retries. (A follower keeps
    ///   the context of such a read until its leader or term changes, and reports it dropped
    ///   then.)
    pub fn read_index(&mut self, context: Bytes) -> Result<(), Error> {
        let r = self.raft.read_index(context);
        self.raft.check_invariants();
        r
    }

    /// Hands a message from another node to this one. Messages from the network never cause an
    /// error the node cannot continue from; the errors are a message addressed elsewhere, and a
    /// [`crate::MessageBody::Propose`] from this node to itself (etcd's way of proposing a batch,
    /// see [`RawNode::propose_batch`]), which returns the proposal's error.
    pub fn step(&mut self, m: Message) -> Result<(), Error> {
        let r = self.raft.step(m);
        self.raft.check_invariants();
        r
    }

    /// Whether there is anything to do. `false` while a Ready is outstanding.
    pub fn has_ready(&self) -> bool {
        if self.outstanding.is_some() {
            return false;
        }
        let r = &self.raft;
        // Called for every node on every turn of the driving loop, and usually answered "no":
        // the loads come first, in the order they most often say yes, and the one that walks the
        // followers' progress (`has_pending_appends`) comes last.
        !r.core.msgs.is_empty()
            || !r.core.msgs_after_persist.is_empty()
            || r.core.log.has_unpersisted()
            || r.core.log.has_next_committed()
            || r.hard_state() != self.prev_hard_state
            || r.soft_state() != self.prev_soft_state
            || r.core.log.has_unpersisted_snapshot()
            || !r.core.storage_failures.is_empty()
            || r.has_unsent_reads()
            || !r.core.reads.read_states.is_empty()
            || !r.core.reads.dropped.is_empty()
            || r.has_pending_appends()
    }

    /// Takes everything there is to do. See [`Ready`] for the order to do it in.
    ///
    /// # Panics
    /// If the previous Ready has not been acknowledged with [`RawNode::advance`] (rule 5).
    pub fn ready(&mut self) -> Ready {
        assert!(
            self.outstanding.is_none(),
            "ready called again before advance (Ready rule 5)"
        );
        self.raft.flush_appends();
        self.raft.flush_read_index();
        let r = &mut self.raft;
        let soft = r.soft_state();
        let hard = r.hard_state();
        let snapshot = r.core.log.take_unpersisted_snapshot().map(Box::new);
        let entries = r.core.log.take_unpersisted();
        // At most `max_committed_size_per_ready` (at least one entry): the rest stays committed and
        // unapplied, and comes in the next Readys, since `applied` moves only to what was handed
        // out (`advance`).
        let (committed_entries, apply_failure) = match r
            .core
            .log
            .next_committed(r.core.config.max_committed_size_per_ready)
        {
            Ok(entries) => (entries, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        r.reduce_uncommitted_size(&committed_entries);
        let must_sync = !entries.is_empty()
            || snapshot.is_some()
            || hard.term != self.prev_hard_state.term
            || hard.vote != self.prev_hard_state.vote;
        let mut rd = Ready {
            soft_state: (soft != self.prev_soft_state).then_some(soft),
            hard_state: (hard != self.prev_hard_state).then_some(hard),
            snapshot,
            messages: std::mem::take(&mut r.core.msgs),
            persisted_messages: std::mem::take(&mut r.core.msgs_after_persist),
            must_sync,
            entries,
            committed_entries,
            storage_failures: std::mem::take(&mut r.core.storage_failures),
            read_states: std::mem::take(&mut r.core.reads.read_states),
            dropped_reads: std::mem::take(&mut r.core.reads.dropped),
            apply_failure,
        };
        let id = r.core.id;
        let to_self = if rd.persisted_messages.iter().any(|m| m.to == id) {
            let (to_self, others) = std::mem::take(&mut rd.persisted_messages)
                .into_iter()
                .partition(|m| m.to == id);
            rd.persisted_messages = others;
            to_self
        } else {
            Vec::new()
        };
        self.prev_soft_state = soft;
        self.prev_hard_state = hard;
        self.outstanding = Some(Outstanding {
            snapshot: rd.snapshot.as_ref().map(|s| s.metadata.index),
            last_entry: rd.entries.last().map(|e| (e.index, e.term)),
            last_committed: rd.committed_entries.last().map(|e| e.index),
            to_self,
        });
        rd
    }

    /// Acknowledges the outstanding Ready (rule 5 of the [`Ready`] contract): its `snapshot`,
    /// `entries` and `hard_state` are durable (rule 1), its messages sent (rules 2 and 3), its
    /// `snapshot` loaded and `committed_entries` applied (rule 4). The node then drops the
    /// snapshot from its unstable log and moves its applied index to the snapshot's, counts its
    /// own copy of the entries towards a quorum, marks them applied, and delivers any message it
    /// sent itself (a candidate's own vote, which counts only once durable). Without an
    /// outstanding Ready it does nothing.
    pub fn advance(&mut self) {
        let Some(done) = self.outstanding.take() else {
            return;
        };
        // The snapshot first: the entries continue it (rule 1), and applied jumps to it (rule 4).
        if let Some(index) = done.snapshot {
            self.raft.core.log.stable_snap_to(index);
        }
        if let Some((index, term)) = done.last_entry {
            self.raft.core.log.stable_to(index, term);
            self.raft.on_persisted();
        }
        if let Some(index) = done.last_committed {
            self.raft.core.log.applied_to(index);
        }
        for m in done.to_self {
            // Only our own vote travels this way; it cannot be addressed elsewhere.
            let _ = self.raft.step(m);
        }
        self.raft.check_invariants();
    }

    /// Reports the outcome of sending a snapshot to `to` ([`MessageBody::Snapshot`]): `ok` when the
    /// transport delivered it, `false` when the transfer failed. The application (its transport)
    /// must report every snapshot it was asked to send, one way or the other: until then the
    /// leader sends that follower nothing more (its progress is in the snapshot state, see
    /// [`crate::progress`]). Either way the follower is probed next; after a failure the
    /// snapshot is sent again after the follower's next heartbeat response. Ignored on a node
    /// that does not lead, or for a follower without a snapshot in flight (a stale report).
    ///
    /// [`MessageBody::Snapshot`]: crate::MessageBody::Snapshot
    pub fn report_snapshot(&mut self, to: NodeId, ok: bool) {
        self.raft.report_snapshot(to, ok);
        self.raft.check_invariants();
    }

    /// Reports that a message to `to` could not be sent (the transport calls it when a send
    /// fails). A leader streaming appends to `to` goes back to probing it: what it streamed may be
    /// lost, and streaming more into a dead link only fills the window (etcd's `ReportUnreachable`).
    /// Ignored on a node that does not lead.
    pub fn report_unreachable(&mut self, to: NodeId) {
        self.raft.report_unreachable(to);
        self.raft.check_invariants();
    }

    /// The node's state, for display.
    pub fn status(&self) -> Status {
        let r = &self.raft;
        let progress = match &r.role {
            RoleState::Leader(l) => l
                .progress
                .iter()
                .map(|(&id, pr)| {
                    let (inflight, inflight_bytes) = pr.inflight();
                    let status = PeerStatus {
                        match_index: pr.match_index(),
                        next_index: pr.next_index(),
                        replicating: pr.is_replicating(),
                        paused: pr.is_paused(),
                        inflight,
                        inflight_bytes,
                    };
                    (id, status)
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        let log = &r.core.log;
        Status {
            id: r.core.id,
            hard_state: r.hard_state(),
            soft_state: r.soft_state(),
            applied: log.applied(),
            last_index: log.last_index(),
            persisted_index: log.persisted_index(),
            progress,
            conf_state: ConfState {
                voters: r.core.voters.clone(),
            },
            lead_transferee: match &r.role {
                RoleState::Leader(l) => l.lead_transferee.map(|t| t.to),
                _ => None,
            },
        }
    }

    /// The storage, for reading.
    pub fn storage(&self) -> &S {
        self.raft.core.log.storage()
    }

    /// The storage, for persisting a Ready's entries and hard state into it (rule 1).
    pub fn storage_mut(&mut self) -> &mut S {
        self.raft.core.log.storage_mut()
    }

    /// The first index of this node's log: 1 until it compacts or installs a snapshot, then the
    /// snapshot's index + 1. For tests and tools.
    pub fn first_index(&self) -> Index {
        self.raft.core.log.first_index()
    }

    /// The term of the entry at `index` of this node's log, also for the snapshot's index (the
    /// last compacted entry), for tests and tools.
    pub fn term(&self, index: Index) -> Result<Term, Error> {
        Ok(self.raft.core.log.term(index)?)
    }

    /// The entries `[low, high)` of this node's log (stable or not), for tests and tools.
    pub fn entries(&self, low: Index, high: Index) -> Result<Vec<Entry>, Error> {
        Ok(self.raft.core.log.slice(low, high, u64::MAX)?)
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.raft.core.id
    }
}
