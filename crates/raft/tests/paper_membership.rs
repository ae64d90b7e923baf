//! Tests named after the rules of membership changes in the Raft thesis (Ongaro, "Consensus:
//! Bridging Theory and Practice", 2014, chapter 4), one server at a time (§4.1), with the rules
//! raftwood takes from etcd where the thesis leaves a choice (a change takes effect when applied).
//! Shaped like `tests/paper_election.rs`: init → step → assert, one node driven through
//! [`RawNode`], its peers played by hand.

mod common;

use raftwood_raft::{
    ConfChange, ConfChangeError, ConfChangeStep, Config, Entry, EntryKind, Error, MemStorage,
    Message, MessageBody, NodeId, ProposalDropped, RawNode, Role, Term,
};

use common::{config, msg, node, role};

// --- Helpers -----------------------------------------------------------------------------------

/// Handles every Ready as an application does: persists, applies the committed conf changes
/// (`apply_conf_change`), and returns the messages sent.
fn drain(n: &mut RawNode<MemStorage>) -> Vec<Message> {
    let mut sent = Vec::new();
    while n.has_ready() {
        let rd = n.ready();
        if let Some(hs) = rd.hard_state {
            n.storage_mut().set_hard_state(hs);
        }
        n.storage_mut().append(&rd.entries);
        for e in rd.committed_entries.iter() {
            if e.kind == EntryKind::ConfChange {
                let cc = ConfChange::decode(&e.data).expect("the log holds valid changes");
                let cs = n.apply_conf_change(&cc).expect("a valid change");
                n.storage_mut().set_conf_state(cs);
            }
        }
        sent.extend(rd.messages);
        sent.extend(rd.persisted_messages);
        n.advance();
    }
    sent
}

fn accepted(from: NodeId, term: Term, match_index: u64) -> Message {
    msg(from, 1, term, MessageBody::AppendAccepted { match_index })
}

fn commit(n: &RawNode<MemStorage>) -> u64 {
    n.status().hard_state.commit
}

fn voters(n: &RawNode<MemStorage>) -> Vec<NodeId> {
    n.status().conf_state.voters
}

/// Node 1 of `voters`, leader of term 1 (everyone voted for it), its empty entry 1 persisted,
/// and, if `ack` is given, that entry committed by the acknowledgements of those peers.
fn leader(voters: &[NodeId], ack: &[NodeId]) -> RawNode<MemStorage> {
    leader_with(config(1), voters, ack)
}

/// [`leader`], with its own configuration.
fn leader_with(cfg: Config, voters: &[NodeId], ack: &[NodeId]) -> RawNode<MemStorage> {
    let mut n = RawNode::new(cfg, MemStorage::new_with_voters(voters)).expect("valid config");
    n.campaign();
    drain(&mut n);
    for &v in voters.iter().filter(|&&v| v != 1) {
        let granted = MessageBody::VoteResponse {
            pre_vote: false,
            granted: true,
        };
        n.step(msg(v, 1, 1, granted)).expect("addressed to n1");
    }
    drain(&mut n);
    assert_eq!(role(&n), Role::Leader);
    for &p in ack {
        n.step(accepted(p, 1, 1)).expect("addressed to n1");
    }
    drain(&mut n);
    n
}

/// Whether `msgs` hold a vote request (a campaign, real or PreVote).
fn campaigned(msgs: &[Message]) -> bool {
    msgs.iter()
        .any(|m| matches!(m.body, MessageBody::VoteRequest { .. }))
}

// --- One server at a time (§4.1) ---------------------------------------------------------------

/// §4.1: "Raft restricts the types of changes that are allowed: only one server can be added or
/// removed from the cluster at a time", and "a leader [may not] begin another configuration
/// change until the previous one is complete". A second change is refused with a typed error
/// while the first is unapplied; a change of two steps is refused outright; once the first is
/// applied the next is accepted.
#[test]
fn one_conf_change_at_a_time() {
    let mut n = leader(&[1, 2, 3], &[2]);
    n.propose_conf_change(ConfChange::add_voter(4))
        .expect("nothing pending");
    assert_eq!(
        n.propose_conf_change(ConfChange::add_voter(5)),
        Err(Error::ProposalDropped(ProposalDropped::ConfChangePending {
            pending_index: 2,
            applied: 1
        }))
    );
    let two = ConfChange::new(vec![
        ConfChangeStep::AddVoter(5),
        ConfChangeStep::RemoveNode(3),
    ]);
    assert_eq!(
        n.propose_conf_change(two),
        Err(Error::ConfChange(ConfChangeError::StepCount(2)))
    );
    drain(&mut n);
    // Committed (n1 and n2 of three) and applied by the drain: the next change is accepted.
    n.step(accepted(2, 1, 2)).unwrap();
    drain(&mut n);
    assert_eq!(voters(&n), vec![1, 2, 3, 4]);
    n.propose_conf_change(ConfChange::add_voter(5))
        .expect("the previous change is applied");
}

/// §4.1 (and Ongaro's 2015 correction to single-server changes): a new leader may hold a change
/// from an earlier term in its log that it cannot tell is applied, so it accepts no change until
/// it has applied everything up to its election, its own term's first entry included (etcd's
/// `pendingConfIndex`).
#[test]
fn new_leader_accepts_a_conf_change_only_after_applying_its_first_entry() {
    let mut n = leader(&[1, 2, 3], &[]);
    assert_eq!(commit(&n), 0);
    assert!(matches!(
        n.propose_conf_change(ConfChange::add_voter(4)),
        Err(Error::ProposalDropped(
            ProposalDropped::ConfChangePending { .. }
        ))
    ));
    n.step(accepted(2, 1, 1)).unwrap();
    drain(&mut n);
    n.propose_conf_change(ConfChange::add_voter(4))
        .expect("the empty entry of its term is applied");
}

/// §4.1: "a server always uses the latest configuration", in etcd's form: the configuration
/// a committed change brings takes effect when the application applies it. Before, the new
/// node's acknowledgements are ignored (it is not tracked); after, a majority is 3 of 4, so an
/// entry that n1 and n2 hold is no longer committed, and n4's copy is what commits it.
#[test]
fn new_voter_counts_toward_quorum_once_applied() {
    let mut n = leader(&[1, 2, 3], &[2]);
    n.propose_conf_change(ConfChange::add_voter(4)).unwrap();
    drain(&mut n);
    // n4 answers before the change is applied: nothing counts.
    n.step(accepted(4, 1, 2)).unwrap();
    assert_eq!(commit(&n), 1);
    n.step(accepted(2, 1, 2)).unwrap();
    drain(&mut n);
    assert_eq!(commit(&n), 2);
    assert_eq!(voters(&n), vec![1, 2, 3, 4]);
    // The new peer starts in probe at the leader's last index + 1.
    let pr = n.status().progress[&4];
    assert_eq!(
        (pr.match_index, pr.next_index, pr.replicating),
        (0, 3, false)
    );

    n.propose("x".into()).unwrap();
    drain(&mut n);
    n.step(accepted(2, 1, 3)).unwrap();
    drain(&mut n);
    assert_eq!(commit(&n), 2, "n1 and n2 are not a majority of four");
    n.step(accepted(4, 1, 3)).unwrap();
    drain(&mut n);
    assert_eq!(commit(&n), 3, "n1, n2 and n4 are");
}

/// §4.1: removing a silent voter changes the majority at once. An entry held by n1 and n2 is not
/// committed among {1, 2, 3, 4} (a majority is 3), but is among {1, 2, 3} once the removal of n4
/// is applied: the leader recounts its commit index on apply, as etcd does.
#[test]
fn removing_a_voter_recounts_the_majority() {
    let mut n = leader(&[1, 2, 3, 4], &[2, 3]);
    n.propose_conf_change(ConfChange::remove_node(4)).unwrap();
    n.propose("x".into()).unwrap();
    drain(&mut n);
    // n2 holds both entries, n3 only the change: the change commits (n1, n2, n3 of four)...
    n.step(accepted(3, 1, 2)).unwrap();
    n.step(accepted(2, 1, 3)).unwrap();
    drain(&mut n);
    assert_eq!(voters(&n), vec![1, 2, 3]);
    // ...and once it is applied, n1 and n2 are a majority of {1, 2, 3}: entry 3 commits.
    assert_eq!(commit(&n), 3);
    assert!(!n.status().progress.contains_key(&4));
}

/// CheckQuorum (thesis §6.2) counts the voters of the configuration in force: hearing from n2
/// alone keeps a leader of {1, 2, 3} (2 of 3), but not a leader of {1, 2, 3, 4} (2 of 4), which
/// steps down at its next check.
#[test]
fn check_quorum_counts_the_current_voters() {
    let mut cfg = config(1);
    cfg.check_quorum = true;
    let only_n2_answers = |n: &mut RawNode<MemStorage>| {
        for _ in 0..10 {
            n.tick();
            n.step(msg(
                2,
                1,
                1,
                MessageBody::HeartbeatResponse { context: None },
            ))
            .unwrap();
            drain(n);
        }
    };
    let mut three = leader_with(cfg.clone(), &[1, 2, 3], &[2]);
    only_n2_answers(&mut three);
    assert_eq!(role(&three), Role::Leader);

    let mut four = leader_with(cfg, &[1, 2, 3], &[2]);
    four.propose_conf_change(ConfChange::add_voter(4)).unwrap();
    drain(&mut four);
    four.step(accepted(2, 1, 2)).unwrap();
    drain(&mut four);
    assert_eq!(voters(&four), vec![1, 2, 3, 4]);
    only_n2_answers(&mut four);
    assert_eq!(role(&four), Role::Follower);
}

// --- Removed servers (§4.2.2) ------------------------------------------------------------------

/// §4.2.2: "the leader steps down (returns to follower state) once it has committed the Cnew log
/// entry". In etcd's form, when it applies it: it stops being leader of a configuration it is
/// not in, and sends nothing more as leader.
#[test]
fn removed_leader_steps_down() {
    let mut n = leader(&[1, 2, 3], &[2]);
    n.propose_conf_change(ConfChange::remove_node(1)).unwrap();
    drain(&mut n);
    n.step(accepted(2, 1, 2)).unwrap();
    let sent = drain(&mut n);
    assert_eq!(role(&n), Role::Follower);
    assert_eq!(voters(&n), vec![2, 3]);
    // The followers were told the change is committed, in the same Ready.
    assert!(
        sent.iter()
            .any(|m| m.to == 2 && matches!(m.body, MessageBody::Append { commit: 2, .. }))
    );
}

/// §4.2.2, and §4.1 ("servers that are not part of the configuration do not start elections"):
/// a node that applied its own removal never campaigns, not on timeout, not when asked.
#[test]
fn removed_node_never_campaigns() {
    let mut n = node(3, &[1, 2, 3]);
    let cc = ConfChange::remove_node(3);
    let e = |index, kind, data| Entry {
        index,
        term: 1,
        kind,
        data,
    };
    let body = MessageBody::Append {
        prev_index: 0,
        prev_term: 0,
        entries: vec![
            e(1, EntryKind::Normal, Default::default()),
            e(2, EntryKind::ConfChange, cc.encode().unwrap()),
        ],
        commit: 2,
    };
    n.step(msg(1, 3, 1, body)).unwrap();
    drain(&mut n);
    assert_eq!(voters(&n), vec![1, 2]);
    let mut sent = Vec::new();
    for _ in 0..100 {
        n.tick();
        sent.extend(drain(&mut n));
    }
    n.campaign();
    sent.extend(drain(&mut n));
    assert!(!campaigned(&sent));
    assert_eq!((role(&n), n.status().hard_state.term), (Role::Follower, 1));
}

/// etcd's rule for apply-time changes: a node that knows a change is committed but has not
/// applied it does not campaign, since it would count votes in a configuration older than one it
/// knows to be in force. Once applied, it may.
#[test]
fn no_campaign_with_a_committed_conf_change_unapplied() {
    let mut n = node(2, &[1, 2, 3]);
    let body = MessageBody::Append {
        prev_index: 0,
        prev_term: 0,
        entries: vec![Entry {
            index: 1,
            term: 1,
            kind: EntryKind::ConfChange,
            data: ConfChange::add_voter(4).encode().unwrap(),
        }],
        commit: 1,
    };
    n.step(msg(1, 2, 1, body)).unwrap();
    n.campaign();
    assert_eq!(
        role(&n),
        Role::Follower,
        "entry 1 is committed, not applied"
    );
    drain(&mut n);
    assert_eq!(voters(&n), vec![1, 2, 3, 4]);
    n.campaign();
    let sent = drain(&mut n);
    assert_eq!(role(&n), Role::Candidate);
    let asked: Vec<NodeId> = sent
        .iter()
        .filter(|m| matches!(m.body, MessageBody::VoteRequest { .. }))
        .map(|m| m.to)
        .collect();
    assert_eq!(
        asked,
        vec![1, 3, 4],
        "votes are asked of the new configuration"
    );
}

/// A change this part does not accept is refused by `apply_conf_change` with the same error on
/// every node, leaving the configuration as it was (a leader never lets one into the log; this
/// is the defence against a forged or corrupt one).
#[test]
fn apply_refuses_what_propose_refuses() {
    let mut n = node(2, &[1, 2]);
    let two = ConfChange::new(vec![
        ConfChangeStep::RemoveNode(1),
        ConfChangeStep::RemoveNode(2),
    ]);
    assert_eq!(
        n.apply_conf_change(&two),
        Err(Error::ConfChange(ConfChangeError::StepCount(2)))
    );
    let mut one = node(1, &[1]);
    assert_eq!(
        one.apply_conf_change(&ConfChange::remove_node(1)),
        Err(Error::ConfChange(ConfChangeError::RemovesLastVoter(1)))
    );
    assert_eq!(voters(&n), vec![1, 2]);
    assert_eq!(voters(&one), vec![1]);
}

// --- Terms that never meet, and restarts --------------------------------------------------------

/// A node at `term` with `voters`, an empty log.
fn node_in_term(id: NodeId, voters: &[NodeId], term: Term) -> RawNode<MemStorage> {
    let mut s = MemStorage::new_with_voters(voters);
    s.set_hard_state(raftwood_raft::HardState {
        term,
        vote: None,
        commit: 0,
    });
    RawNode::new(config(id), s).expect("valid config")
}

/// Whether `msgs` answer `to` with our term `term`.
fn answered(msgs: &[Message], to: NodeId, term: Term) -> bool {
    msgs.iter().any(|m| {
        m.to == to && m.term == term && matches!(m.body, MessageBody::HeartbeatResponse { .. })
    })
}

/// Without PreVote or CheckQuorum a stale heartbeat goes unanswered: the stale leader learns the
/// newer term from the node's next vote request. A node that is not a voter never sends one, and a
/// node whose configuration lacks the leader never sends it there, so both answer (thesis §4.2.3
/// is about the opposite problem, removed nodes disrupting; this is its mirror image).
#[test]
fn stale_leader_is_answered_when_our_campaigns_would_not_reach_it() {
    let heartbeat = |from| {
        msg(
            from,
            0,
            2,
            MessageBody::Heartbeat {
                commit: 0,
                context: None,
            },
        )
    };
    let step_to = |n: &mut RawNode<MemStorage>, from: NodeId| {
        let mut m = heartbeat(from);
        m.to = n.id();
        n.step(m).unwrap();
        drain(n)
    };
    // A voter hearing a stale leader of its own configuration: silence, as before.
    let mut voter = node_in_term(2, &[1, 2, 3], 5);
    assert!(step_to(&mut voter, 1).is_empty());
    // The leader is not in its configuration (ours is stale): answered with term 5.
    assert!(answered(&step_to(&mut voter, 6), 6, 5));
    // A joining node, not a voter of its own configuration: answered.
    let mut joining = node_in_term(4, &[1, 2, 3], 5);
    assert!(answered(&step_to(&mut joining, 1), 1, 5));
}

/// A node restarted with `Config::applied` above the commit index on its disk starts with the
/// commit index raised to it, and its first Ready writes that down: otherwise the disk would keep
/// an old commit index under entries synced later, and a restart without the state machine would
/// take committed conf changes for uncommitted ones.
#[test]
fn restart_with_applied_writes_the_raised_commit_index() {
    let mut s = MemStorage::new_with_voters(&[1, 2, 3]);
    let e = |index| Entry {
        index,
        term: 1,
        ..Default::default()
    };
    s.append(&[e(1), e(2), e(3)]);
    s.set_hard_state(raftwood_raft::HardState {
        term: 1,
        vote: None,
        commit: 1,
    });
    let mut cfg = config(2);
    cfg.applied = 3;
    let mut n = RawNode::new(cfg, s).unwrap();
    assert!(n.has_ready());
    let rd = n.ready();
    assert_eq!(rd.hard_state.map(|hs| hs.commit), Some(3));
    assert!(rd.committed_entries.is_empty(), "nothing is applied twice");
    n.advance();
}

/// A leadership transfer (thesis §3.10) to a node that a committed change removes cannot succeed:
/// the leader abandons it when it applies the change, and takes proposals again (as etcd does).
#[test]
fn transfer_to_a_removed_voter_is_abandoned() {
    let mut n = leader(&[1, 2, 3], &[2]);
    n.propose_conf_change(ConfChange::remove_node(3)).unwrap();
    drain(&mut n);
    n.transfer_leader(3).expect("n3 is still a voter");
    assert_eq!(n.status().lead_transferee, Some(3));
    n.step(accepted(2, 1, 2)).unwrap();
    drain(&mut n);
    assert_eq!(voters(&n), vec![1, 2]);
    assert_eq!(n.status().lead_transferee, None);
    assert_eq!(role(&n), Role::Leader);
    n.propose("x".into()).expect("proposals are taken again");
}
