//! Snapshots every `snapshot_count` entries, compaction keeping the catch-up margin, and a
//! lagging follower catching up by snapshot.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Cluster, Step};
use raftwood_node::NodeStats;
use raftwood_raft::{MessageBody, Storage};

#[test]
fn a_snapshot_every_snapshot_count_entries_keeps_the_catch_up_margin() {
    let mut c = Cluster::with(1, |cfg| {
        cfg.snapshot_count = 10;
        cfg.snapshot_catch_up_entries = 3;
    });
    c.elect(1);
    for i in 0..25 {
        c.propose(1, i, &format!("e{i}"));
    }
    // 26 entries (the leader's empty one, then 25). The loop asks for a snapshot in the Ready
    // that hands out index 10 (and 19), before the application has taken that Ready's items:
    // it answers with the index it has applied, 9 (and 18), and the snapshot is taken there.
    let markers: Vec<u64> = c
        .m(1)
        .trace
        .lock()
        .iter()
        .filter_map(|s| match s {
            Step::Save {
                marker: Some(m), ..
            } => Some(m.metadata.index),
            _ => None,
        })
        .collect();
    assert_eq!(markers, [9, 18]);
    let node = c.m(1).node();
    assert_eq!(NodeStats::get(&node.stats().snapshots_taken), 2);
    let storage = node.raw().storage();
    assert_eq!(storage.snapshot().unwrap().metadata.index, 18);
    assert_eq!(
        storage.first_index().unwrap(),
        16,
        "compacted up to 18 - 3, keeping 3 entries below the snapshot"
    );
    let snap = storage.snapshot().unwrap();
    let payload =
        raftwood_node::payload::SnapshotPayload::decode(snap.metadata.index, &snap.data).unwrap();
    assert_eq!(
        payload.members[&1], "http://n1",
        "the members' URLs ride along"
    );
    let state: Vec<bytes::Bytes> = raftwood_node::codec::decode(&payload.app, "state").unwrap();
    assert_eq!(state.len(), 17, "the application's state at index 18");
    assert_eq!(snap.metadata.conf_state.voters, [1]);
    assert!(
        c.m(1)
            .trace
            .lock()
            .iter()
            .any(|s| matches!(s, Step::Purge { keep: 2 }))
    );
}

#[test]
fn a_lagging_follower_catches_up_by_snapshot() {
    let mut c = Cluster::with_n3_left_behind(20);
    c.net.heal();
    c.tick(3);
    let restored = c.m(3).app.lock().snapshots_restored.clone();
    assert_eq!(restored.len(), 1, "n3 restored from a snapshot");
    assert_eq!(c.commands(3), c.commands(1));
    c.propose(1, 99, "after");
    c.tick(1);
    assert_eq!(c.commands(3).last().unwrap(), "after");
}

/// A snapshot the transport drops inside `send` is reported to raft at once (`send` returns
/// the failed `SnapshotStatus`), so the leader leaves its snapshot state for the follower and
/// sends again. Fails when the loop ignores what `send` returns: the follower's progress stays
/// in its snapshot state and it gets nothing more this term.
#[test]
fn a_snapshot_dropped_by_the_transport_is_sent_again() {
    let mut c = Cluster::with_n3_left_behind(20);
    c.net.drop_snapshots(true);
    c.net.heal();
    c.tick(3);
    let dropped = c.net.dropped();
    assert!(
        dropped
            .iter()
            .any(|m| m.to == 3 && matches!(m.body, MessageBody::Snapshot { .. })),
        "the leader tried a snapshot while they were dropped"
    );
    assert!(c.m(3).app.lock().snapshots_restored.is_empty());
    c.net.drop_snapshots(false);
    c.tick(3);
    assert_eq!(c.m(3).app.lock().snapshots_restored.len(), 1);
    assert_eq!(c.commands(3), c.commands(1));
}

/// The application's state may lag the index the node handed out (items still in the channel):
/// the snapshot is taken at the application's index, with the configuration as of that index.
#[test]
fn a_lagging_application_snapshots_at_its_own_index() {
    let mut c = Cluster::with(1, |cfg| {
        cfg.snapshot_count = 4;
        cfg.snapshot_catch_up_entries = 1;
        cfg.apply_capacity = 1;
    });
    c.elect(1);
    c.m(1).consuming = false;
    for i in 0..6 {
        c.propose(1, i, &format!("e{i}"));
    }
    let app_index = c.m(1).app.lock().applied_index;
    let node = c.m(1).node();
    let snap_index = node.raw().storage().snapshot().unwrap().metadata.index;
    assert!(
        snap_index == 0 || snap_index <= app_index,
        "no snapshot beyond what the application applied"
    );
    c.m(1).consuming = true;
    for _ in 0..20 {
        c.m(1).drain();
        c.tick(1);
    }
    let storage = c.m(1).node().raw().storage();
    assert!(storage.snapshot().unwrap().metadata.index >= 4);
    assert_eq!(c.commands(1).len(), 6);
}
