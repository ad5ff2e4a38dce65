//! Committed proposals per wall second through a 3-member raft-replicated etcd, as a
//! scenario runs it (EtcdCluster: the driver, the simulated network with 1-10 ms delays,
//! the simulated disks), with pod objects as values. `batched`: rounds of 100 requests handed to the leader before one Ready, as
//! a driver draining its mailbox under load does; `one_at_a_time`: each put waits for
//! the previous answer.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kubesim_model::api::{Object, ObjectMeta, Pod};
use kubesim_model::etcd::{EtcdRequest, EtcdResponse, Op};
use kubesim_sim::etcd::EtcdCluster;

const PUTS: u64 = 1000;

fn pod(i: u64) -> Arc<Object> {
    let metadata = ObjectMeta { name: format!("web-{i}"), namespace: "default".into(), ..Default::default() };
    Arc::new(Object::Pod(Pod { metadata, ..Default::default() }))
}

fn put(i: u64) -> EtcdRequest<Arc<Object>> {
    let op = Op::Put { key: format!("/registry/pods/default/web-{i}"), value: pod(i) };
    EtcdRequest::Txn { compare: vec![], success: vec![op], failure: vec![] }
}

fn elected(seed: u64) -> (EtcdCluster<Arc<Object>>, u64) {
    let mut c = EtcdCluster::new(3, seed);
    assert!(c.run_until(Duration::from_secs(10), |c| c.leader().is_some()));
    let leader = c.leader().expect("leader");
    c.run_for(Duration::from_secs(1));
    (c, leader)
}

fn run_batched(c: &mut EtcdCluster<Arc<Object>>, leader: u64) {
    for round in 0..PUTS / 100 {
        let ids = c.request_all(leader, (0..100).map(|i| put(round * 100 + i)).collect());
        assert!(c.run_until(Duration::from_secs(10), |c| ids.iter().all(|id| c.response(*id).is_some())));
        debug_assert!(ids.iter().all(|id| matches!(c.response(*id), Some(EtcdResponse::Txn { .. }))));
    }
}

fn run_one_at_a_time(c: &mut EtcdCluster<Arc<Object>>, leader: u64) {
    for i in 0..PUTS {
        let r = c.call(leader, put(i), Duration::from_secs(10));
        assert!(matches!(r, Some(EtcdResponse::Txn { .. })));
    }
}

fn bench(cr: &mut Criterion) {
    // Messages per committed proposal: what bounds how far the simulation scales.
    for (name, run) in [("batched", run_batched as fn(&mut _, u64)), ("one_at_a_time", run_one_at_a_time)] {
        let (mut c, leader) = elected(1);
        let before = c.messages_delivered();
        run(&mut c, leader);
        let per_put = (c.messages_delivered() - before) as f64 / PUTS as f64;
        eprintln!("etcd_raft/{name}: {per_put:.2} raft messages per committed put (3 members)");
    }
    let mut g = cr.benchmark_group("etcd_raft_3_members");
    g.throughput(Throughput::Elements(PUTS));
    g.sample_size(10);
    g.bench_function("batched_1000_puts", |b| {
        b.iter_batched(|| elected(1), |(mut c, l)| run_batched(&mut c, l), BatchSize::LargeInput)
    });
    g.bench_function("one_at_a_time_1000_puts", |b| {
        b.iter_batched(|| elected(1), |(mut c, l)| run_one_at_a_time(&mut c, l), BatchSize::LargeInput)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
