//! Membership changes, one server at a time (thesis §4.1): the [`ConfChange`] an application
//! proposes, its byte encoding (the data of an [`EntryKind::ConfChange`] entry), and what the
//! node does when one is proposed and when one is applied.
//!
//! # Why one server at a time
//! Two configurations that differ by one server have overlapping majorities: any majority of
//! the old one and any majority of the new one share a server, so the two cannot elect two
//! leaders in one term or commit two different entries at one index (thesis §4.1, Figure 4.3).
//! A change of several servers at once needs joint consensus (part 3); the type is already a
//! list of steps so that part extends it without breaking callers, and this part refuses a
//! list of any other length than one ([`ConfChangeError::StepCount`]).
//!
//! # When a change takes effect: on apply, as etcd
//! The thesis has a server use the newest configuration in its log, committed or not. Here, as
//! in etcd, a change takes effect when the application applies the committed entry and calls
//! [`crate::RawNode::apply_conf_change`]. Two rules make that safe:
//! - **At most one unapplied change** (the leader refuses a second, see below), so the
//!   configurations in use differ by at most one step and their majorities overlap.
//! - **No campaign with a committed change not yet applied** (`Core::has_unapplied_conf_change`,
//!   etcd's `hup` check): a node would otherwise count votes in a configuration older than one
//!   it knows to be committed.
//!
//! # The pending-change rule: refused, with a typed error
//! While the leader's last conf change is not yet applied (`pending_conf_index > applied`), a
//! new one is refused with [`ProposalDropped::ConfChangePending`]. A new leader starts with
//! `pending_conf_index` at the index of its empty entry, because its log may hold a change from
//! an earlier term that it cannot tell is applied. etcd starts it one lower, just before the
//! empty entry; waiting for the empty entry too is the rule Ongaro added to single-server
//! changes in 2015 (a leader commits an entry of its own term before it changes the
//! configuration). It costs one round after an election.
//!
//! etcd instead turns the refused change into an empty normal entry: its proposals arrive as a
//! batch inside one `MsgProp`, and refusing the batch for the sake of one entry would drop the
//! application's other entries with it. Here a conf change is proposed on its own, through
//! [`crate::RawNode::propose_conf_change`], which returns a `Result`, so the caller learns at
//! once and no log space is spent on an entry that does nothing. A change proposed on a
//! follower is forwarded; if the leader refuses it, the refusal is logged there and the change
//! never appears in `committed_entries`, which is how the proposer notices (like any forwarded
//! proposal that is dropped).
//!
//! # Non-goals
//! Learners, joint consensus and leadership transfer away from a removed leader come later. A
//! removed node learns of its removal only if the commit index reaches it before the leader
//! stops sending to it; raft does nothing more, and an application that wants it gone shuts it
//! down and drops its messages, as etcd's server does.
//!
//! ```
//! use raftwood_raft::{ConfChange, ConfChangeStep};
//! let cc = ConfChange::add_voter(4);
//! let bytes = cc.encode().unwrap();
//! assert_eq!(ConfChange::decode(&bytes).unwrap(), cc);
//! assert_eq!(cc.steps, vec![ConfChangeStep::AddVoter(4)]);
//! assert_eq!(cc.apply_to(&[1, 2, 3]).unwrap(), vec![1, 2, 3, 4]);
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use tracing::{debug, info};

use crate::error::{Error, ProposalDropped};
use crate::progress::Progress;
use crate::raft::{Core, LeaderState, Raft, RoleState};
use crate::storage::Storage;
use crate::types::{ConfState, Entry, EntryKind, Index, NodeId};

/// The version byte of the encoding written by [`ConfChange::encode`].
pub const ENCODING_VERSION: u8 = 1;
/// The most steps an encoded change may hold: the decoder refuses more before allocating.
pub const MAX_STEPS: usize = 64;
/// The most context bytes an encoded change may carry.
pub const MAX_CONTEXT: usize = 64 * 1024;

/// One step of a membership change.
///
/// `#[non_exhaustive]`: adding a learner (part 3) becomes a new variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfChangeStep {
    /// Makes the node a voter (a no-op if it already is one).
    AddVoter(NodeId),
    /// Removes the node from the configuration (a no-op if it is not in it).
    RemoveNode(NodeId),
}

impl ConfChangeStep {
    /// The node the step is about.
    pub fn node_id(&self) -> NodeId {
        match *self {
            ConfChangeStep::AddVoter(id) | ConfChangeStep::RemoveNode(id) => id,
        }
    }

    /// The tag byte of the step in the encoding. `0` is never a tag, so zeroed bytes never decode.
    fn tag(&self) -> u8 {
        match self {
            ConfChangeStep::AddVoter(_) => 1,
            ConfChangeStep::RemoveNode(_) => 2,
        }
    }
}

impl std::fmt::Display for ConfChangeStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfChangeStep::AddVoter(id) => write!(f, "add n{id}"),
            ConfChangeStep::RemoveNode(id) => write!(f, "remove n{id}"),
        }
    }
}

/// A membership change: a list of steps, applied together, and a context the application may
/// use (raftexample carries the new node's URL there). This part accepts exactly one step
/// (thesis §4.1); joint consensus (part 3) will accept more.
///
/// `#[non_exhaustive]`: build it with [`ConfChange::add_voter`], [`ConfChange::remove_node`] or
/// [`ConfChange::new`], so that part 3 can add a field (etcd's `Transition`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfChange {
    /// The steps, in order.
    pub steps: Vec<ConfChangeStep>,
    /// Opaque to Raft; travels with the change through the log (at most [`MAX_CONTEXT`] bytes).
    pub context: Bytes,
}

/// Why a membership change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfChangeError {
    /// One server at a time (thesis §4.1): a change must have exactly one step.
    #[error("a change must have exactly one step (one server at a time), not {0}")]
    StepCount(usize),
    /// Node id `0` means "nobody".
    #[error("node id 0 is reserved")]
    ZeroNodeId,
    /// The change would leave no voter, and no leader could ever be elected again.
    #[error("removing n{0} would leave no voters")]
    RemovesLastVoter(NodeId),
    /// More steps than [`MAX_STEPS`], which no encoding can carry.
    #[error("{0} steps exceed the limit of {MAX_STEPS}")]
    TooManySteps(usize),
    /// The context is longer than [`MAX_CONTEXT`].
    #[error("context of {0} bytes exceeds the limit of {MAX_CONTEXT}")]
    ContextTooLong(usize),
    /// The entry's bytes are not a change.
    #[error("cannot decode: {0}")]
    Decode(#[from] DecodeError),
}

/// Why bytes are not an encoded [`ConfChange`]. The offset is where the decoder stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the header or a declared field needs.
    #[error("truncated at offset {offset}: {needed} more bytes needed")]
    Truncated {
        /// Where the missing field starts.
        offset: usize,
        /// How many bytes it needs.
        needed: usize,
    },
    /// A version this code does not know (a newer writer).
    #[error("unknown encoding version {0}")]
    UnknownVersion(u8),
    /// More steps than [`MAX_STEPS`].
    #[error("{0} steps exceed the limit of {MAX_STEPS}")]
    TooManySteps(usize),
    /// A step tag that is not a known step.
    #[error("unknown step tag {tag} at offset {offset}")]
    UnknownStep {
        /// The tag.
        tag: u8,
        /// Its offset.
        offset: usize,
    },
    /// A context longer than [`MAX_CONTEXT`].
    #[error("context length {0} exceeds the limit of {MAX_CONTEXT}")]
    ContextTooLong(usize),
    /// Bytes after the end of the change.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
}

impl ConfChange {
    /// A change of the given steps and no context.
    pub fn new(steps: Vec<ConfChangeStep>) -> ConfChange {
        ConfChange {
            steps,
            context: Bytes::new(),
        }
    }

    /// Adds `id` as a voter.
    pub fn add_voter(id: NodeId) -> ConfChange {
        ConfChange::new(vec![ConfChangeStep::AddVoter(id)])
    }

    /// Removes `id`.
    pub fn remove_node(id: NodeId) -> ConfChange {
        ConfChange::new(vec![ConfChangeStep::RemoveNode(id)])
    }

    /// The same change carrying `context`.
    pub fn with_context(mut self, context: impl Into<Bytes>) -> ConfChange {
        self.context = context.into();
        self
    }

    /// The bytes of the change, as an [`EntryKind::ConfChange`] entry carries them:
    ///
    /// ```text
    /// version: u8 (= 1) | count: u8 | count × (tag: u8, node id: u64 LE) | context length: u32 LE | context
    /// ```
    /// Tags: `1` add voter, `2` remove node (`0` is never valid). Fixed-size fields with a
    /// version first, so that part 3 can add a tag (a learner) or a version without guessing.
    ///
    /// A change past the limits the decoder enforces ([`MAX_STEPS`] steps, [`MAX_CONTEXT`]
    /// context bytes) is refused with a typed error rather than written: what could not be read
    /// back must not reach the log.
    pub fn encode(&self) -> Result<Bytes, ConfChangeError> {
        if self.steps.len() > MAX_STEPS {
            return Err(ConfChangeError::TooManySteps(self.steps.len()));
        }
        if self.context.len() > MAX_CONTEXT {
            return Err(ConfChangeError::ContextTooLong(self.context.len()));
        }
        let mut b = BytesMut::with_capacity(2 + 9 * self.steps.len() + 4 + self.context.len());
        b.put_u8(ENCODING_VERSION);
        b.put_u8(self.steps.len() as u8);
        for s in &self.steps {
            b.put_u8(s.tag());
            b.put_u64_le(s.node_id());
        }
        b.put_u32_le(self.context.len() as u32);
        b.put_slice(&self.context);
        Ok(b.freeze())
    }

    /// Reads a change written by [`ConfChange::encode`]. Any other bytes give a [`DecodeError`]
    /// (never a panic, never an allocation beyond the limits): the bytes come from the log, so
    /// from the network.
    pub fn decode(bytes: &[u8]) -> Result<ConfChange, DecodeError> {
        let mut r = Reader { bytes, offset: 0 };
        let version = r.take::<1>()?[0];
        if version != ENCODING_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let count = r.take::<1>()?[0] as usize;
        if count > MAX_STEPS {
            return Err(DecodeError::TooManySteps(count));
        }
        let mut steps = Vec::with_capacity(count);
        for _ in 0..count {
            let offset = r.offset;
            let tag = r.take::<1>()?[0];
            let id = u64::from_le_bytes(r.take::<8>()?);
            steps.push(match tag {
                1 => ConfChangeStep::AddVoter(id),
                2 => ConfChangeStep::RemoveNode(id),
                tag => return Err(DecodeError::UnknownStep { tag, offset }),
            });
        }
        let len = u32::from_le_bytes(r.take::<4>()?) as usize;
        if len > MAX_CONTEXT {
            return Err(DecodeError::ContextTooLong(len));
        }
        let context = Bytes::copy_from_slice(r.take_slice(len)?);
        let trailing = bytes.len() - r.offset;
        if trailing > 0 {
            return Err(DecodeError::TrailingBytes(trailing));
        }
        Ok(ConfChange { steps, context })
    }

    /// Checks what this part accepts: one step (thesis §4.1), a real node id, a bounded context.
    pub fn validate(&self) -> Result<(), ConfChangeError> {
        if self.steps.len() != 1 {
            return Err(ConfChangeError::StepCount(self.steps.len()));
        }
        if self.steps.iter().any(|s| s.node_id() == 0) {
            return Err(ConfChangeError::ZeroNodeId);
        }
        if self.context.len() > MAX_CONTEXT {
            return Err(ConfChangeError::ContextTooLong(self.context.len()));
        }
        Ok(())
    }

    /// The voters after this change, from `voters` (sorted in the result). Adding a voter that
    /// is one, or removing a node that is not in the configuration, changes nothing: applying
    /// is idempotent, so a node that applies the log again from an older configuration ends
    /// where the others did.
    pub fn apply_to(&self, voters: &[NodeId]) -> Result<Vec<NodeId>, ConfChangeError> {
        self.validate()?;
        let mut next = voters.to_vec();
        for step in &self.steps {
            match *step {
                ConfChangeStep::AddVoter(id) => {
                    if let Err(at) = next.binary_search(&id) {
                        next.insert(at, id);
                    }
                }
                ConfChangeStep::RemoveNode(id) => next.retain(|&v| v != id),
            }
        }
        if next.is_empty() {
            // `validate` allowed one step; an empty result can only come from a removal.
            return Err(ConfChangeError::RemovesLastVoter(self.steps[0].node_id()));
        }
        Ok(next)
    }
}

impl std::fmt::Display for ConfChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps: Vec<String> = self.steps.iter().map(ToString::to_string).collect();
        f.write_str(&steps.join(", "))
    }
}

/// A cursor over bytes that fails with [`DecodeError::Truncated`] instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take_slice(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let rest = &self.bytes[self.offset..];
        if rest.len() < n {
            return Err(DecodeError::Truncated {
                offset: self.offset,
                needed: n - rest.len(),
            });
        }
        self.offset += n;
        Ok(&rest[..n])
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take_slice(N)?);
        Ok(out)
    }
}

impl<S: Storage> Raft<S> {
    /// Proposes a membership change: a leader appends it (if no other is pending), a follower
    /// forwards it. See the module docs for the pending-change rule.
    pub(crate) fn propose_conf_change(&mut self, cc: &ConfChange) -> Result<(), Error> {
        cc.validate()?;
        let entry = Entry {
            term: 0,
            index: 0,
            kind: EntryKind::ConfChange,
            data: cc.encode()?,
        };
        self.propose_entries(vec![entry])
    }

    /// Applies a committed change: the new voters take effect now (etcd's apply-time rule). A
    /// leader starts tracking an added voter (probing from its last index + 1, so appends catch
    /// it up) and forgets a removed one; a leader that removed itself steps down (thesis
    /// §4.2.2), and so does a candidate, which could no longer count its own vote.
    pub(crate) fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<ConfState, Error> {
        let core = &mut self.core;
        let voters = cc.apply_to(&core.voters)?;
        info!(id = core.id, term = core.term, change = %cc, ?voters, "applied conf change");
        core.set_voters(voters);
        let member = core.promotable();
        match &mut self.role {
            RoleState::Leader(_) if !member => {
                info!(
                    id = self.core.id,
                    "removed from the configuration: stepping down"
                );
                self.become_follower(self.core.term, None);
            }
            RoleState::Leader(leader) => self.core.track_voters(leader),
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } if !member => {
                self.become_follower(self.core.term, None);
            }
            _ => {}
        }
        Ok(ConfState {
            voters: self.core.voters.clone(),
        })
    }
}

impl<S: Storage> Core<S> {
    /// Adopts `voters` as the configuration: the one place it changes after start, for a
    /// conf change applied ([`Raft::apply_conf_change`]) and for a snapshot installed
    /// (`Core::restore`, which adopts the snapshot's configuration, the one as of its index).
    /// Kept sorted and without duplicates: quorum counting and `binary_search` rely on it.
    pub(crate) fn set_voters(&mut self, mut voters: Vec<NodeId>) {
        voters.sort_unstable();
        voters.dedup();
        self.voters = voters;
    }

    /// Makes the leader's progress map track exactly the voters: a new voter is probed from the
    /// end of the log (it may be empty; a rejection walks `next_index` back, as for any
    /// follower), a removed one is dropped, and so is a transfer to it. The quorum may have
    /// changed, so commit is rechecked (removing a slow voter can commit at once, as in etcd).
    fn track_voters(&mut self, leader: &mut LeaderState) {
        leader
            .progress
            .retain(|id, _| self.voters.binary_search(id).is_ok());
        // A transfer to a node that is no longer a voter cannot succeed: abandon it, and take
        // proposals again (etcd does the same).
        if let Some(t) = &leader.lead_transferee
            && self.voters.binary_search(&t.to).is_err()
        {
            info!(
                id = self.id,
                to = t.to,
                "transfer target removed: transfer abandoned"
            );
            leader.lead_transferee = None;
        }
        let next = self.log.last_index() + 1;
        for &id in &self.voters {
            leader
                .progress
                .entry(id)
                .or_insert_with(|| Progress::new(next, self.config.max_inflight_msgs));
        }
        self.maybe_commit(leader);
    }

    /// The leader's admission of proposed entries that hold conf changes: each must decode and
    /// validate, at most one per batch, none while another is pending (not yet applied), and none
    /// that removes the last voter. Returns the index the accepted change will get.
    pub(crate) fn admit_conf_changes(
        &self,
        leader: &LeaderState,
        entries: &[Entry],
    ) -> Result<Option<Index>, Error> {
        let mut found = None;
        for (i, e) in entries.iter().enumerate() {
            if e.kind != EntryKind::ConfChange {
                continue;
            }
            let cc = ConfChange::decode(&e.data).map_err(ConfChangeError::from)?;
            cc.apply_to(&self.voters)?;
            let applied = self.log.applied();
            if found.is_some() || leader.pending_conf_index > applied {
                debug!(
                    id = self.id,
                    pending = leader.pending_conf_index,
                    applied,
                    "conf change refused: one is pending"
                );
                return Err(ProposalDropped::ConfChangePending {
                    pending_index: leader.pending_conf_index,
                    applied,
                }
                .into());
            }
            found = Some(self.log.last_index() + 1 + i as u64);
        }
        Ok(found)
    }

    /// Whether a committed conf change is not yet applied. Such a node must not campaign: it
    /// would count votes in a configuration older than one it knows to be committed (etcd's
    /// `hup` check). If the log cannot be read, the answer is yes: refusing to campaign is safe.
    pub(crate) fn has_unapplied_conf_change(&self) -> bool {
        let (applied, committed) = (self.log.applied(), self.log.committed());
        if committed <= applied {
            return false;
        }
        match self.log.slice(applied + 1, committed + 1, u64::MAX) {
            Ok(entries) => entries.iter().any(|e| e.kind == EntryKind::ConfChange),
            Err(e) => {
                debug!(id = self.id, "cannot read committed entries: {e}");
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn step() -> impl Strategy<Value = ConfChangeStep> {
        prop_oneof![
            any::<u64>().prop_map(ConfChangeStep::AddVoter),
            any::<u64>().prop_map(ConfChangeStep::RemoveNode),
        ]
    }

    #[test]
    fn encoding_is_fixed() {
        let cc = ConfChange::remove_node(3).with_context("x");
        let want = [1, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, b'x'];
        assert_eq!(cc.encode().unwrap().as_ref(), &want);
    }

    #[test]
    fn bad_bytes_give_typed_errors() {
        use DecodeError::*;
        assert_eq!(
            ConfChange::decode(&[]),
            Err(Truncated {
                offset: 0,
                needed: 1
            })
        );
        assert_eq!(ConfChange::decode(&[2, 0]), Err(UnknownVersion(2)));
        assert_eq!(ConfChange::decode(&[1, 65]), Err(TooManySteps(65)));
        assert_eq!(
            ConfChange::decode(&[1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(UnknownStep { tag: 0, offset: 2 })
        );
        assert_eq!(
            ConfChange::decode(&[1, 0, 255, 255, 255, 255]),
            Err(ContextTooLong(u32::MAX as usize))
        );
        assert_eq!(
            ConfChange::decode(&[1, 0, 0, 0, 0, 0, 9]),
            Err(TrailingBytes(1))
        );
        // An empty entry (a new leader's) is not a change.
        assert!(ConfChange::decode(&Bytes::new()).is_err());
    }

    #[test]
    fn encode_refuses_what_decode_would() {
        let many = ConfChange::new(vec![ConfChangeStep::AddVoter(1); MAX_STEPS + 1]);
        assert_eq!(
            many.encode(),
            Err(ConfChangeError::TooManySteps(MAX_STEPS + 1))
        );
        let long = ConfChange::add_voter(1).with_context(vec![0; MAX_CONTEXT + 1]);
        assert_eq!(
            long.encode(),
            Err(ConfChangeError::ContextTooLong(MAX_CONTEXT + 1))
        );
        assert!(
            ConfChange::add_voter(1)
                .with_context(vec![0; MAX_CONTEXT])
                .encode()
                .is_ok()
        );
    }

    #[test]
    fn one_step_only() {
        let two = ConfChange::new(vec![
            ConfChangeStep::AddVoter(4),
            ConfChangeStep::AddVoter(5),
        ]);
        assert_eq!(two.validate(), Err(ConfChangeError::StepCount(2)));
        assert_eq!(
            ConfChange::new(vec![]).validate(),
            Err(ConfChangeError::StepCount(0))
        );
        assert_eq!(
            ConfChange::add_voter(0).validate(),
            Err(ConfChangeError::ZeroNodeId)
        );
    }

    #[test]
    fn apply_is_idempotent_and_keeps_a_voter() {
        assert_eq!(
            ConfChange::add_voter(2).apply_to(&[1, 3]).unwrap(),
            vec![1, 2, 3]
        );
        assert_eq!(
            ConfChange::add_voter(2).apply_to(&[1, 2, 3]).unwrap(),
            vec![1, 2, 3]
        );
        assert_eq!(
            ConfChange::remove_node(9).apply_to(&[1, 2]).unwrap(),
            vec![1, 2]
        );
        assert_eq!(
            ConfChange::remove_node(1).apply_to(&[1]),
            Err(ConfChangeError::RemovesLastVoter(1))
        );
    }

    proptest! {
        #[test]
        fn round_trips(steps in proptest::collection::vec(step(), 0..=MAX_STEPS),
                       context in proptest::collection::vec(any::<u8>(), 0..64)) {
            let cc = ConfChange { steps, context: context.into() };
            prop_assert_eq!(ConfChange::decode(&cc.encode().unwrap()), Ok(cc));
        }

        /// Any bytes: a change or a typed error, never a panic; and what decodes re-encodes to
        /// the same bytes (the encoding is canonical).
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(cc) = ConfChange::decode(&bytes) {
                prop_assert_eq!(cc.encode(), Ok(Bytes::from(bytes.clone())));
            }
        }

        /// Every truncation and every single-byte change of a valid encoding is caught or
        /// decodes to a change that re-encodes to exactly those bytes.
        #[test]
        fn damaged_encodings_never_panic(id in any::<u64>(), add in any::<bool>(),
                                         at in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let cc = if add { ConfChange::add_voter(id) } else { ConfChange::remove_node(id) };
            let good = cc.encode().unwrap();
            for len in 0..good.len() {
                prop_assert!(ConfChange::decode(&good[..len]).is_err());
            }
            let mut bad = good.to_vec();
            let i = at.index(bad.len());
            bad[i] ^= flip;
            if let Ok(other) = ConfChange::decode(&bad) {
                prop_assert_eq!(other.encode(), Ok(Bytes::from(bad.clone())));
            }
        }
    }
}
