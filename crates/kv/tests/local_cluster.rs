//! local-cluster's process handling with real processes: copies of this test binary stand in
//! for nodes (the server is composed in a later step). A copy runs one of the ignored `role_*`
//! helpers, which does its part only when `RAFTWOOD_TEST_ROLE` names it (so
//! `cargo test -- --ignored` runs them as no-ops).
//!
//! - A child watching its parent pipe exits by itself when its parent is SIGKILLed.
//! - `stop_all` lets a child that watches its pipe exit gracefully and kills one that does not.
//! - `local_cluster::run_program` with a shell script for a node: it starts every node with its
//!   flags and the parent pipe, prints the addresses, and on SIGTERM stops them all and returns
//!   `Ok`; SIGKILLed, its nodes stop by themselves.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use raftwood_kv::cli::{Cli, Command as Sub};
use raftwood_kv::local_cluster::{NodeProcess, StopOutcome, run_program, stop_all, watch_parent};

const ROLE: &str = "RAFTWOOD_TEST_ROLE";
const DIR: &str = "RAFTWOOD_TEST_DIR";

/// A command running this test binary's helper `role_{role}`, told its role and directory.
fn role_command(role: &str, dir: &Path) -> Command {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    let helper = format!("role_{role}");
    command
        .args([
            "--exact",
            &helper,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(DIR, dir)
        .stdout(Stdio::null())
        // Not the test's own stderr: a helper left behind would keep cargo's pipe open.
        .stderr(log_file(dir, role));
    command
}

/// Where a helper's stderr goes (appended: several helpers may share a role).
fn log_file(dir: &Path, role: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{role}.log")))
        .expect("open the helper's log")
}

/// A child process killed (SIGKILL) and reaped when the test ends, failed or not.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The role this process was started in, if any, and its directory.
fn my_role(role: &str) -> Option<PathBuf> {
    (std::env::var(ROLE).as_deref() == Ok(role))
        .then(|| PathBuf::from(std::env::var_os(DIR).expect("RAFTWOOD_TEST_DIR set with the role")))
}

/// Waits up to `limit` for `done`, polling.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

/// A node stand-in: watches its parent pipe like a `--parent-pipe` node; when the pipe closes
/// it writes `gone` and exits 0. Gives up after a minute, so it is never left behind.
#[test]
#[ignore = "helper process of the tests in this file"]
fn role_watcher() {
    let Some(dir) = my_role("watcher") else {
        return;
    };
    watch_parent(move || {
        std::fs::write(dir.join("gone"), b"gone").expect("write the marker");
        std::process::exit(0);
    })
    .expect("start the watcher");
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(3);
}

/// A node stand-in that ignores its pipe, so it has to be killed.
#[test]
#[ignore = "helper process of the tests in this file"]
fn role_stubborn() {
    if my_role("stubborn").is_none() {
        return;
    }
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(3);
}

/// A local-cluster stand-in: starts a watcher as local-cluster starts a node, writes its pid,
/// and sleeps until it is killed.
#[test]
#[ignore = "helper process of the tests in this file"]
fn role_parent() {
    let Some(dir) = my_role("parent") else { return };
    let child = NodeProcess::spawn_command(1, role_command("watcher", &dir)).expect("spawn");
    std::fs::write(dir.join("pid"), child.pid().to_string()).expect("write the pid");
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(3);
}

#[test]
fn a_child_exits_when_its_parent_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut parent = Reaped(role_command("parent", dir.path()).spawn().unwrap());
    let pid_file = dir.path().join("pid");
    assert!(
        wait_for(Duration::from_secs(30), || pid_file.exists()),
        "the parent did not start its child"
    );
    assert!(
        !dir.path().join("gone").exists(),
        "the child stopped while its parent lived"
    );
    parent.0.kill().unwrap(); // SIGKILL: the parent runs no code of its own on the way out.
    parent.0.wait().unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || dir.path().join("gone").exists()),
        "the child did not notice its parent's death"
    );
}

#[test]
fn stop_all_stops_watchers_gracefully_and_kills_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = vec![
        NodeProcess::spawn_command(1, role_command("watcher", dir.path())).unwrap(),
        NodeProcess::spawn_command(2, role_command("stubborn", dir.path())).unwrap(),
    ];
    assert_eq!(nodes[0].try_wait().unwrap(), None);
    let started = Instant::now();
    let outcomes = stop_all(&mut nodes, Duration::from_secs(3));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].0, 1);
    match &outcomes[0].1 {
        Ok(StopOutcome::Exited(status)) => assert!(status.success(), "{status}"),
        other => panic!("the watcher did not stop by itself: {other:?}"),
    }
    assert!(dir.path().join("gone").exists());
    assert_eq!(outcomes[1].0, 2);
    assert!(
        matches!(outcomes[1].1, Ok(StopOutcome::Killed)),
        "{:?}",
        outcomes[1].1
    );
    assert!(nodes.iter_mut().all(|n| n.try_wait().unwrap().is_some()));
}

/// A local-cluster stand-in running the real `run_program` with `$DIR/node.sh` as the nodes'
/// program, three nodes from port 47_100 (never bound: the script does not listen).
#[test]
#[ignore = "helper process of the tests in this file"]
fn role_cluster() {
    let Some(dir) = my_role("cluster") else {
        return;
    };
    let data = dir.join("data");
    let cli = Cli::try_parse_from([
        "raftwood",
        "local-cluster",
        "--nodes",
        "3",
        "--base-port",
        "47100",
        "--data-dir",
        data.to_str().expect("UTF-8 temp dir"),
        "--",
        "--snapshot-count",
        "7",
    ])
    .expect("parses");
    let Some(Sub::LocalCluster(args)) = cli.command else {
        panic!("not local-cluster")
    };
    let code = match run_program(args, &dir.join("node.sh")) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    };
    std::process::exit(code);
}

/// Writes the stand-in node: it records its flags, then reads its stdin (the parent pipe) to
/// EOF, records that it stopped, and exits 0.
#[cfg(unix)]
fn write_node_script(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("node.sh");
    let text = format!(
        "#!/bin/sh\n\
         echo \"$@\" > '{dir}'/node-\"$2\".args\n\
         cat > /dev/null\n\
         echo stopped > '{dir}'/node-\"$2\".stopped\n",
        dir = dir.display()
    );
    std::fs::write(&script, text).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Starts the `cluster` role and waits for its three nodes to record their flags.
#[cfg(unix)]
fn start_cluster(dir: &Path) -> Reaped {
    write_node_script(dir);
    let mut command = role_command("cluster", dir);
    command.stdout(std::fs::File::create(dir.join("banner")).unwrap());
    let child = Reaped(command.spawn().unwrap());
    let started = |id| dir.join(format!("node-{id}.args")).exists();
    assert!(
        wait_for(Duration::from_secs(30), || (1..=3).all(started)),
        "the nodes did not start"
    );
    child
}

#[cfg(unix)]
fn all_stopped(dir: &Path) -> bool {
    (1..=3).all(|id| dir.join(format!("node-{id}.stopped")).exists())
}

#[cfg(unix)]
#[test]
fn local_cluster_starts_its_nodes_and_stops_them_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start_cluster(dir.path());
    let args = std::fs::read_to_string(dir.path().join("node-2.args")).unwrap();
    let cluster_flag = "http://127.0.0.1:47100,http://127.0.0.1:47102,http://127.0.0.1:47104";
    let data = dir.path().join("data/node-2");
    assert_eq!(
        args.trim(),
        format!(
            "--id 2 --cluster {cluster_flag} --port 47103 --data-dir {} --snapshot-count 7 \
             --parent-pipe",
            data.display()
        )
    );
    assert!(!all_stopped(dir.path()));
    let banner = std::fs::read_to_string(dir.path().join("banner")).unwrap();
    for port in [47101, 47103, 47105] {
        assert!(
            banner.contains(&format!("http://127.0.0.1:{port}")),
            "{banner}"
        );
    }

    let pid = cluster.0.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    assert!(
        wait_for(Duration::from_secs(30), || matches!(
            cluster.0.try_wait(),
            Ok(Some(_))
        )),
        "local-cluster did not exit on SIGTERM"
    );
    assert!(cluster.0.wait().unwrap().success(), "local-cluster exits 0");
    assert!(all_stopped(dir.path()), "a node was not stopped gracefully");
}

#[cfg(unix)]
#[test]
fn local_clusters_nodes_stop_when_it_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start_cluster(dir.path());
    assert!(
        !all_stopped(dir.path()),
        "the nodes stopped while local-cluster lived"
    );
    cluster.0.kill().unwrap();
    cluster.0.wait().unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || all_stopped(dir.path())),
        "nodes outlived their killed parent"
    );
}
