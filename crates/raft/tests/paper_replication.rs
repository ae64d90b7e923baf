//! Tests named after the Raft paper's rules for log replication (§5.3), each citing its section:
//! the AppendEntries consistency check and the truncation of a conflicting suffix, Leader
//! Append-Only, the leader bringing every follower's log into agreement with its own (Figure 7);
//! proposals a leader refuses (§8); and flow control (etcd's progress states and inflight window,
//! which the paper leaves open), including a follower the leader cannot send to because its log
//! is compacted. The commit rule (§5.4.2, Figure 8) is in `paper_safety.rs`. Every test is shaped
//! init → step → assert, like the other `paper_*.rs`.
//!
//! Single nodes are driven through the public [`RawNode`] API, with a [`MemStorage`] as their disk;
//! situations that need several nodes use the testkit's [`Cluster`]. The helpers are in
//! `common/mod.rs`.

mod common;

use std::collections::BTreeMap;

use raftwood_raft::testkit::{Cluster, ClusterOptions};
use raftwood_raft::{
    Entry, Error, HardState, MemStorage, Message, MessageBody, NodeId, ProposalDropped, RawNode,
    Role, Storage, Term,
};

use common::{
    append, config, disk, drain, entry, leader, leader_with, log_of, msg, node, node_with, role,
    role_any, step, step_any, term, vote_response,
};

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

// --- Flow control (§5.3, etcd's progress states), unreadable logs ------------------------------

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
