//! The configuration, and every member's peer URL, as of each applied index, from the last
//! snapshot on. The application's snapshot may lag the index the node has handed out (items
//! still in the apply channel), and a snapshot must carry the configuration and the URLs as of
//! its own index, not the node's current ones (a follower that installs it applies the later
//! changes from the log).

use std::collections::VecDeque;

use raftwood_raft::{ConfState, Index};

use crate::payload::Members;

/// The voters and the members' peer URLs from some index on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Conf {
    /// The voters.
    pub(crate) state: ConfState,
    /// The peer URL of every member known (the initial `--cluster` list, then the URLs in the
    /// contexts of applied `AddVoter`s, minus the removed).
    pub(crate) members: Members,
}

/// `(index, configuration from that index on)`, in increasing index order.
///
/// Invariant: never empty; the first element is at or below the last snapshot's index.
#[derive(Debug)]
pub(crate) struct ConfHistory {
    states: VecDeque<(Index, Conf)>,
}

impl ConfHistory {
    pub(crate) fn new(index: Index, conf: Conf) -> ConfHistory {
        ConfHistory {
            states: VecDeque::from([(index, conf)]),
        }
    }

    /// A conf change applied at `index` produced `conf`.
    pub(crate) fn record(&mut self, index: Index, conf: Conf) {
        self.states.push_back((index, conf));
    }

    /// Starts over from a snapshot installed at `index`.
    pub(crate) fn reset(&mut self, index: Index, conf: Conf) {
        self.states.clear();
        self.states.push_back((index, conf));
    }

    /// The configuration as of `index`.
    pub(crate) fn at(&self, index: Index) -> Conf {
        self.states
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .or(self.states.front())
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    }

    /// The configuration as of the last applied change.
    pub(crate) fn current(&self) -> &Conf {
        match self.states.back() {
            Some((_, c)) => c,
            None => unreachable!("invariant: a ConfHistory is never empty"),
        }
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

    fn conf(v: &[u64]) -> Conf {
        Conf {
            state: ConfState { voters: v.to_vec() },
            members: v.iter().map(|&i| (i, format!("http://n{i}"))).collect(),
        }
    }

    #[test]
    fn as_of_an_index_between_changes() {
        let mut h = ConfHistory::new(0, conf(&[1]));
        h.record(5, conf(&[1, 2]));
        h.record(9, conf(&[1, 2, 3]));
        assert_eq!(h.at(4), conf(&[1]));
        assert_eq!(h.at(5), conf(&[1, 2]));
        assert_eq!(h.at(8), conf(&[1, 2]));
        assert_eq!(h.at(20), conf(&[1, 2, 3]));
        assert_eq!(h.current(), &conf(&[1, 2, 3]));
        h.prune(7);
        assert_eq!(h.at(7), conf(&[1, 2]));
        assert_eq!(h.at(9), conf(&[1, 2, 3]));
    }
}
