//! The harness of the `tcp_*` tests: real nodes in one process, each with its own data directory
//! (`DiskStorage`, fsync on), a `TcpTransport` on 127.0.0.1 and a `RealClock` ticking every
//! 10 ms (an election after 10 ticks), composed exactly as a binary composes them; and a tiny
//! application per node that applies `key=value` commands to a map.
//!
//! Ports: every node's listener is bound on port 0 first and handed to
//! `TcpTransport::start_with_listener`, so the peer URLs name ports that are already ours. A node
//! restarted on its old port binds it again after its old transport shut down; another process
//! could take the port in between (very unlikely on a test machine; the test would then fail
//! to bind, not hang).
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use raftwood_node::storage::{DiskStorage, Restored, StorageOptions};
use raftwood_node::transport::{EVENTS_CAPACITY, TcpConfig, TcpTransport};
use raftwood_node::{
    Apply, ConfChangeRequest, Node, NodeConfig, NodeError, NodeHandle, Outcome, Proposal,
    RealClock, StartFrom,
};
use raftwood_raft::{ConfChange, Index, NodeId, Role};

/// The raft clock of every node.
pub const TICK: Duration = Duration::from_millis(10);
/// The longest any single wait of a test may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// The application: a map, every command in the order applied, the index applied.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub applied: Index,
    pub map: BTreeMap<String, String>,
    pub order: Vec<String>,
    /// The indexes of the snapshots it was restored from.
    pub snapshots_restored: Vec<Index>,
    /// The indexes of the conf changes it applied.
    pub conf_changes: Vec<Index>,
}

impl State {
    /// raftexample's kvstore `getSnapshot`: the state, encoded (read under the same lock the
    /// applier holds, so it is the state at `applied` exactly).
    fn snapshot(&self) -> (Index, Bytes) {
        let bytes = raftwood_node::codec::encode(&(&self.map, &self.order));
        (self.applied, bytes.into())
    }

    /// Applies one item; returns the commands it applied.
    fn apply(&mut self, item: Apply) -> Vec<String> {
        let mut applied = Vec::new();
        match item {
            Apply::Entries(ents) => {
                for e in ents {
                    assert_eq!(e.index, self.applied + 1, "entries arrive in order");
                    self.applied = e.index;
                    if e.data.is_empty() {
                        continue;
                    }
                    let command = String::from_utf8(e.data.to_vec()).unwrap();
                    if let Some((k, v)) = command.split_once('=') {
                        self.map.insert(k.to_string(), v.to_string());
                    }
                    self.order.push(command.clone());
                    applied.push(command);
                }
            }
            Apply::ConfChange { index, .. } => {
                assert_eq!(index, self.applied + 1, "conf changes arrive in order");
                self.applied = index;
                self.conf_changes.push(index);
            }
            Apply::Snapshot(s) => {
                assert!(s.metadata.index > self.applied);
                (self.map, self.order) = raftwood_node::codec::decode(&s.data, "state").unwrap();
                self.applied = s.metadata.index;
                self.snapshots_restored.push(s.metadata.index);
            }
            Apply::ReadStates(_) | Apply::DroppedReads(_) => {}
        }
        applied
    }
}

/// One running node.
pub struct TestNode {
    pub handle: NodeHandle,
    pub state: Arc<Mutex<State>>,
    pub errors: Receiver<NodeError>,
    /// Every command this node applies, as it applies it.
    pub committed: Receiver<String>,
    /// What `DiskStorage::open` reported when the node started.
    pub restored_snapshot: Option<Index>,
    pub skipped_snapshots: usize,
    pub torn_tail: bool,
    thread: JoinHandle<Result<Outcome, NodeError>>,
    applier: JoinHandle<()>,
}

/// How every node of a cluster is set up.
pub struct Tuning {
    pub snapshot_count: u64,
    pub snapshot_catch_up_entries: u64,
    pub snapshot_chunk_size: usize,
    pub wal_segment_size: u64,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            snapshot_count: 1_000_000,
            snapshot_catch_up_entries: 1_000,
            snapshot_chunk_size: 1 << 20,
            wal_segment_size: 64 << 20,
        }
    }
}

/// Nodes `1..=n` and the ones added later, their directories and ports.
pub struct TcpCluster {
    pub root: tempfile::TempDir,
    /// Every member's peer URL, by id.
    pub peers: BTreeMap<NodeId, String>,
    pub addrs: BTreeMap<NodeId, SocketAddr>,
    pub nodes: BTreeMap<NodeId, TestNode>,
    /// The members the cluster bootstrapped with.
    pub initial: Vec<NodeId>,
    pub tuning: Tuning,
}

fn bind_any() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

/// Waits until `done` holds, polling every 5 ms; panics with `what` after [`WAIT`].
pub fn wait_until(what: &str, done: impl FnMut() -> bool) {
    wait_or_describe(what, done, String::new);
}

/// As [`wait_until`], adding `describe()` to the panic message.
fn wait_or_describe(what: &str, mut done: impl FnMut() -> bool, describe: impl Fn() -> String) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        if Instant::now() >= deadline {
            panic!("timed out waiting for {what}; {}", describe());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl TcpCluster {
    /// Starts nodes `1..=n`, bootstrapping together.
    pub fn start(n: u64, tuning: Tuning) -> TcpCluster {
        let listeners: BTreeMap<NodeId, TcpListener> = (1..=n).map(|id| (id, bind_any())).collect();
        let addrs: BTreeMap<NodeId, SocketAddr> = listeners
            .iter()
            .map(|(&id, l)| (id, l.local_addr().unwrap()))
            .collect();
        let peers = addrs
            .iter()
            .map(|(&id, a)| (id, format!("http://{a}")))
            .collect();
        let mut c = TcpCluster {
            root: tempfile::tempdir().unwrap(),
            peers,
            addrs,
            nodes: BTreeMap::new(),
            initial: (1..=n).collect(),
            tuning,
        };
        for (id, listener) in listeners {
            c.launch(id, listener, false);
        }
        c
    }

    pub fn dir(&self, id: NodeId) -> PathBuf {
        self.root.path().join(format!("n{id}"))
    }

    /// The storage options of a node of the initial cluster (tests open directories with them
    /// to inspect or damage them; a launched node derives its voters from its config).
    pub fn storage_options(&self) -> StorageOptions {
        StorageOptions {
            bootstrap_voters: self.initial.clone(),
            wal_segment_size: self.tuning.wal_segment_size,
            ..StorageOptions::default()
        }
    }

    /// Opens node `id`'s directory and starts it on `listener`.
    fn launch(&mut self, id: NodeId, listener: TcpListener, join: bool) {
        let peers = self.peers.clone();
        self.launch_with(id, listener, join, peers);
    }

    /// Opens node `id`'s directory and starts it on `listener`, with `peers` as its
    /// `--cluster` list.
    fn launch_with(
        &mut self,
        id: NodeId,
        listener: TcpListener,
        join: bool,
        peers: BTreeMap<NodeId, String>,
    ) {
        let mut config = NodeConfig::new(id, peers.clone());
        config.join = join;
        let options = StorageOptions {
            bootstrap_voters: config.bootstrap_voters(),
            ..self.storage_options()
        };
        let (storage, restored) = DiskStorage::open(&self.dir(id), options).unwrap();
        let Restored {
            snapshot,
            skipped_snapshots,
            torn_tail,
            ..
        } = &restored;
        let restored_snapshot = snapshot.as_ref().map(|s| s.metadata.index);
        let skipped_snapshots = skipped_snapshots.len();
        let torn_tail = torn_tail.is_some();

        config.tick_interval = TICK;
        config.raft.election_tick = 10;
        config.raft.heartbeat_tick = 1;
        config.snapshot_count = self.tuning.snapshot_count;
        config.snapshot_catch_up_entries = self.tuning.snapshot_catch_up_entries;

        let mut tcp = TcpConfig::new(id, listener.local_addr().unwrap(), peers);
        tcp.backoff_min = Duration::from_millis(10);
        tcp.backoff_max = Duration::from_millis(100);
        tcp.io_timeout = Duration::from_secs(2);
        tcp.snapshot_chunk_size = self.tuning.snapshot_chunk_size;
        let (events_tx, events) = crossbeam_channel::bounded(EVENTS_CAPACITY);
        let transport = TcpTransport::start_with_listener(tcp, listener, events_tx).unwrap();

        let state = Arc::new(Mutex::new(State::default()));
        let snap_state = Arc::clone(&state);
        let get_snapshot = move || Ok(snap_state.lock().snapshot());
        let clock = RealClock { interval: TICK };
        let Node {
            handle,
            apply,
            errors,
            thread,
        } = Node::start(
            config,
            StartFrom::from(restored),
            storage,
            transport,
            events,
            clock,
            get_snapshot,
        )
        .unwrap();
        let (committed_tx, committed) = crossbeam_channel::unbounded();
        let applier = spawn_applier(apply, Arc::clone(&state), committed_tx);
        self.nodes.insert(
            id,
            TestNode {
                handle,
                state,
                errors,
                committed,
                restored_snapshot,
                skipped_snapshots,
                torn_tail,
                thread,
                applier,
            },
        );
    }

    pub fn node(&self, id: NodeId) -> &TestNode {
        &self.nodes[&id]
    }

    pub fn state(&self, id: NodeId) -> State {
        self.nodes[&id].state.lock().clone()
    }

    /// Stops node `id` (the loop finishes its Ready, syncs and closes the WAL; dropping the
    /// loop's transport shuts it down and frees its port) and returns its final state.
    pub fn stop(&mut self, id: NodeId) -> State {
        let node = self.nodes.remove(&id).unwrap();
        node.handle.stop();
        let outcome = node.thread.join().unwrap();
        assert_eq!(outcome.unwrap(), Outcome::Stopped);
        node.applier.join().unwrap();
        node.state.lock().clone()
    }

    /// Starts node `id` again from its directory, on its old port.
    pub fn restart(&mut self, id: NodeId) {
        let listener = TcpListener::bind(self.addrs[&id]).unwrap();
        self.launch(id, listener, false);
    }

    /// Starts node `id` again from its directory, on its old port, with only `peers` as its
    /// `--cluster` list (what an operator who never updated it would pass).
    pub fn restart_with_peers(&mut self, id: NodeId, peers: BTreeMap<NodeId, String>) {
        let listener = TcpListener::bind(self.addrs[&id]).unwrap();
        self.launch_with(id, listener, false, peers);
    }

    /// Adds node `id` through the leader (a conf change carrying its URL) and starts it with
    /// `join`.
    pub fn add(&mut self, id: NodeId) {
        let listener = bind_any();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        self.addrs.insert(id, addr);
        self.peers.insert(id, url.clone());
        let change = ConfChange::add_voter(id).with_context(url.clone());
        let deadline = Instant::now() + WAIT;
        loop {
            let leader = self.leader();
            let request = ConfChangeRequest {
                id,
                change: change.clone(),
            };
            self.node(leader)
                .handle
                .propose_conf_change(request)
                .unwrap();
            let applied = || self.node(leader).handle.status().raft.conf_state.voters;
            let until = Instant::now() + Duration::from_secs(2);
            while !applied().contains(&id) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if applied().contains(&id) {
                break;
            }
            assert!(Instant::now() < deadline, "node {id} was never added");
        }
        self.launch(id, listener, true);
    }

    /// Each running node's view, for a failure message.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (id, n) in &self.nodes {
            let st = n.handle.status();
            let r = &st.raft;
            let finished = if n.thread.is_finished() {
                " (thread ended)"
            } else {
                ""
            };
            out.push_str(&format!(
                "[n{id}{finished}: {:?} term {} leader {:?} commit {} last {} applied {} app {}] ",
                r.soft_state.role,
                r.hard_state.term,
                r.soft_state.leader,
                r.hard_state.commit,
                r.last_index,
                st.applied_index,
                n.state.lock().applied,
            ));
            for e in n.errors.try_iter() {
                out.push_str(&format!("(n{id} error: {e}) "));
            }
        }
        out
    }

    /// The node that leads, once the running nodes agree on one.
    pub fn leader(&self) -> NodeId {
        let mut leader = None;
        let find = || {
            self.nodes.iter().find_map(|(&id, n)| {
                let s = n.handle.status().raft;
                (s.soft_state.role == Role::Leader).then_some(id)
            })
        };
        wait_or_describe(
            "a leader",
            || {
                leader = find();
                leader.is_some()
            },
            || self.describe(),
        );
        leader.unwrap()
    }

    /// Proposes `key{i}=v{i}` for every `i` in `keys` and waits until every one is applied on
    /// the leader (committed: acknowledged by a quorum). Proposals lost to a leader change are
    /// proposed again.
    pub fn commit(&self, keys: std::ops::Range<u64>) {
        let deadline = Instant::now() + WAIT;
        loop {
            let leader = self.leader();
            let node = self.node(leader);
            let missing: Vec<u64> = {
                let s = node.state.lock();
                keys.clone()
                    .filter(|i| !s.map.contains_key(&format!("key{i}")))
                    .collect()
            };
            if missing.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} keys never committed",
                missing.len()
            );
            for i in missing {
                let data = Bytes::from(format!("key{i}=v{i}"));
                node.handle.propose(Proposal { id: i, data }).unwrap();
            }
            let until = Instant::now() + Duration::from_secs(2);
            while Instant::now() < until {
                let s = node.state.lock();
                if keys.clone().all(|i| s.map.contains_key(&format!("key{i}"))) {
                    break;
                }
                drop(s);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// As [`TcpCluster::commit`], `step` keys at a time, so that snapshots are taken along the
    /// way rather than once at the end.
    pub fn commit_in_steps(&self, keys: std::ops::Range<u64>, step: u64) {
        let mut from = keys.start;
        while from < keys.end {
            let to = (from + step).min(keys.end);
            self.commit(from..to);
            from = to;
        }
    }

    /// Waits until no running node owes a snapshot: each has one within `snapshot_count` of
    /// what it applied. (A node asks its application when `snapshot_count` entries were handed
    /// out; an application still behind answers with an older index, and is asked again at the
    /// next tick.)
    pub fn settle_snapshots(&self) {
        let count = self.tuning.snapshot_count;
        wait_until("the snapshots to catch up", || {
            self.nodes.values().all(|n| {
                let s = n.handle.status();
                s.applied_index - s.snapshot_index < count
            })
        });
    }

    /// Waits until every running node has applied what node `id` has.
    pub fn converge_on(&self, id: NodeId) -> State {
        let target = self.state(id);
        wait_or_describe(
            "every node to apply the same entries",
            || {
                self.nodes
                    .values()
                    .all(|n| n.state.lock().applied >= target.applied)
            },
            || format!("node {id} applied {}; {}", target.applied, self.describe()),
        );
        target
    }

    /// Waits until every running node has applied the same commands, in the same order, as
    /// node `id`, and returns that state.
    pub fn assert_same_everywhere(&self, id: NodeId) -> State {
        let target = self.converge_on(id);
        for (&other, n) in &self.nodes {
            let s = n.state.lock();
            assert_eq!(
                s.order[..target.order.len()],
                target.order[..],
                "node {other} applied the same commands in the same order as node {id}"
            );
        }
        target
    }

    /// Stops every node, in order.
    pub fn stop_all(&mut self) -> BTreeMap<NodeId, State> {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        ids.into_iter().map(|id| (id, self.stop(id))).collect()
    }
}

impl Drop for TcpCluster {
    fn drop(&mut self) {
        // Stop and join every node before the directories go away.
        for node in self.nodes.values() {
            node.handle.stop();
        }
        for (_, node) in std::mem::take(&mut self.nodes) {
            let _ = node.thread.join();
            let _ = node.applier.join();
        }
    }
}

/// The application's thread: applies every item, in order, and publishes each command.
fn spawn_applier(
    apply: Receiver<Apply>,
    state: Arc<Mutex<State>>,
    committed: Sender<String>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for item in apply {
            let applied = state.lock().apply(item);
            for c in applied {
                let _ = committed.send(c);
            }
        }
    })
}

/// The WAL segments of a data directory, oldest first.
pub fn wal_segments(dir: &Path) -> Vec<PathBuf> {
    files(&dir.join(raftwood_node::storage::WAL_DIR), "wal")
}

/// The snapshot files of a data directory, oldest first.
pub fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    files(&dir.join(raftwood_node::storage::SNAP_DIR), "snap")
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
}

/// Flips one byte of a file.
pub fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}
