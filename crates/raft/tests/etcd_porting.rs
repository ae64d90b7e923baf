//! What a user porting from etcd's raft reaches for (issue 10, items 5 and 6), each with the
//! behaviour it promises: `max_committed_size_per_ready` (etcd's `MaxCommittedSizePerReady`),
//! `propose_batch` with a typed error, `max_inflight_bytes` (`MaxInflightBytes`),
//! `disable_proposal_forwarding` (`DisableProposalForwarding`), and a `Status` that shows, per
//! follower, whether it is paused and what is in flight (etcd's `Progress` in `Status`).

use raftwood_raft::testkit::script::run_command;
use raftwood_raft::{
    Config, Entry, Error, HardState, MemStorage, Message, MessageBody, NodeId, ProposalDropped,
    RawNode, Role,
};

fn config(id: NodeId) -> Config {
    let mut c = Config::new(id);
    c.election_tick = 10;
    c.heartbeat_tick = 1;
    c
}

fn msg(from: NodeId, to: NodeId, term: u64, body: MessageBody) -> Message {
    Message {
        from,
        to,
        term,
        body,
    }
}

/// Handles every Ready (persist, then collect the messages); returns the messages sent and the
/// committed entries handed out, one Vec per Ready.
fn drain(n: &mut RawNode<MemStorage>) -> (Vec<Message>, Vec<Vec<Entry>>) {
    let (mut sent, mut applied) = (Vec::new(), Vec::new());
    while n.has_ready() {
        let rd = n.ready();
        if let Some(hs) = rd.hard_state {
            n.storage_mut().set_hard_state(hs);
        }
        n.storage_mut().append(&rd.entries);
        sent.extend(rd.messages);
        sent.extend(rd.persisted_messages);
        if !rd.committed_entries.is_empty() {
            applied.push(rd.committed_entries);
        }
        n.advance();
    }
    (sent, applied)
}

/// Node 1 with `cfg`, leader of term 1 of {1, 2, 3}, its empty entry persisted.
fn leader_with(cfg: Config) -> RawNode<MemStorage> {
    let mut n = RawNode::new(cfg, MemStorage::new_with_voters(&[1, 2, 3])).expect("valid");
    n.campaign();
    drain(&mut n);
    for v in [2, 3] {
        let body = MessageBody::VoteResponse {
            pre_vote: false,
            granted: true,
        };
        n.step(msg(v, 1, 1, body)).expect("to n1");
    }
    drain(&mut n);
    assert_eq!(n.status().soft_state.role, Role::Leader);
    n
}

/// A disk with `count` committed entries of term 1, each carrying `payload` bytes.
fn long_committed_log(count: u64, payload: usize) -> MemStorage {
    let mut s = MemStorage::new_with_voters(&[1, 2, 3]);
    let entries: Vec<Entry> = (1..=count)
        .map(|index| Entry {
            index,
            term: 1,
            data: vec![b'x'; payload].into(),
            ..Default::default()
        })
        .collect();
    s.append(&entries);
    s.set_hard_state(HardState {
        term: 1,
        vote: None,
        commit: count,
    });
    s
}

// --- Item 5: max_committed_size_per_ready --------------------------------------------------

/// A node restarting with a long committed log hands it out in Readys of at most
/// `max_committed_size_per_ready` bytes (at least one entry each), in order, every index exactly
/// once. Fails without the cap (one Ready of everything) and if an index is skipped or repeated
/// across Readys.
#[test]
fn committed_entries_are_capped_per_ready_none_skipped_or_repeated() {
    // Entries of 100 + 17 bytes (`Entry::size`): three fit in 400 bytes.
    for (cap, per_ready) in [(400, 3), (117, 1), (1, 1), (u64::MAX, 50)] {
        let mut cfg = config(1);
        cfg.max_committed_size_per_ready = cap;
        let mut n = RawNode::new(cfg, long_committed_log(50, 100)).expect("valid");
        let (_, readys) = drain(&mut n);
        let indexes: Vec<u64> = readys.iter().flatten().map(|e| e.index).collect();
        assert_eq!(indexes, (1..=50).collect::<Vec<_>>(), "cap {cap}");
        assert_eq!(readys.len(), 50usize.div_ceil(per_ready), "cap {cap}");
        for rd in &readys[..readys.len() - 1] {
            assert_eq!(rd.len(), per_ready, "cap {cap}");
        }
        assert_eq!(n.status().applied, 50);
    }
}

/// The cap also applies while a restarted node is applying and new commits arrive: the next Ready
/// continues where the last one ended.
#[test]
fn capped_committed_entries_continue_after_new_commits() {
    let mut cfg = config(2);
    cfg.max_committed_size_per_ready = 300;
    let mut disk = long_committed_log(10, 100);
    disk.set_hard_state(HardState {
        term: 1,
        vote: None,
        commit: 4,
    });
    let mut n = RawNode::new(cfg, disk).expect("valid");
    let rd = n.ready();
    let first: Vec<u64> = rd.committed_entries.iter().map(|e| e.index).collect();
    assert_eq!(first, vec![1, 2]);
    n.advance();
    // The leader says 10 is committed.
    n.step(msg(
        1,
        2,
        1,
        MessageBody::Heartbeat {
            commit: 10,
            context: None,
        },
    ))
    .expect("to n2");
    let (_, readys) = drain(&mut n);
    let rest: Vec<u64> = readys.iter().flatten().map(|e| e.index).collect();
    assert_eq!(rest, (3..=10).collect::<Vec<_>>());
}

#[test]
fn zero_committed_size_per_ready_is_rejected() {
    let mut cfg = config(1);
    cfg.max_committed_size_per_ready = 0;
    assert!(matches!(cfg.validate(), Err(Error::Config(_))));
}

// --- Item 6: propose_batch ---------------------------------------------------------------------

/// A batch is appended whole and in order, in one Ready; refused, it is refused whole, with the
/// same typed error as a single proposal.
#[test]
fn propose_batch_appends_all_or_nothing() {
    let mut cfg = config(1);
    cfg.max_uncommitted_entries_size = 10;
    let mut n = leader_with(cfg);
    n.propose_batch(vec!["a".into(), "b".into(), "c".into()])
        .expect("the leader takes it");
    let rd = n.ready();
    let data: Vec<&[u8]> = rd.entries.iter().map(|e| e.data.as_ref()).collect();
    assert_eq!(data, vec![&b"a"[..], b"b", b"c"]);
    n.advance();
    let last = n.status().last_index;
    let big = vec![vec![b'x'; 5].into(), vec![b'y'; 5].into()];
    assert_eq!(
        n.propose_batch(big),
        Err(Error::ProposalDropped(
            ProposalDropped::UncommittedSizeExceeded {
                uncommitted: 3,
                limit: 10
            }
        ))
    );
    assert_eq!(n.status().last_index, last, "none of the batch appended");
    assert_eq!(
        n.propose_batch(Vec::new()),
        Ok(()),
        "an empty batch does nothing"
    );
}

/// etcd's way, stepping a proposal message into the node itself, no longer swallows the error.
#[test]
fn self_addressed_propose_returns_its_error() {
    let mut n = RawNode::new(config(1), MemStorage::new_with_voters(&[1, 2, 3])).expect("valid");
    let body = MessageBody::Propose {
        entries: vec![Entry::default(); 2],
    };
    assert_eq!(
        n.step(msg(1, 1, 0, body)),
        Err(Error::ProposalDropped(ProposalDropped::NoLeader))
    );
}

/// On a follower, a batch is forwarded to the leader in one message.
#[test]
fn propose_batch_on_a_follower_forwards_one_message() {
    let mut n = RawNode::new(config(2), MemStorage::new_with_voters(&[1, 2, 3])).expect("valid");
    n.step(msg(
        1,
        2,
        1,
        MessageBody::Heartbeat {
            commit: 0,
            context: None,
        },
    ))
    .expect("to n2");
    drain(&mut n);
    n.propose_batch(vec!["a".into(), "b".into()])
        .expect("forwarded");
    let (sent, _) = drain(&mut n);
    let proposals: Vec<usize> = sent
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::Propose { entries } if m.to == 1 => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(proposals, vec![2]);
}

// --- Item 6: disable_proposal_forwarding -----------------------------------------------------

/// With forwarding disabled, a follower refuses proposals, naming the leader to send them to,
/// and sends nothing. Fails if the proposal is forwarded anyway.
#[test]
fn follower_with_forwarding_disabled_refuses_proposals() {
    let mut cfg = config(2);
    cfg.disable_proposal_forwarding = true;
    let mut n = RawNode::new(cfg, MemStorage::new_with_voters(&[1, 2, 3])).expect("valid");
    n.step(msg(
        1,
        2,
        1,
        MessageBody::Heartbeat {
            commit: 0,
            context: None,
        },
    ))
    .expect("to n2");
    drain(&mut n);
    let refused = Err(Error::ProposalDropped(
        ProposalDropped::ForwardingDisabled { leader: 1 },
    ));
    assert_eq!(n.propose("x".into()), refused);
    assert_eq!(n.propose_batch(vec!["y".into()]), refused);
    let (sent, _) = drain(&mut n);
    assert!(
        sent.iter()
            .all(|m| !matches!(m.body, MessageBody::Propose { .. }))
    );
}

// --- Item 6: max_inflight_bytes and Status -----------------------------------------------------

/// A replicating follower's window fills by bytes before it fills by count: with 400-byte entries
/// sent one per append and a budget of 1,000 bytes, three appends go out (the last one may
/// overshoot, as in etcd), and the status shows the follower paused with 3 appends and 1,200
/// bytes in flight. An acknowledgement frees the bytes. Fails without the byte budget (all five
/// appends go out).
#[test]
fn inflight_bytes_bound_appends_and_status_shows_them() {
    for (budget, expected) in [(1000, 3), (0, 5)] {
        let mut cfg = config(1);
        cfg.max_size_per_msg = 500;
        cfg.max_inflight_bytes = budget;
        let mut n = leader_with(cfg);
        // n2 acknowledges the empty entry and moves to replicate.
        n.step(msg(2, 1, 1, MessageBody::AppendAccepted { match_index: 1 }))
            .expect("to n1");
        drain(&mut n);
        for _ in 0..5 {
            n.propose(vec![b'x'; 400].into()).expect("leader");
        }
        let (sent, _) = drain(&mut n);
        let to_n2 = sent
            .iter()
            .filter(|m| {
                m.to == 2
                    && matches!(&m.body, MessageBody::Append { entries, .. } if !entries.is_empty())
            })
            .count();
        assert_eq!(to_n2, expected, "budget {budget}");
        let p2 = n.status().progress[&2];
        assert!(p2.replicating);
        assert_eq!(
            (p2.paused, p2.inflight, p2.inflight_bytes),
            (budget > 0, expected, 400 * expected as u64)
        );
        n.step(msg(2, 1, 1, MessageBody::AppendAccepted { match_index: 2 }))
            .expect("to n1");
        let p2 = n.status().progress[&2];
        assert_eq!((p2.paused, p2.inflight), (false, expected - 1));
        // n3 never answered the probe: it is paused in probe, nothing counted in flight.
        let p3 = n.status().progress[&3];
        assert_eq!((p3.replicating, p3.paused, p3.inflight), (false, true, 0));
    }
}

#[test]
fn inflight_bytes_below_message_size_is_rejected() {
    let mut cfg = config(1);
    cfg.max_size_per_msg = 1000;
    cfg.max_inflight_bytes = 999;
    assert!(matches!(cfg.validate(), Err(Error::Config(_))));
    cfg.max_inflight_bytes = 1000;
    assert_eq!(cfg.validate(), Ok(()));
}

// --- Item 6: the testkit -----------------------------------------------------------------------

/// Nodes with their own `Config` (`nID:option`), a crafted message (`inject`), and dropping by
/// kind (`drop-kind`, until `heal`).
#[test]
fn testkit_per_node_options_inject_and_drop_kind() {
    let mut c = None;
    let mut run = |line: &str| run_command(&mut c, line).expect("a valid command");
    run("add-nodes 3 leader=1 n3:no-forwarding");
    assert_eq!(run("propose 2 x"), "");
    assert_eq!(
        run("propose 3 y"),
        "n3 propose: proposal dropped: forwarding to leader 1 is disabled\n"
    );
    run("(stabilize)");

    // A forged heartbeat from a leader of a later term makes n2 follow it.
    run("inject n3@5 -> n2 Heartbeat commit=0");
    let out = run("deliver 2");
    assert!(
        out.contains("n2@1 follower(n1) ⇨ n2@5 follower(n3)"),
        "{out}"
    );

    assert!(
        run_command(&mut c, "drop-kind Hearbeat").is_err(),
        "a misspelt kind is an error"
    );
    let mut run = |line: &str| run_command(&mut c, line).expect("a valid command");
    run("drop-kind Heartbeat");
    run("tick 1");
    let out = run("stabilize");
    assert!(
        out.contains("→ n3 Heartbeat commit=2 (dropped: kind Heartbeat)"),
        "{out}"
    );
    run("heal");
    run("tick 1");
    let out = run("stabilize");
    assert!(!out.contains("dropped"), "{out}");
}
