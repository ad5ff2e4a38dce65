//! The pod garbage collector (pkg/controller/podgc/gc_controller.go, v1.33). Every 20 s:
//! terminated pods past `--terminated-pod-gc-threshold` are deleted, oldest first;
//! terminating pods on a NotReady node tainted `node.kubernetes.io/out-of-service` are
//! force-deleted; pods bound to a node that no longer exists (checked again with a GET
//! after a 40 s quarantine) are marked Failed with a DisruptionTarget condition and
//! force-deleted; unscheduled terminating pods are force-deleted. It records no events.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use super::{Controller, ControllerManagerConfig, Requests};
use crate::api::node::condition as nc;
use crate::api::pod::condition as pc;
use crate::api::{ConditionStatus, Kind, Object, ObjectKey, PodCondition, PodPhase};
use crate::client::{ApiRequest, ApiResult, Cache, Patch, WatchEvent};
use crate::time::SimTime;

/// gc_controller.go gcCheckPeriod.
pub const GC_CHECK_PERIOD: Duration = Duration::from_secs(20);
/// gc_controller.go quarantineTime: how long a missing node stays missing before its pods
/// are collected.
pub const QUARANTINE_TIME: Duration = Duration::from_secs(40);
/// The out-of-service taint (non-graceful node shutdown).
pub const TAINT_OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";
pub const REASON_DELETION_BY_POD_GC: &str = "DeletionByPodGC";
pub const MESSAGE_NODE_GONE: &str = "PodGC: node no longer exists";

pub struct PodGcController {
    threshold: u32,
    next_pass: SimTime,
    /// Missing nodes and when they may be checked (`nodeQueue.AddAfter(name, 40s)`).
    quarantine: BTreeMap<String, SimTime>,
    /// GETs in flight to confirm a node is gone, by tag.
    checking: BTreeMap<u64, String>,
    /// Nodes the API server confirmed gone, whose pods are collected next.
    confirmed_gone: BTreeSet<String>,
    /// Pods already being force-deleted, so a pass does not repeat the requests.
    deleting: BTreeSet<(String, String)>,
    next_tag: u64,
}

fn force_delete(key: ObjectKey, uid: &str) -> ApiRequest {
    ApiRequest::Delete { key, grace_period_seconds: Some(0), precondition_uid: Some(uid.to_string()) }
}

impl PodGcController {
    pub fn new(c: &ControllerManagerConfig) -> Self {
        PodGcController {
            threshold: c.terminated_pod_gc_threshold,
            next_pass: SimTime::ZERO + GC_CHECK_PERIOD,
            quarantine: BTreeMap::new(),
            checking: BTreeMap::new(),
            confirmed_gone: BTreeSet::new(),
            deleting: BTreeSet::new(),
            next_tag: 0,
        }
    }

    fn push(&mut self, out: &mut Requests, r: ApiRequest) -> u64 {
        self.next_tag += 1;
        out.push(self.next_tag, r);
        self.next_tag
    }

    fn delete_once(&mut self, o: &Arc<Object>, out: &mut Requests) {
        let m = o.meta();
        if self.deleting.insert((m.namespace.clone(), m.name.clone())) {
            self.push(out, force_delete(o.key(), &m.uid));
        }
    }

    /// `gcTerminated`: beyond the threshold, Evicted pods first, then the oldest.
    fn gc_terminated(&mut self, cache: &Cache, out: &mut Requests) {
        if self.threshold == 0 {
            return;
        }
        let mut done: Vec<(bool, SimTime, String, Arc<Object>)> = cache
            .list(Kind::Pod)
            .filter_map(|o| {
                let p = o.as_pod()?;
                let finished = matches!(p.phase(), PodPhase::Succeeded | PodPhase::Failed);
                finished.then(|| {
                    let evicted = p.phase() == PodPhase::Failed && p.status.reason == "Evicted";
                    let created = p.metadata.creation_timestamp.unwrap_or(SimTime::ZERO);
                    (!evicted, created, p.metadata.name.clone(), o.clone())
                })
            })
            .collect();
        let excess = done.len().saturating_sub(self.threshold as usize);
        if excess == 0 {
            return;
        }
        done.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
        for (_, _, _, o) in done.into_iter().take(excess) {
            self.delete_once(&o, out);
        }
    }

    /// `gcTerminating`: terminating pods of NotReady out-of-service nodes.
    fn gc_terminating(&mut self, cache: &Cache, out: &mut Requests) {
        let nodes: Vec<String> = cache
            .list(Kind::Node)
            .filter_map(|o| o.as_node())
            .filter(|n| n.condition(nc::READY).is_none_or(|c| c.status != ConditionStatus::True))
            .filter(|n| n.spec.taints.iter().any(|t| t.key == TAINT_OUT_OF_SERVICE))
            .map(|n| n.metadata.name.clone())
            .collect();
        for node in nodes {
            let pods: Vec<Arc<Object>> = cache
                .pods_on_node(&node)
                .filter(|o| o.meta().deletion_timestamp.is_some())
                .cloned()
                .collect();
            for o in pods {
                self.delete_once(&o, out);
            }
        }
    }

    /// `gcOrphaned`: quarantine missing nodes, confirm with a GET, then collect their pods.
    /// As upstream, the existing node names are gathered once per pass
    /// (`existingNodeNames`), not looked up per pod.
    fn gc_orphaned(&mut self, cache: &Cache, now: SimTime, out: &mut Requests) {
        let existing: BTreeSet<&str> = cache.list(Kind::Node).map(|o| o.meta().name.as_str()).collect();
        let mut missing = BTreeSet::new();
        for o in cache.list(Kind::Pod) {
            let Some(p) = o.as_pod() else { continue };
            let node = p.spec.node_name.as_str();
            if !node.is_empty() && !existing.contains(node) {
                missing.insert(node.to_string());
            }
        }
        for node in &missing {
            self.quarantine.entry(node.clone()).or_insert(now + QUARANTINE_TIME);
        }
        let due: Vec<String> =
            self.quarantine.iter().filter(|(_, t)| **t <= now).map(|(n, _)| n.clone()).collect();
        for node in due {
            self.quarantine.remove(&node);
            if missing.contains(&node) && !self.checking.values().any(|n| *n == node) {
                let tag = self.push(out, ApiRequest::Get(ObjectKey::new(Kind::Node, "", node.clone())));
                self.checking.insert(tag, node);
            }
        }
    }

    /// The node is confirmed gone: `markFailedAndDeletePodWithCondition` for its pods.
    fn collect_orphans(&mut self, node: &str, cache: &Cache, now: SimTime, out: &mut Requests) {
        let pods: Vec<Arc<Object>> = cache.pods_on_node(node).cloned().collect();
        for o in pods {
            let Some(p) = o.as_pod() else { continue };
            let m = &p.metadata;
            if self.deleting.contains(&(m.namespace.clone(), m.name.clone())) {
                continue;
            }
            if !matches!(p.phase(), PodPhase::Succeeded | PodPhase::Failed) {
                let cond = PodCondition {
                    type_: pc::DISRUPTION_TARGET.into(),
                    status: ConditionStatus::True,
                    last_transition_time: Some(now),
                    reason: REASON_DELETION_BY_POD_GC.into(),
                    message: MESSAGE_NODE_GONE.into(),
                    ..Default::default()
                };
                let patch = Patch::PodStatus { conditions: vec![cond], phase: Some(PodPhase::Failed) };
                self.push(out, ApiRequest::Patch { key: o.key(), patch });
            }
            self.delete_once(&o, out);
        }
    }

    /// `gcUnscheduledTerminating`.
    fn gc_unscheduled_terminating(&mut self, cache: &Cache, out: &mut Requests) {
        let pods: Vec<Arc<Object>> = cache
            .list(Kind::Pod)
            .filter(|o| {
                o.meta().deletion_timestamp.is_some()
                    && o.as_pod().is_some_and(|p| p.spec.node_name.is_empty())
            })
            .cloned()
            .collect();
        for o in pods {
            self.delete_once(&o, out);
        }
    }
}

impl Controller for PodGcController {
    fn on_event(&mut self, ev: &WatchEvent, _cache: &Cache) {
        if ev.type_ == crate::client::WatchEventType::Deleted && ev.object.kind() == Kind::Pod {
            let m = ev.object.meta();
            self.deleting.remove(&(m.namespace.clone(), m.name.clone()));
        }
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, _cache: &Cache, _now: SimTime) {
        if let Some(node) = self.checking.remove(&tag) {
            // NotFound confirms it; any other answer is retried on a later pass.
            if result.as_ref().is_err_and(|e| e.is_not_found()) {
                self.confirmed_gone.insert(node);
            }
        }
    }

    fn reconcile(&mut self, cache: &Cache, now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        for node in std::mem::take(&mut self.confirmed_gone) {
            self.collect_orphans(&node, cache, now, out);
        }
        if now >= self.next_pass {
            self.next_pass = now + GC_CHECK_PERIOD;
            self.gc_terminated(cache, out);
            self.gc_terminating(cache, out);
            self.gc_orphaned(cache, now, out);
            self.gc_unscheduled_terminating(cache, out);
        }
        out.wake(self.next_pass);
    }
}
