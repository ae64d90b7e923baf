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
use crate::service::ServiceError;
use crate::state::KvStore;

/// Runs until the node closes the apply channel (it stopped), then fails what still waits.
pub(crate) fn run(shared: Arc<Shared>, apply: Receiver<Apply>) {
    // Read states whose index the store has not reached yet (the node hands them out after the
    // entries they need, so this stays empty unless a snapshot restore failed).
    let mut deferred: Vec<ReadState> = Vec::new();
    for item in apply.iter() {
        match item {
            Apply::Entries(entries) => apply_entries(&shared, &entries),
            Apply::ConfChange { index, change, .. } => {
                advance(&shared, index);
                shared.confs.complete_matching(|c| *c == change, || Ok(()));
            }
            Apply::Snapshot(snapshot) => {
                if let Err(e) = restore(&shared, &snapshot) {
                    // The node cannot apply anything after a snapshot it cannot load; stopping
                    // is the only way to keep the replicas consistent.
                    error!(index = snapshot.metadata.index, "{e}; stopping the node");
                    shared.handle.stop();
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
}

/// Applies a batch under one write lock, then answers this node's writes outside it.
fn apply_entries(shared: &Shared, entries: &[Entry]) {
    let mut answers = Vec::new();
    {
        let mut store = shared.store.write();
        for entry in entries {
            if entry.index <= store.applied_index() {
                // Already in the store through the snapshot it was restored from.
                continue;
            }
            if let Some((id, outcome)) = store.apply_entry(entry.index, &entry.data)
                && id.node == shared.id
            {
                answers.push((id.seq, outcome));
            }
        }
    }
    for (seq, outcome) in answers {
        shared.writes.complete(seq, Ok(outcome));
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
    let mut store = read(&snapshot.data, shared)
        .map_err(|e| format!("cannot restore the snapshot at index {index}: {e}"))?;
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
