//! The scheduler as a component: events in, requests out.

use super::*;
use crate::api::{Node, NodeCondition, Quantity, Taint, TaintEffect};
use rand::SeedableRng;

fn node(name: &str, cpu: &str) -> Node {
    let mut n = Node::default();
    n.metadata.name = name.into();
    n.metadata.labels.insert("kubernetes.io/hostname".into(), name.into());
    n.status.allocatable.insert("cpu".into(), Quantity::parse(cpu).unwrap());
    n.status.allocatable.insert("memory".into(), Quantity::parse("16Gi").unwrap());
    n.status.allocatable.insert("pods".into(), Quantity::parse("110").unwrap());
    n
}

fn pod(name: &str, cpu: &str) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = name.into();
    p.metadata.namespace = "default".into();
    p.metadata.uid = format!("uid-{name}");
    let mut c = crate::api::Container { name: "c".into(), ..Default::default() };
    c.resources.requests.insert("cpu".into(), Quantity::parse(cpu).unwrap());
    Arc::make_mut(&mut p.spec).containers.push(c);
    Arc::make_mut(&mut p.spec).priority = Some(0);
    p
}

fn snapshot(nodes: Vec<Node>) -> Snapshot {
    let mut s = Snapshot::default();
    for n in nodes {
        s.insert_node(NodeInfo::new(Arc::new(n)));
    }
    s
}

fn schedule(s: &mut Snapshot, p: Pod, rng: &mut ChaCha8Rng) -> ScheduleResult {
    let cfg = SchedulerConfig::default();
    s.schedule(&PodInfo::new(Arc::new(p)), &cfg.profiles[0], &cfg, &Nominated::new(), 1, SimTime::ZERO, rng)
}

#[test]
fn exact_fit_error_for_the_three_node_case() {
    let mut cordoned = node("node-1", "4");
    cordoned.spec.unschedulable = true;
    let mut gpu = node("node-2", "4");
    gpu.spec.taints.push(Taint {
        key: "dedicated".into(),
        value: "gpu".into(),
        effect: TaintEffect::NoSchedule,
        time_added: None,
    });
    let small = node("node-3", "1");
    let mut s = snapshot(vec![cordoned, gpu, small]);
    let filler = Arc::new(PodInfo::new(Arc::new(pod("filler", "500m"))));
    s.add_pod("node-3", &filler);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let r = schedule(&mut s, pod("solo", "1"), &mut rng);
    let Decision::Unschedulable(fit) = r.decision else { panic!("must not fit: {:?}", r.decision) };
    assert_eq!(
        fit.to_string(),
        "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
    );
    let rejectors: Vec<_> = r.rejectors.iter().map(|p| p.name()).collect();
    assert_eq!(rejectors, ["NodeUnschedulable", "TaintToleration", "NodeResourcesFit"]);
    assert_eq!(r.record.filtered.len(), 3);
    assert_eq!(r.record.filtered[2].plugin, "NodeResourcesFit");
}

#[test]
fn a_lower_priority_pod_is_a_victim_and_the_dry_run_reason_is_reported_otherwise() {
    let mut s = snapshot(vec![node("node-1", "1")]);
    let low = Arc::new(PodInfo::new(Arc::new(pod("low", "1"))));
    s.add_pod("node-1", &low);
    let mut high = pod("high", "1");
    Arc::make_mut(&mut high.spec).priority = Some(100);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let r = schedule(&mut s, high.clone(), &mut rng);
    let Decision::Unschedulable(fit) = &r.decision else { panic!() };
    // A successful preemption adds no PostFilter message.
    assert_eq!(fit.to_string(), "0/1 nodes are available: 1 Insufficient cpu.");
    let p = r.preemption.unwrap();
    assert_eq!(p.nominated.as_deref(), Some("node-1"));
    assert_eq!(p.chosen.unwrap().victims[0].key, "default/low");
    // Asking for more than the node has even without victims: the dry run's own reason.
    let mut huge = pod("huge", "2");
    Arc::make_mut(&mut huge.spec).priority = Some(100);
    let r = schedule(&mut s, huge, &mut rng);
    let Decision::Unschedulable(fit) = &r.decision else { panic!() };
    assert_eq!(
        fit.to_string(),
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    );
}

#[test]
fn preemption_policy_never_is_not_eligible() {
    let mut s = snapshot(vec![node("node-1", "1")]);
    s.add_pod("node-1", &Arc::new(PodInfo::new(Arc::new(pod("low", "1")))));
    let mut high = pod("high", "1");
    let spec = Arc::make_mut(&mut high.spec);
    spec.priority = Some(100);
    spec.preemption_policy = Some("Never".into());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let Decision::Unschedulable(fit) = schedule(&mut s, high, &mut rng).decision else { panic!() };
    assert_eq!(
        fit.to_string(),
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    );
}

#[test]
fn least_allocated_node_wins() {
    let mut s = snapshot(vec![node("a", "4"), node("b", "4")]);
    let busy = Arc::new(PodInfo::new(Arc::new(pod("busy", "3"))));
    s.add_pod("a", &busy);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..10 {
        let r = schedule(&mut s, pod("p", "100m"), &mut rng);
        assert_eq!(r.decision, Decision::Fits { node: "b".into(), feasible: 2 });
        assert_eq!(r.record.scores[0].node, "b");
        assert!(r.record.scores[0].total > r.record.scores[1].total);
    }
}

#[test]
fn node_selector_filters() {
    let mut a = node("a", "4");
    a.metadata.labels.insert("disk".into(), "ssd".into());
    let mut s = snapshot(vec![a, node("b", "4")]);
    let mut p = pod("p", "100m");
    Arc::make_mut(&mut p.spec).node_selector.insert("disk".into(), "ssd".into());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    assert_eq!(schedule(&mut s, p, &mut rng).decision, Decision::Fits { node: "a".into(), feasible: 1 });
}

#[test]
fn adaptive_percentage_of_nodes_to_score() {
    let mut s = Snapshot::default();
    for i in 0..5000 {
        let n = node(&format!("n{i:04}"), "8");
        s.insert_node(NodeInfo::new(Arc::new(n)));
    }
    // 50 - 5000/125 = 10% of 5000
    assert_eq!(s.num_feasible_nodes_to_find(None), 500);
    assert_eq!(s.num_feasible_nodes_to_find(Some(1)), 100);
}

// ---- the component ----

fn added(o: Object) -> WatchEvent {
    WatchEvent { type_: WatchEventType::Added, object: Arc::new(o) }
}
fn modified(o: Object) -> WatchEvent {
    WatchEvent { type_: WatchEventType::Modified, object: Arc::new(o) }
}

fn bound(mut p: Pod, node: &str) -> Pod {
    Arc::make_mut(&mut p.spec).node_name = node.into();
    p.status.phase = Some(PodPhase::Running);
    p
}

fn attempts(out: &Output) -> Vec<Arc<SchedulingAttempt>> {
    out.records.iter().map(|Record::SchedulingAttempt(a)| a.clone()).collect()
}

#[test]
fn heartbeats_requeue_no_one_but_an_uncordon_does() {
    let mut sched = Scheduler::new(SchedulerConfig::default());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut n = node("node-1", "4");
    n.spec.unschedulable = true;
    n.status.conditions.push(NodeCondition {
        type_: "Ready".into(),
        status: ConditionStatus::True,
        last_heartbeat_time: Some(SimTime::ZERO),
        ..Default::default()
    });
    sched.on_event(&added(Object::Node(n.clone())), SimTime::ZERO);
    sched.on_event(&added(Object::Pod(pod("solo", "1"))), SimTime::ZERO);
    let out = sched.tick(SimTime::ZERO, &mut rng);
    assert_eq!(attempts(&out).len(), 1);
    for i in 1..20 {
        let mut hb = n.clone();
        hb.status.conditions[0].last_heartbeat_time = Some(SimTime::from_secs(10 * i));
        sched.on_event(&modified(Object::Node(hb)), SimTime::from_secs(10 * i));
        assert!(
            attempts(&sched.tick(SimTime::from_secs(10 * i), &mut rng)).is_empty(),
            "heartbeat {i} requeued the pod"
        );
    }
    let mut uncordoned = n.clone();
    uncordoned.spec.unschedulable = false;
    sched.on_event(&modified(Object::Node(uncordoned)), SimTime::from_secs(200));
    let out = sched.tick(SimTime::from_secs(200), &mut rng);
    let a = attempts(&out);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].outcome, Outcome::Scheduled { node: "node-1".into() });
    assert!(out
        .requests
        .iter()
        .any(|r| matches!(&r.request, ApiRequest::Bind { node, .. } if node == "node-1")));
}

#[test]
fn unschedulable_pods_are_retried_by_the_five_minute_flush() {
    let mut sched = Scheduler::new(SchedulerConfig::default());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    sched.on_event(&added(Object::Node(node("node-1", "1"))), SimTime::ZERO);
    sched.on_event(&added(Object::Pod(pod("big", "2"))), SimTime::ZERO);
    let out = sched.tick(SimTime::ZERO, &mut rng);
    assert_eq!(attempts(&out).len(), 1);
    // 5 minutes, at the 30 s flush tick.
    assert_eq!(out.wake_at, Some(SimTime::from_secs(300)));
    assert!(attempts(&sched.tick(SimTime::from_secs(299), &mut rng)).is_empty());
    let a = attempts(&sched.tick(SimTime::from_secs(300), &mut rng));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].attempt, 2);
}

#[test]
fn preemption_deletes_victims_with_the_condition_and_event_then_nominates() {
    let mut sched = Scheduler::new(SchedulerConfig::default());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    sched.on_event(&added(Object::Node(node("node-1", "2"))), SimTime::ZERO);
    for name in ["low-1", "low-2"] {
        sched.on_event(&added(Object::Pod(bound(pod(name, "1"), "node-1"))), SimTime::ZERO);
    }
    let mut high = pod("high", "2");
    Arc::make_mut(&mut high.spec).priority = Some(1000);
    sched.on_event(&added(Object::Pod(high.clone())), SimTime::from_secs(1));
    let out = sched.tick(SimTime::from_secs(1), &mut rng);
    let deletes: Vec<String> = out
        .requests
        .iter()
        .filter_map(|r| match &r.request {
            ApiRequest::Delete { key, .. } => Some(key.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(deletes, ["low-1", "low-2"]);
    let conditions: Vec<&PodCondition> = out
        .requests
        .iter()
        .filter_map(|r| match &r.request {
            ApiRequest::Patch { patch: Patch::PodStatus { conditions, .. }, .. } => conditions.first(),
            _ => None,
        })
        .collect();
    assert_eq!(conditions.len(), 2);
    assert_eq!(conditions[0].reason, "PreemptionByScheduler");
    assert_eq!(conditions[0].message, "default-scheduler: preempting to accommodate a higher priority pod");
    let events: Vec<String> = out
        .requests
        .iter()
        .filter_map(|r| match &r.request {
            ApiRequest::Create(Object::Event(e)) => Some(format!("{} {}", e.reason, e.message)),
            _ => None,
        })
        .collect();
    assert!(events.contains(&"Preempted Preempted by pod uid-high on node node-1".to_string()), "{events:?}");
    assert!(
        events.contains(&"FailedScheduling 0/1 nodes are available: 1 Insufficient cpu.".to_string()),
        "{events:?}"
    );
    let status = out
        .requests
        .iter()
        .find_map(|r| match &r.request {
            ApiRequest::UpdateStatus(Object::Pod(p)) if p.metadata.name == "high" => Some(p.clone()),
            _ => None,
        })
        .expect("status update");
    assert_eq!(status.status.nominated_node_name, "node-1");
    // The victims go: the preemptor is requeued (AssignedPodDelete) and fits.
    let mut nominated = high.clone();
    nominated.status.nominated_node_name = "node-1".into();
    sched.on_event(&modified(Object::Pod(nominated)), SimTime::from_secs(2));
    for name in ["low-1", "low-2"] {
        let gone = WatchEvent {
            type_: WatchEventType::Deleted,
            object: Arc::new(Object::Pod(bound(pod(name, "1"), "node-1"))),
        };
        sched.on_event(&gone, SimTime::from_secs(32));
    }
    let out = sched.tick(SimTime::from_secs(32), &mut rng);
    let a = attempts(&out);
    assert_eq!(a.last().map(|a| a.outcome.clone()), Some(Outcome::Scheduled { node: "node-1".into() }));
}

#[test]
fn pods_of_other_schedulers_are_left_alone_and_profiles_are_chosen_by_name() {
    let mut cfg = SchedulerConfig::default();
    cfg.profiles.push(Profile::named("bin-packer"));
    let mut sched = Scheduler::new(cfg);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    sched.on_event(&added(Object::Node(node("node-1", "4"))), SimTime::ZERO);
    let mut mine = pod("mine", "1");
    Arc::make_mut(&mut mine.spec).scheduler_name = "bin-packer".into();
    let mut theirs = pod("theirs", "1");
    Arc::make_mut(&mut theirs.spec).scheduler_name = "my-scheduler".into();
    sched.on_event(&added(Object::Pod(mine)), SimTime::ZERO);
    sched.on_event(&added(Object::Pod(theirs)), SimTime::ZERO);
    let a = attempts(&sched.tick(SimTime::ZERO, &mut rng));
    assert_eq!(a.len(), 1);
    assert_eq!((a[0].pod.as_str(), a[0].scheduler_name.as_str()), ("default/mine", "bin-packer"));
}

/// VolumeBinding's binding cycle (binder.go AssumePodVolumes, BindPodVolumes): the
/// delayed claim is annotated with the node, the pod is bound only at the first 1 s poll
/// that finds the claim bound, and the timeout fails the cycle with upstream's message.
#[test]
fn a_delayed_claim_is_annotated_and_the_pod_bound_once_the_claim_is() {
    use crate::api::storage::{PersistentVolumeClaim, StorageClass, ANN_BIND_COMPLETED};
    let yaml = |s: &str| serde_yaml::from_str::<serde_yaml::Value>(s).unwrap();
    let class: StorageClass = serde_yaml::from_value(yaml(
        "{metadata: {name: fast}, provisioner: ebs.csi.aws.com, volumeBindingMode: WaitForFirstConsumer}",
    ))
    .unwrap();
    let mut claim: PersistentVolumeClaim = serde_yaml::from_value(yaml(
        "{metadata: {name: data, namespace: default, uid: c1, resourceVersion: '5'}, spec: {storageClassName: fast}}",
    ))
    .unwrap();
    claim.apply_defaults();
    let mut p = pod("db", "1");
    Arc::make_mut(&mut p.spec).volumes =
        vec![serde_yaml::from_value(yaml("{name: data, persistentVolumeClaim: {claimName: data}}")).unwrap()];

    let run = |timeout_check: bool| {
        let mut sched = Scheduler::new(SchedulerConfig::default());
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        sched.on_event(&added(Object::StorageClass(class.clone())), SimTime::ZERO);
        sched.on_event(&added(Object::PersistentVolumeClaim(claim.clone())), SimTime::ZERO);
        sched.on_event(&added(Object::Node(node("node-1", "4"))), SimTime::ZERO);
        sched.on_event(&added(Object::Pod(p.clone())), SimTime::ZERO);
        let out = sched.tick(SimTime::ZERO, &mut rng);
        // PreBind's write: the claim annotated with the node, and no Bind yet.
        let [Tagged { tag, request: ApiRequest::Update(Object::PersistentVolumeClaim(written)) }] =
            &out.requests[..]
        else {
            panic!("want one claim update, got {:?}", out.requests)
        };
        assert_eq!(written.metadata.annotations.get(ANN_SELECTED_NODE).map(String::as_str), Some("node-1"));
        let mut answered = written.clone();
        answered.metadata.resource_version = 6;
        let answer: ApiResult = Ok(Arc::new(Object::PersistentVolumeClaim(answered.clone())));
        sched.on_response(*tag, &answer, SimTime::from_millis(10));
        let out = sched.tick(SimTime::from_millis(10), &mut rng);
        assert_eq!(out.wake_at, Some(SimTime::from_millis(1010)), "the first poll is one period later");
        sched.on_event(&modified(Object::PersistentVolumeClaim(answered.clone())), SimTime::from_millis(20));
        if timeout_check {
            let mut last = Output::default();
            for s in 1..=600 {
                last = sched.tick(SimTime::from_millis(10 + 1000 * s), &mut rng);
                assert!(!last.requests.iter().any(|r| matches!(r.request, ApiRequest::Bind { .. })));
            }
            return last;
        }
        // Polls at 1.01 s .. 5.01 s find the claim unbound.
        for s in 1..=5 {
            let out = sched.tick(SimTime::from_millis(10 + 1000 * s), &mut rng);
            assert!(out.requests.is_empty(), "poll {s}: {:?}", out.requests);
            assert_eq!(out.wake_at, Some(SimTime::from_millis(1010 + 1000 * s)));
        }
        // The provisioner's volume is bound at 5.5 s; the poll at 6.01 s binds the pod.
        let mut done = answered;
        done.spec.volume_name = "pvc-1".into();
        done.metadata.annotations.insert(ANN_BIND_COMPLETED.into(), "yes".into());
        done.metadata.resource_version = 9;
        sched.on_event(&modified(Object::PersistentVolumeClaim(done)), SimTime::from_millis(5500));
        // The volume must be in the informer too (checkBindings waits for it).
        let pv: crate::api::storage::PersistentVolume =
            serde_yaml::from_value(yaml("{metadata: {name: pvc-1}, spec: {storageClassName: fast}}"))
                .unwrap();
        sched.on_event(&added(Object::PersistentVolume(pv)), SimTime::from_millis(5500));
        let out = sched.tick(SimTime::from_millis(5500), &mut rng);
        assert!(out.requests.is_empty(), "bound only at a poll: {:?}", out.requests);
        sched.tick(SimTime::from_millis(6010), &mut rng)
    };
    let out = run(false);
    assert!(out
        .requests
        .iter()
        .any(|r| matches!(&r.request, ApiRequest::Bind { node, .. } if node == "node-1")));
    // Never bound: after bindTimeoutSeconds (600 s) the cycle fails as SchedulerError.
    let out = run(true);
    let failed =
        out.requests.iter().any(|r| match &r.request {
            ApiRequest::Create(Object::Event(e)) => e.reason == "FailedScheduling"
                && e.message
                    == "running PreBind plugin \"VolumeBinding\": binding volumes: context deadline exceeded",
            _ => false,
        });
    assert!(failed, "want the PreBind timeout event, got {:?}", out.requests);
}
