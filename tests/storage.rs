//! The storage knobs a scenario sets reach the simulated drivers and the controllers.

use kubesim::run::{run_file, RunOptions};

/// A driver with a 30 s provisioning latency (`storage.drivers`) binds its Immediate claim
/// 30 s after it was handed over, not after the default 5 s; a driver no entry names keeps
/// the default.
#[test]
fn a_drivers_provisioning_latency_comes_from_the_scenario() {
    let dir = std::env::temp_dir().join(format!("kubesim-storage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = r#"
name: slow-driver
seed: 1
duration: 1m
nodePools:
  - {name: worker, count: 1, capacity: {cpu: "2", memory: 4Gi}}
storage:
  drivers:
    - {name: "slow.*", provisioningLatency: 30s}
workloads:
  - manifest: {apiVersion: storage.k8s.io/v1, kind: StorageClass, metadata: {name: slow}, provisioner: slow.example.com}
  - manifest: {apiVersion: storage.k8s.io/v1, kind: StorageClass, metadata: {name: fast}, provisioner: fast.example.com}
  - manifest:
      apiVersion: v1
      kind: PersistentVolumeClaim
      metadata: {name: a, namespace: default}
      spec: {storageClassName: slow, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
  - manifest:
      apiVersion: v1
      kind: PersistentVolumeClaim
      metadata: {name: b, namespace: default}
      spec: {storageClassName: fast, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
expectations:
  # The workloads are applied once the node is Ready, about 10.5 s in.
  - name: the slow claim is still Pending 25 s after it was applied
    at: 35s
    field: {kind: PersistentVolumeClaim, name: a, path: status.phase}
    equals: Pending
  - name: the slow claim is Bound after its 30 s
    at: 45s
    field: {kind: PersistentVolumeClaim, name: a, path: status.phase}
    equals: Bound
  - name: the default driver binds within its 5 s
    at: 20s
    field: {kind: PersistentVolumeClaim, name: b, path: status.phase}
    equals: Bound
"#;
    let file = dir.join("slow-driver.yaml");
    std::fs::write(&file, scenario).unwrap();
    let r = run_file(&file, &RunOptions::default()).unwrap();
    assert!(r.all_passed(), "{}", r.summary());
    assert!(r.step_errors.is_empty(), "{}", r.summary());
}

/// A driver without a name is an error at its line, with the fix.
#[test]
fn a_driver_without_a_name_is_an_error_at_its_line() {
    let dir = std::env::temp_dir().join(format!("kubesim-storage-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "name: bad\nduration: 1m\nstorage:\n  drivers:\n    - name: \"\"\n      attachLatency: 1s\n",
    )
    .unwrap();
    let e = kubesim::scenario::load(&file).expect_err("an empty driver name must be refused");
    assert_eq!(e.line, 5, "{e}");
    assert!(e.message.contains("provisioner name"), "{e}");
    assert!(e.hint.contains("ebs.csi.aws.com"), "{e}");
}

/// persistentVolumeClaimRetentionPolicy whenDeleted: Delete: deleting the StatefulSet
/// deletes its claims (through the garbage collector); with the default Retain they stay.
#[test]
fn claims_follow_the_retention_policy_when_the_set_is_deleted() {
    let dir = std::env::temp_dir().join(format!("kubesim-retention-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let set = |name: &str, policy: &str| {
        format!(
            r#"
  - at: 15s
    apply:
      manifest:
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {{name: {name}, namespace: default}}
        spec:
          serviceName: {name}
          replicas: 1
          {policy}
          selector: {{matchLabels: {{app: {name}}}}}
          template:
            metadata: {{labels: {{app: {name}}}}}
            spec: {{containers: [{{name: main, image: "busybox:1.36"}}]}}
          volumeClaimTemplates:
            - metadata: {{name: data}}
              spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
"#
        )
    };
    // Timeline entries run in time order: both applies come before both deletes.
    let deletes = "\n  - at: 60s\n    delete: {kind: StatefulSet, name: scratch}\n  - at: 60s\n    delete: {kind: StatefulSet, name: keep}";
    let scenario = format!(
        r#"
name: retention
seed: 1
duration: 2m
nodePools:
  - {{name: worker, count: 1, capacity: {{cpu: "2", memory: 4Gi}}}}
workloads:
  - manifest:
      apiVersion: storage.k8s.io/v1
      kind: StorageClass
      metadata: {{name: standard, annotations: {{storageclass.kubernetes.io/is-default-class: "true"}}}}
      provisioner: ebs.csi.aws.com
timeline:{}{}{}
expectations:
  - name: both claims are bound before the deletes
    at: 59s
    podCount: {{selector: "app in (scratch,keep)", phase: Running}}
    equals: 2
  - name: the Delete policy's claim goes with its set
    at: 90s
    field: {{kind: PersistentVolumeClaim, name: data-scratch-0, path: status.phase}}
    exists: false
  - name: the Retain policy's claim stays
    at: 90s
    field: {{kind: PersistentVolumeClaim, name: data-keep-0, path: status.phase}}
    equals: Bound
"#,
        set("scratch", "persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Retain}"),
        set("keep", ""),
        deletes,
    );
    let file = dir.join("retention.yaml");
    std::fs::write(&file, scenario).unwrap();
    let loaded = kubesim::scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let r = run_file(&file, &RunOptions::default()).unwrap();
    assert!(r.all_passed(), "{}", r.summary());
}

/// persistentVolumeClaimRetentionPolicy whenScaled: Delete: scaling down gives the
/// condemned pod's claim an owner reference to the pod (updateClaimOwnerRefForSetAndPod),
/// so the garbage collector deletes the claim once the pod is gone; the claims of pods
/// kept in range stay, and with the default Retain a scaled-away claim stays too.
#[test]
fn claims_of_pods_scaled_away_follow_when_scaled() {
    let dir = std::env::temp_dir().join(format!("kubesim-when-scaled-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let set = |name: &str, policy: &str| {
        format!(
            r#"
  - manifest:
      apiVersion: apps/v1
      kind: StatefulSet
      metadata: {{name: {name}, namespace: default}}
      spec:
        serviceName: {name}
        replicas: 2
        {policy}
        selector: {{matchLabels: {{app: {name}}}}}
        template:
          metadata: {{labels: {{app: {name}}}}}
          spec: {{containers: [{{name: main, image: "busybox:1.36"}}]}}
        volumeClaimTemplates:
          - metadata: {{name: data}}
            spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}"#
        )
    };
    let scenario = format!(
        r#"
name: when-scaled
seed: 1
duration: 3m
nodePools:
  - {{name: worker, count: 1, capacity: {{cpu: "4", memory: 8Gi}}}}
workloads:
  - manifest:
      apiVersion: storage.k8s.io/v1
      kind: StorageClass
      metadata: {{name: standard, annotations: {{storageclass.kubernetes.io/is-default-class: "true"}}}}
      provisioner: ebs.csi.aws.com{}{}
timeline:
  - at: 60s
    scale: {{kind: StatefulSet, name: scratch, replicas: 1}}
  - at: 60s
    scale: {{kind: StatefulSet, name: keep, replicas: 1}}
expectations:
  - name: both sets run two pods before the scale-down
    at: 59s
    podCount: {{selector: "app in (scratch,keep)", phase: Running}}
    equals: 4
  - name: the scaled-away claim is owned by its pod before the pod goes
    within: 3m
    written: {{kind: PersistentVolumeClaim, name: data-scratch-1, path: "metadata.ownerReferences[kind=Pod].name"}}
    equals: scratch-1
  - name: the scaled-away claim is deleted with its pod
    at: 150s
    field: {{kind: PersistentVolumeClaim, name: data-scratch-1, path: status.phase}}
    exists: false
  - name: the claim of the pod kept stays
    at: 150s
    field: {{kind: PersistentVolumeClaim, name: data-scratch-0, path: status.phase}}
    equals: Bound
  - name: with Retain the scaled-away claim stays
    at: 150s
    field: {{kind: PersistentVolumeClaim, name: data-keep-1, path: status.phase}}
    equals: Bound
"#,
        set("scratch", "persistentVolumeClaimRetentionPolicy: {whenDeleted: Retain, whenScaled: Delete}"),
        set("keep", ""),
    );
    let file = dir.join("when-scaled.yaml");
    std::fs::write(&file, scenario).unwrap();
    let loaded = kubesim::scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let r = run_file(&file, &RunOptions::default()).unwrap();
    assert!(r.all_passed(), "{}", r.summary());
}
