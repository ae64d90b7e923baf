//! A segmented, checksummed, crash-safe write-ahead log that knows nothing of raft.
//!
//! A raft node may only answer after its hard state and entries are durable, and must come back
//! from a crash with exactly what it had made durable. This crate keeps that promise for any
//! caller with records of three kinds:
//!
//! - **entries**: `(index, bytes)`; an entry at index `i` replaces every entry previously written at
//!   `i` and after (a suffix overwrite, as when a new leader corrects a follower's log);
//! - **state**: opaque bytes; replay reports the newest (a raft node stores its hard state here);
//! - **snapshot markers**: `(index, term)`; replay reports every marker still held, so a node can
//!   pick a snapshot the log covers. A *log-resetting* marker ([`Wal::append_reset_marker`], for
//!   a snapshot installed over a conflicting log) also drops every entry and marker written
//!   before it, at any index.
//!
//! Records are *staged* with [`Wal::append_entry`], [`Wal::append_state`],
//! [`Wal::append_marker`] and [`Wal::append_reset_marker`]; [`Wal::sync`] ends the batch with a commit record and makes it durable
//! with one `fdatasync` (group commit; the batch goes to the kernel in one `write`, or in pieces
//! of about 1 MiB if it is larger). [`Wal::release`] drops segments wholly below
//! an index once a snapshot covers them. [`Wal::open`] recovers and returns a [`Replay`].
//!
//! # Durability, precisely
//! - When `sync` returns `Ok`, every record staged before it survives a crash of the process or
//!   the machine (given the assumptions in the README: the disk honours `fdatasync`).
//! - Records staged after the last `sync` may be lost; never a part of a batch: a batch comes back
//!   whole or not at all.
//! - A new segment, a rename and a removal are durable once the call that made them returns (the
//!   directory is synced).
//! - What [`Wal::open`] hands back is durable when it returns (it syncs the newest segment).
//! - A failed write or sync poisons the `Wal` ([`Error::Poisoned`]), which is fatal for the
//!   process: a reopen in the same process is refused.
//!
//! # Layout
//! | file | job |
//! |---|---|
//! | `format.rs` | the byte format: names, header, frames (pure) |
//! | `decode.rs` | the segment decoder, the gateway for bytes from disk (fuzzed) |
//! | `segment.rs` | segment files: listing, atomic creation, directory sync |
//! | `replay.rs` | what the log holds ([`Replay`]) and the overwrite rule |
//! | `recovery.rs` | recovery on open and the [`RecoveryMode`] policy for damage |
//! | `wal.rs` | the writer, [`Wal`] |
//! | `thread.rs` | [`WalThread`]: syncing off the caller's loop, with group commit |
//! | `error.rs` | the one [`Error`] type |
//!
//! Every call that writes, syncs, renames, removes or truncates a file goes through
//! [`Options::fs`] (the [`fsio`] seam), so tests can record their order and fail any of them.
//!
//! # Example: the shape of a raft node's use
//! A raft entry `(index, term, data)` becomes an entry whose bytes start with the term; the hard
//! state `(term, vote, commit)` becomes the state bytes. The mapping lives in the node, and this is
//! all of it (the test `tests/raft_shape.rs` runs the same thing through a crash):
//!
//! ```
//! use raftwood_wal::{Marker, Options, Wal};
//!
//! fn encode_entry(term: u64, data: &[u8]) -> Vec<u8> {
//!     [&term.to_le_bytes()[..], data].concat()
//! }
//! fn encode_hard_state(term: u64, vote: u64, commit: u64) -> Vec<u8> {
//!     [term, vote, commit].iter().flat_map(|n| n.to_le_bytes()).collect()
//! }
//!
//! # fn main() -> Result<(), raftwood_wal::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! {
//!     let (mut wal, replay) = Wal::open(dir.path(), Options::default())?;
//!     assert!(replay.entries.is_empty() && replay.state.is_none());
//!     // One Ready: two entries and the hard state, made durable with one sync.
//!     wal.append_entry(1, &encode_entry(1, b"x=1"))?;
//!     wal.append_entry(2, &encode_entry(1, b"y=2"))?;
//!     wal.append_state(&encode_hard_state(1, 1, 2))?;
//!     wal.sync()?;
//!     // A new leader overwrites index 2.
//!     wal.append_entry(2, &encode_entry(2, b"y=3"))?;
//!     wal.append_state(&encode_hard_state(2, 0, 2))?;
//!     wal.sync()?;
//!     // A snapshot at index 1 was saved: mark it, then release what lies wholly below it.
//!     wal.append_marker(Marker { index: 1, term: 1 })?;
//!     wal.sync()?;
//!     wal.release(1)?;
//! }
//! let (_wal, replay) = Wal::open(dir.path(), Options::default())?;
//! assert_eq!(replay.state.as_deref(), Some(&encode_hard_state(2, 0, 2)[..]));
//! assert_eq!(replay.last_marker(), Some(Marker { index: 1, term: 1 }));
//! let after_snapshot = replay.entries_after(1);
//! assert_eq!(after_snapshot.len(), 1);
//! assert_eq!(after_snapshot[0].data[..], encode_entry(2, b"y=3")[..]);
//! # Ok(())
//! # }
//! ```
//!
//! # Non-goals
//! Reading entries back while running (a raft node keeps them in memory), compression,
//! encryption, and salvaging a log past real corruption.

pub mod decode;
mod error;
pub mod format;
mod recovery;
mod replay;
mod segment;
mod thread;
mod wal;

pub use error::{Error, Result};
/// The file-system seam ([`Options::fs`]), re-exported so callers need not depend on it.
pub use raftwood_fsio as fsio;
pub use recovery::RecoveryMode;
pub use replay::{Entry, Marker, Replay, TornTail};
pub use thread::{Batch, Ticket, WalThread};
pub use wal::{ActiveSegment, LOCK_FILE, Options, Wal};

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
