//! [`ReplicaConfig`]: what one server needs, the binary's raft settings
//! ([`ReplicaConfig::node_config`]) and the largest value a put may carry
//! ([`max_value_bytes_limit`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use raftwood_node::NodeConfig;
use raftwood_raft::ReadOnlyOption;

use crate::cli::ServerConfig;
use crate::http::HttpConfig;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

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
}
