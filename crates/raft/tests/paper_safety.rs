//! Tests named after the Raft paper's safety rules (§5.4), each citing its section: the election
//! restriction (§5.4.1: a voter refuses a candidate whose log is less up-to-date than its own) and
//! the commit rule (§5.4.2: only entries of the leader's current term are committed by counting
//! replicas), with the three situations of Figure 8 that show why. Every test is shaped init →
//! step → assert, like the other `paper_*.rs`.
//!
//! Single nodes are driven through the public `RawNode` API, with a `MemStorage` as their disk;
//! Figure 8 (d) and (e), which need several nodes, use the testkit's [`Cluster`], which also runs
//! the Figure 3 safety checks. The helpers are in `common/mod.rs`.

mod common;

use std::collections::BTreeMap;

use raftwood_raft::testkit::{Cluster, ClusterOptions};
use raftwood_raft::{HardState, MessageBody, Term};

use common::{
    config, disk, drain, leader_with, log_of, msg, node_with, step, term, vote_request, votes_sent,
};

// --- Election restriction (§5.4.1) -------------------------------------------------------------

/// §5.4.1: "the voter denies its vote if its own log is more up-to-date than that of the
/// candidate": compare the last entries' terms; with equal terms, the longer log is more
/// up-to-date.
#[test]
fn vote_rejected_when_candidate_log_not_up_to_date() {
    // The voter's log ends at 3@2.
    let voter_log = [1, 1, 2];
    let cases = [
        // (candidate's last index, last term, granted)
        (3, 2, true),  // same log end
        (4, 2, true),  // same last term, longer
        (1, 3, true),  // higher last term, even though shorter
        (2, 2, false), // same last term, shorter
        (9, 1, false), // longer, but lower last term
        (0, 0, false), // empty
    ];
    for (last_index, last_term, granted) in cases {
        let mut n = node_with(config(1), disk(&[1, 2, 3], &voter_log, 2));

        step(&mut n, vote_request(2, 1, 3, last_index, last_term));
        let sent = drain(&mut n);

        assert_eq!(
            votes_sent(&sent),
            vec![(2, 3, granted)],
            "candidate last={last_index}@{last_term}"
        );
    }
}

// --- Committing entries from previous terms (§5.4.2, Figure 8) ---------------------------------

/// §5.4.2: "Raft never commits log entries from previous terms by counting replicas. Only log
/// entries from the leader's current term are committed by counting replicas."
#[test]
fn leader_commits_only_current_term_entries() {
    // Entry 1@1 is on every node but was never committed; node 1 becomes leader of term 2.
    let mut n = leader_with(config(1), disk(&[1, 2, 3], &[1], 1), &[1, 2, 3]);
    assert_eq!(log_of(&n), vec![(1, 1), (2, 2)]);

    // Both followers hold 1@1: a majority, but of an old term.
    step(
        &mut n,
        msg(2, 1, 2, MessageBody::AppendAccepted { match_index: 1 }),
    );
    step(
        &mut n,
        msg(3, 1, 2, MessageBody::AppendAccepted { match_index: 1 }),
    );
    drain(&mut n);
    assert_eq!(n.status().hard_state.commit, 0);

    // 2@2, of the current term, reaches a majority: it commits, and 1@1 with it.
    step(
        &mut n,
        msg(2, 1, 2, MessageBody::AppendAccepted { match_index: 2 }),
    );
    drain(&mut n);
    assert_eq!(n.status().hard_state.commit, 2);
}

/// Figure 8 (c): a leader does not commit an entry of an earlier term by counting replicas, even
/// once it knows that a majority stores it. The logs are the figure's, shifted by one index because
/// our leaders append an empty entry (§8): S1 held [1@1 2@2] and wins term 4, appending 3@4; S2 and
/// S3 acknowledge 2@2.
#[test]
fn figure8_old_term_entry_on_a_majority_is_not_committed() {
    let voters = [1, 2, 3, 4, 5];
    let mut s1 = disk(&voters, &[1, 2], 3);
    s1.set_hard_state(HardState {
        term: 3,
        vote: None,
        commit: 1,
    });
    let mut n = leader_with(config(1), s1, &voters);
    assert_eq!((term(&n), log_of(&n)), (4, vec![(1, 1), (2, 2), (3, 4)]));

    step(
        &mut n,
        msg(2, 1, 4, MessageBody::AppendAccepted { match_index: 2 }),
    );
    step(
        &mut n,
        msg(3, 1, 4, MessageBody::AppendAccepted { match_index: 2 }),
    );
    drain(&mut n);

    assert_eq!(
        n.status().hard_state.commit,
        1,
        "2@2 is on S1, S2, S3 but not committed"
    );
}

/// Figure 8 (d): why the rule of (c) matters. S1 crashes with 2@2 on S1, S2 and S3. S5, whose last
/// entry 2@3 has a higher term, is elected by S2, S3 and S4 and overwrites 2@2 everywhere. Had S1
/// committed 2@2, a committed entry would now be lost.
#[test]
fn figure8_old_term_entry_on_a_majority_can_be_overwritten() {
    let voters = [1, 2, 3, 4, 5];
    let with_hs = |terms: &[Term], term, vote| {
        let mut d = disk(&voters, terms, term);
        d.set_hard_state(HardState {
            term,
            vote,
            commit: 1,
        });
        d
    };
    let disks = BTreeMap::from([
        (1, with_hs(&[1, 2, 4], 4, Some(1))),
        (2, with_hs(&[1, 2], 4, Some(1))),
        (3, with_hs(&[1, 2], 4, Some(1))),
        (4, with_hs(&[1], 4, Some(1))),
        (5, with_hs(&[1, 3], 3, Some(5))),
    ]);
    let mut c = Cluster::with_disks(disks, ClusterOptions::default());
    c.crash(1);

    // Term 4 is taken (everyone voted for S1); S5 wins term 5.
    for _ in 0..2 {
        c.campaign(5);
        assert!(c.stabilize());
    }

    assert_eq!(c.leader(), Some(5));
    for id in [2, 3, 4, 5] {
        let n = c.node(id).expect("up");
        assert_eq!(
            log_of(n)[..2],
            [(1, 1), (2, 3)],
            "node {id}: 2@2 replaced by 2@3"
        );
    }
    c.check_safety().expect("nothing committed was lost");
}

/// Figure 8 (e): once the leader commits an entry of its own term (3@4 on S1, S2, S3), the old-term
/// entry before it is committed too, and S5 can no longer be elected to overwrite it.
#[test]
fn figure8_current_term_entry_commits_earlier_ones_and_blocks_stale_candidates() {
    let voters = [1, 2, 3, 4, 5];
    let hs = |term, vote| HardState {
        term,
        vote,
        commit: 1,
    };
    let with_hs = |terms: &[Term], h: HardState| {
        let mut d = disk(&voters, terms, h.term);
        d.set_hard_state(h);
        d
    };
    let disks = BTreeMap::from([
        (1, with_hs(&[1, 2, 4], hs(4, Some(1)))),
        (2, with_hs(&[1, 2, 4], hs(4, Some(1)))),
        (3, with_hs(&[1, 2, 4], hs(4, Some(1)))),
        (4, with_hs(&[1], hs(4, Some(1)))),
        (5, with_hs(&[1, 3], hs(3, Some(5)))),
    ]);
    let mut c = Cluster::with_disks(disks, ClusterOptions::default());
    c.crash(1);

    // S5 campaigns again and again: S2 and S3 refuse (their last entry 3@4 is more up-to-date than
    // its 2@3), and without one of them there is no majority.
    for _ in 0..5 {
        c.campaign(5);
        assert!(c.stabilize());
        assert_ne!(c.leader(), Some(5));
    }

    // Whoever wins in the end (S2 or S3) keeps 2@2 and 3@4 and commits them everywhere.
    for _ in 0..200 {
        if c.leader().is_some() {
            break;
        }
        for id in c.ids() {
            c.tick(id);
        }
        c.stabilize();
    }
    let l = c.leader().expect("a leader is elected");
    assert!([2, 3].contains(&l), "leader {l}");
    for id in [2, 3, 4, 5] {
        let n = c.node(id).expect("up");
        assert_eq!(&log_of(n)[..3], &[(1, 1), (2, 2), (3, 4)], "node {id}");
    }
    c.check_safety().expect("Figure 3 holds");
}
