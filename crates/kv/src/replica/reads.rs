//! Linearizable reads, batched: [`ReadBatcher`] runs one ReadIndex round (Raft thesis §6.4) at a
//! time for every read that arrived since the previous round started, as etcd's
//! `linearizableReadLoop` does. A round costs the leader one heartbeat exchange with a quorum
//! whatever the number of reads in it, so under load the cost per read falls with concurrency.
//!
//! ```text
//!  GET ─┐                      (one round at a time)
//!  GET ─┼─► queue ─► batcher: ctx = (node, round) ─► NodeHandle::read_index(ctx)
//!  GET ─┘                 ▲                                  │ raft: leader confirms it still
//!                         │                                  │ leads (quorum heartbeat, Safe)
//!                         │ round done                       ▼
//!                      apply thread: Apply::ReadStates{ctx, index}, once applied ≥ index
//!                         └─► every read of the round may read the store now
//! ```
//!
//! A round that fails (its leader stepped down: `DroppedReads`; raft lost the request; no answer
//! within [`ROUND_TIMEOUT`]; raft refused it because no leader is known) carries its reads into
//! the next round, after waiting for a leader when there was none ([`super::leader`]), until
//! each read's deadline (the request timeout). A read past its deadline is answered
//! [`ServiceError::Timeout`], or [`ServiceError::NoLeader`] if no leader was known at any time
//! while it waited. A read whose client gave up (its future dropped) is left out of the next
//! round.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use raftwood_node::NodeHandle;
use tokio::sync::oneshot;

use super::leader;
use crate::service::ServiceError;

/// How long a round may wait for its read state before its reads are retried. A healthy round
/// takes one heartbeat round trip; a leader cut off from its quorum never answers (Safe
/// ReadIndex), and CheckQuorum makes it step down within an election timeout.
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(1);

/// One read waiting for its round: `Ok(())` means "the store may be read now".
pub(crate) struct PendingRead {
    pub(crate) tx: oneshot::Sender<Result<(), ServiceError>>,
    /// When the read gives up (its request timeout).
    deadline: Instant,
    /// Whether a leader was known while it waited: `Timeout` rather than `NoLeader` at the end.
    saw_leader: bool,
}

impl PendingRead {
    /// A read answered on `tx`, by `deadline` at the latest.
    pub(crate) fn new(tx: oneshot::Sender<Result<(), ServiceError>>, deadline: Instant) -> Self {
        PendingRead {
            tx,
            deadline,
            saw_leader: false,
        }
    }
}

/// How a round ended, told to the batcher by the apply and errors threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoundEnd {
    /// Its reads were let through.
    Served(u64),
    /// Its leader dropped it: try again.
    Retry(u64),
    /// Raft refused it (no leader known): try again once there is one.
    Refused(u64),
}

/// The shared side of the batcher: reads come in, rounds end.
pub(crate) struct ReadBatcher {
    node: u64,
    rounds: Mutex<HashMap<u64, Vec<PendingRead>>>,
    ends: Sender<RoundEnd>,
    /// Rounds started, for tests and `/metrics` (the node counts them too).
    pub(crate) rounds_started: std::sync::atomic::AtomicU64,
}

/// The batcher thread's ends of its channels.
pub(crate) struct BatcherInbox {
    queue: Receiver<PendingRead>,
    ends: Receiver<RoundEnd>,
}

impl ReadBatcher {
    /// A batcher for node `node`, the queue reads are submitted to ([`submit`]), and the
    /// receiving ends its thread ([`run`]) needs. The thread ends when every queue sender is gone.
    pub(crate) fn new(node: u64) -> (ReadBatcher, Sender<PendingRead>, BatcherInbox) {
        let (queue, queue_rx) = crossbeam_channel::unbounded();
        let (ends, ends_rx) = crossbeam_channel::unbounded();
        let batcher = ReadBatcher {
            node,
            rounds: Mutex::new(HashMap::new()),
            ends,
            rounds_started: Default::default(),
        };
        let inbox = BatcherInbox {
            queue: queue_rx,
            ends: ends_rx,
        };
        (batcher, queue, inbox)
    }

    /// The context of round `round`: this node's id and the round number, so that contexts from
    /// different nodes never collide at the leader.
    fn context(&self, round: u64) -> Bytes {
        let mut ctx = Vec::with_capacity(16);
        ctx.extend_from_slice(&self.node.to_be_bytes());
        ctx.extend_from_slice(&round.to_be_bytes());
        Bytes::from(ctx)
    }

    /// The round of a context this node made, or `None` for any other bytes.
    pub(crate) fn round_of(&self, ctx: &[u8]) -> Option<u64> {
        let (node, round) = ctx.split_at_checked(8)?;
        let node = u64::from_be_bytes(node.try_into().ok()?);
        let round = u64::from_be_bytes(round.try_into().ok()?);
        (node == self.node).then_some(round)
    }

    /// The apply thread: round `round`'s read state is applied; its reads may read the store.
    pub(crate) fn serve(&self, round: u64) {
        for read in self.rounds.lock().remove(&round).unwrap_or_default() {
            let _ = read.tx.send(Ok(()));
        }
        let _ = self.ends.send(RoundEnd::Served(round));
    }

    /// The apply thread: round `round`'s leader stepped down before answering.
    pub(crate) fn retry(&self, round: u64) {
        let _ = self.ends.send(RoundEnd::Retry(round));
    }

    /// The errors thread: raft refused round `round` (no leader known, or busy).
    pub(crate) fn refuse(&self, round: u64) {
        let _ = self.ends.send(RoundEnd::Refused(round));
    }

    /// Fails every read in a round (the node stopped).
    pub(crate) fn fail_all(&self, error: ServiceError) {
        for (_, reads) in self.rounds.lock().drain() {
            for read in reads {
                let _ = read.tx.send(Err(error.clone()));
            }
        }
    }
}

/// Queues a read for the next round.
pub(crate) fn submit(queue: &Sender<PendingRead>, read: PendingRead) -> Result<(), ServiceError> {
    queue
        .send(read)
        .map_err(|_| ServiceError::Unavailable("the node is shutting down".into()))
}

/// The batcher thread: until every sender of reads is gone or the node stops, gathers the reads
/// that arrived, starts their round, and waits for it to end.
///
/// `first_round` must not repeat a round of an earlier run of this node (a time-based seed):
/// a late read state for an old round must not let a new round's reads through.
pub(crate) fn run(
    batcher: Arc<ReadBatcher>,
    inbox: BatcherInbox,
    handle: NodeHandle,
    first_round: u64,
) {
    let mut next_round = first_round;
    let mut carried: Vec<PendingRead> = Vec::new();
    loop {
        if carried.is_empty() {
            match inbox.queue.recv() {
                Ok(read) => carried.push(read),
                Err(_) => return,
            }
        }
        let batch: Vec<PendingRead> = carried
            .drain(..)
            .chain(inbox.queue.try_iter())
            .filter(|r| !r.tx.is_closed())
            .collect();
        if batch.is_empty() {
            continue;
        }
        let round = next_round;
        next_round = next_round.wrapping_add(1);
        batcher.rounds.lock().insert(round, batch);
        batcher
            .rounds_started
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if handle.read_index(batcher.context(round)).is_err() {
            batcher.fail_all(ServiceError::Unavailable("the node has stopped".into()));
            return;
        }
        let end = wait_for_end(&inbox.ends, round);
        if let Some(RoundEnd::Served(_)) = end {
            continue;
        }
        // Retried, refused or lost: its reads go to the next round, until their deadlines.
        let reads = batcher.rounds.lock().remove(&round).unwrap_or_default();
        let leader_known = leader::known(&handle);
        let now = Instant::now();
        for mut read in reads {
            read.saw_leader |= leader_known;
            if now >= read.deadline {
                let _ = read.tx.send(Err(leader::expired(read.saw_leader)));
            } else {
                carried.push(read);
            }
        }
        let refused = matches!(end, Some(RoundEnd::Refused(_)));
        if (refused || !leader_known)
            && let Some(until) = carried.iter().map(|r| r.deadline).min()
        {
            // Raft would refuse the next round as well: wait out the election first (at least
            // one poll, so that a status lagging behind raft cannot make this spin).
            let found = leader::wait_blocking(&handle, until);
            for read in &mut carried {
                read.saw_leader |= found;
            }
        }
    }
}

/// Waits for round `round` to end; `None` after [`ROUND_TIMEOUT`] or if the ends channel closed.
/// Ends of older rounds (answered after their timeout) are skipped.
fn wait_for_end(ends: &Receiver<RoundEnd>, round: u64) -> Option<RoundEnd> {
    let deadline = Instant::now() + ROUND_TIMEOUT;
    loop {
        match ends.recv_deadline(deadline) {
            Ok(end @ (RoundEnd::Served(r) | RoundEnd::Retry(r) | RoundEnd::Refused(r)))
                if r == round =>
            {
                return Some(end);
            }
            Ok(_) => continue,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_name_their_node_and_round() {
        let (a, _, _) = ReadBatcher::new(1);
        let (b, _, _) = ReadBatcher::new(2);
        let ctx = a.context(77);
        assert_eq!(a.round_of(&ctx), Some(77));
        assert_eq!(b.round_of(&ctx), None, "another node's context");
        assert_eq!(a.round_of(b"short"), None);
    }
}
