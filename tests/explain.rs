//! `kubesim explain`: the scheduler's attempt in force at an instant, read from a trace.
//! The layout is user-visible text, so an insta snapshot guards it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn kubesim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kubesim")).args(args).output().expect("run kubesim")
}

fn ok(args: &[&str]) -> String {
    let out = kubesim(args);
    assert!(
        out.status.success(),
        "kubesim {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn trace(scenario: &str, cell: &'static OnceLock<PathBuf>) -> &'static str {
    cell.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kubesim-explain-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let trace = dir.join(scenario.replace(".yaml", ".jsonl"));
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(scenario);
        ok(&["run", path.to_str().unwrap(), "--quiet", "--trace", trace.to_str().unwrap()]);
        trace
    })
    .to_str()
    .unwrap()
}

fn pending_pod() -> &'static str {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    trace("pending-pod.yaml", &TRACE)
}

fn preemption() -> &'static str {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    trace("preemption.yaml", &TRACE)
}

#[test]
fn pending_pod_solo_at_30s() {
    let text = ok(&["explain", "pod", "solo", "--trace", pending_pod(), "--at", "30s"]);
    for node in ["node-1", "node-2", "node-3"] {
        assert!(text.contains(node), "{node} missing:\n{text}");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn pending_pod_solo_json_has_the_same_verdicts() {
    let json = ok(&["explain", "pod", "solo", "--trace", pending_pod(), "--at", "30s", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let filtered = v["attempt"]["filtered"].as_array().unwrap();
    let verdicts: Vec<(&str, &str)> =
        filtered.iter().map(|f| (f["node"].as_str().unwrap(), f["plugin"].as_str().unwrap())).collect();
    assert_eq!(
        verdicts,
        [("node-1", "NodeUnschedulable"), ("node-2", "TaintToleration"), ("node-3", "NodeResourcesFit")]
    );
    assert_eq!(v["nodes"].as_array().unwrap().len(), 3);
}

#[test]
fn after_the_uncordon_the_attempt_in_force_is_the_successful_one() {
    let text = ok(&["explain", "pod", "solo", "--trace", pending_pod(), "--at", "90s"]);
    assert!(text.contains("Result:     Scheduled on node-1"), "{text}");
}

/// The time of a pod's first scheduling attempt, read from the trace.
fn first_attempt(trace: &str, pod: &str) -> String {
    let text = std::fs::read_to_string(trace).unwrap();
    let t = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["type"] == "scheduling" && r["attempt"]["pod"] == pod)
        .map(|r| r["t"].as_u64().unwrap())
        .expect("an attempt");
    format!("{t}ms")
}

#[test]
fn preemption_lists_candidates_and_victims() {
    let at = first_attempt(preemption(), "default/critical");
    let text = ok(&["explain", "pod", "critical", "--trace", preemption(), "--at", &at]);
    assert!(text.contains("Nominated:  node-1 (preemption)"), "{text}");
    assert!(text.contains("CANDIDATE"), "{text}");
    let victims = text.lines().find(|l| l.starts_with("node-1 *")).expect("the chosen candidate");
    assert_eq!(victims.matches("default/batch-").count(), 2, "{victims}");
    assert!(!victims.contains("protected"), "{victims}");
}

#[test]
fn unknown_pods_and_other_kinds_are_input_errors() {
    let out = kubesim(&["explain", "pod", "nope", "--trace", pending_pod(), "--at", "30s"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no scheduling attempt for pod default/nope by 30s"), "{err}");
    assert!(err.contains("default/solo"), "{err}");
    let out = kubesim(&["explain", "node", "node-1", "--trace", pending_pod()]);
    assert_eq!(out.status.code(), Some(2));
}
