//! Parsing, defaults and every validation error of the command line.

use super::*;

const THREE: &str = "http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379";

fn parse(args: &[&str]) -> Cli {
    let words = std::iter::once("raftwood").chain(args.iter().copied());
    Cli::try_parse_from(words).expect("the arguments parse")
}

fn config(args: &[&str]) -> Result<ServerConfig, ConfigError> {
    parse(args).server.into_config()
}

fn out_of_range(args: &[&str]) -> &'static str {
    match config(args) {
        Err(ConfigError::OutOfRange { flag, .. }) => flag,
        other => panic!("expected OutOfRange for {args:?}, got {other:?}"),
    }
}

#[test]
fn no_flags_is_a_single_node_cluster_with_the_contract_defaults() {
    let cli = parse(&[]);
    assert!(cli.command.is_none());
    let c = cli.server.into_config().unwrap();
    assert_eq!(c.id, 1);
    assert_eq!(
        c.peers,
        BTreeMap::from([(1, "http://127.0.0.1:12379".to_string())])
    );
    assert_eq!(c.peer_listen, "127.0.0.1:12379".parse().unwrap());
    assert_eq!(c.http_listen, "127.0.0.1:12380".parse().unwrap());
    assert!(!c.join);
    assert_eq!(c.data_dir, PathBuf::from("raftwood-1"));
    assert_eq!(c.snapshot_count, 10_000);
    assert_eq!(c.catch_up, 10_000);
    assert_eq!(c.request_timeout, Duration::from_secs(5));
    assert_eq!(c.max_value_bytes, 1 << 20);
    assert_eq!(c.cluster_token, "raftwood-cluster");
    assert_eq!(c.tick_interval, Duration::from_millis(100));
    assert_eq!((c.election_ticks, c.heartbeat_ticks), (10, 1));
    assert!(
        c.pre_vote && c.check_quorum,
        "etcd's server settings by default"
    );
    assert!(!c.parent_pipe);
}

#[test]
fn raftexample_flags_parse() {
    let c = config(&[
        "--id",
        "3",
        "--cluster",
        THREE,
        "--port",
        "32380",
        "--join",
        "--data-dir",
        "/tmp/x",
        "--snapshot-count",
        "7",
    ])
    .unwrap();
    assert_eq!(c.id, 3);
    assert_eq!(c.peers.len(), 3);
    assert_eq!(c.peers[&2], "http://127.0.0.1:22379");
    assert_eq!(c.peer_listen, "127.0.0.1:32379".parse().unwrap());
    assert_eq!(c.http_listen, "127.0.0.1:32380".parse().unwrap());
    assert!(c.join);
    assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    assert_eq!(c.snapshot_count, 7);
}

#[test]
fn the_default_data_dir_follows_the_id() {
    let c = config(&["--id", "2", "--cluster", THREE]).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("raftwood-2"));
}

#[test]
fn extra_flags_parse() {
    let c = config(&[
        "--listen-host",
        "0.0.0.0",
        "--request-timeout",
        "250ms",
        "--max-value-bytes",
        "64",
        "--cluster-token",
        "blue",
        "--snapshot-catch-up-entries",
        "5",
        "--tick-interval",
        "10ms",
        "--election-ticks",
        "20",
        "--heartbeat-ticks",
        "2",
        "--parent-pipe",
    ])
    .unwrap();
    assert_eq!(c.http_listen, "0.0.0.0:12380".parse().unwrap());
    assert_eq!(c.request_timeout, Duration::from_millis(250));
    assert_eq!(c.max_value_bytes, 64);
    assert_eq!(c.cluster_token, "blue");
    assert_eq!(c.catch_up, 5);
    assert_eq!(c.tick_interval, Duration::from_millis(10));
    assert_eq!((c.election_ticks, c.heartbeat_ticks), (20, 2));
    assert!(c.parent_pipe);
}

#[test]
fn pre_vote_and_check_quorum_switch_off_and_the_last_flag_wins() {
    for (args, expected) in [
        (&[][..], true),
        (&["--pre-vote"][..], true),
        (&["--no-pre-vote"][..], false),
        (&["--pre-vote", "--no-pre-vote"][..], false),
        (&["--no-pre-vote", "--pre-vote"][..], true),
    ] {
        assert_eq!(config(args).unwrap().pre_vote, expected, "{args:?}");
    }
    for (args, expected) in [
        (&[][..], true),
        (&["--check-quorum"][..], true),
        (&["--no-check-quorum"][..], false),
        (&["--check-quorum", "--no-check-quorum"][..], false),
        (&["--no-check-quorum", "--check-quorum"][..], true),
    ] {
        assert_eq!(config(args).unwrap().check_quorum, expected, "{args:?}");
    }
}

#[test]
fn raft_and_http_configs_carry_the_flags() {
    let c = config(&[
        "--id",
        "2",
        "--cluster",
        THREE,
        "--election-ticks",
        "30",
        "--heartbeat-ticks",
        "3",
        "--no-pre-vote",
    ])
    .unwrap();
    // What the server runs with: the node's configuration from ReplicaConfig.
    let node = crate::replica::ReplicaConfig::from(&c).node_config();
    let raft = &node.raft;
    assert_eq!(
        (raft.id, raft.election_tick, raft.heartbeat_tick),
        (2, 30, 3)
    );
    assert!(!raft.pre_vote && raft.check_quorum);
    assert!(node.validate().is_ok());
    let http = c.http_config();
    assert_eq!(http.listen, c.http_listen);
    assert_eq!(http.max_value_bytes, 1 << 20);
    assert_eq!(http.request_timeout, Duration::from_secs(5));
}

#[test]
fn urls_are_normalised_and_may_name_hosts_or_ipv6() {
    let c = config(&[
        "--id",
        "2",
        "--cluster",
        "http://localhost:1/, http://[::1]:2",
    ])
    .unwrap();
    assert_eq!(c.peers[&1], "http://localhost:1");
    assert_eq!(c.peers[&2], "http://[::1]:2");
    assert_eq!(c.peer_listen, "[::1]:2".parse().unwrap());
    let c = config(&["--cluster", "http://localhost:12379"]).unwrap();
    assert!(c.peer_listen.ip().is_loopback());
    assert_eq!(c.peer_listen.port(), 12379);
}

#[test]
fn an_id_outside_the_cluster_is_refused() {
    for id in ["0", "4"] {
        assert_eq!(
            config(&["--id", id, "--cluster", THREE]),
            Err(ConfigError::IdOutOfRange {
                id: id.parse().unwrap(),
                peers: 3
            })
        );
    }
    assert!(
        config(&["--id", "2"]).is_err(),
        "default cluster has one peer"
    );
}

#[test]
fn bad_urls_are_refused() {
    for url in [
        "127.0.0.1:12379",
        "https://127.0.0.1:1",
        "http://127.0.0.1",
        "http://127.0.0.1:0",
        "http://127.0.0.1:70000",
        "http://127.0.0.1:x",
        "http://:1",
        "http://h:1/path",
        "http://u@h:1",
        "http://h:1?q",
        "http://::1:1",
        "http://[]:1",
        "http://[zz]:1",
    ] {
        assert!(
            matches!(config(&["--cluster", url]), Err(ConfigError::BadUrl { .. })),
            "{url} accepted"
        );
    }
}

#[test]
fn empty_and_duplicate_urls_are_refused() {
    assert_eq!(
        config(&["--cluster", "http://a:1,,http://b:2"]),
        Err(ConfigError::EmptyUrl {
            position: 2,
            cluster: "http://a:1,,http://b:2".into()
        })
    );
    assert!(matches!(
        config(&["--cluster", ""]),
        Err(ConfigError::EmptyUrl { position: 1, .. })
    ));
    assert_eq!(
        config(&["--cluster", "http://a:1,http://b:2,http://a:1/"]),
        Err(ConfigError::DuplicateUrl {
            url: "http://a:1".into(),
            first: 1,
            second: 3
        })
    );
}

#[test]
fn an_own_host_that_does_not_resolve_is_refused() {
    // `.invalid` never resolves (RFC 2606); another node's host is not looked up at all.
    assert!(matches!(
        config(&["--cluster", "http://raftwood.invalid:1"]),
        Err(ConfigError::Unresolvable { .. })
    ));
    assert!(config(&["--cluster", "http://127.0.0.1:1,http://raftwood.invalid:2"]).is_ok());
}

#[test]
fn numbers_out_of_range_are_refused() {
    assert_eq!(out_of_range(&["--snapshot-count", "0"]), "--snapshot-count");
    assert_eq!(
        out_of_range(&["--request-timeout", "0s"]),
        "--request-timeout"
    );
    assert_eq!(
        out_of_range(&["--max-value-bytes", "0"]),
        "--max-value-bytes"
    );
    assert_eq!(out_of_range(&["--cluster-token", ""]), "--cluster-token");
    assert_eq!(out_of_range(&["--tick-interval", "0ms"]), "--tick-interval");
    assert_eq!(
        out_of_range(&["--heartbeat-ticks", "0"]),
        "--heartbeat-ticks"
    );
    assert_eq!(
        out_of_range(&["--election-ticks", "3", "--heartbeat-ticks", "3"]),
        "--election-ticks"
    );
}

#[test]
fn errors_name_the_flag_in_one_line() {
    let e = config(&["--id", "5", "--cluster", THREE])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "--id 5 is out of range: --cluster lists 3 peer(s), so --id must be 1..=3"
    );
    let e = config(&["--election-ticks", "1"]).unwrap_err().to_string();
    assert_eq!(
        e,
        "--election-ticks 1: must be greater than --heartbeat-ticks"
    );
    assert!(!e.contains('\n'));
}

#[test]
fn a_value_limit_no_raft_entry_can_carry_is_refused() {
    let max = crate::replica::max_value_bytes_limit();
    let at_max = config(&["--max-value-bytes", &max.to_string()]).unwrap();
    assert_eq!(at_max.max_value_bytes, max);
    // 16 MiB passed the log's decode check but is over the node's entry limit and the frame.
    for value in [max + 1, 16 << 20] {
        match config(&["--max-value-bytes", &value.to_string()]) {
            Err(ConfigError::ValueLimitTooLarge { value: v, max: m }) => {
                assert_eq!((v, m), (value, max));
            }
            other => panic!("expected ValueLimitTooLarge for {value}, got {other:?}"),
        }
    }
}

#[test]
fn clap_refuses_malformed_values() {
    for args in [
        &["--id", "x"][..],
        &["--port", "70000"][..],
        &["--listen-host", "localhost"][..],
        &["--request-timeout", "soon"][..],
        &["--bogus"][..],
    ] {
        let words = std::iter::once("raftwood").chain(args.iter().copied());
        assert!(Cli::try_parse_from(words).is_err(), "{args:?} accepted");
    }
}

#[test]
fn subcommands_parse() {
    let cli = parse(&["local-cluster", "--nodes", "5", "--base-port", "40000"]);
    let Some(Command::LocalCluster(args)) = cli.command else {
        panic!("not local-cluster: {:?}", cli.command);
    };
    assert_eq!(args.nodes, 5);
    assert_eq!(args.base_port, Some(40000));
    assert_eq!(args.data_dir, PathBuf::from("raftwood-local"));
    assert_eq!(args.stop_timeout, Duration::from_secs(10));
    assert!(args.node_args.is_empty());

    let cli = parse(&["local-cluster", "--", "--snapshot-count", "100"]);
    let Some(Command::LocalCluster(args)) = cli.command else {
        panic!("not local-cluster");
    };
    assert_eq!(args.nodes, 3);
    assert_eq!(args.node_args, ["--snapshot-count", "100"]);

    let cli = parse(&["bench", "--clients", "64", "--url", "http://127.0.0.1:1"]);
    let Some(Command::Bench(options)) = cli.command else {
        panic!("not bench");
    };
    assert_eq!(options.clients, 64);
    assert_eq!(options.urls, ["http://127.0.0.1:1"]);
}

#[test]
fn server_flags_do_not_mix_with_a_subcommand() {
    assert!(Cli::try_parse_from(["raftwood", "--id", "2", "bench"]).is_err());
}

#[test]
fn the_help_documents_the_raft_settings() {
    use clap::CommandFactory;
    let help = Cli::command().render_long_help().to_string();
    for needle in [
        "--pre-vote",
        "--no-check-quorum",
        "raftexample leaves it off",
        "[default: 100ms]",
        "[default: raftwood-cluster]",
        "local-cluster",
        "bench",
    ] {
        assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
    }
    assert!(
        !help.contains("--parent-pipe"),
        "the parent pipe flag is hidden"
    );
}

#[test]
fn clap_errors_become_one_line_with_their_tips() {
    let e = Cli::try_parse_from(["raftwood", "--data-dr", "x"]).unwrap_err();
    let line = one_line(&e);
    assert_eq!(
        line,
        "unexpected argument '--data-dr' found; tip: a similar argument exists: '--data-dir' \
         (see --help)"
    );
    let e = Cli::try_parse_from(["raftwood", "--bogus"]).unwrap_err();
    assert_eq!(
        one_line(&e),
        "unexpected argument '--bogus' found (see --help)"
    );
}
