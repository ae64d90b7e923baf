//! [`DiskStorage`] as the loop's [`DurableLog`]: one call each, and the way from what
//! [`DiskStorage::open`] restored to where the node starts ([`StartFrom`]).

use super::disk::DiskStorage;
use super::open::Restored;
use crate::durable::{Batch, DurableError, DurableLog};
use crate::raft_node::StartFrom;
use crate::stats::WalSyncStats;
use raftwood_raft::Snapshot;

impl DurableLog for DiskStorage {
    fn save_snap(&mut self, snapshot: &Snapshot) -> Result<(), DurableError> {
        Ok(DiskStorage::save_snap(self, snapshot)?)
    }

    fn save(&mut self, batch: Batch<'_>) -> Result<(), DurableError> {
        Ok(DiskStorage::save(self, batch)?)
    }

    fn record_local_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), DurableError> {
        Ok(DiskStorage::record_local_snapshot(self, snapshot)?)
    }

    fn purge(&mut self, keep: usize) -> Result<(), DurableError> {
        DiskStorage::purge(self, keep)?;
        Ok(())
    }

    fn close(&mut self) -> Result<(), DurableError> {
        // `DiskStorage::close` consumes the storage; the loop drops it right after this.
        Ok(self.sync()?)
    }

    fn wal_sync_stats(&self) -> Option<WalSyncStats> {
        let stats = self.stats();
        Some(WalSyncStats {
            latency: stats.wal_sync_latency.clone(),
            total: stats.wal_sync_total,
        })
    }
}

impl From<Restored> for StartFrom {
    /// A fresh directory bootstraps (or joins, per the node's configuration); anything else
    /// restarts from the rebuilt in-memory storage.
    fn from(restored: Restored) -> StartFrom {
        if restored.fresh {
            StartFrom::Fresh
        } else {
            StartFrom::Restored(restored.storage)
        }
    }
}
