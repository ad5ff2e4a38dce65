//! Filter+score for one pod over a snapshot of 500 and 5,000 nodes (8 CPU, 32Gi, 110
//! pods each, about half full), as kube-scheduler's default profile runs them.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kubesim_model::api::{Container, Node, Pod, Quantity};
use kubesim_model::scheduler::framework::{NodeInfo, Nominated, PodInfo};
use kubesim_model::scheduler::{SchedulerConfig, Snapshot};
use kubesim_model::time::SimTime;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn node(i: usize) -> Node {
    let mut n = Node::default();
    n.metadata.name = format!("node-{i:05}");
    n.metadata.labels.insert("kubernetes.io/hostname".into(), n.metadata.name.clone());
    for (k, v) in [("cpu", "8"), ("memory", "32Gi"), ("pods", "110")] {
        n.status.allocatable.insert(k.into(), Quantity::parse(v).unwrap());
    }
    n
}

fn pod(name: &str) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = name.into();
    p.metadata.namespace = "default".into();
    let mut c = Container { name: "app".into(), ..Default::default() };
    c.resources.requests.insert("cpu".into(), Quantity::parse("50m").unwrap());
    c.resources.requests.insert("memory".into(), Quantity::parse("100Mi").unwrap());
    std::sync::Arc::make_mut(&mut p.spec).containers.push(c);
    p
}

fn snapshot(nodes: usize) -> Snapshot {
    let mut s = Snapshot::default();
    for i in 0..nodes {
        let mut info = NodeInfo::new(Arc::new(node(i)));
        for j in 0..(i % 100) {
            info.add_pod(&Arc::new(PodInfo::new(Arc::new(pod(&format!("filler-{i}-{j}"))))));
        }
        s.insert_node(info);
    }
    s
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("filter_score_one_pod");
    let config = SchedulerConfig::default();
    for n in [500, 5_000] {
        let mut snap = snapshot(n);
        let p = PodInfo::new(Arc::new(pod("incoming")));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let profile = config.profiles[0].clone();
        let nominated = Nominated::new();
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                black_box(snap.schedule(
                    black_box(&p),
                    &profile,
                    &config,
                    &nominated,
                    1,
                    SimTime::ZERO,
                    &mut rng,
                ))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
