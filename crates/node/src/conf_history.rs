//! The configuration as of each applied index, from the last snapshot on. The application's
//! snapshot may lag the index the node has handed out (items still in the apply channel), and a
//! snapshot must carry the configuration as of its own index, not the node's current one (a
//! follower that installs it applies the later changes from the log).

use std::collections::VecDeque;

use raftwood_raft::{ConfState, Index};

/// `(index, configuration from that index on)`, in increasing index order.
///
/// Invariant: never empty; the first element is at or below the last snapshot's index.
#[derive(Debug)]
pub(crate) struct ConfHistory {
    states: VecDeque<(Index, ConfState)>,
}

impl ConfHistory {
    pub(crate) fn new(index: Index, cs: ConfState) -> ConfHistory {
        ConfHistory {
            states: VecDeque::from([(index, cs)]),
        }
    }

    /// A conf change applied at `index` produced `cs`.
    pub(crate) fn record(&mut self, index: Index, cs: ConfState) {
        self.states.push_back((index, cs));
    }

    /// Starts over from a snapshot installed at `index`.
    pub(crate) fn reset(&mut self, index: Index, cs: ConfState) {
        self.states.clear();
        self.states.push_back((index, cs));
    }

    /// The configuration as of `index`.
    pub(crate) fn at(&self, index: Index) -> ConfState {
        self.states
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .or(self.states.front())
            .map(|(_, cs)| cs.clone())
            .unwrap_or_default()
    }

    /// Forgets what precedes a snapshot at `index` (keeping the state in force there).
    pub(crate) fn prune(&mut self, index: Index) {
        while self.states.len() > 1 && self.states[1].0 <= index {
            self.states.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(v: &[u64]) -> ConfState {
        ConfState { voters: v.to_vec() }
    }

    #[test]
    fn as_of_an_index_between_changes() {
        let mut h = ConfHistory::new(0, cs(&[1]));
        h.record(5, cs(&[1, 2]));
        h.record(9, cs(&[1, 2, 3]));
        assert_eq!(h.at(4), cs(&[1]));
        assert_eq!(h.at(5), cs(&[1, 2]));
        assert_eq!(h.at(8), cs(&[1, 2]));
        assert_eq!(h.at(20), cs(&[1, 2, 3]));
        h.prune(7);
        assert_eq!(h.at(7), cs(&[1, 2]));
        assert_eq!(h.at(9), cs(&[1, 2, 3]));
    }
}
