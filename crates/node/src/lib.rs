//! # raftwood-node: a running raft replica
//!
//! This crate is where the pure state machine of `raftwood-raft` meets a clock, a disk and a
//! network: etcd raftexample's `serveChannels` loop, the storage glue over `raftwood-wal` and
//! `raftwood-snap`, and a TCP peer transport. It knows nothing of the application it replicates
//! for; the application talks to it through channels.

pub mod app;
mod apply_queue;
pub mod clock;
pub mod codec;
mod conf_history;
pub mod config;
pub mod durable;
pub mod handle;
pub mod raft_node;
pub mod serve;
pub mod stats;
pub mod transport;

pub use app::{Apply, ConfChangeRequest, GetSnapshot, NodeError, Outcome, Proposal};
pub use clock::{Clock, ManualClock, RealClock};
pub use config::{ConfigError, NodeConfig};
pub use durable::{Batch, DurableError, DurableLog, Marker};
pub use handle::{NodeHandle, Stopped};
pub use raft_node::{AppReceivers, NodeStatus, RaftNode, StartFrom};
pub use serve::{Node, serve_channels};
pub use stats::NodeStats;
