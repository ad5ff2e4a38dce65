//! The node lifecycle controller (pkg/controller/nodelifecycle/node_lifecycle_controller.go,
//! v1.33).
//!
//! Every `--node-monitor-period` it judges each node's health from the last change of its
//! status heartbeat or of its Lease (`tryUpdateNodeHealth`); past the grace period the
//! node's conditions go Unknown, a `NodeNotReady` event is recorded and its pods stop
//! being Ready. NoExecute taints (`not-ready` / `unreachable`) go through one rate-limited
//! queue per zone (`RateLimitedTimedQueue`, drained every 100 ms), whose rate follows the
//! zone's health (`handleDisruption`). NoSchedule taints follow the node's conditions as
//! soon as a node update is seen (`doNoScheduleTaintingPass`, TaintNodesByCondition).
//!
//! Upstream calls the API synchronously inside a pass; here writes are requests whose
//! answers arrive later, so a node with a status write in flight is skipped by the next
//! pass until the answer is in.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use super::{Controller, ControllerManagerConfig, Requests};
use crate::api::node::condition as nc;
use crate::api::pod::condition as pc;
use crate::api::{
    ConditionStatus, Kind, Node, NodeCondition, Object, ObjectKey, PodCondition, Taint, TaintEffect,
    EVENT_NORMAL, EVENT_WARNING,
};
use crate::client::{ApiRequest, ApiResult, Cache, EventRecorder, Patch, WatchEvent, WatchEventType};
use crate::time::SimTime;

pub const TAINT_NODE_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_NODE_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_NODE_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_NODE_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_NODE_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const TAINT_NODE_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// Nodes with this label do not count toward their zone's disruption state.
pub const LABEL_EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";

/// tryUpdateNodeHealth: reason and message of conditions forced Unknown.
pub const REASON_NODE_STATUS_UNKNOWN: &str = "NodeStatusUnknown";
pub const MESSAGE_KUBELET_STOPPED: &str = "Kubelet stopped posting node status.";
/// ... and of conditions a kubelet never posted.
pub const REASON_NODE_STATUS_NEVER_UPDATED: &str = "NodeStatusNeverUpdated";
pub const MESSAGE_KUBELET_NEVER_POSTED: &str = "Kubelet never posted node status.";

/// scheduler.NodeEvictionPeriod: how often the NoExecute tainting queues are drained.
pub const NODE_EVICTION_PERIOD: Duration = Duration::from_millis(100);
/// The NoExecute tainting worker retries a node without a Ready condition after this.
const TAINT_RETRY: Duration = Duration::from_millis(50);

/// The event source of this controller (`node-controller`).
pub const COMPONENT: &str = "node-controller";

/// A zone's health (`ZoneState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneState {
    Initial,
    Normal,
    FullDisruption,
    PartialDisruption,
}

/// What the controller knows of one node (`nodeHealthData`).
#[derive(Clone, Debug)]
struct NodeHealth {
    probe: SimTime,
    ready_transition: SimTime,
    /// The Ready condition as last seen (for the heartbeat comparison).
    ready: Option<NodeCondition>,
    lease_renew: Option<SimTime>,
}

/// `flowcontrol.NewTokenBucketRateLimiter(qps, 1)`, or the never-accepting limiter a
/// zone gets in master disruption mode (`NewFakeNeverRateLimiter`, whose `QPS()` is 1).
#[derive(Clone, Debug)]
enum Limiter {
    Bucket { qps: f64, tokens: f64, last: SimTime },
    Never,
}

impl Limiter {
    fn bucket(qps: f64, now: SimTime) -> Self {
        // x/time/rate starts full: the first node of a zone is tainted at once.
        Limiter::Bucket { qps, tokens: 1.0, last: now }
    }

    fn qps(&self) -> f64 {
        match self {
            Limiter::Bucket { qps, .. } => *qps,
            Limiter::Never => 1.0,
        }
    }

    fn try_accept(&mut self, now: SimTime) -> bool {
        match self {
            Limiter::Never => false,
            Limiter::Bucket { qps, tokens, last } => {
                let dt = now.saturating_sub(*last).as_secs_f64();
                *tokens = (*tokens + dt * *qps).min(1.0);
                *last = now;
                // Tokens accrue in 100 ms steps: forgive the float rounding of the sum.
                if *tokens >= 1.0 - 1e-9 {
                    *tokens -= 1.0;
                    true
                } else {
                    false
                }
            }
        }
    }
}

/// `RateLimitedTimedQueue` (nodelifecycle/scheduler/rate_limited_queue.go): a queue of
/// node names ordered by when to process them, paced by a limiter. A processed name stays
/// in the set (so it is not added again) until it is removed.
#[derive(Clone, Debug)]
struct TaintQueue {
    limiter: Limiter,
    heap: BTreeMap<(SimTime, u64), String>,
    at: BTreeMap<String, (SimTime, u64)>,
    set: BTreeSet<String>,
    seq: u64,
}

impl TaintQueue {
    fn new(qps: f64, now: SimTime) -> Self {
        TaintQueue {
            limiter: Limiter::bucket(qps, now),
            heap: BTreeMap::new(),
            at: BTreeMap::new(),
            set: BTreeSet::new(),
            seq: 0,
        }
    }

    fn add(&mut self, node: &str, now: SimTime) -> bool {
        if !self.set.insert(node.to_string()) {
            return false;
        }
        self.seq += 1;
        self.heap.insert((now, self.seq), node.to_string());
        self.at.insert(node.to_string(), (now, self.seq));
        true
    }

    fn remove(&mut self, node: &str) {
        self.set.remove(node);
        if let Some(k) = self.at.remove(node) {
            self.heap.remove(&k);
        }
    }

    /// `SwapLimiter`.
    fn swap_limiter(&mut self, qps: f64, now: SimTime) {
        if self.limiter.qps() == qps {
            return;
        }
        if qps <= 0.0 {
            self.limiter = Limiter::Never;
            return;
        }
        let mut fresh = Limiter::bucket(qps, now);
        if !self.limiter.try_accept(now) {
            // The old limiter had no token: neither does the new one.
            fresh.try_accept(now);
        }
        self.limiter = fresh;
    }
}

pub struct NodeLifecycleController {
    monitor_period: Duration,
    grace: Duration,
    startup_grace: Duration,
    eviction_qps: f64,
    secondary_eviction_qps: f64,
    large_cluster_threshold: u32,
    unhealthy_zone_threshold: f64,
    known: BTreeSet<String>,
    health: BTreeMap<String, NodeHealth>,
    zone_states: BTreeMap<String, ZoneState>,
    zone_queues: BTreeMap<String, TaintQueue>,
    nodes_to_retry: BTreeSet<String>,
    /// Nodes whose update was seen since the last NoSchedule pass.
    noschedule_dirty: BTreeSet<String>,
    /// Pods added or moved since the last pass (`processPod`).
    pods_dirty: BTreeSet<(String, String)>,
    /// The node each pod was last seen on.
    pod_nodes: BTreeMap<(String, String), String>,
    next_monitor: SimTime,
    next_taint_pass: SimTime,
    recorder: EventRecorder,
    next_tag: u64,
    /// Status writes in flight, by node.
    status_in_flight: BTreeMap<u64, String>,
    /// Taint patches in flight, by node (NoSchedule pass).
    taints_in_flight: BTreeMap<u64, String>,
}

/// `GetZoneKey` (k8s.io/component-helpers/node/topology): `region:\0:zone`, the beta
/// labels winning when present; "" when the node has neither.
pub fn zone_key(node: &Node) -> String {
    let l = &node.metadata.labels;
    let pick = |beta: &str, ga: &str| l.get(beta).or_else(|| l.get(ga)).cloned().unwrap_or_default();
    let zone = pick("failure-domain.beta.kubernetes.io/zone", "topology.kubernetes.io/zone");
    let region = pick("failure-domain.beta.kubernetes.io/region", "topology.kubernetes.io/region");
    if zone.is_empty() && region.is_empty() {
        String::new()
    } else {
        format!("{region}:\u{0}:{zone}")
    }
}

/// `ComputeZoneState` over the zone's Ready conditions (None = no condition).
pub fn compute_zone_state(ready: &[Option<ConditionStatus>], unhealthy_threshold: f64) -> ZoneState {
    let healthy = ready.iter().filter(|r| **r == Some(ConditionStatus::True)).count();
    let unhealthy = ready.len() - healthy;
    if healthy == 0 && unhealthy > 0 {
        ZoneState::FullDisruption
    } else if unhealthy > 2 && unhealthy as f64 / (healthy + unhealthy) as f64 >= unhealthy_threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

fn taint(key: &str, effect: TaintEffect, now: SimTime) -> Taint {
    Taint { key: key.into(), value: String::new(), effect, time_added: Some(now) }
}

fn has_taint(node: &Node, key: &str, effect: TaintEffect) -> bool {
    node.spec.taints.iter().any(|t| t.key == key && t.effect == effect)
}

impl NodeLifecycleController {
    pub fn new(c: &ControllerManagerConfig) -> Self {
        NodeLifecycleController {
            monitor_period: c.node_monitor_period,
            grace: c.node_monitor_grace_period,
            startup_grace: c.node_startup_grace_period,
            eviction_qps: c.node_eviction_rate,
            secondary_eviction_qps: c.secondary_node_eviction_rate,
            large_cluster_threshold: c.large_cluster_size_threshold,
            unhealthy_zone_threshold: c.unhealthy_zone_threshold,
            known: BTreeSet::new(),
            health: BTreeMap::new(),
            zone_states: BTreeMap::new(),
            zone_queues: BTreeMap::new(),
            nodes_to_retry: BTreeSet::new(),
            noschedule_dirty: BTreeSet::new(),
            pods_dirty: BTreeSet::new(),
            pod_nodes: BTreeMap::new(),
            next_monitor: SimTime::ZERO,
            next_taint_pass: SimTime::ZERO,
            recorder: EventRecorder::new(COMPONENT, ""),
            next_tag: 0,
            status_in_flight: BTreeMap::new(),
            taints_in_flight: BTreeMap::new(),
        }
    }

    /// The state of each zone, for tests and reports.
    pub fn zone_state(&self, zone: &str) -> Option<ZoneState> {
        self.zone_states.get(zone).copied()
    }

    fn push(&mut self, out: &mut Requests, r: ApiRequest) -> u64 {
        self.next_tag += 1;
        out.push(self.next_tag, r);
        self.next_tag
    }

    fn patch_taints(&mut self, out: &mut Requests, node: &str, add: Vec<Taint>, remove: Vec<Taint>) -> u64 {
        let key = ObjectKey::new(Kind::Node, "", node);
        self.push(out, ApiRequest::Patch { key, patch: Patch::NodeTaints { add, remove } })
    }

    fn add_zone(&mut self, zone: &str, now: SimTime) {
        if !self.zone_states.contains_key(zone) {
            self.zone_states.insert(zone.to_string(), ZoneState::Initial);
            self.zone_queues.insert(zone.to_string(), TaintQueue::new(self.eviction_qps, now));
        }
    }

    /// `markNodeAsReachable`: drop both NoExecute taints and the node's queue entry.
    fn mark_reachable(&mut self, node: &Node, out: &mut Requests) {
        let remove: Vec<Taint> = [TAINT_NODE_UNREACHABLE, TAINT_NODE_NOT_READY]
            .into_iter()
            .filter(|k| has_taint(node, k, TaintEffect::NoExecute))
            .map(|k| Taint {
                key: k.into(),
                value: String::new(),
                effect: TaintEffect::NoExecute,
                time_added: None,
            })
            .collect();
        if !remove.is_empty() {
            self.patch_taints(out, &node.metadata.name, Vec::new(), remove);
        }
        if let Some(q) = self.zone_queues.get_mut(&zone_key(node)) {
            q.remove(&node.metadata.name);
        }
    }

    /// `markNodeForTainting`.
    fn mark_for_tainting(&mut self, node: &Node, status: ConditionStatus, now: SimTime) {
        let key =
            if status == ConditionStatus::False { TAINT_NODE_NOT_READY } else { TAINT_NODE_UNREACHABLE };
        let Some(q) = self.zone_queues.get_mut(&zone_key(node)) else { return };
        if !has_taint(node, key, TaintEffect::NoExecute) {
            q.remove(&node.metadata.name);
        }
        q.add(&node.metadata.name, now);
    }

    /// `tryUpdateNodeHealth`: returns (observed Ready, current Ready) and sends the
    /// forced-Unknown status when the node is stale.
    fn update_health(
        &mut self,
        node: &Node,
        cache: &Cache,
        now: SimTime,
        out: &mut Requests,
    ) -> (NodeCondition, Option<NodeCondition>) {
        let name = node.metadata.name.clone();
        let created = node.metadata.creation_timestamp.unwrap_or(SimTime::ZERO);
        let (observed, grace) = match node.condition(nc::READY) {
            None => {
                self.health.entry(name.clone()).or_insert(NodeHealth {
                    probe: created,
                    ready_transition: created,
                    ready: None,
                    lease_renew: None,
                });
                let fake = NodeCondition {
                    type_: nc::READY.into(),
                    status: ConditionStatus::Unknown,
                    last_heartbeat_time: Some(created),
                    last_transition_time: Some(created),
                    ..Default::default()
                };
                (fake, self.startup_grace)
            }
            Some(c) => (c.clone(), self.grace),
        };
        let current_ready = node.condition(nc::READY).cloned();
        let fresh = || NodeHealth {
            probe: now,
            ready_transition: now,
            ready: current_ready.clone(),
            lease_renew: None,
        };
        match self.health.get_mut(&name) {
            None => {
                self.health.insert(name.clone(), fresh());
            }
            Some(h) => match (&h.ready, &current_ready) {
                (None, Some(_)) | (Some(_), None) => {
                    let lease = h.lease_renew;
                    *h = fresh();
                    h.lease_renew = lease;
                }
                (Some(saved), Some(cur)) if saved.last_heartbeat_time != cur.last_heartbeat_time => {
                    h.probe = now;
                    if saved.last_transition_time != cur.last_transition_time {
                        h.ready_transition = now;
                    }
                    h.ready = current_ready.clone();
                }
                _ => {}
            },
        }
        let lease_key = ObjectKey::new(Kind::Lease, "kube-node-lease", name.clone());
        let renew = cache.get(&lease_key).and_then(|o| o.as_lease()).and_then(|l| l.spec.renew_time);
        let h = self.health.get_mut(&name).expect("inserted above");
        if let Some(r) = renew {
            if h.lease_renew.is_none_or(|saved| saved < r) {
                h.lease_renew = Some(r);
                h.probe = now;
            }
        }
        if now <= h.probe + grace {
            return (observed, current_ready);
        }
        let mut n = node.clone();
        for t in [nc::READY, nc::MEMORY_PRESSURE, nc::DISK_PRESSURE, nc::PID_PRESSURE] {
            match n.status.conditions.iter_mut().find(|c| c.type_ == t) {
                None => n.status.conditions.push(NodeCondition {
                    type_: t.into(),
                    status: ConditionStatus::Unknown,
                    reason: REASON_NODE_STATUS_NEVER_UPDATED.into(),
                    message: MESSAGE_KUBELET_NEVER_POSTED.into(),
                    last_heartbeat_time: Some(created),
                    last_transition_time: Some(now),
                }),
                Some(c) if c.status != ConditionStatus::Unknown => {
                    c.status = ConditionStatus::Unknown;
                    c.reason = REASON_NODE_STATUS_UNKNOWN.into();
                    c.message = MESSAGE_KUBELET_STOPPED.into();
                    c.last_transition_time = Some(now);
                }
                Some(_) => {}
            }
        }
        let current = n.condition(nc::READY).cloned();
        if current.as_ref() != Some(&observed) {
            h.ready = current.clone();
            h.ready_transition = now;
            let tag = self.push(out, ApiRequest::UpdateStatus(Object::Node(n)));
            self.status_in_flight.insert(tag, name);
        }
        (observed, current)
    }

    /// `processTaintBaseEviction`.
    fn taint_based_eviction(
        &mut self,
        node: &Node,
        observed: ConditionStatus,
        now: SimTime,
        out: &mut Requests,
    ) {
        let name = node.metadata.name.clone();
        match observed {
            ConditionStatus::False | ConditionStatus::Unknown => {
                let (want, other) = if observed == ConditionStatus::False {
                    (TAINT_NODE_NOT_READY, TAINT_NODE_UNREACHABLE)
                } else {
                    (TAINT_NODE_UNREACHABLE, TAINT_NODE_NOT_READY)
                };
                if has_taint(node, other, TaintEffect::NoExecute) {
                    // SwapNodeControllerTaint at once, outside the rate limiter.
                    let add = vec![taint(want, TaintEffect::NoExecute, now)];
                    let remove = vec![taint(other, TaintEffect::NoExecute, now)];
                    self.patch_taints(out, &name, add, remove);
                } else {
                    self.mark_for_tainting(node, observed, now);
                }
            }
            ConditionStatus::True => self.mark_reachable(node, out),
        }
    }

    /// `MarkPodsNotReady` for the given pods of a node.
    fn mark_pods_not_ready<'a>(
        &mut self,
        pods: impl Iterator<Item = &'a std::sync::Arc<Object>>,
        now: SimTime,
        out: &mut Requests,
    ) {
        let pods: Vec<std::sync::Arc<Object>> = pods.cloned().collect();
        for o in pods {
            let Some(p) = o.as_pod() else { continue };
            let Some(ready) = p.condition(pc::READY) else { continue };
            if ready.status == ConditionStatus::False {
                continue;
            }
            let cond = PodCondition {
                type_: pc::READY.into(),
                status: ConditionStatus::False,
                last_transition_time: Some(now),
                reason: ready.reason.clone(),
                message: ready.message.clone(),
                ..Default::default()
            };
            let patch = Patch::PodStatus { conditions: vec![cond], phase: None };
            self.push(out, ApiRequest::Patch { key: o.key(), patch });
            let ev = self.recorder.record(&o, EVENT_WARNING, "NodeNotReady", "Node is not ready", now);
            self.push(out, ev);
        }
    }

    /// `monitorNodeHealth`: one pass over every node.
    fn monitor(&mut self, cache: &Cache, now: SimTime, out: &mut Requests) {
        let nodes: Vec<std::sync::Arc<Object>> = cache.list(Kind::Node).cloned().collect();
        let listed: BTreeSet<String> = nodes.iter().map(|o| o.meta().name.clone()).collect();
        for o in &nodes {
            let Some(n) = o.as_node() else { continue };
            let zone = zone_key(n);
            if !self.known.contains(&n.metadata.name) {
                let name = &n.metadata.name;
                let msg = format!("Node {name} event: Registered Node {name} in Controller");
                let ev = self.recorder.record(o, EVENT_NORMAL, "RegisteredNode", &msg, now);
                self.push(out, ev);
                self.known.insert(name.clone());
                self.add_zone(&zone, now);
                self.mark_reachable(n, out);
            } else {
                self.add_zone(&zone, now);
            }
        }
        let deleted: Vec<String> = self.known.difference(&listed).cloned().collect();
        for name in deleted {
            let msg = format!("Node {name} event: Removing Node {name} from Controller");
            let gone = crate::api::Node {
                metadata: crate::api::ObjectMeta { name: name.clone(), ..Default::default() },
                ..Default::default()
            };
            let ev = self.recorder.record(&Object::Node(gone), EVENT_NORMAL, "RemovingNode", &msg, now);
            self.push(out, ev);
            self.known.remove(&name);
            self.health.remove(&name);
        }
        let mut zone_ready: BTreeMap<String, Vec<Option<ConditionStatus>>> = BTreeMap::new();
        for o in &nodes {
            let Some(node) = o.as_node() else { continue };
            let name = node.metadata.name.clone();
            if self.status_in_flight.values().any(|n| *n == name) {
                // A status write is unanswered: judge this node on the next pass.
                continue;
            }
            let (observed, current) = self.update_health(node, cache, now, out);
            if !node.metadata.labels.contains_key(LABEL_EXCLUDE_DISRUPTION) {
                zone_ready.entry(zone_key(node)).or_default().push(current.as_ref().map(|c| c.status));
            }
            let Some(current) = current else { continue };
            self.taint_based_eviction(node, observed.status, now, out);
            let flipped = current.status != ConditionStatus::True && observed.status == ConditionStatus::True;
            if flipped {
                // RecordNodeStatusChange.
                let msg = format!("Node {name} status is now: NodeNotReady");
                let ev = self.recorder.record(o, EVENT_NORMAL, "NodeNotReady", &msg, now);
                self.push(out, ev);
            }
            if flipped || (self.nodes_to_retry.contains(&name) && observed.status != ConditionStatus::True) {
                self.mark_pods_not_ready(cache.pods_on_node(&name), now, out);
                self.nodes_to_retry.remove(&name);
            }
        }
        self.handle_disruption(&zone_ready, &nodes, now, out);
    }

    fn set_limiter_in_zone(&mut self, zone: &str, zone_size: usize, state: ZoneState, now: SimTime) {
        let qps = match state {
            ZoneState::PartialDisruption => {
                // ReducedQPSFunc: large zones slow down, small ones stop.
                if zone_size > self.large_cluster_threshold as usize {
                    self.secondary_eviction_qps
                } else {
                    0.0
                }
            }
            // HealthyQPSFunc, also for a fully disrupted zone among healthy ones.
            _ => self.eviction_qps,
        };
        if let Some(q) = self.zone_queues.get_mut(zone) {
            q.swap_limiter(qps, now);
        }
    }

    /// `handleDisruption`: zone states, limiter rates, master disruption mode.
    fn handle_disruption(
        &mut self,
        zone_ready: &BTreeMap<String, Vec<Option<ConditionStatus>>>,
        nodes: &[std::sync::Arc<Object>],
        now: SimTime,
        out: &mut Requests,
    ) {
        let mut new_states: BTreeMap<String, ZoneState> = BTreeMap::new();
        let mut all_fully = true;
        for (zone, ready) in zone_ready {
            let st = compute_zone_state(ready, self.unhealthy_zone_threshold);
            if st != ZoneState::FullDisruption {
                all_fully = false;
            }
            if !self.zone_states.contains_key(zone) {
                self.zone_states.insert(zone.clone(), ZoneState::Initial);
            }
            new_states.insert(zone.clone(), st);
        }
        let mut all_was_fully = true;
        let zones: Vec<(String, ZoneState)> = self.zone_states.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (zone, st) in zones {
            if !new_states.contains_key(&zone) {
                self.zone_states.remove(&zone);
                continue;
            }
            if st != ZoneState::FullDisruption {
                all_was_fully = false;
                break;
            }
        }
        if all_fully && all_was_fully {
            return;
        }
        let size = |zone: &str| zone_ready.get(zone).map_or(0, |v| v.len());
        if all_fully && !all_was_fully {
            // "Controller detected that all Nodes are not-Ready. Entering master
            // disruption mode": no eviction anywhere.
            for o in nodes {
                if let Some(n) = o.as_node() {
                    self.mark_reachable(n, out);
                }
            }
            for q in self.zone_queues.values_mut() {
                q.swap_limiter(0.0, now);
            }
            for (zone, _) in new_states {
                self.zone_states.insert(zone, ZoneState::FullDisruption);
            }
            return;
        }
        if !all_fully && all_was_fully {
            // Leaving master disruption mode: every node gets a fresh grace period.
            for h in self.health.values_mut() {
                h.probe = now;
                h.ready_transition = now;
            }
            for (zone, st) in new_states {
                self.set_limiter_in_zone(&zone, size(&zone), st, now);
                self.zone_states.insert(zone, st);
            }
            return;
        }
        for (zone, st) in new_states {
            if self.zone_states.get(&zone) != Some(&st) {
                self.set_limiter_in_zone(&zone, size(&zone), st, now);
                self.zone_states.insert(zone, st);
            }
        }
    }

    /// `doNoExecuteTaintingPass`: drain each zone's queue as its limiter allows.
    fn no_execute_pass(&mut self, cache: &Cache, now: SimTime, out: &mut Requests) {
        let zones: Vec<String> = self.zone_queues.keys().cloned().collect();
        for zone in zones {
            loop {
                let q = self.zone_queues.get_mut(&zone).expect("listed");
                let Some((&(at, seq), name)) = q.heap.first_key_value() else { break };
                let name = name.clone();
                // The token is taken before looking at the head's time, as upstream's
                // Try does.
                if !q.limiter.try_accept(now) || now < at {
                    break;
                }
                q.heap.remove(&(at, seq));
                q.at.remove(&name);
                let node_key = ObjectKey::new(Kind::Node, "", name.clone());
                let node = cache.get(&node_key).and_then(|o| o.as_node().cloned());
                let retry = match node.as_ref().map(|n| n.condition(nc::READY).map(|c| c.status)) {
                    None => false,
                    Some(None) => true,
                    Some(Some(ConditionStatus::True)) => false,
                    Some(Some(status)) => {
                        let (add, remove) = if status == ConditionStatus::False {
                            (TAINT_NODE_NOT_READY, TAINT_NODE_UNREACHABLE)
                        } else {
                            (TAINT_NODE_UNREACHABLE, TAINT_NODE_NOT_READY)
                        };
                        let add = vec![taint(add, TaintEffect::NoExecute, now)];
                        let remove = vec![taint(remove, TaintEffect::NoExecute, now)];
                        self.patch_taints(out, &name, add, remove);
                        false
                    }
                };
                if retry {
                    let q = self.zone_queues.get_mut(&zone).expect("listed");
                    q.seq += 1;
                    let key = (now + TAINT_RETRY, q.seq);
                    q.heap.insert(key, name.clone());
                    q.at.insert(name, key);
                }
            }
        }
    }

    /// `doNoScheduleTaintingPass` for one node: the NoSchedule taints its conditions call for.
    fn no_schedule_pass(&mut self, node: &Node, now: SimTime, out: &mut Requests) {
        let status = |t: &str| node.condition(t).map(|c| c.status);
        let mut want: Vec<&str> = Vec::new();
        match status(nc::READY) {
            Some(ConditionStatus::False) => want.push(TAINT_NODE_NOT_READY),
            Some(ConditionStatus::Unknown) => want.push(TAINT_NODE_UNREACHABLE),
            _ => {}
        }
        for (cond, key) in [
            (nc::MEMORY_PRESSURE, TAINT_NODE_MEMORY_PRESSURE),
            (nc::DISK_PRESSURE, TAINT_NODE_DISK_PRESSURE),
            (nc::NETWORK_UNAVAILABLE, TAINT_NODE_NETWORK_UNAVAILABLE),
            (nc::PID_PRESSURE, TAINT_NODE_PID_PRESSURE),
        ] {
            if status(cond) == Some(ConditionStatus::True) {
                want.push(key);
            }
        }
        if node.spec.unschedulable {
            want.push(TAINT_NODE_UNSCHEDULABLE);
        }
        let candidates = [
            TAINT_NODE_NOT_READY,
            TAINT_NODE_UNREACHABLE,
            TAINT_NODE_MEMORY_PRESSURE,
            TAINT_NODE_DISK_PRESSURE,
            TAINT_NODE_NETWORK_UNAVAILABLE,
            TAINT_NODE_PID_PRESSURE,
            TAINT_NODE_UNSCHEDULABLE,
        ];
        let have: Vec<&str> = node
            .spec
            .taints
            .iter()
            .filter(|t| t.effect == TaintEffect::NoSchedule && candidates.contains(&t.key.as_str()))
            .map(|t| t.key.as_str())
            .collect();
        let add: Vec<Taint> = want
            .iter()
            .filter(|k| !have.contains(k))
            .map(|k| taint(k, TaintEffect::NoSchedule, now))
            .collect();
        let remove: Vec<Taint> = have
            .iter()
            .filter(|k| !want.contains(k))
            .map(|k| taint(k, TaintEffect::NoSchedule, now))
            .collect();
        if add.is_empty() && remove.is_empty() {
            return;
        }
        let tag = self.patch_taints(out, &node.metadata.name, add, remove);
        self.taints_in_flight.insert(tag, node.metadata.name.clone());
    }
}

impl Controller for NodeLifecycleController {
    fn on_event(&mut self, ev: &WatchEvent, _cache: &Cache) {
        match ev.object.kind() {
            Kind::Node if ev.type_ != WatchEventType::Deleted => {
                self.noschedule_dirty.insert(ev.object.meta().name.clone());
            }
            // podUpdated: only a new pod, or one moved to another node, is looked at.
            Kind::Pod => {
                let m = ev.object.meta();
                let key = (m.namespace.clone(), m.name.clone());
                if ev.type_ == WatchEventType::Deleted {
                    self.pod_nodes.remove(&key);
                    return;
                }
                let node = ev.object.as_pod().map(|p| p.spec.node_name.clone()).unwrap_or_default();
                if self.pod_nodes.get(&key) != Some(&node) {
                    self.pod_nodes.insert(key.clone(), node);
                    self.pods_dirty.insert(key);
                }
            }
            _ => {}
        }
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, _cache: &Cache, _now: SimTime) {
        if let Some(node) = self.taints_in_flight.remove(&tag) {
            // Look again: the node may have changed while the patch was in flight.
            self.noschedule_dirty.insert(node);
        }
        if let Some(node) = self.status_in_flight.remove(&tag) {
            if result.is_err() {
                // A conflicting kubelet write: the next pass reads the node again.
                self.nodes_to_retry.insert(node);
            }
        }
    }

    fn reconcile(&mut self, cache: &Cache, now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        for name in std::mem::take(&mut self.noschedule_dirty) {
            if self.taints_in_flight.values().any(|n| *n == name) {
                continue;
            }
            if let Some(n) =
                cache.get(&ObjectKey::new(Kind::Node, "", name)).and_then(|o| o.as_node().cloned())
            {
                self.no_schedule_pass(&n, now, out);
            }
        }
        // processPod: a pod added to a node whose Ready is not True is marked NotReady.
        for (ns, name) in std::mem::take(&mut self.pods_dirty) {
            let Some(o) = cache.get(&ObjectKey::new(Kind::Pod, ns, name)).cloned() else { continue };
            let Some(p) = o.as_pod() else { continue };
            let not_ready = self
                .health
                .get(&p.spec.node_name)
                .and_then(|h| h.ready.as_ref())
                .is_some_and(|r| r.status != ConditionStatus::True);
            if !p.spec.node_name.is_empty() && not_ready {
                self.mark_pods_not_ready(std::iter::once(&o), now, out);
            }
        }
        if now >= self.next_monitor {
            self.monitor(cache, now, out);
            self.next_monitor = now + self.monitor_period;
        }
        if now >= self.next_taint_pass {
            self.no_execute_pass(cache, now, out);
            self.next_taint_pass = now + NODE_EVICTION_PERIOD;
        }
        out.wake(self.next_monitor);
        if self.zone_queues.values().any(|q| !q.heap.is_empty()) {
            out.wake(self.next_taint_pass);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ObjectMeta;
    use rand::SeedableRng;
    use std::sync::Arc;

    fn ready_node(name: &str, heartbeat: SimTime, zone: &str) -> Arc<Object> {
        let mut n = Node {
            metadata: ObjectMeta {
                name: name.into(),
                uid: name.into(),
                resource_version: 5,
                ..Default::default()
            },
            ..Default::default()
        };
        n.metadata.labels.insert("topology.kubernetes.io/zone".into(), zone.into());
        n.status.conditions.push(NodeCondition {
            type_: nc::READY.into(),
            status: ConditionStatus::True,
            last_heartbeat_time: Some(heartbeat),
            last_transition_time: Some(SimTime::ZERO),
            ..Default::default()
        });
        Arc::new(Object::Node(n))
    }

    fn unknown_sent(out: &Requests) -> bool {
        out.items.iter().any(|(_, r)| {
            matches!(r, ApiRequest::UpdateStatus(Object::Node(n))
                if n.condition(nc::READY).is_some_and(|c| c.status == ConditionStatus::Unknown && c.reason == REASON_NODE_STATUS_UNKNOWN && c.message == MESSAGE_KUBELET_STOPPED))
        })
    }

    /// A node last heard from at t=10s is marked Unknown on the first 5 s pass after
    /// the 50 s grace period, not before.
    #[test]
    fn unknown_after_grace_period_not_before() {
        let mut c = NodeLifecycleController::new(&ControllerManagerConfig::default());
        let mut cache = Cache::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        cache.apply(&WatchEvent {
            type_: WatchEventType::Added,
            object: ready_node("node-2", SimTime::from_secs(10), ""),
        });
        let mut marked_at = None;
        let mut t = SimTime::from_secs(10);
        while t <= SimTime::from_secs(80) {
            let mut out = Requests::default();
            c.reconcile(&cache, t, &mut rng, &mut out);
            if unknown_sent(&out) {
                marked_at = Some(t);
                break;
            }
            for (tag, _) in &out.items {
                c.on_response(*tag, &Ok(ready_node("node-2", SimTime::from_secs(10), "")), &cache, t);
            }
            t = t + Duration::from_secs(1);
        }
        // Passes at 10, 15, ..., 60 (exactly 50 s: not yet stale), 65.
        assert_eq!(marked_at, Some(SimTime::from_secs(65)));
    }

    #[test]
    fn zone_states_follow_upstream_thresholds() {
        use ConditionStatus::*;
        let t = Some(True);
        let f = Some(False);
        assert_eq!(compute_zone_state(&[f, None], 0.55), ZoneState::FullDisruption);
        assert_eq!(compute_zone_state(&[t, f, f], 0.55), ZoneState::Normal, "fewer than 3 unhealthy");
        assert_eq!(compute_zone_state(&[t, t, f, f, f], 0.55), ZoneState::PartialDisruption);
        assert_eq!(compute_zone_state(&[t, t, t, f, f, f], 0.55), ZoneState::Normal, "0.5 < 0.55");
        assert_eq!(compute_zone_state(&[], 0.55), ZoneState::Normal);
    }

    #[test]
    fn zone_key_prefers_beta_labels() {
        let mut n = Node::default();
        assert_eq!(zone_key(&n), "");
        n.metadata.labels.insert("topology.kubernetes.io/zone".into(), "a".into());
        n.metadata.labels.insert("topology.kubernetes.io/region".into(), "r".into());
        assert_eq!(zone_key(&n), "r:\u{0}:a");
        n.metadata.labels.insert("failure-domain.beta.kubernetes.io/zone".into(), "b".into());
        assert_eq!(zone_key(&n), "r:\u{0}:b");
    }

    /// Two nodes of one zone fail together: the first is tainted NoExecute at once (the
    /// bucket starts full), the second one token later, 1/0.1 = 10 s after.
    #[test]
    fn no_execute_taints_are_paced_per_zone() {
        let mut c = NodeLifecycleController::new(&ControllerManagerConfig::default());
        let mut q = TaintQueue::new(c.eviction_qps, SimTime::ZERO);
        q.add("a", SimTime::ZERO);
        q.add("b", SimTime::ZERO);
        c.zone_queues.insert(String::new(), q);
        let mut cache = Cache::default();
        for n in ["a", "b"] {
            let mut node = ready_node(n, SimTime::ZERO, "");
            let nn = Arc::make_mut(&mut node);
            if let Object::Node(x) = nn {
                x.status.conditions[0].status = ConditionStatus::Unknown;
            }
            cache.apply(&WatchEvent { type_: WatchEventType::Added, object: node });
        }
        let mut tainted = Vec::new();
        let mut t = SimTime::from_secs(1);
        while t <= SimTime::from_secs(20) {
            let mut out = Requests::default();
            c.no_execute_pass(&cache, t, &mut out);
            for (_, r) in out.items {
                if let ApiRequest::Patch { key, patch: Patch::NodeTaints { add, .. } } = r {
                    assert_eq!(add[0].key, TAINT_NODE_UNREACHABLE);
                    tainted.push((key.name, t));
                }
            }
            t = t + NODE_EVICTION_PERIOD;
        }
        assert_eq!(
            tainted,
            vec![("a".to_string(), SimTime::from_secs(1)), ("b".to_string(), SimTime::from_secs(11))]
        );
    }
}
