//! etcd's MVCC key-value store (server/storage/mvcc) and one unreplicated member.
//!
//! Revisions are global: every transaction that writes bumps the store revision by one;
//! each key keeps its create revision, mod revision and version. Watches read the event
//! history from a revision until it is compacted. The member answers requests as messages
//! (`EtcdRequest` in, `EtcdResponse` and committed events out), so replication can later
//! sit between the API server and the store without changing either.

use std::collections::{BTreeMap, VecDeque};

/// etcd's `mvcc.ErrCompacted`.
pub const ERR_COMPACTED: &str = "mvcc: required revision has been compacted";
/// etcd's `mvcc.ErrFutureRev`.
pub const ERR_FUTURE_REV: &str = "mvcc: required revision is a future revision";

/// Values that carry their own revision (objects' `metadata.resourceVersion`): the store
/// stamps the mod revision into the value it commits.
pub trait Stamp {
    fn stamp(&mut self, revision: i64);
}

impl Stamp for i64 {
    fn stamp(&mut self, _: i64) {}
}
impl Stamp for String {
    fn stamp(&mut self, _: i64) {}
}

#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue<V> {
    pub key: String,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub value: V,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Put,
    Delete,
}

/// One committed change, as a watch delivers it.
#[derive(Clone, Debug, PartialEq)]
pub struct MvccEvent<V> {
    pub type_: EventType,
    /// For a delete: the key's last value, with `mod_revision` the deletion's revision.
    pub kv: KeyValue<V>,
    pub prev_kv: Option<KeyValue<V>>,
}

impl<V> MvccEvent<V> {
    /// The verb a Kubernetes audit log would give it.
    pub fn verb(&self) -> &'static str {
        match self.type_ {
            EventType::Delete => "delete",
            EventType::Put if self.kv.create_revision == self.kv.mod_revision => "create",
            EventType::Put => "update",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareTarget {
    ModRevision,
    CreateRevision,
    Version,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Less,
    Greater,
}

/// A txn guard; a missing key has revisions and version 0, as in etcd.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    pub key: String,
    pub target: CompareTarget,
    pub op: CompareOp,
    pub value: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op<V> {
    Put { key: String, value: V },
    Delete { key: String },
    Get { key: String },
}

#[derive(Clone, Debug, PartialEq)]
pub enum EtcdRequest<V> {
    /// A key, or every key with the prefix; `limit` 0 = no limit.
    Range {
        key: String,
        prefix: bool,
        limit: usize,
    },
    Txn {
        compare: Vec<Compare>,
        success: Vec<Op<V>>,
        failure: Vec<Op<V>>,
    },
    Compact {
        revision: i64,
    },
    /// Events since `revision` (inclusive), as a watch created at that revision replays.
    WatchFrom {
        revision: i64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum EtcdResponse<V> {
    Range {
        revision: i64,
        kvs: Vec<KeyValue<V>>,
        count: usize,
    },
    /// `results[i]`: for a Get its value, for a Put the new value, for a Delete the
    /// previous value.
    Txn {
        revision: i64,
        succeeded: bool,
        results: Vec<Option<KeyValue<V>>>,
    },
    Compact {
        revision: i64,
    },
    Events {
        revision: i64,
        events: Vec<MvccEvent<V>>,
    },
    Error {
        message: String,
    },
}

/// A txn's outcome: whether the compares held, per-op results, committed events.
pub type TxnOutcome<V> = (bool, Vec<Option<KeyValue<V>>>, Vec<MvccEvent<V>>);

/// The store.
#[derive(Clone, Debug)]
pub struct MvccStore<V> {
    revision: i64,
    compacted: i64,
    kvs: BTreeMap<String, KeyValue<V>>,
    history: VecDeque<(i64, MvccEvent<V>)>,
}

impl<V: Clone + Stamp> Default for MvccStore<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + Stamp> MvccStore<V> {
    /// An empty store is at revision 1, as a new etcd cluster is.
    pub fn new() -> Self {
        MvccStore { revision: 1, compacted: 0, kvs: BTreeMap::new(), history: VecDeque::new() }
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }

    pub fn get(&self, key: &str) -> Option<&KeyValue<V>> {
        self.kvs.get(key)
    }

    pub fn range(&self, key: &str, prefix: bool, limit: usize) -> (Vec<KeyValue<V>>, usize) {
        if !prefix {
            let kvs: Vec<_> = self.kvs.get(key).cloned().into_iter().collect();
            let n = kvs.len();
            return (kvs, n);
        }
        let all = self.kvs.range(key.to_string()..).take_while(|(k, _)| k.starts_with(key));
        let mut kvs = Vec::new();
        let mut count = 0;
        for (_, kv) in all {
            count += 1;
            if limit == 0 || kvs.len() < limit {
                kvs.push(kv.clone());
            }
        }
        (kvs, count)
    }

    fn compare_holds(&self, c: &Compare) -> bool {
        let kv = self.kvs.get(&c.key);
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

    /// Applies a txn atomically: one revision for all its writes.
    pub fn txn(&mut self, compare: &[Compare], success: Vec<Op<V>>, failure: Vec<Op<V>>) -> TxnOutcome<V> {
        let ok = compare.iter().all(|c| self.compare_holds(c));
        let ops = if ok { success } else { failure };
        let writes = ops.iter().any(|o| !matches!(o, Op::Get { .. }));
        let rev = if writes { self.revision + 1 } else { self.revision };
        let mut results = Vec::with_capacity(ops.len());
        let mut events = Vec::new();
        for op in ops {
            match op {
                Op::Get { key } => results.push(self.kvs.get(&key).cloned()),
                Op::Put { key, mut value } => {
                    value.stamp(rev);
                    let prev = self.kvs.get(&key).cloned();
                    let kv = KeyValue {
                        key: key.clone(),
                        create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
                        mod_revision: rev,
                        version: prev.as_ref().map_or(1, |p| p.version + 1),
                        value,
                    };
                    self.kvs.insert(key, kv.clone());
                    events.push(MvccEvent { type_: EventType::Put, kv: kv.clone(), prev_kv: prev });
                    results.push(Some(kv));
                }
                Op::Delete { key } => {
                    let prev = self.kvs.remove(&key);
                    if let Some(p) = &prev {
                        let kv = KeyValue { mod_revision: rev, ..p.clone() };
                        events.push(MvccEvent { type_: EventType::Delete, kv, prev_kv: prev.clone() });
                    }
                    results.push(prev);
                }
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

    /// Events with revision >= `revision`.
    pub fn events_since(&self, revision: i64) -> Result<Vec<MvccEvent<V>>, &'static str> {
        if revision <= self.compacted {
            return Err(ERR_COMPACTED);
        }
        if revision > self.revision + 1 {
            return Err(ERR_FUTURE_REV);
        }
        Ok(self.history.iter().filter(|(r, _)| *r >= revision).map(|(_, e)| e.clone()).collect())
    }

    /// Forgets history up to and including `revision`.
    pub fn compact(&mut self, revision: i64) -> Result<(), &'static str> {
        if revision <= self.compacted {
            return Err(ERR_COMPACTED);
        }
        if revision > self.revision {
            return Err(ERR_FUTURE_REV);
        }
        self.compacted = revision;
        while self.history.front().is_some_and(|(r, _)| *r <= revision) {
            self.history.pop_front();
        }
        Ok(())
    }
}

/// One unreplicated etcd member. Its store is what survives a restart (its disk).
#[derive(Clone, Debug)]
pub struct Member<V> {
    pub store: MvccStore<V>,
}

impl<V: Clone + Stamp> Default for Member<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + Stamp> Member<V> {
    pub fn new() -> Self {
        Member { store: MvccStore::new() }
    }

    /// Serves one request; returns the response and the events it committed.
    pub fn handle(&mut self, req: EtcdRequest<V>) -> (EtcdResponse<V>, Vec<MvccEvent<V>>) {
        let s = &mut self.store;
        match req {
            EtcdRequest::Range { key, prefix, limit } => {
                let (kvs, count) = s.range(&key, prefix, limit);
                (EtcdResponse::Range { revision: s.revision(), kvs, count }, Vec::new())
            }
            EtcdRequest::Txn { compare, success, failure } => {
                let (succeeded, results, events) = s.txn(&compare, success, failure);
                (EtcdResponse::Txn { revision: s.revision(), succeeded, results }, events)
            }
            EtcdRequest::Compact { revision } => match s.compact(revision) {
                Ok(()) => (EtcdResponse::Compact { revision: s.revision() }, Vec::new()),
                Err(e) => (EtcdResponse::Error { message: e.to_string() }, Vec::new()),
            },
            EtcdRequest::WatchFrom { revision } => match s.events_since(revision) {
                Ok(events) => (EtcdResponse::Events { revision: s.revision(), events }, Vec::new()),
                Err(e) => (EtcdResponse::Error { message: e.to_string() }, Vec::new()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: i64) -> Op<i64> {
        Op::Put { key: k.into(), value: v }
    }
    fn cmp_mod(k: &str, rev: i64) -> Compare {
        Compare { key: k.into(), target: CompareTarget::ModRevision, op: CompareOp::Equal, value: rev }
    }

    #[test]
    fn revisions_and_versions() {
        let mut s = MvccStore::<i64>::new();
        assert_eq!(s.revision(), 1);
        s.txn(&[], vec![put("/a", 1)], vec![]);
        s.txn(&[], vec![put("/a", 2)], vec![]);
        s.txn(&[], vec![put("/b", 3)], vec![]);
        let a = s.get("/a").unwrap();
        assert_eq!((a.create_revision, a.mod_revision, a.version, a.value), (2, 3, 2, 2));
        assert_eq!(s.revision(), 4);
    }

    #[test]
    fn txn_compare_and_swap() {
        let mut s = MvccStore::<i64>::new();
        // create-if-absent
        let (ok, _, _) = s.txn(
            &[Compare {
                key: "/k".into(),
                target: CompareTarget::CreateRevision,
                op: CompareOp::Equal,
                value: 0,
            }],
            vec![put("/k", 1)],
            vec![Op::Get { key: "/k".into() }],
        );
        assert!(ok);
        let (ok, res, ev) =
            s.txn(&[cmp_mod("/k", 1)], vec![put("/k", 9)], vec![Op::Get { key: "/k".into() }]);
        assert!(!ok, "stale revision must fail");
        assert!(ev.is_empty());
        assert_eq!(res[0].as_ref().unwrap().value, 1);
        let (ok, _, ev) = s.txn(&[cmp_mod("/k", 2)], vec![put("/k", 9)], vec![]);
        assert!(ok);
        assert_eq!(ev[0].verb(), "update");
        assert_eq!(ev[0].prev_kv.as_ref().unwrap().value, 1);
    }

    #[test]
    fn range_prefix_limit_and_delete() {
        let mut s = MvccStore::<i64>::new();
        for (i, k) in ["/r/pods/a", "/r/pods/b", "/r/pods/c", "/r/nodes/x"].iter().enumerate() {
            s.txn(&[], vec![put(k, i as i64)], vec![]);
        }
        let (kvs, count) = s.range("/r/pods/", true, 2);
        assert_eq!((kvs.len(), count), (2, 3));
        let (_, _, ev) = s.txn(&[], vec![Op::Delete { key: "/r/pods/a".into() }], vec![]);
        assert_eq!(ev[0].verb(), "delete");
        assert_eq!(s.range("/r/pods/", true, 0).1, 2);
    }

    #[test]
    fn watch_from_revision_and_compaction() {
        let mut s = MvccStore::<i64>::new();
        for i in 0..5 {
            s.txn(&[], vec![put("/w", i)], vec![]);
        }
        assert_eq!(s.events_since(4).unwrap().len(), 3); // revisions 4, 5, 6
        s.compact(4).unwrap();
        assert_eq!(s.events_since(3).unwrap_err(), ERR_COMPACTED);
        assert_eq!(s.events_since(5).unwrap().len(), 2);
        assert_eq!(s.events_since(99).unwrap_err(), ERR_FUTURE_REV);
    }
}
