//! Nodes on their own threads ([`Node::start`]) over a memory network, with a real clock.
#![allow(clippy::unwrap_used, dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use raftwood_node::transport::memory::MemoryNetwork;
use raftwood_node::{Clock, Node, NodeConfig, RealClock, StartFrom};
use raftwood_raft::NodeId;

use super::{RecordingLog, RecordingTransport, Trace, config};

/// Starts node `id` of an `n`-node cluster on `net`, ticking every 2 ms.
pub fn start(net: &MemoryNetwork, id: NodeId, n: u64) -> (Node, Trace) {
    let clock = RealClock {
        interval: Duration::from_millis(2),
    };
    start_with(net, id, n, clock)
}

/// Starts node `id` of an `n`-node cluster on `net` with `clock`.
pub fn start_with(net: &MemoryNetwork, id: NodeId, n: u64, clock: impl Clock) -> (Node, Trace) {
    start_tuned(net, id, n, clock, |_| {})
}

/// Starts node `id` of an `n`-node cluster on `net` with `clock`, its configuration changed by
/// `tune` (snapshots are off unless `tune` turns them on).
pub fn start_tuned(
    net: &MemoryNetwork,
    id: NodeId,
    n: u64,
    clock: impl Clock,
    tune: impl FnOnce(&mut NodeConfig),
) -> (Node, Trace) {
    let (inner, events) = net.join(id);
    let trace: Trace = Arc::default();
    let log = RecordingLog {
        trace: Arc::clone(&trace),
        fail_next_save: Arc::new(Mutex::new(false)),
        fail_next_save_snap: Arc::new(Mutex::new(false)),
    };
    let transport = RecordingTransport {
        inner,
        trace: Arc::clone(&trace),
    };
    let mut cfg = config(id, n);
    cfg.snapshot_count = 1_000_000;
    tune(&mut cfg);
    let get_snapshot = || Ok((0, Bytes::new()));
    let node = Node::start(
        cfg,
        StartFrom::Fresh,
        log,
        transport,
        events,
        clock,
        get_snapshot,
    )
    .unwrap();
    (node, trace)
}

/// Waits (at most 10 s) until `node` names `leader` as leader.
pub fn wait_leader(node: &Node, leader: NodeId) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.handle.status().raft.soft_state.leader != Some(leader) {
        assert!(Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(1));
    }
}
