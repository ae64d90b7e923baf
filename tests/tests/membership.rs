//! Membership through raftexample's routes, and catching up after compaction.
//!
//! raftexample's README: `curl -L http://127.0.0.1:12380/4 -XPOST -d http://127.0.0.1:42379`,
//! then `raftexample --id 4 --cluster ...,http://127.0.0.1:42379 --port 42380 --join`; and
//! `curl -L http://127.0.0.1:12380/3 -XDELETE`, after which node 3 shuts itself down.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use raftwood_tests::cluster::LEADER_TIMEOUT;
use raftwood_tests::{Cluster, Options};

/// A node added with `POST /4` and started with `--join` serves linearizable reads of what was
/// written before and after it joined, and is listed by `GET /v1/members` as a voter.
#[test]
fn added_member_joins_and_serves_reads() {
    let mut cluster = Cluster::start(3);
    cluster.put_ok(1, "before", b"written by three");
    let new = cluster.add_node();
    assert_eq!(new, 4);
    cluster.member_add(1, new);
    cluster.start_node(new);
    assert_eq!(
        cluster.get_ok(new, "before").as_deref(),
        Some(&b"written by three"[..])
    );
    cluster.put_ok(new, "after", b"written through the new node");
    assert_eq!(
        cluster.get_ok(2, "after").as_deref(),
        Some(&b"written through the new node"[..])
    );
    let members = cluster.members(new);
    let fourth = members
        .as_array()
        .unwrap_or_else(|| panic!("/v1/members is not a list: {members}"))
        .iter()
        .find(|m| m["id"] == 4)
        .unwrap_or_else(|| panic!("member 4 missing from {members}"));
    assert_eq!(fourth["url"], cluster.peer_url(4).as_str(), "{members}");
    assert_eq!(fourth["role"], "voter", "{members}");
}

/// `DELETE /3`: node 3 learns of its removal and exits by itself with status 0; the two others
/// keep serving, and the member list no longer has it.
#[test]
fn removed_member_exits_with_status_0() {
    let mut cluster = Cluster::start(3);
    cluster.put_ok(1, "my-key", b"foo");
    cluster.member_remove(1, 3);
    let status = cluster.wait_exit(3, Duration::from_secs(20));
    assert!(
        status.success(),
        "a removed node exits with status 0, got {status}"
    );
    cluster.put_ok(1, "my-key", b"bar");
    assert_eq!(cluster.get_ok(2, "my-key").as_deref(), Some(&b"bar"[..]));
    let members = cluster.members(1);
    let ids: Vec<u64> = members
        .as_array()
        .unwrap_or_else(|| panic!("/v1/members is not a list: {members}"))
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{members}");
    assert!(!ids.contains(&3), "{members}");
}

/// raftexample's whole reconfiguration transcript: add node 4, remove node 3, write through
/// node 1, read through node 4.
#[test]
fn add_four_remove_three_then_read_on_four() {
    let mut cluster = Cluster::start(3);
    let new = cluster.add_node();
    cluster.member_add(1, new);
    cluster.start_node(new);
    cluster.wait_leader(LEADER_TIMEOUT);
    cluster.member_remove(1, 3);
    let status = cluster.wait_exit(3, Duration::from_secs(20));
    assert!(status.success(), "removed node 3 exited with {status}");
    cluster.put_ok(1, "my-key", b"bar");
    assert_eq!(cluster.get_ok(new, "my-key").as_deref(), Some(&b"bar"[..]));
}

const KEYS: usize = 120;

fn compacting() -> Options {
    Options {
        snapshot_count: 10,
        // Keep only a few entries behind each snapshot, so a lagging node cannot be sent the
        // entries it misses and must be sent the snapshot.
        extra_args: vec!["--snapshot-catch-up-entries".into(), "5".into()],
        ..Options::default()
    }
}

fn write_keys(cluster: &mut Cluster, via: u64) {
    for i in 0..KEYS {
        cluster.put_ok(via, &format!("key-{i:04}"), format!("value-{i}").as_bytes());
    }
}

fn index(status: &serde_json::Value, field: &str) -> u64 {
    status[field]
        .as_u64()
        .unwrap_or_else(|| panic!("status field {field} missing: {status}"))
}

/// Node 3 is stopped, the others write and compact their logs past where node 3 stopped;
/// restarted, node 3 catches up (it can only be through a snapshot) and holds every key.
#[test]
fn restarted_node_catches_up_after_compaction() {
    let mut cluster = Cluster::start_with(3, compacting());
    cluster.put_ok(1, "early", b"before the stop");
    cluster.wait_value(3, "early", b"before the stop");
    let stopped_at = index(&cluster.status(3).unwrap(), "last_index");
    cluster.stop(3);
    write_keys(&mut cluster, 1);
    let leader = cluster.wait_leader(LEADER_TIMEOUT);
    let snapshot_index = index(&cluster.status(leader).unwrap(), "snapshot_index");
    assert!(
        snapshot_index > stopped_at + 20,
        "the leader compacted to {snapshot_index}, not past node 3's last index {stopped_at}"
    );
    cluster.restart(3);
    cluster.wait_value(
        3,
        &format!("key-{:04}", KEYS - 1),
        format!("value-{}", KEYS - 1).as_bytes(),
    );
    for i in 0..KEYS {
        assert_eq!(
            cluster.get_serializable(3, &format!("key-{i:04}")),
            Some(format!("value-{i}").into_bytes()),
            "key-{i:04} on the restarted node"
        );
    }
    assert_eq!(
        cluster.get_ok(3, "early").as_deref(),
        Some(&b"before the stop"[..])
    );
}

/// A brand-new member joins a cluster whose logs were compacted long ago: it gets the snapshot,
/// then the entries after it, and holds every key.
#[test]
fn new_member_catches_up_after_compaction() {
    let mut cluster = Cluster::start_with(3, compacting());
    write_keys(&mut cluster, 2);
    let leader = cluster.wait_leader(LEADER_TIMEOUT);
    let snapshot_index = index(&cluster.status(leader).unwrap(), "snapshot_index");
    assert!(
        snapshot_index >= 100,
        "no compaction: snapshot index {snapshot_index}"
    );
    let new = cluster.add_node();
    cluster.member_add(1, new);
    cluster.start_node(new);
    cluster.wait_value(
        new,
        &format!("key-{:04}", KEYS - 1),
        format!("value-{}", KEYS - 1).as_bytes(),
    );
    for i in 0..KEYS {
        assert_eq!(
            cluster.get_serializable(new, &format!("key-{i:04}")),
            Some(format!("value-{i}").into_bytes()),
            "key-{i:04} on the new member"
        );
    }
    cluster.put_ok(new, "after-join", b"yes");
    assert_eq!(
        cluster.get_ok(1, "after-join").as_deref(),
        Some(&b"yes"[..])
    );
}
