//! One load-tool client: a loop on its own keep-alive connection that picks an operation and a
//! key, sends the request, waits for the answer and records it, until the deadline. One request
//! in flight per client, so `--clients` is the concurrency the server sees.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::time::{Instant, timeout};

use super::options::Consistency;
use super::stats::{Kind, Live, Stats};
use super::target::{Connection, RequestError, Target};

/// Everything but ALPHA / DIGIT / `-._~` (RFC 3986's unreserved) is escaped in a key's path
/// segment, so any key prefix gives a valid path.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How long a client waits before reconnecting after a failed connect, so a dead node is not
/// hammered in a busy loop.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(20);

/// What every client shares: the workload.
#[derive(Debug)]
pub(crate) struct Workload {
    pub(crate) key_prefix: String,
    pub(crate) keys: u64,
    pub(crate) get_percent: u8,
    pub(crate) consistency: Consistency,
    pub(crate) value: Bytes,
    pub(crate) timeout: Duration,
}

impl Workload {
    /// The request path of key number `n` for `kind`.
    pub(crate) fn path(&self, kind: Kind, n: u64) -> String {
        let key = format!("{}{n}", self.key_prefix);
        let key = utf8_percent_encode(&key, SEGMENT);
        match (kind, self.consistency) {
            (Kind::Get, Consistency::Serializable) => {
                format!("/v1/kv/{key}?consistency=serializable")
            }
            _ => format!("/v1/kv/{key}"),
        }
    }

    /// Sends one request on `conn`: `Ok(status)`, or the cause of failure as an error label.
    pub(crate) async fn request(
        &self,
        conn: &mut Connection,
        kind: Kind,
        n: u64,
    ) -> Result<hyper::StatusCode, &'static str> {
        let (method, body) = match kind {
            Kind::Put => (Method::PUT, self.value.clone()),
            Kind::Get => (Method::GET, Bytes::new()),
        };
        let path = self.path(kind, n);
        match timeout(self.timeout, conn.send(method, &path, body)).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(RequestError::Build(error))) => {
                tracing::warn!(%error, path, "bench: request could not be built");
                Err("client")
            }
            Ok(Err(RequestError::Http(error))) => {
                tracing::debug!(%error, "bench: request failed");
                Err("io")
            }
            Err(_) => Err("timeout"),
        }
    }
}

/// SplitMix64: a tiny, seedable generator. Each client is seeded with its index, so a run's
/// sequence of operations is reproducible; statistical quality far beyond choosing keys is not
/// needed.
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`); the modulo bias is negligible for key spaces far below 2^64.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Runs client `index` against `target` until `deadline`; a request already sent when the
/// deadline passes is still awaited and recorded.
pub(crate) async fn run_client(
    index: usize,
    target: Target,
    workload: Arc<Workload>,
    live: Arc<Live>,
    deadline: Instant,
) -> Stats {
    let mut rng = SplitMix64::new(index as u64);
    let mut stats = Stats::new();
    let mut conn: Option<Connection> = None;
    while Instant::now() < deadline {
        let kind = if rng.below(100) < u64::from(workload.get_percent) {
            Kind::Get
        } else {
            Kind::Put
        };
        let n = rng.below(workload.keys);
        // A connection the server closed between requests (keep-alive limit, restart) is
        // replaced without counting an error: no request was lost on it.
        if let Some(c) = conn.as_mut()
            && !c.ready().await
        {
            conn = None;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match target.connect().await {
                Ok(c) => conn.insert(c),
                Err(error) => {
                    tracing::debug!(%error, url = target.url, "bench: connect failed");
                    stats.failed(kind, "connect", &live);
                    tokio::time::sleep(
                        RECONNECT_BACKOFF.min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await;
                    continue;
                }
            },
        };
        let started = Instant::now();
        match workload.request(c, kind, n).await {
            Ok(status) => stats.answered(kind, status, started.elapsed(), &live),
            Err(cause) => {
                stats.failed(kind, cause, &live);
                // The connection's state is unknown after a failure or a timeout (an answer may
                // still arrive on it): start afresh.
                conn = None;
            }
        }
    }
    stats
}
