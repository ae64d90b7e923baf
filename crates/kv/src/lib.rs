//! # raftwood-kv: the key-value example
//!
//! A replicated ordered map with a revision per key, served over HTTP with raftexample's routes
//! and native ones (`../shared/CONTRACT.md` in the repository), on top of `raftwood-node`.
