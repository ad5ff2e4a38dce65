//! The Deployment controller (pkg/controller/deployment): one ReplicaSet per pod template
//! (named `<deployment>-<pod-template-hash>`), scaled by the RollingUpdate arithmetic
//! (maxSurge rounds up, maxUnavailable rounds down; both 0 -> maxUnavailable 1) or by
//! Recreate; revision annotations, status and conditions.
//!
//! ReplicaSets are claimed as ClaimReplicaSets does: an orphan ReplicaSet the selector
//! matches is adopted (a Deployment deleted with `--cascade=orphan` and created again
//! takes its ReplicaSets back), one that stops matching is released. A paused
//! Deployment, and a replica change in the middle of a rollout, scale the active
//! ReplicaSets proportionally (sync.go scale).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;

use super::controller_ref::Claimer;
use super::{controller_ref, Controller, Requests};
use crate::api::workloads::{DeploymentStrategyType, WorkloadCondition};
use crate::api::{
    ConditionStatus, Deployment, IntOrString, Kind, Object, ObjectKey, ObjectMeta, ReplicaSet, EVENT_NORMAL,
};
use crate::client::{ApiRequest, ApiResult, Cache, EventRecorder, WatchEvent};
use crate::time::SimTime;

pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// deployment_util.go RevisionHistoryAnnotation: the revisions a rolled-back-to
/// ReplicaSet had before.
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// deployment_util.go revHistoryLimitInChars.
const REV_HISTORY_LIMIT_IN_CHARS: usize = 2000;
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// deployment/util/deployment_util.go condition reasons.
pub const REASON_NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const REASON_FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const REASON_RS_UPDATED: &str = "ReplicaSetUpdated";
pub const REASON_NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const REASON_TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const REASON_PAUSED: &str = "DeploymentPaused";
pub const REASON_RESUMED: &str = "DeploymentResumed";
const PROGRESSING: &str = "Progressing";
/// apimachinery util/rand SafeEncodeString's alphabet.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `controller.ComputeHash`. Upstream hashes a Go spew dump of the template with FNV-32a,
/// which cannot be reproduced outside Go; kubesim hashes the template's JSON with FNV-32a
/// (and the collision count), then encodes it as SafeEncodeString does. Names therefore
/// look like upstream's but differ in value.
pub fn pod_template_hash(template: &crate::api::PodTemplateSpec, collision_count: i32) -> String {
    let json = serde_json::to_vec(template).expect("templates serialize");
    let mut h: u32 = 0x811c_9dc5;
    for b in json.iter().chain(collision_count.to_le_bytes().iter()) {
        h ^= *b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string().bytes().map(|b| SAFE_ALPHABET[b as usize % SAFE_ALPHABET.len()] as char).collect()
}

/// `deploymentutil.ResolveFenceposts`: (maxSurge, maxUnavailable) in pods.
pub fn resolve_fenceposts(surge: &IntOrString, unavailable: &IntOrString, desired: i32) -> (i32, i32) {
    let s = surge.scaled_value(desired, true).unwrap_or(0);
    let u = unavailable.scaled_value(desired, false).unwrap_or(0);
    if s == 0 && u == 0 {
        (0, 1)
    } else {
        (s, u)
    }
}

fn template_equal(a: &crate::api::PodTemplateSpec, b: &crate::api::PodTemplateSpec) -> bool {
    let strip = |t: &crate::api::PodTemplateSpec| {
        let mut t = t.clone();
        t.metadata.labels.remove(POD_TEMPLATE_HASH_LABEL);
        t
    };
    strip(a) == strip(b)
}

pub struct DeploymentController {
    dirty: BTreeSet<ObjectKey>,
    recorder: EventRecorder,
    next_tag: u64,
    /// Deployments with a write in flight: wait for it before deciding again.
    in_flight: BTreeMap<u64, ObjectKey>,
    /// requeueStuckDeployment: Deployments to look at again for a progress check.
    requeue: BTreeMap<ObjectKey, SimTime>,
    /// Orphan ReplicaSets to adopt, adoptions and releases in flight.
    claimer: Claimer,
}

impl Default for DeploymentController {
    fn default() -> Self {
        Self::new()
    }
}

impl DeploymentController {
    pub fn new() -> Self {
        DeploymentController {
            dirty: BTreeSet::new(),
            recorder: EventRecorder::new("deployment-controller", ""),
            next_tag: 0,
            in_flight: BTreeMap::new(),
            requeue: BTreeMap::new(),
            claimer: Claimer::new(Kind::ReplicaSet),
        }
    }

    fn send(&mut self, out: &mut Requests, key: &ObjectKey, r: ApiRequest) {
        self.next_tag += 1;
        self.in_flight.insert(self.next_tag, key.clone());
        out.push(self.next_tag, r);
    }

    fn event(&mut self, out: &mut Requests, obj: &Object, reason: &str, msg: &str, now: SimTime) {
        let r = self.recorder.record(obj, EVENT_NORMAL, reason, msg, now);
        self.next_tag += 1;
        out.push(self.next_tag, r);
    }

    #[allow(clippy::too_many_arguments)]
    fn scale(
        &mut self,
        out: &mut Requests,
        d_obj: &Object,
        d: &Deployment,
        rs: &ReplicaSet,
        to: i32,
        max_surge: i32,
        now: SimTime,
    ) {
        let from = rs.spec.replicas.unwrap_or(0);
        // scaleReplicaSetAndRecordEvent: nothing when the size is right; the direction
        // from the sizes.
        if from == to {
            return;
        }
        let dir = if to > from { "up" } else { "down" };
        self.scale_as(out, d_obj, d, rs, to, max_surge, dir, now);
    }

    /// scaleReplicaSet: the update and its event, worded with the operation given.
    #[allow(clippy::too_many_arguments)]
    fn scale_as(
        &mut self,
        out: &mut Requests,
        d_obj: &Object,
        d: &Deployment,
        rs: &ReplicaSet,
        to: i32,
        max_surge: i32,
        dir: &str,
        now: SimTime,
    ) {
        let from = rs.spec.replicas.unwrap_or(0);
        let desired = d.spec.replicas.unwrap_or(1);
        let (want_desired, want_max) = (desired.to_string(), (desired + max_surge).to_string());
        let a = &rs.metadata.annotations;
        // ReplicasAnnotationsNeedUpdate: the annotations are written even when the size
        // stays, so a scaling event is not seen again.
        let stale = a.get(DESIRED_REPLICAS_ANNOTATION) != Some(&want_desired)
            || a.get(MAX_REPLICAS_ANNOTATION) != Some(&want_max);
        if from == to && !stale {
            return;
        }
        let mut n = rs.clone();
        n.spec.replicas = Some(to);
        n.metadata.annotations.insert(DESIRED_REPLICAS_ANNOTATION.into(), want_desired);
        n.metadata.annotations.insert(MAX_REPLICAS_ANNOTATION.into(), want_max);
        let key = d_obj.key();
        self.send(out, &key, ApiRequest::Update(Object::ReplicaSet(n)));
        if from != to {
            // sync.go scaleReplicaSet: "Scaled up replica set %s from %d to %d".
            let msg = format!("Scaled {dir} replica set {} from {from} to {to}", rs.metadata.name);
            self.event(out, d_obj, "ScalingReplicaSet", &msg, now);
        }
    }

    fn sync(&mut self, key: &ObjectKey, cache: &Cache, now: SimTime, out: &mut Requests) {
        if self.in_flight.values().any(|k| k == key) {
            return;
        }
        let Some(d_obj) = cache.get(key).cloned() else { return };
        let Some(d) = d_obj.as_deployment() else { return };
        if d.metadata.deletion_timestamp.is_some() {
            return;
        }
        // checkPausedConditions: a paused Deployment's Progressing condition is Unknown
        // (DeploymentPaused) unless it already timed out; resuming starts the deadline over.
        if has_progress_deadline(d) {
            let cond = d.status.conditions.iter().find(|c| c.type_ == PROGRESSING);
            let timed_out = cond.is_some_and(|c| c.reason == REASON_TIMED_OUT);
            let paused_cond = cond.is_some_and(|c| c.reason == REASON_PAUSED);
            let change = if timed_out {
                None
            } else if d.spec.paused && !paused_cond {
                Some((REASON_PAUSED, "Deployment is paused"))
            } else if !d.spec.paused && paused_cond {
                Some((REASON_RESUMED, "Deployment is resumed"))
            } else {
                None
            };
            if let Some((reason, msg)) = change {
                let mut n = d.clone();
                set_condition(
                    &mut n.status.conditions,
                    PROGRESSING,
                    ConditionStatus::Unknown,
                    reason,
                    msg,
                    now,
                );
                n.metadata.resource_version = 0;
                self.send(out, key, ApiRequest::UpdateStatus(Object::Deployment(n)));
                return;
            }
        }
        let owned = self.claim_replica_sets(key, &d_obj, d, cache, out);
        let rss: Vec<&ReplicaSet> = owned.iter().filter_map(|o| o.as_replica_set()).collect();
        let new_rs = rss.iter().find(|rs| template_equal(&rs.spec.template, &d.spec.template)).copied();
        let olds: Vec<&ReplicaSet> = rss
            .iter()
            .filter(|rs| Some(rs.metadata.uid.as_str()) != new_rs.map(|n| n.metadata.uid.as_str()))
            .copied()
            .collect();
        let desired = d.spec.replicas.unwrap_or(1);
        let strategy = d.spec.strategy.as_ref();
        let recreate = strategy.and_then(|s| s.type_) == Some(DeploymentStrategyType::Recreate);
        let ru = strategy.and_then(|s| s.rolling_update.clone()).unwrap_or_default();
        let pct = || IntOrString::String("25%".into());
        let (max_surge, max_unavailable) = if recreate {
            (0, 0)
        } else {
            resolve_fenceposts(
                &ru.max_surge.unwrap_or_else(pct),
                &ru.max_unavailable.unwrap_or_else(pct),
                desired,
            )
        };
        // syncDeployment: a paused Deployment, or a replica change (isScalingEvent: an
        // active ReplicaSet's desired-replicas annotation differs from spec.replicas),
        // goes through sync: proportional scaling, no new ReplicaSet, no rollout; a
        // paused one is cleaned up; then the status (without progress estimation while
        // paused).
        let scaling_event = rss.iter().any(|r| {
            r.spec.replicas.unwrap_or(0) > 0
                && r.metadata
                    .annotations
                    .get(DESIRED_REPLICAS_ANNOTATION)
                    .and_then(|v| v.parse::<i32>().ok())
                    .is_some_and(|v| v != desired)
        });
        if d.spec.paused || scaling_event {
            let surge = if recreate { 0 } else { max_surge };
            self.proportional_scale(out, &d_obj, d, new_rs, &olds, surge, now);
            if d.spec.paused {
                self.cleanup(key, d, &olds, out);
            }
            // sync: syncDeploymentStatus, with or without a new ReplicaSet, no progress.
            self.status(&d_obj, d, new_rs, &rss, false, now, out);
            return;
        }
        let Some(new_rs) = new_rs else {
            // Create the new ReplicaSet (sync.go getNewReplicaSet).
            let hash = pod_template_hash(&d.spec.template, d.status.collision_count.unwrap_or(0));
            let revision = rss
                .iter()
                .filter_map(|rs| {
                    rs.metadata.annotations.get(REVISION_ANNOTATION).and_then(|r| r.parse::<i64>().ok())
                })
                .max()
                .unwrap_or(0)
                + 1;
            let old_total: i32 = olds.iter().map(|r| r.spec.replicas.unwrap_or(0)).sum();
            let replicas = if recreate && old_total > 0 {
                0
            } else if old_total == 0 {
                desired
            } else {
                (desired + max_surge - old_total).clamp(0, desired)
            };
            let mut template = d.spec.template.clone();
            template.metadata.labels.insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
            let mut selector = d.spec.selector.clone();
            selector.match_labels.insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
            let mut labels = template.metadata.labels.clone();
            labels.insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
            let name = format!("{}-{hash}", d.metadata.name);
            let annotations = [
                (REVISION_ANNOTATION.to_string(), revision.to_string()),
                (DESIRED_REPLICAS_ANNOTATION.to_string(), desired.to_string()),
                (MAX_REPLICAS_ANNOTATION.to_string(), (desired + max_surge).to_string()),
            ]
            .into_iter()
            .collect();
            let rs = ReplicaSet {
                metadata: ObjectMeta {
                    name: name.clone(),
                    namespace: d.metadata.namespace.clone(),
                    labels,
                    annotations,
                    owner_references: vec![controller_ref(&d_obj)],
                    ..Default::default()
                },
                spec: crate::api::workloads::ReplicaSetSpec {
                    replicas: Some(replicas),
                    min_ready_seconds: d.spec.min_ready_seconds,
                    selector,
                    template,
                    extra: Default::default(),
                },
                ..Default::default()
            };
            self.send(out, key, ApiRequest::Create(Object::ReplicaSet(rs)));
            // getNewReplicaSet: with a progress deadline, the rollout's clock starts here.
            if has_progress_deadline(d) {
                let mut n = d.clone();
                let msg = format!("Created new replica set {name:?}");
                set_condition(
                    &mut n.status.conditions,
                    PROGRESSING,
                    ConditionStatus::True,
                    REASON_NEW_RS_CREATED,
                    &msg,
                    now,
                );
                n.metadata.resource_version = 0;
                self.send(out, key, ApiRequest::UpdateStatus(Object::Deployment(n)));
            }
            if replicas > 0 {
                self.event(
                    out,
                    &d_obj,
                    "ScalingReplicaSet",
                    &format!("Scaled up replica set {name} from 0 to {replicas}"),
                    now,
                );
            }
            return;
        };
        // SetNewReplicaSetAnnotations: a ReplicaSet the template matches again (a
        // rollback) takes the next revision and keeps its old one in revision-history.
        let max_old = olds
            .iter()
            .filter_map(|rs| {
                rs.metadata.annotations.get(REVISION_ANNOTATION).and_then(|r| r.parse::<i64>().ok())
            })
            .max()
            .unwrap_or(0);
        let own = new_rs.metadata.annotations.get(REVISION_ANNOTATION).and_then(|r| r.parse::<i64>().ok());
        if own.unwrap_or(0) < max_old + 1 {
            let mut n = new_rs.clone();
            let a = &mut n.metadata.annotations;
            if let Some(old) = own {
                let old = old.to_string();
                let history = a.get(REVISION_HISTORY_ANNOTATION).cloned().unwrap_or_default();
                if history.is_empty() {
                    a.insert(REVISION_HISTORY_ANNOTATION.into(), old);
                } else {
                    // The oldest entries go first when the list grows past the limit.
                    let mut list: Vec<&str> = history.split(',').collect();
                    let mut total = history.len() + old.len() + 1;
                    let mut start = 0;
                    while total > REV_HISTORY_LIMIT_IN_CHARS && start < list.len() {
                        total -= list[start].len() + 1;
                        start += 1;
                    }
                    if total <= REV_HISTORY_LIMIT_IN_CHARS {
                        list = list.split_off(start);
                        list.push(&old);
                        a.insert(REVISION_HISTORY_ANNOTATION.into(), list.join(","));
                    }
                }
            }
            a.insert(REVISION_ANNOTATION.into(), (max_old + 1).to_string());
            self.send(out, key, ApiRequest::Update(Object::ReplicaSet(n)));
            return;
        }
        let all: i32 = rss.iter().map(|r| r.spec.replicas.unwrap_or(0)).sum();
        let old_total: i32 = olds.iter().map(|r| r.spec.replicas.unwrap_or(0)).sum();
        let new_replicas = new_rs.spec.replicas.unwrap_or(0);
        if recreate {
            for old in &olds {
                self.scale(out, &d_obj, d, old, 0, 0, now);
            }
            let old_pods: i32 = olds.iter().map(|r| r.status.replicas).sum();
            if old_total == 0 && old_pods == 0 {
                self.scale(out, &d_obj, d, new_rs, desired, 0, now);
            }
        } else if old_total == 0 {
            // Plain scaling.
            self.scale(out, &d_obj, d, new_rs, desired, max_surge, now);
        } else {
            // rolling.go reconcileNewReplicaSet: NewRSNewReplicas.
            let max_total = desired + max_surge;
            if new_replicas < desired && all < max_total {
                let to = (new_replicas + max_total - all).min(desired);
                self.scale(out, &d_obj, d, new_rs, to, max_surge, now);
            } else if new_replicas > desired {
                self.scale(out, &d_obj, d, new_rs, desired, max_surge, now);
            }
            // reconcileOldReplicaSets: maxScaledDown = all - minAvailable - newRSUnavailable.
            let min_available = desired - max_unavailable;
            let new_unavailable = new_replicas - new_rs.status.available_replicas;
            let mut budget = all - min_available - new_unavailable;
            let mut olds_sorted = olds.clone();
            olds_sorted.sort_by_key(|r| (r.metadata.creation_timestamp, r.metadata.name.clone()));
            for old in olds_sorted {
                if budget <= 0 {
                    break;
                }
                let have = old.spec.replicas.unwrap_or(0);
                if have == 0 {
                    continue;
                }
                let down = have.min(budget);
                budget -= down;
                self.scale(out, &d_obj, d, old, have - down, max_surge, now);
            }
        }
        if deployment_complete(d, &d.status) {
            self.cleanup(key, d, &olds, out);
        }
        self.status(&d_obj, d, Some(new_rs), &rss, !d.spec.paused, now, out);
    }

    /// getReplicaSetsForDeployment's ClaimReplicaSets: the ReplicaSets this Deployment
    /// controls and its selector matches, adopted orphans included (their adoption
    /// patches are sent here); the ones it controls that no longer match are released.
    fn claim_replica_sets(
        &mut self,
        key: &ObjectKey,
        d_obj: &Object,
        d: &Deployment,
        cache: &Cache,
        out: &mut Requests,
    ) -> Vec<Arc<Object>> {
        let (owned, patches) = self.claimer.claim_all(d_obj, &d.spec.selector, cache, |_| true);
        for r in patches {
            self.send(out, key, r);
        }
        owned
    }

    /// sync.go scale: one active (or else the newest) ReplicaSet takes all the replicas;
    /// a saturated new ReplicaSet scales the old ones to zero; otherwise, for a rolling
    /// update, the replicas to add or remove are shared among the active ReplicaSets in
    /// proportion to their size (GetReplicaSetProportion), leftovers to the first.
    #[allow(clippy::too_many_arguments)]
    fn proportional_scale(
        &mut self,
        out: &mut Requests,
        d_obj: &Object,
        d: &Deployment,
        new_rs: Option<&ReplicaSet>,
        olds: &[&ReplicaSet],
        max_surge: i32,
        now: SimTime,
    ) {
        let desired = d.spec.replicas.unwrap_or(1);
        let replicas = |r: &ReplicaSet| r.spec.replicas.unwrap_or(0);
        // ReplicaSetsByCreationTimestamp: older first, then by name.
        let age = |r: &ReplicaSet| (r.metadata.creation_timestamp, r.metadata.name.clone());
        let mut newest_first: Vec<&ReplicaSet> = olds.to_vec();
        newest_first.sort_by_key(|r| std::cmp::Reverse(age(r)));
        let active: Vec<&ReplicaSet> =
            newest_first.iter().copied().chain(new_rs).filter(|r| replicas(r) > 0).collect();
        // FindActiveOrLatest.
        let single = match active.len() {
            0 => new_rs.or(newest_first.first().copied()),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(rs) = single {
            self.scale(out, d_obj, d, rs, desired, max_surge, now);
            return;
        }
        // IsSaturated: the new ReplicaSet has all the replicas, all available.
        if let Some(n) = new_rs {
            let annotated =
                n.metadata.annotations.get(DESIRED_REPLICAS_ANNOTATION).and_then(|v| v.parse::<i32>().ok());
            if replicas(n) == desired && annotated == Some(desired) && n.status.available_replicas == desired
            {
                for old in olds.iter().filter(|r| replicas(r) > 0) {
                    self.scale(out, d_obj, d, old, 0, max_surge, now);
                }
                return;
            }
        }
        let rolling =
            d.spec.strategy.as_ref().and_then(|s| s.type_) != Some(DeploymentStrategyType::Recreate);
        if !rolling {
            return;
        }
        let mut all = active;
        if all.is_empty() {
            return;
        }
        let total: i32 = all.iter().map(|r| replicas(r)).sum();
        let allowed = if desired > 0 { desired + max_surge } else { 0 };
        let to_add = allowed - total;
        // ReplicaSetsBySizeNewer (scaling up) / ReplicaSetsBySizeOlder (down): larger
        // first; among equals newer first when scaling up, older first when down.
        let dir = match to_add.cmp(&0) {
            std::cmp::Ordering::Greater => {
                all.sort_by(|a, b| replicas(b).cmp(&replicas(a)).then_with(|| age(b).cmp(&age(a))));
                "up"
            }
            std::cmp::Ordering::Less => {
                all.sort_by(|a, b| replicas(b).cmp(&replicas(a)).then_with(|| age(a).cmp(&age(b))));
                "down"
            }
            // scaleReplicaSet's message says "down" unless the operation is "up".
            std::cmp::Ordering::Equal => "down",
        };
        let mut added = 0;
        let mut sizes: Vec<i32> = Vec::with_capacity(all.len());
        for r in &all {
            if to_add != 0 {
                let p = replica_set_proportion(r, d, max_surge, to_add, added);
                sizes.push(replicas(r) + p);
                added += p;
            } else {
                sizes.push(replicas(r));
            }
        }
        if to_add != 0 {
            sizes[0] = (sizes[0] + to_add - added).max(0);
        }
        for (r, to) in all.into_iter().zip(sizes) {
            self.scale_as(out, d_obj, d, r, to, max_surge, dir, now);
        }
    }

    /// syncDeploymentStatus (calculateStatus), and with `with_progress` the rollout's
    /// Progressing condition as syncRolloutStatus adds it. Without a new ReplicaSet (a
    /// paused Deployment whose template changed) nothing is updated.
    #[allow(clippy::too_many_arguments)]
    fn status(
        &mut self,
        d_obj: &Object,
        d: &Deployment,
        new_rs: Option<&ReplicaSet>,
        rss: &[&ReplicaSet],
        with_progress: bool,
        now: SimTime,
        out: &mut Requests,
    ) {
        let desired = d.spec.replicas.unwrap_or(1);
        let mut s = d.status.clone();
        s.observed_generation = d.metadata.generation;
        s.replicas = rss.iter().map(|r| r.status.replicas).sum();
        s.updated_replicas = new_rs.map_or(0, |r| r.status.replicas);
        s.ready_replicas = rss.iter().map(|r| r.status.ready_replicas).sum();
        s.available_replicas = rss.iter().map(|r| r.status.available_replicas).sum();
        // calculateStatus: total (spec) replicas minus available.
        let total: i32 = rss.iter().map(|r| r.spec.replicas.unwrap_or(0)).sum();
        s.unavailable_replicas = (total - s.available_replicas).max(0);
        let max_unavailable = d
            .spec
            .strategy
            .as_ref()
            .and_then(|st| st.rolling_update.as_ref())
            .and_then(|ru| ru.max_unavailable.as_ref())
            .and_then(|u| u.scaled_value(desired, false).ok())
            .unwrap_or(0);
        let available = s.available_replicas >= desired - max_unavailable;
        // deployment/sync.go and progress.go condition reasons and messages.
        let (a_reason, a_msg) = if available {
            ("MinimumReplicasAvailable", "Deployment has minimum availability.")
        } else {
            ("MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        };
        set_condition(
            &mut s.conditions,
            "Available",
            if available { ConditionStatus::True } else { ConditionStatus::False },
            a_reason,
            a_msg,
            now,
        );
        let new_rs_progress = new_rs.filter(|_| with_progress);
        if let Some(r) = new_rs_progress {
            self.progress(d, r, &mut s, now);
        }
        let mut n = d.clone();
        if let Some(rev) = new_rs.and_then(|r| r.metadata.annotations.get(REVISION_ANNOTATION)) {
            if n.metadata.annotations.get(REVISION_ANNOTATION) != Some(rev) {
                n.metadata.annotations.insert(REVISION_ANNOTATION.into(), rev.clone());
                n.metadata.resource_version = 0;
                let key = d_obj.key();
                self.send(out, &key, ApiRequest::Update(Object::Deployment(n.clone())));
                return;
            }
        }
        if s != d.status {
            n.status = s;
            n.metadata.resource_version = 0;
            let key = d_obj.key();
            self.send(out, &key, ApiRequest::UpdateStatus(Object::Deployment(n)));
        } else {
            if new_rs_progress.is_some() {
                self.requeue_stuck(d, &s, d_obj.key(), now);
            }
        }
    }

    /// cleanupDeployment: old ReplicaSets beyond revisionHistoryLimit, oldest revision
    /// first, those scaled to zero only.
    fn cleanup(&mut self, key: &ObjectKey, d: &Deployment, olds: &[&ReplicaSet], out: &mut Requests) {
        let Some(limit) = d.spec.revision_history_limit else { return };
        let mut alive: Vec<&ReplicaSet> =
            olds.iter().copied().filter(|r| r.metadata.deletion_timestamp.is_none()).collect();
        let diff = alive.len() as i64 - i64::from(limit);
        if diff <= 0 {
            return;
        }
        let revision = |r: &ReplicaSet| {
            r.metadata.annotations.get(REVISION_ANNOTATION).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0)
        };
        // ReplicaSetsByRevision: by revision, then creation time.
        alive.sort_by_key(|r| (revision(r), r.metadata.creation_timestamp, r.metadata.name.clone()));
        for rs in alive.into_iter().take(diff as usize) {
            if rs.status.replicas != 0 || rs.spec.replicas.unwrap_or(0) != 0 {
                continue;
            }
            let k = ObjectKey::new(Kind::ReplicaSet, rs.metadata.namespace.clone(), rs.metadata.name.clone());
            self.send(
                out,
                key,
                ApiRequest::Delete {
                    key: k,
                    grace_period_seconds: None,
                    precondition_uid: Some(rs.metadata.uid.clone()),
                },
            );
        }
    }

    /// progress.go syncRolloutStatus: the Progressing condition.
    fn progress(
        &self,
        d: &Deployment,
        new_rs: &ReplicaSet,
        s: &mut crate::api::workloads::DeploymentStatus,
        now: SimTime,
    ) {
        if !has_progress_deadline(d) {
            s.conditions.retain(|c| c.type_ != PROGRESSING);
            return;
        }
        let current = d.status.conditions.iter().find(|c| c.type_ == PROGRESSING);
        if current.is_none() {
            // getNewReplicaSet: a rollout first noticed now (a Deployment written before it
            // had a deadline, or whose condition was lost) counts from now.
            let msg = format!("Found new replica set {:?}", new_rs.metadata.name);
            set_condition(
                &mut s.conditions,
                PROGRESSING,
                ConditionStatus::True,
                REASON_FOUND_NEW_RS,
                &msg,
                now,
            );
            return;
        }
        // A resync of a finished rollout estimates nothing.
        if s.replicas == s.updated_replicas && current.is_some_and(|c| c.reason == REASON_NEW_RS_AVAILABLE) {
            return;
        }
        let name = &new_rs.metadata.name;
        if deployment_complete(d, s) {
            let msg = format!("ReplicaSet {name:?} has successfully progressed.");
            set_condition(
                &mut s.conditions,
                PROGRESSING,
                ConditionStatus::True,
                REASON_NEW_RS_AVAILABLE,
                &msg,
                now,
            );
        } else if deployment_progressing(&d.status, s) {
            // Any progress moves lastUpdateTime (lastTransitionTime stays while True).
            let msg = format!("ReplicaSet {name:?} is progressing.");
            let transition = current
                .filter(|c| c.status == ConditionStatus::True)
                .and_then(|c| c.last_transition_time)
                .unwrap_or(now);
            s.conditions.retain(|c| c.type_ != PROGRESSING);
            s.conditions.push(WorkloadCondition {
                type_: PROGRESSING.into(),
                status: ConditionStatus::True,
                last_update_time: Some(now),
                last_transition_time: Some(transition),
                reason: REASON_RS_UPDATED.into(),
                message: msg,
            });
        } else if deployment_timed_out(d, s, now) {
            let msg = format!("ReplicaSet {name:?} has timed out progressing.");
            set_condition(
                &mut s.conditions,
                PROGRESSING,
                ConditionStatus::False,
                REASON_TIMED_OUT,
                &msg,
                now,
            );
        }
    }

    /// requeueStuckDeployment: look again one second after the deadline would pass.
    fn requeue_stuck(
        &mut self,
        d: &Deployment,
        s: &crate::api::workloads::DeploymentStatus,
        key: ObjectKey,
        now: SimTime,
    ) {
        let Some(deadline) = d.spec.progress_deadline_seconds.filter(|_| has_progress_deadline(d)) else {
            return;
        };
        let Some(c) = d.status.conditions.iter().find(|c| c.type_ == PROGRESSING) else { return };
        if deployment_complete(d, s) || c.reason == REASON_TIMED_OUT {
            return;
        }
        let from = c.last_update_time.unwrap_or(now);
        let at =
            from + std::time::Duration::from_secs(deadline.max(0) as u64) + std::time::Duration::from_secs(1);
        // Less than a second left: at once (rate-limited upstream: its 5 ms base delay).
        let at = if at <= now + std::time::Duration::from_secs(2) {
            at.max(now + std::time::Duration::from_millis(5))
        } else {
            at
        };
        self.requeue.insert(key, at);
    }
}

/// `util.HasProgressDeadline`: set, and not math.MaxInt32.
/// deployment_util.go GetReplicaSetProportion: this ReplicaSet's share of the replicas
/// to add (or remove), never beyond what is left to share.
fn replica_set_proportion(rs: &ReplicaSet, d: &Deployment, max_surge: i32, to_add: i32, added: i32) -> i32 {
    let size = rs.spec.replicas.unwrap_or(0);
    if size == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = replica_set_fraction(rs, d, max_surge);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// deployment_util.go getReplicaSetFraction: the size this ReplicaSet would have at the
/// new scale (its size times new max over the max-replicas annotation it was scaled
/// at, rounded half away from zero as integer.RoundToInt32), minus its size.
fn replica_set_fraction(rs: &ReplicaSet, d: &Deployment, max_surge: i32) -> i32 {
    let size = rs.spec.replicas.unwrap_or(0);
    let desired = d.spec.replicas.unwrap_or(1);
    if desired == 0 {
        return -size;
    }
    let max_now = desired + max_surge;
    let before = rs
        .metadata
        .annotations
        .get(MAX_REPLICAS_ANNOTATION)
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|v| *v != 0)
        // No annotation (edited by hand): the Deployment's current size.
        .unwrap_or(d.status.replicas);
    if before == 0 {
        return 0;
    }
    let scaled = f64::from(size) * f64::from(max_now) / f64::from(before);
    scaled.round() as i32 - size
}

fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec.progress_deadline_seconds.is_some_and(|s| s != i32::MAX)
}

/// `util.DeploymentComplete`.
fn deployment_complete(d: &Deployment, s: &crate::api::workloads::DeploymentStatus) -> bool {
    let desired = d.spec.replicas.unwrap_or(1);
    s.updated_replicas == desired
        && s.replicas == desired
        && s.available_replicas == desired
        && s.observed_generation >= d.metadata.generation
}

/// `util.DeploymentProgressing`: more updated, ready or available pods, or fewer old ones.
fn deployment_progressing(
    old: &crate::api::workloads::DeploymentStatus,
    new: &crate::api::workloads::DeploymentStatus,
) -> bool {
    let old_old = old.replicas - old.updated_replicas;
    let new_old = new.replicas - new.updated_replicas;
    new.updated_replicas > old.updated_replicas
        || new_old < old_old
        || new.ready_replicas > old.ready_replicas
        || new.available_replicas > old.available_replicas
}

/// `util.DeploymentTimedOut`: no progress reported for progressDeadlineSeconds.
fn deployment_timed_out(d: &Deployment, s: &crate::api::workloads::DeploymentStatus, now: SimTime) -> bool {
    let Some(deadline) = d.spec.progress_deadline_seconds.filter(|_| has_progress_deadline(d)) else {
        return false;
    };
    let Some(c) = s.conditions.iter().find(|c| c.type_ == PROGRESSING) else { return false };
    if c.reason == REASON_NEW_RS_AVAILABLE {
        return false;
    }
    if c.reason == REASON_TIMED_OUT {
        return true;
    }
    let from = c.last_update_time.unwrap_or(now);
    // `from.Add(delta).Before(now)`: strictly after the deadline.
    from + std::time::Duration::from_secs(deadline.max(0) as u64) < now
}

fn set_condition(
    cs: &mut Vec<WorkloadCondition>,
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    msg: &str,
    now: SimTime,
) {
    match cs.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Some(now);
            }
            if c.status != status || c.reason != reason || c.message != msg {
                c.last_update_time = Some(now);
            }
            c.status = status;
            c.reason = reason.into();
            c.message = msg.into();
        }
        None => cs.push(WorkloadCondition {
            type_: type_.into(),
            status,
            last_update_time: Some(now),
            last_transition_time: Some(now),
            reason: reason.into(),
            message: msg.into(),
        }),
    }
}

impl Controller for DeploymentController {
    fn on_event(&mut self, ev: &WatchEvent, _cache: &Cache) {
        let o = &ev.object;
        match o.kind() {
            Kind::Deployment => {
                self.dirty.insert(o.key());
            }
            Kind::ReplicaSet => {
                // An orphan: the Deployments whose selector matches it may adopt it
                // (addReplicaSet/updateReplicaSet's getDeploymentsForReplicaSet).
                let selector = |o: &Object| o.as_deployment().map(|d| d.spec.selector.clone());
                self.dirty.extend(self.claimer.observe(ev, _cache, Kind::Deployment, selector));
                if let Some(r) = o.meta().controller_of().filter(|r| r.kind == "Deployment") {
                    self.dirty.insert(ObjectKey::new(
                        Kind::Deployment,
                        o.meta().namespace.clone(),
                        r.name.clone(),
                    ));
                }
            }
            _ => {}
        }
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, _cache: &Cache, _now: SimTime) {
        // A failed request may be a failed adoption: let every pending one be tried
        // again (an adoption patch repeated is a no-op).
        if result.is_err() {
            self.claimer.on_failure();
        }
        if let Some(k) = self.in_flight.remove(&tag) {
            self.dirty.insert(k);
        }
    }

    fn reconcile(&mut self, cache: &Cache, now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        let due: Vec<ObjectKey> =
            self.requeue.iter().filter(|(_, t)| **t <= now).map(|(k, _)| k.clone()).collect();
        for k in due {
            self.requeue.remove(&k);
            self.dirty.insert(k);
        }
        let dirty = std::mem::take(&mut self.dirty);
        for key in dirty {
            self.sync(&key, cache, now, out);
        }
        if let Some(t) = self.requeue.values().min() {
            out.wake(*t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        let p = |s: &str| IntOrString::String(s.into());
        assert_eq!(resolve_fenceposts(&p("25%"), &p("25%"), 10), (3, 2));
        assert_eq!(resolve_fenceposts(&p("25%"), &p("25%"), 3), (1, 0));
        assert_eq!(resolve_fenceposts(&IntOrString::Int(0), &IntOrString::Int(0), 3), (0, 1));
    }

    fn stuck(deadline: i32) -> (Deployment, ReplicaSet) {
        let mut d = Deployment::default();
        d.metadata.name = "web".into();
        d.spec.replicas = Some(3);
        d.spec.progress_deadline_seconds = Some(deadline);
        // Mid-rollout: 3 old pods available, 1 new one that never becomes ready.
        d.status = crate::api::workloads::DeploymentStatus {
            replicas: 4,
            updated_replicas: 1,
            ready_replicas: 3,
            available_replicas: 3,
            unavailable_replicas: 1,
            conditions: vec![WorkloadCondition {
                type_: PROGRESSING.into(),
                status: ConditionStatus::True,
                last_update_time: Some(SimTime::from_secs(30)),
                last_transition_time: Some(SimTime::from_secs(20)),
                reason: REASON_NEW_RS_CREATED.into(),
                message: "Created new replica set \"web-abc\"".into(),
            }],
            ..Default::default()
        };
        let mut rs = ReplicaSet::default();
        rs.metadata.name = "web-abc".into();
        (d, rs)
    }

    fn progressing(s: &crate::api::workloads::DeploymentStatus) -> &WorkloadCondition {
        s.conditions.iter().find(|c| c.type_ == PROGRESSING).unwrap()
    }

    /// No progress: ProgressDeadlineExceeded only once the deadline has passed since the
    /// condition's lastUpdateTime (strictly after, as `Before(now)`), with upstream's message.
    #[test]
    fn no_progress_times_out_after_the_deadline() {
        let c = DeploymentController::new();
        let (d, rs) = stuck(60);
        let mut s = d.status.clone();
        c.progress(&d, &rs, &mut s, SimTime::from_secs(90));
        assert_eq!(s, d.status, "before the deadline nothing changes");
        let mut s = d.status.clone();
        c.progress(&d, &rs, &mut s, SimTime::from_millis(90_001));
        let p = progressing(&s);
        assert_eq!(p.reason, REASON_TIMED_OUT);
        assert_eq!(p.status, ConditionStatus::False);
        assert_eq!(p.message, "ReplicaSet \"web-abc\" has timed out progressing.");
        assert_eq!(p.last_transition_time, Some(SimTime::from_millis(90_001)));
    }

    /// Progress (one more pod available) moves lastUpdateTime and keeps the transition time.
    #[test]
    fn progress_moves_the_deadline() {
        let c = DeploymentController::new();
        let (d, rs) = stuck(60);
        let mut s = d.status.clone();
        s.available_replicas = 4;
        s.ready_replicas = 4;
        c.progress(&d, &rs, &mut s, SimTime::from_secs(100));
        let p = progressing(&s);
        assert_eq!(p.reason, REASON_RS_UPDATED);
        assert_eq!(p.message, "ReplicaSet \"web-abc\" is progressing.");
        assert_eq!(p.last_update_time, Some(SimTime::from_secs(100)));
        assert_eq!(p.last_transition_time, Some(SimTime::from_secs(20)));
        // Complete: NewReplicaSetAvailable.
        let mut s = d.status.clone();
        s.replicas = 3;
        s.updated_replicas = 3;
        s.available_replicas = 3;
        c.progress(&d, &rs, &mut s, SimTime::from_secs(100));
        assert_eq!(progressing(&s).reason, REASON_NEW_RS_AVAILABLE);
        assert_eq!(progressing(&s).message, "ReplicaSet \"web-abc\" has successfully progressed.");
    }

    /// The stuck Deployment is looked at again one second after its deadline.
    #[test]
    fn a_stuck_rollout_is_requeued_past_its_deadline() {
        let mut c = DeploymentController::new();
        let (d, _) = stuck(60);
        let key = ObjectKey::new(Kind::Deployment, "default", "web");
        c.requeue_stuck(&d, &d.status, key.clone(), SimTime::from_secs(40));
        assert_eq!(c.requeue.get(&key), Some(&SimTime::from_secs(91)));
    }

    #[test]
    fn hash_is_stable_and_safe_encoded() {
        let t = crate::api::PodTemplateSpec::default();
        let h = pod_template_hash(&t, 0);
        assert_eq!(h, pod_template_hash(&t, 0));
        assert_ne!(h, pod_template_hash(&t, 1));
        assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
    }

    fn sized(name: &str, replicas: i32, max_annotation: i32, created: u64) -> ReplicaSet {
        let mut rs = ReplicaSet::default();
        rs.metadata.name = name.into();
        rs.metadata.namespace = "default".into();
        rs.metadata.creation_timestamp = Some(SimTime::from_secs(created));
        rs.spec.replicas = Some(replicas);
        rs.metadata.annotations.insert(MAX_REPLICAS_ANNOTATION.into(), max_annotation.to_string());
        rs
    }

    /// The sizes proportional scaling gives each ReplicaSet, by name.
    fn scaled(
        d: &Deployment,
        new_rs: Option<&ReplicaSet>,
        olds: &[&ReplicaSet],
        surge: i32,
    ) -> Vec<(String, i32)> {
        let mut c = DeploymentController::new();
        let mut out = Requests::default();
        let d_obj = Object::Deployment(d.clone());
        c.proportional_scale(&mut out, &d_obj, d, new_rs, olds, surge, SimTime::ZERO);
        out.items
            .iter()
            .filter_map(|(_, r)| match r {
                ApiRequest::Update(Object::ReplicaSet(rs)) => {
                    Some((rs.metadata.name.clone(), rs.spec.replicas.unwrap()))
                }
                _ => None,
            })
            .collect()
    }

    fn deployment(replicas: i32) -> Deployment {
        let mut d = Deployment::default();
        d.metadata.name = "web".into();
        d.spec.replicas = Some(replicas);
        d
    }

    /// Cases as sync_test.go TestScale: mid-rollout replica changes are shared among the
    /// active ReplicaSets in proportion to their size (annotated max replicas before the
    /// change), leftovers to the largest; one active ReplicaSet takes everything.
    #[test]
    fn proportional_scaling_shares_the_change() {
        // 10 -> 20 with maxSurge 3 mid-rollout: new 5, old 8 (both scaled at max 13).
        let new = sized("web-new", 5, 13, 20);
        let old = sized("web-old", 8, 13, 10);
        let got = scaled(&deployment(20), Some(&new), &[&old], 3);
        // allowed 23, add 10: old 8*23/13 = 14.15 -> +6, new 5*23/13 = 8.85 -> +4.
        assert_eq!(got, [("web-old".to_string(), 14), ("web-new".to_string(), 9)]);
        // 10 -> 5 (maxSurge 1): allowed 6, remove 7; older first among equals.
        let a = sized("web-a", 6, 13, 10);
        let b = sized("web-b", 6, 13, 20);
        let new = sized("web-c", 1, 13, 30);
        let got = scaled(&deployment(5), Some(&new), &[&a, &b], 1);
        // a: 6*6/13 = 2.77 -> 3 (-3); b: -3; c: 1*6/13 = 0.46 -> 0 (-1, capped by max(-1, -1)).
        assert_eq!(got, [("web-a".to_string(), 3), ("web-b".to_string(), 3), ("web-c".to_string(), 0)]);
        // One active ReplicaSet (paused, nothing rolled out): it takes all the replicas.
        let only = sized("web-only", 3, 4, 10);
        let idle = sized("web-idle", 0, 4, 5);
        assert_eq!(scaled(&deployment(7), Some(&only), &[&idle], 1), [("web-only".to_string(), 7)]);
        // 10 -> 11 (maxSurge 3): the one replica goes to the old set; the new one keeps its
        // size but gets the new annotations (scaleReplicaSet's annotationsNeedUpdate), or
        // the scaling event would be seen again on every sync.
        let new = sized("web-new", 5, 13, 20);
        let got = scaled(&deployment(11), Some(&new), &[&old], 3);
        assert_eq!(got, [("web-old".to_string(), 9), ("web-new".to_string(), 5)]);
        // Scaling to zero: every active ReplicaSet's whole size goes.
        let new = sized("web-c", 1, 13, 30);
        let got = scaled(&deployment(0), Some(&new), &[&old], 0);
        assert_eq!(got, [("web-old".to_string(), 0), ("web-c".to_string(), 0)]);
    }
}
