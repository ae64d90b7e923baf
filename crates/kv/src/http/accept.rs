//! The accept loop: `axum::serve`'s, plus a header-read timeout. `axum::serve` has none, and the
//! request timeout (a middleware) starts only once a request's headers are parsed, so a client
//! that trickles its headers, or connects and sends nothing, would hold its connection (a task
//! and a file descriptor) for as long as it likes. hyper's HTTP/1 connection has the timeout
//! (`header_read_timeout`, given a timer); this loop builds each connection with it.
//!
//! Everything else is as `axum::serve` does it: no per-connection limit (an idle keep-alive
//! connection costs one task), `TCP_NODELAY`, a failed accept retried (after a pause when the
//! process is out of file descriptors), and a graceful shutdown that stops accepting, lets the
//! requests in flight finish and closes idle connections.

use std::future::Future;
use std::io;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown` completes, then waits for the open connections
/// to finish their requests. A connection that has not sent a request's headers within
/// `header_timeout` of starting to read them (idle keep-alive time included) is closed.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    pause_after(error).await;
                    continue;
                }
            },
            () = shutdown.as_mut() => break,
        };
        // Answers are small and written whole: Nagle's algorithm would only hold them back
        // waiting for the client's delayed ACK on keep-alive connections.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(router.clone());
        // No upgrades (WebSocket, CONNECT): the API has no use for them.
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // A client gone, garbage bytes, or a header timeout: this connection only.
                tracing::debug!(%error, "HTTP connection ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// After a failed accept: nothing for a connection that failed on its own (the client reset
/// it), a pause otherwise (out of file descriptors: retrying at once would spin), as
/// `axum::serve` does.
async fn pause_after(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
