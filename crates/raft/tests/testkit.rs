//! The simulation's own promises, which every other test relies on: `process` is the steps of
//! handling a Ready in order, a crash keeps exactly what was synced, and a restart with
//! `Config::applied` does not apply again what the state machine kept.

use raftwood_raft::testkit::script::run_command;
use raftwood_raft::testkit::{Cluster, ClusterOptions};
use raftwood_raft::{Storage, Term};

/// Runs `lines` on a fresh cluster and returns everything they printed.
fn run(lines: &[&str]) -> String {
    let mut c = None;
    lines
        .iter()
        .map(|l| run_command(&mut c, l).expect("a valid command"))
        .collect()
}

#[test]
fn process_prints_what_its_steps_print() {
    let setup = ["add-nodes 3 leader=1", "propose 1 x"];
    let whole = run(&[&setup[..], &["process 1", "stabilize"]].concat());
    let steps = run(&[
        &setup[..],
        &[
            "ready 1",
            "send 1",
            "persist 1",
            "send-persisted 1",
            "advance 1",
            "stabilize",
        ],
    ]
    .concat());
    assert_eq!(whole, steps);
    let split = run(&[
        &setup[..],
        &["ready 1", "write 1", "sync 1", "advance 1", "stabilize"],
    ]
    .concat());
    // `write` and `sync` print their own lines instead of `persist`'s; the rest is the same.
    let without = |s: &str| -> String {
        s.lines()
            .filter(|l| !l.contains(" persist ") && !l.contains(" write ") && !l.ends_with(" sync"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(without(&whole), without(&split));
}

/// The last term and vote on node `id`'s synced disk, and its last index.
fn disk(c: &Cluster, id: u64) -> (Term, Option<u64>, u64) {
    let d = c.disk(id).expect("a node of the cluster");
    let hs = d.hard_state();
    (hs.term, hs.vote, d.last_index().expect("memory"))
}

#[test]
fn a_crash_keeps_exactly_what_was_synced() {
    let mut c = Cluster::new(3, ClusterOptions::default());
    c.campaign(1);
    // Written, not synced: lost.
    assert!(c.take_ready(1));
    c.write(1);
    assert_eq!(disk(&c, 1), (0, None, 0), "nothing synced yet");
    c.crash(1);
    assert!(
        c.take_output()
            .contains("n1 crashed, losing unsynced term=1 vote=n1")
    );
    c.restart(1, false);
    assert_eq!(c.node(1).expect("up").status().hard_state.term, 0);
    // Synced, then a crash before advance: kept.
    c.campaign(1);
    assert!(c.take_ready(1));
    c.persist(1);
    assert_eq!(disk(&c, 1), (1, Some(1), 0));
    c.crash(1);
    c.restart(1, false);
    assert_eq!(c.node(1).expect("up").status().hard_state.vote, Some(1));
}

#[test]
fn a_restart_with_applied_does_not_apply_again() {
    let out = run(&[
        "add-nodes 3 leader=1",
        "propose 1 x",
        "stabilize",
        "crash 2",
        "restart 2 applied",
        "tick-stabilize 1",
    ]);
    let (_, after) = out.split_once("n2 restarted applied=2").expect("restarted");
    assert!(
        !after.lines().any(|l| l.starts_with("n2 apply")),
        "n2's state machine kept 1@1 and 2@1=x:\n{out}"
    );
    // Without `applied`, it applies everything again.
    let out = run(&[
        "add-nodes 3 leader=1",
        "propose 1 x",
        "stabilize",
        "crash 2",
        "restart 2",
        "tick-stabilize 1",
    ]);
    let (_, after) = out.split_once("n2 restarted").expect("restarted");
    assert!(after.contains("n2 apply 1@1"), "{out}");
}
