//! The node's own random generator, for election-timeout jitter only.
//!
//! A tiny SplitMix64 rather than a dependency: it needs to be seedable, fast and identical on every
//! platform so that a run replays exactly from its seed; cryptographic quality is irrelevant.

/// SplitMix64's step ("gamma"): the golden ratio in 64 bits.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function: a bijection that scatters nearby inputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64 (Steele, Lea and Flood, 2014).
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// The seed is scrambled before use. SplitMix64's state advances by a fixed step, so two
    /// seeds that differ by a multiple of that step would give the same sequence shifted by a few
    /// draws, and nodes drawing in lockstep (all losing a split vote together) would keep drawing
    /// equal timeouts and split every vote from then on. `Config::new` derives seeds as
    /// `id * step`, exactly such a family; the property tests found the livelock.
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(mix(seed))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        mix(self.0)
    }

    /// A number uniform in `[low, high)` (up to a negligible modulo bias for small ranges).
    pub(crate) fn in_range(&mut self, low: usize, high: usize) -> usize {
        debug_assert!(low < high);
        low + (self.next_u64() % (high - low) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            let x = a.in_range(10, 20);
            assert_eq!(x, b.in_range(10, 20));
            assert!((10..20).contains(&x));
        }
    }

    /// Seeds one step apart (as `Config::new` gives nodes 1, 2, 3) must not give shifted copies
    /// of one sequence, or nodes would draw equal election timeouts forever.
    #[test]
    fn seeds_one_step_apart_are_not_shifted_copies() {
        let (mut a, mut b) = (Rng::new(GAMMA), Rng::new(GAMMA.wrapping_mul(2)));
        let _ = a.next_u64();
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        assert_ne!(xs, ys);
    }
}
