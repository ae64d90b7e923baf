//! # raftwood-tests: the `raftwood` binary, end to end
//!
//! The tests in `tests/tests/` start real `raftwood` processes on loopback, each in a temporary
//! directory, and talk to them the way a user does: HTTP requests (raftexample's routes and the
//! native ones), signals (SIGTERM, SIGKILL) and bytes on disk (a damaged WAL). The contract they
//! check is `../shared/CONTRACT.md`.
//!
//! ## Layout
//! - [`binary`]: finds the `raftwood` binary cargo built next to the test, building it first
//!   (never a stale one), or takes `RAFTWOOD_BIN`.
//! - [`ports`]: ports that cannot collide with other tests or with outgoing connections.
//! - [`http`]: a tiny blocking HTTP/1.1 client with a deadline on every request.
//! - [`process`]: signals, bounded waits, `/proc` lookups, log tails.
//! - [`cluster`]: [`Cluster`], N nodes as child processes: start, stop, kill -9, restart,
//!   leader, reads and writes with retries through elections, membership.
//! - [`local`]: [`LocalCluster`], `raftwood local-cluster` watched from outside.
//!
//! ## Rules every test here follows
//! - Every wait is bounded (see the constants in [`cluster`]); a node that exits while the
//!   harness waits for it fails the test at once, with its exit status.
//! - A failing test prints every node's standard output and error (dropping the [`Cluster`]
//!   during a panic does it) and SIGKILLs every process it started. `RAFTWOOD_KEEP_DIRS=1` keeps
//!   the nodes' directories of a failed test; `RAFTWOOD_TEST_LOG` sets the nodes' `RUST_LOG`.
//! - Nodes tick every 20 ms (`--tick-interval 20ms`, 10 election ticks), so an election on
//!   loopback takes a fraction of a second and the whole crate runs in CI time.
//!
//! ```no_run
//! use raftwood_tests::Cluster;
//!
//! let mut cluster = Cluster::start(3);
//! cluster.put_ok(1, "my-key", b"bar");
//! assert_eq!(cluster.get_ok(3, "my-key").as_deref(), Some(&b"bar"[..]));
//! ```

pub mod binary;
pub mod cluster;
pub mod http;
pub mod local;
pub mod ports;
pub mod process;

pub use cluster::{Cluster, Options};
pub use http::Response;
pub use local::LocalCluster;
