//! Handling a Ready in steps, and the disk model under it.
//!
//! A real node handles a Ready in order: send `messages` (allowed before persisting), write the
//! hard state and entries, sync them if `must_sync`, send `persisted_messages`, apply the
//! committed entries, `advance`. The simulation exposes each step ([`Cluster::take_ready`],
//! [`Cluster::send_messages`], [`Cluster::write`] / [`Cluster::sync`] or [`Cluster::persist`],
//! [`Cluster::send_persisted`], [`Cluster::advance`]) so that a scenario or a property schedule
//! can deliver traffic, or crash the node, between any two of them; [`Cluster::process`] does
//! them all in order.
//!
//! The disk is two layers: `synced`, what an fsync made durable, and the node's own `MemStorage`,
//! `synced` plus the writes since the last sync (the page cache: the node reads what it wrote at
//! once). A write lands in the second layer; a sync (done only if the Ready says `must_sync`)
//! copies it into the first; a crash keeps the first and loses the rest ([`unsynced`] says what).
//!
//! Non-goals: torn or reordered writes within a Ready (the `wal` crate's tests own those).

use std::fmt::Write as _;

use super::cluster::{Cluster, entry_list};
use super::safety::{self, Verdict};
use crate::{ConfChange, Entry, EntryKind, MemStorage, NodeId, RawNode, Ready, Storage};

/// An outstanding Ready, taken apart step by step (each part is moved out when its step is done).
pub(super) struct Stage {
    pub(super) rd: Ready,
    pub(super) sent: bool,
    pub(super) written: bool,
    pub(super) synced: bool,
    pub(super) persisted_sent: bool,
}

/// The steps of handling a Ready.
impl Cluster {
    /// Step 1 of handling a Ready: takes node `id`'s Ready, if it has one and none is
    /// outstanding, and checks the rules a Ready must follow. Returns whether it took one.
    pub fn take_ready(&mut self, id: NodeId) -> bool {
        let Some(r) = self.running(id) else {
            return false;
        };
        if r.stage.is_some() || !r.node.has_ready() {
            return false;
        }
        let rd = r.node.ready();
        let last_hs = r.last_hs;
        if let Some(hs) = rd.hard_state {
            r.last_hs = hs;
        }
        let check = safety::check_ready(id, &rd, last_hs);
        let read_states = rd.read_states.clone();
        let dropped = rd.dropped_reads.len() as u64;
        r.stage = Some(Stage {
            rd,
            sent: false,
            written: false,
            synced: false,
            persisted_sent: false,
        });
        self.coverage.reads_answered += read_states.len() as u64;
        self.coverage.reads_dropped += dropped;
        if let Err(v) = check.and_then(|()| self.history.check_read_states(id, &read_states)) {
            self.fail(Verdict::Safety(v));
        }
        true
    }

    fn stage(&mut self, id: NodeId) -> Option<&mut Stage> {
        self.running(id)?.stage.as_mut()
    }

    /// Step 2: sends the outstanding Ready's `messages` (allowed before persisting).
    pub fn send_messages(&mut self, id: NodeId) {
        let Some(st) = self.stage(id).filter(|st| !st.sent) else {
            return;
        };
        st.sent = true;
        let msgs = std::mem::take(&mut st.rd.messages);
        self.enqueue(msgs);
    }

    /// Step 3a: writes the Ready's snapshot, hard state and entries, without syncing: the node reads them
    /// at once, a crash loses them.
    fn write_ready(&mut self, id: NodeId) -> Option<String> {
        let r = self.running(id)?;
        let st = r.stage.as_mut().filter(|st| !st.written)?;
        st.written = true;
        let entries = std::mem::take(&mut st.rd.entries);
        let hs = st.rd.hard_state;
        let prev = r.node.storage().hard_state();
        let mut what = String::new();
        // Ready rule 1: the snapshot first; the entries continue it. It stays in the Ready, for
        // the application to load at `advance` (rule 4).
        if let Some(snap) = &st.rd.snapshot {
            let m = &snap.metadata;
            let _ = write!(what, " snapshot={}@{}", m.index, m.term);
            if let Err(e) = r.node.storage_mut().apply_snapshot((**snap).clone()) {
                let _ = write!(what, " (refused by storage: {e})");
            }
        }
        if let Some(hs) = hs {
            r.node.storage_mut().set_hard_state(hs);
            if (hs.term, hs.vote) != (prev.term, prev.vote) {
                let vote = hs.vote.map_or("none".to_string(), |v| format!("n{v}"));
                let _ = write!(what, " term={} vote={vote}", hs.term);
            }
        }
        if !entries.is_empty() {
            r.node.storage_mut().append(&entries);
            let _ = write!(what, " entries={}", entry_list(&entries));
        }
        Some(what)
    }

    /// Step 3b: syncs, if the Ready says it must (`must_sync`): everything written so far
    /// becomes durable. Returns whether it synced.
    fn sync_ready(&mut self, id: NodeId) -> bool {
        let Some(r) = self.running(id) else {
            return false;
        };
        let Some(st) = r.stage.as_mut().filter(|st| st.written && !st.synced) else {
            return false;
        };
        st.synced = true;
        if st.rd.must_sync {
            r.synced = r.node.storage().clone();
        }
        st.rd.must_sync
    }

    /// Step 3a alone (`write ID`): writes without syncing.
    pub fn write(&mut self, id: NodeId) {
        if let Some(what) = self.write_ready(id) {
            self.say(format!("n{id} write{what} (not synced)"));
        }
    }

    /// Step 3b alone (`sync ID`), after `write`.
    pub fn sync(&mut self, id: NodeId) {
        let pending = self.stage(id).is_some_and(|st| st.written && !st.synced);
        if pending {
            if self.sync_ready(id) {
                self.say(format!("n{id} sync"));
            } else {
                self.say(format!("n{id} sync not needed (must_sync is false)"));
            }
        }
    }

    /// Step 3: persists the outstanding Ready (write, then sync if `must_sync`).
    pub fn persist(&mut self, id: NodeId) {
        if let Some(what) = self.write_ready(id)
            && !what.is_empty()
        {
            self.say(format!("n{id} persist{what}"));
        }
        self.sync_ready(id);
    }

    /// Step 4: sends the Ready's `persisted_messages`, persisting first if not done yet.
    pub fn send_persisted(&mut self, id: NodeId) {
        self.persist(id);
        let Some(st) = self.stage(id).filter(|st| !st.persisted_sent) else {
            return;
        };
        st.persisted_sent = true;
        let msgs = std::mem::take(&mut st.rd.persisted_messages);
        self.enqueue(msgs);
    }

    /// Step 5: finishes the outstanding Ready (any step not done yet, in order), loads its
    /// snapshot and applies its committed entries, and calls `advance`.
    pub fn advance(&mut self, id: NodeId) {
        if !self.has_outstanding(id) {
            return;
        }
        self.send_messages(id);
        self.send_persisted(id);
        let Some(r) = self.running(id) else { return };
        let Some(st) = r.stage.take() else { return };
        let committed = st.rd.committed_entries;
        let (read_states, dropped) = (st.rd.read_states, st.rd.dropped_reads);
        let term = r.node.status().hard_state.term;
        // Ready rule 4: the snapshot is loaded before any entry is applied.
        if let Some(snap) = st.rd.snapshot {
            self.install(id, &snap);
        }
        self.apply(id, &committed, term);
        // The application applies each committed conf change before `advance` (Ready rule 4).
        for e in committed.iter().filter(|e| e.kind == EntryKind::ConfChange) {
            self.apply_conf_change(id, e);
        }
        // Printed after the apply: a read is served once its index is applied, not before.
        for rs in read_states {
            let ctx = String::from_utf8_lossy(&rs.context);
            self.say(format!("n{id} read ctx={ctx} index={}", rs.index));
        }
        for ctx in dropped {
            let ctx = String::from_utf8_lossy(&ctx);
            self.say(format!("n{id} read dropped ctx={ctx}"));
        }
        self.on_node(id, |n| n.advance());
    }

    /// Handles node `id`'s Ready if it has one, as a real node would: every step in order (take
    /// it, send the messages, persist, send the persisted messages, apply, advance). Returns
    /// whether there was one.
    pub fn process(&mut self, id: NodeId) -> bool {
        if !self.take_ready(id) {
            return false;
        }
        self.advance(id);
        true
    }

    fn apply(&mut self, id: NodeId, committed: &[Entry], term: u64) {
        if committed.is_empty() {
            return;
        }
        let Some(r) = self.running(id) else { return };
        r.app.apply(committed);
        let app = r.app;
        let mut line = format!("n{id} apply");
        for e in committed {
            line.push_str(&applied_entry(e));
        }
        self.say(line);
        if let Err(v) = self.history.applied(id, committed, term) {
            self.fail(Verdict::Safety(v));
        }
        if let Err(v) = self.history.state_at(id, app.applied, app.state) {
            self.fail(Verdict::Safety(v));
        }
    }
}

/// An applied entry as the output shows it: ` 2@1`, with its data (` 2@1=x`), or for a
/// membership change what it changes (` 3@1=conf-change(add n4)`).
pub(super) fn applied_entry(e: &Entry) -> String {
    let mut s = format!(" {}@{}", e.index, e.term);
    if e.kind == EntryKind::ConfChange {
        match ConfChange::decode(&e.data) {
            Ok(cc) => {
                let _ = write!(s, "=conf-change({cc})");
            }
            Err(_) => s.push_str("=conf-change(undecodable)"),
        }
    } else if !e.data.is_empty() {
        let _ = write!(s, "={}", String::from_utf8_lossy(&e.data));
    }
    s
}

/// What a crash of `node` would lose: its hard state, snapshot and entries beyond the synced
/// disk, as ` term=2 vote=n1 snapshot=5@2 entries=[6@2]`, or `None` if everything it wrote is
/// synced.
pub(super) fn unsynced(node: &RawNode<MemStorage>, synced: &MemStorage) -> Option<String> {
    let view = node.storage();
    let mut what = String::new();
    let (hs, shs) = (view.hard_state(), synced.hard_state());
    if (hs.term, hs.vote) != (shs.term, shs.vote) {
        let vote = hs.vote.map_or("none".to_string(), |v| format!("n{v}"));
        let _ = write!(what, " term={} vote={vote}", hs.term);
    }
    let (snap, synced_snap) = (
        view.snapshot().unwrap_or_default(),
        synced.snapshot().unwrap_or_default(),
    );
    if snap.metadata.index > synced_snap.metadata.index {
        let _ = write!(
            what,
            " snapshot={}@{}",
            snap.metadata.index, snap.metadata.term
        );
    }
    let all = |s: &MemStorage| {
        let (first, last) = (s.first_index().unwrap_or(1), s.last_index().unwrap_or(0));
        s.entries(first, last + 1, u64::MAX).unwrap_or_default()
    };
    let (v, d) = (all(view), all(synced));
    // The two logs may start at different indexes (one compacted further): compare by index.
    let synced_at = |e: &Entry| {
        let first = d.first().map_or(0, |f| f.index);
        e.index.checked_sub(first).and_then(|k| d.get(k as usize))
    };
    let same = v.iter().take_while(|e| synced_at(e) == Some(e)).count();
    if same < v.len() {
        let _ = write!(what, " entries={}", entry_list(&v[same..]));
    }
    (!what.is_empty()).then_some(what)
}
