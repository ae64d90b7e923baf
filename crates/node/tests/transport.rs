//! The TCP transport on loopback (127.0.0.1, OS-chosen ports), every wait bounded.

// A test file: a failed unwrap is a failed test, in helpers as in #[test] functions.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use raftwood_node::transport::DEFAULT_CLUSTER_TOKEN;
use raftwood_node::transport::frame::{FrameKind, encode_frame, encode_message};
use raftwood_node::transport::handshake::{HELLO_LEN, Hello, REPLY_LEN, Status};
use raftwood_node::transport::{
    EVENTS_CAPACITY, TcpConfig, TcpTransport, Transport, TransportEvent, cluster_id,
};
use raftwood_raft::{Message, MessageBody, NodeId, Snapshot};

const WAIT: Duration = Duration::from_secs(10);

fn config(id: NodeId, listen: SocketAddr, peers: &[(NodeId, SocketAddr)]) -> TcpConfig {
    let peers = peers
        .iter()
        .map(|(id, addr)| (*id, format!("http://{addr}")))
        .collect::<BTreeMap<_, _>>();
    let mut c = TcpConfig::new(id, listen, peers);
    c.backoff_min = Duration::from_millis(10);
    c.backoff_max = Duration::from_millis(200);
    c.io_timeout = Duration::from_secs(2);
    c
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

struct Node {
    transport: TcpTransport,
    events: Receiver<TransportEvent>,
    /// The test plays the loop: what `send` returns joins the other events.
    tx: Sender<TransportEvent>,
}

fn start(c: TcpConfig) -> Node {
    let (tx, events) = crossbeam_channel::bounded(EVENTS_CAPACITY);
    Node {
        transport: TcpTransport::start(c, tx.clone()).unwrap(),
        events,
        tx,
    }
}

impl Node {
    fn send(&mut self, messages: Vec<Message>) {
        for event in self.transport.send(messages) {
            self.tx.send(event).unwrap();
        }
    }
    fn addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }
    fn add(&mut self, id: NodeId, other: &Node) {
        self.transport
            .add_peer(id, &format!("http://{}", other.addr()));
    }
}

/// `n` transports, each knowing all others (ids 1..=n).
fn cluster(n: u64) -> Vec<Node> {
    let mut nodes: Vec<Node> = (1..=n)
        .map(|id| start(config(id, any_port(), &[])))
        .collect();
    let addrs: Vec<SocketAddr> = nodes.iter().map(Node::addr).collect();
    for (i, node) in nodes.iter_mut().enumerate() {
        for (j, addr) in addrs.iter().enumerate() {
            if i != j {
                node.transport
                    .add_peer(j as u64 + 1, &format!("http://{addr}"));
            }
        }
    }
    nodes
}

fn heartbeat(from: NodeId, to: NodeId, commit: u64) -> Message {
    Message {
        from,
        to,
        term: 1,
        body: MessageBody::Heartbeat {
            commit,
            context: None,
        },
    }
}

/// The next event matching `pick`, skipping others; panics after [`WAIT`].
fn wait_for<T>(
    events: &Receiver<TransportEvent>,
    mut pick: impl FnMut(TransportEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = events.recv_timeout(left).expect("event in time");
        if let Some(found) = pick(event) {
            return found;
        }
    }
}

/// Sends `message` from `from` every 20 ms until `to` receives one like it (connections come
/// up asynchronously; until then messages are dropped, as raft expects).
fn deliver(from: &mut Node, to: &Node, message: Message) {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "{message} never arrived");
        from.send(vec![message.clone()]);
        if let Ok(TransportEvent::Message(m)) = to.events.recv_timeout(Duration::from_millis(20))
            && m == message
        {
            // Earlier copies may still be in flight: let them land and forget them.
            std::thread::sleep(Duration::from_millis(100));
            to.events.try_iter().for_each(drop);
            return;
        }
    }
}

#[test]
fn three_transports_exchange_messages_both_ways() {
    let mut nodes = cluster(3);
    for from in 1..=3u64 {
        for to in (1..=3u64).filter(|to| *to != from) {
            let (a, b) = pair(&mut nodes, from, to);
            deliver(a, b, heartbeat(from, to, from * 10 + to));
        }
    }
    // Once connected, a burst arrives whole and in order.
    let burst: Vec<Message> = (0..500).map(|i| heartbeat(1, 2, i)).collect();
    nodes[0].send(burst.clone());
    for expected in burst {
        let got = wait_for(&nodes[1].events, |e| match e {
            TransportEvent::Message(m) => Some(m),
            _ => None,
        });
        assert_eq!(got, expected);
    }
    for node in nodes {
        node.transport.shutdown();
    }
}

fn pair(nodes: &mut [Node], from: NodeId, to: NodeId) -> (&mut Node, &Node) {
    let (f, t) = ((from - 1) as usize, (to - 1) as usize);
    if f < t {
        let (left, right) = nodes.split_at_mut(t);
        (&mut left[f], &right[0])
    } else {
        let (left, right) = nodes.split_at_mut(f);
        (&mut right[0], &left[t])
    }
}

fn snapshot_message(from: NodeId, to: NodeId, data: Vec<u8>) -> Message {
    let mut snapshot = Snapshot::default();
    snapshot.metadata.index = 42;
    snapshot.metadata.term = 3;
    snapshot.data = Bytes::from(data);
    Message {
        from,
        to,
        term: 3,
        body: MessageBody::Snapshot {
            snapshot: Box::new(snapshot),
        },
    }
}

#[test]
fn a_snapshot_of_a_few_mib_arrives_whole_in_chunks() {
    let mut a_config = config(1, any_port(), &[]);
    a_config.snapshot_chunk_size = 64 << 10;
    // Far below the snapshot: it can only arrive in chunks.
    a_config.max_frame_size = 256 << 10;
    let mut a = start(a_config);
    let mut b_config = config(2, any_port(), &[]);
    b_config.max_frame_size = 256 << 10;
    b_config.snapshot_chunk_size = 64 << 10;
    let mut b = start(b_config);
    a.add(2, &b);
    b.add(1, &a);
    deliver(&mut a, &b, heartbeat(1, 2, 1));

    let data: Vec<u8> = (0..(3 << 20) + 12345u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let snapshot = snapshot_message(1, 2, data);
    a.send(vec![snapshot.clone(), heartbeat(1, 2, 99)]);
    let got = wait_for(&b.events, |e| match e {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    });
    assert_eq!(got, snapshot);
    let after = wait_for(&b.events, |e| match e {
        TransportEvent::Message(m) => Some(m),
        _ => None,
    });
    assert_eq!(
        after,
        heartbeat(1, 2, 99),
        "later messages keep their order"
    );
    let status = wait_for(&a.events, |e| match e {
        TransportEvent::SnapshotStatus { to, ok } => Some((to, ok)),
        _ => None,
    });
    assert_eq!(status, (2, true));
    a.transport.shutdown();
    b.transport.shutdown();
}

#[test]
fn a_snapshot_above_the_receivers_limit_is_refused_and_reported_failed() {
    let mut a_config = config(1, any_port(), &[]);
    a_config.snapshot_chunk_size = 16 << 10;
    let mut a = start(a_config);
    let mut b_config = config(2, any_port(), &[]);
    b_config.max_snapshot_size = 100 << 10;
    let mut b = start(b_config);
    a.add(2, &b);
    b.add(1, &a);
    deliver(&mut a, &b, heartbeat(1, 2, 1));
    // Enough to overflow the socket buffers, so the sender sees the closed connection.
    a.send(vec![snapshot_message(1, 2, vec![5; 32 << 20])]);
    let ok = wait_for(&a.events, |e| match e {
        TransportEvent::SnapshotStatus { to: 2, ok } => Some(ok),
        _ => None,
    });
    assert!(!ok, "the receiver closed the connection at the header");
    // The sender reconnects and the pair keeps working.
    deliver(&mut a, &b, heartbeat(1, 2, 2));
}

#[test]
fn a_peer_restarted_on_the_same_port_gets_messages_again() {
    let mut a = start(config(1, any_port(), &[]));
    let b = start(config(2, any_port(), &[(1, a.addr())]));
    let b_addr = b.addr();
    a.add(2, &b);
    deliver(&mut a, &b, heartbeat(1, 2, 1));

    b.transport.shutdown();
    // The connection's loss is noticed and reported without waiting for a send.
    wait_for(&a.events, |e| {
        (e == TransportEvent::Unreachable(2)).then_some(())
    });
    a.send(vec![heartbeat(1, 2, 2)]);

    let b = start(config(2, b_addr, &[(1, a.addr())]));
    deliver(&mut a, &b, heartbeat(1, 2, 3));
}

#[test]
fn messages_to_a_down_peer_report_unreachable_once_per_burst() {
    let closed = std::net::TcpListener::bind(any_port()).unwrap();
    let down = closed.local_addr().unwrap();
    drop(closed);
    let mut a = start(config(1, any_port(), &[(2, down)]));
    a.send((0..10).map(|i| heartbeat(1, 2, i)).collect());
    a.send(vec![snapshot_message(1, 2, vec![1; 10])]);
    let mut events = Vec::new();
    while let Ok(e) = a.events.recv_timeout(Duration::from_millis(300)) {
        events.push(e);
    }
    let unreachable = events
        .iter()
        .filter(|e| **e == TransportEvent::Unreachable(2))
        .count();
    assert_eq!(unreachable, 1, "{events:?}");
    assert!(events.contains(&TransportEvent::SnapshotStatus { to: 2, ok: false }));
    // A message to an id the transport never heard of is reported too.
    a.send(vec![heartbeat(1, 7, 0)]);
    wait_for(&a.events, |e| {
        (e == TransportEvent::Unreachable(7)).then_some(())
    });
}

/// Fails without the events returned by `send` (when `send` put them in the events channel
/// with `try_send`, a full channel lost them, and raft's progress of the follower stayed in its
/// snapshot state for the rest of the term).
#[test]
fn a_snapshot_dropped_inside_send_is_returned_even_with_the_events_channel_full() {
    let closed = std::net::TcpListener::bind(any_port()).unwrap();
    let down = closed.local_addr().unwrap();
    drop(closed);
    let (tx, events) = crossbeam_channel::bounded(1);
    tx.send(TransportEvent::Unreachable(9)).unwrap();
    let mut a = TcpTransport::start(config(1, any_port(), &[(2, down)]), tx).unwrap();
    let raised = a.send(vec![snapshot_message(1, 2, vec![1; 10])]);
    assert!(
        raised.contains(&TransportEvent::SnapshotStatus { to: 2, ok: false }),
        "{raised:?}"
    );
    assert!(
        raised.contains(&TransportEvent::Unreachable(2)),
        "{raised:?}"
    );
    assert_eq!(events.try_recv(), Ok(TransportEvent::Unreachable(9)));
    a.shutdown();
}

/// Fails when `add_peer` replaces a configured peer's URL: the messages then go to the dead
/// address and never arrive.
#[test]
fn add_peer_keeps_the_url_of_a_configured_peer() {
    let mut b = start(config(2, any_port(), &[]));
    let mut a = start(config(1, any_port(), &[(2, b.addr())]));
    b.add(1, &a);
    let closed = std::net::TcpListener::bind(any_port()).unwrap();
    let elsewhere = closed.local_addr().unwrap();
    drop(closed);
    a.transport.add_peer(2, &format!("http://{elsewhere}"));
    deliver(&mut a, &b, heartbeat(1, 2, 1));
    // Removed, then added again: dialed at the configured URL again.
    a.transport.remove_peer(2);
    a.transport.add_peer(2, &format!("http://{elsewhere}"));
    deliver(&mut a, &b, heartbeat(1, 2, 2));
}

/// A fake peer that accepts the handshake and then never reads.
fn stalled_peer() -> (std::net::TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

#[test]
fn a_full_queue_drops_and_reports_unreachable_without_blocking() {
    let (listener, addr) = stalled_peer();
    let mut c = config(1, any_port(), &[(2, addr)]);
    c.queue_len = 2;
    let mut a = start(c);
    let (mut conn, _) = listener.accept().unwrap();
    let mut hello = [0; HELLO_LEN];
    conn.read_exact(&mut hello).unwrap();
    conn.write_all(&Status::Accepted.encode()).unwrap();
    // Entries of 256 KiB: a few dozen fill the socket buffers, then the writer blocks and the
    // two-slot queue fills.
    let big = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::Append {
            prev_index: 0,
            prev_term: 0,
            entries: vec![raftwood_raft::Entry {
                data: Bytes::from(vec![0u8; 256 << 10]),
                ..Default::default()
            }],
            commit: 0,
        },
    };
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "queue never filled");
        let started = Instant::now();
        a.send(vec![big.clone()]);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "send blocked"
        );
        if let Ok(TransportEvent::Unreachable(2)) = a.events.try_recv() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Shutting down is bounded even with the writer blocked on the stalled connection.
    let started = Instant::now();
    a.transport.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    drop(conn);
}

/// Opens a raw connection to `addr` and sends a hello.
fn raw_hello(addr: SocketAddr, cluster: u64, from: NodeId, to: NodeId) -> (TcpStream, Status) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
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
    s.read_exact(&mut reply).unwrap();
    (s, Status::decode(&reply).unwrap())
}

/// Waits until the transport closes `s` (read sees the end, or a reset); panics if it is still
/// open after [`WAIT`].
fn closed_by_peer(mut s: TcpStream) {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the transport left a bad connection open")
            }
            Err(_) => return,
        }
    }
}

/// Node 2 with a 1 KiB frame limit and a 300 ms I/O timeout, and node 1 as its known peer.
fn strict_pair() -> (Node, Node) {
    let mut a = start(config(1, any_port(), &[]));
    let mut b_config = config(2, any_port(), &[(1, a.addr())]);
    b_config.max_frame_size = 1024;
    b_config.snapshot_chunk_size = 512;
    b_config.io_timeout = Duration::from_millis(300);
    let b = start(b_config);
    a.add(2, &b);
    (a, b)
}

#[test]
fn garbage_oversize_truncated_and_stalled_frames_close_the_connection() {
    let (mut a, b) = strict_pair();
    let cluster = cluster_id(DEFAULT_CLUSTER_TOKEN);
    // Garbage instead of a hello.
    let mut s = TcpStream::connect(b.addr()).unwrap();
    s.write_all(&[0x47; 200]).unwrap();
    closed_by_peer(s);
    // A hello cut short, then silence: closed after io_timeout.
    let mut s = TcpStream::connect(b.addr()).unwrap();
    s.write_all(
        &Hello {
            cluster_id: cluster,
            from: 1,
            to: 2,
        }
        .encode()[..10],
    )
    .unwrap();
    closed_by_peer(s);
    // Accepted, then: an oversize length, garbage frames, a truncated frame, a stall mid-frame,
    // a message claiming another sender.
    let mut oversize = Vec::from(u32::MAX.to_le_bytes());
    oversize.extend([0; 4]);
    let mut just_over = Vec::from(1025u32.to_le_bytes());
    just_over.extend([0; 4]);
    let mut bad_crc = encode_message(&heartbeat(1, 2, 5));
    bad_crc[4] ^= 1;
    let truncated = encode_message(&heartbeat(1, 2, 5));
    let bad_payload = encode_frame(FrameKind::Message, &[0xff; 40]);
    let stray_chunk = encode_frame(FrameKind::SnapshotChunk, b"chunk");
    let forged = encode_message(&heartbeat(3, 2, 5));
    for (bytes, abrupt) in [
        (oversize, false),
        (just_over, false),
        (bad_crc, false),
        (bad_payload, false),
        (stray_chunk, false),
        (forged, false),
        (vec![0; 8], false),
        (truncated[..truncated.len() - 3].to_vec(), true),
        // The same, but the peer stays: it is a stalled (slow) peer, cut off after io_timeout.
        (truncated[..truncated.len() - 3].to_vec(), false),
    ] {
        let (mut s, status) = raw_hello(b.addr(), cluster, 1, 2);
        assert_eq!(status, Status::Accepted);
        s.write_all(&bytes).unwrap();
        if abrupt {
            drop(s);
        } else {
            closed_by_peer(s);
        }
    }
    // Nothing bad reached the loop, and the real peer is still served.
    assert!(
        b.events
            .try_iter()
            .all(|e| !matches!(e, TransportEvent::Message(_)))
    );
    deliver(&mut a, &b, heartbeat(1, 2, 6));
}

#[test]
fn foreign_cluster_unknown_sender_and_wrong_recipient_are_refused() {
    let (mut a, b) = strict_pair();
    let cluster = cluster_id(DEFAULT_CLUSTER_TOKEN);
    for (cluster, from, to, expected) in [
        (cluster_id("other-cluster"), 1, 2, Status::ForeignCluster),
        (cluster, 9, 2, Status::UnknownSender),
        (cluster, 1, 5, Status::WrongRecipient),
    ] {
        let (mut s, status) = raw_hello(b.addr(), cluster, from, to);
        assert_eq!(status, expected);
        // Frames sent anyway are never read.
        let _ = s.write_all(&encode_message(&heartbeat(from, 2, 5)));
        closed_by_peer(s);
    }
    assert!(
        b.events
            .try_iter()
            .all(|e| !matches!(e, TransportEvent::Message(_)))
    );
    deliver(&mut a, &b, heartbeat(1, 2, 6));
}

#[test]
fn a_removed_peer_is_told_and_reports_removed() {
    let mut nodes = cluster(2);
    let (a, b) = pair(&mut nodes, 1, 2);
    deliver(a, b, heartbeat(1, 2, 1));
    let (b, a) = pair(&mut nodes, 2, 1);
    deliver(b, a, heartbeat(2, 1, 1));

    nodes[0].transport.remove_peer(2);
    // Node 2's connection to node 1 is closed; on redial node 1 says "removed".
    let by = wait_for(&nodes[1].events, |e| match e {
        TransportEvent::Removed { by } => Some(by),
        _ => None,
    });
    assert_eq!(by, 1);
    let (s, status) = raw_hello(nodes[0].addr(), cluster_id(DEFAULT_CLUSTER_TOKEN), 2, 1);
    assert_eq!(status, Status::Removed);
    closed_by_peer(s);
    // Node 1 no longer sends to node 2.
    nodes[0].send(vec![heartbeat(1, 2, 2)]);
    wait_for(&nodes[0].events, |e| {
        (e == TransportEvent::Unreachable(2)).then_some(())
    });
}

#[test]
fn a_foreign_token_cluster_never_connects() {
    let a = start(config(1, any_port(), &[]));
    let mut b_config = config(2, any_port(), &[(1, a.addr())]);
    b_config.cluster_token = "another".into();
    let mut b = start(b_config);
    for i in 0..20 {
        b.send(vec![heartbeat(2, 1, i)]);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        a.events
            .try_iter()
            .all(|e| !matches!(e, TransportEvent::Message(_)))
    );
}

#[test]
fn bad_configuration_is_refused_at_start() {
    let (tx, _rx) = crossbeam_channel::unbounded();
    let mut c = config(1, any_port(), &[]);
    c.peers.insert(2, "127.0.0.1:1".into());
    assert!(TcpTransport::start(c, tx.clone()).is_err());
    let mut c = config(1, any_port(), &[]);
    c.snapshot_chunk_size = c.max_frame_size;
    assert!(TcpTransport::start(c, tx).is_err());
}

#[test]
fn shutdown_is_prompt_during_a_stalled_handshake() {
    let (listener, addr) = stalled_peer();
    let a = start(config(1, any_port(), &[(2, addr)]));
    // The peer takes the connection and the hello, and never answers.
    let (mut conn, _) = listener.accept().unwrap();
    let mut hello = [0; HELLO_LEN];
    conn.read_exact(&mut hello).unwrap();
    let started = Instant::now();
    a.transport.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}
