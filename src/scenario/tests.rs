use super::*;
use proptest::prelude::*;

fn load_text(text: &str) -> Result<Loaded, ScenarioError> {
    load_str(text, Path::new("t.yaml"), Path::new("."))
}

const OK: &str = r#"
name: ok
duration: 2m
nodePools:
  - name: worker
    count: 2
    capacity: {cpu: "4", memory: 16Gi}
workloads:
  - manifest:
      apiVersion: v1
      kind: Pod
      metadata: {name: p}
      spec: {containers: [{name: c, image: busybox, lifecycle: {preStop: {exec: {command: [sleep, "5"]}}}}]}
timeline:
  - at: 30s
    cordon: worker-1
  - at: 40s
    heal: {}
expectations:
  - name: running
    within: 1m
    podCount: {phase: Running}
    equals: 1
"#;

#[test]
fn a_valid_scenario_loads_with_warnings_for_unsimulated_fields() {
    let l = load_text(OK).unwrap();
    assert_eq!(l.scenario.node_pools[0].node_name(2), "worker-2");
    assert_eq!(l.scenario.timeline[0].at.time, SimTime::from_secs(30));
    assert!(
        l.warnings.iter().any(|w| w.contains("spec.containers[0].lifecycle is not simulated")),
        "{:?}",
        l.warnings
    );
    assert_eq!(l.warnings.len(), 1, "only the unsimulated field warns: {:?}", l.warnings);
}

#[test]
fn errors_name_the_line() {
    let cases = [
        ("name: x\nduration: 1m\nbogus: 1\n", 3, "unknown field"),
        ("name: x\nduration: 90\n", 2, "no unit"),
        ("name: x\nduration: 1m\nnodePools:\n  - name: w\n    capacity: {cpu: \"1\", memory: 1Gx}\n", 5, "quantities must match"),
        ("name: x\nduration: 1m\nworkloads:\n  - path: missing.yaml\n", 4, "missing.yaml"),
        ("name: x\nduration: 1m\ntimeline:\n  - at: 10s\n    killHost: node-9\n", 5, "no host named"),
        ("name: x\nduration: 1m\ntimeline:\n  - at: 2m\n    heal: {}\n", 4, "after the scenario's duration"),
        (
            "name: x\nduration: 1m\nworkloads:\n  - manifest:\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata: {name: d}\n      spec:\n        replicas: -2\n",
            9,
            "greater than or equal to 0",
        ),
        (
            "name: x\nduration: 1m\nbehaviors:\n  - name: b\n    memory: {constant: 1Gi, perSecond: 1Mi}\n",
            5,
            "exactly one of constant",
        ),
        (
            "name: x\nduration: 1m\nnodePools:\n  - name: w\n    capacity: {cpu: \"1\", memory: 1Gi}\n    kubelet:\n      evictionHard: {memory.free: 1Gi}\n",
            7,
            "unknown eviction signal",
        ),
        (
            "name: x\nduration: 1m\nnodePools:\n  - name: w\n    capacity: {cpu: \"1\", memory: 1Gi}\n    kubelet:\n      evictionSoft: {memory.available: 1Gi}\n",
            7,
            "evictionSoftGracePeriod",
        ),
        ("name: x\nduration: 1m\ntimeline:\n  - at: 10s\n    memoryHog: {node: cp-1, size: 1Gi}\n", 5, "runs no kubelet"),
        (
            "name: x\nduration: 1m\ncontrolPlane:\n  kubeApiserver:\n    event-ttl: 2h\n    max-inflight: 10\n",
            6,
            "unknown field `max-inflight`",
        ),
        ("name: x\nduration: 1m\ncontrolPlane:\n  kubeApiserver:\n    request-timeout: 0s\n", 5, "greater than 0"),
    ];
    for (text, line, needle) in cases {
        let e = load_text(text).unwrap_err();
        assert_eq!(e.line, line, "{e}");
        assert!(e.to_string().contains(needle), "{e}");
    }
}

fn yamlish() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "name",
        "duration",
        "seed",
        "nodePools",
        "count",
        "capacity",
        "cpu",
        "memory",
        "workloads",
        "manifest",
        "path",
        "timeline",
        "at",
        "cordon",
        "expectations",
        "podCount",
        "equals",
        "within",
        "kind",
        "apiVersion",
        "spec",
        "replicas",
        "junk",
    ]);
    let scalar = prop::sample::select(vec![
        "1", "-1", "1m", "x", "\"4\"", "1Gx", "[]", "{}", "null", "v1", "Pod", "apps/v1",
    ]);
    let leaf = (key.clone(), scalar).prop_map(|(k, v)| format!("{k}: {v}"));
    leaf.prop_recursive(3, 24, 4, move |inner| {
        (key.clone(), prop::collection::vec(inner, 1..4), any::<bool>()).prop_map(|(k, kids, list)| {
            let body: Vec<String> = kids
                .iter()
                .map(|c| {
                    let c = c.replace('\n', "\n    ");
                    if list {
                        format!("  - {c}")
                    } else {
                        format!("  {c}")
                    }
                })
                .collect();
            format!("{k}:\n{}", body.join("\n"))
        })
    })
}

proptest! {
    /// Invariant: no input makes the loader panic; bad input is an error with a line.
    #[test]
    fn loader_never_panics(docs in prop::collection::vec(yamlish(), 1..5)) {
        let text = docs.join("\n");
        if let Err(e) = load_text(&text) {
            prop_assert!(e.line >= 1);
        }
    }
}

/// Errors found after deserializing take their line and column from the parser, for
/// values nested anywhere: never a guess by searching the text.
#[test]
fn checked_errors_land_on_the_offending_value() {
    let cases: [(&str, usize, usize, &str); 12] = [
        // A key repeated inside a string: the description mentions "hosts:".
        ("name: x\ndescription: \"hosts: 9 is wrong\"\nduration: 1m\ncontrolPlane:\n  hosts: 9\n", 5, 3, "controlPlane.hosts 9"),
        // The second of two timeline entries at one `at`.
        ("name: x\nduration: 1m\nnodePools:\n  - name: w\n    capacity: {cpu: \"1\", memory: 1Gi}\ntimeline:\n  - at: 10s\n    killHost: w-1\n  - at: 10s\n    killHost: w-9\n", 10, 5, "no host named \"w-9\""),
        // An unknown kind in a check is an error where it is written, not a Pod.
        ("name: x\nduration: 1m\nexpectations:\n  - at: 10s\n    field: {kind: Pdo, name: p, path: status.phase}\n    exists: false\n", 5, 0, "unknown kind \"Pdo\""),
        // Contradictory comparisons.
        ("name: x\nduration: 1m\nexpectations:\n  - at: 10s\n    podCount: {phase: Running}\n    equals: 1\n    atLeast: 2\n", 7, 5, "equals and atLeast contradict"),
        ("name: x\nduration: 1m\nexpectations:\n  - at: 10s\n    podCount: {}\n    atLeast: 3\n    atMost: 2\n", 7, 5, "no count satisfies both"),
        ("name: x\nduration: 1m\nexpectations:\n  - at: 10s\n    podCount: {}\n    atMost: -1\n", 6, 5, "cannot be negative"),
        // Negative counts in faults.
        ("name: x\nduration: 1m\nnodePools:\n  - name: w\n    capacity: {cpu: \"1\", memory: 1Gi}\ntimeline:\n  - at: 10s\n    fillInodes: {node: w-1, inodes: -5}\n", 8, 0, "expected u"),
        ("name: x\nduration: 1m\nnodePools:\n  - name: w\n    capacity: {cpu: \"1\", memory: 1Gi}\ntimeline:\n  - at: 10s\n    addNodes: {pool: w, count: -1}\n", 8, 0, "expected u"),
        // Out-of-range settings.
        ("name: x\nduration: 1m\ncontrolPlane:\n  kubeScheduler:\n    percentageOfNodesToScore: 150\n", 5, 5, "want 0 to 100"),
        // Two actions in one entry, and an unknown one.
        ("name: x\nduration: 1m\ntimeline:\n  - at: 10s\n    heal: {}\n    isolateEtcdLeader: {}\n", 6, 0, "exactly one action"),
        ("name: x\nduration: 1m\ntimeline:\n  - at: 10s\n    killNode: w-1\n", 5, 0, "unknown timeline action"),
        // An unknown component to kill the leader of.
        ("name: x\nduration: 1m\ntimeline:\n  - at: 10s\n    killLeader: kube-proxy\n", 5, 0, "has no leader"),
    ];
    for (text, line, column, needle) in cases {
        let e = load_text(text).unwrap_err();
        assert_eq!(e.line, line, "{needle}: {e}");
        if column > 0 {
            assert_eq!(e.column, column, "{needle}: {e}");
        }
        assert!(e.to_string().contains(needle), "want {needle:?} in {e}");
    }
}

#[test]
fn timeline_entries_are_one_action_each() {
    let l = load_text(OK).unwrap();
    assert!(matches!(l.scenario.timeline[0].action, Action::Cordon(ref n) if n == "worker-1"));
    assert!(matches!(l.scenario.timeline[1].action, Action::Fault(Fault::Heal)));
}

#[test]
fn apiserver_flags_reach_the_world() {
    let text = "name: x\nduration: 1m\ncontrolPlane:\n  kubeApiserver:\n    event-ttl: 2h\n    etcd-compaction-interval: 0s\n    request-timeout: 30s\n    max-requests-inflight: 800\n";
    let plan = crate::plan::from_scenario(&load_text(text).unwrap().scenario).unwrap();
    let api = &plan.world.apiserver;
    assert_eq!(api.event_ttl, std::time::Duration::from_secs(7200));
    assert!(api.etcd_compaction_interval.is_zero());
    assert_eq!(api.request_timeout, std::time::Duration::from_secs(30));
    assert_eq!((api.max_requests_inflight, api.max_mutating_requests_inflight), (800, 200));
}

#[test]
fn paths_reach_list_items_and_map_keys_with_dots() {
    let v = serde_json::json!({
        "metadata": {"annotations": {"volume.kubernetes.io/selected-node": "node-1"}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    });
    let get = |p: &str| lookup_path(&v, p);
    assert_eq!(get("metadata.annotations['volume.kubernetes.io/selected-node']"), Some("node-1".into()));
    assert_eq!(get("metadata.annotations[volume.kubernetes.io/selected-node]"), Some("node-1".into()));
    assert_eq!(get("metadata.annotations['other']"), None);
    assert_eq!(get("status.conditions[type=Ready].status"), Some("True".into()));
    assert_eq!(get("status.conditions[0].type"), Some("Ready".into()));
    assert_eq!(get("status.conditions['0']"), None);
}
