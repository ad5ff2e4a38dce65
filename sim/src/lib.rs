//! kubesim-sim: the simulated world on madsim that drives kubesim-model's processes.
//!
//! - [`driver`]: the one loop that runs any [`kubesim_model::process::Process`];
//! - [`net`]: typed messages between addresses, with latency, partitions and noise;
//! - [`disk`]: disks with fsync latency, power loss and torn writes;
//! - [`world`]: hosts, the processes on them, and the faults done to them;
//! - [`etcd`]: an etcd cluster alone on the same driver (tests, fuzzing, benchmarks);
//! - [`trace`]: the run's records and its hash.
//!
//! Architecture Invariant: no Kubernetes behaviour here (no readiness, compaction, watch
//! server, rate limiter or relist logic: those are model/'s); simulated time only
//! (madsim's clock), seeded RNGs only, no OS threads and no real sockets; order-sensitive
//! maps are ordered. The trace is the fingerprint of a run.

pub mod disk;
pub mod driver;
pub mod etcd;
#[cfg(test)]
mod etcd_tests;
pub mod net;
pub mod trace;
pub mod world;

use kubesim_model::etcd::MvccEvent;
use kubesim_model::time::SimTime;
use kubesim_model::wire::Value;

/// Spawns a task inside the simulation (for the orchestrator's own helpers).
pub use madsim::task::spawn;

thread_local! {
    /// The clock of the simulation running on this thread ([`simulate`] sets it), so that
    /// reading the time does not look the runtime up (and clone its handle) every call.
    static CLOCK: std::cell::RefCell<Option<madsim::time::TimeHandle>> = const { std::cell::RefCell::new(None) };
}

/// Sets [`CLOCK`] for one simulation and puts the earlier value back when dropped.
pub(crate) struct ClockGuard(Option<madsim::time::TimeHandle>);

impl ClockGuard {
    /// Called inside the runtime.
    pub(crate) fn set() -> ClockGuard {
        let handle = madsim::time::TimeHandle::current();
        ClockGuard(CLOCK.with(|c| c.borrow_mut().replace(handle)))
    }
}

impl Drop for ClockGuard {
    fn drop(&mut self) {
        let earlier = self.0.take();
        CLOCK.with(|c| *c.borrow_mut() = earlier);
    }
}

fn with_clock<T>(f: impl FnOnce(&madsim::time::TimeHandle) -> T) -> T {
    CLOCK.with(|c| match c.borrow().as_ref() {
        Some(h) => f(h),
        None => f(&madsim::time::TimeHandle::current()),
    })
}

/// Simulated time since the start of the run.
pub fn now() -> SimTime {
    SimTime(with_clock(|h| h.elapsed()).as_millis() as u64)
}

/// A madsim sleep of `d` from now (at least 1 ms, as madsim's).
pub(crate) fn sleep(d: std::time::Duration) -> madsim::time::Sleep {
    with_clock(|h| h.sleep(d))
}

/// Lets madsim drop the bookkeeping of finished tasks (it grows in long runs).
pub fn prune_tasks() {
    let _ = madsim::runtime::Handle::current().metrics().num_tasks();
}
pub use trace::{replay, Leadership, Observer, Replay, TraceRecord, TraceSink};
pub use world::{simulate, sleep_until, ClientRate, WorkerSpec, World, WorldConfig};

/// The trace record of one committed etcd event.
fn record_of(ev: &MvccEvent<Value>, t: SimTime) -> Option<TraceRecord> {
    Some(TraceRecord::Write {
        t: t.as_millis(),
        rev: ev.kv.mod_revision as u64,
        verb: ev.verb().to_string(),
        object: ev.kv.value.clone(),
    })
}

/// Runs `f` on a fresh OS thread (a simulation keeps per-thread state): for tests.
#[cfg(test)]
pub(crate) fn on_fresh_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .name("sim-test".into())
        .spawn(f)
        .expect("a thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}
