//! Expectations: what a scenario checks, and when. Each states upstream's rule rather than
//! one seed's outcome — instants relative to what happened (`since:` an event first
//! recorded or a field first written), objects chosen by labels or node instead of
//! generated names, counts of events and writes — and is turned here into the run's typed
//! [`Check`], with contradictory or out-of-range comparisons rejected by path.

use kubesim_model::api::{Kind, PodPhase, TaintEffect};
use serde::{Deserialize, Deserializer};

use super::{render_yaml, Dur, Invalid, KindName, Scenario, SelectorText, LEADER_COMPONENTS};
use crate::run::{Anchor, Check, Compare, Condition, EventMatch, ObjectSelection, Timing};

/// Objects of one kind, by name or by labels (and node, for pods).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldQuery {
    pub kind: KindName,
    /// One object by name.
    pub name: Option<String>,
    pub namespace: Option<String>,
    /// Every object whose labels match (instead of a generated name).
    pub selector: Option<SelectorText>,
    /// Pods bound to this node.
    pub node: Option<String>,
    pub path: String,
    /// Only in `since: {written: ...}`: the value the field was first written with.
    pub equals: Option<serde_yaml::Value>,
    /// Only in `since: {written: ...}`: the n-th time (1-based) a selected object's field
    /// became the value (a failure's third repetition), not the first.
    pub nth: Option<u32>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodCountQuery {
    pub phase: Option<PodPhase>,
    /// Only pods being deleted (`true`, kubectl's Terminating) or not (`false`).
    pub terminating: Option<bool>,
    /// Only pods whose Ready condition is True (`true`) or not (`false`).
    pub ready: Option<bool>,
    pub namespace: Option<String>,
    pub node: Option<String>,
    pub selector: Option<SelectorText>,
}

/// Which process leads a component (`etcd`, `kube-controller-manager`, `kube-scheduler`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LeaderQuery {
    pub component: LeaderComponent,
    /// The leader is on this host.
    pub host: Option<String>,
    /// The leader is not on this host.
    pub not_host: Option<String>,
    /// The leader was elected at or after this time.
    pub elected_after: Option<Dur>,
}

/// A component with a leader.
#[derive(Clone, Debug)]
pub struct LeaderComponent(pub String);

impl<'de> Deserialize<'de> for LeaderComponent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if !LEADER_COMPONENTS.contains(&s.as_str()) {
            return Err(serde::de::Error::custom(format!(
                "leader: {s:?} has no leader; one of {}",
                LEADER_COMPONENTS.join(", ")
            )));
        }
        Ok(LeaderComponent(s))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InvolvedObject {
    pub kind: KindName,
    /// The object's name; `*` matches any text (`web-*` for a Deployment's pods).
    pub name: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventQuery {
    pub reason: String,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// The exact message.
    pub message: Option<String>,
    /// The message with `*` standing for any text (for names a seed chooses).
    pub message_pattern: Option<String>,
    pub involved_object: Option<InvolvedObject>,
}

/// Nodes counted by taint and Ready status, as `kubectl get nodes` would show them.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeCountQuery {
    /// `key` or `key:Effect` (e.g. `node.kubernetes.io/unreachable:NoExecute`).
    pub taint: Option<String>,
    /// The Ready condition's status: True, False or Unknown.
    pub ready: Option<ReadyStatus>,
}

/// A condition status as kubectl prints it.
#[derive(Clone, Debug)]
pub struct ReadyStatus(pub String);

impl<'de> Deserialize<'de> for ReadyStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_yaml::Value::deserialize(d)?;
        let s = match &v {
            serde_yaml::Value::Bool(true) => "True".to_string(),
            serde_yaml::Value::Bool(false) => "False".to_string(),
            other => render_yaml(other),
        };
        match s.as_str() {
            "True" | "False" | "Unknown" => Ok(ReadyStatus(s)),
            _ => Err(serde::de::Error::custom(format!("ready: {s:?}: want True, False or Unknown"))),
        }
    }
}

/// An etcd alarm type kubesim raises (etcdserverpb AlarmType; CORRUPT is not simulated).
#[derive(Clone, Debug)]
pub struct EtcdAlarmName(pub String);

impl<'de> Deserialize<'de> for EtcdAlarmName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s != "NOSPACE" {
            return Err(serde::de::Error::custom(format!(
                "etcdAlarm: {s:?}: kubesim raises NOSPACE only (etcd's CORRUPT alarm is not simulated)"
            )));
        }
        Ok(EtcdAlarmName(s))
    }
}

/// The instant `at` and `after` count from: the first time an event was recorded or a
/// field was written with a value.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Since {
    pub event: Option<EventQuery>,
    pub written: Option<FieldQuery>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expectation {
    pub name: Option<String>,
    pub at: Option<Dur>,
    pub within: Option<Dur>,
    pub after: Option<Dur>,
    /// `at` and `after` count from this instant instead of the start of the run.
    pub since: Option<Since>,
    pub pod_count: Option<PodCountQuery>,
    pub field: Option<FieldQuery>,
    pub event: Option<EventQuery>,
    pub leader: Option<LeaderQuery>,
    pub node_count: Option<NodeCountQuery>,
    /// A committed write of the object had this field value (catches transient states).
    pub written: Option<FieldQuery>,
    /// An etcd alarm is raised (`exists: false`: none is): `NOSPACE`.
    pub etcd_alarm: Option<EtcdAlarmName>,
    /// With `etcdAlarm`: only this member's alarm (its control-plane host, `cp-2`).
    pub host: Option<String>,
    pub equals: Option<serde_yaml::Value>,
    /// For `field`: the value with `*` standing for any text (uids, generated names).
    pub pattern: Option<String>,
    pub at_least: Option<i64>,
    pub at_most: Option<i64>,
    pub exists: Option<bool>,
    /// With `within`: the check must hold continuously this long inside the window.
    pub holds_for: Option<Dur>,
}

impl Expectation {
    /// A default name from the check.
    pub fn describe(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        if let Some(q) = &self.pod_count {
            let mut parts = vec!["pods".to_string()];
            match q.ready {
                Some(true) => parts.push("Ready".into()),
                Some(false) => parts.push("not Ready".into()),
                None => {}
            }
            match q.terminating {
                Some(true) => parts.push("Terminating".into()),
                Some(false) => parts.push("not terminating".into()),
                None => {}
            }
            if let Some(p) = q.phase {
                parts.push(format!("{p:?}"));
            }
            if let Some(ns) = &q.namespace {
                parts.push(format!("in {ns}"));
            }
            if let Some(n) = &q.node {
                parts.push(format!("on {n}"));
            }
            if let Some(sel) = &q.selector {
                parts.push(format!("matching {}", sel.text));
            }
            return parts.join(" ");
        }
        if let Some(f) = &self.field {
            return format!("{} {} {}", f.kind.0.as_str(), f.describe_objects(), f.path);
        }
        if let Some(f) = &self.written {
            return format!("{} {} written with {}", f.kind.0.as_str(), f.describe_objects(), f.path);
        }
        if let Some(l) = &self.leader {
            return format!("{} leader", l.component.0);
        }
        if let Some(n) = &self.node_count {
            let mut parts = vec!["nodes".to_string()];
            if let Some(r) = &n.ready {
                parts.push(format!("Ready={}", r.0));
            }
            if let Some(t) = &n.taint {
                parts.push(format!("tainted {t}"));
            }
            return parts.join(" ");
        }
        if let Some(e) = &self.event {
            return format!("event {}", e.reason);
        }
        if let Some(a) = &self.etcd_alarm {
            let on = self.host.as_ref().map_or(String::new(), |h| format!(" on {h}"));
            let not = if self.exists == Some(false) { "no " } else { "" };
            return format!("{not}etcd {} alarm{on}", a.0);
        }
        "expectation".into()
    }
}

impl FieldQuery {
    fn describe_objects(&self) -> String {
        match (&self.name, &self.selector) {
            (Some(n), _) => n.clone(),
            (None, Some(s)) => format!("matching {}", s.text),
            (None, None) => "(any)".into(),
        }
    }

    fn selection(&self, path: &str) -> Result<ObjectSelection, Invalid> {
        if self.name.is_some() == self.selector.is_some() {
            return Err(Invalid::new(
                path,
                "name the object or select it by labels: give exactly one of name, selector",
                "name: web-0, or selector: app=web (for names a seed generates)",
            ));
        }
        if self.node.is_some() && self.kind.0 != Kind::Pod {
            return Err(Invalid::new(format!("{path}.node"), "node selects pods only", "kind: Pod"));
        }
        let namespace = if self.kind.0.namespaced() {
            Some(self.namespace.clone().unwrap_or_else(|| "default".into()))
        } else {
            None
        };
        Ok(ObjectSelection {
            kind: self.kind.0,
            name: self.name.clone(),
            namespace,
            selector: self.selector.as_ref().map(|s| s.selector.clone()),
            node: self.node.clone(),
        })
    }
}

impl EventQuery {
    fn matcher(&self, path: &str) -> Result<EventMatch, Invalid> {
        if self.message.is_some() && self.message_pattern.is_some() {
            return Err(Invalid::new(
                format!("{path}.messagePattern"),
                "message and messagePattern contradict: give one",
                "message for the exact text, messagePattern with * for names a seed chooses",
            ));
        }
        Ok(EventMatch {
            reason: self.reason.clone(),
            type_: self.type_.clone(),
            message: self.message.clone(),
            message_pattern: self.message_pattern.clone(),
            involved: self
                .involved_object
                .as_ref()
                .map(|i| (i.kind.0, i.name.clone(), i.namespace.clone().unwrap_or_default())),
        })
    }
}

fn count_compare(x: &Expectation, path: &str, required: bool) -> Result<Option<Compare>, Invalid> {
    let equals = match &x.equals {
        None => None,
        Some(v) => Some(render_yaml(v).parse::<i64>().map_err(|_| {
            Invalid::new(
                format!("{path}.equals"),
                format!("equals {}: a count is a whole number", render_yaml(v)),
                "equals: 3",
            )
        })?),
    };
    for (key, v) in [("equals", equals), ("atLeast", x.at_least), ("atMost", x.at_most)] {
        if v.is_some_and(|v| v < 0) {
            return Err(Invalid::new(
                format!("{path}.{key}"),
                format!("{key} {}: a count cannot be negative", v.unwrap_or(0)),
                "0 or more",
            ));
        }
    }
    let c = match (equals, x.at_least, x.at_most) {
        (Some(_), Some(_), _) => {
            return Err(Invalid::new(
                format!("{path}.atLeast"),
                "equals and atLeast contradict: give one",
                "equals: 3, or atLeast: 3",
            ))
        }
        (Some(_), None, Some(_)) => {
            return Err(Invalid::new(
                format!("{path}.atMost"),
                "equals and atMost contradict: give one",
                "equals: 3, or atMost: 3",
            ))
        }
        (Some(v), None, None) => Some(Compare::Equals(v)),
        (None, Some(a), Some(b)) if a > b => {
            return Err(Invalid::new(
                format!("{path}.atMost"),
                format!("atLeast {a} is more than atMost {b}: no count satisfies both"),
                "atLeast: 1, atMost: 3",
            ))
        }
        (None, Some(a), Some(b)) => Some(Compare::Between(a, b)),
        (None, Some(a), None) => Some(Compare::AtLeast(a)),
        (None, None, Some(b)) => Some(Compare::AtMost(b)),
        (None, None, None) => None,
    };
    if c.is_none() && required {
        return Err(Invalid::new(
            path,
            format!("expectation {:?} needs equals, atLeast or atMost", x.describe()),
            "equals: 3",
        ));
    }
    if c.is_some() && x.exists.is_some() {
        return Err(Invalid::new(
            format!("{path}.exists"),
            "exists and a count contradict: give one",
            "exists: false, or atMost: 0",
        ));
    }
    Ok(c)
}

fn p_path(path: &str) -> String {
    format!("{path}.field")
}

fn no_count(x: &Expectation, path: &str, what: &str) -> Result<(), Invalid> {
    for (key, v) in [("atLeast", x.at_least), ("atMost", x.at_most)] {
        if v.is_some() {
            return Err(Invalid::new(
                format!("{path}.{key}"),
                format!("{what} compares a value, not a count: {key} does not apply"),
                "equals: Running, or exists: false",
            ));
        }
    }
    Ok(())
}

/// Checks one expectation and turns it into the run's check.
pub fn check_of(s: &Scenario, x: &Expectation, path: &str) -> Result<Check, Invalid> {
    let checks = [
        x.pod_count.is_some(),
        x.field.is_some(),
        x.event.is_some(),
        x.leader.is_some(),
        x.node_count.is_some(),
        x.written.is_some(),
        x.etcd_alarm.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if checks != 1 {
        return Err(Invalid::new(
            path,
            format!(
                "expectation {:?} needs exactly one of podCount, nodeCount, field, written, event, leader, etcdAlarm",
                x.describe()
            ),
            "see scenarios/README.md",
        ));
    }
    if x.host.is_some() && x.etcd_alarm.is_none() {
        return Err(Invalid::new(
            format!("{path}.host"),
            "host applies to etcdAlarm only",
            "etcdAlarm: NOSPACE with host: cp-1",
        ));
    }
    if let Some(h) = &x.host {
        let hp = s.control_plane.hosts.unwrap_or(super::DEFAULT_CONTROL_PLANE_HOSTS);
        let member = h.strip_prefix("cp-").and_then(|n| n.parse::<u32>().ok());
        if !member.is_some_and(|n| (1..=hp).contains(&n)) {
            return Err(Invalid::new(
                format!("{path}.host"),
                format!("{h} runs no etcd member"),
                format!("etcd members run on cp-1..cp-{hp}"),
            ));
        }
    }
    if x.pattern.is_some() && x.field.is_none() {
        return Err(Invalid::new(
            format!("{path}.pattern"),
            "pattern applies to field checks",
            "use messagePattern for events",
        ));
    }
    let timing = timing_of(s, x, path)?;
    let since = match &x.since {
        None => None,
        Some(a) => Some(anchor_of(a, &format!("{path}.since"))?),
    };
    let condition = condition_of(x, path)?;
    Ok(Check { name: x.describe(), timing, since, condition })
}

fn timing_of(s: &Scenario, x: &Expectation, path: &str) -> Result<Timing, Invalid> {
    if x.at.is_some() == x.within.is_some() {
        return Err(Invalid::new(
            path,
            format!("expectation {:?} needs exactly one of at, within", x.describe()),
            "at: 60s checks at an instant; within: 2m checks eventually",
        ));
    }
    if x.holds_for.is_some() && x.within.is_none() {
        return Err(Invalid::new(
            format!("{path}.holdsFor"),
            format!("expectation {:?}: holdsFor needs within", x.describe()),
            "within: 1m with holdsFor: 10s",
        ));
    }
    if x.after.is_some() && x.at.is_some() {
        return Err(Invalid::new(
            format!("{path}.after"),
            "after goes with within; at is an instant of its own",
            "at: 60s, or after: 60s with within: 10s",
        ));
    }
    if let (Some(h), Some(w)) = (&x.holds_for, &x.within) {
        if h.time > w.time {
            return Err(Invalid::new(
                format!("{path}.holdsFor"),
                format!("holdsFor {} is longer than within {}", h.text, w.text),
                "holdsFor fits inside the window",
            ));
        }
    }
    let start = x.at.as_ref().or(x.after.as_ref()).map_or(kubesim_model::time::SimTime::ZERO, |d| d.time);
    if x.since.is_none() && start > s.duration.time {
        let key = if x.at.is_some() { "at" } else { "after" };
        return Err(Invalid::new(
            format!("{path}.{key}"),
            format!(
                "expectation {:?} starts after the scenario's duration {}",
                x.describe(),
                s.duration.text
            ),
            "raise duration or move the check",
        ));
    }
    Ok(match (&x.at, &x.within) {
        (Some(at), _) => Timing::At(at.time),
        (None, Some(w)) => {
            let from = x.after.as_ref().map_or(kubesim_model::time::SimTime::ZERO, |a| a.time);
            Timing::Within {
                from,
                until: from + w.time.as_duration(),
                hold: x.holds_for.as_ref().map(|d| d.time.as_duration()),
            }
        }
        (None, None) => Timing::At(kubesim_model::time::SimTime::ZERO),
    })
}

fn anchor_of(a: &Since, path: &str) -> Result<Anchor, Invalid> {
    match (&a.event, &a.written) {
        (Some(e), None) => Ok(Anchor::Event(e.matcher(&format!("{path}.event"))?)),
        (None, Some(w)) => {
            let p = format!("{path}.written");
            Ok(Anchor::Written {
                objects: w.selection(&p)?,
                path: w.path.clone(),
                equals: w.equals.as_ref().map(render_yaml),
                nth: match w.nth {
                    Some(0) => {
                        return Err(Invalid::new(
                            format!("{p}.nth"),
                            "nth counts from 1",
                            "nth: 2 for the second time",
                        ))
                    }
                    n => n.unwrap_or(1),
                },
                tracker: None,
            })
        }
        _ => Err(Invalid::new(
            path,
            "since needs exactly one of event, written",
            "since: {written: {kind: Node, name: node-2, path: spec.taints, ...}}",
        )),
    }
}

fn condition_of(x: &Expectation, path: &str) -> Result<Condition, Invalid> {
    if let Some(q) = &x.pod_count {
        return Ok(Condition::PodCount {
            phase: q.phase,
            terminating: q.terminating,
            ready: q.ready,
            node: q.node.clone(),
            namespace: q.namespace.clone(),
            selector: q.selector.as_ref().map(|s| s.selector.clone()),
            compare: count_compare(x, path, true)?.unwrap_or(Compare::AtLeast(0)),
        });
    }
    if let Some(n) = &x.node_count {
        let taint = match &n.taint {
            None => None,
            Some(t) => Some(match t.rsplit_once(':') {
                Some((k, e)) => match TaintEffect::parse(e) {
                    Some(eff) => (k.to_string(), Some(eff)),
                    None => {
                        return Err(Invalid::new(
                            format!("{path}.nodeCount.taint"),
                            format!("taint {t:?}: unknown effect {e:?}"),
                            "key or key:NoSchedule, key:PreferNoSchedule, key:NoExecute",
                        ))
                    }
                },
                None => (t.clone(), None),
            }),
        };
        return Ok(Condition::NodeCount {
            taint,
            ready: n.ready.as_ref().map(|r| r.0.clone()),
            compare: count_compare(x, path, true)?.unwrap_or(Compare::AtLeast(0)),
        });
    }
    if let Some(f) = &x.field {
        let p = format!("{path}.field");
        if f.equals.is_some() {
            return Err(Invalid::new(
                format!("{p}.equals"),
                "equals goes beside field, not inside it",
                "field: {...}\n    equals: Running",
            ));
        }
        no_count(x, path, "field")?;
        if x.pattern.is_some() && (x.equals.is_some() || x.exists == Some(false)) {
            return Err(Invalid::new(
                format!("{path}.pattern"),
                "pattern, equals and exists: false contradict: give one",
                "pattern: \"back-off 40s *\"",
            ));
        }
        if let Some(p) = &x.pattern {
            return Ok(Condition::Field {
                objects: f.selection(&p_path(path))?,
                path: f.path.clone(),
                equals: Some(format!("{}{p}", crate::run::PATTERN_PREFIX)),
            });
        }
        let equals = match (x.exists, &x.equals) {
            (Some(false), Some(_)) => {
                return Err(Invalid::new(
                    format!("{path}.exists"),
                    "exists: false and equals contradict: an absent field has no value",
                    "give one",
                ))
            }
            (None, None) => {
                return Err(Invalid::new(
                    path,
                    format!("expectation {:?}: field needs equals or exists", x.describe()),
                    "equals: Running",
                ))
            }
            (Some(false), None) => None,
            (_, Some(v)) => Some(render_yaml(v)),
            (Some(true), None) => Some(crate::run::ANY_VALUE.to_string()),
        };
        return Ok(Condition::Field { objects: f.selection(&p)?, path: f.path.clone(), equals });
    }
    if let Some(f) = &x.written {
        let p = format!("{path}.written");
        if f.equals.is_some() {
            return Err(Invalid::new(
                format!("{p}.equals"),
                "equals goes beside written, not inside it",
                "written: {...}\n    equals: Failed",
            ));
        }
        let compare = count_compare_any(x, path)?;
        return Ok(Condition::Written {
            objects: f.selection(&p)?,
            path: f.path.clone(),
            equals: x.equals.as_ref().map(render_yaml),
            absent: x.exists == Some(false),
            compare,
            tracker: None,
        });
    }
    if let Some(l) = &x.leader {
        if x.equals.is_some() {
            return Err(Invalid::new(
                format!("{path}.equals"),
                "leader takes no equals",
                "host: cp-2, or exists: false",
            ));
        }
        no_count(x, path, "leader")?;
        return Ok(Condition::Leader {
            component: l.component.0.clone(),
            host: l.host.clone(),
            not_host: l.not_host.clone(),
            elected_after: l.elected_after.as_ref().map(|d| d.time),
            absent: x.exists == Some(false),
        });
    }
    if let Some(a) = &x.etcd_alarm {
        if x.equals.is_some() {
            return Err(Invalid::new(
                format!("{path}.equals"),
                "etcdAlarm takes no equals",
                "exists: false for no alarm",
            ));
        }
        no_count(x, path, "etcdAlarm")?;
        return Ok(Condition::EtcdAlarm {
            alarm: a.0.clone(),
            host: x.host.clone(),
            absent: x.exists == Some(false),
        });
    }
    let Some(e) = &x.event else {
        return Err(Invalid::new(path, "no check", "see scenarios/README.md"));
    };
    let p = format!("{path}.event");
    if x.equals.is_some()
        && x.at_least.is_none()
        && x.at_most.is_none()
        && render_yaml(x.equals.as_ref().unwrap_or(&serde_yaml::Value::Null)).parse::<i64>().is_err()
    {
        return Err(Invalid::new(
            format!("{path}.equals"),
            "event equals counts the times it was recorded: give a whole number",
            "atLeast: 5",
        ));
    }
    let compare = count_compare(x, path, false)?;
    Ok(Condition::Event { matcher: e.matcher(&p)?, absent: x.exists == Some(false), compare })
}

/// `written` counts writes with `atLeast`/`atMost`/`equals` given as a number... but its
/// `equals` is the field's value. So only atLeast / atMost count writes.
fn count_compare_any(x: &Expectation, path: &str) -> Result<Option<Compare>, Invalid> {
    for (key, v) in [("atLeast", x.at_least), ("atMost", x.at_most)] {
        if v.is_some_and(|v| v < 0) {
            return Err(Invalid::new(
                format!("{path}.{key}"),
                format!("{key}: a count cannot be negative"),
                "0 or more",
            ));
        }
    }
    let c = match (x.at_least, x.at_most) {
        (Some(a), Some(b)) if a > b => {
            return Err(Invalid::new(
                format!("{path}.atMost"),
                format!("atLeast {a} is more than atMost {b}: no count satisfies both"),
                "atLeast: 1, atMost: 3",
            ))
        }
        (Some(a), Some(b)) => Some(Compare::Between(a, b)),
        (Some(a), None) => Some(Compare::AtLeast(a)),
        (None, Some(b)) => Some(Compare::AtMost(b)),
        (None, None) => None,
    };
    if c.is_some() && x.exists.is_some() {
        return Err(Invalid::new(
            format!("{path}.exists"),
            "exists and a count contradict: give one",
            "exists: false, or atMost: 0",
        ));
    }
    Ok(c)
}

/// Validates one expectation (its check is built again by the plan).
pub fn validate_expectation(s: &Scenario, x: &Expectation, path: &str) -> Result<(), Invalid> {
    check_of(s, x, path).map(|_| ())
}
