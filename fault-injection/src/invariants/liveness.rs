//! Liveness, checked once the last fault has healed and [`LIVENESS_BOUND`] has passed:
//! every Deployment, ReplicaSet, StatefulSet and DaemonSet has its desired replicas
//! available (where capacity allows: a workload with a pod the scheduler found no room
//! for is skipped), and no pod stays Terminating on a Ready node.

use std::time::Duration;

use kubesim_model::api::{Kind, Object, PodPhase};
use kubesim_model::client::Cache;
use kubesim_model::time::SimTime;

use super::Violation;

/// How long after the last fault heals the cluster has to converge. Upstream's timings:
/// a reconnected kubelet posts status within its 10 s nodeStatusUpdateFrequency, the node
/// lifecycle controller lifts taints on its next 5 s pass, the scheduler retries pods on
/// the node update (backoff at most podMaxBackoffSeconds, 10 s) and flushes pods left
/// unschedulable after 60 s at the latest (flushUnschedulablePodsLeftover's 30 s period
/// plus the queue's wait), controllers resync within seconds, containers start within
/// their pull latency; a pod deleted on a node that comes back is finished within its
/// 30 s grace period. 150 s covers the sum with room for a retried API call.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(150);

fn desired_and_available(o: &Object) -> Option<(i64, i64)> {
    let v = o.to_json_value();
    let get = |p: &str| v.pointer(p).and_then(|x| x.as_i64());
    match o.kind() {
        Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet => {
            Some((get("/spec/replicas").unwrap_or(1), get("/status/availableReplicas").unwrap_or(0)))
        }
        Kind::DaemonSet => Some((
            get("/status/desiredNumberScheduled").unwrap_or(0),
            get("/status/numberAvailable").unwrap_or(0),
        )),
        _ => None,
    }
}

/// A pod of the workload is Pending because it fits nowhere (capacity does not allow).
fn capacity_short(state: &Cache, owner: &Object) -> bool {
    let labels = owner.to_json_value();
    let Some(sel) = labels.pointer("/spec/selector/matchLabels").and_then(|m| m.as_object()) else {
        return false;
    };
    state.list(Kind::Pod).filter_map(|o| o.as_pod()).any(|p| {
        p.metadata.namespace == owner.meta().namespace
            && sel.iter().all(|(k, v)| p.metadata.labels.get(k).map(String::as_str) == v.as_str())
            && p.phase() == PodPhase::Pending
            && p.spec.node_name.is_empty()
    })
}

/// Checks convergence at `now`.
pub fn check(state: &Cache, now: SimTime) -> Vec<Violation> {
    let mut out = Vec::new();
    for kind in [Kind::Deployment, Kind::ReplicaSet, Kind::StatefulSet, Kind::DaemonSet] {
        for o in state.list(kind) {
            let Some((desired, available)) = desired_and_available(o) else { continue };
            if available < desired && !capacity_short(state, o) {
                out.push(Violation {
                    invariant: "workloads-converge",
                    t: now,
                    detail: format!(
                        "{} {}/{}: {available} of {desired} replicas available {}s after the last fault healed",
                        kind.as_str(),
                        o.meta().namespace,
                        o.meta().name,
                        LIVENESS_BOUND.as_secs()
                    ),
                });
            }
        }
    }
    for p in state.list(Kind::Pod).filter_map(|o| o.as_pod()) {
        let Some(deleted) = p.metadata.deletion_timestamp else { continue };
        let node_key = kubesim_model::api::ObjectKey::new(Kind::Node, "", p.spec.node_name.clone());
        let ready = state
            .get(&node_key)
            .and_then(|n| n.as_node())
            .and_then(|n| n.condition("Ready"))
            .is_some_and(|c| c.status == kubesim_model::api::ConditionStatus::True);
        if ready && now.saturating_sub(deleted) > LIVENESS_BOUND {
            out.push(Violation {
                invariant: "no-terminating-on-ready-node",
                t: now,
                detail: format!(
                    "pod {}/{} Terminating since {deleted} on Ready node {}",
                    p.metadata.namespace, p.metadata.name, p.spec.node_name
                ),
            });
        }
    }
    out
}
