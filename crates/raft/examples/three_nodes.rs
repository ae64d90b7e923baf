//! Three Raft nodes in one process, wired together by hand: no network, no disk, no clock.
//!
//! ```text
//! cargo run -p raftwood-raft --example three_nodes
//! ```
//!
//! Time moves only when we call `tick()`. Nobody is told to campaign: every node waits for its
//! randomized election timeout (in `[10, 20)` ticks), the first to time out asks for votes, wins,
//! and then replicates three proposals. Every message and every state change is printed.

use raftwood_raft::{Config, MemStorage, Message, RawNode, Role, SoftState};

type Node = RawNode<MemStorage>;

fn main() {
    let voters = [1, 2, 3];
    let mut nodes: Vec<Node> = voters
        .iter()
        .map(|&id| {
            // Config::new gives each node its own seed, so their election timeouts differ.
            RawNode::new(Config::new(id), MemStorage::new_with_voters(&voters))
                .expect("a valid config and an empty storage")
        })
        .collect();

    println!("== 1. Nobody leads yet: tick the clock until an election timeout fires");
    let mut leader = None;
    for tick in 1..=100 {
        for node in &mut nodes {
            node.tick();
        }
        if nodes.iter().any(|n| n.has_ready()) {
            println!("-- tick {tick}");
            run_until_quiet(&mut nodes);
        }
        leader = nodes
            .iter()
            .find(|n| n.status().soft_state.role == Role::Leader)
            .map(|n| n.id());
        if leader.is_some() {
            break;
        }
    }
    let leader = leader.expect("a leader within 100 ticks");

    println!();
    println!("== 2. Propose three commands on the leader, node {leader}");
    for cmd in ["x=1", "y=2", "z=3"] {
        println!("node {leader}: propose {cmd:?}");
        nodes[index(leader)]
            .propose(cmd.into())
            .expect("the leader accepts proposals");
    }
    run_until_quiet(&mut nodes);

    println!();
    println!("== 3. Where everyone stands");
    for node in &nodes {
        let st = node.status();
        println!(
            "node {}: {:<9} term={} commit={} applied={} last_index={}",
            st.id,
            st.soft_state.role.to_string(),
            st.hard_state.term,
            st.hard_state.commit,
            st.applied,
            st.last_index
        );
    }
}

/// Handles every node's Ready and delivers the messages, until nothing is left to do. This is the
/// loop a real application runs, with `MemStorage` as the disk and a `Vec` as the network.
fn run_until_quiet(nodes: &mut [Node]) {
    loop {
        let mut in_flight: Vec<Message> = Vec::new();
        for node in nodes.iter_mut() {
            while node.has_ready() {
                let id = node.id();
                let rd = node.ready();
                if let Some(SoftState { role, leader }) = rd.soft_state {
                    let leader = leader.map_or("unknown".to_string(), |l| l.to_string());
                    println!("node {id}: becomes {role} (leader: {leader})");
                }
                // Messages that ask for something may leave at once.
                in_flight.extend(rd.messages);
                // Persist: the hard state (term, vote, commit) and the new entries.
                if let Some(hs) = rd.hard_state {
                    node.storage_mut().set_hard_state(hs);
                }
                node.storage_mut().append(&rd.entries);
                // Acknowledgements (votes, accepted appends) only once that is "durable".
                in_flight.extend(rd.persisted_messages);
                for e in rd.committed_entries {
                    let what = if e.data.is_empty() {
                        "(the new leader's empty entry)".to_string()
                    } else {
                        format!("{:?}", String::from_utf8_lossy(&e.data))
                    };
                    println!("node {id}: apply {}@{} {what}", e.index, e.term);
                }
                node.advance();
            }
        }
        if in_flight.is_empty() {
            return;
        }
        for m in in_flight {
            println!("  {m}");
            let to = index(m.to);
            nodes[to].step(m).expect("addressed to this node");
        }
    }
}

fn index(id: u64) -> usize {
    (id - 1) as usize
}
