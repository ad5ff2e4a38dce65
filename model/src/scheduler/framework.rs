//! The scheduling framework's shapes (pkg/scheduler/framework): statuses, the per-pod
//! facts computed once per pod (PodInfo), NodeInfo (the per-node aggregate kept
//! incrementally as pods are assumed, bound and deleted), the listers the plugins read,
//! and CycleState (what PreFilter and PreScore compute for one attempt).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::api::pod_scheduling::PodAffinityTerm;
use crate::api::selector::{LabelSelectorRequirement, SelectorOperator};
use crate::api::storage::{PersistentVolume, PersistentVolumeClaim, StorageClass};
use crate::api::{LabelSelector, Node, Pod, Resources};
use crate::time::SimTime;

/// `framework.Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Code {
    Success,
    /// Preemption may help.
    Unschedulable,
    /// Preemption cannot help on this node.
    UnschedulableAndUnresolvable,
}

/// A filter's verdict with its reasons (one, or several for NodeResourcesFit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    pub plugin: &'static str,
}

impl Status {
    pub fn unschedulable(plugin: &'static str, reasons: Vec<String>) -> Self {
        Status { code: Code::Unschedulable, reasons, plugin }
    }
    pub fn unresolvable(plugin: &'static str, reason: impl Into<String>) -> Self {
        Status { code: Code::UnschedulableAndUnresolvable, reasons: vec![reason.into()], plugin }
    }
}

/// schedutil.DefaultMilliCPURequest: what scoring assumes for a container without requests.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// schedutil.DefaultMemoryRequest (200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Requests of resources beyond cpu, memory, ephemeral-storage and pods (extended
/// resources such as `nvidia.com/gpu`, hugepages): `framework.Resource.ScalarResources`.
pub type ScalarResources = BTreeMap<String, i64>;

fn is_scalar(name: &str) -> bool {
    !matches!(name, "cpu" | "memory" | "ephemeral-storage" | "pods")
}

fn add_scalars(into: &mut ScalarResources, list: &crate::api::ResourceList, sign: i64) {
    for (k, q) in list {
        if is_scalar(k) {
            *into.entry(k.clone()).or_default() += sign * q.value();
        }
    }
}

/// `v1.PodAffinityTerm` with its namespaces resolved and its selector parsed
/// (framework.AffinityTerm).
#[derive(Clone, Debug, PartialEq)]
pub struct AffinityTerm {
    pub namespaces: BTreeSet<String>,
    /// `None`: labels.Nothing() (no namespaceSelector); `Some(empty)`: every namespace.
    pub namespace_selector: Option<LabelSelector>,
    /// `None`: a nil labelSelector, which matches nothing.
    pub selector: Option<LabelSelector>,
    pub topology_key: String,
    pub weight: i32,
}

impl AffinityTerm {
    /// framework.newAffinityTerm: namespaces default to the pod's own; matchLabelKeys and
    /// mismatchLabelKeys merge the pod's label values into the selector (which v1.33's
    /// API server does at admission, MatchLabelKeysInPodAffinity).
    pub fn new(pod: &Pod, term: &PodAffinityTerm, weight: i32) -> AffinityTerm {
        let mut namespaces: BTreeSet<String> = term.namespaces.iter().cloned().collect();
        if namespaces.is_empty() && term.namespace_selector.is_none() {
            namespaces.insert(pod.metadata.namespace.clone());
        }
        let mut selector = term.label_selector.clone();
        if let Some(sel) = &mut selector {
            for (keys, op) in [
                (&term.match_label_keys, SelectorOperator::In),
                (&term.mismatch_label_keys, SelectorOperator::NotIn),
            ] {
                for k in keys {
                    if let Some(v) = pod.metadata.labels.get(k) {
                        sel.match_expressions.push(LabelSelectorRequirement {
                            key: k.clone(),
                            operator: op,
                            values: vec![v.clone()],
                        });
                    }
                }
            }
        }
        AffinityTerm {
            namespaces,
            namespace_selector: term.namespace_selector.clone(),
            selector,
            topology_key: term.topology_key.clone(),
            weight,
        }
    }

    /// `AffinityTerm.Matches`: the pod's namespace is selected and its labels match.
    pub fn matches(&self, pod: &Pod, ns_labels: Option<&BTreeMap<String, String>>) -> bool {
        let ns_ok = self.namespaces.contains(&pod.metadata.namespace)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.is_empty() || ns_labels.is_some_and(|l| s.matches(l)));
        ns_ok && self.selector.as_ref().is_some_and(|s| s.matches(&pod.metadata.labels))
    }
}

/// What the plugins need of a pod, computed once (framework.PodInfo).
#[derive(Clone, Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// namespace/name.
    pub key: String,
    pub requests: Resources,
    pub scalar_requests: ScalarResources,
    /// Requests with upstream's non-zero defaults, for scoring.
    pub non_zero: Resources,
    pub host_ports: Vec<(String, String, i32)>,
    pub priority: i32,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<AffinityTerm>,
    pub preferred_anti_affinity: Vec<AffinityTerm>,
    pub terminating: bool,
    /// The pod's namespace and labels: the key of its [`LabelGroup`] on a node. The
    /// scheduler interns it, so pods with equal labels share one (see [`GroupInterner`]).
    pub group: Arc<GroupKey>,
}

/// A namespace and a label set.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

/// One shared [`GroupKey`] per distinct namespace and label set, so that counting what a
/// selector matches can remember each group's answer across nodes
/// ([`NodeInfo::count_matching_memo`]).
#[derive(Debug, Default)]
pub struct GroupInterner {
    keys: BTreeSet<Arc<GroupKey>>,
}

impl GroupInterner {
    /// The shared key equal to `key`.
    pub fn intern(&mut self, key: &Arc<GroupKey>) -> Arc<GroupKey> {
        if let Some(k) = self.keys.get(&**key) {
            return k.clone();
        }
        // Forget keys no pod holds any more (the interner's own reference is the last).
        if self.keys.len() >= 1024 && self.keys.len().is_power_of_two() {
            self.keys.retain(|k| Arc::strong_count(k) > 1);
        }
        self.keys.insert(key.clone());
        key.clone()
    }
}

/// A per-attempt memo of which groups a selector matches, by shared key. The first
/// groups sit in a short list scanned linearly (a node holds few groups, and the same
/// ones recur node after node), the rest in a map.
#[derive(Clone, Debug, Default)]
pub struct MatchMemo {
    recent: Vec<(usize, bool)>,
    rest: BTreeMap<usize, bool>,
}

/// Groups kept in the memo's linear list.
const MATCH_MEMO_LINEAR: usize = 32;

impl MatchMemo {
    pub fn new() -> Self {
        Self::default()
    }

    /// The answer remembered for `id`, else `matches()` remembered.
    pub fn get_or_insert_with(&mut self, id: usize, matches: impl FnOnce() -> bool) -> bool {
        if let Some(&(_, hit)) = self.recent.iter().find(|(k, _)| *k == id) {
            return hit;
        }
        if self.recent.len() < MATCH_MEMO_LINEAR {
            let hit = matches();
            self.recent.push((id, hit));
            return hit;
        }
        *self.rest.entry(id).or_insert_with(matches)
    }

    fn answers(&self) -> BTreeMap<usize, bool> {
        self.recent.iter().copied().chain(self.rest.iter().map(|(k, v)| (*k, *v))).collect()
    }
}

impl PartialEq for MatchMemo {
    fn eq(&self, other: &Self) -> bool {
        self.answers() == other.answers()
    }
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Self {
        let requests = pod.requests();
        let mut scalar_requests = ScalarResources::new();
        for c in &pod.spec.containers {
            add_scalars(&mut scalar_requests, &c.resources.requests_or_limits(), 1);
        }
        for c in &pod.spec.init_containers {
            let mut one = ScalarResources::new();
            add_scalars(&mut one, &c.resources.requests_or_limits(), 1);
            for (k, v) in one {
                let e = scalar_requests.entry(k).or_default();
                *e = (*e).max(v);
            }
        }
        add_scalars(&mut scalar_requests, &pod.spec.overhead, 1);
        scalar_requests.retain(|_, v| *v != 0);
        let non_zero = non_zero_requests(&pod);
        let host_ports =
            pod.host_ports().map(|(ip, proto, port)| (ip.to_string(), proto.to_string(), port)).collect();
        let priority = pod.spec.priority.unwrap_or(0);
        let (mut ra, mut raa, mut pa, mut paa) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        if let Some(a) = &pod.spec.affinity {
            if let Some(x) = &a.pod_affinity {
                ra = x
                    .required_during_scheduling_ignored_during_execution
                    .iter()
                    .map(|t| AffinityTerm::new(&pod, t, 1))
                    .collect();
                pa = x
                    .preferred_during_scheduling_ignored_during_execution
                    .iter()
                    .filter(|w| w.weight != 0)
                    .map(|w| AffinityTerm::new(&pod, &w.pod_affinity_term, w.weight))
                    .collect();
            }
            if let Some(x) = &a.pod_anti_affinity {
                raa = x
                    .required_during_scheduling_ignored_during_execution
                    .iter()
                    .map(|t| AffinityTerm::new(&pod, t, 1))
                    .collect();
                paa = x
                    .preferred_during_scheduling_ignored_during_execution
                    .iter()
                    .filter(|w| w.weight != 0)
                    .map(|w| AffinityTerm::new(&pod, &w.pod_affinity_term, w.weight))
                    .collect();
            }
        }
        let key = pod_name(&pod);
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let group = Arc::new(GroupKey {
            namespace: pod.metadata.namespace.clone(),
            labels: pod.metadata.labels.clone(),
        });
        PodInfo {
            pod,
            key,
            requests,
            scalar_requests,
            non_zero,
            host_ports,
            priority,
            required_affinity: ra,
            required_anti_affinity: raa,
            preferred_affinity: pa,
            preferred_anti_affinity: paa,
            terminating,
            group,
        }
    }

    /// Shares the group key with other pods of the same namespace and labels.
    pub fn interned(mut self, interner: &mut GroupInterner) -> Self {
        self.group = interner.intern(&self.group);
        self
    }

    /// Has any (anti-)affinity term (`NodeInfo.PodsWithAffinity`).
    pub fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }

    pub fn namespace(&self) -> &str {
        &self.pod.metadata.namespace
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.pod.metadata.labels
    }
}

/// `schedutil.GetNonzeroRequests` summed over containers.
pub fn non_zero_requests(pod: &Pod) -> Resources {
    let mut r = Resources::default();
    for c in &pod.spec.containers {
        let req = c.resources.effective_requests();
        let has_cpu = c.resources.requests.contains_key("cpu") || c.resources.limits.contains_key("cpu");
        let has_mem =
            c.resources.requests.contains_key("memory") || c.resources.limits.contains_key("memory");
        r.milli_cpu += if has_cpu { req.milli_cpu } else { DEFAULT_MILLI_CPU_REQUEST };
        r.memory_bytes += if has_mem { req.memory_bytes } else { DEFAULT_MEMORY_REQUEST };
    }
    r
}

/// Pods of one namespace with the same labels and terminating state: counting the pods
/// a selector matches visits groups, not pods (pods of a ReplicaSet share their labels).
#[derive(Clone, Debug)]
pub struct LabelGroup {
    pub key: Arc<GroupKey>,
    pub terminating: bool,
    pub count: u32,
}

/// `framework.NodeInfo`: the node and what its pods use.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub allocatable: Resources,
    pub allocatable_scalar: ScalarResources,
    pub requested: Resources,
    pub requested_scalar: ScalarResources,
    pub non_zero_requested: Resources,
    pub used_ports: BTreeSet<(String, String, i32)>,
    /// The pods on the node by namespace/name.
    pub pods: BTreeMap<String, Arc<PodInfo>>,
    /// How many of them have (anti-)affinity terms, and required anti-affinity terms.
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    pub label_groups: Vec<LabelGroup>,
    /// Normalized image name -> size (status.images), for ImageLocality.
    pub images: BTreeMap<String, i64>,
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> Self {
        let mut n = NodeInfo {
            node: node.clone(),
            allocatable: Resources::default(),
            allocatable_scalar: ScalarResources::new(),
            requested: Resources::default(),
            requested_scalar: ScalarResources::new(),
            non_zero_requested: Resources::default(),
            used_ports: BTreeSet::new(),
            pods: BTreeMap::new(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
            label_groups: Vec::new(),
            images: BTreeMap::new(),
        };
        n.set_node(node);
        n
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        self.allocatable = Resources::from_list(&node.status.allocatable);
        self.allocatable_scalar.clear();
        add_scalars(&mut self.allocatable_scalar, &node.status.allocatable, 1);
        self.images.clear();
        for img in &node.status.images {
            for name in &img.names {
                self.images.insert(normalized_image_name(name), img.size_bytes);
            }
        }
        self.node = node;
    }

    pub fn add_pod(&mut self, p: &Arc<PodInfo>) {
        if self.pods.insert(p.key.clone(), p.clone()).is_some() {
            debug_assert!(false, "pod {} added twice to {}", p.key, self.name());
        }
        self.requested.add(&p.requests);
        self.requested.pods += 1;
        for (k, v) in &p.scalar_requests {
            *self.requested_scalar.entry(k.clone()).or_default() += v;
        }
        self.non_zero_requested.add(&p.non_zero);
        self.used_ports.extend(p.host_ports.iter().cloned());
        if p.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if !p.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        self.group_count(p, 1);
    }

    pub fn remove_pod(&mut self, p: &PodInfo) {
        let Some(stored) = self.pods.remove(&p.key) else { return };
        let p = &*stored;
        self.requested.sub(&p.requests);
        self.requested.pods -= 1;
        for (k, v) in &p.scalar_requests {
            *self.requested_scalar.entry(k.clone()).or_default() -= v;
        }
        self.non_zero_requested.sub(&p.non_zero);
        for port in &p.host_ports {
            self.used_ports.remove(port);
        }
        if p.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !p.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        self.group_count(p, -1);
    }

    fn group_count(&mut self, p: &PodInfo, delta: i32) {
        let terminating = p.terminating;
        match self
            .label_groups
            .iter_mut()
            .position(|g| g.terminating == terminating && (Arc::ptr_eq(&g.key, &p.group) || g.key == p.group))
        {
            Some(i) => {
                let g = &mut self.label_groups[i];
                g.count = (g.count as i32 + delta) as u32;
                if g.count == 0 {
                    self.label_groups.swap_remove(i);
                }
            }
            None if delta > 0 => {
                self.label_groups.push(LabelGroup { key: p.group.clone(), terminating, count: delta as u32 })
            }
            None => {}
        }
    }

    /// podtopologyspread countPodsMatchSelector: pods of `namespace` matching, terminating
    /// pods left out (#87621).
    pub fn count_matching(&self, namespace: &str, selector: &LabelSelector) -> i64 {
        self.count_matching_memo(namespace, selector, &mut MatchMemo::new())
    }

    /// [`Self::count_matching`] remembering each shared group's answer in `memo` (one
    /// memo per namespace and selector): interned groups are matched once an attempt,
    /// not once a node.
    pub fn count_matching_memo(
        &self,
        namespace: &str,
        selector: &LabelSelector,
        memo: &mut MatchMemo,
    ) -> i64 {
        let mut n = 0;
        for g in self.label_groups.iter().filter(|g| !g.terminating) {
            let id = Arc::as_ptr(&g.key) as usize;
            let hit = memo
                .get_or_insert_with(id, || g.key.namespace == namespace && selector.matches(&g.key.labels));
            if hit {
                n += g.count as i64;
            }
        }
        n
    }

    pub fn name(&self) -> &str {
        &self.node.metadata.name
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.node.metadata.labels
    }
}

/// imagelocality normalizedImageName: a name without a tag gets `:latest`.
pub fn normalized_image_name(name: &str) -> String {
    let last = |c: char| name.rfind(c).map_or(-1, |i| i as i64);
    if last(':') <= last('/') {
        format!("{name}:latest")
    } else {
        name.to_string()
    }
}

pub fn pod_name(p: &Pod) -> String {
    format!("{}/{}", p.metadata.namespace, p.metadata.name)
}

/// What the plugins read besides nodes: namespace labels (affinity namespaceSelector) and
/// the ReplicaSets and StatefulSets whose selectors make PodTopologySpread's default
/// constraints (helper.DefaultSelector).
#[derive(Clone, Debug, Default)]
pub struct Listers {
    pub namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// (kind, namespace, name) -> selector.
    pub owner_selectors: BTreeMap<(String, String, String), LabelSelector>,
    /// PodDisruptionBudgets, for preemption.
    pub pdbs: BTreeMap<(String, String), Arc<crate::api::PodDisruptionBudget>>,
    /// PersistentVolumeClaims by (namespace, name), PersistentVolumes and StorageClasses by
    /// name, as the informers last showed them (VolumeBinding).
    pub pvcs: BTreeMap<(String, String), Arc<PersistentVolumeClaim>>,
    pub pvs: BTreeMap<String, Arc<PersistentVolume>>,
    pub storage_classes: BTreeMap<String, Arc<StorageClass>>,
    /// The binder's assume caches (pkg/scheduler/util/assumecache): volumes and claims as
    /// a binding cycle in flight wrote them, until the informer shows a newer version.
    pub assumed_pvs: BTreeMap<String, Arc<PersistentVolume>>,
    pub assumed_pvcs: BTreeMap<(String, String), Arc<PersistentVolumeClaim>>,
}

impl Listers {
    /// A claim, assumed version first.
    pub fn pvc(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        let key = (namespace.to_string(), name.to_string());
        self.assumed_pvcs.get(&key).or_else(|| self.pvcs.get(&key)).cloned()
    }

    /// A volume, assumed version first.
    pub fn pv(&self, name: &str) -> Option<Arc<PersistentVolume>> {
        self.assumed_pvs.get(name).or_else(|| self.pvs.get(name)).cloned()
    }

    /// The binder's pvCache.ListPVs(class): the volumes of a class, assumed versions first.
    pub fn volumes_of_class<'a>(&'a self, class: &'a str) -> impl Iterator<Item = &'a PersistentVolume> + 'a {
        self.pvs
            .iter()
            .map(|(n, pv)| &**self.assumed_pvs.get(n).unwrap_or(pv))
            .filter(move |pv| crate::api::storage::volume_binding::volume_class(pv) == class)
    }

    /// helper.DefaultSelector without Services (kubesim does not simulate them): the
    /// selector of the pod's controlling ReplicaSet or StatefulSet; `None` when empty.
    pub fn default_selector(&self, pod: &Pod) -> Option<LabelSelector> {
        let owner = pod.metadata.controller_of()?;
        if !matches!(owner.kind.as_str(), "ReplicaSet" | "StatefulSet" | "ReplicationController") {
            return None;
        }
        let key = (owner.kind.clone(), pod.metadata.namespace.clone(), owner.name.clone());
        self.owner_selectors.get(&key).filter(|s| !s.is_empty()).cloned()
    }
}

/// Pods nominated to nodes by preemption (status.nominatedNodeName), by node: the
/// framework counts those of equal or higher priority as already there
/// (RunFilterPluginsWithNominatedPods).
pub type Nominated = BTreeMap<String, Vec<Arc<PodInfo>>>;

/// Pod start time for preemption's ordering (util.GetPodStartTime: now if not started).
pub fn pod_start_time(p: &Pod, now: SimTime) -> SimTime {
    p.status.start_time.unwrap_or(now)
}
