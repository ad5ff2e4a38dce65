//! DaemonSet pods are never evicted for the node's unreachable or not-ready taints: the
//! DaemonSet controller gives them NoExecute tolerations for node.kubernetes.io/unreachable
//! and node.kubernetes.io/not-ready without tolerationSeconds
//! (pkg/controller/daemon/util AddOrUpdateDaemonPodTolerations), so the taint eviction
//! controller never marks them for deletion.

use kubesim_model::api::{Kind, ObjectKey};
use kubesim_model::client::Cache;
use kubesim_model::time::SimTime;
use kubesim_sim::TraceRecord;

use super::{Safety, Violation};

pub struct DaemonSetPodsStay;

impl Safety for DaemonSetPodsStay {
    fn observe(&mut self, rec: &TraceRecord, state: &Cache, out: &mut Vec<Violation>) {
        let TraceRecord::Write { t, verb, object, .. } = rec else { return };
        let Some(e) = object.as_event() else { return };
        if verb != "create"
            || e.reason != "TaintManagerEviction"
            || !e.message.starts_with("Marking for deletion")
        {
            return;
        }
        let io = &e.involved_object;
        let key = ObjectKey::new(Kind::Pod, io.namespace.clone(), io.name.clone());
        let Some(pod) = state.get(&key).and_then(|o| o.as_pod()) else { return };
        if pod.metadata.owner_references.iter().any(|r| r.kind == "DaemonSet") {
            out.push(Violation {
                invariant: "daemonset-pods-not-evicted",
                t: SimTime(*t),
                detail: format!(
                    "DaemonSet pod {}/{} marked for deletion by the taint eviction controller",
                    io.namespace, io.name
                ),
            });
        }
    }
}
