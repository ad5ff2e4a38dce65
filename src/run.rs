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
    Delete(ObjectKey),
    Scale {
        key: ObjectKey,
        replicas: i32,
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
}

impl Step {
    fn describe(&self) -> (String, String) {
        let names = |objs: &[Object]| objs.iter().map(|o| o.key().to_string()).collect::<Vec<_>>().join(" ");
        match self {
            Step::Apply(objs) => ("apply".into(), names(objs)),
            Step::Delete(k) => ("delete".into(), k.to_string()),
            Step::Scale { key, replicas } => ("scale".into(), format!("{key} --replicas={replicas}")),
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
}

/// `Condition::Field` with this `equals` holds for any present value (`exists: true`).
pub const ANY_VALUE: &str = "\u{0}any";

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
    Field {
        key: ObjectKey,
        path: String,
        /// `Some(v)`: the field renders as `v`. `None`: the field (or object) is absent.
        equals: Option<String>,
    },
    Event {
        reason: String,
        type_: Option<String>,
        message: Option<String>,
        /// `*` matches any text.
        message_pattern: Option<String>,
        /// Holds when no such event exists.
        absent: bool,
        involved: Option<(Kind, String, String)>,
    },
    /// Some committed write of the object had `path` rendering as `equals` (`None`: the
    /// field present) — transient states a sampled check could miss. `watch` is the trace
    /// sink's watch, registered when the run starts.
    Written { key: ObjectKey, path: String, equals: Option<String>, watch: Option<usize>, absent: bool },
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
}

#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
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
    pub timeline: Vec<TimedStep>,
    pub checks: Vec<Check>,
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
    pub step_errors: Vec<String>,
    pub peak_rss_bytes: Option<u64>,
    /// Every leader change (etcd, kube-controller-manager, kube-scheduler).
    pub leaders: Vec<kubesim_sim::Leadership>,
}

impl RunReport {
    pub fn all_passed(&self) -> bool {
        self.results.iter().all(|r| r.passed)
    }

    pub fn summary(&self) -> String {
        let mut s = String::new();
        s += &format!("scenario: {} (seed {})\n", self.name, self.seed);
        s += &format!("simulated time: {}\n", self.simulated);
        s += &format!("wall time: {:.3}s\n", self.wall.as_secs_f64());
        s += &format!("trace records: {} ({} committed writes)\n", self.records, self.writes);
        for e in &self.step_errors {
            s += &format!("timeline step failed: {e}\n");
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
        Some(p) => Some(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => None,
    };
    run_plan(plan, file, opts.progress)
}

/// Runs a plan on a fresh OS thread (madsim keeps per-thread state between runs).
pub fn run_plan(plan: Plan, trace_file: Option<std::fs::File>, progress: bool) -> Result<RunReport, String> {
    let started = std::time::Instant::now();
    let thread = std::thread::Builder::new()
        .name(format!("sim-{}", plan.name))
        .stack_size(64 << 20)
        .spawn(move || simulate_plan(plan, trace_file, progress))
        .map_err(|e| e.to_string())?;
    let mut report = thread.join().map_err(|_| "the simulation panicked (a kubesim bug)".to_string())??;
    report.wall = started.elapsed();
    report.peak_rss_bytes = peak_rss_bytes();
    Ok(report)
}

fn simulate_plan(plan: Plan, trace_file: Option<std::fs::File>, progress: bool) -> Result<RunReport, String> {
    let seed = plan.seed;
    simulate(seed, move || async move {
        let sink = Arc::new(Mutex::new(TraceSink::new(trace_file)));
        let mut plan = plan;
        for c in &mut plan.checks {
            if let Condition::Written { key, path, equals, watch, .. } = &mut c.condition {
                let (p, e) = (path.clone(), equals.clone());
                let matches = Box::new(move |o: &Object| {
                    let v = crate::scenario::lookup_path(&o.to_json_value(), &p);
                    match (&e, v) {
                        (None, v) => v.is_some(),
                        (Some(want), Some(v)) => render(&v) == *want,
                        (Some(_), None) => false,
                    }
                });
                *watch = Some(sink.lock().expect("trace lock").watch_writes(key.clone(), matches));
            }
        }
        let bar = progress_bar(progress, plan.duration);
        let mut world = World::start(plan.world.clone(), sink.clone()).await;
        let mut step_errors = Vec::new();
        wait_for_api(&world).await;
        for obj in &plan.workloads {
            if let Err(e) = apply(&world, None, obj.clone()).await {
                step_errors.push(format!("apply {} at {}: {e}", obj.key(), now()));
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
                (None, Err(e)) => step_errors.push(format!("{what}: {e}")),
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
        if let Some(b) = bar {
            b.finish_and_clear();
        }
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
        results.extend(step_checks);
        let mut sink = sink.lock().expect("trace lock");
        let trace_hash = sink.finish()?;
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
        })
    })
}

/// Samples every expectation at its times until `duration`; also moves the progress bar
/// and lets madsim drop finished tasks' bookkeeping once a simulated second.
async fn run_checks(
    checks: Vec<Check>,
    sink: Arc<Mutex<TraceSink>>,
    duration: SimTime,
    bar: Option<indicatif::ProgressBar>,
) -> Vec<Option<CheckResult>> {
    let mut results: Vec<Option<CheckResult>> = vec![None; checks.len()];
    let mut held_since: Vec<Option<SimTime>> = vec![None; checks.len()];
    let mut agenda: BTreeMap<(SimTime, u8, usize), Job> = BTreeMap::new();
    for (i, c) in checks.iter().enumerate() {
        let t = match c.timing {
            Timing::At(t) => t,
            Timing::Within { from, .. } => from,
        };
        agenda.insert((t, 1, i), Job::Check(i));
    }
    agenda.insert((SimTime::ZERO, 2, 0), Job::Tick);
    while let Some(((t, _, _), job)) = agenda.pop_first() {
        if t > duration {
            break;
        }
        sleep_until(t).await;
        match job {
            Job::Check(i) => {
                let c = &checks[i];
                let (ok, observed) = {
                    let sink = sink.lock().expect("trace lock");
                    evaluate(&c.condition, &sink)
                };
                match c.timing {
                    Timing::At(at) => {
                        results[i] = Some(CheckResult {
                            name: c.name.clone(),
                            passed: ok,
                            detail: format!("at {at}: observed {observed}"),
                        })
                    }
                    Timing::Within { from, until, hold } => {
                        let tn = now();
                        let since = if ok { *held_since[i].get_or_insert(tn) } else { tn };
                        if !ok {
                            held_since[i] = None;
                        }
                        let held = ok && hold.is_none_or(|h| tn.saturating_sub(since) >= h);
                        if held {
                            let how = match hold {
                                Some(h) => {
                                    format!("held from {since} for {}", kubesim_model::time::go_duration(h))
                                }
                                None => format!("held at {tn}"),
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
                    b.set_position(now().as_secs());
                }
                kubesim_sim::prune_tasks();
                agenda.insert((now() + Duration::from_secs(1), 2, 0), Job::Tick);
            }
        }
    }
    results
}

enum Job {
    Check(usize),
    Tick,
}

fn progress_bar(show: bool, duration: SimTime) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !show || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(duration.as_secs());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} simulated s ({per_sec})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    Some(bar)
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
async fn apply(world: &World, via: Option<&str>, obj: Object) -> Result<(), String> {
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

async fn do_step(world: &mut World, step: &Step, via: Option<&str>) -> Result<(), String> {
    let (action, detail) = step.describe();
    world.action(&action, &detail);
    match step {
        Step::Apply(objs) => {
            for o in objs {
                apply(world, via, o.clone()).await?;
            }
            Ok(())
        }
        Step::Delete(key) => call(
            world,
            via,
            ApiRequest::Delete { key: key.clone(), grace_period_seconds: None, precondition_uid: None },
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
                _ => Err("only Deployments and ReplicaSets scale".into()),
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
    }
}

/// Evaluates a condition against the committed state: (holds, what was observed).
pub fn evaluate(cond: &Condition, sink: &TraceSink) -> (bool, String) {
    let (state, leaders) = (sink.state(), sink.leaders());
    match cond {
        Condition::Written { key, path, equals, watch, absent } => {
            let at = watch.and_then(|w| sink.write_matched_at(w));
            let want = equals.as_deref().map_or("present".to_string(), |v| format!("{v:?}"));
            match at {
                Some(t) => (!absent, format!("{key} written with {path}={want} at {t}")),
                None => (*absent, format!("no write of {key} with {path}={want} yet")),
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
            let ok = match compare {
                Compare::Equals(v) => n == *v,
                Compare::AtLeast(v) => n >= *v,
                Compare::AtMost(v) => n <= *v,
            };
            (ok, format!("{n} pods"))
        }
        Condition::Field { key, path, equals } => {
            let value = state.get(key).and_then(|o| crate::scenario::lookup_path(&o.to_json_value(), path));
            let rendered = value.as_ref().map(render);
            let ok = match equals.as_deref() {
                Some(ANY_VALUE) => rendered.is_some(),
                _ => rendered == *equals,
            };
            let observed = match (&rendered, state.get(key)) {
                (Some(v), _) => format!("{path}={v:?}"),
                (None, Some(_)) => format!("{path} absent"),
                (None, None) => format!("{key} does not exist"),
            };
            (ok, observed)
        }
        Condition::Event { reason, type_, message, message_pattern, absent, involved } => {
            let (found, observed) = find_event(state, reason, type_, message, message_pattern, involved);
            (found != *absent, observed)
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
            let ok = match compare {
                Compare::Equals(v) => n == *v,
                Compare::AtLeast(v) => n >= *v,
                Compare::AtMost(v) => n <= *v,
            };
            (ok, format!("{n} nodes"))
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
    }
}

fn find_event(
    state: &Cache,
    reason: &str,
    type_: &Option<String>,
    message: &Option<String>,
    pattern: &Option<String>,
    involved: &Option<(Kind, String, String)>,
) -> (bool, String) {
    let mut same_reason = Vec::new();
    for e in state.list(Kind::Event).filter_map(|o| o.as_event()) {
        if e.reason != reason {
            continue;
        }
        if let Some((k, name, ns)) = involved {
            let io = &e.involved_object;
            if io.kind != k.as_str() || io.name != *name || (!ns.is_empty() && io.namespace != *ns) {
                continue;
            }
        }
        if type_.as_ref().is_some_and(|t| e.type_ != *t) {
            continue;
        }
        let mismatch = message.as_ref().is_some_and(|m| e.message != *m)
            || pattern.as_ref().is_some_and(|p| !kubesim_model::kubelet::behavior::glob(p, &e.message));
        if mismatch {
            same_reason.push(e.message.clone());
            continue;
        }
        return (true, format!("{} {:?} (count {})", e.reason, e.message, e.count));
    }
    if same_reason.is_empty() {
        (false, format!("no {reason} event"))
    } else {
        same_reason.dedup();
        (false, format!("{reason} events with other messages: {:?}", same_reason))
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
