//! The kubelet: registers its Node, renews its Lease, posts node status, and runs the pods
//! bound to its node through Pending/ContainerCreating to Running, and through graceful
//! termination to deletion.
//!
//! The pods' containers run in [`pods`] (the runtime and pod workers), with behaviour
//! from the scenario ([`behavior`]); the eviction manager is [`eviction`].
//!
//! Nothing survives a restart: a new Kubelet converges from what the API server holds.

pub mod behavior;
pub mod eviction;
pub mod pods;
pub mod volumes;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::api::node::condition as node_condition;
use crate::api::pod::{condition, resource};
use crate::api::{
    ConditionStatus, Kind, Lease, LeaseSpec, Node, NodeCondition, NodeSpec, NodeStatus, Object, ObjectKey,
    ObjectMeta, Pod, PodPhase, PodStatus, Quantity, ResourceList, Resources, Taint, EVENT_NORMAL,
    EVENT_WARNING,
};
use crate::client::{
    ApiRequest, ApiResult, Cache, Component, EventRecorder, Output, Tagged, WatchEvent, WatchSpec,
};
use crate::time::SimTime;

/// KubeletConfiguration nodeStatusUpdateFrequency default.
pub const NODE_STATUS_UPDATE_FREQUENCY: Duration = Duration::from_secs(10);
/// KubeletConfiguration nodeStatusReportFrequency default.
pub const NODE_STATUS_REPORT_FREQUENCY: Duration = Duration::from_secs(5 * 60);
/// KubeletConfiguration nodeLeaseDurationSeconds default.
pub const NODE_LEASE_DURATION_SECONDS: i32 = 40;
/// The lease is renewed every 25% of its duration (pkg/kubelet/kubelet.go,
/// nodeLeaseRenewIntervalFraction 0.25).
pub const NODE_LEASE_RENEW_FRACTION: f64 = 0.25;
/// `wait.JitterUntil(..., 0.04, ...)` on the status and lease loops.
pub const HEARTBEAT_JITTER: f64 = 0.04;
/// pkg/kubelet: `updateRuntimeUp` runs every 5 s.
pub const RUNTIME_CHECK_PERIOD: Duration = Duration::from_secs(5);
/// pkg/kubelet/kubelet.go maxWaitForContainerRuntime: past this without a successful
/// runtime check, "container runtime is down".
pub const MAX_WAIT_FOR_CONTAINER_RUNTIME: Duration = Duration::from_secs(30);
/// The kubelet's event client (KubeletConfiguration eventRecordQPS 50, eventBurst 100).
pub const EVENT_CLIENT: &str = "events";
/// The kubelet's heartbeat client: the node Lease and node status, no rate limit.
pub const HEARTBEAT_CLIENT: &str = "heartbeat";

/// pkg/kubelet/pleg: the PLEG relists every second and is unhealthy after 3 minutes
/// without a successful relist.
pub const PLEG_RELIST_PERIOD: Duration = Duration::from_secs(1);
pub const PLEG_RELIST_THRESHOLD: Duration = Duration::from_secs(180);
/// eviction_manager.go podCleanupPollFreq: after an eviction the manager polls every
/// second until the pod's resources are reclaimed (here at once).
pub const POD_CLEANUP_POLL: Duration = Duration::from_secs(1);
/// The kernel's pid_max on 64-bit hosts as systemd sets it (4194304); the
/// pid.available signal's capacity.
pub const PID_MAX: i64 = 4_194_304;
/// Bytes per inode of an ext4 file system made with the default inode ratio (16 KiB):
/// the node filesystem's inode count is its size over this.
pub const BYTES_PER_INODE: i64 = 16_384;
/// The kubelet's reported version.
pub const KUBELET_VERSION: &str = "v1.33.0";
/// The kubelet's --port (ports.KubeletPort).
pub const KUBELET_PORT: i32 = 10250;
/// --node-status-max-images default.
pub const NODE_STATUS_MAX_IMAGES: usize = 50;
/// The node filesystem's size when the scenario gives no ephemeral-storage capacity
/// (cadvisor always reports the root filesystem; kubesim's stand-in is 100 GiB).
pub const DEFAULT_EPHEMERAL_STORAGE: &str = "100Gi";
/// Namespace of node Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

#[derive(Clone, Debug)]
pub struct KubeletConfig {
    pub node_name: String,
    /// cpu, memory, pods, ephemeral-storage.
    pub capacity: ResourceList,
    pub labels: BTreeMap<String, String>,
    /// --register-with-taints.
    pub register_with_taints: Vec<Taint>,
    /// Registers the node cordoned (--register-schedulable=false).
    pub unschedulable: bool,
    /// How long an image pull takes for a container no behaviour describes.
    pub pod_start_latency: Duration,
    /// --kube-reserved and --system-reserved (default none).
    pub kube_reserved: ResourceList,
    pub system_reserved: ResourceList,
    /// --eviction-hard, --eviction-soft and friends.
    pub eviction: eviction::EvictionConfig,
    /// What containers do once started (the scenario's `behaviors`).
    pub behaviors: Arc<behavior::Behaviors>,
    pub node_status_update_frequency: Duration,
    pub node_status_report_frequency: Duration,
    pub node_lease_duration_seconds: i32,
    pub internal_ip: String,
}

impl KubeletConfig {
    pub fn new(node_name: impl Into<String>, mut capacity: ResourceList) -> Self {
        capacity
            .entry(resource::EPHEMERAL_STORAGE.into())
            .or_insert_with(|| DEFAULT_EPHEMERAL_STORAGE.parse().expect("a quantity"));
        KubeletConfig {
            node_name: node_name.into(),
            capacity,
            labels: BTreeMap::new(),
            register_with_taints: Vec::new(),
            unschedulable: false,
            pod_start_latency: Duration::from_secs(1),
            kube_reserved: ResourceList::new(),
            system_reserved: ResourceList::new(),
            eviction: eviction::EvictionConfig::default(),
            behaviors: Arc::default(),
            node_status_update_frequency: NODE_STATUS_UPDATE_FREQUENCY,
            node_status_report_frequency: NODE_STATUS_REPORT_FREQUENCY,
            node_lease_duration_seconds: NODE_LEASE_DURATION_SECONDS,
            internal_ip: String::new(),
        }
    }

    /// capacity - kube-reserved - system-reserved - hard eviction threshold
    /// (pkg/kubelet/cm/node_container_manager_linux.go GetNodeAllocatableAbsolute).
    pub fn allocatable(&self) -> ResourceList {
        let mut a = ResourceList::new();
        for (name, cap) in &self.capacity {
            let reserved = |l: &ResourceList| l.get(name).map_or(0, |q| q.milli_value());
            let eviction = self.eviction.reservation(name, cap.value()) * 1000;
            let milli = cap.milli_value()
                - reserved(&self.kube_reserved)
                - reserved(&self.system_reserved)
                - eviction;
            let q = if name == resource::CPU {
                Quantity::from_milli(milli.max(0))
            } else if milli == cap.milli_value() {
                cap.clone()
            } else {
                Quantity::from_bytes_binary((milli / 1000).max(0))
            };
            a.insert(name.clone(), q);
        }
        a
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Admitted: its containers run (or wait to).
    Active,
    /// Refused at admission, or terminal before this kubelet took it on.
    Rejected,
    /// Reached Succeeded or Failed (or was evicted); holds no resources.
    Finished,
    /// Being deleted.
    Terminating,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    Register,
    Lease,
    NodeStatus,
    Other,
}

pub struct Kubelet {
    config: KubeletConfig,
    cache: Cache,
    recorder: EventRecorder,
    registered: bool,
    started_events: bool,
    last_status_post: Option<SimTime>,
    next_status_check: SimTime,
    next_lease_renew: SimTime,
    /// The pods this kubelet has taken on, by (namespace, name).
    pods: BTreeMap<(String, String), PodWork>,
    /// The host as the runtime and cAdvisor show it.
    host: crate::host::HostState,
    started_at: SimTime,
    /// What admitted, non-terminal pods request (the admission handler's running total).
    used: Resources,
    in_flight: BTreeMap<u64, Sent>,
    next_tag: u64,
    pod_ip_counter: u32,
    /// Pods whose watch event arrived since the last tick.
    dirty: BTreeSet<(String, String)>,
    status: StatusManager,
    /// When a pod's next full sync is due (a pull or start finishing, a probe, an exit
    /// seen by the PLEG, a back-off resync).
    timers: BTreeSet<(SimTime, (String, String))>,
    /// Images on the node (the runtime's image store), and their sizes.
    images: BTreeSet<String>,
    image_sizes: BTreeMap<String, i64>,
    /// nodeInfo's machineID, systemUUID and bootID, drawn from the seeded RNG when the
    /// kubelet first registers (machine-id is 32 hex digits, the others UUIDs).
    ids: (String, String, String),
    /// The image puller's queue.
    pulls: pods::PullQueue,
    /// Crash requests of the host already acted on.
    crashes_seen: usize,
    eviction: eviction::EvictionManager,
    next_eviction_check: SimTime,
    volumes: volumes::VolumeManager,
}

/// Pod condition types the kubelet owns (pkg/kubelet/types PodConditionsByKubelet); the
/// others (PodScheduled, DisruptionTarget, ...) are kept as the API server has them.
const KUBELET_CONDITIONS: [&str; 4] = [
    condition::READY,
    condition::CONTAINERS_READY,
    condition::INITIALIZED,
    condition::POD_READY_TO_START_CONTAINERS,
];

/// pkg/kubelet/status/status_manager.go: the status the kubelet computed for each pod,
/// written to the API server when it changes and again whenever the API server's copy
/// drifts from it (the node lifecycle controller marked the pod NotReady during a
/// partition, a write was lost).
#[derive(Debug, Default)]
struct StatusManager {
    desired: BTreeMap<(String, String), (String, PodStatus)>,
    /// Status writes in flight: tag -> pod.
    in_flight: BTreeMap<u64, (String, String)>,
}

impl StatusManager {
    fn busy(&self, key: &(String, String)) -> bool {
        self.in_flight.values().any(|k| k == key)
    }

    /// Does the API server's status differ from ours in what the kubelet owns?
    fn drifted(api: &PodStatus, want: &PodStatus) -> bool {
        let owned = |s: &PodStatus| -> Vec<(String, ConditionStatus)> {
            let mut v: Vec<(String, ConditionStatus)> = s
                .conditions
                .iter()
                .filter(|c| KUBELET_CONDITIONS.contains(&c.type_.as_str()))
                .map(|c| (c.type_.clone(), c.status))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let states = |s: &PodStatus| -> Vec<(String, u8, bool)> {
            s.container_statuses
                .iter()
                .map(|c| {
                    let kind = if c.state.running.is_some() {
                        1
                    } else if c.state.terminated.is_some() {
                        2
                    } else {
                        0
                    };
                    (c.name.clone(), kind, c.ready)
                })
                .collect()
        };
        api.phase != want.phase
            || owned(api) != owned(want)
            || states(api) != states(want)
            || api.pod_ip != want.pod_ip
    }

    /// The pod as it should be written: the API server's object, with the kubelet's part
    /// of the status (mergePodStatus).
    fn merged(api: &Pod, want: &PodStatus) -> Pod {
        let mut np = api.clone();
        let mut status = want.clone();
        for c in &api.status.conditions {
            if !KUBELET_CONDITIONS.contains(&c.type_.as_str()) {
                status.conditions.retain(|x| x.type_ != c.type_);
                status.conditions.push(c.clone());
            }
        }
        status.qos_class = api.status.qos_class.clone();
        status.nominated_node_name = api.status.nominated_node_name.clone();
        np.status = status;
        np.metadata.resource_version = 0;
        np
    }
}

/// One pod's worker state (pkg/kubelet/pod_workers.go keeps one per pod UID).
#[derive(Clone, Debug)]
struct PodWork {
    uid: String,
    stage: Stage,
    /// Counted in `used` (admitted and not finished).
    requests: Option<Resources>,
    containers: Vec<pods::ContainerRun>,
    /// Its entry in `timers`.
    next_sync: Option<SimTime>,
    /// spec.priority, for the eviction ranking.
    priority: i32,
}

impl PodWork {
    fn new(p: &Pod, stage: Stage) -> Self {
        PodWork {
            uid: p.metadata.uid.clone(),
            stage,
            requests: None,
            containers: Vec::new(),
            next_sync: None,
            priority: p.spec.priority.unwrap_or(0),
        }
    }
}

impl Kubelet {
    pub fn new(config: KubeletConfig, now: SimTime) -> Self {
        let node_name = config.node_name.clone();
        let recorder = EventRecorder::new("kubelet", config.node_name.clone());
        let eviction = eviction::EvictionManager::new(config.eviction.clone());
        Kubelet {
            config,
            cache: Cache::default(),
            recorder,
            registered: false,
            started_events: false,
            last_status_post: None,
            next_status_check: now,
            next_lease_renew: now,
            pods: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_tag: 0,
            pod_ip_counter: 1,
            host: crate::host::HostState::default(),
            started_at: now,
            used: Resources::default(),
            dirty: BTreeSet::new(),
            status: StatusManager::default(),
            timers: BTreeSet::new(),
            images: BTreeSet::new(),
            image_sizes: BTreeMap::new(),
            ids: Default::default(),
            pulls: pods::PullQueue::default(),
            crashes_seen: 0,
            eviction,
            next_eviction_check: now,
            volumes: volumes::VolumeManager::new(now).on_node(node_name),
        }
    }

    fn send(&mut self, out: &mut Output, what: Sent, request: ApiRequest) {
        self.next_tag += 1;
        self.in_flight.insert(self.next_tag, what);
        out.requests.push(Tagged { tag: self.next_tag, request });
    }

    fn waiting(&self, what: Sent) -> bool {
        self.in_flight.values().any(|w| *w == what)
    }

    fn node_key(&self) -> ObjectKey {
        ObjectKey::new(Kind::Node, "", self.config.node_name.clone())
    }

    /// The runtime's and PLEG's health as of `now` (pkg/kubelet/runtime.go
    /// runtimeErrors): while the runtime answers, its 5 s check and the PLEG's 1 s relist
    /// succeed on their periods; once it stops, the last success ages.
    fn runtime_errors(&self, now: SimTime) -> Vec<String> {
        let Some(since) = self.host.container_runtime_down_since else { return Vec::new() };
        if since <= self.started_at {
            return vec![
                "container runtime status check may not have completed yet".to_string(),
                "PLEG is not healthy: pleg has yet to be successful".to_string(),
            ];
        }
        let last_success = |period: Duration| {
            let p = period.as_millis() as u64;
            let elapsed = since.saturating_sub(self.started_at).as_millis() as u64;
            self.started_at + Duration::from_millis(elapsed / p * p)
        };
        let mut errs = Vec::new();
        if now.saturating_sub(last_success(RUNTIME_CHECK_PERIOD)) > MAX_WAIT_FOR_CONTAINER_RUNTIME {
            errs.push("container runtime is down".to_string());
        }
        let idle = now.saturating_sub(last_success(PLEG_RELIST_PERIOD));
        if idle > PLEG_RELIST_THRESHOLD {
            errs.push(format!(
                "PLEG is not healthy: pleg was last seen active {} ago; threshold is {}",
                crate::time::go_duration(idle),
                crate::time::go_duration(PLEG_RELIST_THRESHOLD)
            ));
        }
        errs
    }

    /// The node conditions and the events of their transitions
    /// (pkg/kubelet/nodestatus/setters.go: ReadyCondition, MemoryPressureCondition, ...).
    fn conditions(&self, now: SimTime, old: Option<&Node>) -> (Vec<NodeCondition>, Vec<&'static str>) {
        let errs = self.runtime_errors(now);
        let (ready, ready_reason, ready_message) = if errs.is_empty() {
            (ConditionStatus::True, "KubeletReady", "kubelet is posting ready status".to_string())
        } else if errs.len() == 1 {
            (ConditionStatus::False, "KubeletNotReady", errs[0].clone())
        } else {
            // utilerrors.NewAggregate: "[a, b]".
            (ConditionStatus::False, "KubeletNotReady", format!("[{}]", errs.join(", ")))
        };
        // pkg/kubelet/nodestatus/setters.go MemoryPressureCondition, DiskPressureCondition,
        // PIDPressureCondition: True while the eviction manager reports the pressure.
        let pressure =
            |c: &str, yes: (&'static str, &str, &'static str), no: (&'static str, &str, &'static str)| {
                let on = self.eviction.has(c);
                let (reason, message, event) = if on { yes } else { no };
                let status = if on { ConditionStatus::True } else { ConditionStatus::False };
                (status, reason, message.to_string(), event)
            };
        let mem = pressure(
            node_condition::MEMORY_PRESSURE,
            (
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
                "NodeHasInsufficientMemory",
            ),
            (
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                "NodeHasSufficientMemory",
            ),
        );
        let disk = pressure(
            node_condition::DISK_PRESSURE,
            ("KubeletHasDiskPressure", "kubelet has disk pressure", "NodeHasDiskPressure"),
            ("KubeletHasNoDiskPressure", "kubelet has no disk pressure", "NodeHasNoDiskPressure"),
        );
        let pid = pressure(
            node_condition::PID_PRESSURE,
            ("KubeletHasInsufficientPID", "kubelet has insufficient PID available", "NodeHasInsufficientPID"),
            ("KubeletHasSufficientPID", "kubelet has sufficient PID available", "NodeHasSufficientPID"),
        );
        let specs: [(&str, ConditionStatus, &str, String, &'static str); 4] = [
            (node_condition::MEMORY_PRESSURE, mem.0, mem.1, mem.2, mem.3),
            (node_condition::DISK_PRESSURE, disk.0, disk.1, disk.2, disk.3),
            (node_condition::PID_PRESSURE, pid.0, pid.1, pid.2, pid.3),
            (
                node_condition::READY,
                ready,
                ready_reason,
                ready_message,
                if ready == ConditionStatus::True { "NodeReady" } else { "NodeNotReady" },
            ),
        ];
        let mut events = Vec::new();
        let conds = specs
            .into_iter()
            .map(|(type_, status, reason, message, event)| {
                let previous = old.and_then(|n| n.condition(type_));
                let transition = match previous {
                    Some(p) if p.status == status => p.last_transition_time,
                    Some(_) => {
                        events.push(event);
                        Some(now)
                    }
                    None => Some(now),
                };
                NodeCondition {
                    type_: type_.into(),
                    status,
                    last_heartbeat_time: Some(now),
                    last_transition_time: transition,
                    reason: reason.into(),
                    message,
                }
            })
            .collect();
        (conds, events)
    }

    fn node_status(&self, now: SimTime, old: Option<&Node>) -> (NodeStatus, Vec<&'static str>) {
        let (conditions, events) = self.conditions(now, old);
        let status = NodeStatus {
            capacity: self.config.capacity.clone(),
            allocatable: self.config.allocatable(),
            conditions,
            addresses: vec![
                crate::api::node::NodeAddress {
                    type_: "InternalIP".into(),
                    address: self.config.internal_ip.clone(),
                },
                crate::api::node::NodeAddress {
                    type_: "Hostname".into(),
                    address: self.config.node_name.clone(),
                },
            ],
            node_info: crate::api::node::NodeSystemInfo {
                machine_id: self.ids.0.clone(),
                system_uuid: self.ids.1.clone(),
                boot_id: self.ids.2.clone(),
                kubelet_version: KUBELET_VERSION.into(),
                container_runtime_version: "containerd://2.0.0".into(),
                os_image: "kubesim".into(),
                kernel_version: "6.1.0".into(),
                operating_system: "linux".into(),
                architecture: "amd64".into(),
            },
            // The attach/detach controller's list, left as it is (the kubelet patches
            // only what its setters change).
            volumes_attached: old.map(|n| n.status.volumes_attached.clone()).unwrap_or_default(),
            // nodestatus.VolumesInUse.
            volumes_in_use: self.volumes.volumes_in_use(),
            images: self.image_list(),
            // nodestatus.DaemonEndpoints: the kubelet's --port, 10250.
            daemon_endpoints: Some(crate::api::node::NodeDaemonEndpoints {
                kubelet_endpoint: crate::api::node::DaemonEndpoint { port: KUBELET_PORT },
            }),
        };
        (status, events)
    }

    /// nodestatus.Images: the pulled images, largest first, at most
    /// --node-status-max-images (50).
    fn image_list(&self) -> Vec<crate::api::pod_scheduling::ContainerImage> {
        let mut list: Vec<(i64, &String)> =
            self.images.iter().map(|i| (self.image_sizes.get(i).copied().unwrap_or(0), i)).collect();
        list.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        list.into_iter()
            .take(NODE_STATUS_MAX_IMAGES)
            .map(|(size, i)| crate::api::pod_scheduling::ContainerImage {
                names: pods::image_names(i),
                size_bytes: size,
            })
            .collect()
    }

    fn register(&mut self, now: SimTime, out: &mut Output) {
        let mut labels = self.config.labels.clone();
        // The kubelet's own labels (pkg/kubelet/kubelet_node_status.go initialNode).
        labels.entry("kubernetes.io/hostname".into()).or_insert_with(|| self.config.node_name.clone());
        labels.entry("kubernetes.io/os".into()).or_insert_with(|| "linux".into());
        labels.entry("kubernetes.io/arch".into()).or_insert_with(|| "amd64".into());
        labels.entry("beta.kubernetes.io/os".into()).or_insert_with(|| "linux".into());
        labels.entry("beta.kubernetes.io/arch".into()).or_insert_with(|| "amd64".into());
        let node = Node {
            metadata: ObjectMeta { name: self.config.node_name.clone(), labels, ..Default::default() },
            spec: NodeSpec {
                unschedulable: self.config.unschedulable,
                taints: self.config.register_with_taints.clone(),
                ..Default::default()
            },
            status: self.node_status(now, None).0,
        };
        self.send(out, Sent::Register, ApiRequest::Create(Object::Node(node)));
    }

    fn started_events(&mut self, now: SimTime, out: &mut Output) {
        let Some(node) = self.cache.get(&self.node_key()).cloned() else { return };
        let name = self.config.node_name.clone();
        let evs = [
            ("Starting", "Starting kubelet.".to_string()),
            ("NodeHasSufficientMemory", format!("Node {name} status is now: NodeHasSufficientMemory")),
            ("NodeHasNoDiskPressure", format!("Node {name} status is now: NodeHasNoDiskPressure")),
            ("NodeHasSufficientPID", format!("Node {name} status is now: NodeHasSufficientPID")),
            ("NodeAllocatableEnforced", "Updated Node Allocatable limit across pods".to_string()),
            ("NodeReady", format!("Node {name} status is now: NodeReady")),
        ];
        for (reason, msg) in evs {
            let r = self.recorder.record(&node, EVENT_NORMAL, reason, &msg, now);
            self.send(out, Sent::Other, r);
        }
        self.started_events = true;
    }

    fn renew_lease(&mut self, now: SimTime, out: &mut Output) {
        let key = ObjectKey::new(Kind::Lease, NODE_LEASE_NAMESPACE, self.config.node_name.clone());
        let spec = LeaseSpec {
            holder_identity: Some(self.config.node_name.clone()),
            lease_duration_seconds: Some(self.config.node_lease_duration_seconds),
            renew_time: Some(now),
            ..Default::default()
        };
        let req = match self.cache.get(&key).and_then(|o| o.as_lease().cloned()) {
            Some(mut l) => {
                l.spec = LeaseSpec {
                    acquire_time: l.spec.acquire_time,
                    lease_transitions: l.spec.lease_transitions,
                    ..spec
                };
                ApiRequest::Update(Object::Lease(l))
            }
            None => {
                // SetNodeOwnerFunc: the Lease is created owned by the Node; without the
                // Node (deleted) the create is blocked and retried.
                let Some(node) = self.cache.get(&self.node_key()) else { return };
                let owner = Some(node).map(|n| crate::api::OwnerReference {
                    api_version: "v1".into(),
                    kind: "Node".into(),
                    name: self.config.node_name.clone(),
                    uid: n.meta().uid.clone(),
                    ..Default::default()
                });
                ApiRequest::Create(Object::Lease(Lease {
                    metadata: ObjectMeta {
                        name: self.config.node_name.clone(),
                        namespace: NODE_LEASE_NAMESPACE.into(),
                        owner_references: owner.into_iter().collect(),
                        ..Default::default()
                    },
                    spec: LeaseSpec { acquire_time: Some(now), ..spec },
                }))
            }
        };
        self.send(out, Sent::Lease, req);
    }

    /// `tryUpdateNodeStatus`: post when something other than heartbeat times changed, or
    /// when nodeStatusReportFrequency has passed since the last post.
    fn sync_node_status(&mut self, now: SimTime, out: &mut Output) {
        let Some(obj) = self.cache.get(&self.node_key()).cloned() else { return };
        let Some(node) = obj.as_node() else { return };
        let (desired, events) = self.node_status(now, Some(node));
        let strip = |cs: &[NodeCondition]| -> Vec<(String, ConditionStatus, String, String)> {
            cs.iter().map(|c| (c.type_.clone(), c.status, c.reason.clone(), c.message.clone())).collect()
        };
        let changed = strip(&desired.conditions) != strip(&node.status.conditions)
            || desired.volumes_in_use != node.status.volumes_in_use
            || desired.allocatable != node.status.allocatable
            || desired.capacity != node.status.capacity;
        let due = self
            .last_status_post
            .is_none_or(|t| now.saturating_sub(t) >= self.config.node_status_report_frequency);
        if changed || due {
            let mut n = node.clone();
            n.status = desired;
            n.metadata.resource_version = 0;
            self.send(out, Sent::NodeStatus, ApiRequest::UpdateStatus(Object::Node(n)));
            self.last_status_post = Some(now);
            // recordNodeStatusEvent: "Node <name> status is now: <event>".
            for e in events {
                let msg = format!("Node {} status is now: {e}", self.config.node_name);
                let r = self.recorder.record(&obj, EVENT_NORMAL, e, &msg, now);
                self.send(out, Sent::Other, r);
            }
        }
    }

    /// The pod's address, as the CNI plugin's host-local IPAM hands them out over the
    /// node's `spec.podCIDR` (a /24 from the node IPAM range allocator): in turn from .2
    /// (.1 is the bridge's gateway), wrapping before the broadcast address. Without a
    /// podCIDR yet, an address derived from the node's name.
    fn pod_ip(&mut self) -> String {
        self.pod_ip_counter += 1;
        let host = (self.pod_ip_counter - 2) % 253 + 2;
        let cidr =
            self.cache.get(&self.node_key()).and_then(|o| o.as_node().map(|n| n.spec.pod_cidr.clone()));
        if let Some(net) = cidr.as_deref().and_then(|c| c.strip_suffix(".0/24")) {
            return format!("{net}.{host}");
        }
        let h = self.config.node_name.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
        format!("10.{}.{}.{host}", 64 + (h % 64), (h >> 8) % 256)
    }

    /// Forgets a pod: it left the node or was replaced by another with its name.
    fn forget_pod(&mut self, key: &(String, String)) {
        self.release(key);
        self.pods.remove(key);
        self.status.desired.remove(key);
    }

    /// Releases what an admitted pod holds once it is finished or going away (its
    /// volumes leave the desired state of world: no more mount retries).
    fn release(&mut self, key: &(String, String)) {
        self.volumes.remove_pod(key);
        if let Some(w) = self.pods.get_mut(key) {
            if let Some(t) = w.next_sync.take() {
                self.timers.remove(&(t, key.clone()));
            }
            if let Some(r) = w.requests.take() {
                self.used.sub(&r);
                self.used.pods -= 1;
            }
        }
    }

    /// The first PLEG relist at or after `t`: relists run every second from the
    /// kubelet's start, and a container's exit is seen at the next one.
    fn pleg_after(&self, t: SimTime) -> SimTime {
        let p = PLEG_RELIST_PERIOD.as_millis() as u64;
        let since = t.saturating_sub(self.started_at).as_millis() as u64;
        self.started_at + Duration::from_millis(since.div_ceil(p) * p)
    }

    /// Schedules a pod's next full sync (replacing the one scheduled before).
    fn schedule(&mut self, key: &(String, String), at: Option<SimTime>) {
        let Some(w) = self.pods.get_mut(key) else { return };
        if let Some(t) = w.next_sync.take() {
            self.timers.remove(&(t, key.clone()));
        }
        if let Some(t) = at {
            w.next_sync = Some(t);
            self.timers.insert((t, key.clone()));
        }
    }

    /// Syncs the pods whose watch event arrived or whose timer is due: the pod workers'
    /// `SyncPod` for just those pods, so a tick costs what changed, not the node's pods.
    /// A watch event alone (the kubelet's own status write coming back, the node
    /// lifecycle controller marking the pod NotReady) only reconciles the status, as
    /// the kubelet's config source turns status-only changes into RECONCILE.
    fn sync_pods(&mut self, now: SimTime, rng: &mut ChaCha8Rng, out: &mut Output) {
        let mut keys = std::mem::take(&mut self.dirty);
        let mut due = BTreeSet::new();
        while let Some((t, _)) = self.timers.first() {
            if *t > now {
                break;
            }
            let (_, k) = self.timers.pop_first().expect("non-empty");
            if let Some(w) = self.pods.get_mut(&k) {
                w.next_sync = None;
            }
            keys.insert(k.clone());
            due.insert(k);
        }
        for k in keys {
            let Some(o) = self.cache.get(&ObjectKey::new(Kind::Pod, k.0.clone(), k.1.clone())).cloned()
            else {
                self.forget_pod(&k);
                continue;
            };
            let p = o.as_pod().expect("pod watch");
            if self.pods.get(&k).is_some_and(|w| w.uid != p.metadata.uid) {
                self.forget_pod(&k);
            }
            let stage = self.pods.get(&k).map(|w| w.stage);
            if p.metadata.deletion_timestamp.is_some() {
                if stage != Some(Stage::Terminating) {
                    self.terminate(&o, p, now, out);
                }
                continue;
            }
            let api_terminal = matches!(p.phase(), PodPhase::Succeeded | PodPhase::Failed);
            match stage {
                None if api_terminal => {
                    // Finished before this kubelet took it on: nothing to run.
                    self.pods.insert(k.clone(), PodWork::new(p, Stage::Rejected));
                }
                None => self.admit(&o, p, now, rng, out),
                Some(Stage::Active) if api_terminal => {
                    // Marked terminal by someone else (PodGC, an eviction): stop it.
                    if let Some(w) = self.pods.get_mut(&k) {
                        pods::kill_all(&mut w.containers, now);
                        w.stage = Stage::Finished;
                    }
                    self.release(&k);
                }
                Some(Stage::Active) if due.contains(&k) => self.sync_pod(&k, &o, p, now, rng, out),
                Some(Stage::Active | Stage::Finished) => self.reconcile_status(&k, p, out),
                _ => {}
            }
        }
    }

    /// One full sync of an admitted pod: advance its containers to `now`, record what
    /// happened, write the status if it changed and schedule the next look.
    fn sync_pod(
        &mut self,
        k: &(String, String),
        o: &Arc<Object>,
        p: &Pod,
        now: SimTime,
        rng: &mut ChaCha8Rng,
        out: &mut Output,
    ) {
        if !self.wait_for_volumes(k, now, rng) {
            // syncPod sets the pod's status before it waits: Pending, ContainerCreating,
            // no sandbox yet.
            let Some(w) = self.pods.get(k) else { return };
            let empty = PodStatus::default();
            let base = self.status.desired.get(k).map_or(&empty, |(_, s)| s);
            let status = pods::pod_status(&w.containers, p, base, false, now);
            let changed = self.status.desired.get(k).is_none_or(|(_, s)| *s != status)
                || StatusManager::drifted(&p.status, &status);
            if changed && !self.status.busy(k) {
                self.post_status(p, status, out);
            }
            return;
        }
        let Some(w) = self.pods.get_mut(k) else { return };
        let images = pods::Images { present: &self.images, unpullable: &self.host.unpullable_images };
        let cfg = volumes::ConfigSource { cache: &self.cache };
        let r = pods::sync_containers(&mut w.containers, p, cfg, images, &mut self.pulls, now);
        let empty = PodStatus::default();
        let base = self.status.desired.get(k).map_or(&empty, |(_, s)| s);
        let status = pods::pod_status(&w.containers, p, base, true, now);
        for img in r.pulled {
            let size = w.containers.iter().find(|c| c.image == img).map_or(0, |c| c.image_size_bytes());
            self.image_sizes.insert(img.clone(), size);
            self.images.insert(img);
        }
        for e in r.events {
            let type_ = if e.warning { EVENT_WARNING } else { EVENT_NORMAL };
            let ev = self.recorder.record(o, type_, e.reason, &e.message, now);
            self.send(out, Sent::Other, ev);
        }
        let terminal = matches!(status.phase, Some(PodPhase::Succeeded | PodPhase::Failed));
        if self.status.desired.get(k).is_none_or(|(_, s)| *s != status) {
            self.post_status(p, status, out);
        }
        if terminal {
            if let Some(w) = self.pods.get_mut(k) {
                w.stage = Stage::Finished;
            }
            self.release(k);
            return;
        }
        let mut next = r.wake;
        if let Some(e) = r.exit_wake {
            let seen = self.pleg_after(e);
            next = Some(next.map_or(seen, |t| t.min(seen)));
        }
        if r.backoff_resync {
            // wait.Jitter(backOffPeriod, 0.5).
            let t = now + pods::POD_BACKOFF_RESYNC.mul_f64(1.0 + rng.gen::<f64>() * 0.5);
            next = Some(next.map_or(t, |x| x.min(t)));
        }
        self.schedule(k, next);
    }

    /// The volume manager's reconciler pass: FailedMount events, and the pods whose wait
    /// for their volumes ends.
    fn reconcile_volumes(&mut self, now: SimTime, out: &mut Output) {
        let done = self.volumes.reconcile(now, volumes::ConfigSource { cache: &self.cache });
        for (key, e) in done.events {
            let Some(o) = self.cache.get(&ObjectKey::new(Kind::Pod, key.0, key.1)).cloned() else { continue };
            let ev = self.recorder.record(&o, EVENT_WARNING, e.reason, &e.message, now);
            self.send(out, Sent::Other, ev);
        }
        for (key, at) in done.ready {
            if self.pods.get(&key).is_some_and(|w| w.stage == Stage::Active) {
                self.schedule(&key, Some(at));
            }
        }
    }

    /// The pod worker's `WaitForAttachAndMount` before SyncPod: true when the pod's
    /// volumes are mounted; otherwise its next sync is scheduled (the wait's end, or the
    /// pod workers' back-off after a wait that timed out).
    fn wait_for_volumes(&mut self, k: &(String, String), now: SimTime, rng: &mut ChaCha8Rng) -> bool {
        let next = match self.volumes.wait(k, now) {
            volumes::MountWait::Ready => return true,
            volumes::MountWait::Waiting { deadline } => deadline,
            // wait.Jitter(backOffPeriod, 0.5).
            volumes::MountWait::TimedOut => {
                now + pods::POD_BACKOFF_RESYNC.mul_f64(1.0 + rng.gen::<f64>() * 0.5)
            }
        };
        self.schedule(k, Some(next));
        false
    }

    /// Records the status the kubelet computed for a pod and writes it.
    fn post_status(&mut self, p: &Pod, status: PodStatus, out: &mut Output) {
        let key = (p.metadata.namespace.clone(), p.metadata.name.clone());
        let np = StatusManager::merged(p, &status);
        self.status.desired.insert(key.clone(), (p.metadata.uid.clone(), status));
        self.next_tag += 1;
        self.in_flight.insert(self.next_tag, Sent::Other);
        self.status.in_flight.insert(self.next_tag, key);
        out.requests.push(Tagged { tag: self.next_tag, request: ApiRequest::UpdateStatus(Object::Pod(np)) });
    }

    /// The status manager's reconcile: write our status again where the API server's
    /// copy of a pod we run drifted from it.
    fn reconcile_status(&mut self, key: &(String, String), p: &Pod, out: &mut Output) {
        if p.metadata.deletion_timestamp.is_some() || self.status.busy(key) {
            return;
        }
        let Some((uid, want)) = self.status.desired.get(key).cloned() else { return };
        if uid != p.metadata.uid || !StatusManager::drifted(&p.status, &want) {
            return;
        }
        self.post_status(p, want, out);
    }

    /// Rejects a pod at admission (kubelet.go rejectPod): a Warning event with the
    /// reason and message, and phase Failed with "Pod was rejected: " before it.
    fn reject(
        &mut self,
        o: &Arc<Object>,
        p: &Pod,
        reason: &str,
        message: &str,
        now: SimTime,
        out: &mut Output,
    ) {
        let mut np = p.clone();
        np.status.phase = Some(PodPhase::Failed);
        np.status.reason = reason.into();
        np.status.message = format!("Pod was rejected: {message}");
        np.metadata.resource_version = 0;
        self.send(out, Sent::Other, ApiRequest::UpdateStatus(Object::Pod(np)));
        let ev = self.recorder.record(o, EVENT_WARNING, reason, message, now);
        self.send(out, Sent::Other, ev);
        let key = (p.metadata.namespace.clone(), p.metadata.name.clone());
        self.pods.insert(key, PodWork::new(p, Stage::Rejected));
    }

    /// Admission (lifecycle.PredicateAdmitHandler), then the pod's first sync.
    fn admit(&mut self, o: &Arc<Object>, p: &Pod, now: SimTime, rng: &mut ChaCha8Rng, out: &mut Output) {
        let used = self.used;
        let alloc = Resources::from_list(&self.config.allocatable());
        let req = p.requests();
        let mut insufficient = None;
        if used.pods + 1 > alloc.pods && alloc.pods > 0 {
            insufficient = Some(("pods", 1, used.pods, alloc.pods));
        } else if used.milli_cpu + req.milli_cpu > alloc.milli_cpu && req.milli_cpu > 0 {
            insufficient = Some(("cpu", req.milli_cpu, used.milli_cpu, alloc.milli_cpu));
        } else if used.memory_bytes + req.memory_bytes > alloc.memory_bytes && req.memory_bytes > 0 {
            insufficient = Some(("memory", req.memory_bytes, used.memory_bytes, alloc.memory_bytes));
        }
        if let Some((res, requested, in_use, cap)) = insufficient {
            // pkg/kubelet/lifecycle/predicate.go: reason OutOf<resource> and
            // "Node didn't have enough resource: ...".
            let reason = format!("OutOf{res}");
            let message =
                format!("Node didn't have enough resource: {res}, requested: {requested}, used: {in_use}, capacity: {cap}");
            self.reject(o, p, &reason, &message, now, out);
            return;
        }
        // eviction_manager.go Admit: under pressure, refuse what the pressure forbids.
        let best_effort = p.status.qos_class == "BestEffort";
        // v1helper.TolerationsTolerateTaint with the memory-pressure NoSchedule taint.
        let memory_pressure = Taint {
            key: crate::controllers::node_lifecycle::TAINT_NODE_MEMORY_PRESSURE.into(),
            value: String::new(),
            effect: crate::api::TaintEffect::NoSchedule,
            time_added: None,
        };
        let tolerates = p.spec.tolerations.iter().any(|t| t.tolerates(&memory_pressure));
        let critical = p.spec.priority.unwrap_or(0) >= eviction::SYSTEM_CRITICAL_PRIORITY;
        if let Err(message) = self.eviction.admit(best_effort, tolerates, critical) {
            self.reject(o, p, eviction::REASON_EVICTED, &message, now, out);
            return;
        }
        self.used.add(&req);
        self.used.pods += 1;
        let key = (p.metadata.namespace.clone(), p.metadata.name.clone());
        let mut w = PodWork::new(p, Stage::Active);
        w.requests = Some(req);
        w.containers = pods::containers_for(p, &self.config.behaviors, self.config.pod_start_latency);
        self.pods.insert(key.clone(), w);
        self.volumes.add_pod(key.clone(), p, now);
        // The first status: Pending, sandbox not yet ready, containers creating.
        let ip = self.pod_ip();
        let mut base = PodStatus {
            phase: Some(PodPhase::Pending),
            host_ip: self.config.internal_ip.clone(),
            pod_ip: ip.clone(),
            // The kubelet's generateAPIPodStatus: hostIPs and podIPs list the node's and
            // the pod's addresses (one each on a single-stack cluster).
            host_ips: vec![crate::api::pod::PodIp { ip: self.config.internal_ip.clone() }],
            pod_ips: vec![crate::api::pod::PodIp { ip }],
            start_time: Some(now),
            ..Default::default()
        };
        base.conditions.extend(
            p.status.conditions.iter().filter(|c| !KUBELET_CONDITIONS.contains(&c.type_.as_str())).cloned(),
        );
        let first = pods::pod_status(&self.pods[&key].containers, p, &base, false, now);
        self.status.desired.insert(key.clone(), (p.metadata.uid.clone(), first));
        self.sync_pod(&key, o, p, now, rng, out);
    }

    /// Stops the containers (they exit on SIGTERM at once) and finishes the deletion.
    fn terminate(&mut self, o: &Arc<Object>, p: &Pod, now: SimTime, out: &mut Output) {
        let key = (p.metadata.namespace.clone(), p.metadata.name.clone());
        let events = match self.pods.get_mut(&key) {
            Some(w) => pods::kill_all(&mut w.containers, now),
            None => Vec::new(),
        };
        for e in events {
            let ev = self.recorder.record(o, EVENT_NORMAL, e.reason, &e.message, now);
            self.send(out, Sent::Other, ev);
        }
        self.release(&key);
        let w = self.pods.entry(key).or_insert_with(|| PodWork::new(p, Stage::Terminating));
        w.stage = Stage::Terminating;
        let req = ApiRequest::Delete {
            key: o.key(),
            grace_period_seconds: Some(0),
            precondition_uid: Some(p.metadata.uid.clone()),
        };
        self.send(out, Sent::Other, req);
        self.recorder.forget(&o.key());
    }

    /// The eviction manager's signals as cAdvisor and the runtime would report them
    /// (eviction/helpers.go makeSignalObservations). Disk signals exist only for a node
    /// with an ephemeral-storage capacity; the image filesystem is the node filesystem.
    fn observations(&self, now: SimTime) -> eviction::Observations {
        use eviction::{Observation, Signal};
        let mut obs = eviction::Observations::new();
        let active = self.pods.values().filter(|w| w.stage == Stage::Active);
        let (mut memory, mut disk, mut pids) = (0i64, 0i64, 0i64);
        for w in active {
            for c in &w.containers {
                memory += pages(c.memory_bytes(now));
                disk += pages(c.disk_bytes(now));
                pids += c.processes();
            }
        }
        if let Some(cap) = self.config.capacity.get(resource::MEMORY).map(Quantity::value) {
            let hog = pages(self.host.memory_hog.as_ref().map_or(0, |h| h.bytes(now)));
            obs.insert(Signal::MemoryAvailable, Observation { available: cap - hog - memory, capacity: cap });
        }
        if let Some(cap) = self.config.capacity.get(resource::EPHEMERAL_STORAGE).map(Quantity::value) {
            let images: i64 = self.images.iter().filter_map(|i| self.image_sizes.get(i)).sum();
            let used = self.host.disk_filled_bytes + images + disk;
            let fs = Observation { available: cap - used, capacity: cap };
            obs.insert(Signal::NodeFsAvailable, fs);
            obs.insert(Signal::ImageFsAvailable, fs);
            let inodes = cap / BYTES_PER_INODE;
            let used_inodes = self.host.inodes_filled + used / BYTES_PER_INODE;
            obs.insert(
                Signal::NodeFsInodesFree,
                Observation { available: inodes - used_inodes, capacity: inodes },
            );
        }
        let used_pids = self.host.pids_used + pids;
        obs.insert(Signal::PidAvailable, Observation { available: PID_MAX - used_pids, capacity: PID_MAX });
        obs
    }

    /// One `synchronize` of the eviction manager. Returns true when it evicted a pod.
    fn eviction_pass(&mut self, now: SimTime, out: &mut Output) -> bool {
        let mut obs = self.observations(now);
        let Some(decision) = self.eviction.observe(now, &obs) else { return false };
        let Some(node) = self.cache.get(&self.node_key()).cloned() else { return false };
        // eviction_manager.go: "Attempting to reclaim %s" on the node.
        let msg = format!("Attempting to reclaim {}", decision.resource);
        let ev = self.recorder.record(&node, EVENT_WARNING, "EvictionThresholdMet", &msg, now);
        self.send(out, Sent::Other, ev);
        if decision.threshold.signal.is_disk() {
            // reclaimNodeLevelResources: delete unused images, then look again.
            let used: BTreeSet<String> = self
                .pods
                .values()
                .filter(|w| w.stage == Stage::Active)
                .flat_map(|w| w.containers.iter().map(|c| c.image.clone()))
                .collect();
            self.images.retain(|i| used.contains(i));
            self.image_sizes.retain(|i, _| used.contains(i));
            obs = self.observations(now);
            if !self.eviction.still_met(&decision.threshold, &obs) {
                return false;
            }
        }
        let mut usage: Vec<eviction::PodUsage<(String, String)>> = self
            .pods
            .iter()
            .filter(|(_, w)| w.stage == Stage::Active && w.priority < eviction::SYSTEM_CRITICAL_PRIORITY)
            .map(|(k, w)| {
                let mut u = eviction::PodUsage { key: k.clone(), priority: w.priority, ..Default::default() };
                for c in &w.containers {
                    let (m, d) = (pages(c.memory_bytes(now)), pages(c.disk_bytes(now)));
                    u.memory += m;
                    u.memory_request += c.memory_request();
                    u.disk += d;
                    u.inodes += d / BYTES_PER_INODE;
                    u.pids += c.processes();
                    u.containers.push((c.name.clone(), m, c.memory_request(), d, 0));
                }
                u
            })
            .collect();
        eviction::rank(decision.resource, &mut usage);
        let Some(victim) = usage.first() else { return false };
        let message = self.eviction.message(decision.resource, victim, &obs);
        let key = victim.key.clone();
        let Some(o) = self.cache.get(&ObjectKey::new(Kind::Pod, key.0.clone(), key.1.clone())).cloned()
        else {
            return false;
        };
        let p = o.as_pod().expect("pod");
        self.evict(&key, &o, p, &message, now, out);
        true
    }

    /// `evictPod`: the Evicted event, the containers killed, and the pod Failed with
    /// reason Evicted and a DisruptionTarget condition.
    fn evict(
        &mut self,
        key: &(String, String),
        o: &Arc<Object>,
        p: &Pod,
        message: &str,
        now: SimTime,
        out: &mut Output,
    ) {
        let ev = self.recorder.record(o, EVENT_WARNING, eviction::REASON_EVICTED, message, now);
        self.send(out, Sent::Other, ev);
        let Some(w) = self.pods.get_mut(key) else { return };
        let killed = pods::kill_all(&mut w.containers, now);
        w.stage = Stage::Finished;
        for e in killed {
            let ev = self.recorder.record(o, EVENT_NORMAL, e.reason, &e.message, now);
            self.send(out, Sent::Other, ev);
        }
        let mut base = self.status.desired.get(key).map(|(_, s)| s.clone()).unwrap_or_default();
        base.phase = Some(PodPhase::Failed);
        base.reason = eviction::REASON_EVICTED.into();
        base.message = message.to_string();
        let mut status = pods::pod_status(&self.pods[key].containers, p, &base, false, now);
        // Pod disruption conditions (v1.31 GA): DisruptionTarget, TerminationByKubelet.
        status.conditions.retain(|c| c.type_ != condition::DISRUPTION_TARGET);
        status.conditions.push(crate::api::PodCondition {
            type_: condition::DISRUPTION_TARGET.into(),
            status: ConditionStatus::True,
            last_transition_time: Some(now),
            reason: "TerminationByKubelet".into(),
            message: message.to_string(),
            ..Default::default()
        });
        self.release(key);
        self.post_status(p, status, out);
    }

    /// Crash requests from the host (a scenario fault) made since this kubelet started:
    /// the matching running containers exit, and the PLEG sees it at its next relist.
    fn apply_crashes(&mut self) {
        let new: Vec<crate::host::CrashRequest> =
            self.host.crashes.iter().skip(self.crashes_seen).cloned().collect();
        self.crashes_seen = self.host.crashes.len();
        for c in new {
            if c.at < self.started_at {
                continue;
            }
            let keys: Vec<(String, String)> = self
                .pods
                .iter()
                .filter(|((ns, name), w)| {
                    w.stage == Stage::Active
                        && c.namespace.as_ref().is_none_or(|n| n == ns)
                        && behavior::glob(&c.pod, name)
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in keys {
                let Some(w) = self.pods.get_mut(&k) else { continue };
                let names: Vec<String> = w
                    .containers
                    .iter()
                    .filter(|x| c.container.as_ref().is_none_or(|n| *n == x.name))
                    .map(|x| x.name.clone())
                    .collect();
                let mut crashed = false;
                for n in names {
                    crashed |= pods::crash(&mut w.containers, &n, c.at, c.exit_code);
                }
                if crashed {
                    let seen = self.pleg_after(c.at);
                    let at = self.pods[&k].next_sync.map_or(seen, |t| t.min(seen));
                    self.schedule(&k, Some(at));
                }
            }
        }
    }
}

/// Memory is used in whole 4 KiB pages and files in whole 4 KiB blocks: cgroup and
/// cAdvisor figures are multiples of them.
fn pages(bytes: i64) -> i64 {
    (bytes.max(0) + 4095) / 4096 * 4096
}

/// `wait.JitterUntil(period, 0.04)`: each wait is period * (1 + rand * 0.04).
fn jittered(period: Duration, rng: &mut ChaCha8Rng) -> Duration {
    period.mul_f64(1.0 + rng.gen::<f64>() * HEARTBEAT_JITTER)
}

impl Component for Kubelet {
    fn name(&self) -> &str {
        "kubelet"
    }

    fn watches(&self) -> Vec<WatchSpec> {
        let n = self.config.node_name.clone();
        vec![
            WatchSpec { kind: Some(Kind::Pod), node_name: Some(n.clone()), ..Default::default() },
            WatchSpec { kind: Some(Kind::Node), name: Some(n.clone()), ..Default::default() },
            // The ConfigMap and Secret managers (volumes, environment).
            WatchSpec::kind(Kind::ConfigMap),
            WatchSpec::kind(Kind::Secret),
            // The volume manager's claims and volumes (upstream reads them with GETs).
            WatchSpec::kind(Kind::PersistentVolumeClaim),
            WatchSpec::kind(Kind::PersistentVolume),
            WatchSpec {
                kind: Some(Kind::Lease),
                namespace: Some(NODE_LEASE_NAMESPACE.into()),
                name: Some(n),
                ..Default::default()
            },
        ]
    }

    fn on_event(&mut self, ev: &WatchEvent, now: SimTime) {
        self.cache.apply(ev);
        if matches!(ev.object.kind(), Kind::PersistentVolumeClaim | Kind::PersistentVolume) {
            self.volumes.claims_changed(now);
        }
        if ev.object.kind() == Kind::Pod {
            let m = ev.object.meta();
            self.dirty.insert((m.namespace.clone(), m.name.clone()));
        }
    }

    /// cmd/kubelet/app/server.go: events go through an event client (eventRecordQPS,
    /// eventBurst); the node Lease and node status through a heartbeat client without a
    /// rate limit; everything else through the kubelet's client (kubeAPIQPS, kubeAPIBurst).
    fn client_of(&self, _tag: u64, request: &ApiRequest) -> &'static str {
        match request {
            ApiRequest::Create(Object::Event(_)) | ApiRequest::Update(Object::Event(_)) => EVENT_CLIENT,
            ApiRequest::Create(Object::Lease(_)) | ApiRequest::Update(Object::Lease(_)) => HEARTBEAT_CLIENT,
            ApiRequest::UpdateStatus(Object::Node(_)) => HEARTBEAT_CLIENT,
            _ => crate::client::DEFAULT_CLIENT,
        }
    }

    fn on_host(&mut self, host: &crate::host::HostState, _now: SimTime) {
        self.host = host.clone();
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, _now: SimTime) {
        if let Some(key) = self.status.in_flight.remove(&tag) {
            // Look at the pod again: a lost or refused write is made again.
            if result.is_err() {
                self.dirty.insert(key);
            }
        }
        if let Some(what) = self.in_flight.remove(&tag) {
            if what == Sent::Register {
                // Created, or it already exists and this kubelet takes it over.
                self.registered = result.is_ok() || result.as_ref().is_err_and(|e| e.is_already_exists());
            }
            if what == Sent::NodeStatus && result.is_err() {
                self.last_status_post = None;
            }
        }
    }

    fn tick(&mut self, now: SimTime, rng: &mut ChaCha8Rng) -> Output {
        let mut out = Output::default();
        if !self.registered {
            if self.ids.0.is_empty() {
                use rand::Rng;
                let machine: [u8; 16] = rng.gen();
                self.ids = (
                    machine.iter().map(|b| format!("{b:02x}")).collect(),
                    crate::apiserver::uuid_v4(rng),
                    crate::apiserver::uuid_v4(rng),
                );
            }
            if !self.waiting(Sent::Register) {
                self.register(now, &mut out);
            }
            out.wake_no_later_than(now + Duration::from_secs(1));
            return out;
        }
        if !self.started_events && self.cache.get(&self.node_key()).is_some() {
            self.started_events(now, &mut out);
        }
        if now >= self.next_lease_renew && !self.waiting(Sent::Lease) {
            self.renew_lease(now, &mut out);
            let renew = self.config.node_lease_duration_seconds as f64 * NODE_LEASE_RENEW_FRACTION;
            let renew = Duration::from_secs_f64(renew);
            self.next_lease_renew = now + jittered(renew, rng);
        }
        if now >= self.next_status_check && !self.waiting(Sent::NodeStatus) {
            self.sync_node_status(now, &mut out);
            self.next_status_check = now + jittered(self.config.node_status_update_frequency, rng);
        }
        self.apply_crashes();
        self.reconcile_volumes(now, &mut out);
        self.sync_pods(now, rng, &mut out);
        if now >= self.next_eviction_check {
            // eviction_manager.go start: after an eviction, wait (polling every 1 s) for
            // the pod's cleanup, else sleep the monitoring interval.
            let evicted = self.eviction_pass(now, &mut out);
            let wait = if evicted { POD_CLEANUP_POLL } else { eviction::MONITORING_INTERVAL };
            self.next_eviction_check = now + wait;
        }
        out.wake_no_later_than(self.next_eviction_check);
        if let Some(t) = self.volumes.next_wake() {
            out.wake_no_later_than(t);
        }
        if let Some((t, _)) = self.timers.first() {
            out.wake_no_later_than(*t);
        }
        out.wake_no_later_than(self.next_lease_renew.min(self.next_status_check));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn cfg() -> KubeletConfig {
        let mut cap = ResourceList::new();
        cap.insert("cpu".into(), Quantity::parse("4").unwrap());
        cap.insert("memory".into(), Quantity::parse("16Gi").unwrap());
        cap.insert("pods".into(), Quantity::parse("110").unwrap());
        KubeletConfig::new("node-1", cap)
    }

    #[test]
    fn allocatable_subtracts_hard_eviction_threshold() {
        let a = cfg().allocatable();
        assert_eq!(a["memory"].value(), (16 << 30) - (100 << 20));
        assert_eq!(a["cpu"].milli_value(), 4000);
    }

    /// GetNodeAllocatableAbsolute: capacity - kube-reserved - system-reserved - the hard
    /// thresholds on memory.available and nodefs.available.
    #[test]
    fn allocatable_subtracts_reservations_and_thresholds() {
        let mut c = cfg();
        c.capacity.insert("ephemeral-storage".into(), Quantity::parse("100Gi").unwrap());
        c.kube_reserved.insert("cpu".into(), Quantity::parse("200m").unwrap());
        c.kube_reserved.insert("memory".into(), Quantity::parse("1Gi").unwrap());
        c.system_reserved.insert("memory".into(), Quantity::parse("512Mi").unwrap());
        c.system_reserved.insert("ephemeral-storage".into(), Quantity::parse("10Gi").unwrap());
        let a = c.allocatable();
        assert_eq!(a["cpu"].milli_value(), 3800);
        assert_eq!(a["memory"].value(), (16 << 30) - (1 << 30) - (512 << 20) - (100 << 20));
        // nodefs.available<10%: float64(100Gi) * float64(float32(0.1)).
        assert_eq!(a["ephemeral-storage"].value(), (100i64 << 30) - (10 << 30) - 10_737_418_400);
        assert_eq!(a["pods"].value(), 110);
    }

    #[test]
    fn registers_then_renews_lease_every_ten_seconds() {
        let mut k = Kubelet::new(cfg(), SimTime::ZERO);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let out = k.tick(SimTime::ZERO, &mut rng);
        assert!(matches!(&out.requests[0].request, ApiRequest::Create(Object::Node(_))));
        let node = match &out.requests[0].request {
            ApiRequest::Create(o) => Arc::new(o.clone()),
            _ => unreachable!(),
        };
        k.on_response(out.requests[0].tag, &Ok(node.clone()), SimTime::ZERO);
        k.on_event(&WatchEvent { type_: crate::client::WatchEventType::Added, object: node }, SimTime::ZERO);
        let out = k.tick(SimTime(1), &mut rng);
        let leases = out
            .requests
            .iter()
            .filter(|r| matches!(&r.request, ApiRequest::Create(Object::Lease(_))))
            .count();
        assert_eq!(leases, 1);
        for r in &out.requests {
            k.on_response(r.tag, &Err(crate::client::ApiError::not_found(Kind::Lease, "x")), SimTime(1));
        }
        let out = k.tick(SimTime::from_secs(5), &mut rng);
        assert!(
            !out.requests.iter().any(|r| matches!(&r.request, ApiRequest::Create(Object::Lease(_)))),
            "not before 10 s"
        );
        let out = k.tick(SimTime::from_secs(11), &mut rng);
        assert!(out.requests.iter().any(|r| matches!(&r.request, ApiRequest::Create(Object::Lease(_)))));
    }
}
