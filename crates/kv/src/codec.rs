//! The crate's one codec: every value the key-value service turns into bytes for raft (the
//! [`Command`](crate::Command) inside a log entry) goes through [`encode`] and comes back through
//! [`decode`]. bincode is pinned at 2.0.1 (it is unmaintained after it); keeping it behind these
//! two functions means replacing it touches one file. The crate keeps its own pair rather than
//! borrowing `raftwood-node`'s so that the format of the state machine's commands is the
//! state machine's business, not the transport's.
//!
//! ```
//! use raftwood_kv::codec;
//!
//! let bytes = codec::encode(&(7u64, String::from("k")));
//! let back: (u64, String) = codec::decode(&bytes, "pair").unwrap();
//! assert_eq!(back, (7, "k".to_string()));
//! // A valid value followed by a stray byte is rejected, not silently truncated.
//! let mut longer = bytes.clone();
//! longer.push(0);
//! assert!(codec::decode::<(u64, String)>(&longer, "pair").is_err());
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why bytes could not be turned back into a value.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not a valid encoding of the expected type (or ask for more memory than
    /// [`DECODE_LIMIT`] allows).
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

/// The most a decoder may allocate for one value, and so the largest command [`decode`] accepts.
/// bincode checks every length it reads against this budget before allocating, so a length field
/// in a log entry can make it allocate at most this much, whatever it claims. It matches the
/// node crate's frame limit: a command travels inside a raft entry inside a transport frame, so a
/// larger one could not be replicated anyway.
pub const DECODE_LIMIT: usize = 16 << 20;

/// The configuration both directions share: fixed-width little-endian integers (an encoding's
/// layout depends only on its shape, so the book's byte diagrams can be read by counting), and
/// the allocation budget above.
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
/// encodes (no maps, no unsized sequences); a failure is a bug, reported as a panic naming the
/// type.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    match bincode::serde::encode_to_vec(value, config()) {
        Ok(bytes) => bytes,
        Err(e) => panic!(
            "invariant violated: encoding a {} cannot fail: {e}",
            std::any::type_name::<T>()
        ),
    }
}

/// Decodes a `T` from all of `bytes`; `what` names the thing for the error message. No length
/// field inside `bytes` can make the decoder allocate more than [`DECODE_LIMIT`], and bytes left
/// over after the value are an error.
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
