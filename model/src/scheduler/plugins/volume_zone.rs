//! VolumeZone (pkg/scheduler/framework/plugins/volumezone/volume_zone.go, v1.33): a pod's
//! bound volumes labelled with a zone or region run only on nodes in it.
//!
//! PreFilter gathers the zone and region labels of the volumes the pod's claims are bound
//! to (unbound WaitForFirstConsumer claims are VolumeBinding's); Filter admits a node
//! without any of the labels (a single-zone cluster), or one whose label value is among
//! the volume's (`a__b` lists several zones).

use std::collections::{BTreeMap, BTreeSet};

use crate::api::storage::VolumeBindingMode;
use crate::scheduler::framework::{NodeInfo, PodInfo, Status};
use crate::scheduler::queue::{ClusterEvent, Hint};

use super::Ctx;

/// names.VolumeZone.
pub const NAME: &str = "VolumeZone";
/// volume_zone.go ErrReasonConflict.
pub const ERR_REASON_CONFLICT: &str = "node(s) had no available volume zone";

/// The topology labels consulted, in upstream's order (volume_zone.go topologyLabels):
/// the deprecated beta zone and region, then the GA ones.
pub const TOPOLOGY_LABELS: [&str; 4] = [
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
];

/// A beta label's GA name (v1 translation used when a node carries only the GA label).
fn ga_label(key: &str) -> Option<&'static str> {
    match key {
        "failure-domain.beta.kubernetes.io/zone" => Some("topology.kubernetes.io/zone"),
        "failure-domain.beta.kubernetes.io/region" => Some("topology.kubernetes.io/region"),
        _ => None,
    }
}

/// One volume's topology requirement: (volume, label key, allowed values).
#[derive(Clone, Debug, PartialEq)]
pub struct PvTopology {
    pub pv_name: String,
    pub key: &'static str,
    pub values: BTreeSet<String>,
}

/// PreFilter: `Ok(None)` is Skip (no labelled volume); an error rejects the pod.
pub fn pre_filter(ctx: &Ctx, pod: &PodInfo) -> Result<Option<Vec<PvTopology>>, Status> {
    let ns = pod.pod.metadata.namespace.as_str();
    let unresolvable = |m: String| Status::unresolvable(NAME, m);
    let mut out = Vec::new();
    for claim in super::volume_binding::claim_names(pod) {
        if claim.is_empty() {
            return Err(unresolvable("PersistentVolumeClaim had no name".into()));
        }
        let Some(pvc) = ctx.listers.pvc(ns, claim) else {
            return Err(unresolvable(format!("persistentvolumeclaim {claim:?} not found")));
        };
        let pv_name = &pvc.spec.volume_name;
        if pv_name.is_empty() {
            let class = pvc.class();
            if class.is_empty() {
                return Err(unresolvable(
                    "PersistentVolumeClaim had no pv name and storageClass name".into(),
                ));
            }
            let Some(c) = ctx.listers.storage_classes.get(class) else {
                return Err(unresolvable(format!("storageclasses.storage.k8s.io {class:?} not found")));
            };
            if c.binding_mode() == VolumeBindingMode::WaitForFirstConsumer {
                continue;
            }
            return Err(unresolvable("PersistentVolume had no name".into()));
        }
        let Some(pv) = ctx.listers.pv(pv_name) else {
            return Err(unresolvable(format!("persistentvolume {pv_name:?} not found")));
        };
        for key in TOPOLOGY_LABELS {
            if let Some(v) = pv.metadata.labels.get(key) {
                // volumehelpers.LabelZonesToSet: `__`-separated values.
                let values = v.split("__").filter(|z| !z.is_empty()).map(str::to_string).collect();
                out.push(PvTopology { pv_name: pv_name.clone(), key, values });
            }
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Filter: a node without zone or region labels passes; otherwise each volume's label
/// value must be the node's (a beta label on the volume also reads the node's GA label).
pub fn filter(topologies: &[PvTopology], node: &NodeInfo) -> Result<(), Status> {
    let labels: &BTreeMap<String, String> = node.labels();
    if !TOPOLOGY_LABELS.iter().any(|k| labels.contains_key(*k)) {
        return Ok(());
    }
    for t in topologies {
        let value = labels.get(t.key).or_else(|| ga_label(t.key).and_then(|g| labels.get(g)));
        if !value.is_some_and(|v| t.values.contains(v)) {
            return Err(Status::unresolvable(NAME, ERR_REASON_CONFLICT));
        }
    }
    Ok(())
}

/// EventsToRegister (v1.33): a claim of the pod added or updated, a volume added or
/// updated, a WaitForFirstConsumer class added, a node added or relabelled.
pub fn queueing_hint(pod: &PodInfo, ev: &ClusterEvent) -> Hint {
    let hit = match ev {
        ClusterEvent::PvcChange { new, .. } => super::volume_binding::uses_claim(pod, new),
        // An update requeues only when the volume's topology labels changed.
        ClusterEvent::PvChange { old, new } => old.as_ref().is_none_or(|o| {
            TOPOLOGY_LABELS.iter().any(|k| o.metadata.labels.get(*k) != new.metadata.labels.get(*k))
        }),
        ClusterEvent::StorageClassChange { old: None, new } => {
            new.binding_mode() == VolumeBindingMode::WaitForFirstConsumer
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
    use crate::api::storage::PersistentVolume;
    use crate::api::{Node, Pod};
    use std::sync::Arc;

    fn yaml<T: serde::de::DeserializeOwned>(s: &str) -> T {
        serde_yaml::from_str(s).expect("fixture parses")
    }

    fn node(labels: &str) -> NodeInfo {
        NodeInfo::new(Arc::new(yaml::<Node>(&format!("metadata: {{name: n, labels: {{{labels}}}}}"))))
    }

    // volume_zone_test.go TestMultiZone: a volume in `us-west1-b__us-west1-c` admits both.
    #[test]
    fn a_multi_zone_volume_admits_each_of_its_zones() {
        let t = vec![PvTopology {
            pv_name: "Vol_1".into(),
            key: "topology.kubernetes.io/zone",
            values: ["us-west1-b".to_string(), "us-west1-c".to_string()].into(),
        }];
        assert!(filter(&t, &node("topology.kubernetes.io/zone: us-west1-c")).is_ok());
        let err = filter(&t, &node("topology.kubernetes.io/zone: us-west1-a")).unwrap_err();
        assert_eq!(err.reasons, vec![ERR_REASON_CONFLICT]);
        // A GA label on the volume does not read the node's beta label.
        assert!(filter(&t, &node("failure-domain.beta.kubernetes.io/zone: us-west1-c")).is_err());
        assert!(filter(&t, &node("other: x")).is_ok());
    }

    #[test]
    fn a_volume_update_requeues_only_when_its_topology_changed() {
        let p: Pod = yaml("metadata: {name: p, namespace: default}\nspec: {containers: [{name: c}], volumes: [{name: v, persistentVolumeClaim: {claimName: data}}]}");
        let p = PodInfo::new(Arc::new(p));
        let pv = |zone: &str| {
            Arc::new(yaml::<PersistentVolume>(&format!(
                "metadata: {{name: v, labels: {{topology.kubernetes.io/zone: {zone}}}}}"
            )))
        };
        let ev = |old: Option<Arc<PersistentVolume>>, new| ClusterEvent::PvChange { old, new };
        assert_eq!(queueing_hint(&p, &ev(None, pv("a"))), Hint::Queue);
        assert_eq!(queueing_hint(&p, &ev(Some(pv("a")), pv("a"))), Hint::QueueSkip);
        assert_eq!(queueing_hint(&p, &ev(Some(pv("a")), pv("b"))), Hint::Queue);
    }
}
