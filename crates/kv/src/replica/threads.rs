//! [`RaftKv::start`]: a node started over the given storage and transport, with the three
//! threads around it (apply, errors, read batcher) and the service in front.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Receiver;
use parking_lot::RwLock;
use raftwood_node::transport::{Transport, TransportEvent};
use raftwood_node::{
    Clock, ConfigError, DurableLog, Node, NodeConfig, NodeError, Outcome, StartFrom,
};

use super::reads::{self, ReadBatcher};
use super::waiters::Waiters;
use super::{RaftKv, Shared, apply, errors, seed};
use crate::snapshot::SnapshotLimits;
use crate::state::KvStore;

/// What the service needs besides the node: limits and its request timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceOptions {
    /// What a snapshot from the leader may hold (at least the HTTP value limit).
    pub snapshot_limits: SnapshotLimits,
    /// How long a request may wait for a leader, a commit or a read round: a request that finds
    /// no leader waits for one and tries again until then (an election takes a second or two),
    /// and is answered `Timeout` (or `NoLeader` if none was ever known) after it. Use the HTTP
    /// layer's request timeout.
    pub request_timeout: Duration,
}

impl Default for ServiceOptions {
    /// The default snapshot limits and the HTTP layer's default timeout, 5 s.
    fn default() -> ServiceOptions {
        ServiceOptions {
            snapshot_limits: SnapshotLimits::default(),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// A started replica: the service and its threads.
pub struct Replica {
    /// The service, for the HTTP layer.
    pub service: Arc<RaftKv>,
    /// The threads, to join when stopping.
    pub threads: ReplicaThreads,
}

/// The threads of a replica. The node's returns how it ended; the others end after it (the
/// node's channels close) and return nothing.
pub struct ReplicaThreads {
    /// The node loop.
    pub node: JoinHandle<Result<Outcome, NodeError>>,
    /// The apply thread; it returns why it gave up, if a snapshot could not be restored.
    pub apply: JoinHandle<Option<String>>,
    /// The errors thread.
    pub errors: JoinHandle<()>,
    /// The read batcher (it ends when the service is dropped or the node stops).
    pub reads: JoinHandle<()>,
}

impl ReplicaThreads {
    /// Waits for the node to end (it was asked to stop, or it was removed), then for the apply
    /// and errors threads to drain what it handed out. The read batcher is not waited for: it
    /// ends once the service (its other user) is dropped.
    ///
    /// A node the apply thread stopped because it could not restore a snapshot ended in failure,
    /// although the node itself reports a clean stop: that is a [`NodeError::Fatal`].
    pub fn join(self) -> Result<Outcome, NodeError> {
        let outcome = self
            .node
            .join()
            .unwrap_or_else(|_| Err(NodeError::Fatal("the node thread panicked".into())));
        let applied = self
            .apply
            .join()
            .unwrap_or_else(|_| Some("the apply thread panicked".into()));
        let _ = self.errors.join();
        match (outcome, applied) {
            (Ok(_), Some(failure)) => Err(NodeError::Fatal(failure)),
            (outcome, _) => outcome,
        }
    }
}

impl RaftKv {
    /// Starts a node with `config` from `start`, over `log` and `transport` (whose events come
    /// through `events`), ticking with `clock`; and the service's threads, with `options`.
    #[allow(clippy::too_many_arguments)]
    pub fn start<L: DurableLog, T: Transport + 'static, C: Clock>(
        config: NodeConfig,
        start: StartFrom,
        log: L,
        transport: T,
        events: Receiver<TransportEvent>,
        clock: C,
        options: ServiceOptions,
    ) -> Result<Replica, ConfigError> {
        let id = config.id;
        let store = Arc::new(RwLock::new(KvStore::new()));
        let snapshot_source = Arc::clone(&store);
        // raftexample's getSnapshot, called on the node's thread: a copy taken under the read
        // lock (cheap: values are shared `Bytes`), serialized after the lock is released so the
        // apply thread is not held up.
        let get_snapshot = move || -> Result<(u64, Bytes), String> {
            let copy = snapshot_source.read().clone();
            let mut bytes = Vec::new();
            copy.write_snapshot(&mut bytes).map_err(|e| e.to_string())?;
            Ok((copy.applied_index(), Bytes::from(bytes)))
        };
        let node = Node::start(config, start, log, transport, events, clock, get_snapshot)?;
        let seed = seed();
        let (batcher, read_queue, inbox) = ReadBatcher::new(id);
        let shared = Arc::new(Shared {
            id,
            handle: node.handle.clone(),
            store,
            writes: Waiters::new(),
            confs: Waiters::new(),
            reads: Arc::new(batcher),
            read_queue,
            next_seq: AtomicU64::new(seed),
            snapshot_limits: options.snapshot_limits,
            request_timeout: options.request_timeout,
            linearizable_reads: AtomicU64::new(0),
            serializable_reads: AtomicU64::new(0),
        });
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("raftwood-{name}-{id}"))
                .spawn(f)
                .map_err(|e| ConfigError::Spawn(e.to_string()))
        };
        let (s, apply_rx) = (Arc::clone(&shared), node.apply);
        let apply = std::thread::Builder::new()
            .name(format!("raftwood-apply-{id}"))
            .spawn(move || apply::run(s, apply_rx))
            .map_err(|e| ConfigError::Spawn(e.to_string()))?;
        let (s, errors_rx) = (Arc::clone(&shared), node.errors);
        let errors = spawn("errors", Box::new(move || errors::run(s, errors_rx)))?;
        let (b, handle) = (Arc::clone(&shared.reads), node.handle);
        let reads = spawn(
            "reads",
            Box::new(move || reads::run(b, inbox, handle, seed)),
        )?;
        Ok(Replica {
            service: Arc::new(RaftKv { shared }),
            threads: ReplicaThreads {
                node: node.thread,
                apply,
                errors,
                reads,
            },
        })
    }
}
