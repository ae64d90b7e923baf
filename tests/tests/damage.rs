//! Damage from outside: garbage bytes on both ports, and WAL files damaged on disk.
//!
//! The contract's "Damage on disk" table: a torn tail of the newest segment (what a crash can
//! leave) is cut away and the node starts with every acknowledged write; invalid bytes followed
//! by a valid commit record (what no crash can leave) make the node refuse to start, with exit
//! status other than 0 and one line on stderr naming the file, never a panic.
//!
//! The binary has no segment-size flag and segments are 64 MiB, so these tests' WALs are one
//! segment; "the middle" is an early batch followed by many intact ones.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use raftwood_tests::cluster::LEADER_TIMEOUT;
use raftwood_tests::{Cluster, http};

/// Deterministic garbage (xorshift64), so a failure can be replayed.
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn segments(data_dir: &Path) -> Vec<PathBuf> {
    let wal = data_dir.join("wal");
    let mut segments: Vec<PathBuf> = fs::read_dir(&wal)
        .unwrap_or_else(|e| panic!("reading {}: {e}", wal.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segments.sort();
    assert!(
        !segments.is_empty(),
        "no *.wal segment in {}",
        wal.display()
    );
    segments
}

fn newest_segment(data_dir: &Path) -> PathBuf {
    segments(data_dir).pop().unwrap()
}

fn write_keys(cluster: &mut Cluster, n: usize) {
    for i in 0..n {
        let value = format!("marker-value-{i:04}-{}", "p".repeat(100));
        cluster.put_ok(1, &format!("key-{i:04}"), value.as_bytes());
    }
}

fn check_keys(cluster: &mut Cluster, via: u64, n: usize) {
    for i in 0..n {
        let value = format!("marker-value-{i:04}-{}", "p".repeat(100));
        assert_eq!(
            cluster.get_ok(via, &format!("key-{i:04}")),
            Some(value.into_bytes()),
            "acknowledged key-{i:04} on node {via}"
        );
    }
}

#[test]
fn wal_corrupted_in_the_middle_refuses_to_start_naming_the_file() {
    let mut cluster = Cluster::start(1);
    write_keys(&mut cluster, 60);
    cluster.stop(1);
    let segment = newest_segment(&cluster.data_dir(1));
    let mut bytes = fs::read(&segment).unwrap();
    let at = bytes
        .windows(17)
        .position(|w| w == b"marker-value-0005")
        .unwrap_or_else(|| panic!("the value of key-0005 is not in {}", segment.display()));
    assert!(
        bytes.len() - at > 50 * 100,
        "key-0005's batch should be followed by the batches of 54 more writes"
    );
    bytes[at + 3] ^= 0x55;
    fs::write(&segment, &bytes).unwrap();

    // Logs off: what is left on stderr is what the contract promises a person.
    cluster.start_node_with_log(1, "off");
    let status = cluster.wait_exit(1, Duration::from_secs(20));
    let stderr = cluster.stderr_of_last_start(1);
    assert!(
        !status.success(),
        "started on a WAL damaged in the middle; stderr: {stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "a panic instead of an error: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert_eq!(lines.len(), 1, "one line on stderr, got: {stderr:?}");
    assert!(
        lines[0].contains(name),
        "the error does not name {name}: {:?}",
        lines[0]
    );
    assert_eq!(
        fs::read(&segment).unwrap(),
        bytes,
        "a refused start changed the segment"
    );
}

#[test]
fn torn_wal_tail_of_garbage_is_cut_and_every_acknowledged_write_kept() {
    let mut cluster = Cluster::start(1);
    write_keys(&mut cluster, 30);
    cluster.stop(1);
    let segment = newest_segment(&cluster.data_dir(1));
    let mut bytes = fs::read(&segment).unwrap();
    let clean_len = bytes.len();
    // Garbage after the last batch, then zeroed space, as a crash mid-write can leave.
    bytes.extend(garbage(3000, 0x5eed));
    bytes.extend(vec![0u8; 4096]);
    fs::write(&segment, &bytes).unwrap();

    cluster.restart(1);
    cluster.wait_leader(LEADER_TIMEOUT);
    check_keys(&mut cluster, 1, 30);
    cluster.put_ok(1, "after-repair", b"yes");
    // The repaired log opens again, with the new write.
    cluster.stop(1);
    for segment in segments(&cluster.data_dir(1)) {
        let repaired = fs::read(&segment).unwrap();
        assert!(
            !repaired
                .windows(64)
                .any(|w| w == &garbage(3000, 0x5eed)[..64]),
            "the garbage was not cut from {} (clean length was {clean_len})",
            segment.display()
        );
    }
    cluster.restart(1);
    cluster.wait_leader(LEADER_TIMEOUT);
    check_keys(&mut cluster, 1, 30);
    assert_eq!(
        cluster.get_ok(1, "after-repair").as_deref(),
        Some(&b"yes"[..])
    );
}

/// A follower's newest segment cut in the middle of its last batch (its commit record half
/// written): it starts, and serves every acknowledged write (the cut batch is sent again by
/// the leader).
#[test]
fn torn_wal_tail_cut_mid_batch_starts_and_serves_every_write() {
    let mut cluster = Cluster::start(3);
    write_keys(&mut cluster, 30);
    let leader = cluster.wait_leader(LEADER_TIMEOUT);
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    cluster.wait_value(
        follower,
        "key-0029",
        format!("marker-value-0029-{}", "p".repeat(100)).as_bytes(),
    );
    cluster.stop(follower);
    let segment = newest_segment(&cluster.data_dir(follower));
    let len = fs::metadata(&segment).unwrap().len();
    // A commit frame is 32 bytes: cutting 7 leaves the last batch without a valid one.
    fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    cluster.restart(follower);
    cluster.wait_leader(LEADER_TIMEOUT);
    check_keys(&mut cluster, follower, 30);
}

fn hold_idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok())
        .collect()
}

#[test]
fn garbage_on_both_ports_leaves_the_nodes_serving() {
    let mut cluster = Cluster::start(3);
    cluster.put_ok(1, "before", b"garbage");
    let quick = Duration::from_millis(500);
    let mut idle = Vec::new();
    for id in cluster.ids() {
        let http_addr = cluster.http_addr(id);
        let peer_addr = cluster.peer_addr(id);
        let http_garbage: [Vec<u8>; 5] = [
            garbage(64 << 10, id),
            b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
            b"PUT /k HTTP/1.1\r\nContent-Length: 100\r\n\r\nshort".to_vec(),
            [
                b"GET /k HTTP/1.1\r\nX: ".as_slice(),
                &[b'a'; 1 << 20],
                b"\r\n\r\n",
            ]
            .concat(),
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), // a TLS ClientHello's start
        ];
        for bytes in &http_garbage {
            http::send_raw(http_addr, bytes, quick).unwrap();
        }
        let peer_garbage: [Vec<u8>; 4] = [
            garbage(64 << 10, id + 100),
            vec![0u8; 64 << 10],
            vec![0xff; 16], // a length prefix as large as it gets, then nothing
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ];
        for bytes in &peer_garbage {
            http::send_raw(peer_addr, bytes, quick).unwrap();
        }
        idle.extend(hold_idle_connections(http_addr, 16));
        idle.extend(hold_idle_connections(peer_addr, 16));
    }
    // Still serving, with the idle connections open: writes and reads through every node.
    for id in cluster.ids() {
        cluster.put_ok(id, &format!("after-{id}"), b"still serving");
    }
    for id in cluster.ids() {
        for key in ["after-1", "after-2", "after-3"] {
            assert_eq!(
                cluster.get_ok(id, key).as_deref(),
                Some(&b"still serving"[..]),
                "{key} on {id}"
            );
        }
        assert_eq!(
            cluster.get_ok(id, "before").as_deref(),
            Some(&b"garbage"[..])
        );
    }
    cluster.check_running();
    drop(idle);
}
