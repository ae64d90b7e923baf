//! [`RaftNode`]: raftexample's `raftNode`, one method per event of its `serveChannels` loop
//! (`on_tick`, `on_transport_event`, `on_proposals`, ...) and [`RaftNode::process_ready`], which
//! handles every Ready in the order the book's "The node loop" chapter explains. The `select!`
//! loop ([`crate::serve::serve_channels`]) only picks the next event; tests call these methods
//! directly, step by step, without threads or real time.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;
use raftwood_raft::{
    ConfChange, ConfChangeStep, Entry, EntryKind, Index, MemStorage, Message, NodeId, RawNode,
    ReadState, Ready, Snapshot, Status, Storage,
};
use tracing::{debug, info, warn};

use crate::app::{Apply, ConfChangeRequest, DropReason, GetSnapshot, NodeError, Outcome, Proposal};
use crate::apply_queue::ApplyQueue;
use crate::conf_context;
use crate::conf_history::{Conf, ConfHistory};
use crate::config::{ConfigError, NodeConfig};
use crate::durable::{Batch, DurableLog};
use crate::payload::{Members, SnapshotPayload};
use crate::stats::NodeStats;
use crate::transport::{Transport, TransportEvent};

/// Where a node starts from.
#[derive(Debug)]
pub enum StartFrom {
    /// Nothing on disk: bootstrap with [`NodeConfig::bootstrap_voters`] (`peers`, or with
    /// `join` `peers` minus this node; the leader's log or snapshot brings the rest).
    Fresh,
    /// What the durable storage replayed: the snapshot, hard state and entries, rebuilt in a
    /// [`MemStorage`]. The state machine is restored from its snapshot (an [`Apply::Snapshot`]
    /// first) and the committed entries after it are handed out again.
    Restored(MemStorage),
}

/// The node's state for display, refreshed after every turn of the loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// Raft's own view: role, term, leader, commit, last index, per-peer progress.
    pub raft: Status,
    /// The last index handed to the application.
    pub applied_index: Index,
    /// The index of the newest snapshot (taken or installed).
    pub snapshot_index: Index,
    /// The current voters and their peer URLs, this node's included (empty for a voter whose
    /// URL this node never learned: one added by a change without a context).
    pub members: BTreeMap<NodeId, String>,
}

/// What the application keeps of a node built with [`RaftNode::new`]: the out channels.
#[derive(Debug)]
pub struct AppReceivers {
    /// Committed entries, conf changes, snapshots and reads, in order (bounded).
    pub apply: Receiver<Apply>,
    /// Errors answering the application's requests, and fatal ones.
    pub errors: Receiver<NodeError>,
}

/// One replica: raft, its in-memory storage, the durable log, the transport, and the channels to
/// the application.
pub struct RaftNode<L: DurableLog, T: Transport> {
    id: NodeId,
    raw: RawNode<MemStorage>,
    log: L,
    transport: T,
    apply: ApplyQueue,
    errors: Sender<NodeError>,
    get_snapshot: Box<dyn GetSnapshot>,
    conf_states: ConfHistory,
    /// The peer URLs the transport has been given (the initial `--cluster` list, then those of
    /// added members), so that a restored snapshot adds only the members it does not know.
    known_urls: Members,
    /// The last index handed to the application (raftexample's `appliedIndex`).
    applied_index: Index,
    /// The index of the newest snapshot (raftexample's `snapshotIndex`).
    snapshot_index: Index,
    /// Read states waiting for the entries up to their index to be handed out.
    pending_reads: VecDeque<ReadState>,
    leader: Option<NodeId>,
    snapshot_count: u64,
    snapshot_catch_up_entries: u64,
    snapshots_to_keep: usize,
    max_entry_size: usize,
    max_apply_gap: u64,
    stopping: Option<Outcome>,
    /// A tick passed since the last try at a snapshot: try again even without a Ready, so that
    /// an application that was behind when asked is asked again once it may have caught up.
    snapshot_retry: bool,
    /// The storage failures last reported: the same ones again are only counted.
    last_storage_failures: Vec<String>,
    stats: Arc<NodeStats>,
    status: Arc<Mutex<NodeStatus>>,
}

/// What a node starts from, read out of its [`StartFrom`]: the first half of
/// [`RaftNode::new`].
struct Start {
    /// The in-memory storage raft starts on.
    storage: MemStorage,
    /// The snapshot's index (0 without one): where `applied` starts.
    index: Index,
    /// The configuration and the members' URLs as of `index`.
    conf: Conf,
    /// The snapshot to hand the application first, without the node's layer.
    app_snapshot: Option<Snapshot>,
}

impl Start {
    fn new(config: &NodeConfig, start: StartFrom) -> Result<Start, ConfigError> {
        // Not a voter until the change that adds it is applied, a joining node starts from the
        // configuration before its addition and replays the log's changes like everyone
        // (applying a change is idempotent); see `NodeConfig::bootstrap_voters`.
        let voters = config.bootstrap_voters();
        let storage = match start {
            StartFrom::Fresh => MemStorage::new_with_voters(&voters),
            StartFrom::Restored(s) => s,
        };
        let snapshot = storage.snapshot().map_err(raftwood_raft::Error::from)?;
        let index = snapshot.metadata.index;
        if index == 0 {
            let base = storage
                .initial_state()
                .map_err(raftwood_raft::Error::from)?;
            if base.conf_state.voters != voters {
                // The storage rebuilt a log without a snapshot from other voters than these:
                // the composition gave `StorageOptions::bootstrap_voters` something else.
                return Err(ConfigError::Invalid(
                    "the storage's bootstrap voters are not NodeConfig::bootstrap_voters()",
                ));
            }
            let conf = Conf {
                state: base.conf_state,
                members: config.peers.clone(),
            };
            return Ok(Start {
                storage,
                index,
                conf,
                app_snapshot: None,
            });
        }
        // A snapshot carries the members' URLs as of its index (`crate::payload`); the
        // application gets only its own bytes.
        let payload = SnapshotPayload::decode(index, &snapshot.data)?;
        let conf = Conf {
            state: snapshot.metadata.conf_state.clone(),
            members: payload.members,
        };
        let app_snapshot = Some(Snapshot {
            metadata: snapshot.metadata,
            data: payload.app,
        });
        Ok(Start {
            storage,
            index,
            conf,
            app_snapshot,
        })
    }
}

impl<L: DurableLog, T: Transport> RaftNode<L, T> {
    /// A node ready to run. Nothing runs until events are fed to it (or
    /// [`crate::serve::serve_channels`] runs it).
    pub fn new(
        config: NodeConfig,
        start: StartFrom,
        log: L,
        transport: T,
        get_snapshot: Box<dyn GetSnapshot>,
    ) -> Result<(RaftNode<L, T>, AppReceivers), ConfigError> {
        config.validate()?;
        let Start {
            storage,
            index,
            conf,
            app_snapshot,
        } = Start::new(&config, start)?;
        let mut raft_config = config.raft.clone();
        raft_config.id = config.id;
        raft_config.applied = index;
        let raw = RawNode::new(raft_config, storage)?;
        let (apply_tx, apply_rx) = crossbeam_channel::bounded(config.apply_capacity);
        let (errors_tx, errors_rx) = crossbeam_channel::bounded(crate::app::ERRORS_CAPACITY);
        let status = NodeStatus {
            raft: raw.status(),
            applied_index: index,
            snapshot_index: index,
            members: BTreeMap::new(),
        };
        let mut node = RaftNode {
            id: config.id,
            raw,
            log,
            transport,
            apply: ApplyQueue::new(apply_tx),
            errors: errors_tx,
            get_snapshot,
            conf_states: ConfHistory::new(index, conf),
            known_urls: config.peers.clone(),
            applied_index: index,
            snapshot_index: index,
            pending_reads: VecDeque::new(),
            leader: None,
            snapshot_count: config.snapshot_count,
            snapshot_catch_up_entries: config.snapshot_catch_up_entries,
            snapshots_to_keep: config.snapshots_to_keep,
            max_entry_size: config.max_entry_size,
            max_apply_gap: config.max_apply_gap,
            stopping: None,
            snapshot_retry: false,
            last_storage_failures: Vec::new(),
            stats: Arc::new(NodeStats::default()),
            status: Arc::new(Mutex::new(status)),
        };
        node.dial_new_members();
        if let Some(snapshot) = app_snapshot {
            // The state machine starts from the snapshot the storage restored (raftexample's
            // kvstore loads it itself at start; here the node hands it over, first).
            node.apply.push(Apply::Snapshot(snapshot));
        }
        node.publish_status();
        let receivers = AppReceivers {
            apply: apply_rx,
            errors: errors_rx,
        };
        Ok((node, receivers))
    }

    /// The counters, shared.
    pub fn stats(&self) -> Arc<NodeStats> {
        Arc::clone(&self.stats)
    }

    /// The status, shared; refreshed by [`RaftNode::process_ready`].
    pub fn status(&self) -> Arc<Mutex<NodeStatus>> {
        Arc::clone(&self.status)
    }

    /// The raft node, for tests and tools.
    pub fn raw(&self) -> &RawNode<MemStorage> {
        &self.raw
    }

    /// The durable log, for tests and tools.
    pub fn log(&self) -> &L {
        &self.log
    }

    /// The transport, for tests and tools.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The ticker fired (raftexample: `case <-ticker.C: rc.node.Tick()`).
    pub fn on_tick(&mut self) {
        self.snapshot_retry = true;
        self.raw.tick();
    }

    /// Starts an election now (tests; a single-node cluster elects itself after a timeout).
    pub fn campaign(&mut self) {
        self.raw.campaign();
    }

    /// Something from the transport.
    pub fn on_transport_event(&mut self, event: TransportEvent) {
        match event {
            TransportEvent::Message(m) => self.on_message(m),
            TransportEvent::Unreachable(to) => {
                NodeStats::count_peer(&self.stats.unreachable, to);
                self.raw.report_unreachable(to);
            }
            TransportEvent::SnapshotStatus { to, ok } => self.raw.report_snapshot(to, ok),
            TransportEvent::Removed { by } => {
                warn!(
                    id = self.id,
                    by, "a peer says this node was removed; stopping"
                );
                self.stopping = Some(Outcome::Removed);
            }
        }
    }

    /// A message from a peer: stepped into raft. Raft drops what makes no sense, and says so in
    /// its own logs; the only errors are a message for another node (a misrouted frame).
    pub fn on_message(&mut self, m: Message) {
        if let Err(e) = self.raw.step(m) {
            debug!(id = self.id, "message dropped: {e}");
        }
    }

    /// Proposals from the application (raftexample's `proposeC`), proposed one by one: they go
    /// into one Ready and so into one WAL batch and one sync.
    pub fn on_proposals(&mut self, proposals: impl IntoIterator<Item = Proposal>) {
        for p in proposals {
            NodeStats::add(&self.stats.proposals, 1);
            let size = p.data.len();
            if size > self.max_entry_size {
                let error = DropReason::TooLarge {
                    size,
                    max: self.max_entry_size,
                };
                self.report(NodeError::ProposalDropped { id: p.id, error });
            } else if let Err(error) = self.raw.propose(p.data) {
                let error = error.into();
                self.report(NodeError::ProposalDropped { id: p.id, error });
            }
        }
    }

    /// A membership change from the application (raftexample's `confChangeC`).
    pub fn on_conf_change(&mut self, request: ConfChangeRequest) {
        // The request id travels in the entry's context (`conf_context`), so that the
        // application can tell its own change from an older identical one.
        let change = conf_context::wrap(request.id, request.change);
        if let Err(error) = self.raw.propose_conf_change(change) {
            self.report(NodeError::ConfChangeDropped {
                id: request.id,
                error,
            });
        }
    }

    /// A linearizable read (ReadIndex, thesis §6.4): its [`ReadState`] comes out in
    /// [`Apply::ReadStates`] after the entries it waits for.
    pub fn on_read_index(&mut self, context: Bytes) {
        NodeStats::add(&self.stats.read_index_rounds, 1);
        if let Err(error) = self.raw.read_index(context.clone()) {
            self.report(NodeError::ReadDropped { context, error });
        }
    }

    /// A leadership transfer request (thesis §3.10).
    pub fn on_transfer_leader(&mut self, to: NodeId) {
        if let Err(error) = self.raw.transfer_leader(to) {
            self.report(NodeError::TransferRefused { to, error });
        }
    }

    /// Whether the loop should take proposals now: not while the application is behind (the
    /// apply channel is full and items wait, or more than `max_apply_gap` committed entries are
    /// not handed out yet). Raft holds those entries in memory, and every proposal taken adds to
    /// them; left in their bounded channel instead, proposals make their proposers wait
    /// (etcd answers "too many requests" at the same gap).
    pub fn accepts_proposals(&self) -> bool {
        let commit = self.raw.storage().hard_state().commit;
        !self.apply.is_backed_up()
            && commit.saturating_sub(self.applied_index) <= self.max_apply_gap
    }

    /// The application asked the node to stop: the loop finishes its turn and stops.
    pub fn request_stop(&mut self) {
        self.stopping.get_or_insert(Outcome::Stopped);
    }

    /// Why the node is stopping, once it is.
    pub fn stopping(&self) -> Option<&Outcome> {
        self.stopping.as_ref()
    }

    pub(crate) fn apply_queue(&mut self) -> &mut ApplyQueue {
        &mut self.apply
    }

    /// Handles every Ready raft has, then refreshes the status. Called after every event.
    /// An error is fatal (durable storage failed, a committed entry is unreadable): the node
    /// must stop, since it can no longer keep its promises.
    pub fn process_ready(&mut self) -> Result<(), NodeError> {
        loop {
            self.apply.flush();
            if self.apply.is_closed() {
                // The application dropped its receiver: it has gone.
                self.request_stop();
            }
            let backed_up = self.apply.is_backed_up();
            if backed_up {
                NodeStats::add(&self.stats.apply_pauses, 1);
            }
            self.raw.set_apply_paused(backed_up);
            self.publish_reads();
            if !self.raw.has_ready() {
                break;
            }
            let rd = self.raw.ready();
            self.handle_ready(rd)?;
        }
        if std::mem::take(&mut self.snapshot_retry) {
            self.maybe_trigger_snapshot()?;
        }
        self.publish_status();
        Ok(())
    }

    /// One Ready, in the order of the book's chapter (a) to (h).
    fn handle_ready(&mut self, mut rd: Ready) -> Result<(), NodeError> {
        if let Some(ss) = rd.soft_state
            && ss.leader != self.leader
        {
            self.leader = ss.leader;
            NodeStats::add(&self.stats.leader_changes, 1);
            info!(id = self.id, leader = ?ss.leader, role = %ss.role, "leader changed");
        }
        // (e, early) `messages` go out now, before this node's own write (Ready rule 2): they
        // ask (appends, heartbeats, vote requests), they acknowledge nothing. A leader's appends
        // thus reach the followers while it writes its own copy (thesis §10.2.1), which is safe
        // because raft counts the leader's own copy towards a quorum only after `advance`, that
        // is after (b)'s sync: a follower's acknowledgement alone cannot commit an entry the
        // leader may still lose. Test: loop_ordering.rs,
        // the_leader_does_not_count_itself_before_its_sync.
        self.send(std::mem::take(&mut rd.messages));
        // (a) to (d): the disk, then the in-memory storage that mirrors it.
        self.persist(&mut rd)?;
        // (e) `persisted_messages` acknowledge what (b) made durable (accepted appends, granted
        // votes): only now may they leave (Ready rule 3).
        self.send(std::mem::take(&mut rd.persisted_messages));
        // (f) and (g): the application's share.
        self.publish(rd)?;
        // (h) Done: raft may count this node's copy of the entries and move `applied`.
        self.raw.advance();
        Ok(())
    }

    /// Steps (a) to (d) of a Ready: the snapshot file, the WAL batch, then the in-memory
    /// storage (and the application's snapshot), never ahead of the disk.
    fn persist(&mut self, rd: &mut Ready) -> Result<(), NodeError> {
        // A leader's snapshot must be one of ours (`crate::payload`): read it before anything
        // of it is written.
        let payload = match &rd.snapshot {
            Some(snap) => Some(SnapshotPayload::decode(snap.metadata.index, &snap.data)?),
            None => None,
        };
        // (a) A leader's snapshot: its file first, durable, before any WAL marker names it.
        if let Some(snap) = &rd.snapshot {
            self.save_snap(snap)?;
        }
        // (b) One WAL batch: the snapshot's log-resetting marker, the hard state, the entries;
        // one sync, if needed.
        let batch = Batch {
            snapshot: rd.snapshot.as_deref(),
            hard_state: rd.hard_state,
            entries: &rd.entries,
            must_sync: rd.must_sync,
        };
        let synced = rd.must_sync && !batch.is_empty();
        if !batch.is_empty() {
            self.log.save(batch).map_err(fatal("saving a WAL batch"))?;
        }
        self.stats.count_ready(rd.entries.len() as u64, synced);
        if synced && let Some(sync) = self.log.wal_sync_stats() {
            *self.stats.wal_sync.lock() = sync;
        }
        // (c) Only now, durable, the snapshot replaces the in-memory log and goes to the app.
        if let (Some(snap), Some(payload)) = (rd.snapshot.take(), payload) {
            self.raw
                .storage_mut()
                .apply_snapshot((*snap).clone())
                .map_err(fatal("installing a snapshot in memory"))?;
            self.publish_snapshot(*snap, payload);
            self.log
                .purge(self.snapshots_to_keep)
                .map_err(fatal("purging"))?;
        }
        // (d) The in-memory log (raft reads from it) follows the durable one.
        if let Some(hs) = rd.hard_state {
            self.raw.storage_mut().set_hard_state(hs);
        }
        self.raw.storage_mut().append(&rd.entries);
        Ok(())
    }

    /// Steps (f) and (g) of a Ready: committed entries, conf changes, then the reads that waited
    /// for them, and the storage failures, to the application; a snapshot of its state every
    /// `snapshot_count` entries.
    fn publish(&mut self, rd: Ready) -> Result<(), NodeError> {
        let ents = self.entries_to_apply(rd.committed_entries);
        self.publish_entries(ents)?;
        self.pending_reads.extend(rd.read_states);
        self.publish_reads();
        if !rd.dropped_reads.is_empty() {
            self.apply.push(Apply::DroppedReads(rd.dropped_reads));
        }
        let failures = rd.storage_failures.iter().map(|f| f.to_string());
        let apply_failure = rd
            .apply_failure
            .map(|e| format!("reading committed entries: {e}"));
        self.report_storage_failures(failures.chain(apply_failure).collect());
        self.maybe_trigger_snapshot()
    }

    /// Writes a snapshot's file, durable (raftexample's `saveSnap` first step; its WAL marker is
    /// written by the caller after this returns).
    fn save_snap(&mut self, snap: &Snapshot) -> Result<(), NodeError> {
        self.log
            .save_snap(snap)
            .map_err(fatal("saving a snapshot file"))
    }

    fn send(&mut self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        {
            let mut sent = self.stats.sent.lock();
            for m in &messages {
                *sent.entry(m.to).or_default() += 1;
            }
        }
        // What the transport could not send is reported at once, never through the events
        // channel (which may be full): see `Transport::send`.
        for event in self.transport.send(messages) {
            self.on_transport_event(event);
        }
    }

    /// raftexample's `entriesToApply`: the committed entries not handed out yet. Raft already
    /// never hands an entry out twice; the check keeps the loop honest about it.
    fn entries_to_apply(&self, ents: Vec<Entry>) -> Vec<Entry> {
        let Some(first) = ents.first() else {
            return ents;
        };
        assert!(
            first.index <= self.applied_index + 1,
            "invariant violated: first committed entry {} after applied index {} + 1",
            first.index,
            self.applied_index
        );
        ents.into_iter()
            .filter(|e| e.index > self.applied_index)
            .collect()
    }

    /// raftexample's `publishEntries`: normal entries in batches, each conf change applied to
    /// raft (and to the transport) and handed out between them, in log order.
    fn publish_entries(&mut self, ents: Vec<Entry>) -> Result<(), NodeError> {
        let Some(last) = ents.last().map(|e| e.index) else {
            return Ok(());
        };
        let count = ents.len() as u64;
        let mut batch = Vec::new();
        for e in ents {
            match e.kind {
                EntryKind::Normal => batch.push(e),
                EntryKind::ConfChange => {
                    if !batch.is_empty() {
                        self.apply.push(Apply::Entries(std::mem::take(&mut batch)));
                    }
                    self.apply_conf_change(&e)?;
                }
            }
        }
        if !batch.is_empty() {
            self.apply.push(Apply::Entries(batch));
        }
        NodeStats::add(&self.stats.committed_published, count);
        self.applied_index = last;
        Ok(())
    }

    fn apply_conf_change(&mut self, e: &Entry) -> Result<(), NodeError> {
        let cc = ConfChange::decode(&e.data).map_err(|err| {
            NodeError::Fatal(format!("committed conf change at index {}: {err}", e.index))
        })?;
        let (id, cc) = conf_context::unwrap(cc);
        let conf_state = match self.raw.apply_conf_change(&cc) {
            Ok(cs) => cs,
            Err(error) => {
                // Refused the same way on every node: the configuration stays as it was.
                warn!(
                    id = self.id,
                    index = e.index,
                    "conf change refused: {error}"
                );
                self.report(NodeError::ConfChangeRefused {
                    id,
                    index: e.index,
                    error,
                });
                return Ok(());
            }
        };
        self.raw.storage_mut().set_conf_state(conf_state.clone());
        let mut members = self.conf_states.current().members.clone();
        for step in &cc.steps {
            match *step {
                ConfChangeStep::AddVoter(id) if !cc.context.is_empty() => {
                    // raftexample puts the new member's peer URL in the context.
                    match std::str::from_utf8(&cc.context) {
                        Ok(url) => {
                            members.insert(id, url.to_string());
                            if id != self.id {
                                self.known_urls.insert(id, url.to_string());
                                self.transport.add_peer(id, url);
                            }
                        }
                        Err(_) => warn!(id, "added voter's context is not a UTF-8 URL"),
                    }
                }
                ConfChangeStep::RemoveNode(id) if id == self.id => {
                    info!(id = self.id, "removed from the cluster; stopping");
                    members.remove(&id);
                    self.stopping = Some(Outcome::Removed);
                }
                ConfChangeStep::RemoveNode(id) => {
                    members.remove(&id);
                    self.known_urls.remove(&id);
                    self.transport.remove_peer(id);
                }
                _ => {}
            }
        }
        self.conf_states.record(
            e.index,
            Conf {
                state: conf_state.clone(),
                members,
            },
        );
        self.apply.push(Apply::ConfChange {
            id,
            index: e.index,
            term: e.term,
            change: cc,
            conf_state,
        });
        Ok(())
    }

    /// Hands out the read states whose index has been reached, in order.
    fn publish_reads(&mut self) {
        let mut ready = Vec::new();
        while let Some(rs) = self.pending_reads.front() {
            if rs.index > self.applied_index {
                break;
            }
            ready.extend(self.pending_reads.pop_front());
        }
        if !ready.is_empty() {
            self.apply.push(Apply::ReadStates(ready));
        }
    }

    /// Tells the transport about every member whose URL it was never given (not this node):
    /// those a restored snapshot names.
    fn dial_new_members(&mut self) {
        let members = self.conf_states.current().members.clone();
        for (id, url) in members {
            if id != self.id && !self.known_urls.contains_key(&id) {
                info!(id = self.id, peer = id, %url, "member learned from a snapshot");
                self.transport.add_peer(id, &url);
                self.known_urls.insert(id, url);
            }
        }
    }

    /// raftexample's `publishSnapshot`: the state machine restarts from a leader's snapshot
    /// (its own bytes; the members' URLs stay with the node, which dials those it did not know).
    fn publish_snapshot(&mut self, snap: Snapshot, payload: SnapshotPayload) {
        let m = &snap.metadata;
        assert!(
            m.index > self.applied_index,
            "invariant violated: snapshot index {} at or below applied index {}",
            m.index,
            self.applied_index
        );
        info!(id = self.id, index = m.index, "publishing snapshot");
        self.conf_states.reset(
            m.index,
            Conf {
                state: m.conf_state.clone(),
                members: payload.members,
            },
        );
        self.dial_new_members();
        self.snapshot_index = m.index;
        self.applied_index = m.index;
        self.apply.push(Apply::Snapshot(Snapshot {
            metadata: snap.metadata,
            data: payload.app,
        }));
    }

    /// raftexample's `maybeTriggerSnapshot`: every `snapshot_count` entries handed out, take the
    /// application's state, record it (file, then a plain WAL marker), compact the in-memory
    /// log keeping `snapshot_catch_up_entries`, and purge old snapshots and WAL segments.
    fn maybe_trigger_snapshot(&mut self) -> Result<(), NodeError> {
        if self.applied_index - self.snapshot_index < self.snapshot_count {
            return Ok(());
        }
        let started = Instant::now();
        let (index, data) = self
            .get_snapshot
            .get_snapshot()
            .map_err(|e| NodeError::Fatal(format!("getSnapshot: {e}")))?;
        if index <= self.snapshot_index {
            // The application is still behind (items wait in the channel): ask again at the next
            // Ready or tick. While it stays more than `snapshot_count` behind it is asked at
            // every one of them; an application that slow has a bigger problem.
            return Ok(());
        }
        if index > self.applied_index {
            return Err(NodeError::Fatal(format!(
                "getSnapshot returned index {index}, past the applied index {}",
                self.applied_index
            )));
        }
        // The configuration and the members' URLs as of `index`, wrapped around the app's bytes.
        let conf = self.conf_states.at(index);
        let data = SnapshotPayload {
            members: conf.members,
            app: data,
        }
        .encode();
        let snap = self
            .raw
            .storage_mut()
            .create_snapshot(index, conf.state, data)
            .map_err(fatal("creating a snapshot"))?;
        // The file, durable, then a plain marker: the commit index covering `index` is already
        // durable (this Ready's batch, or an earlier one), so a restart honours the marker.
        self.log
            .record_local_snapshot(&snap)
            .map_err(fatal("recording a snapshot"))?;
        let compact_index = index.saturating_sub(self.snapshot_catch_up_entries);
        if compact_index >= self.raw.storage().first_index().unwrap_or(1) {
            self.raw
                .storage_mut()
                .compact(compact_index)
                .map_err(fatal("compacting"))?;
            info!(id = self.id, compact_index, "compacted log");
        }
        self.log
            .purge(self.snapshots_to_keep)
            .map_err(fatal("purging"))?;
        self.snapshot_index = index;
        self.conf_states.prune(index);
        NodeStats::add(&self.stats.snapshots_taken, 1);
        NodeStats::add(
            &self.stats.snapshot_micros,
            started.elapsed().as_micros() as u64,
        );
        Ok(())
    }

    fn publish_status(&self) {
        let conf = self.conf_states.current();
        let members = conf
            .state
            .voters
            .iter()
            .map(|&id| (id, conf.members.get(&id).cloned().unwrap_or_default()))
            .collect();
        let status = NodeStatus {
            raft: self.raw.status(),
            applied_index: self.applied_index,
            snapshot_index: self.snapshot_index,
            members,
        };
        *self.status.lock() = status;
    }

    /// Reports this Ready's storage failures, unless they are the ones reported last: raft
    /// retries a failing read at every heartbeat response or tick, and would flood the errors
    /// channel with the same line. Every occurrence is counted.
    fn report_storage_failures(&mut self, failures: Vec<String>) {
        if failures.is_empty() {
            return;
        }
        NodeStats::add(&self.stats.storage_failures, failures.len() as u64);
        if failures == self.last_storage_failures {
            return;
        }
        for f in &failures {
            warn!(id = self.id, "storage: {f}");
            self.report(NodeError::Storage(f.clone()));
        }
        self.last_storage_failures = failures;
    }

    /// Hands `error` to the application without waiting: a full channel drops it (counted).
    fn report(&self, error: NodeError) {
        debug!(id = self.id, "{error}");
        match self.errors.try_send(error) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => NodeStats::add(&self.stats.errors_dropped, 1),
            // The application dropped its receiver: it does not want the errors.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Stops: hands what it can to the application, syncs and closes the durable log.
    pub fn finish(mut self) -> Result<Outcome, NodeError> {
        self.apply.flush();
        self.log.close().map_err(fatal("closing the log"))?;
        Ok(self.stopping.unwrap_or(Outcome::Stopped))
    }

    /// After a fatal error: report it, close the log as well as possible, return the error.
    pub(crate) fn fail(mut self, error: NodeError) -> NodeError {
        // The thread's result carries the error too, should the channel be full.
        self.report(NodeError::Fatal(error.to_string()));
        if let Err(e) = self.log.close() {
            warn!(id = self.id, "closing the log after a failure: {e}");
        }
        error
    }
}

/// Turns a storage error into the fatal error that stops the node, saying what was being done.
fn fatal<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> NodeError {
    move |e| NodeError::Fatal(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::durable::DurableError;
    use crate::transport::memory::{MemoryNetwork, MemoryTransport};

    struct NullLog;

    impl DurableLog for NullLog {
        fn save_snap(&mut self, _: &Snapshot) -> Result<(), DurableError> {
            Ok(())
        }
        fn save(&mut self, _: Batch<'_>) -> Result<(), DurableError> {
            Ok(())
        }
        fn record_local_snapshot(&mut self, _: &Snapshot) -> Result<(), DurableError> {
            Ok(())
        }
        fn purge(&mut self, _: usize) -> Result<(), DurableError> {
            Ok(())
        }
        fn close(&mut self) -> Result<(), DurableError> {
            Ok(())
        }
    }

    fn node() -> (RaftNode<NullLog, MemoryTransport>, AppReceivers) {
        let (transport, _events) = MemoryNetwork::new().join(1);
        let config = NodeConfig::new(1, [(1, "http://n1".to_string())].into());
        let get_snapshot = Box::new(|| Ok((0, Bytes::new())));
        RaftNode::new(config, StartFrom::Fresh, NullLog, transport, get_snapshot).unwrap()
    }

    /// Fails without the check (the restored voters were taken as they came, or patched from
    /// the peers when empty: two sources that could disagree).
    #[test]
    fn a_restored_log_without_a_snapshot_must_start_from_the_configs_voters() {
        let config = NodeConfig::new(1, [(1, "http://n1".to_string())].into());
        let start = |voters: &[NodeId]| {
            let (transport, _events) = MemoryNetwork::new().join(1);
            let storage = StartFrom::Restored(MemStorage::new_with_voters(voters));
            let get_snapshot = Box::new(|| Ok((0, Bytes::new())));
            RaftNode::new(config.clone(), storage, NullLog, transport, get_snapshot).map(|_| ())
        };
        assert!(start(&[1]).is_ok());
        assert!(matches!(start(&[1, 2]), Err(ConfigError::Invalid(_))));
        assert!(matches!(start(&[]), Err(ConfigError::Invalid(_))));
    }

    /// Fails when every retry is reported (the same failure twice gives two errors).
    #[test]
    fn a_repeated_storage_failure_is_reported_once_and_counted_every_time() {
        let (mut n, rx) = node();
        n.report_storage_failures(vec!["entry 7 unavailable".into()]);
        n.report_storage_failures(vec!["entry 7 unavailable".into()]);
        n.report_storage_failures(Vec::new());
        n.report_storage_failures(vec!["entry 7 unavailable".into()]);
        n.report_storage_failures(vec!["entry 9 unavailable".into()]);
        let reported: Vec<String> = rx.errors.try_iter().map(|e| e.to_string()).collect();
        assert_eq!(
            reported,
            [
                "storage: entry 7 unavailable",
                "storage: entry 9 unavailable"
            ]
        );
        assert_eq!(NodeStats::get(&n.stats.storage_failures), 4);
    }

    /// Fails with an unbounded errors channel (nothing is ever dropped, memory grows instead).
    #[test]
    fn errors_the_application_does_not_read_are_dropped_and_counted() {
        let (n, rx) = node();
        for to in 0..crate::app::ERRORS_CAPACITY as u64 + 3 {
            let error = raftwood_raft::Error::ReadIndexNoLeader;
            n.report(NodeError::TransferRefused { to, error });
        }
        assert_eq!(rx.errors.len(), crate::app::ERRORS_CAPACITY);
        assert_eq!(NodeStats::get(&n.stats.errors_dropped), 3);
    }
}
