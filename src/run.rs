//! Running a scenario: build the world, apply the workloads, play the timeline, check the
//! expectations, report.
//!
//! The orchestration runs as one task inside the simulation, on its own OS thread (madsim
//! keeps per-thread state, so each run gets a fresh thread). Everything it schedules —
//! timeline steps, expectation checks, progress ticks — is the same whether or not a
//! progress bar is shown, so the display never changes the trace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kubesim_faults::Fault;
use kubesim_model::api::{Kind, Object, ObjectKey, PodPhase, Selector, Taint, TaintEffect};
use kubesim_model::client::{ApiRequest, ApiResult, Cache};
use kubesim_model::time::SimTime;
use kubesim_sim::{now, simulate, sleep_until, TraceSink, WorkerSpec, World, WorldConfig};

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub seed: Option<u64>,
    pub trace: Option<PathBuf>,
    pub progress: bool,
    pub warnings: bool,
    pub bench: bool,
}

/// A timeline step at its time, with how it reaches the API and what it must do.
#[derive(Clone, Debug)]
pub struct TimedStep {
    pub at: SimTime,
    pub step: Step,
    /// Send API calls through this control-plane host's API server (`isolated`: the host
    /// the last isolation cut off).
    pub via: Option<String>,
    /// The step must fail with an error containing this text.
    pub expect_error: Option<String>,
}

/// One step of the timeline.
#[derive(Clone, Debug)]
pub enum Step {
    Apply(Vec<Object>),
    /// The object and `--grace-period`.
    Delete(ObjectKey, Option<i64>),
    /// `kubectl rollout undo` (0: the previous revision).
    RolloutUndo {
        key: ObjectKey,
        to_revision: i64,
    },
    Scale {
        key: ObjectKey,
        replicas: i32,
    },
    /// `kubectl label`: set and remove labels (`overwrite`: `--overwrite`).
    Label {
        key: ObjectKey,
        set: std::collections::BTreeMap<String, String>,
        remove: Vec<String>,
        overwrite: bool,
    },
    Cordon {
        node: String,
        unschedulable: bool,
    },
    AddWorkers(Vec<WorkerSpec>),
    /// Delete the Node object, then power its host off.
    RemoveNode(String),
    /// `kubectl taint node`: add (or replace) a taint, or remove a key's taints
    /// (`effect: None` removes every effect).
    Taint {
        node: String,
        key: String,
        value: String,
        effect: Option<TaintEffect>,
        add: bool,
    },
    Fault(Fault),
    /// `kubectl drain` (src/drain.rs): its retries go on in the background.
    Drain(crate::drain::Drain),
    /// `etcdctl compact` at the current revision.
    EtcdCompact,
    /// `etcdctl defrag --cluster`.
    EtcdDefrag,
    /// `etcdctl alarm disarm`.
    EtcdAlarmDisarm,
}

impl Step {
    fn describe(&self) -> (String, String) {
        let names = |objs: &[Object]| objs.iter().map(|o| o.key().to_string()).collect::<Vec<_>>().join(" ");
        match self {
            Step::Apply(objs) => ("apply".into(), names(objs)),
            Step::Delete(k, _) => ("delete".into(), k.to_string()),
            Step::Scale { key, replicas } => ("scale".into(), format!("{key} --replicas={replicas}")),
            Step::RolloutUndo { key, to_revision } => {
                ("rollout-undo".into(), format!("{key} --to-revision={to_revision}"))
            }
            Step::Label { key, set, remove, overwrite } => {
                let mut args: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
                args.extend(remove.iter().map(|k| format!("{k}-")));
                if *overwrite {
                    args.push("--overwrite".into());
                }
                ("label".into(), format!("{key} {}", args.join(" ")))
            }
            Step::Cordon { node, unschedulable: true } => ("cordon".into(), node.clone()),
            Step::Cordon { node, unschedulable: false } => ("uncordon".into(), node.clone()),
            Step::AddWorkers(w) => (
                "add-nodes".into(),
                w.iter().map(|w| w.kubelet.node_name.clone()).collect::<Vec<_>>().join(" "),
            ),
            Step::RemoveNode(n) => ("remove-node".into(), n.clone()),
            Step::Taint { node, key, value, effect, add } => {
                let e = effect.map_or(String::new(), |e| format!(":{}", e.as_str()));
                let v = if value.is_empty() { String::new() } else { format!("={value}") };
                let detail = format!("{node} {key}{v}{e}{}", if *add { "" } else { "-" });
                ((if *add { "taint" } else { "untaint" }).into(), detail)
            }
            Step::Fault(f) => ("fault".into(), format!("{f:?}")),
            Step::Drain(d) => ("drain".into(), d.node.clone()),
            Step::EtcdCompact => ("etcdctl-compact".into(), String::new()),
            Step::EtcdDefrag => ("etcdctl-defrag".into(), "--cluster".into()),
            Step::EtcdAlarmDisarm => ("etcdctl-alarm-disarm".into(), String::new()),
        }
    }
}

/// When an expectation is checked.
#[derive(Clone, Debug, PartialEq)]
pub enum Timing {
    /// At exactly this instant.
    At(SimTime),
    /// Eventually: true at some instant in [from, until] (with `hold`: continuously for
    /// that long, inside the window).
    Within { from: SimTime, until: SimTime, hold: Option<Duration> },
}

/// What an expectation compares.
#[derive(Clone, Debug, PartialEq)]
pub enum Compare {
    Equals(i64),
    AtLeast(i64),
    AtMost(i64),
    /// Both bounds, inclusive.
    Between(i64, i64),
}

impl Compare {
    pub fn holds(&self, n: i64) -> bool {
        match self {
            Compare::Equals(v) => n == *v,
            Compare::AtLeast(v) => n >= *v,
            Compare::AtMost(v) => n <= *v,
            Compare::Between(a, b) => n >= *a && n <= *b,
        }
    }
}

/// `Condition::Field` with this `equals` holds for any present value (`exists: true`).
pub const ANY_VALUE: &str = "\u{0}any";
/// `Condition::Field` with an `equals` starting so matches the rest as a glob (`*`).
pub const PATTERN_PREFIX: &str = "\u{0}glob:";

/// Objects of one kind chosen by name, or by labels and node (names a seed generates are
/// never written into a scenario).
#[derive(Clone, Debug)]
pub struct ObjectSelection {
    pub kind: Kind,
    pub name: Option<String>,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    pub selector: Option<Selector>,
    /// Pods bound to this node.
    pub node: Option<String>,
}

impl ObjectSelection {
    pub fn matches(&self, o: &Object) -> bool {
        let m = o.meta();
        o.kind() == self.kind
            && self.name.as_ref().is_none_or(|n| m.name == *n)
            && self.namespace.as_ref().is_none_or(|ns| m.namespace == *ns)
            && self.selector.as_ref().is_none_or(|s| s.matches(&m.labels))
            && self.node.as_ref().is_none_or(|n| o.as_pod().is_some_and(|p| p.spec.node_name == *n))
    }

    /// The matching objects of the committed state, in key order.
    pub fn select<'a>(&self, state: &'a Cache) -> Vec<&'a Arc<Object>> {
        if let (Some(name), Some(ns)) = (&self.name, &self.namespace) {
            return state
                .get(&ObjectKey::new(self.kind, ns.clone(), name.clone()))
                .into_iter()
                .filter(|o| self.matches(o))
                .collect();
        }
        state.list(self.kind).filter(|o| self.matches(o)).collect()
    }

    fn describe(&self) -> String {
        let mut s = self.kind.as_str().to_string();
        if let Some(n) = &self.name {
            s += &format!(" {n}");
        }
        if let Some(sel) = &self.selector {
            s += &format!(" matching {sel}");
        }
        if let Some(n) = &self.node {
            s += &format!(" on {n}");
        }
        s
    }
}

/// Which Events a check or an anchor looks at.
#[derive(Clone, Debug)]
pub struct EventMatch {
    pub reason: String,
    pub type_: Option<String>,
    pub message: Option<String>,
    /// `*` matches any text.
    pub message_pattern: Option<String>,
    /// Involved object: kind, name (`*` globs), namespace (empty: any).
    pub involved: Option<(Kind, Option<String>, String)>,
}

impl EventMatch {
    fn matches(&self, e: &kubesim_model::api::Event) -> bool {
        use kubesim_model::kubelet::behavior::glob;
        if e.reason != self.reason || self.type_.as_ref().is_some_and(|t| e.type_ != *t) {
            return false;
        }
        if let Some((k, name, ns)) = &self.involved {
            let io = &e.involved_object;
            if io.kind != k.as_str()
                || name.as_ref().is_some_and(|n| !glob(n, &io.name))
                || (!ns.is_empty() && io.namespace != *ns)
            {
                return false;
            }
        }
        self.message.as_ref().is_none_or(|m| e.message == *m)
            && self.message_pattern.as_ref().is_none_or(|p| glob(p, &e.message))
    }
}

/// Matching writes as a trace observer sees them: how many, and when a selected object's
/// field became the value (each time it went from another value to it).
#[derive(Clone, Debug, Default)]
pub struct WriteTracker {
    pub first: Option<SimTime>,
    pub count: u64,
    pub became: Vec<SimTime>,
    matching: BTreeMap<ObjectKey, bool>,
}

pub type Tracker = Arc<Mutex<WriteTracker>>;

/// The instant a relative timing counts from.
#[derive(Clone, Debug)]
pub enum Anchor {
    /// The first time such an Event was recorded (its firstTimestamp).
    Event(EventMatch),
    /// The first committed write of a selected object with `path` rendering as `equals`
    /// (`None`: present).
    /// The `nth` time (1-based) a selected object's field became the value.
    Written {
        objects: ObjectSelection,
        path: String,
        equals: Option<String>,
        nth: u32,
        tracker: Option<Tracker>,
    },
}

/// What an expectation checks.
#[derive(Clone, Debug)]
pub enum Condition {
    PodCount {
        phase: Option<PodPhase>,
        /// `Some(true)`: only pods with a deletionTimestamp; `Some(false)`: only without.
        terminating: Option<bool>,
        /// `Some(true)`: only pods whose Ready condition is True.
        ready: Option<bool>,
        node: Option<String>,
        namespace: Option<String>,
        selector: Option<Selector>,
        compare: Compare,
    },
    /// Every selected object (at least one) has `path` rendering as `equals`; `None`: no
    /// selected object has the field (or none exists).
    Field { objects: ObjectSelection, path: String, equals: Option<String> },
    /// Such an Event exists (`absent`: none does); with `compare`, the times it was
    /// recorded (the sum of the matching Events' counts) compare.
    Event { matcher: EventMatch, absent: bool, compare: Option<Compare> },
    /// Some committed write of a selected object had `path` rendering as `equals` (`None`:
    /// the field present) — transient states a sampled check could miss; with `compare`,
    /// the number of such writes compares. `tracker` is filled when the run starts.
    Written {
        objects: ObjectSelection,
        path: String,
        equals: Option<String>,
        absent: bool,
        compare: Option<Compare>,
        tracker: Option<Tracker>,
    },
    /// Nodes with a taint (key, optional effect) and/or a Ready status.
    NodeCount { taint: Option<(String, Option<TaintEffect>)>, ready: Option<String>, compare: Compare },
    /// The latest leader of a component, as the trace records leader changes.
    Leader {
        component: String,
        host: Option<String>,
        not_host: Option<String>,
        elected_after: Option<SimTime>,
        /// Holds when no such leader is recorded.
        absent: bool,
    },
    /// An etcd alarm is raised now (on `host`'s member, or any), as the trace records
    /// alarm changes; `absent`: none is.
    EtcdAlarm { alarm: String, host: Option<String>, absent: bool },
}

#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    /// Times in `timing` count from this instant (`None`: from the start).
    pub since: Option<Anchor>,
    pub timing: Timing,
    pub condition: Condition,
}

/// A scenario turned into what the run does.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub seed: u64,
    pub duration: SimTime,
    pub world: WorldConfig,
    pub workloads: Vec<Object>,
    /// Workloads the API server must reject, by object, with text the error contains
    /// (the workloads entry's `expectError`).
    pub workload_expect_errors: BTreeMap<ObjectKey, String>,
    pub timeline: Vec<TimedStep>,
    pub checks: Vec<Check>,
    /// Check the cluster invariants; liveness from this instant plus the bound (the last
    /// fault of the timeline).
    pub invariants: Option<SimTime>,
    /// Test-only: give every scheduler the planted taint bug.
    pub planted_ignore_taints: bool,
    /// Hash the trace (the report's trace-hash). A fuzz seed judged only by its checks
    /// skips it: hashing is a tenth of a small run's work, and a failing seed's repro is
    /// replayed by `kubesim run`, which hashes.
    pub hash_trace: bool,
}

/// The outcome of one expectation.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// What a run reports.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub name: String,
    pub seed: u64,
    pub simulated: SimTime,
    pub wall: Duration,
    pub records: u64,
    pub writes: u64,
    pub results: Vec<CheckResult>,
    pub trace_hash: String,
    /// Workloads and timeline steps that failed without `expectError` (each fails the
    /// run), with the API server's message.
    pub step_errors: Vec<String>,
    pub peak_rss_bytes: Option<u64>,
    /// Every leader change (etcd, kube-controller-manager, kube-scheduler).
    pub leaders: Vec<kubesim_sim::Leadership>,
    /// Broken cluster invariants (when the plan checks them).
    pub violations: Vec<kubesim_faults::invariants::Violation>,
    /// The SLO metrics (src/metrics.rs).
    pub metrics: crate::metrics::Metrics,
    /// Client requests etcd refused, by etcd's error (NOSPACE, request too large).
    pub etcd_rejected: Vec<(String, u64)>,
    /// The hosts whose etcd member had the NOSPACE alarm raised at the end.
    pub etcd_alarms: Vec<String>,
}

impl RunReport {
    /// Every expectation held, no invariant broke, and the API server accepted every
    /// workload and timeline step not marked `expectError`.
    pub fn all_passed(&self) -> bool {
        self.results.iter().all(|r| r.passed) && self.violations.is_empty() && self.step_errors.is_empty()
    }

    /// The first failure, in one line: a broken invariant or a failed expectation.
    pub fn first_failure(&self) -> Option<(String, String)> {
        if let Some(v) = self.violations.first() {
            return Some((v.invariant.to_string(), v.to_string()));
        }
        if let Some(e) = self.step_errors.first() {
            return Some(("rejected step".to_string(), e.clone()));
        }
        self.results
            .iter()
            .find(|r| !r.passed)
            .map(|r| (format!("expectation {:?}", r.name), r.detail.clone()))
    }

    pub fn summary(&self) -> String {
        let mut s = String::new();
        s += &format!("scenario: {} (seed {})\n", self.name, self.seed);
        s += &format!("simulated time: {}\n", self.simulated);
        s += &format!("wall time: {:.3}s\n", self.wall.as_secs_f64());
        s += &format!("trace records: {} ({} committed writes)\n", self.records, self.writes);
        for e in &self.step_errors {
            s += &format!("FAIL {e}\n");
        }
        if !self.leaders.is_empty() {
            s += "leader changes:\n";
            for l in &self.leaders {
                s += &format!("  {} {} -> {} (term {})\n", l.t, l.component, l.host, l.term);
            }
        }
        let passed = self.results.iter().filter(|r| r.passed).count();
        s += &format!("expectations: {passed}/{} passed\n", self.results.len());
        for r in &self.results {
            s += &format!("  {} {}: {}\n", if r.passed { "PASS" } else { "FAIL" }, r.name, r.detail);
        }
        for v in &self.violations {
            s += &format!("VIOLATION {v}\n");
        }
        for (error, n) in &self.etcd_rejected {
            s += &format!("etcd refused {n} requests: {error}\n");
        }
        if !self.etcd_alarms.is_empty() {
            s += &format!("etcd alarms at the end: NOSPACE on {}\n", self.etcd_alarms.join(", "));
        }
        s += &self.metrics.summary();
        s += &format!("trace-hash: {}\n", self.trace_hash);
        s
    }

    pub fn bench_summary(&self) -> String {
        let ratio = self.simulated.as_secs_f64() / self.wall.as_secs_f64().max(1e-9);
        let rss =
            self.peak_rss_bytes.map_or("unknown".to_string(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
        format!(
            "bench: wall {:.2}s, simulated {:.0}s, simulated/wall {:.1}x, peak RSS {rss}\n",
            self.wall.as_secs_f64(),
            self.simulated.as_secs_f64(),
            ratio
        )
    }
}

/// Loads, plans and runs a scenario file. `Err` is bad input (exit code 2).
pub fn run_file(path: &Path, opts: &RunOptions) -> Result<RunReport, String> {
    let loaded = crate::scenario::load(path).map_err(|e| e.to_string())?;
    if opts.warnings {
        for w in &loaded.warnings {
            eprintln!("warning: {w}");
        }
    }
    let mut plan = crate::plan::from_scenario(&loaded.scenario).map_err(|e| e.to_string())?;
    if let Some(seed) = opts.seed {
        plan.seed = seed;
        plan.world.seed = seed;
    }
    let file = match &opts.trace {
        Some(p) => {
            use std::io::Write;
            let mut f = std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?;
            // The header `kubesim report` reads: what ran (outside the trace hash).
            let source = std::fs::read_to_string(path).unwrap_or_default();
            let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let header = kubesim_sim::TraceRecord::Run {
                t: 0,
                scenario: plan.name.clone(),
                seed: plan.seed,
                duration: plan.duration.as_millis(),
                file: file_name,
                source,
            };
            let line = serde_json::to_string(&header).expect("trace records always serialize");
            writeln!(f, "{line}").map_err(|e| format!("{}: {e}", p.display()))?;
            Some(f)
        }
        None => None,
    };
    let report = run_plan(plan, file, opts.progress)?;
    if let Some(p) = &opts.trace {
        append_outcome(p, &report)?;
    }
    Ok(report)
}

/// Appends the run's outcome (each expectation's result, the hash) to its trace file.
fn append_outcome(path: &Path, report: &RunReport) -> Result<(), String> {
    use std::io::Write;
    let mut results: Vec<kubesim_sim::trace::OutcomeResult> = report
        .results
        .iter()
        .map(|r| kubesim_sim::trace::OutcomeResult {
            name: r.name.clone(),
            passed: r.passed,
            detail: r.detail.clone(),
        })
        .collect();
    for e in &report.step_errors {
        results.push(kubesim_sim::trace::OutcomeResult {
            name: "rejected step".into(),
            passed: false,
            detail: e.clone(),
        });
    }
    for v in &report.violations {
        results.push(kubesim_sim::trace::OutcomeResult {
            name: format!("invariant {}", v.invariant),
            passed: false,
            detail: v.to_string(),
        });
    }
    let rec = kubesim_sim::TraceRecord::Outcome {
        t: report.simulated.as_millis(),
        results,
        trace_hash: report.trace_hash.clone(),
    };
    let line = serde_json::to_string(&rec).expect("trace records always serialize");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writeln!(f, "{line}").map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs a plan on a fresh OS thread (madsim keeps per-thread state between runs).
pub fn run_plan(plan: Plan, trace_file: Option<std::fs::File>, progress: bool) -> Result<RunReport, String> {
    let started = std::time::Instant::now();
    // The display runs on a thread of its own, outside the simulation: it reads what the
    // simulation publishes and never changes what the simulation does.
    let shown = progress.then(|| crate::progress::Progress::start(&plan.name, plan.duration));
    let state = shown.as_ref().map(|p| p.state());
    let thread = std::thread::Builder::new()
        .name(format!("sim-{}", plan.name))
        .stack_size(64 << 20)
        .spawn(move || simulate_plan(plan, trace_file, state))
        .map_err(|e| e.to_string())?;
    let joined = thread.join();
    if let Some(p) = shown {
        p.finish();
    }
    let mut report = joined.map_err(|_| "the simulation panicked (a kubesim bug)".to_string())??;
    report.wall = started.elapsed();
    report.peak_rss_bytes = peak_rss_bytes();
    Ok(report)
}

fn simulate_plan(
    plan: Plan,
    trace_file: Option<std::fs::File>,
    progress: Option<Arc<crate::progress::ProgressState>>,
) -> Result<RunReport, String> {
    let seed = plan.seed;
    simulate(seed, move || async move {
        let mut sink = TraceSink::new(trace_file);
        if !plan.hash_trace {
            sink = sink.without_hash();
        }
        let sink = Arc::new(Mutex::new(sink));
        let mut plan = plan;
        for c in &mut plan.checks {
            install_trackers(c, &sink);
        }
        if plan.planted_ignore_taints {
            plan.world.scheduler.planted_ignore_taints = true;
        }
        let monitor = plan.invariants.map(|_| {
            let m = Arc::new(Mutex::new(kubesim_faults::invariants::SafetyMonitor::new()));
            let m2 = m.clone();
            sink.lock()
                .expect("trace lock")
                .observe(Box::new(move |rec, state| m2.lock().expect("monitor lock").observe(rec, state)));
            m
        });
        let collector = Arc::new(Mutex::new(crate::metrics::Collector::new()));
        let c2 = collector.clone();
        sink.lock()
            .expect("trace lock")
            .observe(Box::new(move |rec, _| c2.lock().expect("metrics lock").observe(rec)));
        let bar = progress.map(|p| Ticker { progress: p, collector: collector.clone() });
        let mut world = World::start(plan.world.clone(), sink.clone()).await;
        let mut step_errors = Vec::new();
        wait_for_api(&world).await;
        sink.lock().expect("trace lock").note(&kubesim_sim::TraceRecord::Start { t: now().as_millis() });
        // A workload the API server rejects fails the run, unless its entry expects
        // the error (then it is a check of its own).
        let mut workload_checks = Vec::new();
        for obj in &plan.workloads {
            let key = obj.key();
            let result = apply(&world, None, obj.clone()).await;
            match (plan.workload_expect_errors.get(&key), result) {
                (None, Ok(())) => {}
                (None, Err(e)) => step_errors.push(format!("workload {key} rejected at {}: {e}", now())),
                (Some(want), result) => workload_checks.push(CheckResult {
                    name: format!("workload {key} is rejected with {want:?}"),
                    passed: result.as_ref().is_err_and(|e| e.contains(want.as_str())),
                    detail: match result {
                        Ok(()) => "it was accepted".to_string(),
                        Err(e) => format!("it was rejected: {e}"),
                    },
                }),
            }
        }
        // Expectations are sampled by a task of their own, so a timeline step waiting on
        // a slow API call (a person's kubectl hanging) never delays a check.
        let checker =
            kubesim_sim::spawn(run_checks(plan.checks.clone(), sink.clone(), plan.duration, bar.clone()));
        let mut step_checks = Vec::new();
        // Drains still retrying evictions, interleaved with the timeline by time.
        let mut drains: Vec<crate::drain::Draining> = Vec::new();
        let mut steps = plan.timeline.iter().filter(|ts| ts.at <= plan.duration).peekable();
        loop {
            let next_drain = drains.iter().map(|d| d.next).min().filter(|t| *t <= plan.duration);
            let next_step = steps.peek().map(|ts| ts.at);
            if let Some(t) = next_drain.filter(|t| next_step.is_none_or(|s| *t < s)) {
                sleep_until(t).await;
                let mut left = Vec::new();
                for mut d in drains.drain(..) {
                    if d.next > t || !d.step(&world).await {
                        left.push(d);
                    }
                }
                drains = left;
                continue;
            }
            let Some(ts) = steps.next() else { break };
            sleep_until(ts.at).await;
            let result = match &ts.step {
                Step::Drain(d) => {
                    world.action("drain", &d.node);
                    let (result, rest) = d.start(&world, ts.via.as_deref()).await;
                    drains.extend(rest);
                    result
                }
                step => do_step(&mut world, step, ts.via.as_deref()).await,
            };
            let what = format!("{} at {}", ts.step.describe().0, ts.at);
            match (&ts.expect_error, result) {
                (None, Err(e)) => step_errors.push(format!("timeline step {what} failed: {e}")),
                (None, Ok(())) => {}
                (Some(want), result) => step_checks.push(CheckResult {
                    name: format!("{what} fails with {want:?}"),
                    passed: result.as_ref().is_err_and(|e| e.contains(want.as_str())),
                    detail: match result {
                        Ok(()) => "it succeeded".to_string(),
                        Err(e) => format!("it failed: {e}"),
                    },
                }),
            }
        }
        let results = checker.await.map_err(|e| format!("the expectation checker failed: {e}"))?;
        world.prune();
        sleep_until(plan.duration).await;
        let mut results: Vec<CheckResult> = results
            .into_iter()
            .zip(&plan.checks)
            .map(|(r, c)| {
                r.unwrap_or_else(|| CheckResult {
                    name: c.name.clone(),
                    passed: false,
                    detail: "not checked: its time is after the scenario's duration".into(),
                })
            })
            .collect();
        results.extend(workload_checks);
        results.extend(step_checks);
        let mut sink = sink.lock().expect("trace lock");
        let mut violations =
            monitor.map(|m| m.lock().expect("monitor lock").violations.clone()).unwrap_or_default();
        if let Some(last_fault) = plan.invariants {
            if now() >= last_fault + kubesim_faults::invariants::liveness::LIVENESS_BOUND {
                violations.extend(kubesim_faults::invariants::liveness::check(sink.state(), now()));
            }
        }
        let trace_hash = sink.finish()?;
        world.shutdown();
        let metrics = {
            let mut c = collector.lock().expect("metrics lock");
            c.finish(now().as_millis());
            c.metrics()
        };
        Ok(RunReport {
            name: plan.name.clone(),
            seed,
            simulated: now(),
            wall: Duration::ZERO,
            records: sink.lines(),
            writes: sink.writes(),
            results,
            trace_hash,
            step_errors,
            peak_rss_bytes: None,
            leaders: sink.leaders().to_vec(),
            violations,
            metrics,
            etcd_rejected: sink.etcd_rejected().iter().map(|(e, n)| (e.to_string(), *n)).collect(),
            etcd_alarms: sink.nospace_alarms().iter().cloned().collect(),
        })
    })
}

/// Registers a trace observer for each `written` condition and anchor of a check: the
/// first matching write and the count, exact to the write.
fn install_trackers(c: &mut Check, sink: &Arc<Mutex<TraceSink>>) {
    let mut slots: Vec<(ObjectSelection, String, Option<String>, &mut Option<Tracker>)> = Vec::new();
    if let Condition::Written { objects, path, equals, tracker, .. } = &mut c.condition {
        slots.push((objects.clone(), path.clone(), equals.clone(), tracker));
    }
    if let Some(Anchor::Written { objects, path, equals, tracker, .. }) = &mut c.since {
        slots.push((objects.clone(), path.clone(), equals.clone(), tracker));
    }
    for (objects, path, equals, slot) in slots {
        let t: Tracker = Arc::default();
        *slot = Some(t.clone());
        sink.lock().expect("trace lock").observe(Box::new(move |rec, _state| {
            let kubesim_sim::TraceRecord::Write { t: at, verb, object, .. } = rec else { return };
            if verb == "delete" || !objects.matches(object) {
                return;
            }
            let v = crate::scenario::lookup_path(&object.to_json_value(), &path);
            let hit = match (&equals, v) {
                (None, v) => v.is_some(),
                (Some(want), Some(v)) => render(&v) == *want,
                (Some(_), None) => false,
            };
            let mut w = t.lock().expect("tracker lock");
            let was = w.matching.insert(object.key(), hit).unwrap_or(false);
            if hit {
                w.first.get_or_insert(SimTime(*at));
                w.count += 1;
                if !was {
                    w.became.push(SimTime(*at));
                }
            }
        }));
    }
}

/// When an anchor first happened, if it has.
fn anchor_time(a: &Anchor, sink: &TraceSink) -> Option<SimTime> {
    match a {
        Anchor::Written { tracker, nth, .. } => tracker
            .as_ref()
            .and_then(|t| t.lock().expect("tracker lock").became.get(*nth as usize - 1).copied()),
        Anchor::Event(m) => sink
            .state()
            .list(Kind::Event)
            .filter_map(|o| o.as_event())
            .filter(|e| m.matches(e))
            .filter_map(|e| e.first_timestamp)
            .min(),
    }
}

fn describe_anchor(a: &Anchor) -> String {
    match a {
        Anchor::Event(m) => format!("the first {} event", m.reason),
        Anchor::Written { objects, path, equals, nth, .. } => {
            let v = equals.as_deref().map_or(String::new(), |v| format!("={v:?}"));
            format!("write {nth} of {} with {path}{v}", objects.describe())
        }
    }
}

/// How often an anchor not yet seen is looked for (its instant itself is exact).
const ANCHOR_POLL: Duration = Duration::from_millis(100);

/// Samples every expectation at its times until `duration`; also moves the progress bar
/// and lets madsim drop finished tasks' bookkeeping once a simulated second.
async fn run_checks(
    checks: Vec<Check>,
    sink: Arc<Mutex<TraceSink>>,
    duration: SimTime,
    bar: Option<Ticker>,
) -> Vec<Option<CheckResult>> {
    let mut results: Vec<Option<CheckResult>> = vec![None; checks.len()];
    let mut held_since: Vec<Option<SimTime>> = vec![None; checks.len()];
    // Each check's origin: the start, or its anchor's instant once seen.
    let mut base: Vec<Option<SimTime>> = vec![None; checks.len()];
    let mut agenda: BTreeMap<(SimTime, u8, usize), Job> = BTreeMap::new();
    for (i, c) in checks.iter().enumerate() {
        if c.since.is_some() {
            agenda.insert((SimTime::ZERO, 0, i), Job::Anchor(i));
        } else {
            base[i] = Some(SimTime::ZERO);
            agenda.insert((start_of(&c.timing, SimTime::ZERO), 1, i), Job::Check(i));
        }
    }
    agenda.insert((SimTime::ZERO, 2, 0), Job::Tick);
    while let Some(((t, _, _), job)) = agenda.pop_first() {
        if t > duration {
            break;
        }
        sleep_until(t).await;
        match job {
            Job::Anchor(i) => {
                let Some(anchor) = &checks[i].since else { continue };
                let seen = anchor_time(anchor, &sink.lock().expect("trace lock"));
                match seen {
                    Some(a) => {
                        base[i] = Some(a);
                        let start = start_of(&checks[i].timing, a).max(now());
                        agenda.insert((start, 1, i), Job::Check(i));
                    }
                    None => {
                        agenda.insert((now() + ANCHOR_POLL, 0, i), Job::Anchor(i));
                    }
                }
            }
            Job::Check(i) => {
                let c = &checks[i];
                let origin = base[i].unwrap_or(SimTime::ZERO);
                let (ok, observed) = {
                    let sink = sink.lock().expect("trace lock");
                    evaluate(&c.condition, &sink)
                };
                let since = |t: SimTime| match &c.since {
                    None => format!("{t}"),
                    Some(_) => format!(
                        "{t} ({} after {origin})",
                        kubesim_model::time::go_duration(t.saturating_sub(origin))
                    ),
                };
                match c.timing {
                    Timing::At(_) => {
                        results[i] = Some(CheckResult {
                            name: c.name.clone(),
                            passed: ok,
                            detail: format!("at {}: observed {observed}", since(now())),
                        })
                    }
                    Timing::Within { from, until, hold } => {
                        let (from, until) = (origin + from.as_duration(), origin + until.as_duration());
                        let tn = now();
                        if tn > until {
                            // Sampling starts once the workloads are applied: a window
                            // that closed before then was never observed.
                            results[i] = Some(CheckResult {
                                name: c.name.clone(),
                                passed: false,
                                detail: format!(
                                    "never sampled: the window {from}..{until} closed before the first sample at {tn} (expectations are sampled once the workloads are applied; give a later `after` or a longer `within`)"
                                ),
                            });
                            continue;
                        }
                        let held_from = if ok { *held_since[i].get_or_insert(tn) } else { tn };
                        if !ok {
                            held_since[i] = None;
                        }
                        let held = ok && hold.is_none_or(|h| tn.saturating_sub(held_from) >= h);
                        if held {
                            let how = match hold {
                                Some(h) => format!(
                                    "held from {} for {}",
                                    since(held_from),
                                    kubesim_model::time::go_duration(h)
                                ),
                                None => format!("held at {}", since(tn)),
                            };
                            results[i] = Some(CheckResult {
                                name: c.name.clone(),
                                passed: true,
                                detail: format!("{how} (window {from}..{until}): {observed}"),
                            });
                        } else if tn >= until {
                            results[i] = Some(CheckResult {
                                name: c.name.clone(),
                                passed: false,
                                detail: format!("never held in {from}..{until}; last observed {observed}"),
                            });
                        } else {
                            // Poll every 1/1000 of the window, between 100 ms and 1 s of
                            // simulated time: fine enough for the tolerances scenarios
                            // state, and cheap on long windows.
                            let mut step = (until.saturating_sub(from) / 1000)
                                .clamp(Duration::from_millis(100), Duration::from_secs(1));
                            if hold.is_some() {
                                step = Duration::from_millis(100);
                            }
                            let next = (tn + step).min(until);
                            agenda.insert((next, 1, i), Job::Check(i));
                        }
                    }
                }
            }
            Job::Tick => {
                if let Some(b) = &bar {
                    let running = b.collector.lock().expect("metrics lock").running();
                    b.progress.publish(now(), running);
                }
                kubesim_sim::prune_tasks();
                agenda.insert((now() + Duration::from_secs(1), 2, 0), Job::Tick);
            }
        }
    }
    for (i, c) in checks.iter().enumerate() {
        if let (None, Some(a)) = (&results[i], &c.since) {
            if base[i].is_none() {
                results[i] = Some(CheckResult {
                    name: c.name.clone(),
                    passed: false,
                    detail: format!("never checked: {} never happened by {duration}", describe_anchor(a)),
                });
            }
        }
    }
    results
}

/// When a timing's first check runs, counted from `origin`.
fn start_of(timing: &Timing, origin: SimTime) -> SimTime {
    match timing {
        Timing::At(t) => origin + t.as_duration(),
        Timing::Within { from, .. } => origin + from.as_duration(),
    }
}

enum Job {
    Anchor(usize),
    Check(usize),
    Tick,
}

/// What the checker's once-a-second tick publishes for the progress display.
#[derive(Clone)]
struct Ticker {
    progress: Arc<crate::progress::ProgressState>,
    collector: Arc<Mutex<crate::metrics::Collector>>,
}

/// Waits until the API server answers (it starts with the control-plane host).
async fn wait_for_api(world: &World) {
    for _ in 0..60 {
        if world.api(ApiRequest::Get(ObjectKey::new(Kind::Namespace, "", "default"))).await.is_ok() {
            return;
        }
        kubesim_sim::sleep_until(now() + Duration::from_millis(500)).await;
    }
}

/// One API call from the scenario's kubectl, through the load-balanced endpoint or, with
/// `via`, through one control-plane host's API server.
async fn call(world: &World, via: Option<&str>, req: ApiRequest) -> ApiResult {
    match via {
        Some(host) => world.api_via(host, req).await,
        None => world.api(req).await,
    }
}

/// `kubectl apply`, simplified: create, or replace the spec of what exists.
async fn apply(world: &World, via: Option<&str>, mut obj: Object) -> Result<(), String> {
    // kubectl sends its context's namespace: a manifest without one updates the object
    // in `default`, not a key with no namespace.
    if obj.kind().namespaced() && obj.meta().namespace.is_empty() {
        obj.meta_mut().namespace = "default".into();
    }
    match call(world, via, ApiRequest::Create(obj.clone())).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_already_exists() => {
            for _ in 0..5 {
                let current = call(world, via, ApiRequest::Get(obj.key())).await.map_err(|e| e.message)?;
                let mut next = obj.clone();
                next.meta_mut().resource_version = current.meta().resource_version;
                match call(world, via, ApiRequest::Update(next)).await {
                    Ok(_) => return Ok(()),
                    Err(e) if e.is_conflict() => continue,
                    Err(e) => return Err(e.message),
                }
            }
            Err("gave up after 5 conflicts".into())
        }
        Err(e) => Err(e.message),
    }
}

/// Read-modify-write with retries on conflict, as `kubectl scale` / `cordon` do.
async fn modify(
    world: &World,
    via: Option<&str>,
    key: ObjectKey,
    f: impl Fn(&mut Object) -> Result<(), String>,
) -> ApiResult {
    let mut last = None;
    for _ in 0..10 {
        let current = call(world, via, ApiRequest::Get(key.clone())).await?;
        let mut next = (*current).clone();
        if let Err(msg) = f(&mut next) {
            return Err(kubesim_model::client::ApiError::invalid(key.kind, &key.name, &msg));
        }
        match call(world, via, ApiRequest::Update(next)).await {
            Err(e) if e.is_conflict() => last = Some(e),
            other => return other,
        }
    }
    Err(last.expect("ten conflicts"))
}

/// kubectl's DeploymentRollbacker (polymorphichelpers/rollback.go): the template of the
/// ReplicaSet with the revision (the previous one for 0) goes back into the Deployment,
/// without its pod-template-hash label, with that ReplicaSet's annotations but the
/// rollout bookkeeping ones. The ReplicaSets are read from the committed state, as
/// kubectl's LIST reads them.
async fn rollout_undo(
    world: &World,
    via: Option<&str>,
    key: &ObjectKey,
    to_revision: i64,
) -> Result<(), String> {
    use kubesim_model::controllers::deployment::{
        DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION,
        REVISION_HISTORY_ANNOTATION,
    };
    // rollback.go annotationsToSkip.
    const SKIP: [&str; 6] = [
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION_ANNOTATION,
        REVISION_HISTORY_ANNOTATION,
        DESIRED_REPLICAS_ANNOTATION,
        MAX_REPLICAS_ANNOTATION,
        "deprecated.deployment.rollback.to",
    ];
    let current = call(world, via, ApiRequest::Get(key.clone())).await.map_err(|e| e.message)?;
    let Some(d) = current.as_deployment() else { return Err(format!("{key} is not a Deployment")) };
    if d.spec.paused {
        return Err("you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again".into());
    }
    let uid = d.metadata.uid.clone();
    let rss: Vec<kubesim_model::api::ReplicaSet> =
        world.state(|c| c.controlled_by(&uid).filter_map(|o| o.as_replica_set().cloned()).collect());
    let revision = |r: &kubesim_model::api::ReplicaSet| {
        r.metadata.annotations.get(REVISION_ANNOTATION).and_then(|v| v.parse::<i64>().ok())
    };
    // deploymentRevision: the given revision, or the second newest.
    let target = if to_revision > 0 {
        rss.iter()
            .find(|r| revision(r) == Some(to_revision))
            .ok_or_else(|| format!("unable to find specified revision {to_revision} in history"))?
    } else {
        let mut by_rev: Vec<(i64, &kubesim_model::api::ReplicaSet)> =
            rss.iter().filter_map(|r| revision(r).map(|v| (v, r))).collect();
        by_rev.sort_by_key(|(v, _)| *v);
        match by_rev.len() {
            0 | 1 => return Err(format!("no rollout history found for deployment {:?}", key.name)),
            n => by_rev[n - 2].1,
        }
    };
    let mut template = target.spec.template.clone();
    template.metadata.labels.remove(POD_TEMPLATE_HASH_LABEL);
    if template == d.spec.template {
        // rollbackSkipped: nothing to write.
        return Ok(());
    }
    let annotations: Vec<(String, String)> = target
        .metadata
        .annotations
        .iter()
        .filter(|(k, _)| !SKIP.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    modify(world, via, key.clone(), move |o| match o {
        Object::Deployment(d) => {
            d.spec.template = template.clone();
            d.metadata.annotations.extend(annotations.iter().cloned());
            Ok(())
        }
        _ => Err("not a Deployment".into()),
    })
    .await
    .map(|_| ())
    .map_err(|e| e.message)
}

async fn do_step(world: &mut World, step: &Step, via: Option<&str>) -> Result<(), String> {
    // etcdctl commands record their action with what they did (the revision compacted,
    // the members' sizes after defragmenting) or why they failed.
    let etcdctl = match step {
        Step::EtcdCompact => Some(world.etcd_compact().await),
        Step::EtcdDefrag => Some(world.etcd_defrag().await),
        Step::EtcdAlarmDisarm => Some(world.etcd_alarm_disarm().await),
        _ => None,
    };
    if let Some(result) = etcdctl {
        let (action, _) = step.describe();
        world.action(&action, result.as_ref().unwrap_or_else(|e| e));
        return result.map(|_| ());
    }
    let (action, detail) = step.describe();
    world.action(&action, &detail);
    match step {
        Step::Apply(objs) => {
            for o in objs {
                apply(world, via, o.clone()).await?;
            }
            Ok(())
        }
        Step::Delete(key, grace) => call(
            world,
            via,
            ApiRequest::Delete { key: key.clone(), grace_period_seconds: *grace, precondition_uid: None },
        )
        .await
        .map(|_| ())
        .map_err(|e| e.message),
        Step::Scale { key, replicas } => {
            let r = *replicas;
            modify(world, via, key.clone(), move |o| match o {
                Object::Deployment(d) => {
                    d.spec.replicas = Some(r);
                    Ok(())
                }
                Object::ReplicaSet(rs) => {
                    rs.spec.replicas = Some(r);
                    Ok(())
                }
                Object::StatefulSet(s) => {
                    s.spec.replicas = Some(r);
                    Ok(())
                }
                Object::ReplicationController(rc) => {
                    rc.spec.replicas = Some(r);
                    Ok(())
                }
                _ => {
                    Err("only Deployments, ReplicaSets, StatefulSets and ReplicationControllers scale".into())
                }
            })
            .await
            .map(|_| ())
            .map_err(|e| e.message)
        }
        Step::RolloutUndo { key, to_revision } => rollout_undo(world, via, key, *to_revision).await,
        Step::Label { key, set, remove, overwrite } => {
            // kubectl label.go validateNoOverwrites: a new value for an existing label
            // needs --overwrite (checked against the object kubectl reads first).
            if !*overwrite {
                let current = call(world, via, ApiRequest::Get(key.clone())).await.map_err(|e| e.message)?;
                let labels = &current.meta().labels;
                let errs: Vec<String> = set
                    .iter()
                    .filter_map(|(k, v)| labels.get(k).filter(|c| *c != v).map(|c| (k, c)))
                    .map(|(k, c)| format!("'{k}' already has a value ({c}), and --overwrite is false"))
                    .collect();
                if !errs.is_empty() {
                    return Err(errs.join(", "));
                }
            }
            let (set, remove) = (set.clone(), remove.clone());
            modify(world, via, key.clone(), move |o| {
                let m = o.meta_mut();
                m.labels.extend(set.clone());
                for k in &remove {
                    m.labels.remove(k);
                }
                Ok(())
            })
            .await
            .map(|_| ())
            .map_err(|e| e.message)
        }
        Step::Cordon { node, unschedulable } => {
            let u = *unschedulable;
            modify(world, via, ObjectKey::new(Kind::Node, "", node.clone()), move |o| match o {
                Object::Node(n) => {
                    n.spec.unschedulable = u;
                    Ok(())
                }
                _ => Err("not a node".into()),
            })
            .await
            .map(|_| ())
            .map_err(|e| e.message)
        }
        Step::AddWorkers(workers) => {
            for w in workers {
                world.add_worker(w.clone());
            }
            Ok(())
        }
        Step::RemoveNode(node) => {
            let key = ObjectKey::new(Kind::Node, "", node.clone());
            let res = call(
                world,
                via,
                ApiRequest::Delete { key, grace_period_seconds: None, precondition_uid: None },
            )
            .await;
            world.kill_host(node)?;
            res.map(|_| ()).map_err(|e| e.message)
        }
        Step::Taint { node, key, value, effect, add } => {
            let (key, value, effect, add) = (key.clone(), value.clone(), *effect, *add);
            modify(world, via, ObjectKey::new(Kind::Node, "", node.clone()), move |o| match o {
                Object::Node(n) => {
                    n.spec.taints.retain(|t| t.key != key || effect.is_some_and(|e| e != t.effect));
                    if add {
                        let effect = effect.ok_or("a taint needs an effect")?;
                        n.spec.taints.push(Taint {
                            key: key.clone(),
                            value: value.clone(),
                            effect,
                            time_added: None,
                        });
                    }
                    Ok(())
                }
                _ => Err("not a node".into()),
            })
            .await
            .map(|_| ())
            .map_err(|e| e.message)
        }
        Step::Fault(f) => f.apply(world),
        // Drains run from the timeline loop, which keeps their retries.
        Step::Drain(d) => d.start(world, via).await.0,
        Step::EtcdCompact | Step::EtcdDefrag | Step::EtcdAlarmDisarm => unreachable!("handled above"),
    }
}

/// Evaluates a condition against the committed state: (holds, what was observed).
pub fn evaluate(cond: &Condition, sink: &TraceSink) -> (bool, String) {
    let (state, leaders) = (sink.state(), sink.leaders());
    match cond {
        Condition::Written { objects, path, equals, absent, compare, tracker } => {
            let w = tracker.as_ref().map(|t| t.lock().expect("tracker lock").clone()).unwrap_or_default();
            let want = equals.as_deref().map_or("present".to_string(), |v| format!("{v:?}"));
            let what = format!("{} with {path}={want}", objects.describe());
            if let Some(c) = compare {
                let n = w.became.len() as i64;
                return (c.holds(n), format!("{what} written {n} times"));
            }
            match w.first {
                Some(t) => (!absent, format!("{what} written at {t}")),
                None => (*absent, format!("no write of {what} yet")),
            }
        }
        Condition::PodCount { phase, terminating, ready, node, namespace, selector, compare } => {
            let n = state
                .list(Kind::Pod)
                .filter_map(|o| o.as_pod())
                .filter(|p| phase.is_none_or(|ph| p.phase() == ph))
                .filter(|p| terminating.is_none_or(|t| p.metadata.deletion_timestamp.is_some() == t))
                .filter(|p| ready.is_none_or(|r| p.is_ready() == r))
                .filter(|p| node.as_ref().is_none_or(|n| p.spec.node_name == *n))
                .filter(|p| namespace.as_ref().is_none_or(|ns| p.metadata.namespace == *ns))
                .filter(|p| selector.as_ref().is_none_or(|s| s.matches(&p.metadata.labels)))
                .count() as i64;
            (compare.holds(n), format!("{n} pods"))
        }
        Condition::Field { objects, path, equals } => {
            let found = objects.select(state);
            let values: Vec<(String, Option<String>)> = found
                .iter()
                .map(|o| {
                    let v = crate::scenario::lookup_path(&o.to_json_value(), path);
                    (o.meta().name.clone(), v.as_ref().map(render))
                })
                .collect();
            let ok = match equals.as_deref() {
                None => values.iter().all(|(_, v)| v.is_none()),
                Some(ANY_VALUE) => !values.is_empty() && values.iter().all(|(_, v)| v.is_some()),
                Some(want) => {
                    let same = |v: &str| match want.strip_prefix(PATTERN_PREFIX) {
                        Some(p) => kubesim_model::kubelet::behavior::glob(p, v),
                        None => v == want,
                    };
                    !values.is_empty() && values.iter().all(|(_, v)| v.as_deref().is_some_and(same))
                }
            };
            let one = |v: &Option<String>| match v {
                Some(v) => format!("{path}={v:?}"),
                None => format!("{path} absent"),
            };
            let observed = match values.as_slice() {
                [] => format!("{} does not exist", objects.describe()),
                [(_, v)] if objects.name.is_some() => one(v),
                many => many.iter().map(|(n, v)| format!("{n}: {}", one(v))).collect::<Vec<_>>().join(", "),
            };
            (ok, observed)
        }
        Condition::Event { matcher, absent, compare } => {
            let (times, observed) = find_event(state, matcher);
            match compare {
                Some(c) => (c.holds(times), format!("recorded {times} times: {observed}")),
                None => ((times > 0) != *absent, observed),
            }
        }
        Condition::NodeCount { taint, ready, compare } => {
            let n = state
                .list(Kind::Node)
                .filter_map(|o| o.as_node())
                .filter(|n| {
                    taint.as_ref().is_none_or(|(k, e)| {
                        n.spec.taints.iter().any(|t| t.key == *k && e.is_none_or(|e| e == t.effect))
                    })
                })
                .filter(|n| {
                    ready.as_ref().is_none_or(|r| {
                        let s = n.condition("Ready").map_or("Unknown", |c| match c.status {
                            kubesim_model::api::ConditionStatus::True => "True",
                            kubesim_model::api::ConditionStatus::False => "False",
                            kubesim_model::api::ConditionStatus::Unknown => "Unknown",
                        });
                        s == r
                    })
                })
                .count() as i64;
            (compare.holds(n), format!("{n} nodes"))
        }
        Condition::Leader { component, host, not_host, elected_after, absent } => {
            let Some(l) = leaders.iter().rev().find(|l| l.component == *component) else {
                return (*absent, format!("no {component} leader yet"));
            };
            let ok = host.as_ref().is_none_or(|h| l.host == *h)
                && not_host.as_ref().is_none_or(|h| l.host != *h)
                && elected_after.is_none_or(|t| l.t >= t);
            (ok != *absent, format!("{component} leader {} (term {}) since {}", l.host, l.term, l.t))
        }
        Condition::EtcdAlarm { alarm, host, absent } => {
            let raised = sink.nospace_alarms();
            let hit = match host {
                Some(h) => raised.contains(h),
                None => !raised.is_empty(),
            };
            let observed = if raised.is_empty() {
                format!("no {alarm} alarm raised")
            } else {
                format!("{alarm} raised on {}", raised.iter().cloned().collect::<Vec<_>>().join(", "))
            };
            (hit != *absent, observed)
        }
    }
}

/// How many times matching Events were recorded (their counts summed), and what was seen.
fn find_event(state: &Cache, m: &EventMatch) -> (i64, String) {
    let mut same_reason = Vec::new();
    let mut times = 0i64;
    let mut first = None;
    for e in state.list(Kind::Event).filter_map(|o| o.as_event()) {
        if e.reason != m.reason {
            continue;
        }
        if !m.matches(e) {
            same_reason.push(e.message.clone());
            continue;
        }
        times += e.count.max(1) as i64;
        first.get_or_insert_with(|| format!("{} {:?} (count {})", e.reason, e.message, e.count));
    }
    if let Some(f) = first {
        return (times, f);
    }
    if same_reason.is_empty() {
        (0, format!("no {} event", m.reason))
    } else {
        same_reason.sort();
        same_reason.dedup();
        same_reason.truncate(3);
        (0, format!("{} events with other messages or objects: {:?}", m.reason, same_reason))
    }
}

fn render(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Peak resident set size of this process (Linux `VmHWM`).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
