//! `rolloutUndo` as kubectl does it: errors in kubectl's words.

use kubesim::run::{run_file, RunOptions};

/// A Deployment with one revision has nothing to go back to; a paused one is refused.
#[test]
fn rollout_undo_errors_are_kubectls() {
    let dir = std::env::temp_dir().join(format!("kubesim-rollout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = r#"
name: undo-errors
seed: 1
duration: 1m
nodePools:
  - {name: worker, count: 1, capacity: {cpu: "2", memory: 4Gi}}
workloads:
  - manifest:
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: web, namespace: default}
      spec:
        replicas: 1
        selector: {matchLabels: {app: web}}
        template:
          metadata: {labels: {app: web}}
          spec: {containers: [{name: nginx, image: "nginx:1.27"}]}
  - manifest:
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: held, namespace: default}
      spec:
        replicas: 1
        paused: true
        selector: {matchLabels: {app: held}}
        template:
          metadata: {labels: {app: held}}
          spec: {containers: [{name: nginx, image: "nginx:1.27"}]}
timeline:
  - at: 30s
    rolloutUndo: {name: web}
    expectError: no rollout history found for deployment "web"
  - at: 30s
    rolloutUndo: {name: web, toRevision: 7}
    expectError: unable to find specified revision 7 in history
  - at: 30s
    rolloutUndo: {name: held}
    expectError: "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again"
"#;
    let file = dir.join("undo-errors.yaml");
    std::fs::write(&file, scenario).unwrap();
    let r = run_file(&file, &RunOptions::default()).unwrap();
    assert!(r.all_passed(), "{}", r.summary());
    assert_eq!(r.summary().matches("PASS").count(), 3, "{}", r.summary());
}
