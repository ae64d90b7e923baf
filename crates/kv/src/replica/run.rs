//! [`run`]: one `raftwood` server, composed the way raftexample's `main.go` composes its
//! pieces, and stopped the way the contract says.
//!
//! ```text
//! DATA_DIR/{wal,snap} ─► DiskStorage::open ─► (storage, restored)
//! --cluster, --id     ─► TcpTransport::start (peer listener at our own URL)
//! raft Config         ─► Node::start ─► RaftKv (apply, errors, read batcher threads)
//! --port              ─► HTTP (axum on tokio) over RaftKv
//! ```
//!
//! It returns when the node is removed ([`ExitReason::Removed`]) or when asked to stop
//! (SIGINT, SIGTERM, or the caller's `stop` future: [`ExitReason::Stopped`]; the signal handlers
//! are registered before storage opens, so a signal during a long WAL replay stops the node
//! gracefully once it has started): the HTTP server
//! stops accepting and lets the requests in flight finish, then the node finishes the Ready in
//! hand, syncs and closes its WAL, and the threads are joined.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use raftwood_node::storage::{DiskStorage, StorageError, StorageOptions};
use raftwood_node::transport::{EVENTS_CAPACITY, PeerUrl, TcpConfig, TcpTransport, TransportError};
use raftwood_node::{ConfigError, NodeError, Outcome, RealClock, StartFrom};
use tracing::{info, warn};

use super::{RaftKv, Replica, ReplicaConfig, ServiceOptions};
use crate::http;
use crate::server::ExitReason;
use crate::signals::StopSignals;
use crate::snapshot::SnapshotLimits;

/// Why a server could not start or failed. `Display` is one line naming the file, address or
/// setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The data directory cannot be opened (damage, permissions).
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// The peer transport cannot start.
    #[error("{0}")]
    Transport(#[from] TransportError),
    /// The configuration is refused.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// This node's id is not in `--cluster`, or its URL is unusable.
    #[error("{0}")]
    Peers(String),
    /// The HTTP listener or the runtime cannot start.
    #[error("HTTP API on {addr}: {source}")]
    Http {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The tokio runtime cannot start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The node stopped on a fatal error.
    #[error("{0}")]
    Node(#[from] NodeError),
}

/// Runs a server until it is removed, a signal arrives, or `stop` completes.
pub fn run(
    config: ReplicaConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<ExitReason, ReplicaError> {
    // Bound first: a port in use is reported before anything touches the data directory.
    let http_listener = TcpListener::bind(config.http.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| ReplicaError::Http {
            addr: config.http.listen,
            source,
        })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ReplicaError::Runtime)?;
    // Signal handlers before start(): opening storage can take long (a WAL replay), and a
    // SIGTERM meanwhile must end in a graceful stop once started, not kill the process.
    let mut signals = {
        let _context = runtime.enter();
        StopSignals::new().map_err(ReplicaError::Runtime)?
    };
    let Replica { service, threads } = start(&config)?;
    let handle = service.handle().clone();
    // The node may end by itself (removed): a thread waits for it and wakes the HTTP server.
    let ended = Arc::new(tokio::sync::Notify::new());
    let (outcome_tx, outcome_rx) = tokio::sync::oneshot::channel();
    let wake = Arc::clone(&ended);
    std::thread::Builder::new()
        .name(format!("raftwood-join-{}", config.id))
        .spawn(move || {
            let _ = outcome_tx.send(threads.join());
            wake.notify_one();
        })
        .map_err(ReplicaError::Runtime)?;
    let http_config = config.http.clone();
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(http_listener)?;
        let shutdown = async move {
            tokio::select! {
                () = stop => info!("stopping: asked by the caller"),
                signal = signals.recv() => info!(signal, "stopping: signal received"),
                () = ended.notified() => info!("stopping: the node ended"),
            }
        };
        http::serve_on(listener, &http_config, service, shutdown).await
    });
    // HTTP has stopped accepting and the requests in flight are done: now the node.
    handle.stop();
    let outcome = runtime
        .block_on(outcome_rx)
        .unwrap_or_else(|_| Err(NodeError::Fatal("the node's joiner thread died".into())));
    served.map_err(|source| ReplicaError::Http {
        addr: config.http.listen,
        source,
    })?;
    match outcome? {
        Outcome::Stopped => Ok(ExitReason::Stopped),
        Outcome::Removed => {
            info!(id = config.id, "removed from the cluster; exiting");
            Ok(ExitReason::Removed)
        }
    }
}

/// Opens the data directory, starts the transport, the node and the service.
pub fn start(config: &ReplicaConfig) -> Result<Replica, ReplicaError> {
    let options = StorageOptions {
        // The node's one source of them: the --cluster list, minus this node if it joins.
        bootstrap_voters: config.node_config().bootstrap_voters(),
        fsync: config.fsync,
        ..StorageOptions::default()
    };
    let (storage, restored) = DiskStorage::open(&config.data_dir, options)?;
    if let Some(torn) = &restored.torn_tail {
        warn!("repaired a torn WAL tail: {torn:?}");
    }
    for id in &restored.orphans_removed {
        warn!("removed an orphan snapshot: {id:?}");
    }
    for damage in &restored.skipped_snapshots {
        warn!("skipped a damaged snapshot: {damage}");
    }
    let listen = match config.peer_listen {
        Some(addr) => addr,
        None => own_address(config)?,
    };
    // Bounded: a busy loop pushes back on its peers (see `transport::EVENTS_CAPACITY`).
    let (events_tx, events) = crossbeam_channel::bounded(EVENTS_CAPACITY);
    let mut tcp = TcpConfig::new(config.id, listen, config.peers.clone());
    tcp.cluster_token = config.cluster_token.clone();
    // A snapshot from the leader must fit everything clients were allowed to write.
    let transport = TcpTransport::start(tcp, events_tx)?;
    let limits = SnapshotLimits {
        max_value_len: u32::try_from(config.http.max_value_bytes)
            .unwrap_or(u32::MAX)
            .max(SnapshotLimits::default().max_value_len),
        ..SnapshotLimits::default()
    };
    let clock = RealClock {
        interval: config.tick_interval,
    };
    Ok(RaftKv::start(
        config.node_config(),
        StartFrom::from(restored),
        storage,
        transport,
        events,
        clock,
        ServiceOptions {
            snapshot_limits: limits,
            request_timeout: config.http.request_timeout,
        },
    )?)
}

/// The socket address of this node's own peer URL.
fn own_address(config: &ReplicaConfig) -> Result<SocketAddr, ReplicaError> {
    let url = config.peers.get(&config.id).ok_or_else(|| {
        ReplicaError::Peers(format!(
            "node {} has no URL in --cluster ({} URLs given)",
            config.id,
            config.peers.len()
        ))
    })?;
    let parsed = PeerUrl::parse(url).map_err(|e| ReplicaError::Peers(e.to_string()))?;
    parsed
        .resolve()
        .ok()
        .and_then(|addrs| addrs.into_iter().next())
        .ok_or_else(|| ReplicaError::Peers(format!("cannot resolve this node's URL {url}")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_node_missing_from_the_cluster_list_is_named() {
        let peers = BTreeMap::from([(1, "http://127.0.0.1:12379".to_string())]);
        let config = ReplicaConfig::new(3, peers, "d".into());
        let error = own_address(&config).unwrap_err().to_string();
        assert!(error.contains("node 3"), "{error}");
    }
}
