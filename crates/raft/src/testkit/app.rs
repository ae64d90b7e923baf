//! The application side of a simulated node: its state machine ([`App`]), the snapshots it takes
//! and loads, and what its transport reports about the snapshots it carries (Raft §7).
//!
//! Raft leaves all of this to the application: when to snapshot and compact, how to load a
//! snapshot, how a snapshot travels and how its outcome is reported
//! ([`crate::RawNode::report_snapshot`]).
//! The simulation plays a simple application so that the safety checks can follow the state
//! across snapshots: the state is a hash chained over the entries applied, and a snapshot's data
//! is that state, so loading a snapshot is checked like applying entries (the state at an index
//! must be the same on every node, [`super::safety::History`]).

use bytes::Bytes;

use super::Cluster;
use super::cluster::list;
use super::safety::Verdict;
use crate::{Entry, Index, Message, MessageBody, NodeId, Storage};

/// A node's application: a state machine that folds every entry it applies into a hash, so that
/// two state machines at the same index are equal exactly when they applied the same entries. Its
/// snapshot data is that state ([`App::snapshot_data`]), so installing a snapshot is checked like
/// applying entries: the state it loads must be the state every node had at that index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct App {
    /// The last index applied (or loaded from a snapshot).
    pub applied: Index,
    /// The state: a hash chained over every entry applied, in order (FNV-1a).
    pub state: u64,
}

impl App {
    /// Applies `entries` in order.
    pub(super) fn apply(&mut self, entries: &[Entry]) {
        for e in entries {
            let mut h = if self.state == 0 {
                0xcbf2_9ce4_8422_2325
            } else {
                self.state
            };
            let bytes = e
                .index
                .to_le_bytes()
                .into_iter()
                .chain(e.term.to_le_bytes());
            for b in bytes.chain(e.data.iter().copied()) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            self.state = h;
            self.applied = e.index;
        }
    }

    /// The state as a snapshot's data: applied index, then state, little-endian.
    pub fn snapshot_data(&self) -> Bytes {
        let mut v = self.applied.to_le_bytes().to_vec();
        v.extend_from_slice(&self.state.to_le_bytes());
        Bytes::from(v)
    }

    /// The state a snapshot's data holds; `None` if it is not 16 bytes (not written by
    /// [`App::snapshot_data`]: an empty cluster's initial snapshot, or a corrupt one).
    pub fn from_snapshot_data(data: &[u8]) -> Option<App> {
        let applied = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
        let state = u64::from_le_bytes(data.get(8..16)?.try_into().ok()?);
        (data.len() == 16).then_some(App { applied, state })
    }
}

impl Cluster {
    /// The application of node `id` loads `snap` into its state machine.
    pub(super) fn install(&mut self, id: NodeId, snap: &crate::Snapshot) {
        let index = snap.metadata.index;
        let loaded = App::from_snapshot_data(&snap.data);
        let Some(r) = self.running(id) else { return };
        r.app = loaded.unwrap_or(App {
            applied: index,
            state: 0,
        });
        let app = r.app;
        self.coverage.snapshots_installed += 1;
        let voters = &snap.metadata.conf_state.voters;
        if !voters.contains(&id) {
            self.coverage.snapshots_installed_by_joiner += 1;
        }
        self.say(format!(
            "n{id} apply snapshot={index}@{} voters={}",
            snap.metadata.term,
            list(voters)
        ));
        // The application's configuration is the snapshot's now (the one as of `index`).
        self.apps.entry(id).or_default().load(voters);
        if let Err(v) = self.history.snapshot_conf(id, index, voters) {
            self.fail(Verdict::Safety(v));
        }
        let check = match loaded {
            Some(app) if app.applied == index => {
                self.history.applied_snapshot(id, index, app.state)
            }
            _ => Err(format!(
                "State Machine Safety: n{id} got a snapshot at {index} whose data is not the state at {index} ({app:?})"
            )),
        };
        if let Err(v) = check {
            self.fail(Verdict::Safety(v));
        }
    }

    /// The application of node `id` takes a snapshot of its state machine (at its applied index,
    /// with the configuration as of that index: the one its application holds, having applied
    /// every conf change up to there) and compacts its log up to `index` (at most the applied
    /// index). Snapshot and compaction go to the synced disk at once: a real application writes
    /// the snapshot file and syncs it before it drops any entry (the snap crate's order), and
    /// losing a compaction in a crash would only leave more log. Refused while a Ready is
    /// outstanding, whose writes would interleave.
    pub fn compact(&mut self, id: NodeId, index: Index) {
        if self.has_outstanding(id) {
            return self.say(format!("n{id}: compact refused: a Ready is outstanding"));
        }
        let Some(r) = self.running(id) else {
            return self.say(format!("n{id} is down"));
        };
        let app = r.app;
        let index = index.min(app.applied);
        // Not the storage's nor the node's current configuration: the snapshot's must be the one
        // as of its index, and the application's is exactly that (no Ready is outstanding, so
        // every conf change up to `app.applied` has been applied).
        let cs = crate::ConfState {
            voters: self
                .apps
                .get(&id)
                .map(|a| a.voters.clone())
                .unwrap_or_default(),
        };
        let Some(r) = self.running(id) else { return };
        let held = r
            .node
            .storage()
            .snapshot()
            .map(|s| s.metadata.index)
            .unwrap_or(0);
        let result = (|| -> Result<(), crate::StorageError> {
            if app.applied > held {
                r.node.storage_mut().create_snapshot(
                    app.applied,
                    cs.clone(),
                    app.snapshot_data(),
                )?;
                // The synced disk holds at least every applied entry (entries are always synced).
                r.synced
                    .create_snapshot(app.applied, cs, app.snapshot_data())?;
            }
            r.node.storage_mut().compact(index)?;
            r.synced.compact(index)
        })();
        match result {
            Ok(()) => self.say(format!("n{id} snapshot={} compacted={index}", app.applied)),
            Err(e) => self.say(format!("n{id} compact {index}: {e}")),
        }
    }

    /// The application of `from` reports the outcome of its snapshot to `to`
    /// ([`crate::RawNode::report_snapshot`]).
    pub fn report_snapshot(&mut self, from: NodeId, to: NodeId, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.say(format!("n{from} report-snapshot n{to} {outcome}"));
        self.on_node(from, |n| n.report_snapshot(to, ok));
    }

    /// The transport of `from` reports `to` unreachable ([`crate::RawNode::report_unreachable`]).
    pub fn report_unreachable(&mut self, from: NodeId, to: NodeId) {
        self.say(format!("n{from} report-unreachable n{to}"));
        self.on_node(from, |n| n.report_unreachable(to));
    }

    /// A snapshot message from `m.from` did not arrive: its transport notices (a snapshot is a
    /// stream with an end, unlike a fire-and-forget message) and the application reports it.
    pub(super) fn snapshot_lost(&mut self, m: &Message) {
        if matches!(m.body, MessageBody::Snapshot { .. }) {
            self.coverage.snapshots_lost += 1;
            self.report_snapshot(m.from, m.to, false);
        }
    }
}
