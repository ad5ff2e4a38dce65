//! NodeAffinity (plugins/nodeaffinity): spec.nodeSelector and required node affinity
//! filter; preferred terms score by the sum of their weights (normalized by the highest,
//! weight 2).

use crate::api::Node;
use crate::scheduler::framework::{NodeInfo, PodInfo, Status};
use crate::scheduler::queue::{ClusterEvent, Hint};

pub const NAME: &str = "NodeAffinity";
/// `ErrReasonPod`.
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";

/// nodeaffinity.GetRequiredNodeAffinity(pod).Match(node).
pub fn matches_node(pod: &PodInfo, node: &Node) -> bool {
    let spec = &pod.pod.spec;
    let labels = &node.metadata.labels;
    let selector_ok = spec.node_selector.iter().all(|(k, v)| labels.get(k) == Some(v));
    selector_ok
        && spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref())
            .is_none_or(|ns| ns.matches(&node.metadata.name, labels))
}

pub fn matches_required(pod: &PodInfo, node: &NodeInfo) -> bool {
    matches_node(pod, &node.node)
}

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    if matches_required(pod, node) {
        Ok(())
    } else {
        Err(Status::unresolvable(NAME, ERR_REASON_POD))
    }
}

/// PreScore: Skip unless the pod has preferred terms.
pub fn pre_score(pod: &PodInfo) -> bool {
    pod.pod
        .spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .is_some_and(|na| !na.preferred_during_scheduling_ignored_during_execution.is_empty())
}

/// Sum of the weights of matching preferred terms.
pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let Some(na) = pod.pod.spec.affinity.as_ref().and_then(|a| a.node_affinity.as_ref()) else { return 0 };
    na.preferred_during_scheduling_ignored_during_execution
        .iter()
        .filter(|t| t.weight != 0 && t.preference.matches(node.name(), node.labels()))
        .map(|t| t.weight as i64)
        .sum()
}

/// EventsToRegister: Node Add|UpdateNodeLabel; queued when the node matches now and did
/// not before.
pub fn queueing_hint(pod: &PodInfo, ev: &ClusterEvent) -> Hint {
    let (old, new) = match ev {
        ClusterEvent::NodeAdd(n) => (None, n),
        ClusterEvent::NodeUpdate { old, new, change } if change.label => (Some(old), new),
        _ => return Hint::QueueSkip,
    };
    if !matches_node(pod, new) || old.is_some_and(|o| matches_node(pod, o)) {
        Hint::QueueSkip
    } else {
        Hint::Queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::scheduling::{
        NodeAffinity, NodeSelector, NodeSelectorOperator, NodeSelectorRequirement, NodeSelectorTerm,
        PreferredSchedulingTerm,
    };
    use crate::api::{Affinity, Pod};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn req(k: &str, op: NodeSelectorOperator, v: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: k.into(),
            operator: op,
            values: v.iter().map(|s| s.to_string()).collect(),
        }
    }
    fn node(labels: &[(&str, &str)]) -> NodeInfo {
        let mut n = Node::default();
        n.metadata.name = "node1".into();
        n.metadata.labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        NodeInfo::new(Arc::new(n))
    }
    fn pod(selector: &[(&str, &str)], terms: Option<Vec<NodeSelectorTerm>>) -> PodInfo {
        let mut p = Pod::default();
        let s = Arc::make_mut(&mut p.spec);
        s.node_selector =
            selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>();
        if let Some(t) = terms {
            s.affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: t,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        PodInfo::new(Arc::new(p))
    }

    // nodeaffinity/node_affinity_test.go TestNodeAffinity (a selection).
    #[test]
    fn filter_table() {
        use NodeSelectorOperator::*;
        let term =
            |r: Vec<NodeSelectorRequirement>| NodeSelectorTerm { match_expressions: r, match_fields: vec![] };
        let cases = vec![
            ("no selector", pod(&[], None), node(&[]), true),
            ("missing labels", pod(&[("foo", "bar")], None), node(&[]), false),
            ("same labels", pod(&[("foo", "bar")], None), node(&[("foo", "bar")]), true),
            (
                "node labels are superset",
                pod(&[("foo", "bar")], None),
                node(&[("foo", "bar"), ("baz", "blah")]),
                true,
            ),
            (
                "node labels are subset",
                pod(&[("foo", "bar"), ("baz", "blah")], None),
                node(&[("foo", "bar")]),
                false,
            ),
            (
                "In matches",
                pod(&[], Some(vec![term(vec![req("foo", In, &["bar", "value2"])])])),
                node(&[("foo", "bar")]),
                true,
            ),
            (
                "Gt matches",
                pod(&[], Some(vec![term(vec![req("kernel-version", Gt, &["0204"])])])),
                node(&[("kernel-version", "0206")]),
                true,
            ),
            (
                "NotIn matches",
                pod(&[], Some(vec![term(vec![req("mem-type", NotIn, &["DDR", "DDR2"])])])),
                node(&[("mem-type", "DDR3")]),
                true,
            ),
            (
                "Exists matches",
                pod(&[], Some(vec![term(vec![req("GPU", Exists, &[])])])),
                node(&[("GPU", "NVIDIA-GRID-K1")]),
                true,
            ),
            (
                "invalid value fails",
                pod(&[], Some(vec![term(vec![req("foo", In, &["value1", "value2"])])])),
                node(&[("foo", "bar")]),
                false,
            ),
            ("empty terms match nothing", pod(&[], Some(vec![])), node(&[("foo", "bar")]), false),
            (
                "empty term matches nothing",
                pod(&[], Some(vec![term(vec![])])),
                node(&[("foo", "bar")]),
                false,
            ),
            (
                "terms are ORed",
                pod(
                    &[],
                    Some(vec![
                        term(vec![req("foo", In, &["x"])]),
                        term(vec![req("diffkey", In, &["wrong", "value2"])]),
                    ]),
                ),
                node(&[("diffkey", "value2")]),
                true,
            ),
            (
                "selector and affinity both required",
                pod(&[("foo", "bar")], Some(vec![term(vec![req("foo", Exists, &[])])])),
                node(&[("foo", "bar")]),
                true,
            ),
            (
                "selector fails though affinity matches",
                pod(&[("foo", "bar")], Some(vec![term(vec![req("foo", Exists, &[])])])),
                node(&[("foo", "barrrrrr")]),
                false,
            ),
        ];
        for (name, p, n, fits) in cases {
            let got = filter(&p, &n);
            assert_eq!(got.is_ok(), fits, "{name}");
            if let Err(s) = got {
                assert_eq!(s, Status::unresolvable(NAME, ERR_REASON_POD));
            }
        }
    }

    #[test]
    fn preferred_terms_sum_their_weights() {
        let mut p = Pod::default();
        let pref = |w: i32, k: &str, v: &str| PreferredSchedulingTerm {
            weight: w,
            preference: NodeSelectorTerm {
                match_expressions: vec![req(k, NodeSelectorOperator::In, &[v])],
                match_fields: vec![],
            },
        };
        Arc::make_mut(&mut p.spec).affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                preferred_during_scheduling_ignored_during_execution: vec![
                    pref(2, "foo", "bar"),
                    pref(4, "key", "value"),
                    pref(5, "az", "az1"),
                ],
                ..Default::default()
            }),
            ..Default::default()
        });
        let p = PodInfo::new(Arc::new(p));
        assert!(pre_score(&p));
        assert_eq!(score(&p, &node(&[("foo", "bar")])), 2);
        assert_eq!(score(&p, &node(&[("foo", "bar"), ("key", "value"), ("az", "az1")])), 11);
        assert_eq!(score(&p, &node(&[])), 0);
    }
}
