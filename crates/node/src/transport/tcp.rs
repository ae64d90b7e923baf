//! [`TcpTransport`]: the pieces put together. The loop calls [`Transport`] methods, which only
//! touch in-memory queues; the listener, reader and writer threads do all the I/O.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use parking_lot::{Mutex, RwLock};
use raftwood_raft::{Message, MessageBody, NodeId};

use super::error::TransportError;
use super::handshake::{DEFAULT_CLUSTER_TOKEN, cluster_id};
use super::peer::Peer;
use super::shared::{Members, Shared};
use super::url::PeerUrl;
use super::{Transport, TransportEvent, listener};
use crate::codec::DECODE_LIMIT;

/// How a [`TcpTransport`] is set up. [`TcpConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// This node's id.
    pub id: NodeId,
    /// The cluster token (etcd's `--initial-cluster-token`); default
    /// [`DEFAULT_CLUSTER_TOKEN`]. Peers with another token are refused.
    pub cluster_token: String,
    /// Where to accept peer connections (port 0: any free port, see
    /// [`TcpTransport::local_addr`]).
    pub listen: SocketAddr,
    /// The initial peers and their URLs (`http://host:port`), dialed exactly as given. This
    /// node's own id may be present (the binary passes the whole `--cluster` list); it is
    /// skipped.
    pub peers: BTreeMap<NodeId, String>,
    /// Messages queued per peer before new ones are dropped (default 4096, etcd's stream
    /// buffer).
    pub queue_len: usize,
    /// The largest frame accepted or sent, kind byte and payload (default
    /// [`super::DEFAULT_MAX_FRAME_SIZE`], 8 MiB; at most [`DECODE_LIMIT`]). Raft's maximum
    /// message size and the node's `max_entry_size` must stay below it.
    pub max_frame_size: usize,
    /// The data carried by one snapshot chunk frame (default 1 MiB; below `max_frame_size`).
    pub snapshot_chunk_size: usize,
    /// The largest snapshot a peer may send (default 1 GiB): it is reassembled in memory.
    pub max_snapshot_size: u64,
    /// The first reconnect delay (default 50 ms).
    pub backoff_min: Duration,
    /// The largest reconnect delay (default 2 s).
    pub backoff_max: Duration,
    /// Dial, handshake and write timeout, and how long a peer may take to finish a frame once
    /// its first byte arrived (default 5 s).
    pub io_timeout: Duration,
    /// Inbound connections open at once, handshaking or not (default 64).
    pub max_inbound: usize,
}

impl TcpConfig {
    /// The defaults, for node `id` listening on `listen` with `peers`.
    pub fn new(id: NodeId, listen: SocketAddr, peers: BTreeMap<NodeId, String>) -> TcpConfig {
        TcpConfig {
            id,
            cluster_token: DEFAULT_CLUSTER_TOKEN.to_string(),
            listen,
            peers,
            queue_len: 4096,
            max_frame_size: super::DEFAULT_MAX_FRAME_SIZE,
            snapshot_chunk_size: 1 << 20,
            max_snapshot_size: 1 << 30,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            io_timeout: Duration::from_secs(5),
            max_inbound: 64,
        }
    }

    fn validate(&self) -> Result<(), TransportError> {
        let bad = |why: &str| Err(TransportError::Config(why.to_string()));
        if self.queue_len == 0 {
            return bad("queue_len must be at least 1");
        }
        if self.max_frame_size > DECODE_LIMIT || self.max_frame_size < 64 {
            return bad("max_frame_size must lie between 64 bytes and the codec's DECODE_LIMIT");
        }
        if self.snapshot_chunk_size == 0 || self.snapshot_chunk_size >= self.max_frame_size {
            return bad("snapshot_chunk_size must be at least 1 and below max_frame_size");
        }
        if self.backoff_min.is_zero() || self.io_timeout.is_zero() || self.max_inbound == 0 {
            return bad("backoff_min, io_timeout and max_inbound must be above zero");
        }
        Ok(())
    }
}

/// The TCP peer transport: one listener thread, a reader thread per inbound connection, a
/// writer thread per outbound peer. See the book's "The peer transport" for the wire format.
pub struct TcpTransport {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    peers: BTreeMap<NodeId, Peer>,
    /// Writers of removed or replaced peers, told to stop and joined at shutdown (never on the
    /// loop's thread).
    retired: Vec<Peer>,
    listener: Option<JoinHandle<()>>,
}

impl TcpTransport {
    /// Binds the listen address and starts dialing every initial peer. Events of the
    /// transport's threads (messages received, connections lost, snapshot outcomes, removal) go
    /// to `events`, bounded ([`super::EVENTS_CAPACITY`]): while it is full, reader threads stop
    /// reading (TCP pushes back on the peers) and writer threads wait to report, until the loop
    /// drains it or the transport stops. Events raised inside [`Transport::send`] are returned
    /// to the loop instead.
    pub fn start(
        config: TcpConfig,
        events: Sender<TransportEvent>,
    ) -> Result<TcpTransport, TransportError> {
        let listener = TcpListener::bind(config.listen).map_err(|source| TransportError::Bind {
            addr: config.listen,
            source,
        })?;
        TcpTransport::start_with_listener(config, listener, events)
    }

    /// As [`TcpTransport::start`], on a listener the caller bound (`config.listen` is replaced
    /// by its address). Tests bind every node's listener on port 0 first and build the peer
    /// URLs from the ports the OS chose: no window in which another process could take a port
    /// between choosing and binding it.
    pub fn start_with_listener(
        mut config: TcpConfig,
        listener: TcpListener,
        events: Sender<TransportEvent>,
    ) -> Result<TcpTransport, TransportError> {
        config.validate()?;
        let mut urls = BTreeMap::new();
        for (&id, url) in config.peers.iter().filter(|(id, _)| **id != config.id) {
            let url =
                PeerUrl::parse(url).map_err(|source| TransportError::PeerUrl { id, source })?;
            urls.insert(id, url);
        }
        let bind = |source| TransportError::Bind {
            addr: config.listen,
            source,
        };
        listener.set_nonblocking(true).map_err(bind)?;
        let local_addr = listener.local_addr().map_err(bind)?;
        config.listen = local_addr;
        let shared = Arc::new(Shared {
            cluster_id: cluster_id(&config.cluster_token),
            members: RwLock::new(Members {
                known: urls.keys().copied().collect(),
                removed: Default::default(),
            }),
            config,
            events,
            stop: Default::default(),
            inbound: Mutex::new(BTreeMap::new()),
        });
        let mut transport = TcpTransport {
            shared: Arc::clone(&shared),
            local_addr,
            peers: BTreeMap::new(),
            retired: Vec::new(),
            listener: None,
        };
        let accept = Arc::clone(&shared);
        transport.listener = Some(
            std::thread::Builder::new()
                .name(format!("peer-listener-{}", shared.config.id))
                .spawn(move || listener::run(accept, listener))
                .map_err(TransportError::Spawn)?,
        );
        for (id, url) in urls {
            let peer = Peer::spawn(Arc::clone(&shared), id, url).map_err(TransportError::Spawn)?;
            transport.peers.insert(id, peer);
        }
        tracing::info!(id = shared.config.id, addr = %local_addr, "peer transport listening");
        Ok(transport)
    }

    /// The address the listener is bound to (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops every thread and closes every socket. Bounded in time: blocked threads wake at
    /// least every 50 ms and blocked reads and writes are aborted by closing their sockets; the
    /// one wait that cannot be cut short is a dial in progress to an address that does not
    /// answer, at most `io_timeout`.
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        if self.shared.stop.swap(true, Ordering::AcqRel) {
            return;
        }
        let peers = std::mem::take(&mut self.peers)
            .into_values()
            .chain(self.retired.drain(..))
            .collect::<Vec<_>>();
        for peer in &peers {
            peer.stop();
        }
        for (_, (_, stream)) in std::mem::take(&mut *self.shared.inbound.lock()) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        if let Some(listener) = self.listener.take()
            && listener.join().is_err()
        {
            tracing::error!("peer listener thread panicked");
        }
        for peer in peers {
            peer.join();
        }
        tracing::info!(id = self.shared.config.id, "peer transport stopped");
    }

    fn retire(&mut self, id: NodeId) {
        if let Some(peer) = self.peers.remove(&id) {
            peer.stop();
            self.retired.push(peer);
        }
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.stop_all();
    }
}

impl Transport for TcpTransport {
    fn send(&mut self, messages: Vec<Message>) -> Vec<TransportEvent> {
        let mut events = Vec::new();
        for message in messages {
            let to = message.to;
            let Some(peer) = self.peers.get(&to) else {
                tracing::debug!(%message, "no such peer; message dropped");
                events.push(TransportEvent::Unreachable(to));
                continue;
            };
            let Err(dropped) = peer.offer(message) else {
                continue;
            };
            if let MessageBody::Snapshot { .. } = dropped.body {
                events.push(TransportEvent::SnapshotStatus { to, ok: false });
            }
            if peer.first_drop() {
                tracing::debug!(
                    peer = to,
                    "peer unreachable or its queue full; dropping messages"
                );
                events.push(TransportEvent::Unreachable(to));
            }
        }
        events
    }

    /// A member in this node's own `--cluster` list (`TcpConfig::peers`) is dialed at the URL
    /// the list gives, whatever the conf change says: each node routes its peer traffic as its
    /// operator configured it (through a proxy, say), and a change's URL is only for members the
    /// list does not name. So for such an id this does nothing while its writer runs, and after
    /// a `remove_peer` re-adds it at the configured URL.
    fn add_peer(&mut self, id: NodeId, url: &str) {
        if id == self.shared.config.id {
            return;
        }
        let configured = self.shared.config.peers.get(&id);
        if let Some(configured) = configured
            && configured != url
        {
            tracing::debug!(
                peer = id,
                configured = %configured,
                ignored = %url,
                "peer is in the --cluster list; its configured URL is kept"
            );
        }
        let url = match PeerUrl::parse(configured.map_or(url, String::as_str)) {
            Ok(url) => url,
            Err(e) => {
                tracing::error!(peer = id, "cannot add peer: {e}");
                return;
            }
        };
        {
            let mut members = self.shared.members.write();
            members.removed.remove(&id);
            members.known.insert(id);
        }
        if self.peers.get(&id).is_some_and(|p| *p.url() == url) {
            return;
        }
        self.retire(id);
        match Peer::spawn(Arc::clone(&self.shared), id, url) {
            Ok(peer) => {
                self.peers.insert(id, peer);
            }
            Err(e) => tracing::error!(peer = id, "cannot start the peer's writer: {e}"),
        }
    }

    fn remove_peer(&mut self, id: NodeId) {
        {
            let mut members = self.shared.members.write();
            members.known.remove(&id);
            members.removed.insert(id);
            // Under the membership lock: a handshake judged before this point registered its
            // connection already, and is closed here; one judged after is told "removed".
            self.shared.close_inbound(id, None);
        }
        self.retire(id);
        // Joining here could wait on a stalled socket; reap those already done instead.
        let (done, running): (Vec<_>, Vec<_>) =
            self.retired.drain(..).partition(|p| p.is_finished());
        self.retired = running;
        done.into_iter().for_each(Peer::join);
    }
}
