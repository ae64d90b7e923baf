//! The loop over the real disk storage: a node writes through `DiskStorage`, stops, and restarts
//! from what `DiskStorage::open` rebuilt, its application restored from the snapshot and the
//! entries after it, nothing acknowledged lost.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::App;
use parking_lot::Mutex;
use raftwood_node::storage::{DiskStorage, StorageOptions};
use raftwood_node::transport::memory::MemoryNetwork;
use raftwood_node::{Node, Outcome, Proposal, RealClock, StartFrom};

/// Starts node 1 of a one-node cluster on the data directory `dir`; its application state is
/// `app`, which the caller fills from the apply channel.
fn start(dir: &Path, app: &Arc<Mutex<App>>) -> (Node, bool) {
    let mut cfg = common::config(1, 1);
    let options = StorageOptions {
        bootstrap_voters: cfg.bootstrap_voters(),
        ..StorageOptions::default()
    };
    let (storage, restored) = DiskStorage::open(dir, options).unwrap();
    let fresh = restored.fresh;
    let net = MemoryNetwork::new();
    let (transport, events) = net.join(1);
    cfg.snapshot_count = 5;
    cfg.snapshot_catch_up_entries = 2;
    let snap_app = Arc::clone(app);
    let get_snapshot = move || {
        let a = snap_app.lock();
        Ok((a.applied_index, a.state()))
    };
    let clock = RealClock {
        interval: Duration::from_millis(2),
    };
    let start_from = StartFrom::from(restored);
    let node = Node::start(
        cfg,
        start_from,
        storage,
        transport,
        events,
        clock,
        get_snapshot,
    )
    .unwrap();
    (node, fresh)
}

/// Applies what the node hands out until `done` says so (or 10 s pass).
fn apply_until(node: &Node, app: &Arc<Mutex<App>>, done: impl Fn(&App) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&app.lock()) {
        let item = node
            .apply
            .recv_deadline(deadline)
            .expect("the node hands out what it committed");
        app.lock().apply(item);
    }
}

fn commands(app: &App) -> Vec<String> {
    app.commands
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect()
}

#[test]
fn a_node_restarts_from_its_snapshot_and_wal() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(Mutex::new(App::default()));
    let (node, fresh) = start(dir.path(), &app);
    assert!(fresh);
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.handle.status().raft.soft_state.leader != Some(1) {
        assert!(Instant::now() < deadline, "no leader");
        std::thread::sleep(Duration::from_millis(2));
    }
    for i in 0..12u64 {
        let data = Bytes::from(format!("c{i}"));
        node.handle.propose(Proposal { id: i, data }).unwrap();
    }
    apply_until(&node, &app, |a| a.commands.len() == 12);
    let before = commands(&app.lock());
    node.handle.stop();
    assert_eq!(node.thread.join().unwrap().unwrap(), Outcome::Stopped);

    let app2 = Arc::new(Mutex::new(App::default()));
    let (node, fresh) = start(dir.path(), &app2);
    assert!(!fresh);
    apply_until(&node, &app2, |a| a.commands.len() == 12);
    let a = app2.lock().clone();
    assert_eq!(commands(&a), before, "nothing acknowledged was lost");
    assert_eq!(
        a.snapshots_restored.len(),
        1,
        "restored from a snapshot first"
    );
    // At the index the application reported when asked (it may lag what the node handed out).
    assert!(a.snapshots_restored[0] > 0);
    // It goes on: it leads again and commits.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let data = Bytes::from_static(b"after");
        node.handle.propose(Proposal { id: 99, data }).unwrap();
        let got = node.apply.recv_timeout(Duration::from_millis(200));
        if let Ok(item) = got {
            app2.lock().apply(item);
        }
        if app2
            .lock()
            .commands
            .last()
            .is_some_and(|c| c.as_ref() == b"after")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no progress after restart");
    }
    node.handle.stop();
    node.thread.join().unwrap().unwrap();
}
