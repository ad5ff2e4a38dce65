//! A member's disk: what survives when its process is killed. The driver owns a
//! [`Disk`] handle and keeps it across a restart ([`super::RaftMember::recover`]); a
//! lost disk is replaced by [`Disk::lost`] (blank, but marked: the member on it rejoins
//! a running cluster and must catch up before it takes part in elections).
//!
//! It holds what etcd's data dir holds: the WAL (hard state, log entries with their
//! requests), the conf state, the last snapshot, and the backend (the applied MVCC
//! state with its applied index, as bbolt keeps the consistent index). The member writes
//! through to it before it releases the messages of a Ready, so everything here counts
//! as fsynced. It also implements raft-rs's `Storage` over that state.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

use super::backend::Backend;
use super::message::Payload;
use super::{Stamp, ValueSize};

/// What one member's disk holds. Read it through [`Disk::read`].
#[derive(Debug)]
pub struct DiskState<V> {
    pub hard_state: HardState,
    pub conf_state: ConfState,
    /// Log entries after `first_index - 1`; `payloads[i]` is the request of `entries[i]`
    /// (None for raft's empty entries).
    entries: VecDeque<Entry>,
    payloads: VecDeque<Option<Arc<Payload<V>>>>,
    /// Index and term of the entry just before the first one kept (etcd's MemoryStorage
    /// dummy entry): the last compacted entry.
    compacted_index: u64,
    compacted_term: u64,
    /// The last snapshot taken or installed.
    pub snapshot: SnapshotMetadata,
    /// The applied state. Shared copy-on-write with snapshots in flight.
    pub(crate) backend: Arc<Backend<V>>,
    /// Backends handed to raft for the MsgSnapshots it asked for, by (index, term). Not
    /// durable state: it only bridges `Storage::snapshot` and the outgoing messages,
    /// and the member empties it after each Ready.
    pub(crate) outgoing_snapshots: BTreeMap<(u64, u64), Arc<Backend<V>>>,
    /// Entries, hard states and snapshots written so far (for disk-latency modelling).
    pub writes: DiskWrites,
    /// This disk replaced a lost one and its member has not caught up from a leader yet:
    /// until then it neither votes nor campaigns (see `RaftMember`). Durable, so a member
    /// killed while it catches up is still catching up after its restart.
    pub rejoining: bool,
}

/// Write counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskWrites {
    pub entries: u64,
    pub hard_states: u64,
    pub snapshots: u64,
}

/// A handle on a member's disk; clones share it.
#[derive(Debug)]
pub struct Disk<V>(Arc<Mutex<DiskState<V>>>);

impl<V> Clone for Disk<V> {
    fn clone(&self) -> Self {
        Disk(Arc::clone(&self.0))
    }
}

impl<V: Clone + Stamp + ValueSize> Default for Disk<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + Stamp + ValueSize> Disk<V> {
    /// An empty disk: a member starting on it bootstraps (or, in a running cluster,
    /// rejoins empty and catches up from the leader).
    pub fn new() -> Self {
        Disk(Arc::new(Mutex::new(DiskState {
            hard_state: HardState::default(),
            conf_state: ConfState::default(),
            entries: VecDeque::new(),
            payloads: VecDeque::new(),
            compacted_index: 0,
            compacted_term: 0,
            snapshot: SnapshotMetadata::default(),
            backend: Arc::new(Backend::default()),
            outgoing_snapshots: BTreeMap::new(),
            writes: DiskWrites::default(),
            rejoining: false,
        })))
    }

    /// A blank disk in place of a lost one: the member started on it has the same id
    /// but has forgotten its log, its term and its votes, and rejoins its running cluster
    /// (etcd's --initial-cluster-state=existing on an empty data dir; real etcd needs the
    /// member removed and re-added, see `RaftMember`'s rejoin rules for why).
    pub fn lost() -> Self {
        let disk = Self::new();
        disk.lock().rejoining = true;
        disk
    }
}

impl<V> Disk<V> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, DiskState<V>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the disk (for checks and traces).
    pub fn read<R>(&self, f: impl FnOnce(&DiskState<V>) -> R) -> R {
        f(&self.lock())
    }
}

impl<V: Clone + Stamp + ValueSize> DiskState<V> {
    pub fn backend(&self) -> &Backend<V> {
        &self.backend
    }

    pub(crate) fn backend_mut(&mut self) -> &mut Backend<V> {
        Arc::make_mut(&mut self.backend)
    }

    pub fn first_index(&self) -> u64 {
        self.compacted_index + 1
    }

    pub fn last_index(&self) -> u64 {
        self.compacted_index + self.entries.len() as u64
    }

    /// Whether nothing was ever written (a fresh or lost disk).
    pub fn is_blank(&self) -> bool {
        self.conf_state.voters.is_empty()
    }

    pub(crate) fn payload(&self, index: u64) -> Option<Arc<Payload<V>>> {
        let i = index.checked_sub(self.first_index())?;
        self.payloads.get(i as usize).cloned().flatten()
    }

    /// Appends entries from a Ready, dropping any conflicting tail first.
    pub(crate) fn append(&mut self, entries: Vec<Entry>, payloads: Vec<Option<Arc<Payload<V>>>>) {
        let Some(first) = entries.first() else { return };
        assert!(first.index >= self.first_index(), "append overwrites compacted entries");
        assert!(first.index <= self.last_index() + 1, "append leaves a gap in the log");
        let keep = (first.index - self.first_index()) as usize;
        self.entries.truncate(keep);
        self.payloads.truncate(keep);
        self.writes.entries += entries.len() as u64;
        self.entries.extend(entries);
        self.payloads.extend(payloads);
    }

    pub(crate) fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
        self.writes.hard_states += 1;
    }

    /// Records that the member rejoining on this disk has caught up.
    pub(crate) fn finish_rejoin(&mut self) {
        self.rejoining = false;
        self.writes.hard_states += 1;
    }

    /// Installs a snapshot received from the leader: the log restarts after it.
    pub(crate) fn install_snapshot(&mut self, meta: SnapshotMetadata, backend: Arc<Backend<V>>) {
        self.entries.clear();
        self.payloads.clear();
        self.compacted_index = meta.index;
        self.compacted_term = meta.term;
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.conf_state = meta.get_conf_state().clone();
        self.backend = backend;
        self.snapshot = meta;
        self.writes.snapshots += 1;
    }

    /// Records a snapshot of the applied state (etcd's triggerSnapshot) and compacts the
    /// log up to `compact_to` (exclusive of the entries a slow follower still needs).
    pub(crate) fn take_snapshot(&mut self, compact_to: u64) {
        let b = &self.backend;
        let mut meta =
            SnapshotMetadata { index: b.applied_index(), term: b.applied_term(), ..Default::default() };
        meta.set_conf_state(self.conf_state.clone());
        self.snapshot = meta;
        self.writes.snapshots += 1;
        while self.compacted_index < compact_to && !self.entries.is_empty() {
            let e = self.entries.pop_front().expect("non-empty");
            self.payloads.pop_front();
            self.compacted_index = e.index;
            self.compacted_term = e.term;
        }
    }
}

/// raft-rs's view of the disk.
pub(crate) struct DiskStorage<V> {
    pub(crate) disk: Disk<V>,
}

impl<V: Clone + Stamp + ValueSize> Storage for DiskStorage<V> {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let d = self.disk.lock();
        Ok(RaftState { hard_state: d.hard_state.clone(), conf_state: d.conf_state.clone() })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let d = self.disk.lock();
        if low < d.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > d.last_index() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let offset = d.first_index();
        let mut out: Vec<Entry> =
            d.entries.range((low - offset) as usize..(high - offset) as usize).cloned().collect();
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let d = self.disk.lock();
        if idx == d.compacted_index {
            return Ok(d.compacted_term);
        }
        if idx < d.compacted_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        match d.entries.get((idx - d.first_index()) as usize) {
            Some(e) => Ok(e.term),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.disk.lock().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.disk.lock().last_index())
    }

    /// etcd sends the backend as applied now, not the last stored snapshot
    /// (EtcdServer.createMergedSnapshotMessage): the snapshot is the applied state.
    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let mut d = self.disk.lock();
        let backend = Arc::clone(&d.backend);
        let mut snap = Snapshot::default();
        let meta = snap.mut_metadata();
        meta.index = backend.applied_index();
        meta.term = backend.applied_term();
        meta.set_conf_state(d.conf_state.clone());
        d.outgoing_snapshots.insert((meta.index, meta.term), backend);
        Ok(snap)
    }
}
