//! The Eviction API, `POST pods/<name>/eviction` (pkg/registry/core/pod/storage/eviction.go,
//! v1.33): a pod guarded by a PodDisruptionBudget is deleted only when the budget allows a
//! disruption; the budget's `disruptionsAllowed` is decremented and the pod recorded in
//! `disruptedPods` so that the disruption controller does not count it while it goes.
//!
//! Upstream decrements the budget (a status update retried on conflict), then adds the
//! DisruptionTarget condition (an update) and deletes the pod. Here the three writes are
//! one etcd transaction guarded by both objects' revisions, retried on a fresh read when
//! either changed, so that a budget is never decremented for a pod that is not deleted.

use std::sync::Arc;

use super::{ApiServer, Caller, Pending};
use crate::api::pod::condition;
use crate::api::policy::{PodDisruptionBudget, UNHEALTHY_POD_EVICTION_ALWAYS_ALLOW};
use crate::api::{ConditionStatus, Kind, Object, ObjectKey, PodCondition, PodPhase};
use crate::client::{ApiError, ApiResult};
use crate::etcd::{Compare, CompareOp, CompareTarget, EtcdRequest, EtcdResponse, Op};
use crate::time::SimTime;

/// The 429 every refused eviction carries (eviction.go checkAndDecrement).
pub const MSG_VIOLATES_BUDGET: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
/// eviction.go: a pod matched by several budgets cannot be evicted (500).
pub const MSG_MULTIPLE_BUDGETS: &str =
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";
/// `v1.PodReasonEvictionByEvictionAPI` and the condition's message (addConditionAndDeletePod).
pub const REASON_EVICTION_BY_EVICTION_API: &str = "EvictionByEvictionAPI";
pub const MESSAGE_EVICTION_API: &str = "Eviction API: evicting";
/// eviction.go EvictionsRetry gives up after this many conflicts (wait.Backoff Steps).
const EVICTION_TRIES: u32 = 20;

/// An eviction waiting for its transaction.
#[derive(Debug)]
pub(super) struct PendingEviction {
    pub(super) caller: Caller,
    pod: ObjectKey,
    grace: Option<i64>,
    tries: u32,
}

/// `errors.NewTooManyRequests` with the budget message.
pub fn too_many_requests() -> ApiError {
    ApiError { code: 429, reason: "TooManyRequests", message: MSG_VIOLATES_BUDGET.into() }
}

/// What an eviction does, decided against the current pod and budgets.
#[derive(Debug, PartialEq)]
enum Decision {
    Refuse(ApiError),
    /// Delete, decrementing this budget first (None: no budget is involved).
    Delete(Option<Arc<PodDisruptionBudget>>),
}

/// The decision of eviction.go's Create for `pod` given the namespace's budgets.
fn decide(pod: &crate::api::Pod, budgets: &[Arc<PodDisruptionBudget>]) -> Decision {
    // canIgnorePDB: terminal, pending and terminating pods go directly.
    let phase = pod.phase();
    if matches!(phase, PodPhase::Succeeded | PodPhase::Failed | PodPhase::Pending)
        || pod.metadata.deletion_timestamp.is_some()
    {
        return Decision::Delete(None);
    }
    let matching: Vec<&Arc<PodDisruptionBudget>> = budgets
        .iter()
        .filter(|b| b.selects_for_eviction(&pod.metadata.namespace, &pod.metadata.labels))
        .collect();
    let pdb = match matching.as_slice() {
        [] => return Decision::Delete(None),
        [one] => *one,
        _ => {
            return Decision::Refuse(ApiError {
                code: 500,
                reason: "InternalError",
                message: MSG_MULTIPLE_BUDGETS.into(),
            })
        }
    };
    if !pod.is_ready() {
        let always =
            pdb.spec.unhealthy_pod_eviction_policy.as_deref() == Some(UNHEALTHY_POD_EVICTION_ALWAYS_ALLOW);
        let s = &pdb.status;
        // An unhealthy pod does not count towards currentHealthy: its deletion leaves the
        // budget as it is.
        if always || (s.current_healthy >= s.desired_healthy && s.desired_healthy > 0) {
            return Decision::Delete(None);
        }
    }
    // checkAndDecrement.
    if pdb.status.observed_generation < pdb.metadata.generation || pdb.status.disruptions_allowed == 0 {
        return Decision::Refuse(too_many_requests());
    }
    if pdb.status.disruptions_allowed < 0 {
        return Decision::Refuse(ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "poddisruptionbudgets.policy \"{}\" is forbidden: pdb disruptions allowed is negative",
                pdb.metadata.name
            ),
        });
    }
    Decision::Delete(Some(pdb.clone()))
}

/// The pod with the DisruptionTarget condition and, when it runs on a node, marked for
/// graceful deletion; `None` when it is deleted at once (registry CheckGracefulDelete).
fn evicted_pod(pod: &crate::api::Pod, grace: Option<i64>, now: SimTime) -> Option<crate::api::Pod> {
    let grace = grace.or(pod.spec.termination_grace_period_seconds).unwrap_or(30);
    let finished = matches!(pod.phase(), PodPhase::Succeeded | PodPhase::Failed);
    if pod.spec.node_name.is_empty() || grace <= 0 || finished {
        return None;
    }
    let mut next = pod.clone();
    next.set_condition(PodCondition {
        type_: condition::DISRUPTION_TARGET.into(),
        status: ConditionStatus::True,
        last_transition_time: Some(now),
        reason: REASON_EVICTION_BY_EVICTION_API.into(),
        message: MESSAGE_EVICTION_API.into(),
        ..Default::default()
    });
    if next.metadata.deletion_timestamp.is_none() {
        next.metadata.deletion_timestamp = Some(now + std::time::Duration::from_secs(grace as u64));
        next.metadata.deletion_grace_period_seconds = Some(grace);
    }
    Some(next)
}

impl ApiServer {
    /// `ApiRequest::Evict`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn evict(
        &mut self,
        caller: Caller,
        namespace: String,
        name: String,
        grace: Option<i64>,
        now: SimTime,
        out: &mut Vec<super::ApiOutput>,
    ) {
        let pod = ObjectKey::new(Kind::Pod, namespace, name);
        let e = PendingEviction { caller, pod, grace, tries: 0 };
        self.evict_try(e, &[], now, out);
    }

    /// Decides and sends the transaction; `fresh` holds objects etcd returned newer than
    /// the watch cache's (after a failed compare).
    fn evict_try(
        &mut self,
        e: PendingEviction,
        fresh: &[Arc<Object>],
        now: SimTime,
        out: &mut Vec<super::ApiOutput>,
    ) {
        let newest =
            |o: &Arc<Object>| fresh.iter().find(|f| f.key() == o.key()).cloned().unwrap_or_else(|| o.clone());
        let current = match fresh.iter().find(|f| f.key() == e.pod).or(self.cache.get(&e.pod)) {
            Some(c) => c.clone(),
            None => return self.reply(e.caller, Err(ApiError::not_found(Kind::Pod, &e.pod.name)), out),
        };
        let Some(pod) = current.as_pod() else { return };
        let budgets: Vec<Arc<PodDisruptionBudget>> = self
            .cache
            .list_namespace(Kind::PodDisruptionBudget, &e.pod.namespace)
            .map(newest)
            .filter_map(|o| o.as_pod_disruption_budget().cloned().map(Arc::new))
            .collect();
        let pdb = match decide(pod, &budgets) {
            Decision::Refuse(err) => return self.reply(e.caller, Err(err), out),
            Decision::Delete(pdb) => pdb,
        };
        let pod_key = e.pod.etcd_key();
        let mut compare = vec![revision_is(&pod_key, pod.metadata.resource_version)];
        let mut success = Vec::new();
        let mut failure = vec![Op::Get { key: pod_key.clone() }];
        if let Some(pdb) = &pdb {
            let key =
                ObjectKey::new(Kind::PodDisruptionBudget, &e.pod.namespace, &pdb.metadata.name).etcd_key();
            let mut next = (**pdb).clone();
            next.status.disruptions_allowed -= 1;
            next.status.disrupted_pods.insert(pod.metadata.name.clone(), now);
            compare.push(revision_is(&key, pdb.metadata.resource_version));
            success.push(Op::Put { key: key.clone(), value: Arc::new(Object::PodDisruptionBudget(next)) });
            failure.push(Op::Get { key });
        }
        match evicted_pod(pod, e.grace, now) {
            Some(next) => success.push(Op::Put { key: pod_key, value: Arc::new(Object::Pod(next)) }),
            None => success.push(Op::Delete { key: pod_key }),
        }
        let request = EtcdRequest::Txn { compare, success, failure };
        self.send_to_etcd(Pending::Evict(e), request, out);
    }

    /// The eviction's transaction came back: done, or retried against what changed.
    pub(super) fn eviction_response(
        &mut self,
        e: PendingEviction,
        response: EtcdResponse<Arc<Object>>,
        now: SimTime,
        out: &mut Vec<super::ApiOutput>,
    ) {
        let (succeeded, results) = match response {
            EtcdResponse::Txn { succeeded, results, .. } => (succeeded, results),
            EtcdResponse::Error { message } => {
                return self.reply(e.caller, Err(ApiError { code: 500, reason: "", message }), out)
            }
            _ => return,
        };
        if succeeded {
            let pod: ApiResult = results
                .into_iter()
                .last()
                .flatten()
                .map(|kv| kv.value)
                .ok_or_else(|| ApiError::not_found(Kind::Pod, &e.pod.name));
            return self.reply(e.caller, pod, out);
        }
        // The pod or the budget changed under us: decide again on what etcd holds (the
        // watch cache sees it later). A pod that is gone is NotFound.
        let fresh: Vec<Arc<Object>> = results.into_iter().flatten().map(|kv| kv.value).collect();
        if !fresh.iter().any(|o| o.key() == e.pod) {
            return self.reply(e.caller, Err(ApiError::not_found(Kind::Pod, &e.pod.name)), out);
        }
        if e.tries + 1 >= EVICTION_TRIES {
            let message = "couldn't update PodDisruptionBudget due to conflicts".to_string();
            return self.reply(e.caller, Err(ApiError { code: 504, reason: "Timeout", message }), out);
        }
        self.evict_try(PendingEviction { tries: e.tries + 1, ..e }, &fresh, now, out);
    }
}

fn revision_is(key: &str, rv: u64) -> Compare {
    Compare {
        key: key.to_string(),
        target: CompareTarget::ModRevision,
        op: CompareOp::Equal,
        value: rv as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::policy::PodDisruptionBudgetSpec;
    use crate::api::{LabelSelector, Pod};

    fn pod(ready: bool) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = "web-1".into();
        p.metadata.namespace = "default".into();
        p.metadata.labels.insert("app".into(), "web".into());
        p.status.phase = Some(PodPhase::Running);
        std::sync::Arc::make_mut(&mut p.spec).node_name = "node-1".into();
        p.set_condition(PodCondition {
            type_: condition::READY.into(),
            status: if ready { ConditionStatus::True } else { ConditionStatus::False },
            ..Default::default()
        });
        p
    }

    fn pdb(name: &str, allowed: i32, healthy: i32, desired: i32) -> Arc<PodDisruptionBudget> {
        let mut b = PodDisruptionBudget::default();
        b.metadata.name = name.into();
        b.metadata.namespace = "default".into();
        b.metadata.generation = 1;
        b.spec = PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        b.status.observed_generation = 1;
        b.status.disruptions_allowed = allowed;
        b.status.current_healthy = healthy;
        b.status.desired_healthy = desired;
        Arc::new(b)
    }

    #[test]
    fn a_budget_with_no_disruptions_left_refuses_with_429() {
        let d = decide(&pod(true), &[pdb("web", 0, 2, 2)]);
        assert_eq!(d, Decision::Refuse(too_many_requests()));
        assert_eq!(
            too_many_requests().message,
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
    }

    #[test]
    fn a_budget_with_room_is_decremented() {
        let b = pdb("web", 1, 3, 2);
        assert_eq!(decide(&pod(true), std::slice::from_ref(&b)), Decision::Delete(Some(b)));
    }

    #[test]
    fn unobserved_generation_refuses_and_two_budgets_are_an_error() {
        let mut b = (*pdb("web", 1, 3, 2)).clone();
        b.metadata.generation = 2;
        assert_eq!(decide(&pod(true), &[Arc::new(b)]), Decision::Refuse(too_many_requests()));
        let Decision::Refuse(e) = decide(&pod(true), &[pdb("a", 1, 3, 2), pdb("b", 1, 3, 2)]) else {
            panic!("two budgets")
        };
        assert_eq!((e.code, e.message.as_str()), (500, MSG_MULTIPLE_BUDGETS));
    }

    #[test]
    fn unhealthy_pods_and_pods_without_budget_go_without_decrement() {
        // IfHealthyBudget: an unready pod goes while the budget is met.
        assert_eq!(decide(&pod(false), &[pdb("web", 0, 2, 2)]), Decision::Delete(None));
        // ... but not when the budget is not met.
        assert_eq!(decide(&pod(false), &[pdb("web", 0, 1, 2)]), Decision::Refuse(too_many_requests()));
        assert_eq!(decide(&pod(true), &[]), Decision::Delete(None));
        let mut pending = pod(true);
        pending.status.phase = Some(PodPhase::Pending);
        assert_eq!(decide(&pending, &[pdb("web", 0, 2, 2)]), Decision::Delete(None));
    }

    #[test]
    fn evicted_pods_get_the_disruption_target_condition_and_their_grace_period() {
        let mut p = pod(true);
        std::sync::Arc::make_mut(&mut p.spec).termination_grace_period_seconds = Some(30);
        let next = evicted_pod(&p, None, SimTime::from_secs(10)).unwrap();
        let c = next.condition(condition::DISRUPTION_TARGET).unwrap();
        assert_eq!(
            (c.reason.as_str(), c.message.as_str()),
            ("EvictionByEvictionAPI", "Eviction API: evicting")
        );
        assert_eq!(next.metadata.deletion_timestamp, Some(SimTime::from_secs(40)));
        assert!(evicted_pod(&p, Some(0), SimTime::ZERO).is_none(), "grace 0 deletes at once");
    }
}
