//! NodeUnschedulable (plugins/nodeunschedulable): cordoned nodes take only pods that
//! tolerate the unschedulable taint.

use crate::api::scheduling::tolerations_tolerate;
use crate::api::{Taint, TaintEffect};
use crate::scheduler::framework::{NodeInfo, PodInfo, Status};
use crate::scheduler::queue::{ClusterEvent, Hint};

pub const NAME: &str = "NodeUnschedulable";
/// `ErrReasonUnschedulable`.
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

/// EventsToRegister: Node Add|UpdateNodeTaint; isSchedulableAfterNodeChange queues when a
/// node is added schedulable or an update uncordons it.
pub fn queueing_hint(_pod: &PodInfo, ev: &ClusterEvent) -> Hint {
    match ev {
        ClusterEvent::NodeAdd(n) if !n.spec.unschedulable => Hint::Queue,
        ClusterEvent::NodeUpdate { old, new, change } if change.taint => {
            if old.spec.unschedulable && !new.spec.unschedulable {
                Hint::Queue
            } else {
                Hint::QueueSkip
            }
        }
        _ => Hint::QueueSkip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Node, Pod, Toleration, TolerationOperator};
    use std::sync::Arc;

    // nodeunschedulable/node_unschedulable_test.go TestNodeUnschedulable.
    #[test]
    fn table() {
        let tolerating = Toleration {
            key: TAINT_NODE_UNSCHEDULABLE.into(),
            operator: Some(TolerationOperator::Exists),
            effect: Some(TaintEffect::NoSchedule),
            ..Default::default()
        };
        let cases: &[(&str, bool, Vec<Toleration>, bool)] = &[
            (
                "Does not schedule pod to unschedulable node (node.spec.unschedulable==true)",
                true,
                vec![],
                false,
            ),
            ("Schedule pod to normal node", false, vec![], true),
            ("Schedule pod with toleration to unschedulable node", true, vec![tolerating.clone()], true),
        ];
        for (name, unschedulable, tolerations, fits) in cases {
            let mut n = Node::default();
            n.spec.unschedulable = *unschedulable;
            let mut p = Pod::default();
            Arc::make_mut(&mut p.spec).tolerations = tolerations.clone();
            let got = filter(&PodInfo::new(Arc::new(p)), &NodeInfo::new(Arc::new(n)));
            assert_eq!(got.is_ok(), *fits, "{name}");
            if let Err(s) = got {
                assert_eq!(s, Status::unresolvable(NAME, ERR_REASON_UNSCHEDULABLE), "{name}");
            }
        }
    }
}
