//! A member's log and snapshot, in two copies: the member's own, in memory (etcd's
//! `raft.MemoryStorage`, which raft-rs reads through [`Storage`]), and the durable one on
//! its disk (etcd's WAL and snap directory), which the driver keeps. The member changes
//! its copy and emits every change as a [`DiskOp`] in its Ready; the driver applies the
//! same ops to the durable copy ([`DiskState::apply`]) and decides when they become
//! durable (fsync), so lost and torn writes are driver faults. After a restart the member
//! starts from a clone of the durable copy ([`super::RaftMember::recover`]).
//!
//! What the disk holds: the hard state, the log entries with their requests, the conf
//! state, the last snapshot with the applied state it captured (the backend), and, for a
//! disk that replaced a lost one, that its member has not caught up yet. The applied
//! state past the snapshot is not on disk: after a restart raft replays the committed
//! entries from the snapshot on, as etcd replays its WAL past the backend's consistent
//! index. (Defragmentation and db size are the backend's, rebuilt by the replay.)

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

use super::backend::Backend;
use super::message::Payload;
use super::{Stamp, ValueSize};

/// What one member's disk holds (the member's copy, or the durable one).
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
    /// This disk replaced a lost one and its member has not caught up from a leader yet:
    /// until then it neither votes nor campaigns (see `RaftMember`). Durable, so a member
    /// killed while it catches up is still catching up after its restart.
    pub rejoining: bool,
}

/// One write to a member's disk, in the order the member made it. A crash may lose a
/// suffix of the ops not yet fsynced, never a middle one (the WAL is append-only).
#[derive(Debug)]
pub enum DiskOp<V> {
    /// Log entries with their requests, replacing any conflicting tail.
    Append {
        entries: Vec<Entry>,
        payloads: Vec<Option<Arc<Payload<V>>>>,
    },
    HardState(HardState),
    /// A snapshot of the applied state: taken here after `--snapshot-count` entries (the
    /// log up to `compact_to` goes), or received from the leader (`installed`: the whole
    /// log goes).
    Snapshot {
        meta: SnapshotMetadata,
        backend: Arc<Backend<V>>,
        installed: bool,
        compact_to: u64,
    },
    /// The member on a replaced disk has caught up and takes part in elections again.
    FinishRejoin,
}

impl<V> Clone for DiskOp<V> {
    fn clone(&self) -> Self {
        match self {
            DiskOp::Append { entries, payloads } => {
                DiskOp::Append { entries: entries.clone(), payloads: payloads.clone() }
            }
            DiskOp::HardState(hs) => DiskOp::HardState(hs.clone()),
            DiskOp::Snapshot { meta, backend, installed, compact_to } => DiskOp::Snapshot {
                meta: meta.clone(),
                backend: Arc::clone(backend),
                installed: *installed,
                compact_to: *compact_to,
            },
            DiskOp::FinishRejoin => DiskOp::FinishRejoin,
        }
    }
}

/// The member's in-memory copy, shared between the member and raft-rs's [`Storage`].
#[derive(Debug)]
pub(crate) struct Disk<V>(Arc<Mutex<DiskState<V>>>);

impl<V> Clone for Disk<V> {
    fn clone(&self) -> Self {
        Disk(Arc::clone(&self.0))
    }
}

impl<V> Disk<V> {
    pub(crate) fn new(state: DiskState<V>) -> Self {
        Disk(Arc::new(Mutex::new(state)))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, DiskState<V>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn read<R>(&self, f: impl FnOnce(&DiskState<V>) -> R) -> R {
        f(&self.lock())
    }
}

impl<V: Clone + Stamp + ValueSize> Default for DiskState<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + Stamp + ValueSize> DiskState<V> {
    /// An empty disk: a member starting on it bootstraps (or, in a running cluster,
    /// rejoins empty and catches up from the leader).
    pub fn new() -> Self {
        DiskState {
            hard_state: HardState::default(),
            conf_state: ConfState::default(),
            entries: VecDeque::new(),
            payloads: VecDeque::new(),
            compacted_index: 0,
            compacted_term: 0,
            snapshot: SnapshotMetadata::default(),
            backend: Arc::new(Backend::default()),
            outgoing_snapshots: BTreeMap::new(),
            rejoining: false,
        }
    }

    /// A blank disk in place of a lost one: the member started on it has the same id
    /// but has forgotten its log, its term and its votes, and rejoins its running cluster
    /// (etcd's --initial-cluster-state=existing on an empty data dir; real etcd needs the
    /// member removed and re-added, see `RaftMember`'s rejoin rules for why).
    pub fn lost() -> Self {
        DiskState { rejoining: true, ..Self::new() }
    }

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

    /// Applies one write: the member to its own copy as it makes it, the driver to the
    /// durable copy once the write reaches the disk.
    pub fn apply(&mut self, op: &DiskOp<V>) {
        match op {
            DiskOp::Append { entries, payloads } => self.append(entries, payloads),
            DiskOp::HardState(hs) => self.hard_state = hs.clone(),
            DiskOp::Snapshot { meta, backend, installed: true, .. } => {
                self.install_snapshot(meta.clone(), Arc::clone(backend))
            }
            DiskOp::Snapshot { meta, backend, installed: false, compact_to } => {
                self.take_snapshot(meta.clone(), Arc::clone(backend), *compact_to)
            }
            DiskOp::FinishRejoin => self.rejoining = false,
        }
    }

    /// A copy to start a member from. The log and hard state are copied; the backend is
    /// shared (the member copies it on its first write).
    pub fn recovery_copy(&self) -> Self {
        DiskState {
            hard_state: self.hard_state.clone(),
            conf_state: self.conf_state.clone(),
            entries: self.entries.clone(),
            payloads: self.payloads.clone(),
            compacted_index: self.compacted_index,
            compacted_term: self.compacted_term,
            snapshot: self.snapshot.clone(),
            backend: Arc::clone(&self.backend),
            outgoing_snapshots: BTreeMap::new(),
            rejoining: self.rejoining,
        }
    }

    /// Appends entries, dropping any conflicting tail first.
    fn append(&mut self, entries: &[Entry], payloads: &[Option<Arc<Payload<V>>>]) {
        let Some(first) = entries.first() else { return };
        assert!(first.index >= self.first_index(), "append overwrites compacted entries");
        assert!(first.index <= self.last_index() + 1, "append leaves a gap in the log");
        let keep = (first.index - self.first_index()) as usize;
        self.entries.truncate(keep);
        self.payloads.truncate(keep);
        self.entries.extend(entries.iter().cloned());
        self.payloads.extend(payloads.iter().cloned());
    }

    /// Installs a snapshot received from the leader: the log restarts after it.
    fn install_snapshot(&mut self, meta: SnapshotMetadata, backend: Arc<Backend<V>>) {
        self.entries.clear();
        self.payloads.clear();
        self.compacted_index = meta.index;
        self.compacted_term = meta.term;
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.conf_state = meta.get_conf_state().clone();
        self.backend = backend;
        self.snapshot = meta;
    }

    /// Records a snapshot of the applied state (etcd's triggerSnapshot) and compacts the
    /// log up to `compact_to` (exclusive of the entries a slow follower still needs).
    fn take_snapshot(&mut self, meta: SnapshotMetadata, backend: Arc<Backend<V>>, compact_to: u64) {
        self.snapshot = meta;
        self.backend = backend;
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
