//! NodeName (plugins/nodename): a pod naming a node in spec.nodeName fits only there.

use crate::scheduler::framework::{NodeInfo, PodInfo, Status};

pub const NAME: &str = "NodeName";
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let want = &pod.pod.spec.node_name;
    if want.is_empty() || want == node.name() {
        Ok(())
    } else {
        Err(Status::unresolvable(NAME, ERR_REASON))
    }
}
