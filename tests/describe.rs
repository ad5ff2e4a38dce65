//! `kubesim describe` snapshots: bundled scenarios run once with a trace, then described at
//! fixed instants through the binary, as a user would. The text is meant to match
//! `kubectl describe` (v1.33) byte for byte, trailing spaces included, so a change to it
//! is a reviewed change.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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

/// Runs a bundled scenario once per test binary and returns its trace file.
fn trace(scenario: &str, cell: &'static OnceLock<PathBuf>) -> &'static str {
    cell.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kubesim-describe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let trace = dir.join(scenario.replace(".yaml", ".jsonl"));
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(scenario);
        kubesim(&["run", path.to_str().unwrap(), "--quiet", "--trace", trace.to_str().unwrap()]);
        trace
    })
    .to_str()
    .unwrap()
}

fn node_partition() -> &'static str {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    trace("node-partition.yaml", &TRACE)
}

fn pending_pod() -> &'static str {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    trace("pending-pod.yaml", &TRACE)
}

fn describe(kind: &str, name: &str, trace: &str, at: &str) -> String {
    kubesim(&["describe", kind, name, "--trace", trace, "--at", at])
}

/// The web pod bound to `node` at `at`, read from the state rather than assumed.
fn web_pod_on(node: &str, trace: &str, at: &str) -> String {
    let json = kubesim(&["get", "pods", "-o", "json", "--trace", trace, "--at", at]);
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "web" && p["spec"]["nodeName"] == node)
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 1, "one web pod on {node} at {at}: {names:?}");
    names[0].to_string()
}

#[test]
fn node_partition_node_2_unreachable_at_130s() {
    let text = describe("node", "node-2", node_partition(), "130s");
    assert!(text.contains("CreationTimestamp:  "), "{text}");
    assert!(
        text.contains(
            "Taints:             node.kubernetes.io/unreachable:NoExecute\n                    node.kubernetes.io/unreachable:NoSchedule\n"
        ),
        "{text}"
    );
    insta::assert_snapshot!("node_partition_node_2_at_130s", text);
}

#[test]
fn node_partition_node_2_healthy_at_59s() {
    let text = describe("node", "node-2", node_partition(), "59s");
    assert!(text.contains("Taints:             <none>\n"), "{text}");
    insta::assert_snapshot!("node_partition_node_2_at_59s", text);
}

#[test]
fn node_partition_terminating_web_pod_at_8m() {
    let trace = node_partition();
    let pod = web_pod_on("node-2", trace, "8m");
    // The generated name varies with the seed; the snapshot names it POD.
    let text = describe("pod", &pod, trace, "8m").replace(&pod, "POD");
    // One long label widens the whole first block, as kubectl's tabwriter does.
    assert!(text.contains("Name:                      POD\n"), "{text}");
    assert!(text.contains("Termination Grace Period:  30s\n"), "{text}");
    // Time since the deletion timestamp (now + 30 s grace when the eviction came).
    assert!(text.contains("Status:                    Terminating (lasts "), "{text}");
    assert!(text.contains("  DisruptionTarget            True \n"), "{text}");
    // Upstream's taint eviction controller records TaintManagerEviction against a
    // reference without a uid, and kubectl selects a pod's events by uid: the event is in
    // the cluster but not in `kubectl describe pod`.
    let events = kubesim(&["events", "--trace", trace, "--at", "8m"]);
    assert!(events.contains(&format!("Marking for deletion Pod default/{pod}")), "{events}");
    assert!(!text.contains("TaintManagerEviction"), "{text}");
    insta::assert_snapshot!("node_partition_web_pod_on_node_2_at_8m", text);
}

#[test]
fn pending_pod_solo_failed_scheduling_at_30s() {
    let text = describe("pod", "solo", pending_pod(), "30s");
    assert!(text.contains("IP:               \nIPs:              <none>\n"), "{text}");
    insta::assert_snapshot!("pending_pod_solo_at_30s", text);
}

#[test]
fn pending_pod_solo_running_at_90s() {
    let text = describe("pod", "solo", pending_pod(), "90s");
    insta::assert_snapshot!("pending_pod_solo_at_90s", text);
}

fn crashloop() -> &'static str {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    trace("crashloop.yaml", &TRACE)
}

fn memory_pressure() -> &'static str {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    trace("memory-pressure.yaml", &TRACE)
}

/// A crash-looping pod: waiting in CrashLoopBackOff, the last exit as Last State, the
/// restart count, and the BackOff events.
#[test]
fn crashloop_pod_in_back_off_at_100s() {
    let text = describe("pod", "crasher", crashloop(), "100s");
    assert!(text.contains("Reason:       CrashLoopBackOff"), "{text}");
    insta::assert_snapshot!("crashloop_crasher_at_100s", text);
}

/// `get pods` shows the restarts with the time since the last one.
#[test]
fn crashloop_get_pods_shows_restarts_ago() {
    let text = kubesim(&["get", "pods", "--trace", crashloop(), "--at", "100s"]);
    assert!(text.contains("CrashLoopBackOff   3 (31s ago)"), "{text}");
}

/// An evicted pod: Failed, reason Evicted with the eviction manager's message, the
/// DisruptionTarget condition, and the Evicted and Killing events.
#[test]
fn memory_pressure_evicted_pod_at_70s() {
    // The evicted pod, read from the state (its name is drawn from the seeded RNG).
    let json = kubesim(&["get", "pods", "-o", "json", "--trace", memory_pressure(), "--at", "70s"]);
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let evicted: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"]["reason"] == "Evicted")
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(evicted.len(), 1, "one evicted pod at 70s: {evicted:?}");
    let text = describe("pod", evicted[0], memory_pressure(), "70s");
    assert!(text.contains("Reason:           Evicted"), "{text}");
    insta::assert_snapshot!("memory_pressure_evicted_web_pod_at_70s", text);
}

/// The node under memory pressure: the condition, the taint and the events.
#[test]
fn memory_pressure_node_1_at_70s() {
    let text = describe("node", "node-1", memory_pressure(), "70s");
    assert!(text.contains("MemoryPressure   True"), "{text}");
    insta::assert_snapshot!("memory_pressure_node_1_at_70s", text);
}

fn rollout_stuck() -> &'static str {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    trace("rollout-stuck.yaml", &TRACE)
}

fn multi_attach() -> &'static str {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    trace("statefulset-multi-attach.yaml", &TRACE)
}

fn pvc_pending() -> &'static str {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    trace("pvc-pending.yaml", &TRACE)
}

fn jobs() -> &'static str {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    trace("job.yaml", &TRACE)
}

/// describeDeployment on a stuck rollout: the pod template, Progressing False with
/// ProgressDeadlineExceeded, the old and new ReplicaSets with their counts.
#[test]
fn rollout_stuck_deployment_at_4m() {
    let text = describe("deployment", "web", rollout_stuck(), "4m");
    assert!(
        text.contains(
            "Replicas:               3 desired | 1 updated | 4 total | 3 available | 1 unavailable\n"
        ),
        "{text}"
    );
    assert!(text.contains("  Progressing    False   ProgressDeadlineExceeded\n"), "{text}");
    assert!(text.contains("\nPod Template:\n  Labels:  app=web\n  Containers:\n   nginx:\n"), "{text}");
    insta::assert_snapshot!("rollout_stuck_deployment_at_4m", text);
}

/// After `rollout undo`: the first ReplicaSet is the new one again, at revision 3, and
/// the stuck one, scaled to zero, is no longer listed.
#[test]
fn rollout_stuck_deployment_after_undo() {
    let text = describe("deployment", "web", rollout_stuck(), "5m50s");
    assert!(text.contains("Annotations:            deployment.kubernetes.io/revision: 3\n"), "{text}");
    assert!(text.contains("  Progressing    True    NewReplicaSetAvailable\n"), "{text}");
    assert!(text.contains("OldReplicaSets:  <none>\n"), "{text}");
    insta::assert_snapshot!("rollout_stuck_deployment_after_undo", text);
}

/// describeStatefulSet while the replacement waits for its volume: one Waiting pod, the
/// claim template under Volume Claims.
#[test]
fn multi_attach_statefulset_at_300s() {
    let text = describe("statefulset", "db", multi_attach(), "300s");
    assert!(text.contains("Pods Status:        0 Running / 1 Waiting / 0 Succeeded / 0 Failed\n"), "{text}");
    assert!(text.contains("Volume Claims:\n  Name:          data\n"), "{text}");
    assert!(text.contains("  Access Modes:  [ReadWriteOnce]\n"), "{text}");
    insta::assert_snapshot!("multi_attach_statefulset_at_300s", text);
}

/// describePersistentVolumeClaim of a provisioned claim: class, volume, finalizer,
/// capacity and modes once bound, the pod using it, the provisioner's events.
#[test]
fn multi_attach_pvc_at_300s() {
    let text = describe("pvc", "data-db-0", multi_attach(), "300s");
    assert!(text.contains("Status:        Bound\n"), "{text}");
    assert!(text.contains("Finalizers:    [kubernetes.io/pvc-protection]\n"), "{text}");
    assert!(text.contains("Access Modes:  RWO\n"), "{text}");
    assert!(text.contains("Used By:       db-0\n"), "{text}");
    insta::assert_snapshot!("multi_attach_pvc_at_300s", text);
}

/// A Pending claim shows no capacity and no access modes, and its FailedBinding events.
#[test]
fn pvc_pending_logs_at_50s() {
    let text = describe("pvc", "logs", pvc_pending(), "50s");
    assert!(text.contains("Status:        Pending\nVolume:        \n"), "{text}");
    assert!(text.contains("Capacity:      \nAccess Modes:  \n"), "{text}");
    assert!(text.contains("FailedBinding"), "{text}");
    insta::assert_snapshot!("pvc_pending_logs_at_50s", text);
}

/// describeJob of a finished Job: completions, times, the pod statuses and its events.
#[test]
fn job_report_at_5m() {
    let text = describe("job", "report", jobs(), "5m");
    assert!(text.contains("Completions:      3\n"), "{text}");
    assert!(text.contains("Pods Statuses:    0 Active (0 Ready) / 3 Succeeded / 0 Failed\n"), "{text}");
    insta::assert_snapshot!("job_report_at_5m", text);
}

/// `get pod -o yaml` of a Deployment's pod: what the API server's defaulters and
/// admission plugins add (pkg/apis/core/v1/defaults.go, Priority, DefaultTolerationSeconds,
/// ServiceAccount) and the kubelet's status addresses, with timestamps in whole seconds.
#[test]
fn node_partition_web_pod_yaml_at_60s() {
    let name = web_pod_on("node-1", node_partition(), "60s");
    let text = kubesim(&["get", "pod", &name, "-o", "yaml", "--trace", node_partition(), "--at", "60s"]);
    for want in [
        "imagePullPolicy: IfNotPresent",
        "terminationMessagePath: /dev/termination-log",
        "terminationMessagePolicy: File",
        "protocol: TCP",
        "enableServiceLinks: true",
        "preemptionPolicy: PreemptLowerPriority",
        "dnsPolicy: ClusterFirst",
        "schedulerName: default-scheduler",
        "securityContext: {}",
        "restartPolicy: Always",
        "terminationGracePeriodSeconds: 30",
        "tolerationSeconds: 300",
        "serviceAccount: default",
        "serviceAccountName: default",
        "name: kube-api-access-",
        "expirationSeconds: 3607",
        "name: kube-root-ca.crt",
        "fieldPath: metadata.namespace",
        "mountPath: /var/run/secrets/kubernetes.io/serviceaccount",
        "readOnly: true",
        "hostIPs:",
        "podIPs:",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    // metav1.Time: no fraction of a second anywhere.
    assert!(!text.lines().any(|l| l.contains("T00:") && l.contains('.')), "{text}");
    insta::assert_snapshot!("node_partition_web_pod_yaml_at_60s", text);
}

/// `get nodes`: a Ready condition of Unknown prints NotReady (printNode), as kubectl does.
#[test]
fn node_partition_get_nodes_at_130s() {
    let text = kubesim(&["get", "nodes", "--trace", node_partition(), "--at", "130s"]);
    assert!(text.contains("node-2   NotReady"), "{text}");
    insta::assert_snapshot!("node_partition_get_nodes_at_130s", text);
}

/// `kubesim events` prints as `kubectl events`: the kind as stored (`Pod/crasher`) and a
/// repeated event's `(xN over AGE)`.
#[test]
fn crashloop_events_at_100s() {
    let text = kubesim(&["events", "--trace", crashloop(), "--at", "100s"]);
    assert!(text.contains("Pod/crasher"), "{text}");
    assert!(text.lines().any(|l| l.contains(" (x") && l.contains(" over ")), "{text}");
    insta::assert_snapshot!("crashloop_events_at_100s", text);
}

/// `get events` keeps the API's list order (etcd's key order: by name in a namespace),
/// not the events' times.
#[test]
fn crashloop_get_events_in_list_order_at_100s() {
    let json = kubesim(&["get", "events", "-o", "json", "--trace", crashloop(), "--at", "100s"]);
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|e| e["metadata"]["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    let text = kubesim(&["get", "events", "--trace", crashloop(), "--at", "100s"]);
    assert!(text.contains("pod/crasher"), "{text}");
    insta::assert_snapshot!("crashloop_get_events_at_100s", text);
}

/// kubectl on PATH (the machine image has /usr/bin/kubectl).
fn real_kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("kubectl")).find(|p| p.is_file())
}

/// `get -o yaml` is kubectl's text byte for byte: the same objects, as JSON, printed by
/// the real kubectl (`annotate --local -o yaml`, which needs no cluster: it marshals the
/// object with sigs.k8s.io/yaml as `get -o yaml` does) must come out identical. Covers
/// go-yaml's quoting (`"True"`, `"148"`, timestamps) and its folding of long strings.
#[test]
fn get_o_yaml_is_what_kubectl_prints() {
    let Some(kubectl) = real_kubectl() else {
        eprintln!("SKIPPED get_o_yaml_is_what_kubectl_prints: no kubectl on PATH (the machine image and CI have /usr/bin/kubectl)");
        return;
    };
    let t = node_partition();
    let pod = web_pod_on("node-2", t, "130s");
    let dir = std::env::temp_dir().join(format!("kubesim-yaml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let objects = [
        vec!["pod", pod.as_str()],
        vec!["node", "node-2"],
        vec!["deployment", "web"],
        vec!["daemonset", "node-exporter"],
        vec!["lease", "node-2", "-n", "kube-node-lease"],
        vec!["configmap", "kube-root-ca.crt"],
    ];
    for args in objects {
        let get = |format: &str| {
            let mut a = vec!["get"];
            a.extend(&args);
            a.extend(["-o", format, "--trace", t, "--at", "130s"]);
            kubesim(&a)
        };
        let json = dir.join("object.json");
        std::fs::write(&json, get("json")).unwrap();
        let out = Command::new(&kubectl)
            .args(["annotate", "--local", "-o", "yaml", "kubesim-compare=1", "-f"])
            .arg(&json)
            .output()
            .expect("run kubectl");
        assert!(out.status.success(), "kubectl: {}", String::from_utf8_lossy(&out.stderr));
        // Drop the annotation kubectl added (and the map it made when there was none).
        let theirs: String = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.contains("kubesim-compare"))
            .map(|l| format!("{l}\n"))
            .collect();
        let ours = get("yaml");
        let theirs = if ours.contains("\n  annotations:") {
            theirs
        } else {
            theirs.replace("\n  annotations:\n", "\n")
        };
        assert_eq!(ours, theirs, "kubesim get {args:?} -o yaml differs from kubectl's");
    }
}

/// `get -l` filters by labels as kubectl does; a name with a selector is refused (exit 2).
#[test]
fn get_filters_by_label_selector() {
    let t = node_partition();
    let names = |sel: &str| -> Vec<String> {
        kubesim(&["get", "pods", "-l", sel, "--trace", t, "--at", "130s"])
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    let web = names("app=web");
    assert_eq!(web.len(), 3, "three web pods at 130 s: {web:?}");
    assert!(web.iter().all(|n| n.starts_with("web-")), "{web:?}");
    assert_eq!(names("app in (web),!nope"), web);
    let others = names("app!=web");
    assert!(!others.is_empty() && others.iter().all(|n| !n.starts_with("web-")), "{others:?}");
    assert_eq!(
        kubesim(&["get", "pods", "-l", "app=nothing", "--trace", t, "--at", "130s"]),
        "No resources found in default namespace.\n"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args(["get", "pods", "web", "-l", "app=web", "--trace", t, "--at", "130s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("name cannot be provided when a selector is specified")
    );
}
