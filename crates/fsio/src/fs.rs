//! [`Fs`]: the calls themselves, each asking the hook (if any) first; [`FsWriter`] for streams.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::op::{Fault, Hook, Op, OpKind, Verdict};

/// The file-system calls of a store, direct or through a [`Hook`].
///
/// Each method asks the hook (if there is one) with an [`Op`] and then makes the `std` call, or
/// fails without making it ([`Verdict::Fail`]); a short write ([`Fault::ShortWrite`]) writes a
/// prefix and then fails. Without a hook each method is exactly its `std` call.
///
/// Cheap to clone (an `Option<Arc>`). Two `Fs` are equal when both are direct or both share the
/// same hook.
///
/// ```
/// use raftwood_fsio::Fs;
///
/// let dir = tempfile::tempdir().unwrap();
/// let fs = Fs::direct(); // what production uses
/// let (tmp, path) = (dir.path().join("a.tmp"), dir.path().join("a"));
///
/// // The classic atomic file replacement, one seam call per step.
/// let mut file = std::fs::File::create(&tmp).unwrap();
/// fs.write_all(&mut file, &tmp, b"contents").unwrap();
/// fs.sync_all(&file, &tmp).unwrap();
/// fs.rename(&tmp, &path).unwrap();
/// fs.sync_dir(dir.path()).unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"contents");
/// ```
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
    ///
    /// ```
    /// use raftwood_fsio::Fs;
    ///
    /// assert_eq!(Fs::direct(), Fs::default());
    /// ```
    pub fn direct() -> Fs {
        Fs::default()
    }

    /// Asks `hook` before each call.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use raftwood_fsio::{Fs, Recorder};
    ///
    /// let recorder = Arc::new(Recorder::default());
    /// let fs = Fs::with_hook(recorder.clone());
    /// assert_eq!(fs, fs.clone()); // same hook
    /// assert_ne!(fs, Fs::with_hook(Arc::new(Recorder::default())));
    /// assert_ne!(fs, Fs::direct());
    /// ```
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

    /// Writes all of `buf` to `file` (which is `path`) at its current position ([`OpKind::Write`]).
    ///
    /// On a [`Fault::ShortWrite`] of `n` bytes, the first `n` bytes of `buf` (all of them if `n`
    /// is not less than its length) reach the file and the call then fails with `ENOSPC`.
    ///
    /// ```
    /// use raftwood_fsio::Fs;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("f");
    /// let mut file = std::fs::File::create(&path).unwrap();
    /// Fs::direct().write_all(&mut file, &path, b"abc").unwrap();
    /// assert_eq!(std::fs::read(&path).unwrap(), b"abc");
    /// ```
    pub fn write_all(&self, file: &mut File, path: &Path, buf: &[u8]) -> io::Result<()> {
        match self.ask(OpKind::Write, path, None, buf.len() as u64)? {
            None => file.write_all(buf),
            Some(written) => {
                file.write_all(&buf[..written.min(buf.len())])?;
                Err(Fault::ShortWrite { written }.to_error())
            }
        }
    }

    /// `fdatasync` ([`OpKind::Fdatasync`]): makes `file`'s data durable, with the metadata
    /// needed to read it (its length).
    ///
    /// ```
    /// use raftwood_fsio::Fs;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("f");
    /// let mut file = std::fs::File::create(&path).unwrap();
    /// let fs = Fs::direct();
    /// fs.write_all(&mut file, &path, b"abc").unwrap();
    /// fs.sync_data(&file, &path).unwrap();
    /// ```
    pub fn sync_data(&self, file: &File, path: &Path) -> io::Result<()> {
        self.ask(OpKind::Fdatasync, path, None, 0)?;
        file.sync_data()
    }

    /// `fsync` ([`OpKind::Fsync`]): makes `file`'s data and metadata durable.
    ///
    /// ```
    /// use raftwood_fsio::Fs;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("f");
    /// let file = std::fs::File::create(&path).unwrap();
    /// Fs::direct().sync_all(&file, &path).unwrap();
    /// ```
    pub fn sync_all(&self, file: &File, path: &Path) -> io::Result<()> {
        self.ask(OpKind::Fsync, path, None, 0)?;
        file.sync_all()
    }

    /// Syncs directory `dir` ([`OpKind::SyncDir`]), making creations, renames and removals in it
    /// durable. Opens the directory for the call (an `open` the hook does not see).
    ///
    /// ```
    /// use raftwood_fsio::Fs;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("new"), b"").unwrap();
    /// Fs::direct().sync_dir(dir.path()).unwrap(); // "new" now survives a power loss
    /// ```
    pub fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.ask(OpKind::SyncDir, dir, None, 0)?;
        File::open(dir)?.sync_all()
    }

    /// Renames `from` to `to` ([`OpKind::Rename`]; atomic within one directory, and replacing
    /// `to` if it exists).
    ///
    /// ```
    /// use raftwood_fsio::Fs;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    /// std::fs::write(&a, b"x").unwrap();
    /// Fs::direct().rename(&a, &b).unwrap();
    /// assert!(!a.exists() && b.exists());
    /// ```
    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.ask(OpKind::Rename, from, Some(to), 0)?;
        std::fs::rename(from, to)
    }

    /// Removes file `path` ([`OpKind::Unlink`]).
    ///
    /// ```
    /// use raftwood_fsio::Fs;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("f");
    /// std::fs::write(&path, b"x").unwrap();
    /// Fs::direct().remove_file(&path).unwrap();
    /// assert!(!path.exists());
    /// ```
    pub fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.ask(OpKind::Unlink, path, None, 0)?;
        std::fs::remove_file(path)
    }

    /// Cuts (or extends) `file` to `len` bytes ([`OpKind::Truncate`]).
    ///
    /// ```
    /// use raftwood_fsio::Fs;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("f");
    /// std::fs::write(&path, b"abcdef").unwrap();
    /// let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    /// Fs::direct().set_len(&file, &path, 2).unwrap();
    /// assert_eq!(std::fs::read(&path).unwrap(), b"ab");
    /// ```
    pub fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        self.ask(OpKind::Truncate, path, None, len)?;
        file.set_len(len)
    }

    /// `file` (which is `path`) as a [`Write`] whose writes go through this `Fs`, for callers that
    /// stream (through a `BufWriter`, say).
    ///
    /// ```
    /// use std::io::{BufWriter, Write};
    /// use raftwood_fsio::Fs;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("f");
    /// let file = std::fs::File::create(&path).unwrap();
    /// let mut out = BufWriter::new(Fs::direct().writer(file, path.clone()));
    /// out.write_all(b"streamed").unwrap();
    /// let writer = out.into_inner().unwrap();
    /// writer.fs().sync_all(writer.file(), writer.path()).unwrap();
    /// assert_eq!(std::fs::read(&path).unwrap(), b"streamed");
    /// ```
    pub fn writer(&self, file: File, path: PathBuf) -> FsWriter {
        FsWriter {
            fs: self.clone(),
            file,
            path,
        }
    }
}

/// A file whose writes go through an [`Fs`]; made by [`Fs::writer`].
///
/// Each [`Write::write`] is one [`Fs::write_all`] of the whole buffer, so a hook sees one
/// [`OpKind::Write`] per write (behind a `BufWriter`: one per flush of its buffer).
///
/// Unlike [`Write::write`]'s usual contract, a failed write may have put bytes in the file: a
/// [`Fault::ShortWrite`] puts a prefix there and then fails. After any error, treat the file's
/// content as unknown.
///
/// ```
/// use std::io::Write;
/// use std::sync::Arc;
/// use raftwood_fsio::{Fault, Fs, Recorder};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("f");
/// let recorder = Arc::new(Recorder::default());
/// let fs = Fs::with_hook(recorder.clone());
/// let mut w = fs.writer(std::fs::File::create(&path).unwrap(), path.clone());
/// w.write_all(b"abc").unwrap();
/// recorder.fail_at(1, Fault::ShortWrite { written: 1 });
/// assert!(w.write_all(b"def").is_err());
/// assert_eq!(std::fs::read(&path).unwrap(), b"abcd");
/// ```
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

    /// The file's path, as given to [`Fs::writer`].
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

    /// Flushes the file (a no-op for a `File`: no call the hook sees).
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    // A test module: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used)]

    use std::fs::OpenOptions;

    use super::*;
    use crate::Recorder;
    use crate::op::{EIO, ENOSPC};

    /// A directory holding `f` (bytes `abcdef`), a hooked `Fs` and its recorder.
    struct Setup {
        dir: tempfile::TempDir,
        f: PathBuf,
        recorder: Arc<Recorder>,
        fs: Fs,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"abcdef").unwrap();
        let recorder = Arc::new(Recorder::default());
        let fs = Fs::with_hook(recorder.clone());
        Setup {
            dir,
            f,
            recorder,
            fs,
        }
    }

    fn open_rw(path: &Path) -> File {
        OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .unwrap()
    }

    fn op(kind: OpKind, path: &Path, to: Option<&Path>, len: u64) -> Op {
        Op {
            kind,
            path: path.to_path_buf(),
            to: to.map(Path::to_path_buf),
            len,
        }
    }

    #[test]
    fn each_call_is_recorded_with_its_kind_path_and_length() {
        let Setup {
            dir,
            f,
            recorder,
            fs,
        } = setup();
        let g = dir.path().join("g");
        let mut file = open_rw(&f);
        fs.write_all(&mut file, &f, b"gh").unwrap();
        fs.sync_data(&file, &f).unwrap();
        fs.sync_all(&file, &f).unwrap();
        fs.set_len(&file, &f, 3).unwrap();
        fs.rename(&f, &g).unwrap();
        fs.sync_dir(dir.path()).unwrap();
        let mut w = fs.writer(file, g.clone());
        w.write_all(b"xyz").unwrap();
        w.flush().unwrap(); // not a durable call: not recorded
        fs.remove_file(&g).unwrap();
        assert_eq!(
            recorder.ops(),
            [
                op(OpKind::Write, &f, None, 2),
                op(OpKind::Fdatasync, &f, None, 0),
                op(OpKind::Fsync, &f, None, 0),
                op(OpKind::Truncate, &f, None, 3),
                op(OpKind::Rename, &f, Some(&g), 0),
                op(OpKind::SyncDir, dir.path(), None, 0),
                op(OpKind::Write, &g, None, 3),
                op(OpKind::Unlink, &g, None, 0),
            ]
        );
        assert!(recorder.failed().is_empty());
        assert!(!f.exists() && !g.exists());
    }

    /// The calls of a scenario, one at a time, each on a fresh setup: what it returns and what it
    /// leaves in the directory (`f`'s bytes, or `None` if it is gone; whether `g` exists).
    fn run_one(call: usize, fault: Option<Fault>) -> (io::Result<()>, Option<Vec<u8>>, bool) {
        let Setup {
            dir,
            f,
            recorder,
            fs,
        } = setup();
        let g = dir.path().join("g");
        if let Some(fault) = fault {
            recorder.fail_at(0, fault);
        }
        let mut file = open_rw(&f);
        let result = match call {
            0 => fs.write_all(&mut file, &f, b"ghij"),
            1 => fs.sync_data(&file, &f),
            2 => fs.sync_all(&file, &f),
            3 => fs.sync_dir(dir.path()),
            4 => fs.rename(&f, &g),
            5 => fs.remove_file(&f),
            6 => fs.set_len(&file, &f, 2),
            7 => fs.writer(file, f.clone()).write_all(b"ghij"),
            _ => unreachable!(),
        };
        assert_eq!(recorder.len(), 1, "call {call}: one call recorded");
        let failed: &[usize] = if fault.is_some() { &[0] } else { &[] };
        assert_eq!(recorder.failed(), failed, "call {call}");
        (result, std::fs::read(&f).ok(), g.exists())
    }

    const CALLS: usize = 8;
    const WRITES: [usize; 2] = [0, 7];

    #[test]
    fn without_a_fault_each_call_is_made() {
        let after = [
            (Some(&b"abcdefghij"[..]), false),
            (Some(b"abcdef"), false),
            (Some(b"abcdef"), false),
            (Some(b"abcdef"), false),
            (None, true),
            (None, false),
            (Some(b"ab"), false),
            (Some(b"abcdefghij"), false),
        ];
        for (call, (bytes, g_exists)) in after.into_iter().enumerate() {
            let (result, f, g) = run_one(call, None);
            result.unwrap();
            assert_eq!((f.as_deref(), g), (bytes, g_exists), "call {call}");
        }
    }

    #[test]
    fn eio_and_enospc_fail_each_call_without_making_it() {
        for (fault, code) in [(Fault::Eio, EIO), (Fault::Enospc, ENOSPC)] {
            for call in 0..CALLS {
                let (result, f, g) = run_one(call, Some(fault));
                assert_eq!(result.unwrap_err().raw_os_error(), Some(code), "{call}");
                assert_eq!((f.as_deref(), g), (Some(&b"abcdef"[..]), false), "{call}");
            }
        }
    }

    #[test]
    fn a_short_write_writes_a_prefix_and_fails_with_enospc() {
        for call in WRITES {
            for (written, bytes) in [
                (0, &b"abcdef"[..]),
                (1, b"abcdefg"),
                (3, b"abcdefghi"),
                // No more than the buffer, yet still an error.
                (4, b"abcdefghij"),
                (100, b"abcdefghij"),
            ] {
                let (result, f, _) = run_one(call, Some(Fault::ShortWrite { written }));
                assert_eq!(result.unwrap_err().raw_os_error(), Some(ENOSPC));
                assert_eq!(f.as_deref(), Some(bytes), "call {call}, written {written}");
            }
        }
    }

    #[test]
    fn a_short_write_fails_any_other_call_with_eio_without_making_it() {
        for call in (0..CALLS).filter(|c| !WRITES.contains(c)) {
            let (result, f, g) = run_one(call, Some(Fault::ShortWrite { written: 1 }));
            assert_eq!(result.unwrap_err().raw_os_error(), Some(EIO), "call {call}");
            assert_eq!((f.as_deref(), g), (Some(&b"abcdef"[..]), false), "{call}");
        }
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
        assert_eq!(format!("{fs:?}"), "Fs(direct)");
    }
}
