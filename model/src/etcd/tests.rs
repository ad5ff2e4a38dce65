//! Tests of the store and of one member alone; the replicated member's tests run on the
//! simulation's driver (kubesim-sim's `etcd` module).

use super::errors::*;
use super::*;
use crate::time::SimTime;

// ---- the store ---------------------------------------------------------------------

fn sput(k: &str, v: i64) -> Op<i64> {
    Op::Put { key: k.into(), value: v }
}
fn cmp_mod(k: &str, rev: i64) -> Compare {
    Compare { key: k.into(), target: CompareTarget::ModRevision, op: CompareOp::Equal, value: rev }
}

#[test]
fn revisions_and_versions() {
    let mut s = MvccStore::<i64>::new();
    assert_eq!(s.revision(), 1);
    s.txn(&[], vec![sput("/a", 1)], vec![]);
    s.txn(&[], vec![sput("/a", 2)], vec![]);
    s.txn(&[], vec![sput("/b", 3)], vec![]);
    let a = s.get("/a").unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version, a.value), (2, 3, 2, 2));
    assert_eq!(s.revision(), 4);
}

#[test]
fn txn_compare_and_swap() {
    let mut s = MvccStore::<i64>::new();
    let absent =
        Compare { key: "/k".into(), target: CompareTarget::CreateRevision, op: CompareOp::Equal, value: 0 };
    let (ok, _, _) = s.txn(&[absent], vec![sput("/k", 1)], vec![Op::Get { key: "/k".into() }]);
    assert!(ok);
    let (ok, res, ev) = s.txn(&[cmp_mod("/k", 1)], vec![sput("/k", 9)], vec![Op::Get { key: "/k".into() }]);
    assert!(!ok, "stale revision must fail");
    assert!(ev.is_empty());
    assert_eq!(res[0].as_ref().unwrap().value, 1);
    let (ok, _, ev) = s.txn(&[cmp_mod("/k", 2)], vec![sput("/k", 9)], vec![]);
    assert!(ok);
    assert_eq!(ev[0].verb(), "update");
    assert_eq!(ev[0].prev_kv.as_ref().unwrap().value, 1);
    let version =
        Compare { key: "/k".into(), target: CompareTarget::Version, op: CompareOp::Greater, value: 1 };
    assert!(s.txn(&[version], vec![], vec![]).0);
}

#[test]
fn range_prefix_limit_and_delete() {
    let mut s = MvccStore::<i64>::new();
    for (i, k) in ["/r/pods/a", "/r/pods/b", "/r/pods/c", "/r/nodes/x"].iter().enumerate() {
        s.txn(&[], vec![sput(k, i as i64)], vec![]);
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
        s.txn(&[], vec![sput("/w", i)], vec![]);
    }
    assert_eq!(s.events_since(4).unwrap().len(), 3); // revisions 4, 5, 6
    s.compact(4).unwrap();
    assert_eq!(s.events_since(3).unwrap_err(), ERR_COMPACTED);
    assert_eq!(s.events_since(5).unwrap().len(), 2);
    assert_eq!(s.events_since(99).unwrap_err(), ERR_FUTURE_REV);
}

#[test]
fn range_at_a_past_revision() {
    let mut s = MvccStore::<i64>::new();
    s.txn(&[], vec![sput("/p/a", 1)], vec![]); // rev 2
    s.txn(&[], vec![sput("/p/b", 2)], vec![]); // rev 3
    s.txn(&[], vec![sput("/p/a", 3)], vec![]); // rev 4
    s.txn(&[], vec![Op::Delete { key: "/p/b".into() }], vec![]); // rev 5
    let at = |s: &MvccStore<i64>, rev| {
        let (kvs, _) = s.range_at("/p/", true, 0, rev).unwrap();
        kvs.into_iter().map(|kv| (kv.key.to_string(), kv.value)).collect::<Vec<_>>()
    };
    assert_eq!(at(&s, 2), vec![("/p/a".to_string(), 1)]);
    assert_eq!(at(&s, 3), vec![("/p/a".to_string(), 1), ("/p/b".to_string(), 2)]);
    assert_eq!(at(&s, 4), vec![("/p/a".to_string(), 3), ("/p/b".to_string(), 2)]);
    assert_eq!(at(&s, 0), vec![("/p/a".to_string(), 3)]);
    assert_eq!(s.range_at("/p/a", false, 0, 3).unwrap().0[0].value, 1);
    s.compact(4).unwrap();
    assert_eq!(at(&s, 4).len(), 2, "the compacted revision itself stays readable");
    assert_eq!(s.range_at("/p/", true, 0, 3).unwrap_err(), ERR_COMPACTED);
    assert_eq!(s.range_at("/p/", true, 0, 6).unwrap_err(), ERR_FUTURE_REV);
}

#[test]
fn compaction_frees_superseded_revisions() {
    let mut s = MvccStore::<String>::new();
    let v = "x".repeat(1000);
    for _ in 0..10 {
        s.txn(&[], vec![Op::Put { key: "/k".into(), value: v.clone() }], vec![]);
    }
    let one = mvcc::revision_bytes("/k", &v);
    assert_eq!(s.in_use_bytes(), 10 * one);
    s.compact(s.revision()).unwrap();
    assert_eq!(s.in_use_bytes(), one, "only the live revision is left");
    s.txn(&[], vec![Op::Put { key: "/k".into(), value: v.clone() }], vec![]);
    s.txn(&[], vec![Op::Delete { key: "/k".into() }], vec![]);
    s.compact(s.revision()).unwrap();
    assert_eq!(s.in_use_bytes(), 0, "a deleted key and its tombstone go at compaction");
}

fn pod(name: &str) -> std::sync::Arc<crate::api::Object> {
    use crate::api::{Object, ObjectMeta, Pod};
    let metadata = ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() };
    std::sync::Arc::new(Object::Pod(Pod { metadata, ..Default::default() }))
}

/// Objects are stamped with their resourceVersion in place when the store owns the only
/// reference (the sharing between members is tested on the simulated cluster).
#[test]
fn objects_are_stamped_in_place() {
    use std::sync::Arc;
    let mut s = MvccStore::new();
    let obj = pod("a");
    let ptr = Arc::as_ptr(&obj);
    s.txn(&[], vec![Op::Put { key: "/a".into(), value: obj }], vec![]);
    let stored = &s.get("/a").unwrap().value;
    assert_eq!(Arc::as_ptr(stored), ptr, "stamped in place");
    assert_eq!(stored.meta().resource_version, 2);
}

/// The simulation moves members, disks and messages between madsim tasks.
#[test]
fn members_disks_and_messages_are_send() {
    fn send<T: Send + 'static>() {}
    type Value = std::sync::Arc<crate::api::Object>;
    send::<RaftMember<Value>>();
    send::<DiskState<Value>>();
    send::<DiskOp<Value>>();
    send::<PeerMessage<Value>>();
    send::<member::Output<Value>>();
    send::<EtcdServer<Value>>();
}

#[test]
fn object_values_report_a_size() {
    use crate::api::{Object, ObjectMeta, Pod};
    let pod = Object::Pod(Pod {
        metadata: ObjectMeta { name: "web-1".into(), ..Default::default() },
        ..Default::default()
    });
    let size = std::sync::Arc::new(pod).approx_bytes();
    assert!(size > 1000 && size < 10_000, "{size}");
    assert!(SimTime::ZERO < SimTime(1));
}

/// A heartbeat's commit index is what the leader remembers of the member; for a member
/// back on a lost disk that is its old incarnation's log. Before the fix the member
/// committed up to it whatever entries it now held at those indexes — here a deposed
/// leader's uncommitted ones. It must commit only what matches the current leader's log,
/// and ask that leader for a snapshot.
#[test]
fn a_member_on_a_lost_disk_commits_only_what_matches_the_leaders_log() {
    use raft::eraftpb::{Entry, Message, MessageType};
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(44);
    let config = MemberConfig::new(3, vec![1, 2, 3]);
    let mut m: RaftMember<String> = RaftMember::recover(config, DiskState::lost(), SimTime::ZERO, &mut rng);
    let raft = |msg: Message| PeerMessage {
        from: msg.from,
        to: 3,
        body: PeerBody::Raft { msg, payloads: Vec::new(), snapshot: None },
    };
    // The deposed leader 1 of term 1: entry 1 committed, 2 and 3 never were.
    let mut append = Message::default();
    append.set_msg_type(MessageType::MsgAppend);
    (append.from, append.to, append.term, append.commit) = (1, 3, 1, 1);
    let entries: Vec<Entry> = (1..=3).map(|index| Entry { index, term: 1, ..Default::default() }).collect();
    append.set_entries(entries.into());
    m.step(raft(append), SimTime(10), &mut rng);
    m.ready(SimTime(10), &mut rng);
    m.advance(&mut rng);
    m.ready(SimTime(10), &mut rng);
    assert_eq!(m.status().commit_index, 1);
    // The leader of term 2 (entries 2 and 3 of term 2 committed) remembers the old
    // incarnation up to 3.
    let mut heartbeat = Message::default();
    heartbeat.set_msg_type(MessageType::MsgHeartbeat);
    (heartbeat.from, heartbeat.to, heartbeat.term, heartbeat.commit) = (2, 3, 2, 3);
    m.step(raft(heartbeat), SimTime(20), &mut rng);
    let out = m.ready(SimTime(20), &mut rng);
    let status = m.status();
    assert_eq!((status.term, status.leader), (2, Some(2)));
    assert_eq!(status.commit_index, 1, "committed a deposed leader's entries");
    let asks_snapshot = out.messages.iter().any(|pm| {
        matches!(&pm.body, PeerBody::Raft { msg, .. }
            if pm.to == 2 && msg.get_msg_type() == MessageType::MsgAppendResponse && msg.reject && msg.request_snapshot == 3)
    });
    assert!(asks_snapshot, "asks the leader for a snapshot: {:?}", out.messages);
    assert!(status.rejoining);
}
