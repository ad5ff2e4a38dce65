//! SLO metrics of a run, as Kubernetes' scalability SLIs define them, computed from trace
//! records — live, as a trace observer during `kubesim run`, or from a trace file
//! (`kubesim report`). The same [`Collector`] keeps the time series the report charts.
//!
//! Definitions (each checked against its upstream source):
//! - Pod startup latency: sig-scalability/slos/pod_startup_latency.md — "Startup latency
//!   of schedulable stateless pods, excluding time to pull images and run init containers,
//!   measured from pod creation timestamp to when all its containers are reported as
//!   started and observed via watch"; SLO p99 <= 5 s. Computed as the kubelet computes
//!   `kubelet_pod_start_sli_duration_seconds` (pkg/kubelet/util/pod_startup_latency_tracker.go):
//!   (watch-observed all-containers-running − creationTimestamp) − (last image pull finished
//!   − first image pull started). "Observed via watch" is the committed write every watch
//!   delivers. Stateless: no volume but secret, configMap, downwardAPI, emptyDir (and
//!   projected sources of those); schedulable: never nominated for a preemption.
//! - Scheduling throughput: clusterloader2's SchedulingThroughput measurement
//!   (perf-tests clusterloader2/pkg/measurement/common/scheduling_throughput.go): pods
//!   scheduled per 5 s interval divided by 5, perc50/90/99 (nearest rank) and max, over
//!   the intervals from the first to the last binding.
//! - Scheduling attempts: kube-scheduler's `scheduler_schedule_attempts_total` by result:
//!   `scheduled` (bindings) and `unschedulable` (FailedScheduling events, counted with
//!   their de-duplicated counts).
//! - API call latency: sig-scalability/slos/api_call_latency.md — latency "from the moment
//!   when apiserver gets the request to last byte of response sent", per (resource, verb)
//!   for mutating calls (POST, PUT, PATCH, DELETE; SLO p99 <= 1 s) and per (resource,
//!   scope) for non-streaming reads (GET of one object: scope=resource, SLO <= 1 s),
//!   "measured as 99th percentile over last 5 minutes": the worst 5-minute window's p99,
//!   over the requests from the scenario's start on (clusterloader2 measures from the
//!   start of its test, not the cluster's bootstrap; [`Collector::measured_from`]).
//! - etcd leader changes: etcd's `etcd_server_leader_changes_seen_total` (every leader a
//!   term elected, the first included).
//! - Evictions: the taint manager's TaintManagerEviction "Marking for deletion" events
//!   and the kubelet's node-pressure `Evicted` events.
//! - Pending time: from creationTimestamp to the binding (clusterloader2's
//!   create_to_schedule phase), and the pods still unscheduled at the end.

use std::collections::BTreeMap;

use kubesim_model::api::{Object, Pod, PodPhase};
use kubesim_sim::TraceRecord;
use serde::Serialize;

/// sig-scalability pod_startup_latency.md: 99th percentile per cluster-day <= 5s.
pub const POD_STARTUP_SLO_MS: u64 = 5_000;
/// sig-scalability api_call_latency.md: mutating calls, and reads of a single object
/// (scope=resource), 99th percentile <= 1s.
pub const API_CALL_SLO_MS: u64 = 1_000;
/// The SLIs' window: "99th percentile over last 5 minutes".
pub const SLI_WINDOW_MS: u64 = 300_000;
/// clusterloader2 SchedulingThroughput's defaultSchedulingThroughputInterval (5 s).
pub const THROUGHPUT_INTERVAL_MS: u64 = 5_000;

/// Where a pod stands, for the charts and the progress line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PodState {
    /// Pending and not bound to a node.
    Unscheduled,
    /// Pending on a node (pulling, creating).
    Starting,
    Running,
    Succeeded,
    Failed,
    /// Has a deletionTimestamp.
    Terminating,
}

impl PodState {
    pub const ALL: [PodState; 6] = [
        PodState::Unscheduled,
        PodState::Starting,
        PodState::Running,
        PodState::Succeeded,
        PodState::Failed,
        PodState::Terminating,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PodState::Unscheduled => "Pending (unscheduled)",
            PodState::Starting => "Pending (on a node)",
            PodState::Running => "Running",
            PodState::Succeeded => "Succeeded",
            PodState::Failed => "Failed",
            PodState::Terminating => "Terminating",
        }
    }

    pub fn of_pod(p: &Pod) -> PodState {
        if p.metadata.deletion_timestamp.is_some() {
            return PodState::Terminating;
        }
        match p.phase() {
            PodPhase::Pending if p.spec.node_name.is_empty() => PodState::Unscheduled,
            PodPhase::Pending => PodState::Starting,
            PodPhase::Running => PodState::Running,
            PodPhase::Succeeded => PodState::Succeeded,
            PodPhase::Failed => PodState::Failed,
            #[allow(unreachable_patterns)]
            _ => PodState::Starting,
        }
    }
}

/// One second of the run, as the charts show it (values at the end of the second).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    /// The second's end, in seconds since the start.
    pub t: u64,
    /// Pods by [`PodState`], in [`PodState::ALL`]'s order.
    pub pods: [u64; 6],
    /// Nodes whose Ready condition is True, False, Unknown (or not yet reported).
    pub nodes_ready: [u64; 3],
    /// Pods bound during the second.
    pub scheduled: u64,
}

/// A point on the time axis the report marks.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub t_ms: u64,
    pub what: String,
    pub detail: String,
}

/// One term of a leader, for the leadership timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    pub component: String,
    pub host: String,
    pub term: u64,
    pub from_ms: u64,
}

/// What the collector follows of one pod.
#[derive(Clone, Debug, Default)]
struct PodTrack {
    created_ms: u64,
    state: Option<PodState>,
    scheduled: bool,
    started: bool,
    stateless: bool,
    nominated: bool,
}

/// A pod's image pulls as its kubelet reported them (event timestamps, the kubelet's
/// clock), kept apart from [`PodTrack`]: an Event can reach the API server after the pod's
/// Running status (the kubelet's `--event-qps` 50 bucket queues a node's burst of events),
/// and the kubelet's own tracker would still have counted the pull.
#[derive(Clone, Debug, Default)]
struct Pulls {
    /// When each pull started (`Pulling`).
    started: Vec<u64>,
    /// When each pull finished (`Successfully pulled`).
    finished: Vec<u64>,
}

impl Pulls {
    /// The time spent pulling before `started_ms`, the pod's start, as the kubelet's
    /// pod_startup_latency_tracker.go counts it: last pull finished − first pull started.
    fn before(&self, started_ms: u64) -> u64 {
        let first = self.started.iter().filter(|t| **t <= started_ms).min();
        let last = self.finished.iter().filter(|t| **t <= started_ms).max();
        match (first, last) {
            (Some(a), Some(b)) if b > a => b - a,
            _ => 0,
        }
    }
}

/// A pod that started and counts for the SLI.
#[derive(Clone, Debug)]
struct Started {
    uid: String,
    /// Creation to all containers running, observed via watch.
    e2e_ms: u64,
    /// When it was observed running.
    at_ms: u64,
}

/// Reads trace records in order and keeps what the metrics and charts need.
#[derive(Default)]
pub struct Collector {
    pods: BTreeMap<String, PodTrack>,
    counts: [u64; 6],
    node_ready: BTreeMap<String, usize>,
    samples: Vec<Sample>,
    current: Sample,
    started: Vec<Started>,
    /// Image pulls by pod uid, deleted pods' included.
    pulls: BTreeMap<String, Pulls>,
    excluded_stateful: u64,
    excluded_preempted: u64,
    pending_ms: Vec<u64>,
    bindings_ms: Vec<u64>,
    /// Event name -> the count last seen, for FailedScheduling and evictions.
    event_counts: BTreeMap<(String, String), i32>,
    unschedulable_attempts: u64,
    evictions: Vec<Mark>,
    faults: Vec<Mark>,
    /// etcd's alarms raised and disarmed (NOSPACE when the quota fills).
    alarms: Vec<Mark>,
    actions: Vec<Mark>,
    terms: Vec<Term>,
    /// (trace window start ms, verb, resource, subresource) -> latency ms -> count: the
    /// trace's 10 s windows, summed when the metrics are asked for (the measurement's
    /// start, [`Collector::measured_from`], is known only then).
    api: BTreeMap<(u64, String, String, String), BTreeMap<u64, u64>>,
    /// (window start ms, window end ms, component -> requests).
    api_by_component: Vec<(u64, u64, BTreeMap<String, u64>)>,
    last_ms: u64,
    /// When the scenario's test started ([`TraceRecord::Start`]).
    started_ms: Option<u64>,
}

impl Collector {
    pub fn new() -> Self {
        Collector::default()
    }

    /// Pods Running now (the progress line).
    pub fn running(&self) -> u64 {
        self.counts[PodState::Running as usize]
    }

    /// Takes the next trace record.
    pub fn observe(&mut self, rec: &TraceRecord) {
        let t = rec.time().as_millis();
        self.advance_to(t);
        match rec {
            TraceRecord::Write { verb, object, .. } => self.write(t, verb, object),
            TraceRecord::Fault { fault, detail, .. } => {
                self.faults.push(Mark { t_ms: t, what: fault.clone(), detail: detail.clone() })
            }
            TraceRecord::Action { action, detail, .. } => {
                self.actions.push(Mark { t_ms: t, what: action.clone(), detail: detail.clone() })
            }
            TraceRecord::Leader { component, host, term, .. } => self.terms.push(Term {
                component: component.clone(),
                host: host.clone(),
                term: *term,
                from_ms: t,
            }),
            TraceRecord::ApiRequests { from, t: end, calls } => {
                let mut by_component: BTreeMap<String, u64> = BTreeMap::new();
                for c in calls {
                    *by_component.entry(c.component.clone()).or_default() += c.count;
                    let key = (*from, c.verb.clone(), c.resource.clone(), c.subresource.clone());
                    let hist = self.api.entry(key).or_default();
                    for [ms, n] in &c.latency_ms {
                        *hist.entry(*ms).or_default() += n;
                    }
                }
                self.api_by_component.push((*from, *end, by_component));
            }
            TraceRecord::Start { t } => {
                self.started_ms.get_or_insert(*t);
            }
            TraceRecord::Run { .. } | TraceRecord::Outcome { .. } | TraceRecord::Scheduling { .. } => {}
            TraceRecord::EtcdAlarm { alarm, action, host, db_size_bytes, quota_bytes, .. } => {
                self.alarms.push(Mark {
                    t_ms: t,
                    what: format!("{alarm} {action}"),
                    detail: format!("{host}: database {db_size_bytes} bytes, quota {quota_bytes} bytes"),
                })
            }
        }
    }

    /// Closes the seconds before `t` into samples.
    fn advance_to(&mut self, t: u64) {
        self.last_ms = self.last_ms.max(t);
        let second = t / 1000;
        while self.current.t < second {
            self.close_second();
        }
    }

    fn close_second(&mut self) {
        self.current.pods = self.counts;
        let mut ready = [0u64; 3];
        for s in self.node_ready.values() {
            ready[*s] += 1;
        }
        self.current.nodes_ready = ready;
        let next = Sample { t: self.current.t + 1, ..Default::default() };
        let mut done = std::mem::replace(&mut self.current, next);
        done.t += 1;
        self.samples.push(done);
    }

    fn write(&mut self, t: u64, verb: &str, object: &Object) {
        match object {
            Object::Pod(p) => self.pod(t, verb, p),
            Object::Node(n) => {
                if verb == "delete" {
                    self.node_ready.remove(&n.metadata.name);
                } else {
                    use kubesim_model::api::ConditionStatus;
                    let s = match n.condition("Ready").map(|c| c.status) {
                        Some(ConditionStatus::True) => 0,
                        Some(ConditionStatus::False) => 1,
                        _ => 2,
                    };
                    self.node_ready.insert(n.metadata.name.clone(), s);
                }
            }
            Object::Event(e) if verb != "delete" => self.event(t, e),
            _ => {}
        }
    }

    fn pod(&mut self, t: u64, verb: &str, p: &Pod) {
        let uid = p.metadata.uid.clone();
        let track = self.pods.entry(uid.clone()).or_insert_with(|| PodTrack {
            // creationTimestamp as the API serves it, in whole seconds: what the kubelet's
            // tracker and clusterloader2 subtract, and what a trace file holds.
            created_ms: p.metadata.creation_timestamp.map_or(t, |c| c.as_secs() * 1000),
            stateless: is_stateless(p),
            ..Default::default()
        });
        if let Some(old) = track.state.take() {
            self.counts[old as usize] -= 1;
        }
        if verb == "delete" {
            self.pods.remove(&uid);
            return;
        }
        let state = PodState::of_pod(p);
        self.counts[state as usize] += 1;
        track.state = Some(state);
        track.nominated |= !p.status.nominated_node_name.is_empty();
        if !track.scheduled && !p.spec.node_name.is_empty() {
            track.scheduled = true;
            self.pending_ms.push(t.saturating_sub(track.created_ms));
            self.bindings_ms.push(t);
            self.current.scheduled += 1;
        }
        let terminal = matches!(p.phase(), PodPhase::Succeeded | PodPhase::Failed);
        if !track.started && !terminal && has_pod_started_slo(p) {
            track.started = true;
            let e2e = t.saturating_sub(track.created_ms);
            if !track.stateless {
                self.excluded_stateful += 1;
            } else if track.nominated {
                self.excluded_preempted += 1;
            } else {
                self.started.push(Started { uid: uid.clone(), e2e_ms: e2e, at_ms: t });
            }
        }
    }

    fn event(&mut self, t: u64, e: &kubesim_model::api::Event) {
        let io = &e.involved_object;
        if io.kind == "Pod" {
            // Every occurrence of the event (first and last, when the recorder aggregated
            // repeats) is a pull; [`Pulls::before`] keeps those before the pod started.
            // The timestamps as stored (whole seconds), so a run and its trace file agree.
            let times = [e.first_timestamp, e.last_timestamp].map(|x| x.map_or(t, |x| x.as_secs() * 1000));
            match e.reason.as_str() {
                // RecordImageStartedPulling: the first pull's start.
                "Pulling" => self.pulls.entry(io.uid.clone()).or_default().started.extend(times),
                // RecordImageFinishedPulling: the last pull's end (an image already present
                // is no pull).
                "Pulled" if e.message.starts_with("Successfully pulled") => {
                    self.pulls.entry(io.uid.clone()).or_default().finished.extend(times)
                }
                _ => {}
            }
        }
        let eviction = match e.reason.as_str() {
            "TaintManagerEviction" => e.message.starts_with("Marking for deletion"),
            "Evicted" => true,
            "FailedScheduling" => false,
            _ => return,
        };
        let key = (e.metadata.namespace.clone(), e.metadata.name.clone());
        let before = self.event_counts.insert(key, e.count.max(1)).unwrap_or(0);
        let new = (e.count.max(1) - before).max(0) as u64;
        if new == 0 {
            return;
        }
        if e.reason == "FailedScheduling" {
            self.unschedulable_attempts += new;
        } else if eviction {
            let detail = format!("{} {}/{}: {}", io.kind, io.namespace, io.name, e.message);
            self.evictions.push(Mark { t_ms: t, what: e.reason.clone(), detail });
        }
    }

    /// Ends the run at `end_ms`: the last second's sample and the metrics.
    pub fn finish(&mut self, end_ms: u64) {
        self.advance_to(end_ms);
        if self.samples.last().is_none_or(|s| s.t * 1000 < end_ms) {
            self.close_second();
        }
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }
    pub fn alarms(&self) -> &[Mark] {
        &self.alarms
    }

    pub fn evictions(&self) -> &[Mark] {
        &self.evictions
    }
    pub fn faults(&self) -> &[Mark] {
        &self.faults
    }
    pub fn actions(&self) -> &[Mark] {
        &self.actions
    }
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }
    pub fn api_by_component(&self) -> &[(u64, u64, BTreeMap<String, u64>)] {
        &self.api_by_component
    }
    pub fn end_ms(&self) -> u64 {
        self.last_ms
    }

    /// The metrics over everything observed so far.
    pub fn metrics(&self) -> Metrics {
        let no_pulls = Pulls::default();
        let pulling = |s: &Started| self.pulls.get(&s.uid).unwrap_or(&no_pulls).before(s.at_ms);
        let e2e: Vec<u64> = self.started.iter().map(|s| s.e2e_ms).collect();
        let excluding_pulls: Vec<u64> =
            self.started.iter().map(|s| s.e2e_ms.saturating_sub(pulling(s))).collect();
        let startup = Distribution::of(&excluding_pulls);
        let unscheduled = self.counts[PodState::Unscheduled as usize];
        Metrics {
            pod_startup_latency: PodStartup {
                slo_seconds: secs(POD_STARTUP_SLO_MS),
                slo_met: startup.count > 0 && startup.p99 <= secs(POD_STARTUP_SLO_MS),
                end_to_end: Distribution::of(&e2e),
                excluded_stateful: self.excluded_stateful,
                excluded_preempted: self.excluded_preempted,
                latency: startup,
            },
            scheduling: self.scheduling(),
            pending_time: Pending {
                scheduled: Distribution::of(&self.pending_ms),
                still_pending: unscheduled,
            },
            api_call_latency_measured_from_seconds: secs(self.measured_from()),
            api_call_latency: self.api_latency(),
            api_requests_by_component: self.api_totals(),
            leader_changes: self.leader_changes(),
            evictions: self.eviction_counts(),
        }
    }

    fn scheduling(&self) -> Scheduling {
        let mut samples = Vec::new();
        if let (Some(first), Some(last)) = (self.bindings_ms.first(), self.bindings_ms.last()) {
            let start = first - first % THROUGHPUT_INTERVAL_MS;
            let intervals = (last - start) / THROUGHPUT_INTERVAL_MS + 1;
            let mut counts = vec![0u64; intervals as usize];
            for b in &self.bindings_ms {
                counts[((b - start) / THROUGHPUT_INTERVAL_MS) as usize] += 1;
            }
            samples = counts.iter().map(|n| *n as f64 / (THROUGHPUT_INTERVAL_MS / 1000) as f64).collect();
        }
        let scheduled = self.bindings_ms.len() as u64;
        let mut sorted = samples.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let pick = |p: u64| nearest_rank(&sorted, p).unwrap_or(0.0);
        let span_s = samples.len() as f64 * (THROUGHPUT_INTERVAL_MS / 1000) as f64;
        Scheduling {
            pods_scheduled: scheduled,
            attempts: Attempts { scheduled, unschedulable: self.unschedulable_attempts },
            throughput: Throughput {
                perc50: pick(50),
                perc90: pick(90),
                perc99: pick(99),
                max: sorted.last().copied().unwrap_or(0.0),
                average: if span_s > 0.0 { round3(scheduled as f64 / span_s) } else { 0.0 },
                interval_seconds: THROUGHPUT_INTERVAL_MS / 1000,
            },
        }
    }

    /// When the API call latency measurement starts: when the scenario's test starts (the
    /// API server answers and the workloads are applied, [`TraceRecord::Start`]), as
    /// clusterloader2's APIResponsivenessPrometheus measures from its `start`, before the
    /// test's objects are created, to its `gather` (perf-tests
    /// clusterloader2/pkg/measurement/common/slos/api_responsiveness_prometheus.go,
    /// Gather(startTime, endTime)): the cluster's bootstrap (kubelets registering while
    /// etcd elects its first leader) is not in it. In whole trace windows: from the window
    /// holding the test's start (the API server answers by then). From 0 in a trace
    /// without it.
    pub fn measured_from(&self) -> u64 {
        self.started_ms.map_or(0, |t| t - t % kubesim_sim::trace::API_WINDOW_MS)
    }

    fn api_latency(&self) -> Vec<ApiLatency> {
        let from = self.measured_from();
        // (verb, resource, subresource) -> the run's histogram, and per 5-minute window
        // (counted from the measurement's start).
        type Key = (String, String, String);
        let mut run: BTreeMap<&Key, BTreeMap<u64, u64>> = BTreeMap::new();
        let mut windows: BTreeMap<(&Key, u64), BTreeMap<u64, u64>> = BTreeMap::new();
        let keys: Vec<(u64, Key)> =
            self.api.keys().map(|(w, v, r, s)| (*w, (v.clone(), r.clone(), s.clone()))).collect();
        for ((w, key), hist) in keys.iter().zip(self.api.values()) {
            if *w < from {
                continue;
            }
            let window = (w - from) / SLI_WINDOW_MS;
            for (ms, n) in hist {
                *run.entry(key).or_default().entry(*ms).or_default() += n;
                *windows.entry((key, window)).or_default().entry(*ms).or_default() += n;
            }
        }
        let mut out = Vec::new();
        for (key, hist) in run {
            let (verb, resource, subresource) = key;
            let mutating = matches!(verb.as_str(), "POST" | "PUT" | "PATCH" | "DELETE");
            let worst = windows
                .iter()
                .filter(|((k, _), _)| *k == key)
                .filter_map(|(_, h)| hist_percentile(h, 99))
                .max()
                .unwrap_or(0);
            out.push(ApiLatency {
                verb: verb.clone(),
                resource: resource.clone(),
                subresource: subresource.clone(),
                // Every read kubesim serves is a GET of one object.
                scope: "resource".into(),
                count: hist.values().sum(),
                p50_seconds: secs(hist_percentile(&hist, 50).unwrap_or(0)),
                p90_seconds: secs(hist_percentile(&hist, 90).unwrap_or(0)),
                p99_seconds: secs(hist_percentile(&hist, 99).unwrap_or(0)),
                worst_5m_p99_seconds: secs(worst),
                slo_seconds: secs(API_CALL_SLO_MS),
                slo_met: worst <= API_CALL_SLO_MS,
                kind: if mutating { "mutating" } else { "read-only" }.into(),
            });
        }
        out
    }

    fn api_totals(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for (_, _, by) in &self.api_by_component {
            for (c, n) in by {
                *m.entry(c.clone()).or_default() += n;
            }
        }
        m
    }

    fn leader_changes(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for t in &self.terms {
            *m.entry(t.component.clone()).or_default() += 1;
        }
        m
    }

    fn eviction_counts(&self) -> Evictions {
        let mut by_reason = BTreeMap::new();
        for e in &self.evictions {
            *by_reason.entry(e.what.clone()).or_default() += 1;
        }
        Evictions { total: self.evictions.len() as u64, by_reason }
    }
}

/// Startup as the pod startup SLI defines it (kubelet_pod_start_sli_duration_seconds).
fn has_pod_started_slo(p: &Pod) -> bool {
    // hasPodStartedSLO: every container reported running (started at least once).
    !p.status.container_statuses.is_empty()
        && p.status.container_statuses.iter().all(|c| c.state.running.is_some())
}

/// pod_startup_latency.md footnote 1: "a pod that doesn't mount volumes with sources
/// other than secrets, config maps, downward API and empty dir".
fn is_stateless(p: &Pod) -> bool {
    p.spec.volumes.iter().all(|v| {
        (v.config_map.is_some()
            || v.secret.is_some()
            || v.empty_dir.is_some()
            || v.downward_api.is_some()
            || v.projected.is_some())
            && v.persistent_volume_claim.is_none()
            && v.host_path.is_none()
            && v.extra.is_empty()
    })
}

/// Nearest-rank percentile, as clusterloader2 picks them: the value at
/// ceil(n * p / 100) - 1 of the sorted samples.
fn nearest_rank<T: Copy>(sorted: &[T], p: u64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as u64 * p).div_ceil(100)).max(1) - 1;
    sorted.get(i as usize).copied()
}

/// The same over a histogram (value -> count).
fn hist_percentile(h: &BTreeMap<u64, u64>, p: u64) -> Option<u64> {
    let n: u64 = h.values().sum();
    if n == 0 {
        return None;
    }
    let rank = (n * p).div_ceil(100).max(1);
    let mut seen = 0;
    for (v, c) in h {
        seen += c;
        if seen >= rank {
            return Some(*v);
        }
    }
    h.keys().last().copied()
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A latency distribution in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Distribution {
    pub count: u64,
    #[serde(rename = "p50Seconds")]
    pub p50: f64,
    #[serde(rename = "p90Seconds")]
    pub p90: f64,
    #[serde(rename = "p99Seconds")]
    pub p99: f64,
    #[serde(rename = "maxSeconds")]
    pub max: f64,
}

impl Distribution {
    pub fn of(ms: &[u64]) -> Distribution {
        let mut v = ms.to_vec();
        v.sort_unstable();
        let pick = |p| secs(nearest_rank(&v, p).unwrap_or(0));
        Distribution {
            count: v.len() as u64,
            p50: pick(50),
            p90: pick(90),
            p99: pick(99),
            max: secs(v.last().copied().unwrap_or(0)),
        }
    }
}

/// Every SLO metric of a run (`--metrics FILE` writes it as JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    pub pod_startup_latency: PodStartup,
    pub scheduling: Scheduling,
    pub pending_time: Pending,
    /// Requests answered from this instant on (seconds), [`Collector::measured_from`].
    pub api_call_latency_measured_from_seconds: f64,
    pub api_call_latency: Vec<ApiLatency>,
    pub api_requests_by_component: BTreeMap<String, u64>,
    /// Leaders elected, by component (`etcd`, `kube-scheduler`, ...), the first included.
    pub leader_changes: BTreeMap<String, u64>,
    pub evictions: Evictions,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStartup {
    /// Excluding image pulls (the SLI).
    pub latency: Distribution,
    /// Creation to watch-observed running, pulls included (podStartE2EDuration).
    pub end_to_end: Distribution,
    pub slo_seconds: f64,
    pub slo_met: bool,
    /// Pods left out: volumes other than the stateless kinds, or nominated for preemption.
    pub excluded_stateful: u64,
    pub excluded_preempted: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Scheduling {
    pub pods_scheduled: u64,
    pub attempts: Attempts,
    /// Pods scheduled per second.
    pub throughput: Throughput,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempts {
    pub scheduled: u64,
    pub unschedulable: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throughput {
    pub perc50: f64,
    pub perc90: f64,
    pub perc99: f64,
    pub max: f64,
    pub average: f64,
    pub interval_seconds: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    /// Creation to binding, of the pods that were scheduled.
    pub scheduled: Distribution,
    /// Pods never bound by the end of the run.
    pub still_pending: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiLatency {
    pub verb: String,
    pub resource: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    pub scope: String,
    /// `mutating` or `read-only`.
    pub kind: String,
    pub count: u64,
    pub p50_seconds: f64,
    pub p90_seconds: f64,
    pub p99_seconds: f64,
    /// The SLI: the worst 5-minute window's 99th percentile.
    #[serde(rename = "worst5mP99Seconds")]
    pub worst_5m_p99_seconds: f64,
    pub slo_seconds: f64,
    pub slo_met: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evictions {
    pub total: u64,
    pub by_reason: BTreeMap<String, u64>,
}

impl Metrics {
    /// The metrics as the run report prints them.
    pub fn summary(&self) -> String {
        let d = |d: &Distribution| {
            format!("p50 {:.3}s p90 {:.3}s p99 {:.3}s ({} pods)", d.p50, d.p90, d.p99, d.count)
        };
        let p = &self.pod_startup_latency;
        let mut s = String::from("metrics:\n");
        let verdict = if p.latency.count == 0 {
            "no pod started".to_string()
        } else if p.slo_met {
            format!("SLO p99 <= {}s met", p.slo_seconds)
        } else {
            format!("SLO p99 <= {}s MISSED", p.slo_seconds)
        };
        s += &format!("  pod startup latency: {} — {verdict}\n", d(&p.latency));
        let t = &self.scheduling.throughput;
        s += &format!(
            "  scheduling: {} pods, {} unschedulable attempts; throughput avg {} p50 {} p99 {} max {} pods/s\n",
            self.scheduling.pods_scheduled,
            self.scheduling.attempts.unschedulable,
            t.average,
            t.perc50,
            t.perc99,
            t.max
        );
        s += &format!(
            "  pending time: {}; {} still pending\n",
            d(&self.pending_time.scheduled),
            self.pending_time.still_pending
        );
        let calls: u64 = self.api_call_latency.iter().map(|a| a.count).sum();
        let worst = self.api_call_latency.iter().max_by(|a, b| {
            a.worst_5m_p99_seconds.total_cmp(&b.worst_5m_p99_seconds).then_with(|| b.count.cmp(&a.count))
        });
        let missed = self.api_call_latency.iter().filter(|a| !a.slo_met).count();
        if let Some(w) = worst {
            let sub = if w.subresource.is_empty() { String::new() } else { format!("/{}", w.subresource) };
            s += &format!(
                "  API calls from {}s: {calls}, slowest 5-minute p99 {:.3}s ({} {}{sub}); {} of {} (verb, resource) pairs over the 1s SLO\n",
                self.api_call_latency_measured_from_seconds,
                w.worst_5m_p99_seconds,
                w.verb,
                w.resource,
                missed,
                self.api_call_latency.len()
            );
        }
        let leaders: Vec<String> = self.leader_changes.iter().map(|(c, n)| format!("{c} {n}")).collect();
        s += &format!(
            "  leaders elected: {}\n",
            if leaders.is_empty() { "none".into() } else { leaders.join(", ") }
        );
        s += &format!("  evictions: {}", self.evictions.total);
        if !self.evictions.by_reason.is_empty() {
            let by: Vec<String> = self.evictions.by_reason.iter().map(|(r, n)| format!("{r} {n}")).collect();
            s += &format!(" ({})", by.join(", "));
        }
        s += "\n";
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use kubesim_model::api::pod::{ContainerState, ContainerStateRunning};
    use kubesim_model::api::{ContainerStatus, Event, ObjectReference};
    use kubesim_model::time::SimTime;
    use std::sync::Arc;

    fn write(t: u64, verb: &str, object: Object) -> TraceRecord {
        TraceRecord::Write { t, rev: t, verb: verb.into(), object: Arc::new(object) }
    }

    /// A pod created at 0, bound at 10 ms, all containers running at `running_ms`.
    fn pod_writes(uid: &str, running_ms: u64) -> Vec<TraceRecord> {
        let mut p = Pod::default();
        p.metadata.name = uid.into();
        p.metadata.uid = uid.into();
        p.metadata.creation_timestamp = Some(SimTime(0));
        let created = write(0, "create", Object::Pod(p.clone()));
        Arc::make_mut(&mut p.spec).node_name = "node-1".into();
        let bound = write(10, "update", Object::Pod(p.clone()));
        p.status.phase = Some(PodPhase::Running);
        p.status.container_statuses = vec![ContainerStatus {
            name: "app".into(),
            state: ContainerState {
                running: Some(ContainerStateRunning { started_at: Some(SimTime(running_ms)) }),
                ..Default::default()
            },
            ..Default::default()
        }];
        vec![created, bound, write(running_ms, "update", Object::Pod(p))]
    }

    fn pull_event(t: u64, uid: &str, reason: &str, message: &str, at: u64) -> TraceRecord {
        let mut e = Event::default();
        e.metadata.name = format!("{uid}.{reason}");
        e.involved_object = ObjectReference { kind: "Pod".into(), uid: uid.into(), ..Default::default() };
        e.reason = reason.into();
        e.message = message.into();
        (e.first_timestamp, e.last_timestamp, e.count) = (Some(SimTime(at)), Some(SimTime(at)), 1);
        write(t, "create", Object::Event(e))
    }

    #[test]
    fn pulls_are_excluded_from_startup_even_when_their_events_arrive_after_running() {
        let mut c = Collector::new();
        // Pulled 100 ms .. 1100 ms, running at 1115 ms; the kubelet's event bucket delays
        // the Pulled event to 4 s, after the pod was observed running.
        let mut records = pod_writes("a", 1115);
        records.insert(2, pull_event(100, "a", "Pulling", "Pulling image \"app:v1\"", 100));
        records.push(pull_event(4000, "a", "Pulled", "Successfully pulled image \"app:v1\" in 1s", 1100));
        // A second pod on the node finds the image present: no pull to exclude.
        records.extend(pod_writes("b", 4015));
        records.push(pull_event(
            4100,
            "b",
            "Pulled",
            "Container image \"app:v1\" already present on machine",
            4010,
        ));
        // A pull after the pod started (a restart's) is not the start's.
        records.push(pull_event(9000, "b", "Pulling", "Pulling image \"app:v1\"", 9000));
        records.push(pull_event(9500, "b", "Pulled", "Successfully pulled image \"app:v1\" in 1s", 9500));
        records.sort_by_key(|r| r.time());
        for r in &records {
            c.observe(r);
        }
        let m = c.metrics().pod_startup_latency;
        assert_eq!(m.end_to_end.count, 2);
        assert_eq!(m.end_to_end.max, 4.015);
        // a: 1.115 s less its 1 s pull; b: 4.015 s, no pull before it started.
        assert_eq!(m.latency.p50, 0.115);
        assert_eq!(m.latency.max, 4.015);
    }

    fn api_window(from: u64, latencies: &[[u64; 2]]) -> TraceRecord {
        TraceRecord::ApiRequests {
            t: from + 10_000,
            from,
            calls: vec![kubesim_sim::trace::ApiCallStats {
                component: "kubelet".into(),
                verb: "POST".into(),
                resource: "nodes".into(),
                subresource: String::new(),
                count: latencies.iter().map(|[_, n]| n).sum(),
                latency_ms: latencies.to_vec(),
            }],
        }
    }

    #[test]
    fn api_call_latency_is_measured_from_the_tests_start() {
        let mut c = Collector::new();
        // Bootstrap: kubelets register while etcd elects its first leader (2 s answers).
        c.observe(&api_window(0, &[[2_000, 3], [5, 10]]));
        // The API answers and the workloads are applied at 10.518 s.
        c.observe(&TraceRecord::Start { t: 10_518 });
        c.observe(&api_window(10_000, &[[5, 20]]));
        c.observe(&api_window(20_000, &[[7, 20]]));
        let m = c.metrics();
        assert_eq!(m.api_call_latency_measured_from_seconds, 10.0, "the trace window holding the start");
        let nodes = &m.api_call_latency[0];
        assert_eq!((nodes.count, nodes.p99_seconds, nodes.worst_5m_p99_seconds), (40, 0.007, 0.007));
        assert!(nodes.slo_met);
        // The chart of requests per component still has every request.
        assert_eq!(m.api_requests_by_component["kubelet"], 53);

        // Without a start, the whole run counts and the bootstrap misses the SLO.
        let mut c = Collector::new();
        c.observe(&api_window(0, &[[2_000, 3], [5, 10]]));
        let m = c.metrics();
        assert_eq!((m.api_call_latency[0].worst_5m_p99_seconds, m.api_call_latency[0].slo_met), (2.0, false));
    }

    #[test]
    fn nearest_rank_matches_clusterloader2() {
        // ceil(len*p/100)-1: of 1..=10, p50 is 5, p90 9, p99 10.
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(nearest_rank(&v, 50), Some(5));
        assert_eq!(nearest_rank(&v, 90), Some(9));
        assert_eq!(nearest_rank(&v, 99), Some(10));
        assert_eq!(nearest_rank::<u64>(&[], 50), None);
        let h: BTreeMap<u64, u64> = [(1, 5), (7, 4), (30, 1)].into_iter().collect();
        assert_eq!(hist_percentile(&h, 50), Some(1));
        assert_eq!(hist_percentile(&h, 90), Some(7));
        assert_eq!(hist_percentile(&h, 99), Some(30));
    }
}
