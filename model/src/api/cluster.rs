//! Namespace (core/v1), Lease (coordination.k8s.io/v1) and Event (core/v1).

use serde::{Deserialize, Serialize};

use super::meta::{ObjectMeta, ObjectReference};
use crate::time::SimTime;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub status: NamespaceStatus,
}

/// A ServiceAccount (core/v1): the identity pods run as. The serviceaccounts controller
/// keeps a `default` one in every namespace; the ServiceAccount admission plugin refuses
/// a pod naming one that does not exist. `secrets` and `imagePullSecrets` are kept as
/// written in `extra`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccount {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    #[serde(flatten)]
    pub extra: super::pod::Extra,
}

/// serviceaccount admission DefaultServiceAccountName.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceStatus {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phase: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: LeaseSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_duration_seconds: Option<i32>,
    /// `metav1.MicroTime`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::micro_time")]
    pub acquire_time: Option<SimTime>,
    /// `metav1.MicroTime`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::micro_time")]
    pub renew_time: Option<SimTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_transitions: Option<i32>,
}

/// Event types (`v1.EventTypeNormal`, `v1.EventTypeWarning`).
pub const EVENT_NORMAL: &str = "Normal";
pub const EVENT_WARNING: &str = "Warning";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub involved_object: ObjectReference,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default)]
    pub source: EventSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_timestamp: Option<SimTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timestamp: Option<SimTime>,
    #[serde(default)]
    pub count: i32,
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_component: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub component: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
}
