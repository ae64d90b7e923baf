//! Tests named after the rules of log compaction in the Raft paper (§7 "Log compaction", Figure 13
//! InstallSnapshot) and the thesis (Ongaro, "Consensus: Bridging Theory and Practice", 2014,
//! chapter 5): installing a snapshot, a leader that sends one when its log is compacted, the
//! snapshot's configuration, restarting from a disk that holds one, and what reaches the
//! application when the storage fails (issue 10: no silent retry loop). Shaped like
//! `tests/paper_election.rs`: init → step → assert, one node driven through [`RawNode`], its peers
//! played by hand; the helpers are in `common/mod.rs`.

mod common;

use raftwood_raft::progress::ProgressState;
use raftwood_raft::{
    ConfState, Entry, HardState, MemStorage, Message, MessageBody, NodeId, RaftState, RawNode,
    Snapshot, SnapshotMetadata, Storage, StorageError, StorageFailure, Term,
};

use common::{
    append, config, disk, drain, entry, leader, leader_with, log_of, msg, node, node_with, step,
    step_any, term, vote_response,
};

// --- Log compaction and snapshots (Raft §7, thesis §5) ------------------------------------------

/// A snapshot of the state at `index`@`term` with these voters and no data.
fn snapshot(index: u64, term: Term, voters: &[NodeId]) -> Snapshot {
    Snapshot {
        metadata: SnapshotMetadata {
            index,
            term,
            conf_state: ConfState {
                voters: voters.to_vec(),
            },
        },
        data: "state".into(),
    }
}

fn snapshot_msg(from: NodeId, to: NodeId, term: Term, snap: Snapshot) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::Snapshot {
            snapshot: Box::new(snap),
        },
    )
}

/// The match index of every `AppendAccepted` among `msgs`.
fn accepted(msgs: &[Message]) -> Vec<u64> {
    msgs.iter()
        .filter_map(|m| match m.body {
            MessageBody::AppendAccepted { match_index } => Some(match_index),
            _ => None,
        })
        .collect()
}

/// A disk whose log `1..=last` (all of term 1) is committed, snapshotted at `snap_at` and
/// compacted there.
fn compacted_disk(voters: &[NodeId], last: u64, snap_at: u64) -> MemStorage {
    let mut s = disk(voters, &vec![1; last as usize], 1);
    s.set_hard_state(HardState {
        term: 1,
        vote: None,
        commit: last,
    });
    let cs = ConfState {
        voters: voters.to_vec(),
    };
    s.create_snapshot(snap_at, cs, "state".into())
        .expect("snapshot at an index held");
    s.compact(snap_at)
        .expect("compact what the snapshot covers");
    s
}

/// Raft §7 (Figure 13, InstallSnapshot receiver rules 6 and 7; thesis §5.1): a follower that
/// receives a snapshot ahead of its commit index discards its log and installs the snapshot:
/// handed to the application in `Ready::snapshot`, with nothing else to apply in that Ready;
/// acknowledged with its new last index, only once persisted; applied jumps to the snapshot's
/// index on `advance`, and the log continues after it.
#[test]
fn follower_installs_snapshot_ahead_of_commit() {
    // The follower holds entries up to 9 of term 1, of which 3..=9 are not committed and not the
    // leader's: the snapshot's index 7 has term 2.
    let mut n = node_with(config(2), disk(&[1, 2, 3], &[1; 9], 1));
    step(&mut n, append(1, 2, 1, (9, 1), vec![], 2));
    drain(&mut n);
    assert_eq!(n.status().applied, 2);

    step(&mut n, snapshot_msg(1, 2, 2, snapshot(7, 2, &[1, 2, 3])));
    let rd = n.ready();
    let snap = rd.snapshot.clone().expect("the snapshot is handed out");
    assert_eq!(snap.metadata.index, 7);
    assert_eq!(rd.hard_state.map(|hs| hs.commit), Some(7));
    assert!(rd.committed_entries.is_empty(), "the snapshot holds them");
    assert!(rd.must_sync);
    assert!(
        accepted(&rd.messages).is_empty(),
        "acknowledged only once durable"
    );
    assert_eq!(accepted(&rd.persisted_messages), vec![7]);
    n.storage_mut()
        .apply_snapshot(*snap)
        .expect("newer snapshot");
    n.advance();

    let st = n.status();
    assert_eq!((st.applied, st.last_index, n.first_index()), (7, 7, 8));
    assert_eq!(n.term(7), Ok(2));
    // The log continues after the snapshot; entries 3..=7 are never handed out.
    step(&mut n, append(1, 2, 2, (7, 2), vec![entry(8, 2)], 8));
    let rd = n.ready();
    assert_eq!(rd.committed_entries, vec![entry(8, 2)]);
    n.storage_mut().append(&rd.entries);
    n.advance();
    assert_eq!(n.status().applied, 8);
}

/// Raft §7 (Figure 13, receiver rule 6 read the other way; thesis §5.1): a snapshot at or behind
/// the follower's commit index holds nothing new; it is not installed, and the follower answers
/// with its commit index, so that the leader moves on from there.
#[test]
fn stale_snapshot_is_answered_with_commit() {
    let mut n = node_with(config(2), disk(&[1, 2, 3], &[1, 1, 1, 1, 1], 1));
    step(&mut n, append(1, 2, 1, (5, 1), vec![], 5));
    drain(&mut n);

    step(&mut n, snapshot_msg(1, 2, 1, snapshot(3, 1, &[1, 2, 3])));
    let rd = n.ready();
    assert!(rd.snapshot.is_none());
    assert_eq!(accepted(&rd.persisted_messages), vec![5]);
    n.advance();
    assert_eq!(log_of(&n).len(), 5, "the log is untouched");

    // The same for a follower that has compacted past the snapshot: its log cannot even be
    // compared with it, and the snapshot is still old news.
    let mut n = node_with(config(2), compacted_disk(&[1, 2, 3], 5, 4));
    step(&mut n, snapshot_msg(1, 2, 1, snapshot(3, 1, &[1, 2, 3])));
    let rd = n.ready();
    assert!(rd.snapshot.is_none());
    assert_eq!(accepted(&rd.persisted_messages), vec![5]);
    n.advance();
}

/// Raft §7: "If instead the follower receives a snapshot that describes a prefix of its log, then
/// log entries covered by the snapshot are deleted but entries following the snapshot are still
/// valid and must be retained." As in etcd, nothing is deleted either: the log holds the
/// snapshot's last entry with its term, so by Log Matching it already holds the snapshot's
/// entries; only the commit index moves, and the entries are applied one by one as usual.
#[test]
fn snapshot_describing_a_prefix_of_the_log_keeps_the_entries_after_it() {
    let mut n = node_with(config(2), disk(&[1, 2, 3], &[1, 1, 1, 1, 1], 1));
    step(&mut n, snapshot_msg(1, 2, 1, snapshot(3, 1, &[1, 2, 3])));
    let rd = n.ready();
    assert!(rd.snapshot.is_none(), "nothing to install");
    assert_eq!(rd.hard_state.map(|hs| hs.commit), Some(3));
    assert_eq!(rd.committed_entries.len(), 3);
    assert_eq!(accepted(&rd.persisted_messages), vec![3]);
    n.advance();
    assert_eq!(log_of(&n).len(), 5, "entries after the snapshot are kept");
}

/// Raft §7: "the leader must occasionally send snapshots to followers that lag behind. This
/// happens when the leader has already discarded the next log entry that it needs to send to a
/// follower." The follower's progress enters the snapshot state (nothing else is sent, not even
/// on a heartbeat response) until the follower acknowledges an index at or past the leader's
/// first index; then the leader streams from there.
#[test]
fn leader_sends_snapshot_when_entries_compacted() {
    let mut l = leader_with(config(1), compacted_disk(&[1, 2], 5, 4), &[1, 2]);
    let t = term(&l);
    assert_eq!(l.first_index(), 5);
    // The follower's log is empty: the probe after 5 is rejected, the leader backs off to index 1,
    // which it compacted.
    step(
        &mut l,
        msg(
            2,
            1,
            t,
            MessageBody::AppendRejected {
                rejected_index: 5,
                hint_index: 0,
                hint_term: 0,
            },
        ),
    );
    let sent = drain(&mut l);
    let snaps: Vec<&Snapshot> = sent
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::Snapshot { snapshot } if m.to == 2 => Some(&**snapshot),
            _ => None,
        })
        .collect();
    assert_eq!(snaps.len(), 1, "{sent:?}");
    assert_eq!((snaps[0].metadata.index, snaps[0].metadata.term), (4, 1));
    assert_eq!(snaps[0].metadata.conf_state.voters, vec![1, 2]);
    assert!(l.status().progress[&2].next_index == 5);

    // In the snapshot state, a heartbeat response releases nothing.
    step(
        &mut l,
        msg(2, 1, t, MessageBody::HeartbeatResponse { context: None }),
    );
    assert!(
        drain(&mut l)
            .iter()
            .all(|m| m.to != 2 || matches!(m.body, MessageBody::Heartbeat { .. }))
    );

    // The follower installed it: the leader streams the rest.
    step(
        &mut l,
        msg(2, 1, t, MessageBody::AppendAccepted { match_index: 4 }),
    );
    let sent = drain(&mut l);
    assert!(l.status().progress[&2].replicating);
    assert!(
        sent.iter().any(|m| matches!(&m.body,
        MessageBody::Append { prev_index: 4, prev_term: 1, entries, .. } if entries.len() == 2)),
        "{sent:?}"
    );
}

/// Thesis §5.1 leaves the transfer to the implementation; etcd (and raftwood) leave it to the
/// application, which reports the outcome. A failure falls back to probing, paused until the
/// follower's next heartbeat response, which sends the snapshot again.
#[test]
fn report_snapshot_failure_falls_back_to_probe() {
    let mut l = leader_with(config(1), compacted_disk(&[1, 2], 5, 4), &[1, 2]);
    let t = term(&l);
    step(
        &mut l,
        msg(
            2,
            1,
            t,
            MessageBody::AppendRejected {
                rejected_index: 5,
                hint_index: 0,
                hint_term: 0,
            },
        ),
    );
    drain(&mut l);
    let is_snap = |m: &Message| m.to == 2 && matches!(m.body, MessageBody::Snapshot { .. });

    l.report_snapshot(2, false);
    let pr = l.status().progress[&2];
    assert_eq!((pr.replicating, pr.next_index), (false, 1));
    assert!(
        !drain(&mut l).iter().any(is_snap),
        "paused until heard from"
    );
    step(
        &mut l,
        msg(2, 1, t, MessageBody::HeartbeatResponse { context: None }),
    );
    assert_eq!(
        drain(&mut l).iter().filter(|m| is_snap(m)).count(),
        1,
        "sent again"
    );

    // A success probes after the snapshot, waiting for the follower's acknowledgement.
    l.report_snapshot(2, true);
    assert_eq!(l.status().progress[&2].next_index, 5);
    assert!(
        drain(&mut l).iter().all(|m| m.to != 2),
        "waits for the acknowledgement"
    );
}

/// etcd's `ReportUnreachable`: the transport could not reach a follower the leader streams to.
/// What was streamed may be lost, so the leader probes it again instead of filling its window.
#[test]
fn report_unreachable_moves_replicating_follower_to_probe() {
    let mut l = leader(&[1, 2]);
    let t = term(&l);
    step(
        &mut l,
        msg(2, 1, t, MessageBody::AppendAccepted { match_index: 1 }),
    );
    drain(&mut l);
    assert!(l.status().progress[&2].replicating);
    l.report_unreachable(2);
    let pr = l.status().progress[&2];
    assert_eq!((pr.replicating, pr.next_index), (false, 2));
}

/// A node restarts from a disk whose log starts after a snapshot (first index > 1): the snapshot
/// counts as applied and committed, even if the commit index on disk is older (it is written
/// without a sync), and the entries after it are replicated and applied as usual.
#[test]
fn restart_from_a_disk_holding_a_snapshot() {
    let mut d = compacted_disk(&[1, 2, 3], 6, 4);
    d.set_hard_state(HardState {
        term: 1,
        vote: None,
        commit: 2,
    });
    let mut n = node_with(config(2), d);
    let st = n.status();
    assert_eq!(
        (n.first_index(), st.applied, st.hard_state.commit),
        (5, 4, 4)
    );
    assert_eq!(n.term(4), Ok(1));
    step(&mut n, append(1, 2, 1, (6, 1), vec![], 6));
    let rd = n.ready();
    let applied: Vec<u64> = rd.committed_entries.iter().map(|e| e.index).collect();
    assert_eq!(applied, vec![5, 6], "from just after the snapshot");
    n.advance();
}

/// A storage wrapper that fails on demand: `snapshot` answers a chosen error (or a stale
/// snapshot), and `entries` fails while `entries_fail` is set.
struct Faulty {
    inner: MemStorage,
    error: Option<StorageError>,
    /// Answered instead of the storage's own snapshot.
    stale: Option<Snapshot>,
    entries_fail: std::cell::Cell<bool>,
}

impl Storage for Faulty {
    fn initial_state(&self) -> Result<RaftState, StorageError> {
        self.inner.initial_state()
    }
    fn entries(&self, low: u64, high: u64, max: u64) -> Result<Vec<Entry>, StorageError> {
        if self.entries_fail.get() {
            return Err(StorageError::Other("checksum mismatch".into()));
        }
        self.inner.entries(low, high, max)
    }
    fn term(&self, index: u64) -> Result<Term, StorageError> {
        self.inner.term(index)
    }
    fn first_index(&self) -> Result<u64, StorageError> {
        self.inner.first_index()
    }
    fn last_index(&self) -> Result<u64, StorageError> {
        self.inner.last_index()
    }
    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        match (&self.error, &self.stale) {
            (Some(e), _) => Err(e.clone()),
            (None, Some(s)) => Ok(s.clone()),
            (None, None) => self.inner.snapshot(),
        }
    }
}

/// A leader of term 2 over `storage` (compacted at 4), whose follower 2 has just asked for index 1.
fn leader_needing_snapshot(error: Option<StorageError>) -> RawNode<Faulty> {
    let storage = Faulty {
        inner: compacted_disk(&[1, 2], 5, 4),
        error,
        stale: None,
        entries_fail: Default::default(),
    };
    let mut l = RawNode::new(config(1), storage).expect("valid");
    l.campaign();
    let _ = l.ready();
    l.advance();
    step_any(&mut l, vote_response(2, 1, 2, true));
    let rd = l.ready();
    l.storage_mut().inner.append(&rd.entries);
    l.advance();
    step_any(
        &mut l,
        msg(
            2,
            1,
            2,
            MessageBody::AppendRejected {
                rejected_index: 5,
                hint_index: 0,
                hint_term: 0,
            },
        ),
    );
    l
}

/// A storage that compacted past its snapshot (`MemStorage` refuses to; another storage might):
/// the snapshot ends before the log starts, so it cannot catch a follower up. The leader reports
/// it instead of sending a snapshot that would bring the follower back to the same place.
#[test]
fn snapshot_ending_before_the_first_index_is_reported() {
    let mut l = leader_needing_snapshot(None);
    let mut old = snapshot(2, 1, &[1, 2]);
    old.data = "older".into();
    l.storage_mut().stale = Some(old);
    let (sent, failures) = next_for_2(&mut l);
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].to, 2);
}

/// What `l`'s next Ready sends node 2, and the storage failures it reports.
fn next_for_2(l: &mut RawNode<Faulty>) -> (Vec<Message>, Vec<StorageFailure>) {
    if !l.has_ready() {
        return (Vec::new(), Vec::new());
    }
    let rd = l.ready();
    l.advance();
    let to2 = rd.messages.into_iter().filter(|m| m.to == 2).collect();
    (to2, rd.storage_failures)
}

/// etcd's `ErrSnapshotTemporarilyUnavailable`: the application is still preparing a snapshot.
/// The leader skips the follower, reports nothing, and asks again after the follower's next
/// heartbeat response.
#[test]
fn snapshot_temporarily_unavailable_skips_follower_until_heartbeat_response() {
    let mut l = leader_needing_snapshot(Some(StorageError::SnapshotTemporarilyUnavailable));
    let (sent, failures) = next_for_2(&mut l);
    assert!(
        sent.is_empty() && failures.is_empty(),
        "{sent:?} {failures:?}"
    );
    assert_eq!(next_for_2(&mut l).0, vec![], "no retry loop");
    l.storage_mut().error = None;
    step_any(
        &mut l,
        msg(2, 1, 2, MessageBody::HeartbeatResponse { context: None }),
    );
    let (sent, _) = next_for_2(&mut l);
    assert!(
        matches!(
            sent[..],
            [Message {
                body: MessageBody::Snapshot { .. },
                ..
            }]
        ),
        "{sent:?}"
    );
}

/// A storage error reaches the application: reported once in `Ready::storage_failures`, with the
/// follower it concerned; the follower is skipped (no silent retry loop) until its next heartbeat
/// response, when the read is tried, and reported, again.
#[test]
fn storage_error_reaches_the_application() {
    let error = StorageError::Other("disk on fire".into());
    let mut l = leader_needing_snapshot(Some(error.clone()));
    let (sent, failures) = next_for_2(&mut l);
    assert!(sent.is_empty());
    assert_eq!(
        failures,
        vec![StorageFailure {
            to: 2,
            error: error.clone()
        }]
    );
    assert!(
        !l.has_ready(),
        "nothing retried until the follower is heard from"
    );
    step_any(
        &mut l,
        msg(2, 1, 2, MessageBody::HeartbeatResponse { context: None }),
    );
    assert_eq!(next_for_2(&mut l).1, vec![StorageFailure { to: 2, error }]);
}

/// The snapshot state in `Progress`, seen through the leader's status: a follower sent a snapshot
/// is neither probed nor streamed to.
#[test]
fn progress_of_a_follower_sent_a_snapshot_is_in_the_snapshot_state() {
    let mut p = raftwood_raft::progress::Progress::new(1, 4);
    p.become_snapshot(4);
    assert_eq!(p.state(), &ProgressState::Snapshot { pending: 4 });
    assert!(p.is_paused());
}

/// Raft §7 (thesis §5.1: the snapshot holds "the latest configuration as of the last included
/// index"): a follower installing a snapshot adopts its configuration, since the entries that
/// changed it are compacted away. Seen from outside: its next campaign asks the snapshot's voters.
#[test]
fn follower_adopts_the_configuration_of_an_installed_snapshot() {
    let mut n = node(2, &[1, 2, 3]);
    step(
        &mut n,
        snapshot_msg(1, 2, 1, snapshot(5, 1, &[1, 2, 3, 4, 5])),
    );
    drain(&mut n);
    n.campaign();
    let mut asked: Vec<NodeId> = drain(&mut n)
        .iter()
        .filter(|m| matches!(m.body, MessageBody::VoteRequest { .. }))
        .map(|m| m.to)
        .collect();
    asked.sort_unstable();
    assert_eq!(asked, vec![1, 3, 4, 5]);
    assert_eq!(
        n.storage().initial_state().map(|s| s.conf_state.voters),
        Ok(vec![1, 2, 3, 4, 5])
    );
    assert_eq!(n.status().conf_state.voters, vec![1, 2, 3, 4, 5]);
}

/// etcd's `restore`: a snapshot whose configuration does not include the receiver is refused
/// by a voter (it must not give up its vote on the word of a configuration that was never its
/// own); it is answered like a stale one.
#[test]
fn snapshot_without_the_receiver_in_its_configuration_is_refused() {
    let mut n = node(2, &[1, 2, 3]);
    step(&mut n, snapshot_msg(1, 2, 1, snapshot(5, 1, &[1, 3])));
    let rd = n.ready();
    assert!(rd.snapshot.is_none());
    assert_eq!(accepted(&rd.persisted_messages), vec![0]);
    n.advance();
}

/// Raft §7 with thesis §4.1: a node joining the cluster (not a voter of its own configuration)
/// accepts a snapshot that predates its addition, and so does not include it: the leader sends
/// it because the change adding the node is in its configuration, and that change follows the
/// snapshot in the log. The node adopts the snapshot's configuration ([`RawNode::status`] shows
/// it) and still does not campaign.
#[test]
fn joining_node_installs_a_snapshot_that_predates_its_addition() {
    let mut n = node(4, &[1, 2, 3]);
    step(&mut n, snapshot_msg(1, 4, 1, snapshot(5, 1, &[1, 2, 3])));
    let rd = n.ready();
    assert_eq!(rd.snapshot.as_ref().map(|s| s.metadata.index), Some(5));
    assert_eq!(accepted(&rd.persisted_messages), vec![5]);
    n.advance();
    assert_eq!(n.status().conf_state.voters, vec![1, 2, 3]);
    n.campaign();
    assert!(
        drain(&mut n)
            .iter()
            .all(|m| !matches!(m.body, MessageBody::VoteRequest { .. })),
        "still not a voter: no campaign"
    );
}

/// Issue 10 ("a storage error reaches the application, never a silent retry loop"), on the apply
/// path: committed entries the storage cannot read back are reported in `Ready::apply_failure`,
/// nothing is applied, and the node does not spin on `has_ready`; it tries again at the next tick,
/// and applies once the storage answers.
#[test]
fn committed_entries_the_storage_cannot_read_are_reported_once_per_tick() {
    let mut inner = disk(&[1, 2, 3], &[1, 1, 1], 1);
    inner.set_hard_state(HardState {
        term: 1,
        vote: None,
        commit: 3,
    });
    let storage = Faulty {
        inner,
        error: None,
        stale: None,
        entries_fail: std::cell::Cell::new(true),
    };
    let mut n = RawNode::new(config(1), storage).expect("valid config and storage");

    let rd = n.ready();
    assert!(
        matches!(rd.apply_failure, Some(StorageError::Other(_))),
        "{rd:?}"
    );
    assert!(rd.committed_entries.is_empty());
    n.advance();
    assert!(!n.has_ready(), "no retry until the next tick");

    n.tick();
    let rd = n.ready();
    assert!(rd.apply_failure.is_some(), "tried, and reported, again");
    n.advance();

    n.storage().entries_fail.set(false);
    n.tick();
    let rd = n.ready();
    assert_eq!(rd.apply_failure, None);
    let applied: Vec<u64> = rd.committed_entries.iter().map(|e| e.index).collect();
    assert_eq!(applied, vec![1, 2, 3]);
    n.advance();
    assert_eq!(n.status().applied, 3);
}
