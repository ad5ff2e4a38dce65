//! The PersistentVolume controller (pkg/controller/volume/persistentvolume/pv_controller.go,
//! v1.33): binds claims to volumes, both ways (`claim.spec.volumeName` and
//! `volume.spec.claimRef`), and asks provisioners for volumes.
//!
//! A claim is synced when it or a volume changes and on every resync
//! (`--pvclaimbinder-sync-period`, 15 s): a volume created for an Immediate claim by hand
//! is found at the claim's next resync, as upstream. A binding is four writes, each after
//! the previous one's answer (the volume's claimRef, its phase, the claim's volumeName and
//! annotations, its phase): what the controller wrote is remembered, so a sync does not
//! redo a write the informer has not delivered yet (pv_controller's own store).
//!
//! Delayed binding (WaitForFirstConsumer): the controller binds nothing but volumes
//! pre-bound to the claim and reports `WaitForFirstConsumer` (or `WaitForPodScheduled`
//! while a pod using the claim is unscheduled) at each sync, until the scheduler's
//! VolumeBinding plugin annotates the claim with its node
//! (`volume.kubernetes.io/selected-node`); then the claim is provisioned like an
//! Immediate one. Provisioning is external, as for every CSI driver: the controller
//! annotates the claim with the provisioner's name and reports `ExternalProvisioning`;
//! the simulated external provisioner (`provisioner.rs`) creates the volume.
//!
//! Reclaim: a bound volume whose claim is gone is Released; `Retain` keeps it, `Delete`
//! leaves its deletion to the provisioner that made it. Recycle is not simulated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use super::{Controller, Requests};
use crate::api::storage::{
    volume_binding, ClaimPhase, PersistentVolume, PersistentVolumeClaim, VolumePhase,
    ANN_BETA_STORAGE_PROVISIONER, ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER, ANN_DYNAMICALLY_PROVISIONED,
    ANN_STORAGE_PROVISIONER,
};
use crate::api::{Kind, Object, ObjectKey, ObjectReference, EVENT_NORMAL, EVENT_WARNING};
use crate::client::{ApiRequest, ApiResult, Cache, EventRecorder, WatchEvent, WatchEventType};
use crate::time::SimTime;

/// The controller's event source (`persistentvolume-controller`).
pub const COMPONENT: &str = "persistentvolume-controller";
/// kube-controller-manager --pvclaimbinder-sync-period (default 15s).
pub const DEFAULT_SYNC_PERIOD: Duration = Duration::from_secs(15);

/// pkg/controller/volume/events reasons, with pv_controller.go's messages.
pub mod events {
    pub const WAIT_FOR_FIRST_CONSUMER: &str = "WaitForFirstConsumer";
    pub const MESSAGE_WAIT_FOR_FIRST_CONSUMER: &str =
        "waiting for first consumer to be created before binding";
    pub const WAIT_FOR_POD_SCHEDULED: &str = "WaitForPodScheduled";
    pub const FAILED_BINDING: &str = "FailedBinding";
    pub const MESSAGE_NO_VOLUME_NO_CLASS: &str =
        "no persistent volumes available for this claim and no storage class is set";
    pub const EXTERNAL_PROVISIONING: &str = "ExternalProvisioning";
    pub const PROVISIONING_FAILED: &str = "ProvisioningFailed";
    pub const VOLUME_MISMATCH: &str = "VolumeMismatch";
    pub const CLAIM_LOST: &str = "ClaimLost";
    pub const CLAIM_MISBOUND: &str = "ClaimMisbound";

    /// provisionClaimOperationExternal's message.
    pub fn external_provisioning(provisioner: &str) -> String {
        format!(
            "Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
        )
    }
}

/// The next write a claim's sync wants, with the event that goes with it.
// A short-lived return value: boxing the request would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Step {
    Write(ApiRequest),
    Nothing,
}

pub struct PersistentVolumeController {
    dirty_claims: BTreeSet<ObjectKey>,
    dirty_volumes: BTreeSet<String>,
    /// Objects with a write in flight: their next sync waits for the answer.
    busy: BTreeSet<ObjectKey>,
    /// The last version of each object this controller wrote (newer than the cache until
    /// the informer delivers it).
    written: BTreeMap<ObjectKey, Arc<Object>>,
    routes: BTreeMap<u64, (ObjectKey, Option<ObjectKey>)>,
    next_tag: u64,
    recorder: EventRecorder,
    events: Vec<(u64, ApiRequest)>,
    sync_period: Duration,
    next_resync: Option<SimTime>,
}

impl PersistentVolumeController {
    pub fn new(sync_period: Duration) -> Self {
        PersistentVolumeController {
            dirty_claims: BTreeSet::new(),
            dirty_volumes: BTreeSet::new(),
            busy: BTreeSet::new(),
            written: BTreeMap::new(),
            routes: BTreeMap::new(),
            next_tag: 0,
            recorder: EventRecorder::new(COMPONENT, ""),
            events: Vec::new(),
            sync_period,
            next_resync: None,
        }
    }

    /// The object as this controller last knows it: the cache, or its own newer write.
    fn latest(&self, key: &ObjectKey, cache: &Cache) -> Option<Arc<Object>> {
        let cached = cache.get(key);
        match (cached, self.written.get(key)) {
            (Some(c), Some(w))
                if w.meta().uid == c.meta().uid && w.meta().resource_version > c.meta().resource_version =>
            {
                Some(w.clone())
            }
            (Some(c), _) => Some(c.clone()),
            (None, _) => None,
        }
    }

    fn volume(&self, name: &str, cache: &Cache) -> Option<Arc<Object>> {
        self.latest(&ObjectKey::new(Kind::PersistentVolume, "", name), cache)
    }

    fn event(&mut self, obj: &Object, type_: &str, reason: &str, message: &str, now: SimTime) {
        let r = self.recorder.record(obj, type_, reason, message, now);
        self.next_tag += 1;
        self.events.push((self.next_tag, r));
    }

    /// Sends a write of `key`; `also` is an object whose sync should follow the answer
    /// (the claim of a volume write).
    fn send(&mut self, out: &mut Requests, key: ObjectKey, also: Option<ObjectKey>, r: ApiRequest) {
        self.next_tag += 1;
        self.busy.insert(key.clone());
        self.routes.insert(self.next_tag, (key, also));
        out.push(self.next_tag, r);
    }

    /// `updateClaimStatus`: the phase, with the bound volume's access modes and capacity.
    fn claim_status(claim: &PersistentVolumeClaim, phase: ClaimPhase, pv: Option<&PersistentVolume>) -> Step {
        let mut n = claim.clone();
        n.status.phase = Some(phase);
        match pv {
            Some(v) => {
                n.status.access_modes = v.spec.access_modes.clone();
                n.status.capacity = v.spec.capacity.clone();
            }
            None => {
                n.status.access_modes.clear();
                n.status.capacity.clear();
            }
        }
        if n.status == claim.status {
            return Step::Nothing;
        }
        n.metadata.resource_version = 0;
        Step::Write(ApiRequest::UpdateStatus(Object::PersistentVolumeClaim(n)))
    }

    fn volume_phase(pv: &PersistentVolume, phase: VolumePhase, now: SimTime) -> Step {
        if pv.phase() == phase {
            return Step::Nothing;
        }
        let mut n = pv.clone();
        n.status.phase = Some(phase);
        n.status.message.clear();
        n.status.last_phase_transition_time = Some(now);
        n.metadata.resource_version = 0;
        Step::Write(ApiRequest::UpdateStatus(Object::PersistentVolume(n)))
    }

    /// `bind`: the volume's claimRef, its phase, the claim's volumeName and annotations,
    /// the claim's phase; the first that is not done yet.
    fn bind(pv: &PersistentVolume, claim: &PersistentVolumeClaim, now: SimTime) -> Step {
        // bindVolumeToClaim.
        let r = pv.spec.claim_ref.as_ref();
        let by_controller = !volume_binding::is_volume_bound_to_claim(pv, claim);
        let needs_ref = r.is_none_or(|r| {
            r.name != claim.metadata.name
                || r.namespace != claim.metadata.namespace
                || r.uid != claim.metadata.uid
        });
        let needs_ann = by_controller && !pv.metadata.annotations.contains_key(ANN_BOUND_BY_CONTROLLER);
        if needs_ref || needs_ann {
            let mut n = pv.clone();
            if needs_ref {
                n.spec.claim_ref = Some(claim_ref(claim));
            }
            if needs_ann {
                n.metadata.annotations.insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
            }
            n.metadata.resource_version = 0;
            return Step::Write(ApiRequest::Update(Object::PersistentVolume(n)));
        }
        if let Step::Write(w) = Self::volume_phase(pv, VolumePhase::Bound, now) {
            return Step::Write(w);
        }
        // bindClaimToVolume.
        let mut n = claim.clone();
        let mut dirty = false;
        if claim.spec.volume_name != pv.metadata.name {
            n.spec.volume_name = pv.metadata.name.clone();
            n.metadata.annotations.insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
            dirty = true;
        }
        if n.metadata.annotations.get(ANN_BIND_COMPLETED).map(String::as_str) != Some("yes") {
            n.metadata.annotations.insert(ANN_BIND_COMPLETED.into(), "yes".into());
            dirty = true;
        }
        if dirty {
            n.metadata.resource_version = 0;
            return Step::Write(ApiRequest::Update(Object::PersistentVolumeClaim(n)));
        }
        Self::claim_status(claim, ClaimPhase::Bound, Some(pv))
    }

    /// The pods using a claim that are not scheduled yet (findNonScheduledPodsByPVC).
    fn unscheduled_pods_of(claim: &PersistentVolumeClaim, cache: &Cache) -> Vec<String> {
        let mut names: Vec<String> = cache
            .list_namespace(Kind::Pod, &claim.metadata.namespace)
            .filter_map(|o| o.as_pod())
            .filter(|p| p.spec.node_name.is_empty())
            .filter(|p| volume_binding::pod_claims(&p.spec).any(|(_, c)| c == claim.metadata.name))
            .map(|p| p.metadata.name.clone())
            .collect();
        names.sort();
        names
    }

    /// syncUnboundClaim / syncBoundClaim for one claim.
    fn sync_claim(&mut self, key: &ObjectKey, cache: &Cache, now: SimTime, out: &mut Requests) {
        if self.busy.contains(key) {
            return;
        }
        let Some(obj) = self.latest(key, cache) else {
            self.written.remove(key);
            return;
        };
        let Some(claim) = obj.as_persistent_volume_claim() else { return };
        let bound = claim.metadata.annotations.contains_key(ANN_BIND_COMPLETED);
        let step = if bound {
            self.sync_bound(&obj, claim, cache, now)
        } else {
            self.sync_unbound(&obj, claim, cache, now)
        };
        if let Step::Write(r) = step {
            let target = match &r {
                ApiRequest::Update(o) | ApiRequest::UpdateStatus(o) => o.key(),
                _ => key.clone(),
            };
            let also = (target != *key).then(|| key.clone());
            self.send(out, target, also, r);
        }
    }

    fn sync_unbound(
        &mut self,
        obj: &Object,
        claim: &PersistentVolumeClaim,
        cache: &Cache,
        now: SimTime,
    ) -> Step {
        if claim.spec.volume_name.is_empty() {
            let class = |name: &str| {
                cache.get(&ObjectKey::new(Kind::StorageClass, "", name)).and_then(|o| o.as_storage_class())
            };
            let delay = volume_binding::is_delay_binding(claim, class);
            let volumes: Vec<Arc<Object>> = cache
                .list(Kind::PersistentVolume)
                .filter_map(|o| self.volume(&o.meta().name, cache))
                .collect();
            let found = volume_binding::find_matching_volume(
                claim,
                volumes.iter().filter_map(|o| o.as_persistent_volume()),
                None,
                delay,
            );
            if let Some(pv) = found {
                return Self::bind(pv, claim, now);
            }
            // assignDefaultStorageClass: a claim without a class gets the default one
            // once it exists (RetroactiveDefaultStorageClass, GA in v1.28).
            if claim.spec.storage_class_name.is_none()
                && !claim.metadata.annotations.contains_key(crate::api::storage::ANN_BETA_STORAGE_CLASS)
            {
                let default = cache
                    .list(Kind::StorageClass)
                    .filter_map(|o| o.as_storage_class())
                    .filter(|c| c.is_default())
                    .max_by_key(|c| (c.metadata.creation_timestamp, c.metadata.name.clone()));
                if let Some(sc) = default {
                    let mut n = claim.clone();
                    n.spec.storage_class_name = Some(sc.metadata.name.clone());
                    n.metadata.resource_version = 0;
                    return Step::Write(ApiRequest::Update(Object::PersistentVolumeClaim(n)));
                }
            }
            if delay && !volume_binding::is_delay_binding_provisioning(claim) {
                // emitEventForUnboundDelayBindingClaim.
                let pods = Self::unscheduled_pods_of(claim, cache);
                let (reason, message) = match pods.len() {
                    0 => {
                        (events::WAIT_FOR_FIRST_CONSUMER, events::MESSAGE_WAIT_FOR_FIRST_CONSUMER.to_string())
                    }
                    1 => (
                        events::WAIT_FOR_POD_SCHEDULED,
                        format!("waiting for pod {} to be scheduled", pods[0]),
                    ),
                    _ => (
                        events::WAIT_FOR_POD_SCHEDULED,
                        format!("waiting for pods {} to be scheduled", pods.join(",")),
                    ),
                };
                self.event(obj, EVENT_NORMAL, reason, &message, now);
            } else if !claim.class().is_empty() {
                // provisionClaim: the class names the (external) provisioner.
                let Some(sc) = class(claim.class()) else {
                    let msg = format!("storageclass.storage.k8s.io \"{}\" not found", claim.class());
                    self.event(obj, EVENT_WARNING, events::PROVISIONING_FAILED, &msg, now);
                    return Step::Nothing;
                };
                let provisioner = sc.provisioner.clone();
                // setClaimProvisioner: both annotations name it.
                let a = &claim.metadata.annotations;
                if a.get(ANN_STORAGE_PROVISIONER) != Some(&provisioner)
                    || a.get(ANN_BETA_STORAGE_PROVISIONER) != Some(&provisioner)
                {
                    let mut n = claim.clone();
                    n.metadata.annotations.insert(ANN_STORAGE_PROVISIONER.into(), provisioner.clone());
                    n.metadata.annotations.insert(ANN_BETA_STORAGE_PROVISIONER.into(), provisioner.clone());
                    n.metadata.resource_version = 0;
                    self.event(
                        obj,
                        EVENT_NORMAL,
                        events::EXTERNAL_PROVISIONING,
                        &events::external_provisioning(&provisioner),
                        now,
                    );
                    return Step::Write(ApiRequest::Update(Object::PersistentVolumeClaim(n)));
                }
                self.event(
                    obj,
                    EVENT_NORMAL,
                    events::EXTERNAL_PROVISIONING,
                    &events::external_provisioning(&provisioner),
                    now,
                );
            } else {
                self.event(
                    obj,
                    EVENT_NORMAL,
                    events::FAILED_BINDING,
                    events::MESSAGE_NO_VOLUME_NO_CLASS,
                    now,
                );
            }
            return Self::claim_status(claim, ClaimPhase::Pending, None);
        }
        // The user asked for a specific volume.
        let Some(vobj) = self.volume(&claim.spec.volume_name, cache) else {
            return Self::claim_status(claim, ClaimPhase::Pending, None);
        };
        let Some(pv) = vobj.as_persistent_volume() else { return Step::Nothing };
        if pv.spec.claim_ref.is_none() {
            if let Err(e) = volume_binding::check_volume_satisfies_claim(pv, claim) {
                // pv_controller.go syncUnboundClaim (VolumeMismatch).
                let msg = format!("Cannot bind to requested volume {:?}: {e}", pv.metadata.name);
                self.event(obj, EVENT_WARNING, events::VOLUME_MISMATCH, &msg, now);
                return Self::claim_status(claim, ClaimPhase::Pending, None);
            }
            return Self::bind(pv, claim, now);
        }
        if volume_binding::is_volume_bound_to_claim(pv, claim) {
            return Self::bind(pv, claim, now);
        }
        // pv_controller.go syncUnboundClaim (FailedBinding).
        let msg = format!("volume {:?} already bound to a different claim.", pv.metadata.name);
        self.event(obj, EVENT_WARNING, events::FAILED_BINDING, &msg, now);
        Self::claim_status(claim, ClaimPhase::Pending, None)
    }

    fn sync_bound(
        &mut self,
        obj: &Object,
        claim: &PersistentVolumeClaim,
        cache: &Cache,
        now: SimTime,
    ) -> Step {
        let lost = |this: &mut Self, reason: &str, msg: &str| {
            // updateClaimStatusWithEvent: the event only when the phase changes.
            if claim.phase() == ClaimPhase::Lost {
                return Step::Nothing;
            }
            this.event(obj, EVENT_WARNING, reason, msg, now);
            Self::claim_status(claim, ClaimPhase::Lost, None)
        };
        if claim.spec.volume_name.is_empty() {
            return lost(
                self,
                events::CLAIM_LOST,
                "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
            );
        }
        let Some(vobj) = self.volume(&claim.spec.volume_name, cache) else {
            return lost(
                self,
                events::CLAIM_LOST,
                "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
            );
        };
        let Some(pv) = vobj.as_persistent_volume() else { return Step::Nothing };
        match &pv.spec.claim_ref {
            None => Self::bind(pv, claim, now),
            Some(r) if r.uid == claim.metadata.uid => Self::bind(pv, claim, now),
            Some(_) => lost(
                self,
                events::CLAIM_MISBOUND,
                "Two claims are bound to the same volume, this one is bound incorrectly",
            ),
        }
    }

    /// syncVolume.
    fn sync_volume(&mut self, name: &str, cache: &Cache, now: SimTime, out: &mut Requests) {
        let key = ObjectKey::new(Kind::PersistentVolume, "", name);
        if self.busy.contains(&key) {
            return;
        }
        let Some(obj) = self.latest(&key, cache) else {
            self.written.remove(&key);
            return;
        };
        let Some(pv) = obj.as_persistent_volume() else { return };
        let step = match &pv.spec.claim_ref {
            // Unused, or reserved for a claim not bound yet (the claim's sync binds it).
            None => Self::volume_phase(pv, VolumePhase::Available, now),
            Some(r) if r.uid.is_empty() => Self::volume_phase(pv, VolumePhase::Available, now),
            Some(r) => {
                let ckey = ObjectKey::new(Kind::PersistentVolumeClaim, r.namespace.clone(), r.name.clone());
                let claim = self.latest(&ckey, cache);
                let claim = claim
                    .as_deref()
                    .and_then(|o| o.as_persistent_volume_claim())
                    .filter(|c| c.metadata.uid == r.uid);
                match claim {
                    // The claim is gone: Released, then the reclaim policy (Retain keeps
                    // the volume; Delete is the provisioner's).
                    None => {
                        if matches!(pv.phase(), VolumePhase::Released | VolumePhase::Failed) {
                            Step::Nothing
                        } else {
                            Self::volume_phase(pv, VolumePhase::Released, now)
                        }
                    }
                    Some(c) if c.spec.volume_name.is_empty() => {
                        // The claim's sync finishes the binding.
                        self.dirty_claims.insert(ckey);
                        Step::Nothing
                    }
                    Some(c) if c.spec.volume_name == pv.metadata.name => {
                        Self::volume_phase(pv, VolumePhase::Bound, now)
                    }
                    Some(_) => {
                        // The claim is bound to another volume.
                        let dynamic = pv.metadata.annotations.contains_key(ANN_DYNAMICALLY_PROVISIONED)
                            && pv.spec.persistent_volume_reclaim_policy == "Delete";
                        if dynamic {
                            Self::volume_phase(pv, VolumePhase::Released, now)
                        } else {
                            // unbindVolume: a controller-made binding is undone; a
                            // user's pre-binding keeps its name without the uid.
                            let mut n = pv.clone();
                            if pv.metadata.annotations.contains_key(ANN_BOUND_BY_CONTROLLER) {
                                n.spec.claim_ref = None;
                                n.metadata.annotations.remove(ANN_BOUND_BY_CONTROLLER);
                            } else if let Some(r) = n.spec.claim_ref.as_mut() {
                                r.uid.clear();
                            }
                            n.metadata.resource_version = 0;
                            Step::Write(ApiRequest::Update(Object::PersistentVolume(n)))
                        }
                    }
                }
            }
        };
        if let Step::Write(r) = step {
            self.send(out, key, None, r);
        }
    }
}

/// `ref.GetReference` of a claim, as a volume's claimRef holds it.
pub fn claim_ref(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        kind: "PersistentVolumeClaim".into(),
        namespace: claim.metadata.namespace.clone(),
        name: claim.metadata.name.clone(),
        uid: claim.metadata.uid.clone(),
        api_version: "v1".into(),
        resource_version: claim.metadata.resource_version.to_string(),
        field_path: String::new(),
    }
}

impl Controller for PersistentVolumeController {
    fn on_event(&mut self, ev: &WatchEvent, _cache: &Cache) {
        let o = &ev.object;
        match o.kind() {
            Kind::PersistentVolumeClaim => {
                if ev.type_ == WatchEventType::Deleted {
                    self.written.remove(&o.key());
                    self.recorder.forget(&o.key());
                    // The bound volume is Released at its next sync.
                    if let Some(c) = o.as_persistent_volume_claim().filter(|c| !c.spec.volume_name.is_empty())
                    {
                        self.dirty_volumes.insert(c.spec.volume_name.clone());
                    }
                    return;
                }
                self.dirty_claims.insert(o.key());
            }
            Kind::PersistentVolume => {
                if ev.type_ == WatchEventType::Deleted {
                    self.written.remove(&o.key());
                    if let Some(r) = o.as_persistent_volume().and_then(|v| v.spec.claim_ref.as_ref()) {
                        self.dirty_claims.insert(ObjectKey::new(
                            Kind::PersistentVolumeClaim,
                            r.namespace.clone(),
                            r.name.clone(),
                        ));
                    }
                    return;
                }
                self.dirty_volumes.insert(o.meta().name.clone());
            }
            _ => {}
        }
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, _cache: &Cache, _now: SimTime) {
        let Some((key, also)) = self.routes.remove(&tag) else { return };
        self.busy.remove(&key);
        if let Ok(o) = result {
            self.written.insert(key.clone(), o.clone());
        }
        // The binding's next step (or a retry) follows at once.
        match key.kind {
            Kind::PersistentVolumeClaim => {
                self.dirty_claims.insert(key);
            }
            _ => {
                self.dirty_volumes.insert(key.name.clone());
            }
        }
        if let Some(c) = also {
            self.dirty_claims.insert(c);
        }
    }

    fn reconcile(&mut self, cache: &Cache, now: SimTime, _rng: &mut ChaCha8Rng, out: &mut Requests) {
        // resync: every claim and volume, every sync period.
        let due = self.next_resync.is_none_or(|t| now >= t);
        if due {
            self.dirty_claims.extend(cache.list(Kind::PersistentVolumeClaim).map(|o| o.key()));
            self.dirty_volumes.extend(cache.list(Kind::PersistentVolume).map(|o| o.meta().name.clone()));
            self.next_resync = Some(now + self.sync_period);
        }
        for name in std::mem::take(&mut self.dirty_volumes) {
            self.sync_volume(&name, cache, now, out);
        }
        for key in std::mem::take(&mut self.dirty_claims) {
            self.sync_claim(&key, cache, now, out);
        }
        for (tag, r) in std::mem::take(&mut self.events) {
            out.push(tag, r);
        }
        if let Some(t) = self.next_resync {
            if cache.len(Kind::PersistentVolumeClaim) + cache.len(Kind::PersistentVolume) > 0 {
                out.wake(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::storage::{
        AccessMode, PersistentVolumeClaimSpec, PersistentVolumeSpec, StorageClass, VolumeBindingMode,
        VolumeResourceRequirements, ANN_SELECTED_NODE, RESOURCE_STORAGE,
    };
    use crate::api::ObjectMeta;
    use rand::SeedableRng;

    /// The controller with an informer cache, serving its requests as the API server would.
    struct Harness {
        c: PersistentVolumeController,
        cache: Cache,
        rng: ChaCha8Rng,
        rv: u64,
        events: Vec<(String, String, String)>,
    }

    impl Harness {
        fn new() -> Self {
            Harness {
                c: PersistentVolumeController::new(DEFAULT_SYNC_PERIOD),
                cache: Cache::default(),
                rng: ChaCha8Rng::seed_from_u64(1),
                rv: 0,
                events: Vec::new(),
            }
        }

        fn put(&mut self, mut o: Object) -> Arc<Object> {
            self.rv += 1;
            let m = o.meta_mut();
            m.resource_version = self.rv;
            if m.uid.is_empty() {
                m.uid = format!("uid-{}", m.name);
            }
            let existed = self.cache.get(&o.key()).is_some();
            let o = Arc::new(o);
            let ev = WatchEvent {
                type_: if existed { WatchEventType::Modified } else { WatchEventType::Added },
                object: o.clone(),
            };
            self.cache.apply(&ev);
            self.c.on_event(&ev, &self.cache);
            o
        }

        fn serve(&mut self, r: ApiRequest) -> ApiResult {
            match r {
                ApiRequest::Create(Object::Event(e)) | ApiRequest::Update(Object::Event(e)) => {
                    self.events.push((e.type_.clone(), e.reason.clone(), e.message.clone()));
                    Ok(Arc::new(Object::Event(e)))
                }
                ApiRequest::Update(o) => Ok(self.put(o)),
                ApiRequest::UpdateStatus(o) => {
                    let mut cur = (**self.cache.get(&o.key()).unwrap()).clone();
                    match (&mut cur, &o) {
                        (Object::PersistentVolume(a), Object::PersistentVolume(b)) => {
                            a.status = b.status.clone()
                        }
                        (Object::PersistentVolumeClaim(a), Object::PersistentVolumeClaim(b)) => {
                            a.status = b.status.clone()
                        }
                        _ => unreachable!(),
                    }
                    Ok(self.put(cur))
                }
                other => panic!("unexpected {other:?}"),
            }
        }

        fn step(&mut self, now: SimTime) {
            for _ in 0..20 {
                let mut out = Requests::default();
                self.c.reconcile(&self.cache, now, &mut self.rng, &mut out);
                let writes = out
                    .items
                    .iter()
                    .filter(|(_, r)| {
                        !matches!(
                            r,
                            ApiRequest::Create(Object::Event(_)) | ApiRequest::Update(Object::Event(_))
                        )
                    })
                    .count();
                for (tag, r) in out.items {
                    let res = self.serve(r);
                    self.c.on_response(tag, &res, &self.cache, now);
                }
                if writes == 0 {
                    return;
                }
            }
            panic!("the controller does not settle");
        }

        fn claim(&self, name: &str) -> PersistentVolumeClaim {
            self.cache
                .get(&ObjectKey::new(Kind::PersistentVolumeClaim, "default", name))
                .unwrap()
                .as_persistent_volume_claim()
                .unwrap()
                .clone()
        }
        fn volume(&self, name: &str) -> PersistentVolume {
            self.cache
                .get(&ObjectKey::new(Kind::PersistentVolume, "", name))
                .unwrap()
                .as_persistent_volume()
                .unwrap()
                .clone()
        }
    }

    fn claim(name: &str, class: Option<&str>) -> Object {
        let mut c = PersistentVolumeClaim {
            metadata: ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() },
            spec: PersistentVolumeClaimSpec {
                access_modes: vec![AccessMode::ReadWriteOnce],
                resources: VolumeResourceRequirements {
                    requests: [(RESOURCE_STORAGE.to_string(), "1Gi".parse().unwrap())].into_iter().collect(),
                    ..Default::default()
                },
                storage_class_name: class.map(String::from),
                ..Default::default()
            },
            ..Default::default()
        };
        c.apply_defaults();
        Object::PersistentVolumeClaim(c)
    }

    fn volume(name: &str, class: &str) -> Object {
        let mut v = PersistentVolume {
            metadata: ObjectMeta { name: name.into(), ..Default::default() },
            spec: PersistentVolumeSpec {
                capacity: [(RESOURCE_STORAGE.to_string(), "5Gi".parse().unwrap())].into_iter().collect(),
                access_modes: vec![AccessMode::ReadWriteOnce],
                storage_class_name: class.into(),
                ..Default::default()
            },
            ..Default::default()
        };
        v.apply_defaults();
        Object::PersistentVolume(v)
    }

    fn class(name: &str, mode: VolumeBindingMode) -> Object {
        let mut c = StorageClass {
            metadata: ObjectMeta { name: name.into(), ..Default::default() },
            provisioner: "ebs.csi.aws.com".into(),
            volume_binding_mode: Some(mode),
            ..Default::default()
        };
        c.apply_defaults();
        Object::StorageClass(c)
    }

    /// A claim with no class and no volume waits with FailedBinding; a volume created
    /// later is found at the claim's next resync and both are bound, each side naming
    /// the other, with upstream's annotations.
    #[test]
    fn static_binding_happens_at_the_resync_after_the_volume_appears() {
        let mut h = Harness::new();
        h.put(claim("data", Some("")));
        h.step(SimTime::from_secs(0));
        assert_eq!(h.claim("data").phase(), ClaimPhase::Pending);
        assert_eq!(h.events.last().unwrap().2, events::MESSAGE_NO_VOLUME_NO_CLASS);
        h.step(SimTime::from_secs(3));
        h.put(volume("pv-1", ""));
        h.step(SimTime::from_secs(4));
        assert_eq!(h.volume("pv-1").phase(), VolumePhase::Available);
        assert_eq!(h.claim("data").phase(), ClaimPhase::Pending, "not before the resync");
        h.step(SimTime::from_secs(15));
        let (c, v) = (h.claim("data"), h.volume("pv-1"));
        assert_eq!((c.phase(), v.phase()), (ClaimPhase::Bound, VolumePhase::Bound));
        assert_eq!(c.spec.volume_name, "pv-1");
        assert_eq!(c.status.capacity[RESOURCE_STORAGE].as_str(), "5Gi");
        assert_eq!(v.spec.claim_ref.as_ref().unwrap().uid, "uid-data");
        assert_eq!(c.metadata.annotations[ANN_BIND_COMPLETED], "yes");
        assert_eq!(c.metadata.annotations[ANN_BOUND_BY_CONTROLLER], "yes");
        assert_eq!(v.metadata.annotations[ANN_BOUND_BY_CONTROLLER], "yes");
    }

    /// WaitForFirstConsumer: no binding and the event until the scheduler selects a node;
    /// then the claim is handed to its external provisioner.
    #[test]
    fn delayed_binding_waits_for_the_selected_node() {
        let mut h = Harness::new();
        h.put(class("gp3", VolumeBindingMode::WaitForFirstConsumer));
        h.put(volume("pv-1", "gp3"));
        h.put(claim("data", Some("gp3")));
        h.step(SimTime::from_secs(0));
        assert_eq!(h.claim("data").phase(), ClaimPhase::Pending);
        assert!(h.volume("pv-1").spec.claim_ref.is_none(), "the scheduler binds static volumes");
        assert_eq!(
            h.events.last().unwrap(),
            &(
                EVENT_NORMAL.into(),
                events::WAIT_FOR_FIRST_CONSUMER.into(),
                events::MESSAGE_WAIT_FOR_FIRST_CONSUMER.into()
            )
        );
        let Object::PersistentVolumeClaim(mut c) = claim("data", Some("gp3")) else { unreachable!() };
        c.metadata = h.claim("data").metadata;
        c.metadata.annotations.insert(ANN_SELECTED_NODE.into(), "node-1".into());
        h.put(Object::PersistentVolumeClaim(c));
        h.step(SimTime::from_secs(1));
        let c = h.claim("data");
        assert_eq!(c.metadata.annotations[ANN_STORAGE_PROVISIONER], "ebs.csi.aws.com");
        assert_eq!(c.metadata.annotations[ANN_BETA_STORAGE_PROVISIONER], "ebs.csi.aws.com");
        assert_eq!(h.events.last().unwrap().1, events::EXTERNAL_PROVISIONING);
        assert!(h.events.last().unwrap().2.starts_with(
            "Waiting for a volume to be created either by the external provisioner 'ebs.csi.aws.com'"
        ));
    }

    /// A claim whose class does not exist: ProvisioningFailed with the lister's error.
    #[test]
    fn missing_class_fails_provisioning() {
        let mut h = Harness::new();
        h.put(claim("data", Some("fast")));
        h.step(SimTime::from_secs(0));
        assert_eq!(
            h.events.last().unwrap(),
            &(
                EVENT_WARNING.into(),
                events::PROVISIONING_FAILED.into(),
                "storageclass.storage.k8s.io \"fast\" not found".into()
            )
        );
    }

    /// A bound claim deleted: its volume is Released (Retain keeps it).
    #[test]
    fn deleted_claim_releases_its_volume() {
        let mut h = Harness::new();
        h.put(claim("data", Some("")));
        h.put(volume("pv-1", ""));
        h.step(SimTime::from_secs(0));
        // The claim's first sync ran before the volume was Available: the resync binds.
        assert_eq!(h.volume("pv-1").phase(), VolumePhase::Available);
        h.step(SimTime::from_secs(15));
        assert_eq!(h.volume("pv-1").phase(), VolumePhase::Bound);
        let c = h.cache.get(&ObjectKey::new(Kind::PersistentVolumeClaim, "default", "data")).unwrap().clone();
        let ev = WatchEvent { type_: WatchEventType::Deleted, object: c };
        h.cache.apply(&ev);
        h.c.on_event(&ev, &h.cache);
        h.step(SimTime::from_secs(16));
        assert_eq!(h.volume("pv-1").phase(), VolumePhase::Released);
    }
}
