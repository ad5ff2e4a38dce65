//! etcd: the MVCC key-value store and the member that serves it, replicated by raft-rs
//! (the `raft` crate, the Rust port of etcd's raft).
//!
//! - [`mvcc`]: the store (revisions, range at a revision, txn, watch history,
//!   compaction, size accounting);
//! - [`backend`]: a member's applied state as etcd's backend holds it (store, leases,
//!   alarms, applied index, database size) and how a committed request changes it;
//! - [`member`]: [`RaftMember`], one replicated member as a sans-I/O state machine in
//!   raft-rs's RawNode/Ready style, with its [`config`] (etcd's defaults) and [`Disk`];
//! - [`message`]: what members send each other (raft messages with their requests by
//!   `Arc`, never serialized);
//! - [`server`]: [`EtcdServer`], a member behind etcd's gRPC layer (request ids, the
//!   watch server, the no-leader watchdog) as one [`crate::process::Process`];
//! - [`disk`]: the member's log and snapshot, and the [`DiskOp`]s that persist them;
//! - [`Member`]: the single unreplicated member the simulation used before replication.
//!
//! Requests and responses ([`EtcdRequest`], [`EtcdResponse`]) are the protocol between
//! the API server and etcd, as the real ones talk gRPC.

pub mod backend;
pub mod config;
pub mod disk;
pub mod errors;
pub mod member;
pub mod message;
pub mod mvcc;
mod pending;
#[cfg(test)]
mod quota_tests;
pub mod server;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use backend::{Backend, LeaseRecord};
pub use config::MemberConfig;
pub use disk::{DiskOp, DiskState};
pub use errors::{ERR_COMPACTED, ERR_FUTURE_REV};
pub use member::{AlarmChange, LeaderChange, MemberStatus, Output, RaftMember, RequestId, Role};
pub use message::{Payload, PeerBody, PeerMessage, ProposalKey, WriteRequest};
pub use mvcc::{MvccStore, TxnOutcome};
pub use server::EtcdServer;

/// raft-rs's wire types a driver or test may need to name.
pub mod raft_types {
    pub use raft::eraftpb::{Entry, HardState, SnapshotMetadata};
}

/// What a value stored in etcd and carried between processes must be.
pub trait StoreValue: Clone + Stamp + ValueSize + Send + Sync + 'static {}
impl<V: Clone + Stamp + ValueSize + Send + Sync + 'static> StoreValue for V {}

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

/// A value's approximate size in etcd's backend, for the quota and --max-request-bytes.
/// An estimate, computed without serializing.
pub trait ValueSize {
    fn approx_bytes(&self) -> u64;
}

impl ValueSize for i64 {
    fn approx_bytes(&self) -> u64 {
        8
    }
}
impl ValueSize for String {
    fn approx_bytes(&self) -> u64 {
        self.len() as u64
    }
}

impl ValueSize for Arc<crate::api::Object> {
    /// A typical protobuf size per kind (measured on kind clusters: a scheduled pod is a
    /// few KiB, a node with its image list more) plus the metadata strings that vary.
    fn approx_bytes(&self) -> u64 {
        use crate::api::Kind;
        let base = match self.kind() {
            Kind::Pod => 3000,
            Kind::Node => 6000,
            Kind::ReplicaSet
            | Kind::Deployment
            | Kind::DaemonSet
            | Kind::StatefulSet
            | Kind::Job
            | Kind::ReplicationController => 2500,
            Kind::PersistentVolume | Kind::PersistentVolumeClaim => 800,
            Kind::StorageClass => 400,
            Kind::Event => 600,
            Kind::Lease => 300,
            Kind::Namespace | Kind::PriorityClass | Kind::ServiceAccount => 250,
            Kind::PodDisruptionBudget => 500,
            // Plus their data, below.
            Kind::ConfigMap | Kind::Secret => 200,
        };
        let m = self.meta();
        let strings = |map: &std::collections::BTreeMap<String, String>| {
            map.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() as u64
        };
        let data = match &**self {
            crate::api::Object::ConfigMap(c) => strings(&c.data) + strings(&c.binary_data),
            crate::api::Object::Secret(s) => strings(&s.data),
            _ => 0,
        };
        base + (m.name.len() + m.namespace.len()) as u64 + strings(&m.labels) + strings(&m.annotations) + data
    }
}

/// A stored key: shared by the live entry, its history events and their prev_kv.
pub type Key = std::sync::Arc<str>;

#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue<V> {
    pub key: Key,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub value: V,
    /// The lease the key is attached to (0 = none).
    pub lease: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Put,
    Delete,
}

/// One committed change, as a watch delivers it (with prev_kv, as kube-apiserver asks).
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
    Put {
        key: String,
        value: V,
    },
    /// A put that attaches the key to a lease: the key goes when the lease does.
    PutWithLease {
        key: String,
        value: V,
        lease: i64,
    },
    Delete {
        key: String,
    },
    Get {
        key: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum EtcdRequest<V> {
    /// A linearizable range at the latest revision: a key, or every key with the prefix;
    /// `limit` 0 = no limit.
    Range {
        key: String,
        prefix: bool,
        limit: usize,
    },
    /// A range with etcd's options: at `revision` (0 = latest); `serializable` serves it
    /// from the member's local store without a ReadIndex round.
    RangeAt {
        key: String,
        prefix: bool,
        limit: usize,
        revision: i64,
        serializable: bool,
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
    /// `id` 0 lets the member choose one.
    LeaseGrant {
        id: i64,
        ttl_seconds: i64,
    },
    LeaseRevoke {
        id: i64,
    },
    LeaseKeepAlive {
        id: i64,
    },
    /// Disarms the NOSPACE alarms (etcdctl alarm disarm).
    AlarmDisarm,
    /// Shrinks this member's database file to the bytes in use (etcdctl defrag).
    Defragment,
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
    LeaseGrant {
        revision: i64,
        id: i64,
        ttl_seconds: i64,
    },
    LeaseRevoke {
        revision: i64,
    },
    LeaseKeepAlive {
        id: i64,
        ttl_seconds: i64,
    },
    /// Members whose NOSPACE alarm is raised.
    Alarms {
        nospace: Vec<u64>,
    },
    Defragment {
        db_size_bytes: u64,
    },
    Error {
        message: String,
    },
}

/// etcdserver.ErrUnknownMethod: what the unreplicated member answers requests it has no
/// notion of (leases, alarms).
const ERR_UNKNOWN_METHOD: &str = "etcdserver: unknown method";

/// One unreplicated etcd member. Its store is what survives a restart (its disk).
#[derive(Clone, Debug)]
pub struct Member<V> {
    pub store: MvccStore<V>,
}

impl<V: Clone + Stamp + ValueSize> Default for Member<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Clone + Stamp + ValueSize> Member<V> {
    pub fn new() -> Self {
        Member { store: MvccStore::new() }
    }

    /// Serves one request; returns the response and the events it committed.
    pub fn handle(&mut self, req: EtcdRequest<V>) -> (EtcdResponse<V>, Vec<MvccEvent<V>>) {
        let s = &mut self.store;
        let error = |e: &str| (EtcdResponse::Error { message: e.to_string() }, Vec::new());
        match req {
            EtcdRequest::Range { key, prefix, limit } => {
                let (kvs, count) = s.range(&key, prefix, limit);
                (EtcdResponse::Range { revision: s.revision(), kvs, count }, Vec::new())
            }
            EtcdRequest::RangeAt { key, prefix, limit, revision, .. } => {
                match s.range_at(&key, prefix, limit, revision) {
                    Ok((kvs, count)) => {
                        (EtcdResponse::Range { revision: s.revision(), kvs, count }, Vec::new())
                    }
                    Err(e) => error(e),
                }
            }
            EtcdRequest::Txn { compare, success, failure } => {
                let (succeeded, results, events) = s.txn(&compare, success, failure);
                (EtcdResponse::Txn { revision: s.revision(), succeeded, results }, events)
            }
            EtcdRequest::Compact { revision } => match s.compact(revision) {
                Ok(()) => (EtcdResponse::Compact { revision: s.revision() }, Vec::new()),
                Err(e) => error(e),
            },
            EtcdRequest::WatchFrom { revision } => match s.events_since(revision) {
                Ok(events) => (EtcdResponse::Events { revision: s.revision(), events }, Vec::new()),
                Err(e) => error(e),
            },
            EtcdRequest::LeaseGrant { .. }
            | EtcdRequest::LeaseRevoke { .. }
            | EtcdRequest::LeaseKeepAlive { .. }
            | EtcdRequest::AlarmDisarm
            | EtcdRequest::Defragment => error(ERR_UNKNOWN_METHOD),
        }
    }
}
