//! kube-scheduler (v1.33): the scheduling queue with queueing hints, the framework running
//! a profile's PreFilter, Filter, PostFilter (DefaultPreemption), PreScore, Score and
//! NormalizeScore plugins, host selection, binding through the API, and a record of every
//! attempt for the trace. Messages follow upstream exactly
//! (pkg/scheduler/framework/types.go FitError, pkg/scheduler/schedule_one.go).

pub mod attempt;
pub mod config;
pub mod framework;
pub mod plugins;
pub mod queue;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::api::pod::condition;
use crate::api::storage::{ANN_BOUND_BY_CONTROLLER, ANN_SELECTED_NODE};
use crate::api::{ConditionStatus, Kind, Object, Pod, PodCondition, PodPhase, EVENT_NORMAL, EVENT_WARNING};
use crate::client::{
    ApiRequest, ApiResult, Component, EventRecorder, Output, Patch, Record, Tagged, WatchEvent,
    WatchEventType, WatchSpec,
};
use crate::time::SimTime;

use attempt::{
    CandidateRecord, FilterVerdict, NodeScores, Outcome, PreemptionRecord, ReasonCount, SchedulingAttempt,
    ScorePlugin, FULL_DETAIL_MAX_NODES, TOP_SCORE_ROWS,
};
use config::Profile;
use framework::{Listers, NodeInfo, Nominated, PodInfo, Status};
use plugins::default_preemption::{self, PreemptionOutcome};
use plugins::volume_binding::{self, PodVolumes};
use plugins::{Ctx, CycleState, PluginId};
use queue::{ClusterEvent, Hint, NodeChange, SchedulingQueue};

/// `NoNodeAvailableMsg`.
pub const NO_NODE_AVAILABLE_MSG: &str = "0/%v nodes are available";
/// `ErrNoNodesAvailable` (schedule_one.go).
pub const ERR_NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";
/// DefaultPreemption's reasons (framework/preemption/preemption.go).
pub const PREEMPTION_NOT_HELPFUL: &str = default_preemption::MSG_PREEMPTION_NOT_HELPFUL;
pub const NO_PREEMPTION_VICTIMS: &str = default_preemption::MSG_NO_VICTIMS;
/// The scheduler's name and event source.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";
/// minFeasibleNodesToFind (schedule_one.go).
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// minFeasibleNodesPercentageToFind.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;
/// `v1.PodReasonUnschedulable` / `v1.PodReasonSchedulerError`.
pub const REASON_UNSCHEDULABLE: &str = "Unschedulable";
pub const REASON_SCHEDULER_ERROR: &str = "SchedulerError";

#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerConfig {
    /// KubeSchedulerConfiguration podInitialBackoffSeconds (default 1).
    pub pod_initial_backoff: Duration,
    /// podMaxBackoffSeconds (default 10).
    pub pod_max_backoff: Duration,
    /// percentageOfNodesToScore; `None` or 0 = adaptive.
    pub percentage_of_nodes_to_score: Option<u32>,
    /// podMaxInUnschedulablePodsDuration (5 minutes).
    pub pod_max_in_unschedulable_pods_duration: Duration,
    /// `profiles`: one per schedulerName (default: the default profile).
    pub profiles: Vec<Profile>,
    /// PLANTED BUG for the invariant checkers' tests: skip the TaintToleration filter.
    pub planted_ignore_taints: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            pod_initial_backoff: Duration::from_secs(1),
            pod_max_backoff: Duration::from_secs(10),
            percentage_of_nodes_to_score: None,
            pod_max_in_unschedulable_pods_duration: Duration::from_secs(300),
            profiles: vec![Profile::default()],
            planted_ignore_taints: false,
        }
    }
}

/// `FitError.Error()`: `0/N nodes are available: <sorted reason histogram>.` and the
/// PostFilter's message.
pub fn fit_error_text<'a>(
    num_all_nodes: usize,
    reasons: impl Iterator<Item = &'a str>,
    post_filter_msg: &str,
) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in reasons {
        *counts.entry(r).or_default() += 1;
    }
    let mut v: Vec<String> = counts.into_iter().map(|(r, n)| format!("{n} {r}")).collect();
    v.sort();
    let mut s = NO_NODE_AVAILABLE_MSG.replace("%v", &num_all_nodes.to_string()) + ":";
    if !v.is_empty() {
        s += &format!(" {}.", v.join(", "));
    }
    if !post_filter_msg.is_empty() {
        s += &format!(" {post_filter_msg}");
    }
    s
}

/// Why a pod fits nowhere: per node, the first failing filter's status.
#[derive(Clone, Debug, PartialEq)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub node_status: BTreeMap<String, Status>,
    /// DefaultPreemption's message when it could not help (with its `preemption: `).
    pub post_filter_msg: String,
    /// A PreFilter plugin's rejection (Diagnosis.PreFilterMsg): it replaces the per-node
    /// histogram.
    pub pre_filter_msg: String,
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.pre_filter_msg.is_empty() {
            // types.go FitError.Error: "0/N nodes are available:" + SeparatorFormat (" %v.").
            let mut s = NO_NODE_AVAILABLE_MSG.replace("%v", &self.num_all_nodes.to_string());
            s += &format!(": {}.", self.pre_filter_msg);
            if !self.post_filter_msg.is_empty() {
                s += &format!(" {}", self.post_filter_msg);
            }
            return f.write_str(&s);
        }
        let reasons = self.node_status.values().flat_map(|s| s.reasons.iter().map(String::as_str));
        f.write_str(&fit_error_text(self.num_all_nodes, reasons, &self.post_filter_msg))
    }
}

/// The outcome of one scheduling attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Fits {
        node: String,
        feasible: usize,
    },
    Unschedulable(FitError),
    /// No node at all (`ErrNoNodesAvailable`).
    NoNodes,
}

/// One scheduling cycle's result: the decision, the plugins that rejected the pod (for
/// the queue's hints), preemption's outcome and the trace record.
#[derive(Clone, Debug)]
pub struct ScheduleResult {
    pub decision: Decision,
    pub rejectors: BTreeSet<PluginId>,
    pub preemption: Option<PreemptionOutcome>,
    pub record: SchedulingAttempt,
    /// VolumeBinding's work on the chosen node (None: no claim waits for binding).
    pub volumes: Option<volume_binding::PodVolumes>,
}

/// The nodes in a stable order, the listers, the rotation point for
/// percentageOfNodesToScore, and the counts plugins check before scanning every node.
#[derive(Debug, Default)]
pub struct Snapshot {
    nodes: BTreeMap<String, NodeInfo>,
    pub listers: Listers,
    next_start_node_index: usize,
    summary: plugins::Summary,
}

impl Snapshot {
    pub fn nodes(&self) -> &BTreeMap<String, NodeInfo> {
        &self.nodes
    }

    pub fn summary(&self) -> plugins::Summary {
        self.summary
    }

    /// Changes one node, keeping the summary.
    fn with_node<R>(&mut self, name: &str, f: impl FnOnce(&mut NodeInfo) -> R) -> Option<R> {
        let n = self.nodes.get_mut(name)?;
        self.summary.adjust(n, -1);
        let r = f(n);
        self.summary.adjust(n, 1);
        Some(r)
    }

    /// Adds (or replaces) a node.
    pub fn insert_node(&mut self, info: NodeInfo) {
        self.summary.adjust(&info, 1);
        if let Some(old) = self.nodes.insert(info.name().to_string(), info) {
            self.summary.adjust(&old, -1);
        }
    }

    pub fn remove_node(&mut self, name: &str) -> Option<NodeInfo> {
        let old = self.nodes.remove(name)?;
        self.summary.adjust(&old, -1);
        Some(old)
    }

    /// A new version of a node already there; returns the previous one.
    pub fn update_node(&mut self, node: Arc<crate::api::Node>) -> Option<Arc<crate::api::Node>> {
        let name = node.metadata.name.clone();
        self.with_node(&name, |n| {
            let old = n.node.clone();
            n.set_node(node);
            old
        })
    }

    pub fn add_pod(&mut self, node: &str, p: &Arc<PodInfo>) {
        self.with_node(node, |n| n.add_pod(p));
    }

    pub fn remove_pod(&mut self, node: &str, p: &PodInfo) {
        self.with_node(node, |n| n.remove_pod(p));
    }

    /// `numFeasibleNodesToFind`.
    pub fn num_feasible_nodes_to_find(&self, percentage: Option<u32>) -> usize {
        let n = self.nodes.len();
        if n < MIN_FEASIBLE_NODES_TO_FIND {
            return n;
        }
        let pct = match percentage {
            Some(p) if p > 0 => (p as usize).min(100),
            _ => (50usize.saturating_sub(n / 125)).max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND),
        };
        (n * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
    }

    /// One scheduling cycle (schedulePod and the PostFilter on failure).
    #[allow(clippy::too_many_arguments)]
    pub fn schedule(
        &mut self,
        pod: &PodInfo,
        profile: &Profile,
        config: &SchedulerConfig,
        nominated: &Nominated,
        attempt: u32,
        now: SimTime,
        rng: &mut ChaCha8Rng,
    ) -> ScheduleResult {
        let n = self.nodes.len();
        let mut record = SchedulingAttempt {
            pod: pod.key.clone(),
            uid: pod.pod.metadata.uid.clone(),
            scheduler_name: profile.scheduler_name.clone(),
            priority: pod.priority,
            attempt,
            num_all_nodes: n,
            evaluated_nodes: 0,
            feasible_nodes: 0,
            outcome: Outcome::Unschedulable { message: ERR_NO_NODES_AVAILABLE.into(), nominated_node: None },
            filter_plugins: Vec::new(),
            filtered: Vec::new(),
            filter_summary: Vec::new(),
            score_plugins: Vec::new(),
            scores: Vec::new(),
            scores_omitted: 0,
            preemption: None,
        };
        if n == 0 {
            return ScheduleResult {
                decision: Decision::NoNodes,
                rejectors: BTreeSet::new(),
                preemption: None,
                record,
                volumes: None,
            };
        }
        let ctx = Ctx { profile, listers: &self.listers, nodes: &self.nodes, now, summary: self.summary };
        let mut state = CycleState::default();
        if let Err(s) = plugins::pre_filter(&mut state, &ctx, pod) {
            // findNodesThatFitPod: every node gets the PreFilter's status (for preemption),
            // and its message stands for them all.
            let msg = s.reasons.join(", ");
            let statuses = self.nodes.keys().map(|n| (n.clone(), s.clone())).collect();
            return unschedulable(&ctx, &state, pod, statuses, nominated, record, rng, msg);
        }
        let (feasible, statuses, processed) =
            find_feasible(&ctx, &state, pod, nominated, config, self.next_start_node_index);
        if let Some(p) = processed {
            self.next_start_node_index = (self.next_start_node_index + p) % n;
        }
        let ctx = Ctx { profile, listers: &self.listers, nodes: &self.nodes, now, summary: self.summary };
        record.evaluated_nodes = feasible.len() + statuses.len();
        record.feasible_nodes = feasible.len();
        if feasible.is_empty() {
            return unschedulable(&ctx, &state, pod, statuses, nominated, record, rng, String::new());
        }
        let full = n <= FULL_DETAIL_MAX_NODES;
        fill_filtered(&mut record, &statuses, full, profile);
        let node = if feasible.len() == 1 {
            feasible[0].name().to_string()
        } else {
            let rows = prioritize(&ctx, &mut state, pod, &feasible);
            let chosen = select_host(&rows, rng);
            record.score_plugins = profile
                .scores
                .iter()
                .filter(|(p, _)| rows.plugins.contains(p))
                .map(|(p, w)| ScorePlugin { name: p.name().into(), weight: *w })
                .collect();
            record_scores(&mut record, &rows, &feasible, chosen, full);
            feasible[chosen].name().to_string()
        };
        record.outcome = Outcome::Scheduled { node: node.clone() };
        // VolumeBinding's Reserve: what binding the claims on the chosen node takes.
        let volumes = state.volume_binding.as_ref().filter(|s| !s.delayed.is_empty()).and_then(|s| {
            let info = ctx.nodes.get(&node)?;
            volume_binding::find_pod_volumes(s, &ctx, info).ok()
        });
        let decision = Decision::Fits { node, feasible: feasible.len() };
        ScheduleResult { decision, rejectors: BTreeSet::new(), preemption: None, record, volumes }
    }
}

/// findNodesThatFitPod: the nominated node first (evaluateNominatedNode), else the
/// filters over the nodes from the rotation point until enough are feasible. Returns the
/// feasible nodes, the rejected nodes' statuses, and how many nodes the rotation passed
/// (`None` when the nominated node was used).
fn find_feasible<'a>(
    ctx: &Ctx<'a>,
    state: &CycleState,
    pod: &PodInfo,
    nominated: &Nominated,
    config: &SchedulerConfig,
    start: usize,
) -> (Vec<&'a NodeInfo>, BTreeMap<String, Status>, Option<usize>) {
    let nom = &pod.pod.status.nominated_node_name;
    if !nom.is_empty() {
        if let Some(node) = ctx.nodes.get(nom) {
            if plugins::filter_with_nominated(state, ctx, pod, node, nominated).is_ok() {
                return (vec![node], BTreeMap::new(), None);
            }
        }
    }
    let n = ctx.nodes.len();
    let want = {
        let snapshot_len = n;
        if snapshot_len < MIN_FEASIBLE_NODES_TO_FIND {
            snapshot_len
        } else {
            let pct = match config.percentage_of_nodes_to_score {
                Some(p) if p > 0 => (p as usize).min(100),
                _ => (50usize.saturating_sub(n / 125)).max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND),
            };
            (n * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
        }
    };
    let infos: Vec<&'a NodeInfo> = ctx.nodes.values().collect();
    let mut feasible = Vec::with_capacity(want.min(n));
    let mut statuses = BTreeMap::new();
    let mut processed = 0;
    for i in 0..n {
        let info = infos[(start + i) % n];
        processed += 1;
        match plugins::filter_with_nominated(state, ctx, pod, info, nominated) {
            Ok(()) => {
                feasible.push(info);
                if feasible.len() >= want {
                    break;
                }
            }
            Err(s) => {
                statuses.insert(info.name().to_string(), s);
            }
        }
    }
    (feasible, statuses, Some(processed))
}

/// The failure path: PostFilter (DefaultPreemption), the FitError and the record.
#[allow(clippy::too_many_arguments)]
fn unschedulable(
    ctx: &Ctx,
    state: &CycleState,
    pod: &PodInfo,
    statuses: BTreeMap<String, Status>,
    nominated: &Nominated,
    mut record: SchedulingAttempt,
    rng: &mut ChaCha8Rng,
    pre_filter_msg: String,
) -> ScheduleResult {
    let rejectors: BTreeSet<PluginId> =
        statuses.values().filter_map(|s| PluginId::from_name(s.plugin)).collect();
    let preemption = ctx
        .profile
        .preemption
        .as_ref()
        .map(|args| default_preemption::post_filter(ctx, args, state, pod, &statuses, nominated, rng));
    let post_filter_msg = match &preemption {
        Some(p) if !p.message.is_empty() => format!("preemption: {}", p.message),
        _ => String::new(),
    };
    let fit =
        FitError { num_all_nodes: ctx.nodes.len(), node_status: statuses, post_filter_msg, pre_filter_msg };
    fill_filtered(&mut record, &fit.node_status, true, ctx.profile);
    let nominated_node = preemption.as_ref().and_then(|p| p.nominated.clone());
    record.outcome = Outcome::Unschedulable { message: fit.to_string(), nominated_node };
    record.preemption = preemption.as_ref().map(preemption_record);
    ScheduleResult { decision: Decision::Unschedulable(fit), rejectors, preemption, record, volumes: None }
}

fn preemption_record(p: &PreemptionOutcome) -> PreemptionRecord {
    let victims = |c: &default_preemption::Candidate| {
        c.victims.iter().map(|v| format!("{} ({})", v.key, v.priority)).collect::<Vec<_>>()
    };
    PreemptionRecord {
        message: p.message.clone(),
        candidates: p
            .candidates
            .iter()
            .map(|c| CandidateRecord {
                node: c.node.clone(),
                victims: victims(c),
                pdb_violations: c.num_pdb_violations,
            })
            .collect(),
        rejected: p.statuses.iter().map(|(n, s)| verdict(n, s)).collect(),
        chosen: p.chosen.as_ref().map(|c| c.node.clone()),
    }
}

fn verdict(node: &str, s: &Status) -> FilterVerdict {
    FilterVerdict {
        node: node.to_string(),
        plugin: s.plugin.to_string(),
        code: s.code,
        reasons: s.reasons.clone(),
    }
}

/// The rejected nodes: each with its verdict, or (large clusters, successful attempts)
/// counted by plugin and reason.
fn fill_filtered(
    record: &mut SchedulingAttempt,
    statuses: &BTreeMap<String, Status>,
    full: bool,
    profile: &Profile,
) {
    if full {
        record.filter_plugins = profile.filters.iter().map(|p| p.name().to_string()).collect();
        record.filtered = statuses.iter().map(|(n, s)| verdict(n, s)).collect();
        return;
    }
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for s in statuses.values() {
        for r in &s.reasons {
            *counts.entry((s.plugin, r.as_str())).or_default() += 1;
        }
    }
    record.filter_summary = counts
        .into_iter()
        .map(|((p, r), n)| ReasonCount { plugin: p.into(), reason: r.into(), nodes: n })
        .collect();
}

/// Scores of the feasible nodes: per plugin raw and normalized (None: skipped), totals.
struct ScoreTable {
    plugins: Vec<PluginId>,
    raw: Vec<Vec<i64>>,
    normalized: Vec<Vec<i64>>,
    totals: Vec<i64>,
}

/// prioritizeNodes: PreScore, Score, NormalizeScore, weights.
fn prioritize(ctx: &Ctx, state: &mut CycleState, pod: &PodInfo, feasible: &[&NodeInfo]) -> ScoreTable {
    plugins::pre_score(state, ctx, pod, feasible);
    let mut table = ScoreTable {
        plugins: Vec::new(),
        raw: Vec::new(),
        normalized: Vec::new(),
        totals: vec![0; feasible.len()],
    };
    for (p, weight) in &ctx.profile.scores {
        let mut raw = Vec::with_capacity(feasible.len());
        for n in feasible {
            match plugins::score(*p, state, ctx, pod, n) {
                Some(s) => raw.push(s),
                None => break,
            }
        }
        if raw.len() != feasible.len() {
            continue; // Skip: the plugin does not score this pod.
        }
        let mut normalized = raw.clone();
        plugins::normalize(*p, state, feasible, &mut normalized);
        for (t, s) in table.totals.iter_mut().zip(&normalized) {
            *t += s * weight;
        }
        table.plugins.push(*p);
        table.raw.push(raw);
        table.normalized.push(normalized);
    }
    table
}

/// selectHost: the highest total, ties broken by reservoir sampling with the seeded RNG.
fn select_host(t: &ScoreTable, rng: &mut ChaCha8Rng) -> usize {
    let mut best = 0;
    let mut ties = 0u32;
    for i in 0..t.totals.len() {
        if t.totals[i] > t.totals[best] {
            best = i;
            ties = 1;
        } else if t.totals[i] == t.totals[best] {
            ties += 1;
            if i != best && rng.gen_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    best
}

fn record_scores(
    record: &mut SchedulingAttempt,
    t: &ScoreTable,
    feasible: &[&NodeInfo],
    chosen: usize,
    full: bool,
) {
    let mut order: Vec<usize> = (0..feasible.len()).collect();
    // Best first; the chosen node leads its ties. Node names are unique, so the order is
    // total and sorting only the rows kept gives the same rows.
    let rank = |i: &usize| (std::cmp::Reverse(t.totals[*i]), *i != chosen, feasible[*i].name());
    let keep = if full { order.len() } else { TOP_SCORE_ROWS.min(order.len()) };
    record.scores_omitted = order.len() - keep;
    if keep < order.len() {
        order.select_nth_unstable_by_key(keep, rank);
        order.truncate(keep);
    }
    order.sort_by_key(rank);
    record.scores = order[..keep]
        .iter()
        .map(|&i| NodeScores {
            node: feasible[i].name().to_string(),
            raw: t.raw.iter().map(|r| Some(r[i])).collect(),
            normalized: t.normalized.iter().map(|r| Some(r[i])).collect(),
            total: t.totals[i],
        })
        .collect();
}

/// A pod counted on a node (assumed or bound).
#[derive(Debug)]
struct Placed {
    node: String,
    info: Arc<PodInfo>,
    /// The API server has shown it bound (an assumed pod is not yet).
    confirmed: bool,
}

/// A binding cycle in VolumeBinding's PreBind (binder.go BindPodVolumes): its API writes
/// in flight, then a poll every second until the claims are bound or the timeout.
#[derive(Debug)]
struct VolumeWait {
    info: Arc<PodInfo>,
    node: String,
    volumes: PodVolumes,
    /// The update request in flight, and those still to send: bindAPIUpdate writes the
    /// volumes, then the claims, one after another, and stops at the first error.
    writes: BTreeSet<u64>,
    to_write: std::collections::VecDeque<ApiRequest>,
    /// The volumes and claims as the API server returned them: (name, resourceVersion).
    written_pvs: Vec<(String, u64)>,
    written_pvcs: Vec<((String, String), u64)>,
    /// The next checkBindings, once every write is answered.
    next_poll: Option<SimTime>,
    deadline: SimTime,
    timeout: Duration,
}

/// The kube-scheduler component.
pub struct Scheduler {
    config: SchedulerConfig,
    snapshot: Snapshot,
    queue: SchedulingQueue,
    /// Every pending pod one of our profiles schedules.
    pending: BTreeMap<String, Arc<PodInfo>>,
    placed: BTreeMap<String, Placed>,
    /// Pending pods' nominated nodes (status.nominatedNodeName, or ours before it is written).
    nominated: BTreeMap<String, String>,
    binding: BTreeMap<u64, String>,
    recorder: EventRecorder,
    next_tag: u64,
    records: Vec<Record>,
    /// Shared group keys of the pods' labels (framework::GroupInterner).
    groups: framework::GroupInterner,
    /// Binding cycles waiting for their volumes, by pod key.
    volume_waits: BTreeMap<String, VolumeWait>,
    /// PreBind's writes in flight: tag -> pod key.
    volume_writes: BTreeMap<u64, String>,
    /// Requests made while handling a response, sent at the next tick.
    deferred: Vec<Tagged>,
}

impl Scheduler {
    pub fn new(mut config: SchedulerConfig) -> Self {
        if config.profiles.is_empty() {
            config.profiles.push(Profile::default());
        }
        if config.planted_ignore_taints {
            for p in &mut config.profiles {
                p.filters.retain(|f| *f != PluginId::TaintToleration);
            }
        }
        let queue = SchedulingQueue::new(
            config.pod_initial_backoff,
            config.pod_max_backoff,
            config.pod_max_in_unschedulable_pods_duration,
        );
        Scheduler {
            config,
            snapshot: Snapshot::default(),
            queue,
            pending: BTreeMap::new(),
            placed: BTreeMap::new(),
            nominated: BTreeMap::new(),
            binding: BTreeMap::new(),
            recorder: EventRecorder::new(DEFAULT_SCHEDULER, ""),
            next_tag: 0,
            records: Vec::new(),
            groups: framework::GroupInterner::default(),
            volume_waits: BTreeMap::new(),
            volume_writes: BTreeMap::new(),
            deferred: Vec::new(),
        }
    }

    fn tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    fn push(&mut self, out: &mut Output, request: ApiRequest) -> u64 {
        let tag = self.tag();
        out.requests.push(Tagged { tag, request });
        tag
    }

    fn profile_index(&self, scheduler_name: &str) -> Option<usize> {
        let name = if scheduler_name.is_empty() { DEFAULT_SCHEDULER } else { scheduler_name };
        self.config.profiles.iter().position(|p| p.scheduler_name == name)
    }

    fn unplace(&mut self, key: &str) -> Option<Placed> {
        let p = self.placed.remove(key)?;
        self.snapshot.remove_pod(&p.node, &p.info);
        Some(p)
    }

    fn place(&mut self, key: String, node: String, info: Arc<PodInfo>, confirmed: bool) {
        self.unplace(&key);
        self.snapshot.add_pod(&node, &info);
        self.placed.insert(key, Placed { node, info, confirmed });
    }

    /// A cluster event: parked pods move when a plugin that rejected them says it may help.
    fn fire(&mut self, ev: ClusterEvent, now: SimTime) {
        if self.queue.unschedulable_len() == 0 {
            return;
        }
        let Scheduler { queue, config, snapshot, .. } = self;
        queue.on_event(now, |parked| {
            let ctx = Ctx {
                profile: &config.profiles[parked.profile],
                listers: &snapshot.listers,
                nodes: &snapshot.nodes,
                now,
                summary: snapshot.summary,
            };
            parked.plugins.iter().any(|p| plugins::queueing_hint(*p, &ctx, parked.info, &ev) == Hint::Queue)
        });
    }

    fn on_pod(&mut self, ev: &WatchEvent, now: SimTime) {
        let Some(pod) = ev.object.as_pod() else { return };
        let key = framework::pod_name(pod);
        let terminal = matches!(pod.phase(), PodPhase::Succeeded | PodPhase::Failed);
        if ev.type_ == WatchEventType::Deleted || terminal {
            self.pending.remove(&key);
            self.queue.remove(&key);
            self.nominated.remove(&key);
            self.cancel_volume_wait(&key);
            if let Some(gone) = self.unplace(&key) {
                self.recorder.forget(&ev.object.key());
                self.fire(ClusterEvent::AssignedPodDelete(gone.info), now);
            }
            return;
        }
        if !pod.spec.node_name.is_empty() {
            self.on_bound_pod(key, pod, now);
            return;
        }
        let Some(profile) = self.profile_index(&pod.spec.scheduler_name) else { return };
        if pod.metadata.deletion_timestamp.is_some() {
            self.pending.remove(&key);
            self.queue.remove(&key);
            self.nominated.remove(&key);
            return;
        }
        if pod.status.nominated_node_name.is_empty() {
            self.nominated.remove(&key);
        } else {
            self.nominated.insert(key.clone(), pod.status.nominated_node_name.clone());
        }
        let info = Arc::new(PodInfo::new(Arc::new(pod.clone())).interned(&mut self.groups));
        let changed = self
            .pending
            .get(&key)
            .is_some_and(|old| old.pod.spec != pod.spec || old.pod.metadata.labels != pod.metadata.labels);
        self.pending.insert(key.clone(), info.clone());
        if self.queue.contains(&key) {
            self.queue.update(info, changed, now);
        } else if !self.placed.contains_key(&key) {
            self.queue.add(info, profile, now);
        }
    }

    fn on_bound_pod(&mut self, key: String, pod: &Pod, now: SimTime) {
        // Bound by someone else while its volumes were awaited: the binding cycle is moot.
        if self.volume_waits.get(&key).is_some_and(|w| w.node != pod.spec.node_name) {
            self.cancel_volume_wait(&key);
        }
        self.pending.remove(&key);
        self.queue.remove(&key);
        self.nominated.remove(&key);
        let terminating = pod.metadata.deletion_timestamp.is_some();
        if let Some(p) = self.placed.get_mut(&key) {
            if p.node == pod.spec.node_name {
                if !p.confirmed {
                    p.confirmed = true;
                    let info = p.info.clone();
                    self.fire(ClusterEvent::AssignedPodAdd(info), now);
                    return;
                }
                if p.info.pod.metadata.labels == pod.metadata.labels && p.info.terminating == terminating {
                    return; // requests are immutable; nothing the plugins count changed
                }
                let old = p.info.clone();
                let new = Arc::new(PodInfo::new(Arc::new(pod.clone())).interned(&mut self.groups));
                self.place(key, pod.spec.node_name.clone(), new.clone(), true);
                self.fire(ClusterEvent::AssignedPodUpdate { old, new }, now);
                return;
            }
        }
        let info = Arc::new(PodInfo::new(Arc::new(pod.clone())).interned(&mut self.groups));
        self.place(key, pod.spec.node_name.clone(), info.clone(), true);
        self.fire(ClusterEvent::AssignedPodAdd(info), now);
    }

    fn on_node(&mut self, ev: &WatchEvent, now: SimTime) {
        let Some(node) = ev.object.as_node() else { return };
        let name = node.metadata.name.clone();
        if ev.type_ == WatchEventType::Deleted {
            if let Some(old) = self.snapshot.remove_node(&name) {
                self.fire(ClusterEvent::NodeDelete(old.node), now);
            }
            return;
        }
        let node = Arc::new(node.clone());
        match self.snapshot.update_node(node.clone()) {
            Some(old) => {
                let change = NodeChange::between(&old, &node);
                if change.any() {
                    self.fire(ClusterEvent::NodeUpdate { old, new: node, change }, now);
                }
            }
            None => {
                let mut info = NodeInfo::new(node.clone());
                for p in self.placed.values().filter(|p| p.node == name) {
                    info.add_pod(&p.info);
                }
                self.snapshot.insert_node(info);
                self.fire(ClusterEvent::NodeAdd(node), now);
            }
        }
    }

    /// Namespaces, ReplicaSets, StatefulSets, PodDisruptionBudgets and the storage
    /// objects for the listers; claims, volumes and classes added or updated are cluster
    /// events for VolumeBinding.
    fn on_lister_object(&mut self, ev: &WatchEvent, now: SimTime) {
        let gone = ev.type_ == WatchEventType::Deleted;
        if let Some(cev) = self.on_storage_object(ev, gone) {
            if let Some(cev) = cev {
                self.fire(cev, now);
            }
            return;
        }
        let l = &mut self.snapshot.listers;
        let m = ev.object.meta();
        match &*ev.object {
            Object::Namespace(n) => {
                if gone {
                    l.namespace_labels.remove(&n.metadata.name);
                } else {
                    l.namespace_labels.insert(n.metadata.name.clone(), n.metadata.labels.clone());
                }
            }
            Object::ReplicaSet(_) | Object::StatefulSet(_) => {
                let key = (ev.object.kind().as_str().to_string(), m.namespace.clone(), m.name.clone());
                let sel = match &*ev.object {
                    Object::ReplicaSet(r) => Some(r.spec.selector.clone()),
                    Object::StatefulSet(s) => Some(s.spec.selector.clone()),
                    _ => None,
                };
                match sel.filter(|_| !gone) {
                    Some(s) => l.owner_selectors.insert(key, s),
                    None => l.owner_selectors.remove(&key),
                };
            }
            Object::PodDisruptionBudget(p) => {
                let key = (m.namespace.clone(), m.name.clone());
                if gone {
                    l.pdbs.remove(&key);
                } else {
                    l.pdbs.insert(key, Arc::new(p.clone()));
                }
            }
            _ => {}
        }
    }

    /// Nominated pods by node, from the pending pods' nominations.
    fn nominated_by_node(&self) -> Nominated {
        let mut out = Nominated::new();
        for (key, node) in &self.nominated {
            if let Some(info) = self.pending.get(key) {
                out.entry(node.clone()).or_default().push(info.clone());
            }
        }
        out
    }

    fn attempt(
        &mut self,
        key: String,
        info: Arc<PodInfo>,
        profile: usize,
        now: SimTime,
        rng: &mut ChaCha8Rng,
        out: &mut Output,
    ) {
        if !self.pending.contains_key(&key) {
            self.queue.remove(&key);
            return;
        }
        let nominated = self.nominated_by_node();
        let attempts = self.queue.attempts(&key);
        let profile_ref = &self.config.profiles[profile];
        let result = self.snapshot.schedule(&info, profile_ref, &self.config, &nominated, attempts, now, rng);
        self.records.push(Record::SchedulingAttempt(Arc::new(result.record)));
        let volumes = result.volumes;
        match result.decision {
            Decision::Fits { node, .. } => self.bind(key, info, node, volumes, profile, now, out),
            Decision::Unschedulable(fit) => {
                let msg = fit.to_string();
                let mut nominate = None;
                if let Some(p) = &result.preemption {
                    if let Some(chosen) = &p.chosen {
                        self.preempt(&info, chosen, now, out);
                        nominate = Some(Some(chosen.node.clone()));
                    } else if p.clear_nomination {
                        nominate = Some(None);
                    }
                }
                self.queue.failed(&key, result.rejectors, now);
                self.report_failure(&info, REASON_UNSCHEDULABLE, msg, nominate, now, out);
            }
            Decision::NoNodes => {
                self.queue.failed(&key, BTreeSet::new(), now);
                self.report_failure(
                    &info,
                    REASON_SCHEDULER_ERROR,
                    ERR_NO_NODES_AVAILABLE.into(),
                    None,
                    now,
                    out,
                );
            }
        }
    }

    /// Assume, then the binding cycle: VolumeBinding's PreBind when claims wait for
    /// binding on the node, then bind.
    #[allow(clippy::too_many_arguments)]
    fn bind(
        &mut self,
        key: String,
        info: Arc<PodInfo>,
        node: String,
        volumes: Option<PodVolumes>,
        profile: usize,
        now: SimTime,
        out: &mut Output,
    ) {
        self.nominated.remove(&key);
        self.place(key.clone(), node.clone(), info.clone(), false);
        match volumes {
            Some(v) if !v.is_empty() => {
                let timeout = self.config.profiles[profile].bind_timeout;
                self.pre_bind_volumes(key, info, node, v, timeout, out);
            }
            _ => self.bind_pod(key, &info, &node, now, out),
        }
    }

    /// DefaultBinder's Bind, with the `Scheduled` event.
    fn bind_pod(&mut self, key: String, info: &PodInfo, node: &str, now: SimTime, out: &mut Output) {
        let pod = info.pod.clone();
        let tag = self.push(
            out,
            ApiRequest::Bind {
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                node: node.to_string(),
            },
        );
        self.binding.insert(tag, key);
        let msg = format!("Successfully assigned {}/{} to {node}", pod.metadata.namespace, pod.metadata.name);
        let ev = self.recorder.record(&Object::Pod((*pod).clone()), EVENT_NORMAL, "Scheduled", &msg, now);
        self.push(out, ev);
    }

    /// The storage objects' listers and the binder's assume caches (a newer version from
    /// the informer replaces an assumed one). `None` for other kinds; `Some(event)` with
    /// the cluster event VolumeBinding registers (additions and updates, not deletions).
    fn on_storage_object(&mut self, ev: &WatchEvent, gone: bool) -> Option<Option<ClusterEvent>> {
        let l = &mut self.snapshot.listers;
        let m = ev.object.meta();
        Some(Some(match &*ev.object {
            Object::PersistentVolumeClaim(c) => {
                let key = (m.namespace.clone(), m.name.clone());
                l.assumed_pvcs.remove(&key);
                if gone {
                    l.pvcs.remove(&key);
                    return Some(None);
                }
                let new = Arc::new(c.clone());
                let old = l.pvcs.insert(key, new.clone());
                ClusterEvent::PvcChange { old, new }
            }
            Object::PersistentVolume(v) => {
                l.assumed_pvs.remove(&m.name);
                if gone {
                    l.pvs.remove(&m.name);
                    return Some(None);
                }
                let new = Arc::new(v.clone());
                let old = l.pvs.insert(m.name.clone(), new.clone());
                ClusterEvent::PvChange { old, new }
            }
            Object::StorageClass(c) => {
                if gone {
                    l.storage_classes.remove(&m.name);
                    return Some(None);
                }
                let new = Arc::new(c.clone());
                let old = l.storage_classes.insert(m.name.clone(), new.clone());
                ClusterEvent::StorageClassChange { old, new }
            }
            _ => return None,
        }))
    }

    /// VolumeBinding's Reserve (AssumePodVolumes: the volumes pre-bound to their claims
    /// and the claims annotated with the node, in the assume caches) and PreBind's
    /// bindAPIUpdate (the same objects written to the API server).
    fn pre_bind_volumes(
        &mut self,
        key: String,
        info: Arc<PodInfo>,
        node: String,
        volumes: PodVolumes,
        timeout: Duration,
        out: &mut Output,
    ) {
        let mut to_write = std::collections::VecDeque::new();
        for (pv, pvc) in &volumes.static_bindings {
            // GetBindVolumeToClaim: a volume not yet pre-bound to the claim gets the
            // controller's annotation.
            let mut new = (**pv).clone();
            if !crate::api::storage::volume_binding::is_volume_bound_to_claim(pv, pvc) {
                new.metadata.annotations.insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
            }
            new.spec.claim_ref = Some(crate::controllers::persistentvolume::claim_ref(pvc));
            self.snapshot.listers.assumed_pvs.insert(new.metadata.name.clone(), Arc::new(new.clone()));
            to_write.push_back(ApiRequest::Update(Object::PersistentVolume(new)));
        }
        for pvc in &volumes.dynamic_provisions {
            let mut new = (**pvc).clone();
            new.metadata.annotations.insert(ANN_SELECTED_NODE.into(), node.clone());
            let k = (new.metadata.namespace.clone(), new.metadata.name.clone());
            self.snapshot.listers.assumed_pvcs.insert(k, Arc::new(new.clone()));
            to_write.push_back(ApiRequest::Update(Object::PersistentVolumeClaim(new)));
        }
        let first = to_write.pop_front().expect("PreBind runs only with something to write");
        let tag = self.push(out, first);
        self.volume_writes.insert(tag, key.clone());
        let wait = VolumeWait {
            info,
            node,
            volumes,
            writes: [tag].into(),
            to_write,
            written_pvs: Vec::new(),
            written_pvcs: Vec::new(),
            next_poll: None,
            deadline: SimTime::ZERO,
            timeout,
        };
        self.volume_waits.insert(key, wait);
    }

    /// A PreBind write answered: the object kept for checkBindings, and once all are in,
    /// the poll starts (`wait.PollUntilContextTimeout(ctx, time.Second, bindTimeout, false,
    /// ...)`: the first check one period later).
    fn on_volume_write(&mut self, key: String, tag: u64, result: &ApiResult, now: SimTime, out: &mut Output) {
        let Some(w) = self.volume_waits.get_mut(&key) else { return };
        w.writes.remove(&tag);
        match result {
            Err(e) => return self.fail_pre_bind(&key, e.to_string(), now, out),
            Ok(obj) => {
                let m = obj.meta();
                match &**obj {
                    Object::PersistentVolume(_) => w.written_pvs.push((m.name.clone(), m.resource_version)),
                    _ => w.written_pvcs.push(((m.namespace.clone(), m.name.clone()), m.resource_version)),
                }
            }
        }
        if let Some(next) = w.to_write.pop_front() {
            let tag = self.push(out, next);
            self.volume_writes.insert(tag, key.clone());
            if let Some(w) = self.volume_waits.get_mut(&key) {
                w.writes.insert(tag);
            }
            return;
        }
        if w.writes.is_empty() {
            if w.timeout.is_zero() {
                // PollUntilContextTimeout with a context already past its deadline.
                return self.fail_pre_bind(
                    &key,
                    "binding volumes: context deadline exceeded".into(),
                    now,
                    out,
                );
            }
            w.next_poll = Some(now + volume_binding::BIND_POLL_PERIOD);
            w.deadline = now + w.timeout;
        }
    }

    /// binder.go checkBindings: Ok(true) once every claim is fully bound; an error when
    /// the binding cannot complete on this node.
    fn check_bindings(&self, w: &VolumeWait) -> Result<bool, String> {
        let l = &self.snapshot.listers;
        let Some(node) = self.snapshot.nodes.get(&w.node) else {
            return Err(format!("failed to get node {:?}: node {:?} not found", w.node, w.node));
        };
        let affinity = |pv: &crate::api::storage::PersistentVolume| {
            if pv.node_affinity_allows(node.name(), node.labels()) {
                Ok(())
            } else {
                Err(format!(
                    "pv {:?} node affinity doesn't match node {:?}: no matching NodeSelectorTerms",
                    pv.metadata.name, w.node
                ))
            }
        };
        for (pv_name, rv) in &w.written_pvs {
            let Some((_, claim)) =
                w.volumes.static_bindings.iter().find(|(v, _)| v.metadata.name == *pv_name)
            else {
                continue;
            };
            let Some(pv) = l.pvs.get(pv_name) else {
                // The assume cache's errNotFound.
                return Err(format!(
                    "failed to check binding: could not find v1.PersistentVolume {pv_name:?}"
                ));
            };
            let ck = (claim.metadata.namespace.clone(), claim.metadata.name.clone());
            let Some(pvc) = l.pvcs.get(&ck) else {
                return Err(format!(
                    "failed to check binding: could not find v1.PersistentVolumeClaim \"{}/{}\"",
                    ck.0, ck.1
                ));
            };
            // Our write has not reached the informer yet.
            if pv.metadata.resource_version < *rv {
                return Ok(false);
            }
            affinity(pv)?;
            if pv.spec.claim_ref.as_ref().is_none_or(|r| r.uid.is_empty()) {
                return Err(format!("ClaimRef got reset for pv {pv_name:?}"));
            }
            if !volume_binding::is_fully_bound(pvc) {
                return Ok(false);
            }
        }
        for (ck, rv) in &w.written_pvcs {
            let Some(pvc) = l.pvcs.get(ck) else {
                return Err(format!(
                    "failed to check provisioning pvc: could not find v1.PersistentVolumeClaim \"{}/{}\"",
                    ck.0, ck.1
                ));
            };
            if pvc.metadata.resource_version < *rv {
                return Ok(false);
            }
            if pvc.metadata.annotations.is_empty() {
                return Err(format!("selectedNode annotation reset for PVC {:?}", ck.1));
            }
            // The provisioner removes the annotation (or another node's) to ask for a new
            // decision.
            if pvc.metadata.annotations.get(ANN_SELECTED_NODE) != Some(&w.node) {
                return Err(format!("provisioning failed for PVC {:?}", ck.1));
            }
            if !pvc.spec.volume_name.is_empty() {
                // A volume the informer has not shown yet is waited for.
                let Some(pv) = l.pvs.get(&pvc.spec.volume_name) else { return Ok(false) };
                affinity(pv)?;
            }
            if !volume_binding::is_fully_bound(pvc) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The polls due: bind the pods whose claims are bound, fail those past the timeout
    /// or whose binding cannot complete.
    fn poll_volume_waits(&mut self, now: SimTime, out: &mut Output) {
        let due: Vec<String> = self
            .volume_waits
            .iter()
            .filter(|(_, w)| w.next_poll.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let w = &self.volume_waits[&key];
            match self.check_bindings(w) {
                Ok(true) => {
                    let w = self.volume_waits.remove(&key).expect("due wait exists");
                    self.bind_pod(key, &w.info, &w.node, now, out);
                }
                Ok(false) if now >= w.deadline => {
                    self.fail_pre_bind(&key, "binding volumes: context deadline exceeded".into(), now, out)
                }
                Ok(false) => {
                    let w = self.volume_waits.get_mut(&key).expect("due wait exists");
                    w.next_poll = Some(now + volume_binding::BIND_POLL_PERIOD);
                }
                Err(e) => self.fail_pre_bind(&key, format!("binding volumes: {e}"), now, out),
            }
        }
    }

    /// Unreserve (RevertAssumedPodVolumes): the assumed volumes and claims go back to
    /// what the informers show.
    fn cancel_volume_wait(&mut self, key: &str) -> Option<VolumeWait> {
        let w = self.volume_waits.remove(key)?;
        self.volume_writes.retain(|_, k| k != key);
        let l = &mut self.snapshot.listers;
        for (pv, _) in &w.volumes.static_bindings {
            l.assumed_pvs.remove(&pv.metadata.name);
        }
        for pvc in &w.volumes.dynamic_provisions {
            l.assumed_pvcs.remove(&(pvc.metadata.namespace.clone(), pvc.metadata.name.clone()));
        }
        Some(w)
    }

    /// handleBindingCycleError for a PreBind failure: Unreserve, forget the assumed pod,
    /// and the failure handler (FailedScheduling with the error, reason SchedulerError,
    /// the pod back through backoff).
    fn fail_pre_bind(&mut self, key: &str, err: String, now: SimTime, out: &mut Output) {
        let Some(w) = self.cancel_volume_wait(key) else { return };
        if let Some(gone) = self.unplace(key) {
            self.fire(ClusterEvent::AssignedPodDelete(gone.info), now);
        }
        if !self.pending.contains_key(key) {
            return;
        }
        self.queue.requeue_backoff(key, now);
        // framework.go RunPreBindPlugins.
        let msg = format!("running PreBind plugin {:?}: {err}", volume_binding::NAME);
        // handleBindingCycleError clears the nominated node.
        self.report_failure(&w.info, REASON_SCHEDULER_ERROR, msg, Some(None), now, out);
    }

    /// prepareCandidate: each victim gets the DisruptionTarget condition and is deleted,
    /// with a `Preempted` event; lower-priority pods nominated to the node lose their
    /// nomination.
    fn preempt(
        &mut self,
        preemptor: &PodInfo,
        chosen: &default_preemption::Candidate,
        now: SimTime,
        out: &mut Output,
    ) {
        let scheduler = if preemptor.pod.spec.scheduler_name.is_empty() {
            DEFAULT_SCHEDULER
        } else {
            preemptor.pod.spec.scheduler_name.as_str()
        };
        for v in &chosen.victims {
            let key = crate::api::ObjectKey::new(Kind::Pod, v.namespace(), v.pod.metadata.name.clone());
            let cond = PodCondition {
                type_: condition::DISRUPTION_TARGET.into(),
                status: ConditionStatus::True,
                last_transition_time: Some(now),
                reason: default_preemption::REASON_PREEMPTION_BY_SCHEDULER.into(),
                message: default_preemption::disruption_message(scheduler),
                ..Default::default()
            };
            self.push(
                out,
                ApiRequest::Patch {
                    key: key.clone(),
                    patch: Patch::PodStatus { conditions: vec![cond], phase: None },
                },
            );
            self.push(out, ApiRequest::Delete { key, grace_period_seconds: None, precondition_uid: None });
            let msg = default_preemption::preempted_event_message(&preemptor.pod.metadata.uid, &chosen.node);
            let ev =
                self.recorder.record(&Object::Pod((*v.pod).clone()), EVENT_NORMAL, "Preempted", &msg, now);
            self.push(out, ev);
        }
        let lower: Vec<String> = self
            .nominated
            .iter()
            .filter(|(k, n)| {
                **n == chosen.node && self.pending.get(*k).is_some_and(|p| p.priority < preemptor.priority)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in lower {
            self.nominated.remove(&k);
            if let Some(p) = self.pending.get(&k) {
                let mut pod = (*p.pod).clone();
                pod.status.nominated_node_name.clear();
                pod.metadata.resource_version = 0;
                self.push(out, ApiRequest::UpdateStatus(Object::Pod(pod)));
            }
        }
    }

    /// handleSchedulingFailure: the FailedScheduling event, PodScheduled=False and the
    /// nominated node (`nominate`: Some(Some) set, Some(None) clear, None unchanged).
    fn report_failure(
        &mut self,
        info: &PodInfo,
        reason: &str,
        msg: String,
        nominate: Option<Option<String>>,
        now: SimTime,
        out: &mut Output,
    ) {
        let pod = &info.pod;
        let obj = Object::Pod((**pod).clone());
        let ev = self.recorder.record(&obj, EVENT_WARNING, "FailedScheduling", &msg, now);
        self.push(out, ev);
        let nominated = match &nominate {
            Some(n) => n.clone().unwrap_or_default(),
            None => pod.status.nominated_node_name.clone(),
        };
        match &nominate {
            Some(Some(n)) => {
                self.nominated.insert(info.key.clone(), n.clone());
            }
            Some(None) => {
                self.nominated.remove(&info.key);
            }
            None => {}
        }
        let current = pod.condition(condition::POD_SCHEDULED);
        let same = current
            .is_some_and(|c| c.status == ConditionStatus::False && c.message == msg && c.reason == reason)
            && pod.status.nominated_node_name == nominated;
        if same {
            return;
        }
        let Object::Pod(mut p) = obj else { return };
        p.set_condition(PodCondition {
            type_: condition::POD_SCHEDULED.into(),
            status: ConditionStatus::False,
            last_transition_time: Some(now),
            reason: reason.into(),
            message: msg,
            ..Default::default()
        });
        p.status.nominated_node_name = nominated;
        p.metadata.resource_version = 0;
        self.push(out, ApiRequest::UpdateStatus(Object::Pod(p)));
    }
}

/// The scheduler's clients (createClients): its own, and one for events.
pub const SCHEDULER_CLIENT: &str = "scheduler";
pub const EVENT_CLIENT: &str = "events";

impl Component for Scheduler {
    fn name(&self) -> &str {
        DEFAULT_SCHEDULER
    }

    /// cmd/kube-scheduler/app/options createClients: a "scheduler" client, and an event
    /// client of its own (the same QPS and burst, another bucket).
    fn client_of(&self, _tag: u64, request: &ApiRequest) -> &'static str {
        match request {
            ApiRequest::Create(crate::api::Object::Event(_))
            | ApiRequest::Update(crate::api::Object::Event(_)) => EVENT_CLIENT,
            _ => SCHEDULER_CLIENT,
        }
    }

    fn watches(&self) -> Vec<WatchSpec> {
        // Listers first, so that a relist knows namespaces and owners before pods.
        [
            Kind::Namespace,
            Kind::ReplicaSet,
            Kind::StatefulSet,
            Kind::PodDisruptionBudget,
            Kind::StorageClass,
            Kind::PersistentVolume,
            Kind::PersistentVolumeClaim,
            Kind::Node,
            Kind::Pod,
        ]
        .into_iter()
        .map(WatchSpec::kind)
        .collect()
    }

    fn on_event(&mut self, ev: &WatchEvent, now: SimTime) {
        match ev.object.kind() {
            Kind::Pod => self.on_pod(ev, now),
            Kind::Node => self.on_node(ev, now),
            _ => self.on_lister_object(ev, now),
        }
    }

    fn on_response(&mut self, tag: u64, result: &ApiResult, now: SimTime) {
        if let Some(key) = self.volume_writes.remove(&tag) {
            let mut out = Output::default();
            self.on_volume_write(key, tag, result, now, &mut out);
            self.deferred.extend(out.requests);
            return;
        }
        if let Some(key) = self.binding.remove(&tag) {
            if result.is_err() {
                // Forget the assumption; try again after backoff.
                if self.placed.get(&key).is_some_and(|p| !p.confirmed) {
                    if let Some(gone) = self.unplace(&key) {
                        self.fire(ClusterEvent::AssignedPodDelete(gone.info), now);
                    }
                }
                if self.pending.contains_key(&key) {
                    self.queue.requeue_backoff(&key, now);
                }
            }
        }
    }

    fn tick(&mut self, now: SimTime, rng: &mut ChaCha8Rng) -> Output {
        let mut out = Output::default();
        out.requests.append(&mut self.deferred);
        self.poll_volume_waits(now, &mut out);
        if let Some(t) = self.volume_waits.values().filter_map(|w| w.next_poll).min() {
            out.wake_no_later_than(t);
        }
        self.queue.flush(now);
        while let Some((key, info, profile)) = self.queue.pop() {
            self.attempt(key, info, profile, now, rng, &mut out);
        }
        if let Some(t) = self.queue.next_wake() {
            out.wake_no_later_than(t);
        }
        out.records = std::mem::take(&mut self.records);
        out
    }
}

#[cfg(test)]
mod tests;
