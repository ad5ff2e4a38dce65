//! etcd's multi-version key-value store (server/storage/mvcc): revisions, range at a
//! revision, txn compare-and-swap, the event history that watches replay, compaction,
//! and the size accounting behind the backend quota.
//!
//! Revisions are global: every transaction that writes bumps the store revision by one;
//! each key keeps its create revision, mod revision and version. Watches read the event
//! history from a revision until it is compacted.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock};

use super::errors::{ERR_COMPACTED, ERR_FUTURE_REV};
use super::{Compare, CompareOp, CompareTarget, EventType, KeyValue, MvccEvent, Op, Stamp, ValueSize};

/// server/etcdserver/quota.go `kvOverhead`: etcd's estimate of the metadata a stored key
/// costs. Used both for a write's quota cost and for the bytes a stored revision takes.
pub const KV_OVERHEAD_BYTES: u64 = 256;

/// A txn's outcome: whether the compares held, per-op results, committed events.
pub type TxnOutcome<V> = (bool, Vec<Option<KeyValue<V>>>, Vec<MvccEvent<V>>);

/// The values a txn's puts stored, stamped with their revision once and shared by every
/// member that applies the same raft entry (so an object is stamped, and copied, once per
/// cluster rather than once per member).
pub struct StampCache<V> {
    stamped: OnceLock<(i64, bool, Vec<V>)>,
}

impl<V> Default for StampCache<V> {
    fn default() -> Self {
        StampCache { stamped: OnceLock::new() }
    }
}

impl<V> std::fmt::Debug for StampCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StampCache")
    }
}

/// Bytes one stored revision of `key` with `value` takes (see [`KV_OVERHEAD_BYTES`]).
pub fn revision_bytes<V: ValueSize>(key: &str, value: &V) -> u64 {
    KV_OVERHEAD_BYTES + key.len() as u64 + value.approx_bytes()
}

/// Entries per history chunk.
const HISTORY_CHUNK: usize = 4096;

/// The event history in fixed-size chunks: it grows by one chunk at a time (a single
/// deque would double, holding up to twice its length in a long run), and compaction
/// frees whole chunks. Chunks are shared between clones (a snapshot and the live store)
/// and copied only when written: a clone copies at most the chunk at each end.
#[derive(Clone, Debug)]
struct History<V> {
    chunks: VecDeque<Arc<Chunk<V>>>,
}

/// Up to [`HISTORY_CHUNK`] events, each with its revision.
type Chunk<V> = VecDeque<(i64, MvccEvent<V>)>;

impl<V> Default for History<V> {
    fn default() -> Self {
        History { chunks: VecDeque::new() }
    }
}

impl<V: Clone> History<V> {
    fn push_back(&mut self, entry: (i64, MvccEvent<V>)) {
        if self.chunks.back().is_none_or(|c| c.len() == HISTORY_CHUNK) {
            self.chunks.push_back(Arc::new(VecDeque::with_capacity(HISTORY_CHUNK)));
        }
        Arc::make_mut(self.chunks.back_mut().expect("a chunk")).push_back(entry);
    }

    /// Drops the entries up to `revision`, oldest first, showing each to `seen`. Whole
    /// chunks go without a copy; only a chunk cut in the middle is copied if shared.
    fn drop_through(&mut self, revision: i64, mut seen: impl FnMut(i64, &MvccEvent<V>)) {
        while let Some(first) = self.chunks.front() {
            if first.back().is_some_and(|(r, _)| *r <= revision) {
                for (r, e) in first.iter() {
                    seen(*r, e);
                }
                self.chunks.pop_front();
                continue;
            }
            let cut = first.partition_point(|(r, _)| *r <= revision);
            if cut > 0 {
                let chunk = Arc::make_mut(self.chunks.front_mut().expect("a chunk"));
                for (r, e) in chunk.drain(..cut) {
                    seen(r, &e);
                }
            }
            return;
        }
    }

    fn iter(&self) -> impl DoubleEndedIterator<Item = &(i64, MvccEvent<V>)> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// Entries with revision >= `revision`, oldest first.
    fn since(&self, revision: i64) -> impl Iterator<Item = &(i64, MvccEvent<V>)> {
        let first = self.chunks.partition_point(|c| c.back().is_some_and(|(r, _)| *r < revision));
        self.chunks.range(first..).flat_map(|c| c.iter()).skip_while(move |(r, _)| *r < revision)
    }
}

/// The store.
#[derive(Clone, Debug)]
pub struct MvccStore<V> {
    revision: i64,
    compacted: i64,
    kvs: BTreeMap<super::Key, KeyValue<V>>,
    history: History<V>,
    /// Bytes of every revision kept (live values, history not yet compacted, tombstones).
    in_use_bytes: u64,
    /// Bytes of superseded revisions whose events were already compacted out of the
    /// history; the next compaction frees them.
    superseded_compacted_bytes: u64,
}

impl<V: Clone + Stamp + ValueSize> Default for MvccStore<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + Stamp + ValueSize> MvccStore<V> {
    /// An empty store is at revision 1, as a new etcd cluster is.
    pub fn new() -> Self {
        MvccStore {
            revision: 1,
            compacted: 0,
            kvs: BTreeMap::new(),
            history: History::default(),
            in_use_bytes: 0,
            superseded_compacted_bytes: 0,
        }
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The revision the history was last compacted to (0 = never).
    pub fn compacted_revision(&self) -> i64 {
        self.compacted
    }

    /// Bytes the kept revisions take, as bbolt's in-use pages would.
    pub fn in_use_bytes(&self) -> u64 {
        self.in_use_bytes
    }

    pub fn get(&self, key: &str) -> Option<&KeyValue<V>> {
        self.kvs.get(key)
    }

    /// Every live key in order (for snapshots and checks).
    pub fn iter(&self) -> impl Iterator<Item = &KeyValue<V>> {
        self.kvs.values()
    }

    /// A key, or every key with the prefix, at the latest revision; `limit` 0 = no limit.
    /// Returns the kvs and the count before the limit.
    pub fn range(&self, key: &str, prefix: bool, limit: usize) -> (Vec<KeyValue<V>>, usize) {
        if !prefix {
            let kvs: Vec<_> = self.kvs.get(key).cloned().into_iter().collect();
            let n = kvs.len();
            return (kvs, n);
        }
        let all = self
            .kvs
            .range::<str, _>((std::ops::Bound::Included(key), std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(key));
        take_limited(all.map(|(_, kv)| kv), limit)
    }

    /// Range as of `revision` (0 = latest). etcd keeps the state at the compacted revision
    /// itself, so only revisions below it are `ERR_COMPACTED`.
    pub fn range_at(
        &self,
        key: &str,
        prefix: bool,
        limit: usize,
        revision: i64,
    ) -> Result<(Vec<KeyValue<V>>, usize), &'static str> {
        if revision <= 0 || revision == self.revision {
            return Ok(self.range(key, prefix, limit));
        }
        if revision > self.revision {
            return Err(ERR_FUTURE_REV);
        }
        if revision < self.compacted {
            return Err(ERR_COMPACTED);
        }
        let matches = |k: &str| if prefix { k.starts_with(key) } else { k == key };
        // Undo, newest first, every event after `revision` on a matching key.
        let mut overlay: BTreeMap<&str, Option<&KeyValue<V>>> = BTreeMap::new();
        for (rev, ev) in self.history.iter().rev() {
            if *rev <= revision {
                break;
            }
            if matches(&ev.kv.key) {
                // `prev_kv` is exactly the key before this event (None for a creation).
                overlay.insert(&*ev.kv.key, ev.prev_kv.as_ref());
            }
        }
        let mut merged: BTreeMap<&str, &KeyValue<V>> = if prefix {
            self.kvs
                .range::<str, _>((std::ops::Bound::Included(key), std::ops::Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(key))
                .map(|(k, v)| (&**k, v))
                .collect()
        } else {
            self.kvs.get_key_value(key).map(|(k, v)| (&**k, v)).into_iter().collect()
        };
        for (k, before) in overlay {
            match before {
                Some(kv) => merged.insert(k, kv),
                None => merged.remove(k),
            };
        }
        Ok(take_limited(merged.into_values(), limit))
    }

    fn compare_holds(&self, c: &Compare) -> bool {
        let kv = self.kvs.get(c.key.as_str());
        let actual = match c.target {
            CompareTarget::ModRevision => kv.map_or(0, |k| k.mod_revision),
            CompareTarget::CreateRevision => kv.map_or(0, |k| k.create_revision),
            CompareTarget::Version => kv.map_or(0, |k| k.version),
        };
        match c.op {
            CompareOp::Equal => actual == c.value,
            CompareOp::NotEqual => actual != c.value,
            CompareOp::Less => actual < c.value,
            CompareOp::Greater => actual > c.value,
        }
    }

    /// Whether every compare of a txn holds now.
    pub fn compares_hold(&self, compare: &[Compare]) -> bool {
        compare.iter().all(|c| self.compare_holds(c))
    }

    /// Applies a txn atomically: one revision for all its writes. The put values are
    /// moved into the store (stamped in place, no copy when nobody else holds them).
    pub fn txn(&mut self, compare: &[Compare], success: Vec<Op<V>>, failure: Vec<Op<V>>) -> TxnOutcome<V> {
        let ok = self.compares_hold(compare);
        let branch = if ok { success } else { failure };
        let rev = self.next_revision(&branch);
        let mut values = Vec::new();
        let keys: Vec<Op<()>> = branch
            .into_iter()
            .map(|op| match op {
                Op::Put { key, mut value } => {
                    value.stamp(rev);
                    values.push(value);
                    Op::Put { key, value: () }
                }
                Op::PutWithLease { key, mut value, lease } => {
                    value.stamp(rev);
                    values.push(value);
                    Op::PutWithLease { key, value: (), lease }
                }
                Op::Delete { key } => Op::Delete { key },
                Op::Get { key } => Op::Get { key },
            })
            .collect();
        self.apply_branch(ok, rev, &keys, values.into_iter())
    }

    /// [`MvccStore::txn`] on borrowed ops; put values come stamped from `cache` when
    /// another member already applied the same entry.
    pub fn txn_shared(
        &mut self,
        compare: &[Compare],
        success: &[Op<V>],
        failure: &[Op<V>],
        cache: &StampCache<V>,
    ) -> TxnOutcome<V> {
        let ok = self.compares_hold(compare);
        let ops = if ok { success } else { failure };
        let rev = self.next_revision(ops);
        let (cached_rev, cached_ok, stamped) = cache.stamped.get_or_init(|| {
            let values = ops.iter().filter_map(put_value).map(|v| {
                let mut v = v.clone();
                v.stamp(rev);
                v
            });
            (rev, ok, values.collect())
        });
        assert_eq!((*cached_rev, *cached_ok), (rev, ok), "members applied one entry differently");
        self.apply_branch(ok, rev, ops, stamped.iter().cloned())
    }

    /// The revision a branch's writes get (the current one if it only reads).
    fn next_revision<U>(&self, ops: &[Op<U>]) -> i64 {
        let writes = ops.iter().any(|o| !matches!(o, Op::Get { .. }));
        if writes {
            self.revision + 1
        } else {
            self.revision
        }
    }

    /// Runs a branch's ops at `rev`; `stamped` yields each put's value in order.
    fn apply_branch<U>(
        &mut self,
        ok: bool,
        rev: i64,
        ops: &[Op<U>],
        mut stamped: impl Iterator<Item = V>,
    ) -> TxnOutcome<V> {
        let mut results = Vec::with_capacity(ops.len());
        let mut events = Vec::new();
        for op in ops {
            match op {
                Op::Get { key } => results.push(self.kvs.get(key.as_str()).cloned()),
                Op::Put { key, .. } | Op::PutWithLease { key, .. } => {
                    let value = stamped.next().expect("one stamped value per put");
                    let lease = if let Op::PutWithLease { lease, .. } = op { *lease } else { 0 };
                    let kv = self.put(key, value, lease, rev, &mut events);
                    results.push(Some(kv));
                }
                Op::Delete { key } => results.push(self.delete(key, rev, &mut events)),
            }
        }
        if !events.is_empty() {
            self.revision = rev;
            for e in &events {
                self.history.push_back((rev, e.clone()));
            }
        }
        (ok, results, events)
    }

    fn put(
        &mut self,
        key: &str,
        value: V,
        lease: i64,
        rev: i64,
        events: &mut Vec<MvccEvent<V>>,
    ) -> KeyValue<V> {
        // One search: a live key's entry is replaced in place (keeping its shared key).
        let (kv, prev) = match self.kvs.get_mut(key) {
            Some(slot) => {
                let kv = KeyValue {
                    key: slot.key.clone(),
                    create_revision: slot.create_revision,
                    mod_revision: rev,
                    version: slot.version + 1,
                    value,
                    lease,
                };
                (kv.clone(), Some(std::mem::replace(slot, kv)))
            }
            None => {
                let kv = KeyValue {
                    key: super::Key::from(key),
                    create_revision: rev,
                    mod_revision: rev,
                    version: 1,
                    value,
                    lease,
                };
                self.kvs.insert(kv.key.clone(), kv.clone());
                (kv, None)
            }
        };
        self.in_use_bytes += revision_bytes(key, &kv.value);
        if let Some(p) = &prev {
            self.note_superseded(p);
        }
        events.push(MvccEvent { type_: EventType::Put, kv: kv.clone(), prev_kv: prev });
        kv
    }

    fn delete(&mut self, key: &str, rev: i64, events: &mut Vec<MvccEvent<V>>) -> Option<KeyValue<V>> {
        let prev = self.kvs.remove(key)?;
        self.note_superseded(&prev);
        // A tombstone revision.
        self.in_use_bytes += KV_OVERHEAD_BYTES + key.len() as u64;
        let kv = KeyValue { mod_revision: rev, ..prev.clone() };
        events.push(MvccEvent { type_: EventType::Delete, kv, prev_kv: Some(prev.clone()) });
        Some(prev)
    }

    /// A revision stops being live; if its event is already compacted away, the next
    /// compaction frees it (otherwise compacting its event does).
    fn note_superseded(&mut self, prev: &KeyValue<V>) {
        if prev.mod_revision <= self.compacted {
            self.superseded_compacted_bytes += revision_bytes(&prev.key, &prev.value);
        }
    }

    /// Deletes every key of a revoked lease in one revision, as the lessor's revoke txn
    /// does. Returns the events.
    pub fn delete_keys(&mut self, keys: &[String]) -> Vec<MvccEvent<V>> {
        let ops: Vec<Op<V>> = keys.iter().map(|k| Op::Delete { key: k.clone() }).collect();
        if ops.is_empty() {
            return Vec::new();
        }
        self.txn_shared(&[], &ops, &[], &StampCache::default()).2
    }

    /// Events with revision >= `revision`.
    pub fn events_since(&self, revision: i64) -> Result<Vec<MvccEvent<V>>, &'static str> {
        if revision <= self.compacted {
            return Err(ERR_COMPACTED);
        }
        if revision > self.revision + 1 {
            return Err(ERR_FUTURE_REV);
        }
        Ok(self.history.since(revision).map(|(_, e)| e.clone()).collect())
    }

    /// Forgets history up to and including `revision`, freeing the bytes of revisions no
    /// longer live.
    pub fn compact(&mut self, revision: i64) -> Result<(), &'static str> {
        if revision <= self.compacted {
            return Err(ERR_COMPACTED);
        }
        if revision > self.revision {
            return Err(ERR_FUTURE_REV);
        }
        self.compacted = revision;
        let mut freed = std::mem::take(&mut self.superseded_compacted_bytes);
        let kvs = &self.kvs;
        self.history.drop_through(revision, |rev, ev| {
            freed += match ev.type_ {
                EventType::Delete => KV_OVERHEAD_BYTES + ev.kv.key.len() as u64,
                EventType::Put if kvs.get(&ev.kv.key).is_some_and(|kv| kv.mod_revision == rev) => 0,
                EventType::Put => revision_bytes(&ev.kv.key, &ev.kv.value),
            };
        });
        debug_assert!(freed <= self.in_use_bytes, "freed more bytes than were in use");
        self.in_use_bytes = self.in_use_bytes.saturating_sub(freed);
        Ok(())
    }
}

fn put_value<V>(op: &Op<V>) -> Option<&V> {
    match op {
        Op::Put { value, .. } | Op::PutWithLease { value, .. } => Some(value),
        _ => None,
    }
}

fn take_limited<'a, V: Clone + 'a>(
    kvs: impl Iterator<Item = &'a KeyValue<V>>,
    limit: usize,
) -> (Vec<KeyValue<V>>, usize) {
    let mut out = Vec::new();
    let mut count = 0;
    for kv in kvs {
        count += 1;
        if limit == 0 || out.len() < limit {
            out.push(kv.clone());
        }
    }
    (out, count)
}
