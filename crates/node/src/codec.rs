//! The crate's one codec: every value this crate turns into bytes (WAL records, transport frames)
//! goes through [`encode`] and comes back through [`decode`]. bincode is pinned at 2.0.1 (it is
//! unmaintained after it); keeping it behind these two functions means replacing it touches one
//! file.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why bytes could not be turned back into a value.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not a valid encoding of the expected type (or ask for more memory than the
    /// limit allows).
    #[error("malformed {what}: {source}")]
    Malformed {
        /// What was being decoded, for the message.
        what: &'static str,
        /// bincode's account of the problem.
        source: bincode::error::DecodeError,
    },
    /// The bytes hold a valid value followed by bytes that belong to nothing.
    #[error("malformed {what}: {extra} trailing bytes")]
    Trailing {
        /// What was being decoded.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
}

/// The most a decoder may allocate for one value, and so the largest value [`decode`] accepts.
/// bincode checks every length it reads against this budget before allocating, so a length
/// field from the network or the disk can make it allocate at most this much, whatever it
/// claims. Transport frames and WAL records are far smaller (snapshots travel in chunks).
pub const DECODE_LIMIT: usize = 16 << 20;

/// The configuration both directions share: fixed-width little-endian integers (a frame's size
/// depends only on its shape, and a reader of the byte diagrams in the book can find a field by
/// counting), and the allocation budget above.
fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Fixint,
    bincode::config::Limit<DECODE_LIMIT>,
> {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<DECODE_LIMIT>()
}

/// Encodes `value`. Encoding into memory cannot fail for the serde-derived types this crate
/// encodes (no maps with non-string keys, no unsized sequences); a failure is a bug, reported as
/// a panic with the type's name.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    match bincode::serde::encode_to_vec(value, config()) {
        Ok(bytes) => bytes,
        Err(e) => panic!("encoding a {} cannot fail: {e}", std::any::type_name::<T>()),
    }
}

/// Decodes a `T` from all of `bytes`. `what` names the thing for the error message. No length
/// field inside `bytes` can make the decoder allocate more than [`DECODE_LIMIT`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, CodecError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|source| CodecError::Malformed { what, source })?;
    if read != bytes.len() {
        return Err(CodecError::Trailing {
            what,
            extra: bytes.len() - read,
        });
    }
    Ok(value)
}
