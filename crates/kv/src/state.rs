//! The state machine: an ordered map from [`Key`](crate::Key)s to [`Value`]s, each stamped with a
//! revision, plus the raft index of the last entry applied to it.
//!
//! # Revisions
//! A key's revision is the raft index of the entry that last wrote it (etcd's `mod_revision`).
//! That choice gives three properties for free, with no counter to keep:
//! - the revisions of one key only grow, even across a delete and a re-create, because log
//!   indexes only grow;
//! - every replica assigns the same revision, because they apply the same entry at the same index;
//! - revisions survive snapshots unchanged, because they are stored with the value.
//!
//! # Determinism
//! [`KvStore::apply`] depends only on the store and the command, so replicas that apply the same
//! log reach the same map (Raft §5.3's state machine safety needs nothing more). An entry whose
//! bytes do not decode is skipped by [`KvStore::apply_entry`] with a logged error, and still
//! advances the applied index: every replica sees the same bytes and skips them alike.
//!
//! ```
//! use bytes::Bytes;
//! use raftwood_kv::{Command, Key, KvStore, Op, Outcome, RequestId};
//!
//! let mut store = KvStore::new();
//! let put = |value: &'static str, if_revision| Command {
//!     id: RequestId { node: 1, seq: 0 },
//!     op: Op::Put { key: Key::new("k").unwrap(), value: Bytes::from_static(value.as_bytes()), if_revision },
//! };
//! assert_eq!(store.apply(5, &put("a", None)), Outcome::Put { revision: 5 });
//! // Compare-and-set against the revision just returned succeeds; a stale one fails.
//! assert_eq!(store.apply(6, &put("b", Some(5))), Outcome::Put { revision: 6 });
//! assert_eq!(store.apply(7, &put("c", Some(5))), Outcome::PreconditionFailed { current: Some(6) });
//! assert_eq!(store.get("k").map(|v| v.data.clone()), Some(Bytes::from_static(b"b")));
//! assert_eq!(store.applied_index(), 7);
//! ```
//!
//! Non-goals: no history of old revisions (no MVCC), no range deletes, no leases.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::command::{Command, Op, RequestId};

/// A stored value and the revision it was written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The value's bytes, as the client sent them.
    pub data: Bytes,
    /// The raft index of the entry that wrote this value (see the module docs).
    pub revision: u64,
}

/// What applying a command did, for the client waiting on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The put was applied; the key's new revision (HTTP `ETag`).
    Put {
        /// The key's revision after the write: the entry's raft index.
        revision: u64,
    },
    /// The delete was applied; whether the key existed before.
    Deleted {
        /// Whether there was a value to remove.
        existed: bool,
    },
    /// A compare-and-set did not apply (HTTP 412): the key is absent (`None`) or has this other
    /// revision.
    PreconditionFailed {
        /// The key's revision at the time, if it exists.
        current: Option<u64>,
    },
}

/// The replicated map. See the [module docs](self) for revisions and determinism.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvStore {
    /// Invariant: every value's revision is at most `applied` (it was written by an applied entry).
    map: BTreeMap<String, Value>,
    /// The index of the last raft entry applied, or restored from a snapshot.
    applied: u64,
}

impl KvStore {
    /// An empty store that has applied nothing.
    pub fn new() -> KvStore {
        KvStore::default()
    }

    /// Builds a store from parts already checked by the snapshot reader.
    pub(crate) fn from_parts(map: BTreeMap<String, Value>, applied: u64) -> KvStore {
        let store = KvStore { map, applied };
        store.check_invariants();
        store
    }

    /// The index of the last raft entry applied to this store.
    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    /// The value of `key`, if it exists.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    /// How many keys the store holds.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every key and value, in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Applies the command of the raft entry at `index` and says what happened.
    ///
    /// # Panics
    /// If `index` is not above [`applied_index`](Self::applied_index): raft hands out each
    /// committed entry once, in order, so a repeat is a bug in the caller (invariant violated).
    /// Gaps are allowed: entries that carry no command may be reported with
    /// [`apply_noop`](Self::apply_noop) or not at all.
    pub fn apply(&mut self, index: u64, command: &Command) -> Outcome {
        self.advance(index);
        match &command.op {
            Op::Put {
                key,
                value,
                if_revision,
            } => self.put(index, key.as_str(), value, *if_revision),
            Op::Delete { key } => Outcome::Deleted {
                existed: self.map.remove(key.as_str()).is_some(),
            },
        }
    }

    /// Decodes and applies the bytes of the normal raft entry at `index`. Returns the request
    /// id and outcome, or `None` when there is no command:
    /// - empty bytes are raft's own empty entry (a new leader's first, Raft §5.4.2): a no-op;
    /// - bytes that do not decode are skipped with an error log.
    ///
    /// Either way the applied index moves to `index`, identically on every replica.
    ///
    /// # Panics
    /// As [`apply`](Self::apply), if `index` does not move forward.
    pub fn apply_entry(&mut self, index: u64, data: &[u8]) -> Option<(RequestId, Outcome)> {
        if data.is_empty() {
            self.advance(index);
            return None;
        }
        match Command::decode(data) {
            Ok(command) => Some((command.id, self.apply(index, &command))),
            Err(error) => {
                tracing::error!(index, len = data.len(), %error, "skipping a malformed kv entry");
                self.advance(index);
                None
            }
        }
    }

    /// Records that the entry at `index` was applied without touching the map: an empty entry
    /// (a new leader's first, Raft §5.4.2) or a configuration change.
    ///
    /// # Panics
    /// As [`apply`](Self::apply), if `index` does not move forward.
    pub fn apply_noop(&mut self, index: u64) {
        self.advance(index);
    }

    fn advance(&mut self, index: u64) {
        assert!(
            index > self.applied,
            "invariant violated: applying index {index} <= applied index {}",
            self.applied
        );
        self.applied = index;
    }

    fn put(&mut self, index: u64, key: &str, data: &Bytes, if_revision: Option<u64>) -> Outcome {
        if let Some(expected) = if_revision {
            let current = self.map.get(key).map(|v| v.revision);
            if current != Some(expected) {
                return Outcome::PreconditionFailed { current };
            }
        }
        let value = Value {
            data: data.clone(),
            revision: index,
        };
        // `get_mut` first: overwriting an existing key (the common case under load) should not
        // allocate a fresh String for the key.
        match self.map.get_mut(key) {
            Some(slot) => *slot = value,
            None => {
                self.map.insert(key.to_owned(), value);
            }
        }
        Outcome::Put { revision: index }
    }

    /// Checks the whole map (O(n), so only where a map arrives whole: restore). `apply` keeps the
    /// invariant by construction: it stamps the revision it writes with the index it applies.
    fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            for (key, value) in &self.map {
                debug_assert!(
                    value.revision <= self.applied,
                    "invariant violated: key {key:?} has revision {} > applied index {}",
                    value.revision,
                    self.applied
                );
            }
        }
    }
}
