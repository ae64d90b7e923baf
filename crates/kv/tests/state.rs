//! The state machine's tests: the compare-and-set table, apply determinism and revision
//! monotonicity over random command streams, snapshot roundtrips, and decoders fed garbage.
//!
//! Property cases: 64 by default (CI-sized); raise with `RAFTWOOD_PROPTEST_CASES=5000 cargo test
//! -p raftwood-kv --test state` (`PROPTEST_CASES` works too).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use raftwood_kv::{
    Command, Key, KvStore, Op, Outcome, RequestId, SnapshotError, SnapshotLimits, snapshot,
};

fn cmd(op: Op) -> Command {
    Command {
        id: RequestId { node: 1, seq: 7 },
        op,
    }
}

fn put(key: &str, value: &[u8], if_revision: Option<u64>) -> Command {
    cmd(Op::Put {
        key: Key::new(key).unwrap(),
        value: Bytes::copy_from_slice(value),
        if_revision,
    })
}

fn delete(key: &str) -> Command {
    cmd(Op::Delete {
        key: Key::new(key).unwrap(),
    })
}

fn snapshot_of(store: &KvStore) -> Vec<u8> {
    let mut buf = Vec::new();
    store.write_snapshot(&mut buf).unwrap();
    buf
}

/// `If-Match` per the contract: 412 when the key is absent or its revision differs.
#[test]
fn compare_and_set_table() {
    // (setup: key "k" at revision 5 or absent, if_revision, expected outcome at index 10)
    let cases: [(bool, Option<u64>, Outcome); 6] = [
        (false, None, Outcome::Put { revision: 10 }),
        (true, None, Outcome::Put { revision: 10 }),
        (true, Some(5), Outcome::Put { revision: 10 }),
        (
            true,
            Some(4),
            Outcome::PreconditionFailed { current: Some(5) },
        ),
        (
            true,
            Some(6),
            Outcome::PreconditionFailed { current: Some(5) },
        ),
        (
            false,
            Some(5),
            Outcome::PreconditionFailed { current: None },
        ),
    ];
    for (exists, if_revision, expected) in cases {
        let mut store = KvStore::new();
        if exists {
            store.apply(5, &put("k", b"old", None));
        } else {
            store.apply_noop(5);
        }
        let outcome = store.apply(10, &put("k", b"new", if_revision));
        assert_eq!(
            outcome, expected,
            "exists={exists} if_revision={if_revision:?}"
        );
        let value = store.get("k").map(|v| (v.data.clone(), v.revision));
        let want = match (expected, exists) {
            (Outcome::Put { .. }, _) => Some((Bytes::from_static(b"new"), 10)),
            (_, true) => Some((Bytes::from_static(b"old"), 5)),
            (_, false) => None,
        };
        assert_eq!(value, want, "exists={exists} if_revision={if_revision:?}");
        assert_eq!(store.applied_index(), 10);
    }
}

#[test]
fn delete_reports_whether_the_key_existed_and_recreation_gets_a_higher_revision() {
    let mut store = KvStore::new();
    store.apply(1, &put("k", b"a", None));
    assert_eq!(
        store.apply(2, &delete("k")),
        Outcome::Deleted { existed: true }
    );
    assert_eq!(
        store.apply(3, &delete("k")),
        Outcome::Deleted { existed: false }
    );
    assert_eq!(
        store.apply(4, &put("k", b"b", Some(1))),
        Outcome::PreconditionFailed { current: None }
    );
    assert_eq!(
        store.apply(5, &put("k", b"b", None)),
        Outcome::Put { revision: 5 }
    );
}

#[test]
fn a_malformed_entry_is_skipped_but_advances_the_applied_index() {
    let mut store = KvStore::new();
    store.apply(1, &put("k", b"a", None));
    let before = store.clone();
    assert_eq!(store.apply_entry(2, b"\xff\xff not a command"), None);
    assert_eq!(store.applied_index(), 2);
    assert_eq!(store.get("k"), before.get("k"));
    // Raft's own empty entries carry no command: a no-op, not an error.
    assert_eq!(store.apply_entry(3, b""), None);
    assert_eq!(store.applied_index(), 3);
    let good = put("k", b"b", Some(1));
    assert_eq!(
        store.apply_entry(4, &good.encode()),
        Some((good.id, Outcome::Put { revision: 4 }))
    );
}

#[test]
#[should_panic(expected = "invariant violated")]
fn applying_an_index_twice_is_a_caller_bug() {
    let mut store = KvStore::new();
    store.apply(2, &put("k", b"a", None));
    store.apply(2, &put("k", b"a", None));
}

#[test]
fn every_truncation_of_a_snapshot_is_an_error() {
    let mut store = KvStore::new();
    store.apply(1, &put("a", b"1", None));
    store.apply(2, &put("b/c", b"", None));
    store.apply(3, &put("d", &[7; 100], None));
    let bytes = snapshot_of(&store);
    for len in 0..bytes.len() {
        let err = KvStore::read_snapshot(&bytes[..len], SnapshotLimits::default()).unwrap_err();
        assert!(
            matches!(err, SnapshotError::Truncated { .. }),
            "cut at {len}: {err}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        KvStore::read_snapshot(longer.as_slice(), SnapshotLimits::default()),
        Err(SnapshotError::TrailingBytes { .. })
    ));
}

#[test]
fn flipping_any_bit_of_a_snapshot_is_detected() {
    let mut store = KvStore::new();
    store.apply(4, &put("key", b"value", None));
    let bytes = snapshot_of(&store);
    for i in 0..bytes.len() * 8 {
        let mut damaged = bytes.clone();
        damaged[i / 8] ^= 1 << (i % 8);
        assert!(
            KvStore::read_snapshot(damaged.as_slice(), SnapshotLimits::default()).is_err(),
            "bit {i} flipped went unnoticed"
        );
    }
}

#[test]
fn claimed_lengths_over_the_limits_are_typed_errors() {
    let mut store = KvStore::new();
    store.apply(1, &put("a-long-key", &[1; 40], None));
    let bytes = snapshot_of(&store);
    let tight_key = SnapshotLimits {
        max_key_len: 4,
        ..SnapshotLimits::default()
    };
    assert!(matches!(
        KvStore::read_snapshot(bytes.as_slice(), tight_key),
        Err(SnapshotError::KeyTooLong {
            len: 10,
            limit: 4,
            ..
        })
    ));
    let tight_value = SnapshotLimits {
        max_value_len: 39,
        ..SnapshotLimits::default()
    };
    assert!(matches!(
        KvStore::read_snapshot(bytes.as_slice(), tight_value),
        Err(SnapshotError::ValueTooLong {
            len: 40,
            limit: 39,
            ..
        })
    ));
    // A header claiming u32::MAX for a key: refused before any allocation.
    let mut huge = Vec::new();
    huge.extend_from_slice(&snapshot::MAGIC);
    huge.extend_from_slice(&snapshot::VERSION.to_le_bytes());
    huge.extend_from_slice(&1u64.to_le_bytes());
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        KvStore::read_snapshot(huge.as_slice(), SnapshotLimits::default()),
        Err(SnapshotError::KeyTooLong { .. })
    ));
}

#[test]
fn an_empty_store_roundtrips() {
    let store = KvStore::new();
    let bytes = snapshot_of(&store);
    assert_eq!(
        KvStore::read_snapshot(bytes.as_slice(), SnapshotLimits::default()).unwrap(),
        store
    );
}

fn config() -> ProptestConfig {
    let cases = ["RAFTWOOD_PROPTEST_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// A log entry as the state machine may see it: a command, a no-op, or bytes that are not a
/// command. Keys come from a small set so that puts, deletes and CAS collide.
#[derive(Debug, Clone)]
enum Entry {
    Command(Command),
    Noop,
    Garbage(Vec<u8>),
}

fn entry() -> impl Strategy<Value = Entry> {
    let key = prop::sample::select(vec!["a", "b", "c/d", "é"]);
    let value = prop::collection::vec(any::<u8>(), 0..16);
    let command = (
        key,
        value,
        prop::option::of(0u64..40),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(key, value, if_revision, is_delete, seq)| {
            let op = if is_delete {
                Op::Delete {
                    key: Key::new(key).unwrap(),
                }
            } else {
                Op::Put {
                    key: Key::new(key).unwrap(),
                    value: Bytes::from(value),
                    if_revision,
                }
            };
            Command {
                id: RequestId { node: 2, seq },
                op,
            }
        });
    prop_oneof![
        8 => command.prop_map(Entry::Command),
        1 => Just(Entry::Noop),
        1 => prop::collection::vec(any::<u8>(), 0..24).prop_map(Entry::Garbage),
    ]
}

/// Feeds entries at increasing indexes (with gaps) the way a node would: commands as bytes.
fn feed(store: &mut KvStore, entries: &[(u64, Entry)]) -> Vec<Option<(RequestId, Outcome)>> {
    entries
        .iter()
        .map(|(index, entry)| match entry {
            Entry::Command(c) => store.apply_entry(*index, &c.encode()),
            Entry::Noop => {
                store.apply_noop(*index);
                None
            }
            Entry::Garbage(bytes) => store.apply_entry(*index, bytes),
        })
        .collect()
}

fn indexed(entries: Vec<(u64, Entry)>) -> Vec<(u64, Entry)> {
    let mut index = 0;
    entries
        .into_iter()
        .map(|(gap, e)| {
            index += gap;
            (index, e)
        })
        .collect()
}

fn log() -> impl Strategy<Value = Vec<(u64, Entry)>> {
    prop::collection::vec((1u64..3, entry()), 0..60).prop_map(indexed)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn two_replicas_applying_the_same_log_agree(entries in log()) {
        let (mut a, mut b) = (KvStore::new(), KvStore::new());
        let outcomes_a = feed(&mut a, &entries);
        let outcomes_b = feed(&mut b, &entries);
        prop_assert_eq!(outcomes_a, outcomes_b);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.applied_index(), entries.last().map_or(0, |(i, _)| *i));
    }

    #[test]
    fn revisions_of_a_key_only_grow_and_equal_the_writing_index(entries in log()) {
        let mut store = KvStore::new();
        let mut last_revision: BTreeMap<String, u64> = BTreeMap::new();
        for (index, entry) in &entries {
            feed(&mut store, &[(*index, entry.clone())]);
            for (key, value) in store.iter() {
                let previous = last_revision.insert(key.to_owned(), value.revision);
                prop_assert!(previous.is_none_or(|p| p <= value.revision));
                prop_assert!(value.revision <= *index);
            }
            // An unconditional put always applies, stamped with its own index.
            if let Entry::Command(Command { op: Op::Put { key, if_revision: None, .. }, .. }) = entry {
                prop_assert_eq!(store.get(key.as_str()).map(|v| v.revision), Some(*index));
            }
        }
    }

    #[test]
    fn snapshot_roundtrip_restores_the_same_store(entries in log()) {
        let mut store = KvStore::new();
        feed(&mut store, &entries);
        let bytes = snapshot_of(&store);
        let restored = KvStore::read_snapshot(bytes.as_slice(), SnapshotLimits::default()).unwrap();
        prop_assert_eq!(&restored, &store);
        // Canonical: the restored store writes the same bytes.
        prop_assert_eq!(snapshot_of(&restored), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_snapshot_reader(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = KvStore::read_snapshot(bytes.as_slice(), SnapshotLimits::default());
    }

    #[test]
    fn a_valid_header_followed_by_garbage_never_panics(tail in prop::collection::vec(any::<u8>(), 0..256), applied in any::<u64>(), count in any::<u64>()) {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&snapshot::MAGIC);
        bytes.extend_from_slice(&snapshot::VERSION.to_le_bytes());
        bytes.extend_from_slice(&applied.to_le_bytes());
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.extend_from_slice(&tail);
        prop_assert!(KvStore::read_snapshot(bytes.as_slice(), SnapshotLimits::default()).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic_command_decode(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        if let Ok(command) = Command::decode(&bytes) {
            // Whatever decodes re-encodes to the same bytes (fixed-int bincode is canonical).
            prop_assert_eq!(command.encode(), bytes);
        }
    }
}
