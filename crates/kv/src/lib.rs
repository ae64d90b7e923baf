//! # raftwood-kv: the key-value example
//!
//! A replicated ordered map with a revision per key, served over HTTP with raftexample's routes
//! and native ones (`../shared/CONTRACT.md` in the repository), on top of `raftwood-node`.
//!
//! Layout:
//! - [`service`]: [`service::KvService`], the seam between HTTP and the replicated node, and
//!   [`service::memory::MemoryService`], an unreplicated one for tests and examples.
//! - [`http`]: the HTTP API (axum on tokio) over any [`service::KvService`].

pub mod http;
pub mod service;
