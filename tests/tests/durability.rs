//! Acknowledged writes survive crashes: kill -9 every node while writers stream PUTs, restart
//! them all, and every write that was answered 204 is there on the first read.
//!
//! `RAFTWOOD_FAULT_ROUNDS` (default 1) sets how many write-kill-restart rounds to run; each
//! round checks every write acknowledged in every round so far.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use raftwood_tests::cluster::{HTTP_TIMEOUT, LEADER_TIMEOUT};
use raftwood_tests::{Cluster, http};

const WRITERS: u64 = 3;
/// Writes acknowledged in a round before the crash (the round also ends after `WRITE_FOR`).
const ACKED_BEFORE_CRASH: usize = 30;
const WRITE_FOR: Duration = Duration::from_secs(10);

fn rounds() -> u32 {
    std::env::var("RAFTWOOD_FAULT_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
}

/// Streams unique keys through every node from `WRITERS` threads until `stop`; records each
/// acknowledged write (204) in `acked`. Other answers and errors (503s, connections reset by the
/// crash) are unknown outcomes and are not recorded.
fn spawn_writers(
    cluster: &Cluster,
    round: u32,
    stop: &Arc<AtomicBool>,
    acked: &Arc<Mutex<BTreeMap<String, String>>>,
) -> Vec<thread::JoinHandle<()>> {
    (0..WRITERS)
        .map(|w| {
            let ids = cluster.ids();
            let addr = cluster.http_addr(ids[(w as usize) % ids.len()]);
            let (stop, acked) = (Arc::clone(stop), Arc::clone(acked));
            thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("r{round}-w{w}-{n:06}");
                    let value = format!("value of {key}");
                    let put = http::request(
                        addr,
                        "PUT",
                        &format!("/{key}"),
                        &[],
                        value.as_bytes(),
                        HTTP_TIMEOUT,
                    );
                    match put {
                        Ok(r) if r.status == 204 => {
                            acked.lock().unwrap().insert(key, value);
                        }
                        Ok(_) => {}
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                    n += 1;
                }
            })
        })
        .collect()
}

#[test]
fn kill_9_every_node_during_writes_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(3);
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    for round in 0..rounds() {
        let before = acked.lock().unwrap().len();
        let stop = Arc::new(AtomicBool::new(false));
        let writers = spawn_writers(&cluster, round, &stop, &acked);
        let deadline = Instant::now() + WRITE_FOR;
        while acked.lock().unwrap().len() < before + ACKED_BEFORE_CRASH && Instant::now() < deadline
        {
            cluster.check_running();
            thread::sleep(Duration::from_millis(10));
        }
        // Crash every node while the writers are still writing.
        for id in cluster.ids() {
            cluster.kill9(id);
        }
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.join().unwrap();
        }
        let acked_now = acked.lock().unwrap().clone();
        assert!(
            acked_now.len() > before,
            "round {round}: no write was acknowledged in {WRITE_FOR:?}"
        );
        for id in cluster.ids() {
            cluster.restart(id);
        }
        cluster.wait_leader(LEADER_TIMEOUT);
        // The first answer (503s aside) must hold the value: linearizable reads on every node.
        for (n, (key, value)) in acked_now.iter().enumerate() {
            let id = cluster.ids()[n % 3];
            let got = cluster.get_ok(id, key);
            assert_eq!(
                got.as_deref(),
                Some(value.as_bytes()),
                "round {round}: acknowledged write {key} missing or wrong on node {id} after kill -9"
            );
        }
    }
}

/// kill -9 of a single node right after acknowledged writes: a restarted node replays its own
/// WAL (the writes it acknowledged as a quorum member are in it) and serves them.
#[test]
fn kill_9_of_a_single_node_cluster_keeps_acknowledged_writes() {
    let mut cluster = Cluster::start(1);
    for i in 0..20 {
        cluster.put_ok(1, &format!("k{i:02}"), format!("v{i}").as_bytes());
    }
    cluster.kill9(1);
    cluster.restart(1);
    cluster.wait_leader(LEADER_TIMEOUT);
    for i in 0..20 {
        assert_eq!(
            cluster.get_ok(1, &format!("k{i:02}")),
            Some(format!("v{i}").into_bytes()),
            "k{i:02}"
        );
    }
}
