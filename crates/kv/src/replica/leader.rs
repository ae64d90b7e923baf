//! Waiting out an election: a request that finds no leader (its proposal dropped, its ReadIndex
//! round refused) waits until one is known and tries again, until its deadline. The contract
//! answers `503` only "when there is no leader or quorum within the request timeout"; an
//! election takes one to two election timeouts (Raft §5.2), so failing at once would turn every
//! election, and the first request to a node that just started, into an error.
//!
//! Retrying is safe: a dropped proposal was never appended to any log (raft refused it before
//! it had an index), and a refused ReadIndex round read nothing.

use std::time::{Duration, Instant};

use raftwood_node::NodeHandle;

use crate::service::ServiceError;

/// How often a waiting request looks for a leader; also the least pause between two tries, so
/// that a status that lags behind raft cannot turn the retry into a busy loop.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// Whether the node knows a leader, as of its last turn.
pub(crate) fn known(handle: &NodeHandle) -> bool {
    handle.status().raft.soft_state.leader.is_some()
}

/// Waits at least [`POLL`], then until a leader is known or `deadline` passes; true when one
/// is known.
pub(crate) async fn wait(handle: &NodeHandle, deadline: Instant) -> bool {
    loop {
        tokio::time::sleep(POLL).await;
        if known(handle) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

/// [`wait`] for a thread that is not async (the read batcher).
pub(crate) fn wait_blocking(handle: &NodeHandle, deadline: Instant) -> bool {
    loop {
        std::thread::sleep(POLL);
        if known(handle) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

/// The answer to a request whose deadline passed: `NoLeader` when it never saw a leader (an
/// election that did not end, a node cut off), `Timeout` when there was one but the commit or
/// read did not come in time (a slow leader, a lost quorum).
pub(crate) fn expired(saw_leader: bool) -> ServiceError {
    if saw_leader {
        ServiceError::Timeout
    } else {
        ServiceError::NoLeader
    }
}
