//! The crate's one error type, [`Error`], and what can be wrong inside a file, [`Corruption`].
//!
//! Every variant that concerns a file carries its path, so that one line of `Display` is enough
//! for an operator: `snap/0000000000000002-0000000000000009.snap: checksum mismatch (stored
//! 0x1234abcd, computed 0x89ef0123)`.
//!
//! ```
//! use std::path::PathBuf;
//! use raftwood_snap::{Corruption, Error};
//!
//! let err = Error::Corrupt {
//!     path: PathBuf::from("snap/x.snap"),
//!     problem: Corruption::BadMagic,
//! };
//! assert_eq!(err.to_string(), "snap/x.snap: bad magic at offset 0 (not a raftwood snapshot)");
//! ```

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::format::HEADER_LEN;
use crate::id::SnapshotId;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system call failed (`op` says which, e.g. `"fsync"`).
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// What was being done: `"open"`, `"read"`, `"write"`, `"fsync"`, `"rename"`...
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file exists but its bytes are not a valid snapshot.
    #[error("{}: {problem}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        problem: Corruption,
    },
    /// The snapshot asked for has no file.
    #[error("{}: no such snapshot file", path.display())]
    NotFound {
        /// Where the file was expected.
        path: PathBuf,
    },
    /// [`crate::Store::load_newest_of`] tried every candidate and none was valid. `tried` holds one
    /// error per candidate, newest first, each naming its file.
    #[error("no valid snapshot among {} candidate(s): {}", tried.len(), Tried(tried))]
    NoValidSnapshot {
        /// Why each candidate was rejected, newest first.
        tried: Vec<Error>,
    },
    /// A snapshot cannot be saved at index 0: index 0 means "no snapshot" (the empty log).
    #[error("cannot save snapshot {id}: index 0 stands for 'no snapshot'")]
    ZeroIndex {
        /// The rejected id.
        id: SnapshotId,
    },
}

/// Formats the tried list as `a: why; b: why`.
struct Tried<'a>(&'a [Error]);

impl fmt::Display for Tried<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

/// What is wrong with the bytes of a snapshot file. Offsets are from the start of the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Corruption {
    /// The file is shorter than the fixed header.
    #[error("file too short for the header ({len} bytes, need {HEADER_LEN})")]
    TooShort {
        /// The file's length.
        len: u64,
    },
    /// The first 8 bytes are not [`crate::format::MAGIC`].
    #[error("bad magic at offset 0 (not a raftwood snapshot)")]
    BadMagic,
    /// The format version at offset 8 is not one this build reads.
    #[error("unsupported format version {version} at offset 8")]
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// The header's lengths do not add up to the file's size.
    #[error(
        "length mismatch: header {HEADER_LEN} + metadata {metadata_len} + data {data_len} bytes \
         disagrees with the file size {file_len}"
    )]
    LengthMismatch {
        /// The metadata length in the header.
        metadata_len: u64,
        /// The data length in the header.
        data_len: u64,
        /// The file's actual length.
        file_len: u64,
    },
    /// The file ended before the header's lengths said it would (it shrank while being read).
    #[error("unexpected end of file at offset {offset}")]
    Truncated {
        /// Where the bytes ran out.
        offset: u64,
    },
    /// The header names another snapshot than the file name does (a renamed or swapped file).
    #[error("header holds snapshot {header} but the file name says {name}")]
    NameMismatch {
        /// The id in the file name.
        name: SnapshotId,
        /// The id in the header.
        header: SnapshotId,
    },
    /// The reserved bytes 52..56 of the header are not zero.
    #[error("nonzero reserved bytes at offset 52")]
    Reserved,
    /// The header's `head_crc` does not match the header and metadata: the metadata must not be
    /// used.
    #[error("header/metadata checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    HeadChecksumMismatch {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the header and metadata read.
        computed: u32,
    },
    /// The CRC-32 stored in the header is not the one computed over the file.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    ChecksumMismatch {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// The [`Corruption`] behind this error, if it is one.
    ///
    /// ```
    /// use std::path::PathBuf;
    /// use raftwood_snap::{Corruption, Error};
    ///
    /// let err = Error::Corrupt { path: PathBuf::from("a.snap"), problem: Corruption::BadMagic };
    /// assert_eq!(err.corruption(), Some(&Corruption::BadMagic));
    /// ```
    pub fn corruption(&self) -> Option<&Corruption> {
        match self {
            Error::Corrupt { problem, .. } => Some(problem),
            _ => None,
        }
    }
}
