//! Running a node: the replicated key-value server that `raftwood` runs when no subcommand is
//! given. [`run`] turns the command line's [`ServerConfig`] into a
//! [`crate::replica::ReplicaConfig`] and runs [`crate::replica::run`] (storage, transport, node,
//! service, HTTP), stopping gracefully on SIGINT, SIGTERM, or, under `local-cluster`, when the
//! parent's pipe closes ([`crate::local_cluster::watch_parent`]).

use crate::cli::ServerConfig;
use crate::replica::{self, ReplicaConfig, ReplicaError};

/// Why a server that ran stopped; both mean exit status 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// SIGINT or SIGTERM, or the `local-cluster` parent's pipe closed: it stopped gracefully.
    Stopped,
    /// The node learnt it was removed from the cluster (the contract: exit by itself, status 0).
    Removed,
}

/// Why a server could not start or had to stop; the binary prints it as one line on stderr and
/// exits with a status other than 0.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Storage, transport, HTTP listener or node: the message names the file, address or setting.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// The parent-pipe watcher could not start.
    #[error("cannot watch the parent's pipe: {0}")]
    ParentPipe(std::io::Error),
}

/// Runs the node described by `config` until it is stopped or removed.
pub fn run(config: ServerConfig) -> Result<ExitReason, ServerError> {
    let (parent_gone_tx, parent_gone) = tokio::sync::oneshot::channel::<()>();
    // Without a parent pipe the stop future holds the sender itself, so it never completes.
    let keep_sender = if config.parent_pipe {
        crate::local_cluster::watch_parent(move || {
            let _ = parent_gone_tx.send(());
        })
        .map_err(ServerError::ParentPipe)?;
        None
    } else {
        Some(parent_gone_tx)
    };
    let stop = async move {
        let _keep = keep_sender;
        let _ = parent_gone.await;
    };
    Ok(replica::run(ReplicaConfig::from(&config), stop)?)
}
