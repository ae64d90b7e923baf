//! Real nodes over loopback TCP, with real WALs (fsync on): raftexample's `TestProposeOnCommit`,
//! proposing and committing on one and three nodes, adding a node, a peer killed and restarted,
//! and garbage thrown at running nodes' peer ports. The harness is `tcp_common`.
#![allow(clippy::unwrap_used)]

mod tcp_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::select;
use raftwood_node::transport::frame::{FrameKind, encode_frame};
use raftwood_node::transport::handshake::{Hello, REPLY_LEN, Status};
use raftwood_node::transport::{DEFAULT_CLUSTER_TOKEN, cluster_id};
use raftwood_node::{NodeError, Proposal};
use tcp_common::{TcpCluster, Tuning, WAIT};

#[test]
fn propose_on_commit() {
    let started = Instant::now();
    let c = TcpCluster::start(3, Tuning::default());
    let mut feeders = Vec::new();
    for node in c.nodes.values() {
        let handle = node.handle.clone();
        let committed = node.committed.clone();
        let errors = node.errors.clone();
        feeders.push(std::thread::spawn(move || {
            let mut next_id = 1;
            let mut propose = |data: Bytes| {
                handle.propose(Proposal { id: next_id, data }).unwrap();
                next_id += 1;
            };
            // One message of feedback per node.
            propose(Bytes::from_static(b"foo"));
            let deadline = Instant::now() + Duration::from_secs(60);
            for _ in 0..100 {
                loop {
                    select! {
                        recv(committed) -> c => {
                            propose(Bytes::from(c.unwrap()));
                            break;
                        },
                        recv(errors) -> e => match e.unwrap() {
                            // No leader yet, or it changed: raftexample's proposal would have
                            // waited; ours comes back, and is sent again.
                            NodeError::ProposalDropped { .. } => {
                                std::thread::sleep(Duration::from_millis(5));
                                propose(Bytes::from_static(b"foo"));
                            }
                            other => panic!("error: {other}"),
                        },
                        default(deadline.saturating_duration_since(Instant::now())) => {
                            panic!("raft stopped making progress")
                        }
                    }
                }
            }
        }));
    }
    for f in feeders {
        f.join().expect("every node fed back 100 commits");
    }
    eprintln!(
        "propose_on_commit over TCP with fsync: {:?}",
        started.elapsed()
    );
}

#[test]
fn propose_and_commit_on_one_node() {
    let c = TcpCluster::start(1, Tuning::default());
    c.commit(0..20);
    let s = c.state(1);
    let expected: Vec<String> = (0..20).map(|i| format!("key{i}=v{i}")).collect();
    assert_eq!(s.order, expected, "applied once each, in order");
}

#[test]
fn propose_and_commit_on_three_nodes() {
    let c = TcpCluster::start(3, Tuning::default());
    c.commit(0..30);
    let leader = c.leader();
    let s = c.assert_same_everywhere(leader);
    assert_eq!(s.map.len(), 30);
}

#[test]
fn an_added_node_catches_up_and_applies_everything() {
    let mut c = TcpCluster::start(3, Tuning::default());
    c.commit(0..10);
    c.add(4);
    c.commit(10..20);
    let leader = c.leader();
    let s = c.assert_same_everywhere(leader);
    assert_eq!(c.state(4).order, s.order, "node 4 applied everything");
    let members = c.node(leader).handle.status().members;
    assert_eq!(members.get(&4), Some(&c.peers[&4]), "{members:?}");
    assert_eq!(
        c.node(4).handle.status().raft.conf_state.voters,
        [1, 2, 3, 4]
    );
}

#[test]
fn a_peer_killed_and_restarted_on_its_port_catches_up() {
    let mut c = TcpCluster::start(3, Tuning::default());
    c.commit(0..10);
    let leader = c.leader();
    let victim = if leader == 3 { 2 } else { 3 };
    c.converge_on(leader);
    let before = c.stop(victim);
    assert_eq!(before.map.len(), 10);
    c.commit(10..30);
    c.restart(victim);
    c.commit(30..40);
    let s = c.assert_same_everywhere(c.leader());
    assert_eq!(c.state(victim).order, s.order);
    assert_eq!(s.map.len(), 40);
}

/// Opens a connection to `addr` and says hello as `from` to `to` in the cluster `cluster`.
fn hello(addr: SocketAddr, cluster: u64, from: u64, to: u64) -> (TcpStream, Option<Status>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        &Hello {
            cluster_id: cluster,
            from,
            to,
        }
        .encode(),
    )
    .unwrap();
    let mut reply = [0; REPLY_LEN];
    let status = s
        .read_exact(&mut reply)
        .ok()
        .and_then(|()| Status::decode(&reply).ok());
    (s, status)
}

/// Garbage, frames over the size limit, bad frames after a good hello, a foreign cluster.
fn attack(addr: SocketAddr, me: u64, other: u64) {
    let cluster = cluster_id(DEFAULT_CLUSTER_TOKEN);
    let mut s = TcpStream::connect(addr).unwrap();
    let _ = s.write_all(&[0x47; 300]);
    let (_s, status) = hello(addr, cluster_id("another-cluster"), other, me);
    assert_eq!(status, Some(Status::ForeignCluster));
    let mut oversize = Vec::from(u32::MAX.to_le_bytes());
    oversize.extend([0; 4]);
    let mut bad_payload = encode_frame(FrameKind::Message, &[0xff; 64]);
    let mut bad_crc = encode_frame(FrameKind::Message, &[0x01; 64]);
    bad_crc[5] ^= 0xff;
    for bytes in [
        oversize,
        std::mem::take(&mut bad_payload),
        bad_crc,
        vec![0x55; 4096],
    ] {
        // Posing as a real member: the node must drop this connection, not the member.
        let (mut s, status) = hello(addr, cluster, other, me);
        if status == Some(Status::Accepted) {
            let _ = s.write_all(&bytes);
        }
    }
}

#[test]
fn garbage_oversize_frames_and_a_foreign_cluster_do_not_stop_the_cluster() {
    let c = TcpCluster::start(3, Tuning::default());
    c.commit(0..10);
    let deadline = Instant::now() + WAIT;
    for round in 0..3u64 {
        for (&id, addr) in &c.addrs {
            let other = if id == 1 { 2 } else { 1 };
            attack(*addr, id, other);
        }
        c.commit(10 + round * 10..20 + round * 10);
        assert!(Instant::now() < deadline);
    }
    let s = c.assert_same_everywhere(c.leader());
    assert_eq!(s.map.len(), 40);
    for n in c.nodes.values() {
        assert!(
            n.errors
                .try_iter()
                .all(|e| !matches!(e, NodeError::Fatal(_)))
        );
    }
}
