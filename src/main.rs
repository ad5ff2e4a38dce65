//! The `kubesim` command line.
//!
//! Exit codes: 0 when the run (or query) succeeded and every expectation held; 1 when an
//! expectation failed; 2 on bad input (a scenario, trace or argument that cannot be used).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use kubesim::kubectl::{self, OutputFormat};
use kubesim::run::{self, RunOptions};
use kubesim_model::api::Kind;
use kubesim_model::time::SimTime;

#[derive(Parser)]
#[command(name = "kubesim", version, about = "Deterministic Kubernetes cluster simulator and test harness")]
#[command(
    long_about = "Runs Kubernetes control-plane logic (etcd, API server, scheduler, controllers, kubelets) \
against simulated hosts, network and time. A scenario file describes the cluster, the manifests applied to it \
and a timeline of faults; a seed fixes every random choice, so a run replays byte for byte."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario to its duration, check its expectations, print the trace hash.
    Run {
        /// The scenario file (see scenarios/README.md).
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Write the trace (JSON Lines) here, for `get` and `describe`.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Write the SLO metrics (pod startup latency, scheduling, API call latency, ...)
        /// here as JSON.
        #[arg(long)]
        metrics: Option<PathBuf>,
        /// No progress bar and no warnings, only the summary.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Run a scenario as a benchmark: wall time, simulated time, their ratio, peak RSS.
    Bench {
        scenario: PathBuf,
        #[arg(long)]
        seed: Option<u64>,
        /// Write the SLO metrics here as JSON.
        #[arg(long)]
        metrics: Option<PathBuf>,
    },
    /// List objects as `kubectl get` does, from a trace at a simulated time.
    Get {
        /// pods, nodes, deployments, replicasets, daemonsets, events (or kubectl short names).
        kind: String,
        /// One object's name.
        name: Option<String>,
        #[command(flatten)]
        at: AtArgs,
        /// Namespace (default: default).
        #[arg(long, short)]
        namespace: Option<String>,
        /// Every namespace.
        #[arg(long, short = 'A')]
        all_namespaces: bool,
        /// Only objects whose labels match this selector, as kubectl's -l (`app=web`,
        /// `tier!=db`, `env in (a,b)`, `!canary`; comma-separated requirements all hold).
        #[arg(long, short = 'l')]
        selector: Option<String>,
        /// Output format.
        #[arg(long, short, value_enum)]
        output: Option<Format>,
    },
    /// Describe a pod or node as `kubectl describe` does, from a trace at a simulated time.
    Describe {
        /// pod or node (or deployment).
        kind: String,
        name: String,
        #[command(flatten)]
        at: AtArgs,
        #[arg(long, short)]
        namespace: Option<String>,
    },
    /// Why a pod is where it is (or Pending): the scheduler's attempt in force at a
    /// simulated time, with every node's filter verdict, the scores and preemption.
    Explain {
        /// pod
        kind: String,
        name: String,
        #[command(flatten)]
        at: AtArgs,
        #[arg(long, short)]
        namespace: Option<String>,
        /// Output format: json prints the attempt as the trace holds it.
        #[arg(long, short, value_enum)]
        output: Option<ExplainFormat>,
    },
    /// Fuzz whole clusters (`kubesim fuzz SCENARIO.yaml... --faults swarm`) or etcd alone
    /// (`kubesim fuzz etcd`). Exit 0: nothing failed; 1: a failure, its repro written; 2: bad input.
    #[command(args_conflicts_with_subcommands = true)]
    Fuzz {
        #[command(subcommand)]
        target: Option<FuzzTarget>,
        #[command(flatten)]
        args: ScenarioFuzzArgs,
    },
    /// Write one self-contained HTML report of a run (charts, expectations, SLO metrics,
    /// the scenario) from its trace: `kubesim report TRACE -o reports/NAME.html`.
    Report {
        /// The trace file written by `kubesim run --trace`.
        trace: PathBuf,
        /// The HTML file to write.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Export a run's trace for a timeline viewer: `kubesim export --perfetto TRACE -o
    /// run.json` writes the Chrome trace event format that Perfetto and chrome://tracing
    /// open (a track per host and component, slices for pod phases and leader terms,
    /// instants for faults and Events).
    Export {
        /// The Chrome trace event format (the only format so far).
        #[arg(long, required = true)]
        perfetto: bool,
        /// The trace file written by `kubesim run --trace`.
        trace: PathBuf,
        /// The JSON file to write.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Write a scenario from a real cluster's snapshot: what `kubectl get
    /// nodes,deployments,statefulsets,daemonsets,jobs,pods,pvc,pv,storageclasses,priorityclasses,pdb
    /// -A -o yaml` prints (a List, or several documents). Prints what was imported and
    /// what was dropped, and why.
    Import {
        /// The snapshot files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The scenario file to write.
        #[arg(long, short)]
        output: PathBuf,
        /// The scenario's name (default: the output file's name).
        #[arg(long)]
        name: Option<String>,
        /// How long the scenario runs.
        #[arg(long, default_value = "10m")]
        duration: String,
    },
    /// Run a scenario over a grid of settings and seeds and tabulate the SLO metrics:
    /// `kubesim sweep scenarios/scale-500.yaml --set nodePools[0].count=400,450,500`.
    /// Writes sweep.csv and sweep.html (a table and charts) to --out.
    Sweep {
        scenario: PathBuf,
        /// PATH=V1,V2,...: a scenario field (`nodePools[0].count`,
        /// `nodePools[name=worker].count`, `controlPlane.kubeScheduler.qps`) and its values.
        #[arg(long = "set", required = true)]
        set: Vec<String>,
        /// Seeds 1..=N per combination.
        #[arg(long, default_value_t = 1)]
        seeds: u64,
        /// Threads, one simulation each at a time.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Where sweep.csv and sweep.html go (default: reports/sweep-<scenario>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress lines.
        #[arg(long, short)]
        quiet: bool,
    },
    /// List events as `kubectl events` does, from a trace at a simulated time.
    Events {
        #[command(flatten)]
        at: AtArgs,
        #[arg(long, short)]
        namespace: Option<String>,
        #[arg(long, short = 'A')]
        all_namespaces: bool,
    },
}

#[derive(Subcommand)]
enum FuzzTarget {
    /// The replicated etcd: kills, restarts, partitions, isolation and disk loss of a
    /// minority over a read/write/compare-and-swap workload; every schedule is checked for
    /// linearizability, durability of acknowledged writes, one leader per term and
    /// recovery once healed. A failure is shrunk and printed with its replay command.
    Etcd {
        /// How many schedules.
        #[arg(long, default_value_t = 1000)]
        cases: u32,
        /// Seed of the schedules drawn.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// etcd members.
        #[arg(long, default_value_t = 3)]
        members: u64,
        /// Replay one schedule (the JSON a failed run printed).
        #[arg(long)]
        replay: Option<String>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
}

#[derive(clap::Args)]
struct ScenarioFuzzArgs {
    /// Scenario files to fuzz.
    scenarios: Vec<PathBuf>,
    /// Seeds 1..=N (default 100).
    #[arg(long, conflicts_with = "seed_range")]
    seeds: Option<u64>,
    /// Seeds A..B (B excluded).
    #[arg(long)]
    seed_range: Option<String>,
    /// Only the seeds s with s % N == I (0-based I, e.g. a Kubernetes Indexed Job's
    /// JOB_COMPLETION_INDEX): N machines cover the seeds without overlap.
    #[arg(long)]
    shard: Option<String>,
    /// Threads, one simulation each at a time.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// `none`: a seed sweep of the scenario's expectations; `swarm`: random fault
    /// schedules, checked against the cluster invariants.
    #[arg(long, default_value = "none")]
    faults: String,
    /// Stop starting seeds after this long (e.g. 10m).
    #[arg(long)]
    time_budget: Option<String>,
    /// Write JUnit XML here (one testcase per seed).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Where repro files go.
    #[arg(long, default_value = "reports/fuzz")]
    out: PathBuf,
    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args)]
struct AtArgs {
    /// The trace file written by `kubesim run --trace`.
    #[arg(long)]
    trace: PathBuf,
    /// Simulated time, e.g. 90s or 2m30s (default: the end of the trace).
    #[arg(long)]
    at: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExplainFormat {
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Wide,
    Yaml,
    Json,
}

/// A failure with its exit code.
enum Failure {
    /// Exit 1: the run finished but an expectation did not hold.
    Expectations,
    /// Exit 2: unusable input.
    Input(String),
}

/// Writes to stdout; a closed pipe (`kubesim get pods | head`) ends quietly.
fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

/// mimalloc instead of glibc's malloc: a simulation allocates and frees millions of small
/// objects, which glibc fragments (measured on scale-500: malloc and free were 20% of the
/// time and peak RSS grew with it).
/// `--features system-alloc` keeps glibc's malloc, for heap profilers that hook it.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Expectations) => ExitCode::from(1),
        Err(Failure::Input(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cmd: Command) -> Result<(), Failure> {
    match cmd {
        Command::Run { scenario, seed, trace, metrics, quiet } => {
            let opts = RunOptions { seed, trace, progress: !quiet, warnings: !quiet, bench: false };
            let report = run::run_file(&scenario, &opts).map_err(Failure::Input)?;
            write_metrics(metrics.as_deref(), &report)?;
            out(&report.summary());
            if report.all_passed() {
                Ok(())
            } else {
                Err(Failure::Expectations)
            }
        }
        Command::Bench { scenario, seed, metrics } => {
            let opts = RunOptions { seed, trace: None, progress: false, warnings: false, bench: true };
            let report = run::run_file(&scenario, &opts).map_err(Failure::Input)?;
            write_metrics(metrics.as_deref(), &report)?;
            out(&report.summary());
            out(&report.bench_summary());
            if report.all_passed() {
                Ok(())
            } else {
                Err(Failure::Expectations)
            }
        }
        Command::Get { kind, name, at, namespace, all_namespaces, selector, output } => {
            let kind = parse_kind(&kind)?;
            let selector = match &selector {
                // kubectl get: "name cannot be provided when a selector is specified".
                Some(_) if name.is_some() => {
                    return Err(Failure::Input(
                        "error: name cannot be provided when a selector is specified".into(),
                    ))
                }
                Some(s) => Some(
                    kubesim_model::api::Selector::parse(s)
                        .map_err(|e| Failure::Input(format!("error: {e} (in --selector {s:?})")))?,
                ),
                None => None,
            };
            let (state, now) = load_state(&at)?;
            let ns = namespace_arg(kind, namespace, all_namespaces);
            let format = match output {
                None => OutputFormat::Table,
                Some(Format::Wide) => OutputFormat::Wide,
                Some(Format::Yaml) => OutputFormat::Yaml,
                Some(Format::Json) => OutputFormat::Json,
            };
            let text =
                kubectl::get(&state, kind, ns.as_deref(), name.as_deref(), selector.as_ref(), format, now)
                    .map_err(Failure::Input)?;
            out(&text);
            Ok(())
        }
        Command::Describe { kind, name, at, namespace } => {
            let kind = parse_kind(&kind)?;
            let (state, now) = load_state(&at)?;
            let ns =
                if kind.namespaced() { namespace.unwrap_or_else(|| "default".into()) } else { String::new() };
            let text = kubectl::describe(&state, kind, &ns, &name, now).map_err(Failure::Input)?;
            out(&text);
            Ok(())
        }
        Command::Explain { kind, name, at, namespace, output } => {
            if Kind::parse(&kind) != Some(Kind::Pod) {
                return Err(Failure::Input(format!(
                    "explain: {kind:?}: only pods are explained (kubesim explain pod NAME)"
                )));
            }
            let t = match &at.at {
                Some(s) => kubesim::scenario::parse_duration(s)
                    .map_err(|e| Failure::Input(format!("--at {s:?}: {e} (e.g. --at 90s or --at 2m30s)")))?,
                None => SimTime(u64::MAX),
            };
            let ns = namespace.unwrap_or_else(|| "default".into());
            let json = matches!(output, Some(ExplainFormat::Json));
            let text =
                kubesim::explain::explain_file(&at.trace, &ns, &name, t, json).map_err(Failure::Input)?;
            out(&text);
            Ok(())
        }
        Command::Fuzz { target: None, args } => fuzz_scenarios(args),
        Command::Fuzz { target: Some(FuzzTarget::Etcd { cases, seed, members, replay, quiet }), .. } => {
            let report = kubesim::fuzz::fuzz_etcd(cases, seed, members, replay.as_deref(), !quiet)
                .map_err(Failure::Input)?;
            out(&report.text);
            if report.failed {
                Err(Failure::Expectations)
            } else {
                Ok(())
            }
        }
        Command::Report { trace, output } => {
            kubesim::report::report_file(&trace, &output).map_err(Failure::Input)?;
            out(&format!("wrote {}\n", output.display()));
            Ok(())
        }
        Command::Export { perfetto: _, trace, output } => {
            kubesim::export::export_file(&trace, &output).map_err(Failure::Input)?;
            out(&format!("wrote {}\n", output.display()));
            Ok(())
        }
        Command::Import { files, output, name, duration } => {
            kubesim::scenario::parse_duration(&duration)
                .map_err(|e| Failure::Input(format!("--duration {duration:?}: {e} (e.g. 10m)")))?;
            let name = name.unwrap_or_else(|| kubesim::import::name_for(&output));
            let opts = kubesim::import::ImportOptions { name, duration };
            let imported = kubesim::import::import_files(&files, &opts).map_err(Failure::Input)?;
            std::fs::write(&output, &imported.scenario)
                .map_err(|e| Failure::Input(format!("{}: {e}", output.display())))?;
            out(&imported.summary());
            out(&format!("wrote {}\n", output.display()));
            Ok(())
        }
        Command::Sweep { scenario, set, seeds, jobs, out: dir, quiet } => {
            let axes = set
                .iter()
                .map(|s| kubesim::sweep::Axis::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(Failure::Input)?;
            let stem = scenario.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let dir = dir.unwrap_or_else(|| PathBuf::from("reports").join(format!("sweep-{stem}")));
            let opts = kubesim::sweep::SweepOptions { scenario, axes, seeds, jobs, out: dir.clone(), quiet };
            let result = kubesim::sweep::sweep(&opts).map_err(Failure::Input)?;
            out(&result.csv);
            out(&format!(
                "wrote {} and {}\n",
                dir.join("sweep.csv").display(),
                dir.join("sweep.html").display()
            ));
            Ok(())
        }
        Command::Events { at, namespace, all_namespaces } => {
            let (state, now) = load_state(&at)?;
            let ns = namespace_arg(Kind::Event, namespace, all_namespaces);
            out(&kubectl::events(&state, ns.as_deref(), now));
            Ok(())
        }
    }
}

/// `--metrics FILE`: the run's SLO metrics as JSON, with what ran.
fn write_metrics(path: Option<&std::path::Path>, report: &run::RunReport) -> Result<(), Failure> {
    let Some(path) = path else { return Ok(()) };
    let doc = serde_json::json!({
        "scenario": report.name,
        "seed": report.seed,
        "simulatedSeconds": report.simulated.as_secs_f64(),
        "metrics": report.metrics,
    });
    let text = serde_json::to_string_pretty(&doc).expect("metrics serialize") + "\n";
    std::fs::write(path, text).map_err(|e| Failure::Input(format!("--metrics {}: {e}", path.display())))
}

fn fuzz_scenarios(a: ScenarioFuzzArgs) -> Result<(), Failure> {
    use kubesim::cluster_fuzz::{fuzz_scenarios, parse_seed_range, parse_shard, FuzzOptions};
    let mut seeds: Vec<u64> = match (&a.seed_range, a.seeds) {
        (Some(r), _) => parse_seed_range(r).map_err(Failure::Input)?,
        (None, Some(0)) => return Err(Failure::Input("--seeds 0: want at least 1".into())),
        (None, n) => (1..=n.unwrap_or(100)).collect(),
    };
    if let Some(sh) = &a.shard {
        let (i, n) = parse_shard(sh).map_err(Failure::Input)?;
        seeds.retain(|s| s % n == i);
    }
    let swarm = match a.faults.as_str() {
        "none" => false,
        "swarm" => true,
        other => return Err(Failure::Input(format!("--faults {other:?}: want none or swarm"))),
    };
    let time_budget = match &a.time_budget {
        None => None,
        Some(t) => Some(
            kubesim::scenario::parse_duration(t)
                .map_err(|e| Failure::Input(format!("--time-budget {t:?}: {e} (e.g. 10m)")))?
                .as_duration(),
        ),
    };
    let opts = FuzzOptions {
        scenarios: a.scenarios,
        seeds,
        jobs: a.jobs,
        swarm,
        time_budget,
        junit: a.junit,
        out: a.out,
        planted_ignore_taints: false,
        quiet: a.quiet,
    };
    let summary = fuzz_scenarios(&opts).map_err(Failure::Input)?;
    out(&summary.text);
    if summary.failed() > 0 {
        Err(Failure::Expectations)
    } else {
        Ok(())
    }
}

fn parse_kind(s: &str) -> Result<Kind, Failure> {
    Kind::parse(s).ok_or_else(|| {
        Failure::Input(format!(
            "the server doesn't have a resource type \"{s}\"; use one of pods, nodes, deployments, replicasets, daemonsets, statefulsets, jobs, events, leases, namespaces, configmaps, secrets"
        ))
    })
}

fn namespace_arg(kind: Kind, namespace: Option<String>, all: bool) -> Option<String> {
    if !kind.namespaced() || all {
        None
    } else {
        Some(namespace.unwrap_or_else(|| "default".into()))
    }
}

fn load_state(at: &AtArgs) -> Result<(kubesim_model::client::Cache, SimTime), Failure> {
    let t = match &at.at {
        Some(s) => kubesim::scenario::parse_duration(s)
            .map_err(|e| Failure::Input(format!("--at {s:?}: {e} (e.g. --at 90s or --at 2m30s)")))?,
        None => SimTime(u64::MAX),
    };
    let f = std::fs::File::open(&at.trace).map_err(|e| {
        Failure::Input(format!(
            "{}: {e} (write one with `kubesim run SCENARIO --trace FILE`)",
            at.trace.display()
        ))
    })?;
    let replay = kubesim_sim::replay(std::io::BufReader::new(f), t)
        .map_err(|e| Failure::Input(format!("{}: {e}", at.trace.display())))?;
    let now = if at.at.is_some() { t } else { replay.last_time };
    Ok((replay.state, now))
}
