//! Issue 12's scenarios: preemption, topology spread, anti-affinity, extended resources
//! and a drain held by a PodDisruptionBudget pass on seeds 1 to 5 and replay; bad
//! scheduler profiles and capacities are input errors naming the line.

use std::path::Path;

use kubesim::run::{run_file, RunOptions, RunReport};

fn run(name: &str, seed: Option<u64>) -> RunReport {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(name);
    let opts = RunOptions { seed, ..Default::default() };
    run_file(&path, &opts).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Passes on seeds 1 to 5 (expectations state upstream's rules, not one seed's
/// outcome) and replays byte for byte on one.
fn sweep(name: &str) {
    for seed in 1..=5 {
        let r = run(name, Some(seed));
        assert!(r.all_passed(), "{name} seed {seed}:\n{}", r.summary());
        assert!(r.step_errors.is_empty(), "{name} seed {seed} timeline errors:\n{}", r.summary());
    }
    let (a, b) = (run(name, None), run(name, None));
    assert_eq!(a.trace_hash, b.trace_hash, "{name}: same seed, different trace");
}

#[test]
fn preemption_on_seeds_1_to_5() {
    sweep("preemption.yaml");
}

#[test]
fn topology_spread_on_seeds_1_to_5() {
    sweep("topology-spread.yaml");
}

#[test]
fn anti_affinity_on_seeds_1_to_5() {
    sweep("anti-affinity.yaml");
}

#[test]
fn gpu_on_seeds_1_to_5() {
    sweep("gpu.yaml");
}

#[test]
fn drain_on_seeds_1_to_5() {
    sweep("drain.yaml");
}

fn load_err(text: &str) -> String {
    let dir = std::env::temp_dir();
    kubesim::scenario::load_str(text, &dir.join("bad.yaml"), &dir).unwrap_err().to_string()
}

#[test]
fn bad_profiles_and_capacities_name_the_line() {
    let e = load_err(
        "name: x\nduration: 1m\ncontrolPlane:\n  kubeScheduler:\n    profiles:\n      - plugins: {score: {enabled: [{name: Nope}]}}\n",
    );
    assert!(e.contains("bad.yaml:6:9: kubeScheduler.profiles[0]"), "{e}");
    assert!(e.contains("\"Nope\" is not a plugin kubesim runs"), "{e}");
    let e = load_err(
        "name: x\nduration: 1m\ncontrolPlane:\n  kubeScheduler:\n    profiles:\n      - {}\n      - schedulerName: default-scheduler\n",
    );
    assert!(e.contains("schedulerName: Duplicate value: \"default-scheduler\""), "{e}");
    let e = load_err(
        "name: x\nduration: 1m\nnodePools:\n  - name: w\n    capacity: {cpu: \"1\", memory: 1Gi, gpus: \"2\"}\n",
    );
    assert!(e.contains("bad.yaml:5:39: node pool w: unknown capacity field \"gpus\""), "{e}");
    assert!(e.contains("nvidia.com/gpu"), "{e}");
}
