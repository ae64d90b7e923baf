//! Which snapshot a file holds: [`SnapshotId`], its order ("newest") and its file name.
//!
//! A snapshot is named by the index and term of the last log entry it covers. Files are
//! `{term:016x}-{index:016x}.snap` in lowercase hex, as etcd names them.
//!
//! ```
//! use raftwood_snap::SnapshotId;
//!
//! let id = SnapshotId { index: 0x2a, term: 3 };
//! assert_eq!(id.file_name(), "0000000000000003-000000000000002a.snap");
//! assert_eq!(SnapshotId::parse_file_name(&id.file_name()), Some(id));
//! ```
//!
//! Non-goal: this module does not know what is on disk; [`crate::Store`] does.

use std::fmt;

/// The extension of a snapshot file, without the dot.
pub const SNAP_EXTENSION: &str = "snap";

/// The suffix of a temporary file written by an unfinished save. [`crate::Store::open`] removes
/// every file in the directory whose name ends with it.
pub const TMP_SUFFIX: &str = ".tmp";

/// The identity of a snapshot: the index and term of the last log entry it covers.
///
/// # Newest
/// Snapshots are ordered by `index`, then by `term` (the derived order, since `index` is the first
/// field): the newest snapshot is the one that covers the most of the log. Within the log of one
/// correct Raft group both orders (by index, or by term then index as the file names sort) agree,
/// because a later entry never has a lower term; ordering by index first means a stray snapshot
/// with a higher term but a lower index never hides one that covers more of the log.
///
/// ```
/// use raftwood_snap::SnapshotId;
///
/// let older = SnapshotId { index: 10, term: 5 };
/// let newer = SnapshotId { index: 11, term: 2 };
/// assert!(newer > older);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SnapshotId {
    /// The index of the last log entry the snapshot covers (Raft §7: "last included index").
    pub index: u64,
    /// The term of that entry (Raft §7: "last included term").
    pub term: u64,
}

impl SnapshotId {
    /// The file name of this snapshot: `{term:016x}-{index:016x}.snap`.
    ///
    /// ```
    /// use raftwood_snap::SnapshotId;
    /// assert_eq!(
    ///     SnapshotId { index: 1, term: 2 }.file_name(),
    ///     "0000000000000002-0000000000000001.snap"
    /// );
    /// ```
    pub fn file_name(&self) -> String {
        format!("{:016x}-{:016x}.{SNAP_EXTENSION}", self.term, self.index)
    }

    /// Parses a file name written by [`SnapshotId::file_name`]; anything else (uppercase hex,
    /// another length, another extension, a temporary file) gives `None`.
    ///
    /// ```
    /// use raftwood_snap::SnapshotId;
    /// assert_eq!(
    ///     SnapshotId::parse_file_name("0000000000000002-0000000000000001.snap"),
    ///     Some(SnapshotId { index: 1, term: 2 })
    /// );
    /// assert_eq!(SnapshotId::parse_file_name("0000000000000002-0000000000000001.snap.0.tmp"), None);
    /// assert_eq!(SnapshotId::parse_file_name("000000000000000A-0000000000000001.snap"), None);
    /// ```
    pub fn parse_file_name(name: &str) -> Option<SnapshotId> {
        let stem = name.strip_suffix(SNAP_EXTENSION)?.strip_suffix('.')?;
        let (term, index) = stem.split_once('-')?;
        Some(SnapshotId {
            index: parse_hex16(index)?,
            term: parse_hex16(term)?,
        })
    }
}

/// Exactly 16 lowercase hex digits (`from_str_radix` alone would also take `+`, uppercase and
/// shorter strings, which would let two names stand for one snapshot).
fn parse_hex16(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

impl fmt::Display for SnapshotId {
    /// `index@term`, the notation the raft crate's scenarios use for log positions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.index, self.term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_round_trips_extremes() {
        for id in [
            SnapshotId { index: 0, term: 0 },
            SnapshotId {
                index: u64::MAX,
                term: u64::MAX,
            },
            SnapshotId {
                index: 0xdead_beef,
                term: 7,
            },
        ] {
            assert_eq!(SnapshotId::parse_file_name(&id.file_name()), Some(id));
        }
    }

    #[test]
    fn parse_rejects_near_misses() {
        for name in [
            "",
            ".snap",
            "0000000000000002-0000000000000001",
            "0000000000000002-0000000000000001.wal",
            "0000000000000002_0000000000000001.snap",
            "000000000000002-0000000000000001.snap",
            "+000000000000002-0000000000000001.snap",
            "0000000000000002-000000000000000F.snap",
            "00000000000000020-0000000000000001.snap",
            "0000000000000002-0000000000000001.snap.3.tmp",
            "0000000000000002-0000000000000001-0000000000000001.snap",
        ] {
            assert_eq!(SnapshotId::parse_file_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn newest_is_by_index_then_term() {
        let a = SnapshotId { index: 5, term: 9 };
        let b = SnapshotId { index: 6, term: 1 };
        let c = SnapshotId { index: 6, term: 2 };
        assert!(a < b && b < c);
    }

    #[test]
    fn display_is_index_at_term() {
        assert_eq!(SnapshotId { index: 12, term: 3 }.to_string(), "12@3");
    }
}
