//! The `raftwood` binary's command line end to end: `--help`, and every error as one line on
//! stderr with a status other than 0, never a panic.

use std::process::{Command, Output};

fn raftwood(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raftwood"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run raftwood")
}

/// Asserts `args` fail with `status` and one line on stderr containing `needle`.
fn fails_with_one_line(args: &[&str], status: i32, needle: &str) {
    let out = raftwood(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(status), "{args:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: not one line: {stderr:?}"
    );
    assert!(stderr.starts_with("raftwood: "), "{stderr:?}");
    assert!(
        stderr.contains(needle),
        "{args:?}: {stderr:?} lacks {needle:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr:?}");
}

#[test]
fn help_lists_the_flags_and_subcommands() {
    let out = raftwood(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--cluster",
        "--snapshot-count",
        "--no-pre-vote",
        "local-cluster",
        "bench",
    ] {
        assert!(help.contains(needle), "help lacks {needle}");
    }
    let out = raftwood(&["bench", "--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--clients"));
}

#[test]
fn command_line_errors_are_one_line_with_status_2() {
    fails_with_one_line(&["--bogus"], 2, "--bogus");
    fails_with_one_line(&["--port", "x"], 2, "--port");
    fails_with_one_line(&["--id", "2"], 2, "--id 2 is out of range");
    fails_with_one_line(&["--cluster", "127.0.0.1:1"], 2, "bad peer URL");
    fails_with_one_line(&["--election-ticks", "1"], 2, "--election-ticks");
}

#[test]
fn subcommand_errors_are_one_line_with_status_1() {
    fails_with_one_line(&["bench", "--clients", "0"], 1, "--clients");
    fails_with_one_line(&["local-cluster", "--nodes", "7"], 1, "--base-port");
    fails_with_one_line(
        &[
            "local-cluster",
            "--nodes",
            "1",
            "--",
            "--snapshot-count",
            "0",
        ],
        1,
        "--snapshot-count",
    );
    fails_with_one_line(&["local-cluster", "--", "--bogus"], 1, "--bogus");
    fails_with_one_line(&["local-cluster", "--", "--port", "1"], 1, "--port");
}

/// The top-level Procfile (goreman, honcho) runs the three nodes of local-cluster's default
/// layout, and each line's flags make a valid node.
#[test]
fn the_procfile_matches_the_default_local_cluster() {
    use clap::Parser;
    use raftwood_kv::cli::{Cli, Command as Sub};
    use raftwood_kv::local_cluster::plan;

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Procfile");
    let text = std::fs::read_to_string(path).expect("read the Procfile");
    let Some(Sub::LocalCluster(args)) = Cli::try_parse_from(["raftwood", "local-cluster"])
        .expect("parses")
        .command
    else {
        panic!("not local-cluster")
    };
    let plans = plan(&args).expect("the default layout");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), plans.len());
    for (line, p) in lines.iter().zip(&plans) {
        let (name, command) = line.split_once(':').expect("name: command");
        assert_eq!(name, format!("raftwood{}", p.id));
        let mut words = command.split_whitespace();
        assert_eq!(words.next(), Some("target/release/raftwood"));
        let config = Cli::try_parse_from(std::iter::once("raftwood").chain(words))
            .expect("the line parses")
            .server
            .into_config()
            .expect("the line makes a node");
        assert_eq!(config.id, p.id);
        assert_eq!(config.http_listen.port(), p.http_port);
        let urls: Vec<&String> = config.peers.values().collect();
        let expected: Vec<&String> = plans.iter().map(|q| &q.raft_url).collect();
        assert_eq!(urls, expected);
    }
}
