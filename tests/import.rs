//! `kubesim import` (issue 14): a kubectl `List` snapshot — worker and control-plane
//! nodes, a Deployment with its pods (one Terminating, one whose ReplicaSet is gone), a
//! DaemonSet, a static pod, a bare pod and kinds kubesim does not simulate — becomes a
//! scenario that runs and reaches exactly the snapshot's replicas.

use std::path::{Path, PathBuf};

use kubesim::import::{import_files, ImportOptions};
use kubesim::run::{run_file, RunOptions};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import/kubectl-snapshot.yaml")
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kubesim-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_kubectl_list_imports_and_reaches_the_snapshots_replicas() {
    let opts = ImportOptions { name: "snapshot".into(), duration: "3m".into() };
    let imported = import_files(&[fixture()], &opts).unwrap();
    let summary = imported.summary();
    // The scenario itself, without its header comment (the summary).
    let yaml: String =
        imported.scenario.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
    // What a server sets is gone.
    for field in
        ["uid:", "resourceVersion:", "managedFields:", "ownerReferences:", "status:", "creationTimestamp:"]
    {
        assert!(!yaml.contains(field), "{field} left in the scenario:\n{yaml}");
    }
    assert!(!yaml.contains("kube-api-access-"), "the ServiceAccount volume is the API server's");
    // Every drop says why.
    for why in [
        "Pod shop/web-7d4b9c8f5-pqrst: Terminating in the snapshot; not revived",
        "Pod shop/api-6c9f8d7b5-x2v9q: its controller Deployment api is not in the snapshot",
        "a static (mirror) pod of node ip-10-0-0-5.ec2.internal",
        "Pod monitoring/node-exporter-10005: on control-plane node",
        "PersistentVolume pvc-6f1c2a9e-0031-4b7e-9d0a-3c5e8f1a2b31: provisioned by ebs.csi.aws.com; its claim is provisioned again",
        "PriorityClass system-node-critical: built into the API server; skipped",
        "Pod default/debug: was on node ip-10-0-2-21.ec2.internal; unbound",
    ] {
        assert!(summary.contains(why), "want {why:?} in:\n{summary}");
    }
    // Storage: the class kept; the controllers' bindings undone, to be made again.
    assert!(yaml.contains("kind: StorageClass"), "{yaml}");
    assert!(!summary.contains("StorageClass: kind not simulated"), "{summary}");
    assert!(yaml.contains("name: nfs-archive") && yaml.contains("name: uploads"), "{yaml}");
    for gone in [
        "volumeName:",
        "claimRef:",
        "bind-completed",
        "selected-node",
        "finalizers:",
        "vol-0a1b2c3d4e5f60718",
    ] {
        assert!(!yaml.contains(gone), "{gone} left in the scenario:\n{yaml}");
    }
    // PodDisruptionBudgets are simulated (the disruption controller, the Eviction API):
    // kept, without the status the disruption controller writes.
    assert!(yaml.contains("kind: PodDisruptionBudget"), "{yaml}");
    assert!(!summary.contains("PodDisruptionBudget: kind not simulated"), "{summary}");
    assert!(summary.contains("6 controller-owned pods left to their controllers"), "{summary}");
    // Two zones: two pools; the control-plane node is a control-plane host.
    assert!(imported.scenario.contains("name: general-us-east-1a"), "{}", imported.scenario);
    assert!(imported.scenario.contains("count: 2"), "{}", imported.scenario);
    assert!(imported.scenario.contains("topology.kubernetes.io/zone: us-east-1b"), "{}", imported.scenario);
    assert!(
        !yaml.contains("alpha.eksctl.io/instance-id"),
        "a per-node label is not a pool's, even in a pool of one"
    );
    assert!(imported.scenario.contains("hosts: 1"), "{}", imported.scenario);
    // Allocatable comes back through kubeReserved: 4 CPUs less 3920m.
    assert!(imported.scenario.contains("cpu: 80m"), "{}", imported.scenario);

    let path = scratch().join("snapshot.yaml");
    std::fs::write(&path, &imported.scenario).unwrap();
    let report =
        run_file(&path, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}\n{}", imported.scenario));
    assert!(report.all_passed(), "{}\n{}", report.summary(), imported.scenario);
    assert!(report.step_errors.is_empty(), "{}", report.summary());
    // The snapshot's steady state, exactly: web 3, node-exporter on the 3 workers, debug.
    let names: Vec<&str> = report.results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Deployment shop/web runs its 3 pods, as in the snapshot",
            "DaemonSet monitoring/node-exporter runs its 3 pods, as in the snapshot",
            "Pod default/debug Running, as in the snapshot",
        ],
        "{}",
        report.summary()
    );
    assert_eq!(report.metrics.pending_time.still_pending, 0);
    // The claims are bound again by the simulated controllers: the static volume at the
    // PV controller's sync, the gp3 one only once a pod uses it (WaitForFirstConsumer).
    let trace = scratch().join("snapshot.jsonl");
    let opts = RunOptions { trace: Some(trace.clone()), ..Default::default() };
    run_file(&path, &opts).unwrap();
    let at = |kind: &str, name: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubesim"))
            .args(["get", kind, name, "-n", "shop", "--trace"])
            .arg(&trace)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    assert!(at("pvc", "archive").contains("Bound"), "{}", at("pvc", "archive"));
    assert!(at("pvc", "uploads").contains("Pending"), "{}", at("pvc", "uploads"));
    assert_eq!(report.metrics.scheduling.pods_scheduled, 7, "{}", report.summary());
}

#[test]
fn import_of_a_file_that_is_not_yaml_exits_2_naming_it() {
    let p = scratch().join("broken.yaml");
    std::fs::write(&p, "apiVersion: v1\nkind: List\nitems: [\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args(["import", p.to_str().unwrap(), "-o", scratch().join("x.yaml").to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:", p.display())), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
