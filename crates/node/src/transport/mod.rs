//! How messages leave and reach the loop. The loop sees only [`Transport`] (out) and a channel of
//! [`TransportEvent`]s (in), so tests can put an in-memory network where the TCP transport goes.
//!
//! The TCP transport ([`TcpTransport`]) is built from one file per job: [`url`] (peer URLs),
//! [`frame`] (framing and the pure frame decoder), [`handshake`] (who may connect),
//! [`snapshot`] (chunking and reassembly), `backoff` (reconnect delays), `peer` (one outbound
//! connection: bounded queue and writer thread), `listener` (accepting, reader threads) and
//! `tcp` (the whole). The wire format is drawn in the book's "The peer transport".
//! [`memory`] is the in-memory network the loop's tests use instead.

mod backoff;
pub mod error;
pub mod frame;
pub mod handshake;
mod listener;
pub mod memory;
mod peer;
mod shared;
pub mod snapshot;
mod tcp;
pub mod url;

pub use error::{FrameError, HandshakeError, SnapshotError, TransportError, UrlError};
pub use handshake::{DEFAULT_CLUSTER_TOKEN, cluster_id};
pub use tcp::{TcpConfig, TcpTransport};
pub use url::PeerUrl;

use raftwood_raft::{Message, NodeId};

/// The default largest frame (`TcpConfig::max_frame_size`), 8 MiB. The node's
/// `NodeConfig::max_entry_size` is checked against it: one entry must fit in one frame.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 8 << 20;

/// The capacity of the events channel every composition of the node gives its transport
/// (`crossbeam_channel::bounded(EVENTS_CAPACITY)`). Bounded, so that a loop busy in a long fsync
/// holds back its peers (their reader threads wait, TCP pushes back) instead of queueing their
/// messages without limit. Nothing the loop must hear is lost to it: events raised inside
/// [`Transport::send`] are returned to the loop, not queued, and the writer threads' snapshot
/// outcomes wait for room (the loop always drains the channel; a stopping transport lets them go).
pub const EVENTS_CAPACITY: usize = 1024;

/// The loop's way out. Every method returns at once: the loop never waits for the network
/// (a slow or dead peer must not stall raft). What cannot be sent is dropped and reported back
/// as [`TransportEvent::Unreachable`] (or, for a snapshot, [`TransportEvent::SnapshotStatus`]).
pub trait Transport: Send {
    /// Queues `messages` for their recipients. Returns the events raised on the spot (a message
    /// dropped because its peer is down or its queue full: [`TransportEvent::Unreachable`], a
    /// dropped snapshot: a failed [`TransportEvent::SnapshotStatus`]); the loop applies them at
    /// once. Returned rather than put in the events channel, which may be full: a lost
    /// `SnapshotStatus` would leave raft's progress of that follower in its snapshot state, and
    /// the follower would get nothing more this term.
    #[must_use = "the events raised by a send must reach raft"]
    fn send(&mut self, messages: Vec<Message>) -> Vec<TransportEvent>;
    /// Starts talking to a member added by a conf change, at the peer URL the change carried
    /// (unless this node's own peer list names the member: its URL there wins).
    fn add_peer(&mut self, id: NodeId, url: &str);
    /// Stops talking to a removed member, and tells it it was removed if it calls again.
    fn remove_peer(&mut self, id: NodeId);
}

/// What the transport hands the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// A message from a peer, to be stepped into raft.
    Message(Message),
    /// A message to this peer was dropped (queue full, connection down): raft is told
    /// ([`raftwood_raft::RawNode::report_unreachable`]).
    Unreachable(NodeId),
    /// A snapshot to `to` was delivered (`ok`) or failed
    /// ([`raftwood_raft::RawNode::report_snapshot`]).
    SnapshotStatus {
        /// The follower the snapshot was for.
        to: NodeId,
        /// Whether it arrived whole.
        ok: bool,
    },
    /// A peer told this node it has been removed from the cluster: the node stops (and the
    /// binary exits with status 0, as etcd's removed members do).
    Removed {
        /// The peer that said so.
        by: NodeId,
    },
}
