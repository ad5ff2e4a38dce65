//! Cluster invariants, checked while a run goes (safety: every trace record, with the
//! committed state after it) and once the last fault has healed (liveness). Each lives in
//! a small module naming the upstream guarantee it encodes, and each is trusted only
//! because a test plants the bug it guards against and sees it caught.
//!
//! They read the trace only (`TraceSink::observe`): committed writes, Events, leader
//! records. What the trace cannot show (the events each watcher received) is checked by
//! [`watch_order`] on records a client hook would have to produce.

pub mod binding;
pub mod daemonset_eviction;
pub mod leaders;
pub mod liveness;
pub mod watch_order;

use kubesim_model::client::Cache;
use kubesim_model::time::SimTime;
use kubesim_sim::TraceRecord;

/// One broken invariant, with when it broke and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub t: SimTime,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}: {}", self.invariant, self.t, self.detail)
    }
}

/// A safety invariant fed every trace record.
pub trait Safety: Send {
    fn observe(&mut self, rec: &TraceRecord, state: &Cache, out: &mut Vec<Violation>);
}

/// Every safety invariant, in a fixed order.
pub fn safety_checks() -> Vec<Box<dyn Safety>> {
    vec![
        Box::new(binding::NodeNameImmutable::default()),
        Box::new(binding::BindFits::default()),
        Box::new(leaders::OneLeaderAtATime::default()),
        Box::new(leaders::OneEtcdLeaderPerTerm::default()),
        Box::new(daemonset_eviction::DaemonSetPodsStay),
    ]
}

/// Every safety invariant behind one observer; violations are collected (at most `cap`).
pub struct SafetyMonitor {
    checks: Vec<Box<dyn Safety>>,
    pub violations: Vec<Violation>,
    cap: usize,
}

impl SafetyMonitor {
    pub fn new() -> Self {
        SafetyMonitor { checks: safety_checks(), violations: Vec::new(), cap: 20 }
    }

    pub fn observe(&mut self, rec: &TraceRecord, state: &Cache) {
        if self.violations.len() >= self.cap {
            return;
        }
        for c in &mut self.checks {
            c.observe(rec, state, &mut self.violations);
        }
    }
}

impl Default for SafetyMonitor {
    fn default() -> Self {
        Self::new()
    }
}
