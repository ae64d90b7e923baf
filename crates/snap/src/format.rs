//! The bytes of a snapshot file: a fixed 56-byte header, the caller's metadata, the data.
//!
//! ```text
//!  offset  size  field
//!  ------  ----  -----------------------------------------------------------
//!       0     8  magic            "RAFTWSNP"
//!       8     4  format version   u32 little-endian, 2
//!      12     4  crc              u32 little-endian, CRC-32 (IEEE) of the whole
//!                                 file with these 4 bytes read as zero
//!      16     8  index            u64 little-endian, last included index
//!      24     8  term             u64 little-endian, last included term
//!      32     8  metadata_len     u64 little-endian (M)
//!      40     8  data_len         u64 little-endian (D)
//!      48     4  head_crc         u32 little-endian, CRC-32 (IEEE) of bytes 0..48 with
//!                                 the crc field read as zero, followed by the metadata
//!      52     4  reserved         zero
//!      56     M  metadata         the caller's bytes (e.g. the membership)
//!    56+M     D  data             the caller's bytes (the state machine)
//!  file size = 56 + M + D, exactly
//! ```
//!
//! `head_crc` lets a reader trust the header and the metadata as soon as it has read them, before
//! the data (a node reads the membership from the metadata); `crc` covers the whole file, so the
//! data is trusted once it has been read to the end.
//!
//! The checksum covers the header fields too, so a flipped bit in `index` or a length is caught
//! even where the file-name check or the size check would not catch it. The header comes first
//! (not a trailer) so a reader can check the lengths against the file's size before it allocates
//! anything, and so a streaming writer only has to patch 56 bytes at a known offset when it is
//! done.
//!
//! ```
//! use raftwood_snap::{format, SnapshotId};
//!
//! let id = SnapshotId { index: 7, term: 2 };
//! let bytes = format::encode_to_vec(id, b"members: 1,2,3", b"the state");
//! assert_eq!(bytes.len(), format::HEADER_LEN + 14 + 9);
//! let snap = format::decode(&bytes).unwrap();
//! assert_eq!((snap.id, &snap.metadata[..], &snap.data[..]), (id, &b"members: 1,2,3"[..], &b"the state"[..]));
//! ```
//!
//! Non-goals: compression, encryption, and splitting a snapshot over several files.

use std::path::PathBuf;

use crc32fast::Hasher;

use crate::error::{Corruption, Error};
use crate::id::SnapshotId;
use crate::reader::SnapshotReader;

/// The first 8 bytes of every snapshot file.
pub const MAGIC: [u8; 8] = *b"RAFTWSNP";

/// The format version this build writes and the only one it reads.
///
/// Version 2 added `head_crc`; version 1 was never released and is not read.
pub const FORMAT_VERSION: u32 = 2;

/// The size of the fixed header, in bytes.
pub const HEADER_LEN: usize = 56;

/// Where the crc field sits in the header.
const CRC_RANGE: std::ops::Range<usize> = 12..16;

/// A decoded header: which snapshot, how long its two parts are, and the stored checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Which snapshot the file holds.
    pub id: SnapshotId,
    /// The length of the metadata, in bytes.
    pub metadata_len: u64,
    /// The length of the data, in bytes.
    pub data_len: u64,
    /// The stored CRC-32 (see the module docs for what it covers).
    pub crc: u32,
    /// The stored CRC-32 of the header's first 48 bytes (crc field as zero) and the metadata.
    pub head_crc: u32,
}

impl Header {
    /// The header's 56 bytes, with the crc field as stored in `self.crc`.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[CRC_RANGE].copy_from_slice(&self.crc.to_le_bytes());
        b[16..24].copy_from_slice(&self.id.index.to_le_bytes());
        b[24..32].copy_from_slice(&self.id.term.to_le_bytes());
        b[32..40].copy_from_slice(&self.metadata_len.to_le_bytes());
        b[40..48].copy_from_slice(&self.data_len.to_le_bytes());
        b[48..52].copy_from_slice(&self.head_crc.to_le_bytes());
        b
    }

    /// Decodes and checks the magic and the version. The lengths are checked against the file's
    /// size by [`Header::check_file_len`], the checksum only once the whole file has been read.
    ///
    /// ```
    /// use raftwood_snap::format::{Header, HEADER_LEN};
    /// use raftwood_snap::{Corruption, SnapshotId};
    ///
    /// let h = Header {
    ///     id: SnapshotId { index: 3, term: 1 },
    ///     metadata_len: 0,
    ///     data_len: 5,
    ///     crc: 9,
    ///     head_crc: 7,
    /// };
    /// assert_eq!(Header::decode(&h.encode()), Ok(h));
    /// assert_eq!(Header::decode(&[0u8; HEADER_LEN]), Err(Corruption::BadMagic));
    /// ```
    pub fn decode(b: &[u8; HEADER_LEN]) -> Result<Header, Corruption> {
        if b[0..8] != MAGIC {
            return Err(Corruption::BadMagic);
        }
        let version = u32::from_le_bytes(array(&b[8..12]));
        if version != FORMAT_VERSION {
            return Err(Corruption::UnsupportedVersion { version });
        }
        if b[52..56] != [0; 4] {
            return Err(Corruption::Reserved);
        }
        Ok(Header {
            crc: u32::from_le_bytes(array(&b[CRC_RANGE])),
            id: SnapshotId {
                index: u64::from_le_bytes(array(&b[16..24])),
                term: u64::from_le_bytes(array(&b[24..32])),
            },
            metadata_len: u64::from_le_bytes(array(&b[32..40])),
            data_len: u64::from_le_bytes(array(&b[40..48])),
            head_crc: u32::from_le_bytes(array(&b[48..52])),
        })
    }

    /// The `head_crc` of this header with `metadata`: CRC-32 of the header's bytes 0..48 (crc
    /// field as zero), then the metadata.
    pub fn compute_head_crc(&self, metadata: &[u8]) -> u32 {
        let mut h = self.crc_hasher_of_first_48();
        h.update(metadata);
        h.finalize()
    }

    /// Checks `head_crc` against the metadata read: after this, the header and the metadata can be
    /// trusted, before any data is read.
    pub fn check_head(&self, metadata: &[u8]) -> Result<(), Corruption> {
        let computed = self.compute_head_crc(metadata);
        if computed == self.head_crc {
            Ok(())
        } else {
            Err(Corruption::HeadChecksumMismatch {
                stored: self.head_crc,
                computed,
            })
        }
    }

    /// Checks that header + metadata + data is exactly `file_len` bytes, without overflowing on
    /// hostile lengths. This is what makes it safe to allocate `metadata_len` and `data_len`.
    pub fn check_file_len(&self, file_len: u64) -> Result<(), Corruption> {
        let expected = (HEADER_LEN as u64)
            .checked_add(self.metadata_len)
            .and_then(|n| n.checked_add(self.data_len));
        if expected == Some(file_len) {
            Ok(())
        } else {
            Err(Corruption::LengthMismatch {
                metadata_len: self.metadata_len,
                data_len: self.data_len,
                file_len,
            })
        }
    }

    /// A hasher that has consumed the header's bytes 0..48 with the crc field read as zero: the
    /// start of `head_crc`, to be continued over the metadata.
    pub(crate) fn crc_hasher_of_first_48(&self) -> Hasher {
        let mut b = self.encode();
        b[CRC_RANGE].fill(0);
        let mut h = Hasher::new();
        h.update(&b[..48]);
        h
    }

    /// A hasher that has consumed this header with its crc field read as zero: the start of the
    /// file's checksum, to be continued over the metadata and the data.
    pub fn crc_hasher(&self) -> Hasher {
        let mut b = self.encode();
        b[CRC_RANGE].fill(0);
        let mut h = Hasher::new();
        h.update(&b);
        h
    }
}

/// Copies a slice of known length into an array (the ranges above are constant, so this never
/// fails; a zero-filled array is returned rather than panicking if it ever did).
fn array<const N: usize>(s: &[u8]) -> [u8; N] {
    s.try_into().unwrap_or([0; N])
}

/// A whole snapshot in memory, as returned by [`crate::Store::load`] and [`decode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Which snapshot this is.
    pub id: SnapshotId,
    /// The caller's metadata, as saved.
    pub metadata: Vec<u8>,
    /// The caller's data, as saved.
    pub data: Vec<u8>,
}

/// Encodes a whole snapshot file in memory. The store streams instead (see
/// [`crate::SnapshotWriter`]); this is for tests, fuzz seeds and sending a small snapshot over a
/// wire.
pub fn encode_to_vec(id: SnapshotId, metadata: &[u8], data: &[u8]) -> Vec<u8> {
    let mut header = Header {
        id,
        metadata_len: metadata.len() as u64,
        data_len: data.len() as u64,
        crc: 0,
        head_crc: 0,
    };
    header.head_crc = header.compute_head_crc(metadata);
    let mut h = header.crc_hasher();
    h.update(metadata);
    h.update(data);
    header.crc = h.finalize();
    let mut out = Vec::with_capacity(HEADER_LEN + metadata.len() + data.len());
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(metadata);
    out.extend_from_slice(data);
    out
}

/// Decodes and verifies a whole snapshot file held in memory. This is the same decoder the store
/// reads files with (a [`SnapshotReader`] over the slice), and what the `snap_decode` fuzz target
/// exercises: it never panics, and it allocates at most `bytes.len()` bytes for the snapshot
/// (plus a few for the error's placeholder path `<bytes>`).
///
/// ```
/// use raftwood_snap::{format, Corruption};
///
/// let err = format::decode(b"RAFTWSNP").unwrap_err();
/// assert_eq!(err.corruption(), Some(&Corruption::TooShort { len: 8 }));
/// ```
pub fn decode(bytes: &[u8]) -> Result<Snapshot, Error> {
    let path = PathBuf::from("<bytes>");
    let mut reader = SnapshotReader::new(bytes, bytes.len() as u64, path)?;
    let mut data = Vec::new();
    // `read_to_end` on the reader maps a bad checksum to an `io::Error`; read through the typed
    // path instead so the caller gets `Error::Corrupt`.
    reader.read_data_into(&mut data)?;
    Ok(Snapshot {
        id: reader.id(),
        metadata: reader.into_metadata(),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        encode_to_vec(SnapshotId { index: 9, term: 2 }, b"meta", b"some data here")
    }

    #[test]
    fn round_trip() {
        let s = decode(&sample()).unwrap();
        assert_eq!(s.id, SnapshotId { index: 9, term: 2 });
        assert_eq!(s.metadata, b"meta");
        assert_eq!(s.data, b"some data here");
    }

    #[test]
    fn empty_parts_round_trip() {
        let id = SnapshotId { index: 1, term: 1 };
        let s = decode(&encode_to_vec(id, b"", b"")).unwrap();
        assert_eq!((s.id, s.metadata.len(), s.data.len()), (id, 0, 0));
    }

    /// toydb's test, for one file: every prefix of a valid file is an explicit error.
    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample();
        for len in 0..bytes.len() {
            let err = decode(&bytes[..len]).unwrap_err();
            assert!(err.corruption().is_some(), "len {len}: {err}");
        }
    }

    /// Every single-bit flip anywhere in the file is caught (magic, version, lengths, ids, crc,
    /// metadata, data).
    #[test]
    fn every_bit_flip_is_an_error() {
        let bytes = sample();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(
                    decode(&b).is_err(),
                    "flip of bit {bit} at byte {i} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn appended_bytes_are_an_error() {
        let mut b = sample();
        b.push(0);
        assert!(matches!(
            decode(&b).unwrap_err().corruption(),
            Some(Corruption::LengthMismatch { .. })
        ));
    }

    #[test]
    fn hostile_lengths_do_not_overflow_or_allocate() {
        let h = Header {
            id: SnapshotId { index: 1, term: 1 },
            metadata_len: u64::MAX,
            data_len: 2,
            crc: 0,
            head_crc: 0,
        };
        let err = decode(&h.encode()).unwrap_err();
        assert!(matches!(
            err.corruption(),
            Some(Corruption::LengthMismatch { .. })
        ));
    }

    #[test]
    fn wrong_version_is_named() {
        let mut b = sample();
        b[8] = 3;
        assert_eq!(
            decode(&b).unwrap_err().corruption(),
            Some(&Corruption::UnsupportedVersion { version: 3 })
        );
    }

    #[test]
    fn checksum_mismatch_is_named() {
        let mut b = sample();
        let last = b.len() - 1;
        b[last] ^= 0xff;
        let err = decode(&b).unwrap_err();
        assert!(matches!(
            err.corruption(),
            Some(Corruption::ChecksumMismatch { .. })
        ));
        assert!(
            err.to_string().starts_with("<bytes>: checksum mismatch"),
            "{err}"
        );
    }
}
