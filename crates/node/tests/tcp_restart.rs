//! Real nodes over loopback TCP with real WALs (fsync on), stopped and restarted: from the WAL
//! alone, from a snapshot plus the WAL, over a torn WAL tail, refusing a WAL damaged in the
//! middle, falling back past a damaged newest snapshot, and a node far behind catching up by the
//! leader's snapshot, sent in chunks; and a node restarted after compaction that finds a member
//! added before its snapshot through the URL the snapshot carries. The harness is `tcp_common`.
#![allow(clippy::unwrap_used)]

mod tcp_common;

use std::io::Write;

use raftwood_node::storage::{Batch, DiskStorage};
use tcp_common::{TcpCluster, Tuning, flip_byte, snapshot_files, wait_until, wal_segments};

fn snapshotting() -> Tuning {
    Tuning {
        snapshot_count: 20,
        snapshot_catch_up_entries: 5,
        ..Tuning::default()
    }
}

/// Stops the whole cluster and starts it again: every node's application state is what it had,
/// nothing committed lost. Returns the restarted cluster.
fn stop_all_and_restart(mut c: TcpCluster) -> TcpCluster {
    // Every node has applied everything committed before it stops.
    c.converge_on(c.leader());
    let before = c.stop_all();
    for &id in before.keys() {
        c.restart(id);
    }
    for (&id, b) in &before {
        let node = c.node(id);
        wait_until("the restarted node to replay", || {
            node.state.lock().applied >= b.applied
        });
        let after = c.state(id);
        assert_eq!(
            (&after.map, &after.order),
            (&b.map, &b.order),
            "node {id} restarted with the state it had"
        );
    }
    c
}

#[test]
fn a_cluster_restarts_from_the_wal_alone() {
    let c = TcpCluster::start(3, Tuning::default());
    c.commit(0..30);
    let c = stop_all_and_restart(c);
    for (&id, n) in &c.nodes {
        assert_eq!(
            n.restored_snapshot, None,
            "node {id}: no snapshot, the WAL alone"
        );
        assert!(c.state(id).snapshots_restored.is_empty());
        assert_eq!(c.state(id).map.len(), 30);
    }
    c.commit(30..35);
    c.assert_same_everywhere(c.leader());
}

#[test]
fn a_cluster_restarts_from_a_snapshot_and_the_wal() {
    let c = TcpCluster::start(3, snapshotting());
    c.commit_in_steps(0..50, 10);
    c.settle_snapshots();
    // Fewer than `snapshot_count`: in the WAL after the snapshot, in no snapshot.
    c.commit(50..55);
    let c = stop_all_and_restart(c);
    for (&id, n) in &c.nodes {
        let snap = n.restored_snapshot.expect("restored from a snapshot");
        assert_eq!(c.state(id).snapshots_restored, [snap], "node {id}");
        assert!(c.state(id).applied > snap, "and the WAL's entries after it");
        assert_eq!(c.state(id).map.len(), 55);
    }
    c.commit(55..60);
    c.assert_same_everywhere(c.leader());
}

#[test]
fn garbage_after_the_wal_is_a_torn_tail_and_every_acknowledged_entry_stays() {
    let mut c = TcpCluster::start(1, Tuning::default());
    c.commit(0..20);
    let before = c.stop(1);
    let newest = wal_segments(&c.dir(1)).pop().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap();
    f.write_all(&[0xA5; 200]).unwrap();
    drop(f);
    c.restart(1);
    assert!(
        c.node(1).torn_tail,
        "the garbage was cut off as a torn tail"
    );
    wait_until("the replay", || c.state(1).applied >= before.applied);
    assert_eq!(c.state(1).order, before.order, "every acknowledged entry");
    c.commit(20..25);
}

#[test]
fn a_follower_whose_last_batch_was_cut_starts_and_the_cluster_loses_nothing() {
    let mut c = TcpCluster::start(3, Tuning::default());
    c.commit(0..20);
    let leader = c.leader();
    let victim = if leader == 3 { 2 } else { 3 };
    c.converge_on(leader);
    let before = c.stop(victim);
    // A crash in the middle of writing a batch: one more batch is written, then cut in half.
    // (A torn tail is a write that was never acknowledged; cutting one the node had synced and
    // acknowledged would be losing data raft was promised, which no torn-tail rule covers.)
    let newest = wal_segments(&c.dir(victim)).pop().unwrap();
    let len_before = std::fs::metadata(&newest).unwrap().len();
    {
        let (mut disk, restored) = DiskStorage::open(&c.dir(victim), c.storage_options()).unwrap();
        let entries = [];
        let batch = Batch {
            hard_state: Some(restored.hard_state),
            entries: &entries,
            must_sync: true,
            ..Default::default()
        };
        disk.save(batch).unwrap();
        disk.close().unwrap();
    }
    assert_eq!(wal_segments(&c.dir(victim)).pop().unwrap(), newest);
    let len_after = std::fs::metadata(&newest).unwrap().len();
    assert!(len_after > len_before + 1);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap();
    f.set_len((len_before + len_after) / 2).unwrap();
    drop(f);
    c.restart(victim);
    assert!(c.node(victim).torn_tail, "the cut batch is a torn tail");
    wait_until("the replay", || c.state(victim).applied >= before.applied);
    assert_eq!(
        c.state(victim).order,
        before.order,
        "every acknowledged entry stays"
    );
    c.commit(20..25);
    let s = c.assert_same_everywhere(c.leader());
    assert_eq!(c.state(victim).order, s.order);
    assert_eq!(s.map.len(), 25, "every committed entry, on every node");
}

#[test]
fn a_wal_damaged_in_the_middle_is_refused_naming_file_and_offset() {
    let mut c = TcpCluster::start(1, Tuning::default());
    c.commit(0..20);
    c.stop(1);
    let first = wal_segments(&c.dir(1)).remove(0);
    // Inside the first frame's payload (the segment header is 40 bytes): valid batches follow.
    flip_byte(&first, 40 + 12 + 4);
    let Err(err) = DiskStorage::open(&c.dir(1), c.storage_options()) else {
        panic!("a WAL damaged in the middle must be refused");
    };
    let text = err.to_string();
    assert!(text.contains(&first.display().to_string()), "{text}");
    assert!(text.contains("corrupt at byte 40"), "{text}");
    assert!(!text.contains('\n'), "one line: {text}");
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_older_one_and_the_wal() {
    let mut c = TcpCluster::start(1, snapshotting());
    c.commit_in_steps(0..70, 10);
    c.settle_snapshots();
    c.commit(70..75);
    let before = c.stop(1);
    let snaps = snapshot_files(&c.dir(1));
    assert!(snaps.len() >= 2, "{snaps:?}");
    let newest = snaps.last().unwrap();
    let len = std::fs::metadata(newest).unwrap().len() as usize;
    flip_byte(newest, len - 1);
    c.restart(1);
    let n = c.node(1);
    assert_eq!(n.skipped_snapshots, 1, "the damaged one was skipped");
    wait_until("the replay", || c.state(1).applied >= before.applied);
    let after = c.state(1);
    assert!(after.snapshots_restored[0] < before.applied);
    assert_eq!((after.map, after.order), (before.map, before.order));
}

#[test]
fn a_node_far_behind_catches_up_by_the_leaders_snapshot_in_chunks() {
    let mut c = TcpCluster::start(
        3,
        Tuning {
            snapshot_chunk_size: 256,
            ..snapshotting()
        },
    );
    c.commit(0..10);
    let leader = c.leader();
    let victim = if leader == 3 { 2 } else { 3 };
    let behind = c.stop(victim);
    c.commit_in_steps(10..80, 10);
    c.settle_snapshots();
    let leader = c.leader();
    let leader_snapshot = c.node(leader).handle.status().snapshot_index;
    assert!(
        leader_snapshot > behind.applied + 5,
        "the leader's log is compacted past the stopped node"
    );
    c.restart(victim);
    c.commit(80..85);
    let s = c.assert_same_everywhere(c.leader());
    let caught_up = c.state(victim);
    assert!(
        caught_up
            .snapshots_restored
            .iter()
            .any(|&i| i > behind.applied),
        "restored from the leader's snapshot: {:?}",
        caught_up.snapshots_restored
    );
    let state_size = raftwood_node::codec::encode(&(&s.map, &s.order)).len();
    assert!(state_size > 4 * 256, "the snapshot took several chunks");
    assert_eq!(caught_up.map, s.map);
    assert_eq!(caught_up.order, s.order);
}

#[test]
fn a_node_restarted_after_compaction_dials_the_member_added_before_its_snapshot() {
    let mut c = TcpCluster::start(1, snapshotting());
    c.commit(0..5);
    c.add(2);
    c.commit_in_steps(5..60, 10);
    c.settle_snapshots();
    let before = c.stop(1);
    // Its `--cluster` list names only itself: node 2's URL is in the conf change, which its
    // snapshot covers, so only the snapshot's member list can tell it where node 2 is. Two
    // voters: nothing commits without node 2.
    let only_me = [(1, c.peers[&1].clone())].into();
    c.restart_with_peers(1, only_me);
    let restored = c
        .node(1)
        .restored_snapshot
        .expect("restarted from a snapshot");
    assert!(
        restored > before.conf_changes[0],
        "the snapshot covers the change"
    );
    c.commit(60..70);
    let s = c.assert_same_everywhere(c.leader());
    assert_eq!(s.map.len(), 70);
    let members = c.node(1).handle.status().members;
    assert_eq!(members.get(&2), Some(&c.peers[&2]), "{members:?}");
}
