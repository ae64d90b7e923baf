//! How a node is tuned: timeouts in ticks, flow-control limits, and the optional protocol
//! extensions (PreVote, CheckQuorum).

use crate::error::Error;
use crate::read_only::ReadOnlyOption;
use crate::types::{Index, NodeId};

/// The configuration of one Raft node. Build it with [`Config::new`] and adjust fields.
///
/// ```
/// use raftwood_raft::Config;
/// let mut c = Config::new(1);
/// c.pre_vote = true;
/// assert!(c.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id; never `0`.
    pub id: NodeId,
    /// Ticks without hearing from a leader before a follower starts an election. The actual
    /// timeout is drawn uniformly from `[election_tick, 2 * election_tick)` (Raft §5.2), so that
    /// split votes resolve. It is redrawn on every role or term change (each `become_*`: a new
    /// election, a new leader, a lost election), not when a message from the leader or a vote
    /// granted restarts the count of ticks; that count runs against the timeout last drawn.
    pub election_tick: usize,
    /// Ticks between a leader's heartbeats. Must be less than `election_tick`.
    pub heartbeat_tick: usize,
    /// The largest total entry size (see [`crate::Entry::size`]) in one append message; at least
    /// one entry is always sent. `u64::MAX` means unlimited.
    pub max_size_per_msg: u64,
    /// How many appends may be in flight to one follower in the replicate state before the leader
    /// waits for acknowledgements.
    pub max_inflight_msgs: usize,
    /// The largest total payload size (entry data, as etcd counts it) of the appends in flight to
    /// one follower in the replicate state, beside the count `max_inflight_msgs`; `0` means no
    /// byte limit. The window is full when either limit is reached, so a follower on a slow link
    /// holds at most this much of the leader's memory in unacknowledged appends whatever the entry
    /// sizes. Must be at least `max_size_per_msg` when set, so that one full append fits. etcd's
    /// `MaxInflightBytes`.
    pub max_inflight_bytes: u64,
    /// The largest total size (see [`crate::Entry::size`]) of the committed entries handed out in
    /// one [`crate::Ready`]; at least one entry is always handed out, and the rest follow in the
    /// next Readys, in order, none skipped or repeated. `u64::MAX` means unlimited. A node that
    /// restarts with a long committed log (or a follower catching up) would otherwise hand the
    /// application all of it in one batch, all held in memory at once. etcd's
    /// `MaxCommittedSizePerReady`.
    pub max_committed_size_per_ready: u64,
    /// A follower does not forward proposals to its leader; `propose` fails with
    /// [`crate::ProposalDropped::ForwardingDisabled`] naming the leader, and forwarded proposals
    /// are never sent. For applications that route requests to the leader themselves, and would
    /// rather not have a proposal travel (and possibly vanish) through a follower. etcd's
    /// `DisableProposalForwarding`.
    pub disable_proposal_forwarding: bool,
    /// The largest total payload size of entries a leader holds uncommitted before it drops new
    /// proposals; `0` means unlimited. Protects a leader that cannot reach a quorum from growing without end.
    pub max_uncommitted_entries_size: u64,
    /// Probe with PreVote before starting a real election (thesis §9.6), so that a node rejoining
    /// after a partition does not force the cluster into a new term.
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a quorum for an election timeout, and a
    /// follower that has heard from a leader within the timeout ignores vote requests (thesis §6.2).
    pub check_quorum: bool,
    /// How a leader confirms its leadership before answering a read ([`crate::RawNode::read_index`]):
    /// a quorum round (the default), or its lease, which requires `check_quorum`.
    pub read_only_option: ReadOnlyOption,
    /// The last index the application has already applied (when restarting); committed entries
    /// after it will be handed out again.
    pub applied: Index,
    /// The seed of this node's random generator (election-timeout jitter). Same seed, same inputs,
    /// same behaviour.
    pub seed: u64,
}

impl Config {
    /// A configuration with etcd's customary values: election after 10 ticks, heartbeat every tick
    /// (raftexample's ratio), 1 MiB messages, 256 appends in flight (no byte limit), no cap on the
    /// committed entries per Ready, proposals forwarded, no PreVote, no CheckQuorum, and a seed
    /// derived from the id.
    pub fn new(id: NodeId) -> Config {
        Config {
            id,
            election_tick: 10,
            heartbeat_tick: 1,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
            max_inflight_bytes: 0,
            max_committed_size_per_ready: u64::MAX,
            disable_proposal_forwarding: false,
            max_uncommitted_entries_size: 0,
            pre_vote: false,
            check_quorum: false,
            read_only_option: ReadOnlyOption::Safe,
            applied: 0,
            seed: id.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        }
    }

    /// Checks the values against each other.
    pub fn validate(&self) -> Result<(), Error> {
        let problem = if self.id == 0 {
            "id must not be 0"
        } else if self.heartbeat_tick == 0 {
            "heartbeat_tick must be greater than 0"
        } else if self.election_tick <= self.heartbeat_tick {
            "election_tick must be greater than heartbeat_tick"
        } else if self.max_inflight_msgs == 0 {
            "max_inflight_msgs must be greater than 0"
        } else if self.max_inflight_bytes != 0 && self.max_inflight_bytes < self.max_size_per_msg {
            "max_inflight_bytes must be 0 (no limit) or at least max_size_per_msg"
        } else if self.max_committed_size_per_ready == 0 {
            "max_committed_size_per_ready must be greater than 0 (u64::MAX for no limit)"
        } else if self.read_only_option == ReadOnlyOption::LeaseBased && !self.check_quorum {
            // Without CheckQuorum a leader cut off in a minority never steps down and followers
            // grant votes at any time, so a lease would mean nothing (thesis §6.4.1).
            "read_only_option LeaseBased requires check_quorum"
        } else {
            return Ok(());
        };
        Err(Error::Config(problem))
    }
}
