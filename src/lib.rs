//! kubesim: the CLI's library — scenario files, run orchestration and kubectl-style views.
//!
//! Dependencies point one way: this crate -> kubesim-faults -> kubesim-sim -> kubesim-model.

pub mod cluster_fuzz;
pub mod drain;
pub mod explain;
pub mod export;
pub mod fuzz;
pub mod import;
pub mod kubectl;
pub mod metrics;
pub mod plan;
pub mod progress;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sweep;
