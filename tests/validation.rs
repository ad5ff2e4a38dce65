//! What the API server rejects fails the run: a workload or timeline step it refuses makes
//! `kubesim run` exit 1 naming the object and upstream's message, unless the entry says
//! `expectError`; misused `expectError` and invalid node names are scenario errors (exit 2).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kubesim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubesim")).args(args).output().expect("run kubesim")
}

fn scenario(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kubesim-validation-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("s.yaml");
    std::fs::write(&p, body).unwrap();
    p
}

const HEAD: &str = "name: t\nduration: 30s\ncontrolPlane: {hosts: 1}\nnodePools:\n  - name: w\n    capacity: {cpu: \"2\", memory: 4Gi}\n";

fn run(p: &Path) -> (Option<i32>, String, String) {
    let out = kubesim(&["run", p.to_str().unwrap(), "--quiet"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stdout, stderr)
}

const MISMATCHED: &str = "      apiVersion: apps/v1\n      kind: Deployment\n      metadata: {name: web}\n      spec:\n        selector: {matchLabels: {app: web}}\n        template:\n          metadata: {labels: {app: x}}\n          spec: {containers: [{name: c, image: nginx}]}\n";

/// The case: a Deployment aimed at a namespace that does not exist used to print a
/// line and exit 0.
#[test]
fn a_workload_in_a_missing_namespace_exits_1_with_upstreams_message() {
    let body = format!(
        "{HEAD}workloads:\n  - manifest:\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata: {{name: web, namespace: nowhere}}\n      spec:\n        selector: {{matchLabels: {{app: web}}}}\n        template:\n          metadata: {{labels: {{app: web}}}}\n          spec: {{containers: [{{name: c, image: nginx}}]}}\n"
    );
    let (code, stdout, stderr) = run(&scenario("missing-ns", &body));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("FAIL workload deployments/nowhere/web rejected at"), "{stdout}");
    assert!(stdout.contains("namespaces \"nowhere\" not found"), "{stdout}");
}

#[test]
fn an_invalid_workload_exits_1_naming_it_and_upstreams_message() {
    let body = format!("{HEAD}workloads:\n  - manifest:\n{MISMATCHED}");
    let (code, stdout, stderr) = run(&scenario("invalid", &body));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`"),
        "{stdout}"
    );
}

#[test]
fn an_expected_rejection_passes_and_an_unexpected_acceptance_fails() {
    let body = format!(
        "{HEAD}workloads:\n  - expectError: \"does not match template\"\n    manifest:\n{MISMATCHED}"
    );
    let (code, stdout, stderr) = run(&scenario("expected", &body));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("PASS workload deployments/web is rejected with"), "{stdout}");

    let valid = MISMATCHED.replace("app: x", "app: web");
    let body =
        format!("{HEAD}workloads:\n  - expectError: \"does not match template\"\n    manifest:\n{valid}");
    let (code, stdout, _) = run(&scenario("unexpected", &body));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("FAIL workload deployments/web is rejected with"), "{stdout}");
    assert!(stdout.contains("it was accepted"), "{stdout}");
}

#[test]
fn a_rejected_timeline_step_exits_1() {
    let valid = MISMATCHED.replace("app: x", "app: web");
    let changed = valid
        .replace("{app: web}}\n        template", "{app: web, v: \"2\"}}\n        template")
        .replace("labels: {app: web}", "labels: {app: web, v: \"2\"}");
    let changed =
        changed.replace("\n      ", "\n        ").replacen("      apiVersion", "        apiVersion", 1);
    let body = format!("{HEAD}workloads:\n  - manifest:\n{valid}timeline:\n  - at: 10s\n    apply:\n      manifest:\n{changed}");
    let (code, stdout, stderr) = run(&scenario("timeline", &body));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("FAIL timeline step apply at 10s failed: Deployment.apps \"web\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"v\":\"2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"), "{stdout}");
}

fn assert_bad(name: &str, body: &str, needle: &str) {
    let (code, stdout, stderr) = run(&scenario(name, body));
    assert_eq!(code, Some(2), "{name}: {stdout}{stderr}");
    assert!(stderr.contains(needle), "{name}: want {needle:?} in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn misused_expect_error_is_a_scenario_error() {
    let two = format!(
        "{HEAD}workloads:\n  - expectError: \"x\"\n    manifest:\n      apiVersion: v1\n      kind: List\n      items:\n        - {{apiVersion: v1, kind: ConfigMap, metadata: {{name: a}}}}\n        - {{apiVersion: v1, kind: ConfigMap, metadata: {{name: b}}}}\n"
    );
    assert_bad("two", &two, "expectError applies to a workloads entry of one object; this one has 2");
    let empty = format!("{HEAD}workloads:\n  - expectError: \"\"\n    manifest:\n{MISMATCHED}");
    assert_bad("empty", &empty, "expectError is empty");
    let nested = format!(
        "{HEAD}timeline:\n  - at: 1s\n    apply:\n      expectError: \"x\"\n      manifest: {{apiVersion: v1, kind: ConfigMap, metadata: {{name: a}}}}\n"
    );
    assert_bad("nested", &nested, "a timeline apply takes expectError on the entry");
}

#[test]
fn node_names_from_name_pattern_must_be_subdomains() {
    let body = "name: t\nduration: 30s\nnodePools:\n  - name: w\n    namePattern: \"Worker_{i}\"\n    capacity: {cpu: \"2\", memory: 4Gi}\n";
    assert_bad(
        "node-name",
        body,
        "Node \"Worker_1\" is invalid: metadata.name: Invalid value: \"Worker_1\": a lowercase RFC 1123 subdomain must consist of",
    );
}

/// The bundled scenario: every rejection expected, the valid workload unaffected.
#[test]
fn rejected_apply_scenario_passes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/rejected-apply.yaml");
    let r = kubesim::run::run_file(&path, &Default::default()).unwrap();
    assert!(r.all_passed(), "{}", r.summary());
    assert_eq!(r.results.len(), 9, "{}", r.summary());
}

/// `label` is checked when the file loads: something to do, and a key not both set and
/// removed (kubectl's rule), each error at its line.
#[test]
fn label_actions_are_checked_on_load() {
    let nothing = format!("{HEAD}timeline:\n  - at: 1s\n    label: {{kind: Pod, name: p}}\n");
    assert_bad("label-nothing", &nothing, "label: nothing to do");
    let both = format!(
        "{HEAD}timeline:\n  - at: 1s\n    label: {{kind: Pod, name: p, labels: {{app: x}}, remove: [app]}}\n"
    );
    assert_bad("label-both", &both, "can not both modify and remove the label \"app\"");
    let unknown =
        format!("{HEAD}timeline:\n  - at: 1s\n    label: {{kind: Pod, name: p, label: {{app: x}}}}\n");
    assert_bad("label-unknown", &unknown, "unknown field `label`");
}
