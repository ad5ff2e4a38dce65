//! Node (core/v1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::meta::{ConditionStatus, ObjectMeta};
use super::pod::ResourceList;
use super::scheduling::Taint;
use crate::time::SimTime;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: NodeSpec,
    #[serde(default)]
    pub status: NodeStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unschedulable: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[serde(rename = "podCIDR")]
    pub pod_cidr: String,
    /// The node's pod ranges, `[podCIDR]` on a single-stack cluster (the range allocator
    /// writes both).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[serde(rename = "podCIDRs")]
    pub pod_cidrs: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[serde(rename = "providerID")]
    pub provider_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub capacity: ResourceList,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: ResourceList,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<NodeCondition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<NodeAddress>,
    #[serde(default)]
    pub node_info: NodeSystemInfo,
    /// Volumes the attach/detach controller attached to the node (it alone writes them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_attached: Vec<AttachedVolume>,
    /// Volumes the kubelet mounts or is about to (it alone writes them): the controller
    /// does not detach them until they leave this list, or it gives up waiting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_in_use: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<super::pod_scheduling::ContainerImage>,
    /// Where the node's daemons listen (nodestatus.DaemonEndpoints: the kubelet's port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_endpoints: Option<NodeDaemonEndpoints>,
}

/// `v1.NodeDaemonEndpoints`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeDaemonEndpoints {
    #[serde(default)]
    pub kubelet_endpoint: DaemonEndpoint,
}

/// `v1.DaemonEndpoint`: the JSON name is `Port`, capitalised (types.go).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonEndpoint {
    #[serde(rename = "Port", default)]
    pub port: i32,
}

/// `v1.AttachedVolume`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachedVolume {
    pub name: String,
    #[serde(default)]
    pub device_path: String,
}

/// Node condition types (`v1.NodeConditionType`).
pub mod condition {
    pub const READY: &str = "Ready";
    pub const MEMORY_PRESSURE: &str = "MemoryPressure";
    pub const DISK_PRESSURE: &str = "DiskPressure";
    pub const PID_PRESSURE: &str = "PIDPressure";
    pub const NETWORK_UNAVAILABLE: &str = "NetworkUnavailable";
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<SimTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<SimTime>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAddress {
    #[serde(rename = "type")]
    pub type_: String,
    pub address: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSystemInfo {
    #[serde(default, rename = "machineID", skip_serializing_if = "String::is_empty")]
    pub machine_id: String,
    #[serde(default, rename = "systemUUID", skip_serializing_if = "String::is_empty")]
    pub system_uuid: String,
    #[serde(default, rename = "bootID", skip_serializing_if = "String::is_empty")]
    pub boot_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kubelet_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_runtime_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os_image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kernel_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operating_system: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
}

impl Node {
    pub fn condition(&self, type_: &str) -> Option<&NodeCondition> {
        self.status.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Ready=True.
    pub fn is_ready(&self) -> bool {
        self.condition(condition::READY).is_some_and(|c| c.status == ConditionStatus::True)
    }

    pub fn internal_ip(&self) -> Option<&str> {
        self.status.addresses.iter().find(|a| a.type_ == "InternalIP").map(|a| a.address.as_str())
    }
}
