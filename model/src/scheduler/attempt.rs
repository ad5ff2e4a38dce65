//! What the scheduler records of each scheduling attempt, for the trace and for
//! `kubesim explain`: every node's filter verdict (the first failing plugin and its
//! reasons, as upstream stops there), every feasible node's raw and normalized score per
//! plugin, the chosen node, and preemption's candidates and victims.
//!
//! Size: a failed attempt, or one in a cluster of at most [`FULL_DETAIL_MAX_NODES`]
//! nodes, lists every node. A successful attempt in a larger cluster keeps the reason
//! counts of the rejected nodes and the score rows of the [`TOP_SCORE_ROWS`] best nodes
//! (scale-500's 50,000 attempts would otherwise write ~200 score rows each).

use serde::{Deserialize, Serialize};

use super::framework::Code;

/// Up to this many nodes (minFeasibleNodesToFind, below which every node is evaluated),
/// successful attempts list every node.
pub const FULL_DETAIL_MAX_NODES: usize = 100;
/// Score rows kept for a successful attempt in a larger cluster.
pub const TOP_SCORE_ROWS: usize = 5;

/// One scheduling attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingAttempt {
    /// namespace/name.
    pub pod: String,
    pub uid: String,
    pub scheduler_name: String,
    pub priority: i32,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub num_all_nodes: usize,
    pub evaluated_nodes: usize,
    pub feasible_nodes: usize,
    pub outcome: Outcome,
    /// The profile's filter plugins in the order they run (with `filtered`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter_plugins: Vec<String>,
    /// Rejected nodes with the plugin that rejected each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filtered: Vec<FilterVerdict>,
    /// When `filtered` is left out: rejections counted by plugin and reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter_summary: Vec<ReasonCount>,
    /// The score plugins that ran, with their weights (column order of `scores`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub score_plugins: Vec<ScorePlugin>,
    /// Feasible nodes, best total first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<NodeScores>,
    /// Feasible nodes whose score rows were left out.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub scores_omitted: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemption: Option<PreemptionRecord>,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum Outcome {
    /// Bound (assumed, then bound through the API) to this node.
    Scheduled { node: String },
    /// No node fits: the FailedScheduling message, and the node preemption nominated.
    Unschedulable {
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nominated_node: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterVerdict {
    pub node: String,
    pub plugin: String,
    pub code: Code,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasonCount {
    pub plugin: String,
    pub reason: String,
    pub nodes: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScorePlugin {
    pub name: String,
    pub weight: i64,
}

/// A feasible node's scores: per plugin (in `score_plugins` order) the raw score and
/// the normalized one (None: the plugin skipped, it counts 0); `total` is the sum of
/// normalized times weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeScores {
    pub node: String,
    pub raw: Vec<Option<i64>>,
    pub normalized: Vec<Option<i64>>,
    pub total: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreemptionRecord {
    /// PostFilter's message ("" when it nominated a node).
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<CandidateRecord>,
    /// Potential nodes where the dry run found no victims that help.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<FilterVerdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateRecord {
    pub node: String,
    /// namespace/name (priority), most important first.
    pub victims: Vec<String>,
    pub pdb_violations: i64,
}
