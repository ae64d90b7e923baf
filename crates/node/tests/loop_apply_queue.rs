//! A slow application: its apply channel full, the node keeps ticking, stepping, persisting and
//! sending, and once the application drains, every entry arrives exactly once, in order.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Cluster, Step};
use raftwood_node::NodeStats;

#[test]
fn a_full_apply_queue_holds_entries_back_and_loses_none() {
    let mut c = Cluster::with(3, |cfg| cfg.apply_capacity = 2);
    c.elect(1);
    c.m(1).consuming = false;
    c.m(1).drain(); // what came before the test
    let term = c.m(1).node().raw().status().hard_state.term;
    for i in 0..40 {
        c.propose(1, i, &format!("p{i}"));
    }
    // Time passes with the leader's application stuck.
    c.tick(50);
    let m1 = c.m(1);
    assert_eq!(m1.receivers.apply.len(), 2, "the channel is full");
    let status = m1.node().raw().status();
    assert_eq!(
        status.soft_state.leader,
        Some(1),
        "heartbeats kept the leadership"
    );
    assert_eq!(
        status.hard_state.term, term,
        "no election: the followers heard heartbeats"
    );
    assert!(status.hard_state.commit >= 41, "commitment went on");
    assert!(status.applied < 41, "the held entries were not handed out");
    assert!(NodeStats::get(&m1.node().stats().apply_pauses) > 0);
    let persisted: usize = m1
        .trace
        .lock()
        .iter()
        .map(|s| match s {
            Step::Save { entries, .. } => entries.len(),
            _ => 0,
        })
        .sum();
    assert!(persisted >= 41, "persistence went on: {persisted} entries");
    // The followers applied everything meanwhile.
    assert_eq!(c.commands(2).len(), 40);
    // The application catches up, a little at a time.
    c.m(1).consuming = true;
    for _ in 0..100 {
        c.m(1).drain();
        c.tick(1);
    }
    let expected: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
    assert_eq!(
        c.commands(1),
        expected,
        "none lost, none repeated, in order"
    );
}
