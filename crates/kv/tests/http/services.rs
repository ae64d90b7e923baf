//! Fake services: canned answers, one that never answers, one that answers only when enough
//! requests are in flight.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use raftwood_kv::service::{
    Consistency, KvService, Member, MemberRole, MetricsSnapshot, Role, ServiceError, Status,
    Versioned,
};
use tokio::sync::Notify;

/// A service with canned answers: `status`, `metrics`, and `error` for every key and member
/// operation.
pub(crate) struct Canned {
    pub(crate) status: Status,
    pub(crate) metrics: MetricsSnapshot,
    pub(crate) error: ServiceError,
}

impl KvService for Canned {
    async fn put(&self, _: String, _: Bytes, _: Option<u64>) -> Result<u64, ServiceError> {
        Err(self.error.clone())
    }
    async fn delete(&self, _: String) -> Result<(), ServiceError> {
        Err(self.error.clone())
    }
    async fn get(&self, _: String, _: Consistency) -> Result<Option<Versioned>, ServiceError> {
        Err(self.error.clone())
    }
    async fn add_member(&self, _: u64, _: String) -> Result<(), ServiceError> {
        Err(self.error.clone())
    }
    async fn remove_member(&self, _: u64) -> Result<(), ServiceError> {
        Err(self.error.clone())
    }
    async fn members(&self) -> Result<Vec<Member>, ServiceError> {
        Ok(vec![Member {
            id: 3,
            url: "http://10.0.0.3:2380".into(),
            role: MemberRole::Learner,
        }])
    }
    async fn status(&self) -> Result<Status, ServiceError> {
        Ok(self.status.clone())
    }
    async fn metrics(&self) -> MetricsSnapshot {
        self.metrics.clone()
    }
}

pub(crate) fn follower_status() -> Status {
    Status {
        id: 2,
        term: 7,
        commit_index: 40,
        applied_index: 39,
        last_index: 41,
        snapshot_index: 30,
        role: Role::PreCandidate,
        leader: None,
        progress: Vec::new(),
    }
}

pub(crate) fn canned(error: ServiceError) -> Arc<Canned> {
    Arc::new(Canned {
        status: follower_status(),
        metrics: MetricsSnapshot::default(),
        error,
    })
}

/// A service that never answers: the leader is gone and the node waits forever.
pub(crate) struct Stalled;

impl KvService for Stalled {
    fn put(
        &self,
        _: String,
        _: Bytes,
        _: Option<u64>,
    ) -> impl Future<Output = Result<u64, ServiceError>> + Send {
        std::future::pending()
    }
    fn delete(&self, _: String) -> impl Future<Output = Result<(), ServiceError>> + Send {
        std::future::pending()
    }
    fn get(
        &self,
        _: String,
        _: Consistency,
    ) -> impl Future<Output = Result<Option<Versioned>, ServiceError>> + Send {
        std::future::pending()
    }
    fn add_member(
        &self,
        _: u64,
        _: String,
    ) -> impl Future<Output = Result<(), ServiceError>> + Send {
        std::future::pending()
    }
    fn remove_member(&self, _: u64) -> impl Future<Output = Result<(), ServiceError>> + Send {
        std::future::pending()
    }
    fn members(&self) -> impl Future<Output = Result<Vec<Member>, ServiceError>> + Send {
        std::future::pending()
    }
    fn status(&self) -> impl Future<Output = Result<Status, ServiceError>> + Send {
        std::future::pending()
    }
    fn metrics(&self) -> impl Future<Output = MetricsSnapshot> + Send {
        std::future::pending()
    }
}

/// Answers reads only once `expected` of them are in flight at the same time.
pub(crate) struct Gate {
    pub(crate) expected: usize,
    pub(crate) arrived: AtomicUsize,
    pub(crate) open: Notify,
}

impl KvService for Gate {
    async fn put(&self, _: String, _: Bytes, _: Option<u64>) -> Result<u64, ServiceError> {
        Err(ServiceError::NoLeader)
    }
    async fn delete(&self, _: String) -> Result<(), ServiceError> {
        Err(ServiceError::NoLeader)
    }
    async fn get(&self, key: String, _: Consistency) -> Result<Option<Versioned>, ServiceError> {
        let opened = self.open.notified();
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 == self.expected {
            self.open.notify_waiters();
        } else {
            opened.await;
        }
        Ok(Some(Versioned {
            value: key.into(),
            revision: 1,
        }))
    }
    async fn add_member(&self, _: u64, _: String) -> Result<(), ServiceError> {
        Err(ServiceError::NoLeader)
    }
    async fn remove_member(&self, _: u64) -> Result<(), ServiceError> {
        Err(ServiceError::NoLeader)
    }
    async fn members(&self) -> Result<Vec<Member>, ServiceError> {
        Ok(Vec::new())
    }
    async fn status(&self) -> Result<Status, ServiceError> {
        Err(ServiceError::NoLeader)
    }
    async fn metrics(&self) -> MetricsSnapshot {
        MetricsSnapshot::default()
    }
}
