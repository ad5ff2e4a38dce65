//! The `kubesim` binary: exit codes, error messages naming file and line, and kubectl-style
//! views of a trace at an instant.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kubesim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubesim")).args(args).output().expect("run kubesim")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kubesim-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn scenario(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("s.yaml");
    std::fs::write(&p, body).unwrap();
    p
}

const HEAD: &str =
    "name: t\nduration: 1m\nnodePools:\n  - name: w\n    capacity: {cpu: \"2\", memory: 4Gi}\n";

/// Runs a bad scenario: exit code 2, and stderr names the file and the line.
pub(crate) fn assert_bad(name: &str, body: &str, line: usize, needle: &str) {
    let dir = scratch(name);
    let p = scenario(&dir, body);
    let out = kubesim(&["run", p.to_str().unwrap(), "--quiet"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name}: stderr: {err}");
    let loc = format!("{}:{line}:", p.display());
    assert!(err.contains(&loc), "{name}: want {loc} in: {err}");
    assert!(err.contains(needle), "{name}: want {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{name}: {err}");
}

#[test]
fn malformed_yaml_exits_2_with_line() {
    assert_bad("malformed", &format!("{HEAD}seed: 1: 2\n"), 6, "");
}

#[test]
fn unknown_field_exits_2_with_line() {
    assert_bad("unknown", &format!("{HEAD}    colour: blue\n"), 6, "colour");
}

#[test]
fn bad_quantity_exits_2_with_line() {
    let body = "name: t\nduration: 1m\nnodePools:\n  - name: w\n    capacity: {cpu: \"2\", memory: 1Gx}\n";
    assert_bad("quantity", body, 5, "quantities must match");
}

#[test]
fn missing_manifest_exits_2_with_line() {
    assert_bad("missing", &format!("{HEAD}workloads:\n  - path: nowhere/web.yaml\n"), 7, "nowhere/web.yaml");
}

#[test]
fn negative_replicas_exits_2_with_manifest_line() {
    let dir = scratch("negative");
    std::fs::write(
        dir.join("d.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: -1\n",
    )
    .unwrap();
    let p = scenario(&dir, &format!("{HEAD}workloads:\n  - path: d.yaml\n"));
    let out = kubesim(&["run", p.to_str().unwrap(), "--quiet"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("d.yaml:5:"), "{err}");
    assert!(err.contains("must be greater than or equal to 0"), "{err}");
}

#[test]
fn bad_time_exits_2_with_line() {
    assert_bad("time", &format!("{HEAD}timeline:\n  - at: soon\n    cordon: w-1\n"), 7, "soon");
}

#[test]
fn missing_scenario_file_exits_2() {
    let out = kubesim(&["run", "/nonexistent/scenario.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/scenario.yaml"));
}

#[test]
fn failing_expectation_exits_1_naming_it() {
    let dir = scratch("fail");
    let p = scenario(
        &dir,
        &format!("{HEAD}expectations:\n  - name: impossible\n    at: 30s\n    podCount: {{phase: Running}}\n    equals: 7\n"),
    );
    let out = kubesim(&["run", p.to_str().unwrap(), "--quiet"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL impossible"), "{stdout}");
    assert!(stdout.contains("observed 0 pods"), "{stdout}");
}

#[test]
fn pending_pod_describe_between_failure_and_uncordon() {
    let dir = scratch("describe");
    let trace = dir.join("pending.jsonl");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pending-pod.yaml");
    let out = kubesim(&["run", scenario.to_str().unwrap(), "--quiet", "--trace", trace.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let t = trace.to_str().unwrap();

    let at30 = kubesim(&["describe", "pod", "solo", "--trace", t, "--at", "30s"]);
    let text = String::from_utf8_lossy(&at30.stdout);
    assert_eq!(at30.status.code(), Some(0), "{}", String::from_utf8_lossy(&at30.stderr));
    assert!(text.contains("FailedScheduling"), "{text}");
    assert!(text.contains("0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable."), "{text}");
    assert!(text.contains("Node:             <none>"), "{text}");

    let at120 = kubesim(&["describe", "pod", "solo", "--trace", t, "--at", "120s"]);
    let text = String::from_utf8_lossy(&at120.stdout);
    assert!(text.contains("Successfully assigned default/solo to node-1"), "{text}");

    let pods = kubesim(&["get", "pods", "--trace", t, "--at", "30s"]);
    let text = String::from_utf8_lossy(&pods.stdout);
    assert!(text.lines().any(|l| l.starts_with("solo ") && l.contains("Pending")), "{text}");
}

/// Bad input to `kubesim fuzz etcd` exits 2 with a message, never a panic.
#[test]
fn fuzz_etcd_bad_input_exits_2() {
    for args in [
        vec!["fuzz", "etcd", "--members", "1", "--cases", "1"],
        vec!["fuzz", "etcd", "--replay", r#"{"seed":1,"members":0,"faults":[]}"#],
        vec!["fuzz", "etcd", "--replay", r#"{"seed":1,"members":3,"faults":[[10,{"Kill":9}]]}"#],
        vec!["fuzz", "etcd", "--replay", "not json"],
    ] {
        let out = kubesim(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// A key repeated inside a string and the second of two entries at one `at`: the line
/// is the parser's, not a text search's.
#[test]
fn error_lines_come_from_the_parser() {
    assert_bad(
        "desc-hosts",
        "name: t\ndescription: \"hosts: 9\"\nduration: 1m\ncontrolPlane:\n  hosts: 9\n",
        5,
        "controlPlane.hosts 9",
    );
    assert_bad(
        "same-at",
        &format!("{HEAD}timeline:\n  - at: 10s\n    cordon: w-1\n  - at: 10s\n    cordon: w-7\n"),
        10,
        "no host named \"w-7\"",
    );
}
