//! The node lifecycle controller (pkg/controller/nodelifecycle), its health monitoring:
//! every --node-monitor-period it checks when it last saw each node's Lease renewed or
//! status heartbeat change; past --node-monitor-grace-period (--node-startup-grace-period
//! for a node never Ready) the node's conditions go Unknown, its pods stop being Ready,
//! and the NoSchedule taint for its state is applied (TaintNodesByCondition).
//! Taint-based eviction and zone rate limits come with a later issue.

use std::collections::BTreeMap;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use super::{Controller, ControllerManagerConfig, Requests};
use crate::api::node::condition as nc;
use crate::api::pod::condition as pc;
use crate::api::{
    ConditionStatus, Kind, Node, Object, ObjectKey, PodCondition, Taint, TaintEffect, EVENT_NORMAL,
};
use crate::client::{ApiRequest, Cache, EventRecorder, WatchEvent, WatchEventType};
use crate::time::SimTime;

pub const TAINT_NODE_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_NODE_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// node_lifecycle_controller.go: the reason and message of conditions it sets Unknown.
pub const REASON_NODE_STATUS_UNKNOWN: &str = "NodeStatusUnknown";
pub const MESSAGE_KUBELET_STOPPED: &str = "Kubelet stopped posting node status.";
pub const MESSAGE_KUBELET_NEVER_POSTED: &str = "Kubelet never posted node status.";

#[derive(Debug, Clone)]
struct Health {
    /// When this controller last saw the status heartbeat or the Lease change.
    probe: SimTime,
    heartbeat: Option<SimTime>,
    lease_renew: Option<SimTime>,
}

pub struct NodeLifecycleController {
    period: Duration,
    grace: Duration,
    startup_grace: Duration,
    health: BTreeMap<String, Health>,
    next_pass: SimTime,
    registered: BTreeMap<String, bool>,
    recorder: EventRecorder,
    next_tag: u64,
    in_flight: BTreeMap<u64, String>,
}

impl NodeLifecycleController {
    pub fn new(c: &ControllerManagerConfig) -> Self {
        NodeLifecycleController {
            period: c.node_monitor_period,
            grace: c.node_monitor_grace_period,
            startup_grace: c.node_startup_grace_period,
            health: BTreeMap::new(),
            next_pass: SimTime::ZERO,
            registered: BTreeMap::new(),
            recorder: EventRecorder::new("node-controller", ""),
            next_tag: 0,
            in_flight: BTreeMap::new(),
        }
    }

    fn send(&mut self, out: &mut Requests, node: &str, r: ApiRequest) {
        self.next_tag += 1;
        self.in_flight.insert(self.next_tag, node.to_string());
        out.push(self.next_tag, r);
    }

    /// `tryUpdateNodeHealth`: refresh the probe time from what changed since last pass.
    fn observe(&mut self, node: &Node, cache: &Cache, now: SimTime) -> Health {
        let heartbeat = node.condition(nc::READY).and_then(|c| c.last_heartbeat_time);
        let lease = cache
            .get(&ObjectKey::new(Kind::Lease, "kube-node-lease", node.metadata.name.clone()))
            .and_then(|o| o.as_lease().and_then(|l| l.spec.renew_time));
        let h = self.health.entry(node.metadata.name.clone()).or_insert(Health {
            probe: now,
            heartbeat,
            lease_renew: lease,
        });
        if h.heartbeat != heartbeat {
            h.heartbeat = heartbeat;
            h.probe = now;
        }
        if lease.is_some() && h.lease_renew != lease {
            h.lease_renew = lease;
            h.probe = now;
        }
        h.clone()
    }

    fn monitor(&mut self, cache: &Cache, now: SimTime, out: &mut Requests) {
        let nodes: Vec<(Node, std::sync::Arc<Object>)> =
            cache.list(Kind::Node).filter_map(|o| o.as_node().map(|n| (n.clone(), o.clone()))).collect();
        for (node, obj) in nodes {
            let name = node.metadata.name.clone();
            if !self.registered.contains_key(&name) {
                self.registered.insert(name.clone(), true);
                let msg = format!("Node {name} event: Registered Node {name} in Controller");
                let r = self.recorder.record(&obj, EVENT_NORMAL, "RegisteredNode", &msg, now);
                self.next_tag += 1;
                out.push(self.next_tag, r);
            }
            if self.in_flight.values().any(|n| *n == name) {
                continue;
            }
            let h = self.observe(&node, cache, now);
            let ready = node.condition(nc::READY);
            let ever_ready = ready.is_some_and(|c| c.last_heartbeat_time.is_some());
            let grace = if ever_ready { self.grace } else { self.startup_grace };
            let stale = now.saturating_sub(h.probe) > grace;
            let ready_status = ready.map_or(ConditionStatus::Unknown, |c| c.status);
            if stale && ready_status != ConditionStatus::Unknown {
                self.mark_unknown(&node, &obj, ever_ready, cache, now, out);
                continue;
            }
            self.taint_pass(&node, ready_status, out);
        }
        // Forget nodes that are gone.
        let live: Vec<String> = cache.list(Kind::Node).map(|o| o.meta().name.clone()).collect();
        self.health.retain(|k, _| live.contains(k));
        self.registered.retain(|k, _| live.contains(k));
    }

    fn mark_unknown(
        &mut self,
        node: &Node,
        obj: &Object,
        ever: bool,
        cache: &Cache,
        now: SimTime,
        out: &mut Requests,
    ) {
        let mut n = node.clone();
        let msg = if ever { MESSAGE_KUBELET_STOPPED } else { MESSAGE_KUBELET_NEVER_POSTED };
        for t in [nc::READY, nc::MEMORY_PRESSURE, nc::DISK_PRESSURE, nc::PID_PRESSURE] {
            match n.status.conditions.iter_mut().find(|c| c.type_ == t) {
                Some(c) => {
                    if c.status != ConditionStatus::Unknown {
                        c.last_transition_time = Some(now);
                    }
                    c.status = ConditionStatus::Unknown;
                    c.reason = REASON_NODE_STATUS_UNKNOWN.into();
                    c.message = msg.into();
                }
                None => n.status.conditions.push(crate::api::NodeCondition {
                    type_: t.into(),
                    status: ConditionStatus::Unknown,
                    last_heartbeat_time: Some(now),
                    last_transition_time: Some(now),
                    reason: REASON_NODE_STATUS_UNKNOWN.into(),
                    message: msg.into(),
                }),
            }
        }
        n.metadata.resource_version = 0;
        let name = node.metadata.name.clone();
        self.send(out, &name, ApiRequest::UpdateStatus(Object::Node(n)));
        // nodeutil.RecordNodeStatusChange.
        let r = self.recorder.record(
            obj,
            EVENT_NORMAL,
            "NodeNotReady",
            &format!("Node {name} status is now: NodeNotReady"),
            now,
        );
        self.next_tag += 1;
        out.push(self.next_tag, r);
        // MarkPodsNotReady.
        for o in cache.list(Kind::Pod) {
            let Some(p) = o.as_pod() else { continue };
            if p.spec.node_name != name || !p.is_ready() {
                continue;
            }
            let mut p = p.clone();
            p.set_condition(PodCondition {
                type_: pc::READY.into(),
                status: ConditionStatus::False,
                last_transition_time: Some(now),
                ..Default::default()
            });
            p.metadata.resource_version = 0;
            self.next_tag += 1;
            out.push(self.next_tag, ApiRequest::UpdateStatus(Object::Pod(p)));
        }
    }

    /// `doNoScheduleTaintingPass`: the NoSchedule taint matching the Ready condition.
    fn taint_pass(&mut self, node: &Node, ready: ConditionStatus, out: &mut Requests) {
        let want = match ready {
            ConditionStatus::True => None,
            ConditionStatus::False => Some(TAINT_NODE_NOT_READY),
            ConditionStatus::Unknown => Some(TAINT_NODE_UNREACHABLE),
        };
        let ours = |t: &Taint| {
            t.effect == TaintEffect::NoSchedule
                && (t.key == TAINT_NODE_NOT_READY || t.key == TAINT_NODE_UNREACHABLE)
        };
        let have: Vec<&str> = node.spec.taints.iter().filter(|t| ours(t)).map(|t| t.key.as_str()).collect();
        if have == want.into_iter().collect::<Vec<_>>() {
            return;
        }
        let mut n = node.clone();
        n.spec.taints.retain(|t| !ours(t));
        if let Some(k) = want {
            n.spec.taints.push(Taint {
                key: k.into(),
                value: String::new(),
                effect: TaintEffect::NoSchedule,
                time_added: None,
            });
        }
        n.metadata.resource_version = 0;
        let name = node.metadata.name.clone();
        self.send(out, &name, ApiRequest::Update(Object::Node(n)));
    }
}

impl Controller for NodeLifecycleController {
    fn on_event(&mut self, ev: &WatchEvent, _cache: &Cache) {
        if ev.type_ == WatchEventType::Deleted && ev.object.kind() == Kind::Node {
            self.health.remove(&ev.object.meta().name);
        }
    }

    fn on_response(&mut self, tag: u64, _r: &crate::client::ApiResult, _cache: &Cache, _now: SimTime) {
        self.in_flight.remove(&tag);
    }

    fn reconcile(&mut self, cache: &Cache, now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        if now >= self.next_pass {
            self.monitor(cache, now, out);
            self.next_pass = now + self.period;
        }
        out.wake(self.next_pass);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{NodeCondition, ObjectMeta};
    use rand::SeedableRng;
    use std::sync::Arc;

    fn ready_node(heartbeat: SimTime) -> Arc<Object> {
        let mut n = Node {
            metadata: ObjectMeta {
                name: "node-2".into(),
                uid: "u".into(),
                resource_version: 5,
                ..Default::default()
            },
            ..Default::default()
        };
        n.status.conditions.push(NodeCondition {
            type_: nc::READY.into(),
            status: ConditionStatus::True,
            last_heartbeat_time: Some(heartbeat),
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
        cache.apply(&WatchEvent { type_: WatchEventType::Added, object: ready_node(SimTime::from_secs(10)) });
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
                c.on_response(*tag, &Ok(ready_node(SimTime::from_secs(10))), &cache, t);
            }
            t = t + Duration::from_secs(1);
        }
        // Passes at 10, 15, ..., 60 (exactly 50 s: not yet stale), 65.
        assert_eq!(marked_at, Some(SimTime::from_secs(65)));
    }
}
