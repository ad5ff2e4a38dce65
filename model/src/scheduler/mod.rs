//! kube-scheduler: the queue, the filter/score framework, DefaultPreemption's diagnosis,
//! and binding through the API. Messages follow upstream exactly
//! (pkg/scheduler/framework/types.go FitError, pkg/scheduler/framework/preemption).

pub mod framework;
pub mod plugins;
pub mod queue;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::api::pod::condition;
use crate::api::{ConditionStatus, Kind, Object, Pod, PodCondition, PodPhase, EVENT_NORMAL, EVENT_WARNING};
use crate::client::{
    ApiRequest, ApiResult, Component, EventRecorder, Output, Tagged, WatchEvent, WatchEventType, WatchSpec,
};
use crate::time::SimTime;

use framework::{Code, NodeInfo, PodInfo, Status};
use plugins::{Normalize, FILTERS, MAX_NODE_SCORE, SCORES};
use queue::SchedulingQueue;

/// `NoNodeAvailableMsg`.
pub const NO_NODE_AVAILABLE_MSG: &str = "0/%v nodes are available";
/// DefaultPreemption's reasons (framework/preemption/preemption.go).
pub const PREEMPTION_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_PREEMPTION_VICTIMS: &str = "No preemption victims found for incoming pod";
/// The scheduler's name and event source.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
/// minFeasibleNodesToFind (schedule_one.go).
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// minFeasibleNodesPercentageToFind.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;

#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerConfig {
    /// KubeSchedulerConfiguration podInitialBackoffSeconds (default 1).
    pub pod_initial_backoff: Duration,
    /// podMaxBackoffSeconds (default 10).
    pub pod_max_backoff: Duration,
    /// percentageOfNodesToScore; `None` or 0 = adaptive.
    pub percentage_of_nodes_to_score: Option<u32>,
    /// podMaxInUnschedulablePodsDuration (5 minutes).
    pub pod_max_in_unschedulable_pods_duration: Duration,
    /// PLANTED BUG for the invariant checkers' tests: skip the TaintToleration filter.
    pub planted_ignore_taints: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            pod_initial_backoff: Duration::from_secs(1),
            pod_max_backoff: Duration::from_secs(10),
            percentage_of_nodes_to_score: None,
            pod_max_in_unschedulable_pods_duration: Duration::from_secs(300),
            planted_ignore_taints: false,
        }
    }
}

/// Why a pod fits nowhere: per node, the first failing filter's status.
#[derive(Clone, Debug, PartialEq)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub node_status: BTreeMap<String, Status>,
    /// DefaultPreemption's message when it could not help.
    pub post_filter_msg: String,
}

/// Reasons counted and sorted as `sortReasonsHistogram`.
fn histogram<'a>(reasons: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in reasons {
        *counts.entry(r).or_default() += 1;
    }
    let mut v: Vec<String> = counts.into_iter().map(|(r, n)| format!("{n} {r}")).collect();
    v.sort();
    v
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = NO_NODE_AVAILABLE_MSG.replace("%v", &self.num_all_nodes.to_string());
        let reasons = histogram(self.node_status.values().flat_map(|s| s.reasons.iter().map(String::as_str)));
        write!(f, "{head}:")?;
        if !reasons.is_empty() {
            write!(f, " {}.", reasons.join(", "))?;
        }
        if !self.post_filter_msg.is_empty() {
            write!(f, " {}", self.post_filter_msg)?;
        }
        Ok(())
    }
}

/// The outcome of one scheduling attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Fits { node: String, feasible: usize },
    Unschedulable(FitError),
}

/// The nodes in a stable order and the rotation point for percentageOfNodesToScore.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub nodes: BTreeMap<String, NodeInfo>,
    next_start_node_index: usize,
}

impl Snapshot {
    /// `numFeasibleNodesToFind`.
    pub fn num_feasible_nodes_to_find(&self, percentage: Option<u32>) -> usize {
        let n = self.nodes.len();
        if n < MIN_FEASIBLE_NODES_TO_FIND {
            return n;
        }
        let pct = match percentage {
            Some(p) if p > 0 => (p as usize).min(100),
            _ => (50usize.saturating_sub(n / 125)).max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND),
        };
        (n * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
    }

    /// Filters (stopping after enough feasible nodes), scores, picks the best node with
    /// ties broken by the seeded RNG (selectHost's reservoir sampling).
    pub fn schedule(&mut self, pod: &PodInfo, config: &SchedulerConfig, rng: &mut ChaCha8Rng) -> Decision {
        let n = self.nodes.len();
        let want = self.num_feasible_nodes_to_find(config.percentage_of_nodes_to_score);
        let infos: Vec<&NodeInfo> = self.nodes.values().collect();
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(n));
        let mut failed: BTreeMap<String, Status> = BTreeMap::new();
        let mut processed = 0;
        for i in 0..n {
            let info = infos[(self.next_start_node_index + i) % n];
            processed += 1;
            match run_filters(pod, info, config.planted_ignore_taints) {
                Ok(()) => {
                    feasible.push(info);
                    if feasible.len() >= want {
                        break;
                    }
                }
                Err(s) => {
                    failed.insert(info.name().to_string(), s);
                }
            }
        }
        if n > 0 {
            self.next_start_node_index = (self.next_start_node_index + processed) % n;
        }
        if feasible.is_empty() {
            let post_filter_msg = preemption_message(pod, &infos, &failed);
            return Decision::Unschedulable(FitError {
                num_all_nodes: n,
                node_status: failed,
                post_filter_msg,
            });
        }
        let count = feasible.len();
        let node = if count == 1 { feasible[0].name().to_string() } else { select_host(pod, &feasible, rng) };
        Decision::Fits { node, feasible: count }
    }
}

fn run_filters(pod: &PodInfo, node: &NodeInfo, ignore_taints: bool) -> Result<(), Status> {
    for (name, f) in FILTERS {
        if ignore_taints && *name == plugins::taint_toleration::NAME {
            continue;
        }
        f(pod, node)?;
    }
    Ok(())
}

fn select_host(pod: &PodInfo, feasible: &[&NodeInfo], rng: &mut ChaCha8Rng) -> String {
    let mut totals = vec![0i64; feasible.len()];
    let mut raw = vec![0i64; feasible.len()];
    for (_, score, weight, normalize) in SCORES {
        for (i, n) in feasible.iter().enumerate() {
            raw[i] = score(pod, n);
        }
        let max = raw.iter().copied().max().unwrap_or(0);
        for (i, r) in raw.iter().enumerate() {
            let s = match normalize {
                Normalize::None => *r,
                Normalize::ByMax => {
                    if max == 0 {
                        0
                    } else {
                        r * MAX_NODE_SCORE / max
                    }
                }
                Normalize::ReverseByMax => {
                    if max == 0 {
                        MAX_NODE_SCORE
                    } else {
                        MAX_NODE_SCORE - r * MAX_NODE_SCORE / max
                    }
                }
            };
            totals[i] += s * weight;
        }
    }
    let mut best = 0;
    let mut ties = 0u32;
    for i in 0..feasible.len() {
        if totals[i] > totals[best] {
            best = i;
            ties = 1;
        } else if totals[i] == totals[best] {
            ties += 1;
            if i != best && rng.gen_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    feasible[best].name().to_string()
}

/// DefaultPreemption's diagnosis when no node fits: nodes that failed unresolvably are
/// not helped by preemption; on the others, removing every lower-priority pod must make
/// the pod fit, or no victims are found.
fn preemption_message(pod: &PodInfo, infos: &[&NodeInfo], failed: &BTreeMap<String, Status>) -> String {
    let mut reasons = Vec::new();
    for info in infos {
        let Some(status) = failed.get(info.name()) else { continue };
        if status.code == Code::UnschedulableAndUnresolvable {
            reasons.push(PREEMPTION_NOT_HELPFUL);
            continue;
        }
        // Without victims of lower priority there is nothing to preempt.
        let has_lower = info.pods.iter().any(|(prio, _)| *prio < pod.priority);
        if !has_lower {
            reasons.push(NO_PREEMPTION_VICTIMS);
        } else {
            // Real preemption (evicting the victims) is not simulated yet: report as
            // upstream does when the dry run finds no candidate.
            reasons.push(NO_PREEMPTION_VICTIMS);
        }
    }
    format!(
        "preemption: 0/{} nodes are available: {}.",
        infos.len(),
        histogram(reasons.into_iter()).join(", ")
    )
}

/// The kube-scheduler component.
pub struct Scheduler {
    config: SchedulerConfig,
    snapshot: Snapshot,
    queue: SchedulingQueue,
    /// Every pending pod we may schedule.
    pending: BTreeMap<String, Arc<Pod>>,
    /// Pods counted on a node (bound or assumed): key -> (node, info).
    placed: BTreeMap<String, (String, PodInfo)>,
    binding: BTreeMap<u64, String>,
    recorder: EventRecorder,
    next_tag: u64,
}

impl Scheduler {
    pub fn new(config: SchedulerConfig) -> Self {
        let queue = SchedulingQueue::new(
            config.pod_initial_backoff,
            config.pod_max_backoff,
            config.pod_max_in_unschedulable_pods_duration,
        );
        Scheduler {
            config,
            snapshot: Snapshot::default(),
            queue,
            pending: BTreeMap::new(),
            placed: BTreeMap::new(),
            binding: BTreeMap::new(),
            recorder: EventRecorder::new(DEFAULT_SCHEDULER, ""),
            next_tag: 0,
        }
    }

    fn tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    fn unplace(&mut self, key: &str) {
        if let Some((node, info)) = self.placed.remove(key) {
            if let Some(n) = self.snapshot.nodes.get_mut(&node) {
                n.remove_pod(&info);
            }
        }
    }

    fn place(&mut self, key: String, node: String, info: PodInfo) {
        self.unplace(&key);
        if let Some(n) = self.snapshot.nodes.get_mut(&node) {
            n.add_pod(&info);
        }
        self.placed.insert(key, (node, info));
    }

    fn on_pod(&mut self, ev: &WatchEvent, now: SimTime) {
        let Some(pod) = ev.object.as_pod() else { return };
        let key = framework::pod_name(pod);
        let terminal = matches!(pod.phase(), PodPhase::Succeeded | PodPhase::Failed);
        if ev.type_ == WatchEventType::Deleted || terminal {
            let was_placed = self.placed.contains_key(&key);
            self.unplace(&key);
            self.pending.remove(&key);
            self.queue.remove(&key);
            if was_placed {
                // AssignedPodDelete: freed resources may help parked pods.
                self.queue.move_all_unschedulable(now);
            }
            return;
        }
        if !pod.spec.node_name.is_empty() {
            if self.placed.get(&key).is_some_and(|(n, _)| *n == pod.spec.node_name) {
                // Already counted there (assumed, or an earlier event): requests are
                // immutable, so nothing to recompute.
                return;
            }
            self.pending.remove(&key);
            self.queue.remove(&key);
            let info = PodInfo::new(Arc::new(pod.clone()));
            self.place(key, pod.spec.node_name.clone(), info);
            return;
        }
        let ours = pod.spec.scheduler_name.is_empty() || pod.spec.scheduler_name == DEFAULT_SCHEDULER;
        if !ours || pod.metadata.deletion_timestamp.is_some() {
            return;
        }
        self.pending.insert(key.clone(), Arc::new(pod.clone()));
        if !self.queue.contains(&key) && !self.placed.contains_key(&key) {
            self.queue.add(key, pod.spec.priority.unwrap_or(0), now);
        }
    }

    fn on_node(&mut self, ev: &WatchEvent, now: SimTime) {
        let Some(node) = ev.object.as_node() else { return };
        let name = node.metadata.name.clone();
        if ev.type_ == WatchEventType::Deleted {
            self.snapshot.nodes.remove(&name);
            return;
        }
        let node = Arc::new(node.clone());
        match self.snapshot.nodes.get_mut(&name) {
            Some(info) => info.set_node(node),
            None => {
                let mut info = NodeInfo::new(node);
                for (n, p) in self.placed.values() {
                    if *n == name {
                        info.add_pod(p);
                    }
                }
                self.snapshot.nodes.insert(name, info);
            }
        }
        // NodeAdd / NodeUpdate may make parked pods schedulable.
        self.queue.move_all_unschedulable(now);
    }

    fn attempt(&mut self, key: String, now: SimTime, rng: &mut ChaCha8Rng, out: &mut Output) {
        let Some(pod) = self.pending.get(&key).cloned() else {
            self.queue.remove(&key);
            return;
        };
        let info = PodInfo::new(pod.clone());
        let obj = Object::Pod((*pod).clone());
        match self.snapshot.schedule(&info, &self.config, rng) {
            Decision::Fits { node, .. } => {
                // Assume, then bind.
                self.place(key.clone(), node.clone(), info);
                let tag = self.tag();
                self.binding.insert(tag, key.clone());
                out.requests.push(Tagged {
                    tag,
                    request: ApiRequest::Bind {
                        namespace: pod.metadata.namespace.clone(),
                        name: pod.metadata.name.clone(),
                        uid: pod.metadata.uid.clone(),
                        node: node.clone(),
                    },
                });
                let msg = format!(
                    "Successfully assigned {}/{} to {node}",
                    pod.metadata.namespace, pod.metadata.name
                );
                let ev = self.recorder.record(&obj, EVENT_NORMAL, "Scheduled", &msg, now);
                let tag = self.tag();
                out.requests.push(Tagged { tag, request: ev });
            }
            Decision::Unschedulable(fit) => {
                let msg = fit.to_string();
                self.queue.park_unschedulable(&key, now);
                let ev = self.recorder.record(&obj, EVENT_WARNING, "FailedScheduling", &msg, now);
                let tag = self.tag();
                out.requests.push(Tagged { tag, request: ev });
                let current = pod.condition(condition::POD_SCHEDULED);
                let same = current.is_some_and(|c| c.status == ConditionStatus::False && c.message == msg);
                if !same {
                    let mut p = (*pod).clone();
                    p.set_condition(PodCondition {
                        type_: condition::POD_SCHEDULED.into(),
                        status: ConditionStatus::False,
                        last_transition_time: Some(now),
                        reason: "Unschedulable".into(),
                        message: msg,
                        ..Default::default()
                    });
                    p.metadata.resource_version = 0;
                    let tag = self.tag();
                    out.requests.push(Tagged { tag, request: ApiRequest::UpdateStatus(Object::Pod(p)) });
                }
            }
        }
    }
}

/// The scheduler's clients (createClients): its own, and one for events.
pub const SCHEDULER_CLIENT: &str = "scheduler";
pub const EVENT_CLIENT: &str = "events";

impl Component for Scheduler {
    fn name(&self) -> &str {
        DEFAULT_SCHEDULER
    }

    /// cmd/kube-scheduler/app/options createClients: a "scheduler" client, and an event
    /// client of its own (the same QPS and burst, another bucket).
    fn client_of(&self, _tag: u64, request: &ApiRequest) -> &'static str {
        match request {
            ApiRequest::Create(crate::api::Object::Event(_))
            | ApiRequest::Update(crate::api::Object::Event(_)) => EVENT_CLIENT,
            _ => SCHEDULER_CLIENT,
        }
    }

    fn watches(&self) -> Vec<WatchSpec> {
        vec![WatchSpec::kind(Kind::Node), WatchSpec::kind(Kind::Pod)]
    }

    fn on_event(&mut self, ev: &WatchEvent, now: SimTime) {
        match ev.object.kind() {
            Kind::Pod => self.on_pod(ev, now),
            Kind::Node => self.on_node(ev, now),
            _ => {}
        }
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, now: SimTime) {
        if let Some(key) = self.binding.remove(&tag) {
            if result.is_err() {
                // Forget the assumption; try again after backoff.
                self.unplace(&key);
                if self.pending.contains_key(&key) {
                    self.queue.requeue_backoff(&key, now);
                }
            }
        }
    }

    fn tick(&mut self, now: SimTime, rng: &mut ChaCha8Rng) -> Output {
        let mut out = Output::default();
        self.queue.flush(now);
        while let Some(key) = self.queue.pop() {
            self.attempt(key, now, rng, &mut out);
        }
        if let Some(t) = self.queue.next_wake() {
            out.wake_no_later_than(t);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Node, Quantity, Taint, TaintEffect};
    use rand::SeedableRng;

    fn node(name: &str, cpu: &str) -> Node {
        let mut n = Node::default();
        n.metadata.name = name.into();
        n.status.allocatable.insert("cpu".into(), Quantity::parse(cpu).unwrap());
        n.status.allocatable.insert("memory".into(), Quantity::parse("16Gi").unwrap());
        n.status.allocatable.insert("pods".into(), Quantity::parse("110").unwrap());
        n
    }

    fn pod(name: &str, cpu: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = name.into();
        p.metadata.namespace = "default".into();
        let mut c = crate::api::Container { name: "c".into(), ..Default::default() };
        c.resources.requests.insert("cpu".into(), Quantity::parse(cpu).unwrap());
        Arc::make_mut(&mut p.spec).containers.push(c);
        Arc::make_mut(&mut p.spec).priority = Some(0);
        p
    }

    fn snapshot(nodes: Vec<Node>) -> Snapshot {
        let mut s = Snapshot::default();
        for n in nodes {
            s.nodes.insert(n.metadata.name.clone(), NodeInfo::new(Arc::new(n)));
        }
        s
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
        let filler = PodInfo::new(Arc::new(pod("filler", "500m")));
        s.nodes.get_mut("node-3").unwrap().add_pod(&filler);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let d = s.schedule(&PodInfo::new(Arc::new(pod("solo", "1"))), &SchedulerConfig::default(), &mut rng);
        let Decision::Unschedulable(fit) = d else { panic!("must not fit: {d:?}") };
        assert_eq!(
            fit.to_string(),
            "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn least_allocated_node_wins() {
        let mut s = snapshot(vec![node("a", "4"), node("b", "4")]);
        let busy = PodInfo::new(Arc::new(pod("busy", "3")));
        s.nodes.get_mut("a").unwrap().add_pod(&busy);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..10 {
            let d =
                s.schedule(&PodInfo::new(Arc::new(pod("p", "100m"))), &SchedulerConfig::default(), &mut rng);
            assert_eq!(d, Decision::Fits { node: "b".into(), feasible: 2 });
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
        let d = s.schedule(&PodInfo::new(Arc::new(p)), &SchedulerConfig::default(), &mut rng);
        assert_eq!(d, Decision::Fits { node: "a".into(), feasible: 1 });
    }

    #[test]
    fn adaptive_percentage_of_nodes_to_score() {
        let mut s = Snapshot::default();
        for i in 0..5000 {
            let n = node(&format!("n{i:04}"), "8");
            s.nodes.insert(n.metadata.name.clone(), NodeInfo::new(Arc::new(n)));
        }
        // 50 - 5000/125 = 10% of 5000
        assert_eq!(s.num_feasible_nodes_to_find(None), 500);
        assert_eq!(s.num_feasible_nodes_to_find(Some(1)), 100);
    }
}
