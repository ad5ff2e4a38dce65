//! Scenario format v1: loading, validation and errors that name the file, the line and
//! the fix. The format is documented field by field in scenarios/README.md.
//!
//! Errors raised while deserializing carry serde_yaml's location. Manifest files named by
//! `path:` are read during deserialization, so a missing file is reported at the `path:`
//! line and an error inside the manifest at the manifest's own line. The few checks that
//! need the whole file (host names, times past the duration) find their line by search.

mod behaviors;
mod duration;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use kubesim_model::api::{parse_manifests, Document, Kind, Object, Quantity, Taint};
use kubesim_model::time::SimTime;
use serde::{Deserialize, Deserializer};

pub use behaviors::*;
pub use duration::{parse_duration, Dur};

/// A user error in a scenario (or a manifest it names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// A loaded scenario and the warnings to show (fields and kinds not simulated).
#[derive(Clone, Debug)]
pub struct Loaded {
    pub scenario: Scenario,
    pub warnings: Vec<String>,
    pub path: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub duration: Dur,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub control_plane: ControlPlane,
    #[serde(default)]
    pub node_pools: Vec<NodePool>,
    #[serde(default)]
    pub workloads: Vec<ManifestSource>,
    /// What containers do once started, first match wins.
    #[serde(default)]
    pub behaviors: Vec<BehaviorSpec>,
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    #[serde(default)]
    pub expectations: Vec<Expectation>,
}

fn default_seed() -> u64 {
    1
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Network {
    /// One-way latency between hosts (default 1ms).
    pub latency: Option<Dur>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlPlane {
    /// Control-plane hosts cp-1..cp-N (default 1).
    pub hosts: Option<u32>,
    #[serde(default)]
    pub kube_scheduler: SchedulerFlags,
    #[serde(default)]
    pub kube_controller_manager: ControllerManagerFlags,
}

/// KubeSchedulerConfiguration fields a scenario may set.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SchedulerFlags {
    pub pod_initial_backoff_seconds: Option<u64>,
    pub pod_max_backoff_seconds: Option<u64>,
    pub percentage_of_nodes_to_score: Option<u32>,
    /// clientConnection.qps / burst.
    pub qps: Option<f64>,
    pub burst: Option<u32>,
    /// KubeSchedulerConfiguration `profiles` (default: the default profile).
    #[serde(default)]
    pub profiles: Vec<kubesim_model::scheduler::config::ProfileConfig>,
}

/// kube-controller-manager flags a scenario may set, by their upstream names.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ControllerManagerFlags {
    pub node_monitor_period: Option<Dur>,
    pub node_monitor_grace_period: Option<Dur>,
    pub node_startup_grace_period: Option<Dur>,
    pub kube_api_qps: Option<f64>,
    pub kube_api_burst: Option<u32>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodePool {
    pub name: String,
    #[serde(default = "one")]
    pub count: u32,
    pub name_pattern: Option<String>,
    pub capacity: Capacity,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<Taint>,
    #[serde(default)]
    pub unschedulable: bool,
    #[serde(default)]
    pub kubelet: KubeletKnobs,
}

fn one() -> u32 {
    1
}

impl NodePool {
    /// The name of the pool's i-th node (1-based).
    pub fn node_name(&self, i: u32) -> String {
        match &self.name_pattern {
            Some(p) => p.replace("{i}", &i.to_string()),
            None => format!("{}-{i}", self.name),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Capacity {
    pub cpu: Quantity,
    pub memory: Quantity,
    pub pods: Option<Quantity>,
    #[serde(rename = "ephemeral-storage")]
    pub ephemeral_storage: Option<Quantity>,
    /// Extended resources (`nvidia.com/gpu: 4`): any other key, which must be
    /// domain-prefixed (checked in `validate`).
    #[serde(flatten)]
    pub extended: BTreeMap<String, Quantity>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeletKnobs {
    /// Simulated image pull + container start (default 1s).
    pub pod_start_latency: Option<Dur>,
    pub node_status_update_frequency: Option<Dur>,
    #[serde(rename = "kubeAPIQPS")]
    pub kube_api_qps: Option<f64>,
    #[serde(rename = "kubeAPIBurst")]
    pub kube_api_burst: Option<u32>,
    /// KubeletConfiguration kubeReserved / systemReserved (default none).
    #[serde(default)]
    pub kube_reserved: BTreeMap<String, Quantity>,
    #[serde(default)]
    pub system_reserved: BTreeMap<String, Quantity>,
    /// evictionHard: replaces the defaults (memory.available 100Mi, nodefs.available
    /// 10%, nodefs.inodesFree 5%, imagefs.available 15%) when given.
    pub eviction_hard: Option<Thresholds>,
    pub eviction_soft: Option<Thresholds>,
    pub eviction_soft_grace_period: Option<GracePeriods>,
    /// evictionPressureTransitionPeriod (default 5m).
    pub eviction_pressure_transition_period: Option<Dur>,
    /// evictionMaxPodGracePeriod (default 0).
    pub eviction_max_pod_grace_period: Option<i64>,
}

impl KubeletKnobs {
    pub fn eviction(&self) -> Result<kubesim_model::kubelet::eviction::EvictionConfig, String> {
        eviction_config(
            self.eviction_hard.as_ref(),
            self.eviction_soft.as_ref(),
            self.eviction_soft_grace_period.as_ref(),
            self.eviction_pressure_transition_period.as_ref(),
            self.eviction_max_pod_grace_period,
        )
    }
}

/// Manifests from a file (`path:`) or inline (`manifest:`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSource {
    pub path: Option<ManifestFile>,
    pub manifest: Option<Inline>,
}

impl ManifestSource {
    pub fn objects(&self) -> Vec<Object> {
        let mut v = Vec::new();
        if let Some(f) = &self.path {
            v.extend(f.objects.iter().cloned());
        }
        if let Some(i) = &self.manifest {
            v.extend(i.0.iter().cloned());
        }
        v
    }
}

/// An inline manifest (any document, including `kind: List`).
#[derive(Clone, Debug)]
pub struct Inline(pub Vec<Object>);

impl<'de> Deserialize<'de> for Inline {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let doc = Document::deserialize(d)?;
        if let Document::Unsupported { kind, name, .. } = &doc {
            WARNINGS.with(|w| {
                w.borrow_mut().push(format!("{kind} {name}: kind not simulated by kubesim; skipped"))
            });
        }
        Ok(Inline(doc.into_objects()))
    }
}

thread_local! {
    /// The directory `path:` entries are relative to, while a scenario loads.
    static BASE_DIR: RefCell<PathBuf> = const { RefCell::new(PathBuf::new()) };
    static WARNINGS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Marks an error that belongs to a manifest file, not to the scenario.
const IN_MANIFEST: &str = "\u{1}in-manifest\u{1}";

/// A manifest file, read and parsed while the scenario loads.
#[derive(Clone, Debug)]
pub struct ManifestFile {
    pub path: PathBuf,
    pub objects: Vec<Object>,
}

impl<'de> Deserialize<'de> for ManifestFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let rel = String::deserialize(d)?;
        let path = BASE_DIR.with(|b| b.borrow().join(&rel));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            serde::de::Error::custom(format!("manifest file {rel:?} ({}): {e}", path.display()))
        })?;
        match parse_manifests(&text) {
            Ok(m) => {
                WARNINGS.with(|w| {
                    w.borrow_mut().extend(m.warnings.iter().map(|x| format!("{}: {x}", path.display())))
                });
                Ok(ManifestFile { path, objects: m.objects })
            }
            Err(e) => Err(serde::de::Error::custom(format!(
                "{IN_MANIFEST}{}{IN_MANIFEST}{}{IN_MANIFEST}{}{IN_MANIFEST}{}",
                path.display(),
                e.line,
                e.column,
                e.message
            ))),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectRef {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScaleRef {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub replicas: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddNodes {
    pub pool: String,
    #[serde(default = "one")]
    pub count: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProcessRef {
    pub host: String,
    /// `kubelet` on a worker; `kube-apiserver`, `kube-scheduler`, `kube-controller-manager`
    /// or `etcd` on a control-plane host.
    pub process: String,
}

/// A taint to add to (or remove from) a node, as `kubectl taint` does.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TaintAction {
    pub node: String,
    pub key: String,
    #[serde(default)]
    pub value: String,
    /// NoSchedule, PreferNoSchedule or NoExecute. For `untaint`, omitted = every effect.
    pub effect: Option<String>,
}

/// `kubectl drain`: cordon the node, evict its pods through the Eviction API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DrainAction {
    pub node: String,
    /// --ignore-daemonsets (default false, as kubectl).
    #[serde(default)]
    pub ignore_daemon_sets: bool,
    /// --force: also delete pods no controller manages.
    #[serde(default)]
    pub force: bool,
    /// --grace-period for the evicted pods (default: each pod's own).
    pub grace_period: Option<Dur>,
}

/// The argument of an action that takes none: written `{}`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// One timeline entry: a time and exactly one action.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimelineEntry {
    pub at: Dur,
    pub apply: Option<ManifestSource>,
    pub delete: Option<ObjectRef>,
    pub scale: Option<ScaleRef>,
    pub cordon: Option<String>,
    pub uncordon: Option<String>,
    pub add_nodes: Option<AddNodes>,
    pub remove_node: Option<String>,
    pub kill_host: Option<String>,
    pub restart_host: Option<String>,
    pub partition: Option<Vec<Vec<String>>>,
    pub heal: Option<NoArgs>,
    pub kill_process: Option<ProcessRef>,
    pub restart_process: Option<ProcessRef>,
    pub kill_leader: Option<String>,
    pub stop_kubelet: Option<String>,
    pub start_kubelet: Option<String>,
    pub stop_container_runtime: Option<String>,
    pub start_container_runtime: Option<String>,
    pub taint: Option<TaintAction>,
    pub untaint: Option<TaintAction>,
    pub isolate_member: Option<String>,
    pub isolate_etcd_leader: Option<NoArgs>,
    pub lose_etcd_disk: Option<String>,
    pub slow_etcd_disk: Option<SlowDisk>,
    pub memory_hog: Option<MemoryHogAction>,
    pub fill_disk: Option<FillDiskAction>,
    pub fill_inodes: Option<FillInodesAction>,
    pub exhaust_pids: Option<ExhaustPidsAction>,
    pub unpullable_image: Option<String>,
    pub pullable_image: Option<String>,
    pub crash_container: Option<CrashContainerAction>,
    pub drain: Option<DrainAction>,
    /// For API actions: send them through this control-plane host's API server
    /// (`isolated`: the host the last isolation cut off) instead of the load balancer.
    pub via: Option<String>,
    /// The action must fail with an error containing this text (checked like an
    /// expectation).
    pub expect_error: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SlowDisk {
    pub host: String,
    /// How long each fsync takes; `0s` restores the disk.
    pub fsync: Dur,
}

/// Control-plane hosts when a scenario does not say: three, as a kubeadm HA cluster
/// (three stacked etcd members, API servers, schedulers and controller managers).
pub const DEFAULT_CONTROL_PLANE_HOSTS: u32 = 3;

/// Every timeline action's name, for error hints.
pub const TIMELINE_ACTIONS: &str =
    "apply, delete, scale, cordon, uncordon, taint, untaint, addNodes, removeNode, \
killHost, restartHost, killProcess, restartProcess, killLeader, stopKubelet, startKubelet, \
stopContainerRuntime, startContainerRuntime, isolateMember, isolateEtcdLeader, loseEtcdDisk, \
slowEtcdDisk, partition, heal, memoryHog, fillDisk, fillInodes, exhaustPids, unpullableImage, pullableImage, crashContainer, drain";

/// Components with a leader Lease that `killLeader` can name.
pub const LEADER_COMPONENTS: [&str; 3] = ["etcd", "kube-controller-manager", "kube-scheduler"];
/// Processes on a control-plane host and on a worker.
pub const CONTROL_PLANE_PROCESSES: [&str; 4] =
    ["etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager"];
pub const WORKER_PROCESSES: [&str; 1] = ["kubelet"];

impl TimelineEntry {
    /// The worker a resource fault names.
    fn resource_fault_node(&self) -> Option<&String> {
        self.memory_hog
            .as_ref()
            .map(|a| &a.node)
            .or(self.fill_disk.as_ref().map(|a| &a.node))
            .or(self.fill_inodes.as_ref().map(|a| &a.node))
            .or(self.exhaust_pids.as_ref().map(|a| &a.node))
    }

    fn action_count(&self) -> usize {
        [
            self.apply.is_some(),
            self.delete.is_some(),
            self.scale.is_some(),
            self.cordon.is_some(),
            self.uncordon.is_some(),
            self.add_nodes.is_some(),
            self.remove_node.is_some(),
            self.kill_host.is_some(),
            self.restart_host.is_some(),
            self.partition.is_some(),
            self.heal.is_some(),
            self.kill_process.is_some(),
            self.restart_process.is_some(),
            self.kill_leader.is_some(),
            self.stop_kubelet.is_some(),
            self.start_kubelet.is_some(),
            self.stop_container_runtime.is_some(),
            self.start_container_runtime.is_some(),
            self.taint.is_some(),
            self.untaint.is_some(),
            self.isolate_member.is_some(),
            self.isolate_etcd_leader.is_some(),
            self.lose_etcd_disk.is_some(),
            self.slow_etcd_disk.is_some(),
            self.memory_hog.is_some(),
            self.fill_disk.is_some(),
            self.fill_inodes.is_some(),
            self.exhaust_pids.is_some(),
            self.unpullable_image.is_some(),
            self.pullable_image.is_some(),
            self.crash_container.is_some(),
            self.drain.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodCountQuery {
    pub phase: Option<kubesim_model::api::PodPhase>,
    /// Only pods being deleted (`true`, kubectl's Terminating) or not (`false`).
    pub terminating: Option<bool>,
    /// Only pods whose Ready condition is True (`true`) or not (`false`).
    pub ready: Option<bool>,
    pub namespace: Option<String>,
    pub node: Option<String>,
    pub selector: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldQuery {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub path: String,
}

/// Which process leads a component (`etcd`, `kube-controller-manager`, `kube-scheduler`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LeaderQuery {
    pub component: String,
    /// The leader is on this host.
    pub host: Option<String>,
    /// The leader is not on this host.
    pub not_host: Option<String>,
    /// The leader was elected at or after this time.
    pub elected_after: Option<Dur>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InvolvedObject {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventQuery {
    pub reason: String,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// The exact message.
    pub message: Option<String>,
    /// The message with `*` standing for any text (for names a seed chooses).
    pub message_pattern: Option<String>,
    pub involved_object: Option<InvolvedObject>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expectation {
    pub name: Option<String>,
    pub at: Option<Dur>,
    pub within: Option<Dur>,
    pub after: Option<Dur>,
    pub pod_count: Option<PodCountQuery>,
    pub field: Option<FieldQuery>,
    pub event: Option<EventQuery>,
    pub leader: Option<LeaderQuery>,
    pub node_count: Option<NodeCountQuery>,
    /// A committed write of the object had this field value (catches transient states).
    pub written: Option<FieldQuery>,
    pub equals: Option<serde_yaml::Value>,
    pub at_least: Option<i64>,
    pub at_most: Option<i64>,
    pub exists: Option<bool>,
    /// With `within`: the check must hold continuously this long inside the window.
    pub holds_for: Option<Dur>,
}

/// Nodes counted by taint and Ready status, as `kubectl get nodes` would show them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeCountQuery {
    /// `key` or `key:Effect` (e.g. `node.kubernetes.io/unreachable:NoExecute`).
    pub taint: Option<String>,
    /// The Ready condition's status: True, False or Unknown.
    pub ready: Option<String>,
}

impl Expectation {
    /// A default name from the check.
    pub fn describe(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        if let Some(q) = &self.pod_count {
            let mut parts = vec!["pods".to_string()];
            match q.ready {
                Some(true) => parts.push("Ready".into()),
                Some(false) => parts.push("not Ready".into()),
                None => {}
            }
            match q.terminating {
                Some(true) => parts.push("Terminating".into()),
                Some(false) => parts.push("not terminating".into()),
                None => {}
            }
            if let Some(p) = q.phase {
                parts.push(format!("{p:?}"));
            }
            if let Some(ns) = &q.namespace {
                parts.push(format!("in {ns}"));
            }
            if let Some(n) = &q.node {
                parts.push(format!("on {n}"));
            }
            if let Some(sel) = &q.selector {
                parts.push(format!("matching {sel}"));
            }
            return parts.join(" ");
        }
        if let Some(f) = &self.field {
            return format!("{} {} {}", f.kind, f.name, f.path);
        }
        if let Some(f) = &self.written {
            return format!("{} {} written with {}", f.kind, f.name, f.path);
        }
        if let Some(l) = &self.leader {
            return format!("{} leader", l.component);
        }
        if let Some(n) = &self.node_count {
            let mut parts = vec!["nodes".to_string()];
            if let Some(r) = &n.ready {
                parts.push(format!("Ready={r}"));
            }
            if let Some(t) = &n.taint {
                parts.push(format!("tainted {t}"));
            }
            return parts.join(" ");
        }
        if let Some(e) = &self.event {
            return format!("event {}", e.reason);
        }
        "expectation".into()
    }
}

/// Loads a scenario file.
pub fn load(path: &Path) -> Result<Loaded, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        message: format!("cannot read the scenario: {e}"),
        hint: "check the path; bundled scenarios are in scenarios/".into(),
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_str(&text, path, &base)
}

/// Loads scenario text; `path` names it in messages, `base_dir` resolves `path:` entries.
pub fn load_str(text: &str, path: &Path, base_dir: &Path) -> Result<Loaded, ScenarioError> {
    BASE_DIR.with(|b| *b.borrow_mut() = base_dir.to_path_buf());
    WARNINGS.with(|w| w.borrow_mut().clear());
    let mut ignored = Vec::new();
    let de = serde_yaml::Deserializer::from_str(text);
    let parsed: Result<Scenario, _> = serde_ignored::deserialize(de, |p| ignored.push(p.to_string()));
    let mut warnings = WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()));
    let scenario = parsed.map_err(|e| yaml_error(path, &e))?;
    for p in ignored {
        warnings.push(format!(
            "{}: unknown field \"{p}\" in an inline manifest is not simulated; ignored",
            path.display()
        ));
    }
    validate(&scenario, text, path)?;
    Ok(Loaded { scenario, warnings, path: path.to_path_buf() })
}

fn hint_for(message: &str) -> String {
    if message.contains("unknown field") {
        "remove or rename the field; scenarios/README.md lists every field".into()
    } else if message.contains("quantities must match") {
        "write a Kubernetes quantity such as 500m, 2, 512Mi or 4Gi".into()
    } else if message.contains("manifest file") {
        "paths are relative to the scenario file's directory".into()
    } else if message.contains("duration") {
        "write a duration with a unit, e.g. 90s, 1m30s or 500ms".into()
    } else if message.contains("greater than or equal to 0") {
        "replicas must be 0 or more".into()
    } else {
        "see scenarios/README.md for the format".into()
    }
}

fn yaml_error(path: &Path, e: &serde_yaml::Error) -> ScenarioError {
    let me = kubesim_model::api::ManifestError::from_yaml(e);
    if let Some(rest) = me.message.split_once(IN_MANIFEST).map(|(_, r)| r) {
        let parts: Vec<&str> = rest.split(IN_MANIFEST).collect();
        if parts.len() == 4 {
            return ScenarioError {
                file: PathBuf::from(parts[0]),
                line: parts[1].parse().unwrap_or(0),
                column: parts[2].parse().unwrap_or(0),
                message: parts[3].to_string(),
                hint: hint_for(parts[3]),
            };
        }
    }
    let (line, column) = if me.line == 0 { (1, 1) } else { (me.line, me.column) };
    ScenarioError { file: path.to_path_buf(), line, column, hint: hint_for(&me.message), message: me.message }
}

/// The line of the first occurrence of `needle` at or after line `from` (1-based).
fn find_line(text: &str, needle: &str, from: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i + 1)
        .unwrap_or(from.max(1))
}

/// kubeScheduler.profiles: each builds (known plugins, weights, arguments) and names a
/// scheduler once (config validation's `Duplicate value`).
fn validate_profiles(s: &Scenario, text: &str, path: &Path) -> Result<(), ScenarioError> {
    let line = find_line(text, "profiles:", 1);
    let mut names = std::collections::BTreeSet::new();
    for (i, p) in s.control_plane.kube_scheduler.profiles.iter().enumerate() {
        let fail = |message: String| ScenarioError {
            file: path.to_path_buf(),
            line,
            column: 1,
            message: format!("kubeScheduler.profiles[{i}]: {message}"),
            hint: "see KubeSchedulerConfiguration in scenarios/README.md".into(),
        };
        let built = p.build().map_err(fail)?;
        if !names.insert(built.scheduler_name.clone()) {
            return Err(fail(format!("schedulerName: Duplicate value: {:?}", built.scheduler_name)));
        }
    }
    Ok(())
}

/// Every host the scenario starts with: control-plane hosts and pool nodes.
pub fn host_names(s: &Scenario) -> Vec<String> {
    let mut v: Vec<String> = (1..=s.control_plane.hosts.unwrap_or(DEFAULT_CONTROL_PLANE_HOSTS))
        .map(|i| format!("cp-{i}"))
        .collect();
    for p in &s.node_pools {
        v.extend((1..=p.count).map(|i| p.node_name(i)));
    }
    v
}

fn validate(s: &Scenario, text: &str, path: &Path) -> Result<(), ScenarioError> {
    let err = |line: usize, message: String, hint: &str| ScenarioError {
        file: path.to_path_buf(),
        line,
        column: 1,
        message,
        hint: hint.to_string(),
    };
    let timeline_line = find_line(text, "timeline:", 1);
    let mut hosts = host_names(s);
    let mut seen = std::collections::BTreeSet::new();
    for h in &hosts {
        if !seen.insert(h.clone()) {
            return Err(err(
                find_line(text, "nodePools:", 1),
                format!("node name {h:?} is used twice"),
                "give each pool its own namePattern",
            ));
        }
    }
    let hp = s.control_plane.hosts.unwrap_or(DEFAULT_CONTROL_PLANE_HOSTS);
    if !(1..=7).contains(&hp) {
        return Err(err(
            find_line(text, "hosts:", 1),
            format!("controlPlane.hosts {hp}: want 1 to 7 (typically 1, 3 or 5)"),
            "use 1, 3 or 5",
        ));
    }
    for pool in &s.node_pools {
        if let Err(m) = pool.kubelet.eviction() {
            let pool_line = find_line(text, &format!("name: {}", pool.name), 1);
            return Err(err(
                find_line(text, "evictionSoft:", pool_line),
                format!("node pool {}: {m}", pool.name),
                "each evictionSoft signal needs an evictionSoftGracePeriod entry",
            ));
        }
    }
    validate_profiles(s, text, path)?;
    for pool in &s.node_pools {
        if let Some(k) = pool.capacity.extended.keys().find(|k| !k.contains('/')) {
            return Err(err(
                find_line(text, &format!("{k}:"), find_line(text, &format!("name: {}", pool.name), 1)),
                format!("node pool {}: unknown capacity field {k:?}", pool.name),
                "capacity takes cpu, memory, pods, ephemeral-storage and extended resources with a domain, e.g. nvidia.com/gpu",
            ));
        }
    }
    let behaviors_line = find_line(text, "behaviors:", 1);
    let mut names = std::collections::BTreeSet::new();
    for b in &s.behaviors {
        let line = find_line(text, &format!("name: {}", b.name), behaviors_line);
        if !names.insert(b.name.as_str()) {
            return Err(err(
                line,
                format!("behavior {:?} is defined twice", b.name),
                "give each behavior its own name",
            ));
        }
        for (what, u) in [("memory", &b.memory), ("disk", &b.disk)] {
            if let Some(Err(m)) = u.as_ref().map(UsageSpec::check) {
                return Err(err(
                    find_line(text, &format!("{what}:"), line),
                    format!("behavior {}: {what}: {m}", b.name),
                    "e.g. {constant: 200Mi}, {start: 100Mi, perSecond: 1Mi} or {steps: [{after: 30s, value: 1Gi}]}",
                ));
            }
        }
    }
    let mut counters: BTreeMap<&str, u32> = s.node_pools.iter().map(|p| (p.name.as_str(), p.count)).collect();
    for e in &s.timeline {
        let at_line = find_line(text, &format!("at: {}", e.at.text), timeline_line);
        if e.action_count() != 1 {
            return Err(err(
                at_line,
                format!(
                    "timeline entry at {} must have exactly one action, has {}",
                    e.at.text,
                    e.action_count()
                ),
                &format!("one of {TIMELINE_ACTIONS}"),
            ));
        }
        if e.at.time > s.duration.time {
            return Err(err(
                at_line,
                format!(
                    "timeline entry at {} is after the scenario's duration {}",
                    e.at.text, s.duration.text
                ),
                "raise duration or move the entry",
            ));
        }
        if let Some(a) = &e.add_nodes {
            let Some(pool) = s.node_pools.iter().find(|p| p.name == a.pool) else {
                return Err(err(
                    find_line(text, &a.pool, at_line),
                    format!("addNodes: no node pool named {:?}", a.pool),
                    "name a pool from nodePools",
                ));
            };
            let c = counters.get_mut(a.pool.as_str()).expect("pool counted");
            for _ in 0..a.count {
                *c += 1;
                hosts.push(pool.node_name(*c));
            }
        }
        let named: Vec<&String> = [
            &e.cordon,
            &e.uncordon,
            &e.remove_node,
            &e.kill_host,
            &e.restart_host,
            &e.stop_kubelet,
            &e.start_kubelet,
            &e.stop_container_runtime,
            &e.start_container_runtime,
        ]
        .into_iter()
        .flatten()
        .chain(e.partition.iter().flatten().flatten())
        .chain(e.kill_process.iter().chain(&e.restart_process).map(|p| &p.host))
        .chain(e.taint.iter().chain(&e.untaint).map(|t| &t.node))
        .chain(e.drain.iter().map(|d| &d.node))
        .chain(e.resource_fault_node())
        .collect();
        for h in named {
            if !hosts.contains(h) {
                return Err(err(
                    find_line(text, h, at_line),
                    format!("no host named {h:?}"),
                    &format!("hosts are: {}", hosts.join(", ")),
                ));
            }
        }
        if let Some(v) = &e.via {
            let api_action = e.apply.is_some()
                || e.delete.is_some()
                || e.scale.is_some()
                || e.cordon.is_some()
                || e.uncordon.is_some()
                || e.taint.is_some()
                || e.untaint.is_some()
                || e.drain.is_some();
            if !api_action {
                return Err(err(
                    at_line,
                    "via applies to API actions only".into(),
                    "use it with apply, delete, scale, cordon, uncordon, taint, untaint or drain",
                ));
            }
            if v != "isolated" && !hosts.iter().take(hp as usize).any(|h| h == v) {
                return Err(err(
                    find_line(text, v, at_line),
                    format!("via: {v:?} is not a control-plane host"),
                    &format!("one of cp-1..cp-{hp}, or isolated"),
                ));
            }
        }
        for p in e.kill_process.iter().chain(&e.restart_process) {
            let cp = p.host.starts_with("cp-") && hosts.iter().take(hp as usize).any(|h| *h == p.host);
            let allowed: &[&str] = if cp { &CONTROL_PLANE_PROCESSES } else { &WORKER_PROCESSES };
            if !allowed.contains(&p.process.as_str()) {
                return Err(err(
                    find_line(text, &p.process, at_line),
                    format!("host {} runs no process {:?}", p.host, p.process),
                    &format!("processes on {}: {}", p.host, allowed.join(", ")),
                ));
            }
        }
        for for_worker in
            [&e.stop_kubelet, &e.start_kubelet, &e.stop_container_runtime, &e.start_container_runtime]
                .into_iter()
                .flatten()
                .chain(e.resource_fault_node())
        {
            if hosts.iter().take(hp as usize).any(|h| h == for_worker) {
                return Err(err(
                    find_line(text, for_worker, at_line),
                    format!("{for_worker} is a control-plane host: it runs no kubelet"),
                    "name a worker node",
                ));
            }
        }
        for h in [&e.isolate_member, &e.lose_etcd_disk]
            .into_iter()
            .flatten()
            .chain(e.slow_etcd_disk.iter().map(|d| &d.host))
        {
            if !hosts.iter().take(hp as usize).any(|x| x == h) {
                return Err(err(
                    find_line(text, h, at_line),
                    format!("{h} runs no etcd member"),
                    &format!("etcd members run on the control-plane hosts cp-1..cp-{hp}"),
                ));
            }
        }
        if let Some(c) = &e.kill_leader {
            if !LEADER_COMPONENTS.contains(&c.as_str()) {
                return Err(err(
                    find_line(text, c, at_line),
                    format!("killLeader: {c:?} has no leader Lease"),
                    &format!("one of {}", LEADER_COMPONENTS.join(", ")),
                ));
            }
        }
        for t in e.taint.iter().chain(&e.untaint) {
            let effect_ok = match (&t.effect, e.taint.is_some()) {
                (None, true) => false,
                (None, false) => true,
                (Some(x), _) => kubesim_model::api::TaintEffect::parse(x).is_some(),
            };
            if !effect_ok {
                return Err(err(
                    find_line(text, &t.key, at_line),
                    format!("taint {} needs an effect, got {:?}", t.key, t.effect),
                    "effect: NoSchedule, PreferNoSchedule or NoExecute",
                ));
            }
        }
        for r in e.delete.iter().map(|d| &d.kind).chain(e.scale.iter().map(|d| &d.kind)) {
            if Kind::parse(r).is_none() {
                return Err(err(
                    find_line(text, r, at_line),
                    format!("unknown kind {r:?}"),
                    "use Deployment, ReplicaSet, Pod, DaemonSet, Node",
                ));
            }
        }
        if let Some(a) = &e.apply {
            if a.path.is_none() && a.manifest.is_none() {
                return Err(err(at_line, "apply needs path or manifest".into(), "apply: {path: file.yaml}"));
            }
        }
    }
    for w in &s.workloads {
        if w.path.is_none() && w.manifest.is_none() {
            return Err(err(
                find_line(text, "workloads:", 1),
                "a workloads entry needs path or manifest".into(),
                "- path: manifests/web.yaml",
            ));
        }
    }
    let exp_line = find_line(text, "expectations:", 1);
    for x in &s.expectations {
        let line = x.name.as_ref().map_or(exp_line, |n| find_line(text, n, exp_line));
        let checks = [
            x.pod_count.is_some(),
            x.field.is_some(),
            x.event.is_some(),
            x.leader.is_some(),
            x.node_count.is_some(),
            x.written.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if checks != 1 {
            return Err(err(
                line,
                format!("expectation {:?} needs exactly one of podCount, nodeCount, field, written, event, leader", x.describe()),
                "see scenarios/README.md",
            ));
        }
        if let Some(l) = &x.leader {
            if !LEADER_COMPONENTS.contains(&l.component.as_str()) {
                return Err(err(
                    find_line(text, &l.component, line),
                    format!("leader: {:?} has no leader", l.component),
                    &format!("one of {}", LEADER_COMPONENTS.join(", ")),
                ));
            }
        }
        if x.holds_for.is_some() && x.within.is_none() {
            return Err(err(
                line,
                format!("expectation {:?}: holdsFor needs within", x.describe()),
                "within: 1m with holdsFor: 10s",
            ));
        }
        if x.at.is_some() == x.within.is_some() {
            return Err(err(
                line,
                format!("expectation {:?} needs exactly one of at, within", x.describe()),
                "at: 60s checks at an instant; within: 2m checks eventually",
            ));
        }
        if x.pod_count.is_some() && x.equals.is_none() && x.at_least.is_none() && x.at_most.is_none() {
            return Err(err(
                line,
                format!("expectation {:?}: podCount needs equals, atLeast or atMost", x.describe()),
                "equals: 3",
            ));
        }
        if x.field.is_some() && x.equals.is_none() && x.exists.is_none() {
            return Err(err(
                line,
                format!("expectation {:?}: field needs equals or exists", x.describe()),
                "equals: Running",
            ));
        }
        if let Some(sel) = x.pod_count.as_ref().and_then(|q| q.selector.as_ref()) {
            if let Err(e) = kubesim_model::api::Selector::parse(sel) {
                return Err(err(
                    find_line(text, sel, line),
                    format!("selector {sel:?}: {e}"),
                    "e.g. app=web,tier!=db",
                ));
            }
        }
    }
    Ok(())
}

/// Looks up `a.b`, `a[0]`, `a[type=Ready]` in a JSON value.
pub fn lookup_path(value: &serde_json::Value, path: &str) -> Option<serde_json::Value> {
    let mut cur = value;
    for seg in split_path(path) {
        let (name, filters) = match seg.find('[') {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        let mut rest = filters;
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']')?;
            let inner = &stripped[..end];
            rest = &stripped[end + 1..];
            cur = match inner.split_once('=') {
                Some((k, v)) => {
                    cur.as_array()?.iter().find(|e| e.get(k).and_then(|x| x.as_str()) == Some(v))?
                }
                None => cur.as_array()?.get(inner.parse::<usize>().ok()?)?,
            };
        }
    }
    Some(cur.clone())
}

/// Splits a path at the dots outside `[...]` filters (filter values such as
/// `key=node.kubernetes.io/unreachable` contain dots).
fn split_path(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, ch) in path.char_indices() {
        match ch {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                out.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&path[start..]);
    out
}

/// Renders a YAML scalar as expectations compare it.
pub fn render_yaml(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Null => "null".into(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

/// Time of an expectation's window or instant.
pub fn times(x: &Expectation) -> (SimTime, Option<SimTime>) {
    match (&x.at, &x.within) {
        (Some(at), _) => (at.time, None),
        (None, Some(w)) => {
            let from = x.after.as_ref().map_or(SimTime::ZERO, |a| a.time);
            (from, Some(from + w.time.as_duration()))
        }
        _ => (SimTime::ZERO, None),
    }
}

#[cfg(test)]
mod tests;
