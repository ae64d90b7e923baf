//! Starting and stopping the node processes, each with the parent pipe as its stdin.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A started node: the process and local-cluster's end of its stdin pipe.
#[derive(Debug)]
pub struct NodeProcess {
    id: u64,
    child: Child,
    /// Open while the node should run; dropping it (closing the pipe) asks the node to stop.
    pipe: Option<ChildStdin>,
    exited: Option<ExitStatus>,
}

/// How a node ended when asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// It exited (before or after the request) with this status.
    Exited(ExitStatus),
    /// It did not exit within the grace period and was killed (SIGKILL).
    Killed,
}

impl NodeProcess {
    /// Starts `program args` as node `id`, stdin a pipe that this side never writes (the node's
    /// [`super::watch_parent`] reads EOF when it closes), stdout and stderr shared with us so
    /// the nodes' logs reach the terminal. The pipe's write end is close-on-exec, so no other
    /// child inherits it and keeps it open.
    pub fn spawn(id: u64, program: &Path, args: &[OsString]) -> io::Result<NodeProcess> {
        let mut command = Command::new(program);
        command.args(args);
        NodeProcess::spawn_command(id, command)
    }

    /// [`NodeProcess::spawn`] for a prepared command (environment, working directory...); its
    /// stdin is replaced by the pipe.
    pub fn spawn_command(id: u64, mut command: Command) -> io::Result<NodeProcess> {
        let mut child = command.stdin(Stdio::piped()).spawn()?;
        let pipe = child.stdin.take();
        Ok(NodeProcess {
            id,
            child,
            pipe,
            exited: None,
        })
    }

    /// The node's raft id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status once the process has exited (reaping it), `None` while it runs.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait()?;
        }
        Ok(self.exited)
    }

    /// Asks the node to stop by closing its pipe.
    pub fn request_stop(&mut self) {
        self.pipe = None;
    }

    /// Kills the process (SIGKILL) and reaps it.
    fn kill(&mut self) -> io::Result<()> {
        self.child.kill()?;
        self.exited = Some(self.child.wait()?);
        Ok(())
    }
}

/// Stops every node: closes every pipe at once (a graceful stop, as on SIGTERM), waits up to
/// `grace` for them all, then kills the ones still running. Returns each node's outcome.
pub fn stop_all(nodes: &mut [NodeProcess], grace: Duration) -> Vec<(u64, io::Result<StopOutcome>)> {
    for node in nodes.iter_mut() {
        node.request_stop();
    }
    let deadline = Instant::now() + grace;
    loop {
        let mut running = 0;
        for node in nodes.iter_mut() {
            if matches!(node.try_wait(), Ok(None)) {
                running += 1;
            }
        }
        if running == 0 || Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    nodes
        .iter_mut()
        .map(|node| {
            let outcome = match node.try_wait() {
                Ok(Some(status)) => Ok(StopOutcome::Exited(status)),
                Ok(None) => node.kill().map(|()| StopOutcome::Killed),
                Err(e) => Err(e),
            };
            (node.id, outcome)
        })
        .collect()
}
