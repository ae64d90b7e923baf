//! The simulated cluster: nodes, their disks, and the network between them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use bytes::Bytes;

use super::safety::History;
use crate::{Config, Entry, MemStorage, Message, NodeId, RawNode, Ready};

/// How the cluster's nodes are configured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
}

/// A node of the simulation: running, or crashed with only its disk left.
enum Sim {
    Up(Box<RawNode<MemStorage>>),
    Down(MemStorage),
}

/// A deterministic in-memory cluster. Messages wait in one queue until delivered, dropped,
/// duplicated or reordered; links can be cut; nodes crash and restart from exactly what they
/// persisted (their `MemStorage`, written only while handling a Ready).
///
/// Everything that happens is written to an output buffer ([`Cluster::take_output`]) in the
/// scenario notation, and recorded in a [`History`] that the safety checks read.
pub struct Cluster {
    nodes: BTreeMap<NodeId, Sim>,
    configs: BTreeMap<NodeId, Config>,
    queue: Vec<Message>,
    /// Directed links that drop everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    out: String,
    /// What the safety checks need to remember.
    pub history: History,
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
        let mut c = Cluster {
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            queue: Vec::new(),
            cut: BTreeSet::new(),
            out: String::new(),
            history: History::default(),
        };
        for (id, disk) in disks {
            let mut config = Config::new(id);
            config.heartbeat_tick = 1;
            config.election_tick = 10;
            config.pre_vote = opts.pre_vote;
            config.check_quorum = opts.check_quorum;
            config.seed = config.seed.wrapping_add(opts.seed);
            if let Some(size) = opts.max_size_per_msg {
                config.max_size_per_msg = size;
            }
            if let Some(n) = opts.max_inflight_msgs {
                config.max_inflight_msgs = n;
            }
            c.configs.insert(id, config);
            c.nodes.insert(id, Sim::Down(disk));
            c.start(id);
        }
        c
    }

    fn start(&mut self, id: NodeId) {
        let Some(Sim::Down(disk)) = self.nodes.remove(&id) else {
            return;
        };
        let config = self.configs[&id].clone();
        // The disk was written by this testkit, so it is consistent; failing here is a test bug.
        let node = RawNode::new(config, disk).expect("testkit: restart from a consistent disk");
        self.history.restarted(id);
        self.nodes.insert(id, Sim::Up(Box::new(node)));
    }

    /// The ids of all nodes, crashed or not.
    pub fn ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    /// The running node `id`, if it is up.
    pub fn node(&self, id: NodeId) -> Option<&RawNode<MemStorage>> {
        match self.nodes.get(&id) {
            Some(Sim::Up(n)) => Some(n),
            _ => None,
        }
    }

    fn node_mut(&mut self, id: NodeId) -> Option<&mut RawNode<MemStorage>> {
        match self.nodes.get_mut(&id) {
            Some(Sim::Up(n)) => Some(n),
            _ => None,
        }
    }

    /// Running nodes.
    pub fn up_nodes(&self) -> impl Iterator<Item = &RawNode<MemStorage>> {
        self.nodes.values().filter_map(|s| match s {
            Sim::Up(n) => Some(&**n),
            Sim::Down(_) => None,
        })
    }

    /// The disk of node `id`: what it has persisted, whether it is up or down.
    pub fn disk(&self, id: NodeId) -> Option<&MemStorage> {
        match self.nodes.get(&id)? {
            Sim::Up(n) => Some(n.storage()),
            Sim::Down(d) => Some(d),
        }
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

    /// Writes a line to the output.
    pub fn say(&mut self, line: impl AsRef<str>) {
        self.out.push_str(line.as_ref());
        self.out.push('\n');
    }

    // --- Driving the nodes ---

    /// Ticks node `id` once.
    pub fn tick(&mut self, id: NodeId) {
        if let Some(n) = self.node_mut(id) {
            n.tick();
        }
    }

    /// Makes node `id` campaign now.
    pub fn campaign(&mut self, id: NodeId) {
        if let Some(n) = self.node_mut(id) {
            n.campaign();
        }
    }

    /// Proposes `data` on node `id`, writing any error to the output.
    pub fn propose(&mut self, id: NodeId, data: Bytes) {
        let Some(n) = self.node_mut(id) else {
            return self.say(format!("n{id} is down"));
        };
        if let Err(e) = n.propose(data) {
            self.say(format!("n{id} propose: {e}"));
        }
    }

    /// Handles node `id`'s Ready if it has one, as a real node would: send the messages, persist,
    /// send the persisted messages, apply, advance. Returns whether there was one.
    pub fn process(&mut self, id: NodeId) -> bool {
        let Some(n) = self.node_mut(id) else {
            return false;
        };
        if !n.has_ready() {
            return false;
        }
        let rd = n.ready();
        let Ready {
            soft_state,
            hard_state,
            entries,
            committed_entries,
            messages,
            persisted_messages,
            ..
        } = rd;
        // Handling in the order of the Ready contract.
        let n = self.node_mut(id).expect("node is up");
        let prev = n.storage().hard_state();
        if let Some(hs) = hard_state {
            n.storage_mut().set_hard_state(hs);
        }
        n.storage_mut().append(&entries);
        let status = n.status();
        n.advance();
        if let Some(ss) = soft_state {
            let who = ss.leader.map_or("none".to_string(), |l| format!("n{l}"));
            self.say(format!(
                "n{id}@{} {} (leader {who})",
                status.hard_state.term, ss.role
            ));
            self.history
                .observe_role(id, status.hard_state.term, ss.role);
        }
        if let Some(hs) = hard_state.filter(|hs| (hs.term, hs.vote) != (prev.term, prev.vote)) {
            let vote = hs.vote.map_or("none".to_string(), |v| format!("n{v}"));
            self.say(format!("n{id} persist term={} vote={vote}", hs.term));
        }
        for m in messages.into_iter().chain(persisted_messages) {
            self.queue.push(m);
        }
        self.apply(id, &committed_entries, status.hard_state.term);
        true
    }

    fn apply(&mut self, id: NodeId, committed: &[Entry], term: u64) {
        if committed.is_empty() {
            return;
        }
        let mut line = format!("n{id} apply");
        for e in committed {
            let _ = write!(line, " {}@{}", e.index, e.term);
            if !e.data.is_empty() {
                let _ = write!(line, "={}", String::from_utf8_lossy(&e.data));
            }
        }
        self.say(line);
        if let Err(v) = self.history.applied(id, committed, term) {
            self.say(format!("SAFETY VIOLATION: {v}"));
        }
    }

    /// Delivers the queued message at `i` (if any), unless its link is cut or its recipient down.
    pub fn deliver_at(&mut self, i: usize) {
        if i >= self.queue.len() {
            return;
        }
        let m = self.queue.remove(i);
        let text = m.to_string();
        if self.cut.contains(&(m.from, m.to)) {
            return self.say(format!("{text} (dropped: link cut)"));
        }
        let Some(n) = self.node_mut(m.to) else {
            return self.say(format!("{text} (dropped: n{} down)", m.to));
        };
        let result = n.step(m);
        self.say(text);
        if let Err(e) = result {
            self.say(format!("  error: {e}"));
        }
    }

    /// Delivers every message queued now, in order. Replies they cause are queued behind and wait
    /// for the next round.
    pub fn deliver_all(&mut self) {
        let n = self.queue.len();
        for _ in 0..n {
            self.deliver_at(0);
        }
    }

    /// Drops the queued message at `i`.
    pub fn drop_at(&mut self, i: usize) {
        if i < self.queue.len() {
            let m = self.queue.remove(i);
            self.say(format!("{m} (dropped)"));
        }
    }

    /// Duplicates the queued message at `i` (the copy goes to the end of the queue).
    pub fn duplicate_at(&mut self, i: usize) {
        if let Some(m) = self.queue.get(i).cloned() {
            self.queue.push(m);
        }
    }

    /// Handles Readys and delivers messages until nothing is left to do (or a bound of rounds is
    /// reached, which only a livelock could hit). Returns whether it settled.
    pub fn stabilize(&mut self) -> bool {
        for _ in 0..10_000 {
            let mut busy = false;
            for id in self.ids() {
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
        false
    }

    // --- Faults ---

    /// Cuts the links between `a` and `b`, both ways.
    pub fn cut(&mut self, a: NodeId, b: NodeId) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Cuts node `id` off from everyone.
    pub fn isolate(&mut self, id: NodeId) {
        for other in self.ids() {
            if other != id {
                self.cut(id, other);
            }
        }
    }

    /// Splits the cluster into groups that can talk only within themselves. Nodes in no group are
    /// isolated.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        self.heal();
        let group_of = |id: NodeId| groups.iter().position(|g| g.contains(&id));
        let ids = self.ids();
        for &a in &ids {
            for &b in &ids {
                if a != b && (group_of(a).is_none() || group_of(a) != group_of(b)) {
                    self.cut.insert((a, b));
                }
            }
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Crashes node `id`: everything it has not persisted is lost; its disk remains. Messages it
    /// already sent stay in the network.
    pub fn crash(&mut self, id: NodeId) {
        if let Some(Sim::Up(n)) = self.nodes.remove(&id) {
            let disk = n.storage().clone();
            self.nodes.insert(id, Sim::Down(disk));
            self.history.crashed(id);
            self.say(format!("n{id} crashed"));
        }
    }

    /// Crashes node `id` in the middle of handling a Ready: the messages that may be sent at once
    /// have gone out, but nothing was persisted. Rule 2 of the Ready contract says this is safe.
    pub fn crash_mid_ready(&mut self, id: NodeId) {
        if let Some(n) = self.node_mut(id)
            && n.has_ready()
        {
            let rd = n.ready();
            self.queue.extend(rd.messages);
        }
        self.crash(id);
    }

    /// Restarts a crashed node from its disk.
    pub fn restart(&mut self, id: NodeId) {
        if matches!(self.nodes.get(&id), Some(Sim::Down(_))) {
            self.start(id);
            self.say(format!("n{id} restarted"));
        }
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
            let last_term = n
                .entries(st.last_index, st.last_index + 1)
                .ok()
                .and_then(|e| e.first().map(|e| e.term));
            let _ = write!(s, "n{id}@{} {}", st.hard_state.term, st.soft_state.role);
            if let Some(l) = st.soft_state.leader.filter(|&l| l != id) {
                let _ = write!(s, "(n{l})");
            }
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
            s.push('\n');
        }
        s
    }
}
