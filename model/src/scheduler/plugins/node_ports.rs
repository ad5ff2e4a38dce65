//! NodePorts (plugins/nodeports): a host port can be used once per node (per IP and
//! protocol; 0.0.0.0 conflicts with every IP).

use crate::scheduler::framework::{NodeInfo, PodInfo, Status};

pub const NAME: &str = "NodePorts";
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    for (ip, proto, port) in &pod.host_ports {
        let conflict = node.used_ports.iter().any(|(uip, uproto, uport)| {
            uport == port && uproto == proto && (uip == ip || uip == "0.0.0.0" || ip == "0.0.0.0")
        });
        if conflict {
            return Err(Status::unschedulable(NAME, vec![ERR_REASON.into()]));
        }
    }
    Ok(())
}
