//! The store's behaviour on a real directory: saves, listing, loading, fallback, removal, purge,
//! leftovers of crashes, and the warning that names a damaged file.

// Helpers outside `#[test]` functions are test code too (see clippy.toml).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use raftwood_snap::{Corruption, Error, Options, SnapshotId, Store};

fn id(index: u64, term: u64) -> SnapshotId {
    SnapshotId { index, term }
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

fn dir_names(store: &Store) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn save_then_load_round_trips() {
    let (_d, s) = store();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    s.save(id(7, 2), b"voters=1,2,3", &data[..]).unwrap();
    let snap = s.load(id(7, 2)).unwrap();
    assert_eq!(snap.id, id(7, 2));
    assert_eq!(snap.metadata, b"voters=1,2,3");
    assert_eq!(snap.data, data);
    assert_eq!(
        dir_names(&s),
        vec!["0000000000000002-0000000000000007.snap"]
    );
}

#[test]
fn list_is_newest_first_by_index_then_term_and_ignores_other_files() {
    let (_d, s) = store();
    for i in [id(5, 3), id(9, 1), id(9, 2), id(1, 1)] {
        s.save(i, b"", &b"x"[..]).unwrap();
    }
    std::fs::write(s.dir().join("README"), b"not a snapshot").unwrap();
    std::fs::write(s.dir().join("0000000000000001-0000000000000001.wal"), b"").unwrap();
    assert_eq!(
        s.list().unwrap(),
        vec![id(9, 2), id(9, 1), id(5, 3), id(1, 1)]
    );
}

#[test]
fn saving_the_same_id_again_replaces_it() {
    let (_d, s) = store();
    s.save(id(3, 1), b"a", &b"first"[..]).unwrap();
    s.save(id(3, 1), b"b", &b"second"[..]).unwrap();
    let snap = s.load(id(3, 1)).unwrap();
    assert_eq!(
        (&snap.metadata[..], &snap.data[..]),
        (&b"b"[..], &b"second"[..])
    );
    assert_eq!(s.list().unwrap(), vec![id(3, 1)]);
}

#[test]
fn index_zero_cannot_be_saved() {
    let (_d, s) = store();
    assert!(matches!(
        s.save(id(0, 0), b"", &b""[..]),
        Err(Error::ZeroIndex { .. })
    ));
    assert!(dir_names(&s).is_empty());
}

#[test]
fn load_of_missing_snapshot_is_not_found() {
    let (_d, s) = store();
    let err = s.load(id(4, 4)).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("0000000000000004-0000000000000004.snap")
    );
}

#[test]
fn renamed_file_is_a_name_mismatch() {
    let (_d, s) = store();
    s.save(id(4, 1), b"", &b"x"[..]).unwrap();
    std::fs::rename(s.path_of(id(4, 1)), s.path_of(id(5, 1))).unwrap();
    let err = s.load(id(5, 1)).unwrap_err();
    assert_eq!(
        err.corruption(),
        Some(&Corruption::NameMismatch {
            name: id(5, 1),
            header: id(4, 1)
        })
    );
}

#[test]
fn dropped_writer_leaves_nothing() {
    let (_d, s) = store();
    let mut w = s.create(id(2, 1), b"m").unwrap();
    w.write_all(b"partial").unwrap();
    assert_eq!(
        dir_names(&s).len(),
        1,
        "the temporary file exists while writing"
    );
    drop(w);
    assert!(dir_names(&s).is_empty());
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn writer_in_progress_is_not_listed() {
    let (_d, s) = store();
    let mut w = s.create(id(2, 1), b"m").unwrap();
    w.write_all(b"partial").unwrap();
    w.flush().unwrap();
    assert!(s.list().unwrap().is_empty());
    assert_eq!(w.data_len(), 7);
    w.commit().unwrap();
    assert_eq!(s.list().unwrap(), vec![id(2, 1)]);
}

#[test]
fn open_removes_temporary_files_of_a_crashed_save() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path()).unwrap();
        s.save(id(1, 1), b"", &b"kept"[..]).unwrap();
        let mut w = s.create(id(2, 1), b"m").unwrap();
        w.write_all(b"cut short by a crash").unwrap();
        // A crash: no commit, no drop.
        std::mem::forget(w);
    }
    std::fs::write(dir.path().join("anything.tmp"), b"garbage").unwrap();
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(
        dir_names(&s),
        vec!["0000000000000001-0000000000000001.snap"]
    );
    assert_eq!(s.load(id(1, 1)).unwrap().data, b"kept");
}

#[test]
fn load_newest_of_falls_back_and_names_every_file_when_none_is_valid() {
    let (_d, s) = store();
    s.save(id(10, 1), b"", &b"ten"[..]).unwrap();
    s.save(id(20, 2), b"", &b"twenty"[..]).unwrap();
    s.save(id(30, 2), b"", &b"thirty"[..]).unwrap();
    // Damage the newest: flip one data byte.
    let p = s.path_of(id(30, 2));
    let mut b = std::fs::read(&p).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0x40;
    std::fs::write(&p, b).unwrap();

    // Not marked (an orphan) snapshots are not considered, even if valid.
    let snap = s
        .load_newest_of([id(10, 1), id(30, 2), id(0, 0)])
        .unwrap()
        .unwrap();
    assert_eq!(snap.data, b"ten");
    let snap = s.load_newest_of(s.list().unwrap()).unwrap().unwrap();
    assert_eq!(snap.data, b"twenty");

    // Truncate the middle one too, and name a purged one.
    std::fs::write(s.path_of(id(20, 2)), b"RAFTWSNP").unwrap();
    std::fs::remove_file(s.path_of(id(10, 1))).unwrap();
    let err = s
        .load_newest_of([id(10, 1), id(20, 2), id(30, 2)])
        .unwrap_err();
    let Error::NoValidSnapshot { tried } = &err else {
        panic!("{err}")
    };
    assert_eq!(tried.len(), 3);
    let msg = err.to_string();
    for (name, why) in [
        (
            "0000000000000002-000000000000001e.snap",
            "checksum mismatch",
        ),
        ("0000000000000002-0000000000000014.snap", "too short"),
        (
            "0000000000000001-000000000000000a.snap",
            "no such snapshot file",
        ),
    ] {
        assert!(msg.contains(name) && msg.contains(why), "{msg}");
    }
    // Newest first.
    assert!(msg.find("1e.snap") < msg.find("14.snap"));
}

#[test]
fn load_newest_of_nothing_is_none() {
    let (_d, s) = store();
    assert!(s.load_newest_of([]).unwrap().is_none());
    assert!(s.load_newest_of([id(0, 0)]).unwrap().is_none());
}

#[test]
fn remove_is_idempotent() {
    let (_d, s) = store();
    s.save(id(1, 1), b"", &b""[..]).unwrap();
    assert!(s.remove(id(1, 1)).unwrap());
    assert!(!s.remove(id(1, 1)).unwrap());
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn purge_keeps_the_n_newest() {
    let (_d, s) = store();
    for i in 1..=5 {
        s.save(id(i, 1), b"", &b""[..]).unwrap();
    }
    assert_eq!(s.purge(2).unwrap(), vec![id(3, 1), id(2, 1), id(1, 1)]);
    assert_eq!(s.list().unwrap(), vec![id(5, 1), id(4, 1)]);
    assert!(s.purge(2).unwrap().is_empty());
    assert_eq!(s.purge(0).unwrap().len(), 2);
}

#[test]
fn no_sync_option_still_saves() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_with(
        dir.path(),
        Options {
            sync: false,
            ..Options::default()
        },
    )
    .unwrap();
    s.save(id(1, 1), b"m", &b"d"[..]).unwrap();
    assert_eq!(s.load(id(1, 1)).unwrap().data, b"d");
}

/// A minimal `tracing` subscriber that records each event's fields as text.
struct Capture(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields(format!("{}", event.metadata().level()));
        event.record(&mut f);
        self.0.lock().unwrap().push(f.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn skipping_a_damaged_snapshot_warns_naming_the_file() {
    let (_d, s) = store();
    s.save(id(1, 1), b"", &b"old"[..]).unwrap();
    s.save(id(2, 1), b"", &b"new"[..]).unwrap();
    std::fs::write(s.path_of(id(2, 1)), b"").unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let snap = tracing::subscriber::with_default(Capture(events.clone()), || {
        s.load_newest_of([id(1, 1), id(2, 1)]).unwrap().unwrap()
    });
    assert_eq!(snap.id, id(1, 1));
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].starts_with("WARN"), "{events:?}");
    assert!(
        events[0].contains("0000000000000001-0000000000000002.snap")
            && events[0].contains("too short"),
        "{events:?}"
    );
}

/// The review's case: a node reads the membership from the metadata before (or without) reading
/// the data, so `open_reader` must refuse metadata that does not match its checksum.
#[test]
fn open_reader_refuses_damaged_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let store = raftwood_snap::Store::open(dir.path()).unwrap();
    let id = raftwood_snap::SnapshotId { index: 5, term: 1 };
    store.save(id, b"voters=1,2,3", &b"data"[..]).unwrap();
    let path = store.path_of(id);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[raftwood_snap::format::HEADER_LEN + 7] = b'9'; // voters=1,2,3 -> voters=9,2,3
    std::fs::write(&path, bytes).unwrap();
    let err = store.open_reader(id).unwrap_err();
    assert!(
        matches!(
            err.corruption(),
            Some(raftwood_snap::Corruption::HeadChecksumMismatch { .. })
        ),
        "{err}"
    );
    assert!(store.load(id).is_err());
}
