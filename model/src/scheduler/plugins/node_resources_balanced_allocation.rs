//! NodeResourcesBalancedAllocation (plugins/noderesources/balanced_allocation.go): favours
//! nodes whose cpu and memory fractions stay close: (1 - std) * 100.

use crate::scheduler::framework::{NodeInfo, PodInfo};

pub const NAME: &str = "NodeResourcesBalancedAllocation";

pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let frac = |req: i64, cap: i64| if cap == 0 { 0.0 } else { (req as f64 / cap as f64).min(1.0) };
    let cpu = frac(node.non_zero_requested.milli_cpu + pod.non_zero.milli_cpu, node.allocatable.milli_cpu);
    let mem =
        frac(node.non_zero_requested.memory_bytes + pod.non_zero.memory_bytes, node.allocatable.memory_bytes);
    // With two resources the standard deviation is |a - b| / 2.
    let std = (cpu - mem).abs() / 2.0;
    ((1.0 - std) * 100.0) as i64
}
