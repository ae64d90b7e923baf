//! The load tool behind `raftwood bench`: N concurrent clients, each on one keep-alive HTTP/1.1
//! connection, send a mix of PUTs and GETs to `/v1/kv/{key}` for a duration and report
//! throughput and latency percentiles (p50, p99, p99.9 from HDR histograms) per kind, with
//! errors counted by cause.
//!
//! A run has two phases:
//! 1. **Warm-up** (unless `--no-warmup`): the clients PUT every key of the key space once, so
//!    the measured GETs find values. A PUT answered 503 or cut off is retried a few times (a
//!    cluster just started may not have a leader yet); any other failure, or one that persists,
//!    aborts the run with a [`BenchError::Warmup`]: a cluster that cannot take one write per key
//!    is not worth measuring.
//! 2. **Measurement**: each client loops until the duration is over, choosing GET with
//!    probability `--get-percent` and a key uniformly; a live line on stderr shows progress when
//!    it is a terminal.
//!
//! [`run`] is async and must be called inside a Tokio runtime (it spawns a task per client, so
//! a multi-threaded runtime lets clients use every core); [`run_blocking`] builds one for a
//! synchronous `main`. Neither prints the report: format it with
//! [`Display`](std::fmt::Display) (a table) or [`BenchReport::to_json`], as
//! [`BenchOptions::json`] asks.
//!
//! ```no_run
//! use raftwood_kv::loadgen::{BenchOptions, run_blocking};
//!
//! let options = BenchOptions { clients: 64, ..BenchOptions::default() };
//! let json = options.json;
//! let report = run_blocking(options)?;
//! if json { println!("{}", report.to_json()) } else { print!("{report}") }
//! # Ok::<(), raftwood_kv::loadgen::BenchError>(())
//! ```
//!
//! Non-goals: open-loop (fixed-rate) load, HTTP/2, TLS. For a comparison with other systems under
//! one tool, the repository's bench-peers script drives wrk against all of them.

mod client;
mod options;
mod progress;
mod report;
mod stats;
mod target;
mod warmup;

use bytes::Bytes;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use options::{BenchOptions, Consistency, parse_duration};
pub use report::{BenchReport, KindReport, LatencyReport, TotalReport};

use client::{Workload, run_client};
use progress::Progress;
use stats::{Live, Stats};
use target::Target;
use warmup::warm_up;

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The options make no run (no clients, an empty key space, no URL...).
    #[error("bench: invalid options: {0}")]
    InvalidOptions(String),
    /// A target URL is not a usable `http://host:port` base URL.
    #[error("bench: bad URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A warm-up PUT failed, so the target is not ready to be measured.
    #[error("bench: warm-up PUT of {path} to {url} failed: {reason}")]
    Warmup {
        /// The node's URL.
        url: String,
        /// The request path.
        path: String,
        /// The status or the connection error.
        reason: String,
    },
    /// A client task panicked (a bug in the load tool).
    #[error("bench: a client task failed: {0}")]
    Client(#[from] tokio::task::JoinError),
    /// [`run_blocking`] could not start a Tokio runtime.
    #[error("bench: cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Runs the benchmark described by `options` and returns its report. Must be called inside a
/// Tokio runtime; see the [module docs](self).
pub async fn run(options: BenchOptions) -> Result<BenchReport, BenchError> {
    let targets = check(&options)?;
    let workload = Arc::new(Workload {
        key_prefix: options.key_prefix.clone(),
        keys: options.keys,
        get_percent: options.get_percent,
        consistency: options.consistency,
        value: Bytes::from(vec![b'x'; options.value_size]),
        timeout: options.timeout,
    });
    let warmup_puts = if options.no_warmup {
        0
    } else {
        warm_up(&targets, options.clients, &workload).await?
    };

    let live = Arc::new(Live::default());
    let progress = Progress::start(Arc::clone(&live), options.duration);
    let start = Instant::now();
    let deadline = start + options.duration;
    let mut clients = JoinSet::new();
    for index in 0..options.clients {
        let target = targets[index % targets.len()].clone();
        clients.spawn(run_client(
            index,
            target,
            Arc::clone(&workload),
            Arc::clone(&live),
            deadline,
        ));
    }
    let mut total = Stats::new();
    while let Some(stats) = clients.join_next().await {
        total.merge(&stats?);
    }
    let elapsed = start.elapsed();
    progress.finish();
    Ok(BenchReport::new(&options, warmup_puts, elapsed, &total))
}

/// [`run`] on a multi-threaded Tokio runtime of its own, for a synchronous caller. Must not be
/// called from inside a runtime (Tokio forbids nesting them).
pub fn run_blocking(options: BenchOptions) -> Result<BenchReport, BenchError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?
        .block_on(run(options))
}

/// Validates the options and parses the URLs.
fn check(options: &BenchOptions) -> Result<Vec<Target>, BenchError> {
    let invalid = |why: &str| Err(BenchError::InvalidOptions(why.to_owned()));
    if options.clients == 0 {
        return invalid("--clients must be at least 1");
    }
    if options.keys == 0 {
        return invalid("--keys must be at least 1");
    }
    if options.urls.is_empty() {
        return invalid("give at least one --url");
    }
    if options.duration.is_zero() {
        return invalid("--duration must be above zero");
    }
    if options.timeout.is_zero() {
        return invalid("--timeout must be above zero");
    }
    options.urls.iter().map(|u| Target::parse(u)).collect()
}
