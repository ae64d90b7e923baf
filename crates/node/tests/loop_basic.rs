//! Proposing and committing through the loop, on one node and on three.
#![allow(clippy::unwrap_used)]

mod common;

use common::Cluster;

#[test]
fn propose_and_commit_on_one_node() {
    let mut c = Cluster::new(1);
    c.elect(1);
    c.propose(1, 7, "foo");
    c.propose(1, 8, "bar");
    assert_eq!(c.commands(1), ["foo", "bar"]);
    let status = c.m(1).node().status().lock().clone();
    assert_eq!(
        status.applied_index, 3,
        "the leader's empty entry, then two"
    );
    assert!(c.m(1).errors().is_empty());
}

#[test]
fn propose_and_commit_on_three_nodes() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, 1, "a");
    // A follower's proposal is forwarded to the leader.
    c.propose(3, 2, "b");
    c.tick(2); // heartbeats carry the commit index to the followers
    for id in 1..=3 {
        assert_eq!(c.commands(id), ["a", "b"], "node {id}");
    }
}

#[test]
fn a_proposal_without_a_leader_comes_back_with_its_id() {
    let mut c = Cluster::new(3);
    c.propose(2, 42, "lost");
    let errors = c.m(2).errors();
    assert!(
        matches!(
            errors.as_slice(),
            [raftwood_node::NodeError::ProposalDropped { id: 42, .. }]
        ),
        "{errors:?}"
    );
}

/// Fails without the size check: the entry is proposed, committed and applied (and over TCP, an
/// entry above the frame size would stop replication for good).
#[test]
fn a_proposal_above_max_entry_size_is_dropped_with_its_reason() {
    let mut c = Cluster::with(1, |cfg| cfg.max_entry_size = 8);
    c.elect(1);
    c.propose(1, 1, "12345678");
    c.propose(1, 2, "123456789");
    assert_eq!(c.commands(1), ["12345678"]);
    let errors = c.m(1).errors();
    assert!(
        matches!(
            errors.as_slice(),
            [raftwood_node::NodeError::ProposalDropped {
                id: 2,
                error: raftwood_node::DropReason::TooLarge { size: 9, max: 8 },
            }]
        ),
        "{errors:?}"
    );
}
