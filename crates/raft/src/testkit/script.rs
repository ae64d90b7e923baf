//! The scenario language: one command per line, driving a [`Cluster`], and the runner for
//! scenario files with their expected output (in the spirit of etcd's datadriven tests).
//!
//! A scenario file is a list of cases. Lines starting with `#` and blank lines are kept as they
//! are. A case is one command line, a line `----`, and the output the command is expected to
//! produce, up to the next blank line:
//!
//! ```text
//! # A single node elects itself.
//! add-nodes 1
//! ----
//! ok
//!
//! campaign 1
//! ----
//! ok
//! ```
//!
//! Set `RAFTWOOD_REWRITE=1` to rewrite the expected output with what the commands produce now;
//! review the diff before committing it. A file of bare commands, one per line (how a failing
//! property test prints its schedule), is a valid start: the rewrite fills in every output.
//!
//! The safety checks ([`super::safety`]) run after every command (and the Ready rules at every
//! Ready); a violation is printed as a line starting with `SAFETY VIOLATION`, so it shows up as a
//! diff in any scenario. A liveness failure (a `stabilize` or `await-*` reaching its bound) prints
//! `LIVENESS FAILURE`. [`run`] also returns both as [`Verdict`]s, for the property tests.
//!
//! # Notation
//! | written | means |
//! | --- | --- |
//! | `n1@2` | node 1, in term 2 |
//! | `3@2` | the entry at index 3, of term 2 (`last=3@2`: the last entry; `prev=3@2`: the append's consistency check) |
//! | `follower(n1)` | a follower of n1; `follower` alone knows no leader |
//! | `n1@1 follower(n2) ⇨ n1@2 candidate` | a role or term change, printed at the step that causes it |
//! | `n1@1 → n2 VoteRequest last=0@0` | a message delivered, from n1 in term 1 to n2, named after its `MessageBody` variant (`pre_vote` marks a PreVote request or response) |
//! | `n1 persist term=1 vote=n1 entries=[1@1]` | a Ready written and synced: the term and vote when they change, the entries |
//! | `n1 write …` / `n1 sync` | the same in two steps (`write`, then `sync`) |
//! | `n1 crashed, losing unsynced entries=[2@1]` | a crash, with what it lost |
//! | `n1 apply 1@1 2@1=x` | entries applied, with their data if any |
//! | `3@1=conf-change(add n4)` | a conf-change entry, applied; the application then applies it: `n1 conf change add n4: voters [1 2 3 4]` |
//! | `(dropped: n1 removed n3)` | a message from a node its recipient has removed from the cluster, dropped as etcd's server drops it |
//! | `n1 read ctx=r1 index=3` | a `ReadState` handed out: read r1 may be served once n1 has applied index 3 |
//! | `n1 read dropped ctx=r1` | read r1 will never be answered (`Ready::dropped_reads`) |
//! | `ctx=r1` on a `Heartbeat` or `HeartbeatResponse` | the read context riding on the heartbeat round |
//! | `progress={2:1→2}` | a leader's view of peer 2: match index 1 → next index 2 |
//! | `n1@2 → n3 Snapshot 5@1 voters=[1, 2, 3]` | InstallSnapshot: the leader's snapshot, ending at entry 5 of term 1, with its configuration |
//! | `n3 persist snapshot=5@1 …` / `n3 apply snapshot=5@1` | a Ready's snapshot persisted (before its entries), then loaded into the state machine (before its committed entries) |
//! | `n1 snapshot=5 compacted=4` | node 1's application snapshotted its state at its applied index 5 and dropped the log up to 4 |
//! | `n1 report-snapshot n3 ok` / `failed` | the outcome of a snapshot transfer, reported to the leader (the simulated transport reports every snapshot it carries: `ok` when delivered, `failed` when lost) |
//!
//! # Handling a Ready step by step
//! `process ID` handles a Ready in one go. The step commands take it apart, so that other things
//! can happen in between (a crash, a delivery): `ready ID` takes it; `send ID` sends its
//! `messages`; `persist ID` writes and syncs it (or `write ID`, then `sync ID`; a crash between
//! them loses the write; `sync` does nothing if `must_sync` is false); `send-persisted ID` sends
//! its `persisted_messages`; `advance ID` applies its committed entries and calls `advance`. A
//! step first does the steps it depends on that were skipped (`send-persisted` persists first;
//! `advance` does all), so the order of the Ready contract is always kept. A node has at most one
//! Ready outstanding; `stabilize` finishes it.
//!
//! Any command can be written in parentheses, `(stabilize)`: it runs as usual but its output is
//! discarded (a safety violation is still printed), so the case reads `ok`. Use it for steps the
//! reader needs to know happened but not to see, like a second replay of a known prefix.
//!
//! # Commands
//! | command | effect |
//! | --- | --- |
//! | `add-nodes N [OPTION...]` | creates nodes 1..=N, all voters (the first command; a later one starts over); options below |
//! | `campaign ID` | node ID starts an election now |
//! | `propose ID DATA` | node ID proposes DATA |
//! | `propose-leader DATA` | the current leader proposes DATA |
//! | `read-index ID CTX` | node ID's application asks for a linearizable read identified by CTX (unique per read); answered later as `nID read ctx=CTX index=I` |
//! | `tick ID [COUNT]` | ticks node ID, COUNT times (default 1) |
//! | `tick-all [COUNT]` | ticks every running node, COUNT times |
//! | `tick-stabilize [COUNT]` | COUNT times: ticks every running node once, then stabilizes |
//! | `process [ID...]` | handles the Ready of the given nodes (default: all); a node with a Ready outstanding is left alone (finish it with `advance ID`) |
//! | `ready ID` | takes node ID's Ready (checking the Ready rules), if it has none outstanding |
//! | `send ID`, `persist ID`, `write ID`, `sync ID`, `send-persisted ID`, `advance ID` | the steps of handling the outstanding Ready (see above) |
//! | `deliver [ID...]` | delivers queued messages (to the given nodes; default: all) |
//! | `resend-append TO BACK [COUNT]` | the current leader sends TO an append of COUNT entries (default 1) after index `last - BACK` of its log, as a leader backing off one index at a time could |
//! | `deliver-at I`, `drop-at I`, `dup-at I` | delivers, drops, duplicates the I-th queued message (modulo the queue length) |
//! | `drop-snapshots` | drops every snapshot in the network (each reported failed by the sender's transport) |
//! | `stabilize` | processes and delivers until nothing is left to do |
//! | `cut A B`, `isolate ID`, `partition A B / C D`, `heal` | network faults (`heal` also ends every `drop-kind`) |
//! | `isolate-leader` | isolates the current leader (the node `status` would show leading the highest term) |
//! | `drop-kind KIND` | the network drops every message of KIND (a `MessageBody` variant, as printed: `TimeoutNow`, `Append`...) at delivery, until `heal`; an unknown KIND is an error |
//! | `inject MESSAGE` | queues a crafted message, written as the output prints one (`inject n1@2 → n3 TimeoutNow`; `->` for `→` is fine; see [`super::notation`]) |
//! | `transfer-leader FROM TO` | node FROM (the leader) hands its leadership to TO (thesis §3.10); a refusal is printed; FROM may be `leader`, the current leader |
//! | `propose-batch ID DATA...` | node ID proposes the DATAs as one batch (`RawNode::propose_batch`) |
//! | `crash ID`, `crash-mid-ready ID`, `restart ID [applied]` | node faults: a crash loses what is not synced (`crash-mid-ready`: takes a Ready and sends its `messages` first); `applied` restarts with `Config::applied` set to what its state machine had applied |
//! | `crash-leader-mid-replication` | the leader proposes two entries, replicates the first to every follower (no acknowledgement delivered) and the second to one, then crashes |
//! | `tick-until-leader MAX` | ticks all and stabilizes, printing everything, until a new leader holds the highest term (at most MAX ticks) |
//! | `restart-all` | restarts every crashed node |
//! | `await-leader MAX` | ticks all and stabilizes until a leader exists, at most MAX ticks; says how many it took |
//! | `await-stable-leader MAX` | the same, until every running node has followed one leader in its term for 20 ticks in a row |
//! | `await-applied DATA MAX` | ticks all and stabilizes until every node applied DATA |
//! | `add-node ID` | a new, empty node ID that will join: it starts with the bootstrap configuration and learns the rest from the log ([`Cluster::add_node`]); not a voter until a change adds it |
//! | `conf-change ID add\|remove NODE` | node ID proposes adding NODE as a voter, or removing it (forwarded if ID follows); a refusal is printed |
//! | `add-voter` | a new node (the next free id) is added, and the leader proposes making it a voter |
//! | `remove-voter K` | the leader proposes removing its K-th voter (K modulo their count; it may be itself), if at least 3 voters would remain |
//! | `status [ID...]` | one status line per node |
//! | `log ID` | node ID's log (from its first index: a compacted prefix is shown as `snapshot=I@T`) |
//! | `compact ID [INDEX]` | node ID's application snapshots its state machine at its applied index and compacts the log up to INDEX (default, and at most: the applied index) |
//! | `report-snapshot FROM TO ok\|fail` | FROM's application reports the snapshot it sent TO delivered or failed (the transport does this by itself for every snapshot; the command replays a report, stale or not) |
//! | `report-unreachable FROM TO` | FROM's transport reports TO unreachable: a follower FROM streams to is probed again |
//! | `(COMMAND)` | runs COMMAND silently: prints `ok` (or a safety violation or liveness failure) |
//!
//! The `await-*` commands print no messages, only what they lead to, in the notation above: the
//! role-change line when a node stands for election (`n2@2 follower(n1) ⇨ n2@3 candidate`) or
//! wins (`n2@3 candidate ⇨ n2@3 leader`), and `n1 apply 4@2=v1` when a node applies entries (at
//! most one line per node and tick), then the outcome.
//!
//! ## `add-nodes` options
//! | option | effect |
//! | --- | --- |
//! | `pre-vote`, `check-quorum` | turn PreVote, CheckQuorum on |
//! | `lease-read` | leaders answer reads from their lease (`ReadOnlyOption::LeaseBased`; refused without `check-quorum`) |
//! | `seed=S` | varies the election timeouts |
//! | `max-size=B`, `max-inflight=K` | override `max_size_per_msg` and `max_inflight_msgs` |
//! | `max-inflight-bytes=B`, `max-committed-size=B`, `no-forwarding` | set `max_inflight_bytes`, `max_committed_size_per_ready`, `disable_proposal_forwarding` |
//! | `nID:OPTION` | any option above from `pre-vote` to here, for node ID only (`n3:check-quorum`, `n1:max-committed-size=100`): nodes with their own `Config` |
//! | `nID=T,T,...` | node ID starts with this log, given by the terms of its entries 1, 2, ... (`n3=1,1,2` is `1@1 2@1 3@2`); nodes not named start empty |
//! | `term=T` | every node starts in term T (or its last entry's term, if higher); no votes cast |
//! | `commit=C` | every node starts with commit index C (or its last index, if lower): give C only up to where the logs agree |
//! | `leader=ID` | then node ID campaigns and everything settles; prints the leader's status line |
//!
//! Nodes started with logs restart from those disks ([`Cluster::with_disks`]): followers that know
//! no leader, with nothing applied yet. So `add-nodes 5 n1=1,2 n2=1,2 n3=1 n4=1 n5=1 term=2
//! commit=1` is the Figure 8 (a) cluster: n1 and n2 hold `1@1 2@2`, the others `1@1`, and `1@1`
//! is committed. `add-nodes 3 leader=1` is the usual start: n1 leads term 1, and every node has
//! applied its empty entry `1@1`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::liveness::{SETTLE_TICKS, await_ticks, current_leader, missing, stable_leader};
use super::notation::{KINDS, parse_message};
use super::safety::Verdict;
use super::{Cluster, ClusterOptions};
use crate::{
    ConfChange, Config, Entry, HardState, Index, MemStorage, NodeId, ReadOnlyOption, Term,
};

// The runner for scenario files lives beside this module; its functions belong to the language.
pub use super::scenario_file::{run_file, run_text};

/// What a command did: its output, and the failures it found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The output, as a scenario file records it.
    pub output: String,
    /// The safety violations and liveness failures, also printed in `output`.
    pub verdicts: Vec<Verdict>,
}

/// Runs one command against `cluster` (creating it for `add-nodes`) and returns its output.
///
/// ```
/// use raftwood_raft::testkit::script::run_command;
///
/// let mut c = None;
/// // An elected cluster in one line: the leader's status line.
/// let out = run_command(&mut c, "add-nodes 3 leader=1").unwrap();
/// assert!(out.starts_with("n1@1 leader last=1@1 commit=1"));
/// // A silent command prints nothing (a scenario file shows `ok`).
/// assert_eq!(run_command(&mut c, "(propose 1 x)").unwrap(), "");
/// assert_eq!(run_command(&mut c, "(stabilize)").unwrap(), "");
/// assert_eq!(run_command(&mut c, "log 3").unwrap(), "n3: 1@1 2@1\n");
///
/// // Nodes started from given logs, in a later term.
/// run_command(&mut c, "add-nodes 3 n1=1,1,2 n2=1,1 term=3 commit=2").unwrap();
/// assert_eq!(run_command(&mut c, "log 1").unwrap(), "n1: 1@1 2@1 3@2\n");
/// assert_eq!(run_command(&mut c, "log 3").unwrap(), "n3:\n");
/// let status = run_command(&mut c, "status 2").unwrap();
/// assert_eq!(status, "n2@3 follower last=2@1 commit=2 applied=0\n");
/// ```
pub fn run_command(cluster: &mut Option<Cluster>, line: &str) -> Result<String, String> {
    run(cluster, line).map(|o| o.output)
}

/// Runs one command, like [`run_command`], and returns its output with its verdicts.
pub fn run(cluster: &mut Option<Cluster>, line: &str) -> Result<Outcome, String> {
    let mut output = command(cluster, line)?;
    let Some(c) = cluster.as_mut() else {
        return Ok(Outcome {
            output,
            verdicts: Vec::new(),
        });
    };
    let verdicts = c.take_verdicts();
    // A verdict found while a command's output was not printed (an `await-*`) is still shown.
    for v in &verdicts {
        let line = v.to_string();
        if !output.contains(&line) {
            output.push_str(&line);
            output.push('\n');
        }
    }
    Ok(Outcome { output, verdicts })
}

fn command(cluster: &mut Option<Cluster>, line: &str) -> Result<String, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&cmd, args)) = words.split_first() else {
        return Ok(String::new());
    };
    // The silent form: run the command inside the parentheses and keep only what must never go
    // unseen (a safety violation, a liveness failure; their verdicts stay with the cluster for
    // `run`). Errors are still reported.
    if let Some(inner) = line
        .trim()
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
    {
        let out = command(cluster, inner)?;
        return Ok(out
            .lines()
            .filter(|l| l.starts_with("SAFETY VIOLATION") || l.starts_with("LIVENESS FAILURE"))
            .map(|l| format!("{l}\n"))
            .collect());
    }
    if cmd == "add-nodes" {
        let (c, out) = add_nodes(args)?;
        *cluster = Some(c);
        return Ok(out);
    }
    let c = cluster
        .as_mut()
        .ok_or("no cluster yet: start with add-nodes")?;
    let ids = |from: usize| -> Result<Vec<NodeId>, String> {
        if args.len() <= from {
            Ok(c.ids())
        } else {
            args[from..].iter().map(|a| parse(a)).collect()
        }
    };
    match cmd {
        "campaign" => c.campaign(arg(args, 0)?),
        "propose" => {
            c.propose(
                arg(args, 0)?,
                args.get(1).copied().unwrap_or("").to_owned().into(),
            );
        }
        "propose-batch" => {
            let id: NodeId = arg(args, 0)?;
            let batch = args[1..].iter().map(|d| d.to_string().into()).collect();
            c.propose_batch(id, batch);
        }
        // The application of node ID asks for a linearizable read; the answer shows up as
        // `nID read ctx=CTX index=I` when a later Ready hands it out.
        "read-index" => {
            let ctx = args.get(1).copied().unwrap_or("").to_owned();
            c.read_index(arg(args, 0)?, ctx.into());
        }
        "propose-leader" => match c.leader() {
            Some(l) => {
                if !c.propose(l, args.first().copied().unwrap_or("").to_owned().into()) {
                    c.fail(Verdict::Liveness(format!("n{l} refused the proposal")));
                }
            }
            None => c.fail(Verdict::Liveness("no leader to propose to".into())),
        },
        "tick" => {
            let (id, count) = (arg(args, 0)?, opt_arg(args, 1, 1)?);
            (0..count).for_each(|_| c.tick(id));
        }
        "tick-all" => {
            for _ in 0..opt_arg(args, 0, 1)? {
                c.ids().into_iter().for_each(|id| c.tick(id));
            }
        }
        // Time passing on a healthy network: every tick's consequences (heartbeats, elections)
        // play out before the next tick, so the output reads as a timeline.
        "tick-stabilize" => {
            for _ in 0..opt_arg(args, 0, 1)? {
                c.ids().into_iter().for_each(|id| c.tick(id));
                if !c.stabilize() {
                    break;
                }
            }
        }
        "process" => ids(0)?.into_iter().for_each(|id| {
            c.process(id);
        }),
        "ready" => {
            let id = arg(args, 0)?;
            if !c.take_ready(id) {
                let why = if c.has_outstanding(id) {
                    "one is outstanding"
                } else {
                    "nothing to do"
                };
                c.say(format!("n{id}: no Ready ({why})"));
            }
        }
        "send" => c.send_messages(arg(args, 0)?),
        "resend-append" => {
            let (to, back, count) = (arg(args, 0)?, arg(args, 1)?, opt_arg(args, 2, 1)?);
            if !c
                .leader()
                .is_some_and(|l| c.resend_append(l, to, back, count))
            {
                c.say("no leader to resend from");
            }
        }
        "persist" => c.persist(arg(args, 0)?),
        "write" => c.write(arg(args, 0)?),
        "sync" => c.sync(arg(args, 0)?),
        "send-persisted" => c.send_persisted(arg(args, 0)?),
        "advance" => c.advance(arg(args, 0)?),
        "deliver" => {
            let to = ids(0)?;
            let mut i = 0;
            let n = c.queue().len();
            for _ in 0..n {
                if to.contains(&c.queue()[i].to) {
                    c.deliver_at(i);
                } else {
                    i += 1;
                }
            }
        }
        "deliver-at" | "drop-at" | "dup-at" => {
            let len = c.queue().len();
            if len > 0 {
                let i = arg::<usize>(args, 0)? % len;
                match cmd {
                    "deliver-at" => c.deliver_at(i),
                    "drop-at" => c.drop_at(i),
                    _ => c.duplicate_at(i),
                }
            }
        }
        "stabilize" => {
            c.stabilize();
        }
        // A snapshot is the message most likely to be lost to a broken stream.
        "drop-snapshots" => c.drop_snapshots(),
        "cut" => c.cut(arg(args, 0)?, arg(args, 1)?),
        "isolate" => c.isolate(arg(args, 0)?),
        // Cuts off whoever leads now: the way a random schedule makes a stale leader, which
        // keeps leading its old term in a minority while the majority elects a new one.
        "isolate-leader" => match c.leader() {
            Some(l) => c.isolate(l),
            None => c.say("no leader to isolate"),
        },
        "partition" => {
            let groups: Result<Vec<Vec<NodeId>>, String> = args
                .split(|a| *a == "/")
                .map(|g| g.iter().map(|a| parse(a)).collect())
                .collect();
            c.partition(&groups?);
        }
        "heal" => c.heal(),
        "drop-kind" => {
            let kind = *args.first().ok_or("drop-kind: which KIND?")?;
            if !KINDS.contains(&kind) {
                return Err(format!("drop-kind: unknown kind {kind}; one of {KINDS:?}"));
            }
            c.drop_kind(kind);
        }
        "inject" => {
            let text = line.trim().strip_prefix("inject").unwrap_or("");
            c.inject(parse_message(text)?);
        }
        "transfer-leader" => {
            let to = arg(args, 1)?;
            match args.first() {
                Some(&"leader") => match c.leader() {
                    Some(l) => {
                        c.transfer_leader(l, to);
                    }
                    None => c.say("no leader to transfer from"),
                },
                _ => {
                    c.transfer_leader(arg(args, 0)?, to);
                }
            }
        }
        "crash" => c.crash(arg(args, 0)?),
        "crash-mid-ready" => c.crash_mid_ready(arg(args, 0)?),
        "crash-leader-mid-replication" => c.crash_leader_mid_replication(),
        "restart" => c.restart(arg(args, 0)?, args.get(1) == Some(&"applied")),
        // Like `tick-stabilize`, but stops as soon as there is a new leader: a node that leads in
        // the highest term any running node has, other than the one leading when it started.
        "tick-until-leader" => {
            let max: u64 = arg(args, 0)?;
            let start = current_leader(c);
            let mut ticks = 0;
            while ticks < max && current_leader(c).is_none_or(|l| Some(l) == start) {
                c.ids().into_iter().for_each(|id| c.tick(id));
                if !c.stabilize() {
                    break;
                }
                ticks += 1;
            }
            match current_leader(c).filter(|&l| Some(l) != start) {
                Some((id, term)) => c.say(format!("n{id} leads term {term} after {ticks} ticks")),
                None => c.say(format!("no new leader after {max} ticks")),
            }
        }
        // Restarting a node that is up does nothing, so this restarts exactly the crashed ones.
        "restart-all" => c.ids().into_iter().for_each(|id| c.restart(id, false)),
        "await-leader" => {
            let max: u64 = arg(args, 0)?;
            let ticks = await_ticks(c, max, |c| c.leader().is_some());
            match c.leader() {
                Some(l) => c.say(format!("leader n{l} after {ticks} ticks")),
                None => c.fail(Verdict::Liveness(format!("no leader after {max} ticks"))),
            }
        }
        // A leader can exist while it is about to be deposed: a node with a higher term has not
        // spoken yet, or (CheckQuorum) the leader has not heard from a quorum and will step down
        // at its next check. A proposal made then may be lost, legitimately. So this waits until
        // every running node has followed the same leader in its term for SETTLE_TICKS ticks in a
        // row, which covers the leader's CheckQuorum round and every follower's timeout.
        "await-stable-leader" => {
            let max: u64 = arg(args, 0)?;
            let (mut last, mut streak) = (None, 0);
            await_ticks(c, max, |c| {
                let now = stable_leader(c);
                streak = if now.is_some() && now == last {
                    streak + 1
                } else {
                    0
                };
                last = now;
                streak >= SETTLE_TICKS
            });
            match stable_leader(c) {
                Some((l, _)) if streak >= SETTLE_TICKS => c.say(format!("leader n{l}")),
                _ => c.fail(Verdict::Liveness(format!(
                    "no stable leader after {max} ticks"
                ))),
            }
        }
        "await-applied" => {
            let data = args.first().copied().unwrap_or("");
            let max: u64 = arg(args, 1)?;
            await_ticks(c, max, |c| missing(c, data).is_empty());
            match missing(c, data) {
                m if m.is_empty() => c.say(format!("{data} applied on every node")),
                m => c.fail(Verdict::Liveness(format!(
                    "{data} not applied on {m:?} after {max} ticks"
                ))),
            }
        }
        "add-node" => {
            let id = arg(args, 0)?;
            if !c.add_node(id) {
                c.say(format!("n{id} exists"));
            }
        }
        "conf-change" => {
            let (id, node) = (arg(args, 0)?, arg(args, 2)?);
            let cc = match args.get(1).copied() {
                Some("add") => ConfChange::add_voter(node),
                Some("remove") => ConfChange::remove_node(node),
                _ => return Err("conf-change ID add|remove NODE".into()),
            };
            c.propose_conf_change(id, cc);
        }
        // What the random schedules use: the new node always has a fresh id, as in etcd, where a
        // removed member's id is never used again.
        "add-voter" => match c.leader() {
            Some(l) => {
                let id = c.ids().last().copied().unwrap_or(0) + 1;
                c.add_node(id);
                c.propose_conf_change(l, ConfChange::add_voter(id));
            }
            None => c.say("no leader"),
        },
        "remove-voter" => {
            let k: usize = arg(args, 0)?;
            match c.leader().and_then(|l| c.node(l)).map(|n| n.status()) {
                Some(st) if st.conf_state.voters.len() > 3 => {
                    let voters = &st.conf_state.voters;
                    let victim = voters[k % voters.len()];
                    c.propose_conf_change(st.id, ConfChange::remove_node(victim));
                }
                Some(_) => c.say("3 voters: none removed"),
                None => c.say("no leader"),
            }
        }
        "status" => {
            let s = c.status_lines(&ids(0)?);
            c.say(s.trim_end());
        }
        "log" => {
            let id: NodeId = arg(args, 0)?;
            let mut s = format!("n{id}:");
            if let Some(n) = c.node(id) {
                let first = n.first_index();
                if first > 1 {
                    let term = n.term(first - 1).unwrap_or(0);
                    let _ = write!(s, " snapshot={}@{term}", first - 1);
                }
                for e in n
                    .entries(first, n.status().last_index + 1)
                    .unwrap_or_default()
                {
                    let _ = write!(s, " {}@{}", e.index, e.term);
                }
            }
            c.say(s);
        }
        // The application snapshots and compacts (Raft §7): it, not Raft, decides when.
        "compact" => {
            let id: NodeId = arg(args, 0)?;
            c.compact(id, opt_arg(args, 1, Index::MAX)?);
        }
        // What a transport reports to the leader about a snapshot it carried.
        "report-snapshot" => {
            let (from, to) = (arg(args, 0)?, arg(args, 1)?);
            let ok = match args.get(2).copied() {
                Some("ok") => true,
                Some("fail") => false,
                other => {
                    return Err(format!(
                        "report-snapshot: expected ok or fail, got {other:?}"
                    ));
                }
            };
            c.report_snapshot(from, to, ok);
        }
        // What a transport reports when a send fails.
        "report-unreachable" => c.report_unreachable(arg(args, 0)?, arg(args, 1)?),
        other => return Err(format!("unknown command {other}")),
    }
    if let Err(v) = c.check_safety() {
        c.fail(Verdict::Safety(v));
    }
    Ok(c.take_output())
}

/// `add-nodes`: a cluster of nodes `1..=N`, fresh or from given logs, and with `leader=ID` an
/// elected, settled one. Prints nothing, or with `leader=ID` the leader's status line.
fn add_nodes(args: &[&str]) -> Result<(Cluster, String), String> {
    let n: u64 = arg(args, 0)?;
    let mut opts = ClusterOptions::default();
    let (mut leader, mut term, mut commit) = (None, 0, 0);
    let mut logs: BTreeMap<NodeId, Vec<Term>> = BTreeMap::new();
    // Options for the nodes' `Config`s, applied once the cluster-wide ones are known: for every
    // node (`None`), or for one.
    let mut config_options: Vec<(Option<NodeId>, &str, &str)> = Vec::new();
    for a in &args[1..] {
        let (key, value) = a.split_once('=').unwrap_or((a, ""));
        if let Some((node, key)) = key.split_once(':') {
            let id: NodeId = parse(node.strip_prefix('n').unwrap_or(node))?;
            if !(1..=n).contains(&id) {
                return Err(format!("add-nodes: no node {id} among 1..={n}"));
            }
            config_options.push((Some(id), key, value));
            continue;
        }
        match key {
            "pre-vote" => opts.pre_vote = true,
            "check-quorum" => opts.check_quorum = true,
            "lease-read" => opts.read_only = ReadOnlyOption::LeaseBased,
            "seed" => opts.seed = parse(value)?,
            "max-size" => opts.max_size_per_msg = Some(parse(value)?),
            "max-inflight" => opts.max_inflight_msgs = Some(parse(value)?),
            "max-inflight-bytes" | "max-committed-size" | "no-forwarding" => {
                config_options.push((None, key, value));
            }
            "leader" => leader = Some(parse(value)?),
            "term" => term = parse(value)?,
            "commit" => commit = parse(value)?,
            // `nID=T,T,...`: node ID's log, by the terms of its entries 1, 2, ...
            _ if key.starts_with('n') && key[1..].parse::<NodeId>().is_ok() => {
                let id: NodeId = parse(&key[1..])?;
                if !(1..=n).contains(&id) {
                    return Err(format!("add-nodes: no node {id} among 1..={n}"));
                }
                let terms: Vec<Term> = match value {
                    "" => Vec::new(),
                    v => v.split(',').map(parse).collect::<Result<_, _>>()?,
                };
                if terms.first() == Some(&0) || terms.windows(2).any(|w| w[0] > w[1]) {
                    return Err(format!(
                        "add-nodes: {a}: terms must be positive, never decreasing"
                    ));
                }
                logs.insert(id, terms);
            }
            _ => return Err(format!("add-nodes: unknown option {a}")),
        }
    }
    // The nodes' configuration is checked here, so that a scenario can show the refusal: first
    // what every node shares, then each node's own.
    opts.config(1)
        .validate()
        .map_err(|e| format!("add-nodes: {e}"))?;
    for id in 1..=n {
        let mine: Vec<_> = config_options
            .iter()
            .filter(|(node, _, _)| node.is_none_or(|node| node == id))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut config = opts.config(id);
        for (_, key, value) in mine {
            config_option(&mut config, key, value)?;
        }
        config
            .validate()
            .map_err(|e| format!("add-nodes: n{id}: {e}"))?;
        opts.node_configs.insert(id, config);
    }
    let mut c = if logs.is_empty() && term == 0 && commit == 0 {
        Cluster::new(n, opts)
    } else {
        let voters: Vec<NodeId> = (1..=n).collect();
        let disks = voters
            .iter()
            .map(|&id| {
                let terms = logs.get(&id).map_or(&[][..], Vec::as_slice);
                let entries: Vec<Entry> = (1..)
                    .zip(terms)
                    .map(|(index, &t)| Entry {
                        index,
                        term: t,
                        ..Default::default()
                    })
                    .collect();
                let mut disk = MemStorage::new_with_voters(&voters);
                disk.append(&entries);
                disk.set_hard_state(HardState {
                    term: term.max(terms.last().copied().unwrap_or(0)),
                    vote: None,
                    commit: commit.min(entries.len() as u64),
                });
                (id, disk)
            })
            .collect();
        Cluster::with_disks(disks, opts)
    };
    let Some(id) = leader else {
        return Ok((c, String::new()));
    };
    c.campaign(id);
    let settled = c.stabilize();
    let _ = c.take_output();
    if !settled || c.leader() != Some(id) {
        return Err(format!("add-nodes: n{id} did not become leader"));
    }
    let out = c.status_lines(&[id]);
    if let Err(v) = c.check_safety() {
        // Printed by `run`, with the verdict.
        c.fail(Verdict::Safety(v));
        let _ = c.take_output();
    }
    Ok((c, out))
}

/// Sets the `Config` field an `add-nodes` option names (the options of the table in the module
/// docs, from `pre-vote` on).
fn config_option(config: &mut Config, key: &str, value: &str) -> Result<(), String> {
    match key {
        "pre-vote" => config.pre_vote = true,
        "check-quorum" => config.check_quorum = true,
        "lease-read" => config.read_only_option = ReadOnlyOption::LeaseBased,
        "max-size" => config.max_size_per_msg = parse(value)?,
        "max-inflight" => config.max_inflight_msgs = parse(value)?,
        "max-inflight-bytes" => config.max_inflight_bytes = parse(value)?,
        "max-committed-size" => config.max_committed_size_per_ready = parse(value)?,
        "no-forwarding" => config.disable_proposal_forwarding = true,
        _ => return Err(format!("add-nodes: unknown node option {key}")),
    }
    Ok(())
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad argument {s:?}"))
}

fn arg<T: std::str::FromStr>(args: &[&str], i: usize) -> Result<T, String> {
    parse(args.get(i).ok_or(format!("missing argument {}", i + 1))?)
}

fn opt_arg<T: std::str::FromStr>(args: &[&str], i: usize, default: T) -> Result<T, String> {
    args.get(i).map_or(Ok(default), |a| parse(a))
}
