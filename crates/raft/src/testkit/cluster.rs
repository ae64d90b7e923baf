//! The simulated cluster: nodes, their disks, and the network between them, and the checks run
//! as messages are delivered. How a Ready is handled in steps, and the synced/unsynced disk model
//! under it, is in `ready_steps.rs`; the faults (cuts, partitions, crashes, restarts) are in
//! `faults.rs`; the application (its state machine, snapshots, compaction, snapshot reports) in
//! `app.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use bytes::Bytes;

use super::app::App;
use super::membership::AppConf;
use super::ready_steps::Stage;
use super::safety::{self, History, Verdict};
use crate::{
    ConfState, Config, Entry, HardState, Index, MemStorage, Message, MessageBody, NodeId, RawNode,
    ReadOnlyOption, Role, SoftState, Storage, Term,
};

/// The most messages the network holds; beyond it the newest are dropped (and the run is failed
/// as a livelock): a bug that multiplies messages must fail fast, not exhaust memory.
pub const MAX_QUEUE: usize = 20_000;

/// The most output one command may write; the rest is cut, with a note.
pub const MAX_OUTPUT: usize = 1 << 20;

/// Rounds `stabilize` runs before it declares a livelock.
pub const STABILIZE_ROUNDS: usize = 2_000;

/// How the cluster's nodes are configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterOptions {
    /// Turn on PreVote on every node.
    pub pre_vote: bool,
    /// Turn on CheckQuorum on every node.
    pub check_quorum: bool,
    /// Added to every node's seed, to vary the election timeouts between runs.
    pub seed: u64,
    /// Overrides `Config::max_size_per_msg`. A small cap splits the log into many appends, so
    /// that followers acknowledge old entries on their own (the Figure 8 situation).
    pub max_size_per_msg: Option<u64>,
    /// Overrides `Config::max_inflight_msgs`.
    pub max_inflight_msgs: Option<usize>,
    /// How leaders confirm their leadership before answering a read (`Config::read_only_option`;
    /// `LeaseBased` needs `check_quorum`).
    pub read_only: ReadOnlyOption,
    /// Nodes with a configuration of their own, used instead of [`ClusterOptions::config`] (its
    /// `id` must be the node's). Start from `config(id)` and change what differs:
    ///
    /// ```
    /// use raftwood_raft::testkit::{Cluster, ClusterOptions};
    ///
    /// let mut opts = ClusterOptions::default();
    /// let mut c3 = opts.config(3);
    /// c3.disable_proposal_forwarding = true;
    /// opts.node_configs.insert(3, c3);
    /// let mut c = Cluster::new(3, opts);
    /// c.campaign(1);
    /// c.stabilize();
    /// assert!(c.propose(2, "forwarded".into()));
    /// assert!(!c.propose(3, "refused".into()));
    /// ```
    pub node_configs: BTreeMap<NodeId, Config>,
}

impl ClusterOptions {
    /// The configuration these options give node `id`, unless [`ClusterOptions::node_configs`]
    /// has one for it: election after 10..20 ticks, a heartbeat every tick, and the overrides.
    pub fn config(&self, id: NodeId) -> Config {
        let mut config = Config::new(id);
        config.heartbeat_tick = 1;
        config.election_tick = 10;
        config.pre_vote = self.pre_vote;
        config.check_quorum = self.check_quorum;
        config.read_only_option = self.read_only;
        config.seed = config.seed.wrapping_add(self.seed);
        if let Some(size) = self.max_size_per_msg {
            config.max_size_per_msg = size;
        }
        if let Some(n) = self.max_inflight_msgs {
            config.max_inflight_msgs = n;
        }
        config
    }
}

/// A node of the simulation: running, or crashed with only its synced disk left (and its state
/// machine, which survives a crash).
pub(super) enum Sim {
    Up(Box<Running>),
    Down { disk: MemStorage, app: App },
}

/// A running node and its disk.
///
/// The disk is modelled as two layers: `synced`, what an fsync has made durable, and the node's
/// own `MemStorage`, which is `synced` plus the writes since the last sync (the page cache: the
/// node reads what it wrote at once). A crash keeps `synced` and loses the rest.
pub(super) struct Running {
    pub(super) node: RawNode<MemStorage>,
    pub(super) synced: MemStorage,
    /// The outstanding Ready, and how far its handling got.
    pub(super) stage: Option<Stage>,
    /// The hard state handed out by the last Ready (or read from disk at start), to see what a
    /// new Ready changes.
    pub(super) last_hs: HardState,
    /// The node's state machine.
    pub(super) app: App,
}

/// What a step can change about a node that the output reports and the checks watch.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Seen {
    term: Term,
    soft: SoftState,
    commit: Index,
}

/// Where the steps of Ready handling stand, to count crashes at each boundary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Appends accepted whose entries (at least one) the follower already held, with more
    /// entries beyond them: a duplicated or reordered append after the follower moved on.
    pub matching_append_tail: u64,
    /// Appends accepted whose entries the follower already held, with a stale tail (entries
    /// not in the leader's log) beyond them: the case of Figure 2's AppendEntries rule 5.
    pub matching_append_stale_tail: u64,
    /// Restarts with `Config::applied` set to what the state machine had applied.
    pub restart_with_applied: u64,
    /// Crashes with a Ready written but not synced.
    pub crash_written_unsynced: u64,
    /// Crashes with a Ready synced but its `persisted_messages` unsent.
    pub crash_synced_unsent: u64,
    /// Crashes with a Ready handled but not advanced.
    pub crash_before_advance: u64,
    /// Conf changes applied by a leader (each changes the quorum it counts).
    pub conf_changes_applied_by_leader: u64,
    /// Leaders that applied their own removal and stepped down (thesis §4.2.2).
    pub removed_leader_stepped_down: u64,
    /// Followers that started an election on a leader's `TimeoutNow` (a leadership transfer
    /// reaching its last step).
    pub transfer_campaigns: u64,
    /// Snapshots a leader sent (InstallSnapshot, Raft §7).
    pub snapshots_sent: u64,
    /// Snapshots lost in transit (dropped, link cut, recipient down), reported failed.
    pub snapshots_lost: u64,
    /// Snapshots a follower installed and applied.
    pub snapshots_installed: u64,
    /// Snapshots installed by a node not in their configuration: a node joining after the
    /// leader compacted, sent a snapshot that predates the change adding it.
    pub snapshots_installed_by_joiner: u64,
    /// Reads answered (`ReadState`s handed out), each checked against the acknowledged writes.
    pub reads_answered: u64,
    /// Reads reported dropped (`Ready::dropped_reads`).
    pub reads_dropped: u64,
}

/// A deterministic in-memory cluster. Messages wait in one queue until delivered, dropped,
/// duplicated or reordered; links can be cut; nodes crash and restart from exactly what they
/// had synced: the disk is synced state plus the writes since the last sync, which a crash loses
/// (a Ready's writes are synced only if it says `must_sync`).
///
/// A Ready is handled in steps, as a real node handles it, and anything may happen between two
/// of them: [`Cluster::take_ready`], [`Cluster::send_messages`], [`Cluster::persist`] (or
/// [`Cluster::write`] then [`Cluster::sync`]), [`Cluster::send_persisted`], [`Cluster::advance`].
/// [`Cluster::process`] does them all in order. A node has at most one Ready outstanding; a crash
/// loses it.
///
/// Everything that happens is written to an output buffer ([`Cluster::take_output`]) in the
/// scenario notation, and recorded in a [`History`] that the safety checks read.
pub struct Cluster {
    pub(super) nodes: BTreeMap<NodeId, Sim>,
    configs: BTreeMap<NodeId, Config>,
    opts: ClusterOptions,
    /// The configuration the cluster was created with: what every log starts from.
    pub(super) bootstrap: Vec<NodeId>,
    /// Each node's applied configuration ([`AppConf`]).
    pub(super) apps: BTreeMap<NodeId, AppConf>,
    pub(super) queue: Vec<Message>,
    /// Directed links that drop everything.
    pub(super) cut: BTreeSet<(NodeId, NodeId)>,
    /// Kinds of message (`MessageBody::name`) the network drops, until `heal`.
    pub(super) dropped_kinds: BTreeSet<String>,
    out: String,
    /// What the safety checks need to remember.
    pub history: History,
    /// The failures found so far and not yet taken ([`Cluster::take_verdicts`]).
    verdicts: Vec<Verdict>,
    /// How often the hard cases were reached.
    pub coverage: Coverage,
}

impl Cluster {
    /// A cluster of nodes `1..=n`, all voters, all followers at term 0.
    pub fn new(n: u64, opts: ClusterOptions) -> Cluster {
        let voters: Vec<NodeId> = (1..=n).collect();
        let disks = voters
            .iter()
            .map(|&id| (id, MemStorage::new_with_voters(&voters)))
            .collect();
        Cluster::with_disks(disks, opts)
    }

    /// A cluster whose nodes start from the given disks, as if restarting after a crash: the
    /// way to set up a situation from the paper (the logs of Figure 7, say) without replaying the
    /// history that led to it. Each disk must be consistent (its commit index within its log) and
    /// hold the voters in its initial state.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use raftwood_raft::testkit::Cluster;
    /// use raftwood_raft::{Entry, HardState, MemStorage};
    ///
    /// let disks: BTreeMap<u64, MemStorage> = (1..=3)
    ///     .map(|id| {
    ///         let mut d = MemStorage::new_with_voters(&[1, 2, 3]);
    ///         d.append(&[Entry { index: 1, term: 1, ..Default::default() }]);
    ///         d.set_hard_state(HardState { term: 1, vote: None, commit: 0 });
    ///         (id, d)
    ///     })
    ///     .collect();
    /// let mut c = Cluster::with_disks(disks, Default::default());
    /// c.campaign(2);
    /// c.stabilize();
    /// assert_eq!(c.leader(), Some(2));
    /// ```
    pub fn with_disks(disks: BTreeMap<NodeId, MemStorage>, opts: ClusterOptions) -> Cluster {
        let mut bootstrap = disks
            .values()
            .next()
            .and_then(|d| d.initial_state().ok())
            .map(|st| st.conf_state.voters)
            .unwrap_or_default();
        bootstrap.sort_unstable();
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            opts,
            bootstrap: bootstrap.clone(),
            apps: BTreeMap::new(),
            queue: Vec::new(),
            cut: BTreeSet::new(),
            dropped_kinds: BTreeSet::new(),
            out: String::new(),
            history: History::default(),
            verdicts: Vec::new(),
            coverage: Coverage::default(),
        };
        c.history.bootstrap(bootstrap);
        for (id, disk) in disks {
            c.insert_node(id, disk);
        }
        c
    }

    /// Configures node `id` with the cluster's options and starts it from `disk`.
    pub(super) fn insert_node(&mut self, id: NodeId, disk: MemStorage) {
        let config = match self.opts.node_configs.get(&id) {
            Some(own) => own.clone(),
            None => self.opts.config(id),
        };
        self.configs.insert(id, config);
        self.nodes.insert(
            id,
            Sim::Down {
                disk,
                app: App::default(),
            },
        );
        self.start(id, false);
    }

    /// Starts node `id` from its disk; with `keep_applied`, its state machine kept what it had
    /// applied (`Config::applied` is set to it), otherwise it starts empty. Either way, if the
    /// disk holds a snapshot past what the state machine has, the application loads it first,
    /// as a real one does on restart.
    pub(super) fn start(&mut self, id: NodeId, keep_applied: bool) {
        let Some(Sim::Down { disk, app }) = self.nodes.remove(&id) else {
            return;
        };
        let mut config = self.configs[&id].clone();
        let mut app = if keep_applied { app } else { App::default() };
        let snap = disk.snapshot().unwrap_or_default();
        let loaded = snap.metadata.index > app.applied;
        if loaded {
            app = App::from_snapshot_data(&snap.data).unwrap_or(App {
                applied: snap.metadata.index,
                state: 0,
            });
        }
        let applied = app.applied;
        config.applied = applied;
        // The configuration must be the one as of `applied`: the state machine's, the bootstrap
        // one for a state machine that starts empty and applies every change again, or the
        // snapshot's for one that loads a snapshot.
        let conf = self.apps.entry(id).or_default();
        if !keep_applied {
            *conf = AppConf {
                voters: self.bootstrap.clone(),
                removed: BTreeSet::new(),
            };
        }
        if loaded {
            conf.load(&snap.metadata.conf_state.voters);
        }
        let mut disk = disk;
        disk.set_conf_state(ConfState {
            voters: conf.voters.clone(),
        });
        let last_hs = disk.hard_state();
        // The disk was written by this testkit, so it is consistent; failing here is a test bug
        // (or a core that applied what it had not synced).
        let node =
            RawNode::new(config, disk.clone()).expect("testkit: restart from a consistent disk");
        self.history.restarted(id, applied);
        if loaded && let Err(v) = self.history.state_at(id, app.applied, app.state) {
            self.fail(Verdict::Safety(v));
        }
        self.nodes.insert(
            id,
            Sim::Up(Box::new(Running {
                node,
                synced: disk,
                stage: None,
                last_hs,
                app,
            })),
        );
    }

    /// The ids of all nodes, crashed or not.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// The running node `id`, if it is up.
    pub fn node(&self, id: NodeId) -> Option<&RawNode<MemStorage>> {
        match self.nodes.get(&id) {
            Some(Sim::Up(r)) => Some(&r.node),
            _ => None,
        }
    }

    pub(super) fn running(&mut self, id: NodeId) -> Option<&mut Running> {
        match self.nodes.get_mut(&id) {
            Some(Sim::Up(r)) => Some(r),
            _ => None,
        }
    }

    fn node_mut(&mut self, id: NodeId) -> Option<&mut RawNode<MemStorage>> {
        self.running(id).map(|r| &mut r.node)
    }

    /// Running nodes.
    pub fn up_nodes(&self) -> impl Iterator<Item = &RawNode<MemStorage>> {
        self.nodes.values().filter_map(|s| match s {
            Sim::Up(r) => Some(&r.node),
            Sim::Down { .. } => None,
        })
    }

    /// The synced disk of node `id`: what survives a crash, whether it is up or down.
    pub fn disk(&self, id: NodeId) -> Option<&MemStorage> {
        match self.nodes.get(&id)? {
            Sim::Up(r) => Some(&r.synced),
            Sim::Down { disk, .. } => Some(disk),
        }
    }

    /// Whether node `id` has a Ready outstanding (taken and not yet advanced).
    pub fn has_outstanding(&self, id: NodeId) -> bool {
        matches!(self.nodes.get(&id), Some(Sim::Up(r)) if r.stage.is_some())
    }

    /// The node that is leader in the highest term among running nodes, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.up_nodes()
            .filter(|n| n.status().soft_state.role == crate::Role::Leader)
            .max_by_key(|n| n.status().hard_state.term)
            .map(|n| n.id())
    }

    /// Messages waiting in the network, in delivery order.
    pub fn queue(&self) -> &[Message] {
        &self.queue
    }

    /// Takes what has been written to the output since the last call.
    pub fn take_output(&mut self) -> String {
        std::mem::take(&mut self.out)
    }

    /// Writes a line to the output (up to [`MAX_OUTPUT`] bytes between two `take_output`s).
    pub fn say(&mut self, line: impl AsRef<str>) {
        if self.out.len() > MAX_OUTPUT {
            return;
        }
        self.out.push_str(line.as_ref());
        self.out.push('\n');
        if self.out.len() > MAX_OUTPUT {
            self.out.push_str("... (output cut)\n");
        }
    }

    /// Records a failure for [`Cluster::take_verdicts`], and prints it (once, until taken).
    pub fn fail(&mut self, v: Verdict) {
        if self.verdicts.contains(&v) {
            return;
        }
        self.say(v.to_string());
        self.verdicts.push(v);
    }

    /// Takes the failures found since the last call.
    pub fn take_verdicts(&mut self) -> Vec<Verdict> {
        std::mem::take(&mut self.verdicts)
    }

    /// Whether a failure is waiting to be taken.
    pub fn has_failed(&self) -> bool {
        !self.verdicts.is_empty()
    }

    // --- Driving the nodes ---

    /// What `id` looks like now, to report what a step changes.
    fn seen(&self, id: NodeId) -> Option<Seen> {
        let n = self.node(id)?;
        let st = n.status();
        Some(Seen {
            term: st.hard_state.term,
            soft: st.soft_state,
            commit: st.hard_state.commit,
        })
    }

    /// Runs `f` on node `id` (if up), then reports what it changed: a role change as
    /// `n1@1 follower(n2) ⇨ n1@2 candidate`, and a commit index moved against the rules.
    pub(super) fn on_node<R>(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut RawNode<MemStorage>) -> R,
    ) -> Option<R> {
        let before = self.seen(id)?;
        let r = f(self.node_mut(id)?);
        self.observe(id, before);
        Some(r)
    }

    fn observe(&mut self, id: NodeId, before: Seen) {
        let Some(now) = self.seen(id) else { return };
        if (now.term, now.soft) != (before.term, before.soft) {
            self.say(format!(
                "n{id}@{} {} ⇨ n{id}@{} {}",
                before.term,
                role_text(before.soft),
                now.term,
                role_text(now.soft)
            ));
            if let Err(v) = self.history.observe_role(id, now.term, now.soft.role) {
                self.fail(Verdict::Safety(v));
            }
        }
        if now.commit > before.commit
            && now.soft.role == Role::Leader
            && let Err(v) = safety::check_leader_commit(self, id, now.commit)
        {
            self.fail(Verdict::Safety(v));
        }
    }

    /// Ticks node `id` once.
    pub fn tick(&mut self, id: NodeId) {
        self.on_node(id, |n| n.tick());
    }

    /// Makes node `id` campaign now.
    pub fn campaign(&mut self, id: NodeId) {
        self.on_node(id, |n| n.campaign());
    }

    /// Proposes `data` on node `id`, writing any error to the output. Returns whether the node
    /// accepted it.
    pub fn propose(&mut self, id: NodeId, data: Bytes) -> bool {
        match self.on_node(id, |n| n.propose(data)) {
            None => {
                self.say(format!("n{id} is down"));
                false
            }
            Some(Err(e)) => {
                self.say(format!("n{id} propose: {e}"));
                false
            }
            Some(Ok(())) => true,
        }
    }

    /// Proposes `data` on node `id` as one batch ([`RawNode::propose_batch`]), writing any error
    /// to the output. Returns whether the node accepted it.
    pub fn propose_batch(&mut self, id: NodeId, data: Vec<Bytes>) -> bool {
        match self.on_node(id, |n| n.propose_batch(data)) {
            None => {
                self.say(format!("n{id} is down"));
                false
            }
            Some(Err(e)) => {
                self.say(format!("n{id} propose-batch: {e}"));
                false
            }
            Some(Ok(())) => true,
        }
    }

    /// Node `id`'s application asks for a linearizable read identified by `context`, writing a
    /// refusal to the output. The writes acknowledged so far are remembered, for the check that
    /// the answer covers them (`History::read_requested`). Returns whether the node took it.
    pub fn read_index(&mut self, id: NodeId, context: Bytes) -> bool {
        self.history.read_requested(&context);
        match self.on_node(id, |n| n.read_index(context)) {
            None => {
                self.say(format!("n{id} is down"));
                false
            }
            Some(Err(e)) => {
                self.say(format!("n{id} read-index: {e}"));
                false
            }
            Some(Ok(())) => true,
        }
    }

    /// Asks node `from` to hand its leadership to `to` ([`RawNode::transfer_leader`]), writing a
    /// refusal to the output. Returns whether a transfer was started (or was already pending).
    pub fn transfer_leader(&mut self, from: NodeId, to: NodeId) -> bool {
        match self.on_node(from, |n| n.transfer_leader(to)) {
            None => {
                self.say(format!("n{from} is down"));
                false
            }
            Some(Err(e)) => {
                self.say(format!("n{from} transfer-leader: {e}"));
                false
            }
            Some(Ok(())) => true,
        }
    }

    /// Puts a crafted message on the network, at the end of the queue, as if its sender had sent
    /// it: a test of what a node does with a message the protocol would not produce at that
    /// moment (a forged, replayed or misrouted one). It is delivered like any other.
    pub fn inject(&mut self, m: Message) {
        self.enqueue(vec![m]);
    }

    /// Puts messages on the network, up to [`MAX_QUEUE`].
    pub(super) fn enqueue(&mut self, msgs: Vec<Message>) {
        let snapshots = msgs
            .iter()
            .filter(|m| matches!(m.body, MessageBody::Snapshot { .. }));
        self.coverage.snapshots_sent += snapshots.count() as u64;
        let room = MAX_QUEUE.saturating_sub(self.queue.len());
        if msgs.len() > room {
            self.fail(Verdict::Liveness(format!(
                "more than {MAX_QUEUE} messages in the network"
            )));
        }
        self.queue.extend(msgs.into_iter().take(room));
    }

    /// Delivers the queued message at `i` (if any), unless its link is cut or its recipient down.
    pub fn deliver_at(&mut self, i: usize) {
        if i >= self.queue.len() {
            return;
        }
        let m = self.queue.remove(i);
        let text = m.to_string();
        if self.cut.contains(&(m.from, m.to)) {
            self.say(format!("{text} (dropped: link cut)"));
            return self.snapshot_lost(&m);
        }
        if self
            .apps
            .get(&m.to)
            .is_some_and(|app| app.removed.contains(&m.from))
        {
            return self.say(format!("{text} (dropped: n{} removed n{})", m.to, m.from));
        }
        if self.dropped_kinds.contains(m.body.name()) {
            self.say(format!("{text} (dropped: kind {})", m.body.name()));
            return self.snapshot_lost(&m);
        }
        let Some(before) = self.seen(m.to) else {
            self.say(format!("{text} (dropped: n{} down)", m.to));
            return self.snapshot_lost(&m);
        };
        let (to, from, term) = (m.to, m.from, m.term);
        let append = self.append_proof(&m, before.commit);
        let snapshot = matches!(m.body, MessageBody::Snapshot { .. });
        let is_timeout_now = m.body == MessageBody::TimeoutNow;
        self.say(text);
        let result = self.node_mut(to).map(|n| n.step(m));
        if let Some(Err(e)) = result {
            self.say(format!("  error: {e}"));
        }
        self.observe(to, before);
        if snapshot {
            // The stream ended: the sender's transport reports it delivered.
            self.report_snapshot(from, to, true);
        }
        if is_timeout_now
            && before.soft.role == Role::Follower
            && self
                .seen(to)
                .is_some_and(|s| s.soft.role == Role::Candidate)
        {
            self.coverage.transfer_campaigns += 1;
        }
        // What the append proved, if the follower took it from the leader of its term.
        let Some(now) = self.seen(to) else { return };
        if now.term == term && now.soft.role == Role::Follower && now.soft.leader == Some(from) {
            if let Some(proven) = append {
                self.history.proven(to, term, proven);
            }
            if now.commit > before.commit
                && let Err(v) = self.history.check_follower_commit(to, term, now.commit)
            {
                self.fail(Verdict::Safety(v));
            }
        }
    }

    /// For an append the recipient's log accepts (it holds `prev_index` with `prev_term`), the
    /// highest index that the append proves matches the leader's log: its last entry, or the
    /// recipient's commit index when the append is older than that. Counts the hard case of an
    /// append whose entries all match with a stale tail beyond them.
    fn append_proof(&mut self, m: &Message, commit: Index) -> Option<Index> {
        if let MessageBody::Snapshot { snapshot } = &m.body {
            // A snapshot is the leader's committed prefix: the follower that takes it (or already
            // holds it) matches the leader up to its index.
            return Some(snapshot.metadata.index.max(commit));
        }
        let MessageBody::Append {
            prev_index,
            prev_term,
            entries,
            ..
        } = &m.body
        else {
            return None;
        };
        let n = self.node(m.to)?;
        let term_at = |i: Index| -> Option<Term> { n.term(i).ok() };
        if term_at(*prev_index) != Some(*prev_term) {
            return None;
        }
        let last_new = *prev_index + entries.len() as u64;
        let last = n.status().last_index;
        if last > last_new
            && !entries.is_empty()
            && entries.iter().all(|e| term_at(e.index) == Some(e.term))
        {
            // The tail is stale if the sender's log differs from it there.
            let tail = term_at(last_new + 1);
            let leader = self.node(m.from).and_then(|l| l.term(last_new + 1).ok());
            self.coverage.matching_append_tail += 1;
            if tail.is_some() && tail != leader {
                self.coverage.matching_append_stale_tail += 1;
            }
        }
        Some(if *prev_index < commit {
            commit
        } else {
            last_new
        })
    }

    /// Delivers every message queued now, in order. Replies they cause are queued behind and wait
    /// for the next round.
    pub fn deliver_all(&mut self) {
        let n = self.queue.len();
        for _ in 0..n {
            self.deliver_at(0);
        }
    }

    /// Handles Readys and delivers messages until nothing is left to do. Returns whether it
    /// settled; if it did not within [`STABILIZE_ROUNDS`] rounds (only a livelock could take so
    /// long), records a liveness failure.
    pub fn stabilize(&mut self) -> bool {
        for _ in 0..STABILIZE_ROUNDS {
            if self.has_failed() {
                return false;
            }
            let mut busy = false;
            for id in self.ids() {
                // A Ready left half-handled by step commands is finished first.
                if self.has_outstanding(id) {
                    self.advance(id);
                    busy = true;
                }
                busy |= self.process(id);
            }
            if !self.queue.is_empty() {
                busy = true;
                self.deliver_all();
            }
            if !busy {
                return true;
            }
        }
        self.fail(Verdict::Liveness(format!(
            "did not stabilize in {STABILIZE_ROUNDS} rounds"
        )));
        false
    }

    /// Runs every safety check against the current state.
    pub fn check_safety(&mut self) -> Result<(), String> {
        super::safety::check(self)
    }

    /// One line per node: `n1@2 leader last=5@2 commit=5 applied=5 [progress 2:5→6 3:5→6]`.
    pub fn status_lines(&self, ids: &[NodeId]) -> String {
        let mut s = String::new();
        for &id in ids {
            let Some(n) = self.node(id) else {
                let _ = writeln!(s, "n{id} down");
                continue;
            };
            let st = n.status();
            let last_term = n.term(st.last_index).ok();
            let _ = write!(
                s,
                "n{id}@{} {}",
                st.hard_state.term,
                role_text(st.soft_state)
            );
            let _ = write!(
                s,
                " last={}@{} commit={} applied={}",
                st.last_index,
                last_term.unwrap_or(0),
                st.hard_state.commit,
                st.applied
            );
            if !st.progress.is_empty() {
                let peers: Vec<String> = st
                    .progress
                    .iter()
                    .filter(|(p, _)| **p != id)
                    .map(|(p, pr)| format!("{p}:{}→{}", pr.match_index, pr.next_index))
                    .collect();
                let _ = write!(s, " progress={{{}}}", peers.join(" "));
            }
            if let Some(to) = st.lead_transferee {
                let _ = write!(s, " transferring→n{to}");
            }
            s.push('\n');
        }
        s
    }
}

/// A role in the scenario notation: `follower(n1)` for a follower of n1, `follower` when it
/// knows no leader, otherwise the role's name.
pub fn role_text(soft: SoftState) -> String {
    match (soft.role, soft.leader) {
        (Role::Follower, Some(l)) => format!("follower(n{l})"),
        (role, _) => role.to_string(),
    }
}

/// Node ids as `[1 2 3]`.
pub(super) fn list(ids: &[NodeId]) -> String {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    format!("[{}]", ids.join(" "))
}

/// Entries as `[2@1 3@1]`.
pub fn entry_list(entries: &[Entry]) -> String {
    let list: Vec<String> = entries
        .iter()
        .map(|e| format!("{}@{}", e.index, e.term))
        .collect();
    format!("[{}]", list.join(" "))
}
