//! InterPodAffinity (plugins/interpodaffinity, v1.33). Filter: the node's domain must
//! hold a pod matching all of the pod's required affinity terms (or none anywhere, when
//! the pod matches its own terms), must hold no pod matching a required anti-affinity
//! term, and no existing pod's required anti-affinity may select the pod there. Score
//! (weight 2): preferred terms of both the pod and existing pods, and existing pods'
//! required affinity at hardPodAffinityWeight, summed per domain and scaled min..max to
//! 0..100.

use std::collections::BTreeMap;

use crate::scheduler::framework::{AffinityTerm, NodeInfo, PodInfo, Status};
use crate::scheduler::queue::{ClusterEvent, Hint};

use super::{Ctx, MAX_NODE_SCORE};

pub const NAME: &str = "InterPodAffinity";
/// `ErrReasonExistingAntiAffinityRulesNotMatch`.
pub const ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";
/// `ErrReasonAffinityRulesNotMatch`.
pub const ERR_REASON_AFFINITY_RULES_NOT_MATCH: &str = "node(s) didn't match pod affinity rules";
/// `ErrReasonAntiAffinityRulesNotMatch`.
pub const ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH: &str = "node(s) didn't match pod anti-affinity rules";

/// (topology key, value) -> count (`topologyToMatchedTermCount`).
pub type TopologyCounts = BTreeMap<(String, String), i64>;

fn bump(m: &mut TopologyCounts, key: &str, value: &str, delta: i64) {
    let k = (key.to_string(), value.to_string());
    let e = m.entry(k.clone()).or_insert(0);
    *e += delta;
    if *e == 0 {
        m.remove(&k);
    }
}

/// `podMatchesAllAffinityTerms`.
fn matches_all(terms: &[AffinityTerm], pod: &crate::api::Pod, ctx: &Ctx) -> bool {
    !terms.is_empty()
        && terms.iter().all(|t| t.matches(pod, ctx.listers.namespace_labels.get(&pod.metadata.namespace)))
}

#[derive(Clone, Debug, PartialEq)]
pub struct PreFilterState {
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    /// Whether the incoming pod matches all its own affinity terms.
    pub self_match: bool,
    pub pod: std::sync::Arc<crate::api::Pod>,
    pub existing_anti_affinity_counts: TopologyCounts,
    pub affinity_counts: TopologyCounts,
    pub anti_affinity_counts: TopologyCounts,
}

/// PreFilter; `None` (Skip) when no term of the pod and no existing pod's anti-affinity
/// applies.
pub fn pre_filter(ctx: &Ctx, pod: &PodInfo) -> Option<PreFilterState> {
    let ns_labels = ctx.listers.namespace_labels.get(pod.namespace());
    let mut existing = TopologyCounts::new();
    let mut affinity = TopologyCounts::new();
    let mut anti = TopologyCounts::new();
    let incoming = !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty();
    if !incoming && ctx.summary.nodes_with_required_anti_affinity_pods == 0 {
        return None;
    }
    for node in ctx.nodes.values() {
        if node.pods_with_required_anti_affinity > 0 {
            for other in node.pods.values().filter(|p| !p.required_anti_affinity.is_empty()) {
                for t in &other.required_anti_affinity {
                    if t.matches(&pod.pod, ns_labels) {
                        if let Some(v) = node.labels().get(&t.topology_key) {
                            bump(&mut existing, &t.topology_key, v, 1);
                        }
                    }
                }
            }
        }
        if !incoming {
            continue;
        }
        for other in node.pods.values() {
            if matches_all(&pod.required_affinity, &other.pod, ctx) {
                for t in &pod.required_affinity {
                    if let Some(v) = node.labels().get(&t.topology_key) {
                        bump(&mut affinity, &t.topology_key, v, 1);
                    }
                }
            }
            for t in &pod.required_anti_affinity {
                if t.matches(&other.pod, ctx.listers.namespace_labels.get(other.namespace())) {
                    if let Some(v) = node.labels().get(&t.topology_key) {
                        bump(&mut anti, &t.topology_key, v, 1);
                    }
                }
            }
        }
    }
    if existing.is_empty() && !incoming {
        return None;
    }
    Some(PreFilterState {
        self_match: matches_all(&pod.required_affinity, &pod.pod, ctx),
        required_affinity: pod.required_affinity.clone(),
        required_anti_affinity: pod.required_anti_affinity.clone(),
        pod: pod.pod.clone(),
        existing_anti_affinity_counts: existing,
        affinity_counts: affinity,
        anti_affinity_counts: anti,
    })
}

/// `satisfyPodAffinity`.
fn satisfy_pod_affinity(s: &PreFilterState, node: &NodeInfo) -> bool {
    let mut pods_exist = true;
    for t in &s.required_affinity {
        let Some(v) = node.labels().get(&t.topology_key) else {
            // All topology labels must exist on the node.
            return false;
        };
        if s.affinity_counts.get(&(t.topology_key.clone(), v.clone())).copied().unwrap_or(0) <= 0 {
            pods_exist = false;
        }
    }
    // The first pod of a series with affinity to itself: nothing matches anywhere yet.
    pods_exist || (s.affinity_counts.is_empty() && s.self_match)
}

/// `satisfyPodAntiAffinity`.
fn satisfy_pod_anti_affinity(s: &PreFilterState, node: &NodeInfo) -> bool {
    if s.anti_affinity_counts.is_empty() {
        return true;
    }
    !s.required_anti_affinity.iter().any(|t| {
        node.labels().get(&t.topology_key).is_some_and(|v| {
            s.anti_affinity_counts.get(&(t.topology_key.clone(), v.clone())).copied().unwrap_or(0) > 0
        })
    })
}

/// `satisfyExistingPodsAntiAffinity`.
fn satisfy_existing_anti_affinity(s: &PreFilterState, node: &NodeInfo) -> bool {
    if s.existing_anti_affinity_counts.is_empty() {
        return true;
    }
    !node
        .labels()
        .iter()
        .any(|(k, v)| s.existing_anti_affinity_counts.get(&(k.clone(), v.clone())).copied().unwrap_or(0) > 0)
}

pub fn filter(s: &PreFilterState, node: &NodeInfo) -> Result<(), Status> {
    if !satisfy_pod_affinity(s, node) {
        return Err(Status::unresolvable(NAME, ERR_REASON_AFFINITY_RULES_NOT_MATCH));
    }
    if !satisfy_pod_anti_affinity(s, node) {
        return Err(Status::unschedulable(NAME, vec![ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH.into()]));
    }
    if !satisfy_existing_anti_affinity(s, node) {
        return Err(Status::unschedulable(
            NAME,
            vec![ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH.into()],
        ));
    }
    Ok(())
}

/// `preFilterState.updateWithPod` (AddPod / RemovePod).
pub fn update_with_pod(s: &mut PreFilterState, ctx: &Ctx, other: &PodInfo, node: &NodeInfo, delta: i64) {
    let ns_labels = ctx.listers.namespace_labels.get(&s.pod.metadata.namespace);
    for t in &other.required_anti_affinity {
        if t.matches(&s.pod, ns_labels) {
            if let Some(v) = node.labels().get(&t.topology_key) {
                bump(&mut s.existing_anti_affinity_counts, &t.topology_key, v, delta);
            }
        }
    }
    if matches_all(&s.required_affinity, &other.pod, ctx) {
        for t in &s.required_affinity {
            if let Some(v) = node.labels().get(&t.topology_key) {
                bump(&mut s.affinity_counts, &t.topology_key, v, delta);
            }
        }
    }
    for t in &s.required_anti_affinity {
        if t.matches(&other.pod, ctx.listers.namespace_labels.get(other.namespace())) {
            if let Some(v) = node.labels().get(&t.topology_key) {
                bump(&mut s.anti_affinity_counts, &t.topology_key, v, delta);
            }
        }
    }
}

/// PreScore's state: topology key -> value -> score.
#[derive(Clone, Debug, PartialEq)]
pub struct PreScoreState {
    pub topology_score: BTreeMap<String, BTreeMap<String, i64>>,
}

fn process_term(
    m: &mut BTreeMap<String, BTreeMap<String, i64>>,
    term: &AffinityTerm,
    weight: i64,
    pod: &crate::api::Pod,
    ns_labels: Option<&BTreeMap<String, String>>,
    node: &NodeInfo,
    multiplier: i64,
) {
    if term.matches(pod, ns_labels) {
        if let Some(v) = node.labels().get(&term.topology_key) {
            *m.entry(term.topology_key.clone()).or_default().entry(v.clone()).or_insert(0) +=
                weight * multiplier;
        }
    }
}

/// PreScore over every node (only pods with affinity unless the pod has preferred
/// terms); `None` (Skip) when nothing scores.
pub fn pre_score(ctx: &Ctx, pod: &PodInfo) -> Option<PreScoreState> {
    let has_constraints = !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
    let ns_labels = ctx.listers.namespace_labels.get(pod.namespace());
    let hard_weight = ctx.profile.hard_pod_affinity_weight;
    if !has_constraints && ctx.summary.nodes_with_affinity_pods == 0 {
        return None;
    }
    let mut m: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for node in ctx.nodes.values() {
        if node.labels().is_empty() || (!has_constraints && node.pods_with_affinity == 0) {
            continue;
        }
        for existing in node.pods.values() {
            if !has_constraints && !existing.has_affinity() {
                continue;
            }
            let ens = ctx.listers.namespace_labels.get(existing.namespace());
            for t in &pod.preferred_affinity {
                process_term(&mut m, t, t.weight as i64, &existing.pod, ens, node, 1);
            }
            for t in &pod.preferred_anti_affinity {
                process_term(&mut m, t, t.weight as i64, &existing.pod, ens, node, -1);
            }
            if hard_weight > 0 {
                for t in &existing.required_affinity {
                    process_term(&mut m, t, hard_weight, &pod.pod, ns_labels, node, 1);
                }
            }
            for t in &existing.preferred_affinity {
                process_term(&mut m, t, t.weight as i64, &pod.pod, ns_labels, node, 1);
            }
            for t in &existing.preferred_anti_affinity {
                process_term(&mut m, t, t.weight as i64, &pod.pod, ns_labels, node, -1);
            }
        }
    }
    if m.is_empty() {
        return None;
    }
    Some(PreScoreState { topology_score: m })
}

pub fn score(s: &PreScoreState, node: &NodeInfo) -> i64 {
    s.topology_score.iter().filter_map(|(k, values)| node.labels().get(k).and_then(|v| values.get(v))).sum()
}

/// NormalizeScore: (score - min) / (max - min) * 100, truncated.
pub fn normalize(scores: &mut [i64]) {
    let (min, max) = match (scores.iter().min(), scores.iter().max()) {
        (Some(a), Some(b)) => (*a, *b),
        _ => return,
    };
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 { (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64 } else { 0 };
    }
}

/// EventsToRegister: Pod All and Node Add|UpdateNodeLabel. An assigned pod that appears
/// (or changes labels) queues the pod when it matches its required affinity; one that
/// goes queues it when it had anti-affinity to the pod or matched the pod's
/// anti-affinity. A node queues it when it carries a topology key of its terms.
pub fn queueing_hint(ctx: &Ctx, pod: &PodInfo, ev: &ClusterEvent) -> Hint {
    let q = |b: bool| if b { Hint::Queue } else { Hint::QueueSkip };
    let ns_labels = ctx.listers.namespace_labels.get(pod.namespace());
    let matches_affinity = |p: &PodInfo| {
        pod.required_affinity
            .iter()
            .any(|t| t.matches(&p.pod, ctx.listers.namespace_labels.get(p.namespace())))
    };
    let blocks = |p: &PodInfo| {
        p.required_anti_affinity.iter().any(|t| t.matches(&pod.pod, ns_labels))
            || pod
                .required_anti_affinity
                .iter()
                .any(|t| t.matches(&p.pod, ctx.listers.namespace_labels.get(p.namespace())))
    };
    match ev {
        ClusterEvent::AssignedPodAdd(p) => q(matches_affinity(p)),
        ClusterEvent::AssignedPodUpdate { old, new } => {
            q(old.labels() != new.labels() && (matches_affinity(new) || blocks(old)))
        }
        ClusterEvent::AssignedPodDelete(p) => q(blocks(p)),
        ClusterEvent::NodeAdd(n) | ClusterEvent::NodeUpdate { new: n, .. } => {
            if let ClusterEvent::NodeUpdate { change, .. } = ev {
                if !change.label {
                    return Hint::QueueSkip;
                }
            }
            let keys =
                pod.required_affinity.iter().chain(&pod.required_anti_affinity).map(|t| &t.topology_key);
            q(keys.clone().next().is_none() || keys.into_iter().any(|k| n.metadata.labels.contains_key(k)))
        }
        _ => Hint::QueueSkip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::pod_scheduling::{PodAffinity, PodAffinityTerm};
    use crate::api::selector::{LabelSelectorRequirement, SelectorOperator};
    use crate::api::{Affinity, LabelSelector, Node, Pod};
    use crate::scheduler::config::Profile;
    use crate::scheduler::framework::Listers;
    use std::sync::Arc;

    fn sel(key: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_expressions: vec![LabelSelectorRequirement {
                key: key.into(),
                operator: SelectorOperator::In,
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
            ..Default::default()
        }
    }
    fn term(key: &str, values: &[&str], topo: &str) -> PodAffinityTerm {
        PodAffinityTerm {
            label_selector: Some(sel(key, values)),
            topology_key: topo.into(),
            ..Default::default()
        }
    }
    fn pod(
        name: &str,
        labels: &[(&str, &str)],
        aff: Vec<PodAffinityTerm>,
        anti: Vec<PodAffinityTerm>,
    ) -> Arc<PodInfo> {
        let mut p = Pod::default();
        p.metadata.name = name.into();
        p.metadata.namespace = "default".into();
        p.metadata.labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let a = Affinity {
            pod_affinity: (!aff.is_empty()).then(|| PodAffinity {
                required_during_scheduling_ignored_during_execution: aff,
                ..Default::default()
            }),
            pod_anti_affinity: (!anti.is_empty()).then(|| PodAffinity {
                required_during_scheduling_ignored_during_execution: anti,
                ..Default::default()
            }),
            ..Default::default()
        };
        Arc::make_mut(&mut p.spec).affinity = Some(a);
        Arc::new(PodInfo::new(Arc::new(p)))
    }
    fn nodes(existing: &[(&str, Arc<PodInfo>)]) -> BTreeMap<String, NodeInfo> {
        let mut m = BTreeMap::new();
        for (name, region) in [("node1", "r1"), ("node2", "r1"), ("node3", "r2")] {
            let mut n = Node::default();
            n.metadata.name = name.into();
            n.metadata.labels = [
                ("region".to_string(), region.to_string()),
                ("kubernetes.io/hostname".to_string(), name.to_string()),
            ]
            .into();
            m.insert(name.to_string(), NodeInfo::new(Arc::new(n)));
        }
        for (node, p) in existing {
            m.get_mut(*node).unwrap().add_pod(p);
        }
        m
    }
    fn verdicts(nodes: &BTreeMap<String, NodeInfo>, p: &PodInfo) -> Vec<Option<String>> {
        let profile = Profile::default();
        let listers = Listers::default();
        let ctx = Ctx::new(&profile, &listers, nodes, crate::time::SimTime::ZERO);
        let s = pre_filter(&ctx, p);
        nodes
            .values()
            .map(|n| s.as_ref().and_then(|s| filter(s, n).err()).map(|e| e.reasons[0].clone()))
            .collect()
    }

    // interpodaffinity/filtering_test.go TestRequiredAffinitySingleNode (selected cases).
    #[test]
    fn required_affinity_and_anti_affinity() {
        let existing = pod("e", &[("service", "securityscan")], vec![], vec![]);
        let ns = nodes(&[("node1", existing.clone())]);
        let aff = pod("p", &[], vec![term("service", &["securityscan", "value2"], "region")], vec![]);
        // Matching pod in region r1: node1 and node2 (same region) fit, node3 does not.
        assert_eq!(verdicts(&ns, &aff), vec![None, None, Some(ERR_REASON_AFFINITY_RULES_NOT_MATCH.into())]);
        let anti = pod("p", &[], vec![], vec![term("service", &["securityscan"], "region")]);
        assert_eq!(
            verdicts(&ns, &anti),
            vec![
                Some(ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH.into()),
                Some(ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH.into()),
                None
            ]
        );
        // The existing pod's anti-affinity selects the incoming pod on its hostname.
        let guard = pod("g", &[], vec![], vec![term("app", &["web"], "kubernetes.io/hostname")]);
        let ns = nodes(&[("node2", guard)]);
        let web = pod("w", &[("app", "web")], vec![], vec![]);
        assert_eq!(
            verdicts(&ns, &web),
            vec![None, Some(ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH.into()), None]
        );
    }

    #[test]
    fn first_pod_of_a_self_affine_series_schedules() {
        let ns = nodes(&[]);
        let selfish = pod("p", &[("app", "db")], vec![term("app", &["db"], "region")], vec![]);
        assert_eq!(verdicts(&ns, &selfish), vec![None, None, None]);
        let other = pod("p", &[("app", "web")], vec![term("app", &["db"], "region")], vec![]);
        assert!(verdicts(&ns, &other)
            .iter()
            .all(|v| v.as_deref() == Some(ERR_REASON_AFFINITY_RULES_NOT_MATCH)));
    }

    #[test]
    fn normalize_min_max() {
        let mut s = vec![-3, 0, 5];
        normalize(&mut s);
        assert_eq!(s, vec![0, 37, 100]);
        let mut same = vec![4, 4];
        normalize(&mut same);
        assert_eq!(same, vec![0, 0]);
    }
}
