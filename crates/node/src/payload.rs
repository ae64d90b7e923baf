//! The node's own layer in every raft snapshot it creates: the peer URL of every member as of the
//! snapshot's index, around the application's bytes. A node that restores from a snapshot (a
//! restart after compaction, a follower the leader sends one to) no longer has the conf changes
//! that carried those URLs in their context; without this layer it could never dial members
//! added before the snapshot.
//!
//! # Format
//! ```text
//! +---------+------------------+-----------------------------+------------------------+
//! | version | members_len      | members                     | app                    |
//! | 1 byte  | u32 little-end.  | members_len bytes:          | the rest: the bytes    |
//! | = 1     |                  | codec::encode(BTreeMap<     | the application's     |
//! |         |                  |   NodeId, String>)          | GetSnapshot returned   |
//! +---------+------------------+-----------------------------+------------------------+
//! ```
//! The members go through the crate's codec ([`crate::codec`]); the application's bytes follow
//! raw, so that a state of any size is neither copied through bincode nor held to its
//! [`crate::codec::DECODE_LIMIT`], and is handed back as a slice of the snapshot's buffer.
//!
//! The application never sees this layer: [`crate::Apply::Snapshot`] carries its own bytes.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use raftwood_raft::{Index, NodeId};

/// The only version written and read.
pub const PAYLOAD_VERSION: u8 = 1;

/// Every member's peer URL, by id.
pub type Members = BTreeMap<NodeId, String>;

/// A raft snapshot's data, as the node reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotPayload {
    /// The peer URL of every member as of the snapshot's index.
    pub members: Members,
    /// The application's state ([`crate::GetSnapshot`]'s bytes).
    pub app: Bytes,
}

/// A snapshot's data is not a node payload. It reached the node through a checksummed store or
/// a crc-checked frame, so this means a bug or a node of another version: the node stops.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("snapshot at index {index}: its node payload does not decode: {reason}")]
pub struct PayloadError {
    /// The snapshot's index.
    pub index: Index,
    /// What is wrong with it.
    pub reason: String,
}

impl SnapshotPayload {
    /// The bytes of the format above.
    pub fn encode(&self) -> Bytes {
        let members = crate::codec::encode(&self.members);
        let len = u32::try_from(members.len())
            .expect("invariant: a member list encodes to far less than 4 GiB");
        let mut out = BytesMut::with_capacity(5 + members.len() + self.app.len());
        out.put_u8(PAYLOAD_VERSION);
        out.put_u32_le(len);
        out.put_slice(&members);
        out.put_slice(&self.app);
        out.freeze()
    }

    /// Reads the data of the snapshot at `index`.
    pub fn decode(index: Index, data: &Bytes) -> Result<SnapshotPayload, PayloadError> {
        let fail = |reason: String| PayloadError { index, reason };
        let (&version, rest) = data
            .split_first()
            .ok_or_else(|| fail("empty".to_string()))?;
        if version != PAYLOAD_VERSION {
            return Err(fail(format!(
                "version {version}, expected {PAYLOAD_VERSION}"
            )));
        }
        let len_bytes: [u8; 4] = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| fail("truncated length".to_string()))?;
        let len = u32::from_le_bytes(len_bytes) as usize;
        let members_bytes = rest
            .get(4..)
            .and_then(|r| r.get(..len))
            .ok_or_else(|| fail(format!("members claim {len} bytes, past the end")))?;
        let members: Members = crate::codec::decode(members_bytes, "snapshot members")
            .map_err(|e| fail(e.to_string()))?;
        Ok(SnapshotPayload {
            members,
            app: data.slice(5 + len..),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_a_payload() {
        let p = SnapshotPayload {
            members: [(1, "http://a:1".to_string()), (4, "http://d:4".to_string())].into(),
            app: Bytes::from_static(b"state"),
        };
        let bytes = p.encode();
        assert_eq!(SnapshotPayload::decode(7, &bytes), Ok(p));
        for bad in [
            Bytes::new(),
            Bytes::from_static(b"state"),
            Bytes::from_static(&[1, 0xff, 0xff, 0xff, 0x7f, 0]),
            bytes.slice(..8),
        ] {
            let e = SnapshotPayload::decode(7, &bad).unwrap_err();
            assert_eq!(e.index, 7);
        }
    }
}
