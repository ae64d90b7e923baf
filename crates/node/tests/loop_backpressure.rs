//! The threaded loop with an application that stops consuming: the loop stops taking proposals
//! (they wait in their bounded channel and the proposer blocks) instead of piling committed
//! entries up in raft's memory; once the application drains, everything arrives, in order.
#![allow(clippy::unwrap_used)]

mod common;

use common::threaded;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use raftwood_node::serve::MAX_PROPOSALS_PER_TURN;
use raftwood_node::transport::memory::MemoryNetwork;
use raftwood_node::{Apply, ManualClock, NodeStats, Proposal};

const PROPOSALS: u64 = 3_000;
const CAPACITY: usize = 16;

/// Fails without the held proposals arm: the loop takes all 3,000 proposals while the
/// application consumes nothing (raft holds them all, committed, in memory). With it, the loop
/// takes one turn's worth (at most `MAX_PROPOSALS_PER_TURN`: the turn drains the channel while
/// the proposer refills it), commits them, finds the application behind, and holds.
#[test]
fn a_backed_up_application_stops_the_loop_taking_proposals() {
    let net = MemoryNetwork::new();
    let clock = ManualClock::new();
    let (node, _trace) = threaded::start_tuned(&net, 1, 1, clock.clone(), |cfg| {
        cfg.apply_capacity = 1;
        cfg.proposal_capacity = CAPACITY;
    });
    clock.tick(30);
    threaded::wait_leader(&node, 1);
    let proposed = Arc::new(AtomicU64::new(0));
    let proposer = {
        let handle = node.handle.clone();
        let proposed = Arc::clone(&proposed);
        std::thread::spawn(move || {
            for i in 0..PROPOSALS {
                let data = Bytes::from(format!("p{i}"));
                handle.propose(Proposal { id: i, data }).unwrap();
                proposed.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // The application sleeps (its channel holds the leader's empty entry): the loop takes a
    // turn's worth, commits it, and then holds.
    std::thread::sleep(Duration::from_millis(300));
    let taken = NodeStats::get(&node.handle.stats().proposals);
    assert!(
        taken <= MAX_PROPOSALS_PER_TURN as u64,
        "the loop took {taken} proposals while the application was backed up"
    );
    assert!(
        proposed.load(Ordering::Relaxed) < PROPOSALS,
        "the proposer never waited"
    );
    // The application catches up: every proposal arrives, in order.
    let mut got = Vec::new();
    while got.len() < PROPOSALS as usize {
        match node.apply.recv_timeout(Duration::from_secs(10)) {
            Ok(Apply::Entries(ents)) => got.extend(
                ents.into_iter()
                    .filter(|e| !e.data.is_empty())
                    .map(|e| String::from_utf8_lossy(&e.data).into_owned()),
            ),
            Ok(_) => {}
            Err(e) => panic!("stalled after {} entries: {e}", got.len()),
        }
    }
    let expected: Vec<String> = (0..PROPOSALS).map(|i| format!("p{i}")).collect();
    assert_eq!(got, expected);
    proposer.join().unwrap();
    node.handle.stop();
    node.thread.join().unwrap().unwrap();
}
