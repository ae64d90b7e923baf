//! What a [`Hook`] sees ([`Op`], [`OpKind`]) and what it may answer ([`Verdict`], [`Fault`]).
//!
//! Pure data: nothing here touches a file.

use std::io;
use std::path::PathBuf;

/// Which call an [`Op`] is: one variant per [`Fs`](crate::Fs) method that a hook sees.
///
/// ```
/// use raftwood_fsio::OpKind;
///
/// // A predicate for `Recorder::fail_next`: any call that makes data durable.
/// let is_sync = |kind: OpKind| matches!(kind, OpKind::Fsync | OpKind::Fdatasync | OpKind::SyncDir);
/// assert!(is_sync(OpKind::Fdatasync));
/// assert!(!is_sync(OpKind::Write));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// `write(2)` of `len` bytes to a file (all of them, as `write_all`):
    /// [`Fs::write_all`](crate::Fs::write_all), and each write through an
    /// [`FsWriter`](crate::FsWriter).
    Write,
    /// `fsync(2)` of a file: data and metadata ([`Fs::sync_all`](crate::Fs::sync_all)).
    Fsync,
    /// `fdatasync(2)` of a file: data and the metadata needed to read it
    /// ([`Fs::sync_data`](crate::Fs::sync_data)).
    Fdatasync,
    /// `fsync(2)` of a directory: makes creations, renames and removals in it durable
    /// ([`Fs::sync_dir`](crate::Fs::sync_dir)).
    SyncDir,
    /// `rename(2)` of `path` to `to` ([`Fs::rename`](crate::Fs::rename)).
    Rename,
    /// `unlink(2)` of a file ([`Fs::remove_file`](crate::Fs::remove_file)).
    Unlink,
    /// `ftruncate(2)` of a file to `len` bytes ([`Fs::set_len`](crate::Fs::set_len)).
    Truncate,
}

/// One durability-relevant call, as a [`Hook`] sees it before it is made.
///
/// ```
/// use std::path::PathBuf;
/// use raftwood_fsio::{Op, OpKind};
///
/// // What `fs.rename(a, b)` shows a hook:
/// let op = Op {
///     kind: OpKind::Rename,
///     path: PathBuf::from("dir/a.tmp"),
///     to: Some(PathBuf::from("dir/a")),
///     len: 0,
/// };
/// assert_eq!(op.to.as_deref(), Some(std::path::Path::new("dir/a")));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The call.
    pub kind: OpKind,
    /// The file or directory it is about (for a rename, the source), exactly as the caller
    /// passed it: not canonicalized.
    pub path: PathBuf,
    /// For a rename, the destination; `None` for every other call.
    pub to: Option<PathBuf>,
    /// For a write, the bytes asked to be written; for a truncate, the new length; else 0.
    pub len: u64,
}

/// A failure a [`Hook`] can inject.
///
/// The failed call returns [`Fault::to_error`]; apart from a short write, it has done nothing.
///
/// ```
/// use raftwood_fsio::Fault;
///
/// assert_eq!(Fault::Eio.to_error().raw_os_error(), Some(5));
/// assert_eq!(Fault::Enospc.to_error().raw_os_error(), Some(28));
/// // A short write reports what a full disk reports.
/// assert_eq!(Fault::ShortWrite { written: 3 }.to_error().raw_os_error(), Some(28));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `EIO`: the device failed (for a sync: the dirty pages may be lost).
    Eio,
    /// `ENOSPC`: the file system is full.
    Enospc,
    /// A write that puts only the first `written` bytes into the file (all of them if `written`
    /// is not less than the write's length), then fails with `ENOSPC` (what `write_all` reports
    /// when a disk fills up mid-write). Treated as `EIO` for calls other than a write.
    ShortWrite {
        /// Bytes that reach the file before the failure.
        written: usize,
    },
}

impl Fault {
    /// The `io::Error` the failed call returns: `EIO` for [`Fault::Eio`], `ENOSPC` for
    /// [`Fault::Enospc`] and for a [`Fault::ShortWrite`] of a write.
    ///
    /// ```
    /// use raftwood_fsio::Fault;
    ///
    /// let err = Fault::Enospc.to_error();
    /// assert_eq!(err.raw_os_error(), Some(28));
    /// ```
    pub fn to_error(self) -> io::Error {
        match self {
            Fault::Eio => io::Error::from_raw_os_error(EIO),
            Fault::Enospc | Fault::ShortWrite { .. } => io::Error::from_raw_os_error(ENOSPC),
        }
    }
}

/// `EIO` and `ENOSPC` as Linux numbers them (the codes are the same on the other Unixes).
pub(crate) const EIO: i32 = 5;
pub(crate) const ENOSPC: i32 = 28;

/// What a [`Hook`] decides about a call.
///
/// ```
/// use raftwood_fsio::{Fault, Verdict};
///
/// let verdict = Verdict::Fail(Fault::ShortWrite { written: 10 });
/// assert_ne!(verdict, Verdict::Proceed);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Make the call.
    Proceed,
    /// Fail it as `fault` says, without making it (a short write makes part of it).
    Fail(Fault),
}

/// Sees every call before [`Fs`](crate::Fs) makes it, and may fail it.
///
/// [`Recorder`](crate::Recorder) is the hook the tests use; a hook of your own needs one method:
///
/// ```
/// use std::sync::Arc;
/// use raftwood_fsio::{Fault, Fs, Hook, Op, OpKind, Verdict};
///
/// /// A disk on which no rename ever succeeds.
/// struct NoRenames;
///
/// impl Hook for NoRenames {
///     fn before(&self, op: &Op) -> Verdict {
///         match op.kind {
///             OpKind::Rename => Verdict::Fail(Fault::Eio),
///             _ => Verdict::Proceed,
///         }
///     }
/// }
///
/// let dir = tempfile::tempdir().unwrap();
/// let (a, b) = (dir.path().join("a"), dir.path().join("b"));
/// std::fs::write(&a, b"x").unwrap();
/// let fs = Fs::with_hook(Arc::new(NoRenames));
/// assert!(fs.rename(&a, &b).is_err());
/// assert!(a.exists() && !b.exists()); // the call was never made
/// ```
pub trait Hook: Send + Sync {
    /// Called before `op`; the call is made only if this returns [`Verdict::Proceed`].
    ///
    /// It may be called from several threads at once (the WAL syncs on a thread of its own); the
    /// order in which it is called is the order in which the calls were asked for, which need
    /// not be the order in which they complete.
    fn before(&self, op: &Op) -> Verdict;
}
