//! Scenario format v1: loading, validation and errors that name the file, the line and
//! the fix. The format is documented field by field in scenarios/README.md.
//!
//! Errors raised while deserializing carry serde_yaml's location: kinds, selectors,
//! effects, components and fault arguments are checked as they are read. Manifest files
//! named by `path:` are read during deserialization, so a missing file is reported at the
//! `path:` line and an error inside the manifest at the manifest's own line. Checks that
//! need the whole file (host names, times past the duration, contradictory comparisons)
//! name a path, and [`spans::Spans`] (yaml-rust2's parser) gives its line and column.
//!
//! A timeline entry is `at` plus one [`Action`], read directly from the entry's one action
//! key; faults come from the catalogue in kubesim-faults.

mod behaviors;
mod expect;
pub mod spans;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use kubesim_model::api::{parse_manifests, Document, Kind, Object, ObjectKey, Quantity, Taint, TaintEffect};
use kubesim_model::time::SimTime;
use serde::{Deserialize, Deserializer};

pub use behaviors::*;
pub use expect::*;
pub use kubesim_faults::duration::{parse_duration, Dur};
pub use kubesim_faults::{Fault, CONTROL_PLANE_PROCESSES, LEADER_COMPONENTS, WORKER_PROCESSES};

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
    pub storage: Storage,
    #[serde(default)]
    pub workloads: Vec<ManifestSource>,
    /// What containers do once started, first match wins.
    #[serde(default)]
    pub behaviors: Vec<BehaviorSpec>,
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    #[serde(default)]
    pub expectations: Vec<Expectation>,
    /// Check the cluster invariants while the run goes and, once the last timeline fault
    /// is past by the liveness bound, convergence (what `kubesim fuzz --faults swarm`
    /// checks; its repro files set it).
    #[serde(default)]
    pub invariants: bool,
    /// The options a `kubesim fuzz` swarm drew for this file's faults (a record for the
    /// reader; the faults themselves are in the timeline).
    pub swarm: Option<serde_yaml::Value>,
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
    #[serde(default)]
    pub kube_apiserver: ApiServerFlags,
    /// The flags of every etcd member (stacked etcd: one per control-plane host).
    #[serde(default)]
    pub etcd: EtcdFlags,
}

/// etcd flags a scenario may set, by their upstream names (etcd v3.5).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EtcdFlags {
    /// --quota-backend-bytes: the database size at which writes fail with NOSPACE
    /// (server/etcdserver/quota.go: 0 means the 2 GiB default, a negative value disables
    /// the quota; etcd warns above its suggested maximum of 8 GiB).
    pub quota_backend_bytes: Option<i64>,
    /// --max-request-bytes: the largest request a member accepts (embed
    /// DefaultMaxRequestBytes, 1.5 MiB).
    pub max_request_bytes: Option<u64>,
}

impl EtcdFlags {
    /// The quota a member enforces: quota.go NewBackendQuota's reading of the flag.
    pub fn quota_bytes(&self) -> u64 {
        match self.quota_backend_bytes {
            None | Some(0) => kubesim_model::etcd::config::DEFAULT_QUOTA_BACKEND_BYTES,
            // passthroughQuota: every write fits.
            Some(q) if q < 0 => u64::MAX,
            Some(q) => q as u64,
        }
    }
}

/// A timeline action that takes no arguments (`etcdDefrag: {}`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// kube-apiserver flags a scenario may set, by their upstream names.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ApiServerFlags {
    pub max_requests_inflight: Option<u32>,
    pub max_mutating_requests_inflight: Option<u32>,
    pub event_ttl: Option<Dur>,
    pub etcd_compaction_interval: Option<Dur>,
    pub request_timeout: Option<Dur>,
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
    pub pvclaimbinder_sync_period: Option<Dur>,
    pub disable_force_detach_on_timeout: Option<bool>,
}

/// The simulated CSI drivers behind StorageClass provisioners: kubesim's knobs.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Storage {
    #[serde(default)]
    pub drivers: Vec<StorageDriver>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StorageDriver {
    /// The provisioner name; `*` matches any text (`*.csi.aws.com`).
    pub name: String,
    pub provisioning_latency: Option<Dur>,
    pub attach_latency: Option<Dur>,
    pub detach_latency: Option<Dur>,
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
    /// KubeletConfiguration eventRecordQPS (50) and eventBurst (100).
    #[serde(rename = "eventRecordQPS")]
    pub event_record_qps: Option<f64>,
    pub event_burst: Option<u32>,
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
    /// A workloads entry of one object the API server must reject with an error
    /// containing this text (timeline entries carry `expectError` themselves).
    #[serde(rename = "expectError")]
    pub expect_error: Option<String>,
}

/// The workloads the API server must reject (`expectError` on their entry), by object.
pub fn workload_expect_errors(s: &Scenario) -> BTreeMap<kubesim_model::api::ObjectKey, String> {
    let mut m = BTreeMap::new();
    for w in &s.workloads {
        if let Some(want) = &w.expect_error {
            for o in w.objects() {
                m.insert(o.key(), want.clone());
            }
        }
    }
    m
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
        let kept = kubesim_model::api::manifest::not_simulated(&doc);
        WARNINGS.with(|w| w.borrow_mut().extend(kept));
        Ok(Inline(doc.into_objects()))
    }
}

thread_local! {
    /// The directory `path:` entries are relative to, while a scenario loads.
    static BASE_DIR: RefCell<PathBuf> = const { RefCell::new(PathBuf::new()) };
    static WARNINGS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Marks an error about one key of the mapping being read (`AT_KEY key AT_KEY message`):
/// serde_yaml places it at the mapping, the parser's index at the key.
const AT_KEY: &str = "\u{2}at-key\u{2}";

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

/// A Kubernetes kind a scenario names (`Pod`, `pods`, `deploy`, ...). An unknown kind is
/// an error where it is written, never a silent default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindName(pub Kind);

impl<'de> Deserialize<'de> for KindName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Kind::parse(&s).map(KindName).ok_or_else(|| {
            let all: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            serde::de::Error::custom(format!("unknown kind {s:?}: kubesim simulates {}", all.join(", ")))
        })
    }
}

impl serde::Serialize for KindName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

/// A label selector (`app=web,tier!=db`), parsed where it is written.
#[derive(Clone, Debug)]
pub struct SelectorText {
    pub text: String,
    pub selector: kubesim_model::api::Selector,
}

impl<'de> Deserialize<'de> for SelectorText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let selector = kubesim_model::api::Selector::parse(&text).map_err(|e| {
            serde::de::Error::custom(format!("selector {text:?}: {e} (e.g. app=web,tier!=db)"))
        })?;
        Ok(SelectorText { text, selector })
    }
}

impl serde::Serialize for SelectorText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A taint effect: NoSchedule, PreferNoSchedule or NoExecute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectName(pub TaintEffect);

impl<'de> Deserialize<'de> for EffectName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TaintEffect::parse(&s).map(EffectName).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown taint effect {s:?}: NoSchedule, PreferNoSchedule or NoExecute"
            ))
        })
    }
}

impl serde::Serialize for EffectName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectRef {
    pub kind: KindName,
    pub name: String,
    pub namespace: Option<String>,
    /// `delete` only: `kubectl delete --grace-period=N` (0 with `--force` removes the
    /// object at once, without waiting for its kubelet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<i64>,
}

impl ObjectRef {
    pub fn key(&self) -> ObjectKey {
        object_key(self.kind.0, &self.name, &self.namespace)
    }
}

/// The key of a named object; namespaced kinds default to `default`.
pub fn object_key(kind: Kind, name: &str, namespace: &Option<String>) -> ObjectKey {
    let ns =
        if kind.namespaced() { namespace.clone().unwrap_or_else(|| "default".into()) } else { String::new() };
    ObjectKey::new(kind, ns, name.to_string())
}

/// `kubectl label KIND NAME key=value... [key-...] [--overwrite]`.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelAction {
    pub kind: KindName,
    pub name: String,
    pub namespace: Option<String>,
    /// Labels to set (`key=value`).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Label keys to remove (`key-`).
    #[serde(default)]
    pub remove: Vec<String>,
    /// `--overwrite`: without it, changing a label's value is kubectl's error.
    #[serde(default)]
    pub overwrite: bool,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScaleRef {
    pub kind: KindName,
    pub name: String,
    pub namespace: Option<String>,
    pub replicas: u32,
}

/// `kubectl rollout undo deployment/NAME [--to-revision=N]`.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RolloutUndo {
    pub name: String,
    pub namespace: Option<String>,
    /// 0 or unset: the previous revision.
    #[serde(default)]
    pub to_revision: i64,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddNodes {
    pub pool: String,
    #[serde(default = "one")]
    pub count: u32,
}

/// A taint to add to (or remove from) a node, as `kubectl taint` does.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TaintAction {
    pub node: String,
    pub key: String,
    #[serde(default)]
    pub value: String,
    /// NoSchedule, PreferNoSchedule or NoExecute. For `untaint`, omitted = every effect.
    pub effect: Option<EffectName>,
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

/// What a timeline entry does: an API call through the scenario's kubectl, a change to
/// the cluster's machines, or a fault from the catalogue.
#[derive(Clone, Debug)]
pub enum Action {
    Apply(ManifestSource),
    Delete(ObjectRef),
    Scale(ScaleRef),
    Label(LabelAction),
    RolloutUndo(RolloutUndo),
    Cordon(String),
    Uncordon(String),
    Taint(TaintAction),
    Untaint(TaintAction),
    AddNodes(AddNodes),
    RemoveNode(String),
    /// `kubectl drain` (src/drain.rs).
    Drain(DrainAction),
    /// `etcdctl compact` at the current revision.
    EtcdCompact,
    /// `etcdctl defrag --cluster`: every member's database shrinks to the bytes in use.
    EtcdDefrag,
    /// `etcdctl alarm disarm`: the NOSPACE alarms go.
    EtcdAlarmDisarm,
    Fault(Fault),
}

/// The operator's etcdctl commands (expectError applies; via does not).
pub const ETCDCTL_ACTIONS: [&str; 3] = ["etcdCompact", "etcdDefrag", "etcdAlarmDisarm"];

/// Actions that are not faults, by the name a timeline writes.
pub const API_ACTIONS: [&str; 10] =
    ["apply", "delete", "scale", "label", "rolloutUndo", "cordon", "uncordon", "taint", "untaint", "drain"];

impl Action {
    /// The name a timeline writes it under.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Apply(_) => "apply",
            Action::Delete(_) => "delete",
            Action::Scale(_) => "scale",
            Action::Label(_) => "label",
            Action::RolloutUndo(_) => "rolloutUndo",
            Action::Cordon(_) => "cordon",
            Action::Uncordon(_) => "uncordon",
            Action::Taint(_) => "taint",
            Action::Untaint(_) => "untaint",
            Action::AddNodes(_) => "addNodes",
            Action::RemoveNode(_) => "removeNode",
            Action::Drain(_) => "drain",
            Action::EtcdCompact => "etcdCompact",
            Action::EtcdDefrag => "etcdDefrag",
            Action::EtcdAlarmDisarm => "etcdAlarmDisarm",
            Action::Fault(f) => f.name(),
        }
    }

    /// An API call through kubectl (`via` and `expectError` apply)?
    pub fn is_api(&self) -> bool {
        API_ACTIONS.contains(&self.name())
    }

    /// An etcdctl command (`expectError` applies)?
    pub fn is_etcdctl(&self) -> bool {
        ETCDCTL_ACTIONS.contains(&self.name())
    }

    fn deserialize_named<'de, A: serde::de::MapAccess<'de>>(
        name: &str,
        map: &mut A,
    ) -> Result<Action, A::Error> {
        struct FaultSeed<'a>(&'a str);
        impl<'de> serde::de::DeserializeSeed<'de> for FaultSeed<'_> {
            type Value = Option<Fault>;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Fault>, D::Error> {
                Fault::deserialize_named(self.0, d)
            }
        }
        Ok(match name {
            "apply" => Action::Apply(map.next_value()?),
            "delete" => Action::Delete(map.next_value()?),
            "scale" => Action::Scale(map.next_value()?),
            "label" => Action::Label(map.next_value()?),
            "rolloutUndo" => Action::RolloutUndo(map.next_value()?),
            "cordon" => Action::Cordon(map.next_value()?),
            "uncordon" => Action::Uncordon(map.next_value()?),
            "taint" => Action::Taint(map.next_value()?),
            "untaint" => Action::Untaint(map.next_value()?),
            "addNodes" => Action::AddNodes(map.next_value()?),
            "removeNode" => Action::RemoveNode(map.next_value()?),
            "drain" => Action::Drain(map.next_value()?),
            "etcdCompact" | "etcdDefrag" | "etcdAlarmDisarm" => {
                map.next_value::<NoArgs>().map_err(|e| {
                    serde::de::Error::custom(format!("{AT_KEY}{name}{AT_KEY}{name} takes no arguments: write `{name}: {{}}` ({e})"))
                })?;
                match name {
                    "etcdCompact" => Action::EtcdCompact,
                    "etcdDefrag" => Action::EtcdDefrag,
                    _ => Action::EtcdAlarmDisarm,
                }
            }
            other if kubesim_faults::FAULT_NAMES.contains(&other) => {
                // A scalar argument's error is placed at its key (serde_yaml would place
                // it at the entry); a mapping argument keeps serde_yaml's inner position.
                let scalar = matches!(other, "killLeader");
                let f = map.next_value_seed(FaultSeed(other)).map_err(|e| {
                    if scalar {
                        serde::de::Error::custom(format!("{AT_KEY}{other}{AT_KEY}{e}"))
                    } else {
                        e
                    }
                })?;
                Action::Fault(f.ok_or_else(|| serde::de::Error::custom(format!("fault {other} is not readable")))?)
            }
            other => {
                return Err(serde::de::Error::custom(format!(
                    "{AT_KEY}{other}{AT_KEY}unknown timeline action or field {other:?}: an entry has `at` and one of {TIMELINE_ACTIONS} (optionally `via`, `expectError`)"
                )))
            }
        })
    }
}

/// One timeline entry: a time and exactly one action.
#[derive(Clone, Debug)]
pub struct TimelineEntry {
    pub at: Dur,
    pub action: Action,
    /// For API actions: send them through this control-plane host's API server
    /// (`isolated`: the host the last isolation cut off) instead of the load balancer.
    pub via: Option<String>,
    /// The action must fail with an error containing this text (checked like an
    /// expectation).
    pub expect_error: Option<String>,
}

impl<'de> Deserialize<'de> for TimelineEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TimelineEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a timeline entry: `at` and one action")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<TimelineEntry, A::Error> {
                use serde::de::Error;
                let (mut at, mut action, mut via, mut expect_error) = (None, None::<Action>, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "at" => at = Some(map.next_value::<Dur>()?),
                        "via" => via = Some(map.next_value::<String>()?),
                        "expectError" => expect_error = Some(map.next_value::<String>()?),
                        name => {
                            if let Some(a) = &action {
                                return Err(A::Error::custom(format!(
                                    "{AT_KEY}{name}{AT_KEY}a timeline entry has exactly one action: this one has {} and {name}; give each its own entry",
                                    a.name()
                                )));
                            }
                            action = Some(Action::deserialize_named(name, &mut map)?);
                        }
                    }
                }
                let at = at.ok_or_else(|| A::Error::custom("a timeline entry needs `at` (e.g. at: 60s)"))?;
                let action = action.ok_or_else(|| {
                    A::Error::custom(format!(
                        "timeline entry at {} has no action: give one of {TIMELINE_ACTIONS}",
                        at.text
                    ))
                })?;
                Ok(TimelineEntry { at, action, via, expect_error })
            }
        }
        d.deserialize_map(V)
    }
}

/// Control-plane hosts when a scenario does not say: three, as a kubeadm HA cluster
/// (three stacked etcd members, API servers, schedulers and controller managers).
pub const DEFAULT_CONTROL_PLANE_HOSTS: u32 = 3;

/// Every timeline action's name, for error hints.
pub const TIMELINE_ACTIONS: &str =
    "apply, delete, scale, label, rolloutUndo, cordon, uncordon, taint, untaint, addNodes, removeNode, \
killHost, restartHost, killProcess, restartProcess, killLeader, stopKubelet, startKubelet, \
stopContainerRuntime, startContainerRuntime, isolateMember, isolateEtcdLeader, loseEtcdDisk, \
slowEtcdDisk, loseUnsyncedWrites, partition, heal, memoryHog, fillDisk, fillInodes, exhaustPids, unpullableImage, pullableImage, crashContainer, drain, \
etcdCompact, etcdDefrag, etcdAlarmDisarm";

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
    let parsed: Result<Scenario, _> =
        serde_ignored::deserialize(de, |p| ignored.push(kubesim_model::api::manifest::field_path(&p)));
    let mut warnings = WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()));
    let scenario = parsed.map_err(|e| {
        let mut err = yaml_error(path, &e);
        if let Some((prefix, rest)) = err.message.split_once(AT_KEY) {
            if let Some((key, message)) = rest.split_once(AT_KEY) {
                // serde_yaml prefixes the path of the mapping: `timeline[1]: ...`.
                let at = prefix.trim_end().trim_end_matches(':');
                let spans = spans::Spans::parse(text);
                if let Some((line, column)) = spans.get(&format!("{at}.{key}")) {
                    (err.line, err.column) = (line, column);
                }
                err.message = format!("{prefix}{message}");
            }
        }
        err
    })?;
    for p in ignored {
        warnings.push(format!("{}: {p} in an inline manifest is not simulated; dropped", path.display()));
    }
    let spans = spans::Spans::parse(text);
    validate(&scenario, &spans).map_err(|e| e.into_error(path, &spans))?;
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
    } else if message.contains("invalid value: integer `-") {
        "counts and sizes are 0 or more".into()
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

/// A check that failed after deserializing: the path of the offending value (its line
/// comes from the parser), what is wrong, and the fix.
#[derive(Clone, Debug)]
pub struct Invalid {
    pub path: String,
    pub message: String,
    pub hint: String,
}

impl Invalid {
    pub fn new(path: impl Into<String>, message: impl Into<String>, hint: impl Into<String>) -> Invalid {
        Invalid { path: path.into(), message: message.into(), hint: hint.into() }
    }

    fn into_error(self, file: &Path, spans: &spans::Spans) -> ScenarioError {
        let (line, column) = spans.locate(&self.path);
        ScenarioError { file: file.to_path_buf(), line, column, message: self.message, hint: self.hint }
    }
}

/// kubeScheduler.profiles: each builds (known plugins, weights, arguments) and names a
/// scheduler once (config validation's `Duplicate value`).
fn validate_profiles(s: &Scenario) -> Result<(), Invalid> {
    let mut names = std::collections::BTreeSet::new();
    for (i, p) in s.control_plane.kube_scheduler.profiles.iter().enumerate() {
        let path = format!("controlPlane.kubeScheduler.profiles[{i}]");
        let fail = |message: String| {
            Invalid::new(
                &path,
                format!("kubeScheduler.profiles[{i}]: {message}"),
                "see KubeSchedulerConfiguration in scenarios/README.md",
            )
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

/// Checks the settings' ranges (upstream's own validation where it has one).
fn validate_settings(s: &Scenario) -> Result<(), Invalid> {
    let hp = s.control_plane.hosts.unwrap_or(DEFAULT_CONTROL_PLANE_HOSTS);
    if !(1..=7).contains(&hp) {
        return Err(Invalid::new(
            "controlPlane.hosts",
            format!("controlPlane.hosts {hp}: want 1 to 7 (typically 1, 3 or 5)"),
            "use 1, 3 or 5",
        ));
    }
    let ks = &s.control_plane.kube_scheduler;
    // KubeSchedulerConfiguration validation: percentageOfNodesToScore in [0, 100];
    // podInitialBackoffSeconds > 0 and podMaxBackoffSeconds >= it.
    if let Some(p) = ks.percentage_of_nodes_to_score {
        if p > 100 {
            return Err(Invalid::new(
                "controlPlane.kubeScheduler.percentageOfNodesToScore",
                format!("percentageOfNodesToScore {p}: want 0 to 100"),
                "0 means adaptive",
            ));
        }
    }
    let initial = ks.pod_initial_backoff_seconds.unwrap_or(1);
    if initial == 0 {
        return Err(Invalid::new(
            "controlPlane.kubeScheduler.podInitialBackoffSeconds",
            "podInitialBackoffSeconds must be greater than 0",
            "upstream's default is 1",
        ));
    }
    if ks.pod_max_backoff_seconds.is_some_and(|m| m < initial) {
        return Err(Invalid::new(
            "controlPlane.kubeScheduler.podMaxBackoffSeconds",
            "podMaxBackoffSeconds must be at least podInitialBackoffSeconds",
            "upstream's default is 10",
        ));
    }
    // kubesim's own check: with 0, etcd would refuse every write as too large.
    if s.control_plane.etcd.max_request_bytes == Some(0) {
        return Err(Invalid::new(
            "controlPlane.etcd.max-request-bytes",
            "max-request-bytes 0 refuses every write",
            "omit it for etcd's default 1572864 (1.5 MiB)",
        ));
    }
    let kcm = &s.control_plane.kube_controller_manager;
    let rates = [
        ("controlPlane.kubeScheduler.qps", ks.qps),
        ("controlPlane.kubeControllerManager.kube-api-qps", kcm.kube_api_qps),
    ];
    for (path, q) in rates {
        if q.is_some_and(|q| !(q > 0.0 && q.is_finite())) {
            return Err(Invalid::new(path, "a client QPS must be greater than 0", "e.g. 50"));
        }
    }
    for (path, d) in [
        ("controlPlane.kubeControllerManager.node-monitor-period", &kcm.node_monitor_period),
        ("controlPlane.kubeControllerManager.node-monitor-grace-period", &kcm.node_monitor_grace_period),
        ("controlPlane.kubeControllerManager.pvclaimbinder-sync-period", &kcm.pvclaimbinder_sync_period),
    ] {
        if d.as_ref().is_some_and(|d| d.time == SimTime::ZERO) {
            return Err(Invalid::new(path, "this period must be greater than 0", "e.g. 5s"));
        }
    }
    let api = &s.control_plane.kube_apiserver;
    for (path, d) in [
        ("controlPlane.kubeApiserver.event-ttl", &api.event_ttl),
        ("controlPlane.kubeApiserver.request-timeout", &api.request_timeout),
    ] {
        if d.as_ref().is_some_and(|d| d.time == SimTime::ZERO) {
            return Err(Invalid::new(path, "this duration must be greater than 0", "e.g. 1m"));
        }
    }
    if s.duration.time == SimTime::ZERO {
        return Err(Invalid::new("duration", "duration must be greater than 0", "e.g. duration: 5m"));
    }
    for (i, d) in s.storage.drivers.iter().enumerate() {
        if d.name.is_empty() {
            return Err(Invalid::new(
                format!("storage.drivers[{i}].name"),
                "a driver needs the provisioner name it stands for",
                "e.g. name: ebs.csi.aws.com, or \"*\" for every driver",
            ));
        }
    }
    validate_profiles(s)?;
    for (i, pool) in s.node_pools.iter().enumerate() {
        let p = format!("nodePools[{i}]");
        if let Err(m) = pool.kubelet.eviction() {
            return Err(Invalid::new(
                format!("{p}.kubelet.evictionSoft"),
                format!("node pool {}: {m}", pool.name),
                "each evictionSoft signal needs an evictionSoftGracePeriod entry",
            ));
        }
        for (field, q) in
            [("kubeAPIQPS", pool.kubelet.kube_api_qps), ("eventRecordQPS", pool.kubelet.event_record_qps)]
        {
            if q.is_some_and(|q| !(q > 0.0 && q.is_finite())) {
                return Err(Invalid::new(
                    format!("{p}.kubelet.{field}"),
                    format!("{field} must be greater than 0"),
                    "e.g. 50",
                ));
            }
        }
        if let Some(k) = pool.capacity.extended.keys().find(|k| !k.contains('/')) {
            return Err(Invalid::new(
                format!("{p}.capacity.{k}"),
                format!("node pool {}: unknown capacity field {k:?}", pool.name),
                "capacity takes cpu, memory, pods, ephemeral-storage and extended resources with a domain, e.g. nvidia.com/gpu",
            ));
        }
        for (what, q) in [("cpu", &pool.capacity.cpu), ("memory", &pool.capacity.memory)] {
            if q.value() <= 0 {
                return Err(Invalid::new(
                    format!("{p}.capacity.{what}"),
                    format!("node pool {}: capacity {what} must be greater than 0", pool.name),
                    "e.g. cpu: \"4\", memory: 16Gi",
                ));
            }
        }
        if pool.kubelet.eviction_max_pod_grace_period.is_some_and(|g| g < 0) {
            return Err(Invalid::new(
                format!("{p}.kubelet.evictionMaxPodGracePeriod"),
                "evictionMaxPodGracePeriod must be 0 or more",
                "0 means the pod's own grace period",
            ));
        }
    }
    Ok(())
}

fn validate(s: &Scenario, _spans: &spans::Spans) -> Result<(), Invalid> {
    validate_settings(s)?;
    let mut hosts = host_names(s);
    let mut seen = std::collections::BTreeSet::new();
    for h in &hosts {
        if !seen.insert(h.clone()) {
            let i =
                s.node_pools.iter().rposition(|p| (1..=p.count).any(|k| p.node_name(k) == *h)).unwrap_or(0);
            return Err(Invalid::new(
                format!("nodePools[{i}].name"),
                format!("node name {h:?} is used twice"),
                "give each pool its own namePattern",
            ));
        }
    }
    // A Node's name is an RFC 1123 subdomain (ValidateNodeName): the API server would
    // reject every node of the pool.
    for (i, p) in s.node_pools.iter().enumerate() {
        for k in [1, p.count.max(1)] {
            let name = p.node_name(k);
            if let Err(e) = kubesim_model::apiserver::validate_name(&name) {
                let field = if p.name_pattern.is_some() { "namePattern" } else { "name" };
                return Err(Invalid::new(
                    format!("nodePools[{i}].{field}"),
                    format!("Node {name:?} is invalid: {e}"),
                    "node names are lower-case letters, digits, '-' and '.', e.g. namePattern: \"worker-{i}\"",
                ));
            }
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, b) in s.behaviors.iter().enumerate() {
        let path = format!("behaviors[{i}]");
        if !names.insert(b.name.as_str()) {
            return Err(Invalid::new(
                format!("{path}.name"),
                format!("behavior {:?} is defined twice", b.name),
                "give each behavior its own name",
            ));
        }
        for (what, u) in [("memory", &b.memory), ("disk", &b.disk)] {
            if let Some(Err(m)) = u.as_ref().map(UsageSpec::check) {
                return Err(Invalid::new(
                    format!("{path}.{what}"),
                    format!("behavior {}: {what}: {m}", b.name),
                    "e.g. {constant: 200Mi}, {start: 100Mi, perSecond: 1Mi} or {steps: [{after: 30s, value: 1Gi}]}",
                ));
            }
        }
    }
    for (i, w) in s.workloads.iter().enumerate() {
        if w.path.is_none() && w.manifest.is_none() {
            return Err(Invalid::new(
                format!("workloads[{i}]"),
                "a workloads entry needs path or manifest",
                "- path: manifests/web.yaml",
            ));
        }
        if let Some(want) = &w.expect_error {
            if want.is_empty() {
                return Err(Invalid::new(
                    format!("workloads[{i}].expectError"),
                    "expectError is empty: it would match any error",
                    "give part of the API server's message, e.g. expectError: \"Required value\"",
                ));
            }
            let n = w.objects().len();
            if n != 1 {
                return Err(Invalid::new(
                    format!("workloads[{i}].expectError"),
                    format!("expectError applies to a workloads entry of one object; this one has {n}"),
                    "put the object that must be rejected in a workloads entry of its own",
                ));
            }
        }
    }
    let hp = s.control_plane.hosts.unwrap_or(DEFAULT_CONTROL_PLANE_HOSTS) as usize;
    let mut counters: BTreeMap<&str, u32> = s.node_pools.iter().map(|p| (p.name.as_str(), p.count)).collect();
    for (i, e) in s.timeline.iter().enumerate() {
        validate_entry(s, e, &format!("timeline[{i}]"), &mut hosts, hp, &mut counters)?;
    }
    for (i, x) in s.expectations.iter().enumerate() {
        expect::validate_expectation(s, x, &format!("expectations[{i}]"))?;
    }
    Ok(())
}

fn validate_entry<'a>(
    s: &'a Scenario,
    e: &TimelineEntry,
    path: &str,
    hosts: &mut Vec<String>,
    hp: usize,
    counters: &mut BTreeMap<&'a str, u32>,
) -> Result<(), Invalid> {
    let name = e.action.name();
    let arg = format!("{path}.{name}");
    if e.at.time > s.duration.time {
        return Err(Invalid::new(
            format!("{path}.at"),
            format!("timeline entry at {} is after the scenario's duration {}", e.at.text, s.duration.text),
            "raise duration or move the entry",
        ));
    }
    let cp: Vec<String> = hosts.iter().take(hp).cloned().collect();
    let is_cp = |h: &str| cp.iter().any(|x| x == h);
    let (mut named, mut worker_only, mut cp_only): (Vec<&str>, Vec<&str>, Vec<&str>) =
        (Vec::new(), Vec::new(), Vec::new());
    match &e.action {
        Action::AddNodes(a) => {
            let Some(pool) = s.node_pools.iter().find(|p| p.name == a.pool) else {
                return Err(Invalid::new(
                    format!("{arg}.pool"),
                    format!("addNodes: no node pool named {:?}", a.pool),
                    "name a pool from nodePools",
                ));
            };
            if let Some(c) = counters.get_mut(pool.name.as_str()) {
                for _ in 0..a.count {
                    *c += 1;
                    hosts.push(pool.node_name(*c));
                }
            }
        }
        Action::Cordon(n) | Action::Uncordon(n) | Action::RemoveNode(n) => named.push(n),
        Action::Drain(d) => named.push(&d.node),
        Action::Taint(t) | Action::Untaint(t) => {
            named.push(&t.node);
            if matches!(e.action, Action::Taint(_)) && t.effect.is_none() {
                return Err(Invalid::new(
                    &arg,
                    format!("taint {} needs an effect", t.key),
                    "effect: NoSchedule, PreferNoSchedule or NoExecute",
                ));
            }
        }
        Action::Apply(a) => {
            if a.path.is_none() && a.manifest.is_none() {
                return Err(Invalid::new(&arg, "apply needs path or manifest", "apply: {path: file.yaml}"));
            }
        }
        Action::Delete(_) | Action::EtcdCompact | Action::EtcdDefrag | Action::EtcdAlarmDisarm => {}
        Action::RolloutUndo(u) => {
            if u.to_revision < 0 {
                return Err(Invalid::new(
                    format!("{arg}.toRevision"),
                    "toRevision must be 0 (the previous revision) or a revision number",
                    "e.g. toRevision: 2",
                ));
            }
        }
        Action::Label(l) => {
            if l.labels.is_empty() && l.remove.is_empty() {
                return Err(Invalid::new(
                    arg.to_string(),
                    "label: nothing to do",
                    "give `labels: {app: debug}` to set and/or `remove: [app]` to remove",
                ));
            }
            // kubectl label: "can not both modify and remove a label in the same command".
            if let Some(k) = l.remove.iter().find(|k| l.labels.contains_key(*k)) {
                return Err(Invalid::new(
                    format!("{arg}.remove"),
                    format!("label: can not both modify and remove the label {k:?} in the same command"),
                    "set it or remove it",
                ));
            }
        }
        Action::Scale(r) => {
            // kubectl scale: the kinds with a scale subresource kubesim simulates.
            if !matches!(
                r.kind.0,
                Kind::Deployment | Kind::ReplicaSet | Kind::StatefulSet | Kind::ReplicationController
            ) {
                return Err(Invalid::new(
                    format!("{arg}.kind"),
                    format!("scale: {} does not scale here", r.kind.0.as_str()),
                    "scale a Deployment, ReplicaSet, StatefulSet or ReplicationController",
                ));
            }
        }
        Action::Fault(f) => {
            named.extend(f.hosts());
            match f {
                Fault::StopContainerRuntime(h)
                | Fault::StartContainerRuntime(h)
                | Fault::MemoryHog { host: h, .. }
                | Fault::FillDisk { host: h, .. }
                | Fault::FillInodes { host: h, .. }
                | Fault::ExhaustPids { host: h, .. } => worker_only.push(h),
                Fault::KillProcess { host, process } | Fault::RestartProcess { host, process } => {
                    if process == "kubelet" {
                        worker_only.push(host);
                    } else {
                        cp_only.push(host);
                    }
                }
                Fault::IsolateMember(h)
                | Fault::LoseEtcdDisk(h)
                | Fault::LoseUnsyncedWrites(h)
                | Fault::SlowEtcdDisk { host: h, .. } => cp_only.push(h),
                _ => {}
            }
        }
    }
    for h in named {
        if !hosts.iter().any(|x| x == h) {
            return Err(Invalid::new(
                &arg,
                format!("no host named {h:?}"),
                format!("hosts are: {}", hosts.join(", ")),
            ));
        }
    }
    for h in worker_only {
        if is_cp(h) {
            return Err(Invalid::new(
                &arg,
                format!("{h} is a control-plane host: it runs no kubelet"),
                "name a worker node",
            ));
        }
    }
    for h in cp_only {
        if !is_cp(h) {
            return Err(Invalid::new(
                &arg,
                format!("{h} runs no etcd member or control-plane process"),
                format!("control-plane hosts are cp-1..cp-{hp}; workers run kubelet"),
            ));
        }
    }
    if let Some(v) = &e.via {
        if !e.action.is_api() {
            return Err(Invalid::new(
                format!("{path}.via"),
                "via applies to API actions only",
                "use it with apply, delete, scale, rolloutUndo, cordon, uncordon, taint, untaint or drain",
            ));
        }
        if v != "isolated" && !is_cp(v) {
            return Err(Invalid::new(
                format!("{path}.via"),
                format!("via: {v:?} is not a control-plane host"),
                format!("one of cp-1..cp-{hp}, or isolated"),
            ));
        }
    }
    if let Action::Apply(ManifestSource { expect_error: Some(_), .. }) = &e.action {
        return Err(Invalid::new(
            format!("{path}.apply.expectError"),
            "a timeline apply takes expectError on the entry, beside `at`",
            "- at: 10s\n  apply: {path: manifests/bad.yaml}\n  expectError: \"is invalid\"",
        ));
    }
    if e.expect_error.is_some() && !e.action.is_api() && !e.action.is_etcdctl() {
        return Err(Invalid::new(
            format!("{path}.expectError"),
            "expectError applies to API actions and etcdctl commands only",
            "use it with apply, delete, scale, rolloutUndo, cordon, uncordon, taint, untaint, drain, etcdCompact, etcdDefrag or etcdAlarmDisarm",
        ));
    }
    Ok(())
}

/// Looks up `a.b`, `a[0]`, `a[type=Ready]`, `a['key.with.dots']` in a JSON value.
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
                None => match inner.parse::<usize>() {
                    Ok(i) => cur.as_array()?.get(i)?,
                    // A map key with dots, as kubectl's JSONPath quotes it:
                    // `metadata.annotations['volume.kubernetes.io/selected-node']`.
                    Err(_) => cur.as_object()?.get(inner.trim_matches('\''))?,
                },
            };
        }
    }
    Some(cur.clone())
}

/// Splits a path at the dots outside `[...]` filters (filter values such as
/// `key=node.kubernetes.io/unreachable` contain dots).
pub(crate) fn split_path(path: &str) -> Vec<&str> {
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

#[cfg(test)]
mod tests;
