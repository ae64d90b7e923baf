//! Port of raftexample's `TestProposeOnCommit`: three nodes, each feeding every commit back as a
//! proposal for 100 rounds. A node whose application is busy proposing must not stop raft from
//! making progress. Here over the memory network; the TCP version comes with the transport.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::threaded::start;
use crossbeam_channel::select;
use raftwood_node::transport::memory::MemoryNetwork;
use raftwood_node::{Apply, Node, NodeError, Outcome, Proposal};

#[test]
fn propose_on_commit() {
    let started = Instant::now();
    let net = MemoryNetwork::new();
    let nodes: Vec<Node> = (1..=3).map(|id| start(&net, id, 3).0).collect();
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let mut feeders = Vec::new();
    let mut finals = Vec::new();
    for node in nodes {
        let Node {
            handle,
            apply,
            errors,
            thread,
        } = node;
        finals.push((handle.clone(), thread));
        let done = done_tx.clone();
        feeders.push(std::thread::spawn(move || {
            let mut next_id = 1;
            let mut propose = |data| {
                handle.propose(Proposal { id: next_id, data }).unwrap();
                next_id += 1;
            };
            // One message of feedback per node.
            propose(bytes::Bytes::from_static(b"foo"));
            let mut rounds = 0;
            while rounds < 100 {
                select! {
                    recv(apply) -> item => {
                        if let Apply::Entries(ents) = item.unwrap()
                            && let Some(e) = ents.into_iter().find(|e| !e.data.is_empty())
                        {
                            propose(e.data);
                            rounds += 1;
                        }
                    },
                    recv(errors) -> e => match e.unwrap() {
                        // No leader yet, or it changed: raftexample's proposal would have
                        // waited; ours comes back, and is sent again.
                        NodeError::ProposalDropped { .. } => {
                            std::thread::sleep(Duration::from_millis(5));
                            propose(bytes::Bytes::from_static(b"foo"));
                        }
                        other => panic!("error: {other}"),
                    },
                }
            }
            done.send(()).unwrap();
            // Acknowledge the commits from other nodes so raft continues to make progress.
            for _ in apply {}
        }));
    }
    for _ in 0..3 {
        done_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("every node fed back 100 commits");
    }
    for (handle, _) in &finals {
        handle.stop();
    }
    for (_, thread) in finals {
        assert_eq!(thread.join().unwrap().unwrap(), Outcome::Stopped);
    }
    for f in feeders {
        f.join().unwrap();
    }
    eprintln!("propose_on_commit: {:?}", started.elapsed());
}
