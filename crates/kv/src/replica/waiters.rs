//! [`Waiters`]: requests waiting for something the apply thread (or the errors thread) will
//! report, by id. A request registers BEFORE it proposes, so the answer cannot arrive before
//! anyone listens, and holds a [`WaiterGuard`] that removes it when its future is dropped (the
//! HTTP request timed out): the map holds only requests someone still waits for.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

/// One waiting request: its tag and the sender of its answer.
type Entry<M, T> = (M, oneshot::Sender<T>);

/// Waiting requests by id; each carries a `tag` (e.g. a checksum of what it proposed, checked
/// by [`Waiters::complete_if`]) and the sender of its answer.
pub(crate) struct Waiters<M, T> {
    map: Arc<Mutex<HashMap<u64, Entry<M, T>>>>,
}

impl<M, T> Clone for Waiters<M, T> {
    fn clone(&self) -> Self {
        Waiters {
            map: Arc::clone(&self.map),
        }
    }
}

/// Removes its waiter when dropped: the request stopped waiting (answered, or cancelled).
pub(crate) struct WaiterGuard<M, T> {
    waiters: Waiters<M, T>,
    id: u64,
}

impl<M, T> Drop for WaiterGuard<M, T> {
    fn drop(&mut self) {
        self.waiters.map.lock().remove(&self.id);
    }
}

impl<M, T> Waiters<M, T> {
    pub(crate) fn new() -> Self {
        Waiters {
            map: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Registers request `id`; keep the guard for as long as the request waits.
    pub(crate) fn register(&self, id: u64, tag: M) -> (WaiterGuard<M, T>, oneshot::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        self.map.lock().insert(id, (tag, tx));
        let guard = WaiterGuard {
            waiters: self.clone(),
            id,
        };
        (guard, rx)
    }

    /// Answers request `id`, if it still waits.
    pub(crate) fn complete(&self, id: u64, answer: T) {
        if let Some((_, tx)) = self.map.lock().remove(&id) {
            // The receiver may have just been dropped: then nobody wants the answer.
            let _ = tx.send(answer);
        }
    }

    /// Answers request `id` if it still waits and its tag satisfies `matches`; a request whose
    /// tag does not match keeps waiting.
    pub(crate) fn complete_if(&self, id: u64, matches: impl FnOnce(&M) -> bool, answer: T) {
        let mut map = self.map.lock();
        if map.get(&id).is_some_and(|(tag, _)| matches(tag))
            && let Some((_, tx)) = map.remove(&id)
        {
            let _ = tx.send(answer);
        }
    }

    /// Answers every waiting request (the node stopped).
    pub(crate) fn fail_all(&self, answer: impl Fn() -> T) {
        for (_, (_, tx)) in self.map.lock().drain() {
            let _ = tx.send(answer());
        }
    }

    /// How many requests wait.
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_dropped_request_leaves_no_waiter() {
        let waiters: Waiters<(), u64> = Waiters::new();
        let (guard, rx) = waiters.register(1, ());
        assert_eq!(waiters.len(), 1);
        drop(rx);
        drop(guard);
        assert_eq!(waiters.len(), 0);
        // A late answer for it is ignored.
        waiters.complete(1, 7);
        assert_eq!(waiters.len(), 0);
    }

    #[test]
    fn answers_reach_the_right_request() {
        let waiters: Waiters<&str, u64> = Waiters::new();
        let (_g1, mut rx1) = waiters.register(1, "a");
        let (_g2, mut rx2) = waiters.register(2, "b");
        waiters.complete_if(2, |t| *t == "a", 4);
        assert!(
            rx2.try_recv().is_err(),
            "the tag does not match: still waiting"
        );
        waiters.complete_if(2, |t| *t == "b", 5);
        assert_eq!(rx2.try_recv().unwrap(), 5);
        assert!(rx1.try_recv().is_err());
        waiters.complete(1, 9);
        assert_eq!(rx1.try_recv().unwrap(), 9);
        assert_eq!(waiters.len(), 0);
    }
}
