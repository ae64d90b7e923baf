//! A node restarted from what its storage replayed: the application restores the snapshot first,
//! then gets the committed entries after it, once each.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Cluster, config};
use raftwood_node::{Apply, StartFrom};
use raftwood_raft::Storage;

#[test]
fn a_restarted_node_hands_out_its_snapshot_then_the_entries_after_it() {
    let mut c = Cluster::with(1, |cfg| {
        cfg.snapshot_count = 5;
        cfg.snapshot_catch_up_entries = 100;
    });
    c.elect(1);
    for i in 0..8 {
        c.propose(1, i, &format!("e{i}"));
    }
    let before = c.commands(1);
    // What a disk storage would rebuild: the same snapshot, hard state and entries.
    let storage = c.m(1).node().raw().storage().clone();
    let snap_index = storage.snapshot().unwrap().metadata.index;
    let last = storage.last_index().unwrap();
    assert!(snap_index > 0 && snap_index < last);
    let node = c.m(1).node.take().unwrap();
    node.finish().unwrap();

    let mut restarted = Cluster {
        net: raftwood_node::transport::memory::MemoryNetwork::new(),
        members: Vec::new(),
    };
    let mut cfg = config(1, 1);
    cfg.snapshot_count = 5;
    restarted.add_member(cfg, StartFrom::Restored(storage));
    restarted.m(1).consuming = false;
    restarted.pump();
    let items: Vec<Apply> = restarted.m(1).receivers.apply.try_iter().collect();
    assert!(
        matches!(&items[0], Apply::Snapshot(s) if s.metadata.index == snap_index),
        "the snapshot first: {items:?}"
    );
    let mut app = common::App::default();
    for item in items {
        app.apply(item);
    }
    assert_eq!(
        app.applied_index, last,
        "every committed entry after the snapshot, once"
    );
    let commands: Vec<String> = app
        .commands
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert_eq!(commands, before);
    // And it goes on.
    restarted.m(1).consuming = true;
    restarted.m(1).app.lock().clone_from(&app);
    restarted.tick(30);
    restarted.propose(1, 100, "after restart");
    assert_eq!(restarted.commands(1).last().unwrap(), "after restart");
}
