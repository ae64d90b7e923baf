//! raftexample's README, command by command, against `raftwood`: a single node, then three
//! nodes with the fault-tolerance part (stop a node, write, read elsewhere, restart it, read
//! from it).
//!
//! Reads here are linearizable (the contract's default): a read that starts after a write was
//! acknowledged must see it, on any node, on the first answer that is not a 503. So the reads are
//! retried only through 503s and connection errors, never until the value shows up.

#![allow(clippy::unwrap_used)]

use raftwood_tests::Cluster;

/// `raftexample --id 1 --cluster http://127.0.0.1:12379 --port 12380`, then
/// `curl -L http://127.0.0.1:12380/my-key -XPUT -d foo` and `curl -L .../my-key` → `foo`.
#[test]
fn single_node_put_then_get() {
    let cluster = Cluster::start(1);
    let put = cluster.put(1, "my-key", b"foo");
    assert_eq!(put.status, 204, "PUT /my-key: {}", put.text());
    let get = cluster.get(1, "my-key");
    assert_eq!(get.status, 200, "GET /my-key: {}", get.text());
    assert_eq!(get.body, b"foo");
    // A key never written is a 404.
    assert_eq!(cluster.get(1, "other-key").status, 404);
}

/// The three-node part: a write through node 1 is read back through node 3 (a follower or the
/// leader: followers forward), and a value can be overwritten.
#[test]
fn three_nodes_write_on_one_read_on_another() {
    let mut cluster = Cluster::start(3);
    cluster.put_ok(1, "my-key", b"bar");
    for id in [3, 2, 1] {
        assert_eq!(
            cluster.get_ok(id, "my-key").as_deref(),
            Some(&b"bar"[..]),
            "node {id}"
        );
    }
    cluster.put_ok(2, "my-key", b"baz");
    assert_eq!(cluster.get_ok(3, "my-key").as_deref(), Some(&b"baz"[..]));
}

/// The fault-tolerance part: `goreman run stop raftexample2`, write `foo` through node 1, read
/// it through node 3, `goreman run start raftexample2`, read it through node 2.
#[test]
fn three_nodes_survive_a_stopped_node() {
    let mut cluster = Cluster::start(3);
    cluster.put_ok(1, "my-key", b"bar");
    cluster.stop(2);
    cluster.put_ok(1, "my-key", b"foo");
    assert_eq!(cluster.get_ok(3, "my-key").as_deref(), Some(&b"foo"[..]));
    cluster.restart(2);
    assert_eq!(cluster.get_ok(2, "my-key").as_deref(), Some(&b"foo"[..]));
    // The restarted node takes part again: a write through it is seen everywhere.
    cluster.put_ok(2, "after-restart", b"yes");
    assert_eq!(
        cluster.get_ok(1, "after-restart").as_deref(),
        Some(&b"yes"[..])
    );
}

/// The same with the leader stopped: the two others elect a new one and keep serving; the old
/// leader comes back as a follower and sees what was written without it.
#[test]
fn three_nodes_survive_a_stopped_leader() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader(raftwood_tests::cluster::LEADER_TIMEOUT);
    let others: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    cluster.stop(leader);
    cluster.put_ok(others[0], "my-key", b"without the old leader");
    assert_eq!(
        cluster.get_ok(others[1], "my-key").as_deref(),
        Some(&b"without the old leader"[..])
    );
    cluster.restart(leader);
    assert_eq!(
        cluster.get_ok(leader, "my-key").as_deref(),
        Some(&b"without the old leader"[..])
    );
}

/// `raftwood --help` answers (exit 0) and lists the contract's flags, raftexample's names.
#[test]
fn help_lists_the_contract_flags() {
    let output = std::process::Command::new(raftwood_tests::binary::raftwood())
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "raftwood --help: {}; stdout: {text}; stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    for flag in [
        "--id",
        "--cluster",
        "--port",
        "--join",
        "--data-dir",
        "--snapshot-count",
    ] {
        assert!(text.contains(flag), "--help does not list {flag}:\n{text}");
    }
}
