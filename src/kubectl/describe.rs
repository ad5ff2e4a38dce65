//! `kubectl describe pod|node|configmap|secret|deployment|statefulset|job|pvc`, in kubectl
//! v1.33's layout (describe.go).
//!
//! kubectl writes each line through a `PrefixWriter` (two spaces per level) into Go's
//! `text/tabwriter` (`minwidth 0, padding 2, ' '`): labels and values are tab-terminated
//! cells, and a column is as wide as its widest cell in the *block* of consecutive lines
//! that have that column, plus 2. A line without a tab (`Containers:`) ends every block.
//! This module writes the same cells, with the same trailing spaces (`"%v \t%v \n"` rows),
//! and lets the `tabwriter` crate align them; so one long label such as `Termination Grace
//! Period:` widens its whole block as it does under kubectl.
//!
//! Fields kubesim does not model are left out where kubectl leaves them out when unset
//! (probes, volumes, readiness gates), and printed empty where kubectl prints them
//! unconditionally (`Image ID:`, `Machine ID:`).

use std::fmt::{self, Write as _};
use std::io::Write as _;

use kubesim_model::api::{
    pod::ContainerState, Container, ContainerStatus, Event, Kind, Node, Object, ObjectKey, ObjectMeta, Pod,
    PodPhase, Quantity, ResourceList, Toleration, TolerationOperator,
};
use kubesim_model::client::Cache;
use kubesim_model::time::{human_duration, SimTime};

/// The namespace of node heartbeat Leases (`v1.NamespaceNodeLease`).
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// `metav1.Time{}` formatted with `time.RFC1123Z`: what kubectl prints for an unset time.
const ZERO_TIME_RFC1123Z: &str = "Mon, 01 Jan 0001 00:00:00 +0000";

/// describe.go's `PrefixWriter` over `tabbedString`: text goes in with tab-separated cells
/// and comes out aligned by [`PrefixWriter::finish`].
#[derive(Default)]
struct PrefixWriter {
    text: String,
}

/// `w.Write(level, format, args...)`.
macro_rules! w {
    ($w:expr, $level:expr, $($arg:tt)*) => {
        $w.write($level, format_args!($($arg)*))
    };
}

impl PrefixWriter {
    /// Writes `args` after two spaces per level, escaping terminal control characters as
    /// `printers.WriteEscaped` does.
    fn write(&mut self, level: usize, args: fmt::Arguments<'_>) {
        let mut s = "  ".repeat(level);
        let _ = s.write_fmt(args);
        self.text.push_str(&s.replace('\x1b', "^[").replace('\r', "\\r"));
    }

    /// Aligns the cells: `tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)`.
    fn finish(self) -> String {
        let mut tw = tabwriter::TabWriter::new(Vec::new()).minwidth(0).padding(2);
        // Writing into a Vec cannot fail.
        let _ = tw.write_all(self.text.as_bytes());
        let bytes = tw.into_inner().unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// `translateTimestampSince`: `duration.HumanDuration(time.Since(t))`, which tolerates a
/// timestamp up to a second in the future (`0s`) and says `<invalid>` beyond that.
fn since(t: Option<SimTime>, now: SimTime) -> String {
    let Some(t) = t else { return "<unknown>".into() };
    if t <= now {
        return human_duration(now.saturating_sub(t));
    }
    // Go truncates the negative seconds towards zero: -1.9 s is -1, still "0s".
    let ahead_secs = (t.0 - now.0) / 1000;
    if ahead_secs > 1 {
        "<invalid>".into()
    } else {
        "0s".into()
    }
}

fn rfc1123z(t: Option<SimTime>) -> String {
    t.map_or_else(|| ZERO_TIME_RFC1123Z.to_string(), |t| t.rfc1123z())
}

/// `Quantity.String()`: the canonical form the API server stores, whatever the manifest
/// said (`0.5` is `500m`, `1024Mi` is `1Gi`). The suffix family is the quantity's own:
/// binary (`Ki`..`Ei`) or decimal.
fn quantity(q: &Quantity) -> String {
    let text = q.as_str();
    if text.contains(['e', 'E']) && !text.ends_with("Ei") && !text.ends_with('E') {
        // DecimalExponent (`1e3`): rare in manifests; kept as written.
        return text.to_string();
    }
    canonical(q.milli_value() as i128, text.ends_with('i'))
}

/// `CanonicalizeBytes` for an amount in milli-units: the largest suffix that keeps the
/// number whole. Binary amounts under 1024 or with a fraction fall back to decimal, as Go's do.
fn canonical(milli: i128, binary: bool) -> String {
    if milli == 0 {
        return "0".into();
    }
    if binary && milli % 1000 == 0 && (milli / 1000).abs() >= 1024 {
        let mut v = milli / 1000;
        let mut i = 0;
        while i < 6 && v % 1024 == 0 {
            v /= 1024;
            i += 1;
        }
        return format!("{v}{}", ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][i]);
    }
    if milli % 1000 != 0 {
        return format!("{milli}m");
    }
    let mut v = milli / 1000;
    let mut i = 0;
    while i < 6 && v % 1000 == 0 {
        v /= 1000;
        i += 1;
    }
    format!("{v}{}", ["", "k", "M", "G", "T", "P", "E"][i])
}

/// A running sum of one resource, in the format of its first term (Go's `Quantity.Add`
/// keeps the receiver's format).
#[derive(Clone, Copy, Default)]
struct Amount {
    milli: i128,
    binary: Option<bool>,
}

impl Amount {
    fn of(q: &Quantity) -> Amount {
        Amount { milli: q.milli_value() as i128, binary: Some(q.as_str().ends_with('i')) }
    }
    fn add(&mut self, o: Amount) {
        self.milli += o.milli;
        self.binary = self.binary.or(o.binary);
    }
    fn max(&mut self, o: Amount) {
        if o.milli > self.milli {
            *self = o;
        }
    }
    /// `Value()`: whole units, rounded up.
    fn value(self) -> i128 {
        if self.milli >= 0 {
            (self.milli + 999) / 1000
        } else {
            self.milli / 1000
        }
    }
    fn string(self) -> String {
        canonical(self.milli, self.binary.unwrap_or(false))
    }
}

type Amounts = std::collections::BTreeMap<String, Amount>;

fn add_list(sum: &mut Amounts, list: &ResourceList) {
    for (k, q) in list {
        sum.entry(k.clone()).or_default().add(Amount::of(q));
    }
}

fn max_list(sum: &mut Amounts, list: &ResourceList) {
    for (k, q) in list {
        sum.entry(k.clone()).or_default().max(Amount::of(q));
    }
}

/// kubectl's `resourcehelper.PodRequestsAndLimits`: containers summed, raised to the
/// largest init container, plus overhead (added to limits only where a limit is set).
fn pod_requests_and_limits(p: &Pod) -> (Amounts, Amounts) {
    let (mut reqs, mut limits) = (Amounts::new(), Amounts::new());
    for c in &p.spec.containers {
        add_list(&mut reqs, &c.resources.requests_or_limits());
        add_list(&mut limits, &c.resources.limits);
    }
    for c in &p.spec.init_containers {
        max_list(&mut reqs, &c.resources.requests_or_limits());
        max_list(&mut limits, &c.resources.limits);
    }
    add_list(&mut reqs, &p.spec.overhead);
    for (k, q) in &p.spec.overhead {
        if let Some(l) = limits.get_mut(k) {
            l.add(Amount::of(q));
        }
    }
    (reqs, limits)
}

/// `printLabelsMultiline`: `key=value` lines under one label, sorted.
fn labels_multiline<'a>(
    w: &mut PrefixWriter,
    title: &str,
    pairs: impl IntoIterator<Item = (&'a String, &'a String)>,
) {
    let lines: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    lines_multiline(w, title, &lines);
}

/// The shape shared by kubectl's `print*Multiline` helpers: `Title:\tfirst`, then
/// `\tnext` for each further item, or `Title:\t<none>`.
fn lines_multiline(w: &mut PrefixWriter, title: &str, lines: &[String]) {
    w!(w, 0, "{title}:\t");
    if lines.is_empty() {
        w!(w, 0, "<none>\n");
    }
    for (i, l) in lines.iter().enumerate() {
        if i != 0 {
            w!(w, 0, "\t");
        }
        w!(w, 0, "{l}\n");
    }
}

/// The longest annotation line kubectl prints whole (`maxAnnotationLen`).
const MAX_ANNOTATION_LEN: usize = 140;
/// Never shown by describe (`skipAnnotations`).
const LAST_APPLIED_CONFIG_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// `printAnnotationsMultiline`: `key: value`, or the key alone with the value indented
/// below it when it is long or spans lines.
fn annotations_multiline(w: &mut PrefixWriter, m: &std::collections::BTreeMap<String, String>) {
    annotations_multiline_titled(w, "Annotations", m);
}

fn annotations_multiline_titled(
    w: &mut PrefixWriter,
    title: &str,
    m: &std::collections::BTreeMap<String, String>,
) {
    w!(w, 0, "{title}:\t");
    let keys: Vec<&String> = m.keys().filter(|k| *k != LAST_APPLIED_CONFIG_ANNOTATION).collect();
    if keys.is_empty() {
        w!(w, 0, "<none>\n");
    }
    for (i, k) in keys.into_iter().enumerate() {
        if i != 0 {
            w!(w, 0, "\t");
        }
        let value = m[k].strip_suffix('\n').unwrap_or(&m[k]);
        if value.len() + k.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            w!(w, 0, "{k}:\n");
            for s in value.split('\n') {
                let short = match s.char_indices().nth(MAX_ANNOTATION_LEN - 2) {
                    Some((cut, _)) => format!("{}...", &s[..cut]),
                    None => s.to_string(),
                };
                w!(w, 0, "\t  {short}\n");
            }
        } else {
            w!(w, 0, "{k}: {value}\n");
        }
    }
}

/// `printTolerationsMultilineWithIndent`, sorted by key.
fn toleration_string(t: &Toleration) -> String {
    let mut s = t.key.clone();
    if !t.value.is_empty() {
        s += &format!("={}", t.value);
    }
    if let Some(e) = t.effect {
        s += &format!(":{}", e.as_str());
    }
    // An empty key and effect with operator Exists tolerates everything.
    if t.operator == Some(TolerationOperator::Exists) && t.value.is_empty() {
        s += if s.is_empty() { "op=Exists" } else { " op=Exists" };
    }
    if let Some(sec) = t.toleration_seconds {
        s += &format!(" for {sec}s");
    }
    s
}

/// The events about one object, as kubectl's `searchEvents` finds them: by the field
/// selector `involvedObject.{name,namespace,kind,uid}` (kind left out for pods), then sorted
/// by lastTimestamp (`event.SortableEvents`) from the API's namespace/name order. An event
/// whose reference has no uid (the taint eviction controller's `TaintManagerEviction`)
/// does not match a selector on the uid, so kubectl does not show it here.
fn events_for<'a>(cache: &'a Cache, kind: Option<Kind>, meta: &ObjectMeta, uids: &[&str]) -> Vec<&'a Event> {
    let mut evs: Vec<&Event> = cache
        .list(Kind::Event)
        .filter_map(|o| o.as_event())
        .filter(|e| {
            let o = &e.involved_object;
            o.name == meta.name
                && o.namespace == meta.namespace
                && kind.is_none_or(|k| o.kind == k.as_str())
                && uids.contains(&o.uid.as_str())
        })
        .collect();
    evs.sort_by_key(|e| e.last_timestamp);
    evs
}

/// `DescribeEvents`.
fn describe_events(w: &mut PrefixWriter, evs: &[&Event], now: SimTime) {
    if evs.is_empty() {
        w!(w, 0, "Events:\t<none>\n");
        return;
    }
    w!(w, 0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
    w!(w, 1, "----\t------\t----\t----\t-------\n");
    for e in evs {
        let first = since(e.first_timestamp, now);
        let age = if e.count > 1 {
            format!("{} (x{} over {first})", since(e.last_timestamp, now), e.count)
        } else {
            first
        };
        let source = if e.source.component.is_empty() { &e.reporting_component } else { &e.source.component };
        w!(w, 1, "{}\t{}\t{age}\t{source}\t{}\n", e.type_, e.reason, e.message.trim());
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
        Object::ConfigMap(c) => Ok(describe_config_map(cache, c, now)),
        Object::Secret(x) => Ok(describe_secret(x)),
        Object::ServiceAccount(sa) => Ok(describe_service_account(cache, sa, now)),
        Object::Deployment(d) => Ok(describe_deployment(cache, d, now)),
        Object::StatefulSet(st) => Ok(describe_statefulset(cache, st, now)),
        Object::Job(j) => Ok(describe_job(cache, j, now)),
        Object::PersistentVolumeClaim(c) => Ok(describe_pvc(cache, c, now)),
        other => super::yaml::to_string(&other.to_json_value()),
    }
}

/// `ConfigMapDescriber`: each key with its value under a rule, then the binary keys'
/// sizes. kubectl ranges over Go maps (random order); here keys are sorted.
fn describe_config_map(cache: &Cache, c: &kubesim_model::api::ConfigMap, now: SimTime) -> String {
    let mut w = PrefixWriter::default();
    let m = &c.metadata;
    w!(w, 0, "Name:\t{}\n", m.name);
    w!(w, 0, "Namespace:\t{}\n", m.namespace);
    labels_multiline(&mut w, "Labels", &m.labels);
    annotations_multiline(&mut w, &m.annotations);
    w!(w, 0, "\nData\n====\n");
    for (k, v) in &c.data {
        w!(w, 0, "{k}:\n----\n");
        w!(w, 0, "{v}\n");
        w!(w, 0, "\n");
    }
    w!(w, 0, "\nBinaryData\n====\n");
    for (k, v) in &c.binary_data {
        let len = kubesim_model::api::config::base64_decoded_len(v).unwrap_or(0);
        w!(w, 0, "{k}: {len} bytes\n");
    }
    w!(w, 0, "\n");
    describe_events(&mut w, &events_for(cache, Some(Kind::ConfigMap), m, &[&m.uid]), now);
    w.finish()
}

/// `describeServiceAccount`: image pull secrets, mountable secrets (a missing one marked
/// "(not found)") and tokens, under upstream's padded headers in sorted order. No token
/// Secrets are generated since v1.24, so Tokens is `<none>`.
fn describe_service_account(cache: &Cache, sa: &kubesim_model::api::ServiceAccount, now: SimTime) -> String {
    let mut w = PrefixWriter::default();
    let m = &sa.metadata;
    w!(w, 0, "Name:\t{}\n", m.name);
    w!(w, 0, "Namespace:\t{}\n", m.namespace);
    labels_multiline(&mut w, "Labels", &m.labels);
    annotations_multiline(&mut w, &m.annotations);
    let names = |field: &str| -> Vec<String> {
        sa.extra
            .get(field)
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("name").and_then(|n| n.as_str()).map(str::to_string))
            .collect()
    };
    let mountable: Vec<String> = names("secrets")
        .into_iter()
        .map(|n| {
            let found = cache.get(&ObjectKey::new(Kind::Secret, m.namespace.clone(), n.clone())).is_some();
            if found {
                n
            } else {
                format!("{n} (not found)")
            }
        })
        .collect();
    let empty_header = "                   ";
    for (header, list) in [
        ("Image pull secrets:", names("imagePullSecrets")),
        ("Mountable secrets: ", mountable),
        ("Tokens:            ", vec![]),
    ] {
        if list.is_empty() {
            w!(w, 0, "{header}\t<none>\n");
        }
        for (i, n) in list.iter().enumerate() {
            let h = if i == 0 { header } else { empty_header };
            w!(w, 0, "{h}\t{n}\n");
        }
    }
    describe_events(&mut w, &events_for(cache, Some(Kind::ServiceAccount), m, &[&m.uid]), now);
    w.finish()
}

/// `describeSecret`: the type and each key's size, never its value.
fn describe_secret(s: &kubesim_model::api::Secret) -> String {
    let mut w = PrefixWriter::default();
    let m = &s.metadata;
    w!(w, 0, "Name:\t{}\n", m.name);
    w!(w, 0, "Namespace:\t{}\n", m.namespace);
    labels_multiline(&mut w, "Labels", &m.labels);
    annotations_multiline(&mut w, &m.annotations);
    w!(w, 0, "\nType:\t{}\n", s.type_);
    w!(w, 0, "\nData\n====\n");
    for (k, v) in &s.data {
        let len = kubesim_model::api::config::base64_decoded_len(v).unwrap_or(0);
        w!(w, 0, "{k}:\t{len} bytes\n");
    }
    w.finish()
}

fn describe_pod(cache: &Cache, p: &Pod, now: SimTime) -> String {
    let mut w = PrefixWriter::default();
    let m = &p.metadata;
    w!(w, 0, "Name:\t{}\n", m.name);
    w!(w, 0, "Namespace:\t{}\n", m.namespace);
    if let Some(prio) = p.spec.priority {
        w!(w, 0, "Priority:\t{prio}\n");
    }
    if !p.spec.priority_class_name.is_empty() {
        w!(w, 0, "Priority Class Name:\t{}\n", p.spec.priority_class_name);
    }
    w!(w, 0, "Service Account:\t{}\n", p.spec.service_account_name);
    if p.spec.node_name.is_empty() {
        w!(w, 0, "Node:\t<none>\n");
    } else {
        w!(w, 0, "Node:\t{}/{}\n", p.spec.node_name, p.status.host_ip);
    }
    if let Some(t) = p.status.start_time {
        w!(w, 0, "Start Time:\t{}\n", t.rfc1123z());
    }
    labels_multiline(&mut w, "Labels", &m.labels);
    annotations_multiline(&mut w, &m.annotations);
    let finished = matches!(p.phase(), PodPhase::Failed | PodPhase::Succeeded);
    match m.deletion_timestamp {
        Some(t) if !finished => {
            w!(w, 0, "Status:\tTerminating (lasts {})\n", since(Some(t), now));
            w!(w, 0, "Termination Grace Period:\t{}s\n", m.deletion_grace_period_seconds.unwrap_or(0));
        }
        _ => w!(w, 0, "Status:\t{}\n", p.phase().as_str()),
    }
    if !p.status.reason.is_empty() {
        w!(w, 0, "Reason:\t{}\n", p.status.reason);
    }
    if !p.status.message.is_empty() {
        w!(w, 0, "Message:\t{}\n", p.status.message);
    }
    w!(w, 0, "IP:\t{}\n", p.status.pod_ip);
    // describePodIPs.
    if p.status.pod_ips.is_empty() {
        w!(w, 0, "IPs:\t<none>\n");
    } else {
        w!(w, 0, "IPs:\n");
        for ip in &p.status.pod_ips {
            w!(w, 1, "IP:\t{}\n", ip.ip);
        }
    }
    if let Some(r) = m.controller_of() {
        w!(w, 0, "Controlled By:\t{}/{}\n", r.kind, r.name);
    }
    if !p.status.nominated_node_name.is_empty() {
        w!(w, 0, "NominatedNodeName:\t{}\n", p.status.nominated_node_name);
    }
    if !p.spec.init_containers.is_empty() {
        describe_containers(
            &mut w,
            p,
            "Init Containers",
            &p.spec.init_containers,
            &p.status.init_container_statuses,
            "",
        );
    }
    describe_containers(&mut w, p, "Containers", &p.spec.containers, &p.status.container_statuses, "");
    if !p.status.conditions.is_empty() {
        w!(w, 0, "Conditions:\n  Type\tStatus\n");
        for c in &p.status.conditions {
            w!(w, 1, "{} \t{} \n", c.type_, c.status.as_str());
        }
    }
    describe_volumes(&mut w, &p.spec.volumes, "");
    w!(w, 0, "QoS Class:\t{}\n", qos_class(p));
    labels_multiline(&mut w, "Node-Selectors", &p.spec.node_selector);
    let mut tols: Vec<&Toleration> = p.spec.tolerations.iter().collect();
    tols.sort_by(|a, b| a.key.cmp(&b.key));
    let tols: Vec<String> = tols.into_iter().map(toleration_string).collect();
    lines_multiline(&mut w, "Tolerations", &tols);
    describe_events(&mut w, &events_for(cache, None, m, &[&m.uid]), now);
    w.finish()
}

fn or_default<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() {
        default
    } else {
        s
    }
}

/// `qos.GetPodQOS`: status.qosClass, else computed from the containers' cpu and memory.
fn qos_class(p: &Pod) -> String {
    if !p.status.qos_class.is_empty() {
        return p.status.qos_class.clone();
    }
    let all = || p.spec.containers.iter().chain(&p.spec.init_containers);
    let tracked = |l: &ResourceList| -> Vec<(String, i64)> {
        ["cpu", "memory"]
            .into_iter()
            .filter_map(|k| {
                l.get(k).filter(|q| q.milli_value() != 0).map(|q| (k.to_string(), q.milli_value()))
            })
            .collect()
    };
    if all().all(|c| tracked(&c.resources.requests).is_empty() && tracked(&c.resources.limits).is_empty()) {
        return "BestEffort".into();
    }
    let guaranteed = all().all(|c| {
        let limits = tracked(&c.resources.limits);
        limits.len() == 2 && tracked(&c.resources.requests_or_limits()) == limits
    });
    if guaranteed { "Guaranteed" } else { "Burstable" }.into()
}

/// `describeContainers`.
/// `describeContainers`: `space` is the pod template's indent, which moves the section's
/// title and (by one space) each container's name, not the lines under them.
fn describe_containers(
    w: &mut PrefixWriter,
    pod: &Pod,
    label: &str,
    cs: &[Container],
    statuses: &[ContainerStatus],
    space: &str,
) {
    w!(w, 0, "{space}{label}:{}\n", if cs.is_empty() { " <none>" } else { "" });
    let name_indent = if space.is_empty() { "" } else { " " };
    for c in cs {
        let status = statuses.iter().find(|s| s.name == c.name);
        w!(w, 1, "{name_indent}{}:\n", c.name);
        if let Some(s) = status {
            w!(w, 2, "Container ID:\t{}\n", s.container_id);
        }
        w!(w, 2, "Image:\t{}\n", c.image);
        if let Some(s) = status {
            w!(w, 2, "Image ID:\t{}\n", s.image_id);
        }
        let ports: Vec<String> =
            c.ports.iter().map(|p| format!("{}/{}", p.container_port, p.protocol)).collect();
        let host_ports: Vec<String> =
            c.ports.iter().map(|p| format!("{}/{}", p.host_port, p.protocol)).collect();
        let (ports, host_ports) = (ports.join(", "), host_ports.join(", "));
        let plural = |s: &str| if s.contains(',') { "s" } else { "" };
        w!(w, 2, "Port{}:\t{}\n", plural(&ports), or_default(&ports, "<none>"));
        w!(w, 2, "Host Port{}:\t{}\n", plural(&host_ports), or_default(&host_ports, "<none>"));
        for (title, list) in [("Command", &c.command), ("Args", &c.args)] {
            if !list.is_empty() {
                w!(w, 2, "{title}:\n");
                for s in list.iter().flat_map(|a| a.split('\n')) {
                    w!(w, 3, "{s}\n");
                }
            }
        }
        if let Some(s) = status {
            describe_state(w, "State", &s.state);
            if s.last_state.terminated.is_some() {
                describe_state(w, "Last State", &s.last_state);
            }
            w!(w, 2, "Ready:\t{}\n", if s.ready { "True" } else { "False" });
            w!(w, 2, "Restart Count:\t{}\n", s.restart_count);
        }
        for (title, list) in [("Limits", &c.resources.limits), ("Requests", &c.resources.requests)] {
            if !list.is_empty() {
                w!(w, 2, "{title}:\n");
            }
            for (k, q) in list {
                w!(w, 3, "{k}:\t{}\n", quantity(q));
            }
        }
        // describeContainerProbe.
        for (title, probe) in [
            ("Liveness", &c.liveness_probe),
            ("Readiness", &c.readiness_probe),
            ("Startup", &c.startup_probe),
        ] {
            if let Some(p) = probe {
                w!(w, 2, "{title}:\t{}\n", describe_probe(p));
            }
        }
        if !c.env_from.is_empty() {
            describe_env_from(w, c);
        }
        describe_env(w, pod, c);
        describe_mounts(w, c);
    }
}

/// `describeContainerEnvFrom`.
fn describe_env_from(w: &mut PrefixWriter, c: &Container) {
    w!(w, 2, "Environment Variables from:\n");
    for e in &c.env_from {
        let (name, from, optional) = match (&e.config_map_ref, &e.secret_ref) {
            (Some(r), _) => (r.name.as_str(), "ConfigMap", r.is_optional()),
            (None, Some(r)) => (r.name.as_str(), "Secret", r.is_optional()),
            (None, None) => ("", "", false),
        };
        if e.prefix.is_empty() {
            w!(w, 3, "{name}\t{from}\tOptional: {optional}\n");
        } else {
            w!(w, 3, "{name}\t{from} with prefix '{}'\tOptional: {optional}\n", e.prefix);
        }
    }
}

/// `describeContainerEnvVars`: literal values (a line a line), and where the others come
/// from; a fieldRef shows the value kubectl can read from the pod itself.
fn describe_env(w: &mut PrefixWriter, pod: &Pod, c: &Container) {
    w!(w, 2, "Environment:{}\n", if c.env.is_empty() { "\t<none>" } else { "" });
    for e in &c.env {
        let Some(from) = &e.value_from else {
            for (i, line) in e.value.split('\n').enumerate() {
                if i == 0 {
                    w!(w, 3, "{}:\t{line}\n", e.name);
                } else {
                    w!(w, 3, "\t{line}\n");
                }
            }
            continue;
        };
        if let Some(f) = &from.field_ref {
            let value = field_value(pod, &f.field_path);
            w!(w, 3, "{}:\t{value} ({}:{})\n", e.name, f.api_version, f.field_path);
        } else if let Some(r) = &from.resource_field_ref {
            let mut value = resource_value(c, r);
            if value == "0" && (r.resource == "limits.cpu" || r.resource == "limits.memory") {
                value = "node allocatable".into();
            }
            w!(w, 3, "{}:\t{value} ({})\n", e.name, r.resource);
        } else if let Some(k) = &from.secret_key_ref {
            let optional = k.is_optional();
            w!(
                w,
                3,
                "{}:\t<set to the key '{}' in secret '{}'>\tOptional: {optional}\n",
                e.name,
                k.key,
                k.name
            );
        } else if let Some(k) = &from.config_map_key_ref {
            let optional = k.is_optional();
            w!(
                w,
                3,
                "{}:\t<set to the key '{}' of config map '{}'>\tOptional: {optional}\n",
                e.name,
                k.key,
                k.name
            );
        }
    }
}

/// `fieldpath.ExtractFieldPathAsString` as kubectl runs it on the pod: metadata fields
/// only (others, such as status.podIP, print empty).
fn field_value(pod: &Pod, path: &str) -> String {
    let m = &pod.metadata;
    // FormatMap: sorted `key="value"` lines.
    let format_map = |map: &std::collections::BTreeMap<String, String>| {
        map.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join("\n")
    };
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix("['"))
            .and_then(|rest| rest.strip_suffix("']"))
            .map(str::to_string)
    };
    match path {
        "metadata.name" => m.name.clone(),
        "metadata.namespace" => m.namespace.clone(),
        "metadata.uid" => m.uid.clone(),
        "metadata.labels" => format_map(&m.labels),
        "metadata.annotations" => format_map(&m.annotations),
        _ => {
            if let Some(k) = subscript("metadata.labels") {
                m.labels.get(&k).cloned().unwrap_or_default()
            } else if let Some(k) = subscript("metadata.annotations") {
                m.annotations.get(&k).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        }
    }
}

/// `resourcehelper.ExtractContainerResourceValue`: the container's request or limit over
/// the divisor (default 1), rounded up.
fn resource_value(c: &Container, r: &kubesim_model::api::pod::ResourceFieldSelector) -> String {
    let Some((kind, name)) = r.resource.split_once('.') else { return String::new() };
    let list = match kind {
        "limits" => &c.resources.limits,
        "requests" => &c.resources.requests,
        _ => return String::new(),
    };
    if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !name.starts_with("hugepages-") {
        return String::new();
    }
    let amount = list.get(name);
    let one = Quantity::parse("1").expect("a quantity");
    let divisor = r.divisor.as_ref().filter(|d| d.milli_value() != 0).unwrap_or(&one);
    let value = if name == "cpu" {
        let milli = amount.map_or(0, |q| q.milli_value()) as f64;
        (milli / divisor.milli_value() as f64).ceil()
    } else {
        (amount.map_or(0, |q| q.value()) as f64 / divisor.value() as f64).ceil()
    };
    format!("{}", value as i64)
}

/// `describeContainerVolumes`: mounts sorted by path.
fn describe_mounts(w: &mut PrefixWriter, c: &Container) {
    w!(w, 2, "Mounts:{}\n", if c.volume_mounts.is_empty() { "\t<none>" } else { "" });
    let mut mounts: Vec<_> = c.volume_mounts.iter().collect();
    mounts.sort_by(|a, b| a.mount_path.cmp(&b.mount_path));
    for m in mounts {
        let mut flags = vec![if m.read_only { "ro".to_string() } else { "rw".to_string() }];
        if !m.sub_path.is_empty() {
            flags.push(format!("path={:?}", m.sub_path));
        }
        w!(w, 3, "{} from {} ({})\n", m.mount_path, m.name, flags.join(","));
    }
}

/// `describeVolumes`: each volume with its source's lines.
fn describe_volumes(w: &mut PrefixWriter, volumes: &[kubesim_model::api::pod::Volume], space: &str) {
    if volumes.is_empty() {
        w!(w, 0, "{space}Volumes:\t<none>\n");
        return;
    }
    w!(w, 0, "{space}Volumes:\n");
    let name_indent = if space.is_empty() { "" } else { " " };
    for v in volumes {
        w!(w, 1, "{name_indent}{}:\n", v.name);
        if let Some(h) = &v.host_path {
            let t = h.type_.as_deref().unwrap_or("<none>");
            w!(
                w,
                2,
                "Type:\tHostPath (bare host directory volume)\n    Path:\t{}\n    HostPathType:\t{t}\n",
                h.path
            );
        } else if let Some(e) = &v.empty_dir {
            let limit =
                e.size_limit.as_ref().filter(|q| q.milli_value() > 0).map_or("<unset>".into(), quantity);
            w!(w, 2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t{}\n    SizeLimit:\t{limit}\n", e.medium);
        } else if let Some(s) = &v.secret {
            let optional = s.optional == Some(true);
            w!(w, 2, "Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t{}\n    Optional:\t{optional}\n", s.secret_name);
        } else if let Some(c) = &v.config_map {
            let optional = c.optional == Some(true);
            w!(w, 2, "Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t{}\n    Optional:\t{optional}\n", c.name);
        } else if let Some(c) = &v.persistent_volume_claim {
            w!(w, 2, "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n    ClaimName:\t{}\n    ReadOnly:\t{}\n", c.claim_name, c.read_only);
        } else if let Some(d) = &v.downward_api {
            w!(w, 2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n    Items:\n");
            for i in &d.items {
                if let Some(f) = &i.field_ref {
                    w!(w, 3, "{} -> {}\n", f.field_path, i.path);
                }
                if let Some(r) = &i.resource_field_ref {
                    w!(w, 3, "{} -> {}\n", r.resource, i.path);
                }
            }
        } else if let Some(p) = &v.projected {
            describe_projected(w, p);
        } else if let Some(csi) = v.extra.get("csi") {
            // printCSIVolumeSource.
            let text = |k: &str| csi.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
            let read_only = csi.get("readOnly").and_then(|x| x.as_bool()).unwrap_or(false);
            w!(w, 2, "Type:\tCSI (a Container Storage Interface (CSI) volume source)\n    Driver:\t{}\n    FSType:\t{}\n    ReadOnly:\t{read_only}\n", text("driver"), text("fsType"));
            let attrs: Vec<String> = csi
                .get("volumeAttributes")
                .and_then(|a| a.as_object())
                .map(|a| a.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect())
                .unwrap_or_default();
            // printCSIPersistentVolumeAttributesMultilineIndent: every piece is written at
            // level 2, so each takes four spaces before it.
            w!(w, 2, "VolumeAttributes:\t");
            if attrs.is_empty() {
                w!(w, 0, "<none>\n");
            }
            for (i, a) in attrs.iter().enumerate() {
                if i != 0 {
                    w!(w, 2, "");
                    w!(w, 2, "\t");
                }
                let cut = a.char_indices().nth(MAX_ANNOTATION_LEN).map(|(i, _)| i);
                match cut {
                    Some(i) => w!(w, 2, "{}...\n", &a[..i]),
                    None => w!(w, 2, "{a}\n"),
                }
            }
        } else if let Some(nfs) = v.extra.get("nfs") {
            // printNFSVolumeSource.
            let text = |k: &str| nfs.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
            let read_only = nfs.get("readOnly").and_then(|x| x.as_bool()).unwrap_or(false);
            w!(w, 2, "Type:\tNFS (an NFS mount that lasts the lifetime of a pod)\n    Server:\t{}\n    Path:\t{}\n    ReadOnly:\t{read_only}\n", text("server"), text("path"));
        } else {
            w!(w, 1, "<unknown>\n");
        }
    }
}

/// `printProjectedVolumeSource`.
fn describe_projected(w: &mut PrefixWriter, p: &kubesim_model::api::pod::ProjectedVolumeSource) {
    w!(w, 2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n");
    for s in &p.sources {
        if let Some(x) = &s.secret {
            let optional = x.optional == Some(true);
            w!(w, 2, "SecretName:\t{}\n    Optional:\t{optional}\n", x.name);
        } else if s.downward_api.is_some() {
            w!(w, 2, "DownwardAPI:\ttrue\n");
        } else if let Some(x) = &s.config_map {
            let optional = x.optional == Some(true);
            w!(w, 2, "ConfigMapName:\t{}\n    Optional:\t{optional}\n", x.name);
        } else if let Some(t) = &s.service_account_token {
            w!(w, 2, "TokenExpirationSeconds:\t{}\n", t.expiration_seconds.unwrap_or(0));
        }
    }
}

/// `DescribeProbe`: the handler and its timing as stored (the API server defaulted
/// them, SetDefaults_Probe and SetDefaults_HTTPGetAction).
fn describe_probe(p: &kubesim_model::api::Probe) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        p.initial_delay_seconds.unwrap_or(0),
        p.timeout_seconds.unwrap_or(0),
        p.period_seconds.unwrap_or(0),
        p.success_threshold.unwrap_or(0),
        p.failure_threshold.unwrap_or(0)
    );
    if let Some(e) = &p.exec {
        // Go's %v of a []string.
        return format!("exec [{}] {attrs}", e.command.join(" "));
    }
    if let Some(h) = &p.http_get {
        let scheme = h.scheme.to_lowercase();
        let port = h.port.to_string();
        // net.JoinHostPort brackets IPv6 hosts.
        let host = if h.host.contains(':') { format!("[{}]", h.host) } else { h.host.clone() };
        let authority = if port.is_empty() { host } else { format!("{host}:{port}") };
        return format!("http-get {scheme}://{authority}{} {attrs}", h.path);
    }
    if let Some(t) = &p.tcp_socket {
        return format!("tcp-socket {}:{} {attrs}", t.host, t.port);
    }
    if let Some(g) = &p.grpc {
        return format!("grpc <pod>:{} {} {attrs}", g.port, g.service.as_deref().unwrap_or(""));
    }
    format!("unknown {attrs}")
}

/// `describeStatus`.
fn describe_state(w: &mut PrefixWriter, name: &str, state: &ContainerState) {
    if let Some(r) = &state.running {
        w!(w, 2, "{name}:\tRunning\n");
        w!(w, 3, "Started:\t{}\n", rfc1123z(r.started_at));
    } else if let Some(t) = &state.terminated {
        w!(w, 2, "{name}:\tTerminated\n");
        if !t.reason.is_empty() {
            w!(w, 3, "Reason:\t{}\n", t.reason);
        }
        if !t.message.is_empty() {
            w!(w, 3, "Message:\t{}\n", t.message);
        }
        w!(w, 3, "Exit Code:\t{}\n", t.exit_code);
        w!(w, 3, "Started:\t{}\n", rfc1123z(t.started_at));
        w!(w, 3, "Finished:\t{}\n", rfc1123z(t.finished_at));
    } else {
        w!(w, 2, "{name}:\tWaiting\n");
        if let Some(r) = state.waiting.as_ref().filter(|s| !s.reason.is_empty()) {
            w!(w, 3, "Reason:\t{}\n", r.reason);
        }
    }
}

fn describe_node(cache: &Cache, n: &Node, now: SimTime) -> String {
    let mut w = PrefixWriter::default();
    let m = &n.metadata;
    w!(w, 0, "Name:\t{}\n", m.name);
    w!(w, 0, "Roles:\t{}\n", super::roles(n));
    labels_multiline(&mut w, "Labels", &m.labels);
    annotations_multiline(&mut w, &m.annotations);
    w!(w, 0, "CreationTimestamp:\t{}\n", rfc1123z(m.creation_timestamp));
    // printNodeTaintsMultiline sorts by "effect,key".
    let mut taints: Vec<_> = n.spec.taints.iter().collect();
    taints.sort_by_key(|t| (t.effect.as_str(), &t.key));
    let taints: Vec<String> = taints.iter().map(|t| t.to_string()).collect();
    lines_multiline(&mut w, "Taints", &taints);
    w!(w, 0, "Unschedulable:\t{}\n", n.spec.unschedulable);
    describe_node_lease(&mut w, cache, &m.name);
    if !n.status.conditions.is_empty() {
        w!(w, 0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n");
        w!(w, 1, "----\t------\t-----------------\t------------------\t------\t-------\n");
        for c in &n.status.conditions {
            w!(
                w,
                1,
                "{} \t{} \t{} \t{} \t{} \t{}\n",
                c.type_,
                c.status.as_str(),
                rfc1123z(c.last_heartbeat_time),
                rfc1123z(c.last_transition_time),
                c.reason,
                c.message
            );
        }
    }
    w!(w, 0, "Addresses:\n");
    for a in &n.status.addresses {
        w!(w, 1, "{}:\t{}\n", a.type_, a.address);
    }
    for (title, list) in [("Capacity", &n.status.capacity), ("Allocatable", &n.status.allocatable)] {
        if !list.is_empty() {
            w!(w, 0, "{title}:\n");
        }
        for (k, q) in list {
            w!(w, 0, "  {k}:\t{}\n", quantity(q));
        }
    }
    let i = &n.status.node_info;
    w!(w, 0, "System Info:\n");
    // kube-proxy no longer reports a version (kubeProxyVersion is deprecated and empty).
    for (k, v) in [
        ("Machine ID", i.machine_id.as_str()),
        ("System UUID", &i.system_uuid),
        ("Boot ID", &i.boot_id),
        ("Kernel Version", &i.kernel_version),
        ("OS Image", &i.os_image),
        ("Operating System", &i.operating_system),
        ("Architecture", &i.architecture),
        ("Container Runtime Version", &i.container_runtime_version),
        ("Kubelet Version", &i.kubelet_version),
        ("Kube-Proxy Version", ""),
    ] {
        w!(w, 0, "  {k}:\t{v}\n");
    }
    if !n.spec.pod_cidr.is_empty() {
        w!(w, 0, "PodCIDR:\t{}\n", n.spec.pod_cidr);
    }
    if !n.spec.pod_cidrs.is_empty() {
        w!(w, 0, "PodCIDRs:\t{}\n", n.spec.pod_cidrs.join(","));
    }
    if !n.spec.provider_id.is_empty() {
        w!(w, 0, "ProviderID:\t{}\n", n.spec.provider_id);
    }
    describe_node_resource(&mut w, cache, n, now);
    // Controllers name the node by its uid, kubelets by its name.
    describe_events(&mut w, &events_for(cache, Some(Kind::Node), m, &[&m.uid, &m.name]), now);
    w.finish()
}

/// `describeNodeLease`, or the error kubectl prints when the Lease cannot be read.
fn describe_node_lease(w: &mut PrefixWriter, cache: &Cache, node: &str) {
    let key = ObjectKey::new(Kind::Lease, NODE_LEASE_NAMESPACE, node);
    let Some(l) = cache.get(&key).and_then(|o| o.as_lease()) else {
        w!(w, 0, "Lease:\tFailed to get lease: leases.coordination.k8s.io \"{node}\" not found\n");
        return;
    };
    let s = &l.spec;
    w!(w, 0, "Lease:\n");
    w!(w, 1, "HolderIdentity:\t{}\n", s.holder_identity.as_deref().unwrap_or("<unset>"));
    w!(w, 1, "AcquireTime:\t{}\n", s.acquire_time.map_or("<unset>".into(), |t| t.rfc1123z()));
    w!(w, 1, "RenewTime:\t{}\n", s.renew_time.map_or("<unset>".into(), |t| t.rfc1123z()));
}

/// `int64(float64(used) / float64(allocatable) * 100)`, 0 when nothing is allocatable.
fn percent(used: i128, allocatable: i128) -> i64 {
    if allocatable == 0 {
        0
    } else {
        (used as f64 / allocatable as f64 * 100.0) as i64
    }
}

/// `describeNodeResource`: the node's pods that have not finished, and their totals.
fn describe_node_resource(w: &mut PrefixWriter, cache: &Cache, n: &Node, now: SimTime) {
    let pods: Vec<&Pod> = cache
        .list(Kind::Pod)
        .filter_map(|o| o.as_pod())
        .filter(|p| {
            p.spec.node_name == n.metadata.name
                && !matches!(p.phase(), PodPhase::Succeeded | PodPhase::Failed)
        })
        .collect();
    let allocatable =
        if n.status.allocatable.is_empty() { &n.status.capacity } else { &n.status.allocatable };
    let alloc = |k: &str| allocatable.get(k).map(Amount::of).unwrap_or_default();
    let (cpu, mem) = (alloc("cpu").milli, alloc("memory").value());
    let get = |m: &Amounts, k: &str| m.get(k).copied().unwrap_or_default();
    let cell = |a: Amount, whole: i128, milli: bool| {
        format!("{} ({}%)", a.string(), percent(if milli { a.milli } else { a.value() }, whole))
    };
    w!(w, 0, "Non-terminated Pods:\t({} in total)\n", pods.len());
    w!(w, 1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n");
    w!(w, 1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n");
    let (mut reqs, mut limits) = (Amounts::new(), Amounts::new());
    for p in &pods {
        let (r, l) = pod_requests_and_limits(p);
        w!(
            w,
            1,
            "{}\t{}\t\t{}\t{}\t{}\t{}\t{}\n",
            p.metadata.namespace,
            p.metadata.name,
            cell(get(&r, "cpu"), cpu, true),
            cell(get(&l, "cpu"), cpu, true),
            cell(get(&r, "memory"), mem, false),
            cell(get(&l, "memory"), mem, false),
            since(p.metadata.creation_timestamp, now)
        );
        for (k, a) in r {
            reqs.entry(k).or_default().add(a);
        }
        for (k, a) in l {
            limits.entry(k).or_default().add(a);
        }
    }
    w!(w, 0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n");
    w!(w, 1, "Resource\tRequests\tLimits\n");
    w!(w, 1, "--------\t--------\t------\n");
    let storage = alloc("ephemeral-storage").value();
    for (k, whole, milli) in
        [("cpu", cpu, true), ("memory", mem, false), ("ephemeral-storage", storage, false)]
    {
        w!(w, 1, "{k}\t{}\t{}\n", cell(get(&reqs, k), whole, milli), cell(get(&limits, k), whole, milli));
    }
    for k in allocatable.keys().filter(|k| k.starts_with("hugepages-")) {
        let whole = alloc(k).value();
        w!(w, 1, "{k}\t{}\t{}\n", cell(get(&reqs, k), whole, false), cell(get(&limits, k), whole, false));
    }
    for k in allocatable.keys().filter(|k| is_extended_resource(k)) {
        w!(w, 1, "{k}\t{}\t{}\n", get(&reqs, k).string(), get(&limits, k).string());
    }
}

/// Not a standard container resource (cpu, memory, ephemeral-storage, hugepages-*) nor
/// pods: listed without a percentage.
fn is_extended_resource(name: &str) -> bool {
    !matches!(name, "cpu" | "memory" | "ephemeral-storage" | "pods") && !name.starts_with("hugepages-")
}

/// `labels.Selector.String()` of `metav1.LabelSelectorAsSelector`: requirements sorted by
/// key, `k=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`; `<none>` for a nil selector.
fn selector_string(s: &kubesim_model::api::LabelSelector) -> String {
    use kubesim_model::api::selector::SelectorOperator;
    let mut reqs: Vec<(String, String)> =
        s.match_labels.iter().map(|(k, v)| (k.clone(), format!("{k}={v}"))).collect();
    for e in &s.match_expressions {
        let mut vals = e.values.clone();
        vals.sort();
        let text = match e.operator {
            SelectorOperator::In => format!("{} in ({})", e.key, vals.join(",")),
            SelectorOperator::NotIn => format!("{} notin ({})", e.key, vals.join(",")),
            SelectorOperator::Exists => e.key.clone(),
            SelectorOperator::DoesNotExist => format!("!{}", e.key),
        };
        reqs.push((e.key.clone(), text));
    }
    reqs.sort();
    reqs.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(",")
}

/// `DescribePodTemplate`.
fn describe_pod_template(w: &mut PrefixWriter, t: &kubesim_model::api::PodTemplateSpec) {
    w!(w, 0, "Pod Template:\n");
    labels_multiline(w, "  Labels", &t.metadata.labels);
    if !t.metadata.annotations.is_empty() {
        annotations_multiline_titled(w, "  Annotations", &t.metadata.annotations);
    }
    let spec = &t.spec;
    if !spec.service_account_name.is_empty() {
        w!(w, 1, "Service Account:\t{}\n", spec.service_account_name);
    }
    // The template's env has no pod to resolve fieldRefs against (kubectl passes no
    // resolver): a pod with the template's spec and nothing else.
    let pod = Pod { spec: t.spec.clone(), ..Default::default() };
    if !spec.init_containers.is_empty() {
        describe_containers(w, &pod, "Init Containers", &spec.init_containers, &[], "  ");
    }
    describe_containers(w, &pod, "Containers", &spec.containers, &[], "  ");
    describe_volumes(w, &spec.volumes, "  ");
    if !spec.priority_class_name.is_empty() {
        w!(w, 1, "Priority Class Name:\t{}\n", spec.priority_class_name);
    }
    labels_multiline(w, "  Node-Selectors", &spec.node_selector);
    let mut tols: Vec<&Toleration> = spec.tolerations.iter().collect();
    tols.sort_by(|a, b| a.key.cmp(&b.key));
    let tols: Vec<String> = tols.into_iter().map(toleration_string).collect();
    lines_multiline(w, "  Tolerations", &tols);
}

/// `getPodStatusForController`: the controller's pods by phase (Running / Pending /
/// Succeeded / Failed).
fn pod_statuses(
    cache: &Cache,
    uid: &str,
    selector: &kubesim_model::api::LabelSelector,
) -> (usize, usize, usize, usize) {
    let (mut running, mut waiting, mut succeeded, mut failed) = (0, 0, 0, 0);
    for p in cache.controlled_by(uid).filter_map(|o| o.as_pod()) {
        if !selector.matches(&p.metadata.labels) {
            continue;
        }
        match p.phase() {
            PodPhase::Running => running += 1,
            PodPhase::Pending => waiting += 1,
            PodPhase::Succeeded => succeeded += 1,
            PodPhase::Failed => failed += 1,
            _ => {}
        }
    }
    (running, waiting, succeeded, failed)
}

/// The Conditions block of Deployments and ReplicaSets: `Type\tStatus\tReason`.
fn workload_conditions(w: &mut PrefixWriter, cs: &[kubesim_model::api::workloads::WorkloadCondition]) {
    if cs.is_empty() {
        return;
    }
    w!(w, 0, "Conditions:\n  Type\tStatus\tReason\n");
    w!(w, 1, "----\t------\t------\n");
    for c in cs {
        w!(w, 1, "{} \t{}\t{}\n", c.type_, c.status.as_str(), c.reason);
    }
}

/// `describeDeployment`.
fn describe_deployment(cache: &Cache, d: &kubesim_model::api::Deployment, now: SimTime) -> String {
    use kubesim_model::api::workloads::DeploymentStrategyType;
    let mut w = PrefixWriter::default();
    let m = &d.metadata;
    w!(w, 0, "Name:\t{}\n", m.name);
    w!(w, 0, "Namespace:\t{}\n", m.namespace);
    w!(w, 0, "CreationTimestamp:\t{}\n", rfc1123z(m.creation_timestamp));
    labels_multiline(&mut w, "Labels", &m.labels);
    annotations_multiline(&mut w, &m.annotations);
    w!(w, 0, "Selector:\t{}\n", selector_string(&d.spec.selector));
    let s = &d.status;
    w!(
        w,
        0,
        "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable\n",
        d.spec.replicas.unwrap_or_default(),
        s.updated_replicas,
        s.replicas,
        s.available_replicas,
        s.unavailable_replicas
    );
    let strategy = d.spec.strategy.as_ref();
    let type_ = match strategy.and_then(|s| s.type_) {
        Some(DeploymentStrategyType::Recreate) => "Recreate",
        Some(DeploymentStrategyType::RollingUpdate) => "RollingUpdate",
        None => "",
    };
    w!(w, 0, "StrategyType:\t{type_}\n");
    w!(w, 0, "MinReadySeconds:\t{}\n", d.spec.min_ready_seconds);
    if let Some(ru) = strategy.and_then(|s| s.rolling_update.as_ref()) {
        let text = |v: &Option<kubesim_model::api::IntOrString>| {
            v.as_ref().map(|v| v.to_string()).unwrap_or_default()
        };
        w!(
            w,
            0,
            "RollingUpdateStrategy:\t{} max unavailable, {} max surge\n",
            text(&ru.max_unavailable),
            text(&ru.max_surge)
        );
    }
    describe_pod_template(&mut w, &d.spec.template);
    workload_conditions(&mut w, &s.conditions);
    // deploymentutil.GetAllReplicaSets: the new one has the template (without its hash
    // label), the old ones are the rest with pods or replicas.
    let mut rss: Vec<&kubesim_model::api::ReplicaSet> =
        cache.controlled_by(&m.uid).filter_map(|o| o.as_replica_set()).collect();
    rss.sort_by_key(|r| (r.metadata.creation_timestamp, r.metadata.name.clone()));
    let strip = |t: &kubesim_model::api::PodTemplateSpec| {
        let mut t = t.clone();
        t.metadata.labels.remove("pod-template-hash");
        t
    };
    let new_rs = rss.iter().find(|r| strip(&r.spec.template) == strip(&d.spec.template)).copied();
    let olds: Vec<&kubesim_model::api::ReplicaSet> = rss
        .iter()
        .filter(|r| Some(r.metadata.uid.as_str()) != new_rs.map(|n| n.metadata.uid.as_str()))
        // FindOldReplicaSets' first list: the old ones still asked for pods.
        .filter(|r| r.spec.replicas.unwrap_or_default() != 0)
        .copied()
        .collect();
    let by_labels = |list: &[&kubesim_model::api::ReplicaSet]| {
        let v: Vec<String> = list
            .iter()
            .map(|r| {
                format!(
                    "{} ({}/{} replicas created)",
                    r.metadata.name,
                    r.status.replicas,
                    r.spec.replicas.unwrap_or_default()
                )
            })
            .collect();
        if v.is_empty() {
            "<none>".to_string()
        } else {
            v.join(", ")
        }
    };
    w!(w, 0, "OldReplicaSets:\t{}\n", by_labels(&olds));
    w!(w, 0, "NewReplicaSet:\t{}\n", by_labels(&new_rs.into_iter().collect::<Vec<_>>()));
    describe_events(&mut w, &events_for(cache, Some(Kind::Deployment), m, &[&m.uid]), now);
    w.finish()
}

/// `describeStatefulSet`.
fn describe_statefulset(cache: &Cache, st: &kubesim_model::api::StatefulSet, now: SimTime) -> String {
    let mut w = PrefixWriter::default();
    let m = &st.metadata;
    w!(w, 0, "Name:\t{}\n", m.name);
    w!(w, 0, "Namespace:\t{}\n", m.namespace);
    w!(w, 0, "CreationTimestamp:\t{}\n", rfc1123z(m.creation_timestamp));
    w!(w, 0, "Selector:\t{}\n", selector_string(&st.spec.selector));
    labels_multiline(&mut w, "Labels", &m.labels);
    annotations_multiline(&mut w, &m.annotations);
    w!(w, 0, "Replicas:\t{} desired | {} total\n", st.spec.replicas.unwrap_or_default(), st.status.replicas);
    let us = st.spec.update_strategy.as_ref();
    w!(w, 0, "Update Strategy:\t{}\n", us.map(|u| u.type_.as_str()).unwrap_or(""));
    if let Some(ru) = us.and_then(|u| u.rolling_update.as_ref()) {
        if let Some(p) = ru.partition {
            w!(w, 1, "Partition:\t{p}\n");
            if let Some(mu) = &ru.max_unavailable {
                w!(w, 1, "MaxUnavailable:\t{mu}\n");
            }
        }
    }
    let (r, wa, su, f) = pod_statuses(cache, &m.uid, &st.spec.selector);
    w!(w, 0, "Pods Status:\t{r} Running / {wa} Waiting / {su} Succeeded / {f} Failed\n");
    describe_pod_template(&mut w, &st.spec.template);
    // describeVolumeClaimTemplates.
    if st.spec.volume_claim_templates.is_empty() {
        w!(w, 0, "Volume Claims:\t<none>\n");
    } else {
        w!(w, 0, "Volume Claims:\n");
        for t in &st.spec.volume_claim_templates {
            w!(w, 1, "Name:\t{}\n", t.metadata.name);
            w!(w, 1, "StorageClass:\t{}\n", t.class());
            labels_multiline(&mut w, "  Labels", &t.metadata.labels);
            labels_multiline(&mut w, "  Annotations", &t.metadata.annotations);
            match t.spec.resources.requests.get(kubesim_model::api::storage::RESOURCE_STORAGE) {
                Some(q) => w!(w, 1, "Capacity:\t{}\n", quantity(q)),
                None => w!(w, 1, "Capacity:\t<default>\n"),
            }
            // `%s` of a []PersistentVolumeAccessMode: `[ReadWriteOnce]` (the variant names are the API strings).
            let modes: Vec<String> = t.spec.access_modes.iter().map(|a| format!("{a:?}")).collect();
            w!(w, 1, "Access Modes:\t[{}]\n", modes.join(" "));
        }
    }
    describe_events(&mut w, &events_for(cache, Some(Kind::StatefulSet), m, &[&m.uid]), now);
    w.finish()
}

/// `describeJob`.
fn describe_job(cache: &Cache, j: &kubesim_model::api::Job, now: SimTime) -> String {
    let mut w = PrefixWriter::default();
    let m = &j.metadata;
    w!(w, 0, "Name:\t{}\n", m.name);
    w!(w, 0, "Namespace:\t{}\n", m.namespace);
    w!(w, 0, "Selector:\t{}\n", j.spec.selector.as_ref().map(selector_string).unwrap_or_default());
    labels_multiline(&mut w, "Labels", &m.labels);
    annotations_multiline(&mut w, &m.annotations);
    if let Some(r) = m.controller_of() {
        w!(w, 0, "Controlled By:\t{}/{}\n", r.kind, r.name);
    }
    if let Some(p) = j.spec.parallelism {
        w!(w, 0, "Parallelism:\t{p}\n");
    }
    match j.spec.completions {
        Some(c) => w!(w, 0, "Completions:\t{c}\n"),
        None => w!(w, 0, "Completions:\t<unset>\n"),
    }
    if !j.spec.completion_mode.is_empty() {
        w!(w, 0, "Completion Mode:\t{}\n", j.spec.completion_mode);
    }
    if let Some(s) = j.spec.suspend {
        w!(w, 0, "Suspend:\t{s}\n");
    }
    if let Some(b) = j.spec.backoff_limit {
        w!(w, 0, "Backoff Limit:\t{b}\n");
    }
    if let Some(t) = j.spec.ttl_seconds_after_finished {
        w!(w, 0, "TTL Seconds After Finished:\t{t}\n");
    }
    let s = &j.status;
    if s.start_time.is_some() {
        w!(w, 0, "Start Time:\t{}\n", rfc1123z(s.start_time));
    }
    if s.completion_time.is_some() {
        w!(w, 0, "Completed At:\t{}\n", rfc1123z(s.completion_time));
    }
    if let (Some(a), Some(b)) = (s.start_time, s.completion_time) {
        w!(w, 0, "Duration:\t{}\n", human_duration(b.saturating_sub(a)));
    }
    if let Some(d) = j.spec.active_deadline_seconds {
        w!(w, 0, "Active Deadline Seconds:\t{d}s\n");
    }
    match s.ready {
        None => w!(
            w,
            0,
            "Pods Statuses:\t{} Active / {} Succeeded / {} Failed\n",
            s.active,
            s.succeeded,
            s.failed
        ),
        Some(r) => w!(
            w,
            0,
            "Pods Statuses:\t{} Active ({r} Ready) / {} Succeeded / {} Failed\n",
            s.active,
            s.succeeded,
            s.failed
        ),
    }
    if j.spec.completion_mode == "Indexed" {
        // capIndexesListOrNone(completedIndexes, 50).
        let ix = s.completed_indexes.as_deref().unwrap_or("");
        let shown = if ix.is_empty() {
            "<none>".to_string()
        } else {
            match ix.get(50..).and_then(|rest| rest.find(',')) {
                Some(i) => format!("{}...", &ix[..50 + i + 1]),
                None => ix.to_string(),
            }
        };
        w!(w, 0, "Completed Indexes:\t{shown}\n");
    }
    describe_pod_template(&mut w, &j.spec.template);
    describe_events(&mut w, &events_for(cache, Some(Kind::Job), m, &[&m.uid]), now);
    w.finish()
}

/// `describePersistentVolumeClaim`.
fn describe_pvc(cache: &Cache, c: &kubesim_model::api::PersistentVolumeClaim, now: SimTime) -> String {
    use kubesim_model::api::storage::{access_modes_string, RESOURCE_STORAGE};
    let mut w = PrefixWriter::default();
    let m = &c.metadata;
    w!(w, 0, "Name:\t{}\n", m.name);
    w!(w, 0, "Namespace:\t{}\n", m.namespace);
    w!(w, 0, "StorageClass:\t{}\n", c.class());
    match m.deletion_timestamp {
        Some(t) => w!(w, 0, "Status:\tTerminating (lasts {})\n", since(Some(t), now)),
        None => w!(w, 0, "Status:\t{}\n", c.phase().as_str()),
    }
    w!(w, 0, "Volume:\t{}\n", c.spec.volume_name);
    labels_multiline(&mut w, "Labels", &m.labels);
    annotations_multiline(&mut w, &m.annotations);
    // `%v` of a []string.
    w!(w, 0, "Finalizers:\t[{}]\n", m.finalizers.join(" "));
    let (capacity, modes) = if c.spec.volume_name.is_empty() {
        (String::new(), String::new())
    } else {
        (
            c.status.capacity.get(RESOURCE_STORAGE).map(quantity).unwrap_or_default(),
            access_modes_string(&c.status.access_modes),
        )
    };
    w!(w, 0, "Capacity:\t{capacity}\n");
    w!(w, 0, "Access Modes:\t{modes}\n");
    if let Some(v) = &c.spec.volume_mode {
        w!(w, 0, "VolumeMode:\t{v}\n");
    }
    // getPodsForPVC: the namespace's pods with a volume naming the claim.
    let mut users: Vec<String> = cache
        .list(Kind::Pod)
        .filter_map(|o| o.as_pod())
        .filter(|p| p.metadata.namespace == m.namespace)
        .filter(|p| {
            p.spec
                .volumes
                .iter()
                .any(|v| v.persistent_volume_claim.as_ref().is_some_and(|x| x.claim_name == m.name))
        })
        .map(|p| p.metadata.name.clone())
        .collect();
    users.sort();
    lines_multiline(&mut w, "Used By", &users);
    describe_events(&mut w, &events_for(cache, Some(Kind::PersistentVolumeClaim), m, &[&m.uid]), now);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubesim_model::api::TaintEffect;

    #[test]
    fn tabwriter_aligns_each_block_as_go_does() {
        // Shapes from describe.go: a block ends at a line without a tab, an empty cell is
        // as wide as the padding, and trailing spaces in a cell count towards its width.
        let mut w = PrefixWriter::default();
        w!(w, 0, "Name:\t{}\n", "p");
        w!(w, 0, "Termination Grace Period:\t30s\n");
        w!(w, 0, "IP:\t\n");
        w!(w, 0, "IPs:\n");
        w!(w, 1, "IP:\t10.0.0.5\n");
        w!(w, 0, "Controlled By:\tReplicaSet/web\n");
        w!(w, 0, "Conditions:\n  Type\tStatus\n");
        w!(w, 1, "{} \t{} \n", "Ready", "True");
        w!(w, 0, "Volumes:\t<none>\n");
        w!(w, 1, "Namespace\tName\t\tAge\n");
        assert_eq!(
            w.finish(),
            "Name:                      p\n\
             Termination Grace Period:  30s\n\
             IP:                        \n\
             IPs:\n  IP:           10.0.0.5\n\
             Controlled By:  ReplicaSet/web\n\
             Conditions:\n  Type       Status\n  Ready      True \n\
             Volumes:     <none>\n  Namespace  Name    Age\n"
        );
    }

    #[test]
    fn since_is_time_since_and_invalid_in_the_future() {
        let now = SimTime(600_000);
        assert_eq!(since(Some(SimTime(600_000 - 38_600)), now), "38s");
        assert_eq!(since(Some(SimTime(600_000 - 373_000)), now), "6m13s");
        // Go truncates -1.9 s to -1 s: still "0s"; from -2 s on it is "<invalid>".
        assert_eq!(since(Some(SimTime(601_900)), now), "0s");
        assert_eq!(since(Some(SimTime(602_000)), now), "<invalid>");
        assert_eq!(since(None, now), "<unknown>");
    }

    #[test]
    fn quantities_print_in_canonical_form() {
        let q = |s: &str| quantity(&Quantity::parse(s).unwrap());
        assert_eq!(q("0.5"), "500m");
        assert_eq!(q("1000m"), "1");
        assert_eq!(q("1500m"), "1500m");
        assert_eq!(q("1024Mi"), "1Gi");
        assert_eq!(q("1.5Gi"), "1536Mi");
        assert_eq!(q("512Ki"), "512Ki");
        assert_eq!(q("100M"), "100M");
        assert_eq!(q("0"), "0");
        // A binary amount under 1024 is printed as a decimal one, as Go's is.
        assert_eq!(canonical(512_000, true), "512");
    }

    #[test]
    fn tolerations_print_as_kubectl_does() {
        let exists = Some(TolerationOperator::Exists);
        let t = |key: &str, effect, secs| Toleration {
            key: key.into(),
            operator: exists,
            effect,
            toleration_seconds: secs,
            ..Default::default()
        };
        assert_eq!(
            toleration_string(&t("node.kubernetes.io/unreachable", Some(TaintEffect::NoExecute), Some(300))),
            "node.kubernetes.io/unreachable:NoExecute op=Exists for 300s"
        );
        assert_eq!(toleration_string(&t("", None, None)), "op=Exists");
    }
}
