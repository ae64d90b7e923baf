//! [`Cluster`]: N `raftwood` processes on loopback, each in its own directory, driven over HTTP.
//!
//! Node `i` (1-based, also its raft id) runs
//! `raftwood --id i --cluster URL1,..,URLn --port P --data-dir DIR/node-i/data
//! --snapshot-count K --tick-interval T --election-ticks E --heartbeat-ticks H --request-timeout R`
//! with its standard output and error appended to `DIR/node-i/stdout.log` and `stderr.log`.
//! Every wait is bounded; a node that exits while the harness waits for it fails the test at
//! once with its exit status; when a test panics, dropping the cluster prints every node's logs
//! and, always, SIGKILLs every node still running.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::http::{self, Response, encode_key};
use crate::{binary, ports, process};

/// How long one HTTP request may take: well above the nodes' request timeout (2 s by default),
/// so a node's own 503 arrives before the client gives up.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `GET /v1/status` may take (it reads local state only).
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an operation that retries (a write during an election, a read on a node that is
/// catching up) may take in all.
pub const OP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a cluster may take to elect a leader after a start or restart.
pub const LEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to exit after SIGTERM (it syncs and closes its WAL).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// How each node is started.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--snapshot-count`.
    pub snapshot_count: u64,
    /// `--tick-interval`: short, so elections on loopback take a fraction of a second.
    pub tick_interval: String,
    /// `--election-ticks`.
    pub election_ticks: u32,
    /// `--heartbeat-ticks`.
    pub heartbeat_ticks: u32,
    /// `--request-timeout`: short, so requests during an election fail fast with 503 and retry.
    pub request_timeout: String,
    /// More flags, appended to every node's command line.
    pub extra_args: Vec<String>,
    /// `RUST_LOG` for the nodes: `RAFTWOOD_TEST_LOG` if set, else `info`.
    pub rust_log: String,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            snapshot_count: 10_000,
            tick_interval: "20ms".into(),
            election_ticks: 10,
            heartbeat_ticks: 1,
            request_timeout: "2s".into(),
            extra_args: Vec::new(),
            rust_log: std::env::var("RAFTWOOD_TEST_LOG").unwrap_or_else(|_| "info".into()),
        }
    }
}

/// One node: its ports and directory, and its process while it runs.
#[derive(Debug)]
struct Node {
    id: u64,
    http_port: u16,
    peer_port: u16,
    dir: PathBuf,
    /// The `--cluster` list this node is started with.
    cluster: Vec<String>,
    join: bool,
    child: Option<Child>,
    /// Set once the node is being removed: it may exit by itself from then on.
    may_exit: bool,
    starts: u32,
    /// Length of `stderr.log` when the current (or last) process started.
    stderr_start: u64,
}

impl Node {
    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn peer_url(&self) -> String {
        peer_url(self.peer_port)
    }

    fn args(&self, options: &Options) -> Vec<String> {
        let mut args = vec![
            "--id".into(),
            self.id.to_string(),
            "--cluster".into(),
            self.cluster.join(","),
            "--port".into(),
            self.http_port.to_string(),
            "--data-dir".into(),
            self.data_dir().display().to_string(),
            "--snapshot-count".into(),
            options.snapshot_count.to_string(),
            "--tick-interval".into(),
            options.tick_interval.clone(),
            "--election-ticks".into(),
            options.election_ticks.to_string(),
            "--heartbeat-ticks".into(),
            options.heartbeat_ticks.to_string(),
            "--request-timeout".into(),
            options.request_timeout.clone(),
        ];
        if self.join {
            args.push("--join".into());
        }
        args.extend(options.extra_args.iter().cloned());
        args
    }

    fn log_path(&self, stream: &str) -> PathBuf {
        self.dir.join(format!("{stream}.log"))
    }

    fn spawn(&mut self, options: &Options, rust_log: &str) {
        assert!(self.child.is_none(), "node {} is already running", self.id);
        fs::create_dir_all(&self.dir).expect("node directory");
        self.starts += 1;
        self.may_exit = false;
        let args = self.args(options);
        let banner = format!(
            "===== harness: start #{} of node {}: RUST_LOG={rust_log} raftwood {} =====\n",
            self.starts,
            self.id,
            args.join(" ")
        );
        let stdout = append(&self.log_path("stdout"), &banner);
        let stderr = append(&self.log_path("stderr"), &banner);
        self.stderr_start = stderr.metadata().map(|m| m.len()).unwrap_or(0);
        let child = Command::new(binary::raftwood())
            .args(&args)
            .current_dir(&self.dir)
            .env("RUST_LOG", rust_log)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", binary::raftwood().display()));
        self.child = Some(child);
    }

    fn logs(&self) -> String {
        format!(
            "----- node {} stdout ({}) -----\n{}\n----- node {} stderr ({}) -----\n{}\n",
            self.id,
            self.log_path("stdout").display(),
            process::tail(&self.log_path("stdout"), 0, 48 << 10),
            self.id,
            self.log_path("stderr").display(),
            process::tail(&self.log_path("stderr"), 0, 48 << 10),
        )
    }
}

fn append(path: &Path, banner: &str) -> File {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    file.write_all(banner.as_bytes())
        .expect("writing the log banner");
    file
}

fn peer_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// A local raftwood cluster under test. See the module docs.
#[derive(Debug)]
pub struct Cluster {
    nodes: Vec<Node>,
    options: Options,
    dir: Option<tempfile::TempDir>,
}

impl Cluster {
    /// Starts `n` nodes with default [`Options`] and waits for a leader.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, Options::default())
    }

    /// Starts `n` nodes with `options` and waits for a leader every node agrees on.
    pub fn start_with(n: usize, options: Options) -> Cluster {
        let mut cluster = Cluster::new(n, options);
        for id in 1..=n as u64 {
            cluster.start_node(id);
        }
        cluster.wait_leader(LEADER_TIMEOUT);
        cluster
    }

    /// Prepares `n` nodes (directories and ports) without starting any.
    pub fn new(n: usize, options: Options) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("raftwood-test-")
            .tempdir()
            .expect("temporary directory");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            options,
            dir: Some(dir),
        };
        for _ in 0..n {
            cluster.push_node(false);
        }
        let urls: Vec<String> = cluster.nodes.iter().map(Node::peer_url).collect();
        for node in &mut cluster.nodes {
            node.cluster = urls.clone();
        }
        cluster
    }

    fn push_node(&mut self, join: bool) -> u64 {
        let id = self.nodes.len() as u64 + 1;
        let first = ports::block(2);
        let root = self.dir.as_ref().expect("cluster directory").path();
        self.nodes.push(Node {
            id,
            peer_port: first,
            http_port: first + 1,
            dir: root.join(format!("node-{id}")),
            cluster: Vec::new(),
            join,
            child: None,
            may_exit: false,
            starts: 0,
            stderr_start: 0,
        });
        id
    }

    fn node(&self, id: u64) -> &Node {
        let index = id.checked_sub(1).expect("node ids start at 1") as usize;
        self.nodes
            .get(index)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: u64) -> &mut Node {
        let index = id.checked_sub(1).expect("node ids start at 1") as usize;
        self.nodes
            .get_mut(index)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// The ids of all nodes, running or not.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// The ids of the nodes whose process the harness believes is running.
    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.id)
            .collect()
    }

    /// Node `id`'s HTTP address.
    pub fn http_addr(&self, id: u64) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.node(id).http_port))
    }

    /// Node `id`'s raft peer address.
    pub fn peer_addr(&self, id: u64) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.node(id).peer_port))
    }

    /// Node `id`'s peer URL, as given in `--cluster`.
    pub fn peer_url(&self, id: u64) -> String {
        self.node(id).peer_url()
    }

    /// Node `id`'s `--data-dir`.
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.node(id).data_dir()
    }

    /// The command-line arguments node `id` is (or would be) started with.
    pub fn args(&self, id: u64) -> Vec<String> {
        self.node(id).args(&self.options)
    }

    /// Starts node `id`'s process (its first start or a restart: same flags, same directory).
    pub fn start_node(&mut self, id: u64) {
        let rust_log = self.options.rust_log.clone();
        self.start_node_with_log(id, &rust_log);
    }

    /// As [`Cluster::start_node`], with `RUST_LOG` set to `rust_log` for this start.
    pub fn start_node_with_log(&mut self, id: u64, rust_log: &str) {
        let options = self.options.clone();
        self.node_mut(id).spawn(&options, rust_log);
    }

    /// Restarts node `id` after a stop or a kill. Does not wait for anything.
    pub fn restart(&mut self, id: u64) {
        self.start_node(id);
    }

    /// What node `id` wrote to stderr since its current (or last) process started.
    pub fn stderr_of_last_start(&self, id: u64) -> String {
        let node = self.node(id);
        process::tail(&node.log_path("stderr"), node.stderr_start, 1 << 20)
    }

    /// SIGTERMs node `id` and waits for it to exit; returns its exit status.
    pub fn terminate(&mut self, id: u64) -> ExitStatus {
        let node = self.node_mut(id);
        let mut child = node
            .child
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        process::signal(child.id(), "TERM").expect("kill -TERM");
        match process::wait_timeout(&mut child, STOP_TIMEOUT).expect("waiting for a node") {
            Some(status) => status,
            None => {
                process::kill_and_reap(&mut child);
                panic!("node {id} did not exit within {STOP_TIMEOUT:?} of SIGTERM")
            }
        }
    }

    /// SIGTERMs node `id` and checks that it stops cleanly (exit status 0, as the contract says).
    pub fn stop(&mut self, id: u64) {
        let status = self.terminate(id);
        assert!(
            status.success(),
            "node {id} exited with {status} after SIGTERM"
        );
    }

    /// SIGKILLs node `id` (a crash: nothing is flushed) and reaps it.
    pub fn kill9(&mut self, id: u64) {
        let node = self.node_mut(id);
        let mut child = node
            .child
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        process::kill_and_reap(&mut child);
    }

    /// Waits at most `timeout` for node `id` to exit by itself; returns its exit status.
    pub fn wait_exit(&mut self, id: u64, timeout: Duration) -> ExitStatus {
        let node = self.node_mut(id);
        let child = node
            .child
            .as_mut()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        match process::wait_timeout(child, timeout).expect("waiting for a node") {
            Some(status) => {
                node.child = None;
                status
            }
            None => panic!("node {id} did not exit by itself within {timeout:?}"),
        }
    }

    /// Fails the test at once if a node the harness believes running has exited (a node being
    /// removed from the cluster excepted).
    pub fn check_running(&mut self) {
        for node in self.nodes.iter_mut().filter(|n| !n.may_exit) {
            if let Some(child) = node.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                node.child = None;
                panic!(
                    "node {} exited unexpectedly with {status} (its logs follow)",
                    node.id
                );
            }
        }
    }

    /// Polls `f` every 20 ms until it returns `Some`, for at most `timeout`, failing fast when a
    /// running node exits. Panics with `what` on timeout.
    pub fn poll<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&mut Cluster) -> Option<T>,
    ) -> T {
        self.try_poll(timeout, &mut f)
            .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
    }

    /// As [`Cluster::poll`], but `None` on timeout instead of a panic.
    pub fn try_poll<T>(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&mut Cluster) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_running();
            if let Some(value) = f(self) {
                return Some(value);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(process::POLL);
        }
    }

    /// Node `id`'s `GET /v1/status`, or `None` when it does not answer 200 with JSON.
    pub fn status(&self, id: u64) -> Option<serde_json::Value> {
        // Short: status is answered from local state, and a hung node must not stall a poll.
        let addr = self.http_addr(id);
        let response = http::request(addr, "GET", "/v1/status", &[], b"", STATUS_TIMEOUT).ok()?;
        (response.status == 200).then(|| response.json())?
    }

    /// Waits at most `timeout` until a running node is leader and every running node names it
    /// as its leader; returns the leader's id.
    pub fn wait_leader(&mut self, timeout: Duration) -> u64 {
        let mut last = Vec::new();
        let leader = self.try_poll(timeout, |c| {
            let statuses: Vec<_> = c
                .running()
                .into_iter()
                .map(|id| (id, c.status(id)))
                .collect();
            last.clone_from(&statuses);
            let statuses: Option<Vec<_>> = statuses.into_iter().map(|(_, s)| s).collect();
            let statuses = statuses?;
            let leader = statuses
                .iter()
                .find(|s| s["role"] == "leader")?
                .get("id")?
                .as_u64()?;
            statuses
                .iter()
                .all(|s| s["leader"].as_u64() == Some(leader))
                .then_some(leader)
        });
        leader.unwrap_or_else(|| {
            let seen: Vec<String> = last
                .iter()
                .map(|(id, s)| match s {
                    Some(s) => format!("node {id}: {s}"),
                    None => format!("node {id}: no answer to GET /v1/status"),
                })
                .collect();
            panic!(
                "timed out after {timeout:?} waiting for a leader all running nodes agree on; last statuses:\n{}",
                seen.join("\n")
            )
        })
    }

    /// One request to node `id`.
    pub fn request(
        &self,
        id: u64,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        http::request(
            self.http_addr(id),
            method,
            path,
            headers,
            body,
            HTTP_TIMEOUT,
        )
    }

    fn request_ok(
        &self,
        id: u64,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.request(id, method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path} on node {id}: {e}"))
    }

    /// `PUT /{key}` (raftexample's route) on node `id`, once.
    pub fn put(&self, id: u64, key: &str, value: &[u8]) -> Response {
        self.request_ok(id, "PUT", &format!("/{}", encode_key(key)), &[], value)
    }

    /// `GET /{key}` (raftexample's route) on node `id`, once.
    pub fn get(&self, id: u64, key: &str) -> Response {
        self.request_ok(id, "GET", &format!("/{}", encode_key(key)), &[], b"")
    }

    /// `PUT /v1/kv/{key}` on node `id`, once, with extra headers (`If-Match`).
    pub fn put_v1(&self, id: u64, key: &str, value: &[u8], headers: &[(&str, &str)]) -> Response {
        let path = format!("/v1/kv/{}", encode_key(key));
        self.request_ok(id, "PUT", &path, headers, value)
    }

    /// `GET /v1/kv/{key}` on node `id`, once; `serializable` adds `?consistency=serializable`.
    pub fn get_v1(&self, id: u64, key: &str, serializable: bool) -> Response {
        let query = if serializable {
            "?consistency=serializable"
        } else {
            ""
        };
        let path = format!("/v1/kv/{}{query}", encode_key(key));
        self.request_ok(id, "GET", &path, &[], b"")
    }

    /// `DELETE /v1/kv/{key}` on node `id`, once.
    pub fn delete_v1(&self, id: u64, key: &str) -> Response {
        let path = format!("/v1/kv/{}", encode_key(key));
        self.request_ok(id, "DELETE", &path, &[], b"")
    }

    /// Sends a request to node `id` until it gets an answer other than 503 (no leader yet) or
    /// a connection error (node starting), for at most [`OP_TIMEOUT`].
    pub fn retry(
        &mut self,
        id: u64,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let what = format!("an answer other than 503 to {method} {path} on node {id}");
        self.poll(OP_TIMEOUT, &what, |c| {
            match c.request(id, method, path, headers, body) {
                Ok(r) if r.status != 503 => Some(r),
                _ => None,
            }
        })
    }

    /// `PUT /{key}` on node `id`, retried through elections; the write must be acknowledged
    /// (204). Retrying is safe: the same value again.
    pub fn put_ok(&mut self, id: u64, key: &str, value: &[u8]) {
        let path = format!("/{}", encode_key(key));
        let r = self.retry(id, "PUT", &path, &[], value);
        assert_eq!(r.status, 204, "PUT {path} on node {id}: {}", r.text());
    }

    /// `GET /{key}` (linearizable) on node `id`, retried through elections: the value, or
    /// `None` for 404. Any other status fails the test.
    pub fn get_ok(&mut self, id: u64, key: &str) -> Option<Vec<u8>> {
        let path = format!("/{}", encode_key(key));
        value_of(id, &path, self.retry(id, "GET", &path, &[], b""))
    }

    /// `GET /v1/kv/{key}?consistency=serializable` on node `id`: this node's state, retried only
    /// through connection errors.
    pub fn get_serializable(&mut self, id: u64, key: &str) -> Option<Vec<u8>> {
        let path = format!("/v1/kv/{}?consistency=serializable", encode_key(key));
        value_of(id, &path, self.retry(id, "GET", &path, &[], b""))
    }

    /// Waits at most [`OP_TIMEOUT`] until node `id`'s own state (a serializable read) holds
    /// `value` at `key`: for a node that is catching up.
    pub fn wait_value(&mut self, id: u64, key: &str, value: &[u8]) {
        let what = format!(
            "node {id} to hold {key:?} = {:?}",
            String::from_utf8_lossy(value)
        );
        self.poll(OP_TIMEOUT, &what, |c| {
            (c.get_serializable(id, key).as_deref() == Some(value)).then_some(())
        });
    }

    /// `GET /v1/members` on node `id`, as JSON.
    pub fn members(&mut self, id: u64) -> serde_json::Value {
        let r = self.retry(id, "GET", "/v1/members", &[], b"");
        assert_eq!(r.status, 200, "GET /v1/members on node {id}: {}", r.text());
        r.json()
            .unwrap_or_else(|| panic!("/v1/members is not JSON: {}", r.text()))
    }

    /// Prepares a new node (ports, directory, `--join`, a `--cluster` list of every node so far
    /// and itself) without starting it; returns its id.
    pub fn add_node(&mut self) -> u64 {
        let id = self.push_node(true);
        let urls: Vec<String> = self.nodes.iter().map(Node::peer_url).collect();
        self.node_mut(id).cluster = urls;
        id
    }

    /// `POST /{id}` with node `id`'s peer URL, through node `via`, until it is acknowledged.
    pub fn member_add(&mut self, via: u64, id: u64) {
        let url = self.peer_url(id);
        let r = self.retry(via, "POST", &format!("/{id}"), &[], url.as_bytes());
        assert_eq!(
            r.status,
            204,
            "POST /{id} {url} on node {via}: {}",
            r.text()
        );
    }

    /// `DELETE /{id}` through node `via`, until it is acknowledged.
    pub fn member_remove(&mut self, via: u64, id: u64) {
        self.node_mut(id).may_exit = true;
        let r = self.retry(via, "DELETE", &format!("/{id}"), &[], b"");
        assert_eq!(r.status, 204, "DELETE /{id} on node {via}: {}", r.text());
    }

    /// Every node's logs, for a failure message.
    pub fn logs(&self) -> String {
        self.nodes.iter().map(Node::logs).collect()
    }
}

fn value_of(id: u64, path: &str, r: Response) -> Option<Vec<u8>> {
    match r.status {
        200 => Some(r.body),
        404 => None,
        status => panic!("GET {path} on node {id}: {status} {}", r.text()),
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let failed = thread::panicking();
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                process::kill_and_reap(&mut child);
            }
        }
        if failed {
            eprintln!(
                "\n===== raftwood logs of the failed test =====\n{}",
                self.logs()
            );
            if std::env::var_os("RAFTWOOD_KEEP_DIRS").is_some()
                && let Some(dir) = self.dir.take()
            {
                eprintln!("kept the nodes' directories in {}", dir.keep().display());
            }
        }
    }
}
