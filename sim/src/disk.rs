//! Simulated disks: where a process's [`DiskOp`]s land. A write is in the page cache
//! until an fsync makes it durable; the disk survives its process (a kill, a restart) and
//! keeps what the page cache held, but a power loss ([`SimDisk::lose_unsynced`]) keeps
//! only what was fsynced — plus, as a torn write, a prefix of what was not.
//!
//! Architecture Invariant: the disk never reorders writes; it loses only a suffix of the
//! un-fsynced ones. Fsync latency and losses are faults the world sets, never the model.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kubesim_model::etcd::{DiskOp, DiskState, StoreValue};

struct DiskInner<V> {
    /// What a restart finds: every write that reached the disk.
    durable: DiskState<V>,
    /// Written but not fsynced, in order (already applied to `durable`'s view only when
    /// synced).
    unsynced: Vec<DiskOp<V>>,
    /// How long an fsync takes.
    fsync_latency: Duration,
    writes: u64,
    fsyncs: u64,
    /// PLANTED BUG (the fuzz's durability check's own test): fsync returns at once and
    /// makes nothing durable, as a database that acknowledges before it fsyncs leaves its
    /// writes to the kernel's writeback (seconds later): a power loss takes them.
    planted_ack_before_fsync: bool,
}

/// One process's disk; clones share it (the world holds one, the running process another).
pub struct SimDisk<V>(Arc<Mutex<DiskInner<V>>>);

impl<V> Clone for SimDisk<V> {
    fn clone(&self) -> Self {
        SimDisk(Arc::clone(&self.0))
    }
}

impl<V: StoreValue> Default for SimDisk<V> {
    fn default() -> Self {
        Self::new(DiskState::new())
    }
}

impl<V: StoreValue> SimDisk<V> {
    pub fn new(state: DiskState<V>) -> Self {
        SimDisk(Arc::new(Mutex::new(DiskInner {
            durable: state,
            unsynced: Vec::new(),
            fsync_latency: Duration::ZERO,
            writes: 0,
            fsyncs: 0,
            planted_ack_before_fsync: false,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, DiskInner<V>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes ops into the page cache.
    pub fn write(&self, ops: Vec<DiskOp<V>>) {
        let mut d = self.lock();
        d.writes += ops.len() as u64;
        d.unsynced.extend(ops);
    }

    /// Makes every write so far durable (with the planted bug, none).
    pub fn sync(&self) {
        let mut d = self.lock();
        d.fsyncs += 1;
        if d.planted_ack_before_fsync {
            return;
        }
        let ops = std::mem::take(&mut d.unsynced);
        for op in &ops {
            d.durable.apply(op);
        }
    }

    /// Plants the bug: fsync returns without making anything durable.
    pub fn plant_ack_before_fsync(&self) {
        self.lock().planted_ack_before_fsync = true;
    }

    /// How long the next fsync takes.
    pub fn fsync_latency(&self) -> Duration {
        self.lock().fsync_latency
    }

    pub fn set_fsync_latency(&self, latency: Duration) {
        self.lock().fsync_latency = latency;
    }

    /// What a process starting on this disk finds. A process kill loses nothing the
    /// page cache holds: the kernel writes it out.
    pub fn recovery_copy(&self) -> DiskState<V> {
        let mut d = self.lock();
        let ops = std::mem::take(&mut d.unsynced);
        for op in &ops {
            d.durable.apply(op);
        }
        d.durable.recovery_copy()
    }

    /// Power loss: the writes not fsynced are lost, but for the first `keep` of them,
    /// which had reached the platter (a torn write). Returns how many were lost.
    pub fn lose_unsynced(&self, keep: usize) -> usize {
        let mut d = self.lock();
        let ops = std::mem::take(&mut d.unsynced);
        let keep = keep.min(ops.len());
        for op in &ops[..keep] {
            d.durable.apply(op);
        }
        ops.len() - keep
    }

    /// Writes not yet fsynced.
    pub fn unsynced(&self) -> usize {
        self.lock().unsynced.len()
    }

    /// Replaces the disk's contents (a lost disk replaced by a blank one).
    pub fn replace(&self, state: DiskState<V>) {
        let mut d = self.lock();
        d.durable = state;
        d.unsynced.clear();
    }

    /// (writes, fsyncs) so far.
    pub fn counters(&self) -> (u64, u64) {
        let d = self.lock();
        (d.writes, d.fsyncs)
    }

    /// Reads the durable state.
    pub fn read<R>(&self, f: impl FnOnce(&DiskState<V>) -> R) -> R {
        f(&self.lock().durable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubesim_model::etcd::raft_types::HardState;

    fn hs(term: u64) -> DiskOp<i64> {
        DiskOp::HardState(HardState { term, ..Default::default() })
    }

    #[test]
    fn synced_writes_survive_power_loss_unsynced_ones_do_not() {
        let d: SimDisk<i64> = SimDisk::default();
        d.write(vec![hs(1)]);
        d.sync();
        d.write(vec![hs(2), hs(3)]);
        assert_eq!(d.unsynced(), 2);
        assert_eq!(d.lose_unsynced(0), 2);
        assert_eq!(d.read(|s| s.hard_state.term), 1);
    }

    #[test]
    fn a_torn_write_keeps_a_prefix_in_order() {
        let d: SimDisk<i64> = SimDisk::default();
        d.write(vec![hs(1), hs(2), hs(3)]);
        assert_eq!(d.lose_unsynced(2), 1);
        assert_eq!(d.read(|s| s.hard_state.term), 2, "the first two reached the disk, the third did not");
    }

    #[test]
    fn with_the_planted_bug_fsync_makes_nothing_durable() {
        let d: SimDisk<i64> = SimDisk::default();
        d.plant_ack_before_fsync();
        d.write(vec![hs(1)]);
        d.sync();
        assert_eq!(d.lose_unsynced(0), 1, "the fsynced write was not durable");
        assert_eq!(d.read(|s| s.hard_state.term), 0);
    }

    #[test]
    fn a_process_kill_keeps_the_page_cache() {
        let d: SimDisk<i64> = SimDisk::default();
        d.write(vec![hs(4)]);
        assert_eq!(d.recovery_copy().hard_state.term, 4);
    }
}
