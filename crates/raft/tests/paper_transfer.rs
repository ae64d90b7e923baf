//! Paper tests for leadership transfer (thesis §3.10, "Leadership transfer extension"), shaped
//! init → step → assert like `tests/paper_election.rs`. The thesis gives the steps:
//!
//! 1. the prior leader stops accepting client requests;
//! 2. it brings the target's log up to date with its own;
//! 3. it sends the target a TimeoutNow request, which makes the target start an election at once
//!    (its term and vote as for any election, so Election Safety is untouched);
//! 4. if the transfer does not complete within about an election timeout, the prior leader aborts
//!    it and resumes accepting client requests.
//!
//! Plus what a forced campaign needs beside the thesis (as etcd does it): the target skips
//! PreVote, and voters grant its vote requests inside a leader's CheckQuorum lease; and what it
//! means for reads (thesis §6.4): a deposed leader drops its pending reads, and a leader that has
//! sent `TimeoutNow` no longer answers from its lease.

mod common;

use bytes::Bytes;
use raftwood_raft::testkit::{Cluster, ClusterOptions};
use raftwood_raft::{
    Config, Error, MemStorage, Message, MessageBody, NodeId, ProposalDropped, RawNode,
    ReadOnlyOption, Role, TransferRejected,
};

use common::{config, drain, msg, role, step, term};

/// Node 1 with `cfg`, leader of term 1 in a cluster of {1, 2, 3}, its empty entry `1@1`
/// persisted; nobody has acknowledged anything yet.
fn leader_with(cfg: Config) -> RawNode<MemStorage> {
    let mut n = RawNode::new(cfg, MemStorage::new_with_voters(&[1, 2, 3])).expect("valid");
    n.campaign();
    drain(&mut n);
    for v in [2, 3] {
        let body = MessageBody::VoteResponse {
            pre_vote: false,
            granted: true,
        };
        step(&mut n, msg(v, 1, 1, body));
    }
    drain(&mut n);
    assert_eq!(role(&n), Role::Leader);
    n
}

fn leader() -> RawNode<MemStorage> {
    leader_with(config(1))
}

fn timeout_nows(msgs: &[Message]) -> Vec<NodeId> {
    msgs.iter()
        .filter(|m| m.body == MessageBody::TimeoutNow)
        .map(|m| m.to)
        .collect()
}

fn accepted(from: NodeId, match_index: u64) -> Message {
    msg(from, 1, 1, MessageBody::AppendAccepted { match_index })
}

/// A follower `id` of leader 1 in term 1, having heard from it (so within its lease, with
/// CheckQuorum), with PreVote and CheckQuorum on.
fn follower_in_lease(id: NodeId) -> RawNode<MemStorage> {
    let mut cfg = config(id);
    cfg.pre_vote = true;
    cfg.check_quorum = true;
    let mut n = RawNode::new(cfg, MemStorage::new_with_voters(&[1, 2, 3])).expect("valid");
    let append = MessageBody::Append {
        prev_index: 0,
        prev_term: 0,
        entries: vec![raftwood_raft::Entry {
            index: 1,
            term: 1,
            ..Default::default()
        }],
        commit: 1,
    };
    step(&mut n, msg(1, id, 1, append));
    drain(&mut n);
    assert_eq!(n.status().soft_state.leader, Some(1));
    n
}

/// Thesis §3.10, step 2 then 3: the leader sends TimeoutNow only once the target's log matches
/// its own to the last index; a target that is behind gets appends first.
#[test]
fn timeout_now_is_sent_only_once_the_target_is_up_to_date() {
    let mut n = leader();
    n.transfer_leader(2).expect("a voter");
    let sent = drain(&mut n);
    // n2 has not acknowledged the leader's empty entry (the append carrying it is in flight).
    assert!(timeout_nows(&sent).is_empty(), "n2 is behind: {sent:?}");

    // Another follower catching up changes nothing; the target catching up sends TimeoutNow.
    step(&mut n, accepted(3, 1));
    assert!(timeout_nows(&drain(&mut n)).is_empty());
    step(&mut n, accepted(2, 1));
    assert_eq!(timeout_nows(&drain(&mut n)), vec![2]);
}

/// Thesis §3.10, step 3, when the target already holds the whole log: TimeoutNow goes at once.
#[test]
fn timeout_now_goes_at_once_to_an_up_to_date_target() {
    let mut n = leader();
    step(&mut n, accepted(3, 1));
    drain(&mut n);
    n.transfer_leader(3).expect("a voter");
    assert_eq!(timeout_nows(&drain(&mut n)), vec![3]);
}

/// Thesis §3.10, step 1: during a transfer the leader takes no proposals, its own (single or
/// batched) or forwarded by a follower; the error says why.
#[test]
fn leader_refuses_proposals_during_transfer() {
    let mut n = leader();
    n.transfer_leader(2).expect("a voter");
    let refused = Err(Error::ProposalDropped(
        ProposalDropped::TransferInProgress { to: 2 },
    ));
    assert_eq!(n.propose("x".into()), refused);
    assert_eq!(n.propose_batch(vec!["y".into(), "z".into()]), refused);
    let last = n.status().last_index;
    let forwarded = MessageBody::Propose {
        entries: vec![raftwood_raft::Entry::default()],
    };
    step(&mut n, msg(3, 1, 1, forwarded));
    assert_eq!(n.status().last_index, last, "nothing appended");
}

/// Thesis §3.10, step 4: a transfer that has not completed after an election timeout is
/// abandoned, and proposals are taken again. Fails if the leader never gives up (it would refuse
/// proposals forever when the target is down).
#[test]
fn transfer_is_abandoned_after_an_election_timeout() {
    let mut n = leader();
    n.transfer_leader(2).expect("a voter");
    for _ in 0..9 {
        n.tick();
        drain(&mut n);
    }
    assert_eq!(n.status().lead_transferee, Some(2), "9 of 10 ticks");
    assert!(n.propose("early".into()).is_err());
    n.tick();
    assert_eq!(n.status().lead_transferee, None);
    assert_eq!(n.propose("after".into()), Ok(()));
    assert_eq!(role(&n), Role::Leader, "the leader stays leader");
}

/// A new transfer replaces a pending one, with its own election timeout; repeating the pending
/// one keeps its clock; transferring to itself abandons it (etcd's "already leader").
#[test]
fn a_new_transfer_replaces_the_pending_one() {
    let mut n = leader();
    n.transfer_leader(2).expect("a voter");
    for _ in 0..5 {
        n.tick();
    }
    n.transfer_leader(3).expect("a voter");
    assert_eq!(n.status().lead_transferee, Some(3));
    for _ in 0..9 {
        n.tick();
    }
    assert_eq!(n.status().lead_transferee, Some(3), "a new clock: 9 ticks");
    n.transfer_leader(3).expect("the same transfer");
    n.tick();
    assert_eq!(n.status().lead_transferee, None, "the same clock: 10 ticks");

    n.transfer_leader(2).expect("a voter");
    n.transfer_leader(1).expect("to itself");
    assert_eq!(n.status().lead_transferee, None);
    assert_eq!(n.propose("x".into()), Ok(()));
}

/// Only the leader hands over leadership, and only to a voter; the refusals are typed.
#[test]
fn transfer_is_refused_off_the_leader_or_to_an_unknown_node() {
    let mut n = leader();
    assert_eq!(
        n.transfer_leader(9),
        Err(Error::TransferRejected(TransferRejected::UnknownPeer(9)))
    );
    let mut f = follower_in_lease(2);
    assert_eq!(
        f.transfer_leader(3),
        Err(Error::TransferRejected(TransferRejected::NotLeader {
            leader: Some(1)
        }))
    );
}

/// A leader that steps down loses its transfer with its role: if it is elected again, it takes
/// proposals at once.
#[test]
fn stepping_down_ends_the_transfer() {
    let mut n = leader();
    n.transfer_leader(2).expect("a voter");
    step(
        &mut n,
        msg(
            3,
            1,
            2,
            MessageBody::Heartbeat {
                commit: 0,
                context: None,
            },
        ),
    );
    assert_eq!((role(&n), term(&n)), (Role::Follower, 2));
    assert_eq!(n.status().lead_transferee, None);
    // Elected again in term 3.
    n.campaign();
    drain(&mut n);
    let granted = MessageBody::VoteResponse {
        pre_vote: false,
        granted: true,
    };
    step(&mut n, msg(2, 1, 3, granted));
    assert_eq!(role(&n), Role::Leader);
    assert_eq!(n.propose("x".into()), Ok(()));
}

/// Thesis §3.10, step 3: TimeoutNow makes a follower start an election at once, without waiting
/// for its timeout, and without PreVote even where PreVote is on (the leader asked for this
/// election; a probe could only delay it). Its vote requests say that the leader asked.
#[test]
fn timeout_now_starts_an_election_at_once_without_prevote() {
    let mut n = follower_in_lease(2);
    step(&mut n, msg(1, 2, 1, MessageBody::TimeoutNow));
    assert_eq!((role(&n), term(&n)), (Role::Candidate, 2));
    let requests: Vec<_> = drain(&mut n)
        .into_iter()
        .filter_map(|m| match m.body {
            MessageBody::VoteRequest {
                pre_vote,
                leader_transfer,
                ..
            } => Some((m.to, m.term, pre_vote, leader_transfer)),
            _ => None,
        })
        .collect();
    assert_eq!(requests, vec![(1, 2, false, true), (3, 2, false, true)]);
}

/// A candidate (or leader) ignores TimeoutNow, as in etcd: it is campaigning (or leading) already.
#[test]
fn timeout_now_is_ignored_off_a_follower() {
    let mut n = leader();
    step(&mut n, msg(2, 1, 1, MessageBody::TimeoutNow));
    assert_eq!((role(&n), term(&n)), (Role::Leader, 1));
}

/// CheckQuorum's lease (thesis §6.2) makes a follower that heard from its leader ignore vote
/// requests of a higher term; a request marked `leader_transfer` is granted all the same, since
/// the leader asked for that election. Fails without the exemption: no transfer could succeed
/// under CheckQuorum.
#[test]
fn voter_in_lease_grants_a_transfer_vote() {
    let request = |leader_transfer| MessageBody::VoteRequest {
        pre_vote: false,
        last_index: 1,
        last_term: 1,
        leader_transfer,
    };
    let mut plain = follower_in_lease(3);
    step(&mut plain, msg(2, 3, 2, request(false)));
    assert_eq!(term(&plain), 1, "a plain request is ignored in the lease");
    assert!(drain(&mut plain).is_empty());

    let mut forced = follower_in_lease(3);
    step(&mut forced, msg(2, 3, 2, request(true)));
    assert_eq!(term(&forced), 2);
    let votes: Vec<_> = drain(&mut forced)
        .into_iter()
        .filter(|m| {
            m.body
                == MessageBody::VoteResponse {
                    pre_vote: false,
                    granted: true,
                }
        })
        .map(|m| (m.to, m.term))
        .collect();
    assert_eq!(votes, vec![(2, 2)]);
}

/// The whole transfer on a simulated network with PreVote and CheckQuorum on: the target leads
/// the next term, and the Figure 3 checks (one leader per term among them) hold throughout.
#[test]
fn transfer_hands_leadership_to_the_target() {
    let opts = ClusterOptions {
        pre_vote: true,
        check_quorum: true,
        ..Default::default()
    };
    let mut c = Cluster::new(3, opts);
    c.campaign(1);
    c.stabilize();
    c.propose(1, "x".into());
    c.stabilize();
    assert!(c.transfer_leader(1, 3));
    assert!(c.stabilize());
    assert_eq!(c.leader(), Some(3));
    let st = c.node(3).expect("up").status();
    assert_eq!(st.hard_state.term, 2);
    assert!(c.propose(3, "y".into()));
    assert!(c.stabilize());
    assert_eq!(c.check_safety(), Ok(()));
}

// --- Transfers and reads (thesis §6.4) ---------------------------------------------------------

/// Handles every Ready like [`drain`]; returns the messages, the reads answered (contexts) and
/// the reads reported dropped.
fn drain_reads(n: &mut RawNode<MemStorage>) -> (Vec<Message>, Vec<Bytes>, Vec<Bytes>) {
    let (mut sent, mut answered, mut dropped) = (Vec::new(), Vec::new(), Vec::new());
    while n.has_ready() {
        let rd = n.ready();
        if let Some(hs) = rd.hard_state {
            n.storage_mut().set_hard_state(hs);
        }
        n.storage_mut().append(&rd.entries);
        sent.extend(rd.messages);
        sent.extend(rd.persisted_messages);
        answered.extend(rd.read_states.into_iter().map(|s| s.context));
        dropped.extend(rd.dropped_reads);
        n.advance();
    }
    (sent, answered, dropped)
}

/// Leader 1 of term 1 with `cfg`, its entry `1@1` committed (acknowledged by node 2), so that it
/// may answer reads (thesis §6.4, step 1).
fn committed_leader_with(cfg: Config) -> RawNode<MemStorage> {
    let mut n = leader_with(cfg);
    step(&mut n, accepted(2, 1));
    drain(&mut n);
    assert_eq!(n.status().hard_state.commit, 1);
    n
}

/// A leader deposed by the election it asked for (thesis §3.10, step 3) is a leader stepping
/// down like any other: the reads still waiting for its quorum round are reported in
/// `Ready::dropped_reads`, never answered.
#[test]
fn leader_deposed_by_its_transfer_drops_its_pending_reads() {
    let mut n = committed_leader_with(config(1));
    n.read_index("r".into()).expect("a leader takes reads");
    n.transfer_leader(2).expect("a voter");
    let (sent, answered, _) = drain_reads(&mut n);
    assert_eq!(timeout_nows(&sent), vec![2], "node 2 holds the whole log");
    assert!(answered.is_empty(), "no quorum has acknowledged the round");
    let vote = MessageBody::VoteRequest {
        pre_vote: false,
        last_index: 1,
        last_term: 1,
        leader_transfer: true,
    };
    step(&mut n, msg(2, 1, 2, vote));
    assert_eq!((role(&n), term(&n)), (Role::Follower, 2));
    let (_, answered, dropped) = drain_reads(&mut n);
    assert!(answered.is_empty());
    assert_eq!(dropped, vec![Bytes::from_static(b"r")]);
}

/// A lease read relies on the voters refusing other candidates within the lease; the target of
/// a transfer is exempt (its vote requests carry `leader_transfer`). So once a leader has sent
/// `TimeoutNow`, it no longer answers from its lease: a read waits for a quorum round, as in
/// `Safe` mode, for the rest of its term, even after the transfer is abandoned (the target may
/// have won without this leader knowing yet).
#[test]
fn leader_that_sent_timeout_now_no_longer_answers_from_its_lease() {
    let mut cfg = config(1);
    cfg.check_quorum = true;
    cfg.read_only_option = ReadOnlyOption::LeaseBased;
    let mut n = committed_leader_with(cfg);
    n.read_index("before".into()).expect("a leader takes reads");
    let (_, answered, _) = drain_reads(&mut n);
    assert_eq!(
        answered,
        vec![Bytes::from_static(b"before")],
        "from the lease"
    );

    n.transfer_leader(2).expect("a voter");
    assert_eq!(timeout_nows(&drain(&mut n)), vec![2]);
    n.transfer_leader(1).expect("abandoning is always allowed");
    assert_eq!(n.status().lead_transferee, None);
    n.read_index("after".into()).expect("a leader takes reads");
    let (sent, answered, _) = drain_reads(&mut n);
    assert!(answered.is_empty(), "the lease was handed over");
    let carried: Vec<_> = sent
        .iter()
        .filter(
            |m| matches!(&m.body, MessageBody::Heartbeat { context: Some(c), .. } if c == "after"),
        )
        .map(|m| m.to)
        .collect();
    assert_eq!(carried, vec![2, 3], "the read rides on a heartbeat round");
    let ack = MessageBody::HeartbeatResponse {
        context: Some("after".into()),
    };
    step(&mut n, msg(3, 1, 1, ack));
    let (_, answered, _) = drain_reads(&mut n);
    assert_eq!(answered, vec![Bytes::from_static(b"after")]);
}
