//! `raftwood local-cluster --nodes N`: a cluster of N local nodes for trying things out, each a
//! child process of this binary, with raftexample's port layout by default (node i: raft
//! `http://127.0.0.1:i2379`, HTTP `http://127.0.0.1:i2380`).
//!
//! It prints each node's HTTP address and the curl commands to try, then waits. On SIGINT or
//! SIGTERM it stops every node (closes their pipes, waits `--stop-timeout`, kills what is left)
//! and exits 0. If it is killed outright, its children notice on their own: each has a pipe from
//! local-cluster as stdin and was started with the hidden `--parent-pipe` flag, so it runs
//! [`watch_parent`] and stops when the pipe closes. See `parent.rs` for why a pipe.
//!
//! Layout: `layout.rs` (ports, data directories, each child's flags), `children.rs` (spawn and
//! stop), `banner.rs` (what is printed), `parent.rs` (the child's side of the pipe).
//!
//! Non-goals: restarting nodes that exit (a person stopping one is part of the tour), running
//! nodes on other hosts.

mod banner;
mod children;
mod layout;
mod parent;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use clap::Parser;

use crate::cli::{Cli, LocalClusterArgs};
use crate::signals::StopSignals;

pub use banner::banner;
pub use children::{NodeProcess, StopOutcome, stop_all};
pub use layout::{NodePlan, cluster_flag, plan};
pub use parent::{watch_parent, watch_pipe};

/// Why local-cluster could not start or run its nodes.
#[derive(Debug, thiserror::Error)]
pub enum LocalClusterError {
    /// The requested layout makes no cluster (no nodes, ports past 65535, reserved flags).
    #[error("local-cluster: {0}")]
    Layout(String),
    /// The flags passed to the nodes after `--` make no valid node.
    #[error("local-cluster: the flags after -- make no valid node: {0}")]
    NodeFlags(String),
    /// This binary's own path is unknown, so it cannot start copies of itself.
    #[error("local-cluster: cannot find this program's path: {0}")]
    CurrentExe(#[source] io::Error),
    /// The directory holding the nodes' data directories cannot be created.
    #[error("local-cluster: cannot create {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The async runtime or the signal handlers could not be set up.
    #[error("local-cluster: cannot set up signal handling: {0}")]
    Signals(#[source] io::Error),
    /// A node could not be started (the ones already started were stopped).
    #[error("local-cluster: cannot start node {id} ({}): {source}", program.display())]
    Spawn {
        /// The node.
        id: u64,
        /// The program.
        program: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Watching a node's process failed.
    #[error("local-cluster: cannot watch node {id}: {source}")]
    Wait {
        /// The node.
        id: u64,
        /// Why.
        source: io::Error,
    },
    /// Every node exited on its own, and not all of them successfully.
    #[error("local-cluster: every node has exited ({0})")]
    NodesFailed(String),
}

/// Runs `raftwood local-cluster`: starts the nodes, prints their addresses and the tour, and
/// returns once a signal stopped them (`Ok`) or they all exited on their own (`Ok` if every one
/// exited with status 0, as removed members do; an error otherwise).
pub fn run(args: LocalClusterArgs) -> Result<(), LocalClusterError> {
    let program = std::env::current_exe().map_err(LocalClusterError::CurrentExe)?;
    run_program(args, &program)
}

/// [`run`] with `program` as the nodes' binary instead of this one (tests use a stand-in).
pub fn run_program(args: LocalClusterArgs, program: &Path) -> Result<(), LocalClusterError> {
    let plans = plan(&args)?;
    let cluster = cluster_flag(&plans);
    check_node_flags(&plans, &cluster, &args.node_args)?;
    std::fs::create_dir_all(&args.data_dir).map_err(|source| LocalClusterError::DataDir {
        path: args.data_dir.clone(),
        source,
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(LocalClusterError::Signals)?;
    // Handlers first: a signal arriving while the nodes start is then handled, not fatal.
    let mut signals = runtime
        .block_on(async { StopSignals::new() })
        .map_err(LocalClusterError::Signals)?;

    let mut nodes = Vec::with_capacity(plans.len());
    for p in &plans {
        match NodeProcess::spawn(p.id, program, &p.child_args(&cluster, &args.node_args)) {
            Ok(node) => nodes.push(node),
            Err(source) => {
                report_stop(stop_all(&mut nodes, args.stop_timeout));
                return Err(LocalClusterError::Spawn {
                    id: p.id,
                    program: program.to_path_buf(),
                    source,
                });
            }
        }
    }
    let pids: Vec<u32> = nodes.iter().map(NodeProcess::pid).collect();
    let mut stdout = io::stdout().lock();
    // A closed stdout must not stop the cluster: the addresses are a convenience.
    let _ = stdout.write_all(banner(&plans, &pids, program, &cluster, &args.node_args).as_bytes());
    let _ = stdout.flush();
    drop(stdout);

    let ending = runtime.block_on(supervise(&mut nodes, &mut signals));
    match ending {
        Ok(Ending::Signal(name)) => {
            tracing::info!(signal = name, "stopping every node");
            report_stop(stop_all(&mut nodes, args.stop_timeout));
            Ok(())
        }
        Ok(Ending::AllExited(failed)) if failed.is_empty() => Ok(()),
        Ok(Ending::AllExited(failed)) => Err(LocalClusterError::NodesFailed(failed.join(", "))),
        Err(e) => {
            report_stop(stop_all(&mut nodes, args.stop_timeout));
            Err(e)
        }
    }
}

/// Parses every node's flags as the node will, so a typo after `--` is one error here rather
/// than N errors from N children.
fn check_node_flags(
    plans: &[NodePlan],
    cluster: &str,
    extra: &[String],
) -> Result<(), LocalClusterError> {
    for p in plans {
        let words = std::iter::once("raftwood".into()).chain(p.child_args(cluster, extra));
        let cli = Cli::try_parse_from(words)
            .map_err(|e| LocalClusterError::NodeFlags(crate::cli::one_line(&e)))?;
        cli.server
            .into_config()
            .map_err(|e| LocalClusterError::NodeFlags(e.to_string()))?;
    }
    Ok(())
}

/// Why [`supervise`] returned.
enum Ending {
    /// A stop signal arrived (its name).
    Signal(&'static str),
    /// Every node exited by itself; the failures, described.
    AllExited(Vec<String>),
}

/// Waits for a stop signal or for every node to exit, logging each exit as it happens.
async fn supervise(
    nodes: &mut [NodeProcess],
    signals: &mut StopSignals,
) -> Result<Ending, LocalClusterError> {
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    let mut seen: Vec<Option<ExitStatus>> = vec![None; nodes.len()];
    loop {
        tokio::select! {
            name = signals.recv() => return Ok(Ending::Signal(name)),
            _ = poll.tick() => {}
        }
        for (node, seen) in nodes.iter_mut().zip(seen.iter_mut()) {
            if seen.is_some() {
                continue;
            }
            let status = node.try_wait().map_err(|source| LocalClusterError::Wait {
                id: node.id(),
                source,
            })?;
            if let Some(status) = status {
                if status.success() {
                    tracing::info!(node = node.id(), pid = node.pid(), "node exited");
                } else {
                    tracing::warn!(node = node.id(), pid = node.pid(), %status, "node exited");
                }
                *seen = Some(status);
            }
        }
        if seen.iter().all(Option::is_some) {
            let failed = nodes
                .iter()
                .zip(&seen)
                .filter_map(|(node, status)| match status {
                    Some(s) if !s.success() => Some(format!("node {}: {s}", node.id())),
                    _ => None,
                })
                .collect();
            return Ok(Ending::AllExited(failed));
        }
    }
}

/// Logs how each node ended when stopped.
fn report_stop(outcomes: Vec<(u64, io::Result<StopOutcome>)>) {
    for (id, outcome) in outcomes {
        match outcome {
            Ok(StopOutcome::Exited(status)) => tracing::info!(node = id, %status, "node stopped"),
            Ok(StopOutcome::Killed) => {
                tracing::warn!(node = id, "node did not stop in time: killed")
            }
            Err(e) => tracing::warn!(node = id, error = %e, "cannot stop node"),
        }
    }
}
