//! An atomic, checksummed snapshot store.
//!
//! A Raft node bounds its log by snapshotting its state machine now and then (Raft §7). This crate
//! keeps those snapshots as files in one directory, `{term:016x}-{index:016x}.snap`, and promises:
//!
//! - **Atomic saves.** A snapshot is written to a temporary file, fsynced, renamed to its name,
//!   and the directory fsynced. A crash at any point leaves the old set of snapshots, or the old
//!   set plus the complete new one; leftover temporary files are removed on open.
//! - **Nothing damaged is ever loaded.** Each file carries a CRC-32 over its header, metadata and
//!   data; lengths are checked against the file's size before anything is allocated; a damaged
//!   file is a typed [`Error::Corrupt`] naming the file and the problem, never a panic.
//! - **Fallback.** [`Store::load_newest_of`] loads the newest valid snapshot among the ones the
//!   caller names (the node names those its WAL marks), skipping damaged ones with a warning.
//!
//! It knows nothing of Raft's types: a snapshot is an index, a term, the caller's metadata bytes
//! (such as the membership) and the caller's data bytes.
//!
//! ```
//! use raftwood_snap::{Store, SnapshotId};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path()).unwrap();
//! let id = SnapshotId { index: 42, term: 3 };
//! store.save(id, b"voters=1,2,3", &b"the state machine"[..]).unwrap();
//!
//! let snap = store.load_newest_of(store.list().unwrap()).unwrap().unwrap();
//! assert_eq!(snap.id, id);
//! assert_eq!(snap.metadata, b"voters=1,2,3");
//! assert_eq!(snap.data, b"the state machine");
//! ```
//!
//! # Layout
//! - [`id`]: [`SnapshotId`], what "newest" means, file names.
//! - [`format`](mod@format): the bytes of a file (header diagram), [`format::encode_to_vec`],
//!   [`format::decode`].
//! - `reader.rs`: [`SnapshotReader`], the one decoder, in the order that keeps hostile bytes
//!   harmless.
//! - `writer.rs`: [`SnapshotWriter`], the streaming, atomic save and its crash table.
//! - `store.rs`: [`Store`], the directory: save, list, load, fallback, remove, purge.
//! - `error.rs`: [`Error`] and [`Corruption`].
//!
//! # Non-goals
//! Compression, encryption, sending snapshots over the network (the node's job; [`format::decode`]
//! and [`format::encode_to_vec`] help), and deciding which snapshots are orphans (the node knows
//! its WAL's markers).

pub mod format;
pub mod id;

mod error;
mod reader;
mod store;
mod writer;

pub use error::{Corruption, Error};
pub use format::Snapshot;
pub use id::SnapshotId;
/// The file-system seam ([`Options::fs`]), re-exported so callers need not depend on it.
pub use raftwood_fsio as fsio;
pub use reader::SnapshotReader;
pub use store::{Options, Store};
pub use writer::SnapshotWriter;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
