//! The order in which the loop handles a Ready, checked on what it did, step by step: the
//! recording log and transport put every write and every send of a node in one trace, and
//! injected failures show what the loop had done before the write that failed.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{Cluster, Step};
use raftwood_raft::{Index, MessageBody, NodeId, Storage, Term};

/// What a node's trace says is durable at each point: the synced log (index → term) and the
/// synced term and vote.
#[derive(Default)]
struct Durable {
    log: BTreeMap<Index, Term>,
    snapshot: Index,
    term: Term,
    vote: Option<NodeId>,
}

impl Durable {
    fn last_index(&self) -> Index {
        self.log
            .keys()
            .next_back()
            .copied()
            .unwrap_or(self.snapshot)
    }
}

/// Walks `id`'s trace and checks that every acknowledgement it sent (an accepted append, a
/// granted vote: the `persisted_messages` of its Readys) follows the synced write that makes it
/// true, and that every snapshot marker follows its durable file.
fn check_trace(c: &mut Cluster, id: NodeId) -> (usize, usize) {
    let trace = c.m(id).trace.lock().clone();
    let mut d = Durable::default();
    let mut snap_files = Vec::new();
    let (mut acks, mut votes) = (0, 0);
    for step in trace {
        match step {
            Step::SaveSnap { index } => snap_files.push(index),
            Step::Save {
                marker,
                hard_state,
                entries,
                synced,
            } => {
                if let Some(m) = &marker {
                    assert!(
                        snap_files.contains(&m.metadata.index),
                        "n{id}: marker at {} before its snapshot file is durable",
                        m.metadata.index
                    );
                }
                if !synced {
                    assert!(entries.is_empty(), "n{id}: entries written without a sync");
                    continue;
                }
                if let Some(m) = marker
                    && m.reset
                {
                    d.log.clear();
                    d.snapshot = m.metadata.index;
                }
                if let Some(first) = entries.first() {
                    d.log.split_off(&first.index);
                }
                for e in entries {
                    d.log.insert(e.index, e.term);
                }
                if let Some(hs) = hard_state {
                    (d.term, d.vote) = (hs.term, hs.vote);
                }
            }
            Step::Send(msgs) => {
                for m in msgs {
                    match m.body {
                        MessageBody::AppendAccepted { match_index } => {
                            acks += 1;
                            assert!(
                                match_index <= d.last_index(),
                                "n{id} acknowledged {match_index} with only {} durable",
                                d.last_index()
                            );
                        }
                        MessageBody::VoteResponse {
                            pre_vote: false,
                            granted: true,
                        } => {
                            votes += 1;
                            assert_eq!(
                                (d.term, d.vote),
                                (m.term, Some(m.to)),
                                "n{id} granted a vote not yet durable"
                            );
                        }
                        _ => {}
                    }
                }
            }
            Step::Purge { .. } | Step::Close => {}
        }
    }
    (acks, votes)
}

/// No `persisted_messages` reach the transport before the WAL sync that covers them, across
/// elections (by timeout, with a partition), proposals and catch-up.
#[test]
fn acknowledgements_follow_the_sync_that_covers_them() {
    let mut c = Cluster::new(3);
    c.tick(30); // an election by timeout
    let leader = c.leader_of(1).unwrap();
    for i in 0..10 {
        c.propose(1 + i % 3, i, &format!("x{i}"));
    }
    c.net.isolate(leader);
    c.tick(40); // the others elect a new leader
    c.net.heal();
    for i in 10..20 {
        c.propose(1 + i % 3, i, &format!("x{i}"));
    }
    c.tick(5);
    let (mut acks, mut votes) = (0, 0);
    for id in 1..=3 {
        let (a, v) = check_trace(&mut c, id);
        acks += a;
        votes += v;
    }
    let applied = c.commands(1);
    assert!(applied.len() >= 10, "{applied:?}");
    for id in 2..=3 {
        assert_eq!(c.commands(id), applied);
    }
    assert!(
        acks > 20 && votes >= 2,
        "the run exercised the rule: {acks} acks, {votes} votes"
    );
}

/// The WAL batch is written before anything depends on it: when it fails, the Ready's entries
/// are not in the in-memory log (raft would read them as stable), not acknowledged, and not
/// handed to the application, although they were committed in the same Ready (a follower
/// learning entries and their commitment in one append).
#[test]
fn a_failed_wal_save_leaves_no_trace_in_memory_network_or_application() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, 1, "a");
    c.tick(1);
    assert_eq!(c.commands(2), ["a"]);
    // n2 misses "b" entirely; "b" commits with n3.
    c.net.cut(1, 2);
    c.propose(1, 2, "b");
    let b_index = c.m(1).node().raw().status().last_index;
    c.net.heal();
    let sends_before = c.m(2).trace.lock().len();
    *c.m(2).fail_next_save.lock() = true;
    // The next heartbeat finds n2 behind: one append brings "b" and its commitment.
    c.tick(3);
    let m2 = c.m(2);
    assert!(m2.fatal.is_some(), "the failed save stopped n2");
    let failed = m2.failed.as_ref().unwrap();
    assert!(
        failed.raw().storage().last_index().unwrap() < b_index,
        "entries reach the in-memory log only after the WAL batch"
    );
    assert_eq!(c.commands(2), ["a"], "nothing published before the save");
    let trace = c.m(2).trace.lock().clone();
    for step in &trace[sends_before..] {
        if let Step::Send(msgs) = step {
            for m in msgs {
                assert!(
                    !matches!(m.body, MessageBody::AppendAccepted { match_index } if match_index >= b_index),
                    "acknowledged an entry whose save failed: {m}"
                );
            }
        }
    }
    // The others go on.
    c.propose(1, 3, "c");
    assert_eq!(c.commands(3), ["a", "b", "c"]);
}

/// A leader's snapshot is installed only once its file and marker are durable; when the file
/// cannot be written, the follower installs nothing and publishes nothing.
#[test]
fn a_snapshot_file_that_cannot_be_written_is_not_installed() {
    let mut c = Cluster::with_n3_left_behind(12);
    c.net.heal();
    *c.m(3).fail_next_save_snap.lock() = true;
    c.tick(3);
    let m3 = c.m(3);
    assert!(m3.fatal.is_some());
    let failed = m3.failed.as_ref().unwrap();
    assert_eq!(failed.raw().storage().snapshot().unwrap().metadata.index, 0);
    assert!(m3.app.lock().snapshots_restored.is_empty());
    assert!(
        !m3.trace.lock().iter().any(|s| matches!(
            s,
            Step::Save {
                marker: Some(_),
                ..
            }
        )),
        "no marker without its file"
    );
}

/// A follower far behind installs the leader's snapshot: file first, then a resetting marker;
/// every node's local snapshots are file first, then a plain marker.
#[test]
fn snapshot_markers_follow_their_files() {
    let mut c = Cluster::with_n3_left_behind(12);
    c.net.heal();
    c.tick(3);
    for id in 1..=3 {
        check_trace(&mut c, id);
    }
    let reset = |c: &mut Cluster, id| {
        c.m(id)
            .trace
            .lock()
            .iter()
            .filter_map(|s| match s {
                Step::Save {
                    marker: Some(m), ..
                } => Some(m.reset),
                _ => None,
            })
            .collect::<Vec<bool>>()
    };
    assert!(reset(&mut c, 1).iter().all(|r| !r) && !reset(&mut c, 1).is_empty());
    assert!(
        reset(&mut c, 3).contains(&true),
        "n3 installed the leader's snapshot"
    );
    assert_eq!(c.commands(3), c.commands(1));
}

/// The loop sends `messages` before its own WAL write (Ready rule 2), so a follower may
/// acknowledge an entry before the leader has synced it. That is safe only because raft counts
/// the leader's own copy after `advance`, that is after the sync. Here, with n3 cut off, the
/// leader's appends go out, its write fails, and n2's acknowledgement reaches it: a quorum of
/// three needs two copies, and the leader's unsynced one must not be the second.
#[test]
fn the_leader_does_not_count_itself_before_its_sync() {
    let mut c = Cluster::new(3);
    c.elect(1);
    c.propose(1, 1, "a");
    c.net.cut(1, 3);
    *c.m(1).fail_next_save.lock() = true;
    c.propose(1, 2, "b");
    let m1 = c.m(1);
    assert!(m1.fatal.is_some(), "the leader's write failed");
    let failed = m1.failed.as_ref().unwrap();
    let status = failed.raw().status();
    let b_index = status.last_index;
    assert_eq!(
        status.progress[&2].match_index, b_index,
        "n2 received the append before the leader's write and acknowledged it"
    );
    assert!(
        status.hard_state.commit < b_index,
        "committed {} on n2's copy alone: the leader counted its own unsynced copy",
        status.hard_state.commit
    );
}
