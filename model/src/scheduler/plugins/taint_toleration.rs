//! TaintToleration (plugins/tainttoleration): NoSchedule/NoExecute taints must be
//! tolerated; untolerated PreferNoSchedule taints lower the score (normalized in
//! reverse, weight 3).

use crate::api::scheduling::tolerations_tolerate;
use crate::api::{Node, TaintEffect};
use crate::scheduler::framework::{NodeInfo, PodInfo, Status};
use crate::scheduler::queue::{ClusterEvent, Hint};

pub const NAME: &str = "TaintToleration";

/// `ErrReasonNotMatch` is formatted with the first untolerated taint:
/// `node(s) had untolerated taint {%s: %s}`.
pub fn untolerated_reason(key: &str, value: &str) -> String {
    format!("node(s) had untolerated taint {{{key}: {value}}}")
}

/// The first NoSchedule/NoExecute taint the pod does not tolerate
/// (v1helper.FindMatchingUntoleratedTaint with DoNotScheduleTaintsFilterFunc).
pub fn first_untolerated<'a>(pod: &PodInfo, node: &'a Node) -> Option<&'a crate::api::Taint> {
    let tols = &pod.pod.spec.tolerations;
    node.spec.taints.iter().find(|t| {
        matches!(t.effect, TaintEffect::NoSchedule | TaintEffect::NoExecute) && !tolerations_tolerate(tols, t)
    })
}

pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    match first_untolerated(pod, &node.node) {
        Some(t) => Err(Status::unresolvable(NAME, untolerated_reason(&t.key, &t.value))),
        None => Ok(()),
    }
}

/// Number of untolerated PreferNoSchedule taints, counting only the pod's tolerations
/// with an empty or PreferNoSchedule effect (getAllTolerationPreferNoSchedule).
pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let tols: Vec<_> = pod
        .pod
        .spec
        .tolerations
        .iter()
        .filter(|t| t.effect.is_none_or(|e| e == TaintEffect::PreferNoSchedule))
        .cloned()
        .collect();
    node.node
        .spec
        .taints
        .iter()
        .filter(|t| t.effect == TaintEffect::PreferNoSchedule && !tolerations_tolerate(&tols, t))
        .count() as i64
}

/// EventsToRegister: Node Add|UpdateNodeTaint; queued when the node's taints went from
/// untolerated to tolerated.
pub fn queueing_hint(pod: &PodInfo, ev: &ClusterEvent) -> Hint {
    let (old, new) = match ev {
        ClusterEvent::NodeAdd(n) => (None, n),
        ClusterEvent::NodeUpdate { old, new, change } if change.taint => (Some(old), new),
        _ => return Hint::QueueSkip,
    };
    let was_untolerated = old.is_none_or(|o| first_untolerated(pod, o).is_some());
    if was_untolerated && first_untolerated(pod, new).is_none() {
        Hint::Queue
    } else {
        Hint::QueueSkip
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Pod, Taint, Toleration, TolerationOperator};
    use std::sync::Arc;

    fn taint(k: &str, v: &str, e: TaintEffect) -> Taint {
        Taint { key: k.into(), value: v.into(), effect: e, time_added: None }
    }
    fn tol(k: &str, op: TolerationOperator, v: &str, e: Option<TaintEffect>) -> Toleration {
        Toleration { key: k.into(), operator: Some(op), value: v.into(), effect: e, ..Default::default() }
    }
    fn run(tols: Vec<Toleration>, taints: Vec<Taint>) -> Result<(), Status> {
        let mut p = Pod::default();
        Arc::make_mut(&mut p.spec).tolerations = tols;
        let mut n = Node::default();
        n.spec.taints = taints;
        filter(&PodInfo::new(Arc::new(p)), &NodeInfo::new(Arc::new(n)))
    }

    // tainttoleration/taint_toleration_test.go TestTaintTolerationFilter.
    #[test]
    fn filter_table() {
        use TaintEffect::*;
        use TolerationOperator::*;
        let ns = Some(NoSchedule);
        let cases = vec![
            (
                "no tolerations, nonempty taints",
                vec![],
                vec![taint("dedicated", "user1", NoSchedule)],
                Some("{dedicated: user1}"),
            ),
            (
                "tolerated dedicated node",
                vec![tol("dedicated", Equal, "user1", ns)],
                vec![taint("dedicated", "user1", NoSchedule)],
                None,
            ),
            (
                "other user's node",
                vec![tol("dedicated", Equal, "user2", ns)],
                vec![taint("dedicated", "user1", NoSchedule)],
                Some("{dedicated: user1}"),
            ),
            (
                "Exists tolerates",
                vec![tol("foo", Exists, "", ns)],
                vec![taint("foo", "bar", NoSchedule)],
                None,
            ),
            (
                "every taint tolerated",
                vec![tol("dedicated", Equal, "user2", ns), tol("foo", Exists, "", ns)],
                vec![taint("dedicated", "user2", NoSchedule), taint("foo", "", NoSchedule)],
                None,
            ),
            (
                "effect mismatch",
                vec![tol("foo", Equal, "bar", Some(PreferNoSchedule))],
                vec![taint("foo", "bar", NoSchedule)],
                Some("{foo: bar}"),
            ),
            (
                "empty effect tolerates",
                vec![tol("foo", Equal, "bar", None)],
                vec![taint("foo", "bar", NoSchedule)],
                None,
            ),
            (
                "PreferNoSchedule does not filter",
                vec![tol("dedicated", Equal, "user2", ns)],
                vec![taint("dedicated", "user1", PreferNoSchedule)],
                None,
            ),
            (
                "no toleration, PreferNoSchedule taint",
                vec![],
                vec![taint("dedicated", "user1", PreferNoSchedule)],
                None,
            ),
        ];
        for (name, tols, taints, want) in cases {
            let got = run(tols, taints);
            match want {
                None => assert!(got.is_ok(), "{name}: {got:?}"),
                Some(t) => assert_eq!(
                    got.unwrap_err(),
                    Status::unresolvable(NAME, format!("node(s) had untolerated taint {t}")),
                    "{name}"
                ),
            }
        }
    }

    #[test]
    fn hint_queues_only_when_taints_become_tolerated() {
        let p = PodInfo::new(Arc::new(Pod::default()));
        let mut tainted = Node::default();
        tainted.spec.taints.push(taint("a", "b", TaintEffect::NoSchedule));
        let clean = Arc::new(Node::default());
        let tainted = Arc::new(tainted);
        let change = crate::scheduler::queue::NodeChange { taint: true, ..Default::default() };
        let ev = ClusterEvent::NodeUpdate { old: tainted.clone(), new: clean.clone(), change };
        assert_eq!(queueing_hint(&p, &ev), Hint::Queue);
        let ev = ClusterEvent::NodeUpdate { old: clean, new: tainted.clone(), change };
        assert_eq!(queueing_hint(&p, &ev), Hint::QueueSkip);
        assert_eq!(queueing_hint(&p, &ClusterEvent::NodeAdd(tainted)), Hint::QueueSkip);
    }
}
