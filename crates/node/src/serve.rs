//! The loop itself, raftexample's `serveChannels`: wait for the next event, hand it to the
//! [`RaftNode`], handle the Readys it produced, again. And [`Node::start`], which spawns it.
//!
//! ```text
//! raftexample (Go)                          raftwood
//! for {                                     loop {
//!   select {                                  select! {
//!   case <-ticker.C:                            recv(ticks)        => node.on_tick(),
//!   case prop := <-proposeC:  (a goroutine)     recv(proposals)    => node.on_proposals(..),
//!   case cc := <-confChangeC: (a goroutine)     recv(conf_changes) => node.on_conf_change(..),
//!                                               recv(reads)        => node.on_read_index(..),
//!                                               recv(transfers)    => node.on_transfer_leader(..),
//!   case rd := <-node.Ready():                  (after every event: node.process_ready())
//!   (rafthttp calls rc.Process(m):              recv(events)       => node.on_transport_event(..),
//!    node.Step, on the transport's goroutine;
//!    ReportUnreachable, ReportSnapshot too)
//!   case err := <-transport.ErrorC:             Err on recv(events): the transport is gone,
//!     writeError(err); return (fatal)             a fatal error
//!   case <-stopc:                               recv(stop)         => node.request_stop(),
//!                                               send(apply, item)  => (a waiting Apply item)
//!   }                                         }
//! }                                         }
//! ```

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, select};

use crate::app::{GetSnapshot, NodeError, Outcome};
use crate::clock::Clock;
use crate::config::{ConfigError, NodeConfig};
use crate::durable::DurableLog;
use crate::handle::{Inbox, NodeHandle};
use crate::raft_node::{AppReceivers, RaftNode, StartFrom};
use crate::transport::{Transport, TransportEvent};

/// The most proposals taken from the channel in one turn: they share a Ready, a WAL batch and one
/// sync (group commit); the bound keeps one turn short.
pub const MAX_PROPOSALS_PER_TURN: usize = 1024;

/// The most transport events taken from the channel in one turn. What the peers sent while the
/// loop was busy (most often: during its WAL sync) is stepped into raft together, so that it
/// makes one Ready: a follower writes the appends that queued up during its last sync as one
/// batch with one sync, and a leader counts all the acknowledgements before it hands out what
/// they commit. The bound keeps one turn short.
pub const MAX_EVENTS_PER_TURN: usize = 1024;

/// The channels the loop waits on.
pub struct Channels {
    /// The clock's ticks.
    pub ticks: Receiver<std::time::Instant>,
    /// The transport's events.
    pub events: Receiver<TransportEvent>,
    /// What the application sends.
    pub inbox: Inbox,
}

/// Runs `node` until it stops: the application asks (or drops every [`NodeHandle`]), a conf
/// change removes it, or durable storage fails. Returns how it ended.
pub fn serve_channels<L: DurableLog, T: Transport>(
    mut node: RaftNode<L, T>,
    ch: Channels,
) -> Result<Outcome, NodeError> {
    let inbox = &ch.inbox;
    // The proposals arm while the application is behind: never ready, so proposals stay in
    // their bounded channel (`RaftNode::accepts_proposals`).
    let held = crossbeam_channel::never();
    if let Err(e) = node.process_ready() {
        return Err(node.fail(e));
    }
    while node.stopping().is_none() {
        let apply_tx = node.apply_queue().front_sender();
        let proposals = if node.accepts_proposals() {
            &inbox.proposals
        } else {
            &held
        };
        select! {
            recv(ch.ticks) -> _ => node.on_tick(),
            recv(proposals) -> p => match p {
                Ok(p) => {
                    let more = inbox.proposals.try_iter().take(MAX_PROPOSALS_PER_TURN - 1);
                    node.on_proposals(std::iter::once(p).chain(more));
                }
                // raftexample: closing proposeC shuts the node down.
                Err(_) => node.request_stop(),
            },
            recv(inbox.conf_changes) -> cc => match cc {
                Ok(cc) => node.on_conf_change(cc),
                Err(_) => node.request_stop(),
            },
            recv(inbox.reads) -> r => match r {
                Ok(ctx) => node.on_read_index(ctx),
                Err(_) => node.request_stop(),
            },
            recv(inbox.transfers) -> t => match t {
                Ok(to) => node.on_transfer_leader(to),
                Err(_) => node.request_stop(),
            },
            recv(inbox.stop) -> _ => node.request_stop(),
            recv(ch.events) -> ev => match ev {
                Ok(ev) => {
                    let more = ch.events.try_iter().take(MAX_EVENTS_PER_TURN - 1);
                    std::iter::once(ev).chain(more).for_each(|ev| node.on_transport_event(ev));
                }
                Err(_) => {
                    let e = NodeError::Fatal("the transport closed its event channel".into());
                    return Err(node.fail(e));
                }
            },
            send(apply_tx, node.apply_queue().take_front()) -> res => node.apply_queue().sent(res),
        }
        // The Ready in hand is always finished: a stop takes effect between Readys.
        if let Err(e) = node.process_ready() {
            return Err(node.fail(e));
        }
    }
    node.finish()
}

/// A node running on its own thread, and the application's ends of its channels.
pub struct Node {
    /// Requests in, status and counters out. Clone it freely; dropping every clone stops the
    /// node, as closing raftexample's `proposeC` does.
    pub handle: NodeHandle,
    /// Committed entries, conf changes, snapshots and read states, in order. Bounded: see
    /// [`crate::app`] for what the node does when it is full. It closes when the node stops.
    pub apply: Receiver<crate::app::Apply>,
    /// Errors answering requests, and a fatal error before the node stops.
    pub errors: Receiver<NodeError>,
    /// The loop's thread, returning how it ended.
    pub thread: JoinHandle<Result<Outcome, NodeError>>,
}

impl Node {
    /// Builds a [`RaftNode`] and runs [`serve_channels`] on a new thread.
    ///
    /// `transport` sends to the peers and `events` brings what they send; `clock` ticks;
    /// `get_snapshot` is raftexample's `getSnapshot`.
    pub fn start<L: DurableLog, T: Transport + 'static, C: Clock>(
        config: NodeConfig,
        start: StartFrom,
        log: L,
        transport: T,
        events: Receiver<TransportEvent>,
        clock: C,
        get_snapshot: impl GetSnapshot,
    ) -> Result<Node, ConfigError> {
        let id = config.id;
        let proposal_capacity = config.proposal_capacity;
        let (node, AppReceivers { apply, errors }) =
            RaftNode::new(config, start, log, transport, Box::new(get_snapshot))?;
        let (handle, inbox) = NodeHandle::new(proposal_capacity, node.status(), node.stats());
        let ch = Channels {
            ticks: clock.ticks(),
            events,
            inbox,
        };
        let thread = std::thread::Builder::new()
            .name(format!("raftwood-node-{id}"))
            .spawn(move || serve_channels(node, ch))
            .map_err(|e| ConfigError::Spawn(e.to_string()))?;
        Ok(Node {
            handle,
            apply,
            errors,
            thread,
        })
    }
}
