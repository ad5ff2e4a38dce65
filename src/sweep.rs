//! `kubesim sweep SCENARIO --set PATH=V1,V2,... [--set ...] --seeds N --jobs J`: runs
//! every combination of the values (the grid) on seeds 1..=N, in this process on `--jobs`
//! threads (each simulation on a fresh thread of its own), and tabulates the SLO metrics
//! per combination: CSV, and an HTML page with the table and charts.
//!
//! A path is the scenario file's own: dotted keys with list indexes or filters,
//! `nodePools[0].count`, `nodePools[name=worker].count`,
//! `controlPlane.kubeScheduler.qps`. A value is YAML (`500`, `10s`, `true`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_yaml::{Mapping, Value};

/// One `--set PATH=V1,V2,...`.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub path: String,
    pub values: Vec<String>,
}

impl Axis {
    pub fn parse(s: &str) -> Result<Axis, String> {
        let (path, values) = s.split_once('=').ok_or_else(|| {
            format!("--set {s:?}: want PATH=V1,V2,... (e.g. nodePools[0].count=400,450,500)")
        })?;
        let values: Vec<String> =
            values.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
        if path.trim().is_empty() || values.is_empty() {
            return Err(format!("--set {s:?}: want PATH=V1,V2,... (e.g. nodePools[0].count=400,450,500)"));
        }
        Ok(Axis { path: path.trim().to_string(), values })
    }
}

pub struct SweepOptions {
    pub scenario: PathBuf,
    pub axes: Vec<Axis>,
    pub seeds: u64,
    pub jobs: usize,
    pub out: PathBuf,
    pub quiet: bool,
}

/// One run of the grid.
#[derive(Clone, Debug)]
pub struct Row {
    pub values: Vec<String>,
    pub seed: u64,
    pub passed: usize,
    pub expectations: usize,
    pub metrics: crate::metrics::Metrics,
    pub wall_seconds: f64,
}

pub struct SweepResult {
    pub rows: Vec<Row>,
    pub csv: String,
    pub html: String,
}

/// Sets `path` in a scenario document to `value`: dotted keys (created when missing),
/// `[i]` list indexes and `[key=value]` list filters.
pub fn set_path(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let segs = crate::scenario::split_path(path);
    let mut cur = doc;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let (name, filters) = match seg.find('[') {
            Some(k) => (&seg[..k], &seg[k..]),
            None => (*seg, ""),
        };
        if !name.is_empty() {
            let m = cur.as_mapping_mut().ok_or_else(|| format!("{path}: {name} is not inside a mapping"))?;
            if last && filters.is_empty() {
                m.insert(name.into(), value);
                return Ok(());
            }
            cur = m.entry(name.into()).or_insert_with(|| Value::Mapping(Mapping::new()));
        }
        let mut rest = filters;
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']').ok_or_else(|| format!("{path}: unclosed ["))?;
            let inner = &stripped[..end];
            rest = &stripped[end + 1..];
            let list = cur.as_sequence_mut().ok_or_else(|| format!("{path}: [{inner}] needs a list"))?;
            let found = match inner.split_once('=') {
                Some((k, v)) => list.iter_mut().find(|e| e.get(k).and_then(Value::as_str) == Some(v)),
                None => inner.parse::<usize>().ok().and_then(|i| list.get_mut(i)),
            };
            cur = found.ok_or_else(|| format!("{path}: the scenario has no [{inner}] there"))?;
        }
        if last {
            *cur = value;
            return Ok(());
        }
    }
    Ok(())
}

/// Every combination of the axes' values, first axis slowest.
pub fn grid(axes: &[Axis]) -> Vec<Vec<String>> {
    let mut combos: Vec<Vec<String>> = vec![Vec::new()];
    for a in axes {
        combos = combos
            .into_iter()
            .flat_map(|c| a.values.iter().map(move |v| [c.clone(), vec![v.clone()]].concat()))
            .collect();
    }
    combos
}

/// The plan of one combination, checked as a scenario file is (exit 2 on a bad value).
fn plan_for(text: &str, path: &Path, axes: &[Axis], values: &[String]) -> Result<crate::run::Plan, String> {
    let mut doc: Value = serde_yaml::from_str(text).map_err(|e| format!("{}: {e}", path.display()))?;
    for (a, v) in axes.iter().zip(values) {
        let value: Value =
            serde_yaml::from_str(v).map_err(|e| format!("--set {}={v}: not a YAML value: {e}", a.path))?;
        set_path(&mut doc, &a.path, value).map_err(|e| format!("--set {e}"))?;
    }
    let edited = serde_yaml::to_string(&doc).expect("a scenario serializes");
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let what = axes.iter().zip(values).map(|(a, v)| format!("{}={v}", a.path)).collect::<Vec<_>>().join(" ");
    let loaded = crate::scenario::load_str(&edited, path, &base)
        .map_err(|e| format!("with {what}: {}", e.message).replace('\n', " "))?;
    crate::plan::from_scenario(&loaded.scenario).map_err(|e| format!("with {what}: {e}"))
}

/// A run done: its place in the grid and its row.
type Finished = (usize, Result<Row, String>);

/// Runs the grid.
pub fn sweep(opts: &SweepOptions) -> Result<SweepResult, String> {
    if opts.jobs == 0 {
        return Err("--jobs 0: want at least 1".into());
    }
    if opts.seeds == 0 {
        return Err("--seeds 0: want at least 1".into());
    }
    let text =
        std::fs::read_to_string(&opts.scenario).map_err(|e| format!("{}: {e}", opts.scenario.display()))?;
    // Check the scenario and every combination before running anything.
    crate::scenario::load(&opts.scenario).map_err(|e| e.to_string())?;
    let combos = grid(&opts.axes);
    let mut work = Vec::new();
    for values in &combos {
        let plan = plan_for(&text, &opts.scenario, &opts.axes, values)?;
        for seed in 1..=opts.seeds {
            let mut p = plan.clone();
            p.seed = seed;
            p.world.seed = seed;
            work.push((work.len(), values.clone(), seed, p));
        }
    }
    let total = work.len();
    let queue = Arc::new(Mutex::new(work.into_iter()));
    let results: Arc<Mutex<Vec<Finished>>> = Arc::default();
    let mut handles = Vec::new();
    for _ in 0..opts.jobs.min(total) {
        let (queue, results, quiet, axes) = (queue.clone(), results.clone(), opts.quiet, opts.axes.clone());
        handles.push(std::thread::spawn(move || loop {
            let Some((i, values, seed, plan)) = queue.lock().expect("queue lock").next() else { break };
            let what = axes
                .iter()
                .zip(&values)
                .map(|(a, v)| format!("{}={v}", a.path))
                .collect::<Vec<_>>()
                .join(" ");
            let row = crate::run::run_plan(plan, None, false).map(|r| Row {
                values,
                seed,
                passed: r.results.iter().filter(|x| x.passed).count(),
                expectations: r.results.len(),
                wall_seconds: r.wall.as_secs_f64(),
                metrics: r.metrics,
            });
            if !quiet {
                match &row {
                    Ok(r) => eprintln!(
                        "sweep: {what} seed {seed}: pod startup p99 {:.3}s, {}/{} expectations, {:.1}s wall",
                        r.metrics.pod_startup_latency.latency.p99, r.passed, r.expectations, r.wall_seconds
                    ),
                    Err(e) => eprintln!("sweep: {what} seed {seed}: {e}"),
                }
            }
            results.lock().expect("results lock").push((i, row));
        }));
    }
    for h in handles {
        h.join().map_err(|_| "a sweep thread panicked (a kubesim bug)".to_string())?;
    }
    let mut done = std::mem::take(&mut *results.lock().expect("results lock"));
    done.sort_by_key(|(i, _)| *i);
    let rows: Vec<Row> = done.into_iter().map(|(_, r)| r).collect::<Result<_, _>>()?;
    let csv = csv(&opts.axes, &rows);
    let html = html(&opts.scenario, &opts.axes, &rows, opts.seeds)?;
    std::fs::create_dir_all(&opts.out).map_err(|e| format!("{}: {e}", opts.out.display()))?;
    for (file, body) in [("sweep.csv", &csv), ("sweep.html", &html)] {
        let p = opts.out.join(file);
        std::fs::write(&p, body).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(SweepResult { rows, csv, html })
}

const COLUMNS: [&str; 14] = [
    "seed",
    "expectations_passed",
    "pods_scheduled",
    "pods_still_pending",
    "unschedulable_attempts",
    "pod_startup_p50_s",
    "pod_startup_p90_s",
    "pod_startup_p99_s",
    "pending_p99_s",
    "scheduling_throughput_avg",
    "scheduling_throughput_max",
    "api_worst_5m_p99_s",
    "etcd_leaders",
    "evictions",
];

fn cells(r: &Row) -> Vec<String> {
    let m = &r.metrics;
    let api = m.api_call_latency.iter().map(|a| a.worst_5m_p99_seconds).fold(0.0f64, f64::max);
    vec![
        r.seed.to_string(),
        format!("{}/{}", r.passed, r.expectations),
        m.scheduling.pods_scheduled.to_string(),
        m.pending_time.still_pending.to_string(),
        m.scheduling.attempts.unschedulable.to_string(),
        format!("{:.3}", m.pod_startup_latency.latency.p50),
        format!("{:.3}", m.pod_startup_latency.latency.p90),
        format!("{:.3}", m.pod_startup_latency.latency.p99),
        format!("{:.3}", m.pending_time.scheduled.p99),
        format!("{}", m.scheduling.throughput.average),
        format!("{}", m.scheduling.throughput.max),
        format!("{api:.3}"),
        m.leader_changes.get("etcd").copied().unwrap_or(0).to_string(),
        m.evictions.total.to_string(),
    ]
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The table as CSV: a column per `--set` path, then the metrics; a row per run.
pub fn csv(axes: &[Axis], rows: &[Row]) -> String {
    let mut s = String::new();
    let header: Vec<String> =
        axes.iter().map(|a| a.path.clone()).chain(COLUMNS.iter().map(|c| c.to_string())).collect();
    s += &header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(",");
    s += "\n";
    for r in rows {
        let line: Vec<String> = r.values.iter().cloned().chain(cells(r)).map(|c| csv_field(&c)).collect();
        s += &line.join(",");
        s += "\n";
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The HTML page: the table and, along the first `--set` axis, pod startup latency, the
/// pods left pending and scheduling throughput (one line per seed and per combination of the other axes).
fn html(scenario: &Path, axes: &[Axis], rows: &[Row], seeds: u64) -> Result<String, String> {
    let name = scenario.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut h = String::new();
    let _ = writeln!(h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>kubesim sweep: {}</title>", esc(&name));
    h += "<style>body{font-family:sans-serif;margin:1.5em auto;max-width:1100px}table{border-collapse:collapse;font-size:.85em}th,td{border:1px solid #ccc;padding:.2em .45em}td{text-align:right}</style>\n</head>\n<body>\n";
    let _ = writeln!(
        h,
        "<h1>kubesim sweep: {}</h1>\n<p>{} combinations × {seeds} seeds. Pod startup latency as sig-scalability's SLI defines it (image pulls excluded; SLO p99 ≤ 5 s); scheduling throughput in pods/s over 5 s intervals (clusterloader2).</p>",
        esc(&name),
        grid(axes).len()
    );
    for (title, pick) in [
        (
            "Pod startup latency p99 (s)",
            (|m: &crate::metrics::Metrics| m.pod_startup_latency.latency.p99)
                as fn(&crate::metrics::Metrics) -> f64,
        ),
        ("Pod startup latency p50 (s)", |m| m.pod_startup_latency.latency.p50),
        // The capacity answer: pods the cluster could not place by the end of the run.
        ("Pods still pending at the end", |m| m.pending_time.still_pending as f64),
        ("Scheduling throughput, average (pods/s)", |m| m.scheduling.throughput.average),
    ] {
        let _ = writeln!(
            h,
            "<figure><figcaption><b>{}</b></figcaption>\n{}\n</figure>",
            esc(title),
            chart(axes, rows, title, pick)?
        );
    }
    h += "<table>\n<tr>";
    for c in axes.iter().map(|a| a.path.as_str()).chain(COLUMNS) {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h += "</tr>\n";
    for r in rows {
        h += "<tr>";
        for c in r.values.iter().cloned().chain(cells(r)) {
            let _ = write!(h, "<td>{}</td>", esc(&c));
        }
        h += "</tr>\n";
    }
    h += "</table>\n</body>\n</html>\n";
    Ok(h)
}

fn chart(
    axes: &[Axis],
    rows: &[Row],
    title: &str,
    pick: fn(&crate::metrics::Metrics) -> f64,
) -> Result<String, String> {
    use plotters::prelude::*;
    let Some(first) = axes.first() else { return Ok(String::new()) };
    let xs: Vec<String> = first.values.clone();
    // Lines: one per (other axes' values, seed).
    let mut lines: std::collections::BTreeMap<String, Vec<(f64, f64)>> = std::collections::BTreeMap::new();
    for r in rows {
        let x = xs.iter().position(|v| *v == r.values[0]).unwrap_or(0) as f64;
        let mut label: Vec<String> =
            axes.iter().zip(&r.values).skip(1).map(|(a, v)| format!("{}={v}", a.path)).collect();
        label.push(format!("seed {}", r.seed));
        lines.entry(label.join(" ")).or_default().push((x, pick(&r.metrics)));
    }
    let y_max = lines.values().flatten().map(|p| p.1).fold(0.0f64, f64::max);
    let y_top = if y_max <= 0.0 { 1.0 } else { y_max * 1.15 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 280)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| format!("{e:?}"))?;
        let n = xs.len() as f64;
        let mut c = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..(n - 0.5).max(0.5), 0f64..y_top)
            .map_err(|e| format!("{e:?}"))?;
        c.configure_mesh()
            .x_labels(xs.len().max(2))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    xs.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc(first.path.as_str())
            .y_desc(title)
            .draw()
            .map_err(|e| format!("{e:?}"))?;
        let colors = [
            RGBColor(0x4e, 0x79, 0xa7),
            RGBColor(0xf2, 0x8e, 0x2b),
            RGBColor(0x59, 0xa1, 0x4f),
            RGBColor(0xe1, 0x57, 0x59),
            RGBColor(0x76, 0xb7, 0xb2),
        ];
        for (k, (label, mut points)) in lines.into_iter().enumerate() {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let color = colors[k % colors.len()];
            c.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| format!("{e:?}"))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            c.draw_series(points.into_iter().map(|p| Circle::new(p, 4, color.filled())))
                .map_err(|e| format!("{e:?}"))?;
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0xbb, 0xbb, 0xbb))
            .draw()
            .map_err(|e| format!("{e:?}"))?;
        root.present().map_err(|e| format!("{e:?}"))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_path_edits_lists_by_index_and_filter_and_creates_keys() {
        let mut doc: Value =
            serde_yaml::from_str("nodePools: [{name: worker, count: 3}, {name: gpu, count: 1}]\n").unwrap();
        set_path(&mut doc, "nodePools[0].count", Value::from(400)).unwrap();
        set_path(&mut doc, "nodePools[name=gpu].count", Value::from(2)).unwrap();
        set_path(&mut doc, "controlPlane.kubeScheduler.qps", Value::from(100)).unwrap();
        let text = serde_yaml::to_string(&doc).unwrap();
        assert!(text.contains("count: 400"), "{text}");
        assert!(text.contains("count: 2"), "{text}");
        assert!(text.contains("qps: 100"), "{text}");
        assert!(set_path(&mut doc, "nodePools[5].count", Value::from(1)).is_err());
        assert!(set_path(&mut doc, "nodePools[name=cpu].count", Value::from(1)).is_err());
    }

    #[test]
    fn the_grid_is_every_combination() {
        let axes = vec![Axis::parse("a=1,2").unwrap(), Axis::parse("b=x,y,z").unwrap()];
        let g = grid(&axes);
        assert_eq!(g.len(), 6);
        assert_eq!(g[0], vec!["1", "x"]);
        assert_eq!(g[5], vec!["2", "z"]);
        assert!(Axis::parse("nodePools[0].count").is_err());
        assert!(Axis::parse("a=").is_err());
    }
}
