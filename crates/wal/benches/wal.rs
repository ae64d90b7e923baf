//! `cargo bench -p raftwood-wal`: append throughput with one sync per batch beside a raw
//! `write` + `fdatasync` loop writing the same bytes to the same file system, and replay speed.
//!
//! A plain `harness = false` binary, to keep `cargo clippy --all-targets` fast. Options (after
//! `--`), each also readable from the environment:
//!
//! | option | env | default | meaning |
//! |---|---|---|---|
//! | `--seconds S` | `WAL_BENCH_SECONDS` | 2 | time spent on each append configuration |
//! | `--replay-mib N` | `WAL_BENCH_REPLAY_MIB` | 1024 | size of the log replayed |
//! | `--dir PATH` | `WAL_BENCH_DIR` | cargo's target tmp dir | where the files go (pick the disk to measure) |
//! | `--only append\|writers\|replay` | | all | run one part |
//!
//! Appends are measured twice: with `fdatasync` (the number that matters, target >= 0.9x the raw
//! loop) and without it on both sides (the software's own cost, which the disk otherwise hides).
//!
//! The append runs alternate WAL and raw rounds (A B A B ...), so drift in the machine's speed
//! hits both alike; the ratio is taken round by round and its median reported.
//!
//! The `writers` part measures [`WalThread`]'s group commit: 1, 16 and 64 threads each committing
//! one 128-byte entry at a time (submit, then wait) against inline `append_entry` + `sync` from one
//! thread, alternating rounds in the same run as above. With one writer the thread only adds a
//! hand-off; with more, one fdatasync covers every batch queued while the previous one ran.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use raftwood_wal::{Batch, Options, Wal, WalThread};

struct Args {
    seconds: f64,
    replay_mib: u64,
    dir: PathBuf,
    only: Option<String>,
}

fn args() -> Args {
    let env = |name: &str| std::env::var(name).ok();
    let mut args = Args {
        seconds: env("WAL_BENCH_SECONDS")
            .and_then(|s| s.parse().ok())
            .unwrap_or(2.0),
        replay_mib: env("WAL_BENCH_REPLAY_MIB")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1024),
        dir: env("WAL_BENCH_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from),
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        // `cargo bench` passes `--bench`; ignore what we do not know.
        let mut value = || it.next().unwrap_or_default();
        match arg.as_str() {
            "--seconds" => args.seconds = value().parse().unwrap_or(args.seconds),
            "--replay-mib" => args.replay_mib = value().parse().unwrap_or(args.replay_mib),
            "--dir" => args.dir = PathBuf::from(value()),
            "--only" => args.only = Some(value()),
            _ => {}
        }
    }
    args
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args();
    std::fs::create_dir_all(&args.dir)?;
    let scratch = tempfile::tempdir_in(&args.dir)?;
    println!("files in {}", args.dir.display());
    if args.only.is_none() || args.only.as_deref() == Some("append") {
        for fsync in [true, false] {
            if fsync {
                println!(
                    "\nappend, one write + fdatasync per batch (median of alternating rounds)"
                );
            } else {
                println!(
                    "\nappend without fdatasync: the software's own cost (encoding, crc, write)"
                );
            }
            println!(
                "{:>7} {:>6} {:>10} {:>11} {:>10} {:>11} {:>11}",
                "record", "batch", "wal b/s", "wal MB/s", "raw b/s", "raw MB/s", "wal/raw"
            );
            for record in [128usize, 1024] {
                for batch in [1usize, 16, 256] {
                    append(scratch.path(), record, batch, args.seconds, fsync)?;
                }
            }
        }
    }
    if args.only.is_none() || args.only.as_deref() == Some("writers") {
        println!(
            "\nconcurrent writers through WalThread (group commit) vs inline sync, 128 B entries, \
             one entry per batch, fdatasync on (median of alternating rounds)"
        );
        println!(
            "{:>8} {:>14} {:>14} {:>10}",
            "writers", "thread b/s", "inline b/s", "ratio"
        );
        for writers in [1usize, 16, 64] {
            concurrent(scratch.path(), writers, args.seconds)?;
        }
    }
    if args.only.is_none() || args.only.as_deref() == Some("replay") {
        println!(
            "\nreplay (open) of a {} MiB log, in page cache",
            args.replay_mib
        );
        println!(
            "{:>7} {:>10} {:>10} {:>10}",
            "record", "entries", "seconds", "GB/s"
        );
        for record in [1024usize, 128] {
            replay(scratch.path(), record, args.replay_mib)?;
        }
    }
    Ok(())
}

fn append(
    dir: &Path,
    record: usize,
    batch: usize,
    seconds: f64,
    fsync: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let wal_dir = dir.join(format!("append-{record}-{batch}"));
    let (mut wal, _) = Wal::open(
        &wal_dir,
        Options {
            fsync,
            ..Options::default()
        },
    )?;
    let payload = vec![0xA5u8; record];
    let mut index = 0u64;
    let mut wal_batch = |wal: &mut Wal| -> Result<(), raftwood_wal::Error> {
        for _ in 0..batch {
            index += 1;
            wal.append_entry(index, &payload)?;
        }
        wal.sync()
    };
    // Learn how many bytes a batch puts on disk; the raw loop writes exactly as many.
    let before = wal.active_segment().len;
    wal_batch(&mut wal)?;
    let batch_bytes = (wal.active_segment().len - before) as usize;
    let raw_path = dir.join(format!("raw-{record}-{batch}"));
    let mut raw = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&raw_path)?;
    let raw_buf = vec![0x5Au8; batch_bytes];
    let raw_batch = |raw: &mut std::fs::File| -> std::io::Result<()> {
        raw.write_all(&raw_buf)?;
        if fsync { raw.sync_data() } else { Ok(()) }
    };

    // Calibrate a round to ~1/20 of the budget per side.
    let probe = Instant::now();
    for _ in 0..5 {
        raw_batch(&mut raw)?;
    }
    let per_batch = probe.elapsed().as_secs_f64() / 5.0;
    let per_round = ((seconds / 40.0 / per_batch) as usize).clamp(3, 100_000);
    let mut wal_times = Vec::new();
    let mut raw_times = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs_f64(seconds) || wal_times.len() < 5 {
        let t = Instant::now();
        for _ in 0..per_round {
            wal_batch(&mut wal)?;
        }
        wal_times.push(t.elapsed().as_secs_f64() / per_round as f64);
        let t = Instant::now();
        for _ in 0..per_round {
            raw_batch(&mut raw)?;
        }
        raw_times.push(t.elapsed().as_secs_f64() / per_round as f64);
    }
    let mut ratios: Vec<f64> = wal_times
        .iter()
        .zip(&raw_times)
        .map(|(w, r)| r / w)
        .collect();
    let (wal_t, raw_t, ratio) = (
        median(&mut wal_times),
        median(&mut raw_times),
        median(&mut ratios),
    );
    let mb = |t: f64| batch_bytes as f64 / t / 1e6;
    println!(
        "{:>6}B {:>6} {:>10.0} {:>11.2} {:>10.0} {:>11.2} {:>10.2}x",
        record,
        batch,
        1.0 / wal_t,
        mb(wal_t),
        1.0 / raw_t,
        mb(raw_t),
        ratio
    );
    drop(wal);
    std::fs::remove_dir_all(&wal_dir)?;
    std::fs::remove_file(&raw_path)?;
    Ok(())
}

/// Batches per second committed by `writers` threads through a [`WalThread`] against inline syncs,
/// in alternating rounds of about `seconds / 10` each.
fn concurrent(dir: &Path, writers: usize, seconds: f64) -> Result<(), Box<dyn std::error::Error>> {
    let payload = vec![0xC3u8; 128];
    let inline_dir = dir.join(format!("inline-{writers}"));
    let thread_dir = dir.join(format!("thread-{writers}"));
    let (mut inline, _) = Wal::open(&inline_dir, Options::default())?;
    let (wal, _) = Wal::open(&thread_dir, Options::default())?;
    let thread = WalThread::spawn(wal);
    let index = AtomicU64::new(0);
    let round = Duration::from_secs_f64((seconds / 10.0).max(0.05));
    let (mut thread_rates, mut inline_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs_f64(seconds) || ratios.len() < 3 {
        // Inline: one thread, append + sync per batch.
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed() < round {
            inline.append_entry(index.fetch_add(1, Ordering::Relaxed), &payload)?;
            inline.sync()?;
            n += 1;
        }
        let inline_rate = n as f64 / t.elapsed().as_secs_f64();
        // Through the thread: `writers` threads, each commit waits for its own batch.
        let stop = AtomicBool::new(false);
        let done = AtomicU64::new(0);
        let t = Instant::now();
        std::thread::scope(|s| -> Result<(), raftwood_wal::Error> {
            let workers: Vec<_> = (0..writers)
                .map(|_| {
                    s.spawn(|| -> Result<(), raftwood_wal::Error> {
                        while !stop.load(Ordering::Relaxed) {
                            let mut batch = Batch::new();
                            batch.entry(index.fetch_add(1, Ordering::Relaxed), payload.clone());
                            thread.commit(batch)?;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(())
                    })
                })
                .collect();
            std::thread::sleep(round);
            stop.store(true, Ordering::Relaxed);
            for worker in workers {
                worker.join().unwrap_or(Ok(()))?;
            }
            Ok(())
        })?;
        let thread_rate = done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
        thread_rates.push(thread_rate);
        inline_rates.push(inline_rate);
        ratios.push(thread_rate / inline_rate);
    }
    println!(
        "{:>8} {:>14.0} {:>14.0} {:>9.2}x",
        writers,
        median(&mut thread_rates),
        median(&mut inline_rates),
        median(&mut ratios)
    );
    drop(thread.shutdown()?);
    drop(inline);
    std::fs::remove_dir_all(&inline_dir)?;
    std::fs::remove_dir_all(&thread_dir)?;
    Ok(())
}

fn replay(dir: &Path, record: usize, mib: u64) -> Result<(), Box<dyn std::error::Error>> {
    let wal_dir = dir.join(format!("replay-{record}"));
    let options = Options {
        fsync: false,
        ..Options::default()
    };
    {
        let (mut wal, _) = Wal::open(&wal_dir, options.clone())?;
        let payload = vec![0x3Cu8; record];
        let target = mib << 20;
        let mut index = 0u64;
        let mut written = 0u64;
        while written < target {
            for _ in 0..256 {
                index += 1;
                wal.append_entry(index, &payload)?;
            }
            wal.sync()?;
            written = (wal.segment_paths().len() as u64 - 1) * options.segment_size
                + wal.active_segment().len;
        }
    }
    let bytes: u64 = std::fs::read_dir(&wal_dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "wal"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum();
    let mut times = Vec::new();
    let mut entries = 0;
    // The first open warms the page cache and is not counted.
    for run in 0..4 {
        let t = Instant::now();
        let (wal, replay) = Wal::open(&wal_dir, options.clone())?;
        let elapsed = t.elapsed().as_secs_f64();
        entries = replay.entries.len();
        drop((wal, replay));
        if run > 0 {
            times.push(elapsed);
        }
    }
    let t = median(&mut times);
    println!(
        "{:>6}B {:>10} {:>10.3} {:>10.2}",
        record,
        entries,
        t,
        bytes as f64 / t / 1e9
    );
    std::fs::remove_dir_all(&wal_dir)?;
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
