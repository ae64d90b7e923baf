//! What the transport's threads share: the configuration, the membership the acceptor judges
//! handshakes by, the registry of inbound connections, the stop flag and the way events reach
//! the loop.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{SendTimeoutError, Sender};
use parking_lot::{Mutex, RwLock};
use raftwood_raft::NodeId;

use super::TransportEvent;
use super::tcp::TcpConfig;

/// How often a blocked thread wakes to look at the stop flag: the bound on shutdown latency.
pub(crate) const POLL: Duration = Duration::from_millis(50);

/// Who may connect.
#[derive(Debug, Default)]
pub(crate) struct Members {
    /// Initial peers and peers added since.
    pub known: BTreeSet<NodeId>,
    /// Peers removed since start: told so when they call.
    pub removed: BTreeSet<NodeId>,
}

/// The state every transport thread holds an `Arc` of.
pub(crate) struct Shared {
    pub config: TcpConfig,
    pub cluster_id: u64,
    pub events: Sender<TransportEvent>,
    pub stop: AtomicBool,
    pub members: RwLock<Members>,
    /// The accepted connection of each peer, with its serial number: a new connection from the
    /// same peer replaces (closes) the old one, so a half-dead connection cannot pin a reader
    /// thread forever, and removing a peer closes its connection.
    pub inbound: Mutex<BTreeMap<NodeId, (u64, TcpStream)>>,
}

impl Shared {
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Hands `event` to the loop from a transport thread, waiting while the channel is full
    /// (back-pressure on the peer) but never past shutdown. False if it was not delivered.
    /// Never called on the loop's thread (which drains the channel: waiting there would
    /// deadlock); what [`super::Transport::send`] raises is returned to the loop instead.
    pub fn emit(&self, mut event: TransportEvent) -> bool {
        loop {
            match self.events.send_timeout(event, POLL) {
                Ok(()) => return true,
                Err(SendTimeoutError::Timeout(back)) if !self.stopping() => event = back,
                Err(_) => return false,
            }
        }
    }

    /// Forgets the inbound connection of `peer` and closes it, if it is the one numbered
    /// `serial` (or any, with `None`).
    pub fn close_inbound(&self, peer: NodeId, serial: Option<u64>) {
        let mut inbound = self.inbound.lock();
        if let Some((s, stream)) = inbound.get(&peer)
            && serial.is_none_or(|want| want == *s)
        {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            inbound.remove(&peer);
        }
    }
}
