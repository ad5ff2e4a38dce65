//! ReplicationControllers run as upstream runs them: the ReplicaSet controller over
//! ReplicationControllers, with its own event source.

use kubesim::run::{run_file, RunOptions};

/// kubernetes/website's replication.yaml (an nginx ReplicationController of 3): its pods
/// run, created by it, and its status counts them; nothing is reported as not simulated.
#[test]
fn a_replication_controller_keeps_its_pods() {
    let dir = std::env::temp_dir().join(format!("kubesim-rc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = r#"
name: rc
seed: 1
duration: 1m
nodePools:
  - {name: worker, count: 2, capacity: {cpu: "4", memory: 8Gi}}
workloads:
  - manifest:
      apiVersion: v1
      kind: ReplicationController
      metadata:
        name: nginx
      spec:
        replicas: 3
        selector:
          app: nginx
        template:
          metadata:
            name: nginx
            labels:
              app: nginx
          spec:
            containers:
            - name: nginx
              image: nginx
              ports:
              - containerPort: 80
expectations:
  - name: three pods run
    within: 20s
    podCount: {selector: app=nginx, phase: Running, ready: true}
    equals: 3
  - name: the status counts them
    at: 30s
    field: {kind: ReplicationController, name: nginx, path: status.readyReplicas}
    equals: "3"
  - name: created by the replication controller
    at: 30s
    event: {reason: SuccessfulCreate, involvedObject: {kind: ReplicationController, name: nginx}}
    atLeast: 3
"#;
    let file = dir.join("rc.yaml");
    std::fs::write(&file, scenario).unwrap();
    let loaded = kubesim::scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let r = run_file(&file, &RunOptions::default()).unwrap();
    assert!(r.all_passed(), "{}", r.summary());
}
