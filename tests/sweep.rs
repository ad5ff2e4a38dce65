//! `kubesim sweep` (issue 14): a grid of node counts over a small scenario, run in this
//! process, tabulated as CSV and HTML with the SLO metrics per combination.

use std::path::Path;
use std::process::Command;

#[test]
fn a_sweep_of_node_counts_tabulates_each_combination() {
    let dir = std::env::temp_dir().join(format!("kubesim-sweep-{}", std::process::id()));
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args([
            "sweep",
            scenario.to_str().unwrap(),
            "--set",
            "nodePools[0].count=3,4",
            "--seeds",
            "2",
            "--jobs",
            "2",
            "--quiet",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let csv = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 2 * 2, "a header and one row per (count, seed):\n{csv}");
    assert!(lines[0].starts_with("nodePools[0].count,seed,expectations_passed,"), "{csv}");
    assert!(lines[1].starts_with("3,1,") && lines[2].starts_with("3,2,"), "{csv}");
    assert!(lines[3].starts_with("4,1,") && lines[4].starts_with("4,2,"), "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let p99 = header.iter().position(|h| *h == "pod_startup_p99_s").unwrap();
    let failed = header.iter().position(|h| *h == "unschedulable_attempts").unwrap();
    for row in &lines[1..] {
        let v: f64 = row.split(',').nth(p99).unwrap().parse().unwrap();
        assert!(v > 0.0 && v < 5.0, "{row}");
        // quickstart's pods all fit: no FailedScheduling.
        assert_eq!(row.split(',').nth(failed), Some("0"), "{row}");
    }
    // The same seed and settings give the same metrics as a plain run would (seeds differ).
    let html = std::fs::read_to_string(dir.join("sweep.html")).unwrap();
    assert!(html.contains("<table>"), "the table");
    for chart in ["Pod startup latency p99 (s)", "Pods still pending at the end", "Scheduling throughput"] {
        assert!(html.contains(chart), "want the chart {chart:?}");
    }
    assert_eq!(html.matches("<svg").count(), 4, "four charts");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().next(), Some(lines[0]));
}

#[test]
fn a_sweep_path_the_scenario_lacks_exits_2() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/quickstart.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args(["sweep", scenario.to_str().unwrap(), "--set", "nodePools[7].count=3"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("nodePools[7].count"), "{err}");
}
