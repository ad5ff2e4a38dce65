//! The disruption controller (pkg/controller/disruption/disruption.go, v1.33): keeps each
//! PodDisruptionBudget's status — the healthy (Ready, not terminating, not just evicted)
//! pods it selects, the healthy pods it wants (minAvailable, or the controllers' scale
//! less maxUnavailable), the disruptions allowed, the DisruptionAllowed condition — and
//! forgets pods the Eviction API admitted that were not deleted within two minutes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use super::{Controller, Requests};
use crate::api::policy::{
    Condition, PodDisruptionBudget, PodDisruptionBudgetStatus, DISRUPTION_ALLOWED_CONDITION,
    INSUFFICIENT_PODS_REASON, SUFFICIENT_PODS_REASON,
};
use crate::api::{ConditionStatus, IntOrString, Kind, Object, ObjectKey, Pod, EVENT_NORMAL, EVENT_WARNING};
use crate::client::{ApiRequest, ApiResult, Cache, EventRecorder, WatchEvent};
use crate::time::SimTime;

/// disruption.go DeletionTimeout: an admitted eviction not followed by a deletion this
/// long is forgotten.
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);
/// The event source (disruption.go NewDisruptionControllerInternal).
pub const EVENT_COMPONENT: &str = "controllermanager";
pub const MSG_NO_PODS: &str = "No matching pods found";

pub struct DisruptionController {
    dirty: BTreeSet<(String, String)>,
    /// PDBs to sync again when an admitted eviction times out.
    recheck: BTreeMap<(String, String), SimTime>,
    /// Status writes in flight, by tag.
    writing: BTreeMap<u64, (String, String)>,
    recorder: EventRecorder,
    next_tag: u64,
}

impl Default for DisruptionController {
    fn default() -> Self {
        Self::new()
    }
}

/// What a sync computed for one budget.
#[derive(Clone, Debug, PartialEq)]
pub struct Computed {
    pub expected_count: i32,
    pub desired_healthy: i32,
    pub current_healthy: i32,
    pub disrupted_pods: BTreeMap<String, SimTime>,
    pub recheck: Option<SimTime>,
    pub unmanaged: Vec<String>,
}

impl DisruptionController {
    pub fn new() -> Self {
        DisruptionController {
            dirty: BTreeSet::new(),
            recheck: BTreeMap::new(),
            writing: BTreeMap::new(),
            recorder: EventRecorder::new(EVENT_COMPONENT, ""),
            next_tag: 0,
        }
    }

    fn budgets_selecting<'a>(
        cache: &'a Cache,
        pod: &'a Pod,
    ) -> impl Iterator<Item = &'a PodDisruptionBudget> + 'a {
        cache
            .list_namespace(Kind::PodDisruptionBudget, &pod.metadata.namespace)
            .filter_map(|o| o.as_pod_disruption_budget())
            .filter(move |b| selects(b, pod))
    }

    fn push(&mut self, out: &mut Requests, r: ApiRequest) -> u64 {
        self.next_tag += 1;
        out.push(self.next_tag, r);
        self.next_tag
    }
}

/// getPodsForPdb's selector: every pod of the namespace the selector matches (an empty
/// selector matches all, a missing one none).
fn selects(b: &PodDisruptionBudget, pod: &Pod) -> bool {
    b.spec.selector.as_ref().is_some_and(|s| s.matches(&pod.metadata.labels))
}

/// The scale of a pod's controller (getExpectedScale's finders): a ReplicaSet owned by a
/// Deployment counts the Deployment's replicas. `None`: unmanaged or not found.
fn controller_scale(cache: &Cache, pod: &Pod) -> Option<(String, i32)> {
    let owner = pod.metadata.controller_of()?;
    let ns = &pod.metadata.namespace;
    match owner.kind.as_str() {
        "ReplicaSet" => {
            let rs = cache.get(&ObjectKey::new(Kind::ReplicaSet, ns, &owner.name))?.as_replica_set()?;
            if let Some(d) = rs.metadata.controller_of().filter(|d| d.kind == "Deployment") {
                let dep = cache.get(&ObjectKey::new(Kind::Deployment, ns, &d.name))?.as_deployment()?;
                return Some((dep.metadata.uid.clone(), dep.spec.replicas.unwrap_or(1)));
            }
            Some((rs.metadata.uid.clone(), rs.spec.replicas.unwrap_or(1)))
        }
        "StatefulSet" => {
            let st = cache.get(&ObjectKey::new(Kind::StatefulSet, ns, &owner.name))?.as_stateful_set()?;
            Some((st.metadata.uid.clone(), st.spec.replicas.unwrap_or(1)))
        }
        _ => None,
    }
}

/// `getExpectedScale`: the controllers' replicas, each controller counted once.
fn expected_scale(cache: &Cache, pods: &[&Pod]) -> Result<(i32, Vec<String>), String> {
    let mut scales: BTreeMap<String, i32> = BTreeMap::new();
    let mut unmanaged = Vec::new();
    for p in pods {
        if p.metadata.controller_of().is_none() {
            unmanaged.push(p.metadata.name.clone());
            continue;
        }
        match controller_scale(cache, p) {
            Some((uid, n)) => {
                scales.insert(uid, n);
            }
            None => return Err(format!("found no controllers for pod {:?}", p.metadata.name)),
        }
    }
    Ok((scales.values().sum(), unmanaged))
}

/// trySync's arithmetic: getExpectedPodCount, buildDisruptedPodMap, countHealthyPods.
pub fn compute(
    cache: &Cache,
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    now: SimTime,
) -> Result<Computed, String> {
    let (mut expected, mut desired, mut unmanaged) = (0, 0, Vec::new());
    if let Some(max_unavailable) = &pdb.spec.max_unavailable {
        let (scale, u) = expected_scale(cache, pods)?;
        let mu = max_unavailable.scaled_value(scale, true)?;
        (expected, desired, unmanaged) = (scale, (scale - mu).max(0), u);
    } else if let Some(min_available) = &pdb.spec.min_available {
        match min_available {
            IntOrString::Int(n) => (expected, desired) = (pods.len() as i32, *n),
            IntOrString::String(_) => {
                let (scale, u) = expected_scale(cache, pods)?;
                (expected, desired, unmanaged) = (scale, min_available.scaled_value(scale, true)?, u);
            }
        }
    }
    let mut disrupted = BTreeMap::new();
    let mut recheck: Option<SimTime> = None;
    for p in pods {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(t) = pdb.status.disrupted_pods.get(&p.metadata.name) else { continue };
        let expected_deletion = *t + DELETION_TIMEOUT;
        if expected_deletion > now {
            recheck = Some(recheck.map_or(expected_deletion, |r| r.min(expected_deletion)));
            disrupted.insert(p.metadata.name.clone(), *t);
        }
    }
    let healthy = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| disrupted.get(&p.metadata.name).is_none_or(|t| *t + DELETION_TIMEOUT <= now))
        .filter(|p| p.is_ready())
        .count() as i32;
    Ok(Computed {
        expected_count: expected,
        desired_healthy: desired,
        current_healthy: healthy,
        disrupted_pods: disrupted,
        recheck,
        unmanaged,
    })
}

/// updatePdbStatus: the status to write, or `None` when it is up to date.
pub fn next_status(
    pdb: &PodDisruptionBudget,
    c: &Computed,
    now: SimTime,
) -> Option<PodDisruptionBudgetStatus> {
    let mut allowed = c.current_healthy - c.desired_healthy;
    if c.expected_count <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let (status, reason) = if allowed > 0 {
        (ConditionStatus::True, SUFFICIENT_PODS_REASON)
    } else {
        (ConditionStatus::False, INSUFFICIENT_PODS_REASON)
    };
    let mut conditions = pdb.status.conditions.clone();
    // apimeta.SetStatusCondition: the transition time moves only with the status.
    let existing = conditions.iter_mut().find(|x| x.type_ == DISRUPTION_ALLOWED_CONDITION);
    let generation = pdb.metadata.generation;
    match existing {
        Some(x) => {
            if x.status != status {
                x.last_transition_time = Some(now);
            }
            x.status = status;
            x.reason = reason.into();
            x.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: DISRUPTION_ALLOWED_CONDITION.into(),
            status,
            observed_generation: generation,
            last_transition_time: Some(now),
            reason: reason.into(),
            message: String::new(),
        }),
    }
    let next = PodDisruptionBudgetStatus {
        observed_generation: generation,
        disrupted_pods: c.disrupted_pods.clone(),
        disruptions_allowed: allowed,
        current_healthy: c.current_healthy,
        desired_healthy: c.desired_healthy,
        expected_pods: c.expected_count,
        conditions,
    };
    (next != pdb.status).then_some(next)
}

impl DisruptionController {
    fn sync(&mut self, cache: &Cache, key: &(String, String), now: SimTime, out: &mut Requests) {
        let Some(obj) = cache.get(&ObjectKey::new(Kind::PodDisruptionBudget, &key.0, &key.1)).cloned() else {
            self.recheck.remove(key);
            return;
        };
        let Some(pdb) = obj.as_pod_disruption_budget() else { return };
        let pods: Vec<&Pod> = cache
            .list_namespace(Kind::Pod, &key.0)
            .filter_map(|o| o.as_pod())
            .filter(|p| selects(pdb, p))
            .collect();
        if pods.is_empty() {
            let r = self.recorder.record(&obj, EVENT_NORMAL, "NoPods", MSG_NO_PODS, now);
            self.push(out, r);
        }
        let c = match compute(cache, pdb, &pods, now) {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("Failed to calculate the number of expected pods: {e}");
                let r =
                    self.recorder.record(&obj, EVENT_WARNING, "CalculateExpectedPodCountFailed", &msg, now);
                self.push(out, r);
                return;
            }
        };
        if !c.unmanaged.is_empty() {
            let msg = format!("Pods selected by this PodDisruptionBudget (selector: {}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.", selector_text(pdb));
            let r = self.recorder.record(&obj, EVENT_WARNING, "UnmanagedPods", &msg, now);
            self.push(out, r);
        }
        match c.recheck {
            Some(t) => {
                self.recheck.insert(key.clone(), t);
            }
            None => {
                self.recheck.remove(key);
            }
        }
        if let Some(status) = next_status(pdb, &c, now) {
            let mut next = pdb.clone();
            next.status = status;
            let tag = self.push(out, ApiRequest::UpdateStatus(Object::PodDisruptionBudget(next)));
            self.writing.insert(tag, key.clone());
        }
    }
}

/// The selector as `%v` prints a `*metav1.LabelSelector`.
fn selector_text(pdb: &PodDisruptionBudget) -> String {
    match &pdb.spec.selector {
        None => "nil".into(),
        Some(s) => {
            let labels: Vec<String> = s.match_labels.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("&LabelSelector{{MatchLabels:map[string]string{{{}}},MatchExpressions:[]LabelSelectorRequirement{{}},}}", labels.join(","))
        }
    }
}

impl Controller for DisruptionController {
    fn on_event(&mut self, ev: &WatchEvent, cache: &Cache) {
        let o: &Arc<Object> = &ev.object;
        match &**o {
            Object::PodDisruptionBudget(b) => {
                self.dirty.insert((b.metadata.namespace.clone(), b.metadata.name.clone()));
            }
            Object::Pod(p) => {
                // Old and new labels are the same object's: pod labels rarely change, and a
                // budget that stopped selecting the pod is resynced by its own events.
                let keys: Vec<(String, String)> = Self::budgets_selecting(cache, p)
                    .map(|b| (b.metadata.namespace.clone(), b.metadata.name.clone()))
                    .collect();
                self.dirty.extend(keys);
            }
            Object::ReplicaSet(_) | Object::Deployment(_) | Object::StatefulSet(_) => {
                let ns = o.meta().namespace.clone();
                let keys: Vec<(String, String)> = cache
                    .list_namespace(Kind::PodDisruptionBudget, &ns)
                    .map(|b| (ns.clone(), b.meta().name.clone()))
                    .collect();
                self.dirty.extend(keys);
            }
            _ => {}
        }
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, _cache: &Cache, _now: SimTime) {
        if let Some(key) = self.writing.remove(&tag) {
            // A conflict (the Eviction API decremented it meanwhile): sync again.
            if result.is_err() {
                self.dirty.insert(key);
            }
        }
    }

    fn reconcile(&mut self, cache: &Cache, now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        let due: Vec<(String, String)> =
            self.recheck.iter().filter(|(_, t)| **t <= now).map(|(k, _)| k.clone()).collect();
        self.dirty.extend(due);
        for key in std::mem::take(&mut self.dirty) {
            self.sync(cache, &key, now, out);
        }
        if let Some(t) = self.recheck.values().min() {
            out.wake(*t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::pod::condition;
    use crate::api::policy::PodDisruptionBudgetSpec;
    use crate::api::{LabelSelector, PodCondition};
    use crate::client::WatchEventType;

    fn pod(name: &str, ready: bool) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = name.into();
        p.metadata.namespace = "default".into();
        p.metadata.labels.insert("app".into(), "web".into());
        p.set_condition(PodCondition {
            type_: condition::READY.into(),
            status: if ready { ConditionStatus::True } else { ConditionStatus::False },
            ..Default::default()
        });
        p
    }

    fn pdb(min: Option<IntOrString>, max: Option<IntOrString>) -> PodDisruptionBudget {
        let mut b = PodDisruptionBudget::default();
        b.metadata.name = "web".into();
        b.metadata.namespace = "default".into();
        b.metadata.generation = 1;
        b.spec = PodDisruptionBudgetSpec {
            min_available: min,
            max_unavailable: max,
            selector: Some(LabelSelector {
                match_labels: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        b
    }

    // disruption_test.go TestSimpleController / TestNoSelector style: minAvailable 2 over
    // three pods, two ready.
    #[test]
    fn min_available_int_counts_ready_pods() {
        let pods = [pod("a", true), pod("b", true), pod("c", false)];
        let refs: Vec<&Pod> = pods.iter().collect();
        let b = pdb(Some(IntOrString::Int(2)), None);
        let c = compute(&Cache::default(), &b, &refs, SimTime::ZERO).unwrap();
        assert_eq!((c.expected_count, c.desired_healthy, c.current_healthy), (3, 2, 2));
        let s = next_status(&b, &c, SimTime::ZERO).unwrap();
        assert_eq!(s.disruptions_allowed, 0);
        assert_eq!(s.conditions[0].reason, INSUFFICIENT_PODS_REASON);
        assert_eq!(s.observed_generation, 1);
        let mut all_ready = pods.clone();
        all_ready[2] = pod("c", true);
        let refs: Vec<&Pod> = all_ready.iter().collect();
        let c = compute(&Cache::default(), &b, &refs, SimTime::ZERO).unwrap();
        let s = next_status(&b, &c, SimTime::ZERO).unwrap();
        assert_eq!((s.disruptions_allowed, s.conditions[0].status), (1, ConditionStatus::True));
    }

    #[test]
    fn admitted_evictions_do_not_count_until_they_time_out() {
        let pods = [pod("a", true), pod("b", true), pod("c", true)];
        let refs: Vec<&Pod> = pods.iter().collect();
        let mut b = pdb(Some(IntOrString::Int(2)), None);
        b.status.disrupted_pods.insert("a".into(), SimTime::from_secs(10));
        let c = compute(&Cache::default(), &b, &refs, SimTime::from_secs(20)).unwrap();
        assert_eq!(c.current_healthy, 2);
        assert_eq!(c.recheck, Some(SimTime::from_secs(130)));
        let c = compute(&Cache::default(), &b, &refs, SimTime::from_secs(131)).unwrap();
        assert_eq!(c.current_healthy, 3, "forgotten after DeletionTimeout");
        assert!(c.disrupted_pods.is_empty());
    }

    #[test]
    fn max_unavailable_uses_the_controllers_scale() {
        let mut cache = Cache::default();
        let mut rs = crate::api::ReplicaSet::default();
        rs.metadata.name = "web-1".into();
        rs.metadata.namespace = "default".into();
        rs.metadata.uid = "rs-uid".into();
        rs.spec.replicas = Some(4);
        cache.apply(&WatchEvent {
            type_: WatchEventType::Added,
            object: Arc::new(Object::ReplicaSet(rs.clone())),
        });
        let mut pods: Vec<Pod> = (0..3).map(|i| pod(&format!("p{i}"), true)).collect();
        for p in &mut pods {
            p.metadata.owner_references.push(super::super::controller_ref(&Object::ReplicaSet(rs.clone())));
        }
        let refs: Vec<&Pod> = pods.iter().collect();
        let b = pdb(None, Some(IntOrString::String("25%".into())));
        let c = compute(&cache, &b, &refs, SimTime::ZERO).unwrap();
        // 4 expected, 25% of 4 rounded up = 1 unavailable, 3 desired, 3 healthy: 0 allowed.
        assert_eq!((c.expected_count, c.desired_healthy, c.current_healthy), (4, 3, 3));
        assert_eq!(next_status(&b, &c, SimTime::ZERO).unwrap().disruptions_allowed, 0);
        let orphan = pod("x", true);
        let e = compute(&Cache::default(), &b, &[&orphan], SimTime::ZERO).unwrap();
        assert_eq!(e.unmanaged, vec!["x".to_string()]);
    }
}
