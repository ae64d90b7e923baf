//! The apply thread: raftexample's `readCommits`. It consumes the node's [`Apply`] stream in log
//! order, applies entries to the [`KvStore`] (the only writer of the store), answers the writes
//! this node proposed once their entry is applied, answers membership changes, restores
//! snapshots, and lets ReadIndex rounds through once the store has applied up to their index.
//!
//! Answering from here, after `apply_entry`, is what makes a `204` mean "committed (durable on a
//! quorum, Raft §5.3) and applied on this node": the node hands out an entry only once it is
//! committed, and the waiter is completed only after the store holds it.

use std::sync::Arc;

use bytes::Bytes;
use crossbeam_channel::Receiver;
use raftwood_node::Apply;
use raftwood_raft::{Entry, ReadState, Snapshot};
use tracing::{error, info, warn};

use super::Shared;
use super::waiters::Waiters;
use crate::service::ServiceError;
use crate::state::{KvStore, Outcome};

/// Runs until the node closes the apply channel (it stopped), then fails what still waits.
/// Returns why it gave up, if a snapshot could not be restored: the node was then stopped, and
/// the server must exit as failed (not as a clean stop) naming the snapshot.
pub(crate) fn run(shared: Arc<Shared>, apply: Receiver<Apply>) -> Option<String> {
    // Read states whose index the store has not reached yet (the node hands them out after the
    // entries they need, so this stays empty unless a snapshot restore failed).
    let mut deferred: Vec<ReadState> = Vec::new();
    let mut failure: Option<String> = None;
    for item in apply.iter() {
        if failure.is_some() {
            // The store missed a snapshot: applying the entries after it would serve a state no
            // other replica has. Drain until the node, already asked to stop, closes the channel.
            continue;
        }
        match item {
            Apply::Entries(entries) => apply_entries(&shared, &entries),
            Apply::ConfChange { id, index, .. } => {
                advance(&shared, index);
                // By the request id the node carried through the log: an older identical change
                // (a second "remove 4" replayed) answers nobody.
                shared.confs.complete(id, Ok(()));
            }
            Apply::Snapshot(snapshot) => {
                if let Err(e) = restore(&shared, &snapshot) {
                    // The node cannot apply anything after a snapshot it cannot load; stopping
                    // is the only way to keep the replicas consistent.
                    error!(index = snapshot.metadata.index, "{e}; stopping the node");
                    failure = Some(e);
                    shared.handle.stop();
                    continue;
                }
            }
            Apply::ReadStates(states) => deferred.extend(states),
            Apply::DroppedReads(contexts) => {
                for round in contexts.iter().filter_map(|c| shared.reads.round_of(c)) {
                    shared.reads.retry(round);
                }
            }
        }
        serve_reads(&shared, &mut deferred);
    }
    let stopped = || ServiceError::Unavailable("the node has stopped".into());
    shared.writes.fail_all(|| Err(stopped()));
    shared.confs.fail_all(|| Err(stopped()));
    shared.reads.fail_all(stopped());
    failure
}

/// Applies a batch under one write lock, then answers this node's writes outside it.
fn apply_entries(shared: &Shared, entries: &[Entry]) {
    let answers = apply_batch(&mut shared.store.write(), shared.id, entries);
    answer_writes(&shared.writes, answers);
}

/// One of this node's writes, applied: its `seq`, the CRC-32 of its command's bytes, and the
/// outcome.
type Applied = (u64, u32, Outcome);

/// Applies `entries` to `store`; returns what this node (`node`) proposed among them.
fn apply_batch(store: &mut KvStore, node: u64, entries: &[Entry]) -> Vec<Applied> {
    let mut answers = Vec::new();
    for entry in entries {
        if entry.index <= store.applied_index() {
            // Already in the store through the snapshot it was restored from.
            continue;
        }
        if let Some((id, outcome)) = store.apply_entry(entry.index, &entry.data)
            && id.node == node
        {
            answers.push((id.seq, crc32fast::hash(&entry.data), outcome));
        }
    }
    answers
}

/// Answers each applied write's waiter, if the command it proposed is the one applied (same
/// seq AND same checksum: an old entry reusing the seq answers nobody).
fn answer_writes(writes: &Waiters<u32, Result<Outcome, ServiceError>>, answers: Vec<Applied>) {
    for (seq, checksum, outcome) in answers {
        writes.complete_if(seq, |&proposed| proposed == checksum, Ok(outcome));
    }
}

/// Moves the store's applied index past an entry that carries no command (a conf change).
fn advance(shared: &Shared, index: u64) {
    let mut store = shared.store.write();
    if index > store.applied_index() {
        store.apply_noop(index);
    }
}

/// Replaces the store with the snapshot's (raftexample's `recoverFromSnapshot`).
fn restore(shared: &Shared, snapshot: &Snapshot) -> Result<(), String> {
    let index = snapshot.metadata.index;
    // The file's name as the snap store gives it, so that a damaged one on disk is named.
    let name = format!("snap/{:016x}-{index:016x}.snap", snapshot.metadata.term);
    let mut store = read(&snapshot.data, shared)
        .map_err(|e| format!("cannot restore the snapshot at index {index} ({name}): {e}"))?;
    if store.applied_index() > index {
        return Err(format!(
            "the snapshot at index {index} holds a state applied up to {}",
            store.applied_index()
        ));
    }
    if store.applied_index() < index {
        store.apply_noop(index);
    }
    info!(
        index,
        keys = store.len(),
        "restored the store from a snapshot"
    );
    *shared.store.write() = store;
    Ok(())
}

fn read(data: &Bytes, shared: &Shared) -> Result<KvStore, crate::SnapshotError> {
    KvStore::read_snapshot(&data[..], shared.snapshot_limits)
}

/// Lets through every read round whose index the store has reached.
fn serve_reads(shared: &Shared, deferred: &mut Vec<ReadState>) {
    if deferred.is_empty() {
        return;
    }
    let applied = shared.store.read().applied_index();
    deferred.retain(|rs| {
        if rs.index > applied {
            return true;
        }
        match shared.reads.round_of(&rs.context) {
            Some(round) => shared.reads.serve(round),
            None => warn!(
                len = rs.context.len(),
                "a read state with a foreign context"
            ),
        }
        false
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bytes::Bytes;
    use raftwood_raft::Entry;

    use super::*;
    use crate::command::{Command, Key, Op, RequestId};

    fn entry(index: u64, node: u64, seq: u64, key: &str) -> Entry {
        let command = Command {
            id: RequestId { node, seq },
            op: Op::Delete {
                key: Key::new(key.to_owned()).unwrap(),
            },
        };
        Entry {
            index,
            term: 1,
            data: Bytes::from(command.encode()),
            ..Entry::default()
        }
    }

    #[test]
    fn an_entry_with_a_waiters_id_but_another_command_does_not_answer_it() {
        let writes: Waiters<u32, Result<Outcome, ServiceError>> = Waiters::new();
        let mine = entry(2, 1, 7, "mine");
        let (_guard, mut rx) = writes.register(7, crc32fast::hash(&mine.data));
        let mut store = KvStore::new();
        // An old run's entry with the same RequestId, replayed after a restart.
        let old = entry(1, 1, 7, "old");
        answer_writes(&writes, apply_batch(&mut store, 1, &[old]));
        assert!(rx.try_recv().is_err(), "answered by another command");
        assert_eq!(writes.len(), 1, "still waiting");
        answer_writes(&writes, apply_batch(&mut store, 1, &[mine]));
        assert_eq!(
            rx.try_recv().unwrap(),
            Ok(Outcome::Deleted { existed: false })
        );
    }
}
