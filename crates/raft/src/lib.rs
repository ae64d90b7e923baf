//! # raftwood-raft: the Raft state machine, sans I/O
//!
//! Raft (Ongaro and Ousterhout, "In Search of an Understandable Consensus Algorithm", 2014) keeps
//! a log replicated on a cluster of nodes so that every node applies the same commands in the same
//! order, as long as a majority of them are up and can talk. This crate is that algorithm and
//! nothing else: it does no I/O, has no clock, spawns no threads and draws no global randomness.
//! Time is a call to [`RawNode::tick`]; the network is [`RawNode::step`] in and
//! [`Ready::messages`] out; the disk is [`Ready::entries`] out and [`Storage`] in. Given the same
//! seed and the same calls, a node does exactly the same thing, which is what makes it testable.
//!
//! ## The properties (Raft Figure 3)
//! - **Election Safety**: at most one leader per term (§5.2) — one vote per node per term, and a
//!   majority to win; see [`election`].
//! - **Leader Append-Only**: a leader never overwrites or deletes its own entries (§5.3).
//! - **Log Matching**: two logs with an entry of the same index and term are identical up to it
//!   (§5.3) — the consistency check in [`replication`].
//! - **Leader Completeness**: a committed entry is in the log of every later leader (§5.4) — the
//!   up-to-date vote check and the current-term commit rule.
//! - **State Machine Safety**: no two nodes apply different entries at one index (§5.4.3); across
//!   snapshots too (§7): a snapshot holds only applied (committed) state, and a node that installs
//!   one never applies an index twice or skips one.
//!
//! The property tests (`tests/properties.rs`) check every one of them after every step of random
//! schedules with crashes and partitions.
//!
//! ## Layout
//! - [`types`], [`message`]: the values (entries, hard state, messages).
//! - `raft.rs`: the node's state in two halves, `Core` (what every role has) and `RoleState`
//!   (what only the current role has); the term rules, dispatch by role, the role transitions.
//! - [`election`]: timeouts, votes, PreVote, CheckQuorum.
//! - [`replication`]: appends, heartbeats, commitment, the follower's consistency check.
//! - [`conf_change`]: membership changes, one server at a time (thesis §4.1).
//! - [`progress`]: the leader's view of each follower, with flow control.
//! - `transfer.rs`: leadership transfer (thesis §3.10): `TimeoutNow` and the forced campaign.
//! - [`quorum`]: majority arithmetic.
//! - `log.rs`: the log as one node sees it (stable + unstable, and a snapshot to install).
//! - [`storage`]: the [`Storage`] trait and [`MemStorage`], with snapshots and compaction (§7).
//! - [`raw_node`]: [`RawNode`] and the [`Ready`] contract.
//! - [`read_only`]: linearizable reads without the log (ReadIndex and lease reads, thesis §6.4).
//! - `testkit` (feature `testkit`): a deterministic simulated network and the scenario language.
//!
//! ## Driving a node
//! The loop every application writes (etcd's raftexample calls it `serveChannels`):
//!
//! ```text
//! loop {
//!     on timer:    node.tick()
//!     on message:  node.step(m)
//!     on request:  node.propose(data)
//!     on read:     node.read_index(ctx)
//!     while node.has_ready() {
//!         let rd = node.ready();
//!         send rd.messages                      // may go at once
//!         persist rd.snapshot                   // first, if any (a leader's, to install)
//!         persist rd.hard_state, rd.entries     // WAL, then storage; sync if rd.must_sync
//!         send rd.persisted_messages            // only after persisting
//!         load rd.snapshot                      // its conf state is the node's now
//!         apply rd.committed_entries            // a conf change: node.apply_conf_change(&cc)
//!         serve rd.read_states                  // each once applied up to its index
//!         report rd.storage_failures
//!         node.advance();
//!     }
//!     now and then: storage.create_snapshot(applied, conf_state_at_applied, data); storage.compact(..)
//! }
//! ```
//! The rules and their reasons are on [`Ready`].
//!
//! ## Not here yet
//! Learners and joint consensus come in a later part. The seams are in place: [`EntryKind`],
//! [`ConfChangeStep`] (`#[non_exhaustive]`).

pub mod conf_change;
pub mod config;
pub mod election;
pub mod error;
mod log;
pub mod message;
pub mod progress;
pub mod quorum;
mod raft;
pub mod raw_node;
pub mod read_only;
pub mod replication;
mod rng;
pub mod storage;
#[cfg(feature = "testkit")]
pub mod testkit;
mod transfer;
pub mod types;

pub use conf_change::{ConfChange, ConfChangeError, ConfChangeStep};
pub use config::Config;
pub use error::{Error, ProposalDropped, StorageError, StorageFailure, TransferRejected};
pub use message::{Message, MessageBody};
pub use raw_node::{PeerStatus, RawNode, Ready, Status};
pub use read_only::{ReadOnlyOption, ReadState};
pub use storage::{MemStorage, RaftState, Storage};
pub use types::{
    ConfState, Entry, EntryKind, HardState, Index, NodeId, Role, Snapshot, SnapshotMetadata,
    SoftState, Term,
};
