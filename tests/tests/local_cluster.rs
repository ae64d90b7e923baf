//! `raftwood local-cluster --nodes 3`: starts, serves, stops cleanly on SIGTERM, and leaves no
//! orphans when it is killed with SIGKILL.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use raftwood_tests::{LocalCluster, http};

const T: Duration = Duration::from_secs(10);

fn put_then_get_across_nodes(cluster: &LocalCluster) {
    let nodes = cluster.http();
    let (first, last) = (nodes[0], nodes[nodes.len() - 1]);
    // Retried through 503s: the cluster may still be settling its leadership.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = http::request(first, "PUT", "/my-key", &[], b"foo", T).unwrap();
        if r.status == 204 {
            break;
        }
        assert!(
            r.status == 503 && std::time::Instant::now() < deadline,
            "PUT /my-key: {} {}",
            r.status,
            r.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = http::request(last, "GET", "/my-key", &[], b"", T).unwrap();
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"foo"[..]),
        "{}",
        r.text()
    );
}

#[test]
fn local_cluster_starts_serves_and_stops_on_sigterm() {
    let mut cluster = LocalCluster::start(3);
    assert_eq!(cluster.http().len(), 3, "{:?}", cluster.http());
    assert_eq!(
        cluster.children().len(),
        3,
        "child processes: {:?}",
        cluster.children()
    );
    put_then_get_across_nodes(&cluster);
    let status = cluster.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(
        status.success(),
        "local-cluster exited with {status} after SIGTERM"
    );
    let alive = cluster.wait_children_gone(Duration::from_secs(5));
    assert!(
        alive.is_empty(),
        "nodes still running after local-cluster exited: {alive:?}"
    );
}

#[test]
fn local_cluster_children_exit_when_it_is_killed() {
    let mut cluster = LocalCluster::start(3);
    put_then_get_across_nodes(&cluster);
    cluster.signal_and_wait("KILL", Duration::from_secs(10));
    let alive = cluster.wait_children_gone(Duration::from_secs(15));
    assert!(
        alive.is_empty(),
        "orphans left after SIGKILL of local-cluster: {alive:?}"
    );
}
