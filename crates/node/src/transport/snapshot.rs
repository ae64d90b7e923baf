//! Snapshots in chunks. A snapshot message can be far larger than any sane frame, so the sender
//! splits it: one header frame (the message with its data taken out, and the data's length),
//! then data chunks of the configured size, on the same connection as every other message so
//! that order is kept. The receiver puts the data back, refusing a claimed size above its
//! maximum, and growing its buffer only as bytes actually arrive (a peer that announces 1 GiB
//! and sends nothing costs nothing).

use bytes::Bytes;
use raftwood_raft::{Message, MessageBody};
use serde::{Deserialize, Serialize};

use super::error::SnapshotError;

/// The first frame of a chunked snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// The snapshot message, with empty data.
    pub message: Message,
    /// How many data bytes the chunks that follow carry in total.
    pub data_len: u64,
}

/// Takes the data out of a snapshot message: the header to send first and the data to send in
/// chunks. `None` if the message is not a snapshot.
pub fn split(mut message: Message) -> Result<(SnapshotHeader, Bytes), Message> {
    let MessageBody::Snapshot { snapshot } = &mut message.body else {
        return Err(message);
    };
    let data = std::mem::take(&mut snapshot.data);
    Ok((
        SnapshotHeader {
            message,
            data_len: data.len() as u64,
        },
        data,
    ))
}

/// A snapshot being received.
#[derive(Debug)]
pub struct Reassembly {
    message: Message,
    total: u64,
    data: Vec<u8>,
}

impl Reassembly {
    /// Starts receiving the snapshot `header` announces, if it is no larger than `max_size`.
    pub fn start(header: SnapshotHeader, max_size: u64) -> Result<Reassembly, SnapshotError> {
        if header.data_len > max_size {
            return Err(SnapshotError::TooLarge {
                claimed: header.data_len,
                max: max_size,
            });
        }
        match &header.message.body {
            MessageBody::Snapshot { snapshot } if snapshot.data.is_empty() => {}
            _ => return Err(SnapshotError::BadHeader),
        }
        Ok(Reassembly {
            message: header.message,
            total: header.data_len,
            data: Vec::new(),
        })
    }

    /// Adds the next chunk, refusing one that would overrun the announced length.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), SnapshotError> {
        let have = self.data.len() as u64;
        if chunk.len() as u64 > self.total - have {
            return Err(SnapshotError::Overrun {
                total: self.total,
                have,
                chunk: chunk.len(),
            });
        }
        // Grow by doubling, as a Vec does, but never past the announced total: a snapshot
        // just under the limit must not cost twice the limit.
        let needed = self.data.len() + chunk.len();
        if needed > self.data.capacity() {
            let total = usize::try_from(self.total).unwrap_or(usize::MAX);
            let target = needed.max(self.data.len().saturating_mul(2)).min(total);
            self.data.reserve_exact(target - self.data.len());
        }
        self.data.extend_from_slice(chunk);
        Ok(())
    }

    /// Whether every announced byte has arrived.
    pub fn is_complete(&self) -> bool {
        self.data.len() as u64 == self.total
    }

    /// The whole snapshot message, once complete (`Err(self)` if bytes are still missing).
    pub fn finish(mut self) -> Result<Message, Reassembly> {
        if !self.is_complete() {
            return Err(self);
        }
        if let MessageBody::Snapshot { snapshot } = &mut self.message.body {
            snapshot.data = Bytes::from(self.data);
        }
        Ok(self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftwood_raft::Snapshot;

    fn snapshot_message(data: &[u8]) -> Message {
        let mut snapshot = Snapshot::default();
        snapshot.metadata.index = 10;
        snapshot.data = Bytes::copy_from_slice(data);
        Message {
            from: 1,
            to: 2,
            term: 4,
            body: MessageBody::Snapshot {
                snapshot: Box::new(snapshot),
            },
        }
    }

    #[test]
    fn split_then_reassemble_gives_back_the_message() {
        let original = snapshot_message(&[7; 1000]);
        let (header, data) = split(original.clone()).unwrap();
        assert_eq!(header.data_len, 1000);
        let mut r = Reassembly::start(header, 1000).unwrap();
        for chunk in data.chunks(300) {
            assert!(!r.is_complete());
            r.push(chunk).unwrap();
        }
        assert_eq!(
            r.data.capacity(),
            1000,
            "never grown past the announced total"
        );
        assert_eq!(r.finish().unwrap(), original);
    }

    #[test]
    fn oversize_claims_overruns_and_non_snapshots_are_refused() {
        let (header, _) = split(snapshot_message(&[1; 10])).unwrap();
        assert!(matches!(
            Reassembly::start(header.clone(), 9),
            Err(SnapshotError::TooLarge {
                claimed: 10,
                max: 9
            })
        ));
        let mut r = Reassembly::start(header, 10).unwrap();
        assert!(matches!(
            r.push(&[0; 11]),
            Err(SnapshotError::Overrun { .. })
        ));
        let not_empty = SnapshotHeader {
            message: snapshot_message(b"x"),
            data_len: 1,
        };
        assert!(matches!(
            Reassembly::start(not_empty, 10),
            Err(SnapshotError::BadHeader)
        ));
        let heartbeat = Message {
            from: 1,
            to: 2,
            term: 1,
            body: MessageBody::TimeoutNow,
        };
        assert!(split(heartbeat).is_err());
    }
}
