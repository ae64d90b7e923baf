//! A torn-tail repair says what it removed (issue 9, item 4): an error-level log event and
//! `Replay::torn_tail`, with the bytes removed and the frames in them that still decode. Both fail
//! without the fix: the repair was a warning naming only the byte count, and `Replay` said nothing.
//!
//! One test per file here: `tracing` caches whether a call site is enabled process-wide, so a
//! torn tail repaired on another test thread without a subscriber can hide the event from this
//! one's. (`rules.rs` has the report of damage in a synced last batch.)

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::{indexes, open, opts, segment_files};
use raftwood_wal::TornTail;

/// A minimal `tracing` subscriber that records each event's level and fields as text.
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
fn an_unfinished_batch_is_reported_with_the_frames_that_still_decode() {
    let dir = tempfile::tempdir().unwrap();
    let good_len = {
        let (mut wal, _) = open(dir.path(), opts(1 << 20));
        wal.append_entry(1, b"synced").unwrap();
        wal.sync().unwrap();
        let good_len = wal.active_segment().len;
        // A crash after the batch's records reached the file, before its commit record did.
        wal.append_entry(2, b"torn").unwrap();
        wal.append_state(b"hs").unwrap();
        wal.append_entry(3, b"torn").unwrap();
        wal.write_staged().unwrap();
        good_len
    };
    let path = segment_files(dir.path()).pop().unwrap();
    let file_len = std::fs::metadata(&path).unwrap().len();

    let events = Arc::new(Mutex::new(Vec::new()));
    let (_wal, replay) = tracing::subscriber::with_default(Capture(events.clone()), || {
        open(dir.path(), opts(1 << 20))
    });
    assert_eq!(indexes(&replay), [1]);
    assert_eq!(
        replay.torn_tail,
        Some(TornTail {
            path: path.clone(),
            offset: good_len,
            removed_bytes: file_len - good_len,
            intact_frames: 3,
            intact_commits: 0,
            intact_entries: 2,
            intact_entry_range: Some((2, 3)),
        })
    );
    let events = events.lock().unwrap();
    let repair: Vec<&String> = events.iter().filter(|e| e.contains("torn tail")).collect();
    assert_eq!(repair.len(), 1, "{events:?}");
    assert!(repair[0].starts_with("ERROR"), "{repair:?}");
    for field in [
        format!("removed_bytes={}", file_len - good_len),
        "intact_frames=3".to_string(),
        "intact_entries=2".to_string(),
        "intact_entry_range=Some((2, 3))".to_string(),
    ] {
        assert!(repair[0].contains(&field), "{field} missing: {repair:?}");
    }
}
