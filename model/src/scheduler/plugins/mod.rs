//! Filter and score plugins, one a file, with upstream's names and reason strings.
//! The registries are ordered as the v1.33 default profile runs them
//! (pkg/scheduler/apis/config/v1/default_plugins.go).

pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_balanced_allocation;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod taint_toleration;

use super::framework::{NodeInfo, PodInfo, Status};

pub type FilterFn = fn(&PodInfo, &NodeInfo) -> Result<(), Status>;
/// Raw score for one node (before normalization).
pub type ScoreFn = fn(&PodInfo, &NodeInfo) -> i64;

/// Filters in the default profile's order.
pub const FILTERS: &[(&str, FilterFn)] = &[
    (node_unschedulable::NAME, node_unschedulable::filter),
    (node_name::NAME, node_name::filter),
    (taint_toleration::NAME, taint_toleration::filter),
    (node_affinity::NAME, node_affinity::filter),
    (node_ports::NAME, node_ports::filter),
    (node_resources_fit::NAME, node_resources_fit::filter),
];

/// How a score plugin's raw scores become 0..100.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Normalize {
    /// Already 0..100.
    None,
    /// helper.DefaultNormalizeScore: scale by the maximum.
    ByMax,
    /// helper.DefaultNormalizeScore with reverse: fewer is better.
    ReverseByMax,
}

/// Score plugins with their default weights (default_plugins.go).
pub const SCORES: &[(&str, ScoreFn, i64, Normalize)] = &[
    (taint_toleration::NAME, taint_toleration::score, 3, Normalize::ReverseByMax),
    (node_affinity::NAME, node_affinity::score, 2, Normalize::ByMax),
    (node_resources_fit::NAME, node_resources_fit::score, 1, Normalize::None),
    (node_resources_balanced_allocation::NAME, node_resources_balanced_allocation::score, 1, Normalize::None),
];

/// framework.MaxNodeScore.
pub const MAX_NODE_SCORE: i64 = 100;
