//! The Deployment controller (pkg/controller/deployment): one ReplicaSet per pod template
//! (named `<deployment>-<pod-template-hash>`), scaled by the RollingUpdate arithmetic
//! (maxSurge rounds up, maxUnavailable rounds down; both 0 -> maxUnavailable 1) or by
//! Recreate; revision annotations, status and conditions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand_chacha::ChaCha8Rng;

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
        if from == to {
            return;
        }
        let mut n = rs.clone();
        n.spec.replicas = Some(to);
        let desired = d.spec.replicas.unwrap_or(1);
        n.metadata.annotations.insert(DESIRED_REPLICAS_ANNOTATION.into(), desired.to_string());
        n.metadata.annotations.insert(MAX_REPLICAS_ANNOTATION.into(), (desired + max_surge).to_string());
        let key = d_obj.key();
        self.send(out, &key, ApiRequest::Update(Object::ReplicaSet(n)));
        // sync.go scaleReplicaSet: "Scaled up replica set %s from %d to %d".
        let dir = if to > from { "up" } else { "down" };
        let msg = format!("Scaled {dir} replica set {} from {from} to {to}", rs.metadata.name);
        self.event(out, d_obj, "ScalingReplicaSet", &msg, now);
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
        let owned: Vec<Arc<Object>> =
            cache.controlled_by(&d.metadata.uid).filter(|o| o.kind() == Kind::ReplicaSet).cloned().collect();
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
        if d.spec.paused {
            // sync.go sync: a paused Deployment makes no new ReplicaSet and does not roll
            // out; a replica change scales it (kubesim: when no old ReplicaSet still has
            // replicas; the proportional scaling of a paused rollout is not simulated);
            // the status is recounted without progress estimation.
            if let Some(new_rs) = new_rs {
                if olds.iter().all(|r| r.spec.replicas.unwrap_or(0) == 0) {
                    self.scale(out, &d_obj, d, new_rs, desired, max_surge, now);
                }
                self.status(&d_obj, d, new_rs, &rss, now, out);
            }
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
        self.status(&d_obj, d, new_rs, &rss, now, out);
    }

    fn status(
        &mut self,
        d_obj: &Object,
        d: &Deployment,
        new_rs: &ReplicaSet,
        rss: &[&ReplicaSet],
        now: SimTime,
        out: &mut Requests,
    ) {
        let desired = d.spec.replicas.unwrap_or(1);
        let mut s = d.status.clone();
        s.observed_generation = d.metadata.generation;
        s.replicas = rss.iter().map(|r| r.status.replicas).sum();
        s.updated_replicas = new_rs.status.replicas;
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
        if !d.spec.paused {
            self.progress(d, new_rs, &mut s, now);
        }
        let mut n = d.clone();
        if let Some(rev) = new_rs.metadata.annotations.get(REVISION_ANNOTATION) {
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
            if !d.spec.paused {
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

    fn on_response(&mut self, tag: u64, _result: &ApiResult, _cache: &Cache, _now: SimTime) {
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
}
