//! The StatefulSet controller (pkg/controller/statefulset, stateful_set_control.go):
//! pods with stable identities `<set>-<ordinal>`, created in ordinal order, each waiting
//! for its predecessor to be Running and Ready (OrderedReady; Parallel does not wait),
//! condemned pods deleted from the highest ordinal down, out-of-date pods replaced from
//! the highest ordinal down (RollingUpdate).
//!
//! Each pod gets a claim per `volumeClaimTemplates` entry, `<template>-<set>-<ordinal>`,
//! created before the pod when missing and never deleted by the controller (the Retain
//! retention policy): a replacement pod reuses its predecessor's claims, and so its
//! volumes (stateful_pod_control.go createPersistentVolumeClaims, updateStorage).
//!
//! A pod whose deletion is pending blocks its ordinal: while a pod on an unreachable node
//! stays Terminating, no replacement with its name can be created — the StatefulSet waits
//! until the object is really gone (its kubelet returns, its Node is deleted, or the node
//! is tainted out-of-service and PodGC force-deletes it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;

use super::controller_ref::Claimer;
use super::{controller_ref, Controller, Requests};
use crate::api::pod::{PersistentVolumeClaimVolumeSource, Volume};
use crate::api::{
    Kind, Object, ObjectKey, ObjectMeta, PersistentVolumeClaim, Pod, PodPhase, StatefulSet, EVENT_NORMAL,
    EVENT_WARNING,
};
use crate::client::{ApiRequest, ApiResult, Cache, EventRecorder, WatchEvent};
use crate::time::SimTime;

/// Pod labels the controller sets (apps/v1 StatefulSetPodNameLabel, PodIndexLabel,
/// ControllerRevisionHashLabelKey).
pub const LABEL_POD_NAME: &str = "statefulset.kubernetes.io/pod-name";
pub const LABEL_POD_INDEX: &str = "apps.kubernetes.io/pod-index";
pub const LABEL_REVISION: &str = "controller-revision-hash";
/// The controller's event source.
pub const COMPONENT: &str = "statefulset-controller";

pub struct StatefulSetController {
    dirty: BTreeSet<ObjectKey>,
    /// Requests in flight per set: its next sync waits for their answers.
    in_flight: BTreeMap<ObjectKey, usize>,
    /// tag -> (set, verb, pod) of each create or delete.
    routes: BTreeMap<u64, (ObjectKey, &'static str, String)>,
    next_tag: u64,
    recorder: EventRecorder,
    /// Failed requests to report: (set, verb, pod, error).
    failed: Vec<(ObjectKey, &'static str, String, String)>,
    /// getPodsForStatefulSet's ClaimPods: orphan pods to adopt, claims in flight.
    claimer: Claimer,
}

impl Default for StatefulSetController {
    fn default() -> Self {
        Self::new()
    }
}

/// The ordinal in a pod's name, if it is `<set>-<n>`.
fn ordinal(set: &str, pod: &str) -> Option<i32> {
    // getParentNameAndOrdinal's `(.*)-([0-9]+)$`: digits only after the last dash.
    let n = pod.strip_prefix(set)?.strip_prefix('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

fn is_healthy(p: &Pod) -> bool {
    p.phase() == PodPhase::Running && p.is_ready() && p.metadata.deletion_timestamp.is_none()
}

impl StatefulSetController {
    pub fn new() -> Self {
        StatefulSetController {
            dirty: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            routes: BTreeMap::new(),
            next_tag: 0,
            recorder: EventRecorder::new(COMPONENT, ""),
            failed: Vec::new(),
            claimer: Claimer::new(Kind::Pod),
        }
    }

    fn send(&mut self, out: &mut Requests, set: &ObjectKey, verb: &'static str, pod: String, r: ApiRequest) {
        self.next_tag += 1;
        self.routes.insert(self.next_tag, (set.clone(), verb, pod));
        *self.in_flight.entry(set.clone()).or_default() += 1;
        out.push(self.next_tag, r);
    }

    fn event(
        &mut self,
        out: &mut Requests,
        set: &Object,
        type_: &str,
        reason: &str,
        msg: &str,
        now: SimTime,
    ) {
        let ev = self.recorder.record(set, type_, reason, msg, now);
        self.next_tag += 1;
        out.push(self.next_tag, ev);
    }

    /// `getPersistentVolumeClaims`: the claims of ordinal `ord`, named
    /// `<template>-<set>-<ord>`, labelled with the set's selector labels.
    fn claims_for(set: &StatefulSet, ord: i32) -> Vec<PersistentVolumeClaim> {
        set.spec
            .volume_claim_templates
            .iter()
            .map(|t| {
                let mut c = t.clone();
                c.metadata.name = format!("{}-{}-{ord}", t.metadata.name, set.metadata.name);
                c.metadata.namespace = set.metadata.namespace.clone();
                for (k, v) in &set.spec.selector.match_labels {
                    c.metadata.labels.insert(k.clone(), v.clone());
                }
                c.status = Default::default();
                c.extra.clear();
                c
            })
            .collect()
    }

    /// persistentVolumeClaimRetentionPolicy whenDeleted: Delete (StatefulSetAutoDeletePVC,
    /// GA in v1.32): the claim is controlled by the set, so the garbage collector deletes
    /// it with the set (stateful_set_utils.go addControllerRef: metav1.NewControllerRef).
    fn with_retention_owner(
        obj: &Object,
        set: &StatefulSet,
        mut c: PersistentVolumeClaim,
    ) -> PersistentVolumeClaim {
        if Self::retention(set).0 {
            c.metadata.owner_references.push(super::controller_ref(obj));
        }
        c
    }

    /// The set's persistentVolumeClaimRetentionPolicy: (whenDeleted, whenScaled) is Delete.
    fn retention(set: &StatefulSet) -> (bool, bool) {
        let policy = set.spec.extra.get("persistentVolumeClaimRetentionPolicy");
        let is_delete = |k: &str| policy.and_then(|p| p.get(k)).and_then(|v| v.as_str()) == Some("Delete");
        (is_delete("whenDeleted"), is_delete("whenScaled"))
    }

    /// stateful_set_utils.go isClaimOwnerUpToDate / updateClaimOwnerRefForSetAndPod: the
    /// controller references a pod's claim must carry under the policy (whenDeleted:
    /// Delete by the set; whenScaled: Delete by a pod scaled away, so the garbage
    /// collector deletes the claim with the pod); a plain reference to either is replaced.
    /// `None` when the claim already matches.
    fn claim_for_policy(
        set_obj: &Object,
        set: &StatefulSet,
        pod: &Pod,
        in_range: bool,
        claim: &PersistentVolumeClaim,
    ) -> Option<PersistentVolumeClaim> {
        let (when_deleted, when_scaled) = Self::retention(set);
        let set_uid = set.metadata.uid.as_str();
        let pod_uid = pod.metadata.uid.as_str();
        let mut c = claim.clone();
        let refs = &mut c.metadata.owner_references;
        let has = |refs: &Vec<crate::api::OwnerReference>, uid: &str| {
            refs.iter().any(|r| r.uid == uid && r.controller == Some(true))
        };
        let mut changed = false;
        let mut remove = |refs: &mut Vec<crate::api::OwnerReference>, uid: &str| {
            let before = refs.len();
            refs.retain(|r| r.uid != uid);
            changed |= refs.len() != before;
        };
        let (want_set, want_pod) = match (when_scaled, when_deleted) {
            (false, false) => (false, false),
            (false, true) => (true, false),
            (true, false) => (false, !in_range),
            (true, true) => (in_range, !in_range),
        };
        if !want_set || !has(refs, set_uid) {
            remove(refs, set_uid);
        }
        if !want_pod || !has(refs, pod_uid) {
            remove(refs, pod_uid);
        }
        if want_set && !has(refs, set_uid) {
            refs.push(super::controller_ref(set_obj));
            changed = true;
        }
        if want_pod && !has(refs, pod_uid) && !pod_uid.is_empty() {
            // metav1.NewControllerRef(pod, v1 Pod).
            refs.push(crate::api::OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: pod.metadata.name.clone(),
                uid: pod_uid.to_string(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            });
            changed = true;
        }
        changed.then_some(c)
    }

    /// ClaimsMatchRetentionPolicy / UpdatePodClaimForRetentionPolicy for one pod: updates
    /// of its existing claims whose owner references do not match the policy.
    fn claim_updates(
        set_obj: &Object,
        set: &StatefulSet,
        pod: &Pod,
        ord: i32,
        in_range: bool,
        cache: &Cache,
    ) -> Vec<PersistentVolumeClaim> {
        Self::claims_for(set, ord)
            .iter()
            .filter_map(|c| {
                let k = ObjectKey::new(
                    Kind::PersistentVolumeClaim,
                    c.metadata.namespace.clone(),
                    c.metadata.name.clone(),
                );
                let existing = cache.get(&k)?.as_persistent_volume_claim()?.clone();
                if existing.metadata.deletion_timestamp.is_some() {
                    return None;
                }
                Self::claim_for_policy(set_obj, set, pod, in_range, &existing)
            })
            .collect()
    }

    /// `newVersionedStatefulSetPod`: the identity, labels and revision of ordinal `ord`.
    fn new_pod(obj: &Object, set: &StatefulSet, ord: i32, revision: &str) -> Pod {
        let name = format!("{}-{ord}", set.metadata.name);
        let mut labels = set.spec.template.metadata.labels.clone();
        labels.insert(LABEL_POD_NAME.into(), name.clone());
        labels.insert(LABEL_POD_INDEX.into(), ord.to_string());
        labels.insert(LABEL_REVISION.into(), revision.to_string());
        let mut spec = set.spec.template.spec.clone();
        {
            let s = Arc::make_mut(&mut spec);
            s.hostname = name.clone();
            s.subdomain = set.spec.service_name.clone();
            // updateStorage: each template's claim replaces a volume of its name.
            for c in Self::claims_for(set, ord) {
                let template =
                    c.metadata.name.strip_suffix(&format!("-{name}")).unwrap_or_default().to_string();
                let v = Volume {
                    name: template.clone(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: c.metadata.name.clone(),
                        read_only: false,
                    }),
                    ..Default::default()
                };
                match s.volumes.iter_mut().find(|x| x.name == template) {
                    Some(x) => *x = v,
                    None => s.volumes.push(v),
                }
            }
        }
        Pod {
            metadata: ObjectMeta {
                name,
                namespace: set.metadata.namespace.clone(),
                labels,
                annotations: set.spec.template.metadata.annotations.clone(),
                owner_references: vec![controller_ref(obj)],
                ..Default::default()
            },
            spec,
            ..Default::default()
        }
    }

    fn sync(&mut self, key: &ObjectKey, cache: &Cache, now: SimTime, out: &mut Requests) {
        if self.in_flight.get(key).is_some_and(|n| *n > 0) {
            return;
        }
        let Some(obj) = cache.get(key).cloned() else { return };
        let Some(set) = obj.as_stateful_set() else { return };
        if set.metadata.deletion_timestamp.is_some() {
            return;
        }
        let name = set.metadata.name.clone();
        let revision = format!("{name}-{}", super::deployment::pod_template_hash(&set.spec.template, 0));
        // getPodsForStatefulSet: ClaimPods with isMemberOf (the name is `<set>-<ordinal>`)
        // as part of the match: a pod of another name is never adopted, and released if
        // this set controls it.
        let member = |o: &Object| ordinal(&name, &o.meta().name).is_some();
        let (claimed, patches) = self.claimer.claim_all(&obj, &set.spec.selector, cache, member);
        self.claimer.send(patches, key, &mut self.next_tag, out);
        let pods: BTreeMap<i32, Pod> = claimed
            .iter()
            .filter_map(|o| o.as_pod())
            .filter_map(|p| ordinal(&name, &p.metadata.name).map(|o| (o, p.clone())))
            .collect();
        let start = set.spec.ordinals.as_ref().map_or(0, |o| o.start);
        let replicas = set.spec.replicas.unwrap_or(1).max(0);
        let parallel = set.spec.pod_management_policy == "Parallel";
        let mut requests: Vec<(ApiRequest, &'static str, String)> = Vec::new();
        let mut claims: Vec<(PersistentVolumeClaim, String)> = Vec::new();
        let mut blocked = false;
        for ord in start..start + replicas {
            match pods.get(&ord) {
                None => {
                    let pod = Self::new_pod(&obj, set, ord, &revision);
                    let pn = pod.metadata.name.clone();
                    // createPersistentVolumeClaims: the missing claims first; a claim
                    // being deleted blocks the pod.
                    let mut claims_ready = true;
                    for c in Self::claims_for(set, ord) {
                        let ck = ObjectKey::new(
                            Kind::PersistentVolumeClaim,
                            c.metadata.namespace.clone(),
                            c.metadata.name.clone(),
                        );
                        match cache.get(&ck) {
                            None => claims.push((Self::with_retention_owner(&obj, set, c), pn.clone())),
                            Some(o) if o.meta().deletion_timestamp.is_some() => {
                                claims_ready = false;
                                let msg = format!("pvc {} is being deleted", c.metadata.name);
                                self.failed.push((key.clone(), "create", pn.clone(), msg));
                            }
                            Some(_) => {}
                        }
                    }
                    if claims_ready {
                        requests.push((ApiRequest::Create(Object::Pod(pod)), "create", pn));
                    }
                    blocked = !parallel;
                }
                Some(p) if matches!(p.phase(), PodPhase::Failed | PodPhase::Succeeded) => {
                    if p.metadata.deletion_timestamp.is_none() {
                        requests.push((delete(p), "delete", p.metadata.name.clone()));
                    }
                    blocked = !parallel;
                }
                // Terminating, or not yet Running and Ready: wait.
                Some(p) if !is_healthy(p) => blocked = !parallel,
                Some(_) => {}
            }
            if blocked {
                break;
            }
        }
        let unhealthy = (start..start + replicas).any(|o| !pods.get(&o).is_some_and(is_healthy));
        let mut claim_updates: Vec<PersistentVolumeClaim> = Vec::new();
        let (when_deleted, when_scaled) = Self::retention(set);
        if when_deleted || when_scaled {
            // updateStatefulSet: the claims of pods in range match the policy (a pod scaled
            // back in loses its claim's pod reference).
            for (ord, p) in pods.range(start..start + replicas) {
                claim_updates.extend(Self::claim_updates(&obj, set, p, *ord, true, cache));
            }
        }
        if requests.is_empty() && (!unhealthy || parallel) {
            // Condemned pods, highest ordinal first, one at a time (all at once: Parallel).
            for (ord, p) in pods.iter().rev() {
                if *ord >= start && *ord < start + replicas {
                    continue;
                }
                if p.metadata.deletion_timestamp.is_some() {
                    if !parallel {
                        break;
                    }
                    continue;
                }
                // processCondemned: the condemned pod's claims take the policy's owner
                // references first; the pod is deleted once they hold (a failed update
                // retries the sync, the pod stays).
                let fixes = Self::claim_updates(&obj, set, p, *ord, false, cache);
                if fixes.is_empty() {
                    requests.push((delete(p), "delete", p.metadata.name.clone()));
                } else {
                    claim_updates.extend(fixes);
                }
                if !parallel {
                    break;
                }
            }
        }
        let on_delete = set.spec.update_strategy.as_ref().is_some_and(|u| u.type_ == "OnDelete");
        if requests.is_empty() && !unhealthy && !on_delete {
            // RollingUpdate: the highest ordinal not at the update revision.
            // Ordinals below the partition keep their revision.
            let partition = set
                .spec
                .update_strategy
                .as_ref()
                .and_then(|u| u.rolling_update.as_ref())
                .and_then(|r| r.partition)
                .unwrap_or(0);
            let stale = pods
                .iter()
                .rev()
                .filter(|(o, _)| **o >= start.max(partition) && **o < start + replicas)
                .find(|(_, p)| p.metadata.labels.get(LABEL_REVISION) != Some(&revision));
            if let Some((_, p)) = stale {
                requests.push((delete(p), "delete", p.metadata.name.clone()));
            }
        }
        for c in claim_updates {
            let cn = c.metadata.name.clone();
            self.send(out, key, "update claim", cn, ApiRequest::Update(Object::PersistentVolumeClaim(c)));
        }
        for (c, pod) in claims {
            // stateful_pod_control.go recordClaimEvent.
            let msg = format!("create Claim {} Pod {pod} in StatefulSet {name} success", c.metadata.name);
            self.event(out, &obj, EVENT_NORMAL, "SuccessfulCreate", &msg, now);
            let cn = c.metadata.name.clone();
            self.send(out, key, "create claim", cn, ApiRequest::Create(Object::PersistentVolumeClaim(c)));
        }
        for (r, verb, pod) in requests {
            // stateful_pod_control.go recordPodEvent.
            let msg = format!("{verb} Pod {pod} in StatefulSet {name} successful");
            let reason = if verb == "create" { "SuccessfulCreate" } else { "SuccessfulDelete" };
            self.event(out, &obj, EVENT_NORMAL, reason, &msg, now);
            self.send(out, key, verb, pod, r);
        }
        self.update_status(&obj, set, &pods, &revision, out);
    }

    fn update_status(
        &mut self,
        obj: &Object,
        set: &StatefulSet,
        pods: &BTreeMap<i32, Pod>,
        revision: &str,
        out: &mut Requests,
    ) {
        let mut s = set.status.clone();
        let live = || pods.values().filter(|p| p.metadata.deletion_timestamp.is_none());
        s.replicas = pods.len() as i32;
        s.ready_replicas = pods.values().filter(|p| p.is_ready()).count() as i32;
        s.available_replicas = s.ready_replicas;
        s.updated_replicas = live()
            .filter(|p| p.metadata.labels.get(LABEL_REVISION).map(String::as_str) == Some(revision))
            .count() as i32;
        s.update_revision = revision.to_string();
        let replicas = set.spec.replicas.unwrap_or(1);
        if s.current_revision.is_empty()
            || (s.updated_replicas == replicas && s.ready_replicas == replicas && s.replicas == replicas)
        {
            // completeRollingUpdate: the update revision becomes current.
            s.current_revision = revision.to_string();
        }
        s.current_replicas = live()
            .filter(|p| {
                p.metadata.labels.get(LABEL_REVISION).map(String::as_str) == Some(s.current_revision.as_str())
            })
            .count() as i32;
        s.observed_generation = set.metadata.generation;
        if s != set.status {
            let mut n = set.clone();
            n.status = s;
            n.metadata.resource_version = 0;
            self.next_tag += 1;
            out.push(self.next_tag, ApiRequest::UpdateStatus(Object::StatefulSet(n)));
        }
        let _ = obj;
    }
}

fn delete(p: &Pod) -> ApiRequest {
    ApiRequest::Delete {
        key: ObjectKey::new(Kind::Pod, p.metadata.namespace.clone(), p.metadata.name.clone()),
        grace_period_seconds: None,
        precondition_uid: Some(p.metadata.uid.clone()),
    }
}

impl Controller for StatefulSetController {
    fn on_event(&mut self, ev: &WatchEvent, cache: &Cache) {
        match ev.object.kind() {
            Kind::StatefulSet => {
                self.dirty.insert(ev.object.key());
            }
            Kind::Pod => {
                // An orphan: the StatefulSets whose selector matches it may adopt it.
                let selector = |o: &Object| o.as_stateful_set().map(|s| s.spec.selector.clone());
                self.dirty.extend(self.claimer.observe(ev, cache, Kind::StatefulSet, selector));
                let Some(owner) = ev.object.meta().controller_of() else { return };
                if owner.kind != "StatefulSet" {
                    return;
                }
                let key =
                    ObjectKey::new(Kind::StatefulSet, ev.object.meta().namespace.clone(), owner.name.clone());
                if cache.get(&key).is_some() {
                    self.dirty.insert(key);
                }
            }
            _ => {}
        }
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, _cache: &Cache, _now: SimTime) {
        if let Some(owner) = self.claimer.on_response(tag, result) {
            self.dirty.insert(owner);
            return;
        }
        let Some((set, verb, pod)) = self.routes.remove(&tag) else { return };
        if let Some(n) = self.in_flight.get_mut(&set) {
            *n -= 1;
            if *n == 0 {
                self.in_flight.remove(&set);
            }
        }
        if let Err(e) = result {
            if !e.is_already_exists() && !e.is_not_found() {
                self.failed.push((set.clone(), verb, pod, e.message.clone()));
            }
        }
        self.dirty.insert(set);
    }

    fn reconcile(&mut self, cache: &Cache, now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        for (set, verb, pod, error) in std::mem::take(&mut self.failed) {
            // UpdatePodClaimForRetentionPolicy records no event: the sync is retried.
            if verb == "update claim" {
                continue;
            }
            if let Some(obj) = cache.get(&set).cloned() {
                // stateful_pod_control.go recordPodEvent on failure.
                let reason = if verb == "delete" { "FailedDelete" } else { "FailedCreate" };
                let msg = if verb == "create claim" {
                    format!("create Claim {pod} in StatefulSet {} failed error: {error}", set.name)
                } else {
                    format!("{verb} Pod {pod} in StatefulSet {} failed error: {error}", set.name)
                };
                self.event(out, &obj, EVENT_WARNING, reason, &msg, now);
            }
        }
        for key in std::mem::take(&mut self.dirty) {
            self.sync(&key, cache, now, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // stateful_set_utils_test.go TestUpdateClaimOwnerRefForSetAndPod: which owners a claim
    // keeps for each (whenScaled, whenDeleted) and whether its pod is scaled away.
    #[test]
    fn claim_owner_refs_follow_the_retention_policy() {
        let set_yaml = |scaled: &str, deleted: &str| {
            format!(
                "metadata: {{name: s, namespace: default, uid: set-uid}}\nspec: {{selector: {{matchLabels: {{a: b}}}}, \
                 template: {{metadata: {{labels: {{a: b}}}}, spec: {{containers: [{{name: c}}]}}}}, \
                 persistentVolumeClaimRetentionPolicy: {{whenScaled: {scaled}, whenDeleted: {deleted}}}}}"
            )
        };
        let pod: Pod =
            serde_yaml::from_str("metadata: {name: s-1, namespace: default, uid: pod-uid}").unwrap();
        let claim = PersistentVolumeClaim::default();
        let owners = |scaled: &str, deleted: &str, in_range: bool| -> Vec<String> {
            let set: StatefulSet = serde_yaml::from_str(&set_yaml(scaled, deleted)).unwrap();
            let obj = Object::StatefulSet(set.clone());
            let c = StatefulSetController::claim_for_policy(&obj, &set, &pod, in_range, &claim)
                .unwrap_or_else(|| claim.clone());
            c.metadata.owner_references.iter().map(|r| r.kind.clone()).collect()
        };
        assert!(owners("Retain", "Retain", false).is_empty());
        assert_eq!(owners("Retain", "Delete", false), ["StatefulSet"]);
        assert_eq!(owners("Delete", "Retain", false), ["Pod"]);
        assert!(owners("Delete", "Retain", true).is_empty());
        assert_eq!(owners("Delete", "Delete", false), ["Pod"]);
        assert_eq!(owners("Delete", "Delete", true), ["StatefulSet"]);
    }

    #[test]
    fn ordinals_parse_from_names() {
        assert_eq!(ordinal("db", "db-0"), Some(0));
        assert_eq!(ordinal("db", "db-12"), Some(12));
        assert_eq!(ordinal("db", "db-x"), None);
        assert_eq!(ordinal("db", "dbx-1"), None);
    }
}
