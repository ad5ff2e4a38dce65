//! kubesim-faults: the fault vocabulary scenario timelines use, applied to a running
//! [`World`].
//!
//! Faults are data: a scenario names them, the trace records them, and a fuzzer can draw
//! them from proptest strategies and shrink a failing schedule.

pub mod etcd_fuzz;
pub mod linearizability;

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
        }
    }

    /// Hosts the fault names, for validating a scenario before it runs.
    pub fn hosts(&self) -> Vec<&str> {
        match self {
            Fault::KillHost(h)
            | Fault::RestartHost(h)
            | Fault::StopContainerRuntime(h)
            | Fault::StartContainerRuntime(h) => vec![h.as_str()],
            Fault::KillProcess { host, .. } | Fault::RestartProcess { host, .. } => vec![host.as_str()],
            Fault::IsolateMember(h) | Fault::LoseEtcdDisk(h) | Fault::SlowEtcdDisk { host: h, .. } => {
                vec![h.as_str()]
            }
            Fault::Partition(groups) => groups.iter().flatten().map(String::as_str).collect(),
            Fault::Heal | Fault::KillLeader(_) | Fault::IsolateEtcdLeader => Vec::new(),
        }
    }
}
