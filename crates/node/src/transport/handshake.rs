//! The handshake that opens every peer connection, before any frame.
//!
//! The dialer sends a hello (32 bytes); the acceptor answers with a reply (8 bytes) and, unless
//! it accepted, closes the connection. After an accepted handshake only the dialer writes:
//! frames flow one way, so each direction of a peer pair is its own connection, as in etcd.
//!
//! ```text
//! hello:  0      4         6          8            16       24     32
//!         +------+---------+----------+------------+--------+------+
//!         | RWPT | version | reserved | cluster id | from   | to   |
//!         +------+---------+----------+------------+--------+------+
//!                  u16 LE    0u16       u64 LE       u64 LE   u64 LE
//!
//! reply:  0      4         6        7          8
//!         +------+---------+--------+----------+
//!         | RWPT | version | status | reserved |
//!         +------+---------+--------+----------+
//! ```
//!
//! `to` is the id the dialer believes it reached: a URL pointing at the wrong node is caught
//! here instead of delivering messages to a stranger.

use raftwood_raft::NodeId;

use super::error::HandshakeError;

/// The first four bytes of both handshake messages.
pub const MAGIC: [u8; 4] = *b"RWPT";
/// The protocol version this build speaks.
pub const VERSION: u16 = 1;
/// The length of a [`Hello`].
pub const HELLO_LEN: usize = 32;
/// The length of a reply.
pub const REPLY_LEN: usize = 8;

/// The default cluster token (etcd's `--initial-cluster-token` defaults to `etcd-cluster`).
pub const DEFAULT_CLUSTER_TOKEN: &str = "raftwood-cluster";

/// The cluster id of a cluster token: 64-bit FNV-1a of its bytes. It is derived from the token
/// and not from the member URLs (as etcd does too) so that a member added later, whose URL no
/// original member's list holds, still computes the same id, and two clusters started from the
/// same URL list with different tokens cannot talk to each other by accident.
///
/// ```
/// use raftwood_node::transport::cluster_id;
/// assert_eq!(cluster_id(""), 0xcbf2_9ce4_8422_2325);
/// assert_ne!(cluster_id("a"), cluster_id("b"));
/// ```
pub fn cluster_id(token: &str) -> u64 {
    token.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What a dialer says first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The dialer's cluster id ([`cluster_id`]).
    pub cluster_id: u64,
    /// The dialer's node id.
    pub from: NodeId,
    /// The node id the dialer meant to reach.
    pub to: NodeId,
}

impl Hello {
    /// The hello's bytes.
    pub fn encode(&self) -> [u8; HELLO_LEN] {
        let mut out = [0; HELLO_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&VERSION.to_le_bytes());
        out[8..16].copy_from_slice(&self.cluster_id.to_le_bytes());
        out[16..24].copy_from_slice(&self.from.to_le_bytes());
        out[24..32].copy_from_slice(&self.to.to_le_bytes());
        out
    }

    /// Reads a hello, refusing another protocol or version.
    pub fn decode(bytes: &[u8; HELLO_LEN]) -> Result<Hello, HandshakeError> {
        check_preamble(bytes[..6].try_into().unwrap_or_default())?;
        if bytes[6..8] != [0, 0] {
            return Err(HandshakeError::Reserved);
        }
        let word = |at: usize| {
            let mut w = [0; 8];
            w.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(w)
        };
        Ok(Hello {
            cluster_id: word(8),
            from: word(16),
            to: word(24),
        })
    }
}

fn check_preamble(bytes: [u8; 6]) -> Result<(), HandshakeError> {
    let [m0, m1, m2, m3, v0, v1] = bytes;
    if [m0, m1, m2, m3] != MAGIC {
        return Err(HandshakeError::Magic([m0, m1, m2, m3]));
    }
    match u16::from_le_bytes([v0, v1]) {
        VERSION => Ok(()),
        other => Err(HandshakeError::Version(other)),
    }
}

/// The acceptor's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// Frames may follow.
    Accepted = 0,
    /// The dialer belongs to another cluster (another token).
    ForeignCluster = 1,
    /// The dialer's id is not a member this node knows.
    UnknownSender = 2,
    /// The dialer was removed from the cluster: it should stop (etcd's removed members exit).
    Removed = 3,
    /// The dialer reached a node other than the one it meant (a misconfigured URL).
    WrongRecipient = 4,
}

impl Status {
    /// The reply's bytes.
    pub fn encode(self) -> [u8; REPLY_LEN] {
        let mut out = [0; REPLY_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&VERSION.to_le_bytes());
        out[6] = self as u8;
        out
    }

    /// Reads a reply.
    pub fn decode(bytes: &[u8; REPLY_LEN]) -> Result<Status, HandshakeError> {
        check_preamble(bytes[..6].try_into().unwrap_or_default())?;
        if bytes[7] != 0 {
            return Err(HandshakeError::Reserved);
        }
        Ok(match bytes[6] {
            0 => Status::Accepted,
            1 => Status::ForeignCluster,
            2 => Status::UnknownSender,
            3 => Status::Removed,
            4 => Status::WrongRecipient,
            other => return Err(HandshakeError::Status(other)),
        })
    }
}

/// The acceptor's decision on a hello, given what it knows of the membership: `is_member`
/// (initial peers and peers added since) and `is_removed` (peers removed since). A removed id
/// is told so even though it is no longer a member: that is how it learns to stop.
pub fn judge(
    hello: &Hello,
    own_id: NodeId,
    own_cluster: u64,
    is_member: impl Fn(NodeId) -> bool,
    is_removed: impl Fn(NodeId) -> bool,
) -> Status {
    if hello.cluster_id != own_cluster {
        Status::ForeignCluster
    } else if hello.to != own_id {
        Status::WrongRecipient
    } else if is_removed(hello.from) {
        Status::Removed
    } else if !is_member(hello.from) || hello.from == own_id {
        Status::UnknownSender
    } else {
        Status::Accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_and_reply_round_trip() {
        let hello = Hello {
            cluster_id: cluster_id("t"),
            from: 3,
            to: u64::MAX,
        };
        assert_eq!(Hello::decode(&hello.encode()).unwrap(), hello);
        for status in [Status::Accepted, Status::Removed, Status::WrongRecipient] {
            assert_eq!(Status::decode(&status.encode()).unwrap(), status);
        }
    }

    #[test]
    fn garbage_is_refused() {
        assert!(matches!(
            Hello::decode(&[0x47; HELLO_LEN]),
            Err(HandshakeError::Magic(_))
        ));
        let mut other_version = Hello {
            cluster_id: 1,
            from: 1,
            to: 2,
        }
        .encode();
        other_version[4] = 2;
        assert!(matches!(
            Hello::decode(&other_version),
            Err(HandshakeError::Version(2))
        ));
        let mut bad_status = Status::Accepted.encode();
        bad_status[6] = 200;
        assert!(matches!(
            Status::decode(&bad_status),
            Err(HandshakeError::Status(200))
        ));
    }

    #[test]
    fn judge_checks_cluster_recipient_removal_then_membership() {
        let c = cluster_id(DEFAULT_CLUSTER_TOKEN);
        let hello = |cluster_id, from, to| Hello {
            cluster_id,
            from,
            to,
        };
        let members = |id| id == 2 || id == 3;
        let removed = |id| id == 4;
        let judge = |h: Hello| judge(&h, 1, c, members, removed);
        assert_eq!(judge(hello(c, 2, 1)), Status::Accepted);
        assert_eq!(judge(hello(c + 1, 2, 1)), Status::ForeignCluster);
        assert_eq!(judge(hello(c, 2, 5)), Status::WrongRecipient);
        assert_eq!(judge(hello(c, 4, 1)), Status::Removed);
        assert_eq!(judge(hello(c, 9, 1)), Status::UnknownSender);
        assert_eq!(judge(hello(c, 1, 1)), Status::UnknownSender);
    }
}
