//! The accepting side: one listener thread, and one reader thread per inbound connection that
//! judges the handshake, then reads frames and hands whole messages (snapshots reassembled) to
//! the loop. Every way a peer can misbehave (garbage, oversize or truncated frames, stalling
//! mid-frame, vanishing) ends in a log line and a closed connection, never a panic; memory per
//! connection is bounded by the maximum frame size, or the maximum snapshot size while a
//! snapshot is arriving, and grows only with bytes actually received.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use raftwood_raft::{Message, NodeId};

use super::TransportEvent;
use super::error::{ConnError, SnapshotError};
use super::frame::{FRAME_HEADER_LEN, Payload, check_body, parse_header};
use super::handshake::{HELLO_LEN, Hello, Status, judge};
use super::shared::{POLL, Shared};
use super::snapshot::Reassembly;

/// Runs the accept loop until the transport stops, then waits for its readers.
pub(crate) fn run(shared: Arc<Shared>, listener: TcpListener) {
    let live = Arc::new(AtomicUsize::new(0));
    let serial = AtomicU64::new(0);
    let mut readers: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopping() {
        let (stream, addr) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(POLL / 5);
                continue;
            }
            Err(e) => {
                // Running out of descriptors and the like: wait rather than spin.
                tracing::warn!("accept: {e}");
                std::thread::sleep(POLL);
                continue;
            }
        };
        readers.retain(|r| !r.is_finished());
        if live.load(Ordering::Acquire) >= shared.config.max_inbound {
            tracing::warn!(%addr, limit = shared.config.max_inbound, "too many inbound connections; refused");
            continue;
        }
        live.fetch_add(1, Ordering::AcqRel);
        let reader = Reader {
            shared: Arc::clone(&shared),
            addr,
            serial: serial.fetch_add(1, Ordering::Relaxed),
            live: Arc::clone(&live),
        };
        match std::thread::Builder::new()
            .name(format!("peer-reader-{addr}"))
            .spawn(move || reader.run(stream))
        {
            Ok(handle) => readers.push(handle),
            Err(e) => {
                tracing::error!(%addr, "cannot start a reader thread: {e}");
                live.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
    for reader in readers {
        if reader.join().is_err() {
            tracing::error!("peer reader thread panicked");
        }
    }
}

/// One inbound connection.
struct Reader {
    shared: Arc<Shared>,
    addr: SocketAddr,
    serial: u64,
    live: Arc<AtomicUsize>,
}

impl Reader {
    fn run(self, stream: TcpStream) {
        let mut peer = None;
        match self.serve(stream, &mut peer) {
            Err(ConnError::Stopped | ConnError::Refused) => {}
            Err(ConnError::Closed(false)) => {
                tracing::debug!(addr = %self.addr, ?peer, "peer closed its connection")
            }
            Err(e) => tracing::warn!(addr = %self.addr, ?peer, "inbound connection closed: {e}"),
            Ok(()) => {}
        }
        if let Some(peer) = peer {
            self.shared.close_inbound(peer, Some(self.serial));
        }
        self.live.fetch_sub(1, Ordering::AcqRel);
    }

    fn serve(&self, mut stream: TcpStream, peer: &mut Option<NodeId>) -> Result<(), ConnError> {
        stream.set_nonblocking(false)?;
        // Short timeouts, so the thread sees the stop flag; how long a peer may stall is
        // enforced per frame below.
        stream.set_read_timeout(Some(POLL))?;
        stream.set_write_timeout(Some(self.shared.config.io_timeout))?;
        let from = self.handshake(&mut stream)?;
        *peer = Some(from);
        let mut snapshot: Option<Reassembly> = None;
        let mut body = Vec::new();
        loop {
            let mut head = [0; FRAME_HEADER_LEN];
            self.read_exact(&mut stream, &mut head, None)?;
            let started = Instant::now();
            let header = parse_header(head, self.shared.config.max_frame_size)?;
            body.clear();
            self.read_body(&mut stream, &mut body, header.len, started)?;
            let frame = check_body(&header, &body)?;
            match (frame.decode()?, snapshot.take()) {
                (Payload::Message(m), None) => self.deliver(from, m)?,
                (Payload::SnapshotHeader(h), None) => {
                    let r = Reassembly::start(h, self.shared.config.max_snapshot_size)?;
                    snapshot = self.maybe_finish(from, r)?;
                }
                (Payload::SnapshotChunk(chunk), Some(mut r)) => {
                    r.push(chunk)?;
                    snapshot = self.maybe_finish(from, r)?;
                }
                (Payload::SnapshotChunk(_), None) => {
                    return Err(SnapshotError::Sequence("snapshot chunk").into());
                }
                (_, Some(_)) => {
                    return Err(SnapshotError::Sequence("frame inside a snapshot").into());
                }
            }
            // A frame's buffer can be as large as the maximum frame; keep one of a few MiB
            // (snapshot chunks reuse it), give a larger one back with the frame that needed it.
            if body.capacity() > 4 << 20 {
                body = Vec::new();
            }
        }
    }

    /// Reads and judges the hello, answers it, and registers the connection as the peer's one
    /// inbound connection (closing an older one). Registering happens under the membership
    /// lock, after checking again that the peer was not removed meanwhile: a concurrent
    /// `remove_peer` either finds and closes this connection or is seen here. (The reply is
    /// written outside the lock: a stalled dialer must not hold up the loop's `remove_peer`.)
    fn handshake(&self, stream: &mut TcpStream) -> Result<NodeId, ConnError> {
        let mut bytes = [0; HELLO_LEN];
        self.read_exact(stream, &mut bytes, Some(Instant::now()))?;
        let hello = Hello::decode(&bytes)?;
        let shared = &self.shared;
        let judged = |members: &super::shared::Members| {
            judge(
                &hello,
                shared.config.id,
                shared.cluster_id,
                |id| members.known.contains(&id),
                |id| members.removed.contains(&id),
            )
        };
        let status = judged(&shared.members.read());
        stream.write_all(&status.encode())?;
        if status != Status::Accepted {
            tracing::warn!(addr = %self.addr, from = hello.from, to = hello.to,
                cluster_id = format_args!("{:#018x}", hello.cluster_id), "refused peer: {status:?}");
            return Err(ConnError::Refused);
        }
        let members = shared.members.read();
        if judged(&members) != Status::Accepted {
            return Err(ConnError::Refused);
        }
        let mut inbound = shared.inbound.lock();
        if let Some((_, old)) = inbound.insert(hello.from, (self.serial, stream.try_clone()?)) {
            let _ = old.shutdown(std::net::Shutdown::Both);
        }
        tracing::info!(addr = %self.addr, peer = hello.from, "accepted peer connection");
        Ok(hello.from)
    }

    fn deliver(&self, from: NodeId, message: Message) -> Result<(), ConnError> {
        if message.from != from || message.to != self.shared.config.id {
            return Err(ConnError::Misaddressed(message.to_string()));
        }
        if self.shared.emit(TransportEvent::Message(message)) {
            Ok(())
        } else {
            Err(ConnError::Stopped)
        }
    }

    fn maybe_finish(&self, from: NodeId, r: Reassembly) -> Result<Option<Reassembly>, ConnError> {
        match r.finish() {
            Ok(message) => self.deliver(from, message).map(|()| None),
            Err(r) => Ok(Some(r)),
        }
    }

    /// Fills `buf`. Without `started`, waits indefinitely for the first byte (an idle peer is
    /// normal); from then on the whole read must finish within the I/O timeout.
    fn read_exact(
        &self,
        stream: &mut TcpStream,
        buf: &mut [u8],
        mut started: Option<Instant>,
    ) -> Result<(), ConnError> {
        let mut filled = 0;
        while filled < buf.len() {
            self.check_deadline(started)?;
            match stream.read(&mut buf[filled..]) {
                Ok(0) => return Err(ConnError::Closed(filled > 0 || started.is_some())),
                Ok(n) => {
                    filled += n;
                    started.get_or_insert_with(Instant::now);
                }
                Err(e) if is_timeout(&e) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Reads `len` bytes into `body`, which grows only as bytes arrive.
    fn read_body(
        &self,
        stream: &mut TcpStream,
        body: &mut Vec<u8>,
        len: usize,
        started: Instant,
    ) -> Result<(), ConnError> {
        while body.len() < len {
            self.check_deadline(Some(started))?;
            let want = (len - body.len()) as u64;
            match (&mut *stream).take(want).read_to_end(body) {
                Ok(0) => return Err(ConnError::Closed(true)),
                Ok(_) => {}
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn check_deadline(&self, started: Option<Instant>) -> Result<(), ConnError> {
        if self.shared.stopping() {
            return Err(ConnError::Stopped);
        }
        let timeout = self.shared.config.io_timeout;
        match started {
            Some(at) if at.elapsed() > timeout => Err(ConnError::Stalled(timeout)),
            _ => Ok(()),
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
