//! [`NodeHandle`]: the application's way in (proposals, conf changes, reads, leadership
//! transfer, stop) and its window on the node (status, counters), usable from any thread.

use std::sync::Arc;

use bytes::Bytes;
use crossbeam_channel::{Receiver, SendError, Sender};
use parking_lot::Mutex;
use raftwood_raft::NodeId;

use crate::app::{ConfChangeRequest, Proposal};
use crate::raft_node::NodeStatus;
use crate::stats::NodeStats;

/// The request channels the loop receives from.
pub struct Inbox {
    /// Proposals (bounded: a full channel makes [`NodeHandle::propose`] wait, as raftexample's
    /// `proposeC` does).
    pub proposals: Receiver<Proposal>,
    /// Conf changes.
    pub conf_changes: Receiver<ConfChangeRequest>,
    /// ReadIndex requests (their context).
    pub reads: Receiver<Bytes>,
    /// Leadership transfer requests.
    pub transfers: Receiver<NodeId>,
    /// A stop request.
    pub stop: Receiver<()>,
}

/// The application's handle on a running node. Cheap to clone; the node stops when every clone
/// is dropped (raftexample: closing `proposeC`) or on [`NodeHandle::stop`].
#[derive(Clone)]
pub struct NodeHandle {
    proposals: Sender<Proposal>,
    conf_changes: Sender<ConfChangeRequest>,
    reads: Sender<Bytes>,
    transfers: Sender<NodeId>,
    stop: Sender<()>,
    status: Arc<Mutex<NodeStatus>>,
    stats: Arc<NodeStats>,
}

/// The node has stopped; the request was not taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the node has stopped")]
pub struct Stopped;

impl<T> From<SendError<T>> for Stopped {
    fn from(_: SendError<T>) -> Stopped {
        Stopped
    }
}

impl NodeHandle {
    /// A handle and the loop's ends of its channels.
    pub fn new(
        proposal_capacity: usize,
        status: Arc<Mutex<NodeStatus>>,
        stats: Arc<NodeStats>,
    ) -> (NodeHandle, Inbox) {
        let (proposals, proposals_rx) = crossbeam_channel::bounded(proposal_capacity);
        let (conf_changes, conf_rx) = crossbeam_channel::bounded(64);
        let (reads, reads_rx) = crossbeam_channel::bounded(proposal_capacity);
        let (transfers, transfers_rx) = crossbeam_channel::bounded(8);
        let (stop, stop_rx) = crossbeam_channel::bounded(1);
        let handle = NodeHandle {
            proposals,
            conf_changes,
            reads,
            transfers,
            stop,
            status,
            stats,
        };
        let inbox = Inbox {
            proposals: proposals_rx,
            conf_changes: conf_rx,
            reads: reads_rx,
            transfers: transfers_rx,
            stop: stop_rx,
        };
        (handle, inbox)
    }

    /// Proposes a command; waits while the proposal channel is full, which it stays while the
    /// application is behind (the loop takes no proposals then; see [`crate::app`]). Its
    /// outcome is an
    /// [`crate::app::Apply::Entries`] holding it, or a [`crate::app::NodeError::ProposalDropped`]
    /// with its `id`.
    pub fn propose(&self, proposal: Proposal) -> Result<(), Stopped> {
        Ok(self.proposals.send(proposal)?)
    }

    /// The proposal sender itself, for an application that selects on it.
    pub fn proposal_sender(&self) -> &Sender<Proposal> {
        &self.proposals
    }

    /// Proposes a membership change; waits while the channel (64) is full.
    pub fn propose_conf_change(&self, request: ConfChangeRequest) -> Result<(), Stopped> {
        Ok(self.conf_changes.send(request)?)
    }

    /// The conf change sender itself, for an application that must not wait (an async task:
    /// `try_send`, and answer "busy" when it is full).
    pub fn conf_change_sender(&self) -> &Sender<ConfChangeRequest> {
        &self.conf_changes
    }

    /// Asks for a linearizable read; `context` must be unique (a request id). The answer is an
    /// [`crate::app::Apply::ReadStates`] holding it, after every entry up to its index.
    pub fn read_index(&self, context: Bytes) -> Result<(), Stopped> {
        Ok(self.reads.send(context)?)
    }

    /// Asks the leader to hand its leadership to `to`.
    pub fn transfer_leader(&self, to: NodeId) -> Result<(), Stopped> {
        Ok(self.transfers.send(to)?)
    }

    /// Asks the node to stop: it finishes the Ready in hand, syncs and closes its storage.
    pub fn stop(&self) {
        // A full channel means a stop is already asked for; a closed one, that it stopped.
        let _ = self.stop.try_send(());
    }

    /// The node's status as of its last turn.
    pub fn status(&self) -> NodeStatus {
        self.status.lock().clone()
    }

    /// The node's counters.
    pub fn stats(&self) -> &NodeStats {
        &self.stats
    }
}
