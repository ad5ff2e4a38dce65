//! TaintToleration (plugins/tainttoleration): NoSchedule/NoExecute taints must be
//! tolerated; untolerated PreferNoSchedule taints lower the score.

use crate::api::scheduling::tolerations_tolerate;
use crate::api::TaintEffect;
use crate::scheduler::framework::{NodeInfo, PodInfo, Status};

pub const NAME: &str = "TaintToleration";

/// `ErrReasonNotMatch` is formatted with the first untolerated taint.
pub fn untolerated_reason(key: &str, value: &str) -> String {
    format!("node(s) had untolerated taint {{{key}: {value}}}")
}

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let tols = &pod.pod.spec.tolerations;
    for t in &node.node.spec.taints {
        if matches!(t.effect, TaintEffect::NoSchedule | TaintEffect::NoExecute)
            && !tolerations_tolerate(tols, t)
        {
            return Err(Status::unresolvable(NAME, untolerated_reason(&t.key, &t.value)));
        }
    }
    Ok(())
}

/// Number of untolerated PreferNoSchedule taints (normalized in reverse).
pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let tols: Vec<_> = pod
        .pod
        .spec
        .tolerations
        .iter()
        .filter(|t| t.effect.is_none_or(|e| e == TaintEffect::PreferNoSchedule))
        .cloned()
        .collect();
    node.node
        .spec
        .taints
        .iter()
        .filter(|t| t.effect == TaintEffect::PreferNoSchedule && !tolerations_tolerate(&tols, t))
        .count() as i64
}
