//! The crate's errors. Messages from the network never produce an error that stops the node: a
//! message that makes no sense is dropped and logged. Errors are for the caller's own requests
//! (a proposal that cannot be taken, a bad configuration) and for storage failures.

use crate::conf_change::ConfChangeError;
use crate::types::{Index, NodeId};

/// Everything that can go wrong when driving a node.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The configuration is inconsistent; the text says which rule it breaks.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// A proposal was not accepted; the application should retry later or elsewhere.
    #[error("proposal dropped: {0}")]
    ProposalDropped(#[from] ProposalDropped),
    /// The storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The storage's initial state contradicts itself (for example a commit index past the log).
    #[error("corrupt initial state: commit index {commit} is outside the log [{first}, {last}]")]
    CommitOutOfRange {
        /// The persisted commit index.
        commit: Index,
        /// The first index the storage holds.
        first: Index,
        /// The last index the storage holds.
        last: Index,
    },
    /// `Config::applied` is past the end of the log in storage.
    #[error("applied index {applied} is past the last index {last} in storage")]
    AppliedOutOfRange {
        /// The configured applied index.
        applied: Index,
        /// The last index the storage holds.
        last: Index,
    },
    /// A membership change was malformed or not allowed (one server at a time, thesis §4.1).
    #[error("conf change: {0}")]
    ConfChange(#[from] ConfChangeError),
    /// A leadership transfer was not started; see [`crate::RawNode::transfer_leader`].
    #[error("leadership transfer refused: {0}")]
    TransferRejected(#[from] TransferRejected),
    /// [`crate::RawNode::read_index`] was called on a node that knows no leader (an election is
    /// in progress): nobody can answer the read; retry later or elsewhere.
    #[error("read index dropped: no leader is known")]
    ReadIndexNoLeader,
    /// A message was given to a node it is not addressed to.
    #[error("message for node {to} stepped into node {node}")]
    WrongRecipient {
        /// The message's recipient.
        to: NodeId,
        /// The node it was stepped into.
        node: NodeId,
    },
}

/// Why a proposal was dropped.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum ProposalDropped {
    /// No leader is known to forward it to (an election is in progress).
    #[error("no leader is known")]
    NoLeader,
    /// The leader already holds `max_uncommitted_entries_size` bytes of uncommitted entries.
    #[error("{uncommitted} bytes uncommitted, limit {limit}")]
    UncommittedSizeExceeded {
        /// Bytes of uncommitted entries the leader holds.
        uncommitted: u64,
        /// The configured limit.
        limit: u64,
    },
    /// A membership change is already in the log and not yet applied by the leader: one change
    /// at a time (see [`crate::conf_change`]). Retry once it has been applied.
    #[error("conf change at index {pending_index} is pending (applied {applied})")]
    ConfChangePending {
        /// The index of the pending change (or, for a new leader, its last index at election).
        pending_index: Index,
        /// The leader's applied index.
        applied: Index,
    },
    /// The leader is handing its leadership to `to` (thesis §3.10) and takes no proposals until
    /// the transfer succeeds (then the new leader takes them) or is abandoned after an election
    /// timeout. Entries appended now would keep the target behind, and could not commit under
    /// this leader anyway if the transfer succeeds.
    #[error("leadership transfer to node {to} in progress")]
    TransferInProgress {
        /// The node leadership is being transferred to.
        to: NodeId,
    },
    /// This follower knows the leader but `Config::disable_proposal_forwarding` is set, so it
    /// does not forward the proposal: the application sends it to the leader itself.
    #[error("forwarding to leader {leader} is disabled")]
    ForwardingDisabled {
        /// The leader the proposal could be sent to.
        leader: NodeId,
    },
}

/// Why [`crate::RawNode::transfer_leader`] did not start a transfer.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum TransferRejected {
    /// Only the leader can hand its leadership over. Departure from etcd, which forwards the
    /// request to the leader: the caller learns at once that it asked the wrong node, and whom to
    /// ask instead.
    #[error("not the leader ({})", match leader {
        Some(l) => format!("the leader is node {l}"),
        None => "no leader is known".to_string(),
    })]
    NotLeader {
        /// The leader this node knows of, if any.
        leader: Option<crate::types::NodeId>,
    },
    /// The target is not a voter of this cluster, so it could not win an election.
    #[error("node {0} is not a voter")]
    UnknownPeer(crate::types::NodeId),
}

/// Errors a [`crate::Storage`] reports.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum StorageError {
    /// The requested index is before the first index still held (compacted into a snapshot).
    #[error("index {0} is compacted")]
    Compacted(Index),
    /// The requested index is after the last index held.
    #[error("index {0} is unavailable")]
    Unavailable(Index),
    /// A snapshot at or below the one already held was given to
    /// [`crate::MemStorage::apply_snapshot`] or [`crate::MemStorage::create_snapshot`]: applying it
    /// would move the storage back (etcd's `ErrSnapOutOfDate`).
    #[error("snapshot at index {requested} is out of date (storage holds one at {held})")]
    SnapshotOutOfDate {
        /// The index of the snapshot offered.
        requested: Index,
        /// The index of the snapshot already held.
        held: Index,
    },
    /// [`crate::Storage::snapshot`] has no snapshot ready yet (the application is still preparing
    /// one). The leader skips the follower that needed it until the follower's next heartbeat
    /// response and then asks again (etcd's `ErrSnapshotTemporarilyUnavailable`). This is not a
    /// failure and is not reported in [`crate::Ready::storage_failures`].
    #[error("snapshot temporarily unavailable")]
    SnapshotTemporarilyUnavailable,
    /// Any other failure of the underlying store, described.
    #[error("{0}")]
    Other(String),
}

/// A storage failure the leader met while building a message for a follower: reported to the
/// application in [`crate::Ready::storage_failures`], never retried silently. The follower is
/// paused until its next heartbeat response; then the leader reads the storage again, and a
/// failure again is reported again, once per heartbeat interval at most.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("storage failed while building a message for node {to}: {error}")]
pub struct StorageFailure {
    /// The follower the message was for.
    pub to: NodeId,
    /// What the storage answered.
    pub error: StorageError,
}
