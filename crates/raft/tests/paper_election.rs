//! Tests named after the Raft paper's rules for terms and elections ("In Search of an
//! Understandable Consensus Algorithm", extended version), each citing its section: terms (§5.1),
//! leader election (§5.2) and the new leader's empty entry (§8); where raftwood departs from or
//! adds to Figure 2 for votes (a follower that knows the leader refuses other candidates, the
//! candidate's own vote counts once durable); and the thesis extensions to elections (CheckQuorum
//! §6.2, PreVote §9.6). The election restriction (§5.4.1) is in `paper_safety.rs`. Every test is
//! shaped init → step → assert: build one node in a precise state, hand it a message or a tick,
//! and check what it did.
//!
//! Each node is driven through the public `RawNode` API, with a [`MemStorage`] as its disk; the
//! helpers are in `common/mod.rs`. The same shape continues in `paper_replication.rs` (§5.3),
//! `paper_safety.rs` (§5.4), `paper_robustness.rs` (forged messages, restarts),
//! `paper_snapshots.rs` (Raft §7, thesis §5), `paper_reads.rs` (thesis §6.4),
//! `paper_transfer.rs` (thesis §3.10) and `paper_membership.rs` (thesis chapter 4).

mod common;

use raftwood_raft::{HardState, MemStorage, MessageBody, NodeId, Role};

use common::{
    append, config, disk, drain, entry, leader, leader_of, leader_with, log_of, msg, node,
    node_with, role, step, term, vote_request, vote_response, votes_sent,
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

// --- The candidate's own vote (Figure 2: stable storage before answering) ----------------------

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

// --- Extensions (thesis §6.2, §9.6) ------------------------------------------------------------

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
