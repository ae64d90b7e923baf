//! The runner for scenario files (in the spirit of etcd's datadriven tests): reads the cases of a
//! file, runs each command with [`super::script::run_command`], and compares its output with the
//! expected one, or rewrites the file with `RAFTWOOD_REWRITE=1`. The file format is described in
//! [`super::script`]; both functions are re-exported there.

use std::fmt::Write as _;
use std::path::Path;

use super::script::run_command;

/// Runs the scenario file at `path` and compares every case's output with the expected one.
/// With `RAFTWOOD_REWRITE` set, writes the actual output back into the file instead.
pub fn run_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (rewritten, failures) = run_text(&text);
    if std::env::var_os("RAFTWOOD_REWRITE").is_some() {
        std::fs::write(path, rewritten).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{}:\n{}", path.display(), failures.join("\n")))
    }
}

/// Runs a scenario text; returns the text with actual outputs, and a description of each case
/// whose output differs from the expected one.
pub fn run_text(text: &str) -> (String, Vec<String>) {
    let mut cluster = None;
    let mut out = String::new();
    let mut failures = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((no, line)) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut expected = String::new();
        if lines.peek().is_some_and(|(_, l)| *l == "----") {
            lines.next();
            while let Some((_, l)) = lines.next_if(|(_, l)| !l.trim().is_empty()) {
                expected.push_str(l);
                expected.push('\n');
            }
        }
        let actual = match run_command(&mut cluster, line) {
            Ok(o) if o.is_empty() => "ok\n".to_string(),
            Ok(o) => o,
            Err(e) => format!("error: {e}\n"),
        };
        if actual != expected {
            failures.push(format!(
                "line {}: {line}\n--- expected\n{expected}--- actual\n{actual}",
                no + 1
            ));
        }
        let _ = write!(out, "{line}\n----\n{actual}");
        // A case's output ends at a blank line. A schedule pasted one command per line (as the
        // property tests print it) has none, so the rewrite adds them.
        if lines.peek().is_some_and(|(_, l)| !l.trim().is_empty()) {
            out.push('\n');
        }
    }
    (out, failures)
}
