//! What a leader knows of each follower's log (Raft Figure 2, "Volatile state on leaders":
//! `nextIndex` and `matchIndex`), and the flow control built on it.
//!
//! A follower's progress is in one of two states, as in etcd:
//! - **Probe**: the leader does not know where the logs agree. It sends one append at a time and
//!   waits for the answer (or a heartbeat response) before sending another, backing `next_index`
//!   off on each rejection.
//! - **Replicate**: the logs agree up to `match_index`. The leader streams appends optimistically,
//!   advancing `next_index` as it sends, with at most `max_inflight_msgs` unacknowledged.

use std::collections::VecDeque;

use crate::types::Index;

/// The replication state of one follower, seen from the leader.
///
/// Invariant: `match_index < next_index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The highest index known to be replicated on the follower.
    pub match_index: Index,
    /// The index of the next entry to send.
    pub next_index: Index,
    /// Probe or Replicate.
    pub state: ProgressState,
    /// In the probe state, whether a probe is outstanding (so sending is paused).
    pub probe_sent: bool,
    /// In the replicate state, the last index of each append in flight, oldest first.
    pub inflights: Inflights,
    /// Whether the follower has been heard from since the last CheckQuorum round.
    pub recent_active: bool,
    /// The highest commit index sent to the follower that its log can use, so that a commit
    /// advance is announced once, not on every Ready.
    pub sent_commit: Index,
}

/// The flow-control state of a [`Progress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Finding where the logs agree, one append at a time.
    Probe,
    /// Streaming appends, up to the inflight window.
    Replicate,
}

impl Progress {
    /// A progress that will probe from `next_index`.
    pub fn new(next_index: Index, max_inflight: usize) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflights: Inflights::new(max_inflight),
            recent_active: false,
            sent_commit: 0,
        }
    }

    /// Whether the leader must wait before sending this follower another append.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.is_full(),
        }
    }

    /// Switches to probing from just after the match index.
    pub fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.inflights.clear();
    }

    /// Switches to streaming from just after the match index.
    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.inflights.clear();
    }

    /// Probes, with the probe counted as outstanding: nothing is sent until the follower is heard
    /// from again (used when no append can be built for it).
    pub fn pause_probe(&mut self) {
        self.become_probe();
        self.probe_sent = true;
    }

    /// Records that an append ending at `last` was sent.
    pub fn sent_append(&mut self, last: Index, carried_entries: bool) {
        match self.state {
            ProgressState::Replicate if carried_entries => {
                self.next_index = last + 1;
                self.inflights.add(last);
            }
            ProgressState::Replicate => {}
            ProgressState::Probe => self.probe_sent = true,
        }
    }

    /// The follower acknowledged its log up to `index`. Returns whether that was news (a stale or
    /// duplicated acknowledgement is not).
    pub fn maybe_update(&mut self, index: Index) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
        }
        self.next_index = self.next_index.max(index + 1);
        updated
    }

    /// The follower rejected an append at `rejected`; `probe_hint` is where the logs may agree.
    /// Returns whether `next_index` moved back (false for a stale rejection).
    pub fn maybe_decrease_to(&mut self, rejected: Index, probe_hint: Index) -> bool {
        match self.state {
            ProgressState::Replicate => {
                // Rejections of appends sent before the follower matched are stale.
                if rejected <= self.match_index {
                    return false;
                }
                self.next_index = self.match_index + 1;
                true
            }
            ProgressState::Probe => {
                // Only the answer to the probe we sent counts; older answers are stale.
                if self.next_index == 0 || self.next_index - 1 != rejected {
                    return false;
                }
                // The hint comes from the network: saturate rather than overflow on a forged one.
                self.next_index = rejected
                    .min(probe_hint.saturating_add(1))
                    .max(self.match_index + 1);
                self.probe_sent = false;
                true
            }
        }
    }
}

/// A bounded queue of the last indexes of appends in flight to one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inflights {
    capacity: usize,
    queue: VecDeque<Index>,
}

impl Inflights {
    /// An empty window of `capacity` appends.
    pub fn new(capacity: usize) -> Inflights {
        Inflights {
            capacity,
            queue: VecDeque::new(),
        }
    }

    /// Whether the window is full.
    pub fn is_full(&self) -> bool {
        self.queue.len() >= self.capacity
    }

    /// How many appends are in flight.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no append is in flight.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn add(&mut self, last: Index) {
        self.queue.push_back(last);
    }

    /// Frees every append whose last index is at most `index` (acknowledged).
    pub fn free_to(&mut self, index: Index) {
        while self.queue.front().is_some_and(|&i| i <= index) {
            self.queue.pop_front();
        }
    }

    /// Frees the oldest append in flight (its answer may have been lost).
    pub fn free_first_one(&mut self) {
        self.queue.pop_front();
    }

    fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_pauses_after_one_append_until_answer() {
        let mut p = Progress::new(5, 4);
        assert!(!p.is_paused());
        p.sent_append(6, true);
        assert!(p.is_paused());
        assert!(p.maybe_update(6));
        assert!(!p.is_paused());
        assert_eq!(p.next_index, 7);
    }

    #[test]
    fn replicate_window_fills_and_frees() {
        let mut p = Progress::new(1, 2);
        p.become_replicate();
        p.sent_append(3, true);
        p.sent_append(5, true);
        assert!(p.is_paused());
        assert_eq!(p.next_index, 6);
        p.maybe_update(3);
        p.inflights.free_to(3);
        assert!(!p.is_paused());
    }

    #[test]
    fn stale_rejections_are_ignored() {
        let mut p = Progress::new(10, 4);
        p.sent_append(10, false);
        assert!(
            !p.maybe_decrease_to(5, 3),
            "probe answered for another prev index"
        );
        assert!(p.maybe_decrease_to(9, 3));
        assert_eq!(p.next_index, 4, "jumps to the hint");
        p.maybe_update(4);
        p.become_replicate();
        assert!(
            !p.maybe_decrease_to(4, 0),
            "rejection at or below match is stale"
        );
    }
}
