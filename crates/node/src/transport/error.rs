//! What can go wrong in the TCP transport, with the peer or address it concerns. Only
//! [`TransportError`] reaches the caller (from [`super::TcpTransport::start`]); the others are
//! logged by the thread that met them, which then closes the connection.

use std::net::SocketAddr;

use raftwood_raft::NodeId;

use crate::codec::CodecError;

/// Why the transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// An initial peer's URL is not a `http://host:port` peer URL.
    #[error("peer {id}: {source}")]
    PeerUrl {
        /// The peer whose URL it is.
        id: NodeId,
        /// What is wrong with it.
        source: UrlError,
    },
    /// A configuration value is out of range.
    #[error("invalid transport configuration: {0}")]
    Config(String),
    /// A thread could not be started.
    #[error("cannot start a transport thread: {0}")]
    Spawn(std::io::Error),
}

/// Why a peer URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `http://`: the transport speaks plain TCP and takes raftexample's URL form.
    #[error("peer URL {0:?} does not start with http://")]
    Scheme(String),
    /// No host, no port, a port of 0 or out of range, or a path, query or user part.
    #[error("peer URL {0:?} is not of the form http://host:port")]
    Shape(String),
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length field claims more than the maximum frame size (checked before allocating).
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    Oversize {
        /// The claimed length.
        len: u64,
        /// The configured maximum.
        max: usize,
    },
    /// A length of zero: a frame holds at least its kind byte.
    #[error("empty frame (length 0)")]
    Empty,
    /// The checksum does not match the bytes.
    #[error("frame checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// The checksum in the frame header.
        stored: u32,
        /// The checksum of the bytes received.
        computed: u32,
    },
    /// A kind byte no version of the protocol defines.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The payload does not decode as its kind says.
    #[error("frame payload: {0}")]
    Payload(#[from] CodecError),
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The first bytes are not the transport's magic: not a raftwood peer.
    #[error("bad magic {0:02x?}: not a raftwood peer")]
    Magic([u8; 4]),
    /// A protocol version this build does not speak.
    #[error("unsupported protocol version {0}")]
    Version(u16),
    /// A reserved byte is not zero.
    #[error("reserved handshake bytes are not zero")]
    Reserved,
    /// A reply status no version defines.
    #[error("unknown handshake status {0}")]
    Status(u8),
}

/// Why a snapshot could not be reassembled.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The header claims more than the configured maximum snapshot size.
    #[error("snapshot of {claimed} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The claimed total.
        claimed: u64,
        /// The configured maximum.
        max: u64,
    },
    /// The header's message is not a snapshot, or carries data of its own.
    #[error("snapshot header does not hold an empty snapshot message")]
    BadHeader,
    /// A chunk would carry the snapshot past its announced length.
    #[error("snapshot chunk overruns the announced {total} bytes (have {have}, chunk {chunk})")]
    Overrun {
        /// The announced total.
        total: u64,
        /// Bytes received so far.
        have: u64,
        /// The chunk's length.
        chunk: usize,
    },
    /// A chunk arrived with no snapshot in progress, or another frame arrived mid-snapshot.
    #[error("{0} out of sequence")]
    Sequence(&'static str),
}

/// Why an inbound connection was closed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("peer closed the connection{}", if *.0 { " in the middle of a frame" } else { "" })]
    Closed(bool),
    #[error("no complete frame within {0:?} of its first byte (slow or stalled peer)")]
    Stalled(std::time::Duration),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("{0}")]
    Handshake(#[from] HandshakeError),
    #[error("{0}")]
    Snapshot(#[from] SnapshotError),
    #[error("message {0} does not belong on this connection")]
    Misaddressed(String),
    #[error("handshake refused")]
    Refused,
    #[error("transport shutting down")]
    Stopped,
}
