//! `kubectl describe pod|node`, in kubectl's layout (describe.go): labelled fields padded
//! to one column, sections, and the Events table last.

use std::collections::BTreeMap;
use std::fmt::Write;

use kubesim_model::api::{Event, Kind, Node, Object, ObjectKey, Pod, Resources};
use kubesim_model::client::Cache;
use kubesim_model::time::{human_duration, SimTime};

use super::{pod_status, table};

/// The width kubectl's tabwriter gives top-level labels in describe output.
const LABEL_WIDTH: usize = 18;

fn field(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "{:<w$}{value}", format!("{label}:"), w = LABEL_WIDTH);
}

fn map_lines(out: &mut String, label: &str, m: &BTreeMap<String, String>, sep: &str) {
    if m.is_empty() {
        return field(out, label, "<none>");
    }
    for (i, (k, v)) in m.iter().enumerate() {
        let text = format!("{k}{sep}{v}");
        if i == 0 {
            field(out, label, &text);
        } else {
            let _ = writeln!(out, "{:<w$}{text}", "", w = LABEL_WIDTH);
        }
    }
}

fn list_lines(out: &mut String, label: &str, items: &[String]) {
    if items.is_empty() {
        return field(out, label, "<none>");
    }
    for (i, t) in items.iter().enumerate() {
        if i == 0 {
            field(out, label, t);
        } else {
            let _ = writeln!(out, "{:<w$}{t}", "", w = LABEL_WIDTH);
        }
    }
}

/// The Events table for one object, oldest first (describe.go DescribeEvents).
fn events(out: &mut String, cache: &Cache, kind: Kind, ns: &str, name: &str, now: SimTime) {
    let mut evs: Vec<&Event> = cache
        .list(Kind::Event)
        .filter_map(|o| o.as_event())
        .filter(|e| {
            e.involved_object.kind == kind.as_str()
                && e.involved_object.name == name
                && (ns.is_empty() || e.involved_object.namespace == ns)
        })
        .collect();
    if evs.is_empty() {
        out.push_str("Events:            <none>\n");
        return;
    }
    evs.sort_by_key(|e| (e.first_timestamp, e.metadata.name.clone()));
    out.push_str("Events:\n");
    let mut rows = vec![
        vec!["Type".to_string(), "Reason".into(), "Age".into(), "From".into(), "Message".into()],
        vec!["----".to_string(), "------".into(), "----".into(), "----".into(), "-------".into()],
    ];
    for e in evs {
        let last = e.last_timestamp.or(e.first_timestamp).unwrap_or_default();
        let first = e.first_timestamp.unwrap_or(last);
        let age = if e.count > 1 {
            format!(
                "{} (x{} over {})",
                human_duration(now.saturating_sub(last)),
                e.count,
                human_duration(now.saturating_sub(first))
            )
        } else {
            human_duration(now.saturating_sub(first))
        };
        rows.push(vec![
            e.type_.clone(),
            e.reason.clone(),
            age,
            e.source.component.clone(),
            e.message.clone(),
        ]);
    }
    for line in table(&rows).lines() {
        let _ = writeln!(out, "  {line}");
    }
}

/// `kubectl describe KIND NAME`.
pub fn describe(
    cache: &Cache,
    kind: Kind,
    namespace: &str,
    name: &str,
    now: SimTime,
) -> Result<String, String> {
    let key = ObjectKey::new(kind, namespace, name);
    let Some(obj) = cache.get(&key) else {
        return Err(format!(
            "Error from server (NotFound): {} \"{name}\" not found",
            kind.qualified_resource()
        ));
    };
    match &**obj {
        Object::Pod(p) => Ok(describe_pod(cache, p, now)),
        Object::Node(n) => Ok(describe_node(cache, n, now)),
        other => Ok(serde_yaml::to_string(&other.to_json_value()).map_err(|e| e.to_string())?),
    }
}

fn describe_pod(cache: &Cache, p: &Pod, now: SimTime) -> String {
    let mut out = String::new();
    let m = &p.metadata;
    field(&mut out, "Name", &m.name);
    field(&mut out, "Namespace", &m.namespace);
    field(&mut out, "Priority", &p.spec.priority.unwrap_or(0).to_string());
    let sa = if p.spec.service_account_name.is_empty() { "default" } else { &p.spec.service_account_name };
    field(&mut out, "Service Account", sa);
    let node = if p.spec.node_name.is_empty() {
        "<none>".to_string()
    } else {
        format!("{}/{}", p.spec.node_name, p.status.host_ip)
    };
    field(&mut out, "Node", &node);
    if let Some(t) = p.status.start_time {
        field(&mut out, "Start Time", &t.rfc1123z());
    }
    map_lines(&mut out, "Labels", &m.labels, "=");
    map_lines(&mut out, "Annotations", &m.annotations, ": ");
    if let Some(t) = m.deletion_timestamp {
        field(&mut out, "Status", &format!("Terminating (lasts {})", human_duration(t.saturating_sub(now))));
        field(
            &mut out,
            "Termination Grace Period",
            &format!("{}s", m.deletion_grace_period_seconds.unwrap_or(0)),
        );
    } else {
        field(&mut out, "Status", p.phase().as_str());
    }
    if !p.status.reason.is_empty() {
        field(&mut out, "Reason", &p.status.reason);
    }
    if !p.status.message.is_empty() {
        field(&mut out, "Message", &p.status.message);
    }
    field(&mut out, "IP", &p.status.pod_ip);
    if p.status.pod_ip.is_empty() {
        field(&mut out, "IPs", "<none>");
    } else {
        out.push_str("IPs:\n");
        let _ = writeln!(out, "  IP:  {}", p.status.pod_ip);
    }
    if let Some(r) = m.controller_of() {
        field(&mut out, "Controlled By", &format!("{}/{}", r.kind, r.name));
    }
    out.push_str("Containers:\n");
    for c in &p.spec.containers {
        let _ = writeln!(out, "  {}:", c.name);
        let st = p.status.container_statuses.iter().find(|s| s.name == c.name);
        if let Some(id) = st.map(|s| &s.container_id).filter(|s| !s.is_empty()) {
            let _ = writeln!(out, "    Container ID:   {id}");
        }
        let _ = writeln!(out, "    Image:          {}", c.image);
        let ports: Vec<String> = c
            .ports
            .iter()
            .map(|p| {
                format!("{}/{}", p.container_port, if p.protocol.is_empty() { "TCP" } else { &p.protocol })
            })
            .collect();
        let _ = writeln!(
            out,
            "    Port:           {}",
            if ports.is_empty() { "<none>".into() } else { ports.join(", ") }
        );
        let hp: Vec<String> =
            c.ports.iter().filter(|p| p.host_port > 0).map(|p| format!("{}/TCP", p.host_port)).collect();
        let _ = writeln!(
            out,
            "    Host Port:      {}",
            if hp.is_empty() { "<none>".into() } else { hp.join(", ") }
        );
        if let Some(s) = st {
            if let Some(r) = &s.state.running {
                let _ = writeln!(out, "    State:          Running");
                if let Some(t) = r.started_at {
                    let _ = writeln!(out, "      Started:      {}", t.rfc1123z());
                }
            } else if let Some(w) = &s.state.waiting {
                let _ = writeln!(out, "    State:          Waiting");
                let _ = writeln!(out, "      Reason:       {}", w.reason);
            } else if let Some(t) = &s.state.terminated {
                let _ = writeln!(out, "    State:          Terminated");
                let _ = writeln!(out, "      Reason:       {}", t.reason);
                let _ = writeln!(out, "      Exit Code:    {}", t.exit_code);
            }
            let _ = writeln!(out, "    Ready:          {}", if s.ready { "True" } else { "False" });
            let _ = writeln!(out, "    Restart Count:  {}", s.restart_count);
        }
        for (label, list) in [("Limits", &c.resources.limits), ("Requests", &c.resources.requests)] {
            if !list.is_empty() {
                let _ = writeln!(out, "    {label}:");
                for (k, v) in list {
                    let _ = writeln!(out, "      {:<12}{v}", format!("{k}:"));
                }
            }
        }
        let _ = writeln!(out, "    Environment:    <none>");
        let _ = writeln!(out, "    Mounts:         <none>");
    }
    if !p.status.conditions.is_empty() {
        out.push_str("Conditions:\n");
        let mut rows = vec![vec!["Type".to_string(), "Status".into()]];
        for c in &p.status.conditions {
            rows.push(vec![c.type_.clone(), c.status.as_str().to_string()]);
        }
        for line in table(&rows).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    field(&mut out, "Volumes", "<none>");
    field(&mut out, "QoS Class", &p.status.qos_class);
    map_lines(&mut out, "Node-Selectors", &p.spec.node_selector, "=");
    let tols: Vec<String> = p
        .spec
        .tolerations
        .iter()
        .map(|t| {
            let mut s = t.key.clone();
            if !t.value.is_empty() {
                s += &format!("={}", t.value);
            }
            if let Some(e) = t.effect {
                s += &format!(":{}", e.as_str());
            }
            if t.operator == Some(kubesim_model::api::TolerationOperator::Exists) {
                s += " op=Exists";
            }
            if let Some(sec) = t.toleration_seconds {
                s += &format!(" for {sec}s");
            }
            s
        })
        .collect();
    list_lines(&mut out, "Tolerations", &tols);
    events(&mut out, cache, Kind::Pod, &m.namespace, &m.name, now);
    let _ = pod_status(p);
    out
}

fn describe_node(cache: &Cache, n: &Node, now: SimTime) -> String {
    let mut out = String::new();
    let m = &n.metadata;
    field(&mut out, "Name", &m.name);
    field(&mut out, "Roles", &super::roles(n));
    map_lines(&mut out, "Labels", &m.labels, "=");
    map_lines(&mut out, "Annotations", &m.annotations, ": ");
    field(&mut out, "CreationTimestamp", &m.creation_timestamp.map(|t| t.rfc1123z()).unwrap_or_default());
    let taints: Vec<String> = n.spec.taints.iter().map(|t| t.to_string()).collect();
    list_lines(&mut out, "Taints", &taints);
    field(&mut out, "Unschedulable", if n.spec.unschedulable { "true" } else { "false" });
    out.push_str("Lease:\n");
    let lease = cache
        .get(&ObjectKey::new(Kind::Lease, "kube-node-lease", m.name.clone()))
        .and_then(|o| o.as_lease().cloned());
    let l = lease.as_ref().map(|l| &l.spec);
    let _ = writeln!(
        out,
        "  HolderIdentity:  {}",
        l.and_then(|s| s.holder_identity.clone()).unwrap_or("<unset>".into())
    );
    let _ = writeln!(
        out,
        "  AcquireTime:     {}",
        l.and_then(|s| s.acquire_time).map_or("<unset>".into(), |t| t.rfc1123z())
    );
    let _ = writeln!(
        out,
        "  RenewTime:       {}",
        l.and_then(|s| s.renew_time).map_or("<unset>".into(), |t| t.rfc1123z())
    );
    out.push_str("Conditions:\n");
    let mut rows = vec![
        vec![
            "Type".to_string(),
            "Status".into(),
            "LastHeartbeatTime".into(),
            "LastTransitionTime".into(),
            "Reason".into(),
            "Message".into(),
        ],
        vec![
            "----".to_string(),
            "------".into(),
            "-----------------".into(),
            "------------------".into(),
            "------".into(),
            "-------".into(),
        ],
    ];
    for c in &n.status.conditions {
        rows.push(vec![
            c.type_.clone(),
            c.status.as_str().into(),
            c.last_heartbeat_time.map(|t| t.rfc1123z()).unwrap_or_default(),
            c.last_transition_time.map(|t| t.rfc1123z()).unwrap_or_default(),
            c.reason.clone(),
            c.message.clone(),
        ]);
    }
    for line in table(&rows).lines() {
        let _ = writeln!(out, "  {line}");
    }
    out.push_str("Addresses:\n");
    for a in &n.status.addresses {
        let _ = writeln!(out, "  {}:  {}", a.type_, a.address);
    }
    for (label, list) in [("Capacity", &n.status.capacity), ("Allocatable", &n.status.allocatable)] {
        let _ = writeln!(out, "{label}:");
        for (k, v) in list {
            let _ = writeln!(out, "  {:<19}{v}", format!("{k}:"));
        }
    }
    let i = &n.status.node_info;
    out.push_str("System Info:\n");
    for (k, v) in [
        ("Kernel Version", &i.kernel_version),
        ("OS Image", &i.os_image),
        ("Operating System", &i.operating_system),
        ("Architecture", &i.architecture),
        ("Container Runtime Version", &i.container_runtime_version),
        ("Kubelet Version", &i.kubelet_version),
    ] {
        let _ = writeln!(out, "  {:<27}{v}", format!("{k}:"));
    }
    let pods: Vec<&Pod> = cache
        .list(Kind::Pod)
        .filter_map(|o| o.as_pod())
        .filter(|p| {
            p.spec.node_name == m.name
                && !matches!(
                    p.phase(),
                    kubesim_model::api::PodPhase::Succeeded | kubesim_model::api::PodPhase::Failed
                )
        })
        .collect();
    let alloc = Resources::from_list(&n.status.allocatable);
    let pct = |v: i64, cap: i64| if cap == 0 { 0 } else { v * 100 / cap };
    let _ = writeln!(out, "Non-terminated Pods:          ({} in total)", pods.len());
    let mut rows = vec![
        vec![
            "Namespace".to_string(),
            "Name".into(),
            "CPU Requests".into(),
            "CPU Limits".into(),
            "Memory Requests".into(),
            "Memory Limits".into(),
            "Age".into(),
        ],
        vec![
            "---------".to_string(),
            "----".into(),
            "------------".into(),
            "----------".into(),
            "---------------".into(),
            "-------------".into(),
            "---".into(),
        ],
    ];
    let mut total = Resources::default();
    let mut total_lim = Resources::default();
    for p in &pods {
        let r = p.requests();
        let mut lim = Resources::default();
        for c in &p.spec.containers {
            lim.add(&Resources::from_list(&c.resources.limits));
        }
        total.add(&r);
        total_lim.add(&lim);
        rows.push(vec![
            p.metadata.namespace.clone(),
            p.metadata.name.clone(),
            format!("{} ({}%)", fmt_cpu(r.milli_cpu), pct(r.milli_cpu, alloc.milli_cpu)),
            format!("{} ({}%)", fmt_cpu(lim.milli_cpu), pct(lim.milli_cpu, alloc.milli_cpu)),
            format!("{} ({}%)", fmt_mem(r.memory_bytes), pct(r.memory_bytes, alloc.memory_bytes)),
            format!("{} ({}%)", fmt_mem(lim.memory_bytes), pct(lim.memory_bytes, alloc.memory_bytes)),
            human_duration(now.saturating_sub(p.metadata.creation_timestamp.unwrap_or_default())),
        ]);
    }
    for line in table(&rows).lines() {
        let _ = writeln!(out, "  {line}");
    }
    out.push_str("Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n");
    let rows = vec![
        vec!["Resource".to_string(), "Requests".into(), "Limits".into()],
        vec!["--------".to_string(), "--------".into(), "------".into()],
        vec![
            "cpu".to_string(),
            format!("{} ({}%)", fmt_cpu(total.milli_cpu), pct(total.milli_cpu, alloc.milli_cpu)),
            format!("{} ({}%)", fmt_cpu(total_lim.milli_cpu), pct(total_lim.milli_cpu, alloc.milli_cpu)),
        ],
        vec![
            "memory".to_string(),
            format!("{} ({}%)", fmt_mem(total.memory_bytes), pct(total.memory_bytes, alloc.memory_bytes)),
            format!(
                "{} ({}%)",
                fmt_mem(total_lim.memory_bytes),
                pct(total_lim.memory_bytes, alloc.memory_bytes)
            ),
        ],
    ];
    for line in table(&rows).lines() {
        let _ = writeln!(out, "  {line}");
    }
    events(&mut out, cache, Kind::Node, "", &m.name, now);
    out
}

fn fmt_cpu(m: i64) -> String {
    if m % 1000 == 0 {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

fn fmt_mem(b: i64) -> String {
    if b == 0 {
        "0 (0%)".split(' ').next().unwrap_or("0").to_string()
    } else {
        kubesim_model::api::Quantity::from_bytes_binary(b).to_string()
    }
}
