//! The threaded loop with a slow application and no other events: waiting apply items move only
//! through the `select!`'s send arm, so every entry still arrives, in order.
#![allow(clippy::unwrap_used)]

mod common;

use common::threaded;

use std::time::Duration;

use bytes::Bytes;
use raftwood_node::transport::memory::MemoryNetwork;
use raftwood_node::{Apply, ManualClock, Proposal};

#[test]
fn a_slow_consumer_gets_everything_without_ticks() {
    let net = MemoryNetwork::new();
    let clock = ManualClock::new();
    let (node, _trace) =
        threaded::start_tuned(&net, 1, 1, clock.clone(), |cfg| cfg.apply_capacity = 1);
    clock.tick(30);
    threaded::wait_leader(&node, 1);
    // No more ticks from here on: only proposals and the application's receives move the loop.
    for i in 0..50u64 {
        node.handle
            .propose(Proposal {
                id: i,
                data: Bytes::from(format!("p{i}")),
            })
            .unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 50 {
        std::thread::sleep(Duration::from_millis(1)); // a slow application
        match node.apply.recv_timeout(Duration::from_secs(10)) {
            Ok(Apply::Entries(ents)) => got.extend(
                ents.into_iter()
                    .filter(|e| !e.data.is_empty())
                    .map(|e| String::from_utf8_lossy(&e.data).into_owned()),
            ),
            Ok(_) => {}
            Err(e) => panic!("stalled after {} entries: {e}", got.len()),
        }
    }
    let expected: Vec<String> = (0..50).map(|i| format!("p{i}")).collect();
    assert_eq!(got, expected);
    node.handle.stop();
    node.thread.join().unwrap().unwrap();
}
