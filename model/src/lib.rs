//! kubesim-model: Kubernetes control-plane logic with no I/O, no clock and no randomness
//! of its own.
//!
//! Every component is a state machine in the style of raft-rs's `RawNode`: the driver
//! (crate `kubesim-sim`) feeds it inputs — watch events, API responses, the current
//! simulated time, a seeded RNG — and performs the outputs it returns (API requests,
//! timers). Architecture Invariant: nothing in this crate reads a clock, spawns a task or
//! thread, or draws from an unseeded RNG.

pub mod api;
pub mod apiserver;
pub mod client;
pub mod controllers;
pub mod etcd;
pub mod host;
pub mod kubelet;
pub mod leaderelection;
pub mod scheduler;
pub mod time;
