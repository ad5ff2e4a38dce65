//! The v1.33 default profile's plugins, one a file with upstream's names and reason
//! strings, and the dispatch the framework uses: PreFilter and PreScore fill
//! [`CycleState`]; Filter, Score and NormalizeScore read it; AddPod/RemovePod update it
//! for preemption's dry runs and nominated pods.
//!
//! The order of [`DEFAULT_PLUGINS`] is default_plugins.go's MultiPoint order
//! (pkg/scheduler/apis/config/v1/default_plugins.go), which is the order filters run
//! in. NodeVolumeLimits is not simulated: without CSINode objects or `attachable-volumes-*`
//! allocatable on nodes, upstream's admits every pod too.

pub mod default_preemption;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_balanced_allocation;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod priority_sort;
pub mod taint_toleration;
pub mod volume_binding;
pub mod volume_restrictions;
pub mod volume_zone;

use std::collections::BTreeMap;

use super::config::Profile;
use super::framework::{Listers, NodeInfo, PodInfo, Status};
use super::queue::{ClusterEvent, Hint};
use crate::time::SimTime;

/// framework.MaxNodeScore.
pub const MAX_NODE_SCORE: i64 = 100;

/// A plugin of the default profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PluginId {
    PrioritySort,
    NodeUnschedulable,
    NodeName,
    TaintToleration,
    NodeAffinity,
    NodePorts,
    NodeResourcesFit,
    VolumeRestrictions,
    VolumeBinding,
    VolumeZone,
    PodTopologySpread,
    InterPodAffinity,
    DefaultPreemption,
    NodeResourcesBalancedAllocation,
    ImageLocality,
}

/// default_plugins.go MultiPoint, with the default weights of the score plugins
/// (0: not a score plugin).
pub const DEFAULT_PLUGINS: &[(PluginId, i64)] = &[
    (PluginId::PrioritySort, 0),
    (PluginId::NodeUnschedulable, 0),
    (PluginId::NodeName, 0),
    (PluginId::TaintToleration, 3),
    (PluginId::NodeAffinity, 2),
    (PluginId::NodePorts, 0),
    (PluginId::NodeResourcesFit, 1),
    (PluginId::VolumeRestrictions, 0),
    (PluginId::VolumeBinding, 0),
    (PluginId::VolumeZone, 0),
    (PluginId::PodTopologySpread, 2),
    (PluginId::InterPodAffinity, 2),
    (PluginId::DefaultPreemption, 0),
    (PluginId::NodeResourcesBalancedAllocation, 1),
    (PluginId::ImageLocality, 1),
];

/// Plugins with a Filter extension point, in registry order.
pub const FILTER_PLUGINS: &[PluginId] = &[
    PluginId::NodeUnschedulable,
    PluginId::NodeName,
    PluginId::TaintToleration,
    PluginId::NodeAffinity,
    PluginId::NodePorts,
    PluginId::NodeResourcesFit,
    PluginId::VolumeRestrictions,
    PluginId::VolumeBinding,
    PluginId::VolumeZone,
    PluginId::PodTopologySpread,
    PluginId::InterPodAffinity,
];

/// Plugins with a Score extension point.
pub const SCORE_PLUGINS: &[PluginId] = &[
    PluginId::TaintToleration,
    PluginId::NodeAffinity,
    PluginId::NodeResourcesFit,
    PluginId::PodTopologySpread,
    PluginId::InterPodAffinity,
    PluginId::NodeResourcesBalancedAllocation,
    PluginId::ImageLocality,
];

impl PluginId {
    pub fn name(self) -> &'static str {
        match self {
            PluginId::PrioritySort => priority_sort::NAME,
            PluginId::NodeUnschedulable => node_unschedulable::NAME,
            PluginId::NodeName => node_name::NAME,
            PluginId::TaintToleration => taint_toleration::NAME,
            PluginId::NodeAffinity => node_affinity::NAME,
            PluginId::NodePorts => node_ports::NAME,
            PluginId::NodeResourcesFit => node_resources_fit::NAME,
            PluginId::VolumeRestrictions => volume_restrictions::NAME,
            PluginId::VolumeBinding => volume_binding::NAME,
            PluginId::VolumeZone => volume_zone::NAME,
            PluginId::PodTopologySpread => pod_topology_spread::NAME,
            PluginId::InterPodAffinity => inter_pod_affinity::NAME,
            PluginId::DefaultPreemption => default_preemption::NAME,
            PluginId::NodeResourcesBalancedAllocation => node_resources_balanced_allocation::NAME,
            PluginId::ImageLocality => image_locality::NAME,
        }
    }

    pub fn from_name(name: &str) -> Option<PluginId> {
        DEFAULT_PLUGINS.iter().map(|(p, _)| *p).find(|p| p.name() == name)
    }

    pub fn is_filter(self) -> bool {
        FILTER_PLUGINS.contains(&self)
    }

    pub fn is_score(self) -> bool {
        SCORE_PLUGINS.contains(&self)
    }
}

/// What every plugin call may read: the profile, the listers and every node.
pub struct Ctx<'a> {
    pub profile: &'a Profile,
    pub listers: &'a Listers,
    pub nodes: &'a BTreeMap<String, NodeInfo>,
    pub now: SimTime,
    /// How many nodes have pods with affinity, pods with required anti-affinity, images
    /// (the snapshot's havePodsWithAffinity lists): plugins skip their scans at 0.
    pub summary: Summary,
}

impl<'a> Ctx<'a> {
    /// A context whose summary is counted from the nodes.
    pub fn new(
        profile: &'a Profile,
        listers: &'a Listers,
        nodes: &'a BTreeMap<String, NodeInfo>,
        now: SimTime,
    ) -> Self {
        Ctx { profile, listers, nodes, now, summary: Summary::of(nodes.values()) }
    }
}

/// Node counts the snapshot keeps as pods come and go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub nodes_with_affinity_pods: usize,
    pub nodes_with_required_anti_affinity_pods: usize,
    pub nodes_with_images: usize,
}

impl Summary {
    pub fn of<'a>(nodes: impl Iterator<Item = &'a NodeInfo>) -> Summary {
        let mut s = Summary::default();
        for n in nodes {
            s.adjust(n, 1);
        }
        s
    }

    /// Counts (`sign` 1) or uncounts (-1) one node.
    pub fn adjust(&mut self, n: &NodeInfo, sign: isize) {
        let f = |c: &mut usize, b: bool| {
            if b {
                *c = c.wrapping_add_signed(sign);
            }
        };
        f(&mut self.nodes_with_affinity_pods, n.pods_with_affinity > 0);
        f(&mut self.nodes_with_required_anti_affinity_pods, n.pods_with_required_anti_affinity > 0);
        f(&mut self.nodes_with_images, !n.images.is_empty());
    }
}

/// What PreFilter and PreScore computed for one attempt (framework.CycleState). `None`
/// where the plugin returned Skip (or is disabled).
#[derive(Clone, Debug, Default)]
pub struct CycleState {
    pub spread_filter: Option<pod_topology_spread::PreFilterState>,
    pub spread_score: Option<pod_topology_spread::PreScoreState>,
    pub affinity_filter: Option<inter_pod_affinity::PreFilterState>,
    pub affinity_score: Option<inter_pod_affinity::PreScoreState>,
    pub fit_score: Option<node_resources_fit::PreScoreState>,
    pub balanced_score: Option<node_resources_balanced_allocation::PreScoreState>,
    pub node_affinity_score: bool,
    pub volume_restrictions: Option<volume_restrictions::PreFilterState>,
    pub volume_binding: Option<volume_binding::PreFilterState>,
    pub volume_zone: Option<Vec<volume_zone::PvTopology>>,
    /// ImageLocality: how many nodes have each of the pod's images.
    pub image_spread: Option<BTreeMap<String, usize>>,
}

/// RunPreFilterPlugins: a rejection (UnschedulableAndUnresolvable, the only kind these
/// plugins return) stops the run and holds for every node.
pub fn pre_filter(state: &mut CycleState, ctx: &Ctx, pod: &PodInfo) -> Result<(), Status> {
    for p in &ctx.profile.filters {
        match p {
            PluginId::VolumeRestrictions => {
                state.volume_restrictions = volume_restrictions::pre_filter(ctx, pod)?
            }
            PluginId::VolumeBinding => state.volume_binding = volume_binding::pre_filter(ctx, pod)?,
            PluginId::VolumeZone => state.volume_zone = volume_zone::pre_filter(ctx, pod)?,
            PluginId::PodTopologySpread => state.spread_filter = pod_topology_spread::pre_filter(ctx, pod),
            PluginId::InterPodAffinity => state.affinity_filter = inter_pod_affinity::pre_filter(ctx, pod),
            _ => {}
        }
    }
    Ok(())
}

/// RunFilterPlugins: the first failing plugin's status (upstream stops there).
pub fn filter(state: &CycleState, ctx: &Ctx, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    for p in &ctx.profile.filters {
        match p {
            PluginId::NodeUnschedulable => node_unschedulable::filter(pod, node)?,
            PluginId::NodeName => node_name::filter(pod, node)?,
            PluginId::TaintToleration => taint_toleration::filter(pod, node)?,
            PluginId::NodeAffinity => node_affinity::filter(pod, node)?,
            PluginId::NodePorts => node_ports::filter(pod, node)?,
            PluginId::NodeResourcesFit => node_resources_fit::filter(&ctx.profile.fit, pod, node)?,
            PluginId::VolumeRestrictions => {
                if let Some(s) = &state.volume_restrictions {
                    volume_restrictions::filter(s)?
                }
            }
            PluginId::VolumeBinding => {
                if let Some(s) = &state.volume_binding {
                    volume_binding::filter(s, ctx, node)?
                }
            }
            PluginId::VolumeZone => {
                if let Some(s) = &state.volume_zone {
                    volume_zone::filter(s, node)?
                }
            }
            PluginId::PodTopologySpread => {
                if let Some(s) = &state.spread_filter {
                    pod_topology_spread::filter(s, pod, node)?
                }
            }
            PluginId::InterPodAffinity => {
                if let Some(s) = &state.affinity_filter {
                    inter_pod_affinity::filter(s, node)?
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// `RunFilterPluginsWithNominatedPods`: with the node's nominated pods of equal or higher
/// priority added first, then (when that passed and pods were added) without them.
pub fn filter_with_nominated(
    state: &CycleState,
    ctx: &Ctx,
    pod: &PodInfo,
    node: &NodeInfo,
    nominated: &super::framework::Nominated,
) -> Result<(), Status> {
    let added: Vec<&std::sync::Arc<PodInfo>> = nominated
        .get(node.name())
        .into_iter()
        .flatten()
        .filter(|n| n.priority >= pod.priority && n.key != pod.key)
        .collect();
    if added.is_empty() {
        return filter(state, ctx, pod, node);
    }
    let mut state_with = state.clone();
    let mut node_with = node.clone();
    for n in &added {
        if node_with.pods.contains_key(&n.key) {
            continue;
        }
        node_with.add_pod(n);
        update_with_pod(&mut state_with, ctx, pod, n, &node_with, 1);
    }
    filter(&state_with, ctx, pod, &node_with)?;
    filter(state, ctx, pod, node)
}

/// PreFilterExtensions AddPod (`delta` 1) and RemovePod (-1): a pod appears on or leaves
/// `node` in a dry run.
pub fn update_with_pod(
    state: &mut CycleState,
    ctx: &Ctx,
    pod: &PodInfo,
    other: &PodInfo,
    node: &NodeInfo,
    delta: i64,
) {
    if let Some(s) = &mut state.spread_filter {
        pod_topology_spread::update_with_pod(s, pod, other, node, delta);
    }
    if let Some(s) = &mut state.affinity_filter {
        inter_pod_affinity::update_with_pod(s, ctx, other, node, delta);
    }
    if let Some(s) = &mut state.volume_restrictions {
        volume_restrictions::update_with_pod(s, pod, other, delta);
    }
}

/// RunPreScorePlugins over the feasible nodes.
pub fn pre_score(state: &mut CycleState, ctx: &Ctx, pod: &PodInfo, feasible: &[&NodeInfo]) {
    for (p, _) in &ctx.profile.scores {
        match p {
            PluginId::PodTopologySpread => {
                state.spread_score = pod_topology_spread::pre_score(ctx, pod, feasible)
            }
            PluginId::InterPodAffinity => state.affinity_score = inter_pod_affinity::pre_score(ctx, pod),
            PluginId::NodeResourcesFit => {
                state.fit_score = Some(node_resources_fit::pre_score(&ctx.profile.fit, pod))
            }
            PluginId::NodeResourcesBalancedAllocation => {
                state.balanced_score =
                    node_resources_balanced_allocation::pre_score(&ctx.profile.balanced, pod)
            }
            PluginId::NodeAffinity => state.node_affinity_score = node_affinity::pre_score(pod),
            PluginId::ImageLocality => {
                state.image_spread = image_locality::pre_score(pod, ctx.nodes.values())
            }
            _ => {}
        }
    }
}

/// One score plugin's raw score for a node; `None` when the plugin skipped.
pub fn score(p: PluginId, state: &CycleState, ctx: &Ctx, pod: &PodInfo, node: &NodeInfo) -> Option<i64> {
    Some(match p {
        PluginId::TaintToleration => taint_toleration::score(pod, node),
        PluginId::NodeAffinity => state.node_affinity_score.then(|| node_affinity::score(pod, node))?,
        PluginId::NodeResourcesFit => {
            node_resources_fit::score(&ctx.profile.fit, state.fit_score.as_ref()?, node)
        }
        PluginId::PodTopologySpread => pod_topology_spread::score(state.spread_score.as_ref()?, pod, node),
        PluginId::InterPodAffinity => inter_pod_affinity::score(state.affinity_score.as_ref()?, node),
        PluginId::NodeResourcesBalancedAllocation => {
            node_resources_balanced_allocation::score(state.balanced_score.as_ref()?, node)
        }
        PluginId::ImageLocality => match &state.image_spread {
            Some(spread) => image_locality::score(pod, node, spread, ctx.nodes.len()),
            None => 0,
        },
        _ => return None,
    })
}

/// NormalizeScore for plugins that have it.
pub fn normalize(p: PluginId, state: &CycleState, nodes: &[&NodeInfo], scores: &mut [i64]) {
    match p {
        PluginId::TaintToleration => default_normalize_score(MAX_NODE_SCORE, true, scores),
        PluginId::NodeAffinity => default_normalize_score(MAX_NODE_SCORE, false, scores),
        PluginId::PodTopologySpread => {
            if let Some(s) = &state.spread_score {
                pod_topology_spread::normalize(s, nodes, scores)
            }
        }
        PluginId::InterPodAffinity if state.affinity_score.is_some() => inter_pod_affinity::normalize(scores),
        _ => {}
    }
}

/// QueueingHintFn of a plugin for a cluster event (EventsToRegister): may the event make
/// the pod schedulable where this plugin rejected it?
pub fn queueing_hint(p: PluginId, ctx: &Ctx, pod: &PodInfo, ev: &ClusterEvent) -> Hint {
    match p {
        PluginId::NodeUnschedulable => node_unschedulable::queueing_hint(pod, ev),
        PluginId::NodeName => node_name::queueing_hint(pod, ev),
        PluginId::TaintToleration => taint_toleration::queueing_hint(pod, ev),
        PluginId::NodeAffinity => node_affinity::queueing_hint(pod, ev),
        PluginId::NodePorts => node_ports::queueing_hint(pod, ev),
        PluginId::NodeResourcesFit => node_resources_fit::queueing_hint(&ctx.profile.fit, pod, ev),
        PluginId::PodTopologySpread => pod_topology_spread::queueing_hint(ctx, pod, ev),
        PluginId::InterPodAffinity => inter_pod_affinity::queueing_hint(ctx, pod, ev),
        PluginId::VolumeRestrictions => volume_restrictions::queueing_hint(pod, ev),
        PluginId::VolumeBinding => volume_binding::queueing_hint(pod, ev),
        PluginId::VolumeZone => volume_zone::queueing_hint(pod, ev),
        _ => Hint::QueueSkip,
    }
}

/// helper.DefaultNormalizeScore: scale to 0..max by the highest score, reversed when
/// fewer is better.
pub fn default_normalize_score(max_priority: i64, reverse: bool, scores: &mut [i64]) {
    let max_count = scores.iter().copied().max().unwrap_or(0).max(0);
    if max_count == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = max_priority);
        }
        return;
    }
    for s in scores.iter_mut() {
        let mut v = max_priority * *s / max_count;
        if reverse {
            v = max_priority - v;
        }
        *s = v;
    }
}

/// `v1helper.GetRequiredNodeAffinity(pod).Match(node)`: nodeSelector and required node
/// affinity.
pub fn required_node_affinity_matches(pod: &PodInfo, node: &NodeInfo) -> bool {
    node_affinity::matches_required(pod, node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_normalize_score_as_helper_test() {
        // pkg/scheduler/framework/plugins/helper/normalize_score_test.go
        let mut s = vec![1, 2, 3, 4, 5];
        default_normalize_score(100, false, &mut s);
        assert_eq!(s, vec![20, 40, 60, 80, 100]);
        let mut s = vec![1, 2, 3, 4, 5];
        default_normalize_score(10, true, &mut s);
        assert_eq!(s, vec![8, 6, 4, 2, 0]);
        let mut s = vec![0, 0, 0];
        default_normalize_score(100, true, &mut s);
        assert_eq!(s, vec![100, 100, 100]);
        let mut s = vec![0, 0, 0];
        default_normalize_score(100, false, &mut s);
        assert_eq!(s, vec![0, 0, 0]);
    }

    #[test]
    fn every_plugin_name_round_trips() {
        for (p, _) in DEFAULT_PLUGINS {
            assert_eq!(PluginId::from_name(p.name()), Some(*p));
        }
        assert_eq!(PluginId::from_name("NodeVolumeLimits"), None);
    }
}
