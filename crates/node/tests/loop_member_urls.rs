//! Members' peer URLs survive snapshots: the snapshots a node creates carry every member's URL
//! as of their index (`raftwood_node::payload`), so that a node restored from one (a restart
//! after compaction, a follower the leader sends one to) dials members added before it, whose
//! conf changes it will never see; a snapshot that is not such a payload stops the node with a
//! typed error.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{Cluster, config};
use raftwood_node::payload::PayloadError;
use raftwood_node::transport::TransportEvent;
use raftwood_node::{ConfChangeRequest, ConfigError, NodeError, RaftNode, StartFrom};
use raftwood_raft::{
    ConfChange, ConfState, MemStorage, Message, MessageBody, Snapshot, SnapshotMetadata, Storage,
};

const N4: &str = "http://n4:2380";

/// A 3-node cluster (snapshot every 5 entries, catch-up margin `catch_up`) to which node 4 is
/// added with its URL in the change's context; `before_add` runs first.
fn cluster_with_4(catch_up: u64, before_add: impl FnOnce(&mut Cluster)) -> Cluster {
    let mut c = Cluster::with(3, |cfg| {
        cfg.snapshot_count = 5;
        cfg.snapshot_catch_up_entries = catch_up;
    });
    c.elect(1);
    before_add(&mut c);
    let mut cfg = config(4, 3);
    cfg.join = true;
    cfg.snapshot_count = 5;
    cfg.snapshot_catch_up_entries = catch_up;
    c.add_member(cfg, StartFrom::Fresh);
    let change = ConfChange::add_voter(4).with_context(N4);
    c.m(1)
        .node()
        .on_conf_change(ConfChangeRequest { id: 1, change });
    c.pump();
    c.tick(3);
    for i in 0..12 {
        c.propose(1, i, &format!("e{i}"));
    }
    c
}

#[test]
fn a_node_restarted_from_a_snapshot_knows_members_added_before_it() {
    let mut c = cluster_with_4(100, |_| {});
    let storage = c.m(1).node().raw().storage().clone();
    let snap_index = storage.snapshot().unwrap().metadata.index;
    let conf_change_index = c.m(1).app.lock().conf_changes[0];
    assert!(
        snap_index > conf_change_index,
        "the change is inside the snapshot"
    );
    c.m(1).node.take().unwrap().finish().unwrap();

    // Node 1 again, with only its initial `--cluster` list (no node 4), from what it stored.
    let mut restarted = Cluster {
        net: raftwood_node::transport::memory::MemoryNetwork::new(),
        members: Vec::new(),
    };
    restarted.add_member(config(1, 3), StartFrom::Restored(storage));
    restarted.pump();
    assert!(
        restarted
            .net
            .peer_changes()
            .contains(&(1, 4, Some(N4.to_string()))),
        "node 4 dialled at the URL of its change: {:?}",
        restarted.net.peer_changes()
    );
    let status = restarted.m(1).node().status().lock().clone();
    assert_eq!(status.members.get(&4).map(String::as_str), Some(N4));
    assert_eq!(
        status.members.get(&1).map(String::as_str),
        Some("http://n1")
    );
    assert_eq!(status.members.len(), 4);
    // The application got its own bytes (the harness's App decodes them as its state).
    let app = restarted.m(1).app.lock().clone();
    assert_eq!(app.snapshots_restored, [snap_index]);
    assert_eq!(app.commands.len(), 12);
}

#[test]
fn a_follower_catching_up_by_snapshot_learns_the_members_urls() {
    let mut c = cluster_with_4(2, |c| c.net.isolate(3));
    let leader_first = c.m(1).node().raw().storage().first_index().unwrap();
    let n3_applied = c.m(3).app.lock().applied_index;
    assert!(
        leader_first > n3_applied + 1,
        "the leader compacted past n3"
    );
    c.net.heal();
    c.tick(5);
    assert_eq!(c.commands(3), c.commands(1), "n3 caught up");
    assert!(
        !c.m(3).app.lock().snapshots_restored.is_empty(),
        "by snapshot"
    );
    assert!(
        c.net.peer_changes().contains(&(3, 4, Some(N4.to_string()))),
        "n3 dials node 4 at the URL the snapshot carried: {:?}",
        c.net.peer_changes()
    );
    let status = c.m(3).node().status().lock().clone();
    assert_eq!(status.members.get(&4).map(String::as_str), Some(N4));
}

#[test]
fn a_restored_snapshot_that_is_not_a_node_payload_is_refused() {
    let mut storage = MemStorage::new_with_voters(&[1]);
    storage
        .apply_snapshot(Snapshot {
            metadata: SnapshotMetadata {
                index: 5,
                term: 1,
                conf_state: ConfState { voters: vec![1] },
            },
            data: Bytes::from_static(b"not a payload"),
        })
        .unwrap();
    let net = raftwood_node::transport::memory::MemoryNetwork::new();
    let (transport, _events) = net.join(1);
    let get_snapshot = Box::new(|| Ok((0, Bytes::new())));
    let err = RaftNode::new(
        config(1, 1),
        StartFrom::Restored(storage),
        common::RecordingLog {
            trace: Default::default(),
            fail_next_save: Default::default(),
            fail_next_save_snap: Default::default(),
        },
        transport,
        get_snapshot,
    )
    .err()
    .expect("refused");
    assert!(
        matches!(
            err,
            ConfigError::SnapshotPayload(PayloadError { index: 5, .. })
        ),
        "{err}"
    );
}

#[test]
fn a_leaders_snapshot_that_is_not_a_node_payload_stops_the_node() {
    let mut c = Cluster::new(2);
    c.elect(1);
    let term = c.m(1).node().raw().status().hard_state.term;
    let snapshot = Snapshot {
        metadata: SnapshotMetadata {
            index: 50,
            term,
            conf_state: ConfState { voters: vec![1, 2] },
        },
        data: Bytes::from_static(&[7, 0, 0]),
    };
    let m = Message {
        from: 1,
        to: 2,
        term,
        body: MessageBody::Snapshot {
            snapshot: Box::new(snapshot),
        },
    };
    let node = c.m(2).node();
    node.on_transport_event(TransportEvent::Message(m));
    let err = node.process_ready().unwrap_err();
    assert!(
        matches!(
            err,
            NodeError::SnapshotPayload(PayloadError { index: 50, .. })
        ),
        "{err}"
    );
    assert!(
        !c.m(2)
            .trace
            .lock()
            .iter()
            .any(|s| matches!(s, common::Step::SaveSnap { index: 50 })),
        "nothing of it was written"
    );
}
