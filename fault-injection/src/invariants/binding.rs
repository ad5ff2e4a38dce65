//! Binding invariants (kube-scheduler and the API server's binding subresource):
//!
//! - a pod's `spec.nodeName` never changes once set (pkg/registry/core/pod/storage
//!   `BindingREST`: "pod %v is already assigned to node %q"; ValidatePodUpdate forbids
//!   changing spec.nodeName);
//! - at bind time the node's NoSchedule / NoExecute taints are tolerated (the
//!   TaintToleration filter) and its allocatable covers the pod's requests with the node's
//!   other non-terminated pods (NodeResourcesFit).

use std::collections::BTreeMap;

use kubesim_model::api::{Kind, PodPhase, Resources, TaintEffect};
use kubesim_model::client::Cache;
use kubesim_model::time::SimTime;
use kubesim_sim::TraceRecord;

use super::{Safety, Violation};

#[derive(Default)]
pub struct NodeNameImmutable {
    /// Pod uid -> the node it was bound to.
    bound: BTreeMap<String, String>,
}

impl Safety for NodeNameImmutable {
    fn observe(&mut self, rec: &TraceRecord, _state: &Cache, out: &mut Vec<Violation>) {
        let TraceRecord::Write { t, verb, object, .. } = rec else { return };
        let Some(pod) = object.as_pod() else { return };
        if verb == "delete" {
            self.bound.remove(&pod.metadata.uid);
            return;
        }
        if pod.spec.node_name.is_empty() {
            if let Some(was) = self.bound.get(&pod.metadata.uid) {
                out.push(Violation {
                    invariant: "nodeName-immutable",
                    t: SimTime(*t),
                    detail: format!(
                        "pod {}/{} lost its nodeName {was}",
                        pod.metadata.namespace, pod.metadata.name
                    ),
                });
            }
            return;
        }
        match self.bound.get(&pod.metadata.uid) {
            Some(was) if *was != pod.spec.node_name => out.push(Violation {
                invariant: "nodeName-immutable",
                t: SimTime(*t),
                detail: format!(
                    "pod {}/{} moved from {was} to {}",
                    pod.metadata.namespace, pod.metadata.name, pod.spec.node_name
                ),
            }),
            Some(_) => {}
            None => {
                self.bound.insert(pod.metadata.uid.clone(), pod.spec.node_name.clone());
            }
        }
    }
}

/// Checks each binding (a pod's first write with a nodeName) against the node as
/// committed then. Pods created with a nodeName (no scheduler) are the kubelet's to admit
/// and are not checked.
#[derive(Default)]
pub struct BindFits {
    seen_unbound: BTreeMap<String, ()>,
    bound: BTreeMap<String, ()>,
}

impl Safety for BindFits {
    fn observe(&mut self, rec: &TraceRecord, state: &Cache, out: &mut Vec<Violation>) {
        let TraceRecord::Write { t, verb, object, .. } = rec else { return };
        let Some(pod) = object.as_pod() else { return };
        let uid = &pod.metadata.uid;
        if verb == "delete" {
            self.seen_unbound.remove(uid);
            self.bound.remove(uid);
            return;
        }
        if pod.spec.node_name.is_empty() {
            self.seen_unbound.insert(uid.clone(), ());
            return;
        }
        if self.bound.insert(uid.clone(), ()).is_some() || self.seen_unbound.remove(uid).is_none() {
            return;
        }
        let node_key = kubesim_model::api::ObjectKey::new(Kind::Node, "", pod.spec.node_name.clone());
        let Some(node) = state.get(&node_key).and_then(|o| o.as_node()) else { return };
        let name = format!("{}/{}", pod.metadata.namespace, pod.metadata.name);
        for taint in &node.spec.taints {
            if !matches!(taint.effect, TaintEffect::NoSchedule | TaintEffect::NoExecute) {
                continue;
            }
            if !pod.spec.tolerations.iter().any(|tol| tol.tolerates(taint)) {
                out.push(Violation {
                    invariant: "bind-tolerates-taints",
                    t: SimTime(*t),
                    detail: format!(
                        "pod {name} bound to {} with untolerated taint {}:{}",
                        node.metadata.name,
                        taint.key,
                        taint.effect.as_str()
                    ),
                });
                return;
            }
        }
        let alloc = Resources::from_list(&node.status.allocatable);
        let mut used = pod.requests();
        for other in state.list(Kind::Pod).filter_map(|o| o.as_pod()) {
            let terminated = matches!(other.phase(), PodPhase::Succeeded | PodPhase::Failed);
            if other.metadata.uid != *uid && other.spec.node_name == pod.spec.node_name && !terminated {
                used.add(&other.requests());
            }
        }
        let over =
            [("cpu", used.milli_cpu, alloc.milli_cpu), ("memory", used.memory_bytes, alloc.memory_bytes)]
                .into_iter()
                .find(|(_, u, a)| *a > 0 && u > a);
        if let Some((what, u, a)) = over {
            out.push(Violation {
                invariant: "bind-fits-allocatable",
                t: SimTime(*t),
                detail: format!(
                    "pod {name} bound to {}: {what} requests {u} over allocatable {a}",
                    node.metadata.name
                ),
            });
        }
    }
}
