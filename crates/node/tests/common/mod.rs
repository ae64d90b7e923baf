//! The deterministic harness of the loop tests: a recording in-memory durable log, a cluster of
//! [`RaftNode`]s on a [`MemoryNetwork`] driven step by step (no threads, no real time), and a
//! tiny application (a list of the commands applied) on each node.
#![allow(clippy::unwrap_used, dead_code)]

pub mod threaded;

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use raftwood_node::transport::memory::{MemoryNetwork, MemoryTransport};
use raftwood_node::transport::{Transport, TransportEvent};
use raftwood_node::{
    AppReceivers, Apply, Batch, DurableError, DurableLog, NodeConfig, NodeError, RaftNode,
    StartFrom,
};
use raftwood_raft::{Entry, HardState, Index, Message, NodeId, Snapshot, SnapshotMetadata};

/// A WAL snapshot marker, as recorded.
#[derive(Clone, Debug)]
pub struct Marker {
    pub metadata: SnapshotMetadata,
    /// A leader's snapshot (log-resetting), not one of the node's own.
    pub reset: bool,
}

/// One thing a node did with its disk or its network, in order.
#[derive(Clone, Debug)]
pub enum Step {
    /// A snapshot file was made durable.
    SaveSnap {
        index: Index,
    },
    /// A WAL batch was written (and synced if `synced`).
    Save {
        marker: Option<Marker>,
        hard_state: Option<HardState>,
        entries: Vec<Entry>,
        synced: bool,
    },
    Purge {
        keep: usize,
    },
    Close,
    /// Messages handed to the transport.
    Send(Vec<Message>),
}

/// A node's trace, shared between its log and its transport.
pub type Trace = Arc<Mutex<Vec<Step>>>;

/// A [`DurableLog`] in memory that records every call; it can be told to fail.
pub struct RecordingLog {
    pub trace: Trace,
    pub fail_next_save: Arc<Mutex<bool>>,
    pub fail_next_save_snap: Arc<Mutex<bool>>,
}

impl DurableLog for RecordingLog {
    fn save_snap(&mut self, snapshot: &Snapshot) -> Result<(), DurableError> {
        if std::mem::take(&mut *self.fail_next_save_snap.lock()) {
            return Err("injected snapshot failure".into());
        }
        self.trace.lock().push(Step::SaveSnap {
            index: snapshot.metadata.index,
        });
        Ok(())
    }

    fn save(&mut self, batch: Batch<'_>) -> Result<(), DurableError> {
        if std::mem::take(&mut *self.fail_next_save.lock()) {
            return Err("injected WAL failure".into());
        }
        self.trace.lock().push(Step::Save {
            marker: batch.snapshot.map(|s| Marker {
                metadata: s.metadata.clone(),
                reset: true,
            }),
            hard_state: batch.hard_state,
            entries: batch.entries.to_vec(),
            synced: batch.must_sync,
        });
        Ok(())
    }

    /// Recorded as what it is: the file, then a plain marker in a synced batch.
    fn record_local_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), DurableError> {
        self.save_snap(snapshot)?;
        self.trace.lock().push(Step::Save {
            marker: Some(Marker {
                metadata: snapshot.metadata.clone(),
                reset: false,
            }),
            hard_state: None,
            entries: Vec::new(),
            synced: true,
        });
        Ok(())
    }

    fn purge(&mut self, keep: usize) -> Result<(), DurableError> {
        assert!(keep >= 2);
        self.trace.lock().push(Step::Purge { keep });
        Ok(())
    }

    fn close(&mut self) -> Result<(), DurableError> {
        self.trace.lock().push(Step::Close);
        Ok(())
    }
}

/// The memory transport, recording what the node sends into its trace.
pub struct RecordingTransport {
    pub inner: MemoryTransport,
    pub trace: Trace,
}

impl Transport for RecordingTransport {
    fn send(&mut self, messages: Vec<Message>) -> Vec<TransportEvent> {
        self.trace.lock().push(Step::Send(messages.clone()));
        self.inner.send(messages)
    }
    fn add_peer(&mut self, id: NodeId, url: &str) {
        self.inner.add_peer(id, url);
    }
    fn remove_peer(&mut self, id: NodeId) {
        self.inner.remove_peer(id);
    }
}

/// The application of the tests: the commands applied, in order, and the index applied.
#[derive(Default, Debug, Clone)]
pub struct App {
    pub applied_index: Index,
    pub commands: Vec<Bytes>,
    pub snapshots_restored: Vec<Index>,
    pub reads: Vec<(Index, Bytes, usize)>,
    pub conf_changes: Vec<Index>,
}

impl App {
    /// raftexample's kvstore snapshot: the state, encoded.
    pub fn state(&self) -> Bytes {
        raftwood_node::codec::encode(&self.commands).into()
    }

    pub fn apply(&mut self, item: Apply) {
        match item {
            Apply::Entries(ents) => {
                for e in ents {
                    assert_eq!(e.index, self.applied_index + 1, "entries arrive in order");
                    self.applied_index = e.index;
                    if !e.data.is_empty() {
                        self.commands.push(e.data);
                    }
                }
            }
            Apply::ConfChange { index, .. } => {
                assert_eq!(index, self.applied_index + 1);
                self.applied_index = index;
                self.conf_changes.push(index);
            }
            Apply::Snapshot(s) => {
                assert!(s.metadata.index > self.applied_index);
                self.commands = raftwood_node::codec::decode(&s.data, "state").unwrap();
                self.applied_index = s.metadata.index;
                self.snapshots_restored.push(s.metadata.index);
            }
            Apply::ReadStates(rs) => {
                for r in rs {
                    assert!(
                        r.index <= self.applied_index,
                        "a read waits for its entries"
                    );
                    self.reads.push((r.index, r.context, self.commands.len()));
                }
            }
            Apply::DroppedReads(_) => {}
        }
    }
}

pub type TestNode = RaftNode<RecordingLog, RecordingTransport>;

/// One node of the cluster and the application's side of it.
pub struct Member {
    pub node: Option<TestNode>,
    pub events: crossbeam_channel::Receiver<TransportEvent>,
    pub app: Arc<Mutex<App>>,
    pub receivers: AppReceivers,
    pub trace: Trace,
    pub fail_next_save: Arc<Mutex<bool>>,
    pub fail_next_save_snap: Arc<Mutex<bool>>,
    /// Whether the test's application drains its apply channel on each pump.
    pub consuming: bool,
    pub fatal: Option<NodeError>,
    /// The node as it was when `process_ready` failed, for inspection.
    pub failed: Option<TestNode>,
}

impl Member {
    pub fn node(&mut self) -> &mut TestNode {
        self.node.as_mut().expect("node is running")
    }

    pub fn drain(&mut self) {
        while let Ok(item) = self.receivers.apply.try_recv() {
            self.app.lock().apply(item);
        }
    }

    pub fn errors(&self) -> Vec<NodeError> {
        self.receivers.errors.try_iter().collect()
    }
}

/// A cluster on a memory network, driven step by step.
pub struct Cluster {
    pub net: MemoryNetwork,
    pub members: Vec<Member>,
}

pub fn config(id: NodeId, n: u64) -> NodeConfig {
    let peers = (1..=n).map(|i| (i, format!("http://n{i}"))).collect();
    let mut c = NodeConfig::new(id, peers);
    c.raft.election_tick = 10;
    c.raft.heartbeat_tick = 1;
    c
}

impl Cluster {
    pub fn new(n: u64) -> Cluster {
        Cluster::with(n, |_| {})
    }

    pub fn with(n: u64, tune: impl Fn(&mut NodeConfig)) -> Cluster {
        let net = MemoryNetwork::new();
        let mut c = Cluster {
            net,
            members: Vec::new(),
        };
        for id in 1..=n {
            let mut cfg = config(id, n);
            tune(&mut cfg);
            c.add_member(cfg, StartFrom::Fresh);
        }
        c
    }

    /// Three nodes with small snapshots (every 5 entries, a catch-up margin of 2) and n1 leading;
    /// n3 is cut off while `entries` commands (`e0`, `e1`, …) commit, so that n1 compacts past
    /// what n3 has and n3 can only catch up by n1's snapshot. The network is left cut: the
    /// caller heals it (after setting up whatever it wants to see happen then).
    pub fn with_n3_left_behind(entries: u64) -> Cluster {
        let mut c = Cluster::with(3, |cfg| {
            cfg.snapshot_count = 5;
            cfg.snapshot_catch_up_entries = 2;
        });
        c.elect(1);
        c.net.isolate(3);
        for i in 0..entries {
            c.propose(1, i, &format!("e{i}"));
        }
        c
    }

    /// Builds a node with `config` and connects it.
    pub fn add_member(&mut self, config: NodeConfig, start: StartFrom) {
        let id = config.id;
        let (inner, events) = self.net.join(id);
        let trace: Trace = Arc::default();
        let fail_next_save = Arc::new(Mutex::new(false));
        let fail_next_save_snap = Arc::new(Mutex::new(false));
        let log = RecordingLog {
            trace: Arc::clone(&trace),
            fail_next_save: Arc::clone(&fail_next_save),
            fail_next_save_snap: Arc::clone(&fail_next_save_snap),
        };
        let transport = RecordingTransport {
            inner,
            trace: Arc::clone(&trace),
        };
        let app = Arc::new(Mutex::new(App::default()));
        let snap_app = Arc::clone(&app);
        let get_snapshot = Box::new(move || {
            let a = snap_app.lock();
            Ok((a.applied_index, a.state()))
        });
        let (node, receivers) = RaftNode::new(config, start, log, transport, get_snapshot).unwrap();
        assert_eq!(self.members.len() as u64 + 1, id, "ids are 1..=n in order");
        self.members.push(Member {
            node: Some(node),
            events,
            app,
            receivers,
            trace,
            fail_next_save,
            fail_next_save_snap,
            consuming: true,
            fatal: None,
            failed: None,
        });
    }

    pub fn m(&mut self, id: NodeId) -> &mut Member {
        &mut self.members[(id - 1) as usize]
    }

    /// Delivers every event and handles every Ready until nothing moves.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for m in &mut self.members {
                let Some(node) = m.node.as_mut() else {
                    // A node that failed still receives (without handling Readys), so that a
                    // test can see what raft made of it.
                    while let Ok(ev) = m.events.try_recv() {
                        if let Some(failed) = m.failed.as_mut() {
                            failed.on_transport_event(ev);
                        }
                    }
                    continue;
                };
                while let Ok(ev) = m.events.try_recv() {
                    node.on_transport_event(ev);
                    moved = true;
                }
                if let Err(e) = node.process_ready() {
                    m.fatal = Some(e);
                    m.failed = m.node.take();
                    continue;
                }
                if m.consuming {
                    m.drain();
                }
                if m.node.as_ref().is_some_and(|n| n.stopping().is_some()) {
                    let node = m.node.take().unwrap();
                    node.finish().unwrap();
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the cluster did not settle");
    }

    /// Ticks every running node once, then pumps.
    pub fn tick(&mut self, n: usize) {
        for _ in 0..n {
            for m in &mut self.members {
                if let Some(node) = m.node.as_mut() {
                    node.on_tick();
                }
            }
            self.pump();
        }
    }

    /// Makes `id` leader.
    pub fn elect(&mut self, id: NodeId) {
        self.m(id).node().campaign();
        self.pump();
        assert_eq!(self.leader_of(id), Some(id));
    }

    pub fn leader_of(&mut self, id: NodeId) -> Option<NodeId> {
        self.m(id).node().raw().status().soft_state.leader
    }

    pub fn propose(&mut self, id: NodeId, pid: u64, data: &str) {
        let p = raftwood_node::Proposal {
            id: pid,
            data: Bytes::from(data.to_string()),
        };
        self.m(id).node().on_proposals([p]);
        self.pump();
    }

    pub fn commands(&mut self, id: NodeId) -> Vec<String> {
        self.m(id)
            .app
            .lock()
            .commands
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }
}
