//! The replicated service: [`RaftKv`], a [`crate::service::KvService`] over a running
//! `raftwood-node`, and [`run`], which composes a whole server (storage, transport, node, apply
//! thread, HTTP) from a [`ReplicaConfig`].
//!
//! # Threads
//! ```text
//!  tokio (HTTP handlers) ──propose / read_index──► node loop thread (raftwood-node)
//!        ▲                                               │ Apply (bounded), NodeError
//!        │ oneshot answers                               ▼
//!        └──────────── apply thread (owns KvStore writes) + errors thread
//!                       read batcher thread (one ReadIndex round at a time)
//! ```
//! Nothing here blocks the node loop, and no async task waits on a channel: proposals and conf
//! changes go through bounded channels with `try_send` (a full one answers `503`), and the apply channel is the node's own, bounded, with the node
//! holding entries back when it is full.
//!
//! # Files
//! - [`waiters`]: requests waiting for their answer, removed when their future is dropped.
//! - [`reads`]: the ReadIndex batcher.
//! - [`apply`]: the apply thread.
//! - [`errors`]: the errors thread (dropped proposals and reads answered fast).
//! - [`service`]: the [`crate::service::KvService`] methods.
//! - [`report`]: `/v1/status`, `/v1/members` and `/metrics` from the node's status and counters.
//! - [`threads`]: [`RaftKv::start`], the node and the threads around it.
//! - [`config`]: [`ReplicaConfig`], the raft settings and the value limit.
//! - [`run`](mod@run): the server: flags to storage, transport, node, service and HTTP.

mod apply;
pub mod config;
mod errors;
mod leader;
mod reads;
mod report;
pub mod run;
mod service;
pub mod threads;
mod waiters;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::RwLock;
use raftwood_node::NodeHandle;

pub use config::{ReplicaConfig, max_value_bytes_limit};
pub use reads::ROUND_TIMEOUT;
pub use run::{ReplicaError, run, start};
pub use threads::{Replica, ReplicaThreads, ServiceOptions};

use crate::service::ServiceError;
use crate::snapshot::SnapshotLimits;
use crate::state::{KvStore, Outcome};
use reads::ReadBatcher;
use waiters::Waiters;

/// What the service, the apply thread, the errors thread and the read batcher share.
pub(crate) struct Shared {
    /// This node's raft id.
    id: u64,
    handle: NodeHandle,
    /// The state machine. Written only by the apply thread; read by serializable and (once their
    /// round is through) linearizable reads, and by the node's `get_snapshot`.
    store: Arc<RwLock<KvStore>>,
    /// Writes waiting for their entry to be applied, by `RequestId::seq`, each tagged with the
    /// CRC-32 of the command it proposed: an entry answers a waiter only if both match, so an
    /// old entry whose id a new request happens to reuse (a restart's seed colliding with an
    /// earlier run's numbers) cannot answer it with another command's outcome.
    writes: Waiters<u32, Result<Outcome, ServiceError>>,
    /// Membership changes waiting for their conf change to be applied, by request id (the node
    /// carries it through the log and back in `Apply::ConfChange`).
    confs: Waiters<(), Result<(), ServiceError>>,
    reads: Arc<ReadBatcher>,
    /// Where linearizable reads queue for the next round (the batcher thread ends when this,
    /// its only sender, is dropped with the service).
    read_queue: crossbeam_channel::Sender<reads::PendingRead>,
    /// The next `RequestId::seq` (and conf change id); seeded at random ([`seed`]) so that a
    /// restarted node is unlikely to reuse the numbers of entries its previous run may still see
    /// committed (and the checksum in `writes` catches it if it does).
    next_seq: AtomicU64,
    snapshot_limits: SnapshotLimits,
    /// How long a request may wait for a leader, a commit or a ReadIndex round before it is
    /// answered [`ServiceError::Timeout`] (the HTTP layer's request timeout).
    request_timeout: std::time::Duration,
    linearizable_reads: AtomicU64,
    serializable_reads: AtomicU64,
}

/// The replicated key-value service: put, delete, get and membership through raft. Create it
/// with [`RaftKv::start`]; serve it with [`crate::http::serve`].
pub struct RaftKv {
    shared: Arc<Shared>,
}

impl RaftKv {
    /// The node's handle (status, counters, stop).
    pub fn handle(&self) -> &NodeHandle {
        &self.shared.handle
    }

    /// ReadIndex rounds this service started (each serves every read that joined it).
    pub fn read_rounds(&self) -> u64 {
        self.shared
            .reads
            .rounds_started
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes waiting for their entry to be applied (tests: none are left behind).
    pub fn waiting_writes(&self) -> usize {
        self.shared.writes.len()
    }

    /// The store's applied index.
    pub fn applied_index(&self) -> u64 {
        self.shared.store.read().applied_index()
    }
}

/// A starting number unlikely to be near any earlier run's: the clock and the process id through
/// std's randomly keyed hasher (SipHash with a per-process random key), so that a clock stepped
/// back into an earlier run's range does not bring its numbers back. The top bit is cleared:
/// counting up from it never wraps in practice.
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.finish() >> 1
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_differ_between_calls_even_within_one_clock_tick() {
        // Each RandomState has its own key, so two seeds differ even with the same clock.
        assert_ne!(super::seed(), super::seed());
    }
}
