//! [`KvService`] for [`RaftKv`]: each write is a [`Command`] proposed through raft and answered by
//! the apply thread; each linearizable read joins a ReadIndex round; membership changes are conf
//! changes answered once applied. A follower never proxies HTTP: the node forwards its proposals
//! and ReadIndex requests to the leader through raft (etcd's `MsgProp` / `MsgReadIndex`).

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::TrySendError;
use raftwood_node::{ConfChangeRequest, Proposal};
use raftwood_raft::ConfChange;
use tokio::sync::oneshot;

use super::reads::{self, PendingRead};
use super::waiters::WaiterGuard;
use super::{RaftKv, leader, report};
use crate::command::{Command, Key, Op, RequestId};
use crate::service::{
    Consistency, KvService, Member, MetricsSnapshot, ServiceError, Status, Versioned,
};
use crate::state::Outcome;

fn stopped() -> ServiceError {
    ServiceError::Unavailable("the node has stopped".into())
}

/// A registered write: its guard and where its answer comes.
type WriteWaiter = (
    WaiterGuard<u32, Result<Outcome, ServiceError>>,
    oneshot::Receiver<Result<Outcome, ServiceError>>,
);

fn key(key: String) -> Result<Key, ServiceError> {
    Key::new(key).map_err(|e| ServiceError::BadRequest(e.to_string()))
}

impl RaftKv {
    /// Proposes `op` and waits until its entry is applied on this node, until the request's
    /// deadline.
    async fn write(&self, op: Op) -> Result<Outcome, ServiceError> {
        self.until_applied(|seq| self.propose(seq, op.clone()))
            .await
    }

    /// Runs `attempt` (register a waiter and propose, under the id it is given) and waits for its
    /// answer, until the request's deadline. A proposal raft dropped for want of a leader was
    /// never appended, so it is proposed again, under a new id, once a leader is known
    /// ([`leader`]); the old waiter's guard is dropped with the failed attempt.
    async fn until_applied<G, T>(
        &self,
        attempt: impl Fn(u64) -> Result<(G, oneshot::Receiver<Result<T, ServiceError>>), ServiceError>,
    ) -> Result<T, ServiceError> {
        let shared = &self.shared;
        let deadline = Instant::now() + shared.request_timeout;
        let mut saw_leader = leader::known(&shared.handle);
        loop {
            let id = shared.next_seq.fetch_add(1, Ordering::Relaxed);
            let (_guard, answer) = attempt(id)?;
            match tokio::time::timeout_at(deadline.into(), answer).await {
                Err(_) => return Err(leader::expired(saw_leader || leader::known(&shared.handle))),
                Ok(Err(_)) => return Err(stopped()),
                Ok(Ok(Err(ServiceError::NoLeader))) => {
                    saw_leader |= leader::wait(&shared.handle, deadline).await;
                    if Instant::now() >= deadline {
                        return Err(leader::expired(saw_leader));
                    }
                }
                Ok(Ok(answer)) => return answer,
            }
        }
    }

    /// Proposes `op` as request `seq`. The waiter is registered before the proposal leaves, so
    /// the answer cannot come before anyone listens; the guard removes it when the request stops
    /// waiting (answered, retried under a new id, or its future dropped by the HTTP timeout).
    fn propose(&self, seq: u64, op: Op) -> Result<WriteWaiter, ServiceError> {
        let shared = &self.shared;
        let command = Command {
            id: RequestId {
                node: shared.id,
                seq,
            },
            op,
        };
        let data = command.encode();
        if data.len() > crate::codec::DECODE_LIMIT {
            // No replica could decode it: it would be skipped at apply and never answered.
            return Err(ServiceError::BadRequest(format!(
                "command of {} bytes, over the log's limit of {} bytes: send a smaller value",
                data.len(),
                crate::codec::DECODE_LIMIT
            )));
        }
        let waiter = shared.writes.register(seq, crc32fast::hash(&data));
        let proposal = Proposal {
            id: seq,
            data: Bytes::from(data),
        };
        // Never wait on the node's channel from an async task: a full channel means the node is
        // far behind its clients, and the client is better told to come back.
        match shared.handle.proposal_sender().try_send(proposal) {
            Ok(()) => Ok(waiter),
            Err(TrySendError::Full(_)) => Err(ServiceError::Unavailable(
                "too many writes in flight on this node; retry shortly".into(),
            )),
            Err(TrySendError::Disconnected(_)) => Err(stopped()),
        }
    }

    /// Proposes a membership change and waits until it is applied on this node, until the
    /// request's deadline.
    async fn change_members(&self, change: ConfChange) -> Result<(), ServiceError> {
        let shared = &self.shared;
        self.until_applied(|id| {
            let waiter = shared.confs.register(id, ());
            let request = ConfChangeRequest {
                id,
                change: change.clone(),
            };
            // As for writes: an async task never waits on the node's channel.
            match shared.handle.conf_change_sender().try_send(request) {
                Ok(()) => Ok(waiter),
                Err(TrySendError::Full(_)) => Err(ServiceError::Unavailable(
                    "too many membership changes in flight on this node; retry shortly".into(),
                )),
                Err(TrySendError::Disconnected(_)) => Err(stopped()),
            }
        })
        .await
    }

    fn voters(&self) -> Vec<u64> {
        self.shared.handle.status().raft.conf_state.voters
    }
}

impl KvService for RaftKv {
    async fn put(
        &self,
        k: String,
        value: Bytes,
        if_revision: Option<u64>,
    ) -> Result<u64, ServiceError> {
        // A key the snapshot reader would refuse must never enter the log: every replica would
        // apply it, and none could restore the snapshot that holds it.
        let max = self.shared.snapshot_limits.max_key_len as usize;
        if k.len() > max {
            return Err(ServiceError::BadRequest(format!(
                "key of {} bytes, over the limit of {max} bytes",
                k.len()
            )));
        }
        let op = Op::Put {
            key: key(k)?,
            value,
            if_revision,
        };
        match self.write(op).await? {
            Outcome::Put { revision } => Ok(revision),
            Outcome::PreconditionFailed { current } => {
                Err(ServiceError::PreconditionFailed { current })
            }
            Outcome::Deleted { .. } => Err(ServiceError::Internal(
                "a put was answered with a delete's outcome".into(),
            )),
        }
    }

    async fn delete(&self, k: String) -> Result<(), ServiceError> {
        self.write(Op::Delete { key: key(k)? }).await.map(|_| ())
    }

    async fn get(
        &self,
        k: String,
        consistency: Consistency,
    ) -> Result<Option<Versioned>, ServiceError> {
        let shared = &self.shared;
        match consistency {
            Consistency::Serializable => {
                shared.serializable_reads.fetch_add(1, Ordering::Relaxed);
            }
            Consistency::Linearizable => {
                let deadline = Instant::now() + shared.request_timeout;
                let (tx, rx) = oneshot::channel();
                reads::submit(&shared.read_queue, PendingRead::new(tx, deadline))?;
                // The batcher answers by the deadline; this bound is for a batcher stuck in a
                // round that outlives it.
                match tokio::time::timeout_at(deadline.into(), rx).await {
                    Err(_) => return Err(leader::expired(leader::known(&shared.handle))),
                    Ok(answer) => answer.map_err(|_| stopped())??,
                }
                shared.linearizable_reads.fetch_add(1, Ordering::Relaxed);
            }
        }
        // For a linearizable read, the store has applied at least the round's read index by now,
        // and only moves forward.
        let store = shared.store.read();
        Ok(store.get(&k).map(|v| Versioned {
            value: v.data.clone(),
            revision: v.revision,
        }))
    }

    async fn add_member(&self, id: u64, url: String) -> Result<(), ServiceError> {
        if id == 0 {
            return Err(ServiceError::BadRequest(
                "member id 0 is not allowed".into(),
            ));
        }
        if self.voters().contains(&id) {
            return Err(ServiceError::BadRequest(format!(
                "node {id} is already a member; remove it first to change its URL"
            )));
        }
        let change = ConfChange::add_voter(id).with_context(Bytes::from(url.into_bytes()));
        self.change_members(change).await
    }

    async fn remove_member(&self, id: u64) -> Result<(), ServiceError> {
        if !self.voters().contains(&id) {
            return Err(ServiceError::NotFound(format!(
                "node {id} is not a member (GET /v1/members lists them)"
            )));
        }
        self.change_members(ConfChange::remove_node(id)).await
    }

    async fn members(&self) -> Result<Vec<Member>, ServiceError> {
        Ok(report::members(&self.shared.handle.status()))
    }

    async fn status(&self) -> Result<Status, ServiceError> {
        let applied = self.shared.store.read().applied_index();
        Ok(report::status(&self.shared.handle.status(), applied))
    }

    async fn metrics(&self) -> MetricsSnapshot {
        report::metrics(&self.shared)
    }
}
