//! `kubesim report TRACE -o reports/NAME.html`: one self-contained HTML file (no network,
//! opens from disk) with charts drawn by plotters' SVG backend and inlined: pods by phase,
//! pending pods, node readiness, scheduling rate, API requests per component and the
//! leadership timeline, with faults, timeline actions and evictions marked on the time
//! axis (etcd's alarms, such as NOSPACE raised and disarmed, are listed in the marks
//! table); then the expectations, the SLO metrics and the scenario.
//!
//! The report is a function of the trace alone (no wall time, no paths), so the same
//! trace gives the same bytes: CI regenerates the reference report and compares.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::BufRead;

use kubesim_sim::trace::OutcomeResult;
use kubesim_sim::TraceRecord;
use plotters::prelude::*;

use crate::metrics::{Collector, Mark, Metrics, PodState, Sample};

/// Chart size in pixels.
const WIDTH: u32 = 960;
const HEIGHT: u32 = 300;

/// Colours of the series, in order (Tableau 10, legible on white).
const SERIES: [RGBColor; 8] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0x9c, 0x75, 0x5f),
];
const FAULT: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const EVICTION: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const ACTION: RGBColor = RGBColor(0x7f, 0x7f, 0x7f);

/// What a trace holds for a report: the header, the outcome and what the collector kept.
pub struct TraceSummary {
    pub run: Option<(String, u64, u64, String, String)>,
    pub outcome: Option<(Vec<OutcomeResult>, String)>,
    pub collector: Collector,
    pub metrics: Metrics,
}

/// Reads a trace file (as `kubesim run --trace` writes it).
pub fn read_trace(reader: impl BufRead) -> Result<TraceSummary, String> {
    let mut collector = Collector::new();
    let (mut run, mut outcome) = (None, None);
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: TraceRecord = serde_json::from_str(&line).map_err(|e| {
            format!("line {}: not a kubesim trace record: {e} (write one with `kubesim run SCENARIO --trace FILE`)", i + 1)
        })?;
        match rec {
            TraceRecord::Run { scenario, seed, duration, file, source, .. } => {
                run = Some((scenario, seed, duration, file, source))
            }
            TraceRecord::Outcome { results, trace_hash, .. } => outcome = Some((results, trace_hash)),
            other => collector.observe(&other),
        }
    }
    let end = run.as_ref().map_or(collector.end_ms(), |r| r.2.max(collector.end_ms()));
    collector.finish(end);
    let metrics = collector.metrics();
    Ok(TraceSummary { run, outcome, collector, metrics })
}

/// Renders the report page.
pub fn render(t: &TraceSummary) -> Result<String, String> {
    let c = &t.collector;
    let (name, seed, duration_ms, file, source) = match &t.run {
        Some((n, s, d, f, src)) => (n.clone(), *s, *d, f.clone(), src.clone()),
        None => ("(unknown scenario)".to_string(), 0, c.end_ms(), String::new(), String::new()),
    };
    let end_s = (duration_ms.max(c.end_ms()) as f64 / 1000.0).max(1.0);
    let marks =
        Marks { faults: c.faults(), actions: c.actions(), evictions: c.evictions(), alarms: c.alarms() };
    let charts = vec![
        ("Pods by phase", pods_by_phase(c.samples(), end_s, &marks)?),
        ("Pending pods (not yet scheduled)", pending(c.samples(), end_s, &marks)?),
        ("Nodes by Ready condition", nodes(c.samples(), end_s, &marks)?),
        ("Scheduling rate", scheduling_rate(c.samples(), end_s, &marks)?),
        ("API requests per component", api_requests(c.api_by_component(), end_s, &marks)?),
        ("Leaders (etcd, kube-scheduler, kube-controller-manager)", leadership(c, end_s, &marks)?),
    ];

    let mut h = String::new();
    h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
    let _ = writeln!(h, "<title>kubesim report: {}</title>", esc(&name));
    h += STYLE;
    h += "</head>\n<body>\n";
    let _ = writeln!(h, "<h1>kubesim report: {}</h1>", esc(&name));
    let passed = t.outcome.as_ref().map(|(r, _)| (r.iter().filter(|x| x.passed).count(), r.len()));
    let _ = writeln!(
        h,
        "<p class=\"meta\">scenario file <code>{}</code> · seed {seed} · simulated {} · {}{}</p>",
        esc(&file),
        kubesim_model::time::go_duration(std::time::Duration::from_millis(duration_ms)),
        match passed {
            Some((p, n)) => format!("expectations {p}/{n} passed"),
            None => "no outcome recorded (the run did not finish)".into(),
        },
        t.outcome
            .as_ref()
            .map_or(String::new(), |(_, hash)| format!(" · trace-hash <code>{}</code>", esc(hash))),
    );
    h += "<h2>Timeline</h2>\n<p class=\"legend\"><span style=\"color:#d62728\">┃</span> fault \
          <span style=\"color:#7f7f7f\">┃</span> timeline action \
          <span style=\"color:#ff7f0e\">┃</span> eviction</p>\n";
    for (title, svg) in &charts {
        let _ = writeln!(
            h,
            "<figure class=\"chart\">\n<figcaption>{}</figcaption>\n{svg}\n</figure>",
            esc(title)
        );
    }
    marks_table(&mut h, &marks);
    expectations_table(&mut h, t.outcome.as_ref().map(|(r, _)| r.as_slice()));
    slo_tables(&mut h, &t.metrics);
    h += "<h2>Scenario</h2>\n";
    let _ = writeln!(h, "<pre class=\"scenario\">{}</pre>", esc(&source));
    h += SCRIPT;
    h += "</body>\n</html>\n";
    Ok(h)
}

const STYLE: &str = "<style>
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.meta, .legend { color: #555; }
figure.chart { margin: 1em 0; } figcaption { font-weight: bold; margin-bottom: .3em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #2a7d2a; font-weight: bold; } .fail { color: #c62828; font-weight: bold; }
pre.scenario { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: .85em; }
</style>
";

/// Counts the charts a browser actually drew (each an SVG whose series have a non-empty
/// box) and writes the count on the body, where a headless browser's DOM dump shows it.
const SCRIPT: &str = "<script>
window.addEventListener('load', function () {
  var drawn = 0;
  document.querySelectorAll('figure.chart svg').forEach(function (svg) {
    var marks = svg.querySelectorAll('polyline, path, rect');
    var ink = 0;
    marks.forEach(function (m) { var b = m.getBBox(); if (b.width > 0 || b.height > 0) { ink++; } });
    if (svg.getBoundingClientRect().width > 0 && ink > 2) { drawn++; }
  });
  document.body.setAttribute('data-charts-drawn', String(drawn));
});
</script>
";

struct Marks<'a> {
    faults: &'a [Mark],
    actions: &'a [Mark],
    evictions: &'a [Mark],
    alarms: &'a [Mark],
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The time axis, `0..end_s` seconds: at most about ten ticks at a round step of time
/// (10 s, 30 s, 1 m, 5 m, ...) and light grid lines at a fifth of it, where plotters'
/// own f64 axis would tick at decimal steps (50 s, 1m40s, ...).
struct TimeAxis {
    end_s: f64,
    step: f64,
}

fn time_axis(end_s: f64) -> TimeAxis {
    const STEPS: [f64; 16] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0,
        43200.0,
    ];
    let end_s = end_s.max(1.0);
    TimeAxis { end_s, step: STEPS.iter().copied().find(|s| end_s / s <= 10.0).unwrap_or(86400.0) }
}

impl plotters::coord::ranged1d::Ranged for TimeAxis {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let frac = value / self.end_s;
        limit.0 + ((limit.1 - limit.0) as f64 * frac).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let step = if hint.weight().allow_light_points() { self.step / 5.0 } else { self.step };
        (0..).map(|i| i as f64 * step).take_while(|t| *t <= self.end_s).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.end_s
    }
}

fn fmt_time(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// One line chart over time, with the marks; `series` are (name, points).
fn line_chart(
    series: &[(String, Vec<(f64, f64)>)],
    end_s: f64,
    y_desc: &str,
    marks: &Marks,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let y_max = series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y)).fold(0.0f64, f64::max);
        let y_top = if y_max <= 0.0 { 1.0 } else { y_max * 1.08 };
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(time_axis(end_s), 0f64..y_top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("simulated time")
            .y_desc(y_desc)
            .x_label_formatter(&|x| fmt_time(*x))
            .y_label_formatter(&|y| {
                // Counts read as counts: 3, not 3.0.
                let text = if y_top > 10.0 { format!("{y:.0}") } else { format!("{y:.1}") };
                text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
            })
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .draw()
            .map_err(err)?;
        draw_marks(&mut chart, marks, y_top)?;
        for (i, (name, points)) in series.iter().enumerate() {
            let color = SERIES[i % SERIES.len()];
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(err)?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(0xbb, 0xbb, 0xbb))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

type Chart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<TimeAxis, plotters::coord::types::RangedCoordf64>>;

/// Vertical lines at faults (red), timeline actions (grey, dashed look by thinness) and
/// evictions (orange).
fn draw_marks(chart: &mut Chart, marks: &Marks, y_top: f64) -> Result<(), String> {
    let lines = |ms: &[Mark], color: RGBColor, width: u32| {
        ms.iter()
            .map(move |m| {
                let x = m.t_ms as f64 / 1000.0;
                PathElement::new(vec![(x, 0.0), (x, y_top)], color.mix(0.8).stroke_width(width))
            })
            .collect::<Vec<_>>()
    };
    chart.draw_series(lines(marks.actions, ACTION, 1)).map_err(err)?;
    chart.draw_series(lines(marks.evictions, EVICTION, 1)).map_err(err)?;
    chart.draw_series(lines(marks.faults, FAULT, 2)).map_err(err)?;
    Ok(())
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing a chart failed: {e:?}")
}

fn pods_by_phase(samples: &[Sample], end_s: f64, marks: &Marks) -> Result<String, String> {
    let series: Vec<(String, Vec<(f64, f64)>)> = PodState::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| samples.iter().any(|s| s.pods[*i] > 0))
        .map(|(i, st)| {
            (st.name().to_string(), samples.iter().map(|s| (s.t as f64, s.pods[i] as f64)).collect())
        })
        .collect();
    line_chart(&series, end_s, "pods", marks)
}

fn pending(samples: &[Sample], end_s: f64, marks: &Marks) -> Result<String, String> {
    let i = PodState::Unscheduled as usize;
    let series = vec![(
        "Pending, unscheduled".to_string(),
        samples.iter().map(|s| (s.t as f64, s.pods[i] as f64)).collect(),
    )];
    line_chart(&series, end_s, "pods", marks)
}

fn nodes(samples: &[Sample], end_s: f64, marks: &Marks) -> Result<String, String> {
    let names = ["Ready=True", "Ready=False", "Ready=Unknown"];
    let series = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (n.to_string(), samples.iter().map(|s| (s.t as f64, s.nodes_ready[i] as f64)).collect())
        })
        .collect::<Vec<_>>();
    line_chart(&series, end_s, "nodes", marks)
}

/// Pods bound per second, averaged over 5 s (clusterloader2's throughput interval).
fn scheduling_rate(samples: &[Sample], end_s: f64, marks: &Marks) -> Result<String, String> {
    let per = (crate::metrics::THROUGHPUT_INTERVAL_MS / 1000) as usize;
    let points = samples
        .chunks(per)
        .map(|c| {
            let t = c.last().map_or(0, |s| s.t) as f64;
            (t, c.iter().map(|s| s.scheduled).sum::<u64>() as f64 / per as f64)
        })
        .collect();
    line_chart(&[("pods scheduled per second".to_string(), points)], end_s, "pods/s", marks)
}

fn api_requests(
    windows: &[(u64, u64, BTreeMap<String, u64>)],
    end_s: f64,
    marks: &Marks,
) -> Result<String, String> {
    let mut by: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for (_, _, m) in windows {
        for c in m.keys() {
            by.entry(c.as_str()).or_default();
        }
    }
    for (from, to, m) in windows {
        let span = ((to - from) as f64 / 1000.0).max(0.001);
        for (c, points) in by.iter_mut() {
            let n = m.get(*c).copied().unwrap_or(0) as f64;
            points.push((*to as f64 / 1000.0, n / span));
        }
    }
    let series: Vec<(String, Vec<(f64, f64)>)> = by.into_iter().map(|(c, p)| (c.to_string(), p)).collect();
    line_chart(&series, end_s, "requests/s", marks)
}

/// A bar per leader term, a row per component, coloured by host.
fn leadership(c: &Collector, end_s: f64, marks: &Marks) -> Result<String, String> {
    let components = ["etcd", "kube-scheduler", "kube-controller-manager"];
    let mut hosts: Vec<&str> = c.terms().iter().map(|t| t.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 200)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let rows = components.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(170)
            .build_cartesian_2d(time_axis(end_s), 0f64..rows)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(components.len() * 2 + 1)
            .x_desc("simulated time")
            .x_label_formatter(&|x| fmt_time(*x))
            .y_label_formatter(&|y| {
                let row = y.floor() as usize;
                if (y - y.floor() - 0.5).abs() < 0.01 && row < components.len() {
                    components[components.len() - 1 - row].to_string()
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(err)?;
        draw_marks(&mut chart, marks, rows)?;
        for (ci, comp) in components.iter().enumerate() {
            let row = (components.len() - 1 - ci) as f64;
            let terms: Vec<_> = c.terms().iter().filter(|t| t.component == *comp).collect();
            for (k, term) in terms.iter().enumerate() {
                let from = term.from_ms as f64 / 1000.0;
                let to = terms.get(k + 1).map_or(end_s, |n| n.from_ms as f64 / 1000.0);
                let color = SERIES[hosts.iter().position(|h| *h == term.host).unwrap_or(0) % SERIES.len()];
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(from, row + 0.15), (to.max(from + end_s / 1000.0), row + 0.85)],
                        color.mix(0.85).filled(),
                    )))
                    .map_err(err)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{} (term {})", term.host, term.term),
                        (from + end_s / 200.0, row + 0.6),
                        ("sans-serif", 13).into_font().color(&WHITE),
                    )))
                    .map_err(err)?;
            }
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn marks_table(h: &mut String, marks: &Marks) {
    let mut all: Vec<(u64, &str, &Mark)> = Vec::new();
    all.extend(marks.faults.iter().map(|m| (m.t_ms, "fault", m)));
    all.extend(marks.actions.iter().map(|m| (m.t_ms, "action", m)));
    all.extend(marks.evictions.iter().map(|m| (m.t_ms, "eviction", m)));
    all.extend(marks.alarms.iter().map(|m| (m.t_ms, "etcd alarm", m)));
    all.sort_by_key(|(t, k, _)| (*t, *k));
    if all.is_empty() {
        return;
    }
    *h += if marks.alarms.is_empty() {
        "<h2>Faults, actions and evictions</h2>\n"
    } else {
        "<h2>Faults, actions, etcd alarms and evictions</h2>\n"
    };
    *h += "<table>\n<tr><th>time</th><th>kind</th><th>what</th><th>detail</th></tr>\n";
    const MAX_ROWS: usize = 200;
    for (t, kind, m) in all.iter().take(MAX_ROWS) {
        let _ = writeln!(
            h,
            "<tr><td class=\"num\">{}</td><td>{kind}</td><td>{}</td><td>{}</td></tr>",
            kubesim_model::time::SimTime(*t),
            esc(&m.what),
            esc(&m.detail)
        );
    }
    if all.len() > MAX_ROWS {
        let _ = writeln!(h, "<tr><td colspan=\"4\">… and {} more</td></tr>", all.len() - MAX_ROWS);
    }
    *h += "</table>\n";
}

fn expectations_table(h: &mut String, results: Option<&[OutcomeResult]>) {
    *h += "<h2>Expectations</h2>\n";
    let Some(results) = results else {
        *h += "<p>The trace has no outcome: the run did not finish.</p>\n";
        return;
    };
    if results.is_empty() {
        *h += "<p>The scenario states no expectations.</p>\n";
        return;
    }
    *h += "<table>\n<tr><th>result</th><th>expectation</th><th>observed</th></tr>\n";
    for r in results {
        let (class, word) = if r.passed { ("pass", "PASS") } else { ("fail", "FAIL") };
        let _ = writeln!(
            h,
            "<tr><td class=\"{class}\">{word}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.name),
            esc(&r.detail)
        );
    }
    *h += "</table>\n";
}

fn slo_tables(h: &mut String, m: &Metrics) {
    *h += "<h2>SLO metrics</h2>\n<p>As sig-scalability's SLIs define them: pod startup latency \
           (pod_startup_latency.md, SLO p99 ≤ 5 s), API call latency (api_call_latency.md, the worst \
           5-minute p99 ≤ 1 s, from the scenario's start on, as clusterloader2 measures from the \
           start of its test: the cluster's bootstrap left out), scheduling throughput as clusterloader2 \
           measures it.</p>\n";
    *h += "<table>\n<tr><th>metric</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>max</th><th>SLO</th></tr>\n";
    let p = &m.pod_startup_latency;
    let dist_row = |h: &mut String, name: &str, d: &crate::metrics::Distribution, slo: &str| {
        let _ = writeln!(
            h,
            "<tr><td>{name}</td><td class=\"num\">{}</td><td class=\"num\">{:.3}s</td><td class=\"num\">{:.3}s</td><td class=\"num\">{:.3}s</td><td class=\"num\">{:.3}s</td><td>{slo}</td></tr>",
            d.count, d.p50, d.p90, d.p99, d.max
        );
    };
    let verdict = if p.latency.count == 0 {
        "no pod started".to_string()
    } else if p.slo_met {
        format!("<span class=\"pass\">p99 ≤ {}s met</span>", p.slo_seconds)
    } else {
        format!("<span class=\"fail\">p99 ≤ {}s missed</span>", p.slo_seconds)
    };
    dist_row(h, "pod startup latency (excluding image pulls)", &p.latency, &verdict);
    dist_row(h, "pod startup, creation to running (image pulls included)", &p.end_to_end, "");
    dist_row(h, "pending time (creation to binding)", &m.pending_time.scheduled, "");
    *h += "</table>\n";
    let s = &m.scheduling;
    let _ = writeln!(
        h,
        "<table>\n<tr><th>scheduling</th><th>value</th></tr>\n\
         <tr><td>pods scheduled</td><td class=\"num\">{}</td></tr>\n\
         <tr><td>unschedulable attempts</td><td class=\"num\">{}</td></tr>\n\
         <tr><td>pods still pending at the end</td><td class=\"num\">{}</td></tr>\n\
         <tr><td>throughput (pods/s over {} s intervals): average / p50 / p90 / p99 / max</td><td class=\"num\">{} / {} / {} / {} / {}</td></tr>\n\
         <tr><td>leaders elected</td><td>{}</td></tr>\n\
         <tr><td>evictions</td><td>{}</td></tr>\n</table>",
        s.pods_scheduled,
        s.attempts.unschedulable,
        m.pending_time.still_pending,
        s.throughput.interval_seconds,
        s.throughput.average,
        s.throughput.perc50,
        s.throughput.perc90,
        s.throughput.perc99,
        s.throughput.max,
        esc(&m.leader_changes.iter().map(|(c, n)| format!("{c}: {n}")).collect::<Vec<_>>().join(", ")),
        if m.evictions.total == 0 {
            "0".to_string()
        } else {
            format!(
                "{} ({})",
                m.evictions.total,
                esc(&m.evictions.by_reason.iter().map(|(r, n)| format!("{r}: {n}")).collect::<Vec<_>>().join(", "))
            )
        }
    );
    *h += "<table>\n<tr><th>API call</th><th>kind</th><th>requests</th><th>p50</th><th>p90</th><th>p99</th><th>worst 5-minute p99</th><th>SLO</th></tr>\n";
    for a in &m.api_call_latency {
        let sub = if a.subresource.is_empty() { String::new() } else { format!("/{}", a.subresource) };
        let slo = if a.slo_met {
            format!("<span class=\"pass\">≤ {}s</span>", a.slo_seconds)
        } else {
            format!("<span class=\"fail\">&gt; {}s</span>", a.slo_seconds)
        };
        let _ = writeln!(
            h,
            "<tr><td>{} {}{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.3}s</td><td class=\"num\">{:.3}s</td><td class=\"num\">{:.3}s</td><td class=\"num\">{:.3}s</td><td>{slo}</td></tr>",
            esc(&a.verb), esc(&a.resource), esc(&sub), esc(&a.kind), a.count, a.p50_seconds, a.p90_seconds, a.p99_seconds, a.worst_5m_p99_seconds
        );
    }
    *h += "</table>\n";
    let by: Vec<String> = m.api_requests_by_component.iter().map(|(c, n)| format!("{c}: {n}")).collect();
    let _ = writeln!(h, "<p>API requests by component: {}</p>", esc(&by.join(", ")));
}

/// `kubesim report TRACE -o FILE`: reads the trace, writes the page.
pub fn report_file(trace: &std::path::Path, out: &std::path::Path) -> Result<(), String> {
    let f = std::fs::File::open(trace).map_err(|e| {
        format!("{}: {e} (write one with `kubesim run SCENARIO --trace FILE`)", trace.display())
    })?;
    let summary = read_trace(std::io::BufReader::new(f)).map_err(|e| format!("{}: {e}", trace.display()))?;
    let html = render(&summary)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(out, html).map_err(|e| format!("{}: {e}", out.display()))
}
