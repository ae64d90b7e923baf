//! The snapshot store: [`Store`], a directory of snapshot files, and its [`Options`].
//!
//! ```
//! use raftwood_snap::{Store, SnapshotId};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path()).unwrap();
//! let old = SnapshotId { index: 10, term: 1 };
//! let new = SnapshotId { index: 20, term: 2 };
//! store.save(old, b"voters=1", &b"old state"[..]).unwrap();
//! store.save(new, b"voters=1", &b"new state"[..]).unwrap();
//! assert_eq!(store.list().unwrap(), vec![new, old]);
//!
//! // The node passes the snapshots its WAL marks; the newest valid one comes back.
//! let snap = store.load_newest_of([old, new]).unwrap().unwrap();
//! assert_eq!((snap.id, &snap.data[..]), (new, &b"new state"[..]));
//!
//! assert_eq!(store.purge(1).unwrap(), vec![old]);
//! ```
//!
//! Non-goals: locking the directory against a second process (the node owns its data
//! directory), and deciding which snapshots are orphans (the node knows its WAL's markers and
//! calls [`Store::remove`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use raftwood_fsio::Fs;

use crate::error::Error;
use crate::format::Snapshot;
use crate::id::{SnapshotId, TMP_SUFFIX};
use crate::reader::SnapshotReader;
use crate::writer::{SnapshotWriter, sync_dir};

/// How a [`Store`] behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// fsync each saved file and the directory after each rename or removal. **Turn off only in
    /// tests** that simulate crashes rather than cause them: without it a power loss can lose or
    /// tear a snapshot that `save` reported as saved. Default: `true`.
    pub sync: bool,
    /// The calls that write, sync, rename and remove files. Default: straight to `std`
    /// ([`Fs::direct`]); tests pass one with a hook ([`raftwood_fsio::Recorder`]) to record their
    /// order and to make any of them fail.
    pub fs: Fs,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            sync: true,
            fs: Fs::direct(),
        }
    }
}

/// A directory of snapshot files `{term:016x}-{index:016x}.snap`.
///
/// One `Store` per directory at a time: opening a store removes the temporary files of
/// unfinished saves, including those a second live store would be writing. Methods take `&self`;
/// concurrent saves of different snapshots are fine.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    options: Options,
    /// Numbers temporary files, so two saves of the same id never share one.
    next_tmp: AtomicU64,
}

impl Store {
    /// Opens (creating it if needed) the store in `dir`, with default [`Options`] (syncing on).
    /// Removes leftover temporary files of interrupted saves, logging each.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store, Error> {
        Store::open_with(dir, Options::default())
    }

    /// Opens the store in `dir` with the given options.
    ///
    /// ```
    /// use raftwood_snap::{Options, Store};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// // Tests only: no fsync.
    /// let store = Store::open_with(dir.path(), Options { sync: false, ..Options::default() }).unwrap();
    /// assert!(store.list().unwrap().is_empty());
    /// ```
    pub fn open_with(dir: impl AsRef<Path>, options: Options) -> Result<Store, Error> {
        let dir = dir.as_ref().to_path_buf();
        create_dir_durably(&options.fs, &dir, options.sync)?;
        let store = Store {
            dir,
            options,
            next_tmp: AtomicU64::new(0),
        };
        store.remove_temporary_files()?;
        Ok(store)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the file of snapshot `id` is (whether or not it exists).
    pub fn path_of(&self, id: SnapshotId) -> PathBuf {
        self.dir.join(id.file_name())
    }

    /// Starts saving snapshot `id` with the given metadata; write the data into the returned
    /// writer and [`SnapshotWriter::commit`] it. Saving an id that already has a file replaces
    /// that file atomically when committed.
    ///
    /// Fails with [`Error::ZeroIndex`] for index 0, which stands for "no snapshot".
    pub fn create(&self, id: SnapshotId, metadata: &[u8]) -> Result<SnapshotWriter, Error> {
        if id.index == 0 {
            return Err(Error::ZeroIndex { id });
        }
        loop {
            let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
            let tmp = self.dir.join(format!("{}.{n}{TMP_SUFFIX}", id.file_name()));
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(file) => {
                    return SnapshotWriter::start(
                        self.options.fs.writer(file, tmp),
                        &self.dir,
                        id,
                        metadata,
                        self.options.sync,
                    );
                }
                // Left by another store on this directory; take the next number.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(tmp, "create", e)),
            }
        }
    }

    /// Saves snapshot `id` atomically, streaming its data from `data` (a `&[u8]` works, as does a
    /// file or any other reader, so the data need not be held in memory twice). Returns once the
    /// file and its directory entry are durable.
    ///
    /// ```
    /// use raftwood_snap::{Store, SnapshotId};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path()).unwrap();
    /// let id = SnapshotId { index: 5, term: 1 };
    /// store.save(id, b"", &b"data"[..]).unwrap();
    /// assert!(store.path_of(id).exists());
    /// ```
    pub fn save(&self, id: SnapshotId, metadata: &[u8], mut data: impl Read) -> Result<(), Error> {
        let mut w = self.create(id, metadata)?;
        // `io::copy` does not say which side failed; the writer does. A failed write (ENOSPC,
        // say) names the temporary file it hit; a failure of `data` is the caller's reader.
        io::copy(&mut data, &mut w).map_err(|e| match w.write_failed() {
            true => Error::io(w.temp_path(), "write", e),
            false => Error::io(self.path_of(id), "read the data to save", e),
        })?;
        w.commit().map(|_| ())
    }

    /// The snapshots in the directory, newest first (see [`SnapshotId`] for "newest"). Only file
    /// names are read: a listed snapshot may still turn out damaged when loaded.
    pub fn list(&self) -> Result<Vec<SnapshotId>, Error> {
        let mut ids = Vec::new();
        for name in self.file_names()? {
            if let Some(id) = SnapshotId::parse_file_name(&name) {
                ids.push(id);
            }
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids)
    }

    /// Opens snapshot `id` for streaming: the header and metadata are read and checked against the
    /// header's `head_crc` (so the metadata can be used at once), the data
    /// streams through the returned reader and is verified when its end is read.
    pub fn open_reader(&self, id: SnapshotId) -> Result<SnapshotReader<BufReader<File>>, Error> {
        let path = self.path_of(id);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound { path }),
            Err(e) => return Err(Error::io(path, "open", e)),
        };
        let len = file
            .metadata()
            .map_err(|e| Error::io(&path, "stat", e))?
            .len();
        let reader = SnapshotReader::new(BufReader::new(file), len, path.clone())?;
        if reader.id() != id {
            return Err(Error::Corrupt {
                path,
                problem: crate::Corruption::NameMismatch {
                    name: id,
                    header: reader.id(),
                },
            });
        }
        Ok(reader)
    }

    /// Loads and verifies snapshot `id` whole.
    ///
    /// Errors: [`Error::NotFound`] if it has no file, [`Error::Corrupt`] naming the file and the
    /// problem if its bytes are damaged, [`Error::Io`] if reading fails.
    pub fn load(&self, id: SnapshotId) -> Result<Snapshot, Error> {
        let mut reader = self.open_reader(id)?;
        let mut data = Vec::new();
        reader.read_data_into(&mut data)?;
        Ok(Snapshot {
            id,
            metadata: reader.into_metadata(),
            data,
        })
    }

    /// Loads the newest valid snapshot among `candidates`: the node passes the snapshots its WAL
    /// marks, as etcd's `LoadNewestAvailable` does.
    ///
    /// Candidates are tried newest first. One that is missing or damaged is skipped with a
    /// warning (through `tracing`) naming its file, and the next older one is tried. Candidates
    /// with index 0 stand for "no snapshot" (a WAL's initial marker) and are ignored.
    ///
    /// Returns `Ok(None)` when there is no candidate with an index above 0, and
    /// [`Error::NoValidSnapshot`], naming every file tried and what was wrong with each, when
    /// there are candidates but none is valid.
    ///
    /// ```
    /// use raftwood_snap::{Error, Store, SnapshotId};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path()).unwrap();
    /// let good = SnapshotId { index: 3, term: 1 };
    /// let bad = SnapshotId { index: 9, term: 2 };
    /// store.save(good, b"", &b"good"[..]).unwrap();
    /// store.save(bad, b"", &b"bad"[..]).unwrap();
    /// std::fs::write(store.path_of(bad), b"garbage").unwrap();
    ///
    /// let snap = store.load_newest_of([good, bad]).unwrap().unwrap();
    /// assert_eq!(snap.id, good); // fell back past the damaged one
    ///
    /// let err = store.load_newest_of([bad]).unwrap_err();
    /// assert!(matches!(&err, Error::NoValidSnapshot { tried } if tried.len() == 1));
    /// assert!(store.load_newest_of([]).unwrap().is_none());
    /// ```
    pub fn load_newest_of(
        &self,
        candidates: impl IntoIterator<Item = SnapshotId>,
    ) -> Result<Option<Snapshot>, Error> {
        let mut candidates: Vec<SnapshotId> =
            candidates.into_iter().filter(|id| id.index > 0).collect();
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        candidates.dedup();
        if candidates.is_empty() {
            return Ok(None);
        }
        let mut tried = Vec::new();
        for id in candidates {
            match self.load(id) {
                Ok(snap) => return Ok(Some(snap)),
                Err(err) => {
                    tracing::warn!(
                        file = %self.path_of(id).display(),
                        error = %err,
                        "snapshot {id} is unusable, trying an older one"
                    );
                    tried.push(err);
                }
            }
        }
        Err(Error::NoValidSnapshot { tried })
    }

    /// Removes snapshot `id`'s file (an orphan the caller found, e.g. one with no WAL marker) and
    /// syncs the directory. Returns whether there was a file to remove.
    pub fn remove(&self, id: SnapshotId) -> Result<bool, Error> {
        let removed = self.remove_file(&self.path_of(id))?;
        if removed && self.options.sync {
            sync_dir(&self.options.fs, &self.dir)?;
        }
        Ok(removed)
    }

    /// Removes all but the `keep` newest snapshot files and returns the removed ids, newest
    /// first. Purging looks at names only, like [`Store::list`]: keep at least 2 so that
    /// [`Store::load_newest_of`] has an older snapshot to fall back to.
    pub fn purge(&self, keep: usize) -> Result<Vec<SnapshotId>, Error> {
        let removed: Vec<SnapshotId> = self.list()?.into_iter().skip(keep).collect();
        for &id in &removed {
            self.remove_file(&self.path_of(id))?;
            tracing::debug!(snapshot = %id, "purged snapshot");
        }
        if !removed.is_empty() && self.options.sync {
            sync_dir(&self.options.fs, &self.dir)?;
        }
        Ok(removed)
    }

    /// Removes every `*.tmp` file: the remains of saves interrupted by a crash.
    fn remove_temporary_files(&self) -> Result<(), Error> {
        let mut any = false;
        for name in self.file_names()? {
            if name.ends_with(TMP_SUFFIX) {
                let path = self.dir.join(&name);
                tracing::info!(file = %path.display(), "removing temporary file of an interrupted snapshot save");
                any |= self.remove_file(&path)?;
            }
        }
        if any && self.options.sync {
            sync_dir(&self.options.fs, &self.dir)?;
        }
        Ok(())
    }

    /// Removes one file; `Ok(false)` if it was already gone.
    fn remove_file(&self, path: &Path) -> Result<bool, Error> {
        match self.options.fs.remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(path, "remove", e)),
        }
    }

    /// The names of the directory's entries that are valid UTF-8 (snapshot and temporary names
    /// always are; anything else is not ours).
    fn file_names(&self) -> Result<Vec<String>, Error> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, "read directory", e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, "read directory", e))?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }
}

/// Creates `dir` and any missing ancestors. With `sync` on, then syncs the parent of each
/// directory it created, top down: a new directory is an entry in its parent, durable only once
/// the parent is synced.
fn create_dir_durably(fsio: &Fs, dir: &Path, sync: bool) -> Result<(), Error> {
    let mut missing = Vec::new();
    let mut at = dir;
    while fs::symlink_metadata(at).is_err() {
        missing.push(at);
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create directory", e))?;
    if sync {
        for created in missing.iter().rev() {
            let parent = created
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            sync_dir(fsio, parent)?;
        }
    }
    Ok(())
}
