//! [`WalThread`] (issue 9, item 9): batches submitted concurrently are staged in ticket order,
//! none lost, and each group taken together is one batch on disk (one commit record), so a crash
//! still leaves at most one unfinished batch.

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::{indexes, opts};
use raftwood_wal::decode::{Record, decode_segment};
use raftwood_wal::fsio::{Fault, Fs, OpKind, Recorder};
use raftwood_wal::{Batch, Error, Marker, Options, Wal, WalThread};

const WRITERS: u64 = 8;
const PER_WRITER: u64 = 150;

/// Each writer submits batches of two records, a marker `(writer, seq)` and a state naming the
/// same pair, and remembers each batch's ticket. Read back from the segment files in order, the
/// batches must appear exactly in ticket order, every one of them, each whole inside one WAL
/// batch (a group never splits a submitted batch).
#[test]
fn concurrent_submitters_never_reorder_or_lose_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments: groups cross rotations too.
    let (wal, _) = Wal::open(dir.path(), opts(4096)).unwrap();
    let thread = WalThread::spawn(wal);
    let tickets = Mutex::new(HashMap::new());
    std::thread::scope(|s| {
        for writer in 0..WRITERS {
            let (thread, tickets) = (&thread, &tickets);
            s.spawn(move || {
                for seq in 0..PER_WRITER {
                    let mut batch = Batch::new();
                    batch
                        .marker(Marker {
                            index: writer,
                            term: seq,
                        })
                        .state(format!("{writer}/{seq}").into_bytes());
                    let ticket = thread.submit(batch).unwrap();
                    tickets
                        .lock()
                        .unwrap()
                        .insert((writer, seq), ticket.number());
                    // Some writers wait for each batch, others run ahead: both must be fine.
                    if writer % 2 == 0 {
                        thread.wait(ticket).unwrap();
                    }
                }
            });
        }
    });
    let total = WRITERS * PER_WRITER;
    assert_eq!(thread.durable(), total);
    let wal = thread.shutdown().unwrap();
    let tickets = tickets.into_inner().unwrap();

    // Walk the segments in order, WAL batch by WAL batch.
    let mut seen = Vec::new();
    let mut wal_batches = 0;
    for path in wal.segment_paths() {
        let bytes = std::fs::read(&path).unwrap();
        let mut records: Vec<(u64, String)> = Vec::new();
        let (_, damage) = decode_segment(&bytes, |offset, record| match record {
            Record::Marker { index, term } => records.push((offset, format!("{index}/{term}"))),
            Record::State(state) => records.push((offset, String::from_utf8_lossy(state).into())),
            other => panic!("unexpected record {other:?}"),
        })
        .unwrap();
        assert_eq!(damage, None);
        let mut batch_offsets: Vec<u64> = records.iter().map(|r| r.0).collect();
        batch_offsets.dedup();
        wal_batches += batch_offsets.len();
        // A rotated segment starts with a copy of the newest state, alone in its batch.
        let mut records = records.into_iter().peekable();
        if let (Some(first), Some(second)) = (records.next(), records.peek()) {
            if first.0 != second.0 {
                // The carried state: skip it.
            } else {
                let (offset, marker) = first;
                let (o2, state) = records.next().unwrap();
                assert_eq!((offset, &marker), (o2, &state), "a batch was split");
                seen.push(marker);
            }
        }
        while let Some((offset, marker)) = records.next() {
            let (o2, state) = records.next().unwrap();
            assert_eq!((offset, &marker), (o2, &state), "a batch was split");
            seen.push(marker);
        }
    }
    let order: Vec<u64> = seen
        .iter()
        .map(|pair| {
            let (writer, seq) = pair.split_once('/').unwrap();
            tickets[&(writer.parse().unwrap(), seq.parse().unwrap())]
        })
        .collect();
    assert_eq!(
        order,
        (1..=total).collect::<Vec<_>>(),
        "ticket order on disk"
    );
    assert!(wal_batches <= total as usize + wal.segment_paths().len());
}

/// A batch submitted and waited for survives a reopen; the log holds exactly what was
/// submitted, and `with_wal` reaches the log between groups.
#[test]
fn waited_batches_are_in_the_log_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), Options::default()).unwrap();
    let thread = WalThread::spawn(wal);
    let mut tickets = Vec::new();
    for index in 1..=20 {
        let mut batch = Batch::new();
        batch.entry(index, vec![index as u8; 10]);
        tickets.push(thread.submit(batch).unwrap());
    }
    thread.wait(*tickets.last().unwrap()).unwrap();
    assert!(tickets.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(thread.with_wal(|wal| wal.last_index()), Some(20));
    drop(thread);
    let (_, replay) = Wal::open(dir.path(), Options::default()).unwrap();
    assert_eq!(indexes(&replay), (1..=20).collect::<Vec<_>>());
}

/// A failed fdatasync stops the thread: the waiter is told (`Poisoned`), later submits are
/// refused, and `shutdown` returns the error that stopped it. Nothing unsynced is acknowledged.
#[test]
fn a_failed_sync_is_reported_to_waiters_and_by_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let options = Options {
        fs: Fs::with_hook(recorder.clone()),
        ..Options::default()
    };
    let (wal, _) = Wal::open(dir.path(), options).unwrap();
    let thread = WalThread::spawn(wal);
    let mut batch = Batch::new();
    batch.entry(1, b"fine".to_vec());
    thread.commit(batch).unwrap();

    recorder.fail_next(|op| op.kind == OpKind::Fdatasync, Fault::Eio);
    let mut batch = Batch::new();
    batch.entry(2, b"its sync fails".to_vec());
    let ticket = thread.submit(batch).unwrap();
    assert!(matches!(thread.wait(ticket), Err(Error::Poisoned)));
    assert_eq!(thread.durable(), 1);
    assert!(matches!(thread.submit(Batch::new()), Err(Error::Poisoned)));
    assert!(matches!(
        thread.shutdown(),
        Err(Error::Io {
            op: "fdatasync",
            ..
        })
    ));
}

#[test]
fn a_record_over_the_limit_is_refused_on_submit() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    let thread = WalThread::spawn(wal);
    let mut batch = Batch::new();
    batch.entry(1, vec![0u8; raftwood_wal::format::MAX_PAYLOAD_LEN]);
    assert!(matches!(
        thread.submit(batch),
        Err(Error::RecordTooLarge { .. })
    ));
    let mut batch = Batch::new();
    batch.entry(1, b"fine".to_vec());
    thread.commit(batch).unwrap();
}

/// The crash rule, seen in the file-system calls: a group's bytes reach the file only after the
/// previous group's fdatasync returned (the calls on segments alternate `write`, `fdatasync`, with
/// rotations between), so at most the last group is ever unsynced.
#[test]
fn no_group_is_written_before_the_previous_one_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let options = Options {
        segment_size: 2048,
        fs: Fs::with_hook(recorder.clone()),
        ..Options::default()
    };
    let (wal, _) = Wal::open(dir.path(), options).unwrap();
    let thread = WalThread::spawn(wal);
    recorder.clear();
    std::thread::scope(|s| {
        for writer in 0..8u64 {
            let thread = &thread;
            s.spawn(move || {
                for seq in 0..40u64 {
                    let mut batch = Batch::new();
                    batch.marker(Marker {
                        index: writer,
                        term: seq,
                    });
                    thread.commit(batch).unwrap();
                }
            });
        }
    });
    drop(thread);
    let is_segment = |op: &raftwood_wal::fsio::Op| op.path.extension().is_some_and(|x| x == "wal");
    let mut unsynced_write = false;
    let mut fdatasyncs = 0;
    for op in recorder.ops().iter().filter(|op| is_segment(op)) {
        match op.kind {
            OpKind::Write => {
                assert!(
                    !unsynced_write,
                    "a write before the previous one was synced"
                );
                unsynced_write = true;
            }
            OpKind::Fdatasync => {
                unsynced_write = false;
                fdatasyncs += 1;
            }
            _ => {}
        }
    }
    assert!(!unsynced_write);
    assert!(fdatasyncs <= 8 * 40 + 20, "{fdatasyncs} syncs");
}
