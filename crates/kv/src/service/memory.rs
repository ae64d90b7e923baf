//! [`MemoryService`]: a single-process, unreplicated [`KvService`] for tests, examples and
//! trying the HTTP layer alone.
//!
//! Non-goals: durability and replication. Everything lives in one map behind a mutex and is lost
//! on exit; it "commits" instantly and is always its own leader. The `raftwood` binary serves
//! the raft node instead.
//!
//! ```
//! use raftwood_kv::service::{Consistency, KvService, memory::MemoryService};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let service = MemoryService::new(1, "http://127.0.0.1:12379");
//! let revision = service.put("greeting".into(), "hello".into(), None).await?;
//! let read = service.get("greeting".into(), Consistency::Linearizable).await?;
//! assert_eq!(read.map(|v| v.revision), Some(revision));
//! # Ok::<(), raftwood_kv::service::ServiceError>(())
//! # }).unwrap();
//! ```

use std::collections::BTreeMap;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{
    Consistency, KvService, Member, MemberRole, MetricsSnapshot, Role, ServiceError, Status,
    Versioned,
};

/// An in-memory [`KvService`]: one node, its own leader, nothing persisted.
#[derive(Debug)]
pub struct MemoryService {
    id: u64,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    map: BTreeMap<String, Versioned>,
    members: BTreeMap<u64, String>,
    /// Stands in for the raft index: one per write, so revisions only grow, even across a delete
    /// and a re-create of the same key.
    index: u64,
    metrics: MetricsSnapshot,
}

impl MemoryService {
    /// A service whose only member is `id` at peer URL `url`.
    pub fn new(id: u64, url: impl Into<String>) -> Self {
        let members = BTreeMap::from([(id, url.into())]);
        let metrics = MetricsSnapshot {
            term: 1,
            ..MetricsSnapshot::default()
        };
        Self {
            id,
            inner: Mutex::new(Inner {
                map: BTreeMap::new(),
                members,
                index: 0,
                metrics,
            }),
        }
    }
}

impl Inner {
    /// Counts one write as one proposal in a Ready of its own.
    fn next_index(&mut self) -> u64 {
        self.index += 1;
        self.metrics.commit_index = self.index;
        self.metrics.applied_index = self.index;
        self.metrics.proposals += 1;
        self.metrics.proposals_per_ready.observe(1.0);
        self.metrics.proposals_per_ready_max = 1;
        self.index
    }
}

impl KvService for MemoryService {
    async fn put(
        &self,
        key: String,
        value: Bytes,
        if_revision: Option<u64>,
    ) -> Result<u64, ServiceError> {
        let mut inner = self.inner.lock();
        if let Some(expected) = if_revision {
            let current = inner.map.get(&key).map(|v| v.revision);
            if current != Some(expected) {
                return Err(ServiceError::PreconditionFailed { current });
            }
        }
        let revision = inner.next_index();
        inner.map.insert(key, Versioned { value, revision });
        Ok(revision)
    }

    async fn delete(&self, key: String) -> Result<(), ServiceError> {
        let mut inner = self.inner.lock();
        inner.next_index();
        inner.map.remove(&key);
        Ok(())
    }

    async fn get(
        &self,
        key: String,
        consistency: Consistency,
    ) -> Result<Option<Versioned>, ServiceError> {
        let mut inner = self.inner.lock();
        match consistency {
            Consistency::Linearizable => {
                inner.metrics.linearizable_reads += 1;
                inner.metrics.read_index_rounds += 1;
            }
            Consistency::Serializable => inner.metrics.serializable_reads += 1,
        }
        Ok(inner.map.get(&key).cloned())
    }

    async fn add_member(&self, id: u64, url: String) -> Result<(), ServiceError> {
        let mut inner = self.inner.lock();
        if inner.members.contains_key(&id) {
            return Err(ServiceError::BadRequest(format!(
                "member {id} already exists; remove it first to change its URL"
            )));
        }
        inner.next_index();
        inner.members.insert(id, url);
        Ok(())
    }

    async fn remove_member(&self, id: u64) -> Result<(), ServiceError> {
        let mut inner = self.inner.lock();
        if !inner.members.contains_key(&id) {
            return Err(ServiceError::NotFound(format!("no member with id {id}")));
        }
        inner.next_index();
        inner.members.remove(&id);
        Ok(())
    }

    async fn members(&self) -> Result<Vec<Member>, ServiceError> {
        let inner = self.inner.lock();
        Ok(inner
            .members
            .iter()
            .map(|(&id, url)| Member {
                id,
                url: url.clone(),
                role: MemberRole::Voter,
            })
            .collect())
    }

    async fn status(&self) -> Result<Status, ServiceError> {
        let inner = self.inner.lock();
        Ok(Status {
            id: self.id,
            term: inner.metrics.term,
            commit_index: inner.index,
            applied_index: inner.index,
            last_index: inner.index,
            snapshot_index: 0,
            role: Role::Leader,
            leader: Some(self.id),
            progress: Vec::new(),
        })
    }

    async fn metrics(&self) -> MetricsSnapshot {
        self.inner.lock().metrics.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn revisions_grow_across_delete_and_recreate() {
        block_on(async {
            let s = MemoryService::new(1, "http://127.0.0.1:1");
            let r1 = s.put("k".into(), "a".into(), None).await.unwrap();
            s.delete("k".into()).await.unwrap();
            let r2 = s.put("k".into(), "b".into(), None).await.unwrap();
            assert!(r2 > r1);
        });
    }

    #[test]
    fn conditional_put_checks_the_current_revision() {
        block_on(async {
            let s = MemoryService::new(1, "http://127.0.0.1:1");
            assert_eq!(
                s.put("k".into(), "a".into(), Some(1)).await,
                Err(ServiceError::PreconditionFailed { current: None })
            );
            let r = s.put("k".into(), "a".into(), None).await.unwrap();
            assert_eq!(
                s.put("k".into(), "b".into(), Some(r + 1)).await,
                Err(ServiceError::PreconditionFailed { current: Some(r) })
            );
            assert!(s.put("k".into(), "b".into(), Some(r)).await.is_ok());
        });
    }
}
