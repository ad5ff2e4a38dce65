//! `kubesim fuzz SCENARIO.yaml...`: many seeds of whole simulated clusters, in-process, on
//! `--jobs` threads (each run on a fresh thread of its own, as every simulation). Without
//! faults it is a seed sweep of the scenario's own expectations; with `--faults swarm`
//! each seed draws a swarm schedule (kubesim_faults::swarm) and the cluster invariants are
//! checked instead. A failing seed's schedule is shrunk (faults dropped while it still
//! fails the same way) and written as a scenario under `--out` with its replay command.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kubesim_faults::swarm::{self, SwarmOptions, Targets};
use kubesim_faults::Fault;
use kubesim_model::time::SimTime;

use crate::run::{run_plan, Plan, RunReport, Step, TimedStep};

/// What to run.
#[derive(Clone, Debug)]
pub struct FuzzOptions {
    pub scenarios: Vec<PathBuf>,
    pub seeds: Vec<u64>,
    pub jobs: usize,
    pub swarm: bool,
    pub time_budget: Option<Duration>,
    pub junit: Option<PathBuf>,
    pub out: PathBuf,
    /// Test-only: run with the planted scheduler taint bug.
    pub planted_ignore_taints: bool,
    pub quiet: bool,
}

/// One seed's result.
#[derive(Clone, Debug)]
pub struct SeedResult {
    pub scenario: String,
    pub seed: u64,
    pub wall: Duration,
    pub failure: Option<(String, String)>,
    pub options: Option<String>,
    pub replay: Option<String>,
}

/// The whole run.
pub struct FuzzSummary {
    pub results: Vec<SeedResult>,
    pub wall: Duration,
    pub text: String,
}

impl FuzzSummary {
    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| r.failure.is_some()).count()
    }
}

/// Parses `A..B` (inclusive of A, exclusive of B, as Rust ranges) into seeds.
pub fn parse_seed_range(s: &str) -> Result<Vec<u64>, String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("--seed-range {s:?}: want A..B, e.g. 1..1001"))?;
    let (a, b): (u64, u64) = (
        a.trim().parse().map_err(|_| format!("--seed-range {s:?}: {a:?} is not a seed"))?,
        b.trim().parse().map_err(|_| format!("--seed-range {s:?}: {b:?} is not a seed"))?,
    );
    if b <= a {
        return Err(format!("--seed-range {s:?}: the range is empty"));
    }
    Ok((a..b).collect())
}

/// Parses `I/N` (0-based I, as a Kubernetes Indexed Job's JOB_COMPLETION_INDEX).
pub fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("--shard {s:?}: want I/N, e.g. 0/4"))?;
    let (i, n): (u64, u64) = (
        i.parse().map_err(|_| format!("--shard {s:?}: {i:?} is not a number"))?,
        n.parse().map_err(|_| format!("--shard {s:?}: {n:?} is not a number"))?,
    );
    if n == 0 || i >= n {
        return Err(format!("--shard {s:?}: want 0 <= I < N"));
    }
    Ok((i, n))
}

struct Prepared {
    name: String,
    path: PathBuf,
    text: String,
    plan: Plan,
    targets: Targets,
}

fn prepare(path: &Path) -> Result<Prepared, String> {
    let loaded = crate::scenario::load(path).map_err(|e| e.to_string())?;
    let plan = crate::plan::from_scenario(&loaded.scenario).map_err(|e| e.to_string())?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let targets = Targets {
        control_plane: (1..=plan.world.control_plane_hosts).map(|i| format!("cp-{i}")).collect(),
        workers: plan.world.workers.iter().map(|w| w.kubelet.node_name.clone()).collect(),
    };
    let name = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    Ok(Prepared { name, path: path.to_path_buf(), text, plan, targets })
}

/// Where swarm faults may fire: after bring-up, and early enough that the liveness bound
/// ends before the scenario does.
fn swarm_window(duration: SimTime) -> Option<(SimTime, SimTime)> {
    let from = SimTime::from_secs(30);
    let until = SimTime(duration.as_millis().saturating_sub(
        (kubesim_faults::invariants::liveness::LIVENESS_BOUND + Duration::from_secs(10)).as_millis() as u64,
    ));
    (until > from + Duration::from_secs(30)).then_some((from, until))
}

/// The plan of one seed with `faults` merged into its timeline.
fn plan_with(p: &Prepared, seed: u64, faults: Option<&[(SimTime, Fault)]>, planted: bool) -> Plan {
    let mut plan = p.plan.clone();
    plan.seed = seed;
    plan.world.seed = seed;
    plan.planted_ignore_taints = planted;
    if let Some(faults) = faults {
        plan.checks.clear();
        for (t, f) in faults {
            plan.timeline.push(TimedStep {
                at: *t,
                step: Step::Fault(f.clone()),
                via: None,
                expect_error: None,
            });
        }
        plan.timeline.sort_by_key(|s| s.at);
        let last = faults.iter().map(|(t, _)| *t).max().unwrap_or(SimTime::ZERO);
        plan.invariants = Some(plan.invariants.map_or(last, |x| x.max(last)));
    }
    plan
}

fn run_one(
    p: &Prepared,
    seed: u64,
    faults: Option<&[(SimTime, Fault)]>,
    planted: bool,
) -> Result<RunReport, String> {
    let mut plan = plan_with(p, seed, faults, planted);
    plan.hash_trace = false;
    run_plan(plan, None, false)
}

/// Drops faults while the run still fails with the same invariant (or expectation),
/// first from the end: a minimal schedule that replays the failure.
fn shrink(
    p: &Prepared,
    seed: u64,
    faults: &[(SimTime, Fault)],
    want: &str,
    planted: bool,
) -> Vec<(SimTime, Fault)> {
    let mut cur = faults.to_vec();
    let mut budget = 40;
    let mut i = cur.len();
    while i > 0 && budget > 0 {
        i -= 1;
        // Keep the final heal: liveness is only checked after it.
        if i + 1 == cur.len() && matches!(cur[i].1, Fault::Heal) {
            continue;
        }
        let mut cand = cur.clone();
        cand.remove(i);
        budget -= 1;
        if let Ok(r) = run_one(p, seed, Some(&cand), planted) {
            if r.first_failure().is_some_and(|(what, _)| what == want) {
                cur = cand;
            }
        }
    }
    cur
}

/// Writes the repro scenario: the original file with the seed, the kept faults in its
/// timeline, the drawn options written out, and paths made relative to the new file.
fn write_repro(
    p: &Prepared,
    seed: u64,
    faults: Option<&[(SimTime, Fault)]>,
    options: Option<&SwarmOptions>,
    out: &Path,
) -> Result<PathBuf, String> {
    use serde_yaml::Value;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut doc: Value = serde_yaml::from_str(&p.text).map_err(|e| e.to_string())?;
    let base = p.path.parent().map(Path::to_path_buf).unwrap_or_default();
    let out_abs = std::fs::canonicalize(out).unwrap_or_else(|_| out.to_path_buf());
    rebase_paths(&mut doc, &base, &out_abs);
    let m = doc.as_mapping_mut().ok_or("the scenario is not a mapping")?;
    m.insert("seed".into(), Value::from(seed));
    if let Some(faults) = faults {
        m.remove("expectations");
        m.insert("invariants".into(), Value::from(true));
        if let Some(o) = options {
            let mut sw = serde_yaml::Mapping::new();
            sw.insert("drawnFromSeed".into(), Value::from(seed));
            sw.insert("options".into(), Value::from(o.describe()));
            m.insert("swarm".into(), Value::Mapping(sw));
        }
        let mut timeline = match m.remove("timeline") {
            Some(Value::Sequence(s)) => s,
            _ => Vec::new(),
        };
        for (t, f) in faults {
            let mut entry = serde_yaml::Mapping::new();
            entry.insert("at".into(), Value::from(kubesim_model::time::go_duration(t.as_duration())));
            let fv = serde_yaml::to_value(f).map_err(|e| e.to_string())?;
            if let Value::Mapping(fm) = fv {
                for (k, v) in fm {
                    entry.insert(k, v);
                }
            }
            timeline.push(Value::Mapping(entry));
        }
        let at = |v: &Value| {
            v.get("at")
                .and_then(|a| a.as_str())
                .and_then(|a| crate::scenario::parse_duration(a).ok())
                .unwrap_or_default()
        };
        timeline.sort_by_key(at);
        m.insert("timeline".into(), Value::Sequence(timeline));
    }
    let file = out.join(format!("{}-seed{seed}.yaml", p.name));
    let header = format!(
        "# kubesim fuzz repro: {} seed {seed}. Replay: kubesim run {} --seed {seed}\n",
        p.path.display(),
        file.display()
    );
    let body = serde_yaml::to_string(&doc).map_err(|e| e.to_string())?;
    std::fs::write(&file, header + &body).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(file)
}

/// Rewrites every `path:` string (manifest files) from `base` to be relative to `to`.
fn rebase_paths(v: &mut serde_yaml::Value, base: &Path, to: &Path) {
    use serde_yaml::Value;
    match v {
        Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                if k.as_str() == Some("path") {
                    if let Value::String(s) = val {
                        let abs = std::fs::canonicalize(base.join(&*s)).unwrap_or_else(|_| base.join(&*s));
                        *s = relative(&abs, to).display().to_string();
                        continue;
                    }
                }
                rebase_paths(val, base, to);
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(|x| rebase_paths(x, base, to)),
        _ => {}
    }
}

fn relative(path: &Path, from: &Path) -> PathBuf {
    let (p, f): (Vec<_>, Vec<_>) = (path.components().collect(), from.components().collect());
    let common = p.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    out
}

fn fuzz_seed(p: &Prepared, seed: u64, opts: &FuzzOptions) -> Result<SeedResult, String> {
    let started = Instant::now();
    let drawn = if opts.swarm {
        let (from, until) = swarm_window(p.plan.duration).ok_or_else(|| {
            format!(
                "{}: duration {} is too short for swarm faults and the {} s liveness bound after them",
                p.path.display(),
                p.plan.duration,
                kubesim_faults::invariants::liveness::LIVENESS_BOUND.as_secs()
            )
        })?;
        Some(swarm::draw(seed, &p.targets, from, until))
    } else {
        None
    };
    let faults = drawn.as_ref().map(|(_, f)| f.as_slice());
    let report = run_one(p, seed, faults, opts.planted_ignore_taints)?;
    let mut result = SeedResult {
        scenario: p.name.clone(),
        seed,
        wall: Duration::ZERO,
        // Under swarm faults only the invariants judge a seed: the faults change the
        // scenario's story, so its expectations are dropped and its own steps may fail.
        failure: if faults.is_some() {
            report.violations.first().map(|v| (v.invariant.to_string(), v.to_string()))
        } else {
            report.first_failure()
        },
        options: drawn.as_ref().map(|(o, _)| o.describe()),
        replay: None,
    };
    if let Some((what, _)) = &result.failure {
        let kept = faults.map(|f| shrink(p, seed, f, what, opts.planted_ignore_taints));
        let file = write_repro(p, seed, kept.as_deref(), drawn.as_ref().map(|(o, _)| o), &opts.out)?;
        result.replay = Some(format!("kubesim run {} --seed {seed}", file.display()));
    }
    result.wall = started.elapsed();
    Ok(result)
}

/// Runs the fuzz. `Err` is bad input (exit 2).
pub fn fuzz_scenarios(opts: &FuzzOptions) -> Result<FuzzSummary, String> {
    if opts.scenarios.is_empty() {
        return Err("name at least one scenario file (or `etcd`)".into());
    }
    if opts.jobs == 0 {
        return Err("--jobs 0: want at least 1".into());
    }
    let prepared: Vec<Arc<Prepared>> =
        opts.scenarios.iter().map(|p| prepare(p).map(Arc::new)).collect::<Result<_, _>>()?;
    if opts.swarm {
        for p in &prepared {
            if swarm_window(p.plan.duration).is_none() {
                return Err(format!(
                    "{}: duration {} is too short for swarm faults: it needs 60 s of faults and the {} s liveness bound",
                    p.path.display(),
                    p.plan.duration,
                    kubesim_faults::invariants::liveness::LIVENESS_BOUND.as_secs()
                ));
            }
        }
    }
    let work: Vec<(Arc<Prepared>, u64)> =
        prepared.iter().flat_map(|p| opts.seeds.iter().map(move |s| (p.clone(), *s))).collect();
    let total = work.len();
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let results: Arc<Mutex<Vec<SeedResult>>> = Arc::default();
    let errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let started = Instant::now();
    let work = Arc::new(work);
    let mut handles = Vec::new();
    for _ in 0..opts.jobs.min(total.max(1)) {
        let (work, next, done, results, errors, opts) =
            (work.clone(), next.clone(), done.clone(), results.clone(), errors.clone(), opts.clone());
        handles.push(std::thread::spawn(move || loop {
            if opts.time_budget.is_some_and(|b| started.elapsed() >= b) {
                return;
            }
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some((p, seed)) = work.get(i) else { return };
            match fuzz_seed(p, *seed, &opts) {
                Ok(r) => results.lock().expect("results lock").push(r),
                Err(e) => errors.lock().expect("errors lock").push(e),
            }
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    let mut last_report = Instant::now();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    while handles.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        let every = if tty { Duration::from_secs(1) } else { Duration::from_secs(10) };
        if !opts.quiet && last_report.elapsed() >= every {
            last_report = Instant::now();
            let d = done.load(Ordering::SeqCst);
            let failed = results.lock().expect("results lock").iter().filter(|r| r.failure.is_some()).count();
            let end = if tty { "\r" } else { "\n" };
            eprint!("{d}/{total} seeds, {failed} failed, {:.0}s{end}", started.elapsed().as_secs_f64());
        }
    }
    for h in handles {
        let _ = h.join();
    }
    if let Some(e) = errors.lock().expect("errors lock").first() {
        return Err(e.clone());
    }
    let mut results = std::mem::take(&mut *results.lock().expect("results lock"));
    results.sort_by(|a, b| (&a.scenario, a.seed).cmp(&(&b.scenario, b.seed)));
    let wall = started.elapsed();
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    let per_min = results.len() as f64 / wall.as_secs_f64().max(1e-9) * 60.0;
    let mut text = String::new();
    for r in results.iter().filter(|r| r.failure.is_some()) {
        if let Some(o) = &r.options {
            text += &format!("{} seed {}: swarm {o}\n", r.scenario, r.seed);
        }
        if let Some((_, detail)) = &r.failure {
            text += &format!("FAIL {} seed {}: {detail}\n", r.scenario, r.seed);
        }
        if let Some(replay) = &r.replay {
            text += &format!("  replay: {replay}\n");
        }
    }
    text += &format!("{} seeds, {failed} failed, {per_min:.0} seeds/min\n", results.len());
    let summary = FuzzSummary { results, wall, text };
    if let Some(j) = &opts.junit {
        std::fs::write(j, junit(&summary)).map_err(|e| format!("--junit {}: {e}", j.display()))?;
    }
    Ok(summary)
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// JUnit XML: one testcase per seed; a failure names the invariant and the replay line.
pub fn junit(s: &FuzzSummary) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out += &format!(
        "<testsuites tests=\"{}\" failures=\"{}\" time=\"{:.3}\">\n<testsuite name=\"kubesim fuzz\" tests=\"{}\" failures=\"{}\">\n",
        s.results.len(),
        s.failed(),
        s.wall.as_secs_f64(),
        s.results.len(),
        s.failed()
    );
    for r in &s.results {
        out += &format!(
            "  <testcase classname=\"{}\" name=\"seed {}\" time=\"{:.3}\"",
            xml(&r.scenario),
            r.seed,
            r.wall.as_secs_f64()
        );
        match &r.failure {
            None => out += "/>\n",
            Some((what, detail)) => {
                let replay = r.replay.clone().unwrap_or_default();
                out += &format!(
                    ">\n    <failure message=\"{}\">{}\nreplay: {}</failure>\n  </testcase>\n",
                    xml(what),
                    xml(detail),
                    xml(&replay)
                );
            }
        }
    }
    out += "</testsuite>\n</testsuites>\n";
    out
}
