//! A loaded scenario turned into what the run does: the world's configuration (component
//! flags applied over upstream defaults), the workloads, the timeline and the checks.

use std::sync::Arc;
use std::time::Duration;

use kubesim_model::api::ResourceList;
use kubesim_model::kubelet::behavior::Behaviors;
use kubesim_model::kubelet::KubeletConfig;
use kubesim_sim::{ClientRate, WorkerSpec, WorldConfig};

use crate::run::{Plan, Step, TimedStep};
use crate::scenario::{check_of, object_key, Action, NodePool, Scenario, ScenarioError};

fn worker(pool: &NodePool, i: u32, index: usize, behaviors: &Arc<Behaviors>) -> WorkerSpec {
    let mut cap = ResourceList::new();
    cap.insert("cpu".into(), pool.capacity.cpu.clone());
    cap.insert("memory".into(), pool.capacity.memory.clone());
    // KubeletConfiguration maxPods default 110.
    cap.insert(
        "pods".into(),
        pool.capacity.pods.clone().unwrap_or_else(|| kubesim_model::api::Quantity::from_units(110)),
    );
    if let Some(e) = &pool.capacity.ephemeral_storage {
        cap.insert("ephemeral-storage".into(), e.clone());
    }
    cap.extend(pool.capacity.extended.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut k = KubeletConfig::new(pool.node_name(i), cap);
    k.labels = pool.labels.clone();
    k.register_with_taints = pool.taints.clone();
    k.unschedulable = pool.unschedulable;
    let kn = &pool.kubelet;
    if let Some(d) = &kn.pod_start_latency {
        k.pod_start_latency = d.time.as_duration();
    }
    if let Some(d) = &kn.node_status_update_frequency {
        k.node_status_update_frequency = d.time.as_duration();
    }
    k.kube_reserved = kn.kube_reserved.clone().into_iter().collect();
    k.system_reserved = kn.system_reserved.clone().into_iter().collect();
    // Checked when the scenario loaded (validate_settings); defaults if not.
    k.eviction = kn.eviction().unwrap_or_default();
    k.behaviors = behaviors.clone();
    k.internal_ip = format!("10.0.{}.{}", index / 250, index % 250 + 10);
    // KubeletConfiguration kubeAPIQPS 50, kubeAPIBurst 100 (v1.27+).
    let rate = ClientRate { qps: kn.kube_api_qps.unwrap_or(50.0), burst: kn.kube_api_burst.unwrap_or(100) };
    // KubeletConfiguration eventRecordQPS 50, eventBurst 100 (v1.27+).
    let event_rate =
        ClientRate { qps: kn.event_record_qps.unwrap_or(50.0), burst: kn.event_burst.unwrap_or(100) };
    WorkerSpec { kubelet: k, rate, event_rate }
}

/// Builds the plan. Errors here are input errors (exit code 2).
pub fn from_scenario(s: &Scenario) -> Result<Plan, ScenarioError> {
    let mut world = WorldConfig::new(s.seed);
    if let Some(l) = &s.network.latency {
        world.latency = l.time.as_duration().max(Duration::from_millis(1));
    }
    world.control_plane_hosts =
        s.control_plane.hosts.unwrap_or(crate::scenario::DEFAULT_CONTROL_PLANE_HOSTS) as usize;
    let ks = &s.control_plane.kube_scheduler;
    if let Some(v) = ks.pod_initial_backoff_seconds {
        world.scheduler.pod_initial_backoff = Duration::from_secs(v);
    }
    if let Some(v) = ks.pod_max_backoff_seconds {
        world.scheduler.pod_max_backoff = Duration::from_secs(v);
    }
    world.scheduler.percentage_of_nodes_to_score = ks.percentage_of_nodes_to_score;
    if !ks.profiles.is_empty() {
        world.scheduler.profiles = ks.profiles.iter().map(|p| p.build().expect("validated")).collect();
    }
    if let Some(q) = ks.qps {
        world.scheduler_rate.qps = q;
    }
    if let Some(b) = ks.burst {
        world.scheduler_rate.burst = b;
    }
    let api = &s.control_plane.kube_apiserver;
    if let Some(v) = api.max_requests_inflight {
        world.apiserver.max_requests_inflight = v;
    }
    if let Some(v) = api.max_mutating_requests_inflight {
        world.apiserver.max_mutating_requests_inflight = v;
    }
    if let Some(d) = &api.event_ttl {
        world.apiserver.event_ttl = d.time.as_duration();
    }
    if let Some(d) = &api.etcd_compaction_interval {
        world.apiserver.etcd_compaction_interval = d.time.as_duration();
    }
    if let Some(d) = &api.request_timeout {
        world.apiserver.request_timeout = d.time.as_duration();
    }
    let etcd = &s.control_plane.etcd;
    world.etcd_quota_backend_bytes = etcd.quota_bytes();
    if let Some(b) = etcd.max_request_bytes {
        world.etcd_max_request_bytes = b;
    }
    let kcm = &s.control_plane.kube_controller_manager;
    if let Some(d) = &kcm.node_monitor_period {
        world.controller_manager.node_monitor_period = d.time.as_duration();
    }
    if let Some(d) = &kcm.node_monitor_grace_period {
        world.controller_manager.node_monitor_grace_period = d.time.as_duration();
    }
    if let Some(d) = &kcm.node_startup_grace_period {
        world.controller_manager.node_startup_grace_period = d.time.as_duration();
    }
    if let Some(q) = kcm.kube_api_qps {
        world.controller_manager_rate.qps = q;
    }
    if let Some(b) = kcm.kube_api_burst {
        world.controller_manager_rate.burst = b;
    }
    if let Some(d) = &kcm.pvclaimbinder_sync_period {
        world.controller_manager.pvclaimbinder_sync_period = d.time.as_duration();
    }
    if let Some(b) = kcm.disable_force_detach_on_timeout {
        world.controller_manager.disable_force_detach_on_timeout = b;
    }
    world.controller_manager.storage = storage_simulation(&s.storage);
    let behaviors = Arc::new(Behaviors(s.behaviors.iter().map(|b| b.to_model()).collect()));
    let mut index = 0;
    let mut counters = std::collections::BTreeMap::new();
    for pool in &s.node_pools {
        for i in 1..=pool.count {
            index += 1;
            world.workers.push(worker(pool, i, index, &behaviors));
        }
        counters.insert(pool.name.clone(), pool.count);
    }
    let workloads = s.workloads.iter().flat_map(|w| w.objects()).collect();
    let mut timeline = Vec::new();
    for e in &s.timeline {
        let step = match &e.action {
            Action::Apply(a) => Step::Apply(a.objects()),
            Action::Delete(d) => Step::Delete(d.key(), d.grace_period_seconds),
            Action::RolloutUndo(u) => Step::RolloutUndo {
                key: object_key(kubesim_model::api::Kind::Deployment, &u.name, &u.namespace),
                to_revision: u.to_revision,
            },
            Action::Scale(sc) => Step::Scale {
                key: object_key(sc.kind.0, &sc.name, &sc.namespace),
                replicas: sc.replicas as i32,
            },
            Action::Label(l) => Step::Label {
                key: object_key(l.kind.0, &l.name, &l.namespace),
                set: l.labels.clone(),
                remove: l.remove.clone(),
                overwrite: l.overwrite,
            },
            Action::Cordon(n) => Step::Cordon { node: n.clone(), unschedulable: true },
            Action::Uncordon(n) => Step::Cordon { node: n.clone(), unschedulable: false },
            Action::AddNodes(a) => {
                let mut ws = Vec::new();
                if let (Some(pool), Some(c)) =
                    (s.node_pools.iter().find(|p| p.name == a.pool), counters.get_mut(&a.pool))
                {
                    for _ in 0..a.count {
                        *c += 1;
                        index += 1;
                        ws.push(worker(pool, *c, index, &behaviors));
                    }
                }
                Step::AddWorkers(ws)
            }
            Action::Drain(d) => Step::Drain(crate::drain::Drain {
                node: d.node.clone(),
                ignore_daemon_sets: d.ignore_daemon_sets,
                force: d.force,
                grace_period_seconds: d.grace_period.as_ref().map(|g| g.time.as_secs() as i64),
            }),
            Action::RemoveNode(n) => Step::RemoveNode(n.clone()),
            Action::Taint(t) | Action::Untaint(t) => Step::Taint {
                node: t.node.clone(),
                key: t.key.clone(),
                value: t.value.clone(),
                effect: t.effect.map(|e| e.0),
                add: matches!(e.action, Action::Taint(_)),
            },
            Action::EtcdCompact => Step::EtcdCompact,
            Action::EtcdDefrag => Step::EtcdDefrag,
            Action::EtcdAlarmDisarm => Step::EtcdAlarmDisarm,
            Action::Fault(f) => Step::Fault(f.clone()),
        };
        timeline.push(TimedStep {
            at: e.at.time,
            step,
            via: e.via.clone(),
            expect_error: e.expect_error.clone(),
        });
    }
    let mut checks = Vec::new();
    for (i, x) in s.expectations.iter().enumerate() {
        let check = check_of(s, x, &format!("expectations[{i}]")).map_err(|e| ScenarioError {
            file: Default::default(),
            line: 0,
            column: 0,
            message: format!("{}: {}", e.path, e.message),
            hint: e.hint,
        })?;
        checks.push(check);
    }
    Ok(Plan {
        name: s.name.clone(),
        seed: s.seed,
        duration: s.duration.time,
        world,
        workloads,
        workload_expect_errors: crate::scenario::workload_expect_errors(s),
        invariants: s.invariants.then(|| {
            s.timeline
                .iter()
                .filter(|e| matches!(e.action, Action::Fault(_)))
                .map(|e| e.at.time)
                .max()
                .unwrap_or(kubesim_model::time::SimTime::ZERO)
        }),
        planted_ignore_taints: false,
        hash_trace: true,
        timeline,
        checks,
    })
}

/// The scenario's simulated CSI drivers, each latency defaulting to kubesim's driver.
fn storage_simulation(
    s: &crate::scenario::Storage,
) -> kubesim_model::controllers::provisioner::StorageSimulation {
    use kubesim_model::controllers::provisioner::{
        DriverSpec, StorageSimulation, DEFAULT_ATTACH_LATENCY, DEFAULT_DETACH_LATENCY,
        DEFAULT_PROVISIONING_LATENCY,
    };
    let or = |d: &Option<crate::scenario::Dur>, default| d.as_ref().map_or(default, |d| d.time.as_duration());
    StorageSimulation {
        drivers: s
            .drivers
            .iter()
            .map(|d| DriverSpec {
                name: d.name.clone(),
                provisioning_latency: or(&d.provisioning_latency, DEFAULT_PROVISIONING_LATENCY),
                attach_latency: or(&d.attach_latency, DEFAULT_ATTACH_LATENCY),
                detach_latency: or(&d.detach_latency, DEFAULT_DETACH_LATENCY),
            })
            .collect(),
    }
}
