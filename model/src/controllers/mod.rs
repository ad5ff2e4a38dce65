//! kube-controller-manager: controllers reading one shared informer cache and returning
//! the API requests they want. Each controller is dirty-set driven (only objects touched
//! since its last pass are reconciled), so a pass costs what changed, not the cluster size.

pub mod attach_detach;
pub mod controller_ref;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod expectations;
pub mod garbage_collector;
pub mod job;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod persistentvolume;
pub mod podgc;
pub mod provisioner;
pub mod replicaset;
pub mod root_ca_publisher;
pub mod serviceaccounts;
pub mod statefulset;
pub mod taint_eviction;

use std::collections::BTreeMap;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use crate::api::{Kind, Object, OwnerReference};
use crate::client::{
    ApiRequest, ApiResult, Cache, Component, EventRecorder, Output, Tagged, WatchEvent, WatchSpec,
};
use crate::time::SimTime;

/// kube-controller-manager flags this simulation honours, with upstream defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct ControllerManagerConfig {
    /// --node-monitor-period (default 5s).
    pub node_monitor_period: Duration,
    /// --node-monitor-grace-period (default 50s since v1.32; 40s before).
    pub node_monitor_grace_period: Duration,
    /// --node-startup-grace-period (default 60s).
    pub node_startup_grace_period: Duration,
    /// --node-eviction-rate (default 0.1 nodes per second per zone).
    pub node_eviction_rate: f64,
    /// --secondary-node-eviction-rate (default 0.01).
    pub secondary_node_eviction_rate: f64,
    /// --large-cluster-size-threshold (default 50).
    pub large_cluster_size_threshold: u32,
    /// --unhealthy-zone-threshold (default 0.55).
    pub unhealthy_zone_threshold: f64,
    /// --terminated-pod-gc-threshold (default 12500).
    pub terminated_pod_gc_threshold: u32,
    /// --pvclaimbinder-sync-period (default 15s).
    pub pvclaimbinder_sync_period: Duration,
    /// --disable-force-detach-on-timeout (default false).
    pub disable_force_detach_on_timeout: bool,
    /// The simulated CSI drivers (kubesim's knobs: provisioning, attach and detach times).
    pub storage: provisioner::StorageSimulation,
}

impl Default for ControllerManagerConfig {
    fn default() -> Self {
        ControllerManagerConfig {
            node_monitor_period: Duration::from_secs(5),
            node_monitor_grace_period: Duration::from_secs(50),
            node_startup_grace_period: Duration::from_secs(60),
            node_eviction_rate: 0.1,
            secondary_node_eviction_rate: 0.01,
            large_cluster_size_threshold: 50,
            unhealthy_zone_threshold: 0.55,
            terminated_pod_gc_threshold: 12500,
            pvclaimbinder_sync_period: persistentvolume::DEFAULT_SYNC_PERIOD,
            disable_force_detach_on_timeout: false,
            storage: provisioner::StorageSimulation::default(),
        }
    }
}

/// What a controller hands back: requests, each with the controller's own tag.
#[derive(Debug, Default)]
pub struct Requests {
    pub items: Vec<(u64, ApiRequest)>,
    pub wake_at: Option<SimTime>,
}

impl Requests {
    pub fn push(&mut self, tag: u64, r: ApiRequest) {
        self.items.push((tag, r));
    }
    pub fn wake(&mut self, t: SimTime) {
        self.wake_at = Some(self.wake_at.map_or(t, |w| w.min(t)));
    }
}

/// One controller of the manager.
pub trait Controller: Send {
    fn on_event(&mut self, ev: &WatchEvent, cache: &Cache);
    fn on_response(&mut self, _tag: u64, _result: &ApiResult, _cache: &Cache, _now: SimTime) {}
    fn reconcile(&mut self, cache: &Cache, now: SimTime, rng: &mut ChaCha8Rng, out: &mut Requests);
}

/// The controller owner reference of `owner` (`metav1.NewControllerRef`).
pub fn controller_ref(owner: &Object) -> OwnerReference {
    let m = owner.meta();
    OwnerReference {
        api_version: owner.kind().api_version().into(),
        kind: owner.kind().as_str().into(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Records an event with the given component's recorder.
pub fn event(
    rec: &mut EventRecorder,
    obj: &Object,
    type_: &str,
    reason: &str,
    msg: &str,
    now: SimTime,
) -> ApiRequest {
    rec.record(obj, type_, reason, msg, now)
}

/// How often the controllers reconcile at most. Upstream's workqueues coalesce the
/// changes to a key while a worker is busy with it; with syncs that take no simulated
/// time, this interval stands in for that coalescing (and keeps a 5,000-pod ReplicaSet
/// from being recounted on every pod event).
pub const RECONCILE_INTERVAL: Duration = Duration::from_millis(100);

pub struct ControllerManager {
    cache: Cache,
    last_reconcile: Option<SimTime>,
    /// Each controller with the name of its own client (ControllerClientBuilder
    /// ClientOrDie(name) in cmd/kube-controller-manager/app: one clientset, so one token
    /// bucket of --kube-api-qps / --kube-api-burst, per controller; its events go through
    /// it too).
    controllers: Vec<(&'static str, Box<dyn Controller>)>,
    routes: BTreeMap<u64, (usize, u64)>,
    next_tag: u64,
}

impl ControllerManager {
    pub fn new(config: ControllerManagerConfig) -> Self {
        ControllerManager {
            cache: Cache::default(),
            last_reconcile: None,
            controllers: vec![
                ("deployment-controller", Box::new(deployment::DeploymentController::new())),
                ("replicaset-controller", Box::new(replicaset::ReplicaSetController::new())),
                // core.go startReplicationController: ClientOrDie("replication-controller").
                (
                    "replication-controller",
                    Box::new(replicaset::ReplicaSetController::for_replication_controllers()),
                ),
                ("daemon-set-controller", Box::new(daemonset::DaemonSetController::new())),
                ("statefulset-controller", Box::new(statefulset::StatefulSetController::new())),
                ("job-controller", Box::new(job::JobController::new())),
                ("generic-garbage-collector", Box::new(garbage_collector::GarbageCollector::new())),
                ("node-controller", Box::new(node_lifecycle::NodeLifecycleController::new(&config))),
                ("taint-eviction-controller", Box::new(taint_eviction::TaintEvictionController::new())),
                ("pod-garbage-collector", Box::new(podgc::PodGcController::new(&config))),
                // core.go: ClientOrDie("persistent-volume-binder"), ClientOrDie("attachdetach-controller").
                (
                    "persistent-volume-binder",
                    Box::new(persistentvolume::PersistentVolumeController::new(
                        config.pvclaimbinder_sync_period,
                    )),
                ),
                // Not a controller-manager controller upstream: the simulated CSI driver's
                // external-provisioner, given its own client here.
                ("csi-provisioner", Box::new(provisioner::SimulatedProvisioner::new(config.storage.clone()))),
                (
                    "attachdetach-controller",
                    Box::new(attach_detach::AttachDetachController::new(
                        config.storage.clone(),
                        config.disable_force_detach_on_timeout,
                    )),
                ),
                ("disruption-controller", Box::new(disruption::DisruptionController::new())),
                // core.go startNodeIpamController: ClientOrDie("node-controller").
                ("node-controller", Box::new(node_ipam::NodeIpamController::new())),
                ("root-ca-cert-publisher", Box::new(root_ca_publisher::RootCaPublisher::new())),
                // core.go startServiceAccountController: ClientOrDie("service-account-controller").
                ("service-account-controller", Box::new(serviceaccounts::ServiceAccountsController::new())),
            ],
            routes: BTreeMap::new(),
            next_tag: 0,
        }
    }
}

impl Component for ControllerManager {
    fn name(&self) -> &str {
        "kube-controller-manager"
    }

    fn watches(&self) -> Vec<WatchSpec> {
        [
            Kind::Node,
            Kind::Lease,
            Kind::Namespace,
            Kind::ConfigMap,
            Kind::ServiceAccount,
            Kind::Deployment,
            Kind::ReplicaSet,
            Kind::DaemonSet,
            Kind::StatefulSet,
            Kind::ReplicationController,
            Kind::StorageClass,
            Kind::PersistentVolume,
            Kind::PersistentVolumeClaim,
            // Before pods, so that a relist delivers a pod's Job first.
            Kind::Job,
            Kind::PodDisruptionBudget,
            Kind::Pod,
        ]
        .into_iter()
        .map(WatchSpec::kind)
        .collect()
    }

    fn client_of(&self, tag: u64, _request: &ApiRequest) -> &'static str {
        self.routes.get(&tag).map_or(crate::client::DEFAULT_CLIENT, |(i, _)| self.controllers[*i].0)
    }

    fn on_event(&mut self, ev: &WatchEvent, _now: SimTime) {
        self.cache.apply(ev);
        for (_, c) in &mut self.controllers {
            c.on_event(ev, &self.cache);
        }
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, now: SimTime) {
        if let Some((i, inner)) = self.routes.remove(&tag) {
            self.controllers[i].1.on_response(inner, result, &self.cache, now);
        }
    }

    fn tick(&mut self, now: SimTime, rng: &mut ChaCha8Rng) -> Output {
        let mut out = Output::default();
        if let Some(last) = self.last_reconcile {
            let next = last + RECONCILE_INTERVAL;
            if now < next {
                out.wake_no_later_than(next);
                return out;
            }
        }
        self.last_reconcile = Some(now);
        for (i, (_, c)) in self.controllers.iter_mut().enumerate() {
            let mut reqs = Requests::default();
            c.reconcile(&self.cache, now, rng, &mut reqs);
            for (inner, request) in reqs.items {
                self.next_tag += 1;
                self.routes.insert(self.next_tag, (i, inner));
                out.requests.push(Tagged { tag: self.next_tag, request });
            }
            if let Some(w) = reqs.wake_at {
                out.wake_no_later_than(w);
            }
        }
        out
    }
}
