//! The messages Raft nodes exchange (Raft Figure 2's RPCs, as one-way messages).
//!
//! Each RPC of the paper is a request variant and a response variant of [`MessageBody`]. Every
//! message carries the sender's term, because the term rules (Raft §5.1: "if RPC request or
//! response contains term T > currentTerm: set currentTerm = T, convert to follower") apply to
//! all of them before anything else.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::types::{Entry, Index, NodeId, Snapshot, Term};

/// A message from one node to another.
///
/// ```
/// use raftwood_raft::{Message, MessageBody};
/// let m = Message { from: 1, to: 2, term: 3, body: MessageBody::Heartbeat { commit: 4, context: None } };
/// assert_eq!(m.to, 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The recipient.
    pub to: NodeId,
    /// The sender's term; for PreVote requests and granted PreVote responses, the term the sender
    /// would campaign in (its term + 1), which is not adopted by the recipient.
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// The content of a [`Message`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// RequestVote (Raft §5.2), or with `pre_vote` the PreVote probe (thesis §9.6): "would you
    /// vote for me?", asked without changing anyone's term.
    VoteRequest {
        /// Whether this is a PreVote probe rather than a real vote request.
        pre_vote: bool,
        /// The index of the candidate's last log entry (for the up-to-date check, Raft §5.4.1).
        last_index: Index,
        /// The term of the candidate's last log entry.
        last_term: Term,
        /// The candidate campaigns because the leader told it to ([`MessageBody::TimeoutNow`],
        /// a leadership transfer, thesis §3.10): voters grant it even while they are in a
        /// leader's lease (CheckQuorum), since that leader asked for the election. etcd marks
        /// such a request with the context `CampaignTransfer`.
        leader_transfer: bool,
    },
    /// The answer to a [`MessageBody::VoteRequest`].
    VoteResponse {
        /// Whether this answers a PreVote probe.
        pre_vote: bool,
        /// Whether the vote was granted.
        granted: bool,
    },
    /// AppendEntries (Raft §5.3): entries following `prev_index`, and the leader's commit index.
    /// With no entries it still carries the commit index and probes the follower's log.
    Append {
        /// The index of the entry just before `entries`.
        prev_index: Index,
        /// The term of the entry at `prev_index`: the consistency check.
        prev_term: Term,
        /// The entries to store, possibly none.
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: Index,
    },
    /// The follower's log now matches the leader's up to `match_index`.
    AppendAccepted {
        /// The last index known to match the leader's log.
        match_index: Index,
    },
    /// The consistency check failed. The hint lets the leader skip a whole term of mismatching
    /// entries at once instead of one index per round trip (Raft §5.3, "the protocol can be
    /// optimized to reduce the number of rejected AppendEntries").
    AppendRejected {
        /// The `prev_index` of the rejected append.
        rejected_index: Index,
        /// The largest index at which the follower's term is at most the rejected `prev_term`.
        hint_index: Index,
        /// The follower's term at `hint_index`.
        hint_term: Term,
    },
    /// The leader's periodic assertion of leadership (Raft §5.2), carrying a commit index no
    /// greater than what the recipient is known to hold.
    Heartbeat {
        /// The commit index the follower may adopt.
        commit: Index,
        /// The context of the newest read request waiting for a quorum round
        /// ([`crate::read_only`]), echoed back in the response; `None` when no read is waiting.
        #[serde(default)]
        context: Option<Bytes>,
    },
    /// InstallSnapshot (Raft §7): the leader's snapshot, sent instead of an append when the
    /// entries the follower needs are compacted. Sent whole, not in chunks as in the paper: the
    /// data is opaque, and may be a reference the transport resolves to a file it streams. The
    /// follower answers with [`MessageBody::AppendAccepted`]: its new last index if it installed
    /// the snapshot, its commit index if the snapshot was not ahead of it.
    Snapshot {
        /// The snapshot, with its index, term and configuration. Boxed: inline it would be the
        /// largest variant and make every message a third larger, appends and heartbeats too,
        /// for a message a healthy cluster rarely sends.
        snapshot: Box<Snapshot>,
    },
    /// The answer to a heartbeat; also sent to a stale leader to tell it of a newer term.
    HeartbeatResponse {
        /// The heartbeat's read context, echoed: this node acknowledges the sender as its leader
        /// after the read was requested (thesis §6.4).
        #[serde(default)]
        context: Option<Bytes>,
    },
    /// Proposals forwarded from a follower to the leader it knows. A leader that cannot take them
    /// drops them and logs why: the follower has moved on, and its client learns by a timeout, as
    /// in etcd. Stepped into a node by its own application (`from` is the node itself, etcd's way
    /// of proposing a batch), the proposal's error is returned by `step`; prefer
    /// [`crate::RawNode::propose_batch`].
    Propose {
        /// The proposed entries; their term and index are assigned by the leader.
        entries: Vec<Entry>,
    },
    /// Leadership transfer (thesis §3.10): the leader tells a follower whose log it has brought
    /// up to date to start an election at once, without waiting for its timeout and without a
    /// PreVote probe. Its vote requests carry `leader_transfer`, so voters do not refuse them for
    /// the lease of the leader that asked for the election. etcd's `MsgTimeoutNow`.
    TimeoutNow,
    /// A follower asks its leader for a read index on behalf of its application (thesis §6.4).
    ReadIndex {
        /// The application's context for the read, returned with the answer.
        context: Bytes,
    },
    /// The leader's answer to a [`MessageBody::ReadIndex`]: the read may be served once the
    /// follower has applied up to `index`.
    ReadIndexResponse {
        /// The read index.
        index: Index,
        /// The context of the request it answers.
        context: Bytes,
    },
}

impl MessageBody {
    /// The variant's name, for logs and scenario output.
    pub fn name(&self) -> &'static str {
        match self {
            MessageBody::VoteRequest { .. } => "VoteRequest",
            MessageBody::VoteResponse { .. } => "VoteResponse",
            MessageBody::Append { .. } => "Append",
            MessageBody::AppendAccepted { .. } => "AppendAccepted",
            MessageBody::AppendRejected { .. } => "AppendRejected",
            MessageBody::Heartbeat { .. } => "Heartbeat",
            MessageBody::Snapshot { .. } => "Snapshot",
            MessageBody::HeartbeatResponse { .. } => "HeartbeatResponse",
            MessageBody::Propose { .. } => "Propose",
            MessageBody::TimeoutNow => "TimeoutNow",
            MessageBody::ReadIndex { .. } => "ReadIndex",
            MessageBody::ReadIndexResponse { .. } => "ReadIndexResponse",
        }
    }
}

impl std::fmt::Display for Message {
    /// The scenario notation: `n1@2 → n2 Append prev=3@1 entries=[4@2] commit=3`: sender, its
    /// term, recipient, the [`MessageBody`] variant and its fields (`index@term` for entries).
    ///
    /// ```
    /// use raftwood_raft::{Message, MessageBody};
    /// let m = Message { from: 2, to: 1, term: 1,
    ///     body: MessageBody::VoteResponse { pre_vote: true, granted: true } };
    /// assert_eq!(m.to_string(), "n2@1 → n1 VoteResponse pre_vote granted");
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n{}@{} → n{} {}",
            self.from,
            self.term,
            self.to,
            self.body.name()
        )?;
        match &self.body {
            MessageBody::VoteRequest {
                pre_vote,
                last_index,
                last_term,
                leader_transfer,
            } => {
                if *pre_vote {
                    f.write_str(" pre_vote")?;
                }
                if *leader_transfer {
                    f.write_str(" transfer")?;
                }
                write!(f, " last={last_index}@{last_term}")
            }
            MessageBody::VoteResponse { pre_vote, granted } => {
                if *pre_vote {
                    f.write_str(" pre_vote")?;
                }
                write!(f, " {}", if *granted { "granted" } else { "rejected" })
            }
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                write!(f, " prev={prev_index}@{prev_term} entries=[")?;
                for (i, e) in entries.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " " };
                    write!(f, "{sep}{}@{}", e.index, e.term)?;
                }
                write!(f, "] commit={commit}")
            }
            MessageBody::AppendAccepted { match_index } => write!(f, " match={match_index}"),
            MessageBody::AppendRejected {
                rejected_index,
                hint_index,
                hint_term,
            } => {
                write!(
                    f,
                    " rejected={rejected_index} hint={hint_index}@{hint_term}"
                )
            }
            MessageBody::Heartbeat { commit, context } => {
                write!(f, " commit={commit}")?;
                write_context(f, context.as_ref())
            }
            MessageBody::Snapshot { snapshot } => {
                let m = &snapshot.metadata;
                write!(
                    f,
                    " {}@{} voters={:?}",
                    m.index, m.term, m.conf_state.voters
                )
            }
            MessageBody::HeartbeatResponse { context } => write_context(f, context.as_ref()),
            MessageBody::Propose { entries } => write!(f, " entries={}", entries.len()),
            MessageBody::TimeoutNow => Ok(()),
            MessageBody::ReadIndex { context } => write_context(f, Some(context)),
            MessageBody::ReadIndexResponse { index, context } => {
                write!(f, " index={index}")?;
                write_context(f, Some(context))
            }
        }
    }
}

/// Writes a read context as ` ctx=…` (lossy UTF-8), or nothing for `None`.
fn write_context(f: &mut std::fmt::Formatter<'_>, context: Option<&Bytes>) -> std::fmt::Result {
    match context {
        Some(c) => write!(f, " ctx={}", String::from_utf8_lossy(c)),
        None => Ok(()),
    }
}
