//! The attach/detach controller (pkg/controller/volume/attachdetach, v1.33): attaches the
//! persistent volumes of scheduled pods to their nodes and detaches them once no pod on
//! the node needs them, writing `node.status.volumesAttached` for the kubelets.
//!
//! The desired state of world is the attachable volumes of every scheduled pod that has
//! not terminated (`util.DetermineVolumeAction`: a pod deleted on a dead node still counts
//! until its object is gone, because its containers were last seen running). The actual
//! state is what this controller attached. Its reconciler (reconciler/reconciler.go,
//! every 100 ms):
//!
//! - detaches first: a volume no longer desired on a node is detached once the node's
//!   kubelet no longer reports it in `status.volumesInUse`, or at once when the node has
//!   the `node.kubernetes.io/out-of-service` taint, or when the node is not Ready and
//!   `maxWaitForUnmountDuration` (6 minutes) has passed since the detach was first asked
//!   for (v1.33 force-detaches only unhealthy nodes; `--disable-force-detach-on-timeout`
//!   turns it off);
//! - then attaches: a ReadWriteOnce volume still attached to another node is not
//!   attached, and each pod waiting for it gets one `FailedAttachVolume` event, `Multi-Attach
//!   error for volume "<pv>" Volume is already exclusively attached to one node and can't
//!   be attached to another` (or naming the pods using it, when they still exist);
//!   attaching takes the simulated driver's attach latency and ends with
//!   `SuccessfulAttachVolume` on the pods.
//!
//! One operation runs at a time per volume (per volume and node for volumes that may be
//! attached to several nodes), as nestedpendingoperations allows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use super::provisioner::StorageSimulation;
use super::{Controller, Requests};
use crate::api::node::AttachedVolume;
use crate::api::pod::ContainerStatus;
use crate::api::storage::volume_binding;
use crate::api::{Kind, Node, Object, ObjectKey, Pod, PodPhase, EVENT_NORMAL, EVENT_WARNING};
use crate::client::{ApiRequest, ApiResult, Cache, EventRecorder, Patch, WatchEvent, WatchEventType};
use crate::time::SimTime;

/// The controller's event source.
pub const COMPONENT: &str = "attachdetach-controller";
/// attach_detach_controller.go reconcilerMaxWaitForUnmountDuration.
pub const MAX_WAIT_FOR_UNMOUNT_DURATION: Duration = Duration::from_secs(6 * 60);
/// attach_detach_controller.go reconcilerLoopPeriod.
pub const RECONCILER_LOOP_PERIOD: Duration = Duration::from_millis(100);
/// `v1.TaintNodeOutOfService`.
pub const TAINT_OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";
/// pkg/kubelet/events reasons the controller records.
pub const REASON_FAILED_ATTACH_VOLUME: &str = "FailedAttachVolume";
pub const REASON_SUCCESSFUL_ATTACH_VOLUME: &str = "SuccessfulAttachVolume";

/// A volume a scheduled pod needs on its node.
#[derive(Clone, Debug)]
struct Desired {
    pv_name: String,
    multi_attach_allowed: bool,
    pods: BTreeSet<(String, String)>,
}

/// A volume attached to a node.
#[derive(Clone, Debug)]
struct Attached {
    multi_attach_allowed: bool,
    /// When the reconciler first found it not desired (reset when desired again).
    detach_requested_at: Option<SimTime>,
    /// Listed in the node's `volumesAttached` (false once a detach starts).
    report_as_attached: bool,
}

#[derive(Clone, Debug)]
enum OpKind {
    Attach,
    Detach,
}

#[derive(Clone, Debug)]
struct Operation {
    kind: OpKind,
    volume: String,
    node: String,
    done_at: SimTime,
}

pub struct AttachDetachController {
    storage: StorageSimulation,
    disable_force_detach_on_timeout: bool,
    /// Pods with persistent volume claims, by namespace and name.
    pods: BTreeMap<(String, String), Arc<Object>>,
    /// (volume unique name, node) -> attachment.
    attached: BTreeMap<(String, String), Attached>,
    /// The volumes each node's kubelet last reported in use.
    in_use: BTreeMap<String, BTreeSet<String>>,
    /// (node, volume) whose Multi-Attach error was reported for the current wait.
    multi_attach_reported: BTreeSet<(String, String)>,
    /// Operations by key (the volume, or `volume@node` for multi-attach volumes).
    ops: BTreeMap<String, Operation>,
    /// Nodes whose volumesAttached must be written.
    status_dirty: BTreeSet<String>,
    dirty: bool,
    recorder: EventRecorder,
    next_tag: u64,
}

/// `util.IsPodTerminated`: a terminal phase, or being deleted with no container running.
pub fn is_pod_terminated(p: &Pod) -> bool {
    if matches!(p.phase(), PodPhase::Failed | PodPhase::Succeeded) {
        return true;
    }
    let not_running =
        |cs: &[ContainerStatus]| cs.iter().all(|c| c.state.terminated.is_some() || c.state.waiting.is_some());
    p.metadata.deletion_timestamp.is_some()
        && not_running(&p.status.init_container_statuses)
        && not_running(&p.status.container_statuses)
}

impl AttachDetachController {
    pub fn new(storage: StorageSimulation, disable_force_detach_on_timeout: bool) -> Self {
        AttachDetachController {
            storage,
            disable_force_detach_on_timeout,
            pods: BTreeMap::new(),
            attached: BTreeMap::new(),
            in_use: BTreeMap::new(),
            multi_attach_reported: BTreeSet::new(),
            ops: BTreeMap::new(),
            status_dirty: BTreeSet::new(),
            dirty: false,
            recorder: EventRecorder::new(COMPONENT, ""),
            next_tag: 0,
        }
    }

    fn op_key(volume: &str, node: &str, multi_attach_allowed: bool) -> String {
        if multi_attach_allowed {
            format!("{volume}@{node}")
        } else {
            volume.to_string()
        }
    }

    /// The desired state of world: (node, volume unique name) -> what needs it.
    fn desired(&self, cache: &Cache) -> BTreeMap<(String, String), Desired> {
        let mut dsw: BTreeMap<(String, String), Desired> = BTreeMap::new();
        for obj in self.pods.values() {
            let Some(p) = obj.as_pod() else { continue };
            let node = &p.spec.node_name;
            // Only nodes the controller manages (it knows them).
            if node.is_empty()
                || is_pod_terminated(p)
                || cache.get(&ObjectKey::new(Kind::Node, "", node.clone())).is_none()
            {
                continue;
            }
            for (_, claim) in volume_binding::pod_claims(&p.spec) {
                let key = ObjectKey::new(Kind::PersistentVolumeClaim, p.metadata.namespace.clone(), claim);
                let Some(pvc) = cache.get(&key).and_then(|o| o.as_persistent_volume_claim()) else {
                    continue;
                };
                if !pvc.is_bound() {
                    continue;
                }
                let vkey = ObjectKey::new(Kind::PersistentVolume, "", pvc.spec.volume_name.clone());
                let Some(pv) = cache.get(&vkey).and_then(|o| o.as_persistent_volume()) else { continue };
                if !pv.is_attachable() {
                    continue;
                }
                let d = dsw.entry((node.clone(), pv.unique_name())).or_insert_with(|| Desired {
                    pv_name: pv.metadata.name.clone(),
                    multi_attach_allowed: pv.multi_attach_allowed(),
                    pods: BTreeSet::new(),
                });
                d.pods.insert((p.metadata.namespace.clone(), p.metadata.name.clone()));
            }
        }
        dsw
    }

    fn node<'a>(cache: &'a Cache, name: &str) -> Option<&'a Node> {
        cache.get(&ObjectKey::new(Kind::Node, "", name)).and_then(|o| o.as_node())
    }

    #[allow(clippy::too_many_arguments)]
    fn pod_event(
        &mut self,
        cache: &Cache,
        pod: &(String, String),
        type_: &str,
        reason: &str,
        msg: &str,
        now: SimTime,
        out: &mut Requests,
    ) {
        let Some(obj) = cache.get(&ObjectKey::new(Kind::Pod, pod.0.clone(), pod.1.clone())).cloned() else {
            return;
        };
        let r = self.recorder.record(&obj, type_, reason, msg, now);
        self.next_tag += 1;
        out.push(self.next_tag, r);
    }

    /// Operations that finished by `now`: the actual state of world follows.
    fn finish_ops(
        &mut self,
        dsw: &BTreeMap<(String, String), Desired>,
        cache: &Cache,
        now: SimTime,
        out: &mut Requests,
    ) {
        let done: Vec<String> =
            self.ops.iter().filter(|(_, o)| o.done_at <= now).map(|(k, _)| k.clone()).collect();
        for k in done {
            let Some(op) = self.ops.remove(&k) else { continue };
            self.status_dirty.insert(op.node.clone());
            match op.kind {
                OpKind::Attach => {
                    let Some(d) = dsw.get(&(op.node.clone(), op.volume.clone())) else {
                        // Attached for a pod that is gone: the detach pass handles it.
                        self.attached.insert(
                            (op.volume.clone(), op.node.clone()),
                            Attached {
                                multi_attach_allowed: true,
                                detach_requested_at: None,
                                report_as_attached: true,
                            },
                        );
                        continue;
                    };
                    self.attached.insert(
                        (op.volume.clone(), op.node.clone()),
                        Attached {
                            multi_attach_allowed: d.multi_attach_allowed,
                            detach_requested_at: None,
                            report_as_attached: true,
                        },
                    );
                    // operation_generator.go: VolumeToAttach.GenerateMsg("AttachVolume.Attach
                    // succeeded", "") — the empty suffix leaves a trailing space.
                    let msg = format!("AttachVolume.Attach succeeded for volume {:?} ", d.pv_name);
                    for pod in d.pods.clone() {
                        self.pod_event(
                            cache,
                            &pod,
                            EVENT_NORMAL,
                            REASON_SUCCESSFUL_ATTACH_VOLUME,
                            &msg,
                            now,
                            out,
                        );
                    }
                }
                OpKind::Detach => {
                    self.attached.remove(&(op.volume.clone(), op.node.clone()));
                }
            }
        }
    }

    /// The reconciler's detach pass; returns when it must look again.
    fn detach_pass(
        &mut self,
        dsw: &BTreeMap<(String, String), Desired>,
        cache: &Cache,
        now: SimTime,
    ) -> Option<SimTime> {
        let mut wake: Option<SimTime> = None;
        let keys: Vec<(String, String)> = self.attached.keys().cloned().collect();
        for (volume, node) in keys {
            if dsw.contains_key(&(node.clone(), volume.clone())) {
                continue;
            }
            let a = self.attached.get_mut(&(volume.clone(), node.clone())).expect("attached");
            if self.ops.contains_key(&Self::op_key(&volume, &node, a.multi_attach_allowed))
                || !a.report_as_attached
            {
                continue;
            }
            let requested = *a.detach_requested_at.get_or_insert(now);
            let expired = now.saturating_sub(requested) > MAX_WAIT_FOR_UNMOUNT_DURATION;
            let n = Self::node(cache, &node);
            let healthy = n.is_some_and(|n| n.is_ready());
            let force_timeout = expired && !self.disable_force_detach_on_timeout;
            let force = !healthy && force_timeout;
            let out_of_service =
                n.is_some_and(|n| n.spec.taints.iter().any(|t| t.key == TAINT_OUT_OF_SERVICE));
            let mounted = self.in_use.get(&node).is_some_and(|s| s.contains(&volume));
            if mounted && !force && !out_of_service {
                // Still mounted: look again when the unmount wait runs out (a node that
                // turns unhealthy later is looked at on its update).
                if !expired {
                    let at = requested + MAX_WAIT_FOR_UNMOUNT_DURATION + RECONCILER_LOOP_PERIOD;
                    wake = Some(wake.map_or(at, |w| w.min(at)));
                }
                continue;
            }
            a.report_as_attached = false;
            let latency = self.storage.driver(&driver_of(&volume)).detach_latency;
            self.status_dirty.insert(node.clone());
            let key = Self::op_key(&volume, &node, a.multi_attach_allowed);
            self.ops.insert(key, Operation { kind: OpKind::Detach, volume, node, done_at: now + latency });
        }
        wake
    }

    /// The reconciler's attach pass.
    fn attach_pass(
        &mut self,
        dsw: &BTreeMap<(String, String), Desired>,
        cache: &Cache,
        now: SimTime,
        out: &mut Requests,
    ) {
        for ((node, volume), d) in dsw {
            let key = Self::op_key(volume, node, d.multi_attach_allowed);
            if self.ops.contains_key(&key) {
                continue;
            }
            if let Some(a) = self.attached.get_mut(&(volume.clone(), node.clone())) {
                // Attached here: desired again, the detach request is dropped.
                a.detach_requested_at = None;
                if !a.report_as_attached {
                    a.report_as_attached = true;
                    self.status_dirty.insert(node.clone());
                }
                continue;
            }
            if !d.multi_attach_allowed {
                let elsewhere: Vec<String> = self
                    .attached
                    .keys()
                    .filter(|(v, n)| v == volume && n != node)
                    .map(|(_, n)| n.clone())
                    .collect();
                if !elsewhere.is_empty() {
                    if self.multi_attach_reported.insert((node.clone(), volume.clone())) {
                        self.report_multi_attach(dsw, d, volume, &elsewhere, cache, now, out);
                    }
                    continue;
                }
            }
            let latency = self.storage.driver(&driver_of(volume)).attach_latency;
            self.ops.insert(
                key,
                Operation {
                    kind: OpKind::Attach,
                    volume: volume.clone(),
                    node: node.clone(),
                    done_at: now + latency,
                },
            );
        }
    }

    /// reportMultiAttachError: the pods on the other nodes still using the volume are named
    /// (by namespace); without them, the plain message.
    #[allow(clippy::too_many_arguments)]
    fn report_multi_attach(
        &mut self,
        dsw: &BTreeMap<(String, String), Desired>,
        d: &Desired,
        volume: &str,
        other_nodes: &[String],
        cache: &Cache,
        now: SimTime,
        out: &mut Requests,
    ) {
        let users: Vec<(String, String)> = other_nodes
            .iter()
            .filter_map(|n| dsw.get(&(n.clone(), volume.to_string())))
            .flat_map(|x| x.pods.iter().cloned())
            .collect();
        for pod in &d.pods {
            let local: Vec<&str> =
                users.iter().filter(|(ns, _)| *ns == pod.0).map(|(_, n)| n.as_str()).collect();
            let others = users.len() - local.len();
            let detail = if users.is_empty() {
                "Volume is already exclusively attached to one node and can't be attached to another"
                    .to_string()
            } else if local.is_empty() {
                format!("Volume is already used by {others} pod(s) in different namespaces")
            } else if others > 0 {
                format!(
                    "Volume is already used by pod(s) {} and {others} pod(s) in different namespaces",
                    local.join(", ")
                )
            } else {
                format!("Volume is already used by pod(s) {}", local.join(", "))
            };
            let msg = format!("Multi-Attach error for volume {:?} {detail}", d.pv_name);
            self.pod_event(cache, pod, EVENT_WARNING, REASON_FAILED_ATTACH_VOLUME, &msg, now, out);
        }
    }

    /// The node status updater: each changed node's list of attached volumes.
    fn update_node_statuses(&mut self, cache: &Cache, out: &mut Requests) {
        for node in std::mem::take(&mut self.status_dirty) {
            let Some(n) = Self::node(cache, &node) else { continue };
            let volumes: Vec<AttachedVolume> = self
                .attached
                .iter()
                .filter(|((_, n), a)| *n == node && a.report_as_attached)
                .map(|((v, _), _)| AttachedVolume { name: v.clone(), device_path: String::new() })
                .collect();
            if n.status.volumes_attached == volumes {
                continue;
            }
            self.next_tag += 1;
            out.push(
                self.next_tag,
                ApiRequest::Patch {
                    key: ObjectKey::new(Kind::Node, "", node),
                    patch: Patch::NodeVolumesAttached { volumes },
                },
            );
        }
    }
}

/// The CSI driver of a volume's unique name (`kubernetes.io/csi/<driver>^<handle>`).
fn driver_of(unique: &str) -> String {
    unique
        .strip_prefix("kubernetes.io/csi/")
        .and_then(|s| s.split('^').next())
        .unwrap_or_default()
        .to_string()
}

impl Controller for AttachDetachController {
    fn on_event(&mut self, ev: &WatchEvent, _cache: &Cache) {
        let o = &ev.object;
        match o.kind() {
            Kind::Pod => {
                let Some(p) = o.as_pod() else { return };
                let k = (p.metadata.namespace.clone(), p.metadata.name.clone());
                let has_claims = volume_binding::pod_claims(&p.spec).next().is_some();
                if ev.type_ == WatchEventType::Deleted || !has_claims {
                    if self.pods.remove(&k).is_some() {
                        self.dirty = true;
                    }
                    return;
                }
                self.pods.insert(k, o.clone());
                self.dirty = true;
            }
            Kind::Node => {
                let Some(n) = o.as_node() else { return };
                let name = n.metadata.name.clone();
                // processVolumesInUse: what the kubelet says it mounts.
                let now: BTreeSet<String> = n.status.volumes_in_use.iter().cloned().collect();
                if ev.type_ != WatchEventType::Deleted {
                    self.in_use.insert(name.clone(), now);
                }
                // A node whose list differs from ours is written again.
                let ours: Vec<&String> = self
                    .attached
                    .iter()
                    .filter(|((_, nn), a)| *nn == name && a.report_as_attached)
                    .map(|((v, _), _)| v)
                    .collect();
                let theirs: Vec<&String> = n.status.volumes_attached.iter().map(|a| &a.name).collect();
                if ours != theirs && ev.type_ != WatchEventType::Deleted {
                    self.status_dirty.insert(name);
                }
                self.dirty = true;
            }
            Kind::PersistentVolumeClaim | Kind::PersistentVolume => self.dirty = true,
            _ => {}
        }
    }

    fn on_response(&mut self, _tag: u64, result: &ApiResult, _cache: &Cache, _now: SimTime) {
        if let Ok(o) = result {
            if o.kind() == Kind::Node {
                self.dirty = true;
            }
        }
    }

    fn reconcile(&mut self, cache: &Cache, now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        let due = self.ops.values().any(|o| o.done_at <= now);
        let waiting = self.attached.values().any(|a| a.detach_requested_at.is_some());
        if !self.dirty && !due && !waiting && self.status_dirty.is_empty() {
            // The process keeps only the latest wake-up it asked for: the operations under
            // way are asked for again on every pass, or a pass with nothing to do loses them.
            for op in self.ops.values() {
                out.wake(op.done_at);
            }
            return;
        }
        self.dirty = false;
        let dsw = self.desired(cache);
        self.finish_ops(&dsw, cache, now, out);
        // Detaches before attaches, so that a volume moving with its pod is freed first.
        let wake = self.detach_pass(&dsw, cache, now);
        self.attach_pass(&dsw, cache, now, out);
        self.multi_attach_reported.retain(|(n, v)| dsw.contains_key(&(n.clone(), v.clone())));
        self.update_node_statuses(cache, out);
        if let Some(w) = wake {
            out.wake(w);
        }
        for op in self.ops.values() {
            out.wake(op.done_at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::node::{NodeCondition, NodeStatus};
    use crate::api::pod::{PersistentVolumeClaimVolumeSource, PodSpec, Volume};
    use crate::api::storage::{
        AccessMode, ClaimPhase, CsiPersistentVolumeSource, PersistentVolume, PersistentVolumeClaim,
        PersistentVolumeClaimSpec, PersistentVolumeSpec,
    };
    use crate::api::{ConditionStatus, ObjectMeta, Taint, TaintEffect};
    use rand::SeedableRng;

    const UNIQUE: &str = "kubernetes.io/csi/ebs.csi.aws.com^vol-1";

    struct Harness {
        c: AttachDetachController,
        cache: Cache,
        rng: ChaCha8Rng,
        events: Vec<(SimTime, String, String, String)>,
        patches: Vec<(SimTime, String, Vec<String>)>,
        wake: Option<SimTime>,
    }

    impl Harness {
        fn new() -> Self {
            let mut h = Harness {
                c: AttachDetachController::new(StorageSimulation::default(), false),
                cache: Cache::default(),
                rng: ChaCha8Rng::seed_from_u64(1),
                events: Vec::new(),
                patches: Vec::new(),
                wake: None,
            };
            for n in ["node-1", "node-2"] {
                h.node(n, true, &[], &[]);
            }
            let pvc = PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: "data".into(),
                    namespace: "default".into(),
                    uid: "c".into(),
                    ..Default::default()
                },
                spec: PersistentVolumeClaimSpec { volume_name: "pvc-c".into(), ..Default::default() },
                status: crate::api::storage::PersistentVolumeClaimStatus {
                    phase: Some(ClaimPhase::Bound),
                    ..Default::default()
                },
                ..Default::default()
            };
            h.put(Object::PersistentVolumeClaim(pvc));
            let pv = PersistentVolume {
                metadata: ObjectMeta { name: "pvc-c".into(), ..Default::default() },
                spec: PersistentVolumeSpec {
                    access_modes: vec![AccessMode::ReadWriteOnce],
                    csi: Some(CsiPersistentVolumeSource {
                        driver: "ebs.csi.aws.com".into(),
                        volume_handle: "vol-1".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            h.put(Object::PersistentVolume(pv));
            h
        }

        fn put(&mut self, o: Object) {
            let ev = WatchEvent { type_: WatchEventType::Modified, object: Arc::new(o) };
            self.cache.apply(&ev);
            self.c.on_event(&ev, &self.cache);
        }

        fn delete(&mut self, key: ObjectKey) {
            let o = self.cache.get(&key).unwrap().clone();
            let ev = WatchEvent { type_: WatchEventType::Deleted, object: o };
            self.cache.apply(&ev);
            self.c.on_event(&ev, &self.cache);
        }

        fn node(&mut self, name: &str, ready: bool, in_use: &[&str], taints: &[&str]) {
            let attached = Self::node_of(&self.cache, name)
                .map(|n| n.status.volumes_attached.clone())
                .unwrap_or_default();
            let n = Node {
                metadata: ObjectMeta { name: name.into(), ..Default::default() },
                spec: crate::api::NodeSpec {
                    taints: taints
                        .iter()
                        .map(|k| Taint {
                            key: k.to_string(),
                            value: String::new(),
                            effect: TaintEffect::NoExecute,
                            time_added: None,
                        })
                        .collect(),
                    ..Default::default()
                },
                status: NodeStatus {
                    conditions: vec![NodeCondition {
                        type_: "Ready".into(),
                        status: if ready { ConditionStatus::True } else { ConditionStatus::Unknown },
                        ..Default::default()
                    }],
                    volumes_in_use: in_use.iter().map(|s| s.to_string()).collect(),
                    volumes_attached: attached,
                    ..Default::default()
                },
            };
            self.put(Object::Node(n));
        }

        fn node_of<'a>(cache: &'a Cache, name: &str) -> Option<&'a Node> {
            cache.get(&ObjectKey::new(Kind::Node, "", name)).and_then(|o| o.as_node())
        }

        fn pod(&mut self, name: &str, node: &str) {
            let p = Pod {
                metadata: ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() },
                spec: Arc::new(PodSpec {
                    node_name: node.into(),
                    volumes: vec![Volume {
                        name: "data".into(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                            claim_name: "data".into(),
                            read_only: false,
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            };
            self.put(Object::Pod(p));
        }

        fn step(&mut self, now: SimTime) {
            let mut out = Requests::default();
            self.c.reconcile(&self.cache, now, &mut self.rng, &mut out);
            self.wake = out.wake_at;
            for (_, r) in out.items {
                match r {
                    ApiRequest::Create(Object::Event(e)) | ApiRequest::Update(Object::Event(e)) => self
                        .events
                        .push((now, e.involved_object.name.clone(), e.reason.clone(), e.message.clone())),
                    ApiRequest::Patch { key, patch: Patch::NodeVolumesAttached { volumes } } => {
                        self.patches.push((
                            now,
                            key.name.clone(),
                            volumes.iter().map(|v| v.name.clone()).collect(),
                        ));
                        let mut n = Self::node_of(&self.cache, &key.name).unwrap().clone();
                        n.status.volumes_attached = volumes;
                        self.put(Object::Node(n));
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }

        fn run_until(&mut self, t: SimTime) {
            while let Some(w) = self.wake.filter(|w| *w <= t) {
                self.step(w);
            }
            self.step(t);
        }

        fn attached_to(&self, node: &str) -> Vec<String> {
            Self::node_of(&self.cache, node)
                .unwrap()
                .status
                .volumes_attached
                .iter()
                .map(|a| a.name.clone())
                .collect()
        }
    }

    /// A pod scheduled with a claim: attached after the driver's latency, with the event
    /// and the node's volumesAttached.
    #[test]
    fn attaches_for_a_scheduled_pod() {
        let mut h = Harness::new();
        h.pod("db-0", "node-1");
        h.step(SimTime::from_secs(10));
        assert!(h.attached_to("node-1").is_empty());
        h.run_until(SimTime::from_secs(12));
        assert_eq!(h.attached_to("node-1"), vec![UNIQUE]);
        assert_eq!(
            h.events,
            vec![(
                SimTime::from_secs(12),
                "db-0".into(),
                REASON_SUCCESSFUL_ATTACH_VOLUME.into(),
                "AttachVolume.Attach succeeded for volume \"pvc-c\" ".into()
            )]
        );
    }

    /// The process keeps only the wake-up of its latest pass: a pass with nothing to do
    /// while an attach is under way must ask for the attach's end again.
    #[test]
    fn idle_pass_keeps_the_operations_wake_up() {
        let mut h = Harness::new();
        h.pod("db-0", "node-1");
        h.step(SimTime::from_secs(10));
        assert_eq!(h.wake, Some(SimTime::from_secs(12)));
        h.step(SimTime::from_millis(10_100));
        assert_eq!(h.wake, Some(SimTime::from_secs(12)), "an idle pass loses the attach's end");
    }

    /// The node dies with the volume mounted; its pod is force-deleted and replaced on
    /// another node: Multi-Attach error once, then a force detach 6 minutes after the
    /// detach was first asked for (the node is not Ready), then the attach.
    #[test]
    fn dead_node_force_detach_after_six_minutes() {
        let mut h = Harness::new();
        h.pod("db-0", "node-1");
        h.run_until(SimTime::from_secs(12));
        h.node("node-1", false, &[UNIQUE], &[]);
        h.step(SimTime::from_secs(100));
        h.delete(ObjectKey::new(Kind::Pod, "default", "db-0"));
        h.step(SimTime::from_secs(120));
        h.pod("db-0", "node-2");
        h.step(SimTime::from_secs(121));
        let multi: Vec<_> = h.events.iter().filter(|e| e.2 == REASON_FAILED_ATTACH_VOLUME).collect();
        assert_eq!(multi.len(), 1);
        assert_eq!(
            multi[0].3,
            "Multi-Attach error for volume \"pvc-c\" Volume is already exclusively attached to one node and can't be attached to another"
        );
        h.run_until(SimTime::from_secs(470));
        assert_eq!(h.attached_to("node-1"), vec![UNIQUE], "still waiting for the unmount");
        assert_eq!(
            h.events.iter().filter(|e| e.2 == REASON_FAILED_ATTACH_VOLUME).count(),
            1,
            "reported once"
        );
        // Requested at 120 s: detach starts at 480.1 s, done 2 s later, attach 2 s after.
        h.run_until(SimTime::from_millis(480_100));
        assert!(h.attached_to("node-1").is_empty());
        h.run_until(SimTime::from_secs(490));
        assert_eq!(h.attached_to("node-2"), vec![UNIQUE]);
        let ok = h.events.iter().rfind(|e| e.2 == REASON_SUCCESSFUL_ATTACH_VOLUME).unwrap();
        assert_eq!(ok.0, SimTime::from_millis(484_100));
    }

    /// A healthy node keeps a mounted volume as long as its kubelet says it is mounted,
    /// however long; the out-of-service taint detaches at once.
    #[test]
    fn healthy_node_waits_out_of_service_does_not() {
        let mut h = Harness::new();
        h.pod("db-0", "node-1");
        h.run_until(SimTime::from_secs(12));
        h.node("node-1", true, &[UNIQUE], &[]);
        h.delete(ObjectKey::new(Kind::Pod, "default", "db-0"));
        h.run_until(SimTime::from_secs(1000));
        assert_eq!(h.attached_to("node-1"), vec![UNIQUE], "no force detach from a Ready node");
        h.node("node-1", false, &[UNIQUE], &[TAINT_OUT_OF_SERVICE]);
        h.run_until(SimTime::from_secs(1001));
        h.run_until(SimTime::from_secs(1004));
        assert!(h.attached_to("node-1").is_empty());
        // The kubelet unmounting is the ordinary path.
        let mut h = Harness::new();
        h.pod("db-0", "node-1");
        h.run_until(SimTime::from_secs(12));
        h.node("node-1", true, &[UNIQUE], &[]);
        h.delete(ObjectKey::new(Kind::Pod, "default", "db-0"));
        h.step(SimTime::from_secs(20));
        h.node("node-1", true, &[], &[]);
        h.run_until(SimTime::from_secs(30));
        assert!(h.attached_to("node-1").is_empty());
    }

    #[test]
    fn terminated_pods_release_their_volumes() {
        let mut p = Pod::default();
        assert!(!is_pod_terminated(&p));
        p.metadata.deletion_timestamp = Some(SimTime::from_secs(1));
        p.status.container_statuses = vec![ContainerStatus {
            state: crate::api::pod::ContainerState {
                running: Some(Default::default()),
                ..Default::default()
            },
            ..Default::default()
        }];
        assert!(!is_pod_terminated(&p), "a deleted pod last seen running still needs its volume");
        p.status.container_statuses[0].state =
            crate::api::pod::ContainerState { terminated: Some(Default::default()), ..Default::default() };
        assert!(is_pod_terminated(&p));
    }
}
