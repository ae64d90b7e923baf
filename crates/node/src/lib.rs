//! # raftwood-node: a running raft replica
//!
//! This crate is where the pure state machine of `raftwood-raft` meets a clock, a disk and a
//! network: etcd raftexample's `serveChannels` loop, the storage glue over `raftwood-wal` and
//! `raftwood-snap`, and a TCP peer transport. It knows nothing of the application it replicates
//! for; the application talks to it through channels.
//!
//! ## Layout
//! - [`serve`]: [`serve_channels`], the `select!` loop, and [`Node::start`], which runs it on a
//!   thread.
//! - [`raft_node`]: [`RaftNode`], one method per event and `process_ready`, which handles each
//!   Ready in order: `messages` out; the snapshot file (synced); one WAL batch (marker, hard state,
//!   entries, one sync); the snapshot into memory and to the application; the entries into
//!   memory; `persisted_messages` out; committed entries, conf changes and read states to the
//!   application; `maybe_trigger_snapshot`; `advance`. The book's "The node loop" gives the
//!   reason for each step.
//! - [`app`], [`handle`]: what the application sends ([`Proposal`], [`ConfChangeRequest`], reads,
//!   transfers, stop through a [`NodeHandle`]) and receives ([`Apply`] items on a bounded
//!   channel, [`NodeError`]s); [`GetSnapshot`].
//! - [`durable`]: [`DurableLog`], the few disk operations the loop needs.
//! - [`transport`]: the [`transport::Transport`] seam and the in-memory network for tests.
//! - [`clock`]: [`RealClock`] and [`ManualClock`]. [`config`]: [`NodeConfig`]. [`stats`]:
//!   [`NodeStats`]. [`codec`]: the crate's one bincode codec. [`payload`]: the node's layer in
//!   every snapshot (the members' peer URLs around the application's bytes).
//!
//! ## Non-goals
//! No protocol logic (that is `raftwood-raft`), no knowledge of the application's data.

pub mod app;
mod apply_queue;
pub mod clock;
pub mod codec;
mod conf_context;
mod conf_history;
pub mod config;
pub mod durable;
pub mod handle;
pub mod payload;
pub mod raft_node;
pub mod serve;
pub mod stats;
pub mod storage;
pub mod transport;

pub use app::{Apply, ConfChangeRequest, DropReason, GetSnapshot, NodeError, Outcome, Proposal};
pub use clock::{Clock, ManualClock, RealClock};
pub use config::{ConfigError, NodeConfig};
pub use durable::{Batch, DurableError, DurableLog};
pub use handle::{NodeHandle, Stopped};
pub use raft_node::{AppReceivers, NodeStatus, RaftNode, StartFrom};
pub use serve::{Node, serve_channels};
pub use stats::{NodeStats, WalSyncStats};
