//! Kubernetes object types, quantities, selectors and manifest parsing.
//!
//! Types follow k8s.io/api field names (camelCase on the wire) and keep the fields the
//! control plane reads or writes; a manifest field outside them is ignored with a warning.

pub mod cluster;
pub mod config;
pub mod manifest;
pub mod meta;
pub mod node;
pub mod object;
pub mod pod;
pub mod pod_scheduling;
pub mod policy;
pub mod quantity;
pub mod scheduling;
pub mod selector;
pub mod storage;
pub mod workloads;

pub use cluster::{
    Event, EventSource, Lease, LeaseSpec, Namespace, ServiceAccount, EVENT_NORMAL, EVENT_WARNING,
};
pub use config::{ConfigMap, Secret};
pub use manifest::{parse_manifests, ManifestError, Manifests};
pub use meta::{ConditionStatus, IntOrString, ObjectMeta, ObjectReference, OwnerReference};
pub use node::{Node, NodeCondition, NodeSpec, NodeStatus};
pub use object::{Document, Kind, Object, ObjectKey};
pub use pod::{
    Container, ContainerStatus, Pod, PodCondition, PodPhase, PodSpec, PodStatus, PodTemplateSpec, Probe,
    ResourceList, Resources, RestartPolicy,
};
pub use policy::{PodDisruptionBudget, PriorityClass};
pub use quantity::Quantity;
pub use scheduling::{Affinity, Taint, TaintEffect, Toleration, TolerationOperator};
pub use selector::{LabelSelector, Selector};
pub use storage::{PersistentVolume, PersistentVolumeClaim, StorageClass};
pub use workloads::{DaemonSet, Deployment, Job, ReplicaSet, ReplicationController, StatefulSet};
