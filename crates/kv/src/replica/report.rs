//! What the operator sees: `GET /v1/status` and `GET /v1/members` from the node's
//! [`NodeStatus`], `GET /metrics` from its [`raftwood_node::NodeStats`] and this service's read
//! counters.

use std::sync::atomic::Ordering;

use raftwood_node::storage::BUCKET_BOUNDS_MICROS;
use raftwood_node::{NodeStats, NodeStatus};

use super::Shared;
use crate::service::{
    Histogram, Member, MemberRole, MetricsSnapshot, PeerMetrics, PeerProgress, Role, Status,
};

/// The contract's status object. `applied` is the store's own applied index (what a read here
/// sees), which may trail the index the node has handed out.
pub(crate) fn status(node: &NodeStatus, applied: u64) -> Status {
    let raft = &node.raft;
    Status {
        id: raft.id,
        term: raft.hard_state.term,
        commit_index: raft.hard_state.commit,
        applied_index: applied,
        last_index: raft.last_index,
        snapshot_index: node.snapshot_index,
        role: role(raft.soft_state.role),
        leader: raft.soft_state.leader,
        progress: raft
            .progress
            .iter()
            .filter(|(id, _)| **id != raft.id)
            .map(|(&id, p)| PeerProgress {
                id,
                match_index: p.match_index,
                next_index: p.next_index,
            })
            .collect(),
    }
}

fn role(role: raftwood_raft::Role) -> Role {
    match role {
        raftwood_raft::Role::Follower => Role::Follower,
        raftwood_raft::Role::PreCandidate => Role::PreCandidate,
        raftwood_raft::Role::Candidate => Role::Candidate,
        raftwood_raft::Role::Leader => Role::Leader,
    }
}

/// The voters of the configuration this node applied, with their peer URLs (the node tracks
/// them from the cluster list and the conf changes' contexts, and carries them in snapshots).
pub(crate) fn members(node: &NodeStatus) -> Vec<Member> {
    node.members
        .iter()
        .map(|(&id, url)| Member {
            id,
            url: url.clone(),
            role: MemberRole::Voter,
        })
        .collect()
}

/// One scrape's numbers.
pub(crate) fn metrics(shared: &Shared) -> MetricsSnapshot {
    let node = shared.handle.status();
    let stats = shared.handle.stats();
    let get = NodeStats::get;
    let sent = stats.sent.lock().clone();
    let dropped = stats.unreachable.lock().clone();
    let mut peers: Vec<u64> = sent.keys().chain(dropped.keys()).copied().collect();
    peers.sort_unstable();
    peers.dedup();
    MetricsSnapshot {
        term: node.raft.hard_state.term,
        commit_index: node.raft.hard_state.commit,
        applied_index: shared.store.read().applied_index(),
        leader_changes: get(&stats.leader_changes),
        proposals: get(&stats.proposals),
        proposals_per_ready: proposals_per_ready(stats),
        proposals_per_ready_max: get(&stats.ready_entries_max),
        linearizable_reads: shared.linearizable_reads.load(Ordering::Relaxed),
        serializable_reads: shared.serializable_reads.load(Ordering::Relaxed),
        read_index_rounds: get(&stats.read_index_rounds),
        wal_sync_seconds: wal_sync_seconds(stats),
        snapshots: get(&stats.snapshots_taken),
        snapshot_seconds_total: get(&stats.snapshot_micros) as f64 / 1e6,
        peers: peers
            .into_iter()
            .map(|id| PeerMetrics {
                id,
                messages_sent: sent.get(&id).copied().unwrap_or(0),
                messages_dropped: dropped.get(&id).copied().unwrap_or(0),
            })
            .collect(),
    }
}

/// Entries per Ready, from the node's power-of-two buckets. On a leader these are the proposals
/// of one turn of the loop: the clients that shared one WAL sync and one append round.
fn proposals_per_ready(stats: &NodeStats) -> Histogram {
    let buckets = stats.ready_entries_histogram();
    let bounds = buckets
        .iter()
        .filter_map(|(b, _)| b.map(|b| b as f64))
        .collect();
    let counts = buckets.iter().map(|(_, c)| *c).collect();
    let sum = NodeStats::get(&stats.ready_entries) as f64;
    Histogram::from_counts(bounds, counts, sum)
        .unwrap_or_else(|| MetricsSnapshot::default().proposals_per_ready)
}

/// The WAL's sync latencies, in seconds, from the storage's microsecond buckets.
fn wal_sync_seconds(stats: &NodeStats) -> Histogram {
    let sync = stats.wal_sync.lock().clone();
    let bounds = BUCKET_BOUNDS_MICROS
        .iter()
        .map(|&us| us as f64 / 1e6)
        .collect();
    let counts = sync.latency.buckets().map(|(_, c)| c).collect();
    Histogram::from_counts(bounds, counts, sync.total.as_secs_f64())
        .unwrap_or_else(|| MetricsSnapshot::default().wal_sync_seconds)
}
