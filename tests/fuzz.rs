//! `kubesim fuzz SCENARIO`: planted bugs are caught and written as repro files that
//! `kubesim run` replays to the same failure and trace hash; seed sweeps find
//! expectations that hold on one seed only.

use std::path::{Path, PathBuf};
use std::process::Command;

use kubesim::cluster_fuzz::{fuzz_scenarios, FuzzOptions};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kubesim-fuzz-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn opts(scenario: PathBuf, seeds: Vec<u64>, swarm: bool, out: PathBuf) -> FuzzOptions {
    FuzzOptions {
        scenarios: vec![scenario],
        seeds,
        jobs: 2,
        swarm,
        time_budget: None,
        junit: None,
        out,
        planted_ignore_taints: false,
        quiet: true,
    }
}

/// A cluster with a tainted node and pods that do not tolerate it: the TaintToleration
/// filter keeps them off it; the planted scheduler bug binds some there.
const TAINTED: &str = "name: tainted\nduration: 4m\nnodePools:\n  - name: w\n    count: 2\n    namePattern: \"node-{i}\"\n    capacity: {cpu: \"4\", memory: 16Gi}\n  - name: gpu\n    count: 1\n    namePattern: \"gpu-{i}\"\n    capacity: {cpu: \"4\", memory: 16Gi}\n    taints: [{key: dedicated, value: gpu, effect: NoSchedule}]\nworkloads:\n  - manifest:\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata: {name: web}\n      spec:\n        replicas: 6\n        selector: {matchLabels: {app: web}}\n        template:\n          metadata: {labels: {app: web}}\n          spec: {containers: [{name: web, image: nginx, resources: {requests: {cpu: 100m}}}]}\n";

/// Invariant bind-tolerates-taints, proven by the planted scheduler bug: caught on the
/// first seed (6 pods over 3 nodes put some on the tainted one); clean without the bug.
#[test]
fn planted_scheduler_ignoring_taints_is_caught_and_replays() {
    let dir = scratch("taints");
    let scenario = dir.join("tainted.yaml");
    std::fs::write(&scenario, TAINTED).unwrap();
    let clean = fuzz_scenarios(&opts(scenario.clone(), vec![1, 2], true, dir.join("out-clean"))).unwrap();
    assert_eq!(clean.failed(), 0, "{}", clean.text);
    let mut o = opts(scenario, vec![1], true, dir.join("out"));
    o.planted_ignore_taints = true;
    let s = fuzz_scenarios(&o).unwrap();
    assert_eq!(s.failed(), 1, "{}", s.text);
    let (what, _) = s.results[0].failure.clone().unwrap();
    assert_eq!(what, "bind-tolerates-taints", "{}", s.text);
    assert!(s.text.contains("replay: kubesim run "), "{}", s.text);
}

/// A scenario whose expectation holds on some seeds only: the sweep fails (exit 1), writes
/// a repro, and `kubesim run` replays it to the same failure and trace hash, twice.
#[test]
fn a_seed_dependent_expectation_fails_the_sweep_with_a_replayable_repro() {
    let dir = scratch("sweep");
    let scenario = dir.join("flaky.yaml");
    // Which node gets the single pod is a seeded tie-break among three equal nodes.
    std::fs::write(
        &scenario,
        "name: flaky\nduration: 1m\nnodePools:\n  - name: w\n    count: 3\n    namePattern: \"node-{i}\"\n    capacity: {cpu: \"4\", memory: 16Gi}\nworkloads:\n  - manifest:\n      apiVersion: v1\n      kind: Pod\n      metadata: {name: solo}\n      spec: {containers: [{name: c, image: busybox}]}\nexpectations:\n  - name: solo on node-1\n    at: 50s\n    podCount: {node: node-1}\n    equals: 1\n",
    )
    .unwrap();
    let out = dir.join("out");
    let bin = env!("CARGO_BIN_EXE_kubesim");
    let run = Command::new(bin)
        .args(["fuzz", scenario.to_str().unwrap(), "--seeds", "8", "--jobs", "2", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("8 seeds, "), "{stdout}");
    let replay =
        stdout.lines().find_map(|l| l.trim().strip_prefix("replay: ")).expect("a replay line").to_string();
    let args: Vec<&str> = replay.split_whitespace().skip(1).collect();
    let hashes: Vec<String> = (0..2)
        .map(|_| {
            let r = Command::new(bin).args(&args).arg("--quiet").output().unwrap();
            let text = String::from_utf8_lossy(&r.stdout).to_string();
            assert_eq!(r.status.code(), Some(1), "{text}");
            assert!(text.contains("FAIL solo on node-1"), "{text}");
            text.lines().find(|l| l.starts_with("trace-hash:")).unwrap().to_string()
        })
        .collect();
    assert_eq!(hashes[0], hashes[1]);
    assert!(Path::new(args[1]).starts_with(&out), "{replay}");
}

#[test]
fn fuzz_bad_input_exits_2() {
    let bin = env!("CARGO_BIN_EXE_kubesim");
    for args in [
        vec!["fuzz", "/nonexistent.yaml", "--seeds", "1"],
        vec!["fuzz", "scenarios/quickstart.yaml", "--shard", "4/4"],
        vec!["fuzz", "scenarios/quickstart.yaml", "--seed-range", "5..5"],
        vec!["fuzz", "scenarios/quickstart.yaml", "--faults", "chaos"],
        // 2 minutes leave no room for faults and the liveness bound.
        vec!["fuzz", "scenarios/quickstart.yaml", "--faults", "swarm", "--seeds", "1"],
    ] {
        let r = Command::new(bin).args(&args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
