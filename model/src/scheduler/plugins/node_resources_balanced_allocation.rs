//! NodeResourcesBalancedAllocation (plugins/noderesources/balanced_allocation.go, v1.33):
//! favours nodes whose resource fractions (requested including the pod over allocatable)
//! stay close: (1 - std) * 100. It counts actual requests (useRequested), not the non-zero
//! defaults, and skips BestEffort pods (PreScore, kubernetes#129138).

use crate::scheduler::config::ResourceSpec;
use crate::scheduler::framework::{NodeInfo, PodInfo};

use super::node_resources_fit::{allocatable_and_requested, pod_request};
use super::MAX_NODE_SCORE;

pub const NAME: &str = "NodeResourcesBalancedAllocation";

#[derive(Clone, Debug, PartialEq)]
pub struct PreScoreState {
    pub resources: Vec<String>,
    pub pod_requests: Vec<i64>,
}

/// PreScore: the pod's requests per resource; Skip (None) when it requests nothing.
pub fn pre_score(resources: &[ResourceSpec], pod: &PodInfo) -> Option<PreScoreState> {
    let pod_requests: Vec<i64> = resources.iter().map(|r| pod_request(pod, &r.name, false)).collect();
    if pod_requests.iter().all(|r| *r == 0) {
        return None;
    }
    Some(PreScoreState { resources: resources.iter().map(|r| r.name.clone()).collect(), pod_requests })
}

pub fn score(state: &PreScoreState, node: &NodeInfo) -> i64 {
    let mut fractions = Vec::with_capacity(state.resources.len());
    for (i, r) in state.resources.iter().enumerate() {
        let (alloc, req) = allocatable_and_requested(node, r, state.pod_requests[i], true);
        if alloc == 0 {
            continue;
        }
        fractions.push((req as f64 / alloc as f64).min(1.0));
    }
    balanced_resource_score(&fractions)
}

/// `balancedResourceScorer` on the fractions: with two resources the standard deviation
/// is |a - b| / 2, with more the usual formula.
pub fn balanced_resource_score(fractions: &[f64]) -> i64 {
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions.iter().map(|f| (f - mean) * (f - mean)).sum::<f64>() / n as f64).sqrt()
        }
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    // noderesources/balanced_allocation_test.go: node1 4000m/10000 with 3000m+5000 asked:
    // fractions 0.75 and 0.5, std 0.125, score 87.
    #[test]
    fn fractions() {
        assert_eq!(balanced_resource_score(&[0.75, 0.5]), 87);
        assert_eq!(balanced_resource_score(&[0.5, 0.5]), 100);
        assert_eq!(balanced_resource_score(&[0.0, 1.0]), 50);
        // Three resources: 0.5, 0.5, 1.0 -> mean 2/3, std 0.2357 -> 76.
        assert_eq!(balanced_resource_score(&[0.5, 0.5, 1.0]), 76);
    }
}
