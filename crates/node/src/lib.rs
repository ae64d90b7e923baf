//! # raftwood-node: a running raft replica
//!
//! This crate is where the pure state machine of `raftwood-raft` meets a clock, a disk and a
//! network: etcd raftexample's `serveChannels` loop, the storage glue over `raftwood-wal` and
//! `raftwood-snap`, and a TCP peer transport. It knows nothing of the application it replicates
//! for; the application talks to it through channels.

pub mod codec;
pub mod storage;
pub mod transport;
