//! The node's own random generator, for election-timeout jitter only.
//!
//! A tiny SplitMix64 rather than a dependency: it needs to be seedable, fast and identical on every
//! platform so that a run replays exactly from its seed; cryptographic quality is irrelevant.

/// SplitMix64 (Steele, Lea and Flood, 2014).
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`, scrambled first. SplitMix64 walks one cycle in steps of
    /// its constant, so two raw seeds that differ by a small multiple of that constant (as
    /// `Config::new`'s per-id seeds do) would give each node the same sequence as its neighbour,
    /// shifted by a draw or two, and their election timeouts would collide in lockstep. Mixing
    /// the seed first puts every node at an unrelated point of the cycle.
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(Rng(seed).next_u64())
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

    #[test]
    fn neighbouring_seeds_are_not_shifted_copies() {
        // Config::new seeds node `id` with `id * 0x9e37_79b9_7f4a_7c15`, SplitMix64's step.
        let seed = |id: u64| id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let (mut a, mut b) = (Rng::new(seed(1)), Rng::new(seed(2)));
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert!(
            xs[1..] != ys[..7] && ys[1..] != xs[..7],
            "one node's draws are another's, shifted"
        );
    }
}
