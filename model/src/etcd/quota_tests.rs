//! The backend quota, the NOSPACE alarm and defragmentation, as etcd v3.5 applies them:
//! server/etcdserver/quota.go (Cost, Available), api/v3rpc/quota.go (the check before
//! proposing), server/etcdserver/apply.go (quotaApplierV3, applierV3Capped, Alarm).

use super::backend::{Backend, LEASE_OVERHEAD_BYTES};
use super::errors::ERR_NO_SPACE;
use super::message::{Payload, ProposalKey, WriteRequest};
use super::mvcc::KV_OVERHEAD_BYTES;
use super::{EtcdResponse, Op};

const MIN_TTL: i64 = 2;

fn put(key: &str, bytes: usize) -> Op<String> {
    Op::Put { key: key.into(), value: "v".repeat(bytes) }
}

fn txn(success: Vec<Op<String>>, failure: Vec<Op<String>>) -> WriteRequest<String> {
    WriteRequest::Txn { compare: vec![], success, failure }
}

fn apply(b: &mut Backend<String>, request: WriteRequest<String>, quota: u64) -> (EtcdResponse<String>, bool) {
    let key = ProposalKey { member: 1, incarnation: 1, seq: 1 };
    let applied = b.apply(&Payload::new(key, request), quota, MIN_TTL);
    (applied.response, applied.raise_nospace)
}

fn is_no_space(r: &EtcdResponse<String>) -> bool {
    matches!(r, EtcdResponse::Error { message } if message == ERR_NO_SPACE)
}

#[test]
fn quota_cost_is_upstreams_cost() {
    // quota.go: kvOverhead = 256, leaseOverhead = 64; costPut = kvOverhead + key + value.
    assert_eq!((KV_OVERHEAD_BYTES, LEASE_OVERHEAD_BYTES), (256, 64));
    assert_eq!(Backend::quota_cost(&txn(vec![put("/k", 100)], vec![])), 256 + 2 + 100);
    // A put that names a lease costs the same (costPut does not look at the lease).
    let leased = Op::PutWithLease { key: "/k".into(), value: "v".repeat(100), lease: 7 };
    assert_eq!(Backend::quota_cost(&txn(vec![leased], vec![])), 256 + 2 + 100);
    // costTxn: the dearer branch, not the sum.
    let t = txn(vec![put("/a", 10)], vec![put("/b", 20), put("/c", 20)]);
    assert_eq!(Backend::quota_cost(&t), 2 * (256 + 2 + 20));
    // Deletes and reads add no data; compaction, revokes and alarms are not quota-checked.
    let delete = txn(vec![Op::Delete { key: "/a".into() }], vec![Op::Get { key: "/a".into() }]);
    assert_eq!(Backend::quota_cost(&delete), 0);
    assert_eq!(Backend::<String>::quota_cost(&WriteRequest::Compact { revision: 1 }), 0);
    assert_eq!(Backend::<String>::quota_cost(&WriteRequest::LeaseRevoke { id: 1 }), 0);
    assert_eq!(Backend::<String>::quota_cost(&WriteRequest::LeaseGrant { id: 1, ttl_seconds: 60 }), 64);
}

#[test]
fn available_means_size_plus_cost_below_the_quota() {
    // backendQuota.Available: be.Size() + cost < maxBackendBytes (strictly).
    let b = Backend::<String>::default();
    let w = txn(vec![put("/k", 100)], vec![]);
    assert!(!b.quota_available(&w, 358));
    assert!(b.quota_available(&w, 359));
    // A request without cost always fits, even over the quota.
    assert!(b.quota_available(&txn(vec![Op::Delete { key: "/k".into() }], vec![]), 0));
}

#[test]
fn a_write_past_the_quota_is_applied_but_answered_with_nospace_and_raises_the_alarm() {
    // quotaApplierV3.Put/Txn: the write is applied, then answered with ErrNoSpace;
    // applyEntryNormal then proposes the NOSPACE alarm.
    let mut b = Backend::<String>::default();
    let (r, raise) = apply(&mut b, txn(vec![put("/a", 1000)], vec![]), 4096);
    assert!(matches!(r, EtcdResponse::Txn { succeeded: true, .. }) && !raise);
    let (r, raise) = apply(&mut b, txn(vec![put("/b", 3000)], vec![]), 4096);
    assert!(is_no_space(&r), "{r:?}");
    assert!(raise);
    assert!(b.store().get("/b").is_some(), "the quota applier still applies the write");
    assert!(b.nospace_alarms().is_empty(), "the alarm comes through raft, not from the apply");
}

#[test]
fn under_the_alarm_writes_that_add_data_fail_and_deletes_and_compactions_are_served() {
    let mut b = Backend::<String>::default();
    let quota = 1 << 20;
    apply(&mut b, txn(vec![put("/a", 10), put("/b", 10)], vec![]), quota);
    let (r, _) = apply(&mut b, WriteRequest::Alarm { member: 2, activate: true }, quota);
    assert_eq!(r, EtcdResponse::Alarms { nospace: vec![2] });
    // applierV3Capped: any cost is refused, wherever the space is.
    let before = b.store().revision();
    let (r, _) = apply(&mut b, txn(vec![put("/c", 1)], vec![]), quota);
    assert!(is_no_space(&r), "{r:?}");
    let (r, _) = apply(&mut b, WriteRequest::LeaseGrant { id: 9, ttl_seconds: 60 }, quota);
    assert!(is_no_space(&r), "{r:?}");
    assert_eq!(b.store().revision(), before, "a refused write changes nothing");
    assert!(b.store().get("/c").is_none() && !b.leases().contains_key(&9));
    // DeleteRange and Compact have no cost: served.
    let delete = txn(vec![Op::Delete { key: "/a".into() }], vec![]);
    assert!(matches!(apply(&mut b, delete, quota).0, EtcdResponse::Txn { succeeded: true, .. }));
    assert!(b.store().get("/a").is_none());
    let rev = b.store().revision();
    assert_eq!(
        apply(&mut b, WriteRequest::Compact { revision: rev }, quota).0,
        EtcdResponse::Compact { revision: rev }
    );
}

#[test]
fn disarm_clears_every_nospace_alarm_and_writes_are_served_again() {
    let mut b = Backend::<String>::default();
    let quota = 1 << 20;
    apply(&mut b, WriteRequest::Alarm { member: 1, activate: true }, quota);
    apply(&mut b, WriteRequest::Alarm { member: 3, activate: true }, quota);
    assert_eq!(b.nospace_alarms().iter().copied().collect::<Vec<_>>(), [1, 3]);
    let (r, _) = apply(&mut b, WriteRequest::Alarm { member: 2, activate: false }, quota);
    assert_eq!(r, EtcdResponse::Alarms { nospace: vec![] });
    assert!(matches!(apply(&mut b, txn(vec![put("/x", 1)], vec![]), quota).0, EtcdResponse::Txn { .. }));
}

#[test]
fn compaction_frees_pages_but_only_a_defragmentation_shrinks_the_file() {
    let mut b = Backend::<String>::default();
    let quota = 64 * 1024;
    // Fourteen versions of one 5 KiB value: history passes the quota.
    let mut refused = 0;
    for _ in 0..14 {
        let (r, _) = apply(&mut b, txn(vec![put("/big", 5000)], vec![]), quota);
        refused += is_no_space(&r) as u32;
    }
    assert!(refused > 0, "the history passed the quota");
    let full = b.db_size_bytes();
    assert!(full >= quota - 5300, "db {full}");
    let rev = b.store().revision();
    apply(&mut b, WriteRequest::Compact { revision: rev }, quota);
    // One live revision left in use; bbolt keeps the file's size.
    assert_eq!(b.db_size_in_use_bytes(), 256 + 4 + 5000);
    assert_eq!(b.db_size_bytes(), full, "compaction does not shrink the file");
    assert!(!b.quota_available(&txn(vec![put("/big", 5000)], vec![]), quota));
    assert_eq!(b.defragment(), 256 + 4 + 5000);
    assert_eq!(b.db_size_bytes(), b.db_size_in_use_bytes());
    assert!(b.quota_available(&txn(vec![put("/big", 5000)], vec![]), quota));
}
