//! The writer: [`Wal`] opens a directory, stages records into the current batch, ends the batch
//! with [`Wal::sync`], rotates segments and releases old ones.
//!
//! Staged records are encoded into one reused buffer; `sync` appends the commit record, hands the
//! rest of the batch to the kernel in one `write` and then calls `fdatasync` once. A batch that
//! grows past 1 MiB (`FLUSH_AT`) is written out in pieces as it is staged, without its commit
//! record, so it takes several `write`s, but still one `fdatasync`. Group commit is the caller's to
//! choose: stage everything a raft `Ready` carries, then sync once.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bytes::Bytes;
use raftwood_fsio::Fs;

use crate::error::{Error, IoContext, Result};
use crate::format::{self, HEADER_LEN, Kind, MAX_PAYLOAD_LEN, SegmentHeader};
use crate::recovery::{self, RecoveryMode, SegmentMeta};
use crate::replay::{Marker, Replay};
use crate::segment;

/// Name of the lock file in the WAL directory.
pub const LOCK_FILE: &str = "LOCK";

/// Staged bytes beyond this are written out before `sync` (still without a commit record), so a
/// huge batch does not need a huge buffer.
const FLUSH_AT: usize = 1 << 20;

/// The directories (canonical paths) of every `Wal` poisoned in this process. After a failed
/// `fdatasync` the page cache may hold pages the disk does not, marked clean, and a reopen would
/// replay them as if durable; so a reopen in the same process is refused
/// ([`Error::PoisonedEarlier`]). A new process starts with an empty set.
static POISONED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// The poisoned set; a panic elsewhere while it was held leaves it usable (it is only a set).
fn poisoned_dirs() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    POISONED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How a [`Wal`] behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// A new segment is started when the active one has reached this many bytes (checked at the
    /// start of each batch, so a segment exceeds it by at most one batch). Default 64 MiB.
    pub segment_size: u64,
    /// What to do with a torn tail on open. Default [`RecoveryMode::TolerateTornTail`].
    pub recovery: RecoveryMode,
    /// Whether `sync` and segment creation really call `fdatasync`/`fsync`. Default true.
    ///
    /// Turning it off keeps every guarantee about a crash of the *process* (the kernel still has
    /// the bytes) and none about a crash of the *machine*. It exists for tests that simulate crashes
    /// by cutting files, and for benchmarks of everything but the disk.
    pub fsync: bool,
    /// The calls that write, sync, rename, remove and truncate files. Default: straight to `std`
    /// ([`Fs::direct`]); tests pass one with a hook ([`raftwood_fsio::Recorder`]) to record their
    /// order and to make any of them fail.
    pub fs: Fs,
    /// Recovery reads each segment in pieces of about this many bytes, never whole, so a huge
    /// zeroed or garbage tail costs one piece of memory. A piece grows only to hold one batch (or
    /// one frame). Default 8 MiB; tests use tiny pieces to cross their boundaries everywhere.
    pub read_chunk: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_size: 64 << 20,
            recovery: RecoveryMode::default(),
            fsync: true,
            fs: Fs::direct(),
            read_chunk: 8 << 20,
        }
    }
}

/// Where the active (newest) segment stands; for diagnostics and crash tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveSegment {
    /// The segment file.
    pub path: PathBuf,
    /// Bytes handed to the kernel so far.
    pub len: u64,
    /// End of the last batch completed by [`Wal::sync`] (durable when [`Options::fsync`] is on).
    /// A crash can only damage the bytes after it.
    pub committed_len: u64,
}

/// A write-ahead log in one directory. See the [crate docs](crate) for the model and an example.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    options: Options,
    /// Held for the lifetime of the `Wal`; the OS releases the lock when it is closed.
    _lock: File,
    /// Invariant: non-empty; consecutive seqs; the last one is the active segment.
    segments: Vec<SegmentMeta>,
    /// The active segment, positioned at `len`.
    file: File,
    /// Invariant: `committed_len <= len`; `len` is the active file's length.
    len: u64,
    committed_len: u64,
    /// Staged frames of the current batch not yet written.
    buf: Vec<u8>,
    /// crc32 of the current batch's bytes already written (`committed_len..len`).
    batch_crc: crc32fast::Hasher,
    /// Salt of the active segment's header, repeated in each of its commit records.
    salt: u64,
    /// Newest state staged or replayed; written first into each new segment.
    state: Option<Bytes>,
    /// Highest entry index held (staged ones included).
    last_index: Option<u64>,
    /// Index of the newest log-resetting marker when no entry follows it: the log then starts
    /// after it, which names the next segment when `last_index` is `None`.
    reset_index: Option<u64>,
    /// Set when a write or sync failed: the file's contents are then unknown.
    poisoned: bool,
    /// `dir`, canonical: the key of the process-wide poisoned set.
    canonical_dir: PathBuf,
}

impl Wal {
    /// Opens (or creates) the log in `dir`, locks the directory, recovers, and returns what the
    /// log holds.
    ///
    /// Everything it hands back is durable when it returns (with [`Options::fsync`] on): a
    /// process killed after a `write`, or during an `fdatasync`, leaves a complete batch in the
    /// page cache that nothing has synced, and a node must not acknowledge entries or repeat a
    /// vote from it before it is. So `open` fdatasyncs the newest segment (the older ones were
    /// synced before the next was started) and syncs the directory, as PostgreSQL does after a
    /// crash.
    ///
    /// Fails with [`Error::Locked`] if the directory is in use, with
    /// [`Error::PoisonedEarlier`] if a `Wal` on it was poisoned earlier in this process, and with
    /// [`Error::Corrupt`] on damage that [`RecoveryMode`] does not allow to repair; in that case
    /// nothing was changed.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<(Wal, Replay)> {
        let dir = dir.as_ref().to_path_buf();
        let fs = &options.fs;
        segment::create_dir_durably(fs, &dir, options.fsync)?;
        let canonical_dir = dir.canonicalize().io(&dir, "canonicalize")?;
        if poisoned_dirs().contains(&canonical_dir) {
            return Err(Error::PoisonedEarlier { dir });
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .io(&lock_path, "open lock file")?;
        lock.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => Error::Locked {
                path: lock_path.clone(),
            },
            std::fs::TryLockError::Error(source) => Error::Io {
                path: lock_path.clone(),
                op: "lock",
                source,
            },
        })?;

        let listing = segment::list(&dir)?;
        // Recovery first: if it refuses, nothing in the directory has been touched.
        let recovered = match listing.segments.is_empty() {
            true => None,
            false => Some(recovery::recover(
                fs,
                listing.segments,
                options.recovery,
                options.fsync,
                options.read_chunk,
            )?),
        };
        for temp in &listing.temps {
            fs.remove_file(temp)
                .io(temp, "remove leftover temporary file")?;
            tracing::info!(path = %temp.display(), "WAL: removed a leftover temporary segment");
        }
        // The removals are made durable by the directory sync below (a recovered log) or by the
        // one that creates the first segment (a new log).
        let recovered_log = recovered.is_some();
        let (segments, replay, len, salt) = match recovered {
            Some(recovered) => (
                recovered.segments,
                recovered.replay,
                recovered.active_len,
                recovered.active_salt,
            ),
            None => {
                let header = SegmentHeader {
                    seq: 0,
                    first_index: 0,
                    salt: format::new_salt(0),
                };
                let (_, file) = segment::create(fs, &dir, header, &[], options.fsync)?;
                let meta = SegmentMeta {
                    file,
                    max_index: None,
                };
                (
                    vec![meta],
                    Replay::default(),
                    HEADER_LEN as u64,
                    header.salt,
                )
            }
        };

        let active = segments
            .last()
            .map(|s| s.file.path.clone())
            .unwrap_or_default();
        let mut file = OpenOptions::new()
            .write(true)
            .open(&active)
            .io(&active, "open")?;
        file.seek(SeekFrom::Start(len)).io(&active, "seek")?;
        if recovered_log && options.fsync {
            // What replay hands out may be only in the page cache (see above). Cheap when it is
            // not: an fdatasync of a clean file writes nothing.
            fs.sync_data(&file, &active).io(&active, "fdatasync")?;
            segment::sync_dir(fs, &dir)?;
        }
        let wal = Wal {
            dir,
            options,
            _lock: lock,
            segments,
            file,
            len,
            committed_len: len,
            buf: Vec::new(),
            batch_crc: crc32fast::Hasher::new(),
            salt,
            state: replay.state.clone(),
            last_index: replay.entries.last().map(|e| e.index),
            reset_index: replay.reset.map(|m| m.index),
            poisoned: false,
            canonical_dir,
        };
        Ok((wal, replay))
    }

    /// Stages an entry at `index`. Once synced, it replaces every entry previously written at
    /// `index` and after.
    pub fn append_entry(&mut self, index: u64, data: &[u8]) -> Result<()> {
        self.stage(Kind::Entry, &index.to_le_bytes(), data, Some(index))?;
        self.last_index = Some(index);
        self.note(index);
        Ok(())
    }

    /// Stages a new state (opaque bytes, such as a raft node's hard state); replay reports the
    /// newest one.
    pub fn append_state(&mut self, state: &[u8]) -> Result<()> {
        self.stage(Kind::State, state, &[], None)?;
        self.state = Some(Bytes::copy_from_slice(state));
        Ok(())
    }

    /// Stages a snapshot marker; replay reports every marker in the segments still held (unless a
    /// log-resetting marker follows it, see [`Wal::append_reset_marker`]).
    pub fn append_marker(&mut self, marker: Marker) -> Result<()> {
        let mut payload = [0u8; 16];
        payload[0..8].copy_from_slice(&marker.index.to_le_bytes());
        payload[8..16].copy_from_slice(&marker.term.to_le_bytes());
        self.stage(Kind::Marker, &payload, &[], None)?;
        self.note(marker.index);
        Ok(())
    }

    /// Stages a log-resetting snapshot marker: "the log now starts after this snapshot". Once
    /// synced, replay drops every entry and every marker written before it, at any index, and
    /// reports it in [`Replay::markers`] and [`Replay::reset`]. Entries and markers staged after it
    /// (in the same batch or later) are kept.
    ///
    /// For a follower that installs a snapshot over a log that conflicts with it: its entries
    /// after the snapshot's index may be stale, lower-term entries, and a plain marker would let
    /// them come back after a restart (and lead to a wrong vote; etcd's issue 22442). Save the
    /// snapshot file first, then stage this and sync.
    ///
    /// ```
    /// use raftwood_wal::{Marker, Options, Wal};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let (mut wal, _) = Wal::open(dir.path(), Options::default()).unwrap();
    /// for index in 1..=5 {
    ///     wal.append_entry(index, b"term 1, never committed").unwrap();
    /// }
    /// wal.sync().unwrap();
    /// wal.append_reset_marker(Marker { index: 3, term: 2 }).unwrap();
    /// wal.sync().unwrap();
    /// drop(wal);
    ///
    /// let (_, replay) = Wal::open(dir.path(), Options::default()).unwrap();
    /// assert!(replay.entries.is_empty(), "the stale entries 4 and 5 are gone");
    /// assert_eq!(replay.reset, Some(Marker { index: 3, term: 2 }));
    /// ```
    pub fn append_reset_marker(&mut self, marker: Marker) -> Result<()> {
        let mut payload = [0u8; 16];
        payload[0..8].copy_from_slice(&marker.index.to_le_bytes());
        payload[8..16].copy_from_slice(&marker.term.to_le_bytes());
        self.stage(Kind::ResetMarker, &payload, &[], None)?;
        self.last_index = None;
        self.reset_index = Some(marker.index);
        self.note(marker.index);
        Ok(())
    }

    /// Ends the current batch: writes what is still staged with the commit record in one `write`
    /// (a batch over 1 MiB has already been written in pieces while it was staged), then makes
    /// everything appended so far durable with one `fdatasync`. Does nothing if nothing is staged.
    ///
    /// When it returns `Ok`, every record staged before it survives any crash (with
    /// [`Options::fsync`] on). On `Err` the log is poisoned: later calls fail with
    /// [`Error::Poisoned`], which is fatal for the process (see there): a reopen in the same
    /// process is refused, a new process reopens it and repairs the tail.
    pub fn sync(&mut self) -> Result<()> {
        self.check_poisoned()?;
        if self.buf.is_empty() && self.len == self.committed_len {
            return Ok(());
        }
        self.batch_crc.update(&self.buf);
        let crc = std::mem::take(&mut self.batch_crc).finalize();
        format::put_commit(&mut self.buf, self.committed_len, self.salt, crc);
        let result = self.write_buf().and_then(|()| self.sync_active());
        self.poison_on_error(result)?;
        self.committed_len = self.len;
        Ok(())
    }

    /// Writes the records staged so far in the current batch to the active segment, without a
    /// commit record and without syncing: what staging does by itself once a batch passes 1 MiB.
    /// The batch stays open (it is still ended by [`Wal::sync`]) and is lost by a crash before
    /// then. For crash tests, which need the unfinished batch's bytes in the file.
    #[doc(hidden)]
    pub fn write_staged(&mut self) -> Result<()> {
        self.check_poisoned()?;
        self.batch_crc.update(&self.buf);
        let result = self.write_buf();
        self.poison_on_error(result)
    }

    /// Removes every segment that lies wholly below `index`: every entry and marker in it is at an
    /// index lower than `index`. Only a prefix of the segments goes, never the active one, oldest
    /// first, and the directory is synced after each removal. Returns how many segments were removed.
    ///
    /// Why a sync per file: removals made durable by one sync at the end reach the disk in any
    /// order, so a crash could keep an older segment while a newer one is gone, and the next open
    /// would fail with [`Error::MissingSegment`]. Syncing after each one keeps what is on disk a
    /// suffix of the log at every instant. (Accepting a gap at the front on open would hide a
    /// segment lost by other means; `release` is rare and its syncs are cheap beside a snapshot.)
    ///
    /// Call it after a snapshot at `index` is safely stored and marked. The newest state survives,
    /// since every segment begins with a copy of it.
    pub fn release(&mut self, index: u64) -> Result<usize> {
        self.check_poisoned()?;
        let removable = self
            .segments
            .iter()
            .take(self.segments.len() - 1)
            .take_while(|s| s.max_index.is_none_or(|m| m < index))
            .count();
        // Oldest first, each removal durable before the next, so a crash at any point leaves a
        // suffix of the log on disk.
        for _ in 0..removable {
            let path = self.segments[0].file.path.clone();
            self.options
                .fs
                .remove_file(&path)
                .io(&path, "remove released segment")?;
            self.segments.remove(0);
            if self.options.fsync {
                segment::sync_dir(&self.options.fs, &self.dir)?;
            }
        }
        Ok(removable)
    }

    /// Highest entry index held, staged entries included; `None` if the log holds no entry.
    ///
    /// After an overwrite this is the overwriting batch's last index, which may be lower than
    /// before.
    pub fn last_index(&self) -> Option<u64> {
        self.last_index
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the log was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Paths of the segments held, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.file.path.clone()).collect()
    }

    /// Where the active segment stands.
    pub fn active_segment(&self) -> ActiveSegment {
        ActiveSegment {
            path: self.active().file.path.clone(),
            len: self.len,
            committed_len: self.committed_len,
        }
    }

    fn active(&self) -> &SegmentMeta {
        // Invariant: `segments` is never empty.
        self.segments
            .last()
            .expect("invariant violated: a Wal without segments")
    }

    fn note(&mut self, index: u64) {
        if let Some(active) = self.segments.last_mut() {
            active.note(index);
        }
    }

    /// Encodes one frame into the current batch, starting a new segment first if this is the
    /// batch's first record and the active segment is full.
    fn stage(
        &mut self,
        kind: Kind,
        head: &[u8],
        tail: &[u8],
        entry_index: Option<u64>,
    ) -> Result<()> {
        self.check_poisoned()?;
        let len = head.len() + tail.len();
        if len > MAX_PAYLOAD_LEN {
            return Err(Error::RecordTooLarge {
                len,
                max: MAX_PAYLOAD_LEN,
            });
        }
        let batch_empty = self.buf.is_empty() && self.len == self.committed_len;
        if batch_empty && self.len >= self.options.segment_size {
            // Both numbers can come from the disk, so neither `+ 1` may be trusted not to
            // overflow; refusing here writes nothing, so the log is not poisoned.
            let first_index = match entry_index {
                Some(index) => index,
                None => self.next_index()?,
            };
            let seq = self.next_seq()?;
            let result = self.rotate(seq, first_index);
            self.poison_on_error(result)?;
        }
        format::put_frame(&mut self.buf, kind, head, tail);
        if self.buf.len() >= FLUSH_AT {
            self.batch_crc.update(&self.buf);
            let result = self.write_buf();
            self.poison_on_error(result)?;
        }
        Ok(())
    }

    /// One past the highest entry index held, or past the log-resetting marker when no entry
    /// follows it (0 for a log without either): the `first_index` of a segment started by a batch
    /// without entries.
    fn next_index(&self) -> Result<u64> {
        match self.last_index.or(self.reset_index) {
            None => Ok(0),
            Some(index) => index.checked_add(1).ok_or_else(|| Error::Overflow {
                path: self.active().file.path.clone(),
                what: "entry index",
                value: index,
            }),
        }
    }

    /// The sequence number of the segment after the active one.
    fn next_seq(&self) -> Result<u64> {
        let active = &self.active().file;
        active.seq.checked_add(1).ok_or_else(|| Error::Overflow {
            path: active.path.clone(),
            what: "segment sequence number",
            value: active.seq,
        })
    }

    /// Starts segment `seq`. The active one is complete (every batch in it was ended by `sync`),
    /// and it is synced first, whatever path led here: a later power loss must not tear an
    /// *older* segment, which recovery would rightly refuse as corruption. (etcd's `cut` does the
    /// same; when the segment is already synced the fdatasync writes nothing.)
    fn rotate(&mut self, seq: u64, first_index: u64) -> Result<()> {
        self.sync_active()?;
        let header = SegmentHeader {
            seq,
            first_index,
            salt: format::new_salt(seq),
        };
        let mut carry = Vec::new();
        if let Some(state) = &self.state {
            format::put_frame(&mut carry, Kind::State, state, &[]);
            let crc = crc32fast::hash(&carry);
            format::put_commit(&mut carry, HEADER_LEN as u64, header.salt, crc);
        }
        let (file, created) = segment::create(
            &self.options.fs,
            &self.dir,
            header,
            &carry,
            self.options.fsync,
        )?;
        self.file = file;
        self.len = (HEADER_LEN + carry.len()) as u64;
        self.committed_len = self.len;
        self.salt = header.salt;
        self.segments.push(SegmentMeta {
            file: created,
            max_index: None,
        });
        Ok(())
    }

    fn write_buf(&mut self) -> Result<()> {
        let path = &self.segments[self.segments.len() - 1].file.path;
        self.options
            .fs
            .write_all(&mut self.file, path, &self.buf)
            .io(path, "write")?;
        self.len += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn sync_active(&mut self) -> Result<()> {
        if self.options.fsync {
            let path = &self.active().file.path;
            self.options
                .fs
                .sync_data(&self.file, path)
                .io(path, "fdatasync")?;
        }
        Ok(())
    }

    fn check_poisoned(&self) -> Result<()> {
        if self.poisoned {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }

    fn poison_on_error<T>(&mut self, result: Result<T>) -> Result<T> {
        if result.is_err() && !self.poisoned {
            self.poisoned = true;
            poisoned_dirs().insert(self.canonical_dir.clone());
        }
        result
    }
}
