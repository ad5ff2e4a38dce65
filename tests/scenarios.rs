//! Every small bundled scenario passes its own expectations and is deterministic: the same
//! seed gives the same trace hash twice; another seed changes it where the scenario has
//! random choices (generated names, tie-breaks).

use std::path::Path;

use kubesim::run::{run_file, RunOptions, RunReport};

fn run(name: &str, seed: Option<u64>) -> RunReport {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(name);
    let opts = RunOptions { seed, ..Default::default() };
    run_file(&path, &opts).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_passes_and_replays(name: &str) -> RunReport {
    let a = run(name, None);
    assert!(a.all_passed(), "{name} expectations failed:\n{}", a.summary());
    assert!(a.step_errors.is_empty(), "{name} timeline errors:\n{}", a.summary());
    let b = run(name, None);
    assert_eq!(a.trace_hash, b.trace_hash, "{name}: same seed, different trace");
    assert_eq!(a.records, b.records);
    a
}

#[test]
fn quickstart_passes_and_is_deterministic() {
    let a = assert_passes_and_replays("quickstart.yaml");
    let other = run("quickstart.yaml", Some(a.seed + 1));
    assert_ne!(a.trace_hash, other.trace_hash, "pod names are random: another seed must change the trace");
}

#[test]
fn pending_pod_passes_and_is_deterministic() {
    let a = assert_passes_and_replays("pending-pod.yaml");
    let other = run("pending-pod.yaml", Some(a.seed + 1));
    assert_ne!(a.trace_hash, other.trace_hash);
}

#[test]
fn node_kill_passes_and_is_deterministic() {
    assert_passes_and_replays("node-kill.yaml");
}

#[test]
fn node_partition_passes_and_is_deterministic() {
    assert_passes_and_replays("node-partition.yaml");
}

#[test]
fn etcd_leader_kill_passes_and_is_deterministic() {
    assert_passes_and_replays("etcd-leader-kill.yaml");
}

#[test]
fn etcd_leader_partition_passes_and_is_deterministic() {
    assert_passes_and_replays("etcd-leader-partition.yaml");
}

#[test]
fn node_returns_early_passes_and_is_deterministic() {
    assert_passes_and_replays("node-returns-early.yaml");
}

#[test]
fn node_returns_late_passes_and_is_deterministic() {
    assert_passes_and_replays("node-returns-late.yaml");
}

#[test]
fn two_nodes_fail_passes_and_is_deterministic() {
    assert_passes_and_replays("two-nodes-fail.yaml");
}

#[test]
fn toleration_seconds_passes_and_is_deterministic() {
    assert_passes_and_replays("toleration-seconds.yaml");
}

#[test]
fn node_deleted_passes_and_is_deterministic() {
    assert_passes_and_replays("node-deleted.yaml");
}

#[test]
fn node_partition_grace_40s_passes_and_is_deterministic() {
    assert_passes_and_replays("node-partition-grace-40s.yaml");
}

/// The times of the node lifecycle's steps in a trace: node-2 going Unknown, its
/// NoExecute taint, and the eviction of its web pod.
fn lifecycle_times(trace: &Path) -> (u64, u64, u64) {
    let text = std::fs::read_to_string(trace).unwrap();
    let (mut unknown, mut tainted, mut evicted) = (None, None, None);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["type"] != "write" {
            continue;
        }
        let (t, o) = (v["t"].as_u64().unwrap(), &v["object"]);
        if o["kind"] == "Node" && o["metadata"]["name"] == "node-2" {
            let ready =
                o["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
            if unknown.is_none() && ready.is_some_and(|c| c["status"] == "Unknown") {
                unknown = Some(t);
            }
            let no_exec = o["spec"]["taints"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|x| x["effect"] == "NoExecute"));
            if tainted.is_none() && no_exec {
                tainted = Some(t);
            }
        }
        if evicted.is_none() && o["kind"] == "Event" && o["reason"] == "TaintManagerEviction" {
            evicted = Some(t);
        }
    }
    (unknown.unwrap(), tainted.unwrap(), evicted.unwrap())
}

/// --node-monitor-grace-period is a flag a scenario can set: 40 s (v1.31's default)
/// moves every step of the node lifecycle exactly 10 s earlier than v1.33's 50 s, seed for
/// seed.
#[test]
fn node_monitor_grace_period_40s_shifts_the_timeline_by_10s() {
    let dir = std::env::temp_dir().join(format!("kubesim-grace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut times = Vec::new();
    for name in ["node-partition.yaml", "node-partition-grace-40s.yaml"] {
        let trace = dir.join(format!("{name}.jsonl"));
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(name);
        let opts = RunOptions { trace: Some(trace.clone()), ..Default::default() };
        let r = run_file(&path, &opts).unwrap();
        assert!(r.all_passed(), "{}", r.summary());
        times.push(lifecycle_times(&trace));
    }
    let (v133, v131) = (times[0], times[1]);
    assert_eq!(v133.0 - v131.0, 10_000, "Unknown: {v133:?} vs {v131:?}");
    assert_eq!(v133.1 - v131.1, 10_000, "NoExecute taint: {v133:?} vs {v131:?}");
    assert_eq!(v133.2 - v131.2, 10_000, "eviction: {v133:?} vs {v131:?}");
}

#[test]
fn statefulset_out_of_service_passes_and_is_deterministic() {
    assert_passes_and_replays("statefulset-out-of-service.yaml");
}

#[test]
fn kcm_failover_passes_and_is_deterministic() {
    assert_passes_and_replays("kcm-failover.yaml");
}

#[test]
fn crashloop_passes_and_is_deterministic() {
    assert_passes_and_replays("crashloop.yaml");
}

#[test]
fn oom_kill_passes_and_is_deterministic() {
    assert_passes_and_replays("oom-kill.yaml");
}

#[test]
fn bad_image_passes_and_is_deterministic() {
    assert_passes_and_replays("bad-image.yaml");
}

#[test]
fn liveness_restart_passes_and_is_deterministic() {
    assert_passes_and_replays("liveness-restart.yaml");
}

#[test]
fn memory_pressure_passes_and_is_deterministic() {
    assert_passes_and_replays("memory-pressure.yaml");
}

#[test]
fn disk_pressure_passes_and_is_deterministic() {
    assert_passes_and_replays("disk-pressure.yaml");
}

#[test]
fn cluster_full_passes_and_is_deterministic() {
    assert_passes_and_replays("cluster-full.yaml");
}

#[test]
fn job_passes_and_is_deterministic() {
    assert_passes_and_replays("job.yaml");
}

#[test]
fn rolling_update_passes_and_is_deterministic() {
    assert_passes_and_replays("rolling-update.yaml");
}

#[test]
fn event_ttl_passes_and_is_deterministic() {
    assert_passes_and_replays("event-ttl.yaml");
}

#[test]
fn crash_container_passes_and_is_deterministic() {
    assert_passes_and_replays("crash-container.yaml");
}

#[test]
fn pid_pressure_passes_and_is_deterministic() {
    assert_passes_and_replays("pid-pressure.yaml");
}

#[test]
fn inode_pressure_passes_and_is_deterministic() {
    assert_passes_and_replays("inode-pressure.yaml");
}

/// Expectations are sampled once the workloads are applied (~10 s in): a `within` window
/// that closed before then fails as never sampled instead of passing on a late sample.
#[test]
fn a_window_closed_before_sampling_starts_fails() {
    let dir = std::env::temp_dir().join(format!("kubesim-window-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("early.yaml");
    let text = |within: &str| {
        format!(
            "name: early\nduration: 30s\nnodePools: [{{name: worker, count: 1, capacity: {{cpu: '4', memory: 16Gi}}}}]\n\
             workloads:\n  - manifest: {{apiVersion: v1, kind: Pod, metadata: {{name: p}}, spec: {{containers: [{{name: c, image: busybox}}]}}}}\n\
             expectations:\n  - name: scheduled\n    within: {within}\n    event: {{reason: Scheduled, involvedObject: {{kind: Pod, name: p}}}}\n"
        )
    };
    std::fs::write(&path, text("5s")).unwrap();
    let r = run_file(&path, &RunOptions::default()).unwrap();
    assert!(!r.results[0].passed, "{}", r.summary());
    assert!(r.results[0].detail.starts_with("never sampled"), "{}", r.results[0].detail);
    std::fs::write(&path, text("20s")).unwrap();
    let r = run_file(&path, &RunOptions::default()).unwrap();
    assert!(r.all_passed(), "{}", r.summary());
    std::fs::remove_dir_all(&dir).ok();
}
