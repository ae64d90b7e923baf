//! The replicated service end to end in one process: `RaftKv` over real nodes, real WALs in
//! temporary directories and the TCP transport on 127.0.0.1, called through the `KvService`
//! trait. Ticks are 10 ms, so elections take a fraction of a second; every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftwood_kv::replica::{self, RaftKv, Replica, ReplicaConfig, ReplicaThreads};
use raftwood_kv::service::{Consistency, KvService, ServiceError};
use raftwood_node::{NodeStats, Outcome};
use tempfile::TempDir;

/// A port for a node of this test process, from 20000–32000: below Linux's ephemeral range
/// (32768–60999), where the OS picks the local port of every outgoing connection and of every
/// `bind(:0)`, so a port probed free here is not taken by some connection before the node binds
/// it (a port from `bind(:0)`, released and bound again, could be). Each port is handed out once
/// per process (a shared counter, started at a random place so that test processes start far
/// apart) and probed with a bind; `tests/src/ports.rs` does the same for the process tests.
fn free_port() -> u16 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        AtomicU32::new((hasher.finish() % u64::from(SPAN)) as u32)
    });
    for _ in 0..SPAN {
        let port = u16::try_from(FIRST + next.fetch_add(1, Ordering::Relaxed) % SPAN).unwrap();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000");
}

fn peer_urls(n: u64) -> BTreeMap<u64, String> {
    (1..=n)
        .map(|id| (id, format!("http://127.0.0.1:{}", free_port())))
        .collect()
}

fn config(id: u64, peers: &BTreeMap<u64, String>, dir: PathBuf) -> ReplicaConfig {
    let mut c = ReplicaConfig::new(id, peers.clone(), dir);
    c.tick_interval = Duration::from_millis(10);
    c.fsync = false;
    c
}

/// One running member.
struct Member {
    service: Arc<RaftKv>,
    threads: ReplicaThreads,
}

impl Member {
    fn start(config: &ReplicaConfig) -> Member {
        let Replica { service, threads } = replica::start(config).expect("start");
        Member { service, threads }
    }

    fn id(&self) -> u64 {
        self.service.handle().status().raft.id
    }

    fn leader(&self) -> Option<u64> {
        self.service.handle().status().raft.soft_state.leader
    }

    /// Waits until this member knows a leader.
    fn wait_leader(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.leader().is_none() {
            assert!(
                Instant::now() < deadline,
                "node {} found no leader",
                self.id()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(self) -> Outcome {
        self.service.handle().stop();
        let outcome = self.threads.join().expect("clean stop");
        drop(self.service);
        outcome
    }
}

struct Cluster {
    members: Vec<Option<Member>>,
    _dirs: Vec<TempDir>,
}

impl Cluster {
    fn start(n: u64) -> Cluster {
        let peers = peer_urls(n);
        let dirs: Vec<TempDir> = (0..n).map(|_| TempDir::new().unwrap()).collect();
        let members = (1..=n)
            .map(|id| {
                let c = config(id, &peers, dirs[id as usize - 1].path().to_path_buf());
                Some(Member::start(&c))
            })
            .collect();
        Cluster {
            members,
            _dirs: dirs,
        }
    }

    fn node(&self, id: u64) -> &Arc<RaftKv> {
        &self.members[id as usize - 1].as_ref().unwrap().service
    }

    /// Waits until every running member follows the same leader.
    fn wait_leader(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let leaders: Vec<Option<u64>> =
                self.members.iter().flatten().map(Member::leader).collect();
            if let Some(Some(l)) = leaders.first()
                && leaders.iter().all(|x| *x == Some(*l))
            {
                return *l;
            }
            assert!(Instant::now() < deadline, "no leader elected: {leaders:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self, id: u64) -> Outcome {
        self.members[id as usize - 1].take().unwrap().stop()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in self.members.iter_mut().filter_map(Option::take) {
            m.stop();
        }
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Bounds every call: a test fails rather than hangs.
async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 10 s"))
}

async fn put(s: &RaftKv, key: &str, value: &str) -> u64 {
    within(
        "put",
        s.put(key.into(), Bytes::from(value.to_owned()), None),
    )
    .await
    .expect("put")
}

async fn get(s: &RaftKv, key: &str, c: Consistency) -> Option<Bytes> {
    within("get", s.get(key.into(), c))
        .await
        .expect("get")
        .map(|v| v.value)
}

#[test]
fn a_single_node_puts_reads_and_compares_and_sets() {
    let cluster = Cluster::start(1);
    cluster.wait_leader();
    let s = cluster.node(1);
    block_on(async {
        let r1 = put(s, "k", "v1").await;
        assert_eq!(get(s, "k", Consistency::Linearizable).await.unwrap(), "v1");
        assert_eq!(get(s, "k", Consistency::Serializable).await.unwrap(), "v1");
        // A stale revision loses; the current one wins and moves the revision on.
        let stale = s.put("k".into(), "x".into(), Some(r1 + 100)).await;
        assert_eq!(
            stale,
            Err(ServiceError::PreconditionFailed { current: Some(r1) })
        );
        let r2 = within("cas", s.put("k".into(), "v2".into(), Some(r1)))
            .await
            .unwrap();
        assert!(r2 > r1);
        let missing = s.put("absent".into(), "x".into(), Some(1)).await;
        assert_eq!(
            missing,
            Err(ServiceError::PreconditionFailed { current: None })
        );
        let long = "k".repeat(64 << 10 | 1);
        let refused = s.put(long, "x".into(), None).await;
        assert!(
            matches!(refused, Err(ServiceError::BadRequest(_))),
            "{refused:?}"
        );
        within("delete", s.delete("k".into())).await.unwrap();
        assert_eq!(get(s, "k", Consistency::Linearizable).await, None);
    });
    assert_eq!(
        s.waiting_writes(),
        0,
        "every waiter was answered and removed"
    );
}

#[test]
fn requests_sent_before_the_first_election_wait_for_it() {
    // 50 ms ticks: the node elects itself 0.5 to 1 s after it starts.
    let peers = peer_urls(1);
    let dir = TempDir::new().unwrap();
    let mut c = config(1, &peers, dir.path().into());
    c.tick_interval = Duration::from_millis(50);
    let node = Member::start(&c);
    assert_eq!(node.leader(), None, "no leader yet");
    let service = Arc::clone(&node.service);
    block_on(async {
        // Raft drops the proposal and refuses the read round at once (no leader): both are
        // tried again once the node has elected itself, not answered 503.
        let (put, read) = tokio::join!(
            within(
                "put",
                service.put("k".into(), Bytes::from_static(b"v"), None)
            ),
            within(
                "get",
                service.get("other".into(), Consistency::Linearizable)
            ),
        );
        assert!(put.is_ok(), "{put:?}");
        assert_eq!(read, Ok(None));
    });
    drop(service);
    node.stop();
}

#[test]
fn a_request_with_no_leader_in_its_timeout_is_answered_no_leader() {
    // Two of three members never start: no election can be won.
    let peers = peer_urls(3);
    let dir = TempDir::new().unwrap();
    let mut c = config(1, &peers, dir.path().into());
    c.http.request_timeout = Duration::from_millis(300);
    let node = Member::start(&c);
    let service = Arc::clone(&node.service);
    block_on(async {
        let started = Instant::now();
        let put = within(
            "put",
            service.put("k".into(), Bytes::from_static(b"v"), None),
        )
        .await;
        assert_eq!(put, Err(ServiceError::NoLeader));
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "waited its timeout"
        );
        let read = within("get", service.get("k".into(), Consistency::Linearizable)).await;
        assert_eq!(read, Err(ServiceError::NoLeader));
    });
    drop(service);
    node.stop();
}

#[test]
fn a_write_on_one_node_is_read_linearizably_on_another() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_leader();
    let followers: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
    block_on(async {
        // Written through a follower (forwarded by raft), read on the other follower: the
        // ReadIndex round makes it wait until it has applied the write.
        put(cluster.node(followers[0]), "greeting", "hello").await;
        let read = get(
            cluster.node(followers[1]),
            "greeting",
            Consistency::Linearizable,
        )
        .await;
        assert_eq!(read.unwrap(), "hello");
        put(cluster.node(leader), "greeting", "again").await;
        let read = get(
            cluster.node(followers[0]),
            "greeting",
            Consistency::Linearizable,
        )
        .await;
        assert_eq!(read.unwrap(), "again");
    });
    let status = block_on(cluster.node(leader).status()).unwrap();
    assert_eq!(status.leader, Some(leader));
    assert_eq!(status.progress.len(), 2, "the leader reports each follower");
}

#[test]
fn a_leader_cut_off_from_its_quorum_never_answers_a_linearizable_read() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader();
    block_on(put(cluster.node(leader), "k", "v"));
    for id in (1..=3).filter(|&i| i != leader) {
        cluster.stop(id);
    }
    let s = Arc::clone(cluster.node(leader));
    let started = Instant::now();
    let read = block_on(async {
        tokio::time::timeout(
            Duration::from_secs(8),
            s.get("k".into(), Consistency::Linearizable),
        )
        .await
    });
    match read {
        Ok(Ok(value)) => panic!("a minority leader answered a linearizable read: {value:?}"),
        Ok(Err(e)) => assert!(
            matches!(e, ServiceError::Timeout | ServiceError::NoLeader),
            "{e:?}"
        ),
        Err(_) => panic!("the read hung for {:?}", started.elapsed()),
    }
    // Its local state is still there for whoever asks for it knowingly.
    let stale = block_on(s.get("k".into(), Consistency::Serializable)).unwrap();
    assert_eq!(stale.unwrap().value, "v");
}

#[test]
fn concurrent_reads_share_read_index_rounds() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_leader();
    let follower = (1..=3).find(|&i| i != leader).unwrap();
    const READS: usize = 300;
    for id in [leader, follower] {
        let s = Arc::clone(cluster.node(id));
        block_on(put(&s, "shared", "x"));
        let before = s.read_rounds();
        let results = block_on(async {
            let tasks: Vec<_> = (0..READS)
                .map(|_| {
                    let s = Arc::clone(&s);
                    tokio::spawn(async move {
                        within("read", s.get("shared".into(), Consistency::Linearizable)).await
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        assert!(results.iter().all(|r| r.as_ref().unwrap().is_some()));
        let rounds = s.read_rounds() - before;
        assert!(
            rounds < READS as u64,
            "node {id}: {rounds} ReadIndex rounds for {READS} reads"
        );
    }
}

#[test]
fn concurrent_puts_share_readys() {
    let cluster = Cluster::start(3);
    let leader = cluster.wait_leader();
    let s = Arc::clone(cluster.node(leader));
    const PUTS: usize = 400;
    block_on(async {
        let tasks: Vec<_> = (0..PUTS)
            .map(|i| {
                let s = Arc::clone(&s);
                tokio::spawn(async move { put(&s, &format!("key-{i}"), "value").await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let stats = s.handle().stats();
    let max = NodeStats::get(&stats.ready_entries_max);
    assert!(
        max > 1,
        "{PUTS} concurrent puts never shared a Ready (max {max})"
    );
    let metrics = block_on(s.metrics());
    assert_eq!(metrics.proposals_per_ready_max, max);
    assert!(metrics.proposals_per_ready.count() > 0);
    assert!(
        metrics.wal_sync_seconds.count() > 0,
        "the WAL's sync latencies reach /metrics"
    );
    assert_eq!(s.waiting_writes(), 0);
}

#[test]
fn members_are_added_and_removed_and_a_removed_node_stops() {
    let peers = peer_urls(2);
    let dirs = [TempDir::new().unwrap(), TempDir::new().unwrap()];
    let one: BTreeMap<u64, String> = peers.range(1..2).map(|(k, v)| (*k, v.clone())).collect();
    let first = Member::start(&config(1, &one, dirs[0].path().into()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while first.leader() != Some(1) {
        assert!(Instant::now() < deadline, "node 1 did not elect itself");
        std::thread::sleep(Duration::from_millis(20));
    }
    block_on(put(&first.service, "before", "1"));
    block_on(within(
        "add",
        first.service.add_member(2, peers[&2].clone()),
    ))
    .unwrap();
    let dup = block_on(first.service.add_member(2, peers[&2].clone()));
    assert!(matches!(dup, Err(ServiceError::BadRequest(_))), "{dup:?}");
    let mut joining = config(2, &peers, dirs[1].path().into());
    joining.join = true;
    let second = Member::start(&joining);
    assert_eq!(second.id(), 2);
    second.wait_leader();
    // The new member catches up and serves linearizable reads.
    let read = block_on(get(&second.service, "before", Consistency::Linearizable));
    assert_eq!(read.unwrap(), "1");
    let members = block_on(first.service.members()).unwrap();
    let listed: Vec<(u64, &str)> = members.iter().map(|m| (m.id, m.url.as_str())).collect();
    assert_eq!(listed, [(1, peers[&1].as_str()), (2, peers[&2].as_str())]);
    block_on(within("remove", first.service.remove_member(2))).unwrap();
    let missing = block_on(first.service.remove_member(2));
    assert!(
        matches!(missing, Err(ServiceError::NotFound(_))),
        "{missing:?}"
    );
    // The removed node learns it and its node stops by itself with `Removed`.
    let outcome = second.threads.join().expect("removed node ends cleanly");
    assert_eq!(outcome, Outcome::Removed);
    block_on(put(&first.service, "after", "2"));
    first.stop();
}

#[test]
fn a_restart_keeps_every_acknowledged_write() {
    let peers = peer_urls(1);
    let dir = TempDir::new().unwrap();
    let mut c = config(1, &peers, dir.path().into());
    c.snapshot_count = 25;
    c.catch_up_entries = 5;
    c.fsync = true;
    let member = Member::start(&c);
    let deadline = Instant::now() + Duration::from_secs(10);
    while member.leader() != Some(1) {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let revisions: Vec<u64> = block_on(async {
        let mut r = Vec::new();
        for i in 0..100 {
            r.push(put(&member.service, &format!("k{i}"), &format!("v{i}")).await);
        }
        r
    });
    assert!(NodeStats::get(&member.service.handle().stats().snapshots_taken) > 0);
    assert_eq!(member.stop(), Outcome::Stopped);

    let member = Member::start(&c);
    member.wait_leader();
    block_on(async {
        for (i, rev) in revisions.iter().enumerate() {
            let v = within(
                "get",
                member
                    .service
                    .get(format!("k{i}"), Consistency::Linearizable),
            )
            .await
            .unwrap()
            .expect("an acknowledged write survived the restart");
            assert_eq!(v.value, format!("v{i}"));
            assert_eq!(v.revision, *rev);
        }
    });
    member.stop();
}

#[test]
fn a_write_that_times_out_leaves_no_waiter() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_leader();
    for id in (1..=3).filter(|&i| i != leader) {
        cluster.stop(id);
    }
    let s = Arc::clone(cluster.node(leader));
    let answer = block_on(async {
        tokio::time::timeout(
            Duration::from_millis(300),
            s.put("k".into(), "v".into(), None),
        )
        .await
    });
    // Cut off, the write cannot commit: the client gives up (or is told there is no leader).
    assert!(!matches!(answer, Ok(Ok(_))), "{answer:?}");
    assert_eq!(
        s.waiting_writes(),
        0,
        "the dropped request's waiter is gone"
    );
}

/// One HTTP/1.1 request with `Connection: close`; the status code and the body.
fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
    (status, body.unwrap_or_default())
}

#[test]
fn the_server_serves_http_and_stops_gracefully() {
    let peers = peer_urls(1);
    let dir = TempDir::new().unwrap();
    let mut c = config(1, &peers, dir.path().into());
    c.tick_interval = Duration::from_millis(50);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    c.http.listen = addr;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        replica::run(c, async move {
            let _ = stop_rx.await;
        })
    });
    // The listener is bound before the node starts; with 50 ms ticks the node elects itself
    // 0.5 to 1 s later, so the first PUT finds no leader: it waits for one instead of a 503.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the server never listened");
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    assert_eq!(http(addr, "PUT", "/my-key", "foo"), (204, String::new()));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered within the request timeout"
    );
    assert_eq!(http(addr, "GET", "/my-key", ""), (200, "foo".to_owned()));
    let (status, body) = http(addr, "GET", "/v1/status", "");
    assert_eq!(status, 200);
    assert!(body.contains("\"role\":\"leader\""), "{body}");
    stop_tx.send(()).unwrap();
    let exit = server.join().unwrap().expect("a clean stop");
    assert_eq!(exit, raftwood_kv::server::ExitReason::Stopped);
    assert!(std::net::TcpStream::connect(addr).is_err(), "HTTP stopped");
}

#[test]
fn a_damaged_wal_is_refused_with_one_line_naming_the_file() {
    let peers = peer_urls(1);
    let dir = TempDir::new().unwrap();
    let c = config(1, &peers, dir.path().into());
    let member = Member::start(&c);
    member.wait_leader();
    block_on(async {
        for i in 0..20 {
            put(
                &member.service,
                &format!("k{i}"),
                "some value to fill the log",
            )
            .await;
        }
    });
    member.stop();
    let wal = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .unwrap();
    let mut bytes = std::fs::read(&wal).unwrap();
    // Flip bytes in the middle: valid batches follow, so this is not a torn tail.
    let middle = bytes.len() / 3;
    for b in &mut bytes[middle..middle + 8] {
        *b ^= 0xff;
    }
    std::fs::write(&wal, bytes).unwrap();
    let error = match replica::start(&c) {
        Ok(_) => panic!("a WAL damaged in the middle was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(!error.contains('\n'), "one line: {error}");
    let name = wal.file_name().unwrap().to_str().unwrap();
    assert!(error.contains(name), "names the file: {error}");
}

#[test]
fn a_removed_server_returns_removed() {
    let peers = peer_urls(2);
    let dirs = [TempDir::new().unwrap(), TempDir::new().unwrap()];
    let one: BTreeMap<u64, String> = peers.range(1..2).map(|(k, v)| (*k, v.clone())).collect();
    let first = Member::start(&config(1, &one, dirs[0].path().into()));
    first.wait_leader();
    block_on(within(
        "add",
        first.service.add_member(2, peers[&2].clone()),
    ))
    .unwrap();
    let mut joining = config(2, &peers, dirs[1].path().into());
    joining.join = true;
    joining.http.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let server = std::thread::spawn(move || replica::run(joining, std::future::pending()));
    block_on(put(&first.service, "k", "v"));
    block_on(within("remove", first.service.remove_member(2))).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(server.join().unwrap()));
    let exit = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the removed server exits by itself");
    assert_eq!(exit.unwrap(), raftwood_kv::server::ExitReason::Removed);
    first.stop();
}

/// A log that keeps nothing: the node under test never gets far enough to need one.
struct NoLog;

impl raftwood_node::DurableLog for NoLog {
    fn save_snap(
        &mut self,
        _: &raftwood_raft::Snapshot,
    ) -> Result<(), raftwood_node::DurableError> {
        Ok(())
    }
    fn save(&mut self, _: raftwood_node::Batch<'_>) -> Result<(), raftwood_node::DurableError> {
        Ok(())
    }
    fn record_local_snapshot(
        &mut self,
        _: &raftwood_raft::Snapshot,
    ) -> Result<(), raftwood_node::DurableError> {
        Ok(())
    }
    fn purge(&mut self, _: usize) -> Result<(), raftwood_node::DurableError> {
        Ok(())
    }
    fn close(&mut self) -> Result<(), raftwood_node::DurableError> {
        Ok(())
    }
}

/// A transport to nowhere (a single-node cluster sends nothing).
struct NoTransport;

impl raftwood_node::transport::Transport for NoTransport {
    fn send(
        &mut self,
        _: Vec<raftwood_raft::Message>,
    ) -> Vec<raftwood_node::transport::TransportEvent> {
        Vec::new()
    }
    fn add_peer(&mut self, _: u64, _: &str) {}
    fn remove_peer(&mut self, _: u64) {}
}

#[test]
fn a_snapshot_the_store_cannot_restore_ends_the_node_as_failed() {
    use raftwood_raft::{ConfState, HardState, MemStorage, Snapshot, SnapshotMetadata};

    let url = "http://127.0.0.1:1".to_string();
    let peers = BTreeMap::from([(1, url.clone())]);
    let mut storage = MemStorage::new();
    let payload = raftwood_node::payload::SnapshotPayload {
        members: peers.clone(),
        app: Bytes::from_static(b"not a kv snapshot"),
    };
    let snapshot = Snapshot {
        metadata: SnapshotMetadata {
            index: 5,
            term: 2,
            conf_state: ConfState { voters: vec![1] },
        },
        data: payload.encode(),
    };
    storage.apply_snapshot(snapshot).unwrap();
    storage.set_hard_state(HardState {
        term: 2,
        vote: None,
        commit: 5,
    });
    let (_events_tx, events) = crossbeam_channel::unbounded();
    let Replica { service, threads } = RaftKv::start(
        raftwood_node::NodeConfig::new(1, peers),
        raftwood_node::StartFrom::Restored(storage),
        NoLog,
        NoTransport,
        events,
        raftwood_node::ManualClock::new(),
        raftwood_kv::replica::ServiceOptions::default(),
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(threads.join()));
    let ended = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the node stops by itself after the failed restore");
    // A clean `Ok(Stopped)` would make the binary exit 0 as if asked to stop.
    let error = ended
        .expect_err("a failed restore is a failure")
        .to_string();
    assert!(
        error.contains("snap/0000000000000002-0000000000000005.snap"),
        "{error}"
    );
    assert_eq!(service.applied_index(), 0, "nothing applied on top");
}
