//! The node's side of the bounded apply channel: items the channel cannot take yet wait here, in
//! order, and the loop offers the first of them to the channel in its `select!` (a send arm, as
//! raftexample's `publishEntries` selects on `commitC <- ...`), so it never blocks on a slow
//! application. While anything waits, the loop holds committed entries back in raft
//! ([`raftwood_raft::RawNode::set_apply_paused`]), which bounds what waits here to one Ready's
//! worth.

use std::collections::VecDeque;

use crossbeam_channel::{Sender, TrySendError};

use crate::app::Apply;

/// The apply channel's sender and the items waiting for room in it.
pub(crate) struct ApplyQueue {
    tx: Sender<Apply>,
    waiting: VecDeque<Apply>,
    /// A rendezvous channel nobody receives from: its sender is never ready, which is how the
    /// `select!` leaves out the send arm when nothing waits (`never()` exists for receivers only).
    parked: (Sender<Apply>, crossbeam_channel::Receiver<Apply>),
    /// The application dropped its receiver: it has gone, and the node stops.
    closed: bool,
}

impl ApplyQueue {
    pub(crate) fn new(tx: Sender<Apply>) -> ApplyQueue {
        ApplyQueue {
            tx,
            waiting: VecDeque::new(),
            parked: crossbeam_channel::bounded(0),
            closed: false,
        }
    }

    /// Hands `item` to the application, or keeps it (after the ones already waiting, so the order
    /// is kept) if the channel is full.
    pub(crate) fn push(&mut self, item: Apply) {
        if self.waiting.is_empty() {
            match self.tx.try_send(item) {
                Ok(()) => {}
                Err(TrySendError::Full(item)) => self.waiting.push_back(item),
                Err(TrySendError::Disconnected(_)) => self.closed = true,
            }
        } else {
            self.waiting.push_back(item);
        }
    }

    /// Moves waiting items into the channel while it has room.
    pub(crate) fn flush(&mut self) {
        while let Some(item) = self.waiting.pop_front() {
            match self.tx.try_send(item) {
                Ok(()) => {}
                Err(TrySendError::Full(item)) => {
                    self.waiting.push_front(item);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.closed = true;
                    self.waiting.clear();
                    return;
                }
            }
        }
    }

    /// Whether items wait for room: raft must hand out no more committed entries.
    pub(crate) fn is_backed_up(&self) -> bool {
        !self.waiting.is_empty()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// The sender for the `select!`'s send arm: the apply channel when an item waits, else one
    /// that is never ready.
    pub(crate) fn front_sender(&self) -> Sender<Apply> {
        if self.waiting.is_empty() {
            self.parked.0.clone()
        } else {
            self.tx.clone()
        }
    }

    /// The first waiting item; evaluated by `select!` only once its send arm was chosen, which
    /// [`ApplyQueue::front_sender`] allows only when one waits.
    ///
    /// # Panics
    /// If nothing waits: the send arm was chosen on the parked sender, which cannot happen.
    pub(crate) fn take_front(&mut self) -> Apply {
        self.waiting
            .pop_front()
            .expect("invariant violated: the apply send arm was ready with nothing waiting")
    }

    /// The outcome of the `select!`'s send.
    pub(crate) fn sent(&mut self, result: Result<(), crossbeam_channel::SendError<Apply>>) {
        if result.is_err() {
            self.closed = true;
            self.waiting.clear();
        } else {
            self.flush();
        }
    }
}
