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
