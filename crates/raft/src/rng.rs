//! The node's own random generator, for election-timeout jitter only.
//!
//! A tiny SplitMix64 rather than a dependency: it needs to be seedable, fast and identical on every
//! platform so that a run replays exactly from its seed; cryptographic quality is irrelevant.

/// SplitMix64 (Steele, Lea and Flood, 2014).
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
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
}
