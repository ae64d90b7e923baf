//! The child's side of local-cluster's parent pipe: a node started with `--parent-pipe` has a
//! pipe from local-cluster as its stdin, which local-cluster never writes to. When local-cluster
//! exits, however it exits (SIGKILL included), the kernel closes its end and the node reads EOF:
//! that is the node's cue to stop. Closing the pipe is also how local-cluster asks its nodes to
//! stop gracefully, so there is one stop path, not two.
//!
//! Why a pipe: a parent's death sends its children no signal (Linux's `PR_SET_PDEATHSIG` would
//! need `unsafe` and is Linux-only); an inherited pipe closes on every platform and needs no
//! polling.

use std::io::{self, Read};
use std::thread::{self, JoinHandle};

/// Watches stdin on a thread of its own and calls `on_parent_gone` once, when it reads EOF (the
/// parent closed the pipe or died) or fails to read (the watch cannot continue, so the node
/// should not outlive a parent it can no longer see). Bytes written to the pipe are ignored.
///
/// Call it only when stdin is the parent's pipe (`--parent-pipe`): on a terminal it would
/// swallow typed input, and with stdin at `/dev/null` it fires at once. The callback should
/// start the graceful stop (signal a channel, cancel a token), as SIGTERM does.
///
/// ```no_run
/// let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
/// raftwood_kv::local_cluster::watch_parent(move || {
///     let _ = stop_tx.send(());
/// })?;
/// stop_rx.recv().ok(); // the server's stop path
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn watch_parent<F>(on_parent_gone: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    watch_pipe(io::stdin(), on_parent_gone)
}

/// [`watch_parent`] on any reader: calls `on_gone` once the reader reaches EOF or fails.
pub fn watch_pipe<R, F>(mut reader: R, on_gone: F) -> io::Result<JoinHandle<()>>
where
    R: Read + Send + 'static,
    F: FnOnce() + Send + 'static,
{
    thread::Builder::new()
        .name("parent-pipe".into())
        .spawn(move || {
            let mut buf = [0u8; 64];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => {
                        tracing::info!("the parent process closed its pipe: stopping");
                        break;
                    }
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the parent's pipe: stopping");
                        break;
                    }
                }
            }
            on_gone();
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn fires_on_eof_and_not_before() {
        let (reader, mut writer) = io::pipe().unwrap();
        let (tx, rx) = mpsc::channel();
        let handle = watch_pipe(reader, move || tx.send(()).unwrap()).unwrap();
        writer.write_all(b"ignored bytes").unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(200)),
            Err(mpsc::RecvTimeoutError::Timeout),
            "fired while the pipe was open"
        );
        drop(writer);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("fired once the pipe closed");
        handle.join().unwrap();
    }

    #[test]
    fn fires_on_a_read_error() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("broken"))
            }
        }
        let (tx, rx) = mpsc::channel();
        watch_pipe(Broken, move || tx.send(()).unwrap())
            .unwrap()
            .join()
            .unwrap();
        assert!(rx.try_recv().is_ok());
    }
}
