//! The faults the simulated [`Cluster`] can suffer: links cut (one pair, one node, a partition),
//! messages dropped (one, by kind, every snapshot), duplicated, or resent by a leader as an
//! unoptimized back-off would, and crashes (at any step of a Ready, or of the leader in the middle
//! of replicating) with restarts from the synced disk.
//!
//! A crash keeps exactly what the node synced (see `ready_steps.rs` for the disk model) and what
//! its state machine applied; messages already sent stay in the network. Non-goals: message
//! delays beyond reordering (the queue is the network: any message may be delivered next).

use bytes::Bytes;

use super::cluster::{Cluster, Running, Sim};
use super::ready_steps::unsynced;
use crate::{Message, MessageBody, NodeId, Role, Storage};

/// Network and node faults.
impl Cluster {
    /// Drops the queued message at `i`.
    pub fn drop_at(&mut self, i: usize) {
        if i < self.queue.len() {
            let m = self.queue.remove(i);
            self.say(format!("{m} (dropped)"));
            self.snapshot_lost(&m);
        }
    }

    /// Drops every snapshot in the network (each is reported failed by its sender's transport):
    /// a snapshot is big and slow, the message most likely to be lost to a broken stream.
    pub fn drop_snapshots(&mut self) {
        while let Some(i) = self
            .queue
            .iter()
            .position(|m| matches!(m.body, MessageBody::Snapshot { .. }))
        {
            self.drop_at(i);
        }
    }

    /// Duplicates the queued message at `i` (the copy goes to the end of the queue).
    pub fn duplicate_at(&mut self, i: usize) {
        if let Some(m) = self.queue.get(i).cloned() {
            self.enqueue(vec![m]);
        }
    }

    /// The leader `from` sends `to` the append that a leader backing off one index at a time
    /// (the paper's unoptimized back-off, fooled by duplicated rejections) could send: `count`
    /// entries of its log after index `last - back`, with its commit index. The leader's own
    /// view of `to` is not changed. Returns whether `from` leads.
    ///
    /// This is how a follower receives an append whose entries all match its log while it holds
    /// a stale tail beyond them (Figure 2, AppendEntries rule 5): raftwood's own back-off never
    /// goes below the point where the logs diverge.
    pub fn resend_append(&mut self, from: NodeId, to: NodeId, back: u64, count: u64) -> bool {
        let Some(n) = self.node(from) else {
            return false;
        };
        let st = n.status();
        if st.soft_state.role != Role::Leader || from == to {
            return false;
        }
        let prev = st.last_index.saturating_sub(back);
        let prev_term = match prev {
            0 => 0,
            p => match n.entries(p, p + 1) {
                Ok(e) => e[0].term,
                Err(_) => return false,
            },
        };
        let high = (prev + count).min(st.last_index);
        let entries = n.entries(prev + 1, high + 1).unwrap_or_default();
        let m = Message {
            from,
            to,
            term: st.hard_state.term,
            body: MessageBody::Append {
                prev_index: prev,
                prev_term,
                entries,
                commit: st.hard_state.commit,
            },
        };
        self.enqueue(vec![m]);
        true
    }

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
        self.cut.clear();
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

    /// Makes the network drop every message of `kind` (a [`MessageBody::name`], such as
    /// `TimeoutNow`) at delivery, until [`Cluster::heal`].
    pub fn drop_kind(&mut self, kind: &str) {
        self.dropped_kinds.insert(kind.to_string());
    }

    /// Restores every link, and stops dropping messages by kind.
    pub fn heal(&mut self) {
        self.cut.clear();
        self.dropped_kinds.clear();
    }

    /// Crashes node `id`: everything it has not synced is lost (the writes of a Ready not yet
    /// synced, and the outstanding Ready itself); its synced disk remains, and what its state
    /// machine applied. Messages it already sent stay in the network.
    pub fn crash(&mut self, id: NodeId) {
        let Some(Sim::Up(r)) = self.nodes.get(&id) else {
            return;
        };
        let c = &mut self.coverage;
        match &r.stage {
            Some(st) if st.written && !st.synced => c.crash_written_unsynced += 1,
            Some(st) if st.synced && !st.persisted_sent => c.crash_synced_unsent += 1,
            Some(st) if st.persisted_sent => c.crash_before_advance += 1,
            _ => {}
        }
        let lost = unsynced(&r.node, &r.synced);
        let Some(Sim::Up(r)) = self.nodes.remove(&id) else {
            return;
        };
        let Running { synced, app, .. } = *r;
        self.nodes.insert(id, Sim::Down { disk: synced, app });
        let last = self.disk(id).and_then(|d| d.last_index().ok()).unwrap_or(0);
        self.history.crashed(id, last);
        match lost {
            Some(lost) => self.say(format!("n{id} crashed, losing unsynced{lost}")),
            None => self.say(format!("n{id} crashed")),
        }
    }

    /// Crashes node `id` in the middle of handling a Ready: the messages that may be sent at once
    /// have gone out, but nothing was persisted. Rule 2 of the Ready contract says this is safe.
    pub fn crash_mid_ready(&mut self, id: NodeId) {
        self.take_ready(id);
        self.send_messages(id);
        self.crash(id);
    }

    /// The leader crashes in the middle of replicating: its second-newest entry has reached
    /// every follower (unacknowledged, so not committed), its newest only one follower. If a
    /// follower without the newest entry is elected next, the one that has it holds a stale tail
    /// past an uncommitted entry that matches the new leader's log: the situation of Figure 2's
    /// AppendEntries rule 5 (and of Figure 7's followers). Does nothing without a leader.
    pub fn crash_leader_mid_replication(&mut self) {
        let Some(l) = self.leader() else {
            return self.say("no leader");
        };
        self.propose(l, Bytes::from_static(b"m"));
        self.process(l);
        self.deliver_all();
        for id in self.ids() {
            if id != l {
                self.process(id);
            }
        }
        self.propose(l, Bytes::from_static(b"s"));
        self.process(l);
        if let Some(i) = self.queue.iter().position(|m| {
            m.from == l
                && matches!(&m.body, MessageBody::Append { entries, .. } if !entries.is_empty())
        }) {
            let to = self.queue[i].to;
            self.deliver_at(i);
            self.process(to);
        }
        self.crash(l);
    }

    /// Restarts a crashed node from its synced disk. With `keep_applied`, its state machine
    /// kept what it had applied, and `Config::applied` says so; otherwise it starts empty and
    /// applies the log again.
    pub fn restart(&mut self, id: NodeId, keep_applied: bool) {
        if matches!(self.nodes.get(&id), Some(Sim::Down { .. })) {
            self.start(id, keep_applied);
            if keep_applied {
                self.coverage.restart_with_applied += 1;
                let applied = self.history.applied_index(id);
                self.say(format!("n{id} restarted applied={applied}"));
            } else {
                self.say(format!("n{id} restarted"));
            }
        }
    }
}
