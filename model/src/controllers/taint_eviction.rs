//! The taint eviction controller (pkg/controller/tainteviction/taint_eviction.go, v1.33;
//! the NoExecute taint manager of older releases): pods on a node with NoExecute taints
//! they do not tolerate are deleted, at once or after the smallest `tolerationSeconds` of
//! the tolerations that matched; an eviction is cancelled when the taints go away first.
//!
//! The toleration time starts when the controller processes the node (or pod) update, not
//! at the taint's `timeAdded`, as upstream does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use super::{Controller, Requests};
use crate::api::pod::condition as pc;
use crate::api::{
    ConditionStatus, Kind, Object, ObjectKey, PodCondition, Taint, TaintEffect, Toleration, EVENT_NORMAL,
};
use crate::client::{ApiRequest, Cache, EventRecorder, Patch, WatchEvent, WatchEventType};
use crate::time::SimTime;

/// The controller's name and event source.
pub const COMPONENT: &str = "taint-eviction-controller";
pub const REASON_EVICTION: &str = "TaintManagerEviction";
/// The DisruptionTarget condition set before the delete.
pub const REASON_DELETION_BY_TAINT_MANAGER: &str = "DeletionByTaintManager";
pub const MESSAGE_DELETION_BY_TAINT_MANAGER: &str = "Taint manager: deleting due to NoExecute taint";

type PodName = (String, String);

/// One scheduled eviction (`TimedWorker`).
#[derive(Clone, Debug)]
struct Work {
    created_at: SimTime,
    fire_at: SimTime,
}

pub struct TaintEvictionController {
    /// NoExecute taints per node (`taintedNodes`).
    tainted: BTreeMap<String, Vec<Taint>>,
    /// What each pod's last processing saw: (node, tolerations).
    pods: BTreeMap<PodName, (String, Vec<Toleration>)>,
    work: BTreeMap<PodName, Work>,
    timers: BTreeSet<(SimTime, PodName)>,
    dirty_nodes: BTreeSet<String>,
    dirty_pods: BTreeSet<PodName>,
    recorder: EventRecorder,
    next_tag: u64,
}

impl Default for TaintEvictionController {
    fn default() -> Self {
        Self::new()
    }
}

/// `v1helper.GetMatchingTolerations`: for each taint, the first toleration (in pod-spec
/// order) that tolerates it; `None` if some taint is not tolerated.
fn matching_tolerations<'a>(taints: &[Taint], tolerations: &'a [Toleration]) -> Option<Vec<&'a Toleration>> {
    taints.iter().map(|t| tolerations.iter().find(|tol| tol.tolerates(t))).collect()
}

/// `getMinTolerationTime`: `None` = tolerated forever; zero or negative = at once.
fn min_toleration_time(used: &[&Toleration]) -> Option<Duration> {
    if used.is_empty() {
        return Some(Duration::ZERO);
    }
    let mut min: Option<i64> = None;
    for t in used {
        if let Some(s) = t.toleration_seconds {
            if s <= 0 {
                return Some(Duration::ZERO);
            }
            min = Some(min.map_or(s, |m| m.min(s)));
        }
    }
    min.map(|s| Duration::from_secs(s as u64))
}

impl TaintEvictionController {
    pub fn new() -> Self {
        TaintEvictionController {
            tainted: BTreeMap::new(),
            pods: BTreeMap::new(),
            work: BTreeMap::new(),
            timers: BTreeSet::new(),
            dirty_nodes: BTreeSet::new(),
            dirty_pods: BTreeSet::new(),
            recorder: EventRecorder::new(COMPONENT, ""),
            next_tag: 0,
        }
    }

    fn push(&mut self, out: &mut Requests, r: ApiRequest) {
        self.next_tag += 1;
        out.push(self.next_tag, r);
    }

    fn event(&mut self, out: &mut Requests, pod: &PodName, msg: String, now: SimTime) {
        let obj = Object::Pod(crate::api::Pod {
            metadata: crate::api::ObjectMeta {
                namespace: pod.0.clone(),
                name: pod.1.clone(),
                ..Default::default()
            },
            ..Default::default()
        });
        let ev = self.recorder.record(&obj, EVENT_NORMAL, REASON_EVICTION, &msg, now);
        self.push(out, ev);
    }

    /// `cancelWorkWithEvent`: an event only when a timer was really pending.
    fn cancel(&mut self, pod: &PodName, now: SimTime, out: &mut Requests) {
        if let Some(w) = self.work.remove(pod) {
            self.timers.remove(&(w.fire_at, pod.clone()));
            self.event(out, pod, format!("Cancelling deletion of Pod {}/{}", pod.0, pod.1), now);
        }
    }

    fn add_work(
        &mut self,
        pod: &PodName,
        created_at: SimTime,
        fire_at: SimTime,
        cache: &Cache,
        now: SimTime,
        out: &mut Requests,
    ) {
        if self.work.contains_key(pod) {
            return;
        }
        if fire_at <= created_at {
            return self.evict(pod, cache, now, out);
        }
        self.timers.insert((fire_at, pod.clone()));
        self.work.insert(pod.clone(), Work { created_at, fire_at });
    }

    /// `processPodOnNode`.
    fn process_pod(
        &mut self,
        pod: &PodName,
        node: &str,
        tolerations: &[Toleration],
        cache: &Cache,
        now: SimTime,
        out: &mut Requests,
    ) {
        let Some(taints) = self.tainted.get(node).cloned() else {
            return self.cancel(pod, now, out);
        };
        let Some(used) = matching_tolerations(&taints, tolerations) else {
            // An untolerated NoExecute taint: evict at once.
            self.cancel(pod, now, out);
            return self.add_work(pod, now, now, cache, now, out);
        };
        let Some(min) = min_toleration_time(&used) else {
            return self.cancel(pod, now, out);
        };
        let trigger = now + min;
        let mut start = now;
        if let Some(w) = self.work.get(pod) {
            if w.created_at + min < trigger {
                // The running timer started earlier and still fires first: keep it.
                return;
            }
            start = w.created_at;
            self.cancel(pod, now, out);
        }
        self.add_work(pod, start, trigger, cache, now, out);
    }

    /// `deletePodHandler`: mark the pod a disruption target, then delete it.
    fn evict(&mut self, pod: &PodName, cache: &Cache, now: SimTime, out: &mut Requests) {
        self.work.remove(pod);
        let key = ObjectKey::new(Kind::Pod, pod.0.clone(), pod.1.clone());
        if cache.get(&key).is_none() {
            return;
        }
        self.event(out, pod, format!("Marking for deletion Pod {}/{}", pod.0, pod.1), now);
        let cond = PodCondition {
            type_: pc::DISRUPTION_TARGET.into(),
            status: ConditionStatus::True,
            last_transition_time: Some(now),
            reason: REASON_DELETION_BY_TAINT_MANAGER.into(),
            message: MESSAGE_DELETION_BY_TAINT_MANAGER.into(),
            ..Default::default()
        };
        self.push(
            out,
            ApiRequest::Patch {
                key: key.clone(),
                patch: Patch::PodStatus { conditions: vec![cond], phase: None },
            },
        );
        self.push(out, ApiRequest::Delete { key, grace_period_seconds: None, precondition_uid: None });
    }

    fn no_execute_taints(o: &Object) -> Vec<Taint> {
        o.as_node()
            .map(|n| n.spec.taints.iter().filter(|t| t.effect == TaintEffect::NoExecute).cloned().collect())
            .unwrap_or_default()
    }
}

impl Controller for TaintEvictionController {
    fn on_event(&mut self, ev: &WatchEvent, _cache: &Cache) {
        let m = ev.object.meta();
        match ev.object.kind() {
            Kind::Node => {
                let taints = if ev.type_ == WatchEventType::Deleted {
                    Vec::new()
                } else {
                    Self::no_execute_taints(&ev.object)
                };
                let before = self.tainted.get(&m.name).cloned().unwrap_or_default();
                if before != taints || ev.type_ != WatchEventType::Modified {
                    self.dirty_nodes.insert(m.name.clone());
                }
            }
            Kind::Pod => {
                let key = (m.namespace.clone(), m.name.clone());
                let now_seen = match (ev.type_, ev.object.as_pod()) {
                    (WatchEventType::Deleted, _) | (_, None) => None,
                    (_, Some(p)) => Some((p.spec.node_name.clone(), p.spec.tolerations.clone())),
                };
                if self.pods.get(&key) != now_seen.as_ref() {
                    self.dirty_pods.insert(key);
                }
            }
            _ => {}
        }
    }

    fn reconcile(&mut self, cache: &Cache, now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        // Node updates first, as upstream's workers drain them before pod updates.
        for name in std::mem::take(&mut self.dirty_nodes) {
            let node = cache.get(&ObjectKey::new(Kind::Node, "", name.clone())).cloned();
            let taints = node.as_deref().map(Self::no_execute_taints).unwrap_or_default();
            let pods: Vec<Arc<Object>> = cache.pods_on_node(&name).cloned().collect();
            if taints.is_empty() {
                self.tainted.remove(&name);
                for o in &pods {
                    let m = o.meta();
                    self.cancel(&(m.namespace.clone(), m.name.clone()), now, out);
                }
                continue;
            }
            self.tainted.insert(name.clone(), taints);
            for o in pods {
                let Some(p) = o.as_pod() else { continue };
                let key = (p.metadata.namespace.clone(), p.metadata.name.clone());
                self.pods.insert(key.clone(), (name.clone(), p.spec.tolerations.clone()));
                self.process_pod(&key, &name, &p.spec.tolerations, cache, now, out);
            }
        }
        for key in std::mem::take(&mut self.dirty_pods) {
            let o = cache.get(&ObjectKey::new(Kind::Pod, key.0.clone(), key.1.clone())).cloned();
            let Some(p) = o.as_deref().and_then(|o| o.as_pod()) else {
                self.pods.remove(&key);
                self.cancel(&key, now, out);
                continue;
            };
            let node = p.spec.node_name.clone();
            self.pods.insert(key.clone(), (node.clone(), p.spec.tolerations.clone()));
            if node.is_empty() || !self.tainted.contains_key(&node) {
                continue;
            }
            let tolerations = p.spec.tolerations.clone();
            self.process_pod(&key, &node, &tolerations, cache, now, out);
        }
        while let Some((t, _)) = self.timers.first() {
            if *t > now {
                out.wake(*t);
                break;
            }
            let (_, pod) = self.timers.pop_first().expect("non-empty");
            self.evict(&pod, cache, now, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::TolerationOperator;

    fn tol(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: key.into(),
            operator: Some(TolerationOperator::Exists),
            effect: Some(TaintEffect::NoExecute),
            toleration_seconds: seconds,
            ..Default::default()
        }
    }

    fn unreachable() -> Taint {
        Taint {
            key: "node.kubernetes.io/unreachable".into(),
            value: String::new(),
            effect: TaintEffect::NoExecute,
            time_added: None,
        }
    }

    #[test]
    fn toleration_time_rules() {
        let taints = vec![unreachable()];
        let none: Vec<Toleration> = Vec::new();
        assert!(matching_tolerations(&taints, &none).is_none(), "untolerated");
        let forever = vec![tol("node.kubernetes.io/unreachable", None)];
        let used = matching_tolerations(&taints, &forever).unwrap();
        assert_eq!(min_toleration_time(&used), None);
        let zero = vec![tol("node.kubernetes.io/unreachable", Some(0))];
        assert_eq!(min_toleration_time(&matching_tolerations(&taints, &zero).unwrap()), Some(Duration::ZERO));
        let negative = vec![tol("node.kubernetes.io/unreachable", Some(-5))];
        assert_eq!(
            min_toleration_time(&matching_tolerations(&taints, &negative).unwrap()),
            Some(Duration::ZERO)
        );
        // The first matching toleration counts, not the smallest.
        let two = vec![tol("node.kubernetes.io/unreachable", Some(300)), tol("", Some(30))];
        assert_eq!(
            min_toleration_time(&matching_tolerations(&taints, &two).unwrap()),
            Some(Duration::from_secs(300))
        );
    }
}
