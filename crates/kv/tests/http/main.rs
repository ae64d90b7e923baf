//! The HTTP API against in-process services, over real sockets on 127.0.0.1 (port 0): every
//! route and status code of the contract's HTTP sections.
#![allow(clippy::unwrap_used)]

mod client;
mod limits;
mod metrics;
mod native;
mod raftexample;
mod services;
