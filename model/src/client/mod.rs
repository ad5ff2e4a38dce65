//! The client side of the API: requests, results, watch events, informer caches and the
//! event recorder, shared by every component that talks to the API server.
//!
//! Components are reconcilers (kube-rs `runtime` style): informers feed watch events into
//! a [`Cache`]; `tick` reads the cache and returns the API requests it wants plus its next
//! wake-up. The driver in kubesim-sim carries requests to the API server and responses back.

pub mod connection;
pub mod events;
pub mod process;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use connection::{ApiConnection, ClientRate, ClientRates, Delivery, TokenBucket, DEFAULT_CLIENT};
pub use process::{ClientProcess, Kubectl, STARTUP_DELAY};

use rand_chacha::ChaCha8Rng;

use crate::api::{Event, Kind, Object, ObjectKey, ObjectMeta, ObjectReference, Selector, EVENT_NORMAL};
use crate::time::SimTime;

/// A request to the API server.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiRequest {
    /// POST. `metadata.generateName` is honoured when `name` is empty.
    Create(Object),
    /// PUT. Conflicts when `metadata.resourceVersion` is set and is not the stored one.
    Update(Object),
    /// PUT to the `/status` subresource: only `status` is taken from the object.
    UpdateStatus(Object),
    /// DELETE. Pods bound to a node get a graceful deletion (deletionTimestamp) unless
    /// `grace_period_seconds` is `Some(0)`.
    Delete { key: ObjectKey, grace_period_seconds: Option<i64>, precondition_uid: Option<String> },
    /// POST pods/binding.
    Bind { namespace: String, name: String, uid: String, node: String },
    /// GET (a quorum read).
    Get(ObjectKey),
    /// PATCH: a change the API server applies to the current object, retrying on a
    /// conflicting write (strategic-merge patches, and client-go's get-modify-update loops
    /// under `RetryOnConflict`).
    Patch { key: ObjectKey, patch: Patch },
    /// POST pods/eviction (policy/v1 Eviction): deletes the pod unless a
    /// PodDisruptionBudget would be violated (429 TooManyRequests).
    Evict { namespace: String, name: String, grace_period_seconds: Option<i64> },
}

/// A change applied against the object the server holds now.
#[derive(Clone, Debug, PartialEq)]
pub enum Patch {
    /// Node taints (`AddOrUpdateTaintOnNode` / `RemoveTaintOffNode`, controller_utils.go):
    /// drop the taints matching `remove` by key and effect, then add `add`, each replacing
    /// a taint with its key and effect.
    NodeTaints { add: Vec<crate::api::Taint>, remove: Vec<crate::api::Taint> },
    /// Pod status (`PatchPodStatus`): conditions set as `UpdatePodCondition` does (the
    /// transition time moves only when the status changes), and optionally the phase.
    PodStatus { conditions: Vec<crate::api::PodCondition>, phase: Option<crate::api::PodPhase> },
    /// Node `status.volumesAttached`, as the attach/detach controller's node status
    /// updater patches it (statusupdater/node_status_updater.go): the whole list.
    NodeVolumesAttached { volumes: Vec<crate::api::node::AttachedVolume> },
    /// Node `spec.podCIDR` and `spec.podCIDRs` (nodeutil.PatchNodeCIDRs, node IPAM).
    NodePodCidrs { cidrs: Vec<String> },
    /// Adoption by a controller (controller_ref_manager.go AdoptPod/AdoptReplicaSet: the
    /// strategic-merge patch `{"metadata":{"ownerReferences":[<controllerRef>],"uid":<uid>}}`):
    /// the reference merged into `metadata.ownerReferences` by uid, if the object's uid
    /// is still `uid`.
    AdoptByController { owner: crate::api::OwnerReference, uid: String },
    /// Release by a controller (ReleasePod/ReleaseReplicaSet: `{"metadata":{"ownerReferences":
    /// [{"$patch":"delete","uid":<owner uid>}],"uid":<uid>}}`): the reference with
    /// `owner_uid` removed, if the object's uid is still `uid`.
    ReleaseFromController { owner_uid: String, uid: String },
}

impl Patch {
    /// A patch of the status subresource (`PatchPodStatus`, the node status updater):
    /// the status strategies keep the spec, so the object's validation does not run.
    pub fn is_status(&self) -> bool {
        matches!(self, Patch::PodStatus { .. } | Patch::NodeVolumesAttached { .. })
    }
}

impl ApiRequest {
    /// The verb as audit logs and traces name it.
    pub fn verb(&self) -> &'static str {
        match self {
            ApiRequest::Create(_) | ApiRequest::Bind { .. } | ApiRequest::Evict { .. } => "create",
            ApiRequest::Update(_) | ApiRequest::UpdateStatus(_) => "update",
            ApiRequest::Patch { .. } => "patch",
            ApiRequest::Delete { .. } => "delete",
            ApiRequest::Get(_) => "get",
        }
    }
}

/// An API error as `metav1.Status` carries it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    /// `metav1.StatusReason`: NotFound, AlreadyExists, Conflict, Invalid, Forbidden,
    /// Expired (410 Gone), ServiceUnavailable, Timeout, InternalError.
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    /// `apierrors.NewNotFound`: `pods "web-1" not found`.
    pub fn not_found(kind: Kind, name: &str) -> Self {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("{} \"{name}\" not found", kind.qualified_resource()),
        }
    }
    /// `apierrors.NewAlreadyExists`: `pods "web-1" already exists`.
    pub fn already_exists(kind: Kind, name: &str) -> Self {
        ApiError {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{} \"{name}\" already exists", kind.qualified_resource()),
        }
    }
    /// `apierrors.NewConflict` with storage's OptimisticLockErrorMsg.
    pub fn conflict(kind: Kind, name: &str) -> Self {
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                kind.qualified_resource()
            ),
        }
    }
    pub fn invalid(kind: Kind, name: &str, detail: &str) -> Self {
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!(
                "{} \"{name}\" is invalid: {detail}",
                crate::apiserver::validation::group_kind(kind)
            ),
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.reason == "NotFound"
    }
    pub fn is_conflict(&self) -> bool {
        self.reason == "Conflict"
    }
    pub fn is_already_exists(&self) -> bool {
        self.reason == "AlreadyExists"
    }
}

pub type ApiResult = Result<Arc<Object>, ApiError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchEventType {
    Added,
    Modified,
    Deleted,
}

/// One change seen by a watch. For `Deleted`, `object` is the last state.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    pub type_: WatchEventType,
    pub object: Arc<Object>,
}

/// What a watch asks for: one kind, optionally one namespace, a label selector and the
/// field selectors the control plane uses (`spec.nodeName=` for kubelets' pods,
/// `metadata.name=` for a kubelet's own Node).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WatchSpec {
    pub kind: Option<Kind>,
    pub namespace: Option<String>,
    pub label_selector: Option<Selector>,
    pub node_name: Option<String>,
    pub name: Option<String>,
}

impl WatchSpec {
    pub fn kind(kind: Kind) -> Self {
        WatchSpec { kind: Some(kind), ..Default::default() }
    }

    /// Does an object pass this watch's filters?
    pub fn matches(&self, o: &Object) -> bool {
        if self.kind.is_some_and(|k| k != o.kind()) {
            return false;
        }
        let m = o.meta();
        if self.namespace.as_ref().is_some_and(|ns| *ns != m.namespace) {
            return false;
        }
        if self.name.as_ref().is_some_and(|n| *n != m.name) {
            return false;
        }
        if let Some(node) = &self.node_name {
            match o.as_pod() {
                Some(p) if p.spec.node_name == *node => {}
                _ => return false,
            }
        }
        self.label_selector.as_ref().is_none_or(|s| s.matches(&m.labels))
    }
}

/// An informer's store: the latest state of every object its watches delivered, with an
/// index by controller owner uid (client-go's indexers), so that a controller finds its
/// pods without scanning the namespace.
#[derive(Clone, Debug, Default)]
pub struct Cache {
    by_kind: BTreeMap<Kind, KindStore>,
    by_controller: BTreeMap<String, std::collections::BTreeSet<ObjectKey>>,
    /// Pods by `spec.nodeName` (client-go's `spec.nodeName` indexer).
    pods_by_node: BTreeMap<String, std::collections::BTreeSet<(String, String)>>,
}

/// The objects of one kind by namespace, then name: the order of (namespace, name), and
/// a lookup by `&str` (no key to build, the namespace compared once per level).
#[derive(Clone, Debug, Default)]
struct KindStore {
    namespaces: BTreeMap<String, BTreeMap<String, Arc<Object>>>,
    len: usize,
}

impl KindStore {
    fn get(&self, namespace: &str, name: &str) -> Option<&Arc<Object>> {
        self.namespaces.get(namespace)?.get(name)
    }

    fn values(&self) -> impl Iterator<Item = &Arc<Object>> {
        self.namespaces.values().flat_map(|m| m.values())
    }

    /// Stores the object under its namespace and name unless `stale` says the stored one
    /// must stay: `Err(stored)` then, else `Ok` with the object replaced, if any. One
    /// search per level; a name is copied only when new.
    fn insert_unless(
        &mut self,
        object: &Arc<Object>,
        stale: impl Fn(&Object) -> bool,
    ) -> Result<Option<Arc<Object>>, Arc<Object>> {
        let m = object.meta();
        let names = match self.namespaces.get_mut(m.namespace.as_str()) {
            Some(names) => names,
            None => self.namespaces.entry(m.namespace.clone()).or_default(),
        };
        match names.get_mut(m.name.as_str()) {
            Some(slot) if stale(slot) => Err(slot.clone()),
            Some(slot) => Ok(Some(std::mem::replace(slot, object.clone()))),
            None => {
                names.insert(m.name.clone(), object.clone());
                self.len += 1;
                Ok(None)
            }
        }
    }

    fn insert(&mut self, object: &Arc<Object>) -> Option<Arc<Object>> {
        self.insert_unless(object, |_| false).unwrap_or_else(|_| unreachable!("never stale"))
    }

    fn remove(&mut self, namespace: &str, name: &str) -> Option<Arc<Object>> {
        let names = self.namespaces.get_mut(namespace)?;
        let old = names.remove(name);
        if names.is_empty() {
            self.namespaces.remove(namespace);
        }
        self.len -= usize::from(old.is_some());
        old
    }
}

/// Objects by kind, namespace and name, iterated in [`ObjectKey`] order and looked up
/// without building a key.
#[derive(Clone, Debug, Default)]
pub struct ObjectMap {
    kinds: BTreeMap<Kind, KindStore>,
}

impl ObjectMap {
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Arc<Object>> {
        self.kinds.get(&kind)?.get(namespace, name)
    }

    /// Stores the object under its kind, namespace and name; returns the one it replaces.
    pub fn insert(&mut self, object: &Arc<Object>) -> Option<Arc<Object>> {
        self.kinds.entry(object.kind()).or_default().insert(object)
    }

    pub fn remove(&mut self, kind: Kind, namespace: &str, name: &str) -> Option<Arc<Object>> {
        self.kinds.get_mut(&kind)?.remove(namespace, name)
    }

    /// Every object in [`ObjectKey`] order.
    pub fn values(&self) -> impl Iterator<Item = &Arc<Object>> {
        self.kinds.values().flat_map(KindStore::values)
    }

    pub fn clear(&mut self) {
        self.kinds.clear();
    }
}

impl Cache {
    /// Applies one watch event; returns the previous state of the object, if any.
    pub fn apply(&mut self, ev: &WatchEvent) -> Option<Arc<Object>> {
        let m = ev.object.meta();
        let store = self.by_kind.entry(ev.object.kind()).or_default();
        let old = match ev.type_ {
            WatchEventType::Deleted => store.remove(&m.namespace, &m.name),
            // Never go back in resourceVersion (an old event replayed after a relist).
            _ => match store.insert_unless(&ev.object, |stored| {
                stored.meta().resource_version > m.resource_version && stored.meta().uid == m.uid
            }) {
                Ok(old) => old,
                Err(stored) => return Some(stored),
            },
        };
        let deleted = ev.type_ == WatchEventType::Deleted;
        if ev.object.kind() == Kind::Pod {
            fn node(o: &Object) -> Option<&str> {
                o.as_pod().map(|p| p.spec.node_name.as_str()).filter(|n| !n.is_empty())
            }
            let was = old.as_deref().and_then(node);
            let is = if deleted { None } else { node(&ev.object) };
            if was != is {
                let k = (m.namespace.clone(), m.name.clone());
                if let Some(n) = was {
                    if let Some(set) = self.pods_by_node.get_mut(n) {
                        set.remove(&k);
                        if set.is_empty() {
                            self.pods_by_node.remove(n);
                        }
                    }
                }
                if let Some(n) = is {
                    match self.pods_by_node.get_mut(n) {
                        Some(set) => set.insert(k),
                        None => self.pods_by_node.entry(n.to_string()).or_default().insert(k),
                    };
                }
            }
        }
        fn owner(o: &Object) -> Option<&str> {
            o.meta().controller_of().map(|r| r.uid.as_str())
        }
        let was = old.as_deref().and_then(owner);
        let is = if deleted { None } else { owner(&ev.object) };
        if was != is {
            if let Some(u) = was {
                if let Some(set) = self.by_controller.get_mut(u) {
                    set.remove(&ev.object.key());
                    if set.is_empty() {
                        self.by_controller.remove(u);
                    }
                }
            }
            if let Some(u) = is {
                match self.by_controller.get_mut(u) {
                    Some(set) => set.insert(ev.object.key()),
                    None => self.by_controller.entry(u.to_string()).or_default().insert(ev.object.key()),
                };
            }
        }
        old
    }

    /// Objects whose controller owner reference has this uid.
    pub fn controlled_by<'a>(&'a self, uid: &str) -> impl Iterator<Item = &'a Arc<Object>> + 'a {
        self.by_controller.get(uid).into_iter().flatten().filter_map(move |k| self.get(k))
    }

    /// Pods bound to a node, by namespace and name.
    pub fn pods_on_node<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a Arc<Object>> + 'a {
        let pods = self.by_kind.get(&Kind::Pod);
        self.pods_by_node.get(node).into_iter().flatten().filter_map(move |(ns, name)| pods?.get(ns, name))
    }

    pub fn get(&self, key: &ObjectKey) -> Option<&Arc<Object>> {
        self.by_kind.get(&key.kind)?.get(&key.namespace, &key.name)
    }

    /// Every object of a kind, ordered by namespace then name.
    pub fn list(&self, kind: Kind) -> impl Iterator<Item = &Arc<Object>> {
        self.by_kind.get(&kind).into_iter().flat_map(|m| m.values())
    }

    /// Objects of a kind in one namespace.
    pub fn list_namespace<'a>(
        &'a self,
        kind: Kind,
        ns: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Object>> + 'a {
        self.by_kind.get(&kind).and_then(|m| m.namespaces.get(ns)).into_iter().flat_map(|m| m.values())
    }

    pub fn len(&self, kind: Kind) -> usize {
        self.by_kind.get(&kind).map_or(0, |m| m.len)
    }

    pub fn is_empty(&self) -> bool {
        self.by_kind.values().all(|m| m.len == 0)
    }

    /// Forgets everything (a process restart or a relist).
    pub fn clear(&mut self) {
        self.by_kind.clear();
        self.by_controller.clear();
        self.pods_by_node.clear();
    }
}

/// A request with the tag its sender uses to match the response.
#[derive(Clone, Debug, PartialEq)]
pub struct Tagged {
    pub tag: u64,
    pub request: ApiRequest,
}

/// What a component's `tick` returns.
#[derive(Debug, Default)]
pub struct Output {
    pub requests: Vec<Tagged>,
    /// When to call `tick` again even if nothing arrives.
    pub wake_at: Option<SimTime>,
    /// Facts for the trace (the driver writes them with the time of the tick).
    pub records: Vec<Record>,
}

/// A component's own trace record: what it decided and why, beyond the writes it sends.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// kube-scheduler: one scheduling attempt (crate::scheduler::attempt).
    SchedulingAttempt(Arc<crate::scheduler::attempt::SchedulingAttempt>),
}

impl Output {
    pub fn wake_no_later_than(&mut self, t: SimTime) {
        self.wake_at = Some(self.wake_at.map_or(t, |w| w.min(t)));
    }
}

/// A control-plane or node component driven by the simulator.
///
/// The driver calls `watches` once at start (and again after a restart), feeds every
/// watch event to `on_event`, every response to `on_response`, then calls `tick` after
/// each batch of inputs and at the wake-up time `tick` asked for.
pub trait Component: Send {
    /// A short name for traces: `kube-scheduler`, `kubelet`, ...
    fn name(&self) -> &str;
    fn watches(&self) -> Vec<WatchSpec>;
    fn on_event(&mut self, ev: &WatchEvent, now: SimTime);
    fn on_response(&mut self, _tag: u64, _result: &ApiResult, _now: SimTime) {}
    /// The host changed under the component (a fault); only node components care.
    fn on_host(&mut self, _host: &crate::host::HostState, _now: SimTime) {}
    /// Changes whenever `watches` would answer differently: the driver registers the
    /// new watches (new informers list again).
    fn watch_generation(&self) -> u64 {
        0
    }
    /// Every watch has listed (after a registration or a relist): informers have synced.
    fn on_synced(&mut self, _now: SimTime) {}
    /// Which of the process's clients (each with its own token bucket) sends a request
    /// this component asked for with `tag`: see [`ClientRates`].
    fn client_of(&self, _tag: u64, _request: &ApiRequest) -> &'static str {
        DEFAULT_CLIENT
    }
    fn tick(&mut self, now: SimTime, rng: &mut ChaCha8Rng) -> Output;
}

/// Creates Events as client-go's `record.EventRecorder` does; the process's event
/// correlator ([`events::EventCorrelator`]) de-duplicates, aggregates and rate-limits them.
#[derive(Debug, Default)]
pub struct EventRecorder {
    component: String,
    host: String,
    created: u64,
}

impl EventRecorder {
    pub fn new(component: impl Into<String>, host: impl Into<String>) -> Self {
        EventRecorder { component: component.into(), host: host.into(), created: 0 }
    }

    /// Builds the request recording `reason`/`message` on `involved`: a new Event (record
    /// /event.go makeEvent). The process's [`events::EventCorrelator`] then counts it on an
    /// earlier identical one, aggregates it, or drops it as spam.
    /// `type_` is [`EVENT_NORMAL`] or [`crate::api::EVENT_WARNING`].
    pub fn record(
        &mut self,
        involved: &Object,
        type_: &str,
        reason: &str,
        message: &str,
        now: SimTime,
    ) -> ApiRequest {
        let m = involved.meta();
        // Event names are `<object>.<unix nanos in hex>` (makeEvent). Simulated time has
        // millisecond resolution; the sub-millisecond digits keep names unique between
        // recorders and between events of one millisecond.
        let salt = self
            .component
            .bytes()
            .chain(self.host.bytes())
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        self.created += 1;
        let sub_ms = (salt % 1000) * 1000 + self.created % 1000;
        let nanos = (crate::time::EPOCH_UNIX_SECONDS as u128 * 1_000_000_000)
            + now.as_millis() as u128 * 1_000_000
            + sub_ms as u128;
        let namespace = if m.namespace.is_empty() { "default".to_string() } else { m.namespace.clone() };
        let ev = Event {
            metadata: ObjectMeta { name: format!("{}.{:x}", m.name, nanos), namespace, ..Default::default() },
            involved_object: ObjectReference {
                kind: involved.kind().as_str().to_string(),
                namespace: m.namespace.clone(),
                name: m.name.clone(),
                uid: m.uid.clone(),
                api_version: involved.kind().api_version().to_string(),
                resource_version: m.resource_version.to_string(),
                field_path: String::new(),
            },
            reason: reason.to_string(),
            message: message.to_string(),
            source: crate::api::EventSource { component: self.component.clone(), host: self.host.clone() },
            first_timestamp: Some(now),
            last_timestamp: Some(now),
            count: 1,
            type_: if type_.is_empty() { EVENT_NORMAL.to_string() } else { type_.to_string() },
            reporting_component: self.component.clone(),
            reporting_instance: if self.host.is_empty() { self.component.clone() } else { self.host.clone() },
        };
        ApiRequest::Create(Object::Event(ev))
    }

    /// Nothing to forget: the correlator's caches are bounded (LRU of 4096 keys each).
    pub fn forget(&mut self, _involved: &ObjectKey) {}
}
