//! PersistentVolume and PersistentVolumeClaim (core/v1) and StorageClass
//! (storage.k8s.io/v1), with the binding helpers the PV controller, the attach/detach
//! controller, the kubelet's volume manager and the scheduler's VolumeBinding plugin share
//! (k8s.io/component-helpers/storage/volume/helpers.go and pv_helpers.go, v1.33).
//!
//! The scheduler's side of delayed binding (WaitForFirstConsumer) is the VolumeBinding
//! plugin. The protocol between it and the PV controller is upstream's: for a claim whose
//! class binds on the first consumer, the plugin's PreBind either pre-binds a matching
//! static volume (`spec.claimRef` with the claim's uid, [`ANN_BOUND_BY_CONTROLLER`]) or
//! annotates the claim with [`ANN_SELECTED_NODE`]; the PV controller then provisions for the
//! selected node (or completes the binding of the pre-bound volume), and the plugin waits
//! for the claim to be bound before it binds the pod. [`volume_binding`] holds the parts
//! of that decision that read only these objects.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::meta::{ObjectMeta, ObjectReference};
use super::pod::{Extra, HostPathVolumeSource, ResourceList};
use super::quantity::Quantity;
use super::scheduling::NodeSelector;
use super::selector::LabelSelector;
use crate::time::SimTime;

/// pv_controller's `AnnBindCompleted`: the claim's binding is complete.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// `AnnBoundByController`: the controller (not the user) bound this object.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// `AnnSelectedNode`: the node the scheduler chose for a delayed-binding claim.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// `AnnDynamicallyProvisioned`: on a PV, the provisioner that created it.
pub const ANN_DYNAMICALLY_PROVISIONED: &str = "pv.kubernetes.io/provisioned-by";
/// `AnnStorageProvisioner` and its beta twin: on a claim, the provisioner asked to provision.
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// `v1.BetaStorageClassAnnotation`: a class named by annotation (before storageClassName).
pub const ANN_BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
/// storageutil `IsDefaultStorageClassAnnotation` and the beta one.
pub const ANN_IS_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
pub const ANN_BETA_IS_DEFAULT_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";
/// The finalizers the StorageObjectInUseProtection admission plugin adds (kept for
/// `describe`; the simulated API server does not hold objects for finalizers).
pub const FINALIZER_PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub const FINALIZER_PV_PROTECTION: &str = "kubernetes.io/pv-protection";
/// `v1.ProvisionerNone`-style name of the class for local volumes: nothing provisions.
pub const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";
/// The storage resource name (`v1.ResourceStorage`).
pub const RESOURCE_STORAGE: &str = "storage";

/// `v1.PersistentVolumeAccessMode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AccessMode {
    ReadWriteOnce,
    ReadOnlyMany,
    ReadWriteMany,
    ReadWriteOncePod,
}

impl AccessMode {
    /// kubectl's short form (`RWO`, `ROX`, `RWX`, `RWOP`), storageutil.GetAccessModesAsString.
    pub fn short(self) -> &'static str {
        match self {
            AccessMode::ReadWriteOnce => "RWO",
            AccessMode::ReadOnlyMany => "ROX",
            AccessMode::ReadWriteMany => "RWX",
            AccessMode::ReadWriteOncePod => "RWOP",
        }
    }
}

/// `GetAccessModesAsString`: the modes in RWO, ROX, RWX, RWOP order, comma-joined.
pub fn access_modes_string(modes: &[AccessMode]) -> String {
    let mut m: Vec<AccessMode> = modes.to_vec();
    m.sort();
    m.dedup();
    m.iter().map(|a| a.short()).collect::<Vec<_>>().join(",")
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolume {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PersistentVolumeSpec,
    #[serde(default)]
    pub status: PersistentVolumeStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeSpec {
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub capacity: ResourceList,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_modes: Vec<AccessMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_ref: Option<ObjectReference>,
    /// `Retain` (the default for a PV written by hand), `Delete` or `Recycle`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub persistent_volume_reclaim_policy: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub storage_class_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_options: Vec<String>,
    /// `Filesystem` (the default) or `Block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_affinity: Option<VolumeNodeAffinity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csi: Option<CsiPersistentVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nfs: Option<NfsVolumeSource>,
    /// Other sources (awsElasticBlockStore, iscsi, ...) and fields kubesim does not model,
    /// kept as written.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `v1.VolumeNodeAffinity`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeNodeAffinity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<NodeSelector>,
}

/// `v1.CSIPersistentVolumeSource`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CsiPersistentVolumeSource {
    pub driver: String,
    pub volume_handle: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fs_type: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volume_attributes: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `v1.LocalVolumeSource`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalVolumeSource {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
}

/// `v1.NFSVolumeSource`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NfsVolumeSource {
    pub server: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// `v1.PersistentVolumePhase`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumePhase {
    #[default]
    Pending,
    Available,
    Bound,
    Released,
    Failed,
}

impl VolumePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            VolumePhase::Pending => "Pending",
            VolumePhase::Available => "Available",
            VolumePhase::Bound => "Bound",
            VolumePhase::Released => "Released",
            VolumePhase::Failed => "Failed",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<VolumePhase>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// PersistentVolumeLastPhaseTransitionTime (GA in v1.31).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_phase_transition_time: Option<SimTime>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeClaim {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: PersistentVolumeClaimSpec,
    #[serde(default)]
    pub status: PersistentVolumeClaimStatus,
    /// In a StatefulSet's claim templates: `apiVersion` and `kind` when a manifest gives
    /// them, kept as written.
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeClaimSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_modes: Vec<AccessMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "VolumeResourceRequirements::is_empty")]
    pub resources: VolumeResourceRequirements,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub volume_name: String,
    /// Unset: the default class (DefaultStorageClass admission); `""`: no class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<String>,
    /// dataSource, dataSourceRef, volumeAttributesClassName: kept as written.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `v1.VolumeResourceRequirements`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeResourceRequirements {
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub requests: ResourceList,
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub limits: ResourceList,
}

impl VolumeResourceRequirements {
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.limits.is_empty()
    }
}

/// `v1.PersistentVolumeClaimPhase`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClaimPhase {
    #[default]
    Pending,
    Bound,
    Lost,
}

impl ClaimPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimPhase::Pending => "Pending",
            ClaimPhase::Bound => "Bound",
            ClaimPhase::Lost => "Lost",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeClaimStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ClaimPhase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_modes: Vec<AccessMode>,
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub capacity: ResourceList,
}

/// A StorageClass (storage.k8s.io/v1): its fields sit at the top level, beside metadata.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageClass {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub provisioner: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// Defaults to `Delete` (SetDefaults_StorageClass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_options: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_volume_expansion: Option<bool>,
    /// Defaults to `Immediate` (SetDefaults_StorageClass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_binding_mode: Option<VolumeBindingMode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_topologies: Vec<serde_json::Value>,
}

/// `storagev1.VolumeBindingMode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeBindingMode {
    Immediate,
    WaitForFirstConsumer,
}

impl VolumeBindingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeBindingMode::Immediate => "Immediate",
            VolumeBindingMode::WaitForFirstConsumer => "WaitForFirstConsumer",
        }
    }
}

impl StorageClass {
    /// `storageutil.IsDefaultAnnotation`: the GA or the beta annotation says "true".
    pub fn is_default(&self) -> bool {
        let a = &self.metadata.annotations;
        a.get(ANN_IS_DEFAULT_CLASS).map(String::as_str) == Some("true")
            || a.get(ANN_BETA_IS_DEFAULT_CLASS).map(String::as_str) == Some("true")
    }

    /// SetDefaults_StorageClass: reclaimPolicy Delete, volumeBindingMode Immediate.
    pub fn apply_defaults(&mut self) {
        if self.reclaim_policy.is_none() {
            self.reclaim_policy = Some("Delete".into());
        }
        if self.volume_binding_mode.is_none() {
            self.volume_binding_mode = Some(VolumeBindingMode::Immediate);
        }
    }

    pub fn binding_mode(&self) -> VolumeBindingMode {
        self.volume_binding_mode.unwrap_or(VolumeBindingMode::Immediate)
    }
}

impl PersistentVolume {
    pub fn phase(&self) -> VolumePhase {
        self.status.phase.unwrap_or_default()
    }

    /// `spec.capacity[storage]` in bytes.
    pub fn capacity_bytes(&self) -> i64 {
        self.spec.capacity.get(RESOURCE_STORAGE).map_or(0, Quantity::value)
    }

    /// SetDefaults_PersistentVolume: reclaim policy Retain, volumeMode Filesystem, and
    /// the phase a new volume starts in (Pending).
    pub fn apply_defaults(&mut self) {
        if self.spec.persistent_volume_reclaim_policy.is_empty() {
            self.spec.persistent_volume_reclaim_policy = "Retain".into();
        }
        self.spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
        self.status.phase.get_or_insert(VolumePhase::Pending);
    }

    /// Is an attach/detach controller's business: a volume the kubelet cannot mount
    /// before it is attached to the node. CSI volumes are (a CSIDriver's attachRequired
    /// defaults to true); hostPath, local and NFS volumes are not.
    pub fn is_attachable(&self) -> bool {
        self.spec.csi.is_some()
    }

    /// The volume's unique name as node.status.volumesAttached and volumesInUse carry it
    /// (csi plugin GetVolumeName: `kubernetes.io/csi/<driver>^<volumeHandle>`).
    pub fn unique_name(&self) -> String {
        match &self.spec.csi {
            Some(c) => format!("kubernetes.io/csi/{}^{}", c.driver, c.volume_handle),
            None => format!("kubernetes.io/pv/{}", self.metadata.name),
        }
    }

    /// util.IsMultiAttachAllowed: a persistent volume may be attached to several nodes
    /// only with ReadWriteMany or ReadOnlyMany (no mode given: unknown, allowed).
    pub fn multi_attach_allowed(&self) -> bool {
        let m = &self.spec.access_modes;
        m.is_empty() || m.iter().any(|a| matches!(a, AccessMode::ReadWriteMany | AccessMode::ReadOnlyMany))
    }

    /// storagehelpers.CheckNodeAffinity: the volume's required node affinity admits a
    /// node with these labels (no affinity admits every node).
    pub fn node_affinity_allows(&self, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
        match self.spec.node_affinity.as_ref().and_then(|a| a.required.as_ref()) {
            Some(sel) => sel.matches(node_name, labels),
            None => true,
        }
    }
}

impl PersistentVolumeClaim {
    pub fn phase(&self) -> ClaimPhase {
        self.status.phase.unwrap_or_default()
    }

    /// `GetPersistentVolumeClaimClass`: the beta annotation, else spec.storageClassName,
    /// else "" (no class).
    pub fn class(&self) -> &str {
        if let Some(c) = self.metadata.annotations.get(ANN_BETA_STORAGE_CLASS) {
            return c;
        }
        self.spec.storage_class_name.as_deref().unwrap_or("")
    }

    /// The requested size in bytes (`spec.resources.requests[storage]`).
    pub fn requested_bytes(&self) -> i64 {
        self.spec.resources.requests.get(RESOURCE_STORAGE).map_or(0, Quantity::value)
    }

    /// Bound: the controller finished binding (the annotation), as the kubelet and the
    /// scheduler test it (phase Bound and a volume name).
    pub fn is_bound(&self) -> bool {
        self.phase() == ClaimPhase::Bound && !self.spec.volume_name.is_empty()
    }

    /// SetDefaults_PersistentVolumeClaim: volumeMode Filesystem, phase Pending.
    pub fn apply_defaults(&mut self) {
        self.spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
        self.status.phase.get_or_insert(ClaimPhase::Pending);
    }
}

/// The helpers VolumeBinding, the PV controller and the kubelet share.
pub mod volume_binding {
    use super::*;

    /// The class of a volume (`GetPersistentVolumeClass`: the beta annotation, else
    /// spec.storageClassName).
    pub fn volume_class(pv: &PersistentVolume) -> &str {
        if let Some(c) = pv.metadata.annotations.get(ANN_BETA_STORAGE_CLASS) {
            return c;
        }
        &pv.spec.storage_class_name
    }

    /// `IsVolumeBoundToClaim`: the volume's claimRef names the claim (and, once set, its uid).
    pub fn is_volume_bound_to_claim(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
        let Some(r) = &pv.spec.claim_ref else { return false };
        r.name == claim.metadata.name
            && r.namespace == claim.metadata.namespace
            && (r.uid.is_empty() || r.uid == claim.metadata.uid)
    }

    /// `CheckAccessModes`: every mode the claim asks for is one the volume has.
    pub fn access_modes_match(claim: &PersistentVolumeClaim, pv: &PersistentVolume) -> bool {
        claim.spec.access_modes.iter().all(|m| pv.spec.access_modes.contains(m))
    }

    /// `CheckVolumeModeMismatches` (an unset mode is Filesystem).
    pub fn volume_mode_mismatch(claim: &PersistentVolumeClaim, pv: &PersistentVolume) -> bool {
        let fs = |m: &Option<String>| m.clone().unwrap_or_else(|| "Filesystem".into());
        fs(&claim.spec.volume_mode) != fs(&pv.spec.volume_mode)
    }

    /// pv_controller checkVolumeSatisfyClaim: why a volume the claim names cannot be its.
    pub fn check_volume_satisfies_claim(
        pv: &PersistentVolume,
        claim: &PersistentVolumeClaim,
    ) -> Result<(), String> {
        if pv.metadata.deletion_timestamp.is_some() {
            return Err(format!("the volume is marked for deletion {:?}", pv.metadata.name));
        }
        if pv.capacity_bytes() < claim.requested_bytes() {
            return Err("requested PV is too small".into());
        }
        if volume_class(pv) != claim.class() {
            return Err("storageClassName does not match".into());
        }
        if volume_mode_mismatch(claim, pv) {
            return Err("incompatible volumeMode".into());
        }
        if !access_modes_match(claim, pv) {
            return Err("incompatible accessMode".into());
        }
        Ok(())
    }

    /// `FindMatchingVolume` (component-helpers pv_helpers.go) over every volume: a volume
    /// pre-bound to the claim wins; otherwise the smallest Available volume of the
    /// claim's class, size, access modes, mode and selector. `node` is the scheduler's
    /// path (node affinity and access modes checked); without it, delayed binding leaves
    /// everything but pre-bound volumes to the scheduler.
    pub fn find_matching_volume<'a>(
        claim: &PersistentVolumeClaim,
        volumes: impl Iterator<Item = &'a PersistentVolume>,
        node: Option<(&str, &BTreeMap<String, String>)>,
        delay_binding: bool,
    ) -> Option<&'a PersistentVolume> {
        let requested = claim.requested_bytes();
        let class = claim.class();
        let mut best: Option<&PersistentVolume> = None;
        for pv in volumes {
            // The access-mode index: only volumes with every requested mode are candidates.
            if !access_modes_match(claim, pv) {
                continue;
            }
            if pv.spec.claim_ref.is_some() && !is_volume_bound_to_claim(pv, claim) {
                continue;
            }
            if pv.capacity_bytes() < requested || volume_mode_mismatch(claim, pv) {
                continue;
            }
            if pv.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let affinity_ok = node.is_none_or(|(n, labels)| pv.node_affinity_allows(n, labels));
            if is_volume_bound_to_claim(pv, claim) {
                return affinity_ok.then_some(pv);
            }
            if node.is_none() && delay_binding {
                continue;
            }
            if pv.phase() != VolumePhase::Available {
                continue;
            }
            if claim.spec.selector.as_ref().is_some_and(|s| !s.matches(&pv.metadata.labels)) {
                continue;
            }
            if volume_class(pv) != class || !affinity_ok {
                continue;
            }
            let smaller = best.is_none_or(|b| {
                (pv.capacity_bytes(), pv.spec.access_modes.len(), &pv.metadata.name)
                    < (b.capacity_bytes(), b.spec.access_modes.len(), &b.metadata.name)
            });
            if smaller {
                best = Some(pv);
            }
        }
        best
    }

    /// `IsDelayBindingMode`: the claim's class exists and binds on the first consumer.
    pub fn is_delay_binding<'a>(
        claim: &PersistentVolumeClaim,
        mut class: impl FnMut(&str) -> Option<&'a StorageClass>,
    ) -> bool {
        let name = claim.class();
        if name.is_empty() {
            return false;
        }
        class(name).is_some_and(|c| c.binding_mode() == VolumeBindingMode::WaitForFirstConsumer)
    }

    /// `IsDelayBindingProvisioning`: the scheduler chose a node for the claim.
    pub fn is_delay_binding_provisioning(claim: &PersistentVolumeClaim) -> bool {
        claim.metadata.annotations.contains_key(ANN_SELECTED_NODE)
    }

    /// The claims a pod's volumes name, in volume order: (volume name, claim name).
    pub fn pod_claims(spec: &crate::api::PodSpec) -> impl Iterator<Item = (&str, &str)> {
        spec.volumes.iter().filter_map(|v| {
            v.persistent_volume_claim.as_ref().map(|c| (v.name.as_str(), c.claim_name.as_str()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::volume_binding::*;
    use super::*;

    fn pv(name: &str, size: &str, class: &str, modes: &[AccessMode]) -> PersistentVolume {
        let mut v = PersistentVolume {
            metadata: ObjectMeta { name: name.into(), ..Default::default() },
            spec: PersistentVolumeSpec {
                capacity: [(RESOURCE_STORAGE.to_string(), size.parse().unwrap())].into_iter().collect(),
                access_modes: modes.to_vec(),
                storage_class_name: class.into(),
                ..Default::default()
            },
            ..Default::default()
        };
        v.apply_defaults();
        v.status.phase = Some(VolumePhase::Available);
        v
    }

    fn claim(size: &str, class: Option<&str>, modes: &[AccessMode]) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: "data".into(),
                namespace: "default".into(),
                uid: "c1".into(),
                ..Default::default()
            },
            spec: PersistentVolumeClaimSpec {
                access_modes: modes.to_vec(),
                resources: VolumeResourceRequirements {
                    requests: [(RESOURCE_STORAGE.to_string(), size.parse().unwrap())].into_iter().collect(),
                    ..Default::default()
                },
                storage_class_name: class.map(String::from),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The smallest Available volume of the class, size and modes wins; a volume bound
    /// elsewhere, too small, of another class or missing a mode never does.
    #[test]
    fn best_match_is_the_smallest_that_fits() {
        use AccessMode::*;
        let mut taken = pv("taken", "1Gi", "", &[ReadWriteOnce]);
        taken.spec.claim_ref =
            Some(ObjectReference { name: "other".into(), namespace: "default".into(), ..Default::default() });
        let vols = [
            taken,
            pv("small", "500Mi", "", &[ReadWriteOnce]),
            pv("big", "10Gi", "", &[ReadWriteOnce, ReadOnlyMany]),
            pv("fit", "2Gi", "", &[ReadWriteOnce]),
            pv("fast", "1Gi", "fast", &[ReadWriteOnce]),
            pv("rox", "1Gi", "", &[ReadOnlyMany]),
        ];
        let c = claim("1Gi", Some(""), &[ReadWriteOnce]);
        let m = find_matching_volume(&c, vols.iter(), None, false).map(|v| v.metadata.name.as_str());
        assert_eq!(m, Some("fit"));
        // Delayed binding: the controller leaves unbound volumes to the scheduler.
        assert_eq!(find_matching_volume(&c, vols.iter(), None, true).map(|v| v.metadata.name.as_str()), None);
        let c = claim("1Gi", Some("fast"), &[ReadWriteOnce]);
        assert_eq!(
            find_matching_volume(&c, vols.iter(), None, false).map(|v| v.metadata.name.as_str()),
            Some("fast")
        );
        // A volume pre-bound to the claim is its, whatever its phase.
        let mut pre = pv("pre", "1Gi", "", &[ReadWriteOnce]);
        pre.status.phase = Some(VolumePhase::Pending);
        pre.spec.claim_ref =
            Some(ObjectReference { name: "data".into(), namespace: "default".into(), ..Default::default() });
        let c = claim("1Gi", Some(""), &[ReadWriteOnce]);
        let all: Vec<PersistentVolume> = vols.iter().cloned().chain([pre]).collect();
        assert_eq!(
            find_matching_volume(&c, all.iter(), None, true).map(|v| v.metadata.name.as_str()),
            Some("pre")
        );
    }

    #[test]
    fn satisfies_claim_explains_mismatches() {
        use AccessMode::*;
        let c = claim("2Gi", Some(""), &[ReadWriteOnce]);
        assert_eq!(
            check_volume_satisfies_claim(&pv("v", "1Gi", "", &[ReadWriteOnce]), &c),
            Err("requested PV is too small".into())
        );
        assert_eq!(
            check_volume_satisfies_claim(&pv("v", "2Gi", "x", &[ReadWriteOnce]), &c),
            Err("storageClassName does not match".into())
        );
        assert_eq!(
            check_volume_satisfies_claim(&pv("v", "2Gi", "", &[ReadOnlyMany]), &c),
            Err("incompatible accessMode".into())
        );
        assert_eq!(check_volume_satisfies_claim(&pv("v", "2Gi", "", &[ReadWriteOnce]), &c), Ok(()));
    }

    #[test]
    fn multi_attach_and_modes_string() {
        use AccessMode::*;
        assert!(!pv("v", "1Gi", "", &[ReadWriteOnce]).multi_attach_allowed());
        assert!(pv("v", "1Gi", "", &[ReadWriteOnce, ReadWriteMany]).multi_attach_allowed());
        assert!(pv("v", "1Gi", "", &[]).multi_attach_allowed());
        assert_eq!(access_modes_string(&[ReadWriteMany, ReadWriteOnce]), "RWO,RWX");
    }
}
