//! The kubelet's volume manager (pkg/kubelet/volumemanager, v1.33) and the ConfigMap and
//! Secret reads a container start makes (kubelet_pods.go makeEnvironmentVariables).
//!
//! The desired state of world holds the volumes of every admitted pod; the reconciler
//! mounts them and retries a failed mount on the exponential back-off of
//! nestedpendingoperations (500 ms doubling to 2m2s), recording a `FailedMount` event at
//! each failure. The pod worker waits for its pod's volumes (WaitForAttachAndMount, a
//! 300 ms poll for at most 2 minutes) before it creates the sandbox and starts
//! containers; a wait that times out ends the sync, which is retried after the pod
//! workers' 10-15 s back-off.
//!
//! ConfigMaps and Secrets come from the kubelet's informer cache (upstream's default
//! `Watch` change-detection strategy keeps a watch per object a pod references; here the
//! kubelet watches the two kinds). A missing object reads as the watch-based manager's
//! NotFound: `configmap "x" not found` (the manager's resource is the singular
//! `configmap`).
//!
//! Simulated sources: configMap, secret, projected (configMap, secret, downwardAPI,
//! serviceAccountToken), emptyDir, hostPath, downwardAPI, and persistentVolumeClaim.
//! Others (inline csi, nfs, ...) mount at once and are reported as not simulated when the
//! manifest is read.
//!
//! A persistentVolumeClaim volume enters the desired state of world once its claim is
//! bound (the populator's `getPVCExtractPV`; until then the pod waits, with no event: the
//! populator only logs). A volume the attach/detach controller attaches (a CSI volume) is
//! then mounted only once it is both reported in the node's `status.volumesInUse` (the
//! kubelet's node status, every `nodeStatusUpdateFrequency`) and listed in its
//! `status.volumesAttached` (VerifyControllerAttachedVolume); each failed check is retried
//! on the same exponential back-off as a failed mount, without an event.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::pods::PodEvent;
use crate::api::pod::{Container, KeyToPath, Volume};
use crate::api::{ConfigMap, Kind, ObjectKey, PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use crate::client::Cache;
use crate::time::SimTime;

/// pkg/util/goroutinemap/exponentialbackoff: initialDurationBeforeRetry.
pub const INITIAL_DURATION_BEFORE_RETRY: Duration = Duration::from_millis(500);
/// exponentialbackoff maxDurationBeforeRetry (2m2s); the factor is 2.
pub const MAX_DURATION_BEFORE_RETRY: Duration = Duration::from_secs(122);
/// volumemanager/volume_manager.go reconcilerLoopSleepPeriod.
pub const RECONCILER_LOOP_SLEEP_PERIOD: Duration = Duration::from_millis(100);
/// volume_manager.go podAttachAndMountTimeout and podAttachAndMountRetryInterval.
pub const POD_ATTACH_AND_MOUNT_TIMEOUT: Duration = Duration::from_secs(120);
pub const POD_ATTACH_AND_MOUNT_RETRY_INTERVAL: Duration = Duration::from_millis(300);
/// pkg/kubelet/events FailedMountVolume.
pub const REASON_FAILED_MOUNT: &str = "FailedMount";

/// The kubelet's ConfigMap and Secret managers, reading its informer cache.
#[derive(Clone, Copy)]
pub struct ConfigSource<'a> {
    pub cache: &'a Cache,
}

impl<'a> ConfigSource<'a> {
    /// `configMapManager.GetConfigMap`.
    pub fn config_map(&self, namespace: &str, name: &str) -> Result<&'a ConfigMap, String> {
        let key = ObjectKey::new(Kind::ConfigMap, namespace, name);
        self.cache
            .get(&key)
            .and_then(|o| o.as_config_map())
            .ok_or_else(|| format!("configmap \"{name}\" not found"))
    }

    /// `secretManager.GetSecret`.
    pub fn secret(&self, namespace: &str, name: &str) -> Result<&'a Secret, String> {
        let key = ObjectKey::new(Kind::Secret, namespace, name);
        self.cache.get(&key).and_then(|o| o.as_secret()).ok_or_else(|| format!("secret \"{name}\" not found"))
    }
}

/// The error `makeEnvironmentVariables` returns for a container, if any: envFrom first,
/// then env, each in order; a source marked optional may be missing (and so may its key).
/// The container then fails with CreateContainerConfigError and this message.
pub fn env_error(c: &Container, namespace: &str, src: ConfigSource) -> Option<String> {
    for e in &c.env_from {
        if let Some(r) = &e.config_map_ref {
            if let Err(err) = src.config_map(namespace, &r.name) {
                if !r.is_optional() {
                    return Some(err);
                }
            }
        }
        if let Some(r) = &e.secret_ref {
            if let Err(err) = src.secret(namespace, &r.name) {
                if !r.is_optional() {
                    return Some(err);
                }
            }
        }
    }
    for e in &c.env {
        let Some(from) = &e.value_from else { continue };
        if let Some(k) = &from.config_map_key_ref {
            match src.config_map(namespace, &k.name) {
                Err(err) if !k.is_optional() => return Some(err),
                Ok(cm) if !cm.data.contains_key(&k.key) && !k.is_optional() => {
                    return Some(format!("couldn't find key {} in ConfigMap {namespace}/{}", k.key, k.name));
                }
                _ => {}
            }
        }
        if let Some(k) = &from.secret_key_ref {
            match src.secret(namespace, &k.name) {
                Err(err) if !k.is_optional() => return Some(err),
                Ok(s) if !s.data.contains_key(&k.key) && !k.is_optional() => {
                    return Some(format!("couldn't find key {} in Secret {namespace}/{}", k.key, k.name));
                }
                _ => {}
            }
        }
    }
    None
}

/// `configmap.MakePayload` / `secret.MakePayload`: every listed key must exist unless the
/// source is optional; `missing` is the plugin's message before the key.
fn check_items(
    items: &[KeyToPath],
    has: impl Fn(&str) -> bool,
    optional: bool,
    missing: &str,
) -> Result<(), String> {
    match items.iter().find(|i| !has(&i.key)) {
        Some(i) if !optional => Err(format!("{missing}: {}", i.key)),
        _ => Ok(()),
    }
}

fn mount_config_map(
    src: ConfigSource,
    ns: &str,
    name: &str,
    items: &[KeyToPath],
    optional: bool,
) -> Result<(), String> {
    match src.config_map(ns, name) {
        Ok(cm) => {
            check_items(items, |k| cm.has_key(k), optional, "configmap references non-existent config key")
        }
        Err(_) if optional => Ok(()),
        Err(e) => Err(e),
    }
}

fn mount_secret(
    src: ConfigSource,
    ns: &str,
    name: &str,
    items: &[KeyToPath],
    optional: bool,
) -> Result<(), String> {
    match src.secret(ns, name) {
        Ok(s) => {
            check_items(items, |k| s.data.contains_key(k), optional, "references non-existent secret key")
        }
        Err(_) if optional => Ok(()),
        Err(e) => Err(e),
    }
}

/// Why a persistent volume cannot be mounted yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimWait {
    /// The populator cannot add it: the claim is missing or unbound, or its volume is
    /// missing (`error processing PVC ...`); looked at again when a claim or volume changes.
    NotInDesiredState(String),
    /// VerifyControllerAttachedVolume failed: retried on the operation back-off, no event.
    NotAttached(String),
}

/// A claim and its bound volume as the kubelet reads them (`getPVCExtractPV`).
pub fn claim_volume<'a>(
    cache: &'a Cache,
    namespace: &str,
    claim_name: &str,
) -> Result<(&'a PersistentVolumeClaim, &'a PersistentVolume), String> {
    let key = ObjectKey::new(Kind::PersistentVolumeClaim, namespace, claim_name);
    let pvc = cache.get(&key).and_then(|o| o.as_persistent_volume_claim()).ok_or_else(|| {
        format!(
            "error processing PVC {namespace}/{claim_name}: failed to fetch PVC from API server: persistentvolumeclaims \"{claim_name}\" not found"
        )
    })?;
    if pvc.metadata.deletion_timestamp.is_some() {
        return Err(format!("error processing PVC {namespace}/{claim_name}: can't start pod because PVC {namespace}/{claim_name} is being deleted"));
    }
    if !pvc.is_bound() {
        return Err(format!(
            "error processing PVC {namespace}/{claim_name}: PVC is not bound (phase {:?}, volumeName {:?})",
            pvc.phase().as_str(),
            pvc.spec.volume_name
        ));
    }
    let pv = cache
        .get(&ObjectKey::new(Kind::PersistentVolume, "", pvc.spec.volume_name.clone()))
        .and_then(|o| o.as_persistent_volume())
        .ok_or_else(|| {
            format!(
                "error processing PVC {namespace}/{claim_name}: failed to fetch PV {:?} from API server: persistentvolumes \"{}\" not found",
                pvc.spec.volume_name, pvc.spec.volume_name
            )
        })?;
    Ok((pvc, pv))
}

/// A persistent volume's mount on `node`: the claim bound, and an attachable volume
/// reported in use and attached (operation_generator.go
/// GenerateVerifyControllerAttachedVolumeFunc's messages).
pub fn set_up_claim(cache: &Cache, namespace: &str, claim_name: &str, node: &str) -> Result<(), ClaimWait> {
    let (_, pv) = claim_volume(cache, namespace, claim_name).map_err(ClaimWait::NotInDesiredState)?;
    if !pv.is_attachable() {
        return Ok(());
    }
    let unique = pv.unique_name();
    let node = cache.get(&ObjectKey::new(Kind::Node, "", node)).and_then(|o| o.as_node());
    let status = node.map(|n| &n.status);
    let detail = |what: &str| {
        format!(
            "VerifyControllerAttachedVolume failed for volume {:?} (UniqueName: {unique:?}): {what}",
            pv.metadata.name
        )
    };
    if !status.is_some_and(|s| s.volumes_in_use.contains(&unique)) {
        return Err(ClaimWait::NotAttached(detail(
            "Volume has not been added to the list of VolumesInUse in the node's volume status",
        )));
    }
    if !status.is_some_and(|s| s.volumes_attached.iter().any(|a| a.name == unique)) {
        return Err(ClaimWait::NotAttached(detail("Volume not attached according to node status")));
    }
    Ok(())
}

/// One `SetUp` of a volume: what the volume plugin returns.
pub fn set_up(v: &Volume, namespace: &str, src: ConfigSource) -> Result<(), String> {
    if let Some(c) = &v.config_map {
        return mount_config_map(src, namespace, &c.name, &c.items, c.optional == Some(true));
    }
    if let Some(s) = &v.secret {
        return mount_secret(src, namespace, &s.secret_name, &s.items, s.optional == Some(true));
    }
    if let Some(p) = &v.projected {
        // projected.go collectData: every source is read, the errors aggregated.
        let mut errors: Vec<String> = Vec::new();
        for s in &p.sources {
            let r = if let Some(c) = &s.config_map {
                mount_config_map(src, namespace, &c.name, &c.items, c.optional == Some(true))
            } else if let Some(c) = &s.secret {
                mount_secret(src, namespace, &c.name, &c.items, c.optional == Some(true))
            } else {
                Ok(())
            };
            if let Err(e) = r {
                if !errors.contains(&e) {
                    errors.push(e);
                }
            }
        }
        // utilerrors.NewAggregate: one error prints alone, several as "[a, b]".
        return match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(format!("[{}]", errors.join(", "))),
        };
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Mount {
    /// Not tried yet: the populator added it at this time (the reconciler's next loop
    /// mounts it).
    Pending {
        added_at: SimTime,
    },
    Mounted,
    /// The last SetUp failed; the next try waits until `retry_at`.
    Failed {
        retry_at: SimTime,
        backoff: Duration,
    },
    /// A persistent volume whose claim is not bound yet: not in the desired state of world.
    WaitingForClaim,
}

#[derive(Clone, Debug)]
struct PodVolumes {
    namespace: String,
    /// The pod's spec (shared with the pod), for its volumes.
    spec: std::sync::Arc<crate::api::PodSpec>,
    mounts: Vec<Mount>,
    /// The unique names of the attachable volumes resolved for each volume, once known
    /// (what the kubelet reports in `status.volumesInUse`).
    attachable: Vec<Option<String>>,
    /// When the pod worker's current WaitForAttachAndMount began.
    wait_since: Option<SimTime>,
}

impl PodVolumes {
    fn mounted(&self) -> bool {
        self.mounts.iter().all(|m| *m == Mount::Mounted)
    }
}

/// What the pod worker's wait for volumes says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountWait {
    /// Every volume is mounted: go on with the sync.
    Ready,
    /// Still waiting; the wait times out at this time.
    Waiting { deadline: SimTime },
    /// The 2-minute wait ran out: the sync fails (no event: v1.33's SyncPod records
    /// none for an interrupted wait) and is retried after the pod workers' back-off.
    TimedOut,
}

/// The desired and actual state of the node's volumes, by pod (namespace, name).
#[derive(Clone, Debug, Default)]
pub struct VolumeManager {
    pods: BTreeMap<(String, String), PodVolumes>,
    /// The pods with a mount the reconciler has yet to try or retry (`Pending` or
    /// `Failed`): its pass and its wake-up look at these only, not at every pod.
    unsettled: BTreeSet<(String, String)>,
    /// The kubelet's start: the reconciler's loop runs every 100 ms from it.
    started_at: SimTime,
    /// The node this kubelet runs on (persistent volumes are attached to it).
    node_name: String,
}

/// What one reconciler pass did.
#[derive(Debug, Default)]
pub struct Reconciled {
    /// FailedMount events, by pod.
    pub events: Vec<((String, String), PodEvent)>,
    /// Pods whose wait ends now that their volumes are mounted: when the pod worker's
    /// 300 ms poll sees it.
    pub ready: Vec<((String, String), SimTime)>,
}

impl VolumeManager {
    pub fn new(started_at: SimTime) -> Self {
        VolumeManager {
            pods: BTreeMap::new(),
            unsettled: BTreeSet::new(),
            started_at,
            node_name: String::new(),
        }
    }

    /// The volume manager of the kubelet on `node`.
    pub fn on_node(mut self, node: impl Into<String>) -> Self {
        self.node_name = node.into();
        self
    }

    /// `GetVolumesInUse`: the attachable volumes of the pods this kubelet runs, sorted.
    pub fn volumes_in_use(&self) -> Vec<String> {
        let set: std::collections::BTreeSet<&String> =
            self.pods.values().flat_map(|p| p.attachable.iter().flatten()).collect();
        set.into_iter().cloned().collect()
    }

    /// A claim or a persistent volume changed: volumes waiting for their claim are looked
    /// at again in the reconciler's next loop (the populator's 100 ms loop).
    pub fn claims_changed(&mut self, now: SimTime) {
        for (key, pv) in &mut self.pods {
            for m in pv.mounts.iter_mut().filter(|m| **m == Mount::WaitingForClaim) {
                *m = Mount::Pending { added_at: now };
                self.unsettled.insert(key.clone());
            }
        }
    }

    /// The populator adds an admitted pod's volumes (a pod without volumes has nothing to
    /// wait for).
    pub fn add_pod(&mut self, key: (String, String), pod: &Pod, now: SimTime) {
        if pod.spec.volumes.is_empty() {
            return;
        }
        let mounts = vec![Mount::Pending { added_at: now }; pod.spec.volumes.len()];
        let attachable = vec![None; pod.spec.volumes.len()];
        let namespace = pod.metadata.namespace.clone();
        self.unsettled.insert(key.clone());
        self.pods.insert(
            key,
            PodVolumes { namespace, spec: pod.spec.clone(), mounts, attachable, wait_since: None },
        );
    }

    pub fn remove_pod(&mut self, key: &(String, String)) {
        self.pods.remove(key);
        self.unsettled.remove(key);
    }

    pub fn mounted(&self, key: &(String, String)) -> bool {
        self.pods.get(key).is_none_or(PodVolumes::mounted)
    }

    /// The first reconciler loop at or after `t`.
    fn reconciler_tick(&self, t: SimTime) -> SimTime {
        let p = RECONCILER_LOOP_SLEEP_PERIOD.as_millis() as u64;
        let since = t.saturating_sub(self.started_at).as_millis() as u64;
        self.started_at + Duration::from_millis(since.div_ceil(p) * p)
    }

    /// When the reconciler next has a mount to retry.
    pub fn next_wake(&self) -> Option<SimTime> {
        self.unsettled
            .iter()
            .filter_map(|key| self.pods.get(key))
            .flat_map(|p| p.mounts.iter())
            .filter_map(|m| match m {
                Mount::Failed { retry_at, .. } => Some(self.reconciler_tick(*retry_at)),
                Mount::Pending { added_at } => {
                    Some(self.reconciler_tick(*added_at + Duration::from_millis(1)))
                }
                Mount::Mounted | Mount::WaitingForClaim => None,
            })
            .min()
    }

    /// One reconciler pass: mount what is pending or due for a retry.
    pub fn reconcile(&mut self, now: SimTime, src: ConfigSource) -> Reconciled {
        let mut out = Reconciled::default();
        let node = self.node_name.as_str();
        // Pods whose every mount is Mounted or WaitingForClaim have nothing to try.
        let mut settled = Vec::new();
        for key in &self.unsettled {
            let pv = self.pods.get_mut(key).expect("an unsettled pod is known");
            let was_mounted = pv.mounted();
            for ((v, m), attachable) in
                pv.spec.volumes.iter().zip(pv.mounts.iter_mut()).zip(pv.attachable.iter_mut())
            {
                let previous = match m {
                    Mount::Mounted | Mount::WaitingForClaim => continue,
                    Mount::Failed { retry_at, .. } if *retry_at > now => continue,
                    Mount::Failed { backoff, .. } => Some(*backoff),
                    Mount::Pending { added_at } if *added_at >= now => continue,
                    Mount::Pending { .. } => None,
                };
                let backoff = previous
                    .map_or(INITIAL_DURATION_BEFORE_RETRY, |b| (b * 2).min(MAX_DURATION_BEFORE_RETRY));
                if let Some(c) = &v.persistent_volume_claim {
                    if let Ok((_, vol)) = claim_volume(src.cache, &pv.namespace, &c.claim_name) {
                        *attachable = vol.is_attachable().then(|| vol.unique_name());
                    }
                    *m = match set_up_claim(src.cache, &pv.namespace, &c.claim_name, node) {
                        Ok(()) => Mount::Mounted,
                        Err(ClaimWait::NotInDesiredState(_)) => Mount::WaitingForClaim,
                        Err(ClaimWait::NotAttached(_)) => Mount::Failed { retry_at: now + backoff, backoff },
                    };
                    continue;
                }
                match set_up(v, &pv.namespace, src) {
                    Ok(()) => *m = Mount::Mounted,
                    Err(e) => {
                        // operation_generator.go: volumeToMount.GenerateError("MountVolume.SetUp failed", err).
                        let message = format!("MountVolume.SetUp failed for volume \"{}\" : {e}", v.name);
                        out.events.push((key.clone(), PodEvent::warning(REASON_FAILED_MOUNT, message)));
                        *m = Mount::Failed { retry_at: now + backoff, backoff };
                    }
                }
            }
            if !was_mounted && pv.mounted() {
                if let Some(since) = pv.wait_since.filter(|s| now < *s + POD_ATTACH_AND_MOUNT_TIMEOUT) {
                    let poll = POD_ATTACH_AND_MOUNT_RETRY_INTERVAL.as_millis() as u64;
                    let waited = now.saturating_sub(since).as_millis() as u64;
                    out.ready
                        .push((key.clone(), since + Duration::from_millis(waited.div_ceil(poll) * poll)));
                }
            }
            if pv.mounts.iter().all(|m| matches!(m, Mount::Mounted | Mount::WaitingForClaim)) {
                settled.push(key.clone());
            }
        }
        for key in settled {
            self.unsettled.remove(&key);
        }
        out
    }

    /// The pod worker's `WaitForAttachAndMount` at `now`.
    pub fn wait(&mut self, key: &(String, String), now: SimTime) -> MountWait {
        let Some(pv) = self.pods.get_mut(key) else { return MountWait::Ready };
        if pv.mounted() {
            pv.wait_since = None;
            return MountWait::Ready;
        }
        let since = *pv.wait_since.get_or_insert(now);
        let deadline = since + POD_ATTACH_AND_MOUNT_TIMEOUT;
        if now >= deadline {
            pv.wait_since = None;
            return MountWait::TimedOut;
        }
        MountWait::Waiting { deadline }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::pod::{ConfigMapVolumeSource, EnvVar, EnvVarSource, KeySelector, PodSpec};
    use crate::api::{Object, ObjectMeta};
    use crate::client::{WatchEvent, WatchEventType};
    use std::sync::Arc;

    fn pod_with_config_volume() -> Pod {
        Pod {
            metadata: ObjectMeta { name: "web".into(), namespace: "default".into(), ..Default::default() },
            spec: Arc::new(PodSpec {
                volumes: vec![Volume {
                    name: "config".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: "app-config".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn add_config_map(cache: &mut Cache, data: &[(&str, &str)]) {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: "app-config".into(),
                namespace: "default".into(),
                ..Default::default()
            },
            data: data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Default::default()
        };
        cache.apply(&WatchEvent { type_: WatchEventType::Added, object: Arc::new(Object::ConfigMap(cm)) });
    }

    /// A missing ConfigMap: FailedMount with upstream's message at once, then retries on
    /// the exponential back-off (500 ms doubling, capped at 2m2s) on the 100 ms reconciler
    /// loop; the mount succeeds at the first retry after the ConfigMap appears.
    #[test]
    fn missing_config_map_fails_and_backs_off_until_it_exists() {
        let mut cache = Cache::default();
        let key = ("default".to_string(), "web".to_string());
        let mut vm = VolumeManager::new(SimTime::ZERO);
        vm.add_pod(key.clone(), &pod_with_config_volume(), SimTime(900));
        assert_eq!(vm.wait(&key, SimTime(900)), MountWait::Waiting { deadline: SimTime(120_900) });
        // The reconciler's next loop tries it.
        let mut now = vm.next_wake().unwrap();
        assert_eq!(now, SimTime::from_secs(1));
        let mut failures = Vec::new();
        while now < SimTime::from_secs(400) {
            let r = vm.reconcile(now, ConfigSource { cache: &cache });
            for (_, e) in &r.events {
                assert_eq!(e.reason, "FailedMount");
                assert_eq!(
                    e.message,
                    "MountVolume.SetUp failed for volume \"config\" : configmap \"app-config\" not found"
                );
                failures.push(now.as_millis());
            }
            now = vm.next_wake().unwrap();
        }
        assert_eq!(
            &failures[..11],
            &[1_000, 1_500, 2_500, 4_500, 8_500, 16_500, 32_500, 64_500, 128_500, 250_500, 372_500]
        );
        assert!(!vm.mounted(&key));
        // The wait ran out 2 minutes after it began.
        assert_eq!(vm.wait(&key, SimTime(120_900)), MountWait::TimedOut);
        // A new wait begins; the ConfigMap appears; the next retry (372.5 s + 122 s) mounts
        // it and the pod worker's poll sees it on its 300 ms grid.
        assert!(matches!(vm.wait(&key, SimTime::from_secs(480)), MountWait::Waiting { .. }));
        add_config_map(&mut cache, &[("k", "v")]);
        assert!(vm.reconcile(SimTime(494_400), ConfigSource { cache: &cache }).events.is_empty());
        assert!(!vm.mounted(&key), "not before the retry is due");
        let r = vm.reconcile(SimTime(494_500), ConfigSource { cache: &cache });
        assert!(r.events.is_empty());
        assert!(vm.mounted(&key));
        assert_eq!(r.ready, vec![(key.clone(), SimTime(494_700))]);
        assert_eq!(vm.wait(&key, SimTime(494_700)), MountWait::Ready);
    }

    #[test]
    fn optional_sources_and_missing_keys() {
        let mut cache = Cache::default();
        let mut p = pod_with_config_volume();
        let spec = Arc::make_mut(&mut p.spec);
        spec.volumes[0].config_map.as_mut().unwrap().items =
            vec![KeyToPath { key: "nginx.conf".into(), path: "nginx.conf".into(), mode: None }];
        add_config_map(&mut cache, &[("other", "x")]);
        let src = ConfigSource { cache: &cache };
        assert_eq!(
            set_up(&p.spec.volumes[0], "default", src),
            Err("configmap references non-existent config key: nginx.conf".into())
        );
        Arc::make_mut(&mut p.spec).volumes[0].config_map.as_mut().unwrap().optional = Some(true);
        assert_eq!(set_up(&p.spec.volumes[0], "default", src), Ok(()));

        let c = Container {
            name: "app".into(),
            env: vec![EnvVar {
                name: "MODE".into(),
                value_from: Some(EnvVarSource {
                    config_map_key_ref: Some(KeySelector {
                        name: "app-config".into(),
                        key: "mode".into(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            env_error(&c, "default", src),
            Some("couldn't find key mode in ConfigMap default/app-config".into())
        );
        let empty = Cache::default();
        assert_eq!(
            env_error(&c, "default", ConfigSource { cache: &empty }),
            Some("configmap \"app-config\" not found".into())
        );
    }
}
