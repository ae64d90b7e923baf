//! Majority arithmetic: what a quorum has acknowledged, and how an election stands.
//!
//! Kept apart from the roles so that it can be checked against a naive oracle over many random
//! inputs (see the tests), as etcd does for its quorum package.

use crate::types::{Index, NodeId};
use std::collections::BTreeMap;

/// The size of a majority of `n` voters (Raft §5.2: "a majority of the servers").
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// The highest index that a majority of voters have acknowledged: sort the match indexes in
/// descending order and take the one at position `majority - 1`. With no voters, `0`.
///
/// ```
/// use raftwood_raft::quorum::committed_index;
/// assert_eq!(committed_index(&mut [5, 3, 9]), 5);
/// assert_eq!(committed_index(&mut [5, 3, 9, 1]), 3);
/// ```
pub fn committed_index(matches: &mut [Index]) -> Index {
    if matches.is_empty() {
        return 0;
    }
    matches.sort_unstable_by(|a, b| b.cmp(a));
    matches[majority(matches.len()) - 1]
}

/// Where an election stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A majority granted.
    Won,
    /// A majority rejected: the election cannot be won.
    Lost,
    /// Neither yet.
    Pending,
}

/// Counts the votes of `voters` recorded in `votes` (granted or rejected); votes from non-voters
/// are ignored.
///
/// ```
/// use raftwood_raft::quorum::{vote_result, VoteResult};
/// use std::collections::BTreeMap;
/// let votes = BTreeMap::from([(1, true), (2, true)]);
/// assert_eq!(vote_result(&[1, 2, 3], &votes), VoteResult::Won);
/// ```
pub fn vote_result(voters: &[NodeId], votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    let (mut granted, mut rejected) = (0, 0);
    for v in voters {
        match votes.get(v) {
            Some(true) => granted += 1,
            Some(false) => rejected += 1,
            None => {}
        }
    }
    let need = majority(voters.len());
    if granted >= need {
        VoteResult::Won
    } else if rejected >= need {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The oracle: the largest index that at least a majority of matches reach.
    fn naive_committed(matches: &[Index]) -> Index {
        let candidates = matches.iter().copied().chain([0]);
        candidates
            .filter(|&c| matches.iter().filter(|&&m| m >= c).count() >= majority(matches.len()))
            .max()
            .unwrap_or(0)
    }

    proptest! {
        #[test]
        fn committed_index_matches_oracle(mut matches in proptest::collection::vec(0u64..20, 0..8)) {
            let expected = if matches.is_empty() { 0 } else { naive_committed(&matches) };
            prop_assert_eq!(committed_index(&mut matches), expected);
        }

        #[test]
        fn vote_result_matches_oracle(n in 1usize..8, raw in proptest::collection::vec(0u8..3, 8)) {
            let voters: Vec<NodeId> = (1..=n as u64).collect();
            let votes: BTreeMap<NodeId, bool> = voters.iter().zip(&raw)
                .filter(|(_, r)| **r != 2).map(|(v, r)| (*v, *r == 1)).collect();
            let granted = votes.values().filter(|g| **g).count();
            let rejected = votes.values().filter(|g| !**g).count();
            let expected = if 2 * granted > n { VoteResult::Won }
                else if 2 * rejected > n { VoteResult::Lost } else { VoteResult::Pending };
            prop_assert_eq!(vote_result(&voters, &votes), expected);
        }
    }
}
