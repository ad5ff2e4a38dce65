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

/// A Deployment created paused makes no ReplicaSet and says so (Progressing Unknown,
/// DeploymentPaused); resumed, it says DeploymentResumed and rolls out; paused again, a
/// scale still applies.
#[test]
fn pause_and_resume_conditions() {
    let dir = std::env::temp_dir().join(format!("kubesim-pause-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = r#"
name: pause-resume
seed: 1
duration: 70s
nodePools:
  - {name: worker, count: 1, capacity: {cpu: "2", memory: 4Gi}}
timeline:
  - at: 15s
    apply:
      manifest:
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: held, namespace: default}
        spec:
          replicas: 2
          paused: true
          selector: {matchLabels: {app: held}}
          template:
            metadata: {labels: {app: held}}
            spec: {containers: [{name: nginx, image: "nginx:1.27"}]}
  - at: 30s
    apply:
      manifest:
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: held, namespace: default}
        spec:
          replicas: 2
          paused: false
          selector: {matchLabels: {app: held}}
          template:
            metadata: {labels: {app: held}}
            spec: {containers: [{name: nginx, image: "nginx:1.27"}]}
  - at: 45s
    apply:
      manifest:
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: held, namespace: default}
        spec:
          replicas: 2
          paused: true
          selector: {matchLabels: {app: held}}
          template:
            metadata: {labels: {app: held}}
            spec: {containers: [{name: nginx, image: "nginx:1.27"}]}
  - at: 50s
    scale: {kind: Deployment, name: held, replicas: 4}
expectations:
  - name: paused - Progressing Unknown with DeploymentPaused
    at: 29s
    field: {kind: Deployment, name: held, path: "status.conditions[type=Progressing].reason"}
    equals: DeploymentPaused
  - name: its message
    at: 29s
    field: {kind: Deployment, name: held, path: "status.conditions[type=Progressing].message"}
    equals: Deployment is paused
  - name: no pods while paused
    at: 29s
    podCount: {selector: app=held}
    equals: 0
  - name: resumed
    at: 40s
    written: {kind: Deployment, name: held, path: "status.conditions[type=Progressing].reason"}
    equals: DeploymentResumed
  - name: then rolled out
    at: 40s
    field: {kind: Deployment, name: held, path: "status.conditions[type=Progressing].reason"}
    equals: NewReplicaSetAvailable
  - name: two pods run
    at: 40s
    podCount: {selector: app=held, phase: Running}
    equals: 2
  - name: paused again, a scale still applies
    at: 58s
    podCount: {selector: app=held, phase: Running}
    equals: 4
  - name: and the Deployment stays paused
    at: 58s
    field: {kind: Deployment, name: held, path: "status.conditions[type=Progressing].reason"}
    equals: DeploymentPaused
"#;
    let file = dir.join("pause-resume.yaml");
    std::fs::write(&file, scenario).unwrap();
    let r = run_file(&file, &RunOptions::default()).unwrap();
    assert!(r.all_passed(), "{}", r.summary());
}
