//! PodTopologySpread (plugins/podtopologyspread, v1.33): `DoNotSchedule` constraints
//! filter (a domain may hold at most maxSkew more matching pods than the emptiest
//! eligible domain, counting `minDomains`), `ScheduleAnyway` constraints score (fewer
//! matching pods in the node's domains is better, weight 2). Pods without constraints
//! get the system defaults (hostname maxSkew 3, zone maxSkew 5, ScheduleAnyway) with the
//! selector of their ReplicaSet or StatefulSet. `nodeAffinityPolicy` (Honor by default)
//! and `nodeTaintsPolicy` (Ignore by default) decide which nodes' pods count;
//! `matchLabelKeys` adds the pod's own label values to the selector.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::pod_scheduling::{
    TopologySpreadConstraint, DO_NOT_SCHEDULE, NODE_INCLUSION_POLICY_HONOR, SCHEDULE_ANYWAY,
};
use crate::api::selector::{LabelSelectorRequirement, SelectorOperator};
use crate::api::{LabelSelector, Node};
use crate::scheduler::framework::{Code, MatchMemo, NodeInfo, PodInfo, Status};
use crate::scheduler::queue::{ClusterEvent, Hint};

use super::{Ctx, MAX_NODE_SCORE};

pub const NAME: &str = "PodTopologySpread";
/// `ErrReasonConstraintsNotMatch`.
pub const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str = "node(s) didn't match pod topology spread constraints";
/// `ErrReasonNodeLabelNotMatch`.
pub const ERR_REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
/// v1.LabelHostname: per-node counts are taken in Score, not PreScore.
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";

/// `topologySpreadConstraint`: a constraint with its selector parsed and defaults applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Constraint {
    pub max_skew: i32,
    pub topology_key: String,
    /// `None`: a nil selector, which matches nothing.
    pub selector: Option<LabelSelector>,
    pub min_domains: i32,
    pub honor_node_affinity: bool,
    pub honor_node_taints: bool,
}

impl Constraint {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.as_ref().is_some_and(|s| s.matches(labels))
    }

    /// `countPodsMatchSelector` on one node, remembering group answers in `memo`.
    fn count(&self, node: &NodeInfo, namespace: &str, memo: &mut MatchMemo) -> i64 {
        self.selector.as_ref().map_or(0, |s| node.count_matching_memo(namespace, s, memo))
    }

    fn is_hostname(&self) -> bool {
        self.topology_key == LABEL_HOSTNAME
    }

    /// `matchNodeInclusionPolicies`: does this node's domain count for the pod?
    fn includes(&self, pod: &PodInfo, node: &Node) -> bool {
        if self.honor_node_affinity && !super::node_affinity::matches_node(pod, node) {
            return false;
        }
        !(self.honor_node_taints && super::taint_toleration::first_untolerated(pod, node).is_some())
    }
}

/// `filterTopologySpreadConstraints`: the constraints with `action`, defaults applied
/// (minDomains 1, nodeAffinityPolicy Honor, nodeTaintsPolicy Ignore) and matchLabelKeys
/// merged.
pub fn filter_constraints(
    constraints: &[TopologySpreadConstraint],
    pod_labels: &BTreeMap<String, String>,
    action: &str,
) -> Vec<Constraint> {
    constraints
        .iter()
        .filter(|c| c.when_unsatisfiable == action)
        .map(|c| {
            let mut selector = c.label_selector.clone();
            let extra: Vec<LabelSelectorRequirement> = c
                .match_label_keys
                .iter()
                .filter_map(|k| {
                    pod_labels.get(k).map(|v| LabelSelectorRequirement {
                        key: k.clone(),
                        operator: SelectorOperator::In,
                        values: vec![v.clone()],
                    })
                })
                .collect();
            if !extra.is_empty() {
                selector.get_or_insert_with(LabelSelector::default).match_expressions.extend(extra);
            }
            Constraint {
                max_skew: c.max_skew,
                topology_key: c.topology_key.clone(),
                selector,
                min_domains: c.min_domains.unwrap_or(1),
                honor_node_affinity: c
                    .node_affinity_policy
                    .as_deref()
                    .is_none_or(|p| p == NODE_INCLUSION_POLICY_HONOR),
                honor_node_taints: c.node_taints_policy.as_deref() == Some(NODE_INCLUSION_POLICY_HONOR),
            }
        })
        .collect()
}

/// The pod's own constraints with `action`, else the profile's default constraints with
/// the pod's default selector (buildDefaultConstraints).
pub fn get_constraints(ctx: &Ctx, pod: &PodInfo, action: &str) -> Vec<Constraint> {
    let spec = &pod.pod.spec;
    if !spec.topology_spread_constraints.is_empty() {
        return filter_constraints(&spec.topology_spread_constraints, pod.labels(), action);
    }
    let mut cs = filter_constraints(&ctx.profile.spread.default_constraints, pod.labels(), action);
    if cs.is_empty() {
        return cs;
    }
    match ctx.listers.default_selector(&pod.pod) {
        Some(sel) => {
            cs.iter_mut().for_each(|c| c.selector = Some(sel.clone()));
            cs
        }
        None => Vec::new(),
    }
}

/// `nodeLabelsMatchSpreadConstraints`: the node has every topology key.
pub fn node_has_keys(labels: &BTreeMap<String, String>, constraints: &[Constraint]) -> bool {
    constraints.iter().all(|c| labels.contains_key(&c.topology_key))
}

/// PreFilter's state: matching pods per domain, per DoNotSchedule constraint.
#[derive(Clone, Debug, PartialEq)]
pub struct PreFilterState {
    pub constraints: Vec<Constraint>,
    pub tp_value_to_match_num: Vec<BTreeMap<String, i64>>,
}

impl PreFilterState {
    /// `minMatchNum`: the emptiest domain's count (the critical path), 0 when fewer
    /// domains than minDomains are eligible, and MaxInt32 when there are none.
    pub fn min_match_num(&self, i: usize) -> i64 {
        let counts = &self.tp_value_to_match_num[i];
        if (counts.len() as i64) < self.constraints[i].min_domains as i64 {
            return 0;
        }
        counts.values().copied().min().unwrap_or(i32::MAX as i64)
    }
}

/// `calPreFilterState` over every node; `None` (Skip) without DoNotSchedule constraints.
pub fn pre_filter(ctx: &Ctx, pod: &PodInfo) -> Option<PreFilterState> {
    let constraints = get_constraints(ctx, pod, DO_NOT_SCHEDULE);
    if constraints.is_empty() {
        return None;
    }
    let mut counts = vec![BTreeMap::new(); constraints.len()];
    let mut memos = vec![MatchMemo::new(); constraints.len()];
    for node in ctx.nodes.values() {
        if !node_has_keys(node.labels(), &constraints) {
            continue;
        }
        for (i, c) in constraints.iter().enumerate() {
            if !c.includes(pod, &node.node) {
                continue;
            }
            let n = c.count(node, pod.namespace(), &mut memos[i]);
            let v = &node.labels()[&c.topology_key];
            match counts[i].get_mut(v) {
                Some(x) => *x += n,
                None => {
                    counts[i].insert(v.clone(), n);
                }
            }
        }
    }
    Some(PreFilterState { constraints, tp_value_to_match_num: counts })
}

pub fn filter(s: &PreFilterState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    for (i, c) in s.constraints.iter().enumerate() {
        let Some(value) = node.labels().get(&c.topology_key) else {
            return Err(Status::unresolvable(NAME, ERR_REASON_NODE_LABEL_NOT_MATCH));
        };
        let self_match = i64::from(c.matches(pod.labels()));
        let match_num = s.tp_value_to_match_num[i].get(value).copied().unwrap_or(0);
        let skew = match_num + self_match - s.min_match_num(i);
        if skew > c.max_skew as i64 {
            return Err(Status {
                code: Code::Unschedulable,
                reasons: vec![ERR_REASON_CONSTRAINTS_NOT_MATCH.into()],
                plugin: NAME,
            });
        }
    }
    Ok(())
}

/// `updateWithPod` (AddPod / RemovePod during preemption's dry run).
pub fn update_with_pod(
    s: &mut PreFilterState,
    preemptor: &PodInfo,
    other: &PodInfo,
    node: &NodeInfo,
    delta: i64,
) {
    if other.namespace() != preemptor.namespace() || !node_has_keys(node.labels(), &s.constraints) {
        return;
    }
    for (i, c) in s.constraints.iter().enumerate() {
        if !c.matches(other.labels()) || !c.includes(preemptor, &node.node) {
            continue;
        }
        let v = node.labels()[&c.topology_key].clone();
        *s.tp_value_to_match_num[i].entry(v).or_insert(0) += delta;
    }
}

/// PreScore's state for the ScheduleAnyway constraints.
#[derive(Clone, Debug, PartialEq)]
pub struct PreScoreState {
    pub constraints: Vec<Constraint>,
    /// Feasible nodes missing a topology key (not scored).
    pub ignored_nodes: BTreeSet<String>,
    pub topology_value_to_pod_counts: Vec<BTreeMap<String, i64>>,
    pub topology_normalizing_weight: Vec<f64>,
    /// Per constraint, the groups Score has matched (hostname counts are per node).
    pub memos: std::cell::RefCell<Vec<MatchMemo>>,
}

/// `topologyNormalizingWeight`: ln(size + 2).
pub fn topology_normalizing_weight(size: usize) -> f64 {
    ((size + 2) as f64).ln()
}

/// `scoreForCount`: cnt * weight + (maxSkew - 1).
pub fn score_for_count(cnt: i64, max_skew: i32, weight: f64) -> f64 {
    cnt as f64 * weight + (max_skew - 1) as f64
}

/// PreScore; `None` (Skip) without ScheduleAnyway constraints.
pub fn pre_score(ctx: &Ctx, pod: &PodInfo, feasible: &[&NodeInfo]) -> Option<PreScoreState> {
    if ctx.nodes.is_empty() {
        return None;
    }
    let constraints = get_constraints(ctx, pod, SCHEDULE_ANYWAY);
    if constraints.is_empty() {
        return None;
    }
    // Only non-system-default rules need every topology key: nodes without a zone label
    // still get hostname spreading.
    let require_all =
        !pod.pod.spec.topology_spread_constraints.is_empty() || !ctx.profile.spread.system_defaulted;
    let n = constraints.len();
    let mut counts: Vec<BTreeMap<String, i64>> = vec![BTreeMap::new(); n];
    let mut ignored = BTreeSet::new();
    // Whether some feasible node carries the key: only then can a score read the domain
    // counts (nodes without the key are counted under "" upstream, which only a node
    // labelled with an empty value reads).
    let mut labelled = vec![false; n];
    let mut explicit_empty = vec![false; n];
    let hostname: Vec<bool> = constraints.iter().map(Constraint::is_hostname).collect();
    for node in feasible {
        if require_all && !node_has_keys(node.labels(), &constraints) {
            ignored.insert(node.name().to_string());
            continue;
        }
        for (i, c) in constraints.iter().enumerate() {
            if hostname[i] {
                continue;
            }
            let v = node.labels().get(&c.topology_key);
            labelled[i] |= v.is_some();
            explicit_empty[i] |= v.is_some_and(|v| v.is_empty());
            let value = v.map_or("", |v| v.as_str());
            if !counts[i].contains_key(value) {
                counts[i].insert(value.to_string(), 0);
            }
        }
    }
    let weights: Vec<f64> = (0..n)
        .map(|i| {
            let size = if hostname[i] { feasible.len() - ignored.len() } else { counts[i].len() };
            topology_normalizing_weight(size)
        })
        .collect();
    let counted: Vec<usize> = (0..n).filter(|i| !hostname[*i] && labelled[*i]).collect();
    let mut memos = vec![MatchMemo::new(); n];
    for node in ctx.nodes.values().filter(|_| !counted.is_empty()) {
        if require_all && !node_has_keys(node.labels(), &constraints) {
            continue;
        }
        for &i in &counted {
            let c = &constraints[i];
            let v = node.labels().get(&c.topology_key);
            if v.is_none() && !explicit_empty[i] {
                continue;
            }
            if !c.includes(pod, &node.node) {
                continue;
            }
            let value = v.map_or("", |v| v.as_str());
            if counts[i].contains_key(value) {
                let add = c.count(node, pod.namespace(), &mut memos[i]);
                *counts[i].get_mut(value).expect("present") += add;
            }
        }
    }
    Some(PreScoreState {
        constraints,
        ignored_nodes: ignored,
        topology_value_to_pod_counts: counts,
        topology_normalizing_weight: weights,
        memos: std::cell::RefCell::new(memos),
    })
}

pub fn score(s: &PreScoreState, pod: &PodInfo, node: &NodeInfo) -> i64 {
    if s.ignored_nodes.contains(node.name()) {
        return 0;
    }
    let mut score = 0.0;
    let mut memos = s.memos.borrow_mut();
    for (i, c) in s.constraints.iter().enumerate() {
        let Some(v) = node.labels().get(&c.topology_key) else { continue };
        let cnt = if c.is_hostname() {
            c.count(node, pod.namespace(), &mut memos[i])
        } else {
            s.topology_value_to_pod_counts[i].get(v).copied().unwrap_or(0)
        };
        score += score_for_count(cnt, c.max_skew, s.topology_normalizing_weight[i]);
    }
    score.round() as i64
}

/// NormalizeScore: 100 * (max + min - score) / max over nodes not ignored; ignored nodes
/// get 0.
pub fn normalize(s: &PreScoreState, nodes: &[&NodeInfo], scores: &mut [i64]) {
    let (mut min, mut max) = (i64::MAX, 0i64);
    for (i, n) in nodes.iter().enumerate() {
        if s.ignored_nodes.contains(n.name()) {
            continue;
        }
        min = min.min(scores[i]);
        max = max.max(scores[i]);
    }
    for (i, n) in nodes.iter().enumerate() {
        if s.ignored_nodes.contains(n.name()) {
            scores[i] = 0;
        } else if max == 0 {
            scores[i] = MAX_NODE_SCORE;
        } else {
            scores[i] = MAX_NODE_SCORE * (max + min - scores[i]) / max;
        }
    }
}

/// EventsToRegister: Pod All (queued when an assigned pod of the namespace that the
/// constraints select appears, changes its matching labels, or goes) and Node
/// Add|Delete|UpdateNodeLabel|UpdateNodeTaint (queued when the node carries the topology
/// keys and they, or honored taints, changed).
pub fn queueing_hint(ctx: &Ctx, pod: &PodInfo, ev: &ClusterEvent) -> Hint {
    let constraints = get_constraints(ctx, pod, DO_NOT_SCHEDULE);
    let q = |b: bool| if b { Hint::Queue } else { Hint::QueueSkip };
    let selects = |p: &PodInfo| {
        p.pod.metadata.namespace == pod.pod.metadata.namespace
            && constraints.iter().any(|c| c.matches(p.labels()))
    };
    match ev {
        ClusterEvent::AssignedPodAdd(p) | ClusterEvent::AssignedPodDelete(p) => q(selects(p)),
        ClusterEvent::AssignedPodUpdate { old, new } => q(old.labels() != new.labels()
            && constraints.iter().any(|c| c.matches(old.labels()) != c.matches(new.labels()))),
        ClusterEvent::NodeAdd(n) | ClusterEvent::NodeDelete(n) => {
            q(node_has_keys(&n.metadata.labels, &constraints))
        }
        ClusterEvent::NodeUpdate { old, new, change } if change.label || change.taint => {
            if !node_has_keys(&new.metadata.labels, &constraints) {
                return Hint::QueueSkip;
            }
            let keys_changed = !node_has_keys(&old.metadata.labels, &constraints)
                || constraints.iter().any(|c| {
                    old.metadata.labels.get(&c.topology_key) != new.metadata.labels.get(&c.topology_key)
                });
            let taints_matter = change.taint && constraints.iter().any(|c| c.honor_node_taints);
            q(keys_changed || taints_matter)
        }
        _ => Hint::QueueSkip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{OwnerReference, Pod};
    use crate::scheduler::config::Profile;
    use crate::scheduler::framework::Listers;
    use std::sync::Arc;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn node(name: &str, zone: &str) -> NodeInfo {
        let mut n = Node::default();
        n.metadata.name = name.into();
        n.metadata.labels = labels(&[("zone", zone), ("node", name)]);
        NodeInfo::new(Arc::new(n))
    }

    fn pod(name: &str, lbl: &[(&str, &str)], constraints: Vec<TopologySpreadConstraint>) -> Arc<PodInfo> {
        let mut p = Pod::default();
        p.metadata.name = name.into();
        p.metadata.namespace = "default".into();
        p.metadata.labels = labels(lbl);
        Arc::make_mut(&mut p.spec).topology_spread_constraints = constraints;
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    fn spread(key: &str, skew: i32, action: &str) -> TopologySpreadConstraint {
        TopologySpreadConstraint {
            max_skew: skew,
            topology_key: key.into(),
            when_unsatisfiable: action.into(),
            label_selector: Some(LabelSelector {
                match_expressions: vec![LabelSelectorRequirement {
                    key: "foo".into(),
                    operator: SelectorOperator::Exists,
                    values: vec![],
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn cluster(pods: &[(&str, &str)]) -> BTreeMap<String, NodeInfo> {
        let mut nodes: BTreeMap<String, NodeInfo> =
            [("node-a", "zone1"), ("node-b", "zone1"), ("node-x", "zone2"), ("node-y", "zone2")]
                .into_iter()
                .map(|(n, z)| (n.to_string(), node(n, z)))
                .collect();
        for (i, (n, _)) in pods.iter().enumerate() {
            nodes.get_mut(*n).unwrap().add_pod(&pod(&format!("p{i}"), &[("foo", "")], vec![]));
        }
        nodes
    }

    // podtopologyspread/filtering_test.go TestSingleConstraint "pods spread across zones
    // as 3/3, all nodes fit" and "pods spread across zones as 1/2 due to absence of label
    // 'zone' on node-b" style cases: zone1 holds 3 matching pods, zone2 1.
    #[test]
    fn do_not_schedule_across_zones() {
        let nodes = cluster(&[("node-a", ""), ("node-a", ""), ("node-b", ""), ("node-x", "")]);
        let profile = Profile::default();
        let listers = Listers::default();
        let ctx = Ctx::new(&profile, &listers, &nodes, crate::time::SimTime::ZERO);
        let p = pod("p", &[("foo", "")], vec![spread("zone", 1, DO_NOT_SCHEDULE)]);
        let s = pre_filter(&ctx, &p).unwrap();
        assert_eq!(s.tp_value_to_match_num[0], BTreeMap::from([("zone1".into(), 3), ("zone2".into(), 1)]));
        assert_eq!(s.min_match_num(0), 1);
        let verdicts: Vec<bool> = nodes.values().map(|n| filter(&s, &p, n).is_ok()).collect();
        assert_eq!(verdicts, [false, false, true, true]);
        assert_eq!(
            filter(&s, &p, &nodes["node-a"]).unwrap_err().reasons,
            vec![ERR_REASON_CONSTRAINTS_NOT_MATCH.to_string()]
        );
        let mut unlabelled = Node::default();
        unlabelled.metadata.name = "bare".into();
        let e = filter(&s, &p, &NodeInfo::new(Arc::new(unlabelled))).unwrap_err();
        assert_eq!(
            (e.code, e.reasons[0].as_str()),
            (Code::UnschedulableAndUnresolvable, ERR_REASON_NODE_LABEL_NOT_MATCH)
        );
    }

    #[test]
    fn min_domains_makes_the_global_minimum_zero() {
        let nodes = cluster(&[("node-a", ""), ("node-x", "")]);
        let profile = Profile::default();
        let listers = Listers::default();
        let ctx = Ctx::new(&profile, &listers, &nodes, crate::time::SimTime::ZERO);
        let mut c = spread("zone", 1, DO_NOT_SCHEDULE);
        c.min_domains = Some(3);
        let p = pod("p", &[("foo", "")], vec![c]);
        let s = pre_filter(&ctx, &p).unwrap();
        // Two domains < minDomains 3: min is 0, so 1 + 1 - 0 > 1 everywhere.
        assert!(nodes.values().all(|n| filter(&s, &p, n).is_err()));
    }

    #[test]
    fn schedule_anyway_scores_emptier_domains_higher() {
        let nodes = cluster(&[("node-a", ""), ("node-a", ""), ("node-b", ""), ("node-x", "")]);
        let profile = Profile::default();
        let listers = Listers::default();
        let ctx = Ctx::new(&profile, &listers, &nodes, crate::time::SimTime::ZERO);
        let p = pod("p", &[("foo", "")], vec![spread("zone", 1, SCHEDULE_ANYWAY)]);
        let feasible: Vec<&NodeInfo> = nodes.values().collect();
        let s = pre_score(&ctx, &p, &feasible).unwrap();
        let mut raw: Vec<i64> = feasible.iter().map(|n| score(&s, &p, n)).collect();
        // ln(2 + 2) = 1.386: zone1 3 pods -> 4.16 -> 4; zone2 1 pod -> 1.39 -> 1.
        assert_eq!(raw, vec![4, 4, 1, 1]);
        normalize(&s, &feasible, &mut raw);
        assert_eq!(raw, vec![25, 25, 100, 100]);
    }

    #[test]
    fn system_defaults_use_the_replica_sets_selector() {
        let nodes = cluster(&[]);
        let profile = Profile::default();
        let mut listers = Listers::default();
        let sel = LabelSelector { match_labels: labels(&[("app", "web")]), ..Default::default() };
        listers.owner_selectors.insert(("ReplicaSet".into(), "default".into(), "web-1".into()), sel.clone());
        let ctx = Ctx::new(&profile, &listers, &nodes, crate::time::SimTime::ZERO);
        let mut p = (*pod("w", &[("app", "web")], vec![])).clone();
        let mut raw = (*p.pod).clone();
        raw.metadata.owner_references.push(OwnerReference {
            kind: "ReplicaSet".into(),
            name: "web-1".into(),
            controller: Some(true),
            ..Default::default()
        });
        p.pod = Arc::new(raw);
        let cs = get_constraints(&ctx, &p, SCHEDULE_ANYWAY);
        assert_eq!(cs.len(), 2);
        assert_eq!((cs[0].topology_key.as_str(), cs[0].max_skew), ("kubernetes.io/hostname", 3));
        assert_eq!((cs[1].topology_key.as_str(), cs[1].max_skew), ("topology.kubernetes.io/zone", 5));
        assert_eq!(cs[0].selector.as_ref(), Some(&sel));
        assert!(get_constraints(&ctx, &p, DO_NOT_SCHEDULE).is_empty());
        let orphan = pod("o", &[("app", "web")], vec![]);
        assert!(get_constraints(&ctx, &orphan, SCHEDULE_ANYWAY).is_empty());
    }

    #[test]
    fn match_label_keys_narrow_the_selector() {
        let mut c = spread("zone", 1, DO_NOT_SCHEDULE);
        c.match_label_keys = vec!["pod-template-hash".into()];
        let cs =
            filter_constraints(&[c], &labels(&[("foo", ""), ("pod-template-hash", "abc")]), DO_NOT_SCHEDULE);
        assert!(cs[0].matches(&labels(&[("foo", "x"), ("pod-template-hash", "abc")])));
        assert!(!cs[0].matches(&labels(&[("foo", "x"), ("pod-template-hash", "old")])));
    }
}
