//! Capped exponential backoff with jitter, for reconnecting to a peer. Jitter keeps the
//! members of a cluster that lost a peer at the same instant from all redialing it in step.

use std::time::Duration;

/// A tiny xorshift64 generator: jitter needs spread, not quality, and no dependency.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value; zero, xorshift's one fixed point, is replaced).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Delays between dial attempts: "equal jitter" (half the current step, plus a random part of
/// the other half), the step doubling after each failure up to `max`, back to `min` on success.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
    rng: XorShift,
}

impl Backoff {
    /// A backoff between `min` and `max` (`max` is raised to `min` if below it).
    pub fn new(min: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            step: min,
            rng: XorShift::new(seed),
        }
    }

    /// The delay before the next attempt, always within `[min / 2, max]`.
    pub fn next_delay(&mut self) -> Duration {
        let half = self.step / 2;
        let spread = u64::try_from(half.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let delay = half + Duration::from_nanos(self.rng.next_u64() % spread);
        self.step = (self.step * 2).min(self.max);
        delay
    }

    /// Called after a successful connection.
    pub fn reset(&mut self) {
        self.step = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_capped_jitter_and_reset() {
        let (min, max) = (Duration::from_millis(10), Duration::from_millis(100));
        let mut b = Backoff::new(min, max, 42);
        let delays: Vec<_> = (0..20).map(|_| b.next_delay()).collect();
        assert!(delays.iter().all(|d| *d >= min / 2 && *d <= max));
        assert!(
            delays[15..].iter().all(|d| *d >= max / 2),
            "grows to the cap"
        );
        let distinct: std::collections::BTreeSet<_> = delays[10..].iter().collect();
        assert!(distinct.len() > 1, "jittered");
        b.reset();
        assert!(b.next_delay() <= min);
    }
}
