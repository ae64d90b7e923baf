//! [`KvService`] for [`RaftKv`]: each write is a [`Command`] proposed through raft and answered by
//! the apply thread; each linearizable read joins a ReadIndex round; membership changes are conf
//! changes answered once applied. A follower never proxies HTTP: the node forwards its proposals
//! and ReadIndex requests to the leader through raft (etcd's `MsgProp` / `MsgReadIndex`).

use std::sync::atomic::Ordering;

use bytes::Bytes;
use crossbeam_channel::TrySendError;
use raftwood_node::{ConfChangeRequest, Proposal};
use raftwood_raft::ConfChange;
use tokio::sync::oneshot;

use super::reads::{self, PendingRead};
use super::{RaftKv, report};
use crate::command::{Command, Key, Op, RequestId};
use crate::service::{
    Consistency, KvService, Member, MetricsSnapshot, ServiceError, Status, Versioned,
};
use crate::state::Outcome;

fn stopped() -> ServiceError {
    ServiceError::Unavailable("the node has stopped".into())
}

fn key(key: String) -> Result<Key, ServiceError> {
    Key::new(key).map_err(|e| ServiceError::BadRequest(e.to_string()))
}

impl RaftKv {
    /// Proposes `op` and waits until its entry is applied on this node. The waiter is registered
    /// before the proposal leaves, so the answer cannot come before anyone listens; its guard
    /// removes it if this future is dropped (the HTTP request timed out).
    async fn write(&self, op: Op) -> Result<Outcome, ServiceError> {
        let shared = &self.shared;
        let seq = shared.next_seq.fetch_add(1, Ordering::Relaxed);
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
        let (_guard, answer) = shared.writes.register(seq, ());
        let proposal = Proposal {
            id: seq,
            data: Bytes::from(data),
        };
        // Never wait on the node's channel from an async task: a full channel means the node is
        // far behind its clients, and the client is better told to come back.
        match shared.handle.proposal_sender().try_send(proposal) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(ServiceError::Unavailable(
                    "too many writes in flight on this node; retry shortly".into(),
                ));
            }
            Err(TrySendError::Disconnected(_)) => return Err(stopped()),
        }
        answer.await.map_err(|_| stopped())?
    }

    /// Proposes a membership change and waits until it is applied on this node.
    async fn change_members(&self, change: ConfChange) -> Result<(), ServiceError> {
        let shared = &self.shared;
        let id = shared.next_seq.fetch_add(1, Ordering::Relaxed);
        let (_guard, answer) = shared.confs.register(id, change.clone());
        shared
            .handle
            .propose_conf_change(ConfChangeRequest { id, change })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
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
                let (tx, rx) = oneshot::channel();
                reads::submit(&shared.read_queue, PendingRead::new(tx))?;
                rx.await.map_err(|_| stopped())??;
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
