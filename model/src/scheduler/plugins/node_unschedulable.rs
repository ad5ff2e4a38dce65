//! NodeUnschedulable (plugins/nodeunschedulable): cordoned nodes take only pods that
//! tolerate the unschedulable taint.

use crate::api::scheduling::tolerations_tolerate;
use crate::api::{Taint, TaintEffect};
use crate::scheduler::framework::{NodeInfo, PodInfo, Status};

pub const NAME: &str = "NodeUnschedulable";
pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// v1.TaintNodeUnschedulable.
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    if !node.node.spec.unschedulable {
        return Ok(());
    }
    let taint = Taint {
        key: TAINT_NODE_UNSCHEDULABLE.into(),
        value: String::new(),
        effect: TaintEffect::NoSchedule,
        time_added: None,
    };
    if tolerations_tolerate(&pod.pod.spec.tolerations, &taint) {
        return Ok(());
    }
    Err(Status::unresolvable(NAME, ERR_REASON_UNSCHEDULABLE))
}
