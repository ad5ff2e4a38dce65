//! NodePorts (plugins/nodeports): a host port can be used once per node (per IP and
//! protocol; 0.0.0.0 conflicts with every IP).

use crate::scheduler::framework::{NodeInfo, PodInfo, Status};
use crate::scheduler::queue::{ClusterEvent, Hint};

pub const NAME: &str = "NodePorts";
/// `ErrReason`.
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

/// `HostPortInfo.CheckConflict`.
fn conflicts(want: &(String, String, i32), used: &(String, String, i32)) -> bool {
    let (ip, proto, port) = want;
    let (uip, uproto, uport) = used;
    *port > 0 && uport == port && uproto == proto && (uip == ip || uip == "0.0.0.0" || ip == "0.0.0.0")
}

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    if pod.host_ports.iter().any(|w| node.used_ports.iter().any(|u| conflicts(w, u))) {
        return Err(Status::unschedulable(NAME, vec![ERR_REASON.into()]));
    }
    Ok(())
}

/// EventsToRegister: assigned Pod Delete (queued when the deleted pod held a port the
/// pod wants) and Node Add.
pub fn queueing_hint(pod: &PodInfo, ev: &ClusterEvent) -> Hint {
    match ev {
        ClusterEvent::AssignedPodDelete(gone) => {
            if gone.host_ports.iter().any(|u| pod.host_ports.iter().any(|w| conflicts(w, u))) {
                Hint::Queue
            } else {
                Hint::QueueSkip
            }
        }
        ClusterEvent::NodeAdd(_) => Hint::Queue,
        _ => Hint::QueueSkip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::pod::ContainerPort;
    use crate::api::{Container, Node, Pod};
    use std::sync::Arc;

    fn pod(name: &str, ports: &[(&str, &str, i32)]) -> Arc<PodInfo> {
        let mut p = Pod::default();
        p.metadata.name = name.into();
        let c = Container {
            name: "c".into(),
            ports: ports
                .iter()
                .map(|(proto, ip, port)| ContainerPort {
                    container_port: *port,
                    host_port: *port,
                    host_ip: ip.to_string(),
                    protocol: proto.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        Arc::make_mut(&mut p.spec).containers.push(c);
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    /// (protocol, host IP, port).
    type Ports = Vec<(&'static str, &'static str, i32)>;

    // nodeports/node_ports_test.go TestNodePorts.
    #[test]
    fn table() {
        let cases: Vec<(&str, Ports, Ports, bool)> = vec![
            ("nothing running", vec![], vec![], true),
            ("other port", vec![("UDP", "127.0.0.1", 8080)], vec![("UDP", "127.0.0.1", 9090)], true),
            ("same udp port", vec![("UDP", "127.0.0.1", 8080)], vec![("UDP", "127.0.0.1", 8080)], false),
            ("same tcp port", vec![("TCP", "127.0.0.1", 8080)], vec![("TCP", "127.0.0.1", 8080)], false),
            ("different host ip", vec![("TCP", "127.0.0.1", 8080)], vec![("TCP", "127.0.0.2", 8080)], true),
            ("different protocol", vec![("UDP", "127.0.0.1", 8080)], vec![("TCP", "127.0.0.1", 8080)], true),
            (
                "second udp port conflict",
                vec![("UDP", "127.0.0.1", 8000), ("UDP", "127.0.0.1", 8080)],
                vec![("UDP", "127.0.0.1", 8080)],
                false,
            ),
            (
                "first tcp port conflict",
                vec![("TCP", "127.0.0.1", 8001), ("UDP", "127.0.0.1", 8080)],
                vec![("TCP", "127.0.0.1", 8001), ("UDP", "127.0.0.1", 8081)],
                false,
            ),
            (
                "first tcp port conflict due to 0.0.0.0 hostIP",
                vec![("TCP", "0.0.0.0", 8001)],
                vec![("TCP", "127.0.0.1", 8001)],
                false,
            ),
            (
                "TCP hostPort conflict due to 0.0.0.0 hostIP",
                vec![("TCP", "10.0.10.10", 8001), ("TCP", "0.0.0.0", 8001)],
                vec![("TCP", "127.0.0.1", 8001)],
                false,
            ),
            (
                "second tcp port conflict to 0.0.0.0 hostIP",
                vec![("TCP", "127.0.0.1", 8001)],
                vec![("TCP", "0.0.0.0", 8001)],
                false,
            ),
            (
                "second different protocol",
                vec![("UDP", "127.0.0.1", 8001)],
                vec![("TCP", "0.0.0.0", 8001)],
                true,
            ),
            (
                "UDP hostPort conflict due to 0.0.0.0 hostIP",
                vec![("UDP", "127.0.0.1", 8001)],
                vec![("TCP", "0.0.0.0", 8001), ("UDP", "0.0.0.0", 8001)],
                false,
            ),
        ];
        for (name, want, existing, fits) in cases {
            let mut n = NodeInfo::new(Arc::new(Node::default()));
            n.add_pod(&pod("existing", &existing));
            let got = filter(&pod("p", &want), &n);
            assert_eq!(got.is_ok(), fits, "{name}");
            if let Err(s) = got {
                assert_eq!(s, Status::unschedulable(NAME, vec![ERR_REASON.into()]));
            }
        }
    }
}
