//! The applied state of one member, as etcd's bbolt backend holds it: the MVCC store,
//! the leases and the keys attached to them, the alarms, the applied raft index, and
//! the database size that the quota checks.

use std::collections::{BTreeMap, BTreeSet};

use super::config::MAX_LEASE_TTL_SECONDS;
use super::errors::{ERR_LEASE_EXIST, ERR_LEASE_NOT_FOUND, ERR_LEASE_TTL_TOO_LARGE, ERR_NO_SPACE};
use super::message::{Payload, WriteRequest};
use super::mvcc::{MvccStore, KV_OVERHEAD_BYTES};
use super::{EtcdResponse, EventType, MvccEvent, Op, Stamp, ValueSize};

/// server/etcdserver/quota.go `leaseOverhead`: the quota cost of storing a lease.
pub const LEASE_OVERHEAD_BYTES: u64 = 64;

/// A granted lease as the backend stores it (lease.Lease: ID, TTL) plus the keys
/// attached to it (which etcd rebuilds from the key index on start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    pub ttl_seconds: i64,
    pub keys: BTreeSet<String>,
}

/// The result of applying one entry.
#[derive(Debug)]
pub struct Applied<V> {
    pub response: EtcdResponse<V>,
    pub events: Vec<MvccEvent<V>>,
    /// The write went over the quota: this member must raise the NOSPACE alarm
    /// (EtcdServer.applyEntryNormal).
    pub raise_nospace: bool,
}

#[derive(Clone, Debug)]
pub struct Backend<V> {
    store: MvccStore<V>,
    leases: BTreeMap<i64, LeaseRecord>,
    /// Members whose NOSPACE alarm is raised; any one caps the whole cluster.
    nospace_alarms: BTreeSet<u64>,
    applied_index: u64,
    applied_term: u64,
    /// The database file's size: the high-water mark of the bytes in use (bbolt never
    /// shrinks its file; only a defragmentation does).
    db_size_bytes: u64,
}

impl<V: Clone + Stamp + ValueSize> Default for Backend<V> {
    fn default() -> Self {
        Backend {
            store: MvccStore::new(),
            leases: BTreeMap::new(),
            nospace_alarms: BTreeSet::new(),
            applied_index: 0,
            applied_term: 0,
            db_size_bytes: 0,
        }
    }
}

impl<V: Clone + Stamp + ValueSize> Backend<V> {
    pub fn store(&self) -> &MvccStore<V> {
        &self.store
    }
    pub fn leases(&self) -> &BTreeMap<i64, LeaseRecord> {
        &self.leases
    }
    pub fn nospace_alarms(&self) -> &BTreeSet<u64> {
        &self.nospace_alarms
    }
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }
    pub fn applied_term(&self) -> u64 {
        self.applied_term
    }
    pub fn db_size_bytes(&self) -> u64 {
        self.db_size_bytes
    }
    pub fn db_size_in_use_bytes(&self) -> u64 {
        self.store.in_use_bytes()
    }

    pub(crate) fn set_applied(&mut self, index: u64, term: u64) {
        debug_assert!(index > self.applied_index, "applied index must grow");
        self.applied_index = index;
        self.applied_term = term;
    }

    /// Shrinks the file to what is in use (etcdctl defrag on this member).
    pub fn defragment(&mut self) -> u64 {
        self.db_size_bytes = self.store.in_use_bytes();
        self.db_size_bytes
    }

    /// What a write costs against the quota (server/etcdserver/quota.go Cost): puts
    /// (costPut: kvOverhead + key + value, whether or not the put names a lease; a txn
    /// costs its dearer branch) and lease grants (leaseOverhead).
    pub fn quota_cost(request: &WriteRequest<V>) -> u64 {
        let put_cost = |op: &Op<V>| match op {
            Op::Put { key, value } | Op::PutWithLease { key, value, .. } => {
                KV_OVERHEAD_BYTES + key.len() as u64 + value.approx_bytes()
            }
            _ => 0,
        };
        match request {
            WriteRequest::Txn { success, failure, .. } => {
                let s: u64 = success.iter().map(put_cost).sum();
                let f: u64 = failure.iter().map(put_cost).sum();
                s.max(f)
            }
            WriteRequest::LeaseGrant { .. } => LEASE_OVERHEAD_BYTES,
            _ => 0,
        }
    }

    /// quota.go BackendQuota.Available: a write with a cost fits if the file plus the cost
    /// stays below the quota.
    pub fn quota_available(&self, request: &WriteRequest<V>, quota_bytes: u64) -> bool {
        let cost = Self::quota_cost(request);
        cost == 0 || self.db_size_bytes + cost < quota_bytes
    }

    /// Applies one committed request (etcd's uberApplier: the capped applier while a
    /// NOSPACE alarm is raised, the quota applier otherwise).
    pub fn apply(
        &mut self,
        payload: &Payload<V>,
        quota_bytes: u64,
        min_lease_ttl_seconds: i64,
    ) -> Applied<V> {
        let capped = !self.nospace_alarms.is_empty();
        let request = &payload.request;
        if capped && Self::quota_cost(request) > 0 {
            return error(ERR_NO_SPACE);
        }
        let fits = self.quota_available(request, quota_bytes);
        let mut applied = match request {
            WriteRequest::Txn { compare, success, failure } => {
                self.apply_txn(payload, compare, success, failure)
            }
            WriteRequest::Compact { revision } => match self.store.compact(*revision) {
                Ok(()) => ok(EtcdResponse::Compact { revision: self.store.revision() }),
                Err(e) => error(e),
            },
            WriteRequest::LeaseGrant { id, ttl_seconds } => {
                self.grant(*id, *ttl_seconds, min_lease_ttl_seconds)
            }
            WriteRequest::LeaseRevoke { id } => self.revoke(*id),
            WriteRequest::Alarm { member, activate } => {
                if *activate {
                    self.nospace_alarms.insert(*member);
                } else {
                    self.nospace_alarms.clear();
                }
                ok(EtcdResponse::Alarms { nospace: self.nospace_alarms.iter().copied().collect() })
            }
        };
        self.db_size_bytes = self.db_size_bytes.max(self.store.in_use_bytes());
        // quotaApplierV3: the write is applied, but answered with ErrNoSpace.
        if !fits && !matches!(applied.response, EtcdResponse::Error { .. }) {
            applied.response = EtcdResponse::Error { message: ERR_NO_SPACE.to_string() };
            applied.raise_nospace = true;
        }
        applied
    }

    fn apply_txn(
        &mut self,
        payload: &Payload<V>,
        compare: &[super::Compare],
        success: &[Op<V>],
        failure: &[Op<V>],
    ) -> Applied<V> {
        let branch = if self.store.compares_hold(compare) { success } else { failure };
        // txn.go checkTxn: a put's lease must exist.
        let missing_lease = branch.iter().any(|op| match op {
            Op::PutWithLease { lease, .. } => *lease != 0 && !self.leases.contains_key(lease),
            _ => false,
        });
        if missing_lease {
            return error(ERR_LEASE_NOT_FOUND);
        }
        let (succeeded, results, events) = self.store.txn_shared(compare, success, failure, &payload.stamps);
        self.attach_leases(&events);
        let response = EtcdResponse::Txn { revision: self.store.revision(), succeeded, results };
        Applied { response, events, raise_nospace: false }
    }

    /// Keeps each lease's key set in step with the events (a put moves a key to its new
    /// lease; a delete detaches it).
    fn attach_leases(&mut self, events: &[MvccEvent<V>]) {
        for ev in events {
            if let Some(prev) = ev.prev_kv.as_ref().filter(|p| p.lease != 0) {
                if let Some(l) = self.leases.get_mut(&prev.lease) {
                    l.keys.remove(&*prev.key);
                }
            }
            if ev.type_ == EventType::Put && ev.kv.lease != 0 {
                if let Some(l) = self.leases.get_mut(&ev.kv.lease) {
                    l.keys.insert(ev.kv.key.to_string());
                }
            }
        }
    }

    /// lessor.Grant: TTLs below the minimum are raised to it.
    fn grant(&mut self, id: i64, ttl_seconds: i64, min_ttl_seconds: i64) -> Applied<V> {
        if ttl_seconds > MAX_LEASE_TTL_SECONDS {
            return error(ERR_LEASE_TTL_TOO_LARGE);
        }
        if self.leases.contains_key(&id) {
            return error(ERR_LEASE_EXIST);
        }
        let ttl = ttl_seconds.max(min_ttl_seconds);
        self.leases.insert(id, LeaseRecord { ttl_seconds: ttl, keys: BTreeSet::new() });
        ok(EtcdResponse::LeaseGrant { revision: self.store.revision(), id, ttl_seconds: ttl })
    }

    /// lessor.Revoke: the lease's keys go in one txn (one revision).
    fn revoke(&mut self, id: i64) -> Applied<V> {
        let Some(lease) = self.leases.remove(&id) else {
            return error(ERR_LEASE_NOT_FOUND);
        };
        let keys: Vec<String> = lease.keys.into_iter().collect();
        let events = self.store.delete_keys(&keys);
        Applied {
            response: EtcdResponse::LeaseRevoke { revision: self.store.revision() },
            events,
            raise_nospace: false,
        }
    }
}

fn ok<V>(response: EtcdResponse<V>) -> Applied<V> {
    Applied { response, events: Vec::new(), raise_nospace: false }
}

fn error<V>(message: &str) -> Applied<V> {
    ok(EtcdResponse::Error { message: message.to_string() })
}
