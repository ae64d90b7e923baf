//! Tests named after the rules for linearizable reads in the Raft thesis (Ongaro, "Consensus:
//! Bridging Theory and Practice", 2014, §6.4 "Processing read-only queries more efficiently"):
//! the ReadIndex steps (a current-term commit, a heartbeat round acknowledged by a quorum),
//! follower reads forwarded to the leader (§6.4.1), and lease reads, which §6.4.1 ties to
//! CheckQuorum (§6.2). Shaped like `tests/paper_election.rs`: init → step → assert, one node
//! driven through [`RawNode`], its peers played by hand; the helpers are in `common/mod.rs`.

mod common;

use bytes::Bytes;

use raftwood_raft::{
    Config, Error, HardState, MemStorage, Message, MessageBody, NodeId, RawNode, ReadOnlyOption,
    ReadState, Role, Term,
};

use common::{
    append, config, disk, drain, entry, leader_of, leader_with, msg, node, role, step, term,
};

// --- Linearizable reads (thesis §6.4) ----------------------------------------------------------

/// What a node's Readys handed out about reads: the answers and the dropped contexts, and every
/// message sent.
#[derive(Default)]
struct Reads {
    states: Vec<ReadState>,
    dropped: Vec<Bytes>,
    sent: Vec<Message>,
}

/// Handles every Ready like [`drain`], keeping what concerns reads.
fn drain_reads(n: &mut RawNode<MemStorage>) -> Reads {
    let mut r = Reads::default();
    while n.has_ready() {
        let rd = n.ready();
        if let Some(hs) = rd.hard_state {
            n.storage_mut().set_hard_state(hs);
        }
        n.storage_mut().append(&rd.entries);
        r.sent.extend(rd.messages);
        r.sent.extend(rd.persisted_messages);
        r.states.extend(rd.read_states);
        r.dropped.extend(rd.dropped_reads);
        n.advance();
    }
    r
}

/// The read contexts carried by the heartbeats among `msgs`, as (to, context).
fn heartbeat_contexts(msgs: &[Message]) -> Vec<(NodeId, Option<Bytes>)> {
    msgs.iter()
        .filter_map(|m| match &m.body {
            MessageBody::Heartbeat { context, .. } => Some((m.to, context.clone())),
            _ => None,
        })
        .collect()
}

fn heartbeat_response(from: NodeId, term: Term, context: &'static str) -> Message {
    let context = Some(Bytes::from_static(context.as_bytes()));
    msg(from, 1, term, MessageBody::HeartbeatResponse { context })
}

fn read_state(index: u64, context: &'static str) -> ReadState {
    ReadState {
        index,
        context: Bytes::from_static(context.as_bytes()),
    }
}

/// Node 1 leading `voters` in term 1, with its empty entry 1@1 committed (acknowledged by all).
fn committed_leader_with(cfg: Config, voters: &[NodeId]) -> RawNode<MemStorage> {
    let mut n = leader_with(cfg, MemStorage::new_with_voters(voters), voters);
    for &v in voters.iter().filter(|&&v| v != 1) {
        let body = MessageBody::AppendAccepted { match_index: 1 };
        step(&mut n, msg(v, 1, 1, body));
    }
    drain(&mut n);
    assert_eq!(n.status().hard_state.commit, 1);
    n
}

/// Thesis §6.4, step 2: "the leader needs to make sure it hasn't been superseded by a newer
/// leader": it answers only once a quorum acknowledged a heartbeat sent after the request, which
/// carries the request's context. Two requests before the round share it.
#[test]
fn read_index_waits_for_a_quorum_heartbeat() {
    let mut n = committed_leader_with(config(1), &[1, 2, 3, 4, 5]);
    n.read_index("a".into()).expect("a leader takes reads");
    n.read_index("b".into()).expect("a leader takes reads");

    let r = drain_reads(&mut n);
    assert!(r.states.is_empty(), "no answer before the round");
    let b = Some(Bytes::from_static(b"b"));
    assert_eq!(
        heartbeat_contexts(&r.sent),
        vec![(2, b.clone()), (3, b.clone()), (4, b.clone()), (5, b)],
        "one round, carrying the newest context"
    );

    // The leader and n2 are two of five: no quorum yet. A stale context counts for nothing.
    step(&mut n, heartbeat_response(2, 1, "b"));
    step(&mut n, heartbeat_response(3, 1, "z"));
    assert!(drain_reads(&mut n).states.is_empty());

    step(&mut n, heartbeat_response(3, 1, "b"));
    let r = drain_reads(&mut n);
    assert_eq!(r.states, vec![read_state(1, "a"), read_state(1, "b")]);

    // A late acknowledgement of an answered round answers nothing again.
    step(&mut n, heartbeat_response(4, 1, "b"));
    assert!(drain_reads(&mut n).states.is_empty());
}

/// Thesis §6.4, step 1: "if the leader has not yet marked an entry from its current term
/// committed, it waits until it has done so", because until then its commit index may be behind
/// entries its predecessors committed.
#[test]
fn read_index_waits_for_current_term_commit() {
    // n1 holds 1@1, committed by an earlier leader; it leads term 2 and appends 2@2.
    let mut s = disk(&[1, 2, 3], &[1], 1);
    s.set_hard_state(HardState {
        term: 1,
        vote: None,
        commit: 0,
    });
    let mut n = leader_with(config(1), s, &[1, 2, 3]);
    assert_eq!(term(&n), 2);
    n.read_index("a".into()).expect("a leader takes reads");
    let r = drain_reads(&mut n);
    assert!(r.states.is_empty());
    assert!(
        heartbeat_contexts(&r.sent).iter().all(|(_, c)| c.is_none()),
        "no round before the first commit of the term"
    );

    step(
        &mut n,
        msg(2, 1, 2, MessageBody::AppendAccepted { match_index: 2 }),
    );
    let r = drain_reads(&mut n);
    let a = Some(Bytes::from_static(b"a"));
    assert_eq!(heartbeat_contexts(&r.sent), vec![(2, a.clone()), (3, a)]);
    step(&mut n, heartbeat_response(3, 2, "a"));
    assert_eq!(drain_reads(&mut n).states, vec![read_state(2, "a")]);
}

/// Thesis §6.4: a single-server cluster is its own quorum; the read is answered without any
/// message, once its entry of the term is committed.
#[test]
fn single_node_read_index_is_answered_at_once() {
    let mut n = node(1, &[1]);
    n.campaign();
    drain(&mut n);
    assert_eq!(role(&n), Role::Leader);
    n.read_index("a".into()).expect("a leader takes reads");
    let r = drain_reads(&mut n);
    assert_eq!(r.states, vec![read_state(1, "a")]);
    assert!(r.sent.is_empty());
}

/// Thesis §6.4.1: a lease read skips the heartbeat round, which is safe only while no other
/// leader can exist, what CheckQuorum provides; the configuration is refused without it.
#[test]
fn lease_read_requires_check_quorum() {
    let mut cfg = config(1);
    cfg.read_only_option = ReadOnlyOption::LeaseBased;
    assert_eq!(
        cfg.validate(),
        Err(Error::Config(
            "read_only_option LeaseBased requires check_quorum"
        ))
    );
    assert!(RawNode::new(cfg.clone(), MemStorage::new_with_voters(&[1, 2, 3])).is_err());

    cfg.check_quorum = true;
    let mut n = committed_leader_with(cfg, &[1, 2, 3]);
    n.read_index("a".into()).expect("a leader takes reads");
    let r = drain_reads(&mut n);
    assert_eq!(
        r.states,
        vec![read_state(1, "a")],
        "answered from the lease"
    );
    assert!(heartbeat_contexts(&r.sent).is_empty(), "no round");
}

/// Thesis §6.4: "followers could also help with serving read-only queries": a follower asks the
/// leader for the read index and serves the read once it has applied that far.
#[test]
fn follower_read_index_is_forwarded() {
    let mut n = node(2, &[1, 2, 3]);
    step(&mut n, append(1, 2, 1, (0, 0), vec![entry(1, 1)], 1));
    drain(&mut n);
    n.read_index("a".into())
        .expect("a follower that knows its leader takes reads");
    let r = drain_reads(&mut n);
    let asked: Vec<_> = r
        .sent
        .iter()
        .filter(|m| matches!(m.body, MessageBody::ReadIndex { .. }))
        .map(|m| (m.to, m.body.clone()))
        .collect();
    assert_eq!(
        asked,
        vec![(
            1,
            MessageBody::ReadIndex {
                context: "a".into()
            }
        )]
    );

    // An answer to a read not asked for is ignored; the real one becomes a ReadState.
    let answer = |context: &'static str| MessageBody::ReadIndexResponse {
        index: 1,
        context: context.into(),
    };
    step(&mut n, msg(1, 2, 1, answer("z")));
    step(&mut n, msg(1, 2, 1, answer("a")));
    step(&mut n, msg(1, 2, 1, answer("a")));
    assert_eq!(drain_reads(&mut n).states, vec![read_state(1, "a")]);
}

/// A leader answers a follower's forwarded read with a ReadIndexResponse once its round is done.
#[test]
fn leader_answers_a_forwarded_read_after_its_round() {
    let mut n = committed_leader_with(config(1), &[1, 2, 3]);
    step(
        &mut n,
        msg(
            3,
            1,
            1,
            MessageBody::ReadIndex {
                context: "a".into(),
            },
        ),
    );
    let r = drain_reads(&mut n);
    assert!(
        r.sent
            .iter()
            .all(|m| !matches!(m.body, MessageBody::ReadIndexResponse { .. }))
    );
    step(&mut n, heartbeat_response(2, 1, "a"));
    let r = drain_reads(&mut n);
    assert!(r.states.is_empty(), "the read is n3's, not n1's");
    let answers: Vec<_> = r
        .sent
        .iter()
        .filter(|m| matches!(m.body, MessageBody::ReadIndexResponse { .. }))
        .map(|m| (m.to, m.body.clone()))
        .collect();
    assert_eq!(
        answers,
        vec![(
            3,
            MessageBody::ReadIndexResponse {
                index: 1,
                context: "a".into()
            }
        )]
    );
}

/// A read that cannot be served is not lost silently: without a leader, `read_index` refuses
/// it; a leader that steps down reports its pending reads in `Ready::dropped_reads`; a follower
/// reports the reads it forwarded when its leader's term ends.
#[test]
fn unservable_reads_are_reported() {
    let mut n = node(1, &[1, 2, 3]);
    assert_eq!(n.read_index("a".into()), Err(Error::ReadIndexNoLeader));

    let mut n = committed_leader_with(config(1), &[1, 2, 3]);
    n.read_index("b".into()).expect("a leader takes reads");
    drain_reads(&mut n);
    step(
        &mut n,
        msg(2, 1, 2, MessageBody::HeartbeatResponse { context: None }),
    );
    assert_eq!(role(&n), Role::Follower);
    let r = drain_reads(&mut n);
    assert_eq!(r.dropped, vec![Bytes::from_static(b"b")]);
    assert!(r.states.is_empty());

    let mut f = node(2, &[1, 2, 3]);
    step(&mut f, append(1, 2, 1, (0, 0), vec![entry(1, 1)], 1));
    f.read_index("c".into())
        .expect("a follower that knows its leader takes reads");
    drain_reads(&mut f);
    step(&mut f, append(3, 2, 2, (1, 1), vec![], 1));
    assert_eq!(leader_of(&f), Some(3));
    assert_eq!(drain_reads(&mut f).dropped, vec![Bytes::from_static(b"c")]);
}
