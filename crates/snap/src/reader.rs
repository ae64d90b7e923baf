//! Reading a snapshot file: [`SnapshotReader`], the one decoder behind [`crate::Store::load`],
//! [`crate::Store::open_reader`] and [`crate::format::decode`].
//!
//! The order of checks is what keeps hostile bytes harmless:
//! 1. the file is at least [`HEADER_LEN`] bytes;
//! 2. magic and version;
//! 3. `56 + metadata_len + data_len == file size` (checked arithmetic): only now is anything
//!    allocated, and never more than the file holds;
//! 4. the metadata is read whole (it is small: a membership, a few ids) and checked, with the
//!    header, against the header's `head_crc`: from here on both can be trusted;
//! 5. the data streams through [`std::io::Read`], and the checksum is compared when the last data
//!    byte has been read: the read that reaches the end fails instead of returning its bytes
//!    if the checksum does not match, so a caller that reads until `Ok(0)` never accepts damaged
//!    data.
//!
//! ```
//! use std::io::Read;
//! use raftwood_snap::{Store, SnapshotId};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path()).unwrap();
//! let id = SnapshotId { index: 4, term: 1 };
//! store.save(id, b"meta", &b"state machine bytes"[..]).unwrap();
//!
//! let mut reader = store.open_reader(id).unwrap();
//! assert_eq!(reader.metadata(), b"meta"); // checked when the reader was opened
//! let mut data = Vec::new();
//! reader.read_to_end(&mut data).unwrap(); // fails with InvalidData on a checksum mismatch
//! assert_eq!(data, b"state machine bytes");
//! ```

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crc32fast::Hasher;

use crate::error::{Corruption, Error};
use crate::format::{HEADER_LEN, Header};
use crate::id::SnapshotId;

/// A snapshot being read: header and metadata already checked and in memory, the data streaming
/// through [`Read`]. Obtained from [`crate::Store::open_reader`].
///
/// The data is only known to be intact once a read has returned `Ok(0)`; a checksum mismatch
/// is an `io::Error` of kind [`io::ErrorKind::InvalidData`] whose inner error is an
/// [`Error::Corrupt`] naming the file.
#[derive(Debug)]
pub struct SnapshotReader<R> {
    inner: R,
    path: PathBuf,
    header: Header,
    metadata: Vec<u8>,
    hasher: Hasher,
    /// Data bytes not yet read.
    remaining: u64,
    /// Offset in the file of the next byte to read (for error messages).
    offset: u64,
    /// Set once the checksum has been compared: `Some(true)` if it matched.
    verified: Option<bool>,
}

impl<R: Read> SnapshotReader<R> {
    /// Reads and checks the header and the metadata of a file of `file_len` bytes.
    pub(crate) fn new(mut inner: R, file_len: u64, path: PathBuf) -> Result<Self, Error> {
        let corrupt = |path: &Path, problem| Error::Corrupt {
            path: path.to_path_buf(),
            problem,
        };
        if file_len < HEADER_LEN as u64 {
            return Err(corrupt(&path, Corruption::TooShort { len: file_len }));
        }
        let mut head = [0u8; HEADER_LEN];
        read_full(&mut inner, &mut head, &path, 0)?;
        let header = Header::decode(&head).map_err(|p| corrupt(&path, p))?;
        header
            .check_file_len(file_len)
            .map_err(|p| corrupt(&path, p))?;
        // Both lengths fit in the file, so they fit in memory's address space too on any 64-bit
        // target; on a 32-bit one a too-large length is reported rather than truncated.
        let too_big = || {
            corrupt(
                &path,
                Corruption::LengthMismatch {
                    metadata_len: header.metadata_len,
                    data_len: header.data_len,
                    file_len,
                },
            )
        };
        let metadata_len = usize::try_from(header.metadata_len).map_err(|_| too_big())?;
        usize::try_from(header.data_len).map_err(|_| too_big())?;

        let mut metadata = vec![0u8; metadata_len];
        read_full(&mut inner, &mut metadata, &path, HEADER_LEN as u64)?;
        header
            .check_head(&metadata)
            .map_err(|p| corrupt(&path, p))?;
        let mut hasher = header.crc_hasher();
        hasher.update(&metadata);
        Ok(SnapshotReader {
            inner,
            path,
            header,
            metadata,
            hasher,
            remaining: header.data_len,
            offset: HEADER_LEN as u64 + header.metadata_len,
            verified: None,
        })
    }

    /// Which snapshot the header says this is.
    pub fn id(&self) -> SnapshotId {
        self.header.id
    }

    /// The caller's metadata, checked (with the header) against the header's `head_crc` when the
    /// reader was opened: it can be used before the data is read.
    pub fn metadata(&self) -> &[u8] {
        &self.metadata
    }

    /// Takes the metadata out, dropping the reader.
    pub fn into_metadata(self) -> Vec<u8> {
        self.metadata
    }

    /// The length of the data, in bytes, as the header says (checked against the file's size).
    pub fn data_len(&self) -> u64 {
        self.header.data_len
    }

    /// The file this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads all of the remaining data into `out` and verifies the checksum. On error `out` is
    /// left as it was.
    pub(crate) fn read_data_into(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        // Fits: checked against usize in `new`, and bounded by the file's size.
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        out.resize(start + n, 0);
        let mut filled = start;
        let result = (|| {
            while filled < out.len() {
                filled += self.read_chunk(&mut out[filled..])?;
            }
            self.verify()
        })();
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// One read of at most `buf.len()` data bytes; verifies the checksum when the end is reached.
    fn read_chunk(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.remaining == 0 {
            return self.verify().map(|()| 0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = loop {
            match self.inner.read(&mut buf[..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(&self.path, "read", e)),
            }
        };
        if n == 0 {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                problem: Corruption::Truncated {
                    offset: self.offset,
                },
            });
        }
        self.hasher.update(&buf[..n]);
        self.remaining -= n as u64;
        self.offset += n as u64;
        if self.remaining == 0 {
            self.verify()?;
        }
        Ok(n)
    }

    /// Compares the checksum (once; later calls repeat the verdict).
    fn verify(&mut self) -> Result<(), Error> {
        debug_assert_eq!(self.remaining, 0, "verify before the end of the data");
        let ok = *self
            .verified
            .get_or_insert_with(|| self.hasher.clone().finalize() == self.header.crc);
        if ok {
            Ok(())
        } else {
            Err(Error::Corrupt {
                path: self.path.clone(),
                problem: Corruption::ChecksumMismatch {
                    stored: self.header.crc,
                    computed: self.hasher.clone().finalize(),
                },
            })
        }
    }
}

impl<R: Read> Read for SnapshotReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_chunk(buf).map_err(|err| {
            let kind = match &err {
                Error::Io { source, .. } => source.kind(),
                _ => io::ErrorKind::InvalidData,
            };
            io::Error::new(kind, err)
        })
    }
}

/// `read_exact`, with a short read reported as [`Corruption::Truncated`] at the offset where the
/// bytes ran out.
fn read_full(inner: &mut impl Read, buf: &mut [u8], path: &Path, at: u64) -> Result<(), Error> {
    let mut filled = 0;
    while filled < buf.len() {
        match inner.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    problem: Corruption::Truncated {
                        offset: at + filled as u64,
                    },
                });
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, "read", e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::encode_to_vec;

    fn reader(bytes: &[u8]) -> SnapshotReader<&[u8]> {
        SnapshotReader::new(bytes, bytes.len() as u64, PathBuf::from("t.snap")).unwrap()
    }

    #[test]
    fn streams_in_small_reads() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let bytes = encode_to_vec(SnapshotId { index: 2, term: 1 }, b"m", &data);
        let mut r = reader(&bytes);
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data);
        assert_eq!(r.read(&mut buf).unwrap(), 0, "end stays the end");
    }

    #[test]
    fn last_read_fails_on_bad_checksum() {
        let mut bytes = encode_to_vec(SnapshotId { index: 2, term: 1 }, b"m", b"abcdef");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let mut r = reader(&bytes);
        let mut buf = [0u8; 3];
        assert_eq!(r.read(&mut buf).unwrap(), 3);
        let err = r.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let inner = err.into_inner().unwrap().downcast::<Error>().unwrap();
        assert!(matches!(
            inner.corruption(),
            Some(Corruption::ChecksumMismatch { .. })
        ));
        // Once failed, always failed.
        assert!(r.read(&mut buf).is_err());
    }

    #[test]
    fn file_shorter_than_claimed_is_truncated_not_a_panic() {
        let bytes = encode_to_vec(SnapshotId { index: 2, term: 1 }, b"meta", b"abcdef");
        // Claim the full length but hand over fewer bytes (a file that shrank after `stat`).
        let short = &bytes[..bytes.len() - 2];
        let mut r = SnapshotReader::new(short, bytes.len() as u64, PathBuf::from("t")).unwrap();
        let mut out = Vec::new();
        let err = r.read_data_into(&mut out).unwrap_err();
        assert_eq!(
            err.corruption(),
            Some(&Corruption::Truncated {
                offset: bytes.len() as u64 - 2
            })
        );
        assert!(out.is_empty());
    }
}
