//! kubesim-faults: the fault vocabulary scenario timelines use, applied to a running
//! [`World`].
//!
//! Faults are data: a scenario names them, the trace records them, and a later fuzzer can
//! draw them from proptest strategies and shrink a failing schedule.

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
    /// Hosts in different groups cannot reach each other; unnamed hosts form one group.
    Partition(Vec<Vec<String>>),
    /// Remove every partition.
    Heal,
}

impl Fault {
    /// Does it to the world. Errors name an unknown host.
    pub fn apply(&self, world: &mut World) -> Result<(), String> {
        match self {
            Fault::KillHost(h) => world.kill_host(h),
            Fault::RestartHost(h) => world.restart_host(h),
            Fault::Partition(groups) => world.partition(groups),
            Fault::Heal => {
                world.heal();
                Ok(())
            }
        }
    }

    /// Hosts the fault names, for validating a scenario before it runs.
    pub fn hosts(&self) -> Vec<&str> {
        match self {
            Fault::KillHost(h) | Fault::RestartHost(h) => vec![h.as_str()],
            Fault::Partition(groups) => groups.iter().flatten().map(String::as_str).collect(),
            Fault::Heal => Vec::new(),
        }
    }
}
