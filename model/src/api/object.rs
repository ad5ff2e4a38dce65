//! The closed set of kinds kubesim simulates, and [`Object`], one value of any of them.
//!
//! Objects travel as `Arc<Object>`: written once, shared by the etcd store, the watch
//! cache and every informer without copying.

use std::fmt;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::cluster::{Event, Lease, Namespace, ServiceAccount};
use super::config::{ConfigMap, Secret};
use super::meta::ObjectMeta;
use super::node::Node;
use super::pod::Pod;
use super::policy::{PodDisruptionBudget, PriorityClass};
use super::storage::{PersistentVolume, PersistentVolumeClaim, StorageClass};
use super::workloads::{DaemonSet, Deployment, Job, ReplicaSet, ReplicationController, StatefulSet};

/// A kind kubesim simulates. Order is the order `kubectl get all`-style output uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Namespace,
    Node,
    Pod,
    ReplicaSet,
    Deployment,
    DaemonSet,
    StatefulSet,
    Job,
    Lease,
    Event,
    PriorityClass,
    PodDisruptionBudget,
    ConfigMap,
    Secret,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
    ReplicationController,
    ServiceAccount,
}

impl Kind {
    pub const ALL: [Kind; 19] = [
        Kind::Namespace,
        Kind::Node,
        Kind::Pod,
        Kind::ReplicaSet,
        Kind::Deployment,
        Kind::DaemonSet,
        Kind::StatefulSet,
        Kind::Job,
        Kind::Lease,
        Kind::Event,
        Kind::PriorityClass,
        Kind::PodDisruptionBudget,
        Kind::ConfigMap,
        Kind::Secret,
        Kind::PersistentVolume,
        Kind::PersistentVolumeClaim,
        Kind::StorageClass,
        Kind::ReplicationController,
        Kind::ServiceAccount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Node => "Node",
            Kind::Pod => "Pod",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Deployment => "Deployment",
            Kind::DaemonSet => "DaemonSet",
            Kind::StatefulSet => "StatefulSet",
            Kind::Job => "Job",
            Kind::Lease => "Lease",
            Kind::Event => "Event",
            Kind::PriorityClass => "PriorityClass",
            Kind::PodDisruptionBudget => "PodDisruptionBudget",
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
            Kind::PersistentVolume => "PersistentVolume",
            Kind::PersistentVolumeClaim => "PersistentVolumeClaim",
            Kind::StorageClass => "StorageClass",
            Kind::ReplicationController => "ReplicationController",
            Kind::ServiceAccount => "ServiceAccount",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Namespace
            | Kind::Node
            | Kind::Pod
            | Kind::Event
            | Kind::ConfigMap
            | Kind::Secret
            | Kind::PersistentVolume
            | Kind::PersistentVolumeClaim
            | Kind::ReplicationController
            | Kind::ServiceAccount => "v1",
            Kind::StorageClass => "storage.k8s.io/v1",
            Kind::ReplicaSet | Kind::Deployment | Kind::DaemonSet | Kind::StatefulSet => "apps/v1",
            Kind::Job => "batch/v1",
            Kind::Lease => "coordination.k8s.io/v1",
            Kind::PriorityClass => "scheduling.k8s.io/v1",
            Kind::PodDisruptionBudget => "policy/v1",
        }
    }

    /// The REST resource name, as in error messages (`pods "web-1" not found`).
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Node => "nodes",
            Kind::Pod => "pods",
            Kind::ReplicaSet => "replicasets",
            Kind::Deployment => "deployments",
            Kind::DaemonSet => "daemonsets",
            Kind::StatefulSet => "statefulsets",
            Kind::Job => "jobs",
            Kind::Lease => "leases",
            Kind::Event => "events",
            Kind::PriorityClass => "priorityclasses",
            Kind::PodDisruptionBudget => "poddisruptionbudgets",
            Kind::ConfigMap => "configmaps",
            Kind::Secret => "secrets",
            Kind::PersistentVolume => "persistentvolumes",
            Kind::PersistentVolumeClaim => "persistentvolumeclaims",
            Kind::StorageClass => "storageclasses",
            Kind::ReplicationController => "replicationcontrollers",
            Kind::ServiceAccount => "serviceaccounts",
        }
    }

    /// The resource with its group, as in conflict messages (`replicasets.apps "web"`).
    pub fn qualified_resource(self) -> String {
        match self.api_version().split_once('/') {
            Some((group, _)) => format!("{}.{group}", self.resource()),
            None => self.resource().to_string(),
        }
    }

    pub fn namespaced(self) -> bool {
        !matches!(
            self,
            Kind::Namespace | Kind::Node | Kind::PriorityClass | Kind::PersistentVolume | Kind::StorageClass
        )
    }

    /// The etcd key prefix the API server stores this kind under
    /// (k8s.io/kubernetes/pkg/registry/*/storage: nodes live under `minions`).
    pub fn etcd_prefix(self) -> &'static str {
        match self {
            Kind::Namespace => "/registry/namespaces/",
            Kind::Node => "/registry/minions/",
            Kind::Pod => "/registry/pods/",
            Kind::ReplicaSet => "/registry/replicasets/",
            Kind::Deployment => "/registry/deployments/",
            Kind::DaemonSet => "/registry/daemonsets/",
            Kind::StatefulSet => "/registry/statefulsets/",
            Kind::Job => "/registry/jobs/",
            Kind::Lease => "/registry/leases/",
            Kind::Event => "/registry/events/",
            Kind::PriorityClass => "/registry/priorityclasses/",
            Kind::PodDisruptionBudget => "/registry/poddisruptionbudgets/",
            Kind::ConfigMap => "/registry/configmaps/",
            Kind::Secret => "/registry/secrets/",
            Kind::PersistentVolume => "/registry/persistentvolumes/",
            Kind::PersistentVolumeClaim => "/registry/persistentvolumeclaims/",
            Kind::StorageClass => "/registry/storageclasses/",
            // pkg/registry/core/replicationcontroller/storage: "controllers".
            Kind::ReplicationController => "/registry/controllers/",
            Kind::ServiceAccount => "/registry/serviceaccounts/",
        }
    }

    /// Parses a kind, a resource name or a short name as kubectl accepts them
    /// (`pods`, `pod`, `po`, `deploy`, `rs`, `ds`, `no`, `ns`, `ev`).
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s.to_ascii_lowercase().as_str() {
            "namespace" | "namespaces" | "ns" => Kind::Namespace,
            "node" | "nodes" | "no" => Kind::Node,
            "pod" | "pods" | "po" => Kind::Pod,
            "replicaset" | "replicasets" | "rs" => Kind::ReplicaSet,
            "deployment" | "deployments" | "deploy" => Kind::Deployment,
            "daemonset" | "daemonsets" | "ds" => Kind::DaemonSet,
            "statefulset" | "statefulsets" | "sts" => Kind::StatefulSet,
            "job" | "jobs" => Kind::Job,
            "lease" | "leases" => Kind::Lease,
            "event" | "events" | "ev" => Kind::Event,
            "priorityclass" | "priorityclasses" | "pc" => Kind::PriorityClass,
            "poddisruptionbudget" | "poddisruptionbudgets" | "pdb" => Kind::PodDisruptionBudget,
            "configmap" | "configmaps" | "cm" => Kind::ConfigMap,
            "secret" | "secrets" => Kind::Secret,
            "persistentvolume" | "persistentvolumes" | "pv" => Kind::PersistentVolume,
            "persistentvolumeclaim" | "persistentvolumeclaims" | "pvc" => Kind::PersistentVolumeClaim,
            "storageclass" | "storageclasses" | "sc" => Kind::StorageClass,
            "replicationcontroller" | "replicationcontrollers" | "rc" => Kind::ReplicationController,
            "serviceaccount" | "serviceaccounts" | "sa" => Kind::ServiceAccount,
            _ => return None,
        })
    }

    fn from_type_meta(api_version: &str, kind: &str) -> Option<Kind> {
        let k = Kind::ALL.into_iter().find(|k| k.as_str() == kind)?;
        (k.api_version() == api_version).then_some(k)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identity of an object: kind, namespace ("" for cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey { kind, namespace: namespace.into(), name: name.into() }
    }

    /// `/registry/pods/default/web-1`.
    pub fn etcd_key(&self) -> String {
        if self.kind.namespaced() {
            format!("{}{}/{}", self.kind.etcd_prefix(), self.namespace, self.name)
        } else {
            format!("{}{}", self.kind.etcd_prefix(), self.name)
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind.resource(), self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind.resource(), self.namespace, self.name)
        }
    }
}

/// One object of a simulated kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    Namespace(Namespace),
    Node(Node),
    Pod(Pod),
    ReplicaSet(ReplicaSet),
    Deployment(Deployment),
    DaemonSet(DaemonSet),
    StatefulSet(StatefulSet),
    Job(Job),
    Lease(Lease),
    Event(Event),
    PriorityClass(PriorityClass),
    PodDisruptionBudget(PodDisruptionBudget),
    ConfigMap(ConfigMap),
    Secret(Secret),
    PersistentVolume(PersistentVolume),
    PersistentVolumeClaim(PersistentVolumeClaim),
    StorageClass(StorageClass),
    ReplicationController(ReplicationController),
    ServiceAccount(ServiceAccount),
}

macro_rules! each_kind {
    ($self:expr, $o:ident => $body:expr) => {
        match $self {
            Object::Namespace($o) => $body,
            Object::Node($o) => $body,
            Object::Pod($o) => $body,
            Object::ReplicaSet($o) => $body,
            Object::Deployment($o) => $body,
            Object::DaemonSet($o) => $body,
            Object::StatefulSet($o) => $body,
            Object::Job($o) => $body,
            Object::Lease($o) => $body,
            Object::Event($o) => $body,
            Object::PriorityClass($o) => $body,
            Object::PodDisruptionBudget($o) => $body,
            Object::ConfigMap($o) => $body,
            Object::Secret($o) => $body,
            Object::PersistentVolume($o) => $body,
            Object::PersistentVolumeClaim($o) => $body,
            Object::StorageClass($o) => $body,
            Object::ReplicationController($o) => $body,
            Object::ServiceAccount($o) => $body,
        }
    };
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Namespace(_) => Kind::Namespace,
            Object::Node(_) => Kind::Node,
            Object::Pod(_) => Kind::Pod,
            Object::ReplicaSet(_) => Kind::ReplicaSet,
            Object::Deployment(_) => Kind::Deployment,
            Object::DaemonSet(_) => Kind::DaemonSet,
            Object::StatefulSet(_) => Kind::StatefulSet,
            Object::Job(_) => Kind::Job,
            Object::Lease(_) => Kind::Lease,
            Object::Event(_) => Kind::Event,
            Object::PriorityClass(_) => Kind::PriorityClass,
            Object::PodDisruptionBudget(_) => Kind::PodDisruptionBudget,
            Object::ConfigMap(_) => Kind::ConfigMap,
            Object::Secret(_) => Kind::Secret,
            Object::PersistentVolume(_) => Kind::PersistentVolume,
            Object::PersistentVolumeClaim(_) => Kind::PersistentVolumeClaim,
            Object::StorageClass(_) => Kind::StorageClass,
            Object::ReplicationController(_) => Kind::ReplicationController,
            Object::ServiceAccount(_) => Kind::ServiceAccount,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        each_kind!(self, o => &o.metadata)
    }

    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        each_kind!(self, o => &mut o.metadata)
    }

    pub fn key(&self) -> ObjectKey {
        let m = self.meta();
        ObjectKey::new(self.kind(), m.namespace.clone(), m.name.clone())
    }

    pub fn as_pod(&self) -> Option<&Pod> {
        match self {
            Object::Pod(p) => Some(p),
            _ => None,
        }
    }
    pub fn as_node(&self) -> Option<&Node> {
        match self {
            Object::Node(n) => Some(n),
            _ => None,
        }
    }
    pub fn as_replica_set(&self) -> Option<&ReplicaSet> {
        match self {
            Object::ReplicaSet(r) => Some(r),
            _ => None,
        }
    }
    pub fn as_deployment(&self) -> Option<&Deployment> {
        match self {
            Object::Deployment(d) => Some(d),
            _ => None,
        }
    }
    pub fn as_daemon_set(&self) -> Option<&DaemonSet> {
        match self {
            Object::DaemonSet(d) => Some(d),
            _ => None,
        }
    }
    pub fn as_stateful_set(&self) -> Option<&StatefulSet> {
        match self {
            Object::StatefulSet(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_job(&self) -> Option<&Job> {
        match self {
            Object::Job(j) => Some(j),
            _ => None,
        }
    }
    pub fn as_lease(&self) -> Option<&Lease> {
        match self {
            Object::Lease(l) => Some(l),
            _ => None,
        }
    }
    pub fn as_event(&self) -> Option<&Event> {
        match self {
            Object::Event(e) => Some(e),
            _ => None,
        }
    }
    pub fn as_priority_class(&self) -> Option<&PriorityClass> {
        match self {
            Object::PriorityClass(p) => Some(p),
            _ => None,
        }
    }
    pub fn as_pod_disruption_budget(&self) -> Option<&PodDisruptionBudget> {
        match self {
            Object::PodDisruptionBudget(p) => Some(p),
            _ => None,
        }
    }
    pub fn as_config_map(&self) -> Option<&ConfigMap> {
        match self {
            Object::ConfigMap(c) => Some(c),
            _ => None,
        }
    }
    pub fn as_secret(&self) -> Option<&Secret> {
        match self {
            Object::Secret(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_persistent_volume(&self) -> Option<&PersistentVolume> {
        match self {
            Object::PersistentVolume(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_persistent_volume_claim(&self) -> Option<&PersistentVolumeClaim> {
        match self {
            Object::PersistentVolumeClaim(c) => Some(c),
            _ => None,
        }
    }
    pub fn as_storage_class(&self) -> Option<&StorageClass> {
        match self {
            Object::StorageClass(c) => Some(c),
            _ => None,
        }
    }
    pub fn as_replication_controller(&self) -> Option<&ReplicationController> {
        match self {
            Object::ReplicationController(r) => Some(r),
            _ => None,
        }
    }
    pub fn as_namespace(&self) -> Option<&Namespace> {
        match self {
            Object::Namespace(n) => Some(n),
            _ => None,
        }
    }

    /// A JSON value of the object with apiVersion and kind first, as kubectl prints it.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("objects always serialize")
    }
}

#[derive(Serialize)]
struct Tagged<'a, T> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    #[serde(flatten)]
    inner: &'a T,
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (api_version, kind) = (self.kind().api_version(), self.kind().as_str());
        each_kind!(self, o => Tagged { api_version, kind, inner: o }.serialize(s))
    }
}

/// What a manifest document holds: an object of a simulated kind, a `kind: List`, or an
/// object of a kind kubesim does not simulate (skipped with a warning).
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // parsed once per manifest document
pub enum Document {
    Object(Object),
    List(Vec<Document>),
    Unsupported { api_version: String, kind: String, name: String },
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Document::deserialize(d)? {
            Document::Object(o) => Ok(o),
            Document::List(_) => Err(de::Error::custom("expected one object, found a List")),
            Document::Unsupported { api_version, kind, .. } => Err(de::Error::custom(format!(
                "kind {kind:?} (apiVersion {api_version:?}) is not one kubesim simulates"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Document {
    /// Reads `apiVersion` and `kind`, then streams the rest of the mapping straight into
    /// the typed struct so that errors keep their line and column. Documents whose
    /// `apiVersion`/`kind` are not the first keys are buffered and still parse, with
    /// errors located at the document.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(DocumentVisitor)
    }
}

struct DocumentVisitor;

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Document;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object (a mapping with apiVersion and kind)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
        let (mut api_version, mut kind): (Option<String>, Option<String>) = (None, None);
        let mut buffered: Vec<(String, serde_json::Value)> = Vec::new();
        while api_version.is_none() || kind.is_none() {
            let Some(key) = map.next_key::<String>()? else { break };
            match key.as_str() {
                "apiVersion" => api_version = Some(map.next_value()?),
                "kind" => kind = Some(map.next_value()?),
                _ => buffered.push((key, map.next_value()?)),
            }
        }
        let api_version = api_version.ok_or_else(|| de::Error::missing_field("apiVersion"))?;
        let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
        if kind == "List" || kind.ends_with("List") && api_version == "v1" {
            return finish::<ListBody, A>(map, buffered).map(|l| Document::List(l.items));
        }
        let Some(k) = Kind::from_type_meta(&api_version, &kind) else {
            // Read the rest so that the name can be reported, then skip the object.
            let rest: serde_json::Map<String, serde_json::Value> = finish(map, buffered)?;
            let name = rest
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_string();
            if Kind::ALL.iter().any(|x| x.as_str() == kind) {
                return Err(de::Error::custom(format!(
                    "apiVersion {api_version:?} is not served for kind {kind}; use {:?}",
                    Kind::ALL
                        .iter()
                        .find(|x| x.as_str() == kind)
                        .map(|x| x.api_version())
                        .unwrap_or_default()
                )));
            }
            return Ok(Document::Unsupported { api_version, kind, name });
        };
        let obj = match k {
            Kind::Namespace => Object::Namespace(finish(map, buffered)?),
            Kind::Node => Object::Node(finish(map, buffered)?),
            Kind::Pod => Object::Pod(finish(map, buffered)?),
            Kind::ReplicaSet => Object::ReplicaSet(finish(map, buffered)?),
            Kind::Deployment => Object::Deployment(finish(map, buffered)?),
            Kind::DaemonSet => Object::DaemonSet(finish(map, buffered)?),
            Kind::StatefulSet => Object::StatefulSet(finish(map, buffered)?),
            Kind::Job => Object::Job(finish(map, buffered)?),
            Kind::Lease => Object::Lease(finish(map, buffered)?),
            Kind::Event => Object::Event(finish(map, buffered)?),
            Kind::PriorityClass => Object::PriorityClass(finish(map, buffered)?),
            Kind::PodDisruptionBudget => Object::PodDisruptionBudget(finish(map, buffered)?),
            Kind::ConfigMap => Object::ConfigMap(finish(map, buffered)?),
            Kind::Secret => Object::Secret(finish(map, buffered)?),
            Kind::PersistentVolume => Object::PersistentVolume(finish(map, buffered)?),
            Kind::PersistentVolumeClaim => Object::PersistentVolumeClaim(finish(map, buffered)?),
            Kind::StorageClass => Object::StorageClass(finish(map, buffered)?),
            Kind::ReplicationController => Object::ReplicationController(finish(map, buffered)?),
            Kind::ServiceAccount => Object::ServiceAccount(finish(map, buffered)?),
        };
        Ok(Document::Object(obj))
    }
}

#[derive(Deserialize)]
struct ListBody {
    #[serde(default)]
    items: Vec<Document>,
    #[serde(default, rename = "metadata")]
    _metadata: serde::de::IgnoredAny,
}

/// Deserializes the rest of `map` as `T`, streaming when nothing was buffered.
fn finish<'de, T: DeserializeOwned, A: MapAccess<'de>>(
    map: A,
    buffered: Vec<(String, serde_json::Value)>,
) -> Result<T, A::Error> {
    if buffered.is_empty() {
        return T::deserialize(de::value::MapAccessDeserializer::new(map));
    }
    let mut all: serde_json::Map<String, serde_json::Value> = buffered.into_iter().collect();
    let rest: serde_json::Map<String, serde_json::Value> =
        Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
    all.extend(rest);
    serde_json::from_value(serde_json::Value::Object(all)).map_err(de::Error::custom)
}
