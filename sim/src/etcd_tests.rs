//! Tests of the replicated etcd member, run as the simulation runs it: [`EtcdServer`]
//! processes on the driver, over the simulated network (1 to 10 ms links) and disks.

use std::collections::BTreeMap;
use std::time::Duration;

use kubesim_model::etcd::errors::*;
use kubesim_model::etcd::*;

use super::etcd::{ClusterEvent, EtcdCluster};

type Cluster = EtcdCluster<String>;

const SEC: Duration = Duration::from_secs(1);

fn put(key: &str, value: &str) -> EtcdRequest<String> {
    let op = Op::Put { key: key.into(), value: value.into() };
    EtcdRequest::Txn { compare: vec![], success: vec![op], failure: vec![] }
}

fn delete(key: &str) -> EtcdRequest<String> {
    EtcdRequest::Txn { compare: vec![], success: vec![Op::Delete { key: key.into() }], failure: vec![] }
}

fn get(key: &str) -> EtcdRequest<String> {
    EtcdRequest::Range { key: key.into(), prefix: false, limit: 0 }
}

fn is_ok_write(r: &EtcdResponse<String>) -> bool {
    matches!(r, EtcdResponse::Txn { succeeded: true, .. })
}

fn error_of(r: Option<&EtcdResponse<String>>) -> Option<&str> {
    match r {
        Some(EtcdResponse::Error { message }) => Some(message.as_str()),
        _ => None,
    }
}

/// The value a range answered, `Err` if it did not answer a range.
fn read_value(r: Option<&EtcdResponse<String>>) -> Result<Option<String>, String> {
    match r {
        Some(EtcdResponse::Range { kvs, .. }) => Ok(kvs.first().map(|kv| kv.value.clone())),
        other => Err(format!("{other:?}")),
    }
}

/// Runs until there is a leader and every member that can hear it follows it.
fn elect(c: &mut Cluster) -> u64 {
    assert!(c.run_until(10 * SEC, |c| c.leader().is_some()), "no leader elected");
    let leader = c.leader().expect("leader");
    c.run_until(SEC, |c| c.ids().iter().filter_map(|id| c.status(*id)).all(|s| s.leader == Some(leader)));
    leader
}

fn others(c: &Cluster, id: u64) -> Vec<u64> {
    c.ids().into_iter().filter(|o| *o != id).collect()
}

fn write_acked(c: &mut Cluster, member: u64, key: &str, value: &str) {
    let r = c.call(member, put(key, value), 10 * SEC);
    assert!(r.as_ref().is_some_and(is_ok_write), "write {key}={value} on {member}: {r:?}");
}

fn store_contents(c: &Cluster, id: u64) -> Vec<(String, String, i64)> {
    c.with_member(id, |m| {
        m.with_store(|s| s.iter().map(|kv| (kv.key.to_string(), kv.value.clone(), kv.mod_revision)).collect())
    })
    .expect("alive")
}

fn caught_up(c: &Cluster, id: u64, with: u64) -> bool {
    match (c.status(id), c.status(with)) {
        (Some(a), Some(b)) => a.applied_index == b.applied_index && a.revision == b.revision,
        _ => false,
    }
}

fn installed_snapshot(c: &Cluster, m: u64) -> bool {
    c.history().iter().any(|e| matches!(e, ClusterEvent::InstalledSnapshot { member, .. } if *member == m))
}

#[test]
fn leader_elected_within_the_randomized_election_timeout() {
    for seed in 0..20 {
        let mut c = Cluster::new(3, seed);
        let leader = elect(&mut c);
        let s = c.status(leader).unwrap();
        let t = c.now().as_millis();
        // Nobody campaigns before the election timeout (1 s); without a split vote the
        // first pre-vote/vote round wins before 2 s + tick phase + two round trips.
        assert!(t >= 1000, "seed {seed}: elected at {t} ms");
        if s.term == 1 {
            assert!(t < 2000 + 100 + 40, "seed {seed}: elected at {t} ms");
        }
        // Every member reported the (term, leader) it follows.
        let reported: Vec<u64> = c
            .history()
            .iter()
            .filter_map(|e| match e {
                ClusterEvent::LeaderChange { member, change } if change.leader == Some(leader) => {
                    Some(*member)
                }
                _ => None,
            })
            .collect();
        c.run_for(SEC);
        assert!(reported.contains(&leader), "seed {seed}: the leader reports itself");
    }
}

#[test]
fn one_leader_per_term_under_partitions_kills_and_loss() {
    use rand::{Rng, SeedableRng};
    for seed in 0..4 {
        let mut c = Cluster::new(5, seed);
        c.set_loss_rate(0.02);
        let mut faults = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 100);
        let mut killed: Vec<u64> = Vec::new();
        for round in 0..30 {
            let target = faults.gen_range(1..=5);
            match faults.gen_range(0..5) {
                0 => c.isolate(target),
                1 => c.partition(&[&[1, 2], &[3, 4, 5]]),
                2 if killed.len() < 2 && c.is_alive(target) => {
                    c.kill(target);
                    killed.push(target);
                }
                3 => {
                    for id in killed.drain(..) {
                        c.restart(id);
                    }
                }
                _ => c.heal(),
            }
            if let Some(l) = c.leader() {
                c.request(l, put("/k", &format!("{round}")));
            }
            c.run_for(2 * SEC);
        }
        c.heal();
        for id in killed.drain(..) {
            c.restart(id);
        }
        let mut acked = false;
        for _ in 0..5 {
            let l = elect(&mut c);
            if c.call(l, put("/final", "x"), 10 * SEC).as_ref().is_some_and(is_ok_write) {
                acked = true;
                break;
            }
        }
        assert!(acked, "seed {seed}: the healed cluster takes writes");
        assert!(c.leaders_by_term().len() >= 2, "seed {seed}: faults caused elections");
    }
}

#[test]
fn acknowledged_writes_survive_leader_kill_and_restart() {
    let mut c = Cluster::new(3, 7);
    let first = elect(&mut c);
    let mut acked = BTreeMap::new();
    for i in 0..30 {
        let member = c.ids()[i % 3];
        let (k, v) = (format!("/k{i}"), format!("v{i}"));
        write_acked(&mut c, member, &k, &v);
        acked.insert(k, v);
    }
    c.kill(first);
    let second = elect(&mut c);
    assert_ne!(first, second);
    for i in 30..60 {
        let member = others(&c, first)[i % 2];
        let (k, v) = (format!("/k{i}"), format!("v{i}"));
        write_acked(&mut c, member, &k, &v);
        acked.insert(k, v);
    }
    c.restart(first);
    assert!(c.run_until(10 * SEC, |c| caught_up(c, first, second)));
    for id in c.ids() {
        for (k, v) in &acked {
            let r = c.call(id, get(k), 10 * SEC);
            assert_eq!(read_value(r.as_ref()), Ok(Some(v.clone())), "{k} on member {id}");
        }
    }
    assert_eq!(store_contents(&c, first), store_contents(&c, second));
}

#[test]
fn isolated_leader_steps_down_and_the_others_elect() {
    let mut c = Cluster::new(3, 3);
    let old = elect(&mut c);
    let old_term = c.status(old).unwrap().term;
    c.run_for(SEC);
    let t0 = c.now();
    c.isolate(old);
    assert!(c.run_until(5 * SEC, |c| c.status(old).unwrap().role != Role::Leader));
    let stepped_down = c.now().saturating_sub(t0);
    // CheckQuorum runs every election timeout; the first check after the cut may still
    // count activity from before it.
    assert!(stepped_down <= 2 * SEC + Duration::from_millis(100), "stepped down after {stepped_down:?}");
    let rest = others(&c, old);
    c.run_until(5 * SEC, |c| rest.iter().any(|id| c.status(*id).unwrap().role == Role::Leader));
    let new = c.leader().expect("the majority elected a leader");
    assert!(rest.contains(&new));
    assert!(c.status(new).unwrap().term > old_term);
    let elected = c
        .history()
        .iter()
        .find_map(|e| match e {
            ClusterEvent::LeaderChange { member, change }
                if *member == new && change.leader == Some(new) && change.term > old_term =>
            {
                Some(change.at)
            }
            _ => None,
        })
        .expect("the new leader reported itself");
    let after = elected.saturating_sub(t0);
    assert!(after >= SEC && after < 2 * SEC + Duration::from_millis(100), "elected {after:?} after the cut");
}

#[test]
fn partitioned_old_leader_fails_requests_with_etcds_errors() {
    let mut c = Cluster::new(3, 5);
    let old = elect(&mut c);
    write_acked(&mut c, old, "/x", "1");
    c.isolate(old);
    let lost_write = c.request(old, put("/x", "2"));
    let stuck_read = c.request(old, get("/x"));
    assert!(c.run_until(5 * SEC, |c| c.status(old).unwrap().role != Role::Leader));
    let refused = c.call(old, put("/x", "3"), SEC);
    assert_eq!(error_of(refused.as_ref()), Some(ERR_NO_LEADER));
    let refused_read = c.call(old, get("/x"), SEC);
    assert_eq!(error_of(refused_read.as_ref()), Some(ERR_NO_LEADER));
    c.run_for(8 * SEC);
    assert_eq!(error_of(c.response(lost_write).as_ref()), Some(ERR_TIMEOUT), "{:?}", c.response(lost_write));
    assert_eq!(error_of(c.response(stuck_read).as_ref()), Some(ERR_TIMEOUT));
    c.heal();
    let new = elect(&mut c);
    assert_ne!(new, old);
    assert!(c.run_until(5 * SEC, |c| caught_up(c, old, new)));
    let r = c.call(old, get("/x"), 5 * SEC);
    assert_eq!(read_value(r.as_ref()), Ok(Some("1".into())), "the unacknowledged write was lost");
}

#[test]
fn without_require_leader_a_leaderless_write_is_dropped_by_raft() {
    let mut c = Cluster::with_config(3, 5, |cfg| cfg.require_leader = false);
    let old = elect(&mut c);
    c.isolate(old);
    assert!(c.run_until(5 * SEC, |c| c.status(old).unwrap().leader.is_none()));
    let w = c.call(old, put("/x", "3"), SEC);
    assert_eq!(error_of(w.as_ref()), Some(ERR_PROPOSAL_DROPPED));
}

#[test]
fn pending_proposals_fail_with_leader_changed_when_configured() {
    let mut c = Cluster::with_config(3, 9, |cfg| cfg.fail_proposals_on_leader_change = true);
    let old = elect(&mut c);
    c.isolate(old);
    let w = c.request(old, put("/x", "2"));
    assert!(c.run_until(5 * SEC, |c| c.status(old).unwrap().role != Role::Leader));
    assert!(c.run_until(SEC, |c| c.response(w).is_some()));
    assert_eq!(error_of(c.response(w).as_ref()), Some(ERR_LEADER_CHANGED));
}

#[test]
fn follower_catches_up_by_log() {
    let mut c = Cluster::new(3, 21);
    let leader = elect(&mut c);
    let f = others(&c, leader)[0];
    c.isolate(f);
    for i in 0..50 {
        write_acked(&mut c, leader, &format!("/k{i}"), "v");
    }
    c.heal();
    assert!(c.run_until(5 * SEC, |c| caught_up(c, f, leader)));
    assert_eq!(store_contents(&c, f), store_contents(&c, leader));
    assert!(!installed_snapshot(&c, f), "caught up from the log alone");
}

fn small_snapshots(cfg: &mut MemberConfig) {
    cfg.snapshot_count = 20;
    cfg.snapshot_catch_up_entries = 5;
}

#[test]
fn lagging_followers_catch_up_by_snapshot() {
    let mut c = Cluster::with_config(5, 22, small_snapshots);
    let leader = elect(&mut c);
    let (f, g) = (others(&c, leader)[0], others(&c, leader)[1]);
    let rest: Vec<u64> = c.ids().into_iter().filter(|id| *id != f && *id != g).collect();
    c.partition(&[&[f, g], &rest]);
    for i in 0..100 {
        write_acked(&mut c, leader, &format!("/k{i}"), &format!("{i}"));
    }
    let (first, lagging) = (
        c.with_member(leader, |m| m.log_first_index()).unwrap(),
        c.with_member(f, |m| m.log_last_index()).unwrap(),
    );
    assert!(first > lagging + 1, "the leader compacted what the followers need ({first} > {lagging})");
    c.heal();
    assert!(c.run_until(5 * SEC, |c| caught_up(c, f, leader) && caught_up(c, g, leader)));
    for m in [f, g] {
        assert_eq!(store_contents(&c, m), store_contents(&c, leader));
        assert!(installed_snapshot(&c, m), "member {m} installed a snapshot");
    }
    // They keep up by log afterwards.
    write_acked(&mut c, f, "/after", "x");
    assert!(c.run_until(5 * SEC, |c| caught_up(c, f, leader) && caught_up(c, g, leader)));
}

#[test]
fn member_with_a_lost_disk_rejoins_empty_and_catches_up_by_snapshot() {
    let mut c = Cluster::with_config(3, 23, small_snapshots);
    let leader = elect(&mut c);
    for i in 0..60 {
        write_acked(&mut c, leader, &format!("/k{i}"), &format!("{i}"));
    }
    let f = others(&c, leader)[1];
    c.restart_with_lost_disk(f);
    assert!(c.run_until(SEC, |c| c.status(f).is_some()));
    assert_eq!(c.status(f).unwrap().applied_index, 0);
    assert!(c.run_until(10 * SEC, |c| caught_up(c, f, leader)));
    assert_eq!(store_contents(&c, f), store_contents(&c, leader));
    assert!(installed_snapshot(&c, f));
}

/// Reads `key` linearizably on `member`.
fn read_on(c: &mut Cluster, member: u64, key: &str) -> Result<Option<String>, String> {
    read_value(c.call(member, get(key), 10 * SEC).as_ref())
}

/// The fuzz schedule `{"seed":268598044202362635,"members":3,"faults":[[1096,{"Kill":2}],
/// [3581,{"LoseDisk":1}]]}`, made deterministic. The leader and one follower (the
/// keeper) commit writes while the third member is down; then the third comes back on
/// its stale disk and the leader comes back on a blank one. The committed writes are on
/// the keeper alone. Before the fix the blank member, having forgotten its log and its
/// votes, granted the stale member's vote (or won with it): a leader without the
/// committed log, whose first entry overwrote them; the keeper, holding them as
/// committed, then stayed behind the new leader forever.
#[test]
fn a_blank_member_and_a_stale_one_cannot_elect_a_leader_without_the_committed_log() {
    let mut c = Cluster::new(3, 41);
    let leader = elect(&mut c);
    let (stale, keeper) = (others(&c, leader)[0], others(&c, leader)[1]);
    c.kill(stale);
    for i in 0..5 {
        write_acked(&mut c, leader, &format!("/k{i}"), &format!("{i}"));
    }
    assert!(c.run_until(SEC, |c| caught_up(c, keeper, leader)));
    c.isolate(keeper);
    c.restart(stale);
    c.restart_with_lost_disk(leader);
    c.run_for(10 * SEC);
    let leaders: Vec<MemberStatus> =
        c.ids().into_iter().filter_map(|id| c.status(id)).filter(|s| s.role == Role::Leader).collect();
    assert!(leaders.is_empty(), "a leader without the committed log: {leaders:?}");
    c.heal();
    let new_leader = elect(&mut c);
    assert_eq!(new_leader, keeper, "only the keeper holds the committed log");
    for id in c.ids() {
        assert!(c.run_until(10 * SEC, |c| caught_up(c, id, new_leader)), "member {id} catches up");
    }
    for i in 0..5 {
        assert_eq!(read_on(&mut c, new_leader, &format!("/k{i}")), Ok(Some(format!("{i}"))));
    }
    for id in c.ids() {
        assert_eq!(store_contents(&c, id), store_contents(&c, keeper), "member {id} agrees");
    }
}

/// The rejoining member's "no vote until caught up" is on its disk: killed and restarted
/// before it caught up, it still stays out of elections.
#[test]
fn a_member_killed_while_it_rejoins_still_stays_out_of_elections() {
    let mut c = Cluster::new(3, 42);
    let leader = elect(&mut c);
    let (stale, keeper) = (others(&c, leader)[0], others(&c, leader)[1]);
    c.kill(stale);
    for i in 0..5 {
        write_acked(&mut c, leader, &format!("/k{i}"), &format!("{i}"));
    }
    c.isolate(keeper);
    c.restart(stale);
    c.restart_with_lost_disk(leader);
    c.run_for(2 * SEC);
    c.kill(leader);
    c.restart(leader);
    assert!(c.run_until(SEC, |c| c.status(leader).is_some()));
    assert!(c.status(leader).unwrap().rejoining, "still rejoining after a restart from its disk");
    c.run_for(10 * SEC);
    assert_eq!(c.leader(), None, "a leader elected without the committed log");
    c.heal();
    let new_leader = elect(&mut c);
    assert_eq!(new_leader, keeper);
    for id in c.ids() {
        assert!(c.run_until(10 * SEC, |c| caught_up(c, id, new_leader)), "member {id} catches up");
    }
    for i in 0..5 {
        assert_eq!(read_on(&mut c, new_leader, &format!("/k{i}")), Ok(Some(format!("{i}"))));
    }
    assert!(c.run_until(5 * SEC, |c| !c.status(leader).unwrap().rejoining), "the blank member catches up");
}

/// Once caught up, a member back on a lost disk is a voter again: the cluster survives
/// the loss of another member, which needs its vote.
#[test]
fn a_member_back_on_a_lost_disk_votes_again_once_caught_up() {
    let mut c = Cluster::with_config(3, 43, small_snapshots);
    let leader = elect(&mut c);
    for i in 0..30 {
        write_acked(&mut c, leader, &format!("/k{i}"), &format!("{i}"));
    }
    let f = others(&c, leader)[0];
    c.restart_with_lost_disk(f);
    assert!(c.run_until(SEC, |c| c.status(f).is_some()));
    assert!(c.status(f).unwrap().rejoining);
    assert!(c.run_until(10 * SEC, |c| !c.status(f).unwrap().rejoining && caught_up(c, f, leader)));
    // Every entry the leader had committed is on f, which was on nothing a moment ago.
    assert_eq!(store_contents(&c, f), store_contents(&c, leader));
    c.kill(leader);
    let new_leader = elect(&mut c);
    assert_ne!(new_leader, leader);
    write_acked(&mut c, new_leader, "/after", "x");
    for i in 0..30 {
        assert_eq!(read_on(&mut c, new_leader, &format!("/k{i}")), Ok(Some(format!("{i}"))));
    }
    c.restart(leader);
    assert!(c.run_until(10 * SEC, |c| caught_up(c, leader, new_leader)));
    assert_eq!(store_contents(&c, leader), store_contents(&c, new_leader));
}

#[test]
fn restarted_member_recovers_from_its_own_disk() {
    let mut c = Cluster::with_config(3, 24, small_snapshots);
    let leader = elect(&mut c);
    for i in 0..45 {
        write_acked(&mut c, leader, &format!("/k{i}"), "v");
    }
    let f = others(&c, leader)[0];
    assert!(c.run_until(5 * SEC, |c| caught_up(c, f, leader)));
    let before = c.status(f).unwrap().applied_index;
    c.kill(f);
    c.restart(f);
    // From the snapshot and the log on its disk, it replays what it had committed
    // before it hears from anyone.
    assert!(c.run_until(SEC, |c| c.status(f).is_some_and(|s| s.applied_index >= before)));
    assert_eq!(c.with_member(f, |m| m.with_store(|s| s.iter().count())), Some(45));
    write_acked(&mut c, leader, "/after", "v");
    assert!(c.run_until(5 * SEC, |c| caught_up(c, f, leader)));
}

#[test]
fn linearizable_reads_see_the_latest_acknowledged_write() {
    use rand::{Rng, SeedableRng};
    let mut c = Cluster::new(3, 31);
    let mut pick = rand_chacha::ChaCha8Rng::seed_from_u64(31);
    elect(&mut c);
    let mut killed = None;
    for i in 0..40 {
        if i == 15 {
            let l = c.leader().unwrap();
            c.kill(l);
            killed = Some(l);
        }
        if i == 30 {
            c.restart(killed.take().unwrap());
        }
        let live: Vec<u64> = c.ids().into_iter().filter(|id| c.is_alive(*id)).collect();
        let writer = live[pick.gen_range(0..live.len())];
        let value = format!("v{i}");
        // Retry through leader elections, as a client does.
        let mut done = false;
        for _ in 0..10 {
            let r = c.call(writer, put("/x", &value), 10 * SEC);
            if r.as_ref().is_some_and(is_ok_write) {
                done = true;
                break;
            }
            c.run_for(SEC);
        }
        assert!(done, "write {i} acknowledged");
        let reader = live[pick.gen_range(0..live.len())];
        let r = c.call(reader, get("/x"), 10 * SEC);
        match read_value(r.as_ref()) {
            Ok(v) => assert_eq!(v, Some(value), "read {i} on {reader}"),
            Err(e) => assert!(e.contains("etcdserver"), "read {i} on {reader} failed oddly: {e}"),
        }
    }
}

/// The planted bug the linearizability checker must catch: with
/// `unsafe_local_linearizable_reads`, a member cut off from the leader still believes in
/// it for up to an election timeout and answers a linearizable read from its stale store.
#[test]
fn planted_bug_serves_a_stale_linearizable_read_from_a_partitioned_member() {
    for bug in [false, true] {
        let mut c = Cluster::with_config(3, 11, |cfg| cfg.unsafe_local_linearizable_reads = bug);
        let leader = elect(&mut c);
        write_acked(&mut c, leader, "/x", "old");
        let f = others(&c, leader)[0];
        c.run_until(5 * SEC, |c| c.with_member(f, |m| m.with_store(|s| s.get("/x").is_some())) == Some(true));
        c.isolate(f);
        write_acked(&mut c, leader, "/x", "new");
        let read = c.request(f, get("/x"));
        let serializable = c.request(
            f,
            EtcdRequest::RangeAt {
                key: "/x".into(),
                prefix: false,
                limit: 0,
                revision: 0,
                serializable: true,
            },
        );
        c.run_for(8 * SEC);
        // Serializable reads may be stale by definition, bug or not.
        assert_eq!(read_value(c.response(serializable).as_ref()), Ok(Some("old".into())));
        if bug {
            assert_eq!(
                read_value(c.response(read).as_ref()),
                Ok(Some("old".into())),
                "the planted bug reads stale data"
            );
        } else {
            assert_eq!(
                error_of(c.response(read).as_ref()),
                Some(ERR_TIMEOUT),
                "ReadIndex never answers stale data"
            );
        }
    }
}

fn lease_grant(c: &mut Cluster, member: u64, ttl_seconds: i64) -> (i64, i64) {
    match c.call(member, EtcdRequest::LeaseGrant { id: 0, ttl_seconds }, 10 * SEC) {
        Some(EtcdResponse::LeaseGrant { id, ttl_seconds, .. }) => (id, ttl_seconds),
        other => panic!("lease grant: {other:?}"),
    }
}

fn put_with_lease(key: &str, lease: i64) -> EtcdRequest<String> {
    let op = Op::PutWithLease { key: key.into(), value: "v".into(), lease };
    EtcdRequest::Txn { compare: vec![], success: vec![op], failure: vec![] }
}

fn present_everywhere(c: &Cluster, key: &str) -> Vec<bool> {
    c.ids().iter().filter_map(|id| c.with_member(*id, |m| m.with_store(|s| s.get(key).is_some()))).collect()
}

#[test]
fn lease_expiry_deletes_attached_keys_and_keepalive_extends_it() {
    let mut c = Cluster::new(3, 41);
    let leader = elect(&mut c);
    let f = others(&c, leader)[0];
    // etcd raises a TTL below (3/2 * election timeout) to it: 1.5 s, rounded up to 2 s.
    assert_eq!(lease_grant(&mut c, f, 1).1, 2);
    let (lease, ttl) = lease_grant(&mut c, f, 3);
    assert_eq!(ttl, 3);
    let r = c.call(f, put_with_lease("/lease/k", lease), 10 * SEC);
    assert!(r.as_ref().is_some_and(is_ok_write), "{r:?}");
    let missing = c.call(f, put_with_lease("/lease/bad", 12345), 10 * SEC);
    assert_eq!(error_of(missing.as_ref()), Some(ERR_LEASE_NOT_FOUND));
    for _ in 0..3 {
        c.run_for(2 * SEC);
        // Forwarded from the follower to the leader, which renews it.
        let r = c.call(f, EtcdRequest::LeaseKeepAlive { id: lease }, 10 * SEC);
        assert_eq!(r, Some(EtcdResponse::LeaseKeepAlive { id: lease, ttl_seconds: 3 }));
    }
    assert_eq!(present_everywhere(&c, "/lease/k"), vec![true; 3]);
    c.run_for(3 * SEC + Duration::from_millis(500));
    assert_eq!(
        present_everywhere(&c, "/lease/k"),
        vec![false; 3],
        "expired on the leader, revoked through raft"
    );
    assert_eq!(c.with_member(leader, |m| m.with_backend(|b| !b.leases().contains_key(&lease))), Some(true));
    let r = c.call(f, EtcdRequest::LeaseKeepAlive { id: lease }, 10 * SEC);
    assert_eq!(error_of(r.as_ref()), Some(ERR_LEASE_NOT_FOUND));
}

#[test]
fn lease_revoke_deletes_keys_in_one_revision() {
    let mut c = Cluster::new(3, 42);
    let leader = elect(&mut c);
    let (lease, _) = lease_grant(&mut c, leader, 60);
    for k in ["/a", "/b", "/c"] {
        let r = c.call(leader, put_with_lease(k, lease), 10 * SEC);
        assert!(r.as_ref().is_some_and(is_ok_write));
    }
    let before = c.status(leader).unwrap().revision;
    let r = c.call(leader, EtcdRequest::LeaseRevoke { id: lease }, 10 * SEC);
    assert_eq!(r, Some(EtcdResponse::LeaseRevoke { revision: before + 1 }));
    c.run_for(SEC);
    for k in ["/a", "/b", "/c"] {
        assert_eq!(present_everywhere(&c, k), vec![false; 3]);
    }
}

#[test]
fn a_new_leader_extends_leases_by_the_election_timeout() {
    let mut c = Cluster::new(3, 43);
    let leader = elect(&mut c);
    let (lease, _) = lease_grant(&mut c, leader, 5);
    let r = c.call(leader, put_with_lease("/l", lease), 10 * SEC);
    assert!(r.as_ref().is_some_and(is_ok_write));
    c.kill(leader);
    let t_kill = c.now();
    let new = elect(&mut c);
    let elected = c.now();
    // Promote: the lease lives TTL + election timeout from the new leader's first commit.
    c.run_until(20 * SEC, |c| c.with_member(new, |m| m.with_store(|s| s.get("/l").is_none())) == Some(true));
    let gone = c.now();
    assert!(gone >= elected + Duration::from_secs(5) + SEC, "revoked at {gone}, elected at {elected}");
    assert!(gone > t_kill + Duration::from_secs(5), "the old leader's timer did not carry over");
}

#[test]
fn quota_raises_nospace_writes_fail_reads_and_deletes_work() {
    let mut c = Cluster::with_config(3, 51, |cfg| cfg.quota_backend_bytes = 64 * 1024);
    let leader = elect(&mut c);
    let value = "x".repeat(1000);
    let mut written = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let key = format!("/q{i}");
        match c.call(leader, put(&key, &value), 10 * SEC) {
            Some(r) if is_ok_write(&r) => written.push(key),
            Some(EtcdResponse::Error { message }) => {
                refused = Some(message);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(refused.as_deref(), Some(ERR_NO_SPACE));
    assert!(written.len() > 20, "wrote {} keys before the quota", written.len());
    c.run_for(SEC);
    for id in c.ids() {
        assert_eq!(
            c.with_member(id, |m| m.with_backend(|b| !b.nospace_alarms().is_empty())),
            Some(true),
            "alarm replicated to {id}"
        );
    }
    // Capped: every write with a cost fails everywhere, reads and deletes still work.
    let f = others(&c, leader)[0];
    assert_eq!(error_of(c.call(f, put("/tiny", "y"), 10 * SEC).as_ref()), Some(ERR_NO_SPACE));
    assert_eq!(
        error_of(c.call(f, EtcdRequest::LeaseGrant { id: 0, ttl_seconds: 10 }, 10 * SEC).as_ref()),
        Some(ERR_NO_SPACE)
    );
    assert_eq!(read_value(c.call(f, get(&written[0]), 10 * SEC).as_ref()), Ok(Some(value.clone())));
    for key in &written {
        let r = c.call(f, delete(key), 10 * SEC);
        assert!(r.as_ref().is_some_and(is_ok_write), "delete under NOSPACE: {r:?}");
    }
    // The operator's way out: compact, defragment every member, disarm.
    let rev = c.status(leader).unwrap().revision;
    assert!(matches!(
        c.call(leader, EtcdRequest::Compact { revision: rev }, 10 * SEC),
        Some(EtcdResponse::Compact { .. })
    ));
    c.run_for(SEC);
    for id in c.ids() {
        assert_eq!(
            c.call(id, EtcdRequest::Defragment, SEC),
            Some(EtcdResponse::Defragment { db_size_bytes: 0 })
        );
    }
    assert_eq!(
        c.call(leader, EtcdRequest::AlarmDisarm, 10 * SEC),
        Some(EtcdResponse::Alarms { nospace: vec![] })
    );
    write_acked(&mut c, f, "/again", "ok");
}

#[test]
fn request_too_large_is_refused_before_raft() {
    let mut c = Cluster::new(3, 61);
    let leader = elect(&mut c);
    let big = "x".repeat(2 * 1024 * 1024);
    let r = c.call(leader, put("/big", &big), SEC);
    assert_eq!(error_of(r.as_ref()), Some(ERR_REQUEST_TOO_LARGE));
    write_acked(&mut c, leader, "/fits", &"x".repeat(1024 * 1024));
    let dup = EtcdRequest::Txn {
        compare: vec![],
        success: vec![Op::Put { key: "/d".into(), value: "1".into() }, Op::Delete { key: "/d".into() }],
        failure: vec![],
    };
    let r = c.call(leader, dup, SEC);
    assert_eq!(error_of(r.as_ref()), Some(ERR_DUPLICATE_KEY));
}

#[test]
fn range_at_revision_compaction_and_watch_through_the_member() {
    let mut c = Cluster::new(3, 71);
    let leader = elect(&mut c);
    let f = others(&c, leader)[0];
    write_acked(&mut c, leader, "/w", "1");
    let rev1 = c.status(leader).unwrap().revision;
    write_acked(&mut c, leader, "/w", "2");
    let at = |revision| EtcdRequest::RangeAt {
        key: "/w".into(),
        prefix: false,
        limit: 0,
        revision,
        serializable: false,
    };
    assert_eq!(read_value(c.call(f, at(rev1), 10 * SEC).as_ref()), Ok(Some("1".into())));
    match c.call(f, EtcdRequest::WatchFrom { revision: rev1 }, 10 * SEC) {
        Some(EtcdResponse::Events { events, .. }) => {
            assert_eq!(events.len(), 2);
            assert_eq!(events[1].prev_kv.as_ref().map(|kv| kv.value.as_str()), Some("1"));
        }
        other => panic!("{other:?}"),
    }
    let rev2 = c.status(leader).unwrap().revision;
    assert!(matches!(
        c.call(f, EtcdRequest::Compact { revision: rev2 }, 10 * SEC),
        Some(EtcdResponse::Compact { .. })
    ));
    assert_eq!(error_of(c.call(f, at(rev1), 10 * SEC).as_ref()), Some(ERR_COMPACTED));
    assert_eq!(
        error_of(c.call(f, EtcdRequest::WatchFrom { revision: rev1 }, 10 * SEC).as_ref()),
        Some(ERR_COMPACTED)
    );
}

fn scripted_run(seed: u64) -> (Vec<ClusterEvent>, Vec<MemberStatus>) {
    let mut c = Cluster::new(3, seed);
    c.set_loss_rate(0.01);
    let leader = elect(&mut c);
    for i in 0..20 {
        c.request(c.ids()[i % 3], put(&format!("/k{i}"), "v"));
        c.run_for(Duration::from_millis(50));
    }
    c.kill(leader);
    c.run_for(3 * SEC);
    c.restart(leader);
    c.isolate(c.ids()[0]);
    c.run_for(3 * SEC);
    c.heal();
    c.run_for(10 * SEC);
    let statuses = c.ids().iter().filter_map(|id| c.status(*id)).collect();
    (c.history().to_vec(), statuses)
}

#[test]
fn same_seed_same_history_different_seed_different_history() {
    let a = scripted_run(1);
    assert!(a.0.len() > 5, "the run has a history: {:?}", a.0);
    assert_eq!(a, scripted_run(1), "one seed, one history (leaders, terms, times, ticks)");
    assert_ne!(a, scripted_run(2), "another seed, another history");
}

fn pod(name: &str) -> std::sync::Arc<kubesim_model::api::Object> {
    use kubesim_model::api::{Object, ObjectMeta, Pod};
    let metadata = ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() };
    std::sync::Arc::new(Object::Pod(Pod { metadata, ..Default::default() }))
}

/// A committed object is stamped with its resourceVersion once per cluster: every member
/// that applies the entry shares the one stamped copy.
#[test]
fn objects_are_stamped_once_and_shared() {
    use std::sync::Arc;
    let mut c: EtcdCluster<Arc<kubesim_model::api::Object>> = EtcdCluster::new(3, 81);
    assert!(c.run_until(10 * SEC, |c| c.leader().is_some()));
    let leader = c.leader().unwrap();
    let op = Op::Put { key: "/p".into(), value: pod("p") };
    let r =
        c.call(leader, EtcdRequest::Txn { compare: vec![], success: vec![op], failure: vec![] }, 10 * SEC);
    assert!(matches!(r, Some(EtcdResponse::Txn { succeeded: true, .. })));
    c.run_for(SEC);
    let values: Vec<_> = c
        .ids()
        .iter()
        .map(|id| c.with_member(*id, |m| m.with_store(|s| s.get("/p").unwrap().value.clone())).unwrap())
        .collect();
    assert!(values.iter().all(|v| Arc::ptr_eq(v, &values[0])), "one stamped object shared by every member");
}

/// With raft-rs's batch_append on, seed 1 sends a follower MsgAppend{index: 410,
/// entries: [409, 410]} and it panics at put 411 (raft-rs 0.7 try_batching joins entries
/// to an entry-less append without checking its prev index).
#[test]
fn one_thousand_sequential_puts_commit_without_batch_append() {
    for seed in 0..5 {
        let mut c = Cluster::new(3, seed);
        assert!(c.run_until(10 * SEC, |c| c.leader().is_some()));
        let leader = c.leader().unwrap();
        c.run_for(SEC);
        for i in 0..1000 {
            let r = c.call(leader, put(&format!("/k{i}"), "v"), 10 * SEC);
            assert!(r.as_ref().is_some_and(is_ok_write), "{i} {r:?}");
        }
    }
}

/// Safety then liveness: random partitions, kills, restarts, disk losses and 3 % message
/// loss with small snapshot counts; then, healed, every member converges to the same
/// store and every acknowledged write is there (or was overwritten by a later one).
#[test]
fn replicas_converge_and_keep_acknowledged_writes_after_random_faults() {
    use rand::{Rng, SeedableRng};
    for seed in 0..10 {
        let mut c = Cluster::with_config(5, seed, |cfg| {
            cfg.snapshot_count = 30;
            cfg.snapshot_catch_up_entries = 10;
        });
        c.set_loss_rate(0.03);
        let mut f = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 7);
        let mut down: Vec<u64> = Vec::new();
        let mut writes: Vec<(RequestId, String, String)> = Vec::new();
        for round in 0..60 {
            let target = f.gen_range(1..=5);
            match f.gen_range(0..8) {
                0 => c.isolate(target),
                1 => c.partition(&[&[1, 2], &[3, 4, 5]]),
                2 if down.len() < 2 && c.is_alive(target) => {
                    c.kill(target);
                    down.push(target);
                }
                3 => down.drain(..).for_each(|id| c.restart(id)),
                4 if down.is_empty() => c.restart_with_lost_disk(target),
                _ => c.heal(),
            }
            for i in 0..5 {
                let (k, v) = (format!("/s{}", f.gen_range(0..20)), format!("{round}-{i}"));
                let id = c.request(f.gen_range(1..=5), put(&k, &v));
                writes.push((id, k, v));
            }
            c.run_for(Duration::from_millis(f.gen_range(200..3000)));
        }
        c.heal();
        down.drain(..).for_each(|id| c.restart(id));
        let leader = elect(&mut c);
        for id in c.ids() {
            assert!(
                c.run_until(10 * SEC, |c| caught_up(c, id, leader)),
                "seed {seed}: member {id} catches up"
            );
        }
        // Writes sent in the last rounds may still commit meanwhile: wait until every
        // member has applied what the leader has.
        assert!(
            c.run_until(10 * SEC, |c| c.ids().iter().all(|id| caught_up(c, *id, leader))),
            "seed {seed}: the members converge"
        );
        let reference = store_contents(&c, leader);
        for id in c.ids() {
            assert_eq!(store_contents(&c, id), reference, "seed {seed}: member {id} agrees");
        }
        // The latest acknowledged write of each key, by the revision it committed at.
        let mut latest: BTreeMap<String, (i64, String)> = BTreeMap::new();
        for (id, k, v) in writes {
            if let Some(EtcdResponse::Txn { succeeded: true, revision, .. }) = c.response(id) {
                if latest.get(&k).is_none_or(|(r, _)| *r < revision) {
                    latest.insert(k, (revision, v));
                }
            }
        }
        assert!(!latest.is_empty(), "seed {seed}: some writes were acknowledged");
        for (k, (rev, v)) in &latest {
            let (_, value, mod_rev) =
                reference.iter().find(|(key, _, _)| key == k).expect("acknowledged key kept");
            assert!(mod_rev >= rev, "seed {seed}: {k} went back from revision {rev} to {mod_rev}");
            if mod_rev == rev {
                assert_eq!(value, v, "seed {seed}: {k} at revision {rev}");
            }
        }
    }
}
