//! A simulated CSI controller plugin behind every StorageClass provisioner: what
//! kubernetes-csi/external-provisioner (with its driver) does to a claim the PV
//! controller hands over, and the driver's attach and detach times the attach/detach
//! controller waits for.
//!
//! The provisioner takes a claim whose `volume.kubernetes.io/storage-provisioner`
//! annotation names it, once it may provision (an Immediate class, or the scheduler's
//! `volume.kubernetes.io/selected-node` for a WaitForFirstConsumer class): `Provisioning`
//! at once, then, after the driver's provisioning latency, the volume `pvc-<claim uid>`
//! pre-bound to the claim and `ProvisioningSucceeded` (external-provisioner's
//! controller.go messages). A volume it made that is Released with the `Delete` policy is
//! deleted after the same latency. `kubernetes.io/no-provisioner` (local volumes) is
//! nobody's: claims of such a class wait for a volume made by hand.
//!
//! Latencies are kubesim's own knobs (a real driver's depend on its cloud), set per
//! driver name in the scenario's `storage` section.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use super::{Controller, Requests};
use crate::api::scheduling::{NodeSelector, NodeSelectorOperator, NodeSelectorRequirement, NodeSelectorTerm};
use crate::api::storage::{
    CsiPersistentVolumeSource, PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec,
    VolumeNodeAffinity, VolumePhase, ANN_DYNAMICALLY_PROVISIONED, ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER,
    NO_PROVISIONER, RESOURCE_STORAGE,
};
use crate::api::{Kind, Object, ObjectKey, ObjectMeta, EVENT_NORMAL};
use crate::client::{ApiRequest, ApiResult, Cache, EventRecorder, WatchEvent, WatchEventType};
use crate::time::SimTime;

/// external-provisioner's finalizer on the volumes it made (with HonorPVReclaimPolicy).
pub const FINALIZER_EXTERNAL_PROVISIONER: &str = "external-provisioner.volume.kubernetes.io/finalizer";
/// The topology label a zonal volume is pinned by (`v1.LabelTopologyZone`).
pub const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";

/// How one simulated CSI driver behaves: kubesim's knobs.
#[derive(Clone, Debug, PartialEq)]
pub struct DriverSpec {
    /// The driver (provisioner) name; `*` globs (`*.csi.aws.com`, `*`).
    pub name: String,
    /// CreateVolume's time.
    pub provisioning_latency: Duration,
    /// ControllerPublishVolume's time (the VolumeAttachment becoming attached).
    pub attach_latency: Duration,
    /// ControllerUnpublishVolume's time.
    pub detach_latency: Duration,
}

/// kubesim's default driver: 5 s to provision, 2 s to attach or detach.
pub const DEFAULT_PROVISIONING_LATENCY: Duration = Duration::from_secs(5);
pub const DEFAULT_ATTACH_LATENCY: Duration = Duration::from_secs(2);
pub const DEFAULT_DETACH_LATENCY: Duration = Duration::from_secs(2);

/// The simulated drivers, first match wins; a driver no entry names takes the defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StorageSimulation {
    pub drivers: Vec<DriverSpec>,
}

impl StorageSimulation {
    pub fn driver(&self, name: &str) -> DriverSpec {
        self.drivers.iter().find(|d| glob(&d.name, name)).cloned().unwrap_or(DriverSpec {
            name: name.to_string(),
            provisioning_latency: DEFAULT_PROVISIONING_LATENCY,
            attach_latency: DEFAULT_ATTACH_LATENCY,
            detach_latency: DEFAULT_DETACH_LATENCY,
        })
    }
}

/// A driver's volume id for a claim (an EBS-like `vol-` and 17 hex digits of the uid).
fn volume_handle(uid: &str) -> String {
    let hex: String = uid.chars().filter(|c| c.is_ascii_hexdigit()).take(17).collect();
    format!("vol-{hex}")
}

/// `*` matches any text.
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, rest)) => {
            let Some(tail) = s.strip_prefix(head) else { return false };
            (0..=tail.len()).filter(|i| tail.is_char_boundary(*i)).any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// A provisioning or deletion under way.
#[derive(Clone, Debug)]
enum Op {
    Provision { claim: ObjectKey, done_at: SimTime },
    Delete { volume: String, done_at: SimTime },
}

pub struct SimulatedProvisioner {
    config: StorageSimulation,
    /// Claims (by uid) being provisioned, and volumes being deleted.
    ops: BTreeMap<String, Op>,
    /// Claims whose volume was created (never provisioned twice).
    done: BTreeSet<String>,
    dirty: bool,
    recorders: BTreeMap<String, EventRecorder>,
    next_tag: u64,
}

impl SimulatedProvisioner {
    pub fn new(config: StorageSimulation) -> Self {
        SimulatedProvisioner {
            config,
            ops: BTreeMap::new(),
            done: BTreeSet::new(),
            dirty: true,
            recorders: BTreeMap::new(),
            next_tag: 0,
        }
    }

    /// The event source of a driver's provisioner: `<driver>_<controller pod>_<id>`
    /// upstream; kubesim names one controller pod per driver.
    fn recorder(&mut self, driver: &str) -> &mut EventRecorder {
        self.recorders
            .entry(driver.to_string())
            .or_insert_with(|| EventRecorder::new(format!("{driver}_csi-controller-0_kubesim"), ""))
    }

    fn event(
        &mut self,
        out: &mut Requests,
        driver: &str,
        obj: &Object,
        reason: &str,
        msg: &str,
        now: SimTime,
    ) {
        let r = self.recorder(driver).record(obj, EVENT_NORMAL, reason, msg, now);
        self.next_tag += 1;
        out.push(self.next_tag, r);
    }

    /// Claims to start provisioning: annotated for a simulated driver, unbound, no volume
    /// made for them yet, and free to go (Immediate, or a node selected).
    fn start_provisioning(&mut self, cache: &Cache, now: SimTime, out: &mut Requests) {
        let claims: Vec<(ObjectKey, PersistentVolumeClaim)> = cache
            .list(Kind::PersistentVolumeClaim)
            .filter_map(|o| o.as_persistent_volume_claim().map(|c| (o.key(), c.clone())))
            .collect();
        for (key, c) in claims {
            let Some(driver) = c.metadata.annotations.get(ANN_STORAGE_PROVISIONER).cloned() else { continue };
            let uid = &c.metadata.uid;
            if driver == NO_PROVISIONER
                || !c.spec.volume_name.is_empty()
                || c.metadata.deletion_timestamp.is_some()
            {
                continue;
            }
            if self.done.contains(uid) || self.ops.contains_key(uid) {
                continue;
            }
            let class = cache
                .get(&ObjectKey::new(Kind::StorageClass, "", c.class()))
                .and_then(|o| o.as_storage_class())
                .cloned();
            let Some(class) = class else { continue };
            let delayed =
                class.binding_mode() == crate::api::storage::VolumeBindingMode::WaitForFirstConsumer;
            if delayed && !c.metadata.annotations.contains_key(ANN_SELECTED_NODE) {
                continue;
            }
            let latency = self.config.driver(&driver).provisioning_latency;
            let msg = format!(
                "External provisioner is provisioning volume for claim \"{}/{}\"",
                c.metadata.namespace, c.metadata.name
            );
            if let Some(obj) = cache.get(&key).cloned() {
                self.event(out, &driver, &obj, "Provisioning", &msg, now);
            }
            self.ops.insert(uid.clone(), Op::Provision { claim: key, done_at: now + latency });
        }
    }

    /// The volume a provisioning makes (external-provisioner's controller.go
    /// ProvisionExt and the CSI driver's CreateVolume).
    fn volume_for(claim: &PersistentVolumeClaim, cache: &Cache, driver: &str) -> Option<PersistentVolume> {
        let class =
            cache.get(&ObjectKey::new(Kind::StorageClass, "", claim.class()))?.as_storage_class()?.clone();
        let name = format!("pvc-{}", claim.metadata.uid);
        let size = claim.spec.resources.requests.get(RESOURCE_STORAGE)?.clone();
        // A zonal volume in the selected node's zone (the driver's accessible topology).
        let node_affinity = claim
            .metadata
            .annotations
            .get(ANN_SELECTED_NODE)
            .and_then(|n| cache.get(&ObjectKey::new(Kind::Node, "", n.clone())))
            .and_then(|o| o.as_node())
            .and_then(|n| n.metadata.labels.get(LABEL_TOPOLOGY_ZONE))
            .map(|zone| VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: vec![NodeSelectorRequirement {
                            key: LABEL_TOPOLOGY_ZONE.into(),
                            operator: NodeSelectorOperator::In,
                            values: vec![zone.clone()],
                        }],
                        match_fields: Vec::new(),
                    }],
                }),
            });
        let mut pv = PersistentVolume {
            metadata: ObjectMeta {
                name: name.clone(),
                annotations: [(ANN_DYNAMICALLY_PROVISIONED.to_string(), driver.to_string())]
                    .into_iter()
                    .collect(),
                finalizers: vec![FINALIZER_EXTERNAL_PROVISIONER.into()],
                ..Default::default()
            },
            spec: PersistentVolumeSpec {
                capacity: [(RESOURCE_STORAGE.to_string(), size)].into_iter().collect(),
                access_modes: claim.spec.access_modes.clone(),
                claim_ref: Some(super::persistentvolume::claim_ref(claim)),
                persistent_volume_reclaim_policy: class
                    .reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".into()),
                storage_class_name: claim.class().to_string(),
                mount_options: class.mount_options.clone(),
                volume_mode: claim.spec.volume_mode.clone(),
                node_affinity,
                csi: Some(CsiPersistentVolumeSource {
                    driver: driver.to_string(),
                    volume_handle: volume_handle(&claim.metadata.uid),
                    fs_type: class
                        .parameters
                        .get("csi.storage.k8s.io/fstype")
                        .cloned()
                        .unwrap_or_else(|| "ext4".into()),
                    // `<provisioner start in ms>-<random>-<driver>`: the provisioner started
                    // with the cluster.
                    volume_attributes: [(
                        "storage.kubernetes.io/csiProvisionerIdentity".to_string(),
                        format!("{}-8081-{driver}", crate::time::EPOCH_UNIX_SECONDS * 1000),
                    )]
                    .into_iter()
                    .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        pv.apply_defaults();
        Some(pv)
    }

    fn finish_ops(&mut self, cache: &Cache, now: SimTime, out: &mut Requests) {
        let due: Vec<(String, Op)> = self
            .ops
            .iter()
            .filter(|(_, op)| match op {
                Op::Provision { done_at, .. } | Op::Delete { done_at, .. } => *done_at <= now,
            })
            .map(|(k, op)| (k.clone(), op.clone()))
            .collect();
        for (id, op) in due {
            self.ops.remove(&id);
            match op {
                Op::Provision { claim, .. } => {
                    let Some(obj) = cache.get(&claim).cloned() else { continue };
                    let Some(c) = obj.as_persistent_volume_claim() else { continue };
                    if c.metadata.uid != id || !c.spec.volume_name.is_empty() {
                        continue;
                    }
                    let Some(driver) = c.metadata.annotations.get(ANN_STORAGE_PROVISIONER).cloned() else {
                        continue;
                    };
                    let Some(pv) = Self::volume_for(c, cache, &driver) else { continue };
                    let msg = format!("Successfully provisioned volume {}", pv.metadata.name);
                    self.done.insert(id);
                    self.next_tag += 1;
                    out.push(self.next_tag, ApiRequest::Create(Object::PersistentVolume(pv)));
                    self.event(out, &driver, &obj, "ProvisioningSucceeded", &msg, now);
                }
                Op::Delete { volume, .. } => {
                    self.next_tag += 1;
                    out.push(
                        self.next_tag,
                        ApiRequest::Delete {
                            key: ObjectKey::new(Kind::PersistentVolume, "", volume),
                            grace_period_seconds: None,
                            precondition_uid: None,
                        },
                    );
                }
            }
        }
    }

    /// Released volumes this provisioner made with the Delete policy: deleted.
    fn start_deletions(&mut self, cache: &Cache, now: SimTime) {
        for o in cache.list(Kind::PersistentVolume) {
            let Some(pv) = o.as_persistent_volume() else { continue };
            let Some(driver) = pv.metadata.annotations.get(ANN_DYNAMICALLY_PROVISIONED) else { continue };
            if pv.phase() != VolumePhase::Released || pv.spec.persistent_volume_reclaim_policy != "Delete" {
                continue;
            }
            let id = format!("delete/{}", pv.metadata.name);
            if self.ops.contains_key(&id) {
                continue;
            }
            let latency = self.config.driver(driver).provisioning_latency;
            self.ops.insert(id, Op::Delete { volume: pv.metadata.name.clone(), done_at: now + latency });
        }
    }
}

impl Controller for SimulatedProvisioner {
    fn on_event(&mut self, ev: &WatchEvent, _cache: &Cache) {
        match ev.object.kind() {
            Kind::PersistentVolumeClaim | Kind::StorageClass | Kind::PersistentVolume => self.dirty = true,
            _ => {}
        }
        if ev.type_ == WatchEventType::Deleted && ev.object.kind() == Kind::PersistentVolumeClaim {
            self.done.remove(&ev.object.meta().uid);
        }
    }

    fn on_response(&mut self, _tag: u64, _result: &ApiResult, _cache: &Cache, _now: SimTime) {}

    fn reconcile(&mut self, cache: &Cache, now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        if std::mem::take(&mut self.dirty) {
            self.start_provisioning(cache, now, out);
            self.start_deletions(cache, now);
        }
        self.finish_ops(cache, now, out);
        for op in self.ops.values() {
            match op {
                Op::Provision { done_at, .. } | Op::Delete { done_at, .. } => out.wake(*done_at),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_names_glob() {
        assert!(glob("*", "ebs.csi.aws.com"));
        assert!(glob("*.csi.aws.com", "ebs.csi.aws.com"));
        assert!(!glob("*.csi.aws.com", "pd.csi.storage.gke.io"));
        assert!(glob("ebs.csi.aws.com", "ebs.csi.aws.com"));
        let s = StorageSimulation {
            drivers: vec![DriverSpec {
                name: "slow.*".into(),
                provisioning_latency: Duration::from_secs(60),
                attach_latency: Duration::from_secs(1),
                detach_latency: Duration::from_secs(1),
            }],
        };
        assert_eq!(s.driver("slow.example.com").provisioning_latency, Duration::from_secs(60));
        assert_eq!(s.driver("fast.example.com").provisioning_latency, DEFAULT_PROVISIONING_LATENCY);
    }
}
