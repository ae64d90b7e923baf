//! What the application and the node say to each other, modelled on raftexample's channels
//! (`proposeC`, `confChangeC` in; `commitC`, `errorC` out).
//!
//! # In
//! [`Proposal`]s, [`ConfChangeRequest`]s, read requests (a context, ReadIndex), leadership
//! transfer requests and a stop request go in through [`crate::handle::NodeHandle`].
//!
//! # Out
//! [`Apply`] items, in log order, through a **bounded** channel; [`NodeError`]s through another
//! ([`ERRORS_CAPACITY`]). The loop never waits on the errors channel: an error it cannot put
//! there is dropped and counted (`NodeStats::errors_dropped`). A storage failure raft meets
//! again and again (it retries at every heartbeat or tick) is reported when it changes, and
//! counted every time (`NodeStats::storage_failures`).
//!
//! # When the apply channel is full
//! The loop never blocks on the application. Items it cannot put in the channel wait in the loop
//! (at most one Ready's worth of committed entries, which `max_committed_size_per_ready`
//! bounds, plus any snapshot from the leader), and meanwhile the loop tells raft to hand out no
//! more committed entries ([`raftwood_raft::RawNode::set_apply_paused`]). It goes on ticking,
//! stepping messages, persisting and sending: the node stays a healthy member of the cluster
//! (it votes, acknowledges, even leads), its commit index keeps moving, and only its state
//! machine falls behind. As the application drains the channel, the waiting items go in and raft
//! hands out the entries it held back, in order, none lost or repeated. Read states wait in the
//! loop until the entries they need are handed out.
//!
//! Meanwhile the loop takes no proposals (nor while more than `max_apply_gap`, 5,000, committed
//! entries are not handed out, etcd's "too many requests" gap): each one taken would add to the
//! committed entries raft holds in memory. They wait in their bounded channel
//! (`proposal_capacity`), so [`crate::NodeHandle::propose`] blocks until the application catches
//! up, and a `try_send` on [`crate::NodeHandle::proposal_sender`] fails with `Full`. An
//! application must therefore not propose with the blocking call from the thread that drains
//! the apply channel without a bound on what it proposes per item received (raftexample's
//! pattern, one proposal per commit, is fine while the channel has room).

use bytes::Bytes;
use raftwood_raft::{ConfChange, ConfState, Entry, Index, NodeId, ReadState, Snapshot, Term};

/// A command for the replicated log. `id` is the application's own (a request id): it comes back
/// in [`NodeError::ProposalDropped`] so that the application can answer its client. Raft does
/// not carry it into the log: an application that needs it at apply time keeps it in `data`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The application's id for the proposal.
    pub id: u64,
    /// The command.
    pub data: Bytes,
}

/// A membership change to propose. `id` comes back in [`NodeError::ConfChangeDropped`], and,
/// carried in the entry's context (`conf_context.rs`), in [`Apply::ConfChange`] and
/// [`NodeError::ConfChangeRefused`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfChangeRequest {
    /// The application's id for the request.
    pub id: u64,
    /// The change. For an added voter, raftexample puts its peer URL in `context`; this node does
    /// too: on applying the change it tells the transport to dial that URL.
    pub change: ConfChange,
}

/// What the node hands the application, in log order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Apply {
    /// Committed normal entries to apply, in order (a new leader's empty entry included: its
    /// `data` is empty; skip it, as raftexample does).
    Entries(Vec<Entry>),
    /// A committed membership change, already applied to raft.
    ConfChange {
        /// The [`ConfChangeRequest::id`] it was proposed with (0 for a change proposed
        /// otherwise): answer the request by this, not by the change's content, which an older
        /// change may share.
        id: u64,
        /// Its index in the log.
        index: Index,
        /// Its term.
        term: Term,
        /// The change (its `context` as proposed).
        change: ConfChange,
        /// The configuration after it.
        conf_state: ConfState,
    },
    /// Restore the state machine from this snapshot (its data is what the application's
    /// [`GetSnapshot`] returned somewhere in the cluster; the node's own layer around it,
    /// [`crate::payload`], is already taken off): at a restart, and when the leader sent
    /// one. The entries after it follow.
    Snapshot(Snapshot),
    /// Reads that may be served now: every entry up to their index has been handed out before
    /// them (serve each once the state machine has applied what came before it).
    ReadStates(Vec<ReadState>),
    /// Reads that will never be answered (their leader stepped down): retry them.
    DroppedReads(Vec<Bytes>),
}

/// The capacity of the errors channel: an application that does not read it loses errors (they
/// are counted), never blocks the node.
pub const ERRORS_CAPACITY: usize = 1024;

/// What went wrong, for the application.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A proposal was not taken (no leader, a transfer in progress, too much uncommitted, too
    /// large...).
    #[error("proposal {id} dropped: {error}")]
    ProposalDropped {
        /// The proposal's id.
        id: u64,
        /// Why.
        error: DropReason,
    },
    /// A membership change was not taken.
    #[error("conf change {id} dropped: {error}")]
    ConfChangeDropped {
        /// The request's id.
        id: u64,
        /// Why.
        error: raftwood_raft::Error,
    },
    /// A read could not be started (no leader is known): retry it.
    #[error("read dropped: {error}")]
    ReadDropped {
        /// The read's context.
        context: Bytes,
        /// Why.
        error: raftwood_raft::Error,
    },
    /// A leadership transfer was refused.
    #[error("transfer to node {to} refused: {error}")]
    TransferRefused {
        /// The requested new leader.
        to: NodeId,
        /// Why.
        error: raftwood_raft::Error,
    },
    /// The in-memory storage failed to read entries back (raft goes on, and tries again).
    /// Reported when the failure changes, not at every retry.
    #[error("storage: {0}")]
    Storage(String),
    /// A committed membership change was refused when applied (the same way on every node: the
    /// configuration stays as it was).
    #[error("committed conf change at index {index} refused: {error}")]
    ConfChangeRefused {
        /// The [`ConfChangeRequest::id`] it was proposed with (0 for a change proposed
        /// otherwise).
        id: u64,
        /// Its index in the log.
        index: Index,
        /// Why.
        error: raftwood_raft::Error,
    },
    /// The node stops: durable storage failed, or a committed entry cannot be applied.
    #[error("fatal: {0}")]
    Fatal(String),
    /// The node stops: a snapshot from the leader is not a node snapshot payload
    /// ([`crate::payload`]): a bug, or a leader of another version.
    #[error("fatal: {0}")]
    SnapshotPayload(#[from] crate::payload::PayloadError),
}

/// Why a proposal was dropped.
#[derive(Debug, thiserror::Error)]
pub enum DropReason {
    /// Raft refused it (no leader, a transfer in progress, too much uncommitted...).
    #[error(transparent)]
    Raft(#[from] raftwood_raft::Error),
    /// Its data is larger than [`crate::NodeConfig::max_entry_size`]: an entry the transport
    /// could not carry in one frame would stop replication for good (raft sends at least one
    /// entry per append, however large).
    #[error("{size} bytes, above max_entry_size {max}")]
    TooLarge {
        /// The proposal's size.
        size: usize,
        /// The configured limit.
        max: usize,
    },
}

/// How the node's thread ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The application asked it to stop (or dropped its proposal sender).
    Stopped,
    /// A committed conf change removed this node, or a peer said it was removed.
    Removed,
}

/// raftexample's `getSnapshot`: the application's serialized state. Called on the loop's thread
/// every `snapshot_count` applied entries: answer quickly (serialize a copy taken under a lock).
pub trait GetSnapshot: Send + 'static {
    /// The state and the last index it includes. The index may lag what the node has handed
    /// out (items still in the apply channel); it must not exceed it.
    fn get_snapshot(&mut self) -> Result<(Index, Bytes), String>;
}

impl<F> GetSnapshot for F
where
    F: FnMut() -> Result<(Index, Bytes), String> + Send + 'static,
{
    fn get_snapshot(&mut self) -> Result<(Index, Bytes), String> {
        self()
    }
}
