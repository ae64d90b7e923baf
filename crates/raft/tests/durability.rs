//! Directed tests for the durability rules, each named after its rule and citing it: what must be
//! on disk before a node answers, and what a commit index may count. Each guards a bug that once
//! passed every other test (a wrong commit rule, a vote sent before it was durable, a leader
//! counting its own unsynced entries, a Ready that did not ask for a sync): each test here fails
//! when that bug is put back into the core.
//!
//! Shaped like `tests/paper_election.rs`: init → step → assert, a single [`RawNode`] through its
//! public API, or the testkit's [`Cluster`] handling a Ready step by step when the rule is about
//! what happens between `ready` and `advance`.

use raftwood_raft::testkit::{Cluster, ClusterOptions};
use raftwood_raft::{
    Config, Entry, HardState, MemStorage, Message, MessageBody, NodeId, RawNode, Term,
};

/// Election after 10..20 ticks, heartbeat every tick.
fn config(id: NodeId) -> Config {
    let mut c = Config::new(id);
    c.election_tick = 10;
    c.heartbeat_tick = 1;
    c
}

fn entry(index: u64, term: Term) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

/// Node `id` of a three-node cluster, restarting from a disk that holds `log` and `hs`.
fn node_from(id: NodeId, log: &[Entry], hs: HardState) -> RawNode<MemStorage> {
    let mut disk = MemStorage::new_with_voters(&[1, 2, 3]);
    disk.append(log);
    disk.set_hard_state(hs);
    RawNode::new(config(id), disk).expect("a consistent disk")
}

/// Handles the node's Ready as an application would and returns it, for inspection.
fn handle(n: &mut RawNode<MemStorage>) -> raftwood_raft::Ready {
    assert!(n.has_ready(), "expected a Ready");
    let rd = n.ready();
    if let Some(hs) = rd.hard_state {
        n.storage_mut().set_hard_state(hs);
    }
    n.storage_mut().append(&rd.entries);
    n.advance();
    rd
}

fn is_answer(m: &Message) -> bool {
    matches!(
        m.body,
        MessageBody::VoteResponse { .. }
            | MessageBody::AppendAccepted { .. }
            | MessageBody::AppendRejected { .. }
    )
}

/// Raft Figure 2, AppendEntries receiver rule 5: "If leaderCommit > commitIndex, set commitIndex =
/// min(leaderCommit, index of last new entry)". Not the follower's last index: beyond the last
/// new entry its log may hold a stale tail that this leader never sent, and committing it would
/// apply an entry the cluster never chose.
#[test]
fn follower_commit_stops_at_last_new_entry_not_at_a_stale_tail() {
    // n3 holds 2@1 and 3@1 from the leader of term 1; only 2@1 made it to the leader of term 2,
    // which has since committed its own entry 3@2.
    let mut n = node_from(
        3,
        &[entry(1, 1), entry(2, 1), entry(3, 1)],
        HardState {
            term: 1,
            vote: None,
            commit: 1,
        },
    );
    // The leader of term 2 (n1) sends an append whose entries all match: 2@1, with commit 3.
    let m = Message {
        from: 1,
        to: 3,
        term: 2,
        body: MessageBody::Append {
            prev_index: 1,
            prev_term: 1,
            entries: vec![entry(2, 1)],
            commit: 3,
        },
    };
    n.step(m).expect("addressed to n3");
    let rd = handle(&mut n);
    assert_eq!(
        n.status().hard_state.commit,
        2,
        "commit = min(leader commit 3, last new entry 2), not the stale 3@1"
    );
    assert!(
        rd.committed_entries.iter().all(|e| e.index <= 2),
        "the stale 3@1 is never applied: {:?}",
        rd.committed_entries
    );
}

/// Raft Figure 2, "Persistent state on all servers (updated on stable storage before responding to
/// RPCs)": votedFor. A vote grant, and a refusal too, goes in `persisted_messages`, which the
/// application sends only after the Ready's hard state is durable (Ready rule 3); a grant sent at
/// once could be forgotten in a crash and cast again in the same term.
#[test]
fn vote_answers_wait_for_the_vote_to_be_durable() {
    for pre_vote in [false, true] {
        let mut n = node_from(
            3,
            &[entry(1, 1)],
            HardState {
                term: 1,
                vote: None,
                commit: 1,
            },
        );
        // A grant (to n1), then a refusal (n2 asks for the same term once n3 has voted).
        for from in [1, 2] {
            let m = Message {
                from,
                to: 3,
                term: 2,
                body: MessageBody::VoteRequest {
                    pre_vote,
                    last_index: 1,
                    last_term: 1,
                    leader_transfer: false,
                },
            };
            n.step(m).expect("addressed to n3");
        }
        let rd = handle(&mut n);
        let answers: Vec<_> = rd
            .persisted_messages
            .iter()
            .filter_map(|m| match m.body {
                MessageBody::VoteResponse { granted, .. } => Some((m.to, granted)),
                _ => None,
            })
            .collect();
        let expect = if pre_vote {
            // A PreVote grant binds nothing, so both are granted.
            vec![(1, true), (2, true)]
        } else {
            vec![(1, true), (2, false)]
        };
        assert_eq!(
            answers, expect,
            "pre_vote={pre_vote}: both answers wait for the disk"
        );
        assert!(
            !rd.messages.iter().any(is_answer),
            "pre_vote={pre_vote}: no vote answer may go before the disk write: {:?}",
            rd.messages
        );
    }
}

/// Raft thesis §10.2.1: a leader may write its new entries in parallel with sending them, but
/// counts its own copy towards a quorum only once it is durable (Ready rule 2: only `advance`
/// says so). Here one follower's acknowledgement arrives while the leader's own write is still
/// outstanding: one copy of three is not a majority, so nothing commits until `advance`.
#[test]
fn leader_counts_its_own_entries_only_after_advance() {
    let mut c = Cluster::new(3, ClusterOptions::default());
    c.campaign(1);
    c.stabilize();
    let broken = c.take_verdicts();
    assert!(broken.is_empty(), "electing n1 broke a rule: {broken:?}");
    assert_eq!(c.leader(), Some(1));
    let commit = |c: &Cluster| c.node(1).expect("up").status().hard_state.commit;
    let before = commit(&c);
    c.propose(1, "x".into());
    // The leader takes its Ready and sends the append, but has not persisted it yet.
    assert!(c.take_ready(1));
    c.send_messages(1);
    // n2 persists the entry and acknowledges it; n3 hears nothing.
    c.isolate(3);
    c.deliver_all();
    c.process(2);
    c.deliver_all();
    assert_eq!(
        commit(&c),
        before,
        "an acknowledgement from n2 alone does not commit while n1's own copy is not durable"
    );
    c.advance(1);
    assert_eq!(
        commit(&c),
        before + 1,
        "n1's durable copy makes the majority"
    );
    assert!(c.check_safety().is_ok());
}

/// Ready rule 1: `must_sync` whenever the Ready changes the term or the vote, even with no
/// entries. A new term or vote that is written but not synced can be lost in a crash after the
/// node has acted on it (answered a vote), and then it may vote again in the same term.
#[test]
fn a_new_term_or_vote_alone_must_be_synced() {
    let mut n = node_from(
        3,
        &[entry(1, 1)],
        HardState {
            term: 1,
            vote: None,
            commit: 1,
        },
    );
    // A heartbeat of a newer term: the term changes, nothing else.
    let m = Message {
        from: 1,
        to: 3,
        term: 2,
        body: MessageBody::Heartbeat {
            commit: 1,
            context: None,
        },
    };
    n.step(m).expect("addressed to n3");
    let rd = handle(&mut n);
    assert!(rd.entries.is_empty());
    assert_eq!(rd.hard_state.map(|hs| hs.term), Some(2));
    assert!(rd.must_sync, "a new term alone must be synced");
    // A vote in that term: the vote changes, nothing else.
    let m = Message {
        from: 2,
        to: 3,
        term: 3,
        body: MessageBody::VoteRequest {
            pre_vote: false,
            last_index: 1,
            last_term: 1,
            leader_transfer: false,
        },
    };
    n.step(m).expect("addressed to n3");
    let rd = handle(&mut n);
    assert!(rd.entries.is_empty());
    assert_eq!(
        rd.hard_state.map(|hs| (hs.term, hs.vote)),
        Some((3, Some(2)))
    );
    assert!(rd.must_sync, "a new vote alone must be synced");
}
