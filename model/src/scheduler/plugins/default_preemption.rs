//! DefaultPreemption (plugins/defaultpreemption and framework/preemption, v1.33): the
//! PostFilter that, when no node fits, looks for a node where deleting lower-priority
//! pods makes room. A dry run per node (from a random offset, until enough candidates)
//! removes every lower-priority pod, checks the filters, then puts pods back from the
//! most important down, PodDisruptionBudget-violating ones first, keeping as victims
//! only those that must go. The node is picked by upstream's ordering: fewest budget
//! violations, lowest highest-priority victim, smallest priority sum, fewest victims,
//! latest start of the highest-priority victims, then the first.

use std::sync::Arc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::api::pod::condition;
use crate::api::policy::PREEMPT_NEVER;
use crate::api::{ConditionStatus, PodDisruptionBudget};
use crate::scheduler::config::PreemptionArgs;
use crate::scheduler::framework::{pod_start_time, Code, NodeInfo, Nominated, PodInfo, Status};
use crate::time::SimTime;

use super::{filter_with_nominated, update_with_pod, Ctx, CycleState};

pub const NAME: &str = "DefaultPreemption";
/// preemption.go / default_preemption.go messages.
pub const MSG_PREEMPTION_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const MSG_NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const MSG_NOT_ELIGIBLE_NEVER: &str = "not eligible due to preemptionPolicy=Never.";
pub const MSG_NOT_ELIGIBLE_TERMINATING: &str = "not eligible due to a terminating pod on the nominated node.";
/// `v1.PodReasonPreemptionByScheduler`.
pub const REASON_PREEMPTION_BY_SCHEDULER: &str = "PreemptionByScheduler";

/// The DisruptionTarget condition's message (preemption.go PreemptPod).
pub fn disruption_message(scheduler_name: &str) -> String {
    format!("{scheduler_name}: preempting to accommodate a higher priority pod")
}

/// The `Preempted` event on each victim.
pub fn preempted_event_message(preemptor_uid: &str, node: &str) -> String {
    format!("Preempted by pod {preemptor_uid} on node {node}")
}

/// A node where preemption makes room, and what must go.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub node: String,
    /// Ordered by importance, most important first.
    pub victims: Vec<Arc<PodInfo>>,
    pub num_pdb_violations: i64,
}

/// What PostFilter decided.
#[derive(Clone, Debug)]
pub struct PreemptionOutcome {
    /// The status message ("" when preemption succeeded); the FitError prefixes
    /// `preemption: ` (DefaultPreemption.PostFilter).
    pub message: String,
    /// The node nominated for the pod.
    pub nominated: Option<String>,
    /// Whether the pod's nominatedNodeName is to be cleared.
    pub clear_nomination: bool,
    pub chosen: Option<Candidate>,
    pub candidates: Vec<Candidate>,
    /// Dry-run verdicts of potential nodes that did not make candidates.
    pub statuses: Vec<(String, Status)>,
}

impl PreemptionOutcome {
    fn refused(message: String, clear: bool) -> Self {
        PreemptionOutcome {
            message,
            nominated: None,
            clear_nomination: clear,
            chosen: None,
            candidates: Vec::new(),
            statuses: Vec::new(),
        }
    }
}

/// `PodEligibleToPreemptOthers`.
pub fn eligible(ctx: &Ctx, pod: &PodInfo, nominated_status: Option<&Status>) -> Result<(), &'static str> {
    if pod.pod.spec.preemption_policy.as_deref() == Some(PREEMPT_NEVER) {
        return Err(MSG_NOT_ELIGIBLE_NEVER);
    }
    let nom = &pod.pod.status.nominated_node_name;
    if nom.is_empty() {
        return Ok(());
    }
    // A nominated node the filters now find unresolvable is no reason to wait.
    if nominated_status.is_some_and(|s| s.code == Code::UnschedulableAndUnresolvable) {
        return Ok(());
    }
    if let Some(node) = ctx.nodes.get(nom) {
        if node.pods.values().any(|p| p.priority < pod.priority && terminating_by_preemption(&p.pod)) {
            return Err(MSG_NOT_ELIGIBLE_TERMINATING);
        }
    }
    Ok(())
}

/// `podTerminatingByPreemption`: being deleted after a scheduler preempted it.
fn terminating_by_preemption(p: &crate::api::Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
        && p.condition(condition::DISRUPTION_TARGET)
            .is_some_and(|c| c.status == ConditionStatus::True && c.reason == REASON_PREEMPTION_BY_SCHEDULER)
}

/// `calculateNumCandidates`.
pub fn num_candidates(args: &PreemptionArgs, nodes: usize) -> usize {
    let n = (nodes as i64 * args.min_candidate_nodes_percentage / 100).max(args.min_candidate_nodes_absolute);
    (n as usize).min(nodes)
}

/// `util.MoreImportantPod`: higher priority, then the earlier start.
fn more_important(a: &PodInfo, b: &PodInfo, now: SimTime) -> std::cmp::Ordering {
    b.priority.cmp(&a.priority).then_with(|| pod_start_time(&a.pod, now).cmp(&pod_start_time(&b.pod, now)))
}

/// `filterPodsWithPDBViolation`: victims whose eviction would take a budget below zero.
fn split_by_pdb(
    victims: &[Arc<PodInfo>],
    pdbs: &[&Arc<PodDisruptionBudget>],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i32> = pdbs.iter().map(|p| p.status.disruptions_allowed).collect();
    let (mut violating, mut ok) = (Vec::new(), Vec::new());
    for v in victims {
        let mut violated = false;
        if !v.labels().is_empty() {
            for (i, pdb) in pdbs.iter().enumerate() {
                if !pdb.selects_for_eviction(v.namespace(), v.labels()) {
                    continue;
                }
                // Already admitted by the Eviction API: not counted again.
                if pdb.status.disrupted_pods.contains_key(&v.pod.metadata.name) {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
        }
        if violated {
            violating.push(v.clone());
        } else {
            ok.push(v.clone());
        }
    }
    (violating, ok)
}

/// `SelectVictimsOnNode`: the fewest lower-priority pods whose removal lets the pod fit.
pub fn select_victims_on_node(
    ctx: &Ctx,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    nominated: &Nominated,
) -> Result<(Vec<Arc<PodInfo>>, i64), Status> {
    let mut node = node.clone();
    let mut state = state.clone();
    let mut potential: Vec<Arc<PodInfo>> =
        node.pods.values().filter(|p| p.priority < pod.priority).cloned().collect();
    for p in &potential {
        node.remove_pod(p);
        update_with_pod(&mut state, ctx, pod, p, &node, -1);
    }
    if potential.is_empty() {
        return Err(Status::unresolvable(NAME, MSG_NO_VICTIMS));
    }
    filter_with_nominated(&state, ctx, pod, &node, nominated)?;
    potential.sort_by(|a, b| more_important(a, b, ctx.now));
    let pdbs: Vec<&Arc<PodDisruptionBudget>> = ctx.listers.pdbs.values().collect();
    let (violating, non_violating) = split_by_pdb(&potential, &pdbs);
    let mut victims = Vec::new();
    let mut num_violating = 0;
    for (group, counts) in [(&violating, true), (&non_violating, false)] {
        for p in group.iter() {
            node.add_pod(p);
            update_with_pod(&mut state, ctx, pod, p, &node, 1);
            if filter_with_nominated(&state, ctx, pod, &node, nominated).is_err() {
                node.remove_pod(p);
                update_with_pod(&mut state, ctx, pod, p, &node, -1);
                victims.push(p.clone());
                if counts {
                    num_violating += 1;
                }
            }
        }
    }
    if !violating.is_empty() && !non_violating.is_empty() {
        victims.sort_by(|a, b| more_important(a, b, ctx.now));
    }
    Ok((victims, num_violating))
}

/// `GetEarliestPodStartTime` of the highest-priority victims.
fn earliest_start_of_highest(victims: &[Arc<PodInfo>], now: SimTime) -> Option<SimTime> {
    let first = victims.first()?;
    let (mut prio, mut earliest) = (first.priority, pod_start_time(&first.pod, now));
    for v in victims {
        let t = pod_start_time(&v.pod, now);
        if v.priority == prio {
            earliest = earliest.min(t);
        } else if v.priority > prio {
            prio = v.priority;
            earliest = t;
        }
    }
    Some(earliest)
}

/// `pickOneNodeForPreemption`.
pub fn pick_one_node(candidates: &[Candidate], now: SimTime) -> Option<usize> {
    let mut all: Vec<usize> = (0..candidates.len()).collect();
    let score_fns: [&dyn Fn(&Candidate) -> i64; 5] = [
        &|c| -c.num_pdb_violations,
        &|c| -(c.victims.first().map_or(0, |v| v.priority) as i64),
        &|c| -c.victims.iter().map(|v| v.priority as i64 + i32::MAX as i64 + 1).sum::<i64>(),
        &|c| -(c.victims.len() as i64),
        &|c| earliest_start_of_highest(&c.victims, now).map_or(i64::MIN, |t| t.as_millis() as i64),
    ];
    for f in score_fns {
        let best = all.iter().map(|i| f(&candidates[*i])).max()?;
        all.retain(|i| f(&candidates[*i]) == best);
        if all.len() == 1 {
            break;
        }
    }
    all.first().copied()
}

/// `Evaluator.Preempt`, given every node's filter status.
#[allow(clippy::too_many_arguments)]
pub fn post_filter(
    ctx: &Ctx,
    args: &PreemptionArgs,
    state: &CycleState,
    pod: &PodInfo,
    statuses: &std::collections::BTreeMap<String, Status>,
    nominated: &Nominated,
    rng: &mut ChaCha8Rng,
) -> PreemptionOutcome {
    let nom_status = statuses.get(&pod.pod.status.nominated_node_name);
    if let Err(msg) = eligible(ctx, pod, nom_status) {
        return PreemptionOutcome::refused(msg.to_string(), false);
    }
    let all = ctx.nodes.len();
    let not_helpful = |statuses: &[(String, Status)]| -> String {
        let mut reasons: Vec<&str> =
            statuses.iter().flat_map(|(_, s)| s.reasons.iter().map(String::as_str)).collect();
        let absent = all.saturating_sub(statuses.len());
        reasons.extend(std::iter::repeat_n(MSG_PREEMPTION_NOT_HELPFUL, absent));
        crate::scheduler::fit_error_text(all, reasons.into_iter(), "")
    };
    let potential: Vec<&NodeInfo> = ctx
        .nodes
        .values()
        .filter(|n| statuses.get(n.name()).is_some_and(|s| s.code == Code::Unschedulable))
        .collect();
    if potential.is_empty() {
        return PreemptionOutcome::refused(not_helpful(&[]), true);
    }
    let n = potential.len();
    let offset = rng.gen_range(0..n);
    let want = num_candidates(args, n);
    let (mut non_violating, mut violating, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let node = potential[(offset + i) % n];
        match select_victims_on_node(ctx, state, pod, node, nominated) {
            Ok((victims, violations)) if !victims.is_empty() => {
                let c = Candidate { node: node.name().to_string(), victims, num_pdb_violations: violations };
                if violations == 0 {
                    non_violating.push(c);
                } else {
                    violating.push(c);
                }
                if !non_violating.is_empty() && non_violating.len() + violating.len() >= want {
                    break;
                }
            }
            Ok(_) => failed.push((node.name().to_string(), Status::unresolvable(NAME, MSG_NO_VICTIMS))),
            Err(s) => failed.push((node.name().to_string(), s)),
        }
    }
    let mut candidates = non_violating;
    candidates.extend(violating);
    if candidates.is_empty() {
        let mut out = PreemptionOutcome::refused(not_helpful(&failed), true);
        out.statuses = failed;
        return out;
    }
    let best = pick_one_node(&candidates, ctx.now).expect("candidates is not empty");
    let chosen = candidates[best].clone();
    PreemptionOutcome {
        message: String::new(),
        nominated: Some(chosen.node.clone()),
        clear_nomination: false,
        chosen: Some(chosen),
        candidates,
        statuses: failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Container, Node, Pod, Quantity};

    fn pod(name: &str, prio: i32, cpu: &str, start: u64) -> Arc<PodInfo> {
        let mut p = Pod::default();
        p.metadata.name = name.into();
        p.metadata.namespace = "default".into();
        p.status.start_time = Some(SimTime::from_secs(start));
        let mut c = Container { name: "c".into(), ..Default::default() };
        c.resources.requests.insert("cpu".into(), Quantity::parse(cpu).unwrap());
        let s = Arc::make_mut(&mut p.spec);
        s.containers.push(c);
        s.priority = Some(prio);
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    fn cand(node: &str, victims: Vec<Arc<PodInfo>>, pdb: i64) -> Candidate {
        Candidate { node: node.into(), victims, num_pdb_violations: pdb }
    }

    // preemption_test.go TestPickOneNodeForPreemption, as orderings.
    #[test]
    fn pick_one_node_ordering() {
        let now = SimTime::from_secs(100);
        // Fewest PDB violations first.
        let c = [cand("a", vec![pod("x", 1, "1", 0)], 1), cand("b", vec![pod("y", 5, "1", 0)], 0)];
        assert_eq!(pick_one_node(&c, now), Some(1));
        // Lowest highest-priority victim.
        let c = [
            cand("a", vec![pod("x", 10, "1", 0)], 0),
            cand("b", vec![pod("y", 5, "1", 0), pod("z", 5, "1", 0)], 0),
        ];
        assert_eq!(pick_one_node(&c, now), Some(1));
        // Smallest priority sum.
        let c = [
            cand("a", vec![pod("x", 5, "1", 0), pod("y", 4, "1", 0)], 0),
            cand("b", vec![pod("z", 5, "1", 0), pod("w", 1, "1", 0)], 0),
        ];
        assert_eq!(pick_one_node(&c, now), Some(1));
        // Fewest victims: sums (with MaxInt32+1 added) favour fewer pods already.
        let c = [
            cand("a", vec![pod("x", 5, "1", 0), pod("y", 5, "1", 0)], 0),
            cand("b", vec![pod("z", 5, "1", 0)], 0),
        ];
        assert_eq!(pick_one_node(&c, now), Some(1));
        // Latest start of the highest-priority victims.
        let c = [cand("a", vec![pod("x", 5, "1", 10)], 0), cand("b", vec![pod("y", 5, "1", 20)], 0)];
        assert_eq!(pick_one_node(&c, now), Some(1));
        // Still tied: the first.
        let c = [cand("a", vec![pod("x", 5, "1", 10)], 0), cand("b", vec![pod("y", 5, "1", 10)], 0)];
        assert_eq!(pick_one_node(&c, now), Some(0));
    }

    #[test]
    fn victims_are_the_fewest_lowest_priority_pods() {
        use crate::scheduler::config::Profile;
        use crate::scheduler::framework::Listers;
        let mut n = Node::default();
        n.metadata.name = "node1".into();
        n.status.allocatable.insert("cpu".into(), Quantity::parse("4").unwrap());
        n.status.allocatable.insert("pods".into(), Quantity::parse("110").unwrap());
        let mut info = NodeInfo::new(Arc::new(n));
        for p in [
            pod("low-a", 1, "1", 10),
            pod("low-b", 1, "1", 20),
            pod("mid", 5, "1", 5),
            pod("high", 100, "1", 1),
        ] {
            info.add_pod(&p);
        }
        let nodes = [("node1".to_string(), info.clone())].into();
        let profile = Profile::default();
        let listers = Listers::default();
        let ctx = Ctx::new(&profile, &listers, &nodes, SimTime::from_secs(30));
        let preemptor = pod("p", 50, "2", 30);
        let (victims, violations) =
            select_victims_on_node(&ctx, &CycleState::default(), &preemptor, &info, &Nominated::new())
                .unwrap();
        // With every lower-priority pod gone, 3 of 4 cpu are free. Reprieved from the
        // most important: mid fits back (2 free), low-a (started first) does not, nor low-b.
        let names: Vec<&str> = victims.iter().map(|v| v.pod.metadata.name.as_str()).collect();
        assert_eq!(names, ["low-a", "low-b"]);
        assert_eq!(violations, 0);
        let e = select_victims_on_node(
            &ctx,
            &CycleState::default(),
            &pod("p", 0, "1", 30),
            &info,
            &Nominated::new(),
        )
        .unwrap_err();
        assert_eq!(e.reasons, vec![MSG_NO_VICTIMS.to_string()]);
    }

    #[test]
    fn num_candidates_is_ten_percent_at_least_a_hundred() {
        let a = PreemptionArgs::default();
        assert_eq!(num_candidates(&a, 50), 50);
        assert_eq!(num_candidates(&a, 500), 100);
        assert_eq!(num_candidates(&a, 5000), 500);
    }
}
