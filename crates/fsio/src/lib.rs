//! The few file-system calls that make data durable, behind one seam that tests can watch and
//! break.
//!
//! A crash-safe store is only as good as the *order* of its `write`, `fdatasync`, `fsync`,
//! `rename`, `unlink` and `truncate` calls, and as its handling of each one failing. Neither shows
//! in a test that only reads the files back. So `raftwood-wal` and `raftwood-snap` make those
//! calls through an [`Fs`]: in production it calls `std` directly; in a test it first asks a
//! [`Hook`], which can record the call and make it fail (`EIO`, `ENOSPC`, or a short write that
//! puts part of the bytes in the file and then fails). [`Recorder`] is the hook the tests use.
//!
//! ```
//! use std::sync::Arc;
//! use raftwood_fsio::{Fault, Fs, OpKind, Recorder};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let recorder = Arc::new(Recorder::default());
//! let fs = Fs::with_hook(recorder.clone());
//! let path = dir.path().join("data");
//! let mut file = std::fs::File::create(&path).unwrap();
//!
//! fs.write_all(&mut file, &path, b"hello").unwrap();
//! assert_eq!(recorder.unsynced(), std::slice::from_ref(&path));
//! fs.sync_data(&file, &path).unwrap();
//! assert!(recorder.unsynced().is_empty());
//!
//! // The next fdatasync fails with EIO.
//! recorder.fail_next(|op| op.kind == OpKind::Fdatasync, Fault::Eio);
//! assert_eq!(fs.sync_data(&file, &path).unwrap_err().raw_os_error(), Some(5));
//! let kinds: Vec<OpKind> = recorder.ops().iter().map(|op| op.kind).collect();
//! assert_eq!(kinds, [OpKind::Write, OpKind::Fdatasync, OpKind::Fdatasync]);
//! ```
//!
//! Non-goals: simulating a power loss inside the kernel (the [`Recorder`] only *tracks* which
//! files have writes not yet synced, which is what a test needs to assert that nothing is
//! acknowledged before it is durable), and wrapping reads (bytes read back are checked by the
//! decoders, and their failures need no ordering).

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

/// Which call an [`Op`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// `write(2)` of `len` bytes to a file (all of them, as `write_all`).
    Write,
    /// `fsync(2)` of a file: data and metadata.
    Fsync,
    /// `fdatasync(2)` of a file: data and the metadata needed to read it.
    Fdatasync,
    /// `fsync(2)` of a directory: makes creations, renames and removals in it durable.
    SyncDir,
    /// `rename(2)` of `path` to `to`.
    Rename,
    /// `unlink(2)` of a file.
    Unlink,
    /// `ftruncate(2)` of a file to `len` bytes.
    Truncate,
}

/// One durability-relevant call, as a [`Hook`] sees it before it is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The call.
    pub kind: OpKind,
    /// The file or directory it is about (for a rename, the source).
    pub path: PathBuf,
    /// For a rename, the destination.
    pub to: Option<PathBuf>,
    /// For a write, the bytes asked to be written; for a truncate, the new length; else 0.
    pub len: u64,
}

/// A failure a [`Hook`] can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `EIO`: the device failed (for a sync: the dirty pages may be lost).
    Eio,
    /// `ENOSPC`: the file system is full.
    Enospc,
    /// A write that puts only the first `written` bytes into the file, then fails with `ENOSPC`
    /// (what `write_all` reports when a disk fills up mid-write). Treated as `EIO` for calls other
    /// than a write.
    ShortWrite {
        /// Bytes that reach the file before the failure.
        written: usize,
    },
}

impl Fault {
    /// The `io::Error` the failed call returns.
    pub fn to_error(self) -> io::Error {
        match self {
            Fault::Eio => io::Error::from_raw_os_error(EIO),
            Fault::Enospc | Fault::ShortWrite { .. } => io::Error::from_raw_os_error(ENOSPC),
        }
    }
}

/// `EIO` and `ENOSPC` as Linux numbers them (the codes are the same on the other Unixes).
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// What a [`Hook`] decides about a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Make the call.
    Proceed,
    /// Fail it as `fault` says, without making it (a short write makes part of it).
    Fail(Fault),
}

/// Sees every call before [`Fs`] makes it, and may fail it.
pub trait Hook: Send + Sync {
    /// Called before `op`; the call is made only if this returns [`Verdict::Proceed`].
    fn before(&self, op: &Op) -> Verdict;
}

/// The file-system calls of a store, direct or through a [`Hook`].
///
/// Cheap to clone (an `Option<Arc>`). Two `Fs` are equal when both are direct or both share the
/// same hook.
#[derive(Clone, Default)]
pub struct Fs {
    hook: Option<Arc<dyn Hook>>,
}

impl fmt::Debug for Fs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.hook {
            None => "Fs(direct)",
            Some(_) => "Fs(hooked)",
        })
    }
}

impl PartialEq for Fs {
    fn eq(&self, other: &Fs) -> bool {
        match (&self.hook, &other.hook) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Fs {}

impl Fs {
    /// Calls `std` directly: what production uses (and [`Fs::default`]).
    pub fn direct() -> Fs {
        Fs::default()
    }

    /// Asks `hook` before each call.
    pub fn with_hook(hook: Arc<dyn Hook>) -> Fs {
        Fs { hook: Some(hook) }
    }

    /// Asks the hook about `kind` on `path`; `Ok(None)` to go ahead, `Ok(Some(n))` for a short
    /// write of `n` bytes, `Err` to fail without doing anything.
    fn ask(
        &self,
        kind: OpKind,
        path: &Path,
        to: Option<&Path>,
        len: u64,
    ) -> io::Result<Option<usize>> {
        let Some(hook) = &self.hook else {
            return Ok(None);
        };
        let op = Op {
            kind,
            path: path.to_path_buf(),
            to: to.map(Path::to_path_buf),
            len,
        };
        match hook.before(&op) {
            Verdict::Proceed => Ok(None),
            Verdict::Fail(Fault::ShortWrite { written }) if kind == OpKind::Write => {
                Ok(Some(written))
            }
            Verdict::Fail(Fault::ShortWrite { .. }) => Err(Fault::Eio.to_error()),
            Verdict::Fail(fault) => Err(fault.to_error()),
        }
    }

    /// Writes all of `buf` to `file` (which is `path`) at its current position.
    pub fn write_all(&self, file: &mut File, path: &Path, buf: &[u8]) -> io::Result<()> {
        match self.ask(OpKind::Write, path, None, buf.len() as u64)? {
            None => file.write_all(buf),
            Some(written) => {
                file.write_all(&buf[..written.min(buf.len())])?;
                Err(Fault::ShortWrite { written }.to_error())
            }
        }
    }

    /// `fdatasync`: makes `file`'s data durable.
    pub fn sync_data(&self, file: &File, path: &Path) -> io::Result<()> {
        self.ask(OpKind::Fdatasync, path, None, 0)?;
        file.sync_data()
    }

    /// `fsync`: makes `file`'s data and metadata durable.
    pub fn sync_all(&self, file: &File, path: &Path) -> io::Result<()> {
        self.ask(OpKind::Fsync, path, None, 0)?;
        file.sync_all()
    }

    /// Syncs directory `dir`, making creations, renames and removals in it durable.
    pub fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.ask(OpKind::SyncDir, dir, None, 0)?;
        File::open(dir)?.sync_all()
    }

    /// Renames `from` to `to` (atomically, within one directory).
    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.ask(OpKind::Rename, from, Some(to), 0)?;
        std::fs::rename(from, to)
    }

    /// Removes file `path`.
    pub fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.ask(OpKind::Unlink, path, None, 0)?;
        std::fs::remove_file(path)
    }

    /// Cuts (or extends) `file` to `len` bytes.
    pub fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        self.ask(OpKind::Truncate, path, None, len)?;
        file.set_len(len)
    }

    /// `file` (which is `path`) as a [`Write`] whose writes go through this `Fs`, for callers that
    /// stream (through a `BufWriter`, say).
    pub fn writer(&self, file: File, path: PathBuf) -> FsWriter {
        FsWriter {
            fs: self.clone(),
            file,
            path,
        }
    }
}

/// A file whose writes go through an [`Fs`]; made by [`Fs::writer`].
#[derive(Debug)]
pub struct FsWriter {
    fs: Fs,
    file: File,
    path: PathBuf,
}

impl FsWriter {
    /// The file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The file, mutably (to seek it).
    pub fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `Fs` the writes go through.
    pub fn fs(&self) -> &Fs {
        &self.fs
    }
}

impl Write for FsWriter {
    /// Writes all of `buf` or fails: a short write here is a failure, as with `write_all`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fs.write_all(&mut self.file, &self.path, buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// A [`Hook`] for tests: records every call in order, fails the ones it is told to, and tracks
/// which files have writes that no sync has covered yet.
///
/// Failures are armed with [`Recorder::fail_next`] (the next call matching a predicate) or
/// [`Recorder::fail_at`] (the call with a given position in the record). A failed call is
/// recorded too, so a test can see where a sequence stopped.
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
    /// Files written or truncated since their last fsync/fdatasync.
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

    /// Positions (in [`Recorder::ops`]) of the calls that were failed.
    pub fn failed(&self) -> Vec<usize> {
        self.inner.lock().failed.clone()
    }

    /// Forgets the calls recorded so far (positions for [`Recorder::fail_at`] count from here),
    /// keeping what it knows about unsynced files.
    pub fn clear(&self) {
        let mut state = self.inner.lock();
        state.ops.clear();
        state.failed.clear();
    }

    /// Fails the next call for which `matches` is true with `fault` (once).
    pub fn fail_next(&self, matches: impl Fn(&Op) -> bool + Send + 'static, fault: Fault) {
        self.inner.lock().armed.push((Box::new(matches), fault));
    }

    /// Fails the call that will have position `at` in [`Recorder::ops`] with `fault`.
    pub fn fail_at(&self, at: usize, fault: Fault) {
        self.inner.lock().fail_at.push((at, fault));
    }

    /// Files with a write or truncate that no later `fsync`/`fdatasync` of that file covered:
    /// bytes a power loss could take back. A rename carries the state to the new name; an unlink
    /// forgets it.
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
                if let Some(to) = &op.to {
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

    use super::*;

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
    fn direct_calls_ask_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let fs = Fs::direct();
        let path = dir.path().join("f");
        let mut file = File::create(&path).unwrap();
        fs.write_all(&mut file, &path, b"abc").unwrap();
        fs.set_len(&file, &path, 1).unwrap();
        fs.sync_data(&file, &path).unwrap();
        fs.sync_dir(dir.path()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"a");
        assert_eq!(fs, Fs::default());
    }
}
