//! Throughput of the Raft core: a 3-node cluster in one thread, in memory (no threads, no network,
//! no sleeps, no ticks), with exactly the workload of the raft-rs peer benchmark
//! (`../shared/bench/raft-rs-peer/`), so that the two print lines that read side by side.
//!
//! ```text
//! cargo bench -p raftwood-raft --bench throughput                          # P=200000, the full matrix
//! cargo bench -p raftwood-raft --bench throughput -- -p 20000 -b 128 -k 64  # one configuration
//! ```
//!
//! - Node 1 campaigns and the cluster is driven until it leads and its empty entry is applied
//!   everywhere (not timed).
//! - Then P entries of B bytes are proposed on the leader in batches of K (propose K, drive to
//!   quiescence, next batch). The time runs from the first proposal until all P entries are
//!   applied on all three nodes; building each payload (one `Vec` of B bytes) is timed.
//! - Driving: for each node with `has_ready`: take the Ready, queue its `messages`, apply its
//!   `committed_entries`, persist (`MemStorage::append`, `set_hard_state`), queue its
//!   `persisted_messages`, `advance`; then deliver the queued messages to their nodes' `step`.
//!   Repeat until no node has a Ready.
//! - Checks after each run (not timed): node 1 still leads in the same term; on every node the
//!   applied index, the commit and applied indexes and the storage's last index equal the
//!   leader's last index; every node applied exactly P entries and P×B payload bytes. A failure
//!   prints `FAIL ...` and exits with status 1.
//!
//! Peak RSS is VmHWM, reset per configuration through `/proc/self/clear_refs`. Unlike the peer,
//! this binary does not call glibc's `malloc_trim` before the reset: that needs `unsafe` (FFI),
//! which the workspace forbids. Freed heap the allocator keeps therefore counts towards the next
//! configuration's figure, so ours is, if anything, an overestimate.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftwood_raft::{Config, Entry, EntryKind, MemStorage, MessageBody, RawNode, Role, Storage};

const NODES: u64 = 3;
const LEADER: u64 = 1;

#[derive(Clone, Debug)]
struct Opts {
    entries: u64,
    sizes: Vec<usize>,
    batches: Vec<u64>,
    warmup: u64,
    reps: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            entries: 200_000,
            sizes: vec![16, 128, 1024],
            batches: vec![1, 64, 1024],
            warmup: 20_000,
            reps: 3,
        }
    }
}

const USAGE: &str = "\
usage: cargo bench -p raftwood-raft --bench throughput -- [options]
  -p, --entries N   total entries proposed per configuration (default 200000)
  -b, --sizes LIST  entry payload sizes in bytes, comma separated (default 16,128,1024)
  -k, --batches LIST proposals per driving round, comma separated (default 1,64,1024)
      --warmup N    entries in the warm-up run (B=128 K=64, not in the table), 0 = none (default 20000)
      --reps N      timed repetitions per configuration; the median is reported (default 3)
  -h, --help        this text";

fn parse_list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| parse_num(x).map_err(|_| format!("bad number in list: {x:?}")))
        .collect()
}

fn parse_num<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.replace('_', "")
        .parse::<T>()
        .map_err(|_| format!("bad number: {s:?}"))
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut val = || -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => args.next().ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        match flag.as_str() {
            "-p" | "--entries" => o.entries = parse_num(&val()?)?,
            "-b" | "--sizes" => o.sizes = parse_list(&val()?)?,
            "-k" | "--batches" => o.batches = parse_list(&val()?)?,
            "--warmup" => o.warmup = parse_num(&val()?)?,
            "--reps" => o.reps = parse_num(&val()?)?,
            // `cargo bench` passes `--bench` to every bench binary, harness or not.
            "--bench" => {}
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    if o.entries == 0 || o.sizes.is_empty() || o.batches.is_empty() || o.reps == 0 {
        return Err("entries, sizes, batches and reps must be non-empty / non-zero".into());
    }
    if o.batches.contains(&0) {
        return Err("batch size K must be >= 1".into());
    }
    Ok(o)
}

/// The peer's raft-rs configuration, in raftwood's terms.
fn raft_config(id: u64) -> Config {
    Config {
        election_tick: 10,
        heartbeat_tick: 3,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        max_uncommitted_entries_size: 0, // unlimited
        pre_vote: false,
        check_quorum: false,
        ..Config::new(id)
    }
}

#[derive(Default, Clone, Copy, Debug)]
struct Stats {
    readys: u64,
    msgs: u64,
    appends: u64,
}

struct Node {
    raw: RawNode<MemStorage>,
    /// Index of the last entry handed to the state machine (any kind).
    applied_index: u64,
    /// Normal entries with a non-empty payload that were applied.
    applied_entries: u64,
    applied_bytes: u64,
}

impl Node {
    /// The "state machine": counts entries and bytes, and checks that indexes are contiguous.
    fn apply(&mut self, ents: Vec<Entry>) -> Result<(), String> {
        for e in ents {
            if e.index != self.applied_index + 1 {
                return Err(format!(
                    "node {}: applied index {} followed by entry {}",
                    self.raw.id(),
                    self.applied_index,
                    e.index
                ));
            }
            self.applied_index = e.index;
            if e.kind != EntryKind::Normal {
                return Err(format!(
                    "node {}: unexpected {:?} at {}",
                    self.raw.id(),
                    e.kind,
                    e.index
                ));
            }
            if !e.data.is_empty() {
                self.applied_entries += 1;
                self.applied_bytes += e.data.len() as u64;
            }
        }
        Ok(())
    }
}

struct Cluster {
    nodes: Vec<Node>,
    stats: Stats,
    outbox: Vec<raftwood_raft::Message>,
}

impl Cluster {
    fn new() -> Result<Cluster, String> {
        let voters: Vec<u64> = (1..=NODES).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let raw = RawNode::new(raft_config(id), MemStorage::new_with_voters(&voters))
                    .map_err(|e| format!("node {id}: {e}"))?;
                Ok(Node {
                    raw,
                    applied_index: 0,
                    applied_entries: 0,
                    applied_bytes: 0,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Cluster {
            nodes,
            stats: Stats::default(),
            outbox: Vec::new(),
        })
    }

    fn node(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    /// Handles one Ready of node `i` (0-based) in the order its contract gives, persisting
    /// synchronously into MemStorage. Outgoing messages are collected in `self.outbox`.
    fn handle_ready(&mut self, i: usize) -> Result<(), String> {
        let node = &mut self.nodes[i];
        let rd = node.raw.ready();
        self.stats.readys += 1;

        self.outbox.extend(rd.messages);
        node.apply(rd.committed_entries)?;
        let store = node.raw.storage_mut();
        store.append(&rd.entries);
        if let Some(hs) = rd.hard_state {
            store.set_hard_state(hs);
        }
        self.outbox.extend(rd.persisted_messages);
        node.raw.advance();
        Ok(())
    }

    fn deliver_outbox(&mut self) -> Result<(), String> {
        // Reuse the outbox's allocation across calls.
        let mut msgs = std::mem::take(&mut self.outbox);
        for m in msgs.drain(..) {
            self.stats.msgs += 1;
            if matches!(m.body, MessageBody::Append { .. }) {
                self.stats.appends += 1;
            }
            let to = m.to;
            if to == 0 || to > NODES {
                return Err(format!("message to unknown node {to}: {}", m.body.name()));
            }
            self.node(to)
                .raw
                .step(m)
                .map_err(|e| format!("step on node {to}: {e}"))?;
        }
        self.outbox = msgs;
        Ok(())
    }

    /// Drives the cluster until no node has a Ready and no message is in flight.
    fn drive(&mut self) -> Result<(), String> {
        // Guard against a livelock (e.g. endless message ping-pong): a healthy drive of one batch
        // needs a handful of rounds.
        const MAX_ROUNDS: u64 = 1_000_000;
        let mut rounds = 0u64;
        loop {
            rounds += 1;
            if rounds > MAX_ROUNDS {
                return Err(format!(
                    "cluster did not quiesce within {MAX_ROUNDS} rounds"
                ));
            }
            let mut progressed = false;
            for i in 0..self.nodes.len() {
                if self.nodes[i].raw.has_ready() {
                    progressed = true;
                    self.handle_ready(i)?;
                    self.deliver_outbox()?;
                }
            }
            if !progressed {
                return Ok(());
            }
        }
    }

    fn elect_leader(&mut self) -> Result<(), String> {
        self.node(LEADER).raw.campaign();
        self.drive()?;
        let st = self.node(LEADER).raw.status();
        if st.soft_state.role != Role::Leader {
            return Err(format!(
                "node {LEADER} is {} after campaign",
                st.soft_state.role
            ));
        }
        // Also wait until the leader's empty entry is applied everywhere.
        let last = st.last_index;
        for n in &self.nodes {
            if n.applied_index != last {
                return Err(format!(
                    "node {} applied {} of {last} after election",
                    n.raw.id(),
                    n.applied_index
                ));
            }
        }
        Ok(())
    }
}

struct RunResult {
    elapsed: Duration,
    stats: Stats,
}

fn run_one(p: u64, b: usize, k: u64) -> Result<RunResult, String> {
    let mut c = Cluster::new()?;
    c.elect_leader()?;
    let term_before = c.node(LEADER).raw.status().hard_state.term;
    c.stats = Stats::default();

    let mut template = vec![0xA5u8; b.max(1)];
    let seq_len = template.len().min(8);

    let start = Instant::now();
    let mut proposed = 0u64;
    while proposed < p {
        let n = k.min(p - proposed);
        {
            let leader = &mut c.node(LEADER).raw;
            for _ in 0..n {
                // Make payloads distinct (sequence number in the first bytes).
                template[..seq_len].copy_from_slice(&proposed.to_le_bytes()[..seq_len]);
                leader
                    .propose(Bytes::from(template.clone()))
                    .map_err(|e| format!("propose #{proposed}: {e}"))?;
                proposed += 1;
            }
        }
        c.drive()?;
    }
    let elapsed = start.elapsed();

    // Honesty checks (outside the timed region).
    let st = c.node(LEADER).raw.status();
    if st.soft_state.role != Role::Leader || st.hard_state.term != term_before {
        return Err(format!(
            "leadership changed during the run: node {LEADER} is {} term {} (was {term_before})",
            st.soft_state.role, st.hard_state.term
        ));
    }
    let leader_last = st.last_index;
    let want_bytes = p * b as u64;
    let mut errs = Vec::new();
    for n in &c.nodes {
        let id = n.raw.id();
        let st = n.raw.status();
        if n.applied_index != leader_last {
            errs.push(format!(
                "node {id}: applied index {} != leader last index {leader_last}",
                n.applied_index
            ));
        }
        if st.hard_state.commit != leader_last || st.applied != leader_last {
            errs.push(format!(
                "node {id}: raft committed {} applied {} != leader last index {leader_last}",
                st.hard_state.commit, st.applied
            ));
        }
        let store_last = n
            .raw
            .storage()
            .last_index()
            .map_err(|e| format!("last_index: {e}"))?;
        if store_last != leader_last {
            errs.push(format!(
                "node {id}: storage last index {store_last} != {leader_last}"
            ));
        }
        if n.applied_entries != p || n.applied_bytes != want_bytes {
            errs.push(format!(
                "node {id}: applied {} entries / {} bytes, expected {p} / {want_bytes}",
                n.applied_entries, n.applied_bytes
            ));
        }
    }
    if !errs.is_empty() {
        return Err(format!(
            "verification failed for B={b} K={k}:\n  {}",
            errs.join("\n  ")
        ));
    }
    Ok(RunResult {
        elapsed,
        stats: c.stats,
    })
}

fn proc_status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Resets VmHWM to the current RSS, so each configuration's peak can be read separately (best
/// effort; Linux >= 4.0). Returns VmHWM (kB) as it was before the reset. See the module comment
/// for why there is no `malloc_trim` here.
fn reset_peak_rss() -> u64 {
    let before = proc_status_kb("VmHWM:").unwrap_or(0);
    // Best effort: without /proc (not Linux) the peak is simply not reset.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    before
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "# raftwood-raft {} | 3 nodes, MemStorage, in-process synchronous delivery | election_tick=10 heartbeat_tick=3 max_size_per_msg=1048576 max_inflight_msgs=256 | P={} reps={}",
        env!("CARGO_PKG_VERSION"),
        o.entries,
        o.reps
    );
    let total = Instant::now();

    if o.warmup > 0 {
        match run_one(o.warmup, 128, 64) {
            Ok(r) => println!(
                "# warmup P={} B=128 K=64 entries/s={:.0} (not reported)",
                o.warmup,
                o.warmup as f64 / r.elapsed.as_secs_f64()
            ),
            Err(e) => {
                eprintln!("FAIL warmup: {e}");
                return ExitCode::FAILURE;
            }
        }
    }

    let p = o.entries;
    let mut failed = false;
    let mut overall_hwm_kb = 0u64;
    for &b in &o.sizes {
        for &k in &o.batches {
            overall_hwm_kb = overall_hwm_kb.max(reset_peak_rss());
            let mut runs = Vec::new();
            for _ in 0..o.reps {
                match run_one(p, b, k) {
                    Ok(r) => runs.push(r),
                    Err(e) => {
                        eprintln!("FAIL peer=raftwood B={b} K={k}: {e}");
                        failed = true;
                        break;
                    }
                }
            }
            if runs.len() != o.reps {
                continue;
            }
            runs.sort_by_key(|r| r.elapsed);
            let r = &runs[runs.len() / 2];
            let secs = r.elapsed.as_secs_f64();
            let eps = p as f64 / secs;
            let mbps = (p * b as u64) as f64 / secs / 1e6;
            let hwm_mb = proc_status_kb("VmHWM:").map_or(0.0, |kb| kb as f64 / 1024.0);
            let mut line = format!(
                "peer=raftwood B={b} K={k} entries/s={eps:.0} msgs={} MB/s={mbps:.1} readys={} appends={} time_ms={:.0} peak_rss_mb={hwm_mb:.0}",
                r.stats.msgs,
                r.stats.readys,
                r.stats.appends,
                secs * 1e3,
            );
            if o.reps > 1 {
                line.push_str(&format!(
                    " (median of {}; min {:.0} max {:.0} ms)",
                    o.reps,
                    runs[0].elapsed.as_secs_f64() * 1e3,
                    runs[runs.len() - 1].elapsed.as_secs_f64() * 1e3
                ));
            }
            println!("{line}");
        }
    }
    let final_hwm_kb = proc_status_kb("VmHWM:").unwrap_or(0);
    println!(
        "# VmHWM={} kB at exit (since the last per-config reset); peak over the whole run={} kB; total_wall_s={:.1}",
        final_hwm_kb,
        overall_hwm_kb.max(final_hwm_kb),
        total.elapsed().as_secs_f64()
    );
    if failed {
        eprintln!("# one or more configurations FAILED verification");
        return ExitCode::FAILURE;
    }
    println!(
        "# all configurations verified: every node applied all P entries, applied index == leader last index"
    );
    ExitCode::SUCCESS
}
