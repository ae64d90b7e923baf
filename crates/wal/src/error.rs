//! The crate's one error type. Every variant that concerns a file names it, and damage names the
//! byte offset too, so an operator can look at the exact spot (`xxd -s OFFSET FILE`).

use std::path::PathBuf;

use crate::decode::DecodeError;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation failed.
    #[error("{path}: {op}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done, e.g. `"fdatasync"`.
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Bytes on disk that a crash cannot explain (or, under
    /// [`RecoveryMode::AbsoluteConsistency`](crate::RecoveryMode::AbsoluteConsistency), any invalid
    /// bytes at all). The log refuses to open and has changed nothing.
    #[error("{path}: corrupt at byte {offset}: {reason}{}", if *.followed_by_commit { " (a valid commit record follows)" } else { "" })]
    Corrupt {
        /// The damaged segment.
        path: PathBuf,
        /// Offset of the first invalid byte in that file.
        offset: u64,
        /// What was invalid there.
        reason: DecodeError,
        /// True when a valid commit record follows the damage, which rules out a torn tail.
        followed_by_commit: bool,
    },
    /// The segment sequence numbers are not consecutive: a segment in the middle is missing.
    #[error("{path}: segment seq {found:#x} follows seq {previous:#x}; a segment is missing")]
    MissingSegment {
        /// The segment after the gap.
        path: PathBuf,
        /// Sequence number of the segment before the gap.
        previous: u64,
        /// Sequence number found after the gap.
        found: u64,
    },
    /// Another process (or another [`Wal`](crate::Wal) in this one) holds the directory's lock.
    #[error("{path}: the WAL directory is locked by another user")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A record's payload is over [`MAX_PAYLOAD_LEN`](crate::format::MAX_PAYLOAD_LEN).
    #[error("record of {len} bytes is over the limit of {max} bytes")]
    RecordTooLarge {
        /// Payload length asked for.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A number read from the disk (or given by the caller) leaves no room for the next one: a
    /// segment whose sequence number is `u64::MAX` cannot be followed by another, and after an
    /// entry at index `u64::MAX` there is no "one past the highest index" to name a segment by.
    /// Nothing was written.
    #[error("{path}: the {what} is {value:#x}; the next one would overflow")]
    Overflow {
        /// The active segment when it happened.
        path: PathBuf,
        /// Which number: `"segment sequence number"` or `"entry index"`.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// An earlier write or sync failed, so what is on disk is unknown. **Fatal for the process**:
    /// after a failed `fdatasync` Linux keeps the pages whose writeback failed in the page cache,
    /// marked clean, so a reopen in the same process would read back (and acknowledge) a batch the
    /// disk may not hold. Exit, as etcd does; a new process reopens the log and repairs the tail.
    #[error("the WAL failed an earlier write or sync; only a new process may reopen it")]
    Poisoned,
    /// [`Wal::open`](crate::Wal::open) in a process where a `Wal` on the same directory was
    /// poisoned ([`Error::Poisoned`]): its failed writes may still be in the page cache, so what
    /// this process would read is not what the disk holds. Restart the process.
    #[error(
        "{dir}: a WAL on this directory failed a write or sync earlier in this process; restart the process to reopen it"
    )]
    PoisonedEarlier {
        /// The WAL directory.
        dir: PathBuf,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the path and the operation to an `io::Error`.
pub(crate) trait IoContext<T> {
    /// Wraps the error as [`Error::Io`].
    fn io(self, path: &std::path::Path, op: &'static str) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io(self, path: &std::path::Path, op: &'static str) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            op,
            source,
        })
    }
}
