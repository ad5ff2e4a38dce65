//! kubectl's output, rendered from a [`Cache`] holding the cluster state at simulated
//! time `now`: `get` tables (pkg/printers/internalversion/printers.go), `-o wide|yaml|json`,
//! and `describe` for pods and nodes (staging/src/k8s.io/kubectl/pkg/describe/describe.go).

mod describe;
pub mod yaml;

use std::sync::Arc;

use kubesim_model::api::{ConditionStatus, Kind, Object, Pod, PodPhase};
use kubesim_model::client::Cache;
use kubesim_model::time::{human_duration, SimTime};

pub use describe::describe;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Wide,
    Yaml,
    Json,
}

/// Left-aligned columns padded by 3 spaces, as kubectl's tabwriter does.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line += cell;
            } else {
                line += &format!("{cell:<w$}", w = widths[c] + 3);
            }
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

fn age(created: Option<SimTime>, now: SimTime) -> String {
    created.map_or("<unknown>".into(), |t| human_duration(now.saturating_sub(t)))
}

/// kubectl's pod STATUS, READY and RESTARTS columns (printers/internalversion
/// printPod, v1.33): the phase or status reason; while initializing, the first init
/// container not done (`Init:Error`, `Init:CrashLoopBackOff`, `Init:1/3`); otherwise each
/// container's waiting or terminated reason (the first container's wins). Sidecars count
/// among the containers; restarts come with the time since the latest one.
fn pod_columns(p: &Pod, now: SimTime) -> (String, usize, String) {
    let mut reason = p.phase().as_str().to_string();
    if !p.status.reason.is_empty() {
        reason = p.status.reason.clone();
    }
    let is_sidecar = |name: &str| p.spec.init_containers.iter().any(|c| c.name == name && c.is_sidecar());
    let mut restarts = 0;
    let mut ready = 0;
    let mut last_restart: Option<SimTime> = None;
    let (mut sidecar_restarts, mut last_sidecar_restart) = (0, None::<SimTime>);
    let later = |a: Option<SimTime>, b: Option<SimTime>| a.max(b);
    let mut initializing = false;
    let inits = &p.status.init_container_statuses;
    for (i, cs) in inits.iter().enumerate() {
        let finished = cs.last_state.terminated.as_ref().and_then(|t| t.finished_at);
        restarts += cs.restart_count;
        last_restart = later(last_restart, finished);
        let sidecar = is_sidecar(&cs.name);
        if sidecar {
            sidecar_restarts += cs.restart_count;
            last_sidecar_restart = later(last_sidecar_restart, finished);
        }
        let waiting = cs.state.waiting.as_ref().map(|w| w.reason.as_str()).filter(|r| !r.is_empty());
        match (&cs.state.terminated, waiting) {
            (Some(t), _) if t.exit_code == 0 => continue,
            _ if sidecar && cs.started == Some(true) => {
                ready += usize::from(cs.ready);
                continue;
            }
            (Some(t), _) if t.reason.is_empty() => reason = format!("Init:ExitCode:{}", t.exit_code),
            (Some(t), _) => reason = format!("Init:{}", t.reason),
            (None, Some(w)) if w != "PodInitializing" => reason = format!("Init:{w}"),
            _ => reason = format!("Init:{i}/{}", p.spec.init_containers.len()),
        }
        initializing = true;
        break;
    }
    let initialized =
        p.status.conditions.iter().any(|c| c.type_ == "Initialized" && c.status == ConditionStatus::True);
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in p.status.container_statuses.iter().rev() {
            restarts += cs.restart_count;
            last_restart = later(last_restart, cs.last_state.terminated.as_ref().and_then(|t| t.finished_at));
            if let Some(w) = cs.state.waiting.as_ref().filter(|w| !w.reason.is_empty()) {
                reason = w.reason.clone();
            } else if let Some(t) = &cs.state.terminated {
                reason =
                    if t.reason.is_empty() { format!("ExitCode:{}", t.exit_code) } else { t.reason.clone() };
            } else if cs.ready && cs.state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let has_ready =
                p.status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True);
            reason = if has_ready { "Running".into() } else { "NotReady".into() };
        }
    }
    let terminal = matches!(p.phase(), PodPhase::Succeeded | PodPhase::Failed);
    if p.metadata.deletion_timestamp.is_some() && p.status.reason == "NodeLost" {
        reason = "Unknown".into();
    } else if p.metadata.deletion_timestamp.is_some() && !terminal {
        reason = "Terminating".into();
    }
    let restarts = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now.saturating_sub(t))),
        _ => restarts.to_string(),
    };
    (reason, ready, restarts)
}

/// kubectl's pod STATUS column.
pub fn pod_status(p: &Pod) -> String {
    pod_columns(p, SimTime::ZERO).0
}

fn pod_row(p: &Pod, wide: bool, now: SimTime) -> Vec<String> {
    let total = p.spec.containers.len() + p.spec.init_containers.iter().filter(|c| c.is_sidecar()).count();
    let (status, ready, restarts) = pod_columns(p, now);
    let mut row = vec![
        p.metadata.name.clone(),
        format!("{ready}/{total}"),
        status,
        restarts,
        age(p.metadata.creation_timestamp, now),
    ];
    if wide {
        let or_none = |s: &str| if s.is_empty() { "<none>".to_string() } else { s.to_string() };
        row.push(or_none(&p.status.pod_ip));
        row.push(or_none(&p.spec.node_name));
        row.push(or_none(&p.status.nominated_node_name));
        row.push("<none>".into());
    }
    row
}

fn node_status(n: &kubesim_model::api::Node) -> String {
    let mut s = match n.condition("Ready").map(|c| c.status) {
        // printNode: "Not" + the type for a Ready condition that is not True (False or
        // Unknown); "Unknown" only when the node has no Ready condition.
        Some(ConditionStatus::True) => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if n.spec.unschedulable {
        s += ",SchedulingDisabled";
    }
    s
}

/// `findNodeRoles`: `node-role.kubernetes.io/<role>` labels and the `kubernetes.io/role`
/// label's value, sorted, or `<none>`.
fn roles(n: &kubesim_model::api::Node) -> String {
    let mut r: Vec<&str> = n
        .metadata
        .labels
        .iter()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) => Some(role),
            None if k == "kubernetes.io/role" => Some(v.as_str()),
            None => None,
        })
        .filter(|role| !role.is_empty())
        .collect();
    r.sort_unstable();
    r.dedup();
    if r.is_empty() {
        "<none>".into()
    } else {
        r.join(",")
    }
}

fn header(kind: Kind, wide: bool) -> Vec<&'static str> {
    match (kind, wide) {
        (Kind::Pod, false) => vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        (Kind::Pod, true) => vec![
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES",
        ],
        (Kind::Node, false) => vec!["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        (Kind::Node, true) => vec![
            "NAME",
            "STATUS",
            "ROLES",
            "AGE",
            "VERSION",
            "INTERNAL-IP",
            "EXTERNAL-IP",
            "OS-IMAGE",
            "KERNEL-VERSION",
            "CONTAINER-RUNTIME",
        ],
        (Kind::Deployment, false) => vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        (Kind::Deployment, true) => {
            vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
        }
        (Kind::ReplicaSet, false) => vec!["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        (Kind::ReplicaSet, true) => {
            vec!["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
        }
        (Kind::DaemonSet, _) => {
            vec!["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"]
        }
        (Kind::StatefulSet, false) => vec!["NAME", "READY", "AGE"],
        (Kind::StatefulSet, true) => vec!["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"],
        (Kind::Job, false) => vec!["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
        (Kind::Job, true) => {
            vec!["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
        }
        (Kind::Event, _) => vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        (Kind::Lease, _) => vec!["NAME", "HOLDER", "AGE"],
        (Kind::Namespace, _) => vec!["NAME", "STATUS", "AGE"],
        // pkg/printers/internalversion/printers.go priorityClassColumnDefinitions.
        (Kind::PriorityClass, _) => vec!["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"],
        // podDisruptionBudgetColumnDefinitions.
        (Kind::PodDisruptionBudget, _) => {
            vec!["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"]
        }
        (Kind::ConfigMap, _) => vec!["NAME", "DATA", "AGE"],
        (Kind::Secret, _) => vec!["NAME", "TYPE", "DATA", "AGE"],
        // serviceAccountColumnDefinitions.
        (Kind::ServiceAccount, _) => vec!["NAME", "SECRETS", "AGE"],
        // printers.go persistentVolumeColumnDefinitions (VolumeMode is wide).
        (Kind::PersistentVolume, false) => vec![
            "NAME",
            "CAPACITY",
            "ACCESS MODES",
            "RECLAIM POLICY",
            "STATUS",
            "CLAIM",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "REASON",
            "AGE",
        ],
        (Kind::PersistentVolume, true) => vec![
            "NAME",
            "CAPACITY",
            "ACCESS MODES",
            "RECLAIM POLICY",
            "STATUS",
            "CLAIM",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "REASON",
            "AGE",
            "VOLUMEMODE",
        ],
        (Kind::PersistentVolumeClaim, false) => {
            vec![
                "NAME",
                "STATUS",
                "VOLUME",
                "CAPACITY",
                "ACCESS MODES",
                "STORAGECLASS",
                "VOLUMEATTRIBUTESCLASS",
                "AGE",
            ]
        }
        (Kind::PersistentVolumeClaim, true) => vec![
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS MODES",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "AGE",
            "VOLUMEMODE",
        ],
        (Kind::StorageClass, _) => {
            vec!["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"]
        }
        (Kind::ReplicationController, false) => vec!["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        (Kind::ReplicationController, true) => {
            vec!["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
        }
    }
}

fn selector_string(s: &kubesim_model::api::LabelSelector) -> String {
    let v: Vec<String> = s.match_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    v.join(",")
}

fn row(o: &Object, wide: bool, now: SimTime) -> Vec<String> {
    match o {
        Object::PriorityClass(pc) => vec![
            pc.metadata.name.clone(),
            pc.value.to_string(),
            pc.global_default.to_string(),
            age(pc.metadata.creation_timestamp, now),
            pc.preemption_policy.clone().unwrap_or_default(),
        ],
        Object::PodDisruptionBudget(b) => {
            let na = |v: &Option<kubesim_model::api::IntOrString>| {
                v.as_ref().map_or("N/A".into(), |v| v.to_string())
            };
            vec![
                b.metadata.name.clone(),
                na(&b.spec.min_available),
                na(&b.spec.max_unavailable),
                b.status.disruptions_allowed.to_string(),
                age(b.metadata.creation_timestamp, now),
            ]
        }
        Object::Pod(p) => pod_row(p, wide, now),
        Object::Node(n) => {
            let mut r = vec![
                n.metadata.name.clone(),
                node_status(n),
                roles(n),
                age(n.metadata.creation_timestamp, now),
                n.status.node_info.kubelet_version.clone(),
            ];
            if wide {
                let i = &n.status.node_info;
                r.extend([
                    n.internal_ip().unwrap_or("<none>").to_string(),
                    "<none>".into(),
                    i.os_image.clone(),
                    i.kernel_version.clone(),
                    i.container_runtime_version.clone(),
                ]);
            }
            r
        }
        Object::Deployment(d) => {
            let mut r = vec![
                d.metadata.name.clone(),
                format!("{}/{}", d.status.ready_replicas, d.spec.replicas.unwrap_or_default()),
                d.status.updated_replicas.to_string(),
                d.status.available_replicas.to_string(),
                age(d.metadata.creation_timestamp, now),
            ];
            if wide {
                let cs = &d.spec.template.spec.containers;
                r.extend([
                    cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(","),
                    cs.iter().map(|c| c.image.clone()).collect::<Vec<_>>().join(","),
                    selector_string(&d.spec.selector),
                ]);
            }
            r
        }
        Object::ReplicaSet(rs) => {
            let mut r = vec![
                rs.metadata.name.clone(),
                rs.spec.replicas.unwrap_or_default().to_string(),
                rs.status.replicas.to_string(),
                rs.status.ready_replicas.to_string(),
                age(rs.metadata.creation_timestamp, now),
            ];
            if wide {
                let cs = &rs.spec.template.spec.containers;
                r.extend([
                    cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(","),
                    cs.iter().map(|c| c.image.clone()).collect::<Vec<_>>().join(","),
                    selector_string(&rs.spec.selector),
                ]);
            }
            r
        }
        Object::DaemonSet(d) => {
            let s = &d.status;
            let sel: Vec<String> =
                d.spec.template.spec.node_selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![
                d.metadata.name.clone(),
                s.desired_number_scheduled.to_string(),
                s.current_number_scheduled.to_string(),
                s.number_ready.to_string(),
                s.updated_number_scheduled.to_string(),
                s.number_available.to_string(),
                if sel.is_empty() { "<none>".into() } else { sel.join(",") },
                age(d.metadata.creation_timestamp, now),
            ]
        }
        Object::StatefulSet(st) => {
            let mut r = vec![
                st.metadata.name.clone(),
                format!("{}/{}", st.status.ready_replicas, st.spec.replicas.unwrap_or_default()),
                age(st.metadata.creation_timestamp, now),
            ];
            if wide {
                let cs = &st.spec.template.spec.containers;
                r.extend([
                    cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(","),
                    cs.iter().map(|c| c.image.clone()).collect::<Vec<_>>().join(","),
                ]);
            }
            r
        }
        Object::Job(j) => {
            // kubectl's printJob: STATUS from the terminal conditions, DURATION from
            // startTime to completionTime (or now).
            let has = |t: &str| {
                j.status.conditions.iter().any(|c| c.type_ == t && c.status == ConditionStatus::True)
            };
            let status = if has("Complete") {
                "Complete"
            } else if has("Failed") {
                "Failed"
            } else if j.spec.suspend == Some(true) {
                "Suspended"
            } else {
                "Running"
            };
            let duration = j
                .status
                .start_time
                .map_or(String::new(), |st| age(Some(st), j.status.completion_time.unwrap_or(now)));
            let mut r = vec![
                j.metadata.name.clone(),
                status.to_string(),
                // printJob: without completions, "N/1", or "N/1 of P" when parallel.
                match (j.spec.completions, j.spec.parallelism.unwrap_or_default()) {
                    (Some(c), _) => format!("{}/{c}", j.status.succeeded),
                    (None, p) if p > 1 => format!("{}/1 of {p}", j.status.succeeded),
                    (None, _) => format!("{}/1", j.status.succeeded),
                },
                duration,
                age(j.metadata.creation_timestamp, now),
            ];
            if wide {
                let cs = &j.spec.template.spec.containers;
                r.extend([
                    cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(","),
                    cs.iter().map(|c| c.image.clone()).collect::<Vec<_>>().join(","),
                    j.spec.selector.as_ref().map(selector_string).unwrap_or_default(),
                ]);
            }
            r
        }
        // printEvent: LAST SEEN is lastTimestamp, else firstTimestamp; the object's kind
        // lower-cased.
        Object::Event(e) => vec![
            age(e.last_timestamp.or(e.first_timestamp), now),
            e.type_.clone(),
            e.reason.clone(),
            format!("{}/{}", e.involved_object.kind.to_lowercase(), e.involved_object.name),
            e.message.clone(),
        ],
        Object::Lease(l) => vec![
            l.metadata.name.clone(),
            l.spec.holder_identity.clone().unwrap_or_default(),
            age(l.metadata.creation_timestamp, now),
        ],
        Object::Namespace(n) => {
            vec![n.metadata.name.clone(), n.status.phase.clone(), age(n.metadata.creation_timestamp, now)]
        }
        // printConfigMap, printSecret: the number of keys.
        Object::ConfigMap(c) => vec![
            c.metadata.name.clone(),
            (c.data.len() + c.binary_data.len()).to_string(),
            age(c.metadata.creation_timestamp, now),
        ],
        // printServiceAccount: the number of `secrets` references.
        Object::ServiceAccount(sa) => vec![
            sa.metadata.name.clone(),
            sa.extra.get("secrets").and_then(|v| v.as_array()).map_or(0, |a| a.len()).to_string(),
            age(sa.metadata.creation_timestamp, now),
        ],
        Object::Secret(x) => vec![
            x.metadata.name.clone(),
            x.type_.clone(),
            x.data.len().to_string(),
            age(x.metadata.creation_timestamp, now),
        ],
        Object::PersistentVolume(v) => {
            // printPersistentVolume.
            use kubesim_model::api::storage::{access_modes_string, volume_binding, RESOURCE_STORAGE};
            let claim =
                v.spec.claim_ref.as_ref().map(|r| format!("{}/{}", r.namespace, r.name)).unwrap_or_default();
            let status = if v.metadata.deletion_timestamp.is_some() {
                "Terminating".to_string()
            } else {
                v.phase().as_str().to_string()
            };
            let mut r = vec![
                v.metadata.name.clone(),
                v.spec.capacity.get(RESOURCE_STORAGE).map(|q| q.as_str().to_string()).unwrap_or_default(),
                access_modes_string(&v.spec.access_modes),
                v.spec.persistent_volume_reclaim_policy.clone(),
                status,
                claim,
                volume_binding::volume_class(v).to_string(),
                "<unset>".into(),
                v.status.reason.clone(),
                age(v.metadata.creation_timestamp, now),
            ];
            if wide {
                r.push(v.spec.volume_mode.clone().unwrap_or_else(|| "<unset>".into()));
            }
            r
        }
        Object::PersistentVolumeClaim(c) => {
            // printPersistentVolumeClaim: capacity and modes once bound.
            use kubesim_model::api::storage::{access_modes_string, RESOURCE_STORAGE};
            let status = if c.metadata.deletion_timestamp.is_some() {
                "Terminating".to_string()
            } else {
                c.phase().as_str().to_string()
            };
            let mut r = vec![
                c.metadata.name.clone(),
                status,
                c.spec.volume_name.clone(),
                c.status.capacity.get(RESOURCE_STORAGE).map(|q| q.as_str().to_string()).unwrap_or_default(),
                access_modes_string(&c.status.access_modes),
                c.class().to_string(),
                "<unset>".into(),
                age(c.metadata.creation_timestamp, now),
            ];
            if wide {
                r.push(c.spec.volume_mode.clone().unwrap_or_else(|| "<unset>".into()));
            }
            r
        }
        Object::StorageClass(c) => {
            // printStorageClass: "(default)" after the default class's name.
            let name = if c.is_default() {
                format!("{} (default)", c.metadata.name)
            } else {
                c.metadata.name.clone()
            };
            vec![
                name,
                c.provisioner.clone(),
                c.reclaim_policy.clone().unwrap_or_else(|| "Delete".into()),
                c.binding_mode().as_str().to_string(),
                c.allow_volume_expansion.unwrap_or(false).to_string(),
                age(c.metadata.creation_timestamp, now),
            ]
        }
        Object::ReplicationController(rc) => {
            let mut r = vec![
                rc.metadata.name.clone(),
                rc.spec.replicas.unwrap_or_default().to_string(),
                rc.status.replicas.to_string(),
                rc.status.ready_replicas.to_string(),
                age(rc.metadata.creation_timestamp, now),
            ];
            if wide {
                let cs = rc.spec.template.as_ref().map(|t| t.spec.containers.clone()).unwrap_or_default();
                let sel: Vec<String> = rc.spec.selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
                r.extend([
                    cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(","),
                    cs.iter().map(|c| c.image.clone()).collect::<Vec<_>>().join(","),
                    sel.join(","),
                ]);
            }
            r
        }
    }
}

/// `kubectl events [-n NS | -A]` (staging/src/k8s.io/kubectl/pkg/cmd/events, v1.33):
/// the events sorted by their time (SortableEvents: lastTimestamp, else eventTime), the
/// OBJECT column as `Kind/name` with the kind as stored, and LAST SEEN with the repeat
/// suffix `(xN over AGE)` when an event happened more than once (events_printer.go
/// getInterval).
pub fn events(cache: &Cache, namespace: Option<&str>, now: SimTime) -> String {
    let listed: Vec<&Arc<Object>> = match namespace {
        Some(ns) => cache.list_namespace(Kind::Event, ns).collect(),
        None => cache.list(Kind::Event).collect(),
    };
    let mut evs: Vec<&kubesim_model::api::Event> = listed.into_iter().filter_map(|o| o.as_event()).collect();
    if evs.is_empty() {
        // events.go: "No events found." / "No events found in NS namespace.".
        return match namespace {
            Some(ns) => format!("No events found in {ns} namespace.\n"),
            None => "No events found.\n".into(),
        };
    }
    evs.sort_by_key(|e| e.last_timestamp);
    let all = namespace.is_none();
    let mut rows = Vec::new();
    let mut h = vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"];
    if all {
        h.insert(0, "NAMESPACE");
    }
    rows.push(h.into_iter().map(String::from).collect::<Vec<_>>());
    for e in evs {
        let first = age(e.first_timestamp, now);
        let interval = if e.count > 1 {
            format!("{} (x{} over {first})", age(e.last_timestamp, now), e.count)
        } else {
            first
        };
        let mut r = vec![
            interval,
            e.type_.clone(),
            e.reason.clone(),
            format!("{}/{}", e.involved_object.kind, e.involved_object.name),
            e.message.trim().to_string(),
        ];
        if all {
            r.insert(0, e.metadata.namespace.clone());
        }
        rows.push(r);
    }
    table(&rows)
}

/// `kubectl get KIND [NAME] [-n NS | -A] [-o ...]`: rows in the API's list order (etcd's
/// key order: by namespace, then name).
pub fn get(
    cache: &Cache,
    kind: Kind,
    namespace: Option<&str>,
    name: Option<&str>,
    selector: Option<&kubesim_model::api::Selector>,
    format: OutputFormat,
    now: SimTime,
) -> Result<String, String> {
    let mut objs: Vec<&Arc<Object>> = match namespace {
        Some(ns) => cache.list_namespace(kind, ns).collect(),
        None => cache.list(kind).collect(),
    };
    if let Some(sel) = selector {
        objs.retain(|o| sel.matches(&o.meta().labels));
    }
    if let Some(n) = name {
        objs.retain(|o| o.meta().name == n);
        if objs.is_empty() {
            return Err(format!(
                "Error from server (NotFound): {} \"{n}\" not found",
                kind.qualified_resource()
            ));
        }
    }
    if objs.is_empty() {
        return Ok(match namespace {
            Some(ns) if kind.namespaced() => format!("No resources found in {ns} namespace.\n"),
            _ => "No resources found\n".into(),
        });
    }
    match format {
        OutputFormat::Yaml | OutputFormat::Json => {
            let value = if objs.len() == 1 && name.is_some() {
                objs[0].to_json_value()
            } else {
                serde_json::json!({
                    "apiVersion": "v1",
                    "items": objs.iter().map(|o| o.to_json_value()).collect::<Vec<_>>(),
                    "kind": "List",
                    "metadata": {"resourceVersion": ""},
                })
            };
            Ok(if format == OutputFormat::Json {
                serde_json::to_string_pretty(&value).map_err(|e| e.to_string())? + "\n"
            } else {
                yaml::to_string(&value)?
            })
        }
        OutputFormat::Table | OutputFormat::Wide => {
            let wide = format == OutputFormat::Wide;
            let all_ns = namespace.is_none() && kind.namespaced();
            let mut rows = Vec::new();
            let mut h: Vec<String> = header(kind, wide).into_iter().map(String::from).collect();
            if all_ns {
                h.insert(0, "NAMESPACE".into());
            }
            rows.push(h);
            for o in objs {
                let mut r = row(o, wide, now);
                if all_ns {
                    r.insert(0, o.meta().namespace.clone());
                }
                rows.push(r);
            }
            Ok(table(&rows))
        }
    }
}
