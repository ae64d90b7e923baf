//! Child processes: signals, bounded waits, `/proc` lookups and log files.
//!
//! Signals go through the `kill` command (the workspace forbids `unsafe`, so no `libc::kill`),
//! and only to processes this test process started, directly or through `local-cluster`.
//! A PID is always checked together with its start time, so a PID the kernel has reused for
//! someone else's process is never signalled or mistaken for ours.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How often waits poll.
pub const POLL: Duration = Duration::from_millis(20);

/// Sends `signal` (`"TERM"`, `"KILL"`, ...) to `pid` with the `kill` command.
pub fn signal(pid: u32, signal: &str) -> io::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("kill -{signal} {pid}: {status}")))
    }
}

/// Waits at most `timeout` for `child` to exit.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(POLL);
    }
}

/// SIGKILLs `child` (if it still runs) and reaps it. Never blocks for long: SIGKILL cannot be
/// caught, so the wait ends as soon as the kernel has torn the process down.
pub fn kill_and_reap(child: &mut Child) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let _ = child.kill();
    child.wait().ok()
}

/// What `/proc/PID/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// The state letter (`R`, `S`, `Z` for a zombie, ...).
    pub state: char,
    /// The parent's PID.
    pub ppid: u32,
    /// When the process started, in clock ticks since boot: with the PID, it names one process.
    pub start_time: u64,
}

/// Parses the text of `/proc/PID/stat`. The command name is in parentheses and may itself hold
/// spaces and parentheses, so the fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 of proc(5) is fields[0]: state; 4 is ppid; 22 is starttime.
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// `/proc/PID/stat`, or `None` when there is no such process.
pub fn stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The processes whose parent is `pid`, with their start times.
pub fn children_of(pid: u32) -> Vec<(u32, u64)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: Vec<(u32, u64)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| stat(p).filter(|s| s.ppid == pid).map(|s| (p, s.start_time)))
        .collect();
    children.sort_unstable();
    children
}

/// Whether the process `pid` that started at `start_time` has exited: no such PID, a zombie
/// (exited, not yet reaped by whoever adopted it), or the PID now names another process.
pub fn is_gone(pid: u32, start_time: u64) -> bool {
    match stat(pid) {
        None => true,
        Some(s) => s.state == 'Z' || s.start_time != start_time,
    }
}

/// SIGKILLs the process `pid` started at `start_time` if it still runs (cleanup of
/// grandchildren this test process caused to exist).
pub fn kill_if_ours(pid: u32, start_time: u64) {
    if !is_gone(pid, start_time) {
        let _ = signal(pid, "KILL");
    }
}

/// The file's bytes from `offset` on, at most `max` of the last ones, as text (lossy), with a
/// note when the front was cut. For printing logs on failure.
pub fn tail(path: &Path, offset: u64, max: u64) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return format!("({} does not exist)", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let from = offset.max(len.saturating_sub(max));
    let mut bytes = Vec::new();
    let read = file
        .seek(SeekFrom::Start(from))
        .and_then(|_| file.take(max).read_to_end(&mut bytes));
    if let Err(e) = read {
        return format!("(reading {}: {e})", path.display());
    }
    let text = String::from_utf8_lossy(&bytes);
    if from > offset {
        format!(
            "[... {} earlier bytes not shown ...]\n{text}",
            from - offset
        )
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let text = "4242 (raft (wood) x) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 987654 1000 200";
        assert_eq!(
            parse_stat(text),
            Some(ProcStat {
                state: 'S',
                ppid: 17,
                start_time: 987654
            })
        );
        assert_eq!(parse_stat("4242 (x) S 17"), None);
    }

    #[test]
    fn a_child_is_found_signalled_and_seen_gone() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let me = std::process::id();
        let start = children_of(me)
            .into_iter()
            .find(|(p, _)| *p == pid)
            .map(|(_, s)| s)
            .expect("the sleep is our child");
        assert!(!is_gone(pid, start));
        assert!(
            is_gone(pid, start + 1),
            "another start time is another process"
        );
        signal(pid, "TERM").unwrap();
        let status = wait_timeout(&mut child, Duration::from_secs(10)).unwrap();
        assert!(status.is_some_and(|s| !s.success()));
        assert!(is_gone(pid, start));
    }

    #[test]
    fn tail_keeps_the_end_and_says_what_it_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        fs::write(&path, b"0123456789").unwrap();
        assert_eq!(tail(&path, 0, 100), "0123456789");
        assert_eq!(tail(&path, 4, 100), "456789");
        assert_eq!(
            tail(&path, 0, 3),
            "[... 7 earlier bytes not shown ...]\n789"
        );
        assert!(tail(&dir.path().join("none"), 0, 3).contains("does not exist"));
    }
}
