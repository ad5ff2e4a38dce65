//! The DaemonSet controller (pkg/controller/daemon): one pod per eligible node, placed by
//! the default scheduler through required node affinity on `metadata.name`, with the
//! tolerations upstream adds so daemons survive node problems.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;

use super::controller_ref::Claimer;
use super::{controller_ref, Controller, Requests};
use crate::api::scheduling::{
    tolerations_tolerate, NodeAffinity, NodeSelector, NodeSelectorOperator, NodeSelectorRequirement,
    NodeSelectorTerm,
};
use crate::api::{
    Affinity, DaemonSet, Kind, Node, Object, ObjectKey, ObjectMeta, Pod, PodPhase, TaintEffect, Toleration,
    TolerationOperator, EVENT_NORMAL,
};
use crate::client::{ApiRequest, ApiResult, Cache, EventRecorder, WatchEvent};
use crate::time::SimTime;

/// `util.AddOrUpdateDaemonPodTolerations` (pkg/controller/daemon/util/daemonset_util.go).
pub fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let t = |key: &str, effect| Toleration {
        key: key.into(),
        operator: Some(TolerationOperator::Exists),
        effect: Some(effect),
        ..Default::default()
    };
    let mut v = vec![
        t("node.kubernetes.io/not-ready", TaintEffect::NoExecute),
        t("node.kubernetes.io/unreachable", TaintEffect::NoExecute),
        t("node.kubernetes.io/disk-pressure", TaintEffect::NoSchedule),
        t("node.kubernetes.io/memory-pressure", TaintEffect::NoSchedule),
        t("node.kubernetes.io/pid-pressure", TaintEffect::NoSchedule),
        t("node.kubernetes.io/unschedulable", TaintEffect::NoSchedule),
    ];
    if host_network {
        v.push(t("node.kubernetes.io/network-unavailable", TaintEffect::NoSchedule));
    }
    v
}

/// `AddOrUpdateTolerationInPodSpec`: a toleration equal in key, operator, value and
/// effect is replaced (dropping its tolerationSeconds); others are appended.
fn with_tolerations(mut tols: Vec<Toleration>, add: Vec<Toleration>) -> Vec<Toleration> {
    for t in add {
        let same = |x: &Toleration| {
            x.key == t.key
                && x.operator.unwrap_or_default() == t.operator.unwrap_or_default()
                && x.value == t.value
                && x.effect == t.effect
        };
        match tols.iter_mut().find(|x| same(x)) {
            Some(x) => *x = t,
            None => tols.push(t),
        }
    }
    tols
}

/// `NodeShouldRunDaemonPod` (pkg/controller/daemon/daemon_controller.go): whether a
/// daemon pod should be placed on the node, and whether one already there should keep
/// running. Selector and required affinity must match; an untolerated NoSchedule taint
/// keeps new pods away, but only an untolerated NoExecute taint removes running ones.
pub fn should_run(ds: &DaemonSet, node: &Node) -> (bool, bool) {
    let spec = &ds.spec.template.spec;
    let labels = &node.metadata.labels;
    if !spec.node_selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
        return (false, false);
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref());
    if required.is_some_and(|r| !r.matches(&node.metadata.name, labels)) {
        return (false, false);
    }
    let tols = with_tolerations(spec.tolerations.clone(), daemon_tolerations(spec.host_network));
    let untolerated = |effect: TaintEffect| {
        node.spec.taints.iter().filter(|t| t.effect == effect).any(|t| !tolerations_tolerate(&tols, t))
    };
    let no_execute = untolerated(TaintEffect::NoExecute);
    if no_execute || untolerated(TaintEffect::NoSchedule) {
        return (false, !no_execute);
    }
    (true, true)
}

/// The node a daemon pod targets (its required matchFields metadata.name term).
fn target_node(p: &Pod) -> Option<&str> {
    if !p.spec.node_name.is_empty() {
        return Some(&p.spec.node_name);
    }
    let ns = p
        .spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    ns.node_selector_terms
        .iter()
        .flat_map(|t| &t.match_fields)
        .find(|r| r.key == "metadata.name")
        .and_then(|r| r.values.first())
        .map(String::as_str)
}

pub struct DaemonSetController {
    dirty: BTreeSet<ObjectKey>,
    all_dirty: bool,
    /// ds key -> nodes with a create in flight or not yet observed.
    expected: BTreeMap<ObjectKey, BTreeSet<String>>,
    routes: BTreeMap<u64, (ObjectKey, String)>,
    next_tag: u64,
    recorder: EventRecorder,
    pending_events: Vec<(u64, ApiRequest)>,
    /// getDaemonPods' ClaimPods: orphan pods to adopt, claims in flight.
    claimer: Claimer,
}

impl Default for DaemonSetController {
    fn default() -> Self {
        Self::new()
    }
}

impl DaemonSetController {
    pub fn new() -> Self {
        DaemonSetController {
            dirty: BTreeSet::new(),
            all_dirty: false,
            expected: BTreeMap::new(),
            routes: BTreeMap::new(),
            next_tag: 0,
            recorder: EventRecorder::new("daemonset-controller", ""),
            pending_events: Vec::new(),
            claimer: Claimer::new(Kind::Pod),
        }
    }

    fn sync(&mut self, key: &ObjectKey, cache: &Cache, now: SimTime, out: &mut Requests) {
        let Some(obj) = cache.get(key).cloned() else {
            self.expected.remove(key);
            return;
        };
        let Some(ds) = obj.as_daemon_set() else { return };
        if ds.metadata.deletion_timestamp.is_some() {
            return;
        }
        let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
        let (claimed, patches) = self.claimer.claim_all(&obj, &ds.spec.selector, cache, |_| true);
        self.claimer.send(patches, key, &mut self.next_tag, out);
        for p in claimed.iter().filter_map(|o| o.as_pod()) {
            if p.metadata.deletion_timestamp.is_none()
                && !matches!(p.phase(), PodPhase::Succeeded | PodPhase::Failed)
            {
                if let Some(n) = target_node(p) {
                    by_node.entry(n.to_string()).or_default().push(p);
                }
            }
        }
        let expected = self.expected.entry(key.clone()).or_default();
        expected.retain(|n| !by_node.contains_key(n));
        let nodes: Vec<&Node> = cache.list(Kind::Node).filter_map(|o| o.as_node()).collect();
        let mut desired = 0;
        let mut creates = Vec::new();
        let mut deletes = Vec::new();
        for node in &nodes {
            let name = &node.metadata.name;
            let (run, keep) = should_run(ds, node);
            let have = by_node.get(name.as_str()).map_or(0, |v| v.len());
            if run {
                desired += 1;
                if have == 0 && !expected.contains(name) {
                    creates.push(name.clone());
                }
            } else if !keep && have > 0 {
                deletes.extend(
                    by_node[name.as_str()].iter().map(|p| (p.metadata.name.clone(), p.metadata.uid.clone())),
                );
            }
        }
        for node in creates {
            expected.insert(node.clone());
            let mut t = ds.spec.template.clone();
            let spec = std::sync::Arc::make_mut(&mut t.spec);
            spec.tolerations = with_tolerations(
                std::mem::take(&mut spec.tolerations),
                daemon_tolerations(spec.host_network),
            );
            let term = NodeSelectorTerm {
                match_fields: vec![NodeSelectorRequirement {
                    key: "metadata.name".into(),
                    operator: NodeSelectorOperator::In,
                    values: vec![node.clone()],
                }],
                ..Default::default()
            };
            let mut affinity =
                spec.affinity.take().unwrap_or(Affinity { node_affinity: None, ..Default::default() });
            let na = affinity.node_affinity.get_or_insert_with(NodeAffinity::default);
            na.required_during_scheduling_ignored_during_execution =
                Some(NodeSelector { node_selector_terms: vec![term] });
            spec.affinity = Some(affinity);
            let pod = Pod {
                metadata: ObjectMeta {
                    generate_name: format!("{}-", ds.metadata.name),
                    namespace: ds.metadata.namespace.clone(),
                    labels: t.metadata.labels.clone(),
                    annotations: t.metadata.annotations.clone(),
                    owner_references: vec![controller_ref(&obj)],
                    ..Default::default()
                },
                spec: t.spec,
                ..Default::default()
            };
            self.next_tag += 1;
            self.routes.insert(self.next_tag, (key.clone(), node));
            out.push(self.next_tag, ApiRequest::Create(Object::Pod(pod)));
        }
        for (name, uid) in deletes {
            self.next_tag += 1;
            out.push(
                self.next_tag,
                ApiRequest::Delete {
                    key: ObjectKey::new(Kind::Pod, key.namespace.clone(), name),
                    grace_period_seconds: None,
                    precondition_uid: Some(uid),
                },
            );
        }
        let mut s = ds.status.clone();
        s.desired_number_scheduled = desired;
        // updateDaemonSetStatus: a pod on a node it should not be placed on (even one it
        // may keep running on) counts as misscheduled.
        let wanted = |n: &String| nodes.iter().any(|x| x.metadata.name == *n && should_run(ds, x).0);
        s.current_number_scheduled = by_node.keys().filter(|n| wanted(n)).count() as i32;
        s.number_misscheduled = by_node.keys().filter(|n| !wanted(n)).count() as i32;
        let pods: Vec<&&Pod> = by_node.values().flatten().collect();
        s.number_ready = pods.iter().filter(|p| p.is_ready()).count() as i32;
        s.number_available =
            pods.iter().filter(|p| p.is_available(ds.spec.min_ready_seconds, now)).count() as i32;
        s.updated_number_scheduled = s.current_number_scheduled;
        s.number_unavailable = (desired - s.number_available).max(0);
        s.observed_generation = ds.metadata.generation;
        if s != ds.status {
            let mut n = ds.clone();
            n.status = s;
            n.metadata.resource_version = 0;
            self.next_tag += 1;
            out.push(self.next_tag, ApiRequest::UpdateStatus(Object::DaemonSet(n)));
        }
    }
}

impl Controller for DaemonSetController {
    fn on_event(&mut self, ev: &WatchEvent, _cache: &Cache) {
        let o = &ev.object;
        match o.kind() {
            Kind::DaemonSet => {
                self.dirty.insert(o.key());
            }
            Kind::Node => self.all_dirty = true,
            Kind::Pod => {
                // An orphan: the DaemonSets whose selector matches it may adopt it.
                let selector = |o: &Object| o.as_daemon_set().map(|d| d.spec.selector.clone());
                self.dirty.extend(self.claimer.observe(ev, _cache, Kind::DaemonSet, selector));
                if let Some(r) = o.meta().controller_of().filter(|r| r.kind == "DaemonSet") {
                    self.dirty.insert(ObjectKey::new(
                        Kind::DaemonSet,
                        o.meta().namespace.clone(),
                        r.name.clone(),
                    ));
                }
            }
            _ => {}
        }
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, cache: &Cache, now: SimTime) {
        if let Some(owner) = self.claimer.on_response(tag, result) {
            self.dirty.insert(owner);
            return;
        }
        let Some((key, node)) = self.routes.remove(&tag) else { return };
        match result {
            Ok(pod) => {
                if let Some(ds) = cache.get(&key).cloned() {
                    let r = self.recorder.record(
                        &ds,
                        EVENT_NORMAL,
                        "SuccessfulCreate",
                        &format!("Created pod: {}", pod.meta().name),
                        now,
                    );
                    self.next_tag += 1;
                    self.pending_events.push((self.next_tag, r));
                }
            }
            Err(_) => {
                if let Some(e) = self.expected.get_mut(&key) {
                    e.remove(&node);
                }
                self.dirty.insert(key);
            }
        }
    }

    fn reconcile(&mut self, cache: &Cache, now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        for (t, r) in std::mem::take(&mut self.pending_events) {
            out.push(t, r);
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        if std::mem::take(&mut self.all_dirty) {
            dirty.extend(cache.list(Kind::DaemonSet).map(|o| o.key()));
        }
        for key in dirty {
            self.sync(&key, cache, now, out);
        }
    }
}
