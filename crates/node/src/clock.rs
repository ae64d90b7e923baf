//! The loop's clock: a channel of ticks. The real one ticks at a fixed interval
//! ([`crossbeam_channel::tick`], Go's `time.NewTicker`); the manual one ticks when a test says so,
//! so that a test decides when time passes.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

/// Where the loop's ticks come from. The loop calls [`Clock::ticks`] once and selects on it.
pub trait Clock: Send + 'static {
    /// The channel that delivers one message per tick.
    fn ticks(&self) -> Receiver<Instant>;
}

/// Ticks every `interval` of real time.
#[derive(Clone, Copy, Debug)]
pub struct RealClock {
    /// The time between two ticks.
    pub interval: Duration,
}

impl Clock for RealClock {
    fn ticks(&self) -> Receiver<Instant> {
        crossbeam_channel::tick(self.interval)
    }
}

/// Ticks only when [`ManualClock::tick`] is called (tests).
///
/// ```
/// use raftwood_node::clock::{Clock, ManualClock};
/// let clock = ManualClock::new();
/// let ticks = clock.ticks();
/// clock.tick(2);
/// assert_eq!(ticks.try_iter().count(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    tx: Sender<Instant>,
    rx: Receiver<Instant>,
}

impl ManualClock {
    /// A clock that has not ticked.
    pub fn new() -> ManualClock {
        let (tx, rx) = crossbeam_channel::unbounded();
        ManualClock { tx, rx }
    }

    /// Delivers `n` ticks.
    pub fn tick(&self, n: usize) {
        for _ in 0..n {
            // The receiver is held by `self`: sending cannot fail.
            let _ = self.tx.send(Instant::now());
        }
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn ticks(&self) -> Receiver<Instant> {
        self.rx.clone()
    }
}
