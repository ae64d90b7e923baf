//! Helpers shared by the paper tests (`paper_election.rs`, `paper_replication.rs`,
//! `paper_safety.rs`, `paper_robustness.rs`, `paper_snapshots.rs`, `paper_reads.rs`,
//! `paper_transfer.rs`, `paper_membership.rs`): one node driven through the public [`RawNode`] API,
//! with a [`MemStorage`] as its disk, and the messages its peers would send, built by hand.
//!
//! Each test file compiles this module on its own and uses only some of it.
#![allow(dead_code)]

use raftwood_raft::{
    Config, Entry, HardState, MemStorage, Message, MessageBody, NodeId, RawNode, Role, Storage,
    Term,
};

/// The configuration every test uses unless it says otherwise: election after 10..20 ticks,
/// heartbeat every tick.
pub fn config(id: NodeId) -> Config {
    let mut c = Config::new(id);
    c.election_tick = 10;
    c.heartbeat_tick = 1;
    c
}

/// A log whose entry at index `i + 1` has term `terms[i]`.
pub fn log(terms: &[Term]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &term)| Entry {
            index: i as u64 + 1,
            term,
            ..Default::default()
        })
        .collect()
}

/// A disk holding `terms` as its log, and `term` (no vote, nothing committed) as its hard state.
pub fn disk(voters: &[NodeId], terms: &[Term], term: Term) -> MemStorage {
    let mut s = MemStorage::new_with_voters(voters);
    s.append(&log(terms));
    s.set_hard_state(HardState {
        term,
        vote: None,
        commit: 0,
    });
    s
}

/// Node `id` of a cluster of `voters`, starting from `storage`.
pub fn node_with(cfg: Config, storage: MemStorage) -> RawNode<MemStorage> {
    RawNode::new(cfg, storage).expect("valid config and storage")
}

/// A fresh follower `id` at term 0 in a cluster of `voters`.
pub fn node(id: NodeId, voters: &[NodeId]) -> RawNode<MemStorage> {
    node_with(config(id), MemStorage::new_with_voters(voters))
}

/// Handles every Ready as an application would (persist, then collect the messages), and returns
/// the messages sent.
pub fn drain(n: &mut RawNode<MemStorage>) -> Vec<Message> {
    let mut sent = Vec::new();
    // A node that keeps having a Ready without anything changing is livelocked: fail, not hang.
    for round in 0.. {
        if !n.has_ready() {
            break;
        }
        assert!(round < 1000, "livelock: a Ready after 1000 Readys");
        let rd = n.ready();
        // Ready rule 1: the snapshot first, then the hard state and the entries.
        if let Some(snap) = rd.snapshot {
            n.storage_mut()
                .apply_snapshot(*snap)
                .expect("a Ready's snapshot is newer than the disk's");
        }
        if let Some(hs) = rd.hard_state {
            n.storage_mut().set_hard_state(hs);
        }
        n.storage_mut().append(&rd.entries);
        sent.extend(rd.messages);
        sent.extend(rd.persisted_messages);
        n.advance();
    }
    sent
}

pub fn msg(from: NodeId, to: NodeId, term: Term, body: MessageBody) -> Message {
    Message {
        from,
        to,
        term,
        body,
    }
}

pub fn vote_request(
    from: NodeId,
    to: NodeId,
    term: Term,
    last_index: u64,
    last_term: Term,
) -> Message {
    let body = MessageBody::VoteRequest {
        pre_vote: false,
        last_index,
        last_term,
        leader_transfer: false,
    };
    msg(from, to, term, body)
}

pub fn vote_response(from: NodeId, to: NodeId, term: Term, granted: bool) -> Message {
    let body = MessageBody::VoteResponse {
        pre_vote: false,
        granted,
    };
    msg(from, to, term, body)
}

pub fn append(
    from: NodeId,
    to: NodeId,
    term: Term,
    prev: (u64, Term),
    entries: Vec<Entry>,
    commit: u64,
) -> Message {
    let body = MessageBody::Append {
        prev_index: prev.0,
        prev_term: prev.1,
        entries,
        commit,
    };
    msg(from, to, term, body)
}

pub fn entry(index: u64, term: Term) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

pub fn step(n: &mut RawNode<MemStorage>, m: Message) {
    n.step(m).expect("message addressed to this node");
}

pub fn term(n: &RawNode<MemStorage>) -> Term {
    n.status().hard_state.term
}

pub fn role(n: &RawNode<MemStorage>) -> Role {
    n.status().soft_state.role
}

pub fn leader_of(n: &RawNode<MemStorage>) -> Option<NodeId> {
    n.status().soft_state.leader
}

/// The (index, term) of every entry in the node's log.
pub fn log_of(n: &RawNode<MemStorage>) -> Vec<(u64, Term)> {
    let last = n.status().last_index;
    n.entries(1, last + 1)
        .expect("the whole log is readable")
        .iter()
        .map(|e| (e.index, e.term))
        .collect()
}

/// The vote responses among `msgs`, as (to, term, granted).
pub fn votes_sent(msgs: &[Message]) -> Vec<(NodeId, Term, bool)> {
    msgs.iter()
        .filter_map(|m| match m.body {
            MessageBody::VoteResponse {
                pre_vote: false,
                granted,
            } => Some((m.to, m.term, granted)),
            _ => None,
        })
        .collect()
}

/// Node 1 of `voters`, made leader of term 1 by the votes of everyone, with its empty entry
/// persisted.
pub fn leader(voters: &[NodeId]) -> RawNode<MemStorage> {
    leader_with(config(1), MemStorage::new_with_voters(voters), voters)
}

/// Node 1, starting from `storage`, made leader by the votes of every other voter.
pub fn leader_with(cfg: Config, storage: MemStorage, voters: &[NodeId]) -> RawNode<MemStorage> {
    let mut n = node_with(cfg, storage);
    n.campaign();
    drain(&mut n);
    let t = term(&n);
    for &v in voters.iter().filter(|&&v| v != 1) {
        step(&mut n, vote_response(v, 1, t, true));
    }
    drain(&mut n);
    assert_eq!(role(&n), Role::Leader);
    n
}

pub fn step_any<S: Storage>(n: &mut RawNode<S>, m: Message) {
    n.step(m).expect("message addressed to this node");
}

pub fn role_any<S: Storage>(n: &RawNode<S>) -> Role {
    n.status().soft_state.role
}
