//! [`WalThread`]: a thread that owns the [`Wal`] and syncs off the caller's loop, with group
//! commit. The type's docs say how, and why a crash still leaves at most one unfinished batch.

use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::format::MAX_PAYLOAD_LEN;
use crate::replay::Marker;
use crate::wal::Wal;

/// One record of a [`Batch`], owned.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Record {
    Entry(u64, Bytes),
    State(Bytes),
    Marker(Marker),
    ResetMarker(Marker),
}

/// Records to be made durable together, built without access to the log; see [`WalThread`].
///
/// The methods mirror [`Wal::append_entry`], [`Wal::append_state`], [`Wal::append_marker`] and
/// [`Wal::append_reset_marker`], and chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    records: Vec<Record>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds an entry at `index` (see [`Wal::append_entry`]).
    pub fn entry(&mut self, index: u64, data: impl Into<Bytes>) -> &mut Batch {
        self.records.push(Record::Entry(index, data.into()));
        self
    }

    /// Adds a state record (see [`Wal::append_state`]).
    pub fn state(&mut self, state: impl Into<Bytes>) -> &mut Batch {
        self.records.push(Record::State(state.into()));
        self
    }

    /// Adds a snapshot marker (see [`Wal::append_marker`]).
    pub fn marker(&mut self, marker: Marker) -> &mut Batch {
        self.records.push(Record::Marker(marker));
        self
    }

    /// Adds a log-resetting snapshot marker (see [`Wal::append_reset_marker`]).
    pub fn reset_marker(&mut self, marker: Marker) -> &mut Batch {
        self.records.push(Record::ResetMarker(marker));
        self
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True if the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The first record too large for the log, if any: checked on submit, so that the thread can
    /// fail only on I/O.
    fn check(&self) -> Result<()> {
        for record in &self.records {
            // An entry's payload is its 8-byte index plus its bytes.
            let len = match record {
                Record::Entry(_, data) => data.len() + 8,
                Record::State(data) => data.len(),
                Record::Marker(_) | Record::ResetMarker(_) => 0,
            };
            if len > MAX_PAYLOAD_LEN {
                return Err(Error::RecordTooLarge {
                    len,
                    max: MAX_PAYLOAD_LEN,
                });
            }
        }
        Ok(())
    }

    /// Stages the records into `wal`'s current batch.
    fn stage_into(self, wal: &mut Wal) -> Result<()> {
        for record in self.records {
            match record {
                Record::Entry(index, data) => wal.append_entry(index, &data)?,
                Record::State(state) => wal.append_state(&state)?,
                Record::Marker(marker) => wal.append_marker(marker)?,
                Record::ResetMarker(marker) => wal.append_reset_marker(marker)?,
            }
        }
        Ok(())
    }
}

/// A submitted batch's place in the order of submissions: [`WalThread::wait`] on it returns once
/// the batch, and every batch submitted before it, is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

impl Ticket {
    /// The ticket's number: 1 for the first batch submitted, then consecutive.
    pub fn number(self) -> u64 {
        self.0
    }
}

/// What the submitters and the thread share, under one lock.
#[derive(Debug, Default)]
struct Queue {
    /// Submitted batches the thread has not taken yet, in ticket order.
    batches: Vec<Batch>,
    /// The number of the last ticket handed out.
    submitted: u64,
    /// Invariant: `durable <= submitted`; every ticket up to `durable` is durable.
    durable: u64,
    /// Set when staging or syncing failed: the thread has stopped.
    failed: bool,
    /// Set by `shutdown`: the thread finishes what is queued and stops.
    closing: bool,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the thread when a batch is queued or shutdown begins.
    queued: Condvar,
    /// Wakes waiters when `durable` advances or the thread fails.
    progress: Condvar,
    /// The log; the thread holds it while it stages and syncs, [`WalThread::with_wal`] between.
    wal: Mutex<Wal>,
}

/// A thread that owns a [`Wal`] and syncs off the caller's loop, with group commit.
///
/// [`Wal::sync`] writes and syncs inline, so a raft node that calls it cannot prepare the next
/// `Ready`'s batch while one is syncing. With a `WalThread` the node builds a [`Batch`] (owned
/// records, no access to the log needed), [`WalThread::submit`]s it and gets a [`Ticket`] back at
/// once; [`WalThread::wait`] (from the same thread or any other) returns when that batch is
/// durable.
///
/// # Group commit, and the crash rule
/// Recovery relies on one rule: a crash leaves at most the last batch of the newest segment
/// unfinished. The thread keeps it by construction. It takes *every* batch queued since its last
/// sync, stages all their records into the `Wal` in ticket order, and ends them with one
/// [`Wal::sync`]: one write, one `fdatasync`, **one commit record covering all batches taken
/// together**. While that sync runs, new batches only queue in memory; their bytes reach the file
/// only after it returned. So on disk a group is a single WAL batch: after a crash it comes back
/// whole or not at all, and every ticket in it with it.
///
/// ```text
///  raft loop:   submit(B1) submit(B2)        submit(B3) submit(B4) submit(B5)
///  WAL thread:  [stage B1 B2 | write + fdatasync]  [stage B3 B4 B5 | write + fdatasync]
///  durable:                                    t2                                     t5
/// ```
///
/// The more writers wait, the more batches one `fdatasync` covers: throughput grows with
/// concurrency while each sync costs the same (see the benchmark in `benches/wal.rs`).
///
/// Tickets are handed out in the order batches are queued (one lock covers both), and batches are
/// staged in that order, so concurrent submitters never reorder or lose a batch
/// (`tests/thread.rs`).
///
/// # Failure
/// If staging or syncing fails, the `Wal` is poisoned ([`Error::Poisoned`], fatal for the
/// process): the thread stops, every waiter not yet durable gets [`Error::Poisoned`], later
/// submits are refused, and [`WalThread::shutdown`] returns the error that stopped it.
///
/// ```
/// use raftwood_wal::{Batch, Options, Wal, WalThread};
///
/// let dir = tempfile::tempdir().unwrap();
/// let (wal, _) = Wal::open(dir.path(), Options::default()).unwrap();
/// let thread = WalThread::spawn(wal);
///
/// let mut batch = Batch::new();
/// batch.entry(1, b"put x 1".to_vec()).state(b"term=1".to_vec());
/// let ticket = thread.submit(batch).unwrap();
/// // ... prepare the next batch here while this one syncs ...
/// thread.wait(ticket).unwrap(); // durable now
///
/// let wal = thread.shutdown().unwrap();
/// assert_eq!(wal.last_index(), Some(1));
/// ```
///
/// Non-goals: async (a waiter blocks a thread; a node with an async runtime can wait on a blocking
/// task), and reading the log back while it runs.
///
/// `WalThread` is `Sync`: share it (`Arc<WalThread>`, or scoped threads) to submit and wait from
/// several threads. Dropping it finishes what is queued and stops the thread, like
/// [`WalThread::shutdown`] without the result.
#[derive(Debug)]
pub struct WalThread {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl WalThread {
    /// Moves `wal` to a new thread (named `raftwood-wal`).
    ///
    /// # Panics
    /// If the operating system cannot start a thread (as [`std::thread::spawn`]).
    pub fn spawn(wal: Wal) -> WalThread {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            queued: Condvar::new(),
            progress: Condvar::new(),
            wal: Mutex::new(wal),
        });
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("raftwood-wal".to_string())
            .spawn(move || run(&for_thread))
            .expect("cannot start the WAL thread");
        WalThread {
            shared,
            thread: Some(thread),
        }
    }

    /// Queues `batch` and returns its ticket at once; nothing is written yet. Fails with
    /// [`Error::RecordTooLarge`] (nothing queued) or, once the thread has failed, with
    /// [`Error::Poisoned`].
    pub fn submit(&self, batch: Batch) -> Result<Ticket> {
        batch.check()?;
        let mut queue = self.shared.queue.lock();
        if queue.failed || queue.closing {
            return Err(Error::Poisoned);
        }
        // The ticket is numbered and the batch queued under one lock, so ticket order is queue
        // order is the order on disk.
        queue.submitted += 1;
        queue.batches.push(batch);
        let ticket = Ticket(queue.submitted);
        drop(queue);
        self.shared.queued.notify_one();
        Ok(ticket)
    }

    /// Blocks until the batch of `ticket` (and every batch submitted before it) is durable.
    /// Fails with [`Error::Poisoned`] if the thread failed before that.
    pub fn wait(&self, ticket: Ticket) -> Result<()> {
        let mut queue = self.shared.queue.lock();
        loop {
            if queue.durable >= ticket.0 {
                return Ok(());
            }
            if queue.failed {
                return Err(Error::Poisoned);
            }
            self.shared.progress.wait(&mut queue);
        }
    }

    /// [`WalThread::submit`] then [`WalThread::wait`].
    pub fn commit(&self, batch: Batch) -> Result<()> {
        let ticket = self.submit(batch)?;
        self.wait(ticket)
    }

    /// The highest ticket known durable (0 before the first).
    pub fn durable(&self) -> u64 {
        self.shared.queue.lock().durable
    }

    /// Runs `f` on the log between two groups (to [`Wal::release`] segments, say). It waits
    /// for a sync in progress to finish; records staged through `f` are synced with the next group
    /// (or by `f` itself).
    pub fn with_wal<T>(&self, f: impl FnOnce(&mut Wal) -> T) -> T {
        f(&mut self.shared.wal.lock())
    }

    /// Finishes every queued batch, stops the thread and gives the log back; or the error that
    /// stopped the thread.
    pub fn shutdown(mut self) -> Result<Wal> {
        self.stop()?;
        let shared = self.shared.clone();
        drop(self);
        match Arc::try_unwrap(shared) {
            Ok(shared) => Ok(shared.wal.into_inner()),
            // Not reachable: the thread has exited and `self` is gone, so this was the last Arc.
            Err(_) => Err(Error::Poisoned),
        }
    }

    /// Asks the thread to finish and joins it.
    fn stop(&mut self) -> Result<()> {
        self.shared.queue.lock().closing = true;
        self.shared.queued.notify_one();
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            // The thread panicked: an invariant broke inside the Wal. Pass the panic on.
            Some(Err(panic)) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for WalThread {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::error!(%error, "WAL thread stopped on an error");
        }
    }
}

/// The thread's loop: take every queued batch, stage them in ticket order, sync once.
fn run(shared: &Shared) -> Result<()> {
    loop {
        let (batches, upto) = {
            let mut queue = shared.queue.lock();
            while queue.batches.is_empty() && !queue.closing {
                shared.queued.wait(&mut queue);
            }
            if queue.batches.is_empty() {
                return Ok(());
            }
            (std::mem::take(&mut queue.batches), queue.submitted)
        };
        let result = {
            let mut wal = shared.wal.lock();
            batches
                .into_iter()
                .try_for_each(|batch| batch.stage_into(&mut wal))
                .and_then(|()| wal.sync())
        };
        let mut queue = shared.queue.lock();
        match result {
            Ok(()) => queue.durable = upto,
            Err(error) => {
                queue.failed = true;
                drop(queue);
                shared.progress.notify_all();
                tracing::error!(%error, "WAL thread: a group failed; the log is poisoned");
                return Err(error);
            }
        }
        drop(queue);
        shared.progress.notify_all();
    }
}
