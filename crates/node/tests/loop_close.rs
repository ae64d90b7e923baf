//! Ports of raftexample's `TestCloseProposerBeforeReplay` and `TestCloseProposerInflight`: closing
//! the proposal side (dropping the handle, as closing `proposeC`) stops the node cleanly, its log
//! synced and closed, with no error.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Step;
use common::threaded::start;
use raftwood_node::transport::memory::MemoryNetwork;
use raftwood_node::{Apply, Node, Outcome, Proposal};

/// raftexample's `closeNoErrors`: close the proposer, drain the commits until the node closes
/// them, and check it stopped without an error.
fn close_no_errors(node: Node, trace: &common::Trace) {
    let Node {
        handle,
        apply,
        errors,
        thread,
    } = node;
    drop(handle);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match apply.recv_deadline(deadline) {
            Ok(_) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            Err(e) => panic!("the node did not close its apply channel: {e}"),
        }
    }
    assert_eq!(thread.join().unwrap().unwrap(), Outcome::Stopped);
    let errs: Vec<_> = errors.try_iter().collect();
    assert!(errs.is_empty(), "{errs:?}");
    assert!(
        matches!(trace.lock().last(), Some(Step::Close)),
        "the log was closed"
    );
}

/// TestCloseProposerBeforeReplay: closed before raft even starts.
#[test]
fn close_proposer_before_replay() {
    let net = MemoryNetwork::new();
    let (node, trace) = start(&net, 1, 1);
    close_no_errors(node, &trace);
}

/// TestCloseProposerInflight: closed while committed entries are being published.
#[test]
fn close_proposer_inflight() {
    let net = MemoryNetwork::new();
    let (node, trace) = start(&net, 1, 1);
    // Wait for the node to lead, so that the proposals are not dropped.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while node.handle.status().raft.soft_state.leader != Some(1) {
        assert!(std::time::Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(2));
    }
    let proposer = node.handle.clone();
    let inflight = std::thread::spawn(move || {
        for (id, data) in [(1, "foo"), (2, "bar")] {
            proposer
                .propose(Proposal {
                    id,
                    data: Bytes::from_static(data.as_bytes()),
                })
                .unwrap();
        }
    });
    // Wait for one message.
    let first = loop {
        match node.apply.recv_timeout(Duration::from_secs(10)).unwrap() {
            Apply::Entries(ents) => {
                if let Some(e) = ents.into_iter().find(|e| !e.data.is_empty()) {
                    break e;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(first.data.as_ref(), b"foo");
    inflight.join().unwrap();
    close_no_errors(node, &trace);
}

/// The application's stop request does the same as closing the proposer.
#[test]
fn stop_request_finishes_and_closes_the_log() {
    let net = MemoryNetwork::new();
    let (node, trace) = start(&net, 1, 1);
    node.handle.stop();
    let outcome = node.thread.join().unwrap().unwrap();
    assert_eq!(outcome, Outcome::Stopped);
    assert!(matches!(trace.lock().last(), Some(Step::Close)));
}

/// The clock seam: with a manual clock, the threaded loop does nothing until time is given.
#[test]
fn a_manual_clock_drives_the_threaded_loop() {
    let net = MemoryNetwork::new();
    let clock = raftwood_node::ManualClock::new();
    let (node, trace) = common::threaded::start_with(&net, 1, 1, clock.clone());
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        node.handle.status().raft.soft_state.leader,
        None,
        "no time, no election"
    );
    clock.tick(30);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while node.handle.status().raft.soft_state.leader != Some(1) {
        assert!(
            std::time::Instant::now() < deadline,
            "no leader after 30 ticks"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    close_no_errors(node, &trace);
}
