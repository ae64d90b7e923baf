//! Running a node: the replicated key-value server that `raftwood` runs when no subcommand is
//! given. It composes the raft node (`raftwood-node`) with [`crate::service::KvService`] and the
//! HTTP API ([`crate::http`]) from a [`ServerConfig`].
//!
//! Not built yet: the composition is issue 12's next step, and until then [`run`] returns
//! [`ServerError::NotBuilt`] so that `raftwood` says so in one line instead of pretending to
//! serve.

use crate::cli::ServerConfig;

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
    /// The node and the HTTP layer are not composed into a server yet (issue 12's next step).
    #[error(
        "the replicated server is not built yet (issue 12: node {id} would serve HTTP on {http}); \
         `raftwood bench` and `raftwood local-cluster` parse their flags, but nodes cannot run"
    )]
    NotBuilt {
        /// The node's id.
        id: u64,
        /// Where its HTTP API would listen.
        http: std::net::SocketAddr,
    },
}

/// Runs the node described by `config` until it is stopped or removed.
pub fn run(config: ServerConfig) -> Result<ExitReason, ServerError> {
    Err(ServerError::NotBuilt {
        id: config.id,
        http: config.http_listen,
    })
}
