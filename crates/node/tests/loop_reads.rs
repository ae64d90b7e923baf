//! ReadIndex through the loop, and leadership transfer.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::Cluster;

/// A read's state comes out after every entry up to its index, even when the application is
/// slow and the entries wait.
#[test]
fn a_read_state_is_published_after_the_entries_it_waits_for() {
    let mut c = Cluster::with(3, |cfg| cfg.apply_capacity = 1);
    c.elect(1);
    c.m(1).consuming = false;
    for i in 0..5 {
        c.propose(1, i, &format!("w{i}"));
    }
    c.m(1).node().on_read_index(Bytes::from_static(b"r1"));
    c.pump();
    c.tick(2);
    c.m(1).consuming = true;
    for _ in 0..20 {
        c.m(1).drain();
        c.tick(1);
    }
    let app = c.m(1).app.lock().clone();
    assert_eq!(app.reads.len(), 1);
    let (index, ctx, commands_seen) = app.reads[0].clone();
    assert_eq!(ctx.as_ref(), b"r1");
    assert!(index >= 6, "the read waits for the five writes");
    assert_eq!(commands_seen, 5, "every write before it was applied first");
}

#[test]
fn a_read_on_a_follower_is_answered_through_the_leader() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, 1, "x");
    c.m(2).node().on_read_index(Bytes::from_static(b"f"));
    c.pump();
    c.tick(1);
    let app = c.m(2).app.lock().clone();
    assert_eq!(app.reads.len(), 1);
    assert_eq!(app.reads[0].2, 1);
}

#[test]
fn leadership_transfer_request_hands_over() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, 1, "x");
    c.m(1).node().on_transfer_leader(2);
    c.pump();
    c.tick(2);
    assert_eq!(c.leader_of(1), Some(2));
    assert_eq!(c.leader_of(3), Some(2));
    // A follower asked to transfer says who leads.
    c.m(3).node().on_transfer_leader(1);
    let errors = c.m(3).errors();
    assert!(
        matches!(
            errors.as_slice(),
            [raftwood_node::NodeError::TransferRefused { to: 1, .. }]
        ),
        "{errors:?}"
    );
}
