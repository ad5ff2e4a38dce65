//! `kubesim import FILE... -o scenario.yaml`: a scenario from what
//! `kubectl get nodes,deployments,statefulsets,daemonsets,jobs,pods,pvc,pv,storageclasses,priorityclasses,pdb -A -o yaml`
//! prints (a `kind: List`, or several documents).
//!
//! - StorageClasses are kept; claims and volumes are kept with the bindings the
//!   controllers made undone (they are made again) and dynamically provisioned volumes
//!   dropped (provisioned again); a user's pre-binding stays.
//!
//! - Nodes become node pools, grouped by capacity, allocatable, zone, instance type, pool
//!   label and taints; a pool keeps the labels its nodes share. Allocatable comes back as
//!   `kubeReserved` (capacity minus allocatable minus the kubelet's default hard eviction
//!   thresholds, which kubesim holds back too). Control-plane nodes become control-plane
//!   hosts (kubesim runs their components itself).
//! - Controllers (Deployment, StatefulSet, DaemonSet, Job, and ReplicaSets no Deployment
//!   owns) become workloads with the fields a server sets stripped (uid, resourceVersion,
//!   generation, creationTimestamp, managedFields, status, owner references, the Job
//!   selector the API server generated).
//! - Pods a controller in the snapshot owns are left to it; pods whose controller is gone
//!   are dropped, as the garbage collector would delete them; Terminating pods are not
//!   revived; finished bare pods are not re-run; mirror (static) pods are the control
//!   plane's own. Other bare pods are kept, unbound (the scheduler places them again).
//! - Every drop is listed with its reason, and the scenario expects each workload to reach
//!   the snapshot's replicas.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kubesim_model::api::Quantity;
use serde_yaml::{Mapping, Value};

/// What `kubesim import` produced.
#[derive(Clone, Debug, Default)]
pub struct Imported {
    /// The scenario file's text.
    pub scenario: String,
    /// What was imported, one line each.
    pub imported: Vec<String>,
    /// What was dropped or changed, and why, one line each.
    pub dropped: Vec<String>,
}

impl Imported {
    pub fn summary(&self) -> String {
        let mut s = String::from("imported:\n");
        for l in &self.imported {
            s += &format!("  {l}\n");
        }
        if !self.dropped.is_empty() {
            s += "dropped or changed:\n";
            for l in &self.dropped {
                s += &format!("  {l}\n");
            }
        }
        s
    }
}

/// Import options.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub name: String,
    /// How long the scenario runs (a Go duration).
    pub duration: String,
}

/// Labels the kubelet sets on its own Node (kubesim's kubelet sets them too).
const KUBELET_LABELS: [&str; 3] = ["kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch"];
/// Labels that name a node's pool on managed clusters (EKS, GKE, AKS, Karpenter).
const POOL_LABELS: [&str; 5] = [
    "eks.amazonaws.com/nodegroup",
    "cloud.google.com/gke-nodepool",
    "kubernetes.azure.com/agentpool",
    "agentpool",
    "karpenter.sh/nodepool",
];
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
const INSTANCE_TYPE_LABEL: &str = "node.kubernetes.io/instance-type";
/// kubelet's default hard eviction thresholds (pkg/kubelet/eviction/defaults_linux.go:
/// memory.available 100Mi, nodefs.available 10%), held back from allocatable.
const HARD_EVICTION_MEMORY_BYTES: i64 = 100 << 20;
const HARD_EVICTION_NODEFS_PERCENT: i64 = 10;
/// Annotations a server or a client tool writes, not the author.
const SERVER_ANNOTATIONS: [&str; 3] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "deprecated.daemonset.template.generation",
];
/// Labels the Job controller adds to its selector and template (batch/v1 Job defaulting).
const JOB_LABELS: [&str; 4] =
    ["controller-uid", "batch.kubernetes.io/controller-uid", "job-name", "batch.kubernetes.io/job-name"];
/// Namespaces every cluster has (the API server creates them).
const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];
/// Kinds kubesim runs as workloads.
const WORKLOAD_KINDS: [&str; 5] = ["Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"];

/// One object of the snapshot, with where it came from.
#[derive(Clone, Debug)]
struct Obj {
    v: Value,
    kind: String,
    namespace: String,
    name: String,
}

impl Obj {
    fn id(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
    fn get(&self, path: &[&str]) -> Option<&Value> {
        get(&self.v, path)
    }
    fn str(&self, path: &[&str]) -> String {
        self.get(path).and_then(Value::as_str).unwrap_or_default().to_string()
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn get_mut<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, k| v.get_mut(*k))
}

fn remove(v: &mut Value, path: &[&str]) -> Option<Value> {
    let (last, parent) = path.split_last()?;
    get_mut(v, parent)?.as_mapping_mut()?.remove(*last)
}

/// Reads the files: each a YAML stream of objects or `List`s.
pub fn read_files(paths: &[PathBuf]) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).map_err(|e| {
                let at = e.location().map_or(String::new(), |l| format!(":{}:{}", l.line(), l.column()));
                format!("{}{at}: not YAML: {e} (give what `kubectl get ... -o yaml` prints)", p.display())
            })?;
            flatten(v, &mut out);
        }
    }
    Ok(out)
}

/// `kind: List` (and `*List`) items, in order.
fn flatten(v: Value, out: &mut Vec<Value>) {
    let is_list = v.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"));
    match (is_list, v) {
        (true, Value::Mapping(mut m)) => {
            if let Some(Value::Sequence(items)) = m.remove("items") {
                for i in items {
                    flatten(i, out);
                }
            }
        }
        (_, Value::Null) => {}
        (_, v) => out.push(v),
    }
}

/// Imports the files into a scenario.
pub fn import_files(paths: &[PathBuf], opts: &ImportOptions) -> Result<Imported, String> {
    let docs = read_files(paths)?;
    let sources = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    import(docs, opts, &sources)
}

/// Imports snapshot objects into a scenario.
pub fn import(docs: Vec<Value>, opts: &ImportOptions, sources: &str) -> Result<Imported, String> {
    let mut out = Imported::default();
    let mut objs = Vec::new();
    for (i, v) in docs.into_iter().enumerate() {
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
        if kind.is_empty() {
            return Err(format!("object {} has no kind: give what `kubectl get ... -o yaml` prints", i + 1));
        }
        let o = Obj {
            namespace: get(&v, &["metadata", "namespace"]).and_then(Value::as_str).unwrap_or_default().into(),
            name: get(&v, &["metadata", "name"]).and_then(Value::as_str).unwrap_or_default().into(),
            kind,
            v,
        };
        objs.push(o);
    }
    let by_kind = |k: &str| objs.iter().filter(|o| o.kind == k).cloned().collect::<Vec<_>>();
    let nodes = by_kind("Node");
    let (pools, control_plane) = node_pools(&nodes, &mut out);
    let present: BTreeSet<(String, String, String)> =
        objs.iter().map(|o| (o.kind.clone(), o.namespace.clone(), o.name.clone())).collect();
    let mut workloads: Vec<Obj> = Vec::new();
    let mut namespaces: BTreeSet<String> = BTreeSet::new();
    let mut kept_config: Vec<Obj> = Vec::new();
    let mut skipped_kinds: BTreeMap<String, usize> = BTreeMap::new();
    for o in &objs {
        match o.kind.as_str() {
            "Node" | "Pod" => {}
            "Namespace" => {
                namespaces.insert(o.name.clone());
            }
            k if WORKLOAD_KINDS.contains(&k) => {
                if let Some(w) = workload(o, &present, &mut out) {
                    workloads.push(w);
                }
            }
            // The API server creates the two system classes itself (bootstrap priority
            // classes, pkg/apis/scheduling/types.go SystemPriorityClasses).
            "PriorityClass" if o.name.starts_with("system-") => {
                out.dropped.push(format!("PriorityClass {}: built into the API server; skipped", o.name));
            }
            "ConfigMap" | "Secret" | "PriorityClass" | "PodDisruptionBudget" => {
                if o.kind == "ConfigMap" && o.name == "kube-root-ca.crt" {
                    continue;
                }
                if o.kind == "Secret" && o.str(&["type"]) == "kubernetes.io/service-account-token" {
                    continue;
                }
                let mut c = o.clone();
                strip_meta(&mut c.v);
                remove(&mut c.v, &["status"]);
                kept_config.push(c);
            }
            "StorageClass" => {
                let mut c = o.clone();
                strip_meta(&mut c.v);
                kept_config.push(c);
            }
            "PersistentVolume" | "PersistentVolumeClaim" => {
                if let Some(c) = storage_object(o, &objs, &mut out) {
                    kept_config.push(c);
                }
            }
            other => *skipped_kinds.entry(other.to_string()).or_default() += 1,
        }
    }
    for (k, n) in &skipped_kinds {
        out.dropped.push(format!("{n} {k}: kind not simulated by kubesim; skipped"));
    }
    // ReplicaSets in the snapshot that a Deployment owns.
    let rs_owners: BTreeMap<(String, String), String> = objs
        .iter()
        .filter(|o| o.kind == "ReplicaSet")
        .filter_map(|o| {
            controller_of(o)
                .filter(|(k, _)| k == "Deployment")
                .map(|(_, d)| ((o.namespace.clone(), o.name.clone()), d))
        })
        .collect();
    let mut bare = Vec::new();
    let mut left = BTreeMap::<String, usize>::new();
    let mut ds_pods: BTreeMap<(String, String), u64> = BTreeMap::new();
    for o in objs.iter().filter(|o| o.kind == "Pod") {
        match pod(o, &present, &rs_owners, &workloads, &control_plane, &mut out) {
            PodFate::Keep(p) => bare.push(p),
            PodFate::LeftTo(owner) => {
                *left.entry(owner.clone()).or_default() += 1;
                if let Some(ds) = owner.strip_prefix("DaemonSet ") {
                    if let Some((ns, name)) = ds.split_once('/') {
                        *ds_pods.entry((ns.to_string(), name.to_string())).or_default() += 1;
                    }
                }
            }
            PodFate::Dropped => {}
        }
    }
    if !left.is_empty() {
        let n: usize = left.values().sum();
        out.imported.push(format!(
            "{n} controller-owned pods left to their controllers ({} controllers)",
            left.len()
        ));
    }
    // Namespaces the kept objects live in.
    for o in workloads.iter().chain(&bare).chain(&kept_config) {
        if !o.namespace.is_empty() {
            namespaces.insert(o.namespace.clone());
        }
    }
    let stand_ins = stand_ins(&workloads, &bare, &kept_config, &mut out);
    let mut manifests: Vec<Value> = Vec::new();
    for ns in namespaces.iter().filter(|n| !SYSTEM_NAMESPACES.contains(&n.as_str())) {
        manifests.push(
            serde_yaml::from_str(&format!("{{apiVersion: v1, kind: Namespace, metadata: {{name: {ns:?}}}}}"))
                .expect("valid"),
        );
    }
    manifests.extend(kept_config.iter().map(|o| o.v.clone()));
    manifests.extend(stand_ins);
    manifests.extend(workloads.iter().map(|o| o.v.clone()));
    manifests.extend(bare.iter().map(|o| o.v.clone()));
    let expectations = expectations(&workloads, &bare, &ds_pods, &opts.duration, &mut out);
    for w in &workloads {
        out.imported.push(w.id());
    }
    for b in &bare {
        out.imported.push(format!("{} (bare pod)", b.id()));
    }
    out.scenario = write_scenario(opts, sources, control_plane.len(), pools, manifests, expectations, &out);
    Ok(out)
}

/// Annotations the PV controller, the scheduler and provisioners write on claims and
/// volumes (pv_controller.go, volume_binding): the simulated ones write them again.
const BINDING_ANNOTATIONS: [&str; 6] = [
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.kubernetes.io/selected-node",
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
    "pv.kubernetes.io/migrated-to",
];

/// A PersistentVolume or PersistentVolumeClaim as the scenario creates it again: a volume
/// a provisioner created is dropped (its claim is provisioned again); a binding the
/// controller made (`pv.kubernetes.io/bound-by-controller`) is undone so the simulated
/// PV controller and scheduler make it again, while a user's pre-binding (a claim's
/// `volumeName`, a volume's `claimRef`) is kept without the server's uid and version.
fn storage_object(o: &Obj, objs: &[Obj], out: &mut Imported) -> Option<Obj> {
    let ann = |x: &Obj, k: &str| x.str(&["metadata", "annotations", k]);
    // Provisioned by a driver that provisions again (a local static provisioner's class
    // has no provisioner: its volumes are static).
    let provisioned = |pv: &Obj| {
        let class = pv.str(&["spec", "storageClassName"]);
        let static_class = objs.iter().any(|x| {
            x.kind == "StorageClass"
                && x.name == class
                && x.str(&["provisioner"]) == "kubernetes.io/no-provisioner"
        });
        !ann(pv, "pv.kubernetes.io/provisioned-by").is_empty() && !static_class
    };
    let mut c = o.clone();
    let by_controller = ann(o, "pv.kubernetes.io/bound-by-controller") == "yes";
    if o.kind == "PersistentVolume" {
        let hostnames: Vec<String> = o
            .get(&["spec", "nodeAffinity", "required", "nodeSelectorTerms"])
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("matchExpressions").and_then(Value::as_sequence))
            .flatten()
            .filter(|e| e.get("key").and_then(Value::as_str) == Some("kubernetes.io/hostname"))
            .filter_map(|e| e.get("values").and_then(Value::as_sequence))
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        if !hostnames.is_empty() && !provisioned(o) {
            out.dropped.push(format!(
                "PersistentVolume {}: its nodeAffinity names node(s) {}, which the scenario's node pools rename; rewrite the hostnames to pool nodes (e.g. <pool>-1) for it to match",
                o.name,
                hostnames.join(", ")
            ));
        }
        if provisioned(o) {
            let by = ann(o, "pv.kubernetes.io/provisioned-by");
            out.dropped.push(format!(
                "PersistentVolume {}: provisioned by {by}; its claim is provisioned again",
                o.name
            ));
            return None;
        }
        let claim = (o.str(&["spec", "claimRef", "namespace"]), o.str(&["spec", "claimRef", "name"]));
        let claim_present = objs
            .iter()
            .any(|x| x.kind == "PersistentVolumeClaim" && x.namespace == claim.0 && x.name == claim.1);
        let released = matches!(o.str(&["status", "phase"]).as_str(), "Released" | "Failed");
        if released || (!claim.1.is_empty() && !claim_present) {
            // Its claim is gone: the claimRef (uid included) keeps it Released, as it was.
            remove(&mut c.v, &["spec", "claimRef", "resourceVersion"]);
        } else if by_controller {
            remove(&mut c.v, &["spec", "claimRef"]);
        } else {
            for k in ["uid", "resourceVersion"] {
                remove(&mut c.v, &["spec", "claimRef", k]);
            }
        }
    } else {
        let volume = o.str(&["spec", "volumeName"]).to_string();
        let pv = objs.iter().find(|x| x.kind == "PersistentVolume" && x.name == volume);
        if !volume.is_empty() && (by_controller || pv.is_some_and(provisioned)) {
            remove(&mut c.v, &["spec", "volumeName"]);
        }
    }
    strip_meta(&mut c.v);
    if let Some(a) = get_mut(&mut c.v, &["metadata", "annotations"]).and_then(Value::as_mapping_mut) {
        for k in BINDING_ANNOTATIONS {
            a.remove(k);
        }
        if a.is_empty() {
            remove(&mut c.v, &["metadata", "annotations"]);
        }
    }
    remove(&mut c.v, &["status"]);
    if let Some(f) = get_mut(&mut c.v, &["metadata"]).and_then(Value::as_mapping_mut) {
        f.remove("finalizers");
    }
    Some(c)
}

/// A node pool of the scenario.
struct Pool {
    v: Mapping,
}

type NodeGroups = (Vec<Pool>, BTreeSet<String>);

/// Groups worker nodes into pools; control-plane nodes are counted apart. Returns the
/// pools and the control-plane node names.
fn node_pools(nodes: &[Obj], out: &mut Imported) -> NodeGroups {
    let mut control_plane = BTreeSet::new();
    let mut groups: BTreeMap<String, Vec<&Obj>> = BTreeMap::new();
    for n in nodes {
        let labels = string_map(n.get(&["metadata", "labels"]));
        if labels.contains_key("node-role.kubernetes.io/control-plane")
            || labels.contains_key("node-role.kubernetes.io/master")
        {
            control_plane.insert(n.name.clone());
            continue;
        }
        let ready = n
            .get(&["status", "conditions"])
            .and_then(Value::as_sequence)
            .and_then(|cs| cs.iter().find(|c| c.get("type").and_then(Value::as_str) == Some("Ready")))
            .and_then(|c| c.get("status"))
            .and_then(Value::as_str)
            .unwrap_or("Unknown");
        if ready != "True" {
            out.dropped
                .push(format!("Node {}: Ready={ready} in the snapshot; imported as a healthy node", n.name));
        }
        let key = serde_yaml::to_string(&(
            n.get(&["status", "capacity"]),
            n.get(&["status", "allocatable"]),
            labels.get(ZONE_LABEL),
            labels.get(INSTANCE_TYPE_LABEL),
            POOL_LABELS.iter().find_map(|l| labels.get(*l)),
            user_taints(n),
            n.get(&["spec", "unschedulable"]),
        ))
        .unwrap_or_default();
        groups.entry(key).or_default().push(n);
    }
    if !control_plane.is_empty() {
        out.imported.push(format!(
            "{} control-plane nodes ({}) as control-plane hosts: kubesim runs etcd, the API server, the scheduler and the controller manager there itself",
            control_plane.len(),
            control_plane.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    // Labels whose values differ between nodes of one group name a node, not a pool
    // (an instance id): dropped from every pool, a pool of one included.
    let mut per_node: BTreeSet<String> = BTreeSet::new();
    for members in groups.values() {
        let first = string_map(members[0].get(&["metadata", "labels"]));
        for m in members.iter().skip(1) {
            let l = string_map(m.get(&["metadata", "labels"]));
            per_node.extend(l.iter().filter(|(k, v)| first.get(*k) != Some(*v)).map(|(k, _)| k.clone()));
            per_node.extend(first.keys().filter(|k| !l.contains_key(*k)).cloned());
        }
    }
    let mut pools = Vec::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for members in groups.values() {
        let first = members[0];
        let labels = string_map(first.get(&["metadata", "labels"]));
        let base = POOL_LABELS
            .iter()
            .find_map(|l| labels.get(*l))
            .or_else(|| labels.get(INSTANCE_TYPE_LABEL))
            .cloned()
            .unwrap_or_else(|| "worker".into());
        let base = match labels.get(ZONE_LABEL) {
            Some(z) if groups.len() > 1 => format!("{base}-{z}"),
            _ => base,
        };
        let mut name = dns_label(&base);
        let mut k = 2;
        while used.contains(&name) {
            name = format!("{}-{k}", dns_label(&base));
            k += 1;
        }
        used.insert(name.clone());
        // Labels every member shares, less the kubelet's own.
        let mut shared = labels.clone();
        shared.retain(|k, _| !per_node.contains(k));
        for m in members.iter().skip(1) {
            let l = string_map(m.get(&["metadata", "labels"]));
            shared.retain(|k, v| l.get(k) == Some(v));
        }
        let dropped_labels: BTreeSet<String> = members
            .iter()
            .flat_map(|m| string_map(m.get(&["metadata", "labels"])).into_keys())
            .filter(|k| {
                !shared.contains_key(k)
                    && !KUBELET_LABELS.contains(&k.as_str())
                    && k != "kubernetes.io/hostname"
            })
            .collect();
        if !dropped_labels.is_empty() {
            out.dropped.push(format!(
                "pool {name}: labels that differ from node to node dropped: {}",
                dropped_labels.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
        for l in KUBELET_LABELS {
            shared.remove(l);
        }
        let mut pool = Mapping::new();
        pool.insert("name".into(), name.clone().into());
        pool.insert("count".into(), (members.len() as u64).into());
        pool.insert("namePattern".into(), format!("{name}-{{i}}").into());
        let (capacity, reserved) = capacity_of(first, &name, out);
        pool.insert("capacity".into(), Value::Mapping(capacity));
        if !shared.is_empty() {
            pool.insert("labels".into(), serde_yaml::to_value(&shared).expect("labels"));
        }
        let taints = user_taints(first);
        if !taints.is_empty() {
            pool.insert("taints".into(), Value::Sequence(taints));
        }
        if first.get(&["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
            pool.insert("unschedulable".into(), true.into());
        }
        if !reserved.is_empty() {
            let mut k = Mapping::new();
            k.insert("kubeReserved".into(), Value::Mapping(reserved));
            pool.insert("kubelet".into(), Value::Mapping(k));
        }
        out.imported.push(format!(
            "pool {name}: {} nodes ({})",
            members.len(),
            members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
        ));
        pools.push(Pool { v: pool });
    }
    (pools, control_plane)
}

/// Taints a person or a tool put on the node; the node lifecycle controller's and the
/// kubelet's condition taints (`node.kubernetes.io/*`) and the cloud provider's
/// uninitialized taint are set by the simulated cluster itself.
fn user_taints(n: &Obj) -> Vec<Value> {
    n.get(&["spec", "taints"])
        .and_then(Value::as_sequence)
        .map(|ts| {
            ts.iter()
                .filter(|t| {
                    let key = t.get("key").and_then(Value::as_str).unwrap_or_default();
                    !key.starts_with("node.kubernetes.io/")
                        && key != "node.cloudprovider.kubernetes.io/uninitialized"
                })
                .map(|t| {
                    let mut t = t.clone();
                    remove(&mut t, &["timeAdded"]);
                    t
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The pool's capacity, and the reservation that gives back the snapshot's allocatable.
fn capacity_of(n: &Obj, pool: &str, out: &mut Imported) -> (Mapping, Mapping) {
    let cap = n.get(&["status", "capacity"]).cloned().unwrap_or(Value::Null);
    let alloc = n.get(&["status", "allocatable"]).cloned().unwrap_or(Value::Null);
    let q = |v: &Value, k: &str| {
        v.get(k).and_then(|x| match x {
            Value::String(s) => Quantity::parse(s).ok(),
            Value::Number(n) => Quantity::parse(&n.to_string()).ok(),
            _ => None,
        })
    };
    let mut capacity = Mapping::new();
    let mut reserved = Mapping::new();
    for (key, held_back) in
        [("cpu", 0i64), ("memory", HARD_EVICTION_MEMORY_BYTES), ("pods", 0), ("ephemeral-storage", -1)]
    {
        let Some(c) = q(&cap, key) else { continue };
        capacity.insert(key.into(), c.as_str().into());
        let Some(a) = q(&alloc, key) else { continue };
        if key == "pods" {
            continue;
        }
        let (c_m, a_m) = (c.milli_value(), a.milli_value());
        let held = match held_back {
            -1 => c_m / 100 * HARD_EVICTION_NODEFS_PERCENT,
            b => b * 1000,
        };
        let r = c_m - a_m - held;
        if r > 0 {
            let text = if key == "cpu" { format!("{r}m") } else { (r / 1000).to_string() };
            reserved.insert(key.into(), text.into());
        } else if r < 0 && key != "ephemeral-storage" {
            out.dropped.push(format!(
                "pool {pool}: allocatable {key} {} is above what kubesim's kubelet leaves (capacity less its default hard eviction threshold); the pool gets the smaller allocatable",
                a.as_str()
            ));
        }
    }
    (capacity, reserved)
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => n.to_string(),
                        _ => return None,
                    };
                    Some((k.as_str()?.to_string(), v))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A lower-case DNS label from any text.
fn dns_label(s: &str) -> String {
    let mut out: String = s
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .collect();
    out = out.trim_matches('-').to_string();
    out.truncate(40);
    if out.is_empty() {
        "pool".into()
    } else {
        out
    }
}

/// Removes what the API server sets on an object's metadata.
fn strip_meta(v: &mut Value) {
    if let Some(m) = get_mut(v, &["metadata"]).and_then(Value::as_mapping_mut) {
        for k in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "ownerReferences",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generateName",
        ] {
            m.remove(k);
        }
        if let Some(a) = m.get_mut("annotations").and_then(Value::as_mapping_mut) {
            for k in SERVER_ANNOTATIONS {
                a.remove(k);
            }
            if a.is_empty() {
                m.remove("annotations");
            }
        }
    }
}

/// The controller owner reference of an object: (kind, name).
fn controller_of(o: &Obj) -> Option<(String, String)> {
    o.get(&["metadata", "ownerReferences"])
        .and_then(Value::as_sequence)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|r| {
            let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            (s("kind"), s("name"))
        })
}

/// A workload, with its server-set fields stripped; `None` when it is left to its owner
/// or dropped.
fn workload(o: &Obj, present: &BTreeSet<(String, String, String)>, out: &mut Imported) -> Option<Obj> {
    if o.get(&["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null()) {
        out.dropped.push(format!("{}: being deleted in the snapshot; not revived", o.id()));
        return None;
    }
    if let Some((kind, name)) = controller_of(o) {
        let known = present.contains(&(kind.clone(), o.namespace.clone(), name.clone()));
        match (known, kind.as_str()) {
            (true, _) => return None,
            (false, k) if WORKLOAD_KINDS.contains(&k) => {
                out.dropped.push(format!(
                    "{}: its owner {kind} {} is not in the snapshot (deleted): the garbage collector would delete it",
                    o.id(),
                    name
                ));
                return None;
            }
            (false, _) => out.dropped.push(format!(
                "{}: owned by {kind} {name}, which kubesim does not import; kept on its own",
                o.id()
            )),
        }
    }
    let mut w = o.clone();
    strip_meta(&mut w.v);
    remove(&mut w.v, &["status"]);
    remove(&mut w.v, &["spec", "template", "metadata", "creationTimestamp"]);
    if o.kind == "Job" {
        let manual = o.get(&["spec", "manualSelector"]).and_then(Value::as_bool) == Some(true);
        if !manual {
            remove(&mut w.v, &["spec", "selector"]);
            if let Some(l) =
                get_mut(&mut w.v, &["spec", "template", "metadata", "labels"]).and_then(Value::as_mapping_mut)
            {
                for k in JOB_LABELS {
                    l.remove(k);
                }
            }
        }
        let done = o
            .get(&["status", "conditions"])
            .and_then(Value::as_sequence)
            .is_some_and(|cs| cs.iter().any(|c| c.get("type").and_then(Value::as_str) == Some("Complete")));
        if done {
            out.dropped.push(format!("{}: complete in the snapshot; it runs again from the start", o.id()));
        }
    }
    Some(w)
}

enum PodFate {
    Keep(Obj),
    /// Left to this controller (`Kind ns/name`).
    LeftTo(String),
    Dropped,
}

fn pod(
    o: &Obj,
    present: &BTreeSet<(String, String, String)>,
    rs_owners: &BTreeMap<(String, String), String>,
    workloads: &[Obj],
    control_plane: &BTreeSet<String>,
    out: &mut Imported,
) -> PodFate {
    if o.get(&["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null()) {
        out.dropped.push(format!("{}: Terminating in the snapshot; not revived", o.id()));
        return PodFate::Dropped;
    }
    let node = o.str(&["spec", "nodeName"]);
    if let Some((kind, name)) = controller_of(o) {
        if kind == "Node" {
            out.dropped.push(format!(
                "{}: a static (mirror) pod of node {name}; the control plane is kubesim's own",
                o.id()
            ));
            return PodFate::Dropped;
        }
        let ns = o.namespace.clone();
        let mut owner = (kind.clone(), name.clone());
        if kind == "ReplicaSet" && !present.contains(&(kind.clone(), ns.clone(), name.clone())) {
            // A Deployment's ReplicaSet is named <deployment>-<pod-template-hash>.
            let hash = o.str(&["metadata", "labels", "pod-template-hash"]);
            if let Some(d) = name.strip_suffix(&format!("-{hash}")).filter(|_| !hash.is_empty()) {
                owner = ("Deployment".into(), d.to_string());
            }
        }
        if kind == "ReplicaSet" && present.contains(&(kind.clone(), ns.clone(), name.clone())) {
            if let Some(rs) =
                workloads.iter().find(|w| w.kind == "ReplicaSet" && w.namespace == ns && w.name == name)
            {
                owner = (rs.kind.clone(), rs.name.clone());
            } else if let Some(d) = rs_owners.get(&(ns.clone(), name.clone())) {
                owner = ("Deployment".into(), d.clone());
            }
        }
        let imported = workloads.iter().any(|w| w.kind == owner.0 && w.namespace == ns && w.name == owner.1);
        if imported {
            if control_plane.contains(&node) && owner.0 == "DaemonSet" {
                out.dropped.push(format!(
                    "{}: on control-plane node {node}; kubesim's control-plane hosts run no kubelet",
                    o.id()
                ));
                return PodFate::Dropped;
            }
            return PodFate::LeftTo(format!("{} {ns}/{}", owner.0, owner.1));
        }
        if WORKLOAD_KINDS.contains(&kind.as_str()) {
            out.dropped.push(format!(
                "{}: its controller {} {} is not in the snapshot (deleted): the garbage collector would delete it",
                o.id(),
                owner.0,
                owner.1
            ));
            return PodFate::Dropped;
        }
        out.dropped.push(format!(
            "{}: owned by {kind} {name}, which kubesim does not import; kept as a bare pod",
            o.id()
        ));
    }
    let phase = o.str(&["status", "phase"]);
    if phase == "Succeeded" || phase == "Failed" {
        out.dropped.push(format!("{}: {phase} in the snapshot; a finished pod is not run again", o.id()));
        return PodFate::Dropped;
    }
    let mut p = o.clone();
    strip_meta(&mut p.v);
    remove(&mut p.v, &["status"]);
    if !node.is_empty() {
        remove(&mut p.v, &["spec", "nodeName"]);
        out.dropped
            .push(format!("{}: was on node {node}; unbound, for the scheduler to place again", o.id()));
    }
    strip_service_account_volume(&mut p.v);
    PodFate::Keep(p)
}

/// The ServiceAccount admission plugin's projected token volume (`kube-api-access-*`) and
/// its mounts: the API server adds them again to a new pod.
fn strip_service_account_volume(v: &mut Value) {
    let is_sa = |name: &str| name.starts_with("kube-api-access-");
    if let Some(vols) = get_mut(v, &["spec", "volumes"]).and_then(Value::as_sequence_mut) {
        vols.retain(|vol| !vol.get("name").and_then(Value::as_str).is_some_and(is_sa));
        if vols.is_empty() {
            remove(v, &["spec", "volumes"]);
        }
    }
    for list in ["containers", "initContainers"] {
        if let Some(cs) = get_mut(v, &["spec", list]).and_then(Value::as_sequence_mut) {
            for c in cs {
                let empty = match c.get_mut("volumeMounts").and_then(Value::as_sequence_mut) {
                    Some(ms) => {
                        ms.retain(|m| !m.get("name").and_then(Value::as_str).is_some_and(is_sa));
                        ms.is_empty()
                    }
                    None => false,
                };
                if empty {
                    remove(c, &["volumeMounts"]);
                }
            }
        }
    }
}

/// ConfigMaps and Secrets the kept pod specs read but the snapshot does not hold: empty
/// stand-ins (with the keys read), so the pods start as they did; each one listed.
fn stand_ins(workloads: &[Obj], bare: &[Obj], have: &[Obj], out: &mut Imported) -> Vec<Value> {
    let mut wanted: BTreeMap<(String, String, String), BTreeSet<String>> = BTreeMap::new();
    for o in workloads.iter().chain(bare) {
        let spec = if o.kind == "Pod" { o.get(&["spec"]) } else { o.get(&["spec", "template", "spec"]) };
        let Some(spec) = spec else { continue };
        let mut want = |kind: &str, name: Option<&Value>, key: Option<&Value>, optional: Option<&Value>| {
            let Some(name) = name.and_then(Value::as_str) else { return };
            if optional.and_then(Value::as_bool) == Some(true) || name == "kube-root-ca.crt" {
                return;
            }
            let keys = wanted.entry((kind.into(), o.namespace.clone(), name.into())).or_default();
            if let Some(k) = key.and_then(Value::as_str) {
                keys.insert(k.into());
            }
        };
        for vol in spec.get("volumes").and_then(Value::as_sequence).into_iter().flatten() {
            if let Some(c) = vol.get("configMap") {
                want("ConfigMap", c.get("name"), None, c.get("optional"));
            }
            if let Some(s) = vol.get("secret") {
                want("Secret", s.get("secretName"), None, s.get("optional"));
            }
        }
        for list in ["containers", "initContainers"] {
            for c in spec.get(list).and_then(Value::as_sequence).into_iter().flatten() {
                for e in c.get("env").and_then(Value::as_sequence).into_iter().flatten() {
                    if let Some(r) = get(e, &["valueFrom", "configMapKeyRef"]) {
                        want("ConfigMap", r.get("name"), r.get("key"), r.get("optional"));
                    }
                    if let Some(r) = get(e, &["valueFrom", "secretKeyRef"]) {
                        want("Secret", r.get("name"), r.get("key"), r.get("optional"));
                    }
                }
                for e in c.get("envFrom").and_then(Value::as_sequence).into_iter().flatten() {
                    if let Some(r) = e.get("configMapRef") {
                        want("ConfigMap", r.get("name"), None, r.get("optional"));
                    }
                    if let Some(r) = e.get("secretRef") {
                        want("Secret", r.get("name"), None, r.get("optional"));
                    }
                }
            }
        }
    }
    let mut v = Vec::new();
    for ((kind, ns, name), keys) in wanted {
        if have.iter().any(|h| h.kind == kind && h.namespace == ns && h.name == name) {
            continue;
        }
        let mut data = Mapping::new();
        for k in &keys {
            data.insert(k.clone().into(), "".into());
        }
        let mut m = Mapping::new();
        m.insert("apiVersion".into(), "v1".into());
        m.insert("kind".into(), kind.clone().into());
        let mut meta = Mapping::new();
        meta.insert("name".into(), name.clone().into());
        meta.insert("namespace".into(), ns.clone().into());
        m.insert("metadata".into(), Value::Mapping(meta));
        if !data.is_empty() {
            m.insert("data".into(), Value::Mapping(data));
        }
        out.dropped.push(format!(
            "{kind} {ns}/{name}: read by a pod but not in the snapshot; an empty stand-in is created (add configmaps,secrets to the kubectl get list to import them)"
        ));
        v.push(Value::Mapping(m));
    }
    v
}

/// Expectations that hold when the imported cluster reaches the snapshot's steady state:
/// each workload's replicas Running at the end.
fn expectations(
    workloads: &[Obj],
    bare: &[Obj],
    ds_pods: &BTreeMap<(String, String), u64>,
    duration: &str,
    out: &mut Imported,
) -> Vec<Value> {
    let mut v = Vec::new();
    for w in workloads {
        let replicas = match w.kind.as_str() {
            "Deployment" | "StatefulSet" | "ReplicaSet" => {
                w.get(&["spec", "replicas"]).and_then(Value::as_u64).unwrap_or(1)
            }
            "DaemonSet" => match ds_pods.get(&(w.namespace.clone(), w.name.clone())) {
                Some(n) => *n,
                None => {
                    out.dropped.push(format!(
                        "{}: no pods of it in the snapshot; no expectation written for it",
                        w.id()
                    ));
                    continue;
                }
            },
            _ => continue,
        };
        let Some(selector) = match_labels(w) else {
            out.dropped.push(format!(
                "{}: its selector uses matchExpressions; no expectation written for it",
                w.id()
            ));
            continue;
        };
        let text = format!(
            "{{name: {:?}, at: {duration}, podCount: {{phase: Running, namespace: {:?}, selector: {:?}}}, equals: {replicas}}}",
            format!("{} runs its {replicas} pods, as in the snapshot", w.id()),
            w.namespace,
            selector
        );
        v.push(serde_yaml::from_str(&text).expect("valid expectation"));
    }
    for b in bare {
        let text = format!(
            "{{name: {:?}, at: {duration}, field: {{kind: Pod, namespace: {:?}, name: {:?}, path: status.phase}}, equals: Running}}",
            format!("{} Running, as in the snapshot", b.id()),
            b.namespace,
            b.name
        );
        v.push(serde_yaml::from_str(&text).expect("valid expectation"));
    }
    v
}

/// A workload's `matchLabels` as selector text (`app=web,tier=fe`); `None` with
/// matchExpressions.
fn match_labels(w: &Obj) -> Option<String> {
    let sel = w.get(&["spec", "selector"]);
    let labels = match sel {
        Some(s) => {
            if s.get("matchExpressions").and_then(Value::as_sequence).is_some_and(|e| !e.is_empty()) {
                return None;
            }
            string_map(s.get("matchLabels"))
        }
        // A Job without a manual selector: its template's labels.
        None => string_map(w.get(&["spec", "template", "metadata", "labels"])),
    };
    if labels.is_empty() {
        return None;
    }
    Some(labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
}

fn write_scenario(
    opts: &ImportOptions,
    sources: &str,
    control_plane: usize,
    pools: Vec<Pool>,
    manifests: Vec<Value>,
    expectations: Vec<Value>,
    out: &Imported,
) -> String {
    let mut top = Mapping::new();
    top.insert("name".into(), opts.name.clone().into());
    top.insert("description".into(), format!("Imported by kubesim import from {sources}").into());
    top.insert("seed".into(), 1u64.into());
    top.insert("duration".into(), opts.duration.clone().into());
    let hosts = match control_plane {
        0 => crate::scenario::DEFAULT_CONTROL_PLANE_HOSTS as usize,
        n => n.clamp(1, 7),
    };
    let mut cp = Mapping::new();
    cp.insert("hosts".into(), (hosts as u64).into());
    top.insert("controlPlane".into(), Value::Mapping(cp));
    let pool_values: Vec<Value> = pools.into_iter().map(|p| Value::Mapping(p.v)).collect();
    top.insert("nodePools".into(), Value::Sequence(pool_values));
    let workloads: Vec<Value> = manifests
        .into_iter()
        .map(|m| {
            let mut e = Mapping::new();
            e.insert("manifest".into(), m);
            Value::Mapping(e)
        })
        .collect();
    top.insert("workloads".into(), Value::Sequence(workloads));
    if !expectations.is_empty() {
        top.insert("expectations".into(), Value::Sequence(expectations));
    }
    let mut text = String::from("# Imported by `kubesim import` from a kubectl snapshot.\n#\n");
    for l in out.summary().lines() {
        text += &format!("# {l}\n");
    }
    text += "\n";
    text += &serde_yaml::to_string(&Value::Mapping(top)).expect("a scenario serializes");
    text
}

/// The default scenario name for an output path (`cluster.yaml` -> `cluster`).
pub fn name_for(output: &Path) -> String {
    output.file_stem().map(|s| dns_label(&s.to_string_lossy())).unwrap_or_else(|| "imported".into())
}
