//! Writing a snapshot atomically: [`SnapshotWriter`].
//!
//! The steps, and what a crash after each leaves behind:
//!
//! | step | a crash after it leaves |
//! |---|---|
//! | 1. create `<name>.<n>.tmp`, write a zeroed header and the metadata | a temporary file: removed on the next open |
//! | 2. stream the data through [`std::io::Write`], hashing it on the way | the same |
//! | 3. [`SnapshotWriter::commit`]: write the real header at offset 0 | the same |
//! | 4. fsync the file | the same, now complete but still temporary |
//! | 5. rename it to `{term:016x}-{index:016x}.snap` | the old set, or the old set plus the new file, depending on whether the rename reached the disk |
//! | 6. fsync the directory | the old set plus the new, complete file |
//!
//! The rename is the commit point: a file with the final name only ever appears with its
//! complete, synced contents (step 4 comes before step 5), so a reader never sees half a
//! snapshot under a snapshot's name. Dropping a writer without committing removes its
//! temporary file.
//!
//! ```
//! use std::io::Write;
//! use raftwood_snap::{Store, SnapshotId};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path()).unwrap();
//! let id = SnapshotId { index: 100, term: 3 };
//! let mut w = store.create(id, b"voters=1,2,3").unwrap();
//! for chunk in [&b"key1=a;"[..], b"key2=b;"] {
//!     w.write_all(chunk).unwrap(); // only one chunk is in memory at a time
//! }
//! w.commit().unwrap();
//! assert_eq!(store.load(id).unwrap().data, b"key1=a;key2=b;");
//! ```

use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crc32fast::Hasher;
use raftwood_fsio::{Fs, FsWriter};

use crate::error::Error;
use crate::format::{HEADER_LEN, Header};
use crate::id::SnapshotId;

/// A snapshot being saved. Write the data through [`Write`], then [`SnapshotWriter::commit`].
/// Obtained from [`crate::Store::create`].
#[derive(Debug)]
pub struct SnapshotWriter {
    /// `None` once committed (or failed while committing).
    file: Option<BufWriter<FsWriter>>,
    /// The store's file-system calls (the writes go through `file`, which holds a clone).
    fs: Fs,
    tmp_path: PathBuf,
    final_path: PathBuf,
    dir: PathBuf,
    id: SnapshotId,
    metadata_len: u64,
    data_len: u64,
    /// CRC-32 state over metadata and data so far; the header's part is combined in at commit.
    body: Hasher,
    /// CRC-32 state over the metadata alone, for the header's `head_crc`.
    metadata_crc: Hasher,
    sync: bool,
    /// Set when a write to the temporary file failed, so that a caller copying from a reader
    /// can tell its reader's errors from this file's (an `ENOSPC` must name the file it hit).
    write_failed: bool,
}

impl SnapshotWriter {
    /// Writes the zeroed header and the metadata to an already created temporary file.
    pub(crate) fn start(
        file: FsWriter,
        dir: &Path,
        id: SnapshotId,
        metadata: &[u8],
        sync: bool,
    ) -> Result<SnapshotWriter, Error> {
        let mut body = Hasher::new();
        body.update(metadata);
        let tmp_path = file.path().to_path_buf();
        let fs = file.fs().clone();
        let mut w = SnapshotWriter {
            file: Some(BufWriter::with_capacity(64 * 1024, file)),
            fs,
            final_path: dir.join(id.file_name()),
            dir: dir.to_path_buf(),
            tmp_path,
            id,
            metadata_len: metadata.len() as u64,
            data_len: 0,
            metadata_crc: body.clone(),
            body,
            sync,
            write_failed: false,
        };
        // On error `w` is dropped here, which removes the temporary file.
        let file = w.file.as_mut().ok_or_else(|| closed(&w.tmp_path))?;
        file.write_all(&[0u8; HEADER_LEN])
            .and_then(|()| file.write_all(metadata))
            .map_err(|e| Error::io(&w.tmp_path, "write", e))?;
        Ok(w)
    }

    /// Which snapshot this writer saves.
    pub fn id(&self) -> SnapshotId {
        self.id
    }

    /// Data bytes written so far.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// The temporary file the snapshot is written to until [`SnapshotWriter::commit`].
    pub fn temp_path(&self) -> &Path {
        &self.tmp_path
    }

    /// True if a write to the temporary file has failed (the save can then only be abandoned).
    pub fn write_failed(&self) -> bool {
        self.write_failed
    }

    /// Finishes the save: header, fsync, rename, directory fsync (the syncs are skipped when the
    /// store was opened with `sync: false`). On error the temporary file is removed and no
    /// snapshot file appears, unless the rename itself succeeded and only the directory sync
    /// failed, in which case the file is complete but its durability unknown.
    pub fn commit(mut self) -> Result<SnapshotId, Error> {
        let result = self.finish();
        if result.is_err() {
            remove_quietly(&self.fs, &self.tmp_path);
        }
        result
    }

    fn finish(&mut self) -> Result<SnapshotId, Error> {
        let buffered = self.file.take().ok_or_else(|| closed(&self.tmp_path))?;
        let tmp = &self.tmp_path;
        let mut file = buffered.into_inner().map_err(|e| {
            let (error, buffered) = e.into_parts();
            discard(buffered);
            Error::io(tmp, "write", error)
        })?;

        let mut header = Header {
            id: self.id,
            metadata_len: self.metadata_len,
            data_len: self.data_len,
            crc: 0,
            head_crc: 0,
        };
        let mut head = header.crc_hasher_of_first_48();
        head.combine(&self.metadata_crc);
        header.head_crc = head.finalize();
        let mut crc = header.crc_hasher();
        crc.combine(&self.body);
        header.crc = crc.finalize();

        file.file_mut()
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(&header.encode()))
            .map_err(|e| Error::io(tmp, "write", e))?;
        if self.sync {
            self.fs
                .sync_all(file.file(), tmp)
                .map_err(|e| Error::io(tmp, "fsync", e))?;
        }
        drop(file);
        self.fs
            .rename(tmp, &self.final_path)
            .map_err(|e| Error::io(tmp, "rename", e))?;
        if self.sync {
            sync_dir(&self.fs, &self.dir)?;
        }
        Ok(self.id)
    }
}

impl Write for SnapshotWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("snapshot writer already committed"))?;
        let n = file.write(buf).inspect_err(|_| self.write_failed = true)?;
        self.body.update(&buf[..n]);
        self.data_len += n as u64;
        Ok(n)
    }

    /// Flushes the buffer to the temporary file (not to the disk: that is `commit`'s fsync).
    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for SnapshotWriter {
    /// An uncommitted writer removes its temporary file: an abandoned save leaves nothing.
    fn drop(&mut self) {
        if let Some(buffered) = self.file.take() {
            discard(buffered);
            remove_quietly(&self.fs, &self.tmp_path);
        }
    }
}

/// Drops a writer without writing what it still buffers. Dropping a `BufWriter` flushes it, which
/// after a failed write (EIO, ENOSPC) would write the same bytes again into a file that is about
/// to be removed: pointless at best, and after an EIO another request to a failing disk.
fn discard(buffered: BufWriter<FsWriter>) {
    let (_file, _unwritten) = buffered.into_parts();
}

fn closed(path: &Path) -> Error {
    Error::io(
        path,
        "write",
        io::Error::other("snapshot writer already committed"),
    )
}

fn remove_quietly(fs: &Fs, path: &Path) {
    if let Err(e) = fs.remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), error = %e, "could not remove temporary snapshot file");
    }
}

/// Makes a directory's entries (a rename, a removal) durable.
pub(crate) fn sync_dir(fs: &Fs, dir: &Path) -> Result<(), Error> {
    fs.sync_dir(dir).map_err(|e| Error::io(dir, "fsync", e))
}
