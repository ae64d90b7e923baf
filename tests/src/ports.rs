//! Ports for nodes that cannot collide with each other.
//!
//! Why not `bind(127.0.0.1:0)` and hand the port to the child: the OS picks such ports from the
//! ephemeral range (32768–60999 on Linux), the same range it picks the local port of every
//! outgoing connection from. A port probed free and released is then fair game for any
//! `connect` on the machine until the child binds it, and a node restarted on its old port
//! would meet the same race again.
//!
//! So ports come from 20000–32000, below the ephemeral range, where only explicit binds land.
//! Within a test process a shared atomic counter hands out each port once (tests run on
//! parallel threads); the counter starts at a random place so that two test processes (two
//! checkouts, two helpers) start far apart; each port is probed with a bind before it is handed
//! out. What remains: another process binding the same port between the probe and the child's
//! bind. Then the node fails to start with "address in use" in its log, which the harness
//! prints; rerunning picks other ports.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The first port handed out.
pub const FIRST: u16 = 20_000;
/// One past the last port handed out (Linux's ephemeral range starts at 32768).
pub const END: u16 = 32_000;

const SPAN: u32 = (END - FIRST) as u32;

fn counter() -> &'static AtomicU32 {
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    NEXT.get_or_init(|| {
        // RandomState is seeded randomly per process: a random start without a crate.
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        // Truncation intended: any 32 bits of the hash will do.
        AtomicU32::new(hasher.finish() as u32 % SPAN)
    })
}

/// `n` consecutive ports, none handed out before in this process, each free when probed.
///
/// # Panics
/// When no such block is found after trying the whole range once.
pub fn block(n: u16) -> u16 {
    assert!(n >= 1 && u32::from(n) < SPAN / 4, "block of {n} ports");
    for _ in 0..SPAN / u32::from(n) {
        let start = counter().fetch_add(u32::from(n), Ordering::Relaxed) % SPAN;
        if start + u32::from(n) > SPAN {
            continue; // would wrap past END: take the next block
        }
        let first = FIRST + u16::try_from(start).expect("start < SPAN fits in u16");
        if (first..first + n).all(is_free) {
            return first;
        }
    }
    panic!("no block of {n} free ports between {FIRST} and {END}")
}

/// One port, as [`block`]`(1)`.
pub fn one() -> u16 {
    block(1)
}

/// Whether `port` can be bound on 127.0.0.1 right now.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::thread;

    #[test]
    fn ports_handed_to_parallel_threads_never_repeat() {
        let threads: Vec<_> = (0..4)
            .map(|_| thread::spawn(|| (0..50).map(|_| one()).collect::<Vec<_>>()))
            .collect();
        let mut seen = HashSet::new();
        for t in threads {
            for port in t.join().unwrap() {
                assert!((FIRST..END).contains(&port), "{port}");
                assert!(seen.insert(port), "port {port} handed out twice");
            }
        }
    }

    #[test]
    fn a_block_is_consecutive_in_range_and_free() {
        let first = block(8);
        assert!(first >= FIRST && first + 8 <= END);
        assert!((first..first + 8).all(is_free));
    }

    #[test]
    fn a_bound_port_is_not_free() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(!is_free(listener.local_addr().unwrap().port()));
    }
}
