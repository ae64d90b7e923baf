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

/// The loop's way out. Every method returns at once: the loop never waits for the network
/// (a slow or dead peer must not stall raft). What cannot be sent is dropped and reported back
/// as [`TransportEvent::Unreachable`] (or, for a snapshot, [`TransportEvent::SnapshotStatus`]).
pub trait Transport: Send {
    /// Queues `messages` for their recipients.
    fn send(&mut self, messages: Vec<Message>);
    /// Starts talking to a member added by a conf change, at the peer URL the change carried.
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
