//! VolumeBinding (pkg/scheduler/framework/plugins/volumebinding, v1.33: volume_binding.go
//! and binder.go): the pod's PersistentVolumeClaims must be bound, or bindable on the node.
//!
//! - PreFilter classifies the claims as the binder's `GetPodVolumeClaims` does: fully
//!   bound (a volume name and `pv.kubernetes.io/bind-completed`), unbound with a
//!   WaitForFirstConsumer class (the scheduler's to bind), or unbound otherwise
//!   ("immediate": the PV controller's to bind, so the pod waits, unresolvable). A pod
//!   without claims is skipped; a missing or deleted claim rejects it.
//! - Filter is `FindPodVolumes` for one node: bound volumes' node affinity, then for the
//!   delayed claims a matching Available volume (smallest first) or dynamic provisioning
//!   by the claim's class (not `kubernetes.io/no-provisioner`, the node within the class's
//!   allowedTopologies). Storage capacity is only checked for CSI drivers publishing
//!   CSIStorageCapacity, which kubesim does not simulate, so storage is always sufficient.
//! - Reserve, PreBind and Unreserve are the scheduler's binding cycle
//!   (`Scheduler::bind`): [`find_pod_volumes`] gives the static bindings and the claims to
//!   provision; the scheduler writes them and polls every second until the claims are
//!   bound, for at most `bindTimeoutSeconds`.
//! - No Score: it needs the StorageCapacityScoring gate, alpha and off in v1.33.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::api::storage::volume_binding::{find_matching_volume, is_delay_binding};
use crate::api::storage::{
    ClaimPhase, PersistentVolume, PersistentVolumeClaim, ANN_BIND_COMPLETED, ANN_SELECTED_NODE,
    NO_PROVISIONER,
};
use crate::scheduler::framework::{NodeInfo, PodInfo, Status};
use crate::scheduler::queue::{ClusterEvent, Hint};

use super::Ctx;

/// names.VolumeBinding.
pub const NAME: &str = "VolumeBinding";

/// volume_binding.go ErrReasonBindConflict.
pub const ERR_REASON_BIND_CONFLICT: &str = "node(s) didn't find available persistent volumes to bind";
/// volume_binding.go ErrReasonNodeConflict.
pub const ERR_REASON_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
/// volume_binding.go ErrReasonPVNotExist.
pub const ERR_REASON_PV_NOT_EXIST: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
/// volume_binding.go PreFilter: immediate claims the PV controller has not bound yet.
pub const ERR_REASON_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";

/// VolumeBindingArgs.BindTimeoutSeconds default (pkg/scheduler/apis/config/v1
/// defaults.go): how long PreBind waits for the claims to be bound.
pub const DEFAULT_BIND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
/// binder.go BindPodVolumes: `wait.PollUntilContextTimeout(ctx, time.Second, ...)`.
pub const BIND_POLL_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// What PreFilter found: the pod's claims by binding state (podVolumeClaims).
#[derive(Clone, Debug, Default)]
pub struct PreFilterState {
    pub bound: Vec<Arc<PersistentVolumeClaim>>,
    /// Unbound claims whose class binds on the first consumer.
    pub delayed: Vec<Arc<PersistentVolumeClaim>>,
}

/// What binding the pod's volumes on a node takes (binder.go PodVolumes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodVolumes {
    /// Available volumes to pre-bind to claims: (volume, claim).
    pub static_bindings: Vec<(Arc<PersistentVolume>, Arc<PersistentVolumeClaim>)>,
    /// Claims to annotate with the selected node for their provisioner.
    pub dynamic_provisions: Vec<Arc<PersistentVolumeClaim>>,
}

impl PodVolumes {
    pub fn is_empty(&self) -> bool {
        self.static_bindings.is_empty() && self.dynamic_provisions.is_empty()
    }
}

/// binder.go isPVCFullyBound: a volume name and the controller's bind-completed annotation.
pub fn is_fully_bound(pvc: &PersistentVolumeClaim) -> bool {
    !pvc.spec.volume_name.is_empty() && pvc.metadata.annotations.contains_key(ANN_BIND_COMPLETED)
}

/// The claims the pod's volumes name (`ephemeral` volumes, whose claims the ephemeral
/// volume controller creates, are not simulated).
pub fn claim_names(pod: &PodInfo) -> impl Iterator<Item = &str> {
    crate::api::storage::volume_binding::pod_claims(&pod.pod.spec).map(|(_, c)| c)
}

/// The claim is one of the pod's: its namespace, a name its volumes give (the volume
/// plugins' PersistentVolumeClaim hints).
pub fn uses_claim(pod: &PodInfo, pvc: &PersistentVolumeClaim) -> bool {
    pvc.metadata.namespace == pod.pod.metadata.namespace && claim_names(pod).any(|c| c == pvc.metadata.name)
}

/// PreFilter: `Ok(None)` is Skip (no claims); an error rejects the pod on every node.
pub fn pre_filter(ctx: &Ctx, pod: &PodInfo) -> Result<Option<PreFilterState>, Status> {
    let ns = pod.pod.metadata.namespace.as_str();
    let mut claims = Vec::new();
    // podHasPVCs: every claim must exist, not be lost and not be terminating.
    for name in claim_names(pod) {
        let Some(pvc) = ctx.listers.pvc(ns, name) else {
            // The lister's NotFound error, as apierrors words it.
            return Err(Status::unresolvable(NAME, format!("persistentvolumeclaim \"{name}\" not found")));
        };
        if pvc.phase() == ClaimPhase::Lost {
            return Err(Status::unresolvable(
                NAME,
                format!(
                    "persistentvolumeclaim \"{name}\" bound to non-existent persistentvolume \"{}\"",
                    pvc.spec.volume_name
                ),
            ));
        }
        if pvc.metadata.deletion_timestamp.is_some() {
            return Err(Status::unresolvable(
                NAME,
                format!("persistentvolumeclaim \"{name}\" is being deleted"),
            ));
        }
        claims.push(pvc);
    }
    if claims.is_empty() {
        return Ok(None);
    }
    // GetPodVolumeClaims.
    let mut state = PreFilterState::default();
    let mut unbound_immediate = false;
    for pvc in claims {
        if is_fully_bound(&pvc) {
            state.bound.push(pvc);
            continue;
        }
        let delayed = is_delay_binding(&pvc, |c| ctx.listers.storage_classes.get(c).map(|c| &**c));
        // A pre-bound claim (a volume name, not yet bound) is treated as immediate.
        if delayed && pvc.spec.volume_name.is_empty() {
            state.delayed.push(pvc);
        } else {
            unbound_immediate = true;
        }
    }
    if unbound_immediate {
        return Err(Status::unresolvable(NAME, ERR_REASON_UNBOUND_IMMEDIATE));
    }
    Ok(Some(state))
}

/// Filter: the node's reasons from [`find_pod_volumes`], UnschedulableAndUnresolvable.
pub fn filter(state: &PreFilterState, ctx: &Ctx, node: &NodeInfo) -> Result<(), Status> {
    match find_pod_volumes(state, ctx, node) {
        Ok(_) => Ok(()),
        Err(reasons) => Err(Status {
            code: crate::scheduler::framework::Code::UnschedulableAndUnresolvable,
            reasons: reasons.into_iter().map(String::from).collect(),
            plugin: NAME,
        }),
    }
}

/// binder.go FindPodVolumes for one node: what binding the delayed claims there takes,
/// or the node's reasons in upstream's order (node conflict, bind conflict, missing
/// volume).
pub fn find_pod_volumes(
    state: &PreFilterState,
    ctx: &Ctx,
    node: &NodeInfo,
) -> Result<PodVolumes, Vec<&'static str>> {
    let (name, labels) = (node.name(), node.labels());
    let (mut bound_ok, mut bound_found, mut unbound_ok) = (true, true, true);
    // checkBoundClaims.
    for pvc in &state.bound {
        match ctx.listers.pv(&pvc.spec.volume_name) {
            None => {
                bound_found = false;
                break;
            }
            Some(pv) if !pv.node_affinity_allows(name, labels) => {
                bound_ok = false;
                break;
            }
            Some(_) => {}
        }
    }
    let mut out = PodVolumes::default();
    if !state.delayed.is_empty() {
        let mut to_match = Vec::new();
        let mut to_provision = Vec::new();
        for pvc in &state.delayed {
            match pvc.metadata.annotations.get(ANN_SELECTED_NODE) {
                // Fast path: provisioning was already asked for another node.
                Some(n) if n != name => return Err(reasons(bound_ok, false, bound_found)),
                Some(_) => to_provision.push(pvc.clone()),
                None => to_match.push(pvc.clone()),
            }
        }
        // findMatchingVolumes: smallest requests first, each volume chosen once.
        to_match.sort_by_key(|c| c.requested_bytes());
        let mut chosen: BTreeSet<String> = BTreeSet::new();
        for pvc in to_match {
            let class = pvc.class();
            let candidates =
                ctx.listers.volumes_of_class(class).filter(|pv| !chosen.contains(&pv.metadata.name));
            let found = find_matching_volume(&pvc, candidates, Some((name, labels)), true)
                .map(|pv| pv.metadata.name.clone());
            match found.and_then(|n| ctx.listers.pv(&n)) {
                Some(pv) => {
                    chosen.insert(pv.metadata.name.clone());
                    out.static_bindings.push((pv, pvc));
                }
                None => {
                    unbound_ok = false;
                    to_provision.push(pvc);
                }
            }
        }
        // checkVolumeProvisions.
        if !to_provision.is_empty() {
            unbound_ok = to_provision.iter().all(|pvc| {
                let Some(class) = ctx.listers.storage_classes.get(pvc.class()) else { return false };
                !class.provisioner.is_empty()
                    && class.provisioner != NO_PROVISIONER
                    && topology_allows(&class.allowed_topologies, labels)
            });
            out.dynamic_provisions = to_provision;
        }
    }
    if bound_ok && unbound_ok && bound_found {
        Ok(out)
    } else {
        Err(reasons(bound_ok, unbound_ok, bound_found))
    }
}

fn reasons(bound_ok: bool, unbound_ok: bool, bound_found: bool) -> Vec<&'static str> {
    let mut r = Vec::new();
    if !bound_ok {
        r.push(ERR_REASON_NODE_CONFLICT);
    }
    if !unbound_ok {
        r.push(ERR_REASON_BIND_CONFLICT);
    }
    if !bound_found {
        r.push(ERR_REASON_PV_NOT_EXIST);
    }
    r
}

/// v1helper.MatchTopologySelectorTerms over a class's allowedTopologies (kept as JSON):
/// no terms admit every node; otherwise one term whose every expression has the node's
/// label value among its values.
pub fn topology_allows(terms: &[serde_json::Value], labels: &BTreeMap<String, String>) -> bool {
    if terms.is_empty() {
        return true;
    }
    terms.iter().any(|term| {
        let exprs = term.get("matchLabelExpressions").and_then(|e| e.as_array());
        // A term without expressions matches nothing.
        exprs.is_some_and(|exprs| {
            !exprs.is_empty()
                && exprs.iter().all(|e| {
                    let key = e.get("key").and_then(|k| k.as_str()).unwrap_or_default();
                    let values = e.get("values").and_then(|v| v.as_array());
                    labels.get(key).is_some_and(|v| {
                        values.is_some_and(|vs| vs.iter().any(|x| x.as_str() == Some(v.as_str())))
                    })
                })
        })
    })
}

/// EventsToRegister with their hints (volume_binding.go): a claim of the pod added or
/// updated, any volume added or updated, a class added or its allowedTopologies changed,
/// a node added or its labels changed.
pub fn queueing_hint(pod: &PodInfo, ev: &ClusterEvent) -> Hint {
    let hit = match ev {
        ClusterEvent::PvcChange { new, .. } => uses_claim(pod, new),
        ClusterEvent::PvChange { .. } => true,
        ClusterEvent::StorageClassChange { old, new } => {
            old.as_ref().is_none_or(|o| o.allowed_topologies != new.allowed_topologies)
        }
        ClusterEvent::NodeAdd(_) => true,
        ClusterEvent::NodeUpdate { change, .. } => change.label,
        _ => false,
    };
    Hint::queue_if(hit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::storage::StorageClass;
    use crate::api::{Node, Pod};
    use crate::scheduler::config::Profile;
    use crate::scheduler::framework::Listers;
    use crate::time::SimTime;

    fn yaml<T: serde::de::DeserializeOwned>(s: &str) -> T {
        serde_yaml::from_str(s).expect("test fixture parses")
    }

    fn class(name: &str, wait: bool, provisioner: &str, topology: &str) -> StorageClass {
        let mode = if wait { "WaitForFirstConsumer" } else { "Immediate" };
        let mut c: StorageClass = yaml(&format!(
            "metadata: {{name: {name}}}\nprovisioner: \"{provisioner}\"\nvolumeBindingMode: {mode}\n{topology}"
        ));
        c.apply_defaults();
        c
    }

    /// A claim in `default`; `volume`: bound to it (with bind-completed when `complete`).
    fn pvc(name: &str, class: &str, size: &str, volume: &str, complete: bool) -> PersistentVolumeClaim {
        let mut c: PersistentVolumeClaim = yaml(&format!(
            "metadata: {{name: {name}, namespace: default, uid: uid-{name}}}\n\
             spec: {{storageClassName: \"{class}\", volumeName: \"{volume}\", \
             resources: {{requests: {{storage: {size}}}}}}}"
        ));
        if complete {
            c.metadata.annotations.insert(ANN_BIND_COMPLETED.into(), "yes".into());
        }
        c.apply_defaults();
        c
    }

    /// A volume with `nodeKey In [node]` affinity (none when `node` is empty), Available.
    fn pv(name: &str, class: &str, size: &str, node: &str) -> PersistentVolume {
        let affinity = if node.is_empty() {
            String::new()
        } else {
            format!(
                ", nodeAffinity: {{required: {{nodeSelectorTerms: [{{matchExpressions: \
                 [{{key: nodeKey, operator: In, values: [{node}]}}]}}]}}}}"
            )
        };
        let mut v: PersistentVolume = yaml(&format!(
            "metadata: {{name: {name}}}\nspec: {{storageClassName: \"{class}\", \
             capacity: {{storage: {size}}}{affinity}}}\nstatus: {{phase: Available}}"
        ));
        v.apply_defaults();
        v.status.phase = Some(crate::api::storage::VolumePhase::Available);
        v
    }

    fn pod(claims: &[&str]) -> PodInfo {
        let vols: Vec<String> = claims
            .iter()
            .map(|c| format!("{{name: v-{c}, persistentVolumeClaim: {{claimName: {c}}}}}"))
            .collect();
        let p: Pod = yaml(&format!(
            "metadata: {{name: p, namespace: default}}\nspec: {{containers: [{{name: c, image: i}}], \
             volumes: [{}]}}",
            vols.join(", ")
        ));
        PodInfo::new(Arc::new(p))
    }

    fn node(name: &str) -> NodeInfo {
        let n: Node = yaml(&format!("metadata: {{name: {name}, labels: {{nodeKey: {name}}}}}"));
        NodeInfo::new(Arc::new(n))
    }

    struct World {
        listers: Listers,
        nodes: BTreeMap<String, NodeInfo>,
        profile: Profile,
    }

    fn world(
        classes: Vec<StorageClass>,
        pvcs: Vec<PersistentVolumeClaim>,
        pvs: Vec<PersistentVolume>,
    ) -> World {
        let mut listers = Listers::default();
        for c in classes {
            listers.storage_classes.insert(c.metadata.name.clone(), Arc::new(c));
        }
        for c in pvcs {
            listers.pvcs.insert((c.metadata.namespace.clone(), c.metadata.name.clone()), Arc::new(c));
        }
        for v in pvs {
            listers.pvs.insert(v.metadata.name.clone(), Arc::new(v));
        }
        let nodes = ["node1", "node2"].iter().map(|n| (n.to_string(), node(n))).collect();
        World { listers, nodes, profile: Profile::default() }
    }

    impl World {
        fn ctx(&self) -> Ctx<'_> {
            Ctx::new(&self.profile, &self.listers, &self.nodes, SimTime::ZERO)
        }
        /// PreFilter, then Filter on node1: the PreFilter's message or the node's reasons.
        fn run(&self, claims: &[&str]) -> Result<PodVolumes, Vec<String>> {
            let ctx = self.ctx();
            let state = pre_filter(&ctx, &pod(claims)).map_err(|s| {
                assert_eq!(s.code, crate::scheduler::framework::Code::UnschedulableAndUnresolvable);
                s.reasons
            })?;
            let state = state.expect("the pod has claims");
            if let Err(s) = filter(&state, &ctx, &self.nodes["node1"]) {
                assert_eq!(s.code, crate::scheduler::framework::Code::UnschedulableAndUnresolvable);
            }
            find_pod_volumes(&state, &ctx, &self.nodes["node1"])
                .map_err(|r| r.into_iter().map(String::from).collect())
        }
    }

    fn wait_class() -> StorageClass {
        class("wait", true, NO_PROVISIONER, "")
    }

    // volume_binding_test.go TestVolumeBinding "pod has not pvcs".
    #[test]
    fn a_pod_without_claims_is_skipped() {
        let w = world(vec![], vec![], vec![]);
        assert!(pre_filter(&w.ctx(), &pod(&[])).unwrap().is_none());
    }

    // TestVolumeBinding "PVC does not exist", "Part of PVCs do not exist", "immediate
    // claims not bound", "pv not found claim lost"; binder_test.go "prebound-pvc".
    #[test]
    fn prefilter_rejections() {
        let imm = class("immediate", false, "p", "");
        let mut lost = pvc("lost", "", "1Gi", "pv-a", true);
        lost.status.phase = Some(ClaimPhase::Lost);
        let w = world(
            vec![imm, wait_class()],
            vec![
                pvc("bound", "", "1Gi", "pv-a", true),
                pvc("imm", "immediate", "1Gi", "", false),
                pvc("prebound", "wait", "1Gi", "pv-a", false),
                lost,
            ],
            vec![pv("pv-a", "", "1Gi", "")],
        );
        let msg = |claims: &[&str]| w.run(claims).unwrap_err();
        assert_eq!(msg(&["pvc-a"]), vec!["persistentvolumeclaim \"pvc-a\" not found"]);
        assert_eq!(msg(&["bound", "pvc-b"]), vec!["persistentvolumeclaim \"pvc-b\" not found"]);
        assert_eq!(msg(&["imm"]), vec![ERR_REASON_UNBOUND_IMMEDIATE]);
        assert_eq!(msg(&["prebound"]), vec![ERR_REASON_UNBOUND_IMMEDIATE]);
        assert_eq!(
            msg(&["lost"]),
            vec!["persistentvolumeclaim \"lost\" bound to non-existent persistentvolume \"pv-a\""]
        );
    }

    // TestVolumeBinding "unbound claims no matches", "bound and unbound unsatisfied", "pv
    // not found"; binder_test.go "unbound-pvc,pv-different-node",
    // "immediate-bound-pvc-wrong-node".
    #[test]
    fn filter_reasons() {
        let w = world(
            vec![wait_class()],
            vec![
                pvc("unbound", "wait", "1Gi", "", false),
                pvc("bound-node2", "wait", "1Gi", "pv-node2", true),
                pvc("bound-missing", "wait", "1Gi", "pv-gone", true),
            ],
            vec![pv("pv-node2", "wait", "1Gi", "node2")],
        );
        let reasons = |claims: &[&str]| w.run(claims).unwrap_err();
        assert_eq!(reasons(&["unbound"]), vec![ERR_REASON_BIND_CONFLICT]);
        assert_eq!(reasons(&["bound-node2"]), vec![ERR_REASON_NODE_CONFLICT]);
        assert_eq!(
            reasons(&["bound-node2", "unbound"]),
            vec![ERR_REASON_NODE_CONFLICT, ERR_REASON_BIND_CONFLICT]
        );
        assert_eq!(reasons(&["bound-missing"]), vec![ERR_REASON_PV_NOT_EXIST]);
    }

    // binder_test.go "two-unbound-pvcs,order-by-size" and "two-unbound-pvcs,partial-match".
    #[test]
    fn static_matches_smallest_claim_first() {
        let claims = vec![pvc("big", "wait", "5G", "", false), pvc("small", "wait", "1G", "", false)];
        let w = world(
            vec![wait_class()],
            claims.clone(),
            vec![pv("pv-node1a", "wait", "5G", "node1"), pv("pv-node1b", "wait", "10G", "node1")],
        );
        let got = w.run(&["big", "small"]).unwrap();
        let pairs: Vec<(&str, &str)> = got
            .static_bindings
            .iter()
            .map(|(v, c)| (v.metadata.name.as_str(), c.metadata.name.as_str()))
            .collect();
        assert_eq!(pairs, vec![("pv-node1a", "small"), ("pv-node1b", "big")]);
        assert!(got.dynamic_provisions.is_empty());

        let w = world(vec![wait_class()], claims, vec![pv("pv-node1a", "wait", "5G", "node1")]);
        assert_eq!(w.run(&["big", "small"]).unwrap_err(), vec![ERR_REASON_BIND_CONFLICT]);
    }

    // binder_test.go TestFindPodVolumesWithProvisioning "one-provisioned",
    // "invalid-provisioner", "volume-topology-unsatisfied", and the selected-node fast path.
    #[test]
    fn provisioning() {
        let topo = |v: &str| {
            format!("allowedTopologies: [{{matchLabelExpressions: [{{key: nodeKey, values: [{v}, reference-value]}}]}}]")
        };
        let mut other_node = pvc("elsewhere", "fast", "1G", "", false);
        other_node.metadata.annotations.insert(ANN_SELECTED_NODE.into(), "node2".into());
        let w = world(
            vec![
                class("fast", true, "test-provisioner", &topo("node1")),
                class("mismatch", true, "test-provisioner", &topo("node9")),
                wait_class(),
            ],
            vec![
                pvc("a", "fast", "1G", "", false),
                pvc("b", "mismatch", "1G", "", false),
                pvc("c", "wait", "1G", "", false),
                other_node,
            ],
            vec![],
        );
        let got = w.run(&["a"]).unwrap();
        assert_eq!(got.dynamic_provisions.len(), 1);
        assert!(got.static_bindings.is_empty());
        assert_eq!(w.run(&["b"]).unwrap_err(), vec![ERR_REASON_BIND_CONFLICT]);
        assert_eq!(w.run(&["c"]).unwrap_err(), vec![ERR_REASON_BIND_CONFLICT]);
        assert_eq!(w.run(&["elsewhere"]).unwrap_err(), vec![ERR_REASON_BIND_CONFLICT]);
    }

    /// A claim of the pod requeues it; another claim, or one in another namespace, does not.
    #[test]
    fn queueing_hints() {
        let p = pod(&["data"]);
        let ev = |c: PersistentVolumeClaim| ClusterEvent::PvcChange { old: None, new: Arc::new(c) };
        assert_eq!(queueing_hint(&p, &ev(pvc("data", "", "1Gi", "", false))), Hint::Queue);
        assert_eq!(queueing_hint(&p, &ev(pvc("logs", "", "1Gi", "", false))), Hint::QueueSkip);
        let mut other = pvc("data", "", "1Gi", "", false);
        other.metadata.namespace = "other".into();
        assert_eq!(queueing_hint(&p, &ev(other)), Hint::QueueSkip);
        let v = Arc::new(pv("pv", "", "1Gi", ""));
        assert_eq!(queueing_hint(&p, &ClusterEvent::PvChange { old: None, new: v }), Hint::Queue);
        let c = Arc::new(wait_class());
        let same = ClusterEvent::StorageClassChange { old: Some(c.clone()), new: c.clone() };
        assert_eq!(queueing_hint(&p, &same), Hint::QueueSkip);
        assert_eq!(queueing_hint(&p, &ClusterEvent::StorageClassChange { old: None, new: c }), Hint::Queue);
    }
}
