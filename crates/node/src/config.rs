//! How a node is set up: who it is, who its peers are, how fast its clock ticks, the raft knobs
//! (passed through as a [`raftwood_raft::Config`]) and the loop's own limits.

use std::collections::BTreeMap;
use std::time::Duration;

use raftwood_raft::NodeId;

/// The configuration of one node.
///
/// ```
/// use raftwood_node::config::NodeConfig;
/// let c = NodeConfig::new(1, [(1, "http://127.0.0.1:9021".to_string())].into());
/// assert_eq!(c.snapshot_count, 10_000);
/// assert!(c.validate().is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id (never 0).
    pub id: NodeId,
    /// The initial cluster: every member's id and peer URL (raftexample's `--cluster`),
    /// this node included. A fresh node that does not `join` bootstraps with these voters.
    pub peers: BTreeMap<NodeId, String>,
    /// The node joins an existing cluster (raftexample's `--join`): it is not a voter until the
    /// conf change adding it is applied. It starts with `peers` minus itself as the voters (the
    /// configuration before its addition) and learns the changes from the leader (the log or a
    /// snapshot).
    pub join: bool,
    /// The interval between two ticks of the raft clock (raftexample: 100 ms).
    pub tick_interval: Duration,
    /// The raft knobs: election and heartbeat ticks, PreVote, CheckQuorum, size limits. Its `id`
    /// and `applied` are set by the node (from `id` and the restored snapshot).
    pub raft: raftwood_raft::Config,
    /// Take a snapshot of the application's state every this many applied entries
    /// (raftexample's `defaultSnapshotCount`, 10,000).
    pub snapshot_count: u64,
    /// The entries kept in memory below a snapshot, so that a follower slightly behind catches
    /// up from the log rather than by a whole snapshot (raftexample's `snapshotCatchUpEntriesN`,
    /// 10,000).
    pub snapshot_catch_up_entries: u64,
    /// The capacity of the channel of [`crate::app::Apply`] items to the application. When it is
    /// full the node holds committed entries back (see [`crate::app`]).
    pub apply_capacity: usize,
    /// The capacity of the channel of proposals from the application.
    pub proposal_capacity: usize,
    /// How many snapshots the storage keeps (at least 2, so that falling back to an older one
    /// stays possible if the newest is damaged).
    pub snapshots_to_keep: usize,
    /// The largest proposal accepted, in bytes (default 4 MiB); larger ones come back as
    /// [`crate::app::NodeError::ProposalDropped`] with [`crate::app::DropReason::TooLarge`].
    /// Raft sends at least one entry per append however large, so an entry that does not fit
    /// in one transport frame would stop replication to every follower for good. It must stay
    /// at most [`MAX_ENTRY_SIZE_LIMIT`], which leaves room in the transport's default frame
    /// ([`crate::transport::DEFAULT_MAX_FRAME_SIZE`]) for the message around the entry; a
    /// composition that lowers `TcpConfig::max_frame_size` lowers this with it.
    pub max_entry_size: usize,
    /// The most committed entries not yet handed to the application (commit index − applied
    /// index) before the loop stops taking proposals (default 5,000, etcd's
    /// `maxGapBetweenApplyAndCommitIndex`, its "too many requests"). Together with a backed-up
    /// apply channel it is what bounds the memory a slow application costs; see
    /// [`crate::app`].
    pub max_apply_gap: u64,
}

/// The largest `max_entry_size` allowed: the transport's default frame size less 64 KiB for the
/// append message around the entry (its header, the entry's index and term, the encoding).
pub const MAX_ENTRY_SIZE_LIMIT: usize = crate::transport::DEFAULT_MAX_FRAME_SIZE - (64 << 10);

/// Why a node could not be built from its [`NodeConfig`] and what it restored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A rule of the configuration is broken; the text says which.
    #[error("invalid node configuration: {0}")]
    Invalid(&'static str),
    /// The raft knobs contradict each other.
    #[error(transparent)]
    Raft(#[from] raftwood_raft::Error),
    /// The restored snapshot is not a node snapshot payload ([`crate::payload`]): a bug, or a
    /// data directory written by another version.
    #[error(transparent)]
    SnapshotPayload(#[from] crate::payload::PayloadError),
    /// The node's thread could not be started.
    #[error("cannot start the node's thread: {0}")]
    Spawn(String),
}

impl NodeConfig {
    /// raftexample's defaults for node `id` in the cluster `peers`.
    pub fn new(id: NodeId, peers: BTreeMap<NodeId, String>) -> NodeConfig {
        NodeConfig {
            id,
            peers,
            join: false,
            tick_interval: Duration::from_millis(100),
            raft: raftwood_raft::Config::new(id),
            snapshot_count: 10_000,
            snapshot_catch_up_entries: 10_000,
            apply_capacity: 1024,
            proposal_capacity: 4096,
            snapshots_to_keep: 2,
            max_entry_size: 4 << 20,
            max_apply_gap: 5_000,
        }
    }

    /// The voters a log without a snapshot starts from, the one place they are derived: with
    /// `join`, `peers` minus this node (the configuration before the change that adds it),
    /// otherwise all of `peers`. A fresh node bootstraps with them, and every composition passes
    /// them to the durable storage as well (`StorageOptions::bootstrap_voters`), which rebuilds
    /// a restarted log without a snapshot from them; [`crate::RaftNode::new`] refuses a restored
    /// storage that disagrees.
    ///
    /// ```
    /// use raftwood_node::config::NodeConfig;
    /// let peers = [(1, "http://a".to_string()), (2, "http://b".to_string())].into();
    /// let mut c = NodeConfig::new(2, peers);
    /// assert_eq!(c.bootstrap_voters(), [1, 2]);
    /// c.join = true;
    /// assert_eq!(c.bootstrap_voters(), [1]);
    /// ```
    pub fn bootstrap_voters(&self) -> Vec<NodeId> {
        self.peers
            .keys()
            .copied()
            .filter(|&v| !self.join || v != self.id)
            .collect()
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problem = if self.id == 0 {
            "id must not be 0"
        } else if !self.join && !self.peers.contains_key(&self.id) {
            "a bootstrapping node must be in its own peer list"
        } else if self.snapshot_count == 0 {
            "snapshot_count must be greater than 0"
        } else if self.apply_capacity == 0 || self.proposal_capacity == 0 {
            "queue capacities must be greater than 0"
        } else if self.snapshots_to_keep < 2 {
            "snapshots_to_keep must be at least 2"
        } else if self.tick_interval.is_zero() {
            "tick_interval must not be zero"
        } else if self.max_apply_gap == 0 {
            "max_apply_gap must be greater than 0"
        } else if self.max_entry_size == 0 || self.max_entry_size > MAX_ENTRY_SIZE_LIMIT {
            "max_entry_size must lie between 1 and MAX_ENTRY_SIZE_LIMIT (below the frame size)"
        } else {
            let mut raft = self.raft.clone();
            raft.id = self.id;
            return Ok(raft.validate()?);
        };
        Err(ConfigError::Invalid(problem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_broken_rule() {
        let peers: BTreeMap<NodeId, String> = [(1, "http://a".to_string())].into();
        let mut c = NodeConfig::new(1, peers.clone());
        c.snapshots_to_keep = 1;
        assert_eq!(
            c.validate(),
            Err(ConfigError::Invalid("snapshots_to_keep must be at least 2"))
        );
        let c = NodeConfig::new(2, peers.clone());
        assert!(c.validate().is_err(), "a bootstrapping node must be a peer");
        let mut c = NodeConfig::new(2, peers);
        c.join = true;
        assert!(
            c.validate().is_ok(),
            "a joining node need not be in its list"
        );
        let mut c = NodeConfig::new(1, [(1, "http://a".to_string())].into());
        c.max_entry_size = crate::transport::DEFAULT_MAX_FRAME_SIZE;
        assert!(c.validate().is_err(), "an entry must fit in a frame");
        let mut c = NodeConfig::new(1, [(1, "http://a".to_string())].into());
        c.raft.election_tick = 1;
        assert!(matches!(c.validate(), Err(ConfigError::Raft(_))));
    }
}
