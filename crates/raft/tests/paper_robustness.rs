//! Tests for what the Raft paper assumes away: forged or garbled messages from the network (issue
//! 2: "stale or future terms, unknown senders, indexes out of range"), which a node may ignore but
//! must never panic on, and a restart whose disk holds an older commit index than the application
//! has applied (Figure 2's lastApplied, which raftwood takes from the application). Shaped init →
//! step → assert, like the other `paper_*.rs`.
//!
//! Nodes are driven through the public [`RawNode`] API, with a [`MemStorage`] as their disk; the
//! helpers are in `common/mod.rs`.

mod common;

use bytes::Bytes;

use raftwood_raft::{Error, HardState, MemStorage, MessageBody, RawNode, Role, Term};

use common::{config, disk, drain, entry, leader_with, msg, node, node_with, term};

// --- Forged messages from the network ----------------------------------------------------------

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

// --- Restart: the applied index ----------------------------------------------------------------

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
