//! NodeAffinity (plugins/nodeaffinity): spec.nodeSelector and required node affinity
//! filter; preferred terms score by weight.

use crate::scheduler::framework::{NodeInfo, PodInfo, Status};

pub const NAME: &str = "NodeAffinity";
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let spec = &pod.pod.spec;
    let labels = &node.node.metadata.labels;
    let selector_ok = spec.node_selector.iter().all(|(k, v)| labels.get(k) == Some(v));
    let required_ok = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref())
        .is_none_or(|ns| ns.matches(node.name(), labels));
    if selector_ok && required_ok {
        Ok(())
    } else {
        Err(Status::unresolvable(NAME, ERR_REASON_POD))
    }
}

/// Sum of the weights of matching preferred terms.
pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let Some(na) = pod.pod.spec.affinity.as_ref().and_then(|a| a.node_affinity.as_ref()) else { return 0 };
    na.preferred_during_scheduling_ignored_during_execution
        .iter()
        .filter(|t| t.weight != 0 && t.preference.matches(node.name(), &node.node.metadata.labels))
        .map(|t| t.weight as i64)
        .sum()
}
