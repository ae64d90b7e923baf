//! [`Recorder`]: the [`Hook`] the tests use. It records, fails on request, and tracks which files
//! hold writes that no sync has covered.

use std::fmt;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::op::{Fault, Hook, Op, OpKind, Verdict};

/// A [`Hook`] for tests: records every call in order, fails the ones it is told to, and tracks
/// which files have writes that no sync has covered yet.
///
/// Failures are armed with [`Recorder::fail_next`] (the next call matching a predicate) or
/// [`Recorder::fail_at`] (the call with a given position in the record). A failed call is
/// recorded too, and its position listed in [`Recorder::failed`], so a test can see where a
/// sequence stopped.
///
/// **The "unsynced" model** ([`Recorder::unsynced`]) is a set of paths, updated as each call is
/// asked for:
///
/// | call | effect |
/// |---|---|
/// | write, truncate | marks its path, *even if the call is failed* (a short write did put bytes in the file) |
/// | fsync, fdatasync | unmarks its path, unless the call is failed |
/// | rename | moves the mark from the source to the destination, and drops the mark of the file it replaced, unless failed; a rename of a path onto itself changes nothing |
/// | unlink | unmarks its path, unless failed |
/// | directory sync | nothing |
///
/// It does not model: the durability of directory entries (a rename or unlink is durable only
/// after a directory sync; read that order from [`Recorder::ops`]); a call that the Recorder let
/// through but the operating system then failed (it counts as done); hard links, or two spellings
/// of one path (paths are compared as given); or a crash (every byte written stays in the file).
///
/// ```
/// use std::sync::Arc;
/// use raftwood_fsio::{Fault, Fs, OpKind, Recorder};
///
/// let dir = tempfile::tempdir().unwrap();
/// let recorder = Arc::new(Recorder::default());
/// let fs = Fs::with_hook(recorder.clone());
/// let (tmp, path) = (dir.path().join("a.tmp"), dir.path().join("a"));
/// let mut file = std::fs::File::create(&tmp).unwrap();
///
/// fs.write_all(&mut file, &tmp, b"data").unwrap();
/// fs.rename(&tmp, &path).unwrap();
/// // The bytes moved with the name, and no sync covered them yet.
/// assert_eq!(recorder.unsynced(), [path.clone()]);
///
/// // The fsync fails: the file stays unsynced, and the record says where it stopped.
/// recorder.fail_next(|op| op.kind == OpKind::Fsync, Fault::Eio);
/// assert!(fs.sync_all(&file, &path).is_err());
/// assert_eq!(recorder.unsynced(), [path.clone()]);
/// assert_eq!(recorder.failed(), [2]);
/// assert_eq!(recorder.len(), 3);
/// ```
#[derive(Default)]
pub struct Recorder {
    inner: Mutex<RecorderState>,
}

type Matcher = Box<dyn Fn(&Op) -> bool + Send>;

#[derive(Default)]
struct RecorderState {
    ops: Vec<Op>,
    /// Positions of the ops that were failed.
    failed: Vec<usize>,
    armed: Vec<(Matcher, Fault)>,
    fail_at: Vec<(usize, Fault)>,
    /// Files written or truncated since their last fsync/fdatasync, in the order first written.
    dirty: Vec<PathBuf>,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("Recorder")
            .field("ops", &state.ops.len())
            .field("failed", &state.failed)
            .finish()
    }
}

impl Recorder {
    /// Every call asked about so far, in order (failed ones included).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use raftwood_fsio::{Fs, OpKind, Recorder};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let recorder = Arc::new(Recorder::default());
    /// Fs::with_hook(recorder.clone()).sync_dir(dir.path()).unwrap();
    /// let ops = recorder.ops();
    /// assert_eq!((ops[0].kind, ops[0].path.as_path()), (OpKind::SyncDir, dir.path()));
    /// ```
    pub fn ops(&self) -> Vec<Op> {
        self.inner.lock().ops.clone()
    }

    /// How many calls were asked about so far.
    pub fn len(&self) -> usize {
        self.inner.lock().ops.len()
    }

    /// True if no call was asked about yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Positions (in [`Recorder::ops`]) of the calls that were failed, in increasing order.
    pub fn failed(&self) -> Vec<usize> {
        self.inner.lock().failed.clone()
    }

    /// Forgets the calls recorded so far (positions for [`Recorder::fail_at`] count from here),
    /// keeping what it knows about unsynced files and the failures still armed.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use raftwood_fsio::{Fs, Recorder};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let recorder = Arc::new(Recorder::default());
    /// let fs = Fs::with_hook(recorder.clone());
    /// let path = dir.path().join("f");
    /// let mut file = std::fs::File::create(&path).unwrap();
    /// fs.write_all(&mut file, &path, b"setup").unwrap();
    /// recorder.clear(); // the test is about what comes next
    /// assert!(recorder.is_empty());
    /// assert_eq!(recorder.unsynced(), [path]);
    /// ```
    pub fn clear(&self) {
        let mut state = self.inner.lock();
        state.ops.clear();
        state.failed.clear();
    }

    /// Fails the next call for which `matches` is true with `fault` (once).
    ///
    /// Several armed predicates are tried in the order they were armed; the first that matches
    /// is used up. A [`Recorder::fail_at`] for the same call takes precedence (and this one
    /// stays armed).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use raftwood_fsio::{Fault, Fs, OpKind, Recorder};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let recorder = Arc::new(Recorder::default());
    /// let fs = Fs::with_hook(recorder.clone());
    /// recorder.fail_next(|op| op.kind == OpKind::SyncDir, Fault::Eio);
    /// assert!(fs.sync_dir(dir.path()).is_err());
    /// assert!(fs.sync_dir(dir.path()).is_ok()); // once
    /// ```
    pub fn fail_next(&self, matches: impl Fn(&Op) -> bool + Send + 'static, fault: Fault) {
        self.inner.lock().armed.push((Box::new(matches), fault));
    }

    /// Fails the call that will have position `at` in [`Recorder::ops`] with `fault`.
    ///
    /// Failing each position of a scenario in turn is how a test tries every failure:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use raftwood_fsio::{Fault, Fs, Recorder};
    ///
    /// fn scenario(fs: &Fs, dir: &std::path::Path) -> std::io::Result<()> {
    ///     let (tmp, path) = (dir.join("a.tmp"), dir.join("a"));
    ///     let mut file = std::fs::File::create(&tmp)?;
    ///     fs.write_all(&mut file, &tmp, b"data")?;
    ///     fs.sync_all(&file, &tmp)?;
    ///     fs.rename(&tmp, &path)?;
    ///     fs.sync_dir(dir)
    /// }
    ///
    /// for at in 0..4 {
    ///     let dir = tempfile::tempdir().unwrap();
    ///     let recorder = Arc::new(Recorder::default());
    ///     recorder.fail_at(at, Fault::Enospc);
    ///     assert!(scenario(&Fs::with_hook(recorder.clone()), dir.path()).is_err());
    ///     assert_eq!(recorder.failed(), [at]);
    ///     assert_eq!(recorder.len(), at + 1); // the scenario stopped at the failure
    /// }
    /// ```
    pub fn fail_at(&self, at: usize, fault: Fault) {
        self.inner.lock().fail_at.push((at, fault));
    }

    /// Files with a write or truncate that no later `fsync`/`fdatasync` of that file covered:
    /// bytes a power loss could take back. In the order first written; see the table on
    /// [`Recorder`] for how each call changes it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use raftwood_fsio::{Fs, Recorder};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let recorder = Arc::new(Recorder::default());
    /// let fs = Fs::with_hook(recorder.clone());
    /// let path = dir.path().join("f");
    /// let mut file = std::fs::File::create(&path).unwrap();
    /// fs.write_all(&mut file, &path, b"x").unwrap();
    /// assert_eq!(recorder.unsynced(), [path.clone()]);
    /// fs.sync_data(&file, &path).unwrap();
    /// assert!(recorder.unsynced().is_empty());
    /// ```
    pub fn unsynced(&self) -> Vec<PathBuf> {
        self.inner.lock().dirty.clone()
    }
}

impl Hook for Recorder {
    fn before(&self, op: &Op) -> Verdict {
        let mut state = self.inner.lock();
        let at = state.ops.len();
        state.ops.push(op.clone());
        let fault = match state.fail_at.iter().position(|&(n, _)| n == at) {
            Some(i) => Some(state.fail_at.swap_remove(i).1),
            None => state
                .armed
                .iter()
                .position(|(matches, _)| matches(op))
                .map(|i| state.armed.remove(i).1),
        };
        let dirty = &mut state.dirty;
        let forget = |dirty: &mut Vec<PathBuf>, path: &Path| dirty.retain(|p| p != path);
        match (op.kind, fault) {
            // A write that fails may still have put bytes in the file (a short write certainly
            // did), so the file counts as written either way.
            (OpKind::Write | OpKind::Truncate, _) if !dirty.contains(&op.path) => {
                dirty.push(op.path.clone());
            }
            (OpKind::Fsync | OpKind::Fdatasync, None) => forget(dirty, &op.path),
            (OpKind::Rename, None) => {
                // rename(2) of a name onto itself does nothing, so it must not forget the mark.
                if let Some(to) = op.to.as_ref().filter(|to| **to != op.path) {
                    forget(dirty, to);
                    if let Some(p) = dirty.iter_mut().find(|p| **p == op.path) {
                        *p = to.clone();
                    }
                }
            }
            (OpKind::Unlink, None) => forget(dirty, &op.path),
            _ => {}
        }
        match fault {
            None => Verdict::Proceed,
            Some(fault) => {
                state.failed.push(at);
                Verdict::Fail(fault)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    // A test module: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used)]

    use std::fs::File;
    use std::sync::Arc;

    use super::*;
    use crate::Fs;
    use crate::op::ENOSPC;

    #[test]
    fn a_short_write_puts_part_of_the_bytes_in_the_file_then_fails() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Arc::new(Recorder::default());
        let fs = Fs::with_hook(recorder.clone());
        let path = dir.path().join("f");
        let mut file = File::create(&path).unwrap();
        recorder.fail_at(0, Fault::ShortWrite { written: 3 });
        let err = fs.write_all(&mut file, &path, b"abcdef").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(ENOSPC));
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        assert_eq!(recorder.failed(), [0]);
        assert_eq!(recorder.unsynced(), [path]);
    }

    #[test]
    fn a_rename_carries_unsynced_writes_to_the_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Arc::new(Recorder::default());
        let fs = Fs::with_hook(recorder.clone());
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut file = File::create(&a).unwrap();
        fs.write_all(&mut file, &a, b"x").unwrap();
        fs.rename(&a, &b).unwrap();
        assert_eq!(recorder.unsynced(), std::slice::from_ref(&b));
        fs.sync_all(&file, &b).unwrap();
        assert!(recorder.unsynced().is_empty());
        // A failed sync does not make anything durable.
        fs.write_all(&mut file, &b, b"y").unwrap();
        recorder.fail_next(|op| op.kind == OpKind::Fsync, Fault::Eio);
        assert!(fs.sync_all(&file, &b).is_err());
        assert_eq!(recorder.unsynced(), [b]);
    }

    #[test]
    fn a_rename_onto_itself_keeps_the_file_unsynced() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Arc::new(Recorder::default());
        let fs = Fs::with_hook(recorder.clone());
        let a = dir.path().join("a");
        let mut file = File::create(&a).unwrap();
        fs.write_all(&mut file, &a, b"x").unwrap();
        fs.rename(&a, &a).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"x");
        assert_eq!(recorder.unsynced(), [a]);
    }

    /// A recorder fed `Op`s directly, without touching a file: the model alone.
    fn ask(recorder: &Recorder, kind: OpKind, path: &str, to: Option<&str>) -> Verdict {
        recorder.before(&Op {
            kind,
            path: PathBuf::from(path),
            to: to.map(PathBuf::from),
            len: 1,
        })
    }

    fn unsynced(recorder: &Recorder) -> Vec<String> {
        let paths = recorder.unsynced();
        paths.iter().map(|p| p.display().to_string()).collect()
    }

    #[test]
    fn writes_and_truncates_mark_a_file_and_a_sync_of_it_unmarks_it() {
        for sync in [OpKind::Fsync, OpKind::Fdatasync] {
            let recorder = Recorder::default();
            ask(&recorder, OpKind::Write, "a", None);
            ask(&recorder, OpKind::Truncate, "b", None);
            ask(&recorder, OpKind::Write, "a", None);
            assert_eq!(unsynced(&recorder), ["a", "b"], "once each, in order");
            ask(&recorder, OpKind::SyncDir, "a", None);
            ask(&recorder, sync, "c", None);
            assert_eq!(
                unsynced(&recorder),
                ["a", "b"],
                "other paths change nothing"
            );
            ask(&recorder, sync, "a", None);
            assert_eq!(unsynced(&recorder), ["b"]);
        }
    }

    #[test]
    fn a_failed_write_or_truncate_still_marks_a_file() {
        for kind in [OpKind::Write, OpKind::Truncate] {
            for fault in [Fault::Eio, Fault::Enospc, Fault::ShortWrite { written: 0 }] {
                let recorder = Recorder::default();
                recorder.fail_at(0, fault);
                assert_eq!(ask(&recorder, kind, "a", None), Verdict::Fail(fault));
                assert_eq!(unsynced(&recorder), ["a"], "{kind:?} {fault:?}");
            }
        }
    }

    #[test]
    fn a_failed_sync_rename_or_unlink_changes_nothing() {
        for kind in [
            OpKind::Fsync,
            OpKind::Fdatasync,
            OpKind::Rename,
            OpKind::Unlink,
        ] {
            let recorder = Recorder::default();
            ask(&recorder, OpKind::Write, "a", None);
            recorder.fail_next(move |op| op.kind == kind, Fault::Eio);
            let to = (kind == OpKind::Rename).then_some("b");
            assert_eq!(ask(&recorder, kind, "a", to), Verdict::Fail(Fault::Eio));
            assert_eq!(unsynced(&recorder), ["a"], "{kind:?}");
            assert_eq!(recorder.failed(), [1]);
        }
    }

    #[test]
    fn a_rename_drops_the_mark_of_the_file_it_replaces() {
        let recorder = Recorder::default();
        ask(&recorder, OpKind::Write, "a", None);
        ask(&recorder, OpKind::Write, "b", None);
        ask(&recorder, OpKind::Fsync, "a", None);
        ask(&recorder, OpKind::Rename, "a", Some("b"));
        assert!(unsynced(&recorder).is_empty(), "b is now a's synced bytes");
        ask(&recorder, OpKind::Write, "c", None);
        ask(&recorder, OpKind::Write, "d", None);
        ask(&recorder, OpKind::Rename, "c", Some("d"));
        assert_eq!(unsynced(&recorder), ["d"], "one mark, not two");
    }

    #[test]
    fn an_unlink_drops_the_mark() {
        let recorder = Recorder::default();
        ask(&recorder, OpKind::Write, "a", None);
        ask(&recorder, OpKind::Unlink, "a", None);
        assert!(unsynced(&recorder).is_empty());
    }

    #[test]
    fn fail_at_wins_over_fail_next_which_stays_armed() {
        let recorder = Recorder::default();
        recorder.fail_next(|op| op.kind == OpKind::Write, Fault::Enospc);
        recorder.fail_at(0, Fault::Eio);
        assert_eq!(
            ask(&recorder, OpKind::Write, "a", None),
            Verdict::Fail(Fault::Eio)
        );
        assert_eq!(
            ask(&recorder, OpKind::Write, "a", None),
            Verdict::Fail(Fault::Enospc)
        );
        assert_eq!(ask(&recorder, OpKind::Write, "a", None), Verdict::Proceed);
        assert_eq!(recorder.failed(), [0, 1]);
    }

    #[test]
    fn fail_next_predicates_are_tried_in_the_order_armed_and_fire_once() {
        let recorder = Recorder::default();
        recorder.fail_next(|op| op.kind == OpKind::Fsync, Fault::Eio);
        recorder.fail_next(|_| true, Fault::Enospc);
        recorder.fail_next(
            |op| op.kind == OpKind::Fsync,
            Fault::ShortWrite { written: 1 },
        );
        assert_eq!(
            ask(&recorder, OpKind::Unlink, "a", None),
            Verdict::Fail(Fault::Enospc)
        );
        assert_eq!(
            ask(&recorder, OpKind::Fsync, "a", None),
            Verdict::Fail(Fault::Eio)
        );
        let short = Verdict::Fail(Fault::ShortWrite { written: 1 });
        assert_eq!(ask(&recorder, OpKind::Fsync, "a", None), short);
        assert_eq!(ask(&recorder, OpKind::Fsync, "a", None), Verdict::Proceed);
        assert_eq!(recorder.failed(), [0, 1, 2]);
    }

    #[test]
    fn clear_restarts_positions_and_keeps_marks_and_armed_failures() {
        let recorder = Recorder::default();
        ask(&recorder, OpKind::Write, "a", None);
        recorder.fail_at(5, Fault::Eio);
        recorder.fail_next(|op| op.kind == OpKind::Unlink, Fault::Eio);
        recorder.clear();
        assert!(recorder.is_empty() && recorder.failed().is_empty());
        assert_eq!(unsynced(&recorder), ["a"]);
        recorder.fail_at(0, Fault::Enospc);
        assert_eq!(
            ask(&recorder, OpKind::SyncDir, ".", None),
            Verdict::Fail(Fault::Enospc)
        );
        assert_eq!(
            ask(&recorder, OpKind::Unlink, "b", None),
            Verdict::Fail(Fault::Eio)
        );
        for _ in 2..5 {
            assert_eq!(ask(&recorder, OpKind::SyncDir, ".", None), Verdict::Proceed);
        }
        assert_eq!(
            ask(&recorder, OpKind::SyncDir, ".", None),
            Verdict::Fail(Fault::Eio)
        );
        assert_eq!(recorder.failed(), [0, 1, 5]);
    }
}
