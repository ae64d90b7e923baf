//! The Raft state machine (work in progress).
