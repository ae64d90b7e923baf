//! The node's own layer in every conf change entry's context: the application's request id
//! around the application's context bytes (raftexample's: the new member's peer URL). Raft carries
//! only the change into the log, so without this layer an application could match a committed
//! change to its request only by content, and an old change replayed (a second "remove 4" after a
//! restart) would answer a new request for the same change.
//!
//! # Format
//! `codec::encode(ConfContext { request_id: u64, context: bytes })`: fixed-int little-endian,
//! `request_id` (8 bytes), then the context's length (8 bytes) and its bytes.
//!
//! The application never sees this layer: [`crate::Apply::ConfChange`] hands back `id` and the
//! change with its own context. A context that does not decode (a log written before this layer)
//! is taken as the application's context, with request id 0.

use bytes::Bytes;
use raftwood_raft::ConfChange;
use serde::{Deserialize, Serialize};

/// A conf change's context in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ConfContext {
    /// The application's id ([`crate::ConfChangeRequest::id`]).
    request_id: u64,
    /// The application's context (the added member's peer URL).
    context: Bytes,
}

/// The change to propose: `change` with its context wrapped around `request_id`.
pub(crate) fn wrap(request_id: u64, mut change: ConfChange) -> ConfChange {
    let context = std::mem::take(&mut change.context);
    change.context = Bytes::from(crate::codec::encode(&ConfContext {
        request_id,
        context,
    }));
    change
}

/// A committed change as the application proposed it, and its request id (0 for a context
/// without this layer).
pub(crate) fn unwrap(mut change: ConfChange) -> (u64, ConfChange) {
    match crate::codec::decode::<ConfContext>(&change.context, "conf change context") {
        Ok(ConfContext {
            request_id,
            context,
        }) => {
            change.context = context;
            (request_id, change)
        }
        Err(_) => (0, change),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_id_and_the_context_come_back() {
        let change = ConfChange::add_voter(4).with_context("http://127.0.0.1:42379");
        let wrapped = wrap(77, change.clone());
        assert_ne!(wrapped.context, change.context);
        assert_eq!(unwrap(wrapped), (77, change));
    }

    #[test]
    fn a_bare_context_is_the_applications_with_id_zero() {
        let change = ConfChange::add_voter(4).with_context("http://127.0.0.1:42379");
        assert_eq!(unwrap(change.clone()), (0, change));
        let removal = ConfChange::remove_node(2);
        assert_eq!(unwrap(removal.clone()), (0, removal));
    }
}
