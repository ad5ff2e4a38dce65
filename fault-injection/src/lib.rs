//! kubesim-faults: the fault vocabulary scenario timelines use, applied to a running
//! [`World`].
//!
//! Faults are data: a scenario names them, the trace records them, and a fuzzer can draw
//! them from proptest strategies and shrink a failing schedule.

pub mod etcd_fuzz;
pub mod linearizability;

use kubesim_model::host::{CrashRequest, MemoryHog};
use kubesim_model::kubelet::behavior::Profile;
use kubesim_sim::World;
use serde::{Deserialize, Serialize};

/// A fault done to the simulated infrastructure (not through the Kubernetes API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// Power a host off: every process on it stops.
    KillHost(String),
    /// Power a host back on: processes start afresh; only disks survive.
    RestartHost(String),
    /// Stop one process on a host (`kubelet`, `kube-apiserver`, `etcd`, ...).
    KillProcess { host: String, process: String },
    /// Start one process afresh.
    RestartProcess { host: String, process: String },
    /// Stop the process holding a component's leader Lease when the fault fires
    /// (`kube-controller-manager`, `kube-scheduler`).
    KillLeader(String),
    /// Hosts in different groups cannot reach each other; unnamed hosts form one more group.
    Partition(Vec<Vec<String>>),
    /// Remove every partition.
    Heal,
    /// Cut a host off from the other control-plane hosts (its etcd peers).
    IsolateMember(String),
    /// Cut the etcd leader (when the fault fires) off from its followers.
    IsolateEtcdLeader,
    /// A member's disk is lost: it restarts empty and catches up by snapshot.
    LoseEtcdDisk(String),
    /// Every fsync of a member's disk takes this long (zero restores it).
    SlowEtcdDisk { host: String, fsync: std::time::Duration },
    /// The container runtime on a worker stops answering: its kubelet reports NotReady.
    StopContainerRuntime(String),
    /// The container runtime answers again.
    StartContainerRuntime(String),
    /// A process outside the pods on a worker uses `bytes` of memory, growing by
    /// `per_second` (both zero: it exits).
    MemoryHog { host: String, bytes: i64, per_second: i64 },
    /// Something other than pods and images takes `bytes` of a worker's node
    /// filesystem (zero frees it).
    FillDisk { host: String, bytes: i64 },
    /// ... or `inodes` of its inodes.
    FillInodes { host: String, inodes: i64 },
    /// Processes outside the pods hold `pids` process IDs on a worker.
    ExhaustPids { host: String, pids: i64 },
    /// The registry stops serving an image (`*` globs match): pulls fail with NotFound.
    UnpullableImage(String),
    /// The registry serves it again.
    PullableImage(String),
    /// Running containers of the matching pods exit with `exit_code`, as if they had
    /// crashed (pod names may use `*`; no container name means all of them).
    CrashContainer { pod: String, namespace: Option<String>, container: Option<String>, exit_code: i32 },
}

impl Fault {
    /// Does it to the world. Errors name an unknown host or process.
    pub fn apply(&self, world: &mut World) -> Result<(), String> {
        match self {
            Fault::KillHost(h) => world.kill_host(h),
            Fault::RestartHost(h) => world.restart_host(h),
            Fault::KillProcess { host, process } => world.kill_process(host, process),
            Fault::RestartProcess { host, process } => world.restart_process(host, process),
            Fault::KillLeader(component) if component == "etcd" => {
                let host = world.etcd_leader_host().ok_or("etcd has no leader yet")?;
                world.kill_process(&host, "etcd")
            }
            Fault::KillLeader(component) => {
                let host = world
                    .lease_holder_host(component)
                    .ok_or_else(|| format!("no {component} leader holds kube-system/{component} yet"))?;
                world.kill_process(&host, component)
            }
            Fault::IsolateMember(h) => world.isolate_from_control_plane(h),
            Fault::IsolateEtcdLeader => {
                let host = world.etcd_leader_host().ok_or("etcd has no leader yet")?;
                world.isolate_from_control_plane(&host)
            }
            Fault::LoseEtcdDisk(h) => world.lose_etcd_disk(h),
            Fault::SlowEtcdDisk { host, fsync } => world.slow_etcd_disk(host, *fsync),
            Fault::Partition(groups) => world.partition(groups),
            Fault::Heal => {
                world.heal();
                Ok(())
            }
            Fault::StopContainerRuntime(h) => {
                let t = kubesim_sim::now();
                world.set_host_state(h, |s| {
                    s.container_runtime_down_since.get_or_insert(t);
                })
            }
            Fault::StartContainerRuntime(h) => {
                world.set_host_state(h, |s| s.container_runtime_down_since = None)
            }
            Fault::MemoryHog { host, bytes, per_second } => {
                let since = kubesim_sim::now();
                let (bytes, per_second) = (*bytes, *per_second);
                world.set_host_state(host, |s| {
                    s.memory_hog = (bytes > 0 || per_second > 0).then_some(MemoryHog {
                        since,
                        profile: Profile::Linear { start: bytes, per_second },
                    });
                })
            }
            Fault::FillDisk { host, bytes } => world.set_host_state(host, |s| s.disk_filled_bytes = *bytes),
            Fault::FillInodes { host, inodes } => world.set_host_state(host, |s| s.inodes_filled = *inodes),
            Fault::ExhaustPids { host, pids } => world.set_host_state(host, |s| s.pids_used = *pids),
            Fault::UnpullableImage(image) | Fault::PullableImage(image) => {
                let add = matches!(self, Fault::UnpullableImage(_));
                for h in world.worker_names() {
                    world.set_host_state(&h, |s| {
                        if add {
                            s.unpullable_images.insert(image.clone());
                        } else {
                            s.unpullable_images.remove(image);
                        }
                    })?;
                }
                Ok(())
            }
            Fault::CrashContainer { pod, namespace, container, exit_code } => {
                let request = CrashRequest {
                    at: kubesim_sim::now(),
                    pod: pod.clone(),
                    namespace: namespace.clone(),
                    container: container.clone(),
                    exit_code: *exit_code,
                };
                for h in world.worker_names() {
                    world.set_host_state(&h, |s| s.crashes.push(request.clone()))?;
                }
                Ok(())
            }
        }
    }

    /// Hosts the fault names, for validating a scenario before it runs.
    pub fn hosts(&self) -> Vec<&str> {
        match self {
            Fault::KillHost(h)
            | Fault::RestartHost(h)
            | Fault::StopContainerRuntime(h)
            | Fault::StartContainerRuntime(h) => vec![h.as_str()],
            Fault::MemoryHog { host, .. }
            | Fault::FillDisk { host, .. }
            | Fault::FillInodes { host, .. }
            | Fault::ExhaustPids { host, .. } => vec![host.as_str()],
            Fault::KillProcess { host, .. } | Fault::RestartProcess { host, .. } => vec![host.as_str()],
            Fault::IsolateMember(h) | Fault::LoseEtcdDisk(h) | Fault::SlowEtcdDisk { host: h, .. } => {
                vec![h.as_str()]
            }
            Fault::Partition(groups) => groups.iter().flatten().map(String::as_str).collect(),
            Fault::Heal
            | Fault::KillLeader(_)
            | Fault::IsolateEtcdLeader
            | Fault::UnpullableImage(_)
            | Fault::PullableImage(_)
            | Fault::CrashContainer { .. } => Vec::new(),
        }
    }
}
