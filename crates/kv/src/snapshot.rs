//! The store's snapshot format, written and read as a stream: the map goes out one record at a
//! time and comes back one record at a time, so neither side ever holds a second copy of the
//! whole map, and the reader trusts no length it has not checked against [`SnapshotLimits`].
//!
//! ```text
//! header   magic "RWKVSNAP" (8) | version u32 = 1 | applied index u64 | record count u64
//! record   key length u32 | key (UTF-8, non-empty) | revision u64 | value length u32 | value
//!          ... `count` records, keys in strictly increasing byte order ...
//! trailer  CRC-32 (IEEE) u32 of every byte before it
//! ```
//!
//! All integers are little-endian. The checksum covers the header too, so a damaged applied
//! index is caught like a damaged value. Nothing may follow the trailer.
//!
//! ```
//! use bytes::Bytes;
//! use raftwood_kv::{Command, Key, KvStore, Op, RequestId, SnapshotLimits};
//!
//! let mut store = KvStore::new();
//! let op = Op::Put { key: Key::new("k")?, value: Bytes::from_static(b"v"), if_revision: None };
//! store.apply(3, &Command { id: RequestId { node: 1, seq: 1 }, op });
//!
//! let mut file = Vec::new();
//! store.write_snapshot(&mut file)?;
//! let restored = KvStore::read_snapshot(file.as_slice(), SnapshotLimits::default())?;
//! assert_eq!(restored, store);
//! // A cut-short snapshot is an error, never a smaller map.
//! assert!(KvStore::read_snapshot(&file[..file.len() - 1], SnapshotLimits::default()).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::io::{self, BufReader, BufWriter, Read, Write};

use bytes::Bytes;

use crate::state::{KvStore, Value};

/// The first bytes of every kv snapshot.
pub const MAGIC: [u8; 8] = *b"RWKVSNAP";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;

/// The largest key and value the reader accepts: it allocates a record's buffers only after
/// checking the claimed lengths against these. A node must use limits at least as large as its
/// request limits, or it could not restore a map its clients were allowed to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotLimits {
    /// The longest key, in bytes.
    pub max_key_len: u32,
    /// The longest value, in bytes.
    pub max_value_len: u32,
}

impl Default for SnapshotLimits {
    /// 64 KiB keys (far beyond any URL a server accepts) and 16 MiB values (the most a command
    /// can carry, [`crate::codec::DECODE_LIMIT`]).
    fn default() -> SnapshotLimits {
        SnapshotLimits {
            max_key_len: 64 << 10,
            max_value_len: 16 << 20,
        }
    }
}

/// Why a snapshot could not be read. Offsets are byte positions from the snapshot's start.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The underlying reader failed.
    #[error("kv snapshot: read failed at offset {offset}: {source}")]
    Io {
        /// Where the read was.
        offset: u64,
        /// The reader's error.
        source: io::Error,
    },
    /// The stream ended before the snapshot did.
    #[error("kv snapshot: truncated at offset {offset}")]
    Truncated {
        /// Where the data ran out.
        offset: u64,
    },
    /// The stream does not start with [`MAGIC`].
    #[error("kv snapshot: bad magic {found:02x?} (not a kv snapshot)")]
    BadMagic {
        /// The first eight bytes found.
        found: [u8; 8],
    },
    /// The format version is not [`VERSION`].
    #[error("kv snapshot: unsupported version {version} (this build reads {VERSION})")]
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// A record claims a key longer than the limit.
    #[error("kv snapshot: key of {len} bytes at offset {offset} is over the limit of {limit}")]
    KeyTooLong {
        /// Where the record starts.
        offset: u64,
        /// The claimed length.
        len: u32,
        /// The limit in force.
        limit: u32,
    },
    /// A record claims a value longer than the limit.
    #[error("kv snapshot: value of {len} bytes at offset {offset} is over the limit of {limit}")]
    ValueTooLong {
        /// Where the record starts.
        offset: u64,
        /// The claimed length.
        len: u32,
        /// The limit in force.
        limit: u32,
    },
    /// A record's key is empty or not UTF-8.
    #[error("kv snapshot: invalid key at offset {offset} (empty or not UTF-8)")]
    InvalidKey {
        /// Where the record starts.
        offset: u64,
    },
    /// A record's key is not above the previous one: the writer emits keys sorted and unique.
    #[error("kv snapshot: key at offset {offset} is out of order or repeated")]
    KeyOutOfOrder {
        /// Where the record starts.
        offset: u64,
    },
    /// A revision that no applied entry could have written: 0, or above the applied index.
    #[error("kv snapshot: revision {revision} at offset {offset} is outside 1..={applied}")]
    RevisionOutOfRange {
        /// Where the record starts.
        offset: u64,
        /// The revision found.
        revision: u64,
        /// The snapshot's applied index.
        applied: u64,
    },
    /// The trailer does not match the bytes before it.
    #[error("kv snapshot: checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    ChecksumMismatch {
        /// The checksum in the trailer.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// Bytes follow the trailer.
    #[error("kv snapshot: unexpected bytes after the trailer at offset {offset}")]
    TrailingBytes {
        /// Where the trailer ended.
        offset: u64,
    },
}

impl KvStore {
    /// Writes the whole store to `w` in the format above, record by record through a small
    /// buffer, and flushes it. The caller makes the result durable (sync, rename).
    pub fn write_snapshot(&self, w: impl Write) -> io::Result<()> {
        let mut out = CrcWriter {
            inner: BufWriter::new(w),
            crc: crc32fast::Hasher::new(),
        };
        out.put(&MAGIC)?;
        out.put(&VERSION.to_le_bytes())?;
        out.put(&self.applied_index().to_le_bytes())?;
        out.put(&(self.len() as u64).to_le_bytes())?;
        for (key, value) in self.iter() {
            out.put(&length(key.len(), "key")?.to_le_bytes())?;
            out.put(key.as_bytes())?;
            out.put(&value.revision.to_le_bytes())?;
            out.put(&length(value.data.len(), "value")?.to_le_bytes())?;
            out.put(&value.data)?;
        }
        let crc = out.crc.finalize();
        out.inner.write_all(&crc.to_le_bytes())?;
        out.inner.flush()
    }

    /// Reads a store written by [`write_snapshot`](Self::write_snapshot). Any byte stream gives
    /// a store or a [`SnapshotError`], never a panic; each record's allocation is bounded by
    /// `limits`, and the record count is not trusted for any allocation.
    pub fn read_snapshot(r: impl Read, limits: SnapshotLimits) -> Result<KvStore, SnapshotError> {
        let mut input = CrcReader {
            inner: BufReader::new(r),
            crc: crc32fast::Hasher::new(),
            offset: 0,
        };
        let found: [u8; 8] = input.array()?;
        if found != MAGIC {
            return Err(SnapshotError::BadMagic { found });
        }
        let version = u32::from_le_bytes(input.array()?);
        if version != VERSION {
            return Err(SnapshotError::UnsupportedVersion { version });
        }
        let applied = u64::from_le_bytes(input.array()?);
        let count = u64::from_le_bytes(input.array()?);
        let mut map = BTreeMap::new();
        let mut previous: Option<String> = None;
        for _ in 0..count {
            let record = read_record(&mut input, limits, applied)?;
            // Sorted, unique keys make the stream canonical (one map, one snapshot) and keep a
            // repeated key from silently replacing an earlier record.
            if previous.as_ref().is_some_and(|p| *p >= record.key) {
                return Err(SnapshotError::KeyOutOfOrder {
                    offset: record.offset,
                });
            }
            previous = Some(record.key.clone());
            map.insert(record.key, record.value);
        }
        let computed = input.crc.clone().finalize();
        let stored = u32::from_le_bytes(input.array()?);
        if stored != computed {
            return Err(SnapshotError::ChecksumMismatch { stored, computed });
        }
        input.expect_end()?;
        Ok(KvStore::from_parts(map, applied))
    }
}

/// One key and its value as read from the stream.
struct Record {
    /// Where the record starts, for error messages.
    offset: u64,
    key: String,
    value: Value,
}

/// Reads one record, checking each length before allocating for it.
fn read_record<R: Read>(
    input: &mut CrcReader<R>,
    limits: SnapshotLimits,
    applied: u64,
) -> Result<Record, SnapshotError> {
    let offset = input.offset;
    let key_len = u32::from_le_bytes(input.array()?);
    if key_len > limits.max_key_len {
        return Err(SnapshotError::KeyTooLong {
            offset,
            len: key_len,
            limit: limits.max_key_len,
        });
    }
    let key = input.vec(key_len)?;
    let key = match String::from_utf8(key) {
        Ok(key) if !key.is_empty() => key,
        _ => return Err(SnapshotError::InvalidKey { offset }),
    };
    let revision = u64::from_le_bytes(input.array()?);
    if revision == 0 || revision > applied {
        return Err(SnapshotError::RevisionOutOfRange {
            offset,
            revision,
            applied,
        });
    }
    let value_len = u32::from_le_bytes(input.array()?);
    if value_len > limits.max_value_len {
        return Err(SnapshotError::ValueTooLong {
            offset,
            len: value_len,
            limit: limits.max_value_len,
        });
    }
    let data = Bytes::from(input.vec(value_len)?);
    Ok(Record {
        offset,
        key,
        value: Value { data, revision },
    })
}

/// A length as the format's u32. Keys and values that large never pass the request limits; if
/// one did, refusing to write beats writing a snapshot that cannot be read back.
fn length(len: usize, what: &str) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("kv snapshot: a {what} of {len} bytes does not fit the format"),
        )
    })
}

/// A writer that checksums what passes through it.
struct CrcWriter<W: Write> {
    inner: BufWriter<W>,
    crc: crc32fast::Hasher,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.inner.write_all(bytes)
    }
}

/// A reader that checksums what it reads and knows its offset, for error messages.
struct CrcReader<R: Read> {
    inner: BufReader<R>,
    crc: crc32fast::Hasher,
    offset: u64,
}

impl<R: Read> CrcReader<R> {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), SnapshotError> {
        let offset = self.offset;
        self.inner.read_exact(buf).map_err(|source| {
            if source.kind() == io::ErrorKind::UnexpectedEof {
                SnapshotError::Truncated { offset }
            } else {
                SnapshotError::Io { offset, source }
            }
        })?;
        self.crc.update(buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut buf = [0; N];
        self.fill(&mut buf)?;
        Ok(buf)
    }

    /// Reads `len` bytes; the caller has checked `len` against a limit.
    fn vec(&mut self, len: u32) -> Result<Vec<u8>, SnapshotError> {
        let mut buf = vec![0; len as usize];
        self.fill(&mut buf)?;
        Ok(buf)
    }

    fn expect_end(&mut self) -> Result<(), SnapshotError> {
        let mut probe = [0u8; 1];
        loop {
            return match self.inner.read(&mut probe) {
                Ok(0) => Ok(()),
                Ok(_) => Err(SnapshotError::TrailingBytes {
                    offset: self.offset,
                }),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => Err(SnapshotError::Io {
                    offset: self.offset,
                    source,
                }),
            };
        }
    }
}
