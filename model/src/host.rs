//! What the simulated machine under a node component is doing, as the kubelet observes it
//! through the container runtime and cAdvisor: faults a scenario injects into a host land
//! here, never in the API.

/// The state of one host that its kubelet can observe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostState {
    /// Since when the container runtime does not answer (containerd stopped): the
    /// kubelet reports Ready=False while it keeps renewing its Lease.
    pub container_runtime_down_since: Option<crate::time::SimTime>,
}
