//! NodeResourcesFit (plugins/noderesources/fit.go): requests must fit allocatable;
//! scoring with the LeastAllocated strategy (cpu and memory, weight 1 each).

use crate::scheduler::framework::{NodeInfo, PodInfo, Status};

pub const NAME: &str = "NodeResourcesFit";
pub const ERR_REASON_TOO_MANY_PODS: &str = "Too many pods";
pub const ERR_REASON_INSUFFICIENT_CPU: &str = "Insufficient cpu";
pub const ERR_REASON_INSUFFICIENT_MEMORY: &str = "Insufficient memory";
pub const ERR_REASON_INSUFFICIENT_EPHEMERAL_STORAGE: &str = "Insufficient ephemeral-storage";

/// `fitsRequest`: every insufficient resource is a reason (so up to several).
pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let (a, u, r) = (&node.allocatable, &node.requested, &pod.requests);
    let mut reasons = Vec::new();
    if u.pods + 1 > a.pods {
        reasons.push(ERR_REASON_TOO_MANY_PODS.to_string());
    }
    if r.milli_cpu > 0 && r.milli_cpu > a.milli_cpu - u.milli_cpu {
        reasons.push(ERR_REASON_INSUFFICIENT_CPU.to_string());
    }
    if r.memory_bytes > 0 && r.memory_bytes > a.memory_bytes - u.memory_bytes {
        reasons.push(ERR_REASON_INSUFFICIENT_MEMORY.to_string());
    }
    if r.ephemeral_storage_bytes > 0
        && r.ephemeral_storage_bytes > a.ephemeral_storage_bytes - u.ephemeral_storage_bytes
    {
        reasons.push(ERR_REASON_INSUFFICIENT_EPHEMERAL_STORAGE.to_string());
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Status::unschedulable(NAME, reasons))
    }
}

/// `leastResourceScorer`: mean over cpu and memory of (allocatable - requested) * 100 /
/// allocatable, counting this pod with non-zero defaults.
pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let least = |req: i64, cap: i64| if cap == 0 || req > cap { 0 } else { (cap - req) * 100 / cap };
    let cpu = least(node.non_zero_requested.milli_cpu + pod.non_zero.milli_cpu, node.allocatable.milli_cpu);
    let mem = least(
        node.non_zero_requested.memory_bytes + pod.non_zero.memory_bytes,
        node.allocatable.memory_bytes,
    );
    (cpu + mem) / 2
}
