//! What a client asks the state machine to do, as it travels through the raft log: a
//! [`Command`] is proposed by the node that received the HTTP request, committed by raft, and
//! applied by every replica in log order. Its bytes are the crate's one codec's
//! ([`crate::codec`]); [`Command::encode`] and [`Command::decode`] are the only way in and out.
//!
//! ```
//! use bytes::Bytes;
//! use raftwood_kv::{Command, Key, Op, RequestId};
//!
//! let cmd = Command {
//!     id: RequestId { node: 1, seq: 42 },
//!     op: Op::Put { key: Key::new("greeting")?, value: Bytes::from_static(b"hello"), if_revision: None },
//! };
//! assert_eq!(Command::decode(&cmd.encode())?, cmd);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Non-goal: a command carries no term or index; the log gives it those.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};

/// Who is waiting for a command's outcome: the node that proposed it and a sequence number unique
/// on that node. Every replica applies the command; only the proposer finds a waiting client
/// under this id (raftexample has no such id, so it cannot answer a write once it commits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId {
    /// The raft id of the node that proposed the command.
    pub node: u64,
    /// A number the proposing node never reuses while the request may still be waiting.
    pub seq: u64,
}

/// A key: a non-empty UTF-8 string (it may contain `/`). The type makes an empty key
/// unrepresentable, including in decoded log entries, so the state machine never has to decide
/// what an empty key means.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
// Serialized as the bare string (a newtype); deserialized through `Key::new`, so a log entry
// or a snapshot cannot smuggle in an empty key.
#[serde(try_from = "String")]
pub struct Key(String);

/// The one way a string is not a [`Key`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("empty key: a key must be a non-empty UTF-8 string")]
pub struct EmptyKey;

impl Key {
    /// Makes a key, refusing the empty string.
    pub fn new(key: impl Into<String>) -> Result<Key, EmptyKey> {
        let key = key.into();
        if key.is_empty() {
            return Err(EmptyKey);
        }
        Ok(Key(key))
    }

    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for Key {
    type Error = EmptyKey;

    fn try_from(key: String) -> Result<Key, EmptyKey> {
        Key::new(key)
    }
}

impl From<Key> for String {
    fn from(key: Key) -> String {
        key.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One change to the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Set `key` to `value`. With `if_revision: Some(r)` it is a compare-and-set: it applies only
    /// if the key exists and its revision is `r` (HTTP `If-Match: "r"`), and otherwise fails with
    /// [`Outcome::PreconditionFailed`](crate::Outcome::PreconditionFailed) (HTTP 412).
    Put {
        /// The key to write.
        key: Key,
        /// The new value: arbitrary bytes.
        value: Bytes,
        /// The revision the key must have for the write to apply, if any.
        if_revision: Option<u64>,
    },
    /// Remove `key`; removing a key that does not exist is not an error.
    Delete {
        /// The key to remove.
        key: Key,
    },
}

/// A change to the map together with the id of the request waiting for it: the payload of a
/// normal raft entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Who waits for the outcome.
    pub id: RequestId,
    /// What to do.
    pub op: Op,
}

impl Command {
    /// The bytes to propose to raft.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Reads a command back from a log entry's bytes. Any byte string gives a command or an
    /// error, never a panic, and never allocates more than [`codec::DECODE_LIMIT`].
    pub fn decode(bytes: &[u8]) -> Result<Command, CodecError> {
        codec::decode(bytes, "kv command")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn empty_key_is_refused_by_new_and_by_decode() {
        assert_eq!(Key::new(""), Err(EmptyKey));
        let cmd = Command {
            id: RequestId { node: 1, seq: 1 },
            op: Op::Delete {
                key: Key::new("a").unwrap(),
            },
        };
        let mut bytes = cmd.encode();
        // Fixed-int layout: node u64, seq u64, variant u32, key length u64, key bytes.
        let len_at = 8 + 8 + 4;
        bytes[len_at] = 0;
        bytes.truncate(len_at + 8);
        assert!(Command::decode(&bytes).is_err());
    }

    #[test]
    fn commands_roundtrip_through_the_codec() {
        let put = Command {
            id: RequestId { node: 3, seq: 9 },
            op: Op::Put {
                key: Key::new("a/b").unwrap(),
                value: Bytes::from_static(&[0, 1, 255]),
                if_revision: Some(17),
            },
        };
        assert_eq!(Command::decode(&put.encode()).unwrap(), put);
    }

    #[test]
    fn a_huge_claimed_length_is_an_error_not_an_allocation() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes()); // Op::Put
        bytes.extend_from_slice(&u64::MAX.to_le_bytes()); // key length
        assert!(Command::decode(&bytes).is_err());
    }

    #[test]
    fn a_huge_claimed_value_length_is_an_error_not_an_allocation() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes()); // Op::Put
        bytes.extend_from_slice(&1u64.to_le_bytes()); // key length
        bytes.push(b'k');
        bytes.extend_from_slice(&(u64::MAX / 2).to_le_bytes()); // value length
        assert!(Command::decode(&bytes).is_err());
    }
}
