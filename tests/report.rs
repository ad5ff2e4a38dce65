//! `kubesim report`, `kubesim export --perfetto` and the metrics (issue 14), on one run of
//! node-partition.yaml: the report draws its charts in a real browser (headless Chromium,
//! skipped with a notice where it is not installed), the committed reference report is
//! what the current code writes, and the Perfetto export has the trace event format's
//! required fields.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn kubesim(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kubesim")).args(args).output().expect("run kubesim");
    assert!(
        out.status.success(),
        "kubesim {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kubesim-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// node-partition.yaml's trace and metrics, run once per test binary (from the repository
/// root, as CI runs it, so the report names the same file).
fn node_partition() -> &'static (PathBuf, PathBuf) {
    static RUN: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    RUN.get_or_init(|| {
        let (trace, metrics) = (scratch().join("np.jsonl"), scratch().join("np-metrics.json"));
        let out = Command::new(env!("CARGO_BIN_EXE_kubesim"))
            .current_dir(root())
            .args(["run", "scenarios/node-partition.yaml", "--quiet", "--trace"])
            .arg(&trace)
            .arg("--metrics")
            .arg(&metrics)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (trace, metrics)
    })
}

fn report() -> &'static PathBuf {
    static HTML: OnceLock<PathBuf> = OnceLock::new();
    HTML.get_or_init(|| {
        let html = scratch().join("node-partition.html");
        kubesim(&["report", node_partition().0.to_str().unwrap(), "-o", html.to_str().unwrap()]);
        html
    })
}

#[test]
fn the_committed_reference_report_is_current() {
    let fresh = std::fs::read_to_string(report()).unwrap();
    let committed = std::fs::read_to_string(root().join("reports/node-partition.html")).unwrap_or_default();
    assert!(
        fresh == committed,
        "reports/node-partition.html is stale: regenerate it with\n  kubesim run scenarios/node-partition.yaml --trace /tmp/np.jsonl && kubesim report /tmp/np.jsonl -o reports/node-partition.html"
    );
}

#[test]
fn the_report_is_self_contained_with_its_tables() {
    let html = std::fs::read_to_string(report()).unwrap();
    // The SVG namespace is a name, not a load; nothing else names a URL.
    let without_ns = html.replace(r#"xmlns="http://www.w3.org/2000/svg""#, "");
    assert!(
        !without_ns.contains("http://") && !without_ns.contains("https://"),
        "the report loads nothing from a network"
    );
    for external in ["src=", "href=", "<link", "@import", "url("] {
        assert!(!html.contains(external), "no external resource: {external}");
    }
    assert!(html.matches("<svg").count() >= 6, "six charts");
    for want in [
        "Pods by phase",
        "Pending pods",
        "Nodes by Ready condition",
        "Scheduling rate",
        "API requests per component",
        "Leaders",
        "<h2>Expectations</h2>",
        "<h2>SLO metrics</h2>",
        "<h2>Scenario</h2>",
        "name: node-partition",
        "partition",
        "TaintManagerEviction",
    ] {
        assert!(html.contains(want), "want {want:?} in the report");
    }
    // The expectations table holds the run's results.
    assert!(html.matches("class=\"pass\">PASS").count() >= 5);
}

/// The first Chromium on PATH (Debian's `chromium`).
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|b| std::env::split_paths(&path).map(move |d| d.join(b)))
        .find(|p| p.is_file())
}

#[test]
fn the_report_renders_at_least_four_charts_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        eprintln!("SKIPPED the_report_renders_at_least_four_charts_in_headless_chromium: no chromium on PATH (apt-get install chromium; CI installs it)");
        return;
    };
    let profile = scratch().join("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", report().display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let drawn = dom
        .split("data-charts-drawn=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_else(|| {
            panic!("the page's script did not run: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr))
        });
    assert!(drawn >= 4, "only {drawn} charts drawn");
}

#[test]
fn the_metrics_json_has_the_slis() {
    let text = std::fs::read_to_string(&node_partition().1).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let startup = &m["metrics"]["podStartupLatency"]["latency"];
    // Three node-exporter pods, three web pods and the web pod's replacement start, each
    // in about the kubelet's 1 s pull-and-start, pulls excluded: well under the 5 s SLO.
    assert!(startup["count"].as_u64().unwrap() >= 4, "{text}");
    assert!(startup["p99Seconds"].as_f64().unwrap() < 5.0, "{text}");
    assert_eq!(m["metrics"]["podStartupLatency"]["sloMet"], true);
    assert!(m["metrics"]["scheduling"]["podsScheduled"].as_u64().unwrap() >= 4);
    assert!(m["metrics"]["scheduling"]["throughput"]["max"].as_f64().unwrap() > 0.0);
    // The partitioned node's pod is evicted by the taint manager 300 s after the taint.
    assert_eq!(m["metrics"]["evictions"]["byReason"]["TaintManagerEviction"], 1, "{text}");
    assert_eq!(m["metrics"]["leaderChanges"]["etcd"], 1, "{text}");
    let api = m["metrics"]["apiCallLatency"].as_array().unwrap();
    let bind = api.iter().find(|a| a["subresource"] == "binding").expect("pods/binding calls");
    assert_eq!(bind["verb"], "POST");
    assert!(bind["count"].as_u64().unwrap() >= 4);
    assert!(m["metrics"]["apiRequestsByComponent"]["kubelet"].as_u64().unwrap() > 0);
}

/// Chrome's trace event format ("Trace Event Format" document): every event has `ph`,
/// `pid`, `tid` and a numeric `ts`; complete events a `dur`; instants a scope; metadata
/// events name a process or thread; slices on one thread nest.
#[test]
fn the_perfetto_export_is_a_valid_trace_event_file() {
    let out = scratch().join("np-perfetto.json");
    kubesim(&["export", "--perfetto", node_partition().0.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let events = doc["traceEvents"].as_array().expect("traceEvents");
    let mut slices: std::collections::BTreeMap<(u64, u64), Vec<(u64, u64)>> = Default::default();
    let (mut processes, mut threads, mut faults, mut leaders) = (0, 0, 0, 0);
    for e in events {
        let ph = e["ph"].as_str().expect("ph");
        assert!(e["name"].is_string(), "{e}");
        let (pid, tid) = (e["pid"].as_u64().expect("pid"), e["tid"].as_u64().expect("tid"));
        let ts = e["ts"].as_u64().expect("ts in microseconds");
        match ph {
            "M" => {
                assert!(e["args"]["name"].is_string(), "{e}");
                match e["name"].as_str().unwrap() {
                    "process_name" => processes += 1,
                    "thread_name" => threads += 1,
                    other => panic!("unknown metadata event {other}"),
                }
            }
            "X" => {
                let dur = e["dur"].as_u64().expect("dur");
                slices.entry((pid, tid)).or_default().push((ts, ts + dur));
                leaders += e["name"].as_str().unwrap().starts_with("leader (term") as usize;
            }
            "i" => {
                assert!(matches!(e["s"].as_str(), Some("g" | "p" | "t")), "{e}");
                faults += (e["cat"] == "fault") as usize;
            }
            other => panic!("unexpected phase {other}"),
        }
    }
    for (track, mut s) in slices {
        s.sort();
        for w in s.windows(2) {
            assert!(w[0].1 <= w[1].0, "overlapping slices on {track:?}: {w:?}");
        }
    }
    assert!(processes >= 5, "control-plane hosts, the three workers and the cluster");
    assert!(threads >= 5);
    assert_eq!(faults, 1, "the partition");
    assert!(leaders >= 3, "etcd, kube-scheduler and kube-controller-manager terms");
}
