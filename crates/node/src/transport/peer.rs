//! One outbound peer: a bounded queue the loop fills without waiting, and a writer thread that
//! dials the peer's URL, shakes hands, and writes the queue out as frames, reconnecting with
//! backoff when the connection fails. Messages never wait for a connection: while there is
//! none they are dropped at once and raft is told the peer is unreachable (raft retries by
//! itself; stale messages delivered late would only be rejected).

use std::io::{BufWriter, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;
use raftwood_raft::{Message, MessageBody, NodeId};

use super::TransportEvent;
use super::backoff::Backoff;
use super::frame::{FrameKind, frame_prefix};
use super::handshake::{Hello, REPLY_LEN, Status};
use super::shared::{POLL, Shared};
use super::snapshot::split;
use super::url::PeerUrl;
use crate::codec;

/// What the loop's side and the writer thread share about one peer.
struct PeerState {
    /// A handshake succeeded and the connection has not failed since.
    connected: AtomicBool,
    /// Unreachable was reported for the current run of drops; cleared by the next message
    /// that gets through, so raft hears once per burst, not once per message.
    reported: AtomicBool,
    /// This peer's writer must exit (peer removed or replaced, or transport stopping).
    stop: AtomicBool,
    /// The live connection, so a stop can abort a write blocked on a stalled peer.
    stream: Mutex<Option<TcpStream>>,
}

/// The loop's handle on one outbound peer.
pub(crate) struct Peer {
    id: NodeId,
    url: PeerUrl,
    queue: Sender<Message>,
    state: Arc<PeerState>,
    writer: Option<JoinHandle<()>>,
}

impl Peer {
    /// Starts the writer thread for peer `id` at `url`.
    pub fn spawn(shared: Arc<Shared>, id: NodeId, url: PeerUrl) -> std::io::Result<Peer> {
        let (queue, rx) = crossbeam_channel::bounded(shared.config.queue_len);
        let state = Arc::new(PeerState {
            connected: AtomicBool::new(false),
            reported: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            stream: Mutex::new(None),
        });
        let writer = Writer {
            shared,
            id,
            url: url.clone(),
            rx,
            state: Arc::clone(&state),
        };
        let handle = std::thread::Builder::new()
            .name(format!("peer-{id}-writer"))
            .spawn(move || writer.run())?;
        Ok(Peer {
            id,
            url,
            queue,
            state,
            writer: Some(handle),
        })
    }

    /// The URL this peer is dialed at.
    pub fn url(&self) -> &PeerUrl {
        &self.url
    }

    /// Queues `message`, or hands it back if the peer is not connected or its queue is full.
    pub fn offer(&self, message: Message) -> Result<(), Message> {
        if !self.state.connected.load(Ordering::Acquire) {
            return Err(message);
        }
        match self.queue.try_send(message) {
            Ok(()) => {
                self.state.reported.store(false, Ordering::Release);
                Ok(())
            }
            Err(TrySendError::Full(m) | TrySendError::Disconnected(m)) => Err(m),
        }
    }

    /// Whether a drop just now starts a new burst (and so must be reported).
    pub fn first_drop(&self) -> bool {
        !self.state.reported.swap(true, Ordering::AcqRel)
    }

    /// Tells the writer to exit and aborts its connection; [`Peer::join`] waits for it.
    pub fn stop(&self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(stream) = self.state.stream.lock().as_ref() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Whether the writer thread has exited.
    pub fn is_finished(&self) -> bool {
        self.writer.as_ref().is_none_or(|w| w.is_finished())
    }

    /// Waits for the writer to exit (after [`Peer::stop`]).
    pub fn join(mut self) {
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!(peer = self.id, "peer writer thread panicked");
        }
    }
}

/// Why a connection ended.
enum Ended {
    /// Stop requested.
    Stopped,
    /// The peer said this node was removed.
    Removed,
    /// Anything else: reconnect.
    Failed(String),
}

/// The writer thread of one peer.
struct Writer {
    shared: Arc<Shared>,
    id: NodeId,
    url: PeerUrl,
    rx: Receiver<Message>,
    state: Arc<PeerState>,
}

impl Writer {
    fn stopping(&self) -> bool {
        self.state.stop.load(Ordering::Acquire) || self.shared.stopping()
    }

    fn run(self) {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ self.shared.config.id.rotate_left(32)
            ^ self.id;
        let config = &self.shared.config;
        let mut backoff = Backoff::new(config.backoff_min, config.backoff_max, seed);
        let mut failures = 0u32;
        while !self.stopping() {
            let ended = match self.connect() {
                Ok(stream) => {
                    backoff.reset();
                    failures = 0;
                    tracing::info!(peer = self.id, url = %self.url, "connected to peer");
                    let ended = self.serve(stream);
                    self.disconnected();
                    ended
                }
                Err(ended) => ended,
            };
            match ended {
                Ended::Stopped => break,
                Ended::Removed => {
                    tracing::warn!(
                        peer = self.id,
                        "peer says this node was removed from the cluster"
                    );
                    self.shared.emit(TransportEvent::Removed { by: self.id });
                    break;
                }
                Ended::Failed(why) => {
                    // The first failure of a run is worth a warning; a peer that stays down
                    // would otherwise fill the log at every backoff step.
                    if failures == 0 {
                        tracing::warn!(peer = self.id, url = %self.url, "peer connection: {why}");
                    } else {
                        tracing::debug!(peer = self.id, url = %self.url, failures, "peer connection: {why}");
                    }
                    failures = failures.saturating_add(1);
                }
            }
            self.sleep(backoff.next_delay());
        }
        self.drain();
    }

    fn sleep(&self, delay: Duration) {
        let until = Instant::now() + delay;
        while !self.stopping() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(POLL));
        }
    }

    /// Dials the URL (resolved now, every address in turn) and shakes hands.
    fn connect(&self) -> Result<TcpStream, Ended> {
        let timeout = self.shared.config.io_timeout;
        let addrs = self
            .url
            .resolve()
            .map_err(|e| Ended::Failed(format!("cannot resolve: {e}")))?;
        let mut last = String::from("no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => return self.handshake(stream),
                Err(e) => last = format!("cannot dial {addr}: {e}"),
            }
            if self.stopping() {
                return Err(Ended::Stopped);
            }
        }
        Err(Ended::Failed(last))
    }

    /// Shakes hands on a fresh connection. The socket is published to [`Peer::stop`] first, so
    /// a stop aborts a handshake stalled on a peer that accepted but never answers.
    fn handshake(&self, stream: TcpStream) -> Result<TcpStream, Ended> {
        let failed = |what: &str, e: &dyn std::fmt::Display| Ended::Failed(format!("{what}: {e}"));
        let clone = stream.try_clone().map_err(|e| failed("socket", &e))?;
        *self.state.stream.lock() = Some(clone);
        let result = self.exchange_hello(stream);
        if result.is_err() {
            *self.state.stream.lock() = None;
        }
        result
    }

    fn exchange_hello(&self, mut stream: TcpStream) -> Result<TcpStream, Ended> {
        if self.stopping() {
            return Err(Ended::Stopped);
        }
        let timeout = Some(self.shared.config.io_timeout);
        let failed = |what: &str, e: &dyn std::fmt::Display| Ended::Failed(format!("{what}: {e}"));
        stream
            .set_write_timeout(timeout)
            .and_then(|()| stream.set_read_timeout(timeout))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| failed("socket options", &e))?;
        let hello = Hello {
            cluster_id: self.shared.cluster_id,
            from: self.shared.config.id,
            to: self.id,
        };
        stream
            .write_all(&hello.encode())
            .map_err(|e| failed("sending hello", &e))?;
        let mut reply = [0; REPLY_LEN];
        stream
            .read_exact(&mut reply)
            .map_err(|e| failed("reading handshake reply", &e))?;
        match Status::decode(&reply).map_err(|e| failed("handshake reply", &e))? {
            Status::Accepted => {}
            Status::Removed => return Err(Ended::Removed),
            refused => return Err(Ended::Failed(format!("refused by peer: {refused:?}"))),
        }
        self.state.connected.store(true, Ordering::Release);
        Ok(stream)
    }

    /// Writes queued messages until the connection fails or a stop is asked for. Writes are
    /// buffered and flushed whenever the queue runs empty, so a burst costs few syscalls.
    fn serve(&self, stream: TcpStream) -> Ended {
        let probe = match stream.try_clone() {
            Ok(probe) => probe,
            Err(e) => return Ended::Failed(format!("socket: {e}")),
        };
        let mut out = BufWriter::with_capacity(64 << 10, stream);
        loop {
            if self.stopping() {
                return Ended::Stopped;
            }
            let message = match self.rx.recv_timeout(POLL) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => match peer_closed(&probe) {
                    Some(why) => return Ended::Failed(why),
                    None => continue,
                },
                Err(RecvTimeoutError::Disconnected) => return Ended::Stopped,
            };
            if let Err(e) = self.write(&mut out, message) {
                return Ended::Failed(format!("write: {e}"));
            }
            if self.rx.is_empty()
                && let Err(e) = out.flush()
            {
                return Ended::Failed(format!("write: {e}"));
            }
        }
    }

    fn write(&self, out: &mut BufWriter<TcpStream>, message: Message) -> std::io::Result<()> {
        let to = message.to;
        let message = match split(message) {
            Ok((header, data)) => return self.write_snapshot(out, to, header, &data),
            Err(message) => message,
        };
        let payload = codec::encode(&message);
        let max = self.shared.config.max_frame_size;
        match frame_prefix(FrameKind::Message, &payload, max) {
            Ok(prefix) => {
                out.write_all(&prefix)?;
                out.write_all(&payload)
            }
            Err(e) => {
                // Too big for any receiver's limit: sending it would only get the connection
                // closed. (The node's `max_entry_size` keeps entries well below the limit.)
                tracing::error!(
                    peer = to,
                    kind = message.body.name(),
                    "{e}; message dropped (lower raft's max message size)"
                );
                self.report_drop();
                Ok(())
            }
        }
    }

    /// Header, chunks, flush; then the outcome goes to raft either way.
    fn write_snapshot(
        &self,
        out: &mut BufWriter<TcpStream>,
        to: NodeId,
        header: super::snapshot::SnapshotHeader,
        data: &[u8],
    ) -> std::io::Result<()> {
        let max = self.shared.config.max_frame_size;
        let result = (|| {
            let header = codec::encode(&header);
            out.write_all(
                &frame_prefix(FrameKind::SnapshotHeader, &header, max)
                    .map_err(std::io::Error::other)?,
            )?;
            out.write_all(&header)?;
            for chunk in data.chunks(self.shared.config.snapshot_chunk_size) {
                if self.stopping() {
                    return Err(std::io::Error::other("transport stopping"));
                }
                out.write_all(
                    &frame_prefix(FrameKind::SnapshotChunk, chunk, max)
                        .map_err(std::io::Error::other)?,
                )?;
                out.write_all(chunk)?;
            }
            out.flush()
        })();
        let ok = result.is_ok();
        tracing::info!(peer = to, bytes = data.len(), ok, "snapshot sent");
        self.shared.emit(TransportEvent::SnapshotStatus { to, ok });
        result
    }

    /// After a connection ends: no more queueing, and what is queued is dropped and reported
    /// (the loop learns the peer is unreachable now, not at its next send).
    fn disconnected(&self) {
        self.state.connected.store(false, Ordering::Release);
        *self.state.stream.lock() = None;
        self.drain();
        if self.state.reported.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.emit(TransportEvent::Unreachable(self.id));
    }

    /// Drops everything queued; a dropped snapshot is reported as failed.
    fn drain(&self) {
        while let Ok(message) = self.rx.try_recv() {
            if let MessageBody::Snapshot { .. } = message.body {
                self.shared.emit(TransportEvent::SnapshotStatus {
                    to: self.id,
                    ok: false,
                });
            }
        }
    }

    fn report_drop(&self) {
        if !self.state.reported.swap(true, Ordering::AcqRel) {
            self.shared.emit(TransportEvent::Unreachable(self.id));
        }
    }
}

/// Whether the acceptor closed the connection. It never writes after the handshake, so
/// readable means closed (or misbehaving): an idle connection to a dead peer is noticed within
/// [`POLL`] instead of at the next write, which TCP would accept into its buffer and lose.
fn peer_closed(stream: &TcpStream) -> Option<String> {
    if let Err(e) = stream.set_nonblocking(true) {
        return Some(format!("socket: {e}"));
    }
    let mut byte = [0; 1];
    let verdict = match stream.peek(&mut byte) {
        Ok(0) => Some("peer closed the connection".to_string()),
        Ok(_) => Some("peer wrote after the handshake".to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        Err(e) => Some(format!("connection: {e}")),
    };
    if let Err(e) = stream.set_nonblocking(false) {
        return Some(format!("socket: {e}"));
    }
    verdict
}
