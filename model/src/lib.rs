//! kubesim-model: Kubernetes control-plane logic with no I/O, no clock and no randomness
//! of its own.
//!
//! Every process is a state machine in the style of raft-rs's `RawNode`, behind one
//! interface ([`process::Process`]): the driver (crate `kubesim-sim`) steps inputs in —
//! messages ([`wire`]), host changes, the current simulated time, a seeded RNG — and
//! performs the `Ready` it returns (messages, disk writes, trace records, the next
//! wake-up). Architecture Invariant: nothing in this crate reads a clock, spawns a task or
//! thread, does I/O or draws from an unseeded RNG.

pub mod api;
pub mod apiserver;
pub mod client;
pub mod controllers;
pub mod etcd;
pub mod host;
pub mod kubelet;
pub mod leaderelection;
pub mod process;
pub mod scheduler;
pub mod time;
pub mod wire;
