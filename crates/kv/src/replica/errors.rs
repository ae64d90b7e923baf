//! The errors thread: the node's [`NodeError`]s answer requests fast instead of letting them run
//! into their timeout. A proposal or conf change dropped for want of a leader fails its waiter
//! with `NoLeader`, and the request proposes again once a leader is known (until its deadline);
//! other drops (a leadership transfer in progress) answer `503`. A refused ReadIndex round goes
//! back to the batcher, which tries again once there is a leader.

use std::sync::Arc;

use crossbeam_channel::Receiver;
use raftwood_node::{DropReason, NodeError};
use tracing::{debug, error, warn};

use super::Shared;
use crate::service::ServiceError;

/// Runs until the node drops its errors sender (it stopped).
pub(crate) fn run(shared: Arc<Shared>, errors: Receiver<NodeError>) {
    for e in errors.iter() {
        match e {
            NodeError::ProposalDropped { id, error } => {
                let answer = match &error {
                    DropReason::Raft(error) => unavailable(error),
                    // Over the node's max_entry_size: the request itself is at fault.
                    DropReason::TooLarge { .. } => ServiceError::BadRequest(error.to_string()),
                };
                shared.writes.complete(id, Err(answer));
            }
            NodeError::ConfChangeDropped { id, error } => {
                shared.confs.complete(id, Err(unavailable(&error)));
            }
            NodeError::ReadDropped { context, error } => {
                // The batcher tries again once a leader is known, until the reads' deadlines.
                if let Some(round) = shared.reads.round_of(&context) {
                    debug!(round, "ReadIndex round refused: {error}");
                    shared.reads.refuse(round);
                }
            }
            NodeError::TransferRefused { to, error } => {
                warn!(to, "leadership transfer refused: {error}");
            }
            NodeError::Storage(message) => warn!("node storage: {message}"),
            NodeError::ConfChangeRefused { id, index, error } => {
                warn!(index, "committed conf change refused: {error}");
                // Committed but refused the same way on every node: the configuration is as it
                // was, and the request will never be applied.
                let answer = ServiceError::BadRequest(format!(
                    "the membership change was refused when applied: {error}"
                ));
                shared.confs.complete(id, Err(answer));
            }
            fatal @ (NodeError::Fatal(_) | NodeError::SnapshotPayload(_)) => {
                error!("node failed: {fatal}");
            }
        }
    }
}

/// Raft refuses a request when it knows no leader or the leader is busy (a transfer): `503`,
/// saying which.
fn unavailable(error: &raftwood_raft::Error) -> ServiceError {
    match error {
        raftwood_raft::Error::ProposalDropped(raftwood_raft::ProposalDropped::NoLeader)
        | raftwood_raft::Error::ReadIndexNoLeader => ServiceError::NoLeader,
        other => ServiceError::Unavailable(other.to_string()),
    }
}
