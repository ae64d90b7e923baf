//! Where each node of a local cluster listens and keeps its data, and the flags it is started
//! with.

use std::ffi::OsString;
use std::path::PathBuf;

use super::LocalClusterError;
use crate::cli::LocalClusterArgs;

/// The flags local-cluster sets per node; a user's extra flags may not repeat them.
const RESERVED: [&str; 6] = [
    "--id",
    "--cluster",
    "--port",
    "--data-dir",
    "--join",
    "--parent-pipe",
];

/// One node of the local cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// Its raft id (1-based).
    pub id: u64,
    /// Its raft peer URL, `http://127.0.0.1:PORT`.
    pub raft_url: String,
    /// Its HTTP API port on 127.0.0.1.
    pub http_port: u16,
    /// Its data directory.
    pub data_dir: PathBuf,
}

impl NodePlan {
    /// The node's HTTP address, `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The node's command line (after the program name) without the parent pipe: what a person
    /// runs to restart it by hand.
    pub fn args(&self, cluster: &str, extra: &[String]) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--id".into(),
            self.id.to_string().into(),
            "--cluster".into(),
            cluster.into(),
            "--port".into(),
            self.http_port.to_string().into(),
            "--data-dir".into(),
            self.data_dir.clone().into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        args
    }

    /// The arguments local-cluster starts the node with: [`NodePlan::args`] and `--parent-pipe`,
    /// so the node stops when local-cluster's end of its stdin closes.
    pub fn child_args(&self, cluster: &str, extra: &[String]) -> Vec<OsString> {
        let mut args = self.args(cluster, extra);
        args.push("--parent-pipe".into());
        args
    }
}

/// The nodes of `args`: raftexample's Procfile layout (node i: raft port i2379, HTTP port
/// i2380), or with `--base-port P` consecutive pairs (raft P + 2(i-1), HTTP P + 2(i-1) + 1).
/// Data directories are `{data_dir}/node-{i}`.
pub fn plan(args: &LocalClusterArgs) -> Result<Vec<NodePlan>, LocalClusterError> {
    if args.nodes == 0 {
        return Err(LocalClusterError::Layout(
            "--nodes must be at least 1".into(),
        ));
    }
    check_extra(&args.node_args)?;
    (1..=args.nodes)
        .map(|id| {
            let (raft, http) = ports(id, args.base_port).ok_or_else(|| {
                LocalClusterError::Layout(match args.base_port {
                    None => format!(
                        "raftexample's port layout (i2379, i2380) fits at most 6 nodes, not {}; \
                         give --base-port",
                        args.nodes
                    ),
                    Some(base) => {
                        format!(
                            "{} nodes from --base-port {base} run past port 65535",
                            args.nodes
                        )
                    }
                })
            })?;
            Ok(NodePlan {
                id,
                raft_url: format!("http://127.0.0.1:{raft}"),
                http_port: http,
                data_dir: args.data_dir.join(format!("node-{id}")),
            })
        })
        .collect()
}

/// The `--cluster` value every node gets: all raft URLs in id order.
pub fn cluster_flag(plans: &[NodePlan]) -> String {
    let urls: Vec<&str> = plans.iter().map(|p| p.raft_url.as_str()).collect();
    urls.join(",")
}

/// Node `id`'s raft and HTTP ports, or `None` when they do not fit in a port number.
fn ports(id: u64, base_port: Option<u16>) -> Option<(u16, u16)> {
    let (raft, http) = match base_port {
        None => {
            let raft = id.checked_mul(10_000)?.checked_add(2379)?;
            (raft, raft + 1)
        }
        Some(base) => {
            let raft = u64::from(base).checked_add(id.checked_sub(1)?.checked_mul(2)?)?;
            (raft, raft.checked_add(1)?)
        }
    };
    Some((u16::try_from(raft).ok()?, u16::try_from(http).ok()?))
}

/// Refuses extra flags that would repeat a per-node flag.
fn check_extra(extra: &[String]) -> Result<(), LocalClusterError> {
    for arg in extra {
        let name = arg.split_once('=').map_or(arg.as_str(), |(name, _)| name);
        if RESERVED.contains(&name) {
            return Err(LocalClusterError::Layout(format!(
                "{name} is set by local-cluster for each node and cannot be passed after --"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(words: &[&str]) -> LocalClusterArgs {
        let words = ["raftwood", "local-cluster"]
            .into_iter()
            .chain(words.iter().copied());
        match Cli::try_parse_from(words).expect("parses").command {
            Some(Command::LocalCluster(args)) => args,
            other => panic!("not local-cluster: {other:?}"),
        }
    }

    fn strings(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|a| a.to_str().expect("UTF-8")).collect()
    }

    #[test]
    fn the_default_layout_is_raftexamples_procfile() {
        let plans = plan(&args(&["--nodes", "3"])).unwrap();
        let got: Vec<(u64, &str, u16)> = plans
            .iter()
            .map(|p| (p.id, p.raft_url.as_str(), p.http_port))
            .collect();
        assert_eq!(
            got,
            [
                (1, "http://127.0.0.1:12379", 12380),
                (2, "http://127.0.0.1:22379", 22380),
                (3, "http://127.0.0.1:32379", 32380),
            ]
        );
        assert_eq!(
            cluster_flag(&plans),
            "http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379"
        );
        assert_eq!(plans[1].data_dir, PathBuf::from("raftwood-local/node-2"));
        assert_eq!(plans[1].http_url(), "http://127.0.0.1:22380");
        assert_eq!(plan(&args(&["--nodes", "6"])).unwrap()[5].http_port, 62380);
    }

    #[test]
    fn a_base_port_gives_consecutive_pairs() {
        let plans = plan(&args(&[
            "--nodes",
            "3",
            "--base-port",
            "40000",
            "--data-dir",
            "d",
        ]))
        .unwrap();
        let got: Vec<(&str, u16)> = plans
            .iter()
            .map(|p| (p.raft_url.as_str(), p.http_port))
            .collect();
        assert_eq!(
            got,
            [
                ("http://127.0.0.1:40000", 40001),
                ("http://127.0.0.1:40002", 40003),
                ("http://127.0.0.1:40004", 40005),
            ]
        );
        assert_eq!(plans[2].data_dir, PathBuf::from("d/node-3"));
    }

    #[test]
    fn layouts_that_do_not_fit_are_refused() {
        for words in [
            &["--nodes", "0"][..],
            &["--nodes", "7"][..],
            &["--nodes", "2", "--base-port", "65534"][..],
            &["--nodes", "1", "--base-port", "65535"][..],
        ] {
            assert!(
                matches!(plan(&args(words)), Err(LocalClusterError::Layout(_))),
                "{words:?} accepted"
            );
        }
        assert!(plan(&args(&["--nodes", "1", "--base-port", "65534"])).is_ok());
    }

    #[test]
    fn per_node_flags_cannot_be_passed_through() {
        for flag in [
            "--id",
            "--port=1",
            "--cluster",
            "--data-dir",
            "--join",
            "--parent-pipe",
        ] {
            assert!(
                matches!(
                    plan(&args(&["--", flag])),
                    Err(LocalClusterError::Layout(_))
                ),
                "{flag} accepted"
            );
        }
        assert!(plan(&args(&["--", "--snapshot-count", "5"])).is_ok());
    }

    #[test]
    fn each_child_gets_its_flags_and_the_parent_pipe() {
        let plans = plan(&args(&["--nodes", "3"])).unwrap();
        let cluster = cluster_flag(&plans);
        let extra = ["--snapshot-count".to_string(), "100".to_string()];
        let child = plans[1].child_args(&cluster, &extra);
        assert_eq!(
            strings(&child),
            [
                "--id",
                "2",
                "--cluster",
                cluster.as_str(),
                "--port",
                "22380",
                "--data-dir",
                "raftwood-local/node-2",
                "--snapshot-count",
                "100",
                "--parent-pipe",
            ]
        );
        assert_eq!(
            strings(&plans[1].args(&cluster, &extra)).last(),
            Some(&"100")
        );
    }

    #[test]
    fn every_childs_flags_make_the_intended_server_config() {
        let plans = plan(&args(&["--nodes", "3", "--base-port", "41000"])).unwrap();
        let cluster = cluster_flag(&plans);
        for p in &plans {
            let words =
                std::iter::once(OsString::from("raftwood")).chain(p.child_args(&cluster, &[]));
            let config = Cli::try_parse_from(words)
                .expect("parses")
                .server
                .into_config()
                .expect("valid");
            assert_eq!(config.id, p.id);
            assert_eq!(config.peers.len(), 3);
            assert_eq!(config.peers[&p.id], p.raft_url);
            assert_eq!(config.http_listen.port(), p.http_port);
            assert_eq!(config.data_dir, p.data_dir);
            assert!(config.parent_pipe && !config.join);
        }
    }
}
