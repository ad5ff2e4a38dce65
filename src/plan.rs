//! A loaded scenario turned into what the run does: the world's configuration (component
//! flags applied over upstream defaults), the workloads, the timeline and the checks.

use std::sync::Arc;
use std::time::Duration;

use kubesim_faults::Fault;
use kubesim_model::api::{Kind, ObjectKey, ResourceList, Selector, TaintEffect};
use kubesim_model::kubelet::behavior::Behaviors;
use kubesim_model::kubelet::KubeletConfig;
use kubesim_sim::{ClientRate, WorkerSpec, WorldConfig};

use crate::run::{Check, Compare, Condition, Plan, Step, TimedStep, Timing};
use crate::scenario::{render_yaml, times, NodePool, Scenario, ScenarioError};

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
    k.eviction = kn.eviction().expect("validated");
    k.behaviors = behaviors.clone();
    k.internal_ip = format!("10.0.{}.{}", index / 250, index % 250 + 10);
    // KubeletConfiguration kubeAPIQPS 50, kubeAPIBurst 100 (v1.27+).
    let rate = ClientRate { qps: kn.kube_api_qps.unwrap_or(50.0), burst: kn.kube_api_burst.unwrap_or(100) };
    WorkerSpec { kubelet: k, rate }
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
        let obj_key = |kind: &str, name: &str, ns: &Option<String>| {
            let k = Kind::parse(kind).unwrap_or(Kind::Pod);
            let ns =
                if k.namespaced() { ns.clone().unwrap_or_else(|| "default".into()) } else { String::new() };
            ObjectKey::new(k, ns, name.to_string())
        };
        let step = if let Some(a) = &e.apply {
            Step::Apply(a.objects())
        } else if let Some(d) = &e.delete {
            Step::Delete(obj_key(&d.kind, &d.name, &d.namespace))
        } else if let Some(sc) = &e.scale {
            Step::Scale { key: obj_key(&sc.kind, &sc.name, &sc.namespace), replicas: sc.replicas as i32 }
        } else if let Some(n) = &e.cordon {
            Step::Cordon { node: n.clone(), unschedulable: true }
        } else if let Some(n) = &e.uncordon {
            Step::Cordon { node: n.clone(), unschedulable: false }
        } else if let Some(a) = &e.add_nodes {
            let pool = s.node_pools.iter().find(|p| p.name == a.pool).expect("validated");
            let c = counters.get_mut(&a.pool).expect("validated");
            let mut ws = Vec::new();
            for _ in 0..a.count {
                *c += 1;
                index += 1;
                ws.push(worker(pool, *c, index, &behaviors));
            }
            Step::AddWorkers(ws)
        } else if let Some(n) = &e.remove_node {
            Step::RemoveNode(n.clone())
        } else if let Some(h) = &e.kill_host {
            Step::Fault(Fault::KillHost(h.clone()))
        } else if let Some(h) = &e.restart_host {
            Step::Fault(Fault::RestartHost(h.clone()))
        } else if let Some(groups) = &e.partition {
            Step::Fault(Fault::Partition(groups.clone()))
        } else if let Some(p) = &e.kill_process {
            Step::Fault(Fault::KillProcess { host: p.host.clone(), process: p.process.clone() })
        } else if let Some(p) = &e.restart_process {
            Step::Fault(Fault::RestartProcess { host: p.host.clone(), process: p.process.clone() })
        } else if let Some(c) = &e.kill_leader {
            Step::Fault(Fault::KillLeader(c.clone()))
        } else if let Some(h) = &e.stop_kubelet {
            Step::Fault(Fault::KillProcess { host: h.clone(), process: "kubelet".into() })
        } else if let Some(h) = &e.start_kubelet {
            Step::Fault(Fault::RestartProcess { host: h.clone(), process: "kubelet".into() })
        } else if let Some(h) = &e.stop_container_runtime {
            Step::Fault(Fault::StopContainerRuntime(h.clone()))
        } else if let Some(h) = &e.start_container_runtime {
            Step::Fault(Fault::StartContainerRuntime(h.clone()))
        } else if let Some(h) = &e.isolate_member {
            Step::Fault(Fault::IsolateMember(h.clone()))
        } else if e.isolate_etcd_leader.is_some() {
            Step::Fault(Fault::IsolateEtcdLeader)
        } else if let Some(h) = &e.lose_etcd_disk {
            Step::Fault(Fault::LoseEtcdDisk(h.clone()))
        } else if let Some(d) = &e.slow_etcd_disk {
            Step::Fault(Fault::SlowEtcdDisk { host: d.host.clone(), fsync: d.fsync.time.as_duration() })
        } else if let Some(a) = &e.memory_hog {
            Step::Fault(Fault::MemoryHog {
                host: a.node.clone(),
                bytes: a.size.value(),
                per_second: a.per_second.as_ref().map_or(0, |q| q.value()),
            })
        } else if let Some(a) = &e.fill_disk {
            Step::Fault(Fault::FillDisk { host: a.node.clone(), bytes: a.size.value() })
        } else if let Some(a) = &e.fill_inodes {
            Step::Fault(Fault::FillInodes { host: a.node.clone(), inodes: a.inodes })
        } else if let Some(a) = &e.exhaust_pids {
            Step::Fault(Fault::ExhaustPids { host: a.node.clone(), pids: a.pids })
        } else if let Some(i) = &e.unpullable_image {
            Step::Fault(Fault::UnpullableImage(i.clone()))
        } else if let Some(i) = &e.pullable_image {
            Step::Fault(Fault::PullableImage(i.clone()))
        } else if let Some(c) = &e.crash_container {
            Step::Fault(Fault::CrashContainer {
                pod: c.pod.clone(),
                namespace: c.namespace.clone(),
                container: c.container.clone(),
                exit_code: c.exit_code,
            })
        } else if let Some(d) = &e.drain {
            Step::Drain(crate::drain::Drain {
                node: d.node.clone(),
                ignore_daemon_sets: d.ignore_daemon_sets,
                force: d.force,
                grace_period_seconds: d.grace_period.as_ref().map(|g| g.time.as_secs() as i64),
            })
        } else if let Some(t) = e.taint.as_ref().or(e.untaint.as_ref()) {
            Step::Taint {
                node: t.node.clone(),
                key: t.key.clone(),
                value: t.value.clone(),
                effect: t.effect.as_deref().and_then(TaintEffect::parse),
                add: e.taint.is_some(),
            }
        } else {
            Step::Fault(Fault::Heal)
        };
        timeline.push(TimedStep {
            at: e.at.time,
            step,
            via: e.via.clone(),
            expect_error: e.expect_error.clone(),
        });
    }
    let mut checks = Vec::new();
    for x in &s.expectations {
        let (from, until) = times(x);
        let timing = match until {
            None => Timing::At(from),
            Some(until) => {
                Timing::Within { from, until, hold: x.holds_for.as_ref().map(|d| d.time.as_duration()) }
            }
        };
        let condition = if let Some(q) = &x.pod_count {
            let compare = if let Some(v) = &x.equals {
                Compare::Equals(render_yaml(v).parse().unwrap_or(-1))
            } else if let Some(v) = x.at_least {
                Compare::AtLeast(v)
            } else {
                Compare::AtMost(x.at_most.unwrap_or(0))
            };
            Condition::PodCount {
                phase: q.phase,
                terminating: q.terminating,
                ready: q.ready,
                node: q.node.clone(),
                namespace: q.namespace.clone(),
                selector: q.selector.as_deref().map(|s| Selector::parse(s).expect("validated")),
                compare,
            }
        } else if let Some(f) = &x.field {
            let k = Kind::parse(&f.kind).unwrap_or(Kind::Pod);
            let ns = if k.namespaced() {
                f.namespace.clone().unwrap_or_else(|| "default".into())
            } else {
                String::new()
            };
            let equals = match (x.exists, &x.equals) {
                (Some(false), _) => None,
                (_, Some(v)) => Some(render_yaml(v)),
                (_, None) => Some(crate::run::ANY_VALUE.to_string()),
            };
            Condition::Field { key: ObjectKey::new(k, ns, f.name.clone()), path: f.path.clone(), equals }
        } else if let Some(f) = &x.written {
            let k = Kind::parse(&f.kind).unwrap_or(Kind::Pod);
            let ns = if k.namespaced() {
                f.namespace.clone().unwrap_or_else(|| "default".into())
            } else {
                String::new()
            };
            Condition::Written {
                key: ObjectKey::new(k, ns, f.name.clone()),
                path: f.path.clone(),
                equals: x.equals.as_ref().map(render_yaml),
                watch: None,
                absent: x.exists == Some(false),
            }
        } else if let Some(n) = &x.node_count {
            let compare = if let Some(v) = &x.equals {
                Compare::Equals(render_yaml(v).parse().unwrap_or(-1))
            } else if let Some(v) = x.at_least {
                Compare::AtLeast(v)
            } else {
                Compare::AtMost(x.at_most.unwrap_or(0))
            };
            let taint = n.taint.as_ref().map(|t| match t.rsplit_once(':') {
                Some((k, e)) if TaintEffect::parse(e).is_some() => (k.to_string(), TaintEffect::parse(e)),
                _ => (t.clone(), None),
            });
            Condition::NodeCount { taint, ready: n.ready.clone(), compare }
        } else if let Some(l) = &x.leader {
            Condition::Leader {
                component: l.component.clone(),
                host: l.host.clone(),
                not_host: l.not_host.clone(),
                elected_after: l.elected_after.as_ref().map(|d| d.time),
                absent: x.exists == Some(false),
            }
        } else {
            let e = x.event.as_ref().expect("validated");
            Condition::Event {
                reason: e.reason.clone(),
                type_: e.type_.clone(),
                message: e.message.clone(),
                message_pattern: e.message_pattern.clone(),
                absent: x.exists == Some(false),
                involved: e.involved_object.as_ref().map(|i| {
                    let k = Kind::parse(&i.kind).unwrap_or(Kind::Pod);
                    (k, i.name.clone(), i.namespace.clone().unwrap_or_default())
                }),
            }
        };
        checks.push(Check { name: x.describe(), timing, condition });
    }
    Ok(Plan {
        name: s.name.clone(),
        seed: s.seed,
        duration: s.duration.time,
        world,
        workloads,
        timeline,
        checks,
    })
}
