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
//! The safety checks ([`super::safety`]) run after every command; a violation is printed as a
//! line starting with `SAFETY VIOLATION`, so it shows up as a diff in any scenario.
//!
//! # Commands
//! | command | effect |
//! | --- | --- |
//! | `add-nodes N [pre-vote] [check-quorum] [seed=S] [max-size=B] [max-inflight=K]` | creates nodes 1..=N (first command); B and K override `max_size_per_msg` and `max_inflight_msgs` |
//! | `campaign ID` | node ID starts an election now |
//! | `propose ID DATA` | node ID proposes DATA |
//! | `propose-leader DATA` | the current leader proposes DATA |
//! | `tick ID [COUNT]` | ticks node ID, COUNT times (default 1) |
//! | `tick-all [COUNT]` | ticks every running node, COUNT times |
//! | `tick-stabilize [COUNT]` | COUNT times: ticks every running node once, then stabilizes |
//! | `process [ID...]` | handles the Ready of the given nodes (default: all) |
//! | `deliver [ID...]` | delivers queued messages (to the given nodes; default: all) |
//! | `deliver-at I`, `drop-at I`, `dup-at I` | delivers, drops, duplicates the I-th queued message (modulo the queue length) |
//! | `stabilize` | processes and delivers until nothing is left to do |
//! | `cut A B`, `isolate ID`, `partition A B / C D`, `heal` | network faults |
//! | `crash ID`, `crash-mid-ready ID`, `restart ID` | node faults |
//! | `tick-until-leader MAX` | ticks all and stabilizes, printing everything, until a new leader holds the highest term (at most MAX ticks) |
//! | `restart-all` | restarts every crashed node |
//! | `await-leader MAX` | ticks all and stabilizes until a leader exists, at most MAX ticks |
//! | `await-stable-leader MAX` | the same, until every running node has followed one leader in its term for 20 ticks in a row |
//! | `await-applied DATA MAX` | ticks all and stabilizes until every node applied DATA |
//! | `status [ID...]` | one status line per node |
//! | `log ID` | node ID's log |

use std::fmt::Write as _;
use std::path::Path;

use super::{Cluster, ClusterOptions};
use crate::{NodeId, Term};

/// Runs one command against `cluster` (creating it for `add-nodes`) and returns its output.
pub fn run_command(cluster: &mut Option<Cluster>, line: &str) -> Result<String, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((&cmd, args)) = words.split_first() else {
        return Ok(String::new());
    };
    if cmd == "add-nodes" {
        let n = arg(args, 0)?;
        let mut opts = ClusterOptions::default();
        for a in &args[1..] {
            match *a {
                "pre-vote" => opts.pre_vote = true,
                "check-quorum" => opts.check_quorum = true,
                s if s.starts_with("seed=") => opts.seed = parse(&s[5..])?,
                s if s.starts_with("max-size=") => opts.max_size_per_msg = Some(parse(&s[9..])?),
                s if s.starts_with("max-inflight=") => {
                    opts.max_inflight_msgs = Some(parse(&s[13..])?);
                }
                other => return Err(format!("add-nodes: unknown option {other}")),
            }
        }
        *cluster = Some(Cluster::new(n, opts));
        return Ok(String::new());
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
        "propose" => c.propose(
            arg(args, 0)?,
            args.get(1).copied().unwrap_or("").to_owned().into(),
        ),
        "propose-leader" => match c.leader() {
            Some(l) => c.propose(l, args.first().copied().unwrap_or("").to_owned().into()),
            None => c.say("no leader"),
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
                    c.say("did not stabilize");
                }
            }
        }
        "process" => ids(0)?.into_iter().for_each(|id| {
            c.process(id);
        }),
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
            if !c.stabilize() {
                c.say("did not stabilize");
            }
        }
        "cut" => c.cut(arg(args, 0)?, arg(args, 1)?),
        "isolate" => c.isolate(arg(args, 0)?),
        "partition" => {
            let groups: Result<Vec<Vec<NodeId>>, String> = args
                .split(|a| *a == "/")
                .map(|g| g.iter().map(|a| parse(a)).collect())
                .collect();
            c.partition(&groups?);
        }
        "heal" => c.heal(),
        "crash" => c.crash(arg(args, 0)?),
        "crash-mid-ready" => c.crash_mid_ready(arg(args, 0)?),
        "restart" => c.restart(arg(args, 0)?),
        // Like `tick-stabilize`, but stops as soon as there is a new leader: a node that leads in
        // the highest term any running node has, other than the one leading when it started.
        "tick-until-leader" => {
            let max: u64 = arg(args, 0)?;
            let start = current_leader(c);
            let mut ticks = 0;
            while ticks < max && current_leader(c).is_none_or(|l| Some(l) == start) {
                c.ids().into_iter().for_each(|id| c.tick(id));
                if !c.stabilize() {
                    c.say("did not stabilize");
                }
                ticks += 1;
            }
            match current_leader(c).filter(|&l| Some(l) != start) {
                Some((id, term)) => c.say(format!("n{id} leads term {term} after {ticks} ticks")),
                None => c.say(format!("no new leader after {max} ticks")),
            }
        }
        // Restarting a node that is up does nothing, so this restarts exactly the crashed ones.
        "restart-all" => c.ids().into_iter().for_each(|id| c.restart(id)),
        "await-leader" => {
            let max: u64 = arg(args, 0)?;
            await_ticks(c, max, |c| c.leader().is_some());
            match c.leader() {
                Some(l) => c.say(format!("leader n{l}")),
                None => c.say(format!("no leader after {max} ticks")),
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
                _ => c.say(format!("no stable leader after {max} ticks")),
            }
        }
        "await-applied" => {
            let data = args.first().copied().unwrap_or("");
            let max: u64 = arg(args, 1)?;
            await_ticks(c, max, |c| missing(c, data).is_empty());
            match missing(c, data) {
                m if m.is_empty() => c.say(format!("{data} applied on every node")),
                m => c.say(format!("{data} not applied on {m:?} after {max} ticks")),
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
                for e in n.entries(1, n.status().last_index + 1).unwrap_or_default() {
                    let _ = write!(s, " {}@{}", e.index, e.term);
                }
            }
            c.say(s);
        }
        other => return Err(format!("unknown command {other}")),
    }
    if let Err(v) = c.check_safety() {
        c.say(format!("SAFETY VIOLATION: {v}"));
    }
    Ok(c.take_output())
}

/// The node leading in the highest term of any running node, with that term, if there is one.
fn current_leader(c: &Cluster) -> Option<(NodeId, crate::Term)> {
    let top = c.up_nodes().map(|n| n.status().hard_state.term).max()?;
    c.up_nodes()
        .map(|n| n.status())
        .find(|s| s.hard_state.term == top && s.soft_state.role == crate::Role::Leader)
        .map(|s| (s.id, top))
}

/// Stabilizes, then ticks every node and stabilizes again until `done` holds or `max` ticks have
/// passed. What happens meanwhile is not printed: only the outcome matters, and it is what the
/// caller prints.
fn await_ticks(c: &mut Cluster, max: u64, mut done: impl FnMut(&Cluster) -> bool) {
    c.stabilize();
    let mut ticks = 0;
    while !done(c) && ticks < max {
        c.ids().into_iter().for_each(|id| c.tick(id));
        c.stabilize();
        ticks += 1;
    }
    let _ = c.take_output();
}

/// Ticks a leader must keep every node's allegiance for `await-stable-leader`: twice the
/// testkit's `election_tick` (10), so a CheckQuorum round and any follower's election timeout
/// (at most `2 * election_tick - 1`) have passed.
const SETTLE_TICKS: u64 = 20;

/// The leader and its term, if every running node is in that term and follows it.
fn stable_leader(c: &Cluster) -> Option<(NodeId, Term)> {
    let l = c.leader()?;
    let term = c.node(l)?.status().hard_state.term;
    c.up_nodes()
        .map(|n| n.status())
        .all(|s| s.hard_state.term == term && s.soft_state.leader == Some(l))
        .then_some((l, term))
}

/// The running nodes that have not applied an entry with `data`.
fn missing(c: &Cluster, data: &str) -> Vec<NodeId> {
    let index = c
        .history
        .committed()
        .find(|e| e.data.as_ref() == data.as_bytes())
        .map(|e| e.index);
    c.ids()
        .into_iter()
        .filter(|&id| index.is_none_or(|i| c.node(id).is_none() || c.history.applied_index(id) < i))
        .collect()
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

/// Runs the scenario file at `path` and compares every case's output with the expected one.
/// With `RAFTWOOD_REWRITE` set, writes the actual output back into the file instead.
pub fn run_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (rewritten, failures) = run_text(&text);
    if std::env::var_os("RAFTWOOD_REWRITE").is_some() {
        std::fs::write(path, rewritten).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{}:\n{}", path.display(), failures.join("\n")))
    }
}

/// Runs a scenario text; returns the text with actual outputs, and a description of each case
/// whose output differs from the expected one.
pub fn run_text(text: &str) -> (String, Vec<String>) {
    let mut cluster = None;
    let mut out = String::new();
    let mut failures = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((no, line)) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut expected = String::new();
        if lines.peek().is_some_and(|(_, l)| *l == "----") {
            lines.next();
            while let Some((_, l)) = lines.next_if(|(_, l)| !l.trim().is_empty()) {
                expected.push_str(l);
                expected.push('\n');
            }
        }
        let actual = match run_command(&mut cluster, line) {
            Ok(o) if o.is_empty() => "ok\n".to_string(),
            Ok(o) => o,
            Err(e) => format!("error: {e}\n"),
        };
        if actual != expected {
            failures.push(format!(
                "line {}: {line}\n--- expected\n{expected}--- actual\n{actual}",
                no + 1
            ));
        }
        let _ = write!(out, "{line}\n----\n{actual}");
        // A case's output ends at a blank line. A schedule pasted one command per line (as the
        // property tests print it) has none, so the rewrite adds them.
        if lines.peek().is_some_and(|(_, l)| !l.trim().is_empty()) {
            out.push('\n');
        }
    }
    (out, failures)
}
