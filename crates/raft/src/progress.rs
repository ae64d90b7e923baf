//! What a leader knows of each follower's log (Raft Figure 2, "Volatile state on leaders":
//! `nextIndex` and `matchIndex`), and the flow control built on it.
//!
//! A follower's progress is in one of three states, as in etcd (`tracker/progress.go`, and the
//! diagram in its `design.md`). Each state carries what only it needs:
//!
//! ```text
//!                     elected: every follower starts here
//!                                   |
//!                                   v
//!    probe sent: paused     +-----------------+  report_snapshot(ok), or failed:
//!    answer or heartbeat    |      Probe      |<-------------------------------+
//!    response: unpaused     |   { paused }    |  paused (ok: next = pending+1) |
//!    no append can be       +-----------------+                                |
//!    built: paused              |    ^     |                                   |
//!                               |    |     | next_index compacted:             |
//!     append accepted: the logs |    |     | the snapshot is sent              |
//!     agree up to match_index   |    |     v                                   |
//!     (or confirm it)           |    |   +-----------------+                   |
//!                               |    |   |    Snapshot     |-------------------+
//!     append rejected past      |    |   |   { pending }   |  sends nothing; an append
//!     match_index; no append    |    |   +-----------------+  accepted at or past the first
//!     can be built;             |    |     ^          |       index: Probe, then Replicate
//!     report_unreachable        v    |     |          v
//!                           +-----------------+  next_index compacted
//!    append sent: one more  |    Replicate    |
//!    in flight; accepted:   |  { inflights }  |   stream appends, at most
//!    freed up to its index  +-----------------+   max_inflight_msgs unacknowledged
//! ```
//!
//! - **Probe**: the leader does not know where the logs agree. It sends one append and pauses
//!   until the follower answers it (or answers a heartbeat: the probe or its answer may have been
//!   lost), backing `next_index` off on each rejection.
//! - **Replicate**: the logs agree up to `match_index`. The leader streams appends optimistically,
//!   advancing `next_index` as it sends, with at most `max_inflight_msgs` of them unacknowledged.
//!   A heartbeat response does not free a slot (the follower may acknowledge nothing at all); it
//!   only lets the leader send one *empty* append, whose answer tells where the follower stands:
//!   accepted (acknowledgements were lost: the window frees) or rejected (appends were lost: back
//!   to Probe). The transport's [`crate::RawNode::report_unreachable`] also sends it back to
//!   Probe: appends streamed into a dead link are lost.
//! - **Snapshot**: the follower needs entries the leader has compacted (Raft §7), so the leader
//!   sent its snapshot, ending at `pending`, and sends nothing more until the application reports
//!   the transfer with [`crate::RawNode::report_snapshot`] (either way: Probe, paused until the
//!   follower answers) or the follower acknowledges an index at or past the log's first index
//!   (Probe, then at once Replicate: the logs agree there).

use std::collections::VecDeque;

use crate::types::Index;

/// The replication state of one follower, seen from the leader. Changed only through its methods,
/// each named after the event that causes the change.
///
/// Invariant: `match_index < next_index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The highest index known to be replicated on the follower.
    match_index: Index,
    /// The index of the next entry to send.
    next_index: Index,
    /// Probe, Replicate or Snapshot, with what only that state needs.
    state: ProgressState,
    /// Whether the follower has been heard from since the last CheckQuorum round.
    recent_active: bool,
    /// The highest commit index sent to the follower that its log can use, so that a commit
    /// advance is announced once, not on every Ready.
    sent_commit: Index,
    /// The size of the inflight window in the replicate state (`Config::max_inflight_msgs`).
    max_inflight: usize,
    /// The byte budget of that window (`Config::max_inflight_bytes`; `0`: none).
    max_inflight_bytes: u64,
}

/// The flow-control state of a [`Progress`] (see the diagram in the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Finding where the logs agree, one append at a time.
    Probe {
        /// A probe is outstanding: send nothing until the follower is heard from.
        paused: bool,
    },
    /// Streaming appends, up to the inflight window.
    Replicate {
        /// The last index of each append in flight, oldest first.
        inflights: Inflights,
    },
    /// A snapshot is in flight; nothing else is sent until its outcome is known.
    Snapshot {
        /// The index the snapshot ends at.
        pending: Index,
    },
}

impl Progress {
    /// A progress that will probe from `next_index`, with an inflight window of `max_inflight`
    /// appends once it replicates.
    pub fn new(next_index: Index, max_inflight: usize) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe { paused: false },
            recent_active: false,
            sent_commit: 0,
            max_inflight,
            max_inflight_bytes: 0,
        }
    }

    /// The same progress with a byte budget for its inflight window (`Config::max_inflight_bytes`;
    /// `0`: none), beside the count of appends.
    pub fn with_max_inflight_bytes(mut self, max_bytes: u64) -> Progress {
        self.max_inflight_bytes = max_bytes;
        self
    }

    /// The highest index known to be replicated on the follower (Figure 2, `matchIndex`).
    pub fn match_index(&self) -> Index {
        self.match_index
    }

    /// The index of the next entry to send (Figure 2, `nextIndex`).
    pub fn next_index(&self) -> Index {
        self.next_index
    }

    /// Probe, Replicate or Snapshot.
    pub fn state(&self) -> &ProgressState {
        &self.state
    }

    /// Whether the leader streams to this follower.
    pub fn is_replicating(&self) -> bool {
        matches!(self.state, ProgressState::Replicate { .. })
    }

    /// Whether the leader must wait before sending this follower another append: a probe is
    /// outstanding, the inflight window is full (by count or by bytes), or a snapshot is in
    /// flight.
    pub fn is_paused(&self) -> bool {
        match &self.state {
            ProgressState::Probe { paused } => *paused,
            ProgressState::Replicate { inflights } => inflights.is_full(),
            ProgressState::Snapshot { .. } => true,
        }
    }

    /// Whether a snapshot is in flight to this follower.
    pub fn is_snapshotting(&self) -> bool {
        matches!(self.state, ProgressState::Snapshot { .. })
    }

    /// Whether the leader's commit index `committed` tells this follower something new: a higher
    /// commit index than it was sent, within the entries it has or has been sent.
    pub fn has_commit_news(&self, committed: Index) -> bool {
        committed.min(self.next_index - 1) > self.sent_commit
    }

    /// Switches to probing from just after the match index, or, leaving the snapshot state,
    /// from just after the snapshot if that is further: a snapshot reported delivered is assumed
    /// installed (etcd's `BecomeProbe`).
    pub fn become_probe(&mut self) {
        self.next_index = match self.state {
            ProgressState::Snapshot { pending } => self.match_index.max(pending) + 1,
            _ => self.match_index + 1,
        };
        self.state = ProgressState::Probe { paused: false };
    }

    /// The leader sent the follower its snapshot, ending at `pending` (Raft §7): nothing more is
    /// sent until the outcome is known (etcd's `BecomeSnapshot`).
    pub fn become_snapshot(&mut self, pending: Index) {
        self.state = ProgressState::Snapshot { pending };
        self.next_index = self.next_index.max(pending + 1);
    }

    /// The application reports the snapshot transfer done (`ok`) or failed. Either way the
    /// follower is probed, paused until it is heard from: after a success its acknowledgement of
    /// the snapshot is on the way; after a failure, its next heartbeat response retries (etcd's
    /// `MsgSnapStatus`). A failed transfer probes from the match index, so the snapshot (or the
    /// entries, if the follower caught up meanwhile) is sent again. Outside the snapshot state a
    /// report is stale and changes nothing; returns whether it applied.
    pub fn snapshot_reported(&mut self, ok: bool) -> bool {
        if !self.is_snapshotting() {
            return false;
        }
        if !ok {
            self.state = ProgressState::Snapshot { pending: 0 };
        }
        self.become_probe();
        self.state = ProgressState::Probe { paused: true };
        true
    }

    /// The transport could not reach the follower: appends streamed to it may be lost, so a
    /// replicating follower is probed again (etcd's `MsgUnreachable`). Other states already wait
    /// for an answer. Returns whether the state changed.
    pub fn unreachable(&mut self) -> bool {
        if self.is_replicating() {
            self.become_probe();
            return true;
        }
        false
    }

    /// Switches to streaming from just after the match index, with an empty window.
    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate {
            inflights: Inflights::new(self.max_inflight).with_max_bytes(self.max_inflight_bytes),
        };
        self.next_index = self.match_index + 1;
    }

    /// Probes, with the probe counted as outstanding: nothing is sent until the follower is heard
    /// from again. Used when nothing can be sent to it (the storage failed, or the snapshot it
    /// needs is being prepared), so that the leader does not keep trying on every Ready.
    pub fn pause(&mut self) {
        self.become_probe();
        self.state = ProgressState::Probe { paused: true };
    }

    /// The follower answered a heartbeat, so it is up. In Probe, the outstanding probe (or its
    /// answer) was probably lost: another may go. In Replicate nothing changes: a full window
    /// stays full until appends are acknowledged, or a follower that acknowledges nothing would
    /// keep receiving entries.
    pub fn heartbeat_answered(&mut self) {
        if let ProgressState::Probe { paused } = &mut self.state {
            *paused = false;
        }
    }

    /// The appends in flight in the replicate state, as (count, payload bytes); `(0, 0)` when
    /// probing or sending a snapshot.
    pub fn inflight(&self) -> (usize, u64) {
        match &self.state {
            ProgressState::Probe { .. } | ProgressState::Snapshot { .. } => (0, 0),
            ProgressState::Replicate { inflights } => (inflights.len(), inflights.bytes()),
        }
    }

    /// Records that an append ending at `last` was sent, carrying the commit index `committed`
    /// and, if `carried_entries`, entries of `bytes` payload bytes in all (what the inflight byte
    /// budget counts).
    pub fn sent_append(
        &mut self,
        last: Index,
        carried_entries: bool,
        bytes: u64,
        committed: Index,
    ) {
        match &mut self.state {
            ProgressState::Probe { paused } => *paused = true,
            ProgressState::Snapshot { .. } => {
                debug_assert!(
                    false,
                    "invariant violated: append sent in the snapshot state"
                );
            }
            ProgressState::Replicate { inflights } if carried_entries => {
                debug_assert!(
                    !inflights.is_full(),
                    "invariant violated: append sent with a full inflight window"
                );
                inflights.add(last, bytes);
                self.next_index = last + 1;
            }
            // An empty append puts nothing in flight: it may go even with a full window.
            ProgressState::Replicate { .. } => {}
        }
        self.sent_commit = self.sent_commit.max(committed.min(last));
    }

    /// The follower's log is known to hold everything up to `index` (an acknowledgement, or the
    /// leader's own persisted log). Returns whether that was news (a stale or duplicated
    /// acknowledgement is not).
    pub fn maybe_update(&mut self, index: Index) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            if let ProgressState::Probe { paused } = &mut self.state {
                *paused = false;
            }
        }
        self.next_index = self.next_index.max(index + 1);
        updated
    }

    /// The follower accepted an append: its log matches ours up to `index`. Returns whether the
    /// match index advanced (which may commit).
    pub fn append_accepted(&mut self, index: Index) -> bool {
        let updated = self.maybe_update(index);
        match &mut self.state {
            // The probe found where the logs agree, or an answer at exactly the known match index
            // confirmed it (the probe carried nothing new): stream from here on (as in etcd).
            ProgressState::Probe { .. } if index == self.match_index => self.become_replicate(),
            ProgressState::Probe { .. } => {}
            ProgressState::Replicate { inflights } => inflights.free_to(index),
            // Left by the caller, which knows the log's first index (see `maybe_leave_snapshot`).
            ProgressState::Snapshot { .. } => {}
        }
        updated
    }

    /// In the snapshot state, once the follower is known to hold everything before the leader's
    /// `first_index` (it installed the snapshot, or caught up another way), the leader's log can
    /// continue it: probe, and at once stream, since the match index is where the logs agree
    /// (etcd does the same on an append response in `StateSnapshot`). Returns whether it left.
    pub fn maybe_leave_snapshot(&mut self, first_index: Index) -> bool {
        if self.is_snapshotting() && self.match_index + 1 >= first_index {
            self.become_probe();
            self.become_replicate();
            return true;
        }
        false
    }

    /// The follower rejected an append at `rejected`; `probe_hint` is where the logs may agree.
    /// Returns whether `next_index` moved back (false for a stale rejection).
    pub fn maybe_decrease_to(&mut self, rejected: Index, probe_hint: Index) -> bool {
        match self.state {
            // No append is sent in this state: any rejection answers one sent before it.
            ProgressState::Snapshot { .. } => false,
            ProgressState::Replicate { .. } => {
                // Rejections of appends sent before the follower matched are stale.
                if rejected <= self.match_index {
                    return false;
                }
                // An append was lost (a gap), or the logs diverge: find out where, one probe at
                // a time.
                self.become_probe();
                true
            }
            ProgressState::Probe { .. } => {
                // Only the answer to the probe we sent counts; older answers are stale.
                if self.next_index == 0 || self.next_index - 1 != rejected {
                    return false;
                }
                // The hint comes from the network: saturate rather than overflow on a forged one.
                self.next_index = rejected
                    .min(probe_hint.saturating_add(1))
                    .max(self.match_index + 1);
                self.state = ProgressState::Probe { paused: false };
                true
            }
        }
    }

    /// Marks the follower as heard from, for CheckQuorum.
    pub fn set_recent_active(&mut self) {
        self.recent_active = true;
    }

    /// Whether the follower was heard from since the last call, clearing the mark for the next
    /// CheckQuorum round.
    pub fn take_recent_active(&mut self) -> bool {
        std::mem::take(&mut self.recent_active)
    }
}

/// A bounded queue of the appends in flight to one follower: the last index of each, with its
/// payload bytes. Bounded by a count, and optionally by the bytes in all (etcd's `inflights`).
///
/// Invariant: `bytes` is the sum of the bytes in `queue`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inflights {
    capacity: usize,
    /// The byte budget; `0`: none.
    max_bytes: u64,
    bytes: u64,
    queue: VecDeque<(Index, u64)>,
}

impl Inflights {
    /// An empty window of `capacity` appends.
    pub fn new(capacity: usize) -> Inflights {
        Inflights {
            capacity,
            max_bytes: 0,
            bytes: 0,
            queue: VecDeque::new(),
        }
    }

    /// The same window, also full once `max_bytes` payload bytes are in flight (`0`: no limit).
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Inflights {
        self.max_bytes = max_bytes;
        self
    }

    /// Whether the window is full: `capacity` appends, or `max_bytes` bytes, in flight. The byte
    /// budget may be overshot by the last append added (as in etcd): an append is never split to
    /// fit, and one larger than the budget must still be able to go.
    pub fn is_full(&self) -> bool {
        self.queue.len() >= self.capacity || (self.max_bytes > 0 && self.bytes >= self.max_bytes)
    }

    /// The payload bytes in flight.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// How many appends are in flight.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no append is in flight.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn add(&mut self, last: Index, bytes: u64) {
        self.queue.push_back((last, bytes));
        self.bytes += bytes;
    }

    /// Frees every append whose last index is at most `index` (acknowledged).
    fn free_to(&mut self, index: Index) {
        while let Some(&(last, bytes)) = self.queue.front().filter(|&&(i, _)| i <= index) {
            debug_assert!(last <= index);
            self.queue.pop_front();
            self.bytes -= bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_state_pauses_until_reported() {
        let mut p = Progress::new(3, 4);
        p.maybe_update(2);
        p.become_snapshot(10);
        assert!(p.is_paused());
        assert!(!p.maybe_decrease_to(10, 0), "no append is in flight");
        assert!(!p.maybe_leave_snapshot(12), "not past the first index yet");
        assert!(p.snapshot_reported(true));
        assert_eq!(
            (p.next_index(), p.is_paused()),
            (11, true),
            "waits for the ack"
        );
        p.become_snapshot(10);
        assert!(p.snapshot_reported(false));
        assert_eq!(p.next_index(), 3, "a failure probes from the match index");
        p.heartbeat_answered();
        assert!(!p.is_paused());
        assert!(!p.snapshot_reported(true), "a stale report changes nothing");
    }

    #[test]
    fn snapshot_acknowledged_starts_replicating() {
        let mut p = Progress::new(3, 4);
        p.become_snapshot(10);
        p.append_accepted(10);
        assert!(p.maybe_leave_snapshot(11));
        assert!(p.is_replicating());
        assert_eq!(p.next_index(), 11);
        assert!(p.unreachable());
        assert!(matches!(p.state(), ProgressState::Probe { paused: false }));
    }

    #[test]
    fn probe_pauses_after_one_append_until_answer() {
        let mut p = Progress::new(5, 4);
        assert!(!p.is_paused());
        p.sent_append(6, true, 0, 0);
        assert!(p.is_paused());
        assert!(p.maybe_update(6));
        assert!(!p.is_paused());
        assert_eq!(p.next_index(), 7);
    }

    #[test]
    fn replicate_window_fills_and_frees() {
        let mut p = Progress::new(1, 2);
        p.become_replicate();
        p.sent_append(3, true, 0, 0);
        p.sent_append(5, true, 0, 0);
        assert!(p.is_paused());
        assert_eq!(p.next_index(), 6);
        assert!(p.append_accepted(3));
        assert!(!p.is_paused());
    }

    #[test]
    fn heartbeat_response_frees_no_slot() {
        let mut p = Progress::new(1, 1);
        p.become_replicate();
        p.sent_append(3, true, 0, 0);
        assert!(p.is_paused());
        p.heartbeat_answered();
        assert!(p.is_paused(), "the window is still full");
        p.sent_append(3, false, 0, 0);
        assert!(p.is_paused(), "an empty append adds nothing in flight");
        assert!(p.append_accepted(3));
        assert!(!p.is_paused());
    }

    /// `Config::max_inflight_bytes`: the window fills by bytes before it fills by count, and
    /// acknowledgements free the bytes.
    #[test]
    fn replicate_window_fills_by_bytes() {
        let mut p = Progress::new(1, 100).with_max_inflight_bytes(1000);
        p.become_replicate();
        p.sent_append(1, true, 600, 0);
        assert!(!p.is_paused(), "600 of 1000 bytes in flight");
        p.sent_append(2, true, 600, 0);
        assert!(
            p.is_paused(),
            "1200 bytes: the last append may overshoot, then the window is full"
        );
        assert_eq!(p.inflight(), (2, 1200));
        assert!(p.append_accepted(1));
        assert!(!p.is_paused());
        assert_eq!(p.inflight(), (1, 600));
    }

    #[test]
    fn stale_rejections_are_ignored() {
        let mut p = Progress::new(10, 4);
        p.sent_append(9, false, 0, 0);
        assert!(
            !p.maybe_decrease_to(5, 3),
            "probe answered for another prev index"
        );
        assert!(p.maybe_decrease_to(9, 3));
        assert_eq!(p.next_index(), 4, "jumps to the hint");
        p.maybe_update(4);
        p.become_replicate();
        assert!(
            !p.maybe_decrease_to(4, 0),
            "rejection at or below match is stale"
        );
    }
}
