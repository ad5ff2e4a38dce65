//! The scheduling framework's shapes (pkg/scheduler/framework): statuses, the per-pod
//! facts computed once per attempt, and NodeInfo, the per-node aggregate kept
//! incrementally as pods are assumed, bound and deleted.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::api::{Node, Pod, Resources};

/// `framework.Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Code {
    Success,
    /// Preemption may help.
    Unschedulable,
    /// Preemption cannot help on this node.
    UnschedulableAndUnresolvable,
}

/// A filter's verdict with its reasons (one, or two for NodeResourcesFit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    pub plugin: &'static str,
}

impl Status {
    pub fn unschedulable(plugin: &'static str, reasons: Vec<String>) -> Self {
        Status { code: Code::Unschedulable, reasons, plugin }
    }
    pub fn unresolvable(plugin: &'static str, reason: impl Into<String>) -> Self {
        Status { code: Code::UnschedulableAndUnresolvable, reasons: vec![reason.into()], plugin }
    }
}

/// schedutil.DefaultMilliCPURequest: what scoring assumes for a container without requests.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// schedutil.DefaultMemoryRequest (200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// What the plugins need of the pod, computed once per scheduling attempt.
#[derive(Clone, Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub requests: Resources,
    /// Requests with upstream's non-zero defaults, for scoring.
    pub non_zero: Resources,
    pub host_ports: Vec<(String, String, i32)>,
    pub priority: i32,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Self {
        let requests = pod.requests();
        let non_zero = non_zero_requests(&pod);
        let host_ports =
            pod.host_ports().map(|(ip, proto, port)| (ip.to_string(), proto.to_string(), port)).collect();
        let priority = pod.spec.priority.unwrap_or(0);
        PodInfo { pod, requests, non_zero, host_ports, priority }
    }
}

/// `schedutil.GetNonzeroRequests` summed over containers.
pub fn non_zero_requests(pod: &Pod) -> Resources {
    let mut r = Resources::default();
    for c in &pod.spec.containers {
        let req = c.resources.effective_requests();
        let has_cpu = c.resources.requests.contains_key("cpu") || c.resources.limits.contains_key("cpu");
        let has_mem =
            c.resources.requests.contains_key("memory") || c.resources.limits.contains_key("memory");
        r.milli_cpu += if has_cpu { req.milli_cpu } else { DEFAULT_MILLI_CPU_REQUEST };
        r.memory_bytes += if has_mem { req.memory_bytes } else { DEFAULT_MEMORY_REQUEST };
    }
    r
}

/// `framework.NodeInfo`: the node and what its pods use.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub allocatable: Resources,
    pub requested: Resources,
    pub non_zero_requested: Resources,
    pub used_ports: BTreeSet<(String, String, i32)>,
    /// (priority, namespace/name) of the pods on it, for preemption.
    pub pods: BTreeSet<(i32, String)>,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> Self {
        let allocatable = Resources::from_list(&node.status.allocatable);
        NodeInfo {
            node,
            allocatable,
            requested: Resources::default(),
            non_zero_requested: Resources::default(),
            used_ports: BTreeSet::new(),
            pods: BTreeSet::new(),
        }
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        self.allocatable = Resources::from_list(&node.status.allocatable);
        self.node = node;
    }

    pub fn add_pod(&mut self, p: &PodInfo) {
        self.requested.add(&p.requests);
        self.requested.pods += 1;
        self.non_zero_requested.add(&p.non_zero);
        self.used_ports.extend(p.host_ports.iter().cloned());
        self.pods.insert((p.priority, pod_name(&p.pod)));
    }

    pub fn remove_pod(&mut self, p: &PodInfo) {
        self.requested.sub(&p.requests);
        self.requested.pods -= 1;
        self.non_zero_requested.sub(&p.non_zero);
        for port in &p.host_ports {
            self.used_ports.remove(port);
        }
        self.pods.remove(&(p.priority, pod_name(&p.pod)));
    }

    pub fn name(&self) -> &str {
        &self.node.metadata.name
    }
}

pub fn pod_name(p: &Pod) -> String {
    format!("{}/{}", p.metadata.namespace, p.metadata.name)
}
