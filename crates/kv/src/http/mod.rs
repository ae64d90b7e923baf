//! The HTTP API: raftexample's routes and the native `/v1/` ones, over a [`KvService`].
//!
//! axum on tokio. Every handler turns a request into one [`KvService`] call and its answer into
//! a status code; the raft loop runs elsewhere, so a slow client can only hold its own task.
//!
//! Layout:
//! - [`router()`](router()): the routes, the body limit and the request timeout.
//! - `routes_raftexample.rs`: `PUT`/`GET /{key}`, `POST`/`DELETE /{id}`.
//! - `routes_native.rs`: `/v1/kv/{key}` (ETag, If-Match, consistency), `/v1/status`, `/v1/members`.
//! - `metrics.rs`: `GET /metrics`, Prometheus text 0.0.4 or OpenMetrics.
//! - `request.rs`: reading keys, ids, URLs, headers and bodies out of requests.
//! - `error.rs`: [`ApiError`], the JSON error answers.
//! - `accept.rs`: the accept loop (`axum::serve`'s, plus a header-read timeout).
//!
//! ```no_run
//! use std::sync::Arc;
//! use raftwood_kv::http::{HttpConfig, serve};
//! use raftwood_kv::service::memory::MemoryService;
//!
//! # async fn run() -> std::io::Result<()> {
//! let service = Arc::new(MemoryService::new(1, "http://127.0.0.1:12379"));
//! serve(HttpConfig::default(), service, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```

mod accept;
mod error;
mod metrics;
mod request;
mod router;
mod routes_native;
mod routes_raftexample;

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use tokio::net::TcpListener;

use crate::service::KvService;

pub use error::ApiError;
pub use router::router;

/// Where and how the HTTP API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Address to listen on; the contract's default is `127.0.0.1:12380`.
    pub listen: SocketAddr,
    /// Largest accepted request body (a value, or a member's URL), in bytes; larger ones get
    /// `413`. Default 1 MiB.
    pub max_value_bytes: usize,
    /// Longest a request may take, reading its body included; then it gets `503`. Default 5 s.
    pub request_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 12380)),
            max_value_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Binds `config.listen` and serves until `shutdown` completes, then lets the requests in flight
/// finish (each is bounded by the request timeout) and returns.
pub async fn serve<S: KvService>(
    config: HttpConfig,
    service: Arc<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = TcpListener::bind(config.listen).await?;
    serve_on(listener, &config, service, shutdown).await
}

/// [`serve`] on a listener already bound (for port 0 in tests, or a socket handed over);
/// `config.listen` is ignored.
pub async fn serve_on<S: KvService>(
    listener: TcpListener,
    config: &HttpConfig,
    service: Arc<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "HTTP API listening");
    }
    // Headers get the same bound as the whole request: a client that sends them no faster
    // than that holds nothing longer than any other request could (an idle keep-alive
    // connection is closed after it too).
    accept::serve(
        listener,
        router(config, service),
        config.request_timeout,
        shutdown,
    )
    .await
}

/// The strong ETag of a revision: the decimal number in quotes.
fn etag(revision: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\""))
        .expect("invariant violated: quotes and digits are valid header bytes")
}

/// What every handler shares: the service and the body limit (for the 413 message).
struct AppState<S> {
    service: Arc<S>,
    max_value_bytes: usize,
}

// Derive(Clone) would ask for S: Clone; only the Arc is cloned.
impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            service: Arc::clone(&self.service),
            max_value_bytes: self.max_value_bytes,
        }
    }
}
