//! The few file-system calls that make data durable, behind one seam that tests can watch and
//! break.
//!
//! A crash-safe store is only as good as the *order* of its `write`, `fdatasync`, `fsync`,
//! `rename`, `unlink` and `ftruncate` calls, and as its handling of each one failing. Neither shows
//! in a test that only reads the files back. So `raftwood-wal` and `raftwood-snap` make those
//! calls through an [`Fs`]: in production it calls `std` directly; in a test it first asks a
//! [`Hook`], which can record the call and make it fail (`EIO`, `ENOSPC`, or a short write that
//! puts part of the bytes in the file and then fails). [`Recorder`] is the hook the tests use.
//!
//! ```
//! use std::sync::Arc;
//! use raftwood_fsio::{Fault, Fs, OpKind, Recorder};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let recorder = Arc::new(Recorder::default());
//! let fs = Fs::with_hook(recorder.clone());
//! let path = dir.path().join("data");
//! let mut file = std::fs::File::create(&path).unwrap();
//!
//! fs.write_all(&mut file, &path, b"hello").unwrap();
//! assert_eq!(recorder.unsynced(), std::slice::from_ref(&path));
//! fs.sync_data(&file, &path).unwrap();
//! assert!(recorder.unsynced().is_empty());
//!
//! // The next fdatasync fails with EIO.
//! recorder.fail_next(|op| op.kind == OpKind::Fdatasync, Fault::Eio);
//! assert_eq!(fs.sync_data(&file, &path).unwrap_err().raw_os_error(), Some(5));
//! let kinds: Vec<OpKind> = recorder.ops().iter().map(|op| op.kind).collect();
//! assert_eq!(kinds, [OpKind::Write, OpKind::Fdatasync, OpKind::Fdatasync]);
//! assert_eq!(recorder.failed(), [2]);
//! ```
//!
//! # Usage
//! A store takes an [`Fs`] in its options (`Fs::direct()` by default) and makes every durable
//! call through it, passing the path the call is about (a `File` does not know its path, and a
//! test wants to read `fdatasync 0000-0000.wal`, not `fdatasync fd 7`). A test builds the store
//! with `Fs::with_hook(recorder.clone())`, runs a scenario, and then asserts on:
//!
//! - [`Recorder::ops`]: the calls in order, each an [`Op`] (an [`OpKind`], the path, the
//!   destination of a rename, the length of a write or truncate);
//! - [`Recorder::failed`]: which of them were failed;
//! - [`Recorder::unsynced`]: the files with writes no sync has covered, which must be empty
//!   whenever the store reports data as durable.
//!
//! Failures are armed before or during the scenario with [`Recorder::fail_next`] (a predicate
//! on the [`Op`]) or [`Recorder::fail_at`] (a position in the record), each with a [`Fault`].
//!
//! # Layout
//! | file | job |
//! |---|---|
//! | `op.rs` | what a hook sees and answers: [`Op`], [`OpKind`], [`Fault`], [`Verdict`], [`Hook`] |
//! | `fs.rs` | [`Fs`], the calls themselves, and [`FsWriter`] for callers that stream |
//! | `recorder.rs` | [`Recorder`]: the record, the armed failures, the unsynced model |
//!
//! The crate is a leaf: it depends on no other raftwood crate; `raftwood-wal` and `raftwood-snap`
//! depend on it (and re-export it as `fsio`); `raftwood-raft` does no I/O and does not.
//!
//! # Non-goals
//! Simulating a power loss inside the kernel (the [`Recorder`] only *tracks* which files have
//! writes not yet synced, which is what a test needs to assert that nothing is acknowledged
//! before it is durable), wrapping reads (bytes read back are checked by the decoders, and their
//! failures need no ordering), and wrapping `open`/`create` (a file that was created but never
//! synced into its directory shows as a missing [`OpKind::SyncDir`] in the record).

mod fs;
mod op;
mod recorder;

pub use fs::{Fs, FsWriter};
pub use op::{Fault, Hook, Op, OpKind, Verdict};
pub use recorder::Recorder;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
