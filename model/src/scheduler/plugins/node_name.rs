//! NodeName (plugins/nodename): a pod naming a node in spec.nodeName fits only there.

use crate::scheduler::framework::{NodeInfo, PodInfo, Status};
use crate::scheduler::queue::{ClusterEvent, Hint};

pub const NAME: &str = "NodeName";
/// `ErrReason`.
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let want = &pod.pod.spec.node_name;
    if want.is_empty() || want == node.name() {
        Ok(())
    } else {
        Err(Status::unresolvable(NAME, ERR_REASON))
    }
}

/// EventsToRegister: Node Add; queued when the added node is the one named.
pub fn queueing_hint(pod: &PodInfo, ev: &ClusterEvent) -> Hint {
    match ev {
        ClusterEvent::NodeAdd(n) if pod.pod.spec.node_name == n.metadata.name => Hint::Queue,
        _ => Hint::QueueSkip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Node, Pod};
    use std::sync::Arc;

    // nodename/node_name_test.go TestNodeName.
    #[test]
    fn table() {
        for (name, want, node, fits) in [
            ("no host specified", "", "foo", true),
            ("host matches", "foo", "foo", true),
            ("host doesn't match", "bar", "foo", false),
        ] {
            let mut p = Pod::default();
            Arc::make_mut(&mut p.spec).node_name = want.into();
            let mut n = Node::default();
            n.metadata.name = node.into();
            let got = filter(&PodInfo::new(Arc::new(p)), &NodeInfo::new(Arc::new(n)));
            assert_eq!(got.is_ok(), fits, "{name}");
            if let Err(s) = got {
                assert_eq!(s.reasons, vec![ERR_REASON.to_string()]);
            }
        }
    }
}
