//! The threaded loop batches what waited for it: appends a follower received while it was busy
//! (in the benchmark, during its WAL sync) make one Ready, one WAL batch and one sync.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{RecordingLog, RecordingTransport, Step, Trace};
use parking_lot::Mutex;
use raftwood_node::transport::memory::MemoryNetwork;
use raftwood_node::transport::{EVENTS_CAPACITY, TransportEvent};
use raftwood_node::{ManualClock, Node, Outcome, StartFrom};
use raftwood_raft::{Entry, Message, MessageBody};

/// Leader 1's append of entry `i` (term 1) to node 2, continuing entry `i - 1`.
fn append(i: u64) -> TransportEvent {
    TransportEvent::Message(Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::Append {
            prev_index: i - 1,
            prev_term: u64::from(i > 1),
            entries: vec![Entry {
                index: i,
                term: 1,
                data: Bytes::from(format!("e{i}")),
                ..Default::default()
            }],
            commit: 0,
        },
    })
}

#[test]
fn queued_appends_make_one_batch_and_one_sync() {
    const N: u64 = 8;
    let net = MemoryNetwork::new();
    let (inner, _unused) = net.join(2);
    // The loop's event channel, filled before it starts: the appends wait as they would have
    // during a sync.
    let (events_tx, events) = crossbeam_channel::bounded(EVENTS_CAPACITY);
    for i in 1..=N {
        events_tx.send(append(i)).unwrap();
    }
    let trace: Trace = Arc::default();
    let log = RecordingLog {
        trace: Arc::clone(&trace),
        fail_next_save: Arc::new(Mutex::new(false)),
        fail_next_save_snap: Arc::new(Mutex::new(false)),
    };
    let transport = RecordingTransport {
        inner,
        trace: Arc::clone(&trace),
    };
    let node = Node::start(
        common::config(2, 3),
        StartFrom::Fresh,
        log,
        transport,
        events,
        ManualClock::new(),
        || Ok((0, Bytes::new())),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.handle.status().raft.last_index < N {
        assert!(Instant::now() < deadline, "the appends were not taken");
        std::thread::sleep(Duration::from_millis(1));
    }
    node.handle.stop();
    assert_eq!(node.thread.join().unwrap().unwrap(), Outcome::Stopped);

    let trace = trace.lock();
    let saves: Vec<(Vec<u64>, bool)> = trace
        .iter()
        .filter_map(|s| match s {
            Step::Save {
                entries, synced, ..
            } if !entries.is_empty() => Some((entries.iter().map(|e| e.index).collect(), *synced)),
            _ => None,
        })
        .collect();
    assert_eq!(
        saves,
        vec![((1..=N).collect(), true)],
        "the queued appends should be written as one batch with one sync"
    );
    // And acknowledged only after it.
    let save_at = trace
        .iter()
        .position(|s| matches!(s, Step::Save { entries, .. } if !entries.is_empty()))
        .unwrap();
    let last_ack = trace.iter().enumerate().rev().find_map(|(at, s)| match s {
        Step::Send(msgs) => msgs.iter().rev().find_map(|m| match m.body {
            MessageBody::AppendAccepted { match_index } => Some((at, match_index)),
            _ => None,
        }),
        _ => None,
    });
    let (ack_at, match_index) = last_ack.expect("the appends are acknowledged");
    assert!(ack_at > save_at && match_index == N);
}
