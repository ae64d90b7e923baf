//! `cargo bench -p raftwood-node`: three replicas in one process over loopback TCP, each with its
//! own WAL and snapshot store on disk, fsync on; N closed-loop proposers of 64-byte entries on the
//! leader. Beside it, in the same run, a raw `write` + `fdatasync` loop on the same file system,
//! the same cluster with fsync off, and a loopback TCP round trip.
//!
//! A plain `harness = false` binary, to keep `cargo clippy --all-targets` fast. Options (after
//! `--`):
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `--seconds S` | 3 | length of each cluster window |
//! | `--raw-seconds S` | 1 | length of each raw `write` + `fdatasync` window |
//! | `--proposers LIST` | `1,16,64,256` | the numbers of concurrent proposers, comma-separated |
//! | `--rounds R` | 3 | how many times the whole list is run |
//! | `--threads T` | 16 | at most this many proposer threads; more proposers share them |
//! | `--dir PATH` | `TMPDIR` or `/tmp` | where the data directories and the raw file go |
//!
//! **A proposer** proposes one 64-byte entry to the leader, waits until the leader's application
//! sees it applied (commit latency: propose to applied on the leader), records the latency, and
//! proposes the next (closed loop). With more proposers than threads, a thread keeps several
//! proposals outstanding and re-proposes for each as it completes.
//!
//! **A window** runs for its time, then stops proposing and waits for the proposals still in
//! flight: every entry counted was proposed and applied inside the window, and the rate is
//! entries over the whole window. The leader's WAL syncs are its `NodeStats::syncs` (the loop's
//! Readys written with a sync) over the same window.
//!
//! **The order**, for each round and each N: raw, cluster (fsync on), raw, cluster (fsync off).
//! fsync latency on a shared machine swings by an order of magnitude between phases, so each
//! fsync-on window is compared with the raw windows just before and just after it (their mean).
//! Both clusters live for the whole run (one election each); the idle one only heartbeats. After
//! each window without fsync, the files it wrote are synced (not timed), so that the next windows
//! do not pay for their write-back.
//!
//! **The columns** of each row, left to right: the raw window before (fdatasyncs/s, p50 µs); the
//! cluster with fsync (entries/s, p50 and p99 commit latency in µs, entries per leader WAL sync,
//! entries per sync of each follower); the raw window after; the cluster without fsync
//! (entries/s, p50 µs); the targets this row implies: min(8x the mean raw rate, 0.5x the fsync-off
//! rate) in entries/s, and 3x (2 raw p50 + the loopback round trip's p50) in µs.

use std::collections::BTreeMap;
use std::error::Error;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;
use parking_lot::RwLock;
use raftwood_node::storage::{DiskStorage, StorageOptions};
use raftwood_node::transport::{EVENTS_CAPACITY, TcpConfig, TcpTransport, Transport};
use raftwood_node::{
    Apply, Node, NodeConfig, NodeError, NodeHandle, NodeStats, Outcome, Proposal, RealClock,
    StartFrom,
};
use raftwood_raft::{NodeId, Role};

type Res<T> = Result<T, Box<dyn Error>>;
/// What a proposer thread returns: proposals completed and their latencies (µs), or why it failed.
type ProposerResult = Result<(u64, Histogram<u64>), String>;

/// The size of every proposed entry.
const ENTRY_BYTES: usize = 64;
/// The longest a proposal may take before the run is declared broken (a lost proposal would
/// otherwise hang it).
const STUCK: Duration = Duration::from_secs(10);
/// Loopback round trips timed per measurement (after 200 not timed).
const ROUND_TRIPS: usize = 5_000;

struct Args {
    seconds: f64,
    raw_seconds: f64,
    proposers: Vec<usize>,
    rounds: usize,
    threads: usize,
    dir: PathBuf,
}

fn args() -> Res<Args> {
    let mut args = Args {
        seconds: 3.0,
        raw_seconds: 1.0,
        proposers: vec![1, 16, 64, 256],
        rounds: 3,
        threads: 16,
        dir: std::env::temp_dir(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--seconds" => args.seconds = value()?.parse()?,
            "--raw-seconds" => args.raw_seconds = value()?.parse()?,
            "--rounds" => args.rounds = value()?.parse()?,
            "--threads" => args.threads = value()?.parse::<usize>()?.max(1),
            "--dir" => args.dir = PathBuf::from(value()?),
            "--proposers" => {
                args.proposers = value()?
                    .split(',')
                    .map(|n| n.trim().parse::<usize>().map(|n| n.max(1)))
                    .collect::<Result<_, _>>()?;
            }
            "--help" | "-h" => {
                println!(
                    "cargo bench -p raftwood-node -- [--seconds S] [--raw-seconds S] \
                     [--proposers 1,16,64,256] [--rounds R] [--threads T] [--dir PATH]"
                );
                std::process::exit(0);
            }
            // `cargo bench` passes `--bench`; ignore what we do not know.
            _ => {}
        }
    }
    Ok(args)
}

fn main() -> Res<()> {
    let args = args()?;
    std::fs::create_dir_all(&args.dir)?;
    let scratch = tempfile::tempdir_in(&args.dir)?;
    println!(
        "files in {} ({}); load average {}",
        scratch.path().display(),
        file_system(scratch.path()),
        load_average()
    );
    let off_dir = scratch.path().join("fsync-off");
    let on = Cluster::start(&scratch.path().join("fsync-on"), true)?;
    let off = Cluster::start(&off_dir, false)?;
    let mut raw = RawSync::open(&scratch.path().join("raw"))?;
    println!(
        "leaders: node {} (fsync on), node {} (fsync off); {} proposer threads at most",
        on.leader, off.leader, args.threads
    );
    // Warm up both clusters and the disk (connections, allocations, WAL segment); not reported.
    on.window(16, 0.5, args.threads)?;
    off.window(16, 0.5, args.threads)?;
    write_back(&off_dir)?;
    raw.window(0.2)?;

    let mut rows = Vec::new();
    for round in 1..=args.rounds {
        let rtt = loopback_rtt()?;
        println!(
            "\nround {round}: load average {}; loopback round trip p50 {} µs (mean {:.1} µs, {} trips)",
            load_average(),
            rtt.value_at_quantile(0.5),
            rtt.mean(),
            rtt.len()
        );
        print_header();
        for &n in &args.proposers {
            let raw_before = raw.window(args.raw_seconds)?;
            let cluster = on.window(n, args.seconds, args.threads)?;
            let raw_after = raw.window(args.raw_seconds)?;
            let unsynced = off.window(n, args.seconds, args.threads)?;
            write_back(&off_dir)?;
            let row = Row {
                n,
                raw_before,
                cluster,
                raw_after,
                unsynced,
                rtt_p50_us: rtt.value_at_quantile(0.5) as f64,
            };
            row.print();
            rows.push(row);
        }
    }
    println!("\nload average at the end: {}", load_average());
    summary(&rows, &args.proposers);
    on.stop()?;
    off.stop()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The cluster

/// Where a proposal's completion goes: the proposer thread that owns it.
#[derive(Default)]
struct Router {
    /// Indexed by proposer thread; replaced at each window.
    threads: RwLock<Vec<Sender<(u32, u64)>>>,
}

struct Member {
    id: NodeId,
    handle: NodeHandle,
    errors: Receiver<NodeError>,
    thread: JoinHandle<Result<Outcome, NodeError>>,
    applier: JoinHandle<()>,
}

struct Cluster {
    members: Vec<Member>,
    leader: NodeId,
    router: Arc<Router>,
}

/// What one cluster window measured.
struct ClusterWindow {
    entries: u64,
    seconds: f64,
    latency_us: Histogram<u64>,
    leader_syncs: u64,
    /// The WAL syncs of the two followers together.
    follower_syncs: u64,
}

impl ClusterWindow {
    fn rate(&self) -> f64 {
        self.entries as f64 / self.seconds
    }
}

impl Cluster {
    /// Three nodes over loopback TCP, each with a data directory under `dir`; waits for a leader.
    fn start(dir: &Path, fsync: bool) -> Res<Cluster> {
        let ids: [NodeId; 3] = [1, 2, 3];
        let router = Arc::new(Router::default());
        // Bind the listeners first (port 0), then tell every transport where the others are.
        let mut parts = Vec::new();
        for id in ids {
            let (events_tx, events) = crossbeam_channel::bounded(EVENTS_CAPACITY);
            let listen: SocketAddr = "127.0.0.1:0".parse()?;
            let transport =
                TcpTransport::start(TcpConfig::new(id, listen, BTreeMap::new()), events_tx)?;
            parts.push((id, transport, events));
        }
        let urls: BTreeMap<NodeId, String> = parts
            .iter()
            .map(|(id, t, _)| (*id, format!("http://{}", t.local_addr())))
            .collect();
        let mut members = Vec::new();
        for (id, mut transport, events) in parts {
            for (&peer, url) in &urls {
                transport.add_peer(peer, url);
            }
            let config = NodeConfig::new(id, urls.clone());
            let options = StorageOptions {
                bootstrap_voters: config.bootstrap_voters(),
                fsync,
                ..StorageOptions::default()
            };
            let (storage, restored) = DiskStorage::open(&dir.join(format!("n{id}")), options)?;
            let clock = RealClock {
                interval: config.tick_interval,
            };
            // The application's state is only its applied index; the snapshot carries nothing.
            let applied = Arc::new(AtomicU64::new(0));
            let seen = Arc::clone(&applied);
            let get_snapshot = move || Ok((seen.load(Ordering::Acquire), Bytes::new()));
            let Node {
                handle,
                apply,
                errors,
                thread,
            } = Node::start(
                config,
                StartFrom::from(restored),
                storage,
                transport,
                events,
                clock,
                get_snapshot,
            )?;
            let route = Arc::clone(&router);
            let applier = std::thread::Builder::new()
                .name(format!("bench-apply-{id}"))
                .spawn(move || run_applier(apply, applied, route, id))?;
            members.push(Member {
                id,
                handle,
                errors,
                thread,
                applier,
            });
        }
        let leader = wait_for_leader(&members)?;
        Ok(Cluster {
            members,
            leader,
            router,
        })
    }

    fn leader(&self) -> &Member {
        self.members
            .iter()
            .find(|m| m.id == self.leader)
            .expect("the leader is a member")
    }

    /// `n` closed-loop proposers for `seconds` on the leader, then a drain.
    fn window(&self, n: usize, seconds: f64, max_threads: usize) -> Res<ClusterWindow> {
        let leader = self.leader();
        let stats = leader.handle.stats();
        let threads = n.min(max_threads);
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..threads).map(|_| crossbeam_channel::unbounded()).unzip();
        *self.router.threads.write() = senders;
        let syncs = NodeStats::get(&stats.syncs);
        let follower_syncs = self.follower_syncs();
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(seconds);
        let workers: Vec<JoinHandle<ProposerResult>> = receivers
            .into_iter()
            .enumerate()
            .map(|(t, rx)| {
                // Proposers spread evenly: the first `n % threads` threads take one more.
                let slots = n / threads + usize::from(t < n % threads);
                let handle = leader.handle.clone();
                std::thread::spawn(move || propose_loop(&handle, &rx, t as u32, slots, deadline))
            })
            .collect();
        let mut latency_us = new_histogram()?;
        let mut entries = 0;
        for w in workers {
            let (count, hist) = w.join().map_err(|_| "a proposer panicked")??;
            entries += count;
            latency_us.add(hist)?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        self.router.threads.write().clear();
        self.check()?;
        Ok(ClusterWindow {
            entries,
            seconds: elapsed,
            latency_us,
            leader_syncs: NodeStats::get(&stats.syncs) - syncs,
            follower_syncs: self.follower_syncs() - follower_syncs,
        })
    }

    fn follower_syncs(&self) -> u64 {
        self.members
            .iter()
            .filter(|m| m.id != self.leader)
            .map(|m| NodeStats::get(&m.handle.stats().syncs))
            .sum()
    }

    /// No errors reported and the same leader: otherwise the window measured something else.
    fn check(&self) -> Res<()> {
        for m in &self.members {
            if let Ok(e) = m.errors.try_recv() {
                return Err(format!("node {}: {e}", m.id).into());
            }
        }
        let status = self.leader().handle.status();
        if status.raft.soft_state.role != Role::Leader {
            return Err(format!("node {} lost its leadership during the run", self.leader).into());
        }
        Ok(())
    }

    fn stop(self) -> Res<()> {
        for m in &self.members {
            m.handle.stop();
        }
        for m in self.members {
            drop(m.handle);
            m.thread.join().map_err(|_| "a node's thread panicked")??;
            m.applier.join().map_err(|_| "an applier panicked")?;
        }
        Ok(())
    }
}

/// Waits up to 10 s for every node to agree on a leader.
fn wait_for_leader(members: &[Member]) -> Res<NodeId> {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let leaders: Vec<Option<NodeId>> = members
            .iter()
            .map(|m| m.handle.status().raft.soft_state.leader)
            .collect();
        if let Some(Some(l)) = leaders.first()
            && leaders.iter().all(|x| *x == Some(*l))
        {
            return Ok(*l);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("no leader within 10 s".into())
}

/// The application of one node: keeps its applied index (for `getSnapshot`) and, on the leader,
/// tells each proposal's thread that it is applied. Followers' entries carry the same bytes but
/// no thread listens for them there: only the leader's node routes.
fn run_applier(apply: Receiver<Apply>, applied: Arc<AtomicU64>, router: Arc<Router>, id: NodeId) {
    for item in apply.iter() {
        let Apply::Entries(entries) = item else {
            continue;
        };
        if let Some(last) = entries.last() {
            applied.store(last.index, Ordering::Release);
        }
        let threads = router.threads.read();
        if threads.is_empty() {
            continue;
        }
        for e in &entries {
            let Some((thread, slot, seq, node)) = decode(&e.data) else {
                continue;
            };
            if node != id {
                continue;
            }
            if let Some(tx) = threads.get(thread as usize) {
                let _ = tx.send((slot, seq));
            }
        }
    }
}

/// One proposer thread: `slots` proposals outstanding at once until `deadline`, then drains.
/// Returns the proposals completed and their latencies in microseconds.
fn propose_loop(
    handle: &NodeHandle,
    done: &Receiver<(u32, u64)>,
    thread: u32,
    slots: usize,
    deadline: Instant,
) -> ProposerResult {
    let mut hist = new_histogram().map_err(|e| e.to_string())?;
    let now = Instant::now();
    let mut sent_at = vec![now; slots];
    let mut seq = vec![0u64; slots];
    let leader = handle.status().raft.id;
    let propose = |slot: usize, seq: u64| {
        let data = encode(thread, slot as u32, seq, leader);
        let id = (u64::from(thread) << 32) | slot as u64;
        handle
            .propose(Proposal { id, data })
            .map_err(|e| format!("propose: {e}"))
    };
    for (slot, at) in sent_at.iter_mut().enumerate() {
        *at = Instant::now();
        propose(slot, 0)?;
    }
    let mut outstanding = slots;
    let mut completed = 0u64;
    while outstanding > 0 {
        let (slot, s) = done
            .recv_timeout(STUCK)
            .map_err(|_| format!("a proposal of thread {thread} not applied within {STUCK:?}"))?;
        let slot = slot as usize;
        if seq.get(slot) != Some(&s) {
            return Err(format!(
                "thread {thread} slot {slot}: completion {s} out of order"
            ));
        }
        let took = sent_at[slot].elapsed();
        hist.saturating_record(took.as_micros().max(1) as u64);
        completed += 1;
        if Instant::now() < deadline {
            seq[slot] += 1;
            sent_at[slot] = Instant::now();
            propose(slot, seq[slot])?;
        } else {
            outstanding -= 1;
        }
    }
    Ok((completed, hist))
}

/// A 64-byte entry: proposer thread, slot, sequence number, the node that routes it; the rest is
/// filler.
fn encode(thread: u32, slot: u32, seq: u64, node: NodeId) -> Bytes {
    let mut b = Vec::with_capacity(ENTRY_BYTES);
    b.extend_from_slice(&thread.to_le_bytes());
    b.extend_from_slice(&slot.to_le_bytes());
    b.extend_from_slice(&seq.to_le_bytes());
    b.extend_from_slice(&node.to_le_bytes());
    b.resize(ENTRY_BYTES, 0x5A);
    Bytes::from(b)
}

fn decode(data: &[u8]) -> Option<(u32, u32, u64, NodeId)> {
    if data.len() != ENTRY_BYTES {
        return None;
    }
    let u32_at = |i: usize| data.get(i..i + 4)?.try_into().ok().map(u32::from_le_bytes);
    let u64_at = |i: usize| data.get(i..i + 8)?.try_into().ok().map(u64::from_le_bytes);
    Some((u32_at(0)?, u32_at(4)?, u64_at(8)?, u64_at(16)?))
}

fn new_histogram() -> Res<Histogram<u64>> {
    // 1 µs to 60 s, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

// ---------------------------------------------------------------------------------------------
// The raw disk and the loopback

/// 64-byte appends to one file, each followed by `fdatasync`.
struct RawSync {
    file: std::fs::File,
}

struct RawWindow {
    rate: f64,
    p50_us: f64,
}

impl RawSync {
    fn open(path: &Path) -> Res<RawSync> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(RawSync { file })
    }

    fn window(&mut self, seconds: f64) -> Res<RawWindow> {
        let buf = [0xA5u8; ENTRY_BYTES];
        let mut hist = new_histogram()?;
        let started = Instant::now();
        let until = Duration::from_secs_f64(seconds);
        let mut n = 0u64;
        while started.elapsed() < until {
            let t = Instant::now();
            self.file.write_all(&buf)?;
            self.file.sync_data()?;
            hist.saturating_record(t.elapsed().as_micros().max(1) as u64);
            n += 1;
        }
        Ok(RawWindow {
            rate: n as f64 / started.elapsed().as_secs_f64(),
            p50_us: hist.value_at_quantile(0.5) as f64,
        })
    }
}

/// Syncs every file under `dir` (not timed). The cluster without fsync leaves up to hundreds of
/// megabytes of dirty pages behind; without this the kernel writes them back during the next
/// windows, and every `fdatasync` there (the raw loop's, the WALs') pays for it.
fn write_back(dir: &Path) -> Res<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let result = if path.is_dir() {
            write_back(&path)
        } else {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(Into::into)
        };
        // A WAL segment or snapshot released meanwhile is gone: nothing to write back.
        if let Err(e) = result {
            let gone = e
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound);
            if !gone {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// 64-byte ping-pong over a loopback TCP connection (`TCP_NODELAY`, as the transport sets it),
/// in microseconds per round trip.
fn loopback_rtt() -> Res<Histogram<u64>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; ENTRY_BYTES];
        while s.read_exact(&mut buf).is_ok() {
            s.write_all(&buf)?;
        }
        Ok(())
    });
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut buf = [0x42u8; ENTRY_BYTES];
    let mut hist = new_histogram()?;
    for i in 0..ROUND_TRIPS + 200 {
        let t = Instant::now();
        s.write_all(&buf)?;
        s.read_exact(&mut buf)?;
        if i >= 200 {
            hist.saturating_record(t.elapsed().as_micros().max(1) as u64);
        }
    }
    drop(s);
    echo.join().map_err(|_| "the echo thread panicked")??;
    Ok(hist)
}

// ---------------------------------------------------------------------------------------------
// Reporting

struct Row {
    n: usize,
    raw_before: RawWindow,
    cluster: ClusterWindow,
    raw_after: RawWindow,
    unsynced: ClusterWindow,
    rtt_p50_us: f64,
}

impl Row {
    fn raw_rate(&self) -> f64 {
        (self.raw_before.rate + self.raw_after.rate) / 2.0
    }
    fn raw_p50(&self) -> f64 {
        (self.raw_before.p50_us + self.raw_after.p50_us) / 2.0
    }
    fn entries_per_sync(&self) -> f64 {
        self.cluster.entries as f64 / self.cluster.leader_syncs.max(1) as f64
    }
    /// min(8x the neighbouring raw fdatasync rate, 0.5x the cluster with fsync off).
    fn rate_target(&self) -> f64 {
        (8.0 * self.raw_rate()).min(0.5 * self.unsynced.rate())
    }
    /// 3x (two raw fdatasyncs + one loopback round trip), in µs.
    fn latency_target(&self) -> f64 {
        3.0 * (2.0 * self.raw_p50() + self.rtt_p50_us)
    }
    fn p50(&self) -> f64 {
        self.cluster.latency_us.value_at_quantile(0.5) as f64
    }
    fn p99(&self) -> f64 {
        self.cluster.latency_us.value_at_quantile(0.99) as f64
    }

    fn print(&self) {
        println!(
            "{:>4} | {:>7.0} {:>6.0} | {:>8.0} {:>7.0} {:>8.0} {:>7.2} {:>7.1} | {:>7.0} {:>6.0} | {:>8.0} {:>7.0} | {:>8.0} {:>7.0}",
            self.n,
            self.raw_before.rate,
            self.raw_before.p50_us,
            self.cluster.rate(),
            self.p50(),
            self.p99(),
            self.entries_per_sync(),
            2.0 * self.cluster.entries as f64 / self.cluster.follower_syncs.max(1) as f64,
            self.raw_after.rate,
            self.raw_after.p50_us,
            self.unsynced.rate(),
            self.unsynced.latency_us.value_at_quantile(0.5),
            self.rate_target(),
            self.latency_target(),
        );
    }
}

fn print_header() {
    println!(
        "{:>4} | {:>7} {:>6} | {:>8} {:>7} {:>8} {:>7} {:>7} | {:>7} {:>6} | {:>8} {:>7} | {:>8} {:>7}",
        "N",
        "raw/s",
        "p50µs",
        "entries/s",
        "p50µs",
        "p99µs",
        "ent/sync",
        "fol e/s",
        "raw/s",
        "p50µs",
        "nosync/s",
        "p50µs",
        "rate tgt",
        "lat tgt",
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Medians over the rounds per N, and the targets checked round by round.
fn summary(rows: &[Row], proposers: &[usize]) {
    println!(
        "\nmedians over the rounds (raw = mean of the raw windows before and after each cluster window)"
    );
    println!(
        "{:>4} | {:>9} {:>7} {:>8} {:>9} | {:>8} {:>7} | {:>9} | {:>7} | targets",
        "N", "entries/s", "p50µs", "p99µs", "ent/sync", "raw/s", "p50µs", "nosync/s", "rtt µs"
    );
    for &n in proposers {
        let rs: Vec<&Row> = rows.iter().filter(|r| r.n == n).collect();
        let m = |f: &dyn Fn(&Row) -> f64| median(rs.iter().map(|r| f(r)).collect());
        let verdicts: Vec<String> = rs
            .iter()
            .map(|r| {
                let mut v = Vec::new();
                if n == 64 {
                    v.push(format!(
                        "ent/sync {:.1} {} 10",
                        r.entries_per_sync(),
                        if r.entries_per_sync() >= 10.0 {
                            ">="
                        } else {
                            "<"
                        }
                    ));
                    v.push(format!(
                        "entries/s {:.0} {} {:.0}",
                        r.cluster.rate(),
                        if r.cluster.rate() >= r.rate_target() {
                            ">="
                        } else {
                            "<"
                        },
                        r.rate_target()
                    ));
                }
                if n == 1 {
                    v.push(format!(
                        "p50 {:.0} {} {:.0} µs",
                        r.p50(),
                        if r.p50() <= r.latency_target() {
                            "<="
                        } else {
                            ">"
                        },
                        r.latency_target()
                    ));
                }
                v.join(", ")
            })
            .filter(|v| !v.is_empty())
            .collect();
        println!(
            "{:>4} | {:>9.0} {:>7.0} {:>8.0} {:>9.2} | {:>8.0} {:>7.0} | {:>9.0} | {:>7.0} | {}",
            n,
            m(&|r| r.cluster.rate()),
            m(&Row::p50),
            m(&Row::p99),
            m(&Row::entries_per_sync),
            m(&Row::raw_rate),
            m(&Row::raw_p50),
            m(&|r| r.unsynced.rate()),
            m(&|r| r.rtt_p50_us),
            verdicts.join("; ")
        );
    }
}

/// The file system holding `path`, from `/proc/mounts` (the longest mount point above it).
fn file_system(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, at, fs) = (f.first()?, f.get(1)?, f.get(2)?);
            path.starts_with(at)
                .then(|| (at.len(), format!("{fs} on {dev}, mounted at {at}")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "file system unknown".to_string(), |(_, s)| s)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}
