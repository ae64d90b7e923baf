//! The `raftwood` command line (clap, derive): raftexample's flags with their defaults
//! (`../shared/CONTRACT.md`, "Command line"), the extra flags of a real server, and two
//! subcommands, `local-cluster` and `bench`.
//!
//! Parsing is two steps: clap turns the words into [`Cli`] (types and defaults), then
//! [`ServerArgs::into_config`] checks what clap cannot (the id within `--cluster`, the URLs'
//! shape, flags against each other) and produces the plain [`ServerConfig`] the server consumes.
//!
//! ```
//! use clap::Parser;
//! use raftwood_kv::cli::Cli;
//!
//! let cli = Cli::try_parse_from(["raftwood", "--id", "2", "--cluster",
//!     "http://127.0.0.1:12379,http://127.0.0.1:22379", "--port", "22380"]).unwrap();
//! let config = cli.server.into_config().unwrap();
//! assert_eq!(config.peer_listen.to_string(), "127.0.0.1:22379");
//! assert_eq!(config.data_dir.to_str(), Some("raftwood-2"));
//! ```
//!
//! Non-goals: configuration files and environment variables for flags (raftexample has neither).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::http::HttpConfig;
use crate::loadgen::{BenchOptions, parse_duration};
use peer_url::{listen_address, parse_cluster};

/// `raftwood`: a replicated key-value service (raftexample's command line and routes, with
/// durable acknowledgements and linearizable reads).
#[derive(Debug, Parser)]
#[command(
    name = "raftwood",
    version,
    about = "A replicated key-value service on Raft: raftexample's command line and HTTP routes, \
             with writes acknowledged once durable on a quorum and linearizable reads.",
    long_about = None,
    args_conflicts_with_subcommands = true,
    after_help = "With no flags at all, raftwood runs a working single-node cluster: \
                  try `curl -L http://127.0.0.1:12380/hello -XPUT -d world` and \
                  `curl -L http://127.0.0.1:12380/hello`.\n\
                  Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to change their level."
)]
pub struct Cli {
    /// The server's flags, used when no subcommand is given.
    #[command(flatten)]
    pub server: ServerArgs,
    /// A subcommand instead of running a node.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a local cluster of N nodes as child processes, print their addresses and the curl
    /// commands to try, and stop them all on Ctrl-C or SIGTERM.
    LocalCluster(LocalClusterArgs),
    /// Load a running cluster with concurrent PUTs and GETs and report throughput and latency
    /// percentiles.
    Bench(BenchOptions),
}

/// `raftwood local-cluster`'s flags.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct LocalClusterArgs {
    /// How many nodes to start (raftexample's Procfile has 3).
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Use consecutive ports from this one: node i gets raft port P + 2(i-1) and HTTP port
    /// P + 2(i-1) + 1. Without it, raftexample's Procfile layout: node i has raft port i2379 and
    /// HTTP port i2380 (12379/12380, 22379/22380, ...; at most 6 nodes).
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Directory holding the nodes' data directories (`node-1`, `node-2`, ...).
    #[arg(long, default_value = "raftwood-local")]
    pub data_dir: PathBuf,
    /// How long to wait for the nodes to stop gracefully before killing them.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub stop_timeout: Duration,
    /// More flags passed to every node, after `--` (e.g. `-- --snapshot-count 100`). The
    /// per-node flags (`--id`, `--cluster`, `--port`, `--data-dir`, `--join`) are set by
    /// local-cluster and may not appear here.
    #[arg(last = true, value_name = "NODE_FLAGS")]
    pub node_args: Vec<String>,
}

/// The flags of a node: raftexample's six (with its defaults) and the extras of a real server.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ServerArgs {
    /// 1-based position of this node in --cluster; also its raft id.
    #[arg(long, default_value_t = 1)]
    pub id: u64,
    /// Comma-separated peer URLs of the raft transport, `http://host:port` each, in id order.
    #[arg(long, default_value = "http://127.0.0.1:12379")]
    pub cluster: String,
    /// Port of the HTTP key-value API (bound on --listen-host).
    #[arg(long, default_value_t = 12380)]
    pub port: u16,
    /// Join an existing cluster (the member was first added with `POST /{id}`).
    #[arg(long)]
    pub join: bool,
    /// Where the node keeps its state (`wal/*.wal`, `snap/*.snap`); by default `raftwood-{id}`
    /// in the current directory.
    #[arg(
        long,
        help = "Where the node keeps its state (`wal/*.wal`, `snap/*.snap`) [default: raftwood-<id>]"
    )]
    pub data_dir: Option<PathBuf>,
    /// Take a snapshot and compact the log every N applied entries.
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_count: u64,
    /// Entries kept in the log after a compaction, so that a slow follower can catch up from
    /// the log rather than by snapshot (raftexample's snapshotCatchUpEntriesN).
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_catch_up_entries: u64,
    /// IP address the HTTP API listens on (0.0.0.0 for every interface).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub listen_host: IpAddr,
    /// Longest a request may take before it is answered 503 (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Largest accepted value (request body), in bytes; larger ones get 413. At most a little
    /// under 4 MiB: a put must fit in one raft entry (the node's entry limit).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_value_bytes: usize,
    /// Cluster token, like etcd's --initial-cluster-token: peers with another token are refused,
    /// so two clusters on the same hosts cannot talk to each other by mistake.
    #[arg(long, default_value = "raftwood-cluster")]
    pub cluster_token: String,
    /// Length of one raft tick (raftexample: 100ms). Election and heartbeat timeouts count ticks.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub tick_interval: Duration,
    /// Ticks without a leader before a follower starts an election (randomised up to twice
    /// this, Raft §5.2).
    #[arg(long, default_value_t = 10)]
    pub election_ticks: usize,
    /// Ticks between a leader's heartbeats; less than --election-ticks.
    #[arg(long, default_value_t = 1)]
    pub heartbeat_ticks: usize,
    /// PreVote (on by default, as etcd's server; raftexample leaves it off): a node probes
    /// for votes before starting a real election, so a node rejoining after a partition does not
    /// disrupt the cluster with a higher term (thesis §9.6).
    // Clap plumbing only, never read: with `overrides_with`, a later `--pre-vote` cancels an
    // earlier `--no-pre-vote`. The setting is `ServerArgs::pre_vote_enabled`.
    #[arg(long, overrides_with = "no_pre_vote")]
    pre_vote: bool,
    /// Turn PreVote off (raftexample's setting).
    #[arg(long, overrides_with = "pre_vote")]
    pub no_pre_vote: bool,
    /// CheckQuorum (on by default, as etcd's server; raftexample leaves it off): a leader cut
    /// off in a minority steps down after an election timeout, and followers that hear from a
    /// leader ignore disruptive vote requests (thesis §6.2).
    // Clap plumbing only, never read: a later `--check-quorum` cancels an earlier
    // `--no-check-quorum`. The setting is `ServerArgs::check_quorum_enabled`.
    #[arg(long, overrides_with = "no_check_quorum")]
    check_quorum: bool,
    /// Turn CheckQuorum off (raftexample's setting).
    #[arg(long, overrides_with = "check_quorum")]
    pub no_check_quorum: bool,
    /// Set by `raftwood local-cluster` on its children: stdin is a pipe from the parent, and the
    /// node stops when it closes (the parent exited or was killed). See
    /// [`crate::local_cluster::watch_parent`].
    #[arg(long, hide = true)]
    pub parent_pipe: bool,
}

/// Everything a node needs to run, checked and typed: what [`crate::server::run`] consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// This node's raft id, its 1-based position in `--cluster`; never 0.
    pub id: u64,
    /// Every member's peer URL by id (ids 1..=n in `--cluster` order), normalised to
    /// `http://host:port`; includes this node.
    pub peers: BTreeMap<u64, String>,
    /// Where the raft transport listens: the host and port of this node's own URL (a host name
    /// is resolved once, at start-up).
    pub peer_listen: SocketAddr,
    /// Join an existing cluster instead of bootstrapping one.
    pub join: bool,
    /// The node's data directory (`wal/`, `snap/`).
    pub data_dir: PathBuf,
    /// Applied entries between snapshots; at least 1.
    pub snapshot_count: u64,
    /// Entries kept behind a snapshot for slow followers (snapshotCatchUpEntriesN).
    pub catch_up: u64,
    /// Where the HTTP API listens.
    pub http_listen: SocketAddr,
    /// Longest a request may take before `503`; above zero.
    pub request_timeout: Duration,
    /// Largest accepted value in bytes (`413` above); at least 1, at most
    /// [`crate::replica::max_value_bytes_limit`].
    pub max_value_bytes: usize,
    /// The cluster token (peers with another one are refused); not empty.
    pub cluster_token: String,
    /// Length of one raft tick; above zero.
    pub tick_interval: Duration,
    /// Election timeout in ticks; greater than `heartbeat_ticks`.
    pub election_ticks: usize,
    /// Heartbeat interval in ticks; at least 1.
    pub heartbeat_ticks: usize,
    /// PreVote (thesis §9.6): a node rejoining after a partition probes before campaigning, so
    /// it does not disrupt the cluster with a higher term. On unless `--no-pre-vote`, as in
    /// etcd's server (raftexample leaves it off).
    pub pre_vote: bool,
    /// CheckQuorum (thesis §6.2): a leader cut off in a minority steps down after an election
    /// timeout instead of believing it still leads. On unless `--no-check-quorum`, as in etcd's
    /// server (raftexample leaves it off).
    pub check_quorum: bool,
    /// Stdin is a pipe from a `local-cluster` parent: stop when it closes
    /// ([`crate::local_cluster::watch_parent`]).
    pub parent_pipe: bool,
}

/// A flag value that parses but makes no server; the message names the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `--cluster` has no URL, or an empty one between commas.
    #[error("--cluster: empty peer URL at position {position} in {cluster:?}")]
    EmptyUrl {
        /// 1-based position in the list.
        position: usize,
        /// The flag's value.
        cluster: String,
    },
    /// A peer URL is not `http://host:port`.
    #[error("--cluster: bad peer URL {url:?}: {reason} (expected http://host:port)")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same peer URL twice: two members cannot share an address.
    #[error("--cluster: peer URL {url:?} is listed twice (ids {first} and {second})")]
    DuplicateUrl {
        /// The URL.
        url: String,
        /// Its first id.
        first: u64,
        /// Its second id.
        second: u64,
    },
    /// `--id` is not a position in `--cluster`.
    #[error(
        "--id {id} is out of range: --cluster lists {peers} peer(s), so --id must be 1..={peers}"
    )]
    IdOutOfRange {
        /// The id given.
        id: u64,
        /// How many URLs `--cluster` has.
        peers: usize,
    },
    /// This node's own URL names a host that does not resolve to an address to listen on.
    #[error("--cluster: cannot listen on this node's URL {url:?}: {reason}")]
    Unresolvable {
        /// The node's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// `--max-value-bytes` above what one raft entry can carry.
    #[error(
        "--max-value-bytes {value}: above {max}, the largest value one raft entry carries under the longest key (the node's entry limit keeps every entry within one transport frame)"
    )]
    ValueLimitTooLarge {
        /// The flag's value.
        value: usize,
        /// The largest accepted ([`crate::replica::max_value_bytes_limit`]).
        max: usize,
    },
    /// A number or duration outside its range.
    #[error("{flag} {value}: {reason}")]
    OutOfRange {
        /// The flag.
        flag: &'static str,
        /// Its value as given.
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
}

impl ServerArgs {
    /// The effective PreVote setting: on unless `--no-pre-vote` came last.
    pub fn pre_vote_enabled(&self) -> bool {
        !self.no_pre_vote
    }

    /// The effective CheckQuorum setting: on unless `--no-check-quorum` came last.
    pub fn check_quorum_enabled(&self) -> bool {
        !self.no_check_quorum
    }

    /// Checks the flags against each other and builds the [`ServerConfig`].
    pub fn into_config(self) -> Result<ServerConfig, ConfigError> {
        self.check_numbers()?;
        let peers = parse_cluster(&self.cluster)?;
        let Some(own) = peers.get(&self.id) else {
            return Err(ConfigError::IdOutOfRange {
                id: self.id,
                peers: peers.len(),
            });
        };
        let peer_listen = listen_address(own)?;
        let pre_vote = self.pre_vote_enabled();
        let check_quorum = self.check_quorum_enabled();
        Ok(ServerConfig {
            id: self.id,
            peer_listen,
            join: self.join,
            data_dir: self
                .data_dir
                .unwrap_or_else(|| PathBuf::from(format!("raftwood-{}", self.id))),
            snapshot_count: self.snapshot_count,
            catch_up: self.snapshot_catch_up_entries,
            http_listen: SocketAddr::new(self.listen_host, self.port),
            request_timeout: self.request_timeout,
            max_value_bytes: self.max_value_bytes,
            cluster_token: self.cluster_token,
            tick_interval: self.tick_interval,
            election_ticks: self.election_ticks,
            heartbeat_ticks: self.heartbeat_ticks,
            pre_vote,
            check_quorum,
            parent_pipe: self.parent_pipe,
            peers,
        })
    }

    /// The rules on single values and on the two tick counts.
    fn check_numbers(&self) -> Result<(), ConfigError> {
        let out = |flag, value: String, reason| {
            Err(ConfigError::OutOfRange {
                flag,
                value,
                reason,
            })
        };
        if self.snapshot_count == 0 {
            return out("--snapshot-count", "0".into(), "must be at least 1");
        }
        if self.request_timeout.is_zero() {
            return out("--request-timeout", "0".into(), "must be above zero");
        }
        if self.max_value_bytes == 0 {
            return out("--max-value-bytes", "0".into(), "must be at least 1");
        }
        let max = crate::replica::max_value_bytes_limit();
        if self.max_value_bytes > max {
            return Err(ConfigError::ValueLimitTooLarge {
                value: self.max_value_bytes,
                max,
            });
        }
        if self.cluster_token.is_empty() {
            return out("--cluster-token", "\"\"".into(), "must not be empty");
        }
        if self.tick_interval.is_zero() {
            return out("--tick-interval", "0".into(), "must be above zero");
        }
        if self.heartbeat_ticks == 0 {
            return out("--heartbeat-ticks", "0".into(), "must be at least 1");
        }
        if self.election_ticks <= self.heartbeat_ticks {
            return out(
                "--election-ticks",
                self.election_ticks.to_string(),
                "must be greater than --heartbeat-ticks",
            );
        }
        Ok(())
    }
}

impl ServerConfig {
    /// The HTTP layer's settings.
    pub fn http_config(&self) -> HttpConfig {
        HttpConfig {
            listen: self.http_listen,
            max_value_bytes: self.max_value_bytes,
            request_timeout: self.request_timeout,
        }
    }
}

/// A clap error (a bad or unknown flag) as one line: the message and its tips, without the
/// usage block, so every error of the binary is one line on stderr.
pub fn one_line(error: &clap::Error) -> String {
    let rendered = error.to_string();
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect();
    format!("{} (see --help)", parts.join("; "))
}

mod peer_url;

#[cfg(test)]
mod tests;
