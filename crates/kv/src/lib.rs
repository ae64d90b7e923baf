//! # raftwood-kv: the key-value example
//!
//! A replicated ordered map with a revision per key, served over HTTP with raftexample's routes
//! and native ones (`../shared/CONTRACT.md` in the repository), on top of `raftwood-node`.
//!
//! ## Layout
//! - [`state`]: the replicated map ([`KvStore`]), its revisions and [`Outcome`]s.
//! - [`command`]: what travels through the raft log ([`Command`], [`Op`], [`Key`], [`RequestId`]).
//! - [`codec`]: the crate's one bincode codec, behind which every command is encoded.
//! - [`snapshot`]: the streamed snapshot format and its reader's limits.
//! - [`service`]: [`service::KvService`], the seam between HTTP and the replicated node, and
//!   [`service::memory::MemoryService`], an unreplicated one for tests and examples.
//! - [`http`]: the HTTP API (axum on tokio) over any [`service::KvService`].
//! - [`loadgen`]: the load tool behind `raftwood bench`.
//! - [`replica`]: [`replica::RaftKv`], the service over the raft node, and [`replica::run`], the
//!   whole server.
//! - [`cli`]: the `raftwood` command line and the [`cli::ServerConfig`] it produces.
//! - [`server`]: running a node from a [`cli::ServerConfig`].
//! - [`signals`]: SIGINT and SIGTERM, registered before start-up, for both commands.
//! - [`local_cluster`]: `raftwood local-cluster`, N local nodes as child processes, and the
//!   child's side of their parent pipe ([`local_cluster::watch_parent`]).

pub mod cli;
pub mod codec;
pub mod command;
pub mod http;
pub mod loadgen;
pub mod local_cluster;
pub mod replica;
pub mod server;
pub mod service;
pub mod signals;
pub mod snapshot;
pub mod state;

pub use command::{Command, EmptyKey, Key, Op, RequestId};
pub use snapshot::{SnapshotError, SnapshotLimits};
pub use state::{KvStore, Outcome, Value};
