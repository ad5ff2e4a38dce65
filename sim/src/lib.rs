//! kubesim-sim: the simulated world on madsim that drives kubesim-model's components.
//!
//! Architecture Invariant: simulated time only (madsim's clock), seeded RNGs only, no OS
//! threads and no real sockets; order-sensitive maps are ordered. The trace is the
//! fingerprint of a run.

pub mod client;
pub mod messages;
pub mod net;
pub mod trace;
pub mod world;

use kubesim_model::etcd::MvccEvent;
use kubesim_model::time::SimTime;

pub use client::now;
/// Spawns a task inside the simulation (for the orchestrator's own helpers).
pub use madsim::task::spawn;

/// Lets madsim drop the bookkeeping of finished tasks (it grows in long runs).
pub fn prune_tasks() {
    let _ = madsim::runtime::Handle::current().metrics().num_tasks();
}
pub use trace::{replay, Leadership, Observer, Replay, TraceRecord, TraceSink};
pub use world::{simulate, sleep_until, ClientRate, WorkerSpec, World, WorldConfig};

/// The trace record of one committed etcd event.
fn record_of(ev: &MvccEvent<messages::Value>, t: SimTime) -> Option<TraceRecord> {
    Some(TraceRecord::Write {
        t: t.as_millis(),
        rev: ev.kv.mod_revision as u64,
        verb: ev.verb().to_string(),
        object: ev.kv.value.clone(),
    })
}
