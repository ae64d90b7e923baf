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

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use raftwood_node::storage::{DiskStorage, StorageError, StorageOptions};
use raftwood_node::transport::{EVENTS_CAPACITY, PeerUrl, TcpConfig, TcpTransport, TransportError};
use raftwood_node::{ConfigError, NodeConfig, NodeError, Outcome, RealClock, StartFrom};
use raftwood_raft::ReadOnlyOption;
use tracing::{info, warn};

use super::{RaftKv, Replica, ServiceOptions};
use crate::cli::ServerConfig;
use crate::http::{self, HttpConfig};
use crate::server::ExitReason;
use crate::signals::StopSignals;
use crate::snapshot::SnapshotLimits;

/// Everything one server needs; the binary fills it from its flags.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// This node's raft id.
    pub id: u64,
    /// Every initial member's raft id and peer URL, this node's included (`--cluster`).
    pub peers: BTreeMap<u64, String>,
    /// Join an existing cluster (`--join`): start empty and wait for the leader.
    pub join: bool,
    /// Where the WAL (`wal/`) and snapshots (`snap/`) live.
    pub data_dir: PathBuf,
    /// Snapshot every this many applied entries.
    pub snapshot_count: u64,
    /// Entries kept below a snapshot for followers slightly behind.
    pub catch_up_entries: u64,
    /// The HTTP API: listen address, value limit, request timeout.
    pub http: HttpConfig,
    /// Shared by the members of one cluster; peers with another token are refused.
    pub cluster_token: String,
    /// Where the peer transport listens; `None`: the address of this node's own URL.
    pub peer_listen: Option<SocketAddr>,
    /// The raft clock's tick.
    pub tick_interval: Duration,
    /// Ticks without a leader before an election (Raft §5.2).
    pub election_ticks: usize,
    /// Ticks between heartbeats.
    pub heartbeat_ticks: usize,
    /// PreVote (thesis §9.6): a node that was cut off does not disrupt the cluster on return.
    pub pre_vote: bool,
    /// CheckQuorum (thesis §6.2): a leader that hears from no quorum for an election timeout
    /// steps down.
    pub check_quorum: bool,
    /// Sync the WAL and snapshots (off only for tests of everything but the disk).
    pub fsync: bool,
}

impl ReplicaConfig {
    /// The binary's defaults for node `id` of `peers`, data in `data_dir`: raftexample's 100 ms
    /// tick, 10-tick elections and 1-tick heartbeats, PreVote and CheckQuorum on (etcd's server
    /// turns both on; raftexample leaves them off).
    pub fn new(id: u64, peers: BTreeMap<u64, String>, data_dir: PathBuf) -> ReplicaConfig {
        ReplicaConfig {
            id,
            peers,
            join: false,
            data_dir,
            snapshot_count: 10_000,
            catch_up_entries: 10_000,
            http: HttpConfig::default(),
            cluster_token: raftwood_node::transport::DEFAULT_CLUSTER_TOKEN.to_string(),
            peer_listen: None,
            tick_interval: Duration::from_millis(100),
            election_ticks: 10,
            heartbeat_ticks: 1,
            pre_vote: true,
            check_quorum: true,
            fsync: true,
        }
    }

    /// The node's configuration: the raft knobs with ReadIndex in Safe mode (thesis §6.4: the
    /// leader confirms with a quorum for each round; never the lease-based mode, which trusts
    /// clocks), and the snapshot settings.
    pub fn node_config(&self) -> NodeConfig {
        let mut node = NodeConfig::new(self.id, self.peers.clone());
        node.join = self.join;
        node.tick_interval = self.tick_interval;
        node.snapshot_count = self.snapshot_count;
        node.snapshot_catch_up_entries = self.catch_up_entries;
        let raft = &mut node.raft;
        raft.election_tick = self.election_ticks;
        raft.heartbeat_tick = self.heartbeat_ticks;
        raft.pre_vote = self.pre_vote;
        raft.check_quorum = self.check_quorum;
        raft.read_only_option = ReadOnlyOption::Safe;
        // Bounded memory under a write flood: a leader refuses proposals (503) past 64 MiB of
        // uncommitted entries, and hands out at most 16 MiB of committed ones per Ready.
        raft.max_uncommitted_entries_size = 64 << 20;
        raft.max_committed_size_per_ready = 16 << 20;
        node
    }
}

/// The largest value a server may accept (`--max-value-bytes`): a put of that value under the
/// longest key (the snapshot reader's key limit) must fit in one raft entry of the node's
/// `max_entry_size`, which the node keeps below the transport's frame size with room for the
/// message around it. A larger limit would let clients write entries the node drops (or, without
/// the node's check, that no follower could receive: replication would stall).
pub fn max_value_bytes_limit() -> usize {
    let max_entry = NodeConfig::new(1, BTreeMap::new()).max_entry_size;
    // The command's own bytes (id, op tag, lengths, if_revision): a put with a 1-byte key and an
    // empty value, less that key byte, encoded by the log's codec itself.
    let overhead = crate::command::Command {
        id: crate::command::RequestId { node: 1, seq: 1 },
        op: crate::command::Op::Put {
            key: crate::command::Key::new("k".to_owned())
                .expect("invariant violated: a one-letter key is valid"),
            value: bytes::Bytes::new(),
            if_revision: Some(1),
        },
    }
    .encode()
    .len()
        - 1;
    let max_key = SnapshotLimits::default().max_key_len as usize;
    max_entry.saturating_sub(overhead + max_key)
}

impl From<&ServerConfig> for ReplicaConfig {
    /// The binary's flags (`crate::cli`), with the WAL synced.
    fn from(c: &ServerConfig) -> ReplicaConfig {
        ReplicaConfig {
            id: c.id,
            peers: c.peers.clone(),
            join: c.join,
            data_dir: c.data_dir.clone(),
            snapshot_count: c.snapshot_count,
            catch_up_entries: c.catch_up,
            http: c.http_config(),
            cluster_token: c.cluster_token.clone(),
            peer_listen: Some(c.peer_listen),
            tick_interval: c.tick_interval,
            election_ticks: c.election_ticks,
            heartbeat_ticks: c.heartbeat_ticks,
            pre_vote: c.pre_vote,
            check_quorum: c.check_quorum,
            fsync: true,
        }
    }
}

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
    use super::*;

    #[test]
    fn the_defaults_are_prevote_checkquorum_and_safe_read_index() {
        let peers = BTreeMap::from([(1, "http://127.0.0.1:12379".to_string())]);
        let node = ReplicaConfig::new(1, peers, "d".into()).node_config();
        assert!(node.raft.pre_vote && node.raft.check_quorum);
        assert_eq!(node.raft.read_only_option, ReadOnlyOption::Safe);
        assert_eq!(node.tick_interval, Duration::from_millis(100));
        assert_eq!((node.raft.election_tick, node.raft.heartbeat_tick), (10, 1));
        assert!(node.validate().is_ok());
    }

    #[test]
    fn a_put_of_the_largest_value_under_the_longest_key_fits_one_entry() {
        let max = max_value_bytes_limit();
        assert!(max >= 1 << 20, "the contract's 1 MiB default fits: {max}");
        let key = "k".repeat(SnapshotLimits::default().max_key_len as usize);
        let command = crate::command::Command {
            id: crate::command::RequestId {
                node: u64::MAX,
                seq: u64::MAX,
            },
            op: crate::command::Op::Put {
                key: crate::command::Key::new(key).unwrap(),
                value: bytes::Bytes::from(vec![0; max]),
                if_revision: Some(u64::MAX),
            },
        };
        let max_entry = NodeConfig::new(1, BTreeMap::new()).max_entry_size;
        assert_eq!(
            command.encode().len(),
            max_entry,
            "exactly the node's limit"
        );
    }

    #[test]
    fn a_node_missing_from_the_cluster_list_is_named() {
        let peers = BTreeMap::from([(1, "http://127.0.0.1:12379".to_string())]);
        let config = ReplicaConfig::new(3, peers, "d".into());
        let error = own_address(&config).unwrap_err().to_string();
        assert!(error.contains("node 3"), "{error}");
    }
}
