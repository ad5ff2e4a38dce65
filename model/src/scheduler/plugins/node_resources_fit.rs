//! NodeResourcesFit (plugins/noderesources/fit.go, v1.33): the pod's requests (cpu,
//! memory, ephemeral-storage, extended resources such as `nvidia.com/gpu`, and one pod
//! slot) must fit what the node's pods leave of its allocatable. A request larger than
//! the node's whole allocatable is UnschedulableAndUnresolvable: no preemption can make
//! room. Scoring follows the profile's strategy (LeastAllocated by default,
//! MostAllocated, RequestedToCapacityRatio) over its resources and weights, counting the
//! pods' non-zero requests for cpu and memory (least_allocated.go, most_allocated.go,
//! requested_to_capacity_ratio.go, resource_allocation.go).

use crate::scheduler::config::{FitArgs, ScoringStrategyType};
use crate::scheduler::framework::{NodeInfo, PodInfo, Status};
use crate::scheduler::queue::{ClusterEvent, Hint};

use super::MAX_NODE_SCORE;

pub const NAME: &str = "NodeResourcesFit";
pub const ERR_REASON_TOO_MANY_PODS: &str = "Too many pods";
pub const ERR_REASON_INSUFFICIENT_CPU: &str = "Insufficient cpu";
pub const ERR_REASON_INSUFFICIENT_MEMORY: &str = "Insufficient memory";
pub const ERR_REASON_INSUFFICIENT_EPHEMERAL_STORAGE: &str = "Insufficient ephemeral-storage";
/// Extended resources: `Insufficient %v` with the resource name.
pub fn insufficient(resource: &str) -> String {
    format!("Insufficient {resource}")
}
/// requested_to_capacity_ratio.go maxUtilization.
const MAX_UTILIZATION: i64 = 100;

/// One insufficient resource (`InsufficientResource`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsufficientResource {
    pub resource: String,
    pub reason: String,
    pub requested: i64,
    pub used: i64,
    pub capacity: i64,
    /// The request exceeds the node's whole allocatable.
    pub unresolvable: bool,
}

/// `v1helper.IsExtendedResourceName` and the ignored resource groups (`group/...`).
fn ignored(args: &FitArgs, name: &str) -> bool {
    let extended =
        name.contains('/') && !name.starts_with("kubernetes.io/") && !name.starts_with("requests.");
    extended
        && (args.ignored_resources.contains(name)
            || name.split_once('/').is_some_and(|(g, _)| args.ignored_resource_groups.contains(g)))
}

/// `fitsRequest`.
pub fn fits_request(args: &FitArgs, pod: &PodInfo, node: &NodeInfo) -> Vec<InsufficientResource> {
    let mut out = Vec::new();
    let (a, u, r) = (&node.allocatable, &node.requested, &pod.requests);
    if node.pods.len() as i64 + 1 > a.pods {
        out.push(InsufficientResource {
            resource: "pods".into(),
            reason: ERR_REASON_TOO_MANY_PODS.into(),
            requested: 1,
            used: node.pods.len() as i64,
            capacity: a.pods,
            unresolvable: false,
        });
    }
    if r.milli_cpu == 0
        && r.memory_bytes == 0
        && r.ephemeral_storage_bytes == 0
        && pod.scalar_requests.is_empty()
    {
        return out;
    }
    let mut check = |resource: &str, reason: String, req: i64, alloc: i64, used: i64| {
        if req > 0 && req > alloc - used {
            out.push(InsufficientResource {
                resource: resource.into(),
                reason,
                requested: req,
                used,
                capacity: alloc,
                unresolvable: req > alloc,
            });
        }
    };
    check("cpu", ERR_REASON_INSUFFICIENT_CPU.into(), r.milli_cpu, a.milli_cpu, u.milli_cpu);
    check("memory", ERR_REASON_INSUFFICIENT_MEMORY.into(), r.memory_bytes, a.memory_bytes, u.memory_bytes);
    check(
        "ephemeral-storage",
        ERR_REASON_INSUFFICIENT_EPHEMERAL_STORAGE.into(),
        r.ephemeral_storage_bytes,
        a.ephemeral_storage_bytes,
        u.ephemeral_storage_bytes,
    );
    for (name, q) in &pod.scalar_requests {
        if ignored(args, name) {
            continue;
        }
        let alloc = node.allocatable_scalar.get(name).copied().unwrap_or(0);
        let used = node.requested_scalar.get(name).copied().unwrap_or(0);
        check(name, insufficient(name), *q, alloc, used);
    }
    out
}

pub fn filter(args: &FitArgs, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let insufficient = fits_request(args, pod, node);
    if insufficient.is_empty() {
        return Ok(());
    }
    let unresolvable = insufficient.iter().any(|i| i.unresolvable);
    let reasons = insufficient.into_iter().map(|i| i.reason).collect();
    let mut s = Status::unschedulable(NAME, reasons);
    if unresolvable {
        s.code = crate::scheduler::framework::Code::UnschedulableAndUnresolvable;
    }
    Err(s)
}

/// PreScore: the pod's requests per scored resource (calculatePodResourceRequestList),
/// cpu and memory with the non-zero defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct PreScoreState {
    pub pod_requests: Vec<i64>,
}

pub fn pod_request(pod: &PodInfo, resource: &str, non_zero: bool) -> i64 {
    let r = if non_zero { &pod.non_zero } else { &pod.requests };
    match resource {
        "cpu" => r.milli_cpu,
        "memory" => r.memory_bytes,
        "ephemeral-storage" => pod.requests.ephemeral_storage_bytes,
        other => pod.scalar_requests.get(other).copied().unwrap_or(0),
    }
}

pub fn pre_score(args: &FitArgs, pod: &PodInfo) -> PreScoreState {
    PreScoreState { pod_requests: args.resources.iter().map(|r| pod_request(pod, &r.name, true)).collect() }
}

/// `calculateResourceAllocatableRequest`: (allocatable, requested including the pod);
/// (0, 0) leaves the resource out of the score.
pub fn allocatable_and_requested(
    node: &NodeInfo,
    resource: &str,
    pod_request: i64,
    use_requested: bool,
) -> (i64, i64) {
    let used = if use_requested { &node.requested } else { &node.non_zero_requested };
    match resource {
        "cpu" => (node.allocatable.milli_cpu, used.milli_cpu + pod_request),
        "memory" => (node.allocatable.memory_bytes, used.memory_bytes + pod_request),
        "ephemeral-storage" => {
            (node.allocatable.ephemeral_storage_bytes, node.requested.ephemeral_storage_bytes + pod_request)
        }
        other => {
            // An extended resource the pod does not request is not scored.
            if pod_request == 0 {
                return (0, 0);
            }
            match node.allocatable_scalar.get(other) {
                Some(a) => (*a, node.requested_scalar.get(other).copied().unwrap_or(0) + pod_request),
                None => (0, 0),
            }
        }
    }
}

pub fn score(args: &FitArgs, state: &PreScoreState, node: &NodeInfo) -> i64 {
    let mut requested = Vec::with_capacity(args.resources.len());
    let mut allocatable = Vec::with_capacity(args.resources.len());
    for (i, r) in args.resources.iter().enumerate() {
        let (a, q) = allocatable_and_requested(node, &r.name, state.pod_requests[i], false);
        requested.push(if a == 0 { 0 } else { q });
        allocatable.push(a);
    }
    let weights: Vec<i64> = args.resources.iter().map(|r| r.weight).collect();
    match args.strategy {
        ScoringStrategyType::LeastAllocated => {
            weighted(&requested, &allocatable, &weights, least_requested_score)
        }
        ScoringStrategyType::MostAllocated => {
            weighted(&requested, &allocatable, &weights, most_requested_score)
        }
        ScoringStrategyType::RequestedToCapacityRatio => {
            requested_to_capacity_ratio(&args.shape, &requested, &allocatable, &weights)
        }
    }
}

/// leastResourceScorer / mostResourceScorer: the weighted mean of per-resource scores
/// over resources the node has.
fn weighted(requested: &[i64], allocatable: &[i64], weights: &[i64], f: fn(i64, i64) -> i64) -> i64 {
    let (mut score, mut weight_sum) = (0, 0);
    for i in 0..requested.len() {
        if allocatable[i] == 0 {
            continue;
        }
        score += f(requested[i], allocatable[i]) * weights[i];
        weight_sum += weights[i];
    }
    if weight_sum == 0 {
        0
    } else {
        score / weight_sum
    }
}

/// `leastRequestedScore`: (capacity - requested) * 100 / capacity.
pub fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// `mostRequestedScore`: requested * 100 / capacity, requested capped at capacity (pods
/// without requests count the non-zero defaults).
pub fn most_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    requested.min(capacity) * MAX_NODE_SCORE / capacity
}

/// helper.BuildBrokenLinearFunction over (utilization, score) points.
pub fn broken_linear(shape: &[(i64, i64)], p: i64) -> i64 {
    for i in 0..shape.len() {
        if p <= shape[i].0 {
            if i == 0 {
                return shape[0].1;
            }
            let (u0, s0) = shape[i - 1];
            let (u1, s1) = shape[i];
            return s0 + (s1 - s0) * (p - u0) / (u1 - u0);
        }
    }
    shape.last().map_or(0, |s| s.1)
}

/// `buildRequestedToCapacityRatioScorerFunction`: resources scoring 0 are left out of the
/// weighted mean, which is rounded.
fn requested_to_capacity_ratio(
    shape: &[(i64, i64)],
    requested: &[i64],
    allocatable: &[i64],
    weights: &[i64],
) -> i64 {
    let (mut score, mut weight_sum) = (0, 0);
    for i in 0..requested.len() {
        if allocatable[i] == 0 {
            continue;
        }
        let s = if requested[i] > allocatable[i] {
            broken_linear(shape, MAX_UTILIZATION)
        } else {
            broken_linear(shape, requested[i] * MAX_UTILIZATION / allocatable[i])
        };
        if s > 0 {
            score += s * weights[i];
            weight_sum += weights[i];
        }
    }
    if weight_sum == 0 {
        0
    } else {
        (score as f64 / weight_sum as f64).round() as i64
    }
}

/// EventsToRegister: assigned Pod Delete (queued when the deleted pod held a resource the
/// pod requests) and Node Add|UpdateNodeAllocatable (queued when the node's allocatable
/// could hold the pod, and for updates only when it grew).
pub fn queueing_hint(args: &FitArgs, pod: &PodInfo, ev: &ClusterEvent) -> Hint {
    match ev {
        // Any deletion of a scheduled pod may free what the pod needs.
        ClusterEvent::AssignedPodDelete(_) => Hint::Queue,
        ClusterEvent::NodeAdd(n) => {
            if fits_allocatable(args, pod, n) {
                Hint::Queue
            } else {
                Hint::QueueSkip
            }
        }
        ClusterEvent::NodeUpdate { old, new, change } if change.allocatable => {
            if fits_allocatable(args, pod, new) && requested_resources_increased(pod, old, new) {
                Hint::Queue
            } else {
                Hint::QueueSkip
            }
        }
        _ => Hint::QueueSkip,
    }
}

/// `haveAnyRequestedResourcesIncreased`: pods, or a resource the pod requests, grew.
fn requested_resources_increased(pod: &PodInfo, old: &crate::api::Node, new: &crate::api::Node) -> bool {
    let (o, n) =
        (NodeInfo::new(std::sync::Arc::new(old.clone())), NodeInfo::new(std::sync::Arc::new(new.clone())));
    let r = &pod.requests;
    n.allocatable.pods > o.allocatable.pods
        || (r.milli_cpu > 0 && n.allocatable.milli_cpu > o.allocatable.milli_cpu)
        || (r.memory_bytes > 0 && n.allocatable.memory_bytes > o.allocatable.memory_bytes)
        || (r.ephemeral_storage_bytes > 0
            && n.allocatable.ephemeral_storage_bytes > o.allocatable.ephemeral_storage_bytes)
        || pod.scalar_requests.keys().any(|k| n.allocatable_scalar.get(k) > o.allocatable_scalar.get(k))
}

/// `isFit`: the pod fits an empty node with this allocatable.
fn fits_allocatable(args: &FitArgs, pod: &PodInfo, node: &std::sync::Arc<crate::api::Node>) -> bool {
    let empty = NodeInfo::new(node.clone());
    fits_request(args, pod, &empty).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Container, Node, Pod, Quantity};
    use crate::scheduler::framework::Code;
    use std::sync::Arc;

    fn pod(reqs: &[(&str, &str)]) -> Arc<PodInfo> {
        let mut p = Pod::default();
        p.metadata.name = format!("p{}", reqs.len());
        let mut c = Container { name: "c".into(), ..Default::default() };
        for (k, v) in reqs {
            c.resources.requests.insert(k.to_string(), Quantity::parse(v).unwrap());
        }
        Arc::make_mut(&mut p.spec).containers.push(c);
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    fn node(alloc: &[(&str, &str)], used: &[&[(&str, &str)]]) -> NodeInfo {
        let mut n = Node::default();
        for (k, v) in alloc {
            n.status.allocatable.insert(k.to_string(), Quantity::parse(v).unwrap());
        }
        let mut info = NodeInfo::new(Arc::new(n));
        for (i, u) in used.iter().enumerate() {
            let mut p = (*pod(u)).clone();
            p.key = format!("default/used-{i}");
            info.add_pod(&Arc::new(p));
        }
        info
    }

    // noderesources/fit_test.go TestEnoughRequests (milli-cpu and memory in units of the
    // test's makeResources: cpu 10, memory 20, pods 32, nvidia.com/gpu-like extended 5).
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        Vec<&'static [(&'static str, &'static str)]>,
        Vec<&'static str>,
        Code,
    );

    #[test]
    fn filter_table() {
        let alloc: &[(&str, &str)] =
            &[("cpu", "10m"), ("memory", "20"), ("pods", "32"), ("example.com/aaa", "5")];
        let cases: Vec<Case> = vec![
            (
                "no resources requested always fits",
                vec![],
                vec![&[("cpu", "10m"), ("memory", "20")]],
                vec![],
                Code::Success,
            ),
            (
                "too many resources fails",
                vec![("cpu", "1m"), ("memory", "1")],
                vec![&[("cpu", "10m"), ("memory", "20")]],
                vec![ERR_REASON_INSUFFICIENT_CPU, ERR_REASON_INSUFFICIENT_MEMORY],
                Code::Unschedulable,
            ),
            (
                "both resources fit",
                vec![("cpu", "1m"), ("memory", "1")],
                vec![&[("cpu", "5m"), ("memory", "5")]],
                vec![],
                Code::Success,
            ),
            (
                "one resource memory fits",
                vec![("cpu", "2m"), ("memory", "1")],
                vec![&[("cpu", "9m"), ("memory", "5")]],
                vec![ERR_REASON_INSUFFICIENT_CPU],
                Code::Unschedulable,
            ),
            (
                "one resource cpu fits",
                vec![("cpu", "1m"), ("memory", "2")],
                vec![&[("cpu", "5m"), ("memory", "19")]],
                vec![ERR_REASON_INSUFFICIENT_MEMORY],
                Code::Unschedulable,
            ),
            (
                "equal edge case",
                vec![("cpu", "5m"), ("memory", "1")],
                vec![&[("cpu", "5m"), ("memory", "19")]],
                vec![],
                Code::Success,
            ),
            ("extended resource fits", vec![("example.com/aaa", "1")], vec![&[]], vec![], Code::Success),
            (
                "extended resource capacity enforced",
                vec![("example.com/aaa", "10")],
                vec![&[]],
                vec!["Insufficient example.com/aaa"],
                Code::UnschedulableAndUnresolvable,
            ),
            (
                "extended resource allocatable enforced",
                vec![("example.com/aaa", "1")],
                vec![&[("example.com/aaa", "5")]],
                vec!["Insufficient example.com/aaa"],
                Code::Unschedulable,
            ),
            (
                "extended resource missing on node",
                vec![("example.com/bbb", "1")],
                vec![&[]],
                vec!["Insufficient example.com/bbb"],
                Code::UnschedulableAndUnresolvable,
            ),
            (
                "request exceeds allocatable",
                vec![("cpu", "11m")],
                vec![&[]],
                vec![ERR_REASON_INSUFFICIENT_CPU],
                Code::UnschedulableAndUnresolvable,
            ),
        ];
        for (name, req, used, reasons, code) in cases {
            let got = filter(&FitArgs::default(), &pod(&req), &node(alloc, &used));
            match got {
                Ok(()) => assert_eq!(code, Code::Success, "{name}"),
                Err(s) => {
                    assert_eq!(s.code, code, "{name}");
                    assert_eq!(
                        s.reasons,
                        reasons.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                        "{name}"
                    );
                }
            }
        }
    }

    #[test]
    fn too_many_pods() {
        let n = node(&[("cpu", "10m"), ("memory", "20"), ("pods", "1")], &[&[("cpu", "1m")]]);
        let s = filter(&FitArgs::default(), &pod(&[("cpu", "1m")]), &n).unwrap_err();
        assert_eq!(s.reasons, vec![ERR_REASON_TOO_MANY_PODS.to_string()]);
        assert_eq!(s.code, Code::Unschedulable);
    }

    #[test]
    fn scorer_functions() {
        assert_eq!(least_requested_score(3000, 4000), 25);
        assert_eq!(least_requested_score(5000, 4000), 0);
        assert_eq!(most_requested_score(3000, 4000), 75);
        assert_eq!(most_requested_score(5000, 4000), 100);
        let shape = [(0, 100), (100, 0)];
        assert_eq!(broken_linear(&shape, 25), 75);
        assert_eq!(broken_linear(&[(10, 10), (50, 50)], 0), 10);
        assert_eq!(broken_linear(&[(10, 10), (50, 50)], 100), 50);
    }
}
