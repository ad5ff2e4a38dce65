//! "Why isn't my pod Running?" (issue 13): init and sidecar containers, volumes, and the
//! ConfigMaps and Secrets pods read. The bundled scenarios pass and replay; `get pods` and
//! `describe pod` show the states as kubectl v1.33 does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kubesim::run::{run_file, RunOptions};

fn kubesim(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kubesim")).args(args).output().expect("run kubesim");
    assert!(
        out.status.success(),
        "kubesim {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(name)
}

/// Runs a bundled scenario twice with its own seed: every expectation holds and the trace
/// hash repeats.
fn assert_passes_and_replays(name: &str) {
    let opts = RunOptions::default();
    let a = run_file(&scenario(name), &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(a.all_passed(), "{name} expectations failed:\n{}", a.summary());
    assert!(a.step_errors.is_empty(), "{name} timeline errors:\n{}", a.summary());
    let b = run_file(&scenario(name), &opts).unwrap();
    assert_eq!(a.trace_hash, b.trace_hash, "{name}: same seed, different trace");
}

/// Runs a bundled scenario once per test binary and returns its trace file.
fn trace(name: &str, cell: &'static OnceLock<PathBuf>) -> &'static str {
    cell.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kubesim-pod-startup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let trace = dir.join(name.replace(".yaml", ".jsonl"));
        let path = scenario(name);
        kubesim(&["run", path.to_str().unwrap(), "--quiet", "--trace", trace.to_str().unwrap()]);
        trace
    })
    .to_str()
    .unwrap()
}

fn init_containers() -> &'static str {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    trace("init-containers.yaml", &TRACE)
}

/// The `get pods` row of one pod at an instant, split into its columns.
fn pod_row(trace: &str, at: &str, name: &str) -> Vec<String> {
    let text = kubesim(&["get", "pods", "--trace", trace, "--at", at]);
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no pod {name} at {at}:\n{text}"));
    // RESTARTS may read "3 (31s ago)": keep it one column.
    let mut cols: Vec<String> = Vec::new();
    for w in line.split_whitespace() {
        match cols.last_mut() {
            Some(last) if w.starts_with('(') || (last.contains('(') && !last.ends_with(')')) => {
                last.push(' ');
                last.push_str(w);
            }
            _ => cols.push(w.to_string()),
        }
    }
    cols
}

#[test]
fn init_containers_passes_and_is_deterministic() {
    assert_passes_and_replays("init-containers.yaml");
}

/// kubectl's STATUS column through initialization: Init:0/2 while the first init
/// container has not finished, Init:CrashLoopBackOff while it backs off, PodInitializing
/// once the init containers are done and the app is not yet running; Init:Error for the
/// pod whose init container failed under restartPolicy Never.
#[test]
fn get_pods_shows_init_progress() {
    let t = init_containers();
    assert_eq!(pod_row(t, "12s", "web")[1..3], ["0/1", "Init:0/2"]);
    let at_90 = pod_row(t, "90s", "web");
    assert_eq!(at_90[1..3], ["0/1", "Init:CrashLoopBackOff"], "{at_90:?}");
    assert!(at_90[3].starts_with("3 ("), "init container restarts count while initializing: {at_90:?}");
    assert_eq!(
        pod_row(t, "3m", "web")[1..4],
        ["1/1", "Running", "0"],
        "restarts of init containers no longer count"
    );
    assert_eq!(pod_row(t, "20s", "once")[1..3], ["0/1", "Init:Error"]);
    // The Job's pod: the sidecar counts among the containers, ready once started.
    let report = kubesim(&["get", "pods", "--trace", t, "--at", "20s"]);
    let line = report.lines().find(|l| l.starts_with("report-")).expect("the report pod");
    assert!(line.split_whitespace().skip(1).take(2).eq(["2/2", "Running"]), "{line}");
}

/// The waiting init containers, their last state and the Initialized condition, as
/// `kubectl describe pod` prints them.
#[test]
fn describe_pod_while_an_init_container_backs_off() {
    let text = kubesim(&["describe", "pod", "web", "--trace", init_containers(), "--at", "90s"]);
    assert!(text.contains("Init Containers:\n  wait-for-db:\n"), "{text}");
    assert!(text.contains("    State:          Waiting\n      Reason:       CrashLoopBackOff\n"), "{text}");
    assert!(text.contains("  Initialized                 False \n"), "{text}");
    insta::assert_snapshot!("init_containers_web_at_90s", text);
}

fn missing_configmap() -> &'static str {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    trace("missing-configmap.yaml", &TRACE)
}

#[test]
fn missing_configmap_passes_and_is_deterministic() {
    assert_passes_and_replays("missing-configmap.yaml");
}

/// A pod waiting for its ConfigMap: ContainerCreating, the volume and the mount, and the
/// FailedMount events counted over the retries.
#[test]
fn describe_pod_waiting_for_its_config_map() {
    let t = missing_configmap();
    assert_eq!(pod_row(t, "59s", "web")[1..3], ["0/1", "ContainerCreating"]);
    let text = kubesim(&["describe", "pod", "web", "--trace", t, "--at", "59s"]);
    assert!(text.contains("    Mounts:\n      /etc/nginx/conf.d from config (ro)\n"), "{text}");
    assert!(text.contains("FailedMount  17s (x7 over 49s)"), "seven failures by 42.1 s: {text}");
    insta::assert_snapshot!("missing_configmap_web_at_59s", text);
}

/// A container whose environment reads a missing Secret: CreateContainerConfigError, and
/// describe shows where the variable comes from, never its value.
#[test]
fn describe_pod_waiting_for_its_secret() {
    let t = missing_configmap();
    assert_eq!(pod_row(t, "59s", "worker")[1..3], ["0/1", "CreateContainerConfigError"]);
    let text = kubesim(&["describe", "pod", "worker", "--trace", t, "--at", "59s"]);
    insta::assert_snapshot!("missing_configmap_worker_at_59s", text);
    let secret = kubesim(&["describe", "secret", "db-credentials", "--trace", t, "--at", "100s"]);
    assert!(secret.contains("Type:  Opaque\n\nData\n====\npassword:  6 bytes\n"), "{secret}");
    assert!(!secret.contains("s3cr3t"), "{secret}");
    let yaml = kubesim(&["get", "secret", "db-credentials", "-o", "yaml", "--trace", t, "--at", "100s"]);
    assert!(yaml.contains("  password: czNjcjN0\n") && !yaml.contains("stringData"), "{yaml}");
    let cms = kubesim(&["get", "configmaps", "--trace", t, "--at", "100s"]);
    // kube-root-ca.crt is the root-ca-cert-publisher's, in every namespace (its age is
    // the controller manager's first leader's, which the run decides).
    let rows: Vec<&str> = cms.lines().collect();
    assert_eq!(rows[..2], ["NAME               DATA   AGE", "app-config         1      40s"], "{cms}");
    assert!(rows.len() == 3 && rows[2].starts_with("kube-root-ca.crt   1      9"), "{cms}");
}

/// Nothing in a pod spec is lost: fields kubesim does not model travel from a
/// Deployment's template to its pods and come back in `get -o yaml`; those that would
/// change what a cluster does are listed once, by their paths.
#[test]
fn unmodelled_pod_fields_are_kept_and_listed() {
    let dir = std::env::temp_dir().join(format!("kubesim-kept-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kept.yaml");
    std::fs::write(
        &file,
        r#"name: kept
duration: 30s
nodePools:
  - name: w
    capacity: {cpu: "4", memory: 8Gi}
workloads:
  - manifest:
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: web, namespace: default}
      spec:
        selector: {matchLabels: {app: web}}
        template:
          metadata: {labels: {app: web}}
          spec:
            securityContext: {runAsNonRoot: true}
            containers:
              - name: nginx
                image: nginx:1.27
                workingDir: /srv
                lifecycle: {preStop: {exec: {command: [sleep, "5"]}}}
            volumes:
              - name: secrets
                csi: {driver: secrets-store.csi.k8s.io, readOnly: true}
"#,
    )
    .unwrap();
    let loaded = kubesim::scenario::load(&file).unwrap();
    assert_eq!(
        loaded.warnings,
        vec![
            "Deployment default/web: spec.template.spec.containers[0].lifecycle is not simulated: postStart and preStop hooks do not run (a preStop does not delay termination)",
            "Deployment default/web: spec.template.spec.volumes[0].csi is not simulated: the volume mounts at once",
        ]
    );
    let trace = dir.join("kept.jsonl");
    kubesim(&["run", file.to_str().unwrap(), "--quiet", "--trace", trace.to_str().unwrap()]);
    let json = kubesim(&["get", "pods", "-o", "json", "--trace", trace.to_str().unwrap(), "--at", "30s"]);
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let spec = &list["items"][0]["spec"];
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{spec}");
    assert_eq!(spec["containers"][0]["workingDir"], "/srv", "{spec}");
    assert_eq!(spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][0], "sleep", "{spec}");
    assert_eq!(spec["volumes"][0]["csi"]["driver"], "secrets-store.csi.k8s.io", "{spec}");
    assert_eq!(list["items"][0]["status"]["phase"], "Running");
}
