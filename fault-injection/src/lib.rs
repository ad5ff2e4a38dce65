//! kubesim-faults: the one fault catalogue. Scenario timelines, `kubesim fuzz SCENARIO`
//! (swarm schedules) and `kubesim fuzz etcd` name faults from it, and it applies them to a
//! running [`World`].
//!
//! Faults are data: a scenario names them (`killHost: node-2`), the trace records them, a
//! fuzzer draws them and shrinks a failing schedule, and a repro file writes them back in
//! the scenario's own syntax. [`Fault::deserialize_named`] reads one from its name and
//! argument; `Serialize` writes it as the one-entry map a timeline entry carries.

pub mod duration;
pub mod etcd_fuzz;
pub mod invariants;
pub mod linearizability;
pub mod swarm;

use kubesim_model::api::Quantity;
use kubesim_model::host::{CrashRequest, MemoryHog};
use kubesim_model::kubelet::behavior::Profile;
use kubesim_sim::World;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use duration::{parse_duration, Dur};

/// A fault done to the simulated infrastructure (not through the Kubernetes API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Power a host off: every process on it stops.
    KillHost(String),
    /// Power a host back on: processes start afresh; only disks survive.
    RestartHost(String),
    /// Stop one process on a host (`kubelet`, `kube-apiserver`, `etcd`, ...).
    KillProcess { host: String, process: String },
    /// Start one process afresh.
    RestartProcess { host: String, process: String },
    /// Stop the process leading a component when the fault fires (`etcd`,
    /// `kube-controller-manager`, `kube-scheduler`).
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
    /// A control-plane host loses power and reboots: its etcd member's writes not yet
    /// fsynced are lost (but for a random prefix, a torn write).
    LoseUnsyncedWrites(String),
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

/// Components with a leader that `killLeader` can name.
pub const LEADER_COMPONENTS: [&str; 3] = ["etcd", "kube-controller-manager", "kube-scheduler"];
/// Processes on a control-plane host and on a worker.
pub const CONTROL_PLANE_PROCESSES: [&str; 4] =
    ["etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager"];
pub const WORKER_PROCESSES: [&str; 1] = ["kubelet"];

/// The catalogue: every fault's name as a timeline writes it, in the order the docs list
/// them. `stopKubelet` / `startKubelet` are `killProcess` / `restartProcess` of a kubelet.
pub const FAULT_NAMES: [&str; 23] = [
    "killHost",
    "restartHost",
    "killProcess",
    "restartProcess",
    "stopKubelet",
    "startKubelet",
    "killLeader",
    "partition",
    "heal",
    "isolateMember",
    "isolateEtcdLeader",
    "loseEtcdDisk",
    "slowEtcdDisk",
    "loseUnsyncedWrites",
    "stopContainerRuntime",
    "startContainerRuntime",
    "memoryHog",
    "fillDisk",
    "fillInodes",
    "exhaustPids",
    "unpullableImage",
    "pullableImage",
    "crashContainer",
];

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessArg {
    host: String,
    process: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlowDiskArg {
    host: String,
    /// How long each fsync takes; `0s` restores the disk.
    fsync: Dur,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MemoryHogArg {
    node: String,
    /// Memory taken at once (`0` with no perSecond: the hog exits).
    size: Quantity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    per_second: Option<Quantity>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FillDiskArg {
    node: String,
    size: Quantity,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FillInodesArg {
    node: String,
    inodes: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExhaustPidsArg {
    node: String,
    pids: u64,
}

fn exit_code_one() -> i32 {
    1
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CrashArg {
    pod: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    container: Option<String>,
    #[serde(default = "exit_code_one")]
    exit_code: i32,
}

fn bytes_of<E: serde::de::Error>(q: &Quantity, what: &str) -> Result<i64, E> {
    let v = q.value();
    if v < 0 {
        return Err(E::custom(format!("{what} {} is negative: give 0 or more", q.as_str())));
    }
    Ok(v)
}

fn count_of<E: serde::de::Error>(v: u64, what: &str) -> Result<i64, E> {
    i64::try_from(v).map_err(|_| E::custom(format!("{what} {v} is too large")))
}

impl Fault {
    /// Reads the fault a timeline entry names, its argument from `d`. `Ok(None)`: `name`
    /// is not a fault (another kind of action, or a typo the caller reports).
    pub fn deserialize_named<'de, D: Deserializer<'de>>(name: &str, d: D) -> Result<Option<Fault>, D::Error> {
        use serde::de::Error;
        let f = match name {
            "killHost" => Fault::KillHost(String::deserialize(d)?),
            "restartHost" => Fault::RestartHost(String::deserialize(d)?),
            "killProcess" | "restartProcess" => {
                let a = ProcessArg::deserialize(d)?;
                if !CONTROL_PLANE_PROCESSES.contains(&a.process.as_str())
                    && !WORKER_PROCESSES.contains(&a.process.as_str())
                {
                    return Err(D::Error::custom(format!(
                        "no process {:?}: control-plane hosts run {}; workers run kubelet",
                        a.process,
                        CONTROL_PLANE_PROCESSES.join(", ")
                    )));
                }
                if name == "killProcess" {
                    Fault::KillProcess { host: a.host, process: a.process }
                } else {
                    Fault::RestartProcess { host: a.host, process: a.process }
                }
            }
            "stopKubelet" => Fault::KillProcess { host: String::deserialize(d)?, process: "kubelet".into() },
            "startKubelet" => {
                Fault::RestartProcess { host: String::deserialize(d)?, process: "kubelet".into() }
            }
            "killLeader" => {
                let c = String::deserialize(d)?;
                if !LEADER_COMPONENTS.contains(&c.as_str()) {
                    return Err(D::Error::custom(format!(
                        "killLeader: {c:?} has no leader; one of {}",
                        LEADER_COMPONENTS.join(", ")
                    )));
                }
                Fault::KillLeader(c)
            }
            "partition" => Fault::Partition(Vec::<Vec<String>>::deserialize(d)?),
            "heal" => {
                NoArgs::deserialize(d)?;
                Fault::Heal
            }
            "isolateMember" => Fault::IsolateMember(String::deserialize(d)?),
            "isolateEtcdLeader" => {
                NoArgs::deserialize(d)?;
                Fault::IsolateEtcdLeader
            }
            "loseEtcdDisk" => Fault::LoseEtcdDisk(String::deserialize(d)?),
            "loseUnsyncedWrites" => Fault::LoseUnsyncedWrites(String::deserialize(d)?),
            "slowEtcdDisk" => {
                let a = SlowDiskArg::deserialize(d)?;
                Fault::SlowEtcdDisk { host: a.host, fsync: a.fsync.time.as_duration() }
            }
            "stopContainerRuntime" => Fault::StopContainerRuntime(String::deserialize(d)?),
            "startContainerRuntime" => Fault::StartContainerRuntime(String::deserialize(d)?),
            "memoryHog" => {
                let a = MemoryHogArg::deserialize(d)?;
                let bytes = bytes_of(&a.size, "size")?;
                let per_second = match &a.per_second {
                    Some(q) => bytes_of(q, "perSecond")?,
                    None => 0,
                };
                Fault::MemoryHog { host: a.node, bytes, per_second }
            }
            "fillDisk" => {
                let a = FillDiskArg::deserialize(d)?;
                Fault::FillDisk { bytes: bytes_of(&a.size, "size")?, host: a.node }
            }
            "fillInodes" => {
                let a = FillInodesArg::deserialize(d)?;
                Fault::FillInodes { inodes: count_of(a.inodes, "inodes")?, host: a.node }
            }
            "exhaustPids" => {
                let a = ExhaustPidsArg::deserialize(d)?;
                Fault::ExhaustPids { pids: count_of(a.pids, "pids")?, host: a.node }
            }
            "unpullableImage" => Fault::UnpullableImage(String::deserialize(d)?),
            "pullableImage" => Fault::PullableImage(String::deserialize(d)?),
            "crashContainer" => {
                let a = CrashArg::deserialize(d)?;
                Fault::CrashContainer {
                    pod: a.pod,
                    namespace: a.namespace,
                    container: a.container,
                    exit_code: a.exit_code,
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(f))
    }

    /// The name a timeline writes it under.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::KillHost(_) => "killHost",
            Fault::RestartHost(_) => "restartHost",
            Fault::KillProcess { .. } => "killProcess",
            Fault::RestartProcess { .. } => "restartProcess",
            Fault::KillLeader(_) => "killLeader",
            Fault::Partition(_) => "partition",
            Fault::Heal => "heal",
            Fault::IsolateMember(_) => "isolateMember",
            Fault::IsolateEtcdLeader => "isolateEtcdLeader",
            Fault::LoseEtcdDisk(_) => "loseEtcdDisk",
            Fault::SlowEtcdDisk { .. } => "slowEtcdDisk",
            Fault::LoseUnsyncedWrites(_) => "loseUnsyncedWrites",
            Fault::StopContainerRuntime(_) => "stopContainerRuntime",
            Fault::StartContainerRuntime(_) => "startContainerRuntime",
            Fault::MemoryHog { .. } => "memoryHog",
            Fault::FillDisk { .. } => "fillDisk",
            Fault::FillInodes { .. } => "fillInodes",
            Fault::ExhaustPids { .. } => "exhaustPids",
            Fault::UnpullableImage(_) => "unpullableImage",
            Fault::PullableImage(_) => "pullableImage",
            Fault::CrashContainer { .. } => "crashContainer",
        }
    }

    /// Does it heal what came before (so a fuzzer knows when the last fault healed)?
    pub fn heals(&self) -> bool {
        match self {
            Fault::Heal
            | Fault::RestartHost(_)
            | Fault::RestartProcess { .. }
            | Fault::StartContainerRuntime(_)
            | Fault::PullableImage(_) => true,
            Fault::SlowEtcdDisk { fsync, .. } => fsync.is_zero(),
            Fault::MemoryHog { bytes, per_second, .. } => *bytes == 0 && *per_second == 0,
            Fault::FillDisk { bytes, .. } => *bytes == 0,
            Fault::FillInodes { inodes, .. } => *inodes == 0,
            Fault::ExhaustPids { pids, .. } => *pids == 0,
            _ => false,
        }
    }
}

impl Serialize for Fault {
    /// The one-entry map a timeline entry carries: `{killHost: node-2}`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        let name = self.name();
        let q = |v: i64| Quantity::from_units(v);
        match self {
            Fault::KillHost(h)
            | Fault::RestartHost(h)
            | Fault::IsolateMember(h)
            | Fault::LoseEtcdDisk(h)
            | Fault::LoseUnsyncedWrites(h)
            | Fault::StopContainerRuntime(h)
            | Fault::StartContainerRuntime(h)
            | Fault::KillLeader(h)
            | Fault::UnpullableImage(h)
            | Fault::PullableImage(h) => m.serialize_entry(name, h)?,
            Fault::KillProcess { host, process } | Fault::RestartProcess { host, process } => {
                m.serialize_entry(name, &ProcessArg { host: host.clone(), process: process.clone() })?
            }
            Fault::Partition(groups) => m.serialize_entry(name, groups)?,
            Fault::Heal | Fault::IsolateEtcdLeader => m.serialize_entry(name, &NoArgs {})?,
            Fault::SlowEtcdDisk { host, fsync } => m.serialize_entry(
                name,
                &SlowDiskArg { host: host.clone(), fsync: Dur::from_duration(*fsync) },
            )?,
            Fault::MemoryHog { host, bytes, per_second } => m.serialize_entry(
                name,
                &MemoryHogArg {
                    node: host.clone(),
                    size: q(*bytes),
                    per_second: (*per_second != 0).then(|| q(*per_second)),
                },
            )?,
            Fault::FillDisk { host, bytes } => {
                m.serialize_entry(name, &FillDiskArg { node: host.clone(), size: q(*bytes) })?
            }
            Fault::FillInodes { host, inodes } => {
                m.serialize_entry(name, &FillInodesArg { node: host.clone(), inodes: *inodes as u64 })?
            }
            Fault::ExhaustPids { host, pids } => {
                m.serialize_entry(name, &ExhaustPidsArg { node: host.clone(), pids: *pids as u64 })?
            }
            Fault::CrashContainer { pod, namespace, container, exit_code } => m.serialize_entry(
                name,
                &CrashArg {
                    pod: pod.clone(),
                    namespace: namespace.clone(),
                    container: container.clone(),
                    exit_code: *exit_code,
                },
            )?,
        }
        m.end()
    }
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
            Fault::LoseUnsyncedWrites(h) => world.lose_unsynced_writes(h),
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
            Fault::IsolateMember(h)
            | Fault::LoseEtcdDisk(h)
            | Fault::LoseUnsyncedWrites(h)
            | Fault::SlowEtcdDisk { host: h, .. } => vec![h.as_str()],
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
