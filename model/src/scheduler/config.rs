//! KubeSchedulerConfiguration profiles (kubescheduler.config.k8s.io/v1): which plugins
//! run with which weights and arguments, read from a scenario as upstream's YAML, and
//! the [`Profile`] the framework runs. Defaults are v1.33's
//! (pkg/scheduler/apis/config/v1/defaults.go, default_plugins.go).

use std::collections::BTreeSet;

use serde::Deserialize;

use super::plugins::{PluginId, DEFAULT_PLUGINS};
use crate::api::pod::DEFAULT_SCHEDULER_NAME;
use crate::api::pod_scheduling::TopologySpreadConstraint;

/// `config.MaxCustomPriorityScore`: RequestedToCapacityRatio shape scores are 0..10.
pub const MAX_CUSTOM_PRIORITY_SCORE: i64 = 10;
/// `config.MaxWeight` for score plugins (100 * MaxTotalScore/MaxNodeScore bound; v1
/// validation allows 1..100).
pub const MAX_WEIGHT: i64 = 100;
/// DefaultPreemptionArgs defaults: minCandidateNodesPercentage 10, minCandidateNodesAbsolute 100.
pub const DEFAULT_MIN_CANDIDATE_NODES_PERCENTAGE: i64 = 10;
pub const DEFAULT_MIN_CANDIDATE_NODES_ABSOLUTE: i64 = 100;
/// InterPodAffinityArgs hardPodAffinityWeight default.
pub const DEFAULT_HARD_POD_AFFINITY_WEIGHT: i64 = 1;

/// `config.ScoringStrategyType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum ScoringStrategyType {
    #[default]
    LeastAllocated,
    MostAllocated,
    RequestedToCapacityRatio,
}

/// `config.ResourceSpec`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    pub name: String,
    #[serde(default = "one")]
    pub weight: i64,
}

fn one() -> i64 {
    1
}

/// cpu and memory with weight 1: NodeResourcesFit's and BalancedAllocation's default
/// resources.
pub fn default_resources() -> Vec<ResourceSpec> {
    vec![ResourceSpec { name: "cpu".into(), weight: 1 }, ResourceSpec { name: "memory".into(), weight: 1 }]
}

/// `config.UtilizationShapePoint`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UtilizationShapePoint {
    pub utilization: i64,
    pub score: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestedToCapacityRatioParam {
    #[serde(default)]
    pub shape: Vec<UtilizationShapePoint>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScoringStrategy {
    #[serde(default, rename = "type")]
    pub type_: ScoringStrategyType,
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
    #[serde(default)]
    pub requested_to_capacity_ratio: Option<RequestedToCapacityRatioParam>,
}

/// NodeResourcesFitArgs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FitArgs {
    pub strategy: ScoringStrategyType,
    pub resources: Vec<ResourceSpec>,
    /// RequestedToCapacityRatio's shape, scores already scaled to 0..100.
    pub shape: Vec<(i64, i64)>,
    pub ignored_resources: BTreeSet<String>,
    pub ignored_resource_groups: BTreeSet<String>,
}

impl Default for FitArgs {
    fn default() -> Self {
        FitArgs {
            strategy: ScoringStrategyType::LeastAllocated,
            resources: default_resources(),
            shape: Vec::new(),
            ignored_resources: BTreeSet::new(),
            ignored_resource_groups: BTreeSet::new(),
        }
    }
}

/// PodTopologySpreadArgs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpreadArgs {
    pub default_constraints: Vec<TopologySpreadConstraint>,
    /// `defaultingType: System` (the default): the system default constraints.
    pub system_defaulted: bool,
}

impl Default for SpreadArgs {
    fn default() -> Self {
        SpreadArgs { default_constraints: system_default_constraints(), system_defaulted: true }
    }
}

/// podtopologyspread/plugin.go systemDefaultConstraints: hostname with maxSkew 3 and zone
/// with maxSkew 5, both ScheduleAnyway.
pub fn system_default_constraints() -> Vec<TopologySpreadConstraint> {
    [("kubernetes.io/hostname", 3), ("topology.kubernetes.io/zone", 5)]
        .into_iter()
        .map(|(key, skew)| TopologySpreadConstraint {
            max_skew: skew,
            topology_key: key.into(),
            when_unsatisfiable: crate::api::pod_scheduling::SCHEDULE_ANYWAY.into(),
            ..Default::default()
        })
        .collect()
}

/// DefaultPreemptionArgs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreemptionArgs {
    pub min_candidate_nodes_percentage: i64,
    pub min_candidate_nodes_absolute: i64,
}

impl Default for PreemptionArgs {
    fn default() -> Self {
        PreemptionArgs {
            min_candidate_nodes_percentage: DEFAULT_MIN_CANDIDATE_NODES_PERCENTAGE,
            min_candidate_nodes_absolute: DEFAULT_MIN_CANDIDATE_NODES_ABSOLUTE,
        }
    }
}

/// A profile as the framework runs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub scheduler_name: String,
    /// Filter plugins in order.
    pub filters: Vec<PluginId>,
    /// Score plugins with their weights, in order.
    pub scores: Vec<(PluginId, i64)>,
    /// DefaultPreemption's arguments; `None` when PostFilter is disabled.
    pub preemption: Option<PreemptionArgs>,
    pub fit: FitArgs,
    /// NodeResourcesBalancedAllocationArgs resources.
    pub balanced: Vec<ResourceSpec>,
    pub spread: SpreadArgs,
    pub hard_pod_affinity_weight: i64,
    /// VolumeBindingArgs.bindTimeoutSeconds (600).
    pub bind_timeout: std::time::Duration,
}

impl Default for Profile {
    fn default() -> Self {
        Profile::named(DEFAULT_SCHEDULER_NAME)
    }
}

impl Profile {
    /// The default profile under a scheduler name.
    pub fn named(name: &str) -> Profile {
        Profile {
            scheduler_name: name.to_string(),
            filters: DEFAULT_PLUGINS.iter().map(|(p, _)| *p).filter(|p| p.is_filter()).collect(),
            scores: DEFAULT_PLUGINS.iter().copied().filter(|(p, _)| p.is_score()).collect(),
            preemption: Some(PreemptionArgs::default()),
            fit: FitArgs::default(),
            balanced: default_resources(),
            spread: SpreadArgs::default(),
            hard_pod_affinity_weight: DEFAULT_HARD_POD_AFFINITY_WEIGHT,
            bind_timeout: super::plugins::volume_binding::DEFAULT_BIND_TIMEOUT,
        }
    }

    pub fn weight(&self, p: PluginId) -> Option<i64> {
        self.scores.iter().find(|(q, _)| *q == p).map(|(_, w)| *w)
    }
}

// ---- the YAML a scenario gives (KubeSchedulerConfiguration `profiles`) ----

/// One entry of `profiles`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProfileConfig {
    #[serde(default)]
    pub scheduler_name: Option<String>,
    #[serde(default)]
    pub plugins: PluginsConfig,
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

/// `plugins`: the extension points kubesim lets a profile change.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginsConfig {
    #[serde(default)]
    pub multi_point: PluginSet,
    #[serde(default)]
    pub filter: PluginSet,
    #[serde(default)]
    pub score: PluginSet,
    #[serde(default)]
    pub post_filter: PluginSet,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    pub name: String,
    #[serde(default)]
    pub weight: Option<i64>,
}

/// `pluginConfig` entries with the arguments kubesim honours.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "name", content = "args", deny_unknown_fields)]
pub enum PluginConfig {
    NodeResourcesFit(FitArgsConfig),
    NodeResourcesBalancedAllocation(BalancedArgsConfig),
    PodTopologySpread(SpreadArgsConfig),
    InterPodAffinity(InterPodAffinityArgsConfig),
    DefaultPreemption(PreemptionArgsConfig),
    VolumeBinding(VolumeBindingArgsConfig),
}

/// VolumeBindingArgs (kubesim honours bindTimeoutSeconds).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeBindingArgsConfig {
    #[serde(default)]
    pub bind_timeout_seconds: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FitArgsConfig {
    #[serde(default)]
    pub scoring_strategy: Option<ScoringStrategy>,
    #[serde(default)]
    pub ignored_resources: Vec<String>,
    #[serde(default)]
    pub ignored_resource_groups: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BalancedArgsConfig {
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SpreadArgsConfig {
    #[serde(default)]
    pub default_constraints: Vec<TopologySpreadConstraint>,
    /// `System` (default) or `List`.
    #[serde(default)]
    pub defaulting_type: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InterPodAffinityArgsConfig {
    #[serde(default)]
    pub hard_pod_affinity_weight: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PreemptionArgsConfig {
    #[serde(default)]
    pub min_candidate_nodes_percentage: Option<i64>,
    #[serde(default)]
    pub min_candidate_nodes_absolute: Option<i64>,
}

impl ProfileConfig {
    /// The profile this configuration makes, merged over the defaults as
    /// mergePluginSet does; errors read like the scheduler's config validation.
    pub fn build(&self) -> Result<Profile, String> {
        let name = self.scheduler_name.clone().unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.to_string());
        let mut p = Profile::named(&name);
        let sets = [
            ("multiPoint", &self.plugins.multi_point),
            ("filter", &self.plugins.filter),
            ("score", &self.plugins.score),
            ("postFilter", &self.plugins.post_filter),
        ];
        for (point, set) in sets {
            for d in &set.disabled {
                let all = d.name == "*";
                let id = if all { None } else { Some(known(&d.name, point)?) };
                let hit = |q: &PluginId| all || Some(*q) == id;
                if matches!(point, "multiPoint" | "filter") {
                    p.filters.retain(|q| !hit(q));
                }
                if matches!(point, "multiPoint" | "score") {
                    p.scores.retain(|(q, _)| !hit(q));
                }
                if matches!(point, "multiPoint" | "postFilter")
                    && (all || id == Some(PluginId::DefaultPreemption))
                {
                    p.preemption = None;
                }
            }
            for e in &set.enabled {
                let id = known(&e.name, point)?;
                if let Some(w) = e.weight {
                    if !(1..=MAX_WEIGHT).contains(&w) {
                        return Err(format!(
                            "profiles[{name}].plugins.{point}.enabled[{}].weight: Invalid value: {w}: must be in the range [1, {MAX_WEIGHT}]",
                            e.name
                        ));
                    }
                }
                let default_weight =
                    DEFAULT_PLUGINS.iter().find(|(q, _)| *q == id).map_or(1, |(_, w)| (*w).max(1));
                if matches!(point, "multiPoint" | "filter") && id.is_filter() && !p.filters.contains(&id) {
                    p.filters.push(id);
                }
                if matches!(point, "multiPoint" | "score") && id.is_score() {
                    let w = e.weight.unwrap_or(default_weight);
                    match p.scores.iter_mut().find(|(q, _)| *q == id) {
                        Some(entry) => entry.1 = w,
                        None => p.scores.push((id, w)),
                    }
                } else if point == "score" {
                    return Err(format!("{} does not extend score", e.name));
                }
                if matches!(point, "multiPoint" | "postFilter")
                    && id == PluginId::DefaultPreemption
                    && p.preemption.is_none()
                {
                    p.preemption = Some(PreemptionArgs::default());
                }
            }
        }
        for c in &self.plugin_config {
            apply_args(&mut p, c)?;
        }
        Ok(p)
    }
}

fn known(name: &str, point: &str) -> Result<PluginId, String> {
    PluginId::from_name(name).ok_or_else(|| {
        format!(
            "plugins.{point}: {name:?} is not a plugin kubesim runs; use one of {}",
            DEFAULT_PLUGINS.iter().map(|(p, _)| p.name()).collect::<Vec<_>>().join(", ")
        )
    })
}

fn apply_args(p: &mut Profile, c: &PluginConfig) -> Result<(), String> {
    match c {
        PluginConfig::NodeResourcesFit(a) => {
            if let Some(s) = &a.scoring_strategy {
                p.fit.strategy = s.type_;
                if !s.resources.is_empty() {
                    p.fit.resources = s.resources.clone();
                }
                if s.type_ == ScoringStrategyType::RequestedToCapacityRatio {
                    let shape = s.requested_to_capacity_ratio.as_ref().map(|r| r.shape.as_slice()).unwrap_or(&[]);
                    p.fit.shape = validate_shape(shape)?;
                }
            }
            p.fit.ignored_resources = a.ignored_resources.iter().cloned().collect();
            p.fit.ignored_resource_groups = a.ignored_resource_groups.iter().cloned().collect();
        }
        PluginConfig::NodeResourcesBalancedAllocation(a) => {
            if !a.resources.is_empty() {
                p.balanced = a.resources.clone();
            }
        }
        PluginConfig::PodTopologySpread(a) => match a.defaulting_type.as_deref() {
            None | Some("System") => {
                if !a.default_constraints.is_empty() {
                    return Err("pluginConfig PodTopologySpread: defaultConstraints: Invalid value: when .defaultingType is \"System\", .defaultConstraints must be empty".into());
                }
                p.spread = SpreadArgs::default();
            }
            Some("List") => {
                p.spread = SpreadArgs { default_constraints: a.default_constraints.clone(), system_defaulted: false };
            }
            Some(other) => {
                return Err(format!("pluginConfig PodTopologySpread: defaultingType: Unsupported value: {other:?}: supported values: \"List\", \"System\""))
            }
        },
        PluginConfig::InterPodAffinity(a) => {
            if let Some(w) = a.hard_pod_affinity_weight {
                if !(0..=100).contains(&w) {
                    return Err(format!("pluginConfig InterPodAffinity: hardPodAffinityWeight: Invalid value: {w}: not in valid range [0-100]"));
                }
                p.hard_pod_affinity_weight = w;
            }
        }
        PluginConfig::DefaultPreemption(a) => {
            let args = p.preemption.get_or_insert_with(PreemptionArgs::default);
            if let Some(v) = a.min_candidate_nodes_percentage {
                if !(0..=100).contains(&v) {
                    return Err(format!("pluginConfig DefaultPreemption: minCandidateNodesPercentage: Invalid value: {v}: not in valid range [0, 100]"));
                }
                args.min_candidate_nodes_percentage = v;
            }
            if let Some(v) = a.min_candidate_nodes_absolute {
                if v < 0 {
                    return Err(format!("pluginConfig DefaultPreemption: minCandidateNodesAbsolute: Invalid value: {v}: not in valid range [0, inf)"));
                }
                args.min_candidate_nodes_absolute = v;
            }
        }
        PluginConfig::VolumeBinding(a) => {
            if let Some(v) = a.bind_timeout_seconds {
                // validation.go ValidateVolumeBindingArgs.
                if v < 0 {
                    return Err(format!("pluginConfig VolumeBinding: bindTimeoutSeconds: Invalid value: {v}: invalid BindTimeoutSeconds, should not be a negative value"));
                }
                p.bind_timeout = std::time::Duration::from_secs(v as u64);
            }
        }
    }
    Ok(())
}

/// validateFunctionShape: 1..n points, utilization 0..100 strictly increasing, score
/// 0..10; scores scaled by MaxNodeScore/MaxCustomPriorityScore.
fn validate_shape(shape: &[UtilizationShapePoint]) -> Result<Vec<(i64, i64)>, String> {
    if shape.is_empty() {
        return Err("pluginConfig NodeResourcesFit: scoringStrategy.requestedToCapacityRatio.shape: Required value: at least one point must be specified".into());
    }
    let mut last = -1;
    for (i, pt) in shape.iter().enumerate() {
        if !(0..=100).contains(&pt.utilization) || pt.utilization <= last {
            return Err(format!("pluginConfig NodeResourcesFit: scoringStrategy.requestedToCapacityRatio.shape[{i}].utilization: Invalid value: {}: utilization values must be sorted, unique, and in the range [0, 100]", pt.utilization));
        }
        if !(0..=MAX_CUSTOM_PRIORITY_SCORE).contains(&pt.score) {
            return Err(format!("pluginConfig NodeResourcesFit: scoringStrategy.requestedToCapacityRatio.shape[{i}].score: Invalid value: {}: not in valid range [0, {MAX_CUSTOM_PRIORITY_SCORE}]", pt.score));
        }
        last = pt.utilization;
    }
    let scale = super::plugins::MAX_NODE_SCORE / MAX_CUSTOM_PRIORITY_SCORE;
    Ok(shape.iter().map(|p| (p.utilization, p.score * scale)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_is_v1_33s() {
        let p = Profile::default();
        let names: Vec<_> = p.filters.iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "NodeUnschedulable",
                "NodeName",
                "TaintToleration",
                "NodeAffinity",
                "NodePorts",
                "NodeResourcesFit",
                "VolumeRestrictions",
                "VolumeBinding",
                "VolumeZone",
                "PodTopologySpread",
                "InterPodAffinity"
            ]
        );
        let scores: Vec<_> = p.scores.iter().map(|(f, w)| (f.name(), *w)).collect();
        assert_eq!(
            scores,
            [
                ("TaintToleration", 3),
                ("NodeAffinity", 2),
                ("NodeResourcesFit", 1),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 2),
                ("NodeResourcesBalancedAllocation", 1),
                ("ImageLocality", 1)
            ]
        );
        assert!(p.preemption.is_some());
    }

    #[test]
    fn yaml_profiles_merge_over_the_defaults() {
        let yaml = r#"
schedulerName: bin-packer
plugins:
  score:
    disabled: [{name: NodeResourcesBalancedAllocation}]
    enabled: [{name: NodeResourcesFit, weight: 5}]
  postFilter:
    disabled: [{name: DefaultPreemption}]
pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: RequestedToCapacityRatio
        resources: [{name: cpu, weight: 3}]
        requestedToCapacityRatio:
          shape: [{utilization: 0, score: 0}, {utilization: 100, score: 10}]
"#;
        let c: ProfileConfig = serde_yaml::from_str(yaml).unwrap();
        let p = c.build().unwrap();
        assert_eq!(p.scheduler_name, "bin-packer");
        assert_eq!(p.weight(PluginId::NodeResourcesFit), Some(5));
        assert_eq!(p.weight(PluginId::NodeResourcesBalancedAllocation), None);
        assert!(p.preemption.is_none());
        assert_eq!(p.fit.strategy, ScoringStrategyType::RequestedToCapacityRatio);
        assert_eq!(p.fit.shape, vec![(0, 0), (100, 100)]);
        assert_eq!(p.fit.resources, vec![ResourceSpec { name: "cpu".into(), weight: 3 }]);
    }

    #[test]
    fn bad_profiles_are_refused() {
        let c: ProfileConfig = serde_yaml::from_str("plugins: {score: {enabled: [{name: Nope}]}}").unwrap();
        assert!(c.build().unwrap_err().contains("\"Nope\" is not a plugin kubesim runs"));
        let c: ProfileConfig =
            serde_yaml::from_str("plugins: {score: {enabled: [{name: ImageLocality, weight: 0}]}}").unwrap();
        assert!(c.build().unwrap_err().contains("must be in the range [1, 100]"));
        let c: ProfileConfig = serde_yaml::from_str(
            "pluginConfig: [{name: NodeResourcesFit, args: {scoringStrategy: {type: RequestedToCapacityRatio}}}]",
        )
        .unwrap();
        assert!(c.build().unwrap_err().contains("at least one point"));
        assert!(serde_yaml::from_str::<ProfileConfig>("pluginConfig: [{name: Foo, args: {}}]").is_err());
    }
}
