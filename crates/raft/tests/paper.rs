//! Tests named after the rules of the Raft paper ("In Search of an Understandable Consensus
//! Algorithm", extended version), each citing its section: terms (§5.1), leader election (§5.2),
//! log replication and commitment (§5.3, §5.4, Figures 7 and 8), proposals, flow control, the
//! thesis extensions to elections (CheckQuorum §6.2, PreVote §9.6), where raftwood departs from
//! or adds to Figure 2 (durability of votes, the applied index), and forged messages from the
//! network. Every test is shaped init → step → assert: build one node (or a simulated cluster) in
//! a precise state, hand it a message or a tick, and check what it did.
//!
//! Single nodes are driven through the public [`RawNode`] API, with a [`MemStorage`] as their disk;
//! situations that need several nodes use the testkit's [`Cluster`], which also runs the Figure 3
//! safety checks. The same shape continues in `paper_snapshots.rs` (Raft §7, thesis §5),
//! `paper_reads.rs` (thesis §6.4), `paper_transfer.rs` (thesis §3.10) and `paper_membership.rs`
//! (thesis chapter 4); the helpers are in `common/mod.rs`.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;

use raftwood_raft::testkit::{Cluster, ClusterOptions};
use raftwood_raft::{
    Entry, Error, HardState, MemStorage, Message, MessageBody, NodeId, ProposalDropped, RawNode,
    Role, Storage, Term,
};

use common::{
    append, config, disk, drain, entry, leader, leader_of, leader_with, log_of, msg, node,
    node_with, role, role_any, step, step_any, term, vote_request, vote_response, votes_sent,
};

// --- Terms (§5.1) ------------------------------------------------------------------------------

/// §5.1: "If a server's current term is smaller than the other's, then it updates its current term
/// to the larger value."
#[test]
fn follower_updates_term_from_higher_term_message() {
    let mut n = node(1, &[1, 2, 3]);
    assert_eq!(term(&n), 0);

    step(&mut n, append(2, 1, 5, (0, 0), vec![], 0));

    assert_eq!(term(&n), 5);
    assert_eq!(role(&n), Role::Follower);
    assert_eq!(
        leader_of(&n),
        Some(2),
        "an append comes from the term's leader"
    );
    drain(&mut n);
    assert_eq!(
        n.storage().hard_state().term,
        5,
        "the new term is persisted"
    );
}

/// §5.1: "If a candidate or leader discovers that its term is out of date, it immediately reverts
/// to follower state."
#[test]
fn candidate_steps_down_on_higher_term() {
    let mut n = node(1, &[1, 2, 3]);
    n.campaign();
    drain(&mut n);
    assert_eq!((role(&n), term(&n)), (Role::Candidate, 1));

    step(&mut n, vote_response(2, 1, 3, false));

    assert_eq!((role(&n), term(&n)), (Role::Follower, 3));
    assert_eq!(
        n.status().hard_state.vote,
        None,
        "no vote cast in term 3 yet"
    );
}

/// §5.1: a leader that sees a higher term in any message, even a response, steps down.
#[test]
fn leader_steps_down_on_higher_term() {
    let mut n = leader(&[1, 2, 3]);

    step(
        &mut n,
        msg(2, 1, 4, MessageBody::HeartbeatResponse { context: None }),
    );

    assert_eq!((role(&n), term(&n)), (Role::Follower, 4));
    assert_eq!(leader_of(&n), None);
}

/// §5.1: "If a server receives a request with a stale term number, it rejects the request." Here
/// "rejects" means ignores: a stale append and a stale vote request change nothing (not the log,
/// the term, the leader or the commit index) and grant no vote. No "false" reply is asserted:
/// raftwood answers a stale message only with PreVote or CheckQuorum on (a departure from Figure 2,
/// explained in `Raft::step_term`).
#[test]
fn stale_term_message_is_ignored() {
    let mut n = node_with(config(1), disk(&[1, 2, 3], &[1, 2, 3], 3));
    let before = log_of(&n);

    step(&mut n, append(2, 1, 2, (3, 3), vec![entry(4, 2)], 3));
    step(&mut n, vote_request(2, 1, 2, 9, 9));
    let sent = drain(&mut n);

    assert_eq!(log_of(&n), before);
    assert_eq!(term(&n), 3);
    assert_eq!(leader_of(&n), None);
    assert_eq!(n.status().hard_state.commit, 0);
    assert!(votes_sent(&sent).is_empty(), "no vote granted: {sent:?}");
}

// --- Leader election (§5.2) --------------------------------------------------------------------

/// §5.2: "election timeouts are chosen randomly from a fixed interval", here
/// `[election_tick, 2 * election_tick)`. Measured from outside: the ticks a follower waits before
/// it asks for votes, over many seeds.
#[test]
fn election_timeout_is_randomized_in_range() {
    let mut timeouts = Vec::new();
    for seed in 0..200 {
        let mut cfg = config(1);
        cfg.seed = seed;
        let mut n = node_with(cfg, MemStorage::new_with_voters(&[1, 2, 3]));
        let mut ticks = 0;
        while role(&n) == Role::Follower {
            n.tick();
            ticks += 1;
            assert!(ticks < 100, "seed {seed}: no election after {ticks} ticks");
        }
        timeouts.push(ticks);
    }

    assert!(
        timeouts.iter().all(|t| (10..20).contains(t)),
        "{timeouts:?}"
    );
    let distinct: std::collections::BTreeSet<_> = timeouts.iter().collect();
    assert!(
        distinct.len() >= 8,
        "timeouts barely vary: {distinct:?} over {} seeds",
        timeouts.len()
    );
}

/// §5.2: "Each server will vote for at most one candidate in a given term, on a first-come-first-
/// served basis." Repeating the vote for the same candidate is fine (its request may have been
/// duplicated).
#[test]
fn follower_votes_once_per_term() {
    let mut n = node(1, &[1, 2, 3]);

    step(&mut n, vote_request(2, 1, 1, 0, 0));
    step(&mut n, vote_request(3, 1, 1, 0, 0));
    step(&mut n, vote_request(2, 1, 1, 0, 0));
    let sent = drain(&mut n);

    assert_eq!(
        votes_sent(&sent),
        vec![(2, 1, true), (3, 1, false), (2, 1, true)]
    );
    assert_eq!(
        n.storage().hard_state().vote,
        Some(2),
        "the vote is persisted"
    );
}

/// A departure from Figure 2, as in etcd: a follower that knows the leader of its current term
/// refuses its vote to another candidate of that term, even though it has not voted in it (it
/// learned the term from the leader's append). The leader already holds a majority of the term's
/// votes, so the candidate cannot win; lending it a vote would only let a late candidacy linger.
#[test]
fn follower_that_knows_the_leader_refuses_votes_in_its_term() {
    let mut n = node(3, &[1, 2, 3]);
    step(&mut n, append(1, 3, 2, (0, 0), vec![], 0));
    drain(&mut n);
    assert_eq!((term(&n), leader_of(&n)), (2, Some(1)));
    assert_eq!(
        n.storage().hard_state().vote,
        None,
        "it never voted in term 2"
    );

    // Candidate 2's request for term 2 arrives late; its log is as up-to-date as ours.
    step(&mut n, vote_request(2, 3, 2, 0, 0));
    let sent = drain(&mut n);

    assert_eq!(votes_sent(&sent), vec![(2, 2, false)]);
    assert_eq!(n.storage().hard_state().vote, None);
}

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

/// §5.2: "A candidate wins an election if it receives votes from a majority of the servers in the
/// full cluster for the same term." It gives up when a majority has rejected it.
#[test]
fn candidate_wins_with_majority() {
    let voters = [1, 2, 3, 4, 5];
    let cases: [(&[(NodeId, bool)], Role); 5] = [
        (&[], Role::Candidate),                                  // 1 of 5
        (&[(2, true)], Role::Candidate),                         // 2 of 5
        (&[(2, true), (3, true)], Role::Leader),                 // 3 of 5
        (&[(2, true), (3, false), (4, false)], Role::Candidate), // 2 yes, 2 no
        (&[(2, false), (3, false), (4, false)], Role::Follower), // 3 no: lost
    ];
    for (votes, expected) in cases {
        let mut n = node(1, &voters);
        n.campaign();
        drain(&mut n);

        for &(from, granted) in votes {
            step(&mut n, vote_response(from, 1, 1, granted));
        }

        assert_eq!(role(&n), expected, "votes {votes:?}");
        assert_eq!(term(&n), 1);
    }
}

/// §5.2: "If the AppendEntries RPC is from another server claiming to be leader and the leader's
/// term is at least as large as the candidate's current term, then the candidate recognizes the
/// leader as legitimate and returns to follower state."
#[test]
fn candidate_becomes_follower_on_append_from_leader() {
    let mut n = node(1, &[1, 2, 3]);
    n.campaign();
    drain(&mut n);

    step(&mut n, append(2, 1, 1, (0, 0), vec![entry(1, 1)], 0));
    let sent = drain(&mut n);

    assert_eq!(
        (role(&n), term(&n), leader_of(&n)),
        (Role::Follower, 1, Some(2))
    );
    assert_eq!(log_of(&n), vec![(1, 1)], "and it takes the append");
    assert!(
        sent.iter()
            .any(|m| matches!(m.body, MessageBody::AppendAccepted { match_index: 1 })),
        "{sent:?}"
    );
}

/// §8: "Raft handles this by having each leader commit a blank no-op entry into the log at the start
/// of its term." It is the first thing a new leader sends.
#[test]
fn leader_appends_empty_entry_on_election() {
    let mut n = node_with(config(1), disk(&[1, 2, 3], &[1, 1], 1));
    n.campaign();
    drain(&mut n);

    step(&mut n, vote_response(2, 1, 2, true));
    let sent = drain(&mut n);

    assert_eq!(role(&n), Role::Leader);
    let last = n.entries(3, 4).expect("entry 3 exists");
    assert_eq!((last[0].index, last[0].term), (3, 2));
    assert!(last[0].data.is_empty());
    for to in [2, 3] {
        assert!(
            sent.iter().any(|m| m.to == to
                && matches!(&m.body, MessageBody::Append { prev_index: 2, prev_term: 1, entries, .. }
                    if entries.len() == 1 && entries[0].index == 3)),
            "no append of the empty entry to {to}: {sent:?}"
        );
    }
}

// --- Log replication (§5.3) --------------------------------------------------------------------

/// §5.3, the consistency check: "If the follower does not find an entry in its log with the same
/// index and term, then it refuses the new entries."
#[test]
fn follower_rejects_append_with_mismatched_prev() {
    for prev in [(2, 2), (3, 1), (9, 2)] {
        let mut n = node_with(config(1), disk(&[1, 2, 3], &[1, 1], 2));

        step(&mut n, append(2, 1, 2, prev, vec![entry(prev.0 + 1, 2)], 0));
        let sent = drain(&mut n);

        assert_eq!(
            log_of(&n),
            vec![(1, 1), (2, 1)],
            "prev {prev:?}: log unchanged"
        );
        assert!(
            matches!(sent.as_slice(), [Message { to: 2, body: MessageBody::AppendRejected { rejected_index, .. }, .. }]
                if *rejected_index == prev.0),
            "prev {prev:?}: {sent:?}"
        );
    }
}

/// §5.3 (Figure 2, AppendEntries receiver rule 3): "If an existing entry conflicts with a new one
/// (same index but different terms), delete the existing entry and all that follow it." Entries
/// that match are kept, and so is what follows them: an old, shorter append must not truncate.
#[test]
fn follower_truncates_conflicting_suffix() {
    let mut n = node_with(config(1), disk(&[1, 2, 3], &[1, 1, 1, 1], 1));

    step(
        &mut n,
        append(2, 1, 2, (1, 1), vec![entry(2, 1), entry(3, 2)], 0),
    );
    drain(&mut n);
    assert_eq!(log_of(&n), vec![(1, 1), (2, 1), (3, 2)]);
    assert_eq!(n.storage().last_index().expect("memory"), 3, "and on disk");

    // A delayed, shorter append from the same leader: everything in it matches.
    step(
        &mut n,
        append(2, 1, 2, (0, 0), vec![entry(1, 1), entry(2, 1)], 0),
    );
    drain(&mut n);
    assert_eq!(log_of(&n), vec![(1, 1), (2, 1), (3, 2)]);
}

/// A departure from Figure 2, as in etcd: an append whose `prev_index` is below the follower's
/// commit index (a delayed or duplicated one) is answered with the commit index as the match,
/// without looking at its entries. Everything up to the commit index is committed, hence in the
/// leader's log at the same place (Leader Completeness, §5.4), so the leader may continue from
/// there at once instead of learning a stale, lower match.
#[test]
fn append_below_commit_index_is_answered_with_the_commit_index() {
    let mut n = node_with(config(1), disk(&[1, 2, 3], &[1, 1, 1, 1, 1], 1));
    step(&mut n, append(2, 1, 1, (5, 1), vec![], 5));
    drain(&mut n);
    assert_eq!(n.status().hard_state.commit, 5);

    // A duplicate of an old append, from before index 5 was known to match.
    step(&mut n, append(2, 1, 1, (2, 1), vec![entry(3, 1)], 3));
    let sent = drain(&mut n);

    assert!(
        matches!(
            sent.as_slice(),
            [Message {
                to: 2,
                body: MessageBody::AppendAccepted { match_index: 5 },
                ..
            }]
        ),
        "{sent:?}"
    );
    assert_eq!(log_of(&n).len(), 5, "the log is untouched");
}

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

/// §5.3, Leader Append-Only: "a leader never overwrites or deletes entries in its log". Not even an
/// append claiming to come from a leader of the same term (which Election Safety says cannot
/// exist) or of an older one touches it.
#[test]
fn leader_never_overwrites_own_log() {
    let mut n = leader(&[1, 2, 3]);
    n.propose("a".into()).expect("leader accepts");
    drain(&mut n);
    let before = log_of(&n);
    assert_eq!(before, vec![(1, 1), (2, 1)]);

    step(
        &mut n,
        append(2, 1, 1, (0, 0), vec![entry(1, 1), entry(2, 0)], 2),
    );
    step(
        &mut n,
        append(2, 1, 1, (1, 1), vec![entry(2, 1), entry(3, 1)], 0),
    );
    step(&mut n, append(3, 1, 0, (0, 0), vec![entry(1, 0)], 0));
    drain(&mut n);

    assert_eq!(log_of(&n), before);
    assert_eq!(role(&n), Role::Leader);
}

/// Figure 7: a leader for term 8 and six followers whose logs are missing entries (a, b), have
/// extra uncommitted entries (c, d), or both (e, f). The leader brings every follower's log into
/// agreement with its own: it backs off to where they agree, deletes the follower's conflicting
/// entries, and sends its own (§5.3).
#[test]
fn figure7_leader_brings_each_follower_up_to_date() {
    let voters: Vec<NodeId> = (1..=7).collect();
    let logs: [&[Term]; 7] = [
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6],       // the leader
        &[1, 1, 1, 4, 4, 5, 5, 6, 6],          // (a)
        &[1, 1, 1, 4],                         // (b)
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],    // (c)
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], // (d)
        &[1, 1, 1, 4, 4, 4, 4],                // (e)
        &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],    // (f)
    ];
    let disks: BTreeMap<NodeId, MemStorage> = voters
        .iter()
        .zip(logs)
        .map(|(&id, terms)| (id, disk(&voters, terms, 7)))
        .collect();
    let mut c = Cluster::with_disks(disks, ClusterOptions::default());

    // Node 1 campaigns in term 8. (a), (b), (e) and (f) vote for it; (c) and (d), whose logs are
    // more up-to-date, do not; five of seven is enough.
    c.campaign(1);
    assert!(c.stabilize());

    assert_eq!(c.leader(), Some(1));
    let leader = c.node(1).expect("up");
    assert_eq!(term(leader), 8);
    let expected = log_of(leader);
    assert_eq!(expected.len(), 11, "its log plus the empty entry 11@8");
    for id in 2..=7 {
        let follower = c.node(id).expect("up");
        assert_eq!(log_of(follower), expected, "follower {id}");
        assert_eq!(follower.status().hard_state.commit, 11, "follower {id}");
    }
    c.check_safety().expect("Figure 3 holds");
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

// --- Proposals ---------------------------------------------------------------------------------

/// A node that knows no leader cannot forward a proposal, and says so with a typed error (§8: clients
/// retry elsewhere).
#[test]
fn proposal_dropped_without_leader() {
    let mut follower = node(1, &[1, 2, 3]);
    assert_eq!(
        follower.propose("x".into()),
        Err(Error::ProposalDropped(ProposalDropped::NoLeader))
    );

    let mut candidate = node(1, &[1, 2, 3]);
    candidate.campaign();
    assert_eq!(
        candidate.propose("x".into()),
        Err(Error::ProposalDropped(ProposalDropped::NoLeader))
    );
    drain(&mut candidate);
    assert_eq!(log_of(&candidate), vec![], "nothing appended");
}

/// A leader that cannot commit (no quorum answers) stops accepting proposals once it holds
/// `max_uncommitted_entries_size` bytes of uncommitted entries, and accepts them again once they
/// commit.
#[test]
fn proposal_dropped_over_uncommitted_limit() {
    let mut cfg = config(1);
    cfg.max_uncommitted_entries_size = 10;
    let mut n = leader_with(cfg, MemStorage::new_with_voters(&[1, 2, 3]), &[1, 2, 3]);

    n.propose(vec![b'a'; 8].into()).expect("8 of 10 bytes");
    assert_eq!(
        n.propose(vec![b'b'; 8].into()),
        Err(Error::ProposalDropped(
            ProposalDropped::UncommittedSizeExceeded {
                uncommitted: 8,
                limit: 10
            }
        ))
    );
    drain(&mut n);

    // A follower acknowledges everything: entries 1 and 2 commit and are handed out to apply.
    step(
        &mut n,
        msg(2, 1, 1, MessageBody::AppendAccepted { match_index: 2 }),
    );
    drain(&mut n);
    assert_eq!(n.status().hard_state.commit, 2);
    n.propose(vec![b'c'; 8].into()).expect("room again");
}

// --- Extensions (thesis) -----------------------------------------------------------------------

/// Thesis §6.2: "a leader steps down if an election timeout elapses without a successful round of
/// heartbeats to a majority of its cluster." One that keeps hearing from a majority stays.
#[test]
fn check_quorum_leader_steps_down() {
    let mut cfg = config(1);
    cfg.check_quorum = true;
    let mut silent = leader_with(
        cfg.clone(),
        MemStorage::new_with_voters(&[1, 2, 3]),
        &[1, 2, 3],
    );
    let mut heard = leader_with(cfg, MemStorage::new_with_voters(&[1, 2, 3]), &[1, 2, 3]);

    // Two election timeouts: the first check may count what was heard before.
    for _ in 0..20 {
        silent.tick();
        heard.tick();
        step(
            &mut heard,
            msg(2, 1, 1, MessageBody::HeartbeatResponse { context: None }),
        );
        drain(&mut silent);
        drain(&mut heard);
    }

    assert_eq!((role(&silent), term(&silent)), (Role::Follower, 1));
    assert_eq!(leader_of(&silent), None);
    assert_eq!(role(&heard), Role::Leader);
}

/// Thesis §9.6: a PreVote probe asks for votes in the next term without moving to it, so a node
/// that cannot win keeps its term however often it times out.
#[test]
fn prevote_does_not_bump_term() {
    let mut cfg = config(1);
    cfg.pre_vote = true;
    let mut n = node_with(cfg, MemStorage::new_with_voters(&[1, 2, 3]));

    let mut probes = 0;
    for _ in 0..100 {
        n.tick();
        probes += drain(&mut n)
            .iter()
            .filter(|m| {
                m.term == 1 && matches!(m.body, MessageBody::VoteRequest { pre_vote: true, .. })
            })
            .count();
    }

    assert!(probes >= 2 * 5, "it timed out repeatedly: {probes} probes");
    assert_eq!(role(&n), Role::PreCandidate);
    assert_eq!(term(&n), 0);
    assert_eq!(
        n.storage().hard_state(),
        HardState::default(),
        "nothing to persist"
    );
}

// --- Robustness --------------------------------------------------------------------------------

/// No message from the network makes a node panic (issue 2: "stale or future terms, unknown
/// senders, indexes out of range"); it may ignore them. Every garbage message is stepped into a
/// follower, a candidate and a leader, alone and in sequence, and the node must keep working.
#[test]
fn messages_from_network_never_panic() {
    use MessageBody::*;
    const MAX: u64 = u64::MAX;
    let bodies = |t: Term| -> Vec<MessageBody> {
        vec![
            VoteRequest {
                pre_vote: false,
                last_index: MAX,
                last_term: MAX,
                leader_transfer: false,
            },
            VoteRequest {
                pre_vote: true,
                last_index: 0,
                last_term: 0,
                leader_transfer: false,
            },
            VoteRequest {
                pre_vote: false,
                last_index: MAX,
                last_term: MAX,
                leader_transfer: true,
            },
            TimeoutNow,
            VoteResponse {
                pre_vote: false,
                granted: true,
            },
            VoteResponse {
                pre_vote: true,
                granted: true,
            },
            Append {
                prev_index: MAX,
                prev_term: t,
                entries: vec![],
                commit: MAX,
            },
            Append {
                prev_index: MAX,
                prev_term: t,
                entries: vec![entry(MAX, t)],
                commit: MAX,
            },
            Append {
                prev_index: 0,
                prev_term: 0,
                entries: vec![entry(1, t), entry(1, t)],
                commit: 1,
            },
            Append {
                prev_index: 0,
                prev_term: 0,
                entries: vec![entry(1, t), entry(3, t)],
                commit: 3,
            },
            Append {
                prev_index: 0,
                prev_term: 0,
                entries: vec![entry(1, t), entry(2, 0)],
                commit: 2,
            },
            Append {
                prev_index: 0,
                prev_term: 0,
                entries: vec![entry(1, t.saturating_add(1))],
                commit: 1,
            },
            Append {
                prev_index: 2,
                prev_term: MAX,
                entries: vec![],
                commit: 0,
            },
            Append {
                prev_index: 0,
                prev_term: 0,
                entries: vec![entry(1, t)],
                commit: MAX,
            },
            AppendAccepted { match_index: MAX },
            AppendAccepted { match_index: 0 },
            Heartbeat {
                commit: MAX,
                context: Some(Bytes::from_static(b"x")),
            },
            HeartbeatResponse { context: None },
            HeartbeatResponse {
                context: Some(Bytes::from_static(b"x")),
            },
            ReadIndex {
                context: Bytes::new(),
            },
            ReadIndexResponse {
                index: MAX,
                context: Bytes::from_static(b"x"),
            },
            Propose { entries: vec![] },
            Propose {
                entries: vec![entry(MAX, MAX)],
            },
        ]
    };
    let rejections = || {
        let mut v = Vec::new();
        for rejected_index in [0, 1, 2, 3, MAX] {
            for hint_index in [0, 1, MAX] {
                for hint_term in [0, 1, MAX] {
                    v.push(AppendRejected {
                        rejected_index,
                        hint_index,
                        hint_term,
                    });
                }
            }
        }
        v
    };
    let senders = [0, 2, 99, MAX];
    let term_offsets: [fn(Term) -> Term; 5] =
        [|t| t, |t| t.saturating_sub(1), |t| t + 1, |_| 0, |_| MAX];
    // A node in each role, with a log [1@1 2@1] and commit 1.
    let make = |r: Role| -> RawNode<MemStorage> {
        let mut s = disk(&[1, 2, 3], &[1, 1], 1);
        s.set_hard_state(HardState {
            term: 1,
            vote: None,
            commit: 1,
        });
        match r {
            Role::Leader => leader_with(config(1), s, &[1, 2, 3]),
            Role::Candidate => {
                let mut n = node_with(config(1), s);
                n.campaign();
                drain(&mut n);
                n
            }
            _ => {
                let mut cfg = config(1);
                cfg.pre_vote = true;
                cfg.check_quorum = true;
                node_with(cfg, s)
            }
        }
    };
    for r in [Role::Follower, Role::Candidate, Role::Leader] {
        let mut all = make(r);
        for from in senders {
            for offset in term_offsets {
                let t = offset(term(&make(r)));
                for body in bodies(t).into_iter().chain(rejections()) {
                    let m = msg(from, 1, t, body);
                    let mut one = make(r);
                    let _ = one.step(m.clone());
                    exercise(&mut one);
                    let _ = all.step(m);
                    drain(&mut all);
                }
            }
        }
        exercise(&mut all);
    }
    // A message addressed to someone else is an error for the caller, not a panic.
    let mut n = node(1, &[1, 2, 3]);
    assert!(
        n.step(msg(2, 7, 1, HeartbeatResponse { context: None }))
            .is_err()
    );
}

/// Drives a node for a while after garbage: ticks through elections or heartbeats, proposals, and
/// readys, checking that its state still makes sense.
fn exercise(n: &mut RawNode<MemStorage>) {
    for i in 0..45 {
        n.tick();
        if i % 15 == 0 {
            // A transfer that may start, be refused, or be abandoned mid-way.
            let _ = n.transfer_leader(2);
        }
        let _ = n.propose("after".into());
        drain(n);
        let s = n.status();
        assert!(s.applied <= s.hard_state.commit && s.hard_state.commit <= s.last_index);
    }
}

// --- Durability of votes, applied index, unreadable logs ---------------------------------------

/// Figure 2 ("updated on stable storage before responding to RPCs"), applied to the candidate's own
/// vote: it counts only once the new term and the vote are durable, so a node never acts as leader
/// on a vote that a crash could erase.
#[test]
fn candidate_counts_own_vote_only_after_persisting() {
    let mut n = node(2, &[1, 2, 3]);
    n.campaign();
    let rd = n.ready();
    assert_eq!(
        rd.hard_state.map(|hs| (hs.term, hs.vote)),
        Some((1, Some(2)))
    );
    assert!(
        rd.persisted_messages.iter().all(|m| m.to != 2),
        "the self-vote is not handed to the application"
    );
    // A grant arrives before the Ready is persisted: one vote of three is not enough yet.
    step(&mut n, vote_response(1, 2, 1, true));
    assert_eq!(role(&n), Role::Candidate, "own vote not yet durable");
    n.storage_mut()
        .set_hard_state(rd.hard_state.expect("hard state"));
    n.advance();
    assert_eq!(role(&n), Role::Leader, "own vote counted once durable");

    // A single-node cluster likewise becomes leader only through advance.
    let mut solo = node(1, &[1]);
    solo.campaign();
    assert_eq!(role(&solo), Role::Candidate);
    drain(&mut solo);
    assert_eq!(role(&solo), Role::Leader);
}

/// Restart rule: entries the application already applied are never handed out again, even when the
/// commit index on disk is older (it is written without a sync when only it changed).
#[test]
fn applied_beyond_persisted_commit_is_not_reapplied() {
    let mut storage = disk(&[1, 2, 3], &[1; 10], 1);
    storage.set_hard_state(HardState {
        term: 1,
        vote: None,
        commit: 7,
    });
    let mut cfg = config(2);
    cfg.applied = 10;
    let mut n = node_with(cfg, storage.clone());
    assert_eq!(n.status().hard_state.commit, 10);
    assert_eq!(n.status().applied, 10);
    while n.has_ready() {
        let rd = n.ready();
        assert!(rd.committed_entries.is_empty(), "nothing to re-apply");
        n.advance();
    }

    let mut past_end = config(2);
    past_end.applied = 11;
    assert_eq!(
        RawNode::new(past_end, storage).err(),
        Some(Error::AppliedOutOfRange {
            applied: 11,
            last: 10
        })
    );
}

/// A storage that has compacted everything before index 5 (part 2 adds snapshots; the trait
/// already allows it).
struct Compacted(MemStorage);

impl Storage for Compacted {
    fn initial_state(&self) -> Result<raftwood_raft::RaftState, raftwood_raft::StorageError> {
        self.0.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max: u64,
    ) -> Result<Vec<Entry>, raftwood_raft::StorageError> {
        if low < 5 {
            return Err(raftwood_raft::StorageError::Compacted(low));
        }
        self.0.entries(low, high, max)
    }
    fn term(&self, index: u64) -> Result<Term, raftwood_raft::StorageError> {
        if index < 4 {
            return Err(raftwood_raft::StorageError::Compacted(index));
        }
        self.0.term(index)
    }
    fn first_index(&self) -> Result<u64, raftwood_raft::StorageError> {
        Ok(5)
    }
    fn last_index(&self) -> Result<u64, raftwood_raft::StorageError> {
        self.0.last_index()
    }
    fn snapshot(&self) -> Result<raftwood_raft::Snapshot, raftwood_raft::StorageError> {
        self.0.snapshot()
    }
}

/// A leader that cannot build an append for a follower (its log is compacted past the follower's
/// position) pauses that follower instead of reporting work it cannot do: `has_ready` settles.
#[test]
fn leader_pauses_follower_it_cannot_send_to() {
    let mut storage = disk(&[1, 2], &[1; 8], 1);
    storage.set_hard_state(HardState {
        term: 1,
        vote: None,
        commit: 4,
    });
    let mut cfg = config(1);
    cfg.applied = 4;
    let mut n = RawNode::new(cfg, Compacted(storage)).expect("valid");
    n.campaign();
    // Win the election, then hear that node 2's log ends at index 2 (behind the compaction).
    let mut rounds = 0;
    while n.has_ready() && rounds < 100 {
        let rd = n.ready();
        if let Some(hs) = rd.hard_state {
            n.storage_mut().0.set_hard_state(hs);
        }
        n.storage_mut().0.append(&rd.entries);
        n.advance();
        rounds += 1;
    }
    step_any(&mut n, vote_response(2, 1, 2, true));
    let body = MessageBody::AppendRejected {
        rejected_index: 8,
        hint_index: 2,
        hint_term: 1,
    };
    step_any(&mut n, msg(2, 1, 2, body));
    let mut rounds = 0;
    while n.has_ready() && rounds < 100 {
        let rd = n.ready();
        if let Some(hs) = rd.hard_state {
            n.storage_mut().0.set_hard_state(hs);
        }
        n.storage_mut().0.append(&rd.entries);
        n.advance();
        rounds += 1;
    }
    assert!(
        rounds < 100,
        "has_ready kept reporting work it could not do"
    );
    assert_eq!(role_any(&n), Role::Leader);
}

/// §5.3 flow control (etcd's progress states): a follower being probed whose answer confirms the
/// match index the leader already knows goes back to streaming, instead of waiting for a new
/// entry to probe with.
#[test]
fn probe_answered_at_known_match_resumes_replication() {
    let mut n = leader(&[1, 2]);
    let t = term(&n);
    step(
        &mut n,
        msg(2, 1, t, MessageBody::AppendAccepted { match_index: 1 }),
    );
    drain(&mut n);
    assert!(n.status().progress[&2].replicating);
    // A rejection past the match index (an append lost in between) sends node 2 back to probing.
    let body = MessageBody::AppendRejected {
        rejected_index: 2,
        hint_index: 1,
        hint_term: t,
    };
    step(&mut n, msg(2, 1, t, body));
    assert!(!n.status().progress[&2].replicating);
    // The follower confirms index 1, which the leader already knew.
    step(
        &mut n,
        msg(2, 1, t, MessageBody::AppendAccepted { match_index: 1 }),
    );
    assert!(
        n.status().progress[&2].replicating,
        "confirmed match resumes streaming"
    );
}

/// §5.3 flow control (etcd's inflight window, [`Config::max_inflight_msgs`]): "at most
/// `max_inflight_msgs` unacknowledged appends". A follower that answers heartbeats but
/// acknowledges no append receives at most that many appends carrying entries, however many
/// heartbeat rounds pass; each heartbeat response releases only an empty append, which asks the
/// follower where its log stands.
#[test]
fn silent_follower_receives_at_most_the_inflight_window() {
    let mut cfg = config(1);
    cfg.max_inflight_msgs = 4;
    let mut n = leader_with(cfg, MemStorage::new_with_voters(&[1, 2, 3]), &[1, 2, 3]);
    let t = term(&n);
    // Node 2 acknowledges the leader's empty entry, so the leader streams to it (Replicate).
    step(
        &mut n,
        msg(2, 1, t, MessageBody::AppendAccepted { match_index: 1 }),
    );
    drain(&mut n);
    assert!(n.status().progress[&2].replicating);

    // 20 heartbeat rounds, a proposal in each. Node 2 answers every heartbeat and no append.
    let (mut with_entries, mut empty) = (0, 0);
    for round in 0..20 {
        n.propose(format!("p{round}").into())
            .expect("leader accepts");
        n.tick();
        for m in drain(&mut n).into_iter().filter(|m| m.to == 2) {
            match m.body {
                MessageBody::Append { entries, .. } if entries.is_empty() => empty += 1,
                MessageBody::Append { .. } => with_entries += 1,
                MessageBody::Heartbeat { .. } => step(
                    &mut n,
                    msg(2, 1, t, MessageBody::HeartbeatResponse { context: None }),
                ),
                _ => {}
            }
        }
    }

    assert!(
        with_entries <= 4,
        "{with_entries} appends with entries to a follower that acknowledged none"
    );
    assert!(empty > 0, "the leader keeps asking with empty appends");
}

/// §5.3 flow control, the other side of the window: a follower whose acknowledgements were lost
/// (its log holds everything) is not stuck behind a full window. The empty append a heartbeat
/// response releases is answered with its match index, which frees the window.
#[test]
fn follower_whose_acks_were_lost_recovers_through_empty_append() {
    let mut cfg = config(1);
    cfg.max_inflight_msgs = 2;
    let mut leader = leader_with(cfg, MemStorage::new_with_voters(&[1, 2]), &[1, 2]);
    let mut follower = node(2, &[1, 2]);
    let mut to_follower: Vec<Message> = drain(&mut leader);
    // Round by round: the leader proposes and ticks; the follower takes everything it is sent.
    // For the first 6 rounds every acknowledgement of an append is lost.
    for round in 0..12 {
        leader
            .propose(format!("p{round}").into())
            .expect("leader accepts");
        leader.tick();
        to_follower.extend(drain(&mut leader));
        for m in std::mem::take(&mut to_follower) {
            if m.to == 2 {
                step(&mut follower, m);
            }
        }
        for m in drain(&mut follower) {
            let ack = matches!(m.body, MessageBody::AppendAccepted { .. });
            if !(ack && round < 6) {
                step(&mut leader, m);
            }
        }
    }

    let last = leader.status().last_index;
    assert_eq!(leader.status().progress[&2].match_index, last);
    assert_eq!(log_of(&follower), log_of(&leader));
}
