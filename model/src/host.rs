//! What the simulated machine under a node component is doing, as the kubelet observes it
//! through the container runtime and cAdvisor: faults a scenario injects into a host land
//! here, never in the API.

use std::collections::BTreeSet;

use crate::kubelet::behavior::Profile;
use crate::time::SimTime;

/// The state of one host that its kubelet can observe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostState {
    /// Since when the container runtime does not answer (containerd stopped): the
    /// kubelet reports Ready=False while it keeps renewing its Lease.
    pub container_runtime_down_since: Option<SimTime>,
    /// A process outside the pods using memory (a leak in a system daemon, a test hog).
    pub memory_hog: Option<MemoryHog>,
    /// Bytes of the node filesystem taken by something other than pods and images.
    pub disk_filled_bytes: i64,
    /// Inodes of the node filesystem taken likewise.
    pub inodes_filled: i64,
    /// Processes running outside the pods.
    pub pids_used: i64,
    /// Image references (`*` globs) the registry no longer serves: pulls fail NotFound.
    pub unpullable_images: BTreeSet<String>,
    /// Requests to crash containers, oldest first; a kubelet acts on those made after
    /// it started.
    pub crashes: Vec<CrashRequest>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryHog {
    pub since: SimTime,
    pub profile: Profile,
}

impl MemoryHog {
    pub fn bytes(&self, now: SimTime) -> i64 {
        self.profile.at(now.saturating_sub(self.since)).max(0)
    }
}

/// Make a running container exit with a code, as if its process had crashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashRequest {
    pub at: SimTime,
    /// Pod name, `*` matching any text.
    pub pod: String,
    pub namespace: Option<String>,
    /// The container (default: every container of the pod).
    pub container: Option<String>,
    pub exit_code: i32,
}
