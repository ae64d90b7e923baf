//! The `raftwood` binary: parses the command line ([`raftwood_kv::cli`]), sets up logging
//! (`RUST_LOG`, default `info`, on stderr) and runs a node, `local-cluster` or `bench`.
//!
//! Every error ends the process with one line on stderr and a status other than 0 (2 for a
//! command line that does not parse, 1 for anything else); never a panic.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use raftwood_kv::cli::{Cli, Command, one_line};
use raftwood_kv::server::ExitReason;
use raftwood_kv::{loadgen, local_cluster, server};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version: print them where clap does (stdout) and exit 0.
        Err(e) if !e.use_stderr() => return exit_after_print(e),
        Err(e) => return fail(2, &one_line(&e)),
    };
    init_logs();
    match cli.command {
        Some(Command::Bench(options)) => bench(options),
        Some(Command::LocalCluster(args)) => match local_cluster::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(1, &e.to_string()),
        },
        None => serve(cli.server),
    }
}

/// Runs a node until it stops or is removed.
fn serve(args: raftwood_kv::cli::ServerArgs) -> ExitCode {
    let config = match args.into_config() {
        Ok(config) => config,
        Err(e) => return fail(2, &e.to_string()),
    };
    match server::run(config) {
        Ok(ExitReason::Stopped) => ExitCode::SUCCESS,
        Ok(ExitReason::Removed) => {
            tracing::info!("removed from the cluster: exiting");
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, &e.to_string()),
    }
}

/// Runs the load tool and prints its report as a table or JSON.
fn bench(options: loadgen::BenchOptions) -> ExitCode {
    let json = options.json;
    match loadgen::run_blocking(options) {
        Ok(report) if json => {
            println!("{}", report.to_json());
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, &e.to_string()),
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`); a `RUST_LOG` that does not parse
/// is reported and replaced by the default rather than silently ignored.
fn init_logs() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("raftwood: ignoring RUST_LOG={spec:?} ({e}); logging at info");
            EnvFilter::new("info")
        }),
        Err(_) => EnvFilter::new("info"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Prints `raftwood: {message}` as one line on stderr and returns `status`.
fn fail(status: u8, message: &str) -> ExitCode {
    eprintln!("raftwood: {}", message.replace('\n', " "));
    ExitCode::from(status)
}

/// Prints --help or --version and exits 0 (or 1 if stdout is gone).
fn exit_after_print(e: clap::Error) -> ExitCode {
    match e.print() {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
