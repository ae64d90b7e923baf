//! The seam between the HTTP layer and the replicated node: [`KvService`].
//!
//! The HTTP layer ([`crate::http`]) turns requests into calls on this trait and the answers into
//! status codes; it knows nothing of raft (no terms to compare, no proposals, no ReadIndex). The
//! node behind the trait knows nothing of HTTP. That keeps each side testable alone: the HTTP
//! tests run against [`memory::MemoryService`], and the node is tested without sockets.
//!
//! What an implementation over the raft node promises (the contract's guarantees live here, not
//! in the HTTP layer):
//! - [`KvService::put`], [`KvService::delete`], [`KvService::add_member`] and
//!   [`KvService::remove_member`] return `Ok` only once the entry is committed (durable on a
//!   quorum, Raft §5.3) and applied on this node.
//! - [`KvService::get`] with [`Consistency::Linearizable`] sees every write acknowledged before it
//!   started: it goes through a ReadIndex round (Raft thesis §6.4) and waits until this node has
//!   applied up to the read index. A leader that lost its quorum answers
//!   [`ServiceError::NoLeader`] or [`ServiceError::Timeout`], never a value.
//!   [`Consistency::Serializable`] reads this node's applied state as it is (may be stale).
//! - A future dropped before it completes (the HTTP request timed out) leaves the operation in
//!   an unknown state: it may still be applied later. The contract says the same to clients.
//!
//! # Errors and HTTP status codes
//! | [`ServiceError`] | status |
//! |---|---|
//! | [`NoLeader`](ServiceError::NoLeader), [`Unavailable`](ServiceError::Unavailable), [`Timeout`](ServiceError::Timeout), [`Removed`](ServiceError::Removed) | `503` |
//! | [`PreconditionFailed`](ServiceError::PreconditionFailed) | `412` |
//! | [`NotFound`](ServiceError::NotFound) | `404` |
//! | [`BadRequest`](ServiceError::BadRequest) | `400` |
//! | [`Internal`](ServiceError::Internal) | `500` |

pub mod memory;
mod metrics;

use std::future::Future;

use bytes::Bytes;
use serde::Serialize;

pub use metrics::{Histogram, MetricsSnapshot, PeerMetrics};

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Sees every write acknowledged before the read started (ReadIndex, Raft thesis §6.4). The
    /// default of every GET.
    #[default]
    Linearizable,
    /// Reads this node's applied state without asking the leader: fast, possibly stale
    /// (`?consistency=serializable`).
    Serializable,
}

/// A value and the revision of the put that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The value, as the client sent it.
    pub value: Bytes,
    /// The key's revision: grows with every put of the key, served as the ETag.
    pub revision: u64,
}

/// Whether a member votes (Raft §6: voters count towards quorums; learners only receive the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    /// Counts towards elections and commit quorums.
    Voter,
    /// Receives the log but does not vote.
    Learner,
}

/// One cluster member, as `GET /v1/members` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Raft id (never 0).
    pub id: u64,
    /// Peer URL of the member's raft transport, e.g. `http://127.0.0.1:12379`.
    pub url: String,
    /// Voter or learner.
    pub role: MemberRole,
}

/// The node's raft role, as `GET /v1/status` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Runs a PreVote round before disrupting the cluster (Raft thesis §9.6).
    PreCandidate,
    /// Asks for votes in a new term (Raft §5.2).
    Candidate,
    /// Leads the current term.
    Leader,
}

/// What the leader knows of one follower's log (Raft §5.3: matchIndex and nextIndex).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PeerProgress {
    /// The follower's raft id.
    pub id: u64,
    /// Highest index known to be replicated on the follower.
    pub match_index: u64,
    /// Index of the next entry the leader will send it.
    pub next_index: u64,
}

/// The node's state, as `GET /v1/status` serves it (field names are the contract's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// This node's raft id.
    pub id: u64,
    /// Current term.
    pub term: u64,
    /// Highest index known committed.
    pub commit_index: u64,
    /// Highest index applied to the state machine on this node.
    pub applied_index: u64,
    /// Index of the last entry in this node's log.
    pub last_index: u64,
    /// Index of the newest snapshot (0 when none).
    pub snapshot_index: u64,
    /// This node's role.
    pub role: Role,
    /// The leader's id, or `None` (JSON `null`) when unknown.
    pub leader: Option<u64>,
    /// Per-follower progress; only the leader has it, so it is empty (and left out of the JSON)
    /// everywhere else.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub progress: Vec<PeerProgress>,
}

/// Why a request failed. Each variant maps to one HTTP status (see the module docs); the
/// message is shown to the client, so it should say what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// No known leader (an election is running, or this node is cut off from a quorum). `503`.
    #[error(
        "no leader: the cluster is electing one or this node cannot reach a quorum; retry shortly"
    )]
    NoLeader,
    /// The node cannot serve right now (shutting down, overloaded); the reason is shown. `503`.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The node gave up waiting (commit, ReadIndex or apply took too long). `503`; a write may or
    /// may not have been applied.
    #[error(
        "timed out waiting for the cluster; a write may or may not have been applied, read it back before retrying"
    )]
    Timeout,
    /// This node was removed from the cluster and serves nothing any more. `503`.
    #[error("this node was removed from the cluster; send requests to another member")]
    Removed,
    /// A conditional put's revision did not match; `current` is the key's revision, `None` when
    /// the key does not exist. `412`.
    #[error("{}", precondition_message(*.current))]
    PreconditionFailed {
        /// The key's current revision, or `None` when the key does not exist.
        current: Option<u64>,
    },
    /// The thing the request names does not exist (e.g. removing an unknown member). `404`.
    #[error("{0}")]
    NotFound(String),
    /// The request is well-formed HTTP but makes no sense (e.g. adding an existing member). `400`.
    #[error("{0}")]
    BadRequest(String),
    /// A bug or an I/O failure on the node; the message is logged and shown. `500`.
    #[error("internal error: {0}")]
    Internal(String),
}

fn precondition_message(current: Option<u64>) -> String {
    match current {
        Some(revision) => format!(
            "revision mismatch: the key is at revision {revision} (ETag \"{revision}\"); read it again and retry with that If-Match"
        ),
        None => {
            "the key does not exist, so If-Match cannot match; put it without If-Match to create it"
                .to_owned()
        }
    }
}

/// What the HTTP layer needs from the replicated node.
///
/// Implementations are shared by every connection (`Arc<S>`), so methods take `&self` and their
/// futures are `Send`. A method may be cancelled at any `.await` (its future dropped) when the
/// request times out; it must not leave the node inconsistent when that happens.
pub trait KvService: Send + Sync + 'static {
    /// Puts `value` under `key` and returns the key's new revision, once the write is committed
    /// and applied. With `if_revision`, puts only if the key exists at exactly that revision,
    /// else fails with [`ServiceError::PreconditionFailed`] (compare-and-set, decided when the
    /// entry is applied so that concurrent puts cannot both win).
    fn put(
        &self,
        key: String,
        value: Bytes,
        if_revision: Option<u64>,
    ) -> impl Future<Output = Result<u64, ServiceError>> + Send;

    /// Deletes `key` once the delete is committed and applied; deleting a missing key succeeds.
    fn delete(&self, key: String) -> impl Future<Output = Result<(), ServiceError>> + Send;

    /// Reads `key`: `None` when it does not exist.
    fn get(
        &self,
        key: String,
        consistency: Consistency,
    ) -> impl Future<Output = Result<Option<Versioned>, ServiceError>> + Send;

    /// Adds member `id` with peer URL `url` (a conf change), once committed and applied.
    /// `BadRequest` when the id is already a member.
    fn add_member(
        &self,
        id: u64,
        url: String,
    ) -> impl Future<Output = Result<(), ServiceError>> + Send;

    /// Removes member `id` (possibly the leader itself), once committed and applied.
    /// `NotFound` when it is not a member.
    fn remove_member(&self, id: u64) -> impl Future<Output = Result<(), ServiceError>> + Send;

    /// The members as this node last applied them.
    fn members(&self) -> impl Future<Output = Result<Vec<Member>, ServiceError>> + Send;

    /// This node's raft state.
    fn status(&self) -> impl Future<Output = Result<Status, ServiceError>> + Send;

    /// The node's counters, gauges and histograms, read at scrape time by `GET /metrics`.
    fn metrics(&self) -> impl Future<Output = MetricsSnapshot> + Send;
}
