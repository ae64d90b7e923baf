//! [`StopSignals`]: SIGINT and SIGTERM as a stream, for `raftwood` and `raftwood local-cluster`.
//!
//! The handlers are registered when a [`StopSignals`] is created, not when it is first awaited:
//! create it before any slow start-up work (opening storage, replaying the WAL, starting the
//! children), so that a signal arriving meanwhile is kept and handled as a graceful stop once
//! start-up is done, instead of killing the process with the signal's default action.

use std::io;

/// SIGINT and SIGTERM, registered at creation.
pub struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Registers the handlers; must run inside a tokio runtime (`Runtime::enter` or
    /// `block_on`).
    #[cfg(unix)]
    pub fn new() -> io::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next stop signal (one that arrived since creation counts) and names it.
    #[cfg(unix)]
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }

    /// Registers nothing: Ctrl-C is the only stop signal off Unix.
    #[cfg(not(unix))]
    pub fn new() -> io::Result<StopSignals> {
        Ok(StopSignals {})
    }

    /// Waits for Ctrl-C.
    #[cfg(not(unix))]
    pub async fn recv(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
