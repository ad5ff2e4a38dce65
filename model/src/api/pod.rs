//! Pod (core/v1), with the fields the control plane reads and writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::meta::{ConditionStatus, ObjectMeta};
use super::quantity::Quantity;
use super::scheduling::{Affinity, Toleration};
use crate::time::SimTime;

/// `v1.ResourceList`: resource name -> quantity.
pub type ResourceList = BTreeMap<String, Quantity>;

/// The fields of a manifest that kubesim's types do not model, by name, as written: kept
/// with the object and shown back, so nothing in a manifest is lost. (The API server of a
/// real cluster keeps every field of its own version; kubesim's types model the fields
/// the simulation acts on, and this map holds the rest.)
pub type Extra = BTreeMap<String, serde_json::Value>;

/// Default scheduler name (`v1.DefaultSchedulerName`).
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Shared between a pod's versions (and with its template until it is changed): a
    /// status write copies the status, not the spec. Change it with `Arc::make_mut`.
    #[serde(default)]
    pub spec: Arc<PodSpec>,
    #[serde(default)]
    pub status: PodStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplateSpec {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Pods made from the template share it until one is changed.
    #[serde(default)]
    pub spec: Arc<PodSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subdomain: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub priority_class_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scheduler_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub overhead: ResourceList,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_name: String,
    /// The deprecated alias of `serviceAccountName`: the v1 conversion
    /// (Convert_core_PodSpec_To_v1_PodSpec) writes it from serviceAccountName.
    #[serde(default, rename = "serviceAccount", skip_serializing_if = "String::is_empty")]
    pub service_account: String,
    /// SetDefaults_Pod: `v1.DefaultEnableServiceLinks` (true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_service_links: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dns_policy: String,
    /// `PreemptLowerPriority` or `Never`, set by Priority admission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemption_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<super::pod_scheduling::TopologySpreadConstraint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Fields kubesim does not model, kept as written and shown back (`get -o yaml`).
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    #[serde(default, skip_serializing_if = "ResourceRequirements::is_empty")]
    pub resources: ResourceRequirements,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_pull_policy: String,
    /// SetDefaults_Container: `/dev/termination-log`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub termination_message_path: String,
    /// SetDefaults_Container: `File`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub termination_message_policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<Probe>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Only on init containers: `Always` makes it a sidecar (KEP-753, GA in v1.33),
    /// started in order with the init containers and kept running beside the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<ContainerRestartPolicy>,
    /// Fields kubesim does not model, kept as written and shown back (`get -o yaml`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `v1.ContainerRestartPolicy`: v1.33 serves one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerRestartPolicy {
    Always,
}

impl Container {
    /// `podutil.IsRestartableInitContainer`: an init container with restartPolicy Always.
    pub fn is_sidecar(&self) -> bool {
        self.restart_policy == Some(ContainerRestartPolicy::Always)
    }
}

/// `v1.EnvVar`: a literal value, or one read from the pod, its resources, a ConfigMap
/// or a Secret when the container starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<ObjectFieldSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_field_ref: Option<ResourceFieldSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<KeySelector>,
}

/// `v1.ObjectFieldSelector` (apiVersion defaults to v1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectFieldSelector {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    pub field_path: String,
}

/// `v1.ResourceFieldSelector`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceFieldSelector {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_name: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divisor: Option<Quantity>,
}

/// `v1.ConfigMapKeySelector` and `v1.SecretKeySelector`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeySelector {
    #[serde(default)]
    pub name: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

impl KeySelector {
    pub fn is_optional(&self) -> bool {
        self.optional == Some(true)
    }
}

/// `v1.EnvFromSource`: every key of a ConfigMap or Secret as a variable.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvFromSource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<LocalRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalRef>,
}

/// `v1.ConfigMapEnvSource` and `v1.SecretEnvSource`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

impl LocalRef {
    pub fn is_optional(&self) -> bool {
        self.optional == Some(true)
    }
}

/// `v1.VolumeMount`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_path_expr: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mount_propagation: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub recursive_read_only: String,
}

/// `v1.Volume`: a name and one source. The sources the kubelet's volume manager mounts
/// here are typed; a source kubesim does not simulate is reported when the manifest is
/// read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected: Option<ProjectedVolumeSource>,
    #[serde(default, rename = "downwardAPI", skip_serializing_if = "Option::is_none")]
    pub downward_api: Option<DownwardApiVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
    /// Fields kubesim does not model, kept as written and shown back (`get -o yaml`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `v1.KeyToPath`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyToPath {
    pub key: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<i32>,
}

/// `v1.ConfigMapVolumeSource`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapVolumeSource {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// `v1.SecretVolumeSource`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretVolumeSource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// `v1.EmptyDirVolumeSource`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmptyDirVolumeSource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub medium: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<Quantity>,
}

/// `v1.HostPathVolumeSource`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostPathVolumeSource {
    pub path: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

/// `v1.ProjectedVolumeSource`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectedVolumeSource {
    #[serde(default)]
    pub sources: Vec<VolumeProjection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i32>,
}

/// `v1.VolumeProjection`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeProjection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ProjectedKeys>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ProjectedKeys>,
    #[serde(default, rename = "downwardAPI", skip_serializing_if = "Option::is_none")]
    pub downward_api: Option<DownwardApiProjection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_token: Option<ServiceAccountTokenProjection>,
    /// Fields kubesim does not model, kept as written and shown back (`get -o yaml`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `v1.ConfigMapProjection` and `v1.SecretProjection`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectedKeys {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// `v1.DownwardAPIProjection`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownwardApiProjection {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<DownwardApiVolumeFile>,
}

/// `v1.ServiceAccountTokenProjection` (expirationSeconds defaults to 3600).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountTokenProjection {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub audience: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_seconds: Option<i64>,
    pub path: String,
}

/// `v1.DownwardAPIVolumeSource`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownwardApiVolumeSource {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<DownwardApiVolumeFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i32>,
}

/// `v1.DownwardAPIVolumeFile`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownwardApiVolumeFile {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<ObjectFieldSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_field_ref: Option<ResourceFieldSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<i32>,
}

/// `v1.PersistentVolumeClaimVolumeSource`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeClaimVolumeSource {
    pub claim_name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// `v1.VolumeDefaultMode` / `SecretVolumeSourceDefaultMode` / ...: 0644.
pub const VOLUME_DEFAULT_MODE: i32 = 0o644;
/// SetDefaults_ServiceAccountTokenProjection: an hour.
pub const SERVICE_ACCOUNT_TOKEN_EXPIRATION_SECONDS: i64 = 3600;

impl PodSpec {
    /// The v1 defaulters for volumes and environment (pkg/apis/core/v1/defaults.go):
    /// defaultMode 0644 on ConfigMap, Secret, projected and downward API volumes,
    /// fieldRef apiVersion v1, a projected token's hour, a hostPath's empty type.
    pub fn default_volumes_and_env(&mut self) {
        let field_ref = |f: &mut ObjectFieldSelector| {
            if f.api_version.is_empty() {
                f.api_version = "v1".into();
            }
        };
        for v in &mut self.volumes {
            if let Some(c) = &mut v.config_map {
                c.default_mode.get_or_insert(VOLUME_DEFAULT_MODE);
            }
            if let Some(s) = &mut v.secret {
                s.default_mode.get_or_insert(VOLUME_DEFAULT_MODE);
            }
            if let Some(h) = &mut v.host_path {
                h.type_.get_or_insert_with(String::new);
            }
            if let Some(d) = &mut v.downward_api {
                d.default_mode.get_or_insert(VOLUME_DEFAULT_MODE);
                d.items.iter_mut().filter_map(|i| i.field_ref.as_mut()).for_each(field_ref);
            }
            if let Some(p) = &mut v.projected {
                p.default_mode.get_or_insert(VOLUME_DEFAULT_MODE);
                for s in &mut p.sources {
                    if let Some(t) = &mut s.service_account_token {
                        t.expiration_seconds.get_or_insert(SERVICE_ACCOUNT_TOKEN_EXPIRATION_SECONDS);
                    }
                    if let Some(d) = &mut s.downward_api {
                        d.items.iter_mut().filter_map(|i| i.field_ref.as_mut()).for_each(field_ref);
                    }
                }
            }
        }
        for c in self.containers.iter_mut().chain(self.init_containers.iter_mut()) {
            for e in &mut c.env {
                if let Some(f) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
                    field_ref(f);
                }
            }
        }
    }
}

/// `v1.Probe`. Defaults (SetDefaults_Probe): periodSeconds 10, timeoutSeconds 1,
/// successThreshold 1, failureThreshold 3, initialDelaySeconds 0.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
}

impl Probe {
    pub fn period(&self) -> i32 {
        self.period_seconds.unwrap_or(10).max(1)
    }
    pub fn failure_threshold(&self) -> i32 {
        self.failure_threshold.unwrap_or(3).max(1)
    }
    pub fn success_threshold(&self) -> i32 {
        self.success_threshold.unwrap_or(1).max(1)
    }
    pub fn initial_delay(&self) -> i32 {
        self.initial_delay_seconds.unwrap_or(0).max(0)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpGetAction {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    pub port: super::meta::IntOrString,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scheme: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TcpSocketAction {
    pub port: super::meta::IntOrString,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecAction {
    #[serde(default)]
    pub command: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcAction {
    pub port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirements {
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub limits: ResourceList,
    #[serde(default, skip_serializing_if = "ResourceList::is_empty")]
    pub requests: ResourceList,
}

impl ResourceRequirements {
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty() && self.requests.is_empty()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub container_port: i32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub host_port: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
    /// SetDefaults_ContainerPort: TCP.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PodPhase {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl PodPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
            PodPhase::Unknown => "Unknown",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PodPhase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PodCondition>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub nominated_node_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[serde(rename = "hostIP")]
    pub host_ip: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[serde(rename = "hostIPs")]
    pub host_ips: Vec<PodIp>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[serde(rename = "podIP")]
    pub pod_ip: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[serde(rename = "podIPs")]
    pub pod_ips: Vec<PodIp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<SimTime>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_container_statuses: Vec<ContainerStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_statuses: Vec<ContainerStatus>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub qos_class: String,
}

/// `v1.PodIP` and `v1.HostIP`: one address (a single-stack cluster has one of each).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodIp {
    pub ip: String,
}

/// Pod condition types (`v1.PodConditionType`).
pub mod condition {
    pub const POD_SCHEDULED: &str = "PodScheduled";
    pub const READY: &str = "Ready";
    pub const CONTAINERS_READY: &str = "ContainersReady";
    pub const INITIALIZED: &str = "Initialized";
    pub const POD_READY_TO_START_CONTAINERS: &str = "PodReadyToStartContainers";
    pub const DISRUPTION_TARGET: &str = "DisruptionTarget";
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<SimTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<SimTime>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    pub name: String,
    #[serde(default)]
    pub state: ContainerState,
    #[serde(default, skip_serializing_if = "ContainerState::is_empty")]
    pub last_state: ContainerState,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub restart_count: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[serde(rename = "imageID")]
    pub image_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[serde(rename = "containerID")]
    pub container_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<ContainerStateWaiting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<ContainerStateRunning>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated: Option<ContainerStateTerminated>,
}

impl ContainerState {
    pub fn is_empty(&self) -> bool {
        self.waiting.is_none() && self.running.is_none() && self.terminated.is_none()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateWaiting {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateRunning {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<SimTime>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateTerminated {
    pub exit_code: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<SimTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<SimTime>,
}

/// Compact resource amounts for the scheduler's hot path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory_bytes: i64,
    pub ephemeral_storage_bytes: i64,
    pub pods: i64,
}

/// Resource names (`v1.ResourceName`).
pub mod resource {
    pub const CPU: &str = "cpu";
    pub const MEMORY: &str = "memory";
    pub const PODS: &str = "pods";
    pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
}

impl Resources {
    pub fn from_list(list: &ResourceList) -> Resources {
        let get = |k: &str, milli: bool| {
            list.get(k).map(|q| if milli { q.milli_value() } else { q.value() }).unwrap_or(0)
        };
        Resources {
            milli_cpu: get(resource::CPU, true),
            memory_bytes: get(resource::MEMORY, false),
            ephemeral_storage_bytes: get(resource::EPHEMERAL_STORAGE, false),
            pods: get(resource::PODS, false),
        }
    }

    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory_bytes += o.memory_bytes;
        self.ephemeral_storage_bytes += o.ephemeral_storage_bytes;
        self.pods += o.pods;
    }

    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory_bytes -= o.memory_bytes;
        self.ephemeral_storage_bytes -= o.ephemeral_storage_bytes;
        self.pods -= o.pods;
    }

    fn max_with(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory_bytes = self.memory_bytes.max(o.memory_bytes);
        self.ephemeral_storage_bytes = self.ephemeral_storage_bytes.max(o.ephemeral_storage_bytes);
    }
}

impl Pod {
    /// `resourcehelper.PodRequests` (k8s.io/component-helpers/resource): the sum of the
    /// containers' requests, raised to the largest init container's, plus overhead.
    /// `pods` is not counted here (the scheduler counts pods separately).
    pub fn requests(&self) -> Resources {
        let mut sum = Resources::default();
        for c in &self.spec.containers {
            sum.add(&c.resources.effective_requests());
        }
        for c in &self.spec.init_containers {
            sum.max_with(&c.resources.effective_requests());
        }
        sum.add(&Resources::from_list(&self.spec.overhead));
        sum
    }

    pub fn phase(&self) -> PodPhase {
        self.status.phase.unwrap_or_default()
    }

    pub fn condition(&self, type_: &str) -> Option<&PodCondition> {
        self.status.conditions.iter().find(|c| c.type_ == type_)
    }

    /// `podutil.IsPodReady`.
    pub fn is_ready(&self) -> bool {
        self.condition(condition::READY).is_some_and(|c| c.status == ConditionStatus::True)
    }

    /// `podutil.IsPodAvailable` with minReadySeconds.
    pub fn is_available(&self, min_ready_seconds: i32, now: SimTime) -> bool {
        let Some(c) = self.condition(condition::READY) else { return false };
        if c.status != ConditionStatus::True {
            return false;
        }
        if min_ready_seconds == 0 {
            return true;
        }
        c.last_transition_time.is_some_and(|t| now.saturating_sub(t).as_secs() >= min_ready_seconds as u64)
    }

    /// Sets (or replaces) a condition, keeping lastTransitionTime when the status is
    /// unchanged, as the kubelet and scheduler do (podutil.UpdatePodCondition).
    pub fn set_condition(&mut self, mut c: PodCondition) -> bool {
        match self.status.conditions.iter_mut().find(|x| x.type_ == c.type_) {
            Some(old) => {
                if old.status == c.status {
                    c.last_transition_time = old.last_transition_time;
                }
                let changed = *old != c;
                *old = c;
                changed
            }
            None => {
                self.status.conditions.push(c);
                true
            }
        }
    }

    /// Host ports the pod asks for: (hostIP, protocol, port).
    pub fn host_ports(&self) -> impl Iterator<Item = (&str, &str, i32)> {
        self.spec.containers.iter().chain(&self.spec.init_containers).flat_map(|c| {
            c.ports.iter().filter(|p| p.host_port > 0).map(|p| {
                let ip = if p.host_ip.is_empty() { "0.0.0.0" } else { p.host_ip.as_str() };
                let proto = if p.protocol.is_empty() { "TCP" } else { p.protocol.as_str() };
                (ip, proto, p.host_port)
            })
        })
    }
}

impl ResourceRequirements {
    /// Requests, with limits standing in for unset requests (the API server's defaulting).
    pub fn requests_or_limits(&self) -> ResourceList {
        let mut out = self.limits.clone();
        out.extend(self.requests.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    /// [`Self::requests_or_limits`] as compact amounts, without building a list.
    pub fn effective_requests(&self) -> Resources {
        let get = |k: &str, milli: bool| {
            self.requests
                .get(k)
                .or_else(|| self.limits.get(k))
                .map(|q| if milli { q.milli_value() } else { q.value() })
                .unwrap_or(0)
        };
        Resources {
            milli_cpu: get(resource::CPU, true),
            memory_bytes: get(resource::MEMORY, false),
            ephemeral_storage_bytes: get(resource::EPHEMERAL_STORAGE, false),
            pods: get(resource::PODS, false),
        }
    }
}
