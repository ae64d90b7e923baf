//! What local-cluster prints once its nodes are started: each node's address, and the curl
//! commands of raftexample's tour (put, get, and with three nodes or more the fault-tolerance
//! steps: stop a node, write, read elsewhere, restart it, read from it).

use std::ffi::OsString;
use std::fmt::Write;
use std::path::Path;

use super::layout::NodePlan;

/// The text printed on stdout: `pids[i]` is the process id of `plans[i]`.
pub fn banner(
    plans: &[NodePlan],
    pids: &[u32],
    program: &Path,
    cluster: &str,
    extra: &[String],
) -> String {
    let mut out = String::new();
    let n = plans.len();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "raftwood local-cluster: {n} node(s) started");
    for (plan, pid) in plans.iter().zip(pids) {
        let _ = writeln!(
            out,
            "  node {}  {}  (pid {pid}, raft {}, data {})",
            plan.id,
            plan.http_url(),
            plan.raft_url,
            plan.data_dir.display()
        );
    }
    let (Some(first), Some(last)) = (plans.first(), plans.last()) else {
        return out;
    };
    let _ = writeln!(
        out,
        "\nTry it (any node answers; followers forward to the leader):"
    );
    let _ = writeln!(out, "  curl -L {}/my-key -XPUT -d hello", first.http_url());
    let _ = writeln!(out, "  curl -L {}/my-key", last.http_url());
    let _ = writeln!(out, "  curl -L {}/v1/status", first.http_url());
    if let (true, Some(victim), Some(&pid)) = (n >= 3, plans.get(1), pids.get(1)) {
        let _ = writeln!(
            out,
            "\nFault tolerance: stop node {}, write and read without it, restart it, read from it:",
            victim.id
        );
        let _ = writeln!(out, "  kill {pid}");
        let _ = writeln!(out, "  curl -L {}/my-key -XPUT -d bar", first.http_url());
        let _ = writeln!(out, "  curl -L {}/my-key", last.http_url());
        let restart = command_line(program, &victim.args(cluster, extra));
        let _ = writeln!(out, "  {restart}");
        let _ = writeln!(out, "  curl -L {}/my-key", victim.http_url());
    }
    let _ = writeln!(out, "\nCtrl-C stops every node.");
    out
}

/// `program args...` quoted for a POSIX shell.
fn command_line(program: &Path, args: &[OsString]) -> String {
    std::iter::once(program.as_os_str())
        .chain(args.iter().map(OsString::as_os_str))
        .map(|word| shell_quote(&word.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Leaves plain words alone and single-quotes the rest.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:,=+@".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn plans(n: u64) -> Vec<NodePlan> {
        (1..=n)
            .map(|id| NodePlan {
                id,
                raft_url: format!("http://127.0.0.1:{id}2379"),
                http_port: u16::try_from(id * 10_000 + 2380).unwrap(),
                data_dir: PathBuf::from(format!("my dir/node-{id}")),
            })
            .collect()
    }

    #[test]
    fn three_nodes_get_addresses_and_the_fault_tolerance_tour() {
        let plans = plans(3);
        let text = banner(
            &plans,
            &[11, 22, 33],
            Path::new("/bin/raftwood"),
            "C",
            &["--snapshot-count".into(), "5".into()],
        );
        for needle in [
            "node 1  http://127.0.0.1:12380  (pid 11",
            "node 3  http://127.0.0.1:32380  (pid 33",
            "curl -L http://127.0.0.1:12380/my-key -XPUT -d hello",
            "curl -L http://127.0.0.1:32380/my-key\n",
            "kill 22\n",
            "curl -L http://127.0.0.1:12380/my-key -XPUT -d bar",
            "/bin/raftwood --id 2 --cluster C --port 22380 --data-dir 'my dir/node-2' \
             --snapshot-count 5\n",
            "curl -L http://127.0.0.1:22380/my-key\n",
            "Ctrl-C stops every node.",
        ] {
            assert!(text.contains(needle), "banner lacks {needle:?}:\n{text}");
        }
        assert!(!text.contains("--parent-pipe"), "the restart is by hand");
    }

    #[test]
    fn fewer_than_three_nodes_get_no_fault_tolerance_tour() {
        let text = banner(&plans(1), &[5], Path::new("raftwood"), "C", &[]);
        assert!(text.contains("curl -L http://127.0.0.1:12380/my-key -XPUT -d hello"));
        assert!(!text.contains("kill"));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a/b-c_d.e:1,2"), "a/b-c_d.e:1,2");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
