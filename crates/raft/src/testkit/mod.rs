//! Test support, behind the `testkit` feature: a deterministic simulated network of
//! [`crate::RawNode`]s ([`Cluster`]), the safety checks run against it ([`safety`]), and the
//! plain-text scenario language that drives it ([`script`]).
//!
//! One vocabulary serves both kinds of test: a scripted scenario under `testdata/` is a list of
//! commands with their expected output, and a property-test schedule that fails is printed as the
//! same commands, so it can be saved as a scenario and replayed exactly.
//!
//! ```
//! use raftwood_raft::testkit::Cluster;
//! let mut c = Cluster::new(3, Default::default());
//! c.campaign(1);
//! c.stabilize();
//! assert_eq!(c.leader(), Some(1));
//! c.propose(1, "x".into());
//! c.stabilize();
//! assert!(c.check_safety().is_ok());
//! ```

mod app;
mod cluster;
mod faults;
mod liveness;
mod membership;
pub mod notation;
mod ready_steps;
pub mod safety;
mod scenario_file;
pub mod script;

pub use app::App;
pub use cluster::{
    Cluster, ClusterOptions, Coverage, MAX_OUTPUT, MAX_QUEUE, STABILIZE_ROUNDS, entry_list,
    role_text,
};
