//! Ordinary public manifests (tests/fixtures/, from kubernetes/website's examples) load
//! and run unchanged, and each reports exactly what kubesim does not simulate: nothing is
//! skipped silently.

use std::path::{Path, PathBuf};

use kubesim::run::{run_file, RunOptions};
use kubesim_model::api::parse_manifests;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(name)
}

/// The warnings reading one fixture gives, as the scenario loader shows them.
fn warnings(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let m = parse_manifests(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(!m.objects.is_empty() || name.contains("services"), "{name}: no objects");
    m.warnings
}

/// What each fixture reports as not simulated. A field kubesim starts to simulate (or a
/// field it drops without saying so) changes this list.
#[test]
fn each_fixture_reports_what_it_does_not_simulate() {
    let none: Vec<String> = Vec::new();
    // ConfigMap and emptyDir volumes, a sidecar, env from a ConfigMap, hostPath volumes,
    // tolerations, resources: all simulated.
    assert_eq!(warnings("deployment-with-configmap-and-sidecar-container.yaml"), none);
    assert_eq!(warnings("deployment-with-configmap-as-envvar.yaml"), none);
    assert_eq!(warnings("daemonset-hostpath.yaml"), none);
    assert_eq!(
        warnings("mysql-configmap-and-services.yaml"),
        vec![
            "Service mysql (v1): kind not simulated by kubesim; skipped",
            "Service mysql-read (v1): kind not simulated by kubesim; skipped",
        ]
    );
    // volumeClaimTemplates make claims, provisioned through the default StorageClass.
    assert_eq!(warnings("mysql-statefulset.yaml"), none);
    // FailJob on exit code 42 and Ignore on DisruptionTarget: both simulated.
    assert_eq!(warnings("job-pod-failure-policy-example.yaml"), none);
    // Indexed, podFailurePolicy with FailIndex and backoffLimitPerIndex: all simulated.
    assert_eq!(warnings("job-backoff-limit-per-index-failindex.yaml"), none);
}

/// What the fixtures hold once read: the fields kubectl would show back.
#[test]
fn fixtures_keep_volumes_env_and_sidecars() {
    let text =
        std::fs::read_to_string(fixture("deployment-with-configmap-and-sidecar-container.yaml")).unwrap();
    let m = parse_manifests(&text).unwrap();
    let d = m.objects[0].as_deployment().unwrap();
    let spec = &d.spec.template.spec;
    assert_eq!(spec.volumes[1].config_map.as_ref().unwrap().name, "color");
    assert!(spec.volumes[0].empty_dir.is_some());
    assert!(spec.init_containers[0].is_sidecar());
    assert_eq!(spec.init_containers[0].volume_mounts[1].mount_path, "/etc/config");

    let text = std::fs::read_to_string(fixture("deployment-with-configmap-as-envvar.yaml")).unwrap();
    let m = parse_manifests(&text).unwrap();
    let c = &m.objects[0].as_deployment().unwrap().spec.template.spec.containers[0];
    let from = c.env[0].value_from.as_ref().unwrap().config_map_key_ref.as_ref().unwrap();
    assert_eq!(
        (c.env[0].name.as_str(), from.name.as_str(), from.key.as_str()),
        ("FRUITS", "fruits", "fruits")
    );

    let text = std::fs::read_to_string(fixture("daemonset-hostpath.yaml")).unwrap();
    let m = parse_manifests(&text).unwrap();
    let ds = m.objects[0].as_daemon_set().unwrap();
    assert_eq!(
        ds.spec.template.spec.volumes[1].host_path.as_ref().unwrap().path,
        "/var/lib/docker/containers"
    );
    assert!(ds.spec.template.spec.containers[0].volume_mounts[1].read_only);
}

/// Every fixture in one cluster, as the tutorials apply them (the ConfigMaps `color` and
/// `fruits` are what `kubectl create configmap` makes in them, the default StorageClass
/// is what a cloud cluster has): every pod runs.
#[test]
fn fixtures_load_and_run() {
    let dir = std::env::temp_dir().join(format!("kubesim-fixtures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |n: &str| fixture(n).display().to_string();
    let scenario = format!(
        r#"name: fixtures
duration: 2m
nodePools:
  - name: worker
    count: 3
    capacity: {{cpu: "8", memory: 16Gi}}
behaviors:
  # What the two Jobs' scripts do: bash exits 42 after 5 s; python exits 1 for index 0,
  # 42 for index 1, 0 for the others.
  - {{name: bash-exits-42, match: {{image: "docker.io/library/bash:5"}}, exit: {{after: 5s, code: 42}}}}
  - {{name: index-0, match: {{podLabels: {{batch.kubernetes.io/job-completion-index: "0"}}}}, exit: {{after: 1s, code: 1}}}}
  - {{name: index-1, match: {{podLabels: {{batch.kubernetes.io/job-completion-index: "1"}}}}, exit: {{after: 1s, code: 42}}}}
  - {{name: other-indexes, match: {{image: "docker.io/library/python:3"}}, exit: {{after: 1s, code: 0}}}}
workloads:
  - manifest: {{apiVersion: v1, kind: ConfigMap, metadata: {{name: color}}, data: {{color: blue}}}}
  - manifest: {{apiVersion: v1, kind: ConfigMap, metadata: {{name: fruits}}, data: {{fruits: apples}}}}
  - manifest:
      apiVersion: storage.k8s.io/v1
      kind: StorageClass
      metadata: {{name: standard, annotations: {{storageclass.kubernetes.io/is-default-class: "true"}}}}
      provisioner: pd.csi.storage.gke.io
      volumeBindingMode: Immediate
  - path: {}
  - path: {}
  - path: {}
  - path: {}
  - path: {}
  - path: {}
  - path: {}
expectations:
  - name: the FailJob rule fails the Job on the first exit 42
    within: 1m
    field: {{kind: Job, name: job-pod-failure-policy-example, path: "status.conditions[type=Failed].reason"}}
    equals: PodFailurePolicy
  # Without the per-index back-off limit, indexes 0 and 1 keep the two slots (the lowest
  # pending indexes go first) on the Job's failure back-off.
  - name: the indexed Job runs its lowest indexes, each pod labelled with its index
    within: 1m
    podCount: {{selector: "batch.kubernetes.io/job-name=job-backoff-limit-per-index-failindex,batch.kubernetes.io/job-completion-index in (0,1)"}}
    atLeast: 2
  - name: and counts their failures
    within: 1m
    field: {{kind: Job, name: job-backoff-limit-per-index-failindex, path: status.failed}}
    equals: "2"
  - name: the ConfigMap volume and the sidecar - 3 pods of 2 containers run
    within: 2m
    podCount: {{phase: Running, ready: true, selector: "app.kubernetes.io/name=configmap-sidecar-container"}}
    equals: 3
  - name: env from a ConfigMap - 3 pods run
    within: 2m
    podCount: {{phase: Running, ready: true, selector: "app.kubernetes.io/name=configmap-env-var"}}
    equals: 3
  - name: the hostPath DaemonSet runs on every node
    within: 2m
    podCount: {{phase: Running, namespace: kube-system, selector: "name=fluentd-elasticsearch"}}
    equals: 3
  - name: the StatefulSet's pods pass their init containers, one after another
    within: 2m
    podCount: {{phase: Running, ready: true, selector: "app=mysql"}}
    equals: 3
  - name: no mount or configuration failed
    at: 2m
    event: {{reason: FailedMount}}
    exists: false
  - name: no container failed to start
    at: 2m
    event: {{reason: Failed}}
    exists: false
"#,
        path("deployment-with-configmap-and-sidecar-container.yaml"),
        path("deployment-with-configmap-as-envvar.yaml"),
        path("daemonset-hostpath.yaml"),
        path("mysql-configmap-and-services.yaml"),
        path("mysql-statefulset.yaml"),
        path("job-pod-failure-policy-example.yaml"),
        path("job-backoff-limit-per-index-failindex.yaml"),
    );
    let file = dir.join("fixtures.yaml");
    std::fs::write(&file, scenario).unwrap();
    let loaded = kubesim::scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
    // The two Services, the one kind these manifests hold that kubesim skips.
    assert_eq!(loaded.warnings.len(), 2, "{:#?}", loaded.warnings);
    let r = run_file(&file, &RunOptions::default()).unwrap();
    assert!(r.all_passed(), "{}", r.summary());
}
