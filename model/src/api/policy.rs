//! PriorityClass (scheduling.k8s.io/v1) and PodDisruptionBudget (policy/v1), with the
//! constants their admission, the disruption controller and the Eviction API share.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::meta::{ConditionStatus, IntOrString, ObjectMeta};
use super::selector::LabelSelector;
use crate::time::SimTime;

/// `scheduling.SystemClusterCritical` (pkg/apis/scheduling/types.go).
pub const SYSTEM_CLUSTER_CRITICAL: &str = "system-cluster-critical";
/// `scheduling.SystemNodeCritical`.
pub const SYSTEM_NODE_CRITICAL: &str = "system-node-critical";
/// `scheduling.SystemCriticalPriority` (2 billion): system-cluster-critical's value.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;
/// system-node-critical: SystemCriticalPriority + 1000 (pkg/apis/scheduling/helpers.go).
pub const SYSTEM_NODE_CRITICAL_PRIORITY: i32 = SYSTEM_CRITICAL_PRIORITY + 1000;
/// `scheduling.HighestUserDefinablePriority` (1 billion).
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i32 = 1_000_000_000;
/// `scheduling.SystemPriorityClassPrefix`: names reserved for the system classes.
pub const SYSTEM_PRIORITY_CLASS_PREFIX: &str = "system-";
/// `v1.PreemptLowerPriority`, the default preemptionPolicy.
pub const PREEMPT_LOWER_PRIORITY: &str = "PreemptLowerPriority";
/// `v1.PreemptNever`.
pub const PREEMPT_NEVER: &str = "Never";

/// `schedulingv1.PriorityClass`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriorityClass {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub value: i32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub global_default: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `PreemptLowerPriority` (defaulted) or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemption_policy: Option<String>,
}

impl PriorityClass {
    /// The two classes the API server creates at start (pkg/registry/scheduling/rest
    /// storage_scheduling.go, `SystemPriorityClasses`).
    pub fn system_classes() -> Vec<PriorityClass> {
        [
            (
                SYSTEM_NODE_CRITICAL,
                SYSTEM_NODE_CRITICAL_PRIORITY,
                "Used for system critical pods that must not be moved from their current node.",
            ),
            (
                SYSTEM_CLUSTER_CRITICAL,
                SYSTEM_CRITICAL_PRIORITY,
                "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
            ),
        ]
        .into_iter()
        .map(|(name, value, description)| PriorityClass {
            metadata: ObjectMeta { name: name.into(), ..Default::default() },
            value,
            description: description.into(),
            preemption_policy: Some(PREEMPT_LOWER_PRIORITY.into()),
            ..Default::default()
        })
        .collect()
    }
}

/// `policyv1.PodDisruptionBudget`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudget {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PodDisruptionBudgetSpec,
    #[serde(default)]
    pub status: PodDisruptionBudgetStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudgetSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
    /// `IfHealthyBudget` (the behaviour when unset) or `AlwaysAllow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_pod_eviction_policy: Option<String>,
}

/// `policyv1.AlwaysAllow`: unhealthy pods may always be evicted.
pub const UNHEALTHY_POD_EVICTION_ALWAYS_ALLOW: &str = "AlwaysAllow";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudgetStatus {
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub observed_generation: i64,
    /// Pods the Eviction API admitted but whose deletion the controller has not seen yet,
    /// with the time of the eviction.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub disrupted_pods: BTreeMap<String, SimTime>,
    #[serde(default)]
    pub disruptions_allowed: i32,
    #[serde(default)]
    pub current_healthy: i32,
    #[serde(default)]
    pub desired_healthy: i32,
    #[serde(default)]
    pub expected_pods: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// `metav1.Condition`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub observed_generation: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<SimTime>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// `policyv1.DisruptionAllowedCondition` and its reasons (policy/v1/types.go).
pub const DISRUPTION_ALLOWED_CONDITION: &str = "DisruptionAllowed";
pub const SUFFICIENT_PODS_REASON: &str = "SufficientPods";
pub const INSUFFICIENT_PODS_REASON: &str = "InsufficientPods";
pub const SYNC_FAILED_REASON: &str = "SyncFailed";

impl PodDisruptionBudget {
    /// The selector as the Eviction API and the scheduler's preemption read it: nil or
    /// empty selects nothing (eviction.go getPodDisruptionBudgets, preemption's
    /// filterPodsWithPDBViolation).
    pub fn selects_for_eviction(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.metadata.namespace == namespace
            && self.spec.selector.as_ref().is_some_and(|s| !s.is_empty() && s.matches(labels))
    }
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
