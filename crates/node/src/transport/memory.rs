//! An in-memory network for tests: a [`MemoryNetwork`] hub connects several nodes'
//! [`MemoryTransport`]s and event channels, delivers at once (never blocking: a full inbox, as
//! a full TCP queue, drops the message), can cut links and isolate nodes, and records every
//! message sent and dropped. A dropped message is reported back to its sender as
//! [`TransportEvent::Unreachable`] (a snapshot as a failed [`TransportEvent::SnapshotStatus`]),
//! a delivered snapshot as `ok`: returned from [`Transport::send`], as the TCP transport does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use raftwood_raft::{Message, MessageBody, NodeId};

use super::{Transport, TransportEvent};

#[derive(Default)]
struct Net {
    inboxes: BTreeMap<NodeId, Sender<TransportEvent>>,
    /// Directed links that drop everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Every snapshot message is dropped (a snapshot stream that breaks).
    drop_snapshots: bool,
    sent: Vec<Message>,
    dropped: Vec<Message>,
    /// `add_peer` / `remove_peer` calls, per node: `(node, peer, Some(url) | None)`.
    peer_changes: Vec<(NodeId, NodeId, Option<String>)>,
}

/// The hub. Clones share the same network.
#[derive(Clone, Default)]
pub struct MemoryNetwork {
    net: Arc<Mutex<Net>>,
}

/// One node's way out onto a [`MemoryNetwork`].
pub struct MemoryTransport {
    id: NodeId,
    net: Arc<Mutex<Net>>,
}

impl MemoryNetwork {
    /// An empty network.
    pub fn new() -> MemoryNetwork {
        MemoryNetwork::default()
    }

    /// Connects node `id`: its transport, and the channel of events for its loop. Unbounded:
    /// the step-by-step tests deliver a whole turn's messages before their recipient runs.
    pub fn join(&self, id: NodeId) -> (MemoryTransport, Receiver<TransportEvent>) {
        self.join_with(id, crossbeam_channel::unbounded())
    }

    /// As [`MemoryNetwork::join`], with an inbox of `capacity` events: a message to a node
    /// whose inbox is full is dropped and reported, as a full TCP queue does.
    pub fn join_bounded(
        &self,
        id: NodeId,
        capacity: usize,
    ) -> (MemoryTransport, Receiver<TransportEvent>) {
        self.join_with(id, crossbeam_channel::bounded(capacity))
    }

    fn join_with(
        &self,
        id: NodeId,
        (tx, rx): (Sender<TransportEvent>, Receiver<TransportEvent>),
    ) -> (MemoryTransport, Receiver<TransportEvent>) {
        self.net.lock().inboxes.insert(id, tx);
        let transport = MemoryTransport {
            id,
            net: Arc::clone(&self.net),
        };
        (transport, rx)
    }

    /// Drops every message between `a` and `b`, both ways.
    pub fn cut(&self, a: NodeId, b: NodeId) {
        let mut net = self.net.lock();
        net.cut.insert((a, b));
        net.cut.insert((b, a));
    }

    /// Cuts `id` off from every other node.
    pub fn isolate(&self, id: NodeId) {
        let ids: Vec<NodeId> = self.net.lock().inboxes.keys().copied().collect();
        for other in ids.into_iter().filter(|&o| o != id) {
            self.cut(id, other);
        }
    }

    /// Drops every snapshot message (`on`), as a snapshot stream that keeps breaking would,
    /// while other messages go through; reported to the sender as a failed
    /// [`TransportEvent::SnapshotStatus`].
    pub fn drop_snapshots(&self, on: bool) {
        self.net.lock().drop_snapshots = on;
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.net.lock().cut.clear();
    }

    /// Every message delivered so far, in order.
    pub fn sent(&self) -> Vec<Message> {
        self.net.lock().sent.clone()
    }

    /// Every message dropped so far, in order.
    pub fn dropped(&self) -> Vec<Message> {
        self.net.lock().dropped.clone()
    }

    /// The `add_peer` (with the URL) and `remove_peer` (`None`) calls, as `(node, peer, url)`.
    pub fn peer_changes(&self) -> Vec<(NodeId, NodeId, Option<String>)> {
        self.net.lock().peer_changes.clone()
    }
}

impl Transport for MemoryTransport {
    fn send(&mut self, messages: Vec<Message>) -> Vec<TransportEvent> {
        let mut events = Vec::new();
        let mut net = self.net.lock();
        for m in messages {
            let is_snapshot = matches!(m.body, MessageBody::Snapshot { .. });
            let to = m.to;
            let snapshot_dropped = is_snapshot && net.drop_snapshots;
            let link_up = !net.cut.contains(&(self.id, to)) && !snapshot_dropped;
            let delivered = link_up
                && net
                    .inboxes
                    .get(&to)
                    .is_some_and(|tx| tx.try_send(TransportEvent::Message(m.clone())).is_ok());
            let report = match (delivered, is_snapshot) {
                (true, true) => Some(TransportEvent::SnapshotStatus { to, ok: true }),
                (true, false) => None,
                (false, true) => Some(TransportEvent::SnapshotStatus { to, ok: false }),
                (false, false) => Some(TransportEvent::Unreachable(to)),
            };
            if delivered {
                net.sent.push(m);
            } else {
                net.dropped.push(m);
            }
            events.extend(report);
        }
        events
    }

    fn add_peer(&mut self, id: NodeId, url: &str) {
        self.net
            .lock()
            .peer_changes
            .push((self.id, id, Some(url.to_string())));
    }

    fn remove_peer(&mut self, id: NodeId) {
        self.net.lock().peer_changes.push((self.id, id, None));
    }
}
