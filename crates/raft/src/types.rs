//! The plain values Raft talks about: terms, indexes, log entries, and the state a node persists
//! (`HardState`) or merely reports (`SoftState`).
//!
//! Everything here derives serde so that the crates which write bytes (the WAL, the transport) can
//! encode it however they like; this crate never encodes anything itself.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A node's identity in the cluster. `0` is reserved for "nobody" and is rejected by [`crate::Config`].
pub type NodeId = u64;
/// A Raft term (Raft §5.1): a logical clock that only grows. Term `0` precedes every election.
pub type Term = u64;
/// A position in the replicated log. The first real entry has index `1`; index `0` is the empty prefix.
pub type Index = u64;

/// The state every node must persist before it answers a message (Raft Figure 2, "Persistent state
/// on all servers"), plus the commit index, which etcd also persists so that a restart need not
/// re-learn it.
///
/// ```
/// use raftwood_raft::HardState;
/// let hs = HardState { term: 3, vote: Some(2), commit: 7 };
/// assert_eq!(hs.vote, Some(2));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate that received this node's vote in `term`, if any.
    pub vote: Option<NodeId>,
    /// The highest log index known to be committed.
    pub commit: Index,
}

/// The role a node plays (Raft §5.1, Figure 4), plus PreCandidate from the thesis §9.6.
///
/// ```
/// use raftwood_raft::Role;
/// assert_ne!(Role::Leader, Role::Follower);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Answers leaders and candidates; starts an election when it hears from no leader.
    #[default]
    Follower,
    /// Asks whether it could win an election before disrupting anyone with a new term (PreVote).
    PreCandidate,
    /// Has started a new term and asks for votes (Raft §5.2).
    Candidate,
    /// Replicates its log to everyone else and decides what is committed (Raft §5.3).
    Leader,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        };
        f.write_str(name)
    }
}

/// Volatile state that an application may want to show (who leads, what this node is), but that
/// need not be persisted.
///
/// ```
/// use raftwood_raft::{Role, SoftState};
/// let ss = SoftState { leader: Some(1), role: Role::Follower };
/// assert_eq!(ss.leader, Some(1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftState {
    /// The leader this node currently follows (or itself, when leader); `None` when unknown.
    pub leader: Option<NodeId>,
    /// This node's role.
    pub role: Role,
}

/// What an entry carries: application data, or a membership change that Raft itself reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// Application data, opaque to Raft. A new leader's empty entry is a normal entry with no data.
    #[default]
    Normal,
    /// A membership change: `data` is a [`crate::ConfChange`] in its own encoding
    /// ([`crate::ConfChange::decode`]). Once committed, the application applies it with
    /// [`crate::RawNode::apply_conf_change`].
    ConfChange,
}

/// One entry of the replicated log (Raft §5.3): a command tagged with the term in which a leader
/// created it and its position.
///
/// `data` is [`Bytes`], so a payload is shared, not copied, between the log, messages and
/// committed entries.
///
/// ```
/// use raftwood_raft::{Entry, EntryKind};
/// let e = Entry { term: 1, index: 5, kind: EntryKind::Normal, data: "x=1".into() };
/// assert_eq!(e.data.as_ref(), b"x=1");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The entry's position in the log.
    pub index: Index,
    /// What the entry carries.
    pub kind: EntryKind,
    /// The payload, opaque to Raft.
    pub data: Bytes,
}

impl Entry {
    /// The size an entry counts for in `max_size_per_msg`: its payload plus a fixed overhead for
    /// term, index and kind, so that a batch of tiny entries still stays bounded.
    /// (`max_uncommitted_entries_size` counts payload bytes only, as etcd does, so that a new
    /// leader's empty entry is never refused.)
    pub fn size(&self) -> u64 {
        self.data.len() as u64 + ENTRY_OVERHEAD
    }
}

/// The bytes an entry costs beyond its payload in size accounting: term, index and kind.
pub const ENTRY_OVERHEAD: u64 = 17;

/// The cluster's voters: the configuration a log prefix (or snapshot) was taken under. A new
/// cluster's storage is created with one, as in etcd.
///
/// ```
/// use raftwood_raft::ConfState;
/// let cs = ConfState { voters: vec![1, 2, 3] };
/// assert_eq!(cs.voters.len(), 3);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfState {
    /// The ids of the voting members.
    pub voters: Vec<NodeId>,
}

/// What a snapshot covers: the last index and term it contains and the configuration at that index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMetadata {
    /// The last log index the snapshot includes.
    pub index: Index,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The voters as of `index`.
    pub conf_state: ConfState,
}

/// A snapshot of the application's state machine as of `metadata.index` (Raft §7): what replaces
/// the log up to that index. The application takes it ([`crate::MemStorage::create_snapshot`]); a
/// leader sends it to a follower that needs compacted entries; the follower gets it in
/// [`crate::Ready::snapshot`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// What the snapshot covers.
    pub metadata: SnapshotMetadata,
    /// The application's serialized state, opaque to Raft.
    pub data: Bytes,
}
