//! [`LocalCluster`]: `raftwood local-cluster --nodes N` as a user runs it, watched from outside.
//!
//! The subcommand prints each node's HTTP address as `http://127.0.0.1:PORT` (among other lines:
//! curl commands, peer URLs). The harness reads its standard output on a thread, probes every
//! distinct port it saw with `GET /v1/status`, and keeps the ones that answer HTTP: those are
//! the nodes. The nodes' PIDs are the local-cluster process's children, found in `/proc`.
//! `--base-port` is a block of ports from [`crate::ports`], sized for a layout of up to
//! [`PORT_BLOCK`] ports from the base.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::{binary, http, ports, process};

/// Ports reserved from `--base-port` on.
pub const PORT_BLOCK: u16 = 64;
/// How long the subcommand may take to bring up its nodes and elect a leader.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `raftwood local-cluster`. See the module docs.
#[derive(Debug)]
pub struct LocalCluster {
    child: Option<Child>,
    pid: u32,
    dir: tempfile::TempDir,
    stdout: Arc<Mutex<Vec<String>>>,
    http: Vec<SocketAddr>,
    children: Vec<(u32, u64)>,
}

impl LocalCluster {
    /// Starts `raftwood local-cluster --nodes n --base-port P --data-dir DIR` and waits until
    /// `n` nodes answer HTTP, one of them is leader, and `n` child processes exist.
    pub fn start(n: usize) -> LocalCluster {
        let dir = tempfile::Builder::new()
            .prefix("raftwood-local-")
            .tempdir()
            .expect("temporary directory");
        let base = ports::block(PORT_BLOCK);
        let stderr = File::create(dir.path().join("stderr.log")).expect("stderr log");
        let mut child = Command::new(binary::raftwood())
            .args(["local-cluster", "--nodes", &n.to_string()])
            .args(["--base-port", &base.to_string()])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .current_dir(dir.path())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning raftwood local-cluster: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stdout.take().expect("piped stdout");
        let lines = Arc::clone(&stdout);
        // Detached on purpose: it ends when every writer of the pipe (the subcommand and any
        // child that inherited it) has exited; joining it could hang a failing test.
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("stdout lines").push(line);
            }
        });
        let mut cluster = LocalCluster {
            pid: child.id(),
            child: Some(child),
            dir,
            stdout,
            http: Vec::new(),
            children: Vec::new(),
        };
        cluster.http = cluster.find_nodes(n);
        cluster.wait_leader();
        cluster.children = cluster.wait_children(n);
        cluster
    }

    /// The nodes' HTTP addresses, in port order.
    pub fn http(&self) -> &[SocketAddr] {
        &self.http
    }

    /// The node processes (PID, start time) seen as children of the subcommand.
    pub fn children(&self) -> &[(u32, u64)] {
        &self.children
    }

    /// The subcommand's PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn poll<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&Self) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                panic!("raftwood local-cluster exited with {status} while waiting for {what}");
            }
            if let Some(value) = f(self) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn find_nodes(&mut self, n: usize) -> Vec<SocketAddr> {
        // Ports that answered HTTP, and failures per port: a port that fails three times
        // (answers something that is not HTTP, resets, or stays silent) is a peer port.
        let mut answered: BTreeSet<u16> = BTreeSet::new();
        let mut failures: HashMap<u16, u32> = HashMap::new();
        let what = format!("{n} nodes answering GET /v1/status among the printed addresses");
        self.poll(START_TIMEOUT, &what, |c| {
            for port in printed_ports(&c.stdout.lock().expect("stdout lines")) {
                if answered.contains(&port) || failures.get(&port).is_some_and(|f| *f >= 3) {
                    continue;
                }
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                match http::request(addr, "GET", "/v1/status", &[], b"", Duration::from_secs(1)) {
                    Ok(_) => {
                        answered.insert(port);
                    }
                    // Not listening yet: ask again later.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    Err(_) => *failures.entry(port).or_default() += 1,
                }
            }
            let nodes: Vec<SocketAddr> = answered
                .iter()
                .map(|port| SocketAddr::from(([127, 0, 0, 1], *port)))
                .collect();
            (nodes.len() >= n).then_some(nodes)
        })
    }

    fn wait_leader(&mut self) {
        self.poll(
            START_TIMEOUT,
            "a leader among the local cluster's nodes",
            |c| {
                c.http.iter().find_map(|addr| {
                    let r =
                        http::request(*addr, "GET", "/v1/status", &[], b"", Duration::from_secs(2))
                            .ok()?;
                    (r.json()?["role"] == "leader").then_some(())
                })
            },
        );
    }

    fn wait_children(&mut self, n: usize) -> Vec<(u32, u64)> {
        let what = format!("{n} child processes of local-cluster");
        self.poll(START_TIMEOUT, &what, |c| {
            let children = process::children_of(c.pid);
            (children.len() >= n).then_some(children)
        })
    }

    /// Sends `signal` to the subcommand and waits at most `timeout` for it to exit.
    pub fn signal_and_wait(&mut self, signal: &str, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("local-cluster is running");
        process::signal(child.id(), signal).expect("kill");
        match process::wait_timeout(&mut child, timeout).expect("waiting for local-cluster") {
            Some(status) => status,
            None => {
                process::kill_and_reap(&mut child);
                panic!("local-cluster did not exit within {timeout:?} of SIG{signal}");
            }
        }
    }

    /// Waits at most `timeout` for every recorded child to be gone; returns the ones still
    /// running after it.
    pub fn wait_children_gone(&self, timeout: Duration) -> Vec<u32> {
        let deadline = Instant::now() + timeout;
        loop {
            let alive: Vec<u32> = self
                .children
                .iter()
                .filter(|(pid, start)| !process::is_gone(*pid, *start))
                .map(|(pid, _)| *pid)
                .collect();
            if alive.is_empty() || Instant::now() >= deadline {
                return alive;
            }
            thread::sleep(process::POLL);
        }
    }

    /// What the subcommand printed so far (stdout), and its stderr.
    pub fn output(&self) -> String {
        format!(
            "----- local-cluster stdout -----\n{}\n----- local-cluster stderr -----\n{}\n",
            self.stdout.lock().map(|l| l.join("\n")).unwrap_or_default(),
            process::tail(&self.dir.path().join("stderr.log"), 0, 64 << 10)
        )
    }
}

/// The distinct ports of every `http://127.0.0.1:PORT` in `lines`, in order of appearance.
pub fn printed_ports(lines: &[String]) -> Vec<u16> {
    const PREFIX: &str = "http://127.0.0.1:";
    let mut ports = Vec::new();
    for line in lines {
        for (at, _) in line.match_indices(PREFIX) {
            let digits: String = line[at + PREFIX.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(port) = digits.parse::<u16>()
                && !ports.contains(&port)
            {
                ports.push(port);
            }
        }
    }
    ports
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::kill_and_reap(&mut child);
        }
        // Its children are ours too (we caused them); SIGKILL any that outlived it.
        for (pid, start) in &self.children {
            process::kill_if_ours(*pid, *start);
        }
        if thread::panicking() {
            eprintln!(
                "\n===== raftwood local-cluster output of the failed test =====\n{}",
                self.output()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_ports_are_found_once_each_in_order() {
        let lines: Vec<String> = [
            "node 1: http://127.0.0.1:20001 (peer http://127.0.0.1:20000)",
            "curl -L http://127.0.0.1:20001/my-key -XPUT -d foo",
            "http://127.0.0.1:20003",
            "http://127.0.0.1: nothing, http://127.0.0.1:99999 too big",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(printed_ports(&lines), [20001, 20000, 20003]);
    }
}
